/* rc_cli_observe: the CLI's commands for seeing inside the broker —
 * `refcache list`, `refcache workers` and `refcache events` (see
 * rc_cli_observe.h). */
#include "rc_cli_observe.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rc_common.h"
#include "rc_json_info.h"

/* "3.2s", "14m", "2h", "5d": how long ago a wall-clock time was. */
static const char *s_age(uint64_t now_us, uint64_t at_us, char *buf, size_t len)
{
    if (!at_us) {
        snprintf(buf, len, "-");
        return buf;
    }
    double s = at_us > now_us ? 0 : (double) (now_us - at_us) / 1e6;
    if (s < 60)
        snprintf(buf, len, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, len, "%.0fm", s / 60);
    else if (s < 86400)
        snprintf(buf, len, "%.1fh", s / 3600);
    else
        snprintf(buf, len, "%.1fd", s / 86400);
    return buf;
}

static const char *s_state(int state)
{
    return state ? rc_state_name(state) : "-";
}

/* ------------------------------------------------------------ list */

static void s_list_header(void)
{
    printf("%-32s  %-10s  %-14s  %-10s  %7s  %7s  %s\n", "REF_ID", "STATE", "FUNCTION", "NAMESPACE", "AGE",
           "ATTEMPT", "PROGRESS");
}

static void s_list_row(const refcache_task_view_t *t, uint64_t now)
{
    char age[16], progress[48] = "-";
    if (t->progress_total)
        snprintf(progress, sizeof progress, "%" PRIu64 "/%" PRIu64, t->progress_done, t->progress_total);
    printf("%-32s  %-10s  %-14s  %-10s  %7s  %7" PRIu32 "  %s\n", t->ref_id, s_state(t->state), t->function,
           *t->namespace_name ? t->namespace_name : "-", s_age(now, t->created_at_us, age, sizeof age),
           t->attempt, progress);
}

int rc_cli_observe_list(rc_cli_t *cli)
{
    const rc_cli_args_t *a = cli->args;
    uint64_t want = a->limit ? a->limit : 100, now = rc_wall_us();
    refcache_list_options_t o;
    refcache_list_options_init(&o);
    o.states = a->states;
    o.function = a->function;
    o.all_namespaces = a->all_namespaces;
    if (a->newer_than_s)
        o.created_after_us = now - a->newer_than_s * 1000000;
    if (a->older_than_s)
        o.created_before_us = now - a->older_than_s * 1000000;
    char cursor[64];
    snprintf(cursor, sizeof cursor, "%s", a->cursor ? a->cursor : "");
    rc_json_t *json = NULL;
    uint64_t shown = 0;
    int rc = 0;
    bool header = false;
    /* Pages until enough tasks are shown or none is left: a page may be
     * short (the broker bounds its work per call) and still have a cursor. */
    for (;;) {
        o.cursor = cursor;
        o.limit = (uint32_t) (want - shown > 1000 ? 1000 : want - shown);
        refcache_task_list_t *page = NULL;
        rc = refcache_client_list(cli->client, &o, &page, a->timeout_ms);
        if (rc != 0)
            break;
        if (a->json && !json) {
            json = rc_cli_json_start(cli, rc);
            if (json)
                rc_json_array(json, "tasks");
        }
        for (size_t i = 0; i < page->count; i++) {
            if (json) {
                rc_json_element(json);
                rc_cli_json_task(json, &page->tasks[i]);
                rc_json_end(json);
            } else if (!a->json) {
                if (!header)
                    s_list_header();
                header = true;
                s_list_row(&page->tasks[i], now);
            }
        }
        shown += page->count;
        snprintf(cursor, sizeof cursor, "%s", page->next_cursor);
        refcache_task_list_destroy(&page);
        if (!*cursor || shown >= want || zsys_interrupted)
            break;
    }
    if (rc != 0) {
        rc_json_destroy(&json);
        if (a->json) {
            json = rc_cli_json_start(cli, rc);
            rc_cli_json_emit(json);
            rc_json_destroy(&json);
        }
        return rc_cli_report(cli, rc);
    }
    if (a->json) {
        if (!json)
            json = rc_cli_json_start(cli, rc);
        else
            rc_json_end(json);
        if (json) {
            rc_json_uint(json, "count", shown);
            rc_json_str(json, "next_cursor", cursor);
        }
        rc_cli_json_emit(json);
        rc_json_destroy(&json);
    } else if (*cursor) {
        printf("(%" PRIu64 " shown; more with: refcache list --cursor %s)\n", shown, cursor);
    } else if (!shown) {
        printf("(no tasks)\n");
    }
    return RC_EXIT_OK;
}

/* ------------------------------------------------------------ workers */

int rc_cli_observe_workers(rc_cli_t *cli)
{
    refcache_worker_list_t *w = NULL;
    int rc = refcache_client_workers(cli->client, &w, cli->args->timeout_ms);
    uint64_t now = rc_wall_us();
    if (rc >= 0 && cli->args->json) {
        rc_json_t *json = rc_cli_json_start(cli, rc);
        if (json && w) {
            rc_json_array(json, "workers");
            for (size_t i = 0; i < w->count; i++)
                rc_json_worker(json, &w->workers[i]);
            rc_json_end(json);
        }
        rc_cli_json_emit(json);
        rc_json_destroy(&json);
    } else if (rc == 0) {
        printf("%-28s  %-16s  %7s  %5s  %9s  %9s  %8s  %9s  %s\n", "WORKER_ID", "HOST", "PID", "READY",
               "HELD", "ENDED", "UP", "HEARD", "FUNCTIONS");
        for (size_t i = 0; i < w->count; i++) {
            const refcache_worker_info_t *x = &w->workers[i];
            char held[24], up[16], heard[24], fns[256] = "";
            snprintf(held, sizeof held, "%" PRIu32 "/%" PRIu32, x->tasks_held, x->credit);
            s_age(now, x->last_heard_at_us, heard, sizeof heard);
            strncat(heard, " ago", sizeof heard - strlen(heard) - 1);
            for (size_t f = 0; f < x->function_count; f++) {
                if (f)
                    strncat(fns, ",", sizeof fns - strlen(fns) - 1);
                strncat(fns, x->functions[f], sizeof fns - strlen(fns) - 1);
            }
            printf("%-28s  %-16s  %7" PRIu32 "  %5s  %9s  %9" PRIu64 "  %8s  %9s  %s\n", x->worker_id,
                   *x->host ? x->host : "-", x->pid, x->ready ? "yes" : "no", held, x->tasks_ended,
                   s_age(now, x->joined_at_us, up, sizeof up), heard, fns);
        }
        if (!w->count)
            printf("(no workers)\n");
    }
    refcache_worker_list_destroy(&w);
    return rc_cli_report(cli, rc);
}

/* ------------------------------------------------------------ events */

static const char *const kind_names[] = {"transition", "watching", "lost", "heartbeat", "end"};

static const char *s_kind(int kind)
{
    return kind >= 0 && kind <= 4 ? kind_names[kind] : "?";
}

static void s_event_json(const refcache_event_t *e)
{
    rc_json_t *json = rc_json_new();
    if (!json)
        return;
    rc_json_str(json, "kind", s_kind(e->kind));
    rc_json_uint(json, "at_us", e->at_us);
    if (e->kind == REFCACHE_EVENT_TRANSITION) {
        rc_json_str(json, "ref_id", e->ref_id);
        rc_json_str(json, "event", e->event);
        rc_json_str(json, "function", e->function);
        rc_json_str(json, "namespace", e->namespace_name);
        rc_json_str(json, "old_state", e->old_state ? rc_state_name(e->old_state) : "");
        rc_json_str(json, "new_state", e->new_state ? rc_state_name(e->new_state) : "");
        rc_json_uint(json, "attempt", e->attempt);
        rc_json_str(json, "worker_id", e->worker_id);
        rc_json_str(json, "client", e->client);
        if (e->code)
            rc_json_str(json, "code", rc_code_name(e->code));
        rc_json_bool(json, "stop_confirmed", e->stop_confirmed);
        if (e->progress_total) {
            rc_json_uint(json, "progress_done", e->progress_done);
            rc_json_uint(json, "progress_total", e->progress_total);
        }
    } else if (e->kind == REFCACHE_EVENT_LOST) {
        rc_json_uint(json, "lost", e->lost);
    } else if (e->kind == REFCACHE_EVENT_END) {
        rc_json_str(json, "code", rc_code_name(e->code));
    }
    rc_cli_json_emit(json);
    rc_json_destroy(&json);
}

static void s_event_human(const refcache_event_t *e)
{
    char ts[40];
    time_t sec = (time_t) (e->at_us / 1000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%06" PRIu64, e->at_us % 1000000);
    if (e->kind == REFCACHE_EVENT_LOST) {
        printf("%s  -- %" PRIu64 " event(s) lost: this watcher was too slow\n", ts, e->lost);
        return;
    }
    if (e->kind == REFCACHE_EVENT_END) {
        printf("%s  -- the watch ended (%s)\n", ts, rc_code_name(e->code));
        return;
    }
    if (e->kind != REFCACHE_EVENT_TRANSITION)
        return;
    printf("%s  %s  %-10s  %-13s %-10s -> %-10s", ts, e->ref_id, e->function, e->event,
           e->old_state ? rc_state_name(e->old_state) : "NEW",
           e->new_state ? rc_state_name(e->new_state) : "GONE");
    if (e->attempt)
        printf("  attempt %" PRIu32, e->attempt);
    if (*e->worker_id)
        printf("  worker %s", e->worker_id);
    if (*e->client)
        printf("  by %s", e->client);
    if (e->code)
        printf("  %s", rc_code_name(e->code));
    if (e->progress_total)
        printf("  progress %" PRIu64 "/%" PRIu64, e->progress_done, e->progress_total);
    if (e->stop_confirmed)
        printf("  stop confirmed");
    putchar('\n');
}

int rc_cli_observe_events(rc_cli_t *cli)
{
    const rc_cli_args_t *a = cli->args;
    refcache_watch_options_t o = {
        .ref_id = a->ref, .function = a->function, .all_namespaces = a->all_namespaces};
    int rc = refcache_client_watch(cli->client, &o, a->timeout_ms);
    if (rc != 0) {
        if (a->json) {
            rc_json_t *json = rc_cli_json_start(cli, rc);
            rc_cli_json_emit(json);
            rc_json_destroy(&json);
        }
        return rc_cli_report(cli, rc);
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* each event as it comes, also into a pipe */
    fprintf(stderr, "refcache: watching (Ctrl-C to stop)\n");
    uint64_t seen = 0;
    for (;;) {
        refcache_event_t e;
        rc = refcache_client_watch_next(cli->client, &e, 1000);
        if (rc == REFCACHE_ETIMEOUT && !zsys_interrupted)
            continue;
        if (rc == REFCACHE_EINTR || zsys_interrupted) {
            rc = 0;
            break;
        }
        if (rc != 0)
            return rc_cli_report(cli, rc);
        if (e.kind == REFCACHE_EVENT_HEARTBEAT)
            continue;
        if (a->json)
            s_event_json(&e);
        else
            s_event_human(&e);
        if (e.kind == REFCACHE_EVENT_END)
            return e.code ? rc_cli_exit_status(e.code) : RC_EXIT_OK;
        if (e.kind == REFCACHE_EVENT_TRANSITION && a->count && ++seen >= a->count)
            break;
    }
    /* Ending it here rather than leaving the broker to find out. */
    zsys_interrupted = 0;
    (void) refcache_client_unwatch(cli->client, a->timeout_ms);
    return RC_EXIT_OK;
}
