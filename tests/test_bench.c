/* refcache-bench against a real broker (in this process, 2 in-process
 * workers, ephemeral loopback port): short runs of every scenario with
 * --json; checks the output is one well-formed JSON object and that the
 * counts are right. Timings are not checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rc_buf.h"
#include "rc_broker.h"

static rc_broker_t *s_broker;
static const char *s_endpoint;

/* ---- a minimal JSON validator (RFC 8259 grammar, no semantics) */

static const char *s_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    return p;
}

static const char *s_value(const char *p);

static const char *s_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p && *p != '"') {
        if ((unsigned char) *p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char) p[i]))
                        return NULL;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                return NULL;
            }
        }
        p++;
    }
    return *p == '"' ? p + 1 : NULL;
}

static const char *s_number(const char *p)
{
    const char *start = p;
    if (*p == '-')
        p++;
    if (!isdigit((unsigned char) *p))
        return NULL;
    while (isdigit((unsigned char) *p))
        p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char) *p))
            return NULL;
        while (isdigit((unsigned char) *p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char) *p))
            return NULL;
        while (isdigit((unsigned char) *p))
            p++;
    }
    return p > start ? p : NULL;
}

static const char *s_container(const char *p, char open, char close, bool keys)
{
    if (*p++ != open)
        return NULL;
    p = s_ws(p);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (keys) {
            p = s_string(s_ws(p));
            if (!p)
                return NULL;
            p = s_ws(p);
            if (*p++ != ':')
                return NULL;
        }
        p = s_value(s_ws(p));
        if (!p)
            return NULL;
        p = s_ws(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *s_value(const char *p)
{
    p = s_ws(p);
    switch (*p) {
    case '{':
        return s_container(p, '{', '}', true);
    case '[':
        return s_container(p, '[', ']', false);
    case '"':
        return s_string(p);
    case 't':
        return strncmp(p, "true", 4) ? NULL : p + 4;
    case 'f':
        return strncmp(p, "false", 5) ? NULL : p + 5;
    case 'n':
        return strncmp(p, "null", 4) ? NULL : p + 4;
    default:
        return s_number(p);
    }
}

/* Exactly one object and nothing but whitespace around it. */
static bool s_valid_object(const char *text)
{
    const char *p = s_ws(text);
    if (*p != '{')
        return false;
    p = s_value(p);
    return p && *s_ws(p) == '\0';
}

/* The number after the first "key": at or after from; -1 if absent. */
static double s_num(const char *from, const char *key)
{
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(from, pat);
    if (!p)
        return -1;
    return strtod(p + strlen(pat), NULL);
}

/* The text of the object under "key". */
static const char *s_obj(const char *from, const char *key)
{
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\": {", key);
    const char *p = strstr(from, pat);
    return p ? p + strlen(pat) - 1 : NULL;
}

static void s_check_hist(const char *json, const char *key)
{
    const char *h = s_obj(json, key);
    if (!h)
        fail_msg("no \"%s\" object in: %s", key, json);
    double p50 = s_num(h, "p50"), p90 = s_num(h, "p90"), p99 = s_num(h, "p99"), p999 = s_num(h, "p999"),
           max = s_num(h, "max");
    assert_true(p50 >= 0);
    if (!(p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max))
        fail_msg("%s percentiles out of order: %f %f %f %f %f", key, p50, p90, p99, p999, max);
}

/* Runs refcache-bench with args; returns its exit status, stdout in *out. */
static int s_run(const char *args, char **out)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' --endpoint '%s' %s", RC_BENCH_PATH, s_endpoint, args);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    rc_buf_t buf = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(rc_buf_append(&buf, chunk, n), 0);
    assert_int_equal(rc_buf_append(&buf, "", 1), 0); /* the NUL */
    int status = pclose(f);
    *out = (char *) rc_buf_take(&buf, NULL);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs a scenario with --json and checks what every scenario must show. */
static char *s_run_json(const char *args, double want_requests)
{
    char full[512], *out;
    snprintf(full, sizeof full, "--json %s", args);
    int rc = s_run(full, &out);
    if (rc != 0)
        fail_msg("refcache-bench %s exited %d: %s", full, rc, out);
    if (!s_valid_object(out))
        fail_msg("not one JSON object: %s", out);
    assert_non_null(strstr(out, "\"errors\": {}"));
    if (want_requests >= 0 && s_num(out, "requests") != want_requests)
        fail_msg("requests %f, want %f: %s", s_num(out, "requests"), want_requests, out);
    assert_true(s_num(out, "throughput_rps") >= 0);
    s_check_hist(out, "latency_us");
    assert_non_null(s_obj(out, "broker_before"));
    assert_non_null(s_obj(out, "broker_after"));
    assert_true(s_num(s_obj(out, "broker_after"), "rss_bytes") > 0);
    return out;
}

static int s_setup(void **state)
{
    rc_broker_config_t cfg;
    rc_broker_config_defaults(&cfg);
    cfg.clients_endpoint = "tcp://127.0.0.1:*";
    cfg.workers_endpoint = "tcp://127.0.0.1:*";
    cfg.control_endpoint = "tcp://127.0.0.1:*";
    cfg.workers = 2;
    char err[256];
    s_broker = rc_broker_new(&cfg, err, sizeof err);
    if (!s_broker)
        fail_msg("broker: %s", err);
    s_endpoint = rc_broker_endpoint(s_broker, RC_EP_CLIENTS);
    return 0;
}

static int s_teardown(void **state)
{
    rc_broker_destroy(&s_broker);
    return 0;
}

static void test_throughput(void **state)
{
    char *out = s_run_json("--connections 2 --depth 32 --requests 2001 --payload-size 32 throughput", 2001);
    assert_non_null(strstr(out, "\"scenario\": \"throughput\""));
    assert_int_equal((int) s_num(s_obj(out, "latency_us"), "count"), 2001);
    assert_int_equal((int) s_num(out, "batch"), 64);
    free(out);
    /* Every request in its own frame: the same counts. */
    out = s_run_json("--depth 32 --requests 500 --batch 1 throughput", 500);
    assert_int_equal((int) s_num(s_obj(out, "latency_us"), "count"), 500);
    assert_int_equal((int) s_num(out, "batch"), 1);
    free(out);
}

static void test_latency(void **state)
{
    char *out = s_run_json("--requests 200 latency", 200);
    assert_int_equal((int) s_num(s_obj(out, "latency_us"), "count"), 200);
    free(out);
    out = s_run_json("--rate 1000 --requests 300 latency", 300);
    assert_int_equal((int) s_num(s_obj(out, "latency_us"), "count"), 300);
    free(out);
}

static void test_cancel(void **state)
{
    char *out = s_run_json("--requests 4 --task-ms 1000 cancel", 4);
    s_check_hist(out, "cancel_reply_us");
    s_check_hist(out, "stop_latency_us");
    assert_int_equal((int) s_num(s_obj(out, "stop_latency_us"), "count"), 4);
    free(out);
}

static void test_storm(void **state)
{
    char *out = s_run_json("--requests 1000 --depth 200 storm", 1000);
    assert_int_equal((int) s_num(out, "started_after_cancel"), 0);
    assert_int_equal((int) s_num(out, "cancelled"), 1000);
    assert_true(s_num(out, "cancel_all_s") >= 0);
    assert_true(s_num(out, "drain_s") >= 0);
    free(out);
}

static void test_mixed(void **state)
{
    char *out = s_run_json("--duration 2 --connections 2 mixed", -1);
    assert_true(s_num(out, "requests") > 0);
    const char *ops = s_obj(out, "ops");
    assert_non_null(ops);
    double sum = 0;
    const char *names[] = {"submit_echo", "submit_sleep", "status", "wait", "fetch", "cancel"};
    for (size_t i = 0; i < 6; i++) {
        const char *op = s_obj(ops, names[i]);
        assert_non_null(op);
        sum += s_num(op, "count");
    }
    assert_true(sum == s_num(out, "requests"));
    assert_true(s_num(s_obj(ops, "fetch"), "count") > 0);
    free(out);
}

static void test_report(void **state)
{
    char dir[] = "/tmp/test_bench_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char args[256], *out;
    snprintf(args, sizeof args, "--requests 500 --report %s/r throughput", dir);
    free(s_run_json(args, 500));
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/r/result.json", dir);
    assert_int_equal(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/r/timeseries.csv", dir);
    assert_int_equal(stat(path, &st), 0);
    /* A run long enough for a plot: its title names the run's parameters. */
    snprintf(args, sizeof args, "--duration 2 -c 2 -d 8 --report %s/m mixed", dir);
    free(s_run_json(args, -1));
    snprintf(path, sizeof path, "%s/m/plot.gp", dir);
    char gp[4096] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t len = fread(gp, 1, sizeof gp - 1, f);
    fclose(f);
    gp[len] = '\0';
    const char *title =
        strstr(gp, "title \"refcache-bench mixed (refcache " RC_VERSION "): tcp://127.0.0.1:");
    assert_non_null(title);
    assert_non_null(strstr(title, "2 connections x depth 8, 2 s, batch default\""));
    snprintf(args, sizeof args, "rm -rf '%s'", dir);
    assert_int_equal(system(args), 0);
    /* Usage: --help succeeds, a bad scenario is a usage error. */
    assert_int_equal(s_run("--help", &out), 0);
    assert_non_null(strstr(out, "usage: refcache-bench"));
    free(out);
    assert_int_equal(s_run("nonsense 2>/dev/null", &out), 2);
    free(out);
}

/* The bench deletes the tasks it created (and counts them); --keep leaves
 * them. */
static void test_cleanup(void **state)
{
    char *out = s_run_json("--requests 300 --depth 16 throughput", 300);
    const char *c = s_obj(out, "cleanup");
    assert_non_null(c);
    assert_true(s_num(c, "created") == 300);
    assert_true(s_num(c, "deleted") == 300);
    assert_true(s_num(c, "left") == 0);
    const char *before = s_obj(out, "broker_before"), *after = s_obj(out, "broker_after"),
               *cleaned = s_obj(out, "broker_after_cleanup");
    assert_non_null(cleaned);
    assert_true(s_num(after, "tasks") >= s_num(before, "tasks") + 300);
    assert_true(s_num(cleaned, "tasks") == s_num(before, "tasks"));
    free(out);

    /* Tasks still running at the end are cancelled, then deleted. */
    out = s_run_json("--duration 1 --connections 1 mixed", -1);
    c = s_obj(out, "cleanup");
    assert_true(s_num(c, "created") > 0);
    assert_true(s_num(c, "left") == 0);
    assert_true(s_num(s_obj(out, "broker_after_cleanup"), "tasks") == s_num(s_obj(out, "broker_before"), "tasks"));
    free(out);

    out = s_run_json("--requests 50 --keep latency", 50);
    c = s_obj(out, "cleanup");
    assert_non_null(strstr(c, "\"kept\": true"));
    assert_true(s_num(c, "deleted") == 0);
    assert_true(s_num(s_obj(out, "broker_after_cleanup"), "tasks") == s_num(s_obj(out, "broker_before"), "tasks") + 50);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cleanup), cmocka_unit_test(test_throughput), cmocka_unit_test(test_latency), cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_storm),      cmocka_unit_test(test_mixed),   cmocka_unit_test(test_report),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
