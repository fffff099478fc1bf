/* Security tests: a real broker with CURVE on (rc_broker_new,
 * ephemeral loopback ports, no in-process workers), real worker pools that
 * connect over TCP with their own keys, and clients from refcache.h. The
 * certificates are generated per test in a mkdtemp directory.
 *
 * Only one zauth (the ZAP handler) can exist per process, since it binds
 * inproc://zeromq.zap.01: each test starts at most one CURVE broker at a
 * time and destroys it before the next. Waits are polls with a timeout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rc_broker.h"
#include "rc_common.h"
#include "rc_testkit.h"
#include "refcache.h"
#include "refcache_worker.h"

#include <czmq.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CALL_MS 5000
/* How long a request from a client that cannot complete the handshake is
 * given before we call it refused; its replies never come. */
#define REFUSED_MS 400
/* Heartbeats of the test broker and pools: short, so that a pool that went
 * away is noticed within a second, but not so few that a pool slowed down
 * by a loaded machine (sanitizers, valgrind) looks lost. */
#define HEARTBEAT_MS 100
#define LIVENESS     10

/* ------------------------------------------------------------ certificates */

/* A directory of keys: KEYS/<name> (public) and KEYS/<name>_secret for every
 * identity, and the two allow-lists holding public certificates only. */
typedef struct {
    char root[64];
    char keys[96];
    char clients[96];
    char workers[96];
} keydir_t;

static void s_path(char *out, size_t len, const char *dir, const char *name)
{
    int n = snprintf(out, len, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t) n < len);
}

/* Writes a new certificate pair KEYS/name and, if allow_dir is given, its
 * public half into that allow-list. */
static void s_cert(const keydir_t *k, const char *name, const char *allow_dir)
{
    zcert_t *cert = zcert_new();
    assert_non_null(cert);
    char path[256];
    s_path(path, sizeof path, k->keys, name);
    assert_int_equal(zcert_save(cert, path), 0);
    if (allow_dir) {
        s_path(path, sizeof path, allow_dir, name);
        assert_int_equal(zcert_save_public(cert, path), 0);
    }
    zcert_destroy(&cert);
}

static keydir_t *s_keydir_new(void)
{
    keydir_t *k = calloc(1, sizeof *k);
    assert_non_null(k);
    snprintf(k->root, sizeof k->root, "/tmp/rc-sec-XXXXXX");
    assert_non_null(mkdtemp(k->root));
    s_path(k->keys, sizeof k->keys, k->root, "keys");
    s_path(k->clients, sizeof k->clients, k->root, "clients");
    s_path(k->workers, sizeof k->workers, k->root, "workers");
    assert_int_equal(mkdir(k->keys, 0700), 0);
    assert_int_equal(mkdir(k->clients, 0755), 0);
    assert_int_equal(mkdir(k->workers, 0755), 0);
    s_cert(k, "broker", NULL);
    s_cert(k, "other-broker", NULL); /* a broker key this broker does not have */
    s_cert(k, "alice", k->clients);
    s_cert(k, "bob", k->clients);
    s_cert(k, "worker", k->workers);
    s_cert(k, "stranger", NULL); /* in no allow-list */
    return k;
}

static int s_unlink(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb;
    (void) flag;
    (void) ftw;
    return remove(path);
}

static void s_keydir_destroy(keydir_t **k_p)
{
    keydir_t *k = *k_p;
    if (!k)
        return;
    nftw(k->root, s_unlink, 16, FTW_DEPTH | FTW_PHYS);
    free(k);
    *k_p = NULL;
}

/* ------------------------------------------------------------ the pieces */

typedef struct {
    keydir_t *keys;
    rc_broker_t *broker;
    refcache_pool_t *pool;  /* an allowed worker pool, or NULL */
    refcache_pool_t *rogue; /* a pool with a client key, or NULL */
    refcache_client_t *alice;
    refcache_client_t *bob;
    char secret[256];
    char broker_public[256];
} fixture_t;

static void s_config(rc_broker_config_t *c, const keydir_t *k, char *secret, size_t len)
{
    rc_broker_config_defaults(c);
    c->clients_endpoint = "tcp://127.0.0.1:*";
    c->workers_endpoint = "tcp://127.0.0.1:*";
    c->control_endpoint = "tcp://127.0.0.1:*";
    c->workers = 0;
    c->heartbeat_ms = HEARTBEAT_MS;
    c->liveness = LIVENESS;
    s_path(secret, len, k->keys, "broker_secret");
    c->curve_secret_file = secret;
    c->clients_allowed_dir = k->clients;
    c->workers_allowed_dir = k->workers;
}

/* A client of f's broker using key KEYS/key (NULL: no CURVE) and the broker
 * public certificate KEYS/server (NULL: the real one). */
static refcache_client_t *s_client_ns(fixture_t *f, const char *key, const char *server, const char *ns)
{
    char secret[256], pub[256], err[256] = "";
    refcache_client_options_t o;
    refcache_client_options_init(&o);
    o.endpoint = rc_broker_endpoint(f->broker, RC_EP_CLIENTS);
    o.namespace_name = ns;
    if (key) {
        s_path(secret, sizeof secret, f->keys->keys, key);
        s_path(pub, sizeof pub, f->keys->keys, server ? server : "broker");
        o.curve_secret_file = secret;
        o.broker_public_file = pub;
    }
    refcache_client_t *c = refcache_client_new(&o, err, sizeof err);
    if (!c)
        fail_msg("refcache_client_new(%s): %s", key ? key : "no key", err);
    return c;
}

static refcache_client_t *s_client(fixture_t *f, const char *key, const char *server)
{
    return s_client_ns(f, key, server, NULL);
}

/* A pool of `threads` worker threads connecting over TCP with KEYS/key. */
static refcache_pool_t *s_pool(fixture_t *f, const char *key, int threads)
{
    char secret[256], pub[256], err[256] = "";
    s_path(secret, sizeof secret, f->keys->keys, key);
    s_path(pub, sizeof pub, f->keys->keys, "broker");
    refcache_pool_config_t pc = {
        .work_endpoint = rc_broker_endpoint(f->broker, RC_EP_WORKERS),
        .control_endpoint = rc_broker_endpoint(f->broker, RC_EP_CONTROL),
        .threads = threads,
        .heartbeat_ms = HEARTBEAT_MS,
        .liveness = LIVENESS,
        .curve_secret_file = secret,
        .broker_public_file = pub,
    };
    refcache_pool_t *p = refcache_pool_new(&pc, err, sizeof err);
    if (!p)
        fail_msg("refcache_pool_new(%s): %s", key, err);
    return p;
}

/* Starts the CURVE broker; extra (may be NULL) adjusts its config first. A
 * pool of `threads` allowed workers (0: none) and the clients alice and bob
 * are connected once the broker is ready. */
static fixture_t *s_live;

static fixture_t *s_start_with(keydir_t *k, const char *shared_namespaces, int threads)
{
    assert_null(s_live);
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    s_live = f;
    f->keys = k;
    rc_broker_config_t c;
    s_config(&c, k, f->secret, sizeof f->secret);
    c.shared_namespaces = shared_namespaces;
    char err[256] = "";
    f->broker = rc_broker_new(&c, err, sizeof err);
    if (!f->broker)
        fail_msg("rc_broker_new: %s", err);
    f->alice = s_client(f, "alice", NULL);
    f->bob = s_client(f, "bob", NULL);
    if (threads > 0) {
        f->pool = s_pool(f, "worker", threads);
        rc_testkit_wait_workers(f->alice, (uint64_t) threads, CALL_MS);
    }
    return f;
}

static void s_stop(fixture_t **f_p)
{
    fixture_t *f = *f_p;
    if (!f)
        return;
    refcache_client_destroy(&f->alice);
    refcache_client_destroy(&f->bob);
    refcache_pool_destroy(&f->pool);
    refcache_pool_destroy(&f->rogue);
    rc_broker_destroy(&f->broker);
    free(f);
    if (s_live == f)
        s_live = NULL;
    *f_p = NULL;
}

static int setup(void **state)
{
    *state = s_keydir_new();
    return 0;
}

/* Also stops what a failed test left running: its zauth would keep the next
 * CURVE broker from starting. */
static int teardown(void **state)
{
    s_stop(&s_live);
    keydir_t *k = *state;
    s_keydir_destroy(&k);
    return 0;
}

/* ------------------------------------------------------------ helpers */

static void s_submit(refcache_client_t *c, const char *fn, const refcache_submit_options_t *o,
                     refcache_task_t **info)
{
    int rc = refcache_client_submit(c, fn, o, info, CALL_MS);
    if (rc != REFCACHE_CODE_OK)
        fail_msg("submit %s: %s (%s)", fn, refcache_strerror(rc), refcache_client_message(c));
}

/* Submits echo with payload text (namespace ns, may be NULL), waiting up to
 * a second for the result. */
static void s_echo(refcache_client_t *c, const char *ns, const char *text, refcache_task_t **info)
{
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.payload = text;
    o.payload_len = strlen(text);
    o.namespace_name = ns;
    o.async_timeout_ms = 2000;
    s_submit(c, "echo", &o, info);
    assert_int_equal((*info)->info.state, REFCACHE_STATE_COMPLETE);
    assert_int_equal((*info)->info.result_len, strlen(text));
    assert_memory_equal((*info)->info.result, text, strlen(text));
}

/* Polls Status until the task is in `state`, up to ms. */
static void s_wait_state(refcache_client_t *c, const char *ref, int state, int ms)
{
    int64_t until = zclock_mono() + ms;
    refcache_task_t *info = NULL;
    int last = -1;
    do {
        int rc = refcache_client_status(c, ref, &info, CALL_MS);
        if (rc != REFCACHE_CODE_OK)
            fail_msg("status %s: %s", ref, refcache_strerror(rc));
        last = info->info.state;
        refcache_task_destroy(&info);
        if (last == state)
            return;
        zclock_sleep(10);
    } while (zclock_mono() < until);
    fail_msg("task %s stayed in state %d, expected %d", ref, last, state);
}

/* ------------------------------------------------------------ tests */

/* The README's cancellation scenario, with CURVE on every socket. */
static void test_seed_scenario_with_curve(void **state)
{
    fixture_t *f = s_start_with(*state, NULL, 1);
    refcache_param_t p[] = {{"ms", "5000"}};
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.params = p;
    o.param_count = 1;
    o.async_timeout_ms = 100;
    refcache_task_t *info = NULL;
    s_submit(f->alice, "sleep", &o, &info);
    char ref[REFCACHE_REF_MAX + 1];
    snprintf(ref, sizeof ref, "%s", info->info.ref_id);
    assert_int_equal(strlen(ref), 32);
    /* Reported after 100 ms: the worker has it by then (poll, in case the
     * machine is slow). */
    if (info->info.state != REFCACHE_STATE_PROCESSING)
        s_wait_state(f->alice, ref, REFCACHE_STATE_PROCESSING, CALL_MS);
    refcache_task_destroy(&info);

    bool cancelled = false;
    int st = -1;
    assert_int_equal(refcache_client_cancel(f->alice, ref, &cancelled, &st, CALL_MS), REFCACHE_CODE_OK);
    assert_true(cancelled);
    assert_int_equal(st, REFCACHE_STATE_CANCELLED);
    assert_int_equal(refcache_client_status(f->alice, ref, &info, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(info->info.state, REFCACHE_STATE_CANCELLED);
    refcache_task_destroy(&info);
    assert_int_equal(refcache_client_cancel(f->alice, ref, &cancelled, &st, CALL_MS), REFCACHE_CODE_OK);
    assert_false(cancelled);
    assert_int_equal(st, REFCACHE_STATE_CANCELLED);

    /* The worker really stopped (it acknowledged) and is free again. */
    int64_t until = zclock_mono() + CALL_MS;
    do {
        assert_int_equal(refcache_client_status(f->alice, ref, &info, CALL_MS), REFCACHE_CODE_OK);
        bool stopped = info->info.stopped_at_us != 0;
        refcache_task_destroy(&info);
        if (stopped)
            break;
        zclock_sleep(10);
    } while (zclock_mono() < until);
    if (zclock_mono() >= until) {
        refcache_stats_t s;
        rc_testkit_stats(f->alice, &s);
        fail_msg("no stop acknowledged within %d ms (pool finished %llu tasks; broker: workers %llu, "
                 "dropped replies %llu, stale %llu, bad worker msgs %llu, lost %llu)",
                 CALL_MS, (unsigned long long) refcache_pool_tasks_done(f->pool),
                 (unsigned long long) s.workers, (unsigned long long) s.dropped_replies_total,
                 (unsigned long long) s.stale_msgs_total, (unsigned long long) s.bad_worker_msgs_total,
                 (unsigned long long) s.workers_lost_total);
    }
    s_echo(f->alice, NULL, "after the cancel", &info);
    refcache_task_destroy(&info);
    s_stop(&f);
}

/* No reply came. Once libzmq has given up on a failed handshake the DEALER
 * has no pipe left, and the library reports a non-blocking send that would
 * block as EAGAIN instead of waiting out the timeout. */
static bool s_refused(int rc)
{
    return rc == REFCACHE_ETIMEOUT || rc == REFCACHE_EAGAIN;
}

/* A client without a key, with a key in no allow-list, or with the wrong
 * broker key never gets past the handshake: no reply, nothing executed. */
static void test_unauthenticated_clients_time_out(void **state)
{
    fixture_t *f = s_start_with(*state, NULL, 1);
    refcache_stats_t before, after;
    rc_testkit_stats(f->alice, &before);

    struct {
        const char *key, *server;
    } cases[] = {{NULL, NULL}, {"stranger", NULL}, {"alice", "other-broker"}, {"stranger", "other-broker"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        refcache_client_t *c = s_client(f, cases[i].key, cases[i].server);
        refcache_submit_options_t o;
        refcache_submit_options_init(&o);
        o.payload = "intruder";
        o.payload_len = 8;
        o.no_cache = true;
        refcache_task_t *info = NULL;
        int rc = refcache_client_submit(c, "echo", &o, &info, REFUSED_MS);
        refcache_task_destroy(&info);
        refcache_stats_t s;
        int rc2 = refcache_client_stats(c, &s, REFUSED_MS);
        if (!s_refused(rc) || !s_refused(rc2))
            fail_msg("case %zu (key %s, server %s): submit answered %s, stats %s; expected no reply", i,
                     cases[i].key ? cases[i].key : "none", cases[i].server ? cases[i].server : "broker",
                     refcache_strerror(rc), refcache_strerror(rc2));
        refcache_client_destroy(&c);
    }

    /* An allowed client's task behind them completes (the queue is FIFO, so
     * anything the intruders had slipped in would have run first). */
    refcache_task_t *info = NULL;
    s_echo(f->alice, NULL, "legit", &info);
    refcache_task_destroy(&info);
    rc_testkit_stats(f->alice, &after);
    assert_int_equal(after.submitted_total, before.submitted_total + 1);
    assert_int_equal(after.requests_total, before.requests_total + 2); /* one Stats, one Submit */
    assert_int_equal(refcache_pool_tasks_done(f->pool), 1);
    s_stop(&f);
}

/* Bob cannot see, wait for, read, cancel or delete Alice's task: every call
 * answers NOT_FOUND, exactly as for an id that does not exist; Alice's task
 * runs on and completes. */
static void test_owner_isolation(void **state)
{
    fixture_t *f = s_start_with(*state, NULL, 1);
    refcache_param_t p[] = {{"ms", "600"}};
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.params = p;
    o.param_count = 1;
    o.async_timeout_ms = 100;
    refcache_task_t *info = NULL;
    s_submit(f->alice, "sleep", &o, &info);
    char ref[REFCACHE_REF_MAX + 1];
    snprintf(ref, sizeof ref, "%s", info->info.ref_id);
    refcache_task_destroy(&info);
    const char *missing = "0123456789abcdef0123456789abcdef";

    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: while it runs; pass 1: once it is COMPLETE. */
        const char *ids[] = {ref, missing};
        char messages[2][128];
        for (int i = 0; i < 2; i++) {
            refcache_page_t *page = NULL;
            bool cancelled = true, found = true;
            assert_int_equal(refcache_client_status(f->bob, ids[i], &info, CALL_MS), REFCACHE_CODE_NOT_FOUND);
            snprintf(messages[i], sizeof messages[i], "%s", refcache_client_message(f->bob));
            refcache_task_destroy(&info);
            assert_int_equal(refcache_client_wait(f->bob, ids[i], 200, &info, CALL_MS),
                             REFCACHE_CODE_NOT_FOUND);
            refcache_task_destroy(&info);
            assert_int_equal(refcache_client_fetch(f->bob, ids[i], 0, 0, &page, CALL_MS),
                             REFCACHE_CODE_NOT_FOUND);
            refcache_page_destroy(&page);
            assert_int_equal(refcache_client_cancel(f->bob, ids[i], &cancelled, NULL, CALL_MS),
                             REFCACHE_CODE_NOT_FOUND);
            assert_false(cancelled);
            assert_int_equal(refcache_client_delete(f->bob, ids[i], &found, CALL_MS),
                             REFCACHE_CODE_NOT_FOUND);
            assert_false(found);
        }
        assert_string_equal(messages[0], messages[1]); /* indistinguishable */
        if (pass == 0) {
            /* Still Alice's and still running; then it completes. */
            assert_int_equal(refcache_client_status(f->alice, ref, &info, CALL_MS), REFCACHE_CODE_OK);
            assert_true(info->info.state == REFCACHE_STATE_PENDING ||
                        info->info.state == REFCACHE_STATE_PROCESSING);
            refcache_task_destroy(&info);
            assert_int_equal(refcache_client_wait(f->alice, ref, CALL_MS, &info, CALL_MS), REFCACHE_CODE_OK);
            assert_int_equal(info->info.state, REFCACHE_STATE_COMPLETE);
            refcache_task_destroy(&info);
        }
    }
    /* Alice still owns it: she reads and deletes it. */
    refcache_page_t *page = NULL;
    assert_int_equal(refcache_client_fetch(f->alice, ref, 0, 0, &page, CALL_MS), REFCACHE_CODE_OK);
    refcache_page_destroy(&page);
    bool found = false;
    assert_int_equal(refcache_client_delete(f->alice, ref, &found, CALL_MS), REFCACHE_CODE_OK);
    assert_true(found);
    s_stop(&f);
}

/* Identical cacheable submits by two owners are two tasks; the cache serves
 * each owner its own results, and crosses owners only in a namespace the
 * broker lists as shared. */
static void test_cache_does_not_cross_owners(void **state)
{
    fixture_t *f = s_start_with(*state, "pub", 1);
    refcache_task_t *a = NULL, *a2 = NULL, *b = NULL;
    const char *spaces[] = {NULL, "private"};
    for (size_t i = 0; i < 2; i++) {
        s_echo(f->alice, spaces[i], "same input", &a);
        assert_false(a->info.cache_hit);
        s_echo(f->alice, spaces[i], "same input", &a2); /* the cache works... */
        assert_true(a2->info.cache_hit);
        assert_string_not_equal(a2->info.ref_id, a->info.ref_id); /* a handle of its own */
        s_echo(f->bob, spaces[i], "same input", &b); /* ...but not across owners */
        assert_false(b->info.cache_hit);
        assert_false(b->info.deduplicated);
        assert_string_not_equal(b->info.ref_id, a->info.ref_id);
        refcache_task_destroy(&a);
        refcache_task_destroy(&a2);
        refcache_task_destroy(&b);
    }

    /* In the shared namespace, Bob's identical submit is a cache hit. */
    s_echo(f->alice, "pub", "shared input", &a);
    assert_false(a->info.cache_hit);
    s_echo(f->bob, "pub", "shared input", &b);
    assert_true(b->info.cache_hit);
    refcache_task_destroy(&a);
    refcache_task_destroy(&b);
    refcache_stats_t s;
    rc_testkit_stats(f->alice, &s);
    assert_int_equal(s.cache_hits_total, 3); /* Alice's two repeats, Bob in "pub" */
    s_stop(&f);
}

/* A shared-namespace cache hit hands Bob the ref_id of Alice's task: tasks
 * in a shared namespace are visible to every owner, so Bob can read it. */
static void test_shared_cache_hit_is_readable(void **state)
{
    fixture_t *f = s_start_with(*state, "pub", 1);
    refcache_task_t *a = NULL, *b = NULL, *st = NULL;
    s_echo(f->alice, "pub", "shared input", &a);
    s_echo(f->bob, "pub", "shared input", &b);
    assert_true(b->info.cache_hit);
    /* Bob reads it from inside the shared namespace... */
    refcache_client_t *bob_pub = s_client_ns(f, "bob", NULL, "pub");
    int rc = refcache_client_status(bob_pub, b->info.ref_id, &st, CALL_MS);
    refcache_task_destroy(&st);
    /* ...and, like anyone, not from outside it. */
    int outside = refcache_client_status(f->bob, b->info.ref_id, &st, CALL_MS);
    refcache_task_destroy(&st);
    refcache_client_destroy(&bob_pub);
    assert_int_equal(outside, REFCACHE_CODE_NOT_FOUND);
    refcache_task_destroy(&a);
    refcache_task_destroy(&b);
    s_stop(&f);
    assert_int_equal(rc, REFCACHE_CODE_OK);
}

/* A worker key cannot act as a client: PERMISSION_DENIED, nothing queued. */
static void test_worker_key_cannot_submit(void **state)
{
    fixture_t *f = s_start_with(*state, NULL, 1);
    refcache_stats_t before, after;
    rc_testkit_stats(f->alice, &before);
    refcache_client_t *c = s_client(f, "worker", NULL);
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.payload = "x";
    o.payload_len = 1;
    refcache_task_t *info = NULL;
    assert_int_equal(refcache_client_submit(c, "echo", &o, &info, CALL_MS), REFCACHE_CODE_PERMISSION_DENIED);
    refcache_task_destroy(&info);
    refcache_stats_t s;
    assert_int_equal(refcache_client_stats(c, &s, CALL_MS), REFCACHE_CODE_PERMISSION_DENIED);
    assert_int_equal(refcache_client_status(c, "0123456789abcdef0123456789abcdef", &info, CALL_MS),
                     REFCACHE_CODE_PERMISSION_DENIED);
    refcache_task_destroy(&info);
    refcache_client_destroy(&c);
    rc_testkit_stats(f->alice, &after);
    assert_int_equal(after.submitted_total, before.submitted_total);
    assert_int_equal(refcache_pool_tasks_done(f->pool), 0);
    s_stop(&f);
}

/* A client key cannot join as a worker: its Ready and heartbeats are dropped
 * and counted, it is never counted as a worker, and it receives no job. */
static void test_client_key_cannot_work(void **state)
{
    /* An allowed pool first, so that the broker knows the function `echo`
     * (it answers UNIMPLEMENTED for a function no worker ever declared);
     * then it leaves and only the rogue pool is connected. */
    fixture_t *f = s_start_with(*state, NULL, 1);
    refcache_pool_destroy(&f->pool);
    rc_testkit_wait_workers(f->alice, 0, CALL_MS);
    refcache_stats_t s;
    rc_testkit_stats(f->alice, &s);
    uint64_t bad_before = s.bad_worker_msgs_total;

    f->rogue = s_pool(f, "alice", 2);
    int64_t until = zclock_mono() + CALL_MS;
    do {
        rc_testkit_stats(f->alice, &s);
        if (s.bad_worker_msgs_total > bad_before)
            break;
        zclock_sleep(10);
    } while (zclock_mono() < until);
    assert_true(s.bad_worker_msgs_total > bad_before);

    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.payload = "for the rogue?";
    o.payload_len = strlen(o.payload);
    refcache_task_t *info = NULL;
    s_submit(f->bob, "echo", &o, &info);
    assert_int_equal(info->info.state, REFCACHE_STATE_PENDING);
    char ref[REFCACHE_REF_MAX + 1];
    snprintf(ref, sizeof ref, "%s", info->info.ref_id);
    refcache_task_destroy(&info);

    /* Watch it for 15 heartbeat intervals, while the rogue pool keeps
     * sending: never dispatched. */
    until = zclock_mono() + 15 * HEARTBEAT_MS;
    do {
        assert_int_equal(refcache_client_status(f->bob, ref, &info, CALL_MS), REFCACHE_CODE_OK);
        assert_int_equal(info->info.state, REFCACHE_STATE_PENDING);
        assert_false(info->info.ever_started);
        refcache_task_destroy(&info);
        rc_testkit_stats(f->alice, &s);
        assert_int_equal(s.workers, 0);
        zclock_sleep(20);
    } while (zclock_mono() < until);
    assert_true(s.bad_worker_msgs_total > bad_before);
    assert_int_equal(refcache_pool_tasks_done(f->rogue), 0);

    /* The same task runs as soon as an allowed worker joins: it was waiting
     * for a worker, not lost. */
    f->pool = s_pool(f, "worker", 1);
    assert_int_equal(refcache_client_wait(f->bob, ref, CALL_MS, &info, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(info->info.state, REFCACHE_STATE_COMPLETE);
    refcache_task_destroy(&info);
    assert_int_equal(refcache_pool_tasks_done(f->rogue), 0);
    s_stop(&f);
}

static bool s_is_hex32(const char *s)
{
    if (strlen(s) != 32)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* 1000 submits, 1000 distinct 32-hex-character ids: a sanity check of the
 * format and uniqueness, not a proof of randomness. */
static void test_ref_ids_distinct(void **state)
{
    enum { N = 1000 };
    fixture_t *f = s_start_with(*state, NULL, 2);
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.payload = "id";
    o.payload_len = 2;
    o.no_cache = true; /* each submit a new task */
    for (int i = 0; i < N; i++)
        assert_int_equal(refcache_client_send_submit(f->alice, "echo", &o, NULL), 0);
    zhashx_t *seen = zhashx_new();
    assert_non_null(seen);
    zhashx_set_duplicator(seen, NULL);
    for (int i = 0; i < N; i++) {
        refcache_reply_t r;
        assert_int_equal(refcache_client_recv(f->alice, &r, CALL_MS), 0);
        assert_int_equal(r.code, REFCACHE_CODE_OK);
        assert_int_equal(r.kind, REFCACHE_REPLY_SUBMIT);
        if (!s_is_hex32(r.task.ref_id))
            fail_msg("ref_id '%s' is not 32 lower-case hex characters", r.task.ref_id);
        if (zhashx_insert(seen, r.task.ref_id, (void *) "") != 0)
            fail_msg("ref_id %s handed out twice", r.task.ref_id);
    }
    assert_int_equal(zhashx_size(seen), N);
    zhashx_destroy(&seen);
    s_stop(&f);
}

/* Loopback only without CURVE; a non-loopback address needs CURVE or an
 * explicit insecure. */
static void test_non_loopback_bind(void **state)
{
    keydir_t *k = *state;
    char secret[256], err[256];
    rc_broker_config_t c;
    const char *wide[] = {"tcp://0.0.0.0:*", "tcp://*:*", "tcp://[::]:*"};
    for (int which = 0; which < 3; which++) {
        for (size_t w = 0; w < sizeof wide / sizeof wide[0]; w++) {
            rc_broker_config_defaults(&c);
            c.clients_endpoint = "tcp://127.0.0.1:*";
            c.workers_endpoint = "tcp://127.0.0.1:*";
            c.control_endpoint = "tcp://127.0.0.1:*";
            const char **ep = which == 0   ? &c.clients_endpoint
                              : which == 1 ? &c.workers_endpoint
                                           : &c.control_endpoint;
            *ep = wide[w];
            err[0] = '\0';
            rc_broker_t *b = rc_broker_new(&c, err, sizeof err);
            if (b) {
                rc_broker_destroy(&b);
                fail_msg("endpoint %d = %s was bound without CURVE or insecure", which, wide[w]);
            }
            if (!strstr(err, wide[w]) || !strstr(err, "CURVE") || !strstr(err, "insecure"))
                fail_msg("unclear error for %s: '%s'", wide[w], err);
        }
    }

    /* Explicitly insecure: allowed (if this machine lets us bind 0.0.0.0). */
    rc_broker_config_defaults(&c);
    c.clients_endpoint = "tcp://0.0.0.0:*";
    c.workers_endpoint = "tcp://127.0.0.1:*";
    c.control_endpoint = "tcp://127.0.0.1:*";
    c.insecure = true;
    err[0] = '\0';
    rc_broker_t *b = rc_broker_new(&c, err, sizeof err);
    if (!b && !strstr(err, "cannot bind"))
        fail_msg("insecure bind of 0.0.0.0 refused: %s", err);
    if (b)
        assert_non_null(strstr(rc_broker_endpoint(b, RC_EP_CLIENTS), "tcp://0.0.0.0:"));
    rc_broker_destroy(&b);

    /* With CURVE: allowed, and an allowed client is served over it. */
    s_config(&c, k, secret, sizeof secret);
    c.clients_endpoint = "tcp://0.0.0.0:*";
    err[0] = '\0';
    s_live = calloc(1, sizeof *s_live);
    assert_non_null(s_live);
    s_live->broker = rc_broker_new(&c, err, sizeof err);
    if (!s_live->broker && !strstr(err, "cannot bind"))
        fail_msg("CURVE bind of 0.0.0.0 refused: %s", err);
    if (s_live->broker) {
        /* Connect through loopback to the wildcard port. */
        const char *bound = rc_broker_endpoint(s_live->broker, RC_EP_CLIENTS);
        char ep[64];
        snprintf(ep, sizeof ep, "tcp://127.0.0.1:%s", strrchr(bound, ':') + 1);
        char csecret[256], cpub[256];
        s_path(csecret, sizeof csecret, k->keys, "alice");
        s_path(cpub, sizeof cpub, k->keys, "broker");
        refcache_client_options_t o;
        refcache_client_options_init(&o);
        o.endpoint = ep;
        o.curve_secret_file = csecret;
        o.broker_public_file = cpub;
        refcache_client_t *cl = refcache_client_new(&o, err, sizeof err);
        assert_non_null(cl);
        refcache_stats_t s;
        assert_int_equal(refcache_client_stats(cl, &s, CALL_MS), REFCACHE_CODE_OK);
        refcache_client_destroy(&cl);
        /* ...and a client without a key is not. */
        o.curve_secret_file = o.broker_public_file = NULL;
        cl = refcache_client_new(&o, err, sizeof err);
        assert_non_null(cl);
        assert_int_equal(refcache_client_stats(cl, &s, REFUSED_MS), REFCACHE_ETIMEOUT);
        refcache_client_destroy(&cl);
    }
    s_stop(&s_live);
}

/* Expects rc_broker_new to fail with an error that mentions `needle`. */
static void s_broker_fails(const rc_broker_config_t *c, const char *needle)
{
    char err[512] = "";
    rc_broker_t *b = rc_broker_new(c, err, sizeof err);
    if (b) {
        rc_broker_destroy(&b);
        fail_msg("rc_broker_new accepted a bad configuration (expected an error naming %s)", needle);
    }
    if (!strstr(err, needle))
        fail_msg("error '%s' does not name %s", err, needle);
}

static void test_bad_broker_key_files(void **state)
{
    keydir_t *k = *state;
    char secret[256], path[256];
    rc_broker_config_t c;

    /* A missing secret certificate. */
    s_config(&c, k, secret, sizeof secret);
    s_path(path, sizeof path, k->keys, "nonexistent_secret");
    c.curve_secret_file = path;
    s_broker_fails(&c, path);

    /* A public certificate with no secret beside it. */
    s_config(&c, k, secret, sizeof secret);
    s_path(path, sizeof path, k->clients, "alice"); /* as copied into an allow-list */
    c.curve_secret_file = path;
    s_broker_fails(&c, path);

    /* Files that are not certificates: empty, and a stray word. (Not a
     * line with a syntax error: CZMQ 4.2.1's zconfig_load leaks its zfile
     * then, which the sanitizer and valgrind runs would report.) */
    const char *junk[] = {"", "not-a-certificate\n"};
    for (size_t i = 0; i < 2; i++) {
        s_path(path, sizeof path, k->root, i == 0 ? "empty_secret" : "junk_secret");
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(junk[i], fp);
        fclose(fp);
        s_config(&c, k, secret, sizeof secret);
        c.curve_secret_file = path;
        s_broker_fails(&c, path);
    }

    /* An unreadable secret certificate (root reads anything: skipped). */
    if (geteuid() != 0) {
        s_config(&c, k, secret, sizeof secret);
        assert_int_equal(chmod(secret, 0), 0);
        s_broker_fails(&c, secret);
        assert_int_equal(chmod(secret, 0600), 0);
    }

    /* A missing allow-list directory, of either kind. */
    s_config(&c, k, secret, sizeof secret);
    s_path(path, sizeof path, k->root, "no-such-dir");
    c.clients_allowed_dir = path;
    s_broker_fails(&c, path);
    s_config(&c, k, secret, sizeof secret);
    c.workers_allowed_dir = path;
    s_broker_fails(&c, path);

    /* Allow-lists without CURVE would check nobody: refused. */
    s_config(&c, k, secret, sizeof secret);
    c.curve_secret_file = NULL;
    s_broker_fails(&c, "--curve-secret");

    /* CURVE without allow-lists. */
    s_config(&c, k, secret, sizeof secret);
    c.workers_allowed_dir = NULL;
    s_broker_fails(&c, "--workers-allowed");

    /* After all that, the good configuration still starts (and no zauth was
     * left behind by a failed start). */
    fixture_t *f = s_start_with(k, NULL, 0);
    refcache_stats_t s;
    rc_testkit_stats(f->alice, &s);
    s_stop(&f);
}

static void test_bad_client_and_worker_key_files(void **state)
{
    keydir_t *k = *state;
    char secret[256], pub[256], err[512];
    refcache_client_options_t o;

    /* Client: missing secret, missing broker public, public-only secret,
     * only one of the two. No broker is needed to check these. */
    struct {
        const char *secret_dir, *secret, *pub_dir, *pub;
        int named; /* 0: the error names the secret file, 1: the public one */
    } cases[] = {
        {k->keys, "nonexistent", k->keys, "broker", 0},
        {k->keys, "alice", k->keys, "nonexistent-broker", 1},
        {k->clients, "alice", k->keys, "broker", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        refcache_client_options_init(&o);
        o.endpoint = "tcp://127.0.0.1:1";
        s_path(secret, sizeof secret, cases[i].secret_dir, cases[i].secret);
        s_path(pub, sizeof pub, cases[i].pub_dir, cases[i].pub);
        o.curve_secret_file = secret;
        o.broker_public_file = pub;
        err[0] = '\0';
        refcache_client_t *cl = refcache_client_new(&o, err, sizeof err);
        if (cl) {
            refcache_client_destroy(&cl);
            fail_msg("client case %zu: accepted a bad certificate", i);
        }
        if (!strstr(err, cases[i].named ? pub : secret))
            fail_msg("client case %zu: error '%s' does not name the file", i, err);
    }
    refcache_client_options_init(&o);
    o.endpoint = "tcp://127.0.0.1:1";
    o.curve_secret_file = secret;
    err[0] = '\0';
    assert_null(refcache_client_new(&o, err, sizeof err));
    assert_non_null(strstr(err, "CURVE"));

    /* Worker pool: the same. */
    struct {
        const char *secret_dir, *secret, *pub_dir, *pub;
        int named;
    } wcases[] = {
        {k->keys, "nonexistent", k->keys, "broker", 0},
        {k->keys, "worker", k->keys, "nonexistent-broker", 1},
        {k->workers, "worker", k->keys, "broker", 0},
    };
    for (size_t i = 0; i < sizeof wcases / sizeof wcases[0]; i++) {
        s_path(secret, sizeof secret, wcases[i].secret_dir, wcases[i].secret);
        s_path(pub, sizeof pub, wcases[i].pub_dir, wcases[i].pub);
        refcache_pool_config_t pc = {
            .work_endpoint = "tcp://127.0.0.1:1",
            .control_endpoint = "tcp://127.0.0.1:2",
            .threads = 1,
            .curve_secret_file = secret,
            .broker_public_file = pub,
        };
        err[0] = '\0';
        refcache_pool_t *p = refcache_pool_new(&pc, err, sizeof err);
        if (p) {
            refcache_pool_destroy(&p);
            fail_msg("worker case %zu: accepted a bad certificate", i);
        }
        if (!strstr(err, wcases[i].named ? pub : secret))
            fail_msg("worker case %zu: error '%s' does not name the file", i, err);
    }
    refcache_pool_config_t pc = {.threads = 1, .curve_secret_file = secret};
    err[0] = '\0';
    assert_null(refcache_pool_new(&pc, err, sizeof err));
    assert_non_null(strstr(err, "CURVE"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seed_scenario_with_curve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unauthenticated_clients_time_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_does_not_cross_owners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_cache_hit_is_readable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_key_cannot_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_key_cannot_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ref_ids_distinct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_loopback_bind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_broker_key_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_client_and_worker_key_files, setup, teardown),
    };
    /* RC_TEST_FILTER=test_owner_isolation runs a single test (a glob). */
    if (getenv("RC_TEST_FILTER"))
        cmocka_set_test_filter(getenv("RC_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
