/* rc_ops: the client operations (see rc_ops.h). */
#include "rc_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rc_common.h"
#include "rc_core.h"

#define CODE(name) REFCACHE__V1__CODE__CODE_##name

static bool printable(const char *s, size_t len)
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

static rc_cause_t client_cause(const rc_core_t *core)
{
    return (rc_cause_t){
        .kind = RC_CAUSE_CLIENT, .owner = core->owner, .rid = core->rid, .rid_len = (uint8_t) core->rid_len};
}

/* A request that was read but asks for something invalid. */
static void refuse(rc_core_t *core, uint64_t id, const char *why)
{
    core->c.bad_requests++;
    rc_reply_error(core, id, CODE(INVALID_ARGUMENT), why);
}

/* A frame that is not a request the broker can read. */
static void bad_request(rc_core_t *core, uint64_t id, const char *why)
{
    core->c.requests++;
    core->c.bad_requests++;
    rc_reply_error(core, id, CODE(INVALID_ARGUMENT), why);
}

/* ---------------------------------------------------------------- submit */

static const char *submit_invalid(const rc_request_t *req)
{
    if (req->function.len == 0)
        return "submit needs a function name";
    if (req->function.len > RC_MAX_NAME || !printable(req->function.ptr, req->function.len))
        return "function name too long or not printable";
    if (req->ns.len > RC_MAX_NAME || !printable(req->ns.ptr, req->ns.len))
        return "namespace too long or not printable";
    if (req->n_params > RC_MAX_PARAMS)
        return "too many params";
    if (req->request_key.len > RC_MAX_REQUEST_KEY)
        return "request_key over " RC_STR(RC_MAX_REQUEST_KEY) " bytes";
    return NULL;
}

uint64_t rc_ops_clamp(rc_core_t *core, const char *field, uint64_t requested, uint64_t limit)
{
    if (requested <= limit)
        return requested;
    if (core->n_clamps < sizeof core->clamps / sizeof core->clamps[0])
        core->clamps[core->n_clamps++] = (rc_clamp_t){.field = field, .requested = requested, .used = limit};
    return limit;
}

/* Holds the reply to the request being handled until t (handle h) ends or
 * timeout_ms passes. False when it answers now: no time asked, t is done,
 * or no more replies can be held (--max-waiters: then the time is clamped
 * to 0, and the reply says so). */
static bool hold(rc_core_t *core, rc_task_t *t, rc_handle_t *h, uint64_t id, int kind, uint32_t timeout_ms,
                 unsigned sflags, const char *field)
{
    if (timeout_ms == 0 || rc_task_terminal(rc_handles_state(t, h)))
        return false;
    if (rc_waiter_add(core, t, h, id, kind, timeout_ms, sflags) == 0)
        return true;
    if (core->waiters >= core->cfg.max_waiters) {
        core->c.resource_exhausted++;
        rc_ops_clamp(core, field, timeout_ms, 0);
    }
    return false;
}

/* The numbers of a Submit within the broker's limits (0: the defaults). */
static void submit_numbers(rc_core_t *core, rc_request_t *req)
{
    req->max_retries = (uint32_t) rc_ops_clamp(core, "max_retries", req->max_retries, RC_MAX_RETRIES_CAP);
    if (!req->max_retries)
        req->max_retries = core->cfg.default_max_retries;
    req->ttl_s = (uint32_t) rc_ops_clamp(core, "ttl_s", req->ttl_s, core->cfg.max_ttl_s);
    if (!req->ttl_s)
        req->ttl_s = core->cfg.default_ttl_s;
    req->async_timeout_ms =
        (uint32_t) rc_ops_clamp(core, "async_timeout_ms", req->async_timeout_ms, core->cfg.max_wait_ms);
}

/* A namespace listed as shared is one space for every owner: its cache
 * entries and its tasks are visible to all (a cache hit hands out the
 * first owner's ref_id, which must then be readable). */
static bool ns_shared(rc_core_t *core, const rc_str_t *ns)
{
    if (!core->shared_ns || !ns->len)
        return false;
    char name[RC_MAX_NAME + 1];
    memcpy(name, ns->ptr, ns->len);
    name[ns->len] = '\0';
    return zhashx_lookup(core->shared_ns, name) != NULL;
}

/* Answers a Submit with its handle (t and h; NULL: t's own): held by its
 * async timeout, or now. Either reply hands out a ref_id: a promise, held
 * (with --store) until the store has the handle. */
static inline void submit_answer(rc_core_t *core, rc_request_t *req, rc_task_t *t, rc_handle_t *h,
                                 unsigned sflags)
{
    if (hold(core, t, h, req->id, W_SUBMIT, req->async_timeout_ms, sflags, "async_timeout_ms"))
        return;
    core->promise = true;
    rc_reply_task(core, req->id, RC_REPLY_SUBMIT, t, h, sflags);
    core->promise = false;
}

/* A Submit that found its key in the index: a cache hit, or identical
 * work in flight joined. Either way it gets a handle of its own on the
 * task, which its holder alone can cancel or delete. */
static void submit_hit(rc_core_t *core, rc_request_t *req, rc_task_t *hit, const uint8_t *idem)
{
    uint8_t ref[16];
    rc_handle_t *h;
    if (new_ref(core, ref) != 0) {
        rc_reply_error(core, req->id, CODE(UNAVAILABLE), "no random source for a ref_id");
        return;
    }
    if (!(h = rc_handles_new(core, hit, req->ttl_s, req->deadline_ms, ref))) {
        core->c.resource_exhausted++;
        rc_reply_error(core, req->id, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    if (!rc_run(core,
                &(rc_ev_t){.event = RC_EV_JOIN, .task = hit, .handle = h, .cause = client_cause(core)})) {
        rc_handles_discard(core, h); /* cannot happen: the index holds live and COMPLETE tasks only */
        rc_reply_error(core, req->id, CODE(INTERNAL), "the task took no handle");
        return;
    }
    bool complete = hit->state == RC_COMPLETE;
    if (complete) {
        core->c.cache_hits++;
        rc_cache_touch(core, hit);
    } else {
        core->c.dedup++;
    }
    if (idem)
        (void) rc_idem_add(core, idem, h->ref);
    submit_answer(core, req, hit, h, complete ? RC_SF_HIT : RC_SF_DEDUP);
}

/* The handle a ref_id names — the task, and the extra handle in *h or NULL
 * for the task's own — or NULL when it is gone. */
static rc_task_t *find(rc_core_t *core, const uint8_t ref[16], rc_handle_t **h)
{
    *h = NULL;
    rc_task_t *t = rc_table_get(core->tasks, ref);
    if (t)
        /* Its own handle went (or its TTL passed) while others hold it. */
        return t->hstate && rc_handles_own_expired(core, t) ? NULL : t;
    if ((*h = rc_handles_lookup(core, ref)))
        return (*h)->task;
    return NULL;
}

/* A Submit whose request_key names an earlier one whose handle still
 * exists: that handle, as its Submit's reply would show it now. */
static bool submit_replay(rc_core_t *core, rc_request_t *req, const uint8_t idem[16])
{
    const uint8_t *ref = rc_idem_ref(core, idem);
    if (!ref)
        return false;
    rc_handle_t *h;
    rc_task_t *t = find(core, ref, &h);
    if (!t) {
        rc_idem_forget(core, ref);
        return false;
    }
    submit_answer(core, req, t, h, RC_SF_REPLAYED);
    return true;
}

/* A new task record for req in PENDING's place: not yet accepted (NEW). */
static rc_task_t *submit_record(rc_core_t *core, rc_request_t *req, rc_fn_t *fn, const uint8_t key[16],
                                bool shared)
{
    rc_task_t *t = rc_cache_record_new(core);
    if (!t) {
        rc_reply_error(core, req->id, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return NULL;
    }
    t->flags = F_EXT; /* an active record has every field */
    if (new_ref(core, t->ref) != 0) {
        rc_cache_record_discard(core, t);
        rc_core_note(core, "submit refused: the OS gave no random bytes for a ref_id");
        rc_reply_error(core, req->id, CODE(UNAVAILABLE), "no random source for a ref_id");
        return NULL;
    }
    char hex[RC_REF_ID_LEN + 1];
    rc_hex_encode(t->ref, 16, hex);
    if (rc_codec_dispatch_spec(req, hex, t->spec_room, RC_SPEC_ROOM, &t->spec, &t->spec_len) != 0 ||
        (req->ns.len && !(t->ns = strndup(req->ns.ptr, req->ns.len))) || rc_table_put(core->tasks, t) != 0) {
        rc_cache_record_discard(core, t);
        rc_reply_error(core, req->id, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return NULL;
    }
    memcpy(t->key, key, 16);
    t->fn = fn;
    t->owner = core->owner;
    if (shared)
        t->flags |= F_SHARED_NS;
    t->state = RC_NEW;
    core->n_state[RC_NEW]++;
    t->max_retries = (uint8_t) req->max_retries;
    t->ttl_s = req->ttl_s;
    t->seq = core->next_seq++;
    t->created_us = rc_core_wall_us(core);
    if (req->deadline_ms) {
        t->deadline.kind = T_DEADLINE;
        rc_timers_set(core->timers, &t->deadline, rc_core_mono_us(core) + (uint64_t) req->deadline_ms * 1000);
    }
    return t;
}

static void on_submit(rc_core_t *core, rc_request_t *req)
{
    const char *bad = submit_invalid(req);
    if (bad) {
        refuse(core, req->id, bad);
        return;
    }
    submit_numbers(core, req);
    uint8_t digest[16], *idem = NULL;
    if (req->request_key.len) {
        rc_idem_digest(core, core->owner, &req->ns, &req->request_key, digest);
        idem = digest;
        if (submit_replay(core, req, idem))
            return;
    }
    if (core->draining) {
        /* Stopping: what runs finishes, nothing new starts (a Submit whose
         * key names an earlier one was answered above: it starts nothing). */
        rc_reply_error(core, req->id, CODE(UNAVAILABLE),
                       "the broker is stopping: it accepts no new task while its running tasks finish; submit "
                       "again once it is back (with a request_key, a repeated Submit is safe)");
        return;
    }
    char name[RC_MAX_NAME + 1];
    memcpy(name, req->function.ptr, req->function.len);
    name[req->function.len] = '\0';
    rc_fn_t *fn = zhashx_lookup(core->fns, name);
    if (!fn) {
        char msg[RC_MAX_NAME + 64];
        snprintf(msg, sizeof msg, "no worker serves function '%s'", name);
        rc_reply_error(core, req->id, CODE(UNIMPLEMENTED), msg);
        return;
    }
    const char *why;
    int refusal = core->journal ? rc_journal_refusal(core, &why) : 0;
    if (refusal) {
        if (refusal == CODE(RESOURCE_EXHAUSTED))
            core->c.resource_exhausted++;
        rc_reply_error(core, req->id, refusal, why);
        return;
    }
    bool shared = ns_shared(core, &req->ns);
    uint8_t key[16] = {0};
    bool cacheable = fn->cacheable && !req->no_cache;
    if (cacheable) {
        /* Results are shared only among tasks of one owner, unless the
         * namespace is configured as shared. */
        rc_cache_key(core, req, shared ? 0 : core->owner, key);
        rc_task_t *hit = rc_cache_lookup(core, key);
        if (hit) {
            submit_hit(core, req, hit, idem);
            return;
        }
    }
    if (core->n_state[RC_PENDING] >= core->cfg.max_pending) {
        core->c.resource_exhausted++;
        rc_reply_error(core, req->id, CODE(RESOURCE_EXHAUSTED), "too many pending tasks");
        return;
    }
    rc_task_t *t = submit_record(core, req, fn, key, shared);
    if (!t)
        return;
    if (cacheable)
        (void) rc_cache_index(core, t);
    core->c.submitted++;
    /* Accepted: queued, and dispatched at once if a worker is free (the
     * record stays put whatever happens to the task meanwhile). */
    rc_run(core, &(rc_ev_t){.event = RC_EV_SUBMIT, .task = t, .cause = client_cause(core)});
    if (idem)
        (void) rc_idem_add(core, idem, t->ref);
    submit_answer(core, req, t, NULL, 0);
}

/* ---------------------------------------------------------------- by ref_id */

static bool same_ns(const rc_task_t *t, const rc_str_t *ns)
{
    const char *tns = rc_task_ns(t);
    if (!tns)
        return ns->len == 0;
    return strlen(tns) == ns->len && memcmp(tns, ns->ptr, ns->len) == 0;
}

/* The handle a request names — the task, and the extra handle in *h or
 * NULL for the task's own — or NULL after answering INVALID_ARGUMENT or
 * NOT_FOUND (with a Cancel's body for a Cancel). */
static rc_task_t *lookup_or_reply(rc_core_t *core, const rc_request_t *req, rc_reply_kind_t kind,
                                  rc_handle_t **h)
{
    uint8_t ref[16];
    rc_reply_t r = {.id = req->id, .kind = kind == RC_REPLY_CANCEL ? RC_REPLY_CANCEL : RC_REPLY_NONE};
    if (rc_hex_decode(req->ref_id.ptr, req->ref_id.len, ref, 16) != 0) {
        core->c.bad_requests++;
        r.code = CODE(INVALID_ARGUMENT);
        r.message = "ref_id must be 32 hex characters";
        rc_reply(core, &r);
        return NULL;
    }
    rc_task_t *t = find(core, ref, h);
    /* Another owner's or another namespace's task is indistinguishable
     * from a missing one. */
    uint64_t owner = t ? (*h ? (*h)->owner : t->owner) : 0;
    if (t && ((owner != core->owner && !(t->flags & F_SHARED_NS)) || !same_ns(t, &req->ns)))
        t = NULL;
    if (!t) {
        r.code = CODE(NOT_FOUND);
        r.message = "no such task";
        rc_reply(core, &r);
    }
    return t;
}

static void on_status(rc_core_t *core, rc_request_t *req)
{
    rc_handle_t *h;
    rc_task_t *t = lookup_or_reply(core, req, RC_REPLY_TASK, &h);
    if (!t)
        return;
    rc_cache_touch(core, t);
    rc_reply_task(core, req->id, RC_REPLY_TASK, t, h, 0);
}

static void on_wait(rc_core_t *core, rc_request_t *req)
{
    rc_handle_t *h;
    rc_task_t *t = lookup_or_reply(core, req, RC_REPLY_TASK, &h);
    if (!t)
        return;
    uint32_t timeout = (uint32_t) rc_ops_clamp(core, "timeout_ms", req->timeout_ms, core->cfg.max_wait_ms);
    if (hold(core, t, h, req->id, W_WAIT, timeout, 0, "timeout_ms"))
        return;
    rc_cache_touch(core, t);
    rc_reply_task(core, req->id, RC_REPLY_TASK, t, h, 0);
}

static void on_fetch(rc_core_t *core, rc_request_t *req)
{
    rc_handle_t *h;
    rc_task_t *t = lookup_or_reply(core, req, RC_REPLY_FETCH, &h);
    if (!t)
        return;
    if (rc_handles_state(t, h) != RC_COMPLETE) {
        rc_reply_error(core, req->id, CODE(FAILED_PRECONDITION), "task has no result (not COMPLETE)");
        return;
    }
    if (req->offset > t->result_len) {
        rc_reply_error(core, req->id, CODE(OUT_OF_RANGE), "offset beyond the end of the result");
        return;
    }
    uint64_t len =
        req->length ? rc_ops_clamp(core, "length", req->length, core->cfg.max_page) : core->cfg.max_page;
    if (len > t->result_len - req->offset)
        len = t->result_len - req->offset;
    rc_cache_touch(core, t);
    const uint8_t *result = rc_task_result(t);
    rc_reply_t r = {.id = req->id,
                    .kind = RC_REPLY_FETCH,
                    .data = {result ? result + req->offset : NULL, (size_t) len},
                    .total_size = t->result_len,
                    .offset = req->offset};
    rc_reply(core, &r);
}

static void on_cancel(rc_core_t *core, rc_request_t *req)
{
    rc_handle_t *h;
    rc_task_t *t = lookup_or_reply(core, req, RC_REPLY_CANCEL, &h);
    if (!t)
        return;
    /* cancelled = true is a promise: with a store that cannot take it now,
     * the cancel is refused (the task goes on) rather than half made. */
    const char *why;
    int refusal =
        !core->journal || rc_task_terminal(rc_handles_state(t, h)) ? 0 : rc_journal_refusal(core, &why);
    if (refusal) {
        rc_reply_t r = {.id = req->id,
                        .code = refusal,
                        .message = why,
                        .kind = RC_REPLY_CANCEL,
                        .state = rc_handles_state(t, h)};
        rc_reply(core, &r);
        return;
    }
    bool cancelled =
        rc_run(core, &(rc_ev_t){.event = RC_EV_CANCEL, .task = t, .handle = h, .cause = client_cause(core)});
    rc_reply_t r = {.id = req->id,
                    .kind = RC_REPLY_CANCEL,
                    .flag = cancelled,
                    .state = rc_handles_state(t, h),
                    .message = cancelled ? "cancelled" : "task already finished"};
    core->promise = cancelled;
    rc_reply(core, &r);
    core->promise = false;
}

static void on_delete(rc_core_t *core, rc_request_t *req)
{
    rc_handle_t *h;
    rc_task_t *t = lookup_or_reply(core, req, RC_REPLY_DELETE, &h);
    if (!t)
        return;
    /* found = true is a promise too: refused, the record stays, while the
     * store cannot take the deletion. */
    const char *why;
    int refusal =
        core->journal && rc_task_terminal(rc_handles_state(t, h)) ? rc_journal_refusal(core, &why) : 0;
    if (refusal) {
        rc_reply_error(core, req->id, refusal, why);
        return;
    }
    if (!rc_run(core,
                &(rc_ev_t){.event = RC_EV_DELETE, .task = t, .handle = h, .cause = client_cause(core)})) {
        rc_reply_error(core, req->id, CODE(FAILED_PRECONDITION), "task is not finished; cancel it first");
        return;
    }
    rc_reply_t r = {.id = req->id, .kind = RC_REPLY_DELETE, .flag = true, .message = "deleted"};
    core->promise = true; /* found = true: held until the deletion is durable */
    rc_reply(core, &r);
    core->promise = false;
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
    rc_peers_count(core, &s.workers, &s.workers_busy);
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
    s.uptime_ms = (rc_core_mono_us(core) - core->started_mono_us) / 1000;
    s.requests_total = core->c.requests;
    s.resource_exhausted_total = core->c.resource_exhausted;
    s.deadline_exceeded_total = core->c.deadline_exceeded;
    s.reannounces_total = core->c.reannounces;
    s.handed_back_total = core->c.handed_back;
    s.draining = core->draining;
    s.version = RC_VERSION;
    rc_journal_stats(core, &s);
    rc_reply_t r = {.id = req->id, .kind = RC_REPLY_STATS, .stats = &s};
    rc_reply(core, &r);
}

/* ---------------------------------------------------------------- requests */

/* With CURVE the ZAP handler let in any allowed key (client or worker);
 * this channel takes only client keys. Connections over inproc
 * (in-process) carry no key and are trusted. False after answering. */
static bool owner_of_request(rc_core_t *core, const rc_request_t *req, zmq_msg_t *frame)
{
    core->owner = 0;
    if (!core->client_keys)
        return true;
    const char *key = zmq_msg_gets(frame, "User-Id");
    if (key && !zhashx_lookup(core->client_keys, key)) {
        core->c.bad_requests++;
        rc_core_note(core, "request from key %s refused: not a client key", key);
        rc_reply_error(core, req->id, CODE(PERMISSION_DENIED), "this key may not act as a client");
        return false;
    }
    if (key)
        core->owner = rc_core_owner_of(core, key);
    return true;
}

/* Handles one Request (data: its bytes; frame: the frame it came in, for
 * its CURVE key), or each of a batch's; returns how many it handled. */
static int on_request(rc_core_t *core, const uint8_t *data, size_t len, zmq_msg_t *frame)
{
    rc_request_t req;
    const char *why = NULL;
    int n = 1;
    if (rc_codec_request(data, len, &req, &why) != 0) {
        bad_request(core, req.id, why);
    } else if (req.kind == RC_REQ_BATCH) {
        if (core->batched) {
            bad_request(core, req.id, "a RequestBatch may not hold another");
        } else if (req.n_entries > RC_MAX_BATCH_REQS) {
            /* Refused whole: one frame must not hold the loop for long. */
            bad_request(core, req.id, "a RequestBatch holds at most " RC_STR(RC_MAX_BATCH_REQS) " requests");
        } else {
            rc_bytes_t entry;
            n = 0;
            core->batched = true;
            while (rc_codec_request_next(&req, &core->scratch, &entry))
                n += on_request(core, entry.ptr, entry.len, frame);
            core->batched = false;
            if (!n) {
                bad_request(core, req.id, "an empty RequestBatch");
                n = 1;
            }
        }
    } else if (req.id == 0) {
        core->c.requests++;
        refuse(core, 0, "request id 0 is reserved: the broker answers frames it cannot read with it");
    } else {
        core->c.requests++;
        core->n_clamps = 0;
        if (owner_of_request(core, &req, frame)) {
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
            case RC_REQ_LIST:
            case RC_REQ_WORKERS:
            case RC_REQ_WATCH:
            case RC_REQ_METRICS:
                rc_observe_request(core, &req);
                break;
            case RC_REQ_BATCH:
                break; /* handled above */
            }
        }
    }
    rc_codec_request_release(&req);
    return n;
}

int rc_ops_client_msg(rc_core_t *core, zmq_msg_t *frames, int nframes)
{
    core->rid = zmq_msg_data(&frames[0]);
    core->rid_len = zmq_msg_size(&frames[0]);
    core->envelope = false;
    core->batched = false;
    int body = 1;
    if (nframes == 3 && zmq_msg_size(&frames[1]) == 0) {
        core->envelope = true; /* a REQ client: ["", body] */
        body = 2;
    } else if (nframes != 2) {
        core->envelope = nframes >= 2 && zmq_msg_size(&frames[1]) == 0;
        bad_request(core, 0, "expected one Request frame (or an empty delimiter and one Request frame)");
        return 1;
    }
    size_t len = zmq_msg_size(&frames[body]);
    if (len > (uint64_t) core->cfg.max_msg_bytes) {
        /* Answered, with its id when the frame starts with it (as every
         * encoder writes it), and the connection keeps working: ZeroMQ
         * itself drops only what is far beyond (rc_broker_hard_limit). */
        const uint8_t *p = zmq_msg_data(&frames[body]), *end = p + len;
        uint64_t id = 0;
        if (*p == RC_KEY_REQUEST_ID && (p++, !rc_wire_varint(&p, end, 10, &id)))
            id = 0;
        char why[128];
        snprintf(why, sizeof why, "a request of %zu bytes is over the limit of %lld (--max-msg-bytes)", len,
                 (long long) core->cfg.max_msg_bytes);
        core->c.requests++;
        core->c.bad_requests++;
        core->c.resource_exhausted++;
        rc_reply_error(core, id, CODE(RESOURCE_EXHAUSTED), why);
        return 1;
    }
    return on_request(core, zmq_msg_data(&frames[body]), zmq_msg_size(&frames[body]), &frames[body]);
}
