/* rc_peers: the worker registry and the worker channels' messages (see
 * rc_peers.h). */
#include "rc_peers.h"

#include <stdlib.h>
#include <string.h>

#include "rc_common.h"
#include "rc_core.h"
#include "rc_log.h"

static bool printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static rc_peer_t *lookup(rc_core_t *core, const zmq_msg_t *rid_frame)
{
    size_t len = zmq_msg_size(rid_frame);
    char id[RC_MAX_ROUTING_ID + 1];
    if (len == 0 || len > RC_MAX_ROUTING_ID)
        return NULL;
    memcpy(id, zmq_msg_data((zmq_msg_t *) rid_frame), len);
    id[len] = '\0';
    if (strlen(id) != len)
        return NULL;
    return zhashx_lookup(core->peer_ids, id);
}

static rc_peer_t *get_or_new(rc_core_t *core, zmq_msg_t *rid_frame)
{
    rc_peer_t *w = lookup(core, rid_frame);
    if (w)
        return w;
    size_t len = zmq_msg_size(rid_frame);
    if (len == 0 || len > RC_MAX_ROUTING_ID || !printable(zmq_msg_data(rid_frame), len) ||
        memchr(zmq_msg_data(rid_frame), 0, len))
        return NULL;
    w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    memcpy(w->id, zmq_msg_data(rid_frame), len);
    w->id_len = len;
    w->last_seen_us = rc_core_mono_us(core);
    rc_list_init(&w->flush_link);
    zhashx_insert(core->peer_ids, w->id, w);
    rc_list_push_back(&core->peers, &w->link);
    return w;
}

static void peer_free(rc_peer_t *w)
{
    free(w->fns);
    rc_dispatch_teardown(w);
    free(w);
}

void rc_peers_forget(rc_core_t *core, rc_peer_t *w)
{
    rc_list_remove(&w->link);
    rc_list_remove(&w->flush_link);
    zhashx_delete(core->peer_ids, w->id);
    peer_free(w);
}

static void reannounce(rc_core_t *core, const zmq_msg_t *rid)
{
    rc_rejoin_reannounce(core, zmq_msg_data((zmq_msg_t *) rid), zmq_msg_size(rid));
}

static void on_ready(rc_core_t *core, rc_peer_t *w, rc_wmsg_t *m)
{
    /* What a new session forgot, what its report says of the one before,
     * or nothing at all for a Ready again of the same session. */
    rc_rejoin_ready(core, w, m);
    size_t n = m->n_functions;
    rc_fn_t **fns = calloc(n ? n : 1, sizeof *fns);
    if (!fns)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        rc_str_t name = rc_codec_wmsg_function(m, i);
        if (name.len == 0 || name.len > RC_MAX_NAME || !printable(name.ptr, name.len))
            continue;
        bool known = zhashx_lookup(core->fns, name.ptr) != NULL;
        rc_fn_t *fn = rc_core_fn(core, name.ptr);
        if (!fn)
            continue;
        bool was_cacheable = fn->cacheable;
        for (size_t j = 0; j < m->n_cacheable; j++)
            if (strcmp(rc_codec_wmsg_cacheable(m, j).ptr, name.ptr) == 0)
                fn->cacheable = true;
        if (!known || fn->cacheable != was_cacheable)
            rc_journal_function(core, fn);
        fns[k++] = fn;
    }
    uint32_t credit = m->credit == 0 ? 1 : m->credit > RC_MAX_CREDIT ? RC_MAX_CREDIT : m->credit;
    /* The slots of what it still holds (a Ready again of its session) stay
     * as they are. */
    if (w->outstanding ? credit != w->credit : rc_dispatch_setup(w, credit, m->max_batch) != 0) {
        free(fns);
        return;
    }
    free(w->fns);
    w->fns = fns;
    w->nfns = k;
    w->heartbeat_ms = m->heartbeat_ms;
    uint64_t beat = w->heartbeat_ms > core->cfg.heartbeat_ms ? w->heartbeat_ms : core->cfg.heartbeat_ms;
    w->quiet_us = 2 * beat * 1000;
    w->ready = true;
    w->joined_us = rc_core_mono_us(core);
    w->pid = rc_codec_wmsg_pid(m);
    rc_str_t host = rc_codec_wmsg_host(m);
    w->host[0] = '\0';
    if (host.len && printable(host.ptr, host.len))
        snprintf(w->host, sizeof w->host, "%.*s", (int) host.len, host.ptr);
    /* Once per Ready (the look-up takes the registry's mutex): a thread of
     * the broker's own pool registered its board under this id before it
     * sent this Ready. */
    if (core->boards)
        w->board = rc_board_find(core->boards, w->id);
    rc_log(RC_LOG_INFO, "worker", "worker %s joined%s%s (pid %u): %zu function(s), credit %u", w->id,
           *w->host ? " from " : "", w->host, w->pid, w->nfns, w->credit);
    rc_dispatch_peer(core, w);
}

/* With CURVE, only worker keys may speak on the work and control channels. */
static bool key_ok(rc_core_t *core, zmq_msg_t *frame)
{
    if (!core->worker_keys)
        return true;
    const char *key = zmq_msg_gets(frame, "User-Id");
    return !key || zhashx_lookup(core->worker_keys, key);
}

/* A peer's message about one task (Started, Progress, Result, Failure,
 * CancelAck), as an event for the runner. Returns true if it ended the
 * peer's hold on a credit slot. */
static bool on_task_msg(rc_core_t *core, rc_peer_t *w, const rc_wmsg_t *m)
{
    uint8_t ref[16];
    if (rc_hex_decode(m->ref_id.ptr, m->ref_id.len, ref, 16) != 0) {
        core->c.bad_worker_msgs++;
        return false;
    }
    rc_slot_t *slot = rc_dispatch_slot_find(w, ref, m->attempt);
    /* A Result, Failure or CancelAck ends the worker's hold on the task,
     * whatever the broker thinks of the task now. */
    bool ack = m->kind == RC_WMSG_CANCEL_ACK;
    bool ends = m->kind == RC_WMSG_RESULT || m->kind == RC_WMSG_FAILURE || ack;
    if (ends && slot)
        rc_dispatch_slot_end(core, w, slot, ack, !ack || m->started);
    rc_task_t *t = rc_table_get(core->tasks, ref);
    if (!t) {
        core->c.stale_msgs++;
        return ends;
    }
    static const rc_event_t ev_of[] = {
        [RC_WMSG_STARTED] = RC_EV_STARTED,       [RC_WMSG_PROGRESS] = RC_EV_PROGRESS,
        [RC_WMSG_RESULT] = RC_EV_RESULT,         [RC_WMSG_FAILURE] = RC_EV_FAILURE,
        [RC_WMSG_CANCEL_ACK] = RC_EV_CANCEL_ACK,
    };
    int code = m->code;
    if (code < 0 || code > 16)
        code = REFCACHE__V1__CODE__CODE_UNKNOWN;
    rc_run(core, &(rc_ev_t){.event = ev_of[m->kind],
                            .task = t,
                            .peer = w,
                            .attempt = m->attempt,
                            .slot_held = slot != NULL,
                            .retryable = m->retryable,
                            .started = m->started,
                            .code = code,
                            .msg = m,
                            .cause = {.kind = RC_CAUSE_WORKER, .peer = w}});
    return ends;
}

/* A worker message over --max-msg-bytes (but under what ZeroMQ lets in):
 * a result in it is not kept, but fails its task, as a worker would have
 * failed it had it known the limit; anything else is taken as it is. */
static void too_big(rc_wmsg_t *m)
{
    static const char why[] = "the result's message is over the broker's limit (--max-msg-bytes)";
    if (m->kind != RC_WMSG_RESULT)
        return;
    m->kind = RC_WMSG_FAILURE;
    m->code = REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED;
    m->retryable = false;
    m->message = (rc_str_t){why, sizeof why - 1};
}

int rc_peers_work_msg(rc_core_t *core, zmq_msg_t *frames, int nframes)
{
    if (nframes != 2 || !key_ok(core, &frames[1])) {
        core->c.bad_worker_msgs++;
        return 1;
    }
    rc_wmsg_t m;
    const char *why;
    if (rc_codec_wmsg(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), &m, &why) != 0) {
        core->c.bad_worker_msgs++;
        rc_codec_wmsg_release(&m);
        return 1;
    }
    bool over = zmq_msg_size(&frames[1]) > (uint64_t) core->cfg.max_msg_bytes;
    if (over)
        too_big(&m);
    rc_peer_t *w = m.kind == RC_WMSG_READY ? get_or_new(core, &frames[0]) : lookup(core, &frames[0]);
    if (!w || (!w->ready && m.kind != RC_WMSG_READY)) {
        /* A worker we do not know (we restarted, or declared it lost): it
         * must announce itself again before it gets or returns work. */
        if (!w || w->lost)
            core->c.stale_msgs++;
        reannounce(core, &frames[0]);
        rc_codec_wmsg_release(&m);
        return 1;
    }
    w->last_seen_us = rc_core_mono_us(core);
    w->refused = false;
    int n = 1;
    bool ends = false;
    if (m.kind == RC_WMSG_READY) {
        on_ready(core, w, &m);
    } else if (m.kind == RC_WMSG_RESULTS) {
        for (size_t i = 0; i < m.n_results; i++) {
            rc_wmsg_t one;
            rc_codec_wmsg_result(&m, i, &one);
            if (over)
                too_big(&one);
            ends |= on_task_msg(core, w, &one);
        }
        n = m.n_results > 0 ? (int) m.n_results : 1;
    } else if (m.kind == RC_WMSG_HAND_BACK) {
        rc_rejoin_hand_back(core, w, &m);
        n = m.n_tasks > 0 ? (int) m.n_tasks : 1;
        ends = true;
    } else if (m.kind != RC_WMSG_HEARTBEAT) {
        ends = on_task_msg(core, w, &m);
    }
    rc_codec_wmsg_release(&m);
    if (w->leaving && !w->outstanding)
        rc_peers_forget(core, w); /* it said goodbye and holds nothing more */
    else if (ends)
        rc_dispatch_peer(core, w);
    return n;
}

int rc_peers_control_msg(rc_core_t *core, zmq_msg_t *frames, int nframes)
{
    if (nframes != 2 || !key_ok(core, &frames[1]) ||
        rc_codec_control_hello(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1])) != 0) {
        core->c.bad_worker_msgs++;
        return 1;
    }
    rc_peer_t *w = get_or_new(core, &frames[0]);
    if (!w) {
        core->c.bad_worker_msgs++;
        return 1;
    }
    w->hello = true;
    w->last_seen_us = rc_core_mono_us(core);
    if (w->ready)
        rc_dispatch_peer(core, w);
    return 1;
}

void rc_peers_tick(rc_core_t *core, uint64_t now)
{
    /* Workers are few (threads, not tasks), so one pass per interval is
     * cheap. */
    if (rc_codec_broker_heartbeat(&core->out) != 0)
        return;
    rc_list_t *n = core->peers.next;
    while (n != &core->peers) {
        rc_peer_t *w = rc_container_of(n, rc_peer_t, link);
        n = n->next;
        /* A worker is lost after `liveness` of its own silent intervals:
         * one that said it heartbeats less often than the broker does is
         * given that much longer. */
        uint32_t beat = w->heartbeat_ms > core->cfg.heartbeat_ms ? w->heartbeat_ms : core->cfg.heartbeat_ms;
        if (now - w->last_seen_us > (uint64_t) beat * core->cfg.liveness * 1000) {
            rc_rejoin_lost(core, w);
            /* Handing its tasks back may have reused the reply buffer. */
            if (rc_codec_broker_heartbeat(&core->out) != 0)
                return;
            continue;
        }
        if (w->ready)
            w->unroutable = rc_route(core->workers, w->id, w->id_len, false, core->out.data, core->out.len, NULL) != 0;
    }
    rc_rejoin_tick(core, now);
}

void rc_peers_stopping(rc_core_t *core, uint32_t drain_ms)
{
    if (rc_codec_broker_stopping(&core->out, drain_ms) != 0)
        return;
    for (rc_list_t *n = core->peers.next; n != &core->peers; n = n->next) {
        rc_peer_t *w = rc_container_of(n, rc_peer_t, link);
        if (w->ready)
            rc_route(core->workers, w->id, w->id_len, false, core->out.data, core->out.len, NULL);
    }
}

void rc_peers_count(rc_core_t *core, uint64_t *ready, uint64_t *busy)
{
    *ready = *busy = 0;
    for (rc_list_t *n = core->peers.next; n != &core->peers; n = n->next) {
        rc_peer_t *w = rc_container_of(n, rc_peer_t, link);
        /* Only a worker seen on both channels can take tasks: one that has
         * sent its ControlHello but not yet its Ready is still connecting. */
        if (!w->ready || !w->hello || w->leaving)
            continue;
        (*ready)++;
        if (w->outstanding)
            (*busy)++;
    }
}

void rc_peers_free_all(rc_core_t *core)
{
    rc_rejoin_free_all(core);
    while (!rc_list_empty(&core->peers)) {
        rc_peer_t *w = rc_container_of(rc_list_front(&core->peers), rc_peer_t, link);
        rc_list_remove(&w->link);
        peer_free(w);
    }
    zhashx_destroy(&core->peer_ids);
}
