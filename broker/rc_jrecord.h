/* rc_jrecord: how the broker's records are written in the durable store —
 * the keys (a kind byte and a ref_id, or a function's name) and the blobs
 * (a format byte, fixed little-endian fields, then length-prefixed bytes).
 * Pure: encoding from plain views, decoding into views that point into the
 * blob. The store itself never looks inside (rc_store.h). */
#ifndef RC_JRECORD_H
#define RC_JRECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc_buf.h"
#include "rc_codec.h"

enum { RC_JKEY_TASK = 'T', RC_JKEY_HANDLE = 'H', RC_JKEY_FUNCTION = 'F' };

#define RC_JRECORD_FORMAT 1 /* the first byte of every blob */

/* A task: the computation and its own handle. */
typedef struct {
    uint8_t ref[16];
    uint8_t key[16];  /* the cache key (when indexed) */
    uint8_t idem[16]; /* the request_key digest of its own handle (has_idem) */
    bool has_idem;
    uint8_t state, flags, error_code, attempt, max_retries, hstate;
    uint32_t ttl_s;
    uint64_t owner, seq;
    uint64_t created_us, started_us, finished_us, stopped_us; /* wall clock */
    uint64_t deadline_us;                                     /* wall clock; 0: none */
    uint64_t own_left_us;                                     /* wall clock: its own handle left the work */
    uint64_t progress_done, progress_total;
    rc_bytes_t fn, ns, spec, error, result;
} rc_jtask_t;

/* An extra handle on a task. */
typedef struct {
    uint8_t ref[16];
    uint8_t task[16];
    uint8_t idem[16];
    bool has_idem;
    uint8_t state;
    uint32_t ttl_s;
    uint64_t owner, created_us, left_us, deadline_us; /* wall clock */
} rc_jhandle_t;

/* The store key of a task or handle: kind and ref (17 bytes into out). */
size_t rc_jrecord_key(uint8_t kind, const uint8_t ref[16], uint8_t out[17]);

/* Appends a blob to buf (replacing nothing: the caller resets buf->len). 0 or -1. */
int rc_jrecord_put_task(rc_buf_t *buf, const rc_jtask_t *t);
int rc_jrecord_put_handle(rc_buf_t *buf, const rc_jhandle_t *h);
int rc_jrecord_put_function(rc_buf_t *buf, bool cacheable);

/* Decodes a blob; 0, or -1 with a reason in *why (a static string). */
int rc_jrecord_task(const uint8_t *blob, size_t len, rc_jtask_t *t, const char **why);
int rc_jrecord_handle(const uint8_t *blob, size_t len, rc_jhandle_t *h, const char **why);
int rc_jrecord_function(const uint8_t *blob, size_t len, bool *cacheable, const char **why);

#endif
