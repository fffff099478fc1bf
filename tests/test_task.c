/* Unit tests of the task state machine (rc_task): docs/state-machine.md's
 * table read and checked against rc_task_step for every state, event and
 * combination of facts; rows spelled out here too; then properties that
 * must hold everywhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rc_common.h"
#include "rc_task.h"

#define CODE_CANCELLED REFCACHE__V1__CODE__CODE_CANCELLED
#define CODE_DEADLINE  REFCACHE__V1__CODE__CODE_DEADLINE_EXCEEDED
#define CODE_UNAVAIL   REFCACHE__V1__CODE__CODE_UNAVAILABLE

/* Facts shorthands. */
static const rc_task_facts_t CUR = {.current = true};
static const rc_task_facts_t STALE = {.current = false};
static const rc_task_facts_t CUR_RETRY = {.current = true, .retryable = true, .retries_left = true};
static const rc_task_facts_t CUR_RETRY_NONE = {.current = true, .retryable = true, .retries_left = false};
static const rc_task_facts_t CUR_FATAL = {.current = true, .retryable = false, .retries_left = true};
static const rc_task_facts_t CUR_LEFT = {.current = true, .retries_left = true};

static const int terminals[] = {RC_COMPLETE, RC_FAILED, RC_CANCELLED};
static const int all_states[] = {RC_PENDING, RC_PROCESSING, RC_COMPLETE, RC_FAILED, RC_CANCELLED, RC_GONE};
#define N_ALL_STATES (sizeof all_states / sizeof all_states[0])

static bool terminal(int s)
{
    return s == RC_COMPLETE || s == RC_FAILED || s == RC_CANCELLED;
}

/* Checks one transition: next state, applied, code, the bits that must be
 * there and the bits that must not be there. The message names the row so a
 * failure says which one. */
static void expect_row(int state, rc_event_t ev, const rc_task_facts_t *f, int next, bool applied, int code,
                       uint32_t must, uint32_t must_not)
{
    rc_transition_t t = rc_task_step(state, ev, f);
    if (t.next != next || t.applied != applied || t.code != code || (t.actions & must) != must ||
        (t.actions & must_not) != 0) {
        print_error("row %s --%s--> (current=%d retryable=%d retries_left=%d): expected next=%s applied=%d "
                    "code=%d must=0x%x must_not=0x%x; got next=%s applied=%d code=%d actions=0x%x\n",
                    rc_task_state_name(state), rc_task_event_name(ev), f ? f->current : 0,
                    f ? f->retryable : 0, f ? f->retries_left : 0, rc_task_state_name(next), applied, code,
                    (unsigned) must, (unsigned) must_not, rc_task_state_name(t.next), t.applied, t.code,
                    (unsigned) t.actions);
        fail();
    }
}

/* The exact action set, for rows whose actions the header spells out. */
static void expect_exact(int state, rc_event_t ev, const rc_task_facts_t *f, int next, uint32_t actions,
                         int code)
{
    rc_transition_t t = rc_task_step(state, ev, f);
    if (t.next != next || t.actions != actions || t.code != code || !t.applied) {
        print_error("row %s --%s-->: expected next=%s actions=0x%x code=%d applied; got next=%s actions=0x%x "
                    "code=%d applied=%d\n",
                    rc_task_state_name(state), rc_task_event_name(ev), rc_task_state_name(next),
                    (unsigned) actions, code, rc_task_state_name(t.next), (unsigned) t.actions, t.code,
                    t.applied);
        fail();
    }
}

#define TO_TERMINAL (RC_ACT_FINISH | RC_ACT_CANCEL_DEADLINE | RC_ACT_CANCEL_RETRY)

/* Combination k (0..63) of the six facts. */
static rc_task_facts_t facts_of(int k)
{
    return (rc_task_facts_t){.current = k & 1,
                             .retryable = (k & 2) != 0,
                             .retries_left = (k & 4) != 0,
                             .no_room = (k & 8) != 0,
                             .others_want = (k & 16) != 0,
                             .shared = (k & 32) != 0};
}

/* ---------------------------------------------------------------- the documented table */

#define MAX_ROWS 64

typedef struct {
    int line;
    bool from[RC_STATE_COUNT];
    bool event[RC_EV_COUNT];
    int need[6]; /* per fact: 1 must hold, -1 must not, 0 either */
    int to;      /* a state, or TO_SAME / TO_IGNORED */
    uint32_t actions;
    int code;
} doc_row_t;

enum { TO_SAME = -2, TO_IGNORED = -3 };

static const char *const fact_names[6] = {"current", "retryable", "retries_left", "no_room", "others_want", "shared"};

static bool fact_holds(const rc_task_facts_t *f, int i)
{
    const bool v[6] = {f->current, f->retryable, f->retries_left, f->no_room, f->others_want, f->shared};
    return v[i];
}

static char *trim(char *s)
{
    while (*s == ' ')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

static int state_of(const char *name)
{
    for (int s = 0; s < RC_STATE_COUNT; s++)
        if (strcmp(rc_task_state_name(s), name) == 0)
            return s;
    return -1;
}

/* Splits a cell on commas and calls fn on each trimmed item; fails the test
 * on an item fn does not know. */
static void each_item(char *cell, int line, const char *what, bool (*fn)(doc_row_t *, const char *), doc_row_t *r)
{
    char *save = NULL;
    for (char *tok = strtok_r(cell, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *item = trim(tok);
        if (strcmp(item, "-") == 0)
            continue;
        if (!fn(r, item)) {
            print_error("docs/state-machine.md line %d: unknown %s '%s'\n", line, what, item);
            fail();
        }
    }
}

static bool add_from(doc_row_t *r, const char *item)
{
    if (strcmp(item, "terminal") == 0) {
        r->from[RC_COMPLETE] = r->from[RC_FAILED] = r->from[RC_CANCELLED] = true;
        return true;
    }
    int s = state_of(item);
    if (s < 0)
        return false;
    r->from[s] = true;
    return true;
}

static bool add_event(doc_row_t *r, const char *item)
{
    for (int e = 0; e < RC_EV_COUNT; e++)
        if (strcmp(rc_task_event_name((rc_event_t) e), item) == 0)
            return r->event[e] = true;
    return false;
}

static bool add_fact(doc_row_t *r, const char *item)
{
    bool neg = item[0] == '!';
    for (int i = 0; i < 6; i++)
        if (strcmp(fact_names[i], item + neg) == 0) {
            r->need[i] = neg ? -1 : 1;
            return true;
        }
    return false;
}

static bool add_action(doc_row_t *r, const char *item)
{
    for (unsigned b = 0; b < RC_ACT_COUNT_; b++)
        if (strcmp(rc_task_action_name(b), item) == 0) {
            r->actions |= 1u << b;
            return true;
        }
    return false;
}

/* Reads the rows after the <!-- state-table --> marker. */
static size_t read_doc_table(doc_row_t *rows)
{
    FILE *f = fopen(RC_STATE_MACHINE_DOC, "r");
    if (!f) {
        print_error("cannot open %s\n", RC_STATE_MACHINE_DOC);
        fail();
    }
    char line[1024];
    size_t n = 0;
    int lineno = 0, in_table = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (strstr(line, "<!-- state-table -->")) {
            in_table = 1;
            continue;
        }
        if (!in_table)
            continue;
        if (line[0] != '|') {
            if (in_table > 1)
                break;
            continue;
        }
        if (in_table++ <= 2)
            continue; /* the header and the separator */
        assert_true(n < MAX_ROWS);
        doc_row_t *r = &rows[n++];
        memset(r, 0, sizeof *r);
        r->line = lineno;
        char *cells[7];
        int c = 0;
        char *save = NULL;
        for (char *tok = strtok_r(line, "|", &save); tok && c < 7; tok = strtok_r(NULL, "|", &save))
            cells[c++] = tok;
        if (c < 6) {
            print_error("docs/state-machine.md line %d: a row needs 6 cells\n", lineno);
            fail();
        }
        each_item(cells[0], lineno, "state", add_from, r);
        each_item(cells[1], lineno, "event", add_event, r);
        each_item(cells[2], lineno, "fact", add_fact, r);
        char *to = trim(cells[3]);
        r->to = strcmp(to, "same") == 0 ? TO_SAME : strcmp(to, "ignored") == 0 ? TO_IGNORED : state_of(to);
        if (r->to == -1) {
            print_error("docs/state-machine.md line %d: unknown state '%s'\n", lineno, to);
            fail();
        }
        each_item(cells[4], lineno, "action", add_action, r);
        char *code = trim(cells[5]);
        r->code = strcmp(code, "-") == 0 ? 0 : rc_code_parse(code);
        if (r->code < 0) {
            print_error("docs/state-machine.md line %d: unknown code '%s'\n", lineno, code);
            fail();
        }
    }
    fclose(f);
    return n;
}

static bool row_matches(const doc_row_t *r, int s, int e, const rc_task_facts_t *f)
{
    if (!r->from[s] || !r->event[e])
        return false;
    for (int i = 0; i < 6; i++)
        if (r->need[i] && (r->need[i] > 0) != fact_holds(f, i))
            return false;
    return true;
}

/* Every state x event x facts finds exactly one row, and it says what
 * rc_task_step does. */
static void test_documented_table(void **state)
{
    doc_row_t rows[MAX_ROWS];
    size_t n = read_doc_table(rows);
    assert_true(n >= 20);
    bool used[MAX_ROWS] = {false};
    for (int s = 0; s < RC_STATE_COUNT; s++)
        for (int e = 0; e < RC_EV_COUNT; e++)
            for (int k = 0; k < 64; k++) {
                rc_task_facts_t f = facts_of(k);
                const doc_row_t *hit = NULL;
                for (size_t i = 0; i < n; i++) {
                    if (!row_matches(&rows[i], s, e, &f))
                        continue;
                    if (hit) {
                        print_error("%s --%s-- (facts %d): rows at lines %d and %d both match\n",
                                    rc_task_state_name(s), rc_task_event_name((rc_event_t) e), k, hit->line,
                                    rows[i].line);
                        fail();
                    }
                    hit = &rows[i];
                    used[i] = true;
                }
                if (!hit) {
                    print_error("%s --%s-- (facts %d): no row of docs/state-machine.md says what happens\n",
                                rc_task_state_name(s), rc_task_event_name((rc_event_t) e), k);
                    fail();
                }
                rc_transition_t t = rc_task_step(s, (rc_event_t) e, &f);
                int next = hit->to == TO_SAME || hit->to == TO_IGNORED ? s : hit->to;
                bool applied = hit->to != TO_IGNORED;
                if (t.next != next || t.applied != applied || t.actions != hit->actions || t.code != hit->code) {
                    print_error("%s --%s-- (facts %d): docs/state-machine.md line %d says next=%s applied=%d "
                                "actions=0x%x code=%d; rc_task_step gives next=%s applied=%d actions=0x%x "
                                "code=%d\n",
                                rc_task_state_name(s), rc_task_event_name((rc_event_t) e), k, hit->line,
                                rc_task_state_name(next), applied, (unsigned) hit->actions, hit->code,
                                rc_task_state_name(t.next), t.applied, (unsigned) t.actions, t.code);
                    fail();
                }
            }
    for (size_t i = 0; i < n; i++)
        if (!used[i]) {
            print_error("docs/state-machine.md line %d matches nothing\n", rows[i].line);
            fail();
        }
}

static void test_submit_evict_leave(void **state)
{
    expect_exact(RC_NEW, RC_EV_SUBMIT, NULL, RC_PENDING, RC_ACT_ENQUEUE, 0);
    expect_row(RC_PENDING, RC_EV_SUBMIT, NULL, RC_PENDING, false, 0, 0, ~0u);
    /* Eviction takes finished tasks only. */
    for (size_t i = 0; i < 3; i++)
        expect_exact(terminals[i], RC_EV_EVICT, NULL, RC_GONE, RC_ACT_UNINDEX | RC_ACT_DROP, 0);
    expect_row(RC_PROCESSING, RC_EV_EVICT, NULL, RC_PROCESSING, false, 0, 0, ~0u);
    /* A result with no room to keep it fails the task, never a COMPLETE
     * that lies. */
    rc_task_facts_t full = {.current = true, .no_room = true};
    expect_exact(RC_PROCESSING, RC_EV_RESULT, &full, RC_FAILED,
                 RC_ACT_UNBIND | RC_ACT_RECORD_ERROR | RC_ACT_UNINDEX | TO_TERMINAL,
                 REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED);
    /* With another handle wanting the work, a cancel or deadline ends only
     * the handle: the task, its queue place and its worker are untouched. */
    rc_task_facts_t others = {.others_want = true};
    expect_exact(RC_PENDING, RC_EV_CANCEL, &others, RC_PENDING, RC_ACT_LEAVE, CODE_CANCELLED);
    expect_exact(RC_PROCESSING, RC_EV_CANCEL, &others, RC_PROCESSING, RC_ACT_LEAVE, CODE_CANCELLED);
    expect_exact(RC_PROCESSING, RC_EV_DEADLINE, &others, RC_PROCESSING, RC_ACT_LEAVE, CODE_DEADLINE);
    /* A handle that goes while others still hold the record frees nothing. */
    rc_task_facts_t held = {.shared = true};
    expect_exact(RC_COMPLETE, RC_EV_EXPIRE, &held, RC_COMPLETE, RC_ACT_FORGET, 0);
    expect_exact(RC_CANCELLED, RC_EV_DELETE, &held, RC_CANCELLED, RC_ACT_FORGET, 0);
}

static void test_pending_dispatch(void **state)
{
    expect_exact(RC_PENDING, RC_EV_DISPATCH, &CUR, RC_PROCESSING, RC_ACT_DEQUEUE | RC_ACT_ASSIGN, 0);
    expect_exact(RC_PENDING, RC_EV_DISPATCH, NULL, RC_PROCESSING, RC_ACT_DEQUEUE | RC_ACT_ASSIGN, 0);
    /* Only a PENDING task is dispatched: a cancelled or timed-out one never again. */
    expect_row(RC_PROCESSING, RC_EV_DISPATCH, &CUR, RC_PROCESSING, false, 0, 0, RC_ACT_ASSIGN);
    for (size_t i = 0; i < 3; i++)
        expect_row(terminals[i], RC_EV_DISPATCH, &CUR, terminals[i], false, 0, 0,
                   RC_ACT_ASSIGN | RC_ACT_DEQUEUE | RC_ACT_ENQUEUE);
}

static void test_pending_retry_due(void **state)
{
    expect_exact(RC_PENDING, RC_EV_RETRY_DUE, NULL, RC_PENDING, RC_ACT_ENQUEUE, 0);
    /* A retry that comes due after the task moved on does nothing. */
    expect_row(RC_PROCESSING, RC_EV_RETRY_DUE, NULL, RC_PROCESSING, false, 0, 0, RC_ACT_ENQUEUE);
    for (size_t i = 0; i < 3; i++)
        expect_row(terminals[i], RC_EV_RETRY_DUE, NULL, terminals[i], false, 0, 0,
                   RC_ACT_ENQUEUE | RC_ACT_ASSIGN);
}

static void test_pending_cancel(void **state)
{
    expect_exact(RC_PENDING, RC_EV_CANCEL, NULL, RC_CANCELLED,
                 RC_ACT_DEQUEUE | RC_ACT_UNINDEX | RC_ACT_FINISH | RC_ACT_CANCEL_DEADLINE |
                     RC_ACT_CANCEL_RETRY,
                 CODE_CANCELLED);
    /* Nobody to notify and nothing to unbind. */
    expect_row(RC_PENDING, RC_EV_CANCEL, NULL, RC_CANCELLED, true, CODE_CANCELLED,
               RC_ACT_DEQUEUE | RC_ACT_UNINDEX | RC_ACT_FINISH, RC_ACT_NOTIFY_WORKER | RC_ACT_UNBIND);
}

static void test_processing_cancel(void **state)
{
    expect_exact(RC_PROCESSING, RC_EV_CANCEL, NULL, RC_CANCELLED,
                 RC_ACT_NOTIFY_WORKER | RC_ACT_UNBIND | RC_ACT_UNINDEX | TO_TERMINAL, CODE_CANCELLED);
    /* A cancelled task holds no result bytes and is not re-queued. */
    expect_row(RC_PROCESSING, RC_EV_CANCEL, &CUR, RC_CANCELLED, true, CODE_CANCELLED,
               RC_ACT_NOTIFY_WORKER | RC_ACT_UNBIND | RC_ACT_FINISH,
               RC_ACT_STORE_RESULT | RC_ACT_ENQUEUE | RC_ACT_SCHEDULE_RETRY);
}

static void test_terminal_cancel_idempotent(void **state)
{
    /* This is what makes cancelled = false idempotent: unchanged, not applied. */
    for (size_t i = 0; i < 3; i++) {
        rc_transition_t t = rc_task_step(terminals[i], RC_EV_CANCEL, NULL);
        assert_int_equal(t.next, terminals[i]);
        assert_false(t.applied);
        assert_int_equal(t.actions, 0);
        assert_int_equal(t.code, 0);
        /* Twice is the same as once. */
        rc_transition_t t2 = rc_task_step(t.next, RC_EV_CANCEL, &CUR);
        assert_int_equal(t2.next, terminals[i]);
        assert_false(t2.applied);
    }
    /* Cancel, then cancel again. */
    rc_transition_t t = rc_task_step(RC_PROCESSING, RC_EV_CANCEL, NULL);
    assert_true(t.applied);
    t = rc_task_step(t.next, RC_EV_CANCEL, NULL);
    assert_false(t.applied);
    assert_int_equal(t.next, RC_CANCELLED);
}

static void test_deadline(void **state)
{
    expect_exact(RC_PENDING, RC_EV_DEADLINE, NULL, RC_FAILED,
                 RC_ACT_DEQUEUE | RC_ACT_UNINDEX | RC_ACT_RECORD_ERROR | TO_TERMINAL, CODE_DEADLINE);
    expect_row(RC_PENDING, RC_EV_DEADLINE, NULL, RC_FAILED, true, CODE_DEADLINE, RC_ACT_FINISH,
               RC_ACT_NOTIFY_WORKER | RC_ACT_UNBIND);
    expect_exact(RC_PROCESSING, RC_EV_DEADLINE, NULL, RC_FAILED,
                 RC_ACT_NOTIFY_WORKER | RC_ACT_UNBIND | RC_ACT_UNINDEX | RC_ACT_RECORD_ERROR | TO_TERMINAL,
                 CODE_DEADLINE);
    for (size_t i = 0; i < 3; i++)
        expect_row(terminals[i], RC_EV_DEADLINE, NULL, terminals[i], false, 0, 0, ~0u);
}

static void test_processing_started_progress(void **state)
{
    expect_exact(RC_PROCESSING, RC_EV_STARTED, &CUR, RC_PROCESSING, RC_ACT_MARK_STARTED, 0);
    expect_exact(RC_PROCESSING, RC_EV_PROGRESS, &CUR, RC_PROCESSING, RC_ACT_PROGRESS, 0);
}

static void test_processing_result(void **state)
{
    expect_exact(RC_PROCESSING, RC_EV_RESULT, &CUR, RC_COMPLETE,
                 RC_ACT_UNBIND | RC_ACT_STORE_RESULT | TO_TERMINAL, 0);
    /* A completed result stays in the cache index. */
    expect_row(RC_PROCESSING, RC_EV_RESULT, &CUR_RETRY, RC_COMPLETE, true, 0,
               RC_ACT_STORE_RESULT | RC_ACT_FINISH, RC_ACT_UNINDEX | RC_ACT_RECORD_ERROR);
}

static void test_processing_failure(void **state)
{
    /* Retryable with retries left: back to PENDING with a back-off. */
    expect_exact(RC_PROCESSING, RC_EV_FAILURE, &CUR_RETRY, RC_PENDING, RC_ACT_UNBIND | RC_ACT_SCHEDULE_RETRY,
                 0);
    expect_row(RC_PROCESSING, RC_EV_FAILURE, &CUR_RETRY, RC_PENDING, true, 0, RC_ACT_SCHEDULE_RETRY,
               RC_ACT_FINISH | RC_ACT_ENQUEUE | RC_ACT_RECORD_ERROR);
    /* Retryable, none left: FAILED, the worker's code kept (code 0 = no override). */
    expect_exact(RC_PROCESSING, RC_EV_FAILURE, &CUR_RETRY_NONE, RC_FAILED,
                 RC_ACT_UNBIND | RC_ACT_RECORD_ERROR | RC_ACT_UNINDEX | TO_TERMINAL, 0);
    /* Not retryable: FAILED even with retries left. */
    expect_exact(RC_PROCESSING, RC_EV_FAILURE, &CUR_FATAL, RC_FAILED,
                 RC_ACT_UNBIND | RC_ACT_RECORD_ERROR | RC_ACT_UNINDEX | TO_TERMINAL, 0);
    rc_task_facts_t f = {.current = true};
    expect_row(RC_PROCESSING, RC_EV_FAILURE, &f, RC_FAILED, true, 0, RC_ACT_RECORD_ERROR | RC_ACT_FINISH,
               RC_ACT_SCHEDULE_RETRY);
}

static void test_processing_worker_lost(void **state)
{
    expect_exact(RC_PROCESSING, RC_EV_WORKER_LOST, &CUR_LEFT, RC_PENDING,
                 RC_ACT_UNBIND | RC_ACT_SCHEDULE_RETRY, 0);
    /* Retryable does not matter for a lost worker, only retries left. */
    expect_exact(RC_PROCESSING, RC_EV_WORKER_LOST, &CUR_RETRY, RC_PENDING,
                 RC_ACT_UNBIND | RC_ACT_SCHEDULE_RETRY, 0);
    expect_exact(RC_PROCESSING, RC_EV_WORKER_LOST, &CUR, RC_FAILED,
                 RC_ACT_UNBIND | RC_ACT_RECORD_ERROR | RC_ACT_UNINDEX | TO_TERMINAL, CODE_UNAVAIL);
    expect_exact(RC_PROCESSING, RC_EV_WORKER_LOST, &CUR_RETRY_NONE, RC_FAILED,
                 RC_ACT_UNBIND | RC_ACT_RECORD_ERROR | RC_ACT_UNINDEX | TO_TERMINAL, CODE_UNAVAIL);
}

/* A worker that gives back an attempt it never started: the task is queued
 * again and the attempt does not count, whatever the retries left (none
 * were spent); anything else is stale. */
static void test_processing_hand_back(void **state)
{
    (void) state;
    static const rc_task_facts_t *const facts[] = {&CUR, &CUR_LEFT, &CUR_RETRY, &CUR_RETRY_NONE};
    for (size_t k = 0; k < sizeof facts / sizeof facts[0]; k++)
        expect_exact(RC_PROCESSING, RC_EV_HAND_BACK, facts[k], RC_PENDING,
                     RC_ACT_UNBIND | RC_ACT_UNCOUNT | RC_ACT_ENQUEUE, 0);
    for (size_t s = 0; s < N_ALL_STATES; s++)
        if (all_states[s] != RC_PROCESSING)
            expect_row(all_states[s], RC_EV_HAND_BACK, &CUR, all_states[s], false, 0, RC_ACT_STALE,
                       ~(uint32_t) RC_ACT_STALE);
}

/* Worker messages that are not from the current attempt on the current
 * worker are discarded: never applied, counted as stale. */
static void test_stale_worker_events(void **state)
{
    static const rc_event_t msgs[] = {RC_EV_STARTED, RC_EV_PROGRESS, RC_EV_RESULT, RC_EV_FAILURE,
                                      RC_EV_CANCEL_ACK, RC_EV_HAND_BACK};
    static const rc_task_facts_t stale_facts[] = {
        {.current = false},
        {.current = false, .retryable = true},
        {.current = false, .retries_left = true},
        {.current = false, .retryable = true, .retries_left = true},
    };
    for (size_t s = 0; s < N_ALL_STATES; s++)
        for (size_t e = 0; e < sizeof msgs / sizeof msgs[0]; e++)
            for (size_t k = 0; k < sizeof stale_facts / sizeof stale_facts[0]; k++)
                expect_row(all_states[s], msgs[e], &stale_facts[k], all_states[s], false, 0, RC_ACT_STALE,
                           ~(uint32_t) RC_ACT_STALE);

    /* Current-looking worker messages for a task that is not PROCESSING are
     * stale too (the task was reset to PENDING, or finished). */
    static const rc_event_t run_msgs[] = {RC_EV_STARTED, RC_EV_PROGRESS, RC_EV_RESULT, RC_EV_FAILURE};
    static const int not_processing[] = {RC_PENDING, RC_COMPLETE, RC_FAILED, RC_CANCELLED, RC_GONE};
    for (size_t s = 0; s < sizeof not_processing / sizeof not_processing[0]; s++)
        for (size_t e = 0; e < sizeof run_msgs / sizeof run_msgs[0]; e++)
            expect_row(not_processing[s], run_msgs[e], &CUR_RETRY, not_processing[s], false, 0, RC_ACT_STALE,
                       ~(uint32_t) RC_ACT_STALE);

    /* A lost worker that no longer holds the task changes nothing. */
    for (size_t s = 0; s < N_ALL_STATES; s++) {
        rc_transition_t t = rc_task_step(all_states[s], RC_EV_WORKER_LOST, &STALE);
        assert_int_equal(t.next, all_states[s]);
        assert_false(t.applied);
        assert_int_equal(t.actions & ~(uint32_t) RC_ACT_STALE, 0);
    }
}

static void test_late_result_on_cancelled(void **state)
{
    /* The worker's result for a cancelled task arrives late: discarded,
     * even if it claims the current attempt. A cancelled task holds no
     * result bytes. */
    rc_transition_t t = rc_task_step(RC_PROCESSING, RC_EV_CANCEL, NULL);
    assert_int_equal(t.next, RC_CANCELLED);
    expect_row(t.next, RC_EV_RESULT, &CUR, RC_CANCELLED, false, 0, RC_ACT_STALE, RC_ACT_STORE_RESULT);
    expect_row(t.next, RC_EV_RESULT, &STALE, RC_CANCELLED, false, 0, RC_ACT_STALE, RC_ACT_STORE_RESULT);
    expect_row(t.next, RC_EV_FAILURE, &CUR_RETRY, RC_CANCELLED, false, 0, RC_ACT_STALE,
               RC_ACT_SCHEDULE_RETRY | RC_ACT_RECORD_ERROR);
    /* Same after a deadline. */
    t = rc_task_step(RC_PROCESSING, RC_EV_DEADLINE, NULL);
    assert_int_equal(t.next, RC_FAILED);
    expect_row(t.next, RC_EV_RESULT, &CUR, RC_FAILED, false, 0, RC_ACT_STALE, RC_ACT_STORE_RESULT);
}

static void test_cancel_ack(void **state)
{
    /* After a cancel or a deadline the worker acknowledges: record it. */
    for (size_t i = 0; i < 3; i++)
        expect_exact(terminals[i], RC_EV_CANCEL_ACK, &CUR, terminals[i], RC_ACT_RECORD_STOPPED, 0);
    /* An ack for the running attempt that nobody cancelled: the worker
     * dropped it, like a lost worker. */
    expect_exact(RC_PROCESSING, RC_EV_CANCEL_ACK, &CUR_LEFT, RC_PENDING,
                 RC_ACT_UNBIND | RC_ACT_SCHEDULE_RETRY, 0);
    expect_exact(RC_PROCESSING, RC_EV_CANCEL_ACK, &CUR, RC_FAILED,
                 RC_ACT_UNBIND | RC_ACT_RECORD_ERROR | RC_ACT_UNINDEX | TO_TERMINAL, CODE_UNAVAIL);
    /* Stale acks and acks for a PENDING task record nothing. */
    expect_row(RC_PENDING, RC_EV_CANCEL_ACK, &CUR, RC_PENDING, false, 0, RC_ACT_STALE,
               ~(uint32_t) RC_ACT_STALE);
    expect_row(RC_CANCELLED, RC_EV_CANCEL_ACK, &STALE, RC_CANCELLED, false, 0, RC_ACT_STALE,
               RC_ACT_RECORD_STOPPED);
}

static void test_expire_delete(void **state)
{
    static const rc_event_t evs[] = {RC_EV_EXPIRE, RC_EV_DELETE};
    for (size_t e = 0; e < 2; e++) {
        for (size_t i = 0; i < 3; i++)
            expect_exact(terminals[i], evs[e], NULL, RC_GONE, RC_ACT_UNINDEX | RC_ACT_DROP, 0);
        /* Only from terminal: Delete of a live task answers FAILED_PRECONDITION. */
        expect_row(RC_PENDING, evs[e], NULL, RC_PENDING, false, 0, 0, ~0u);
        expect_row(RC_PROCESSING, evs[e], NULL, RC_PROCESSING, false, 0, 0, ~0u);
        expect_row(RC_GONE, evs[e], NULL, RC_GONE, false, 0, 0, RC_ACT_DROP);
    }
}

static void test_gone(void **state)
{
    /* A dropped record accepts nothing; worker messages for it are stale. */
    for (int e = 0; e < RC_EV_COUNT; e++) {
        for (int k = 0; k < 8; k++) {
            rc_task_facts_t f = {.current = k & 1, .retryable = k & 2, .retries_left = k & 4};
            rc_transition_t t = rc_task_step(RC_GONE, (rc_event_t) e, &f);
            assert_int_equal(t.next, RC_GONE);
            assert_false(t.applied);
            assert_int_equal(t.actions & ~(uint32_t) RC_ACT_STALE, 0);
            if (e == RC_EV_STARTED || e == RC_EV_PROGRESS || e == RC_EV_RESULT || e == RC_EV_FAILURE ||
                e == RC_EV_CANCEL_ACK)
                assert_true(t.actions & RC_ACT_STALE);
        }
    }
}

/* A whole life: submit, dispatch, retryable failure, retry, dispatch,
 * result, expire. */
static void test_life_cycle(void **state)
{
    int s = RC_PENDING;
    s = rc_task_step(s, RC_EV_DISPATCH, NULL).next;
    assert_int_equal(s, RC_PROCESSING);
    s = rc_task_step(s, RC_EV_STARTED, &CUR).next;
    s = rc_task_step(s, RC_EV_FAILURE, &CUR_RETRY).next;
    assert_int_equal(s, RC_PENDING);
    /* The old attempt's result arrives after the reset: stale. */
    rc_transition_t t = rc_task_step(s, RC_EV_RESULT, &STALE);
    assert_false(t.applied);
    s = rc_task_step(s, RC_EV_RETRY_DUE, NULL).next;
    assert_int_equal(s, RC_PENDING);
    s = rc_task_step(s, RC_EV_DISPATCH, NULL).next;
    assert_int_equal(s, RC_PROCESSING);
    s = rc_task_step(s, RC_EV_RESULT, &CUR).next;
    assert_int_equal(s, RC_COMPLETE);
    t = rc_task_step(s, RC_EV_CANCEL, NULL);
    assert_false(t.applied);
    s = rc_task_step(s, RC_EV_EXPIRE, NULL).next;
    assert_int_equal(s, RC_GONE);
}

/* For every state x event x facts: the rules that make the machine
 * trustworthy. */
static void test_properties(void **state)
{
    size_t checked = 0;
    for (size_t si = 0; si < N_ALL_STATES; si++) {
        int s = all_states[si];
        for (int e = 0; e < RC_EV_COUNT; e++) {
            for (int k = 0; k < 64; k++) {
                rc_task_facts_t f = facts_of(k);
                rc_transition_t t = rc_task_step(s, (rc_event_t) e, &f);
                checked++;
                const char *row = rc_task_event_name((rc_event_t) e);
                /* Terminal states never change again, except to GONE. */
                if (terminal(s) && t.next != s && t.next != RC_GONE) {
                    print_error("%s --%s--> %s (k=%d)\n", rc_task_state_name(s), row,
                                rc_task_state_name(t.next), k);
                    fail();
                }
                if (s == RC_GONE)
                    assert_int_equal(t.next, RC_GONE);
                /* Every way into a terminal state finishes and cleans up. */
                if (!terminal(s) && terminal(t.next)) {
                    if ((t.actions & TO_TERMINAL) != TO_TERMINAL) {
                        print_error("%s --%s--> %s lacks FINISH/CANCEL_*: 0x%x\n", rc_task_state_name(s), row,
                                    rc_task_state_name(t.next), (unsigned) t.actions);
                        fail();
                    }
                    assert_true(t.applied);
                    if (s == RC_PROCESSING)
                        assert_true(t.actions & RC_ACT_UNBIND);
                    if (t.next != RC_COMPLETE)
                        assert_true(t.actions & RC_ACT_UNINDEX);
                    if (t.next == RC_CANCELLED)
                        assert_int_equal(t.code, CODE_CANCELLED);
                    if (t.next == RC_FAILED)
                        assert_true(t.actions & (RC_ACT_RECORD_ERROR));
                }
                /* FINISH only on the way into a terminal state. */
                if (t.actions & RC_ACT_FINISH)
                    assert_true(!terminal(s) && terminal(t.next));
                /* Only COMPLETE keeps result bytes. */
                if (t.actions & RC_ACT_STORE_RESULT)
                    assert_int_equal(t.next, RC_COMPLETE);
                /* Not applied: nothing changes, nothing runs (stale is counted). */
                if (!t.applied) {
                    assert_int_equal(t.next, s);
                    assert_int_equal(t.actions & ~(uint32_t) RC_ACT_STALE, 0);
                    assert_int_equal(t.code, 0);
                }
                if (t.actions & RC_ACT_STALE)
                    assert_false(t.applied);
                /* Only a current message moves a PROCESSING task on a worker message. */
                if (!f.current && e >= RC_EV_STARTED && e <= RC_EV_CANCEL_ACK)
                    assert_false(t.applied);
                /* Dropping only from terminal. */
                if (t.next == RC_GONE && s != RC_GONE) {
                    assert_true(terminal(s));
                    assert_true(t.actions & RC_ACT_DROP);
                }
                /* Nothing is ever assigned except from PENDING to PROCESSING. */
                if (t.actions & RC_ACT_ASSIGN)
                    assert_true(s == RC_PENDING && t.next == RC_PROCESSING);
                /* A retry is scheduled only on the way back to PENDING. */
                if (t.actions & RC_ACT_SCHEDULE_RETRY)
                    assert_true(s == RC_PROCESSING && t.next == RC_PENDING);
                /* The worker is only notified of a cancel when it holds the task. */
                if (t.actions & RC_ACT_NOTIFY_WORKER)
                    assert_int_equal(s, RC_PROCESSING);
            }
        }
    }
    assert_int_equal(checked, N_ALL_STATES * RC_EV_COUNT * 64);
}

static void test_null_facts(void **state)
{
    /* NULL facts read as all false: a worker message is then stale. */
    rc_transition_t t = rc_task_step(RC_PROCESSING, RC_EV_RESULT, NULL);
    assert_false(t.applied);
    assert_true(t.actions & RC_ACT_STALE);
    t = rc_task_step(RC_PROCESSING, RC_EV_COUNT, &CUR);
    assert_false(t.applied);
    assert_int_equal(t.next, RC_PROCESSING);
}

static void test_names(void **state)
{
    assert_string_equal(rc_task_state_name(RC_PENDING), "PENDING");
    assert_string_equal(rc_task_state_name(RC_PROCESSING), "PROCESSING");
    assert_string_equal(rc_task_state_name(RC_COMPLETE), "COMPLETE");
    assert_string_equal(rc_task_state_name(RC_FAILED), "FAILED");
    assert_string_equal(rc_task_state_name(RC_CANCELLED), "CANCELLED");
    assert_string_equal(rc_task_state_name(RC_GONE), "GONE");
    assert_non_null(rc_task_state_name(0));
    assert_non_null(rc_task_state_name(99));
    assert_non_null(rc_task_state_name(-1));

    static const char *const ev[RC_EV_COUNT] = {
        "dispatch", "started",  "progress",  "result", "failure", "worker_lost", "cancel_ack",
        "cancel",   "deadline", "retry_due", "expire", "delete",  "submit",      "evict", "join",
        "hand_back",
    };
    for (int e = 0; e < RC_EV_COUNT; e++) {
        const char *n = rc_task_event_name((rc_event_t) e);
        assert_non_null(n);
        assert_string_equal(n, ev[e]);
        /* Distinct names, so logs are unambiguous. */
        for (int o = 0; o < e; o++)
            assert_string_not_equal(n, rc_task_event_name((rc_event_t) o));
    }
    assert_string_equal(rc_task_event_name(RC_EV_COUNT), "?");
    assert_string_equal(rc_task_event_name((rc_event_t) -1), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documented_table),
        cmocka_unit_test(test_submit_evict_leave),
        cmocka_unit_test(test_pending_dispatch),
        cmocka_unit_test(test_pending_retry_due),
        cmocka_unit_test(test_pending_cancel),
        cmocka_unit_test(test_processing_cancel),
        cmocka_unit_test(test_terminal_cancel_idempotent),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_processing_started_progress),
        cmocka_unit_test(test_processing_result),
        cmocka_unit_test(test_processing_failure),
        cmocka_unit_test(test_processing_worker_lost),
        cmocka_unit_test(test_processing_hand_back),
        cmocka_unit_test(test_stale_worker_events),
        cmocka_unit_test(test_late_result_on_cancelled),
        cmocka_unit_test(test_cancel_ack),
        cmocka_unit_test(test_expire_delete),
        cmocka_unit_test(test_gone),
        cmocka_unit_test(test_life_cycle),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_null_facts),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
