/* rc_client: the refcache C client library — one DEALER connection to the
 * broker's clients endpoint.
 *
 * Two ways to use a connection:
 *
 *  - Blocking calls (rc_client_submit ... rc_client_stats): each sends one
 *    Request and waits for the Reply with the same id, up to a timeout.
 *    Replies with any other id (e.g. the late reply to an earlier call that
 *    timed out) are discarded and counted. Results land in plain structs
 *    owned by the caller (free them with rc_task_info_free/rc_fetch_free).
 *
 *  - The pipelined API (rc_client_send_* + rc_client_recv): send many requests
 *    without waiting; each gets the next id; rc_client_recv returns the next
 *    reply, whatever its id, decoded into a view that borrows the client's
 *    reusable buffers (valid until the next call on this client). Do not mix
 *    blocking calls with requests still in flight: a blocking call discards
 *    the replies it does not wait for.
 *
 *    Requests sent this way are gathered, up to max_batch of them, into one
 *    frame (a RequestBatch; a lone one goes as a plain Request) and go out
 *    when the batch is full, at rc_client_flush, or when the client is about
 *    to wait for replies (rc_client_recv, any blocking call): as a pipelining
 *    Redis client writes its commands when it reads. The broker's replies to
 *    them come in batches too, which rc_client_recv hands out one by one. A
 *    program that waits on rc_client_socket itself calls rc_client_flush
 *    first.
 *
 * Namespaces: every request carries the connection's namespace
 * (rc_client_options_t.namespace_name); a task is visible only in the
 * namespace it was submitted in (elsewhere: NOT_FOUND, and cancel/delete
 * find nothing).
 *
 * A client is not thread-safe: use one per thread (several per process are
 * fine). Every call returns a status code (refcache.v1.Code: 0 = OK, > 0 the
 * broker's code) or a negative RC_CLIENT_E* library error; the Reply's message
 * is rc_client_message(). */
#ifndef RC_CLIENT_H
#define RC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rc_client rc_client_t;

/* Library errors (negative, so they never collide with a status code). */
enum {
    RC_CLIENT_ETIMEOUT = -1,    /* no matching reply within the timeout */
    RC_CLIENT_ETRANSPORT = -2,  /* ZeroMQ refused to send or receive */
    RC_CLIENT_EREPLY = -3,      /* a reply that is not a valid Reply, or the wrong body */
    RC_CLIENT_EINVAL = -4,      /* bad argument to the library */
    RC_CLIENT_ENOMEM = -5,      /* out of memory */
    RC_CLIENT_ECURVE = -6,      /* a CURVE certificate could not be loaded */
    RC_CLIENT_EINTR = -7,       /* interrupted by a signal (SIGINT/SIGTERM) */
    RC_CLIENT_EOUTOFORDER = -8, /* fetch_all: pages did not fit together */
    RC_CLIENT_EAGAIN = -9       /* the request could not be queued: no connection to the broker is
                                   up (e.g. its CURVE handshake was refused) or the send queue is full */
};

/* Requests the pipelined API gathers in one frame when max_batch is 0. */
#define RC_CLIENT_BATCH_DEFAULT 64

/* Longest ref_id the library keeps (the broker sends 32 hex characters). */
#define RC_CLIENT_REF_MAX 64

typedef struct {
    const char *endpoint; /* NULL: tcp://127.0.0.1:5570 */
    /* CURVE (both NULL: off). The client's certificate as zcert_save wrote it:
     * PATH (public) with PATH_secret beside it; either name may be given. */
    const char *curve_secret_file;
    const char *broker_public_file; /* the broker's public certificate */
    int sndhwm;                     /* ZMQ_SNDHWM; 0: unlimited (the default) */
    int rcvhwm;                     /* ZMQ_RCVHWM; 0: unlimited (the default) */
    /* The connection's namespace (NULL or "": the default one), copied by
     * rc_client_new and sent on every request: submit (unless the submit
     * options name a namespace of their own), status, wait, fetch, cancel
     * and delete. The broker finds a task only in the namespace it was
     * submitted in; from any other one it answers NOT_FOUND. */
    const char *namespace_name;
    /* The most requests the pipelined API gathers in one frame; 0: 64 (the
     * default), 1: each request goes out alone, at once. */
    unsigned max_batch;
} rc_client_options_t;

/* State of one task. Pointers either borrow the client's buffers (views
 * filled by rc_client_recv) or point into one block the struct owns (filled
 * by a blocking call); rc_task_info_free handles both. */
typedef struct {
    char ref_id[RC_CLIENT_REF_MAX + 1];
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
    void *owned_;      /* internal: the block a blocking call allocated */
} rc_task_info_t;

/* One Fetch page (same ownership rule as rc_task_info_t). */
typedef struct {
    const uint8_t *data;
    size_t len;
    uint64_t offset;
    uint64_t total_size;
    void *owned_;
} rc_fetch_t;

/* Broker counters (StatsReply). */
typedef struct {
    uint64_t tasks_pending, tasks_processing, tasks_complete, tasks_failed, tasks_cancelled;
    uint64_t queue_depth, workers, workers_busy, cache_bytes, cache_entries;
    uint64_t submitted_total, completed_total, failed_total, cancelled_total;
    uint64_t cache_hits_total, dedup_total, expired_total, evicted_total, retries_total;
    uint64_t workers_lost_total, bad_requests_total, bad_worker_msgs_total, stale_msgs_total;
    uint64_t dropped_replies_total, waiters, rss_bytes, uptime_ms, requests_total;
    uint64_t resource_exhausted_total, deadline_exceeded_total;
    char version[64];
} rc_stats_t;

typedef struct {
    const char *key;
    const char *value;
} rc_param_t;

/* Everything a SubmitRequest carries besides the function name; zero-init
 * (or rc_submit_options_init) means the broker's defaults. */
typedef struct {
    const rc_param_t *params;
    size_t param_count;
    const void *payload;
    size_t payload_len;
    uint32_t async_timeout_ms;
    uint32_t deadline_ms;
    uint32_t max_retries;
    uint32_t ttl_s;
    /* NULL or "": the connection's namespace (rc_client_options_t); a
     * non-empty name wins over it for this submit. */
    const char *namespace_name;
    bool no_cache;
} rc_submit_options_t;

typedef enum {
    RC_REPLY_NONE = 0, /* no body (an error reply) */
    RC_REPLY_SUBMIT,
    RC_REPLY_TASK, /* Status and Wait */
    RC_REPLY_FETCH,
    RC_REPLY_CANCEL,
    RC_REPLY_DELETE,
    RC_REPLY_STATS
} rc_reply_kind_t;

/* A decoded reply from rc_client_recv; everything in it borrows the client's
 * buffers and is valid until the next call on the client. */
typedef struct {
    uint64_t id;
    int code;
    const char *message;
    rc_reply_kind_t kind;
    rc_task_info_t task; /* RC_REPLY_SUBMIT, RC_REPLY_TASK */
    rc_fetch_t fetch;    /* RC_REPLY_FETCH */
    bool cancelled;      /* RC_REPLY_CANCEL */
    int cancel_state;    /* RC_REPLY_CANCEL */
    bool found;          /* RC_REPLY_DELETE */
    rc_stats_t stats;    /* RC_REPLY_STATS */
} rc_reply_t;

/* Connection */

/* Fills options with the defaults. */
void rc_client_options_init(rc_client_options_t *options);

/* Creates a DEALER socket connected to the broker (connecting is
 * asynchronous: the first call waits for it). NULL with a one-line message
 * in errbuf on failure (bad endpoint, unreadable certificate). */
rc_client_t *rc_client_new(const rc_client_options_t *options, char *errbuf, size_t errlen);

/* Closes the connection (dropping what is in flight) and frees the client;
 * accepts NULL and clears the caller's pointer. */
void rc_client_destroy(rc_client_t **self_p);

/* Text for a status code (its name, "NOT_FOUND") or a library error. */
const char *rc_client_strerror(int rc);

/* The last reply's message ("" if none), owned by the client, valid until
 * the next call. */
const char *rc_client_message(rc_client_t *self);

/* Replies that arrived with an id nobody waited for (late or unknown). */
uint64_t rc_client_discarded(rc_client_t *self);

/* Blocking API. timeout_ms is how long to wait for the reply; Submit with an
 * async timeout and Wait add their own hold time to it. */

/* Fills options with zeros (every field: the broker's default). */
void rc_submit_options_init(rc_submit_options_t *options);

/* Submits function with options (NULL: defaults); fills info (caller frees). */
int rc_client_submit(rc_client_t *self, const char *function, const rc_submit_options_t *options,
                     rc_task_info_t *info, int timeout_ms);

/* The calls below that name a task by ref_id look it up in the connection's
 * namespace: a task submitted in another one answers NOT_FOUND. */

/* Reads a task's state into info (caller frees). */
int rc_client_status(rc_client_t *self, const char *ref_id, rc_task_info_t *info, int timeout_ms);

/* Long-polls up to wait_ms for the task to be terminal; fills info. */
int rc_client_wait(rc_client_t *self, const char *ref_id, uint32_t wait_ms, rc_task_info_t *info,
                   int timeout_ms);

/* Reads one page of a result (length 0: the broker's page size); fills page. */
int rc_client_fetch(rc_client_t *self, const char *ref_id, uint64_t offset, uint32_t length, rc_fetch_t *page,
                    int timeout_ms);

/* Reads a whole result page by page (page_len 0: the broker's page size) into
 * a malloc'd buffer the caller frees; timeout_ms applies to each page. */
int rc_client_fetch_all(rc_client_t *self, const char *ref_id, uint32_t page_len, uint8_t **data, size_t *len,
                        int timeout_ms);

/* Cancels a task; *cancelled is true only if this call cancelled it, *state
 * is its state now (either may be NULL). */
int rc_client_cancel(rc_client_t *self, const char *ref_id, bool *cancelled, int *state, int timeout_ms);

/* Drops a terminal task and its result; *found tells whether it existed. */
int rc_client_delete(rc_client_t *self, const char *ref_id, bool *found, int timeout_ms);

/* Reads the broker's counters. */
int rc_client_stats(rc_client_t *self, rc_stats_t *stats, int timeout_ms);

/* Frees what a blocking call stored in info and zeroes it; accepts NULL. */
void rc_task_info_free(rc_task_info_t *info);

/* Frees what a blocking call stored in page and zeroes it; accepts NULL. */
void rc_fetch_free(rc_fetch_t *page);

/* Pipelined API: each send returns 0 and the request's id in *id (may be
 * NULL), or a negative error; it never blocks on the network (HWMs are
 * unlimited by default). Each request carries the connection's namespace,
 * like the blocking calls. The request may wait in the client's batch until
 * the batch is full or flushed (see the top of this file); the send that
 * fills the batch sends it, and if that fails (RC_CLIENT_EAGAIN: no
 * connection is up, or the send queue is full), its own request is taken
 * back, the others stay queued, and the error is returned. */

int rc_client_send_submit(rc_client_t *self, const char *function, const rc_submit_options_t *options,
                          uint64_t *id);
int rc_client_send_status(rc_client_t *self, const char *ref_id, uint64_t *id);
int rc_client_send_wait(rc_client_t *self, const char *ref_id, uint32_t wait_ms, uint64_t *id);
int rc_client_send_fetch(rc_client_t *self, const char *ref_id, uint64_t offset, uint32_t length,
                         uint64_t *id);
int rc_client_send_cancel(rc_client_t *self, const char *ref_id, uint64_t *id);
int rc_client_send_delete(rc_client_t *self, const char *ref_id, uint64_t *id);
int rc_client_send_stats(rc_client_t *self, uint64_t *id);

/* Sends the requests gathered so far (nothing if none): 0, or
 * RC_CLIENT_EAGAIN / _ETRANSPORT / _ENOMEM, and then they stay queued. */
int rc_client_flush(rc_client_t *self);

/* Receives the next reply, whatever its id, into reply (a view into the
 * client's buffers, valid until the next call), after sending the gathered
 * requests. Returns 0, or RC_CLIENT_ETIMEOUT / _ETRANSPORT / _EREPLY / _EINTR
 * (or an error of rc_client_flush). reply->code is the broker's code. No
 * allocation per reply once the buffers have grown. */
int rc_client_recv(rc_client_t *self, rc_reply_t *reply, int timeout_ms);

/* The underlying ZeroMQ socket (void *), e.g. for zmq_poll over several
 * clients; do not read or write it directly. */
void *rc_client_socket(rc_client_t *self);

#endif
