/* rc_handles: extra handles on shared work, and the counts that make the
 * cache a refcounted one (see rc_handles.h). */
#include "rc_handles.h"

#include <stdlib.h>
#include <string.h>

#include "rc_common.h"
#include "rc_core.h"

#define CODE(name) REFCACHE__V1__CODE__CODE_##name

int rc_handles_init(rc_core_t *core)
{
    core->handles = rc_table_new(offsetof(rc_handle_t, ref));
    core->handle_sets = rc_table_new(offsetof(rc_handles_t, ref));
    rc_list_init(&core->dead_handles);
    return core->handles && core->handle_sets ? 0 : -1;
}

void rc_handles_fini(rc_core_t *core)
{
    rc_handles_settle(core);
    size_t n = 0;
    void **all = core->handles ? rc_table_snapshot(core->handles, &n) : NULL;
    for (size_t i = 0; all && i < n; i++) {
        rc_handle_t *h = all[i];
        rc_timers_cancel(core->timers, &h->timer);
        free(h);
    }
    free(all);
    all = core->handle_sets ? rc_table_snapshot(core->handle_sets, &n) : NULL;
    for (size_t i = 0; all && i < n; i++)
        free(all[i]);
    free(all);
    rc_table_destroy(&core->handles);
    rc_table_destroy(&core->handle_sets);
}

static rc_handles_t *set_of(rc_core_t *core, const rc_task_t *t)
{
    return t->flags & F_HANDLES ? rc_table_get(core->handle_sets, t->ref) : NULL;
}

static bool live(const rc_task_t *t)
{
    return t->state == RC_PENDING || t->state == RC_PROCESSING;
}

uint32_t rc_handles_wanting(rc_core_t *core, const rc_task_t *t)
{
    rc_handles_t *hs = set_of(core, t);
    if (hs)
        return hs->wanting;
    return live(t) && !t->hstate;
}

uint32_t rc_handles_holding(rc_core_t *core, const rc_task_t *t)
{
    rc_handles_t *hs = set_of(core, t);
    if (hs)
        return hs->holding;
    return t->hstate != RC_GONE;
}

rc_handle_t *rc_handles_lookup(rc_core_t *core, const uint8_t ref[16])
{
    return rc_table_get(core->handles, ref);
}

static uint64_t ttl_us(uint32_t ttl_s)
{
    return (uint64_t) ttl_s * 1000000;
}

rc_handle_t *rc_handles_new(rc_core_t *core, rc_task_t *t, uint32_t ttl_s, uint32_t deadline_ms,
                            const uint8_t ref[16])
{
    rc_handles_t *hs = set_of(core, t);
    if (!hs) {
        hs = calloc(1, sizeof *hs);
        if (!hs)
            return NULL;
        memcpy(hs->ref, t->ref, 16);
        hs->task = t;
        rc_list_init(&hs->handles);
        hs->wanting = live(t) && !t->hstate;
        hs->holding = t->hstate != RC_GONE;
        if (rc_table_put(core->handle_sets, hs) != 0) {
            free(hs);
            return NULL;
        }
        t->flags |= F_HANDLES;
    }
    rc_handle_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    memcpy(h->ref, ref, 16);
    h->owner = core->owner;
    h->ttl_s = ttl_s;
    h->created_us = rc_core_wall_us(core);
    h->task = t;
    rc_list_init(&h->link);
    if (rc_table_put(core->handles, h) != 0) {
        free(h);
        return NULL;
    }
    if (live(t) && deadline_ms) {
        h->timer.kind = T_HDEADLINE;
        rc_timers_set(core->timers, &h->timer, rc_core_mono_us(core) + (uint64_t) deadline_ms * 1000);
    }
    return h;
}

void rc_handles_discard(rc_core_t *core, rc_handle_t *h)
{
    rc_table_remove(core->handles, h);
    rc_timers_cancel(core->timers, &h->timer);
    free(h);
}

/* Starts h's TTL now. */
static void start_ttl(rc_core_t *core, rc_handle_t *h)
{
    h->timer.kind = T_HTTL;
    rc_timers_set(core->timers, &h->timer, rc_core_mono_us(core) + ttl_us(h->ttl_s));
}

void rc_handles_attach(rc_core_t *core, rc_handle_t *h)
{
    rc_handles_t *hs = set_of(core, h->task);
    rc_list_push_back(&hs->handles, &h->link);
    hs->holding++;
    if (live(h->task))
        hs->wanting++;
    else
        start_ttl(core, h); /* a cache hit: the result is there already */
}

void rc_handles_leave(rc_core_t *core, rc_task_t *t, rc_handle_t *h, int state)
{
    rc_handles_t *hs = set_of(core, t);
    hs->wanting--;
    if (h) {
        h->state = (uint8_t) state;
        h->left_us = rc_core_wall_us(core);
        rc_timers_cancel(core->timers, &h->timer); /* its deadline */
        start_ttl(core, h);
    } else {
        t->hstate = (uint8_t) state;
        hs->own_left_us = rc_core_wall_us(core);
        rc_timers_cancel(core->timers, &t->deadline);
    }
    rc_waiters_answer_handle(core, t, h);
}

/* Takes h out of every table and list; it is freed at the end of the
 * message (an observer may still see it in this transition's note). */
static void unlink_handle(rc_core_t *core, rc_handle_t *h)
{
    rc_table_remove(core->handles, h);
    rc_timers_cancel(core->timers, &h->timer);
    rc_list_remove(&h->link);
    rc_list_push_back(&core->dead_handles, &h->link);
}

void rc_handles_forget(rc_core_t *core, rc_task_t *t, rc_handle_t *h)
{
    rc_handles_t *hs = set_of(core, t);
    hs->holding--;
    if (h) {
        unlink_handle(core, h);
    } else {
        t->hstate = RC_GONE;
        rc_timers_cancel(core->timers, &t->timer); /* its TTL */
    }
}

void rc_handles_finish(rc_core_t *core, rc_task_t *t)
{
    rc_handles_t *hs = set_of(core, t);
    if (!hs)
        return;
    for (rc_list_t *n = hs->handles.next; n != &hs->handles; n = n->next) {
        rc_handle_t *h = rc_container_of(n, rc_handle_t, link);
        if (!h->state) {
            rc_timers_cancel(core->timers, &h->timer); /* its deadline */
            start_ttl(core, h);
        }
    }
}

void rc_handles_drop(rc_core_t *core, rc_task_t *t)
{
    rc_handles_t *hs = set_of(core, t);
    if (!hs)
        return;
    rc_list_t *front;
    while ((front = rc_list_front(&hs->handles)))
        unlink_handle(core, rc_container_of(front, rc_handle_t, link));
    rc_table_remove(core->handle_sets, hs);
    free(hs);
    t->flags &= (uint8_t) ~F_HANDLES;
}

void rc_handles_moved(rc_core_t *core, rc_task_t *t)
{
    rc_handles_t *hs = set_of(core, t);
    if (!hs)
        return;
    hs->task = t;
    for (rc_list_t *n = hs->handles.next; n != &hs->handles; n = n->next)
        rc_container_of(n, rc_handle_t, link)->task = t;
}

void rc_handles_settle(rc_core_t *core)
{
    rc_list_t *front;
    while ((front = rc_list_front(&core->dead_handles))) {
        rc_list_remove(front);
        free(rc_container_of(front, rc_handle_t, link));
    }
}

int rc_handles_state(const rc_task_t *t, const rc_handle_t *h)
{
    int own = h ? h->state : t->hstate;
    return own ? own : t->state;
}

bool rc_handles_own_expired(rc_core_t *core, const rc_task_t *t)
{
    if (t->hstate != RC_CANCELLED && t->hstate != RC_FAILED)
        return t->hstate == RC_GONE;
    rc_handles_t *hs = set_of(core, t);
    return hs && rc_core_wall_us(core) > hs->own_left_us + ttl_us(t->ttl_s);
}

uint64_t rc_handles_own_due(rc_core_t *core, const rc_task_t *t, uint64_t now_us)
{
    rc_handles_t *hs = set_of(core, t);
    if (!hs || !hs->own_left_us)
        return now_us + ttl_us(t->ttl_s);
    uint64_t ends = hs->own_left_us + ttl_us(t->ttl_s), wall = rc_core_wall_us(core);
    return now_us + (ends > wall ? ends - wall : 0);
}

void rc_view_handle(rc_core_t *core, const rc_task_t *t, const rc_handle_t *h, rc_taskview_t *v, char *hex)
{
    rc_view_task(core, t, v, hex);
    if (!h && !t->hstate)
        return;
    uint32_t ttl_s = t->ttl_s;
    uint64_t left_us = 0;
    if (h) {
        rc_hex_encode(h->ref, 16, hex);
        v->created_at_us = h->created_us;
        ttl_s = h->ttl_s;
        left_us = h->left_us;
        if (!h->state && t->finished_us)
            v->expires_at_us = (h->created_us > t->finished_us ? h->created_us : t->finished_us) + ttl_us(ttl_s);
    } else {
        rc_handles_t *hs = set_of(core, t);
        left_us = hs ? hs->own_left_us : 0;
    }
    int own = h ? h->state : t->hstate;
    if (!own)
        return;
    /* It left the work: what it shows is its own end, not the task's. */
    v->state = own;
    v->result = (rc_bytes_t){NULL, 0};
    v->result_size = 0;
    v->result_truncated = false;
    v->error_code = own == RC_CANCELLED ? CODE(CANCELLED) : CODE(DEADLINE_EXCEEDED);
    v->error = own == RC_CANCELLED ? "cancelled" : "deadline exceeded";
    v->finished_at_us = left_us;
    v->stopped_at_us = 0;
    v->expires_at_us = left_us + ttl_us(ttl_s);
}

/* A wall clock time as a monotonic due time (now if it has passed). */
static uint64_t due_of(rc_core_t *core, uint64_t wall_us)
{
    uint64_t now = rc_core_wall_us(core);
    return rc_core_mono_us(core) + (wall_us > now ? wall_us - now : 0);
}

rc_handle_t *rc_handles_restore(rc_core_t *core, rc_task_t *t, const uint8_t ref[16], int state, uint32_t ttl_s,
                                uint64_t owner, uint64_t created_us, uint64_t left_us, uint64_t deadline_us)
{
    uint64_t saved = core->owner;
    core->owner = owner;
    rc_handle_t *h = rc_handles_new(core, t, ttl_s, 0, ref);
    core->owner = saved;
    if (!h)
        return NULL;
    h->created_us = created_us;
    h->state = (uint8_t) state;
    h->left_us = left_us;
    rc_handles_t *hs = set_of(core, t);
    rc_list_push_back(&hs->handles, &h->link);
    hs->holding++;
    if (state) {
        h->timer.kind = T_HTTL;
        rc_timers_set(core->timers, &h->timer, due_of(core, left_us + ttl_us(ttl_s)));
    } else if (live(t)) {
        hs->wanting++;
        if (deadline_us) {
            h->timer.kind = T_HDEADLINE;
            rc_timers_set(core->timers, &h->timer, due_of(core, deadline_us));
        }
    } else {
        uint64_t from = created_us > t->finished_us ? created_us : t->finished_us;
        h->timer.kind = T_HTTL;
        rc_timers_set(core->timers, &h->timer, due_of(core, from + ttl_us(ttl_s)));
    }
    return h;
}

void rc_handles_restore_own(rc_core_t *core, rc_task_t *t, uint64_t own_left_us)
{
    rc_handles_t *hs = set_of(core, t);
    if (!hs)
        return;
    /* rc_handles_new counted the own handle as it stood when the set was
     * made: that is its state now too (restored before the handles). */
    hs->own_left_us = own_left_us;
}

uint64_t rc_handles_own_left(rc_core_t *core, const rc_task_t *t)
{
    rc_handles_t *hs = set_of(core, t);
    return hs ? hs->own_left_us : 0;
}

rc_handle_t *rc_handles_next(rc_core_t *core, const rc_task_t *t, const rc_handle_t *h)
{
    rc_handles_t *hs = set_of(core, t);
    if (!hs)
        return NULL;
    const rc_list_t *n = h ? h->link.next : hs->handles.next;
    return n == &hs->handles ? NULL : rc_container_of(n, rc_handle_t, link);
}

uint64_t rc_handles_count(rc_core_t *core)
{
    return rc_table_size(core->handles);
}
