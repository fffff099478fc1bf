/* rc_hist: log-linear histogram; see rc_hist.h for the layout's error bound. */
#include "rc_hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 2^SUB_BITS buckets per power of two: 128 gives a width of at most 1/128. */
#define SUB_BITS  7
#define SUB_COUNT (1u << SUB_BITS)
/* Values below 2 * SUB_COUNT get one bucket each. */
#define EXACT (2u * SUB_COUNT)
/* Powers of two from 2^8 up to 2^47, 128 buckets each. */
#define TOP_BIT 47
#define BUCKETS (EXACT + (TOP_BIT - SUB_BITS) * SUB_COUNT)

struct rc_hist {
    uint64_t count;
    uint64_t min;
    uint64_t max;
    double sum;
    uint64_t counts[BUCKETS];
};

static unsigned s_index(uint64_t v)
{
    if (v < EXACT)
        return (unsigned) v;
    unsigned k = 63u - (unsigned) __builtin_clzll(v); /* k >= SUB_BITS + 1 */
    unsigned shift = k - SUB_BITS;
    unsigned sub = (unsigned) (v >> shift) - SUB_COUNT; /* 0 .. SUB_COUNT-1 */
    return EXACT + (k - SUB_BITS - 1) * SUB_COUNT + sub;
}

/* The midpoint of bucket i (its exact value below EXACT). */
static uint64_t s_value(unsigned i)
{
    if (i < EXACT)
        return i;
    unsigned k = (i - EXACT) / SUB_COUNT + SUB_BITS + 1;
    unsigned sub = (i - EXACT) % SUB_COUNT + SUB_COUNT;
    unsigned shift = k - SUB_BITS;
    uint64_t lower = (uint64_t) sub << shift;
    return lower + ((UINT64_C(1) << shift) - 1) / 2;
}

rc_hist_t *rc_hist_new(void)
{
    return calloc(1, sizeof(rc_hist_t));
}

void rc_hist_destroy(rc_hist_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

void rc_hist_reset(rc_hist_t *self)
{
    memset(self, 0, sizeof *self);
}

void rc_hist_record(rc_hist_t *self, uint64_t value)
{
    if (value > RC_HIST_MAX_VALUE)
        value = RC_HIST_MAX_VALUE;
    if (self->count == 0 || value < self->min)
        self->min = value;
    if (value > self->max)
        self->max = value;
    self->count++;
    self->sum += (double) value;
    self->counts[s_index(value)]++;
}

void rc_hist_merge(rc_hist_t *self, const rc_hist_t *src)
{
    if (src->count == 0)
        return;
    if (self->count == 0 || src->min < self->min)
        self->min = src->min;
    if (src->max > self->max)
        self->max = src->max;
    self->count += src->count;
    self->sum += src->sum;
    for (unsigned i = 0; i < BUCKETS; i++)
        self->counts[i] += src->counts[i];
}

uint64_t rc_hist_count(const rc_hist_t *self)
{
    return self->count;
}

uint64_t rc_hist_min(const rc_hist_t *self)
{
    return self->min;
}

uint64_t rc_hist_max(const rc_hist_t *self)
{
    return self->max;
}

double rc_hist_mean(const rc_hist_t *self)
{
    return self->count ? self->sum / (double) self->count : 0.0;
}

uint64_t rc_hist_percentile(const rc_hist_t *self, double p)
{
    if (self->count == 0)
        return 0;
    if (p >= 100.0)
        return self->max;
    if (p < 0.0)
        p = 0.0;
    uint64_t rank = (uint64_t) ceil(p / 100.0 * (double) self->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BUCKETS; i++) {
        seen += self->counts[i];
        if (seen >= rank) {
            uint64_t v = s_value(i);
            if (v < self->min)
                v = self->min;
            if (v > self->max)
                v = self->max;
            return v;
        }
    }
    return self->max;
}
