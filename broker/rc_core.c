/* rc_core: the broker's state from start to end — its life cycle, the
 * clock, the timer pass, and the entry points the loop calls, each of
 * which ends at the safe point where finished records are shrunk and
 * dropped ones freed (rc_runner_settle). */
#include "rc_core.h"

#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_common.h"
#include "rc_key.h"
#include "rc_log.h"

/* Reads the clock for the message or timer pass about to be handled. */
static void clock_read(rc_core_t *core, bool wall)
{
    core->now_ns = rc_mono_ns();
    if (wall)
        core->wall_off_us = (int64_t) rc_wall_us() - (int64_t) rc_core_mono_us(core);
}

void rc_core_note(const rc_core_t *core, const char *fmt, ...)
{
    (void) core;
    va_list ap;
    va_start(ap, fmt);
    rc_logv(RC_LOG_INFO, "broker", fmt, ap);
    va_end(ap);
}

rc_fn_t *rc_core_fn(rc_core_t *core, const char *name)
{
    rc_fn_t *fn = zhashx_lookup(core->fns, name);
    if (fn)
        return fn;
    fn = calloc(1, sizeof *fn);
    if (!fn || !(fn->name = strdup(name))) {
        free(fn);
        return NULL;
    }
    rc_list_init(&fn->queue);
    zhashx_insert(core->fns, fn->name, fn);
    return fn;
}

uint64_t rc_core_owner_of(rc_core_t *core, const char *key)
{
    rc_key_state_t ks;
    uint8_t digest[16];
    uint64_t owner;
    rc_key_init(&ks, core->key_secret);
    rc_key_field(&ks, key, strlen(key));
    rc_key_final(&ks, digest);
    memcpy(&owner, digest, sizeof owner);
    return owner ? owner : 1; /* 0 means "no CURVE identity" */
}

/* ---------------------------------------------------------------- entry points */

int rc_core_client_msg(rc_core_t *core, zmq_msg_t *frames, int nframes)
{
    clock_read(core, false);
    int n = rc_ops_client_msg(core, frames, nframes);
    rc_runner_settle(core);
    return n;
}

int rc_core_worker_msg(rc_core_t *core, zmq_msg_t *frames, int nframes)
{
    clock_read(core, false);
    int n = rc_peers_work_msg(core, frames, nframes);
    rc_runner_settle(core);
    return n;
}

int rc_core_control_msg(rc_core_t *core, zmq_msg_t *frames, int nframes)
{
    clock_read(core, false);
    int n = rc_peers_control_msg(core, frames, nframes);
    rc_runner_settle(core);
    return n;
}

void rc_core_flush(rc_core_t *core)
{
    rc_dispatch_flush(core);
    rc_runner_settle(core);
    rc_journal_flush(core);
    /* Last, as handing tasks back may have answered waiters. */
    rc_outbox_flush_all(core);
    rc_observe_flush(core);
}

/* ---------------------------------------------------------------- timers */

/* After many records were dropped (TTL, eviction, delete), hand the freed
 * heap back to the OS: glibc keeps it otherwise, and the broker's resident
 * memory would stay at its high-water mark. At most once per tick. */
#define RC_TRIM_AFTER 4096

static void tick(rc_core_t *core, uint64_t now)
{
    if (core->freed_since_trim >= RC_TRIM_AFTER) {
        malloc_trim(0);
        core->freed_since_trim = 0;
    }
    rc_peers_tick(core, now);
}

static void task_timer(rc_core_t *core, rc_task_t *t, rc_event_t ev)
{
    rc_run(core, &(rc_ev_t){.event = ev, .task = t, .cause = {.kind = RC_CAUSE_TIMER}});
}

uint64_t rc_core_timers(rc_core_t *core, uint64_t now)
{
    clock_read(core, true);
    /* Bounded per call so a burst of expiries cannot stall the loop. */
    for (int budget = 4096; budget > 0; budget--) {
        rc_timer_t *tm = rc_timers_pop_due(core->timers, now);
        if (!tm)
            break;
        switch (tm->kind) {
        case T_TICK:
            tick(core, now);
            rc_timers_set(core->timers, &core->tick, now + (uint64_t) core->cfg.heartbeat_ms * 1000);
            break;
        case T_WAITER:
            rc_waiter_due(core, tm);
            break;
        case T_WAIT_LANE: {
            int n = rc_waiters_lane_due(core, tm, now, budget);
            if (n > 1)
                budget -= n - 1;
            break;
        }
        case T_DEADLINE:
            task_timer(core, rc_container_of(tm, rc_task_t, deadline), RC_EV_DEADLINE);
            break;
        case T_RETRY:
            task_timer(core, rc_container_of(tm, rc_task_t, timer), RC_EV_RETRY_DUE);
            break;
        case T_TTL:
            task_timer(core, rc_container_of(tm, rc_task_t, timer), RC_EV_EXPIRE);
            break;
        case T_HDEADLINE:
        case T_HTTL: {
            rc_handle_t *h = rc_container_of(tm, rc_handle_t, timer);
            rc_run(core, &(rc_ev_t){.event = tm->kind == T_HTTL ? RC_EV_EXPIRE : RC_EV_DEADLINE,
                                    .task = h->task,
                                    .handle = h,
                                    .cause = {.kind = RC_CAUSE_TIMER}});
            break;
        }
        }
    }
    rc_core_flush(core); /* what a retry or the tick dispatched */
    rc_timer_t *first = rc_timers_first(core->timers);
    return first ? first->due_us : UINT64_MAX;
}

/* ---------------------------------------------------------------- life cycle */

static void fn_destroy(void **item)
{
    rc_fn_t *fn = *item;
    free(fn->name);
    free(fn);
    *item = NULL;
}

int rc_core_init(rc_core_t *core, const rc_broker_config_t *cfg)
{
    memset(core, 0, sizeof *core);
    core->cfg = *cfg;
    core->window_ns = (uint64_t) cfg->dispatch_window_us * 1000;
    core->timers = rc_timers_new();
    core->tasks = rc_table_new(offsetof(rc_task_t, ref));
    core->index = rc_table_new(offsetof(rc_task_t, key));
    core->fns = zhashx_new();
    core->peer_ids = zhashx_new();
    rc_list_init(&core->peers);
    rc_list_init(&core->ghosts);
    rc_list_init(&core->to_flush);
    rc_cache_init(core);
    rc_waiters_init(core);
    if (rc_handles_init(core) != 0 || rc_idem_init(core) != 0 || !core->timers || !core->tasks || !core->index || !core->fns ||
        !core->peer_ids)
        return -1;
    zhashx_set_destructor(core->fns, fn_destroy);
    if (rc_random_bytes(core->key_secret, sizeof core->key_secret) != 0 || rc_observe_init(core) != 0)
        return -1;
    clock_read(core, true);
    core->started_mono_us = rc_core_mono_us(core);
    core->tick.kind = T_TICK;
    return rc_timers_set(core->timers, &core->tick,
                         core->started_mono_us + (uint64_t) cfg->heartbeat_ms * 1000);
}

void rc_core_fini(rc_core_t *core)
{
    /* Tasks first (they reference functions), then workers. Tasks that are
     * PROCESSING or waiting for a retry are in no list: the table is the one
     * place that has them all. */
    rc_runner_settle(core);
    rc_observe_fini(core);
    if (core->tasks) {
        size_t n = 0;
        void **all = rc_table_snapshot(core->tasks, &n);
        for (size_t i = 0; all && i < n; i++) {
            rc_task_t *t = all[i];
            if (rc_list_linked(&t->link) && t->state == RC_PENDING)
                t->fn->queued--;
            rc_cache_free(core, t);
        }
        free(all);
    }
    rc_handles_fini(core);
    rc_idem_fini(core);
    rc_peers_free_all(core);
    zhashx_destroy(&core->client_keys);
    zhashx_destroy(&core->worker_keys);
    zhashx_destroy(&core->admin_keys);
    zhashx_destroy(&core->shared_ns);
    rc_buf_free(&core->out);
    rc_buf_free(&core->scratch);
    rc_spare_drain(&core->spare_records);
    rc_spare_drain(&core->spare_waiters);
    for (int i = 0; i < RC_OUTBOXES; i++)
        rc_buf_free(&core->outbox[i].buf);
    rc_runner_fini(&core->runner);
    rc_timers_destroy(&core->timers);
    rc_table_destroy(&core->index);
    zhashx_destroy(&core->fns);
    rc_table_destroy(&core->tasks);
}
