/* The broker on a store: what a restart keeps. A real broker (rc_broker_new
 * with a store in a fresh directory) is stopped and started again on the
 * same store; finished tasks come back with their results byte for byte,
 * cancelled ones stay cancelled, PENDING ones are queued again in their
 * order, a running one is a lost attempt (retried under its budget),
 * deadlines keep counting from acceptance, handles and request keys
 * survive, a file that is not a store is refused with a clear error, and
 * a damaged one is refused and salvaged (refcache-broker --salvage-to).
 * (test_crash kills the broker instead of stopping it.) */
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
#include <unistd.h>

#include "rc_broker.h"
#include "rc_common.h"
#include "rc_testkit.h"
#include "refcache.h"
#include "refcache_worker.h"

#define CALL_MS 5000

/* ---------------------------------------------------------------- a gated job */

static atomic_bool s_open;
static char s_order[64];
static atomic_int s_order_n;

static int gate_job(refcache_job_t *job)
{
    while (!atomic_load(&s_open))
        if (refcache_job_sleep(job, 2))
            return 0;
    size_t len;
    const void *p = refcache_job_payload(job, &len);
    refcache_job_result(job, p, len);
    return 0;
}

/* Records the order in which its tasks ran (its payload's first byte). */
static int order_job(refcache_job_t *job)
{
    size_t len;
    const char *p = refcache_job_payload(job, &len);
    int i = atomic_fetch_add(&s_order_n, 1);
    if (i < (int) sizeof s_order - 1 && len)
        s_order[i] = p[0];
    refcache_job_result(job, p, len);
    return 0;
}

typedef struct {
    char dir[64], path[96];
    rc_broker_t *broker;
    refcache_pool_t *pool;
    refcache_client_t *c;
} fixture_t;

/* Starts a broker on the fixture's store: with `workers` in-process
 * threads, or (pool) none and a pool of one thread with gate and order. */
static void s_start(fixture_t *f, int workers, bool pool, uint32_t window_us)
{
    rc_broker_config_t cfg;
    rc_testkit_config(&cfg);
    cfg.store_path = f->path;
    cfg.workers = pool ? 0 : workers;
    cfg.retry_base_ms = 50;
    cfg.retry_max_ms = 50;
    cfg.dispatch_window_us = window_us;
    f->broker = rc_testkit_broker(&cfg);
    f->c = rc_testkit_client(f->broker);
    if (pool) {
        static const refcache_function_t fns[] = {{"gate", gate_job, true}, {"order", order_job, false}};
        char err[256] = "";
        refcache_pool_config_t pc = {
            .work_endpoint = rc_broker_endpoint(f->broker, RC_EP_WORKERS),
            .control_endpoint = rc_broker_endpoint(f->broker, RC_EP_CONTROL),
            .threads = 1,
            .credit = 1,
            .functions = fns,
            .function_count = 2,
        };
        f->pool = refcache_pool_new(&pc, err, sizeof err);
        if (!f->pool)
            fail_msg("refcache_pool_new: %s", err);
        rc_testkit_wait_workers(f->c, 1, CALL_MS);
    }
}

/* Stops the broker first: its pool's last words (a stopped job's end)
 * must not reach it, as they would not reach a broker that crashed. */
static void s_stop(fixture_t *f)
{
    refcache_client_destroy(&f->c);
    rc_broker_destroy(&f->broker);
    refcache_pool_destroy(&f->pool);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/rc-store-broker-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/broker.db", f->dir);
    atomic_store(&s_open, false);
    atomic_store(&s_order_n, 0);
    memset(s_order, 0, sizeof s_order);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    atomic_store(&s_open, true);
    s_stop(f);
    zsys_dir_delete("%s", f->dir); /* only when empty: remove its files first */
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

static refcache_task_t *s_submit(refcache_client_t *c, const char *fn, const char *payload, const char *param,
                                 uint32_t async_ms, refcache_submit_options_t *more)
{
    refcache_submit_options_t o;
    if (more)
        o = *more;
    else
        refcache_submit_options_init(&o);
    refcache_param_t p[1];
    if (param) {
        const char *eq = strchr(param, '=');
        static char k[32];
        snprintf(k, sizeof k, "%.*s", (int) (eq - param), param);
        p[0] = (refcache_param_t){k, eq + 1};
        o.params = p;
        o.param_count = 1;
    }
    o.payload = payload;
    o.payload_len = payload ? strlen(payload) : 0;
    o.async_timeout_ms = async_ms;
    refcache_task_t *t = NULL;
    int rc = refcache_client_submit(c, fn, &o, &t, CALL_MS);
    if (rc != REFCACHE_CODE_OK)
        fail_msg("submit %s: %s (%s)", fn, refcache_strerror(rc), refcache_client_message(c));
    return t;
}

static refcache_task_t *s_status(refcache_client_t *c, const char *ref, int want_rc)
{
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_status(c, ref, &t, CALL_MS), want_rc);
    return t;
}

/* Polls Status until the task shows state, up to ms. */
static refcache_task_t *s_until_state(refcache_client_t *c, const char *ref, int state, int ms)
{
    int64_t until = zclock_mono() + ms;
    for (;;) {
        refcache_task_t *t = s_status(c, ref, REFCACHE_CODE_OK);
        if (t->info.state == state)
            return t;
        int was = t->info.state;
        refcache_task_destroy(&t);
        if (zclock_mono() > until)
            fail_msg("%s stayed in state %d, expected %d", ref, was, state);
        zclock_sleep(10);
    }
}

/* ---------------------------------------------------------------- tests */

static void test_finished_tasks_come_back(void **state)
{
    fixture_t *f = *state;
    s_start(f, 2, false, 1000);
    refcache_task_t *echo = s_submit(f->c, "echo", "hello, store", NULL, 3000, NULL);
    refcache_task_t *big = s_submit(f->c, "primes", NULL, "n=300000", 10000, NULL);
    refcache_task_t *fail = s_submit(f->c, "fail", NULL, "message=no luck", 3000, NULL);
    refcache_task_t *slow = s_submit(f->c, "sleep", NULL, "ms=60000", 0, NULL);
    assert_int_equal(echo->info.state, REFCACHE_STATE_COMPLETE);
    assert_int_equal(big->info.state, REFCACHE_STATE_COMPLETE);
    assert_true(big->info.result_truncated);
    assert_int_equal(fail->info.state, REFCACHE_STATE_FAILED);
    bool cancelled = false;
    assert_int_equal(refcache_client_cancel(f->c, slow->info.ref_id, &cancelled, NULL, CALL_MS), 0);
    assert_true(cancelled);
    uint8_t *before = NULL, *after = NULL;
    size_t before_len = 0, after_len = 0;
    assert_int_equal(refcache_client_fetch_all(f->c, big->info.ref_id, 0, &before, &before_len, CALL_MS), 0);
    s_stop(f);

    s_start(f, 2, false, 1000);
    refcache_task_t *t = s_status(f->c, echo->info.ref_id, REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    assert_int_equal(t->info.result_len, strlen("hello, store"));
    assert_memory_equal(t->info.result, "hello, store", t->info.result_len);
    assert_int_equal(t->info.created_at_us, echo->info.created_at_us);
    refcache_task_destroy(&t);
    assert_int_equal(refcache_client_fetch_all(f->c, big->info.ref_id, 0, &after, &after_len, CALL_MS), 0);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len); /* byte for byte */
    t = s_status(f->c, fail->info.ref_id, REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_FAILED);
    assert_string_equal(t->info.error, "no luck");
    refcache_task_destroy(&t);
    t = s_status(f->c, slow->info.ref_id, REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_CANCELLED); /* and never runs again */
    assert_int_equal(t->info.error_code, REFCACHE_CODE_CANCELLED);
    refcache_task_destroy(&t);
    /* The cache and its secret came back: the same echo is a hit. */
    refcache_task_t *hit = s_submit(f->c, "echo", "hello, store", NULL, 0, NULL);
    assert_true(hit->info.cache_hit);
    refcache_task_destroy(&hit);
    refcache_stats_t s;
    rc_testkit_stats(f->c, &s);
    assert_int_equal(s.tasks_processing, 0);
    assert_int_equal(s.tasks_cancelled, 1);
    free(before);
    free(after);
    refcache_task_destroy(&echo);
    refcache_task_destroy(&big);
    refcache_task_destroy(&fail);
    refcache_task_destroy(&slow);
}

static void test_pending_in_order_running_retried(void **state)
{
    fixture_t *f = *state;
    s_start(f, 0, true, 0); /* one thread, credit 1, no dispatch ahead */
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.max_retries = 2;
    o.no_cache = true;
    refcache_task_t *run = s_submit(f->c, "gate", "g", NULL, 0, &o);
    refcache_task_t *t = s_until_state(f->c, run->info.ref_id, REFCACHE_STATE_PROCESSING, CALL_MS);
    refcache_task_destroy(&t);
    char refs[3][REFCACHE_REF_MAX + 1];
    const char *names[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        t = s_submit(f->c, "order", names[i], NULL, 0, NULL);
        assert_int_equal(t->info.state, REFCACHE_STATE_PENDING);
        strcpy(refs[i], t->info.ref_id);
        refcache_task_destroy(&t);
    }
    s_stop(f);

    atomic_store(&s_open, true);
    s_start(f, 0, true, 0);
    /* What was running is a lost attempt: retried, a new attempt. */
    t = s_until_state(f->c, run->info.ref_id, REFCACHE_STATE_COMPLETE, CALL_MS);
    assert_int_equal(t->info.attempt, 2);
    refcache_task_destroy(&t);
    for (int i = 0; i < 3; i++) {
        t = s_until_state(f->c, refs[i], REFCACHE_STATE_COMPLETE, CALL_MS);
        refcache_task_destroy(&t);
    }
    assert_string_equal(s_order, "abc"); /* queued again in the order they came */
    refcache_task_destroy(&run);
}

static void test_deadline_counts_from_acceptance(void **state)
{
    fixture_t *f = *state;
    s_start(f, 0, true, 0); /* one thread, busy with a gate: the next task waits PENDING */
    refcache_task_t *g = s_submit(f->c, "gate", "g", NULL, 0, NULL);
    refcache_task_t *running = s_until_state(f->c, g->info.ref_id, REFCACHE_STATE_PROCESSING, CALL_MS);
    refcache_task_destroy(&running);
    refcache_task_destroy(&g);
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.deadline_ms = 1500;
    refcache_task_t *t = s_submit(f->c, "order", "late", NULL, 0, &o);
    assert_int_equal(t->info.state, REFCACHE_STATE_PENDING);
    s_stop(f);
    zclock_sleep(300); /* the broker is down meanwhile: the deadline keeps counting */
    /* No worker now: the function is known from the store, so the task
     * waits for one (and a new Submit of it is taken, not UNIMPLEMENTED). */
    s_start(f, 0, false, 1000);
    refcache_task_t *again = s_submit(f->c, "order", "waits", NULL, 0, NULL);
    assert_int_equal(again->info.state, REFCACHE_STATE_PENDING);
    refcache_task_destroy(&again);
    refcache_task_t *done = s_until_state(f->c, t->info.ref_id, REFCACHE_STATE_FAILED, 4000);
    assert_int_equal(done->info.error_code, REFCACHE_CODE_DEADLINE_EXCEEDED);
    uint64_t took = done->info.finished_at_us - done->info.created_at_us;
    print_message("deadline of 1.5 s across a restart: failed %.2f s after acceptance\n", took / 1e6);
    assert_true(took >= 1400000 && took < 3000000);
    refcache_task_destroy(&done);
    refcache_task_destroy(&t);
}

/* List shows what came back, newest first as they were accepted: the
 * records (running, queued) and a handle that joined one. */
static void test_list_shows_what_came_back(void **state)
{
    fixture_t *f = *state;
    s_start(f, 0, true, 0); /* one thread, credit 1: the gate runs, the rest waits */
    const char *want[4];
    refcache_task_t *t[4];
    t[0] = s_submit(f->c, "gate", "g", NULL, 0, NULL);
    refcache_task_t *run = s_until_state(f->c, t[0]->info.ref_id, REFCACHE_STATE_PROCESSING, CALL_MS);
    refcache_task_destroy(&run);
    t[1] = s_submit(f->c, "order", "a", NULL, 0, NULL);
    t[2] = s_submit(f->c, "order", "b", NULL, 0, NULL);
    t[3] = s_submit(f->c, "gate", "g", NULL, 0, NULL); /* the same work in flight: a handle of its own */
    assert_string_not_equal(t[3]->info.ref_id, t[0]->info.ref_id);
    for (int i = 0; i < 4; i++)
        want[i] = t[i]->info.ref_id;
    s_stop(f);

    s_start(f, 0, true, 0);
    refcache_list_options_t o;
    refcache_list_options_init(&o);
    refcache_task_list_t *list = NULL;
    assert_int_equal(refcache_client_list(f->c, &o, &list, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(list->count, 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(list->tasks[i].ref_id, want[3 - i]);
    refcache_task_list_destroy(&list);
    for (int i = 0; i < 4; i++)
        refcache_task_destroy(&t[i]);
}

static void test_handles_and_request_keys_come_back(void **state)
{
    fixture_t *f = *state;
    s_start(f, 2, false, 1000);
    refcache_task_t *a = s_submit(f->c, "echo", "shared", NULL, 3000, NULL);
    refcache_task_t *b = s_submit(f->c, "echo", "shared", NULL, 0, NULL);
    assert_true(b->info.cache_hit);
    bool found = false;
    assert_int_equal(refcache_client_delete(f->c, a->info.ref_id, &found, CALL_MS), 0);
    assert_true(found);
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.request_key = "order-42";
    o.no_cache = true;
    refcache_task_t *k = s_submit(f->c, "echo", "keyed", NULL, 3000, &o);
    assert_false(k->info.replayed);
    refcache_task_t *k2 = s_submit(f->c, "echo", "keyed", NULL, 0, &o);
    assert_true(k2->info.replayed); /* the same Submit again: its handle, no second task */
    assert_string_equal(k2->info.ref_id, k->info.ref_id);
    refcache_task_destroy(&k2);
    s_stop(f);

    s_start(f, 2, false, 1000);
    refcache_task_t *t = s_status(f->c, a->info.ref_id, REFCACHE_CODE_NOT_FOUND);
    t = s_status(f->c, b->info.ref_id, REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    assert_memory_equal(t->info.result, "shared", 6);
    refcache_task_destroy(&t);
    k2 = s_submit(f->c, "echo", "keyed", NULL, 0, &o);
    assert_true(k2->info.replayed); /* across the restart too */
    assert_string_equal(k2->info.ref_id, k->info.ref_id);
    refcache_stats_t s;
    rc_testkit_stats(f->c, &s);
    assert_int_equal(s.submitted_total, 0); /* nothing new was started */
    refcache_task_destroy(&k2);
    refcache_task_destroy(&k);
    refcache_task_destroy(&a);
    refcache_task_destroy(&b);
}

static void test_not_a_store_is_refused(void **state)
{
    fixture_t *f = *state;
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("these are not the droids\n", fp);
    fclose(fp);
    rc_broker_config_t cfg;
    rc_testkit_config(&cfg);
    cfg.store_path = f->path;
    char err[512] = "";
    rc_broker_t *b = rc_broker_new(&cfg, err, sizeof err);
    assert_null(b);
    print_message("a text file as the store: %s\n", err);
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, "not a SQLite database"));
}

/* A store cut short is refused, naming --salvage-to; refcache-broker
 * --salvage-to copies what is intact into a new store, on which a broker
 * starts with those tasks, results byte for byte. */
static void test_damaged_store_salvaged(void **state)
{
    fixture_t *f = *state;
    enum { N = 1500 };
    static char refs[N][REFCACHE_REF_MAX + 1];
    s_start(f, 2, false, 1000);
    for (int i = 0; i < N; i++) {
        char payload[32];
        snprintf(payload, sizeof payload, "salvage-%d", i);
        refcache_task_t *t = s_submit(f->c, "echo", payload, NULL, 3000, NULL);
        assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
        snprintf(refs[i], sizeof refs[i], "%s", t->info.ref_id);
        refcache_task_destroy(&t);
    }
    s_stop(f);
    FILE *fp = fopen(f->path, "r+");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long size = ftell(fp);
    fclose(fp);
    assert_int_equal(truncate(f->path, size / 2), 0);

    rc_broker_config_t cfg;
    rc_testkit_config(&cfg);
    cfg.store_path = f->path;
    char err[512] = "";
    assert_null(rc_broker_new(&cfg, err, sizeof err));
    print_message("a store cut to half its %ld bytes: %s\n", size, err);
    assert_non_null(strstr(err, "truncated"));
    assert_non_null(strstr(err, "--salvage-to"));

    char saved[sizeof f->path], cmd[512];
    snprintf(saved, sizeof saved, "%s/saved.db", f->dir);
    snprintf(cmd, sizeof cmd, "'%s' --store '%s' --salvage-to '%s'", RC_BROKER_PATH, f->path, saved);
    assert_int_equal(system(cmd), 0);
    snprintf(f->path, sizeof f->path, "%s", saved);
    s_start(f, 2, false, 1000);
    int found = 0, older = 0;
    for (int i = 0; i < N; i++) {
        refcache_task_t *t = NULL;
        int rc = refcache_client_status(f->c, refs[i], &t, CALL_MS);
        if (rc == REFCACHE_CODE_NOT_FOUND)
            continue;
        assert_int_equal(rc, REFCACHE_CODE_OK);
        /* Its last record intact: COMPLETE with its result. Or that one was in
         * what was cut and an older one came back (docs/store.md): the task
         * was running then, so it is a lost attempt now, never a wrong result. */
        if (t->info.state != REFCACHE_STATE_COMPLETE) {
            assert_int_equal(t->info.state, REFCACHE_STATE_FAILED);
            assert_int_equal(t->info.error_code, REFCACHE_CODE_UNAVAILABLE);
            older++;
        } else {
            char payload[32];
            snprintf(payload, sizeof payload, "salvage-%d", i);
            assert_int_equal(t->info.result_len, strlen(payload));
            assert_memory_equal(t->info.result, payload, t->info.result_len);
            found++;
        }
        refcache_task_destroy(&t);
    }
    print_message("salvaged: %d of %d tasks back with their results, %d from an older record (lost attempts)\n",
                  found, N, older);
    assert_true(found > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_finished_tasks_come_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_in_order_running_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_counts_from_acceptance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handles_and_request_keys_come_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_shows_what_came_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_store_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_store_salvaged, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
