/* rc_wsession: a worker thread's session with the broker. A session is
 * what the broker and the thread agree the thread holds; it ends whenever
 * the thread forgets what it held (a Reannounce, a reconnection after
 * silence) and the next begins with a new random number. The thread keeps
 * the last credit + 1 tasks it started in the session; when it ends they
 * become its report, which the next session's Ready carries with the old
 * session's number and routing id: the broker gives the old session's
 * other tasks back to its queue without counting an attempt. A burst of
 * Reannounces (one per message the thread queued while cut off) is answered
 * with one Ready; the HandBack messages say goodbye (the thread stops) and
 * answer a stopping broker (held tasks go back, none starts). */
#ifndef RC_WSESSION_H
#define RC_WSESSION_H

#include "rc_wthread.h"

/* Allocates the thread's start ring and report (credit + 1 entries each)
 * and picks its first session. 0 or -1. */
int rc_wsession_init(rc_wthread_t *w);

/* Frees what rc_wsession_init allocated. */
void rc_wsession_free(rc_wthread_t *w);

/* The job of d begins: remembered for the session's report. */
static inline void rc_wsession_started(rc_wthread_t *w, const Refcache__V1__Dispatch *d)
{
    size_t cap = (size_t) w->pool->credit + 1;
    rc_wtaskref_t *e = &w->starts[w->starts_head];
    size_t n = strnlen(d->ref_id, sizeof e->ref_id);
    if (n == sizeof e->ref_id)
        return; /* not a ref_id this broker hands out */
    memcpy(e->ref_id, d->ref_id, n + 1);
    e->attempt = d->attempt;
    w->starts_head = w->starts_head + 1 == cap ? 0 : w->starts_head + 1;
    if (w->starts_n < cap)
        w->starts_n++;
}

/* Ends the session (the thread has dropped what it held): its starts become
 * the report of the next one, which begins; old_id is the routing id the
 * session used. */
void rc_wsession_end(rc_wthread_t *w, const char *old_id);

/* A Reannounce came: the broker does not know this thread. Answered with
 * one Ready per burst: while the last Ready is unconfirmed (nothing else
 * came from the broker since), one only if a heartbeat interval has passed,
 * of the same session (the thread holds nothing new); else the session
 * ends (held tasks dropped, the running job disowned) and a new one is
 * announced. */
void rc_wsession_reannounce(rc_wthread_t *w);

/* The session's part of a Ready: its number, and the report of the one
 * before (pointing into the thread's buffers). */
void rc_wsession_fill_ready(rc_wthread_t *w, Refcache__V1__Ready *ready);

/* Gives every held task back to the broker in one HandBack (leaving: the
 * goodbye of a stopping thread). 0, or -1 if the message could not go. */
int rc_wsession_hand_back(rc_wthread_t *w, bool leaving);

/* The thread is asked to stop: it says goodbye (held tasks back) and lets
 * its running job go on for the pool's drain time. */
void rc_wsession_leave(rc_wthread_t *w);

/* A leaving thread whose drain time is over stops its job. */
static inline void rc_wsession_check_stop(rc_wthread_t *w, uint64_t now)
{
    if (w->leaving && now >= w->stop_at_us)
        w->terminating = true;
}

#endif
