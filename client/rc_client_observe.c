/* rc_client_observe: the client library's calls for seeing inside the
 * broker (refcache.h): List, Workers, Metrics and a watch's stream of
 * events. Their requests are rare and packed by protobuf-c; their replies
 * are read by protobuf-c (rc_client_codec hands them here) and copied into
 * one block the caller owns, or, for events, viewed in the client's buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_common.h"

#include "rc_client_codec.h"
#include "rc_client_int.h"
#include "rc_fields.h"
#include "rc_observe_covers.h"
#include "refcache.h"
#include "refcache.pb-c.h"

/* ------------------------------------------------------------ replies */

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

int rc_client_codec_reply_observe(refcache_reply_t *out, const void *reply)
{
    const Refcache__V1__Reply *r = reply;
    switch (r->body_case) {
    case REFCACHE__V1__REPLY__BODY_LIST:
        out->kind = REFCACHE_REPLY_LIST;
        out->body_ = r->list;
        return r->list ? 0 : REFCACHE_EREPLY;
    case REFCACHE__V1__REPLY__BODY_WORKERS:
        out->kind = REFCACHE_REPLY_WORKERS;
        out->body_ = r->workers;
        return r->workers ? 0 : REFCACHE_EREPLY;
    case REFCACHE__V1__REPLY__BODY_METRICS:
        out->kind = REFCACHE_REPLY_METRICS;
        out->body_ = r->metrics;
        return r->metrics ? 0 : REFCACHE_EREPLY;
    case REFCACHE__V1__REPLY__BODY_EVENT: {
        const Refcache__V1__Event *e = r->event;
        if (!e)
            return REFCACHE_EREPLY;
        out->kind = REFCACHE_REPLY_EVENT;
        out->event = (refcache_event_t){
            .kind = e->kind,
            .ref_id = str_or_empty(e->ref_id),
            .function = str_or_empty(e->function),
            .namespace_name = str_or_empty(e->namespace_),
            .old_state = e->old_state,
            .new_state = e->new_state,
            .event = str_or_empty(e->event),
            .attempt = e->attempt,
            .worker_id = str_or_empty(e->worker_id),
            .code = e->code,
            .client = str_or_empty(e->client),
            .stop_confirmed = e->stop_confirmed,
            .at_us = e->at_us,
            .lost = e->lost,
            .progress_done = e->progress_done,
            .progress_total = e->progress_total,
        };
        return 0;
    }
    default:
        out->kind = REFCACHE_REPLY_NONE;
        return 0;
    }
}

/* One block for an owned result: its struct, arrays and strings, sized
 * first and then carved (so the carving never fails). */
typedef struct {
    uint8_t *p;
} carve_t;

#define ALIGN8(n) (((n) + 7) & ~(size_t) 7)

static void *carve(carve_t *c, size_t n)
{
    void *p = c->p;
    c->p += ALIGN8(n);
    return p;
}

static const char *carve_str(carve_t *c, const char *s)
{
    s = str_or_empty(s);
    size_t n = strlen(s) + 1;
    char *d = carve(c, n);
    memcpy(d, s, n);
    return d;
}

static size_t str_room(const char *s)
{
    return ALIGN8(strlen(str_or_empty(s)) + 1);
}

/* ------------------------------------------------------------ list */

void refcache_list_options_init(refcache_list_options_t *options)
{
    memset(options, 0, sizeof *options);
}

/* Sends r (a Request with its body set) and waits for its reply. */
static int s_call(refcache_client_t *self, Refcache__V1__Request *r, refcache_reply_kind_t kind,
                  refcache_reply_t *out, int timeout_ms)
{
    uint64_t id;
    int rc = rc_client_send_pb(self, &r->base, &id);
    if (rc)
        return rc;
    return rc_client_await(self, id, timeout_ms, kind, out);
}

int refcache_client_list(refcache_client_t *self, const refcache_list_options_t *options,
                         refcache_task_list_t **list_p, int timeout_ms)
{
    if (list_p)
        *list_p = NULL;
    if (!self || !list_p)
        return REFCACHE_EINVAL;
    refcache_list_options_t defaults;
    if (!options) {
        refcache_list_options_init(&defaults);
        options = &defaults;
    }
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    Refcache__V1__ListRequest l = REFCACHE__V1__LIST_REQUEST__INIT;
    Refcache__V1__State states[8];
    for (int s = REFCACHE_STATE_PENDING; s <= REFCACHE_STATE_CANCELLED; s++)
        if (options->states & REFCACHE_STATE_BIT(s))
            states[l.n_states++] = (Refcache__V1__State) s;
    if (options->states & ~(unsigned) 0x3e)
        return REFCACHE_EINVAL;
    l.states = states;
    l.function = (char *) str_or_empty(options->function);
    l.namespace_ = (char *) str_or_empty(rc_client_namespace(self));
    l.all_namespaces = options->all_namespaces;
    l.created_after_us = options->created_after_us;
    l.created_before_us = options->created_before_us;
    l.limit = options->limit;
    l.cursor = (char *) str_or_empty(options->cursor);
    l.ref_id = (char *) str_or_empty(options->ref_id);
    r.body_case = REFCACHE__V1__REQUEST__BODY_LIST;
    r.list = &l;
    refcache_reply_t reply;
    int rc = s_call(self, &r, REFCACHE_REPLY_LIST, &reply, timeout_ms);
    if (rc != 0)
        return rc;
    const Refcache__V1__ListReply *lr = reply.body_;
    size_t n = lr->n_tasks,
           room = ALIGN8(sizeof(refcache_task_list_t)) + ALIGN8(n * sizeof(refcache_task_view_t));
    for (size_t i = 0; i < n; i++)
        room += str_room(lr->tasks[i]->error) + str_room(lr->tasks[i]->function) +
                str_room(lr->tasks[i]->namespace_);
    carve_t c = {malloc(room)};
    if (!c.p)
        return REFCACHE_ENOMEM;
    refcache_task_list_t *list = carve(&c, sizeof *list);
    list->tasks = carve(&c, n * sizeof *list->tasks);
    list->count = n;
    list->scanned = lr->scanned;
    snprintf(list->next_cursor, sizeof list->next_cursor, "%s", str_or_empty(lr->next_cursor));
    for (size_t i = 0; i < n; i++) {
        refcache_task_view_t *t = &list->tasks[i];
        if (rc_client_codec_task(t, lr->tasks[i]) != 0) {
            free(list);
            return REFCACHE_EREPLY;
        }
        t->result = NULL;
        t->result_len = 0;
        t->error = carve_str(&c, t->error);
        t->function = carve_str(&c, t->function);
        t->namespace_name = carve_str(&c, t->namespace_name);
    }
    *list_p = list;
    return 0;
}

void refcache_task_list_destroy(refcache_task_list_t **self_p)
{
    if (!self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

/* ------------------------------------------------------------ workers */

int refcache_client_workers(refcache_client_t *self, refcache_worker_list_t **list_p, int timeout_ms)
{
    if (list_p)
        *list_p = NULL;
    if (!self || !list_p)
        return REFCACHE_EINVAL;
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    Refcache__V1__WorkersRequest w = REFCACHE__V1__WORKERS_REQUEST__INIT;
    r.body_case = REFCACHE__V1__REQUEST__BODY_WORKERS;
    r.workers = &w;
    refcache_reply_t reply;
    int rc = s_call(self, &r, REFCACHE_REPLY_WORKERS, &reply, timeout_ms);
    if (rc != 0)
        return rc;
    const Refcache__V1__WorkersReply *wr = reply.body_;
    size_t n = wr->n_workers;
    size_t room = ALIGN8(sizeof(refcache_worker_list_t)) + ALIGN8(n * sizeof(refcache_worker_info_t));
    for (size_t i = 0; i < n; i++) {
        const Refcache__V1__WorkerInfo *wi = wr->workers[i];
        room += str_room(wi->worker_id) + str_room(wi->host) + ALIGN8(wi->n_functions * sizeof(char *));
        for (size_t f = 0; f < wi->n_functions; f++)
            room += str_room(wi->functions[f]);
    }
    carve_t c = {malloc(room)};
    if (!c.p)
        return REFCACHE_ENOMEM;
    refcache_worker_list_t *list = carve(&c, sizeof *list);
    list->workers = carve(&c, n * sizeof *list->workers);
    list->count = n;
    for (size_t i = 0; i < n; i++) {
        const Refcache__V1__WorkerInfo *wi = wr->workers[i];
        refcache_worker_info_t *v = &list->workers[i];
        const char **fns = carve(&c, wi->n_functions * sizeof *fns);
        for (size_t f = 0; f < wi->n_functions; f++)
            fns[f] = carve_str(&c, wi->functions[f]);
        *v = (refcache_worker_info_t){.worker_id = carve_str(&c, wi->worker_id),
                                      .host = carve_str(&c, wi->host),
                                      .pid = wi->pid,
                                      .functions = fns,
                                      .function_count = wi->n_functions,
                                      .credit = wi->credit,
                                      .tasks_held = wi->tasks_held,
                                      .joined_at_us = wi->joined_at_us,
                                      .last_heard_at_us = wi->last_heard_at_us,
                                      .tasks_ended = wi->tasks_ended,
                                      .ready = wi->ready};
    }
    *list_p = list;
    return 0;
}

void refcache_worker_list_destroy(refcache_worker_list_t **self_p)
{
    if (!self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

/* ------------------------------------------------------------ metrics */

static size_t hist_room(const Refcache__V1__Histogram *h)
{
    return h ? ALIGN8(h->n_counts * sizeof(uint64_t)) : 0;
}

static refcache_histogram_t carve_hist(carve_t *c, const Refcache__V1__Histogram *h)
{
    refcache_histogram_t v = {0};
    if (!h)
        return v;
    uint64_t *counts = carve(c, h->n_counts * sizeof *counts);
    if (h->n_counts)
        memcpy(counts, h->counts, h->n_counts * sizeof *counts);
    v.counts = counts;
    v.count_n = h->n_counts;
    v.sum_us = h->sum_us;
    v.count = h->count;
    return v;
}

int refcache_client_metrics(refcache_client_t *self, refcache_metrics_t **metrics_p, int timeout_ms)
{
    if (metrics_p)
        *metrics_p = NULL;
    if (!self || !metrics_p)
        return REFCACHE_EINVAL;
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    Refcache__V1__MetricsRequest m = REFCACHE__V1__METRICS_REQUEST__INIT;
    r.body_case = REFCACHE__V1__REQUEST__BODY_METRICS;
    r.metrics = &m;
    refcache_reply_t reply;
    int rc = s_call(self, &r, REFCACHE_REPLY_METRICS, &reply, timeout_ms);
    if (rc != 0)
        return rc;
    const Refcache__V1__MetricsReply *mr = reply.body_;
    size_t n = mr->n_functions;
    size_t room = ALIGN8(sizeof(refcache_metrics_t)) + ALIGN8(mr->n_bounds_us * sizeof(uint64_t)) +
                  ALIGN8(n * sizeof(refcache_function_metrics_t));
    for (size_t i = 0; i < n; i++) {
        const Refcache__V1__FunctionMetrics *f = mr->functions[i];
        room += str_room(f->function) + hist_room(f->queue_time) + hist_room(f->run_time) +
                hist_room(f->cancel_stop_time);
    }
    carve_t c = {malloc(room)};
    if (!c.p)
        return REFCACHE_ENOMEM;
    refcache_metrics_t *out = carve(&c, sizeof *out);
    uint64_t *bounds = carve(&c, mr->n_bounds_us * sizeof *bounds);
    if (mr->n_bounds_us)
        memcpy(bounds, mr->bounds_us, mr->n_bounds_us * sizeof *bounds);
    out->bounds_us = bounds;
    out->bound_count = mr->n_bounds_us;
    out->functions = carve(&c, n * sizeof *out->functions);
    out->function_count = n;
    for (size_t i = 0; i < n; i++) {
        const Refcache__V1__FunctionMetrics *f = mr->functions[i];
        out->functions[i] =
            (refcache_function_metrics_t){.function = carve_str(&c, f->function),
                                          .queued = f->queued,
                                          .queue_time = carve_hist(&c, f->queue_time),
                                          .run_time = carve_hist(&c, f->run_time),
                                          .cancel_stop_time = carve_hist(&c, f->cancel_stop_time)};
    }
    *metrics_p = out;
    return 0;
}

void refcache_metrics_destroy(refcache_metrics_t **self_p)
{
    if (!self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

/* ------------------------------------------------------------ watch */

static int s_watch_send(refcache_client_t *self, Refcache__V1__WatchRequest *w, uint64_t *id)
{
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    r.body_case = REFCACHE__V1__REQUEST__BODY_WATCH;
    r.watch = w;
    int rc = rc_client_send_pb(self, &r.base, id);
    return rc ? rc : refcache_client_flush(self);
}

int refcache_client_watch(refcache_client_t *self, const refcache_watch_options_t *options, int timeout_ms)
{
    if (!self)
        return REFCACHE_EINVAL;
    rc_client_watch_t *st = rc_client_watch_state(self);
    if (st->id)
        return REFCACHE_EINVAL; /* one watch per client */
    refcache_watch_options_t defaults = {0};
    if (!options)
        options = &defaults;
    Refcache__V1__WatchRequest w = REFCACHE__V1__WATCH_REQUEST__INIT;
    w.ref_id = (char *) str_or_empty(options->ref_id);
    w.function = (char *) str_or_empty(options->function);
    w.namespace_ = (char *) str_or_empty(rc_client_namespace(self));
    w.all_namespaces = options->all_namespaces;
    w.window = options->window;
    uint64_t id;
    int rc = s_watch_send(self, &w, &id);
    if (rc)
        return rc;
    /* The first event (WATCHING) is the answer; an error reply has no body. */
    refcache_reply_t reply;
    rc = rc_client_await(self, id, timeout_ms, REFCACHE_REPLY_EVENT, &reply);
    if (rc != 0)
        return rc;
    if (reply.event.kind != REFCACHE_EVENT_WATCHING)
        return REFCACHE_EREPLY;
    *st = (rc_client_watch_t){.id = id, .got = 1, .window = options->window ? options->window : 1024};
    return 0;
}

/* Tells the broker what was read, every half window. */
static int s_ack(refcache_client_t *self, rc_client_watch_t *st, bool now)
{
    if (!now && st->got - st->acked < st->window / 2)
        return 0;
    Refcache__V1__WatchRequest w = REFCACHE__V1__WATCH_REQUEST__INIT;
    w.watch_id = st->id;
    w.acked = st->got;
    uint64_t id;
    int rc = s_watch_send(self, &w, &id);
    if (rc == 0)
        st->acked = st->got;
    return rc;
}

int refcache_client_watch_next(refcache_client_t *self, refcache_event_t *event, int timeout_ms)
{
    if (!self || !event)
        return REFCACHE_EINVAL;
    rc_client_watch_t *st = rc_client_watch_state(self);
    if (!st->id)
        return REFCACHE_EINVAL;
    int rc = s_ack(self, st, false);
    if (rc)
        return rc;
    refcache_reply_t reply;
    for (;;) {
        rc = refcache_client_recv(self, &reply, timeout_ms);
        if (rc)
            return rc;
        if (reply.id == st->id && reply.kind == REFCACHE_REPLY_EVENT)
            break;
        /* A reply to an acknowledgement (an error) or anything else: not an event. */
    }
    st->got++;
    *event = reply.event;
    if (event->kind == REFCACHE_EVENT_END)
        *st = (rc_client_watch_t){0};
    return 0;
}

int refcache_client_unwatch(refcache_client_t *self, int timeout_ms)
{
    if (!self)
        return REFCACHE_EINVAL;
    rc_client_watch_t *st = rc_client_watch_state(self);
    if (!st->id)
        return REFCACHE_EINVAL;
    Refcache__V1__WatchRequest w = REFCACHE__V1__WATCH_REQUEST__INIT;
    w.watch_id = st->id;
    w.stop = true;
    uint64_t id;
    int rc = s_watch_send(self, &w, &id);
    *st = (rc_client_watch_t){0};
    if (rc)
        return rc;
    /* The events still on their way and the END are passed over; the
     * stop's own reply has no body. */
    uint64_t deadline = rc_mono_us() + (uint64_t) (timeout_ms > 0 ? timeout_ms : 0) * 1000;
    for (;;) {
        refcache_reply_t reply;
        uint64_t now = rc_mono_us();
        rc = refcache_client_recv(self, &reply, now >= deadline ? 0 : (int) ((deadline - now) / 1000));
        if (rc)
            return rc;
        if (reply.id == id)
            return reply.code;
    }
}

/* ------------------------------------------------------------ coverage */

/* Under the names of the client codec's encoder and decoder, whose bodies
 * these are (test_wire_drift). */
const rc_wire_cover_t rc_client_observe_covers[] = {
    RC_OBSERVE_COVERS("rc_client_codec: Request encoder", "rc_client_codec: Reply decoder"),
    {0},
};
