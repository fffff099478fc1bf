/* Unit tests of the codec (rc_codec): messages built and read back with
 * the generated protobuf-c code on the other side, so the broker's views
 * and encodings are checked against the wire contract itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rc_testkit.h"
#include "rc_codec.h"
#include "rc_common.h"
#include "refcache.pb-c.h"

static const char REF[] = "0123456789abcdef0123456789abcdef";

/* A packed message in a malloc'd buffer. */
typedef struct {
    uint8_t *data;
    size_t len;
} packed_t;

static packed_t pack_request(const Refcache__V1__Request *r)
{
    packed_t p;
    p.len = refcache__v1__request__get_packed_size(r);
    p.data = malloc(p.len ? p.len : 1);
    assert_non_null(p.data);
    assert_int_equal(refcache__v1__request__pack(r, p.data), p.len);
    return p;
}

static packed_t pack_wmsg(const Refcache__V1__WorkerMessage *m)
{
    packed_t p;
    p.len = refcache__v1__worker_message__get_packed_size(m);
    p.data = malloc(p.len ? p.len : 1);
    assert_non_null(p.data);
    assert_int_equal(refcache__v1__worker_message__pack(m, p.data), p.len);
    return p;
}

static void assert_str(rc_str_t s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    if (s.len)
        assert_memory_equal(s.ptr, want, s.len);
}

static void assert_bytes(rc_bytes_t b, const void *want, size_t len)
{
    assert_int_equal(b.len, len);
    if (len)
        assert_memory_equal(b.ptr, want, len);
}

/* ---------------------------------------------------------------- requests */

static void test_request_submit(void **state)
{
    Refcache__V1__SubmitRequest__ParamsEntry e1 = REFCACHE__V1__SUBMIT_REQUEST__PARAMS_ENTRY__INIT;
    Refcache__V1__SubmitRequest__ParamsEntry e2 = REFCACHE__V1__SUBMIT_REQUEST__PARAMS_ENTRY__INIT;
    Refcache__V1__SubmitRequest__ParamsEntry e3 = REFCACHE__V1__SUBMIT_REQUEST__PARAMS_ENTRY__INIT;
    e1.key = "n";
    e1.value = "1000";
    e2.key = "mode";
    e2.value = "";
    e3.key = "unicode";
    e3.value = "\xc3\xa9t\xc3\xa9";
    Refcache__V1__SubmitRequest__ParamsEntry *params[] = {&e1, &e2, &e3};
    static const uint8_t payload[] = {0, 1, 2, 0xff, 0, 'x'};

    Refcache__V1__SubmitRequest s = REFCACHE__V1__SUBMIT_REQUEST__INIT;
    s.function = "primes";
    s.n_params = 3;
    s.params = params;
    s.payload.data = (uint8_t *) payload;
    s.payload.len = sizeof payload;
    s.async_timeout_ms = 1500;
    s.deadline_ms = 60000;
    s.max_retries = 3;
    s.ttl_s = 86400;
    s.namespace_ = "team-a";
    s.no_cache = true;
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    r.id = 0x1122334455667788ULL;
    r.body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
    r.submit = &s;
    packed_t p = pack_request(&r);

    rc_request_t req;
    const char *why = NULL;
    assert_int_equal(rc_codec_request(p.data, p.len, &req, &why), 0);
    free(p.data); /* the view points into the decoded message, not the frame */
    assert_int_equal(req.kind, RC_REQ_SUBMIT);
    assert_true(req.id == 0x1122334455667788ULL);
    assert_str(req.function, "primes");
    assert_str(req.ns, "team-a");
    assert_bytes(req.payload, payload, sizeof payload);
    assert_int_equal(req.async_timeout_ms, 1500);
    assert_int_equal(req.deadline_ms, 60000);
    assert_int_equal(req.max_retries, 3);
    assert_int_equal(req.ttl_s, 86400);
    assert_true(req.no_cache);
    assert_int_equal(req.n_params, 3);
    static const char *const keys[] = {"n", "mode", "unicode"};
    static const char *const values[] = {"1000", "", "\xc3\xa9t\xc3\xa9"};
    for (size_t i = 0; i < 3; i++) {
        rc_str_t k, v;
        rc_codec_request_param(&req, i, &k, &v);
        assert_str(k, keys[i]);
        assert_str(v, values[i]);
    }
    rc_codec_request_release(&req);
    assert_null(req.pb_);
    rc_codec_request_release(&req); /* twice is harmless */
}

static void test_request_submit_defaults(void **state)
{
    /* Everything zero: an empty function, no params, no payload. */
    Refcache__V1__SubmitRequest s = REFCACHE__V1__SUBMIT_REQUEST__INIT;
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    r.body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
    r.submit = &s;
    packed_t p = pack_request(&r);
    rc_request_t req;
    const char *why = NULL;
    assert_int_equal(rc_codec_request(p.data, p.len, &req, &why), 0);
    assert_int_equal(req.kind, RC_REQ_SUBMIT);
    assert_int_equal(req.id, 0);
    assert_int_equal(req.function.len, 0);
    assert_int_equal(req.ns.len, 0);
    assert_int_equal(req.payload.len, 0);
    assert_int_equal(req.n_params, 0);
    assert_int_equal(req.deadline_ms, 0);
    assert_false(req.no_cache);
    rc_codec_request_release(&req);
    free(p.data);
}

static void test_request_kinds(void **state)
{
    Refcache__V1__StatusRequest st = REFCACHE__V1__STATUS_REQUEST__INIT;
    Refcache__V1__WaitRequest wt = REFCACHE__V1__WAIT_REQUEST__INIT;
    Refcache__V1__FetchRequest ft = REFCACHE__V1__FETCH_REQUEST__INIT;
    Refcache__V1__CancelRequest cn = REFCACHE__V1__CANCEL_REQUEST__INIT;
    Refcache__V1__DeleteRequest dl = REFCACHE__V1__DELETE_REQUEST__INIT;
    Refcache__V1__StatsRequest ss = REFCACHE__V1__STATS_REQUEST__INIT;
    st.ref_id = (char *) REF;
    wt.ref_id = (char *) REF;
    wt.timeout_ms = 30000;
    ft.ref_id = (char *) REF;
    ft.offset = 5000000000ULL;
    ft.length = 65536;
    cn.ref_id = (char *) REF;
    dl.ref_id = (char *) REF;

    struct {
        int body;
        void *msg;
        rc_req_kind_t kind;
        bool has_ref;
    } cases[] = {
        {REFCACHE__V1__REQUEST__BODY_STATUS, &st, RC_REQ_STATUS, true},
        {REFCACHE__V1__REQUEST__BODY_WAIT, &wt, RC_REQ_WAIT, true},
        {REFCACHE__V1__REQUEST__BODY_FETCH, &ft, RC_REQ_FETCH, true},
        {REFCACHE__V1__REQUEST__BODY_CANCEL, &cn, RC_REQ_CANCEL, true},
        {REFCACHE__V1__REQUEST__BODY_DELETE, &dl, RC_REQ_DELETE, true},
        {REFCACHE__V1__REQUEST__BODY_STATS, &ss, RC_REQ_STATS, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
        r.id = 100 + i;
        r.body_case = cases[i].body;
        switch (cases[i].body) {
        case REFCACHE__V1__REQUEST__BODY_STATUS:
            r.status = cases[i].msg;
            break;
        case REFCACHE__V1__REQUEST__BODY_WAIT:
            r.wait = cases[i].msg;
            break;
        case REFCACHE__V1__REQUEST__BODY_FETCH:
            r.fetch = cases[i].msg;
            break;
        case REFCACHE__V1__REQUEST__BODY_CANCEL:
            r.cancel = cases[i].msg;
            break;
        case REFCACHE__V1__REQUEST__BODY_DELETE:
            r.delete_ = cases[i].msg;
            break;
        case REFCACHE__V1__REQUEST__BODY_STATS:
            r.stats = cases[i].msg;
            break;
        }
        packed_t p = pack_request(&r);
        rc_request_t req;
        const char *why = NULL;
        assert_int_equal(rc_codec_request(p.data, p.len, &req, &why), 0);
        assert_int_equal(req.kind, cases[i].kind);
        assert_int_equal(req.id, 100 + i);
        if (cases[i].has_ref)
            assert_str(req.ref_id, REF);
        else
            assert_int_equal(req.ref_id.len, 0);
        if (req.kind == RC_REQ_WAIT)
            assert_int_equal(req.timeout_ms, 30000);
        if (req.kind == RC_REQ_FETCH) {
            assert_true(req.offset == 5000000000ULL);
            assert_int_equal(req.length, 65536);
        }
        rc_codec_request_release(&req);
        free(p.data);
    }
}

static void test_request_bad(void **state)
{
    rc_request_t req;
    const char *why;

    /* Bytes that are not a Request. */
    static const uint8_t junk[][6] = {
        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* an endless varint */
        {0x12, 0x50, 0x0a, 0x01, 0x61, 0x00}, /* submit claims 80 bytes, has 4 */
        {0x0f, 0x00, 0x00, 0x00, 0x00, 0x00}, /* wire type 7 */
        {0x08, 0x80, 0x80, 0x80, 0x80, 0x80}, /* id varint cut short */
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        why = NULL;
        assert_int_equal(rc_codec_request(junk[i], sizeof junk[i], &req, &why), -1);
        assert_non_null(why);
        assert_true(strlen(why) > 0);
        rc_codec_request_release(&req);
    }

    /* An empty frame decodes as a Request with no body: rejected, with a reason. */
    why = NULL;
    assert_int_equal(rc_codec_request((const uint8_t *) "", 0, &req, &why), -1);
    assert_non_null(why);
    rc_codec_request_release(&req);

    /* An id but no body: rejected; the id is there for the error reply. */
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    r.id = 42;
    packed_t p = pack_request(&r);
    why = NULL;
    assert_int_equal(rc_codec_request(p.data, p.len, &req, &why), -1);
    assert_non_null(why);
    assert_int_equal(req.id, 42);
    rc_codec_request_release(&req);
    free(p.data);

    /* A body this broker does not know (field 99): no body either. */
    static const uint8_t future[] = {0x08, 0x07, 0x9a, 0x06, 0x00};
    why = NULL;
    assert_int_equal(rc_codec_request(future, sizeof future, &req, &why), -1);
    assert_non_null(why);
    rc_codec_request_release(&req);

    /* A WorkerMessage is not a Request... but protobuf cannot always tell;
     * it must at least not crash. A truncated valid Request must fail. */
    Refcache__V1__StatusRequest st = REFCACHE__V1__STATUS_REQUEST__INIT;
    st.ref_id = (char *) REF;
    Refcache__V1__Request r2 = REFCACHE__V1__REQUEST__INIT;
    r2.body_case = REFCACHE__V1__REQUEST__BODY_STATUS;
    r2.status = &st;
    p = pack_request(&r2);
    for (size_t cut = 1; cut < p.len; cut++) {
        why = NULL;
        int rc = rc_codec_request(p.data, cut, &req, &why);
        assert_int_equal(rc, -1);
        assert_non_null(why);
        rc_codec_request_release(&req);
    }
    free(p.data);
}

/* ---------------------------------------------------------------- dispatch */

static Refcache__V1__BrokerMessage *unpack_broker(const uint8_t *data, size_t len)
{
    Refcache__V1__BrokerMessage *m = refcache__v1__broker_message__unpack(NULL, len, data);
    assert_non_null(m);
    return m;
}

static void hexdump(const char *what, const uint8_t *p, size_t n)
{
    print_error("%s (%zu bytes):", what, n);
    for (size_t i = 0; i < n && i < 256; i++)
        print_error(" %02x", p[i]);
    print_error("%s\n", n > 256 ? " ..." : "");
}

static void assert_same_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
    if (got_len == want_len && (want_len == 0 || memcmp(got, want, want_len) == 0))
        return;
    hexdump("codec", got, got_len);
    hexdump("protobuf-c", want, want_len);
    fail();
}

/* The spec is BrokerMessage{dispatch: d} with the attempt (0) appended as
 * a last field: what protobuf-c packs for d, framed, plus 0x10 0x00. */
static void assert_dispatch_bytes(const uint8_t *spec, size_t spec_len, const Refcache__V1__Dispatch *d)
{
    size_t inner = refcache__v1__dispatch__get_packed_size(d) + 2;
    uint8_t *want = malloc(inner + 16);
    assert_non_null(want);
    size_t n = 0;
    want[n++] = 0x0a;
    for (size_t v = inner;; v >>= 7) {
        want[n++] = (uint8_t) (v >= 0x80 ? (v & 0x7f) | 0x80 : v);
        if (v < 0x80)
            break;
    }
    n += refcache__v1__dispatch__pack(d, want + n);
    want[n++] = 0x10;
    want[n++] = 0x00;
    assert_same_bytes(spec, spec_len, want, n);
    free(want);
}

static void check_dispatch(size_t payload_len, size_t n_params)
{
    uint8_t *payload = malloc(payload_len ? payload_len : 1);
    for (size_t i = 0; i < payload_len; i++)
        payload[i] = (uint8_t) (i * 7 + 3);
    Refcache__V1__SubmitRequest__ParamsEntry *entries = calloc(n_params ? n_params : 1, sizeof *entries);
    Refcache__V1__SubmitRequest__ParamsEntry **params = calloc(n_params ? n_params : 1, sizeof *params);
    char(*keys)[24] = calloc(n_params ? n_params : 1, sizeof *keys);
    char(*vals)[24] = calloc(n_params ? n_params : 1, sizeof *vals);
    for (size_t i = 0; i < n_params; i++) {
        Refcache__V1__SubmitRequest__ParamsEntry init = REFCACHE__V1__SUBMIT_REQUEST__PARAMS_ENTRY__INIT;
        entries[i] = init;
        snprintf(keys[i], sizeof keys[i], "k%zu", i);
        snprintf(vals[i], sizeof vals[i], "v%zu", i * i);
        entries[i].key = keys[i];
        entries[i].value = vals[i];
        params[i] = &entries[i];
    }
    Refcache__V1__SubmitRequest s = REFCACHE__V1__SUBMIT_REQUEST__INIT;
    s.function = "sha256";
    s.n_params = n_params;
    s.params = params;
    s.payload.data = payload;
    s.payload.len = payload_len;
    s.deadline_ms = 9; /* not part of a Dispatch */
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    r.body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
    r.submit = &s;
    packed_t p = pack_request(&r);

    rc_request_t req;
    const char *why = NULL;
    assert_int_equal(rc_codec_request(p.data, p.len, &req, &why), 0);
    uint8_t *spec = NULL;
    size_t spec_len = 0;
    assert_int_equal(rc_codec_dispatch_spec(&req, REF, NULL, 0, &spec, &spec_len), 0);
    assert_non_null(spec);
    Refcache__V1__Dispatch d0 = REFCACHE__V1__DISPATCH__INIT;
    d0.ref_id = (char *) REF;
    d0.function = s.function;
    d0.n_params = n_params;
    d0.params = (Refcache__V1__Dispatch__ParamsEntry **) params;
    d0.payload = s.payload;
    assert_dispatch_bytes(spec, spec_len, &d0);
    /* Into the caller's room when it fits (the same bytes), else malloc'd. */
    uint8_t room[4096], *in_room = NULL;
    size_t room_len = 0;
    if (spec_len <= sizeof room) {
        assert_int_equal(rc_codec_dispatch_spec(&req, REF, room, spec_len, &in_room, &room_len), 0);
        assert_ptr_equal(in_room, room);
        assert_int_equal(room_len, spec_len);
        assert_memory_equal(room, spec, spec_len);
    }
    size_t small = spec_len - 1 < sizeof room ? spec_len - 1 : sizeof room;
    assert_int_equal(rc_codec_dispatch_spec(&req, REF, room, small, &in_room, &room_len), 0);
    assert_ptr_not_equal(in_room, room);
    assert_memory_equal(in_room, spec, spec_len);
    free(in_room);
    /* The spec outlives the request it was made from. */
    rc_codec_request_release(&req);
    free(p.data);

    static const uint32_t attempts[] = {1, 2, 101, 0, 127, 3};
    for (size_t a = 0; a < sizeof attempts / sizeof attempts[0]; a++) {
        rc_codec_dispatch_set_attempt(spec, spec_len, attempts[a]);
        Refcache__V1__BrokerMessage *m = unpack_broker(spec, spec_len);
        assert_int_equal(m->body_case, REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCH);
        Refcache__V1__Dispatch *d = m->dispatch;
        assert_non_null(d);
        assert_string_equal(d->ref_id, REF);
        assert_string_equal(d->function, "sha256");
        if (d->attempt != attempts[a]) {
            print_error("payload %zu, params %zu: attempt set to %u reads back as %u\n", payload_len,
                        n_params, attempts[a], d->attempt);
            fail();
        }
        assert_int_equal(d->payload.len, payload_len);
        if (payload_len)
            assert_memory_equal(d->payload.data, payload, payload_len);
        assert_int_equal(d->n_params, n_params);
        for (size_t i = 0; i < n_params; i++) {
            assert_string_equal(d->params[i]->key, keys[i]);
            assert_string_equal(d->params[i]->value, vals[i]);
        }
        refcache__v1__broker_message__free_unpacked(m, NULL);
    }
    free(spec);
    free(vals);
    free(keys);
    free(params);
    free(entries);
    free(payload);
}

static void test_dispatch_spec(void **state)
{
    check_dispatch(0, 0);
    check_dispatch(5, 1);
    check_dispatch(6, 3);
    /* Lengths that need 2- and 3-byte varints for the envelope. */
    check_dispatch(100, 2);
    check_dispatch(130, 0);
    check_dispatch(20000, 5);
    check_dispatch(1 << 20, 40);
}

/* ---------------------------------------------------------------- replies */

static Refcache__V1__Reply *encode_reply(rc_buf_t *buf, const rc_reply_t *r)
{
    assert_int_equal(rc_codec_reply(buf, r), 0);
    Refcache__V1__Reply *m = refcache__v1__reply__unpack(NULL, buf->len, buf->data);
    assert_non_null(m);
    assert_int_equal(m->id, r->id);
    assert_int_equal(m->code, r->code);
    assert_string_equal(m->message, r->message ? r->message : "");
    return m;
}

static rc_taskview_t sample_task(void)
{
    static const uint8_t result[] = {'4', '2', 0, '!'};
    rc_taskview_t v = {
        .ref_hex = REF,
        .state = REFCACHE__V1__STATE__STATE_COMPLETE,
        .result = {result, sizeof result},
        .result_size = 123456789,
        .result_truncated = true,
        .progress_done = 7,
        .progress_total = 10,
        .attempt = 2,
        .max_retries = 3,
        .error_code = REFCACHE__V1__CODE__CODE_UNAVAILABLE,
        .error = "worker lost",
        .function = "primes",
        .ns = "team-a",
        .created_at_us = 1700000000000001ULL,
        .started_at_us = 1700000000000002ULL,
        .finished_at_us = 1700000000000003ULL,
        .stopped_at_us = 1700000000000004ULL,
        .expires_at_us = 1700000000000005ULL,
        .ever_started = true,
    };
    return v;
}

static void check_task(const Refcache__V1__TaskInfo *ti, const rc_taskview_t *v)
{
    assert_non_null(ti);
    assert_string_equal(ti->ref_id, v->ref_hex ? v->ref_hex : "");
    assert_int_equal((int) ti->state, v->state); /* the enum type may be unsigned */
    assert_int_equal(ti->result.len, v->result.len);
    if (v->result.len)
        assert_memory_equal(ti->result.data, v->result.ptr, v->result.len);
    assert_true(ti->result_size == v->result_size);
    assert_int_equal(ti->result_truncated, v->result_truncated);
    assert_int_equal(ti->progress_done, v->progress_done);
    assert_int_equal(ti->progress_total, v->progress_total);
    assert_int_equal(ti->attempt, v->attempt);
    assert_int_equal(ti->max_retries, v->max_retries);
    assert_int_equal((int) ti->error_code, v->error_code);
    assert_string_equal(ti->error, v->error ? v->error : "");
    assert_string_equal(ti->function, v->function ? v->function : "");
    assert_string_equal(ti->namespace_, v->ns ? v->ns : "");
    assert_true(ti->created_at_us == v->created_at_us);
    assert_true(ti->started_at_us == v->started_at_us);
    assert_true(ti->finished_at_us == v->finished_at_us);
    assert_true(ti->stopped_at_us == v->stopped_at_us);
    assert_true(ti->expires_at_us == v->expires_at_us);
    assert_int_equal(ti->ever_started, v->ever_started);
}

static void test_reply_submit_and_task(void **state)
{
    rc_buf_t buf = {0};
    rc_taskview_t v = sample_task();

    rc_reply_t r = {.id = 7, .code = 0, .kind = RC_REPLY_SUBMIT, .task = &v, .cache_hit = true};
    Refcache__V1__Reply *m = encode_reply(&buf, &r);
    assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY_SUBMIT);
    assert_true(m->submit->cache_hit);
    assert_false(m->submit->deduplicated);
    check_task(m->submit->task, &v);
    refcache__v1__reply__free_unpacked(m, NULL);

    r.cache_hit = false;
    r.deduplicated = true;
    m = encode_reply(&buf, &r);
    assert_false(m->submit->cache_hit);
    assert_true(m->submit->deduplicated);
    refcache__v1__reply__free_unpacked(m, NULL);

    /* A TaskInfo with the optional strings unset, in a Task reply. */
    rc_taskview_t bare = {.ref_hex = REF, .state = REFCACHE__V1__STATE__STATE_PENDING};
    rc_reply_t t = {.id = UINT64_MAX, .kind = RC_REPLY_TASK, .task = &bare};
    m = encode_reply(&buf, &t);
    assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY_TASK);
    check_task(m->task, &bare);
    refcache__v1__reply__free_unpacked(m, NULL);

    t.task = &v;
    m = encode_reply(&buf, &t);
    assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY_TASK);
    check_task(m->task, &v);
    refcache__v1__reply__free_unpacked(m, NULL);

    /* A Task reply without a task has no body. */
    t.task = NULL;
    m = encode_reply(&buf, &t);
    assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY__NOT_SET);
    refcache__v1__reply__free_unpacked(m, NULL);
    rc_buf_free(&buf);
    assert_null(buf.data);
}

static void test_reply_fetch_cancel_delete(void **state)
{
    rc_buf_t buf = {0};
    size_t big_len = 100000;
    uint8_t *big = malloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (uint8_t) (i ^ (i >> 8));
    rc_reply_t f = {
        .id = 1, .kind = RC_REPLY_FETCH, .data = {big, big_len}, .total_size = 300000, .offset = 200000};
    Refcache__V1__Reply *m = encode_reply(&buf, &f);
    assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY_FETCH);
    assert_int_equal(m->fetch->data.len, big_len);
    assert_memory_equal(m->fetch->data.data, big, big_len);
    assert_int_equal(m->fetch->total_size, 300000);
    assert_int_equal(m->fetch->offset, 200000);
    refcache__v1__reply__free_unpacked(m, NULL);
    free(big);

    /* The buffer is reused: a smaller reply replaces the bigger one. */
    size_t cap = buf.cap;
    rc_reply_t c = {
        .id = 2, .kind = RC_REPLY_CANCEL, .flag = true, .state = REFCACHE__V1__STATE__STATE_CANCELLED};
    m = encode_reply(&buf, &c);
    assert_int_equal(buf.cap, cap);
    assert_true(buf.len < 100);
    assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY_CANCEL);
    assert_true(m->cancel->cancelled);
    assert_int_equal(m->cancel->state, REFCACHE__V1__STATE__STATE_CANCELLED);
    refcache__v1__reply__free_unpacked(m, NULL);

    /* Terminal: cancelled = false, state = the terminal state. */
    c.flag = false;
    c.state = REFCACHE__V1__STATE__STATE_COMPLETE;
    m = encode_reply(&buf, &c);
    assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY_CANCEL);
    assert_false(m->cancel->cancelled);
    assert_int_equal(m->cancel->state, REFCACHE__V1__STATE__STATE_COMPLETE);
    refcache__v1__reply__free_unpacked(m, NULL);

    for (int found = 0; found < 2; found++) {
        rc_reply_t d = {.id = 3, .kind = RC_REPLY_DELETE, .flag = found};
        m = encode_reply(&buf, &d);
        assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY_DELETE);
        assert_int_equal(m->delete_->found, found);
        refcache__v1__reply__free_unpacked(m, NULL);
    }
    rc_buf_free(&buf);
}

static void test_reply_error(void **state)
{
    rc_buf_t buf = {0};
    rc_reply_t e = {.id = 99,
                    .code = REFCACHE__V1__CODE__CODE_NOT_FOUND,
                    .message = "no such task",
                    .kind = RC_REPLY_NONE};
    Refcache__V1__Reply *m = encode_reply(&buf, &e);
    assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY__NOT_SET);
    refcache__v1__reply__free_unpacked(m, NULL);
    /* A NULL message is sent as "". */
    e.message = NULL;
    e.code = REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED;
    m = encode_reply(&buf, &e);
    refcache__v1__reply__free_unpacked(m, NULL);
    rc_buf_free(&buf);
}

static void test_reply_stats(void **state)
{
    rc_buf_t buf = {0};
    rc_statsview_t sv;
    memset(&sv, 0, sizeof sv);
    /* Every counter a distinct value, so a swapped field shows. */
    uint64_t n = 1000;
#define SET(name) sv.name = n++ * 1000003ULL;
    RC_STATS_FIELDS(SET)
#undef SET
    sv.version = "0.1.0";
    sv.draining = true;
    sv.store_path = "/var/lib/refcache/broker.db";
    sv.store_error = "the store's disk is full: write failed";
    rc_reply_t r = {.id = 5, .kind = RC_REPLY_STATS, .stats = &sv};
    Refcache__V1__Reply *m = encode_reply(&buf, &r);
    assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY_STATS);
    size_t fields = 0;
#define CHECK(name)                                                                                          \
    do {                                                                                                     \
        if (m->stats->name != sv.name) {                                                                     \
            print_error("stats field %s: expected %llu, got %llu\n", #name, (unsigned long long) sv.name,    \
                        (unsigned long long) m->stats->name);                                                \
            fail();                                                                                          \
        }                                                                                                    \
        fields++;                                                                                            \
    } while (0);
    RC_STATS_FIELDS(CHECK)
#undef CHECK
    /* Every numeric field of StatsReply (1..30, 32, 33, 36..41) is covered by the list. */
    assert_int_equal(fields, 38);
    assert_string_equal(m->stats->version, "0.1.0");
    assert_true(m->stats->draining);
    assert_string_equal(m->stats->store_path, sv.store_path);
    assert_string_equal(m->stats->store_error, sv.store_error);
    refcache__v1__reply__free_unpacked(m, NULL);

    /* No version: "". Without stats: no body. */
    sv.version = NULL;
    sv.store_path = sv.store_error = NULL;
    m = encode_reply(&buf, &r);
    assert_string_equal(m->stats->version, "");
    assert_string_equal(m->stats->store_path, "");
    assert_string_equal(m->stats->store_error, "");
    refcache__v1__reply__free_unpacked(m, NULL);
    r.stats = NULL;
    m = encode_reply(&buf, &r);
    assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY__NOT_SET);
    refcache__v1__reply__free_unpacked(m, NULL);
    rc_buf_free(&buf);
}

/* ---------------------------------------------------------------- reply bytes */

/* What protobuf-c packs for r: the Reply built here, field by field, as the
 * codec used to build it before it encoded by hand. */
static packed_t pb_reply(const rc_reply_t *r)
{
    Refcache__V1__Reply reply = REFCACHE__V1__REPLY__INIT;
    Refcache__V1__SubmitReply submit = REFCACHE__V1__SUBMIT_REPLY__INIT;
    Refcache__V1__TaskInfo ti = REFCACHE__V1__TASK_INFO__INIT;
    Refcache__V1__FetchReply fetch = REFCACHE__V1__FETCH_REPLY__INIT;
    Refcache__V1__CancelReply cancel = REFCACHE__V1__CANCEL_REPLY__INIT;
    Refcache__V1__DeleteReply del = REFCACHE__V1__DELETE_REPLY__INIT;
    Refcache__V1__StatsReply stats = REFCACHE__V1__STATS_REPLY__INIT;
    reply.id = r->id;
    reply.code = (Refcache__V1__Code) r->code;
    reply.message = (char *) (r->message ? r->message : "");
    const rc_taskview_t *v = r->task;
    if (v) {
        ti.ref_id = (char *) v->ref_hex;
        ti.state = (Refcache__V1__State) v->state;
        ti.result.data = (uint8_t *) v->result.ptr;
        ti.result.len = v->result.len;
        ti.result_size = v->result_size;
        ti.result_truncated = v->result_truncated;
        ti.progress_done = v->progress_done;
        ti.progress_total = v->progress_total;
        ti.attempt = v->attempt;
        ti.max_retries = v->max_retries;
        ti.error_code = (Refcache__V1__Code) v->error_code;
        ti.error = (char *) (v->error ? v->error : "");
        ti.function = (char *) (v->function ? v->function : "");
        ti.namespace_ = (char *) (v->ns ? v->ns : "");
        ti.created_at_us = v->created_at_us;
        ti.started_at_us = v->started_at_us;
        ti.finished_at_us = v->finished_at_us;
        ti.stopped_at_us = v->stopped_at_us;
        ti.expires_at_us = v->expires_at_us;
        ti.ever_started = v->ever_started;
    }
    switch (r->kind) {
    case RC_REPLY_SUBMIT:
        submit.task = v ? &ti : NULL;
        submit.cache_hit = r->cache_hit;
        submit.deduplicated = r->deduplicated;
        reply.body_case = REFCACHE__V1__REPLY__BODY_SUBMIT;
        reply.submit = &submit;
        break;
    case RC_REPLY_TASK:
        if (v) {
            reply.body_case = REFCACHE__V1__REPLY__BODY_TASK;
            reply.task = &ti;
        }
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
        if (r->stats) {
#define COPY(name) stats.name = r->stats->name;
            RC_STATS_FIELDS(COPY)
#undef COPY
            stats.version = (char *) (r->stats->version ? r->stats->version : "");
            reply.body_case = REFCACHE__V1__REPLY__BODY_STATS;
            reply.stats = &stats;
        }
        break;
    case RC_REPLY_NONE:
        break;
    case RC_REPLY_LIST: /* packed by protobuf-c: test_codec_observe */
    case RC_REPLY_WORKERS:
    case RC_REPLY_METRICS:
        fail_msg("not a hand-encoded reply");
    }
    packed_t p;
    p.len = refcache__v1__reply__get_packed_size(&reply);
    p.data = malloc(p.len ? p.len : 1);
    assert_non_null(p.data);
    assert_int_equal(refcache__v1__reply__pack(&reply, p.data), p.len);
    return p;
}

/* Encodes r into buf, compares the bytes with protobuf-c's, and reads them
 * back with protobuf-c. */
static void check_reply_bytes(rc_buf_t *buf, const rc_reply_t *r)
{
    assert_int_equal(rc_codec_reply(buf, r), 0);
    packed_t want = pb_reply(r);
    assert_same_bytes(buf->data, buf->len, want.data, want.len);
    free(want.data);

    Refcache__V1__Reply *m = refcache__v1__reply__unpack(NULL, buf->len, buf->data);
    assert_non_null(m);
    assert_true(m->id == r->id);
    assert_int_equal((int) m->code, r->code);
    assert_string_equal(m->message, r->message ? r->message : "");
    switch (r->kind) {
    case RC_REPLY_SUBMIT:
        assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY_SUBMIT);
        assert_int_equal(m->submit->cache_hit, r->cache_hit);
        assert_int_equal(m->submit->deduplicated, r->deduplicated);
        if (r->task)
            check_task(m->submit->task, r->task);
        else
            assert_null(m->submit->task);
        break;
    case RC_REPLY_TASK:
        if (r->task) {
            assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY_TASK);
            check_task(m->task, r->task);
        } else {
            assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY__NOT_SET);
        }
        break;
    case RC_REPLY_FETCH:
        assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY_FETCH);
        assert_int_equal(m->fetch->data.len, r->data.len);
        if (r->data.len)
            assert_memory_equal(m->fetch->data.data, r->data.ptr, r->data.len);
        assert_true(m->fetch->total_size == r->total_size);
        assert_true(m->fetch->offset == r->offset);
        break;
    case RC_REPLY_CANCEL:
        assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY_CANCEL);
        assert_int_equal(m->cancel->cancelled, r->flag);
        assert_int_equal((int) m->cancel->state, r->state);
        break;
    case RC_REPLY_DELETE:
        assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY_DELETE);
        assert_int_equal(m->delete_->found, r->flag);
        break;
    case RC_REPLY_STATS:
        assert_int_equal(m->body_case,
                         r->stats ? REFCACHE__V1__REPLY__BODY_STATS : REFCACHE__V1__REPLY__BODY__NOT_SET);
        break;
    case RC_REPLY_NONE:
        assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY__NOT_SET);
        break;
    case RC_REPLY_LIST:
    case RC_REPLY_WORKERS:
    case RC_REPLY_METRICS:
        fail_msg("not a hand-encoded reply");
    }
    refcache__v1__reply__free_unpacked(m, NULL);
}

/* Checks the view in a Submit reply (with each flag) and in a Task reply. */
static void check_task_bytes(rc_buf_t *buf, const rc_taskview_t *v, int code)
{
    for (int flags = 0; flags < 4; flags++) {
        rc_reply_t r = {.id = 1000 + (uint64_t) flags,
                        .code = code,
                        .kind = RC_REPLY_SUBMIT,
                        .task = v,
                        .cache_hit = flags & 1,
                        .deduplicated = flags & 2};
        check_reply_bytes(buf, &r);
    }
    rc_reply_t t = {
        .id = 77, .code = code, .message = code ? "not so good" : NULL, .kind = RC_REPLY_TASK, .task = v};
    check_reply_bytes(buf, &t);
}

static void test_reply_bytes_tasks(void **state)
{
    rc_buf_t buf = {0};
    rc_taskview_t all = sample_task();
    check_task_bytes(&buf, &all, 0);

    /* Every field at its default: the TaskInfo is empty, yet present. */
    rc_taskview_t none = {0};
    check_task_bytes(&buf, &none, 0);
    none.ref_hex = "";
    none.error = none.function = none.ns = "";
    check_task_bytes(&buf, &none, 0);

    /* Each state and each code, as the task's and as the reply's. */
    for (int st = 0; st <= 5; st++)
        for (int code = 0; code <= 16; code++) {
            rc_taskview_t v = {.ref_hex = REF, .state = st, .error_code = code};
            check_task_bytes(&buf, &v, code);
        }

    /* Numbers at every varint length boundary, and the largest. */
    static const uint64_t nums[] = {
        1,          127,        128,        16383,     16384,      (1u << 21) - 1, 1u << 21,  UINT32_MAX,
        1ULL << 32, 1ULL << 35, 1ULL << 56, INT64_MAX, 1ULL << 63, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        uint64_t n = nums[i];
        rc_taskview_t v = {.ref_hex = REF,
                           .result_size = n,
                           .progress_done = n,
                           .progress_total = n,
                           .attempt = (uint32_t) n,
                           .max_retries = (uint32_t) (n >> 1),
                           .created_at_us = n,
                           .started_at_us = n - 1,
                           .finished_at_us = n,
                           .stopped_at_us = n,
                           .expires_at_us = n};
        check_task_bytes(&buf, &v, 0);
        rc_reply_t f = {.id = n, .kind = RC_REPLY_FETCH, .total_size = n, .offset = n >> 3};
        check_reply_bytes(&buf, &f);
    }

    /* Results of 0, 1, 127, 128 and 16384 bytes, whole or a preview. */
    static const size_t lens[] = {0, 1, 127, 128, 16383, 16384, 100000};
    uint8_t *res = malloc(100000);
    assert_non_null(res);
    for (size_t i = 0; i < 100000; i++)
        res[i] = (uint8_t) (i * 31 + 7);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        for (int truncated = 0; truncated < 2; truncated++) {
            rc_taskview_t v = sample_task();
            v.result = (rc_bytes_t){res, lens[i]};
            v.result_size = truncated ? lens[i] * 3 + 1 : lens[i];
            v.result_truncated = truncated;
            check_task_bytes(&buf, &v, 0);
            rc_reply_t f = {.id = 3, .kind = RC_REPLY_FETCH, .data = {res, lens[i]}, .total_size = lens[i]};
            check_reply_bytes(&buf, &f);
        }

    /* Long strings: lengths that take 2 and 3 bytes, and UTF-8. */
    static const size_t slens[] = {127, 128, 300, 16383, 16384, 20000};
    char *str = malloc(20001);
    assert_non_null(str);
    for (size_t i = 0; i < sizeof slens / sizeof slens[0]; i++) {
        for (size_t j = 0; j < slens[i]; j++)
            str[j] = (char) (j % 7 == 0 ? 0xc3 : j % 7 == 1 ? 0xa9 : 'a' + (int) (j % 26));
        str[slens[i]] = 0;
        rc_taskview_t v = sample_task();
        v.error = v.function = v.ns = str;
        v.ref_hex = str + slens[i] / 2;
        check_task_bytes(&buf, &v, 2);
        rc_reply_t e = {.id = 9, .code = 13, .message = str, .kind = RC_REPLY_NONE};
        check_reply_bytes(&buf, &e);
    }
    free(str);
    free(res);

    /* Out-of-range enums are int32 on the wire: a negative one takes ten bytes. */
    static const int odd[] = {-1, -2, INT32_MIN, 17, 127, 128, INT32_MAX};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        rc_taskview_t v = {.ref_hex = REF, .state = odd[i], .error_code = odd[i]};
        check_task_bytes(&buf, &v, odd[i]);
        rc_reply_t c = {.id = 4, .kind = RC_REPLY_CANCEL, .flag = true, .state = odd[i]};
        check_reply_bytes(&buf, &c);
    }

    /* The bodies without a task. */
    rc_reply_t s = {.id = 5, .kind = RC_REPLY_SUBMIT};
    check_reply_bytes(&buf, &s);
    s.cache_hit = true;
    check_reply_bytes(&buf, &s);
    rc_reply_t t = {.kind = RC_REPLY_TASK};
    check_reply_bytes(&buf, &t);
    rc_reply_t empty = {.kind = RC_REPLY_NONE};
    check_reply_bytes(&buf, &empty);
    assert_int_equal(buf.len, 0);
    for (int flag = 0; flag < 2; flag++) {
        rc_reply_t d = {.id = 6, .kind = RC_REPLY_DELETE, .flag = flag};
        check_reply_bytes(&buf, &d);
        rc_reply_t c = {.kind = RC_REPLY_CANCEL, .flag = flag};
        check_reply_bytes(&buf, &c);
    }
    rc_reply_t f = {.kind = RC_REPLY_FETCH};
    check_reply_bytes(&buf, &f);
    rc_statsview_t sv = {.tasks_pending = 1, .uptime_ms = 1ULL << 40, .version = "9"};
    rc_reply_t st = {.id = 8, .kind = RC_REPLY_STATS, .stats = &sv};
    check_reply_bytes(&buf, &st);
    st.stats = NULL;
    check_reply_bytes(&buf, &st);
    rc_buf_free(&buf);
}

/* A fixed-seed generator, so a failure is repeatable. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    return rc_testkit_rnd(&rng);
}

/* Mostly the numbers where encodings change length. */
static uint64_t rnd_num(void)
{
    static const uint64_t edges[] = {0,          0,          1,          127,        128,
                                     16383,      16384,      2097151,    2097152,    UINT32_MAX,
                                     1ULL << 32, 1ULL << 49, 1ULL << 56, 1ULL << 63, UINT64_MAX};
    uint64_t r = rnd();
    if (r % 3)
        return edges[(r >> 8) % (sizeof edges / sizeof edges[0])];
    return rnd() >> (rnd() % 64);
}

static int rnd_enum(int max)
{
    uint64_t r = rnd() % 16;
    if (r == 0)
        return -(int) (rnd() % 1000) - 1;
    if (r == 1)
        return (int) (rnd() % 100000);
    return (int) (rnd() % (uint64_t) (max + 1));
}

static size_t rnd_len(void)
{
    static const size_t lens[] = {0, 0, 1, 2, 31, 32, 127, 128, 129, 300, 16383, 16384};
    uint64_t r = rnd();
    if (r % 4 == 0)
        return (size_t) (rnd() % 2000);
    return lens[(r >> 8) % (sizeof lens / sizeof lens[0])];
}

/* A random string (never with a NUL inside) in one of a few buffers, or NULL. */
static const char *rnd_str(char *buf)
{
    if (rnd() % 8 == 0)
        return NULL;
    size_t n = rnd_len();
    for (size_t i = 0; i < n; i++)
        buf[i] = (char) (1 + rnd() % 255);
    buf[n] = 0;
    return buf;
}

static void test_reply_bytes_random(void **state)
{
    enum { CASES = 4000, MAXLEN = 16384 + 1 };
    char *strs[5];
    for (int i = 0; i < 5; i++) {
        strs[i] = malloc(MAXLEN);
        assert_non_null(strs[i]);
    }
    uint8_t *res = malloc(MAXLEN);
    assert_non_null(res);
    rc_buf_t buf = {0};
    for (int c = 0; c < CASES; c++) {
        rc_taskview_t v = {
            .ref_hex = rnd_str(strs[0]),
            .state = rnd_enum(5),
            .result_size = rnd_num(),
            .result_truncated = rnd() & 1,
            .progress_done = rnd_num(),
            .progress_total = rnd_num(),
            .attempt = (uint32_t) rnd_num(),
            .max_retries = (uint32_t) rnd_num(),
            .error_code = rnd_enum(16),
            .error = rnd_str(strs[1]),
            .function = rnd_str(strs[2]),
            .ns = rnd_str(strs[3]),
            .created_at_us = rnd_num(),
            .started_at_us = rnd_num(),
            .finished_at_us = rnd_num(),
            .stopped_at_us = rnd_num(),
            .expires_at_us = rnd_num(),
            .ever_started = rnd() & 1,
        };
        size_t rlen = rnd_len();
        for (size_t i = 0; i < rlen; i++)
            res[i] = (uint8_t) rnd();
        v.result = (rc_bytes_t){rlen ? res : NULL, rlen};
        rc_reply_t r = {
            .id = rnd_num(),
            .code = rnd_enum(16),
            .message = rnd_str(strs[4]),
            .kind = (rc_reply_kind_t) (rnd() % (RC_REPLY_STATS + 1)),
            .task = rnd() % 8 ? &v : NULL,
            .cache_hit = rnd() & 1,
            .deduplicated = rnd() & 1,
            .data = v.result,
            .total_size = rnd_num(),
            .offset = rnd_num(),
            .flag = rnd() & 1,
            .state = rnd_enum(5),
        };
        rc_statsview_t sv = {.requests_total = rnd_num(), .version = v.function};
        if (r.kind == RC_REPLY_STATS && rnd() % 2)
            r.stats = &sv;
        check_reply_bytes(&buf, &r);
    }
    rc_buf_free(&buf);
    free(res);
    for (int i = 0; i < 5; i++)
        free(strs[i]);
}

/* ---------------------------------------------------------------- workers */

static void decode_wmsg(const Refcache__V1__WorkerMessage *pm, rc_wmsg_t *msg)
{
    packed_t p = pack_wmsg(pm);
    const char *why = NULL;
    assert_int_equal(rc_codec_wmsg(p.data, p.len, msg, &why), 0);
    free(p.data);
}

/* Makes wm a WorkerMessage{result} of rs, which it fills (ref REF). */
static void result_msg(Refcache__V1__WorkerMessage *wm, Refcache__V1__Result *rs, uint32_t attempt,
                       const uint8_t *data, size_t len)
{
    refcache__v1__result__init(rs);
    rs->ref_id = (char *) REF;
    rs->attempt = attempt;
    rs->data.data = (uint8_t *) data;
    rs->data.len = len;
    refcache__v1__worker_message__init(wm);
    wm->body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT;
    wm->result = rs;
}

static void test_wmsg_ready(void **state)
{
    char *functions[] = {"primes", "sha256", "sleep"};
    char *cacheable[] = {"primes", "sha256"};
    Refcache__V1__Ready rd = REFCACHE__V1__READY__INIT;
    rd.worker_id = "w-1";
    rd.n_functions = 3;
    rd.functions = functions;
    rd.credit = 4;
    rd.heartbeat_ms = 1000;
    rd.n_cacheable = 2;
    rd.cacheable = cacheable;
    Refcache__V1__WorkerMessage wm = REFCACHE__V1__WORKER_MESSAGE__INIT;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_READY;
    wm.ready = &rd;
    rc_wmsg_t m;
    decode_wmsg(&wm, &m);
    assert_int_equal(m.kind, RC_WMSG_READY);
    assert_int_equal(m.credit, 4);
    assert_int_equal(m.heartbeat_ms, 1000);
    assert_int_equal(m.n_functions, 3);
    assert_int_equal(m.n_cacheable, 2);
    for (size_t i = 0; i < 3; i++)
        assert_str(rc_codec_wmsg_function(&m, i), functions[i]);
    for (size_t i = 0; i < 2; i++)
        assert_str(rc_codec_wmsg_cacheable(&m, i), cacheable[i]);
    rc_codec_wmsg_release(&m);
    assert_null(m.pb_);
    rc_codec_wmsg_release(&m);
}

static void test_wmsg_task_messages(void **state)
{
    rc_wmsg_t m;

    Refcache__V1__Started st = REFCACHE__V1__STARTED__INIT;
    st.ref_id = (char *) REF;
    st.attempt = 1;
    Refcache__V1__WorkerMessage wm = REFCACHE__V1__WORKER_MESSAGE__INIT;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED;
    wm.started = &st;
    decode_wmsg(&wm, &m);
    assert_int_equal(m.kind, RC_WMSG_STARTED);
    assert_str(m.ref_id, REF);
    assert_int_equal(m.attempt, 1);
    rc_codec_wmsg_release(&m);

    Refcache__V1__Progress pg = REFCACHE__V1__PROGRESS__INIT;
    pg.ref_id = (char *) REF;
    pg.attempt = 2;
    pg.done = 1ULL << 40;
    pg.total = (1ULL << 41) + 1;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_PROGRESS;
    wm.progress = &pg;
    decode_wmsg(&wm, &m);
    assert_int_equal(m.kind, RC_WMSG_PROGRESS);
    assert_str(m.ref_id, REF);
    assert_int_equal(m.attempt, 2);
    assert_true(m.done == 1ULL << 40);
    assert_true(m.total == (1ULL << 41) + 1);
    rc_codec_wmsg_release(&m);

    Refcache__V1__Failure fl = REFCACHE__V1__FAILURE__INIT;
    fl.ref_id = (char *) REF;
    fl.attempt = 3;
    fl.code = REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT;
    fl.message = "n must be a number";
    fl.retryable = true;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_FAILURE;
    wm.failure = &fl;
    decode_wmsg(&wm, &m);
    assert_int_equal(m.kind, RC_WMSG_FAILURE);
    assert_str(m.ref_id, REF);
    assert_int_equal(m.attempt, 3);
    assert_int_equal(m.code, REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT);
    assert_str(m.message, "n must be a number");
    assert_true(m.retryable);
    rc_codec_wmsg_release(&m);

    Refcache__V1__CancelAck ca = REFCACHE__V1__CANCEL_ACK__INIT;
    ca.ref_id = (char *) REF;
    ca.attempt = 4;
    ca.started = true;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK;
    wm.cancel_ack = &ca;
    decode_wmsg(&wm, &m);
    assert_int_equal(m.kind, RC_WMSG_CANCEL_ACK);
    assert_str(m.ref_id, REF);
    assert_int_equal(m.attempt, 4);
    assert_true(m.started);
    rc_codec_wmsg_release(&m);

    Refcache__V1__Heartbeat hb = REFCACHE__V1__HEARTBEAT__INIT;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_HEARTBEAT;
    wm.heartbeat = &hb;
    decode_wmsg(&wm, &m);
    assert_int_equal(m.kind, RC_WMSG_HEARTBEAT);
    rc_codec_wmsg_release(&m);
}

static void test_wmsg_result(void **state)
{
    size_t len = 70000;
    uint8_t *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t) (i * 13);
    Refcache__V1__Result rs;
    Refcache__V1__WorkerMessage wm;
    result_msg(&wm, &rs, 1, data, len);

    /* Read in place (the broker copies the bytes into the task before the
     * release). */
    rc_wmsg_t m;
    decode_wmsg(&wm, &m);
    assert_int_equal(m.kind, RC_WMSG_RESULT);
    assert_str(m.ref_id, REF);
    assert_int_equal(m.attempt, 1);
    assert_bytes(m.data, data, len);
    rc_codec_wmsg_release(&m);

    /* An empty result. */
    rs.data.data = NULL;
    rs.data.len = 0;
    decode_wmsg(&wm, &m);
    assert_int_equal(m.data.len, 0);
    rc_codec_wmsg_release(&m);
    free(data);
}

static void test_wmsg_bad(void **state)
{
    rc_wmsg_t m;
    const char *why;
    static const uint8_t junk[] = {0x22, 0x7f, 0x0a};
    why = NULL;
    assert_int_equal(rc_codec_wmsg(junk, sizeof junk, &m, &why), -1);
    assert_non_null(why);
    rc_codec_wmsg_release(&m);
    why = NULL;
    assert_int_equal(rc_codec_wmsg((const uint8_t *) "", 0, &m, &why), -1);
    assert_non_null(why);
    rc_codec_wmsg_release(&m);
}

/* Random submits: the spec must be protobuf-c's bytes for the Dispatch. */
static void test_dispatch_random(void **state)
{
    enum { CASES = 400, MAXP = 40 };
    char *strs = malloc((2 * MAXP + 2) * (16384 + 1));
    assert_non_null(strs);
    uint8_t *payload = malloc(16384);
    assert_non_null(payload);
    for (int c = 0; c < CASES; c++) {
        Refcache__V1__SubmitRequest__ParamsEntry entries[MAXP];
        Refcache__V1__SubmitRequest__ParamsEntry *params[MAXP];
        size_t n_params = rnd() % 3 ? rnd() % 4 : rnd() % MAXP;
        for (size_t i = 0; i < n_params; i++) {
            Refcache__V1__SubmitRequest__ParamsEntry init = REFCACHE__V1__SUBMIT_REQUEST__PARAMS_ENTRY__INIT;
            entries[i] = init;
            const char *k = rnd_str(strs + (2 * i) * (16384 + 1));
            const char *v = rnd_str(strs + (2 * i + 1) * (16384 + 1));
            entries[i].key = (char *) (k ? k : "");
            entries[i].value = (char *) (v ? v : "");
            params[i] = &entries[i];
        }
        const char *fn = rnd_str(strs + (2 * MAXP) * (16384 + 1));
        const char *ref = rnd() % 4 ? REF : rnd_str(strs + (2 * MAXP + 1) * (16384 + 1));
        size_t plen = rnd_len();
        for (size_t i = 0; i < plen; i++)
            payload[i] = (uint8_t) rnd();
        Refcache__V1__SubmitRequest s = REFCACHE__V1__SUBMIT_REQUEST__INIT;
        s.function = (char *) (fn ? fn : "");
        s.n_params = n_params;
        s.params = params;
        s.payload.data = payload;
        s.payload.len = plen;
        s.max_retries = (uint32_t) rnd_num();
        Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
        r.body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
        r.submit = &s;
        packed_t p = pack_request(&r);

        rc_request_t req;
        const char *why = NULL;
        assert_int_equal(rc_codec_request(p.data, p.len, &req, &why), 0);
        free(p.data);
        uint8_t *spec = NULL;
        size_t spec_len = 0;
        assert_int_equal(rc_codec_dispatch_spec(&req, ref, NULL, 0, &spec, &spec_len), 0);
        Refcache__V1__Dispatch d = REFCACHE__V1__DISPATCH__INIT;
        d.ref_id = (char *) ref;
        d.function = s.function;
        d.n_params = n_params;
        d.params = (Refcache__V1__Dispatch__ParamsEntry **) params;
        d.payload = s.payload;
        assert_dispatch_bytes(spec, spec_len, &d);
        rc_codec_request_release(&req);

        uint32_t attempt = (uint32_t) (rnd() % 128);
        rc_codec_dispatch_set_attempt(spec, spec_len, attempt);
        Refcache__V1__BrokerMessage *m = unpack_broker(spec, spec_len);
        assert_int_equal(m->dispatch->attempt, attempt);
        assert_int_equal(m->dispatch->n_params, n_params);
        refcache__v1__broker_message__free_unpacked(m, NULL);
        free(spec);
    }
    free(payload);
    free(strs);
}

/* ---------------------------------------------------------------- arenas */

/* A packed Submit with n_params params of vlen-byte values and a payload of
 * plen bytes; the values are made from seed so that each message differs. */
static packed_t make_submit(uint64_t id, size_t n_params, size_t vlen, size_t plen, unsigned seed)
{
    Refcache__V1__SubmitRequest__ParamsEntry *entries = calloc(n_params + 1, sizeof *entries);
    Refcache__V1__SubmitRequest__ParamsEntry **params = calloc(n_params + 1, sizeof *params);
    char *text = malloc((n_params + 1) * (vlen + 32));
    uint8_t *payload = malloc(plen + 1);
    assert_true(entries && params && text && payload);
    for (size_t i = 0; i < n_params; i++) {
        Refcache__V1__SubmitRequest__ParamsEntry init = REFCACHE__V1__SUBMIT_REQUEST__PARAMS_ENTRY__INIT;
        entries[i] = init;
        char *k = text + i * (vlen + 32);
        snprintf(k, 16, "k%u", (unsigned) i);
        char *v = k + 16;
        for (size_t j = 0; j < vlen; j++)
            v[j] = (char) ('a' + (seed + i + j) % 26);
        v[vlen] = 0;
        entries[i].key = k;
        entries[i].value = v;
        params[i] = &entries[i];
    }
    for (size_t i = 0; i < plen; i++)
        payload[i] = (uint8_t) (seed * 7 + i);
    char fn[32];
    snprintf(fn, sizeof fn, "fn-%u", seed);
    Refcache__V1__SubmitRequest s = REFCACHE__V1__SUBMIT_REQUEST__INIT;
    s.function = fn;
    s.namespace_ = "team-b";
    s.n_params = n_params;
    s.params = params;
    s.payload.data = payload;
    s.payload.len = plen;
    s.deadline_ms = seed;
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    r.id = id;
    r.body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
    r.submit = &s;
    packed_t p = pack_request(&r);
    free(payload);
    free(text);
    free(params);
    free(entries);
    return p;
}

/* Checks a view decoded from make_submit(id, n_params, vlen, plen, seed). */
static void check_submit(const rc_request_t *req, uint64_t id, size_t n_params, size_t vlen, size_t plen,
                         unsigned seed)
{
    assert_int_equal(req->kind, RC_REQ_SUBMIT);
    assert_true(req->id == id);
    char fn[32];
    snprintf(fn, sizeof fn, "fn-%u", seed);
    assert_str(req->function, fn);
    assert_str(req->ns, "team-b");
    assert_int_equal(req->deadline_ms, seed);
    assert_int_equal(req->payload.len, plen);
    for (size_t i = 0; i < plen; i++)
        assert_int_equal(req->payload.ptr[i], (uint8_t) (seed * 7 + i));
    assert_int_equal(req->n_params, n_params);
    for (size_t i = 0; i < n_params; i++) {
        rc_str_t k, v;
        rc_codec_request_param(req, i, &k, &v);
        char want[16];
        snprintf(want, sizeof want, "k%u", (unsigned) i);
        assert_str(k, want);
        assert_int_equal(v.len, vlen);
        for (size_t j = 0; j < vlen; j++)
            assert_int_equal(v.ptr[j], 'a' + (seed + i + j) % 26);
        assert_int_equal(v.ptr[vlen], 0); /* the handlers use them as C strings */
    }
}

static void test_arena_many_in_a_row(void **state)
{
    size_t live = rc_codec_live_messages();
    packed_t p = make_submit(1, 2, 8, 16, 5);
    Refcache__V1__Result rs;
    Refcache__V1__WorkerMessage wm;
    result_msg(&wm, &rs, 1, (const uint8_t *) "hello", 5);
    packed_t w = pack_wmsg(&wm);
    for (int i = 0; i < 20000; i++) {
        rc_request_t req;
        rc_wmsg_t m;
        const char *why = NULL;
        assert_int_equal(rc_codec_request(p.data, p.len, &req, &why), 0);
        assert_int_equal(rc_codec_wmsg(w.data, w.len, &m, &why), 0);
        assert_int_equal(rc_codec_live_messages(), live + 2);
        if (i % 1000 == 0) {
            check_submit(&req, 1, 2, 8, 16, 5);
            assert_bytes(m.data, "hello", 5);
            assert_str(m.ref_id, REF);
        }
        rc_codec_wmsg_release(&m);
        rc_codec_request_release(&req);
    }
    assert_int_equal(rc_codec_live_messages(), live);
    free(w.data);
    free(p.data);
}

static void test_arena_alive_together(void **state)
{
    /* More messages alive at once than there are static arenas; each keeps
     * its own contents while the others come and go. */
    enum { N = 40 };
    size_t live = rc_codec_live_messages();
    rc_request_t reqs[N];
    for (unsigned i = 0; i < N; i++) {
        packed_t p = make_submit(i, i % 5, i * 3, i * 11, i);
        const char *why = NULL;
        assert_int_equal(rc_codec_request(p.data, p.len, &reqs[i], &why), 0);
        free(p.data);
        /* A bad frame while everything is taken fails cleanly. */
        if (i == 20) {
            rc_request_t bad;
            static const uint8_t junk[] = {0x12, 0x50, 0x0a, 0x01, 0x61};
            assert_int_equal(rc_codec_request(junk, sizeof junk, &bad, &why), -1);
            assert_non_null(why);
            rc_codec_request_release(&bad);
        }
    }
    assert_int_equal(rc_codec_live_messages(), live + N);
    for (unsigned i = 0; i < N; i++)
        check_submit(&reqs[i], i, i % 5, i * 3, i * 11, i);
    /* Release every other one, decode into the freed places, check all. */
    for (unsigned i = 0; i < N; i += 2)
        rc_codec_request_release(&reqs[i]);
    for (unsigned i = 0; i < N; i += 2) {
        packed_t p = make_submit(i + 100, 3, 5, 7, i + 100);
        const char *why = NULL;
        assert_int_equal(rc_codec_request(p.data, p.len, &reqs[i], &why), 0);
        free(p.data);
    }
    for (unsigned i = 0; i < N; i++) {
        if (i % 2)
            check_submit(&reqs[i], i, i % 5, i * 3, i * 11, i);
        else
            check_submit(&reqs[i], i + 100, 3, 5, 7, i + 100);
    }
    for (unsigned i = N; i-- > 0;)
        rc_codec_request_release(&reqs[i]);
    assert_int_equal(rc_codec_live_messages(), live);
}

static void test_arena_larger_than_arena(void **state)
{
    size_t live = rc_codec_live_messages();
    /* 100 KB of payload and 200 params of 100 bytes: far more than an arena. */
    packed_t p = make_submit(7, 200, 100, 100000, 3);
    rc_request_t req;
    const char *why = NULL;
    assert_int_equal(rc_codec_request(p.data, p.len, &req, &why), 0);
    check_submit(&req, 7, 200, 100, 100000, 3);
    uint8_t *spec = NULL;
    size_t spec_len = 0;
    assert_int_equal(rc_codec_dispatch_spec(&req, REF, NULL, 0, &spec, &spec_len), 0);
    rc_codec_request_release(&req);
    free(spec);
    free(p.data);

    /* A 1 MiB Result, read in place. */
    size_t len = 1 << 20;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t) (i * 5 + 1);
    Refcache__V1__Result rs;
    Refcache__V1__WorkerMessage wm;
    result_msg(&wm, &rs, 9, data, len);
    rc_wmsg_t m;
    decode_wmsg(&wm, &m);
    assert_bytes(m.data, data, len);
    rc_codec_wmsg_release(&m);
    /* A small one, from the arena. */
    rs.data.len = 100;
    decode_wmsg(&wm, &m);
    assert_bytes(m.data, data, 100);
    rc_codec_wmsg_release(&m);
    free(data);

    /* A Ready with many names (protobuf-c scratch space for many fields). */
    enum { NAMES = 300 };
    char *names[NAMES];
    char text[NAMES][16];
    for (size_t i = 0; i < NAMES; i++) {
        snprintf(text[i], sizeof text[i], "fn%zu", i);
        names[i] = text[i];
    }
    Refcache__V1__Ready rd = REFCACHE__V1__READY__INIT;
    rd.worker_id = "w-9";
    rd.n_functions = NAMES;
    rd.functions = names;
    rd.n_cacheable = NAMES / 2;
    rd.cacheable = names;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_READY;
    wm.ready = &rd;
    decode_wmsg(&wm, &m);
    assert_int_equal(m.n_functions, NAMES);
    for (size_t i = 0; i < NAMES; i++)
        assert_str(rc_codec_wmsg_function(&m, i), text[i]);
    for (size_t i = 0; i < NAMES / 2; i++)
        assert_str(rc_codec_wmsg_cacheable(&m, i), text[i]);
    rc_codec_wmsg_release(&m);
    assert_int_equal(rc_codec_live_messages(), live);
}

static void test_arena_malformed(void **state)
{
    size_t live = rc_codec_live_messages();
    /* Every cut of a Submit larger than an arena fails with a reason (the
     * blocks made before the failure are freed). */
    packed_t p = make_submit(11, 60, 300, 20000, 4);
    uint8_t *copy = malloc(p.len);
    assert_non_null(copy);
    for (size_t cut = 0; cut < p.len; cut += cut < 2000 || cut > p.len - 2000 ? 1 : 97) {
        memcpy(copy, p.data, cut); /* a buffer of exactly cut bytes, for ASan */
        rc_request_t req;
        const char *why = NULL;
        int rc = rc_codec_request(copy, cut, &req, &why);
        if (cut == 0 || rc != 0) {
            assert_int_equal(rc, -1);
            assert_non_null(why);
        }
        rc_codec_request_release(&req);
    }
    /* Flipped bytes: whatever the outcome, no crash, a reason on failure,
     * and nothing left behind. */
    packed_t small = make_submit(12, 4, 20, 40, 6);
    for (int c = 0; c < 20000; c++) {
        const packed_t *src = c % 8 ? &small : &p;
        memcpy(copy, src->data, src->len);
        int flips = 1 + (int) (rnd() % 4);
        for (int f = 0; f < flips; f++)
            copy[rnd() % src->len] ^= (uint8_t) (1u << (rnd() % 8));
        size_t len = rnd() % 4 ? src->len : (size_t) (rnd() % src->len);
        rc_request_t req;
        rc_wmsg_t m;
        const char *why = NULL;
        if (rc_codec_request(copy, len, &req, &why) != 0)
            assert_non_null(why);
        else if (req.kind == RC_REQ_SUBMIT)
            for (size_t i = 0; i < req.n_params; i++) {
                rc_str_t k, v;
                rc_codec_request_param(&req, i, &k, &v);
            }
        rc_codec_request_release(&req);
        why = NULL;
        if (rc_codec_wmsg(copy, len, &m, &why) != 0)
            assert_non_null(why);
        rc_codec_wmsg_release(&m);
    }
    free(small.data);
    free(copy);
    free(p.data);
    assert_int_equal(rc_codec_live_messages(), live);
}

/* ---------------------------------------------------------------- fast decode */

/* The codec reads the common shapes of a Submit, a Result and a Started
 * itself and leaves the rest to protobuf-c; whatever the bytes, its views
 * must be what protobuf-c's unpack says. These tests write wire bytes by
 * hand: canonical ones, and ones with fields repeated, out of order, of the
 * wrong wire type, unknown, with padded varints, cut, or bit-flipped. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} wire_t;

static void w_bytes(wire_t *w, const void *data, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->p = realloc(w->p, w->cap);
        assert_non_null(w->p);
    }
    if (n)
        memcpy(w->p + w->n, data, n);
    w->n += n;
}

/* A varint, padded with `pad` extra (non-canonical) bytes. */
static void w_varint(wire_t *w, uint64_t v, int pad)
{
    uint8_t b[16];
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t) (v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t) v;
    for (int i = 0; i < pad && n < 10; i++) {
        b[n - 1] |= 0x80;
        b[n++] = 0;
    }
    w_bytes(w, b, n);
}

static int rnd_pad(bool odd)
{
    return odd && rnd() % 6 == 0 ? (int) (rnd() % 6) : 0;
}

static void w_len(wire_t *w, unsigned field, const wire_t *body, bool odd)
{
    w_varint(w, (uint64_t) field << 3 | 2, rnd_pad(odd));
    w_varint(w, body->n, rnd_pad(odd));
    w_bytes(w, body->p, body->n);
}

/* Random bytes, NULs and invalid UTF-8 included. */
static void w_random_string(wire_t *w, unsigned field, bool odd)
{
    wire_t s = {0};
    size_t n = rnd() % 3 ? rnd() % 12 : rnd_len();
    for (size_t i = 0; i < n; i++) {
        uint8_t c = rnd() % 4 ? (uint8_t) ('a' + rnd() % 26) : (uint8_t) rnd();
        w_bytes(&s, &c, 1);
    }
    w_len(w, field, &s, odd);
    free(s.p);
}

/* A field of the given kind ('s' string/bytes, 'v' varint, 'm' a params
 * entry); with odd set, sometimes another wire type or a padded key. */
static void w_field(wire_t *w, unsigned field, char kind, bool odd)
{
    if (odd && rnd() % 10 == 0) {
        unsigned wt = (unsigned) (rnd() % 6);
        w_varint(w, (uint64_t) field << 3 | wt, rnd_pad(odd));
        switch (wt) {
        case 0:
            w_varint(w, rnd_num(), rnd_pad(odd));
            return;
        case 1:
            w_bytes(w, "\1\2\3\4\5\6\7\10", 8);
            return;
        case 5:
            w_bytes(w, "\1\2\3\4", 4);
            return;
        case 2: {
            wire_t e = {0};
            w_bytes(&e, "ab", 2);
            w_varint(w, e.n, 0);
            w_bytes(w, e.p, e.n);
            free(e.p);
            return;
        }
        default: /* groups: protobuf-c rejects them */
            return;
        }
    }
    switch (kind) {
    case 's':
        w_random_string(w, field, odd);
        break;
    case 'v': {
        uint64_t v = rnd() % 3 ? rnd() % 300 : rnd_num();
        w_varint(w, (uint64_t) field << 3, rnd_pad(odd));
        w_varint(w, v, rnd_pad(odd));
        break;
    }
    case 'm': {
        wire_t e = {0};
        int shape = odd ? (int) (rnd() % 6) : 0;
        if (shape != 1)
            w_field(&e, 1, 's', odd);
        if (shape != 2)
            w_field(&e, 2, 's', odd);
        if (shape == 3)
            w_field(&e, 1, 's', odd); /* key again, after the value */
        if (shape == 4)
            w_field(&e, 3, 'v', odd); /* unknown */
        w_len(w, field, &e, odd);
        free(e.p);
        break;
    }
    }
}

/* A message body with fields 1..n of the given kinds: in order, each at most
 * once (the field `repeated` 0..3 times); with odd set, also shuffled,
 * repeated, unknown fields. */
static void w_body(wire_t *w, const char *kinds, unsigned repeated, bool odd)
{
    unsigned n = (unsigned) strlen(kinds);
    for (unsigned f = 1; f <= n; f++) {
        if (rnd() % 3 == 0)
            continue;
        unsigned times = f == repeated ? (unsigned) (rnd() % 4) : 1;
        for (unsigned t = 0; t < times; t++)
            w_field(w, f, kinds[f - 1], odd);
    }
    if (!odd)
        return;
    unsigned extra = rnd() % 3 ? 0 : (unsigned) (rnd() % 4);
    for (unsigned i = 0; i < extra; i++) {
        unsigned f = 1 + (unsigned) (rnd() % (n + 3)); /* known or not */
        w_field(w, f, f <= n ? kinds[f - 1] : 'v', odd);
    }
    if (rnd() % 20 == 0)
        w_field(w, 1000 + (unsigned) (rnd() % 1000), 's', odd); /* a two-byte key */
}

static void mutate(wire_t *w)
{
    if (!w->n)
        return;
    switch (rnd() % 8) {
    case 0:
        w->p[rnd() % w->n] ^= (uint8_t) (1u << (rnd() % 8));
        break;
    case 1:
        w->n = (size_t) (rnd() % w->n);
        break;
    default:
        break;
    }
}

static void assert_same_str(rc_str_t got, const char *want)
{
    assert_str(got, want); /* views stop at a NUL, as strlen does */
}

/* The codec's Request view against protobuf-c's own unpack of the bytes. */
static void expect_request_as_protobuf(const uint8_t *data, size_t len)
{
    rc_request_t req;
    const char *why = NULL;
    int rc = rc_codec_request(data, len, &req, &why);
    Refcache__V1__Request *pb = refcache__v1__request__unpack(NULL, len, data);
    if (!pb || pb->body_case == REFCACHE__V1__REQUEST__BODY__NOT_SET) {
        assert_int_equal(rc, -1);
        assert_non_null(why);
    } else if (pb->body_case == REFCACHE__V1__REQUEST__BODY_SUBMIT) {
        assert_int_equal(rc, 0);
        const Refcache__V1__SubmitRequest *s = pb->submit;
        assert_true(req.id == pb->id);
        assert_int_equal(req.kind, RC_REQ_SUBMIT);
        assert_same_str(req.function, s->function);
        assert_same_str(req.ns, s->namespace_);
        assert_bytes(req.payload, s->payload.data, s->payload.len);
        assert_int_equal(req.async_timeout_ms, s->async_timeout_ms);
        assert_int_equal(req.deadline_ms, s->deadline_ms);
        assert_int_equal(req.max_retries, s->max_retries);
        assert_int_equal(req.ttl_s, s->ttl_s);
        assert_int_equal(req.no_cache, s->no_cache);
        assert_int_equal(req.n_params, s->n_params);
        for (size_t i = 0; i < s->n_params; i++) {
            rc_str_t k, v;
            rc_codec_request_param(&req, i, &k, &v);
            assert_same_str(k, s->params[i]->key);
            assert_same_str(v, s->params[i]->value);
        }
        /* And the dispatch made from it is protobuf-c's. */
        uint8_t *spec;
        size_t spec_len;
        assert_int_equal(rc_codec_dispatch_spec(&req, REF, NULL, 0, &spec, &spec_len), 0);
        Refcache__V1__Dispatch d = REFCACHE__V1__DISPATCH__INIT;
        d.ref_id = (char *) REF;
        d.function = s->function;
        d.n_params = s->n_params;
        d.params = (Refcache__V1__Dispatch__ParamsEntry **) s->params;
        d.payload = s->payload;
        assert_dispatch_bytes(spec, spec_len, &d);
        free(spec);
    } else {
        assert_int_equal(rc, 0);
        assert_true(req.id == pb->id);
        assert_int_not_equal(req.kind, RC_REQ_SUBMIT);
    }
    if (pb)
        refcache__v1__request__free_unpacked(pb, NULL);
    rc_codec_request_release(&req);
}

static void expect_wmsg_as_protobuf(const uint8_t *data, size_t len)
{
    rc_wmsg_t m;
    const char *why = NULL;
    int rc = rc_codec_wmsg(data, len, &m, &why);
    Refcache__V1__WorkerMessage *pb = refcache__v1__worker_message__unpack(NULL, len, data);
    if (!pb || pb->body_case == REFCACHE__V1__WORKER_MESSAGE__BODY__NOT_SET) {
        assert_int_equal(rc, -1);
        assert_non_null(why);
    } else {
        assert_int_equal(rc, 0);
        switch (pb->body_case) {
        case REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT:
            assert_int_equal(m.kind, RC_WMSG_RESULT);
            assert_same_str(m.ref_id, pb->result->ref_id);
            assert_int_equal(m.attempt, pb->result->attempt);
            assert_bytes(m.data, pb->result->data.data, pb->result->data.len);
            break;
        case REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED:
            assert_int_equal(m.kind, RC_WMSG_STARTED);
            assert_same_str(m.ref_id, pb->started->ref_id);
            assert_int_equal(m.attempt, pb->started->attempt);
            break;
        case REFCACHE__V1__WORKER_MESSAGE__BODY_RESULTS:
            assert_int_equal(m.kind, RC_WMSG_RESULTS);
            assert_int_equal(m.n_results, pb->results->n_results);
            for (size_t i = 0; i < m.n_results; i++) {
                const Refcache__V1__Result *want = pb->results->results[i];
                rc_wmsg_t one;
                rc_codec_wmsg_result(&m, i, &one);
                assert_int_equal(one.kind, RC_WMSG_RESULT);
                assert_same_str(one.ref_id, want->ref_id);
                assert_int_equal(one.attempt, want->attempt);
                assert_bytes(one.data, want->data.data, want->data.len);
            }
            break;
        default:
            assert_int_not_equal(m.kind, RC_WMSG_RESULT);
            assert_int_not_equal(m.kind, RC_WMSG_STARTED);
            break;
        }
    }
    if (pb)
        refcache__v1__worker_message__free_unpacked(pb, NULL);
    rc_codec_wmsg_release(&m);
}

static void test_fast_decode_as_protobuf(void **state)
{
    size_t live = rc_codec_live_messages();
    for (int c = 0; c < 6000; c++) {
        bool odd = rnd() % 2;
        wire_t body = {0}, w = {0};
        /* SubmitRequest: function, params, payload, 4 x uint32, namespace, no_cache. */
        w_body(&body, "smsvvvvsv", 2, odd);
        if (rnd() % 2)
            w_field(&w, 1, 'v', odd);
        w_len(&w, 2, &body, odd);
        if (odd && rnd() % 8 == 0)
            w_field(&w, 1 + (unsigned) (rnd() % 9), 'v', odd); /* id again, or another body */
        if (odd)
            mutate(&w);
        expect_request_as_protobuf(w.p, w.n);
        free(body.p);
        free(w.p);

        /* Result (ref_id, attempt, data), Started (ref_id, attempt) or a
         * ResultBatch of 0 to 5 Results. */
        wire_t r = {0}, wm = {0};
        static const unsigned bodies[] = {2, 4, 8};
        unsigned which = bodies[rnd() % 3];
        if (which == 8) {
            for (unsigned i = rnd() % 6; i > 0; i--) {
                wire_t e = {0};
                w_body(&e, "svs", 0, odd);
                w_len(&r, 1, &e, odd);
                free(e.p);
            }
        } else {
            w_body(&r, which == 4 ? "svs" : "sv", 0, odd);
        }
        w_len(&wm, which, &r, odd);
        if (odd && rnd() % 8 == 0)
            w_len(&wm, bodies[rnd() % 3], &r, odd);
        if (odd)
            mutate(&wm);
        expect_wmsg_as_protobuf(wm.p, wm.n);
        free(r.p);
        free(wm.p);
    }
    assert_int_equal(rc_codec_live_messages(), live);
}

/* ---------------------------------------------------------------- batches */

/* A RequestBatch is read in place when it has the simple shape (an id, then
 * the entries one after the other) and through protobuf-c otherwise, each
 * entry re-encoded; either way rc_codec_request_next must give every entry,
 * in order, as bytes that decode to the request that was put in. */
#define BATCH_N 6

/* Entry i of the test batches: a Submit (with a param and a payload), a
 * Status, a Wait, a Stats, then again; packed alone by protobuf-c. */
static packed_t batch_entry(size_t i)
{
    char payload[32];
    snprintf(payload, sizeof payload, "payload-%zu", i);
    Refcache__V1__SubmitRequest__ParamsEntry e = REFCACHE__V1__SUBMIT_REQUEST__PARAMS_ENTRY__INIT;
    Refcache__V1__SubmitRequest__ParamsEntry *params[] = {&e};
    e.key = "ms";
    e.value = "5";
    Refcache__V1__SubmitRequest s = REFCACHE__V1__SUBMIT_REQUEST__INIT;
    s.function = "echo";
    s.params = params;
    s.n_params = 1;
    s.payload.data = (uint8_t *) payload;
    s.payload.len = strlen(payload);
    s.async_timeout_ms = 100 + (uint32_t) i;
    Refcache__V1__StatusRequest st = REFCACHE__V1__STATUS_REQUEST__INIT;
    st.ref_id = (char *) REF;
    st.namespace_ = "ns";
    Refcache__V1__WaitRequest wt = REFCACHE__V1__WAIT_REQUEST__INIT;
    wt.ref_id = (char *) REF;
    wt.timeout_ms = 1000 + (uint32_t) i;
    Refcache__V1__StatsRequest ss = REFCACHE__V1__STATS_REQUEST__INIT;

    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    r.id = 1000 + i;
    switch (i % 4) {
    case 0:
        r.body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
        r.submit = &s;
        break;
    case 1:
        r.body_case = REFCACHE__V1__REQUEST__BODY_STATUS;
        r.status = &st;
        break;
    case 2:
        r.body_case = REFCACHE__V1__REQUEST__BODY_WAIT;
        r.wait = &wt;
        break;
    default:
        r.body_case = REFCACHE__V1__REQUEST__BODY_STATS;
        r.stats = &ss;
        break;
    }
    return pack_request(&r);
}

/* Checks that entry bytes are batch_entry(i), byte for byte (both the bytes
 * read in place and protobuf-c's re-encoding are canonical), and that they
 * decode to it. */
static void check_batch_entry(rc_bytes_t entry, size_t i)
{
    packed_t want = batch_entry(i);
    assert_same_bytes(entry.ptr, entry.len, want.data, want.len);
    free(want.data);

    rc_request_t req;
    const char *why = NULL;
    assert_int_equal(rc_codec_request(entry.ptr, entry.len, &req, &why), 0);
    assert_true(req.id == 1000 + i);
    switch (i % 4) {
    case 0: {
        char payload[32];
        snprintf(payload, sizeof payload, "payload-%zu", i);
        assert_int_equal(req.kind, RC_REQ_SUBMIT);
        assert_str(req.function, "echo");
        assert_bytes(req.payload, payload, strlen(payload));
        assert_int_equal(req.async_timeout_ms, 100 + i);
        assert_int_equal(req.n_params, 1);
        rc_str_t k, v;
        rc_codec_request_param(&req, 0, &k, &v);
        assert_str(k, "ms");
        assert_str(v, "5");
        break;
    }
    case 1:
        assert_int_equal(req.kind, RC_REQ_STATUS);
        assert_str(req.ref_id, REF);
        assert_str(req.ns, "ns");
        break;
    case 2:
        assert_int_equal(req.kind, RC_REQ_WAIT);
        assert_str(req.ref_id, REF);
        assert_int_equal(req.timeout_ms, 1000 + i);
        break;
    default:
        assert_int_equal(req.kind, RC_REQ_STATS);
        break;
    }
    rc_codec_request_release(&req);
}

/* The bytes of a RequestBatch (its body) holding entries [from, to). */
static void w_batch_body(wire_t *w, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        packed_t e = batch_entry(i);
        wire_t ew = {e.data, e.len, e.len};
        w_len(w, 1, &ew, false);
        free(e.data);
    }
}

/* Decodes data as a Request{batch} with outer id `id` and checks that its
 * entries are batch_entry(0..n-1) in order, then that there are no more. */
static void expect_batch(const uint8_t *data, size_t len, uint64_t id, size_t n)
{
    size_t live = rc_codec_live_messages();
    rc_request_t req;
    const char *why = NULL;
    if (rc_codec_request(data, len, &req, &why) != 0) {
        hexdump("batch", data, len);
        fail_msg("rc_codec_request: %s", why);
    }
    assert_int_equal(req.kind, RC_REQ_BATCH);
    assert_true(req.id == id);
    rc_buf_t scratch = {0};
    rc_bytes_t entry;
    size_t got = 0;
    while (rc_codec_request_next(&req, &scratch, &entry)) {
        assert_true(got < n);
        check_batch_entry(entry, got);
        got++;
    }
    assert_int_equal(got, n);
    assert_false(rc_codec_request_next(&req, &scratch, &entry)); /* and stays at the end */
    assert_int_equal(rc_codec_live_messages(), live + 1);
    rc_codec_request_release(&req);
    rc_buf_free(&scratch);
    assert_int_equal(rc_codec_live_messages(), live);
}

static void test_batch_simple(void **state)
{
    size_t live = rc_codec_live_messages();
    Refcache__V1__Request *entries[BATCH_N];
    packed_t packed[BATCH_N];
    for (size_t i = 0; i < BATCH_N; i++) {
        packed[i] = batch_entry(i);
        entries[i] = refcache__v1__request__unpack(NULL, packed[i].len, packed[i].data);
        assert_non_null(entries[i]);
    }
    /* With and without an outer id, and with 1 to BATCH_N entries. */
    for (size_t n = 1; n <= BATCH_N; n++) {
        Refcache__V1__RequestBatch b = REFCACHE__V1__REQUEST_BATCH__INIT;
        b.requests = entries;
        b.n_requests = n;
        Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
        r.id = n % 2 ? 77 : 0;
        r.body_case = REFCACHE__V1__REQUEST__BODY_BATCH;
        r.batch = &b;
        packed_t p = pack_request(&r);
        expect_batch(p.data, p.len, r.id, n);
        free(p.data);
    }
    for (size_t i = 0; i < BATCH_N; i++) {
        refcache__v1__request__free_unpacked(entries[i], NULL);
        free(packed[i].data);
    }
    assert_int_equal(rc_codec_live_messages(), live);
}

/* Shapes the fast path declines, which protobuf-c reads: the batch field
 * after the id... */
static void test_batch_unusual_shapes(void **state)
{
    size_t live = rc_codec_live_messages();
    wire_t body = {0}, w = {0};
    w_batch_body(&body, 0, BATCH_N);
    static const uint8_t id7[] = {0x08, 0x07};

    /* An unknown varint field (15) in the outer Request, after the batch
     * and before it. */
    w_bytes(&w, id7, sizeof id7);
    w_len(&w, 9, &body, false);
    w_bytes(&w, "\x78\x2a", 2);
    expect_batch(w.p, w.n, 7, BATCH_N);
    w.n = 0;
    w_bytes(&w, "\x78\x2a", 2);
    w_bytes(&w, id7, sizeof id7);
    w_len(&w, 9, &body, false);
    expect_batch(w.p, w.n, 7, BATCH_N);

    /* An unknown length-delimited field (99) in the outer Request. */
    w.n = 0;
    w_bytes(&w, id7, sizeof id7);
    w_bytes(&w, "\x9a\x06\x03xyz", 6);
    w_len(&w, 9, &body, false);
    expect_batch(w.p, w.n, 7, BATCH_N);

    /* The fields out of order: the batch, then the id. */
    w.n = 0;
    w_len(&w, 9, &body, false);
    w_bytes(&w, id7, sizeof id7);
    expect_batch(w.p, w.n, 7, BATCH_N);

    /* An unknown field inside the RequestBatch, between its entries. */
    wire_t odd = {0};
    w_batch_body(&odd, 0, 2);
    w_bytes(&odd, "\x10\x01", 2);
    w_batch_body(&odd, 2, BATCH_N);
    w.n = 0;
    w_bytes(&w, id7, sizeof id7);
    w_len(&w, 9, &odd, false);
    expect_batch(w.p, w.n, 7, BATCH_N);

    /* The batch's length as a padded (non-canonical) varint. */
    w.n = 0;
    w_bytes(&w, id7, sizeof id7);
    w_varint(&w, 9 << 3 | 2, 0);
    w_varint(&w, body.n, 2);
    w_bytes(&w, body.p, body.n);
    expect_batch(w.p, w.n, 7, BATCH_N);

    free(odd.p);
    free(body.p);
    free(w.p);
    assert_int_equal(rc_codec_live_messages(), live);
}

/* The batch field split in two occurrences: protobuf merges repeated
 * occurrences of a message field, so the entries of both are one batch, in
 * order (as a protobuf library that builds a batch in two steps may send).
 * protobuf-c's unpack keeps only the last occurrence of a oneof member, so
 * the codec merges them itself. A body field before them replaces them. */
static void test_batch_split(void **state)
{
    size_t live = rc_codec_live_messages();
    wire_t a = {0}, b = {0}, w = {0};
    w_batch_body(&a, 0, 3);
    w_batch_body(&b, 3, BATCH_N);
    w_bytes(&w, "\x08\x07", 2);
    w_len(&w, 9, &a, false);
    w_len(&w, 9, &b, false);
    /* What protobuf-c's own unpack makes of it, for the record. */
    Refcache__V1__Request *pb = refcache__v1__request__unpack(NULL, w.n, w.p);
    assert_non_null(pb);
    if (pb->batch->n_requests != BATCH_N)
        print_message("protobuf-c's unpack keeps %zu of the %d entries of a split batch\n",
                      pb->batch->n_requests, BATCH_N);
    refcache__v1__request__free_unpacked(pb, NULL);
    expect_batch(w.p, w.n, 7, BATCH_N);
    /* [b][a][status][a]: the status replaces the batch, the last occurrence
     * starts a new one: entries 0..2 only. */
    wire_t x = {0}, empty = {0};
    w_bytes(&x, "\x08\x07", 2);
    w_len(&x, 9, &b, false);
    w_len(&x, 9, &a, false);
    w_len(&x, 3, &empty, false);
    w_len(&x, 9, &a, false);
    expect_batch(x.p, x.n, 7, 3);
    free(x.p);
    free(a.p);
    free(b.p);
    free(w.p);
    assert_int_equal(rc_codec_live_messages(), live);
}

/* An empty batch, in the simple shape and in another: no entries. */
static void test_batch_empty(void **state)
{
    size_t live = rc_codec_live_messages();
    Refcache__V1__RequestBatch b = REFCACHE__V1__REQUEST_BATCH__INIT;
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    r.id = 9;
    r.body_case = REFCACHE__V1__REQUEST__BODY_BATCH;
    r.batch = &b;
    packed_t p = pack_request(&r);
    assert_int_equal(p.len, 4); /* 08 09 4a 00 */
    expect_batch(p.data, p.len, 9, 0);
    free(p.data);
    static const uint8_t odd[] = {0x4a, 0x00, 0x08, 0x09, 0x78, 0x01};
    expect_batch(odd, sizeof odd, 9, 0);
    assert_int_equal(rc_codec_live_messages(), live);
}

/* A batch in a batch decodes (the handler refuses it), as the entry of a
 * batch of either shape; a garbage entry is given as it is and fails to
 * decode alone. */
static void test_batch_nested_and_garbage(void **state)
{
    size_t live = rc_codec_live_messages();
    packed_t e0 = batch_entry(1);
    Refcache__V1__Request *inner0 = refcache__v1__request__unpack(NULL, e0.len, e0.data);
    assert_non_null(inner0);
    Refcache__V1__RequestBatch ib = REFCACHE__V1__REQUEST_BATCH__INIT;
    ib.requests = &inner0;
    ib.n_requests = 1;
    Refcache__V1__Request nested = REFCACHE__V1__REQUEST__INIT;
    nested.id = 55;
    nested.body_case = REFCACHE__V1__REQUEST__BODY_BATCH;
    nested.batch = &ib;
    packed_t pn = pack_request(&nested);

    for (int shape = 0; shape < 2; shape++) {
        /* [status, nested batch, garbage]; shape 1 has an unknown field in
         * the outer Request (protobuf-c reads it) and no garbage, which
         * protobuf-c would refuse whole. */
        wire_t body = {0}, w = {0};
        wire_t en = {pn.data, pn.len, pn.len};
        w_batch_body(&body, 1, 2);
        w_len(&body, 1, &en, false);
        static const uint8_t junk[] = {0xff, 0xff, 0xff};
        if (shape == 0) {
            wire_t ej = {(uint8_t *) junk, sizeof junk, sizeof junk};
            w_len(&body, 1, &ej, false);
        }
        w_bytes(&w, "\x08\x05", 2);
        w_len(&w, 9, &body, false);
        if (shape == 1)
            w_bytes(&w, "\x78\x01", 2);

        rc_request_t req, one;
        const char *why = NULL;
        rc_buf_t scratch = {0};
        rc_bytes_t entry;
        assert_int_equal(rc_codec_request(w.p, w.n, &req, &why), 0);
        assert_int_equal(req.kind, RC_REQ_BATCH);
        assert_true(req.id == 5);
        assert_true(rc_codec_request_next(&req, &scratch, &entry));
        check_batch_entry(entry, 1);
        assert_true(rc_codec_request_next(&req, &scratch, &entry));
        assert_same_bytes(entry.ptr, entry.len, pn.data, pn.len);
        assert_int_equal(rc_codec_request(entry.ptr, entry.len, &one, &why), 0);
        assert_int_equal(one.kind, RC_REQ_BATCH);
        assert_true(one.id == 55);
        rc_buf_t scratch2 = {0};
        rc_bytes_t inner;
        assert_true(rc_codec_request_next(&one, &scratch2, &inner));
        check_batch_entry(inner, 1);
        assert_false(rc_codec_request_next(&one, &scratch2, &inner));
        rc_codec_request_release(&one);
        rc_buf_free(&scratch2);
        if (shape == 0) {
            assert_true(rc_codec_request_next(&req, &scratch, &entry));
            assert_same_bytes(entry.ptr, entry.len, junk, sizeof junk);
            why = NULL;
            assert_int_equal(rc_codec_request(entry.ptr, entry.len, &one, &why), -1);
            assert_non_null(why);
            rc_codec_request_release(&one);
        }
        assert_false(rc_codec_request_next(&req, &scratch, &entry));
        rc_codec_request_release(&req);
        rc_buf_free(&scratch);
        free(body.p);
        free(w.p);
    }
    refcache__v1__request__free_unpacked(inner0, NULL);
    free(pn.data);
    free(e0.data);
    assert_int_equal(rc_codec_live_messages(), live);
}

/* ---------------------------------------------------------------- control */

static void test_control_hello(void **state)
{
    Refcache__V1__ControlHello h = REFCACHE__V1__CONTROL_HELLO__INIT;
    h.worker_id = "w-1";
    uint8_t out[64];
    size_t n = refcache__v1__control_hello__pack(&h, out);
    assert_int_equal(rc_codec_control_hello(out, n), 0);
    static const uint8_t junk[] = {0xff, 0xff};
    assert_int_equal(rc_codec_control_hello(junk, sizeof junk), -1);
}

static void test_cancel_notice(void **state)
{
    rc_buf_t buf = {0};
    static const int reasons[] = {REFCACHE__V1__CODE__CODE_CANCELLED,
                                  REFCACHE__V1__CODE__CODE_DEADLINE_EXCEEDED};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(rc_codec_cancel_notice(&buf, REF, (uint32_t) (i + 5), reasons[i]), 0);
        Refcache__V1__ControlMessage *m = refcache__v1__control_message__unpack(NULL, buf.len, buf.data);
        assert_non_null(m);
        assert_int_equal(m->body_case, REFCACHE__V1__CONTROL_MESSAGE__BODY_CANCEL);
        assert_string_equal(m->cancel->ref_id, REF);
        assert_int_equal(m->cancel->attempt, i + 5);
        assert_int_equal(m->cancel->reason, reasons[i]);
        refcache__v1__control_message__free_unpacked(m, NULL);
    }
    rc_buf_free(&buf);
}

static void test_broker_heartbeat_reannounce(void **state)
{
    rc_buf_t buf = {0};
    assert_int_equal(rc_codec_broker_heartbeat(&buf), 0);
    Refcache__V1__BrokerMessage *m = unpack_broker(buf.data, buf.len);
    assert_int_equal(m->body_case, REFCACHE__V1__BROKER_MESSAGE__BODY_HEARTBEAT);
    assert_non_null(m->heartbeat);
    refcache__v1__broker_message__free_unpacked(m, NULL);

    assert_int_equal(rc_codec_broker_reannounce(&buf), 0);
    m = unpack_broker(buf.data, buf.len);
    assert_int_equal(m->body_case, REFCACHE__V1__BROKER_MESSAGE__BODY_REANNOUNCE);
    assert_non_null(m->reannounce);
    refcache__v1__broker_message__free_unpacked(m, NULL);
    rc_buf_free(&buf);
}

static void test_buf(void **state)
{
    rc_buf_t buf = {0};
    assert_int_equal(rc_buf_reserve(&buf, 0), 0);
    assert_int_equal(rc_buf_reserve(&buf, 1), 0);
    assert_true(buf.cap >= 1);
    assert_int_equal(rc_buf_reserve(&buf, 1000), 0);
    assert_true(buf.cap >= 1000);
    memset(buf.data, 0xab, 1000);
    size_t cap = buf.cap;
    assert_int_equal(rc_buf_reserve(&buf, 10), 0);
    assert_int_equal(buf.cap, cap);
    rc_buf_free(&buf);
    assert_null(buf.data);
    assert_int_equal(buf.cap, 0);
    rc_buf_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_submit),
        cmocka_unit_test(test_request_submit_defaults),
        cmocka_unit_test(test_request_kinds),
        cmocka_unit_test(test_request_bad),
        cmocka_unit_test(test_dispatch_spec),
        cmocka_unit_test(test_reply_submit_and_task),
        cmocka_unit_test(test_reply_fetch_cancel_delete),
        cmocka_unit_test(test_reply_error),
        cmocka_unit_test(test_reply_stats),
        cmocka_unit_test(test_reply_bytes_tasks),
        cmocka_unit_test(test_reply_bytes_random),
        cmocka_unit_test(test_wmsg_ready),
        cmocka_unit_test(test_wmsg_task_messages),
        cmocka_unit_test(test_wmsg_result),
        cmocka_unit_test(test_wmsg_bad),
        cmocka_unit_test(test_dispatch_random),
        cmocka_unit_test(test_arena_many_in_a_row),
        cmocka_unit_test(test_arena_alive_together),
        cmocka_unit_test(test_arena_larger_than_arena),
        cmocka_unit_test(test_arena_malformed),
        cmocka_unit_test(test_fast_decode_as_protobuf),
        cmocka_unit_test(test_batch_simple),
        cmocka_unit_test(test_batch_unusual_shapes),
        cmocka_unit_test(test_batch_split),
        cmocka_unit_test(test_batch_empty),
        cmocka_unit_test(test_batch_nested_and_garbage),
        cmocka_unit_test(test_control_hello),
        cmocka_unit_test(test_cancel_notice),
        cmocka_unit_test(test_broker_heartbeat_reannounce),
        cmocka_unit_test(test_buf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
