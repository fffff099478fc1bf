/* Unit tests of rc_json: escaping keeps any bytes valid JSON; and of
 * rc_json_info: Stats as JSON names every field of StatsReply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rc_json.h"
#include "rc_json_info.h"
#include "refcache.pb-c.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static void s_expect_escape(const void *in, size_t len, const char *want)
{
    char out[256];
    size_t need = rc_json_escape(in, len, out, sizeof out);
    assert_string_equal(out, want);
    assert_int_equal(need, strlen(want));
}

static void test_plain_and_specials(void **state)
{
    s_expect_escape("hello", 5, "hello");
    s_expect_escape("a\"b\\c", 5, "a\\\"b\\\\c");
    s_expect_escape("l1\nl2\tx\r", 8, "l1\\nl2\\tx\\r");
    s_expect_escape("\x01\x1f\x7f", 3, "\\u0001\\u001f\\u007f");
    s_expect_escape("a\0b", 3, "a\\u0000b");
}

static void test_utf8_passes_invalid_escaped(void **state)
{
    /* é (2 bytes), € (3 bytes), 😀 (4 bytes) pass through unchanged. */
    s_expect_escape("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    /* Lone continuation byte, truncated sequence, overlong, surrogate, > U+10FFFF. */
    s_expect_escape("\x80", 1, "\\u0080");
    s_expect_escape("\xc3", 1, "\\u00c3");
    s_expect_escape("\xe2\x82", 2, "\\u00e2\\u0082");
    s_expect_escape("\xc0\xaf", 2, "\\u00c0\\u00af");
    s_expect_escape("\xe0\x80\xaf", 3, "\\u00e0\\u0080\\u00af");
    s_expect_escape("\xed\xa0\x80", 3, "\\u00ed\\u00a0\\u0080");
    s_expect_escape("\xf4\x90\x80\x80", 4, "\\u00f4\\u0090\\u0080\\u0080");
    s_expect_escape("\xff\xfe", 2, "\\u00ff\\u00fe");
}

static void test_escape_truncates_like_snprintf(void **state)
{
    char out[4];
    size_t need = rc_json_escape("a\"bc", 4, out, sizeof out);
    assert_int_equal(need, 5);
    assert_int_equal(strlen(out), 3);
    assert_int_equal(rc_json_escape("\xff", 1, NULL, 0), 6);
}

static void test_object(void **state)
{
    rc_json_t *json = rc_json_new();
    assert_non_null(json);
    rc_json_str(json, "code", "OK");
    rc_json_str(json, "message", NULL);
    rc_json_uint(json, "n", UINT64_MAX);
    rc_json_bool(json, "t", true);
    rc_json_bool(json, "f", false);
    rc_json_bytes(json, "result", "x\xffy", 3);
    const char *text = rc_json_finish(json);
    assert_string_equal(text,
                        "{\"code\": \"OK\", \"message\": \"\", \"n\": 18446744073709551615, \"t\": true, "
                        "\"f\": false, \"result\": \"x\\u00ffy\"}");
    /* finish is idempotent */
    assert_string_equal(rc_json_finish(json), text);
    rc_json_destroy(&json);
    assert_null(json);
    rc_json_destroy(&json);
}

/* Nested objects and numbers with decimals, as the bench's report uses. */
static void test_nested(void **state)
{
    rc_json_t *j = rc_json_new();
    assert_non_null(j);
    rc_json_str(j, "a", "x");
    rc_json_begin(j, "errors");
    rc_json_end(j);
    rc_json_begin(j, "h");
    rc_json_uint(j, "count", 2);
    rc_json_begin(j, "in");
    rc_json_double(j, "p50", 1.23456);
    rc_json_end(j);
    rc_json_double(j, "bad", 0.0 / 0.0);
    rc_json_end(j);
    rc_json_bool(j, "z", true);
    rc_json_begin(j, "open"); /* closed by finish */
    assert_string_equal(rc_json_finish(j),
                        "{\"a\": \"x\", \"errors\": {}, \"h\": {\"count\": 2, \"in\": {\"p50\": 1.235}, "
                        "\"bad\": 0.000}, \"z\": true, \"open\": {}}");
    rc_json_destroy(&j);
}

static void test_arrays(void **state)
{
    (void) state;
    rc_json_t *j = rc_json_new();
    assert_non_null(j);
    rc_json_array(j, "tasks");
    rc_json_element(j);
    rc_json_str(j, "ref_id", "a");
    rc_json_array(j, "fns");
    rc_json_element_str(j, "echo");
    rc_json_element_str(j, "sl\"eep");
    rc_json_end(j);
    rc_json_end(j);
    rc_json_element(j);
    rc_json_end(j);
    rc_json_end(j);
    rc_json_array(j, "none");
    rc_json_end(j);
    rc_json_uint(j, "n", 2);
    rc_json_array(j, "open"); /* closed by finish */
    assert_string_equal(rc_json_finish(j),
                        "{\"tasks\": [{\"ref_id\": \"a\", \"fns\": [\"echo\", \"sl\\\"eep\"]}, {}], "
                        "\"none\": [], \"n\": 2, \"open\": []}");
    rc_json_destroy(&j);
    /* An element outside an array is a mistake: no output. */
    j = rc_json_new();
    rc_json_element_str(j, "x");
    assert_null(rc_json_finish(j));
    rc_json_destroy(&j);
}

static void test_large_binary(void **state)
{
    enum { N = 100000 };
    static unsigned char bytes[N];
    for (size_t i = 0; i < N; i++)
        bytes[i] = (unsigned char) (i * 7);
    rc_json_t *json = rc_json_new();
    rc_json_bytes(json, "result", bytes, N);
    const char *text = rc_json_finish(json);
    assert_non_null(text);
    /* Every byte is escaped or printable ASCII: the output is pure ASCII
     * except for valid UTF-8 sequences, and ends with the closing brace. */
    size_t len = strlen(text);
    assert_true(len > N);
    assert_int_equal(text[len - 1], '}');
    rc_json_destroy(&json);
}

/* Every field of StatsReply is one of rc_stats_fields or one of the four
 * that are not counters, and rc_json_stats writes each: a field added to
 * the .proto and refcache_stats_t but not to the table fails here. */
static void test_stats_fields_match_the_proto(void **state)
{
    (void) state;
    static const char *const others[] = {"draining", "store_path", "store_error", "version"};
    const ProtobufCMessageDescriptor *d = &refcache__v1__stats_reply__descriptor;
    assert_int_equal(d->n_fields, rc_stats_field_count + 4);
    refcache_stats_t s;
    memset(&s, 0, sizeof s);
    rc_json_t *json = rc_json_new();
    rc_json_stats(json, &s);
    const char *text = rc_json_finish(json);
    assert_non_null(text);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const char *name = d->fields[i].name;
        bool found = false;
        for (size_t k = 0; k < rc_stats_field_count && !found; k++)
            found = strcmp(rc_stats_fields[k].name, name) == 0;
        for (size_t k = 0; k < 4 && !found; k++)
            found = strcmp(others[k], name) == 0;
        if (!found)
            fail_msg("StatsReply.%s is not in rc_stats_fields", name);
        char key[80];
        snprintf(key, sizeof key, "\"%s\":", name);
        if (!strstr(text, key))
            fail_msg("rc_json_stats does not write %s", name);
    }
    rc_json_destroy(&json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_specials),
        cmocka_unit_test(test_utf8_passes_invalid_escaped),
        cmocka_unit_test(test_escape_truncates_like_snprintf),
        cmocka_unit_test(test_object),
        cmocka_unit_test(test_large_binary),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_stats_fields_match_the_proto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
