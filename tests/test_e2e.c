/* Integration tests: a real broker (rc_broker_new, in-process worker threads
 * over inproc) on ephemeral loopback ports, driven through rc_client. Covers
 * issue 2 §7. Waits are polls with a timeout, never fixed sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rc_broker.h"
#include "rc_client.h"
#include "rc_common.h"
#include "rc_testkit.h"
#include "rc_valgrind.h"
#include "rc_worker.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALL_MS 5000

enum {
    PENDING = REFCACHE__V1__STATE__STATE_PENDING,
    PROCESSING = REFCACHE__V1__STATE__STATE_PROCESSING,
    COMPLETE = REFCACHE__V1__STATE__STATE_COMPLETE,
    FAILED = REFCACHE__V1__STATE__STATE_FAILED,
    CANCELLED = REFCACHE__V1__STATE__STATE_CANCELLED,
    C_OK = REFCACHE__V1__CODE__CODE_OK,
    C_INVALID = REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT,
    C_NOT_FOUND = REFCACHE__V1__CODE__CODE_NOT_FOUND,
    C_PRECONDITION = REFCACHE__V1__CODE__CODE_FAILED_PRECONDITION,
    C_OUT_OF_RANGE = REFCACHE__V1__CODE__CODE_OUT_OF_RANGE,
    C_UNIMPLEMENTED = REFCACHE__V1__CODE__CODE_UNIMPLEMENTED,
};

typedef struct {
    rc_broker_t *broker;
    rc_client_t *client;
} fixture_t;

static fixture_t *s_start(int workers)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    rc_broker_config_t config;
    rc_testkit_config(&config);
    config.workers = workers;
    f->broker = rc_testkit_broker(&config);
    f->client = rc_testkit_client(f->broker);
    return f;
}

static int setup2(void **state)
{
    *state = s_start(2);
    return 0;
}

static int setup1(void **state)
{
    *state = s_start(1);
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    rc_client_destroy(&f->client);
    rc_broker_destroy(&f->broker);
    assert_null(f->broker);
    free(f);
    return 0;
}

/* Submits function with params given as "k=v" strings (NULL-terminated). */
static int s_submit(rc_client_t *c, const char *function, const char *const *kv, const char *payload,
                    uint32_t async_ms, bool no_cache, rc_task_info_t *t)
{
    rc_param_t params[8];
    char keys[8][32];
    size_t n = 0;
    for (; kv && kv[n]; n++) {
        const char *eq = strchr(kv[n], '=');
        assert_non_null(eq);
        snprintf(keys[n], sizeof keys[n], "%.*s", (int) (eq - kv[n]), kv[n]);
        params[n].key = keys[n];
        params[n].value = eq + 1;
    }
    rc_submit_options_t opts;
    rc_submit_options_init(&opts);
    opts.params = params;
    opts.param_count = n;
    opts.payload = payload;
    opts.payload_len = payload ? strlen(payload) : 0;
    opts.async_timeout_ms = async_ms;
    opts.no_cache = no_cache;
    return rc_client_submit(c, function, &opts, t, CALL_MS);
}

static bool s_is_ref(const char *ref)
{
    if (strlen(ref) != RC_REF_ID_LEN)
        return false;
    for (const char *p = ref; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* Long-polls until the task is terminal; returns its state (info filled). */
static int s_wait_terminal(rc_client_t *c, const char *ref, rc_task_info_t *t, uint32_t ms)
{
    uint64_t deadline = rc_mono_us() + (uint64_t) ms * 1000;
    for (;;) {
        int rc = rc_client_wait(c, ref, 1000, t, CALL_MS);
        assert_int_equal(rc, C_OK);
        if (rc_state_is_terminal(t->state))
            return t->state;
        rc_task_info_free(t);
        if (rc_mono_us() > deadline)
            fail_msg("task %s not terminal after %u ms", ref, ms);
    }
}

/* Polls Status until pred holds (checked every few ms), up to ms. */
typedef bool (*pred_fn)(const rc_task_info_t *t);

static void s_poll_until(rc_client_t *c, const char *ref, pred_fn pred, uint32_t ms, rc_task_info_t *t)
{
    uint64_t deadline = rc_mono_us() + (uint64_t) ms * 1000;
    for (;;) {
        assert_int_equal(rc_client_status(c, ref, t, CALL_MS), C_OK);
        if (pred(t))
            return;
        rc_task_info_free(t);
        if (rc_mono_us() > deadline)
            fail_msg("condition not reached for %s within %u ms", ref, ms);
        zclock_sleep(2); /* a poll interval, not a synchronisation */
    }
}

static bool p_progressing(const rc_task_info_t *t)
{
    return t->progress_done > 0;
}

static bool p_started(const rc_task_info_t *t)
{
    return t->state == PROCESSING && t->started_at_us > 0;
}

static bool p_stopped(const rc_task_info_t *t)
{
    return t->stopped_at_us > 0;
}

/* ------------------------------------------------------------------ tests */

/* The seed's verification scenario. */
static void test_seed_scenario(void **state)
{
    fixture_t *f = *state;
    rc_task_info_t t;
    const char *kv[] = {"ms=5000", NULL};
    uint64_t t0 = rc_mono_us();
    assert_int_equal(s_submit(f->client, "sleep", kv, NULL, 100, false, &t), C_OK);
    uint64_t took = rc_mono_us() - t0;
    assert_true(took >= 90000 && took < 2000000); /* held for the async timeout */
    assert_int_equal(t.state, PROCESSING);
    assert_true(s_is_ref(t.ref_id));
    char ref[RC_CLIENT_REF_MAX + 1];
    strcpy(ref, t.ref_id);
    rc_task_info_free(&t);

    bool cancelled = false;
    int st = 0;
    assert_int_equal(rc_client_cancel(f->client, ref, &cancelled, &st, CALL_MS), C_OK);
    assert_true(cancelled);
    assert_int_equal(st, CANCELLED);

    assert_int_equal(rc_client_status(f->client, ref, &t, CALL_MS), C_OK);
    assert_int_equal(t.state, CANCELLED);
    assert_int_equal(t.result_len, 0);
    assert_int_equal(t.result_size, 0);
    assert_int_equal(t.error_code, REFCACHE__V1__CODE__CODE_CANCELLED);
    assert_true(t.finished_at_us > 0);
    rc_task_info_free(&t);

    assert_int_equal(rc_client_cancel(f->client, ref, &cancelled, &st, CALL_MS), C_OK);
    assert_false(cancelled);
    assert_int_equal(st, CANCELLED);

    /* The worker acknowledges: it stopped, well before the 5 s sleep ends. */
    s_poll_until(f->client, ref, p_stopped, 2000, &t);
    assert_int_equal(t.state, CANCELLED);
    assert_true(t.ever_started);
    assert_true(t.stopped_at_us - t.finished_at_us < 1000000);
    rc_task_info_free(&t);
}

/* Submits function(kv) without waiting and returns its ref in ref once the
 * task satisfies pred (polled for up to 5 s). */
static void s_submit_until(rc_client_t *c, const char *function, const char *const *kv, bool no_cache,
                           pred_fn pred, char *ref)
{
    rc_task_info_t t;
    assert_int_equal(s_submit(c, function, kv, NULL, 0, no_cache, &t), C_OK);
    strcpy(ref, t.ref_id);
    rc_task_info_free(&t);
    s_poll_until(c, ref, pred, 5000, &t);
    rc_task_info_free(&t);
}

/* With one worker: after the cancel the worker is free at once, and the
 * cancelled job's progress does not advance any more. */
static void test_worker_really_stopped(void **state)
{
    fixture_t *f = *state;
    rc_task_info_t t;
    const char *kv[] = {"ms=20000", "step_ms=5", NULL};
    char ref[RC_CLIENT_REF_MAX + 1];
    s_submit_until(f->client, "sleep", kv, true, p_progressing, ref);

    bool cancelled = false;
    assert_int_equal(rc_client_cancel(f->client, ref, &cancelled, NULL, CALL_MS), C_OK);
    assert_true(cancelled);

    /* The only worker runs an echo right away. */
    uint64_t t0 = rc_mono_us();
    assert_int_equal(s_submit(f->client, "echo", NULL, "after-cancel", 3000, true, &t), C_OK);
    assert_int_equal(t.state, COMPLETE);
    assert_int_equal(t.result_len, strlen("after-cancel"));
    assert_memory_equal(t.result, "after-cancel", t.result_len);
    assert_true(rc_mono_us() - t0 < 1000000);
    rc_task_info_free(&t);

    s_poll_until(f->client, ref, p_stopped, 2000, &t);
    uint64_t progress = t.progress_done;
    assert_true(progress < 20000);
    rc_task_info_free(&t);

    /* Let real time pass on the worker itself (a 200 ms sleep task), then
     * check that the cancelled job did not report any further progress. */
    const char *kv2[] = {"ms=200", NULL};
    assert_int_equal(s_submit(f->client, "sleep", kv2, NULL, 3000, true, &t), C_OK);
    assert_int_equal(t.state, COMPLETE);
    rc_task_info_free(&t);
    assert_int_equal(rc_client_status(f->client, ref, &t, CALL_MS), C_OK);
    assert_int_equal(t.state, CANCELLED);
    assert_int_equal(t.progress_done, progress);
    assert_int_equal(t.result_len, 0);
    rc_task_info_free(&t);
}

/* With one worker busy, a queued task cancelled before it runs never starts. */
static void test_cancel_pending(void **state)
{
    fixture_t *f = *state;
    rc_task_info_t t;
    const char *kv[] = {"ms=20000", NULL};
    char busy[RC_CLIENT_REF_MAX + 1];
    s_submit_until(f->client, "sleep", kv, true, p_started, busy);

    const char *kv2[] = {"ms=100", NULL};
    assert_int_equal(s_submit(f->client, "sleep", kv2, NULL, 0, true, &t), C_OK);
    char queued[RC_CLIENT_REF_MAX + 1];
    strcpy(queued, t.ref_id);
    /* Queued in the broker, or held by the worker (credit 2) but not begun. */
    assert_true(t.state == PENDING || t.state == PROCESSING);
    assert_int_equal(t.started_at_us, 0);
    rc_task_info_free(&t);

    bool cancelled = false;
    int st = 0;
    assert_int_equal(rc_client_cancel(f->client, queued, &cancelled, &st, CALL_MS), C_OK);
    assert_true(cancelled);
    assert_int_equal(st, CANCELLED);

    /* Free the worker: whatever it still holds would start now. */
    assert_int_equal(rc_client_cancel(f->client, busy, &cancelled, NULL, CALL_MS), C_OK);
    assert_true(cancelled);
    const char *kv3[] = {"ms=50", NULL};
    assert_int_equal(s_submit(f->client, "sleep", kv3, NULL, 3000, true, &t), C_OK);
    assert_int_equal(t.state, COMPLETE);
    rc_task_info_free(&t);

    assert_int_equal(rc_client_status(f->client, queued, &t, CALL_MS), C_OK);
    assert_int_equal(t.state, CANCELLED);
    assert_false(t.ever_started);
    assert_int_equal(t.started_at_us, 0);
    assert_int_equal(t.progress_done, 0);
    assert_int_equal(t.result_len, 0);
    rc_task_info_free(&t);
}

/* Submits a second sleep while the only worker runs the first (for at least
 * busy_ms), and returns the broker's queue depth then; cancels both. */
static uint64_t s_queued_behind_busy(rc_client_t *c, int busy_ms)
{
    char busy[RC_CLIENT_REF_MAX + 1], next[RC_CLIENT_REF_MAX + 1];
    const char *long_kv[] = {"ms=20000", NULL};
    s_submit_until(c, "sleep", long_kv, true, p_started, busy);
    zclock_sleep(busy_ms);
    const char *kv[] = {"ms=100", NULL};
    rc_task_info_t t;
    assert_int_equal(s_submit(c, "sleep", kv, NULL, 0, true, &t), C_OK);
    strcpy(next, t.ref_id);
    rc_task_info_free(&t);
    rc_stats_t s;
    assert_int_equal(rc_client_stats(c, &s, CALL_MS), C_OK);
    bool cancelled = false;
    assert_int_equal(rc_client_cancel(c, next, &cancelled, NULL, CALL_MS), C_OK);
    assert_true(cancelled);
    assert_int_equal(rc_client_cancel(c, busy, &cancelled, NULL, CALL_MS), C_OK);
    assert_true(cancelled);
    return s.queue_depth;
}

/* Teaches the broker that sleep is quick: one sleep ms=0. */
static void s_sleep_quick(rc_client_t *c)
{
    const char *kv[] = {"ms=0", NULL};
    rc_task_info_t t;
    assert_int_equal(s_submit(c, "sleep", kv, NULL, 3000, true, &t), C_OK);
    assert_int_equal(t.state, COMPLETE);
    rc_task_info_free(&t);
}

/* A busy worker is sent more only while what it holds is expected to end
 * within the dispatch window: a function never seen to finish stays in the
 * broker's queue (the credit would allow more); one known to be quick goes
 * ahead to the worker that will be free first, unless the task that worker
 * runs has already taken longer than the window. */
static void test_dispatch_window(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(s_queued_behind_busy(f->client, 0), 1);
    /* Known quick now, but the running sleep has outlived the 1 ms window. */
    s_sleep_quick(f->client);
    assert_int_equal(s_queued_behind_busy(f->client, 20), 1);

    rc_broker_config_t config;
    rc_testkit_config(&config);
    config.workers = 1;
    config.dispatch_window_us = 60000000;
    rc_broker_t *broker = rc_testkit_broker(&config);
    rc_client_t *c = rc_testkit_client(broker);
    assert_int_equal(s_queued_behind_busy(c, 0), 1); /* still unknown */
    s_sleep_quick(c);
    /* Now measured: ms=0 took far less than 60 s, so the next goes ahead. */
    assert_int_equal(s_queued_behind_busy(c, 20), 0);
    rc_client_destroy(&c);
    rc_broker_destroy(&broker);
}

static bool p_started_or_done(const rc_task_info_t *t)
{
    return p_started(t) || rc_state_is_terminal(t->state);
}

/* Submits a spin of n iterations in one step (no step boundary, so the job
 * never looks at the control socket) and waits until it has started; its
 * ref goes to ref. False if it ended first. */
static bool s_start_spin(rc_client_t *c, uint64_t n, char *ref)
{
    char it[64], step[64];
    snprintf(it, sizeof it, "iterations=%llu", (unsigned long long) n);
    snprintf(step, sizeof step, "step=%llu", (unsigned long long) n);
    const char *kv[] = {it, step, NULL};
    rc_task_info_t t;
    assert_int_equal(s_submit(c, "spin", kv, NULL, 0, true, &t), C_OK);
    strcpy(ref, t.ref_id);
    rc_task_info_free(&t);
    s_poll_until(c, ref, p_started_or_done, 60000, &t);
    bool running = t.state == PROCESSING;
    rc_task_info_free(&t);
    return running;
}

/* A task held by the only worker, behind one that runs without a step
 * boundary, and cancelled while held never starts: the worker looks at its
 * control socket before it starts a held task (with the in-process pool,
 * because the broker rang its doorbell). The window lets the broker send it
 * ahead once both functions are known to be quick. The spin must outlast
 * the submit and the cancel of the held task: its length is measured from
 * here (valgrind too, whose scheduler may starve the client thread while
 * the worker spins), and doubled until the scenario holds. */
static void s_held_cancel_never_starts(rc_client_t *c)
{
    const uint64_t n0 = 2000000;
    char a[RC_CLIENT_REF_MAX + 1], b[RC_CLIENT_REF_MAX + 1];
    uint64_t t0 = rc_mono_us();
    (void) s_start_spin(c, n0, a);
    rc_task_info_t t;
    assert_int_equal(s_wait_terminal(c, a, &t, 60000), COMPLETE);
    rc_task_info_free(&t);
    uint64_t probe_us = rc_mono_us() - t0; /* an upper bound */
    s_sleep_quick(c);

    uint64_t n = n0 * (500000 / (probe_us ? probe_us : 1) + 1);
    for (int round = 0;; round++, n *= 2) {
        if (round == 6)
            fail_msg("no held task could be cancelled while the one ahead ran");
        if (!s_start_spin(c, n, a))
            continue;
        const char *quick_kv[] = {"ms=0", NULL};
        assert_int_equal(s_submit(c, "sleep", quick_kv, NULL, 0, true, &t), C_OK);
        strcpy(b, t.ref_id);
        int b_state = t.state;
        rc_task_info_free(&t);
        bool cancelled = false;
        assert_int_equal(rc_client_cancel(c, b, &cancelled, NULL, CALL_MS), C_OK);
        assert_int_equal(rc_client_status(c, a, &t, CALL_MS), C_OK);
        int a_state = t.state;
        rc_task_info_free(&t);
        assert_int_equal(s_wait_terminal(c, a, &t, 120000), COMPLETE);
        rc_task_info_free(&t);
        if (b_state != PROCESSING || !cancelled || a_state != PROCESSING) {
            /* B was not held behind a running A when its notice came. */
            s_wait_terminal(c, b, &t, 60000);
            rc_task_info_free(&t);
            continue;
        }
        /* B's CancelAck has come back once its stop time is set. */
        s_poll_until(c, b, p_stopped, 60000, &t);
        /* Had B started, its Started (at its first step boundary) or its
         * CancelAck would have said so. */
        assert_int_equal(t.state, CANCELLED);
        assert_false(t.ever_started);
        assert_int_equal(t.started_at_us, 0);
        rc_task_info_free(&t);
        return;
    }
}

/* Runs s_held_cancel_never_starts with one worker thread: the broker's
 * in-process pool (which has the broker's doorbell), or a pool over TCP
 * (which has none, as a worker process has). */
static void s_held_cancel_with(bool inproc)
{
    /* Under valgrind the spinning worker thread starves the broker's and
     * the client's for seconds (its scheduler is not fair by default), so
     * the scenario cannot be set up in time. ASan runs cover it. */
    if (RUNNING_ON_VALGRIND)
        skip();
    rc_broker_config_t config;
    rc_testkit_config(&config);
    config.workers = inproc ? 1 : 0;
    config.dispatch_window_us = 60000000;
    rc_broker_t *broker = rc_testkit_broker(&config);
    rc_client_t *c = rc_testkit_client(broker);
    rc_pool_t *pool = NULL;
    if (!inproc) {
        rc_pool_config_t pc = {
            .work_endpoint = rc_broker_endpoint(broker, RC_EP_WORKERS),
            .control_endpoint = rc_broker_endpoint(broker, RC_EP_CONTROL),
            .threads = 1,
        };
        char err[256] = "";
        pool = rc_pool_new(&pc, err, sizeof err);
        if (!pool)
            fail_msg("rc_pool_new: %s", err);
        /* Submits wait until the broker has seen the worker's Ready. */
        uint64_t deadline = rc_mono_us() + 5000000;
        for (;;) {
            rc_stats_t s;
            assert_int_equal(rc_client_stats(c, &s, CALL_MS), C_OK);
            if (s.workers >= 1)
                break;
            if (rc_mono_us() > deadline)
                fail_msg("the worker did not announce itself");
            zclock_sleep(2); /* a poll interval, not a synchronisation */
        }
    }
    s_held_cancel_never_starts(c);
    rc_pool_destroy(&pool);
    rc_client_destroy(&c);
    rc_broker_destroy(&broker);
}

static void test_held_cancel_inproc(void **state)
{
    (void) state;
    s_held_cancel_with(true);
}

static void test_held_cancel_tcp(void **state)
{
    (void) state;
    s_held_cancel_with(false);
}

static void test_cancel_unknown(void **state)
{
    fixture_t *f = *state;
    bool cancelled = true;
    assert_int_equal(
        rc_client_cancel(f->client, "00000000000000000000000000000000", &cancelled, NULL, CALL_MS),
        C_NOT_FOUND);
    assert_false(cancelled);
    cancelled = true;
    /* A ref that is not even well-formed: unknown, or rejected as invalid. */
    int rc = rc_client_cancel(f->client, "not-a-ref", &cancelled, NULL, CALL_MS);
    assert_true(rc == C_NOT_FOUND || rc == C_INVALID);
    assert_false(cancelled);
    rc_task_info_t t;
    assert_int_equal(rc_client_status(f->client, "00000000000000000000000000000000", &t, CALL_MS),
                     C_NOT_FOUND);
    rc_task_info_free(&t);
    bool found = true;
    assert_int_equal(rc_client_delete(f->client, "00000000000000000000000000000000", &found, CALL_MS),
                     C_NOT_FOUND);
    assert_false(found);
}

/* Cancel races completion: many short tasks, cancelled after a varying number
 * of round trips. Whichever the broker saw first decides, consistently. */
static void test_cancel_race(void **state)
{
    fixture_t *f = *state;
    int won = 0, lost = 0;
    for (int i = 0; i < 200; i++) {
        rc_task_info_t t;
        char ms[32];
        snprintf(ms, sizeof ms, "ms=%d", i % 7);
        const char *kv[] = {ms, "step_ms=1", NULL};
        assert_int_equal(s_submit(f->client, "sleep", kv, NULL, 0, true, &t), C_OK);
        char ref[RC_CLIENT_REF_MAX + 1];
        strcpy(ref, t.ref_id);
        rc_task_info_free(&t);
        for (int k = 0; k < i % 11; k++) {
            assert_int_equal(rc_client_status(f->client, ref, &t, CALL_MS), C_OK);
            rc_task_info_free(&t);
        }
        bool cancelled = false;
        int st = 0;
        assert_int_equal(rc_client_cancel(f->client, ref, &cancelled, &st, CALL_MS), C_OK);
        int final = s_wait_terminal(f->client, ref, &t, 10000);
        if (cancelled) {
            won++;
            assert_int_equal(st, CANCELLED);
            assert_int_equal(final, CANCELLED);
            assert_int_equal(t.result_len, 0);
            assert_int_equal(t.result_size, 0);
        } else {
            lost++;
            assert_int_equal(st, COMPLETE);
            assert_int_equal(final, COMPLETE);
            char want[48];
            snprintf(want, sizeof want, "slept %d ms", i % 7);
            assert_int_equal(t.result_len, strlen(want));
            assert_memory_equal(t.result, want, t.result_len);
        }
        rc_task_info_free(&t);
    }
    print_message("cancel race: %d cancelled, %d completed first\n", won, lost);
    assert_true(won + lost == 200);
    assert_true(won > 0);
}

/* A cancelled cacheable task leaves no cache entry behind. */
static void test_cancel_leaves_no_cache(void **state)
{
    fixture_t *f = *state;
    rc_task_info_t t;
    const char *kv[] = {"iterations=4000000000", "step=1000", NULL};
    char ref[RC_CLIENT_REF_MAX + 1];
    s_submit_until(f->client, "spin", kv, false, p_progressing, ref);
    bool cancelled = false;
    assert_int_equal(rc_client_cancel(f->client, ref, &cancelled, NULL, CALL_MS), C_OK);
    assert_true(cancelled);
    s_poll_until(f->client, ref, p_stopped, 5000, &t);
    assert_int_equal(t.result_size, 0);
    rc_task_info_free(&t);
    /* The same submit again is a new task, not a hit on the cancelled one. */
    assert_int_equal(s_submit(f->client, "spin", kv, NULL, 0, false, &t), C_OK);
    assert_false(t.cache_hit);
    assert_false(t.deduplicated);
    assert_string_not_equal(t.ref_id, ref);
    char ref2[RC_CLIENT_REF_MAX + 1];
    strcpy(ref2, t.ref_id);
    rc_task_info_free(&t);
    assert_int_equal(rc_client_cancel(f->client, ref2, &cancelled, NULL, CALL_MS), C_OK);
    assert_true(cancelled);
}

static void test_wait(void **state)
{
    fixture_t *f = *state;
    rc_task_info_t t;
    const char *kv[] = {"ms=300", NULL};
    assert_int_equal(s_submit(f->client, "sleep", kv, NULL, 0, true, &t), C_OK);
    char ref[RC_CLIENT_REF_MAX + 1];
    strcpy(ref, t.ref_id);
    rc_task_info_free(&t);
    assert_int_equal(rc_client_wait(f->client, ref, 5000, &t, CALL_MS), C_OK);
    assert_int_equal(t.state, COMPLETE);
    assert_int_equal(t.result_len, strlen("slept 300 ms"));
    assert_memory_equal(t.result, "slept 300 ms", t.result_len);
    assert_true(t.finished_at_us >= t.started_at_us && t.started_at_us >= t.created_at_us);
    assert_int_equal(t.attempt, 1);
    rc_task_info_free(&t);

    /* A Wait that times out answers OK with the current, non-terminal state. */
    const char *kv2[] = {"ms=10000", NULL};
    assert_int_equal(s_submit(f->client, "sleep", kv2, NULL, 0, true, &t), C_OK);
    strcpy(ref, t.ref_id);
    rc_task_info_free(&t);
    uint64_t t0 = rc_mono_us();
    assert_int_equal(rc_client_wait(f->client, ref, 150, &t, CALL_MS), C_OK);
    assert_true(rc_mono_us() - t0 >= 140000);
    assert_true(t.state == PENDING || t.state == PROCESSING);
    rc_task_info_free(&t);
    assert_int_equal(rc_client_cancel(f->client, ref, NULL, NULL, CALL_MS), C_OK);

    assert_int_equal(rc_client_wait(f->client, "00000000000000000000000000000000", 100, &t, CALL_MS),
                     C_NOT_FOUND);
    rc_task_info_free(&t);
}

/* Waits of more distinct timeouts than the broker has wait lanes (the rest
 * use its timer heap), pipelined out of order, some ended early by their
 * task: each is answered once, never before its time; then lanes freed by
 * the first round serve new timeouts. */
static void test_wait_lanes(void **state)
{
    fixture_t *f = *state;
    rc_task_info_t t;
    const char *kv_long[] = {"ms=10000", NULL}, *kv_short[] = {"ms=150", NULL};
    char slow[RC_CLIENT_REF_MAX + 1], quick[RC_CLIENT_REF_MAX + 1];
    assert_int_equal(s_submit(f->client, "sleep", kv_long, NULL, 0, true, &t), C_OK);
    strcpy(slow, t.ref_id);
    rc_task_info_free(&t);
    assert_int_equal(s_submit(f->client, "sleep", kv_short, NULL, 0, true, &t), C_OK);
    strcpy(quick, t.ref_id);
    rc_task_info_free(&t);

    for (int round = 0; round < 2; round++) {
        enum { N = 30 };
        uint64_t ids[N], timeout_ms[N], sent_us[N];
        bool answered[N] = {false};
        for (int i = 0; i < N; i++) {
            /* 12 distinct times (13 in the second round), each used by 2 or 3
             * waits, in scrambled order; every 5th waits on the quick task. */
            timeout_ms[i] = 40 + (uint64_t) ((i * 7) % (12 + round)) * 25 + (uint64_t) round * 5;
            bool on_quick = round == 0 && i % 5 == 0;
            if (on_quick)
                timeout_ms[i] = 5000;
            if (i == N / 2)
                usleep(60000); /* a lane's later waiters must not go with its first */
            sent_us[i] = rc_mono_us();
            assert_int_equal(
                rc_client_send_wait(f->client, on_quick ? quick : slow, (uint32_t) timeout_ms[i], &ids[i]),
                0);
        }
        for (int got = 0; got < N; got++) {
            rc_reply_t r;
            assert_int_equal(rc_client_recv(f->client, &r, 10000), 0);
            uint64_t now = rc_mono_us();
            assert_int_equal(r.code, C_OK);
            int i = 0;
            while (i < N && ids[i] != r.id)
                i++;
            assert_true(i < N);
            assert_false(answered[i]);
            answered[i] = true;
            if (timeout_ms[i] == 5000) { /* ended by its task, long before its time */
                assert_int_equal(r.task.state, COMPLETE);
                assert_true(now - sent_us[i] < 4000000);
            } else {
                assert_true(r.task.state == PROCESSING);
                assert_true(now - sent_us[i] >= timeout_ms[i] * 1000 - 1000);
            }
        }
    }
    rc_stats_t st;
    assert_int_equal(rc_client_stats(f->client, &st, CALL_MS), C_OK);
    assert_int_equal(st.waiters, 0);
    assert_int_equal(rc_client_cancel(f->client, slow, NULL, NULL, CALL_MS), C_OK);
}

/* The primes below n, one per line, computed here for comparison. */
static char *s_local_primes(uint32_t n, size_t *len)
{
    uint8_t *composite = calloc(n, 1);
    char *out = malloc((size_t) n * 2 + 16);
    assert_true(composite && out);
    size_t pos = 0;
    for (uint64_t i = 2; i < n; i++) {
        if (composite[i])
            continue;
        pos += (size_t) sprintf(out + pos, "%llu\n", (unsigned long long) i);
        for (uint64_t j = i * i; j < n; j += i)
            composite[j] = 1;
    }
    free(composite);
    *len = pos;
    return out;
}

static void test_fetch_paging(void **state)
{
    fixture_t *f = *state;
    rc_task_info_t t;
    const char *kv[] = {"n=2000000", NULL};
    assert_int_equal(s_submit(f->client, "primes", kv, NULL, 30000, false, &t), C_OK);
    if (t.state != COMPLETE) {
        char ref[RC_CLIENT_REF_MAX + 1];
        strcpy(ref, t.ref_id);
        rc_task_info_free(&t);
        assert_int_equal(s_wait_terminal(f->client, ref, &t, 60000), COMPLETE);
    }
    char ref[RC_CLIENT_REF_MAX + 1];
    strcpy(ref, t.ref_id);
    size_t want_len;
    char *want = s_local_primes(2000000, &want_len);
    assert_int_equal(t.result_size, want_len);
    assert_true(t.result_truncated);
    assert_true(t.result_len > 0 && t.result_len < want_len);
    assert_memory_equal(t.result, want, t.result_len); /* the preview */
    rc_task_info_free(&t);

    uint8_t *data;
    size_t len;
    assert_int_equal(rc_client_fetch_all(f->client, ref, 0, &data, &len, CALL_MS), C_OK);
    assert_int_equal(len, want_len);
    assert_memory_equal(data, want, len);
    free(data);
    /* Smaller, odd-sized pages reassemble to the same bytes. */
    assert_int_equal(rc_client_fetch_all(f->client, ref, 99991, &data, &len, CALL_MS), C_OK);
    assert_int_equal(len, want_len);
    assert_memory_equal(data, want, len);
    free(data);

    rc_fetch_t page;
    assert_int_equal(rc_client_fetch(f->client, ref, 1000, 10, &page, CALL_MS), C_OK);
    assert_int_equal(page.len, 10);
    assert_int_equal(page.total_size, want_len);
    assert_memory_equal(page.data, want + 1000, 10);
    rc_fetch_free(&page);
    assert_int_equal(rc_client_fetch(f->client, ref, want_len + 1, 10, &page, CALL_MS), C_OUT_OF_RANGE);
    rc_fetch_free(&page);
    free(want);

    /* Not COMPLETE: FAILED_PRECONDITION; unknown: NOT_FOUND. */
    const char *kv2[] = {"ms=10000", NULL};
    assert_int_equal(s_submit(f->client, "sleep", kv2, NULL, 0, true, &t), C_OK);
    strcpy(ref, t.ref_id);
    rc_task_info_free(&t);
    assert_int_equal(rc_client_fetch(f->client, ref, 0, 0, &page, CALL_MS), C_PRECONDITION);
    rc_fetch_free(&page);
    assert_int_equal(rc_client_cancel(f->client, ref, NULL, NULL, CALL_MS), C_OK);
    assert_int_equal(rc_client_fetch(f->client, "00000000000000000000000000000000", 0, 0, &page, CALL_MS),
                     C_NOT_FOUND);
    rc_fetch_free(&page);
}

static void test_cache_and_dedup(void **state)
{
    fixture_t *f = *state;
    rc_task_info_t t;
    char payload[64];
    snprintf(payload, sizeof payload, "cache-me-%llu", (unsigned long long) rc_wall_us());
    assert_int_equal(s_submit(f->client, "echo", NULL, payload, 3000, false, &t), C_OK);
    assert_int_equal(t.state, COMPLETE);
    assert_false(t.cache_hit);
    char ref[RC_CLIENT_REF_MAX + 1];
    strcpy(ref, t.ref_id);
    rc_task_info_free(&t);
    assert_int_equal(s_submit(f->client, "echo", NULL, payload, 3000, false, &t), C_OK);
    assert_int_equal(t.state, COMPLETE);
    assert_true(t.cache_hit);
    assert_string_equal(t.ref_id, ref);
    assert_memory_equal(t.result, payload, strlen(payload));
    rc_task_info_free(&t);
    /* no_cache: a new task. */
    assert_int_equal(s_submit(f->client, "echo", NULL, payload, 3000, true, &t), C_OK);
    assert_false(t.cache_hit);
    assert_string_not_equal(t.ref_id, ref);
    rc_task_info_free(&t);

    /* Two identical slow cacheable submits, pipelined: one task. */
    rc_param_t params[] = {{"iterations", "3000000000"}, {"step", "1000"}};
    rc_submit_options_t opts;
    rc_submit_options_init(&opts);
    opts.params = params;
    opts.param_count = 2;
    uint64_t id1, id2;
    assert_int_equal(rc_client_send_submit(f->client, "spin", &opts, &id1), 0);
    assert_int_equal(rc_client_send_submit(f->client, "spin", &opts, &id2), 0);
    char refs[2][RC_CLIENT_REF_MAX + 1];
    bool dedup[2] = {false, false};
    for (int i = 0; i < 2; i++) {
        rc_reply_t r;
        assert_int_equal(rc_client_recv(f->client, &r, CALL_MS), 0);
        assert_int_equal(r.code, C_OK);
        assert_int_equal(r.kind, RC_REPLY_SUBMIT);
        int slot = r.id == id1 ? 0 : 1;
        assert_true(r.id == id1 || r.id == id2);
        strcpy(refs[slot], r.task.ref_id);
        dedup[slot] = r.task.deduplicated;
    }
    assert_string_equal(refs[0], refs[1]);
    assert_false(dedup[0]);
    assert_true(dedup[1]);
    rc_stats_t s;
    assert_int_equal(rc_client_stats(f->client, &s, CALL_MS), C_OK);
    assert_true(s.cache_hits_total >= 1);
    assert_true(s.dedup_total >= 1);
    bool cancelled = false;
    assert_int_equal(rc_client_cancel(f->client, refs[0], &cancelled, NULL, CALL_MS), C_OK);
    assert_true(cancelled);
}

static bool s_gone(rc_client_t *c, const char *ref)
{
    rc_task_info_t t;
    int rc = rc_client_status(c, ref, &t, CALL_MS);
    rc_task_info_free(&t);
    assert_true(rc == C_OK || rc == C_NOT_FOUND);
    return rc == C_NOT_FOUND;
}

static void test_ttl_expiry(void **state)
{
    fixture_t *f = *state;
    rc_submit_options_t opts;
    rc_submit_options_init(&opts);
    opts.payload = "short-lived";
    opts.payload_len = strlen("short-lived");
    opts.ttl_s = 1;
    opts.async_timeout_ms = 3000;
    opts.no_cache = true;
    rc_task_info_t t;
    assert_int_equal(rc_client_submit(f->client, "echo", &opts, &t, CALL_MS), C_OK);
    assert_int_equal(t.state, COMPLETE);
    char ref[RC_CLIENT_REF_MAX + 1];
    strcpy(ref, t.ref_id);
    uint64_t done_at = rc_mono_us();
    rc_task_info_free(&t);
    assert_int_equal(rc_client_status(f->client, ref, &t, CALL_MS), C_OK);
    assert_true(t.expires_at_us > 0);
    rc_task_info_free(&t);
    while (!s_gone(f->client, ref)) {
        if (rc_mono_us() - done_at > 10000000)
            fail_msg("ttl_s=1 task still there after 10 s");
        zclock_sleep(20); /* a poll interval */
    }
    assert_true(rc_mono_us() - done_at > 500000);
    rc_stats_t s;
    assert_int_equal(rc_client_stats(f->client, &s, CALL_MS), C_OK);
    assert_true(s.expired_total >= 1);

    /* Delete drops a terminal task at once. */
    opts.ttl_s = 0;
    assert_int_equal(rc_client_submit(f->client, "echo", &opts, &t, CALL_MS), C_OK);
    strcpy(ref, t.ref_id);
    rc_task_info_free(&t);
    bool found = false;
    assert_int_equal(rc_client_delete(f->client, ref, &found, CALL_MS), C_OK);
    assert_true(found);
    assert_true(s_gone(f->client, ref));
}

/* Raw frames on a DEALER: the broker answers what is not a Request. */
static int s_raw_exchange(zsock_t *dealer, const void *data, size_t len, uint64_t *id)
{
    zframe_t *frame = zframe_new(data, len);
    assert_int_equal(zframe_send(&frame, dealer, 0), 0);
    zframe_t *reply = zframe_recv(dealer);
    assert_non_null(reply); /* the receive timeout is set: NULL means no answer */
    Refcache__V1__Reply *r = refcache__v1__reply__unpack(NULL, zframe_size(reply), zframe_data(reply));
    assert_non_null(r);
    int code = r->code;
    *id = r->id;
    refcache__v1__reply__free_unpacked(r, NULL);
    zframe_destroy(&reply);
    return code;
}

static void test_malformed_requests(void **state)
{
    fixture_t *f = *state;
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    zsock_set_rcvtimeo(dealer, CALL_MS);
    zsock_set_linger(dealer, 0);
    assert_int_equal(zsock_connect(dealer, "%s", rc_broker_endpoint(f->broker, RC_EP_CLIENTS)), 0);
    uint64_t id;
    assert_int_equal(s_raw_exchange(dealer, "\xff\xfe\xfd garbage \x01\x02", 14, &id), C_INVALID);
    assert_int_equal(id, 0);
    assert_int_equal(s_raw_exchange(dealer, "", 0, &id), C_INVALID);

    Refcache__V1__Request req = REFCACHE__V1__REQUEST__INIT;
    req.id = 77;
    uint8_t buf[64];
    size_t n = refcache__v1__request__pack(&req, buf);
    assert_int_equal(s_raw_exchange(dealer, buf, n, &id), C_INVALID);
    assert_true(id == 77 || id == 0);
    zsock_destroy(&dealer);

    /* Requests that decode but make no sense. */
    rc_task_info_t t;
    assert_int_equal(s_submit(f->client, "", NULL, NULL, 0, false, &t), C_INVALID);
    rc_task_info_free(&t);
    assert_int_equal(s_submit(f->client, "no-such-function", NULL, NULL, 0, false, &t), C_UNIMPLEMENTED);
    rc_task_info_free(&t);
    assert_true(strlen(rc_client_message(f->client)) > 0);

    rc_stats_t s;
    assert_int_equal(rc_client_stats(f->client, &s, CALL_MS), C_OK);
    assert_true(s.bad_requests_total >= 3);
    assert_int_equal(s.workers, 2);
}

/* Thousands in flight on one connection; every reply arrives exactly once. */
static void test_pipelined_many(void **state)
{
    fixture_t *f = *state;
    enum { N = 3000 };
    static bool seen[N];
    memset(seen, 0, sizeof seen);
    rc_submit_options_t opts;
    rc_submit_options_init(&opts);
    opts.payload = "p";
    opts.payload_len = 1;
    opts.no_cache = true;
    opts.async_timeout_ms = 10000;
    uint64_t first = 0, id;
    for (int i = 0; i < N; i++) {
        assert_int_equal(rc_client_send_submit(f->client, "echo", &opts, &id), 0);
        if (i == 0)
            first = id;
    }
    int complete = 0;
    for (int i = 0; i < N; i++) {
        rc_reply_t r;
        assert_int_equal(rc_client_recv(f->client, &r, 20000), 0);
        assert_true(r.id >= first && r.id < first + N);
        assert_false(seen[r.id - first]);
        seen[r.id - first] = true;
        assert_int_equal(r.code, C_OK);
        if (r.task.state == COMPLETE)
            complete++;
    }
    assert_int_equal(complete, N);
}

static rc_client_t *s_client_in(fixture_t *f, const char *ns)
{
    rc_client_options_t opts;
    rc_client_options_init(&opts);
    opts.endpoint = rc_broker_endpoint(f->broker, RC_EP_CLIENTS);
    opts.namespace_name = ns;
    char err[256] = "";
    rc_client_t *c = rc_client_new(&opts, err, sizeof err);
    if (!c)
        fail_msg("rc_client_new: %s", err);
    return c;
}

/* From outside its namespace a task does not exist: every call that names it
 * answers NOT_FOUND, and cancel cancels nothing. */
static void s_expect_invisible(rc_client_t *c, const char *ref)
{
    rc_task_info_t t;
    assert_int_equal(rc_client_status(c, ref, &t, CALL_MS), C_NOT_FOUND);
    assert_string_equal(t.ref_id, "");
    rc_task_info_free(&t);
    assert_int_equal(rc_client_wait(c, ref, 50, &t, CALL_MS), C_NOT_FOUND);
    rc_task_info_free(&t);
    rc_fetch_t page;
    assert_int_equal(rc_client_fetch(c, ref, 0, 0, &page, CALL_MS), C_NOT_FOUND);
    rc_fetch_free(&page);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(rc_client_fetch_all(c, ref, 0, &data, &len, CALL_MS), C_NOT_FOUND);
    assert_null(data);
    bool cancelled = true;
    int st = -1;
    assert_int_equal(rc_client_cancel(c, ref, &cancelled, &st, CALL_MS), C_NOT_FOUND);
    assert_false(cancelled);
    bool found = true;
    assert_int_equal(rc_client_delete(c, ref, &found, CALL_MS), C_NOT_FOUND);
    assert_false(found);
    /* The pipelined calls carry the namespace too. */
    uint64_t id;
    rc_reply_t r;
    assert_int_equal(rc_client_send_status(c, ref, &id), 0);
    assert_int_equal(rc_client_recv(c, &r, CALL_MS), 0);
    assert_int_equal(r.id, id);
    assert_int_equal(r.code, C_NOT_FOUND);
    assert_int_equal(rc_client_send_cancel(c, ref, &id), 0);
    assert_int_equal(rc_client_recv(c, &r, CALL_MS), 0);
    assert_int_equal(r.id, id);
    assert_int_equal(r.code, C_NOT_FOUND);
    assert_false(r.cancelled);
}

/* A task is found only in the namespace it was submitted in; the client
 * sends its connection's namespace on every request. */
static void test_namespace_scoping(void **state)
{
    fixture_t *f = *state;
    rc_client_t *a = s_client_in(f, "team-a");
    rc_client_t *b = s_client_in(f, "team-b");
    rc_client_t *empty = s_client_in(f, ""); /* "" is the default namespace */

    /* Submitted through the team-a connection, no namespace of its own. */
    rc_task_info_t t;
    const char *kv[] = {"ms=2000", NULL};
    assert_int_equal(s_submit(a, "sleep", kv, NULL, 0, true, &t), C_OK);
    assert_string_equal(t.namespace_name, "team-a");
    char ref[RC_CLIENT_REF_MAX + 1];
    strcpy(ref, t.ref_id);
    rc_task_info_free(&t);

    s_expect_invisible(f->client, ref);
    s_expect_invisible(b, ref);
    s_expect_invisible(empty, ref);

    /* Still running: nobody else's cancel touched it. */
    assert_int_equal(rc_client_status(a, ref, &t, CALL_MS), C_OK);
    assert_string_equal(t.ref_id, ref);
    assert_string_equal(t.namespace_name, "team-a");
    assert_true(t.state == PENDING || t.state == PROCESSING);
    rc_task_info_free(&t);
    assert_int_equal(rc_client_wait(a, ref, 10, &t, CALL_MS), C_OK);
    assert_true(t.state == PENDING || t.state == PROCESSING);
    rc_task_info_free(&t);
    rc_fetch_t page;
    int rc = rc_client_fetch(a, ref, 0, 0, &page, CALL_MS); /* found, but not COMPLETE */
    assert_true(rc != C_NOT_FOUND && rc != C_OK);
    rc_fetch_free(&page);
    uint64_t id;
    rc_reply_t r;
    assert_int_equal(rc_client_send_status(a, ref, &id), 0);
    assert_int_equal(rc_client_recv(a, &r, CALL_MS), 0);
    assert_int_equal(r.id, id);
    assert_int_equal(r.code, C_OK);
    assert_string_equal(r.task.namespace_name, "team-a");

    bool cancelled = false;
    int st = 0;
    assert_int_equal(rc_client_cancel(a, ref, &cancelled, &st, CALL_MS), C_OK);
    assert_true(cancelled);
    assert_int_equal(st, CANCELLED);
    s_expect_invisible(b, ref); /* terminal now: still invisible elsewhere */
    bool found = false;
    assert_int_equal(rc_client_delete(a, ref, &found, CALL_MS), C_OK);
    assert_true(found);
    assert_int_equal(rc_client_status(a, ref, &t, CALL_MS), C_NOT_FOUND);
    rc_task_info_free(&t);

    /* A submit's own namespace wins over the connection's. */
    rc_submit_options_t opts;
    rc_submit_options_init(&opts);
    opts.payload = "ns";
    opts.payload_len = 2;
    opts.async_timeout_ms = 3000;
    opts.no_cache = true;
    opts.namespace_name = "team-a";
    assert_int_equal(rc_client_submit(b, "echo", &opts, &t, CALL_MS), C_OK);
    assert_string_equal(t.namespace_name, "team-a");
    strcpy(ref, t.ref_id);
    rc_task_info_free(&t);
    assert_int_equal(rc_client_status(b, ref, &t, CALL_MS), C_NOT_FOUND);
    rc_task_info_free(&t);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(rc_client_fetch_all(a, ref, 0, &data, &len, CALL_MS), C_OK);
    assert_int_equal(len, 2);
    assert_memory_equal(data, "ns", 2);
    free(data);

    rc_client_destroy(&empty);
    rc_client_destroy(&b);
    rc_client_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seed_scenario, setup2, teardown),
        cmocka_unit_test_setup_teardown(test_worker_really_stopped, setup1, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_pending, setup1, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_window, setup1, teardown),
        cmocka_unit_test(test_held_cancel_inproc),
        cmocka_unit_test(test_held_cancel_tcp),
        cmocka_unit_test_setup_teardown(test_cancel_unknown, setup2, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_race, setup2, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_leaves_no_cache, setup2, teardown),
        cmocka_unit_test_setup_teardown(test_wait, setup2, teardown),
        cmocka_unit_test_setup_teardown(test_wait_lanes, setup2, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_paging, setup2, teardown),
        cmocka_unit_test_setup_teardown(test_cache_and_dedup, setup2, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_expiry, setup2, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_requests, setup2, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_many, setup2, teardown),
        cmocka_unit_test_setup_teardown(test_namespace_scoping, setup2, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
