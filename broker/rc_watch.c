/* rc_watch: watchers and the bounded event stream they get (see
 * rc_watch.h). */
#include "rc_watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rc_common.h"
#include "rc_core.h"
#include "rc_log.h"

#define CODE(name) REFCACHE__V1__CODE__CODE_##name

typedef struct {
    rc_list_t link; /* rc_watch_t.watchers */
    uint64_t id;    /* the Watch request's id: every Event carries it */
    uint8_t rid[RC_MAX_ROUTING_ID];
    uint8_t rid_len;
    uint64_t owner;
    bool admin;
    bool by_ref, by_fn, all_ns;
    uint8_t ref[16];      /* by_ref: the handle watched ... */
    uint8_t task_ref[16]; /* ... and the task it is on (the same for a task's own handle) */
    char *fn_name;        /* by_fn: the function's name ... */
    const rc_fn_t *fn;    /* ... and the broker's record of it, once known */
    char *ns;             /* !all_ns: the namespace (NULL: the default one) */
    uint32_t window;
    uint64_t sent, acked; /* events handed to the socket; events the watcher read */
    uint64_t lost;        /* events dropped since the last one it got */
    uint64_t last_send_us, stalled_since_us;
    rc_buf_t batch; /* RC_BATCH_HEAD bytes of room, then ReplyBatch entries */
    uint32_t batch_n;
    size_t last_len;
} watcher_t;

void rc_watch_init(rc_watch_t *self)
{
    memset(self, 0, sizeof *self);
    rc_list_init(&self->watchers);
}

static void watcher_free(rc_watch_t *self, watcher_t *w)
{
    self->in_flight -= w->sent - w->acked;
    self->n--;
    rc_list_remove(&w->link);
    rc_buf_free(&w->batch);
    free(w->fn_name);
    free(w->ns);
    free(w);
}

void rc_watch_fini(rc_watch_t *self)
{
    while (!rc_list_empty(&self->watchers))
        watcher_free(self, rc_container_of(rc_list_front(&self->watchers), watcher_t, link));
    rc_buf_free(&self->ev);
    rc_buf_free(&self->aux);
}

/* ---------------------------------------------------------------- sending */

/* Whether w may take n more events now: within its window and the total. */
static bool room(const rc_watch_t *self, const watcher_t *w, uint64_t n)
{
    return w->sent + n - w->acked <= w->window && self->in_flight + n <= RC_WATCH_IN_FLIGHT;
}

/* Sends w's batch. -1 when w's connection is gone (the caller frees w); a
 * send refused for a full queue loses the batch's events (counted). */
static int send_batch(rc_core_t *core, rc_watch_t *self, watcher_t *w)
{
    if (!w->batch_n)
        return 0;
    uint8_t *frame;
    size_t len = rc_wire_batch_frame(w->batch.data + RC_BATCH_HEAD, w->batch.len - RC_BATCH_HEAD, w->batch_n,
                                     w->last_len, RC_REPLY_BATCH_FIELD, &frame);
    uint32_t n = w->batch_n;
    w->batch_n = 0;
    w->batch.len = RC_BATCH_HEAD;
    w->last_send_us = rc_core_mono_us(core);
    if (rc_route(core->clients, w->rid, w->rid_len, false, frame, len, NULL) == 0)
        return 0;
    if (zmq_errno() == EHOSTUNREACH)
        return -1;
    w->sent -= n;
    self->in_flight -= n;
    self->events_total -= n;
    w->lost += n;
    self->lost_total += n;
    return 0;
}

/* Puts an encoded Event in w's batch (the caller checked the room); sends
 * the batch when it is full. -1 when w's connection turned out gone. */
static int append(rc_core_t *core, rc_watch_t *self, watcher_t *w, const rc_buf_t *ev)
{
    size_t reply_len;
    if (rc_codec_event_entry(&w->batch, w->id, ev->data, ev->len, &reply_len) != 0) {
        w->lost++;
        self->lost_total++;
        return 0;
    }
    w->last_len = reply_len;
    w->batch_n++;
    w->sent++;
    self->in_flight++;
    self->events_total++;
    if (w->batch_n >= RC_WATCH_BATCH || w->batch.len >= RC_BATCH_BYTES / 2)
        return send_batch(core, self, w);
    return 0;
}

/* An event of its own for w (WATCHING, LOST, HEARTBEAT, END). */
static int append_kind(rc_core_t *core, rc_watch_t *self, watcher_t *w, int kind, int code)
{
    rc_eventview_t v = {.kind = kind,
                        .code = code,
                        .lost = kind == RC_EVK_LOST || kind == RC_EVK_END ? w->lost : 0,
                        .at_us = rc_core_wall_us(core)};
    if (rc_codec_event(&self->aux, &v) != 0)
        return 0;
    if (kind == RC_EVK_LOST || kind == RC_EVK_END)
        w->lost = 0;
    return append(core, self, w, &self->aux);
}

/* ---------------------------------------------------------------- notes */

/* A note that only a handle makes (join, leave, forget: an extra one, or
 * the task's own when note->handle is NULL) concerns that handle; any
 * other concerns the task and every handle on it. */
static bool handle_note(const rc_note_t *note)
{
    return (note->actions & (RC_ACT_LEAVE | RC_ACT_FORGET | RC_ACT_ATTACH)) != 0;
}

static bool wants(const watcher_t *w, const rc_note_t *note)
{
    const rc_task_t *t = note->task;
    const rc_handle_t *h = note->handle;
    if (!w->admin && (h ? h->owner : t->owner) != w->owner)
        return false;
    if (w->by_ref) {
        const uint8_t *ref = handle_note(note) ? (h ? h->ref : t->ref) : t->ref;
        if (memcmp(handle_note(note) ? w->ref : w->task_ref, ref, 16) != 0)
            return false;
    }
    if (w->by_fn && t->fn != w->fn) {
        if (w->fn || strcmp(w->fn_name, t->fn->name) != 0)
            return false;
        ((watcher_t *) w)->fn = t->fn; /* the function's record lives as long as the broker */
    }
    if (!w->all_ns) {
        const char *ns = rc_task_ns(t);
        if (ns ? !w->ns || strcmp(ns, w->ns) != 0 : w->ns != NULL)
            return false;
    }
    return true;
}

/* The worker an event concerns: the one that sent it, that it went to, or
 * that held the task until this transition. */
static const char *worker_of(const rc_note_t *note)
{
    const rc_peer_t *p = note->cause->peer ? note->cause->peer : note->worker;
    return p ? p->id : NULL;
}

static void view_of(rc_core_t *core, const rc_note_t *note, const char *client, char *hex, rc_eventview_t *v)
{
    const rc_task_t *t = note->task;
    /* A handle's own note names the handle; the task's, the task. */
    rc_hex_encode(handle_note(note) && note->handle ? note->handle->ref : t->ref, 16, hex);
    *v = (rc_eventview_t){
        .kind = RC_EVK_TRANSITION,
        .ref_hex = hex,
        .function = t->fn->name,
        .ns = rc_task_ns(t),
        .old_state = note->from == RC_NEW ? 0 : note->from,
        .new_state = note->to == RC_GONE ? 0 : note->to,
        .event = rc_task_event_name(note->event),
        .attempt = t->attempt,
        .worker_id = worker_of(note),
        .code = note->code,
        .client = client,
        .stop_confirmed = (note->actions & RC_ACT_RECORD_STOPPED) != 0,
        .at_us = rc_core_wall_us(core),
    };
    if (note->event == RC_EV_PROGRESS) {
        v->progress_done = rc_task_progress_done(t);
        v->progress_total = rc_task_progress_total(t);
    }
}

void rc_watch_note(rc_core_t *core, rc_watch_t *self, const rc_note_t *note, const char *client)
{
    bool encoded = false;
    rc_list_t *n = self->watchers.next;
    while (n != &self->watchers) {
        watcher_t *w = rc_container_of(n, watcher_t, link);
        n = n->next;
        if (!wants(w, note))
            continue;
        if (!encoded) {
            char hex[RC_REF_ID_LEN + 1];
            rc_eventview_t v;
            view_of(core, note, client, hex, &v);
            if (rc_codec_event(&self->ev, &v) != 0)
                return;
            encoded = true;
        }
        if (!room(self, w, w->lost ? 2 : 1)) {
            w->lost++;
            self->lost_total++;
            if (!w->stalled_since_us && w->sent + 1 - w->acked > w->window)
                w->stalled_since_us = rc_core_mono_us(core);
            continue;
        }
        if ((w->lost && append_kind(core, self, w, RC_EVK_LOST, 0) != 0) ||
            append(core, self, w, &self->ev) != 0) {
            rc_log(RC_LOG_INFO, "watch", "watcher %llu gone (its connection closed)",
                   (unsigned long long) w->id);
            watcher_free(self, w);
        }
    }
}

/* ---------------------------------------------------------------- requests */

static watcher_t *find(rc_core_t *core, rc_watch_t *self, uint64_t id)
{
    for (rc_list_t *n = self->watchers.next; n != &self->watchers; n = n->next) {
        watcher_t *w = rc_container_of(n, watcher_t, link);
        if (w->id == id && w->rid_len == core->rid_len && memcmp(w->rid, core->rid, core->rid_len) == 0)
            return w;
    }
    return NULL;
}

static bool printable(rc_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char) s.ptr[i] < 0x20 || s.ptr[i] == 0x7f)
            return false;
    return true;
}

static const char *start_invalid(rc_core_t *core, rc_watch_t *self, uint64_t id, const rc_watchreq_t *req)
{
    if (core->envelope)
        return "a watch needs a DEALER connection (it answers with a stream of replies)";
    if (id == 0)
        return "a watch needs a request id other than 0";
    if (req->ref_id.len && req->ref_id.len != RC_REF_ID_LEN)
        return "ref_id must be 32 hex characters";
    if (req->function.len > RC_MAX_NAME || !printable(req->function))
        return "function name too long or not printable";
    if (req->ns.len > RC_MAX_NAME || !printable(req->ns))
        return "namespace too long or not printable";
    if (req->window > RC_WATCH_WINDOW_MAX)
        return "window above " RC_STR(RC_WATCH_WINDOW_MAX);
    if (req->acked || req->stop)
        return "acked and stop need the watch_id of a watch";
    if (find(core, self, id))
        return "a watch with this id runs on this connection already";
    return NULL;
}

static void start(rc_core_t *core, rc_watch_t *self, uint64_t id, const rc_watchreq_t *req, bool admin)
{
    const char *bad = start_invalid(core, self, id, req);
    if (bad) {
        rc_reply_error(core, id, CODE(INVALID_ARGUMENT), bad);
        return;
    }
    if (self->n >= RC_WATCH_MAX || self->in_flight >= RC_WATCH_IN_FLIGHT) {
        rc_log(RC_LOG_WARN, "watch", "watch refused: %u watchers, %llu events in flight (limits %d, %d)",
               self->n, (unsigned long long) self->in_flight, RC_WATCH_MAX, RC_WATCH_IN_FLIGHT);
        rc_reply_error(core, id, CODE(RESOURCE_EXHAUSTED), "too many watchers");
        return;
    }
    uint8_t ref[16] = {0};
    if (req->ref_id.len && rc_hex_decode(req->ref_id.ptr, req->ref_id.len, ref, 16) != 0) {
        rc_reply_error(core, id, CODE(INVALID_ARGUMENT), "ref_id must be 32 hex characters");
        return;
    }
    watcher_t *w = calloc(1, sizeof *w);
    if (!w || rc_buf_reserve(&w->batch, RC_BATCH_HEAD + 256) != 0 ||
        (req->function.len && !(w->fn_name = strndup(req->function.ptr, req->function.len))) ||
        (!req->all_ns && req->ns.len && !(w->ns = strndup(req->ns.ptr, req->ns.len)))) {
        if (w) {
            rc_buf_free(&w->batch);
            free(w->fn_name);
            free(w);
        }
        rc_reply_error(core, id, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    memcpy(w->ref, ref, 16);
    memcpy(w->task_ref, ref, 16);
    if (req->ref_id.len) {
        /* A ref of an extra handle: the task's transitions are the ones it
         * shows. (One that is gone, or not yet known, matches only itself.) */
        rc_handle_t *h;
        uint64_t owner;
        rc_task_t *t = rc_observe_resolve(core, ref, &h, &owner);
        if (t)
            memcpy(w->task_ref, t->ref, 16);
    }
    w->id = id;
    w->rid_len = (uint8_t) core->rid_len;
    memcpy(w->rid, core->rid, core->rid_len);
    w->owner = core->owner;
    w->admin = admin;
    w->by_ref = req->ref_id.len > 0;
    w->by_fn = req->function.len > 0;
    w->all_ns = req->all_ns;
    w->window = req->window ? req->window : RC_WATCH_WINDOW;
    w->batch.len = RC_BATCH_HEAD;
    w->last_send_us = rc_core_mono_us(core);
    rc_list_push_back(&self->watchers, &w->link);
    self->n++;
    rc_log(RC_LOG_INFO, "watch", "watch %llu started (%u watching)", (unsigned long long) w->id, self->n);
    /* The first event says that the watch is on: nothing it passes is missed
     * from here. A connection gone already is found at the flush. */
    (void) append_kind(core, self, w, RC_EVK_WATCHING, 0);
}

/* Ends w with an END event (beyond its window: one event more at most). */
static void finish(rc_core_t *core, rc_watch_t *self, watcher_t *w, int code)
{
    if (append_kind(core, self, w, RC_EVK_END, code) == 0)
        (void) send_batch(core, self, w);
    watcher_free(self, w);
}

void rc_watch_request(rc_core_t *core, rc_watch_t *self, uint64_t id, const rc_watchreq_t *req, bool admin)
{
    if (!req->watch_id) {
        start(core, self, id, req, admin);
        return;
    }
    watcher_t *w = find(core, self, req->watch_id);
    if (!w) {
        rc_reply_error(core, id, CODE(NOT_FOUND), "no such watch on this connection");
        return;
    }
    if (req->acked) {
        if (req->acked < w->acked || req->acked > w->sent) {
            rc_reply_error(core, id, CODE(INVALID_ARGUMENT),
                           "acked is not between the last one and the events sent");
            return;
        }
        self->in_flight -= req->acked - w->acked;
        w->acked = req->acked;
        w->stalled_since_us = 0;
        /* Tell it now what it missed, rather than with the next event. */
        if (w->lost && room(self, w, 1) && append_kind(core, self, w, RC_EVK_LOST, 0) != 0) {
            watcher_free(self, w);
            return;
        }
    }
    if (req->stop) {
        finish(core, self, w, CODE(OK));
        rc_reply_t r = {.id = id, .message = "watch stopped"};
        rc_reply(core, &r);
    }
}

/* ---------------------------------------------------------------- flush */

#define PROBE_EVERY_US 1000000ull

void rc_watch_flush(rc_core_t *core, rc_watch_t *self)
{
    if (!self->n)
        return;
    uint64_t now = rc_core_mono_us(core);
    bool probe = now - self->last_probe_us >= PROBE_EVERY_US;
    if (probe)
        self->last_probe_us = now;
    uint64_t stall_us = (uint64_t) (core->cfg.watch_stall_ms ? core->cfg.watch_stall_ms : 60000) * 1000;
    rc_list_t *n = self->watchers.next;
    while (n != &self->watchers) {
        watcher_t *w = rc_container_of(n, watcher_t, link);
        n = n->next;
        if (probe && w->stalled_since_us && now - w->stalled_since_us >= stall_us) {
            self->dropped_total++;
            rc_log(
                RC_LOG_WARN, "watch",
                "watcher %llu dropped: it acknowledged nothing for %.1f s with its window of %u events full "
                "(%llu events lost)",
                (unsigned long long) w->id, (double) stall_us / 1e6, w->window,
                (unsigned long long) w->lost);
            finish(core, self, w, CODE(RESOURCE_EXHAUSTED));
            continue;
        }
        int rc = 0;
        if (probe && !w->batch_n && now - w->last_send_us >= RC_WATCH_IDLE_US && room(self, w, 1))
            rc = append_kind(core, self, w, RC_EVK_HEARTBEAT, 0);
        if (rc == 0)
            rc = send_batch(core, self, w);
        if (rc != 0) {
            rc_log(RC_LOG_INFO, "watch", "watcher %llu gone (its connection closed)",
                   (unsigned long long) w->id);
            watcher_free(self, w);
        }
    }
}
