/* rc_broker_int: the broker's internal records, shared by the loop
 * (rc_broker.c) and the message handlers (rc_handlers.c). Everything here is
 * owned and touched by the broker thread only: no locks. */
#ifndef RC_BROKER_INT_H
#define RC_BROKER_INT_H

#include <czmq.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "rc_broker.h"
#include "rc_codec.h"
#include "rc_list.h"
#include "rc_spare.h"
#include "rc_table.h"
#include "rc_task.h"
#include "rc_timer.h"

/* Attempts are patched into the dispatch as one varint byte. */
#define RC_MAX_RETRIES_CAP 100
#define RC_MAX_NAME        128 /* function and namespace names */
#define RC_MAX_PARAMS      256
#define RC_MAX_CREDIT      1024
#define RC_MAX_BATCH       64         /* dispatches in one message, at most */
#define RC_BATCH_BYTES     (64 << 10) /* a batch that would pass this goes out first */
#define RC_MAX_ROUTING_ID  255
#define RC_OUTBOXES        8    /* clients with reply batches open at once */
#define RC_SPEC_ROOM       128  /* a dispatch spec up to this size lives in its active record */
#define RC_WAITER_RID_ROOM 32   /* a waiter of a routing id up to this long comes from the spare list */
#define RC_MAX_BATCH_REQS  1024 /* requests in one RequestBatch, at most */

#define RC_STR_(x) #x
#define RC_STR(x)  RC_STR_(x) /* a macro's value as a string literal */

enum { T_RETRY = 1, T_TTL, T_DEADLINE, T_WAITER, T_WAIT_LANE, T_TICK };

enum {
    F_INDEXED = 1u << 0,      /* in the cache / de-duplication index */
    F_EVER_STARTED = 1u << 1, /* some attempt began to run */
    F_SHARED_NS = 1u << 2,    /* in a namespace shared across owners: visible to all */
    F_FULL = 1u << 3,         /* terminal, but not shrunk (no memory for it): fields as when active */
    F_EXT = 1u << 4,          /* the record has the fields from ns to stopped_us */
};

typedef struct rc_fn {
    char *name;
    rc_list_t queue; /* PENDING tasks ready for dispatch, FIFO */
    size_t queued;
    bool cacheable; /* some worker declared it cacheable */
    bool svc_known;
    uint64_t svc_ns; /* service time per task: a moving average of 1/8 */
} rc_fn_t;

typedef struct {
    uint8_t ref[16];
    uint32_t attempt;
    bool used;
    rc_fn_t *fn;
    uint64_t est_ns; /* the function's service time when dispatched */
} rc_slot_t;

typedef struct rc_worker {
    char id[RC_MAX_ROUTING_ID + 1]; /* routing id on both channels (printable) */
    size_t id_len;
    bool ready, hello;
    bool refused; /* a send to it was refused: no dispatch until it speaks again */
    rc_fn_t **fns;
    size_t nfns;
    uint32_t credit, outstanding;
    rc_slot_t *slots;    /* credit of them */
    uint32_t slot_next;  /* where to look for a free slot first */
    uint32_t slot_done;  /* where to look for a finished task's slot first */
    uint64_t backlog_ns; /* expected work in what it holds: sum of est_ns */
    /* When the task it runs began, as far as the broker can tell: its
     * previous task's end, or the dispatch if it was idle. */
    uint64_t busy_since_ns;
    uint64_t last_seen_us;
    rc_list_t link; /* broker->workers, rotated for fairness */
    /* Dispatches to send together, when the worker takes batches
     * (max_batch > 1): their specs behind RC_BATCH_HEAD bytes of room for
     * the head, and the credit slots they fill. They go out when the loop
     * has drained a socket (rc_core_flush), when the batch is full, and
     * before a cancel notice to the worker. */
    uint32_t max_batch, batch_n;
    bool batch_refused;    /* the worker refused it: rc_core_flush hands its tasks back */
    uint32_t *batch_slots; /* credit of them */
    rc_buf_t batch;
    rc_list_t flush_link; /* in core->to_flush while batch_n > 0 */
} rc_worker_t;

typedef struct rc_waiter rc_waiter_t;

/* A task record. The fields up to `ns` are kept for the record's whole
 * life; those from `ns` to `stopped_us` (the extension) only when the task
 * has any of them (F_EXT: a namespace, progress, a stop time, and every
 * FAILED or CANCELLED task, which may still learn when its worker stopped);
 * the rest serve only while the task is PENDING or PROCESSING. When the task
 * ends, the record is shrunk to RC_TASK_CORE or RC_TASK_KEPT bytes followed
 * by its result bytes (COMPLETE) or its error text (FAILED, CANCELLED)
 * inline: a plain finished task costs one allocation of 120 bytes plus its
 * result. Read the extension through the rc_task_ accessors; nothing may
 * touch an active-only field of a terminal record (unless F_FULL: one that
 * could not be shrunk keeps them all). */
typedef struct rc_task {
    uint8_t ref[16];
    uint8_t key[16];
    uint8_t state;
    uint8_t flags;
    uint8_t error_code;  /* refcache.v1.Code */
    uint8_t attempt;     /* <= RC_MAX_RETRIES_CAP + 1 */
    uint8_t max_retries; /* <= RC_MAX_RETRIES_CAP */
    uint32_t ttl_s;
    uint32_t result_len; /* results are bounded by the message size limit */
    rc_fn_t *fn;
    uint64_t owner;                               /* keyed hash of the owner's key; 0 without CURVE */
    uint64_t created_us, started_us, finished_us; /* wall clock */
    rc_list_t link;                               /* fn->queue while queued; broker->lru when terminal */
    rc_timer_t timer;                             /* retry back-off (PENDING) or TTL (terminal) */
    /* The extension (F_EXT). */
    char *ns; /* NULL: the default namespace */
    uint64_t progress_done, progress_total;
    uint64_t stopped_us; /* wall clock */
    /* Active only. */
    rc_worker_t *worker; /* while PROCESSING */
    char *error;         /* the last failure's message (before a retry, or at the end) */
    uint64_t seq;        /* FIFO order across functions */
    uint8_t *spec;       /* the encoded Dispatch */
    size_t spec_len;
    rc_timer_t deadline;
    rc_waiter_t *waiters;
    uint8_t spec_room[]; /* RC_SPEC_ROOM bytes in an active record */
} rc_task_t;

#define RC_TASK_CORE offsetof(rc_task_t, ns)
#define RC_TASK_KEPT offsetof(rc_task_t, worker)

/* Where a shrunk record's inline bytes start. */
static inline const uint8_t *rc_task_inline(const rc_task_t *t)
{
    return (const uint8_t *) t + (t->flags & F_EXT ? RC_TASK_KEPT : RC_TASK_CORE);
}

/* The extension's fields, or their defaults when the record has none. */
static inline const char *rc_task_ns(const rc_task_t *t)
{
    return t->flags & F_EXT ? t->ns : NULL;
}

static inline uint64_t rc_task_progress_done(const rc_task_t *t)
{
    return t->flags & F_EXT ? t->progress_done : 0;
}

static inline uint64_t rc_task_progress_total(const rc_task_t *t)
{
    return t->flags & F_EXT ? t->progress_total : 0;
}

static inline uint64_t rc_task_stopped_us(const rc_task_t *t)
{
    return t->flags & F_EXT ? t->stopped_us : 0;
}

/* The result bytes of a COMPLETE task (inline after the kept fields), or NULL. */
static inline const uint8_t *rc_task_result(const rc_task_t *t)
{
    return t->state == RC_COMPLETE && t->result_len ? rc_task_inline(t) : NULL;
}

/* The task's error message, or NULL: inline after the kept fields once a
 * FAILED or CANCELLED record is shrunk, else the active field. */
static inline const char *rc_task_error(const rc_task_t *t)
{
    if (t->state == RC_COMPLETE)
        return NULL;
    if ((t->state == RC_FAILED || t->state == RC_CANCELLED) && !(t->flags & F_FULL))
        return (const char *) rc_task_inline(t);
    return t->error;
}

enum { W_SUBMIT, W_WAIT };

/* Waiters that wait the same time (a client's submits mostly use one
 * async_timeout) fall due in the order they came, so a lane keeps them in a
 * FIFO: adding and removing one costs O(1), where the timer heap, which
 * also holds every task's TTL, cost two sift-downs through it per submit.
 * Only the lane's own timer is in the heap, set for its oldest waiter when
 * it is armed and moved on only when it fires. A waiter whose time has no
 * lane (all RC_WAIT_LANES busy with other times) uses the heap. */
#define RC_WAIT_LANES 8

typedef struct {
    rc_timer_t timer;    /* T_WAIT_LANE */
    uint32_t timeout_ms; /* what its waiters wait */
    rc_list_t waiters;   /* oldest first */
} rc_wait_lane_t;

struct rc_waiter {
    rc_waiter_t *prev, *next; /* in task->waiters */
    rc_task_t *task;
    rc_timer_t timer;    /* when not in a lane */
    rc_list_t lane_link; /* in a lane: its place there, and when it falls due */
    uint64_t due_us;
    uint64_t req_id;
    uint8_t kind;
    bool cache_hit, deduplicated;
    bool envelope; /* the client used a REQ envelope */
    bool batched;  /* the request came in a batch: the reply may go in one */
    uint8_t rid_len;
    uint8_t rid[];
};

/* Replies to one client's batched requests, gathered while the loop drains
 * its sockets and sent when it is done (rc_core_flush), when full, or when
 * another client needs the outbox: the entries of a ReplyBatch behind
 * RC_BATCH_HEAD bytes of room, or a lone reply alone. */
typedef struct {
    rc_buf_t buf;
    uint32_t n;      /* replies in it */
    size_t last_len; /* the length of the last reply (a lone one is sent as itself) */
    bool envelope;
    uint8_t rid_len;
    uint8_t rid[RC_MAX_ROUTING_ID];
} rc_outbox_t;

typedef struct {
    uint64_t submitted, completed, failed, cancelled, cache_hits, dedup, expired, evicted, retries,
        workers_lost, bad_requests, bad_worker_msgs, stale_msgs, dropped_replies, requests,
        resource_exhausted, deadline_exceeded;
} rc_counters_t;

typedef struct rc_core {
    rc_broker_config_t cfg;
    void *clients, *workers, *control; /* raw libzmq sockets (ROUTER) */
    rc_timers_t *timers;
    rc_timer_t tick;
    rc_wait_lane_t lanes[RC_WAIT_LANES];
    rc_table_t *tasks;    /* ref -> task */
    rc_table_t *index;    /* cache key -> task (cacheable, not failed/cancelled) */
    zhashx_t *fns;        /* name -> rc_fn_t */
    zhashx_t *worker_ids; /* id -> rc_worker_t */
    rc_list_t worker_list;
    rc_list_t lru;      /* terminal tasks, least recently used first */
    rc_list_t to_flush; /* workers with dispatches waiting in their batch */
    uint64_t window_ns; /* cfg.dispatch_window_us */
    uint64_t n_state[7];
    uint64_t waiters, cache_bytes, next_seq, started_mono_us;
    /* The clock, read once per message and per timer pass rather than at
     * every use (it was 8 reads per task): now_ns is monotonic, and wall
     * time is now_ns plus wall_off_us, re-read once per timer pass. */
    uint64_t now_ns;
    int64_t wall_off_us;
    uint64_t freed_since_trim; /* records freed since memory was last handed back */
    rc_spare_t spare_records, spare_waiters; /* freed active records and waiters, for reuse */
    rc_counters_t c;
    uint8_t key_secret[16];
    uint8_t rand_pool[4096];
    size_t rand_left;
    rc_buf_t out;     /* reused reply buffer */
    rc_buf_t scratch; /* a batch entry re-encoded (rc_codec_request_next) */
    rc_outbox_t outbox[RC_OUTBOXES];
    unsigned n_outbox, outbox_turn; /* outbox[0..n_outbox) are open; the next to give up */
    /* the message being handled (for replies) */
    const uint8_t *rid;
    size_t rid_len;
    bool envelope;
    bool batched; /* it is an entry of a RequestBatch */
    uint64_t owner; /* owner of the request being handled */
    /* CURVE: the public keys (Z85) allowed on each channel; NULL when off. */
    zhashx_t *client_keys, *worker_keys;
    zhashx_t *shared_ns; /* namespaces whose cache is shared across owners */
    /* The in-process pool's doorbell (rc_pool_config_t): incremented after
     * each cancel notice sent; NULL when there is none. */
    atomic_uint_fast64_t *cancel_bell;
} rc_core_t;

/* Core life cycle (rc_handlers.c). */
int rc_core_init(rc_core_t *core, const rc_broker_config_t *cfg);
void rc_core_fini(rc_core_t *core);

/* One frame set from each channel; the rid is the peer's routing id. Each
 * returns how many requests or worker messages the frame carried (at least
 * 1), which the loop counts against its budget per socket. */
int rc_core_client_msg(rc_core_t *core, zmq_msg_t *frames, int nframes);
int rc_core_worker_msg(rc_core_t *core, zmq_msg_t *frames, int nframes);
int rc_core_control_msg(rc_core_t *core, zmq_msg_t *frames, int nframes);

/* The owner id of a CURVE public key (Z85): a keyed hash, never 0. */
uint64_t rc_core_owner_of(rc_core_t *core, const char *key);

/* Runs every timer due at now; returns the next due time (or UINT64_MAX). */
uint64_t rc_core_timers(rc_core_t *core, uint64_t now_us);

/* Sends the dispatches waiting in workers' batches and the replies waiting
 * in outboxes: the loop calls it after draining a socket. */
void rc_core_flush(rc_core_t *core);

#endif
