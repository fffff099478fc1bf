/* rc_observe: seeing inside the broker. One observer of the runner's notes
 * (rc_runner_observe) keeps what the requests that look inside need:
 *
 *   rc_listidx   the ref_ids in acceptance order, which List pages through
 *   rc_metrics   per-function histograms of queue, run and cancel-to-stop time
 *   rc_watch     the watchers, each sent the transitions it asked for
 *
 * and this module answers the requests: List, Workers, Watch and Metrics.
 * It adds nothing to the runner, the cache or the dispatcher: what it costs
 * when nobody watches is the note handler (an append per Submit, a count
 * per record gone, a histogram step per dispatch and per end).
 *
 * Who may see what: without CURVE, and on a connection without a key (the
 * in-process ones: the HTTP server's), everything. Under CURVE a client key
 * lists and watches only its own tasks, and Workers is refused; an admin
 * key (--admin-allowed) sees every task and the workers. */
#ifndef RC_OBSERVE_H
#define RC_OBSERVE_H

#include "rc_codec.h"

typedef struct rc_core rc_core_t;
typedef struct rc_observe rc_observe_t;

#define RC_LIST_LIMIT_DEFAULT 100
#define RC_LIST_LIMIT_MAX     1000
#define RC_LIST_SCAN          4096 /* records a List call looks at, at most */

/* Creates core->observe and registers its observer; 0 or -1. */
int rc_observe_init(rc_core_t *core);

/* The allow-lists were reloaded: the owners' names are read again from them
 * at the next need. */
void rc_observe_keys_changed(rc_core_t *core);
void rc_observe_fini(rc_core_t *core);

/* A List, Workers, Watch or Metrics request (the request being handled). */
void rc_observe_request(rc_core_t *core, const rc_request_t *req);

/* The end of a drain or a timer pass: the watchers' events go out. */
void rc_observe_flush(rc_core_t *core);

/* What a client's ref_id stands for, as rc_ops finds it: a task's own
 * handle (unless it went while others hold the task), or an extra handle
 * (*h) on a task; its owner in *owner. NULL when it is gone. */
typedef struct rc_task rc_task_t;
typedef struct rc_handle rc_handle_t;
rc_task_t *rc_observe_resolve(rc_core_t *core, const uint8_t ref[16], rc_handle_t **h, uint64_t *owner);

/* For Stats and tests: the index's entries and bytes, and the watchers'. */
typedef struct {
    size_t list_entries, list_live, list_bytes;
    uint32_t watchers;
    uint64_t watch_events, watch_lost, watch_dropped, watch_in_flight;
} rc_observe_stats_t;

void rc_observe_stats(rc_core_t *core, rc_observe_stats_t *s);

#endif
