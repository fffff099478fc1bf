/* rc_journal: the loop's side of the durable store — marking what
 * transitions changed, writing it as one group per drain pass, holding the
 * replies that promise a fact until their group is durable (see
 * rc_journal.h). */
#include "rc_journal_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rc_common.h"
#include "rc_idem.h"

#define CODE(name) REFCACHE__V1__CODE__CODE_##name

/* ---------------------------------------------------------------- marking */

static void mark(rc_journal_t *j, uint8_t kind, const uint8_t ref[16], uint8_t *jflags)
{
    if (*jflags & J_DIRTY)
        return;
    /* Without memory for the mark the record is written with its next
     * change; a reply that promised it still waits for a group. */
    if (rc_buf_reserve(&j->dirty, j->dirty.len + 17) != 0)
        return;
    *jflags |= J_DIRTY;
    j->dirty.data[j->dirty.len] = kind;
    memcpy(j->dirty.data + j->dirty.len + 1, ref, 16);
    j->dirty.len += 17;
}

/* The hook: every applied transition marks what it changed. Progress is
 * not worth a write of its own: it goes with the task's next one. */
static void on_note(void *arg, const rc_note_t *note)
{
    rc_core_t *core = arg;
    rc_journal_t *j = core->journal;
    if (note->event == RC_EV_PROGRESS)
        return;
    if (note->handle) {
        rc_handle_t *h = (rc_handle_t *) note->handle;
        mark(j, RC_JKEY_HANDLE, h->ref, &h->jflags);
    } else {
        rc_task_t *t = (rc_task_t *) note->task;
        mark(j, RC_JKEY_TASK, t->ref, &t->jflags);
    }
}

/* ---------------------------------------------------------------- encoding */

/* A monotonic due time as wall clock microseconds. */
static uint64_t wall_of(rc_core_t *core, const rc_timer_t *tm)
{
    int64_t left = (int64_t) tm->due_us - (int64_t) rc_core_mono_us(core);
    return (uint64_t) ((int64_t) rc_core_wall_us(core) + left);
}

int rc_journal_encode_task(rc_core_t *core, rc_journal_t *j, const rc_task_t *t)
{
    rc_jtask_t r = {0};
    memcpy(r.ref, t->ref, 16);
    if (t->flags & F_INDEXED)
        memcpy(r.key, t->key, 16);
    const uint8_t *idem = rc_idem_digest_of(core, t->ref);
    if (idem) {
        memcpy(r.idem, idem, 16);
        r.has_idem = true;
    }
    r.state = t->state;
    r.flags = t->flags & (F_INDEXED | F_EVER_STARTED | F_SHARED_NS);
    r.error_code = t->error_code;
    r.attempt = t->attempt;
    r.max_retries = t->max_retries;
    r.hstate = t->hstate;
    r.ttl_s = t->ttl_s;
    r.owner = t->owner;
    r.created_us = t->created_us;
    r.started_us = t->started_us;
    r.finished_us = t->finished_us;
    r.stopped_us = rc_task_stopped_us(t);
    r.progress_done = rc_task_progress_done(t);
    r.progress_total = rc_task_progress_total(t);
    r.own_left_us = rc_handles_own_left(core, t);
    const char *ns = rc_task_ns(t);
    r.fn = (rc_bytes_t){(const uint8_t *) t->fn->name, strlen(t->fn->name)};
    r.ns = (rc_bytes_t){(const uint8_t *) ns, ns ? strlen(ns) : 0};
    if (!rc_task_terminal(t->state)) {
        r.seq = t->seq;
        r.spec = (rc_bytes_t){t->spec, t->spec_len};
        if (rc_timer_armed(&t->deadline))
            r.deadline_us = wall_of(core, &t->deadline);
    }
    const char *err = rc_task_error(t);
    r.error = (rc_bytes_t){(const uint8_t *) err, err ? strlen(err) : 0};
    const uint8_t *result = rc_task_result(t);
    r.result = (rc_bytes_t){result, result ? t->result_len : 0};
    j->blob.len = 0;
    return rc_jrecord_put_task(&j->blob, &r);
}

int rc_journal_encode_handle(rc_core_t *core, rc_journal_t *j, const rc_handle_t *h)
{
    rc_jhandle_t r = {0};
    memcpy(r.ref, h->ref, 16);
    memcpy(r.task, h->task->ref, 16);
    const uint8_t *idem = rc_idem_digest_of(core, h->ref);
    if (idem) {
        memcpy(r.idem, idem, 16);
        r.has_idem = true;
    }
    r.state = h->state;
    r.ttl_s = h->ttl_s;
    r.owner = h->owner;
    r.created_us = h->created_us;
    r.left_us = h->left_us;
    if (h->timer.kind == T_HDEADLINE && rc_timer_armed(&h->timer))
        r.deadline_us = wall_of(core, &h->timer);
    j->blob.len = 0;
    return rc_jrecord_put_handle(&j->blob, &r);
}

/* ---------------------------------------------------------------- writing groups */

/* Writes the latest value (or the deletion) of one marked record. */
static int write_one(rc_core_t *core, rc_journal_t *j, const uint8_t *entry)
{
    uint8_t key[17];
    rc_jrecord_key(entry[0], entry + 1, key);
    if (entry[0] == RC_JKEY_TASK) {
        rc_task_t *t = rc_table_get(core->tasks, entry + 1);
        if (!t)
            return rc_store_del(j->store, key, sizeof key);
        t->jflags &= (uint8_t) ~J_DIRTY;
        if (rc_journal_encode_task(core, j, t) != 0)
            return RC_STORE_ENOMEM;
        int rc = rc_store_put(j->store, key, sizeof key, j->blob.data, j->blob.len);
        if (rc == 0 && !(t->jflags & J_WRITTEN)) {
            /* Its first record is in the group being built. */
            t->jflags |= J_WRITTEN;
            if (rc_task_full(t))
                t->jgroup = j->last_group + 1;
        }
        return rc;
    } else {
        rc_handle_t *h = rc_handles_lookup(core, entry + 1);
        if (!h)
            return rc_store_del(j->store, key, sizeof key);
        h->jflags &= (uint8_t) ~J_DIRTY;
        if (rc_journal_encode_handle(core, j, h) != 0)
            return RC_STORE_ENOMEM;
    }
    return rc_store_put(j->store, key, sizeof key, j->blob.data, j->blob.len);
}

/* Sends the held replies whose group is durable. */
static void release(rc_core_t *core, rc_journal_t *j)
{
    size_t m = 0;
    while (m < j->n_marks && j->marks[m].seq <= j->durable) {
        const uint8_t *p = j->held.data + j->held_head, *end = j->held.data + j->marks[m].end;
        while (p < end) {
            uint8_t rid_len = p[0];
            const uint8_t *rid = p + 1;
            bool envelope = p[1 + rid_len], batched = p[2 + rid_len];
            uint32_t len;
            memcpy(&len, p + 3 + rid_len, 4);
            rc_outbox_send(core, rid, rid_len, envelope, batched, p + 7 + rid_len, len);
            p += 7 + rid_len + len;
            j->held_n--;
        }
        j->held_head = j->marks[m].end;
        m++;
    }
    if (m) {
        memmove(j->marks, j->marks + m, (j->n_marks - m) * sizeof *j->marks);
        j->n_marks -= m;
    }
    /* Give the space back once everything before the unmarked tail went. */
    if (!j->n_marks && j->held_head == j->unmarked && j->held_head) {
        size_t tail = j->held.len - j->held_head;
        memmove(j->held.data, j->held.data + j->held_head, tail);
        j->held.len = tail;
        j->unmarked = j->held_head = 0;
    }
}

void rc_journal_flush(rc_core_t *core)
{
    rc_journal_t *j = core->journal;
    if (!j)
        return;
    size_t done = 0;
    int rc = 0;
    for (; done < j->dirty.len; done += 17)
        if ((rc = write_one(core, j, j->dirty.data + done)) != 0)
            break;
    if (rc) {
        /* Refused (the writer is behind, the disk full): what is left is
         * written at the next pass; the promises of this one wait. */
        if (!j->stuck)
            rc_core_note(core, "store: writes refused (%s); replies that promise wait",
                         rc_store_strerror(rc));
        j->stuck = true;
        snprintf(j->why, sizeof j->why, "the store refuses writes: %s", rc_store_strerror(rc));
        memmove(j->dirty.data, j->dirty.data + done, j->dirty.len - done);
        j->dirty.len -= done;
        return;
    }
    j->dirty.len = 0;
    j->stuck = false;
    uint64_t seq = j->last_group = rc_store_group(j->store);
    if (j->held.len > j->unmarked) {
        if (j->n_marks == j->marks_cap) {
            size_t cap = j->marks_cap ? j->marks_cap * 2 : 64;
            rc_jmark_t *m = realloc(j->marks, cap * sizeof *m);
            if (!m)
                return; /* marked at the next pass, with its group */
            j->marks = m;
            j->marks_cap = cap;
        }
        j->marks[j->n_marks++] = (rc_jmark_t){.seq = seq, .end = j->held.len};
        j->unmarked = j->held.len;
    }
    /* A pass that wrote nothing new waits for nothing new. */
    release(core, j);
}

void rc_journal_durable(rc_core_t *core)
{
    rc_journal_t *j = core->journal;
    if (!j)
        return;
    j->durable = rc_store_durable(j->store);
    release(core, j);
}

bool rc_journal_hold(rc_core_t *core, const uint8_t *rid, size_t rid_len, bool envelope, bool batched,
                     const uint8_t *body, size_t len)
{
    rc_journal_t *j = core->journal;
    if (!j)
        return false;
    size_t n = 7 + rid_len + len;
    if (rc_buf_reserve(&j->held, j->held.len + n) != 0) {
        /* No memory to hold it: it goes out late rather than never (its
         * fact is in the group being built). */
        return false;
    }
    uint8_t *p = j->held.data + j->held.len;
    uint32_t len32 = (uint32_t) len;
    p[0] = (uint8_t) rid_len;
    memcpy(p + 1, rid, rid_len);
    p[1 + rid_len] = envelope;
    p[2 + rid_len] = batched;
    memcpy(p + 3 + rid_len, &len32, 4);
    memcpy(p + 7 + rid_len, body, len);
    j->held.len += n;
    j->held_n++;
    return true;
}

bool rc_journal_has_task(rc_core_t *core, rc_task_t *t)
{
    rc_journal_t *j = core->journal;
    if (!j || t->jflags & J_DURABLE)
        return true;
    if (!(t->jflags & J_WRITTEN) || !rc_task_full(t) || t->jgroup > j->durable)
        return false;
    t->jflags |= J_DURABLE;
    return true;
}

int rc_journal_refusal(rc_core_t *core, const char **why)
{
    rc_journal_t *j = core->journal;
    if (!j)
        return 0;
    int err = rc_store_write_error(j->store);
    if (err) {
        rc_store_stats_t s;
        rc_store_stats(j->store, &s);
        snprintf(j->why, sizeof j->why, "the store cannot write (%s): %s", rc_store_strerror(err),
                 s.write_error_msg);
        *why = j->why;
        return CODE(UNAVAILABLE);
    }
    if (j->stuck) {
        *why = j->why;
        return CODE(RESOURCE_EXHAUSTED);
    }
    return 0;
}

void rc_journal_function(rc_core_t *core, const rc_fn_t *fn)
{
    rc_journal_t *j = core->journal;
    if (!j)
        return;
    size_t n = strlen(fn->name);
    uint8_t key[1 + RC_MAX_NAME];
    key[0] = RC_JKEY_FUNCTION;
    memcpy(key + 1, fn->name, n);
    j->blob.len = 0;
    if (rc_jrecord_put_function(&j->blob, fn->cacheable) == 0)
        (void) rc_store_put(j->store, key, 1 + n, j->blob.data, j->blob.len);
}

uint64_t rc_journal_held(rc_core_t *core)
{
    return core->journal ? core->journal->held_n : 0;
}

void rc_journal_stats(rc_core_t *core, rc_statsview_t *s)
{
    rc_journal_t *j = core->journal;
    if (!j)
        return;
    rc_store_stats_t st;
    rc_store_stats(j->store, &st);
    s->store_path = core->cfg.store_path;
    s->store_records = st.live_records;
    s->store_file_bytes = st.file_bytes;
    s->store_records_written_total = st.records_written;
    s->store_commits_total = st.transactions;
    s->store_queued_bytes = st.queued_bytes;
    s->store_max_commit_us = st.max_commit_us;
    j->error[0] = '\0';
    if (st.write_error)
        snprintf(j->error, sizeof j->error, "%s: %s", rc_store_strerror(st.write_error), st.write_error_msg);
    s->store_error = j->error;
}

int rc_journal_fd(rc_core_t *core)
{
    return core->journal ? rc_store_fd(core->journal->store) : -1;
}

/* ---------------------------------------------------------------- open, close */

static void journal_free(rc_journal_t *j)
{
    rc_buf_free(&j->dirty);
    rc_buf_free(&j->blob);
    rc_buf_free(&j->held);
    free(j->marks);
    free(j);
}

int rc_journal_open(rc_core_t *core, char *err, size_t errlen)
{
    const char *path = core->cfg.store_path;
    if (!path || !*path || strcmp(path, "none") == 0)
        return 0;
    rc_journal_t *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "out of memory opening the store");
        return -1;
    }
    rc_store_options_t o;
    rc_store_options_defaults(&o);
    o.relaxed = core->cfg.store_relaxed;
    char why[256] = "";
    int code = 0;
    j->store = rc_store_open(path, &o, &code, why, sizeof why);
    if (!j->store) {
        /* why names the path; a damaged store can give what is intact. */
        snprintf(err, errlen, "cannot open the store: %s%s", why,
                 code == RC_STORE_ECORRUPT ? " (--salvage-to NEW copies what is intact into a new store)" : "");
        journal_free(j);
        return -1;
    }
    /* The store holds results and the broker's secret: its owner's only. */
    (void) chmod(path, 0600);
    core->journal = j;
    /* Every transition but the store's own records coming back. */
    if (rc_runner_observe_some(core, on_note, core, ~(uint32_t) RC_ACT_RESTORE) != 0) {
        snprintf(err, errlen, "no room for the journal's observer");
        core->journal = NULL;
        rc_store_close(&j->store);
        journal_free(j);
        return -1;
    }
    if (rc_journal_recover(core, j, err, errlen) != 0) {
        rc_runner_unobserve(core, on_note, core);
        core->journal = NULL;
        rc_store_close(&j->store);
        journal_free(j);
        return -1;
    }
    rc_journal_flush(core); /* what recovery changed (attempts lost with the old broker) */
    return 0;
}

void rc_journal_close(rc_core_t *core)
{
    rc_journal_t *j = core->journal;
    if (!j)
        return;
    rc_runner_unobserve(core, on_note, core);
    rc_journal_flush(core);
    int rc = rc_store_close(&j->store);
    if (rc)
        fprintf(stderr, "refcache-broker: the store's last writes failed: %s\n", rc_store_strerror(rc));
    else if (core->clients) {
        /* Everything is on disk: the replies that waited for it go out. */
        j->durable = UINT64_MAX;
        release(core, j);
        rc_outbox_flush_all(core);
    }
    journal_free(j);
    core->journal = NULL;
}
