/* The worker's hand-written codec (workers/rc_worker_codec) against
 * protobuf-c: thousands of random Dispatches, in the broker's shape and in
 * protobuf-c's, decode to the same structs both ways and always by the fast
 * path; mutated, truncated and random bytes are either declined by the fast
 * path (protobuf-c then decides) or decoded to what protobuf-c makes; random
 * Results and Started encode to protobuf-c's bytes. Every allocation is
 * counted, and every test ends with none alive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rc_codec.h"
#include "rc_wire.h"
#include "rc_worker_codec.h"
#include "refcache.pb-c.h"

typedef Refcache__V1__BrokerMessage broker_msg_t;

#define ROUNDS 4000

/* ------------------------------------------------------------ helpers */

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    /* xorshift64*: repeatable runs. */
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return rnd_state * 0x2545f4914f6cdd1dull;
}

/* A malloc allocator that counts live blocks and can fail the n-th call. */
static long live_blocks;
static long fail_at = -1; /* allocations left before one fails; -1: never */

static void *count_alloc(void *data, size_t size)
{
    (void) data;
    if (fail_at == 0)
        return NULL;
    if (fail_at > 0)
        fail_at--;
    void *p = malloc(size ? size : 1);
    if (p)
        live_blocks++;
    return p;
}

static void count_free(void *data, void *p)
{
    (void) data;
    if (p)
        live_blocks--;
    free(p);
}

static ProtobufCAllocator counting = {count_alloc, count_free, NULL};

typedef struct {
    uint8_t *p;
    size_t n;
} bytes_t;

/* A random string: letters mostly, any byte (NULs included) now and then. */
static char *rnd_string(size_t max)
{
    size_t n = rnd() % 4 ? rnd() % (max + 1) : 0;
    char *s = malloc(n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = rnd() % 8 ? (char) ('a' + rnd() % 26) : (char) rnd();
    s[n] = 0;
    return s;
}

static uint32_t rnd_attempt(void)
{
    switch (rnd() % 4) {
    case 0:
        return 0;
    case 1:
        return (uint32_t) (rnd() % 128);
    case 2:
        return (uint32_t) rnd();
    default:
        return UINT32_MAX;
    }
}

/* A random Dispatch; free with dispatch_free. */
static Refcache__V1__Dispatch *rnd_dispatch(void)
{
    Refcache__V1__Dispatch *d = malloc(sizeof *d);
    assert_non_null(d);
    refcache__v1__dispatch__init(d);
    d->ref_id = rnd_string(40);
    d->attempt = rnd_attempt();
    d->function = rnd_string(20);
    d->n_params = rnd() % 3 ? rnd() % 6 : 0;
    d->params = calloc(d->n_params ? d->n_params : 1, sizeof *d->params);
    assert_non_null(d->params);
    for (size_t i = 0; i < d->n_params; i++) {
        d->params[i] = malloc(sizeof *d->params[i]);
        assert_non_null(d->params[i]);
        refcache__v1__dispatch__params_entry__init(d->params[i]);
        d->params[i]->key = rnd_string(16);
        d->params[i]->value = rnd_string(rnd() % 8 ? 24 : 300);
    }
    size_t n = rnd() % 8 ? rnd() % 200 : rnd() % 9000; /* past an arena, at times */
    d->payload.len = n;
    d->payload.data = n ? malloc(n) : NULL;
    for (size_t i = 0; i < n; i++)
        d->payload.data[i] = (uint8_t) rnd();
    return d;
}

static void dispatch_free(Refcache__V1__Dispatch *d)
{
    free(d->ref_id);
    free(d->function);
    for (size_t i = 0; i < d->n_params; i++) {
        free(d->params[i]->key);
        free(d->params[i]->value);
        free(d->params[i]);
    }
    free(d->params);
    free(d->payload.data);
    free(d);
}

/* BrokerMessage{dispatch} as protobuf-c packs it. */
static bytes_t pack_pb(Refcache__V1__Dispatch *d)
{
    broker_msg_t m = REFCACHE__V1__BROKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCH;
    m.dispatch = d;
    bytes_t b = {malloc(refcache__v1__broker_message__get_packed_size(&m) + 1), 0};
    assert_non_null(b.p);
    b.n = refcache__v1__broker_message__pack(&m, b.p);
    return b;
}

/* The same as the broker writes it: the attempt appended as the last field
 * (one byte: the broker's attempts stay below 128). */
static bytes_t pack_broker_shape(Refcache__V1__Dispatch *d)
{
    uint32_t attempt = d->attempt;
    d->attempt = 0;
    size_t inner = refcache__v1__dispatch__get_packed_size(d) + 2;
    bytes_t b = {malloc(rc_wire_sz_msg(1, inner)), rc_wire_sz_msg(1, inner)};
    assert_non_null(b.p);
    uint8_t *p = rc_wire_put_msg(b.p, 1, inner);
    p += refcache__v1__dispatch__pack(d, p);
    *p++ = RC_WIRE_KEY(2, RC_WT_VARINT);
    *p++ = (uint8_t) (attempt & 0x7f);
    d->attempt = attempt & 0x7f;
    assert_int_equal((size_t) (p - b.p), b.n);
    return b;
}

/* The broker's own encoder: a packed Submit through rc_codec_request and
 * rc_codec_dispatch_spec (its ref_id and attempt are the dispatch's). */
static bytes_t pack_by_broker(Refcache__V1__Dispatch *d)
{
    Refcache__V1__SubmitRequest s = REFCACHE__V1__SUBMIT_REQUEST__INIT;
    s.function = d->function;
    s.n_params = d->n_params;
    s.params = (Refcache__V1__SubmitRequest__ParamsEntry **) d->params; /* same layout */
    s.payload = d->payload;
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    r.id = 7;
    r.body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
    r.submit = &s;
    uint8_t *req_bytes = malloc(refcache__v1__request__get_packed_size(&r));
    assert_non_null(req_bytes);
    size_t req_len = refcache__v1__request__pack(&r, req_bytes);
    rc_request_t req;
    const char *why = NULL;
    assert_int_equal(rc_codec_request(req_bytes, req_len, &req, &why), 0);
    bytes_t b = {0};
    assert_int_equal(rc_codec_dispatch_spec(&req, d->ref_id, NULL, 0, &b.p, &b.n), 0);
    d->attempt &= 0x7f;
    rc_codec_dispatch_set_attempt(b.p, b.n, d->attempt);
    rc_codec_request_release(&req);
    free(req_bytes);
    return b;
}

/* n random Dispatches in one BrokerMessage{dispatches}: packed by protobuf-c,
 * or as the broker sends them (each in the broker's shape behind its batch
 * head). The dispatches are left in d[]. */
static bytes_t pack_batch(Refcache__V1__Dispatch **d, size_t n, bool broker)
{
    if (!broker) {
        Refcache__V1__DispatchBatch b = REFCACHE__V1__DISPATCH_BATCH__INIT;
        b.dispatches = d;
        b.n_dispatches = n;
        broker_msg_t m = REFCACHE__V1__BROKER_MESSAGE__INIT;
        m.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCHES;
        m.dispatches = &b;
        bytes_t out = {malloc(refcache__v1__broker_message__get_packed_size(&m) + 1), 0};
        assert_non_null(out.p);
        out.n = refcache__v1__broker_message__pack(&m, out.p);
        return out;
    }
    bytes_t out = {malloc(RC_BATCH_HEAD), RC_BATCH_HEAD};
    assert_non_null(out.p);
    for (size_t i = 0; i < n; i++) {
        bytes_t one = pack_broker_shape(d[i]);
        out.p = realloc(out.p, out.n + one.n);
        assert_non_null(out.p);
        memcpy(out.p + out.n, one.p, one.n);
        out.n += one.n;
        free(one.p);
    }
    size_t head = rc_wire_head_before(out.p + RC_BATCH_HEAD, RC_DISPATCHES_FIELD, out.n - RC_BATCH_HEAD);
    memmove(out.p, out.p + RC_BATCH_HEAD - head, out.n - (RC_BATCH_HEAD - head));
    out.n -= RC_BATCH_HEAD - head;
    return out;
}

/* The same message, field by field (strings as C strings, as the worker
 * reads them). */
static void assert_same_dispatch(const Refcache__V1__Dispatch *x, const Refcache__V1__Dispatch *y)
{
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(x->base.n_unknown_fields, y->base.n_unknown_fields);
    assert_string_equal(x->ref_id, y->ref_id);
    assert_int_equal(x->attempt, y->attempt);
    assert_string_equal(x->function, y->function);
    assert_int_equal(x->payload.len, y->payload.len);
    if (x->payload.len)
        assert_memory_equal(x->payload.data, y->payload.data, x->payload.len);
    else
        assert_true(x->payload.data == y->payload.data);
    assert_int_equal(x->n_params, y->n_params);
    for (size_t i = 0; i < x->n_params; i++) {
        assert_int_equal(x->params[i]->base.n_unknown_fields, y->params[i]->base.n_unknown_fields);
        assert_string_equal(x->params[i]->key, y->params[i]->key);
        assert_string_equal(x->params[i]->value, y->params[i]->value);
    }
}

static void assert_same(const broker_msg_t *a, const broker_msg_t *b)
{
    assert_int_equal(a->body_case, b->body_case);
    assert_int_equal(a->base.n_unknown_fields, b->base.n_unknown_fields);
    if (a->body_case == REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCH)
        assert_same_dispatch(a->dispatch, b->dispatch);
    if (a->body_case != REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCHES)
        return;
    assert_int_equal(a->dispatches->base.n_unknown_fields, b->dispatches->base.n_unknown_fields);
    assert_int_equal(a->dispatches->n_dispatches, b->dispatches->n_dispatches);
    for (size_t i = 0; i < a->dispatches->n_dispatches; i++)
        assert_same_dispatch(a->dispatches->dispatches[i], b->dispatches->dispatches[i]);
}

/* The fast path's answer for bytes: NULL (declined), or the very message
 * protobuf-c decodes. Returns whether it took them; frees everything. */
static bool check_bytes(const uint8_t *p, size_t n)
{
    broker_msg_t *fast = rc_worker_codec_dispatch(p, n, &counting);
    broker_msg_t *pb = refcache__v1__broker_message__unpack(&counting, n, p);
    if (fast) {
        if (!pb)
            fail_msg("the fast path took %zu bytes that protobuf-c rejects", n);
        assert_same(fast, pb);
        protobuf_c_message_free_unpacked(&fast->base, &counting);
    }
    if (pb)
        refcache__v1__broker_message__free_unpacked(pb, &counting);
    assert_int_equal(live_blocks, 0);
    return fast != NULL;
}

/* Like check_bytes, for bytes of the common shape: the fast path must take
 * them, and decode d. */
static void check_common(bytes_t b, Refcache__V1__Dispatch *d)
{
    broker_msg_t *fast = rc_worker_codec_dispatch(b.p, b.n, &counting);
    assert_non_null(fast);
    broker_msg_t want = REFCACHE__V1__BROKER_MESSAGE__INIT;
    want.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCH;
    want.dispatch = d;
    assert_same(fast, &want);
    protobuf_c_message_free_unpacked(&fast->base, &counting);
    assert_true(check_bytes(b.p, b.n));
}

/* ------------------------------------------------------------ tests */

static void test_common_shapes_take_the_fast_path(void **state)
{
    (void) state;
    for (int i = 0; i < ROUNDS; i++) {
        Refcache__V1__Dispatch *d = rnd_dispatch();
        bytes_t b = pack_pb(d);
        check_common(b, d);
        free(b.p);
        b = pack_broker_shape(d);
        check_common(b, d);
        free(b.p);
        if (i % 8 == 0) {
            b = pack_by_broker(d);
            check_common(b, d);
            free(b.p);
        }
        dispatch_free(d);
    }
    assert_int_equal(rc_codec_live_messages(), 0);
}

/* Batches of 1 to 8 Dispatches, from protobuf-c or the broker: the fast
 * path takes them and decodes what was sent. */
static void test_batches_take_the_fast_path(void **state)
{
    (void) state;
    for (int i = 0; i < ROUNDS / 4; i++) {
        Refcache__V1__Dispatch *d[8];
        size_t n = 1 + rnd() % 8;
        for (size_t j = 0; j < n; j++)
            d[j] = rnd_dispatch();
        for (int broker = 0; broker < 2; broker++) {
            bytes_t b = pack_batch(d, n, broker);
            broker_msg_t *fast = rc_worker_codec_dispatch(b.p, b.n, &counting);
            assert_non_null(fast);
            Refcache__V1__DispatchBatch want_b = REFCACHE__V1__DISPATCH_BATCH__INIT;
            want_b.dispatches = d;
            want_b.n_dispatches = n;
            broker_msg_t want = REFCACHE__V1__BROKER_MESSAGE__INIT;
            want.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCHES;
            want.dispatches = &want_b;
            assert_same(fast, &want);
            protobuf_c_message_free_unpacked(&fast->base, &counting);
            assert_true(check_bytes(b.p, b.n));
            free(b.p);
        }
        for (size_t j = 0; j < n; j++)
            dispatch_free(d[j]);
    }
}

static void test_mutations_agree_with_protobuf_c(void **state)
{
    (void) state;
    int taken = 0, total = 0;
    for (int i = 0; i < ROUNDS; i++) {
        Refcache__V1__Dispatch *d[3] = {rnd_dispatch(), rnd_dispatch(), rnd_dispatch()};
        int shape = (int) (rnd() % 4);
        bytes_t b = shape == 0   ? pack_pb(d[0])
                    : shape == 1 ? pack_broker_shape(d[0])
                                 : pack_batch(d, 1 + rnd() % 3, shape == 3);
        for (int j = 0; j < 3; j++)
            dispatch_free(d[j]);
        for (int k = 0; k < 8; k++, total++) {
            bytes_t m = {malloc(b.n + 16), b.n};
            assert_non_null(m.p);
            memcpy(m.p, b.p, b.n);
            switch (rnd() % 5) {
            case 0: /* flip bytes */
                for (int j = 0, flips = 1 + (int) (rnd() % 3); j < flips && m.n; j++)
                    m.p[rnd() % m.n] ^= (uint8_t) (1u << (rnd() % 8));
                break;
            case 1: /* truncate */
                m.n = m.n ? (size_t) (rnd() % m.n) : 0;
                break;
            case 2: /* set a byte */
                if (m.n)
                    m.p[rnd() % m.n] = (uint8_t) rnd();
                break;
            case 3: /* append a field or garbage */
                for (int j = 0, extra = 1 + (int) (rnd() % 16); j < extra; j++)
                    m.p[m.n++] =
                        (uint8_t) (j == 0 && rnd() % 2 ? RC_WIRE_KEY(1 + rnd() % 6, rnd() % 3) : rnd());
                break;
            default: /* random bytes */
                m.n = rnd() % (b.n + 1);
                for (size_t j = 0; j < m.n; j++)
                    m.p[j] = (uint8_t) rnd();
                break;
            }
            taken += check_bytes(m.p, m.n);
            free(m.p);
        }
        free(b.p);
    }
    print_message("fast path took %d of %d mutated messages\n", taken, total);
}

static void test_declined_shapes(void **state)
{
    (void) state;
    /* Decoded by protobuf-c, declined by the fast path: a heartbeat, a
     * reannounce, an unknown Dispatch field, a field twice, a two-byte
     * attempt after the payload, and an attempt both in order and last. */
    static const uint8_t heartbeat[] = {0x12, 0x00};
    static const uint8_t reannounce[] = {0x1a, 0x00};
    static const uint8_t unknown[] = {0x0a, 0x05, 0x0a, 0x01, 'r', 0x30, 0x01};
    static const uint8_t twice[] = {0x0a, 0x06, 0x0a, 0x01, 'r', 0x0a, 0x01, 's'};
    static const uint8_t long_tail[] = {0x0a, 0x09, 0x0a, 0x01, 'r', 0x2a, 0x01, 'p', 0x10, 0x81, 0x01};
    static const uint8_t both[] = {0x0a, 0x07, 0x0a, 0x01, 'r', 0x10, 0x03, 0x10, 0x04};
    static const uint8_t twice_top[] = {0x0a, 0x03, 0x0a, 0x01, 'r', 0x0a, 0x03, 0x0a, 0x01, 's'};
    const struct {
        const uint8_t *p;
        size_t n;
    } cases[] = {
        {heartbeat, sizeof heartbeat}, {reannounce, sizeof reannounce}, {unknown, sizeof unknown},
        {twice, sizeof twice},         {long_tail, sizeof long_tail},   {both, sizeof both},
        {twice_top, sizeof twice_top},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        broker_msg_t *pb = refcache__v1__broker_message__unpack(&counting, cases[i].n, cases[i].p);
        assert_non_null(pb);
        refcache__v1__broker_message__free_unpacked(pb, &counting);
        assert_false(check_bytes(cases[i].p, cases[i].n));
    }
    /* An empty Dispatch and the broker's attempt on it alone are common. */
    static const uint8_t empty[] = {0x0a, 0x00};
    static const uint8_t attempt_only[] = {0x0a, 0x02, 0x10, 0x05};
    assert_true(check_bytes(empty, sizeof empty));
    assert_true(check_bytes(attempt_only, sizeof attempt_only));
}

static void test_out_of_memory_frees_everything(void **state)
{
    (void) state;
    for (int i = 0; i < 200; i++) {
        Refcache__V1__Dispatch *d = rnd_dispatch(), *batch[2] = {d, d};
        bytes_t b = i % 2 ? pack_broker_shape(d) : pack_batch(batch, 2, i % 4 == 0);
        for (long k = 0;; k++) {
            fail_at = k;
            broker_msg_t *m = rc_worker_codec_dispatch(b.p, b.n, &counting);
            fail_at = -1;
            if (m) {
                protobuf_c_message_free_unpacked(&m->base, &counting);
                break;
            }
            assert_int_equal(live_blocks, 0);
        }
        assert_int_equal(live_blocks, 0);
        free(b.p);
        dispatch_free(d);
    }
}

static void test_encoders_match_protobuf_c(void **state)
{
    (void) state;
    for (int i = 0; i < ROUNDS; i++) {
        char *ref = rnd() % 16 ? rnd_string(40) : NULL;
        uint32_t attempt = rnd_attempt();
        size_t len = rnd() % 4 ? rnd() % 300 : 0;
        uint8_t *data = len ? malloc(len) : NULL;
        for (size_t j = 0; j < len; j++)
            data[j] = (uint8_t) rnd();

        Refcache__V1__Result r = REFCACHE__V1__RESULT__INIT;
        Refcache__V1__Started st = REFCACHE__V1__STARTED__INIT;
        r.ref_id = st.ref_id = ref ? ref : (char *) protobuf_c_empty_string;
        r.attempt = st.attempt = attempt;
        r.data.data = data;
        r.data.len = len;
        Refcache__V1__WorkerMessage wm = REFCACHE__V1__WORKER_MESSAGE__INIT;
        for (int kind = 0; kind < 2; kind++) {
            if (kind == 0) {
                wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT;
                wm.result = &r;
            } else {
                wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED;
                wm.started = &st;
            }
            size_t want_n = refcache__v1__worker_message__get_packed_size(&wm);
            uint8_t *want = malloc(want_n + 1), *got = malloc(want_n + 1);
            assert_non_null(want);
            assert_non_null(got);
            refcache__v1__worker_message__pack(&wm, want);
            size_t n = kind == 0 ? rc_worker_codec_result_size(ref, attempt, len)
                                 : rc_worker_codec_started_size(ref, attempt);
            assert_int_equal(n, want_n);
            uint8_t *end = kind == 0 ? rc_worker_codec_result_put(got, ref, attempt, data, len)
                                     : rc_worker_codec_started_put(got, ref, attempt);
            assert_int_equal((size_t) (end - got), want_n);
            assert_memory_equal(got, want, want_n);
            free(want);
            free(got);
        }
        free(ref);
        free(data);
    }
}

/* Results put together as the worker sends them are protobuf-c's
 * WorkerMessage{results} (and one alone its WorkerMessage{result}). */
static void test_result_batches_match_protobuf_c(void **state)
{
    (void) state;
    for (int i = 0; i < ROUNDS / 4; i++) {
        size_t n = 1 + rnd() % 6;
        Refcache__V1__Result r[6], *rp[6];
        uint8_t data[6][64];
        uint8_t *buf = malloc(RC_WORKER_RESULTS_HEAD + 6 * 200), *p = buf + RC_WORKER_RESULTS_HEAD;
        assert_non_null(buf);
        for (size_t j = 0; j < n; j++) {
            refcache__v1__result__init(&r[j]);
            r[j].ref_id = rnd_string(40);
            r[j].attempt = rnd_attempt();
            r[j].data.len = rnd() % sizeof data[j];
            r[j].data.data = data[j];
            for (size_t k = 0; k < r[j].data.len; k++)
                data[j][k] = (uint8_t) rnd();
            rp[j] = &r[j];
            uint8_t *end =
                rc_worker_codec_result_entry_put(p, r[j].ref_id, r[j].attempt, data[j], r[j].data.len);
            assert_int_equal((size_t) (end - p),
                             rc_worker_codec_result_entry_size(r[j].ref_id, r[j].attempt, r[j].data.len));
            p = end;
        }
        uint8_t *body = buf + RC_WORKER_RESULTS_HEAD;
        size_t len = (size_t) (p - body), head = 0;
        Refcache__V1__ResultBatch b = REFCACHE__V1__RESULT_BATCH__INIT;
        b.results = rp;
        b.n_results = n;
        Refcache__V1__WorkerMessage wm = REFCACHE__V1__WORKER_MESSAGE__INIT;
        if (n == 1) {
            rc_worker_codec_entry_to_result(body);
            wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT;
            wm.result = &r[0];
        } else {
            head = rc_worker_codec_results_head(body, len);
            wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULTS;
            wm.results = &b;
        }
        size_t want_n = refcache__v1__worker_message__get_packed_size(&wm);
        uint8_t *want = malloc(want_n);
        assert_non_null(want);
        refcache__v1__worker_message__pack(&wm, want);
        assert_int_equal(head + len, want_n);
        assert_memory_equal(body - head, want, want_n);
        free(want);
        free(buf);
        for (size_t j = 0; j < n; j++)
            free(r[j].ref_id);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_common_shapes_take_the_fast_path),
        cmocka_unit_test(test_batches_take_the_fast_path),
        cmocka_unit_test(test_mutations_agree_with_protobuf_c),
        cmocka_unit_test(test_declined_shapes),
        cmocka_unit_test(test_out_of_memory_frees_everything),
        cmocka_unit_test(test_encoders_match_protobuf_c),
        cmocka_unit_test(test_result_batches_match_protobuf_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
