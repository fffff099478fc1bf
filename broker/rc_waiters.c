/* rc_waiters: held Submit and Wait replies, in lanes or in the timer heap
 * (see rc_waiters.h). */
#include "rc_waiters.h"

#include <stdlib.h>
#include <string.h>

#include "rc_common.h"
#include "rc_core.h"

void rc_waiters_init(rc_core_t *core)
{
    /* At most 1 MiB or so kept for reuse. */
    core->spare_waiters = (rc_spare_t){.size = sizeof(rc_waiter_t) + RC_WAITER_RID_ROOM, .cap = 8192};
    for (int i = 0; i < RC_WAIT_LANES; i++) {
        core->lanes[i].timer.kind = T_WAIT_LANE;
        rc_list_init(&core->lanes[i].waiters);
    }
}

/* Takes a waiter off its lane or the heap (each harmless if it is not
 * there). */
static void unarm(rc_core_t *core, rc_waiter_t *w)
{
    rc_list_remove(&w->lane_link);
    rc_timers_cancel(core->timers, &w->timer);
}

/* Frees a waiter (off its task's list already): one with a short routing
 * id came from the spare list. */
static void release(rc_core_t *core, rc_waiter_t *w)
{
    unarm(core, w);
    core->waiters--;
    free(w->clamped);
    if (w->rid_len <= RC_WAITER_RID_ROOM)
        rc_spare_put(&core->spare_waiters, w);
    else
        free(w);
}

static void unlink_from_task(rc_waiter_t *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else if (w->task)
        w->task->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

/* Answers a waiter with its task's state now and frees it. */
static void answer(rc_core_t *core, rc_waiter_t *w)
{
    /* A Submit's reply hands out its ref_id: a promise, held (with
     * --store) until the store has the record, unless it has it already —
     * the state the reply shows (COMPLETE, say) is not a promise, as a
     * Status reply's is not. */
    core->promise = w->kind == W_SUBMIT && (w->handle || !rc_journal_has_task(core, w->task));
    rc_reply_task_to(core, w->rid, w->rid_len, w->envelope, w->batched, w->req_id,
                     w->kind == W_SUBMIT ? RC_REPLY_SUBMIT : RC_REPLY_TASK, w->task, w->handle, w->sflags,
                     w->clamped, w->n_clamped);
    core->promise = false;
    unlink_from_task(w);
    release(core, w);
}

/* The lane for waiters of timeout_ms: the one that has it, else one that
 * is empty, else NULL. */
static rc_wait_lane_t *lane_for(rc_core_t *core, uint32_t timeout_ms)
{
    rc_wait_lane_t *free_lane = NULL;
    for (int i = 0; i < RC_WAIT_LANES; i++) {
        rc_wait_lane_t *l = &core->lanes[i];
        if (l->timeout_ms == timeout_ms)
            return l;
        if (!free_lane && rc_list_empty(&l->waiters))
            free_lane = l;
    }
    if (free_lane) {
        rc_timers_cancel(core->timers, &free_lane->timer); /* may still be set for a waiter long gone */
        free_lane->timeout_ms = timeout_ms;
    }
    return free_lane;
}

/* Arms a waiter to be answered timeout_ms from now: in a lane if there is
 * one, else in the heap. */
static int arm(rc_core_t *core, rc_waiter_t *w, uint32_t timeout_ms)
{
    uint64_t due_us = rc_core_mono_us(core) + (uint64_t) timeout_ms * 1000;
    rc_wait_lane_t *l = lane_for(core, timeout_ms);
    if (!l) {
        w->timer.kind = T_WAITER;
        return rc_timers_set(core->timers, &w->timer, due_us);
    }
    if (!rc_timer_armed(&l->timer) && rc_timers_set(core->timers, &l->timer, due_us) != 0)
        return -1;
    w->due_us = due_us;
    rc_list_push_back(&l->waiters, &w->lane_link);
    return 0;
}

int rc_waiter_add(rc_core_t *core, rc_task_t *t, rc_handle_t *h, uint64_t req_id, int kind,
                  uint32_t timeout_ms, unsigned sflags)
{
    /* A finished task has nothing to wait for (and its shrunk record has
     * no waiter list): the caller answers at once. */
    if (rc_task_terminal(t->state) || core->waiters >= core->cfg.max_waiters)
        return -1;
    rc_waiter_t *w = core->rid_len <= RC_WAITER_RID_ROOM ? rc_spare_get(&core->spare_waiters)
                                                         : calloc(1, sizeof *w + core->rid_len);
    if (!w)
        return -1;
    w->task = t;
    w->handle = h;
    w->req_id = req_id;
    w->kind = (uint8_t) kind;
    w->sflags = (uint8_t) sflags;
    w->envelope = core->envelope;
    w->batched = core->batched;
    w->rid_len = (uint8_t) core->rid_len;
    memcpy(w->rid, core->rid, core->rid_len);
    if (core->n_clamps) {
        w->clamped = malloc(core->n_clamps * sizeof *w->clamped);
        if (w->clamped) {
            memcpy(w->clamped, core->clamps, core->n_clamps * sizeof *w->clamped);
            w->n_clamped = core->n_clamps;
        }
    }
    core->waiters++;
    if (timeout_ms > core->cfg.max_wait_ms)
        timeout_ms = core->cfg.max_wait_ms;
    if (arm(core, w, timeout_ms) != 0) {
        release(core, w);
        return -1;
    }
    w->next = t->waiters;
    if (t->waiters)
        t->waiters->prev = w;
    t->waiters = w;
    return 0;
}

void rc_waiters_answer_all(rc_core_t *core, rc_task_t *t)
{
    while (t->waiters)
        answer(core, t->waiters);
}

void rc_waiters_answer_handle(rc_core_t *core, rc_task_t *t, rc_handle_t *h)
{
    rc_waiter_t *w = t->waiters;
    while (w) {
        rc_waiter_t *next = w->next;
        if (w->handle == h)
            answer(core, w);
        w = next;
    }
}

void rc_waiters_drop_all(rc_core_t *core, rc_task_t *t)
{
    while (t->waiters) {
        rc_waiter_t *w = t->waiters;
        unlink_from_task(w);
        release(core, w);
    }
}

void rc_waiter_due(rc_core_t *core, rc_timer_t *timer)
{
    answer(core, rc_container_of(timer, rc_waiter_t, timer));
}

int rc_waiters_lane_due(rc_core_t *core, rc_timer_t *timer, uint64_t now, int budget)
{
    rc_wait_lane_t *l = rc_container_of(timer, rc_wait_lane_t, timer);
    int n = 0;
    rc_list_t *front;
    while ((front = rc_list_front(&l->waiters))) {
        rc_waiter_t *w = rc_container_of(front, rc_waiter_t, lane_link);
        if (w->due_us > now || n == budget) {
            /* A failed re-arm leaves these waiters to be answered by their
             * tasks' ends, or by the lane's next arming. */
            (void) rc_timers_set(core->timers, &l->timer, w->due_us > now ? w->due_us : now);
            break;
        }
        answer(core, w);
        n++;
    }
    return n;
}
