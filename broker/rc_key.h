/* rc_key: 128-bit keyed hashes (SipHash-2-4, 128-bit output) for the result
 * cache. The key is secret and random per broker run, so a client cannot
 * craft two different submits that share a cache entry. Incremental: feed
 * the fields of a submit, each with its length so field boundaries count. */
#ifndef RC_KEY_H
#define RC_KEY_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t v0, v1, v2, v3;
    uint64_t tail;  /* bytes not yet consumed, little-endian */
    size_t ntail;   /* how many bytes are in tail */
    uint64_t total; /* bytes fed so far */
} rc_key_state_t;

/* Starts a hash with a 16-byte secret. */
void rc_key_init(rc_key_state_t *st, const uint8_t secret[16]);

/* Feeds raw bytes. */
void rc_key_update(rc_key_state_t *st, const void *data, size_t len);

/* Feeds a length prefix and the bytes, so ("ab","c") and ("a","bc") differ. */
void rc_key_field(rc_key_state_t *st, const void *data, size_t len);

/* Writes the 16-byte digest. */
void rc_key_final(rc_key_state_t *st, uint8_t out[16]);

#endif
