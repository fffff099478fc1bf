/* Unit tests of the shared helpers in proto/rc_common: code and state
 * names, hex, the clocks and the random source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rc_common.h"

static void test_code_names(void **state)
{
    static const char *const names[] = {
        "OK",        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
        "NOT_FOUND", "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED",   "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
        "DATA_LOSS", "UNAUTHENTICATED",
    };
    assert_int_equal(sizeof names / sizeof names[0], 17);
    for (int code = 0; code < 17; code++) {
        const char *n = rc_code_name(code);
        assert_string_equal(n, names[code]);
        assert_int_equal(rc_code_parse(n), code);
        char prefixed[64];
        snprintf(prefixed, sizeof prefixed, "CODE_%s", n);
        assert_int_equal(rc_code_parse(prefixed), code);
    }
    /* The names follow the generated enum. */
    assert_int_equal(rc_code_parse("NOT_FOUND"), REFCACHE__V1__CODE__CODE_NOT_FOUND);
    assert_int_equal(rc_code_parse("UNAUTHENTICATED"), REFCACHE__V1__CODE__CODE_UNAUTHENTICATED);
    assert_int_equal(rc_code_parse("CODE_DEADLINE_EXCEEDED"), REFCACHE__V1__CODE__CODE_DEADLINE_EXCEEDED);

    assert_string_equal(rc_code_name(17), "UNKNOWN");
    assert_string_equal(rc_code_name(-1), "UNKNOWN");
    assert_string_equal(rc_code_name(1000), "UNKNOWN");
    assert_int_equal(rc_code_parse(NULL), -1);
    assert_int_equal(rc_code_parse(""), -1);
    assert_int_equal(rc_code_parse("CODE_"), -1);
    assert_int_equal(rc_code_parse("not_found"), -1);
    assert_int_equal(rc_code_parse("NOT_FOUNDX"), -1);
    assert_int_equal(rc_code_parse("NOT_FOUN"), -1);
    assert_int_equal(rc_code_parse("CODE_CODE_OK"), -1);
}

static void test_state_names(void **state)
{
    assert_string_equal(rc_state_name(REFCACHE__V1__STATE__STATE_UNSPECIFIED), "UNSPECIFIED");
    assert_string_equal(rc_state_name(REFCACHE__V1__STATE__STATE_PENDING), "PENDING");
    assert_string_equal(rc_state_name(REFCACHE__V1__STATE__STATE_PROCESSING), "PROCESSING");
    assert_string_equal(rc_state_name(REFCACHE__V1__STATE__STATE_COMPLETE), "COMPLETE");
    assert_string_equal(rc_state_name(REFCACHE__V1__STATE__STATE_FAILED), "FAILED");
    assert_string_equal(rc_state_name(REFCACHE__V1__STATE__STATE_CANCELLED), "CANCELLED");
    assert_string_equal(rc_state_name(6), "UNSPECIFIED");
    assert_string_equal(rc_state_name(-1), "UNSPECIFIED");

    assert_false(rc_state_is_terminal(REFCACHE__V1__STATE__STATE_UNSPECIFIED));
    assert_false(rc_state_is_terminal(REFCACHE__V1__STATE__STATE_PENDING));
    assert_false(rc_state_is_terminal(REFCACHE__V1__STATE__STATE_PROCESSING));
    assert_true(rc_state_is_terminal(REFCACHE__V1__STATE__STATE_COMPLETE));
    assert_true(rc_state_is_terminal(REFCACHE__V1__STATE__STATE_FAILED));
    assert_true(rc_state_is_terminal(REFCACHE__V1__STATE__STATE_CANCELLED));
    assert_false(rc_state_is_terminal(6));
}

static void test_hex_round_trip(void **state)
{
    uint8_t bytes[256], back[256];
    char hex[2 * 256 + 1];
    for (int i = 0; i < 256; i++)
        bytes[i] = (uint8_t) i;
    rc_hex_encode(bytes, 256, hex);
    assert_int_equal(strlen(hex), 512);
    assert_memory_equal(hex, "000102030405060708090a0b0c0d0e0f10", 34);
    assert_string_equal(hex + 2 * 250, "fafbfcfdfeff");
    assert_int_equal(rc_hex_decode(hex, 512, back, 256), 0);
    assert_memory_equal(back, bytes, 256);

    /* Upper case decodes too. */
    uint8_t two[2];
    assert_int_equal(rc_hex_decode("ABcd", 4, two, 2), 0);
    assert_int_equal(two[0], 0xab);
    assert_int_equal(two[1], 0xcd);

    /* Empty. */
    char empty[1] = {'x'};
    rc_hex_encode(bytes, 0, empty);
    assert_string_equal(empty, "");
    assert_int_equal(rc_hex_decode("", 0, two, 0), 0);

    /* A ref_id is 16 bytes, 32 characters. */
    uint8_t id[16];
    char id_hex[RC_REF_ID_LEN + 1];
    assert_int_equal(rc_random_bytes(id, sizeof id), 0);
    rc_hex_encode(id, sizeof id, id_hex);
    assert_int_equal(strlen(id_hex), RC_REF_ID_LEN);
    uint8_t id2[16];
    assert_int_equal(rc_hex_decode(id_hex, strlen(id_hex), id2, sizeof id2), 0);
    assert_memory_equal(id, id2, 16);
}

static void test_hex_bad(void **state)
{
    uint8_t out[4] = {0x11, 0x22, 0x33, 0x44};
    /* Wrong lengths. */
    assert_int_equal(rc_hex_decode("0011223", 7, out, 4), -1);
    assert_int_equal(rc_hex_decode("001122334", 9, out, 4), -1);
    assert_int_equal(rc_hex_decode("00112233", 8, out, 3), -1);
    assert_int_equal(rc_hex_decode("", 0, out, 4), -1);
    assert_int_equal(rc_hex_decode(NULL, 8, out, 4), -1);
    /* Bad characters, in every position. */
    static const char *const bad[] = {
        "g0112233", "0g112233", "001122z3", "0011223g", "00 12233", "0x112233",
        "-0112233", "00112:33", "00112@33", "0011`233", "001122G3", "00\0x2233",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (rc_hex_decode(bad[i], 8, out, 4) != -1) {
            print_error("bad hex #%zu accepted\n", i);
            fail();
        }
    }
    /* Bytes past 0x7f are not hex digits either. */
    char high[9] = "00112233";
    high[3] = (char) 0xb1;
    assert_int_equal(rc_hex_decode(high, 8, out, 4), -1);
}

static void test_random_bytes(void **state)
{
    uint8_t a[64], b[64];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    assert_int_equal(rc_random_bytes(a, sizeof a), 0);
    assert_int_equal(rc_random_bytes(b, sizeof b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    static const uint8_t zero[64] = {0};
    assert_memory_not_equal(a, zero, sizeof a);
    assert_int_equal(rc_random_bytes(a, 0), 0);
    /* A large request (getrandom may return it in pieces). */
    static uint8_t big[1 << 20];
    assert_int_equal(rc_random_bytes(big, sizeof big), 0);
    size_t zeros = 0;
    for (size_t i = 0; i < sizeof big; i++)
        zeros += big[i] == 0;
    /* About 4096 expected; far from all or none. */
    assert_true(zeros > 3000 && zeros < 5500);
}

static void test_clocks(void **state)
{
    uint64_t m1 = rc_mono_us();
    uint64_t m2 = rc_mono_us();
    assert_true(m2 >= m1);
    /* After 2020-01-01, before 2100. */
    uint64_t w = rc_wall_us();
    assert_true(w > 1577836800ULL * 1000000ULL);
    assert_true(w < 4102444800ULL * 1000000ULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_code_names),     cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_hex_round_trip), cmocka_unit_test(test_hex_bad),
        cmocka_unit_test(test_random_bytes),   cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
