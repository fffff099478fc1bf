/* rc_hist: a log-linear latency histogram in the style of HdrHistogram.
 *
 * Values below 256 are counted exactly; above, every power-of-two range is
 * split into 128 equal buckets, so a bucket is at most 1/128 of its values
 * wide and a percentile read back as the bucket's midpoint is within 0.4% of
 * the true value (the harness promises 1%). Values up to 2^48 - 1 (78 hours
 * in nanoseconds) are kept; larger ones are clamped. The memory is fixed
 * (about 43 KB), recording is O(1) and allocation-free, and two histograms
 * merge by adding their counts, so each connection can keep its own and the
 * harness adds them up at the end. Not thread-safe: one writer at a time. */
#ifndef RC_HIST_H
#define RC_HIST_H

#include <stdint.h>

typedef struct rc_hist rc_hist_t;

/* The largest value kept exactly enough; larger values are clamped to it. */
#define RC_HIST_MAX_VALUE ((UINT64_C(1) << 48) - 1)

/* Creates an empty histogram; NULL on out of memory. */
rc_hist_t *rc_hist_new(void);

/* Frees the histogram; accepts NULL and clears the caller's pointer. */
void rc_hist_destroy(rc_hist_t **self_p);

/* Forgets every value. */
void rc_hist_reset(rc_hist_t *self);

/* Counts one value. */
void rc_hist_record(rc_hist_t *self, uint64_t value);

/* Adds every value counted in src to self (src is unchanged). */
void rc_hist_merge(rc_hist_t *self, const rc_hist_t *src);

/* How many values were counted. */
uint64_t rc_hist_count(const rc_hist_t *self);

/* The smallest and largest values counted, exactly (0 when empty). */
uint64_t rc_hist_min(const rc_hist_t *self);
uint64_t rc_hist_max(const rc_hist_t *self);

/* The mean of the values counted, exactly (0 when empty). */
double rc_hist_mean(const rc_hist_t *self);

/* The value at percentile p (0..100): the smallest bucket whose cumulative
 * count reaches ceil(p% of count), reported as that bucket's midpoint and
 * clamped to [min, max]; p >= 100 gives max exactly. 0 when empty. */
uint64_t rc_hist_percentile(const rc_hist_t *self, double p);

#endif
