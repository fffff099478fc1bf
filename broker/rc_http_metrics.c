/* rc_http_metrics: the broker's state in the Prometheus text format (see
 * rc_http_metrics.h), read from it as a client would: Stats, Metrics and
 * Workers. */
#include "rc_http_metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Appends printf output to out; -1 on out of memory. */
static int put(rc_buf_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int put(rc_buf_t *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || rc_buf_reserve(out, out->len + (size_t) n + 1) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf((char *) out->data + out->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    out->len += (size_t) n;
    return 0;
}

/* A label value, escaped as the format wants (backslash, quote, newline). */
static void label(char *buf, size_t len, const char *s)
{
    size_t n = 0;
    for (; s && *s && n + 3 < len; s++) {
        if (*s == '\\' || *s == '"') {
            buf[n++] = '\\';
            buf[n++] = *s;
        } else if (*s == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
        } else {
            buf[n++] = *s;
        }
    }
    buf[n] = '\0';
}

static int head(rc_buf_t *out, const char *name, const char *type, const char *help)
{
    return put(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int one(rc_buf_t *out, const char *name, const char *type, const char *help, uint64_t v)
{
    return head(out, name, type, help) || put(out, "%s %" PRIu64 "\n", name, v);
}

/* Stats: every counter and gauge it has. */
static int stats_text(rc_buf_t *out, const refcache_stats_t *s)
{
    static const char *const states[] = {"pending", "processing", "complete", "failed", "cancelled"};
    const uint64_t by_state[] = {s->tasks_pending, s->tasks_processing, s->tasks_complete, s->tasks_failed,
                                 s->tasks_cancelled};
    if (head(out, "refcache_tasks", "gauge",
             "Task records now, by state (a finished one is kept until its TTL)."))
        return -1;
    for (int i = 0; i < 5; i++)
        if (put(out, "refcache_tasks{state=\"%s\"} %" PRIu64 "\n", states[i], by_state[i]))
            return -1;
    const struct {
        const char *name, *type, *help;
        uint64_t v;
    } f[] = {
        {"refcache_queue_depth", "gauge", "PENDING tasks waiting in a queue for a worker.", s->queue_depth},
        {"refcache_workers", "gauge", "Worker threads that can take tasks (seen on both channels).",
         s->workers},
        {"refcache_workers_busy", "gauge", "Worker threads holding at least one task.", s->workers_busy},
        {"refcache_cache_bytes", "gauge", "Result bytes held.", s->cache_bytes},
        {"refcache_cache_entries", "gauge", "Results shareable through the cache.", s->cache_entries},
        {"refcache_waiters", "gauge", "Held Submit and Wait replies.", s->waiters},
        {"refcache_resident_memory_bytes", "gauge", "The broker's resident memory.", s->rss_bytes},
        {"refcache_submitted_total", "counter", "Tasks accepted.", s->submitted_total},
        {"refcache_completed_total", "counter", "Tasks that ended COMPLETE.", s->completed_total},
        {"refcache_failed_total", "counter", "Tasks that ended FAILED.", s->failed_total},
        {"refcache_cancelled_total", "counter", "Tasks that ended CANCELLED.", s->cancelled_total},
        {"refcache_cache_hits_total", "counter", "Submits answered from a kept result.", s->cache_hits_total},
        {"refcache_dedup_total", "counter", "Submits that joined identical work in flight.", s->dedup_total},
        {"refcache_expired_total", "counter", "Records dropped by their TTL.", s->expired_total},
        {"refcache_evicted_total", "counter", "Records dropped by the record or byte cap.", s->evicted_total},
        {"refcache_retries_total", "counter", "Attempts retried (a retryable failure or a lost worker).",
         s->retries_total},
        {"refcache_workers_lost_total", "counter", "Workers declared lost.", s->workers_lost_total},
        {"refcache_bad_requests_total", "counter", "Client frames that were not a valid request.",
         s->bad_requests_total},
        {"refcache_bad_worker_msgs_total", "counter", "Worker frames that were not a valid message.",
         s->bad_worker_msgs_total},
        {"refcache_stale_msgs_total", "counter", "Worker messages for a task or attempt no longer theirs.",
         s->stale_msgs_total},
        {"refcache_dropped_replies_total", "counter", "Replies to clients that were gone or full.",
         s->dropped_replies_total},
        {"refcache_requests_total", "counter", "Client requests handled.", s->requests_total},
        {"refcache_resource_exhausted_total", "counter", "Requests refused for a limit.",
         s->resource_exhausted_total},
        {"refcache_deadline_exceeded_total", "counter", "Tasks failed by their deadline.",
         s->deadline_exceeded_total},
        {"refcache_reannounces_total", "counter", "Reannounces sent to workers the broker did not know.",
         s->reannounces_total},
        {"refcache_handed_back_total", "counter",
         "Tasks given back by workers that never started them (no attempt counted).", s->handed_back_total},
        {"refcache_draining", "gauge", "1 while the broker is stopping (Submits refused).", s->draining},
        {"refcache_store_records", "gauge", "Keys with a value in the durable store (0: memory only).",
         s->store_records},
        {"refcache_store_file_bytes", "gauge", "The store's database file and its WAL.", s->store_file_bytes},
        {"refcache_store_queued_bytes", "gauge", "Bytes handed to the store's writer, not yet committed.",
         s->store_queued_bytes},
        {"refcache_store_records_written_total", "counter", "Records the store committed.",
         s->store_records_written_total},
        {"refcache_store_commits_total", "counter", "Group commits of the store.", s->store_commits_total},
        {"refcache_store_write_failing", "gauge", "1 while the store cannot write (Submits refused).",
         *s->store_error != '\0'},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (one(out, f[i].name, f[i].type, f[i].help, f[i].v))
            return -1;
    char version[128];
    label(version, sizeof version, s->version);
    return head(out, "refcache_uptime_seconds", "gauge", "Seconds since the broker started.") ||
           put(out, "refcache_uptime_seconds %.3f\n", (double) s->uptime_ms / 1000.0) ||
           head(out, "refcache_store_max_commit_seconds", "gauge", "The store's longest commit so far.") ||
           put(out, "refcache_store_max_commit_seconds %.6f\n", (double) s->store_max_commit_us / 1e6) ||
           head(out, "refcache_build_info", "gauge", "The broker's version, as a label.") ||
           put(out, "refcache_build_info{version=\"%s\"} 1\n", version);
}

/* One histogram of each function, in seconds (the buckets cumulative). */
static int hist_text(rc_buf_t *out, const refcache_metrics_t *m, int which, const char *name,
                     const char *help)
{
    if (head(out, name, "histogram", help))
        return -1;
    for (size_t i = 0; i < m->function_count; i++) {
        const refcache_function_metrics_t *f = &m->functions[i];
        const refcache_histogram_t *h = which == 0   ? &f->queue_time
                                        : which == 1 ? &f->run_time
                                                     : &f->cancel_stop_time;
        char fn[300];
        label(fn, sizeof fn, f->function);
        uint64_t cumulative = 0;
        for (size_t b = 0; b < h->count_n; b++) {
            cumulative += h->counts[b];
            int rc = b < m->bound_count ? put(out, "%s_bucket{function=\"%s\",le=\"%g\"} %" PRIu64 "\n", name,
                                              fn, (double) m->bounds_us[b] / 1e6, cumulative)
                                        : put(out, "%s_bucket{function=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
                                              name, fn, cumulative);
            if (rc)
                return -1;
        }
        if (put(out, "%s_sum{function=\"%s\"} %.6f\n%s_count{function=\"%s\"} %" PRIu64 "\n", name, fn,
                (double) h->sum_us / 1e6, name, fn, h->count))
            return -1;
    }
    return 0;
}

static int functions_text(rc_buf_t *out, const refcache_metrics_t *m)
{
    if (head(out, "refcache_function_queued", "gauge", "PENDING tasks in a function's queue now."))
        return -1;
    for (size_t i = 0; i < m->function_count; i++) {
        char fn[300];
        label(fn, sizeof fn, m->functions[i].function);
        if (put(out, "refcache_function_queued{function=\"%s\"} %" PRIu64 "\n", fn, m->functions[i].queued))
            return -1;
    }
    return hist_text(out, m, 0, "refcache_task_queue_seconds",
                     "Time from acceptance until the task's first run began (queued in the broker and the "
                     "worker).") ||
           hist_text(
               out, m, 1, "refcache_task_run_seconds",
               "Time from a run's start (the worker's Started, or its Result) to its Result or Failure.") ||
           hist_text(out, m, 2, "refcache_task_cancel_stop_seconds",
                     "Time from the cancel (or deadline) of a running task to the worker's confirmed stop.");
}

static int workers_text(rc_buf_t *out, const refcache_worker_list_t *w)
{
    if (head(out, "refcache_worker_tasks_held", "gauge", "Tasks a worker thread holds now, of its credit."))
        return -1;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && head(out, "refcache_worker_tasks_ended_total", "counter",
                              "Results, failures and stops a worker thread sent."))
            return -1;
        for (size_t i = 0; i < w->count; i++) {
            char id[600], host[150];
            label(id, sizeof id, w->workers[i].worker_id);
            label(host, sizeof host, w->workers[i].host);
            if (put(out, "%s{worker_id=\"%s\",host=\"%s\"} %" PRIu64 "\n",
                    pass ? "refcache_worker_tasks_ended_total" : "refcache_worker_tasks_held", id, host,
                    pass ? w->workers[i].tasks_ended : w->workers[i].tasks_held))
                return -1;
        }
    }
    return 0;
}

int rc_http_metrics_text(refcache_client_t *client, int timeout_ms, rc_buf_t *out)
{
    refcache_stats_t s;
    refcache_metrics_t *m = NULL;
    refcache_worker_list_t *w = NULL;
    int rc = refcache_client_stats(client, &s, timeout_ms);
    if (rc == 0)
        rc = refcache_client_metrics(client, &m, timeout_ms);
    if (rc == 0)
        rc = refcache_client_workers(client, &w, timeout_ms);
    if (rc == 0 && (stats_text(out, &s) || functions_text(out, m) || workers_text(out, w)))
        rc = REFCACHE_ENOMEM;
    refcache_metrics_destroy(&m);
    refcache_worker_list_destroy(&w);
    return rc;
}
