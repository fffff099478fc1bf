/* rc_rejoin: Reannounces rate-limited per routing id, worker sessions,
 * lost workers kept as ghosts while their never-started tasks wait for
 * their report, and hand-backs (see rc_rejoin.h). */
#include "rc_rejoin.h"

#include <stdlib.h>
#include <string.h>

#include "rc_common.h"
#include "rc_core.h"
#include "rc_log.h"

/* ---------------------------------------------------------------- reannounce */

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h | 1; /* 0 marks a free slot */
}

void rc_rejoin_reannounce(rc_core_t *core, const uint8_t *rid, size_t rid_len)
{
    uint64_t now = rc_core_mono_us(core), h = fnv1a(rid, rid_len);
    rc_reannounced_t *e = &core->reannounced[h % RC_REANNOUNCE_SLOTS];
    if (e->hash == h && now - e->at_us < (uint64_t) core->cfg.heartbeat_ms * 1000)
        return; /* it has one on its way: its other queued messages draw none */
    e->hash = h;
    e->at_us = now;
    if (rc_codec_broker_reannounce(&core->out) == 0 &&
        rc_route(core->workers, rid, rid_len, false, core->out.data, core->out.len, NULL) == 0)
        core->c.reannounces++;
}

/* ---------------------------------------------------------------- settling a session */

/* The task a used slot of peer holds as its current attempt, or NULL (it
 * was cancelled, or finished otherwise, while the worker held it). */
static rc_task_t *current(rc_core_t *core, rc_peer_t *w, const rc_slot_t *s)
{
    rc_task_t *t = rc_table_get(core->tasks, s->ref);
    if (!t || t->state != RC_PROCESSING || t->worker != w || t->attempt != s->attempt)
        return NULL;
    return t;
}

/* What the broker has heard of the attempt's run: a Started, or progress. */
static bool known_started(const rc_task_t *t)
{
    return t->started_us || rc_task_progress_done(t) || rc_task_progress_total(t);
}

/* Whether a Ready's report names (ref, attempt) as started. */
static bool reported(const rc_wmsg_t *m, const uint8_t ref[16], uint32_t attempt)
{
    for (size_t i = 0; i < m->n_tasks; i++) {
        uint32_t a;
        rc_str_t id = rc_codec_wmsg_task(m, i, &a);
        uint8_t r[16];
        if (a == attempt && rc_hex_decode(id.ptr, id.len, r, 16) == 0 && memcmp(r, ref, 16) == 0)
            return true;
    }
    return false;
}

/* Every task peer holds: back to the queue uncounted when the report
 * (m; NULL: none) shows the worker never started it, else a lost attempt. */
static void settle(rc_core_t *core, rc_peer_t *w, const rc_wmsg_t *m)
{
    rc_dispatch_discard(w);
    for (uint32_t i = 0; i < w->credit; i++) {
        rc_slot_t *s = &w->slots[i];
        if (!s->used)
            continue;
        rc_task_t *t = current(core, w, s);
        if (t && m && !known_started(t) && !reported(m, s->ref, s->attempt))
            rc_dispatch_slot_hand_back(core, w, s);
        else
            rc_dispatch_slot_lost(core, w, s);
    }
}

static void ghost_free(rc_core_t *core, rc_peer_t *w)
{
    settle(core, w, NULL);
    rc_list_remove(&w->link);
    rc_peers_forget(core, w);
}

/* ---------------------------------------------------------------- lost workers */

void rc_rejoin_lost(rc_core_t *core, rc_peer_t *w)
{
    core->c.workers_lost++;
    /* Dispatches still in its batch never left: never started. */
    for (uint32_t i = 0; i < w->batch_n; i++) {
        rc_slot_t *s = &w->slots[w->batch_slots[i]];
        if (s->used && current(core, w, s))
            rc_dispatch_slot_hand_back(core, w, s);
    }
    rc_dispatch_discard(w);
    uint32_t waiting = 0;
    for (uint32_t i = 0; i < w->credit; i++) {
        rc_slot_t *s = &w->slots[i];
        if (!s->used)
            continue;
        rc_task_t *t = current(core, w, s);
        if (t && !known_started(t))
            waiting++;
        else
            rc_dispatch_slot_lost(core, w, s);
    }
    rc_log(RC_LOG_WARN, "worker",
           "worker %s%s%s lost (silent for %u heartbeats); %u task(s) it may not have started wait for its "
           "report, the others retried or failed",
           w->id, *w->host ? " on " : "", w->host, core->cfg.liveness, waiting);
    rc_list_remove(&w->link);
    if (!waiting) {
        rc_peers_forget(core, w);
        return;
    }
    /* A worker whose connection is gone (its process died, or it opened new
     * ones) reports at once if it ever does; one cut off by the network
     * reports when the network is back: it is given two more windows. */
    uint64_t beat = w->heartbeat_ms > core->cfg.heartbeat_ms ? w->heartbeat_ms : core->cfg.heartbeat_ms;
    uint64_t grace = w->unroutable ? 2 * beat : 2 * beat * core->cfg.liveness;
    w->lost = true;
    w->ready = false;
    w->lost_until_us = rc_core_mono_us(core) + grace * 1000;
    rc_list_push_back(&core->ghosts, &w->link);
}

void rc_rejoin_tick(rc_core_t *core, uint64_t now)
{
    rc_list_t *n = core->ghosts.next;
    while (n != &core->ghosts) {
        rc_peer_t *w = rc_container_of(n, rc_peer_t, link);
        n = n->next;
        if (now >= w->lost_until_us) {
            rc_log(RC_LOG_WARN, "worker", "worker %s did not come back: its %u waiting task(s) retried or failed",
                   w->id, w->outstanding);
            ghost_free(core, w);
        }
    }
}

void rc_rejoin_free_all(rc_core_t *core)
{
    while (!rc_list_empty(&core->ghosts)) {
        rc_peer_t *w = rc_container_of(rc_list_front(&core->ghosts), rc_peer_t, link);
        rc_list_remove(&w->link);
        rc_peers_forget(core, w);
    }
}

/* ---------------------------------------------------------------- Ready and HandBack */

/* The peer a Ready names as its previous session's, when it is that
 * session's: this one, or the one of its previous routing id. */
static rc_peer_t *previous(rc_core_t *core, rc_peer_t *w, const rc_wmsg_t *m)
{
    if (!m->previous_session)
        return NULL;
    rc_peer_t *old = w;
    if (m->previous_id.len && (m->previous_id.len != w->id_len || memcmp(m->previous_id.ptr, w->id, w->id_len)))
        old = m->previous_id.len <= RC_MAX_ROUTING_ID ? zhashx_lookup(core->peer_ids, m->previous_id.ptr) : NULL;
    return old && old->session == m->previous_session ? old : NULL;
}

void rc_rejoin_ready(rc_core_t *core, rc_peer_t *w, const rc_wmsg_t *m)
{
    if (m->session && m->session == w->session) {
        /* A Ready again of the session it has: it forgot nothing, and what
         * it holds it will still run (a ghost comes back as it was). */
        if (w->lost) {
            w->lost = false;
            rc_list_remove(&w->link);
            rc_list_push_back(&core->peers, &w->link);
        }
        return;
    }
    rc_peer_t *old = previous(core, w, m);
    if (old) {
        rc_log(RC_LOG_INFO, "worker", "worker %s rejoined (session of %s): %u task(s) settled by its report", w->id,
               old->id, old->outstanding);
        settle(core, old, m);
        if (old != w) {
            /* Its previous connections: nothing more comes from them. */
            rc_list_remove(&old->link);
            rc_peers_forget(core, old);
        }
    } else if (w->ready || w->lost) {
        /* A new session that names nothing we know: what the worker held
         * is gone on its side, and may have run. */
        rc_log(RC_LOG_WARN, "worker",
               "worker %s announced a new session with no report; its %u task(s) retried or failed", w->id,
               w->outstanding);
        settle(core, w, NULL);
    }
    if (w->lost) {
        w->lost = false;
        rc_list_remove(&w->link);
        rc_list_push_back(&core->peers, &w->link);
    }
    w->session = m->session;
}

void rc_rejoin_hand_back(rc_core_t *core, rc_peer_t *w, const rc_wmsg_t *m)
{
    /* Leaving first: what it gives back must not come back to it. */
    if (m->leaving && !w->leaving) {
        w->leaving = true;
        rc_log(RC_LOG_DEBUG, "worker", "worker %s is leaving: it holds %u task(s), gives back %zu", w->id,
               w->outstanding, m->n_tasks);
    }
    for (size_t i = 0; i < m->n_tasks; i++) {
        uint32_t attempt;
        rc_str_t id = rc_codec_wmsg_task(m, i, &attempt);
        uint8_t ref[16];
        rc_slot_t *s = rc_hex_decode(id.ptr, id.len, ref, 16) == 0 ? rc_dispatch_slot_find(w, ref, attempt) : NULL;
        if (!s) {
            core->c.stale_msgs++;
            continue;
        }
        if (current(core, w, s))
            rc_dispatch_slot_hand_back(core, w, s);
        else
            rc_dispatch_slot_lost(core, w, s); /* releases the slot; the event is stale */
    }
}
