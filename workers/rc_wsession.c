/* rc_wsession: a worker thread's session with the broker, its report, the
 * answer to a burst of Reannounces, and the HandBack messages (see
 * rc_wsession.h). */
#include "rc_wsession.h"
#include "rc_log.h"
#include "rc_wrecv.h"
#include "rc_wsend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t new_session(void)
{
    uint64_t s = 0;
    if (rc_random_bytes(&s, sizeof s) != 0)
        s = rc_mono_us() ^ ((uint64_t) (uintptr_t) &s << 16);
    return s ? s : 1;
}

int rc_wsession_init(rc_wthread_t *w)
{
    size_t cap = (size_t) w->pool->credit + 1;
    w->starts = calloc(cap, sizeof *w->starts);
    w->report = calloc(cap, sizeof *w->report);
    w->report_pb = calloc(cap, sizeof *w->report_pb);
    w->report_ptrs = calloc(cap, sizeof *w->report_ptrs);
    w->session = new_session();
    return w->starts && w->report && w->report_pb && w->report_ptrs ? 0 : -1;
}

void rc_wsession_free(rc_wthread_t *w)
{
    free(w->starts);
    free(w->report);
    free(w->report_pb);
    free(w->report_ptrs);
    w->starts = w->report = NULL;
    w->report_pb = NULL;
    w->report_ptrs = NULL;
}

void rc_wsession_end(rc_wthread_t *w, const char *old_id)
{
    size_t cap = (size_t) w->pool->credit + 1;
    /* Oldest first: the order the tasks started in. */
    for (size_t i = 0; i < w->starts_n; i++)
        w->report[i] = w->starts[(w->starts_head + cap - w->starts_n + i) % cap];
    w->report_n = w->starts_n;
    w->starts_n = w->starts_head = 0;
    w->prev_session = w->session;
    snprintf(w->prev_id, sizeof w->prev_id, "%s", old_id);
    w->session = new_session();
    w->broker_stopping = false;
}

void rc_wsession_fill_ready(rc_wthread_t *w, Refcache__V1__Ready *ready)
{
    ready->session = w->session;
    if (!w->prev_session)
        return;
    ready->previous_session = w->prev_session;
    ready->previous_worker_id = w->prev_id;
    for (size_t i = 0; i < w->report_n; i++) {
        refcache__v1__task_ref__init(&w->report_pb[i]);
        w->report_pb[i].ref_id = w->report[i].ref_id;
        w->report_pb[i].attempt = w->report[i].attempt;
        w->report_ptrs[i] = &w->report_pb[i];
    }
    ready->n_previous_started = w->report_n;
    ready->previous_started = w->report_ptrs;
}

void rc_wsession_reannounce(rc_wthread_t *w)
{
    if (w->leaving)
        return; /* it is going: nothing to announce */
    uint64_t now = rc_mono_us();
    if (w->unconfirmed) {
        /* An answer to a message sent before the last Ready (the broker
         * answers each message of a stranger until it has taken the Ready),
         * or that Ready was lost: once per interval, the same session (it
         * holds nothing: a dispatch would have confirmed it). */
        if (now - w->announced_us >= (uint64_t) w->pool->heartbeat_ms * 1000)
            rc_wsend_announce(w);
        return;
    }
    /* The broker forgot us: it has settled what we hold (or will, from the
     * report), so stop the running job, say nothing of it, and begin anew. */
    rc_log(RC_LOG_INFO, "connection",
           "thread %d: the broker does not know it (it restarted, or found it silent): %u held task(s) "
           "dropped, announcing a new session",
           w->index, (unsigned) w->held_count);
    rc_wrecv_held_drop_all(w);
    if (w->job)
        w->job->cancelled = w->job->disowned = true;
    w->results_n = 0; /* for the old session: stale now */
    rc_wsession_end(w, w->id);
    rc_wsend_announce(w);
}

int rc_wsession_hand_back(rc_wthread_t *w, bool leaving)
{
    size_t n = w->held_count;
    Refcache__V1__TaskRef *refs = n ? calloc(n, sizeof *refs) : NULL;
    Refcache__V1__TaskRef **ptrs = n ? calloc(n, sizeof *ptrs) : NULL;
    held_t *keep = n ? calloc(n, sizeof *keep) : NULL;
    if (n && (!refs || !ptrs || !keep)) {
        /* Without memory for the message the tasks stay held: a stopping
         * broker or a goodbye then finds them lost, not handed back. */
        free(refs);
        free(ptrs);
        free(keep);
        return -1;
    }
    for (size_t i = 0; i < n && rc_wrecv_held_pop(w, &keep[i]); i++) {
        refcache__v1__task_ref__init(&refs[i]);
        refs[i].ref_id = (char *) keep[i].d->ref_id;
        refs[i].attempt = keep[i].d->attempt;
        ptrs[i] = &refs[i];
    }
    Refcache__V1__HandBack hb = REFCACHE__V1__HAND_BACK__INIT;
    hb.n_tasks = n;
    hb.tasks = ptrs;
    hb.leaving = leaving;
    worker_msg_t wm = REFCACHE__V1__WORKER_MESSAGE__INIT;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_HAND_BACK;
    wm.hand_back = &hb;
    int rc = w->work_h ? rc_wsend_work(w, &wm) : -1;
    for (size_t i = 0; i < n; i++)
        rc_wrecv_msg_free(w, keep[i].msg);
    free(refs);
    free(ptrs);
    free(keep);
    return rc;
}

void rc_wsession_leave(rc_wthread_t *w)
{
    if (w->leaving)
        return;
    w->leaving = true;
    w->stop_at_us = rc_mono_us() + (uint64_t) w->pool->drain_ms * 1000;
    rc_wsession_hand_back(w, true);
    if (!w->pool->drain_ms)
        w->terminating = true;
}
