/* rc_recover: rebuilding the broker's state from the store at start. Every
 * record comes back as it was: finished tasks with their results (byte for
 * byte) until their TTL, cancelled ones still cancelled; PENDING tasks are
 * queued again in the order they were accepted; a task that was PROCESSING
 * went with the broker's worker sessions, so it is a lost attempt: retried
 * under its retry budget (a new attempt, fenced from the old one) or FAILED;
 * deadlines keep counting from acceptance; handles, idempotency keys, the
 * functions announced and the broker's secret come back too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_common.h"
#include "rc_journal_int.h"

typedef struct {
    rc_task_t *t;
    uint64_t left_us;
} own_t;

/* A record given back, for the observers: in the order it was accepted. */
typedef struct {
    uint64_t created_us, n; /* n: the order it came in, for equal times */
    rc_task_t *t;
    rc_handle_t *h; /* an extra handle; NULL: the task's own record */
} known_t;

typedef struct {
    rc_core_t *core;
    rc_journal_t *j;
    rc_buf_t pending, processing; /* rc_task_t * each */
    rc_buf_t handles;             /* rc_jhandle_t each */
    rc_buf_t owns;                /* own_t each: own handles that left shared work */
    rc_buf_t orphans;             /* store keys (17 bytes) to delete */
    rc_buf_t known;               /* known_t each: every task and handle given back */
    uint64_t max_seq, tasks;
    bool secret;
    char *err;
    size_t errlen;
} rec_t;

static int push(rc_buf_t *b, const void *p, size_t n)
{
    if (rc_buf_reserve(b, b->len + n) != 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static int know(rec_t *r, rc_task_t *t, rc_handle_t *h, uint64_t created_us)
{
    known_t k = {.created_us = created_us, .n = r->known.len / sizeof k, .t = t, .h = h};
    if (push(&r->known, &k, sizeof k) != 0) {
        snprintf(r->err, r->errlen, "out of memory recovering the store");
        return -1;
    }
    return 0;
}

static int by_created(const void *a, const void *b)
{
    const known_t *x = a, *y = b;
    if (x->created_us != y->created_us)
        return x->created_us < y->created_us ? -1 : 1;
    return x->n < y->n ? -1 : x->n > y->n;
}

static char *dup_str(rc_bytes_t b)
{
    char *s = malloc(b.len + 1);
    if (s) {
        memcpy(s, b.ptr, b.len);
        s[b.len] = '\0';
    }
    return s;
}

/* A wall clock time as a monotonic due time (now if it has passed). */
static uint64_t due_of(rc_core_t *core, uint64_t wall_us)
{
    uint64_t now = rc_core_wall_us(core);
    return rc_core_mono_us(core) + (wall_us > now ? wall_us - now : 0);
}

static rc_fn_t *function(rec_t *r, rc_bytes_t name)
{
    char buf[RC_MAX_NAME + 1];
    if (name.len == 0 || name.len > RC_MAX_NAME)
        return NULL;
    memcpy(buf, name.ptr, name.len);
    buf[name.len] = '\0';
    return rc_core_fn(r->core, buf);
}

/* The fields a record keeps for its whole life. */
static void fill_core(rc_task_t *t, const rc_jtask_t *jt, rc_fn_t *fn)
{
    memcpy(t->ref, jt->ref, 16);
    memcpy(t->key, jt->key, 16);
    t->state = jt->state;
    t->flags = jt->flags & (F_INDEXED | F_EVER_STARTED | F_SHARED_NS);
    t->error_code = jt->error_code;
    t->attempt = jt->attempt;
    t->max_retries = jt->max_retries;
    t->hstate = jt->hstate;
    t->jflags = J_DURABLE;
    t->ttl_s = jt->ttl_s;
    t->result_len = (uint32_t) jt->result.len;
    t->fn = fn;
    t->owner = jt->owner;
    t->created_us = jt->created_us;
    t->started_us = jt->started_us;
    t->finished_us = jt->finished_us;
    rc_list_init(&t->link);
}

/* A finished task, shrunk from the start: its kept fields and its result or
 * error text inline, its TTL running from when it ended. */
static rc_task_t *finished(rec_t *r, const rc_jtask_t *jt, rc_fn_t *fn)
{
    rc_core_t *core = r->core;
    bool ext =
        jt->state != RC_COMPLETE || jt->ns.len || jt->progress_done || jt->progress_total || jt->stopped_us;
    size_t head = ext ? RC_TASK_KEPT : RC_TASK_CORE;
    size_t inl = jt->state == RC_COMPLETE ? jt->result.len : jt->error.len + 1;
    rc_task_t *t = calloc(1, head + inl);
    if (!t)
        return NULL;
    fill_core(t, jt, fn);
    if (ext) {
        t->flags |= F_EXT;
        t->progress_done = jt->progress_done;
        t->progress_total = jt->progress_total;
        t->stopped_us = jt->stopped_us;
        if (jt->ns.len && !(t->ns = dup_str(jt->ns))) {
            free(t);
            return NULL;
        }
    }
    uint8_t *in = (uint8_t *) t + head;
    if (jt->state == RC_COMPLETE) {
        if (inl)
            memcpy(in, jt->result.ptr, inl);
        core->cache_bytes += inl;
    } else {
        memcpy(in, jt->error.ptr, jt->error.len);
        in[jt->error.len] = '\0';
    }
    /* Its own handle's TTL (none once that went: other handles hold it). */
    if (t->hstate != RC_GONE) {
        uint64_t from = jt->own_left_us ? jt->own_left_us : jt->finished_us;
        t->timer.kind = T_TTL;
        rc_timers_set(core->timers, &t->timer, due_of(core, from + (uint64_t) t->ttl_s * 1000000));
    }
    rc_list_push_back(&core->lru, &t->link);
    return t;
}

/* A task still to run: an active record with its dispatch spec. */
static rc_task_t *active(rec_t *r, const rc_jtask_t *jt, rc_fn_t *fn)
{
    rc_core_t *core = r->core;
    rc_task_t *t = rc_cache_record_new(core);
    if (!t)
        return NULL;
    fill_core(t, jt, fn);
    t->flags |= F_EXT;
    t->progress_done = jt->progress_done;
    t->progress_total = jt->progress_total;
    t->seq = jt->seq;
    if ((jt->ns.len && !(t->ns = dup_str(jt->ns))) || (jt->error.len && !(t->error = dup_str(jt->error)))) {
        rc_cache_record_discard(core, t);
        return NULL;
    }
    t->spec_len = jt->spec.len;
    t->spec = jt->spec.len <= RC_SPEC_ROOM ? t->spec_room : malloc(jt->spec.len);
    if (!t->spec) {
        rc_cache_record_discard(core, t);
        return NULL;
    }
    memcpy(t->spec, jt->spec.ptr, jt->spec.len);
    if (jt->deadline_us) {
        t->deadline.kind = T_DEADLINE;
        rc_timers_set(core->timers, &t->deadline, due_of(core, jt->deadline_us));
    }
    if (r->max_seq < jt->seq)
        r->max_seq = jt->seq;
    return t;
}

static int task(rec_t *r, const uint8_t *blob, size_t len)
{
    rc_core_t *core = r->core;
    rc_jtask_t jt;
    const char *why;
    if (rc_jrecord_task(blob, len, &jt, &why) != 0) {
        snprintf(r->err, r->errlen, "a task record of the store: %s", why);
        return -1;
    }
    rc_fn_t *fn = function(r, jt.fn);
    if (!fn || jt.state < RC_PENDING || jt.state > RC_CANCELLED || jt.spec.len > RC_STORE_BLOB_MAX) {
        snprintf(r->err, r->errlen, "a task record of the store is not one this broker wrote");
        return -1;
    }
    rc_task_t *t = rc_task_terminal(jt.state) ? finished(r, &jt, fn) : active(r, &jt, fn);
    if (!t || rc_table_put(core->tasks, t) != 0) {
        snprintf(r->err, r->errlen, "out of memory recovering the store");
        return -1;
    }
    core->n_state[t->state]++;
    if (t->flags & F_INDEXED && (t->state == RC_COMPLETE || !rc_task_terminal(t->state)) &&
        rc_cache_index(core, t) != 0)
        t->flags &= (uint8_t) ~F_INDEXED;
    if (jt.has_idem)
        (void) rc_idem_add(core, jt.idem, t->ref);
    if (t->state == RC_PENDING)
        push(&r->pending, &t, sizeof t);
    else if (t->state == RC_PROCESSING)
        push(&r->processing, &t, sizeof t);
    if (jt.own_left_us)
        push(&r->owns, &(own_t){t, jt.own_left_us}, sizeof(own_t));
    r->tasks++;
    return know(r, t, NULL, t->created_us);
}

static int visit(void *arg, const uint8_t *key, size_t key_len, const uint8_t *blob, size_t len)
{
    rec_t *r = arg;
    const char *why = NULL;
    if (key_len == strlen(RC_JKEY_SECRET) && memcmp(key, RC_JKEY_SECRET, key_len) == 0) {
        if (len != sizeof r->core->key_secret) {
            snprintf(r->err, r->errlen, "the store's secret is damaged");
            return -1;
        }
        memcpy(r->core->key_secret, blob, len);
        r->secret = true;
        return 0;
    }
    if (key_len == 17 && key[0] == RC_JKEY_TASK)
        return task(r, blob, len);
    if (key_len == 17 && key[0] == RC_JKEY_HANDLE) {
        rc_jhandle_t jh;
        if (rc_jrecord_handle(blob, len, &jh, &why) != 0) {
            snprintf(r->err, r->errlen, "a handle record of the store: %s", why);
            return -1;
        }
        return push(&r->handles, &jh, sizeof jh);
    }
    if (key_len > 1 && key_len <= 1 + RC_MAX_NAME && key[0] == RC_JKEY_FUNCTION) {
        bool cacheable;
        if (rc_jrecord_function(blob, len, &cacheable, &why) != 0) {
            snprintf(r->err, r->errlen, "a function record of the store: %s", why);
            return -1;
        }
        rc_fn_t *fn = function(r, (rc_bytes_t){key + 1, key_len - 1});
        if (fn)
            fn->cacheable = cacheable;
        return 0;
    }
    snprintf(r->err, r->errlen, "the store holds a record this broker does not know (key of %zu bytes)",
             key_len);
    return -1;
}

static int by_seq(const void *a, const void *b)
{
    const rc_task_t *x = *(rc_task_t *const *) a, *y = *(rc_task_t *const *) b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Extra handles onto their tasks (whose records may come later in the
 * store's order than theirs); a handle whose task is gone goes too. */
static int attach_handles(rec_t *r)
{
    rc_core_t *core = r->core;
    const rc_jhandle_t *h = (const rc_jhandle_t *) r->handles.data;
    size_t n = r->handles.len / sizeof *h;
    for (size_t i = 0; i < n; i++) {
        rc_task_t *t = rc_table_get(core->tasks, h[i].task);
        rc_handle_t *x = t ? rc_handles_restore(core, t, h[i].ref, h[i].state, h[i].ttl_s, h[i].owner,
                                                h[i].created_us, h[i].left_us, h[i].deadline_us)
                           : NULL;
        if (!x) {
            uint8_t key[17];
            rc_jrecord_key(RC_JKEY_HANDLE, h[i].ref, key);
            push(&r->orphans, key, sizeof key);
            continue;
        }
        if (h[i].has_idem)
            (void) rc_idem_add(core, h[i].idem, x->ref);
        if (know(r, t, x, h[i].created_us) != 0)
            return -1;
    }
    return 0;
}

int rc_journal_recover(rc_core_t *core, rc_journal_t *j, char *err, size_t errlen)
{
    rec_t r = {.core = core, .j = j, .err = err, .errlen = errlen};
    uint64_t t0 = rc_mono_us();
    char why[256] = "";
    int rc = rc_store_recover(j->store, visit, &r, why, sizeof why);
    if (rc != 0) {
        if (why[0])
            snprintf(err, errlen, "cannot read the store: %s", why);
        goto out;
    }
    if (attach_handles(&r) != 0) {
        rc = -1;
        goto out;
    }
    /* When the own handles of shared tasks left, now that their sets exist. */
    const own_t *o = (const own_t *) r.owns.data;
    for (size_t i = 0; i < r.owns.len / sizeof *o; i++)
        rc_handles_restore_own(core, o[i].t, o[i].left_us);
    /* Queued again in the order they were accepted. */
    rc_task_t **p = (rc_task_t **) r.pending.data;
    size_t np = r.pending.len / sizeof *p;
    if (np)
        qsort(p, np, sizeof *p, by_seq);
    for (size_t i = 0; i < np; i++) {
        rc_list_push_back(&p[i]->fn->queue, &p[i]->link);
        p[i]->fn->queued++;
    }
    core->next_seq = r.max_seq + 1;
    if (!r.secret) {
        /* A new store: its secret is this broker's, from now on. */
        if (rc_store_put(j->store, RC_JKEY_SECRET, strlen(RC_JKEY_SECRET), core->key_secret,
                         sizeof core->key_secret) != 0) {
            snprintf(err, errlen, "cannot write the store's secret");
            rc = -1;
            goto out;
        }
    }
    for (size_t i = 0; i < r.orphans.len; i += 17)
        (void) rc_store_del(j->store, r.orphans.data + i, 17);
    /* The observers learn what exists, in the order it was accepted (the
     * list index keeps that order). */
    known_t *k = (known_t *) r.known.data;
    size_t nk = r.known.len / sizeof *k;
    if (nk)
        qsort(k, nk, sizeof *k, by_created);
    for (size_t i = 0; i < nk; i++)
        rc_runner_restored(core, k[i].t, k[i].h);
    rc_core_note(core, "store: recovered %llu task(s) (%zu pending, %zu were running) in %.3f s",
                 (unsigned long long) r.tasks, np, r.processing.len / sizeof(rc_task_t *),
                 (double) (rc_mono_us() - t0) / 1e6);
    /* Running went with the old broker's worker sessions: each a lost
     * attempt, through the runner like any (the journal writes it). */
    rc_task_t **q = (rc_task_t **) r.processing.data;
    for (size_t i = 0; i < r.processing.len / sizeof *q; i++)
        rc_run(core, &(rc_ev_t){.event = RC_EV_WORKER_LOST,
                                .task = q[i],
                                .attempt = q[i]->attempt,
                                .slot_held = true,
                                .cause = {.kind = RC_CAUSE_RESTART}});
    rc_runner_settle(core); /* the caps, should the store hold more than they allow now */
out:
    rc_buf_free(&r.pending);
    rc_buf_free(&r.owns);
    rc_buf_free(&r.processing);
    rc_buf_free(&r.handles);
    rc_buf_free(&r.orphans);
    rc_buf_free(&r.known);
    return rc == 0 ? 0 : -1;
}
