/* The fault test across network namespaces: a worker host cut off from the
 * broker for 8 s, as a network partition would. The broker runs here, its
 * work and control endpoints on one end of a veth pair; refcache-worker
 * (two threads) runs in a network namespace of its own on the other end,
 * one thread busy with a long sleep (whose progress piles up while it is cut
 * off), the other idle; a second refcache-worker runs here. The host side of
 * the link goes down for 8 s while echo tasks are submitted (no retries
 * allowed, and one with two), then comes up again. Then:
 *   - no storm: a bounded number of Reannounces, however many messages the
 *     cut-off worker queued;
 *   - the echo tasks all COMPLETE at attempt 1: those the broker sent to
 *     the silent worker before it stopped sending to it (it never got them)
 *     come back when it reports, the others ran on the other worker; the
 *     one with retries spent none;
 *   - the sleep, which the lost worker was running, is its one lost attempt.
 * Root only (ip netns, veth: Debian's iproute2); skipped with a message
 * otherwise. The namespace and its link are removed in the teardown, also
 * after a failed check, and stale ones of dead runs at the start. */
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
#include <unistd.h>

#include "rc_common.h"
#include "rc_procs.h"
#include "refcache.h"

#define CALL_MS    5000
#define CUT_MS     8000 /* the partition */
#define N_ECHO     20
#define PREFIX     "rcw"

typedef struct {
    char ns[32], host_if[16], ns_if[16];
    char host_ip[32], ns_ip[32];
    refcache_client_t *client;
} fixture_t;

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char quiet[600];
    snprintf(quiet, sizeof quiet, "%s%s", cmd, getenv("RC_TEST_VERBOSE") ? "" : " >/dev/null 2>&1");
    return system(quiet);
}

/* Namespaces of earlier runs whose process is gone (a run killed before its
 * teardown): removed, with their links. */
static void remove_stale(void)
{
    FILE *p = popen("ip netns list 2>/dev/null", "r");
    if (!p)
        return;
    char line[256];
    while (fgets(line, sizeof line, p)) {
        int pid = 0;
        if (sscanf(line, PREFIX "-%d", &pid) == 1 && pid > 0 && kill(pid, 0) != 0)
            run("ip netns del " PREFIX "-%d", pid);
    }
    pclose(p);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    rc_procs_kill_all();
    refcache_client_destroy(&f->client);
    /* Deleting the namespace deletes its end of the pair, and with it ours. */
    run("ip netns del %s", f->ns);
    run("ip link del %s", f->host_if);
    free(f);
    return 0;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    *state = f;
    remove_stale();
    int pid = (int) getpid();
    snprintf(f->ns, sizeof f->ns, PREFIX "-%d", pid);
    snprintf(f->host_if, sizeof f->host_if, "rch%d", pid % 100000);
    snprintf(f->ns_if, sizeof f->ns_if, "rcn%d", pid % 100000);
    snprintf(f->host_ip, sizeof f->host_ip, "10.213.%d.1", pid % 250);
    snprintf(f->ns_ip, sizeof f->ns_ip, "10.213.%d.2", pid % 250);
    if (run("ip netns add %s", f->ns) != 0 ||
        run("ip link add %s type veth peer name %s", f->host_if, f->ns_if) != 0 ||
        run("ip link set %s netns %s", f->ns_if, f->ns) != 0 ||
        run("ip addr add %s/30 dev %s", f->host_ip, f->host_if) != 0 || run("ip link set %s up", f->host_if) != 0 ||
        run("ip netns exec %s ip addr add %s/30 dev %s", f->ns, f->ns_ip, f->ns_if) != 0 ||
        run("ip netns exec %s ip link set %s up", f->ns, f->ns_if) != 0 ||
        run("ip netns exec %s ip link set lo up", f->ns) != 0) {
        teardown(state);
        fail_msg("cannot make the network namespace and its veth pair (run with RC_TEST_VERBOSE=1)");
    }
    return 0;
}

static void stats(refcache_client_t *c, refcache_stats_t *s)
{
    int rc = refcache_client_stats(c, s, CALL_MS);
    if (rc != REFCACHE_CODE_OK)
        fail_msg("stats: %s", refcache_strerror(rc));
}

static void wait_workers(refcache_client_t *c, uint64_t n, int ms)
{
    uint64_t deadline = rc_mono_us() + (uint64_t) ms * 1000;
    refcache_stats_t s;
    for (stats(c, &s); s.workers != n; stats(c, &s)) {
        if (rc_mono_us() > deadline)
            fail_msg("%llu workers, not %llu, after %d ms", (unsigned long long) s.workers,
                     (unsigned long long) n, ms);
        zclock_sleep(20); /* a poll interval, not a synchronisation */
    }
}

static void submit(refcache_client_t *c, const char *fn, const char *ms, uint32_t retries, char ref[33])
{
    refcache_param_t p[2] = {{"ms", ms}, {"step_ms", "10"}};
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.params = ms ? p : NULL;
    o.param_count = ms ? 2 : 0;
    o.payload = "cut";
    o.payload_len = 3;
    o.no_cache = true;
    o.max_retries = retries;
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_submit(c, fn, &o, &t, CALL_MS), REFCACHE_CODE_OK);
    snprintf(ref, 33, "%.32s", t->info.ref_id);
    refcache_task_destroy(&t);
}

/* Polls until ref is terminal (or running, with running), up to ms. */
static refcache_task_t *wait_task(refcache_client_t *c, const char *ref, bool running, int ms)
{
    uint64_t deadline = rc_mono_us() + (uint64_t) ms * 1000;
    for (;;) {
        refcache_task_t *t = NULL;
        assert_int_equal(refcache_client_status(c, ref, &t, CALL_MS), REFCACHE_CODE_OK);
        if (running ? t->info.started_at_us != 0 : rc_state_is_terminal(t->info.state))
            return t;
        if (rc_mono_us() > deadline)
            fail_msg("task %s: %s after %d ms", ref, rc_state_name(t->info.state), ms);
        refcache_task_destroy(&t);
        zclock_sleep(20); /* a poll interval, not a synchronisation */
    }
}

static void test_partition_of_a_worker_host(void **state)
{
    fixture_t *f = *state;
    char work[64], control[64];
    snprintf(work, sizeof work, "tcp://%s:*", f->host_ip);
    snprintf(control, sizeof control, "tcp://%s:*", f->host_ip);
    const char *bargs[] = {"--workers-endpoint", work, "--control", control, "--insecure", NULL};
    rc_procs_eps_t eps;
    rc_procs_broker(RC_BROKER_PATH, bargs, &eps);
    refcache_client_options_t o;
    refcache_client_options_init(&o);
    o.endpoint = eps.clients;
    f->client = refcache_client_new(&o, NULL, 0);
    assert_non_null(f->client);

    /* The worker host: two threads in the namespace, one of them running a
     * long sleep that reports progress every 10 ms. */
    const char *remote[] = {"/usr/sbin/ip", "netns", "exec", f->ns, RC_WORKER_PATH, "--workers-endpoint", eps.workers,
                            "--control", eps.control, "--threads", "2", NULL};
    rc_procs_spawn(remote);
    wait_workers(f->client, 2, 10000);
    char sleeper[33];
    submit(f->client, "sleep", "60000", 0, sleeper);
    refcache_task_t *t = wait_task(f->client, sleeper, true, CALL_MS);
    refcache_task_destroy(&t);
    /* The other worker, here. */
    const char *local[] = {RC_WORKER_PATH, "--workers-endpoint", eps.workers, "--control", eps.control,
                           "--threads", "2", NULL};
    rc_procs_spawn(local);
    wait_workers(f->client, 4, 10000);
    refcache_stats_t before;
    stats(f->client, &before);

    /* The cut: echo tasks submitted all along it. */
    assert_int_equal(run("ip link set %s down", f->host_if), 0);
    uint64_t cut = rc_mono_us();
    char refs[N_ECHO + 1][33];
    for (int i = 0; i <= N_ECHO; i++) {
        while (rc_mono_us() < cut + (uint64_t) i * (CUT_MS * 1000 / (N_ECHO + 1)))
            zclock_sleep(10); /* spreading the submits over the cut, not a synchronisation */
        submit(f->client, "echo", NULL, i == N_ECHO ? 2 : 0, refs[i]);
    }
    while (rc_mono_us() < cut + CUT_MS * 1000ull)
        zclock_sleep(10); /* the rest of the cut */
    assert_int_equal(run("ip link set %s up", f->host_if), 0);
    print_message("link of the worker host down for %.1f s\n", (rc_mono_us() - cut) / 1e6);

    /* Every echo ends COMPLETE at attempt 1, within a bound. */
    int complete = 0;
    for (int i = 0; i <= N_ECHO; i++) {
        t = wait_task(f->client, refs[i], false, 30000);
        if (t->info.state != REFCACHE_STATE_COMPLETE || t->info.attempt != 1)
            fail_msg("echo %d (%s): %s at attempt %u: %s", i, refs[i], rc_state_name(t->info.state), t->info.attempt,
                     t->info.error ? t->info.error : "");
        complete++;
        refcache_task_destroy(&t);
    }
    /* The sleep was the lost worker's: one lost attempt, no loop. */
    t = wait_task(f->client, sleeper, false, 30000);
    assert_int_equal(t->info.state, REFCACHE_STATE_FAILED);
    assert_int_equal(t->info.attempt, 1);
    refcache_task_destroy(&t);
    /* The cut-off host's threads rejoin. */
    wait_workers(f->client, 4, 20000);
    refcache_stats_t after;
    stats(f->client, &after);
    print_message("partition: %d/%d echo tasks COMPLETE at attempt 1; %llu Reannounce(s), %llu handed back, %llu "
                  "worker(s) lost, %llu stale message(s)\n",
                  complete, N_ECHO + 1, (unsigned long long) (after.reannounces_total - before.reannounces_total),
                  (unsigned long long) (after.handed_back_total - before.handed_back_total),
                  (unsigned long long) (after.workers_lost_total - before.workers_lost_total),
                  (unsigned long long) (after.stale_msgs_total - before.stale_msgs_total));
    /* At most one a second per routing id while the queues drain (the
     * storm was one per queued message: hundreds). */
    assert_true(after.reannounces_total - before.reannounces_total <= 20);
    assert_int_equal(after.failed_total - before.failed_total, 1); /* the sleep alone */
}

int main(void)
{
    if (geteuid() != 0) {
        printf("SKIP: the network-namespace fault test needs root (ip netns, veth)\n");
        return 77;
    }
    if (system("command -v ip >/dev/null 2>&1") != 0) {
        printf("SKIP: the network-namespace fault test needs ip (Debian package iproute2; scripts/setup.sh --test)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_partition_of_a_worker_host, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
