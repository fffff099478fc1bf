/* Unit tests of the built-in functions' pure logic: parameter parsing, the
 * segmented prime sieve and the spin hash chain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rc_builtins.h"
#include "refcache_worker.h"

static void test_param_u64(void **state)
{
    uint64_t v = 0;
    assert_int_equal(rc_param_u64(NULL, 7, 0, 10, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(rc_param_u64("10", 7, 0, 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(rc_param_u64("0", 7, 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(rc_param_u64("11", 7, 0, 10, &v), -1);
    assert_int_equal(rc_param_u64("1", 7, 2, 10, &v), -1);
    assert_int_equal(rc_param_u64("", 7, 0, 10, &v), -1);
    assert_int_equal(rc_param_u64("-1", 7, 0, 10, &v), -1);
    assert_int_equal(rc_param_u64("+1", 7, 0, 10, &v), -1);
    assert_int_equal(rc_param_u64(" 1", 7, 0, 10, &v), -1);
    assert_int_equal(rc_param_u64("1x", 7, 0, 10, &v), -1);
    assert_int_equal(rc_param_u64("99999999999999999999999", 7, 0, UINT64_MAX, &v), -1);
    assert_int_equal(rc_param_u64("18446744073709551615", 7, 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
}

static void test_param_bool(void **state)
{
    bool b = true;
    assert_int_equal(rc_param_bool(NULL, false, &b), 0);
    assert_false(b);
    assert_int_equal(rc_param_bool("1", false, &b), 0);
    assert_true(b);
    assert_int_equal(rc_param_bool("0", true, &b), 0);
    assert_false(b);
    assert_int_equal(rc_param_bool("true", false, &b), 0);
    assert_true(b);
    assert_int_equal(rc_param_bool("yes", false, &b), -1);
    assert_int_equal(rc_param_bool("", false, &b), -1);
}

static bool is_prime(uint64_t x)
{
    if (x < 2)
        return false;
    for (uint64_t d = 2; d * d <= x; d++)
        if (x % d == 0)
            return false;
    return true;
}

/* The expected output, by trial division. */
static char *naive_primes(uint64_t n, size_t *len)
{
    rc_strbuf_t out = {0};
    for (uint64_t x = 2; x < n; x++) {
        if (!is_prime(x))
            continue;
        assert_int_equal(rc_strbuf_reserve(&out, 24), 0);
        out.len += (size_t) sprintf(out.data + out.len, "%llu\n", (unsigned long long) x);
    }
    *len = out.len;
    return out.data;
}

static void check_sieve(uint64_t n, uint64_t segment)
{
    rc_sieve_t *sieve = rc_sieve_new(n, segment);
    assert_non_null(sieve);
    rc_strbuf_t out = {0};
    int rc;
    int steps = 0;
    uint64_t last_done = 0;
    while ((rc = rc_sieve_step(sieve, &out)) == 1) {
        steps++;
        assert_true(rc_sieve_done(sieve) > last_done);
        last_done = rc_sieve_done(sieve);
    }
    assert_int_equal(rc, 0);
    assert_true(rc_sieve_done(sieve) == n);
    /* Further steps are harmless no-ops. */
    assert_int_equal(rc_sieve_step(sieve, &out), 0);
    size_t len;
    char *want = naive_primes(n, &len);
    assert_int_equal(out.len, len);
    if (len)
        assert_memory_equal(out.data, want, len);
    free(want);
    rc_strbuf_free(&out);
    rc_sieve_destroy(&sieve);
    assert_null(sieve);
}

static void test_sieve_small(void **state)
{
    uint64_t ns[] = {2, 3, 4, 5, 10, 11, 12, 30, 31, 100, 1000};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        check_sieve(ns[i], 0);
        check_sieve(ns[i], 1);
        check_sieve(ns[i], 7);
    }
}

static void test_sieve_segments(void **state)
{
    /* Segment boundaries that fall on primes, squares and composites. */
    check_sieve(20000, 97);
    check_sieve(20000, 128);
    check_sieve(50021, 1000);
    check_sieve(50021, 0);
}

static void test_sieve_text(void **state)
{
    rc_sieve_t *sieve = rc_sieve_new(30, 4);
    rc_strbuf_t out = {0};
    while (rc_sieve_step(sieve, &out) == 1)
        ;
    const char *want = "2\n3\n5\n7\n11\n13\n17\n19\n23\n29\n";
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);
    rc_strbuf_free(&out);
    rc_sieve_destroy(&sieve);
    rc_sieve_destroy(NULL);
}

static void test_sieve_count_large(void **state)
{
    /* pi(10^7) = 664579: counts lines rather than comparing text. */
    rc_sieve_t *sieve = rc_sieve_new(10000000, 0);
    rc_strbuf_t out = {0};
    while (rc_sieve_step(sieve, &out) == 1)
        ;
    size_t lines = 0;
    for (size_t i = 0; i < out.len; i++)
        lines += out.data[i] == '\n';
    assert_int_equal(lines, 664579);
    assert_memory_equal(out.data + out.len - 8, "9999991\n", 8);
    rc_strbuf_free(&out);
    rc_sieve_destroy(&sieve);
}

static void test_spin_deterministic(void **state)
{
    rc_spin_t a, b;
    char ha[65], hb[65];
    rc_spin_seed(&a, "payload", 7);
    rc_spin_run(&a, 0, 100000);
    rc_spin_hex(&a, ha);
    assert_int_equal(strlen(ha), 64);
    for (size_t i = 0; i < 64; i++)
        assert_non_null(strchr("0123456789abcdef", ha[i]));

    /* Any split into steps gives the same chain. */
    rc_spin_seed(&b, "payload", 7);
    for (uint64_t i = 0; i < 100000; i += 333) {
        uint64_t n = 100000 - i < 333 ? 100000 - i : 333;
        rc_spin_run(&b, i, n);
    }
    rc_spin_hex(&b, hb);
    assert_string_equal(ha, hb);

    /* A different payload or count gives a different hash. */
    rc_spin_seed(&b, "payloae", 7);
    rc_spin_run(&b, 0, 100000);
    rc_spin_hex(&b, hb);
    assert_string_not_equal(ha, hb);
    rc_spin_seed(&b, "payload", 7);
    rc_spin_run(&b, 0, 99999);
    rc_spin_hex(&b, hb);
    assert_string_not_equal(ha, hb);

    /* Empty payload and zero iterations are fine and stable. */
    rc_spin_seed(&a, NULL, 0);
    rc_spin_hex(&a, ha);
    rc_spin_seed(&b, "", 0);
    rc_spin_run(&b, 0, 0);
    rc_spin_hex(&b, hb);
    assert_string_equal(ha, hb);
}

static void test_builtin_table(void **state)
{
    size_t n = 0;
    const refcache_function_t *fns = refcache_builtin_functions(&n);
    assert_int_equal(n, 5);
    const char *names[] = {"echo", "sleep", "primes", "spin", "fail"};
    const bool cacheable[] = {true, false, true, true, false};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(fns[i].name, names[i]);
        assert_non_null(fns[i].fn);
        assert_int_equal(fns[i].cacheable, cacheable[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_u64),          cmocka_unit_test(test_param_bool),
        cmocka_unit_test(test_sieve_small),        cmocka_unit_test(test_sieve_segments),
        cmocka_unit_test(test_sieve_text),         cmocka_unit_test(test_sieve_count_large),
        cmocka_unit_test(test_spin_deterministic), cmocka_unit_test(test_builtin_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
