/* Rejoin without storms, against a real broker in this process and
 * hand-driven workers (rc_handworker): a stranger's burst of messages draws
 * one Reannounce; a Ready again of the same session releases nothing; a new
 * session's report settles the one before (started attempts are lost, the
 * others go back uncounted); a worker declared lost keeps what it may never
 * have started until it comes back with its report, or until its grace
 * ends; a worker silent for two heartbeats is sent nothing new; a goodbye
 * gives held tasks back uncounted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_broker.h"
#include "rc_common.h"
#include "rc_handworker.h"
#include "rc_testkit.h"
#include "refcache.h"

#define CALL_MS   5000
#define HEARTBEAT 200
#define LIVENESS  3 /* lost after 600 ms of silence */

typedef struct {
    rc_broker_t *broker;
    refcache_client_t *client;
    rc_hw_t a, b;
} fixture_t;

static int setup_liveness(void **state, uint32_t liveness)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    rc_broker_config_t config;
    rc_testkit_config(&config);
    config.heartbeat_ms = HEARTBEAT;
    config.liveness = liveness;
    /* A busy hand-driven worker may hold several tasks. */
    config.dispatch_window_us = 60000000;
    f->broker = rc_testkit_broker(&config);
    f->client = rc_testkit_client(f->broker);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_liveness(state, LIVENESS);
}

/* A worker is lost only after 2 s: room to watch one silent for longer
 * than two heartbeats. */
static int setup_slow_loss(void **state)
{
    return setup_liveness(state, 10);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    rc_hw_close(&f->a);
    rc_hw_close(&f->b);
    refcache_client_destroy(&f->client);
    rc_broker_destroy(&f->broker);
    free(f);
    return 0;
}

/* Submits a task of the hand-driven function "job"; its ref_id in ref. */
static void submit(fixture_t *f, char ref[33])
{
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.no_cache = true;
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_submit(f->client, "job", &o, &t, CALL_MS), REFCACHE_CODE_OK);
    snprintf(ref, 33, "%.32s", t->info.ref_id);
    refcache_task_destroy(&t);
}

static refcache_task_t *status(fixture_t *f, const char *ref)
{
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_status(f->client, ref, &t, CALL_MS), REFCACHE_CODE_OK);
    return t;
}

/* Polls Status until ref is in state (and attempt, unless 0), up to ms. */
static void wait_state(fixture_t *f, const char *ref, int state, uint32_t attempt, int ms)
{
    uint64_t deadline = rc_mono_us() + (uint64_t) ms * 1000;
    for (;;) {
        refcache_task_t *t = status(f, ref);
        bool ok = t->info.state == state && (!attempt || t->info.attempt == attempt);
        int got = t->info.state;
        uint32_t got_attempt = t->info.attempt;
        refcache_task_destroy(&t);
        if (ok)
            return;
        if (rc_mono_us() > deadline)
            fail_msg("task %s: %s attempt %u, not %s after %d ms", ref, rc_state_name(got), got_attempt,
                     rc_state_name(state), ms);
        zclock_sleep(10); /* a poll interval, not a synchronisation */
    }
}

static void expect_task(fixture_t *f, const char *ref, int state, uint32_t attempt)
{
    refcache_task_t *t = status(f, ref);
    if (t->info.state != state || t->info.attempt != attempt)
        fail_msg("task %s: %s attempt %u, expected %s attempt %u", ref, rc_state_name(t->info.state),
                 t->info.attempt, rc_state_name(state), attempt);
    refcache_task_destroy(&t);
}

/* Runs one task on hw: the broker then knows the function is quick, and
 * sends a busy worker more within its dispatch window. */
static void warm_up(fixture_t *f, rc_hw_t *hw)
{
    char ref[33];
    submit(f, ref);
    rc_hw_ref_t t;
    size_t n = 0;
    assert_int_equal(rc_hw_take(hw, CALL_MS, &t, &n, 1), 1);
    rc_hw_result(hw, &t, "warm");
    wait_state(f, ref, REFCACHE_STATE_COMPLETE, 1, CALL_MS);
}

/* Announces worker hw (session) serving "job" and waits until the broker
 * counts `workers`. */
static void join(fixture_t *f, rc_hw_t *hw, const char *id, uint64_t session, uint32_t credit,
                 uint64_t workers)
{
    rc_hw_open(hw, f->broker, id);
    hw->session = session;
    rc_hw_ready(hw, "job", credit, HEARTBEAT, 0, NULL, NULL, 0);
    rc_testkit_wait_workers(f->client, workers, CALL_MS);
    if (workers == 1)
        warm_up(f, hw);
}

/* Submits n tasks and takes their dispatches on hw. */
static void hold(fixture_t *f, rc_hw_t *hw, size_t n, rc_hw_ref_t *held)
{
    for (size_t i = 0; i < n; i++) {
        char ref[33];
        submit(f, ref);
        size_t got = i;
        assert_int_equal(rc_hw_take(hw, CALL_MS, held, &got, n), 1);
        assert_string_equal(held[i].ref, ref);
        assert_int_equal(held[i].attempt, 1);
    }
}

/* Takes the next two dispatches on hw, both at attempt 1 (given back
 * uncounted), and finishes them with data. */
static void finish_two(rc_hw_t *hw, const char *data)
{
    rc_hw_ref_t two[2];
    size_t n = 0;
    while (n < 2 && rc_hw_take(hw, CALL_MS, two, &n, 2))
        ;
    assert_int_equal(n, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(two[i].attempt, 1);
        rc_hw_result(hw, &two[i], data);
    }
}

/* Reads hw's messages until it has had `want` Reannounces (or CALL_MS
 * passed: a slow run, under valgrind, takes long to get there), then for
 * half a heartbeat more, so that one too many would be seen. */
static void drain_reannounces(rc_hw_t *hw, unsigned want)
{
    uint64_t deadline = rc_mono_us() + CALL_MS * 1000ull;
    while (hw->reannounces < want && rc_mono_us() < deadline)
        rc_hw_drain(hw, 20);
    rc_hw_drain(hw, HEARTBEAT / 2);
}

/* ------------------------------------------------------------ tests */

/* A worker the broker does not know, with many messages queued (as after a
 * partition): one Reannounce per heartbeat interval, not one per message. */
static void test_reannounce_once_per_interval(void **state)
{
    fixture_t *f = *state;
    rc_hw_open(&f->a, f->broker, "stranger-1");
    for (int i = 0; i < 200; i++)
        rc_hw_heartbeat(&f->a);
    /* Once the broker has handled the 200, what it sent has been sent. */
    refcache_stats_t s;
    uint64_t deadline = rc_mono_us() + CALL_MS * 1000ull;
    do
        rc_testkit_stats(f->client, &s);
    while (s.stale_msgs_total < 200 && rc_mono_us() < deadline);
    drain_reannounces(&f->a, 1);
    rc_testkit_stats(f->client, &s);
    print_message("200 messages of a stranger: %u Reannounce(s) (broker's count %llu)\n", f->a.reannounces,
                  (unsigned long long) s.reannounces_total);
    assert_int_equal(f->a.reannounces, 1);
    assert_int_equal(s.reannounces_total, 1);
    assert_true(s.stale_msgs_total >= 200);
    /* A heartbeat interval later, the next message draws the next one. */
    zclock_sleep(HEARTBEAT + 20); /* the rate limit's interval itself is what is tested */
    rc_hw_heartbeat(&f->a);
    drain_reannounces(&f->a, 2);
    assert_int_equal(f->a.reannounces, 2);
}

/* The Ready a worker sends again in the same session (as it answers a
 * late Reannounce) changes nothing of what it holds. */
static void test_same_session_ready_keeps_tasks(void **state)
{
    fixture_t *f = *state;
    join(f, &f->a, "same-1", 0x5e55, 4, 1);
    rc_hw_ref_t held[3];
    hold(f, &f->a, 3, held);
    rc_hw_ready(&f->a, "job", 4, HEARTBEAT, 0, NULL, NULL, 0);
    rc_hw_ready(&f->a, "job", 4, HEARTBEAT, 0, NULL, NULL, 0);
    for (int i = 0; i < 3; i++)
        rc_hw_result(&f->a, &held[i], "done");
    for (int i = 0; i < 3; i++)
        wait_state(f, held[i].ref, REFCACHE_STATE_COMPLETE, 1, CALL_MS);
    refcache_stats_t s;
    rc_testkit_stats(f->client, &s);
    assert_int_equal(s.retries_total, 0);
    assert_int_equal(s.failed_total, 0);
    assert_int_equal(s.stale_msgs_total, 0);
}

/* A Ready of a new session that reports the one before: the attempts it
 * started are lost (FAILED here: no retries), the others go back to the
 * queue uncounted and come again with attempt 1. */
static void test_new_session_report_settles(void **state)
{
    fixture_t *f = *state;
    join(f, &f->a, "report-1", 0x1111, 4, 1);
    rc_hw_ref_t held[3];
    hold(f, &f->a, 3, held);
    f->a.session = 0x2222;
    rc_hw_ready(&f->a, "job", 4, HEARTBEAT, 0x1111, f->a.id, &held[0], 1);
    wait_state(f, held[0].ref, REFCACHE_STATE_FAILED, 1, CALL_MS);
    finish_two(&f->a, "done");
    wait_state(f, held[1].ref, REFCACHE_STATE_COMPLETE, 1, CALL_MS);
    wait_state(f, held[2].ref, REFCACHE_STATE_COMPLETE, 1, CALL_MS);
    refcache_stats_t s;
    rc_testkit_stats(f->client, &s);
    assert_int_equal(s.handed_back_total, 2);
    assert_int_equal(s.failed_total, 1);
}

/* Declared lost, a worker keeps the tasks it may never have started: the
 * one it reported Started for is lost at once, the two others wait. When it
 * comes back on new connections with its report (nothing started), they go
 * back uncounted and run there with attempt 1. */
static void test_lost_worker_report_hands_back(void **state)
{
    fixture_t *f = *state;
    join(f, &f->a, "lost-1", 0x3333, 4, 1);
    rc_hw_ref_t held[3];
    hold(f, &f->a, 3, held);
    rc_hw_started(&f->a, &held[0]);
    wait_state(f, held[0].ref, REFCACHE_STATE_FAILED, 1, 5 * HEARTBEAT * LIVENESS);
    refcache_stats_t s;
    rc_testkit_stats(f->client, &s);
    assert_int_equal(s.workers_lost_total, 1);
    assert_int_equal(s.workers, 0);
    expect_task(f, held[1].ref, REFCACHE_STATE_PROCESSING, 1);
    expect_task(f, held[2].ref, REFCACHE_STATE_PROCESSING, 1);

    f->b.session = 0x4444;
    rc_hw_open(&f->b, f->broker, "lost-1.1");
    f->b.session = 0x4444;
    rc_hw_ready(&f->b, "job", 4, HEARTBEAT, 0x3333, "lost-1", NULL, 0);
    finish_two(&f->b, "done");
    wait_state(f, held[1].ref, REFCACHE_STATE_COMPLETE, 1, CALL_MS);
    wait_state(f, held[2].ref, REFCACHE_STATE_COMPLETE, 1, CALL_MS);
    rc_testkit_stats(f->client, &s);
    assert_int_equal(s.handed_back_total, 2);
    assert_int_equal(s.retries_total, 0);
}

/* A lost worker that never comes back: once its grace (two more liveness
 * windows) is over, what waited for it is a lost attempt like any. */
static void test_lost_worker_grace_ends(void **state)
{
    fixture_t *f = *state;
    join(f, &f->a, "gone-1", 0x5555, 4, 1);
    rc_hw_ref_t held[2];
    hold(f, &f->a, 2, held);
    uint64_t start = rc_mono_us();
    rc_testkit_wait_workers(f->client, 0, 5 * HEARTBEAT * LIVENESS);
    expect_task(f, held[0].ref, REFCACHE_STATE_PROCESSING, 1);
    wait_state(f, held[0].ref, REFCACHE_STATE_FAILED, 1, 10 * HEARTBEAT * LIVENESS);
    wait_state(f, held[1].ref, REFCACHE_STATE_FAILED, 1, CALL_MS);
    uint64_t took = rc_mono_us() - start;
    print_message("a lost worker's never-started tasks failed %.2f s after the silence began (liveness "
                  "%.1f s, grace %.1f s)\n",
                  took / 1e6, HEARTBEAT * LIVENESS / 1000.0, 2 * HEARTBEAT * LIVENESS / 1000.0);
    assert_true(took >= 3ull * HEARTBEAT * LIVENESS * 1000 - 100000);
    refcache_task_t *t = status(f, held[0].ref);
    assert_int_equal(t->info.error_code, REFCACHE_CODE_UNAVAILABLE);
    refcache_task_destroy(&t);
}

/* A worker silent for more than two heartbeats (but not yet lost) is sent
 * no new task: they go to the one that speaks. */
static void test_silent_worker_gets_nothing_new(void **state)
{
    fixture_t *f = *state;
    join(f, &f->a, "quiet-1", 0x6666, 4, 1);
    join(f, &f->b, "talks-1", 0x7777, 4, 2);
    uint64_t until = rc_mono_us() + 3 * HEARTBEAT * 1000;
    while (rc_mono_us() < until) {
        rc_hw_heartbeat(&f->b);
        rc_hw_drain(&f->b, HEARTBEAT / 4);
    }
    refcache_stats_t s;
    rc_testkit_stats(f->client, &s);
    assert_int_equal(s.workers, 2); /* a is still known */
    for (int i = 0; i < 6; i++) {
        char ref[33];
        submit(f, ref);
        rc_hw_ref_t t;
        size_t n = 0;
        assert_int_equal(rc_hw_take(&f->b, CALL_MS, &t, &n, 1), 1);
        assert_string_equal(t.ref, ref);
        rc_hw_result(&f->b, &t, "b");
        wait_state(f, ref, REFCACHE_STATE_COMPLETE, 1, CALL_MS);
    }
    assert_int_equal(rc_hw_drain(&f->a, 10), 0);
}

/* A goodbye with the held tasks: they go to the other worker uncounted,
 * and the leaving one gets nothing more and is forgotten once it holds
 * nothing. */
static void test_goodbye_hands_back(void **state)
{
    fixture_t *f = *state;
    join(f, &f->a, "leaving-1", 0x8888, 4, 1);
    rc_hw_ref_t held[3];
    hold(f, &f->a, 3, held);
    join(f, &f->b, "staying-1", 0x9999, 4, 2);
    /* It runs the first and gives back the two others. */
    rc_hw_started(&f->a, &held[0]);
    rc_hw_hand_back(&f->a, &held[1], 2, true);
    finish_two(&f->b, "b");
    rc_testkit_wait_workers(f->client, 1, CALL_MS); /* a is leaving */
    /* More work goes to b alone. */
    char ref[33];
    submit(f, ref);
    rc_hw_ref_t t;
    size_t n = 0;
    assert_int_equal(rc_hw_take(&f->b, CALL_MS, &t, &n, 1), 1);
    rc_hw_result(&f->b, &t, "b");
    rc_hw_result(&f->a, &held[0], "a");
    wait_state(f, held[0].ref, REFCACHE_STATE_COMPLETE, 1, CALL_MS);
    wait_state(f, held[1].ref, REFCACHE_STATE_COMPLETE, 1, CALL_MS);
    wait_state(f, held[2].ref, REFCACHE_STATE_COMPLETE, 1, CALL_MS);
    wait_state(f, ref, REFCACHE_STATE_COMPLETE, 1, CALL_MS);
    assert_int_equal(rc_hw_drain(&f->a, 10), 0);
    refcache_stats_t s;
    rc_testkit_stats(f->client, &s);
    assert_int_equal(s.handed_back_total, 2);
    assert_int_equal(s.retries_total, 0);
    assert_int_equal(s.workers_lost_total, 0);
}

/* A stopping broker tells its workers: the hand-driven one gives back the
 * two tasks it holds and has not started (PENDING again, attempt 0: what a
 * store would recover), finishes the running one, and the drain ends as
 * soon as nothing runs; Submits are refused meanwhile. */
static void test_drain_gives_back_held(void **state)
{
    fixture_t *f = *state;
    join(f, &f->a, "drained-1", 0xaaaa, 4, 1);
    rc_hw_ref_t held[3];
    hold(f, &f->a, 3, held);
    rc_hw_started(&f->a, &held[0]);
    assert_int_equal(rc_broker_drain_start(f->broker, 5000), 0);
    uint64_t deadline = rc_mono_us() + CALL_MS * 1000ull;
    while (!f->a.stoppings && rc_mono_us() < deadline)
        rc_hw_drain(&f->a, 20);
    assert_int_equal(f->a.stoppings, 1);
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    assert_int_equal(refcache_client_submit(f->client, "job", &o, NULL, CALL_MS), REFCACHE_CODE_UNAVAILABLE);
    rc_hw_hand_back(&f->a, &held[1], 2, false);
    wait_state(f, held[1].ref, REFCACHE_STATE_PENDING, 0, CALL_MS);
    wait_state(f, held[2].ref, REFCACHE_STATE_PENDING, 0, CALL_MS);
    expect_task(f, held[1].ref, REFCACHE_STATE_PENDING, 0);
    int processing = -1, pending = -1;
    assert_int_equal(rc_broker_drain_wait(f->broker, 50, &processing, &pending), 0); /* one still runs */
    rc_hw_result(&f->a, &held[0], "done");
    assert_int_equal(rc_broker_drain_wait(f->broker, CALL_MS, &processing, &pending), 1);
    assert_int_equal(processing, 0);
    assert_int_equal(pending, 2);
    wait_state(f, held[0].ref, REFCACHE_STATE_COMPLETE, 1, CALL_MS);
    /* Nothing is dispatched while the broker stops. */
    assert_int_equal(rc_hw_drain(&f->a, 3 * HEARTBEAT), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reannounce_once_per_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_session_ready_keeps_tasks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_session_report_settles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_worker_report_hands_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_worker_grace_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_worker_gets_nothing_new, setup_slow_loss, teardown),
        cmocka_unit_test_setup_teardown(test_goodbye_hands_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_gives_back_held, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
