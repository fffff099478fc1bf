/* rc_runner: every state change of a task, one transition at a time, with
 * one observation hook (see rc_runner.h). */
#include "rc_runner.h"

#include <stdlib.h>
#include <string.h>

#include "rc_common.h"
#include "rc_core.h"

/* ---------------------------------------------------------------- follow-ups */

/* The next free entry at the back of the ring, for the caller to fill, or
 * NULL when there is no memory to grow it. */
static rc_followup_t *ring_back(rc_runner_t *r)
{
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 256;
        rc_followup_t *ring = malloc(cap * sizeof *ring);
        if (!ring)
            return NULL;
        for (uint32_t i = 0; i < r->n; i++)
            ring[i] = r->ring[(r->head + i) & (r->cap - 1)];
        free(r->ring);
        r->ring = ring;
        r->cap = cap;
        r->head = 0;
    }
    return &r->ring[(r->head + r->n++) & (r->cap - 1)];
}

void rc_runner_dispatch_later(rc_core_t *core, rc_fn_t *fn)
{
    /* Without room for the follow-up, the queue is looked at again when the
     * next worker message or Ready comes (rc_dispatch_peer). */
    rc_followup_t *f = ring_back(&core->runner);
    if (f) {
        f->kind = RC_FU_DISPATCH;
        f->fn = fn;
    }
}

/* ---------------------------------------------------------------- observers */

int rc_runner_observe_some(rc_core_t *core, rc_observer_fn *fn, void *arg, uint32_t actions)
{
    rc_runner_t *r = &core->runner;
    if (r->n_observers == RC_MAX_OBSERVERS)
        return -1;
    r->observers[r->n_observers].fn = fn;
    r->observers[r->n_observers].arg = arg;
    r->observers[r->n_observers].actions = actions;
    r->n_observers++;
    r->actions_observed |= actions;
    return 0;
}

int rc_runner_observe(rc_core_t *core, rc_observer_fn *fn, void *arg)
{
    return rc_runner_observe_some(core, fn, arg, ~0u);
}

void rc_runner_unobserve(rc_core_t *core, rc_observer_fn *fn, void *arg)
{
    rc_runner_t *r = &core->runner;
    for (unsigned i = 0; i < r->n_observers; i++)
        if (r->observers[i].fn == fn && r->observers[i].arg == arg) {
            r->observers[i] = r->observers[--r->n_observers];
            break;
        }
    r->actions_observed = 0;
    for (unsigned i = 0; i < r->n_observers; i++)
        r->actions_observed |= r->observers[i].actions;
}

/* ---------------------------------------------------------------- one transition */

static uint64_t backoff_us(rc_core_t *core, uint32_t attempt)
{
    uint64_t ms = core->cfg.retry_base_ms;
    for (uint32_t i = 1; i < attempt && ms < core->cfg.retry_max_ms; i++)
        ms *= 2;
    if (ms > core->cfg.retry_max_ms)
        ms = core->cfg.retry_max_ms;
    /* Full jitter over the upper half, so retries of many tasks spread out. */
    uint64_t r = 0;
    rc_random_bytes(&r, sizeof r);
    return (ms / 2 + r % (ms / 2 + 1)) * 1000;
}

static void set_error(rc_task_t *t, int code, const char *msg, size_t len)
{
    free(t->error);
    t->error = strndup(msg, len);
    t->error_code = (uint8_t) code;
}

/* The facts the event's outcome depends on, read from the task now. */
static rc_task_facts_t facts_of(rc_core_t *core, const rc_ev_t *ev)
{
    const rc_task_t *t = ev->task;
    bool is_ack = ev->event == RC_EV_CANCEL_ACK;
    rc_task_facts_t f = {
        .current = ev->slot_held && t->attempt == ev->attempt &&
                   (is_ack || (t->state == RC_PROCESSING && t->worker == ev->peer)),
        .retryable = ev->retryable,
        .retries_left = t->attempt <= t->max_retries,
    };
    /* Only a task that gave out other handles than its own has others
     * that want its work or hold its record. */
    if (t->flags & F_HANDLES) {
        f.others_want = rc_handles_wanting(core, t) > 1;
        f.shared = rc_handles_holding(core, t) > 1;
    }
    return f;
}

/* The events that concern one handle: looked up in the state that handle
 * shows (its own once it left the work). */
static bool handle_event(rc_event_t e)
{
    return e == RC_EV_CANCEL || e == RC_EV_DEADLINE || e == RC_EV_EXPIRE || e == RC_EV_DELETE ||
           e == RC_EV_JOIN;
}

/* Shows an applied transition to the observers: the one hook. */
static void observe(rc_core_t *core, const rc_task_t *t, const rc_ev_t *ev, int from, int to,
                    uint32_t actions, int code, const rc_peer_t *worker)
{
    rc_runner_t *r = &core->runner;
    if (!(r->actions_observed & actions))
        return;
    rc_note_t note = {.task = t,
                      .handle = actions & (RC_ACT_LEAVE | RC_ACT_FORGET | RC_ACT_ATTACH | RC_ACT_RESTORE)
                                    ? ev->handle
                                    : NULL,
                      .from = from,
                      .to = to,
                      .event = ev->event,
                      .actions = actions,
                      .code = code,
                      .cause = &ev->cause,
                      .worker = worker};
    for (unsigned i = 0; i < r->n_observers; i++)
        if (r->observers[i].actions & actions)
            r->observers[i].fn(r->observers[i].arg, &note);
}

void rc_runner_restored(rc_core_t *core, rc_task_t *t, rc_handle_t *h)
{
    rc_ev_t ev = {
        .event = h ? RC_EV_JOIN : RC_EV_SUBMIT, .task = t, .handle = h, .cause = {.kind = RC_CAUSE_RESTART}};
    observe(core, t, &ev, RC_NEW, h ? rc_handles_state(t, h) : t->state, RC_ACT_RESTORE, 0, NULL);
}

/* Carries out one event on its task, completely; what it causes in turn is
 * queued. Returns whether it applied. */
static bool apply(rc_core_t *core, const rc_ev_t *ev)
{
    rc_task_t *t = ev->task;
    const rc_wmsg_t *msg = ev->msg;
    rc_task_facts_t f = facts_of(core, ev);
    int from = handle_event(ev->event) ? rc_handles_state(t, ev->handle) : t->state;
    /* A result is kept only where there is memory to keep it: found out
     * before the transition, so that it is one (to FAILED) and not two. */
    if (ev->event == RC_EV_RESULT && f.current && t->state == RC_PROCESSING)
        f.no_room = rc_cache_keep_result(core, t, msg ? msg->data.ptr : NULL, msg ? msg->data.len : 0) != 0;
    rc_transition_t tr = rc_task_step(from, ev->event, &f);
    uint32_t a = tr.actions;
    if (a & RC_ACT_STALE)
        core->c.stale_msgs++;
    if (!tr.applied)
        return false;
    if (a & (RC_ACT_LEAVE | RC_ACT_FORGET | RC_ACT_ATTACH)) {
        /* Only the handle changes; the task goes on as it was. */
        int to = from;
        if (a & RC_ACT_LEAVE) {
            to = tr.code == REFCACHE__V1__CODE__CODE_CANCELLED ? RC_CANCELLED : RC_FAILED;
            rc_handles_leave(core, t, ev->handle, to);
        } else if (a & RC_ACT_FORGET) {
            to = RC_GONE;
            rc_handles_forget(core, t, ev->handle);
        } else {
            from = RC_NEW;
            rc_handles_attach(core, ev->handle);
        }
        observe(core, t, ev, from, to, a, tr.code, NULL);
        return true;
    }

    if (a & RC_ACT_DEQUEUE && rc_list_linked(&t->link)) {
        rc_list_remove(&t->link);
        t->fn->queued--;
    }
    if (a & RC_ACT_NOTIFY_WORKER && t->worker) {
        /* Without room for it the worker finishes the job, its result stale. */
        rc_followup_t *n = ring_back(&core->runner);
        if (n) {
            n->kind = RC_FU_NOTICE;
            n->notice.peer = t->worker;
            n->notice.attempt = t->attempt;
            n->notice.reason = tr.code;
            memcpy(n->notice.ref, t->ref, 16);
        }
    }
    rc_peer_t *held = NULL;
    if (a & RC_ACT_UNBIND) {
        held = t->worker;
        t->worker = NULL;
    }
    if (a & RC_ACT_CANCEL_RETRY)
        rc_timers_cancel(core->timers, &t->timer);
    if (a & RC_ACT_CANCEL_DEADLINE)
        rc_timers_cancel(core->timers, &t->deadline);
    if (a & RC_ACT_UNINDEX)
        rc_cache_unindex(core, t);
    if (a & RC_ACT_MARK_STARTED) {
        t->started_us = rc_core_wall_us(core);
        t->flags |= F_EVER_STARTED;
    }
    /* A Result or Failure without a Started before it tells that the job
     * ran (a job that ends before its first step boundary sends none). */
    if ((ev->event == RC_EV_RESULT || ev->event == RC_EV_FAILURE) && !t->started_us) {
        t->started_us = rc_core_wall_us(core);
        t->flags |= F_EVER_STARTED;
    }
    if (a & RC_ACT_PROGRESS && msg) {
        t->progress_done = msg->done;
        t->progress_total = msg->total;
    }
    if (a & RC_ACT_RECORD_STOPPED && t->flags & F_EXT) {
        t->stopped_us = rc_core_wall_us(core);
        if (ev->started)
            t->flags |= F_EVER_STARTED;
    }
    if (a & RC_ACT_RECORD_ERROR) {
        int c = tr.code ? tr.code : ev->code;
        if (tr.code == REFCACHE__V1__CODE__CODE_DEADLINE_EXCEEDED)
            set_error(t, c, "deadline exceeded", 17);
        else if (tr.code == REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED && ev->event == RC_EV_RESULT)
            set_error(t, c, "out of memory keeping the result", 32);
        else if (ev->event == RC_EV_FAILURE && msg)
            set_error(t, c ? c : REFCACHE__V1__CODE__CODE_UNKNOWN, msg->message.ptr, msg->message.len);
        else if (ev->cause.kind == RC_CAUSE_RESTART)
            set_error(t, c, "worker lost: the broker restarted while it ran", 46);
        else
            set_error(t, c, "worker lost", 11);
    }
    if (tr.next == RC_CANCELLED && from != RC_CANCELLED)
        set_error(t, REFCACHE__V1__CODE__CODE_CANCELLED, "cancelled", 9);
    if (a & RC_ACT_ASSIGN) {
        t->worker = ev->peer;
        t->started_us = 0;
        t->progress_done = t->progress_total = 0;
        rc_followup_t *lost;
        if (rc_dispatch_assign(core, ev->peer, t) != 0 && (lost = ring_back(&core->runner))) {
            /* A refused dispatch is a lost attempt: after this transition.
             * (Without room for the follow-up the task stays PROCESSING on
             * a worker that refuses to listen, which the tick declares lost
             * when it stays silent.) */
            lost->kind = RC_FU_EVENT;
            lost->ev = (rc_ev_t){.event = RC_EV_WORKER_LOST,
                                 .task = t,
                                 .peer = ev->peer,
                                 .attempt = t->attempt,
                                 .slot_held = true,
                                 .cause = {.kind = RC_CAUSE_BROKER, .peer = ev->peer}};
        }
    }
    if (a & RC_ACT_UNCOUNT) {
        /* Never started: as if it had never been dispatched. Its queue
         * time counts from now (the metrics read a later attempt's from
         * the retry timer's due time; the timer is not armed). */
        t->attempt--;
        if (!rc_timer_armed(&t->timer))
            t->timer.due_us = rc_core_mono_us(core);
        core->c.handed_back++;
    }
    if (a & RC_ACT_STORE_RESULT)
        core->c.completed++;
    /* Before the state moves: what the record leaves behind (the cache's
     * bytes of a COMPLETE task) depends on the state it had. */
    if (a & RC_ACT_DROP) {
        if (ev->event == RC_EV_EXPIRE)
            core->c.expired++;
        else if (ev->event == RC_EV_EVICT)
            core->c.evicted++;
        if (t->flags & F_HANDLES) {
            /* Each extra handle goes with the record: shown as its own end. */
            for (rc_handle_t *h = NULL;
                 core->runner.actions_observed & RC_ACT_FORGET && (h = rc_handles_next(core, t, h));) {
                rc_ev_t one = *ev;
                one.handle = h;
                observe(core, t, &one, rc_handles_state(t, h), RC_GONE, RC_ACT_FORGET, 0, NULL);
            }
            rc_handles_drop(core, t);
        }
        rc_cache_drop(core, t);
    }
    rc_core_set_state(core, t, tr.next);

    if (a & RC_ACT_SCHEDULE_RETRY) {
        core->c.retries++;
        t->timer.kind = T_RETRY;
        rc_timers_set(core->timers, &t->timer, rc_core_mono_us(core) + backoff_us(core, t->attempt));
    }
    if (a & RC_ACT_ENQUEUE) {
        rc_list_push_back(&t->fn->queue, &t->link);
        t->fn->queued++;
        rc_runner_dispatch_later(core, t->fn);
    }
    if (a & RC_ACT_FINISH) {
        t->finished_us = rc_core_wall_us(core);
        if (tr.next == RC_FAILED) {
            core->c.failed++;
            if (tr.code == REFCACHE__V1__CODE__CODE_DEADLINE_EXCEEDED)
                core->c.deadline_exceeded++;
        } else if (tr.next == RC_CANCELLED) {
            core->c.cancelled++;
        }
        rc_cache_retire(core, t); /* F_FULL from here: the views read the active fields */
        rc_waiters_answer_all(core, t);
        if (t->flags & F_HANDLES)
            rc_handles_finish(core, t);
    }
    observe(core, t, ev, from, tr.next, a, tr.code, held);
    return true;
}

/* ---------------------------------------------------------------- the runner */

/* Runs the queued follow-ups, in order, until none is left. Each is taken
 * off the ring before it runs (running it may queue more). */
static void drain(rc_core_t *core)
{
    rc_runner_t *r = &core->runner;
    r->draining = true;
    while (r->n) {
        rc_followup_t *f = &r->ring[r->head];
        r->head = (r->head + 1) & (r->cap - 1);
        r->n--;
        switch (f->kind) {
        case RC_FU_EVENT: {
            rc_ev_t ev = f->ev;
            r->in_transition = true;
            apply(core, &ev);
            r->in_transition = false;
            break;
        }
        case RC_FU_NOTICE: {
            uint8_t ref[16];
            memcpy(ref, f->notice.ref, 16);
            rc_dispatch_notice(core, f->notice.peer, ref, f->notice.attempt, f->notice.reason);
            break;
        }
        case RC_FU_DISPATCH:
            rc_dispatch_fn(core, f->fn);
            break;
        }
    }
    r->draining = false;
}

bool rc_run(rc_core_t *core, const rc_ev_t *ev)
{
    rc_runner_t *r = &core->runner;
    if (r->in_transition) {
        rc_followup_t *f = ring_back(r);
        if (f) {
            f->kind = RC_FU_EVENT;
            f->ev = *ev;
            f->ev.msg = NULL;
        }
        return false;
    }
    r->in_transition = true;
    bool applied = apply(core, ev);
    r->in_transition = false;
    if (!r->draining && r->n)
        drain(core);
    return applied;
}

void rc_runner_settle(rc_core_t *core)
{
    rc_cache_settle(core);
}

void rc_runner_fini(rc_runner_t *r)
{
    free(r->ring);
    r->ring = NULL;
    r->cap = r->n = r->head = 0;
}
