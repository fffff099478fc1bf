/* rc_hist: percentiles of known distributions within 1%, merge, max. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <math.h>

#include "rc_hist.h"

static void s_assert_close(uint64_t got, double want)
{
    double err = fabs((double) got - want) / want;
    if (err > 0.01)
        fail_msg("got %llu, want %.1f (error %.3f%%)", (unsigned long long) got, want, err * 100);
}

static void test_empty(void **state)
{
    rc_hist_t *h = rc_hist_new();
    assert_non_null(h);
    assert_int_equal(rc_hist_count(h), 0);
    assert_int_equal(rc_hist_percentile(h, 50), 0);
    assert_int_equal(rc_hist_max(h), 0);
    rc_hist_destroy(&h);
    assert_null(h);
    rc_hist_destroy(&h); /* NULL is fine */
}

/* 1..1,000,000 once each: the p-th percentile is p% of a million. */
static void test_uniform(void **state)
{
    rc_hist_t *h = rc_hist_new();
    for (uint64_t v = 1; v <= 1000000; v++)
        rc_hist_record(h, v);
    assert_int_equal(rc_hist_count(h), 1000000);
    assert_int_equal(rc_hist_min(h), 1);
    assert_int_equal(rc_hist_max(h), 1000000);
    s_assert_close(rc_hist_percentile(h, 50), 500000);
    s_assert_close(rc_hist_percentile(h, 90), 900000);
    s_assert_close(rc_hist_percentile(h, 99), 990000);
    s_assert_close(rc_hist_percentile(h, 99.9), 999000);
    s_assert_close(rc_hist_percentile(h, 1), 10000);
    assert_int_equal(rc_hist_percentile(h, 100), 1000000);
    assert_true(fabs(rc_hist_mean(h) - 500000.5) < 1e-6 * 500000);
    rc_hist_destroy(&h);
}

/* Small values are exact. */
static void test_exact_small(void **state)
{
    rc_hist_t *h = rc_hist_new();
    for (uint64_t v = 0; v < 200; v++)
        rc_hist_record(h, v);
    assert_int_equal(rc_hist_percentile(h, 50), 99);
    assert_int_equal(rc_hist_min(h), 0);
    assert_int_equal(rc_hist_max(h), 199);
    rc_hist_destroy(&h);
}

/* An exponential distribution spanning many powers of two: every sampled
 * value's bucket midpoint is within 1% (checked through single-value
 * histograms), and percentiles match the sorted truth within 1%. */
static int s_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static void test_exponential(void **state)
{
    enum { N = 200000 };
    uint64_t *vals = malloc(N * sizeof *vals);
    assert_non_null(vals);
    rc_hist_t *h = rc_hist_new();
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double u = (double) (x >> 11) / 9007199254740992.0;
        vals[i] = 300 + (uint64_t) (-log(1.0 - u) * 150000.0);
        rc_hist_record(h, vals[i]);
    }
    qsort(vals, N, sizeof *vals, s_cmp);
    const double ps[] = {10, 50, 90, 99, 99.9};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        size_t rank = (size_t) ceil(ps[k] / 100.0 * N);
        s_assert_close(rc_hist_percentile(h, ps[k]), (double) vals[rank - 1]);
    }
    assert_int_equal(rc_hist_max(h), vals[N - 1]);
    free(vals);
    rc_hist_destroy(&h);
}

/* Any single value reads back within 1% (the layout's bound), across the range. */
static void test_single_values(void **state)
{
    rc_hist_t *h = rc_hist_new();
    for (uint64_t v = 1; v < (UINT64_C(1) << 47); v = v * 3 / 2 + 1) {
        rc_hist_reset(h);
        rc_hist_record(h, v);
        rc_hist_record(h, v + v / 300); /* a second value in (about) the same bucket */
        s_assert_close(rc_hist_percentile(h, 50), (double) v);
    }
    rc_hist_record(h, UINT64_MAX); /* clamped, not out of bounds */
    assert_int_equal(rc_hist_max(h), RC_HIST_MAX_VALUE);
    rc_hist_destroy(&h);
}

/* Merging two halves equals recording everything in one. */
static void test_merge(void **state)
{
    rc_hist_t *a = rc_hist_new(), *b = rc_hist_new(), *all = rc_hist_new();
    for (uint64_t v = 1; v <= 100000; v++) {
        rc_hist_record(v % 2 ? a : b, v * 10);
        rc_hist_record(all, v * 10);
    }
    rc_hist_record(b, 5000000);
    rc_hist_record(all, 5000000);
    rc_hist_merge(a, b);
    assert_int_equal(rc_hist_count(a), rc_hist_count(all));
    assert_int_equal(rc_hist_max(a), 5000000);
    assert_int_equal(rc_hist_min(a), 10);
    const double ps[] = {50, 90, 99, 99.9, 100};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++)
        assert_int_equal(rc_hist_percentile(a, ps[k]), rc_hist_percentile(all, ps[k]));
    s_assert_close(rc_hist_percentile(a, 50), 500000);
    /* Merging an empty histogram changes nothing. */
    rc_hist_t *empty = rc_hist_new();
    rc_hist_merge(a, empty);
    assert_int_equal(rc_hist_count(a), 100001);
    rc_hist_merge(empty, a);
    assert_int_equal(rc_hist_min(empty), 10);
    rc_hist_destroy(&a);
    rc_hist_destroy(&b);
    rc_hist_destroy(&all);
    rc_hist_destroy(&empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),         cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_exact_small),   cmocka_unit_test(test_exponential),
        cmocka_unit_test(test_single_values), cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
