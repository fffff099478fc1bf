/* The worker side of the protocol (docs/protocol.md, "Workers"), checked
 * against two real ROUTER sockets that the test binds itself on ephemeral
 * loopback ports and drives by hand, as a broker would. Every wait polls
 * with a timeout; nothing sleeps a fixed time. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "rc_board.h"
#include "rc_builtins.h"
#include "rc_common.h"
#include "rc_pool.h"
#include "rc_valgrind.h"
#include "rc_wthread.h"
#include "refcache_worker.h"

typedef Refcache__V1__WorkerMessage worker_msg_t;

#define HB_MS 100
/* Generous: the tests also run under valgrind. */
#define WAIT_MS 5000

typedef struct {
    zsock_t *work;    /* the broker's work ROUTER */
    zsock_t *control; /* the broker's control ROUTER */
    refcache_pool_t *pool;
    char wid[128];         /* the worker's routing id, from its last Ready */
    char control_wid[128]; /* the routing id of its last ControlHello */
    bool send_hb;          /* act as a live broker: heartbeat the worker */
    uint64_t last_hb_us;
    int heartbeats; /* worker heartbeats seen */
    int progress;   /* progress messages seen */
    int hellos;     /* ControlHello messages seen */
    char curve_dir[64];
    worker_msg_t *lookahead; /* a message expect() saw early and kept */
    /* The Results of a ResultBatch not yet returned, one message each. */
    worker_msg_t *batched[64];
    size_t batched_n, batched_next;
    int result_batches;          /* ResultBatches seen */
    rc_board_registry_t *boards; /* cancel boards for the pool, as a broker's; NULL: none */
} fx_t;

static uint64_t ms_since(uint64_t start_us)
{
    return (rc_mono_us() - start_us) / 1000;
}

static void router_send(fx_t *f, zsock_t *router, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    protobuf_c_message_pack(m, buf);
    void *h = zsock_resolve(router);
    assert_int_equal(zmq_send(h, f->wid, strlen(f->wid), ZMQ_SNDMORE), (int) strlen(f->wid));
    assert_int_equal(zmq_send(h, buf, len, 0), (int) len);
    free(buf);
}

static void send_broker(fx_t *f, Refcache__V1__BrokerMessage *bm)
{
    router_send(f, f->work, &bm->base);
}

static void send_heartbeat(fx_t *f)
{
    Refcache__V1__Heartbeat hb = REFCACHE__V1__HEARTBEAT__INIT;
    Refcache__V1__BrokerMessage bm = REFCACHE__V1__BROKER_MESSAGE__INIT;
    bm.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_HEARTBEAT;
    bm.heartbeat = &hb;
    send_broker(f, &bm);
}

static void send_reannounce(fx_t *f)
{
    Refcache__V1__Reannounce re = REFCACHE__V1__REANNOUNCE__INIT;
    Refcache__V1__BrokerMessage bm = REFCACHE__V1__BROKER_MESSAGE__INIT;
    bm.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_REANNOUNCE;
    bm.reannounce = &re;
    send_broker(f, &bm);
}

/* Sends a Dispatch; params is a NULL-terminated list of key, value. */
static void send_dispatch(fx_t *f, const char *ref_id, uint32_t attempt, const char *function,
                          const char *payload, const char *const *params)
{
    Refcache__V1__Dispatch__ParamsEntry entries[8];
    Refcache__V1__Dispatch__ParamsEntry *ptrs[8];
    size_t n = 0;
    for (; params && params[2 * n]; n++) {
        assert_true(n < 8);
        Refcache__V1__Dispatch__ParamsEntry e = REFCACHE__V1__DISPATCH__PARAMS_ENTRY__INIT;
        e.key = (char *) params[2 * n];
        e.value = (char *) params[2 * n + 1];
        entries[n] = e;
        ptrs[n] = &entries[n];
    }
    Refcache__V1__Dispatch d = REFCACHE__V1__DISPATCH__INIT;
    d.ref_id = (char *) ref_id;
    d.attempt = attempt;
    d.function = (char *) function;
    d.n_params = n;
    d.params = ptrs;
    d.payload.data = (uint8_t *) payload;
    d.payload.len = payload ? strlen(payload) : 0;
    Refcache__V1__BrokerMessage bm = REFCACHE__V1__BROKER_MESSAGE__INIT;
    bm.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCH;
    bm.dispatch = &d;
    send_broker(f, &bm);
}

/* Sends n echo Dispatches (attempt 1, payload = ref) in one DispatchBatch;
 * the first is a sleep of sleep_ms instead if sleep_ms is set. */
static void send_batch(fx_t *f, const char *const *refs, size_t n, const char *sleep_ms)
{
    Refcache__V1__Dispatch d[16], *dp[16];
    Refcache__V1__Dispatch__ParamsEntry ms = REFCACHE__V1__DISPATCH__PARAMS_ENTRY__INIT, *msp[1] = {&ms};
    ms.key = "ms";
    ms.value = (char *) sleep_ms;
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        refcache__v1__dispatch__init(&d[i]);
        d[i].ref_id = (char *) refs[i];
        d[i].attempt = 1;
        d[i].function = i == 0 && sleep_ms ? "sleep" : "echo";
        if (i == 0 && sleep_ms) {
            d[i].params = msp;
            d[i].n_params = 1;
        }
        d[i].payload.data = (uint8_t *) refs[i];
        d[i].payload.len = strlen(refs[i]);
        dp[i] = &d[i];
    }
    Refcache__V1__DispatchBatch b = REFCACHE__V1__DISPATCH_BATCH__INIT;
    b.dispatches = dp;
    b.n_dispatches = n;
    Refcache__V1__BrokerMessage bm = REFCACHE__V1__BROKER_MESSAGE__INIT;
    bm.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCHES;
    bm.dispatches = &b;
    send_broker(f, &bm);
}

static void send_cancel(fx_t *f, const char *ref_id, uint32_t attempt)
{
    Refcache__V1__CancelNotice n = REFCACHE__V1__CANCEL_NOTICE__INIT;
    n.ref_id = (char *) ref_id;
    n.attempt = attempt;
    n.reason = REFCACHE__V1__CODE__CODE_CANCELLED;
    Refcache__V1__ControlMessage cm = REFCACHE__V1__CONTROL_MESSAGE__INIT;
    cm.body_case = REFCACHE__V1__CONTROL_MESSAGE__BODY_CANCEL;
    cm.cancel = &n;
    router_send(f, f->control, &cm.base);
}

/* Reads [routing id, body] from a router; the id goes to id_out. Returns
 * the body as a zframe the caller destroys. */
static zframe_t *router_recv(zsock_t *router, char *id_out, size_t id_len)
{
    zmsg_t *msg = zmsg_recv(router);
    assert_non_null(msg);
    assert_int_equal(zmsg_size(msg), 2);
    char *id = zmsg_popstr(msg);
    snprintf(id_out, id_len, "%s", id);
    free(id);
    zframe_t *body = zmsg_pop(msg);
    zmsg_destroy(&msg);
    return body;
}

/* Waits up to timeout_ms for the next work-channel message that is not a
 * Heartbeat or Progress (those are counted), heartbeating the worker
 * meanwhile if f->send_hb. A Ready (re)sets the worker id, which every
 * other message must carry as its routing id; ControlHellos are counted and
 * their id kept for wait_hellos. NULL on timeout. */
static worker_msg_t *next_work(fx_t *f, int timeout_ms)
{
    if (f->lookahead) {
        worker_msg_t *kept = f->lookahead;
        f->lookahead = NULL;
        return kept;
    }
    if (f->batched_next < f->batched_n)
        return f->batched[f->batched_next++];
    uint64_t start = rc_mono_us();
    char id[128];
    while (true) {
        uint64_t now = rc_mono_us();
        if (f->send_hb && f->wid[0] && now - f->last_hb_us >= HB_MS * 1000 / 2) {
            send_heartbeat(f);
            f->last_hb_us = now;
        }
        long left = (long) timeout_ms - (long) ms_since(start);
        if (left <= 0)
            return NULL;
        zmq_pollitem_t items[2] = {
            {zsock_resolve(f->work), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(f->control), 0, ZMQ_POLLIN, 0},
        };
        zmq_poll(items, 2, left < HB_MS / 4 ? left : HB_MS / 4);
        if (items[1].revents & ZMQ_POLLIN) {
            zframe_t *body = router_recv(f->control, id, sizeof id);
            Refcache__V1__ControlHello *hello =
                refcache__v1__control_hello__unpack(NULL, zframe_size(body), zframe_data(body));
            assert_non_null(hello);
            assert_string_equal(hello->worker_id, id);
            snprintf(f->control_wid, sizeof f->control_wid, "%s", id);
            f->hellos++;
            refcache__v1__control_hello__free_unpacked(hello, NULL);
            zframe_destroy(&body);
        }
        if (items[0].revents & ZMQ_POLLIN) {
            zframe_t *body = router_recv(f->work, id, sizeof id);
            worker_msg_t *wm =
                refcache__v1__worker_message__unpack(NULL, zframe_size(body), zframe_data(body));
            zframe_destroy(&body);
            assert_non_null(wm);
            if (wm->body_case == REFCACHE__V1__WORKER_MESSAGE__BODY_READY) {
                assert_string_equal(wm->ready->worker_id, id);
                snprintf(f->wid, sizeof f->wid, "%s", id);
            }
            assert_string_equal(id, f->wid);
            if (wm->body_case == REFCACHE__V1__WORKER_MESSAGE__BODY_RESULTS) {
                /* Each Result of a batch as if it had come alone. */
                Refcache__V1__ResultBatch *b = wm->results;
                assert_true(b->n_results >= 2 && b->n_results <= 64);
                f->result_batches++;
                f->batched_n = f->batched_next = 0;
                for (size_t i = 0; i < b->n_results; i++) {
                    worker_msg_t one = REFCACHE__V1__WORKER_MESSAGE__INIT;
                    one.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT;
                    one.result = b->results[i];
                    size_t n = refcache__v1__worker_message__get_packed_size(&one);
                    uint8_t *buf = malloc(n);
                    assert_non_null(buf);
                    refcache__v1__worker_message__pack(&one, buf);
                    f->batched[f->batched_n++] = refcache__v1__worker_message__unpack(NULL, n, buf);
                    free(buf);
                }
                refcache__v1__worker_message__free_unpacked(wm, NULL);
                return f->batched[f->batched_next++];
            }
            if (wm->body_case == REFCACHE__V1__WORKER_MESSAGE__BODY_HEARTBEAT)
                f->heartbeats++;
            else if (wm->body_case == REFCACHE__V1__WORKER_MESSAGE__BODY_PROGRESS)
                f->progress++;
            else
                return wm;
            refcache__v1__worker_message__free_unpacked(wm, NULL);
        }
    }
}

/* The next message must be of body case `body` for (ref_id, attempt). */
static worker_msg_t *expect(fx_t *f, int body, const char *ref_id, uint32_t attempt)
{
    worker_msg_t *wm = next_work(f, WAIT_MS);
    assert_non_null(wm);
    if (body == REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED &&
        (wm->body_case == REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT ||
         wm->body_case == REFCACHE__V1__WORKER_MESSAGE__BODY_FAILURE)) {
        /* A job that ends before its first step boundary sends no Started:
         * its Result or Failure says it ran. Keep that message for the next
         * expect() and stand in a Started for this one. */
        const char *r = wm->body_case == REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT ? wm->result->ref_id
                                                                                   : wm->failure->ref_id;
        uint32_t a = wm->body_case == REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT ? wm->result->attempt
                                                                                : wm->failure->attempt;
        if (ref_id) {
            assert_string_equal(r, ref_id);
            assert_int_equal(a, attempt);
        }
        assert_null(f->lookahead);
        f->lookahead = wm;
        Refcache__V1__Started st = REFCACHE__V1__STARTED__INIT;
        st.ref_id = (char *) r;
        st.attempt = a;
        worker_msg_t stand_in = REFCACHE__V1__WORKER_MESSAGE__INIT;
        stand_in.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED;
        stand_in.started = &st;
        uint8_t buf[256];
        size_t n = refcache__v1__worker_message__pack(&stand_in, buf);
        return refcache__v1__worker_message__unpack(NULL, n, buf);
    }
    if ((int) wm->body_case != body)
        fail_msg("expected body %d, got %d", body, (int) wm->body_case);
    const char *got_ref = NULL;
    uint32_t got_attempt = 0;
    switch (wm->body_case) {
    case REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED:
        got_ref = wm->started->ref_id;
        got_attempt = wm->started->attempt;
        break;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT:
        got_ref = wm->result->ref_id;
        got_attempt = wm->result->attempt;
        break;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_FAILURE:
        got_ref = wm->failure->ref_id;
        got_attempt = wm->failure->attempt;
        break;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK:
        got_ref = wm->cancel_ack->ref_id;
        got_attempt = wm->cancel_ack->attempt;
        break;
    default:
        break;
    }
    if (ref_id) {
        assert_non_null(got_ref);
        assert_string_equal(got_ref, ref_id);
        assert_int_equal(got_attempt, attempt);
    }
    return wm;
}

static void expect_ready(fx_t *f, int credit)
{
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_READY, NULL, 0);
    Refcache__V1__Ready *r = wm->ready;
    assert_string_equal(r->worker_id, f->wid);
    assert_int_equal(r->credit, credit);
    assert_int_equal(r->max_batch, credit < 64 ? credit : 64);
    assert_int_equal(r->heartbeat_ms, HB_MS);
    const char *names[] = {"echo", "sleep", "primes", "spin", "fail"};
    assert_int_equal(r->n_functions, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(r->functions[i], names[i]);
    const char *cacheable[] = {"echo", "primes", "spin"};
    assert_int_equal(r->n_cacheable, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(r->cacheable[i], cacheable[i]);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
}

/* Waits until the worker's ControlHello count reaches n. */
static void wait_hellos(fx_t *f, int n)
{
    uint64_t start = rc_mono_us();
    while (f->hellos < n && ms_since(start) < WAIT_MS) {
        worker_msg_t *wm = next_work(f, 50);
        if (wm)
            fail_msg("unexpected work message %d", (int) wm->body_case);
    }
    assert_int_equal(f->hellos, n);
    /* Both channels carry the same routing id. */
    assert_string_equal(f->control_wid, f->wid);
}

static zsock_t *bind_router(const char *where, char *endpoint, size_t len)
{
    zsock_t *r = zsock_new(ZMQ_ROUTER);
    assert_non_null(r);
    zsock_set_linger(r, 0);
    zsock_set_router_mandatory(r, 1);
    assert_true(zsock_bind(r, "%s", where) >= 0);
    snprintf(endpoint, len, "%s", zsock_endpoint(r));
    return r;
}

/* A fixture with the two ROUTERs bound at work_at and control_at. */
static fx_t *fixture_bind(const char *work_at, const char *control_at)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->send_hb = true;
    char work_ep[128], control_ep[128];
    f->work = bind_router(work_at, work_ep, sizeof work_ep);
    f->control = bind_router(control_at, control_ep, sizeof control_ep);
    return f;
}

static fx_t *fixture_new(void)
{
    return fixture_bind("tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
}

static void pool_start(fx_t *f, int credit, int liveness, const char *secret, const char *broker_public,
                       const refcache_function_t *fns, size_t n, size_t max_result)
{
    refcache_pool_config_t cfg = {0};
    char work_ep[128], control_ep[128];
    snprintf(work_ep, sizeof work_ep, "%s", zsock_endpoint(f->work));
    snprintf(control_ep, sizeof control_ep, "%s", zsock_endpoint(f->control));
    cfg.work_endpoint = work_ep;
    cfg.control_endpoint = control_ep;
    cfg.threads = 1;
    cfg.credit = credit;
    cfg.heartbeat_ms = HB_MS;
    cfg.liveness = liveness;
    cfg.curve_secret_file = secret;
    cfg.broker_public_file = broker_public;
    cfg.functions = fns;
    cfg.function_count = n;
    cfg.max_result_bytes = max_result;
    char err[256];
    f->pool =
        f->boards ? rc_pool_new(&cfg, f->boards, err, sizeof err) : refcache_pool_new(&cfg, err, sizeof err);
    if (!f->pool)
        fail_msg("refcache_pool_new: %s", err);
}

static void fixture_start(fx_t *f, int credit, int liveness, const char *secret, const char *broker_public)
{
    pool_start(f, credit, liveness, secret, broker_public, NULL, 0, 0);
    /* The ControlHello and the Ready travel on different connections and may
     * arrive in either order; both carry the same routing id. */
    expect_ready(f, credit);
    wait_hellos(f, 1);
}

static void fixture_destroy(fx_t **f_p)
{
    fx_t *f = *f_p;
    if (f->lookahead)
        refcache__v1__worker_message__free_unpacked(f->lookahead, NULL);
    while (f->batched_next < f->batched_n)
        refcache__v1__worker_message__free_unpacked(f->batched[f->batched_next++], NULL);
    refcache_pool_destroy(&f->pool);
    assert_null(f->pool);
    rc_board_registry_destroy(&f->boards); /* after the pool, as the broker does */
    zsock_destroy(&f->work);
    zsock_destroy(&f->control);
    free(f);
    *f_p = NULL;
}

static int setup(void **state)
{
    fx_t *f = fixture_new();
    fixture_start(f, 2, 10, NULL, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    fixture_destroy(&f);
    return 0;
}

/* ------------------------------------------------------------ tests */

static void test_announce(void **state)
{
    fx_t *f = *state;
    /* setup checked Ready and ControlHello; the id looks like prefix-N. */
    assert_true(strlen(f->wid) > 2);
    assert_non_null(strchr(f->wid, '-'));
}

static void test_echo(void **state)
{
    fx_t *f = *state;
    send_dispatch(f, "r-echo", 1, "echo", "hello, worker", NULL);
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "r-echo", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT, "r-echo", 1);
    assert_int_equal(wm->result->data.len, strlen("hello, worker"));
    assert_memory_equal(wm->result->data.data, "hello, worker", wm->result->data.len);
    refcache__v1__worker_message__free_unpacked(wm, NULL);

    /* An empty payload echoes an empty result; many in a row all complete. */
    for (int i = 0; i < 50; i++) {
        char ref[16];
        snprintf(ref, sizeof ref, "e%d", i);
        send_dispatch(f, ref, 2, "echo", i % 2 ? "x" : NULL, NULL);
        wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, ref, 2);
        refcache__v1__worker_message__free_unpacked(wm, NULL);
        wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT, ref, 2);
        assert_int_equal(wm->result->data.len, i % 2);
        refcache__v1__worker_message__free_unpacked(wm, NULL);
    }
    /* A payload larger than the worker's receive arena. */
    size_t big_len = 200 * 1024;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char) ('a' + i % 26);
    big[big_len] = '\0';
    send_dispatch(f, "e-big", 1, "echo", big, NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "e-big", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT, "e-big", 1);
    assert_int_equal(wm->result->data.len, big_len);
    assert_memory_equal(wm->result->data.data, big, big_len);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    free(big);

    uint64_t start = rc_mono_us();
    while (refcache_pool_tasks_done(f->pool) < 52 && ms_since(start) < WAIT_MS)
        zclock_sleep(1);
    assert_int_equal(refcache_pool_tasks_done(f->pool), 52);
}

static void test_sleep_cancel(void **state)
{
    fx_t *f = *state;
    const char *params[] = {"ms", "20000", "step_ms", "10", NULL};
    send_dispatch(f, "r-sleep", 1, "sleep", NULL, params);
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "r-sleep", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);

    /* Let it report some progress first. */
    uint64_t start = rc_mono_us();
    while (f->progress < 2 && ms_since(start) < WAIT_MS)
        assert_null(next_work(f, 20));
    assert_true(f->progress >= 2);

    /* A notice for another task or attempt is ignored. */
    send_cancel(f, "r-sleep", 2);
    send_cancel(f, "r-other", 1);
    start = rc_mono_us();
    send_cancel(f, "r-sleep", 1);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK, "r-sleep", 1);
    uint64_t took = ms_since(start);
    assert_true(wm->cancel_ack->started);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    /* The sleep waits on the control socket, so it stops well within a
     * step; the bound is loose for valgrind. */
    assert_true(took < 1000);

    /* The worker is free again, and no Result for the cancelled task ever
     * came: the next message is the echo's Started. */
    send_dispatch(f, "r-after", 1, "echo", "x", NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "r-after", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT, "r-after", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
}

static void test_spin_cancel(void **state)
{
    fx_t *f = *state;
    const char *params[] = {"iterations", "1000000000000", "step", "10000", NULL};
    send_dispatch(f, "r-spin", 3, "spin", "seed", params);
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "r-spin", 3);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    send_cancel(f, "r-spin", 3);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK, "r-spin", 3);
    assert_true(wm->cancel_ack->started);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
}

static void test_held_cancel(void **state)
{
    fx_t *f = *state;
    const char *params[] = {"ms", "20000", NULL};
    send_dispatch(f, "r-a", 1, "sleep", NULL, params);
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "r-a", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);

    /* B is held behind A (credit 2); cancelled while held, it never starts. */
    send_dispatch(f, "r-b", 1, "echo", "b", NULL);
    send_cancel(f, "r-b", 1);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK, "r-b", 1);
    assert_false(wm->cancel_ack->started);
    refcache__v1__worker_message__free_unpacked(wm, NULL);

    /* A notice that overtakes its dispatch (they travel on different
     * connections) still keeps the task from running. */
    send_cancel(f, "r-c", 4);
    wm = next_work(f, 200);
    assert_null(wm);
    send_dispatch(f, "r-c", 4, "echo", "c", NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK, "r-c", 4);
    assert_false(wm->cancel_ack->started);
    refcache__v1__worker_message__free_unpacked(wm, NULL);

    /* Now stop A; the next message is its ack, and a fresh task runs next:
     * had B or C run, their Started would come first. */
    send_cancel(f, "r-a", 1);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK, "r-a", 1);
    assert_true(wm->cancel_ack->started);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    send_dispatch(f, "r-d", 1, "echo", "d", NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "r-d", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT, "r-d", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
}

static void test_held_runs_in_order(void **state)
{
    fx_t *f = *state;
    const char *params[] = {"ms", "50", NULL};
    send_dispatch(f, "r-1", 1, "sleep", NULL, params);
    send_dispatch(f, "r-2", 1, "echo", "two", NULL);
    const char *want[][2] = {{"r-1", "S"}, {"r-1", "R"}, {"r-2", "S"}, {"r-2", "R"}};
    for (size_t i = 0; i < 4; i++) {
        int body = want[i][1][0] == 'S' ? REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED
                                        : REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT;
        worker_msg_t *wm = expect(f, body, want[i][0], 1);
        if (i == 1)
            assert_memory_equal(wm->result->data.data, "slept 50 ms", 11);
        refcache__v1__worker_message__free_unpacked(wm, NULL);
    }
}

static void test_reannounce(void **state)
{
    fx_t *f = *state;
    /* Held tasks are dropped without an ack when the broker forgets us. */
    const char *params[] = {"ms", "300", NULL};
    send_dispatch(f, "r-x", 1, "sleep", NULL, params);
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "r-x", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    send_dispatch(f, "r-y", 1, "echo", "y", NULL);
    send_reannounce(f);
    expect_ready(f, 2);
    wait_hellos(f, 2);
    /* The broker has already retried or failed both: the running job stops
     * and nothing is said of it (no Result, no CancelAck), and the held one
     * never starts. */
    assert_null(next_work(f, 500));
    /* The worker is free for new work at once. */
    send_dispatch(f, "r-z", 1, "echo", "z", NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "r-z", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT, "r-z", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
}

static void test_heartbeats(void **state)
{
    fx_t *f = *state;
    int before = f->heartbeats;
    uint64_t start = rc_mono_us();
    while (f->heartbeats < before + 3 && ms_since(start) < WAIT_MS)
        assert_null(next_work(f, 50));
    assert_true(f->heartbeats >= before + 3);

    /* Also while a job runs without progress (a long sleep step). */
    const char *params[] = {"ms", "20000", "step_ms", "10000", NULL};
    send_dispatch(f, "r-hb", 1, "sleep", NULL, params);
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "r-hb", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    before = f->heartbeats;
    start = rc_mono_us();
    while (f->heartbeats < before + 3 && ms_since(start) < WAIT_MS)
        assert_null(next_work(f, 50));
    assert_true(f->heartbeats >= before + 3);
    send_cancel(f, "r-hb", 1);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK, "r-hb", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
}

static void expect_failure(fx_t *f, const char *ref, int code, bool retryable, const char *message)
{
    worker_msg_t *wm = next_work(f, WAIT_MS);
    assert_non_null(wm);
    if (wm->body_case == REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED) {
        assert_string_equal(wm->started->ref_id, ref);
        refcache__v1__worker_message__free_unpacked(wm, NULL);
        wm = next_work(f, WAIT_MS);
        assert_non_null(wm);
    }
    assert_int_equal(wm->body_case, REFCACHE__V1__WORKER_MESSAGE__BODY_FAILURE);
    assert_string_equal(wm->failure->ref_id, ref);
    assert_int_equal(wm->failure->code, code);
    assert_int_equal(wm->failure->retryable, retryable);
    if (message && !strstr(wm->failure->message, message))
        fail_msg("message \"%s\" lacks \"%s\"", wm->failure->message, message);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
}

static void test_failures(void **state)
{
    fx_t *f = *state;
    send_dispatch(f, "f-1", 1, "nosuch", NULL, NULL);
    expect_failure(f, "f-1", REFCACHE__V1__CODE__CODE_UNIMPLEMENTED, false, "nosuch");

    const char *p2[] = {"message", "boom", "retryable", "1", NULL};
    send_dispatch(f, "f-2", 1, "fail", NULL, p2);
    expect_failure(f, "f-2", REFCACHE__V1__CODE__CODE_UNKNOWN, true, "boom");

    send_dispatch(f, "f-3", 1, "fail", NULL, NULL);
    expect_failure(f, "f-3", REFCACHE__V1__CODE__CODE_UNKNOWN, false, "failed on purpose");

    const char *p4[] = {"ms", "soon", NULL};
    send_dispatch(f, "f-4", 1, "sleep", NULL, p4);
    expect_failure(f, "f-4", REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT, false, "ms");

    send_dispatch(f, "f-5", 1, "primes", NULL, NULL);
    expect_failure(f, "f-5", REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT, false, "n of primes is required");

    const char *p6[] = {"n", "1", NULL};
    send_dispatch(f, "f-6", 1, "primes", NULL, p6);
    expect_failure(f, "f-6", REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT, false, "n");

    const char *p7[] = {"step", "0", NULL};
    send_dispatch(f, "f-7", 1, "spin", NULL, p7);
    expect_failure(f, "f-7", REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT, false, "step");

    const char *p8[] = {"retryable", "maybe", NULL};
    send_dispatch(f, "f-8", 1, "fail", NULL, p8);
    expect_failure(f, "f-8", REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT, false, "retryable");
}

static void test_primes_and_spin(void **state)
{
    fx_t *f = *state;
    const char *p1[] = {"n", "30", NULL};
    send_dispatch(f, "p-1", 1, "primes", NULL, p1);
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "p-1", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT, "p-1", 1);
    const char *want = "2\n3\n5\n7\n11\n13\n17\n19\n23\n29\n";
    assert_int_equal(wm->result->data.len, strlen(want));
    assert_memory_equal(wm->result->data.data, want, strlen(want));
    refcache__v1__worker_message__free_unpacked(wm, NULL);

    const char *p2[] = {"iterations", "12345", "step", "100", NULL};
    send_dispatch(f, "s-1", 1, "spin", "abc", p2);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "s-1", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT, "s-1", 1);
    rc_spin_t spin;
    char hex[65];
    rc_spin_seed(&spin, "abc", 3);
    rc_spin_run(&spin, 0, 12345);
    rc_spin_hex(&spin, hex);
    assert_int_equal(wm->result->data.len, 64);
    assert_memory_equal(wm->result->data.data, hex, 64);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
}

static void test_garbage_ignored(void **state)
{
    fx_t *f = *state;
    /* Bytes that are not a BrokerMessage, an empty frame and a three-frame
     * message: the worker survives and keeps working. */
    void *h = zsock_resolve(f->work);
    zmq_send(h, f->wid, strlen(f->wid), ZMQ_SNDMORE);
    zmq_send(h, "\xff\xff\xff", 3, 0);
    zmq_send(h, f->wid, strlen(f->wid), ZMQ_SNDMORE);
    zmq_send(h, "", 0, 0);
    zmq_send(h, f->wid, strlen(f->wid), ZMQ_SNDMORE);
    zmq_send(h, "a", 1, ZMQ_SNDMORE);
    zmq_send(h, "b", 1, 0);
    void *c = zsock_resolve(f->control);
    zmq_send(c, f->wid, strlen(f->wid), ZMQ_SNDMORE);
    zmq_send(c, "\x0a\xff", 2, 0);
    send_dispatch(f, "", 1, "echo", "no ref", NULL);
    send_dispatch(f, "g-1", 1, "echo", "ok", NULL);
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "g-1", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT, "g-1", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
}

static void test_over_credit(void **state)
{
    fx_t *f = *state;
    /* A broker that ignores the credit gets the extra task back as a
     * retryable RESOURCE_EXHAUSTED instead of an unbounded queue. */
    const char *params[] = {"ms", "20000", NULL};
    send_dispatch(f, "o-1", 1, "sleep", NULL, params);
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "o-1", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    send_dispatch(f, "o-2", 1, "echo", NULL, NULL);
    send_dispatch(f, "o-3", 1, "echo", NULL, NULL);
    send_dispatch(f, "o-4", 1, "echo", NULL, NULL);
    expect_failure(f, "o-4", REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED, true, "credit");
    send_cancel(f, "o-1", 1);
    const char *want[][2] = {{"o-1", "A"}, {"o-2", "S"}, {"o-2", "R"}, {"o-3", "S"}, {"o-3", "R"}};
    for (size_t i = 0; i < 5; i++) {
        int body = want[i][1][0] == 'A'   ? REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK
                   : want[i][1][0] == 'S' ? REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED
                                          : REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT;
        wm = expect(f, body, want[i][0], 1);
        refcache__v1__worker_message__free_unpacked(wm, NULL);
    }
}

/* A DispatchBatch: its tasks are held and run one by one, in order, as if
 * each had come alone (a cancel removes one of them while its batch-mates
 * still wait), and results that end in a burst come back in ResultBatches. */
static void test_dispatch_batch(void **state)
{
    (void) state;
    fx_t *f = fixture_new();
    fixture_start(f, 8, 10, NULL, NULL);
    const char *first[] = {"q-0", "q-1", "q-2", "q-3", "q-4", "q-5"};
    send_batch(f, first, 6, "200");
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "q-0", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    send_cancel(f, "q-3", 1);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK, "q-3", 1);
    assert_false(wm->cancel_ack->started);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT, "q-0", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    const char *rest[] = {"q-1", "q-2", "q-4", "q-5"};
    for (size_t i = 0; i < 4; i++) {
        wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT, rest[i], 1);
        assert_int_equal(wm->result->data.len, strlen(rest[i]));
        assert_memory_equal(wm->result->data.data, rest[i], strlen(rest[i]));
        refcache__v1__worker_message__free_unpacked(wm, NULL);
    }

    /* Eight quick tasks at once: their results do not go out one by one. */
    const char *second[] = {"s-0", "s-1", "s-2", "s-3", "s-4", "s-5", "s-6", "s-7"};
    int batches_before = f->result_batches;
    send_batch(f, second, 8, NULL);
    for (size_t i = 0; i < 8; i++) {
        wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT, second[i], 1);
        refcache__v1__worker_message__free_unpacked(wm, NULL);
    }
    print_message("dispatch batch: %d ResultBatch(es) for 8 quick tasks\n",
                  f->result_batches - batches_before);
    if (!RUNNING_ON_VALGRIND) /* there a task may outlast the results' 50 us */
        assert_true(f->result_batches > batches_before);
    fixture_destroy(&f);
}

static void test_destroy_while_running(void **state)
{
    fx_t *f = *state;
    const char *params[] = {"ms", "60000", "step_ms", "60000", NULL};
    send_dispatch(f, "d-1", 1, "sleep", NULL, params);
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "d-1", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    uint64_t start = rc_mono_us();
    refcache_pool_destroy(&f->pool);
    assert_null(f->pool);
    assert_true(ms_since(start) < 1000);
    /* Its goodbye (nothing held to give back), then, with no drain time,
     * the running task stopped: the broker hears that it must go elsewhere. */
    wm = next_work(f, WAIT_MS);
    assert_non_null(wm);
    assert_int_equal(wm->body_case, REFCACHE__V1__WORKER_MESSAGE__BODY_HAND_BACK);
    assert_true(wm->hand_back->leaving);
    assert_int_equal(wm->hand_back->n_tasks, 0);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    expect_failure(f, "d-1", REFCACHE__V1__CODE__CODE_UNAVAILABLE, true, "shutting down");
    refcache_pool_destroy(&f->pool); /* NULL is fine */
}

static void test_liveness_reconnect(void **state)
{
    fx_t *f = fixture_new();
    fixture_start(f, 1, 3, NULL, NULL);
    /* A silent broker: after 3 intervals the worker opens new sockets and
     * announces itself again (same id), and again after that. */
    f->send_hb = false;
    char first_id[128];
    snprintf(first_id, sizeof first_id, "%s", f->wid);
    uint64_t start = rc_mono_us();
    expect_ready(f, 1);
    /* A new id per connection: the broker's ROUTER may still hold the old
     * connection under the old one. */
    assert_string_not_equal(f->wid, first_id);
    uint64_t took = ms_since(start);
    assert_true(took >= 3 * HB_MS - 20);
    wait_hellos(f, 2);
    /* A live broker keeps it connected: heartbeats and no new Ready. */
    f->send_hb = true;
    assert_null(next_work(f, 8 * HB_MS));
    fixture_destroy(&f);
}

/* A job step that runs past the broker's liveness window without calling
 * back (the worker looks frozen to the broker), then asks whether it should
 * go on. */
static volatile bool stall_saw_cancel;
static int stall_fn(refcache_job_t *job)
{
    uint64_t start = rc_mono_us();
    while (rc_mono_us() - start < (uint64_t) 12 * HB_MS * 1000)
        ; /* busy: no heartbeat goes out */
    stall_saw_cancel = refcache_job_cancelled(job);
    return refcache_job_result(job, "late", 4);
}

static int big_fn(refcache_job_t *job)
{
    static char big[4096];
    return refcache_job_result(job, big, sizeof big);
}

/* Starts a pool with extra functions (besides the built-ins) and a result
 * cap, and takes its Ready without checking the function list. */
static void fixture_start_with(fx_t *f, int credit, int liveness, const refcache_function_t *fns, size_t n,
                               size_t max_result)
{
    pool_start(f, credit, liveness, NULL, NULL, fns, n, max_result);
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_READY, NULL, 0);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    wait_hellos(f, 1);
}

static void test_frozen_worker_disowns(void **state)
{
    /* The broker declares a worker lost after liveness silent intervals and
     * gives its tasks to others. A worker that was silent that long (frozen,
     * or stuck in a long step) must not go on with them: the running job is
     * told to stop, nothing is reported about it, the held task never
     * starts, and the worker joins again as a new worker. */
    fx_t *f = fixture_new();
    const refcache_function_t fns[] = {{"stall", stall_fn, false}};
    /* Liveness 6: the test (which sends no heartbeats) has 600 ms to
     * dispatch before the idle worker gives up on it, and the stall (12
     * heartbeats) still outlasts the window. */
    fixture_start_with(f, 2, 6, fns, 1, 0);
    char first_id[128];
    snprintf(first_id, sizeof first_id, "%s", f->wid);
    stall_saw_cancel = false;
    /* Both in one message, so that the second cannot reach a worker that
     * has already rejoined under a new id. */
    Refcache__V1__Dispatch d[2], *dp[2] = {&d[0], &d[1]};
    refcache__v1__dispatch__init(&d[0]);
    refcache__v1__dispatch__init(&d[1]);
    d[0].ref_id = "st-1";
    d[0].attempt = 1;
    d[0].function = "stall";
    d[1].ref_id = "st-2";
    d[1].attempt = 1;
    d[1].function = "echo";
    d[1].payload.data = (uint8_t *) "held";
    d[1].payload.len = 4;
    Refcache__V1__DispatchBatch batch = REFCACHE__V1__DISPATCH_BATCH__INIT;
    batch.dispatches = dp;
    batch.n_dispatches = 2;
    Refcache__V1__BrokerMessage bm = REFCACHE__V1__BROKER_MESSAGE__INIT;
    bm.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCHES;
    bm.dispatches = &batch;
    send_broker(f, &bm);
    /* The first message after the stall is the new Ready: not even a
     * Started for st-1 (its first step boundary came too late). */
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_READY, NULL, 0);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    assert_string_not_equal(f->wid, first_id);
    assert_true(stall_saw_cancel);
    /* Neither task is mentioned again. */
    assert_null(next_work(f, 300));
    fixture_destroy(&f);
}

static void test_result_too_large(void **state)
{
    fx_t *f = fixture_new();
    const refcache_function_t fns[] = {{"big", big_fn, false}};
    fixture_start_with(f, 1, 10, fns, 1, 1024);
    send_dispatch(f, "big-1", 1, "big", NULL, NULL);
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "big-1", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_FAILURE, "big-1", 1);
    assert_int_equal(wm->failure->code, REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(wm->failure->message, "4096"));
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    fixture_destroy(&f);
}

static void test_inproc(void **state)
{
    /* The broker's in-process pool: same process, CZMQ's context. */
    fx_t *f = fixture_bind("inproc://test-refcache-work", "inproc://test-refcache-control");
    fixture_start(f, 2, 10, NULL, NULL);
    send_dispatch(f, "i-1", 1, "echo", "inproc", NULL);
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "i-1", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT, "i-1", 1);
    assert_memory_equal(wm->result->data.data, "inproc", 6);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    fixture_destroy(&f);
}

/* The cancel board tests' jobs: one that runs until the test lets it go
 * (without a step boundary, so it never looks at the control socket), and
 * then, if asked, until a message is readable on its thread's control socket
 * (zmq_poll's documented POLLIN), so that what the test sent there is known
 * to be in the socket when the held tasks behind it come up; and one that
 * counts its starts. */
static atomic_bool go, job_waiting, wait_control;
static atomic_int marks;

static int wait_go_fn(refcache_job_t *job)
{
    atomic_store(&job_waiting, true);
    uint64_t start = rc_mono_us();
    while (!atomic_load(&go) && ms_since(start) < WAIT_MS)
        sched_yield();
    atomic_store(&go, false);
    atomic_store(&job_waiting, false);
    if (atomic_load(&wait_control)) {
        rc_wthread_t *w = job->worker; /* the library's own, which this test links */
        zmq_pollitem_t item = {w->control_h, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, WAIT_MS) != 1)
            return refcache_job_fail(job, REFCACHE__V1__CODE__CODE_INTERNAL, false, "no notice");
        /* zmq_poll took the socket's news: the thread must receive to learn
         * it, as after any receive that did not find the socket empty. */
        w->control_armed = false;
    }
    return refcache_job_result(job, "went", 4);
}

static int mark_fn(refcache_job_t *job)
{
    atomic_fetch_add(&marks, 1);
    return refcache_job_result(job, "marked", 6);
}

static const refcache_function_t board_fns[] = {{"wait_go", wait_go_fn, false}, {"mark", mark_fn, false}};

/* A ref_id that is 32 hex digits (a board carries the 16 bytes). */
static void board_ref(char *hex, uint8_t ref[16], const char *tag, int i)
{
    memset(ref, 0, 16);
    snprintf((char *) ref, 16, "%s%d", tag, i);
    rc_hex_encode(ref, 16, hex);
}

static void board_ref_hex(char *hex, const char *tag, int i)
{
    uint8_t ref[16];
    board_ref(hex, ref, tag, i);
}

/* Dispatches wait_go as A, then the marks given (held behind A), and
 * waits until A runs. */
static void board_start_round(fx_t *f, const char *a, const char *const *held, size_t n)
{
    send_dispatch(f, a, 1, "wait_go", NULL, NULL);
    for (size_t i = 0; i < n; i++)
        send_dispatch(f, held[i], 1, "mark", NULL, NULL);
    uint64_t start = rc_mono_us();
    while (!atomic_load(&job_waiting) && ms_since(start) < WAIT_MS)
        zclock_sleep(1); /* a poll interval, not a synchronisation */
    assert_true(atomic_load(&job_waiting));
}

static void expect_ack(fx_t *f, const char *ref, bool started)
{
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK, ref, 1);
    assert_int_equal(wm->cancel_ack->started, started);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
}

static void expect_result(fx_t *f, const char *ref)
{
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT, ref, 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
}

static fx_t *board_fixture(const char *name, size_t slots, int credit)
{
    char work[64], control[64];
    snprintf(work, sizeof work, "inproc://test-refcache-work-%s", name);
    snprintf(control, sizeof control, "inproc://test-refcache-control-%s", name);
    fx_t *f = fixture_bind(work, control);
    f->boards = rc_board_registry_new(slots);
    assert_non_null(f->boards);
    fixture_start_with(f, credit, 10, board_fns, 2, 0);
    atomic_store(&marks, 0);
    atomic_store(&go, false);
    atomic_store(&wait_control, false);
    return f;
}

static void test_cancel_board(void **state)
{
    /* A thread with a cancel board reads its board, not its control socket,
     * before it starts a held task. The test plays the broker: it posts the
     * notice on the thread's board (found under the routing id of its
     * Ready), then sends it on the control socket, and lets the job ahead of
     * the held task end at once. The board alone must keep the held task
     * from starting, whenever the copy on the socket becomes readable. Many
     * rounds, to give any race every chance to show. */
    (void) state;
    fx_t *f = board_fixture("board", 0, 2);
    rc_board_t *board = rc_board_find(f->boards, f->wid);
    assert_non_null(board);
    for (int i = 0; i < 200; i++) {
        char a[33], b[33];
        uint8_t bref[16];
        board_ref_hex(a, "a", i);
        board_ref(b, bref, "b", i);
        board_start_round(f, a, (const char *[]){b}, 1);
        assert_true(rc_board_post(board, bref, 1));
        send_cancel(f, b, 1);
        atomic_store(&go, true);
        expect_result(f, a);
        expect_ack(f, b, false);
    }
    assert_int_equal(atomic_load(&marks), 0);
    /* Each cancel was answered once: had a copy on the socket been taken
     * for a second cancel, its CancelAck would come before this Result. */
    char c[33];
    board_ref_hex(c, "c", 0);
    send_dispatch(f, c, 1, "mark", NULL, NULL);
    expect_result(f, c);
    assert_int_equal(atomic_load(&marks), 1);
    /* A copy whose board entry was taken leaves nothing behind: the last
     * b dispatched again (the broker never does) runs, where a tombstone
     * or a held task removed by the copy would be answered with a
     * CancelAck. */
    char b[33];
    board_ref_hex(b, "b", 199);
    send_dispatch(f, b, 1, "mark", NULL, NULL);
    expect_result(f, b);
    assert_int_equal(atomic_load(&marks), 2);
    fixture_destroy(&f);
}

/* Sends one DispatchBatch of the n tasks refs[i] of function fns[i]
 * (attempt 1, no payload). */
static void send_fn_batch(fx_t *f, const char *const *refs, const char *const *fns, size_t n)
{
    Refcache__V1__Dispatch d[16], *dp[16];
    assert_true(n >= 2 && n <= 16);
    for (size_t i = 0; i < n; i++) {
        refcache__v1__dispatch__init(&d[i]);
        d[i].ref_id = (char *) refs[i];
        d[i].attempt = 1;
        d[i].function = (char *) fns[i];
        dp[i] = &d[i];
    }
    Refcache__V1__DispatchBatch b = REFCACHE__V1__DISPATCH_BATCH__INIT;
    b.dispatches = dp;
    b.n_dispatches = n;
    Refcache__V1__BrokerMessage bm = REFCACHE__V1__BROKER_MESSAGE__INIT;
    bm.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCHES;
    bm.dispatches = &b;
    send_broker(f, &bm);
}

static void test_cancel_board_unreceived(void **state)
{
    /* Cancels posted for dispatches the thread has not received yet: they
     * wait in its work socket while its job runs, sent (as the broker does)
     * before the cancels were posted. The thread empties its work socket
     * before it reads its board, so each cancel finds its task held: more
     * of them than its ring of tombstones could remember, and none runs. */
    (void) state;
    enum { N = 48 };
    fx_t *f = board_fixture("board-unreceived", 0, 64);
    rc_board_t *board = rc_board_find(f->boards, f->wid);
    assert_non_null(board);
    char a[33], h0[33], h[N][33];
    uint8_t refs[N][16];
    board_ref_hex(a, "unrecv-a", 0);
    board_ref_hex(h0, "unrecv-h", 999);
    /* A and a held task in one batch: A runs, and the thread, busy, receives
     * nothing more until it ends. */
    send_fn_batch(f, (const char *[]){a, h0}, (const char *[]){"wait_go", "mark"}, 2);
    uint64_t start = rc_mono_us();
    while (!atomic_load(&job_waiting) && ms_since(start) < WAIT_MS)
        zclock_sleep(1); /* a poll interval, not a synchronisation */
    assert_true(atomic_load(&job_waiting));
    const char *ptrs[N], *fns[N];
    for (int i = 0; i < N; i++) {
        board_ref(h[i], refs[i], "unrecv-h", i);
        ptrs[i] = h[i];
        fns[i] = "mark";
    }
    for (int i = 0; i < N; i += 16)
        send_fn_batch(f, ptrs + i, fns + i, 16);
    for (int i = 0; i < N; i++)
        assert_true(rc_board_post(board, refs[i], 1));
    for (int i = 0; i < N; i++)
        send_cancel(f, h[i], 1);
    atomic_store(&go, true);
    expect_result(f, a);
    for (int i = 0; i < N; i++)
        expect_ack(f, h[i], false);
    expect_result(f, h0);
    assert_int_equal(atomic_load(&marks), 1);
    fixture_destroy(&f);
}

static void test_cancel_board_full(void **state)
{
    /* A board of two entries, three held tasks cancelled: the third notice
     * finds the board full, so the broker counts it missed and sends it on
     * the socket only. While it is missed, the thread looks at its control
     * socket before each held task, as a worker without a board does. Once
     * the broker settles it, the thread reads only its board again. */
    (void) state;
    fx_t *f = board_fixture("board-full", 2, 4);
    rc_board_t *board = rc_board_find(f->boards, f->wid);
    assert_non_null(board);
    char a[33], h[3][33];
    uint8_t refs[3][16];
    board_ref_hex(a, "full-a", 0);
    for (int i = 0; i < 3; i++)
        board_ref(h[i], refs[i], "full-h", i);
    board_start_round(f, a, (const char *[]){h[0], h[1], h[2]}, 3);
    assert_true(rc_board_post(board, refs[0], 1));
    assert_true(rc_board_post(board, refs[1], 1));
    assert_false(rc_board_post(board, refs[2], 1));
    rc_board_miss(board);
    send_cancel(f, h[2], 1);
    atomic_store(&wait_control, true);
    atomic_store(&go, true);
    expect_result(f, a);
    for (int i = 0; i < 3; i++)
        expect_ack(f, h[i], false);
    assert_int_equal(atomic_load(&marks), 0);
    send_cancel(f, h[0], 1); /* the copies of what was posted find their echoes */
    send_cancel(f, h[1], 1);

    /* Settled: a notice sent on the socket only (a broker that forgot the
     * board) no longer stops a held task before it starts. */
    rc_board_settle(board);
    char a2[33], x[33];
    board_ref_hex(a2, "full-a", 1);
    board_ref_hex(x, "full-x", 0);
    board_start_round(f, a2, (const char *[]){x}, 1);
    send_cancel(f, x, 1);
    atomic_store(&go, true);
    expect_result(f, a2);
    expect_result(f, x);
    assert_int_equal(atomic_load(&marks), 1);
    atomic_store(&wait_control, false);
    fixture_destroy(&f);
}

static void test_bad_config(void **state)
{
    char err[256];
    refcache_pool_config_t cfg = {.work_endpoint = "tcp://127.0.0.1:1",
                                  .control_endpoint = "tcp://127.0.0.1:2"};
    cfg.curve_secret_file = "/nonexistent/worker.cert";
    cfg.broker_public_file = "/nonexistent/broker.cert";
    assert_null(refcache_pool_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/worker.cert"));
    cfg.broker_public_file = NULL;
    assert_null(refcache_pool_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "both"));
    cfg.curve_secret_file = NULL;
    cfg.work_endpoint = "nonsense://x";
    cfg.threads = 2;
    assert_null(refcache_pool_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "nonsense://x"));
    cfg.work_endpoint = "tcp://127.0.0.1:1";
    cfg.no_builtins = true;
    assert_null(refcache_pool_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "no functions"));
    assert_null(refcache_pool_new(NULL, err, sizeof err));
}

static void test_curve(void **state)
{
    char dir[] = "/tmp/rc-curve-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char worker_path[64], broker_path[64], path[80];
    snprintf(worker_path, sizeof worker_path, "%s/worker", dir);
    snprintf(broker_path, sizeof broker_path, "%s/broker", dir);
    zcert_t *worker = zcert_new();
    zcert_t *broker = zcert_new();
    assert_int_equal(zcert_save(worker, worker_path), 0);
    assert_int_equal(zcert_save(broker, broker_path), 0);

    fx_t *f = fixture_new();
    /* Rebind as CURVE servers: options must be set before bind. */
    zsock_destroy(&f->work);
    zsock_destroy(&f->control);
    zsock_t *routers[2];
    for (int i = 0; i < 2; i++) {
        routers[i] = zsock_new(ZMQ_ROUTER);
        zsock_set_linger(routers[i], 0);
        zsock_set_router_mandatory(routers[i], 1);
        zcert_apply(broker, routers[i]);
        zsock_set_curve_server(routers[i], 1);
        assert_true(zsock_bind(routers[i], "tcp://127.0.0.1:*") > 0);
    }
    f->work = routers[0];
    f->control = routers[1];
    fixture_start(f, 2, 10, worker_path, broker_path);
    send_dispatch(f, "c-1", 1, "echo", "secret", NULL);
    worker_msg_t *wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED, "c-1", 1);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    wm = expect(f, REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT, "c-1", 1);
    assert_memory_equal(wm->result->data.data, "secret", 6);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    fixture_destroy(&f);

    zcert_destroy(&worker);
    zcert_destroy(&broker);
    const char *names[] = {"worker", "worker_secret", "broker", "broker_secret"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_announce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sleep_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spin_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_runs_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reannounce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_primes_and_spin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_over_credit, setup, teardown),
        cmocka_unit_test(test_dispatch_batch),
        cmocka_unit_test_setup_teardown(test_destroy_while_running, setup, teardown),
        cmocka_unit_test(test_liveness_reconnect),
        cmocka_unit_test(test_frozen_worker_disowns),
        cmocka_unit_test(test_result_too_large),
        cmocka_unit_test(test_inproc),
        cmocka_unit_test(test_cancel_board),
        cmocka_unit_test(test_cancel_board_full),
        cmocka_unit_test(test_cancel_board_unreceived),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_curve),
    };
    /* RC_TEST_FILTER=test_echo runs a single test (a glob). */
    if (getenv("RC_TEST_FILTER"))
        cmocka_set_test_filter(getenv("RC_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
