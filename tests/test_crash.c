/* Crash cycles: refcache-broker on a store is killed with SIGKILL at random
 * moments under a mixed load — submits of quick and slow tasks, retryable
 * failures with retries pending, cancels, deletes, idempotent submits —
 * and started again on the same store, many times. After each restart
 * every ref_id a client was handed is checked against what it was told:
 * a Submit's reply promised the task exists (until its TTL, here long), a
 * cancel's `cancelled = true` that it stays CANCELLED, a Delete's `found`
 * that it is gone, and an echo that completed has its payload as result.
 * A reply that was not received promised nothing and is not checked.
 * scripts/crash.sh runs more cycles, longer, outside CI. Then a full disk
 * (RLIMIT_FSIZE on the broker): refusals that name it, reads that go on,
 * and nothing answered lost. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rc_common.h"
#include "rc_testkit.h"
#include "refcache.h"

#define CALL_MS 400 /* a call to a killed broker gives up after this */

enum { ECHO, SLEEP, FAIL, KEYED };

typedef struct {
    char ref[REFCACHE_REF_MAX + 1];
    uint8_t kind;
    bool cancelled, deleted; /* what the broker told */
    bool maybe_gone;         /* a Delete was sent whose reply did not come: it may have been done */
    uint32_t n;              /* the payload's number (echo, keyed) */
} told_t;

typedef struct {
    told_t *v;
    size_t n, cap;
} ledger_t;

static told_t *s_add(ledger_t *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        assert_non_null(l->v);
    }
    memset(&l->v[l->n], 0, sizeof l->v[0]);
    return &l->v[l->n++];
}

/* Starts refcache-broker on store; its client endpoint in ep. With fsize,
 * the files it writes may not grow beyond fsize bytes (RLIMIT_FSIZE, its
 * SIGXFSZ ignored: a write past it fails with EFBIG, as on a full disk). */
static pid_t s_broker_limited(const char *store, char *ep, size_t eplen, rlim_t fsize)
{
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        if (fsize) {
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl = {fsize, fsize};
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
                _exit(126);
        }
        execl(RC_BROKER_PATH, "refcache-broker", "--store", store, "--workers", "2", "--clients",
              "tcp://127.0.0.1:*", "--workers-endpoint", "tcp://127.0.0.1:*", "--control",
              "tcp://127.0.0.1:*", "--retry-base-ms", "20", "--retry-max-ms", "40", "--ttl", "3600",
              (char *) NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[512];
    ep[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "clients ", 8) == 0)
            snprintf(ep, eplen, "%.*s", (int) strcspn(line + 8, "\n"), line + 8);
        if (strncmp(line, "ready", 5) == 0)
            break;
    }
    fclose(f);
    if (!ep[0])
        fail_msg("refcache-broker did not start on %s", store);
    return pid;
}

static pid_t s_broker(const char *store, char *ep, size_t eplen)
{
    return s_broker_limited(store, ep, eplen, 0);
}

typedef struct {
    pid_t pid;
    int delay_ms;
    atomic_bool killed;
} killer_t;

static void *s_killer(void *arg)
{
    killer_t *k = arg;
    usleep((useconds_t) k->delay_ms * 1000);
    kill(k->pid, SIGKILL);
    atomic_store(&k->killed, true);
    return NULL;
}

static uint64_t s_rng = 0x9e3779b97f4a7c15ull;
static pid_t s_live; /* the broker running now, killed by the teardown if a check fails */

/* Fills o (with p, the buffers given) for a random Submit; returns its
 * function. */
static const char *s_random_submit(uint64_t r, uint32_t n, refcache_submit_options_t *o, refcache_param_t *p,
                                   char *payload, char *sleep_ms, char *key, uint8_t *kind)
{
    const char *fn = "echo";
    refcache_submit_options_init(o);
    *kind = r < 50 ? ECHO : r < 70 ? SLEEP : r < 85 ? FAIL : KEYED;
    snprintf(payload, 32, "p%u", n);
    o->payload = payload;
    o->payload_len = strlen(payload);
    o->no_cache = true;
    if (*kind == SLEEP) {
        fn = "sleep";
        snprintf(sleep_ms, 16, "%u", 10 + (unsigned) (rc_testkit_rnd(&s_rng) % 90));
        p[0] = (refcache_param_t){"ms", sleep_ms};
        o->params = p;
        o->param_count = 1;
    } else if (*kind == FAIL) {
        fn = "fail";
        p[0] = (refcache_param_t){"retryable", "1"};
        p[1] = (refcache_param_t){"message", "again"};
        o->params = p;
        o->param_count = 2;
        o->max_retries = 2;
    } else if (*kind == KEYED) {
        snprintf(key, 32, "k%u", n);
        o->request_key = key;
    }
    o->async_timeout_ms = *kind == ECHO && r % 2 ? 100 : 0;
    return fn;
}

/* A burst of pipelined Submits: each reply received goes in the ledger.
 * False once a reply does not come (the broker was killed). */
static bool s_burst(refcache_client_t *c, ledger_t *l, uint32_t *counter)
{
    enum { MAX = 64 };
    struct {
        uint64_t id;
        uint32_t n;
        uint8_t kind;
    } sent[MAX];
    size_t k = 1 + rc_testkit_rnd(&s_rng) % MAX;
    char payload[32], sleep_ms[16], key[32];
    for (size_t i = 0; i < k; i++) {
        refcache_submit_options_t o;
        refcache_param_t p[2];
        sent[i].n = ++*counter;
        const char *fn = s_random_submit(rc_testkit_rnd(&s_rng) % 100, sent[i].n, &o, p, payload, sleep_ms,
                                         key, &sent[i].kind);
        if (refcache_client_send_submit(c, fn, &o, &sent[i].id) != 0)
            return false;
    }
    for (size_t got = 0; got < k; got++) {
        refcache_reply_t r;
        if (refcache_client_recv(c, &r, CALL_MS) != 0)
            return false;
        if (r.code != REFCACHE_CODE_OK)
            fail_msg("a Submit was answered %s: %s", refcache_strerror(r.code), r.message);
        for (size_t i = 0; i < k; i++)
            if (sent[i].id == r.id) {
                told_t *e = s_add(l);
                snprintf(e->ref, sizeof e->ref, "%s", r.task.ref_id);
                e->kind = sent[i].kind;
                e->n = sent[i].n;
            }
    }
    return true;
}

/* A mixed load on c until a call fails (the broker was killed): bursts of
 * pipelined Submits, and now and then a Cancel of a slow task or a Delete
 * of a finished one. */
static void s_load(refcache_client_t *c, ledger_t *l, uint32_t *counter, killer_t *k)
{
    while (!atomic_load(&k->killed)) {
        uint64_t r = rc_testkit_rnd(&s_rng) % 100;
        if (r < 60 || !l->n) {
            if (!s_burst(c, l, counter))
                return;
            continue;
        }
        told_t *e = &l->v[rc_testkit_rnd(&s_rng) % l->n];
        if (e->deleted || e->maybe_gone)
            continue;
        bool yes = false;
        int rc;
        if (r < 80 && e->kind == SLEEP && !e->cancelled) {
            rc = refcache_client_cancel(c, e->ref, &yes, NULL, CALL_MS);
            if (rc == REFCACHE_CODE_OK && yes)
                e->cancelled = true;
        } else if (r >= 80 && e->kind == ECHO) {
            rc = refcache_client_delete(c, e->ref, &yes, CALL_MS);
            if (rc == REFCACHE_CODE_OK && yes)
                e->deleted = true;
            if (rc < 0)
                e->maybe_gone = true;
            if (rc == REFCACHE_CODE_FAILED_PRECONDITION)
                rc = REFCACHE_CODE_OK; /* not finished yet: fine */
        } else {
            continue;
        }
        if (rc < 0)
            return; /* no reply: the broker is gone */
        if (rc != REFCACHE_CODE_OK)
            fail_msg("a call was answered %s: %s", refcache_strerror(rc), refcache_client_message(c));
    }
}

/* Names the tasks still PROCESSING (List finds them all, also those whose
 * Submit reply the kill swallowed), for the failure message. */
static void s_print_running(refcache_client_t *c)
{
    refcache_list_options_t o;
    refcache_list_options_init(&o);
    o.states = REFCACHE_STATE_BIT(REFCACHE_STATE_PROCESSING);
    o.limit = 1000;
    char cursor[64] = "";
    for (int page = 0; page < 1000; page++) {
        refcache_task_list_t *list = NULL;
        o.cursor = cursor;
        if (refcache_client_list(c, &o, &list, CALL_MS) != REFCACHE_CODE_OK || !list)
            return;
        for (size_t i = 0; i < list->count; i++) {
            const refcache_task_view_t *t = &list->tasks[i];
            print_message("still PROCESSING: %s attempt %u started %llu progress %llu/%llu fn %s\n",
                          t->ref_id, t->attempt, (unsigned long long) t->started_at_us,
                          (unsigned long long) t->progress_done, (unsigned long long) t->progress_total,
                          t->function);
        }
        snprintf(cursor, sizeof cursor, "%s", list->next_cursor);
        refcache_task_list_destroy(&list);
        if (!cursor[0])
            return;
    }
}

/* Every ref_id against what it was told; at the end (final) also that
 * every task ended as it should: echoes complete, failures failed. */
static void s_check(refcache_client_t *c, const ledger_t *l, int cycle, bool final)
{
    if (final) {
        /* Whatever was queued or running at the last kill runs now. The
         * backlog's length depends on how fast this machine ran the load,
         * so the wait is not a fixed bound: it goes on while tasks keep
         * ending, and a stall (nothing ended for STALL_US) fails. */
        enum { STALL_US = 15000000 };
        refcache_stats_t st;
        uint64_t ended = UINT64_MAX;
        int64_t last_change = (int64_t) rc_mono_us();
        for (;;) {
            rc_testkit_stats(c, &st);
            if (!st.tasks_pending && !st.tasks_processing)
                break;
            uint64_t now_ended = st.completed_total + st.failed_total + st.cancelled_total + st.retries_total;
            if (now_ended != ended) {
                ended = now_ended;
                last_change = (int64_t) rc_mono_us();
            } else if ((int64_t) rc_mono_us() - last_change > STALL_US) {
                break;
            }
            usleep(20000);
        }
        if (st.tasks_processing)
            s_print_running(c);
        if (st.tasks_pending + st.tasks_processing && getenv("RC_CRASH_HOLD")) {
            /* For a person debugging: the broker stays up a minute. */
            print_message("broker pid %d held for 60 s\n", (int) s_live);
            sleep(60);
        }
        if (st.tasks_pending + st.tasks_processing)
            fail_msg(
                "nothing ended for %d s with %llu tasks PENDING (queue depth %llu) and %llu PROCESSING; %llu "
                "workers, %llu busy; retries %llu, lost %llu, stale %llu",
                STALL_US / 1000000, (unsigned long long) st.tasks_pending,
                (unsigned long long) st.queue_depth, (unsigned long long) st.tasks_processing,
                (unsigned long long) st.workers, (unsigned long long) st.workers_busy,
                (unsigned long long) st.retries_total, (unsigned long long) st.workers_lost_total,
                (unsigned long long) st.stale_msgs_total);
    }
    size_t complete = 0, cancelled = 0, gone = 0, other = 0;
    for (size_t i = 0; i < l->n; i++) {
        const told_t *e = &l->v[i];
        refcache_task_t *t = NULL;
        int rc = refcache_client_status(c, e->ref, &t, 5000);
        if (e->deleted) {
            if (rc != REFCACHE_CODE_NOT_FOUND)
                fail_msg("cycle %d: %s was deleted (found = true) but answers %s", cycle, e->ref,
                         refcache_strerror(rc));
            gone++;
            continue;
        }
        if (e->maybe_gone && rc == REFCACHE_CODE_NOT_FOUND) {
            gone++;
            continue;
        }
        if (rc != REFCACHE_CODE_OK)
            fail_msg("cycle %d: %s was handed out (kind %d) but answers %s", cycle, e->ref, e->kind,
                     refcache_strerror(rc));
        if (e->cancelled && t->info.state != REFCACHE_STATE_CANCELLED)
            fail_msg("cycle %d: %s was cancelled (cancelled = true) but is in state %d", cycle, e->ref,
                     t->info.state);
        if (t->info.state == REFCACHE_STATE_COMPLETE && (e->kind == ECHO || e->kind == KEYED)) {
            char want[32];
            snprintf(want, sizeof want, "p%u", e->n);
            if (t->info.result_len != strlen(want) || memcmp(t->info.result, want, strlen(want)) != 0)
                fail_msg("cycle %d: %s completed with another result than its payload", cycle, e->ref);
        }
        if (final) {
            int want = e->kind == FAIL ? REFCACHE_STATE_FAILED : REFCACHE_STATE_COMPLETE;
            if (t->info.state != want && !(e->kind == SLEEP && t->info.state == REFCACHE_STATE_CANCELLED) &&
                !(t->info.state == REFCACHE_STATE_FAILED && strstr(t->info.error, "restarted")))
                fail_msg("%s (kind %d) ended in state %d (%s), expected %d", e->ref, e->kind, t->info.state,
                         t->info.error, want);
        }
        complete += t->info.state == REFCACHE_STATE_COMPLETE;
        cancelled += t->info.state == REFCACHE_STATE_CANCELLED;
        other += t->info.state != REFCACHE_STATE_COMPLETE && t->info.state != REFCACHE_STATE_CANCELLED;
        refcache_task_destroy(&t);
    }
    print_message("cycle %d: %zu ref_ids checked: %zu complete, %zu cancelled, %zu deleted, %zu other\n",
                  cycle, l->n, complete, cancelled, gone, other);
}

static refcache_client_t *s_client(const char *ep)
{
    refcache_client_options_t co;
    refcache_client_options_init(&co);
    co.endpoint = ep;
    char err[256];
    refcache_client_t *c = refcache_client_new(&co, err, sizeof err);
    if (!c)
        fail_msg("client: %s", err);
    return c;
}

static void test_crash_cycles(void **state)
{
    (void) state;
    int cycles = getenv("RC_CRASH_CYCLES") ? atoi(getenv("RC_CRASH_CYCLES")) : 12;
    char dir[] = "/tmp/rc-crash-XXXXXX", store[64], ep[256];
    assert_non_null(mkdtemp(dir));
    snprintf(store, sizeof store, "%s/broker.db", dir);
    s_rng ^= (uint64_t) getpid() << 20;
    ledger_t l = {0};
    uint32_t counter = 0;
    for (int cycle = 1; cycle <= cycles; cycle++) {
        pid_t pid = s_live = s_broker(store, ep, sizeof ep);
        refcache_client_t *c = s_client(ep);
        s_check(c, &l, cycle, false);
        killer_t k = {.pid = pid, .delay_ms = 50 + (int) (rc_testkit_rnd(&s_rng) % 400)};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, s_killer, &k), 0);
        s_load(c, &l, &counter, &k);
        pthread_join(th, NULL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        refcache_client_destroy(&c);
    }
    /* A last start to check the last cycle's promises. */
    pid_t pid = s_live = s_broker(store, ep, sizeof ep);
    refcache_client_t *c = s_client(ep);
    s_check(c, &l, cycles + 1, true);
    refcache_client_destroy(&c);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    s_live = 0;
    free(l.v);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A full disk: refcache-broker whose store may not grow past a few MiB takes
 * Submits until a write fails, then refuses Submits, Cancels and Deletes
 * with UNAVAILABLE and a message naming the cause, answers reads, and stays
 * up; killed and started again without the limit, it has every task whose
 * Submit was answered, with its result. */
static void test_full_disk(void **state)
{
    (void) state;
    char dir[] = "/tmp/rc-full-XXXXXX", store[64], ep[256];
    assert_non_null(mkdtemp(dir));
    snprintf(store, sizeof store, "%s/broker.db", dir);
    pid_t pid = s_live = s_broker_limited(store, ep, sizeof ep, 4 << 20);
    refcache_client_t *c = s_client(ep);
    enum { MAX = 20000, BURST = 32 };
    char(*refs)[REFCACHE_REF_MAX + 1] = calloc(MAX, sizeof *refs);
    uint32_t *nums = calloc(MAX, sizeof *nums);
    assert_true(refs && nums);
    size_t told = 0, unanswered = 0;
    int refused = 0;
    char why[256] = "";
    char payload[1024];
    int64_t until = (int64_t) rc_mono_us() + 60000000;
    for (uint32_t n = 0; !refused && told + BURST <= MAX && (int64_t) rc_mono_us() < until;) {
        uint64_t ids[BURST];
        uint32_t sent_n[BURST];
        for (int i = 0; i < BURST; i++, n++) {
            refcache_submit_options_t o;
            refcache_submit_options_init(&o);
            memset(payload, 'a' + (int) (n % 26), sizeof payload);
            snprintf(payload, 16, "%010u", n);
            o.payload = payload;
            o.payload_len = sizeof payload;
            o.no_cache = true;
            sent_n[i] = n;
            assert_int_equal(refcache_client_send_submit(c, "echo", &o, &ids[i]), 0);
        }
        for (int got = 0; got < BURST; got++) {
            refcache_reply_t r;
            if (refcache_client_recv(c, &r, 2000) != 0) {
                /* Held for a group whose write failed: told nothing. */
                unanswered += (size_t) (BURST - got);
                break;
            }
            if (r.code == REFCACHE_CODE_OK) {
                for (int i = 0; i < BURST; i++)
                    if (ids[i] == r.id) {
                        snprintf(refs[told], sizeof refs[told], "%s", r.task.ref_id);
                        nums[told++] = sent_n[i];
                    }
            } else if (r.code == REFCACHE_CODE_UNAVAILABLE || r.code == REFCACHE_CODE_RESOURCE_EXHAUSTED) {
                if (!refused)
                    snprintf(why, sizeof why, "%s", r.message);
                refused = r.code;
            } else {
                fail_msg("a Submit was answered %s: %s", refcache_strerror(r.code), r.message);
            }
        }
    }
    print_message("full disk: %zu Submits answered OK, then refused %s: %s (%zu unanswered)\n", told,
                  refused ? refcache_strerror(refused) : "-", why, unanswered);
    assert_true(refused && told > 0);
    /* Until the writer has failed for good the refusal may be "behind";
     * once it is, a Submit is refused UNAVAILABLE, naming the cause. */
    int rc = REFCACHE_CODE_RESOURCE_EXHAUSTED;
    for (int i = 0; i < 100 && rc == REFCACHE_CODE_RESOURCE_EXHAUSTED; i++) {
        refcache_task_t *t = NULL;
        rc = refcache_client_submit(c, "echo", NULL, &t, 5000);
        refcache_task_destroy(&t);
        if (rc == REFCACHE_CODE_RESOURCE_EXHAUSTED)
            usleep(50000);
    }
    assert_int_equal(rc, REFCACHE_CODE_UNAVAILABLE);
    assert_non_null(strstr(refcache_client_message(c), "store"));
    /* Reads go on; a Delete (a promise) is refused and deletes nothing. */
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_wait(c, refs[0], 5000, &t, 10000), REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);
    refcache_task_destroy(&t);
    bool found = false;
    assert_int_equal(refcache_client_delete(c, refs[0], &found, 5000), REFCACHE_CODE_UNAVAILABLE);
    refcache_stats_t st;
    rc_testkit_stats(c, &st);
    assert_string_equal(st.store_path, store); /* Stats says why, too */
    assert_non_null(strstr(st.store_error, "full"));
    refcache_client_destroy(&c);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    /* Again without the limit: every answered Submit's task is there. */
    pid = s_live = s_broker(store, ep, sizeof ep);
    c = s_client(ep);
    size_t complete = 0;
    for (size_t i = 0; i < told; i++) {
        t = NULL;
        rc = refcache_client_wait(c, refs[i], 10000, &t, 15000);
        if (rc != REFCACHE_CODE_OK)
            fail_msg("%s (payload %u), whose Submit was answered, is %s after the restart", refs[i], nums[i],
                     refcache_strerror(rc));
        if (t->info.state == REFCACHE_STATE_COMPLETE) {
            char head[16];
            snprintf(head, sizeof head, "%010u", nums[i]);
            assert_true(t->info.result_size == sizeof payload);
            assert_memory_equal(t->info.result, head, 10);
            complete++;
        }
        refcache_task_destroy(&t);
    }
    print_message("after the restart: %zu of %zu complete, the rest retried or failed as lost\n", complete,
                  told);
    refcache_client_destroy(&c);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    s_live = 0;
    free(refs);
    free(nums);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static int teardown(void **state)
{
    (void) state;
    if (s_live > 0) {
        kill(s_live, SIGKILL);
        waitpid(s_live, NULL, 0);
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_crash_cycles, teardown),
        cmocka_unit_test_teardown(test_full_disk, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
