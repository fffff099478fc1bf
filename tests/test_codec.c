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
    assert_int_equal(rc_codec_dispatch_spec(&req, REF, &spec, &spec_len), 0);
    assert_non_null(spec);
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
    assert_string_equal(ti->ref_id, v->ref_hex);
    assert_int_equal(ti->state, v->state);
    assert_int_equal(ti->result.len, v->result.len);
    if (v->result.len)
        assert_memory_equal(ti->result.data, v->result.ptr, v->result.len);
    assert_true(ti->result_size == v->result_size);
    assert_int_equal(ti->result_truncated, v->result_truncated);
    assert_int_equal(ti->progress_done, v->progress_done);
    assert_int_equal(ti->progress_total, v->progress_total);
    assert_int_equal(ti->attempt, v->attempt);
    assert_int_equal(ti->max_retries, v->max_retries);
    assert_int_equal(ti->error_code, v->error_code);
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
    /* Every numeric field of StatsReply (1..30) is covered by the list. */
    assert_int_equal(fields, 30);
    assert_string_equal(m->stats->version, "0.1.0");
    refcache__v1__reply__free_unpacked(m, NULL);

    /* No version: "". Without stats: no body. */
    sv.version = NULL;
    m = encode_reply(&buf, &r);
    assert_string_equal(m->stats->version, "");
    refcache__v1__reply__free_unpacked(m, NULL);
    r.stats = NULL;
    m = encode_reply(&buf, &r);
    assert_int_equal(m->body_case, REFCACHE__V1__REPLY__BODY__NOT_SET);
    refcache__v1__reply__free_unpacked(m, NULL);
    rc_buf_free(&buf);
}

/* ---------------------------------------------------------------- workers */

static void decode_wmsg(const Refcache__V1__WorkerMessage *pm, rc_wmsg_t *msg)
{
    packed_t p = pack_wmsg(pm);
    const char *why = NULL;
    assert_int_equal(rc_codec_wmsg(p.data, p.len, msg, &why), 0);
    free(p.data);
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

static void test_wmsg_result_take(void **state)
{
    size_t len = 70000;
    uint8_t *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t) (i * 13);
    Refcache__V1__Result rs = REFCACHE__V1__RESULT__INIT;
    rs.ref_id = (char *) REF;
    rs.attempt = 1;
    rs.data.data = data;
    rs.data.len = len;
    Refcache__V1__WorkerMessage wm = REFCACHE__V1__WORKER_MESSAGE__INIT;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT;
    wm.result = &rs;

    /* Read in place, then released without taking. */
    rc_wmsg_t m;
    decode_wmsg(&wm, &m);
    assert_int_equal(m.kind, RC_WMSG_RESULT);
    assert_str(m.ref_id, REF);
    assert_int_equal(m.attempt, 1);
    assert_bytes(m.data, data, len);
    rc_codec_wmsg_release(&m);

    /* Taken: the caller owns the bytes, the release must not free them
     * (valgrind and ASan see a double free or a leak). */
    decode_wmsg(&wm, &m);
    size_t got_len = 0;
    uint8_t *got = rc_codec_wmsg_take_data(&m, &got_len);
    assert_non_null(got);
    assert_int_equal(got_len, len);
    assert_int_equal(m.data.len, 0);
    assert_null(m.data.ptr);
    rc_codec_wmsg_release(&m);
    assert_memory_equal(got, data, len); /* still ours after the release */
    free(got);

    /* An empty result. */
    rs.data.data = NULL;
    rs.data.len = 0;
    decode_wmsg(&wm, &m);
    got_len = 99;
    got = rc_codec_wmsg_take_data(&m, &got_len);
    assert_int_equal(got_len, 0);
    free(got);
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
        cmocka_unit_test(test_wmsg_ready),
        cmocka_unit_test(test_wmsg_task_messages),
        cmocka_unit_test(test_wmsg_result_take),
        cmocka_unit_test(test_wmsg_bad),
        cmocka_unit_test(test_control_hello),
        cmocka_unit_test(test_cancel_notice),
        cmocka_unit_test(test_broker_heartbeat_reannounce),
        cmocka_unit_test(test_buf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
