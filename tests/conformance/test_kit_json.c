/* Unit tests of the conformance runner's own parts: the JSON reader
 * (rc_jdoc), protobuf's JSON mapping through descriptors (rc_pbjson) and the
 * pattern matcher (rc_kitmatch), without a broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "rc_jdoc.h"
#include "rc_kitmatch.h"
#include "rc_pbjson.h"
#include "refcache.pb-c.h"

static rc_jdoc_t *parse(const char *text)
{
    char err[200];
    rc_jdoc_t *v = rc_jdoc_parse(text, strlen(text), err, sizeof err);
    if (!v)
        fail_msg("%s: %s", text, err);
    return v;
}

static void assert_prints(const rc_jdoc_t *v, const char *want)
{
    char *got = rc_jdoc_print(v, 0);
    assert_string_equal(got, want);
    free(got);
}

static void test_parse_values(void **state)
{
    (void) state;
    rc_jdoc_t *v = parse(" {\"a\": [1, -2.5e3, true, false, null], \"s\": "
                         "\"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\", "
                         "\"big\": 18446744073709551615, \"e\": {}} ");
    assert_prints(v, "{\"a\": [1, -2.5e3, true, false, null], \"s\": "
                     "\"q\\\"\\\\/\\u0008\\u000c\\u000a\\u000d\\u0009\xc3\xa9"
                     "\xf0\x9f\x98\x80\", \"big\": 18446744073709551615, \"e\": {}}");
    bool neg;
    uint64_t mag;
    assert_int_equal(rc_jdoc_integer(rc_jdoc_get(v, "big"), &neg, &mag), 0);
    assert_false(neg);
    assert_true(mag == UINT64_MAX);
    assert_int_equal(rc_jdoc_integer(rc_jdoc_get(v, "a")->items[1], &neg, &mag), -1); /* not an integer */
    rc_jdoc_destroy(&v);
    assert_null(v);
}

static void test_parse_errors(void **state)
{
    (void) state;
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"", "line 1 col 1: unexpected end"},
        {"{\"a\": 1,}", "line 1 col 9: expected a string key"},
        {"[1 2]", "expected ',' or ']'"},
        {"\"abc", "unterminated string"},
        {"\"\\x\"", "bad escape"},
        {"\"\\ud800\"", "lone surrogate"},
        {"01", "text after the value"},
        {"{\n  \"a\": tru}", "line 2 col 8"},
        {"[1.]", "digits expected"},
        {"\"a\tb\"", "control character"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[200] = "";
        rc_jdoc_t *v = rc_jdoc_parse(bad[i].text, strlen(bad[i].text), err, sizeof err);
        if (v || !strstr(err, bad[i].why))
            fail_msg("%s: wanted an error with \"%s\", got \"%s\"", bad[i].text, bad[i].why,
                     v ? "(parsed)" : err);
    }
}

/* A Request in protobuf's JSON mapping packs to what protobuf-c packs, and
 * its tree is the same JSON again (every field without presence added). */
static void test_pbjson_round_trip(void **state)
{
    (void) state;
    rc_jdoc_t *json =
        parse("{\"id\": \"7\", \"submit\": {\"function\": \"echo\", \"params\": {\"k\": \"v\"}, "
              "\"payload\": \"aGVsbG8=\", \"asyncTimeoutMs\": 5, \"no_cache\": true}}");
    uint8_t *buf;
    size_t len;
    char err[200];
    assert_int_equal(rc_pbjson_pack(json, &refcache__v1__request__descriptor, &buf, &len, err, sizeof err),
                     0);
    Refcache__V1__Request *r = refcache__v1__request__unpack(NULL, len, buf);
    assert_non_null(r);
    assert_int_equal(r->id, 7);
    assert_int_equal(r->body_case, REFCACHE__V1__REQUEST__BODY_SUBMIT);
    assert_string_equal(r->submit->function, "echo");
    assert_int_equal(r->submit->n_params, 1);
    assert_string_equal(r->submit->params[0]->value, "v");
    assert_memory_equal(r->submit->payload.data, "hello", 5);
    assert_int_equal(r->submit->async_timeout_ms, 5);
    assert_true(r->submit->no_cache);
    rc_jdoc_t *tree = rc_pbjson_tree(&r->base);
    assert_prints(
        tree, "{\"id\": 7, \"submit\": {\"function\": \"echo\", \"params\": {\"k\": \"v\"}, "
              "\"payload\": \"aGVsbG8=\", \"async_timeout_ms\": 5, \"deadline_ms\": 0, \"max_retries\": 0, "
              "\"ttl_s\": 0, \"namespace\": \"\", \"no_cache\": true, \"request_key\": \"\"}}");
    rc_jdoc_destroy(&tree);
    refcache__v1__request__free_unpacked(r, NULL);
    free(buf);
    rc_jdoc_destroy(&json);
}

static void test_pbjson_refusals(void **state)
{
    (void) state;
    static const struct {
        const char *json, *why;
    } bad[] = {
        {"{\"submit\": {\"functon\": \"x\"}}", "submit.functon: refcache.v1.SubmitRequest has no such field"},
        {"{\"stats\": {}, \"status\": {}}", "a second member of the same oneof"},
        {"{\"id\": -1}", "out of range"},
        {"{\"id\": 1.5}", "expected an integer"},
        {"{\"submit\": {\"payload\": \"!!\"}}", "base64"},
        {"{\"submit\": {\"max_retries\": 4294967296}}", "out of range"},
        {"{\"batch\": {\"requests\": {}}}", "expected an array"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc_jdoc_t *json = parse(bad[i].json);
        uint8_t *buf = NULL;
        size_t len;
        char err[200] = "";
        int rc = rc_pbjson_pack(json, &refcache__v1__request__descriptor, &buf, &len, err, sizeof err);
        rc_jdoc_destroy(&json);
        free(buf);
        if (rc == 0 || !strstr(err, bad[i].why))
            fail_msg("%s: wanted an error with \"%s\", got \"%s\"", bad[i].json, bad[i].why,
                     rc ? err : "(packed)");
    }
}

static bool matches(rc_kitmatch_vars_t *vars, const char *pattern, const char *reply, char *why)
{
    rc_jdoc_t *p = parse(pattern), *r = parse(reply);
    rc_kitmatch_t m = {0};
    bool ok = rc_kitmatch_match(vars, &m, p, r);
    char err[100];
    if (ok)
        assert_int_equal(rc_kitmatch_commit(vars, &m, err, sizeof err), 0);
    rc_kitmatch_release(&m);
    strcpy(why, m.why);
    rc_jdoc_destroy(&p);
    rc_jdoc_destroy(&r);
    return ok;
}

static void test_matcher(void **state)
{
    (void) state;
    rc_kitmatch_vars_t vars = {0};
    char why[1024];
    const char *reply =
        "{\"id\": 3, \"code\": \"CODE_OK\", \"task\": {\"ref_id\": \"ab\", \"attempt\": 0, \"error\": \"\"}}";
    assert_true(matches(&vars, "{\"task\": {\"ref_id\": \"$set:ref\", \"attempt\": null}}", reply, why));
    assert_true(matches(&vars,
                        "{\"id\": \"3\", \"task\": {\"ref_id\": \"$ref\", \"error\": null, \"x\": null}}",
                        reply, why));
    assert_false(matches(&vars, "{\"task\": {\"ref_id\": \"$any\", \"attempt\": \"$any\"}}", reply, why));
    assert_string_equal(why, "at .task.attempt: expected any value but the default, got 0");
    assert_false(matches(&vars, "{\"submit\": null, \"task\": null}", reply, why));
    assert_string_equal(why, "at .task: expected the default (not set), got {\"ref_id\": \"ab\", "
                             "\"attempt\": 0, \"error\": \"\"}");
    assert_false(matches(&vars, "{\"task\": {\"ref_id\": \"$len:3\"}}", reply, why));
    assert_false(matches(&vars, "{\"code\": \"$nothing\"}", reply, why));
    assert_non_null(strstr(why, "neither a matcher nor a variable"));
    assert_true(matches(&vars, "{\"code\": \"$contains:_O\"}", reply, why));
    /* A failed match captures nothing. */
    assert_false(matches(&vars, "{\"code\": \"$set:c\", \"id\": 4}", reply, why));
    char err[100] = "";
    rc_jdoc_t *req = parse("{\"s\": \"$c\"}"), *x = rc_kitmatch_expand(&vars, req, err, sizeof err);
    assert_null(x);
    assert_string_equal(err, "no variable \"c\" set before this step");
    rc_jdoc_destroy(&req);
    req = parse("[\"$upper:ref\", \"$$ref\", {\"$repeat\": 2, \"item\": 1}]");
    x = rc_kitmatch_expand(&vars, req, err, sizeof err);
    assert_prints(x, "[\"AB\", \"$ref\", 1, 1]");
    rc_jdoc_destroy(&x);
    rc_jdoc_destroy(&req);
    rc_kitmatch_vars_clear(&vars);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_values),      cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_pbjson_round_trip), cmocka_unit_test(test_pbjson_refusals),
        cmocka_unit_test(test_matcher),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
