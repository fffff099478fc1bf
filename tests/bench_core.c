/* bench_core: the broker core's cost per task, without the loop's timing.
 * It drives rc_core the way the loop does — a client's RequestBatch of 64
 * echo Submits (32-byte payloads, unique, held by an async timeout), the
 * worker's ResultBatch of their results (their 64 dispatches in one
 * DispatchBatch: the dispatch window is set wide), the flush after each, a
 * timer pass
 * — through real inproc sockets to a client and a worker it plays itself,
 * so every round makes the same calls with the same batch sizes. Under
 * callgrind the instructions spent inside the core's entry points per task
 * are then repeatable, and two builds can be compared to the instruction:
 *
 *   valgrind --tool=callgrind --collect-atstart=no build/tests/bench_core 2000
 *
 * (only the core's calls are collected, whatever the compiler inlined: the
 * total of "Collected" divided by the task count it prints). Without
 * valgrind it prints the wall time per task too.
 *
 * With `hits`, every Submit is the same echo: after the first, each is a
 * cache hit that gets a handle of its own on the one kept result; it then
 * also prints the heap bytes each such handle holds (mallinfo2). Compare two
 * round counts under callgrind for the instructions of one hit.
 *
 * With `store PATH` the core journals to a store at PATH (a new file), and
 * each round waits until its replies are durable and sent. The instructions
 * of the store's writer thread are counted apart:
 *
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect=writer_main \
 *       build/tests/bench_core 1000 store /tmp/bc.db
 *
 * counts the writer's (each thread's total in the output files), and the
 * first command with `store PATH` the loop's side (marking, encoding, the
 * held replies).
 * Usage: bench_core [ROUNDS] [hits | store PATH] */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <poll.h>
#include <unistd.h>

#include "rc_common.h"
#include "rc_core.h"
#include "rc_coredrive.h"
#include "rc_journal.h"

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define CORE(call)                                                                                           \
    do {                                                                                                     \
        CALLGRIND_TOGGLE_COLLECT;                                                                            \
        call;                                                                                                \
        CALLGRIND_TOGGLE_COLLECT;                                                                            \
    } while (0)
#else
#define CORE(call) call
#endif

#define PER_ROUND RC_COREDRIVE_ROUND

static void die(const char *what)
{
    fprintf(stderr, "bench_core: %s\n", what);
    exit(1);
}

/* Hands m, as the ROUTER would have received it from rid, to a core entry
 * point. */
static void feed_pb(rc_core_t *core, int (*entry)(rc_core_t *, zmq_msg_t *, int), const char *rid,
                    const ProtobufCMessage *m)
{
    size_t len;
    uint8_t *buf = rc_coredrive_pack(m, &len);
    zmq_msg_t f[2];
    rc_coredrive_frames(f, rid, buf, len);
    CORE(entry(core, f, 2));
    zmq_msg_close(&f[0]);
    zmq_msg_close(&f[1]);
    free(buf);
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 1000;
    bool hits = argc > 2 && strcmp(argv[2], "hits") == 0;
    const char *store = argc > 3 && strcmp(argv[2], "store") == 0 ? argv[3] : NULL;
    size_t heap0 = 0;
    rc_broker_config_t cfg;
    rc_broker_config_defaults(&cfg);
    /* A window that always has room, so each round's 64 dispatches go in
     * one batch whatever the measured service time: the same calls every
     * round (the loop's real window depends on timing). */
    cfg.dispatch_window_us = 10000000;
    cfg.store_path = store;
    if (store)
        unlink(store);
    rc_coredrive_t drv;
    rc_coredrive_open(&drv, "bc", &cfg);
    rc_core_t *core = drv.core;
    char *fns[] = {"echo"};
    rc_coredrive_join(&drv, fns, 1, 1, 256);

    static rc_coredrive_round_t round;
    rc_coredrive_round_init(&round);

    uint64_t id = 1, t0 = rc_mono_ns(), replies = 0;
    for (long r = 0; r < rounds; r++) {
        feed_pb(core, rc_core_client_msg, "c",
                rc_coredrive_submits(&round, PER_ROUND, "echo", &id, hits, 30000));
        CORE(rc_core_flush(core));

        /* Play the worker: every dispatch gets its result, a ResultBatch
         * per message taken (one per round once the function's service
         * time is known; the first task of all goes alone). */
        if (hits && r == 1)
            heap0 = mallinfo2().uordblks;
        while (core->c.completed < (hits ? 1 : (uint64_t) (r + 1) * PER_ROUND)) {
            zmq_msg_t m;
            if (!rc_coredrive_take(drv.work, &m))
                die("no dispatch");
            Refcache__V1__BrokerMessage *bm =
                refcache__v1__broker_message__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
            zmq_msg_close(&m);
            size_t n;
            Refcache__V1__Dispatch **d = rc_coredrive_dispatches(bm, &n);
            if (!d)
                die("not a dispatch");
            feed_pb(core, rc_core_worker_msg, "w", rc_coredrive_results(&round, d, n));
            refcache__v1__broker_message__free_unpacked(bm, NULL);
            CORE(rc_core_flush(core));
        }
        CORE(rc_core_timers(core, rc_mono_us()));
        /* With a store the replies wait for their groups. */
        while (store && rc_journal_held(core)) {
            struct pollfd p = {.fd = rc_journal_fd(core), .events = POLLIN};
            poll(&p, 1, 1000);
            CORE(rc_journal_durable(core));
            CORE(rc_core_flush(core));
        }
        zmq_msg_t m;
        if (rc_coredrive_take(drv.client, &m)) {
            replies++;
            zmq_msg_close(&m);
        }
    }
    uint64_t ns = rc_mono_ns() - t0;
    uint64_t tasks = (uint64_t) rounds * PER_ROUND;
    printf(
        "bench_core: %llu tasks in %ld rounds of %d, %llu reply frames, completed %llu, %.0f ns per task\n",
        (unsigned long long) tasks, rounds, PER_ROUND, (unsigned long long) replies,
        (unsigned long long) core->c.completed, (double) ns / (double) tasks);
    if (hits && rounds > 1) {
        uint64_t handles = core->c.cache_hits;
        printf("bench_core: %llu cache hits, %llu handles held, %.0f heap bytes per hit's handle\n",
               (unsigned long long) handles, (unsigned long long) rc_handles_count(core),
               (double) (mallinfo2().uordblks - heap0) / (double) ((uint64_t) (rounds - 1) * PER_ROUND));
    }
    int rc =
        (hits ? core->c.completed == 1 : core->c.completed == tasks) && replies >= (uint64_t) rounds ? 0 : 1;
    rc_coredrive_close(&drv);
    return rc;
}
