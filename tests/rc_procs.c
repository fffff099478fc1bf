/* rc_procs: broker and worker processes for tests (see rc_procs.h). */
#include "rc_procs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rc_common.h"

#define MAX_PROCS 32
#define MAX_ARGS  48

static pid_t live[MAX_PROCS];

static void remember(pid_t pid)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (live[i] <= 0) {
            live[i] = pid;
            return;
        }
    kill(pid, SIGKILL);
    fail_msg("rc_procs: more than %d processes", MAX_PROCS);
}

static void forget(pid_t pid)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (live[i] == pid)
            live[i] = 0;
}

static bool named(const char *const *args, const char *flag)
{
    for (; args && *args; args++)
        if (strcmp(*args, flag) == 0)
            return true;
    return false;
}

/* fork + exec of argv, stdout into out_fd (or /dev/null when -1). */
static pid_t spawn(char *const *argv, int out_fd)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(out_fd >= 0 ? out_fd : null, 1);
        if (!getenv("RC_TEST_VERBOSE"))
            dup2(null, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    remember(pid);
    return pid;
}

/* Starts a broker; its pid, or -1 (killed) if it did not get to "ready". */
static pid_t broker_try(const char *path, const char *const *args, rc_procs_eps_t *eps)
{
    const char *argv[MAX_ARGS];
    int n = 0;
    argv[n++] = path;
    static const char *const eps_flags[] = {"--clients", "--workers-endpoint", "--control"};
    for (int i = 0; i < 3; i++)
        if (!named(args, eps_flags[i])) {
            argv[n++] = eps_flags[i];
            argv[n++] = "tcp://127.0.0.1:*";
        }
    for (; args && *args && n < MAX_ARGS - 1; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = spawn((char *const *) argv, out[1]);
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    assert_non_null(f);
    char line[512];
    bool ready = false;
    memset(eps, 0, sizeof *eps);
    while (!ready && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "clients ", 8) == 0)
            snprintf(eps->clients, sizeof eps->clients, "%.255s", line + 8);
        else if (strncmp(line, "workers ", 8) == 0)
            snprintf(eps->workers, sizeof eps->workers, "%.255s", line + 8);
        else if (strncmp(line, "control ", 8) == 0)
            snprintf(eps->control, sizeof eps->control, "%.255s", line + 8);
        else if (strcmp(line, "ready") == 0)
            ready = true;
    }
    fclose(f);
    if (!ready) {
        rc_procs_kill(pid);
        return -1;
    }
    return pid;
}

pid_t rc_procs_broker(const char *path, const char *const *args, rc_procs_eps_t *eps)
{
    pid_t pid = broker_try(path, args, eps);
    if (pid < 0)
        fail_msg("%s did not start (run with RC_TEST_VERBOSE=1 to see why)", path);
    return pid;
}

pid_t rc_procs_broker_fixed(const char *path, const char *const *args, rc_procs_eps_t *eps)
{
    const char *argv[MAX_ARGS];
    char ep[3][64];
    static const char *const eps_flags[] = {"--clients", "--workers-endpoint", "--control"};
    for (int tries = 0; tries < 20; tries++) {
        int n = 0;
        uint16_t port = (uint16_t) (20000 + (rc_mono_us() * 7919 + (uint64_t) getpid() * 104729) % 9990);
        for (int i = 0; i < 3; i++) {
            snprintf(ep[i], sizeof ep[i], "tcp://127.0.0.1:%u", port + i);
            argv[n++] = eps_flags[i];
            argv[n++] = ep[i];
        }
        for (const char *const *a = args; a && *a && n < MAX_ARGS - 1; a++)
            argv[n++] = *a;
        argv[n] = NULL;
        pid_t pid = broker_try(path, argv, eps);
        if (pid > 0)
            return pid;
    }
    fail_msg("%s did not start on fixed ports (run with RC_TEST_VERBOSE=1 to see why)", path);
    return -1;
}

pid_t rc_procs_broker_again(const char *path, const char *const *args, rc_procs_eps_t *eps, int ms)
{
    uint64_t deadline = rc_mono_us() + (uint64_t) ms * 1000;
    for (;;) {
        pid_t pid = broker_try(path, args, eps);
        if (pid > 0)
            return pid;
        if (rc_mono_us() > deadline)
            fail_msg("%s did not start again within %d ms (run with RC_TEST_VERBOSE=1 to see why)", path, ms);
        usleep(50000); /* a poll interval: the port may be held a moment */
    }
}

pid_t rc_procs_worker(const char *path, const rc_procs_eps_t *eps, const char *const *args)
{
    const char *argv[MAX_ARGS];
    int n = 0;
    argv[n++] = path;
    argv[n++] = "--workers-endpoint";
    argv[n++] = eps->workers;
    argv[n++] = "--control";
    argv[n++] = eps->control;
    for (; args && *args && n < MAX_ARGS - 1; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    return spawn((char *const *) argv, -1);
}

pid_t rc_procs_spawn(const char *const *argv)
{
    return spawn((char *const *) argv, -1);
}

bool rc_procs_wait(pid_t pid, int ms, int *status)
{
    uint64_t deadline = rc_mono_us() + (uint64_t) ms * 1000;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            forget(pid);
            if (status)
                *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return true;
        }
        if (rc_mono_us() >= deadline)
            return false;
        usleep(5000); /* a poll interval, not a synchronisation */
    }
}

void rc_procs_signal(pid_t pid, int sig)
{
    assert_int_equal(kill(pid, sig), 0);
}

void rc_procs_kill(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    kill(pid, SIGCONT);
    waitpid(pid, NULL, 0);
    forget(pid);
}

void rc_procs_kill_all(void)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (live[i] > 0)
            rc_procs_kill(live[i]);
}
