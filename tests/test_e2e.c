/* Integration tests: a real broker (rc_broker_new, in-process worker threads
 * over inproc) on ephemeral loopback ports, driven through rc_client: the
 * task life cycle end to end. Waits are polls with a timeout, never fixed sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rc_broker.h"
#include "rc_common.h"
#include "rc_testkit.h"
#include "rc_valgrind.h"
#include "refcache.h"
#include "refcache_worker.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALL_MS 5000

typedef struct {
    rc_broker_t *broker;
    refcache_client_t *client;
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
    refcache_client_destroy(&f->client);
    rc_broker_destroy(&f->broker);
    assert_null(f->broker);
    free(f);
    return 0;
}

/* Submits function with params given as "k=v" strings (NULL-terminated). */
static int s_submit(refcache_client_t *c, const char *function, const char *const *kv, const char *payload,
                    uint32_t async_ms, bool no_cache, refcache_task_t **t)
{
    refcache_param_t params[8];
    char keys[8][32];
    size_t n = 0;
    for (; kv && kv[n]; n++) {
        const char *eq = strchr(kv[n], '=');
        assert_non_null(eq);
        snprintf(keys[n], sizeof keys[n], "%.*s", (int) (eq - kv[n]), kv[n]);
        params[n].key = keys[n];
        params[n].value = eq + 1;
    }
    refcache_submit_options_t opts;
    refcache_submit_options_init(&opts);
    opts.params = params;
    opts.param_count = n;
    opts.payload = payload;
    opts.payload_len = payload ? strlen(payload) : 0;
    opts.async_timeout_ms = async_ms;
    opts.no_cache = no_cache;
    return refcache_client_submit(c, function, &opts, t, CALL_MS);
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
static int s_wait_terminal(refcache_client_t *c, const char *ref, refcache_task_t **t, uint32_t ms)
{
    uint64_t deadline = rc_mono_us() + (uint64_t) ms * 1000;
    for (;;) {
        int rc = refcache_client_wait(c, ref, 1000, t, CALL_MS);
        assert_int_equal(rc, REFCACHE_CODE_OK);
        if (rc_state_is_terminal((*t)->info.state))
            return (*t)->info.state;
        refcache_task_destroy(t);
        if (rc_mono_us() > deadline)
            fail_msg("task %s not terminal after %u ms", ref, ms);
    }
}

/* Polls Status until pred holds (checked every few ms), up to ms. */
typedef bool (*pred_fn)(const refcache_task_view_t *t);

static void s_poll_until(refcache_client_t *c, const char *ref, pred_fn pred, uint32_t ms,
                         refcache_task_t **t)
{
    uint64_t deadline = rc_mono_us() + (uint64_t) ms * 1000;
    for (;;) {
        assert_int_equal(refcache_client_status(c, ref, t, CALL_MS), REFCACHE_CODE_OK);
        if (pred(&(*t)->info))
            return;
        refcache_task_destroy(t);
        if (rc_mono_us() > deadline)
            fail_msg("condition not reached for %s within %u ms", ref, ms);
        zclock_sleep(2); /* a poll interval, not a synchronisation */
    }
}

static bool p_progressing(const refcache_task_view_t *t)
{
    return t->progress_done > 0;
}

static bool p_started(const refcache_task_view_t *t)
{
    return t->state == REFCACHE_STATE_PROCESSING && t->started_at_us > 0;
}

static bool p_stopped(const refcache_task_view_t *t)
{
    return t->stopped_at_us > 0;
}

/* ------------------------------------------------------------------ tests */

/* The seed's verification scenario. */
static void test_seed_scenario(void **state)
{
    fixture_t *f = *state;
    refcache_task_t *t = NULL;
    const char *kv[] = {"ms=5000", NULL};
    uint64_t t0 = rc_mono_us();
    assert_int_equal(s_submit(f->client, "sleep", kv, NULL, 100, false, &t), REFCACHE_CODE_OK);
    uint64_t took = rc_mono_us() - t0;
    assert_true(took >= 90000 && took < 2000000); /* held for the async timeout */
    assert_int_equal(t->info.state, REFCACHE_STATE_PROCESSING);
    assert_true(s_is_ref(t->info.ref_id));
    char ref[REFCACHE_REF_MAX + 1];
    strcpy(ref, t->info.ref_id);
    refcache_task_destroy(&t);

    bool cancelled = false;
    int st = 0;
    assert_int_equal(refcache_client_cancel(f->client, ref, &cancelled, &st, CALL_MS), REFCACHE_CODE_OK);
    assert_true(cancelled);
    assert_int_equal(st, REFCACHE_STATE_CANCELLED);

    assert_int_equal(refcache_client_status(f->client, ref, &t, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_CANCELLED);
    assert_int_equal(t->info.result_len, 0);
    assert_int_equal(t->info.result_size, 0);
    assert_int_equal(t->info.error_code, REFCACHE_CODE_CANCELLED);
    assert_true(t->info.finished_at_us > 0);
    refcache_task_destroy(&t);

    assert_int_equal(refcache_client_cancel(f->client, ref, &cancelled, &st, CALL_MS), REFCACHE_CODE_OK);
    assert_false(cancelled);
    assert_int_equal(st, REFCACHE_STATE_CANCELLED);

    /* The worker acknowledges: it stopped, well before the 5 s sleep ends. */
    s_poll_until(f->client, ref, p_stopped, 2000, &t);
    assert_int_equal(t->info.state, REFCACHE_STATE_CANCELLED);
    assert_true(t->info.ever_started);
    assert_true(t->info.stopped_at_us - t->info.finished_at_us < 1000000);
    refcache_task_destroy(&t);
}

/* Submits function(kv) without waiting and returns its ref in ref once the
 * task satisfies pred (polled for up to 5 s). */
static void s_submit_until(refcache_client_t *c, const char *function, const char *const *kv, bool no_cache,
                           pred_fn pred, char *ref)
{
    refcache_task_t *t = NULL;
    assert_int_equal(s_submit(c, function, kv, NULL, 0, no_cache, &t), REFCACHE_CODE_OK);
    strcpy(ref, t->info.ref_id);
    refcache_task_destroy(&t);
    s_poll_until(c, ref, pred, 5000, &t);
    refcache_task_destroy(&t);
}

/* With one worker: after the cancel the worker is free at once, and the
 * cancelled job's progress does not advance any more. */
static void test_worker_really_stopped(void **state)
{
    fixture_t *f = *state;
    refcache_task_t *t = NULL;
    const char *kv[] = {"ms=20000", "step_ms=5", NULL};
    char ref[REFCACHE_REF_MAX + 1];
    s_submit_until(f->client, "sleep", kv, true, p_progressing, ref);

    bool cancelled = false;
    assert_int_equal(refcache_client_cancel(f->client, ref, &cancelled, NULL, CALL_MS), REFCACHE_CODE_OK);
    assert_true(cancelled);

    /* The only worker runs an echo right away. */
    uint64_t t0 = rc_mono_us();
    assert_int_equal(s_submit(f->client, "echo", NULL, "after-cancel", 3000, true, &t), REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    assert_int_equal(t->info.result_len, strlen("after-cancel"));
    assert_memory_equal(t->info.result, "after-cancel", t->info.result_len);
    assert_true(rc_mono_us() - t0 < 1000000);
    refcache_task_destroy(&t);

    s_poll_until(f->client, ref, p_stopped, 2000, &t);
    uint64_t progress = t->info.progress_done;
    assert_true(progress < 20000);
    refcache_task_destroy(&t);

    /* Let real time pass on the worker itself (a 200 ms sleep task), then
     * check that the cancelled job did not report any further progress. */
    const char *kv2[] = {"ms=200", NULL};
    assert_int_equal(s_submit(f->client, "sleep", kv2, NULL, 3000, true, &t), REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    refcache_task_destroy(&t);
    assert_int_equal(refcache_client_status(f->client, ref, &t, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_CANCELLED);
    assert_int_equal(t->info.progress_done, progress);
    assert_int_equal(t->info.result_len, 0);
    refcache_task_destroy(&t);
}

/* With one worker busy, a queued task cancelled before it runs never starts. */
static void test_cancel_pending(void **state)
{
    fixture_t *f = *state;
    refcache_task_t *t = NULL;
    const char *kv[] = {"ms=20000", NULL};
    char busy[REFCACHE_REF_MAX + 1];
    s_submit_until(f->client, "sleep", kv, true, p_started, busy);

    const char *kv2[] = {"ms=100", NULL};
    assert_int_equal(s_submit(f->client, "sleep", kv2, NULL, 0, true, &t), REFCACHE_CODE_OK);
    char queued[REFCACHE_REF_MAX + 1];
    strcpy(queued, t->info.ref_id);
    /* Queued in the broker, or held by the worker (credit 2) but not begun. */
    assert_true(t->info.state == REFCACHE_STATE_PENDING || t->info.state == REFCACHE_STATE_PROCESSING);
    assert_int_equal(t->info.started_at_us, 0);
    refcache_task_destroy(&t);

    bool cancelled = false;
    int st = 0;
    assert_int_equal(refcache_client_cancel(f->client, queued, &cancelled, &st, CALL_MS), REFCACHE_CODE_OK);
    assert_true(cancelled);
    assert_int_equal(st, REFCACHE_STATE_CANCELLED);

    /* Free the worker: whatever it still holds would start now. */
    assert_int_equal(refcache_client_cancel(f->client, busy, &cancelled, NULL, CALL_MS), REFCACHE_CODE_OK);
    assert_true(cancelled);
    const char *kv3[] = {"ms=50", NULL};
    assert_int_equal(s_submit(f->client, "sleep", kv3, NULL, 3000, true, &t), REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    refcache_task_destroy(&t);

    assert_int_equal(refcache_client_status(f->client, queued, &t, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_CANCELLED);
    assert_false(t->info.ever_started);
    assert_int_equal(t->info.started_at_us, 0);
    assert_int_equal(t->info.progress_done, 0);
    assert_int_equal(t->info.result_len, 0);
    refcache_task_destroy(&t);
}

/* Submits a second sleep while the only worker runs the first (for at least
 * busy_ms), and returns the broker's queue depth then; cancels both. */
static uint64_t s_queued_behind_busy(refcache_client_t *c, int busy_ms)
{
    char busy[REFCACHE_REF_MAX + 1], next[REFCACHE_REF_MAX + 1];
    const char *long_kv[] = {"ms=20000", NULL};
    s_submit_until(c, "sleep", long_kv, true, p_started, busy);
    zclock_sleep(busy_ms);
    const char *kv[] = {"ms=100", NULL};
    refcache_task_t *t = NULL;
    assert_int_equal(s_submit(c, "sleep", kv, NULL, 0, true, &t), REFCACHE_CODE_OK);
    strcpy(next, t->info.ref_id);
    refcache_task_destroy(&t);
    refcache_stats_t s;
    assert_int_equal(refcache_client_stats(c, &s, CALL_MS), REFCACHE_CODE_OK);
    bool cancelled = false;
    assert_int_equal(refcache_client_cancel(c, next, &cancelled, NULL, CALL_MS), REFCACHE_CODE_OK);
    assert_true(cancelled);
    assert_int_equal(refcache_client_cancel(c, busy, &cancelled, NULL, CALL_MS), REFCACHE_CODE_OK);
    assert_true(cancelled);
    return s.queue_depth;
}

/* Teaches the broker that sleep is quick: one sleep ms=0. */
static void s_sleep_quick(refcache_client_t *c)
{
    const char *kv[] = {"ms=0", NULL};
    refcache_task_t *t = NULL;
    assert_int_equal(s_submit(c, "sleep", kv, NULL, 3000, true, &t), REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    refcache_task_destroy(&t);
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
    refcache_client_t *c = rc_testkit_client(broker);
    assert_int_equal(s_queued_behind_busy(c, 0), 1); /* still unknown */
    s_sleep_quick(c);
    /* Now measured: ms=0 took far less than 60 s, so the next goes ahead. */
    assert_int_equal(s_queued_behind_busy(c, 20), 0);
    refcache_client_destroy(&c);
    rc_broker_destroy(&broker);
}

static bool p_started_or_done(const refcache_task_view_t *t)
{
    return p_started(t) || rc_state_is_terminal(t->state);
}

/* Submits a spin of n iterations in one step (no step boundary, so the job
 * never looks at the control socket) and waits until it has started; its
 * ref goes to ref. False if it ended first. */
static bool s_start_spin(refcache_client_t *c, uint64_t n, char *ref)
{
    char it[64], step[64];
    snprintf(it, sizeof it, "iterations=%llu", (unsigned long long) n);
    snprintf(step, sizeof step, "step=%llu", (unsigned long long) n);
    const char *kv[] = {it, step, NULL};
    refcache_task_t *t = NULL;
    assert_int_equal(s_submit(c, "spin", kv, NULL, 0, true, &t), REFCACHE_CODE_OK);
    strcpy(ref, t->info.ref_id);
    refcache_task_destroy(&t);
    s_poll_until(c, ref, p_started_or_done, 60000, &t);
    bool running = t->info.state == REFCACHE_STATE_PROCESSING;
    refcache_task_destroy(&t);
    return running;
}

#define HELD_MAX 3

/* Tasks held by the only worker, behind one that runs without a step
 * boundary, and cancelled while held never start: the worker learns of
 * each cancel before it starts a held task (with the in-process pool, from
 * the cancel board the broker posted it on; over TCP, from its control
 * socket). The window lets the broker send them ahead once both functions
 * are known to be quick. The spin must outlast the submits and the cancels
 * of the held tasks: its length is measured from here (valgrind too, whose
 * scheduler may starve the client thread while the worker spins), and
 * doubled until the scenario holds. Each cancelled task is answered once:
 * a second CancelAck would count as a stale message. */
static void s_held_cancel_never_starts(refcache_client_t *c, int n_held)
{
    const uint64_t n0 = 2000000;
    char a[REFCACHE_REF_MAX + 1], b[HELD_MAX][REFCACHE_REF_MAX + 1];
    uint64_t t0 = rc_mono_us();
    (void) s_start_spin(c, n0, a);
    refcache_task_t *t = NULL;
    assert_int_equal(s_wait_terminal(c, a, &t, 60000), REFCACHE_STATE_COMPLETE);
    refcache_task_destroy(&t);
    uint64_t probe_us = rc_mono_us() - t0; /* an upper bound */
    s_sleep_quick(c);

    uint64_t n = n0 * (500000 / (probe_us ? probe_us : 1) + 1);
    for (int round = 0;; round++, n *= 2) {
        if (round == 6)
            fail_msg("no held task could be cancelled while the one ahead ran");
        refcache_stats_t before;
        assert_int_equal(refcache_client_stats(c, &before, CALL_MS), REFCACHE_CODE_OK);
        if (!s_start_spin(c, n, a))
            continue;
        const char *quick_kv[] = {"ms=0", NULL};
        bool held = true;
        for (int i = 0; i < n_held; i++) {
            assert_int_equal(s_submit(c, "sleep", quick_kv, NULL, 0, true, &t), REFCACHE_CODE_OK);
            strcpy(b[i], t->info.ref_id);
            held &= t->info.state == REFCACHE_STATE_PROCESSING;
            refcache_task_destroy(&t);
        }
        for (int i = 0; i < n_held; i++) {
            bool cancelled = false;
            assert_int_equal(refcache_client_cancel(c, b[i], &cancelled, NULL, CALL_MS), REFCACHE_CODE_OK);
            held &= cancelled;
        }
        assert_int_equal(refcache_client_status(c, a, &t, CALL_MS), REFCACHE_CODE_OK);
        held &= t->info.state == REFCACHE_STATE_PROCESSING;
        refcache_task_destroy(&t);
        assert_int_equal(s_wait_terminal(c, a, &t, 120000), REFCACHE_STATE_COMPLETE);
        refcache_task_destroy(&t);
        if (!held) {
            /* Not every B was held behind a running A when its notice came. */
            for (int i = 0; i < n_held; i++) {
                s_wait_terminal(c, b[i], &t, 60000);
                refcache_task_destroy(&t);
            }
            continue;
        }
        for (int i = 0; i < n_held; i++) {
            /* B's CancelAck has come back once its stop time is set. */
            s_poll_until(c, b[i], p_stopped, 60000, &t);
            /* Had B started, its Started (at its first step boundary) or its
             * CancelAck would have said so. */
            assert_int_equal(t->info.state, REFCACHE_STATE_CANCELLED);
            assert_false(t->info.ever_started);
            assert_int_equal(t->info.started_at_us, 0);
            refcache_task_destroy(&t);
        }
        refcache_stats_t after;
        assert_int_equal(refcache_client_stats(c, &after, CALL_MS), REFCACHE_CODE_OK);
        assert_int_equal(after.stale_msgs_total, before.stale_msgs_total);
        return;
    }
}

/* Runs s_held_cancel_never_starts with one worker thread: the broker's
 * in-process pool (which reads its cancel board), or a pool over TCP
 * (which has none, as a worker process has). board_slots forces the
 * in-process thread's board to that many entries (0: sized from the
 * credit). */
static void s_held_cancel_with(bool inproc, uint32_t board_slots, int n_held)
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
    config.cancel_board_slots = board_slots;
    /* The spin sends nothing while it runs (no step boundary): long
     * heartbeats keep its worker from being found silent (two intervals:
     * it would be sent nothing more) or lost while it spins. */
    config.heartbeat_ms = 5000;
    rc_broker_t *broker = rc_testkit_broker(&config);
    refcache_client_t *c = rc_testkit_client(broker);
    refcache_pool_t *pool = NULL;
    if (!inproc) {
        refcache_pool_config_t pc = {
            .work_endpoint = rc_broker_endpoint(broker, RC_EP_WORKERS),
            .control_endpoint = rc_broker_endpoint(broker, RC_EP_CONTROL),
            .threads = 1,
            .heartbeat_ms = (int) config.heartbeat_ms,
        };
        char err[256] = "";
        pool = refcache_pool_new(&pc, err, sizeof err);
        if (!pool)
            fail_msg("refcache_pool_new: %s", err);
        /* Submits wait until the broker has seen the worker's Ready. */
        uint64_t deadline = rc_mono_us() + 5000000;
        for (;;) {
            refcache_stats_t s;
            assert_int_equal(refcache_client_stats(c, &s, CALL_MS), REFCACHE_CODE_OK);
            if (s.workers >= 1)
                break;
            if (rc_mono_us() > deadline)
                fail_msg("the worker did not announce itself");
            zclock_sleep(2); /* a poll interval, not a synchronisation */
        }
    }
    s_held_cancel_never_starts(c, n_held);
    if (board_slots) {
        /* After the full board: the missed notice's task is answered, so
         * the thread is back to reading its board alone. */
        s_held_cancel_never_starts(c, 1);
    }
    refcache_pool_destroy(&pool);
    refcache_client_destroy(&c);
    rc_broker_destroy(&broker);
}

static void test_held_cancel_inproc(void **state)
{
    (void) state;
    s_held_cancel_with(true, 0, 1);
}

static void test_held_cancel_tcp(void **state)
{
    (void) state;
    s_held_cancel_with(false, 0, 1);
}

/* A board of two entries and three held tasks cancelled: the third notice
 * finds the board full and goes by the control socket alone, which the
 * thread then looks at before each held task, as a worker over TCP does
 * (so, like test_held_cancel_tcp, this relies on the notice reaching the
 * socket while the task ahead still runs). */
static void test_held_cancel_board_full(void **state)
{
    (void) state;
    s_held_cancel_with(true, 2, 3);
}

static void test_cancel_unknown(void **state)
{
    fixture_t *f = *state;
    bool cancelled = true;
    assert_int_equal(
        refcache_client_cancel(f->client, "00000000000000000000000000000000", &cancelled, NULL, CALL_MS),
        REFCACHE_CODE_NOT_FOUND);
    assert_false(cancelled);
    cancelled = true;
    /* A ref that is not even well-formed: unknown, or rejected as invalid. */
    int rc = refcache_client_cancel(f->client, "not-a-ref", &cancelled, NULL, CALL_MS);
    assert_true(rc == REFCACHE_CODE_NOT_FOUND || rc == REFCACHE_CODE_INVALID_ARGUMENT);
    assert_false(cancelled);
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_status(f->client, "00000000000000000000000000000000", &t, CALL_MS),
                     REFCACHE_CODE_NOT_FOUND);
    refcache_task_destroy(&t);
    bool found = true;
    assert_int_equal(refcache_client_delete(f->client, "00000000000000000000000000000000", &found, CALL_MS),
                     REFCACHE_CODE_NOT_FOUND);
    assert_false(found);
}

/* Cancel races completion: many short tasks, cancelled after a varying number
 * of round trips. Whichever the broker saw first decides, consistently. */
static void test_cancel_race(void **state)
{
    fixture_t *f = *state;
    int won = 0, lost = 0;
    for (int i = 0; i < 200; i++) {
        refcache_task_t *t = NULL;
        char ms[32];
        snprintf(ms, sizeof ms, "ms=%d", i % 7);
        const char *kv[] = {ms, "step_ms=1", NULL};
        assert_int_equal(s_submit(f->client, "sleep", kv, NULL, 0, true, &t), REFCACHE_CODE_OK);
        char ref[REFCACHE_REF_MAX + 1];
        strcpy(ref, t->info.ref_id);
        refcache_task_destroy(&t);
        for (int k = 0; k < i % 11; k++) {
            assert_int_equal(refcache_client_status(f->client, ref, &t, CALL_MS), REFCACHE_CODE_OK);
            refcache_task_destroy(&t);
        }
        bool cancelled = false;
        int st = 0;
        assert_int_equal(refcache_client_cancel(f->client, ref, &cancelled, &st, CALL_MS), REFCACHE_CODE_OK);
        int final = s_wait_terminal(f->client, ref, &t, 10000);
        if (cancelled) {
            won++;
            assert_int_equal(st, REFCACHE_STATE_CANCELLED);
            assert_int_equal(final, REFCACHE_STATE_CANCELLED);
            assert_int_equal(t->info.result_len, 0);
            assert_int_equal(t->info.result_size, 0);
        } else {
            lost++;
            assert_int_equal(st, REFCACHE_STATE_COMPLETE);
            assert_int_equal(final, REFCACHE_STATE_COMPLETE);
            char want[48];
            snprintf(want, sizeof want, "slept %d ms", i % 7);
            assert_int_equal(t->info.result_len, strlen(want));
            assert_memory_equal(t->info.result, want, t->info.result_len);
        }
        refcache_task_destroy(&t);
    }
    print_message("cancel race: %d cancelled, %d completed first\n", won, lost);
    assert_true(won + lost == 200);
    assert_true(won > 0);
}

/* A cancelled cacheable task leaves no cache entry behind. */
static void test_cancel_leaves_no_cache(void **state)
{
    fixture_t *f = *state;
    refcache_task_t *t = NULL;
    const char *kv[] = {"iterations=4000000000", "step=1000", NULL};
    char ref[REFCACHE_REF_MAX + 1];
    s_submit_until(f->client, "spin", kv, false, p_progressing, ref);
    bool cancelled = false;
    assert_int_equal(refcache_client_cancel(f->client, ref, &cancelled, NULL, CALL_MS), REFCACHE_CODE_OK);
    assert_true(cancelled);
    s_poll_until(f->client, ref, p_stopped, 5000, &t);
    assert_int_equal(t->info.result_size, 0);
    refcache_task_destroy(&t);
    /* The same submit again is a new task, not a hit on the cancelled one. */
    assert_int_equal(s_submit(f->client, "spin", kv, NULL, 0, false, &t), REFCACHE_CODE_OK);
    assert_false(t->info.cache_hit);
    assert_false(t->info.deduplicated);
    assert_string_not_equal(t->info.ref_id, ref);
    char ref2[REFCACHE_REF_MAX + 1];
    strcpy(ref2, t->info.ref_id);
    refcache_task_destroy(&t);
    assert_int_equal(refcache_client_cancel(f->client, ref2, &cancelled, NULL, CALL_MS), REFCACHE_CODE_OK);
    assert_true(cancelled);
}

static void test_wait(void **state)
{
    fixture_t *f = *state;
    refcache_task_t *t = NULL;
    const char *kv[] = {"ms=300", NULL};
    assert_int_equal(s_submit(f->client, "sleep", kv, NULL, 0, true, &t), REFCACHE_CODE_OK);
    char ref[REFCACHE_REF_MAX + 1];
    strcpy(ref, t->info.ref_id);
    refcache_task_destroy(&t);
    assert_int_equal(refcache_client_wait(f->client, ref, 5000, &t, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    assert_int_equal(t->info.result_len, strlen("slept 300 ms"));
    assert_memory_equal(t->info.result, "slept 300 ms", t->info.result_len);
    assert_true(t->info.finished_at_us >= t->info.started_at_us &&
                t->info.started_at_us >= t->info.created_at_us);
    assert_int_equal(t->info.attempt, 1);
    refcache_task_destroy(&t);

    /* A Wait that times out answers OK with the current, non-terminal state. */
    const char *kv2[] = {"ms=10000", NULL};
    assert_int_equal(s_submit(f->client, "sleep", kv2, NULL, 0, true, &t), REFCACHE_CODE_OK);
    strcpy(ref, t->info.ref_id);
    refcache_task_destroy(&t);
    uint64_t t0 = rc_mono_us();
    assert_int_equal(refcache_client_wait(f->client, ref, 150, &t, CALL_MS), REFCACHE_CODE_OK);
    assert_true(rc_mono_us() - t0 >= 140000);
    assert_true(t->info.state == REFCACHE_STATE_PENDING || t->info.state == REFCACHE_STATE_PROCESSING);
    refcache_task_destroy(&t);
    assert_int_equal(refcache_client_cancel(f->client, ref, NULL, NULL, CALL_MS), REFCACHE_CODE_OK);

    assert_int_equal(refcache_client_wait(f->client, "00000000000000000000000000000000", 100, &t, CALL_MS),
                     REFCACHE_CODE_NOT_FOUND);
    refcache_task_destroy(&t);
}

/* Waits of more distinct timeouts than the broker has wait lanes (the rest
 * use its timer heap), pipelined out of order, some ended early by their
 * task: each is answered once, never before its time; then lanes freed by
 * the first round serve new timeouts. */
static void test_wait_lanes(void **state)
{
    fixture_t *f = *state;
    refcache_task_t *t = NULL;
    const char *kv_long[] = {"ms=10000", NULL}, *kv_short[] = {"ms=150", NULL};
    char slow[REFCACHE_REF_MAX + 1], quick[REFCACHE_REF_MAX + 1];
    assert_int_equal(s_submit(f->client, "sleep", kv_long, NULL, 0, true, &t), REFCACHE_CODE_OK);
    strcpy(slow, t->info.ref_id);
    refcache_task_destroy(&t);
    assert_int_equal(s_submit(f->client, "sleep", kv_short, NULL, 0, true, &t), REFCACHE_CODE_OK);
    strcpy(quick, t->info.ref_id);
    refcache_task_destroy(&t);

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
            assert_int_equal(refcache_client_send_wait(f->client, on_quick ? quick : slow,
                                                       (uint32_t) timeout_ms[i], &ids[i]),
                             0);
        }
        for (int got = 0; got < N; got++) {
            refcache_reply_t r;
            assert_int_equal(refcache_client_recv(f->client, &r, 10000), 0);
            uint64_t now = rc_mono_us();
            assert_int_equal(r.code, REFCACHE_CODE_OK);
            int i = 0;
            while (i < N && ids[i] != r.id)
                i++;
            assert_true(i < N);
            assert_false(answered[i]);
            answered[i] = true;
            if (timeout_ms[i] == 5000) { /* ended by its task, long before its time */
                assert_int_equal(r.task.state, REFCACHE_STATE_COMPLETE);
                assert_true(now - sent_us[i] < 4000000);
            } else {
                assert_true(r.task.state == REFCACHE_STATE_PROCESSING);
                assert_true(now - sent_us[i] >= timeout_ms[i] * 1000 - 1000);
            }
        }
    }
    refcache_stats_t st;
    assert_int_equal(refcache_client_stats(f->client, &st, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(st.waiters, 0);
    assert_int_equal(refcache_client_cancel(f->client, slow, NULL, NULL, CALL_MS), REFCACHE_CODE_OK);
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
    refcache_task_t *t = NULL;
    const char *kv[] = {"n=2000000", NULL};
    assert_int_equal(s_submit(f->client, "primes", kv, NULL, 30000, false, &t), REFCACHE_CODE_OK);
    if (t->info.state != REFCACHE_STATE_COMPLETE) {
        char ref[REFCACHE_REF_MAX + 1];
        strcpy(ref, t->info.ref_id);
        refcache_task_destroy(&t);
        assert_int_equal(s_wait_terminal(f->client, ref, &t, 60000), REFCACHE_STATE_COMPLETE);
    }
    char ref[REFCACHE_REF_MAX + 1];
    strcpy(ref, t->info.ref_id);
    size_t want_len;
    char *want = s_local_primes(2000000, &want_len);
    assert_int_equal(t->info.result_size, want_len);
    assert_true(t->info.result_truncated);
    assert_true(t->info.result_len > 0 && t->info.result_len < want_len);
    assert_memory_equal(t->info.result, want, t->info.result_len); /* the preview */
    refcache_task_destroy(&t);

    uint8_t *data;
    size_t len;
    assert_int_equal(refcache_client_fetch_all(f->client, ref, 0, &data, &len, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(len, want_len);
    assert_memory_equal(data, want, len);
    free(data);
    /* Smaller, odd-sized pages reassemble to the same bytes. */
    assert_int_equal(refcache_client_fetch_all(f->client, ref, 99991, &data, &len, CALL_MS),
                     REFCACHE_CODE_OK);
    assert_int_equal(len, want_len);
    assert_memory_equal(data, want, len);
    free(data);

    refcache_page_t *page = NULL;
    assert_int_equal(refcache_client_fetch(f->client, ref, 1000, 10, &page, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(page->info.len, 10);
    assert_int_equal(page->info.total_size, want_len);
    assert_memory_equal(page->info.data, want + 1000, 10);
    refcache_page_destroy(&page);
    assert_int_equal(refcache_client_fetch(f->client, ref, want_len + 1, 10, &page, CALL_MS),
                     REFCACHE_CODE_OUT_OF_RANGE);
    refcache_page_destroy(&page);
    free(want);

    /* Not COMPLETE: FAILED_PRECONDITION; unknown: NOT_FOUND. */
    const char *kv2[] = {"ms=10000", NULL};
    assert_int_equal(s_submit(f->client, "sleep", kv2, NULL, 0, true, &t), REFCACHE_CODE_OK);
    strcpy(ref, t->info.ref_id);
    refcache_task_destroy(&t);
    assert_int_equal(refcache_client_fetch(f->client, ref, 0, 0, &page, CALL_MS),
                     REFCACHE_CODE_FAILED_PRECONDITION);
    refcache_page_destroy(&page);
    assert_int_equal(refcache_client_cancel(f->client, ref, NULL, NULL, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(
        refcache_client_fetch(f->client, "00000000000000000000000000000000", 0, 0, &page, CALL_MS),
        REFCACHE_CODE_NOT_FOUND);
    refcache_page_destroy(&page);
}

static void test_cache_and_dedup(void **state)
{
    fixture_t *f = *state;
    refcache_task_t *t = NULL;
    char payload[64];
    snprintf(payload, sizeof payload, "cache-me-%llu", (unsigned long long) rc_wall_us());
    assert_int_equal(s_submit(f->client, "echo", NULL, payload, 3000, false, &t), REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    assert_false(t->info.cache_hit);
    char ref[REFCACHE_REF_MAX + 1];
    strcpy(ref, t->info.ref_id);
    refcache_task_destroy(&t);
    assert_int_equal(s_submit(f->client, "echo", NULL, payload, 3000, false, &t), REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    assert_true(t->info.cache_hit);
    assert_string_not_equal(t->info.ref_id, ref); /* its own handle on the kept result */
    assert_memory_equal(t->info.result, payload, strlen(payload));
    refcache_task_destroy(&t);
    /* no_cache: a new task. */
    assert_int_equal(s_submit(f->client, "echo", NULL, payload, 3000, true, &t), REFCACHE_CODE_OK);
    assert_false(t->info.cache_hit);
    assert_string_not_equal(t->info.ref_id, ref);
    refcache_task_destroy(&t);

    /* Two identical slow cacheable submits, pipelined: one task, two
     * handles. */
    refcache_param_t params[] = {{"iterations", "3000000000"}, {"step", "1000"}};
    refcache_submit_options_t opts;
    refcache_submit_options_init(&opts);
    opts.params = params;
    opts.param_count = 2;
    uint64_t id1, id2;
    assert_int_equal(refcache_client_send_submit(f->client, "spin", &opts, &id1), 0);
    assert_int_equal(refcache_client_send_submit(f->client, "spin", &opts, &id2), 0);
    char refs[2][REFCACHE_REF_MAX + 1];
    bool dedup[2] = {false, false};
    for (int i = 0; i < 2; i++) {
        refcache_reply_t r;
        assert_int_equal(refcache_client_recv(f->client, &r, CALL_MS), 0);
        assert_int_equal(r.code, REFCACHE_CODE_OK);
        assert_int_equal(r.kind, REFCACHE_REPLY_SUBMIT);
        int slot = r.id == id1 ? 0 : 1;
        assert_true(r.id == id1 || r.id == id2);
        strcpy(refs[slot], r.task.ref_id);
        dedup[slot] = r.task.deduplicated;
    }
    assert_string_not_equal(refs[0], refs[1]);
    assert_false(dedup[0]);
    assert_true(dedup[1]);
    refcache_stats_t s;
    assert_int_equal(refcache_client_stats(f->client, &s, CALL_MS), REFCACHE_CODE_OK);
    assert_true(s.cache_hits_total >= 1);
    assert_true(s.dedup_total >= 1);
    /* Each handle is cancelled on its own (the work stops with the last:
     * test_handles has the details). */
    for (int i = 0; i < 2; i++) {
        bool cancelled = false;
        assert_int_equal(refcache_client_cancel(f->client, refs[i], &cancelled, NULL, CALL_MS),
                         REFCACHE_CODE_OK);
        assert_true(cancelled);
    }
}

static bool s_gone(refcache_client_t *c, const char *ref)
{
    refcache_task_t *t = NULL;
    int rc = refcache_client_status(c, ref, &t, CALL_MS);
    refcache_task_destroy(&t);
    assert_true(rc == REFCACHE_CODE_OK || rc == REFCACHE_CODE_NOT_FOUND);
    return rc == REFCACHE_CODE_NOT_FOUND;
}

static void test_ttl_expiry(void **state)
{
    fixture_t *f = *state;
    refcache_submit_options_t opts;
    refcache_submit_options_init(&opts);
    opts.payload = "short-lived";
    opts.payload_len = strlen("short-lived");
    opts.ttl_s = 1;
    opts.async_timeout_ms = 3000;
    opts.no_cache = true;
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_submit(f->client, "echo", &opts, &t, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    char ref[REFCACHE_REF_MAX + 1];
    strcpy(ref, t->info.ref_id);
    uint64_t done_at = rc_mono_us();
    refcache_task_destroy(&t);
    assert_int_equal(refcache_client_status(f->client, ref, &t, CALL_MS), REFCACHE_CODE_OK);
    assert_true(t->info.expires_at_us > 0);
    refcache_task_destroy(&t);
    while (!s_gone(f->client, ref)) {
        if (rc_mono_us() - done_at > 10000000)
            fail_msg("ttl_s=1 task still there after 10 s");
        zclock_sleep(20); /* a poll interval */
    }
    assert_true(rc_mono_us() - done_at > 500000);
    refcache_stats_t s;
    assert_int_equal(refcache_client_stats(f->client, &s, CALL_MS), REFCACHE_CODE_OK);
    assert_true(s.expired_total >= 1);

    /* Delete drops a terminal task at once. */
    opts.ttl_s = 0;
    assert_int_equal(refcache_client_submit(f->client, "echo", &opts, &t, CALL_MS), REFCACHE_CODE_OK);
    strcpy(ref, t->info.ref_id);
    refcache_task_destroy(&t);
    bool found = false;
    assert_int_equal(refcache_client_delete(f->client, ref, &found, CALL_MS), REFCACHE_CODE_OK);
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
    assert_int_equal(s_raw_exchange(dealer, "\xff\xfe\xfd garbage \x01\x02", 14, &id),
                     REFCACHE_CODE_INVALID_ARGUMENT);
    assert_int_equal(id, 0);
    assert_int_equal(s_raw_exchange(dealer, "", 0, &id), REFCACHE_CODE_INVALID_ARGUMENT);

    Refcache__V1__Request req = REFCACHE__V1__REQUEST__INIT;
    req.id = 77;
    uint8_t buf[64];
    size_t n = refcache__v1__request__pack(&req, buf);
    assert_int_equal(s_raw_exchange(dealer, buf, n, &id), REFCACHE_CODE_INVALID_ARGUMENT);
    assert_true(id == 77 || id == 0);
    zsock_destroy(&dealer);

    /* Requests that decode but make no sense. */
    refcache_task_t *t = NULL;
    assert_int_equal(s_submit(f->client, "", NULL, NULL, 0, false, &t), REFCACHE_CODE_INVALID_ARGUMENT);
    refcache_task_destroy(&t);
    assert_int_equal(s_submit(f->client, "no-such-function", NULL, NULL, 0, false, &t),
                     REFCACHE_CODE_UNIMPLEMENTED);
    refcache_task_destroy(&t);
    assert_true(strlen(refcache_client_message(f->client)) > 0);

    refcache_stats_t s;
    assert_int_equal(refcache_client_stats(f->client, &s, CALL_MS), REFCACHE_CODE_OK);
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
    refcache_submit_options_t opts;
    refcache_submit_options_init(&opts);
    opts.payload = "p";
    opts.payload_len = 1;
    opts.no_cache = true;
    opts.async_timeout_ms = 10000;
    uint64_t first = 0, id;
    for (int i = 0; i < N; i++) {
        assert_int_equal(refcache_client_send_submit(f->client, "echo", &opts, &id), 0);
        if (i == 0)
            first = id;
    }
    int complete = 0;
    for (int i = 0; i < N; i++) {
        refcache_reply_t r;
        assert_int_equal(refcache_client_recv(f->client, &r, 20000), 0);
        assert_true(r.id >= first && r.id < first + N);
        assert_false(seen[r.id - first]);
        seen[r.id - first] = true;
        assert_int_equal(r.code, REFCACHE_CODE_OK);
        if (r.task.state == REFCACHE_STATE_COMPLETE)
            complete++;
    }
    assert_int_equal(complete, N);
}

static refcache_client_t *s_client_in(fixture_t *f, const char *ns)
{
    refcache_client_options_t opts;
    refcache_client_options_init(&opts);
    opts.endpoint = rc_broker_endpoint(f->broker, RC_EP_CLIENTS);
    opts.namespace_name = ns;
    char err[256] = "";
    refcache_client_t *c = refcache_client_new(&opts, err, sizeof err);
    if (!c)
        fail_msg("refcache_client_new: %s", err);
    return c;
}

/* From outside its namespace a task does not exist: every call that names it
 * answers NOT_FOUND, and cancel cancels nothing. */
static void s_expect_invisible(refcache_client_t *c, const char *ref)
{
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_status(c, ref, &t, CALL_MS), REFCACHE_CODE_NOT_FOUND);
    assert_null(t); /* an error reply carries no task */
    refcache_task_destroy(&t);
    assert_int_equal(refcache_client_wait(c, ref, 50, &t, CALL_MS), REFCACHE_CODE_NOT_FOUND);
    refcache_task_destroy(&t);
    refcache_page_t *page = NULL;
    assert_int_equal(refcache_client_fetch(c, ref, 0, 0, &page, CALL_MS), REFCACHE_CODE_NOT_FOUND);
    refcache_page_destroy(&page);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(refcache_client_fetch_all(c, ref, 0, &data, &len, CALL_MS), REFCACHE_CODE_NOT_FOUND);
    assert_null(data);
    bool cancelled = true;
    int st = -1;
    assert_int_equal(refcache_client_cancel(c, ref, &cancelled, &st, CALL_MS), REFCACHE_CODE_NOT_FOUND);
    assert_false(cancelled);
    bool found = true;
    assert_int_equal(refcache_client_delete(c, ref, &found, CALL_MS), REFCACHE_CODE_NOT_FOUND);
    assert_false(found);
    /* The pipelined calls carry the namespace too. */
    uint64_t id;
    refcache_reply_t r;
    assert_int_equal(refcache_client_send_status(c, ref, &id), 0);
    assert_int_equal(refcache_client_recv(c, &r, CALL_MS), 0);
    assert_int_equal(r.id, id);
    assert_int_equal(r.code, REFCACHE_CODE_NOT_FOUND);
    assert_int_equal(refcache_client_send_cancel(c, ref, &id), 0);
    assert_int_equal(refcache_client_recv(c, &r, CALL_MS), 0);
    assert_int_equal(r.id, id);
    assert_int_equal(r.code, REFCACHE_CODE_NOT_FOUND);
    assert_false(r.cancelled);
}

/* A task is found only in the namespace it was submitted in; the client
 * sends its connection's namespace on every request. */
static void test_namespace_scoping(void **state)
{
    fixture_t *f = *state;
    refcache_client_t *a = s_client_in(f, "team-a");
    refcache_client_t *b = s_client_in(f, "team-b");
    refcache_client_t *empty = s_client_in(f, ""); /* "" is the default namespace */

    /* Submitted through the team-a connection, no namespace of its own. */
    refcache_task_t *t = NULL;
    const char *kv[] = {"ms=2000", NULL};
    assert_int_equal(s_submit(a, "sleep", kv, NULL, 0, true, &t), REFCACHE_CODE_OK);
    assert_string_equal(t->info.namespace_name, "team-a");
    char ref[REFCACHE_REF_MAX + 1];
    strcpy(ref, t->info.ref_id);
    refcache_task_destroy(&t);

    s_expect_invisible(f->client, ref);
    s_expect_invisible(b, ref);
    s_expect_invisible(empty, ref);

    /* Still running: nobody else's cancel touched it. */
    assert_int_equal(refcache_client_status(a, ref, &t, CALL_MS), REFCACHE_CODE_OK);
    assert_string_equal(t->info.ref_id, ref);
    assert_string_equal(t->info.namespace_name, "team-a");
    assert_true(t->info.state == REFCACHE_STATE_PENDING || t->info.state == REFCACHE_STATE_PROCESSING);
    refcache_task_destroy(&t);
    assert_int_equal(refcache_client_wait(a, ref, 10, &t, CALL_MS), REFCACHE_CODE_OK);
    assert_true(t->info.state == REFCACHE_STATE_PENDING || t->info.state == REFCACHE_STATE_PROCESSING);
    refcache_task_destroy(&t);
    refcache_page_t *page = NULL;
    int rc = refcache_client_fetch(a, ref, 0, 0, &page, CALL_MS); /* found, but not COMPLETE */
    assert_true(rc != REFCACHE_CODE_NOT_FOUND && rc != REFCACHE_CODE_OK);
    refcache_page_destroy(&page);
    uint64_t id;
    refcache_reply_t r;
    assert_int_equal(refcache_client_send_status(a, ref, &id), 0);
    assert_int_equal(refcache_client_recv(a, &r, CALL_MS), 0);
    assert_int_equal(r.id, id);
    assert_int_equal(r.code, REFCACHE_CODE_OK);
    assert_string_equal(r.task.namespace_name, "team-a");

    bool cancelled = false;
    int st = 0;
    assert_int_equal(refcache_client_cancel(a, ref, &cancelled, &st, CALL_MS), REFCACHE_CODE_OK);
    assert_true(cancelled);
    assert_int_equal(st, REFCACHE_STATE_CANCELLED);
    s_expect_invisible(b, ref); /* terminal now: still invisible elsewhere */
    bool found = false;
    assert_int_equal(refcache_client_delete(a, ref, &found, CALL_MS), REFCACHE_CODE_OK);
    assert_true(found);
    assert_int_equal(refcache_client_status(a, ref, &t, CALL_MS), REFCACHE_CODE_NOT_FOUND);
    refcache_task_destroy(&t);

    /* A submit's own namespace wins over the connection's. */
    refcache_submit_options_t opts;
    refcache_submit_options_init(&opts);
    opts.payload = "ns";
    opts.payload_len = 2;
    opts.async_timeout_ms = 3000;
    opts.no_cache = true;
    opts.namespace_name = "team-a";
    assert_int_equal(refcache_client_submit(b, "echo", &opts, &t, CALL_MS), REFCACHE_CODE_OK);
    assert_string_equal(t->info.namespace_name, "team-a");
    strcpy(ref, t->info.ref_id);
    refcache_task_destroy(&t);
    assert_int_equal(refcache_client_status(b, ref, &t, CALL_MS), REFCACHE_CODE_NOT_FOUND);
    refcache_task_destroy(&t);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(refcache_client_fetch_all(a, ref, 0, &data, &len, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(len, 2);
    assert_memory_equal(data, "ns", 2);
    free(data);

    refcache_client_destroy(&empty);
    refcache_client_destroy(&b);
    refcache_client_destroy(&a);
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
        cmocka_unit_test(test_held_cancel_board_full),
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
