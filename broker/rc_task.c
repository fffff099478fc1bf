#include "rc_task.h"

#include "rc_common.h"

/* Every way into a terminal state runs the same clean-up, so a cancelled,
 * failed or timed-out task can hold no timer, no queue place and no worker. */
#define TO_TERMINAL (RC_ACT_FINISH | RC_ACT_CANCEL_DEADLINE | RC_ACT_CANCEL_RETRY)

static rc_transition_t go(int next, uint32_t actions, int code)
{
    return (rc_transition_t){.next = next, .actions = actions, .code = code, .applied = true};
}

static rc_transition_t stay(int state, uint32_t actions)
{
    return (rc_transition_t){.next = state, .actions = actions, .code = 0, .applied = false};
}

static bool is_terminal(int state)
{
    return state == RC_COMPLETE || state == RC_FAILED || state == RC_CANCELLED;
}

static rc_transition_t retry_or_fail(const rc_task_facts_t *f, int code, uint32_t extra)
{
    if (f->retries_left)
        return go(RC_PENDING, RC_ACT_UNBIND | RC_ACT_SCHEDULE_RETRY | extra, 0);
    return go(RC_FAILED, RC_ACT_UNBIND | RC_ACT_RECORD_ERROR | RC_ACT_UNINDEX | TO_TERMINAL | extra, code);
}

rc_transition_t rc_task_step(int state, rc_event_t event, const rc_task_facts_t *f)
{
    static const rc_task_facts_t none = {0};
    if (!f)
        f = &none;

    if (state == RC_GONE)
        return stay(state, event <= RC_EV_CANCEL_ACK ? RC_ACT_STALE : 0);

    switch (event) {
    case RC_EV_CANCEL:
        if (state == RC_PENDING)
            return go(RC_CANCELLED, RC_ACT_DEQUEUE | RC_ACT_UNINDEX | TO_TERMINAL,
                      REFCACHE__V1__CODE__CODE_CANCELLED);
        if (state == RC_PROCESSING)
            return go(RC_CANCELLED, RC_ACT_NOTIFY_WORKER | RC_ACT_UNBIND | RC_ACT_UNINDEX | TO_TERMINAL,
                      REFCACHE__V1__CODE__CODE_CANCELLED);
        return stay(state, 0); /* terminal: idempotent, cancelled = false */

    case RC_EV_DEADLINE:
        if (state == RC_PENDING)
            return go(RC_FAILED, RC_ACT_DEQUEUE | RC_ACT_UNINDEX | RC_ACT_RECORD_ERROR | TO_TERMINAL,
                      REFCACHE__V1__CODE__CODE_DEADLINE_EXCEEDED);
        if (state == RC_PROCESSING)
            return go(RC_FAILED,
                      RC_ACT_NOTIFY_WORKER | RC_ACT_UNBIND | RC_ACT_UNINDEX | RC_ACT_RECORD_ERROR |
                          TO_TERMINAL,
                      REFCACHE__V1__CODE__CODE_DEADLINE_EXCEEDED);
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
        if (is_terminal(state))
            return go(RC_GONE, RC_ACT_UNINDEX | RC_ACT_DROP, 0);
        return stay(state, 0); /* Delete answers FAILED_PRECONDITION */

    case RC_EV_CANCEL_ACK:
        /* The worker stopped an attempt it was told to stop: its slot is
         * free (the broker does that whatever the state) and the record
         * learns when. An ack for the running attempt that nobody cancelled
         * means the worker dropped it: treat it as lost. */
        if (state == RC_PROCESSING && f->current)
            return retry_or_fail(f, REFCACHE__V1__CODE__CODE_UNAVAILABLE, 0);
        if (is_terminal(state) && f->current)
            return go(state, RC_ACT_RECORD_STOPPED, 0);
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
        if (event == RC_EV_RESULT)
            return go(RC_COMPLETE, RC_ACT_UNBIND | RC_ACT_STORE_RESULT | TO_TERMINAL, 0);
        if (event == RC_EV_FAILURE) {
            if (f->retryable)
                return retry_or_fail(f, 0, 0);
            return go(RC_FAILED, RC_ACT_UNBIND | RC_ACT_RECORD_ERROR | RC_ACT_UNINDEX | TO_TERMINAL, 0);
        }
        return retry_or_fail(f, REFCACHE__V1__CODE__CODE_UNAVAILABLE, 0);

    case RC_EV_COUNT:
        break;
    }
    return stay(state, 0);
}

const char *rc_task_state_name(int state)
{
    return state == RC_GONE ? "GONE" : rc_state_name(state);
}

const char *rc_task_event_name(rc_event_t event)
{
    static const char *const names[RC_EV_COUNT] = {
        "dispatch",   "started", "progress", "result",    "failure", "worker_lost",
        "cancel_ack", "cancel",  "deadline", "retry_due", "expire",  "delete",
    };
    return (unsigned) event < RC_EV_COUNT ? names[event] : "?";
}
