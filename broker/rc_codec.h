/* rc_codec: the broker's only contact with the generated protobuf structs.
 * It decodes client Requests and WorkerMessages into internal views (which
 * point into the decoded message until rc_codec_*_release) and encodes
 * Replies, Dispatches and control messages from internal types.
 *
 * Decoded messages live in arenas from rc_arena's process-wide pool (a few
 * static ones, reused, and a heap one when all are taken), so a decode costs
 * no malloc per field; anything an arena cannot hold is malloc'd and freed
 * at the release. Any number of decoded messages may be alive at once, on
 * any thread. The hot replies and the dispatch spec are encoded by hand,
 * byte for byte as protobuf-c would encode them (proto3: fields in number
 * order, defaults left out), with the field numbers of rc_fields.h.
 *
 * Its code is in three files along the channels: rc_codec_request.c
 * (client Requests in), rc_codec_reply.c (Replies out), rc_codec_worker.c
 * (worker and control messages in and out). */
#ifndef RC_CODEC_H
#define RC_CODEC_H

#include "rc_buf.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc_wire.h"

/* A decoded string: NUL-terminated at ptr[len] (len stops at the first NUL,
 * as protobuf-c's strings do), so it may also be used as a C string. */
typedef struct {
    const char *ptr;
    size_t len;
} rc_str_t;

typedef struct {
    const uint8_t *ptr;
    size_t len;
} rc_bytes_t;

/* Output buffers, reused across messages: rc_buf (proto/rc_buf.h). */

typedef enum {
    RC_REQ_SUBMIT,
    RC_REQ_STATUS,
    RC_REQ_WAIT,
    RC_REQ_FETCH,
    RC_REQ_CANCEL,
    RC_REQ_DELETE,
    RC_REQ_STATS,
    RC_REQ_BATCH, /* a RequestBatch: rc_codec_request_next gives each entry */
    RC_REQ_LIST,
    RC_REQ_WORKERS,
    RC_REQ_WATCH,
    RC_REQ_METRICS,
} rc_req_kind_t;

typedef struct {
    uint64_t id;
    rc_req_kind_t kind;
    rc_str_t ref_id;     /* status, wait, fetch, cancel, delete */
    uint32_t timeout_ms; /* wait */
    uint64_t offset;     /* fetch */
    uint32_t length;     /* fetch */
    rc_str_t ns;         /* every request but stats: the task's namespace */
    /* submit */
    rc_str_t function;
    rc_bytes_t payload;
    size_t n_params;
    uint32_t async_timeout_ms, deadline_ms, max_retries, ttl_s;
    bool no_cache;
    rc_str_t request_key; /* "": none */
    size_t n_entries;     /* batch: how many requests it holds */
    /* batch: the entries not yet taken, as a run of bytes (read in place)
     * or as decoded Requests (from protobuf-c, re-encoded one at a time) */
    const uint8_t *run_, *run_end_;
    size_t next_;
    void *pb_;    /* the decoded message */
    void *arena_; /* where it lives */
} rc_request_t;

/* Decodes a Request frame. 0, or -1 with a reason in *why (a static string);
 * either way rc_codec_request_release must follow (a Request without a body
 * fails but keeps its id for the error reply). */
int rc_codec_request(const uint8_t *data, size_t len, rc_request_t *req, const char **why);

/* Param i of a submit (0 <= i < n_params). */
void rc_codec_request_param(const rc_request_t *req, size_t i, rc_str_t *key, rc_str_t *value);

void rc_codec_request_release(rc_request_t *req);

/* The next entry of a batch (RC_REQ_BATCH): the bytes of one Request, for
 * rc_codec_request, in *entry, valid until the next call; they point into
 * the frame, or into scratch when the batch had an unusual shape. False
 * after the last (or out of memory). */
bool rc_codec_request_next(rc_request_t *req, rc_buf_t *scratch, rc_bytes_t *entry);

/* Encodes the submit's BrokerMessage{Dispatch} once, with room for the
 * attempt, which rc_codec_dispatch_set_attempt patches in place on every
 * (re)dispatch without re-encoding. Written into room when it fits in
 * room_len bytes (*spec is then room), else into a malloc'd block. */
int rc_codec_dispatch_spec(const rc_request_t *req, const char *ref_hex, uint8_t *room, size_t room_len,
                           uint8_t **spec, size_t *len);
void rc_codec_dispatch_set_attempt(uint8_t *spec, size_t len, uint32_t attempt);

/* A batch is its entries one after the other (each a key byte, a length
 * and a message) behind a head, the key and length of the batch field,
 * which rc_wire_head_before writes in the RC_BATCH_HEAD bytes of room left
 * in front of them. Several dispatches go in BrokerMessage{dispatches} (a
 * spec, which is a BrokerMessage{dispatch} (field 1), is byte for byte one
 * entry of a DispatchBatch (field 1)), several replies in Reply{batch}. */
#define RC_BATCH_HEAD        RC_WIRE_HEAD_MAX
#define RC_DISPATCHES_FIELD  RC_FIELD_BROKER_MESSAGE_DISPATCHES
#define RC_REPLY_BATCH_FIELD RC_FIELD_REPLY_BATCH

/* Appends reply (an encoded Reply) to buf as an entry of a ReplyBatch; 0 or
 * -1 (out of memory). */
int rc_codec_batch_entry(rc_buf_t *buf, const uint8_t *reply, size_t len);

/* The broker's internal view of a task, for TaskInfo. */
typedef struct rc_taskview {
    const char *ref_hex;
    int state;
    rc_bytes_t result; /* inline bytes or preview */
    uint64_t result_size;
    bool result_truncated;
    uint64_t progress_done, progress_total;
    uint32_t attempt, max_retries;
    int error_code;
    const char *error;
    const char *function, *ns;
    uint64_t created_at_us, started_at_us, finished_at_us, stopped_at_us, expires_at_us;
    bool ever_started;
} rc_taskview_t;

/* The StatsReply counters, named as in the .proto (one list, used both to
 * declare the view and to copy it into the message). */
#define RC_STATS_FIELDS(X)                                                                                   \
    X(tasks_pending)                                                                                         \
    X(tasks_processing)                                                                                      \
    X(tasks_complete)                                                                                        \
    X(tasks_failed)                                                                                          \
    X(tasks_cancelled)                                                                                       \
    X(queue_depth)                                                                                           \
    X(workers) X(workers_busy) X(cache_bytes) X(cache_entries) X(submitted_total) X(completed_total)         \
        X(failed_total) X(cancelled_total) X(cache_hits_total) X(dedup_total) X(expired_total)               \
            X(evicted_total) X(retries_total) X(workers_lost_total) X(bad_requests_total)                    \
                X(bad_worker_msgs_total) X(stale_msgs_total) X(dropped_replies_total) X(waiters)             \
                    X(rss_bytes) X(uptime_ms) X(requests_total) X(resource_exhausted_total)                  \
                        X(deadline_exceeded_total) X(reannounces_total) X(handed_back_total)                 \
                            X(store_records) X(store_file_bytes) X(store_records_written_total)              \
                                X(store_commits_total) X(store_queued_bytes) X(store_max_commit_us)

typedef struct {
#define RC_STATS_DECLARE(name) uint64_t name;
    RC_STATS_FIELDS(RC_STATS_DECLARE)
#undef RC_STATS_DECLARE
    const char *version;
    bool draining;
    const char *store_path, *store_error; /* NULL: "" */
} rc_statsview_t;

typedef enum {
    RC_REPLY_NONE,
    RC_REPLY_SUBMIT,
    RC_REPLY_TASK,
    RC_REPLY_FETCH,
    RC_REPLY_CANCEL,
    RC_REPLY_DELETE,
    RC_REPLY_STATS,
    RC_REPLY_LIST,
    RC_REPLY_WORKERS,
    RC_REPLY_METRICS,
} rc_reply_kind_t;

/* What a List, Workers or Metrics reply carries (rc_codec_observe). */
struct rc_obsreply {
    /* LIST */
    const struct rc_taskview *tasks;
    size_t n_tasks;
    const char *cursor;
    uint64_t scanned;
    /* WORKERS */
    const struct rc_workerview *workers;
    size_t n_workers;
    /* METRICS */
    const uint64_t *bounds_us;
    size_t n_bounds;
    const struct rc_fnmetricsview *fns;
    size_t n_fns;
};

/* A worker thread, for WorkerInfo. */
typedef struct rc_workerview {
    const char *worker_id, *host;
    uint32_t pid, credit, tasks_held;
    const char *const *functions;
    size_t n_functions;
    uint64_t joined_at_us, last_heard_at_us, tasks_ended;
    bool ready;
} rc_workerview_t;

/* A histogram, for Histogram; and a function's three, for FunctionMetrics. */
typedef struct {
    const uint64_t *counts;
    size_t n_counts;
    uint64_t sum_us, count;
} rc_histview_t;

typedef struct rc_fnmetricsview {
    const char *function;
    uint64_t queued;
    rc_histview_t queue_time, run_time, stop_time;
} rc_fnmetricsview_t;
/* A number a request asked for beyond a limit, and the one used. */
typedef struct {
    const char *field;
    uint64_t requested, used;
} rc_clamp_t;

typedef struct {
    uint64_t id;
    int code;
    const char *message;
    const rc_clamp_t *clamped; /* n_clamped of them */
    size_t n_clamped;
    rc_reply_kind_t kind;
    const rc_taskview_t *task;    /* SUBMIT, TASK */
    bool cache_hit, deduplicated; /* SUBMIT */
    bool replayed;                /* SUBMIT: the request_key named an earlier Submit */
    rc_bytes_t data;              /* FETCH */
    uint64_t total_size, offset;  /* FETCH */
    bool flag;                    /* CANCEL: cancelled; DELETE: found */
    int state;                    /* CANCEL */
    const rc_statsview_t *stats;
    const struct rc_obsreply *obs; /* LIST, WORKERS, METRICS */
} rc_reply_t;

/* Encodes a Reply into buf (replacing its contents). 0 or -1. */
int rc_codec_reply(rc_buf_t *buf, const rc_reply_t *reply);

typedef enum {
    RC_WMSG_READY,
    RC_WMSG_STARTED,
    RC_WMSG_PROGRESS,
    RC_WMSG_RESULT,
    RC_WMSG_FAILURE,
    RC_WMSG_CANCEL_ACK,
    RC_WMSG_HEARTBEAT,
    RC_WMSG_RESULTS,   /* a ResultBatch: rc_codec_wmsg_result reads each */
    RC_WMSG_HAND_BACK, /* held tasks given back (rc_codec_wmsg_task reads each); leaving: a goodbye */
} rc_wmsg_kind_t;

typedef struct {
    rc_wmsg_kind_t kind;
    rc_str_t ref_id;
    uint32_t attempt;
    uint64_t done, total;          /* progress */
    rc_bytes_t data;               /* result */
    int code;                      /* failure */
    rc_str_t message;              /* failure */
    bool retryable;                /* failure */
    bool started;                  /* cancel ack */
    uint32_t credit, heartbeat_ms; /* ready */
    uint32_t max_batch;            /* ready */
    size_t n_functions, n_cacheable;
    size_t n_results; /* results */
    /* ready: the worker's session (0: it does not say), and the session it
     * follows with the tasks of that one it started (rc_codec_wmsg_task) */
    uint64_t session, previous_session;
    rc_str_t previous_id;
    size_t n_tasks; /* ready: previous_started; hand_back: tasks */
    bool leaving;   /* hand_back */
    void *pb_;
    void *arena_;
} rc_wmsg_t;

/* Decodes a WorkerMessage frame. 0, or -1 with a reason in *why. */
int rc_codec_wmsg(const uint8_t *data, size_t len, rc_wmsg_t *msg, const char **why);

/* Result i (< n_results) of a ResultBatch, as a RC_WMSG_RESULT view that
 * borrows from msg. */
void rc_codec_wmsg_result(const rc_wmsg_t *msg, size_t i, rc_wmsg_t *result);

/* Function name i (i < n_functions) or cacheable name i (i < n_cacheable) of a Ready. */
rc_str_t rc_codec_wmsg_function(const rc_wmsg_t *msg, size_t i);
rc_str_t rc_codec_wmsg_cacheable(const rc_wmsg_t *msg, size_t i);

/* Task i (i < n_tasks) of a Ready's previous_started or a HandBack's tasks:
 * its ref_id and attempt. */
rc_str_t rc_codec_wmsg_task(const rc_wmsg_t *msg, size_t i, uint32_t *attempt);

/* Where a Ready's worker runs: its host name and process id. */
rc_str_t rc_codec_wmsg_host(const rc_wmsg_t *msg);
uint32_t rc_codec_wmsg_pid(const rc_wmsg_t *msg);

void rc_codec_wmsg_release(rc_wmsg_t *msg);

/* Decodes a ControlHello; 0 or -1. */
int rc_codec_control_hello(const uint8_t *data, size_t len);

/* Encodes a ControlMessage{CancelNotice}. */
int rc_codec_cancel_notice(rc_buf_t *buf, const char *ref_hex, uint32_t attempt, int reason);

/* Encodes a BrokerMessage{heartbeat}, {reannounce} or {stopping}. */
int rc_codec_broker_heartbeat(rc_buf_t *buf);
int rc_codec_broker_reannounce(rc_buf_t *buf);
int rc_codec_broker_stopping(rc_buf_t *buf, uint32_t drain_ms);

/* The List, Workers, Watch and Metrics parts of rc_codec_request and
 * rc_codec_reply (rc_codec_observe.c): fills req from a decoded Request of
 * one of those bodies (0, or -1 for another body); encodes a LIST, WORKERS
 * or METRICS reply. */
int rc_codec_request_observe(const void *pb_request, rc_request_t *req);

/* A List request's filters, read from the decoded request. */
typedef struct {
    uint32_t states; /* a bit per State (1u << state); 0: all; bit 31: one out of range */
    rc_str_t function, ns, cursor, ref_id;
    bool all_ns;
    uint64_t after_us, before_us;
    uint32_t limit;
} rc_listreq_t;

/* A Watch request, read from the decoded request. */
typedef struct {
    rc_str_t ref_id, function, ns;
    bool all_ns, stop;
    uint32_t window;
    uint64_t watch_id, acked;
} rc_watchreq_t;

void rc_codec_list_request(const rc_request_t *req, rc_listreq_t *l);
void rc_codec_watch_request(const rc_request_t *req, rc_watchreq_t *w);
int rc_codec_reply_observe(rc_buf_t *buf, const rc_reply_t *reply);

/* Event.kind (refcache.v1.EventKind). */
enum { RC_EVK_TRANSITION, RC_EVK_WATCHING, RC_EVK_LOST, RC_EVK_HEARTBEAT, RC_EVK_END };

/* One event of a watch's stream, for Event. */
typedef struct {
    int kind;
    const char *ref_hex, *function, *ns;
    int old_state, new_state;
    const char *event;
    uint32_t attempt;
    const char *worker_id;
    int code;
    const char *client;
    bool stop_confirmed;
    uint64_t at_us, lost, progress_done, progress_total;
} rc_eventview_t;

/* Encodes an Event's body (not yet a Reply) into buf, replacing it. 0 or -1. */
int rc_codec_event(rc_buf_t *buf, const rc_eventview_t *e);

/* Appends Reply{id, event} (ev: an Event's body from rc_codec_event) to buf
 * as an entry of a ReplyBatch; *reply_len is the Reply's own length (what a
 * lone one sends). 0 or -1 (out of memory). */
int rc_codec_event_entry(rc_buf_t *buf, uint64_t id, const uint8_t *ev, size_t len, size_t *reply_len);

/* How many decoded messages (and their arenas) are not yet released, in the
 * whole process: tests check that it returns to what it was. */
size_t rc_codec_live_messages(void);

/* What the codec reads and writes of each message, field by field, for
 * test_wire_drift (rc_wire.h): one list per file, ended by a zeroed entry. */
extern const rc_wire_cover_t rc_codec_request_covers[];
extern const rc_wire_cover_t rc_codec_reply_covers[];
extern const rc_wire_cover_t rc_codec_worker_covers[];
extern const rc_wire_cover_t rc_codec_observe_covers[];

#endif
