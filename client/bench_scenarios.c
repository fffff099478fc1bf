/* bench_scenarios: the cancel scenario (stop latency of running tasks),
 * storm (cancel a queue pipelined) and mixed (submits, polls, waits,
 * fetches and cancels together). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "rc_bench.h"
#include "rc_common.h"

const char *rc_bench_op_names[OP_COUNT] = {"submit_echo", "submit_sleep", "status",
                                           "wait",        "fetch",        "cancel"};

/* Polls Status every half millisecond until done(reply) or timeout; returns
 * the last code (0 with *r filled) or an error. */
typedef bool (*s_poll_done_fn)(const refcache_reply_t *r);

static int s_poll_status(conn_t *c, const char *ref, refcache_reply_t *r, s_poll_done_fn done, int timeout_ms)
{
    uint64_t deadline = rc_bench_mono_ns() + (uint64_t) timeout_ms * 1000000u;
    for (;;) {
        uint64_t id;
        int rc = refcache_client_send_status(c->client, ref, &id);
        if (rc == 0)
            rc = rc_bench_await(c, id, r, 5000);
        if (rc)
            return rc;
        if (done(r))
            return 0;
        if (rc_bench_mono_ns() >= deadline)
            return REFCACHE_ETIMEOUT;
        rc_bench_sleep_ns(500000);
    }
}

static bool s_is_started(const refcache_reply_t *r)
{
    return (r->task.state == REFCACHE_STATE_PROCESSING && r->task.started_at_us) ||
           rc_state_is_terminal(r->task.state);
}

static bool s_is_stopped(const refcache_reply_t *r)
{
    return r->task.stopped_at_us != 0;
}

/* cancel: one sleep task at a time per connection, cancelled at a random
 * point after it started. Stop latency compares the broker's stopped_at_us
 * with this process's wall clock at the cancel's send: both CLOCK_REALTIME,
 * valid only with the broker on this machine. */
void rc_bench_run_cancel(conn_t *c)
{
    const opts_t *o = &c->b->o;
    char ms[16], ref[REFCACHE_REF_MAX + 1];
    snprintf(ms, sizeof ms, "%" PRIu32, o->task_ms);
    refcache_param_t params[] = {{"ms", ms}, {"step_ms", "10"}};
    refcache_submit_options_t so;
    refcache_submit_options_init(&so);
    so.params = params;
    so.param_count = 2;
    so.no_cache = true;
    refcache_reply_t r;
    uint64_t max_wait_ms = o->task_ms / 2 < 100 ? o->task_ms / 2 : 100;
    for (uint64_t n = 0; !rc_bench_should_stop(c, n); n++) {
        uint64_t id;
        int rc = refcache_client_send_submit(c->client, "sleep", &so, &id);
        if (rc == 0)
            rc = rc_bench_await(c, id, &r, 10000);
        if (rc) {
            rc_bench_error(c, rc_bench_err_class(rc));
            rc_bench_count_done(c);
            continue;
        }
        snprintf(ref, sizeof ref, "%s", r.task.ref_id);
        rc = s_poll_status(c, ref, &r, s_is_started, 30000);
        if (rc || rc_state_is_terminal(r.task.state)) {
            rc_bench_error(c, rc ? rc_bench_err_class(rc) : ERR_NO_START);
            rc_bench_count_done(c);
            continue;
        }
        if (max_wait_ms)
            rc_bench_sleep_ns(rc_bench_rand(&c->rng) % (max_wait_ms * 1000000u));
        uint64_t t_wall = rc_wall_us(), t0 = rc_bench_mono_ns();
        rc = refcache_client_send_cancel(c->client, ref, &id);
        if (rc == 0)
            rc = rc_bench_await(c, id, &r, 10000);
        uint64_t reply_ns = rc_bench_mono_ns() - t0;
        if (rc) {
            rc_bench_error(c, rc_bench_err_class(rc));
            rc_bench_count_done(c);
            continue;
        }
        rc_bench_record(c, c->lat, reply_ns);
        if (!r.cancelled) {
            rc_bench_error(c, ERR_NOT_CANCELLED);
            rc_bench_count_done(c);
            continue;
        }
        rc = s_poll_status(c, ref, &r, s_is_stopped, 5000);
        if (rc) {
            rc_bench_error(c, rc == REFCACHE_ETIMEOUT ? ERR_STOP_TIMEOUT : rc_bench_err_class(rc));
        } else {
            uint64_t stopped = r.task.stopped_at_us;
            rc_hist_record(c->stop, stopped > t_wall ? (stopped - t_wall) * 1000u : 0);
        }
        rc_bench_count_done(c);
    }
}

typedef struct {
    char (*refs)[REFCACHE_REF_MAX + 1];
    bool *cancelled;
    refcache_submit_options_t so;
    uint64_t first_send_ns, last_reply_ns;
} storm_t;

static int s_storm_send_submit(conn_t *c, uint64_t i, uint64_t *id, void *ctx)
{
    storm_t *s = ctx;
    return refcache_client_send_submit(c->client, "sleep", &s->so, id);
}

static void s_storm_on_submit(conn_t *c, uint64_t i, const refcache_reply_t *r, uint64_t lat_ns, void *ctx)
{
    storm_t *s = ctx;
    if (r->code)
        rc_bench_error(c, rc_bench_err_class(r->code));
    snprintf(s->refs[i], sizeof s->refs[i], "%s", r->code ? "" : r->task.ref_id);
}

static int s_storm_send_cancel(conn_t *c, uint64_t i, uint64_t *id, void *ctx)
{
    storm_t *s = ctx;
    if (i == 0)
        s->first_send_ns = rc_bench_mono_ns();
    return refcache_client_send_cancel(c->client, s->refs[i], id);
}

static void s_storm_on_cancel(conn_t *c, uint64_t i, const refcache_reply_t *r, uint64_t lat_ns, void *ctx)
{
    storm_t *s = ctx;
    s->last_reply_ns = rc_bench_mono_ns();
    if (r->code) {
        rc_bench_error(c, rc_bench_err_class(r->code));
    } else {
        rc_bench_record(c, c->lat, lat_ns);
        s->cancelled[i] = r->cancelled;
        if (r->cancelled)
            c->b->storm_cancelled++;
        else
            c->b->storm_not_cancelled++;
    }
    rc_bench_count_done(c);
}

static int s_storm_send_status(conn_t *c, uint64_t i, uint64_t *id, void *ctx)
{
    storm_t *s = ctx;
    return refcache_client_send_status(c->client, s->refs[i], id);
}

static void s_storm_on_status(conn_t *c, uint64_t i, const refcache_reply_t *r, uint64_t lat_ns, void *ctx)
{
    storm_t *s = ctx;
    if (r->code)
        rc_bench_error(c, rc_bench_err_class(r->code));
    else if (s->cancelled[i] && r->task.ever_started)
        c->b->started_after_cancel++;
}

/* storm: occupy every worker slot with long sleeps, queue N short sleeps
 * behind them, cancel the N pipelined, wait for the broker's queue to empty,
 * then check that no task answered cancelled=true ever started. */
void rc_bench_run_storm(conn_t *c)
{
    bench_t *b = c->b;
    const opts_t *o = &b->o;
    uint64_t n = c->quota;
    storm_t s = {0};
    s.refs = calloc(n, sizeof *s.refs);
    s.cancelled = calloc(n, sizeof *s.cancelled);
    char(*occ)[REFCACHE_REF_MAX + 1] = calloc(4096, sizeof *occ);
    if (!s.refs || !s.cancelled || !occ) {
        rc_bench_error(c, ERR_LIB0 + 4);
        goto done;
    }
    /* Occupy: submit long sleeps one by one until one stays queued, which
     * means every worker's credit is used; that last one is cancelled. */
    refcache_param_t occ_params[] = {{"ms", "600000"}, {"step_ms", "10"}};
    refcache_submit_options_t oso;
    refcache_submit_options_init(&oso);
    oso.params = occ_params;
    oso.param_count = 2;
    oso.no_cache = true;
    refcache_reply_t r;
    refcache_stats_t st;
    int rc;
    for (;;) {
        uint64_t id;
        if (b->occupiers == 4096) {
            rc_bench_error(c, ERR_INCOMPLETE);
            goto cleanup;
        }
        rc = refcache_client_send_submit(c->client, "sleep", &oso, &id);
        if (rc == 0)
            rc = rc_bench_await(c, id, &r, 10000);
        if (rc) {
            rc_bench_error(c, rc_bench_err_class(rc));
            goto cleanup;
        }
        snprintf(occ[b->occupiers++], sizeof occ[0], "%s", r.task.ref_id);
        if ((rc = rc_bench_stats(c->client, &st)) != 0) {
            rc_bench_error(c, rc_bench_err_class(rc));
            goto cleanup;
        }
        if (st.queue_depth > 0)
            break;
    }
    char ms[16];
    snprintf(ms, sizeof ms, "%" PRIu32, o->task_ms);
    refcache_param_t params[] = {{"ms", ms}, {"step_ms", "10"}};
    refcache_submit_options_init(&s.so);
    s.so.params = params;
    s.so.param_count = 2;
    s.so.no_cache = true;
    if ((rc = rc_bench_pipeline(c, n, s_storm_send_submit, s_storm_on_submit, &s)) != 0) {
        rc_bench_error(c, rc_bench_err_class(rc));
        goto cleanup;
    }
    if ((rc = rc_bench_pipeline(c, n, s_storm_send_cancel, s_storm_on_cancel, &s)) != 0) {
        rc_bench_error(c, rc_bench_err_class(rc));
        goto cleanup;
    }
    b->cancel_all_s = (double) (s.last_reply_ns - s.first_send_ns) / 1e9;
    /* Drain: the queue holds only the last occupier now (cancelled below), so
     * idle means no PENDING task beyond it. */
    uint64_t t_drain = rc_bench_mono_ns();
    for (;;) {
        if ((rc = rc_bench_stats(c->client, &st)) != 0) {
            rc_bench_error(c, rc_bench_err_class(rc));
            break;
        }
        if (st.tasks_pending <= 1 && st.queue_depth <= 1) {
            b->drain_s = (double) (rc_bench_mono_ns() - t_drain) / 1e9;
            break;
        }
        if (rc_bench_mono_ns() - t_drain > 60000000000ull) {
            rc_bench_error(c, ERR_INCOMPLETE);
            b->drain_s = -1;
            break;
        }
        rc_bench_sleep_ns(200000);
    }
    if ((rc = rc_bench_pipeline(c, n, s_storm_send_status, s_storm_on_status, &s)) != 0)
        rc_bench_error(c, rc_bench_err_class(rc));
cleanup:
    for (uint64_t i = 0; i < b->occupiers; i++) {
        uint64_t id;
        if (refcache_client_send_cancel(c->client, occ[i], &id) == 0)
            rc_bench_await(c, id, &r, 5000);
    }
done:
    free(occ);
    free(s.refs);
    free(s.cancelled);
}

/* mixed: a pipelined loop (depth outstanding) choosing each request at
 * random: short echo submits of various sizes, short sleeps (at most two
 * live per connection, so the workers are not buried), status polls and
 * waits on those sleeps, cancels of them, and page fetches of a large
 * `primes` result computed once per connection. */
#define MIXED_LIVE 2

typedef struct {
    char ref[REFCACHE_REF_MAX + 1]; /* "" when free */
} live_t;

static int s_pick_live(conn_t *c, live_t *live)
{
    int n = 0, idx[MIXED_LIVE];
    for (int i = 0; i < MIXED_LIVE; i++)
        if (live[i].ref[0])
            idx[n++] = i;
    return n ? idx[rc_bench_rand(&c->rng) % (uint64_t) n] : -1;
}

void rc_bench_run_mixed(conn_t *c)
{
    const opts_t *o = &c->b->o;
    refcache_reply_t r;
    /* The large result: primes below ~300k, about 180 KB, read with Fetch. */
    char nbuf[24], primes_ref[REFCACHE_REF_MAX + 1] = "";
    uint64_t primes_size = 0;
    snprintf(nbuf, sizeof nbuf, "%d", 300000 + c->index);
    refcache_param_t pparams[] = {{"n", nbuf}};
    refcache_submit_options_t pso;
    refcache_submit_options_init(&pso);
    pso.params = pparams;
    pso.param_count = 1;
    pso.async_timeout_ms = 30000;
    uint64_t id;
    int rc = refcache_client_send_submit(c->client, "primes", &pso, &id);
    if (rc == 0)
        rc = rc_bench_await(c, id, &r, 40000);
    if (rc == 0 && r.task.state == REFCACHE_STATE_COMPLETE) {
        snprintf(primes_ref, sizeof primes_ref, "%s", r.task.ref_id);
        primes_size = r.task.result_size;
    } else {
        rc_bench_error(c, rc ? rc_bench_err_class(rc) : ERR_INCOMPLETE);
    }

    uint8_t payload[4096];
    memset(payload, 'm', sizeof payload);
    char ms[16];
    refcache_param_t sparams[] = {{"ms", ms}, {"step_ms", "5"}};
    live_t live[MIXED_LIVE];
    memset(live, 0, sizeof live);
    int pending_sleeps = 0;
    infl_t m;
    if (rc_bench_infl_init(&m, (size_t) o->depth)) {
        rc_bench_error(c, ERR_LIB0 + 4);
        return;
    }
    uint64_t sent = 0, got = 0, seq = 0;
    bool stopping = false;
    uint64_t last_reply = rc_bench_mono_ns();
    while (!(stopping && got == sent)) {
        while (!stopping && sent - got < (uint64_t) o->depth) {
            if (rc_bench_should_stop(c, sent)) {
                stopping = true;
                break;
            }
            /* Weights out of 100: echo 35, sleep 10, status 20, wait 10, fetch 15, cancel 10. */
            uint64_t dice = rc_bench_rand(&c->rng) % 100;
            int op = dice < 35   ? OP_ECHO
                     : dice < 45 ? OP_SLEEP
                     : dice < 65 ? OP_STATUS
                     : dice < 75 ? OP_WAIT
                     : dice < 90 ? OP_FETCH
                                 : OP_CANCEL;
            int slot = -1;
            if (op == OP_STATUS || op == OP_WAIT || op == OP_CANCEL) {
                slot = s_pick_live(c, live);
                if (slot < 0)
                    op = OP_SLEEP;
            }
            if (op == OP_SLEEP) {
                int free_slot = -1;
                for (int i = 0; i < MIXED_LIVE; i++)
                    if (!live[i].ref[0])
                        free_slot = i;
                if (free_slot < 0 || pending_sleeps)
                    op = OP_ECHO;
            }
            if (op == OP_FETCH && !primes_ref[0])
                op = OP_ECHO;
            switch (op) {
            case OP_ECHO: {
                refcache_submit_options_t so;
                refcache_submit_options_init(&so);
                so.payload = payload;
                so.payload_len = 16 + (size_t) (rc_bench_rand(&c->rng) % (sizeof payload - 16));
                so.async_timeout_ms = 30000;
                rc_bench_stamp(payload, c->b->nonce, c->index, ++seq);
                rc = refcache_client_send_submit(c->client, "echo", &so, &id);
                break;
            }
            case OP_SLEEP: {
                refcache_submit_options_t so;
                refcache_submit_options_init(&so);
                snprintf(ms, sizeof ms, "%u", (unsigned) (5 + rc_bench_rand(&c->rng) % 46));
                so.params = sparams;
                so.param_count = 2;
                so.no_cache = true;
                rc = refcache_client_send_submit(c->client, "sleep", &so, &id);
                if (rc == 0)
                    pending_sleeps++;
                break;
            }
            case OP_STATUS:
                rc = refcache_client_send_status(c->client, live[slot].ref, &id);
                break;
            case OP_WAIT:
                rc = refcache_client_send_wait(c->client, live[slot].ref, 100, &id);
                break;
            case OP_FETCH: {
                uint32_t page = 65536;
                uint64_t off = primes_size > page ? rc_bench_rand(&c->rng) % (primes_size - page) : 0;
                rc = refcache_client_send_fetch(c->client, primes_ref, off, page, &id);
                break;
            }
            default:
                rc = refcache_client_send_cancel(c->client, live[slot].ref, &id);
                live[slot].ref[0] = 0; /* a cancelled task is not polled again */
                break;
            }
            if (rc) {
                rc_bench_error(c, rc_bench_err_class(rc));
                rc_bench_count_done(c);
                sent++, got++;
                continue;
            }
            rc_bench_infl_put(&m, id, rc_bench_mono_ns(), op, (uint64_t) (slot + 1));
            sent++;
        }
        if (stopping && got == sent)
            break;
        rc = rc_bench_recv(c, &r, 1000);
        if (rc == REFCACHE_ETIMEOUT || rc == REFCACHE_EINTR) {
            if (rc_bench_give_up(c, last_reply, rc_bench_mono_ns(), &got, sent))
                stopping = true;
            continue;
        }
        if (rc) {
            rc_bench_error(c, rc_bench_err_class(rc));
            continue;
        }
        uint64_t now = rc_bench_mono_ns();
        last_reply = now;
        infl_ent_t e;
        if (!rc_bench_infl_take(&m, r.id, &e))
            continue;
        got++;
        rc_bench_count_done(c);
        c->op_count[e.op]++;
        if (e.op == OP_SLEEP)
            pending_sleeps--;
        if (r.code) {
            rc_bench_error(c, rc_bench_err_class(r.code));
            continue;
        }
        uint64_t lat = now - e.t_ns;
        rc_bench_record(c, c->lat, lat);
        rc_hist_record(c->op[e.op], lat);
        if (e.op == OP_ECHO && r.task.state != REFCACHE_STATE_COMPLETE)
            rc_bench_error(c, ERR_INCOMPLETE);
        if (e.op == OP_SLEEP) {
            for (int i = 0; i < MIXED_LIVE; i++)
                if (!live[i].ref[0]) {
                    snprintf(live[i].ref, sizeof live[i].ref, "%s", r.task.ref_id);
                    break;
                }
        }
        if ((e.op == OP_STATUS || e.op == OP_WAIT) && rc_state_is_terminal(r.task.state)) {
            int slot = (int) e.aux - 1;
            if (slot >= 0 && strcmp(live[slot].ref, r.task.ref_id) == 0)
                live[slot].ref[0] = 0;
        }
        if (e.op == OP_CANCEL && !r.cancelled)
            c->cancel_lost++;
    }
    /* Leave nothing running behind. */
    for (int i = 0; i < MIXED_LIVE; i++)
        if (live[i].ref[0] && refcache_client_send_cancel(c->client, live[i].ref, &id) == 0)
            rc_bench_await(c, id, &r, 5000);
    rc_bench_infl_free(&m);
}
