/* fuzz_replay: the record interpreter shared by the fuzz target and the
 * regression test (the format is in fuzz_replay.h). */
#include "fuzz_replay.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_core.h"
#include "rc_common.h"

static void *s_ctx;
/* [0]: ROUTER_MANDATORY (replies refused), [1]: without (replies dropped
 * silently, so the core believes its dispatches went out). */
static void *s_sock[2][3];

static int s_sockets(void)
{
    if (s_ctx)
        return 0;
    s_ctx = zmq_ctx_new();
    if (!s_ctx)
        return -1;
    static const char *names[3] = {"clients", "workers", "control"};
    for (int m = 0; m < 2; m++)
        for (int c = 0; c < 3; c++) {
            char ep[64];
            int on = m == 0, zero = 0;
            snprintf(ep, sizeof ep, "inproc://rc-fuzz-%s-%d", names[c], m);
            s_sock[m][c] = zmq_socket(s_ctx, ZMQ_ROUTER);
            if (!s_sock[m][c] || zmq_setsockopt(s_sock[m][c], ZMQ_ROUTER_MANDATORY, &on, sizeof on) != 0 ||
                zmq_setsockopt(s_sock[m][c], ZMQ_LINGER, &zero, sizeof zero) != 0 ||
                zmq_bind(s_sock[m][c], ep) != 0) {
                rc_replay_shutdown();
                return -1;
            }
        }
    return 0;
}

void rc_replay_shutdown(void)
{
    for (int m = 0; m < 2; m++)
        for (int c = 0; c < 3; c++)
            if (s_sock[m][c]) {
                zmq_close(s_sock[m][c]);
                s_sock[m][c] = NULL;
            }
    if (s_ctx)
        zmq_ctx_term(s_ctx);
    s_ctx = NULL;
}

/* Predictable ref_ids: new_ref() takes 16-byte blocks from the end of the
 * pool, so block k from the end holds task number k+1 (big-endian). */
static void s_predictable_refs(rc_core_t *core)
{
    size_t blocks = sizeof core->rand_pool / 16;
    memset(core->rand_pool, 0, sizeof core->rand_pool);
    for (size_t k = 0; k < blocks; k++) {
        uint8_t *ref = core->rand_pool + sizeof core->rand_pool - 16 * (k + 1);
        ref[14] = (uint8_t) ((k + 1) >> 8);
        ref[15] = (uint8_t) (k + 1);
    }
    core->rand_left = sizeof core->rand_pool;
}

typedef struct {
    const uint8_t *p, *end;
} cursor_t;

static bool take(cursor_t *c, size_t n, const uint8_t **out)
{
    if ((size_t) (c->end - c->p) < n)
        return false;
    *out = c->p;
    c->p += n;
    return true;
}

static uint64_t s_now(uint64_t fake)
{
    /* Never behind the real clock: the core stamps workers with it. */
    uint64_t real = rc_mono_us();
    return fake > real ? fake : real;
}

/* Reads one message record and hands it to the core; false at the end. */
static bool s_message(rc_core_t *core, cursor_t *c, uint8_t op)
{
    const uint8_t *b;
    if (!take(c, 1, &b))
        return false;
    size_t rid_len = b[0];
    const uint8_t *rid;
    if (!take(c, rid_len, &rid))
        return false;
    if (rid_len == 0) {
        rid = (const uint8_t *) "fuzz-peer";
        rid_len = 9;
    }
    if (!take(c, 1, &b))
        return false;
    int want = b[0];
    zmq_msg_t frames[RC_REPLAY_MAX_FRAMES];
    zmq_msg_init_size(&frames[0], rid_len);
    memcpy(zmq_msg_data(&frames[0]), rid, rid_len);
    int n = 1;
    bool whole = true;
    for (int i = 0; i < want; i++) {
        const uint8_t *lenb, *body;
        if (!take(c, 2, &lenb)) {
            whole = false;
            break;
        }
        size_t len = (size_t) lenb[0] | (size_t) lenb[1] << 8;
        if (!take(c, len, &body)) {
            len = (size_t) (c->end - c->p);
            take(c, len, &body);
            whole = false;
        }
        if (n < RC_REPLAY_MAX_FRAMES) {
            zmq_msg_init_size(&frames[n], len);
            if (len)
                memcpy(zmq_msg_data(&frames[n]), body, len);
        }
        n++;
        if (!whole)
            break;
    }
    switch (op & 3) {
    case RC_REPLAY_CLIENTS:
        rc_core_client_msg(core, frames, n);
        break;
    case RC_REPLAY_WORKERS:
        rc_core_worker_msg(core, frames, n);
        break;
    default:
        rc_core_control_msg(core, frames, n);
        break;
    }
    for (int i = 0; i < n && i < RC_REPLAY_MAX_FRAMES; i++)
        zmq_msg_close(&frames[i]);
    return whole;
}

int rc_replay(const uint8_t *data, size_t len)
{
    if (s_sockets() != 0)
        return -1;
    rc_broker_config_t cfg;
    rc_broker_config_defaults(&cfg);
    /* Short liveness so that worker loss happens within a few clock steps;
     * small limits so that the full-queue, waiter and eviction paths run. */
    cfg.heartbeat_ms = 100;
    cfg.liveness = 3;
    cfg.retry_base_ms = 10;
    cfg.retry_max_ms = 200;
    cfg.max_pending = 32;
    cfg.max_waiters = 32;
    cfg.max_records = 64;
    cfg.cache_bytes = 4096;
    cfg.inline_limit = 64;
    cfg.preview_bytes = 16;
    cfg.max_page = 128;
    cfg.max_wait_ms = 5000;

    rc_core_t *core = calloc(1, sizeof *core);
    if (!core)
        return -1;
    if (rc_core_init(core, &cfg) != 0) {
        rc_core_fini(core);
        free(core);
        return -1;
    }
    int m = len > 0 && (data[0] & RC_REPLAY_NO_MANDATORY) ? 1 : 0;
    core->clients = s_sock[m][0];
    core->workers = s_sock[m][1];
    core->control = s_sock[m][2];
    s_predictable_refs(core);

    cursor_t c = {data, data + len};
    uint64_t fake = rc_mono_us();
    static const uint64_t steps[4] = {1000, 300000, 10000000, 3600000000ull};
    unsigned count = 0;
    const uint8_t *opb;
    while (take(&c, 1, &opb)) {
        uint8_t op = opb[0];
        if ((op & 3) == RC_REPLAY_CLOCK) {
            fake = s_now(fake) + steps[(op >> 2) & 3];
            rc_core_flush(core); /* as the loop does before it looks at timers */
            rc_core_timers(core, fake);
            continue;
        }
        bool more = s_message(core, &c, op);
        if (++count % RC_REPLAY_TICK_EVERY == 0) {
            fake = s_now(fake) + 50000;
            rc_core_flush(core);
            rc_core_timers(core, fake);
        }
        if (!more)
            break;
    }
    /* Far in the future: every waiter, deadline, retry and TTL fires (a
     * call runs a bounded batch, so repeat while some are due). */
    fake = s_now(fake) + 400ull * 24 * 3600 * 1000000;
    rc_core_flush(core);
    for (int i = 0; i < 64 && rc_core_timers(core, fake) <= fake; i++)
        ;
    if (getenv("RC_REPLAY_VERBOSE")) {
        const rc_counters_t *k = &core->c;
        fprintf(stderr,
                "replay: %zu bytes: submitted %llu completed %llu failed %llu cancelled %llu retries %llu "
                "lost %llu bad_requests %llu bad_worker_msgs %llu stale %llu exhausted %llu dropped %llu\n",
                len, (unsigned long long) k->submitted, (unsigned long long) k->completed,
                (unsigned long long) k->failed, (unsigned long long) k->cancelled,
                (unsigned long long) k->retries, (unsigned long long) k->workers_lost,
                (unsigned long long) k->bad_requests, (unsigned long long) k->bad_worker_msgs,
                (unsigned long long) k->stale_msgs, (unsigned long long) k->resource_exhausted,
                (unsigned long long) k->dropped_replies);
    }
    rc_core_fini(core);
    free(core);
    return 0;
}

static int s_put(rc_replay_buf_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int rc_replay_put_msg(rc_replay_buf_t *b, uint8_t op, const char *rid, const void *const *frames,
                      const size_t *lens, size_t nframes)
{
    size_t rl = rid ? strlen(rid) : 0;
    uint8_t hdr[2] = {op, (uint8_t) rl};
    uint8_t nf = (uint8_t) nframes;
    if (rl > 255 || nframes > 255 || s_put(b, hdr, 2) || s_put(b, rid, rl) || s_put(b, &nf, 1))
        return -1;
    for (size_t i = 0; i < nframes; i++) {
        if (lens[i] > 0xffff)
            return -1;
        uint8_t l[2] = {(uint8_t) lens[i], (uint8_t) (lens[i] >> 8)};
        if (s_put(b, l, 2) || s_put(b, frames[i], lens[i]))
            return -1;
    }
    return 0;
}

int rc_replay_put_clock(rc_replay_buf_t *b, uint8_t op)
{
    op = (uint8_t) ((op & ~3) | RC_REPLAY_CLOCK);
    return s_put(b, &op, 1);
}

void rc_replay_buf_free(rc_replay_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}
