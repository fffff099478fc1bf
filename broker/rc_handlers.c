/* rc_handlers: what the broker does with each message and timer. The task
 * state machine (rc_task) decides every transition; this file runs the
 * actions it asks for. Called only from the broker thread. */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rc_broker_int.h"
#include "rc_common.h"
#include "rc_key.h"

static inline uint64_t mono_us(const rc_core_t *core)
{
    return core->now_ns / 1000;
}

static inline uint64_t wall_us(const rc_core_t *core)
{
    return (uint64_t) ((int64_t) mono_us(core) + core->wall_off_us);
}

/* Reads the clock for the message or timer pass about to be handled. */
static void clock_read(rc_core_t *core, bool wall)
{
    core->now_ns = rc_mono_ns();
    if (wall)
        core->wall_off_us = (int64_t) rc_wall_us() - (int64_t) mono_us(core);
}

/* Logs a broker event to stderr with --verbose. Only for events that are
 * rare by nature (workers joining and leaving, refused keys), never on the
 * per-message path. */
static void note(const rc_core_t *core, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const rc_core_t *core, const char *fmt, ...)
{
    if (!core->cfg.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "refcache-broker: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---------------------------------------------------------------- helpers */

static bool str_printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* A fresh ref_id from the OS random source; -1 if the OS refused (no
 * guessable or repeated id is ever handed out instead). */
static int new_ref(rc_core_t *core, uint8_t ref[16])
{
    /* Refill in bulk: one getrandom() per 256 tasks, not one per task. */
    if (core->rand_left < 16) {
        if (rc_random_bytes(core->rand_pool, sizeof core->rand_pool) != 0)
            return -1;
        core->rand_left = sizeof core->rand_pool;
    }
    core->rand_left -= 16;
    memcpy(ref, core->rand_pool + core->rand_left, 16);
    return 0;
}

static int parse_ref(const rc_str_t *s, uint8_t ref[16])
{
    return rc_hex_decode(s->ptr, s->len, ref, 16);
}

static void set_state(rc_core_t *core, rc_task_t *t, int state)
{
    core->n_state[t->state]--;
    core->n_state[state]++;
    t->state = (uint8_t) state;
}

/* Sends [rid][""?][body] on a ROUTER without ever blocking. A refusal
 * (peer gone: EHOSTUNREACH, or its queue full: EAGAIN) is counted, never
 * retried: the loop must not wait on one slow peer. */
static int route(void *sock, const void *rid, size_t rid_len, bool envelope, const void *body, size_t len,
                 uint64_t *dropped)
{
    if (zmq_send(sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        goto refused;
    if (envelope && zmq_send(sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        goto refused;
    if (zmq_send(sock, body, len, ZMQ_DONTWAIT) < 0)
        goto refused;
    return 0;
refused:
    if (dropped)
        (*dropped)++;
    return -1;
}

/* ---------------------------------------------------------------- outboxes */

static void outbox_flush(rc_core_t *core, rc_outbox_t *o)
{
    if (!o->n)
        return;
    uint8_t *frame;
    size_t len = rc_wire_batch_frame(o->buf.data + RC_BATCH_HEAD, o->buf.len - RC_BATCH_HEAD, o->n, o->last_len,
                                     RC_REPLY_BATCH_FIELD, &frame);
    if (route(core->clients, o->rid, o->rid_len, o->envelope, frame, len, NULL) != 0)
        core->c.dropped_replies += o->n;
    o->n = 0;
    o->buf.len = RC_BATCH_HEAD;
}

/* The client's open outbox, else a new one (when all are taken, one of
 * them, in turn, is sent to make room). */
static rc_outbox_t *outbox_for(rc_core_t *core, const uint8_t *rid, size_t rid_len, bool envelope)
{
    for (unsigned i = 0; i < core->n_outbox; i++) {
        rc_outbox_t *o = &core->outbox[i];
        if (o->rid_len == rid_len && o->envelope == envelope && memcmp(o->rid, rid, rid_len) == 0)
            return o;
    }
    rc_outbox_t *o;
    if (core->n_outbox < RC_OUTBOXES) {
        o = &core->outbox[core->n_outbox++];
    } else {
        o = &core->outbox[core->outbox_turn++ % RC_OUTBOXES];
        outbox_flush(core, o);
    }
    o->rid_len = (uint8_t) rid_len;
    memcpy(o->rid, rid, rid_len);
    o->envelope = envelope;
    o->buf.len = RC_BATCH_HEAD;
    return o;
}

/* Sends an encoded reply now, or (to a batched request) puts it in the
 * client's outbox. One that would not fit in a batch goes alone. */
static void send_encoded(rc_core_t *core, const uint8_t *rid, size_t rid_len, bool envelope, bool batched,
                         const rc_buf_t *reply)
{
    if (batched && reply->len <= RC_BATCH_BYTES / 2) {
        rc_outbox_t *o = outbox_for(core, rid, rid_len, envelope);
        if (o->n && (o->n >= RC_MAX_BATCH || o->buf.len + reply->len + 6 > RC_BATCH_BYTES))
            outbox_flush(core, o);
        if (rc_codec_batch_entry(&o->buf, reply->data, reply->len) == 0) {
            o->last_len = reply->len;
            o->n++;
            return;
        }
    }
    route(core->clients, rid, rid_len, envelope, reply->data, reply->len, &core->c.dropped_replies);
}

static void send_reply_to(rc_core_t *core, const uint8_t *rid, size_t rid_len, bool envelope, bool batched,
                          const rc_reply_t *r)
{
    if (rc_codec_reply(&core->out, r) != 0) {
        core->c.dropped_replies++;
        return;
    }
    send_encoded(core, rid, rid_len, envelope, batched, &core->out);
}

static void reply(rc_core_t *core, const rc_reply_t *r)
{
    send_reply_to(core, core->rid, core->rid_len, core->envelope, core->batched, r);
}

static void reply_error(rc_core_t *core, uint64_t id, int code, const char *message)
{
    rc_reply_t r = {.id = id, .code = code, .message = message};
    reply(core, &r);
}

static void view_task(rc_core_t *core, const rc_task_t *t, rc_taskview_t *v, char *hex)
{
    rc_hex_encode(t->ref, 16, hex);
    memset(v, 0, sizeof *v);
    v->ref_hex = hex;
    v->state = t->state;
    v->result_size = t->result_len;
    const uint8_t *result = rc_task_result(t);
    if (result) {
        size_t n = t->result_len;
        if (n > core->cfg.inline_limit) {
            n = t->result_len < core->cfg.preview_bytes ? t->result_len : core->cfg.preview_bytes;
            v->result_truncated = true;
        }
        v->result = (rc_bytes_t){result, n};
    }
    v->progress_done = rc_task_progress_done(t);
    v->progress_total = rc_task_progress_total(t);
    v->attempt = t->attempt;
    v->max_retries = t->max_retries;
    v->error_code = t->error_code;
    v->error = rc_task_error(t);
    v->function = t->fn->name;
    v->ns = rc_task_ns(t);
    v->created_at_us = t->created_us;
    v->started_at_us = t->started_us;
    v->finished_at_us = t->finished_us;
    v->stopped_at_us = rc_task_stopped_us(t);
    v->ever_started = t->flags & F_EVER_STARTED;
    if (t->finished_us)
        v->expires_at_us = t->finished_us + (uint64_t) t->ttl_s * 1000000;
}

static void reply_task(rc_core_t *core, uint64_t id, rc_reply_kind_t kind, const rc_task_t *t, bool hit,
                       bool dedup)
{
    rc_taskview_t v;
    char hex[RC_REF_ID_LEN + 1];
    view_task(core, t, &v, hex);
    rc_reply_t r = {.id = id, .code = 0, .kind = kind, .task = &v, .cache_hit = hit, .deduplicated = dedup};
    reply(core, &r);
}

/* ---------------------------------------------------------------- waiters */

/* Takes a waiter off its lane or the heap (each harmless if it is not
 * there). */
static void waiter_unarm(rc_core_t *core, rc_waiter_t *w)
{
    rc_list_remove(&w->lane_link);
    rc_timers_cancel(core->timers, &w->timer);
}

/* Frees a waiter: one with a short routing id came from the spare list. */
static void waiter_release(rc_core_t *core, rc_waiter_t *w)
{
    if (w->rid_len <= RC_WAITER_RID_ROOM)
        rc_spare_put(&core->spare_waiters, w);
    else
        free(w);
}

static void waiter_free(rc_core_t *core, rc_waiter_t *w)
{
    waiter_unarm(core, w);
    if (w->prev)
        w->prev->next = w->next;
    else if (w->task)
        w->task->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    core->waiters--;
    waiter_release(core, w);
}

static void waiter_send(rc_core_t *core, rc_waiter_t *w)
{
    rc_taskview_t v;
    char hex[RC_REF_ID_LEN + 1];
    view_task(core, w->task, &v, hex);
    rc_reply_t r = {.id = w->req_id,
                    .kind = w->kind == W_SUBMIT ? RC_REPLY_SUBMIT : RC_REPLY_TASK,
                    .task = &v,
                    .cache_hit = w->cache_hit,
                    .deduplicated = w->deduplicated};
    send_reply_to(core, w->rid, w->rid_len, w->envelope, w->batched, &r);
}

/* Answers a waiter with its task's state now and frees it. */
static void waiter_answer(rc_core_t *core, rc_waiter_t *w)
{
    waiter_send(core, w);
    waiter_free(core, w);
}

/* The same for a waiter already taken off its task's list. */
static void waiter_answer_detached(rc_core_t *core, rc_waiter_t *w)
{
    waiter_send(core, w);
    waiter_unarm(core, w);
    core->waiters--;
    waiter_release(core, w);
}

/* The lane for waiters of timeout_ms: the one that has it, else one that
 * is empty, else NULL. */
static rc_wait_lane_t *lane_for(rc_core_t *core, uint32_t timeout_ms)
{
    rc_wait_lane_t *free_lane = NULL;
    for (int i = 0; i < RC_WAIT_LANES; i++) {
        rc_wait_lane_t *l = &core->lanes[i];
        if (l->timeout_ms == timeout_ms)
            return l;
        if (!free_lane && rc_list_empty(&l->waiters))
            free_lane = l;
    }
    if (free_lane) {
        rc_timers_cancel(core->timers, &free_lane->timer); /* may still be set for a waiter long gone */
        free_lane->timeout_ms = timeout_ms;
    }
    return free_lane;
}

/* Arms a waiter to be answered at due_us: in a lane if there is one. */
static int waiter_arm(rc_core_t *core, rc_waiter_t *w, uint32_t timeout_ms)
{
    uint64_t due_us = mono_us(core) + (uint64_t) timeout_ms * 1000;
    rc_wait_lane_t *l = lane_for(core, timeout_ms);
    if (!l) {
        w->timer.kind = T_WAITER;
        return rc_timers_set(core->timers, &w->timer, due_us);
    }
    if (!rc_timer_armed(&l->timer) && rc_timers_set(core->timers, &l->timer, due_us) != 0)
        return -1;
    w->due_us = due_us;
    rc_list_push_back(&l->waiters, &w->lane_link);
    return 0;
}

/* A lane's timer fired: answers its waiters that are due (at most budget)
 * and sets the timer for the next one. Returns how many it answered. */
static int lane_fire(rc_core_t *core, rc_wait_lane_t *l, uint64_t now, int budget)
{
    int n = 0;
    rc_list_t *front;
    while ((front = rc_list_front(&l->waiters))) {
        rc_waiter_t *w = rc_container_of(front, rc_waiter_t, lane_link);
        if (w->due_us > now || n == budget) {
            /* A failed re-arm leaves these waiters to be answered by their
             * tasks' ends, or by the lane's next arming. */
            (void) rc_timers_set(core->timers, &l->timer, w->due_us > now ? w->due_us : now);
            break;
        }
        waiter_answer(core, w);
        n++;
    }
    return n;
}

static int waiter_add(rc_core_t *core, rc_task_t *t, uint64_t req_id, int kind, uint32_t timeout_ms,
                      bool dedup)
{
    /* A finished task has nothing to wait for (and its compact record has
     * no waiter list): the caller answers at once. */
    if (rc_state_is_terminal(t->state) || core->waiters >= core->cfg.max_waiters)
        return -1;
    rc_waiter_t *w = core->rid_len <= RC_WAITER_RID_ROOM ? rc_spare_get(&core->spare_waiters)
                                                          : calloc(1, sizeof *w + core->rid_len);
    if (!w)
        return -1;
    w->task = t;
    w->req_id = req_id;
    w->kind = (uint8_t) kind;
    w->deduplicated = dedup;
    w->envelope = core->envelope;
    w->batched = core->batched;
    w->rid_len = (uint8_t) core->rid_len;
    memcpy(w->rid, core->rid, core->rid_len);
    if (timeout_ms > core->cfg.max_wait_ms)
        timeout_ms = core->cfg.max_wait_ms;
    if (waiter_arm(core, w, timeout_ms) != 0) {
        waiter_release(core, w);
        return -1;
    }
    w->next = t->waiters;
    if (t->waiters)
        t->waiters->prev = w;
    t->waiters = w;
    core->waiters++;
    return 0;
}

/* ---------------------------------------------------------------- records */

/* Active records (with room for their dispatch spec) and waiters come from
 * spare lists (rc_spare.h): see rc_core_init. */
static rc_task_t *record_new(rc_core_t *core)
{
    return rc_spare_get(&core->spare_records);
}

/* Frees a record allocated by record_new (active, or terminal but F_FULL). */
static void record_release(rc_core_t *core, rc_task_t *t)
{
    rc_spare_put(&core->spare_records, t);
}

/* Frees the spec unless it is in its record's room. */
static void spec_free(rc_task_t *t)
{
    if (t->spec != t->spec_room)
        free(t->spec);
    t->spec = NULL;
}

static void task_free(rc_core_t *core, rc_task_t *t)
{
    if (!rc_state_is_terminal(t->state)) {
        /* Only an active record has these (a terminal one was shrunk). */
        while (t->waiters)
            waiter_free(core, t->waiters);
        rc_timers_cancel(core->timers, &t->deadline);
        spec_free(t);
    }
    if (!rc_state_is_terminal(t->state) || t->flags & F_FULL)
        free(t->error);
    rc_timers_cancel(core->timers, &t->timer);
    rc_list_remove(&t->link);
    if (t->flags & F_INDEXED)
        rc_table_remove(core->index, t);
    rc_table_remove(core->tasks, t);
    core->n_state[t->state]--;
    if (t->state == RC_COMPLETE)
        core->cache_bytes -= t->result_len;
    if (t->flags & F_EXT)
        free(t->ns);
    if (!rc_state_is_terminal(t->state) || t->flags & F_FULL)
        record_release(core, t);
    else
        free(t);
    core->freed_since_trim++;
}

static void set_error(rc_task_t *t, int code, const char *msg, size_t len)
{
    free(t->error);
    t->error = strndup(msg, len);
    t->error_code = (uint8_t) code;
}

/* Shrinks a task that has just become terminal to its kept fields (with the
 * extension if it needs one) plus its result bytes (a copy of result) or its
 * error text, and puts the new record where the old one was in the tables.
 * Waiters, queue and timers no longer refer to it. Returns the record, which
 * may have moved. */
static rc_task_t *compact(rc_core_t *core, rc_task_t *t, const uint8_t *result, size_t len)
{
    /* Every shrunk FAILED or CANCELLED record has a text, "" at least, and
     * the extension: its worker may still report when it stopped. */
    const char *err = t->state == RC_COMPLETE ? NULL : t->error ? t->error : "";
    size_t err_len = err ? strlen(err) + 1 : 0;
    bool ext = err || t->ns || t->progress_done || t->progress_total || t->stopped_us;
    size_t kept = ext ? RC_TASK_KEPT : RC_TASK_CORE;
    rc_task_t *n = malloc(kept + len + err_len);
    if (!n) {
        /* No room: keep the big record as it is; a result that cannot be
         * kept makes the task fail rather than lie. */
        t->flags |= F_FULL;
        if (len) {
            core->n_state[RC_COMPLETE]--;
            core->n_state[RC_FAILED]++;
            core->c.completed--;
            core->c.failed++;
            core->cache_bytes -= len;
            t->state = RC_FAILED;
            t->result_len = 0;
            set_error(t, REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED, "out of memory keeping the result", 32);
            if (t->flags & F_INDEXED) {
                rc_table_remove(core->index, t);
                t->flags &= (uint8_t) ~F_INDEXED;
            }
        }
        return t;
    }
    memcpy(n, t, kept);
    if (!ext)
        n->flags &= (uint8_t) ~F_EXT;
    rc_list_init(&n->link); /* the copy's links still pointed at the old record */
    if (len)
        memcpy((uint8_t *) n + kept, result, len);
    if (err_len)
        memcpy((uint8_t *) n + kept, err, err_len);
    /* Same keys: the copy takes the old record's slots (which exist). */
    rc_table_replace(core->tasks, t, n);
    if (n->flags & F_INDEXED)
        rc_table_replace(core->index, t, n);
    free(t->error);
    record_release(core, t);
    return n;
}

/* Drops least recently used terminal records while the byte cap or the
 * record cap is exceeded. Bounded by what is over, never a scan. `keep`, the
 * task being handled, is never dropped under its caller. */
static void evict(rc_core_t *core, const rc_task_t *keep)
{
    while (!rc_list_empty(&core->lru) && (core->cache_bytes > core->cfg.cache_bytes ||
                                          rc_table_size(core->tasks) > core->cfg.max_records)) {
        rc_task_t *t = rc_container_of(rc_list_front(&core->lru), rc_task_t, link);
        if (t == keep)
            break;
        core->c.evicted++;
        task_free(core, t);
    }
}

static void lru_touch(rc_core_t *core, rc_task_t *t)
{
    if (rc_state_is_terminal(t->state)) {
        rc_list_remove(&t->link);
        rc_list_push_back(&core->lru, &t->link);
    }
}

/* ---------------------------------------------------------------- dispatch */

static bool serves(const rc_worker_t *w, const rc_fn_t *fn)
{
    for (size_t i = 0; i < w->nfns; i++)
        if (w->fns[i] == fn)
            return true;
    return false;
}

static bool usable(const rc_worker_t *w)
{
    return w->ready && w->hello && !w->refused && w->outstanding < w->credit;
}

/* What a task of fn is expected to cost a worker: its measured service
 * time, or the whole dispatch window while it has never finished one (so a
 * function of unknown length is never queued behind another task). */
static uint64_t estimate_ns(const rc_core_t *core, const rc_fn_t *fn)
{
    return fn->svc_known ? fn->svc_ns : core->window_ns;
}

/* Dispatch ahead (docs/protocol.md, "Dispatch"): a worker takes one more
 * task of fn when it holds none, or when the task it runs has not yet run
 * longer than the dispatch window and all it holds plus this one is expected
 * to be done within it. Short tasks go out in batches; a long one waits in
 * the broker's queue, where a cancel stops it before it starts and whichever
 * worker frees up first takes it; and nothing more goes to a worker whose
 * current task turns out long, whatever its function's average. */
static bool has_room(const rc_core_t *core, const rc_worker_t *w, const rc_fn_t *fn, uint64_t now)
{
    if (w->outstanding == 0)
        return true;
    return core->window_ns > 0 && now - w->busy_since_ns <= core->window_ns &&
           w->backlog_ns + estimate_ns(core, fn) <= core->window_ns;
}

/* An idle worker for fn if there is one, else one with room left. */
static rc_worker_t *pick_worker(rc_core_t *core, const rc_fn_t *fn, uint64_t now)
{
    rc_worker_t *partial = NULL;
    for (rc_list_t *n = core->worker_list.next; n != &core->worker_list; n = n->next) {
        rc_worker_t *w = rc_container_of(n, rc_worker_t, link);
        if (!usable(w) || !serves(w, fn) || !has_room(core, w, fn, now))
            continue;
        if (w->outstanding == 0)
            return w;
        if (!partial)
            partial = w;
    }
    return partial;
}

static void apply(rc_core_t *core, rc_task_t *t, rc_event_t ev, const rc_task_facts_t *facts, int code,
                  rc_worker_t *w, const rc_wmsg_t *msg);

static void assign(rc_core_t *core, rc_task_t *t, rc_worker_t *w)
{
    rc_task_facts_t f = {0};
    apply(core, t, RC_EV_DISPATCH, &f, 0, w, NULL);
}

static void dispatch_fn(rc_core_t *core, rc_fn_t *fn)
{
    uint64_t now = core->now_ns;
    while (fn->queued) {
        rc_worker_t *w = pick_worker(core, fn, now);
        if (!w)
            return;
        rc_task_t *t = rc_container_of(rc_list_front(&fn->queue), rc_task_t, link);
        assign(core, t, w);
    }
}

/* Fills a worker's free credit with the oldest tasks it can run. */
static void dispatch_worker(rc_core_t *core, rc_worker_t *w)
{
    uint64_t now = core->now_ns;
    while (usable(w)) {
        rc_task_t *best = NULL;
        for (size_t i = 0; i < w->nfns; i++) {
            rc_list_t *front = rc_list_front(&w->fns[i]->queue);
            if (!front)
                continue;
            rc_task_t *t = rc_container_of(front, rc_task_t, link);
            if (!best || t->seq < best->seq)
                best = t;
        }
        if (!best || !has_room(core, w, best->fn, now))
            return;
        assign(core, best, w);
    }
}

/* A worker runs what it holds in order, so the slot of the next task to
 * end is usually the one after the last freed: the search starts there. */
static rc_slot_t *slot_find(rc_worker_t *w, const uint8_t ref[16], uint32_t attempt)
{
    for (uint32_t i = 0, k = w->slot_done; i < w->credit; i++, k = k + 1 == w->credit ? 0 : k + 1) {
        rc_slot_t *s = &w->slots[k];
        if (s->used && s->attempt == attempt && memcmp(s->ref, ref, 16) == 0)
            return s;
    }
    return NULL;
}

/* A free slot (the caller checked the credit), searched in dispatch order. */
static rc_slot_t *slot_take(rc_worker_t *w)
{
    for (uint32_t i = 0, k = w->slot_next; i < w->credit; i++, k = k + 1 == w->credit ? 0 : k + 1)
        if (!w->slots[k].used) {
            w->slot_next = k + 1 == w->credit ? 0 : k + 1;
            return &w->slots[k];
        }
    return NULL;
}

static void slot_release(rc_worker_t *w, rc_slot_t *s)
{
    uint32_t k = (uint32_t) (s - w->slots);
    w->slot_done = k + 1 == w->credit ? 0 : k + 1;
    w->backlog_ns = w->backlog_ns > s->est_ns ? w->backlog_ns - s->est_ns : 0;
    s->used = false;
    w->outstanding--;
}

/* A worker finished a task of fn at now: its service time is the time since
 * the task began (the worker runs one task at a time, in order). */
static void learn_service_time(rc_worker_t *w, rc_slot_t *s, uint64_t now)
{
    uint64_t sample = now > w->busy_since_ns ? now - w->busy_since_ns : 0;
    rc_fn_t *fn = s->fn;
    if (!fn->svc_known) {
        fn->svc_ns = sample;
        fn->svc_known = true;
    } else {
        fn->svc_ns = fn->svc_ns - fn->svc_ns / 8 + sample / 8;
    }
}

/* ---------------------------------------------------------------- batches */

static void release_slot(rc_core_t *core, rc_worker_t *w, rc_slot_t *s);

static void batch_discard(rc_worker_t *w)
{
    w->batch_n = 0;
    w->batch_refused = false;
    w->batch.len = RC_BATCH_HEAD;
    rc_list_remove(&w->flush_link);
}

/* Sends a worker's batch: a lone dispatch as itself, several as one
 * DispatchBatch. A batch the worker refuses stays where it is, marked, and
 * the worker gets no more until it speaks again: rc_core_flush then hands
 * its tasks back (retry or fail). That cannot happen here, as this may run
 * in the middle of another task's transition (a cancel notice flushes the
 * batch first), which must not see tasks change under it. */
static void batch_flush(rc_core_t *core, rc_worker_t *w)
{
    if (!w->batch_n || w->batch_refused)
        return;
    uint8_t *body = w->batch.data + RC_BATCH_HEAD;
    size_t len = w->batch.len - RC_BATCH_HEAD;
    size_t head = w->batch_n > 1 ? rc_wire_head_before(body, RC_DISPATCHES_FIELD, len) : 0;
    if (route(core->workers, w->id, w->id_len, false, body - head, len + head, NULL) != 0) {
        w->refused = true;
        w->batch_refused = true;
        return;
    }
    batch_discard(w);
}

/* Puts a task's dispatch (in credit slot `slot`) into its worker's batch;
 * -1 if there is no memory for it. */
static int batch_add(rc_core_t *core, rc_worker_t *w, const rc_task_t *t, uint32_t slot)
{
    if (w->batch_n && (w->batch_n >= w->max_batch || w->batch.len + t->spec_len > RC_BATCH_BYTES))
        batch_flush(core, w);
    if (w->batch_refused)
        return -1; /* a refusing worker gets nothing more (usable() sees to it) */
    if (!w->batch_n)
        w->batch.len = RC_BATCH_HEAD;
    if (rc_buf_reserve(&w->batch, w->batch.len + t->spec_len) != 0)
        return -1;
    if (!w->batch_n)
        rc_list_push_back(&core->to_flush, &w->flush_link);
    memcpy(w->batch.data + w->batch.len, t->spec, t->spec_len);
    w->batch.len += t->spec_len;
    w->batch_slots[w->batch_n++] = slot;
    return 0;
}

void rc_core_flush(rc_core_t *core)
{
    rc_list_t *front;
    while ((front = rc_list_front(&core->to_flush))) {
        rc_worker_t *w = rc_container_of(front, rc_worker_t, flush_link);
        batch_flush(core, w);
        if (!w->batch_refused)
            continue;
        /* Refused (peer gone, or its queue full): each task goes back or
         * fails, as for a refused single dispatch. Handing one back may
         * dispatch it to another worker, whose batch joins the list. */
        uint32_t n = w->batch_n;
        batch_discard(w);
        for (uint32_t i = 0; i < n; i++)
            if (w->slots[w->batch_slots[i]].used)
                release_slot(core, w, &w->slots[w->batch_slots[i]]);
    }
    /* Last, as handing tasks back may have answered waiters. */
    for (unsigned i = 0; i < core->n_outbox; i++)
        outbox_flush(core, &core->outbox[i]);
    core->n_outbox = 0;
}

static void send_cancel_notice(rc_core_t *core, rc_worker_t *w, rc_task_t *t, int reason)
{
    char hex[RC_REF_ID_LEN + 1];
    /* The dispatch it cancels goes first, if it still waits in the batch. */
    batch_flush(core, w);
    rc_hex_encode(t->ref, 16, hex);
    if (rc_codec_cancel_notice(&core->out, hex, t->attempt, reason) != 0)
        return;
    if (route(core->control, w->id, w->id_len, false, core->out.data, core->out.len, NULL) == 0 &&
        core->cancel_bell)
        atomic_fetch_add_explicit(core->cancel_bell, 1, memory_order_release);
}

/* ---------------------------------------------------------------- the actions */

static uint64_t backoff_us(rc_core_t *core, uint32_t attempt)
{
    uint64_t ms = core->cfg.retry_base_ms;
    for (uint32_t i = 1; i < attempt && ms < core->cfg.retry_max_ms; i++)
        ms *= 2;
    if (ms > core->cfg.retry_max_ms)
        ms = core->cfg.retry_max_ms;
    /* Full jitter over the upper half, so retries of many tasks spread out. */
    uint64_t r = 0;
    rc_random_bytes(&r, sizeof r);
    return (ms / 2 + r % (ms / 2 + 1)) * 1000;
}

/* Runs the state machine on t and carries out its actions. code: the error
 * code for failures; w: the worker the event concerns; msg: the worker
 * message (its result bytes are copied into the task). */
static void apply(rc_core_t *core, rc_task_t *t, rc_event_t ev, const rc_task_facts_t *facts, int code,
                  rc_worker_t *w, const rc_wmsg_t *msg)
{
    rc_transition_t tr = rc_task_step(t->state, ev, facts);
    uint32_t a = tr.actions;
    if (a & RC_ACT_STALE)
        core->c.stale_msgs++;
    if (!tr.applied && !(a & RC_ACT_RECORD_STOPPED))
        return;

    if (a & RC_ACT_DEQUEUE) {
        if (rc_list_linked(&t->link)) {
            rc_list_remove(&t->link);
            t->fn->queued--;
        }
    }
    if (a & RC_ACT_NOTIFY_WORKER && t->worker)
        send_cancel_notice(core, t->worker, t, tr.code);
    if (a & RC_ACT_UNBIND)
        t->worker = NULL;
    if (a & RC_ACT_CANCEL_RETRY)
        rc_timers_cancel(core->timers, &t->timer);
    if (a & RC_ACT_CANCEL_DEADLINE)
        rc_timers_cancel(core->timers, &t->deadline);
    if (a & RC_ACT_UNINDEX && t->flags & F_INDEXED) {
        rc_table_remove(core->index, t);
        t->flags &= (uint8_t) ~F_INDEXED;
    }
    if (a & RC_ACT_MARK_STARTED) {
        t->started_us = wall_us(core);
        t->flags |= F_EVER_STARTED;
    }
    if (a & RC_ACT_PROGRESS && msg) {
        t->progress_done = msg->done;
        t->progress_total = msg->total;
    }
    if (a & RC_ACT_RECORD_STOPPED && t->flags & F_EXT) {
        t->stopped_us = wall_us(core);
        if (msg && msg->started)
            t->flags |= F_EVER_STARTED;
    }
    if (a & RC_ACT_RECORD_ERROR) {
        int c = tr.code ? tr.code : code;
        if (tr.code == REFCACHE__V1__CODE__CODE_DEADLINE_EXCEEDED)
            set_error(t, c, "deadline exceeded", 17);
        else if (ev == RC_EV_FAILURE && msg)
            set_error(t, c ? c : REFCACHE__V1__CODE__CODE_UNKNOWN, msg->message.ptr, msg->message.len);
        else
            set_error(t, c, "worker lost", 11);
    }
    /* On the way in only: a shrunk CANCELLED record keeps its text inline. */
    if (tr.next == RC_CANCELLED && t->state != RC_CANCELLED)
        set_error(t, REFCACHE__V1__CODE__CODE_CANCELLED, "cancelled", 9);

    if (a & RC_ACT_ASSIGN) {
        rc_slot_t *s = slot_take(w);
        t->attempt++;
        memcpy(s->ref, t->ref, 16);
        s->attempt = t->attempt;
        s->used = true;
        s->fn = t->fn;
        s->est_ns = estimate_ns(core, t->fn);
        if (w->outstanding == 0)
            w->busy_since_ns = core->now_ns;
        w->backlog_ns += s->est_ns;
        w->outstanding++;
        t->worker = w;
        t->started_us = 0;
        t->progress_done = t->progress_total = 0;
        rc_codec_dispatch_set_attempt(t->spec, t->spec_len, t->attempt);
        /* Round-robin among equals: the worker goes to the back. */
        rc_list_remove(&w->link);
        rc_list_push_back(&core->worker_list, &w->link);
        bool batched = w->max_batch > 1 && batch_add(core, w, t, (uint32_t) (s - w->slots)) == 0;
        if (!batched && route(core->workers, w->id, w->id_len, false, t->spec, t->spec_len, NULL) != 0) {
            /* The worker vanished between its last message and now: treat
             * it as a lost attempt (retry while retries remain), and give it
             * nothing more until it speaks again (or the tick drops it). */
            w->refused = true;
            set_state(core, t, tr.next);
            slot_release(w, s);
            rc_task_facts_t f = {.current = true, .retries_left = t->attempt <= t->max_retries};
            apply(core, t, RC_EV_WORKER_LOST, &f, 0, w, NULL);
            return;
        }
    }
    if (a & RC_ACT_STORE_RESULT && !t->started_us) {
        /* A job that finished before its first step boundary sends no
         * Started: its Result says it ran. */
        t->started_us = wall_us(core);
        t->flags |= F_EVER_STARTED;
    }
    const uint8_t *result = NULL;
    size_t result_len = 0;
    if (a & RC_ACT_STORE_RESULT && msg) {
        result = msg->data.ptr;
        result_len = msg->data.len;
        t->result_len = (uint32_t) result_len;
        core->cache_bytes += result_len;
        core->c.completed++;
    }
    set_state(core, t, tr.next);

    if (a & RC_ACT_SCHEDULE_RETRY) {
        core->c.retries++;
        t->timer.kind = T_RETRY;
        rc_timers_set(core->timers, &t->timer, mono_us(core) + backoff_us(core, t->attempt));
    }
    if (a & RC_ACT_ENQUEUE) {
        rc_list_push_back(&t->fn->queue, &t->link);
        t->fn->queued++;
        dispatch_fn(core, t->fn);
    }
    if (a & RC_ACT_FINISH) {
        t->finished_us = wall_us(core);
        spec_free(t);
        rc_waiter_t *waiters = t->waiters;
        t->waiters = NULL;
        t = compact(core, t, result, result_len);
        if (tr.next == RC_FAILED) {
            core->c.failed++;
            if (tr.code == REFCACHE__V1__CODE__CODE_DEADLINE_EXCEEDED)
                core->c.deadline_exceeded++;
        } else if (tr.next == RC_CANCELLED)
            core->c.cancelled++;
        t->timer.kind = T_TTL;
        rc_timers_set(core->timers, &t->timer, mono_us(core) + (uint64_t) t->ttl_s * 1000000);
        rc_list_push_back(&core->lru, &t->link);
        /* The waiters still point at the old record: answer them from the
         * detached list, never through the task. */
        while (waiters) {
            rc_waiter_t *wt = waiters;
            waiters = wt->next;
            wt->task = t;
            wt->prev = wt->next = NULL;
            waiter_answer_detached(core, wt);
        }
        evict(core, t);
    }
}

/* ---------------------------------------------------------------- client requests */

static void on_submit(rc_core_t *core, rc_request_t *req)
{
    const char *bad = NULL;
    if (req->function.len == 0)
        bad = "submit needs a function name";
    else if (req->function.len > RC_MAX_NAME || !str_printable(req->function.ptr, req->function.len))
        bad = "function name too long or not printable";
    else if (req->ns.len > RC_MAX_NAME || !str_printable(req->ns.ptr, req->ns.len))
        bad = "namespace too long or not printable";
    else if (req->n_params > RC_MAX_PARAMS)
        bad = "too many params";
    else if (req->max_retries > RC_MAX_RETRIES_CAP)
        bad = "max_retries above 100";
    if (bad) {
        reply_error(core, req->id, REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT, bad);
        return;
    }
    char name[RC_MAX_NAME + 1];
    memcpy(name, req->function.ptr, req->function.len);
    name[req->function.len] = '\0';
    rc_fn_t *fn = zhashx_lookup(core->fns, name);
    if (!fn) {
        char msg[RC_MAX_NAME + 64];
        snprintf(msg, sizeof msg, "no worker serves function '%s'", name);
        reply_error(core, req->id, REFCACHE__V1__CODE__CODE_UNIMPLEMENTED, msg);
        return;
    }

    /* A namespace listed as shared is one space for every owner: its cache
     * entries and its tasks are visible to all (a cache hit hands out the
     * first owner's ref_id, which must then be readable). */
    bool shared = false;
    if (core->shared_ns && req->ns.len) {
        char ns[RC_MAX_NAME + 1];
        memcpy(ns, req->ns.ptr, req->ns.len);
        ns[req->ns.len] = '\0';
        shared = zhashx_lookup(core->shared_ns, ns) != NULL;
    }
    uint8_t key[16] = {0};
    bool cacheable = fn->cacheable && !req->no_cache;
    if (cacheable) {
        rc_key_state_t ks;
        rc_key_init(&ks, core->key_secret);
        rc_key_field(&ks, req->ns.ptr, req->ns.len);
        rc_key_field(&ks, req->function.ptr, req->function.len);
        /* Results are shared only among tasks of one owner, unless the
         * namespace is configured as shared. */
        uint64_t owner = shared ? 0 : core->owner;
        rc_key_field(&ks, &owner, sizeof owner);
        /* Params in key order, so the map's wire order does not matter. */
        size_t n = req->n_params;
        size_t order[RC_MAX_PARAMS];
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0; j--) {
                rc_str_t ka, kb, va, vb;
                rc_codec_request_param(req, order[j - 1], &ka, &va);
                rc_codec_request_param(req, order[j], &kb, &vb);
                int c = strcmp(ka.ptr, kb.ptr);
                if (c < 0 || (c == 0 && strcmp(va.ptr, vb.ptr) <= 0))
                    break;
                size_t tmp = order[j];
                order[j] = order[j - 1];
                order[j - 1] = tmp;
            }
        for (size_t i = 0; i < n; i++) {
            rc_str_t k, v;
            rc_codec_request_param(req, order[i], &k, &v);
            rc_key_field(&ks, k.ptr, k.len);
            rc_key_field(&ks, v.ptr, v.len);
        }
        rc_key_field(&ks, req->payload.ptr, req->payload.len);
        rc_key_final(&ks, key);

        rc_task_t *hit = rc_table_get(core->index, key);
        if (hit) {
            bool complete = hit->state == RC_COMPLETE;
            if (complete) {
                core->c.cache_hits++;
                lru_touch(core, hit);
            } else
                core->c.dedup++;
            if (!complete && req->async_timeout_ms > 0 &&
                waiter_add(core, hit, req->id, W_SUBMIT, req->async_timeout_ms, true) == 0)
                return;
            reply_task(core, req->id, RC_REPLY_SUBMIT, hit, complete, !complete);
            return;
        }
    }

    if (core->n_state[RC_PENDING] >= core->cfg.max_pending) {
        core->c.resource_exhausted++;
        reply_error(core, req->id, REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED, "too many pending tasks");
        return;
    }
    rc_task_t *t = record_new(core);
    if (!t) {
        reply_error(core, req->id, REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    t->flags = F_EXT; /* an active record has every field */
    rc_list_init(&t->link);
    if (new_ref(core, t->ref) != 0) {
        record_release(core, t);
        note(core, "submit refused: the OS gave no random bytes for a ref_id");
        reply_error(core, req->id, REFCACHE__V1__CODE__CODE_UNAVAILABLE, "no random source for a ref_id");
        return;
    }
    char hex[RC_REF_ID_LEN + 1];
    rc_hex_encode(t->ref, 16, hex);
    if (rc_codec_dispatch_spec(req, hex, t->spec_room, RC_SPEC_ROOM, &t->spec, &t->spec_len) != 0 ||
        (req->ns.len && !(t->ns = strndup(req->ns.ptr, req->ns.len))) || rc_table_put(core->tasks, t) != 0) {
        spec_free(t);
        free(t->ns);
        record_release(core, t);
        reply_error(core, req->id, REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    memcpy(t->key, key, 16);
    if (cacheable && rc_table_put(core->index, t) == 0)
        t->flags |= F_INDEXED;
    t->fn = fn;
    t->owner = core->owner;
    if (shared)
        t->flags |= F_SHARED_NS;
    t->state = RC_PENDING;
    core->n_state[RC_PENDING]++;
    t->max_retries = req->max_retries ? req->max_retries : core->cfg.default_max_retries;
    t->ttl_s = req->ttl_s ? req->ttl_s : core->cfg.default_ttl_s;
    if (t->ttl_s > core->cfg.max_ttl_s)
        t->ttl_s = core->cfg.max_ttl_s;
    t->seq = core->next_seq++;
    t->created_us = wall_us(core);
    core->c.submitted++;
    if (req->deadline_ms) {
        t->deadline.kind = T_DEADLINE;
        rc_timers_set(core->timers, &t->deadline, mono_us(core) + (uint64_t) req->deadline_ms * 1000);
    }

    /* Queue it and let the dispatcher decide. A dispatch that fails at once
     * (the worker vanished) can even end the task here, and an ended record
     * is shrunk and may move: find it again by its ref. */
    rc_list_push_back(&fn->queue, &t->link);
    fn->queued++;
    uint8_t ref[16];
    memcpy(ref, t->ref, sizeof ref);
    dispatch_fn(core, fn);
    t = rc_table_get(core->tasks, ref);
    if (!t) {
        reply_error(core, req->id, REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED,
                    "task dropped at once (over the record cap)");
        return;
    }

    if (req->async_timeout_ms > 0 &&
        waiter_add(core, t, req->id, W_SUBMIT, req->async_timeout_ms, false) == 0)
        return;
    reply_task(core, req->id, RC_REPLY_SUBMIT, t, false, false);
}

static bool same_ns(const rc_task_t *t, const rc_str_t *ns)
{
    const char *tns = rc_task_ns(t);
    if (!tns)
        return ns->len == 0;
    return strlen(tns) == ns->len && memcmp(tns, ns->ptr, ns->len) == 0;
}

static rc_task_t *lookup_or_reply(rc_core_t *core, const rc_request_t *req, rc_reply_kind_t kind)
{
    uint8_t ref[16];
    if (parse_ref(&req->ref_id, ref) != 0) {
        rc_reply_t r = {.id = req->id,
                        .code = REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT,
                        .message = "ref_id must be 32 hex characters",
                        .kind = kind == RC_REPLY_CANCEL ? RC_REPLY_CANCEL : RC_REPLY_NONE};
        reply(core, &r);
        return NULL;
    }
    rc_task_t *t = rc_table_get(core->tasks, ref);
    /* Another owner's or another namespace's task is indistinguishable
     * from a missing one. */
    if (t && ((t->owner != core->owner && !(t->flags & F_SHARED_NS)) || !same_ns(t, &req->ns)))
        t = NULL;
    if (!t) {
        rc_reply_t r = {.id = req->id,
                        .code = REFCACHE__V1__CODE__CODE_NOT_FOUND,
                        .message = "no such task",
                        .kind = kind == RC_REPLY_CANCEL ? RC_REPLY_CANCEL : RC_REPLY_NONE};
        reply(core, &r);
    }
    return t;
}

static void on_status(rc_core_t *core, rc_request_t *req)
{
    rc_task_t *t = lookup_or_reply(core, req, RC_REPLY_TASK);
    if (!t)
        return;
    lru_touch(core, t);
    reply_task(core, req->id, RC_REPLY_TASK, t, false, false);
}

static void on_wait(rc_core_t *core, rc_request_t *req)
{
    rc_task_t *t = lookup_or_reply(core, req, RC_REPLY_TASK);
    if (!t)
        return;
    if (!rc_state_is_terminal(t->state) && req->timeout_ms > 0) {
        if (waiter_add(core, t, req->id, W_WAIT, req->timeout_ms, false) == 0)
            return;
        core->c.resource_exhausted++;
        reply_error(core, req->id, REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED, "too many waiters");
        return;
    }
    lru_touch(core, t);
    reply_task(core, req->id, RC_REPLY_TASK, t, false, false);
}

static void on_fetch(rc_core_t *core, rc_request_t *req)
{
    rc_task_t *t = lookup_or_reply(core, req, RC_REPLY_FETCH);
    if (!t)
        return;
    if (t->state != RC_COMPLETE) {
        reply_error(core, req->id, REFCACHE__V1__CODE__CODE_FAILED_PRECONDITION,
                    "task has no result (not COMPLETE)");
        return;
    }
    if (req->offset > t->result_len) {
        reply_error(core, req->id, REFCACHE__V1__CODE__CODE_OUT_OF_RANGE,
                    "offset beyond the end of the result");
        return;
    }
    uint64_t len = req->length ? req->length : core->cfg.max_page;
    if (len > core->cfg.max_page)
        len = core->cfg.max_page;
    if (len > t->result_len - req->offset)
        len = t->result_len - req->offset;
    lru_touch(core, t);
    rc_reply_t r = {.id = req->id,
                    .kind = RC_REPLY_FETCH,
                    .data = {rc_task_result(t) ? rc_task_result(t) + req->offset : NULL, (size_t) len},
                    .total_size = t->result_len,
                    .offset = req->offset};
    reply(core, &r);
}

static void on_cancel(rc_core_t *core, rc_request_t *req)
{
    rc_task_t *t = lookup_or_reply(core, req, RC_REPLY_CANCEL);
    if (!t)
        return;
    rc_transition_t tr = rc_task_step(t->state, RC_EV_CANCEL, NULL);
    bool cancelled = tr.applied;
    rc_reply_t r = {.id = req->id, .kind = RC_REPLY_CANCEL, .flag = cancelled, .state = tr.next};
    if (cancelled) {
        rc_task_facts_t f = {0};
        apply(core, t, RC_EV_CANCEL, &f, 0, NULL, NULL);
        r.message = "cancelled";
    } else
        r.message = "task already finished";
    reply(core, &r);
}

static void on_delete(rc_core_t *core, rc_request_t *req)
{
    rc_task_t *t = lookup_or_reply(core, req, RC_REPLY_DELETE);
    if (!t)
        return;
    if (!rc_state_is_terminal(t->state)) {
        reply_error(core, req->id, REFCACHE__V1__CODE__CODE_FAILED_PRECONDITION,
                    "task is not finished; cancel it first");
        return;
    }
    task_free(core, t);
    rc_reply_t r = {.id = req->id, .kind = RC_REPLY_DELETE, .flag = true, .message = "deleted"};
    reply(core, &r);
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t) resident * (uint64_t) sysconf(_SC_PAGESIZE);
}

static void on_stats(rc_core_t *core, rc_request_t *req)
{
    rc_statsview_t s = {0};
    s.tasks_pending = core->n_state[RC_PENDING];
    s.tasks_processing = core->n_state[RC_PROCESSING];
    s.tasks_complete = core->n_state[RC_COMPLETE];
    s.tasks_failed = core->n_state[RC_FAILED];
    s.tasks_cancelled = core->n_state[RC_CANCELLED];
    for (void *fn = zhashx_first(core->fns); fn; fn = zhashx_next(core->fns))
        s.queue_depth += ((rc_fn_t *) fn)->queued;
    for (rc_list_t *n = core->worker_list.next; n != &core->worker_list; n = n->next) {
        rc_worker_t *w = rc_container_of(n, rc_worker_t, link);
        /* Only a worker seen on both channels can take tasks: one that has
         * sent its ControlHello but not yet its Ready is still connecting. */
        if (!w->ready || !w->hello)
            continue;
        s.workers++;
        if (w->outstanding)
            s.workers_busy++;
    }
    s.cache_bytes = core->cache_bytes;
    s.cache_entries = rc_table_size(core->index);
    s.submitted_total = core->c.submitted;
    s.completed_total = core->c.completed;
    s.failed_total = core->c.failed;
    s.cancelled_total = core->c.cancelled;
    s.cache_hits_total = core->c.cache_hits;
    s.dedup_total = core->c.dedup;
    s.expired_total = core->c.expired;
    s.evicted_total = core->c.evicted;
    s.retries_total = core->c.retries;
    s.workers_lost_total = core->c.workers_lost;
    s.bad_requests_total = core->c.bad_requests;
    s.bad_worker_msgs_total = core->c.bad_worker_msgs;
    s.stale_msgs_total = core->c.stale_msgs;
    s.dropped_replies_total = core->c.dropped_replies;
    s.waiters = core->waiters;
    s.rss_bytes = rss_bytes();
    s.uptime_ms = (mono_us(core) - core->started_mono_us) / 1000;
    s.requests_total = core->c.requests;
    s.resource_exhausted_total = core->c.resource_exhausted;
    s.deadline_exceeded_total = core->c.deadline_exceeded;
    s.version = RC_VERSION;
    rc_reply_t r = {.id = req->id, .kind = RC_REPLY_STATS, .stats = &s};
    reply(core, &r);
}

/* Handles one Request (data: its bytes; frame: the frame it came in, for
 * its CURVE key), or each of a batch's; returns how many it handled. */
static int on_request(rc_core_t *core, const uint8_t *data, size_t len, zmq_msg_t *frame)
{
    rc_request_t req;
    const char *why = NULL;
    if (rc_codec_request(data, len, &req, &why) != 0) {
        core->c.requests++;
        core->c.bad_requests++;
        reply_error(core, req.id, REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT, why);
        rc_codec_request_release(&req);
        return 1;
    }
    if (req.kind == RC_REQ_BATCH) {
        int n = 0;
        rc_bytes_t entry;
        if (core->batched || req.n_entries > RC_MAX_BATCH_REQS) {
            /* Refused whole: one frame must not hold the loop for long. */
            core->c.requests++;
            core->c.bad_requests++;
            reply_error(core, req.id, REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT,
                        core->batched ? "a RequestBatch may not hold another"
                                      : "a RequestBatch holds at most " RC_STR(RC_MAX_BATCH_REQS) " requests");
            n = 1;
        } else {
            core->batched = true;
            while (rc_codec_request_next(&req, &core->scratch, &entry))
                n += on_request(core, entry.ptr, entry.len, frame);
            core->batched = false;
        }
        if (!n) {
            core->c.requests++;
            core->c.bad_requests++;
            reply_error(core, req.id, REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT, "an empty RequestBatch");
            n = 1;
        }
        rc_codec_request_release(&req);
        return n;
    }
    core->c.requests++;
    core->owner = 0;
    if (core->client_keys) {
        /* With CURVE the ZAP handler let in any allowed key (client or
         * worker); this channel takes only client keys. Connections over
         * inproc (in-process) carry no key and are trusted. */
        const char *key = zmq_msg_gets(frame, "User-Id");
        if (key && !zhashx_lookup(core->client_keys, key)) {
            core->c.bad_requests++;
            note(core, "request from key %s refused: not a client key", key);
            reply_error(core, req.id, REFCACHE__V1__CODE__CODE_PERMISSION_DENIED,
                        "this key may not act as a client");
            rc_codec_request_release(&req);
            return 1;
        }
        if (key)
            core->owner = rc_core_owner_of(core, key);
    }
    switch (req.kind) {
    case RC_REQ_SUBMIT:
        on_submit(core, &req);
        break;
    case RC_REQ_STATUS:
        on_status(core, &req);
        break;
    case RC_REQ_WAIT:
        on_wait(core, &req);
        break;
    case RC_REQ_FETCH:
        on_fetch(core, &req);
        break;
    case RC_REQ_CANCEL:
        on_cancel(core, &req);
        break;
    case RC_REQ_DELETE:
        on_delete(core, &req);
        break;
    case RC_REQ_STATS:
        on_stats(core, &req);
        break;
    case RC_REQ_BATCH:
        break; /* handled above */
    }
    rc_codec_request_release(&req);
    return 1;
}

int rc_core_client_msg(rc_core_t *core, zmq_msg_t *frames, int nframes)
{
    clock_read(core, false);
    core->rid = zmq_msg_data(&frames[0]);
    core->rid_len = zmq_msg_size(&frames[0]);
    core->envelope = false;
    core->batched = false;
    int body = 1;
    if (nframes == 3 && zmq_msg_size(&frames[1]) == 0) {
        core->envelope = true; /* a REQ client: ["", body] */
        body = 2;
    } else if (nframes != 2) {
        core->c.requests++;
        core->c.bad_requests++;
        core->envelope = nframes >= 2 && zmq_msg_size(&frames[1]) == 0;
        reply_error(core, 0, REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT,
                    "expected one Request frame (or an empty delimiter and one Request frame)");
        return 1;
    }
    return on_request(core, zmq_msg_data(&frames[body]), zmq_msg_size(&frames[body]), &frames[body]);
}

/* ---------------------------------------------------------------- workers */

static rc_worker_t *worker_lookup(rc_core_t *core, const zmq_msg_t *rid_frame)
{
    size_t len = zmq_msg_size(rid_frame);
    char id[RC_MAX_ROUTING_ID + 1];
    if (len == 0 || len > RC_MAX_ROUTING_ID)
        return NULL;
    memcpy(id, zmq_msg_data((zmq_msg_t *) rid_frame), len);
    id[len] = '\0';
    if (strlen(id) != len)
        return NULL;
    return zhashx_lookup(core->worker_ids, id);
}

static rc_worker_t *worker_get_or_new(rc_core_t *core, zmq_msg_t *rid_frame)
{
    rc_worker_t *w = worker_lookup(core, rid_frame);
    if (w)
        return w;
    size_t len = zmq_msg_size(rid_frame);
    if (len == 0 || len > RC_MAX_ROUTING_ID || !str_printable(zmq_msg_data(rid_frame), len) ||
        memchr(zmq_msg_data(rid_frame), 0, len))
        return NULL;
    w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    memcpy(w->id, zmq_msg_data(rid_frame), len);
    w->id_len = len;
    w->last_seen_us = mono_us(core);
    zhashx_insert(core->worker_ids, w->id, w);
    rc_list_push_back(&core->worker_list, &w->link);
    return w;
}

/* Empties a credit slot of a worker that will not run its task: the task
 * goes back (retry) or fails, as for a lost worker. */
static void release_slot(rc_core_t *core, rc_worker_t *w, rc_slot_t *s)
{
    rc_task_t *t = rc_table_get(core->tasks, s->ref);
    slot_release(w, s);
    if (t && t->state == RC_PROCESSING && t->worker == w && t->attempt == s->attempt) {
        rc_task_facts_t f = {.current = true, .retries_left = t->attempt <= t->max_retries};
        apply(core, t, RC_EV_WORKER_LOST, &f, 0, w, NULL);
    }
}

/* Empties every credit slot of a worker whose session is over; what waited
 * in its batch is not sent. */
static void release_all(rc_core_t *core, rc_worker_t *w)
{
    batch_discard(w);
    for (uint32_t i = 0; i < w->credit; i++)
        if (w->slots[i].used)
            release_slot(core, w, &w->slots[i]);
}

static void worker_free(rc_worker_t *w)
{
    free(w->fns);
    free(w->slots);
    free(w->batch_slots);
    rc_buf_free(&w->batch);
    free(w);
}

/* Forgets a worker: every task it ran goes back (retry) or fails. */
static void worker_drop(rc_core_t *core, rc_worker_t *w, bool lost)
{
    if (lost) {
        core->c.workers_lost++;
        note(core, "worker %s lost (silent for %u heartbeats); its %u task(s) retried or failed", w->id,
             core->cfg.liveness, w->outstanding);
    }
    release_all(core, w);
    rc_list_remove(&w->link);
    zhashx_delete(core->worker_ids, w->id);
    worker_free(w);
}

static void reannounce(rc_core_t *core, const zmq_msg_t *rid)
{
    if (rc_codec_broker_reannounce(&core->out) == 0)
        route(core->workers, zmq_msg_data((zmq_msg_t *) rid), zmq_msg_size(rid), false, core->out.data,
              core->out.len, NULL);
}

static void on_ready(rc_core_t *core, rc_worker_t *w, rc_wmsg_t *m)
{
    /* A second Ready means the worker restarted its session: whatever it
     * held is gone on its side. */
    if (w->ready) {
        note(core, "worker %s announced itself again; its %u task(s) retried or failed", w->id,
             w->outstanding);
        release_all(core, w);
    }
    size_t n = m->n_functions;
    rc_fn_t **fns = calloc(n ? n : 1, sizeof *fns);
    if (!fns)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        rc_str_t name = rc_codec_wmsg_function(m, i);
        if (name.len == 0 || name.len > RC_MAX_NAME || !str_printable(name.ptr, name.len))
            continue;
        rc_fn_t *fn = zhashx_lookup(core->fns, name.ptr);
        if (!fn) {
            fn = calloc(1, sizeof *fn);
            if (!fn || !(fn->name = strdup(name.ptr))) {
                free(fn);
                continue;
            }
            rc_list_init(&fn->queue);
            zhashx_insert(core->fns, fn->name, fn);
        }
        for (size_t j = 0; j < m->n_cacheable; j++)
            if (strcmp(rc_codec_wmsg_cacheable(m, j).ptr, name.ptr) == 0)
                fn->cacheable = true;
        fns[k++] = fn;
    }
    uint32_t credit = m->credit == 0 ? 1 : m->credit > RC_MAX_CREDIT ? RC_MAX_CREDIT : m->credit;
    if (credit != w->credit) {
        /* Every slot is free here (a new worker, or release_all above). */
        rc_slot_t *slots = calloc(credit, sizeof *slots);
        uint32_t *batch_slots = calloc(credit, sizeof *batch_slots);
        if (!slots || !batch_slots) {
            free(slots);
            free(batch_slots);
            free(fns);
            return;
        }
        free(w->slots);
        free(w->batch_slots);
        w->slots = slots;
        w->batch_slots = batch_slots;
        w->credit = credit;
        w->slot_next = w->slot_done = 0;
    }
    free(w->fns);
    w->fns = fns;
    w->nfns = k;
    w->max_batch = m->max_batch < RC_MAX_BATCH ? m->max_batch : RC_MAX_BATCH;
    if (w->max_batch > w->credit)
        w->max_batch = w->credit;
    w->ready = true;
    note(core, "worker %s ready: %zu function(s), credit %u", w->id, w->nfns, w->credit);
    dispatch_worker(core, w);
}

uint64_t rc_core_owner_of(rc_core_t *core, const char *key)
{
    rc_key_state_t ks;
    uint8_t digest[16];
    uint64_t owner;
    rc_key_init(&ks, core->key_secret);
    rc_key_field(&ks, key, strlen(key));
    rc_key_final(&ks, digest);
    memcpy(&owner, digest, sizeof owner);
    return owner ? owner : 1; /* 0 means "no CURVE identity" */
}

/* With CURVE, only worker keys may speak on the work and control channels. */
static bool worker_key_ok(rc_core_t *core, zmq_msg_t *frame)
{
    if (!core->worker_keys)
        return true;
    const char *key = zmq_msg_gets(frame, "User-Id");
    return !key || zhashx_lookup(core->worker_keys, key);
}

/* A worker's message about one task (Started, Progress, Result, Failure,
 * CancelAck). Returns true if it ended the worker's hold on a credit slot. */
static bool on_task_msg(rc_core_t *core, rc_worker_t *w, const rc_wmsg_t *m)
{
    uint8_t ref[16];
    if (parse_ref(&m->ref_id, ref) != 0) {
        core->c.bad_worker_msgs++;
        return false;
    }
    rc_slot_t *slot = slot_find(w, ref, m->attempt);
    rc_task_t *t = rc_table_get(core->tasks, ref);
    rc_task_facts_t f = {
        .current = t && slot && t->attempt == m->attempt &&
                   (m->kind == RC_WMSG_CANCEL_ACK || (t->state == RC_PROCESSING && t->worker == w)),
        .retryable = m->retryable,
        .retries_left = t && t->attempt <= t->max_retries,
    };
    /* A Result, Failure or CancelAck ends the worker's hold on the task,
     * whatever the broker thinks of the task now. */
    bool ends = m->kind == RC_WMSG_RESULT || m->kind == RC_WMSG_FAILURE || m->kind == RC_WMSG_CANCEL_ACK;
    if (ends && slot) {
        uint64_t now = core->now_ns;
        /* A cancelled task's time says nothing of its function's. */
        if (m->kind != RC_WMSG_CANCEL_ACK)
            learn_service_time(w, slot, now);
        /* The running task ended (a held one dropped on a cancel did not
         * run): the next held one begins now. */
        if (m->kind != RC_WMSG_CANCEL_ACK || m->started)
            w->busy_since_ns = now;
        slot_release(w, slot);
    }
    if (!t) {
        core->c.stale_msgs++;
    } else {
        static const rc_event_t ev_of[] = {
            [RC_WMSG_STARTED] = RC_EV_STARTED,       [RC_WMSG_PROGRESS] = RC_EV_PROGRESS,
            [RC_WMSG_RESULT] = RC_EV_RESULT,         [RC_WMSG_FAILURE] = RC_EV_FAILURE,
            [RC_WMSG_CANCEL_ACK] = RC_EV_CANCEL_ACK,
        };
        int code = m->code;
        if (code < 0 || code > 16)
            code = REFCACHE__V1__CODE__CODE_UNKNOWN;
        apply(core, t, ev_of[m->kind], &f, code, w, m);
    }
    return ends;
}

int rc_core_worker_msg(rc_core_t *core, zmq_msg_t *frames, int nframes)
{
    clock_read(core, false);
    if (nframes != 2 || !worker_key_ok(core, &frames[1])) {
        core->c.bad_worker_msgs++;
        return 1;
    }
    rc_wmsg_t m;
    const char *why;
    if (rc_codec_wmsg(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), &m, &why) != 0) {
        core->c.bad_worker_msgs++;
        rc_codec_wmsg_release(&m);
        return 1;
    }
    rc_worker_t *w =
        m.kind == RC_WMSG_READY ? worker_get_or_new(core, &frames[0]) : worker_lookup(core, &frames[0]);
    if (!w || (!w->ready && m.kind != RC_WMSG_READY)) {
        /* A worker we do not know (we restarted, or declared it lost): it
         * must announce itself again before it gets or returns work. */
        if (!w)
            core->c.stale_msgs++;
        reannounce(core, &frames[0]);
        rc_codec_wmsg_release(&m);
        return 1;
    }
    w->last_seen_us = mono_us(core);
    w->refused = false;
    if (m.kind == RC_WMSG_READY) {
        on_ready(core, w, &m);
        rc_codec_wmsg_release(&m);
        return 1;
    }
    if (m.kind == RC_WMSG_HEARTBEAT) {
        rc_codec_wmsg_release(&m);
        return 1;
    }

    bool ends = false;
    if (m.kind == RC_WMSG_RESULTS) {
        for (size_t i = 0; i < m.n_results; i++) {
            rc_wmsg_t one;
            rc_codec_wmsg_result(&m, i, &one);
            ends |= on_task_msg(core, w, &one);
        }
    } else {
        ends = on_task_msg(core, w, &m);
    }
    int n = m.kind == RC_WMSG_RESULTS ? (int) m.n_results : 1;
    rc_codec_wmsg_release(&m);
    if (ends)
        dispatch_worker(core, w);
    return n > 0 ? n : 1;
}

int rc_core_control_msg(rc_core_t *core, zmq_msg_t *frames, int nframes)
{
    clock_read(core, false);
    if (nframes != 2 || !worker_key_ok(core, &frames[1]) ||
        rc_codec_control_hello(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1])) != 0) {
        core->c.bad_worker_msgs++;
        return 1;
    }
    rc_worker_t *w = worker_get_or_new(core, &frames[0]);
    if (!w) {
        core->c.bad_worker_msgs++;
        return 1;
    }
    w->hello = true;
    w->last_seen_us = mono_us(core);
    if (w->ready)
        dispatch_worker(core, w);
    return 1;
}

/* ---------------------------------------------------------------- timers */

/* After many records were dropped (TTL, eviction, delete), hand the freed
 * heap back to the OS: glibc keeps it otherwise, and the broker's resident
 * memory would stay at its high-water mark. At most once per tick. */
#define RC_TRIM_AFTER 4096

static void tick(rc_core_t *core, uint64_t now)
{
    if (core->freed_since_trim >= RC_TRIM_AFTER) {
        malloc_trim(0);
        core->freed_since_trim = 0;
    }
    /* Heartbeats out, and lost workers found. Workers are few (threads, not
     * tasks), so one pass per interval is cheap. */
    uint64_t limit = (uint64_t) core->cfg.heartbeat_ms * core->cfg.liveness * 1000;
    if (rc_codec_broker_heartbeat(&core->out) != 0)
        return;
    rc_list_t *n = core->worker_list.next;
    while (n != &core->worker_list) {
        rc_worker_t *w = rc_container_of(n, rc_worker_t, link);
        n = n->next;
        if (now - w->last_seen_us > limit) {
            worker_drop(core, w, true);
            continue;
        }
        if (w->ready)
            route(core->workers, w->id, w->id_len, false, core->out.data, core->out.len, NULL);
    }
}

uint64_t rc_core_timers(rc_core_t *core, uint64_t now)
{
    clock_read(core, true);
    /* Bounded per call so a burst of expiries cannot stall the loop. */
    for (int budget = 4096; budget > 0; budget--) {
        rc_timer_t *tm = rc_timers_pop_due(core->timers, now);
        if (!tm)
            break;
        switch (tm->kind) {
        case T_TICK:
            tick(core, now);
            rc_timers_set(core->timers, &core->tick, now + (uint64_t) core->cfg.heartbeat_ms * 1000);
            break;
        case T_WAITER: {
            rc_waiter_t *w = rc_container_of(tm, rc_waiter_t, timer);
            waiter_answer(core, w);
            break;
        }
        case T_WAIT_LANE: {
            int n = lane_fire(core, rc_container_of(tm, rc_wait_lane_t, timer), now, budget);
            if (n > 1)
                budget -= n - 1;
            break;
        }
        case T_DEADLINE: {
            rc_task_t *t = rc_container_of(tm, rc_task_t, deadline);
            apply(core, t, RC_EV_DEADLINE, NULL, 0, NULL, NULL);
            break;
        }
        case T_RETRY: {
            rc_task_t *t = rc_container_of(tm, rc_task_t, timer);
            apply(core, t, RC_EV_RETRY_DUE, NULL, 0, NULL, NULL);
            break;
        }
        case T_TTL: {
            rc_task_t *t = rc_container_of(tm, rc_task_t, timer);
            core->c.expired++;
            task_free(core, t);
            break;
        }
        }
    }
    rc_core_flush(core); /* what a retry or the tick dispatched */
    rc_timer_t *first = rc_timers_first(core->timers);
    return first ? first->due_us : UINT64_MAX;
}

/* ---------------------------------------------------------------- life cycle */

static void fn_destroy(void **item)
{
    rc_fn_t *fn = *item;
    free(fn->name);
    free(fn);
    *item = NULL;
}

int rc_core_init(rc_core_t *core, const rc_broker_config_t *cfg)
{
    memset(core, 0, sizeof *core);
    core->cfg = *cfg;
    core->window_ns = (uint64_t) cfg->dispatch_window_us * 1000;
    core->timers = rc_timers_new();
    core->tasks = rc_table_new(offsetof(rc_task_t, ref));
    core->index = rc_table_new(offsetof(rc_task_t, key));
    core->fns = zhashx_new();
    core->worker_ids = zhashx_new();
    if (!core->timers || !core->tasks || !core->index || !core->fns || !core->worker_ids)
        return -1;
    zhashx_set_destructor(core->fns, fn_destroy);
    /* At most 1 MiB or so of each kept for reuse. */
    core->spare_records = (rc_spare_t){.size = sizeof(rc_task_t) + RC_SPEC_ROOM, .cap = 4096};
    core->spare_waiters = (rc_spare_t){.size = sizeof(rc_waiter_t) + RC_WAITER_RID_ROOM, .cap = 8192};
    rc_list_init(&core->worker_list);
    rc_list_init(&core->lru);
    rc_list_init(&core->to_flush);
    for (int i = 0; i < RC_WAIT_LANES; i++) {
        core->lanes[i].timer.kind = T_WAIT_LANE;
        rc_list_init(&core->lanes[i].waiters);
    }
    if (rc_random_bytes(core->key_secret, sizeof core->key_secret) != 0)
        return -1;
    clock_read(core, true);
    core->started_mono_us = mono_us(core);
    core->tick.kind = T_TICK;
    return rc_timers_set(core->timers, &core->tick,
                         core->started_mono_us + (uint64_t) cfg->heartbeat_ms * 1000);
}

void rc_core_fini(rc_core_t *core)
{
    /* Tasks first (they reference functions), then workers. Tasks that are
     * PROCESSING or waiting for a retry are in no list: the table is the one
     * place that has them all. */
    if (core->tasks) {
        size_t n = 0;
        void **all = rc_table_snapshot(core->tasks, &n);
        for (size_t i = 0; all && i < n; i++) {
            rc_task_t *t = all[i];
            if (rc_list_linked(&t->link) && t->state == RC_PENDING)
                t->fn->queued--;
            task_free(core, t);
        }
        free(all);
    }
    while (!rc_list_empty(&core->worker_list)) {
        rc_worker_t *w = rc_container_of(rc_list_front(&core->worker_list), rc_worker_t, link);
        rc_list_remove(&w->link);
        worker_free(w);
    }
    zhashx_destroy(&core->worker_ids);
    zhashx_destroy(&core->client_keys);
    zhashx_destroy(&core->worker_keys);
    zhashx_destroy(&core->shared_ns);
    rc_buf_free(&core->out);
    rc_buf_free(&core->scratch);
    rc_spare_drain(&core->spare_records);
    rc_spare_drain(&core->spare_waiters);
    for (int i = 0; i < RC_OUTBOXES; i++)
        rc_buf_free(&core->outbox[i].buf);
    rc_timers_destroy(&core->timers);
    rc_table_destroy(&core->index);
    zhashx_destroy(&core->fns);
    rc_table_destroy(&core->tasks);
}
