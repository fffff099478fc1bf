/* The programs' options as a user meets them: refcache-broker and
 * refcache-worker read --config FILE with the environment and the command
 * line over it; combinations that would leave the broker open while it
 * looks secured are refused; the worker's former variable names still work
 * with a note; every program answers -V. Runs the built binaries; the
 * broker that starts binds ipc:// endpoints in a fresh directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char s_dir[64];

/* Runs a shell command line; returns its exit status, stdout and stderr
 * together in out. */
static int s_run(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int s_run(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1 </dev/null", sizeof cmd - strlen(cmd) - 1);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t len = fread(out, 1, cap - 1, f);
    out[len] = '\0';
    int status = pclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void s_write(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Starts the broker with the shell command line, reads what it prints up to
 * "ready" (10 s at most) into out, then stops it with SIGTERM. */
static void s_broker_endpoints(char *out, size_t cap, const char *cmdline)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/bin/sh", "sh", "-c", cmdline, (char *) NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    out[0] = '\0';
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!strstr(out, "ready\n") && len + 1 < cap) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = 10000 - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int) left) <= 0)
            break;
        ssize_t n = read(fds[0], out + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t) n;
        out[len] = '\0';
    }
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    close(fds[0]);
    if (!strstr(out, "ready\n"))
        fail_msg("the broker did not start: %s", out);
}

static int s_setup(void **state)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/rc-programs-XXXXXX");
    assert_non_null(mkdtemp(s_dir));
    return 0;
}

static int s_teardown(void **state)
{
    char out[256];
    s_run(out, sizeof out, "rm -rf '%s'", s_dir);
    return 0;
}

static void test_broker_config_precedence(void **state)
{
    char conf[512], out[4096], cmd[1024];
    snprintf(conf, sizeof conf,
             "# endpoints for the test\n"
             "clients = ipc://%s/file-clients\n"
             "workers-endpoint = \"ipc://%s/file-workers\"\n"
             "control = ipc://%s/file-control\n"
             "ttl = 30\n",
             s_dir, s_dir, s_dir);
    s_write("broker.conf", conf);

    /* The file alone. */
    snprintf(cmd, sizeof cmd, "exec env -u REFCACHE_CLIENTS '%s' --config '%s/broker.conf'", RC_BROKER_PATH,
             s_dir);
    s_broker_endpoints(out, sizeof out, cmd);
    char want[256];
    snprintf(want, sizeof want, "clients ipc://%s/file-clients\n", s_dir);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "workers ipc://%s/file-workers\n", s_dir);
    assert_non_null(strstr(out, want));

    /* The environment over the file. */
    snprintf(cmd, sizeof cmd, "REFCACHE_CLIENTS=ipc://%s/env-clients exec '%s' --config '%s/broker.conf'",
             s_dir, RC_BROKER_PATH, s_dir);
    s_broker_endpoints(out, sizeof out, cmd);
    snprintf(want, sizeof want, "clients ipc://%s/env-clients\n", s_dir);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "control ipc://%s/file-control\n", s_dir);
    assert_non_null(strstr(out, want));

    /* The command line over both. */
    snprintf(cmd, sizeof cmd,
             "REFCACHE_CLIENTS=ipc://%s/env-clients exec '%s' --clients ipc://%s/cli-clients --config "
             "'%s/broker.conf'",
             s_dir, RC_BROKER_PATH, s_dir, s_dir);
    s_broker_endpoints(out, sizeof out, cmd);
    snprintf(want, sizeof want, "clients ipc://%s/cli-clients\n", s_dir);
    assert_non_null(strstr(out, want));
}

static void test_broker_config_errors(void **state)
{
    char out[4096], want[256];
    s_write("bad.conf", "ttl = 30\n\nmax-page = lots\n");
    assert_int_equal(s_run(out, sizeof out, "'%s' --config '%s/bad.conf'", RC_BROKER_PATH, s_dir), 2);
    snprintf(want, sizeof want, "%s/bad.conf:3: max-page needs a number", s_dir);
    if (!strstr(out, want))
        fail_msg("no '%s' in: %s", want, out);
    s_write("bad.conf", "retries = 1\nworkres = 4\n");
    assert_int_equal(s_run(out, sizeof out, "'%s' --config '%s/bad.conf'", RC_BROKER_PATH, s_dir), 2);
    snprintf(want, sizeof want, "%s/bad.conf:2: unknown key 'workres'", s_dir);
    assert_non_null(strstr(out, want));
    assert_int_equal(s_run(out, sizeof out, "'%s' --config '%s/missing.conf'", RC_BROKER_PATH, s_dir), 2);
    assert_non_null(strstr(out, "missing.conf"));
    assert_int_equal(s_run(out, sizeof out, "REFCACHE_TTL=soon '%s'", RC_BROKER_PATH), 2);
    assert_non_null(strstr(out, "REFCACHE_TTL needs a number"));
}

static void test_broker_refuses_open_combinations(void **state)
{
    char out[4096];
    /* Allow-lists without CURVE would check nobody. */
    assert_int_equal(s_run(out, sizeof out, "'%s' --clients-allowed '%s'", RC_BROKER_PATH, s_dir), 2);
    assert_non_null(strstr(out, "--curve-secret"));
    assert_int_equal(s_run(out, sizeof out, "REFCACHE_WORKERS_ALLOWED='%s' '%s'", s_dir, RC_BROKER_PATH), 2);
    assert_non_null(strstr(out, "--curve-secret"));
    /* --insecure on a wildcard address would open it to every network. */
    assert_int_equal(s_run(out, sizeof out, "'%s' --insecure --clients 'tcp://0.0.0.0:*'", RC_BROKER_PATH),
                     2);
    assert_non_null(strstr(out, "wildcard"));
    assert_int_equal(s_run(out, sizeof out, "'%s' --insecure --control 'tcp://*:*'", RC_BROKER_PATH), 2);
    assert_non_null(strstr(out, "wildcard"));
}

static void test_worker_options(void **state)
{
    char out[4096], want[256];
    /* The former variable names still work, with a note. */
    assert_int_equal(
        s_run(out, sizeof out, "REFCACHE_WORKER_ENDPOINT=tcp://127.0.0.1:1 '%s' --threads 0", RC_WORKER_PATH),
        2);
    assert_non_null(strstr(out, "REFCACHE_WORKER_ENDPOINT is deprecated, use REFCACHE_WORKERS_ENDPOINT"));
    assert_non_null(strstr(out, "--threads needs a number from 1 to 1024"));
    assert_int_equal(s_run(out, sizeof out, "REFCACHE_CONTROL_ENDPOINT=x '%s' --threads 0", RC_WORKER_PATH),
                     2);
    assert_non_null(strstr(out, "REFCACHE_CONTROL_ENDPOINT is deprecated, use REFCACHE_CONTROL"));
    /* The file, under the environment. */
    s_write("worker.conf", "# a pool\ncredit = 8\nthreads = 2000\n");
    assert_int_equal(s_run(out, sizeof out, "'%s' --config '%s/worker.conf'", RC_WORKER_PATH, s_dir), 2);
    snprintf(want, sizeof want, "%s/worker.conf:3: threads needs a number from 1 to 1024", s_dir);
    assert_non_null(strstr(out, want));
    s_write("worker.conf", "threads = 3\n");
    assert_int_equal(
        s_run(out, sizeof out, "REFCACHE_THREADS=0 '%s' --config '%s/worker.conf'", RC_WORKER_PATH, s_dir),
        2);
    assert_non_null(strstr(out, "REFCACHE_THREADS needs a number"));
}

static void test_versions(void **state)
{
    char out[512];
    const char *progs[][2] = {{RC_BROKER_PATH, "refcache-broker "},
                              {RC_WORKER_PATH, "refcache-worker "},
                              {RC_CLI_PATH, "refcache "},
                              {RC_BENCH_PATH, "refcache-bench "}};
    for (size_t i = 0; i < 4; i++) {
        for (int longform = 0; longform < 2; longform++) {
            assert_int_equal(s_run(out, sizeof out, "'%s' %s", progs[i][0], longform ? "--version" : "-V"),
                             0);
            if (strncmp(out, progs[i][1], strlen(progs[i][1])) != 0)
                fail_msg("%s -V printed: %s", progs[i][0], out);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_config_precedence),
        cmocka_unit_test(test_broker_config_errors),
        cmocka_unit_test(test_broker_refuses_open_combinations),
        cmocka_unit_test(test_worker_options),
        cmocka_unit_test(test_versions),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
