/* refcache.h: the refcache C client library, its one public header — one
 * DEALER connection to the broker's clients endpoint. Every name it exports
 * starts with refcache_ (functions, types) or REFCACHE_ (constants); the
 * library's internal modules use rc_<module>_ and are not installed.
 *
 * Two ways to use a connection:
 *
 *  - Blocking calls (refcache_client_submit ... refcache_client_stats): each sends one
 *    Request and waits for the Reply with the same id, up to a timeout.
 *    Replies with any other id (e.g. the late reply to an earlier call that
 *    timed out) are discarded and counted. Results land in plain structs
 *    owned by the caller: a refcache_task_t or refcache_page_t the call
 *    allocates and the caller frees with refcache_task_destroy or
 *    refcache_page_destroy.
 *
 *  - The pipelined API (refcache_client_send_* + refcache_client_recv): send many requests
 *    without waiting; each gets the next id; refcache_client_recv returns the next
 *    reply, whatever its id, decoded into a view that borrows the client's
 *    reusable buffers (valid until the next call on this client). Do not mix
 *    blocking calls with requests still in flight: a blocking call discards
 *    the replies it does not wait for.
 *
 *    Requests sent this way are gathered, up to max_batch of them, into one
 *    frame (a RequestBatch; a lone one goes as a plain Request) and go out
 *    when the batch is full, at refcache_client_flush, or when the client is about
 *    to wait for replies (refcache_client_recv, any blocking call): as a pipelining
 *    Redis client writes its commands when it reads. The broker's replies to
 *    them come in batches too, which refcache_client_recv hands out one by one. A
 *    program that waits on refcache_client_socket itself calls refcache_client_flush
 *    first.
 *
 * Namespaces: every request carries the connection's namespace
 * (refcache_client_options_t.namespace_name); a task is visible only in the
 * namespace it was submitted in (elsewhere: NOT_FOUND, and cancel/delete
 * find nothing).
 *
 * A client is not thread-safe: use one per thread (several per process are
 * fine). Every call returns a status code (refcache.v1.Code: 0 = OK, > 0 the
 * broker's code) or a negative REFCACHE_E* library error; the Reply's message
 * is refcache_client_message(). */
#ifndef REFCACHE_H
#define REFCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* librefcache is built with -fvisibility=hidden: this marks what it exports. */
#ifndef REFCACHE_EXPORT
#define REFCACHE_EXPORT __attribute__((visibility("default")))
#endif

typedef struct refcache_client refcache_client_t;

/* Task states (refcache.v1.State; the library checks that the values match
 * the .proto's). */
enum {
    REFCACHE_STATE_UNSPECIFIED = 0,
    REFCACHE_STATE_PENDING = 1, /* accepted; queued, or waiting for a retry */
    REFCACHE_STATE_PROCESSING = 2,
    REFCACHE_STATE_COMPLETE = 3,
    REFCACHE_STATE_FAILED = 4,
    REFCACHE_STATE_CANCELLED = 5
};

/* Status codes (refcache.v1.Code, the broker's reply codes and a failed
 * task's error_code; same values as the .proto's, checked by the library). */
enum {
    REFCACHE_CODE_OK = 0,
    REFCACHE_CODE_CANCELLED = 1,
    REFCACHE_CODE_UNKNOWN = 2,
    REFCACHE_CODE_INVALID_ARGUMENT = 3,
    REFCACHE_CODE_DEADLINE_EXCEEDED = 4,
    REFCACHE_CODE_NOT_FOUND = 5,
    REFCACHE_CODE_ALREADY_EXISTS = 6,
    REFCACHE_CODE_PERMISSION_DENIED = 7,
    REFCACHE_CODE_RESOURCE_EXHAUSTED = 8,
    REFCACHE_CODE_FAILED_PRECONDITION = 9,
    REFCACHE_CODE_ABORTED = 10,
    REFCACHE_CODE_OUT_OF_RANGE = 11,
    REFCACHE_CODE_UNIMPLEMENTED = 12,
    REFCACHE_CODE_INTERNAL = 13,
    REFCACHE_CODE_UNAVAILABLE = 14,
    REFCACHE_CODE_DATA_LOSS = 15,
    REFCACHE_CODE_UNAUTHENTICATED = 16
};

/* Library errors (negative, so they never collide with a status code). */
enum {
    REFCACHE_ETIMEOUT = -1,    /* no matching reply within the timeout */
    REFCACHE_ETRANSPORT = -2,  /* ZeroMQ refused to send or receive */
    REFCACHE_EREPLY = -3,      /* a reply that is not a valid Reply, or the wrong body */
    REFCACHE_EINVAL = -4,      /* bad argument to the library */
    REFCACHE_ENOMEM = -5,      /* out of memory */
    REFCACHE_ECURVE = -6,      /* a CURVE certificate could not be loaded */
    REFCACHE_EINTR = -7,       /* interrupted by a signal (SIGINT/SIGTERM) */
    REFCACHE_EOUTOFORDER = -8, /* fetch_all: pages did not fit together */
    REFCACHE_EAGAIN = -9       /* the request could not be queued: no connection to the broker is
                                   up (e.g. its CURVE handshake was refused) or the send queue is full */
};

/* Requests the pipelined API gathers in one frame when max_batch is 0. */
#define REFCACHE_BATCH_DEFAULT 64

/* Longest ref_id the library keeps (the broker sends 32 hex characters). */
#define REFCACHE_REF_MAX 64

typedef struct {
    const char *endpoint; /* NULL: tcp://127.0.0.1:5570 */
    /* CURVE (both NULL: off). The client's certificate as zcert_save wrote it:
     * PATH (public) with PATH_secret beside it; either name may be given. */
    const char *curve_secret_file;
    const char *broker_public_file; /* the broker's public certificate */
    int sndhwm;                     /* ZMQ_SNDHWM; 0: unlimited (the default) */
    int rcvhwm;                     /* ZMQ_RCVHWM; 0: unlimited (the default) */
    /* The connection's namespace (NULL or "": the default one), copied by
     * refcache_client_new and sent on every request: submit (unless the submit
     * options name a namespace of their own), status, wait, fetch, cancel
     * and delete. The broker finds a task only in the namespace it was
     * submitted in; from any other one it answers NOT_FOUND. */
    const char *namespace_name;
    /* The most requests the pipelined API gathers in one frame; 0: 64 (the
     * default), 1: each request goes out alone, at once. */
    unsigned max_batch;
    /* By default a blocking call whose broker goes away and comes back (a
     * restart) before its reply sends its request again, with the same id,
     * within its timeout — Status, Wait, Fetch, Cancel, Delete, Stats, and a
     * Submit with a request_key, never one without. true: it only waits. */
    bool no_retry;
} refcache_client_options_t;

/* State of one task, as a view: its pointers borrow memory it does not own.
 * In a refcache_reply_t (refcache_client_recv) they borrow the client's
 * buffers, valid until the next call on the client; in a refcache_task_t they
 * point into that object. Keep one longer with refcache_task_dup. */
typedef struct {
    char ref_id[REFCACHE_REF_MAX + 1];
    int state;             /* refcache.v1.State */
    const uint8_t *result; /* inline result, or a preview if truncated */
    size_t result_len;
    uint64_t result_size;  /* the whole result's size */
    bool result_truncated; /* read the rest with fetch */
    uint64_t progress_done;
    uint64_t progress_total;
    uint32_t attempt;
    int error_code;    /* refcache.v1.Code, for FAILED and CANCELLED */
    const char *error; /* "" when none */
    const char *function;
    const char *namespace_name;
    uint64_t created_at_us;
    uint64_t started_at_us;
    uint64_t finished_at_us;
    uint64_t stopped_at_us;
    uint64_t expires_at_us;
    uint32_t max_retries;
    bool ever_started;
    bool cache_hit;    /* Submit only */
    bool deduplicated; /* Submit only */
    bool replayed;     /* Submit only: its request_key named an earlier Submit, whose handle this is */
} refcache_task_view_t;

/* A task's state the caller owns: what the blocking calls hand out. One
 * allocation; info's pointers point into it. Free with refcache_task_destroy. */
typedef struct refcache_task {
    refcache_task_view_t info;
} refcache_task_t;

/* One Fetch page, as a view (the same borrowing rule as refcache_task_view_t). */
typedef struct {
    const uint8_t *data;
    size_t len;
    uint64_t offset;
    uint64_t total_size;
} refcache_page_view_t;

/* A page the caller owns (refcache_client_fetch); info.data points into it.
 * Free with refcache_page_destroy. */
typedef struct refcache_page {
    refcache_page_view_t info;
} refcache_page_t;

/* Broker counters (StatsReply). */
typedef struct {
    uint64_t tasks_pending, tasks_processing, tasks_complete, tasks_failed, tasks_cancelled;
    uint64_t queue_depth, workers, workers_busy, cache_bytes, cache_entries;
    uint64_t submitted_total, completed_total, failed_total, cancelled_total;
    uint64_t cache_hits_total, dedup_total, expired_total, evicted_total, retries_total;
    uint64_t workers_lost_total, bad_requests_total, bad_worker_msgs_total, stale_msgs_total;
    uint64_t dropped_replies_total, waiters, rss_bytes, uptime_ms, requests_total;
    uint64_t resource_exhausted_total, deadline_exceeded_total;
    uint64_t reannounces_total; /* Reannounces sent to workers the broker did not know */
    uint64_t handed_back_total; /* tasks given back by workers that never started them (no attempt counted) */
    bool draining;              /* the broker is stopping: Submits are refused UNAVAILABLE */
    char version[64];
    /* The durable store (--store); zero and "" for a memory-only broker. */
    char store_path[256];
    uint64_t store_records;               /* keys with a value in the store */
    uint64_t store_file_bytes;            /* the database file and its WAL */
    uint64_t store_records_written_total; /* records committed */
    uint64_t store_commits_total;         /* group commits */
    uint64_t store_queued_bytes;          /* handed to the store's writer, not yet committed */
    uint64_t store_max_commit_us;         /* the longest commit so far */
    char store_error[256];                /* why writes fail now ("" while they work) */
} refcache_stats_t;

typedef struct {
    const char *key;
    const char *value;
} refcache_param_t;

/* Everything a SubmitRequest carries besides the function name; zero-init
 * (or refcache_submit_options_init) means the broker's defaults. */
typedef struct {
    const refcache_param_t *params;
    size_t param_count;
    const void *payload;
    size_t payload_len;
    uint32_t async_timeout_ms;
    uint32_t deadline_ms;
    uint32_t max_retries;
    uint32_t ttl_s;
    /* NULL or "": the connection's namespace (refcache_client_options_t); a
     * non-empty name wins over it for this submit. */
    const char *namespace_name;
    bool no_cache;
    /* NULL or "": none. An idempotency key (up to 128 bytes): the same
     * Submit sent again with the same key (same owner, same namespace) while
     * the first one's handle exists gets that handle back (its reply says
     * `replayed`) instead of starting anything, also after a broker restart
     * with a store. The client library re-sends such a Submit by itself when
     * the broker went away. */
    const char *request_key;
} refcache_submit_options_t;

typedef enum {
    REFCACHE_REPLY_NONE = 0, /* no body (an error reply) */
    REFCACHE_REPLY_SUBMIT,
    REFCACHE_REPLY_TASK, /* Status and Wait */
    REFCACHE_REPLY_FETCH,
    REFCACHE_REPLY_CANCEL,
    REFCACHE_REPLY_DELETE,
    REFCACHE_REPLY_STATS,
    REFCACHE_REPLY_LIST,    /* read with refcache_client_list */
    REFCACHE_REPLY_WORKERS, /* read with refcache_client_workers */
    REFCACHE_REPLY_EVENT,   /* one event of a watch */
    REFCACHE_REPLY_METRICS  /* read with refcache_client_metrics */
} refcache_reply_kind_t;

/* Kinds of watch events (refcache.v1.EventKind). */
enum {
    REFCACHE_EVENT_TRANSITION = 0, /* a task changed (or an event applied to it) */
    REFCACHE_EVENT_WATCHING = 1,   /* the first: the watch is on */
    REFCACHE_EVENT_LOST = 2,       /* `lost` events were dropped before this one (the watcher was slow) */
    REFCACHE_EVENT_HEARTBEAT = 3,  /* nothing happened for a while */
    REFCACHE_EVENT_END = 4         /* the last: stopped (code OK) or dropped as too slow */
};

/* One event of a watch, as a view (the borrowing rule of refcache_reply_t).
 * old_state / new_state REFCACHE_STATE_UNSPECIFIED mean "not there": before
 * a submit, after the record went. */
typedef struct {
    int kind; /* REFCACHE_EVENT_* */
    const char *ref_id, *function, *namespace_name;
    int old_state, new_state;
    const char *event; /* submit, dispatch, started, progress, result, failure, cancel, cancel_ack, ... */
    uint32_t attempt;
    const char *worker_id; /* "" when none */
    int code;              /* the code the task recorded, or END's reason */
    const char *client;    /* who asked (submit, cancel, delete): a CURVE key's name or "conn:<hex>" */
    bool stop_confirmed;   /* cancel_ack: the worker confirmed that it stopped */
    uint64_t at_us, lost, progress_done, progress_total;
} refcache_event_t;

/* A decoded reply from refcache_client_recv; everything in it borrows the client's
 * buffers and is valid until the next call on the client. */
typedef struct {
    uint64_t id;
    int code;
    const char *message;
    refcache_reply_kind_t kind;
    refcache_task_view_t task;  /* REFCACHE_REPLY_SUBMIT, REFCACHE_REPLY_TASK */
    refcache_page_view_t fetch; /* REFCACHE_REPLY_FETCH */
    bool cancelled;             /* REFCACHE_REPLY_CANCEL */
    int cancel_state;           /* REFCACHE_REPLY_CANCEL */
    bool found;                 /* REFCACHE_REPLY_DELETE */
    refcache_stats_t stats;     /* REFCACHE_REPLY_STATS */
    refcache_event_t event;     /* REFCACHE_REPLY_EVENT */
    const void *body_;          /* internal: LIST, WORKERS, METRICS as decoded */
    /* How many numbers of the request the broker used clamped to its
     * limits (a TTL, a timeout, a page length above them): the message
     * names each, with the value used. */
    uint32_t clamped;
} refcache_reply_t;

/* Connection */

/* Fills options with the defaults. */
REFCACHE_EXPORT void refcache_client_options_init(refcache_client_options_t *options);

/* Creates a DEALER socket connected to the broker (connecting is
 * asynchronous: the first call waits for it). NULL with a one-line message
 * in errbuf on failure (bad endpoint, unreadable certificate). */
REFCACHE_EXPORT refcache_client_t *refcache_client_new(const refcache_client_options_t *options, char *errbuf,
                                                       size_t errlen);

/* Closes the connection (dropping what is in flight) and frees the client;
 * accepts NULL and clears the caller's pointer. */
REFCACHE_EXPORT void refcache_client_destroy(refcache_client_t **self_p);

/* Text for a status code (its name, "NOT_FOUND") or a library error. */
REFCACHE_EXPORT const char *refcache_strerror(int rc);

/* The last reply's message ("" if none), owned by the client, valid until
 * the next call. */
REFCACHE_EXPORT const char *refcache_client_message(refcache_client_t *self);

/* Replies that arrived with an id nobody waited for (late or unknown). */
REFCACHE_EXPORT uint64_t refcache_client_discarded(refcache_client_t *self);

/* Blocking API. timeout_ms is how long to wait for the reply; Submit with an
 * async timeout and Wait add their own hold time to it. */

/* Fills options with zeros (every field: the broker's default). */
REFCACHE_EXPORT void refcache_submit_options_init(refcache_submit_options_t *options);

/* The blocking calls that answer with a task or a page set *task_p or
 * *page_p (when not NULL) to a new object the caller frees, whenever the
 * reply carried one, and to NULL otherwise (an error reply, a library error);
 * the return value is the reply's code either way. */

/* Submits function with options (NULL: defaults); *task_p: the new task. */
REFCACHE_EXPORT int refcache_client_submit(refcache_client_t *self, const char *function,
                                           const refcache_submit_options_t *options, refcache_task_t **task_p,
                                           int timeout_ms);

/* The calls below that name a task by ref_id look it up in the connection's
 * namespace: a task submitted in another one answers NOT_FOUND. */

/* Reads a task's state into *task_p. */
REFCACHE_EXPORT int refcache_client_status(refcache_client_t *self, const char *ref_id,
                                           refcache_task_t **task_p, int timeout_ms);

/* Long-polls up to wait_ms for the task to be terminal; *task_p: its state. */
REFCACHE_EXPORT int refcache_client_wait(refcache_client_t *self, const char *ref_id, uint32_t wait_ms,
                                         refcache_task_t **task_p, int timeout_ms);

/* Reads one page of a result (length 0: the broker's page size) into *page_p. */
REFCACHE_EXPORT int refcache_client_fetch(refcache_client_t *self, const char *ref_id, uint64_t offset,
                                          uint32_t length, refcache_page_t **page_p, int timeout_ms);

/* Reads a whole result page by page (page_len 0: the broker's page size) into
 * a malloc'd buffer the caller frees; timeout_ms applies to each page. */
REFCACHE_EXPORT int refcache_client_fetch_all(refcache_client_t *self, const char *ref_id, uint32_t page_len,
                                              uint8_t **data, size_t *len, int timeout_ms);

/* Cancels a task; *cancelled is true only if this call cancelled it, *state
 * is its state now (either may be NULL). */
REFCACHE_EXPORT int refcache_client_cancel(refcache_client_t *self, const char *ref_id, bool *cancelled,
                                           int *state, int timeout_ms);

/* Drops a terminal task and its result; *found tells whether it existed. */
REFCACHE_EXPORT int refcache_client_delete(refcache_client_t *self, const char *ref_id, bool *found,
                                           int timeout_ms);

/* Reads the broker's counters. */
REFCACHE_EXPORT int refcache_client_stats(refcache_client_t *self, refcache_stats_t *stats, int timeout_ms);

/* Seeing inside. Under CURVE, List and watches show a client only its own
 * tasks, and Workers needs an admin key (the broker's --admin-allowed), which
 * also sees every task; without CURVE everything is visible. */

/* A bit per task state, for refcache_list_options_t.states. */
#define REFCACHE_STATE_BIT(state) (1u << (state))

/* What List returns: zero-init (or refcache_list_options_init) is the
 * newest 100 tasks of the connection's namespace, in every state. */
typedef struct {
    unsigned states;            /* REFCACHE_STATE_BIT(s) | ...; 0: every state */
    const char *function;       /* NULL or "": every function */
    bool all_namespaces;        /* every namespace, not only the connection's */
    uint64_t created_after_us;  /* only tasks accepted after (0: no bound) */
    uint64_t created_before_us; /* only tasks accepted before (0: no bound) */
    uint32_t limit;             /* tasks per page, at most 1000; 0: 100 */
    const char *cursor;         /* NULL or "": from the newest; else a page's next_cursor */
    const char *ref_id;         /* NULL or "": every task; else only this one (a lookup: with
                                   all_namespaces, in whatever namespace it is) */
} refcache_list_options_t;

/* One page of tasks, newest first (their views carry no result bytes, only
 * result_size). A page may hold fewer than `limit` tasks yet have a
 * next_cursor: the broker looks at a bounded number of records per call;
 * call again with next_cursor until it is "". Free with
 * refcache_task_list_destroy. */
typedef struct refcache_task_list {
    refcache_task_view_t *tasks;
    size_t count;
    char next_cursor[64]; /* "" when nothing older is left */
    uint64_t scanned;     /* records the broker looked at */
} refcache_task_list_t;

/* One worker thread as the broker sees it. */
typedef struct {
    const char *worker_id;
    const char *host; /* "" if it did not say */
    uint32_t pid;     /* 0 if it did not say */
    const char *const *functions;
    size_t function_count;
    uint32_t credit, tasks_held;
    uint64_t joined_at_us, last_heard_at_us, tasks_ended;
    bool ready; /* seen on both channels: it can take tasks */
} refcache_worker_info_t;

/* Free with refcache_worker_list_destroy. */
typedef struct refcache_worker_list {
    refcache_worker_info_t *workers;
    size_t count;
} refcache_worker_list_t;

/* A histogram in microseconds: counts[i] tasks fell in (bounds_us[i-1],
 * bounds_us[i]] of its refcache_metrics_t; the last count is above every
 * bound (counts are not cumulative). */
typedef struct {
    const uint64_t *counts;
    size_t count_n;
    uint64_t sum_us, count;
} refcache_histogram_t;

typedef struct {
    const char *function;
    uint64_t queued; /* PENDING in its queue now */
    refcache_histogram_t queue_time, run_time, cancel_stop_time;
} refcache_function_metrics_t;

/* Per-function histograms. Free with refcache_metrics_destroy. */
typedef struct refcache_metrics {
    const uint64_t *bounds_us;
    size_t bound_count;
    refcache_function_metrics_t *functions;
    size_t function_count;
} refcache_metrics_t;

/* What a watch passes: zero-init is every event of the connection's
 * namespace (the caller's own tasks under CURVE). */
typedef struct {
    const char *ref_id;   /* NULL or "": every task */
    const char *function; /* NULL or "": every function */
    bool all_namespaces;
    uint32_t window; /* events it may be sent before acknowledging; 0: 1024, at most 4096 */
} refcache_watch_options_t;

REFCACHE_EXPORT void refcache_list_options_init(refcache_list_options_t *options);

/* One page of tasks into *list_p (NULL on an error reply). */
REFCACHE_EXPORT int refcache_client_list(refcache_client_t *self, const refcache_list_options_t *options,
                                         refcache_task_list_t **list_p, int timeout_ms);
REFCACHE_EXPORT void refcache_task_list_destroy(refcache_task_list_t **self_p);

/* The broker's worker threads into *list_p. */
REFCACHE_EXPORT int refcache_client_workers(refcache_client_t *self, refcache_worker_list_t **list_p,
                                            int timeout_ms);
REFCACHE_EXPORT void refcache_worker_list_destroy(refcache_worker_list_t **self_p);

/* Per-function histograms of queue, run and cancel-to-stop time into *metrics_p. */
REFCACHE_EXPORT int refcache_client_metrics(refcache_client_t *self, refcache_metrics_t **metrics_p,
                                            int timeout_ms);
REFCACHE_EXPORT void refcache_metrics_destroy(refcache_metrics_t **self_p);

/* Starts a watch (one per client at a time) and waits for the broker to
 * confirm it: from then on every transition that passes the options comes
 * as an event. Read them with refcache_client_watch_next, which also
 * acknowledges them (the broker sends a watcher at most its window ahead;
 * beyond, events are dropped and a LOST event says how many). Other calls
 * on the client meanwhile discard events. */
REFCACHE_EXPORT int refcache_client_watch(refcache_client_t *self, const refcache_watch_options_t *options,
                                          int timeout_ms);

/* The next event of the watch into *event (a view valid until the next
 * call); REFCACHE_ETIMEOUT if none came in timeout_ms. After an END event
 * the watch is over. */
REFCACHE_EXPORT int refcache_client_watch_next(refcache_client_t *self, refcache_event_t *event,
                                               int timeout_ms);

/* Ends the watch: the broker sends its END event, then answers. */
REFCACHE_EXPORT int refcache_client_unwatch(refcache_client_t *self, int timeout_ms);

/* A copy of a view that the caller owns (e.g. to keep a pipelined reply's
 * task past the next call); NULL on out of memory. */
REFCACHE_EXPORT refcache_task_t *refcache_task_dup(const refcache_task_view_t *view);

/* Frees a task; accepts NULL and clears the caller's pointer. */
REFCACHE_EXPORT void refcache_task_destroy(refcache_task_t **self_p);

/* A copy of a page view that the caller owns; NULL on out of memory. */
REFCACHE_EXPORT refcache_page_t *refcache_page_dup(const refcache_page_view_t *view);

/* Frees a page; accepts NULL and clears the caller's pointer. */
REFCACHE_EXPORT void refcache_page_destroy(refcache_page_t **self_p);

/* Pipelined API: each send returns 0 and the request's id in *id (may be
 * NULL), or a negative error; it never blocks on the network (HWMs are
 * unlimited by default). Each request carries the connection's namespace,
 * like the blocking calls. The request may wait in the client's batch until
 * the batch is full or flushed (see the top of this file); the send that
 * fills the batch sends it, and if that fails (REFCACHE_EAGAIN: no
 * connection is up, or the send queue is full), its own request is taken
 * back, the others stay queued, and the error is returned. */

REFCACHE_EXPORT int refcache_client_send_submit(refcache_client_t *self, const char *function,
                                                const refcache_submit_options_t *options, uint64_t *id);
REFCACHE_EXPORT int refcache_client_send_status(refcache_client_t *self, const char *ref_id, uint64_t *id);
REFCACHE_EXPORT int refcache_client_send_wait(refcache_client_t *self, const char *ref_id, uint32_t wait_ms,
                                              uint64_t *id);
REFCACHE_EXPORT int refcache_client_send_fetch(refcache_client_t *self, const char *ref_id, uint64_t offset,
                                               uint32_t length, uint64_t *id);
REFCACHE_EXPORT int refcache_client_send_cancel(refcache_client_t *self, const char *ref_id, uint64_t *id);
REFCACHE_EXPORT int refcache_client_send_delete(refcache_client_t *self, const char *ref_id, uint64_t *id);
REFCACHE_EXPORT int refcache_client_send_stats(refcache_client_t *self, uint64_t *id);

/* Sends the requests gathered so far (nothing if none): 0, or
 * REFCACHE_EAGAIN / _ETRANSPORT / _ENOMEM, and then they stay queued. */
REFCACHE_EXPORT int refcache_client_flush(refcache_client_t *self);

/* Receives the next reply, whatever its id, into reply (a view into the
 * client's buffers, valid until the next call), after sending the gathered
 * requests. Returns 0, or REFCACHE_ETIMEOUT / _ETRANSPORT / _EREPLY / _EINTR
 * (or an error of refcache_client_flush). reply->code is the broker's code. No
 * allocation per reply once the buffers have grown. */
REFCACHE_EXPORT int refcache_client_recv(refcache_client_t *self, refcache_reply_t *reply, int timeout_ms);

/* The underlying ZeroMQ socket (void *), e.g. for zmq_poll over several
 * clients; do not read or write it directly. */
REFCACHE_EXPORT void *refcache_client_socket(refcache_client_t *self);

#endif
