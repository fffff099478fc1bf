/* rc_wsend: what a worker thread sends to the broker, and the batching of
 * its results (see rc_wsend.h). */
#include "rc_wsend.h"
#include "rc_wsession.h"

#include <string.h>
#include <unistd.h>

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
void rc_wsend_results_flush(rc_wthread_t *w)
{
    if (!w->results_n)
        return;
    uint8_t *body = w->results.data + RC_WORKER_RESULTS_HEAD;
    size_t len = w->results.len - RC_WORKER_RESULTS_HEAD;
    size_t head = w->results_n > 1 ? rc_worker_codec_results_head(body, len) : 0;
    zmq_msg_t msg;
    if (zmq_msg_init_size(&msg, head + len) != 0)
        return;
    memcpy(zmq_msg_data(&msg), body - head, head + len);
    if (w->results_n == 1)
        rc_worker_codec_entry_to_result(zmq_msg_data(&msg)); /* the copy: the batch stays whole */
    w->results_n = 0;
    w->results.len = RC_WORKER_RESULTS_HEAD;
    send_work_now(w, &msg);
}

/* The same once the first result has waited long enough. */
void rc_wsend_results_flush_if_due(rc_wthread_t *w)
{
    if (w->results_n && rc_mono_us() - w->results_since_us >= RESULTS_WAIT_US)
        rc_wsend_results_flush(w);
}

/* Sends msg (taken, also on failure) on the work socket, after the results
 * that wait (so that nothing overtakes them). 0 or -1. */
static int send_work_msg(rc_wthread_t *w, zmq_msg_t *msg)
{
    rc_wsend_results_flush(w);
    return send_work_now(w, msg);
}

int rc_wsend_work(rc_wthread_t *w, worker_msg_t *wm)
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
    rc_wsend_work(w, &wm);
}

void rc_wsend_heartbeat_if_due(rc_wthread_t *w, uint64_t now)
{
    if (now - w->last_sent_us >= (uint64_t) w->pool->heartbeat_ms * 1000)
        send_heartbeat(w);
}

/* A worker that has sent nothing for the broker's whole liveness window (it
 * was frozen by SIGSTOP, or a job step ran too long) has been declared lost:
 * the broker gave its tasks to others. Such a worker must not start or go
 * on with any of them; it reconnects as a new worker instead. */
void rc_wsend_check_silence(rc_wthread_t *w)
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
void rc_wsend_started(rc_wthread_t *w, const Refcache__V1__Dispatch *d)
{
    zmq_msg_t msg;
    if (zmq_msg_init_size(&msg, rc_worker_codec_started_size(d->ref_id, d->attempt)) != 0)
        return;
    rc_worker_codec_started_put(zmq_msg_data(&msg), d->ref_id, d->attempt);
    send_work_msg(w, &msg);
}

void rc_wsend_cancel_ack(rc_wthread_t *w, const char *ref_id, uint32_t attempt, bool started)
{
    Refcache__V1__CancelAck ack = REFCACHE__V1__CANCEL_ACK__INIT;
    ack.ref_id = (char *) ref_id;
    ack.attempt = attempt;
    ack.started = started;
    worker_msg_t wm = REFCACHE__V1__WORKER_MESSAGE__INIT;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK;
    wm.cancel_ack = &ack;
    rc_wsend_work(w, &wm);
}

void rc_wsend_failure(rc_wthread_t *w, const Refcache__V1__Dispatch *d, int code, bool retryable,
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
    rc_wsend_work(w, &wm);
}

/* Puts a Result with the others that wait to go out together; false if
 * there is no memory for it. */
static bool results_add(rc_wthread_t *w, const Refcache__V1__Dispatch *d, const void *data, size_t len)
{
    size_t n = rc_worker_codec_result_entry_size(d->ref_id, d->attempt, len);
    if (w->results_n && (w->results_n >= RESULTS_MAX || w->results.len + n > RESULTS_BYTES))
        rc_wsend_results_flush(w);
    if (!w->results_n)
        w->results.len = RC_WORKER_RESULTS_HEAD;
    /* The first batch takes RESULTS_BYTES at once; a larger result grows it. */
    if (w->results.len + n > w->results.cap &&
        rc_buf_reserve(&w->results, w->results.len + n > RESULTS_BYTES ? w->results.len + n : RESULTS_BYTES) != 0)
        return false;
    rc_worker_codec_result_entry_put(w->results.data + w->results.len, d->ref_id, d->attempt, data, len);
    w->results.len += n;
    if (w->results_n++ == 0)
        w->results_since_us = rc_mono_us();
    return true;
}

void rc_wsend_result(rc_wthread_t *w, const Refcache__V1__Dispatch *d, const void *data, size_t len)
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
int rc_wsend_announce(rc_wthread_t *w)
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
    /* Where it runs, for the broker's Workers list. */
    char host[64] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        host[0] = '\0';
    ready.host = host;
    ready.pid = (uint32_t) getpid();
    rc_wsession_fill_ready(w, &ready);
    worker_msg_t wm = REFCACHE__V1__WORKER_MESSAGE__INIT;
    wm.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_READY;
    wm.ready = &ready;
    if (rc_wsend_work(w, &wm) != 0)
        return -1;
    w->last_heard_us = w->announced_us = rc_mono_us();
    w->unconfirmed = true;
    return 0;
}
