/* rc_task: the task state machine (docs/state-machine.md is its table). */
#include "rc_task.h"

#include "rc_common.h"

/* Every way into a terminal state runs the same clean-up, so a cancelled,
 * failed or timed-out task can hold no timer, no queue place and no worker. */
#define TO_TERMINAL (RC_ACT_FINISH | RC_ACT_CANCEL_DEADLINE | RC_ACT_CANCEL_RETRY)

#define CODE_CANCELLED   REFCACHE__V1__CODE__CODE_CANCELLED
#define CODE_DEADLINE    REFCACHE__V1__CODE__CODE_DEADLINE_EXCEEDED
#define CODE_UNAVAILABLE REFCACHE__V1__CODE__CODE_UNAVAILABLE
#define CODE_NO_ROOM     REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED

static rc_transition_t go(int next, uint32_t actions, int code)
{
    return (rc_transition_t){.next = next, .actions = actions, .code = code, .applied = true};
}

static rc_transition_t stay(int state, uint32_t actions)
{
    return (rc_transition_t){.next = state, .actions = actions, .code = 0, .applied = false};
}

static rc_transition_t retry_or_fail(const rc_task_facts_t *f, int code)
{
    if (f->retries_left)
        return go(RC_PENDING, RC_ACT_UNBIND | RC_ACT_SCHEDULE_RETRY, 0);
    return go(RC_FAILED, RC_ACT_UNBIND | RC_ACT_RECORD_ERROR | RC_ACT_UNINDEX | TO_TERMINAL, code);
}

/* Cancel and deadline end a live handle: only the handle when others still
 * want the work, else the task itself (stopping its worker if it has one). */
static rc_transition_t stop(int state, const rc_task_facts_t *f, int code)
{
    if (f->others_want)
        return go(state, RC_ACT_LEAVE, code);
    uint32_t err = code == CODE_CANCELLED ? 0 : RC_ACT_RECORD_ERROR;
    int next = code == CODE_CANCELLED ? RC_CANCELLED : RC_FAILED;
    if (state == RC_PENDING)
        return go(next, RC_ACT_DEQUEUE | RC_ACT_UNINDEX | err | TO_TERMINAL, code);
    return go(next, RC_ACT_NOTIFY_WORKER | RC_ACT_UNBIND | RC_ACT_UNINDEX | err | TO_TERMINAL, code);
}

/* The messages a worker sends about a task. */
static bool worker_msg(rc_event_t event)
{
    return (event >= RC_EV_STARTED && event <= RC_EV_FAILURE) || event == RC_EV_CANCEL_ACK ||
           event == RC_EV_HAND_BACK;
}

rc_transition_t rc_task_step(int state, rc_event_t event, const rc_task_facts_t *f)
{
    static const rc_task_facts_t none = {0};
    if (!f)
        f = &none;
    bool live = state == RC_PENDING || state == RC_PROCESSING;

    if (state == RC_NEW && event == RC_EV_SUBMIT)
        return go(RC_PENDING, RC_ACT_ENQUEUE, 0);
    if (state == RC_NEW || state == RC_GONE || (unsigned) state >= RC_STATE_COUNT)
        return stay(state, worker_msg(event) ? RC_ACT_STALE : 0);

    switch (event) {
    case RC_EV_SUBMIT:
        return stay(state, 0); /* a task is accepted once */

    case RC_EV_JOIN:
        /* Work in flight, or a result kept, takes another handle; a failed
         * or cancelled task is out of the index and takes none. */
        if (live || state == RC_COMPLETE)
            return go(state, RC_ACT_ATTACH, 0);
        return stay(state, 0);

    case RC_EV_CANCEL:
        if (live)
            return stop(state, f, CODE_CANCELLED);
        return stay(state, 0); /* terminal: idempotent, cancelled = false */

    case RC_EV_DEADLINE:
        if (live)
            return stop(state, f, CODE_DEADLINE);
        return stay(state, 0);

    case RC_EV_DISPATCH:
        if (state == RC_PENDING)
            return go(RC_PROCESSING, RC_ACT_DEQUEUE | RC_ACT_ASSIGN, 0);
        return stay(state, 0);

    case RC_EV_RETRY_DUE:
        if (state == RC_PENDING)
            return go(RC_PENDING, RC_ACT_ENQUEUE, 0);
        return stay(state, 0);

    case RC_EV_EXPIRE:
    case RC_EV_DELETE:
        if (!rc_task_terminal(state))
            return stay(state, 0); /* Delete answers FAILED_PRECONDITION */
        if (f->shared)
            return go(state, RC_ACT_FORGET, 0);
        return go(RC_GONE, RC_ACT_UNINDEX | RC_ACT_DROP, 0);

    case RC_EV_EVICT:
        /* The caps make room from finished tasks only, whoever holds them. */
        if (rc_task_terminal(state))
            return go(RC_GONE, RC_ACT_UNINDEX | RC_ACT_DROP, 0);
        return stay(state, 0);

    case RC_EV_CANCEL_ACK:
        /* The worker stopped an attempt it was told to stop: its slot is
         * free (the broker does that whatever the state) and the record
         * learns when. An ack for the running attempt that nobody cancelled
         * means the worker dropped it: treat it as lost. */
        if (state == RC_PROCESSING && f->current)
            return retry_or_fail(f, CODE_UNAVAILABLE);
        if (rc_task_terminal(state) && f->current)
            return go(state, RC_ACT_RECORD_STOPPED, 0);
        return stay(state, RC_ACT_STALE);

    case RC_EV_HAND_BACK:
        /* The worker never started this attempt: back to the queue, as if
         * it had never been dispatched. */
        if (state == RC_PROCESSING && f->current)
            return go(RC_PENDING, RC_ACT_UNBIND | RC_ACT_UNCOUNT | RC_ACT_ENQUEUE, 0);
        return stay(state, RC_ACT_STALE);

    case RC_EV_STARTED:
    case RC_EV_PROGRESS:
    case RC_EV_RESULT:
    case RC_EV_FAILURE:
    case RC_EV_WORKER_LOST:
        if (state != RC_PROCESSING || !f->current)
            return stay(state, event == RC_EV_WORKER_LOST ? 0 : RC_ACT_STALE);
        if (event == RC_EV_STARTED)
            return go(state, RC_ACT_MARK_STARTED, 0);
        if (event == RC_EV_PROGRESS)
            return go(state, RC_ACT_PROGRESS, 0);
        if (event == RC_EV_RESULT) {
            /* A result that cannot be kept makes the task fail rather than lie. */
            if (f->no_room)
                return go(RC_FAILED, RC_ACT_UNBIND | RC_ACT_RECORD_ERROR | RC_ACT_UNINDEX | TO_TERMINAL,
                          CODE_NO_ROOM);
            return go(RC_COMPLETE, RC_ACT_UNBIND | RC_ACT_STORE_RESULT | TO_TERMINAL, 0);
        }
        if (event == RC_EV_FAILURE) {
            if (f->retryable)
                return retry_or_fail(f, 0);
            return go(RC_FAILED, RC_ACT_UNBIND | RC_ACT_RECORD_ERROR | RC_ACT_UNINDEX | TO_TERMINAL, 0);
        }
        return retry_or_fail(f, CODE_UNAVAILABLE);

    case RC_EV_COUNT:
        break;
    }
    return stay(state, 0);
}

const char *rc_task_state_name(int state)
{
    if (state == RC_NEW)
        return "NEW";
    return state == RC_GONE ? "GONE" : rc_state_name(state);
}

const char *rc_task_event_name(rc_event_t event)
{
    static const char *const names[RC_EV_COUNT] = {
        "dispatch", "started",   "progress", "result", "failure", "worker_lost", "cancel_ack", "cancel",
        "deadline", "retry_due", "expire",   "delete", "submit",  "evict",       "join",       "hand_back",
    };
    return (unsigned) event < RC_EV_COUNT ? names[event] : "?";
}

const char *rc_task_action_name(unsigned bit)
{
    static const char *const names[RC_ACT_COUNT_] = {
        "enqueue",      "dequeue",         "assign",        "mark_started", "progress",
        "store_result", "record_error",    "notify_worker", "unbind",       "schedule_retry",
        "cancel_retry", "cancel_deadline", "finish",        "unindex",      "record_stopped",
        "drop",         "stale",           "leave",         "forget",       "attach",
        "restore",      "uncount",
    };
    return bit < RC_ACT_COUNT_ ? names[bit] : "?";
}
