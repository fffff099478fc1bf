/* rc_observe: the observer of every transition and the List, Workers, Watch
 * and Metrics requests (see rc_observe.h). */
#include "rc_observe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_common.h"
#include "rc_core.h"
#include "rc_listidx.h"
#include "rc_log.h"
#include "rc_metrics.h"
#include "rc_watch.h"

#define CODE(name) REFCACHE__V1__CODE__CODE_##name

/* A CURVE key allowed on the clients channel, by the owner id it gives. */
typedef struct {
    uint64_t owner;
    const char *name; /* its certificate file's name (owned by the key set) */
    bool admin;
} owner_t;

struct rc_observe {
    rc_listidx_t *list;
    rc_metrics_t *metrics;
    rc_watch_t watch;
    bool watched; /* on_note_watched is registered */
    uint64_t limits_checked_ns;
    rc_counters_t limits_seen; /* the counters at the last look (limits_log) */
    owner_t *owners;           /* sorted by owner; built at the first need (the keys come after init) */
    size_t n_owners;
    bool owners_built;
};

/* ---------------------------------------------------------------- owners */

static int owner_cmp(const void *a, const void *b)
{
    uint64_t x = ((const owner_t *) a)->owner, y = ((const owner_t *) b)->owner;
    return x < y ? -1 : x > y;
}

static void owners_build(rc_core_t *core, rc_observe_t *o)
{
    o->owners_built = true;
    if (!core->client_keys)
        return;
    o->owners = calloc(zhashx_size(core->client_keys) + 1, sizeof *o->owners);
    if (!o->owners)
        return;
    for (const char *name = zhashx_first(core->client_keys); name; name = zhashx_next(core->client_keys)) {
        const char *key = zhashx_cursor(core->client_keys);
        owner_t *e = &o->owners[o->n_owners++];
        e->owner = rc_core_owner_of(core, key);
        e->name = name;
        e->admin = core->admin_keys && zhashx_lookup(core->admin_keys, key);
    }
    qsort(o->owners, o->n_owners, sizeof *o->owners, owner_cmp);
}

void rc_observe_keys_changed(rc_core_t *core)
{
    rc_observe_t *o = core->observe;
    free(o->owners);
    o->owners = NULL;
    o->n_owners = 0;
    o->owners_built = false;
}

static const owner_t *owner_find(rc_core_t *core, uint64_t owner)
{
    rc_observe_t *o = core->observe;
    if (!o->owners_built)
        owners_build(core, o);
    owner_t key = {.owner = owner};
    return o->n_owners ? bsearch(&key, o->owners, o->n_owners, sizeof *o->owners, owner_cmp) : NULL;
}

/* Whether the request being handled may see every task and the workers:
 * without CURVE, from a connection without a key (in-process), or with an
 * admin key. */
static bool requester_is_admin(rc_core_t *core)
{
    if (!core->client_keys || !core->owner)
        return true;
    const owner_t *e = owner_find(core, core->owner);
    return e && e->admin;
}

/* Who asked for a client's event: its key's name, or its connection. */
static const char *client_of(rc_core_t *core, const rc_cause_t *c, char *buf, size_t len)
{
    if (c->kind != RC_CAUSE_CLIENT)
        return NULL;
    const owner_t *e = c->owner ? owner_find(core, c->owner) : NULL;
    if (e && e->name && *e->name)
        return e->name;
    size_t n = (size_t) snprintf(buf, len, "conn:");
    if (c->rid && n + 2 * (size_t) c->rid_len < len) {
        rc_hex_encode(c->rid, c->rid_len, buf + n);
        buf[n + 2 * (size_t) c->rid_len] = '\0';
    }
    return buf;
}

/* ---------------------------------------------------------------- the observer */

/* A function's histograms, made at its first observation (NULL without
 * memory for them). */
static __attribute__((noinline)) rc_fnmetrics_t *metrics_of(rc_observe_t *o, rc_fn_t *fn)
{
    if (!fn->metrics)
        fn->metrics = rc_metrics_add(o->metrics, fn->name);
    return fn->metrics;
}

static inline void observe(rc_observe_t *o, rc_fn_t *fn, int which, uint64_t us)
{
    rc_fnmetrics_t *m = fn->metrics ? fn->metrics : metrics_of(o, fn);
    if (m)
        rc_metrics_observe(m, which, us);
}

/* The transitions on_note needs, and no others: the runner builds no note
 * for the rest (a task's dispatch, its Started and progress among them).
 * A Submit enqueues, a join attaches, a worker's Result, Failure or
 * CancelAck unbinds (or records the stop), a record or handle that goes
 * drops or forgets, and at start the store's records are restored (as a
 * submit or a join, in the order they were accepted). */
#define NOTED                                                                                                \
    (RC_ACT_ENQUEUE | RC_ACT_ATTACH | RC_ACT_UNBIND | RC_ACT_RECORD_STOPPED | RC_ACT_DROP | RC_ACT_FORGET | \
     RC_ACT_RESTORE)

/* A worker's Result or Failure of the current run. Its run began at its
 * Started, or, for a job that ended before its first step boundary and
 * sent none, at this Result; the first run's wait is from the acceptance
 * to that. */
static __attribute__((noinline)) void note_run(rc_core_t *core, const rc_note_t *note)
{
    const rc_task_t *t = note->task;
    if (note->from != RC_PROCESSING)
        return;
    uint64_t now = rc_core_wall_us(core), started = t->started_us ? t->started_us : now;
    ((rc_peer_t *) note->cause->peer)->tasks_ended++;
    rc_fnmetrics_t *m = t->fn->metrics;
    if (__builtin_expect(!m, 0) && !(m = metrics_of(core->observe, t->fn)))
        return;
    if (t->attempt <= 1)
        rc_metrics_observe(m, RC_HIST_QUEUE, started > t->created_us ? started - t->created_us : 0);
    rc_metrics_observe(m, RC_HIST_RUN, now - started);
}

/* The rarer notes: a join, a run that ends without a Result, a confirmed
 * stop, a record or handle gone. */
static __attribute__((noinline)) void note_rest(rc_core_t *core, const rc_note_t *note)
{
    rc_observe_t *o = core->observe;
    const rc_task_t *t = note->task;
    switch (note->event) {
    case RC_EV_JOIN:
        /* A Submit that joined work in flight or hit a kept result: a
         * handle of its own. */
        if (note->handle)
            (void) rc_listidx_add(o->list, note->handle->ref, note->handle->created_us);
        return;
    case RC_EV_CANCEL:
    case RC_EV_DEADLINE:
    case RC_EV_WORKER_LOST:
        /* A first run that began and ends without a Result: its wait. */
        if (note->from == RC_PROCESSING && t->attempt <= 1 && t->started_us)
            observe(o, t->fn, RC_HIST_QUEUE,
                    t->started_us > t->created_us ? t->started_us - t->created_us : 0);
        return;
    case RC_EV_CANCEL_ACK: {
        uint64_t stopped = rc_task_stopped_us(t);
        ((rc_peer_t *) note->cause->peer)->tasks_ended++;
        if (note->actions & RC_ACT_RECORD_STOPPED && stopped >= t->finished_us)
            observe(o, t->fn, RC_HIST_STOP, stopped - t->finished_us);
        return;
    }
    case RC_EV_EXPIRE:
    case RC_EV_DELETE:
    case RC_EV_EVICT:
        if (note->to == RC_GONE)
            rc_listidx_gone(o->list, rc_table_size(core->tasks) + rc_handles_count(core));
        return;
    default:
        return;
    }
}

/* The observer of those transitions: a Submit's append inline, the rest
 * tail calls, so that it saves no registers. */
static void on_note(void *arg, const rc_note_t *note)
{
    rc_core_t *core = arg;
    if (note->event == RC_EV_SUBMIT) {
        const rc_task_t *t = note->task;
        (void) rc_listidx_add(core->observe->list, t->ref, t->created_us);
    } else if (note->event == RC_EV_RESULT || note->event == RC_EV_FAILURE) {
        note_run(core, note);
    } else {
        note_rest(core, note);
    }
}

/* The observer for the watchers, registered only while there are any. */
static void on_note_watched(void *arg, const rc_note_t *note)
{
    rc_core_t *core = arg;
    rc_watch_t *w = &core->observe->watch;
    if (w->n) {
        char conn[2 * RC_MAX_ROUTING_ID + 8];
        rc_watch_note(core, w, note, client_of(core, note->cause, conn, sizeof conn));
    }
}

rc_task_t *rc_observe_resolve(rc_core_t *core, const uint8_t ref[16], rc_handle_t **h, uint64_t *owner)
{
    *h = NULL;
    rc_task_t *t = rc_table_get(core->tasks, ref);
    if (t) {
        *owner = t->owner;
        return t->hstate && rc_handles_own_expired(core, t) ? NULL : t;
    }
    if ((*h = rc_handles_lookup(core, ref))) {
        *owner = (*h)->owner;
        return (*h)->task;
    }
    return NULL;
}

static bool ref_live(void *arg, const uint8_t ref[16])
{
    rc_handle_t *h;
    uint64_t owner;
    return rc_observe_resolve(arg, ref, &h, &owner) != NULL;
}

int rc_observe_init(rc_core_t *core)
{
    rc_observe_t *o = calloc(1, sizeof *o);
    if (!o)
        return -1;
    core->observe = o;
    o->list = rc_listidx_new(ref_live, core);
    o->metrics = rc_metrics_new();
    rc_watch_init(&o->watch);
    if (!o->list || !o->metrics || rc_runner_observe_some(core, on_note, core, NOTED) != 0)
        return -1;
    return 0;
}

void rc_observe_fini(rc_core_t *core)
{
    rc_observe_t *o = core->observe;
    if (!o)
        return;
    rc_runner_unobserve(core, on_note, core);
    if (o->watched)
        rc_runner_unobserve(core, on_note_watched, core);
    rc_watch_fini(&o->watch);
    rc_listidx_destroy(&o->list);
    rc_metrics_destroy(&o->metrics);
    free(o->owners);
    free(o);
    core->observe = NULL;
}

/* Once a second at most, says what the counters tell of limits hit and of
 * traffic refused since the last look: a line per kind, with how many, and
 * nothing on the path of the messages that caused them. */
static void limits_log(rc_core_t *core, rc_observe_t *o)
{
    const rc_counters_t *c = &core->c, *seen = &o->limits_seen;
    double s = (double) (core->now_ns - o->limits_checked_ns) / 1e9;
    if (c->resource_exhausted > seen->resource_exhausted)
        rc_log(RC_LOG_WARN, "limits",
               "%llu request(s) refused RESOURCE_EXHAUSTED in %.1f s: a limit was hit (--max-pending %llu, "
               "--max-waiters %llu, or memory)",
               (unsigned long long) (c->resource_exhausted - seen->resource_exhausted), s,
               (unsigned long long) core->cfg.max_pending, (unsigned long long) core->cfg.max_waiters);
    if (c->evicted > seen->evicted)
        rc_log(RC_LOG_INFO, "limits",
               "%llu finished task(s) evicted in %.1f s to stay within --max-records %llu and --cache-bytes "
               "%llu",
               (unsigned long long) (c->evicted - seen->evicted), s,
               (unsigned long long) core->cfg.max_records, (unsigned long long) core->cfg.cache_bytes);
    if (c->dropped_replies > seen->dropped_replies)
        rc_log(RC_LOG_WARN, "limits", "%llu repl(ies) dropped in %.1f s: the client was gone, or not reading",
               (unsigned long long) (c->dropped_replies - seen->dropped_replies), s);
    if (c->bad_requests > seen->bad_requests)
        rc_log(RC_LOG_WARN, "limits", "%llu bad or refused request(s) in %.1f s (see refcache stats)",
               (unsigned long long) (c->bad_requests - seen->bad_requests), s);
    if (c->bad_worker_msgs > seen->bad_worker_msgs)
        rc_log(RC_LOG_WARN, "limits", "%llu bad worker message(s) in %.1f s",
               (unsigned long long) (c->bad_worker_msgs - seen->bad_worker_msgs), s);
    o->limits_seen = *c;
    o->limits_checked_ns = core->now_ns;
}

void rc_observe_flush(rc_core_t *core)
{
    rc_observe_t *o = core->observe;
    if (o && core->now_ns - o->limits_checked_ns >= 1000000000ull)
        limits_log(core, o);
    if (!o || !o->watched)
        return;
    rc_watch_flush(core, &o->watch);
    /* Outside any transition: the runner is not walking its observers. */
    if (!o->watch.n) {
        rc_runner_unobserve(core, on_note_watched, core);
        o->watched = false;
    }
}

void rc_observe_stats(rc_core_t *core, rc_observe_stats_t *s)
{
    rc_observe_t *o = core->observe;
    *s = (rc_observe_stats_t){
        .list_entries = rc_listidx_entries(o->list),
        .list_live = rc_listidx_live(o->list),
        .list_bytes = rc_listidx_bytes(o->list),
        .watchers = o->watch.n,
        .watch_events = o->watch.events_total,
        .watch_lost = o->watch.lost_total,
        .watch_dropped = o->watch.dropped_total,
        .watch_in_flight = o->watch.in_flight,
    };
}

/* ---------------------------------------------------------------- list */

typedef struct {
    rc_core_t *core;
    uint32_t states;
    const rc_fn_t *fn;
    bool all_ns, all_owners;
    rc_str_t ns;
    uint64_t owner, after_us, before_us;
    rc_taskview_t *views;
    char (*hex)[RC_REF_ID_LEN + 1];
    size_t n, limit;
    uint64_t scanned;
} list_t;

static bool list_visit(void *arg, const uint8_t ref[16])
{
    list_t *l = arg;
    l->scanned++;
    rc_handle_t *h;
    uint64_t owner;
    const rc_task_t *t = rc_observe_resolve(l->core, ref, &h, &owner);
    if (!t)
        return true;
    uint64_t created = h ? h->created_us : t->created_us;
    int state = rc_handles_state(t, h);
    if ((l->states && !(l->states & (1u << state))) || (l->fn && t->fn != l->fn) ||
        (!l->all_owners && owner != l->owner) || (l->after_us && created <= l->after_us) ||
        (l->before_us && created >= l->before_us))
        return true;
    if (!l->all_ns) {
        const char *ns = rc_task_ns(t);
        if (ns ? strlen(ns) != l->ns.len || memcmp(ns, l->ns.ptr, l->ns.len) != 0 : l->ns.len != 0)
            return true;
    }
    rc_taskview_t *v = &l->views[l->n];
    rc_view_handle(l->core, t, h, v, l->hex[l->n]);
    v->result = (rc_bytes_t){NULL, 0};
    v->result_truncated = false;
    return ++l->n < l->limit;
}

static const char *list_invalid(const rc_listreq_t *req, uint64_t *before)
{
    if (req->states & (1u << 31))
        return "states holds a value that is not a task state";
    if (req->limit > RC_LIST_LIMIT_MAX)
        return "limit above " RC_STR(RC_LIST_LIMIT_MAX);
    if (req->function.len > RC_MAX_NAME || req->ns.len > RC_MAX_NAME)
        return "function or namespace name too long";
    *before = 0;
    if (req->cursor.len) {
        /* A cursor is "c" and a position in hex. */
        char *end = NULL;
        if (req->cursor.ptr[0] != 'c' || req->cursor.len < 2 || req->cursor.len > 17)
            return "not a cursor of this broker";
        *before = strtoull(req->cursor.ptr + 1, &end, 16);
        if (!end || *end || !*before)
            return "not a cursor of this broker";
    }
    return NULL;
}

static void on_list(rc_core_t *core, const rc_request_t *request)
{
    rc_observe_t *o = core->observe;
    rc_listreq_t lr, *req = &lr;
    rc_codec_list_request(request, &lr);
    uint64_t before;
    const char *bad = list_invalid(req, &before);
    if (bad) {
        rc_reply_error(core, request->id, CODE(INVALID_ARGUMENT), bad);
        return;
    }
    list_t l = {.core = core,
                .states = req->states,
                .all_ns = req->all_ns,
                .all_owners = requester_is_admin(core),
                .ns = req->ns,
                .owner = core->owner,
                .after_us = req->after_us,
                .before_us = req->before_us,
                .limit = req->limit ? req->limit : RC_LIST_LIMIT_DEFAULT};
    bool empty = false;
    if (req->function.len) {
        l.fn = zhashx_lookup(core->fns, req->function.ptr);
        empty = !l.fn; /* no worker ever served it: no task of it */
    }
    if (req->ref_id.len) {
        /* One ref: looked up, not scanned for. */
        uint8_t ref[16];
        if (rc_hex_decode(req->ref_id.ptr, req->ref_id.len, ref, 16) != 0) {
            rc_reply_error(core, request->id, CODE(INVALID_ARGUMENT), "ref_id must be 32 hex characters");
            return;
        }
        l.limit = 1;
        rc_taskview_t view;
        char hex[RC_REF_ID_LEN + 1];
        l.views = &view;
        l.hex = &hex;
        if (!empty)
            (void) list_visit(&l, ref);
        struct rc_obsreply obs = {.tasks = &view, .n_tasks = l.n, .cursor = "", .scanned = l.scanned};
        rc_reply_t r = {.id = request->id, .kind = RC_REPLY_LIST, .obs = &obs};
        rc_reply(core, &r);
        return;
    }
    if (!before && req->before_us) {
        before = rc_listidx_seek(o->list, req->before_us);
        empty |= !before;
    }
    l.views = calloc(l.limit, sizeof *l.views);
    l.hex = calloc(l.limit, sizeof *l.hex);
    if (!l.views || !l.hex) {
        free(l.views);
        free(l.hex);
        rc_reply_error(core, request->id, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    uint64_t next = 0;
    if (!empty)
        next = rc_listidx_scan(o->list, before, req->after_us, RC_LIST_SCAN, list_visit, &l);
    char cursor[24] = "";
    if (next)
        snprintf(cursor, sizeof cursor, "c%llx", (unsigned long long) next);
    struct rc_obsreply obs = {.tasks = l.views, .n_tasks = l.n, .cursor = cursor, .scanned = l.scanned};
    rc_reply_t r = {.id = request->id, .kind = RC_REPLY_LIST, .obs = &obs};
    rc_reply(core, &r);
    free(l.views);
    free(l.hex);
}

/* ---------------------------------------------------------------- workers */

static void on_workers(rc_core_t *core, const rc_request_t *req)
{
    if (!requester_is_admin(core)) {
        rc_reply_error(core, req->id, CODE(PERMISSION_DENIED), "Workers needs an admin key");
        return;
    }
    size_t n = 0, names = 0;
    for (rc_list_t *it = core->peers.next; it != &core->peers; it = it->next) {
        n++;
        names += rc_container_of(it, rc_peer_t, link)->nfns;
    }
    rc_workerview_t *views = calloc(n ? n : 1, sizeof *views);
    const char **fns = calloc(names ? names : 1, sizeof *fns);
    if (!views || !fns) {
        free(views);
        free(fns);
        rc_reply_error(core, req->id, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    size_t i = 0, k = 0;
    for (rc_list_t *it = core->peers.next; it != &core->peers; it = it->next, i++) {
        const rc_peer_t *p = rc_container_of(it, rc_peer_t, link);
        rc_workerview_t *v = &views[i];
        v->worker_id = p->id;
        v->host = p->host;
        v->pid = p->pid;
        v->functions = &fns[k];
        for (size_t f = 0; f < p->nfns; f++)
            fns[k++] = p->fns[f]->name;
        v->n_functions = p->nfns;
        v->credit = p->credit;
        v->tasks_held = p->outstanding;
        v->joined_at_us = p->joined_us ? (uint64_t) ((int64_t) p->joined_us + core->wall_off_us) : 0;
        v->last_heard_at_us = (uint64_t) ((int64_t) p->last_seen_us + core->wall_off_us);
        v->ready = p->ready && p->hello;
        v->tasks_ended = p->tasks_ended;
    }
    struct rc_obsreply obs = {.workers = views, .n_workers = n};
    rc_reply_t r = {.id = req->id, .kind = RC_REPLY_WORKERS, .obs = &obs};
    rc_reply(core, &r);
    free(views);
    free(fns);
}

/* ---------------------------------------------------------------- metrics */

static rc_histview_t hist_view(const struct rc_fnmetrics *m, int which)
{
    static const uint64_t zeros[RC_METRICS_BUCKETS];
    if (!m)
        return (rc_histview_t){zeros, RC_METRICS_BUCKETS, 0, 0};
    const rc_hist_t *h = &m->h[which];
    return (rc_histview_t){h->counts, RC_METRICS_BUCKETS, h->sum_us, h->count};
}

static void on_metrics(rc_core_t *core, const rc_request_t *req)
{
    size_t n = zhashx_size(core->fns), i = 0;
    rc_fnmetricsview_t *views = calloc(n ? n : 1, sizeof *views);
    if (!views) {
        rc_reply_error(core, req->id, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    for (rc_fn_t *fn = zhashx_first(core->fns); fn && i < n; fn = zhashx_next(core->fns), i++) {
        const rc_fnmetrics_t *m = fn->metrics;
        views[i] = (rc_fnmetricsview_t){.function = fn->name,
                                        .queued = fn->queued,
                                        .queue_time = hist_view(m, RC_HIST_QUEUE),
                                        .run_time = hist_view(m, RC_HIST_RUN),
                                        .stop_time = hist_view(m, RC_HIST_STOP)};
    }
    struct rc_obsreply obs = {
        .bounds_us = rc_metrics_bounds(), .n_bounds = RC_METRICS_BUCKETS - 1, .fns = views, .n_fns = i};
    rc_reply_t r = {.id = req->id, .kind = RC_REPLY_METRICS, .obs = &obs};
    rc_reply(core, &r);
    free(views);
}

void rc_observe_request(rc_core_t *core, const rc_request_t *req)
{
    switch (req->kind) {
    case RC_REQ_LIST:
        on_list(core, req);
        break;
    case RC_REQ_WORKERS:
        on_workers(core, req);
        break;
    case RC_REQ_WATCH: {
        /* Requests are handled outside transitions: the observer of the
         * watchers may be added now (it goes at the flush when none is left). */
        rc_observe_t *o = core->observe;
        rc_watchreq_t w;
        rc_codec_watch_request(req, &w);
        if (!o->watched && !w.watch_id) {
            if (rc_runner_observe(core, on_note_watched, core) != 0) {
                rc_reply_error(core, req->id, CODE(RESOURCE_EXHAUSTED), "no room for another observer");
                break;
            }
            o->watched = true;
        }
        rc_watch_request(core, &o->watch, req->id, &w, requester_is_admin(core));
        break;
    }
    case RC_REQ_METRICS:
        on_metrics(core, req);
        break;
    default:
        break;
    }
}
