/* rc_metrics: per-function histograms of queue, run and cancel-to-stop
 * times (see rc_metrics.h). */
#include "rc_metrics.h"

#include <stdlib.h>

/* The bounds, and a last one that nothing passes (+Inf). */
const uint64_t rc_metrics_bounds_[RC_METRICS_BUCKETS] = {RC_METRICS_BOUNDS, UINT64_MAX};

/* For a value of bit length k (2^(k-1) <= us < 2^k; k = 0 for 0), the
 * first bucket whose bound is at least 2^(k-1): the search starts there and
 * takes at most one step, as no range [2^(k-1), 2^k) holds two bounds
 * (test_metrics checks the table against a plain search). */
const uint8_t rc_metrics_first_[65] = {
    0,  0,  0,  0,  0,  1,  2,  3,  4,  5,  6,  7,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
    16, 17, 18, 19, 20, 21, 21, 21, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22,
    22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22,
};

struct rc_metrics {
    rc_fnmetrics_t **fns;
    size_t n, cap;
};

rc_metrics_t *rc_metrics_new(void)
{
    return calloc(1, sizeof(rc_metrics_t));
}

void rc_metrics_destroy(rc_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rc_metrics_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++)
        free(self->fns[i]);
    free(self->fns);
    free(self);
    *self_p = NULL;
}

rc_fnmetrics_t *rc_metrics_add(rc_metrics_t *self, const char *name)
{
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 8;
        rc_fnmetrics_t **fns = realloc(self->fns, cap * sizeof *fns);
        if (!fns)
            return NULL;
        self->fns = fns;
        self->cap = cap;
    }
    rc_fnmetrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->name = name;
    self->fns[self->n++] = m;
    return m;
}

const uint64_t *rc_metrics_bounds(void)
{
    return rc_metrics_bounds_;
}
