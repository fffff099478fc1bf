/* test_observe: List, Workers, Watch and Metrics against a real broker with
 * in-process workers, through the C client library: what a page holds and
 * in which order, its filters and cursor, the workers' details, the event
 * stream of a task's life (who cancelled, and the worker's confirmation),
 * a slow watcher's LOST marker and the bound on watchers, and the
 * histograms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rc_common.h"
#include "rc_testkit.h"

typedef struct {
    rc_broker_t *broker;
    refcache_client_t *client;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    rc_broker_config_t config;
    rc_testkit_config(&config);
    config.workers = 2;
    f->broker = rc_testkit_broker(&config);
    f->client = rc_testkit_client(f->broker);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    refcache_client_destroy(&f->client);
    rc_broker_destroy(&f->broker);
    free(f);
    return 0;
}

/* Submits function with a payload and params; returns its ref in ref. */
static void submit(refcache_client_t *c, const char *fn, const char *payload, const char *ms, const char *ns,
                   uint32_t async_ms, char ref[REFCACHE_REF_MAX + 1])
{
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    refcache_param_t p = {"ms", ms};
    if (ms) {
        o.params = &p;
        o.param_count = 1;
    }
    o.payload = payload;
    o.payload_len = payload ? strlen(payload) : 0;
    o.namespace_name = ns;
    o.async_timeout_ms = async_ms;
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_submit(c, fn, &o, &t, 5000), 0);
    snprintf(ref, REFCACHE_REF_MAX + 1, "%s", t->info.ref_id);
    refcache_task_destroy(&t);
}

/* Waits until the task is in state, up to 5 s. */
static void wait_state(refcache_client_t *c, const char *ref, int state)
{
    for (int i = 0; i < 500; i++) {
        refcache_task_t *t = NULL;
        assert_int_equal(refcache_client_status(c, ref, &t, 5000), 0);
        int s = t->info.state;
        refcache_task_destroy(&t);
        if (s == state)
            return;
        usleep(10000);
    }
    fail_msg("task %s never reached state %d", ref, state);
}

static void test_list(void **state)
{
    fixture_t *f = *state;
    char refs[30][REFCACHE_REF_MAX + 1], sleepers[2][REFCACHE_REF_MAX + 1], other[REFCACHE_REF_MAX + 1];
    for (int i = 0; i < 30; i++) {
        char payload[32];
        snprintf(payload, sizeof payload, "list-%d", i);
        submit(f->client, "echo", payload, NULL, NULL, 2000, refs[i]);
    }
    uint64_t mid = rc_wall_us();
    usleep(2000);
    submit(f->client, "sleep", NULL, "20000", NULL, 0, sleepers[0]);
    submit(f->client, "sleep", NULL, "20000", NULL, 0, sleepers[1]);
    submit(f->client, "echo", "elsewhere", NULL, "other", 2000, other);
    wait_state(f->client, sleepers[0], REFCACHE_STATE_PROCESSING);
    wait_state(f->client, sleepers[1], REFCACHE_STATE_PROCESSING);

    /* Everything of the default namespace, newest first. */
    refcache_list_options_t o;
    refcache_list_options_init(&o);
    refcache_task_list_t *l = NULL;
    assert_int_equal(refcache_client_list(f->client, &o, &l, 5000), 0);
    assert_int_equal(l->count, 32);
    assert_string_equal(l->next_cursor, "");
    assert_string_equal(l->tasks[0].ref_id, sleepers[1]);
    assert_string_equal(l->tasks[1].ref_id, sleepers[0]);
    for (int i = 0; i < 30; i++) {
        assert_string_equal(l->tasks[2 + i].ref_id, refs[29 - i]);
        assert_int_equal(l->tasks[2 + i].state, REFCACHE_STATE_COMPLETE);
        assert_string_equal(l->tasks[2 + i].function, "echo");
        assert_null(l->tasks[2 + i].result);
    }
    refcache_task_list_destroy(&l);
    assert_null(l);

    /* By state, by function, by age. */
    o.states = REFCACHE_STATE_BIT(REFCACHE_STATE_PROCESSING);
    assert_int_equal(refcache_client_list(f->client, &o, &l, 5000), 0);
    assert_int_equal(l->count, 2);
    assert_string_equal(l->tasks[0].function, "sleep");
    refcache_task_list_destroy(&l);
    o.states = REFCACHE_STATE_BIT(REFCACHE_STATE_COMPLETE) | REFCACHE_STATE_BIT(REFCACHE_STATE_CANCELLED);
    o.function = "sleep";
    assert_int_equal(refcache_client_list(f->client, &o, &l, 5000), 0);
    assert_int_equal(l->count, 0);
    refcache_task_list_destroy(&l);
    refcache_list_options_init(&o);
    o.function = "no-such-function";
    assert_int_equal(refcache_client_list(f->client, &o, &l, 5000), 0);
    assert_int_equal(l->count, 0);
    assert_string_equal(l->next_cursor, "");
    refcache_task_list_destroy(&l);
    refcache_list_options_init(&o);
    o.created_after_us = mid;
    assert_int_equal(refcache_client_list(f->client, &o, &l, 5000), 0);
    assert_int_equal(l->count, 2);
    refcache_task_list_destroy(&l);
    refcache_list_options_init(&o);
    o.created_before_us = mid;
    assert_int_equal(refcache_client_list(f->client, &o, &l, 5000), 0);
    assert_int_equal(l->count, 30);
    assert_string_equal(l->tasks[0].ref_id, refs[29]);
    refcache_task_list_destroy(&l);

    /* Namespaces: the connection's, or all. */
    refcache_list_options_init(&o);
    o.all_namespaces = true;
    assert_int_equal(refcache_client_list(f->client, &o, &l, 5000), 0);
    assert_int_equal(l->count, 33);
    assert_string_equal(l->tasks[0].ref_id, other);
    assert_string_equal(l->tasks[0].namespace_name, "other");
    refcache_task_list_destroy(&l);

    /* A lookup by ref_id: in its namespace, or in any with all_namespaces. */
    refcache_list_options_init(&o);
    o.ref_id = other;
    assert_int_equal(refcache_client_list(f->client, &o, &l, 5000), 0);
    assert_int_equal(l->count, 0);
    refcache_task_list_destroy(&l);
    o.all_namespaces = true;
    assert_int_equal(refcache_client_list(f->client, &o, &l, 5000), 0);
    assert_int_equal(l->count, 1);
    assert_string_equal(l->tasks[0].ref_id, other);
    assert_string_equal(l->next_cursor, "");
    refcache_task_list_destroy(&l);
    o.ref_id = "0123";
    assert_int_equal(refcache_client_list(f->client, &o, &l, 5000), REFCACHE_CODE_INVALID_ARGUMENT);

    /* Pages of 7 through the cursor: every task once, in order. */
    refcache_list_options_init(&o);
    o.limit = 7;
    char cursor[64] = "";
    int seen = 0, pages = 0;
    do {
        o.cursor = cursor;
        assert_int_equal(refcache_client_list(f->client, &o, &l, 5000), 0);
        assert_true(l->count <= 7);
        for (size_t i = 0; i < l->count; i++, seen++)
            assert_string_equal(l->tasks[i].ref_id, seen < 2 ? sleepers[1 - seen] : refs[29 - (seen - 2)]);
        snprintf(cursor, sizeof cursor, "%s", l->next_cursor);
        refcache_task_list_destroy(&l);
        pages++;
    } while (*cursor);
    assert_int_equal(seen, 32);
    assert_int_equal(pages, 5);

    /* Bad input: a clear error, nothing else. */
    refcache_list_options_init(&o);
    o.limit = 5000;
    assert_int_equal(refcache_client_list(f->client, &o, &l, 5000), REFCACHE_CODE_INVALID_ARGUMENT);
    assert_null(l);
    o.limit = 0;
    o.cursor = "not-a-cursor";
    assert_int_equal(refcache_client_list(f->client, &o, &l, 5000), REFCACHE_CODE_INVALID_ARGUMENT);
    assert_non_null(strstr(refcache_client_message(f->client), "cursor"));
    o.cursor = NULL;
    o.states = 1u << 9;
    assert_int_equal(refcache_client_list(f->client, &o, &l, 5000), REFCACHE_EINVAL);
    for (int i = 0; i < 2; i++)
        assert_int_equal(refcache_client_cancel(f->client, sleepers[i], NULL, NULL, 5000), 0);
}

/* A Submit that hits a kept result or joins work in flight gets a handle of
 * its own: List shows it as the newest, with its own ref_id, and a watcher
 * sees it join. */
static void test_list_handles(void **state)
{
    fixture_t *f = *state;
    refcache_client_t *watcher = rc_testkit_client(f->broker);
    char first[REFCACHE_REF_MAX + 1], again[REFCACHE_REF_MAX + 1];
    submit(f->client, "echo", "twice", NULL, NULL, 2000, first);
    assert_int_equal(refcache_client_watch(watcher, NULL, 5000), 0);
    submit(f->client, "echo", "twice", NULL, NULL, 2000, again);
    assert_string_not_equal(first, again);
    refcache_task_list_t *l = NULL;
    assert_int_equal(refcache_client_list(f->client, NULL, &l, 5000), 0);
    assert_int_equal(l->count, 2);
    assert_string_equal(l->tasks[0].ref_id, again);
    assert_string_equal(l->tasks[1].ref_id, first);
    assert_int_equal(l->tasks[0].state, REFCACHE_STATE_COMPLETE);
    refcache_task_list_destroy(&l);
    refcache_event_t e;
    do
        assert_int_equal(refcache_client_watch_next(watcher, &e, 5000), 0);
    while (e.kind != REFCACHE_EVENT_TRANSITION);
    assert_string_equal(e.event, "join");
    assert_string_equal(e.ref_id, again);
    assert_int_equal(e.old_state, REFCACHE_STATE_UNSPECIFIED);
    assert_int_equal(e.new_state, REFCACHE_STATE_COMPLETE);
    /* The handle goes: the first stays listed. */
    bool found = false;
    assert_int_equal(refcache_client_delete(f->client, again, &found, 5000), 0);
    assert_int_equal(refcache_client_list(f->client, NULL, &l, 5000), 0);
    assert_int_equal(l->count, 1);
    assert_string_equal(l->tasks[0].ref_id, first);
    refcache_task_list_destroy(&l);
    refcache_client_destroy(&watcher);
}

static void test_workers(void **state)
{
    fixture_t *f = *state;
    rc_testkit_wait_workers(f->client, 2, 5000);
    refcache_worker_list_t *w = NULL;
    assert_int_equal(refcache_client_workers(f->client, &w, 5000), 0);
    assert_int_equal(w->count, 2);
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    uint64_t now = rc_wall_us();
    for (size_t i = 0; i < w->count; i++) {
        const refcache_worker_info_t *x = &w->workers[i];
        assert_true(x->ready);
        assert_string_equal(x->host, host);
        assert_int_equal(x->pid, (uint32_t) getpid());
        assert_true(x->function_count >= 5);
        bool echo = false;
        for (size_t k = 0; k < x->function_count; k++)
            echo |= strcmp(x->functions[k], "echo") == 0;
        assert_true(echo);
        assert_true(x->credit > 0);
        assert_true(x->joined_at_us > now - 60000000 && x->joined_at_us <= now + 1000000);
        assert_true(x->last_heard_at_us >= x->joined_at_us);
        assert_true(strlen(x->worker_id) > 0);
    }
    refcache_worker_list_destroy(&w);
    assert_null(w);
}

/* The next event that is not a heartbeat. */
static void next_event(refcache_client_t *c, refcache_event_t *e)
{
    do
        assert_int_equal(refcache_client_watch_next(c, e, 5000), 0);
    while (e->kind == REFCACHE_EVENT_HEARTBEAT);
}

static void test_watch_life(void **state)
{
    fixture_t *f = *state;
    refcache_client_t *watcher = rc_testkit_client(f->broker);
    assert_int_equal(refcache_client_watch(watcher, NULL, 5000), 0);
    /* One watch per client. */
    assert_int_equal(refcache_client_watch(watcher, NULL, 5000), REFCACHE_EINVAL);

    char ref[REFCACHE_REF_MAX + 1];
    submit(f->client, "echo", "watched", NULL, NULL, 2000, ref);
    refcache_event_t e;
    next_event(watcher, &e);
    assert_int_equal(e.kind, REFCACHE_EVENT_TRANSITION);
    assert_string_equal(e.event, "submit");
    assert_string_equal(e.ref_id, ref);
    assert_string_equal(e.function, "echo");
    assert_int_equal(e.old_state, REFCACHE_STATE_UNSPECIFIED);
    assert_int_equal(e.new_state, REFCACHE_STATE_PENDING);
    assert_true(strncmp(e.client, "conn:", 5) == 0);
    assert_true(e.at_us > 0);
    char submitter[64];
    snprintf(submitter, sizeof submitter, "%s", e.client);
    next_event(watcher, &e);
    assert_string_equal(e.event, "dispatch");
    assert_int_equal(e.new_state, REFCACHE_STATE_PROCESSING);
    assert_int_equal(e.attempt, 1);
    assert_true(strlen(e.worker_id) > 0);
    next_event(watcher, &e);
    if (strcmp(e.event, "started") == 0)
        next_event(watcher, &e);
    assert_string_equal(e.event, "result");
    assert_int_equal(e.old_state, REFCACHE_STATE_PROCESSING);
    assert_int_equal(e.new_state, REFCACHE_STATE_COMPLETE);

    /* A cancel: who asked, then the worker's confirmation. */
    submit(f->client, "sleep", NULL, "20000", NULL, 0, ref);
    wait_state(f->client, ref, REFCACHE_STATE_PROCESSING);
    bool cancelled = false;
    assert_int_equal(refcache_client_cancel(f->client, ref, &cancelled, NULL, 5000), 0);
    assert_true(cancelled);
    bool saw_cancel = false, saw_stop = false;
    while (!saw_stop) {
        next_event(watcher, &e);
        assert_string_equal(e.ref_id, ref);
        if (strcmp(e.event, "cancel") == 0) {
            assert_int_equal(e.old_state, REFCACHE_STATE_PROCESSING);
            assert_int_equal(e.new_state, REFCACHE_STATE_CANCELLED);
            assert_int_equal(e.code, REFCACHE_CODE_CANCELLED);
            assert_string_equal(e.client, submitter);
            assert_true(strlen(e.worker_id) > 0);
            assert_false(e.stop_confirmed);
            saw_cancel = true;
        } else if (strcmp(e.event, "cancel_ack") == 0) {
            assert_true(saw_cancel);
            assert_true(e.stop_confirmed);
            assert_int_equal(e.new_state, REFCACHE_STATE_CANCELLED);
            saw_stop = true;
        }
    }
    /* Delete: the record goes. */
    bool found = false;
    assert_int_equal(refcache_client_delete(f->client, ref, &found, 5000), 0);
    next_event(watcher, &e);
    assert_string_equal(e.event, "delete");
    assert_int_equal(e.new_state, REFCACHE_STATE_UNSPECIFIED);
    assert_string_equal(e.client, submitter);

    /* A second watcher, on one ref only: sees nothing of other tasks. */
    refcache_client_t *one = rc_testkit_client(f->broker);
    char ref2[REFCACHE_REF_MAX + 1];
    submit(f->client, "sleep", NULL, "20000", NULL, 0, ref2);
    refcache_watch_options_t wo = {.ref_id = ref2};
    assert_int_equal(refcache_client_watch(one, &wo, 5000), 0);
    submit(f->client, "echo", "not this one", NULL, NULL, 2000, ref);
    assert_int_equal(refcache_client_cancel(f->client, ref2, NULL, NULL, 5000), 0);
    do {
        next_event(one, &e);
        assert_string_equal(e.ref_id, ref2); /* dispatch, started, progress: all of ref2 */
    } while (strcmp(e.event, "cancel") != 0);

    assert_int_equal(refcache_client_unwatch(one, 5000), 0);
    assert_int_equal(refcache_client_unwatch(watcher, 5000), 0);
    assert_int_equal(refcache_client_unwatch(watcher, 5000), REFCACHE_EINVAL);
    refcache_client_destroy(&one);
    refcache_client_destroy(&watcher);
}

/* A watcher that does not read: what it cannot take is dropped and
 * counted, and a LOST event tells it how many when it reads again. */
static void test_watch_slow(void **state)
{
    fixture_t *f = *state;
    refcache_client_t *watcher = rc_testkit_client(f->broker);
    refcache_watch_options_t wo = {.function = "echo", .window = 16};
    assert_int_equal(refcache_client_watch(watcher, &wo, 5000), 0);
    int n = 200;
    for (int i = 0; i < n; i++) {
        char payload[32], ref[REFCACHE_REF_MAX + 1];
        snprintf(payload, sizeof payload, "slow-%d", i);
        submit(f->client, "echo", payload, NULL, NULL, 2000, ref);
    }
    /* Each echo makes 3 events (submit, dispatch, result). */
    uint64_t got = 0, lost = 0;
    refcache_event_t e;
    while (got + lost < (uint64_t) n * 3) {
        int rc = refcache_client_watch_next(watcher, &e, 3000);
        if (rc == REFCACHE_ETIMEOUT)
            break;
        assert_int_equal(rc, 0);
        if (e.kind == REFCACHE_EVENT_LOST) {
            assert_true(e.lost > 0);
            lost += e.lost;
        } else if (e.kind == REFCACHE_EVENT_TRANSITION) {
            got++;
        }
    }
    /* It took about its window at first, and was told of the rest. */
    assert_true(lost > 0);
    assert_int_equal(got + lost, (uint64_t) n * 3);
    assert_true(got < (uint64_t) n * 3);
    assert_int_equal(refcache_client_unwatch(watcher, 5000), 0);
    refcache_client_destroy(&watcher);
}

/* A watcher that never acknowledges, its window full, is dropped after
 * the broker's watch_stall_ms (shortened here from 60 s): the END event
 * says RESOURCE_EXHAUSTED and how many events it missed, after the events
 * it had been sent. */
static void test_watch_stalled_dropped(void **state)
{
    (void) state;
    rc_broker_config_t config;
    rc_testkit_config(&config);
    config.workers = 1;
    config.watch_stall_ms = 1000;
    rc_broker_t *broker = rc_testkit_broker(&config);
    refcache_client_t *client = rc_testkit_client(broker);
    refcache_client_t *watcher = rc_testkit_client(broker);
    refcache_watch_options_t wo = {.function = "echo", .window = 16};
    assert_int_equal(refcache_client_watch(watcher, &wo, 5000), 0);
    char ref[REFCACHE_REF_MAX + 1];
    for (int i = 0; i < 50; i++) {
        char payload[32];
        snprintf(payload, sizeof payload, "stall-%d", i);
        submit(client, "echo", payload, NULL, NULL, 2000, ref);
    }
    /* The broker looks at its watchers once a second, at the end of a
     * pass: keep it busy past the stall time. */
    for (int i = 0; i < 30; i++) {
        usleep(100000); /* paces the passes; the stall time is what is tested */
        refcache_stats_t s;
        rc_testkit_stats(client, &s);
    }
    uint64_t got = 0, lost = 0;
    int end_code = -1;
    refcache_event_t e;
    while (end_code < 0 && refcache_client_watch_next(watcher, &e, 3000) == 0) {
        if (e.kind == REFCACHE_EVENT_TRANSITION)
            got++;
        else if (e.kind == REFCACHE_EVENT_LOST)
            lost += e.lost;
        else if (e.kind == REFCACHE_EVENT_END) {
            end_code = e.code;
            lost += e.lost;
        }
    }
    print_message("a watcher that never acknowledged: %llu events, %llu lost, then END %d\n",
                  (unsigned long long) got, (unsigned long long) lost, end_code);
    assert_int_equal(end_code, REFCACHE_CODE_RESOURCE_EXHAUSTED);
    assert_true(got <= 16 + 1);
    assert_int_equal(got + lost, 50 * 3); /* what it missed is told, at the END if not before */
    refcache_client_destroy(&watcher);
    refcache_client_destroy(&client);
    rc_broker_destroy(&broker);
}

/* At most 64 watchers; one whose connection is gone is found out (its
 * events are refused) and its place freed. */
static void test_watch_bounds(void **state)
{
    fixture_t *f = *state;
    refcache_client_t *w[64];
    for (int i = 0; i < 64; i++) {
        w[i] = rc_testkit_client(f->broker);
        assert_int_equal(refcache_client_watch(w[i], NULL, 5000), 0);
    }
    refcache_client_t *extra = rc_testkit_client(f->broker);
    assert_int_equal(refcache_client_watch(extra, NULL, 5000), REFCACHE_CODE_RESOURCE_EXHAUSTED);
    refcache_client_destroy(&w[0]);
    /* The next events go to the closed connection too: refused, it goes. */
    int rc = REFCACHE_CODE_RESOURCE_EXHAUSTED;
    for (int i = 0; i < 100 && rc == REFCACHE_CODE_RESOURCE_EXHAUSTED; i++) {
        char ref[REFCACHE_REF_MAX + 1], payload[32];
        snprintf(payload, sizeof payload, "bounds-%d", i);
        submit(f->client, "echo", payload, NULL, NULL, 2000, ref);
        rc = refcache_client_watch(extra, NULL, 5000);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(refcache_client_unwatch(extra, 5000), 0);
    refcache_client_destroy(&extra);
    for (int i = 1; i < 64; i++)
        refcache_client_destroy(&w[i]);
}

static void test_metrics(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 20; i++) {
        char payload[32], ref[REFCACHE_REF_MAX + 1];
        snprintf(payload, sizeof payload, "metrics-%d", i);
        submit(f->client, "echo", payload, NULL, NULL, 2000, ref);
    }
    char ref[REFCACHE_REF_MAX + 1];
    submit(f->client, "sleep", NULL, "20000", NULL, 0, ref);
    /* Cancelled once it runs: a task dispatched but not started yet has no
     * stop to confirm (and a slow machine leaves a moment between the two). */
    for (int i = 0; i < 1000; i++) {
        refcache_task_t *t = NULL;
        assert_int_equal(refcache_client_status(f->client, ref, &t, 5000), 0);
        bool started = t->info.started_at_us != 0;
        refcache_task_destroy(&t);
        if (started)
            break;
        usleep(10000);
    }
    assert_int_equal(refcache_client_cancel(f->client, ref, NULL, NULL, 5000), 0);
    /* The stop is confirmed shortly after the cancel (within 10 s even on a
     * loaded machine under a sanitizer). */
    refcache_metrics_t *m = NULL;
    const refcache_function_metrics_t *echo = NULL, *sleep_fn = NULL;
    for (int tries = 0; tries < 1000; tries++) {
        refcache_metrics_destroy(&m);
        assert_int_equal(refcache_client_metrics(f->client, &m, 5000), 0);
        for (size_t i = 0; i < m->function_count; i++) {
            if (!strcmp(m->functions[i].function, "echo"))
                echo = &m->functions[i];
            if (!strcmp(m->functions[i].function, "sleep"))
                sleep_fn = &m->functions[i];
        }
        if (sleep_fn && sleep_fn->cancel_stop_time.count == 1)
            break;
        usleep(10000);
    }
    assert_non_null(echo);
    assert_non_null(sleep_fn);
    assert_int_equal(m->bound_count, 22);
    assert_int_equal(m->bounds_us[0], 10);
    assert_int_equal(echo->queue_time.count, 20);
    assert_int_equal(echo->run_time.count, 20);
    assert_int_equal(echo->queue_time.count_n, 23);
    uint64_t sum = 0;
    for (size_t b = 0; b < echo->queue_time.count_n; b++)
        sum += echo->queue_time.counts[b];
    assert_int_equal(sum, 20);
    assert_int_equal(echo->cancel_stop_time.count, 0);
    assert_int_equal(sleep_fn->queue_time.count, 1);
    assert_int_equal(sleep_fn->run_time.count, 0);
    assert_int_equal(sleep_fn->cancel_stop_time.count, 1);
    assert_true(sleep_fn->cancel_stop_time.sum_us < 5000000);
    refcache_metrics_destroy(&m);
    assert_null(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_life, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_slow, setup, teardown),
        cmocka_unit_test(test_watch_stalled_dropped),
        cmocka_unit_test_setup_teardown(test_watch_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
