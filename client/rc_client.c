/* rc_client: see rc_client.h. One DEALER socket; requests are packed
 * straight into ZeroMQ messages and replies are unpacked into an arena that
 * is reset per reply, so steady-state traffic allocates nothing here. */
#include "rc_client.h"
#include "rc_common.h"
#include "rc_pages.h"

#include <czmq.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RC_DEFAULT_ENDPOINT "tcp://127.0.0.1:5570"
#define ARENA_ALIGN         16

/* A chunk the arena had to malloc because its main buffer was full; freed
 * (and folded into a bigger main buffer) at the next reset. */
typedef struct arena_chunk {
    struct arena_chunk *next;
    max_align_t data[];
} arena_chunk_t;

typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t used;
    arena_chunk_t *chunks;
    size_t overflow;
    bool failed;
} arena_t;

struct rc_client {
    zsock_t *sock;
    void *handle;
    uint64_t next_id;
    uint64_t discarded;
    zmq_msg_t msg;
    arena_t arena;
    ProtobufCAllocator allocator;
    const char *message;
    char *namespace_name; /* NULL: the default namespace */
};

static void *s_arena_alloc(void *data, size_t size)
{
    arena_t *arena = data;
    size = (size + ARENA_ALIGN - 1) & ~(size_t) (ARENA_ALIGN - 1);
    if (arena->used + size <= arena->cap) {
        void *p = arena->buf + arena->used;
        arena->used += size;
        return p;
    }
    arena_chunk_t *chunk = malloc(sizeof *chunk + size);
    if (!chunk) {
        arena->failed = true;
        return NULL;
    }
    chunk->next = arena->chunks;
    arena->chunks = chunk;
    arena->overflow += size;
    return chunk->data;
}

static void s_arena_free(void *data, void *ptr)
{
    /* Everything goes at once in s_arena_reset. */
}

static void s_arena_reset(arena_t *arena)
{
    while (arena->chunks) {
        arena_chunk_t *next = arena->chunks->next;
        free(arena->chunks);
        arena->chunks = next;
    }
    if (arena->overflow) {
        /* The last reply did not fit: grow so that one like it will. */
        size_t cap = (arena->used + arena->overflow) * 2;
        uint8_t *buf = malloc(cap);
        if (buf) {
            free(arena->buf);
            arena->buf = buf;
            arena->cap = cap;
        }
    }
    arena->used = 0;
    arena->overflow = 0;
    arena->failed = false;
}

static void s_arena_destroy(arena_t *arena)
{
    s_arena_reset(arena);
    free(arena->buf);
    memset(arena, 0, sizeof *arena);
}

static void s_errmsg(char *errbuf, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (errbuf && errlen)
        snprintf(errbuf, errlen, fmt, a, b);
}

void rc_client_options_init(rc_client_options_t *options)
{
    memset(options, 0, sizeof *options);
}

void rc_submit_options_init(rc_submit_options_t *options)
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

rc_client_t *rc_client_new(const rc_client_options_t *options, char *errbuf, size_t errlen)
{
    rc_client_options_t defaults;
    if (!options) {
        rc_client_options_init(&defaults);
        options = &defaults;
    }
    const char *endpoint = options->endpoint && *options->endpoint ? options->endpoint : RC_DEFAULT_ENDPOINT;
    if (!options->curve_secret_file != !options->broker_public_file) {
        s_errmsg(errbuf, errlen,
                 "CURVE needs both the client secret certificate and the broker public one%s%s", "", "");
        return NULL;
    }
    rc_client_t *self = calloc(1, sizeof *self);
    if (!self) {
        s_errmsg(errbuf, errlen, "out of memory%s%s", "", "");
        return NULL;
    }
    self->message = "";
    self->allocator.alloc = s_arena_alloc;
    self->allocator.free = s_arena_free;
    self->allocator.allocator_data = &self->arena;
    zmq_msg_init(&self->msg);
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
    return self;
fail:
    rc_client_destroy(&self);
    return NULL;
}

void rc_client_destroy(rc_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rc_client_t *self = *self_p;
    zsock_destroy(&self->sock);
    zmq_msg_close(&self->msg);
    s_arena_destroy(&self->arena);
    free(self->namespace_name);
    free(self);
    *self_p = NULL;
}

const char *rc_client_strerror(int rc)
{
    switch (rc) {
    case RC_CLIENT_ETIMEOUT:
        return "timed out waiting for the broker";
    case RC_CLIENT_ETRANSPORT:
        return "transport error";
    case RC_CLIENT_EREPLY:
        return "bad reply from the broker";
    case RC_CLIENT_EINVAL:
        return "invalid argument";
    case RC_CLIENT_ENOMEM:
        return "out of memory";
    case RC_CLIENT_ECURVE:
        return "CURVE certificate error";
    case RC_CLIENT_EINTR:
        return "interrupted";
    case RC_CLIENT_EOUTOFORDER:
        return "result pages do not fit together";
    case RC_CLIENT_EAGAIN:
        return "send queue full";
    default:
        return rc_code_name(rc);
    }
}

const char *rc_client_message(rc_client_t *self)
{
    return self->message ? self->message : "";
}

uint64_t rc_client_discarded(rc_client_t *self)
{
    return self->discarded;
}

void *rc_client_socket(rc_client_t *self)
{
    return self->handle;
}

/* ------------------------------------------------------------ sending */

static int s_send(rc_client_t *self, Refcache__V1__Request *req, uint64_t *id)
{
    req->id = ++self->next_id;
    size_t size = refcache__v1__request__get_packed_size(req);
    zmq_msg_t m;
    if (zmq_msg_init_size(&m, size) != 0)
        return RC_CLIENT_ENOMEM;
    refcache__v1__request__pack(req, zmq_msg_data(&m));
    if (zmq_msg_send(&m, self->handle, ZMQ_DONTWAIT) < 0) {
        int err = zmq_errno();
        zmq_msg_close(&m);
        return err == EAGAIN ? RC_CLIENT_EAGAIN : RC_CLIENT_ETRANSPORT;
    }
    if (id)
        *id = req->id;
    return 0;
}

/* Points a request's namespace field at the connection's (if it has one). */
static void s_set_namespace(rc_client_t *self, char **field)
{
    if (self->namespace_name)
        *field = self->namespace_name;
}

static bool s_ref_ok(const char *ref_id)
{
    return ref_id && strlen(ref_id) <= RC_CLIENT_REF_MAX;
}

/* Fills a SubmitRequest; params points at caller storage for the entries. */
static int s_send_submit(rc_client_t *self, const char *function, const rc_submit_options_t *options,
                         uint64_t *id)
{
    if (!function)
        return RC_CLIENT_EINVAL;
    rc_submit_options_t defaults;
    if (!options) {
        rc_submit_options_init(&defaults);
        options = &defaults;
    }
    if (options->param_count && !options->params)
        return RC_CLIENT_EINVAL;
    Refcache__V1__SubmitRequest sub = REFCACHE__V1__SUBMIT_REQUEST__INIT;
    Refcache__V1__SubmitRequest__ParamsEntry stack_entries[16];
    Refcache__V1__SubmitRequest__ParamsEntry *stack_ptrs[16];
    Refcache__V1__SubmitRequest__ParamsEntry *entries = stack_entries;
    Refcache__V1__SubmitRequest__ParamsEntry **ptrs = stack_ptrs;
    size_t n = options->param_count;
    if (n > 16) {
        entries = malloc(n * sizeof *entries);
        ptrs = malloc(n * sizeof *ptrs);
        if (!entries || !ptrs) {
            free(entries);
            free(ptrs);
            return RC_CLIENT_ENOMEM;
        }
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!options->params[i].key || !options->params[i].value) {
            rc = RC_CLIENT_EINVAL;
            goto done;
        }
        Refcache__V1__SubmitRequest__ParamsEntry init = REFCACHE__V1__SUBMIT_REQUEST__PARAMS_ENTRY__INIT;
        entries[i] = init;
        entries[i].key = (char *) options->params[i].key;
        entries[i].value = (char *) options->params[i].value;
        ptrs[i] = &entries[i];
    }
    sub.function = (char *) function;
    sub.n_params = n;
    sub.params = n ? ptrs : NULL;
    sub.payload.data = (uint8_t *) options->payload;
    sub.payload.len = options->payload ? options->payload_len : 0;
    sub.async_timeout_ms = options->async_timeout_ms;
    sub.deadline_ms = options->deadline_ms;
    sub.max_retries = options->max_retries;
    sub.ttl_s = options->ttl_s;
    /* The submit's own namespace wins over the connection's. */
    if (options->namespace_name && *options->namespace_name)
        sub.namespace_ = (char *) options->namespace_name;
    else if (self->namespace_name)
        sub.namespace_ = self->namespace_name;
    sub.no_cache = options->no_cache;

    Refcache__V1__Request req = REFCACHE__V1__REQUEST__INIT;
    req.body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
    req.submit = &sub;
    rc = s_send(self, &req, id);
done:
    if (entries != stack_entries) {
        free(entries);
        free(ptrs);
    }
    return rc;
}

int rc_client_send_submit(rc_client_t *self, const char *function, const rc_submit_options_t *options,
                          uint64_t *id)
{
    return s_send_submit(self, function, options, id);
}

int rc_client_send_status(rc_client_t *self, const char *ref_id, uint64_t *id)
{
    if (!s_ref_ok(ref_id))
        return RC_CLIENT_EINVAL;
    Refcache__V1__StatusRequest body = REFCACHE__V1__STATUS_REQUEST__INIT;
    body.ref_id = (char *) ref_id;
    s_set_namespace(self, &body.namespace_);
    Refcache__V1__Request req = REFCACHE__V1__REQUEST__INIT;
    req.body_case = REFCACHE__V1__REQUEST__BODY_STATUS;
    req.status = &body;
    return s_send(self, &req, id);
}

int rc_client_send_wait(rc_client_t *self, const char *ref_id, uint32_t wait_ms, uint64_t *id)
{
    if (!s_ref_ok(ref_id))
        return RC_CLIENT_EINVAL;
    Refcache__V1__WaitRequest body = REFCACHE__V1__WAIT_REQUEST__INIT;
    body.ref_id = (char *) ref_id;
    s_set_namespace(self, &body.namespace_);
    body.timeout_ms = wait_ms;
    Refcache__V1__Request req = REFCACHE__V1__REQUEST__INIT;
    req.body_case = REFCACHE__V1__REQUEST__BODY_WAIT;
    req.wait = &body;
    return s_send(self, &req, id);
}

int rc_client_send_fetch(rc_client_t *self, const char *ref_id, uint64_t offset, uint32_t length,
                         uint64_t *id)
{
    if (!s_ref_ok(ref_id))
        return RC_CLIENT_EINVAL;
    Refcache__V1__FetchRequest body = REFCACHE__V1__FETCH_REQUEST__INIT;
    body.ref_id = (char *) ref_id;
    s_set_namespace(self, &body.namespace_);
    body.offset = offset;
    body.length = length;
    Refcache__V1__Request req = REFCACHE__V1__REQUEST__INIT;
    req.body_case = REFCACHE__V1__REQUEST__BODY_FETCH;
    req.fetch = &body;
    return s_send(self, &req, id);
}

int rc_client_send_cancel(rc_client_t *self, const char *ref_id, uint64_t *id)
{
    if (!s_ref_ok(ref_id))
        return RC_CLIENT_EINVAL;
    Refcache__V1__CancelRequest body = REFCACHE__V1__CANCEL_REQUEST__INIT;
    body.ref_id = (char *) ref_id;
    s_set_namespace(self, &body.namespace_);
    Refcache__V1__Request req = REFCACHE__V1__REQUEST__INIT;
    req.body_case = REFCACHE__V1__REQUEST__BODY_CANCEL;
    req.cancel = &body;
    return s_send(self, &req, id);
}

int rc_client_send_delete(rc_client_t *self, const char *ref_id, uint64_t *id)
{
    if (!s_ref_ok(ref_id))
        return RC_CLIENT_EINVAL;
    Refcache__V1__DeleteRequest body = REFCACHE__V1__DELETE_REQUEST__INIT;
    body.ref_id = (char *) ref_id;
    s_set_namespace(self, &body.namespace_);
    Refcache__V1__Request req = REFCACHE__V1__REQUEST__INIT;
    req.body_case = REFCACHE__V1__REQUEST__BODY_DELETE;
    req.delete_ = &body;
    return s_send(self, &req, id);
}

int rc_client_send_stats(rc_client_t *self, uint64_t *id)
{
    Refcache__V1__StatsRequest body = REFCACHE__V1__STATS_REQUEST__INIT;
    Refcache__V1__Request req = REFCACHE__V1__REQUEST__INIT;
    req.body_case = REFCACHE__V1__REQUEST__BODY_STATS;
    req.stats = &body;
    return s_send(self, &req, id);
}

/* ------------------------------------------------------------ receiving */

static int s_fill_task(rc_task_info_t *t, const Refcache__V1__TaskInfo *ti)
{
    memset(t, 0, sizeof *t);
    if (!ti)
        return RC_CLIENT_EREPLY;
    size_t n = ti->ref_id ? strlen(ti->ref_id) : 0;
    if (n > RC_CLIENT_REF_MAX)
        return RC_CLIENT_EREPLY;
    if (n)
        memcpy(t->ref_id, ti->ref_id, n);
    t->ref_id[n] = '\0';
    t->state = ti->state;
    t->result = ti->result.data;
    t->result_len = ti->result.len;
    t->result_size = ti->result_size;
    t->result_truncated = ti->result_truncated;
    t->progress_done = ti->progress_done;
    t->progress_total = ti->progress_total;
    t->attempt = ti->attempt;
    t->error_code = ti->error_code;
    t->error = ti->error ? ti->error : "";
    t->function = ti->function ? ti->function : "";
    t->namespace_name = ti->namespace_ ? ti->namespace_ : "";
    t->created_at_us = ti->created_at_us;
    t->started_at_us = ti->started_at_us;
    t->finished_at_us = ti->finished_at_us;
    t->stopped_at_us = ti->stopped_at_us;
    t->expires_at_us = ti->expires_at_us;
    t->max_retries = ti->max_retries;
    t->ever_started = ti->ever_started;
    return 0;
}

static void s_fill_stats(rc_stats_t *s, const Refcache__V1__StatsReply *r)
{
    s->tasks_pending = r->tasks_pending;
    s->tasks_processing = r->tasks_processing;
    s->tasks_complete = r->tasks_complete;
    s->tasks_failed = r->tasks_failed;
    s->tasks_cancelled = r->tasks_cancelled;
    s->queue_depth = r->queue_depth;
    s->workers = r->workers;
    s->workers_busy = r->workers_busy;
    s->cache_bytes = r->cache_bytes;
    s->cache_entries = r->cache_entries;
    s->submitted_total = r->submitted_total;
    s->completed_total = r->completed_total;
    s->failed_total = r->failed_total;
    s->cancelled_total = r->cancelled_total;
    s->cache_hits_total = r->cache_hits_total;
    s->dedup_total = r->dedup_total;
    s->expired_total = r->expired_total;
    s->evicted_total = r->evicted_total;
    s->retries_total = r->retries_total;
    s->workers_lost_total = r->workers_lost_total;
    s->bad_requests_total = r->bad_requests_total;
    s->bad_worker_msgs_total = r->bad_worker_msgs_total;
    s->stale_msgs_total = r->stale_msgs_total;
    s->dropped_replies_total = r->dropped_replies_total;
    s->waiters = r->waiters;
    s->rss_bytes = r->rss_bytes;
    s->uptime_ms = r->uptime_ms;
    s->requests_total = r->requests_total;
    s->resource_exhausted_total = r->resource_exhausted_total;
    s->deadline_exceeded_total = r->deadline_exceeded_total;
    snprintf(s->version, sizeof s->version, "%s", r->version ? r->version : "");
}

/* Decodes the Reply the arena holds into a view. */
static int s_fill_reply(rc_reply_t *out, const Refcache__V1__Reply *r)
{
    memset(out, 0, sizeof *out);
    out->id = r->id;
    out->code = r->code;
    out->message = r->message ? r->message : "";
    switch (r->body_case) {
    case REFCACHE__V1__REPLY__BODY_SUBMIT:
        out->kind = RC_REPLY_SUBMIT;
        if (!r->submit || s_fill_task(&out->task, r->submit->task) != 0)
            return RC_CLIENT_EREPLY;
        out->task.cache_hit = r->submit->cache_hit;
        out->task.deduplicated = r->submit->deduplicated;
        break;
    case REFCACHE__V1__REPLY__BODY_TASK:
        out->kind = RC_REPLY_TASK;
        return s_fill_task(&out->task, r->task);
    case REFCACHE__V1__REPLY__BODY_FETCH:
        out->kind = RC_REPLY_FETCH;
        if (!r->fetch)
            return RC_CLIENT_EREPLY;
        out->fetch.data = r->fetch->data.data;
        out->fetch.len = r->fetch->data.len;
        out->fetch.offset = r->fetch->offset;
        out->fetch.total_size = r->fetch->total_size;
        break;
    case REFCACHE__V1__REPLY__BODY_CANCEL:
        out->kind = RC_REPLY_CANCEL;
        if (!r->cancel)
            return RC_CLIENT_EREPLY;
        out->cancelled = r->cancel->cancelled;
        out->cancel_state = r->cancel->state;
        break;
    case REFCACHE__V1__REPLY__BODY_DELETE:
        out->kind = RC_REPLY_DELETE;
        if (!r->delete_)
            return RC_CLIENT_EREPLY;
        out->found = r->delete_->found;
        break;
    case REFCACHE__V1__REPLY__BODY_STATS:
        out->kind = RC_REPLY_STATS;
        if (!r->stats)
            return RC_CLIENT_EREPLY;
        s_fill_stats(&out->stats, r->stats);
        break;
    default:
        out->kind = RC_REPLY_NONE;
        break;
    }
    return 0;
}

/* Waits until the socket is readable or the deadline (monotonic us) passes. */
static int s_poll(rc_client_t *self, uint64_t deadline_us)
{
    for (;;) {
        uint64_t now = rc_mono_us();
        long timeout = now >= deadline_us ? 0 : (long) ((deadline_us - now + 999) / 1000);
        zmq_pollitem_t item = {self->handle, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&item, 1, timeout);
        if (n > 0)
            return 0;
        if (n < 0) {
            if (zmq_errno() != EINTR)
                return RC_CLIENT_ETRANSPORT;
            if (zsys_interrupted)
                return RC_CLIENT_EINTR;
            continue;
        }
        if (rc_mono_us() >= deadline_us)
            return RC_CLIENT_ETIMEOUT;
    }
}

/* Receives one reply (its last frame: a DEALER gets just [Reply]) and unpacks
 * it into the arena. A reply already queued is taken without polling (a poll
 * is a system call, a queued message is not). */
static int s_recv_reply(rc_client_t *self, uint64_t deadline_us, rc_reply_t *out)
{
    memset(out, 0, sizeof *out); /* id 0 matches no request: garbage is discarded */
    bool polled = false;
    while (zmq_msg_recv(&self->msg, self->handle, ZMQ_DONTWAIT) < 0) {
        if (zmq_errno() != EAGAIN && zmq_errno() != EINTR)
            return RC_CLIENT_ETRANSPORT;
        if (polled && rc_mono_us() >= deadline_us)
            return RC_CLIENT_ETIMEOUT;
        int rc = s_poll(self, deadline_us);
        if (rc)
            return rc;
        polled = true;
    }
    while (zmq_msg_more(&self->msg)) {
        if (zmq_msg_recv(&self->msg, self->handle, ZMQ_DONTWAIT) < 0)
            return zmq_errno() == EAGAIN ? RC_CLIENT_ETIMEOUT : RC_CLIENT_ETRANSPORT;
    }
    s_arena_reset(&self->arena);
    Refcache__V1__Reply *reply =
        refcache__v1__reply__unpack(&self->allocator, zmq_msg_size(&self->msg), zmq_msg_data(&self->msg));
    if (!reply)
        return self->arena.failed ? RC_CLIENT_ENOMEM : RC_CLIENT_EREPLY;
    return s_fill_reply(out, reply);
}

int rc_client_recv(rc_client_t *self, rc_reply_t *reply, int timeout_ms)
{
    if (!self || !reply)
        return RC_CLIENT_EINVAL;
    self->message = "";
    uint64_t deadline = rc_mono_us() + (uint64_t) (timeout_ms > 0 ? timeout_ms : 0) * 1000;
    int rc = s_recv_reply(self, deadline, reply);
    if (rc == 0)
        self->message = reply->message;
    return rc;
}

/* Waits for the reply to request id, discarding any other (late replies to
 * calls that timed out). Returns the reply's code or a library error. */
static int s_await(rc_client_t *self, uint64_t id, uint64_t timeout_ms, rc_reply_kind_t kind, rc_reply_t *out)
{
    self->message = "";
    uint64_t deadline = rc_mono_us() + timeout_ms * 1000;
    for (;;) {
        int rc = s_recv_reply(self, deadline, out);
        if ((rc == RC_CLIENT_EREPLY || rc == RC_CLIENT_ENOMEM) && out->id != id) {
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
        if (out->kind != kind && out->kind != RC_REPLY_NONE)
            return RC_CLIENT_EREPLY;
        if (out->kind == RC_REPLY_NONE && out->code == 0)
            return RC_CLIENT_EREPLY; /* OK must carry its body */
        return out->code;
    }
}

static uint64_t s_timeout(int timeout_ms, uint32_t hold_ms)
{
    return (uint64_t) (timeout_ms > 0 ? timeout_ms : 0) + hold_ms;
}

/* Copies the borrowed strings and bytes of a view into one block it owns. */
static int s_task_own(rc_task_info_t *t)
{
    size_t nerr = strlen(t->error) + 1, nfn = strlen(t->function) + 1, nns = strlen(t->namespace_name) + 1;
    uint8_t *block = malloc(t->result_len + nerr + nfn + nns);
    if (!block) {
        memset(t, 0, sizeof *t);
        return RC_CLIENT_ENOMEM;
    }
    uint8_t *p = block;
    if (t->result_len)
        memcpy(p, t->result, t->result_len);
    t->result = t->result_len ? p : NULL;
    p += t->result_len;
    memcpy(p, t->error, nerr);
    t->error = (char *) p;
    p += nerr;
    memcpy(p, t->function, nfn);
    t->function = (char *) p;
    p += nfn;
    memcpy(p, t->namespace_name, nns);
    t->namespace_name = (char *) p;
    t->owned_ = block;
    return 0;
}

static void s_task_empty(rc_task_info_t *t)
{
    memset(t, 0, sizeof *t);
    t->error = t->function = t->namespace_name = "";
}

/* Finishes a blocking call that answers with a task. */
static int s_task_result(rc_client_t *self, int rc, rc_reply_t *reply, rc_task_info_t *info)
{
    s_task_empty(info);
    if (rc < 0 || reply->kind == RC_REPLY_NONE)
        return rc;
    *info = reply->task;
    int own = s_task_own(info);
    return own ? own : rc;
}

void rc_task_info_free(rc_task_info_t *info)
{
    if (!info)
        return;
    free(info->owned_);
    s_task_empty(info);
}

void rc_fetch_free(rc_fetch_t *page)
{
    if (!page)
        return;
    free(page->owned_);
    memset(page, 0, sizeof *page);
}

int rc_client_submit(rc_client_t *self, const char *function, const rc_submit_options_t *options,
                     rc_task_info_t *info, int timeout_ms)
{
    if (!self || !info)
        return RC_CLIENT_EINVAL;
    s_task_empty(info);
    uint64_t id;
    int rc = s_send_submit(self, function, options, &id);
    if (rc)
        return rc;
    rc_reply_t reply;
    rc = s_await(self, id, s_timeout(timeout_ms, options ? options->async_timeout_ms : 0), RC_REPLY_SUBMIT,
                 &reply);
    return s_task_result(self, rc, &reply, info);
}

int rc_client_status(rc_client_t *self, const char *ref_id, rc_task_info_t *info, int timeout_ms)
{
    if (!self || !info)
        return RC_CLIENT_EINVAL;
    s_task_empty(info);
    uint64_t id;
    int rc = rc_client_send_status(self, ref_id, &id);
    if (rc)
        return rc;
    rc_reply_t reply;
    rc = s_await(self, id, s_timeout(timeout_ms, 0), RC_REPLY_TASK, &reply);
    return s_task_result(self, rc, &reply, info);
}

int rc_client_wait(rc_client_t *self, const char *ref_id, uint32_t wait_ms, rc_task_info_t *info,
                   int timeout_ms)
{
    if (!self || !info)
        return RC_CLIENT_EINVAL;
    s_task_empty(info);
    uint64_t id;
    int rc = rc_client_send_wait(self, ref_id, wait_ms, &id);
    if (rc)
        return rc;
    rc_reply_t reply;
    rc = s_await(self, id, s_timeout(timeout_ms, wait_ms), RC_REPLY_TASK, &reply);
    return s_task_result(self, rc, &reply, info);
}

int rc_client_fetch(rc_client_t *self, const char *ref_id, uint64_t offset, uint32_t length, rc_fetch_t *page,
                    int timeout_ms)
{
    if (!self || !page)
        return RC_CLIENT_EINVAL;
    memset(page, 0, sizeof *page);
    uint64_t id;
    int rc = rc_client_send_fetch(self, ref_id, offset, length, &id);
    if (rc)
        return rc;
    rc_reply_t reply;
    rc = s_await(self, id, s_timeout(timeout_ms, 0), RC_REPLY_FETCH, &reply);
    if (rc < 0 || reply.kind != RC_REPLY_FETCH)
        return rc;
    *page = reply.fetch;
    uint8_t *copy = malloc(page->len ? page->len : 1);
    if (!copy) {
        memset(page, 0, sizeof *page);
        return RC_CLIENT_ENOMEM;
    }
    if (page->len)
        memcpy(copy, page->data, page->len);
    page->data = copy;
    page->owned_ = copy;
    return rc;
}

int rc_client_fetch_all(rc_client_t *self, const char *ref_id, uint32_t page_len, uint8_t **data, size_t *len,
                        int timeout_ms)
{
    if (!self || !data || !len)
        return RC_CLIENT_EINVAL;
    *data = NULL;
    *len = 0;
    rc_pages_t pages;
    rc_pages_init(&pages);
    int rc = 0;
    do {
        uint64_t offset = rc_pages_next_offset(&pages), id;
        rc = rc_client_send_fetch(self, ref_id, offset, page_len, &id);
        if (rc)
            break;
        rc_reply_t reply;
        rc = s_await(self, id, s_timeout(timeout_ms, 0), RC_REPLY_FETCH, &reply);
        if (rc)
            break;
        /* A reply whose offset field is unset (0) answers the offset asked. */
        uint64_t at = reply.fetch.offset ? reply.fetch.offset : offset;
        rc = rc_pages_add(&pages, at, reply.fetch.total_size, reply.fetch.data, reply.fetch.len);
    } while (rc == 0 && !rc_pages_done(&pages));
    if (rc == 0) {
        *data = rc_pages_take(&pages, len);
        if (!*data)
            rc = RC_CLIENT_ENOMEM;
    }
    rc_pages_free(&pages);
    return rc;
}

int rc_client_cancel(rc_client_t *self, const char *ref_id, bool *cancelled, int *state, int timeout_ms)
{
    if (cancelled)
        *cancelled = false;
    if (state)
        *state = 0;
    if (!self)
        return RC_CLIENT_EINVAL;
    uint64_t id;
    int rc = rc_client_send_cancel(self, ref_id, &id);
    if (rc)
        return rc;
    rc_reply_t reply;
    rc = s_await(self, id, s_timeout(timeout_ms, 0), RC_REPLY_CANCEL, &reply);
    if (rc >= 0 && reply.kind == RC_REPLY_CANCEL) {
        if (cancelled)
            *cancelled = reply.cancelled;
        if (state)
            *state = reply.cancel_state;
    }
    return rc;
}

int rc_client_delete(rc_client_t *self, const char *ref_id, bool *found, int timeout_ms)
{
    if (found)
        *found = false;
    if (!self)
        return RC_CLIENT_EINVAL;
    uint64_t id;
    int rc = rc_client_send_delete(self, ref_id, &id);
    if (rc)
        return rc;
    rc_reply_t reply;
    rc = s_await(self, id, s_timeout(timeout_ms, 0), RC_REPLY_DELETE, &reply);
    if (rc >= 0 && reply.kind == RC_REPLY_DELETE && found)
        *found = reply.found;
    return rc;
}

int rc_client_stats(rc_client_t *self, rc_stats_t *stats, int timeout_ms)
{
    if (!self || !stats)
        return RC_CLIENT_EINVAL;
    memset(stats, 0, sizeof *stats);
    uint64_t id;
    int rc = rc_client_send_stats(self, &id);
    if (rc)
        return rc;
    rc_reply_t reply;
    rc = s_await(self, id, s_timeout(timeout_ms, 0), RC_REPLY_STATS, &reply);
    if (rc >= 0 && reply.kind == RC_REPLY_STATS)
        *stats = reply.stats;
    return rc;
}
