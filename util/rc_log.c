/* rc_log: timestamped, levelled log lines in text or JSON (see rc_log.h). */
#include "rc_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "refcache";
static rc_log_level_t log_level = RC_LOG_INFO;
static bool log_json;

static const char *const names[] = {"debug", "info", "warn", "error", "off"};
static const char *const upper[] = {"DEBUG", "INFO ", "WARN ", "ERROR", "OFF  "};

void rc_log_setup(const char *program, rc_log_level_t level, bool json)
{
    if (program)
        log_program = program;
    log_level = level;
    log_json = json;
}

int rc_log_level_parse(const char *name)
{
    for (int i = 0; i <= RC_LOG_OFF; i++)
        if (name && strcmp(name, names[i]) == 0)
            return i;
    if (name && strcmp(name, "warning") == 0)
        return RC_LOG_WARN;
    return -1;
}

bool rc_log_enabled(rc_log_level_t level)
{
    return level >= log_level && level < RC_LOG_OFF;
}

/* Appends s to out (at *n, room cap) as a JSON string's contents. */
static void json_escape(char *out, size_t *n, size_t cap, const char *s)
{
    for (; *s && *n + 7 < cap; s++) {
        unsigned char c = (unsigned char) *s;
        if (c == '"' || c == '\\') {
            out[(*n)++] = '\\';
            out[(*n)++] = (char) c;
        } else if (c < 0x20) {
            *n += (size_t) snprintf(out + *n, cap - *n, "\\u%04x", c);
        } else {
            out[(*n)++] = (char) c;
        }
    }
}

void rc_log(rc_log_level_t level, const char *topic, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rc_logv(level, topic, fmt, ap);
    va_end(ap);
}

void rc_log_every(rc_log_every_t *e, rc_log_level_t level, const char *topic, const char *fmt, ...)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
    if (e->said_us && now - e->said_us < 60 * 1000000ull) {
        e->quiet++;
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (e->quiet)
        rc_log(level, topic, "%s (and %llu more since the last such line)", msg,
               (unsigned long long) e->quiet);
    else
        rc_log(level, topic, "%s", msg);
    e->said_us = now ? now : 1;
    e->quiet = 0;
}

void rc_logv(rc_log_level_t level, const char *topic, const char *fmt, va_list ap)
{
    if (!rc_log_enabled(level))
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t t = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + t, sizeof ts - t, ".%06ldZ", (long) tv.tv_usec);

    char line[2048];
    size_t n;
    if (log_json) {
        n = (size_t) snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"program\":\"", ts,
                              names[level]);
        json_escape(line, &n, sizeof line, log_program);
        n += (size_t) snprintf(line + n, sizeof line - n, "\",\"topic\":\"");
        json_escape(line, &n, sizeof line, topic ? topic : "");
        n += (size_t) snprintf(line + n, sizeof line - n, "\",\"msg\":\"");
        json_escape(line, &n, sizeof line, msg);
        n += (size_t) snprintf(line + n, sizeof line - n, "\"}\n");
    } else {
        n = (size_t) snprintf(line, sizeof line, "%s %s %s %s: %s\n", ts, upper[level], log_program,
                              topic ? topic : "-", msg);
    }
    if (n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    /* One write per line: lines of several threads do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void) w;
}
