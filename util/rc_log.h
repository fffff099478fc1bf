/* rc_log: the log lines of the broker and the worker — one shared module so
 * that both write the same shape. Every line has a UTC timestamp, a level,
 * the program and a topic, then the message:
 *
 *   2026-12-06T03:20:21.123456Z INFO  refcache-broker worker: w-3f2a ready: 5 function(s), credit 256
 *
 * or, with the JSON format, one object per line:
 *
 *   {"ts":"2026-12-06T03:20:21.123456Z","level":"info","program":"refcache-broker","topic":"worker","msg":"…"}
 *
 * Lines go to stderr, each in one write(2), so lines of several threads never
 * interleave. The level and format are set once at start-up (before any
 * thread logs) and only read after. Logging is for events that are rare by
 * nature — peers joining and leaving, refused keys, limits hit — never for
 * the per-message path. */
#ifndef RC_LOG_H
#define RC_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum { RC_LOG_DEBUG, RC_LOG_INFO, RC_LOG_WARN, RC_LOG_ERROR, RC_LOG_OFF } rc_log_level_t;

/* Sets the program name shown on every line, the lowest level written and
 * the format (json: one object per line). */
void rc_log_setup(const char *program, rc_log_level_t level, bool json);

/* The level of a name (debug, info, warn, error, off), or -1. */
int rc_log_level_parse(const char *name);

/* Whether a line of this level would be written. */
bool rc_log_enabled(rc_log_level_t level);

/* Writes one line (the message is cut at 1 KiB). */
void rc_log(rc_log_level_t level, const char *topic, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rc_logv(rc_log_level_t level, const char *topic, const char *fmt, va_list ap);

/* One kind of trouble, said at most once a minute: the repeats in between
 * are counted and told on its next line ("(and N more since the last such
 * line)"). Zero-initialise one per kind; it belongs to one thread.
 * said_us = 0 lets the next one through at once. */
typedef struct {
    uint64_t said_us, quiet;
} rc_log_every_t;

/* Writes the line unless e's kind was written less than a minute ago (then
 * counts it). */
void rc_log_every(rc_log_every_t *e, rc_log_level_t level, const char *topic, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
