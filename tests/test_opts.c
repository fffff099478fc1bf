/* Unit tests of rc_opts, the option parser of the four programs: the
 * precedence command line > environment > configuration file > default,
 * the file's format and its errors (naming file and line), deprecated
 * variable names, scopes and short options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rc_opts.h"

typedef struct {
    const char *endpoint;
    uint32_t ttl;
    uint64_t bytes;
    int threads;
    double rate;
    bool verbose, help;
} conf_t;

static conf_t c;
static rc_opt_t table[] = {
    RC_OPT_SECTION_("section:"),
    RC_OPT_STR_("test-endpoint", 'e', c.endpoint, "EP", "an endpoint"),
    RC_OPT_UINT_("test-ttl", 0, c.ttl, 1, 1000, "S", "a ttl"),
    RC_OPT_UINT_("test-bytes", 'b', c.bytes, 0, UINT64_MAX, "B", "bytes"),
    RC_OPT_UINT_("test-threads", 't', c.threads, 1, 64, "N", "threads"),
    RC_OPT_DOUBLE_("test-rate", 0, c.rate, "R", "a rate"),
    RC_OPT_FLAG_("test-verbose", 'v', c.verbose, "verbose"),
    RC_OPT_FLAG_("help", 'h', c.help, "help"),
};

static char s_file[64];
static char s_err[512];

static void s_write(const char *text)
{
    FILE *f = fopen(s_file, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int s_parse(int argc, char **argv)
{
    memset(&c, 0, sizeof c);
    c.endpoint = "default";
    c.ttl = 600;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        table[i].env = table[i].type != RC_OPT_SECTION;
    table[1].old_env = "RC_OPTS_TEST_OLD_ENDPOINT";
    rc_opts_spec_t spec = {
        .program = "test", .opts = table, .count = sizeof table / sizeof table[0], .config = true};
    int rc = rc_opts_parse(&spec, argc, argv, s_err, sizeof s_err);
    /* String values read from the file live in the spec: compare now. */
    static char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "%s", c.endpoint ? c.endpoint : "(null)");
    c.endpoint = endpoint;
    rc_opts_free(&spec);
    return rc;
}

#define ARGS(...) ((char *[]){"prog", __VA_ARGS__, NULL})
#define ARGC(a)   ((int) (sizeof(a) / sizeof(a[0])) - 1)

static int s_setup(void **state)
{
    snprintf(s_file, sizeof s_file, "/tmp/rc-opts-test-%d.conf", (int) getpid());
    unsetenv("REFCACHE_TEST_ENDPOINT");
    unsetenv("REFCACHE_TEST_TTL");
    unsetenv("RC_OPTS_TEST_OLD_ENDPOINT");
    return 0;
}

static int s_teardown(void **state)
{
    unlink(s_file);
    unsetenv("REFCACHE_TEST_ENDPOINT");
    unsetenv("REFCACHE_TEST_TTL");
    unsetenv("RC_OPTS_TEST_OLD_ENDPOINT");
    return 0;
}

static void test_precedence(void **state)
{
    char *none[] = {"prog", NULL};
    assert_int_equal(s_parse(1, none), 0);
    assert_string_equal(c.endpoint, "default");
    assert_int_equal(c.ttl, 600);

    /* The file over the defaults. */
    s_write("# a comment\n\ntest-endpoint = tcp://file:1\n  test-ttl=7  \ntest-verbose = yes\n");
    char **a = ARGS("--config", s_file);
    assert_int_equal(s_parse(ARGC(ARGS("--config", s_file)), a), 0);
    assert_string_equal(c.endpoint, "tcp://file:1");
    assert_int_equal(c.ttl, 7);
    assert_true(c.verbose);

    /* The environment over the file. */
    setenv("REFCACHE_TEST_ENDPOINT", "tcp://env:2", 1);
    assert_int_equal(s_parse(2, ARGS("--config=/dev/null")), 0);
    assert_string_equal(c.endpoint, "tcp://env:2");
    a = ARGS("--config", s_file);
    assert_int_equal(s_parse(3, a), 0);
    assert_string_equal(c.endpoint, "tcp://env:2");
    assert_int_equal(c.ttl, 7); /* not in the environment: the file's */

    /* The command line over both, wherever --config stands. */
    a = ARGS("-e", "tcp://cli:3", "--config", s_file, "--test-ttl", "9");
    assert_int_equal(s_parse(ARGC(ARGS("-e", "x", "--config", "f", "--test-ttl", "9")), a), 0);
    assert_string_equal(c.endpoint, "tcp://cli:3");
    assert_int_equal(c.ttl, 9);
}

static void test_file_errors(void **state)
{
    char **a = ARGS("--config", s_file);
    s_write("test-ttl = 5\nbogus = 1\n");
    assert_int_equal(s_parse(3, a), RC_OPTS_USAGE);
    char want[128];
    snprintf(want, sizeof want, "%s:2: unknown key 'bogus'", s_file);
    assert_non_null(strstr(s_err, want));

    s_write("\n# x\ntest-ttl = 5000\n");
    assert_int_equal(s_parse(3, a), RC_OPTS_USAGE);
    snprintf(want, sizeof want, "%s:3: test-ttl needs a number from 1 to 1000, not '5000'", s_file);
    assert_non_null(strstr(s_err, want));

    s_write("test-ttl\n");
    assert_int_equal(s_parse(3, a), RC_OPTS_USAGE);
    snprintf(want, sizeof want, "%s:1: expected 'key = value'", s_file);
    assert_non_null(strstr(s_err, want));

    s_write("test-verbose = maybe\n");
    assert_int_equal(s_parse(3, a), RC_OPTS_USAGE);
    assert_non_null(strstr(s_err, ":1: test-verbose needs true or false"));

    s_write("config = other\n");
    assert_int_equal(s_parse(3, a), RC_OPTS_USAGE);
    assert_non_null(strstr(s_err, "unknown key 'config'"));

    unlink(s_file);
    assert_int_equal(s_parse(3, a), RC_OPTS_USAGE);
    assert_non_null(strstr(s_err, "cannot read the configuration file"));

    /* Quoted values keep their spaces; the quotes go. */
    s_write("test-endpoint = \" spaced \"\n");
    assert_int_equal(s_parse(3, a), 0);
    assert_string_equal(c.endpoint, " spaced ");
}

static void test_environment(void **state)
{
    setenv("REFCACHE_TEST_TTL", "abc", 1);
    char *none[] = {"prog", NULL};
    assert_int_equal(s_parse(1, none), RC_OPTS_USAGE);
    assert_non_null(strstr(s_err, "REFCACHE_TEST_TTL needs a number"));
    unsetenv("REFCACHE_TEST_TTL");

    /* The former name still works (with a note on stderr); the new one wins. */
    setenv("RC_OPTS_TEST_OLD_ENDPOINT", "tcp://old:4", 1);
    assert_int_equal(s_parse(1, none), 0);
    assert_string_equal(c.endpoint, "tcp://old:4");
    setenv("REFCACHE_TEST_ENDPOINT", "tcp://new:5", 1);
    assert_int_equal(s_parse(1, none), 0);
    assert_string_equal(c.endpoint, "tcp://new:5");

    rc_opt_t o = RC_OPT_STR_("workers-endpoint", 0, c.endpoint, "EP", "x");
    char name[64];
    assert_string_equal(rc_opts_env_name(&o, name, sizeof name), "REFCACHE_WORKERS_ENDPOINT");
}

static void test_command_line(void **state)
{
    char **a = ARGS("-vb", "12", "-t4", "--test-rate=2.5", "--", "-x");
    assert_int_equal(s_parse(7, a), RC_OPTS_USAGE); /* no operands taken */
    assert_non_null(strstr(s_err, "unexpected argument '-x'"));
    assert_true(c.verbose);
    assert_int_equal(c.bytes, 12);
    assert_int_equal(c.threads, 4);
    assert_true(c.rate == 2.5);

    assert_int_equal(s_parse(2, ARGS("--nope")), RC_OPTS_USAGE);
    assert_non_null(strstr(s_err, "unknown option --nope"));
    assert_int_equal(s_parse(2, ARGS("--test-ttl")), RC_OPTS_USAGE);
    assert_non_null(strstr(s_err, "--test-ttl needs a value"));
    assert_int_equal(s_parse(3, ARGS("--test-threads", "0")), RC_OPTS_USAGE);
    assert_non_null(strstr(s_err, "--test-threads needs a number from 1 to 64, not '0'"));
    assert_int_equal(s_parse(3, ARGS("--test-rate", "-1")), RC_OPTS_USAGE);
    assert_int_equal(s_parse(3, ARGS("--test-bytes", "18446744073709551616")), RC_OPTS_USAGE);
    assert_int_equal(s_parse(3, ARGS("--test-bytes", "18446744073709551615")), 0);
    assert_true(c.bytes == UINT64_MAX);
    assert_int_equal(s_parse(2, ARGS("-q")), RC_OPTS_USAGE);
    assert_non_null(strstr(s_err, "unknown option -q"));
}

/* Scopes: an option of one subcommand is refused under another. */
static int s_operand(void *ctx, const char *arg, unsigned *scope, char *err, size_t errlen)
{
    *scope = strcmp(arg, "one") == 0 ? 2u : 4u;
    return 0;
}

static void test_scopes(void **state)
{
    uint32_t one = 0, two = 0;
    rc_opt_t t[] = {
        RC_OPT_UINT_("n", 0, one, 0, 10, "N", "one's"),
        RC_OPT_UINT_("n", 0, two, 0, 10, "N", "two's"),
    };
    t[0].scope = 2;
    t[1].scope = 4;
    rc_opts_spec_t spec = {.program = "t", .opts = t, .count = 2, .operand = s_operand, .scope = 1};
    assert_int_equal(rc_opts_parse(&spec, 4, ARGS("one", "--n", "3"), s_err, sizeof s_err), 0);
    assert_int_equal(one, 3);
    assert_int_equal(rc_opts_parse(&spec, 4, ARGS("two", "--n", "5"), s_err, sizeof s_err), 0);
    assert_int_equal(two, 5);
    assert_int_equal(one, 3);
    assert_int_equal(rc_opts_parse(&spec, 3, ARGS("--n", "1"), s_err, sizeof s_err), RC_OPTS_USAGE);
    assert_non_null(strstr(s_err, "does not apply here"));
    rc_opts_free(&spec);
}

static void test_help(void **state)
{
    char buf[4096] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    assert_non_null(f);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        table[i].env = table[i].type != RC_OPT_SECTION;
    rc_opts_spec_t spec = {.program = "test", .opts = table, .count = sizeof table / sizeof table[0]};
    rc_opts_help(&spec, 0, f);
    fclose(f);
    assert_non_null(strstr(buf, "section:\n"));
    assert_non_null(strstr(buf, "  -e, --test-endpoint EP"));
    assert_non_null(strstr(buf, "an endpoint [REFCACHE_TEST_ENDPOINT]"));
    assert_non_null(strstr(buf, "      --test-ttl S"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_precedence, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_environment, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_command_line, s_setup, s_teardown),
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
