/* rc_bench: what the parts of refcache-bench share — the options (opts_t),
 * a connection (conn_t, one thread with its own client and histograms), the
 * run (bench_t) and its merged outcome, the error classes, the in-flight
 * map — and the functions each part offers the others. The parts:
 * bench_options.c (the command line), bench_run.c (connections, the closed
 * and open loops of throughput and latency, pipelining), bench_scenarios.c
 * (cancel, storm, mixed), bench_report.c (sampling, JSON and text output,
 * --report files), rc_bench_cleanup (deleting what the run created) and
 * bench.c (main). Internal to the bench. */
#ifndef RC_BENCH_H
#define RC_BENCH_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rc_bench_cleanup.h"
#include "rc_hist.h"
#include "rc_json.h"
#include "refcache.h"

typedef enum { SC_THROUGHPUT, SC_LATENCY, SC_CANCEL, SC_STORM, SC_MIXED, SC_COUNT } scenario_t;

typedef struct {
    scenario_t scenario;
    const char *endpoint;
    int connections;
    int depth;
    uint64_t requests;
    double duration_s; /* > 0: run for this long instead of a request count */
    double rate;       /* latency: open loop at this many requests/s in total */
    const char *function;
    size_t payload_size;
    uint32_t task_ms; /* cancel/storm: length of the sleep tasks */
    unsigned batch;   /* refcache_client_options_t.max_batch (0: the library's default) */
    bool keep;        /* leave the created tasks in the broker */
    bool json;
    const char *report_dir;
} opts_t;

/* Error classes: the broker's codes 1..16, the library's errors, and what
 * the harness itself checks. */
enum {
    ERR_LIB0 = 17,                 /* + (-REFCACHE_E*) - 1 */
    ERR_INCOMPLETE = ERR_LIB0 + 9, /* OK, but the task was not COMPLETE */
    ERR_BAD_RESULT,                /* echo returned other bytes */
    ERR_NOT_CANCELLED,             /* cancel answered cancelled=false */
    ERR_NO_START,                  /* cancel: the task did not start in time */
    ERR_STOP_TIMEOUT,              /* cancel: stopped_at_us never appeared */
    ERR_COUNT
};

/* Requests in flight on one connection, by id: open addressing with linear
 * probing and backward-shift deletion, grown when half full. Ids are
 * consecutive, so they are scattered by a multiplicative hash: placed at
 * id & mask they formed one cluster as long as the depth, which every
 * deletion walked to its end. */
typedef struct {
    uint64_t id; /* 0: free */
    uint64_t t_ns;
    uint64_t aux; /* what the scenario needs back: a sequence number, a slot */
    int op;
} infl_ent_t;

typedef struct {
    infl_ent_t *e;
    size_t mask;
    size_t n;
    unsigned shift; /* 64 - log2(capacity) */
} infl_t;

/* mixed's operations. */
enum { OP_ECHO, OP_SLEEP, OP_STATUS, OP_WAIT, OP_FETCH, OP_CANCEL, OP_COUNT };

typedef struct bench bench_t;

typedef struct {
    bench_t *b;
    int index;
    refcache_client_t *client;
    pthread_t thread;
    uint64_t quota; /* requests for this connection; 0 with a duration */
    uint64_t rng;
    pthread_mutex_t mu;
    rc_hist_t *ival; /* this second's latencies, under mu, for the series */
    rc_hist_t *lat;  /* every latency (ns), this thread only */
    rc_hist_t *stop; /* cancel: stop latency (ns) */
    rc_hist_t *op[OP_COUNT];
    uint64_t op_count[OP_COUNT];
    _Atomic uint64_t done;
    uint64_t errors[ERR_COUNT];
    uint64_t cancel_lost; /* mixed: cancels that found the task already done */
    rc_bench_refs_t refs; /* every task this connection created, to delete at the end */
} conn_t;

typedef struct {
    double t_s;
    double rate;
    double p50_us;
    double p99_us;
} sample_t;

struct bench {
    opts_t o;
    conn_t *conns;
    uint64_t nonce;
    uint64_t t_start_ns;
    uint64_t deadline_ns; /* duration mode: stop sending after this */
    _Atomic int running;  /* connection threads still running */
    _Atomic uint64_t t_end_ns;
    sample_t *samples;
    size_t nsamples, samples_cap;
    /* storm */
    double cancel_all_s, drain_s;
    uint64_t storm_cancelled, storm_not_cancelled, started_after_cancel, occupiers;
};

/* The run's outcome, merged from the connections. */
typedef struct {
    rc_hist_t *lat, *stop, *ops[OP_COUNT];
    uint64_t errors[ERR_COUNT], done, op_count[OP_COUNT], cancel_lost, nerrors;
    double elapsed, rps;
    refcache_stats_t before, after, cleaned; /* the broker's, before, after and after the cleanup */
    bool after_ok, cleaned_ok;
    uint64_t created; /* tasks the run created */
    rc_bench_cleanup_t clean;
} rc_bench_totals_t;

/* Sends count requests built by send(i) with at most depth outstanding and
 * hands each reply to on_reply(i); used by storm for its bulk phases. */
typedef int (*rc_bench_send_fn)(conn_t *c, uint64_t i, uint64_t *id, void *ctx);

typedef void (*rc_bench_reply_fn)(conn_t *c, uint64_t i, const refcache_reply_t *r, uint64_t lat_ns,
                                  void *ctx);

/* bench_options.c: the command line */

extern const char *rc_bench_scenario_names[SC_COUNT];
int rc_bench_parse_args(int argc, char **argv, opts_t *out);

/* bench_run.c: connections and the loops */

uint64_t rc_bench_mono_ns(void);
void rc_bench_sleep_ns(uint64_t ns);
uint64_t rc_bench_rand(uint64_t *state);
const char *rc_bench_err_name(int i);
int rc_bench_err_class(int rc);
int rc_bench_infl_init(infl_t *m, size_t want);
void rc_bench_infl_free(infl_t *m);
int rc_bench_infl_put(infl_t *m, uint64_t id, uint64_t t_ns, int op, uint64_t aux);
bool rc_bench_infl_take(infl_t *m, uint64_t id, infl_ent_t *out);
extern volatile sig_atomic_t rc_bench_interrupted;
bool rc_bench_should_stop(conn_t *c, uint64_t sent);
void rc_bench_record(conn_t *c, rc_hist_t *h, uint64_t ns);
void rc_bench_count_done(conn_t *c);
void rc_bench_error(conn_t *c, int cls);
bool rc_bench_give_up(conn_t *c, uint64_t last_reply_ns, uint64_t now_ns, uint64_t *got, uint64_t sent);
int rc_bench_recv(conn_t *c, refcache_reply_t *r, int timeout_ms);
int rc_bench_await(conn_t *c, uint64_t id, refcache_reply_t *r, int timeout_ms);
void rc_bench_stamp(uint8_t *payload, uint64_t nonce, int conn, uint64_t seq);
int rc_bench_stats(refcache_client_t *cl, refcache_stats_t *st);
int rc_bench_pipeline(conn_t *c, uint64_t count, rc_bench_send_fn send, rc_bench_reply_fn on_reply,
                      void *ctx);
void *rc_bench_conn_main(void *arg);

/* bench_scenarios.c: cancel, storm and mixed */

extern const char *rc_bench_op_names[OP_COUNT];
void rc_bench_run_cancel(conn_t *c);
void rc_bench_run_storm(conn_t *c);
void rc_bench_run_mixed(conn_t *c);

/* bench_report.c: sampling and output */

void rc_bench_sample(bench_t *b, rc_hist_t *tmp, uint64_t *prev_done, uint64_t *prev_t, bool print);
int rc_bench_write_result(bench_t *b, const rc_bench_totals_t *t);

#endif
