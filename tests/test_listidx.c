/* test_listidx: the acceptance-ordered index that List pages through —
 * order, cursors, age bounds, and the sweep that keeps its dead entries a
 * bounded share, without a broker (liveness comes from a table here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rc_listidx.h"

#define MAXN 300000

/* Task i has ref (i, 0, ...) and is alive while alive[i]. */
static uint8_t alive[MAXN];
static size_t lookups;

static void ref_of(uint32_t i, uint8_t ref[16])
{
    memset(ref, 0, 16);
    memcpy(ref, &i, sizeof i);
    ref[15] = 0x5a;
}

static uint32_t index_of(const uint8_t ref[16])
{
    uint32_t i;
    memcpy(&i, ref, sizeof i);
    return i;
}

static bool is_live(void *arg, const uint8_t ref[16])
{
    (void) arg;
    lookups++;
    return alive[index_of(ref)];
}

typedef struct {
    uint32_t seen[MAXN];
    size_t n, stop_after;
    bool live_only;
} visits_t;

static bool visit(void *arg, const uint8_t ref[16])
{
    visits_t *v = arg;
    if (v->live_only && !alive[index_of(ref)])
        return true;
    v->seen[v->n++] = index_of(ref);
    return !v->stop_after || v->n < v->stop_after;
}

static rc_listidx_t *filled(uint32_t n, uint64_t us_step)
{
    rc_listidx_t *x = rc_listidx_new(is_live, NULL);
    assert_non_null(x);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t ref[16];
        ref_of(i, ref);
        alive[i] = 1;
        assert_int_equal(rc_listidx_add(x, ref, 1000 + (uint64_t) i * us_step), 0);
    }
    return x;
}

static void test_newest_first_and_cursor(void **state)
{
    (void) state;
    uint32_t n = 5000;
    rc_listidx_t *x = filled(n, 1);
    assert_int_equal(rc_listidx_entries(x), n);
    static visits_t v;
    memset(&v, 0, sizeof v);
    v.stop_after = 100;
    /* Pages of 100, each continuing below the last one's cursor. */
    uint64_t before = 0;
    uint32_t want = n;
    int pages = 0;
    do {
        v.n = 0;
        before = rc_listidx_scan(x, before, 0, SIZE_MAX, visit, &v);
        for (size_t i = 0; i < v.n; i++)
            assert_int_equal(v.seen[i], --want);
        pages++;
    } while (before);
    assert_int_equal(want, 0);
    assert_int_equal(pages, 50);
    rc_listidx_destroy(&x);
    assert_null(x);
    rc_listidx_destroy(&x); /* NULL is fine */
}

static void test_budget(void **state)
{
    (void) state;
    rc_listidx_t *x = filled(3000, 1);
    static visits_t v;
    memset(&v, 0, sizeof v);
    uint64_t next = rc_listidx_scan(x, 0, 0, 700, visit, &v);
    assert_int_equal(v.n, 700);
    assert_int_equal(v.seen[699], 2300);
    v.n = 0;
    next = rc_listidx_scan(x, next, 0, 700, visit, &v);
    assert_int_equal(v.seen[0], 2299);
    /* A budget of zero visits nothing and keeps the place. */
    v.n = 0;
    assert_true(rc_listidx_scan(x, next, 0, 0, visit, &v) == next);
    assert_int_equal(v.n, 0);
    rc_listidx_destroy(&x);
}

static void test_age_bounds(void **state)
{
    (void) state;
    /* Task i is created at 1000 + 10 i. */
    uint32_t n = 10000;
    rc_listidx_t *x = filled(n, 10);
    static visits_t v;
    memset(&v, 0, sizeof v);
    /* Newer than task 8000's time: the scan stops in the chunk of 8000. */
    uint64_t after = 1000 + 10 * 8000;
    assert_true(rc_listidx_scan(x, 0, after, SIZE_MAX, visit, &v) == 0);
    assert_true(v.n > n - 8000 - 1 && v.n <= n - 8000 + RC_LISTIDX_CHUNK);
    /* Older than task 3000's time: the scan starts at most a chunk above it. */
    uint64_t pos = rc_listidx_seek(x, 1000 + 10 * 3000);
    assert_true(pos > 0);
    v.n = 0;
    v.stop_after = 1;
    rc_listidx_scan(x, pos, 0, SIZE_MAX, visit, &v);
    assert_true(v.seen[0] >= 3000 && v.seen[0] < 3000 + RC_LISTIDX_CHUNK);
    /* Older than anything: nothing. */
    assert_true(rc_listidx_seek(x, 999) == 0);
    /* Newer than everything: from the newest. */
    v.n = 0;
    rc_listidx_scan(x, rc_listidx_seek(x, UINT64_MAX), 0, SIZE_MAX, visit, &v);
    assert_int_equal(v.seen[0], n - 1);
    rc_listidx_destroy(&x);
}

/* Deaths in acceptance order (a TTL): the old chunks empty and go. */
static void test_sweep_fifo(void **state)
{
    (void) state;
    uint32_t n = 200000;
    rc_listidx_t *x = filled(n, 1);
    size_t full = rc_listidx_bytes(x);
    lookups = 0;
    for (uint32_t i = 0; i < 180000; i++) {
        alive[i] = 0;
        rc_listidx_gone(x, n - i - 1);
    }
    assert_int_equal(rc_listidx_live(x), 20000);
    /* The dead are within an eighth of the entries, give or take a chunk. */
    assert_true(rc_listidx_entries(x) <= 20000 + 20000 / 7 + 2 * RC_LISTIDX_CHUNK);
    assert_true(rc_listidx_bytes(x) < full / 5);
    assert_true(lookups <= (size_t) 180000 * RC_LISTIDX_SWEEP);
    /* What is left is listed whole, in order. */
    static visits_t v;
    memset(&v, 0, sizeof v);
    v.live_only = true;
    assert_true(rc_listidx_scan(x, 0, 0, SIZE_MAX, visit, &v) == 0);
    assert_int_equal(v.n, 20000);
    for (size_t i = 0; i < v.n; i++)
        assert_int_equal(v.seen[i], n - 1 - i);
    rc_listidx_destroy(&x);
}

/* Deaths at random: the index stays within a bounded multiple of the live
 * entries, and cursors taken before the sweeps still work. */
static void test_sweep_random(void **state)
{
    (void) state;
    uint32_t n = 200000;
    rc_listidx_t *x = filled(n, 1);
    static visits_t v;
    memset(&v, 0, sizeof v);
    v.stop_after = 10;
    uint64_t cursor = rc_listidx_scan(x, 0, 0, SIZE_MAX, visit, &v);
    srand(7);
    uint32_t dead = 0;
    while (dead < 150000) {
        uint32_t i = (uint32_t) rand() % n;
        if (i >= n - 10 || !alive[i])
            continue;
        alive[i] = 0;
        dead++;
        rc_listidx_gone(x, n - dead);
    }
    size_t live = rc_listidx_live(x);
    assert_int_equal(live, n - dead);
    assert_true(rc_listidx_entries(x) <= 2 * live);
    v.n = 0;
    v.stop_after = 0;
    v.live_only = true;
    assert_true(rc_listidx_scan(x, cursor, 0, SIZE_MAX, visit, &v) == 0);
    assert_int_equal(v.n, live - 10);
    for (size_t i = 1; i < v.n; i++)
        assert_true(v.seen[i] < v.seen[i - 1]);
    rc_listidx_destroy(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_newest_first_and_cursor),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_age_bounds),
        cmocka_unit_test(test_sweep_fifo),
        cmocka_unit_test(test_sweep_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
