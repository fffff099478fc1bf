/* Stops and restarts of real processes: refcache-broker stopped with SIGTERM
 * drains (running tasks finish, new Submits are refused UNAVAILABLE, reads
 * go on, exit 0) and its store brings back what is left; refcache-worker
 * stopped with SIGTERM finishes its job (or, past its drain time, has it
 * retried once elsewhere) without the broker waiting out the liveness
 * window or spending retries; a broker killed and restarted while a worker
 * runs a long job draws no storm of Reannounces, and Submits of functions
 * its store knows wait for a worker; SIGHUP reloads the CURVE allow-lists.
 * Every wait is a poll with a timeout; every process is killed in the
 * teardown, also after a failed check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rc_broker.h"
#include "rc_common.h"
#include "rc_procs.h"
#include "rc_testkit.h"
#include "refcache.h"

#define CALL_MS 5000

typedef struct {
    char dir[64];   /* the test's temporary directory */
    char store[96]; /* a store in it */
    refcache_client_t *client;
    rc_broker_t *broker; /* an in-process broker, for the worker tests */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/rc-stops-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->store, sizeof f->store, "%s/broker.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    rc_procs_kill_all();
    refcache_client_destroy(&f->client);
    rc_broker_destroy(&f->broker);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        print_message("could not remove %s\n", f->dir);
    free(f);
    return 0;
}

static refcache_client_t *client_of(const char *endpoint)
{
    refcache_client_options_t o;
    refcache_client_options_init(&o);
    o.endpoint = endpoint;
    char err[256];
    refcache_client_t *c = refcache_client_new(&o, err, sizeof err);
    if (!c)
        fail_msg("client: %s", err);
    return c;
}

/* Submits fn (sleep ms if ms) with max_retries; its ref_id in ref; the code. */
static int submit(refcache_client_t *c, const char *fn, const char *ms, uint32_t retries, char ref[33])
{
    refcache_param_t p[1] = {{"ms", ms}};
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.params = ms ? p : NULL;
    o.param_count = ms ? 1 : 0;
    o.payload = "x";
    o.payload_len = 1;
    o.no_cache = true;
    o.max_retries = retries;
    refcache_task_t *t = NULL;
    int rc = refcache_client_submit(c, fn, &o, &t, CALL_MS);
    if (t && ref)
        snprintf(ref, 33, "%.32s", t->info.ref_id);
    refcache_task_destroy(&t);
    return rc;
}

/* Polls Status until ref is in state (terminal: any terminal state) or
 * running (started), up to ms; its record in *out. */
enum { RUNNING = 100, TERMINAL };
static void wait_task(refcache_client_t *c, const char *ref, int state, int ms, refcache_task_t **out)
{
    uint64_t deadline = rc_mono_us() + (uint64_t) ms * 1000;
    for (;;) {
        refcache_task_t *t = NULL;
        int rc = refcache_client_status(c, ref, &t, 1000);
        bool ok = rc == REFCACHE_CODE_OK &&
                  (state == TERMINAL  ? rc_state_is_terminal(t->info.state)
                   : state == RUNNING ? t->info.state == REFCACHE_STATE_PROCESSING && t->info.started_at_us
                                      : t->info.state == state);
        if (ok) {
            if (out)
                *out = t;
            else
                refcache_task_destroy(&t);
            return;
        }
        if (rc_mono_us() > deadline)
            fail_msg("task %s: not %d within %d ms (rc %d, state %s)", ref, state, ms, rc,
                     t ? rc_state_name(t->info.state) : "-");
        refcache_task_destroy(&t);
        zclock_sleep(10); /* a poll interval, not a synchronisation */
    }
}

static void stats(refcache_client_t *c, refcache_stats_t *s)
{
    int rc = refcache_client_stats(c, s, CALL_MS);
    if (rc != REFCACHE_CODE_OK)
        fail_msg("stats: %s", refcache_strerror(rc));
}

static void wait_workers(refcache_client_t *c, uint64_t n, int ms)
{
    rc_testkit_wait_workers(c, n, ms);
}

/* ------------------------------------------------------------ the broker */

/* SIGTERM to a broker with a store while a task runs and two wait: Submits
 * are refused with a clear message, Status still answers, the running task
 * finishes, the broker exits 0 well before its drain time; restarted on the
 * store, the two waiting ones run (attempt 1) and the finished one is there. */
static void test_broker_sigterm_drains(void **state)
{
    fixture_t *f = *state;
    const char *args[] = {"--store", f->store, "--drain-timeout", "8000", "--heartbeat-ms", "200", NULL};
    rc_procs_eps_t eps;
    pid_t b = rc_procs_broker_fixed(RC_BROKER_PATH, args, &eps);
    const char *wargs[] = {"--threads", "1", "--heartbeat-ms", "200", NULL};
    rc_procs_worker(RC_WORKER_PATH, &eps, wargs);
    f->client = client_of(eps.clients);
    wait_workers(f->client, 1, CALL_MS);
    char a[33], w1[33], w2[33];
    assert_int_equal(submit(f->client, "sleep", "1500", 0, a), REFCACHE_CODE_OK);
    wait_task(f->client, a, RUNNING, CALL_MS, NULL);
    assert_int_equal(submit(f->client, "sleep", "50", 0, w1), REFCACHE_CODE_OK);
    assert_int_equal(submit(f->client, "sleep", "50", 0, w2), REFCACHE_CODE_OK);

    uint64_t t0 = rc_mono_us();
    rc_procs_signal(b, SIGTERM);
    refcache_stats_t s;
    do {
        stats(f->client, &s);
        if (rc_mono_us() - t0 > 3000000)
            fail_msg("the broker does not say it is draining");
    } while (!s.draining);
    char no[33];
    assert_int_equal(submit(f->client, "echo", NULL, 0, no), REFCACHE_CODE_UNAVAILABLE);
    assert_non_null(strstr(refcache_client_message(f->client), "stopping"));
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_status(f->client, a, &t, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_PROCESSING);
    refcache_task_destroy(&t);
    int status = -1;
    assert_true(rc_procs_wait(b, 7000, &status));
    uint64_t took = rc_mono_us() - t0;
    print_message("SIGTERM: the broker exited %d after %.2f s (its running task had up to 1.5 s left)\n",
                  status, took / 1e6);
    assert_int_equal(status, 0);
    assert_true(took < 4000000);

    /* Restarted on the same endpoints and store: the worker rejoins. */
    const char *again[] = {"--store",  f->store,    "--heartbeat-ms", "200",       "--clients",
                           eps.clients, "--workers-endpoint", eps.workers, "--control", eps.control,
                           NULL};
    rc_procs_eps_t eps2;
    rc_procs_broker_again(RC_BROKER_PATH, again, &eps2, 10000);
    refcache_client_destroy(&f->client);
    f->client = client_of(eps2.clients);
    wait_task(f->client, a, REFCACHE_STATE_COMPLETE, CALL_MS, &t);
    assert_int_equal(t->info.attempt, 1);
    refcache_task_destroy(&t);
    const char *waited[] = {w1, w2};
    for (int i = 0; i < 2; i++) {
        wait_task(f->client, waited[i], TERMINAL, 15000, &t);
        assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
        assert_int_equal(t->info.attempt, 1);
        refcache_task_destroy(&t);
    }
}

/* A broker killed (kill -9) while a worker of two threads runs a long
 * sleep that reports progress every 10 ms (its messages queue while the
 * broker is away) and restarted on the same store: the threads rejoin with
 * a bounded number of Reannounces (not one per queued message), new tasks
 * complete at attempt 1, the sleep that was running is one lost attempt,
 * not a loop. Before any worker is back, a Submit of a function the store
 * knows waits in the queue instead of UNIMPLEMENTED. */
static void test_broker_restart_no_storm(void **state)
{
    fixture_t *f = *state;
    const char *args[] = {"--store", f->store, NULL};
    rc_procs_eps_t eps;
    pid_t b = rc_procs_broker_fixed(RC_BROKER_PATH, args, &eps);
    const char *wargs[] = {"--threads", "2", NULL};
    pid_t w = rc_procs_worker(RC_WORKER_PATH, &eps, wargs);
    f->client = client_of(eps.clients);
    wait_workers(f->client, 2, CALL_MS);
    char sleeper[33], ref[33];
    assert_int_equal(submit(f->client, "sleep", "60000", 0, sleeper), REFCACHE_CODE_OK);
    wait_task(f->client, sleeper, RUNNING, CALL_MS, NULL);

    rc_procs_kill(b);
    usleep(1500000); /* the outage: the worker's progress queues meanwhile */
    const char *again[] = {"--store",  f->store,    "--clients", eps.clients, "--workers-endpoint",
                           eps.workers, "--control", eps.control, NULL};
    rc_procs_eps_t eps2;
    b = rc_procs_broker_again(RC_BROKER_PATH, again, &eps2, 10000);
    refcache_client_destroy(&f->client);
    f->client = client_of(eps2.clients);
    wait_workers(f->client, 2, 10000);
    /* What the queued messages draw, over a few heartbeat intervals. */
    uint64_t until = rc_mono_us() + 3000000;
    refcache_stats_t s;
    do {
        stats(f->client, &s);
        zclock_sleep(50); /* the window over which the storm would show */
    } while (rc_mono_us() < until);
    print_message("restart with a 60 s sleep running: %llu Reannounce(s), %llu stale message(s)\n",
                  (unsigned long long) s.reannounces_total, (unsigned long long) s.stale_msgs_total);
    assert_true(s.reannounces_total <= 6);
    assert_int_equal(s.workers, 2);
    char refs[10][33];
    for (int i = 0; i < 10; i++)
        assert_int_equal(submit(f->client, "echo", NULL, 0, refs[i]), REFCACHE_CODE_OK);
    refcache_task_t *t = NULL;
    for (int i = 0; i < 10; i++) {
        wait_task(f->client, refs[i], TERMINAL, CALL_MS, &t);
        assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
        assert_int_equal(t->info.attempt, 1);
        refcache_task_destroy(&t);
    }
    wait_task(f->client, sleeper, TERMINAL, CALL_MS, &t);
    assert_int_equal(t->info.state, REFCACHE_STATE_FAILED);
    assert_int_equal(t->info.attempt, 1);
    assert_non_null(strstr(t->info.error, "restarted"));
    refcache_task_destroy(&t);

    /* No worker at all now, and a restart: the store knows "echo". */
    rc_procs_kill(w);
    rc_procs_kill(b);
    b = rc_procs_broker_again(RC_BROKER_PATH, again, &eps2, 10000);
    refcache_client_destroy(&f->client);
    f->client = client_of(eps2.clients);
    stats(f->client, &s);
    assert_int_equal(s.workers, 0);
    assert_int_equal(submit(f->client, "echo", NULL, 0, ref), REFCACHE_CODE_OK);
    assert_int_equal(submit(f->client, "never-announced", NULL, 0, NULL), REFCACHE_CODE_UNIMPLEMENTED);
    wait_task(f->client, ref, REFCACHE_STATE_PENDING, CALL_MS, NULL);
    rc_procs_worker(RC_WORKER_PATH, &eps2, wargs);
    wait_task(f->client, ref, TERMINAL, 10000, &t);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    refcache_task_destroy(&t);
}

/* ------------------------------------------------------------ the worker */

/* A broker in this process (retries 2 by default), for the worker tests. */
static void broker_in_process(fixture_t *f)
{
    rc_broker_config_t config;
    rc_testkit_config(&config);
    config.heartbeat_ms = 200;
    config.liveness = 3;
    config.default_max_retries = 2;
    config.retry_base_ms = 20;
    config.retry_max_ms = 40;
    f->broker = rc_testkit_broker(&config);
    f->client = rc_testkit_client(f->broker);
}

static rc_procs_eps_t eps_of(rc_broker_t *b)
{
    rc_procs_eps_t eps;
    snprintf(eps.clients, sizeof eps.clients, "%s", rc_broker_endpoint(b, RC_EP_CLIENTS));
    snprintf(eps.workers, sizeof eps.workers, "%s", rc_broker_endpoint(b, RC_EP_WORKERS));
    snprintf(eps.control, sizeof eps.control, "%s", rc_broker_endpoint(b, RC_EP_CONTROL));
    return eps;
}

/* SIGTERM to a worker running a 1 s sleep, with time enough to drain: it
 * finishes it (attempt 1), says goodbye and exits 0; the broker loses no
 * worker and retries nothing. */
static void test_worker_sigterm_finishes(void **state)
{
    fixture_t *f = *state;
    broker_in_process(f);
    rc_procs_eps_t eps = eps_of(f->broker);
    const char *wargs[] = {"--threads", "1", "--heartbeat-ms", "200", "--drain-timeout", "5000", NULL};
    pid_t w = rc_procs_worker(RC_WORKER_PATH, &eps, wargs);
    wait_workers(f->client, 1, CALL_MS);
    char a[33];
    assert_int_equal(submit(f->client, "sleep", "1000", 2, a), REFCACHE_CODE_OK);
    wait_task(f->client, a, RUNNING, CALL_MS, NULL);
    rc_procs_signal(w, SIGTERM);
    wait_workers(f->client, 0, 2000); /* leaving: it takes nothing more */
    int status = -1;
    assert_true(rc_procs_wait(w, 4000, &status));
    assert_int_equal(status, 0);
    refcache_task_t *t = NULL;
    wait_task(f->client, a, TERMINAL, CALL_MS, &t);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    assert_int_equal(t->info.attempt, 1);
    refcache_task_destroy(&t);
    refcache_stats_t s;
    stats(f->client, &s);
    assert_int_equal(s.retries_total, 0);
    assert_int_equal(s.workers_lost_total, 0);
}

/* SIGTERM to a worker whose job outlasts its drain time (with retries 2):
 * the job is stopped, its task retried once on the other worker and
 * completed there at attempt 2 -- not FAILED at attempt 3 -- and the
 * broker does not wait out the liveness window for it. */
static void test_worker_sigterm_past_drain(void **state)
{
    fixture_t *f = *state;
    broker_in_process(f);
    rc_procs_eps_t eps = eps_of(f->broker);
    const char *wargs[] = {"--threads", "1", "--heartbeat-ms", "200", "--drain-timeout", "300", NULL};
    pid_t a = rc_procs_worker(RC_WORKER_PATH, &eps, wargs);
    wait_workers(f->client, 1, CALL_MS);
    char ref[33];
    assert_int_equal(submit(f->client, "sleep", "1500", 2, ref), REFCACHE_CODE_OK);
    wait_task(f->client, ref, RUNNING, CALL_MS, NULL);
    rc_procs_worker(RC_WORKER_PATH, &eps, wargs);
    wait_workers(f->client, 2, CALL_MS);
    uint64_t t0 = rc_mono_us();
    rc_procs_signal(a, SIGTERM);
    int status = -1;
    assert_true(rc_procs_wait(a, 3000, &status));
    assert_int_equal(status, 0);
    refcache_task_t *t = NULL;
    wait_task(f->client, ref, TERMINAL, 10000, &t);
    print_message("SIGTERM past the drain time: %s at attempt %u, %.2f s after the signal\n",
                  rc_state_name(t->info.state), t->info.attempt, (rc_mono_us() - t0) / 1e6);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    assert_int_equal(t->info.attempt, 2);
    refcache_task_destroy(&t);
    refcache_stats_t s;
    stats(f->client, &s);
    assert_int_equal(s.retries_total, 1);
    assert_int_equal(s.workers_lost_total, 0);
}

/* ------------------------------------------------------------ SIGHUP */

/* A key pair written as zcert_save writes it (PATH, PATH_secret); with
 * allow_dir, its public half also goes there as NAME. */
static void keypair(const char *path, const char *allow_dir, const char *name)
{
    zcert_t *cert = zcert_new();
    assert_non_null(cert);
    assert_int_equal(zcert_save(cert, path), 0);
    if (allow_dir) {
        char pub[256];
        snprintf(pub, sizeof pub, "%s/%s", allow_dir, name);
        assert_int_equal(zcert_save_public(cert, pub), 0);
    }
    zcert_destroy(&cert);
}

static refcache_client_t *curve_client(const char *endpoint, const char *secret, const char *broker_pub)
{
    refcache_client_options_t o;
    refcache_client_options_init(&o);
    o.endpoint = endpoint;
    o.curve_secret_file = secret;
    o.broker_public_file = broker_pub;
    char err[256];
    refcache_client_t *c = refcache_client_new(&o, err, sizeof err);
    if (!c)
        fail_msg("client: %s", err);
    return c;
}

/* Polls Stats on a new connection with key until it answers want (OK, or
 * a timeout for a key refused at the handshake), up to ms. */
static void expect_key(const char *endpoint, const char *secret, const char *broker_pub, int want, int ms)
{
    uint64_t deadline = rc_mono_us() + (uint64_t) ms * 1000;
    for (;;) {
        refcache_client_t *c = curve_client(endpoint, secret, broker_pub);
        refcache_stats_t s;
        int rc = refcache_client_stats(c, &s, 300);
        refcache_client_destroy(&c);
        if (rc == want)
            return;
        if (rc_mono_us() > deadline)
            fail_msg("key %s: %s, not %s", secret, refcache_strerror(rc), refcache_strerror(want));
    }
}

/* SIGHUP: the broker reads its allow-lists again instead of dying. A key
 * added connects; a key removed is refused on a new connection, and its
 * connection already open gets PERMISSION_DENIED. */
static void test_sighup_reloads_allow_lists(void **state)
{
    fixture_t *f = *state;
    char clients[96], workers[96], broker[96], broker_pub[96], k1[96], k2[96], k1_pub[128];
    snprintf(clients, sizeof clients, "%s/clients", f->dir);
    snprintf(workers, sizeof workers, "%s/workers", f->dir);
    assert_int_equal(mkdir(clients, 0700), 0);
    assert_int_equal(mkdir(workers, 0700), 0);
    snprintf(broker, sizeof broker, "%s/broker", f->dir);
    snprintf(broker_pub, sizeof broker_pub, "%s/broker", f->dir);
    snprintf(k1, sizeof k1, "%s/k1", f->dir);
    snprintf(k2, sizeof k2, "%s/k2", f->dir);
    snprintf(k1_pub, sizeof k1_pub, "%s/k1.pub", clients);
    keypair(broker, NULL, NULL);
    keypair(k1, clients, "k1.pub");
    keypair(k2, NULL, NULL);
    const char *args[] = {"--curve-secret", broker, "--clients-allowed", clients, "--workers-allowed", workers,
                          "--workers", "1", NULL};
    rc_procs_eps_t eps;
    pid_t b = rc_procs_broker(RC_BROKER_PATH, args, &eps);
    refcache_client_t *one = curve_client(eps.clients, k1, broker_pub);
    refcache_stats_t s;
    assert_int_equal(refcache_client_stats(one, &s, CALL_MS), REFCACHE_CODE_OK);
    expect_key(eps.clients, k2, broker_pub, REFCACHE_ETIMEOUT, CALL_MS);

    /* k2 added: it gets in. */
    zcert_t *c2 = zcert_load(k2);
    assert_non_null(c2);
    char k2_pub[128];
    snprintf(k2_pub, sizeof k2_pub, "%s/k2.pub", clients);
    assert_int_equal(zcert_save_public(c2, k2_pub), 0);
    zcert_destroy(&c2);
    rc_procs_signal(b, SIGHUP);
    expect_key(eps.clients, k2, broker_pub, REFCACHE_CODE_OK, CALL_MS);

    /* k1 removed: its open connection is refused request by request, a new
     * one at the handshake. */
    assert_int_equal(unlink(k1_pub), 0);
    rc_procs_signal(b, SIGHUP);
    uint64_t deadline = rc_mono_us() + CALL_MS * 1000ull;
    int rc;
    while ((rc = refcache_client_stats(one, &s, CALL_MS)) != REFCACHE_CODE_PERMISSION_DENIED) {
        assert_int_equal(rc, REFCACHE_CODE_OK);
        if (rc_mono_us() > deadline)
            fail_msg("the removed key still gets answers");
        zclock_sleep(20); /* a poll interval, not a synchronisation */
    }
    refcache_client_destroy(&one);
    expect_key(eps.clients, k1, broker_pub, REFCACHE_ETIMEOUT, CALL_MS);
    expect_key(eps.clients, k2, broker_pub, REFCACHE_CODE_OK, CALL_MS);
    rc_procs_signal(b, SIGTERM);
    int status = -1;
    assert_true(rc_procs_wait(b, 5000, &status));
    assert_int_equal(status, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_broker_sigterm_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_restart_no_storm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_sigterm_finishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_sigterm_past_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sighup_reloads_allow_lists, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
