/* refcache-bench: the load-testing harness. Any user can point it at a broker:
 *
 *   throughput  closed loop, C connections x D outstanding Submits of `echo`
 *               with a distinct payload each (so none is a cache hit);
 *   latency     sequential Submit-to-COMPLETE round trips, or with --rate an
 *               open loop whose latencies count from the intended send time;
 *   cancel      sleep tasks cancelled at a random point while they run: the
 *               Cancel reply time and the time until the worker stopped;
 *   storm       N tasks queued behind busy workers, all cancelled pipelined;
 *   mixed       a mix of submits, status polls, waits, fetches and cancels.
 *
 * Each connection is one thread with its own rc_client (the pipelined API)
 * and its own histograms, merged at the end. The main thread samples the
 * per-second series (progress line, --report CSV).
 *
 * This file is main: it sets up the connections, samples the per-second
 * series while they run, merges them, cleans up and reports (the parts are
 * listed in rc_bench.h). */
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

static void s_on_signal(int sig)
{
    (void) sig;
    rc_bench_interrupted = 1;
}

int main(int argc, char **argv)
{
    bench_t b;
    memset(&b, 0, sizeof b);
    int prc = rc_bench_parse_args(argc, argv, &b.o);
    if (prc)
        return prc > 0 ? 0 : 2;
    const opts_t *o = &b.o;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rc_random_bytes(&b.nonce, sizeof b.nonce);
    char err[256];
    refcache_client_options_t copts;
    refcache_client_options_init(&copts);
    copts.endpoint = o->endpoint;
    copts.max_batch = o->batch;
    refcache_client_t *ctl = refcache_client_new(&copts, err, sizeof err);
    if (!ctl) {
        fprintf(stderr, "refcache-bench: %s\n", err);
        return 3;
    }
    rc_bench_totals_t t = {0};
    int src = rc_bench_stats(ctl, &t.before);
    if (src) {
        fprintf(stderr, "refcache-bench: no answer from the broker at %s: %s\n", o->endpoint,
                refcache_strerror(src));
        refcache_client_destroy(&ctl);
        return 3;
    }

    b.conns = calloc((size_t) o->connections, sizeof *b.conns);
    if (!b.conns) {
        refcache_client_destroy(&ctl);
        return 1;
    }
    int status = 0;
    for (int i = 0; i < o->connections; i++) {
        conn_t *c = &b.conns[i];
        c->b = &b;
        c->index = i;
        c->rng = b.nonce ^ (UINT64_C(0x9E3779B97F4A7C15) * (uint64_t) (i + 1));
        if (!c->rng)
            c->rng = 1;
        pthread_mutex_init(&c->mu, NULL);
        c->ival = rc_hist_new();
        c->lat = rc_hist_new();
        c->stop = rc_hist_new();
        bool ok = c->ival && c->lat && c->stop;
        for (int k = 0; k < OP_COUNT; k++)
            ok = (c->op[k] = rc_hist_new()) != NULL && ok;
        if (o->requests)
            c->quota = o->requests / (uint64_t) o->connections +
                       ((uint64_t) i < o->requests % (uint64_t) o->connections ? 1 : 0);
        c->client = ok ? refcache_client_new(&copts, err, sizeof err) : NULL;
        refcache_stats_t warm;
        /* Connecting is asynchronous: a first round trip makes it so before the clock starts. */
        if (!c->client || rc_bench_stats(c->client, &warm) != 0) {
            fprintf(stderr, "refcache-bench: connection %d failed: %s\n", i, c->client ? "no answer" : err);
            status = 3;
        }
    }
    if (status == 0) {
        b.t_start_ns = rc_bench_mono_ns();
        b.deadline_ns = b.t_start_ns + (uint64_t) (o->duration_s * 1e9);
        atomic_store(&b.running, o->connections);
        int started = 0;
        for (int i = 0; i < o->connections; i++) {
            if (pthread_create(&b.conns[i].thread, NULL, rc_bench_conn_main, &b.conns[i]) != 0) {
                atomic_fetch_sub(&b.running, 1);
                status = 1;
                break;
            }
            started++;
        }
        bool tty = isatty(STDERR_FILENO);
        rc_hist_t *tmp = rc_hist_new();
        uint64_t prev_done = 0, prev_t = b.t_start_ns, next_sample = b.t_start_ns + 1000000000u;
        while (atomic_load(&b.running) > 0) {
            uint64_t now = rc_bench_mono_ns();
            if (now >= next_sample && tmp) {
                rc_bench_sample(&b, tmp, &prev_done, &prev_t, tty);
                next_sample += 1000000000u;
            }
            rc_bench_sleep_ns(20000000);
        }
        if (tmp && (b.nsamples == 0 || rc_bench_mono_ns() - prev_t > 100000000u))
            rc_bench_sample(&b, tmp, &prev_done, &prev_t, tty);
        if (tty)
            fprintf(stderr, "\n");
        rc_hist_destroy(&tmp);
        for (int i = 0; i < started; i++)
            pthread_join(b.conns[i].thread, NULL);
    }
    t.after_ok = rc_bench_stats(ctl, &t.after) == 0;

    /* Delete what the run t.created (each connection's own tasks, through
     * its own client: the namespace and, with CURVE, the owner match). */
    for (int i = 0; i < o->connections; i++) {
        conn_t *c = &b.conns[i];
        t.created += c->refs.n + c->refs.lost;
        if (!o->keep && c->client)
            rc_bench_cleanup(c->client, &c->refs, 1000, 10000, &t.clean);
    }
    t.cleaned_ok = rc_bench_stats(ctl, &t.cleaned) == 0;

    /* Merge the connections. */
    t.lat = rc_hist_new();
    t.stop = rc_hist_new();
    for (int k = 0; k < OP_COUNT; k++)
        t.ops[k] = rc_hist_new();
    for (int i = 0; i < o->connections; i++) {
        conn_t *c = &b.conns[i];
        if (c->lat) {
            rc_hist_merge(t.lat, c->lat);
            rc_hist_merge(t.stop, c->stop);
            for (int k = 0; k < OP_COUNT; k++)
                rc_hist_merge(t.ops[k], c->op[k]);
        }
        t.done += atomic_load(&c->done);
        for (int k = 0; k < ERR_COUNT; k++)
            t.errors[k] += c->errors[k];
        for (int k = 0; k < OP_COUNT; k++)
            t.op_count[k] += c->op_count[k];
        t.cancel_lost += c->cancel_lost;
    }
    for (int k = 0; k < ERR_COUNT; k++)
        t.nerrors += t.errors[k];
    uint64_t t_end = atomic_load(&b.t_end_ns);
    t.elapsed = t_end > b.t_start_ns ? (double) (t_end - b.t_start_ns) / 1e9 : 0;
    t.rps = t.elapsed > 0 ? (double) t.done / t.elapsed : 0;

    if (rc_bench_write_result(&b, &t) != 0 && status == 0)
        status = 1;
    if (status == 0 && (t.nerrors || b.started_after_cancel || rc_bench_interrupted))
        status = 1;
    free(b.samples);
    rc_hist_destroy(&t.lat);
    rc_hist_destroy(&t.stop);
    for (int k = 0; k < OP_COUNT; k++)
        rc_hist_destroy(&t.ops[k]);
    for (int i = 0; i < o->connections; i++) {
        conn_t *c = &b.conns[i];
        refcache_client_destroy(&c->client);
        rc_bench_refs_free(&c->refs);
        rc_hist_destroy(&c->ival);
        rc_hist_destroy(&c->lat);
        rc_hist_destroy(&c->stop);
        for (int k = 0; k < OP_COUNT; k++)
            rc_hist_destroy(&c->op[k]);
        pthread_mutex_destroy(&c->mu);
    }
    free(b.conns);
    refcache_client_destroy(&ctl);
    return status;
}
