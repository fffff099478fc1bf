/* rc_cli_show: how the refcache CLI shows a task to a person — its state
 * line, its times as dates and durations one can read, its result or a
 * preview — and the progress bar it draws on a terminal while it waits or
 * fetches. Machine output (--json) is rc_json's, with the raw microseconds. */
#ifndef RC_CLI_SHOW_H
#define RC_CLI_SHOW_H

#include "refcache.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* What rc_cli_show_task prints besides the state line. */
enum {
    RC_SHOW_SUBMIT = 1,    /* a Submit's reply: cache_hit / deduplicated */
    RC_SHOW_TIMES = 2,     /* created/started/finished/stopped/expires lines */
    RC_SHOW_NO_PREVIEW = 4 /* the result's size, not its bytes */
};

/* Prints the task for a person. now_us: the wall clock (µs since the epoch)
 * that "ago" and "in" are counted from. */
void rc_cli_show_task(FILE *out, const refcache_task_view_t *t, unsigned flags, uint64_t now_us);

/* A duration for a person: "850 us", "12 ms", "2.5 s", "3 min 20 s",
 * "2 h 5 min", "3 d 4 h". */
void rc_cli_show_duration(char *buf, size_t len, uint64_t us);

/* A wall-clock time (µs since the epoch) in local time:
 * "2026-12-06 03:10:01.123 UTC". */
void rc_cli_show_time(char *buf, size_t len, uint64_t us);

/* A progress bar on a terminal, redrawn in place on one line of stderr. */
typedef struct {
    FILE *out;
    bool on;    /* drawing at all */
    bool shown; /* a bar is on the line now */
} rc_cli_bar_t;

/* on: the caller's decision (a terminal, no --json, no --quiet). */
void rc_cli_bar_init(rc_cli_bar_t *bar, FILE *out, bool on);

/* Draws "label [#####-----]  45%  4500/10000" (bytes: "1.2 MiB / 3.0 MiB");
 * total 0: no percentage. */
void rc_cli_bar_draw(rc_cli_bar_t *bar, const char *label, uint64_t done, uint64_t total, bool bytes);

/* Erases the bar, leaving the line empty for what follows. */
void rc_cli_bar_clear(rc_cli_bar_t *bar);

#endif
