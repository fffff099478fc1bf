/* rc_job: the job API of workers/refcache_worker.h — what a job function
 * calls on its worker thread: step boundaries (cancelled, sleep, progress),
 * its result or failure, and its inputs. A step boundary is where the thread
 * sends Started, lets waiting results go, looks for cancel notices and keeps
 * its heartbeat. */
#include "rc_wpoll.h"
#include "rc_wsend.h"
#include "rc_wsession.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Started goes out when the job first reaches a step boundary (a call to
 * the job API), not before it runs: a job that finishes without one, like
 * echo, costs one message less, and its Result tells the broker it ran. */
static void job_started(refcache_job_t *job)
{
    if (!job->started_sent && !job->disowned) {
        job->started_sent = true;
        rc_wsend_started(job->worker, job->dispatch);
    }
}

bool refcache_job_cancelled(refcache_job_t *job)
{
    if (!job || !job->worker)
        return true;
    rc_wthread_t *w = job->worker;
    rc_wsend_check_silence(w); /* before anything is sent: sending resets the silence */
    job_started(job);
    rc_wsend_results_flush_if_due(w);
    rc_wpoll_input(w, 0);
    uint64_t now = rc_mono_us();
    rc_wsend_heartbeat_if_due(w, now);
    rc_wsession_check_stop(w, now);
    return job->cancelled || w->terminating;
}

bool refcache_job_sleep(refcache_job_t *job, int ms)
{
    if (!job || !job->worker)
        return true;
    rc_wthread_t *w = job->worker;
    rc_wsend_check_silence(w);
    job_started(job);
    uint64_t hb_us = (uint64_t) w->pool->heartbeat_ms * 1000;
    uint64_t now = rc_mono_us();
    uint64_t deadline = now + (uint64_t) (ms > 0 ? ms : 0) * 1000;
    while (true) {
        rc_wsend_check_silence(w);
        rc_wsend_heartbeat_if_due(w, now);
        rc_wsession_check_stop(w, now);
        if (job->cancelled || w->terminating)
            return true;
        if (now >= deadline)
            return false;
        uint64_t until = deadline;
        if (w->last_sent_us + hb_us < until)
            until = w->last_sent_us + hb_us;
        if (w->leaving && w->stop_at_us < until)
            until = w->stop_at_us;
        rc_wpoll_input(w, until > now ? (long) ((until - now + 999) / 1000) : 0);
        now = rc_mono_us();
    }
}

void refcache_job_progress(refcache_job_t *job, uint64_t done, uint64_t total)
{
    if (!job || !job->worker || job->disowned)
        return;
    rc_wsend_check_silence(job->worker);
    job_started(job);
    uint64_t now = rc_mono_us();
    if (done != total && now - job->last_progress_us < PROGRESS_MIN_INTERVAL_US) {
        rc_wsend_heartbeat_if_due(job->worker, now);
        return;
    }
    job->last_progress_us = now;
    Refcache__V1__Progress p = REFCACHE__V1__PROGRESS__INIT;
    p.ref_id = job->dispatch->ref_id;
    p.attempt = job->dispatch->attempt;
    p.done = done;
    p.total = total;
    worker_msg_t wm = REFCACHE__V1__WORKER_MESSAGE__INIT;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_PROGRESS;
    wm.progress = &p;
    rc_wsend_work(job->worker, &wm);
}

int refcache_job_result(refcache_job_t *job, const void *bytes, size_t len)
{
    if (!job || !job->worker || job->has_result || job->has_failure || (!bytes && len))
        return -1;
    rc_wthread_t *w = job->worker;
    const uint8_t *payload = job->dispatch->payload.data;
    size_t plen = job->dispatch->payload.len;
    if (len == 0 || (payload && (const uint8_t *) bytes >= payload && len <= plen &&
                     (size_t) ((const uint8_t *) bytes - payload) <= plen - len)) {
        /* The payload lives as long as the job: no copy needed (echo). */
        job->result = bytes;
    } else {
        if (len > w->result_cap) {
            uint8_t *buf = realloc(w->result_buf, len);
            if (!buf)
                return refcache_job_fail(job, REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED, true,
                                         "out of memory for a %zu-byte result", len);
            w->result_buf = buf;
            w->result_cap = len;
        }
        memcpy(w->result_buf, bytes, len);
        job->result = w->result_buf;
    }
    job->result_len = len;
    job->has_result = true;
    return 0;
}

int refcache_job_result_take(refcache_job_t *job, void **bytes_p, size_t len)
{
    if (!bytes_p)
        return -1;
    void *bytes = *bytes_p;
    *bytes_p = NULL;
    if (!job || !job->worker || job->has_result || job->has_failure || (!bytes && len)) {
        free(bytes);
        return -1;
    }
    job->owned = bytes;
    job->result = bytes;
    job->result_len = len;
    job->has_result = true;
    return 0;
}

int refcache_job_fail(refcache_job_t *job, int code, bool retryable, const char *fmt, ...)
{
    if (!job || !job->worker || job->has_result || job->has_failure)
        return -1;
    rc_wthread_t *w = job->worker;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->fail_msg, sizeof w->fail_msg, fmt, ap);
        va_end(ap);
    } else {
        w->fail_msg[0] = '\0';
    }
    /* OK is not a failure; keep the broker's view consistent. */
    job->fail_code = code > 0 ? code : REFCACHE__V1__CODE__CODE_UNKNOWN;
    job->retryable = retryable;
    job->has_failure = true;
    return 0;
}

const char *refcache_job_param(refcache_job_t *job, const char *key)
{
    if (!job || !job->dispatch || !key)
        return NULL;
    const Refcache__V1__Dispatch *d = job->dispatch;
    for (size_t i = 0; i < d->n_params; i++)
        if (d->params[i]->key && strcmp(d->params[i]->key, key) == 0)
            return d->params[i]->value;
    return NULL;
}

const void *refcache_job_payload(refcache_job_t *job, size_t *len)
{
    if (!job || !job->dispatch) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = job->dispatch->payload.len;
    return job->dispatch->payload.data;
}

const char *refcache_job_ref_id(refcache_job_t *job)
{
    return job && job->dispatch ? job->dispatch->ref_id : "";
}

uint32_t refcache_job_attempt(refcache_job_t *job)
{
    return job && job->dispatch ? job->dispatch->attempt : 0;
}
