/* rc_codec_observe: the broker codec's part for seeing inside — the List,
 * Workers, Watch and Metrics requests read, their replies written, and the
 * Event of a watch's stream written by hand (it goes out once per
 * transition to every watcher, so it is on the loop's path when someone
 * watches). The rare replies are packed by protobuf-c. */
#include <stdlib.h>
#include <string.h>

#include "rc_codec_int.h"
#include "rc_fields.h"
#include "rc_observe_covers.h"

/* ---------------------------------------------------------------- requests */

int rc_codec_request_observe(const void *pb_request, rc_request_t *req)
{
    const Refcache__V1__Request *pb = pb_request;
    switch (pb->body_case) {
    case REFCACHE__V1__REQUEST__BODY_LIST:
        req->kind = RC_REQ_LIST;
        req->function = str_of(pb->list->function);
        req->ns = str_of(pb->list->namespace_);
        return 0;
    case REFCACHE__V1__REQUEST__BODY_WORKERS:
        req->kind = RC_REQ_WORKERS;
        return 0;
    case REFCACHE__V1__REQUEST__BODY_WATCH:
        req->kind = RC_REQ_WATCH;
        req->ref_id = str_of(pb->watch->ref_id);
        req->function = str_of(pb->watch->function);
        req->ns = str_of(pb->watch->namespace_);
        return 0;
    case REFCACHE__V1__REQUEST__BODY_METRICS:
        req->kind = RC_REQ_METRICS;
        return 0;
    default:
        return -1;
    }
}

void rc_codec_list_request(const rc_request_t *req, rc_listreq_t *v)
{
    const Refcache__V1__ListRequest *l = ((const Refcache__V1__Request *) req->pb_)->list;
    *v = (rc_listreq_t){.function = str_of(l->function),
                        .ns = str_of(l->namespace_),
                        .cursor = str_of(l->cursor),
                        .ref_id = str_of(l->ref_id),
                        .all_ns = l->all_namespaces,
                        .after_us = l->created_after_us,
                        .before_us = l->created_before_us,
                        .limit = l->limit};
    for (size_t i = 0; i < l->n_states; i++)
        v->states |= l->states[i] >= 1 && l->states[i] <= 5 ? 1u << l->states[i] : 1u << 31;
}

void rc_codec_watch_request(const rc_request_t *req, rc_watchreq_t *v)
{
    const Refcache__V1__WatchRequest *w = ((const Refcache__V1__Request *) req->pb_)->watch;
    *v = (rc_watchreq_t){.ref_id = str_of(w->ref_id),
                         .function = str_of(w->function),
                         .ns = str_of(w->namespace_),
                         .all_ns = w->all_namespaces,
                         .stop = w->stop,
                         .window = w->window,
                         .watch_id = w->watch_id,
                         .acked = w->acked};
}

/* ---------------------------------------------------------------- replies */

static int pack_reply(rc_buf_t *buf, const Refcache__V1__Reply *reply)
{
    return pack_into(buf, &reply->base);
}

static void task_info(Refcache__V1__TaskInfo *ti, const rc_taskview_t *v)
{
    refcache__v1__task_info__init(ti);
    ti->ref_id = (char *) v->ref_hex;
    ti->state = (Refcache__V1__State) v->state;
    ti->result_size = v->result_size;
    ti->progress_done = v->progress_done;
    ti->progress_total = v->progress_total;
    ti->attempt = v->attempt;
    ti->error_code = (Refcache__V1__Code) v->error_code;
    ti->error = (char *) (v->error ? v->error : "");
    ti->function = (char *) (v->function ? v->function : "");
    ti->created_at_us = v->created_at_us;
    ti->started_at_us = v->started_at_us;
    ti->finished_at_us = v->finished_at_us;
    ti->stopped_at_us = v->stopped_at_us;
    ti->max_retries = v->max_retries;
    ti->namespace_ = (char *) (v->ns ? v->ns : "");
    ti->expires_at_us = v->expires_at_us;
    ti->ever_started = v->ever_started;
}

static int reply_list(rc_buf_t *buf, Refcache__V1__Reply *reply, const rc_reply_t *r)
{
    Refcache__V1__ListReply list = REFCACHE__V1__LIST_REPLY__INIT;
    Refcache__V1__TaskInfo *infos = calloc(r->obs->n_tasks ? r->obs->n_tasks : 1, sizeof *infos);
    Refcache__V1__TaskInfo **ptrs = calloc(r->obs->n_tasks ? r->obs->n_tasks : 1, sizeof *ptrs);
    int rc = -1;
    if (infos && ptrs) {
        for (size_t i = 0; i < r->obs->n_tasks; i++) {
            task_info(&infos[i], &r->obs->tasks[i]);
            ptrs[i] = &infos[i];
        }
        list.n_tasks = r->obs->n_tasks;
        list.tasks = ptrs;
        list.next_cursor = (char *) (r->obs->cursor ? r->obs->cursor : "");
        list.scanned = r->obs->scanned;
        reply->body_case = REFCACHE__V1__REPLY__BODY_LIST;
        reply->list = &list;
        rc = pack_reply(buf, reply);
    }
    free(infos);
    free(ptrs);
    return rc;
}

static int reply_workers(rc_buf_t *buf, Refcache__V1__Reply *reply, const rc_reply_t *r)
{
    Refcache__V1__WorkersReply workers = REFCACHE__V1__WORKERS_REPLY__INIT;
    Refcache__V1__WorkerInfo *infos = calloc(r->obs->n_workers ? r->obs->n_workers : 1, sizeof *infos);
    Refcache__V1__WorkerInfo **ptrs = calloc(r->obs->n_workers ? r->obs->n_workers : 1, sizeof *ptrs);
    int rc = -1;
    if (infos && ptrs) {
        for (size_t i = 0; i < r->obs->n_workers; i++) {
            const rc_workerview_t *v = &r->obs->workers[i];
            Refcache__V1__WorkerInfo *wi = &infos[i];
            refcache__v1__worker_info__init(wi);
            wi->worker_id = (char *) v->worker_id;
            wi->host = (char *) (v->host ? v->host : "");
            wi->pid = v->pid;
            wi->n_functions = v->n_functions;
            wi->functions = (char **) v->functions;
            wi->credit = v->credit;
            wi->tasks_held = v->tasks_held;
            wi->joined_at_us = v->joined_at_us;
            wi->last_heard_at_us = v->last_heard_at_us;
            wi->ready = v->ready;
            wi->tasks_ended = v->tasks_ended;
            ptrs[i] = wi;
        }
        workers.n_workers = r->obs->n_workers;
        workers.workers = ptrs;
        reply->body_case = REFCACHE__V1__REPLY__BODY_WORKERS;
        reply->workers = &workers;
        rc = pack_reply(buf, reply);
    }
    free(infos);
    free(ptrs);
    return rc;
}

static void histogram(Refcache__V1__Histogram *h, const rc_histview_t *v)
{
    refcache__v1__histogram__init(h);
    h->n_counts = v->n_counts;
    h->counts = (uint64_t *) v->counts;
    h->sum_us = v->sum_us;
    h->count = v->count;
}

static int reply_metrics(rc_buf_t *buf, Refcache__V1__Reply *reply, const rc_reply_t *r)
{
    Refcache__V1__MetricsReply m = REFCACHE__V1__METRICS_REPLY__INIT;
    size_t n = r->obs->n_fns ? r->obs->n_fns : 1;
    Refcache__V1__FunctionMetrics *fms = calloc(n, sizeof *fms);
    Refcache__V1__FunctionMetrics **ptrs = calloc(n, sizeof *ptrs);
    Refcache__V1__Histogram *hs = calloc(3 * n, sizeof *hs);
    int rc = -1;
    if (fms && ptrs && hs) {
        for (size_t i = 0; i < r->obs->n_fns; i++) {
            const rc_fnmetricsview_t *v = &r->obs->fns[i];
            refcache__v1__function_metrics__init(&fms[i]);
            fms[i].function = (char *) v->function;
            fms[i].queued = v->queued;
            histogram(&hs[3 * i], &v->queue_time);
            histogram(&hs[3 * i + 1], &v->run_time);
            histogram(&hs[3 * i + 2], &v->stop_time);
            fms[i].queue_time = &hs[3 * i];
            fms[i].run_time = &hs[3 * i + 1];
            fms[i].cancel_stop_time = &hs[3 * i + 2];
            ptrs[i] = &fms[i];
        }
        m.n_bounds_us = r->obs->n_bounds;
        m.bounds_us = (uint64_t *) r->obs->bounds_us;
        m.n_functions = r->obs->n_fns;
        m.functions = ptrs;
        reply->body_case = REFCACHE__V1__REPLY__BODY_METRICS;
        reply->metrics = &m;
        rc = pack_reply(buf, reply);
    }
    free(fms);
    free(ptrs);
    free(hs);
    return rc;
}

int rc_codec_reply_observe(rc_buf_t *buf, const rc_reply_t *r)
{
    Refcache__V1__Reply reply = REFCACHE__V1__REPLY__INIT;
    reply.id = r->id;
    reply.code = (Refcache__V1__Code) r->code;
    reply.message = (char *) (r->message ? r->message : "");
    switch (r->obs ? r->kind : RC_REPLY_NONE) {
    case RC_REPLY_LIST:
        return reply_list(buf, &reply, r);
    case RC_REPLY_WORKERS:
        return reply_workers(buf, &reply, r);
    case RC_REPLY_METRICS:
        return reply_metrics(buf, &reply, r);
    default:
        return pack_reply(buf, &reply);
    }
}

/* ---------------------------------------------------------------- events */

int rc_codec_event(rc_buf_t *buf, const rc_eventview_t *e)
{
    size_t ref = len_of(e->ref_hex), fn = len_of(e->function), ns = len_of(e->ns), ev = len_of(e->event),
           wid = len_of(e->worker_id), client = len_of(e->client);
    size_t n =
        rc_wire_sz_enum(RC_FIELD_EVENT_KIND, e->kind) + rc_wire_sz_bytes(RC_FIELD_EVENT_REF_ID, ref) +
        rc_wire_sz_bytes(RC_FIELD_EVENT_FUNCTION, fn) + rc_wire_sz_bytes(RC_FIELD_EVENT_NAMESPACE, ns) +
        rc_wire_sz_enum(RC_FIELD_EVENT_OLD_STATE, e->old_state) +
        rc_wire_sz_enum(RC_FIELD_EVENT_NEW_STATE, e->new_state) + rc_wire_sz_bytes(RC_FIELD_EVENT_EVENT, ev) +
        rc_wire_sz_varint(RC_FIELD_EVENT_ATTEMPT, e->attempt) +
        rc_wire_sz_bytes(RC_FIELD_EVENT_WORKER_ID, wid) + rc_wire_sz_enum(RC_FIELD_EVENT_CODE, e->code) +
        rc_wire_sz_bytes(RC_FIELD_EVENT_CLIENT, client) +
        rc_wire_sz_bool(RC_FIELD_EVENT_STOP_CONFIRMED, e->stop_confirmed) +
        rc_wire_sz_varint(RC_FIELD_EVENT_AT_US, e->at_us) + rc_wire_sz_varint(RC_FIELD_EVENT_LOST, e->lost) +
        rc_wire_sz_varint(RC_FIELD_EVENT_PROGRESS_DONE, e->progress_done) +
        rc_wire_sz_varint(RC_FIELD_EVENT_PROGRESS_TOTAL, e->progress_total);
    if (rc_buf_reserve(buf, n ? n : 1) != 0)
        return -1;
    uint8_t *p = buf->data;
    p = rc_wire_put_enum(p, RC_FIELD_EVENT_KIND, e->kind);
    p = rc_wire_put_bytes(p, RC_FIELD_EVENT_REF_ID, e->ref_hex, ref);
    p = rc_wire_put_bytes(p, RC_FIELD_EVENT_FUNCTION, e->function, fn);
    p = rc_wire_put_bytes(p, RC_FIELD_EVENT_NAMESPACE, e->ns, ns);
    p = rc_wire_put_enum(p, RC_FIELD_EVENT_OLD_STATE, e->old_state);
    p = rc_wire_put_enum(p, RC_FIELD_EVENT_NEW_STATE, e->new_state);
    p = rc_wire_put_bytes(p, RC_FIELD_EVENT_EVENT, e->event, ev);
    p = rc_wire_put_varint(p, RC_FIELD_EVENT_ATTEMPT, e->attempt);
    p = rc_wire_put_bytes(p, RC_FIELD_EVENT_WORKER_ID, e->worker_id, wid);
    p = rc_wire_put_enum(p, RC_FIELD_EVENT_CODE, e->code);
    p = rc_wire_put_bytes(p, RC_FIELD_EVENT_CLIENT, e->client, client);
    p = rc_wire_put_bool(p, RC_FIELD_EVENT_STOP_CONFIRMED, e->stop_confirmed);
    p = rc_wire_put_varint(p, RC_FIELD_EVENT_AT_US, e->at_us);
    p = rc_wire_put_varint(p, RC_FIELD_EVENT_LOST, e->lost);
    p = rc_wire_put_varint(p, RC_FIELD_EVENT_PROGRESS_DONE, e->progress_done);
    p = rc_wire_put_varint(p, RC_FIELD_EVENT_PROGRESS_TOTAL, e->progress_total);
    buf->len = (size_t) (p - buf->data);
    return 0;
}

int rc_codec_event_entry(rc_buf_t *buf, uint64_t id, const uint8_t *ev, size_t len, size_t *reply_len)
{
    /* Reply{id, event}: code OK and no message are left out. */
    size_t reply = rc_wire_sz_varint(RC_FIELD_REPLY_ID, id) + rc_wire_sz_msg(RC_FIELD_REPLY_EVENT, len);
    if (rc_buf_reserve(buf, buf->len + rc_wire_sz_msg(RC_FIELD_REPLY_BATCH_REPLIES, reply)) != 0)
        return -1;
    uint8_t *p = rc_wire_put_msg(buf->data + buf->len, RC_FIELD_REPLY_BATCH_REPLIES, reply);
    p = rc_wire_put_varint(p, RC_FIELD_REPLY_ID, id);
    p = rc_wire_put_msg(p, RC_FIELD_REPLY_EVENT, len);
    memcpy(p, ev, len);
    buf->len = (size_t) (p + len - buf->data);
    *reply_len = reply;
    return 0;
}

/* ---------------------------------------------------------------- coverage */

/* Under the names of the request decoder and the reply encoder, whose
 * bodies these are. */
const rc_wire_cover_t rc_codec_observe_covers[] = {
    RC_OBSERVE_COVERS("rc_codec: Request decoder", "rc_codec: Reply encoder"),
    {0},
};
