/* rc_arena, the allocator the three codecs decode into: bumps in its buffer,
 * blocks for what does not fit (freed at the reset, or one by one through
 * protobuf-c's free), growth to fit, a thread's free list, the process-wide
 * pool and its count. Run under ASan and valgrind, every test ends with
 * nothing leaked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rc_arena.h"

static void test_bump_then_blocks(void **state)
{
    (void) state;
    rc_arena_t *a = rc_arena_new(64);
    assert_non_null(a);
    uint8_t *p = rc_arena_alloc(a, 1), *q = rc_arena_alloc(a, 17);
    assert_ptr_equal(p, a->buf);
    assert_ptr_equal(rc_arena_of(p), a);
    assert_ptr_equal(q, a->buf + RC_ARENA_ALIGN); /* aligned for any type */
    assert_int_equal(a->used, 3 * RC_ARENA_ALIGN);
    memset(q, 0xab, 17);
    uint8_t *big = rc_arena_alloc(a, 100); /* past the buffer: a block */
    assert_non_null(big);
    assert_true(big < a->buf || big >= a->buf + a->cap);
    assert_int_equal((uintptr_t) big % RC_ARENA_ALIGN, 0);
    memset(big, 1, 100);
    assert_int_equal(a->spilled, 100);
    assert_null(rc_arena_alloc(a, SIZE_MAX)); /* no such memory: NULL, and said */
    assert_true(a->failed);
    rc_arena_reset(a);
    assert_int_equal(a->used, 0);
    assert_int_equal(a->spilled, 0);
    assert_false(a->failed);
    assert_ptr_equal(rc_arena_alloc(a, 8), a->buf);
    rc_arena_destroy(&a);
    assert_null(a);
    rc_arena_destroy(&a); /* NULL is fine */
}

/* protobuf-c frees what it allocated when an unpack fails half-way: a block
 * goes at once (the list stays whole), buffer memory stays to the reset. */
static void test_protobuf_c_free(void **state)
{
    (void) state;
    rc_arena_t *a = rc_arena_new(32);
    assert_non_null(a);
    void *in = a->pa.alloc(a->pa.allocator_data, 16);
    void *b[3];
    for (int i = 0; i < 3; i++)
        assert_non_null(b[i] = a->pa.alloc(a->pa.allocator_data, 64));
    a->pa.free(a->pa.allocator_data, b[1]);
    a->pa.free(a->pa.allocator_data, b[2]);
    a->pa.free(a->pa.allocator_data, in);
    a->pa.free(a->pa.allocator_data, NULL);
    assert_int_equal(a->used, RC_ARENA_ALIGN);
    rc_arena_reset(a); /* frees b[0], the last one on the list */
    rc_arena_destroy(&a);
}

static void test_reset_to_fit_grows(void **state)
{
    (void) state;
    rc_arena_t *a = rc_arena_new(0); /* the client starts with no buffer */
    assert_non_null(a);
    assert_non_null(rc_arena_alloc(a, 100));
    assert_non_null(rc_arena_alloc(a, 28));
    rc_arena_reset_to_fit(a);
    assert_int_equal(a->cap, 2 * 128);
    assert_non_null(rc_arena_alloc(a, 100));
    assert_non_null(rc_arena_alloc(a, 28));
    assert_int_equal(a->spilled, 0); /* the same message fits now */
    rc_arena_reset_to_fit(a);
    assert_int_equal(a->cap, 256); /* and nothing grew */
    assert_non_null(rc_arena_alloc(a, 1000));
    rc_arena_reset_to_fit(a); /* a grown buffer is replaced, not leaked */
    assert_true(a->cap >= 2000);
    rc_arena_destroy(&a);
}

static void test_free_list(void **state)
{
    (void) state;
    rc_arena_list_t list = {0};
    rc_arena_t *a = rc_arena_list_take(&list, 4096);
    assert_non_null(a);
    assert_int_equal(a->users, 1);
    assert_non_null(rc_arena_alloc(a, 5000)); /* a block, freed when given back */
    rc_arena_list_give(&list, a);
    assert_ptr_equal(list.head, a);
    assert_int_equal(a->used, 0);
    rc_arena_t *again = rc_arena_list_take(&list, 100);
    assert_ptr_equal(again, a); /* reused: big enough */
    assert_null(list.head);
    assert_non_null(rc_arena_alloc(again, 4096)); /* usable again after the poisoning */
    rc_arena_list_give(&list, again);
    rc_arena_t *bigger = rc_arena_list_take(&list, 8192);
    assert_ptr_not_equal(bigger, a); /* too small: a new one, the old stays */
    assert_ptr_equal(list.head, a);
    assert_true(bigger->cap >= 8192);
    rc_arena_list_give(&list, bigger);
    rc_arena_list_free(&list);
    assert_null(list.head);
}

static void test_pool(void **state)
{
    (void) state;
    enum { N = 20 }; /* more than the pool's static arenas */
    size_t before = rc_arena_taken();
    rc_arena_t *a[N];
    for (int i = 0; i < N; i++) {
        assert_non_null(a[i] = rc_arena_take());
        assert_int_equal(rc_arena_taken(), before + (size_t) i + 1);
        uint8_t *p = rc_arena_alloc(a[i], 64);
        assert_non_null(p);
        memset(p, i, 64);
    }
    assert_int_equal(a[0]->cap > 0, 1);
    assert_int_equal(a[N - 1]->cap, 0); /* a stand-in: every allocation a block */
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            assert_ptr_not_equal(a[i], a[j]);
    for (int i = 0; i < N; i++)
        rc_arena_give(a[i]);
    rc_arena_give(NULL);
    assert_int_equal(rc_arena_taken(), before);
    rc_arena_t *b = rc_arena_take(); /* a static one again, reset */
    assert_non_null(b);
    assert_int_equal(b->used, 0);
    assert_true(b->cap > 0);
    rc_arena_give(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bump_then_blocks),
        cmocka_unit_test(test_protobuf_c_free),
        cmocka_unit_test(test_reset_to_fit_grows),
        cmocka_unit_test(test_free_list),
        cmocka_unit_test(test_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
