/* Unit tests of rc_buf, the one growable buffer: appends, reserve (room in
 * all, not more), handing the bytes over, and typed arrays. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rc_buf.h"

static void test_bytes(void **state)
{
    rc_buf_t b = {0};
    assert_int_equal(rc_buf_append(&b, "abc", 3), 0);
    assert_int_equal(b.len, 3);
    assert_true(b.cap >= 3);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(rc_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 10003);
    assert_memory_equal(b.data, "abc0123456789", 13);
    assert_memory_equal(b.data + 9993, "0123456789", 10);
    size_t cap = b.cap;
    assert_int_equal(rc_buf_reserve(&b, 10), 0); /* room in all: nothing to do */
    assert_int_equal(b.cap, cap);
    assert_int_equal(rc_buf_append(&b, NULL, 0), 0);
    assert_int_equal(rc_buf_append(&b, "x", SIZE_MAX), -1); /* would overflow: refused, nothing appended */
    assert_int_equal(b.len, 10003);
    size_t len = 0;
    uint8_t *data = rc_buf_take(&b, &len);
    assert_int_equal(len, 10003);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(data);

    /* An empty buffer still hands over memory, and free leaves it reusable. */
    data = rc_buf_take(&b, &len);
    assert_non_null(data);
    assert_int_equal(len, 0);
    free(data);
    assert_int_equal(rc_buf_append(&b, "y", 1), 0);
    rc_buf_free(&b);
    assert_null(b.data);
    rc_buf_free(&b);
}

static void test_array(void **state)
{
    struct item {
        int a;
        char name[20];
    } *items = NULL;
    size_t cap = 0;
    for (int i = 0; i < 500; i++) {
        assert_int_equal(rc_buf_grow_array(&items, &cap, (size_t) i + 1, sizeof *items), 0);
        assert_true(cap >= (size_t) i + 1);
        items[i].a = i;
    }
    for (int i = 0; i < 500; i++)
        assert_int_equal(items[i].a, i);
    assert_int_equal(rc_buf_grow_array(&items, &cap, SIZE_MAX / 2, sizeof *items), -1);
    assert_int_equal(items[499].a, 499); /* unchanged after a refusal */
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_bytes), cmocka_unit_test(test_array)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
