/* rc_cli_top: `refcache top`, a live view of a broker in the terminal (see
 * rc_cli_top.h). Plain ANSI escapes, no curses: the alternate screen, the
 * cursor hidden, one full redraw per refresh; the terminal's settings and
 * screen are put back however it ends (q, Ctrl-C, an error). Without a
 * terminal it prints one plain frame per refresh. */
#include "rc_cli_top.h"

#include <czmq.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "rc_common.h"

#define MAX_FNS 256

typedef struct {
    uint64_t t_us;
    refcache_stats_t s;
    struct {
        char name[129];
        uint64_t runs, run_us, dispatched, queue_us;
    } fn[MAX_FNS];
    size_t n_fn;
} sample_t;

typedef struct {
    bool tty;
    struct termios saved;
    bool raw;
    int rows, cols;
} screen_t;

/* ------------------------------------------------------------ the terminal */

static void screen_open(screen_t *sc)
{
    sc->tty = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
    if (!sc->tty)
        return;
    if (tcgetattr(STDIN_FILENO, &sc->saved) == 0) {
        struct termios raw = sc->saved;
        raw.c_lflag &= ~(tcflag_t) (ICANON | ECHO); /* keys one by one, unseen; Ctrl-C still a signal */
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        sc->raw = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    fputs("\033[?1049h\033[?25l", stdout); /* the alternate screen, the cursor hidden */
    fflush(stdout);
}

static void screen_close(screen_t *sc)
{
    if (!sc->tty)
        return;
    fputs("\033[?25h\033[?1049l", stdout);
    fflush(stdout);
    if (sc->raw)
        tcsetattr(STDIN_FILENO, TCSANOW, &sc->saved);
}

static void screen_size(screen_t *sc)
{
    struct winsize ws;
    sc->rows = 40;
    sc->cols = 120;
    if (sc->tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
        sc->rows = ws.ws_row;
        sc->cols = ws.ws_col;
    }
}

/* Waits up to ms for a key; true if it was q (or Q). */
static bool wait_key(screen_t *sc, int ms)
{
    if (!sc->tty) {
        usleep((useconds_t) ms * 1000);
        return false;
    }
    struct pollfd p = {STDIN_FILENO, POLLIN, 0};
    uint64_t until = rc_mono_us() + (uint64_t) ms * 1000;
    for (;;) {
        uint64_t now = rc_mono_us();
        if (now >= until || zsys_interrupted)
            return false;
        if (poll(&p, 1, (int) ((until - now) / 1000) + 1) > 0) {
            char c;
            if (read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q'))
                return true;
        }
    }
}

/* ------------------------------------------------------------ a frame */

static double per_s(uint64_t now, uint64_t then, uint64_t dt_us)
{
    return dt_us && now >= then ? (double) (now - then) * 1e6 / (double) dt_us : 0.0;
}

static const char *human_us(char *buf, size_t len, double us)
{
    if (us < 1000)
        snprintf(buf, len, "%.0f us", us);
    else if (us < 1e6)
        snprintf(buf, len, "%.1f ms", us / 1000);
    else
        snprintf(buf, len, "%.2f s", us / 1e6);
    return buf;
}

static const char *human_bytes(char *buf, size_t len, uint64_t n)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double) n;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
    return buf;
}

static void take(sample_t *x, const refcache_stats_t *s, const refcache_metrics_t *m)
{
    x->t_us = rc_mono_us();
    x->s = *s;
    x->n_fn = 0;
    for (size_t i = 0; m && i < m->function_count && x->n_fn < MAX_FNS; i++, x->n_fn++) {
        snprintf(x->fn[x->n_fn].name, sizeof x->fn[0].name, "%s", m->functions[i].function);
        x->fn[x->n_fn].runs = m->functions[i].run_time.count;
        x->fn[x->n_fn].run_us = m->functions[i].run_time.sum_us;
        x->fn[x->n_fn].dispatched = m->functions[i].queue_time.count;
        x->fn[x->n_fn].queue_us = m->functions[i].queue_time.sum_us;
    }
}

typedef struct {
    const char *name;
    uint64_t queued;
    double runs_s, mean_run, mean_wait;
} fn_row_t;

static int fn_busier(const void *a, const void *b)
{
    const fn_row_t *x = a, *y = b;
    double kx = x->runs_s + (double) x->queued, ky = y->runs_s + (double) y->queued;
    return kx < ky ? 1 : kx > ky ? -1 : strcmp(x->name, y->name);
}

static int worker_busier(const void *a, const void *b)
{
    const refcache_worker_info_t *x = a, *y = b;
    return x->tasks_held < y->tasks_held   ? 1
           : x->tasks_held > y->tasks_held ? -1
                                           : strcmp(x->worker_id, y->worker_id);
}

static void frame(rc_cli_t *cli, screen_t *sc, const sample_t *now, const sample_t *prev,
                  const refcache_metrics_t *m, refcache_worker_list_t *w, int workers_rc)
{
    const refcache_stats_t *s = &now->s;
    uint64_t dt = prev ? now->t_us - prev->t_us : 0;
    int lines = 0;
    char a[32], b[32];
    if (sc->tty)
        fputs("\033[H\033[2J", stdout);
    printf("refcache top - %s - broker %s, up %s - q quits\n", cli->args->endpoint, s->version,
           human_us(a, sizeof a, (double) s->uptime_ms * 1000));
    printf("tasks   %" PRIu64 " pending  %" PRIu64 " processing  %" PRIu64 " complete  %" PRIu64
           " failed  %" PRIu64 " cancelled   queue %" PRIu64 "\n",
           s->tasks_pending, s->tasks_processing, s->tasks_complete, s->tasks_failed, s->tasks_cancelled,
           s->queue_depth);
    printf("workers %" PRIu64 " busy / %" PRIu64 " ready   cache %s in %" PRIu64
           " entries   memory %s   waiters %" PRIu64 "\n",
           s->workers_busy, s->workers, human_bytes(a, sizeof a, s->cache_bytes), s->cache_entries,
           human_bytes(b, sizeof b, s->rss_bytes), s->waiters);
    if (prev)
        printf("rates/s %.1f submitted  %.1f completed  %.1f failed  %.1f cancelled  %.1f requests\n",
               per_s(s->submitted_total, prev->s.submitted_total, dt),
               per_s(s->completed_total, prev->s.completed_total, dt),
               per_s(s->failed_total, prev->s.failed_total, dt),
               per_s(s->cancelled_total, prev->s.cancelled_total, dt),
               per_s(s->requests_total, prev->s.requests_total, dt));
    else
        printf("rates/s (after the next refresh)\n");
    lines = 5;
    /* The busiest functions: runs per second, then what waits. */
    fn_row_t rows[MAX_FNS];
    size_t n = 0;
    for (size_t i = 0; m && i < m->function_count && n < MAX_FNS; i++) {
        const refcache_function_metrics_t *f = &m->functions[i];
        fn_row_t *r = &rows[n++];
        r->name = f->function;
        r->queued = f->queued;
        r->runs_s = r->mean_run = r->mean_wait = 0;
        for (size_t k = 0; prev && k < prev->n_fn; k++) {
            if (strcmp(prev->fn[k].name, f->function) != 0)
                continue;
            uint64_t runs = f->run_time.count - prev->fn[k].runs,
                     disp = f->queue_time.count - prev->fn[k].dispatched;
            r->runs_s = per_s(f->run_time.count, prev->fn[k].runs, dt);
            r->mean_run = runs ? (double) (f->run_time.sum_us - prev->fn[k].run_us) / (double) runs : 0;
            r->mean_wait = disp ? (double) (f->queue_time.sum_us - prev->fn[k].queue_us) / (double) disp : 0;
        }
    }
    qsort(rows, n, sizeof rows[0], fn_busier);
    printf("\n%-24s %10s %10s %12s %12s\n", "FUNCTION", "QUEUED", "RUNS/S", "MEAN RUN", "MEAN WAIT");
    lines += 2;
    int room = (sc->rows - lines) / 2 - 2;
    for (size_t i = 0; i < n && (int) i < (room > 3 ? room : 3); i++, lines++)
        printf("%-24.24s %10" PRIu64 " %10.1f %12s %12s\n", rows[i].name, rows[i].queued, rows[i].runs_s,
               human_us(a, sizeof a, rows[i].mean_run), human_us(b, sizeof b, rows[i].mean_wait));
    printf("\n%-28s %-16s %8s %11s %9s %10s\n", "WORKER", "HOST", "PID", "HELD", "ENDED", "HEARD");
    lines += 2;
    if (workers_rc == REFCACHE_CODE_PERMISSION_DENIED) {
        printf("(the workers need an admin key)\n");
    } else if (w) {
        qsort(w->workers, w->count, sizeof w->workers[0], worker_busier);
        uint64_t wall = rc_wall_us();
        for (size_t i = 0; i < w->count && lines < sc->rows - 1; i++, lines++) {
            const refcache_worker_info_t *x = &w->workers[i];
            char held[24];
            snprintf(held, sizeof held, "%" PRIu32 "/%" PRIu32, x->tasks_held, x->credit);
            printf("%-28.28s %-16.16s %8" PRIu32 " %11s %9" PRIu64 " %10s\n", x->worker_id,
                   *x->host ? x->host : "-", x->pid, held, x->tasks_ended,
                   human_us(a, sizeof a,
                            wall > x->last_heard_at_us ? (double) (wall - x->last_heard_at_us) : 0));
        }
    }
    if (!sc->tty)
        putchar('\n');
    fflush(stdout);
}

int rc_cli_top_run(rc_cli_t *cli)
{
    const rc_cli_args_t *a = cli->args;
    int interval = a->interval_ms ? (int) a->interval_ms : 1000;
    static sample_t samples[2];
    sample_t *now = &samples[0], *prev = NULL;
    screen_t sc = {0};
    /* A first Stats before the screen changes: a broker that is not there
     * is said on a normal terminal. */
    refcache_stats_t s;
    int rc = refcache_client_stats(cli->client, &s, a->timeout_ms);
    if (rc)
        return rc_cli_report(cli, rc);
    screen_open(&sc);
    for (uint64_t i = 0; !a->iterations || i < a->iterations; i++) {
        refcache_metrics_t *m = NULL;
        refcache_worker_list_t *w = NULL;
        if (i && (rc = refcache_client_stats(cli->client, &s, a->timeout_ms)) != 0)
            break;
        if ((rc = refcache_client_metrics(cli->client, &m, a->timeout_ms)) != 0)
            break;
        int wrc = refcache_client_workers(cli->client, &w, a->timeout_ms);
        take(now, &s, m);
        screen_size(&sc);
        frame(cli, &sc, now, prev, m, w, wrc);
        refcache_metrics_destroy(&m);
        refcache_worker_list_destroy(&w);
        prev = now;
        now = now == &samples[0] ? &samples[1] : &samples[0];
        if ((a->iterations && i + 1 >= a->iterations) || wait_key(&sc, interval) || zsys_interrupted)
            break;
    }
    screen_close(&sc);
    if (rc == REFCACHE_EINTR || zsys_interrupted)
        rc = 0; /* Ctrl-C is the way out */
    return rc ? rc_cli_report(cli, rc) : RC_EXIT_OK;
}
