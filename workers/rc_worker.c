/* rc_worker: the worker pool and the job API.
 *
 * Each worker thread is a CZMQ actor that owns two DEALER sockets with the
 * same routing id (its worker id): one on the work channel, one on the
 * control channel (docs/protocol.md, "Workers"). The thread runs one task at
 * a time and holds up to `credit` dispatched tasks in a local FIFO. Nothing
 * is shared between threads except the read-only pool configuration and an
 * atomic counter, so there are no locks. */
#include "refcache_worker.h"

#include <czmq.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rc_common.h"
#include "rc_worker_codec.h"

typedef Refcache__V1__BrokerMessage broker_msg_t;
typedef Refcache__V1__WorkerMessage worker_msg_t;

/* High-water marks: the broker never sends more than the credit plus a few
 * heartbeats, and the worker sends a bounded stream of progress; 1000 only
 * matters while disconnected, where it bounds what queues up. */
#define WORKER_HWM 1000
/* A send that cannot proceed this long (queue full while the broker is
 * away) is dropped: the broker will declare the worker lost and retry. */
#define WORKER_SNDTIMEO_MS          1000
#define WORKER_RECONNECT_IVL_MS     100
#define WORKER_RECONNECT_IVL_MAX_MS 2000
/* Cancel notices for tasks not (yet) held: a notice travels on the control
 * connection and can overtake the dispatch it cancels on the work
 * connection, so remember the last few and drop such a dispatch on arrival. */
#define WORKER_TOMBSTONES 32
/* Progress messages are rate-limited to one per this interval (plus the
 * final one), so a job that steps quickly cannot flood the broker. */
#define PROGRESS_MIN_INTERVAL_US 5000
/* Messages handled per socket per poll, so one socket cannot starve another. */
#define DRAIN_BATCH 64
/* While tasks keep the thread busy, look at the pipe and the timers (and
 * drain the work socket) when this long has passed since the last look:
 * looking costs system calls, and a stop request or a heartbeat can wait
 * this long. The control socket is looked at when it may hold a notice
 * instead (see control_may_have_news): with a doorbell, looking at it on a
 * timer would add nothing but hide a broker that forgot to ring. */
#define INPUT_CHECK_US 1000
#define MAX_THREADS    1024
/* Results sent together, at most; and the most a batch's first waits. */
#define RESULTS_MAX     64
#define RESULTS_BYTES   (64 << 10)
#define RESULTS_WAIT_US 50
#define MAX_CREDIT      1024

typedef struct rc_wthread rc_wthread_t;

/* Received messages are unpacked into per-message arenas that are reused,
 * so the hot path does not call malloc for every field of every message.
 * An arena lives as long as its message: a held task keeps it, and the
 * tasks of one DispatchBatch share it (refs counts them). At most credit + 2
 * are ever in use. What does not fit goes to malloc. */
#define ARENA_BYTES 4096
typedef struct arena {
    ProtobufCAllocator allocator; /* allocator_data = this arena */
    struct arena *next;           /* free list */
    size_t used, cap;
    unsigned refs;                    /* held tasks (or the receiver) using the message */
    bool spilled;                     /* something went to malloc: the message must be freed field by field */
    _Alignas(16) unsigned char buf[]; /* cap bytes; the message comes first */
} arena_t;

struct refcache_job {
    rc_wthread_t *worker;
    const Refcache__V1__Dispatch *dispatch;
    bool cancelled;    /* a cancel notice for this (ref_id, attempt) arrived */
    bool disowned;     /* the broker no longer counts this task as ours: say nothing of it */
    bool started_sent; /* Started went out (at the job's first step boundary) */
    bool has_result;
    bool has_failure;
    bool retryable;
    int fail_code;
    const void *result; /* into the payload, the worker's buffer or `owned` */
    size_t result_len;
    void *owned; /* a buffer given with refcache_job_result_take */
    uint64_t last_progress_us;
};

typedef struct {
    char ref_id[RC_REF_ID_LEN * 2 + 1];
    uint32_t attempt;
    bool used;
} tombstone_t;

/* A held task: its Dispatch, and the message it came in (shared by the
 * tasks of a DispatchBatch). */
typedef struct {
    broker_msg_t *msg;
    const Refcache__V1__Dispatch *d;
} held_t;

struct rc_wthread {
    refcache_pool_t *pool;
    int index;
    char id[48];         /* routing id of the current connections */
    unsigned generation; /* reconnections so far */
    zactor_t *actor;
    /* Set by the thread before it signals the constructor. */
    atomic_int setup_rc;
    char setup_err[256];

    /* Everything below belongs to the worker thread. */
    zsock_t *pipe;
    zsock_t *work;
    zsock_t *control;
    void *pipe_h;
    void *work_h;
    void *control_h;
    /* Each socket's ZMQ_FD, and whether the socket is armed: a receive found
     * it empty and nothing has touched it since, so its descriptor becomes
     * readable when something new arrives ("waiting", below). */
    int pipe_fd, work_fd, control_fd;
    bool pipe_armed, work_armed, control_armed;
    zmq_msg_t in; /* reused for every received frame */
    arena_t *free_arenas;

    held_t *held; /* ring of held dispatches, capacity = credit */
    size_t held_head;
    size_t held_count;
    tombstone_t tombs[WORKER_TOMBSTONES];
    size_t tomb_next;

    uint64_t last_sent_us;
    uint64_t last_heard_us;
    bool terminating;
    bool silent_too_long;  /* we sent nothing for the broker's whole liveness window */
    uint64_t last_look_us; /* when the sockets were last polled */
    uint64_t bell_seen;    /* the pool's doorbell, read before the last look at control */
    refcache_job_t *job;   /* the running job, or NULL */

    uint8_t *result_buf; /* reused for copied results */
    size_t result_cap;
    /* Results to send together (docs/protocol.md, "Batches"): ResultBatch
     * entries behind RC_WORKER_RESULTS_HEAD bytes of room for the head. They
     * go out before the worker waits, before any other message, when
     * RESULTS_MAX or RESULTS_BYTES is reached, and once the first has waited
     * RESULTS_WAIT_US (checked after each task and at step boundaries). */
    uint8_t *results;
    size_t results_len, results_cap;
    unsigned results_n;
    uint64_t results_since_us;
    char fail_msg[1024];
};

struct refcache_pool {
    char *work_endpoint;
    char *control_endpoint;
    int threads;
    int credit;
    int heartbeat_ms;
    int liveness;
    size_t max_result_bytes;
    refcache_function_t *functions; /* names duplicated */
    size_t function_count;
    char **function_names;  /* for Ready */
    char **cacheable_names; /* for Ready */
    size_t cacheable_count;
    zcert_t *cert;      /* CURVE: this worker's certificate, or NULL */
    char *server_key;   /* CURVE: the broker's public key (Z85) */
    char id_prefix[17]; /* random, shared by the pool's worker ids */
    rc_wthread_t **workers;
    int started;
    atomic_uint_fast64_t tasks_done;
    const atomic_uint_fast64_t *doorbell; /* the broker's, or NULL */
};

/* ------------------------------------------------------------ sending */

/* Sends msg (taken, also on failure). 0, or -1 if the socket refused it. */
static int send_msg(void *sock, zmq_msg_t *msg)
{
    while (zmq_msg_send(msg, sock, 0) < 0) {
        if (zmq_errno() != EINTR) {
            zmq_msg_close(msg);
            return -1;
        }
    }
    return 0;
}

/* Packs m straight into a new ZeroMQ message (one copy, no staging
 * buffer). 0 or -1. */
static int pack_msg(zmq_msg_t *msg, const ProtobufCMessage *m)
{
    if (zmq_msg_init_size(msg, protobuf_c_message_get_packed_size(m)) != 0)
        return -1;
    protobuf_c_message_pack(m, zmq_msg_data(msg));
    return 0;
}

static int send_packed(void *sock, const ProtobufCMessage *m)
{
    zmq_msg_t msg;
    return pack_msg(&msg, m) == 0 ? send_msg(sock, &msg) : -1;
}

/* Sends msg (taken, also on failure) on the work socket, before any result
 * that waits to go out with others. 0 or -1. */
static int send_work_now(rc_wthread_t *w, zmq_msg_t *msg)
{
    if (!w->work_h) {
        zmq_msg_close(msg);
        return -1;
    }
    w->last_sent_us = rc_mono_us();
    w->work_armed = false; /* a send may take the socket's pending commands */
    return send_msg(w->work_h, msg);
}

/* Sends the results that wait to go out together: one as a Result, more as
 * a ResultBatch. If there is no memory for the message they stay, for the
 * next flush (a result the broker never gets would hold its credit slot for
 * good). */
static void results_flush(rc_wthread_t *w)
{
    if (!w->results_n)
        return;
    uint8_t *body = w->results + RC_WORKER_RESULTS_HEAD;
    size_t len = w->results_len - RC_WORKER_RESULTS_HEAD;
    size_t head = w->results_n > 1 ? rc_worker_codec_results_head(body, len) : 0;
    zmq_msg_t msg;
    if (zmq_msg_init_size(&msg, head + len) != 0)
        return;
    memcpy(zmq_msg_data(&msg), body - head, head + len);
    if (w->results_n == 1)
        rc_worker_codec_entry_to_result(zmq_msg_data(&msg)); /* the copy: the batch stays whole */
    w->results_n = 0;
    w->results_len = RC_WORKER_RESULTS_HEAD;
    send_work_now(w, &msg);
}

/* The same once the first result has waited long enough. */
static void results_flush_if_due(rc_wthread_t *w)
{
    if (w->results_n && rc_mono_us() - w->results_since_us >= RESULTS_WAIT_US)
        results_flush(w);
}

/* Sends msg (taken, also on failure) on the work socket, after the results
 * that wait (so that nothing overtakes them). 0 or -1. */
static int send_work_msg(rc_wthread_t *w, zmq_msg_t *msg)
{
    results_flush(w);
    return send_work_now(w, msg);
}

static int send_work(rc_wthread_t *w, worker_msg_t *wm)
{
    zmq_msg_t msg;
    return pack_msg(&msg, &wm->base) == 0 ? send_work_msg(w, &msg) : -1;
}

static void send_heartbeat(rc_wthread_t *w)
{
    Refcache__V1__Heartbeat hb = REFCACHE__V1__HEARTBEAT__INIT;
    worker_msg_t wm = REFCACHE__V1__WORKER_MESSAGE__INIT;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_HEARTBEAT;
    wm.heartbeat = &hb;
    send_work(w, &wm);
}

static void heartbeat_if_due(rc_wthread_t *w, uint64_t now)
{
    if (now - w->last_sent_us >= (uint64_t) w->pool->heartbeat_ms * 1000)
        send_heartbeat(w);
}

/* A worker that has sent nothing for the broker's whole liveness window (it
 * was frozen by SIGSTOP, or a job step ran too long) has been declared lost:
 * the broker gave its tasks to others. Such a worker must not start or go
 * on with any of them; it reconnects as a new worker instead. */
static void check_silence(rc_wthread_t *w)
{
    uint64_t limit = (uint64_t) w->pool->heartbeat_ms * (uint64_t) w->pool->liveness * 1000;
    if (w->silent_too_long || rc_mono_us() - w->last_sent_us <= limit)
        return;
    w->silent_too_long = true;
    if (w->job)
        w->job->cancelled = w->job->disowned = true;
}

/* Started and Result are encoded by hand (rc_worker_codec), the rest by
 * protobuf-c. */
static void send_started(rc_wthread_t *w, const Refcache__V1__Dispatch *d)
{
    zmq_msg_t msg;
    if (zmq_msg_init_size(&msg, rc_worker_codec_started_size(d->ref_id, d->attempt)) != 0)
        return;
    rc_worker_codec_started_put(zmq_msg_data(&msg), d->ref_id, d->attempt);
    send_work_msg(w, &msg);
}

/* Started goes out when the job first reaches a step boundary (a call to
 * the job API), not before it runs: a job that finishes without one, like
 * echo, costs one message less, and its Result tells the broker it ran. */
static void job_started(refcache_job_t *job)
{
    if (!job->started_sent && !job->disowned) {
        job->started_sent = true;
        send_started(job->worker, job->dispatch);
    }
}

static void send_cancel_ack(rc_wthread_t *w, const char *ref_id, uint32_t attempt, bool started)
{
    Refcache__V1__CancelAck ack = REFCACHE__V1__CANCEL_ACK__INIT;
    ack.ref_id = (char *) ref_id;
    ack.attempt = attempt;
    ack.started = started;
    worker_msg_t wm = REFCACHE__V1__WORKER_MESSAGE__INIT;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK;
    wm.cancel_ack = &ack;
    send_work(w, &wm);
}

static void send_failure(rc_wthread_t *w, const Refcache__V1__Dispatch *d, int code, bool retryable,
                         const char *message)
{
    Refcache__V1__Failure f = REFCACHE__V1__FAILURE__INIT;
    f.ref_id = d->ref_id;
    f.attempt = d->attempt;
    f.code = (Refcache__V1__Code) code;
    f.message = (char *) message;
    f.retryable = retryable;
    worker_msg_t wm = REFCACHE__V1__WORKER_MESSAGE__INIT;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_FAILURE;
    wm.failure = &f;
    send_work(w, &wm);
}

/* Puts a Result with the others that wait to go out together; false if
 * there is no memory for it. */
static bool results_add(rc_wthread_t *w, const Refcache__V1__Dispatch *d, const void *data, size_t len)
{
    size_t n = rc_worker_codec_result_entry_size(d->ref_id, d->attempt, len);
    if (w->results_n && (w->results_n >= RESULTS_MAX || w->results_len + n > RESULTS_BYTES))
        results_flush(w);
    if (!w->results_n)
        w->results_len = RC_WORKER_RESULTS_HEAD;
    if (w->results_len + n > w->results_cap) {
        size_t cap = w->results_len + n > RESULTS_BYTES ? w->results_len + n : RESULTS_BYTES;
        uint8_t *buf = realloc(w->results, cap);
        if (!buf)
            return false;
        w->results = buf;
        w->results_cap = cap;
    }
    rc_worker_codec_result_entry_put(w->results + w->results_len, d->ref_id, d->attempt, data, len);
    w->results_len += n;
    if (w->results_n++ == 0)
        w->results_since_us = rc_mono_us();
    return true;
}

static void send_result(rc_wthread_t *w, const Refcache__V1__Dispatch *d, const void *data, size_t len)
{
    if (results_add(w, d, data, len))
        return;
    zmq_msg_t msg;
    if (zmq_msg_init_size(&msg, rc_worker_codec_result_size(d->ref_id, d->attempt, len)) != 0)
        return;
    rc_worker_codec_result_put(zmq_msg_data(&msg), d->ref_id, d->attempt, data, len);
    send_work_msg(w, &msg);
}

/* ControlHello on the control channel, then Ready on the work channel: the
 * broker dispatches only after both, so the order does not matter to it,
 * but sending the hello first gives it a head start. */
static int announce(rc_wthread_t *w)
{
    refcache_pool_t *pool = w->pool;
    Refcache__V1__ControlHello hello = REFCACHE__V1__CONTROL_HELLO__INIT;
    hello.worker_id = w->id;
    w->control_armed = false;
    if (send_packed(w->control_h, &hello.base) != 0)
        return -1;

    Refcache__V1__Ready ready = REFCACHE__V1__READY__INIT;
    ready.worker_id = w->id;
    ready.n_functions = pool->function_count;
    ready.functions = pool->function_names;
    ready.n_cacheable = pool->cacheable_count;
    ready.cacheable = pool->cacheable_names;
    ready.credit = (uint32_t) pool->credit;
    ready.max_batch = (uint32_t) (pool->credit < RESULTS_MAX ? pool->credit : RESULTS_MAX);
    ready.heartbeat_ms = (uint32_t) pool->heartbeat_ms;
    worker_msg_t wm = REFCACHE__V1__WORKER_MESSAGE__INIT;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_READY;
    wm.ready = &ready;
    if (send_work(w, &wm) != 0)
        return -1;
    w->last_heard_us = rc_mono_us();
    return 0;
}

/* ------------------------------------------------------------ arenas */

static void *arena_alloc(void *data, size_t size)
{
    arena_t *a = data;
    size_t need = (size + 15) & ~(size_t) 15;
    if (need >= size && need <= a->cap - a->used) {
        void *p = a->buf + a->used;
        a->used += need;
        return p;
    }
    a->spilled = true;
    return malloc(size);
}

static void arena_free(void *data, void *ptr)
{
    arena_t *a = data;
    if ((unsigned char *) ptr >= a->buf && (unsigned char *) ptr < a->buf + a->cap)
        return; /* released all at once when the arena is reset */
    free(ptr);
}

/* An arena of at least want bytes (and ARENA_BYTES), held once. */
static arena_t *arena_get(rc_wthread_t *w, size_t want)
{
    size_t cap = want > ARENA_BYTES ? (want + 15) & ~(size_t) 15 : ARENA_BYTES;
    arena_t *a = w->free_arenas;
    if (a && a->cap >= cap) {
        w->free_arenas = a->next;
    } else {
        a = malloc(sizeof *a + cap);
        if (!a)
            return NULL;
        a->cap = cap;
        a->allocator.alloc = arena_alloc;
        a->allocator.free = arena_free;
        a->allocator.allocator_data = a;
    }
    a->used = 0;
    a->refs = 1;
    a->spilled = false;
    a->next = NULL;
    return a;
}

static void arena_put(rc_wthread_t *w, arena_t *a)
{
    a->used = 0;
    a->next = w->free_arenas;
    w->free_arenas = a;
}

static void arenas_free_all(rc_wthread_t *w)
{
    while (w->free_arenas) {
        arena_t *a = w->free_arenas;
        w->free_arenas = a->next;
        free(a);
    }
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
    arena_t *a = arena_get(w, size > (64 << 10) ? 0 : 4 * size + 1024);
    if (!a)
        return NULL;
    ProtobufCMessage *m = fast ? fast(data, size, &a->allocator) : NULL;
    if (!m) {
        /* A fast decoder that declined has freed what it took; start over. */
        a->used = 0;
        a->spilled = false;
        m = protobuf_c_message_unpack(desc, &a->allocator, size, data);
    }
    if (m && (unsigned char *) m != a->buf) {
        /* msg_free finds the arena from the message's address, which needs
         * the message to be the arena's first allocation. */
        protobuf_c_message_free_unpacked(m, &a->allocator);
        m = NULL;
    }
    if (!m)
        arena_put(w, a);
    return m;
}

static arena_t *arena_of(void *msg)
{
    return (arena_t *) ((unsigned char *) msg - offsetof(arena_t, buf));
}

/* One more user of a message from msg_unpack (a task of its batch). */
static void msg_hold(void *msg)
{
    arena_of(msg)->refs++;
}

/* Lets go of a message from msg_unpack; the last user frees it and
 * recycles its arena. */
static void msg_free(rc_wthread_t *w, void *msg)
{
    if (!msg)
        return;
    arena_t *a = arena_of(msg);
    if (--a->refs > 0)
        return;
    /* All in the arena: nothing to free one by one. */
    if (a->spilled)
        protobuf_c_message_free_unpacked(msg, &a->allocator);
    arena_put(w, a);
}

/* ------------------------------------------------------------ held tasks */

static held_t *held_at(rc_wthread_t *w, size_t i)
{
    return &w->held[(w->held_head + i) % (size_t) w->pool->credit];
}

/* Takes the oldest held task into *out; false if none. */
static bool held_pop(rc_wthread_t *w, held_t *out)
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
        msg_free(w, h.msg);
        return true;
    }
    return false;
}

/* Drops every held task without telling the broker (it forgot them). */
static void held_drop_all(rc_wthread_t *w)
{
    held_t h;
    while (held_pop(w, &h))
        msg_free(w, h.msg);
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

/* ------------------------------------------------------------ receiving */

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
        send_cancel_ack(w, d->ref_id, d->attempt, false);
        return;
    }
    if (w->held_count >= (size_t) w->pool->credit) {
        send_failure(w, d, REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED, true,
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
    switch (m->body_case) {
    case REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCH:
        on_dispatch(w, m, m->dispatch);
        msg_free(w, m);
        break;
    case REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCHES:
        for (size_t i = 0; i < m->dispatches->n_dispatches; i++)
            on_dispatch(w, m, m->dispatches->dispatches[i]);
        msg_free(w, m);
        break;
    case REFCACHE__V1__BROKER_MESSAGE__BODY_REANNOUNCE:
        /* The broker forgot us: it has already retried or failed what
         * we hold and run, so stop the running job and say nothing of it. */
        msg_free(w, m);
        held_drop_all(w);
        if (w->job)
            w->job->cancelled = w->job->disowned = true;
        announce(w);
        break;
    default: /* heartbeat, or a body this version does not know */
        msg_free(w, m);
        break;
    }
}

/* Handles what the work socket holds, up to DRAIN_BATCH messages. */
static void handle_work(rc_wthread_t *w)
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
static bool take_work(rc_wthread_t *w)
{
    int rc = w->work_h ? recv_frame(w, w->work_h) : 0;
    if (rc == 0) {
        w->work_armed = w->work_h != NULL;
        return false;
    }
    on_work_frame(w, rc);
    return true;
}

static void on_cancel(rc_wthread_t *w, const Refcache__V1__CancelNotice *n)
{
    refcache_job_t *job = w->job;
    if (job && job->dispatch->attempt == n->attempt && strcmp(job->dispatch->ref_id, n->ref_id) == 0)
        job->cancelled = true;
    else if (held_remove(w, n->ref_id, n->attempt))
        send_cancel_ack(w, n->ref_id, n->attempt, false);
    else
        tombstone_add(w, n->ref_id, n->attempt);
}

static void handle_control(rc_wthread_t *w)
{
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
        msg_free(w, m);
    }
}

static void handle_pipe(rc_wthread_t *w)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, w->pipe_h, ZMQ_DONTWAIT) >= 0 || zmq_errno() != EAGAIN) {
        /* $TERM, or anything else: the pipe only ever carries a stop
         * request, and an error means the pipe's peer is gone. */
        w->terminating = true;
    } else {
        w->pipe_armed = true;
    }
    zmq_msg_close(&msg);
}

/* ------------------------------------------------------------ waiting */

/* libzmq tells a socket's news through a descriptor (ZMQ_FD) that becomes
 * readable when commands reach the socket, such as "a message arrived in a
 * pipe that was empty". Once a receive has found the socket empty (libzmq
 * has then handled the socket's commands, and its pipes wait to be woken),
 * the descriptor becomes readable exactly when something new arrives: the
 * socket is armed, and poll() on the raw descriptors can wait for it, or
 * look at it, in one system call. zmq_poll asks each socket for ZMQ_EVENTS
 * before and after waiting, a system call per socket each time. A send may
 * handle the socket's pending commands, so sending disarms the socket. */

/* Handles what the sockets that are not armed hold (control only if asked),
 * work first: a dispatch and its cancel that arrive together find each
 * other. */
static void drain_unarmed(rc_wthread_t *w, bool control)
{
    if (!w->work_armed && w->work_h)
        handle_work(w);
    if (control && !w->control_armed && w->control_h)
        handle_control(w);
    if (!w->pipe_armed)
        handle_pipe(w);
}

/* The doorbell's value now (0 without one). Acquire: a worker that sees a
 * ring also sees the notice the broker sent before it (see
 * control_may_have_news). */
static uint64_t bell_read(rc_wthread_t *w)
{
    return w->pool->doorbell ? atomic_load_explicit(w->pool->doorbell, memory_order_acquire) : 0;
}

/* Waits up to timeout_ms (0: only looks) for input on the pipe, the work and
 * (if asked) the control socket, and handles what arrived. When only the
 * work socket has news after a wait, it is left to the caller's next
 * receive (take_work, or the next call): draining it here would end with one
 * more empty receive, a system call that buys nothing. */
static void look(rc_wthread_t *w, long timeout_ms, bool control)
{
    if (timeout_ms != 0)
        results_flush(w); /* nothing waits while the worker does (a job's sleep) */
    uint64_t bell = bell_read(w);
    drain_unarmed(w, control);
    if (w->terminating)
        return;
    struct pollfd fds[3];
    bool *armed[3];
    nfds_t n = 0;
    /* Without sockets (a reconnection failed), wait on the pipe alone. */
    bool all_armed =
        (w->work_armed || !w->work_h) && (!control || w->control_armed || !w->control_h) && w->pipe_armed;
    if (w->work_armed) {
        fds[n] = (struct pollfd){.fd = w->work_fd, .events = POLLIN};
        armed[n++] = &w->work_armed;
    }
    if (control && w->control_armed) {
        fds[n] = (struct pollfd){.fd = w->control_fd, .events = POLLIN};
        armed[n++] = &w->control_armed;
    }
    if (w->pipe_armed) {
        fds[n] = (struct pollfd){.fd = w->pipe_fd, .events = POLLIN};
        armed[n++] = &w->pipe_armed;
    }
    /* A socket that DRAIN_BATCH left unarmed still holds messages: no wait.
     * Nor with a task taken just now and no job running: it is to start. */
    bool wait = all_armed && (w->job || w->held_count == 0);
    int ready = poll(fds, n, wait ? (int) timeout_ms : 0);
    w->last_look_us = rc_mono_us();
    if (ready > 0) {
        for (nfds_t i = 0; i < n; i++)
            if (fds[i].revents)
                *armed[i] = false;
        if ((control && !w->control_armed) || !w->pipe_armed)
            drain_unarmed(w, control);
    }
    /* Control found empty: every notice sent before the bell value read
     * above has been handled. (Left unarmed by DRAIN_BATCH, it holds more:
     * the old value makes the next check look again.) */
    if (control && w->control_armed)
        w->bell_seen = bell;
}

/* Looks at (or waits up to timeout_ms for) every input. */
static void poll_input(rc_wthread_t *w, long timeout_ms)
{
    look(w, timeout_ms, true);
}

/* True when a cancel notice may wait on the control socket, so that the
 * worker must look before it starts a held task (a task cancelled while held
 * never starts). Without a doorbell, always. With one: only when the broker
 * rang it since the last look. The broker rings after its send has
 * returned, and for inproc the notice is then in the socket's pipe and the
 * command that wakes the pipe (if it slept) in the socket's mailbox, so a
 * receive after an acquire load that sees the ring finds the notice. */
static bool control_may_have_news(rc_wthread_t *w)
{
    return !w->pool->doorbell ||
           atomic_load_explicit(w->pool->doorbell, memory_order_acquire) != w->bell_seen;
}

/* ------------------------------------------------------------ sockets */

static zsock_t *open_dealer(rc_wthread_t *w, const char *endpoint)
{
    refcache_pool_t *pool = w->pool;
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock)
        return NULL;
    zsock_set_linger(sock, 0);
    zsock_set_sndhwm(sock, WORKER_HWM);
    zsock_set_rcvhwm(sock, WORKER_HWM);
    zsock_set_sndtimeo(sock, WORKER_SNDTIMEO_MS);
    zsock_set_reconnect_ivl(sock, WORKER_RECONNECT_IVL_MS);
    zsock_set_reconnect_ivl_max(sock, WORKER_RECONNECT_IVL_MAX_MS);
    zsock_set_identity(sock, w->id);
    if (pool->cert) {
        zcert_apply(pool->cert, sock);
        zsock_set_curve_serverkey(sock, pool->server_key);
    }
    if (zsock_connect(sock, "%s", endpoint) != 0) {
        snprintf(w->setup_err, sizeof w->setup_err, "cannot connect to %s: %s", endpoint,
                 zmq_strerror(zmq_errno()));
        zsock_destroy(&sock);
        return NULL;
    }
    return sock;
}

static void close_sockets(rc_wthread_t *w)
{
    zsock_destroy(&w->work);
    zsock_destroy(&w->control);
    w->work_h = w->control_h = NULL;
    w->work_armed = w->control_armed = false;
}

static int open_sockets(rc_wthread_t *w)
{
    w->control = open_dealer(w, w->pool->control_endpoint);
    w->work = w->control ? open_dealer(w, w->pool->work_endpoint) : NULL;
    if (!w->work) {
        if (w->setup_err[0] == '\0')
            snprintf(w->setup_err, sizeof w->setup_err, "cannot create a socket");
        close_sockets(w);
        return -1;
    }
    w->work_h = zsock_resolve(w->work);
    w->control_h = zsock_resolve(w->control);
    w->work_fd = zsock_fd(w->work);
    w->control_fd = zsock_fd(w->control);
    w->work_armed = w->control_armed = false;
    return 0;
}

/* The broker has been silent too long: it may have restarted or the link
 * may be half-dead. New sockets drop whatever was queued for the old
 * connection, and the broker has forgotten our held tasks anyway. */
static void reconnect(rc_wthread_t *w)
{
    w->results_n = 0; /* for the old session: the broker has moved on */
    held_drop_all(w);
    close_sockets(w);
    /* A new routing id for the new connections: a ROUTER without
     * ZMQ_ROUTER_HANDOVER rejects a peer whose id is still bound to the old,
     * not yet torn down connection, and would drop our Ready with it. */
    w->generation++;
    snprintf(w->id, sizeof w->id, "%s-%d.%u", w->pool->id_prefix, w->index, w->generation);
    if (open_sockets(w) == 0)
        announce(w);
    /* On failure the next timer tick tries again. */
    w->last_heard_us = rc_mono_us();
}

/* Heartbeat and liveness timers; call only right after draining the work
 * socket, so that queued broker messages count as heard. */
static void check_timers(rc_wthread_t *w)
{
    uint64_t now = rc_mono_us();
    uint64_t hb_us = (uint64_t) w->pool->heartbeat_ms * 1000;
    if (!w->work_h || now - w->last_heard_us >= hb_us * (uint64_t) w->pool->liveness)
        reconnect(w);
    else
        heartbeat_if_due(w, now);
}

/* Milliseconds until check_timers has something to do. */
static long timer_timeout_ms(rc_wthread_t *w)
{
    uint64_t now = rc_mono_us();
    uint64_t hb_us = (uint64_t) w->pool->heartbeat_ms * 1000;
    uint64_t next = w->last_sent_us + hb_us;
    uint64_t dead = w->last_heard_us + hb_us * (uint64_t) w->pool->liveness;
    if (dead < next)
        next = dead;
    if (next <= now)
        return 0;
    return (long) ((next - now + 999) / 1000);
}

/* ------------------------------------------------------------ running */

static const refcache_function_t *find_function(refcache_pool_t *pool, const char *name)
{
    for (size_t i = 0; i < pool->function_count; i++)
        if (strcmp(pool->functions[i].name, name) == 0)
            return &pool->functions[i];
    return NULL;
}

static void run_task(rc_wthread_t *w, held_t *h)
{
    const Refcache__V1__Dispatch *d = h->d;
    const refcache_function_t *fn = find_function(w->pool, d->function);
    if (!fn) {
        snprintf(w->fail_msg, sizeof w->fail_msg, "unknown function \"%.200s\"", d->function);
        send_failure(w, d, REFCACHE__V1__CODE__CODE_UNIMPLEMENTED, false, w->fail_msg);
    } else {
        refcache_job_t job = {.worker = w, .dispatch = d};
        w->job = &job;
        fn->fn(&job);
        w->job = NULL;
        if (job.disowned)
            ; /* the broker gave it away: any message about it would be stale */
        else if (job.cancelled)
            /* Never a Result for a cancelled task, even if the job set one. */
            send_cancel_ack(w, d->ref_id, d->attempt, true);
        else if (job.has_failure)
            send_failure(w, d, job.fail_code, job.retryable, w->fail_msg);
        else if (job.has_result && job.result_len > w->pool->max_result_bytes) {
            /* The broker would refuse the message (and drop the connection
             * with it): fail the task instead, clearly. */
            snprintf(w->fail_msg, sizeof w->fail_msg, "result of %zu bytes is larger than the %zu-byte limit",
                     job.result_len, w->pool->max_result_bytes);
            send_failure(w, d, REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED, false, w->fail_msg);
        } else if (job.has_result)
            send_result(w, d, job.result, job.result_len);
        else if (w->terminating)
            send_failure(w, d, REFCACHE__V1__CODE__CODE_UNAVAILABLE, true, "worker shutting down");
        else {
            snprintf(w->fail_msg, sizeof w->fail_msg, "function \"%.200s\" returned without a result",
                     d->function);
            send_failure(w, d, REFCACHE__V1__CODE__CODE_INTERNAL, false, w->fail_msg);
        }
        free(job.owned);
    }
    atomic_fetch_add(&w->pool->tasks_done, 1);
    msg_free(w, h->msg);
}

static void worker_loop(rc_wthread_t *w)
{
    while (!w->terminating) {
        check_silence(w);
        if (w->silent_too_long) {
            w->silent_too_long = false;
            reconnect(w); /* drops what we held: the broker gave it away */
            continue;
        }
        /* The next dispatch is usually queued already: take it without a
         * system call, and wait (poll) only when the work socket is empty.
         * Messages are taken one at a time while nothing is held, because
         * a receive that finds the socket empty costs as much as a poll. */
        /* With nothing left to start, the results that wait go out, before
         * the receive: a send after a receive that found the socket empty
         * would disarm it, and the wait below would then first take (and
         * hold) what came, and wait with it held. */
        if (w->held_count == 0)
            results_flush(w);
        if (w->held_count == 0 && !take_work(w)) {
            poll_input(w, timer_timeout_ms(w));
            /* The timers need the work socket drained (see check_timers);
             * when it has news, the next take_work reads it first. */
            if (w->work_armed || !w->work_h)
                check_timers(w);
            continue;
        }
        /* Look for cancel notices before starting a held task (work first,
         * then control), and at the pipe and the timers now and then. */
        bool control = control_may_have_news(w);
        if (control || rc_mono_us() - w->last_look_us >= INPUT_CHECK_US) {
            look(w, 0, control);
            check_timers(w);
        }
        held_t h;
        if (!w->terminating && held_pop(w, &h)) {
            run_task(w, &h);
            results_flush_if_due(w);
        }
    }
}

/* On the way out, tell the broker about held tasks so that it can hand them
 * to another worker at once instead of waiting for the heartbeat timeout. */
static void farewell(rc_wthread_t *w)
{
    results_flush(w);
    held_t h;
    while (held_pop(w, &h)) {
        send_failure(w, h.d, REFCACHE__V1__CODE__CODE_UNAVAILABLE, true, "worker shutting down");
        msg_free(w, h.msg);
    }
    /* A short linger gives those failures (and the running task's) a chance
     * to leave; with linger 0 closing would discard them. It bounds how long
     * the context's shutdown can wait, not this thread. */
    if (w->work)
        zsock_set_linger(w->work, 100);
}

static void worker_actor(zsock_t *pipe, void *args)
{
    rc_wthread_t *w = args;
    w->pipe = pipe;
    w->pipe_h = zsock_resolve(pipe);
    w->pipe_fd = zsock_fd(pipe);
    zmq_msg_init(&w->in);
    int rc = open_sockets(w);
    if (rc == 0 && announce(w) != 0) {
        snprintf(w->setup_err, sizeof w->setup_err, "cannot send Ready: %s", zmq_strerror(zmq_errno()));
        rc = -1;
    }
    atomic_store(&w->setup_rc, rc);
    zsock_signal(pipe, 0);
    if (rc == 0)
        worker_loop(w);
    else {
        /* Setup failed: wait for the pool's $TERM, as an actor must. */
        char *command = zstr_recv(pipe);
        zstr_free(&command);
    }
    farewell(w);
    close_sockets(w);
    zmq_msg_close(&w->in);
}

/* ------------------------------------------------------------ job API */

bool refcache_job_cancelled(refcache_job_t *job)
{
    if (!job || !job->worker)
        return true;
    rc_wthread_t *w = job->worker;
    check_silence(w); /* before anything is sent: sending resets the silence */
    job_started(job);
    results_flush_if_due(w);
    poll_input(w, 0);
    heartbeat_if_due(w, rc_mono_us());
    return job->cancelled || w->terminating;
}

bool refcache_job_sleep(refcache_job_t *job, int ms)
{
    if (!job || !job->worker)
        return true;
    rc_wthread_t *w = job->worker;
    check_silence(w);
    job_started(job);
    uint64_t hb_us = (uint64_t) w->pool->heartbeat_ms * 1000;
    uint64_t now = rc_mono_us();
    uint64_t deadline = now + (uint64_t) (ms > 0 ? ms : 0) * 1000;
    while (true) {
        check_silence(w);
        heartbeat_if_due(w, now);
        if (job->cancelled || w->terminating)
            return true;
        if (now >= deadline)
            return false;
        uint64_t until = deadline;
        if (w->last_sent_us + hb_us < until)
            until = w->last_sent_us + hb_us;
        poll_input(w, until > now ? (long) ((until - now + 999) / 1000) : 0);
        now = rc_mono_us();
    }
}

void refcache_job_progress(refcache_job_t *job, uint64_t done, uint64_t total)
{
    if (!job || !job->worker)
        return;
    check_silence(job->worker);
    job_started(job);
    uint64_t now = rc_mono_us();
    if (done != total && now - job->last_progress_us < PROGRESS_MIN_INTERVAL_US) {
        heartbeat_if_due(job->worker, now);
        return;
    }
    job->last_progress_us = now;
    Refcache__V1__Progress p = REFCACHE__V1__PROGRESS__INIT;
    p.ref_id = job->dispatch->ref_id;
    p.attempt = job->dispatch->attempt;
    p.done = done;
    p.total = total;
    worker_msg_t wm = REFCACHE__V1__WORKER_MESSAGE__INIT;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_PROGRESS;
    wm.progress = &p;
    send_work(job->worker, &wm);
}

int refcache_job_result(refcache_job_t *job, const void *bytes, size_t len)
{
    if (!job || !job->worker || job->has_result || job->has_failure || (!bytes && len))
        return -1;
    rc_wthread_t *w = job->worker;
    const uint8_t *payload = job->dispatch->payload.data;
    size_t plen = job->dispatch->payload.len;
    if (len == 0 || (payload && (const uint8_t *) bytes >= payload && len <= plen &&
                     (size_t) ((const uint8_t *) bytes - payload) <= plen - len)) {
        /* The payload lives as long as the job: no copy needed (echo). */
        job->result = bytes;
    } else {
        if (len > w->result_cap) {
            uint8_t *buf = realloc(w->result_buf, len);
            if (!buf)
                return refcache_job_fail(job, REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED, true,
                                         "out of memory for a %zu-byte result", len);
            w->result_buf = buf;
            w->result_cap = len;
        }
        memcpy(w->result_buf, bytes, len);
        job->result = w->result_buf;
    }
    job->result_len = len;
    job->has_result = true;
    return 0;
}

int refcache_job_result_take(refcache_job_t *job, void **bytes_p, size_t len)
{
    if (!bytes_p)
        return -1;
    void *bytes = *bytes_p;
    *bytes_p = NULL;
    if (!job || !job->worker || job->has_result || job->has_failure || (!bytes && len)) {
        free(bytes);
        return -1;
    }
    job->owned = bytes;
    job->result = bytes;
    job->result_len = len;
    job->has_result = true;
    return 0;
}

int refcache_job_fail(refcache_job_t *job, int code, bool retryable, const char *fmt, ...)
{
    if (!job || !job->worker || job->has_result || job->has_failure)
        return -1;
    rc_wthread_t *w = job->worker;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->fail_msg, sizeof w->fail_msg, fmt, ap);
        va_end(ap);
    } else {
        w->fail_msg[0] = '\0';
    }
    /* OK is not a failure; keep the broker's view consistent. */
    job->fail_code = code > 0 ? code : REFCACHE__V1__CODE__CODE_UNKNOWN;
    job->retryable = retryable;
    job->has_failure = true;
    return 0;
}

const char *refcache_job_param(refcache_job_t *job, const char *key)
{
    if (!job || !job->dispatch || !key)
        return NULL;
    const Refcache__V1__Dispatch *d = job->dispatch;
    for (size_t i = 0; i < d->n_params; i++)
        if (d->params[i]->key && strcmp(d->params[i]->key, key) == 0)
            return d->params[i]->value;
    return NULL;
}

const void *refcache_job_payload(refcache_job_t *job, size_t *len)
{
    if (!job || !job->dispatch) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = job->dispatch->payload.len;
    return job->dispatch->payload.data;
}

const char *refcache_job_ref_id(refcache_job_t *job)
{
    return job && job->dispatch ? job->dispatch->ref_id : "";
}

uint32_t refcache_job_attempt(refcache_job_t *job)
{
    return job && job->dispatch ? job->dispatch->attempt : 0;
}

/* ------------------------------------------------------------ pool */

static void pool_free(refcache_pool_t *self)
{
    /* Ask every thread to stop first, so that they wind down in parallel and
     * destroy only waits for the slowest. */
    for (int i = 0; i < self->started; i++)
        if (self->workers[i]->actor)
            zstr_send(self->workers[i]->actor, "$TERM");
    for (int i = 0; i < self->started; i++) {
        rc_wthread_t *w = self->workers[i];
        zactor_destroy(&w->actor);
        held_drop_all(w);
        arenas_free_all(w);
        free(w->held);
        free(w->result_buf);
        free(w->results);
        free(w);
    }
    free(self->workers);
    for (size_t i = 0; i < self->function_count; i++)
        free(self->function_names[i]);
    free(self->function_names);
    free(self->cacheable_names);
    free(self->functions);
    zcert_destroy(&self->cert);
    free(self->server_key);
    free(self->work_endpoint);
    free(self->control_endpoint);
    free(self);
}

static int add_function(refcache_pool_t *self, const refcache_function_t *f)
{
    if (!f->name || !f->name[0] || !f->fn)
        return -1;
    if (find_function(self, f->name))
        return 0; /* the first one wins: a user function shadows a built-in */
    char *name = strdup(f->name);
    if (!name)
        return -1;
    size_t i = self->function_count++;
    self->functions[i] = *f;
    self->functions[i].name = name;
    self->function_names[i] = name;
    if (f->cacheable)
        self->cacheable_names[self->cacheable_count++] = name;
    return 0;
}

static int load_curve(refcache_pool_t *self, const refcache_pool_config_t *cfg, char *errbuf, size_t errlen)
{
    if (!cfg->curve_secret_file && !cfg->broker_public_file)
        return 0;
    if (!cfg->curve_secret_file || !cfg->broker_public_file) {
        snprintf(errbuf, errlen, "CURVE needs both a worker secret certificate and the broker's public one");
        return -1;
    }
    self->cert = zcert_load(cfg->curve_secret_file);
    if (!self->cert ||
        strcmp(zcert_secret_txt(self->cert), "0000000000000000000000000000000000000000") == 0) {
        snprintf(errbuf, errlen, "cannot load a secret certificate from %s", cfg->curve_secret_file);
        return -1;
    }
    zcert_t *broker = zcert_load(cfg->broker_public_file);
    if (!broker) {
        snprintf(errbuf, errlen, "cannot load the broker's public certificate from %s",
                 cfg->broker_public_file);
        return -1;
    }
    self->server_key = strdup(zcert_public_txt(broker));
    zcert_destroy(&broker);
    if (!self->server_key) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    return 0;
}

refcache_pool_t *refcache_pool_new(const refcache_pool_config_t *cfg, char *errbuf, size_t errlen)
{
    char dummy[8];
    if (!errbuf || errlen == 0) {
        errbuf = dummy;
        errlen = sizeof dummy;
    }
    errbuf[0] = '\0';
    if (!cfg) {
        snprintf(errbuf, errlen, "no configuration");
        return NULL;
    }
    refcache_pool_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    self->threads = cfg->threads > 0 ? cfg->threads : (cores > 0 ? (int) cores : 1);
    self->credit = cfg->credit > 0 ? cfg->credit : REFCACHE_DEFAULT_CREDIT;
    self->heartbeat_ms = cfg->heartbeat_ms > 0 ? cfg->heartbeat_ms : 1000;
    self->liveness = cfg->liveness > 0 ? cfg->liveness : 5;
    self->max_result_bytes = cfg->max_result_bytes ? cfg->max_result_bytes : (16u << 20) - (64u << 10);
    /* Over TCP a notice is still on its way when the broker's send returns:
     * a doorbell would be rung too early, so only inproc pools use it. */
    if (cfg->control_endpoint && strncmp(cfg->control_endpoint, "inproc://", 9) == 0)
        self->doorbell = cfg->doorbell;
    if (self->threads > MAX_THREADS || self->credit > MAX_CREDIT) {
        snprintf(errbuf, errlen, "threads must be at most %d and credit at most %d", MAX_THREADS, MAX_CREDIT);
        pool_free(self);
        return NULL;
    }
    self->work_endpoint = strdup(cfg->work_endpoint ? cfg->work_endpoint : "tcp://127.0.0.1:5571");
    self->control_endpoint = strdup(cfg->control_endpoint ? cfg->control_endpoint : "tcp://127.0.0.1:5572");

    size_t nbuiltin = 0;
    const refcache_function_t *builtin = cfg->no_builtins ? NULL : refcache_builtin_functions(&nbuiltin);
    size_t nuser = cfg->functions ? cfg->function_count : 0;
    size_t total = nbuiltin + nuser;
    self->functions = calloc(total ? total : 1, sizeof *self->functions);
    self->function_names = calloc(total ? total : 1, sizeof *self->function_names);
    self->cacheable_names = calloc(total ? total : 1, sizeof *self->cacheable_names);
    if (!self->work_endpoint || !self->control_endpoint || !self->functions || !self->function_names ||
        !self->cacheable_names) {
        snprintf(errbuf, errlen, "out of memory");
        pool_free(self);
        return NULL;
    }
    for (size_t i = 0; i < nuser + nbuiltin; i++) {
        const refcache_function_t *f = i < nuser ? &cfg->functions[i] : &builtin[i - nuser];
        if (add_function(self, f) != 0) {
            snprintf(errbuf, errlen, "function %zu has no name or no code", i);
            pool_free(self);
            return NULL;
        }
    }
    if (self->function_count == 0) {
        snprintf(errbuf, errlen, "no functions to serve");
        pool_free(self);
        return NULL;
    }
    /* Sockets come from CZMQ's global context, so inproc:// endpoints of a
     * broker in this process (also made with zsock) are reachable. */
    zsys_init();
    if (load_curve(self, cfg, errbuf, errlen) != 0) {
        pool_free(self);
        return NULL;
    }
    uint8_t rnd[8];
    if (rc_random_bytes(rnd, sizeof rnd) != 0) {
        snprintf(errbuf, errlen, "cannot read the OS random source");
        pool_free(self);
        return NULL;
    }
    rc_hex_encode(rnd, sizeof rnd, self->id_prefix);

    self->workers = calloc((size_t) self->threads, sizeof *self->workers);
    if (!self->workers) {
        snprintf(errbuf, errlen, "out of memory");
        pool_free(self);
        return NULL;
    }
    for (int i = 0; i < self->threads; i++) {
        rc_wthread_t *w = calloc(1, sizeof *w);
        if (w)
            w->held = calloc((size_t) self->credit, sizeof *w->held);
        if (!w || !w->held) {
            if (w)
                free(w);
            snprintf(errbuf, errlen, "out of memory");
            pool_free(self);
            return NULL;
        }
        w->pool = self;
        w->index = i;
        snprintf(w->id, sizeof w->id, "%s-%d", self->id_prefix, i);
        atomic_init(&w->setup_rc, -1);
        self->workers[self->started++] = w;
        /* zactor_new returns once the thread has signalled: its sockets are
         * connected and its Ready sent, or setup failed. */
        w->actor = zactor_new(worker_actor, w);
        if (!w->actor || atomic_load(&w->setup_rc) != 0) {
            snprintf(errbuf, errlen, "worker %d: %s", i,
                     w->setup_err[0] ? w->setup_err : "cannot start thread");
            pool_free(self);
            return NULL;
        }
    }
    return self;
}

void refcache_pool_destroy(refcache_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pool_free(*self_p);
    *self_p = NULL;
}

uint64_t refcache_pool_tasks_done(refcache_pool_t *self)
{
    return self ? atomic_load(&self->tasks_done) : 0;
}
