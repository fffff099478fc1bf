/* rc_ops: the client operations — one Request (or each entry of a
 * RequestBatch) checked, its owner found (CURVE), and Submit, Status, Wait,
 * Fetch, Cancel, Delete and Stats carried out against the cache, the
 * runner and the waiters. */
#ifndef RC_OPS_H
#define RC_OPS_H

#include <zmq.h>

typedef struct rc_core rc_core_t;

#define RC_MAX_NAME       128  /* function and namespace names */
#define RC_MAX_PARAMS     256
#define RC_MAX_RETRIES_CAP 100 /* attempts are patched into the dispatch as one varint byte */
#define RC_MAX_BATCH_REQS 1024 /* requests in one RequestBatch, at most */

/* One frame set from the clients channel: [rid][""?][Request]. Returns how
 * many requests it carried (at least 1), for the loop's budget. */
int rc_ops_client_msg(rc_core_t *core, zmq_msg_t *frames, int nframes);

/* The one rule for numbers beyond a limit: a number that bounds how long
 * or how much the broker holds or keeps for a request is used clamped to
 * the limit, and the reply says so (Reply.clamped). Returns the value to
 * use and notes the clamp for the reply to the request being handled. */
uint64_t rc_ops_clamp(rc_core_t *core, const char *field, uint64_t requested, uint64_t limit);

#endif
