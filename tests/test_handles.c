/* Shared work without shared fate: every Submit gets a handle of its own,
 * also when it joins identical work in flight or hits a kept result, and
 * one client's Cancel, Delete, deadline or TTL acts on its own handle only.
 * A real broker with a real worker pool whose cacheable `gate` job runs
 * until the test opens the gate (or the job is cancelled), so every step is
 * decided by the test, not by timing; the job counts its starts and stops,
 * so "the computation really stopped" is seen from the worker's side. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <czmq.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_broker.h"
#include "rc_common.h"
#include "rc_testkit.h"
#include "refcache.h"
#include "refcache_worker.h"

#define CALL_MS 5000

static atomic_bool s_open;     /* the gate: jobs waiting on it finish */
static atomic_int s_started;   /* gate jobs that began */
static atomic_int s_stopped;   /* gate jobs that saw their cancel and stopped */
static atomic_int s_finished;  /* gate jobs that returned their result */

/* Waits for the gate in 2 ms steps, cancellable at each; returns the payload. */
static int gate_job(refcache_job_t *job)
{
    atomic_fetch_add(&s_started, 1);
    while (!atomic_load(&s_open)) {
        if (refcache_job_sleep(job, 2)) {
            atomic_fetch_add(&s_stopped, 1);
            return 0;
        }
    }
    size_t len;
    const void *p = refcache_job_payload(job, &len);
    refcache_job_result(job, p, len);
    atomic_fetch_add(&s_finished, 1);
    return 0;
}

typedef struct {
    rc_broker_t *broker;
    refcache_pool_t *pool;
    refcache_client_t *a, *b; /* two independent programs */
} fixture_t;

static void s_stats(refcache_client_t *c, refcache_stats_t *s)
{
    assert_int_equal(refcache_client_stats(c, s, CALL_MS), REFCACHE_CODE_OK);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    rc_broker_config_t config;
    rc_testkit_config(&config);
    config.workers = 0;
    config.heartbeat_ms = 200;
    f->broker = rc_testkit_broker(&config);
    static const refcache_function_t fns[] = {{"gate", gate_job, true}};
    char err[256] = "";
    refcache_pool_config_t pc = {
        .work_endpoint = rc_broker_endpoint(f->broker, RC_EP_WORKERS),
        .control_endpoint = rc_broker_endpoint(f->broker, RC_EP_CONTROL),
        .threads = 2,
        .functions = fns,
        .function_count = 1,
    };
    f->pool = refcache_pool_new(&pc, err, sizeof err);
    if (!f->pool)
        fail_msg("refcache_pool_new: %s", err);
    f->a = rc_testkit_client(f->broker);
    f->b = rc_testkit_client(f->broker);
    int64_t until = zclock_mono() + CALL_MS;
    refcache_stats_t s;
    do {
        s_stats(f->a, &s);
    } while (s.workers < 2 && zclock_mono() < until && (zclock_sleep(5), 1));
    assert_int_equal(s.workers, 2);
    atomic_store(&s_open, false);
    atomic_store(&s_started, 0);
    atomic_store(&s_stopped, 0);
    atomic_store(&s_finished, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    atomic_store(&s_open, true);
    refcache_client_destroy(&f->a);
    refcache_client_destroy(&f->b);
    refcache_pool_destroy(&f->pool);
    rc_broker_destroy(&f->broker);
    free(f);
    return 0;
}

/* Submits gate(payload) and returns the handle's ref_id in ref. */
static refcache_task_t *s_gate(refcache_client_t *c, const char *payload, uint32_t ttl_s, uint32_t deadline_ms,
                               char ref[REFCACHE_REF_MAX + 1])
{
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.payload = payload;
    o.payload_len = strlen(payload);
    o.ttl_s = ttl_s;
    o.deadline_ms = deadline_ms;
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_submit(c, "gate", &o, &t, CALL_MS), REFCACHE_CODE_OK);
    strcpy(ref, t->info.ref_id);
    return t;
}

static int s_state(refcache_client_t *c, const char *ref)
{
    refcache_task_t *t = NULL;
    int rc = refcache_client_status(c, ref, &t, CALL_MS);
    int st = rc == REFCACHE_CODE_OK ? t->info.state : -rc;
    refcache_task_destroy(&t);
    return st;
}

/* Polls until cond() holds, up to CALL_MS. */
static void s_until(bool (*cond)(void), const char *what)
{
    int64_t until = zclock_mono() + CALL_MS;
    while (!cond()) {
        if (zclock_mono() > until)
            fail_msg("timed out waiting for %s", what);
        zclock_sleep(2);
    }
}

static bool one_started(void)
{
    return atomic_load(&s_started) >= 1;
}

static bool one_stopped(void)
{
    return atomic_load(&s_stopped) >= 1;
}

/* Waits until the handle's Wait says it is terminal; returns the state. */
static int s_wait(refcache_client_t *c, const char *ref, refcache_task_t **t)
{
    for (int i = 0; i < 50; i++) {
        assert_int_equal(refcache_client_wait(c, ref, 200, t, CALL_MS), REFCACHE_CODE_OK);
        if ((*t)->info.state >= REFCACHE_STATE_COMPLETE)
            return (*t)->info.state;
        refcache_task_destroy(t);
    }
    fail_msg("%s never ended", ref);
    return -1;
}

/* Two programs submit the same cacheable work: one task, two handles. A's
 * Cancel ends A's handle only; B's goes on to its result; the job never
 * stopped and ran once. */
static void test_cancel_of_one_handle_spares_the_other(void **state)
{
    fixture_t *f = *state;
    char ra[REFCACHE_REF_MAX + 1], rb[REFCACHE_REF_MAX + 1];
    refcache_task_t *a = s_gate(f->a, "shared", 0, 0, ra);
    s_until(one_started, "the gate job to start");
    refcache_task_t *b = s_gate(f->b, "shared", 0, 0, rb);
    assert_string_not_equal(ra, rb);
    assert_false(a->info.deduplicated);
    assert_true(b->info.deduplicated);
    refcache_task_destroy(&a);
    refcache_task_destroy(&b);

    bool cancelled = false;
    int st = 0;
    assert_int_equal(refcache_client_cancel(f->a, ra, &cancelled, &st, CALL_MS), REFCACHE_CODE_OK);
    assert_true(cancelled); /* A's handle moved to CANCELLED... */
    assert_int_equal(st, REFCACHE_STATE_CANCELLED);
    assert_int_equal(s_state(f->a, ra), REFCACHE_STATE_CANCELLED);
    assert_int_equal(s_state(f->b, rb), REFCACHE_STATE_PROCESSING); /* ...B's did not */
    /* A second cancel of A's handle: idempotent. */
    assert_int_equal(refcache_client_cancel(f->a, ra, &cancelled, &st, CALL_MS), REFCACHE_CODE_OK);
    assert_false(cancelled);

    atomic_store(&s_open, true);
    refcache_task_t *t = NULL;
    assert_int_equal(s_wait(f->b, rb, &t), REFCACHE_STATE_COMPLETE);
    assert_int_equal(t->info.result_len, strlen("shared"));
    assert_memory_equal(t->info.result, "shared", strlen("shared"));
    refcache_task_destroy(&t);
    /* A's handle tells its own truth: cancelled, no result. */
    assert_int_equal(refcache_client_status(f->a, ra, &t, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_CANCELLED);
    assert_int_equal(t->info.error_code, REFCACHE_CODE_CANCELLED);
    assert_int_equal(t->info.result_size, 0);
    refcache_task_destroy(&t);
    refcache_page_t *page = NULL;
    assert_int_equal(refcache_client_fetch(f->a, ra, 0, 0, &page, CALL_MS), REFCACHE_CODE_FAILED_PRECONDITION);
    refcache_page_destroy(&page);
    assert_int_equal(atomic_load(&s_started), 1);
    assert_int_equal(atomic_load(&s_stopped), 0);
}

/* The work stops when the last handle that wants it is cancelled. */
static void test_last_cancel_stops_the_work(void **state)
{
    fixture_t *f = *state;
    char ra[REFCACHE_REF_MAX + 1], rb[REFCACHE_REF_MAX + 1];
    refcache_task_t *a = s_gate(f->a, "both cancel", 0, 0, ra);
    refcache_task_t *b = s_gate(f->b, "both cancel", 0, 0, rb);
    refcache_task_destroy(&a);
    refcache_task_destroy(&b);
    s_until(one_started, "the gate job to start");
    bool cancelled = false;
    assert_int_equal(refcache_client_cancel(f->b, rb, &cancelled, NULL, CALL_MS), REFCACHE_CODE_OK);
    assert_true(cancelled);
    assert_int_equal(atomic_load(&s_stopped), 0);
    assert_int_equal(refcache_client_cancel(f->a, ra, &cancelled, NULL, CALL_MS), REFCACHE_CODE_OK);
    assert_true(cancelled);
    s_until(one_stopped, "the job to see its cancel");
    refcache_task_t *t = NULL;
    assert_int_equal(s_wait(f->a, ra, &t), REFCACHE_STATE_CANCELLED);
    refcache_task_destroy(&t);
    assert_int_equal(s_state(f->b, rb), REFCACHE_STATE_CANCELLED);
    assert_int_equal(atomic_load(&s_finished), 0);
}

/* A Delete drops the caller's handle; the result stays for the other
 * handle, and goes with the last one. */
static void test_delete_keeps_the_result_for_others(void **state)
{
    fixture_t *f = *state;
    atomic_store(&s_open, true);
    char ra[REFCACHE_REF_MAX + 1], rb[REFCACHE_REF_MAX + 1], rc[REFCACHE_REF_MAX + 1];
    refcache_task_t *a = s_gate(f->a, "kept", 0, 0, ra);
    refcache_task_t *t = NULL;
    assert_int_equal(s_wait(f->a, ra, &t), REFCACHE_STATE_COMPLETE);
    refcache_task_destroy(&t);
    refcache_task_destroy(&a);
    /* B hits the kept result: a handle of its own. */
    refcache_task_t *b = s_gate(f->b, "kept", 0, 0, rb);
    assert_true(b->info.cache_hit);
    assert_int_equal(b->info.state, REFCACHE_STATE_COMPLETE);
    assert_string_not_equal(ra, rb);
    refcache_task_destroy(&b);

    bool found = false;
    assert_int_equal(refcache_client_delete(f->a, ra, &found, CALL_MS), REFCACHE_CODE_OK);
    assert_true(found);
    assert_int_equal(s_state(f->a, ra), -REFCACHE_CODE_NOT_FOUND);
    refcache_page_t *page = NULL;
    assert_int_equal(refcache_client_fetch(f->b, rb, 0, 0, &page, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(page->info.len, strlen("kept"));
    assert_memory_equal(page->info.data, "kept", strlen("kept"));
    refcache_page_destroy(&page);
    refcache_stats_t s;
    s_stats(f->b, &s);
    assert_int_equal(s.cache_bytes, strlen("kept"));
    /* A third program still hits the result B holds. */
    refcache_task_t *c = s_gate(f->a, "kept", 0, 0, rc);
    assert_true(c->info.cache_hit);
    refcache_task_destroy(&c);
    assert_int_equal(refcache_client_delete(f->a, rc, &found, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(refcache_client_delete(f->b, rb, &found, CALL_MS), REFCACHE_CODE_OK);
    assert_true(found);
    /* The last handle went: so did the result. */
    s_stats(f->b, &s);
    assert_int_equal(s.cache_bytes, 0);
    assert_int_equal(s.tasks_complete, 0);
    refcache_task_t *d = s_gate(f->b, "kept", 0, 0, rc);
    assert_false(d->info.cache_hit);
    refcache_task_destroy(&d);
    assert_int_equal(s_wait(f->b, rc, &d), REFCACHE_STATE_COMPLETE);
    refcache_task_destroy(&d);
    assert_int_equal(atomic_load(&s_started), 2); /* it ran again */
}

/* A handle's deadline is its own: B's passing fails B's handle while A's
 * goes on; the work was never stopped. */
static void test_deadline_of_one_handle(void **state)
{
    fixture_t *f = *state;
    char ra[REFCACHE_REF_MAX + 1], rb[REFCACHE_REF_MAX + 1];
    refcache_task_t *a = s_gate(f->a, "deadlines", 0, 0, ra);
    refcache_task_t *b = s_gate(f->b, "deadlines", 0, 100, rb);
    refcache_task_destroy(&a);
    refcache_task_destroy(&b);
    refcache_task_t *t = NULL;
    assert_int_equal(s_wait(f->b, rb, &t), REFCACHE_STATE_FAILED);
    assert_int_equal(t->info.error_code, REFCACHE_CODE_DEADLINE_EXCEEDED);
    refcache_task_destroy(&t);
    assert_int_equal(s_state(f->a, ra), REFCACHE_STATE_PROCESSING);
    atomic_store(&s_open, true);
    assert_int_equal(s_wait(f->a, ra, &t), REFCACHE_STATE_COMPLETE);
    refcache_task_destroy(&t);
    assert_int_equal(atomic_load(&s_stopped), 0);
    assert_int_equal(atomic_load(&s_finished), 1);
}

/* The first submitter's handle leaves; the one who joined later holds the
 * record alone, and the record and its result live as long as that handle:
 * each handle's TTL is its own. */
static void test_ttls_count_per_handle(void **state)
{
    fixture_t *f = *state;
    atomic_store(&s_open, true);
    char ra[REFCACHE_REF_MAX + 1], rb[REFCACHE_REF_MAX + 1];
    refcache_task_t *a = s_gate(f->a, "ttl", 1, 0, ra);
    refcache_task_t *t = NULL;
    assert_int_equal(s_wait(f->a, ra, &t), REFCACHE_STATE_COMPLETE);
    refcache_task_destroy(&t);
    refcache_task_destroy(&a);
    refcache_task_t *b = s_gate(f->b, "ttl", 3, 0, rb);
    assert_true(b->info.cache_hit);
    refcache_task_destroy(&b);
    int64_t until = zclock_mono() + 2500;
    while (s_state(f->a, ra) != -REFCACHE_CODE_NOT_FOUND && zclock_mono() < until)
        zclock_sleep(20);
    assert_int_equal(s_state(f->a, ra), -REFCACHE_CODE_NOT_FOUND); /* A's TTL: 1 s */
    assert_int_equal(s_state(f->b, rb), REFCACHE_STATE_COMPLETE);   /* B's: 3 s from its hit */
    refcache_page_t *page = NULL;
    assert_int_equal(refcache_client_fetch(f->b, rb, 0, 0, &page, CALL_MS), REFCACHE_CODE_OK);
    refcache_page_destroy(&page);
    until = zclock_mono() + 4000;
    while (s_state(f->b, rb) != -REFCACHE_CODE_NOT_FOUND && zclock_mono() < until)
        zclock_sleep(20);
    assert_int_equal(s_state(f->b, rb), -REFCACHE_CODE_NOT_FOUND);
    refcache_stats_t s;
    s_stats(f->b, &s);
    assert_int_equal(s.cache_bytes, 0);
    assert_true(s.expired_total >= 1);
}

/* A Wait on each handle is answered with that handle's truth. */
static void test_waits_per_handle(void **state)
{
    fixture_t *f = *state;
    char ra[REFCACHE_REF_MAX + 1], rb[REFCACHE_REF_MAX + 1];
    refcache_task_t *a = s_gate(f->a, "waits", 0, 0, ra);
    refcache_task_t *b = s_gate(f->b, "waits", 0, 0, rb);
    refcache_task_destroy(&a);
    refcache_task_destroy(&b);
    uint64_t wa, wb;
    assert_int_equal(refcache_client_send_wait(f->a, ra, 3000, &wa), 0);
    assert_int_equal(refcache_client_send_wait(f->b, rb, 3000, &wb), 0);
    assert_int_equal(refcache_client_flush(f->a), 0);
    assert_int_equal(refcache_client_flush(f->b), 0);
    s_until(one_started, "the gate job to start");
    bool cancelled = false;
    refcache_client_t *c = rc_testkit_client(f->broker);
    assert_int_equal(refcache_client_cancel(c, rb, &cancelled, NULL, CALL_MS), REFCACHE_CODE_OK);
    assert_true(cancelled);
    refcache_reply_t r;
    assert_int_equal(refcache_client_recv(f->b, &r, CALL_MS), 0);
    assert_int_equal(r.id, wb);
    assert_int_equal(r.task.state, REFCACHE_STATE_CANCELLED); /* B's Wait ends with B's cancel */
    atomic_store(&s_open, true);
    assert_int_equal(refcache_client_recv(f->a, &r, CALL_MS), 0);
    assert_int_equal(r.id, wa);
    assert_int_equal(r.task.state, REFCACHE_STATE_COMPLETE); /* A's with the result */
    refcache_client_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cancel_of_one_handle_spares_the_other, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_cancel_stops_the_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_keeps_the_result_for_others, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_of_one_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttls_count_per_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waits_per_handle, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
