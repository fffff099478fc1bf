/* rc_dispatch: which worker gets which task, credit slots, batches of
 * dispatches, service times and cancel notices (see rc_dispatch.h). */
#include "rc_dispatch.h"

#include <stdlib.h>
#include <string.h>

#include "rc_common.h"
#include "rc_core.h"

static bool serves(const rc_peer_t *w, const rc_fn_t *fn)
{
    for (size_t i = 0; i < w->nfns; i++)
        if (w->fns[i] == fn)
            return true;
    return false;
}

/* A worker that can take a task now: not one silent for more than two of
 * its heartbeats (cut off, perhaps: it stays known until its liveness
 * window passes, but what it is sent now might wait there all that time),
 * nor one leaving, nor one of a stopping broker. */
static bool usable(const rc_core_t *core, const rc_peer_t *w, uint64_t now_us)
{
    return w->ready && w->hello && !w->refused && !w->leaving && w->outstanding < w->credit &&
           now_us - w->last_seen_us <= w->quiet_us && !core->draining;
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
static bool has_room(const rc_core_t *core, const rc_peer_t *w, const rc_fn_t *fn, uint64_t now)
{
    if (w->outstanding == 0)
        return true;
    return core->window_ns > 0 && now - w->busy_since_ns <= core->window_ns &&
           w->backlog_ns + estimate_ns(core, fn) <= core->window_ns;
}

/* An idle worker for fn if there is one, else one with room left. */
static rc_peer_t *pick(rc_core_t *core, const rc_fn_t *fn, uint64_t now)
{
    rc_peer_t *partial = NULL;
    uint64_t now_us = now / 1000;
    for (rc_list_t *n = core->peers.next; n != &core->peers; n = n->next) {
        rc_peer_t *w = rc_container_of(n, rc_peer_t, link);
        if (!usable(core, w, now_us) || !serves(w, fn) || !has_room(core, w, fn, now))
            continue;
        if (w->outstanding == 0)
            return w;
        if (!partial)
            partial = w;
    }
    return partial;
}

static void dispatch(rc_core_t *core, rc_task_t *t, rc_peer_t *w)
{
    rc_run(core, &(rc_ev_t){.event = RC_EV_DISPATCH, .task = t, .peer = w, .cause = {.kind = RC_CAUSE_BROKER, .peer = w}});
}

void rc_dispatch_fn(rc_core_t *core, rc_fn_t *fn)
{
    uint64_t now = core->now_ns;
    while (fn->queued) {
        rc_peer_t *w = pick(core, fn, now);
        if (!w)
            return;
        dispatch(core, rc_container_of(rc_list_front(&fn->queue), rc_task_t, link), w);
    }
}

void rc_dispatch_peer(rc_core_t *core, rc_peer_t *w)
{
    uint64_t now = core->now_ns, now_us = now / 1000;
    while (usable(core, w, now_us)) {
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
        dispatch(core, best, w);
    }
}

/* ---------------------------------------------------------------- slots */

/* A worker runs what it holds in order, so the slot of the next task to
 * end is usually the one after the last freed: the search starts there. */
rc_slot_t *rc_dispatch_slot_find(rc_peer_t *w, const uint8_t ref[16], uint32_t attempt)
{
    for (uint32_t i = 0, k = w->slot_done; i < w->credit; i++, k = k + 1 == w->credit ? 0 : k + 1) {
        rc_slot_t *s = &w->slots[k];
        if (s->used && s->attempt == attempt && memcmp(s->ref, ref, 16) == 0)
            return s;
    }
    return NULL;
}

/* A free slot (the caller checked the credit), searched in dispatch order. */
static rc_slot_t *slot_take(rc_peer_t *w)
{
    for (uint32_t i = 0, k = w->slot_next; i < w->credit; i++, k = k + 1 == w->credit ? 0 : k + 1)
        if (!w->slots[k].used) {
            w->slot_next = k + 1 == w->credit ? 0 : k + 1;
            return &w->slots[k];
        }
    return NULL;
}

static void slot_release(rc_peer_t *w, rc_slot_t *s)
{
    uint32_t k = (uint32_t) (s - w->slots);
    /* The task whose notice missed the board is answered (or given up):
     * its worker holds it no more. */
    if (s->unposted) {
        s->unposted = false;
        rc_board_settle(w->board);
    }
    w->slot_done = k + 1 == w->credit ? 0 : k + 1;
    w->backlog_ns = w->backlog_ns > s->est_ns ? w->backlog_ns - s->est_ns : 0;
    s->used = false;
    w->outstanding--;
}

void rc_dispatch_slot_end(rc_core_t *core, rc_peer_t *w, rc_slot_t *s, bool cancelled, bool ran)
{
    uint64_t now = core->now_ns;
    /* A worker runs one task at a time, in order: a task's service time is
     * the time since it began. A cancelled task's says nothing of its
     * function's. */
    if (!cancelled) {
        uint64_t sample = now > w->busy_since_ns ? now - w->busy_since_ns : 0;
        rc_fn_t *fn = s->fn;
        if (!fn->svc_known) {
            fn->svc_ns = sample;
            fn->svc_known = true;
        } else {
            fn->svc_ns = fn->svc_ns - fn->svc_ns / 8 + sample / 8;
        }
    }
    /* The running task ended (a held one dropped on a cancel did not run):
     * the next held one begins now. */
    if (ran)
        w->busy_since_ns = now;
    slot_release(w, s);
}

/* Empties a slot of a worker that will not run its task: the task goes
 * back (retry) or fails, as for a lost worker (event worker_lost), or,
 * never started, back to the queue uncounted (hand_back). */
static void slot_end(rc_core_t *core, rc_peer_t *w, rc_slot_t *s, rc_event_t ev)
{
    uint32_t attempt = s->attempt;
    rc_task_t *t = rc_table_get(core->tasks, s->ref);
    slot_release(w, s);
    if (t)
        rc_run(core, &(rc_ev_t){.event = ev,
                                .task = t,
                                .peer = w,
                                .attempt = attempt,
                                .slot_held = true,
                                .cause = {.kind = RC_CAUSE_BROKER, .peer = w}});
}

void rc_dispatch_slot_lost(rc_core_t *core, rc_peer_t *w, rc_slot_t *s)
{
    slot_end(core, w, s, RC_EV_WORKER_LOST);
}

void rc_dispatch_slot_hand_back(rc_core_t *core, rc_peer_t *w, rc_slot_t *s)
{
    slot_end(core, w, s, RC_EV_HAND_BACK);
}

void rc_dispatch_release_all(rc_core_t *core, rc_peer_t *w)
{
    rc_dispatch_discard(w);
    for (uint32_t i = 0; i < w->credit; i++)
        if (w->slots[i].used)
            rc_dispatch_slot_lost(core, w, &w->slots[i]);
}

int rc_dispatch_setup(rc_peer_t *w, uint32_t credit, uint32_t max_batch)
{
    if (credit != w->credit) {
        rc_slot_t *slots = calloc(credit, sizeof *slots);
        uint32_t *batch_slots = calloc(credit, sizeof *batch_slots);
        if (!slots || !batch_slots) {
            free(slots);
            free(batch_slots);
            return -1;
        }
        free(w->slots);
        free(w->batch_slots);
        w->slots = slots;
        w->batch_slots = batch_slots;
        w->credit = credit;
        w->slot_next = w->slot_done = 0;
    }
    w->max_batch = max_batch < RC_MAX_BATCH ? max_batch : RC_MAX_BATCH;
    if (w->max_batch > w->credit)
        w->max_batch = w->credit;
    return 0;
}

void rc_dispatch_teardown(rc_peer_t *w)
{
    free(w->slots);
    free(w->batch_slots);
    rc_buf_free(&w->batch);
    w->slots = NULL;
    w->batch_slots = NULL;
}

/* ---------------------------------------------------------------- batches */

void rc_dispatch_discard(rc_peer_t *w)
{
    w->batch_n = 0;
    w->batch_refused = false;
    w->batch.len = RC_BATCH_HEAD;
    rc_list_remove(&w->flush_link);
}

/* Sends a worker's batch: a lone dispatch as itself, several as one
 * DispatchBatch. A batch the worker refuses stays where it is, marked, and
 * the worker gets no more until it speaks again: rc_dispatch_flush then
 * hands its tasks back (retry or fail). */
static void batch_send(rc_core_t *core, rc_peer_t *w)
{
    if (!w->batch_n || w->batch_refused)
        return;
    uint8_t *body = w->batch.data + RC_BATCH_HEAD;
    size_t len = w->batch.len - RC_BATCH_HEAD;
    size_t head = w->batch_n > 1 ? rc_wire_head_before(body, RC_DISPATCHES_FIELD, len) : 0;
    if (rc_route(core->workers, w->id, w->id_len, false, body - head, len + head, NULL) != 0) {
        w->refused = true;
        w->batch_refused = true;
        return;
    }
    rc_dispatch_discard(w);
}

/* Puts a task's dispatch (in credit slot `slot`) into its worker's batch;
 * -1 if there is no memory for it. */
static int batch_add(rc_core_t *core, rc_peer_t *w, const rc_task_t *t, uint32_t slot)
{
    if (w->batch_n && (w->batch_n >= w->max_batch || w->batch.len + t->spec_len > RC_BATCH_BYTES))
        batch_send(core, w);
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

int rc_dispatch_assign(rc_core_t *core, rc_peer_t *w, rc_task_t *t)
{
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
    rc_codec_dispatch_set_attempt(t->spec, t->spec_len, t->attempt);
    /* Round-robin among equals: the worker goes to the back. */
    rc_list_remove(&w->link);
    rc_list_push_back(&core->peers, &w->link);
    if (w->max_batch > 1 && batch_add(core, w, t, (uint32_t) (s - w->slots)) == 0)
        return 0;
    if (rc_route(core->workers, w->id, w->id_len, false, t->spec, t->spec_len, NULL) == 0)
        return 0;
    /* The worker vanished between its last message and now: it gets
     * nothing more until it speaks again (or the tick drops it). */
    w->refused = true;
    slot_release(w, s);
    return -1;
}

void rc_dispatch_flush(rc_core_t *core)
{
    rc_list_t *front;
    while ((front = rc_list_front(&core->to_flush))) {
        rc_peer_t *w = rc_container_of(front, rc_peer_t, flush_link);
        batch_send(core, w);
        if (!w->batch_refused)
            continue;
        /* Refused (peer gone, or its queue full): each task goes back or
         * fails, as for a refused single dispatch. Handing one back may
         * dispatch it to another worker, whose batch joins the list. */
        uint32_t n = w->batch_n;
        rc_dispatch_discard(w);
        for (uint32_t i = 0; i < n; i++)
            if (w->slots[w->batch_slots[i]].used)
                rc_dispatch_slot_lost(core, w, &w->slots[w->batch_slots[i]]);
    }
}

void rc_dispatch_notice(rc_core_t *core, rc_peer_t *w, const uint8_t ref[16], uint32_t attempt, int reason)
{
    char hex[RC_REF_ID_LEN + 1];
    /* The dispatch it cancels goes first, if it still waits in the batch. */
    batch_send(core, w);
    /* A thread of the broker's own pool reads the notice on its board,
     * before it starts a held task and at its job's step boundaries: posted
     * before the send, it is seen by the thread's next look whenever the
     * copy below reaches its socket. A full board (rc_board.h) cannot hold
     * it: the thread then looks at its socket before every held task until
     * this task is answered. */
    if (w->board && !rc_board_post(w->board, ref, attempt)) {
        rc_slot_t *s = rc_dispatch_slot_find(w, ref, attempt);
        if (s && !s->unposted) {
            s->unposted = true;
            rc_board_miss(w->board);
        }
    }
    /* The notice still goes: a worker without a board (over TCP) learns of
     * the cancel from it alone. */
    rc_hex_encode(ref, 16, hex);
    if (rc_codec_cancel_notice(&core->out, hex, attempt, reason) != 0)
        return;
    rc_route(core->control, w->id, w->id_len, false, core->out.data, core->out.len, NULL);
}
