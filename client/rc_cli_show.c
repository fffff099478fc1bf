/* rc_cli_show: a task, its times and a progress bar, for a person (see the
 * header). */
#include "rc_cli_show.h"
#include "rc_common.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

#define BAR_WIDTH 30

void rc_cli_show_duration(char *buf, size_t len, uint64_t us)
{
    uint64_t s = us / 1000000;
    if (us < 1000)
        snprintf(buf, len, "%" PRIu64 " us", us);
    else if (us < 1000000)
        snprintf(buf, len, "%" PRIu64 " ms", us / 1000);
    else if (s < 60)
        snprintf(buf, len, "%.1f s", (double) us / 1e6);
    else if (s < 3600)
        snprintf(buf, len, "%" PRIu64 " min %" PRIu64 " s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%" PRIu64 " h %" PRIu64 " min", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, len, "%" PRIu64 " d %" PRIu64 " h", s / 86400, s % 86400 / 3600);
}

void rc_cli_show_time(char *buf, size_t len, uint64_t us)
{
    time_t secs = (time_t) (us / 1000000);
    struct tm tm;
    char date[32] = "?", zone[16] = "";
    if (localtime_r(&secs, &tm)) {
        strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
        strftime(zone, sizeof zone, "%Z", &tm);
    }
    snprintf(buf, len, "%s.%03u %s", date, (unsigned) (us % 1000000 / 1000), zone);
}

/* One time line: "started   2026-… UTC  (2 ms after created)": the
 * duration between pre and post. */
static void s_time_line(FILE *out, const char *what, uint64_t at, const char *pre, uint64_t rel_us,
                        const char *post)
{
    char when[64], dur[32];
    rc_cli_show_time(when, sizeof when, at);
    rc_cli_show_duration(dur, sizeof dur, rel_us);
    fprintf(out, "%-9s %s  (%s%s%s)\n", what, when, pre, dur, post);
}

static uint64_t s_since(uint64_t from, uint64_t to)
{
    return to > from ? to - from : 0;
}

static void s_times(FILE *out, const refcache_task_view_t *t, uint64_t now_us)
{
    uint64_t c = t->created_at_us;
    if (!c)
        return;
    if (now_us >= c)
        s_time_line(out, "created", c, "", now_us - c, " ago");
    else
        s_time_line(out, "created", c, "", c - now_us, " ahead of this clock");
    if (t->started_at_us)
        s_time_line(out, "started", t->started_at_us, "", s_since(c, t->started_at_us), " after created");
    if (t->finished_at_us) {
        if (t->started_at_us)
            s_time_line(out, "finished", t->finished_at_us, "ran ",
                        s_since(t->started_at_us, t->finished_at_us), "");
        else
            s_time_line(out, "finished", t->finished_at_us, "", s_since(c, t->finished_at_us),
                        " after created");
    }
    if (t->stopped_at_us && t->finished_at_us)
        s_time_line(out, "stopped", t->stopped_at_us, "the worker stopped ",
                    s_since(t->finished_at_us, t->stopped_at_us), " after the end");
    if (t->expires_at_us) {
        if (t->expires_at_us > now_us)
            s_time_line(out, "expires", t->expires_at_us, "in ", t->expires_at_us - now_us, "");
        else
            s_time_line(out, "expires", t->expires_at_us, "", now_us - t->expires_at_us, " ago");
    }
}

void rc_cli_show_task(FILE *out, const refcache_task_view_t *t, unsigned flags, uint64_t now_us)
{
    bool submit = flags & RC_SHOW_SUBMIT;
    fprintf(out, "ref_id  %s  %s  progress %" PRIu64 "/%" PRIu64 "  attempt %" PRIu32 "%s%s\n", t->ref_id,
            rc_state_name(t->state), t->progress_done, t->progress_total, t->attempt,
            submit && t->cache_hit ? "  cache_hit" : "", submit && t->deduplicated ? "  deduplicated" : "");
    if (t->error_code || *t->error)
        fprintf(out, "error   %s%s%s\n", rc_code_name(t->error_code), *t->error ? ": " : "", t->error);
    if (flags & RC_SHOW_TIMES)
        s_times(out, t, now_us);
    if (t->state != REFCACHE_STATE_COMPLETE)
        return;
    if (flags & RC_SHOW_NO_PREVIEW) {
        fprintf(out, "result  %" PRIu64 " bytes (read them with: refcache fetch %s)\n", t->result_size,
                t->ref_id);
        return;
    }
    if (t->result_truncated)
        fprintf(out, "result  %" PRIu64 " bytes; first %zu below (read all with: refcache fetch %s)\n",
                t->result_size, t->result_len, t->ref_id);
    else
        fprintf(out, "result  %" PRIu64 " bytes\n", t->result_size);
    fwrite(t->result, 1, t->result_len, out);
    if (t->result_len && t->result[t->result_len - 1] != '\n')
        fputc('\n', out);
}

/* ------------------------------------------------------------ progress bar */

void rc_cli_bar_init(rc_cli_bar_t *bar, FILE *out, bool on)
{
    bar->out = out;
    bar->on = on;
    bar->shown = false;
}

static void s_bytes(char *buf, size_t len, uint64_t n)
{
    if (n < 1024)
        snprintf(buf, len, "%" PRIu64 " B", n);
    else if (n < 1024 * 1024)
        snprintf(buf, len, "%.1f KiB", (double) n / 1024);
    else if (n < (uint64_t) 1024 * 1024 * 1024)
        snprintf(buf, len, "%.1f MiB", (double) n / (1024 * 1024));
    else
        snprintf(buf, len, "%.2f GiB", (double) n / (1024.0 * 1024 * 1024));
}

void rc_cli_bar_draw(rc_cli_bar_t *bar, const char *label, uint64_t done, uint64_t total, bool bytes)
{
    if (!bar->on)
        return;
    char counts[64];
    if (bytes) {
        char a[24], b[24];
        s_bytes(a, sizeof a, done);
        s_bytes(b, sizeof b, total);
        snprintf(counts, sizeof counts, "%s / %s", a, b);
    } else {
        snprintf(counts, sizeof counts, "%" PRIu64 "/%" PRIu64, done, total);
    }
    char cells[BAR_WIDTH + 1];
    unsigned filled = 0;
    if (total) {
        uint64_t d = done < total ? done : total;
        filled = (unsigned) (d * BAR_WIDTH / total);
    }
    memset(cells, '#', filled);
    memset(cells + filled, '-', BAR_WIDTH - filled);
    cells[BAR_WIDTH] = '\0';
    if (total)
        fprintf(bar->out, "\r\033[K%s [%s] %3u%%  %s", label, cells,
                (unsigned) ((done < total ? done : total) * 100 / total), counts);
    else
        fprintf(bar->out, "\r\033[K%s [%s]  %s", label, cells, counts);
    fflush(bar->out);
    bar->shown = true;
}

void rc_cli_bar_clear(rc_cli_bar_t *bar)
{
    if (!bar->shown)
        return;
    fputs("\r\033[K", bar->out);
    fflush(bar->out);
    bar->shown = false;
}
