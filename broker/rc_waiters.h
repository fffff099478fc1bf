/* rc_waiters: held Submit and Wait replies. A waiter is answered when its
 * task finishes or its time passes, whichever comes first. Waiters that
 * wait the same time fall due in the order they came, so they sit in FIFO
 * lanes (O(1) in and out); the others in the timer heap. */
#ifndef RC_WAITERS_H
#define RC_WAITERS_H

#include <stdbool.h>
#include <stdint.h>

#include "rc_codec.h"
#include "rc_list.h"
#include "rc_record.h"
#include "rc_timer.h"

typedef struct rc_core rc_core_t;

#define RC_WAIT_LANES      8  /* distinct wait times with a lane at once */
#define RC_WAITER_RID_ROOM 32 /* a waiter of a routing id up to this long comes from the spare list */

enum { W_SUBMIT, W_WAIT };

/* A lane: waiters of one timeout, oldest first. Only the lane's own timer
 * is in the heap, set for its oldest waiter when it is armed and moved on
 * only when it fires. */
typedef struct {
    rc_timer_t timer; /* T_WAIT_LANE */
    uint32_t timeout_ms;
    rc_list_t waiters;
} rc_wait_lane_t;

struct rc_waiter {
    rc_waiter_t *prev, *next; /* in task->waiters */
    rc_task_t *task;
    rc_handle_t *handle; /* the extra handle it waits on; NULL: the task's own */
    rc_timer_t timer;    /* when not in a lane */
    rc_list_t lane_link; /* in a lane: its place there, and when it falls due */
    uint64_t due_us;
    uint64_t req_id;
    uint8_t kind;
    uint8_t sflags; /* RC_SF_*: what the held Submit's reply says of how it was served */
    bool envelope; /* the client used a REQ envelope */
    bool batched;  /* the request came in a batch: the reply may go in one */
    uint8_t n_clamped;
    rc_clamp_t *clamped; /* its request's clamps (rare: then a block of its own) */
    uint8_t rid_len;
    uint8_t rid[];
};

void rc_waiters_init(rc_core_t *core);

/* Holds the reply to the request being handled (core->rid …) until t
 * finishes or timeout_ms (capped by --max-wait-ms) passes. -1 when it
 * cannot: t is finished already, too many waiters, no memory. */
int rc_waiter_add(rc_core_t *core, rc_task_t *t, rc_handle_t *h, uint64_t req_id, int kind, uint32_t timeout_ms,
                  unsigned sflags);

/* Answers every waiter of t with t's state now (t just finished). */
void rc_waiters_answer_all(rc_core_t *core, rc_task_t *t);

/* Answers the waiters of t that wait on handle h (NULL: t's own), which
 * just left the work. */
void rc_waiters_answer_handle(rc_core_t *core, rc_task_t *t, rc_handle_t *h);

/* Frees every waiter of t without an answer (t is being freed). */
void rc_waiters_drop_all(rc_core_t *core, rc_task_t *t);

/* A waiter's own timer fired (T_WAITER): answered with its task's state. */
void rc_waiter_due(rc_core_t *core, rc_timer_t *timer);

/* A lane's timer fired (T_WAIT_LANE): answers its waiters that are due, at
 * most budget, and re-arms; returns how many it answered. */
int rc_waiters_lane_due(rc_core_t *core, rc_timer_t *timer, uint64_t now_us, int budget);

#endif
