/* CLI test: runs the real `refcache` binary (RC_CLI_PATH) against a broker
 * started in-process, checking its JSON output and exit statuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rc_broker.h"
#include "rc_common.h"
#include "rc_testkit.h"

#include <czmq.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static rc_broker_t *s_broker;
static char s_endpoint[128];
static char s_out[1 << 20];
static char s_err[4096];

/* Reads everything from fd into buf (NUL-terminated, truncated to cap). */
static void s_drain(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        char tmp[4096];
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n <= 0)
            break;
        size_t take = (size_t) n < cap - 1 - len ? (size_t) n : cap - 1 - len;
        memcpy(buf + len, tmp, take);
        len += take;
    }
    buf[len] = '\0';
    close(fd);
}

/* Runs refcache with the given arguments (NULL-terminated, after argv[0]);
 * stdout lands in s_out, stderr in s_err; returns the exit status. */
static int s_run(const char *const *args)
{
    const char *argv[32];
    size_t n = 0;
    argv[n++] = RC_CLI_PATH;
    for (; args[n - 1]; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    int out[2], err[2];
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addclose(&fa, err[0]);
    pid_t pid;
    int rc = posix_spawn(&pid, RC_CLI_PATH, &fa, NULL, (char *const *) argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(rc, 0);
    close(out[1]);
    close(err[1]);
    /* stderr is small; read stdout first (it may be large), then stderr. */
    s_drain(out[0], s_out, sizeof s_out);
    s_drain(err[0], s_err, sizeof s_err);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void s_expect(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("expected '%s' in: %s", needle, haystack);
}

/* Copies the JSON string value of key from s_out into buf. */
static void s_json_value(const char *key, char *buf, size_t cap)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\": \"", key);
    const char *p = strstr(s_out, pattern);
    if (!p)
        fail_msg("no key %s in %s", key, s_out);
    p += strlen(pattern);
    const char *end = strchr(p, '"');
    assert_non_null(end);
    snprintf(buf, cap, "%.*s", (int) (end - p), p);
}

static int setup(void **state)
{
    rc_broker_config_t config;
    rc_testkit_config(&config);
    config.workers = 2;
    s_broker = rc_testkit_broker(&config);
    snprintf(s_endpoint, sizeof s_endpoint, "%s", rc_broker_endpoint(s_broker, RC_EP_CLIENTS));
    return 0;
}

static int teardown(void **state)
{
    rc_broker_destroy(&s_broker);
    return 0;
}

static void test_help_version_usage(void **state)
{
    assert_int_equal(s_run((const char *[]){"--version", NULL}), 0);
    s_expect(s_out, "refcache " RC_VERSION);
    assert_int_equal(s_run((const char *[]){"--help", NULL}), 0);
    s_expect(s_out, "exit status");
    s_expect(s_out, "REFCACHE_ENDPOINT");
    assert_int_equal(s_run((const char *[]){"submit", "--help", NULL}), 0);
    s_expect(s_out, "--async-timeout");
    assert_int_equal(s_run((const char *[]){NULL}), 2);
    s_expect(s_err, "no command");
    assert_int_equal(s_run((const char *[]){"frob", NULL}), 2);
    assert_int_equal(s_run((const char *[]){"status", NULL}), 2);
    assert_int_equal(s_run((const char *[]){"submit", "echo", "--ttl", "x", NULL}), 2);
    /* Nothing listens there: a timeout, exit 1, one line on stderr. */
    assert_int_equal(
        s_run((const char *[]){"--endpoint", "tcp://127.0.0.1:1", "--timeout", "200", "stats", NULL}), 1);
    s_expect(s_err, "timed out");
    assert_non_null(strchr(s_err, '\n'));
    assert_int_equal(strchr(s_err, '\n')[1], '\0');
}

static void test_seed_scenario_json(void **state)
{
    const char *ep = s_endpoint;
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--json", "submit", "sleep", "ms=5000",
                                            "--async-timeout", "100", NULL}),
                     0);
    s_expect(s_out, "\"code\": \"OK\"");
    s_expect(s_out, "\"state\": \"PROCESSING\"");
    s_expect(s_out, "\"message\": ");
    s_expect(s_out, "\"progress_done\": ");
    s_expect(s_out, "\"progress_total\": ");
    s_expect(s_out, "\"attempt\": ");
    s_expect(s_out, "\"result_size\": ");
    s_expect(s_out, "\"error\": ");
    char ref[80];
    s_json_value("ref_id", ref, sizeof ref);
    assert_int_equal(strlen(ref), RC_REF_ID_LEN);

    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--json", "cancel", ref, NULL}), 0);
    s_expect(s_out, "\"cancelled\": true");
    s_expect(s_out, "\"state\": \"CANCELLED\"");
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--json", "status", ref, NULL}), 0);
    s_expect(s_out, "\"state\": \"CANCELLED\"");
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--json", "cancel", ref, NULL}), 0);
    s_expect(s_out, "\"cancelled\": false");
    /* Human output too. */
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "status", ref, NULL}), 0);
    s_expect(s_out, ref);
    s_expect(s_out, "CANCELLED");
    /* Exactly one JSON object per call: one line. */
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--json", "cancel", ref, NULL}), 0);
    assert_int_equal(strchr(s_out, '\n')[1], '\0');
}

static void test_not_found_exit_code(void **state)
{
    const char *ref = "00000000000000000000000000000000";
    assert_int_equal(s_run((const char *[]){"--endpoint", s_endpoint, "--json", "cancel", ref, NULL}), 15);
    s_expect(s_out, "\"code\": \"NOT_FOUND\"");
    s_expect(s_out, "\"cancelled\": false");
    s_expect(s_err, "NOT_FOUND");
    assert_int_equal(s_run((const char *[]){"--endpoint", s_endpoint, "status", ref, NULL}), 15);
    assert_int_equal(s_run((const char *[]){"--endpoint", s_endpoint, "submit", "nope", NULL}), 22);
    s_expect(s_err, "UNIMPLEMENTED");
}

static void test_echo_binary_and_env(void **state)
{
    /* The endpoint from the environment; a payload file with bytes that are
     * not UTF-8 still gives valid JSON (\u00XX escapes). */
    char path[] = "/tmp/rc_cli_payload_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "a\"\xff\n", 4), 4);
    close(fd);
    char at[64];
    snprintf(at, sizeof at, "@%s", path);
    setenv("REFCACHE_ENDPOINT", s_endpoint, 1);
    assert_int_equal(s_run((const char *[]){"--json", "submit", "echo", "--payload", at, "--async-timeout",
                                            "3000", "--no-cache", NULL}),
                     0);
    unsetenv("REFCACHE_ENDPOINT");
    unlink(path);
    s_expect(s_out, "\"state\": \"COMPLETE\"");
    s_expect(s_out, "\"result\": \"a\\\"\\u00ff\\n\"");
    s_expect(s_out, "\"result_size\": 4");
}

static void test_fetch_and_stats(void **state)
{
    const char *ep = s_endpoint;
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--json", "submit", "primes", "n=300000",
                                            "--async-timeout", "20000", NULL}),
                     0);
    s_expect(s_out, "\"state\": \"COMPLETE\"");
    s_expect(s_out, "\"result_truncated\": true");
    char ref[80];
    s_json_value("ref_id", ref, sizeof ref);
    char path[] = "/tmp/rc_cli_fetch_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "fetch", ref, "-o", path, NULL}), 0);
    s_expect(s_out, "wrote");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char data[1 << 20];
    size_t len = fread(data, 1, sizeof data, f);
    fclose(f);
    unlink(path);
    assert_true(len > 65536);
    assert_memory_equal(data, "2\n3\n5\n7\n11\n", 11);
    assert_memory_equal(data + len - 7, "299993\n", 7); /* the largest prime below 300000 */

    /* A page as JSON; the raw bytes on stdout. */
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--json", "fetch", ref, "--offset", "2",
                                            "--length", "6", NULL}),
                     0);
    s_expect(s_out, "\"result\": \"3\\n5\\n7\\n\"");
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "fetch", ref, "--length", "4", NULL}), 0);
    assert_string_equal(s_out, "2\n3\n");

    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--json", "stats", NULL}), 0);
    s_expect(s_out, "\"code\": \"OK\"");
    s_expect(s_out, "\"workers\": 2");
    s_expect(s_out, "\"submitted_total\": ");
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "stats", NULL}), 0);
    s_expect(s_out, "queue_depth");

    assert_int_equal(
        s_run((const char *[]){"--endpoint", ep, "--json", "wait", ref, "--timeout", "100", NULL}), 0);
    s_expect(s_out, "\"state\": \"COMPLETE\"");
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--json", "delete", ref, NULL}), 0);
    s_expect(s_out, "\"found\": true");
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "status", ref, NULL}), 15);
}

/* --namespace is global (before or after the command, or REFCACHE_NAMESPACE):
 * a task is found only in its own namespace, NOT_FOUND (exit 15) elsewhere. */
static void test_namespace(void **state)
{
    const char *ep = s_endpoint;
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--namespace", "team-a", "--json", "submit",
                                            "sleep", "ms=2000", "--no-cache", NULL}),
                     0);
    s_expect(s_out, "\"namespace\": \"team-a\"");
    char ref[80];
    s_json_value("ref_id", ref, sizeof ref);

    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--namespace", "team-a", "status", ref, NULL}),
                     0);
    s_expect(s_out, ref);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "status", ref, NULL}), 15);
    s_expect(s_err, "NOT_FOUND");
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "status", ref, "--namespace", "team-b", NULL}),
                     15);
    assert_int_equal(
        s_run((const char *[]){"--endpoint", ep, "--json", "wait", ref, "--timeout", "50", NULL}), 15);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "fetch", ref, NULL}), 15);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "delete", ref, NULL}), 15);
    assert_int_equal(
        s_run((const char *[]){"--endpoint", ep, "--json", "cancel", ref, "--namespace", "team-b", NULL}),
        15);
    s_expect(s_out, "\"cancelled\": false");

    /* The environment gives the namespace too; the option wins over it. */
    setenv("REFCACHE_NAMESPACE", "team-a", 1);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--json", "status", ref, NULL}), 0);
    s_expect(s_out, "\"state\": \"PROCESSING\"");
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--namespace", "team-b", "status", ref, NULL}),
                     15);
    unsetenv("REFCACHE_NAMESPACE");

    assert_int_equal(
        s_run((const char *[]){"--endpoint", ep, "--json", "cancel", ref, "--namespace", "team-a", NULL}), 0);
    s_expect(s_out, "\"cancelled\": true");
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--namespace", "team-a", "delete", ref, NULL}),
                     0);

    /* submit --namespace still names the submit's namespace. */
    assert_int_equal(
        s_run((const char *[]){"--endpoint", ep, "--json", "submit", "echo", "--payload", "x",
                               "--async-timeout", "3000", "--no-cache", "--namespace", "team-a", NULL}),
        0);
    s_expect(s_out, "\"namespace\": \"team-a\"");
    s_json_value("ref_id", ref, sizeof ref);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "fetch", ref, "--namespace", "team-a", NULL}),
                     0);
    assert_string_equal(s_out, "x");
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "fetch", ref, NULL}), 15);

    assert_int_equal(s_run((const char *[]){"--help", NULL}), 0);
    s_expect(s_out, "--namespace NS");
    s_expect(s_out, "REFCACHE_NAMESPACE");
}

static void test_keygen(void **state)
{
    char dir[] = "/tmp/rc_cli_keys_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], secret[160];
    snprintf(path, sizeof path, "%s/client", dir);
    snprintf(secret, sizeof secret, "%s_secret", path);
    assert_int_equal(s_run((const char *[]){"--json", "keygen", path, NULL}), 0);
    s_expect(s_out, "\"public_key\": ");
    struct stat st;
    assert_int_equal(stat(secret, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(path, &st), 0);
    unlink(secret);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_version_usage),  cmocka_unit_test(test_seed_scenario_json),
        cmocka_unit_test(test_not_found_exit_code), cmocka_unit_test(test_echo_binary_and_env),
        cmocka_unit_test(test_fetch_and_stats),     cmocka_unit_test(test_keygen),
        cmocka_unit_test(test_namespace),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
