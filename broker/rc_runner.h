/* rc_runner: the one place where task state changes. Every event for a
 * task — a client's request, a worker's message, a timer, the broker's own
 * decisions — goes through rc_run, which asks the state machine (rc_task)
 * for the transition and carries out its actions, completely, before
 * anything else runs. What a transition causes in turn (a refused dispatch
 * that makes the attempt lost, a cancel notice to a worker, dispatching
 * what was queued) is queued as a follow-up and runs after it, in order.
 *
 * Every applied transition is shown, once, to the observers (rc_note_t):
 * the one hook where a journal, an event stream or metrics attach. An
 * observer must not change tasks; it is called inside the transition.
 *
 * Records never move or die while a message is being handled: a finished
 * task is shrunk, and a dropped one freed, at rc_runner_settle, which the
 * loop's entry points (rc_core_*) call when they are done. */
#ifndef RC_RUNNER_H
#define RC_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include "rc_codec.h"
#include "rc_peers.h"
#include "rc_record.h"

typedef struct rc_core rc_core_t;

/* Where an event came from. */
typedef enum {
    RC_CAUSE_CLIENT,  /* a client's request (Submit, Cancel, Delete) */
    RC_CAUSE_WORKER,  /* a worker's message about the task */
    RC_CAUSE_TIMER,   /* the task's deadline, retry back-off or TTL */
    RC_CAUSE_BROKER,  /* the broker itself: a dispatch, a refused send, a lost worker, a cap */
    RC_CAUSE_RESTART, /* the broker restarted (recovery from its store) */
} rc_cause_kind_t;

typedef struct {
    rc_cause_kind_t kind;
    const rc_peer_t *peer; /* the worker concerned (WORKER; BROKER when about a worker) */
    uint64_t owner;        /* CLIENT: the requester's owner id (0 without CURVE) */
    const uint8_t *rid;    /* CLIENT: its connection's routing id (valid during the call) */
    uint8_t rid_len;
} rc_cause_t;

/* An event for one task, and what it carries. */
typedef struct {
    rc_event_t event;
    rc_task_t *task;
    rc_handle_t *handle;  /* cancel, deadline, expire, delete, join: an extra handle; NULL: the task's own */
    rc_peer_t *peer;      /* dispatch: the peer chosen; worker events: the sender */
    uint32_t attempt;     /* worker events: the attempt they are about */
    bool slot_held;       /* worker events: the sender held (ref, attempt) in a credit slot */
    bool retryable;       /* failure */
    bool started;         /* cancel ack: the job had begun to run */
    int code;             /* failure: the worker's code */
    const rc_wmsg_t *msg; /* progress, result bytes, failure text: only from a top-level rc_run */
    rc_cause_t cause;
} rc_ev_t;

/* What an observer sees of one applied transition. The pointers are valid
 * only during the call (keep the refs). A transition of the task concerns
 * every handle attached to it; one that only a handle makes (leave, forget,
 * attach) names the handle: an extra one, or NULL for the task's own. */
typedef struct {
    const rc_task_t *task;
    const rc_handle_t *handle; /* leave, forget, attach, restore of an extra handle; else NULL */
    int from, to;              /* the states the task (or that handle) shows before and after */
    rc_event_t event;
    uint32_t actions; /* RC_ACT_* */
    int code;         /* the code recorded (FAILED, CANCELLED) */
    const rc_cause_t *cause;
    const rc_peer_t *worker; /* the worker that held the task until this transition (unbind), or NULL */
} rc_note_t;

typedef void(rc_observer_fn)(void *arg, const rc_note_t *note);

#define RC_MAX_OBSERVERS 4

/* A follow-up waiting for the current transition to end. */
typedef struct {
    enum { RC_FU_EVENT, RC_FU_NOTICE, RC_FU_DISPATCH } kind;
    union {
        rc_ev_t ev; /* EVENT (never with a msg) */
        struct {    /* NOTICE: a cancel notice for (ref, attempt) to peer */
            rc_peer_t *peer;
            uint32_t attempt;
            int reason;
            uint8_t ref[16];
        } notice;
        rc_fn_t *fn; /* DISPATCH: the function whose queue got a task */
    };
} rc_followup_t;

typedef struct {
    bool in_transition;  /* apply is running: rc_run queues */
    bool draining;       /* follow-ups are being run */
    rc_followup_t *ring; /* cap entries, a power of two */
    uint32_t cap, head, n;
    struct {
        rc_observer_fn *fn;
        void *arg;
        uint32_t actions; /* shown only transitions with one of these actions (all: ~0) */
    } observers[RC_MAX_OBSERVERS];
    unsigned n_observers;
    uint32_t actions_observed; /* the union of the observers' action sets */
} rc_runner_t;

/* Runs ev. From outside a transition it is applied now, with every
 * follow-up it causes, and the result tells whether it applied (a Cancel
 * that cancelled, say). From inside one (an action) it is queued and runs
 * when that transition is done; false then. */
bool rc_run(rc_core_t *core, const rc_ev_t *ev);

/* Queues, from an action, dispatching fn's queue after the transition. */
void rc_runner_dispatch_later(rc_core_t *core, rc_fn_t *fn);

/* Adds or removes an observer of every applied transition. 0 or -1 (full). */
int rc_runner_observe(rc_core_t *core, rc_observer_fn *fn, void *arg);

/* The same for an observer of the transitions with one of the actions in
 * the set only (RC_ACT_*), which costs the others nothing. */
int rc_runner_observe_some(rc_core_t *core, rc_observer_fn *fn, void *arg, uint32_t actions);
void rc_runner_unobserve(rc_core_t *core, rc_observer_fn *fn, void *arg);

/* Tells the observers that the store gave back, at start, task t's own
 * record (h NULL) or its extra handle h: no transition, only that it exists
 * (the list index needs it), shown as a submit or a join from RC_NEW to the
 * state it shows, with the action RC_ACT_RESTORE and the cause
 * RC_CAUSE_RESTART. The journal, which has it already, does not observe it. */
void rc_runner_restored(rc_core_t *core, rc_task_t *t, rc_handle_t *h);

/* The end of a message: records that finished are shrunk, those dropped
 * freed, the caps enforced (rc_cache_settle). */
void rc_runner_settle(rc_core_t *core);

void rc_runner_fini(rc_runner_t *runner);

#endif
