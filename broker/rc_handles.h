/* rc_handles: the ref_ids clients hold on shared work. Every Submit gets a
 * handle of its own; most tasks only ever have the one their record carries
 * (its ref, owner, TTL and `hstate`), which costs nothing more. A Submit
 * that joins identical work in flight, or hits a kept result, gets an extra
 * handle (rc_handle_t) on the same task, and the task then carries a count
 * of the handles that want its work and of those that hold its record
 * (rc_handles_t, kept beside it, F_HANDLES). A handle's Cancel or deadline
 * stops the work only when no other handle still wants it; a handle that
 * goes frees the record only when it was the last to hold it: a refcounted
 * reference cache. The transitions themselves are the runner's. */
#ifndef RC_HANDLES_H
#define RC_HANDLES_H

#include <stdbool.h>
#include <stdint.h>

#include "rc_codec.h"
#include "rc_list.h"
#include "rc_record.h"
#include "rc_timer.h"

typedef struct rc_core rc_core_t;

/* An extra handle. */
struct rc_handle {
    uint8_t ref[16]; /* the key of core->handles */
    uint8_t state;   /* 0: shows its task's state; CANCELLED or FAILED once it left */
    uint8_t jflags;  /* the journal's (rc_journal) */
    uint32_t ttl_s;
    uint64_t owner;
    uint64_t created_us, left_us; /* wall clock; left_us: when it left, else 0 */
    rc_task_t *task;              /* kept right when the record is shrunk */
    rc_list_t link;               /* in its task's rc_handles_t */
    rc_timer_t timer;             /* T_HDEADLINE while it waits on live work with a deadline, else T_HTTL */
};

/* What a task with extra handles carries beside it. */
typedef struct {
    uint8_t ref[16]; /* the task's: the key of core->handle_sets */
    rc_task_t *task;
    rc_list_t handles;    /* its extra handles */
    uint32_t wanting;     /* handles (its own included) that want the work: attached, task live */
    uint32_t holding;     /* handles (its own included) that hold the record */
    uint64_t own_left_us; /* wall clock: when the task's own handle left, else 0 */
} rc_handles_t;

int rc_handles_init(rc_core_t *core);
void rc_handles_fini(rc_core_t *core);

/* The handles that want t's work, and those that hold its record (its own
 * handle counts while it does). */
uint32_t rc_handles_wanting(rc_core_t *core, const rc_task_t *t);
uint32_t rc_handles_holding(rc_core_t *core, const rc_task_t *t);

/* The extra handle of ref, or NULL. */
rc_handle_t *rc_handles_lookup(rc_core_t *core, const uint8_t ref[16]);

/* A new extra handle on t for the Submit being handled (its owner; its
 * TTL, and its deadline if not 0), known by its ref but not yet attached
 * (the runner's join does that). NULL when there is no memory for it. */
rc_handle_t *rc_handles_new(rc_core_t *core, rc_task_t *t, uint32_t ttl_s, uint32_t deadline_ms,
                            const uint8_t ref[16]);

/* Forgets a handle that was never attached. */
void rc_handles_discard(rc_core_t *core, rc_handle_t *h);

/* The runner's actions. attach: h joins its task. leave: h (NULL: the
 * task's own handle) ends with state (CANCELLED or FAILED) while the task
 * goes on; its waiters are answered. forget: h (NULL: the own handle) goes
 * while others still hold the record; an extra one is freed. finish: the
 * task ended; its attached handles' TTLs start. drop: the record goes, with
 * every extra handle. */
void rc_handles_attach(rc_core_t *core, rc_handle_t *h);
void rc_handles_leave(rc_core_t *core, rc_task_t *t, rc_handle_t *h, int state);
void rc_handles_forget(rc_core_t *core, rc_task_t *t, rc_handle_t *h);
void rc_handles_finish(rc_core_t *core, rc_task_t *t);
void rc_handles_drop(rc_core_t *core, rc_task_t *t);

/* The record moved (shrunk): the handles point at its new place. */
void rc_handles_moved(rc_core_t *core, rc_task_t *t);

/* The end of a message: frees the handles that went in it. */
void rc_handles_settle(rc_core_t *core);

/* The state handle h (NULL: t's own) shows, and for the own handle that
 * left, whether its TTL has passed (it then answers as gone). */
int rc_handles_state(const rc_task_t *t, const rc_handle_t *h);
bool rc_handles_own_expired(rc_core_t *core, const rc_task_t *t);

/* When the own handle's TTL ends, in monotonic microseconds from now_us
 * (its TTL counts from when it left, if it did). */
uint64_t rc_handles_own_due(rc_core_t *core, const rc_task_t *t, uint64_t now_us);

/* Fills v as rc_view_task does, as handle h (NULL: t's own) sees it. */
void rc_view_handle(rc_core_t *core, const rc_task_t *t, const rc_handle_t *h, rc_taskview_t *v, char *hex);

/* Recovery (rc_recover): an extra handle read back from the store, on t,
 * attached as it was (times in wall clock; deadline_us 0: none). NULL
 * without memory. Then the state of t's own handle, once its extra
 * handles are there. */
rc_handle_t *rc_handles_restore(rc_core_t *core, rc_task_t *t, const uint8_t ref[16], int state, uint32_t ttl_s,
                                uint64_t owner, uint64_t created_us, uint64_t left_us, uint64_t deadline_us);
void rc_handles_restore_own(rc_core_t *core, rc_task_t *t, uint64_t own_left_us);

/* When the task's own handle left the work (wall clock), or 0. */
uint64_t rc_handles_own_left(rc_core_t *core, const rc_task_t *t);

/* The extra handles of t, one after the other (NULL after the last). */
rc_handle_t *rc_handles_next(rc_core_t *core, const rc_task_t *t, const rc_handle_t *h);

/* The extra handles that exist (for Stats). */
uint64_t rc_handles_count(rc_core_t *core);

#endif
