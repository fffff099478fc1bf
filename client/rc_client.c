/* rc_client: see refcache.h. One DEALER socket; requests are encoded by
 * rc_client_codec straight into ZeroMQ messages, and replies are read by its
 * fast reader (or protobuf-c's unpack) into an arena that is reset per reply,
 * so steady-state traffic allocates nothing here. The connection, sending,
 * receiving and waiting for a reply are here; the blocking calls, which send
 * an idempotent request again when the broker comes back (rc_client_retry),
 * are in rc_client_calls.c. */
#include "rc_arena.h"
#include "rc_buf.h"
#include "rc_client_codec.h"
#include "rc_client_int.h"
#include "rc_client_retry.h"
#include "rc_common.h"
#include "rc_pages.h"
#include "rc_wire.h"
#include "refcache.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RC_DEFAULT_ENDPOINT "tcp://127.0.0.1:5570"
#define BATCH_BYTES         (64 << 10) /* a request that would pass this sends the batch first */

struct refcache_client {
    zsock_t *sock;
    void *handle;
    uint64_t next_id;
    uint64_t discarded;
    zmq_msg_t msg;
    rc_arena_t *arena; /* replies are read into it, reset (and grown to fit) per reply */
    const char *message;
    char *namespace_name; /* NULL: the default namespace */
    /* The pipelined requests not yet sent: the entries of a RequestBatch
     * behind RC_WIRE_HEAD_MAX bytes of room for its head. */
    rc_buf_t out;
    size_t out_last; /* the last request's length */
    unsigned out_n, max_batch;
    /* The replies of the ReplyBatch in msg not yet handed out. */
    const uint8_t *in_next, *in_end;
    rc_client_watch_t watch; /* rc_client_observe.c's */
    rc_client_mon_t mon;     /* the connection's comings and goings (rc_client_retry) */
};

static void s_errmsg(char *errbuf, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (errbuf && errlen)
        snprintf(errbuf, errlen, fmt, a, b);
}

void refcache_client_options_init(refcache_client_options_t *options)
{
    memset(options, 0, sizeof *options);
}

void refcache_submit_options_init(refcache_submit_options_t *options)
{
    memset(options, 0, sizeof *options);
}

/* Loads a certificate; zcert_load tries PATH_secret first, then PATH. */
static zcert_t *s_cert_load(const char *path, bool need_secret, char *errbuf, size_t errlen)
{
    zcert_t *cert = zcert_load(path);
    if (!cert) {
        s_errmsg(errbuf, errlen,
                 "cannot load CURVE certificate %s (or %s_secret): missing, unreadable or malformed", path,
                 path);
        return NULL;
    }
    if (need_secret) {
        const byte *key = zcert_secret_key(cert);
        bool zero = true;
        for (int i = 0; i < 32; i++)
            if (key[i])
                zero = false;
        if (zero) {
            s_errmsg(errbuf, errlen, "CURVE certificate %s has no secret key (expected %s_secret beside it)",
                     path, path);
            zcert_destroy(&cert);
            return NULL;
        }
    }
    return cert;
}

refcache_client_t *refcache_client_new(const refcache_client_options_t *options, char *errbuf, size_t errlen)
{
    refcache_client_options_t defaults;
    if (!options) {
        refcache_client_options_init(&defaults);
        options = &defaults;
    }
    const char *endpoint = options->endpoint && *options->endpoint ? options->endpoint : RC_DEFAULT_ENDPOINT;
    if (!options->curve_secret_file != !options->broker_public_file) {
        s_errmsg(errbuf, errlen,
                 "CURVE needs both the client secret certificate and the broker public one%s%s", "", "");
        return NULL;
    }
    refcache_client_t *self = calloc(1, sizeof *self);
    if (!self) {
        s_errmsg(errbuf, errlen, "out of memory%s%s", "", "");
        return NULL;
    }
    self->message = "";
    self->max_batch = options->max_batch ? options->max_batch : REFCACHE_BATCH_DEFAULT;
    self->out.len = RC_WIRE_HEAD_MAX;
    zmq_msg_init(&self->msg);
    if (!(self->arena = rc_arena_new(0))) {
        s_errmsg(errbuf, errlen, "out of memory%s%s", "", "");
        goto fail;
    }
    if (options->namespace_name && *options->namespace_name) {
        self->namespace_name = strdup(options->namespace_name);
        if (!self->namespace_name) {
            s_errmsg(errbuf, errlen, "out of memory%s%s", "", "");
            goto fail;
        }
    }

    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->sock) {
        s_errmsg(errbuf, errlen, "cannot create a ZeroMQ socket: %s%s", zmq_strerror(zmq_errno()), "");
        goto fail;
    }
    self->handle = zsock_resolve(self->sock);
    /* Unlimited (or deliberately sized) queues: the client never lets
     * ZeroMQ drop or block on its own pipelined traffic. */
    zsock_set_sndhwm(self->sock, options->sndhwm > 0 ? options->sndhwm : 0);
    zsock_set_rcvhwm(self->sock, options->rcvhwm > 0 ? options->rcvhwm : 0);
    zsock_set_linger(self->sock, 0);

    if (options->curve_secret_file) {
        zcert_t *mine = s_cert_load(options->curve_secret_file, true, errbuf, errlen);
        if (!mine)
            goto fail;
        zcert_t *broker = s_cert_load(options->broker_public_file, false, errbuf, errlen);
        if (!broker) {
            zcert_destroy(&mine);
            goto fail;
        }
        zcert_apply(mine, self->sock);
        zsock_set_curve_serverkey_bin(self->sock, zcert_public_key(broker));
        zcert_destroy(&mine);
        zcert_destroy(&broker);
    }
    if (zsock_connect(self->sock, "%s", endpoint) != 0) {
        s_errmsg(errbuf, errlen, "cannot connect to %s: %s", endpoint, zmq_strerror(zmq_errno()));
        goto fail;
    }
    /* Without a monitor (none to be had) the calls just do not retry. */
    if (!options->no_retry)
        (void) rc_client_mon_open(&self->mon, self->handle);
    return self;
fail:
    refcache_client_destroy(&self);
    return NULL;
}

void refcache_client_destroy(refcache_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    refcache_client_t *self = *self_p;
    if (self->sock)
        rc_client_mon_close(&self->mon, self->handle);
    zsock_destroy(&self->sock);
    zmq_msg_close(&self->msg);
    rc_arena_destroy(&self->arena);
    rc_buf_free(&self->out);
    free(self->namespace_name);
    free(self);
    *self_p = NULL;
}

const char *refcache_strerror(int rc)
{
    switch (rc) {
    case REFCACHE_ETIMEOUT:
        return "timed out waiting for the broker";
    case REFCACHE_ETRANSPORT:
        return "transport error";
    case REFCACHE_EREPLY:
        return "bad reply from the broker";
    case REFCACHE_EINVAL:
        return "invalid argument";
    case REFCACHE_ENOMEM:
        return "out of memory";
    case REFCACHE_ECURVE:
        return "CURVE certificate error";
    case REFCACHE_EINTR:
        return "interrupted";
    case REFCACHE_EOUTOFORDER:
        return "result pages do not fit together";
    case REFCACHE_EAGAIN:
        return "send queue full";
    default:
        return rc_code_name(rc);
    }
}

const char *refcache_client_message(refcache_client_t *self)
{
    return self->message ? self->message : "";
}

uint64_t refcache_client_discarded(refcache_client_t *self)
{
    return self->discarded;
}

void *refcache_client_socket(refcache_client_t *self)
{
    return self->handle;
}

/* ------------------------------------------------------------ sending */

int refcache_client_flush(refcache_client_t *self)
{
    if (!self)
        return REFCACHE_EINVAL;
    if (!self->out_n)
        return 0;
    uint8_t *frame;
    size_t len = rc_wire_batch_frame(self->out.data + RC_WIRE_HEAD_MAX, self->out.len - RC_WIRE_HEAD_MAX, self->out_n,
                                     self->out_last, RC_CLIENT_CODEC_REQUEST_BATCH, &frame);
    if (zmq_send(self->handle, frame, len, ZMQ_DONTWAIT) < 0)
        return zmq_errno() == EAGAIN ? REFCACHE_EAGAIN : REFCACHE_ETRANSPORT;
    self->out_n = 0;
    self->out.len = RC_WIRE_HEAD_MAX;
    return 0;
}

/* Room for one more request of len bytes in the batch (sending the batch
 * first if it would pass BATCH_BYTES): where to write it, or NULL with the
 * error in *rc. */
static uint8_t *s_queue(refcache_client_t *self, size_t len, int *rc)
{
    size_t entry = 1 + rc_wire_vsize(len) + len;
    if (self->out_n && self->out.len + entry > BATCH_BYTES && (*rc = refcache_client_flush(self)) != 0)
        return NULL;
    if (self->out.len + entry > self->out.cap && rc_buf_reserve(&self->out, self->out.len + entry) != 0) {
        *rc = REFCACHE_ENOMEM;
        return NULL;
    }
    return rc_wire_put_msg(self->out.data + self->out.len, RC_CLIENT_CODEC_BATCH_ENTRY, len);
}

/* The request just written at `at` (len bytes) joins the batch, which goes
 * out if that fills it; if it cannot, the request is taken back. */
static int s_commit(refcache_client_t *self, uint8_t *at, size_t len, uint64_t id, uint64_t *id_out)
{
    if (id_out)
        *id_out = id; /* (then left alone if the request is taken back) */
    size_t was_len = self->out.len, was_last = self->out_last;
    self->out.len = (size_t) (at + len - self->out.data);
    self->out_last = len;
    self->out_n++;
    if (self->out_n >= self->max_batch) {
        int rc = refcache_client_flush(self);
        if (rc) {
            self->out_n--;
            self->out.len = was_len;
            self->out_last = was_last;
            return rc;
        }
    }
    return 0;
}

/* Queues a request that names a task (or Stats); with r->id 0 it takes the
 * next id. */
static int s_send_ref(refcache_client_t *self, rc_client_codec_ref_t *r, uint64_t *id)
{
    if (!r->id)
        r->id = ++self->next_id;
    size_t len = rc_client_codec_ref_size(r);
    int rc = REFCACHE_ENOMEM;
    uint8_t *at = s_queue(self, len, &rc);
    if (!at)
        return rc;
    uint8_t *end = rc_client_codec_ref_put(r, at);
    assert(end == at + len);
    (void) end;
    return s_commit(self, at, len, r->id, id);
}

static bool s_ref_ok(const char *ref_id)
{
    return ref_id && strlen(ref_id) <= REFCACHE_REF_MAX;
}

/* Queues a Submit, with the id again_id when it is sent again, else the
 * next. */
static int s_send_submit(refcache_client_t *self, const char *function,
                         const refcache_submit_options_t *options, uint64_t again_id, uint64_t *id)
{
    if (!function)
        return REFCACHE_EINVAL;
    refcache_submit_options_t defaults;
    if (!options) {
        refcache_submit_options_init(&defaults);
        options = &defaults;
    }
    if (options->param_count && !options->params)
        return REFCACHE_EINVAL;
    for (size_t i = 0; i < options->param_count; i++)
        if (!options->params[i].key || !options->params[i].value)
            return REFCACHE_EINVAL;
    rc_client_codec_submit_t s = {.function = function, .options = options};
    /* The submit's own namespace wins over the connection's. */
    s.ns =
        options->namespace_name && *options->namespace_name ? options->namespace_name : self->namespace_name;
    s.id = again_id ? again_id : ++self->next_id;
    size_t len = rc_client_codec_submit_size(&s);
    int rc = REFCACHE_ENOMEM;
    uint8_t *at = s_queue(self, len, &rc);
    if (!at)
        return rc;
    uint8_t *end = rc_client_codec_submit_put(&s, at);
    assert(end == at + len);
    (void) end;
    return s_commit(self, at, len, s.id, id);
}

int refcache_client_send_submit(refcache_client_t *self, const char *function,
                                const refcache_submit_options_t *options, uint64_t *id)
{
    return s_send_submit(self, function, options, 0, id);
}

/* The requests that name a task carry the connection's namespace. */
static int s_send_task_request(refcache_client_t *self, rc_client_codec_body_t body, const char *ref_id,
                               uint64_t num0, uint64_t num1, unsigned n_num, uint64_t *id)
{
    if (!s_ref_ok(ref_id))
        return REFCACHE_EINVAL;
    rc_client_codec_ref_t r = {
        .body = body, .ref_id = ref_id, .num = {num0, num1}, .n_num = n_num, .ns = self->namespace_name};
    return s_send_ref(self, &r, id);
}

int rc_client_send_again(refcache_client_t *self, const rc_client_again_t *a, uint64_t id)
{
    /* What is left of the time it asked the broker to hold the reply. */
    uint64_t spent_ms = (rc_mono_us() - a->start_us) / 1000;
    uint32_t left = a->hold_ms > spent_ms ? (uint32_t) (a->hold_ms - spent_ms) : 0;
    int rc;
    if (a->function) {
        refcache_submit_options_t o = *a->options;
        o.async_timeout_ms = left;
        rc = s_send_submit(self, a->function, &o, id, NULL);
    } else {
        rc_client_codec_ref_t r = {.id = id,
                                   .body = a->body,
                                   .ref_id = a->ref_id,
                                   .num = {a->body == RC_CLIENT_CODEC_WAIT ? left : a->num[0], a->num[1]},
                                   .n_num = a->n_num,
                                   .ns = a->ref_id ? self->namespace_name : NULL};
        rc = s_send_ref(self, &r, NULL);
    }
    return rc ? rc : refcache_client_flush(self);
}

int refcache_client_send_status(refcache_client_t *self, const char *ref_id, uint64_t *id)
{
    return s_send_task_request(self, RC_CLIENT_CODEC_STATUS, ref_id, 0, 0, 0, id);
}

int refcache_client_send_wait(refcache_client_t *self, const char *ref_id, uint32_t wait_ms, uint64_t *id)
{
    return s_send_task_request(self, RC_CLIENT_CODEC_WAIT, ref_id, wait_ms, 0, 1, id);
}

int refcache_client_send_fetch(refcache_client_t *self, const char *ref_id, uint64_t offset, uint32_t length,
                               uint64_t *id)
{
    return s_send_task_request(self, RC_CLIENT_CODEC_FETCH, ref_id, offset, length, 2, id);
}

int refcache_client_send_cancel(refcache_client_t *self, const char *ref_id, uint64_t *id)
{
    return s_send_task_request(self, RC_CLIENT_CODEC_CANCEL, ref_id, 0, 0, 0, id);
}

int refcache_client_send_delete(refcache_client_t *self, const char *ref_id, uint64_t *id)
{
    return s_send_task_request(self, RC_CLIENT_CODEC_DELETE, ref_id, 0, 0, 0, id);
}

int refcache_client_send_stats(refcache_client_t *self, uint64_t *id)
{
    rc_client_codec_ref_t r = {.body = RC_CLIENT_CODEC_STATS};
    return s_send_ref(self, &r, id);
}

int rc_client_send_pb(refcache_client_t *self, ProtobufCMessage *request, uint64_t *id)
{
    uint64_t rid = ++self->next_id;
    ((Refcache__V1__Request *) request)->id = rid;
    size_t len = protobuf_c_message_get_packed_size(request);
    int rc = REFCACHE_ENOMEM;
    uint8_t *at = s_queue(self, len, &rc);
    if (!at)
        return rc;
    protobuf_c_message_pack(request, at);
    return s_commit(self, at, len, rid, id);
}

const char *rc_client_namespace(const refcache_client_t *self)
{
    return self->namespace_name;
}

rc_client_watch_t *rc_client_watch_state(refcache_client_t *self)
{
    return &self->watch;
}

/* ------------------------------------------------------------ receiving */

/* Waits until the socket is readable or the deadline (monotonic us) passes;
 * RC_CLIENT_ECOMEBACK when the broker came back meanwhile. */
static int s_poll(refcache_client_t *self, uint64_t deadline_us)
{
    for (;;) {
        uint64_t now = rc_mono_us();
        long timeout = now >= deadline_us ? 0 : (long) ((deadline_us - now + 999) / 1000);
        int n = rc_client_mon_poll(&self->mon, self->handle, timeout);
        if (n == RC_CLIENT_COMEBACK)
            return RC_CLIENT_ECOMEBACK;
        if (n > 0)
            return 0;
        if (n < 0) {
            if (zmq_errno() != EINTR)
                return REFCACHE_ETRANSPORT;
            if (zsys_interrupted)
                return REFCACHE_EINTR;
            continue;
        }
        if (rc_mono_us() >= deadline_us)
            return REFCACHE_ETIMEOUT;
    }
}

/* Receives the next frame into msg (its last, when there are several),
 * waiting until deadline_us, or when that is 0, until timeout_ms after the
 * first wait (the clock is read only when there is a wait). */
static int s_recv_frame(refcache_client_t *self, uint64_t deadline_us, int timeout_ms)
{
    bool polled = false;
    while (zmq_msg_recv(&self->msg, self->handle, ZMQ_DONTWAIT) < 0) {
        if (zmq_errno() != EAGAIN && zmq_errno() != EINTR)
            return REFCACHE_ETRANSPORT;
        if (!deadline_us)
            deadline_us = rc_mono_us() + (uint64_t) (timeout_ms > 0 ? timeout_ms : 0) * 1000;
        if (polled && rc_mono_us() >= deadline_us)
            return REFCACHE_ETIMEOUT;
        int rc = s_poll(self, deadline_us);
        if (rc)
            return rc;
        polled = true;
    }
    while (zmq_msg_more(&self->msg)) {
        if (zmq_msg_recv(&self->msg, self->handle, ZMQ_DONTWAIT) < 0)
            return zmq_errno() == EAGAIN ? REFCACHE_ETIMEOUT : REFCACHE_ETRANSPORT;
    }
    return 0;
}

/* Receives one reply: the next of the ReplyBatch being read, else the next
 * frame (its last: a DEALER gets just [Reply]), a lone Reply or a batch.
 * Unpacks it into the arena. A frame already queued is taken without
 * polling (a poll is a system call, a queued message is not). */
static int s_recv_reply(refcache_client_t *self, uint64_t deadline_us, int timeout_ms, refcache_reply_t *out)
{
    memset(out, 0, sizeof *out); /* id 0 matches no request: garbage is discarded */
    int rc = refcache_client_flush(self);
    if (rc)
        return rc;
    const uint8_t *data;
    size_t len;
    if (!rc_wire_entry(&self->in_next, self->in_end, &data, &len)) {
        self->in_next = self->in_end = NULL;
        if ((rc = s_recv_frame(self, deadline_us, timeout_ms)) != 0)
            return rc;
        data = zmq_msg_data(&self->msg);
        len = zmq_msg_size(&self->msg);
        if (rc_client_codec_reply_batch(data, len, &self->in_next, &self->in_end) &&
            !rc_wire_entry(&self->in_next, self->in_end, &data, &len))
            return REFCACHE_EREPLY; /* an empty batch */
    }
    rc_arena_reset_to_fit(self->arena);
    rc = rc_client_codec_reply(data, len, &self->arena->pa, out);
    return rc == REFCACHE_EREPLY && self->arena->failed ? REFCACHE_ENOMEM : rc;
}

int refcache_client_recv(refcache_client_t *self, refcache_reply_t *reply, int timeout_ms)
{
    if (!self || !reply)
        return REFCACHE_EINVAL;
    self->message = "";
    /* A pipelined caller sends its requests again itself, if it wants to
     * (a comeback, rare, only starts the wait anew). */
    int rc;
    while ((rc = s_recv_reply(self, 0, timeout_ms, reply)) == RC_CLIENT_ECOMEBACK)
        ;
    if (rc == 0)
        self->message = reply->message;
    return rc;
}

/* Waits for the reply to request id, discarding any other (late replies to
 * calls that timed out, or to a request sent twice). When the broker comes
 * back meanwhile, the request is sent again (again; NULL: it is not
 * idempotent, and only waited for). Returns the reply's code or a library
 * error. */
static int s_await(refcache_client_t *self, uint64_t id, uint64_t timeout_ms, refcache_reply_kind_t kind,
                   refcache_reply_t *out, const rc_client_again_t *again)
{
    self->message = "";
    uint64_t deadline = rc_mono_us() + timeout_ms * 1000;
    for (;;) {
        int rc = s_recv_reply(self, deadline, 0, out);
        if (rc == RC_CLIENT_ECOMEBACK) {
            if (again && (rc = rc_client_send_again(self, again, id)) != 0)
                return rc;
            continue;
        }
        if ((rc == REFCACHE_EREPLY || rc == REFCACHE_ENOMEM) && out->id != id) {
            self->discarded++;
            continue;
        }
        if (rc)
            return rc;
        if (out->id != id) {
            self->discarded++;
            continue;
        }
        self->message = out->message;
        if (out->kind != kind && out->kind != REFCACHE_REPLY_NONE)
            return REFCACHE_EREPLY;
        if (out->kind == REFCACHE_REPLY_NONE && out->code == 0)
            return REFCACHE_EREPLY; /* OK must carry its body */
        return out->code;
    }
}

int rc_client_await(refcache_client_t *self, uint64_t id, int timeout_ms, refcache_reply_kind_t kind,
                    refcache_reply_t *out)
{
    return s_await(self, id, (uint64_t) (timeout_ms > 0 ? timeout_ms : 0), kind, out, NULL);
}

int rc_client_await_again(refcache_client_t *self, uint64_t id, uint64_t timeout_ms, refcache_reply_kind_t kind,
                          refcache_reply_t *out, const rc_client_again_t *again)
{
    return s_await(self, id, timeout_ms, kind, out, again);
}
