/* install_client: a small C program built against an INSTALLED refcache
 * (tests/install_check.sh compiles it with pkg-config alone, and with
 * find_package alone, shared and static), using both public headers: it
 * serves a job function of its own with a worker pool connected to the
 * broker, submits a task to that function and to a built-in one with the
 * client library, and checks both results.
 * Usage: install_client CLIENTS_EP WORKERS_EP CONTROL_EP
 * Exits 0 when both tasks came back COMPLETE with the expected result. */
#define _POSIX_C_SOURCE 200809L /* nanosleep, with -std=c11 */

#include <refcache.h>
#include <refcache_worker.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The job: the payload in upper case. */
static int s_upper(refcache_job_t *job)
{
    size_t len;
    const char *in = refcache_job_payload(job, &len);
    char *out = malloc(len ? len : 1);
    if (!out)
        return refcache_job_fail(job, REFCACHE_CODE_RESOURCE_EXHAUSTED, false, "no memory");
    for (size_t i = 0; i < len; i++)
        out[i] = (char) toupper((unsigned char) in[i]);
    int rc = refcache_job_result(job, out, len);
    free(out);
    return rc;
}

/* Submits FUNCTION(payload) and checks that it completes with WANT. */
static int s_check(refcache_client_t *c, const char *function, const char *payload, const char *want)
{
    refcache_submit_options_t so;
    refcache_submit_options_init(&so);
    so.payload = payload;
    so.payload_len = strlen(payload);
    so.async_timeout_ms = 10000;
    refcache_task_t *t = NULL;
    int rc = refcache_client_submit(c, function, &so, &t, 5000);
    int ok = rc == REFCACHE_CODE_OK && t && t->info.state == REFCACHE_STATE_COMPLETE &&
             t->info.result_len == strlen(want) && memcmp(t->info.result, want, t->info.result_len) == 0;
    if (ok)
        printf("%s(%s) = %.*s\n", function, payload, (int) t->info.result_len, (const char *) t->info.result);
    else
        fprintf(stderr, "install_client: %s: %s (%s), state %d\n", function, refcache_strerror(rc),
                refcache_client_message(c), t ? t->info.state : -1);
    refcache_task_destroy(&t);
    return ok ? 0 : 1;
}

/* The broker refuses a function no worker serves yet (UNIMPLEMENTED): wait,
 * polling its counters for up to 10 s, until it counts the pool's thread. */
static int s_wait_for_worker(refcache_client_t *c)
{
    for (int i = 0; i < 200; i++) {
        refcache_stats_t st;
        if (refcache_client_stats(c, &st, 1000) == REFCACHE_CODE_OK && st.workers >= 1)
            return 0;
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "install_client: the broker did not count the pool's worker within 10 s\n");
    return -1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: install_client CLIENTS_EP WORKERS_EP CONTROL_EP\n");
        return 2;
    }
    char err[256] = "";
    refcache_function_t fns[] = {{"upper", s_upper, true}};
    refcache_pool_config_t pc = {0};
    pc.work_endpoint = argv[2];
    pc.control_endpoint = argv[3];
    pc.threads = 1;
    pc.functions = fns;
    pc.function_count = 1;
    refcache_pool_t *pool = refcache_pool_new(&pc, err, sizeof err);
    if (!pool) {
        fprintf(stderr, "install_client: pool: %s\n", err);
        return 1;
    }
    refcache_client_options_t o;
    refcache_client_options_init(&o);
    o.endpoint = argv[1];
    refcache_client_t *c = refcache_client_new(&o, err, sizeof err);
    int rc = 1;
    if (!c)
        fprintf(stderr, "install_client: client: %s\n", err);
    else if (s_wait_for_worker(c) == 0)
        rc = s_check(c, "upper", "hello", "HELLO") | s_check(c, "echo", "hi", "hi");
    refcache_client_destroy(&c);
    refcache_pool_destroy(&pool);
    return rc;
}
