/* rc_client_codec: see rc_client_codec.h. */
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

/* Request field numbers. */
enum { REQUEST_ID = 1, REQUEST_SUBMIT = 2 };

/* A params entry is a submessage {key = 1, value = 2}; protobuf-c leaves an
 * empty key or value out, as any proto3 string. */
static size_t s_param_size(const refcache_param_t *p)
{
    return rc_wire_sz_bytes(1, strlen(p->key)) + rc_wire_sz_bytes(2, strlen(p->value));
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
    size_t body = rc_wire_sz_bytes(1, s->function_len_) + rc_wire_sz_bytes(3, s_payload_len(o)) +
                  rc_wire_sz_varint(4, o->async_timeout_ms) + rc_wire_sz_varint(5, o->deadline_ms) +
                  rc_wire_sz_varint(6, o->max_retries) + rc_wire_sz_varint(7, o->ttl_s) +
                  rc_wire_sz_bytes(8, s->ns_len_) + rc_wire_sz_bool(9, o->no_cache);
    for (size_t i = 0; i < o->param_count; i++)
        body += rc_wire_sz_msg(2, s_param_size(&o->params[i]));
    s->body_len_ = body;
    return rc_wire_sz_varint(REQUEST_ID, s->id) + rc_wire_sz_msg(REQUEST_SUBMIT, body);
}

uint8_t *rc_client_codec_submit_put(const rc_client_codec_submit_t *s, uint8_t *out)
{
    const refcache_submit_options_t *o = s->options;
    uint8_t *p = rc_wire_put_varint(out, REQUEST_ID, s->id);
    p = rc_wire_put_msg(p, REQUEST_SUBMIT, s->body_len_);
    p = rc_wire_put_bytes(p, 1, s->function, s->function_len_);
    for (size_t i = 0; i < o->param_count; i++) {
        const refcache_param_t *e = &o->params[i];
        p = rc_wire_put_msg(p, 2, s_param_size(e));
        p = rc_wire_put_bytes(p, 1, e->key, strlen(e->key));
        p = rc_wire_put_bytes(p, 2, e->value, strlen(e->value));
    }
    p = rc_wire_put_bytes(p, 3, o->payload, s_payload_len(o));
    p = rc_wire_put_varint(p, 4, o->async_timeout_ms);
    p = rc_wire_put_varint(p, 5, o->deadline_ms);
    p = rc_wire_put_varint(p, 6, o->max_retries);
    p = rc_wire_put_varint(p, 7, o->ttl_s);
    p = rc_wire_put_bytes(p, 8, s->ns, s->ns_len_);
    p = rc_wire_put_bool(p, 9, o->no_cache);
    return p;
}

size_t rc_client_codec_ref_size(rc_client_codec_ref_t *r)
{
    assert(r->n_num <= 2);
    r->ref_len_ = s_len(r->ref_id);
    r->ns_len_ = s_len(r->ns);
    size_t body = rc_wire_sz_bytes(1, r->ref_len_) + rc_wire_sz_bytes(2 + r->n_num, r->ns_len_);
    for (unsigned i = 0; i < r->n_num; i++)
        body += rc_wire_sz_varint(2 + i, r->num[i]);
    r->body_len_ = body;
    return rc_wire_sz_varint(REQUEST_ID, r->id) + rc_wire_sz_msg(r->body, body);
}

uint8_t *rc_client_codec_ref_put(const rc_client_codec_ref_t *r, uint8_t *out)
{
    uint8_t *p = rc_wire_put_varint(out, REQUEST_ID, r->id);
    p = rc_wire_put_msg(p, r->body, r->body_len_);
    p = rc_wire_put_bytes(p, 1, r->ref_id, r->ref_len_);
    for (unsigned i = 0; i < r->n_num; i++)
        p = rc_wire_put_varint(p, 2 + i, r->num[i]);
    return rc_wire_put_bytes(p, 2 + r->n_num, r->ns, r->ns_len_);
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
    snprintf(s->version, sizeof s->version, "%s", r->version ? r->version : "");
}

/* The view of a Reply protobuf-c unpacked. */
static int s_fill_reply(refcache_reply_t *out, const Refcache__V1__Reply *r)
{
    memset(out, 0, sizeof *out);
    out->id = r->id;
    out->code = r->code;
    out->message = r->message ? r->message : "";
    switch (r->body_case) {
    case REFCACHE__V1__REPLY__BODY_SUBMIT:
        out->kind = REFCACHE_REPLY_SUBMIT;
        if (!r->submit || s_fill_task(&out->task, r->submit->task) != 0)
            return REFCACHE_EREPLY;
        out->task.cache_hit = r->submit->cache_hit;
        out->task.deduplicated = r->submit->deduplicated;
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
        out->kind = REFCACHE_REPLY_NONE;
        break;
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

/* Field kinds of Reply{id, code, message, submit, task} (a later body field
 * is beyond n: declined), SubmitReply and TaskInfo. An enum is read as a
 * uint32 and taken as protobuf-c does, as an int32; one written in ten bytes
 * (negative) is declined. */
static const uint8_t s_reply_kinds[] = {RC_F_NONE, RC_F_U64, RC_F_U32, RC_F_LEN, RC_F_LEN, RC_F_LEN};
static const uint8_t s_submit_kinds[] = {RC_F_NONE, RC_F_LEN, RC_F_BOOL, RC_F_BOOL};
static const uint8_t s_task_kinds[] = {RC_F_NONE, RC_F_LEN, RC_F_U32, RC_F_LEN, RC_F_U64, RC_F_BOOL, RC_F_U64,
                                       RC_F_U64,  RC_F_U32, RC_F_U32, RC_F_LEN, RC_F_LEN, RC_F_U64,  RC_F_U64,
                                       RC_F_U64,  RC_F_U64, RC_F_U32, RC_F_LEN, RC_F_U64, RC_F_BOOL};

enum { REPLY_N = 5, SUBMIT_N = 3, TASK_N = 19 };

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
    rc_wire_field_t f[TASK_N + 1];
    if (!rc_wire_scan(p, p + n, s_task_kinds, TASK_N, 0, f))
        return false;
    /* protobuf-c's path refuses a longer ref_id (unless a NUL cuts it
     * short: rare enough to leave to it). A NUL inside a shorter one ends
     * the C string as it ends protobuf-c's. */
    if (f[1].v > REFCACHE_REF_MAX)
        return false;
    if (f[1].v)
        memcpy(t->ref_id, f[1].ptr, (size_t) f[1].v);
    t->ref_id[f[1].v] = '\0';
    t->state = (int32_t) (uint32_t) f[2].v;
    t->result = f[3].v ? f[3].ptr : NULL;
    t->result_len = (size_t) f[3].v;
    t->result_size = f[4].v;
    t->result_truncated = f[5].v;
    t->progress_done = f[6].v;
    t->progress_total = f[7].v;
    t->attempt = (uint32_t) f[8].v;
    t->error_code = (int32_t) (uint32_t) f[9].v;
    t->error = s_string(alloc, &f[10]);
    t->function = s_string(alloc, &f[11]);
    t->created_at_us = f[12].v;
    t->started_at_us = f[13].v;
    t->finished_at_us = f[14].v;
    t->stopped_at_us = f[15].v;
    t->max_retries = (uint32_t) f[16].v;
    t->namespace_name = s_string(alloc, &f[17]);
    t->expires_at_us = f[18].v;
    t->ever_started = f[19].v;
    return t->error && t->function && t->namespace_name;
}

int rc_client_codec_reply_fast(const uint8_t *data, size_t len, ProtobufCAllocator *alloc,
                               refcache_reply_t *out)
{
    rc_wire_field_t f[REPLY_N + 1];
    if (!rc_wire_scan(data, data + len, s_reply_kinds, REPLY_N, 0, f))
        return -1;
    const rc_wire_field_t *submit = f[4].ptr ? &f[4] : NULL, *task = f[5].ptr ? &f[5] : NULL;
    if (submit && task)
        return -1; /* two bodies of the oneof: protobuf-c keeps the last */
    memset(out, 0, sizeof *out);
    out->id = f[1].v;
    out->code = (int32_t) (uint32_t) f[2].v;
    out->message = s_string(alloc, &f[3]);
    if (!out->message)
        return -1;
    if (submit) {
        rc_wire_field_t s[SUBMIT_N + 1];
        if (!rc_wire_scan(submit->ptr, submit->ptr + submit->v, s_submit_kinds, SUBMIT_N, 0, s) ||
            !s[1].ptr || !s_fast_task(s[1].ptr, (size_t) s[1].v, alloc, &out->task))
            return -1;
        out->kind = REFCACHE_REPLY_SUBMIT;
        out->task.cache_hit = s[2].v;
        out->task.deduplicated = s[3].v;
    } else if (task) {
        if (!s_fast_task(task->ptr, (size_t) task->v, alloc, &out->task))
            return -1;
        out->kind = REFCACHE_REPLY_TASK;
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

bool rc_client_codec_reply_batch(const uint8_t *data, size_t len, const uint8_t **run, const uint8_t **end)
{
    static const uint8_t top_kinds[] = {RC_F_NONE, RC_F_NONE, RC_F_NONE, RC_F_NONE, RC_F_NONE, RC_F_NONE,
                                        RC_F_NONE, RC_F_NONE, RC_F_NONE, RC_F_NONE, RC_F_LEN};
    static const uint8_t batch_kinds[] = {RC_F_NONE, RC_F_LEN};
    rc_wire_field_t top[RC_CLIENT_CODEC_REPLY_BATCH + 1], f[2];
    if (!rc_wire_scan(data, data + len, top_kinds, RC_CLIENT_CODEC_REPLY_BATCH, 0, top) ||
        !top[RC_CLIENT_CODEC_REPLY_BATCH].ptr)
        return false;
    const rc_wire_field_t *b = &top[RC_CLIENT_CODEC_REPLY_BATCH];
    if (!rc_wire_scan(b->ptr, b->ptr + b->v, batch_kinds, 1, 1, f))
        return false;
    *run = f[1].ptr;
    *end = f[1].end;
    return true;
}
