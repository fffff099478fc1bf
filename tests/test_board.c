/* The cancel board (workers/rc_board.h): the single-producer,
 * single-consumer ring on its own (capacity, full, wrap-around of the ring
 * and of its indices, the missed count) and with a producer and a consumer
 * thread passing millions of entries, and the registry that finds a board
 * by routing id. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rc_board.h"
#include "rc_valgrind.h"

/* Entry number i: its 16 bytes and its attempt, all derived from i, so that
 * a torn, repeated, lost or reordered entry shows. */
static void entry_of(uint64_t i, uint8_t ref[16], uint32_t *attempt)
{
    uint64_t inv = ~i * 0x9e3779b97f4a7c15ull;
    memcpy(ref, &i, 8);
    memcpy(ref + 8, &inv, 8);
    *attempt = (uint32_t) (i * 2654435761u) ^ (uint32_t) (i >> 32);
}

static void assert_entry(const rc_board_entry_t *e, uint64_t i)
{
    uint8_t ref[16];
    uint32_t attempt;
    entry_of(i, ref, &attempt);
    assert_memory_equal(e->ref, ref, 16);
    assert_int_equal(e->attempt, attempt);
}

static void post_n(rc_board_t *b, uint64_t from, uint64_t n)
{
    for (uint64_t i = from; i < from + n; i++) {
        uint8_t ref[16];
        uint32_t attempt;
        entry_of(i, ref, &attempt);
        assert_true(rc_board_post(b, ref, attempt));
    }
}

static void take_n(rc_board_t *b, uint64_t from, uint64_t n)
{
    rc_board_entry_t e;
    for (uint64_t i = from; i < from + n; i++) {
        assert_true(rc_board_take(b, &e));
        assert_entry(&e, i);
    }
}

static void test_capacity(void **state)
{
    (void) state;
    /* At least twice credit + 1 (rc_board.h says why), a power of two. */
    assert_int_equal(rc_board_capacity_for(1), 4);
    assert_int_equal(rc_board_capacity_for(2), 8);
    assert_int_equal(rc_board_capacity_for(3), 8);
    assert_int_equal(rc_board_capacity_for(64), 256);
    assert_int_equal(rc_board_capacity_for(256), 1024);
    assert_int_equal(rc_board_capacity_for(1024), 4096);
    /* A forced capacity must be a power of two of at least 2. */
    assert_null(rc_board_registry_new(1));
    assert_null(rc_board_registry_new(3));
    assert_null(rc_board_registry_new(6));
    rc_board_registry_t *r = rc_board_registry_new(0);
    assert_non_null(r);
    rc_board_t *b = rc_board_add(r, 256);
    assert_non_null(b);
    assert_int_equal(b->mask + 1, 1024);
    assert_int_equal((uintptr_t) b % 64, 0);
    rc_board_registry_destroy(&r);
    assert_null(r);
    rc_board_registry_destroy(&r); /* NULL is fine */
}

static void test_full_and_wrap(void **state)
{
    (void) state;
    rc_board_registry_t *r = rc_board_registry_new(4);
    rc_board_t *b = rc_board_add(r, 256); /* the forced capacity wins over the credit */
    assert_non_null(b);
    rc_board_entry_t e;
    assert_false(rc_board_take(b, &e));
    /* Full at four: the fifth is refused and changes nothing. */
    post_n(b, 0, 4);
    uint8_t ref[16];
    uint32_t attempt;
    entry_of(4, ref, &attempt);
    assert_false(rc_board_post(b, ref, attempt));
    take_n(b, 0, 1);
    post_n(b, 4, 1);
    assert_false(rc_board_post(b, ref, attempt));
    take_n(b, 1, 4);
    assert_false(rc_board_take(b, &e));
    /* Around the ring many times, at every fill level. */
    uint64_t next_post = 5, next_take = 5;
    for (int round = 0; round < 1000; round++) {
        uint64_t n = (uint64_t) (round % 4) + 1;
        post_n(b, next_post, n);
        next_post += n;
        take_n(b, next_take, n);
        next_take += n;
        assert_false(rc_board_take(b, &e));
    }
    /* The indices themselves wrap past SIZE_MAX: unsigned differences. */
    atomic_store(&b->head, SIZE_MAX - 5);
    atomic_store(&b->tail, SIZE_MAX - 5);
    for (int round = 0; round < 8; round++) {
        post_n(b, next_post, 4);
        assert_false(rc_board_post(b, ref, attempt));
        take_n(b, next_take, 4);
        next_post += 4;
        next_take += 4;
        assert_false(rc_board_take(b, &e));
    }
    assert_true(atomic_load(&b->head) < 64); /* it did wrap */
    rc_board_registry_destroy(&r);
}

static void test_missed(void **state)
{
    (void) state;
    rc_board_registry_t *r = rc_board_registry_new(0);
    rc_board_t *b = rc_board_add(r, 4);
    assert_false(rc_board_missing(b));
    rc_board_miss(b);
    rc_board_miss(b);
    assert_true(rc_board_missing(b));
    rc_board_settle(b);
    assert_true(rc_board_missing(b));
    rc_board_settle(b);
    assert_false(rc_board_missing(b));
    rc_board_registry_destroy(&r);
}

static void test_registry(void **state)
{
    (void) state;
    rc_board_registry_t *r = rc_board_registry_new(0);
    rc_board_t *a = rc_board_add(r, 2), *b = rc_board_add(r, 8);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a != b);
    /* Not registered under any id yet, not even "". */
    assert_null(rc_board_find(r, ""));
    assert_null(rc_board_find(r, "p-0"));
    rc_board_name(r, a, "p-0");
    rc_board_name(r, b, "p-1");
    assert_ptr_equal(rc_board_find(r, "p-0"), a);
    assert_ptr_equal(rc_board_find(r, "p-1"), b);
    assert_null(rc_board_find(r, "p-2"));
    assert_null(rc_board_find(r, "p-"));
    /* A thread that reconnects takes a new id: the old one finds nothing. */
    rc_board_name(r, a, "p-0.1");
    assert_null(rc_board_find(r, "p-0"));
    assert_ptr_equal(rc_board_find(r, "p-0.1"), a);
    rc_board_registry_destroy(&r);
}

/* Two threads: the producer posts count entries in order, spinning while
 * the board is full; the consumer takes them and checks each. */
typedef struct {
    rc_board_t *board;
    uint64_t count;
    uint64_t full; /* posts refused (the board was full) */
} spsc_t;

static void *producer(void *arg)
{
    spsc_t *s = arg;
    for (uint64_t i = 0; i < s->count; i++) {
        uint8_t ref[16];
        uint32_t attempt;
        entry_of(i, ref, &attempt);
        while (!rc_board_post(s->board, ref, attempt)) {
            s->full++;
            sched_yield();
        }
    }
    return NULL;
}

static void spsc_run(size_t capacity, uint64_t count)
{
    rc_board_registry_t *r = rc_board_registry_new(capacity);
    spsc_t s = {.board = rc_board_add(r, 256), .count = count};
    assert_non_null(s.board);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, producer, &s), 0);
    uint64_t empty = 0;
    rc_board_entry_t e;
    for (uint64_t i = 0; i < count;) {
        if (!rc_board_take(s.board, &e)) {
            empty++;
            sched_yield();
            continue;
        }
        /* Checked by hand: a cmocka assert per entry would dominate. */
        uint8_t ref[16];
        uint32_t attempt;
        entry_of(i, ref, &attempt);
        if (memcmp(e.ref, ref, 16) != 0 || e.attempt != attempt)
            fail_msg("entry %llu is wrong", (unsigned long long) i);
        i++;
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_false(rc_board_take(s.board, &e));
    printf("spsc: %llu entries through %zu slots; producer found it full %llu times, consumer empty %llu\n",
           (unsigned long long) count, capacity, (unsigned long long) s.full, (unsigned long long) empty);
    rc_board_registry_destroy(&r);
}

static void test_spsc_threads(void **state)
{
    (void) state;
    /* Fewer under valgrind, which runs one thread at a time. */
    uint64_t n = RUNNING_ON_VALGRIND ? 100000 : 4000000;
    spsc_run(1024, n);  /* the size a credit of 256 gets */
    spsc_run(4, n / 4); /* tiny: full and empty all the time */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity), cmocka_unit_test(test_full_and_wrap), cmocka_unit_test(test_missed),
        cmocka_unit_test(test_registry), cmocka_unit_test(test_spsc_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
