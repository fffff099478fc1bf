#include "rc_codec.h"

#include <assert.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "refcache.pb-c.h"

/* Arena memory is reused, so a view read after its release would go unseen
 * by ASan and memcheck: released arenas are poisoned for both. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#define __SANITIZE_ADDRESS__ 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define ARENA_POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#elif defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define ARENA_POISON(p, n)   VALGRIND_MAKE_MEM_NOACCESS(p, n)
#define ARENA_UNPOISON(p, n) VALGRIND_MAKE_MEM_UNDEFINED(p, n)
#endif
#endif
#ifndef ARENA_POISON
#define ARENA_POISON(p, n)   ((void) (p), (void) (n))
#define ARENA_UNPOISON(p, n) ((void) (p), (void) (n))
#endif

int rc_buf_reserve(rc_buf_t *buf, size_t n)
{
    if (n <= buf->cap)
        return 0;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < n)
        cap *= 2;
    uint8_t *data = realloc(buf->data, cap);
    if (!data)
        return -1;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

void rc_buf_free(rc_buf_t *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

static rc_str_t str_of(const char *s)
{
    return (rc_str_t){s, s ? strlen(s) : 0};
}

/* ---------------------------------------------------------------- arenas */

/* protobuf-c's unpack allocates every submessage, string and bytes field
 * apart; an arena makes that a pointer bump, and its release one store. The
 * static arenas are taken with an atomic flag, so that the broker, the tests
 * and the fuzzer may decode from any thread and keep several messages alive
 * at once; when every one is taken, a heap arena with no buffer of its own
 * (every allocation is a block) stands in. */
#define ARENA_BYTES 16384
#define ARENA_SLOTS 8
#define ARENA_ALIGN alignof(max_align_t)

/* An allocation that did not fit in the arena: malloc'd with this header in
 * front, on the arena's list so that the release frees it. */
typedef union rc_block {
    struct {
        union rc_block *prev, *next;
    } l;
    max_align_t align_;
} rc_block_t;

typedef struct {
    ProtobufCAllocator pa;
    uint8_t *buf;
    size_t cap, used;
    rc_block_t *blocks;
    bool heap;        /* a stand-in, freed at the release */
    atomic_bool busy; /* static arenas: taken */
} rc_arena_t;

static alignas(ARENA_ALIGN) uint8_t arena_mem[ARENA_SLOTS][ARENA_BYTES];
static rc_arena_t arenas[ARENA_SLOTS];
static atomic_size_t arenas_live;

static void *arena_alloc(void *data, size_t size)
{
    rc_arena_t *a = data;
    size_t n = (size + ARENA_ALIGN - 1) & ~(size_t) (ARENA_ALIGN - 1);
    if (size && n >= size && n <= a->cap - a->used) {
        void *p = a->buf + a->used;
        a->used += n;
        return p;
    }
    if (size > SIZE_MAX - sizeof(rc_block_t))
        return NULL;
    rc_block_t *b = malloc(sizeof *b + size);
    if (!b)
        return NULL;
    b->l.prev = NULL;
    b->l.next = a->blocks;
    if (a->blocks)
        a->blocks->l.prev = b;
    a->blocks = b;
    return b + 1;
}

/* protobuf-c frees what it allocated only when an unpack fails half-way (and
 * its scratch space for messages of many fields): arena memory is left for
 * the release, a block is freed now. */
static void arena_free(void *data, void *p)
{
    rc_arena_t *a = data;
    uintptr_t u = (uintptr_t) p;
    if (!p || (u >= (uintptr_t) a->buf && u < (uintptr_t) a->buf + a->cap))
        return;
    rc_block_t *b = (rc_block_t *) p - 1;
    if (b->l.prev)
        b->l.prev->l.next = b->l.next;
    else
        a->blocks = b->l.next;
    if (b->l.next)
        b->l.next->l.prev = b->l.prev;
    free(b);
}

static rc_arena_t *arena_acquire(void)
{
    rc_arena_t *a = NULL;
    for (size_t i = 0; i < ARENA_SLOTS; i++) {
        if (!atomic_load_explicit(&arenas[i].busy, memory_order_relaxed) &&
            !atomic_exchange_explicit(&arenas[i].busy, true, memory_order_acquire)) {
            a = &arenas[i];
            a->buf = arena_mem[i];
            a->cap = ARENA_BYTES;
            a->heap = false;
            break;
        }
    }
    if (!a) {
        a = malloc(sizeof *a);
        if (!a)
            return NULL;
        a->buf = NULL;
        a->cap = 0;
        a->heap = true;
    }
    a->used = 0;
    a->blocks = NULL;
    a->pa.alloc = arena_alloc;
    a->pa.free = arena_free;
    a->pa.allocator_data = a;
    ARENA_UNPOISON(a->buf, a->cap);
    atomic_fetch_add_explicit(&arenas_live, 1, memory_order_relaxed);
    return a;
}

static void arena_release(rc_arena_t *a)
{
    if (!a)
        return;
    for (rc_block_t *b = a->blocks, *next; b; b = next) {
        next = b->l.next;
        free(b);
    }
    atomic_fetch_sub_explicit(&arenas_live, 1, memory_order_relaxed);
    if (a->heap) {
        free(a);
        return;
    }
    ARENA_POISON(a->buf, a->used);
    atomic_store_explicit(&a->busy, false, memory_order_release);
}

size_t rc_codec_live_messages(void)
{
    return atomic_load_explicit(&arenas_live, memory_order_relaxed);
}

/* ---------------------------------------------------------------- requests */

int rc_codec_request(const uint8_t *data, size_t len, rc_request_t *req, const char **why)
{
    memset(req, 0, sizeof *req);
    rc_arena_t *a = arena_acquire();
    if (!a) {
        *why = "out of memory decoding a Request";
        return -1;
    }
    Refcache__V1__Request *pb = refcache__v1__request__unpack(&a->pa, len, data);
    if (!pb) {
        arena_release(a);
        *why = "not a refcache.v1.Request";
        return -1;
    }
    req->pb_ = pb;
    req->arena_ = a;
    req->id = pb->id;
    switch (pb->body_case) {
    case REFCACHE__V1__REQUEST__BODY_SUBMIT: {
        Refcache__V1__SubmitRequest *s = pb->submit;
        req->kind = RC_REQ_SUBMIT;
        req->function = str_of(s->function);
        req->ns = str_of(s->namespace_);
        req->payload = (rc_bytes_t){s->payload.data, s->payload.len};
        req->n_params = s->n_params;
        req->async_timeout_ms = s->async_timeout_ms;
        req->deadline_ms = s->deadline_ms;
        req->max_retries = s->max_retries;
        req->ttl_s = s->ttl_s;
        req->no_cache = s->no_cache;
        return 0;
    }
    case REFCACHE__V1__REQUEST__BODY_STATUS:
        req->kind = RC_REQ_STATUS;
        req->ref_id = str_of(pb->status->ref_id);
        req->ns = str_of(pb->status->namespace_);
        return 0;
    case REFCACHE__V1__REQUEST__BODY_WAIT:
        req->kind = RC_REQ_WAIT;
        req->ref_id = str_of(pb->wait->ref_id);
        req->timeout_ms = pb->wait->timeout_ms;
        req->ns = str_of(pb->wait->namespace_);
        return 0;
    case REFCACHE__V1__REQUEST__BODY_FETCH:
        req->kind = RC_REQ_FETCH;
        req->ref_id = str_of(pb->fetch->ref_id);
        req->offset = pb->fetch->offset;
        req->length = pb->fetch->length;
        req->ns = str_of(pb->fetch->namespace_);
        return 0;
    case REFCACHE__V1__REQUEST__BODY_CANCEL:
        req->kind = RC_REQ_CANCEL;
        req->ref_id = str_of(pb->cancel->ref_id);
        req->ns = str_of(pb->cancel->namespace_);
        return 0;
    case REFCACHE__V1__REQUEST__BODY_DELETE:
        req->kind = RC_REQ_DELETE;
        req->ref_id = str_of(pb->delete_->ref_id);
        req->ns = str_of(pb->delete_->namespace_);
        return 0;
    case REFCACHE__V1__REQUEST__BODY_STATS:
        req->kind = RC_REQ_STATS;
        return 0;
    default:
        *why = "request has no body (or one this broker does not know)";
        return -1;
    }
}

void rc_codec_request_param(const rc_request_t *req, size_t i, rc_str_t *key, rc_str_t *value)
{
    const Refcache__V1__Request *pb = req->pb_;
    const Refcache__V1__SubmitRequest__ParamsEntry *e = pb->submit->params[i];
    *key = str_of(e->key);
    *value = str_of(e->value);
}

void rc_codec_request_release(rc_request_t *req)
{
    /* Everything the unpack allocated is in the arena or on its list. */
    arena_release(req->arena_);
    req->arena_ = NULL;
    req->pb_ = NULL;
}

/* Varint helpers for the hand-framed dispatch envelope. */
static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t) (v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t) v;
    return n;
}

/* The attempt is the last field of the Dispatch and always takes one byte
 * (max_retries is capped so attempts stay below 128): a field that appears
 * later in a protobuf encoding wins, and the tag byte 0x10 is field 2,
 * varint. */
#define ATTEMPT_TAIL 2

int rc_codec_dispatch_spec(const rc_request_t *req, const char *ref_hex, uint8_t **spec, size_t *len)
{
    const Refcache__V1__Request *pb = req->pb_;
    const Refcache__V1__SubmitRequest *s = pb->submit;
    Refcache__V1__Dispatch d = REFCACHE__V1__DISPATCH__INIT;
    d.ref_id = (char *) ref_hex;
    d.function = s->function;
    d.n_params = s->n_params;
    d.params = (Refcache__V1__Dispatch__ParamsEntry **) s->params; /* same layout: key, value */
    d.payload = s->payload;
    size_t inner = refcache__v1__dispatch__get_packed_size(&d) + ATTEMPT_TAIL;
    size_t total = 1 + varint_size(inner) + inner;
    uint8_t *out = malloc(total);
    if (!out)
        return -1;
    size_t n = 0;
    out[n++] = 0x0a; /* BrokerMessage field 1 (dispatch), length-delimited */
    n += varint_put(out + n, inner);
    n += refcache__v1__dispatch__pack(&d, out + n);
    out[n++] = 0x10;
    out[n++] = 0;
    *spec = out;
    *len = n;
    return 0;
}

void rc_codec_dispatch_set_attempt(uint8_t *spec, size_t len, uint32_t attempt)
{
    spec[len - 1] = (uint8_t) (attempt & 0x7f);
}

/* ---------------------------------------------------------------- replies */

static void fill_task(Refcache__V1__TaskInfo *ti, const rc_taskview_t *v)
{
    ti->ref_id = (char *) v->ref_hex;
    ti->state = (Refcache__V1__State) v->state;
    ti->result.data = (uint8_t *) v->result.ptr;
    ti->result.len = v->result.len;
    ti->result_size = v->result_size;
    ti->result_truncated = v->result_truncated;
    ti->progress_done = v->progress_done;
    ti->progress_total = v->progress_total;
    ti->attempt = v->attempt;
    ti->max_retries = v->max_retries;
    ti->error_code = (Refcache__V1__Code) v->error_code;
    ti->error = (char *) (v->error ? v->error : "");
    ti->function = (char *) (v->function ? v->function : "");
    ti->namespace_ = (char *) (v->ns ? v->ns : "");
    ti->created_at_us = v->created_at_us;
    ti->started_at_us = v->started_at_us;
    ti->finished_at_us = v->finished_at_us;
    ti->stopped_at_us = v->stopped_at_us;
    ti->expires_at_us = v->expires_at_us;
    ti->ever_started = v->ever_started;
}

int rc_codec_reply(rc_buf_t *buf, const rc_reply_t *r)
{
    Refcache__V1__Reply reply = REFCACHE__V1__REPLY__INIT;
    Refcache__V1__SubmitReply submit = REFCACHE__V1__SUBMIT_REPLY__INIT;
    Refcache__V1__TaskInfo task = REFCACHE__V1__TASK_INFO__INIT;
    Refcache__V1__FetchReply fetch = REFCACHE__V1__FETCH_REPLY__INIT;
    Refcache__V1__CancelReply cancel = REFCACHE__V1__CANCEL_REPLY__INIT;
    Refcache__V1__DeleteReply del = REFCACHE__V1__DELETE_REPLY__INIT;
    Refcache__V1__StatsReply stats = REFCACHE__V1__STATS_REPLY__INIT;

    reply.id = r->id;
    reply.code = (Refcache__V1__Code) r->code;
    reply.message = (char *) (r->message ? r->message : "");
    if (r->task)
        fill_task(&task, r->task);
    switch (r->kind) {
    case RC_REPLY_SUBMIT:
        submit.task = r->task ? &task : NULL;
        submit.cache_hit = r->cache_hit;
        submit.deduplicated = r->deduplicated;
        reply.body_case = REFCACHE__V1__REPLY__BODY_SUBMIT;
        reply.submit = &submit;
        break;
    case RC_REPLY_TASK:
        if (!r->task)
            break;
        reply.body_case = REFCACHE__V1__REPLY__BODY_TASK;
        reply.task = &task;
        break;
    case RC_REPLY_FETCH:
        fetch.data.data = (uint8_t *) r->data.ptr;
        fetch.data.len = r->data.len;
        fetch.total_size = r->total_size;
        fetch.offset = r->offset;
        reply.body_case = REFCACHE__V1__REPLY__BODY_FETCH;
        reply.fetch = &fetch;
        break;
    case RC_REPLY_CANCEL:
        cancel.cancelled = r->flag;
        cancel.state = (Refcache__V1__State) r->state;
        reply.body_case = REFCACHE__V1__REPLY__BODY_CANCEL;
        reply.cancel = &cancel;
        break;
    case RC_REPLY_DELETE:
        del.found = r->flag;
        reply.body_case = REFCACHE__V1__REPLY__BODY_DELETE;
        reply.delete_ = &del;
        break;
    case RC_REPLY_STATS:
        if (!r->stats)
            break;
#define RC_STATS_COPY(name) stats.name = r->stats->name;
        RC_STATS_FIELDS(RC_STATS_COPY)
#undef RC_STATS_COPY
        stats.version = (char *) (r->stats->version ? r->stats->version : "");
        reply.body_case = REFCACHE__V1__REPLY__BODY_STATS;
        reply.stats = &stats;
        break;
    case RC_REPLY_NONE:
        break;
    }
    size_t n = refcache__v1__reply__get_packed_size(&reply);
    if (rc_buf_reserve(buf, n) != 0)
        return -1;
    buf->len = refcache__v1__reply__pack(&reply, buf->data);
    return 0;
}

/* ---------------------------------------------------------------- workers */

int rc_codec_wmsg(const uint8_t *data, size_t len, rc_wmsg_t *msg, const char **why)
{
    memset(msg, 0, sizeof *msg);
    rc_arena_t *a = arena_acquire();
    if (!a) {
        *why = "out of memory decoding a WorkerMessage";
        return -1;
    }
    Refcache__V1__WorkerMessage *pb = refcache__v1__worker_message__unpack(&a->pa, len, data);
    if (!pb) {
        arena_release(a);
        *why = "not a refcache.v1.WorkerMessage";
        return -1;
    }
    msg->pb_ = pb;
    msg->arena_ = a;
    switch (pb->body_case) {
    case REFCACHE__V1__WORKER_MESSAGE__BODY_READY:
        msg->kind = RC_WMSG_READY;
        msg->credit = pb->ready->credit;
        msg->heartbeat_ms = pb->ready->heartbeat_ms;
        msg->n_functions = pb->ready->n_functions;
        msg->n_cacheable = pb->ready->n_cacheable;
        return 0;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED:
        msg->kind = RC_WMSG_STARTED;
        msg->ref_id = str_of(pb->started->ref_id);
        msg->attempt = pb->started->attempt;
        return 0;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_PROGRESS:
        msg->kind = RC_WMSG_PROGRESS;
        msg->ref_id = str_of(pb->progress->ref_id);
        msg->attempt = pb->progress->attempt;
        msg->done = pb->progress->done;
        msg->total = pb->progress->total;
        return 0;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT:
        msg->kind = RC_WMSG_RESULT;
        msg->ref_id = str_of(pb->result->ref_id);
        msg->attempt = pb->result->attempt;
        msg->data = (rc_bytes_t){pb->result->data.data, pb->result->data.len};
        return 0;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_FAILURE:
        msg->kind = RC_WMSG_FAILURE;
        msg->ref_id = str_of(pb->failure->ref_id);
        msg->attempt = pb->failure->attempt;
        msg->code = pb->failure->code;
        msg->message = str_of(pb->failure->message);
        msg->retryable = pb->failure->retryable;
        return 0;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK:
        msg->kind = RC_WMSG_CANCEL_ACK;
        msg->ref_id = str_of(pb->cancel_ack->ref_id);
        msg->attempt = pb->cancel_ack->attempt;
        msg->started = pb->cancel_ack->started;
        return 0;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_HEARTBEAT:
        msg->kind = RC_WMSG_HEARTBEAT;
        return 0;
    default:
        *why = "worker message has no body";
        return -1;
    }
}

rc_str_t rc_codec_wmsg_function(const rc_wmsg_t *msg, size_t i)
{
    const Refcache__V1__WorkerMessage *pb = msg->pb_;
    return str_of(pb->ready->functions[i]);
}

rc_str_t rc_codec_wmsg_cacheable(const rc_wmsg_t *msg, size_t i)
{
    const Refcache__V1__WorkerMessage *pb = msg->pb_;
    return str_of(pb->ready->cacheable[i]);
}

uint8_t *rc_codec_wmsg_take_data(rc_wmsg_t *msg, size_t *len)
{
    /* The bytes live in the arena (or on its list), which the release
     * frees as a whole: the caller gets a copy. */
    Refcache__V1__WorkerMessage *pb = msg->pb_;
    ProtobufCBinaryData *d = &pb->result->data;
    uint8_t *data = d->len ? malloc(d->len) : NULL;
    *len = data ? d->len : 0;
    if (data)
        memcpy(data, d->data, d->len);
    d->data = NULL;
    d->len = 0;
    msg->data = (rc_bytes_t){NULL, 0};
    return data;
}

void rc_codec_wmsg_release(rc_wmsg_t *msg)
{
    arena_release(msg->arena_);
    msg->arena_ = NULL;
    msg->pb_ = NULL;
}

int rc_codec_control_hello(const uint8_t *data, size_t len)
{
    rc_arena_t *a = arena_acquire();
    if (!a)
        return -1;
    Refcache__V1__ControlHello *pb = refcache__v1__control_hello__unpack(&a->pa, len, data);
    arena_release(a);
    return pb ? 0 : -1;
}

int rc_codec_cancel_notice(rc_buf_t *buf, const char *ref_hex, uint32_t attempt, int reason)
{
    Refcache__V1__ControlMessage m = REFCACHE__V1__CONTROL_MESSAGE__INIT;
    Refcache__V1__CancelNotice c = REFCACHE__V1__CANCEL_NOTICE__INIT;
    c.ref_id = (char *) ref_hex;
    c.attempt = attempt;
    c.reason = (Refcache__V1__Code) reason;
    m.body_case = REFCACHE__V1__CONTROL_MESSAGE__BODY_CANCEL;
    m.cancel = &c;
    size_t n = refcache__v1__control_message__get_packed_size(&m);
    if (rc_buf_reserve(buf, n) != 0)
        return -1;
    buf->len = refcache__v1__control_message__pack(&m, buf->data);
    return 0;
}

static int broker_msg(rc_buf_t *buf, Refcache__V1__BrokerMessage *m)
{
    size_t n = refcache__v1__broker_message__get_packed_size(m);
    if (rc_buf_reserve(buf, n) != 0)
        return -1;
    buf->len = refcache__v1__broker_message__pack(m, buf->data);
    return 0;
}

int rc_codec_broker_heartbeat(rc_buf_t *buf)
{
    Refcache__V1__BrokerMessage m = REFCACHE__V1__BROKER_MESSAGE__INIT;
    Refcache__V1__Heartbeat hb = REFCACHE__V1__HEARTBEAT__INIT;
    m.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_HEARTBEAT;
    m.heartbeat = &hb;
    return broker_msg(buf, &m);
}

int rc_codec_broker_reannounce(rc_buf_t *buf)
{
    Refcache__V1__BrokerMessage m = REFCACHE__V1__BROKER_MESSAGE__INIT;
    Refcache__V1__Reannounce ra = REFCACHE__V1__REANNOUNCE__INIT;
    m.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_REANNOUNCE;
    m.reannounce = &ra;
    return broker_msg(buf, &m);
}
