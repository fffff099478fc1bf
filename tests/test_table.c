/* Unit tests of the open-addressing table (rc_table): thousands of random
 * keys, removal in random order with every other key still findable (the
 * backward-shift deletion), long chains of keys that share a home slot and
 * wrap around the end of the slot array, growth and snapshots; keys that
 * share a home slot and a tag; the 7/8 load limit; a long random run checked
 * against a reference model; and the fallback for addresses too wide for a
 * tag. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "rc_testkit.h"
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
    return rc_testkit_rnd(&rng_state);
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

/* A key whose first 8 bytes are h and whose second 8 bytes, read the way
 * the table reads them, carry tag in their top 16 bits (the tag bits the
 * table packs into a slot) and random bits below. */
static void key_with_hash_tag(uint8_t key[RC_KEY_LEN], uint64_t h, uint16_t tag)
{
    uint64_t b = (uint64_t) tag << 48 | (rnd() & ((UINT64_C(1) << 48) - 1));
    memcpy(key, &h, 8);
    memcpy(key + 8, &b, 8);
}

/* A first half whose home is the last slot at every capacity up to 2^35:
 * home() mixes h ^ (h >> 29), which is 0x7ffffffff here. */
#define HASH_LAST_SLOT UINT64_C(0x7ffffffc0)

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

/* Puts n objects (keys set) into a fresh 64-slot table t without making it
 * grow, checks every one, and shuffles order[] for removing them. */
static void s_fill_small(rc_table_t *t, obj_t *objs, size_t n, size_t *order)
{
    size_t bytes = rc_table_bytes(t);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rc_table_put(t, &objs[i]), 0);
        objs[i].stored = true;
    }
    assert_int_equal(rc_table_bytes(t), bytes);
    check_all(t, objs, n);
    shuffle(order, n);
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
        obj_t objs[N];
        size_t order[N];
        memset(objs, 0, sizeof objs);
        for (size_t i = 0; i < N; i++)
            key_with_hash(objs[i].key, homes[rnd() % (sizeof homes / sizeof homes[0])]);
        s_fill_small(t, objs, N, order);
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

static void test_replace(void **state)
{
    /* A moved copy takes its original's slot; every other entry, including
     * those sharing its home slot, stays reachable. */
    rc_table_t *t = new_table();
    enum { N = 40 };
    obj_t objs[N], copy;
    for (size_t i = 0; i < N; i++) {
        objs[i].id = i;
        key_with_hash(objs[i].key, 7 + (i % 3)); /* long shared chains */
        objs[i].key[15] = (uint8_t) i;           /* distinct keys, same homes */
        assert_int_equal(rc_table_put(t, &objs[i]), 0);
    }
    copy = objs[17];
    assert_int_equal(rc_table_replace(t, &objs[17], &copy), 0);
    assert_int_equal(rc_table_size(t), N);
    assert_ptr_equal(rc_table_get(t, copy.key), &copy);
    for (size_t i = 0; i < N; i++)
        if (i != 17)
            assert_ptr_equal(rc_table_get(t, objs[i].key), &objs[i]);
    /* The original is no longer stored; the copy can be removed. */
    assert_int_equal(rc_table_replace(t, &objs[17], &copy), -1);
    assert_int_equal(rc_table_remove(t, &objs[17]), -1);
    assert_int_equal(rc_table_remove(t, &copy), 0);
    assert_null(rc_table_get(t, copy.key));
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

/* Keys that share both their home slot and their tag, and differ only in
 * bits below the tag: the tag lets all of them through, the key comparison
 * must tell them apart. Their home is the last slot, so the chain wraps at
 * every capacity it grows through. */
static void test_same_home_and_tag(void **state)
{
    enum { N = 300 };
    rc_table_t *t = new_table();
    obj_t *objs = calloc(N, sizeof *objs);
    size_t order[N];
    for (size_t i = 0; i < N; i++) {
        key_with_hash_tag(objs[i].key, HASH_LAST_SLOT, 0xbeef);
        assert_int_equal(rc_table_put(t, &objs[i]), 0);
        objs[i].stored = true;
        if (i % 37 == 0)
            check_all(t, objs, N);
    }
    check_all(t, objs, N);
    /* A key with the same home and tag that is not stored. */
    uint8_t other[RC_KEY_LEN];
    key_with_hash_tag(other, HASH_LAST_SLOT, 0xbeef);
    assert_null(rc_table_get(t, other));
    shuffle(order, N);
    for (size_t k = 0; k < N; k++) {
        assert_int_equal(rc_table_remove(t, &objs[order[k]]), 0);
        objs[order[k]].stored = false;
        if (k % 11 == 0 || N - k < 20)
            check_all(t, objs, N);
    }
    assert_int_equal(rc_table_size(t), 0);
    rc_table_destroy(&t);
    free(objs);
}

/* Mixed homes around the end of the array, with tags from a set of three so
 * that neighbours often share a tag and sometimes a home as well: moving an
 * entry back into a hole must carry its tag with it. Stays at 56 of 64
 * slots, the most the table holds before it grows. */
static void test_wraparound_tags(void **state)
{
    enum { N = 56, ROUNDS = 200 };
    static const uint64_t homes[] = {59, 60, 61, 62, 63, 0, 1, 2};
    static const uint16_t tags[] = {0, 1, 0xffff};
    for (int round = 0; round < ROUNDS; round++) {
        rc_table_t *t = new_table();
        obj_t objs[N];
        size_t order[N];
        memset(objs, 0, sizeof objs);
        for (size_t i = 0; i < N; i++)
            key_with_hash_tag(objs[i].key, homes[rnd() % (sizeof homes / sizeof homes[0])], tags[rnd() % 3]);
        s_fill_small(t, objs, N, order);
        for (size_t k = 0; k < N; k++) {
            assert_int_equal(rc_table_remove(t, &objs[order[k]]), 0);
            objs[order[k]].stored = false;
            check_all(t, objs, N);
            if (rnd() % 3 == 0) {
                size_t back = order[rnd() % (k + 1)];
                if (!objs[back].stored) {
                    assert_int_equal(rc_table_put(t, &objs[back]), 0);
                    objs[back].stored = true;
                    check_all(t, objs, N);
                }
            }
        }
        rc_table_destroy(&t);
    }
}

/* The capacity of the table's current array: while a growth moves entries
 * across, rc_table_bytes also counts the old array, half as large. */
static size_t s_capacity(rc_table_t *t)
{
    size_t slots = rc_table_bytes(t) / 8, p = 1;
    while (p * 2 <= slots)
        p *= 2;
    return p;
}

/* The load never exceeds 7/8 after a put, and the table fills to exactly
 * 7/8 before it doubles (slots are 8 bytes). */
static void test_load_limit(void **state)
{
    enum { N = 120000 };
    rc_table_t *t = new_table();
    obj_t *objs = calloc(N, sizeof *objs);
    size_t slots = s_capacity(t), growths = 0;
    for (size_t i = 0; i < N; i++) {
        random_key(objs[i].key);
        assert_int_equal(rc_table_put(t, &objs[i]), 0);
        size_t now = s_capacity(t);
        if (now != slots) {
            assert_int_equal(now, 2 * slots);
            assert_int_equal(i, slots / 8 * 7); /* i entries were already in */
            slots = now;
            growths++;
        }
        assert_true(rc_table_size(t) * 8 <= slots * 7);
    }
    assert_true(growths >= 10);
    assert_int_equal(s_capacity(t), 262144);
    rc_table_destroy(&t);
    free(objs);
}

/* 200,000 random operations against a reference model (the stored flag),
 * filling to high load through several growths, then draining and
 * refilling: every get is checked, and all keys now and then. */
static void test_reference_model(void **state)
{
    enum { N = 30000, OPS = 200000 };
    rng_state = 0x9e3779b97f4a7c15ULL;
    rc_table_t *t = new_table();
    obj_t *objs = calloc(N, sizeof *objs);
    for (size_t i = 0; i < N; i++) {
        objs[i].id = (uint32_t) i;
        /* A fifth of the keys share a few homes and tags. */
        if (i % 5 == 0)
            key_with_hash_tag(objs[i].key, rnd() % 4096, (uint16_t) (rnd() % 4));
        else
            random_key(objs[i].key);
    }
    size_t stored = 0, max_stored = 0;
    for (size_t op = 0; op < OPS; op++) {
        /* 70% puts and removes, 30% gets. Puts dominate for the first half
         * (towards 90% of the keys stored), removes for the next quarter,
         * then they even out. */
        unsigned puts = op < OPS / 2 ? 63 : op < OPS * 3 / 4 ? 20 : 35;
        obj_t *o = &objs[rnd() % N];
        unsigned r = (unsigned) (rnd() % 100);
        if (r < puts) {
            if (!o->stored) {
                assert_int_equal(rc_table_put(t, o), 0);
                o->stored = true;
                stored++;
            }
        } else if (r < 70) {
            assert_int_equal(rc_table_remove(t, o), o->stored ? 0 : -1);
            stored -= o->stored;
            o->stored = false;
        } else if (r < 90) {
            uint8_t copy[RC_KEY_LEN];
            memcpy(copy, o->key, RC_KEY_LEN);
            assert_ptr_equal(rc_table_get(t, copy), o->stored ? o : NULL);
        } else {
            uint8_t missing[RC_KEY_LEN];
            random_key(missing);
            assert_null(rc_table_get(t, missing));
        }
        assert_int_equal(rc_table_size(t), stored);
        assert_true(stored * 8 <= rc_table_bytes(t) / 8 * 7);
        if (stored > max_stored)
            max_stored = stored;
        if (op % 20000 == 0)
            check_all(t, objs, N);
    }
    check_all(t, objs, N);
    assert_true(max_stored > N * 7 / 10); /* 21,000 of 32,768 slots and more */
    rc_table_destroy(&t);
    free(objs);
}

/* The snapshot holds the very pointers that were put, with no tag bits. */
/* Growth moves entries into the larger array a few at a time: while that
 * is under way, gets, replaces and removes find entries in either array,
 * and new puts go on. Moved and unmoved entries, crowded homes included. */
static void test_growth_in_progress(void **state)
{
    enum { N = 20000 };
    rng_state = 0x51ed2701a3c4b5d9ULL;
    rc_table_t *t = new_table();
    obj_t *objs = calloc(N, sizeof *objs), *copies = calloc(N, sizeof *copies);
    obj_t **cur = calloc(N, sizeof *cur);
    for (size_t i = 0; i < N; i++) {
        if (i % 4 == 0)
            key_with_hash_tag(objs[i].key, rnd() % 512, (uint16_t) (rnd() % 2));
        else
            random_key(objs[i].key);
        copies[i] = objs[i];
        cur[i] = &objs[i];
    }
    /* Fill until a growth has just begun: the table reports both arrays. */
    size_t n = 0;
    for (;;) {
        size_t before = rc_table_bytes(t);
        assert_int_equal(rc_table_put(t, &objs[n]), 0);
        n++;
        if (n > 1000 && rc_table_bytes(t) == before * 3)
            break;
        assert_true(n < N / 2);
    }
    /* Mid-move: every third entry replaced by its copy, every fifth
     * removed, all looked up after each step. */
    for (size_t i = 0; i < n; i++) {
        if (i % 3 == 0) {
            obj_t *other = cur[i] == &objs[i] ? &copies[i] : &objs[i];
            assert_int_equal(rc_table_replace(t, cur[i], other), 0);
            assert_int_equal(rc_table_replace(t, cur[i], other), -1); /* no longer stored */
            cur[i] = other;
        }
        if (i % 5 == 0) {
            assert_int_equal(rc_table_remove(t, cur[i]), 0);
            assert_int_equal(rc_table_remove(t, cur[i]), -1);
            cur[i] = NULL;
        }
    }
    size_t stored = 0;
    for (size_t i = 0; i < n; i++) {
        stored += cur[i] != NULL;
        assert_ptr_equal(rc_table_get(t, objs[i].key), cur[i]);
    }
    assert_int_equal(rc_table_size(t), stored);
    size_t count = 0;
    void **all = rc_table_snapshot(t, &count);
    assert_non_null(all);
    assert_int_equal(count, stored);
    free(all);
    /* More puts finish the move (the old array is freed: bytes halve). */
    for (size_t i = n; i < N; i++) {
        assert_int_equal(rc_table_put(t, &objs[i]), 0);
        cur[i] = &objs[i];
    }
    for (size_t i = 0; i < N; i++) {
        assert_ptr_equal(rc_table_get(t, objs[i].key), cur[i]);
        uint8_t missing[RC_KEY_LEN];
        random_key(missing);
        assert_null(rc_table_get(t, missing));
    }
    free(cur);
    free(copies);
    free(objs);
    rc_table_destroy(&t);
}

static void test_snapshot_pointers(void **state)
{
    enum { N = 3000 };
    rc_table_t *t = new_table();
    obj_t *objs = calloc(N, sizeof *objs);
    for (size_t i = 0; i < N; i++) {
        objs[i].id = (uint32_t) i;
        key_with_hash_tag(objs[i].key, rnd(), (uint16_t) (0xff00 | i)); /* non-zero tags */
        assert_int_equal(rc_table_put(t, &objs[i]), 0);
    }
    size_t count = 0;
    void **all = rc_table_snapshot(t, &count);
    assert_non_null(all);
    assert_int_equal(count, N);
    unsigned char *seen = calloc(N, 1);
    for (size_t i = 0; i < count; i++) {
        uintptr_t p = (uintptr_t) all[i], base = (uintptr_t) objs;
        assert_true(p >= base && p < base + N * sizeof *objs);
        assert_int_equal((p - base) % sizeof *objs, 0);
        size_t k = (p - base) / sizeof *objs;
        assert_ptr_equal(all[i], &objs[k]);
        assert_int_equal(seen[k], 0);
        seen[k] = 1;
    }
    free(seen);
    free(all);
    rc_table_destroy(&t);
    free(objs);
}

/* The fallback for addresses that leave no room for a tag. A second copy
 * of the table is built into this file with room for 36-bit addresses
 * only; objects in a mapping below 2^36 are stored with tags, and the first
 * object from a mapping above turns tagging off for the table. */
#define RC_TABLE_ADDR_BITS 36
#define rc_table_new       narrow_table_new
#define rc_table_destroy   narrow_table_destroy
#define rc_table_get       narrow_table_get
#define rc_table_put       narrow_table_put
#define rc_table_remove    narrow_table_remove
#define rc_table_replace   narrow_table_replace
#define rc_table_size      narrow_table_size
#define rc_table_snapshot  narrow_table_snapshot
#define rc_table_bytes     narrow_table_bytes
#include "rc_table.c"

static obj_t *map_at(uintptr_t where, size_t n)
{
    void *p = mmap((void *) where, n * sizeof(obj_t), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if ((uintptr_t) p != where) { /* a kernel older than MAP_FIXED_NOREPLACE */
        munmap(p, n * sizeof(obj_t));
        return NULL;
    }
    return p;
}

static void check_narrow(rc_table_t *t, obj_t *objs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t copy[RC_KEY_LEN];
        memcpy(copy, objs[i].key, RC_KEY_LEN);
        assert_ptr_equal(narrow_table_get(t, copy), objs[i].stored ? &objs[i] : NULL);
    }
}

static void test_untag_fallback(void **state)
{
    enum { N = 400 };
    obj_t *low = map_at(0x10000000, N), *high = map_at(0x500000000000, N);
    if (!low || !high) {
        if (low)
            munmap(low, N * sizeof(obj_t));
        if (high)
            munmap(high, N * sizeof(obj_t));
        skip();
    }
    rc_table_t *t = narrow_table_new(offsetof(obj_t, key));
    assert_non_null(t);
    for (size_t i = 0; i < N; i++) {
        key_with_hash_tag(low[i].key, rnd() % 64, (uint16_t) (rnd() % 2));
        key_with_hash_tag(high[i].key, rnd() % 64, (uint16_t) (rnd() % 2));
    }
    /* Tagged while every address fits, through two growths. */
    for (size_t i = 0; i < N / 2; i++) {
        assert_int_equal(narrow_table_put(t, &low[i]), 0);
        low[i].stored = true;
    }
    assert_int_not_equal(t->tag_mask, 0);
    check_narrow(t, low, N);
    check_narrow(t, high, N);
    assert_int_equal(narrow_table_remove(t, &high[0]), -1);
    /* One wide address: tags go, every entry stays reachable. */
    assert_int_equal(narrow_table_put(t, &high[0]), 0);
    high[0].stored = true;
    assert_int_equal(t->tag_mask, 0);
    check_narrow(t, low, N);
    check_narrow(t, high, N);
    /* Both kinds from then on, removals included. */
    for (size_t i = 1; i < N; i++) {
        assert_int_equal(narrow_table_put(t, &high[i]), 0);
        high[i].stored = true;
        if (i >= N / 2) {
            assert_int_equal(narrow_table_put(t, &low[i]), 0);
            low[i].stored = true;
        }
        if (i % 3 == 0) {
            assert_int_equal(narrow_table_remove(t, &low[i - 1]), 0);
            low[i - 1].stored = false;
        }
    }
    check_narrow(t, low, N);
    check_narrow(t, high, N);
    size_t count = 0, expect = 0;
    for (size_t i = 0; i < N; i++)
        expect += low[i].stored + high[i].stored;
    void **all = narrow_table_snapshot(t, &count);
    assert_non_null(all);
    assert_int_equal(count, expect);
    assert_int_equal(narrow_table_size(t), expect);
    for (size_t i = 0; i < count; i++) {
        obj_t *o = all[i];
        assert_true((o >= low && o < low + N) || (o >= high && o < high + N));
        assert_true(o->stored);
    }
    free(all);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(narrow_table_remove(t, &low[i]), low[i].stored ? 0 : -1);
        assert_int_equal(narrow_table_remove(t, &high[i]), 0);
    }
    assert_int_equal(narrow_table_size(t), 0);
    narrow_table_destroy(&t);
    munmap(low, N * sizeof(obj_t));
    munmap(high, N * sizeof(obj_t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_random_keys),
        cmocka_unit_test(test_same_home_slot),
        cmocka_unit_test(test_wraparound_mixed),
        cmocka_unit_test(test_remove_by_pointer),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_key_offset),
        cmocka_unit_test(test_same_home_and_tag),
        cmocka_unit_test(test_wraparound_tags),
        cmocka_unit_test(test_load_limit),
        cmocka_unit_test(test_reference_model),
        cmocka_unit_test(test_growth_in_progress),
        cmocka_unit_test(test_snapshot_pointers),
        cmocka_unit_test(test_untag_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
