/* rc_client_codec: the client library's hand codec (see rc_client_codec.h):
 * Requests written, Replies read, with the field numbers of rc_fields.h. */
#include "rc_client_codec.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "rc_wire.h"
#include "refcache.pb-c.h"

static inline size_t s_len(const char *s)
{
    return s ? strlen(s) : 0;
}

/* ------------------------------------------------------------ requests */

#define SUBMIT(F) RC_FIELD_SUBMIT_REQUEST_##F
#define PARAM(F)  RC_FIELD_SUBMIT_REQUEST_PARAMS_ENTRY_##F

/* A params entry is a submessage {key, value}; protobuf-c leaves an empty
 * key or value out, as any proto3 string. */
static size_t s_param_size(const refcache_param_t *p)
{
    return rc_wire_sz_bytes(PARAM(KEY), strlen(p->key)) + rc_wire_sz_bytes(PARAM(VALUE), strlen(p->value));
}

static size_t s_payload_len(const refcache_submit_options_t *o)
{
    return o->payload ? o->payload_len : 0;
}

size_t rc_client_codec_submit_size(rc_client_codec_submit_t *s)
{
    const refcache_submit_options_t *o = s->options;
    s->function_len_ = strlen(s->function);
    s->ns_len_ = s_len(s->ns);
    s->key_len_ = s_len(o->request_key);
    size_t body =
        rc_wire_sz_bytes(SUBMIT(FUNCTION), s->function_len_) +
        rc_wire_sz_bytes(SUBMIT(PAYLOAD), s_payload_len(o)) +
        rc_wire_sz_varint(SUBMIT(ASYNC_TIMEOUT_MS), o->async_timeout_ms) +
        rc_wire_sz_varint(SUBMIT(DEADLINE_MS), o->deadline_ms) +
        rc_wire_sz_varint(SUBMIT(MAX_RETRIES), o->max_retries) + rc_wire_sz_varint(SUBMIT(TTL_S), o->ttl_s) +
        rc_wire_sz_bytes(SUBMIT(NAMESPACE), s->ns_len_) + rc_wire_sz_bool(SUBMIT(NO_CACHE), o->no_cache) +
        rc_wire_sz_bytes(SUBMIT(REQUEST_KEY), s->key_len_);
    for (size_t i = 0; i < o->param_count; i++)
        body += rc_wire_sz_msg(SUBMIT(PARAMS), s_param_size(&o->params[i]));
    s->body_len_ = body;
    return rc_wire_sz_varint(RC_FIELD_REQUEST_ID, s->id) + rc_wire_sz_msg(RC_FIELD_REQUEST_SUBMIT, body);
}

/* In field-number order, as protobuf-c writes them. */
uint8_t *rc_client_codec_submit_put(const rc_client_codec_submit_t *s, uint8_t *out)
{
    const refcache_submit_options_t *o = s->options;
    uint8_t *p = rc_wire_put_varint(out, RC_FIELD_REQUEST_ID, s->id);
    p = rc_wire_put_msg(p, RC_FIELD_REQUEST_SUBMIT, s->body_len_);
    p = rc_wire_put_bytes(p, SUBMIT(FUNCTION), s->function, s->function_len_);
    for (size_t i = 0; i < o->param_count; i++) {
        const refcache_param_t *e = &o->params[i];
        p = rc_wire_put_msg(p, SUBMIT(PARAMS), s_param_size(e));
        p = rc_wire_put_bytes(p, PARAM(KEY), e->key, strlen(e->key));
        p = rc_wire_put_bytes(p, PARAM(VALUE), e->value, strlen(e->value));
    }
    p = rc_wire_put_bytes(p, SUBMIT(PAYLOAD), o->payload, s_payload_len(o));
    p = rc_wire_put_varint(p, SUBMIT(ASYNC_TIMEOUT_MS), o->async_timeout_ms);
    p = rc_wire_put_varint(p, SUBMIT(DEADLINE_MS), o->deadline_ms);
    p = rc_wire_put_varint(p, SUBMIT(MAX_RETRIES), o->max_retries);
    p = rc_wire_put_varint(p, SUBMIT(TTL_S), o->ttl_s);
    p = rc_wire_put_bytes(p, SUBMIT(NAMESPACE), s->ns, s->ns_len_);
    p = rc_wire_put_bool(p, SUBMIT(NO_CACHE), o->no_cache);
    p = rc_wire_put_bytes(p, SUBMIT(REQUEST_KEY), o->request_key, s->key_len_);
    return p;
}

/* The fields of each body rc_client_codec_ref writes, in the order they are
 * written (field-number order): ref_id, the numbers, the namespace. */
typedef struct {
    uint32_t ref, num[2], ns;
    unsigned n_num;
} ref_fields_t;

static const ref_fields_t s_ref_fields[] = {
    [RC_CLIENT_CODEC_STATUS] = {RC_FIELD_STATUS_REQUEST_REF_ID, {0, 0}, RC_FIELD_STATUS_REQUEST_NAMESPACE, 0},
    [RC_CLIENT_CODEC_WAIT] = {RC_FIELD_WAIT_REQUEST_REF_ID,
                              {RC_FIELD_WAIT_REQUEST_TIMEOUT_MS, 0},
                              RC_FIELD_WAIT_REQUEST_NAMESPACE,
                              1},
    [RC_CLIENT_CODEC_FETCH] = {RC_FIELD_FETCH_REQUEST_REF_ID,
                               {RC_FIELD_FETCH_REQUEST_OFFSET, RC_FIELD_FETCH_REQUEST_LENGTH},
                               RC_FIELD_FETCH_REQUEST_NAMESPACE,
                               2},
    [RC_CLIENT_CODEC_CANCEL] = {RC_FIELD_CANCEL_REQUEST_REF_ID, {0, 0}, RC_FIELD_CANCEL_REQUEST_NAMESPACE, 0},
    [RC_CLIENT_CODEC_DELETE] = {RC_FIELD_DELETE_REQUEST_REF_ID, {0, 0}, RC_FIELD_DELETE_REQUEST_NAMESPACE, 0},
    [RC_CLIENT_CODEC_STATS] = {0, {0, 0}, 0, 0},
};
_Static_assert(RC_FIELD_WAIT_REQUEST_REF_ID < RC_FIELD_WAIT_REQUEST_TIMEOUT_MS &&
                   RC_FIELD_WAIT_REQUEST_TIMEOUT_MS < RC_FIELD_WAIT_REQUEST_NAMESPACE &&
                   RC_FIELD_FETCH_REQUEST_REF_ID < RC_FIELD_FETCH_REQUEST_OFFSET &&
                   RC_FIELD_FETCH_REQUEST_OFFSET < RC_FIELD_FETCH_REQUEST_LENGTH &&
                   RC_FIELD_FETCH_REQUEST_LENGTH < RC_FIELD_FETCH_REQUEST_NAMESPACE,
               "rc_client_codec_ref_put writes ref_id, the numbers and the namespace in this order");

size_t rc_client_codec_ref_size(rc_client_codec_ref_t *r)
{
    const ref_fields_t *f = &s_ref_fields[r->body];
    assert(r->n_num == f->n_num);
    r->ref_len_ = s_len(r->ref_id);
    r->ns_len_ = s_len(r->ns);
    size_t body = rc_wire_sz_bytes(f->ref, r->ref_len_) + rc_wire_sz_bytes(f->ns, r->ns_len_);
    for (unsigned i = 0; i < r->n_num; i++)
        body += rc_wire_sz_varint(f->num[i], r->num[i]);
    r->body_len_ = body;
    return rc_wire_sz_varint(RC_FIELD_REQUEST_ID, r->id) + rc_wire_sz_msg(r->body, body);
}

uint8_t *rc_client_codec_ref_put(const rc_client_codec_ref_t *r, uint8_t *out)
{
    const ref_fields_t *f = &s_ref_fields[r->body];
    uint8_t *p = rc_wire_put_varint(out, RC_FIELD_REQUEST_ID, r->id);
    p = rc_wire_put_msg(p, r->body, r->body_len_);
    p = rc_wire_put_bytes(p, f->ref, r->ref_id, r->ref_len_);
    for (unsigned i = 0; i < r->n_num; i++)
        p = rc_wire_put_varint(p, f->num[i], r->num[i]);
    return rc_wire_put_bytes(p, f->ns, r->ns, r->ns_len_);
}

/* ------------------------------------------------------------ replies: protobuf-c */

static int s_fill_task(refcache_task_view_t *t, const Refcache__V1__TaskInfo *ti)
{
    memset(t, 0, sizeof *t);
    if (!ti)
        return REFCACHE_EREPLY;
    size_t n = ti->ref_id ? strlen(ti->ref_id) : 0;
    if (n > REFCACHE_REF_MAX)
        return REFCACHE_EREPLY;
    if (n)
        memcpy(t->ref_id, ti->ref_id, n);
    t->ref_id[n] = '\0';
    t->state = ti->state;
    t->result = ti->result.data;
    t->result_len = ti->result.len;
    t->result_size = ti->result_size;
    t->result_truncated = ti->result_truncated;
    t->progress_done = ti->progress_done;
    t->progress_total = ti->progress_total;
    t->attempt = ti->attempt;
    t->error_code = ti->error_code;
    t->error = ti->error ? ti->error : "";
    t->function = ti->function ? ti->function : "";
    t->namespace_name = ti->namespace_ ? ti->namespace_ : "";
    t->created_at_us = ti->created_at_us;
    t->started_at_us = ti->started_at_us;
    t->finished_at_us = ti->finished_at_us;
    t->stopped_at_us = ti->stopped_at_us;
    t->expires_at_us = ti->expires_at_us;
    t->max_retries = ti->max_retries;
    t->ever_started = ti->ever_started;
    return 0;
}

static void s_fill_stats(refcache_stats_t *s, const Refcache__V1__StatsReply *r)
{
    s->tasks_pending = r->tasks_pending;
    s->tasks_processing = r->tasks_processing;
    s->tasks_complete = r->tasks_complete;
    s->tasks_failed = r->tasks_failed;
    s->tasks_cancelled = r->tasks_cancelled;
    s->queue_depth = r->queue_depth;
    s->workers = r->workers;
    s->workers_busy = r->workers_busy;
    s->cache_bytes = r->cache_bytes;
    s->cache_entries = r->cache_entries;
    s->submitted_total = r->submitted_total;
    s->completed_total = r->completed_total;
    s->failed_total = r->failed_total;
    s->cancelled_total = r->cancelled_total;
    s->cache_hits_total = r->cache_hits_total;
    s->dedup_total = r->dedup_total;
    s->expired_total = r->expired_total;
    s->evicted_total = r->evicted_total;
    s->retries_total = r->retries_total;
    s->workers_lost_total = r->workers_lost_total;
    s->bad_requests_total = r->bad_requests_total;
    s->bad_worker_msgs_total = r->bad_worker_msgs_total;
    s->stale_msgs_total = r->stale_msgs_total;
    s->dropped_replies_total = r->dropped_replies_total;
    s->waiters = r->waiters;
    s->rss_bytes = r->rss_bytes;
    s->uptime_ms = r->uptime_ms;
    s->requests_total = r->requests_total;
    s->resource_exhausted_total = r->resource_exhausted_total;
    s->deadline_exceeded_total = r->deadline_exceeded_total;
    s->reannounces_total = r->reannounces_total;
    s->handed_back_total = r->handed_back_total;
    s->draining = r->draining;
    snprintf(s->version, sizeof s->version, "%s", r->version ? r->version : "");
    snprintf(s->store_path, sizeof s->store_path, "%s", r->store_path ? r->store_path : "");
    s->store_records = r->store_records;
    s->store_file_bytes = r->store_file_bytes;
    s->store_records_written_total = r->store_records_written_total;
    s->store_commits_total = r->store_commits_total;
    s->store_queued_bytes = r->store_queued_bytes;
    s->store_max_commit_us = r->store_max_commit_us;
    snprintf(s->store_error, sizeof s->store_error, "%s", r->store_error ? r->store_error : "");
}

int rc_client_codec_task(refcache_task_view_t *t, const void *task_info)
{
    return s_fill_task(t, task_info);
}

/* The view of a Reply protobuf-c unpacked. */
static int s_fill_reply(refcache_reply_t *out, const Refcache__V1__Reply *r)
{
    memset(out, 0, sizeof *out);
    out->id = r->id;
    out->code = r->code;
    out->message = r->message ? r->message : "";
    out->clamped = (uint32_t) r->n_clamped;
    switch (r->body_case) {
    case REFCACHE__V1__REPLY__BODY_SUBMIT:
        out->kind = REFCACHE_REPLY_SUBMIT;
        if (!r->submit || s_fill_task(&out->task, r->submit->task) != 0)
            return REFCACHE_EREPLY;
        out->task.cache_hit = r->submit->cache_hit;
        out->task.deduplicated = r->submit->deduplicated;
        out->task.replayed = r->submit->replayed;
        break;
    case REFCACHE__V1__REPLY__BODY_TASK:
        out->kind = REFCACHE_REPLY_TASK;
        return s_fill_task(&out->task, r->task);
    case REFCACHE__V1__REPLY__BODY_FETCH:
        out->kind = REFCACHE_REPLY_FETCH;
        if (!r->fetch)
            return REFCACHE_EREPLY;
        out->fetch.data = r->fetch->data.data;
        out->fetch.len = r->fetch->data.len;
        out->fetch.offset = r->fetch->offset;
        out->fetch.total_size = r->fetch->total_size;
        break;
    case REFCACHE__V1__REPLY__BODY_CANCEL:
        out->kind = REFCACHE_REPLY_CANCEL;
        if (!r->cancel)
            return REFCACHE_EREPLY;
        out->cancelled = r->cancel->cancelled;
        out->cancel_state = r->cancel->state;
        break;
    case REFCACHE__V1__REPLY__BODY_DELETE:
        out->kind = REFCACHE_REPLY_DELETE;
        if (!r->delete_)
            return REFCACHE_EREPLY;
        out->found = r->delete_->found;
        break;
    case REFCACHE__V1__REPLY__BODY_STATS:
        out->kind = REFCACHE_REPLY_STATS;
        if (!r->stats)
            return REFCACHE_EREPLY;
        s_fill_stats(&out->stats, r->stats);
        break;
    default:
        /* List, Workers, Event, Metrics (rc_client_observe), or none. */
        return rc_client_codec_reply_observe(out, r);
    }
    return 0;
}

int rc_client_codec_reply_pb(const uint8_t *data, size_t len, ProtobufCAllocator *alloc,
                             refcache_reply_t *out)
{
    memset(out, 0, sizeof *out);
    Refcache__V1__Reply *reply = refcache__v1__reply__unpack(alloc, len, data);
    if (!reply)
        return REFCACHE_EREPLY;
    return s_fill_reply(out, reply);
}

/* ------------------------------------------------------------ replies: fast */

/* Field kinds of Reply{id, code, message, submit, task, event} (another
 * body field is declined), SubmitReply, TaskInfo and Event. An enum is read as a
 * uint32 and taken as protobuf-c does, as an int32; one written in ten bytes
 * (negative) is declined. */
static const uint8_t s_reply_kinds[] = {RC_SCAN(REPLY, ID),     RC_SCAN(REPLY, CODE), RC_SCAN(REPLY, MESSAGE),
                                        RC_SCAN(REPLY, SUBMIT), RC_SCAN(REPLY, TASK), RC_SCAN(REPLY, EVENT)};
static const uint8_t s_submit_kinds[] = {RC_SCAN(SUBMIT_REPLY, TASK), RC_SCAN(SUBMIT_REPLY, CACHE_HIT),
                                         RC_SCAN(SUBMIT_REPLY, DEDUPLICATED),
                                         RC_SCAN(SUBMIT_REPLY, REPLAYED)};
static const uint8_t s_task_kinds[] = {
    RC_SCAN(TASK_INFO, REF_ID),           RC_SCAN(TASK_INFO, STATE),
    RC_SCAN(TASK_INFO, RESULT),           RC_SCAN(TASK_INFO, RESULT_SIZE),
    RC_SCAN(TASK_INFO, RESULT_TRUNCATED), RC_SCAN(TASK_INFO, PROGRESS_DONE),
    RC_SCAN(TASK_INFO, PROGRESS_TOTAL),   RC_SCAN(TASK_INFO, ATTEMPT),
    RC_SCAN(TASK_INFO, ERROR_CODE),       RC_SCAN(TASK_INFO, ERROR),
    RC_SCAN(TASK_INFO, FUNCTION),         RC_SCAN(TASK_INFO, CREATED_AT_US),
    RC_SCAN(TASK_INFO, STARTED_AT_US),    RC_SCAN(TASK_INFO, FINISHED_AT_US),
    RC_SCAN(TASK_INFO, STOPPED_AT_US),    RC_SCAN(TASK_INFO, MAX_RETRIES),
    RC_SCAN(TASK_INFO, NAMESPACE),        RC_SCAN(TASK_INFO, EXPIRES_AT_US),
    RC_SCAN(TASK_INFO, EVER_STARTED),
};
#define TASK(F) f[RC_FIELD_TASK_INFO_##F]
static const uint8_t s_event_kinds[] = {
    RC_SCAN(EVENT, KIND),           RC_SCAN(EVENT, REF_ID),    RC_SCAN(EVENT, FUNCTION),
    RC_SCAN(EVENT, NAMESPACE),      RC_SCAN(EVENT, OLD_STATE), RC_SCAN(EVENT, NEW_STATE),
    RC_SCAN(EVENT, EVENT),          RC_SCAN(EVENT, ATTEMPT),   RC_SCAN(EVENT, WORKER_ID),
    RC_SCAN(EVENT, CODE),           RC_SCAN(EVENT, CLIENT),    RC_SCAN(EVENT, STOP_CONFIRMED),
    RC_SCAN(EVENT, AT_US),          RC_SCAN(EVENT, LOST),      RC_SCAN(EVENT, PROGRESS_DONE),
    RC_SCAN(EVENT, PROGRESS_TOTAL),
};
#define EVENT(F) f[RC_FIELD_EVENT_##F]

/* A string field as a C string in alloc's memory (protobuf-c's copy is
 * NUL-terminated too, so a NUL inside ends both); "" when empty. */
static const char *s_string(ProtobufCAllocator *alloc, const rc_wire_field_t *f)
{
    if (!f->v)
        return "";
    char *s = alloc->alloc(alloc->allocator_data, (size_t) f->v + 1);
    if (s) {
        memcpy(s, f->ptr, (size_t) f->v);
        s[f->v] = '\0';
    }
    return s;
}

static bool s_fast_task(const uint8_t *p, size_t n, ProtobufCAllocator *alloc, refcache_task_view_t *t)
{
    rc_wire_field_t f[sizeof s_task_kinds];
    if (!rc_wire_scan(p, p + n, s_task_kinds, RC_SCAN_N(s_task_kinds), 0, f))
        return false;
    /* protobuf-c's path refuses a longer ref_id (unless a NUL cuts it
     * short: rare enough to leave to it). A NUL inside a shorter one ends
     * the C string as it ends protobuf-c's. */
    const rc_wire_field_t *ref = &TASK(REF_ID), *result = &TASK(RESULT);
    if (ref->v > REFCACHE_REF_MAX)
        return false;
    if (ref->v)
        memcpy(t->ref_id, ref->ptr, (size_t) ref->v);
    t->ref_id[ref->v] = '\0';
    t->state = (int32_t) (uint32_t) TASK(STATE).v;
    t->result = result->v ? result->ptr : NULL;
    t->result_len = (size_t) result->v;
    t->result_size = TASK(RESULT_SIZE).v;
    t->result_truncated = TASK(RESULT_TRUNCATED).v;
    t->progress_done = TASK(PROGRESS_DONE).v;
    t->progress_total = TASK(PROGRESS_TOTAL).v;
    t->attempt = (uint32_t) TASK(ATTEMPT).v;
    t->error_code = (int32_t) (uint32_t) TASK(ERROR_CODE).v;
    t->error = s_string(alloc, &TASK(ERROR));
    t->function = s_string(alloc, &TASK(FUNCTION));
    t->created_at_us = TASK(CREATED_AT_US).v;
    t->started_at_us = TASK(STARTED_AT_US).v;
    t->finished_at_us = TASK(FINISHED_AT_US).v;
    t->stopped_at_us = TASK(STOPPED_AT_US).v;
    t->max_retries = (uint32_t) TASK(MAX_RETRIES).v;
    t->namespace_name = s_string(alloc, &TASK(NAMESPACE));
    t->expires_at_us = TASK(EXPIRES_AT_US).v;
    t->ever_started = TASK(EVER_STARTED).v;
    return t->error && t->function && t->namespace_name;
}

/* A watch's Event: a watcher reads every transition of a busy broker, so it
 * is read here rather than by protobuf-c. */
static bool s_fast_event(const uint8_t *p, size_t n, ProtobufCAllocator *alloc, refcache_event_t *e)
{
    rc_wire_field_t f[sizeof s_event_kinds];
    if (!rc_wire_scan(p, p + n, s_event_kinds, RC_SCAN_N(s_event_kinds), 0, f))
        return false;
    *e = (refcache_event_t){
        .kind = (int32_t) (uint32_t) EVENT(KIND).v,
        .ref_id = s_string(alloc, &EVENT(REF_ID)),
        .function = s_string(alloc, &EVENT(FUNCTION)),
        .namespace_name = s_string(alloc, &EVENT(NAMESPACE)),
        .old_state = (int32_t) (uint32_t) EVENT(OLD_STATE).v,
        .new_state = (int32_t) (uint32_t) EVENT(NEW_STATE).v,
        .event = s_string(alloc, &EVENT(EVENT)),
        .attempt = (uint32_t) EVENT(ATTEMPT).v,
        .worker_id = s_string(alloc, &EVENT(WORKER_ID)),
        .code = (int32_t) (uint32_t) EVENT(CODE).v,
        .client = s_string(alloc, &EVENT(CLIENT)),
        .stop_confirmed = EVENT(STOP_CONFIRMED).v,
        .at_us = EVENT(AT_US).v,
        .lost = EVENT(LOST).v,
        .progress_done = EVENT(PROGRESS_DONE).v,
        .progress_total = EVENT(PROGRESS_TOTAL).v,
    };
    return e->ref_id && e->function && e->namespace_name && e->event && e->worker_id && e->client;
}

int rc_client_codec_reply_fast(const uint8_t *data, size_t len, ProtobufCAllocator *alloc,
                               refcache_reply_t *out)
{
    rc_wire_field_t f[sizeof s_reply_kinds];
    if (!rc_wire_scan(data, data + len, s_reply_kinds, RC_SCAN_N(s_reply_kinds), 0, f))
        return -1;
    const rc_wire_field_t *submit = &f[RC_FIELD_REPLY_SUBMIT], *task = &f[RC_FIELD_REPLY_TASK],
                          *event = &f[RC_FIELD_REPLY_EVENT];
    if (!!submit->ptr + !!task->ptr + !!event->ptr > 1)
        return -1; /* two bodies of the oneof: protobuf-c keeps the last */
    memset(out, 0, sizeof *out);
    out->id = f[RC_FIELD_REPLY_ID].v;
    out->code = (int32_t) (uint32_t) f[RC_FIELD_REPLY_CODE].v;
    out->message = s_string(alloc, &f[RC_FIELD_REPLY_MESSAGE]);
    if (!out->message)
        return -1;
    if (submit->ptr) {
        rc_wire_field_t s[sizeof s_submit_kinds];
        const rc_wire_field_t *t = &s[RC_FIELD_SUBMIT_REPLY_TASK];
        if (!rc_wire_scan(submit->ptr, submit->ptr + submit->v, s_submit_kinds, RC_SCAN_N(s_submit_kinds), 0,
                          s) ||
            !t->ptr || !s_fast_task(t->ptr, (size_t) t->v, alloc, &out->task))
            return -1;
        out->kind = REFCACHE_REPLY_SUBMIT;
        out->task.cache_hit = s[RC_FIELD_SUBMIT_REPLY_CACHE_HIT].v;
        out->task.deduplicated = s[RC_FIELD_SUBMIT_REPLY_DEDUPLICATED].v;
        out->task.replayed = s[RC_FIELD_SUBMIT_REPLY_REPLAYED].v;
    } else if (task->ptr) {
        if (!s_fast_task(task->ptr, (size_t) task->v, alloc, &out->task))
            return -1;
        out->kind = REFCACHE_REPLY_TASK;
    } else if (event->ptr) {
        if (!s_fast_event(event->ptr, (size_t) event->v, alloc, &out->event))
            return -1;
        out->kind = REFCACHE_REPLY_EVENT;
    } else {
        out->kind = REFCACHE_REPLY_NONE;
    }
    return 0;
}

int rc_client_codec_reply(const uint8_t *data, size_t len, ProtobufCAllocator *alloc, refcache_reply_t *out)
{
    if (rc_client_codec_reply_fast(data, len, alloc, out) == 0)
        return 0;
    return rc_client_codec_reply_pb(data, len, alloc, out);
}

_Static_assert(RC_KEY_REPLY_BATCH_REPLIES < 0x80 && RC_KEY_REQUEST_BATCH_REQUESTS < 0x80,
               "the entries of a batch are read and written with one-byte keys");

bool rc_client_codec_reply_batch(const uint8_t *data, size_t len, const uint8_t **run, const uint8_t **end)
{
    static const uint8_t top_kinds[] = {RC_SCAN(REPLY, BATCH)};
    static const uint8_t batch_kinds[] = {RC_SCAN(REPLY_BATCH, REPLIES)};
    rc_wire_field_t top[sizeof top_kinds], f[sizeof batch_kinds];
    const rc_wire_field_t *b = &top[RC_FIELD_REPLY_BATCH], *replies = &f[RC_FIELD_REPLY_BATCH_REPLIES];
    if (!rc_wire_scan(data, data + len, top_kinds, RC_SCAN_N(top_kinds), 0, top) || !b->ptr ||
        !rc_wire_scan(b->ptr, b->ptr + b->v, batch_kinds, RC_SCAN_N(batch_kinds),
                      RC_FIELD_REPLY_BATCH_REPLIES, f))
        return false;
    *run = replies->ptr;
    *end = replies->end;
    return true;
}

/* ------------------------------------------------------------ coverage */

#define ENC      "rc_client_codec: Request encoder"
#define DEC      "rc_client_codec: Reply decoder"
#define STATS(F) RC_FIELD_STATS_REPLY_##F

/* Every field of what the client's codec writes and reads (with the
 * batches rc_client.c frames), for test_wire_drift. */
const rc_wire_cover_t rc_client_codec_covers[] = {
    RC_COVER(ENC, refcache__v1__request__descriptor, RC_FIELD_REQUEST_ID, RC_FIELD_REQUEST_SUBMIT,
             RC_FIELD_REQUEST_STATUS, RC_FIELD_REQUEST_WAIT, RC_FIELD_REQUEST_FETCH, RC_FIELD_REQUEST_CANCEL,
             RC_FIELD_REQUEST_DELETE, RC_FIELD_REQUEST_STATS, RC_FIELD_REQUEST_BATCH, RC_FIELD_REQUEST_LIST,
             RC_FIELD_REQUEST_WORKERS, RC_FIELD_REQUEST_WATCH,
             RC_FIELD_REQUEST_METRICS /* rc_client_observe */),
    RC_COVER(ENC, refcache__v1__request_batch__descriptor, RC_FIELD_REQUEST_BATCH_REQUESTS),
    RC_COVER(ENC, refcache__v1__submit_request__descriptor, SUBMIT(FUNCTION), SUBMIT(PARAMS), SUBMIT(PAYLOAD),
             SUBMIT(ASYNC_TIMEOUT_MS), SUBMIT(DEADLINE_MS), SUBMIT(MAX_RETRIES), SUBMIT(TTL_S),
             SUBMIT(NAMESPACE), SUBMIT(NO_CACHE), SUBMIT(REQUEST_KEY)),
    RC_COVER(ENC, refcache__v1__submit_request__params_entry__descriptor, PARAM(KEY), PARAM(VALUE)),
    RC_COVER(ENC, refcache__v1__status_request__descriptor, RC_FIELD_STATUS_REQUEST_REF_ID,
             RC_FIELD_STATUS_REQUEST_NAMESPACE),
    RC_COVER(ENC, refcache__v1__wait_request__descriptor, RC_FIELD_WAIT_REQUEST_REF_ID,
             RC_FIELD_WAIT_REQUEST_TIMEOUT_MS, RC_FIELD_WAIT_REQUEST_NAMESPACE),
    RC_COVER(ENC, refcache__v1__fetch_request__descriptor, RC_FIELD_FETCH_REQUEST_REF_ID,
             RC_FIELD_FETCH_REQUEST_OFFSET, RC_FIELD_FETCH_REQUEST_LENGTH, RC_FIELD_FETCH_REQUEST_NAMESPACE),
    RC_COVER(ENC, refcache__v1__cancel_request__descriptor, RC_FIELD_CANCEL_REQUEST_REF_ID,
             RC_FIELD_CANCEL_REQUEST_NAMESPACE),
    RC_COVER(ENC, refcache__v1__delete_request__descriptor, RC_FIELD_DELETE_REQUEST_REF_ID,
             RC_FIELD_DELETE_REQUEST_NAMESPACE),
    RC_COVER_NONE(ENC, refcache__v1__stats_request__descriptor),

    RC_COVER(DEC, refcache__v1__reply__descriptor, RC_FIELD_REPLY_ID, RC_FIELD_REPLY_CODE,
             RC_FIELD_REPLY_MESSAGE, RC_FIELD_REPLY_SUBMIT, RC_FIELD_REPLY_TASK, RC_FIELD_REPLY_FETCH,
             RC_FIELD_REPLY_CANCEL, RC_FIELD_REPLY_DELETE, RC_FIELD_REPLY_STATS, RC_FIELD_REPLY_BATCH,
             RC_FIELD_REPLY_LIST, RC_FIELD_REPLY_WORKERS, RC_FIELD_REPLY_EVENT,
             RC_FIELD_REPLY_METRICS /* rc_client_observe */,
             RC_FIELD_REPLY_CLAMPED /* the fast path declines it: counted from protobuf-c's */),
    RC_COVER(DEC, refcache__v1__reply_batch__descriptor, RC_FIELD_REPLY_BATCH_REPLIES),
    /* Counted, each read by protobuf-c; the message names them for people. */
    RC_COVER(DEC, refcache__v1__clamped__descriptor, RC_FIELD_CLAMPED_FIELD, RC_FIELD_CLAMPED_REQUESTED,
             RC_FIELD_CLAMPED_USED),
    RC_COVER(DEC, refcache__v1__submit_reply__descriptor, RC_FIELD_SUBMIT_REPLY_TASK,
             RC_FIELD_SUBMIT_REPLY_CACHE_HIT, RC_FIELD_SUBMIT_REPLY_DEDUPLICATED,
             RC_FIELD_SUBMIT_REPLY_REPLAYED),
    RC_COVER(DEC, refcache__v1__task_info__descriptor, RC_FIELD_TASK_INFO_REF_ID, RC_FIELD_TASK_INFO_STATE,
             RC_FIELD_TASK_INFO_RESULT, RC_FIELD_TASK_INFO_RESULT_SIZE, RC_FIELD_TASK_INFO_RESULT_TRUNCATED,
             RC_FIELD_TASK_INFO_PROGRESS_DONE, RC_FIELD_TASK_INFO_PROGRESS_TOTAL, RC_FIELD_TASK_INFO_ATTEMPT,
             RC_FIELD_TASK_INFO_ERROR_CODE, RC_FIELD_TASK_INFO_ERROR, RC_FIELD_TASK_INFO_FUNCTION,
             RC_FIELD_TASK_INFO_CREATED_AT_US, RC_FIELD_TASK_INFO_STARTED_AT_US,
             RC_FIELD_TASK_INFO_FINISHED_AT_US, RC_FIELD_TASK_INFO_STOPPED_AT_US,
             RC_FIELD_TASK_INFO_MAX_RETRIES, RC_FIELD_TASK_INFO_NAMESPACE, RC_FIELD_TASK_INFO_EXPIRES_AT_US,
             RC_FIELD_TASK_INFO_EVER_STARTED),
    RC_COVER(DEC, refcache__v1__fetch_reply__descriptor, RC_FIELD_FETCH_REPLY_DATA,
             RC_FIELD_FETCH_REPLY_TOTAL_SIZE, RC_FIELD_FETCH_REPLY_OFFSET),
    RC_COVER(DEC, refcache__v1__cancel_reply__descriptor, RC_FIELD_CANCEL_REPLY_CANCELLED,
             RC_FIELD_CANCEL_REPLY_STATE),
    RC_COVER(DEC, refcache__v1__delete_reply__descriptor, RC_FIELD_DELETE_REPLY_FOUND),
    RC_COVER(DEC, refcache__v1__stats_reply__descriptor, STATS(TASKS_PENDING), STATS(TASKS_PROCESSING),
             STATS(TASKS_COMPLETE), STATS(TASKS_FAILED), STATS(TASKS_CANCELLED), STATS(QUEUE_DEPTH),
             STATS(WORKERS), STATS(WORKERS_BUSY), STATS(CACHE_BYTES), STATS(CACHE_ENTRIES),
             STATS(SUBMITTED_TOTAL), STATS(COMPLETED_TOTAL), STATS(FAILED_TOTAL), STATS(CANCELLED_TOTAL),
             STATS(CACHE_HITS_TOTAL), STATS(DEDUP_TOTAL), STATS(EXPIRED_TOTAL), STATS(EVICTED_TOTAL),
             STATS(RETRIES_TOTAL), STATS(WORKERS_LOST_TOTAL), STATS(BAD_REQUESTS_TOTAL),
             STATS(BAD_WORKER_MSGS_TOTAL), STATS(STALE_MSGS_TOTAL), STATS(DROPPED_REPLIES_TOTAL),
             STATS(WAITERS), STATS(RSS_BYTES), STATS(UPTIME_MS), STATS(REQUESTS_TOTAL),
             STATS(RESOURCE_EXHAUSTED_TOTAL), STATS(DEADLINE_EXCEEDED_TOTAL), STATS(VERSION),
             STATS(REANNOUNCES_TOTAL), STATS(HANDED_BACK_TOTAL), STATS(DRAINING), STATS(STORE_PATH),
             STATS(STORE_RECORDS), STATS(STORE_FILE_BYTES), STATS(STORE_RECORDS_WRITTEN_TOTAL),
             STATS(STORE_COMMITS_TOTAL), STATS(STORE_QUEUED_BYTES), STATS(STORE_MAX_COMMIT_US),
             STATS(STORE_ERROR)),
    {0},
};
