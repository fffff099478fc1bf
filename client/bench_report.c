/* bench_report: the per-second samples, the run's outcome as one JSON
 * object (rc_json) or as text, and the --report directory (result.json,
 * timeseries.csv, plot.png with gnuplot). */
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
#include "rc_buf.h"
#include "rc_common.h"

static double s_us(uint64_t ns)
{
    return (double) ns / 1000.0;
}

static void s_json_hist(rc_json_t *j, const char *key, const rc_hist_t *h)
{
    rc_json_begin(j, key);
    rc_json_uint(j, "count", rc_hist_count(h));
    rc_json_double(j, "p50", s_us(rc_hist_percentile(h, 50)));
    rc_json_double(j, "p90", s_us(rc_hist_percentile(h, 90)));
    rc_json_double(j, "p99", s_us(rc_hist_percentile(h, 99)));
    rc_json_double(j, "p999", s_us(rc_hist_percentile(h, 99.9)));
    rc_json_double(j, "max", s_us(rc_hist_max(h)));
    rc_json_double(j, "mean", s_us((uint64_t) rc_hist_mean(h)));
    rc_json_end(j);
}

static void s_json_stats(rc_json_t *j, const char *key, const refcache_stats_t *st, bool ok)
{
    rc_json_begin(j, key);
    rc_json_uint(j, "ok", ok);
    if (ok) {
        rc_json_uint(j, "tasks",
                     st->tasks_pending + st->tasks_processing + st->tasks_complete + st->tasks_failed +
                         st->tasks_cancelled);
        rc_json_begin(j, "tasks_by_state");
        rc_json_uint(j, "pending", st->tasks_pending);
        rc_json_uint(j, "processing", st->tasks_processing);
        rc_json_uint(j, "complete", st->tasks_complete);
        rc_json_uint(j, "failed", st->tasks_failed);
        rc_json_uint(j, "cancelled", st->tasks_cancelled);
        rc_json_end(j);
        rc_json_uint(j, "queue_depth", st->queue_depth);
        rc_json_uint(j, "workers", st->workers);
        rc_json_uint(j, "rss_bytes", st->rss_bytes);
        rc_json_uint(j, "cache_bytes", st->cache_bytes);
        rc_json_uint(j, "cache_entries", st->cache_entries);
        rc_json_uint(j, "dropped_replies_total", st->dropped_replies_total);
    }
    rc_json_end(j);
}

void rc_bench_sample(bench_t *b, rc_hist_t *tmp, uint64_t *prev_done, uint64_t *prev_t, bool print)
{
    uint64_t now = rc_bench_mono_ns(), done = 0;
    rc_hist_reset(tmp);
    for (int i = 0; i < b->o.connections; i++) {
        conn_t *c = &b->conns[i];
        done += atomic_load_explicit(&c->done, memory_order_relaxed);
        pthread_mutex_lock(&c->mu);
        rc_hist_merge(tmp, c->ival);
        rc_hist_reset(c->ival);
        pthread_mutex_unlock(&c->mu);
    }
    double dt = (double) (now - *prev_t) / 1e9;
    if (dt <= 0)
        return;
    sample_t s = {(double) (now - b->t_start_ns) / 1e9, (double) (done - *prev_done) / dt,
                  s_us(rc_hist_percentile(tmp, 50)), s_us(rc_hist_percentile(tmp, 99))};
    *prev_done = done;
    *prev_t = now;
    if (rc_buf_grow_array(&b->samples, &b->samples_cap, b->nsamples + 1, sizeof *b->samples) != 0)
        return;
    b->samples[b->nsamples++] = s;
    if (print)
        fprintf(stderr, "\r%6.1fs  done %-10" PRIu64 " rate %10.0f/s  p99 %10.1f us   ", s.t_s, done, s.rate,
                s.p99_us);
}

static bool s_on_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        return false;
    char buf[4096];
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t) (colon - path) : strlen(path);
        if (n > 0 && n < sizeof buf - strlen(prog) - 2) {
            snprintf(buf, sizeof buf, "%.*s/%s", (int) n, path, prog);
            if (access(buf, X_OK) == 0)
                return true;
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return false;
}

static int s_write_file(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "refcache-bench: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

/* The plot's title: the scenario and every parameter that shaped the run,
 * so that a plot read on its own says what it measured (quotes dropped:
 * gnuplot reads the title between single quotes). */
static void s_plot_title(const opts_t *o, char *buf, size_t size)
{
    char amount[64], rate[48] = "", work[160] = "", batch[32];
    if (o->duration_s > 0)
        snprintf(amount, sizeof amount, "%.0f s", o->duration_s);
    else
        snprintf(amount, sizeof amount, "%" PRIu64 " requests", o->requests);
    if (o->rate > 0)
        snprintf(rate, sizeof rate, ", open loop %.0f/s", o->rate);
    if (o->scenario == SC_CANCEL || o->scenario == SC_STORM)
        snprintf(work, sizeof work, "sleep tasks %" PRIu32 " ms, ", o->task_ms);
    else if (o->scenario != SC_MIXED) /* mixed picks its own functions */
        snprintf(work, sizeof work, "function %s, payload %zu B, ", o->function, o->payload_size);
    if (o->batch)
        snprintf(batch, sizeof batch, "%u", o->batch);
    else
        snprintf(batch, sizeof batch, "default");
    snprintf(buf, size, "refcache-bench %s (refcache %s): %s,\\n%d connection%s x depth %d, %s%s, %sbatch %s",
             rc_bench_scenario_names[o->scenario], RC_VERSION, o->endpoint, o->connections,
             o->connections == 1 ? "" : "s", o->depth, amount, rate, work, batch);
    for (char *c = buf; *c; c++)
        if (*c == '\'' || *c == '"')
            *c = ' ';
}

static int s_report(bench_t *b, const char *json)
{
    const char *dir = b->o.report_dir;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "refcache-bench: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (s_write_file(dir, "result.json", json))
        return -1;
    /* The series goes straight to its file, line by line. */
    char path[4096];
    snprintf(path, sizeof path, "%s/timeseries.csv", dir);
    FILE *csv = fopen(path, "w");
    bool ok = csv && fprintf(csv, "t_s,rate_rps,p50_us,p99_us\n") > 0;
    for (size_t i = 0; ok && i < b->nsamples; i++)
        ok = fprintf(csv, "%.3f,%.1f,%.1f,%.1f\n", b->samples[i].t_s, b->samples[i].rate,
                     b->samples[i].p50_us, b->samples[i].p99_us) > 0;
    if (csv && fclose(csv) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "refcache-bench: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (b->nsamples < 2) {
        fprintf(stderr, "refcache-bench: the run was too short for a plot; %s/plot.png skipped\n", dir);
        return 0;
    }
    char title[512];
    s_plot_title(&b->o, title, sizeof title);
    char script[2048];
    snprintf(script, sizeof script,
             "set terminal pngcairo size 900,640 font ',10'\n"
             "set output 'plot.png'\n"
             "set datafile separator ','\n"
             "set key autotitle columnhead\n"
             "set multiplot layout 2,1 title \"%s\"\n"
             "set grid\n"
             "set ylabel 'requests/s'\n"
             "set yrange [0:*]\n"
             "plot 'timeseries.csv' using 1:2 with linespoints title 'rate'\n"
             "set xlabel 'time (s)'\n"
             "set ylabel 'latency (us)'\n"
             "set logscale y\n"
             "set yrange [*:*]\n"
             "plot 'timeseries.csv' using 1:3 with linespoints title 'p50', "
             "'' using 1:4 with linespoints title 'p99'\n"
             "unset multiplot\n",
             title);
    if (s_write_file(dir, "plot.gp", script))
        return -1;
    if (!s_on_path("gnuplot")) {
        fprintf(stderr,
                "refcache-bench: gnuplot is not on PATH; %s/plot.png skipped (gnuplot plot.gp there)\n", dir);
        return 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) != 0)
            _exit(127);
        execlp("gnuplot", "gnuplot", "plot.gp", (char *) NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "refcache-bench: gnuplot failed; %s/plot.png not written\n", dir);
        return -1;
    }
    return 0;
}

static void s_print_hist(const char *label, const rc_hist_t *h)
{
    printf("  %-16s n=%-9" PRIu64 " p50 %9.1f  p90 %9.1f  p99 %9.1f  p999 %9.1f  max %9.1f us\n", label,
           rc_hist_count(h), s_us(rc_hist_percentile(h, 50)), s_us(rc_hist_percentile(h, 90)),
           s_us(rc_hist_percentile(h, 99)), s_us(rc_hist_percentile(h, 99.9)), s_us(rc_hist_max(h)));
}

static void s_print_stats(const char *label, const refcache_stats_t *st, bool ok)
{
    if (!ok) {
        printf("  %-16s (Stats failed)\n", label);
        return;
    }
    printf("  %-16s tasks %" PRIu64 " (pending %" PRIu64 ", processing %" PRIu64 ", complete %" PRIu64
           ", failed %" PRIu64 ", cancelled %" PRIu64 "), rss %.1f MiB, cache %.1f MiB\n",
           label,
           st->tasks_pending + st->tasks_processing + st->tasks_complete + st->tasks_failed +
               st->tasks_cancelled,
           st->tasks_pending, st->tasks_processing, st->tasks_complete, st->tasks_failed, st->tasks_cancelled,
           (double) st->rss_bytes / 1048576.0, (double) st->cache_bytes / 1048576.0);
}

/* Writes the run's outcome: one JSON object (--json) or the human summary
 * on stdout, and the --report files. 0, or 1 if a report file failed. */
int rc_bench_write_result(bench_t *b, const rc_bench_totals_t *t)
{
    const opts_t *o = &b->o;
    rc_json_t *j = rc_json_new();
    rc_json_str(j, "scenario", rc_bench_scenario_names[o->scenario]);
    rc_json_str(j, "version", RC_VERSION);
    rc_json_str(j, "endpoint", o->endpoint);
    rc_json_str(j, "function", o->scenario <= SC_LATENCY ? o->function : "");
    rc_json_uint(j, "connections", (uint64_t) o->connections);
    rc_json_uint(j, "depth", (uint64_t) o->depth);
    rc_json_uint(j, "payload_size", o->payload_size);
    rc_json_uint(j, "batch", o->batch ? o->batch : REFCACHE_BATCH_DEFAULT);
    rc_json_double(j, "rate", o->rate);
    rc_json_double(j, "duration_s", t->elapsed);
    rc_json_uint(j, "requests", t->done);
    rc_json_uint(j, "requests_wanted", o->requests);
    rc_json_begin(j, "errors");
    for (int k = 0; k < ERR_COUNT; k++)
        if (t->errors[k])
            rc_json_uint(j, rc_bench_err_name(k), t->errors[k]);
    rc_json_end(j);
    rc_json_double(j, "throughput_rps", t->rps);
    s_json_hist(j, "latency_us", t->lat);
    if (o->scenario == SC_CANCEL) {
        s_json_hist(j, "cancel_reply_us", t->lat);
        s_json_hist(j, "stop_latency_us", t->stop);
        rc_json_str(j, "stop_latency_clock",
                    "broker stopped_at_us minus this process's CLOCK_REALTIME at the "
                    "cancel's send; valid with the broker on this machine");
        rc_json_uint(j, "task_ms", o->task_ms);
    }
    if (o->scenario == SC_STORM) {
        rc_json_double(j, "cancel_all_s", b->cancel_all_s);
        rc_json_double(j, "drain_s", b->drain_s);
        rc_json_uint(j, "started_after_cancel", b->started_after_cancel);
        rc_json_uint(j, "cancelled", b->storm_cancelled);
        rc_json_uint(j, "not_cancelled", b->storm_not_cancelled);
        rc_json_uint(j, "occupiers", b->occupiers);
        rc_json_uint(j, "task_ms", o->task_ms);
    }
    if (o->scenario == SC_MIXED) {
        rc_json_begin(j, "ops");
        for (int k = 0; k < OP_COUNT; k++) {
            rc_json_begin(j, rc_bench_op_names[k]);
            rc_json_uint(j, "count", t->op_count[k]);
            s_json_hist(j, "latency_us", t->ops[k]);
            rc_json_end(j);
        }
        rc_json_end(j);
        rc_json_uint(j, "cancels_after_finish", t->cancel_lost);
    }
    rc_json_begin(j, "cleanup");
    rc_json_uint(j, "created", t->created);
    rc_json_bool(j, "kept", o->keep);
    rc_json_uint(j, "deleted", t->clean.deleted);
    rc_json_uint(j, "gone", t->clean.gone);
    rc_json_uint(j, "left", t->clean.left);
    rc_json_end(j);
    s_json_stats(j, "broker_before", &t->before, true);
    s_json_stats(j, "broker_after", &t->after, t->after_ok);
    s_json_stats(j, "broker_after_cleanup", &t->cleaned, t->cleaned_ok);
    const char *json = j ? rc_json_finish(j) : NULL;

    if (json && o->json) {
        printf("%s\n", json);
    } else {
        printf("refcache-bench %s against %s: %" PRIu64 " requests in %.2f s, %.0f/s, %" PRIu64 " errors\n",
               rc_bench_scenario_names[o->scenario], o->endpoint, t->done, t->elapsed, t->rps, t->nerrors);
        for (int k = 0; k < ERR_COUNT; k++)
            if (t->errors[k])
                printf("  error %-18s %" PRIu64 "\n", rc_bench_err_name(k), t->errors[k]);
        s_print_hist(o->scenario == SC_CANCEL || o->scenario == SC_STORM ? "cancel reply" : "latency",
                     t->lat);
        if (o->scenario == SC_CANCEL)
            s_print_hist("stop latency", t->stop);
        if (o->scenario == SC_STORM)
            printf("  cancel_all %.3f s, drain %.3f s, cancelled %" PRIu64 ", started after cancel %" PRIu64
                   "\n",
                   b->cancel_all_s, b->drain_s, b->storm_cancelled, b->started_after_cancel);
        if (o->scenario == SC_MIXED)
            for (int k = 0; k < OP_COUNT; k++)
                s_print_hist(rc_bench_op_names[k], t->ops[k]);
        s_print_stats("broker before", &t->before, true);
        s_print_stats("broker after", &t->after, t->after_ok);
        if (o->keep)
            printf("  cleanup          %" PRIu64 " tasks created, kept (--keep)\n", t->created);
        else
            printf("  cleanup          %" PRIu64 " tasks created: %" PRIu64 " deleted, %" PRIu64
                   " already gone, %" PRIu64 " left\n",
                   t->created, t->clean.deleted, t->clean.gone, t->clean.left);
        s_print_stats("after cleanup", &t->cleaned, t->cleaned_ok);
    }
    int rc = 0;
    if (o->report_dir && json && s_report(b, json) != 0)
        rc = 1;

    rc_json_destroy(&j);
    return rc;
}
