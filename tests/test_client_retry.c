/* Safe client retries across a broker restart: a refcache-broker process
 * with a store is killed (kill -9) while a blocking call of the C client
 * waits for its reply (a held Submit with a request_key, a Wait), and
 * started again on the same endpoints and store; the call, which sees the
 * connection go and come back, sends its request again with the same id and
 * returns the right answer within its timeout. A Submit without a key is
 * never sent twice: the call times out and the broker holds one task. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <czmq.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rc_common.h"
#include "rc_procs.h"
#include "refcache.h"

#define CALL_MS 15000

typedef struct {
    char dir[64], store[96];
    rc_procs_eps_t eps;
    pid_t broker;
    refcache_client_t *client; /* the one whose call is tested */
    pthread_t killer;
    bool killer_on;
    uint64_t outage_us; /* how long the broker was away */
} fixture_t;

static const char *const broker_args[] = {"--workers", "1", "--retry-base-ms", "20", "--retry-max-ms",
                                          "40",        NULL};

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/rc-retry-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->store, sizeof f->store, "%s/broker.db", f->dir);
    const char *args[16] = {"--store", f->store};
    for (int i = 0; broker_args[i]; i++)
        args[2 + i] = broker_args[i];
    f->broker = rc_procs_broker_fixed(RC_BROKER_PATH, args, &f->eps);
    refcache_client_options_t o;
    refcache_client_options_init(&o);
    o.endpoint = f->eps.clients;
    o.no_retry = getenv("RC_TEST_NO_RETRY") != NULL; /* to see the test fail without retries */
    char err[256];
    f->client = refcache_client_new(&o, err, sizeof err);
    if (!f->client)
        fail_msg("client: %s", err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->killer_on)
        pthread_join(f->killer, NULL);
    rc_procs_kill_all();
    refcache_client_destroy(&f->client);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        print_message("could not remove %s\n", f->dir);
    free(f);
    return 0;
}

/* The broker's Stats on a connection of its own (another thread's). */
static int stats_of(const char *endpoint, refcache_stats_t *s)
{
    refcache_client_options_t o;
    refcache_client_options_init(&o);
    o.endpoint = endpoint;
    o.no_retry = true;
    refcache_client_t *c = refcache_client_new(&o, NULL, 0);
    if (!c)
        return -1;
    int rc = refcache_client_stats(c, s, 1000);
    refcache_client_destroy(&c);
    return rc;
}

/* The killer thread: once the broker holds the tested call's reply (a
 * waiter), kill -9 it, and start it again on the same endpoints and store
 * after a short outage. */
static void *killer(void *arg)
{
    fixture_t *f = arg;
    uint64_t deadline = rc_mono_us() + 10000000;
    refcache_stats_t s = {0};
    while (rc_mono_us() < deadline && !(stats_of(f->eps.clients, &s) == 0 && s.waiters >= 1))
        usleep(10000); /* a poll interval, not a synchronisation */
    /* The held call's task is on disk once a later Stats finds nothing
     * queued for the store's writer (its group was handed over at the end
     * of the pass that took the Submit): only then is it the broker's to
     * keep, as its reply would have promised. */
    do
        usleep(10000);
    while (rc_mono_us() < deadline && !(stats_of(f->eps.clients, &s) == 0 && s.store_queued_bytes == 0));
    uint64_t t0 = rc_mono_us();
    kill(f->broker, SIGKILL);
    usleep(300000); /* the outage */
    const char *args[24] = {"--store",      f->store,    "--clients",   f->eps.clients, "--workers-endpoint",
                            f->eps.workers, "--control", f->eps.control};
    for (int i = 0; broker_args[i]; i++)
        args[8 + i] = broker_args[i];
    rc_procs_eps_t eps;
    f->broker = rc_procs_broker_again(RC_BROKER_PATH, args, &eps, 10000);
    f->outage_us = rc_mono_us() - t0;
    return NULL;
}

static void kill_while_held(fixture_t *f)
{
    assert_int_equal(pthread_create(&f->killer, NULL, killer, f), 0);
    f->killer_on = true;
}

static void join_killer(fixture_t *f)
{
    pthread_join(f->killer, NULL);
    f->killer_on = false;
    rc_procs_wait(f->broker, 0, NULL); /* reaps the killed one: no-op for the live one */
}

/* A Submit with a request_key, its reply held by its async timeout when the
 * broker is killed: sent again once the broker is back, it is answered with
 * the first one's handle (replayed), the task having run to its end on the
 * restarted broker (its interrupted attempt retried), within the call's
 * timeout; a third Submit with the key names the same task. */
static void test_keyed_submit_across_restart(void **state)
{
    fixture_t *f = *state;
    refcache_param_t p[1] = {{"ms", "1500"}};
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.params = p;
    o.param_count = 1;
    o.request_key = "order-42";
    o.max_retries = 1;
    o.async_timeout_ms = 10000;
    kill_while_held(f);
    uint64_t t0 = rc_mono_us();
    refcache_task_t *t = NULL;
    int rc = refcache_client_submit(f->client, "sleep", &o, &t, CALL_MS);
    uint64_t took = rc_mono_us() - t0;
    join_killer(f);
    assert_int_equal(rc, REFCACHE_CODE_OK);
    print_message("keyed Submit across a restart (outage %.2f s): %s attempt %u replayed %d after %.2f s\n",
                  f->outage_us / 1e6, rc_state_name(t->info.state), t->info.attempt, t->info.replayed,
                  took / 1e6);
    assert_true(t->info.replayed);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    assert_int_equal(t->info.attempt, 2);
    assert_true(took < (uint64_t) CALL_MS * 1000 + 10000000);
    char ref[REFCACHE_REF_MAX + 1];
    snprintf(ref, sizeof ref, "%s", t->info.ref_id);
    refcache_task_destroy(&t);
    o.async_timeout_ms = 0;
    assert_int_equal(refcache_client_submit(f->client, "sleep", &o, &t, CALL_MS), REFCACHE_CODE_OK);
    assert_string_equal(t->info.ref_id, ref);
    refcache_task_destroy(&t);
    refcache_stats_t s;
    assert_int_equal(refcache_client_stats(f->client, &s, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(s.tasks_complete + s.tasks_failed + s.tasks_processing + s.tasks_pending, 1);
}

/* A Wait held when the broker is killed: sent again (with what is left of
 * its time), it returns the task's end. */
static void test_wait_across_restart(void **state)
{
    fixture_t *f = *state;
    refcache_param_t p[1] = {{"ms", "1000"}};
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.params = p;
    o.param_count = 1;
    o.max_retries = 1;
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_submit(f->client, "sleep", &o, &t, CALL_MS), REFCACHE_CODE_OK);
    char ref[REFCACHE_REF_MAX + 1];
    snprintf(ref, sizeof ref, "%s", t->info.ref_id);
    refcache_task_destroy(&t);
    kill_while_held(f);
    assert_int_equal(refcache_client_wait(f->client, ref, 10000, &t, CALL_MS), REFCACHE_CODE_OK);
    join_killer(f);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    assert_string_equal(t->info.ref_id, ref);
    refcache_task_destroy(&t);
}

/* A Submit without a key is not sent again: its call times out, and the
 * restarted broker holds the one task the killed one had accepted and
 * written, and accepted none itself. */
static void test_unkeyed_submit_not_resent(void **state)
{
    fixture_t *f = *state;
    refcache_param_t p[1] = {{"ms", "3000"}};
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.params = p;
    o.param_count = 1;
    o.async_timeout_ms = 3000;
    kill_while_held(f);
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_submit(f->client, "sleep", &o, &t, 2000), REFCACHE_ETIMEOUT);
    join_killer(f);
    assert_null(t);
    refcache_stats_t s;
    assert_int_equal(refcache_client_stats(f->client, &s, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(s.tasks_complete + s.tasks_failed + s.tasks_processing + s.tasks_pending, 1);
    assert_int_equal(s.submitted_total, 0); /* this broker accepted none itself */
    assert_string_equal(s.store_path, f->store);
    assert_true(s.store_records >= 2); /* the task and the function sleep */
    assert_string_equal(s.store_error, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keyed_submit_across_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_across_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unkeyed_submit_not_resent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
