/* test_metrics: the per-function histograms — the bucket an observation
 * falls in (the table look-up against a plain search), sums and counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "rc_metrics.h"

static unsigned plain_bucket(uint64_t us)
{
    const uint64_t *b = rc_metrics_bounds();
    unsigned i = 0;
    while (i < RC_METRICS_BUCKETS - 1 && us > b[i])
        i++;
    return i;
}

static unsigned bucket_of(uint64_t us)
{
    rc_fnmetrics_t m = {0};
    rc_metrics_observe(&m, RC_HIST_RUN, us);
    for (unsigned i = 0; i < RC_METRICS_BUCKETS; i++)
        if (m.h[RC_HIST_RUN].counts[i])
            return i;
    return ~0u;
}

static void test_buckets(void **state)
{
    (void) state;
    const uint64_t *b = rc_metrics_bounds();
    for (unsigned i = 0; i < RC_METRICS_BUCKETS - 1; i++)
        for (int d = -1; d <= 1; d++) {
            uint64_t us = b[i] + (uint64_t) d;
            assert_int_equal(bucket_of(us), plain_bucket(us));
        }
    for (int k = 0; k < 64; k++)
        for (uint64_t us = (1ull << k) - 1; us <= (1ull << k) + 1; us++)
            assert_int_equal(bucket_of(us), plain_bucket(us));
    srand(3);
    for (int i = 0; i < 100000; i++) {
        uint64_t us = ((uint64_t) rand() << 31 | (uint64_t) rand()) >> (rand() % 62);
        assert_int_equal(bucket_of(us), plain_bucket(us));
    }
    assert_int_equal(bucket_of(0), 0);
    assert_int_equal(bucket_of(10), 0);
    assert_int_equal(bucket_of(11), 1);
    assert_int_equal(bucket_of(UINT64_MAX), RC_METRICS_BUCKETS - 1);
}

static void test_entries(void **state)
{
    (void) state;
    rc_metrics_t *m = rc_metrics_new();
    assert_non_null(m);
    rc_fnmetrics_t *a = rc_metrics_add(m, "echo");
    rc_fnmetrics_t *keep = a;
    for (int i = 0; i < 40; i++)
        assert_non_null(rc_metrics_add(m, "other")); /* growth does not move entries */
    assert_ptr_equal(a, keep);
    rc_metrics_observe(a, RC_HIST_QUEUE, 5);
    rc_metrics_observe(a, RC_HIST_QUEUE, 7000);
    rc_metrics_observe(a, RC_HIST_QUEUE, 7000);
    assert_int_equal(a->h[RC_HIST_QUEUE].count, 3);
    assert_int_equal(a->h[RC_HIST_QUEUE].sum_us, 14005);
    assert_int_equal(a->h[RC_HIST_QUEUE].counts[0], 1);
    assert_int_equal(a->h[RC_HIST_QUEUE].counts[9], 2); /* (5000, 10000] */
    assert_int_equal(a->h[RC_HIST_RUN].count, 0);
    assert_string_equal(a->name, "echo");
    rc_metrics_destroy(&m);
    assert_null(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_buckets), cmocka_unit_test(test_entries)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
