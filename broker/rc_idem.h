/* rc_idem: idempotency keys. A Submit with a request_key remembers, under a
 * keyed hash of (owner, namespace, request_key), the ref_id of the handle it
 * got; the same Submit repeated while that handle exists gets the handle
 * back instead of a second task. An entry goes when its handle goes (the
 * runner's observers see it), and comes back from the store after a restart
 * with the handle's record. */
#ifndef RC_IDEM_H
#define RC_IDEM_H

#include <stdint.h>

#include "rc_codec.h"

typedef struct rc_core rc_core_t;

#define RC_MAX_REQUEST_KEY 128 /* bytes */

typedef struct {
    uint8_t digest[16]; /* the key of core->idem */
    uint8_t ref[16];    /* the key of core->idem_refs: the handle's ref_id */
} rc_idem_t;

int rc_idem_init(rc_core_t *core);
void rc_idem_fini(rc_core_t *core);

/* The digest of a request_key for the request being handled's owner. */
void rc_idem_digest(rc_core_t *core, uint64_t owner, const rc_str_t *ns, const rc_str_t *key, uint8_t out[16]);

/* The ref_id a digest names, or NULL. */
const uint8_t *rc_idem_ref(rc_core_t *core, const uint8_t digest[16]);

/* The digest of the handle ref, or NULL when it has none. */
const uint8_t *rc_idem_digest_of(rc_core_t *core, const uint8_t ref[16]);

/* Remembers digest -> ref (a digest already there is replaced). 0 or -1. */
int rc_idem_add(rc_core_t *core, const uint8_t digest[16], const uint8_t ref[16]);

/* Forgets the entry of the handle ref, if it has one. */
void rc_idem_forget(rc_core_t *core, const uint8_t ref[16]);

#endif
