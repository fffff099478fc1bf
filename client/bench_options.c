/* bench_options: refcache-bench's command line, from one rc_opts table
 * (flags, REFCACHE_ENDPOINT, --help), and the scenario defaults. */
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
#include "rc_opts.h"

const char *rc_bench_scenario_names[SC_COUNT] = {"throughput", "latency", "cancel", "storm", "mixed"};

static opts_t s_opts;

static bool s_help, s_version;

static rc_opt_t s_table[] = {
    RC_OPT_STR_("endpoint", 'e', s_opts.endpoint, "EP",
                "broker clients endpoint (default tcp://127.0.0.1:5570)"),
    RC_OPT_UINT_("connections", 'c', s_opts.connections, 1, 256, "N",
                 "connections, one thread each (throughput/mixed 2, others 1)"),
    RC_OPT_UINT_("depth", 'd', s_opts.depth, 1, 1000000, "N",
                 "outstanding requests per connection (throughput 128,\nmixed 8, storm 1000, latency 1)"),
    RC_OPT_UINT_("requests", 'n', s_opts.requests, 1, UINT64_C(1) << 40, "N",
                 "requests (tasks for cancel/storm) in total\n(throughput 100000, latency 10000, cancel 100, "
                 "storm 10000)"),
    RC_OPT_DOUBLE_("duration", 't', s_opts.duration_s, "S", "run for S seconds instead (mixed: 10)"),
    RC_OPT_DOUBLE_("rate", 'r', s_opts.rate, "R", "latency: open loop at R requests/s"),
    RC_OPT_STR_("function", 'f', s_opts.function, "NAME", "function for throughput/latency (echo)"),
    RC_OPT_UINT_("payload-size", 'p', s_opts.payload_size, 16, 16 << 20, "B",
                 "payload bytes, at least 16 (32)"),
    RC_OPT_UINT_("task-ms", 0, s_opts.task_ms, 1, 3600 * 1000, "MS",
                 "cancel/storm: length of the sleep tasks (cancel 2000, storm 50)"),
    RC_OPT_UINT_("batch", 'b', s_opts.batch, 1, 1024, "N",
                 "requests sent together in one frame at most (the client\nlibrary's default, 64); 1: each "
                 "request alone"),
    RC_OPT_FLAG_("keep", 0, s_opts.keep,
                 "leave the tasks the run created in the broker (by default\nthey are deleted at the end)"),
    RC_OPT_FLAG_("json", 0, s_opts.json, "print one JSON object on stdout"),
    RC_OPT_STR_("report", 0, s_opts.report_dir, "DIR",
                "write DIR/result.json, DIR/timeseries.csv and, with gnuplot,\nDIR/plot.png"),
    RC_OPT_FLAG_("help", 'h', s_help, "this help"),
    RC_OPT_FLAG_("version", 'V', s_version, "print the version"),
};

static int s_scenario_arg(void *ctx, const char *arg, unsigned *scope, char *err, size_t errlen)
{
    opts_t *o = ctx;
    if (o->scenario != SC_COUNT) {
        snprintf(err, errlen, "give exactly one scenario: throughput, latency, cancel, storm or mixed");
        return -1;
    }
    for (int i = 0; i < SC_COUNT; i++)
        if (strcmp(arg, rc_bench_scenario_names[i]) == 0)
            o->scenario = (scenario_t) i;
    if (o->scenario == SC_COUNT) {
        snprintf(err, errlen, "unknown scenario '%s'", arg);
        return -1;
    }
    return 0;
}

static rc_opts_spec_t s_spec = {.program = "refcache-bench",
                                .opts = s_table,
                                .count = sizeof s_table / sizeof s_table[0],
                                .operand = s_scenario_arg,
                                .ctx = &s_opts};

static void s_usage(FILE *out)
{
    fprintf(out, "usage: refcache-bench [options] SCENARIO\n"
                 "\n"
                 "Load-tests a refcache broker. SCENARIO is one of:\n"
                 "  throughput  closed loop: C connections x D outstanding echo Submits, each with a\n"
                 "              distinct payload (never a cache hit); counts Submit-to-COMPLETE\n"
                 "  latency     sequential Submit-to-COMPLETE round trips; with --rate R an open loop\n"
                 "              at R requests/s, latency measured from the intended send time\n"
                 "  cancel      sleep tasks cancelled at a random point while running: Cancel reply\n"
                 "              time and stop latency (TaskInfo.stopped_at_us - cancel send time)\n"
                 "  storm       N sleep tasks queued behind busy workers, all cancelled pipelined\n"
                 "  mixed       submits of various lengths, status polls, waits, fetches, cancels\n"
                 "\n"
                 "options ([the environment variable]):\n");
    rc_opts_help(&s_spec, 0, out);
}

/* Returns 0 to run, 1 when --help/--version was handled, -1 on bad usage. */
int rc_bench_parse_args(int argc, char **argv, opts_t *out)
{
    opts_t *o = &s_opts; /* the table's targets */
    memset(o, 0, sizeof *o);
    o->endpoint = "tcp://127.0.0.1:5570";
    o->function = "echo";
    o->payload_size = 32;
    o->scenario = SC_COUNT;
    s_table[0].env = true; /* REFCACHE_ENDPOINT, as the CLI reads it */
    char err[512];
    int rc = rc_opts_parse(&s_spec, argc, argv, err, sizeof err);
    rc_opts_free(&s_spec);
    if (rc) {
        fprintf(stderr, "refcache-bench: %s (try --help)\n", err);
        return -1;
    }
    if (s_help || s_version) {
        if (s_help)
            s_usage(stdout);
        else
            printf("refcache-bench %s\n", RC_VERSION);
        return 1;
    }
    if (o->scenario == SC_COUNT) {
        fprintf(stderr, "refcache-bench: give exactly one scenario: throughput, latency, cancel, storm or "
                        "mixed (try --help)\n");
        return -1;
    }
    if (o->rate > 0 && o->scenario != SC_LATENCY) {
        fprintf(stderr, "refcache-bench: --rate applies to the latency scenario only\n");
        return -1;
    }
    if (o->duration_s > 0 && o->scenario == SC_STORM) {
        fprintf(stderr, "refcache-bench: storm runs a number of tasks (--requests), not a duration\n");
        return -1;
    }
    /* Defaults per scenario. */
    static const int def_conn[SC_COUNT] = {2, 1, 1, 1, 2};
    static const int def_depth[SC_COUNT] = {128, 1, 1, 1000, 8};
    static const uint64_t def_req[SC_COUNT] = {100000, 10000, 100, 10000, 0};
    if (!o->connections)
        o->connections = def_conn[o->scenario];
    if (o->scenario == SC_STORM)
        o->connections = 1; /* one connection queues and cancels everything */
    if (!o->depth)
        o->depth = def_depth[o->scenario];
    if (o->scenario == SC_LATENCY && o->rate == 0)
        o->depth = 1;
    if (!o->requests && o->duration_s == 0) {
        if (o->scenario == SC_MIXED)
            o->duration_s = 10;
        else
            o->requests = def_req[o->scenario];
    }
    if (o->duration_s > 0)
        o->requests = 0;
    if (!o->task_ms)
        o->task_ms = o->scenario == SC_CANCEL ? 2000 : 50;
    *out = *o;
    return 0;
}
