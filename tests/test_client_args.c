/* Unit tests of rc_cli_args: the refcache CLI's command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rc_cli_args.h"

#include <stdlib.h>
#include <string.h>

#define ARGC(a) ((int) (sizeof(a) / sizeof((a)[0])))

static void test_submit_full(void **state)
{
    char *argv[] = {"refcache",        "--endpoint", "tcp://h:1",   "--json",    "--timeout", "250",
                    "submit",          "sleep",      "ms=5000",     "step_ms=5", "--payload", "@f",
                    "--async-timeout", "100",        "--deadline",  "9000",      "--retries", "3",
                    "--ttl",           "60",         "--namespace", "ns",        "--no-cache"};
    rc_cli_args_t a;
    char err[256];
    assert_int_equal(rc_cli_parse(ARGC(argv), argv, "tcp://env:2", &a, err, sizeof err), 0);
    assert_string_equal(a.endpoint, "tcp://h:1");
    assert_true(a.json);
    assert_int_equal(a.timeout_ms, 250);
    assert_int_equal(a.cmd, RC_CMD_SUBMIT);
    assert_string_equal(a.operand, "sleep");
    assert_int_equal(a.param_count, 2);
    assert_string_equal(a.params[0].key, "ms");
    assert_string_equal(a.params[0].value, "5000");
    assert_string_equal(a.params[1].key, "step_ms");
    assert_string_equal(a.params[1].value, "5");
    assert_string_equal(a.payload, "@f");
    assert_int_equal(a.async_timeout_ms, 100);
    assert_int_equal(a.deadline_ms, 9000);
    assert_int_equal(a.retries, 3);
    assert_int_equal(a.ttl_s, 60);
    assert_string_equal(a.namespace_name, "ns");
    assert_true(a.no_cache);
    rc_cli_args_free(&a);
}

static void test_defaults_and_env(void **state)
{
    char *argv[] = {"refcache", "stats"};
    rc_cli_args_t a;
    char err[256];
    assert_int_equal(rc_cli_parse(ARGC(argv), argv, NULL, &a, err, sizeof err), 0);
    assert_string_equal(a.endpoint, RC_CLI_DEFAULT_ENDPOINT);
    assert_int_equal(a.timeout_ms, RC_CLI_DEFAULT_TIMEOUT);
    assert_false(a.json);
    assert_int_equal(a.cmd, RC_CMD_STATS);
    rc_cli_args_free(&a);
    assert_int_equal(rc_cli_parse(ARGC(argv), argv, "tcp://env:2", &a, err, sizeof err), 0);
    assert_string_equal(a.endpoint, "tcp://env:2");
    rc_cli_args_free(&a);
}

static void test_wait_fetch_options(void **state)
{
    char *w[] = {"refcache", "wait", "abc", "--timeout", "700", "--json"};
    rc_cli_args_t a;
    char err[256];
    assert_int_equal(rc_cli_parse(ARGC(w), w, NULL, &a, err, sizeof err), 0);
    assert_int_equal(a.cmd, RC_CMD_WAIT);
    assert_int_equal(a.wait_ms, 700);
    assert_int_equal(a.timeout_ms, RC_CLI_DEFAULT_TIMEOUT);
    assert_true(a.json);
    rc_cli_args_free(&a);

    char *f[] = {"refcache", "fetch", "abc", "--offset", "10", "--length", "20", "-o", "out.bin"};
    assert_int_equal(rc_cli_parse(ARGC(f), f, NULL, &a, err, sizeof err), 0);
    assert_int_equal(a.offset, 10);
    assert_int_equal(a.length, 20);
    assert_true(a.have_length);
    assert_string_equal(a.out_file, "out.bin");
    rc_cli_args_free(&a);

    char *f2[] = {"refcache", "fetch", "abc"};
    assert_int_equal(rc_cli_parse(ARGC(f2), f2, NULL, &a, err, sizeof err), 0);
    assert_false(a.have_length);
    rc_cli_args_free(&a);

    char *s[] = {"refcache", "status", "abc", "--timeout", "9"};
    assert_int_equal(rc_cli_parse(ARGC(s), s, NULL, &a, err, sizeof err), 0);
    assert_int_equal(a.timeout_ms, 9);
    rc_cli_args_free(&a);
}

static void test_help_version(void **state)
{
    rc_cli_args_t a;
    char err[256];
    char *h[] = {"refcache", "--help"};
    assert_int_equal(rc_cli_parse(ARGC(h), h, NULL, &a, err, sizeof err), 0);
    assert_true(a.help);
    assert_int_equal(a.cmd, RC_CMD_NONE);
    rc_cli_args_free(&a);
    char *hc[] = {"refcache", "cancel", "--help"};
    assert_int_equal(rc_cli_parse(ARGC(hc), hc, NULL, &a, err, sizeof err), 0);
    assert_true(a.help);
    assert_int_equal(a.cmd, RC_CMD_CANCEL);
    rc_cli_args_free(&a);
    char *v[] = {"refcache", "--version"};
    assert_int_equal(rc_cli_parse(ARGC(v), v, NULL, &a, err, sizeof err), 0);
    assert_true(a.version);
    rc_cli_args_free(&a);
}

/* --namespace is global: before or after the command, for every command. */
static void test_global_namespace(void **state)
{
    rc_cli_args_t a;
    char err[256];
    char *before[] = {"refcache", "--namespace", "team-a", "status", "abc"};
    assert_int_equal(rc_cli_parse(ARGC(before), before, NULL, &a, err, sizeof err), 0);
    assert_int_equal(a.cmd, RC_CMD_STATUS);
    assert_string_equal(a.operand, "abc");
    assert_string_equal(a.namespace_name, "team-a");
    rc_cli_args_free(&a);

    const char *cmds[] = {"status", "wait", "fetch", "cancel", "delete"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *after[] = {"refcache", (char *) cmds[i], "abc", "--namespace", "team-b"};
        assert_int_equal(rc_cli_parse(ARGC(after), after, NULL, &a, err, sizeof err), 0);
        assert_string_equal(rc_cli_cmd_name(a.cmd), cmds[i]);
        assert_string_equal(a.operand, "abc");
        assert_string_equal(a.namespace_name, "team-b");
        rc_cli_args_free(&a);
    }

    char *sub[] = {"refcache", "--namespace", "x", "submit", "echo", "--namespace", "y"};
    assert_int_equal(rc_cli_parse(ARGC(sub), sub, NULL, &a, err, sizeof err), 0);
    assert_string_equal(a.namespace_name, "y"); /* the last one wins */
    rc_cli_args_free(&a);

    char *stats[] = {"refcache", "stats", "--namespace", "z"};
    assert_int_equal(rc_cli_parse(ARGC(stats), stats, NULL, &a, err, sizeof err), 0);
    assert_string_equal(a.namespace_name, "z");
    rc_cli_args_free(&a);

    char *none[] = {"refcache", "status", "abc"};
    assert_int_equal(rc_cli_parse(ARGC(none), none, NULL, &a, err, sizeof err), 0);
    assert_null(a.namespace_name);
    rc_cli_args_free(&a);
}

static void s_expect_usage(int argc, char **argv, const char *fragment)
{
    rc_cli_args_t a;
    char err[256];
    assert_int_equal(rc_cli_parse(argc, argv, NULL, &a, err, sizeof err), RC_EXIT_USAGE);
    if (!strstr(err, fragment))
        fail_msg("error '%s' does not mention '%s'", err, fragment);
    rc_cli_args_free(&a);
}

static void test_usage_errors(void **state)
{
    char *none[] = {"refcache"};
    s_expect_usage(ARGC(none), none, "no command");
    char *unk[] = {"refcache", "frobnicate"};
    s_expect_usage(ARGC(unk), unk, "unknown command");
    char *opt[] = {"refcache", "--bogus", "stats"};
    s_expect_usage(ARGC(opt), opt, "--bogus");
    char *noref[] = {"refcache", "status"};
    s_expect_usage(ARGC(noref), noref, "missing REF");
    char *nofn[] = {"refcache", "submit", "--ttl", "5"};
    s_expect_usage(ARGC(nofn), nofn, "missing FUNCTION");
    char *badnum[] = {"refcache", "submit", "echo", "--ttl", "-5"};
    s_expect_usage(ARGC(badnum), badnum, "--ttl");
    char *big[] = {"refcache", "submit", "echo", "--retries", "99999999999"};
    s_expect_usage(ARGC(big), big, "--retries");
    char *noval[] = {"refcache", "submit", "echo", "--payload"};
    s_expect_usage(ARGC(noval), noval, "--payload");
    char *kv[] = {"refcache", "submit", "echo", "novalue"};
    s_expect_usage(ARGC(kv), kv, "key=value");
    char *extra[] = {"refcache", "cancel", "a", "b"};
    s_expect_usage(ARGC(extra), extra, "unexpected");
    char *wrongcmd[] = {"refcache", "status", "a", "--length", "3"};
    s_expect_usage(ARGC(wrongcmd), wrongcmd, "--length");
    char *nons[] = {"refcache", "status", "abc", "--namespace"};
    s_expect_usage(ARGC(nons), nons, "--namespace");
    char *nons2[] = {"refcache", "--namespace"};
    s_expect_usage(ARGC(nons2), nons2, "--namespace");
    char *curve[] = {"refcache", "--curve-secret", "x", "stats"};
    s_expect_usage(ARGC(curve), curve, "together");
}

static void test_curve_flags(void **state)
{
    /* --broker-public, as refcache-worker names it, and the older
     * --curve-server. */
    const char *names[] = {"--broker-public", "--curve-server"};
    for (size_t i = 0; i < 2; i++) {
        char *argv[] = {"refcache", "--curve-secret", "me_secret", (char *) names[i], "broker", "stats"};
        rc_cli_args_t a;
        char err[256];
        assert_int_equal(rc_cli_parse(ARGC(argv), argv, NULL, &a, err, sizeof err), 0);
        assert_string_equal(a.curve_secret, "me_secret");
        assert_string_equal(a.curve_server, "broker");
        rc_cli_args_free(&a);
    }
    /* From the environment: REFCACHE_BROKER_PUBLIC, or its former name
     * REFCACHE_CURVE_SERVER (read with a note on stderr); the flag wins. */
    setenv("REFCACHE_CURVE_SECRET", "env_secret", 1);
    setenv("REFCACHE_CURVE_SERVER", "old_broker", 1);
    char *stats[] = {"refcache", "stats"};
    rc_cli_args_t a;
    char err[256];
    assert_int_equal(rc_cli_parse(ARGC(stats), stats, NULL, &a, err, sizeof err), 0);
    assert_string_equal(a.curve_secret, "env_secret");
    assert_string_equal(a.curve_server, "old_broker");
    rc_cli_args_free(&a);
    setenv("REFCACHE_BROKER_PUBLIC", "new_broker", 1);
    assert_int_equal(rc_cli_parse(ARGC(stats), stats, NULL, &a, err, sizeof err), 0);
    assert_string_equal(a.curve_server, "new_broker");
    rc_cli_args_free(&a);
    char *flag[] = {"refcache", "--broker-public", "flag_broker", "stats"};
    assert_int_equal(rc_cli_parse(ARGC(flag), flag, NULL, &a, err, sizeof err), 0);
    assert_string_equal(a.curve_server, "flag_broker");
    rc_cli_args_free(&a);
    unsetenv("REFCACHE_CURVE_SECRET");
    unsetenv("REFCACHE_CURVE_SERVER");
    unsetenv("REFCACHE_BROKER_PUBLIC");
}

/* -V works like the other programs' -V (before a command only). */
static void test_short_version(void **state)
{
    char *v[] = {"refcache", "-V"};
    rc_cli_args_t a;
    char err[256];
    assert_int_equal(rc_cli_parse(ARGC(v), v, NULL, &a, err, sizeof err), 0);
    assert_true(a.version);
    rc_cli_args_free(&a);
    /* An option of another command is named as such. */
    char *len[] = {"refcache", "status", "abc", "--length", "3"};
    assert_int_equal(rc_cli_parse(ARGC(len), len, NULL, &a, err, sizeof err), RC_EXIT_USAGE);
    assert_non_null(strstr(err, "status: option --length does not apply here"));
    rc_cli_args_free(&a);
}

static void test_exit_status(void **state)
{
    assert_int_equal(rc_cli_exit_status(0), 0);
    assert_int_equal(rc_cli_exit_status(REFCACHE_ETIMEOUT), 1);
    assert_int_equal(rc_cli_exit_status(5), 15);
    assert_int_equal(rc_cli_exit_status(3), 13);
    assert_string_equal(rc_cli_cmd_name(RC_CMD_FETCH), "fetch");
    assert_null(rc_cli_cmd_name(RC_CMD_NONE));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_full),        cmocka_unit_test(test_defaults_and_env),
        cmocka_unit_test(test_wait_fetch_options), cmocka_unit_test(test_help_version),
        cmocka_unit_test(test_usage_errors),       cmocka_unit_test(test_exit_status),
        cmocka_unit_test(test_global_namespace),   cmocka_unit_test(test_curve_flags),
        cmocka_unit_test(test_short_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
