/* rc_task: the task state machine, as pure functions. Given a state, an
 * event and the facts the event depends on, it returns the next state and
 * the actions the broker must run. It touches no socket and no memory, so
 * unit tests drive it directly. docs/state-machine.md is its table, row by
 * row, and test_task checks the two against each other.
 *
 * A task is a computation; the ref_ids clients hold are handles on it. The
 * state passed in is what the handle an event concerns sees: the task's own
 * state while the handle is attached to it, or the handle's own terminal
 * state once it left (its holder cancelled it, or its deadline passed,
 * while other handles still wanted the work). Events from workers and the
 * broker concern the task itself.
 *
 * Worker events that are not from the task's current attempt on its current
 * worker are stale: discarded, never applied. */
#ifndef RC_TASK_H
#define RC_TASK_H

#include <stdbool.h>
#include <stdint.h>

/* States are refcache.v1.State values so they print with rc_state_name(). */
enum {
    RC_NEW = 0, /* not accepted yet: only Submit applies */
    RC_PENDING = 1,
    RC_PROCESSING = 2,
    RC_COMPLETE = 3,
    RC_FAILED = 4,
    RC_CANCELLED = 5,
    RC_GONE = 6, /* dropped from the broker: answers NOT_FOUND */
    RC_STATE_COUNT
};

typedef enum {
    RC_EV_DISPATCH,
    RC_EV_STARTED,
    RC_EV_PROGRESS,
    RC_EV_RESULT,
    RC_EV_FAILURE,
    RC_EV_WORKER_LOST,
    RC_EV_CANCEL_ACK,
    RC_EV_CANCEL,
    RC_EV_DEADLINE,
    RC_EV_RETRY_DUE,
    RC_EV_EXPIRE,
    RC_EV_DELETE,
    RC_EV_SUBMIT, /* a client's Submit accepted a new task */
    RC_EV_EVICT,  /* the record cap or the cache's byte cap needs the room */
    RC_EV_JOIN,   /* a Submit found the same work in flight, or its result kept: a new handle on it */
    RC_EV_HAND_BACK, /* the worker gives the attempt back, never started (HandBack, its Ready's report) */
    RC_EV_COUNT
} rc_event_t;

/* Actions, a bit set. */
enum {
    RC_ACT_ENQUEUE = 1u << 0,        /* put the task in its function's queue */
    RC_ACT_DEQUEUE = 1u << 1,        /* take it out of the queue */
    RC_ACT_ASSIGN = 1u << 2,         /* bind to the worker, attempt + 1 */
    RC_ACT_MARK_STARTED = 1u << 3,   /* record started_at */
    RC_ACT_PROGRESS = 1u << 4,       /* record progress */
    RC_ACT_STORE_RESULT = 1u << 5,   /* keep the result bytes */
    RC_ACT_RECORD_ERROR = 1u << 6,   /* keep error code and message */
    RC_ACT_NOTIFY_WORKER = 1u << 7,  /* push a cancel notice to the worker */
    RC_ACT_UNBIND = 1u << 8,         /* the task no longer belongs to its worker */
    RC_ACT_SCHEDULE_RETRY = 1u << 9, /* arm the back-off timer */
    RC_ACT_CANCEL_RETRY = 1u << 10,  /* disarm the back-off timer */
    RC_ACT_CANCEL_DEADLINE = 1u << 11,
    RC_ACT_FINISH = 1u << 12,         /* terminal: answer waiters, free the spec, start the TTL */
    RC_ACT_UNINDEX = 1u << 13,        /* leave the cache / de-duplication index */
    RC_ACT_RECORD_STOPPED = 1u << 14, /* the worker acknowledged the stop */
    RC_ACT_DROP = 1u << 15,           /* free the record */
    RC_ACT_STALE = 1u << 16,          /* not applied: count as stale */
    RC_ACT_LEAVE = 1u << 17,          /* only the handle ends (code says how); the task goes on for others */
    RC_ACT_FORGET = 1u << 18,         /* only the handle goes; the record stays for the others */
    RC_ACT_ATTACH = 1u << 19,         /* a new handle joins the task */
    RC_ACT_RESTORE = 1u << 20,        /* no transition: the store gave the record back at start */
    RC_ACT_UNCOUNT = 1u << 21,        /* the attempt given back does not count: attempt - 1 */
    RC_ACT_COUNT_ = 22
};

/* What an event's outcome depends on besides the state. */
typedef struct {
    bool current;      /* worker events: from the task's current worker and attempt */
    bool retryable;    /* failure: the worker says retrying may help */
    bool retries_left; /* attempt <= max_retries */
    bool no_room;      /* result: there is no memory to keep it */
    bool others_want;  /* cancel, deadline: another handle still wants the work */
    bool shared;       /* expire, delete: the record is still needed without this handle */
} rc_task_facts_t;

typedef struct {
    int next;         /* next state of the task (== state when unchanged) */
    uint32_t actions; /* RC_ACT_* */
    int code;         /* for FAILED/CANCELLED and a handle that leaves: the refcache.v1.Code */
    bool applied;     /* false: the event does not apply in this state */
} rc_transition_t;

/* The transition for event in state. Pure. */
rc_transition_t rc_task_step(int state, rc_event_t event, const rc_task_facts_t *facts);

/* True for COMPLETE, FAILED and CANCELLED. */
static inline bool rc_task_terminal(int state)
{
    return state == RC_COMPLETE || state == RC_FAILED || state == RC_CANCELLED;
}

/* Printable names for logs ("PENDING", "dispatch", "notify_worker"). */
const char *rc_task_state_name(int state);
const char *rc_task_event_name(rc_event_t event);
const char *rc_task_action_name(unsigned bit); /* bit: 0 .. RC_ACT_COUNT_ - 1 */

#endif
