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

#include <arpa/inet.h>
#include <czmq.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
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

/* argv for refcache with the given arguments (NULL-terminated). */
static void s_argv(const char **argv, const char *const *args)
{
    size_t n = 0;
    argv[n++] = RC_CLI_PATH;
    for (; args[n - 1]; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
}

/* Starts refcache with stdout and stderr on pipes (*out_fd, *err_fd). */
static pid_t s_spawn(const char *const *args, int *out_fd, int *err_fd)
{
    const char *argv[32];
    s_argv(argv, args);
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
    *out_fd = out[0];
    *err_fd = err[0];
    return pid;
}

/* Reads what a spawned refcache wrote (s_out, s_err) and returns its exit status. */
static int s_finish(pid_t pid, int out_fd, int err_fd)
{
    /* stderr is small; read stdout first (it may be large), then stderr. */
    s_drain(out_fd, s_out, sizeof s_out);
    s_drain(err_fd, s_err, sizeof s_err);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Runs refcache with the given arguments (NULL-terminated, after argv[0]);
 * stdout lands in s_out, stderr in s_err; returns the exit status. */
static int s_run(const char *const *args)
{
    int out, err;
    pid_t pid = s_spawn(args, &out, &err);
    return s_finish(pid, out, err);
}

/* Runs refcache on a pseudo-terminal (stdin, stdout and stderr), as a
 * person would; everything it wrote lands in s_out. Gives up after 20 s. */
static int s_run_tty(const char *const *args)
{
    const char *argv[32];
    s_argv(argv, args);
    int master;
    struct winsize ws = {.ws_row = 24, .ws_col = 120};
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    assert_true(pid >= 0);
    if (pid == 0) {
        execv(RC_CLI_PATH, (char *const *) argv);
        _exit(127);
    }
    size_t len = 0;
    uint64_t deadline = rc_mono_us() + 20 * 1000000ull;
    while (rc_mono_us() < deadline) {
        struct pollfd p = {.fd = master, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(master, s_out + len, sizeof s_out - 1 - len);
        if (n <= 0)
            break; /* EIO: the child closed the terminal */
        len += (size_t) n;
    }
    s_out[len] = '\0';
    close(master);
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

/* Submits (JSON) and copies the task's ref_id into ref. */
static void s_submit(const char *const *args, char *ref, size_t cap)
{
    const char *argv[24] = {"--endpoint", s_endpoint, "--json", "submit"};
    size_t n = 4;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    assert_int_equal(s_run(argv), 0);
    s_json_value("ref_id", ref, cap);
}

static void test_keygen_refuses_to_overwrite(void **state)
{
    char dir[] = "/tmp/rc_cli_keys_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], secret[160], before[4096], after[4096];
    snprintf(path, sizeof path, "%s/broker", dir);
    snprintf(secret, sizeof secret, "%s_secret", path);
    assert_int_equal(s_run((const char *[]){"keygen", path, NULL}), 0);
    FILE *f = fopen(secret, "r");
    assert_non_null(f);
    before[fread(before, 1, sizeof before - 1, f)] = '\0';
    fclose(f);
    /* Again: refused, the pair untouched. */
    assert_int_equal(s_run((const char *[]){"keygen", path, NULL}), 1);
    s_expect(s_err, path);
    s_expect(s_err, "already exists");
    s_expect(s_err, "--force");
    /* The secret alone left behind counts too. */
    unlink(path);
    assert_int_equal(s_run((const char *[]){"keygen", path, NULL}), 1);
    s_expect(s_err, secret);
    f = fopen(secret, "r");
    assert_non_null(f);
    after[fread(after, 1, sizeof after - 1, f)] = '\0';
    fclose(f);
    assert_string_equal(before, after);
    /* --force replaces it. */
    assert_int_equal(s_run((const char *[]){"keygen", path, "--force", NULL}), 0);
    f = fopen(secret, "r");
    assert_non_null(f);
    after[fread(after, 1, sizeof after - 1, f)] = '\0';
    fclose(f);
    assert_string_not_equal(before, after);
    unlink(secret);
    unlink(path);
    rmdir(dir);
}

/* wait --exit-status: 0 COMPLETE, 3 FAILED, 4 CANCELLED, 5 gave up waiting;
 * without it, 0 whatever the task's end. */
static void test_wait_exit_status(void **state)
{
    const char *ep = s_endpoint;
    char ref[80];
    s_submit((const char *[]){"sleep", "ms=5000", "--no-cache", NULL}, ref, sizeof ref);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "wait", ref, "--timeout", "100", NULL}), 0);
    assert_int_equal(
        s_run((const char *[]){"--endpoint", ep, "wait", ref, "--timeout", "100", "--exit-status", NULL}), 5);
    s_expect(s_out, "PROCESSING");
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "cancel", ref, NULL}), 0);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "wait", ref, "--exit-status", NULL}), 4);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "wait", ref, NULL}), 0);

    s_submit((const char *[]){"fail", "message=no", NULL}, ref, sizeof ref);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--json", "wait", ref, "--exit-status", NULL}),
                     3);
    s_expect(s_out, "\"state\": \"FAILED\"");

    s_submit((const char *[]){"echo", "--payload", "ok", "--no-cache", NULL}, ref, sizeof ref);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "wait", ref, "--exit-status", NULL}), 0);
}

/* Ctrl-C during wait: exit 130 (SIGTERM: 143), not 1 like a timeout. */
static void test_wait_interrupted(void **state)
{
    char ref[80];
    s_submit((const char *[]){"sleep", "ms=10000", "--no-cache", NULL}, ref, sizeof ref);
    refcache_client_t *c = rc_testkit_client(s_broker);
    int signals[] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        refcache_stats_t st;
        assert_int_equal(refcache_client_stats(c, &st, 2000), 0);
        uint64_t before = st.waiters;
        int out, err;
        pid_t pid = s_spawn((const char *[]){"--endpoint", s_endpoint, "wait", ref, NULL}, &out, &err);
        /* The broker holds the Wait: the CLI is inside its call. */
        uint64_t deadline = rc_mono_us() + 10 * 1000000ull;
        do {
            assert_true(rc_mono_us() < deadline);
            assert_int_equal(refcache_client_stats(c, &st, 2000), 0);
        } while (st.waiters <= before);
        assert_int_equal(kill(pid, signals[i]), 0);
        assert_int_equal(s_finish(pid, out, err), 128 + signals[i]);
        s_expect(s_err, "interrupted");
    }
    bool cancelled;
    int state_now;
    assert_int_equal(refcache_client_cancel(c, ref, &cancelled, &state_now, 2000), 0);
    refcache_client_destroy(&c);
}

/* --quiet and --no-preview for submit and wait. */
static void test_quiet_no_preview(void **state)
{
    const char *ep = s_endpoint;
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "submit", "echo", "--payload", "hello",
                                            "--async-timeout", "3000", "--no-cache", "-q", NULL}),
                     0);
    assert_int_equal(strlen(s_out), 33); /* the ref_id and a newline */
    char ref[40];
    snprintf(ref, sizeof ref, "%.32s", s_out);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "wait", ref, "--quiet", NULL}), 0);
    assert_string_equal(s_out, "");
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "wait", ref, NULL}), 0);
    s_expect(s_out, "hello");

    /* A large result: the preview is left out, the size stays. */
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "submit", "primes", "n=200000",
                                            "--async-timeout", "20000", "--no-preview", NULL}),
                     0);
    s_expect(s_out, "COMPLETE");
    s_expect(s_out, "result  ");
    assert_null(strstr(s_out, "2\n3\n5\n"));
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--json", "submit", "primes", "n=200000",
                                            "--async-timeout", "20000", "--no-preview", NULL}),
                     0);
    s_expect(s_out, "\"result_size\": ");
    assert_null(strstr(s_out, "\"result\": "));
    s_json_value("ref_id", ref, sizeof ref);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "wait", ref, "--no-preview", NULL}), 0);
    assert_null(strstr(s_out, "2\n3\n5\n"));
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "wait", ref, NULL}), 0);
    s_expect(s_out, "2\n3\n5\n");
}

/* status shows dates and durations a person reads; --json keeps the
 * microseconds. */
static void test_status_times(void **state)
{
    const char *ep = s_endpoint;
    char ref[80];
    s_submit((const char *[]){"sleep", "ms=50", "--no-cache", "--async-timeout", "5000", NULL}, ref,
             sizeof ref);
    setenv("TZ", "UTC", 1);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "status", ref, NULL}), 0);
    unsetenv("TZ");
    s_expect(s_out, "COMPLETE");
    s_expect(s_out, "\ncreated   20");
    s_expect(s_out, " UTC  (");
    s_expect(s_out, " ago)\n");
    s_expect(s_out, "\nstarted   ");
    s_expect(s_out, "after created)\n");
    s_expect(s_out, "\nfinished  ");
    s_expect(s_out, "(ran ");
    s_expect(s_out, "\nexpires   ");
    s_expect(s_out, "(in ");
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--json", "status", ref, NULL}), 0);
    s_expect(s_out, "\"created_at_us\": 1");
    s_expect(s_out, "\"finished_at_us\": 1");
}

/* No broker there, or not a broker: the error names the endpoint tried and
 * what to check. */
static void test_unreachable_endpoint(void **state)
{
    /* A port nothing listens on: bound by a plain socket, then closed (at
     * once, unlike a ZeroMQ socket's listener). */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &sl), 0);
    int port = ntohs(sa.sin_port);
    close(fd);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--timeout", "300", "stats", NULL}), 1);
    s_expect(s_err, ep);
    s_expect(s_err, "(--timeout 300 ms)");
    s_expect(s_err, "nothing accepts connections at 127.0.0.1 port");
    s_expect(s_err, "--endpoint or REFCACHE_ENDPOINT");

    /* Something listens but never answers: the wrong port, another service. */
    zsock_t *silent = zsock_new(ZMQ_ROUTER);
    assert_non_null(silent);
    port = zsock_bind(silent, "tcp://127.0.0.1:*");
    assert_true(port > 0);
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "--timeout", "300", "stats", NULL}), 1);
    s_expect(s_err, ep);
    s_expect(s_err, "did not answer as a refcache broker");
    s_expect(s_err, "clients endpoint");
    zsock_destroy(&silent);

    assert_int_equal(s_run((const char *[]){"--endpoint", "tcp://no-such-host.invalid:5570", "--timeout",
                                            "300", "stats", NULL}),
                     1);
    s_expect(s_err, "does not resolve");
}

/* On a terminal, wait and fetch draw a progress bar; not on a pipe, not
 * with --json. */
static void test_progress_bar(void **state)
{
    const char *ep = s_endpoint;
    char ref[80];
    s_submit((const char *[]){"sleep", "ms=1500", "step_ms=20", "--no-cache", NULL}, ref, sizeof ref);
    assert_int_equal(s_run_tty((const char *[]){"--endpoint", ep, "wait", ref, NULL}), 0);
    s_expect(s_out, "\r\033[Kwaiting [");
    s_expect(s_out, "%  ");
    s_expect(s_out, "/1500");
    s_expect(s_out, "COMPLETE");

    s_submit((const char *[]){"sleep", "ms=800", "step_ms=20", "--no-cache", NULL}, ref, sizeof ref);
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "wait", ref, NULL}), 0);
    assert_null(strstr(s_err, "waiting ["));
    assert_null(strstr(s_out, "waiting ["));
    s_submit((const char *[]){"sleep", "ms=800", "step_ms=20", "--no-cache", NULL}, ref, sizeof ref);
    assert_int_equal(s_run_tty((const char *[]){"--endpoint", ep, "--json", "wait", ref, NULL}), 0);
    assert_null(strstr(s_out, "waiting ["));
    s_expect(s_out, "\"state\": \"COMPLETE\"");

    /* fetch of a result of several pages (1 MiB each) into a file. */
    s_submit((const char *[]){"primes", "n=3000000", "--async-timeout", "30000", NULL}, ref, sizeof ref);
    char path[] = "/tmp/rc_cli_bar_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(s_run_tty((const char *[]){"--endpoint", ep, "fetch", ref, "-o", path, NULL}), 0);
    s_expect(s_out, "\r\033[Kfetching [");
    s_expect(s_out, " MiB / ");
    s_expect(s_out, "wrote ");
    assert_int_equal(s_run((const char *[]){"--endpoint", ep, "fetch", ref, "-o", path, NULL}), 0);
    assert_null(strstr(s_err, "fetching ["));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_version_usage),
        cmocka_unit_test(test_seed_scenario_json),
        cmocka_unit_test(test_not_found_exit_code),
        cmocka_unit_test(test_echo_binary_and_env),
        cmocka_unit_test(test_fetch_and_stats),
        cmocka_unit_test(test_keygen),
        cmocka_unit_test(test_namespace),
        cmocka_unit_test(test_keygen_refuses_to_overwrite),
        cmocka_unit_test(test_wait_exit_status),
        cmocka_unit_test(test_wait_interrupted),
        cmocka_unit_test(test_quiet_no_preview),
        cmocka_unit_test(test_status_times),
        cmocka_unit_test(test_unreachable_endpoint),
        cmocka_unit_test(test_progress_bar),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
