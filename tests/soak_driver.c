/* soak_driver: the client side of scripts/soak.sh. For SECONDS it submits a
 * mix of tasks (echo, with repeats that hit the cache; sleep of various
 * lengths with retries; spin; sleep with a deadline shorter than the sleep)
 * and cancels random ones, at a steady pace. Then it checks that every
 * ref_id it was handed is terminal (Status/Wait each), that nothing is left
 * PENDING or PROCESSING and no wait is held, and prints the broker's
 * resident memory before and after. Exit 0 if every check holds.
 *   soak_driver ENDPOINT SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "rc_common.h"
#include "refcache.h"

#define CALL_MS 10000

typedef struct {
    char ref[REFCACHE_REF_MAX + 1];
} ref_t;

static ref_t *s_refs;
static size_t s_nrefs, s_cap;

static void s_keep(const char *ref)
{
    if (s_nrefs == s_cap) {
        s_cap = s_cap ? s_cap * 2 : 4096;
        s_refs = realloc(s_refs, s_cap * sizeof *s_refs);
        if (!s_refs) {
            fprintf(stderr, "soak: out of memory\n");
            exit(1);
        }
    }
    snprintf(s_refs[s_nrefs++].ref, sizeof s_refs[0].ref, "%s", ref);
}

static uint32_t s_rand(uint32_t n)
{
    uint32_t r;
    rc_random_bytes(&r, sizeof r);
    return n ? r % n : 0;
}

static int s_stats(refcache_client_t *c, refcache_stats_t *s)
{
    int rc = refcache_client_stats(c, s, CALL_MS);
    if (rc != 0)
        fprintf(stderr, "soak: stats: %s\n", refcache_strerror(rc));
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: soak_driver ENDPOINT SECONDS\n");
        return 2;
    }
    zsys_handler_set(NULL);
    int seconds = atoi(argv[2]);
    refcache_client_options_t opts;
    refcache_client_options_init(&opts);
    opts.endpoint = argv[1];
    char err[256];
    refcache_client_t *c = refcache_client_new(&opts, err, sizeof err);
    if (!c) {
        fprintf(stderr, "soak: %s\n", err);
        return 1;
    }
    refcache_stats_t first, s;
    if (s_stats(c, &first) != 0)
        return 1;

    uint64_t kinds[6] = {0}, errors = 0, cancels_ok = 0;
    static const char *kind_names[6] = {"echo", "sleep", "spin", "deadline", "cancel", "fail"};
    uint64_t end = rc_mono_us() + (uint64_t) seconds * 1000000, next_report = 0;
    while (rc_mono_us() < end) {
        uint32_t dice = s_rand(100);
        int kind = dice < 35 ? 0 : dice < 60 ? 1 : dice < 70 ? 2 : dice < 82 ? 3 : dice < 95 ? 4 : 5;
        refcache_submit_options_t o;
        refcache_submit_options_init(&o);
        refcache_param_t p[2];
        char a[32], b[32], payload[64];
        const char *fn = NULL;
        switch (kind) {
        case 0: /* echo; a small key space, so some are cache hits */
            snprintf(payload, sizeof payload, "soak-%u", s_rand(500));
            o.payload = payload;
            o.payload_len = strlen(payload);
            fn = "echo";
            break;
        case 1: /* sleep 10..500 ms, retried if its worker is killed */
            snprintf(a, sizeof a, "%u", 10 + s_rand(490));
            p[0] = (refcache_param_t){"ms", a};
            o.params = p;
            o.param_count = 1;
            o.max_retries = s_rand(3);
            fn = "sleep";
            break;
        case 2: /* spin */
            snprintf(a, sizeof a, "%u", 1000 + s_rand(200000));
            snprintf(b, sizeof b, "%u", 1000);
            p[0] = (refcache_param_t){"iterations", a};
            p[1] = (refcache_param_t){"step", b};
            o.params = p;
            o.param_count = 2;
            fn = "spin";
            break;
        case 3: /* a deadline shorter than the sleep */
            snprintf(a, sizeof a, "%u", 1000 + s_rand(2000));
            p[0] = (refcache_param_t){"ms", a};
            o.params = p;
            o.param_count = 1;
            o.deadline_ms = 100 + s_rand(400);
            o.max_retries = 1;
            fn = "sleep";
            break;
        case 5: /* a retryable failure */
            p[0] = (refcache_param_t){"message", "soak"};
            p[1] = (refcache_param_t){"retryable", "1"};
            o.params = p;
            o.param_count = 2;
            o.max_retries = s_rand(3);
            o.no_cache = true;
            fn = "fail";
            break;
        default:
            break;
        }
        kinds[kind]++;
        if (fn) {
            refcache_task_t *t = NULL;
            int rc = refcache_client_submit(c, fn, &o, &t, CALL_MS);
            if (rc == 0)
                s_keep(t->info.ref_id);
            else {
                errors++;
                fprintf(stderr, "soak: submit %s: %s (%s)\n", fn, refcache_strerror(rc),
                        refcache_client_message(c));
            }
            refcache_task_destroy(&t);
        } else if (s_nrefs) {
            bool cancelled = false;
            int rc =
                refcache_client_cancel(c, s_refs[s_rand((uint32_t) s_nrefs)].ref, &cancelled, NULL, CALL_MS);
            if (rc != 0) {
                errors++;
                fprintf(stderr, "soak: cancel: %s\n", refcache_strerror(rc));
            }
            cancels_ok += cancelled;
        }
        if (rc_mono_us() >= next_report) {
            next_report = rc_mono_us() + 10000000;
            if (s_stats(c, &s) == 0)
                printf(
                    "soak: %zu refs; pending %llu processing %llu complete %llu failed %llu cancelled %llu "
                    "workers %llu lost %llu retries %llu rss %.1f MiB\n",
                    s_nrefs, (unsigned long long) s.tasks_pending, (unsigned long long) s.tasks_processing,
                    (unsigned long long) s.tasks_complete, (unsigned long long) s.tasks_failed,
                    (unsigned long long) s.tasks_cancelled, (unsigned long long) s.workers,
                    (unsigned long long) s.workers_lost_total, (unsigned long long) s.retries_total,
                    s.rss_bytes / 1048576.0);
            fflush(stdout);
        }
        zclock_sleep(15); /* pacing of the load, not a synchronisation */
    }

    /* Every ref handed out must end terminal (Wait each, up to 2 min in all). */
    uint64_t states[8] = {0}, not_found = 0, stuck = 0;
    uint64_t give_up = rc_mono_us() + 120000000;
    for (size_t i = 0; i < s_nrefs; i++) {
        for (;;) {
            refcache_task_t *t = NULL;
            int rc = refcache_client_wait(c, s_refs[i].ref, 1000, &t, CALL_MS);
            if (rc == REFCACHE_CODE_NOT_FOUND) {
                not_found++;
                break;
            }
            if (rc == 0 && rc_state_is_terminal(t->info.state)) {
                states[t->info.state]++;
                refcache_task_destroy(&t);
                break;
            }
            if (rc == 0)
                refcache_task_destroy(&t);
            if (rc_mono_us() > give_up) {
                fprintf(stderr, "soak: %s not terminal (%s)\n", s_refs[i].ref,
                        rc == 0 ? "still running" : refcache_strerror(rc));
                stuck++;
                break;
            }
        }
    }
    if (s_stats(c, &s) != 0)
        return 1;
    uint64_t records =
        s.tasks_pending + s.tasks_processing + s.tasks_complete + s.tasks_failed + s.tasks_cancelled;
    printf("soak: ops");
    for (int k = 0; k < 6; k++)
        printf(" %s %llu", kind_names[k], (unsigned long long) kinds[k]);
    printf("; %llu cancelled by us; %llu call errors\n", (unsigned long long) cancels_ok,
           (unsigned long long) errors);
    printf("soak: %zu ref_ids handed out: COMPLETE %llu FAILED %llu CANCELLED %llu, NOT_FOUND %llu, "
           "not terminal %llu\n",
           s_nrefs, (unsigned long long) states[REFCACHE_STATE_COMPLETE],
           (unsigned long long) states[REFCACHE_STATE_FAILED],
           (unsigned long long) states[REFCACHE_STATE_CANCELLED], (unsigned long long) not_found,
           (unsigned long long) stuck);
    printf(
        "soak: broker: records %llu (pending %llu processing %llu), waiters %llu, queue %llu, workers %llu, "
        "workers lost %llu, retries %llu, deadline exceeded %llu, stale msgs %llu, dropped replies %llu, "
        "expired %llu, evicted %llu\n",
        (unsigned long long) records, (unsigned long long) s.tasks_pending,
        (unsigned long long) s.tasks_processing, (unsigned long long) s.waiters,
        (unsigned long long) s.queue_depth, (unsigned long long) s.workers,
        (unsigned long long) s.workers_lost_total, (unsigned long long) s.retries_total,
        (unsigned long long) s.deadline_exceeded_total, (unsigned long long) s.stale_msgs_total,
        (unsigned long long) s.dropped_replies_total, (unsigned long long) s.expired_total,
        (unsigned long long) s.evicted_total);
    printf("soak: rss before %.1f MiB, after %.1f MiB\n", first.rss_bytes / 1048576.0,
           s.rss_bytes / 1048576.0);
    int ok = stuck == 0 && not_found == 0 && s.tasks_pending == 0 && s.tasks_processing == 0 &&
             s.waiters == 0 && errors == 0;
    printf("soak: %s\n", ok ? "PASS" : "FAIL");
    free(s_refs);
    refcache_client_destroy(&c);
    return ok ? 0 : 1;
}
