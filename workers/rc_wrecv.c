/* rc_wrecv: what a worker thread receives and how it holds it (see
 * rc_wrecv.h). */
#include "rc_wrecv.h"
#include "rc_log.h"
#include "rc_wsend.h"
#include "rc_wsession.h"

#include <string.h>

void rc_wrecv_arenas_free_all(rc_wthread_t *w)
{
    rc_arena_list_free(&w->free_arenas);
}

/* A decoder for the common shape of a message (rc_worker_codec), or NULL. */
typedef void *(fast_unpack_fn) (const uint8_t *data, size_t len, ProtobufCAllocator *alloc);

static void *fast_dispatch(const uint8_t *data, size_t len, ProtobufCAllocator *alloc)
{
    return rc_worker_codec_dispatch(data, len, alloc);
}

/* Unpacks w->in as desc into a fresh arena, by fast if it reads it, else by
 * protobuf-c; NULL if it is not valid. */
static void *msg_unpack(rc_wthread_t *w, const ProtobufCMessageDescriptor *desc, fast_unpack_fn *fast)
{
    const uint8_t *data = zmq_msg_data(&w->in);
    size_t size = zmq_msg_size(&w->in);
    /* Room for the copied strings and bytes, and the structs around them. */
    size_t want = size > (64 << 10) ? 0 : 4 * size + 1024;
    rc_arena_t *a = rc_arena_list_take(&w->free_arenas, want > ARENA_BYTES ? want : ARENA_BYTES);
    if (!a)
        return NULL;
    ProtobufCMessage *m = fast ? fast(data, size, &a->pa) : NULL;
    if (!m) {
        /* A fast decoder that declined has freed what it took; start over. */
        rc_arena_reset(a);
        m = protobuf_c_message_unpack(desc, &a->pa, size, data);
    }
    /* msg_free finds the arena from the message's address, which needs the
     * message to be the arena's first allocation (the giving back frees
     * what the message has outside the buffer). */
    if (m && (uint8_t *) m != a->buf)
        m = NULL;
    if (!m)
        rc_arena_list_give(&w->free_arenas, a);
    return m;
}

/* One more user of a message from msg_unpack (a task of its batch). */
static void msg_hold(void *msg)
{
    rc_arena_of(msg)->users++;
}

/* Lets go of a message from msg_unpack; the last user recycles its arena,
 * which frees all of the message at once. */
void rc_wrecv_msg_free(rc_wthread_t *w, void *msg)
{
    if (!msg)
        return;
    rc_arena_t *a = rc_arena_of(msg);
    if (--a->users > 0)
        return;
    rc_arena_list_give(&w->free_arenas, a);
}

static held_t *held_at(rc_wthread_t *w, size_t i)
{
    return &w->held[(w->held_head + i) % (size_t) w->pool->credit];
}

/* Takes the oldest held task into *out; false if none. */
bool rc_wrecv_held_pop(rc_wthread_t *w, held_t *out)
{
    if (w->held_count == 0)
        return false;
    *out = w->held[w->held_head];
    w->held[w->held_head] = (held_t){0};
    w->held_head = (w->held_head + 1) % (size_t) w->pool->credit;
    w->held_count--;
    return true;
}

/* Removes the held task (ref_id, attempt); true if it was held. */
static bool held_remove(rc_wthread_t *w, const char *ref_id, uint32_t attempt)
{
    for (size_t i = 0; i < w->held_count; i++) {
        held_t h = *held_at(w, i);
        if (h.d->attempt != attempt || strcmp(h.d->ref_id, ref_id) != 0)
            continue;
        /* Close the gap by moving the later entries one place forward. */
        for (size_t j = i; j + 1 < w->held_count; j++)
            *held_at(w, j) = *held_at(w, j + 1);
        *held_at(w, w->held_count - 1) = (held_t){0};
        w->held_count--;
        rc_wrecv_msg_free(w, h.msg);
        return true;
    }
    return false;
}

/* Drops every held task without telling the broker (it forgot them). */
void rc_wrecv_held_drop_all(rc_wthread_t *w)
{
    held_t h;
    while (rc_wrecv_held_pop(w, &h))
        rc_wrecv_msg_free(w, h.msg);
}

static void tombstone_add(rc_wthread_t *w, const char *ref_id, uint32_t attempt)
{
    if (strlen(ref_id) >= sizeof w->tombs[0].ref_id)
        return;
    tombstone_t *t = &w->tombs[w->tomb_next];
    w->tomb_next = (w->tomb_next + 1) % WORKER_TOMBSTONES;
    strcpy(t->ref_id, ref_id);
    t->attempt = attempt;
    t->used = true;
}

/* True (and forgets it) if a cancel notice for (ref_id, attempt) came first. */
static bool tombstone_take(rc_wthread_t *w, const char *ref_id, uint32_t attempt)
{
    for (size_t i = 0; i < WORKER_TOMBSTONES; i++) {
        tombstone_t *t = &w->tombs[i];
        if (t->used && t->attempt == attempt && strcmp(t->ref_id, ref_id) == 0) {
            t->used = false;
            return true;
        }
    }
    return false;
}

/* Receives one single-frame message without blocking into w->in. 1 when
 * one is there, 0 when none, -1 for a multi-frame message (dropped). */
static int recv_frame(rc_wthread_t *w, void *sock)
{
    if (zmq_msg_recv(&w->in, sock, ZMQ_DONTWAIT) < 0)
        return 0;
    if (!zmq_msg_more(&w->in))
        return 1;
    while (zmq_msg_more(&w->in))
        if (zmq_msg_recv(&w->in, sock, ZMQ_DONTWAIT) < 0)
            break;
    return -1;
}

/* Takes one Dispatch of message m: holds it (with a reference to m), or
 * answers it at once. */
static void on_dispatch(rc_wthread_t *w, broker_msg_t *m, const Refcache__V1__Dispatch *d)
{
    if (!d || d->ref_id[0] == '\0')
        return; /* nothing to answer to: the broker cannot match a reply */
    if (tombstone_take(w, d->ref_id, d->attempt)) {
        rc_wsend_cancel_ack(w, d->ref_id, d->attempt, false);
        return;
    }
    if (w->held_count >= (size_t) w->pool->credit) {
        rc_wsend_failure(w, d, REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED, true,
                         "worker credit exceeded: the broker dispatched more tasks than granted");
        return;
    }
    msg_hold(m);
    *held_at(w, w->held_count++) = (held_t){m, d};
}

/* Handles the broker message in w->in (one frame, or rc < 0 for a
 * malformed multi-frame one). */
static void on_work_frame(rc_wthread_t *w, int rc)
{
    /* Anything from the broker, even garbage, shows the link is alive. */
    w->last_heard_us = rc_mono_us();
    if (rc < 0)
        return;
    broker_msg_t *m = msg_unpack(w, &refcache__v1__broker_message__descriptor, fast_dispatch);
    if (!m)
        return;
    /* Whatever else the broker sends, it sends to a worker it knows: the
     * last Ready has been taken. */
    if (m->body_case != REFCACHE__V1__BROKER_MESSAGE__BODY_REANNOUNCE)
        w->unconfirmed = false;
    switch (m->body_case) {
    case REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCH:
        on_dispatch(w, m, m->dispatch);
        rc_wrecv_msg_free(w, m);
        break;
    case REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCHES:
        for (size_t i = 0; i < m->dispatches->n_dispatches; i++)
            on_dispatch(w, m, m->dispatches->dispatches[i]);
        rc_wrecv_msg_free(w, m);
        break;
    case REFCACHE__V1__BROKER_MESSAGE__BODY_REANNOUNCE:
        rc_wrecv_msg_free(w, m);
        rc_wsession_reannounce(w);
        break;
    case REFCACHE__V1__BROKER_MESSAGE__BODY_STOPPING:
        /* The broker is stopping: what we hold goes back to it now, and
         * nothing more starts until we join its successor; the running job
         * finishes. */
        rc_wrecv_msg_free(w, m);
        w->broker_stopping = true;
        rc_wsession_hand_back(w, false);
        break;
    default: /* heartbeat, or a body this version does not know */
        rc_wrecv_msg_free(w, m);
        break;
    }
}

/* Handles what the work socket holds, up to DRAIN_BATCH messages. */
void rc_wrecv_handle_work(rc_wthread_t *w)
{
    for (int n = 0; n < DRAIN_BATCH; n++) {
        int rc = recv_frame(w, w->work_h);
        if (rc == 0) {
            w->work_armed = true;
            break;
        }
        on_work_frame(w, rc);
    }
}

/* Takes one message from the work socket if one is queued; true if so. A
 * receive that finds a message costs no system call; one that finds the
 * socket empty costs as much as a poll, and arms it. */
bool rc_wrecv_take_work(rc_wthread_t *w)
{
    int rc = w->work_h ? recv_frame(w, w->work_h) : 0;
    if (rc == 0) {
        w->work_armed = w->work_h != NULL;
        return false;
    }
    on_work_frame(w, rc);
    return true;
}

/* A cancel for (ref_id, attempt), from the board or the control socket:
 * the running job stops at its next step boundary (and is answered when it
 * ends), a held task is dropped and answered now, and one not held yet is
 * remembered for its dispatch. Each of these answers once, so a task
 * cancelled by both its board entry and its notice is answered once. */
static void cancel(rc_wthread_t *w, const char *ref_id, uint32_t attempt)
{
    refcache_job_t *job = w->job;
    if (job && job->dispatch->attempt == attempt && strcmp(job->dispatch->ref_id, ref_id) == 0)
        job->cancelled = true;
    else if (held_remove(w, ref_id, attempt))
        rc_wsend_cancel_ack(w, ref_id, attempt, false);
    else
        tombstone_add(w, ref_id, attempt);
}

/* Remembers a notice taken from the board, so that its copy on the control
 * socket is recognised. Full, the oldest is forgotten: its copy would then
 * only leave a tombstone that no dispatch matches. */
static void echo_add(rc_wthread_t *w, const rc_board_entry_t *e)
{
    if (w->echo_head - w->echo_tail > w->echo_mask)
        w->echo_tail++;
    w->echoes[w->echo_head++ & w->echo_mask] = *e;
}

/* True (and forgets it) if the notice for (ref_id, attempt) came from the
 * board first. The broker posts and sends in the same order, so the copies
 * come in the order of the echoes: those before a match never will (their
 * send was refused, or went to a connection since closed). */
static bool echo_take(rc_wthread_t *w, const char *ref_id, uint32_t attempt)
{
    uint8_t ref[16];
    if (w->echo_head == w->echo_tail || rc_hex_decode(ref_id, strlen(ref_id), ref, sizeof ref) != 0)
        return false;
    for (size_t i = w->echo_tail; i != w->echo_head; i++) {
        const rc_board_entry_t *e = &w->echoes[i & w->echo_mask];
        if (e->attempt == attempt && memcmp(e->ref, ref, sizeof ref) == 0) {
            w->echo_tail = i + 1;
            return true;
        }
    }
    return false;
}

void rc_wrecv_echoes_clear(rc_wthread_t *w)
{
    w->echo_tail = w->echo_head;
}

void rc_wrecv_board_drain(rc_wthread_t *w)
{
    rc_board_entry_t e;
    while (rc_board_take(w->board, &e)) {
        char hex[RC_REF_ID_LEN + 1];
        rc_hex_encode(e.ref, sizeof e.ref, hex);
        cancel(w, hex, e.attempt);
        echo_add(w, &e);
    }
}

static void on_cancel(rc_wthread_t *w, const Refcache__V1__CancelNotice *n)
{
    if (w->board && echo_take(w, n->ref_id, n->attempt))
        return; /* taken from the board already */
    cancel(w, n->ref_id, n->attempt);
}

void rc_wrecv_handle_control(rc_wthread_t *w)
{
    /* The board first: a notice's entry was posted before the notice was
     * sent, so it is there now, and the notice then finds its echo. */
    if (w->board && rc_board_pending(w->board))
        rc_wrecv_board_drain(w);
    for (int n = 0; n < DRAIN_BATCH; n++) {
        int rc = recv_frame(w, w->control_h);
        if (rc == 0) {
            w->control_armed = true;
            break;
        }
        if (rc < 0)
            continue;
        Refcache__V1__ControlMessage *m = msg_unpack(w, &refcache__v1__control_message__descriptor, NULL);
        if (!m)
            continue;
        if (m->body_case == REFCACHE__V1__CONTROL_MESSAGE__BODY_CANCEL && m->cancel)
            on_cancel(w, m->cancel);
        rc_wrecv_msg_free(w, m);
    }
}

void rc_wrecv_handle_pipe(rc_wthread_t *w)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, w->pipe_h, ZMQ_DONTWAIT) >= 0 || zmq_errno() != EAGAIN) {
        /* $TERM, or anything else: the pipe only ever carries a stop
         * request, and an error means the pipe's peer is gone. The thread
         * says goodbye and lets its running job go on for the drain time. */
        rc_wsession_leave(w);
    } else {
        w->pipe_armed = true;
    }
    zmq_msg_close(&msg);
}
