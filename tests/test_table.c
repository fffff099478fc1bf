/* Unit tests of the open-addressing table (rc_table): thousands of random
 * keys, removal in random order with every other key still findable (the
 * backward-shift deletion), long chains of keys that share a home slot and
 * wrap around the end of the slot array, growth and snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rc_table.h"

typedef struct {
    uint32_t id;
    uint32_t pad;
    uint8_t key[RC_KEY_LEN];
    bool stored;
} obj_t;

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void random_key(uint8_t key[RC_KEY_LEN])
{
    uint64_t a = rnd(), b = rnd();
    memcpy(key, &a, 8);
    memcpy(key + 8, &b, 8);
}

/* A key whose first 8 bytes (the hash the table uses) are h. */
static void key_with_hash(uint8_t key[RC_KEY_LEN], uint64_t h)
{
    uint64_t b = rnd();
    memcpy(key, &h, 8);
    memcpy(key + 8, &b, 8);
}

static void shuffle(size_t *order, size_t n)
{
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = rnd() % i;
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

static rc_table_t *new_table(void)
{
    rc_table_t *t = rc_table_new(offsetof(obj_t, key));
    assert_non_null(t);
    return t;
}

/* Every stored object is found (by a copy of its key, not its pointer) and
 * every removed one is not. */
static void check_all(rc_table_t *t, obj_t *objs, size_t n)
{
    size_t stored = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t copy[RC_KEY_LEN];
        memcpy(copy, objs[i].key, RC_KEY_LEN);
        void *got = rc_table_get(t, copy);
        if (objs[i].stored) {
            stored++;
            if (got != &objs[i]) {
                print_error("object %zu (stored) not found: got %p\n", i, got);
                fail();
            }
        } else if (got != NULL) {
            print_error("object %zu (removed) still found\n", i);
            fail();
        }
    }
    assert_int_equal(rc_table_size(t), stored);
}

static void test_empty(void **state)
{
    rc_table_t *t = new_table();
    uint8_t key[RC_KEY_LEN] = {0};
    assert_int_equal(rc_table_size(t), 0);
    assert_null(rc_table_get(t, key));
    obj_t o = {0};
    assert_int_equal(rc_table_remove(t, &o), -1);
    assert_true(rc_table_bytes(t) > 0);
    size_t count = 99;
    void **all = rc_table_snapshot(t, &count);
    assert_non_null(all);
    assert_int_equal(count, 0);
    free(all);
    rc_table_destroy(&t);
    assert_null(t);
    rc_table_destroy(&t);
    rc_table_destroy(NULL);
}

static void test_random_keys(void **state)
{
    enum { N = 5000 };
    rc_table_t *t = new_table();
    obj_t *objs = calloc(N, sizeof *objs);
    size_t *order = malloc(N * sizeof *order);
    size_t bytes0 = rc_table_bytes(t);
    for (size_t i = 0; i < N; i++) {
        objs[i].id = (uint32_t) i;
        random_key(objs[i].key);
        assert_int_equal(rc_table_put(t, &objs[i]), 0);
        objs[i].stored = true;
        assert_int_equal(rc_table_size(t), i + 1);
    }
    /* Growth happened and everything survived it. */
    assert_true(rc_table_bytes(t) > bytes0);
    assert_true(rc_table_bytes(t) >= N * sizeof(void *));
    check_all(t, objs, N);

    /* A key not stored is not found, including one that differs from a
     * stored key only in its last byte (same home slot). */
    uint8_t other[RC_KEY_LEN];
    memcpy(other, objs[17].key, RC_KEY_LEN);
    other[RC_KEY_LEN - 1] ^= 1;
    assert_null(rc_table_get(t, other));

    /* Remove in random order; check every key regularly and the neighbours
     * of each removal always. */
    shuffle(order, N);
    for (size_t k = 0; k < N; k++) {
        obj_t *o = &objs[order[k]];
        assert_int_equal(rc_table_remove(t, o), 0);
        o->stored = false;
        assert_int_equal(rc_table_remove(t, o), -1); /* twice */
        assert_null(rc_table_get(t, o->key));
        for (size_t j = k + 1; j < k + 8 && j < N; j++)
            assert_ptr_equal(rc_table_get(t, objs[order[j]].key), &objs[order[j]]);
        if (k % 97 == 0 || N - k < 50)
            check_all(t, objs, N);
    }
    assert_int_equal(rc_table_size(t), 0);
    rc_table_destroy(&t);
    free(order);
    free(objs);
}

/* Keys that all hash to the same home slot: one long probe chain, which
 * wraps around the end of the slot array; removal from anywhere in it must
 * keep the rest reachable. */
static void run_collisions(uint64_t h, size_t n)
{
    rc_table_t *t = new_table();
    obj_t *objs = calloc(n, sizeof *objs);
    size_t *order = malloc(n * sizeof *order);
    for (size_t i = 0; i < n; i++) {
        key_with_hash(objs[i].key, h);
        assert_int_equal(rc_table_put(t, &objs[i]), 0);
        objs[i].stored = true;
    }
    check_all(t, objs, n);
    shuffle(order, n);
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(rc_table_remove(t, &objs[order[k]]), 0);
        objs[order[k]].stored = false;
        check_all(t, objs, n);
    }
    /* Put them back and remove again in another order. */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rc_table_put(t, &objs[i]), 0);
        objs[i].stored = true;
    }
    check_all(t, objs, n);
    shuffle(order, n);
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(rc_table_remove(t, &objs[order[k]]), 0);
        objs[order[k]].stored = false;
        check_all(t, objs, n);
    }
    rc_table_destroy(&t);
    free(order);
    free(objs);
}

static void test_same_home_slot(void **state)
{
    /* 40 keys in the initial 64 slots, home at slot 62: wraps at once. */
    run_collisions(62, 40);
    run_collisions(63, 47);
    run_collisions(0, 40);
    /* Many, through several growths. */
    run_collisions(0x1234567890abcdefULL, 150);
}

/* Mixed homes around the end of the array (60..63 and 0..5): chains from
 * different homes interleave across the wrap, so whether an entry may move
 * back into a hole depends on the cyclic comparison. */
static void test_wraparound_mixed(void **state)
{
    enum { N = 46, ROUNDS = 200 }; /* 46 < 48: the 64-slot table does not grow */
    static const uint64_t homes[] = {60, 61, 62, 63, 0, 1, 2, 3, 4, 5};
    for (int round = 0; round < ROUNDS; round++) {
        rc_table_t *t = new_table();
        size_t bytes = rc_table_bytes(t);
        obj_t objs[N];
        size_t order[N];
        memset(objs, 0, sizeof objs);
        for (size_t i = 0; i < N; i++) {
            key_with_hash(objs[i].key, homes[rnd() % (sizeof homes / sizeof homes[0])]);
            assert_int_equal(rc_table_put(t, &objs[i]), 0);
            objs[i].stored = true;
        }
        assert_int_equal(rc_table_bytes(t), bytes);
        check_all(t, objs, N);
        shuffle(order, N);
        for (size_t k = 0; k < N; k++) {
            assert_int_equal(rc_table_remove(t, &objs[order[k]]), 0);
            objs[order[k]].stored = false;
            check_all(t, objs, N);
            /* Re-insert some removed keys now and then, so removals happen
             * in tables of every shape. */
            if (k + 1 < N && rnd() % 4 == 0) {
                size_t back = order[k];
                assert_int_equal(rc_table_put(t, &objs[back]), 0);
                objs[back].stored = true;
                check_all(t, objs, N);
                assert_int_equal(rc_table_remove(t, &objs[back]), 0);
                objs[back].stored = false;
                check_all(t, objs, N);
            }
        }
        rc_table_destroy(&t);
    }
}

static void test_remove_by_pointer(void **state)
{
    /* Removal is by object: an equal key in another object is not stored. */
    rc_table_t *t = new_table();
    obj_t a = {.id = 1}, b = {.id = 2};
    random_key(a.key);
    memcpy(b.key, a.key, RC_KEY_LEN);
    assert_int_equal(rc_table_put(t, &a), 0);
    assert_int_equal(rc_table_remove(t, &b), -1);
    assert_ptr_equal(rc_table_get(t, a.key), &a);
    assert_int_equal(rc_table_remove(t, &a), 0);
    assert_null(rc_table_get(t, a.key));
    rc_table_destroy(&t);
}

static void test_snapshot(void **state)
{
    enum { N = 1500 };
    rc_table_t *t = new_table();
    obj_t *objs = calloc(N, sizeof *objs);
    for (size_t i = 0; i < N; i++) {
        objs[i].id = (uint32_t) i;
        random_key(objs[i].key);
        assert_int_equal(rc_table_put(t, &objs[i]), 0);
    }
    for (size_t i = 0; i < N; i += 3)
        assert_int_equal(rc_table_remove(t, &objs[i]), 0);
    size_t count = 0;
    void **all = rc_table_snapshot(t, &count);
    assert_non_null(all);
    assert_int_equal(count, rc_table_size(t));
    assert_int_equal(count, N - (N + 2) / 3);
    unsigned char *seen = calloc(N, 1);
    for (size_t i = 0; i < count; i++) {
        obj_t *o = all[i];
        assert_true(o >= objs && o < objs + N);
        assert_true(o->id % 3 != 0);
        assert_int_equal(seen[o->id], 0);
        seen[o->id] = 1;
    }
    free(seen);
    free(all);
    rc_table_destroy(&t);
    free(objs);
}

static void test_key_offset(void **state)
{
    /* The key may sit at offset 0 too. */
    typedef struct {
        uint8_t key[RC_KEY_LEN];
        int v;
    } small_t;
    rc_table_t *t = rc_table_new(0);
    assert_non_null(t);
    small_t s[100];
    for (int i = 0; i < 100; i++) {
        random_key(s[i].key);
        s[i].v = i;
        assert_int_equal(rc_table_put(t, &s[i]), 0);
    }
    for (int i = 0; i < 100; i++) {
        small_t *got = rc_table_get(t, s[i].key);
        assert_non_null(got);
        assert_int_equal(got->v, i);
    }
    rc_table_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_random_keys),
        cmocka_unit_test(test_same_home_slot),
        cmocka_unit_test(test_wraparound_mixed),
        cmocka_unit_test(test_remove_by_pointer),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_key_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
