/* Unit tests of the timer heap (rc_timer): pop order, cancel from anywhere,
 * re-arm either way, the due-time cut-off, and the heap invariant after
 * every operation of a random workload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rc_testkit.h"
#include "rc_timer.h"

/* A small deterministic generator, so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    return rc_testkit_rnd(&rng_state);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

/* Pops everything (now = max) and checks the order is non-decreasing and
 * equals the sorted list of expected due times. */
static void drain_sorted(rc_timers_t *h, uint64_t *expected, size_t n)
{
    qsort(expected, n, sizeof *expected, cmp_u64);
    for (size_t i = 0; i < n; i++) {
        rc_timer_t *first = rc_timers_first(h);
        assert_non_null(first);
        rc_timer_t *t = rc_timers_pop_due(h, UINT64_MAX);
        assert_ptr_equal(t, first);
        assert_false(rc_timer_armed(t));
        if (t->due_us != expected[i]) {
            print_error("pop %zu: expected due %llu, got %llu\n", i, (unsigned long long) expected[i],
                        (unsigned long long) t->due_us);
            fail();
        }
        assert_int_equal(rc_timers_size(h), n - i - 1);
    }
    assert_null(rc_timers_first(h));
    assert_null(rc_timers_pop_due(h, UINT64_MAX));
}

static void test_empty(void **state)
{
    rc_timers_t *h = rc_timers_new();
    assert_non_null(h);
    assert_int_equal(rc_timers_size(h), 0);
    assert_null(rc_timers_first(h));
    assert_null(rc_timers_pop_due(h, 0));
    assert_null(rc_timers_pop_due(h, UINT64_MAX));
    rc_timers_destroy(&h);
    assert_null(h);
    rc_timers_destroy(&h); /* NULL is harmless */
    rc_timers_destroy(NULL);
}

static void test_random_order(void **state)
{
    enum { N = 5000 };
    rc_timers_t *h = rc_timers_new();
    rc_timer_t *timers = calloc(N, sizeof *timers);
    uint64_t *due = malloc(N * sizeof *due);
    for (size_t i = 0; i < N; i++) {
        /* Small range so there are many ties. */
        due[i] = rnd() % 2000;
        assert_int_equal(rc_timers_set(h, &timers[i], due[i]), 0);
        assert_true(rc_timer_armed(&timers[i]));
        assert_int_equal(rc_timers_size(h), i + 1);
    }
    drain_sorted(h, due, N);
    for (size_t i = 0; i < N; i++)
        assert_false(rc_timer_armed(&timers[i]));
    rc_timers_destroy(&h);
    free(due);
    free(timers);
}

static void test_pop_due_respects_now(void **state)
{
    rc_timers_t *h = rc_timers_new();
    rc_timer_t a = {0}, b = {0}, c = {0};
    assert_int_equal(rc_timers_set(h, &a, 100), 0);
    assert_int_equal(rc_timers_set(h, &b, 200), 0);
    assert_int_equal(rc_timers_set(h, &c, 200), 0);
    assert_null(rc_timers_pop_due(h, 0));
    assert_null(rc_timers_pop_due(h, 99));
    assert_int_equal(rc_timers_size(h), 3);
    assert_ptr_equal(rc_timers_pop_due(h, 100), &a); /* due exactly now */
    assert_null(rc_timers_pop_due(h, 100));
    assert_null(rc_timers_pop_due(h, 199));
    rc_timer_t *x = rc_timers_pop_due(h, 250);
    rc_timer_t *y = rc_timers_pop_due(h, 250);
    assert_true((x == &b && y == &c) || (x == &c && y == &b));
    assert_null(rc_timers_pop_due(h, 250));
    assert_int_equal(rc_timers_size(h), 0);
    rc_timers_destroy(&h);
}

static void test_cancel_middle(void **state)
{
    enum { N = 1000 };
    rc_timers_t *h = rc_timers_new();
    rc_timer_t *timers = calloc(N, sizeof *timers);
    uint64_t *kept = malloc(N * sizeof *kept);
    size_t nkept = 0;
    for (size_t i = 0; i < N; i++)
        assert_int_equal(rc_timers_set(h, &timers[i], 1 + rnd() % 100000), 0);
    /* Cancel every third one (from all over the heap), and the first. */
    rc_timer_t *first = rc_timers_first(h);
    rc_timers_cancel(h, first);
    assert_false(rc_timer_armed(first));
    for (size_t i = 0; i < N; i++) {
        if (&timers[i] == first)
            continue;
        if (i % 3 == 0) {
            rc_timers_cancel(h, &timers[i]);
            assert_false(rc_timer_armed(&timers[i]));
        } else {
            kept[nkept++] = timers[i].due_us;
        }
    }
    assert_int_equal(rc_timers_size(h), nkept);
    drain_sorted(h, kept, nkept);
    rc_timers_destroy(&h);
    free(kept);
    free(timers);
}

static void test_cancel_last_and_only(void **state)
{
    rc_timers_t *h = rc_timers_new();
    rc_timer_t a = {0}, b = {0};
    assert_int_equal(rc_timers_set(h, &a, 5), 0);
    rc_timers_cancel(h, &a);
    assert_int_equal(rc_timers_size(h), 0);
    assert_null(rc_timers_first(h));
    assert_int_equal(rc_timers_set(h, &a, 5), 0);
    assert_int_equal(rc_timers_set(h, &b, 10), 0);
    rc_timers_cancel(h, &b); /* the last slot */
    assert_ptr_equal(rc_timers_first(h), &a);
    assert_int_equal(rc_timers_size(h), 1);
    rc_timers_cancel(h, &a);
    rc_timers_destroy(&h);
}

static void test_cancel_unarmed(void **state)
{
    rc_timers_t *h = rc_timers_new();
    rc_timer_t never = {0}, a = {0}, b = {0};
    rc_timers_cancel(h, &never); /* empty heap */
    assert_int_equal(rc_timers_set(h, &a, 10), 0);
    assert_int_equal(rc_timers_set(h, &b, 20), 0);
    rc_timers_cancel(h, &never);
    assert_int_equal(rc_timers_size(h), 2);
    rc_timers_cancel(h, &a);
    rc_timers_cancel(h, &a); /* twice */
    assert_int_equal(rc_timers_size(h), 1);
    assert_ptr_equal(rc_timers_first(h), &b);
    /* A popped timer is unarmed too. */
    assert_ptr_equal(rc_timers_pop_due(h, 20), &b);
    rc_timers_cancel(h, &b);
    assert_int_equal(rc_timers_size(h), 0);
    rc_timers_destroy(&h);
}

static void test_rearm(void **state)
{
    rc_timers_t *h = rc_timers_new();
    rc_timer_t t[5] = {{0}};
    for (int i = 0; i < 5; i++)
        assert_int_equal(rc_timers_set(h, &t[i], (uint64_t) (i + 1) * 100), 0);
    /* Earlier: the last becomes the first. */
    assert_int_equal(rc_timers_set(h, &t[4], 50), 0);
    assert_int_equal(rc_timers_size(h), 5);
    assert_ptr_equal(rc_timers_first(h), &t[4]);
    assert_int_equal(t[4].due_us, 50);
    /* Later: the first becomes the last. */
    assert_int_equal(rc_timers_set(h, &t[4], 1000), 0);
    assert_int_equal(rc_timers_set(h, &t[0], 900), 0);
    assert_int_equal(rc_timers_size(h), 5);
    assert_ptr_equal(rc_timers_first(h), &t[1]);
    /* Same time: unchanged. */
    assert_int_equal(rc_timers_set(h, &t[2], 300), 0);
    rc_timer_t *order[] = {&t[1], &t[2], &t[3], &t[0], &t[4]};
    for (int i = 0; i < 5; i++)
        assert_ptr_equal(rc_timers_pop_due(h, UINT64_MAX), order[i]);
    /* Re-arm after firing. */
    assert_int_equal(rc_timers_set(h, &t[0], 7), 0);
    assert_true(rc_timer_armed(&t[0]));
    assert_int_equal(rc_timers_size(h), 1);
    rc_timers_destroy(&h);
    /* Destroy disarms the timers it still held. */
    assert_false(rc_timer_armed(&t[0]));
}

/* A random mix of set, re-arm, cancel and pop, checked against a model. */
static void test_random_workload(void **state)
{
    enum { N = 300, OPS = 20000 };
    rc_timers_t *h = rc_timers_new();
    rc_timer_t *timers = calloc(N, sizeof *timers);
    bool *armed = calloc(N, sizeof *armed);
    uint64_t now = 0;
    for (int op = 0; op < OPS; op++) {
        size_t i = rnd() % N;
        switch (rnd() % 4) {
        case 0:
        case 1:
            assert_int_equal(rc_timers_set(h, &timers[i], now + rnd() % 5000), 0);
            armed[i] = true;
            break;
        case 2:
            rc_timers_cancel(h, &timers[i]);
            armed[i] = false;
            break;
        case 3: {
            now += rnd() % 200;
            uint64_t last = 0;
            rc_timer_t *t;
            while ((t = rc_timers_pop_due(h, now)) != NULL) {
                assert_true(t->due_us <= now);
                assert_true(t->due_us >= last);
                last = t->due_us;
                size_t k = (size_t) (t - timers);
                assert_true(k < N);
                assert_true(armed[k]);
                armed[k] = false;
            }
            /* Nothing armed is overdue, and the first is the minimum. */
            uint64_t min = UINT64_MAX;
            for (size_t k = 0; k < N; k++)
                if (armed[k] && timers[k].due_us < min)
                    min = timers[k].due_us;
            rc_timer_t *first = rc_timers_first(h);
            if (min == UINT64_MAX) {
                assert_null(first);
            } else {
                assert_non_null(first);
                assert_true(min > now);
                assert_int_equal(first->due_us, min);
            }
            break;
        }
        }
        size_t n = 0;
        for (size_t k = 0; k < N; k++) {
            assert_int_equal(rc_timer_armed(&timers[k]), armed[k]);
            n += armed[k];
        }
        assert_int_equal(rc_timers_size(h), n);
    }
    rc_timers_destroy(&h);
    free(armed);
    free(timers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_random_order),
        cmocka_unit_test(test_pop_due_respects_now),
        cmocka_unit_test(test_cancel_middle),
        cmocka_unit_test(test_cancel_last_and_only),
        cmocka_unit_test(test_cancel_unarmed),
        cmocka_unit_test(test_rearm),
        cmocka_unit_test(test_random_workload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
