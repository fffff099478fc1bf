/* rc_json_info: Stats and worker records as JSON (see rc_json_info.h). */
#include "rc_json_info.h"

/* clang-format off */
#define FIELD(f) {#f, offsetof(refcache_stats_t, f)}
const rc_stats_field_t rc_stats_fields[] = {
    FIELD(tasks_pending),
    FIELD(tasks_processing),
    FIELD(tasks_complete),
    FIELD(tasks_failed),
    FIELD(tasks_cancelled),
    FIELD(queue_depth),
    FIELD(workers),
    FIELD(workers_busy),
    FIELD(cache_bytes),
    FIELD(cache_entries),
    FIELD(submitted_total),
    FIELD(completed_total),
    FIELD(failed_total),
    FIELD(cancelled_total),
    FIELD(cache_hits_total),
    FIELD(dedup_total),
    FIELD(expired_total),
    FIELD(evicted_total),
    FIELD(retries_total),
    FIELD(workers_lost_total),
    FIELD(bad_requests_total),
    FIELD(bad_worker_msgs_total),
    FIELD(stale_msgs_total),
    FIELD(dropped_replies_total),
    FIELD(waiters),
    FIELD(rss_bytes),
    FIELD(uptime_ms),
    FIELD(requests_total),
    FIELD(resource_exhausted_total),
    FIELD(deadline_exceeded_total),
    FIELD(reannounces_total),
    FIELD(handed_back_total),
    FIELD(store_records),
    FIELD(store_file_bytes),
    FIELD(store_records_written_total),
    FIELD(store_commits_total),
    FIELD(store_queued_bytes),
    FIELD(store_max_commit_us),
};
/* clang-format on */
#undef FIELD
const size_t rc_stats_field_count = sizeof rc_stats_fields / sizeof rc_stats_fields[0];

void rc_json_stats(rc_json_t *j, const refcache_stats_t *s)
{
    for (size_t i = 0; i < rc_stats_field_count; i++)
        rc_json_uint(j, rc_stats_fields[i].name, rc_stats_value(s, &rc_stats_fields[i]));
    rc_json_bool(j, "draining", s->draining);
    rc_json_str(j, "store_path", s->store_path);
    rc_json_str(j, "store_error", s->store_error);
    rc_json_str(j, "version", s->version);
}

void rc_json_worker(rc_json_t *j, const refcache_worker_info_t *x)
{
    rc_json_element(j);
    rc_json_str(j, "worker_id", x->worker_id);
    rc_json_str(j, "host", x->host);
    rc_json_uint(j, "pid", x->pid);
    rc_json_bool(j, "ready", x->ready);
    rc_json_uint(j, "credit", x->credit);
    rc_json_uint(j, "tasks_held", x->tasks_held);
    rc_json_uint(j, "tasks_ended", x->tasks_ended);
    rc_json_uint(j, "joined_at_us", x->joined_at_us);
    rc_json_uint(j, "last_heard_at_us", x->last_heard_at_us);
    rc_json_array(j, "functions");
    for (size_t f = 0; f < x->function_count; f++)
        rc_json_element_str(j, x->functions[f]);
    rc_json_end(j);
    rc_json_end(j);
}
