/* watch_count: a watcher on every event that only counts them — what one
 * watcher costs the broker, without the cost of printing JSON (the CLI's
 * `refcache events`) in the same two cores. It watches ENDPOINT until
 * SIGTERM/SIGINT or SECONDS pass (default 60), acknowledging as fast as
 * the client library decodes, then prints to stdout
 *
 *   events N lost M
 *
 * (events received, and events the broker dropped for it and reported in
 * LOST events, or in the END of a watcher dropped as too slow). "watching" goes to stderr once the watch is
 * accepted. docs/performance.md runs it beside refcache-bench throughput. Usage: watch_count ENDPOINT
 * [SECONDS] */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "rc_common.h"
#include "refcache.h"

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: watch_count ENDPOINT [SECONDS]\n");
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 60.0;
    refcache_client_options_t o;
    refcache_client_options_init(&o);
    o.endpoint = argv[1];
    char err[256];
    refcache_client_t *c = refcache_client_new(&o, err, sizeof err);
    if (!c) {
        fprintf(stderr, "watch_count: %s\n", err);
        return 1;
    }
    refcache_watch_options_t w = {0};
    int rc = refcache_client_watch(c, &w, 5000);
    if (rc != 0) {
        fprintf(stderr, "watch_count: watch refused (%d): %s\n", rc, refcache_client_message(c));
        refcache_client_destroy(&c);
        return 1;
    }
    fprintf(stderr, "watching\n");
    signal(SIGTERM, s_on_signal);
    signal(SIGINT, s_on_signal);
    uint64_t end = rc_mono_us() + (uint64_t) (seconds * 1e6), events = 0, lost = 0;
    bool ended = false;
    while (!s_stop && !ended && rc_mono_us() < end) {
        refcache_event_t e;
        if (refcache_client_watch_next(c, &e, 200) != 0)
            continue;
        if (e.kind == REFCACHE_EVENT_LOST)
            lost += e.lost;
        else if (e.kind == REFCACHE_EVENT_END) {
            lost += e.lost; /* dropped as too slow: what it missed since the last LOST */
            ended = true;
        } else if (e.kind == REFCACHE_EVENT_TRANSITION)
            events++;
    }
    printf("events %llu lost %llu\n", (unsigned long long) events, (unsigned long long) lost);
    refcache_client_destroy(&c);
    return 0;
}
