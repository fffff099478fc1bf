/* Unit tests of rc_client_codec against protobuf-c itself: the hand-written
 * requests must be protobuf-c's bytes, and the fast Reply reader must give
 * protobuf-c's view (or decline) whatever the bytes: replies packed by
 * protobuf-c, the same with unknown or repeated fields, mutated, cut, merged
 * or plain garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rc_client_codec.h"
#include "refcache.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static uint64_t rng = 0x2545f4914f6cdd1dULL;

/* splitmix64: repeatable from run to run. */
static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static bool chance(unsigned one_in)
{
    return rnd() % one_in == 0;
}

/* 0 often, then small numbers, varint-size edges, anything. */
static uint64_t rnd_u64(void)
{
    switch (rnd() % 6) {
    case 0:
    case 1:
        return 0;
    case 2:
        return rnd() % 200;
    case 3: {
        uint64_t edge = 1ULL << (7 * (1 + rnd() % 9));
        return edge - 1 + rnd() % 2;
    }
    default:
        return rnd() >> (rnd() % 64);
    }
}

static uint32_t rnd_u32(void)
{
    return (uint32_t) (chance(4) ? rnd() : rnd_u64());
}

/* A Code or State: mostly valid, sometimes any int32 (a negative one takes
 * ten bytes on the wire). */
static int rnd_enum(bool common)
{
    if (common || !chance(8))
        return chance(2) ? 0 : (int) (rnd() % 17);
    return (int32_t) (uint32_t) rnd();
}

/* A length around the varint edges (127/128, 16383/16384) or short. */
static size_t rnd_len(void)
{
    static const size_t edges[] = {0, 1, 2, 63, 64, 65, 127, 128, 129, 300, 16383, 16384, 16385};
    return chance(3) ? edges[rnd() % (sizeof edges / sizeof edges[0])] : rnd() % 24;
}

/* Strings live in a pool freed after each case. */
#define POOL_MAX 256
static void *pool[POOL_MAX];
static size_t pool_n;

static void *pool_keep(void *p)
{
    assert_non_null(p);
    assert_true(pool_n < POOL_MAX);
    pool[pool_n++] = p;
    return p;
}

static void pool_clear(void)
{
    while (pool_n)
        free(pool[--pool_n]);
}

/* A C string of n random non-NUL bytes (invalid UTF-8 included). */
static char *rnd_cstr_n(size_t n)
{
    char *s = pool_keep(malloc(n + 1));
    for (size_t i = 0; i < n; i++)
        s[i] = (char) (chance(4) ? 1 + rnd() % 255 : 'a' + rnd() % 26);
    s[n] = '\0';
    return s;
}

/* NULL, "" or a random C string. */
static char *rnd_cstr(void)
{
    if (chance(4))
        return chance(2) ? NULL : "";
    return rnd_cstr_n(rnd_len());
}

static void assert_same_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
    if (got_len != want_len || memcmp(got, want, want_len) != 0) {
        print_error("encoded %zu bytes, protobuf-c %zu\n", got_len, want_len);
        for (size_t i = 0; i < got_len || i < want_len; i++)
            print_error("%4zu: %02x %02x%s\n", i, i < got_len ? got[i] : 0, i < want_len ? want[i] : 0,
                        i < got_len && i < want_len && got[i] == want[i] ? "" : "  <--");
        fail();
    }
}

/* Memory for decoded replies, all freed at once (as the client's arena). */
typedef struct block {
    struct block *next;
    max_align_t data[];
} block_t;

typedef struct {
    ProtobufCAllocator pa;
    block_t *blocks;
} heap_t;

static void *heap_alloc(void *data, size_t n)
{
    heap_t *h = data;
    block_t *b = malloc(sizeof *b + n);
    if (!b)
        return NULL;
    b->next = h->blocks;
    h->blocks = b;
    return b->data;
}

static void heap_free(void *data, void *p)
{
    /* Everything goes in heap_reset. */
}

static void heap_init(heap_t *h)
{
    h->pa.alloc = heap_alloc;
    h->pa.free = heap_free;
    h->pa.allocator_data = h;
    h->blocks = NULL;
}

static void heap_reset(heap_t *h)
{
    while (h->blocks) {
        block_t *next = h->blocks->next;
        free(h->blocks);
        h->blocks = next;
    }
}

/* ---------------------------------------------------------------- requests */

/* The bytes the codec wrote must be the ones protobuf-c packs for req. */
static void assert_packs_as(const uint8_t *got, size_t got_len, const Refcache__V1__Request *req)
{
    uint8_t *want = malloc(refcache__v1__request__get_packed_size(req) + 1);
    assert_non_null(want);
    size_t want_len = refcache__v1__request__pack(req, want);
    assert_same_bytes(got, got_len, want, want_len);
    free(want);
}

/* The Submit built for protobuf-c as the library did before the codec: the
 * reference the codec's bytes must match. */
static void assert_submit_as_pb(const uint8_t *got, size_t got_len, uint64_t id, const char *function,
                                const refcache_submit_options_t *o, const char *ns)
{
    Refcache__V1__SubmitRequest sub = REFCACHE__V1__SUBMIT_REQUEST__INIT;
    Refcache__V1__SubmitRequest__ParamsEntry *entries = calloc(o->param_count + 1, sizeof *entries);
    Refcache__V1__SubmitRequest__ParamsEntry **ptrs = calloc(o->param_count + 1, sizeof *ptrs);
    assert_non_null(entries);
    assert_non_null(ptrs);
    for (size_t i = 0; i < o->param_count; i++) {
        Refcache__V1__SubmitRequest__ParamsEntry init = REFCACHE__V1__SUBMIT_REQUEST__PARAMS_ENTRY__INIT;
        entries[i] = init;
        entries[i].key = (char *) o->params[i].key;
        entries[i].value = (char *) o->params[i].value;
        ptrs[i] = &entries[i];
    }
    sub.function = (char *) function;
    sub.n_params = o->param_count;
    sub.params = o->param_count ? ptrs : NULL;
    sub.payload.data = (uint8_t *) o->payload;
    sub.payload.len = o->payload ? o->payload_len : 0;
    sub.async_timeout_ms = o->async_timeout_ms;
    sub.deadline_ms = o->deadline_ms;
    sub.max_retries = o->max_retries;
    sub.ttl_s = o->ttl_s;
    sub.namespace_ = (char *) ns;
    sub.no_cache = o->no_cache;
    sub.request_key = (char *) (o->request_key ? o->request_key : "");
    Refcache__V1__Request req = REFCACHE__V1__REQUEST__INIT;
    req.id = id;
    req.body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
    req.submit = &sub;
    assert_packs_as(got, got_len, &req);
    free(entries);
    free(ptrs);
}

static void check_submit(uint64_t id, const char *function, const refcache_submit_options_t *o,
                         const char *ns)
{
    rc_client_codec_submit_t s = {.id = id, .function = function, .options = o, .ns = ns};
    size_t n = rc_client_codec_submit_size(&s);
    uint8_t *out = malloc(n ? n : 1);
    assert_non_null(out);
    uint8_t *end = rc_client_codec_submit_put(&s, out);
    assert_ptr_equal(end, out + n);
    assert_submit_as_pb(out, n, id, function, o, ns);
    free(out);
}

/* Random Submits: every field at its default or not, empty keys and values,
 * long strings, numbers at the varint edges. */
static void test_submit_bytes_random(void **state)
{
    refcache_param_t params[40];
    for (int c = 0; c < 5000; c++) {
        refcache_submit_options_t o;
        refcache_submit_options_init(&o);
        o.param_count = chance(3) ? 0 : rnd() % (chance(8) ? 40 : 4);
        for (size_t i = 0; i < o.param_count; i++) {
            params[i].key = chance(6) ? "" : rnd_cstr_n(rnd() % 12);
            params[i].value = chance(6) ? "" : rnd_cstr_n(chance(10) ? rnd_len() : rnd() % 12);
        }
        o.params = o.param_count ? params : NULL;
        size_t plen = chance(3) ? 0 : rnd_len();
        o.payload = chance(8) ? NULL : rnd_cstr_n(plen);
        o.payload_len = plen;
        o.async_timeout_ms = rnd_u32();
        o.deadline_ms = rnd_u32();
        o.max_retries = rnd_u32();
        o.ttl_s = rnd_u32();
        o.no_cache = chance(2);
        o.request_key = chance(2) ? NULL : rnd_cstr();
        char *fn = rnd_cstr();
        check_submit(1 + rnd_u64() % UINT64_MAX, fn ? fn : "", &o, rnd_cstr());
        pool_clear();
    }
}

/* The defaults alone, and what the bench sends. */
static void test_submit_bytes_fixed(void **state)
{
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    check_submit(1, "", &o, NULL);
    check_submit(1, "echo", &o, "");
    check_submit(UINT64_MAX, "echo", &o, "ns");
    uint8_t payload[32] = {0};
    o.payload = payload;
    o.payload_len = sizeof payload;
    o.async_timeout_ms = 30000;
    check_submit(300000, "echo", &o, NULL);
    refcache_param_t p[] = {{"", ""}, {"k", ""}, {"", "v"}, {"key", "value"}};
    o.params = p;
    o.param_count = 4;
    o.no_cache = true;
    check_submit(7, "echo", &o, "team");
}

/* The same Request built for protobuf-c. Its body cases are numbered as
 * their fields, and the oneof's members share one pointer. */
static void assert_ref_as_pb(const uint8_t *got, size_t got_len, const rc_client_codec_ref_t *r)
{
    Refcache__V1__StatusRequest status = REFCACHE__V1__STATUS_REQUEST__INIT;
    Refcache__V1__WaitRequest wait = REFCACHE__V1__WAIT_REQUEST__INIT;
    Refcache__V1__FetchRequest fetch = REFCACHE__V1__FETCH_REQUEST__INIT;
    Refcache__V1__CancelRequest cancel = REFCACHE__V1__CANCEL_REQUEST__INIT;
    Refcache__V1__DeleteRequest del = REFCACHE__V1__DELETE_REQUEST__INIT;
    Refcache__V1__StatsRequest stats = REFCACHE__V1__STATS_REQUEST__INIT;
    char *ref = (char *) r->ref_id, *ns = (char *) r->ns;
    status.ref_id = wait.ref_id = fetch.ref_id = cancel.ref_id = del.ref_id = ref;
    status.namespace_ = wait.namespace_ = fetch.namespace_ = cancel.namespace_ = del.namespace_ = ns;
    wait.timeout_ms = (uint32_t) r->num[0];
    fetch.offset = r->num[0];
    fetch.length = (uint32_t) r->num[1];
    void *bodies[] = {[RC_CLIENT_CODEC_STATUS] = &status, [RC_CLIENT_CODEC_WAIT] = &wait,
                      [RC_CLIENT_CODEC_FETCH] = &fetch,   [RC_CLIENT_CODEC_CANCEL] = &cancel,
                      [RC_CLIENT_CODEC_DELETE] = &del,    [RC_CLIENT_CODEC_STATS] = &stats};
    Refcache__V1__Request req = REFCACHE__V1__REQUEST__INIT;
    req.id = r->id;
    req.body_case = (Refcache__V1__Request__BodyCase) r->body;
    req.status = bodies[r->body];
    assert_packs_as(got, got_len, &req);
}

/* Status, Wait, Fetch, Cancel, Delete and Stats, with random fields. */
static void test_ref_bytes_random(void **state)
{
    static const rc_client_codec_body_t bodies[] = {RC_CLIENT_CODEC_STATUS, RC_CLIENT_CODEC_WAIT,
                                                    RC_CLIENT_CODEC_FETCH,  RC_CLIENT_CODEC_CANCEL,
                                                    RC_CLIENT_CODEC_DELETE, RC_CLIENT_CODEC_STATS};
    for (int c = 0; c < 5000; c++) {
        rc_client_codec_ref_t r = {.id = 1 + rnd_u64() % UINT64_MAX, .body = bodies[rnd() % 6]};
        switch (r.body) {
        case RC_CLIENT_CODEC_WAIT:
            r.n_num = 1;
            r.num[0] = rnd_u32();
            break;
        case RC_CLIENT_CODEC_FETCH:
            r.n_num = 2;
            r.num[0] = rnd_u64();
            r.num[1] = rnd_u32();
            break;
        default:
            break;
        }
        if (r.body != RC_CLIENT_CODEC_STATS) {
            r.ref_id = rnd_cstr();
            r.ns = rnd_cstr();
        }
        size_t n = rc_client_codec_ref_size(&r);
        uint8_t *out = malloc(n);
        assert_non_null(out);
        assert_ptr_equal(rc_client_codec_ref_put(&r, out), out + n);
        assert_ref_as_pb(out, n, &r);
        free(out);
        pool_clear();
    }
}

/* ---------------------------------------------------------------- replies */

/* A packed Reply in a malloc'd buffer. */
typedef struct {
    uint8_t *data;
    size_t len;
} packed_t;

/* One random TaskInfo; common: non-negative enums and a ref_id the view
 * can hold, so the fast reader must take it. */
static void rnd_task(Refcache__V1__TaskInfo *t, bool common)
{
    Refcache__V1__TaskInfo init = REFCACHE__V1__TASK_INFO__INIT;
    *t = init;
    t->ref_id =
        chance(8) ? "" : rnd_cstr_n(common || !chance(6) ? rnd() % (REFCACHE_REF_MAX + 1) : rnd_len());
    t->state = rnd_enum(common);
    if (chance(2)) {
        t->result.len = rnd_len();
        t->result.data = (uint8_t *) rnd_cstr_n(t->result.len);
    }
    t->result_size = rnd_u64();
    t->result_truncated = chance(3);
    t->progress_done = rnd_u64();
    t->progress_total = rnd_u64();
    t->attempt = rnd_u32();
    t->error_code = rnd_enum(common);
    t->error = rnd_cstr();
    t->function = rnd_cstr();
    t->created_at_us = rnd_u64();
    t->started_at_us = rnd_u64();
    t->finished_at_us = rnd_u64();
    t->stopped_at_us = rnd_u64();
    t->max_retries = rnd_u32();
    t->namespace_ = rnd_cstr();
    t->expires_at_us = rnd_u64();
    t->ever_started = chance(2);
}

/* An unknown field (or a known number again, after the known fields) that
 * protobuf-c packs as given: a varint (perhaps padded), a length-prefixed
 * run, or a fixed 32/64-bit value. */
static void rnd_unknown(ProtobufCMessage *base, ProtobufCMessageUnknownField *u, uint8_t *buf)
{
    u->tag = chance(2) ? 1 + (uint32_t) (rnd() % 24) : 1 + (uint32_t) (rnd() % 3000);
    size_t n = 0;
    switch (rnd() % 4) {
    case 0:
        u->wire_type = PROTOBUF_C_WIRE_TYPE_VARINT;
        buf[n++] = (uint8_t) (rnd() % 2 ? 0x81 : 0x01);
        if (buf[0] & 0x80)
            buf[n++] = (uint8_t) (rnd() % 2 ? 0x00 : 0x05); /* padded, or a two-byte value */
        break;
    case 1:
        u->wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
        buf[n++] = 3;
        buf[n++] = 'a';
        buf[n++] = 0;
        buf[n++] = 'b';
        break;
    case 2:
        u->wire_type = PROTOBUF_C_WIRE_TYPE_32BIT;
        n = 4;
        memset(buf, 7, n);
        break;
    default:
        u->wire_type = PROTOBUF_C_WIRE_TYPE_64BIT;
        n = 8;
        memset(buf, 9, n);
        break;
    }
    u->len = n;
    u->data = buf;
    base->n_unknown_fields = 1;
    base->unknown_fields = u;
}

typedef struct {
    Refcache__V1__Reply reply;
    Refcache__V1__SubmitReply submit;
    Refcache__V1__TaskInfo task;
    Refcache__V1__FetchReply fetch;
    Refcache__V1__CancelReply cancel;
    Refcache__V1__DeleteReply del;
    Refcache__V1__StatsReply stats;
    Refcache__V1__Event event;
    ProtobufCMessageUnknownField unknown;
    uint8_t unknown_data[16];
} reply_parts_t;

/* A random Reply. common: a Submit or Status/Wait answer, or an error
 * without a body, in the shape the broker sends. Otherwise any body, at
 * times with an unknown field somewhere. */
static packed_t rnd_reply(bool common)
{
    reply_parts_t m = {.reply = REFCACHE__V1__REPLY__INIT,
                       .submit = REFCACHE__V1__SUBMIT_REPLY__INIT,
                       .fetch = REFCACHE__V1__FETCH_REPLY__INIT,
                       .cancel = REFCACHE__V1__CANCEL_REPLY__INIT,
                       .del = REFCACHE__V1__DELETE_REPLY__INIT,
                       .stats = REFCACHE__V1__STATS_REPLY__INIT,
                       .event = REFCACHE__V1__EVENT__INIT};
    rnd_task(&m.task, common);
    m.reply.id = rnd_u64();
    m.reply.code = rnd_enum(common);
    m.reply.message = rnd_cstr();
    m.submit.task = !common && chance(10) ? NULL : &m.task;
    m.submit.cache_hit = chance(2);
    m.submit.deduplicated = chance(2);
    unsigned body = (unsigned) (rnd() % (common ? 6 : 10));
    if (body == (common ? 5u : 9u)) {
        /* A watch's event. */
        m.event.kind = rnd_enum(common);
        m.event.ref_id = rnd_cstr();
        m.event.function = rnd_cstr();
        m.event.namespace_ = rnd_cstr();
        m.event.old_state = rnd_enum(common);
        m.event.new_state = rnd_enum(common);
        m.event.event = rnd_cstr();
        m.event.attempt = rnd_u32();
        m.event.worker_id = rnd_cstr();
        m.event.code = rnd_enum(common);
        m.event.client = rnd_cstr();
        m.event.stop_confirmed = chance(2);
        m.event.at_us = rnd_u64();
        m.event.lost = rnd_u64();
        m.event.progress_done = rnd_u64();
        m.event.progress_total = rnd_u64();
        m.reply.body_case = REFCACHE__V1__REPLY__BODY_EVENT;
        m.reply.event = &m.event;
    } else {
        switch (body) {
        case 0:
        case 1:
            m.reply.body_case = REFCACHE__V1__REPLY__BODY_SUBMIT;
            m.reply.submit = &m.submit;
            break;
        case 2:
        case 3:
            m.reply.body_case = REFCACHE__V1__REPLY__BODY_TASK;
            m.reply.task = &m.task;
            break;
        case 5:
            m.fetch.data.len = rnd_len();
            m.fetch.data.data = (uint8_t *) rnd_cstr_n(m.fetch.data.len);
            m.fetch.total_size = rnd_u64();
            m.fetch.offset = rnd_u64();
            m.reply.body_case = REFCACHE__V1__REPLY__BODY_FETCH;
            m.reply.fetch = &m.fetch;
            break;
        case 6:
            m.cancel.cancelled = chance(2);
            m.cancel.state = rnd_enum(false);
            m.reply.body_case = REFCACHE__V1__REPLY__BODY_CANCEL;
            m.reply.cancel = &m.cancel;
            break;
        case 7:
            m.del.found = chance(2);
            m.reply.body_case = REFCACHE__V1__REPLY__BODY_DELETE;
            m.reply.delete_ = &m.del;
            break;
        case 8:
            m.stats.tasks_pending = rnd_u64();
            m.stats.deadline_exceeded_total = rnd_u64();
            m.stats.version = rnd_cstr();
            m.reply.body_case = REFCACHE__V1__REPLY__BODY_STATS;
            m.reply.stats = &m.stats;
            break;
        default: /* no body */
            break;
        }
    }
    if (!common && chance(4)) {
        ProtobufCMessage *where[] = {&m.reply.base, &m.submit.base, &m.task.base, &m.event.base};
        rnd_unknown(where[rnd() % 4], &m.unknown, m.unknown_data);
    }
    packed_t p;
    p.len = refcache__v1__reply__get_packed_size(&m.reply);
    p.data = malloc(p.len ? p.len : 1);
    assert_non_null(p.data);
    assert_int_equal(refcache__v1__reply__pack(&m.reply, p.data), p.len);
    return p;
}

/* Strings of a task view are NULL only when there is no task. */
static void assert_same_str(const char *got, const char *want)
{
    assert_int_equal(got == NULL, want == NULL);
    if (got)
        assert_string_equal(got, want);
}

static void assert_same_task(const refcache_task_view_t *a, const refcache_task_view_t *b)
{
    assert_string_equal(a->ref_id, b->ref_id);
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->result_len, b->result_len);
    assert_int_equal(a->result == NULL, b->result == NULL);
    if (a->result_len)
        assert_memory_equal(a->result, b->result, a->result_len);
    assert_true(a->result_size == b->result_size);
    assert_int_equal(a->result_truncated, b->result_truncated);
    assert_true(a->progress_done == b->progress_done);
    assert_true(a->progress_total == b->progress_total);
    assert_int_equal(a->attempt, b->attempt);
    assert_int_equal(a->error_code, b->error_code);
    assert_same_str(a->error, b->error);
    assert_same_str(a->function, b->function);
    assert_same_str(a->namespace_name, b->namespace_name);
    assert_true(a->created_at_us == b->created_at_us);
    assert_true(a->started_at_us == b->started_at_us);
    assert_true(a->finished_at_us == b->finished_at_us);
    assert_true(a->stopped_at_us == b->stopped_at_us);
    assert_true(a->expires_at_us == b->expires_at_us);
    assert_int_equal(a->max_retries, b->max_retries);
    assert_int_equal(a->ever_started, b->ever_started);
    assert_int_equal(a->cache_hit, b->cache_hit);
    assert_int_equal(a->deduplicated, b->deduplicated);
}

static void assert_same_view(const refcache_reply_t *a, const refcache_reply_t *b)
{
    assert_true(a->id == b->id);
    assert_int_equal(a->code, b->code);
    assert_same_str(a->message, b->message);
    assert_int_equal(a->kind, b->kind);
    assert_same_task(&a->task, &b->task);
    assert_int_equal(a->fetch.len, b->fetch.len);
    if (a->fetch.len)
        assert_memory_equal(a->fetch.data, b->fetch.data, a->fetch.len);
    assert_true(a->fetch.offset == b->fetch.offset);
    assert_true(a->fetch.total_size == b->fetch.total_size);
    assert_int_equal(a->cancelled, b->cancelled);
    assert_int_equal(a->cancel_state, b->cancel_state);
    assert_int_equal(a->found, b->found);
    assert_memory_equal(&a->stats, &b->stats, sizeof a->stats);
    const refcache_event_t *x = &a->event, *y = &b->event;
    assert_int_equal(x->kind, y->kind);
    assert_same_str(x->ref_id, y->ref_id);
    assert_same_str(x->function, y->function);
    assert_same_str(x->namespace_name, y->namespace_name);
    assert_int_equal(x->old_state, y->old_state);
    assert_int_equal(x->new_state, y->new_state);
    assert_same_str(x->event, y->event);
    assert_int_equal(x->attempt, y->attempt);
    assert_same_str(x->worker_id, y->worker_id);
    assert_int_equal(x->code, y->code);
    assert_same_str(x->client, y->client);
    assert_int_equal(x->stop_confirmed, y->stop_confirmed);
    assert_true(x->at_us == y->at_us && x->lost == y->lost);
    assert_true(x->progress_done == y->progress_done && x->progress_total == y->progress_total);
}

typedef struct {
    size_t cases, fast, accepted;
} tally_t;

/* Decodes the bytes three ways: the fast reader alone, protobuf-c's path
 * alone, and both as the client runs them. What the fast reader accepts,
 * protobuf-c accepts with the same view; the client's result is protobuf-c's.
 * Returns whether the fast reader took it. */
static bool expect_as_protobuf(const uint8_t *data, size_t len, tally_t *tally)
{
    static heap_t hf, hp, hc;
    heap_init(&hf);
    heap_init(&hp);
    heap_init(&hc);
    refcache_reply_t fast, pb, client;
    int rf = rc_client_codec_reply_fast(data, len, &hf.pa, &fast);
    int rp = rc_client_codec_reply_pb(data, len, &hp.pa, &pb);
    int rcl = rc_client_codec_reply(data, len, &hc.pa, &client);
    assert_true(rf == 0 || rf == -1);
    assert_true(rp == 0 || rp == REFCACHE_EREPLY);
    if (rf == 0) {
        assert_int_equal(rp, 0);
        assert_same_view(&fast, &pb);
    }
    assert_int_equal(rcl, rp);
    if (rp == 0)
        assert_same_view(&client, &pb);
    else
        assert_true(client.id == pb.id); /* the client counts a bad reply by its id */
    tally->cases++;
    tally->fast += rf == 0;
    tally->accepted += rp == 0;
    heap_reset(&hf);
    heap_reset(&hp);
    heap_reset(&hc);
    return rf == 0;
}

/* The shapes the broker sends: the fast reader must take every one, so
 * that a fast path that silently always declines fails here. */
static void test_reply_fast_taken(void **state)
{
    tally_t t = {0};
    for (int c = 0; c < 5000; c++) {
        packed_t p = rnd_reply(true);
        if (!expect_as_protobuf(p.data, p.len, &t)) {
            print_error("case %d: the fast reader declined a common reply of %zu bytes\n", c, p.len);
            fail();
        }
        free(p.data);
        pool_clear();
    }
    assert_int_equal(t.fast, t.cases);
}

/* A Submit answer exactly as the broker sends it to the bench (a COMPLETE
 * echo task, fields 16 to 19 included, which take two-byte keys). */
static void test_reply_fast_broker_shape(void **state)
{
    Refcache__V1__TaskInfo ti = REFCACHE__V1__TASK_INFO__INIT;
    ti.ref_id = "0123456789abcdef0123456789abcdef";
    ti.state = REFCACHE__V1__STATE__STATE_COMPLETE;
    uint8_t result[32] = {1, 2, 3};
    ti.result.data = result;
    ti.result.len = sizeof result;
    ti.result_size = sizeof result;
    ti.attempt = 1;
    ti.function = "echo";
    ti.created_at_us = 1700000000000000;
    ti.started_at_us = 1700000000000100;
    ti.finished_at_us = 1700000000000200;
    ti.max_retries = 2;
    ti.namespace_ = "team";
    ti.expires_at_us = 1700003600000200;
    ti.ever_started = true;
    Refcache__V1__SubmitReply sr = REFCACHE__V1__SUBMIT_REPLY__INIT;
    sr.task = &ti;
    sr.deduplicated = true;
    Refcache__V1__Reply r = REFCACHE__V1__REPLY__INIT;
    r.id = 299999;
    r.body_case = REFCACHE__V1__REPLY__BODY_SUBMIT;
    r.submit = &sr;
    uint8_t buf[512];
    size_t n = refcache__v1__reply__pack(&r, buf);
    assert_true(n < sizeof buf);
    tally_t t = {0};
    assert_true(expect_as_protobuf(buf, n, &t));

    heap_t h;
    heap_init(&h);
    refcache_reply_t v;
    assert_int_equal(rc_client_codec_reply_fast(buf, n, &h.pa, &v), 0);
    assert_int_equal(v.kind, REFCACHE_REPLY_SUBMIT);
    assert_true(v.id == 299999);
    assert_string_equal(v.task.ref_id, ti.ref_id);
    assert_int_equal(v.task.state, REFCACHE__V1__STATE__STATE_COMPLETE);
    assert_int_equal(v.task.result_len, sizeof result);
    assert_true(v.task.expires_at_us == ti.expires_at_us);
    assert_int_equal(v.task.max_retries, 2);
    assert_string_equal(v.task.namespace_name, "team");
    assert_true(v.task.ever_started);
    assert_true(v.task.deduplicated);
    assert_false(v.task.cache_hit);
    heap_reset(&h);

    /* And as the answer to a Status. */
    r.body_case = REFCACHE__V1__REPLY__BODY_TASK;
    r.task = &ti;
    n = refcache__v1__reply__pack(&r, buf);
    assert_true(expect_as_protobuf(buf, n, &t));
}

/* Cuts, bit flips, inserted bytes, two replies run together (protobuf-c
 * merges them: repeated fields), over any body and with unknown fields. */
static void mutate(uint8_t **data, size_t *len)
{
    switch (rnd() % 6) {
    case 0:
        if (*len)
            (*data)[rnd() % *len] ^= (uint8_t) (1u << (rnd() % 8));
        break;
    case 1:
        *len = *len ? (size_t) (rnd() % *len) : 0;
        break;
    case 2: {
        size_t at = *len ? (size_t) (rnd() % (*len + 1)) : 0, k = 1 + rnd() % 3;
        uint8_t *p = realloc(*data, *len + k);
        assert_non_null(p);
        memmove(p + at + k, p + at, *len - at);
        for (size_t i = 0; i < k; i++)
            p[at + i] = (uint8_t) rnd();
        *data = p;
        *len += k;
        break;
    }
    case 3: {
        packed_t more = rnd_reply(chance(2));
        uint8_t *p = realloc(*data, *len + more.len + 1);
        assert_non_null(p);
        memcpy(p + *len, more.data, more.len);
        *data = p;
        *len += more.len;
        free(more.data);
        break;
    }
    default: /* as packed */
        break;
    }
}

static void test_reply_random_as_protobuf(void **state)
{
    tally_t t = {0};
    for (int c = 0; c < 20000; c++) {
        packed_t p = rnd_reply(chance(3));
        mutate(&p.data, &p.len);
        if (chance(4))
            mutate(&p.data, &p.len);
        expect_as_protobuf(p.data, p.len, &t);
        free(p.data);
        pool_clear();
    }
    print_message("%zu replies: protobuf-c accepted %zu, the fast reader took %zu\n", t.cases, t.accepted,
                  t.fast);
    /* Both outcomes must have been exercised for the comparison to mean much. */
    assert_true(t.fast > t.cases / 10);
    assert_true(t.fast < t.accepted);
    assert_true(t.accepted < t.cases);
}

static void test_reply_garbage(void **state)
{
    tally_t t = {0};
    uint8_t buf[64];
    for (int c = 0; c < 20000; c++) {
        size_t n = rnd() % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t) rnd();
        /* Often start like a Reply, so that more gets past the first byte. */
        if (n && chance(2))
            buf[0] = (uint8_t) (chance(2) ? 0x08 : 0x22 + 8 * (rnd() % 3));
        expect_as_protobuf(buf, n, &t);
    }
    expect_as_protobuf(buf, 0, &t);
}

/* Encodings that are valid but not the common shape: the fast reader must
 * decline each (protobuf-c's path then decides), or read it as protobuf-c. */
static void test_reply_odd_shapes(void **state)
{
    static const struct {
        const char *what;
        const char *bytes;
        size_t len;
        bool fast;
    } cases[] = {
#define C(what, bytes, fast) {what, bytes, sizeof bytes - 1, fast}
        C("empty: id 0, OK, no body", "", true),
        C("id, no body", "\x08\x05", true),
        C("id padded to two bytes", "\x08\x85\x00", true),
        C("key of field 1 padded to two bytes", "\x88\x00\x05", false),
        C("id twice", "\x08\x05\x08\x06", false),
        C("code before id", "\x10\x03\x08\x05", false),
        C("negative code (ten bytes)", "\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", false),
        C("code above uint32", "\x10\x80\x80\x80\x80\x10", false),
        C("id as a fixed64", "\x09\x01\x02\x03\x04\x05\x06\x07\x08", false),
        C("unknown field 20", "\x08\x05\xa0\x01\x01", false),
        C("submit and task bodies", "\x22\x02\x0a\x00\x2a\x00", false),
        C("fetch body", "\x32\x00", false),
        C("submit without task (protobuf-c's path refuses)", "\x22\x00", false),
        C("empty task", "\x2a\x00", true),
        C("task with an empty result present", "\x2a\x02\x1a\x00", true),
        C("task ref_id with a NUL inside", "\x2a\x05\x0a\x03\x61\x00\x62", true),
        C("message with a NUL inside", "\x1a\x03\x61\x00\x62", true),
        C("task ever_started (two-byte key)", "\x2a\x03\x98\x01\x01", true),
        C("task bool written in two bytes", "\x2a\x04\x98\x01\x81\x00", false),
        C("task namespace (two-byte key)", "\x2a\x05\x8a\x01\x02\x6e\x73", true),
        C("task fields 18 then 16", "\x2a\x06\x90\x01\x01\x80\x01\x01", false),
        C("submit cache_hit, then task", "\x22\x04\x10\x01\x0a\x00", false),
        C("submit task twice", "\x22\x04\x0a\x00\x0a\x00", false),
        C("truncated task", "\x2a\x05\x0a\x03\x61", false),
        C("task ref_id of 65 bytes (refused)",
          "\x2a\x43\x0a\x41"
          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefX",
          false),
#undef C
    };
    tally_t t = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool fast = expect_as_protobuf((const uint8_t *) cases[i].bytes, cases[i].len, &t);
        if (fast != cases[i].fast) {
            print_error("%s: the fast reader %s\n", cases[i].what, fast ? "took it" : "declined");
            fail();
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_bytes_fixed), cmocka_unit_test(test_submit_bytes_random),
        cmocka_unit_test(test_ref_bytes_random),   cmocka_unit_test(test_reply_fast_broker_shape),
        cmocka_unit_test(test_reply_fast_taken),   cmocka_unit_test(test_reply_random_as_protobuf),
        cmocka_unit_test(test_reply_garbage),      cmocka_unit_test(test_reply_odd_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
