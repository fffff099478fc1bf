/* rc_pool: the worker pool of workers/refcache_worker.h — starting and
 * stopping the threads (CZMQ actors), each thread's loop (take a dispatch,
 * look for cancels before starting it, run it, report), the functions the
 * pool serves, and the internal constructor of rc_pool.h through which the
 * broker gives its own pool cancel boards. */
#include "rc_pool.h"
#include "rc_wmon.h"
#include "rc_wpoll.h"
#include "rc_wrecv.h"
#include "rc_wsend.h"
#include "rc_wsession.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const refcache_function_t *find_function(refcache_pool_t *pool, const char *name)
{
    for (size_t i = 0; i < pool->function_count; i++)
        if (strcmp(pool->functions[i].name, name) == 0)
            return &pool->functions[i];
    return NULL;
}

static void run_task(rc_wthread_t *w, held_t *h)
{
    const Refcache__V1__Dispatch *d = h->d;
    const refcache_function_t *fn = find_function(w->pool, d->function);
    if (!fn) {
        snprintf(w->fail_msg, sizeof w->fail_msg, "unknown function \"%.200s\"", d->function);
        rc_wsend_failure(w, d, REFCACHE__V1__CODE__CODE_UNIMPLEMENTED, false, w->fail_msg);
    } else {
        refcache_job_t job = {.worker = w, .dispatch = d};
        rc_wsession_started(w, d);
        w->job = &job;
        fn->fn(&job);
        w->job = NULL;
        if (job.disowned)
            ; /* the broker gave it away: any message about it would be stale */
        else if (job.cancelled)
            /* Never a Result for a cancelled task, even if the job set one. */
            rc_wsend_cancel_ack(w, d->ref_id, d->attempt, true);
        else if (job.has_failure)
            rc_wsend_failure(w, d, job.fail_code, job.retryable, w->fail_msg);
        else if (job.has_result && job.result_len > w->pool->max_result_bytes) {
            /* The broker would refuse the message (and drop the connection
             * with it): fail the task instead, clearly. */
            snprintf(w->fail_msg, sizeof w->fail_msg, "result of %zu bytes is larger than the %zu-byte limit",
                     job.result_len, w->pool->max_result_bytes);
            rc_wsend_failure(w, d, REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED, false, w->fail_msg);
        } else if (job.has_result)
            rc_wsend_result(w, d, job.result, job.result_len);
        else if (w->terminating)
            rc_wsend_failure(w, d, REFCACHE__V1__CODE__CODE_UNAVAILABLE, true, "worker shutting down");
        else {
            snprintf(w->fail_msg, sizeof w->fail_msg, "function \"%.200s\" returned without a result",
                     d->function);
            rc_wsend_failure(w, d, REFCACHE__V1__CODE__CODE_INTERNAL, false, w->fail_msg);
        }
        free(job.owned);
    }
    atomic_fetch_add(&w->pool->tasks_done, 1);
    rc_wrecv_msg_free(w, h->msg);
}

static void worker_loop(rc_wthread_t *w)
{
    while (!w->terminating) {
        /* Held tasks never start while the broker stops or the thread
         * leaves: they go back to the broker. A leaving thread is done once
         * its job ended (here, none runs). */
        if ((w->broker_stopping || w->leaving) && w->held_count)
            rc_wsession_hand_back(w, w->leaving);
        if (w->leaving) {
            w->terminating = true;
            break;
        }
        rc_wsend_check_silence(w);
        if (w->silent_too_long) {
            w->silent_too_long = false;
            rc_wpoll_reconnect(w); /* drops what we held: the broker gave it away */
            continue;
        }
        /* The next dispatch is usually queued already: take it without a
         * system call, and wait (poll) only when the work socket is empty.
         * Messages are taken one at a time while nothing is held, because
         * a receive that finds the socket empty costs as much as a poll. */
        /* With nothing left to start, the results that wait go out, before
         * the receive: a send after a receive that found the socket empty
         * would disarm it, and the wait below would then first take (and
         * hold) what came, and wait with it held. */
        if (w->held_count == 0)
            rc_wsend_results_flush(w);
        if (w->held_count == 0 && !rc_wrecv_take_work(w)) {
            rc_wpoll_input(w, rc_wpoll_timer_timeout_ms(w));
            /* The timers need the work socket drained (see check_timers);
             * when it has news, the next take_work reads it first. */
            if (w->work_armed || !w->work_h)
                rc_wpoll_check_timers(w);
            continue;
        }
        /* Before a held task starts, the cancels that came for it: from the
         * board when the thread has one (the broker posts there before it
         * sends the notice, so a cancel posted before this check is seen
         * now), else from the control socket (after the work socket, so that
         * a dispatch and its cancel that arrive together find each other).
         * The pipe and the timers are looked at now and then. */
        bool control = rc_wrecv_cancels_may_wait(w);
        if (control || rc_mono_us() - w->last_look_us >= INPUT_CHECK_US) {
            rc_wpoll_look(w, 0, control);
            rc_wpoll_check_timers(w);
        }
        held_t h;
        if (!w->terminating && !w->leaving && !w->broker_stopping && rc_wrecv_held_pop(w, &h)) {
            run_task(w, &h);
            rc_wsend_results_flush_if_due(w);
        }
    }
}

/* On the way out, give the held tasks back and say goodbye, so that the
 * broker hands them to another worker at once, uncounted, instead of
 * waiting for the heartbeat timeout. */
static void farewell(rc_wthread_t *w)
{
    rc_wsend_results_flush(w);
    if (!w->leaving || w->held_count)
        rc_wsession_hand_back(w, true);
    /* A short linger gives those failures (and the running task's) a chance
     * to leave; with linger 0 closing would discard them. It bounds how long
     * the context's shutdown can wait, not this thread. */
    if (w->work)
        zsock_set_linger(w->work, 100);
}

static void worker_actor(zsock_t *pipe, void *args)
{
    rc_wthread_t *w = args;
    w->pipe = pipe;
    w->pipe_h = zsock_resolve(pipe);
    w->pipe_fd = zsock_fd(pipe);
    zmq_msg_init(&w->in);
    int rc = rc_wpoll_open_sockets(w);
    if (rc == 0 && rc_wsend_announce(w) != 0) {
        snprintf(w->setup_err, sizeof w->setup_err, "cannot send Ready: %s", zmq_strerror(zmq_errno()));
        rc = -1;
    }
    atomic_store(&w->setup_rc, rc);
    zsock_signal(pipe, 0);
    if (rc == 0)
        worker_loop(w);
    else {
        /* Setup failed: wait for the pool's $TERM, as an actor must. */
        char *command = zstr_recv(pipe);
        zstr_free(&command);
    }
    farewell(w);
    rc_wpoll_close_sockets(w);
    zmq_msg_close(&w->in);
}

static void pool_free(refcache_pool_t *self)
{
    /* Ask every thread to stop first, so that they wind down in parallel and
     * destroy only waits for the slowest. */
    for (int i = 0; i < self->started; i++)
        if (self->workers[i]->actor)
            zstr_send(self->workers[i]->actor, "$TERM");
    for (int i = 0; i < self->started; i++) {
        rc_wthread_t *w = self->workers[i];
        zactor_destroy(&w->actor);
        rc_wrecv_held_drop_all(w);
        rc_wrecv_arenas_free_all(w);
        rc_wsession_free(w);
        free(w->held);
        free(w->echoes);
        free(w->result_buf);
        rc_buf_free(&w->results);
        free(w);
    }
    free(self->workers);
    zactor_destroy(&self->monitor);
    for (size_t i = 0; i < self->function_count; i++)
        free(self->function_names[i]);
    free(self->function_names);
    free(self->cacheable_names);
    free(self->functions);
    zcert_destroy(&self->cert);
    free(self->server_key);
    free(self->work_endpoint);
    free(self->control_endpoint);
    free(self);
}

/* A thread's held ring and, with boards, its board and its echoes. */
static int thread_alloc(refcache_pool_t *self, rc_wthread_t *w)
{
    w->held = calloc((size_t) self->credit, sizeof *w->held);
    if (!w->held || rc_wsession_init(w) != 0)
        return -1;
    if (!self->boards)
        return 0;
    w->board = rc_board_add(self->boards, (uint32_t) self->credit);
    if (!w->board)
        return -1;
    w->echo_mask = w->board->mask;
    w->echoes = calloc(w->echo_mask + 1, sizeof *w->echoes);
    return w->echoes ? 0 : -1;
}

static int add_function(refcache_pool_t *self, const refcache_function_t *f)
{
    if (!f->name || !f->name[0] || !f->fn)
        return -1;
    if (find_function(self, f->name))
        return 0; /* the first one wins: a user function shadows a built-in */
    char *name = strdup(f->name);
    if (!name)
        return -1;
    size_t i = self->function_count++;
    self->functions[i] = *f;
    self->functions[i].name = name;
    self->function_names[i] = name;
    if (f->cacheable)
        self->cacheable_names[self->cacheable_count++] = name;
    return 0;
}

static int load_curve(refcache_pool_t *self, const refcache_pool_config_t *cfg, char *errbuf, size_t errlen)
{
    if (!cfg->curve_secret_file && !cfg->broker_public_file)
        return 0;
    if (!cfg->curve_secret_file || !cfg->broker_public_file) {
        snprintf(errbuf, errlen, "CURVE needs both a worker secret certificate and the broker's public one");
        return -1;
    }
    self->cert = zcert_load(cfg->curve_secret_file);
    if (!self->cert ||
        strcmp(zcert_secret_txt(self->cert), "0000000000000000000000000000000000000000") == 0) {
        snprintf(errbuf, errlen, "cannot load a secret certificate from %s", cfg->curve_secret_file);
        return -1;
    }
    zcert_t *broker = zcert_load(cfg->broker_public_file);
    if (!broker) {
        snprintf(errbuf, errlen, "cannot load the broker's public certificate from %s",
                 cfg->broker_public_file);
        return -1;
    }
    self->server_key = strdup(zcert_public_txt(broker));
    zcert_destroy(&broker);
    if (!self->server_key) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    return 0;
}

refcache_pool_t *rc_pool_new(const refcache_pool_config_t *cfg, rc_board_registry_t *boards, char *errbuf,
                             size_t errlen)
{
    char dummy[8];
    if (!errbuf || errlen == 0) {
        errbuf = dummy;
        errlen = sizeof dummy;
    }
    errbuf[0] = '\0';
    if (!cfg) {
        snprintf(errbuf, errlen, "no configuration");
        return NULL;
    }
    refcache_pool_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    self->threads = cfg->threads > 0 ? cfg->threads : (cores > 0 ? (int) cores : 1);
    self->credit = cfg->credit > 0 ? cfg->credit : REFCACHE_DEFAULT_CREDIT;
    self->heartbeat_ms = cfg->heartbeat_ms > 0 ? cfg->heartbeat_ms : 1000;
    self->liveness = cfg->liveness > 0 ? cfg->liveness : 5;
    self->drain_ms = cfg->drain_ms > 0 ? cfg->drain_ms : 0;
    self->max_result_bytes = cfg->max_result_bytes ? cfg->max_result_bytes : (16u << 20) - (64u << 10);
    self->boards = boards;
    if (self->threads > MAX_THREADS || self->credit > MAX_CREDIT) {
        snprintf(errbuf, errlen, "threads must be at most %d and credit at most %d", MAX_THREADS, MAX_CREDIT);
        pool_free(self);
        return NULL;
    }
    self->work_endpoint = strdup(cfg->work_endpoint ? cfg->work_endpoint : "tcp://127.0.0.1:5571");
    self->control_endpoint = strdup(cfg->control_endpoint ? cfg->control_endpoint : "tcp://127.0.0.1:5572");

    size_t nbuiltin = 0;
    const refcache_function_t *builtin = cfg->no_builtins ? NULL : refcache_builtin_functions(&nbuiltin);
    size_t nuser = cfg->functions ? cfg->function_count : 0;
    size_t total = nbuiltin + nuser;
    self->functions = calloc(total ? total : 1, sizeof *self->functions);
    self->function_names = calloc(total ? total : 1, sizeof *self->function_names);
    self->cacheable_names = calloc(total ? total : 1, sizeof *self->cacheable_names);
    if (!self->work_endpoint || !self->control_endpoint || !self->functions || !self->function_names ||
        !self->cacheable_names) {
        snprintf(errbuf, errlen, "out of memory");
        pool_free(self);
        return NULL;
    }
    for (size_t i = 0; i < nuser + nbuiltin; i++) {
        const refcache_function_t *f = i < nuser ? &cfg->functions[i] : &builtin[i - nuser];
        if (add_function(self, f) != 0) {
            snprintf(errbuf, errlen, "function %zu has no name or no code", i);
            pool_free(self);
            return NULL;
        }
    }
    if (self->function_count == 0) {
        snprintf(errbuf, errlen, "no functions to serve");
        pool_free(self);
        return NULL;
    }
    /* Sockets come from CZMQ's global context, so inproc:// endpoints of a
     * broker in this process (also made with zsock) are reachable. */
    zsys_init();
    if (load_curve(self, cfg, errbuf, errlen) != 0) {
        pool_free(self);
        return NULL;
    }
    uint8_t rnd[8];
    if (rc_random_bytes(rnd, sizeof rnd) != 0) {
        snprintf(errbuf, errlen, "cannot read the OS random source");
        pool_free(self);
        return NULL;
    }
    rc_hex_encode(rnd, sizeof rnd, self->id_prefix);
    /* Handshakes, refused keys and lost connections in the log: over TCP
     * (an in-process pool's inproc sockets have none). */
    if (strncmp(self->work_endpoint, "tcp://", 6) == 0)
        self->monitor = rc_wmon_new(self->id_prefix, self->threads);

    self->workers = calloc((size_t) self->threads, sizeof *self->workers);
    if (!self->workers) {
        snprintf(errbuf, errlen, "out of memory");
        pool_free(self);
        return NULL;
    }
    for (int i = 0; i < self->threads; i++) {
        rc_wthread_t *w = calloc(1, sizeof *w);
        if (w) {
            self->workers[self->started++] = w;
            w->pool = self; /* before its buffers, which are sized from the pool's credit */
        }
        if (!w || thread_alloc(self, w) != 0) {
            snprintf(errbuf, errlen, "out of memory");
            pool_free(self);
            return NULL;
        }
        w->index = i;
        snprintf(w->id, sizeof w->id, "%s-%d", self->id_prefix, i);
        atomic_init(&w->setup_rc, -1);
        /* zactor_new returns once the thread has signalled: its sockets are
         * connected and its Ready sent, or setup failed. */
        w->actor = zactor_new(worker_actor, w);
        if (!w->actor || atomic_load(&w->setup_rc) != 0) {
            snprintf(errbuf, errlen, "worker %d: %s", i,
                     w->setup_err[0] ? w->setup_err : "cannot start thread");
            pool_free(self);
            return NULL;
        }
    }
    return self;
}

refcache_pool_t *refcache_pool_new(const refcache_pool_config_t *cfg, char *errbuf, size_t errlen)
{
    return rc_pool_new(cfg, NULL, errbuf, errlen);
}

void refcache_pool_destroy(refcache_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pool_free(*self_p);
    *self_p = NULL;
}

uint64_t refcache_pool_tasks_done(refcache_pool_t *self)
{
    return self ? atomic_load(&self->tasks_done) : 0;
}
