/* rc_task: the task state machine of PRODUCT.md section 3, as pure
 * functions. Given a state, an event and the facts the event depends on, it
 * returns the next state and the actions the broker must run. It touches no
 * socket and no memory, so unit tests drive it directly.
 *
 *   PENDING    --dispatch-->            PROCESSING  assign to a worker
 *   PENDING    --retry_due-->           PENDING     (back in the queue)
 *   PENDING    --cancel-->              CANCELLED   dequeue / disarm the retry
 *   PENDING    --deadline-->            FAILED      DEADLINE_EXCEEDED
 *   PROCESSING --result (current)-->    COMPLETE    store the result
 *   PROCESSING --failure, retry left--> PENDING     back-off, attempt + 1
 *   PROCESSING --failure-->             FAILED      keep code and message
 *   PROCESSING --worker_lost-->         PENDING (retry left) or FAILED UNAVAILABLE
 *   PROCESSING --cancel-->              CANCELLED   cancel notice to the worker
 *   PROCESSING --deadline-->            FAILED      DEADLINE_EXCEEDED, cancel notice
 *   terminal   --cancel-->              unchanged   cancelled = false
 *   terminal   --expire/delete-->       gone
 * Worker events that are not from the task's current attempt on its current
 * worker are stale: discarded, never applied. */
#ifndef RC_TASK_H
#define RC_TASK_H

#include <stdbool.h>
#include <stdint.h>

/* States are refcache.v1.State values so they print with rc_state_name(). */
enum {
    RC_PENDING = 1,
    RC_PROCESSING = 2,
    RC_COMPLETE = 3,
    RC_FAILED = 4,
    RC_CANCELLED = 5,
    RC_GONE = 6, /* dropped from the broker: answers NOT_FOUND */
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
};

/* What an event's outcome depends on besides the state. */
typedef struct {
    bool current;      /* worker events: from the task's current worker and attempt */
    bool retryable;    /* failure: the worker says retrying may help */
    bool retries_left; /* attempt <= max_retries */
} rc_task_facts_t;

typedef struct {
    int next;         /* next state (== state when unchanged) */
    uint32_t actions; /* RC_ACT_* */
    int code;         /* for FAILED/CANCELLED: the refcache.v1.Code to record */
    bool applied;     /* false: the event does not apply in this state */
} rc_transition_t;

/* The transition for event in state. Pure. */
rc_transition_t rc_task_step(int state, rc_event_t event, const rc_task_facts_t *facts);

/* Printable names for logs. */
const char *rc_task_state_name(int state);
const char *rc_task_event_name(rc_event_t event);

#endif
