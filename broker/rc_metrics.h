/* rc_metrics: per-function histograms of how long tasks waited and ran,
 * kept from the runner's notes by the observer (rc_observe) and read by the
 * Metrics request (what /metrics serves):
 *
 *   queue time        accepted -> its first run began (the worker's
 *                     Started, or its Result for a job that ended before
 *                     its first step boundary and sent none): the time in
 *                     the broker's queue and in the worker's own; observed
 *                     when that run ends (result, failure, cancel, deadline,
 *                     worker lost), as only then is the task's note taken
 *   run time          that beginning -> the run's Result or Failure (a
 *                     retried task: each run)
 *   cancel-to-stop    a cancel or deadline of a running task -> the worker's
 *                     confirmation that it stopped
 *
 * Buckets are fixed (RC_METRICS_BOUNDS, in microseconds, plus +Inf), so an
 * observation is a table look-up, a step or two and three additions, and a
 * histogram is RC_METRICS_BUCKETS counters, a sum and a count. A function's
 * histograms are an entry that never moves, which the broker's record of
 * the function points to, so the hot path finds them with one load. Owned
 * by the broker thread. */
#ifndef RC_METRICS_H
#define RC_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Upper bounds of the buckets in microseconds; the last bucket is +Inf. */
#define RC_METRICS_BOUNDS                                                                                    \
    10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,       \
        2500000, 5000000, 10000000, 30000000, 60000000, 300000000
#define RC_METRICS_BUCKETS 23 /* the bounds above and +Inf */

typedef struct {
    uint64_t counts[RC_METRICS_BUCKETS]; /* per bucket (not cumulative) */
    uint64_t sum_us, count;
} rc_hist_t;

enum { RC_HIST_QUEUE, RC_HIST_RUN, RC_HIST_STOP, RC_HISTS };

/* One function's histograms. */
typedef struct rc_fnmetrics {
    const char *name; /* the function's name (owned by the broker's record of it) */
    rc_hist_t h[RC_HISTS];
} rc_fnmetrics_t;

typedef struct rc_metrics rc_metrics_t;

rc_metrics_t *rc_metrics_new(void);

/* Frees the metrics and every entry; accepts NULL and clears the pointer. */
void rc_metrics_destroy(rc_metrics_t **self_p);

/* A new function's entry (zeroed), which stays where it is until the
 * metrics are destroyed; NULL on out of memory. */
rc_fnmetrics_t *rc_metrics_add(rc_metrics_t *self, const char *name);

/* The bucket of an observation of us microseconds. */
extern const uint8_t rc_metrics_first_[65];
extern const uint64_t rc_metrics_bounds_[RC_METRICS_BUCKETS];

static inline void rc_metrics_observe(rc_fnmetrics_t *m, int which, uint64_t us)
{
    /* The first bound at least 2^floor(log2 us), then a step or two. */
    unsigned b = rc_metrics_first_[us ? 64 - __builtin_clzll(us) : 0];
    while (us > rc_metrics_bounds_[b])
        b++;
    rc_hist_t *h = &m->h[which];
    h->counts[b]++;
    h->sum_us += us;
    h->count++;
}

/* The bucket bounds (RC_METRICS_BUCKETS - 1 of them). */
const uint64_t *rc_metrics_bounds(void);

#endif
