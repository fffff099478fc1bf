/* refcache_worker.h: the refcache worker library — a pool of worker threads that
 * connect to a broker and run jobs written as compute steps.
 *
 * A job function runs on a worker thread. It calls refcache_job_cancelled()
 * between steps (a non-blocking poll of the control channel) and returns as
 * soon as it sees true; it reports refcache_job_progress() as it goes, and ends with
 * exactly one refcache_job_result() or refcache_job_fail(). A job that returns without
 * either fails with INTERNAL. Everything a job allocated must be freed before
 * it returns, also when it was cancelled. */
#ifndef REFCACHE_WORKER_H
#define REFCACHE_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* librefcache is built with -fvisibility=hidden: this marks what it exports. */
#ifndef REFCACHE_EXPORT
#define REFCACHE_EXPORT __attribute__((visibility("default")))
#endif

/* The credit a worker thread grants by default: how many tasks the broker
 * may hand it at once (running + held). Above one, a thread finds its next
 * task already waiting instead of idling for a round trip, and short tasks
 * travel in batches (docs/performance.md). The broker sends a busy worker
 * more only while what it holds is expected to end within its dispatch
 * window (1 ms by default), so a long task never waits behind another. */
#define REFCACHE_DEFAULT_CREDIT 256

typedef struct refcache_job refcache_job_t;
typedef struct refcache_pool refcache_pool_t;

/* A job function: returns when the job is done, failed or cancelled. The
 * return value is ignored; what counts is refcache_job_result/refcache_job_fail. */
typedef int(refcache_job_fn)(refcache_job_t *job);

/* Job API (valid only inside the job function, on its thread). */

/* True once the broker asked this task to stop (cancel or deadline). Cheap:
 * it polls the control socket without blocking, and also keeps the worker's
 * heartbeat going, so call it at least once per heartbeat interval. */
REFCACHE_EXPORT bool refcache_job_cancelled(refcache_job_t *job);

/* Reports progress (done out of total) to the broker. */
REFCACHE_EXPORT void refcache_job_progress(refcache_job_t *job, uint64_t done, uint64_t total);

/* Sets the result (copied). 0, or -1 if a result or failure was already set. */
REFCACHE_EXPORT int refcache_job_result(refcache_job_t *job, const void *bytes, size_t len);

/* Sets the result by taking a malloc'd buffer: *bytes_p is freed by the
 * worker once the result is sent and cleared here, also on error (-1 if a
 * result or failure was already set). Saves a copy of a large result. */
REFCACHE_EXPORT int refcache_job_result_take(refcache_job_t *job, void **bytes_p, size_t len);

/* Waits up to ms milliseconds while watching the control channel (and
 * keeping the heartbeat going); returns true at once if the task is
 * cancelled meanwhile, false after the full wait. For jobs that wait. */
REFCACHE_EXPORT bool refcache_job_sleep(refcache_job_t *job, int ms);

/* Fails the task with a status code (refcache.v1.Code) and a message; a
 * retryable failure is retried by the broker while retries remain. */
REFCACHE_EXPORT int refcache_job_fail(refcache_job_t *job, int code, bool retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The value of param `key`, or NULL. Owned by the job. */
REFCACHE_EXPORT const char *refcache_job_param(refcache_job_t *job, const char *key);

/* The payload bytes (owned by the job) and their length. */
REFCACHE_EXPORT const void *refcache_job_payload(refcache_job_t *job, size_t *len);

/* The task's ref_id and attempt (for logs). */
REFCACHE_EXPORT const char *refcache_job_ref_id(refcache_job_t *job);
REFCACHE_EXPORT uint32_t refcache_job_attempt(refcache_job_t *job);

/* Pool */

typedef struct {
    const char *name; /* function name, as clients submit it */
    refcache_job_fn *fn;
    bool cacheable; /* deterministic: results may be shared */
} refcache_function_t;

typedef struct {
    const char *work_endpoint;            /* broker's work channel */
    const char *control_endpoint;         /* broker's control channel */
    int threads;                          /* <= 0: number of cores */
    int credit;                           /* tasks a thread may hold; <= 0: REFCACHE_DEFAULT_CREDIT */
    int heartbeat_ms;                     /* <= 0: 1000 */
    int liveness;                         /* silent heartbeats before reconnecting; <= 0: 5 */
    size_t max_result_bytes;              /* larger results fail RESOURCE_EXHAUSTED; 0: 16 MiB - 64 KiB,
                                             to stay under the broker's default message limit */
    const refcache_function_t *functions; /* NULL: the built-ins only */
    size_t function_count;
    bool no_builtins; /* do not add the built-in functions */
    /* CURVE (optional; NULL = plain): this worker's secret certificate file
     * and the broker's public certificate file. */
    const char *curve_secret_file;
    const char *broker_public_file;
    /* How long a stopping thread (refcache_pool_destroy) lets its running
     * job go on before it tells the job to stop; 0: it stops it at once.
     * Either way its held tasks go back to the broker, uncounted, with its
     * goodbye. */
    int drain_ms;
} refcache_pool_config_t;

/* Starts the pool's threads; returns once every thread has connected and
 * sent its Ready, or NULL with a message in errbuf. */
REFCACHE_EXPORT refcache_pool_t *refcache_pool_new(const refcache_pool_config_t *config, char *errbuf,
                                                   size_t errlen);

/* Stops every thread and frees the pool; accepts NULL and clears the
 * caller's pointer. Each thread says goodbye to the broker, giving back the
 * tasks it holds and has not started (they are not counted as attempts),
 * lets its running job go on for the configured drain_ms, then makes
 * refcache_job_cancelled() true for it. */
REFCACHE_EXPORT void refcache_pool_destroy(refcache_pool_t **self_p);

/* Number of tasks the pool's threads have finished (result, failure or
 * cancel), for tests and logs. */
REFCACHE_EXPORT uint64_t refcache_pool_tasks_done(refcache_pool_t *self);

/* The built-in functions: echo, sleep, primes, spin, fail. */
REFCACHE_EXPORT const refcache_function_t *refcache_builtin_functions(size_t *count);

#endif
