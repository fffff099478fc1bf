/* Unit tests of rc_pages: reassembling a result from Fetch pages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rc_pages.h"
#include "refcache.h"

#include <stdlib.h>
#include <string.h>

static void test_in_order(void **state)
{
    rc_pages_t p;
    rc_pages_init(&p);
    assert_false(rc_pages_done(&p));
    assert_int_equal(rc_pages_next_offset(&p), 0);
    assert_int_equal(rc_pages_add(&p, 0, 10, "abcd", 4), 0);
    assert_false(rc_pages_done(&p));
    assert_int_equal(rc_pages_next_offset(&p), 4);
    assert_int_equal(rc_pages_add(&p, 4, 10, "efgh", 4), 0);
    assert_int_equal(rc_pages_add(&p, 8, 10, "ij", 2), 0);
    assert_true(rc_pages_done(&p));
    size_t len;
    uint8_t *data = rc_pages_take(&p, &len);
    assert_int_equal(len, 10);
    assert_memory_equal(data, "abcdefghij", 10);
    free(data);
    rc_pages_free(&p);
}

static void test_empty_result(void **state)
{
    rc_pages_t p;
    rc_pages_init(&p);
    assert_int_equal(rc_pages_add(&p, 0, 0, NULL, 0), 0);
    assert_true(rc_pages_done(&p));
    size_t len = 99;
    uint8_t *data = rc_pages_take(&p, &len);
    assert_non_null(data);
    assert_int_equal(len, 0);
    free(data);
}

static void test_rejects(void **state)
{
    rc_pages_t p;
    rc_pages_init(&p);
    assert_int_equal(rc_pages_add(&p, 1, 10, "x", 1), REFCACHE_EOUTOFORDER);   /* gap */
    assert_int_equal(rc_pages_add(&p, 0, 3, "abcd", 4), REFCACHE_EOUTOFORDER); /* past the end */
    assert_int_equal(rc_pages_add(&p, 0, 10, "", 0), REFCACHE_EOUTOFORDER);    /* no progress */
    assert_int_equal(rc_pages_add(&p, 0, 10, "abc", 3), 0);
    assert_int_equal(rc_pages_add(&p, 3, 11, "d", 1), REFCACHE_EOUTOFORDER);   /* total changed */
    assert_int_equal(rc_pages_add(&p, 0, 10, "abc", 3), REFCACHE_EOUTOFORDER); /* repeat */
    assert_int_equal(rc_pages_add(&p, UINT64_MAX, 10, "a", 1), REFCACHE_EOUTOFORDER);
    rc_pages_free(&p);
}

static void test_many_pages(void **state)
{
    enum { TOTAL = 1000003, PAGE = 4096 };
    uint8_t *src = malloc(TOTAL);
    for (size_t i = 0; i < TOTAL; i++)
        src[i] = (uint8_t) (i * 31 + 7);
    rc_pages_t p;
    rc_pages_init(&p);
    while (!rc_pages_done(&p)) {
        uint64_t off = rc_pages_next_offset(&p);
        size_t n = TOTAL - off < PAGE ? TOTAL - off : PAGE;
        assert_int_equal(rc_pages_add(&p, off, TOTAL, src + off, n), 0);
    }
    size_t len;
    uint8_t *data = rc_pages_take(&p, &len);
    assert_int_equal(len, TOTAL);
    assert_memory_equal(data, src, TOTAL);
    free(data);
    free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_empty_result),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_many_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
