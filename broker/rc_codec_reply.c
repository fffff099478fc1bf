/* rc_codec_reply: the Replies the broker sends to clients (rc_codec.h) and
 * the entries of a ReplyBatch. The hot replies are written by hand with
 * rc_wire's writers, byte for byte as protobuf-c would write them
 * (test_codec compares the bytes); a StatsReply, rare and wide, is packed by
 * protobuf-c. */
#include "rc_codec_int.h"

#include <assert.h>

/* rc_wire_head_before writes the head of a batch field in front of its
 * entries in at most RC_BATCH_HEAD bytes, for a field below 16. */
_Static_assert(RC_KEY_REPLY_BATCH < 0x80 && RC_KEY_BROKER_MESSAGE_DISPATCHES < 0x80,
               "a batch field's key must be one byte");

int rc_codec_batch_entry(rc_buf_t *buf, const uint8_t *reply, size_t len)
{
    if (rc_buf_reserve(buf, buf->len + 1 + rc_wire_vsize(len) + len) != 0)
        return -1;
    uint8_t *p = rc_wire_put_msg(buf->data + buf->len, RC_FIELD_REPLY_BATCH_REPLIES, len);
    memcpy(p, reply, len);
    buf->len = (size_t) (p + len - buf->data);
    return 0;
}
_Static_assert(RC_KEY_REPLY_BATCH_REPLIES < 0x80, "rc_codec_batch_entry reserves one byte for the key");

/* ---------------------------------------------------------------- replies */

/* TaskInfo, measured once (with its strings) and then written. */
typedef struct {
    size_t ref, error, function, ns, total;
} task_size_t;

#define TASK(F) RC_FIELD_TASK_INFO_##F

static void task_measure(const rc_taskview_t *v, task_size_t *z)
{
    z->ref = len_of(v->ref_hex);
    z->error = len_of(v->error);
    z->function = len_of(v->function);
    z->ns = len_of(v->ns);
    z->total =
        rc_wire_sz_bytes(TASK(REF_ID), z->ref) + rc_wire_sz_enum(TASK(STATE), v->state) +
        rc_wire_sz_bytes(TASK(RESULT), v->result.len) + rc_wire_sz_varint(TASK(RESULT_SIZE), v->result_size) +
        rc_wire_sz_bool(TASK(RESULT_TRUNCATED), v->result_truncated) +
        rc_wire_sz_varint(TASK(PROGRESS_DONE), v->progress_done) +
        rc_wire_sz_varint(TASK(PROGRESS_TOTAL), v->progress_total) +
        rc_wire_sz_varint(TASK(ATTEMPT), v->attempt) + rc_wire_sz_enum(TASK(ERROR_CODE), v->error_code) +
        rc_wire_sz_bytes(TASK(ERROR), z->error) + rc_wire_sz_bytes(TASK(FUNCTION), z->function) +
        rc_wire_sz_varint(TASK(CREATED_AT_US), v->created_at_us) +
        rc_wire_sz_varint(TASK(STARTED_AT_US), v->started_at_us) +
        rc_wire_sz_varint(TASK(FINISHED_AT_US), v->finished_at_us) +
        rc_wire_sz_varint(TASK(STOPPED_AT_US), v->stopped_at_us) +
        rc_wire_sz_varint(TASK(MAX_RETRIES), v->max_retries) + rc_wire_sz_bytes(TASK(NAMESPACE), z->ns) +
        rc_wire_sz_varint(TASK(EXPIRES_AT_US), v->expires_at_us) +
        rc_wire_sz_bool(TASK(EVER_STARTED), v->ever_started);
}

/* In field-number order, as protobuf-c writes them. */
static uint8_t *task_put(uint8_t *p, const rc_taskview_t *v, const task_size_t *z)
{
    p = rc_wire_put_bytes(p, TASK(REF_ID), v->ref_hex, z->ref);
    p = rc_wire_put_enum(p, TASK(STATE), v->state);
    p = rc_wire_put_bytes(p, TASK(RESULT), v->result.ptr, v->result.len);
    p = rc_wire_put_varint(p, TASK(RESULT_SIZE), v->result_size);
    p = rc_wire_put_bool(p, TASK(RESULT_TRUNCATED), v->result_truncated);
    p = rc_wire_put_varint(p, TASK(PROGRESS_DONE), v->progress_done);
    p = rc_wire_put_varint(p, TASK(PROGRESS_TOTAL), v->progress_total);
    p = rc_wire_put_varint(p, TASK(ATTEMPT), v->attempt);
    p = rc_wire_put_enum(p, TASK(ERROR_CODE), v->error_code);
    p = rc_wire_put_bytes(p, TASK(ERROR), v->error, z->error);
    p = rc_wire_put_bytes(p, TASK(FUNCTION), v->function, z->function);
    p = rc_wire_put_varint(p, TASK(CREATED_AT_US), v->created_at_us);
    p = rc_wire_put_varint(p, TASK(STARTED_AT_US), v->started_at_us);
    p = rc_wire_put_varint(p, TASK(FINISHED_AT_US), v->finished_at_us);
    p = rc_wire_put_varint(p, TASK(STOPPED_AT_US), v->stopped_at_us);
    p = rc_wire_put_varint(p, TASK(MAX_RETRIES), v->max_retries);
    p = rc_wire_put_bytes(p, TASK(NAMESPACE), v->ns, z->ns);
    p = rc_wire_put_varint(p, TASK(EXPIRES_AT_US), v->expires_at_us);
    p = rc_wire_put_bool(p, TASK(EVER_STARTED), v->ever_started);
    return p;
}

static size_t clamp_size(const rc_clamp_t *c)
{
    return rc_wire_sz_bytes(RC_FIELD_CLAMPED_FIELD, len_of(c->field)) +
           rc_wire_sz_varint(RC_FIELD_CLAMPED_REQUESTED, c->requested) +
           rc_wire_sz_varint(RC_FIELD_CLAMPED_USED, c->used);
}

/* A StatsReply is rare and wide: protobuf-c packs it. */
static int reply_stats(rc_buf_t *buf, const rc_reply_t *r)
{
    Refcache__V1__Reply reply = REFCACHE__V1__REPLY__INIT;
    Refcache__V1__StatsReply stats = REFCACHE__V1__STATS_REPLY__INIT;
    reply.id = r->id;
    reply.code = (Refcache__V1__Code) r->code;
    reply.message = (char *) (r->message ? r->message : ""); /* Stats takes no number to clamp */
#define RC_STATS_COPY(name) stats.name = r->stats->name;
    RC_STATS_FIELDS(RC_STATS_COPY)
#undef RC_STATS_COPY
    stats.version = (char *) (r->stats->version ? r->stats->version : "");
    stats.draining = r->stats->draining;
    stats.store_path = (char *) (r->stats->store_path ? r->stats->store_path : "");
    stats.store_error = (char *) (r->stats->store_error ? r->stats->store_error : "");
    reply.body_case = REFCACHE__V1__REPLY__BODY_STATS;
    reply.stats = &stats;
    return pack_into(buf, &reply.base);
}

int rc_codec_reply(rc_buf_t *buf, const rc_reply_t *r)
{
    if (r->kind == RC_REPLY_STATS && r->stats)
        return reply_stats(buf, r);
    if (r->kind > RC_REPLY_STATS) /* LIST, WORKERS, METRICS */
        return rc_codec_reply_observe(buf, r);

    task_size_t tz = {0};
    uint32_t body_field = 0; /* none */
    size_t body = 0;
    switch (r->kind) {
    case RC_REPLY_SUBMIT:
        body_field = RC_FIELD_REPLY_SUBMIT;
        if (r->task) {
            task_measure(r->task, &tz);
            body += rc_wire_sz_msg(RC_FIELD_SUBMIT_REPLY_TASK, tz.total);
        }
        body += rc_wire_sz_bool(RC_FIELD_SUBMIT_REPLY_CACHE_HIT, r->cache_hit) +
                rc_wire_sz_bool(RC_FIELD_SUBMIT_REPLY_DEDUPLICATED, r->deduplicated) +
                rc_wire_sz_bool(RC_FIELD_SUBMIT_REPLY_REPLAYED, r->replayed);
        break;
    case RC_REPLY_TASK:
        if (!r->task)
            break;
        body_field = RC_FIELD_REPLY_TASK;
        task_measure(r->task, &tz);
        body = tz.total;
        break;
    case RC_REPLY_FETCH:
        body_field = RC_FIELD_REPLY_FETCH;
        body = rc_wire_sz_bytes(RC_FIELD_FETCH_REPLY_DATA, r->data.len) +
               rc_wire_sz_varint(RC_FIELD_FETCH_REPLY_TOTAL_SIZE, r->total_size) +
               rc_wire_sz_varint(RC_FIELD_FETCH_REPLY_OFFSET, r->offset);
        break;
    case RC_REPLY_CANCEL:
        body_field = RC_FIELD_REPLY_CANCEL;
        body = rc_wire_sz_bool(RC_FIELD_CANCEL_REPLY_CANCELLED, r->flag) +
               rc_wire_sz_enum(RC_FIELD_CANCEL_REPLY_STATE, r->state);
        break;
    case RC_REPLY_DELETE:
        body_field = RC_FIELD_REPLY_DELETE;
        body = rc_wire_sz_bool(RC_FIELD_DELETE_REPLY_FOUND, r->flag);
        break;
    case RC_REPLY_STATS: /* without stats: no body */
    case RC_REPLY_NONE:
    case RC_REPLY_LIST: /* rc_codec_reply_observe */
    case RC_REPLY_WORKERS:
    case RC_REPLY_METRICS:
        break;
    }
    size_t message_len = len_of(r->message);
    size_t n = rc_wire_sz_varint(RC_FIELD_REPLY_ID, r->id) + rc_wire_sz_enum(RC_FIELD_REPLY_CODE, r->code) +
               rc_wire_sz_bytes(RC_FIELD_REPLY_MESSAGE, message_len) +
               (body_field ? rc_wire_sz_msg(body_field, body) : 0);
    for (size_t i = 0; i < r->n_clamped; i++)
        n += rc_wire_sz_msg(RC_FIELD_REPLY_CLAMPED, clamp_size(&r->clamped[i]));
    if (rc_buf_reserve(buf, n ? n : 1) != 0)
        return -1;

    uint8_t *p = buf->data;
    p = rc_wire_put_varint(p, RC_FIELD_REPLY_ID, r->id);
    p = rc_wire_put_enum(p, RC_FIELD_REPLY_CODE, r->code);
    p = rc_wire_put_bytes(p, RC_FIELD_REPLY_MESSAGE, r->message, message_len);
    if (body_field)
        p = rc_wire_put_msg(p, body_field, body);
    switch (body_field) {
    case RC_FIELD_REPLY_SUBMIT:
        if (r->task) {
            p = rc_wire_put_msg(p, RC_FIELD_SUBMIT_REPLY_TASK, tz.total);
            p = task_put(p, r->task, &tz);
        }
        p = rc_wire_put_bool(p, RC_FIELD_SUBMIT_REPLY_CACHE_HIT, r->cache_hit);
        p = rc_wire_put_bool(p, RC_FIELD_SUBMIT_REPLY_DEDUPLICATED, r->deduplicated);
        p = rc_wire_put_bool(p, RC_FIELD_SUBMIT_REPLY_REPLAYED, r->replayed);
        break;
    case RC_FIELD_REPLY_TASK:
        p = task_put(p, r->task, &tz);
        break;
    case RC_FIELD_REPLY_FETCH:
        p = rc_wire_put_bytes(p, RC_FIELD_FETCH_REPLY_DATA, r->data.ptr, r->data.len);
        p = rc_wire_put_varint(p, RC_FIELD_FETCH_REPLY_TOTAL_SIZE, r->total_size);
        p = rc_wire_put_varint(p, RC_FIELD_FETCH_REPLY_OFFSET, r->offset);
        break;
    case RC_FIELD_REPLY_CANCEL:
        p = rc_wire_put_bool(p, RC_FIELD_CANCEL_REPLY_CANCELLED, r->flag);
        p = rc_wire_put_enum(p, RC_FIELD_CANCEL_REPLY_STATE, r->state);
        break;
    case RC_FIELD_REPLY_DELETE:
        p = rc_wire_put_bool(p, RC_FIELD_DELETE_REPLY_FOUND, r->flag);
        break;
    }
    for (size_t i = 0; i < r->n_clamped; i++) {
        const rc_clamp_t *c = &r->clamped[i];
        p = rc_wire_put_msg(p, RC_FIELD_REPLY_CLAMPED, clamp_size(c));
        p = rc_wire_put_bytes(p, RC_FIELD_CLAMPED_FIELD, c->field, len_of(c->field));
        p = rc_wire_put_varint(p, RC_FIELD_CLAMPED_REQUESTED, c->requested);
        p = rc_wire_put_varint(p, RC_FIELD_CLAMPED_USED, c->used);
    }
    buf->len = (size_t) (p - buf->data);
    assert(buf->len == n);
    return 0;
}

/* ---------------------------------------------------------------- coverage */

#define STATS_NAME(name) #name,

/* Every field of what rc_codec_reply and rc_codec_batch_entry write, for
 * test_wire_drift. */
const rc_wire_cover_t rc_codec_reply_covers[] = {
    RC_COVER("rc_codec: Reply encoder", refcache__v1__reply__descriptor, RC_FIELD_REPLY_ID,
             RC_FIELD_REPLY_CODE, RC_FIELD_REPLY_MESSAGE, RC_FIELD_REPLY_SUBMIT, RC_FIELD_REPLY_TASK,
             RC_FIELD_REPLY_FETCH, RC_FIELD_REPLY_CANCEL, RC_FIELD_REPLY_DELETE, RC_FIELD_REPLY_STATS,
             RC_FIELD_REPLY_BATCH /* rc_codec_batch_entry, and the head written by the broker's outbox */,
             RC_FIELD_REPLY_LIST, RC_FIELD_REPLY_WORKERS, RC_FIELD_REPLY_EVENT,
             RC_FIELD_REPLY_METRICS /* rc_codec_observe */, RC_FIELD_REPLY_CLAMPED),
    RC_COVER("rc_codec: Reply encoder", refcache__v1__clamped__descriptor, RC_FIELD_CLAMPED_FIELD,
             RC_FIELD_CLAMPED_REQUESTED, RC_FIELD_CLAMPED_USED),
    RC_COVER("rc_codec: Reply encoder", refcache__v1__reply_batch__descriptor, RC_FIELD_REPLY_BATCH_REPLIES),
    RC_COVER("rc_codec: Reply encoder", refcache__v1__submit_reply__descriptor, RC_FIELD_SUBMIT_REPLY_TASK,
             RC_FIELD_SUBMIT_REPLY_CACHE_HIT, RC_FIELD_SUBMIT_REPLY_DEDUPLICATED, RC_FIELD_SUBMIT_REPLY_REPLAYED),
    RC_COVER("rc_codec: Reply encoder", refcache__v1__task_info__descriptor, TASK(REF_ID), TASK(STATE),
             TASK(RESULT), TASK(RESULT_SIZE), TASK(RESULT_TRUNCATED), TASK(PROGRESS_DONE),
             TASK(PROGRESS_TOTAL), TASK(ATTEMPT), TASK(ERROR_CODE), TASK(ERROR), TASK(FUNCTION),
             TASK(CREATED_AT_US), TASK(STARTED_AT_US), TASK(FINISHED_AT_US), TASK(STOPPED_AT_US),
             TASK(MAX_RETRIES), TASK(NAMESPACE), TASK(EXPIRES_AT_US), TASK(EVER_STARTED)),
    RC_COVER("rc_codec: Reply encoder", refcache__v1__fetch_reply__descriptor, RC_FIELD_FETCH_REPLY_DATA,
             RC_FIELD_FETCH_REPLY_TOTAL_SIZE, RC_FIELD_FETCH_REPLY_OFFSET),
    RC_COVER("rc_codec: Reply encoder", refcache__v1__cancel_reply__descriptor,
             RC_FIELD_CANCEL_REPLY_CANCELLED, RC_FIELD_CANCEL_REPLY_STATE),
    RC_COVER("rc_codec: Reply encoder", refcache__v1__delete_reply__descriptor, RC_FIELD_DELETE_REPLY_FOUND),
    /* reply_stats copies the RC_STATS_FIELDS list, the version, draining and the store's strings. */
    {.codec = "rc_codec: Reply encoder",
     .file = __FILE__,
     .message = &refcache__v1__stats_reply__descriptor,
     .names = (const char *const[]){RC_STATS_FIELDS(STATS_NAME) "version", "draining", "store_path",
                                     "store_error", NULL}},
    {0},
};
