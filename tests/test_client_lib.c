/* Unit tests of rc_client against a scripted fake broker (a ROUTER in an
 * actor thread): id matching, late replies, garbage, fetch_all, pipelining.
 * The real broker is exercised by test_e2e. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rc_common.h"
#include "refcache.h"

#include <czmq.h>
#include <string.h>

#define RESULT_SIZE 300001

static uint8_t s_result_byte(uint64_t i)
{
    return (uint8_t) (i * 131 + 17);
}

/* While the fake answers a RequestBatch, its replies are kept here and go
 * back as one ReplyBatch, as the broker's do. */
#define MAX_COLLECTED 1024
static Refcache__V1__Reply *s_collected[MAX_COLLECTED];
static size_t s_n_collected;
static bool s_collecting;
static uint64_t s_frames; /* request frames the fake has read */

static void s_send_reply(zsock_t *router, zframe_t *identity, Refcache__V1__Reply *reply)
{
    if (s_collecting) {
        assert_true(s_n_collected < MAX_COLLECTED);
        uint8_t buf[1 << 17];
        size_t len = refcache__v1__reply__pack(reply, buf);
        assert_true(len <= sizeof buf);
        s_collected[s_n_collected++] = refcache__v1__reply__unpack(NULL, len, buf);
        return;
    }
    size_t n = refcache__v1__reply__get_packed_size(reply);
    zframe_t *body = zframe_new(NULL, n);
    refcache__v1__reply__pack(reply, zframe_data(body));
    zframe_t *id = zframe_dup(identity);
    zframe_send(&id, router, ZFRAME_MORE);
    zframe_send(&body, router, 0);
}

/* Answers one request. "late" status requests are held back and answered
 * just before the reply to the next request, so that the client sees a
 * stale id first. "garbage" is preceded by a frame that is not a Reply. */
static void s_answer(zsock_t *router, zframe_t *identity, Refcache__V1__Request *req,
                     Refcache__V1__Reply **held)
{
    Refcache__V1__Reply reply = REFCACHE__V1__REPLY__INIT;
    Refcache__V1__TaskInfo task = REFCACHE__V1__TASK_INFO__INIT;
    Refcache__V1__FetchReply fetch = REFCACHE__V1__FETCH_REPLY__INIT;
    Refcache__V1__CancelReply cancel = REFCACHE__V1__CANCEL_REPLY__INIT;
    Refcache__V1__SubmitReply submit = REFCACHE__V1__SUBMIT_REPLY__INIT;
    Refcache__V1__StatsReply stats = REFCACHE__V1__STATS_REPLY__INIT;
    static uint8_t page[65536];
    reply.id = req->id;
    switch (req->body_case) {
    case REFCACHE__V1__REQUEST__BODY_STATUS: {
        const char *ref = req->status->ref_id;
        if (strcmp(ref, "missing") == 0) {
            reply.code = REFCACHE__V1__CODE__CODE_NOT_FOUND;
            reply.message = "no such task";
            break;
        }
        if (strcmp(ref, "garbage") == 0) {
            zframe_t *id = zframe_dup(identity);
            zframe_send(&id, router, ZFRAME_MORE);
            zstr_send(router, "\xff\xff\xff not a reply");
        }
        reply.body_case = REFCACHE__V1__REPLY__BODY_TASK;
        reply.task = &task;
        task.ref_id = (char *) ref;
        task.state = REFCACHE__V1__STATE__STATE_COMPLETE;
        task.result.data = (uint8_t *) "res";
        task.result.len = 3;
        task.result_size = 3;
        task.error = "";
        task.function = "echo";
        task.progress_done = req->id;
        if (strcmp(ref, "late") == 0 && !*held) {
            /* Keep an encoded copy to send later. */
            size_t n = refcache__v1__reply__get_packed_size(&reply);
            uint8_t *buf = malloc(n);
            refcache__v1__reply__pack(&reply, buf);
            *held = refcache__v1__reply__unpack(NULL, n, buf);
            free(buf);
            return;
        }
        break;
    }
    case REFCACHE__V1__REQUEST__BODY_SUBMIT:
        reply.body_case = REFCACHE__V1__REPLY__BODY_SUBMIT;
        reply.submit = &submit;
        submit.task = &task;
        submit.cache_hit = true;
        task.ref_id = "0123456789abcdef0123456789abcdef";
        task.state = REFCACHE__V1__STATE__STATE_COMPLETE;
        /* echo: the payload, plus the params as k=v in the message */
        task.result = req->submit->payload;
        task.result_size = req->submit->payload.len;
        task.function = req->submit->function;
        task.namespace_ = req->submit->namespace_;
        task.max_retries = req->submit->max_retries;
        task.progress_total = req->submit->n_params;
        task.attempt = req->submit->ttl_s;
        break;
    case REFCACHE__V1__REQUEST__BODY_FETCH: {
        uint64_t off = req->fetch->offset;
        if (off > RESULT_SIZE) {
            reply.code = REFCACHE__V1__CODE__CODE_OUT_OF_RANGE;
            break;
        }
        uint64_t n = req->fetch->length ? req->fetch->length : 50000;
        if (n > sizeof page)
            n = sizeof page;
        if (n > RESULT_SIZE - off)
            n = RESULT_SIZE - off;
        for (uint64_t i = 0; i < n; i++)
            page[i] = s_result_byte(off + i);
        reply.body_case = REFCACHE__V1__REPLY__BODY_FETCH;
        reply.fetch = &fetch;
        fetch.data.data = page;
        fetch.data.len = n;
        fetch.offset = off;
        fetch.total_size = RESULT_SIZE;
        break;
    }
    case REFCACHE__V1__REQUEST__BODY_CANCEL:
        reply.body_case = REFCACHE__V1__REPLY__BODY_CANCEL;
        reply.cancel = &cancel;
        cancel.cancelled = true;
        cancel.state = REFCACHE__V1__STATE__STATE_CANCELLED;
        break;
    case REFCACHE__V1__REQUEST__BODY_STATS:
        reply.body_case = REFCACHE__V1__REPLY__BODY_STATS;
        reply.stats = &stats;
        stats.requests_total = 42;
        stats.deadline_exceeded_total = 7;
        stats.version = "fake";
        stats.waiters = s_frames; /* (not a waiter count: the frames read, for the tests) */
        break;
    default:
        reply.code = REFCACHE__V1__CODE__CODE_UNIMPLEMENTED;
        break;
    }
    if (*held) {
        s_send_reply(router, identity, *held);
        refcache__v1__reply__free_unpacked(*held, NULL);
        *held = NULL;
    }
    s_send_reply(router, identity, &reply);
}

static void s_fake_broker(zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    zsock_set_sndhwm(router, 0);
    zsock_set_rcvhwm(router, 0);
    int port = zsock_bind(router, "tcp://127.0.0.1:*");
    assert_true(port > 0);
    zsock_signal(pipe, 0);
    zsock_send(pipe, "i", port);
    zpoller_t *poller = zpoller_new(pipe, router, NULL);
    Refcache__V1__Reply *held = NULL;
    for (;;) {
        void *which = zpoller_wait(poller, -1);
        if (which == pipe || !which)
            break;
        zmsg_t *msg = zmsg_recv(router);
        zframe_t *identity = zmsg_pop(msg);
        zframe_t *body = zmsg_pop(msg);
        Refcache__V1__Request *req =
            refcache__v1__request__unpack(NULL, zframe_size(body), zframe_data(body));
        s_frames++;
        if (req && req->body_case == REFCACHE__V1__REQUEST__BODY_BATCH) {
            s_collecting = true;
            for (size_t i = 0; i < req->batch->n_requests; i++)
                s_answer(router, identity, req->batch->requests[i], &held);
            s_collecting = false;
            Refcache__V1__ReplyBatch batch = REFCACHE__V1__REPLY_BATCH__INIT;
            Refcache__V1__Reply outer = REFCACHE__V1__REPLY__INIT;
            batch.replies = s_collected;
            batch.n_replies = s_n_collected;
            outer.body_case = REFCACHE__V1__REPLY__BODY_BATCH;
            outer.batch = &batch;
            s_send_reply(router, identity, &outer);
            for (size_t i = 0; i < s_n_collected; i++)
                refcache__v1__reply__free_unpacked(s_collected[i], NULL);
            s_n_collected = 0;
        } else if (req) {
            s_answer(router, identity, req, &held);
        }
        if (req)
            refcache__v1__request__free_unpacked(req, NULL);
        zframe_destroy(&identity);
        zframe_destroy(&body);
        zmsg_destroy(&msg);
    }
    if (held)
        refcache__v1__reply__free_unpacked(held, NULL);
    zpoller_destroy(&poller);
    zsock_destroy(&router);
}

typedef struct {
    zactor_t *fake;
    refcache_client_t *client;
    char endpoint[64];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->fake = zactor_new(s_fake_broker, NULL);
    int port = 0;
    zsock_recv(f->fake, "i", &port);
    snprintf(f->endpoint, sizeof f->endpoint, "tcp://127.0.0.1:%d", port);
    refcache_client_options_t opts;
    refcache_client_options_init(&opts);
    opts.endpoint = f->endpoint;
    char err[256];
    f->client = refcache_client_new(&opts, err, sizeof err);
    assert_non_null(f->client);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    refcache_client_destroy(&f->client);
    assert_null(f->client);
    zactor_destroy(&f->fake);
    free(f);
    return 0;
}

static void test_status_and_errors(void **state)
{
    fixture_t *f = *state;
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_status(f->client, "abc", &t, 2000), 0);
    assert_string_equal(t->info.ref_id, "abc");
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    assert_int_equal(t->info.result_len, 3);
    assert_memory_equal(t->info.result, "res", 3);
    assert_string_equal(t->info.function, "echo");
    refcache_task_destroy(&t);
    assert_null(t);

    /* An error reply carries no task: *task_p is NULL. */
    assert_int_equal(refcache_client_status(f->client, "missing", &t, 2000), REFCACHE_CODE_NOT_FOUND);
    assert_null(t);
    assert_string_equal(refcache_client_message(f->client), "no such task");
    assert_string_equal(refcache_strerror(REFCACHE_CODE_NOT_FOUND), "NOT_FOUND");

    /* Delete is unknown to the fake: UNIMPLEMENTED without a body. */
    bool found = true;
    assert_int_equal(refcache_client_delete(f->client, "abc", &found, 2000), REFCACHE_CODE_UNIMPLEMENTED);
    assert_false(found);

    char longref[100];
    memset(longref, 'a', sizeof longref - 1);
    longref[sizeof longref - 1] = '\0';
    assert_int_equal(refcache_client_status(f->client, longref, &t, 100), REFCACHE_EINVAL);
    assert_int_equal(refcache_client_status(f->client, NULL, &t, 100), REFCACHE_EINVAL);
    assert_null(t);
    /* A caller that wants only the code passes NULL. */
    assert_int_equal(refcache_client_status(f->client, "abc", NULL, 2000), 0);
}

static void test_late_reply_is_discarded(void **state)
{
    fixture_t *f = *state;
    refcache_task_t *t = NULL;
    /* The fake holds the reply to "late": the call times out... */
    assert_int_equal(refcache_client_status(f->client, "late", &t, 200), REFCACHE_ETIMEOUT);
    assert_string_equal(refcache_client_message(f->client), "");
    /* ...and the late reply, sent right before the next one, is not taken
     * for the next call's. */
    assert_int_equal(refcache_client_status(f->client, "next", &t, 2000), 0);
    assert_string_equal(t->info.ref_id, "next");
    assert_int_equal(refcache_client_discarded(f->client), 1);
    refcache_task_destroy(&t);

    /* A garbage frame before the reply is discarded too. */
    assert_int_equal(refcache_client_status(f->client, "garbage", &t, 2000), 0);
    assert_string_equal(t->info.ref_id, "garbage");
    assert_int_equal(refcache_client_discarded(f->client), 2);
    refcache_task_destroy(&t);
}

static void test_submit_options(void **state)
{
    fixture_t *f = *state;
    refcache_param_t params[20];
    char keys[20][8];
    for (int i = 0; i < 20; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        params[i].key = keys[i];
        params[i].value = "v";
    }
    refcache_submit_options_t opts;
    refcache_submit_options_init(&opts);
    opts.params = params;
    opts.param_count = 20; /* more than the on-stack entries */
    opts.payload = "pay\0load";
    opts.payload_len = 8;
    opts.namespace_name = "ns";
    opts.max_retries = 4;
    opts.ttl_s = 9;
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_submit(f->client, "echo", &opts, &t, 2000), 0);
    assert_true(t->info.cache_hit);
    assert_int_equal(t->info.result_len, 8);
    assert_memory_equal(t->info.result, "pay\0load", 8);
    assert_string_equal(t->info.namespace_name, "ns");
    assert_int_equal(t->info.max_retries, 4);
    assert_int_equal(t->info.progress_total, 20);
    assert_int_equal(t->info.attempt, 9);
    refcache_task_destroy(&t);
    assert_int_equal(refcache_client_submit(f->client, NULL, &opts, &t, 100), REFCACHE_EINVAL);
    refcache_task_destroy(&t);
}

static void test_fetch_all(void **state)
{
    fixture_t *f = *state;
    uint8_t *data;
    size_t len;
    assert_int_equal(refcache_client_fetch_all(f->client, "big", 0, &data, &len, 2000), 0);
    assert_int_equal(len, RESULT_SIZE);
    for (size_t i = 0; i < len; i++)
        if (data[i] != s_result_byte(i))
            fail_msg("byte %zu differs", i);
    free(data);
    assert_int_equal(refcache_client_fetch_all(f->client, "big", 7777, &data, &len, 2000), 0);
    assert_int_equal(len, RESULT_SIZE);
    free(data);

    refcache_page_t *page = NULL;
    assert_int_equal(refcache_client_fetch(f->client, "big", 100, 10, &page, 2000), 0);
    assert_int_equal(page->info.len, 10);
    assert_int_equal(page->info.offset, 100);
    assert_int_equal(page->info.total_size, RESULT_SIZE);
    assert_int_equal(page->info.data[0], s_result_byte(100));
    refcache_page_destroy(&page);
    assert_int_equal(refcache_client_fetch(f->client, "big", RESULT_SIZE + 1, 10, &page, 2000),
                     REFCACHE_CODE_OUT_OF_RANGE);
    refcache_page_destroy(&page);
}

static void test_cancel_stats(void **state)
{
    fixture_t *f = *state;
    bool cancelled = false;
    int st = 0;
    assert_int_equal(refcache_client_cancel(f->client, "x", &cancelled, &st, 2000), 0);
    assert_true(cancelled);
    assert_int_equal(st, REFCACHE_STATE_CANCELLED);
    refcache_stats_t s;
    assert_int_equal(refcache_client_stats(f->client, &s, 2000), 0);
    assert_int_equal(s.requests_total, 42);
    assert_int_equal(s.deadline_exceeded_total, 7);
    assert_string_equal(s.version, "fake");
}

static void test_pipelined(void **state)
{
    fixture_t *f = *state;
    enum { N = 5000 };
    static bool seen[N + 1000];
    memset(seen, 0, sizeof seen);
    uint64_t first = 0, id = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(refcache_client_send_status(f->client, "p", &id), 0);
        if (i == 0)
            first = id;
        else
            assert_int_equal(id, first + (uint64_t) i);
    }
    for (int i = 0; i < N; i++) {
        refcache_reply_t r;
        assert_int_equal(refcache_client_recv(f->client, &r, 5000), 0);
        assert_int_equal(r.code, 0);
        assert_int_equal(r.kind, REFCACHE_REPLY_TASK);
        assert_true(r.id >= first && r.id < first + N);
        assert_false(seen[r.id - first]);
        seen[r.id - first] = true;
        assert_int_equal(r.task.progress_done, r.id);
        assert_string_equal(r.task.ref_id, "p");
    }
    refcache_reply_t r;
    assert_int_equal(refcache_client_recv(f->client, &r, 50), REFCACHE_ETIMEOUT);
    /* Mixed kinds */
    uint64_t a, b, c;
    assert_int_equal(refcache_client_send_stats(f->client, &a), 0);
    assert_int_equal(refcache_client_send_cancel(f->client, "z", &b), 0);
    assert_int_equal(refcache_client_send_fetch(f->client, "big", 0, 5, &c), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(refcache_client_recv(f->client, &r, 5000), 0);
        if (r.id == a)
            assert_int_equal(r.kind, REFCACHE_REPLY_STATS);
        else if (r.id == b)
            assert_true(r.kind == REFCACHE_REPLY_CANCEL && r.cancelled);
        else if (r.id == c)
            assert_true(r.kind == REFCACHE_REPLY_FETCH && r.fetch.len == 5);
        else
            fail_msg("unexpected id %llu", (unsigned long long) r.id);
    }
}

/* Sends n Status requests on c, reads their n replies, and returns how
 * many frames the fake read meanwhile (the Stats call that asks is one). */
static uint64_t s_frames_for(refcache_client_t *c, int n)
{
    refcache_stats_t s0, s1;
    assert_int_equal(refcache_client_stats(c, &s0, 2000), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(refcache_client_send_status(c, "p", NULL), 0);
    for (int i = 0; i < n; i++) {
        refcache_reply_t r;
        assert_int_equal(refcache_client_recv(c, &r, 5000), 0);
        assert_int_equal(r.kind, REFCACHE_REPLY_TASK);
        assert_int_equal(r.task.progress_done, r.id);
    }
    assert_int_equal(refcache_client_stats(c, &s1, 2000), 0);
    return s1.waiters - s0.waiters - 1;
}

/* Pipelined requests go out max_batch to a frame (the rest when the client
 * reads), and the fake's ReplyBatches are read one reply at a time. */
static void test_batch_frames(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_frames_for(f->client, 130), 3); /* 64 + 64 + 2 */
    assert_int_equal(s_frames_for(f->client, 1), 1);
    refcache_client_options_t opts;
    refcache_client_options_init(&opts);
    opts.endpoint = f->endpoint;
    opts.max_batch = 1;
    char err[256];
    refcache_client_t *alone = refcache_client_new(&opts, err, sizeof err);
    assert_non_null(alone);
    assert_int_equal(s_frames_for(alone, 130), 130);
    refcache_client_destroy(&alone);
    opts.max_batch = 7;
    refcache_client_t *seven = refcache_client_new(&opts, err, sizeof err);
    assert_non_null(seven);
    assert_int_equal(s_frames_for(seven, 15), 3); /* 7 + 7 + 1 */
    /* Nothing goes before the batch is full or flushed. */
    assert_int_equal(refcache_client_send_status(seven, "p", NULL), 0);
    refcache_reply_t r;
    zclock_sleep(50);
    assert_int_equal(zsock_events(refcache_client_socket(seven)) & ZMQ_POLLIN, 0);
    assert_int_equal(refcache_client_flush(seven), 0);
    assert_int_equal(refcache_client_flush(seven), 0); /* nothing left: a no-op */
    assert_int_equal(refcache_client_recv(seven, &r, 5000), 0);
    assert_int_equal(r.kind, REFCACHE_REPLY_TASK);
    refcache_client_destroy(&seven);
}

static void test_no_broker_and_curve_errors(void **state)
{
    refcache_client_options_t opts;
    refcache_client_options_init(&opts);
    char err[256];
    opts.endpoint = "nonsense://x";
    assert_null(refcache_client_new(&opts, err, sizeof err));
    assert_non_null(strstr(err, "nonsense://x"));
    opts.endpoint = "tcp://127.0.0.1:1"; /* nothing listens: calls time out */
    refcache_client_t *c = refcache_client_new(&opts, err, sizeof err);
    assert_non_null(c);
    refcache_stats_t s;
    uint64_t t0 = rc_mono_us();
    assert_int_equal(refcache_client_stats(c, &s, 100), REFCACHE_ETIMEOUT);
    assert_true(rc_mono_us() - t0 >= 100000);
    refcache_client_destroy(&c);
    /* A full send queue (one message, nobody to take it): the request that
     * fills a batch and cannot send it is taken back; the rest stay queued. */
    opts.sndhwm = 1;
    opts.max_batch = 2;
    c = refcache_client_new(&opts, err, sizeof err);
    assert_non_null(c);
    uint64_t id = 0;
    assert_int_equal(refcache_client_send_status(c, "a", &id), 0);
    assert_int_equal(refcache_client_send_status(c, "b", &id), 0); /* the batch of two goes */
    assert_int_equal(id, 2);
    assert_int_equal(refcache_client_send_status(c, "c", &id), 0);
    id = 0;
    assert_int_equal(refcache_client_send_status(c, "d", &id), REFCACHE_EAGAIN);
    assert_int_equal(refcache_client_flush(c), REFCACHE_EAGAIN); /* "c" is still queued */
    refcache_reply_t r;
    assert_int_equal(refcache_client_recv(c, &r, 10), REFCACHE_EAGAIN);
    refcache_client_destroy(&c);
    opts.sndhwm = 0;
    opts.max_batch = 0;
    opts.curve_secret_file = "/nonexistent/cert";
    opts.broker_public_file = "/nonexistent/broker";
    assert_null(refcache_client_new(&opts, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/cert"));
    opts.broker_public_file = NULL;
    assert_null(refcache_client_new(&opts, err, sizeof err));
    refcache_client_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_reply_is_discarded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_frames, setup, teardown),
        cmocka_unit_test(test_no_broker_and_curve_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
