/* rc_record: the layout of a task record and the accessors that read it.
 * Who creates, shrinks and frees records is the cache's business
 * (rc_cache); who changes their state is the runner's (rc_runner). Owned
 * and touched by the broker thread only. */
#ifndef RC_RECORD_H
#define RC_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "rc_list.h"
#include "rc_task.h"
#include "rc_timer.h"

typedef struct rc_fn rc_fn_t;
typedef struct rc_peer rc_peer_t;
typedef struct rc_waiter rc_waiter_t;
typedef struct rc_handle rc_handle_t;

enum {
    F_INDEXED = 1u << 0,      /* in the cache / de-duplication index */
    F_EVER_STARTED = 1u << 1, /* some attempt began to run */
    F_SHARED_NS = 1u << 2,    /* in a namespace shared across owners: visible to all */
    F_FULL = 1u << 3,      /* terminal, but not shrunk (yet, or for want of memory): fields as when active */
    F_EXT = 1u << 4,       /* the record has the fields from ns to stopped_us */
    F_UNSETTLED = 1u << 5, /* finished in this message: shrunk at its end (core->unsettled) */
    F_DEAD = 1u << 6,      /* dropped: out of every table, freed at the end of the message (core->dead) */
    F_HANDLES = 1u << 7,   /* other handles than its own were given out on it (rc_handles) */
};

/* A task record. The fields up to `ns` are kept for the record's whole
 * life; those from `ns` to `stopped_us` (the extension) only when the task
 * has any of them (F_EXT: a namespace, progress, a stop time, and every
 * FAILED or CANCELLED task, which may still learn when its worker stopped);
 * the rest serve only while the task is PENDING or PROCESSING. When the task
 * ends, the record is shrunk, at the end of the message that ended it, to
 * RC_TASK_CORE or RC_TASK_KEPT bytes followed by its result bytes
 * (COMPLETE) or its error text (FAILED, CANCELLED) inline: a plain finished
 * task costs one allocation of 120 bytes plus its result. Until then (and
 * for good if there is no memory to shrink it) it is F_FULL: every field is
 * there. Read the extension through the accessors below; nothing may touch
 * an active-only field of a shrunk record. A record never moves or dies
 * while a message is being handled: shrinking and freeing wait for its end
 * (rc_runner_settle). */
typedef struct rc_task {
    uint8_t ref[16];
    uint8_t key[16];
    uint8_t state;
    uint8_t flags;
    uint8_t error_code;  /* refcache.v1.Code */
    uint8_t attempt;     /* <= RC_MAX_RETRIES_CAP + 1 */
    uint8_t max_retries; /* <= RC_MAX_RETRIES_CAP */
    /* The task's own handle (its ref_id as a client holds it): 0 while it
     * shows the task's state; CANCELLED or FAILED once it left work that
     * others still wanted; GONE once it went while others held the record. */
    uint8_t hstate;
    uint8_t jflags; /* the journal's (rc_journal): changed since the store last heard of it */
    uint32_t ttl_s;
    uint32_t result_len; /* results are bounded by the message size limit */
    rc_fn_t *fn;
    uint64_t owner;                               /* keyed hash of the owner's key; 0 without CURVE */
    uint64_t created_us, started_us, finished_us; /* wall clock */
    rc_list_t link;   /* fn->queue while queued; core->unsettled, then core->lru when terminal; core->dead */
    rc_timer_t timer; /* retry back-off (PENDING) or TTL (terminal) */
    /* The extension (F_EXT). */
    char *ns; /* NULL: the default namespace */
    uint64_t progress_done, progress_total;
    uint64_t stopped_us; /* wall clock */
    /* Active only (and F_FULL). */
    rc_peer_t *worker; /* while PROCESSING */
    char *error;       /* the last failure's message (before a retry, or at the end) */
    uint64_t seq;      /* FIFO order across functions */
    uint8_t *spec;     /* the encoded Dispatch */
    size_t spec_len;
    rc_timer_t deadline;
    rc_waiter_t *waiters;
    uint8_t *kept;       /* COMPLETE: the shrunk record to be, its result bytes already in it */
    uint64_t jgroup;     /* --store: the group that first carried its record (rc_journal) */
    uint8_t spec_room[]; /* RC_SPEC_ROOM bytes in an active record */
} rc_task_t;

#define RC_TASK_CORE offsetof(rc_task_t, ns)
#define RC_TASK_KEPT offsetof(rc_task_t, worker)

/* Whether the shrunk record keeps the extension. Every shrunk FAILED or
 * CANCELLED record has it: its worker may still report when it stopped. */
static inline bool rc_task_keeps_ext(const rc_task_t *t)
{
    return t->state != RC_COMPLETE || t->ns || t->progress_done || t->progress_total || t->stopped_us;
}

/* Where a record's inline bytes (result or error text) start. */
static inline const uint8_t *rc_task_inline(const rc_task_t *t)
{
    if (t->flags & F_FULL)
        return t->kept ? t->kept + (rc_task_keeps_ext(t) ? RC_TASK_KEPT : RC_TASK_CORE) : NULL;
    return (const uint8_t *) t + (t->flags & F_EXT ? RC_TASK_KEPT : RC_TASK_CORE);
}

/* The extension's fields, or their defaults when the record has none. */
static inline const char *rc_task_ns(const rc_task_t *t)
{
    return t->flags & F_EXT ? t->ns : NULL;
}

static inline uint64_t rc_task_progress_done(const rc_task_t *t)
{
    return t->flags & F_EXT ? t->progress_done : 0;
}

static inline uint64_t rc_task_progress_total(const rc_task_t *t)
{
    return t->flags & F_EXT ? t->progress_total : 0;
}

static inline uint64_t rc_task_stopped_us(const rc_task_t *t)
{
    return t->flags & F_EXT ? t->stopped_us : 0;
}

/* True while the record has its active fields (not finished, or not shrunk). */
static inline bool rc_task_full(const rc_task_t *t)
{
    return t->state == RC_NEW || t->state == RC_PENDING || t->state == RC_PROCESSING || (t->flags & F_FULL);
}

/* The result bytes of a COMPLETE task, or NULL. */
static inline const uint8_t *rc_task_result(const rc_task_t *t)
{
    return t->state == RC_COMPLETE && t->result_len ? rc_task_inline(t) : NULL;
}

/* The task's error message, or NULL: inline once a FAILED or CANCELLED
 * record is shrunk, else the active field. */
static inline const char *rc_task_error(const rc_task_t *t)
{
    if (t->state == RC_COMPLETE)
        return NULL;
    if ((t->state == RC_FAILED || t->state == RC_CANCELLED) && !(t->flags & F_FULL))
        return (const char *) rc_task_inline(t);
    return t->error;
}

#endif
