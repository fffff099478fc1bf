/* rc_cache: task records from birth to death, the cache index, the LRU
 * order and the caps (see rc_cache.h). */
#include "rc_cache.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "rc_core.h"
#include "rc_key.h"

/* After many records were dropped (TTL, eviction, delete), the freed heap
 * goes back to the OS: glibc keeps it otherwise, and the broker's resident
 * memory would stay at its high-water mark. The tick does it. */
void rc_cache_init(rc_core_t *core)
{
    /* Active records and waiters come from spare lists (rc_spare.h): freed
     * ones wait there for the next submits, at most about 1 MiB of them,
     * instead of carving the long-lived shrunk records out of them. */
    core->spare_records = (rc_spare_t){.size = sizeof(rc_task_t) + RC_SPEC_ROOM, .cap = 4096};
    rc_list_init(&core->lru);
    rc_list_init(&core->unsettled);
    rc_list_init(&core->dead);
}

rc_task_t *rc_cache_record_new(rc_core_t *core)
{
    rc_task_t *t = rc_spare_get(&core->spare_records);
    if (t)
        rc_list_init(&t->link);
    return t;
}

/* Frees the spec unless it is in its record's room. */
static void spec_free(rc_task_t *t)
{
    if (t->spec != t->spec_room)
        free(t->spec);
    t->spec = NULL;
}

void rc_cache_record_discard(rc_core_t *core, rc_task_t *t)
{
    spec_free(t);
    free(t->ns);
    rc_spare_put(&core->spare_records, t);
}

void rc_cache_key(rc_core_t *core, const rc_request_t *req, uint64_t owner, uint8_t key[16])
{
    rc_key_state_t ks;
    rc_key_init(&ks, core->key_secret);
    rc_key_field(&ks, req->ns.ptr, req->ns.len);
    rc_key_field(&ks, req->function.ptr, req->function.len);
    rc_key_field(&ks, &owner, sizeof owner);
    /* Params in key order, so the map's wire order does not matter. */
    size_t n = req->n_params;
    size_t order[RC_MAX_PARAMS];
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            rc_str_t ka, kb, va, vb;
            rc_codec_request_param(req, order[j - 1], &ka, &va);
            rc_codec_request_param(req, order[j], &kb, &vb);
            int c = strcmp(ka.ptr, kb.ptr);
            if (c < 0 || (c == 0 && strcmp(va.ptr, vb.ptr) <= 0))
                break;
            size_t tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    for (size_t i = 0; i < n; i++) {
        rc_str_t k, v;
        rc_codec_request_param(req, order[i], &k, &v);
        rc_key_field(&ks, k.ptr, k.len);
        rc_key_field(&ks, v.ptr, v.len);
    }
    rc_key_field(&ks, req->payload.ptr, req->payload.len);
    rc_key_final(&ks, key);
}

rc_task_t *rc_cache_lookup(rc_core_t *core, const uint8_t key[16])
{
    return rc_table_get(core->index, key);
}

int rc_cache_index(rc_core_t *core, rc_task_t *t)
{
    if (rc_table_put(core->index, t) != 0)
        return -1;
    t->flags |= F_INDEXED;
    return 0;
}

void rc_cache_unindex(rc_core_t *core, rc_task_t *t)
{
    if (t->flags & F_INDEXED) {
        rc_table_remove(core->index, t);
        t->flags &= (uint8_t) ~F_INDEXED;
    }
}

void rc_cache_touch(rc_core_t *core, rc_task_t *t)
{
    /* Only a settled finished task is in the LRU order. */
    if (rc_task_terminal(t->state) && !(t->flags & F_UNSETTLED)) {
        rc_list_remove(&t->link);
        rc_list_push_back(&core->lru, &t->link);
    }
}

int rc_cache_keep_result(rc_core_t *core, rc_task_t *t, const uint8_t *data, size_t len)
{
    /* Laid out as the shrunk COMPLETE record will be: the kept fields, then
     * the result. rc_task_keeps_ext cannot change once the result is in (no
     * progress, no stop time comes after it). */
    size_t head = t->ns || t->progress_done || t->progress_total || t->stopped_us ? RC_TASK_KEPT : RC_TASK_CORE;
    uint8_t *block = malloc(head + len);
    if (!block)
        return -1;
    if (len)
        memcpy(block + head, data, len);
    t->kept = block;
    t->result_len = (uint32_t) len;
    core->cache_bytes += len;
    return 0;
}

void rc_cache_retire(rc_core_t *core, rc_task_t *t)
{
    spec_free(t);
    t->flags |= F_FULL | F_UNSETTLED;
    rc_list_remove(&t->link);
    rc_list_push_back(&core->unsettled, &t->link);
}

void rc_cache_drop(rc_core_t *core, rc_task_t *t)
{
    rc_cache_unindex(core, t);
    rc_table_remove(core->tasks, t);
    rc_list_remove(&t->link);
    rc_timers_cancel(core->timers, &t->timer);
    if (t->state == RC_COMPLETE)
        core->cache_bytes -= t->result_len;
    t->flags = (uint8_t) ((t->flags & ~F_UNSETTLED) | F_DEAD);
    rc_list_push_back(&core->dead, &t->link);
}

/* Starts a finished record's TTL and puts it at the back of the LRU order. */
static void keep(rc_core_t *core, rc_task_t *t)
{
    /* The TTL is its own handle's: none once that went (other handles
     * hold the record), counted from when it left the work if it did. */
    uint64_t now = rc_core_mono_us(core);
    t->timer.kind = T_TTL;
    if (t->flags & F_HANDLES) {
        if (t->hstate != RC_GONE)
            rc_timers_set(core->timers, &t->timer, rc_handles_own_due(core, t, now));
    } else {
        rc_timers_set(core->timers, &t->timer, now + (uint64_t) t->ttl_s * 1000000);
    }
    rc_list_push_back(&core->lru, &t->link);
}

/* Shrinks a finished record to its kept fields (with the extension if it
 * needs one) plus its result bytes or its error text, and puts the new
 * record where the old one was in the tables. Nothing else points at it:
 * its waiters were answered, its queue place, timers and worker let go. A
 * FAILED or CANCELLED record that finds no memory for its smaller self
 * stays as it is (F_FULL). Returns the record kept. */
static rc_task_t *shrink(rc_core_t *core, rc_task_t *t)
{
    bool ext = rc_task_keeps_ext(t);
    size_t head = ext ? RC_TASK_KEPT : RC_TASK_CORE;
    rc_task_t *n;
    rc_list_remove(&t->link);
    t->flags &= (uint8_t) ~F_UNSETTLED;
    if (t->state == RC_COMPLETE) {
        n = (rc_task_t *) t->kept;
    } else {
        const char *err = t->error ? t->error : "";
        size_t err_len = strlen(err) + 1;
        n = malloc(head + err_len);
        if (n)
            memcpy((uint8_t *) n + head, err, err_len);
    }
    if (!n)
        return t;
    memcpy(n, t, head);
    n->flags &= (uint8_t) ~F_FULL;
    if (!ext)
        n->flags &= (uint8_t) ~F_EXT;
    rc_list_init(&n->link); /* the copy's link still pointed at the old record */
    /* Same keys: the copy takes the old record's slots (which exist). */
    rc_table_replace(core->tasks, t, n);
    if (n->flags & F_INDEXED)
        rc_table_replace(core->index, t, n);
    if (n->flags & F_HANDLES)
        rc_handles_moved(core, n);
    free(t->error);
    rc_spare_put(&core->spare_records, t);
    return n;
}

void rc_cache_settle(rc_core_t *core)
{
    rc_list_t *front;
    rc_task_t *first_new = NULL;
    while ((front = rc_list_front(&core->unsettled))) {
        rc_task_t *t = shrink(core, rc_container_of(front, rc_task_t, link));
        keep(core, t);
        if (!first_new)
            first_new = t;
    }
    /* Least recently used finished tasks go while a cap is exceeded:
     * bounded by what is over, never a scan. The tasks that finished in
     * this message stay (as they did under their callers). */
    while ((front = rc_list_front(&core->lru)) &&
           (core->cache_bytes > core->cfg.cache_bytes ||
            rc_table_size(core->tasks) + rc_handles_count(core) > core->cfg.max_records)) {
        rc_task_t *t = rc_container_of(front, rc_task_t, link);
        if (t == first_new)
            break;
        rc_run(core, &(rc_ev_t){.event = RC_EV_EVICT, .task = t, .cause = {.kind = RC_CAUSE_BROKER}});
    }
    while ((front = rc_list_front(&core->dead))) {
        rc_task_t *t = rc_container_of(front, rc_task_t, link);
        rc_list_remove(front);
        rc_cache_free(core, t);
    }
    rc_handles_settle(core);
}

void rc_cache_free(rc_core_t *core, rc_task_t *t)
{
    bool full = rc_task_full(t);
    if (full) {
        rc_waiters_drop_all(core, t);
        rc_timers_cancel(core->timers, &t->deadline);
        spec_free(t);
        free(t->error);
        free(t->kept);
    }
    rc_timers_cancel(core->timers, &t->timer);
    rc_list_remove(&t->link);
    if (!(t->flags & F_DEAD)) {
        rc_cache_unindex(core, t);
        rc_table_remove(core->tasks, t);
        if (t->state == RC_COMPLETE)
            core->cache_bytes -= t->result_len;
    }
    core->n_state[t->state]--;
    if (t->flags & F_EXT)
        free(t->ns);
    if (full)
        rc_spare_put(&core->spare_records, t);
    else
        free(t);
    core->freed_since_trim++;
}
