/* bench_list: List's loop time with millions of records, and the memory a
 * kept task costs with the list index. It fills a broker core, driven as
 * the loop drives it (bench_core's way: real inproc sockets to a client and
 * a worker it plays itself), with N finished echo tasks (32-byte results,
 * unique payloads, 64 per RequestBatch), then times rc_core_client_msg for
 * List requests of several shapes, each many times: the wall time a call
 * holds the loop (median and worst), and, under callgrind, the instructions
 * (only the List calls are collected):
 *
 *   build-rel/tests/bench_list 2000000
 *   valgrind --tool=callgrind --collect-atstart=no build-rel/tests/bench_list 200000
 *
 * It prints the resident memory per kept task before and after the fill,
 * and the index's own bytes. Usage: bench_list [RECORDS] (default 2000000). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rc_common.h"
#include "rc_core.h"
#include "rc_coredrive.h"

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define COLLECT(on)                                                                                          \
    do {                                                                                                     \
        if (on)                                                                                              \
            CALLGRIND_TOGGLE_COLLECT;                                                                        \
    } while (0)
#else
#define COLLECT(on) ((void) (on))
#endif

#define PER_ROUND RC_COREDRIVE_ROUND

static void die(const char *what)
{
    fprintf(stderr, "bench_list: %s\n", what);
    exit(1);
}

/* Hands one frame from rid to a core entry point; returns the nanoseconds
 * it took. */
static uint64_t feed(rc_core_t *core, int (*entry)(rc_core_t *, zmq_msg_t *, int), const char *rid,
                     const void *body, size_t len, bool collect)
{
    zmq_msg_t f[2];
    rc_coredrive_frames(f, rid, body, len);
    uint64_t t0 = rc_mono_ns();
    COLLECT(collect);
    entry(core, f, 2);
    rc_core_flush(core);
    COLLECT(collect);
    uint64_t ns = rc_mono_ns() - t0;
    zmq_msg_close(&f[0]);
    zmq_msg_close(&f[1]);
    return ns;
}

static uint64_t rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f && fscanf(f, "%lu %lu", &size, &res) != 2)
        res = 0;
    if (f)
        fclose(f);
    return (uint64_t) res * (uint64_t) sysconf(_SC_PAGESIZE);
}

/* Fills the core with n finished echo tasks: 64 Submits a round, the
 * worker's results for their dispatches. */
static void fill(rc_core_t *core, void *work, uint64_t n, const char *fn, uint64_t *id)
{
    static rc_coredrive_round_t round;
    rc_coredrive_round_init(&round);
    uint64_t goal = core->c.submitted + n;
    while (core->c.submitted < goal || core->c.completed < core->c.submitted) {
        size_t k = goal - core->c.submitted < PER_ROUND ? (size_t) (goal - core->c.submitted) : PER_ROUND;
        size_t len;
        uint8_t *buf;
        if (k) {
            buf = rc_coredrive_pack(rc_coredrive_submits(&round, k, fn, id, false, 0), &len);
            feed(core, rc_core_client_msg, "c", buf, len, false);
            free(buf);
        }
        /* The worker answers every dispatch that came. */
        for (;;) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, work, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                break;
            }
            Refcache__V1__BrokerMessage *bm =
                refcache__v1__broker_message__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
            zmq_msg_close(&m);
            size_t nd;
            Refcache__V1__Dispatch **d = rc_coredrive_dispatches(bm, &nd);
            for (size_t off = 0; off < nd; off += PER_ROUND) {
                size_t k2 = nd - off < PER_ROUND ? nd - off : PER_ROUND;
                buf = rc_coredrive_pack(rc_coredrive_results(&round, d + off, k2), &len);
                feed(core, rc_core_worker_msg, "w", buf, len, false);
                free(buf);
            }
            refcache__v1__broker_message__free_unpacked(bm, NULL);
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

/* Times `calls` List requests of one shape; prints median and worst. */
static void time_list(rc_core_t *core, void *client, const char *what, Refcache__V1__ListRequest *l,
                      int calls, bool collect)
{
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    r.id = 1;
    r.body_case = REFCACHE__V1__REQUEST__BODY_LIST;
    r.list = l;
    size_t len;
    uint8_t *buf = rc_coredrive_pack(&r.base, &len);
    uint64_t *ns = malloc((size_t) calls * sizeof *ns);
    uint64_t scanned = 0, tasks = 0;
    for (int i = 0; i < calls; i++) {
        ns[i] = feed(core, rc_core_client_msg, "c", buf, len, collect);
        zmq_msg_t m;
        zmq_msg_init(&m);
        while (zmq_msg_recv(&m, client, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&m))
            ;
        Refcache__V1__Reply *rep = refcache__v1__reply__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        zmq_msg_close(&m);
        if (!rep || rep->body_case != REFCACHE__V1__REPLY__BODY_LIST)
            die("no List reply");
        scanned = rep->list->scanned;
        tasks = rep->list->n_tasks;
        refcache__v1__reply__free_unpacked(rep, NULL);
    }
    qsort(ns, (size_t) calls, sizeof *ns, cmp_u64);
    printf("  %-46s %4llu tasks, %5llu records looked at: median %7.1f us, worst %7.1f us\n", what,
           (unsigned long long) tasks, (unsigned long long) scanned, (double) ns[calls / 2] / 1000.0,
           (double) ns[calls - 1] / 1000.0);
    free(ns);
    free(buf);
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
    int calls = argc > 2 ? atoi(argv[2]) : 200;
    bool under_callgrind = false;
#ifdef RUNNING_ON_VALGRIND
    under_callgrind = RUNNING_ON_VALGRIND;
#endif
    rc_broker_config_t cfg;
    rc_broker_config_defaults(&cfg);
    cfg.dispatch_window_us = 10000000;
    cfg.max_records = n + 10000;
    cfg.max_pending = n + 10000;
    cfg.cache_bytes = 4ull << 30;
    rc_coredrive_t drv;
    rc_coredrive_open(&drv, "bl", &cfg);
    rc_core_t *core = drv.core;
    void *work = drv.work, *client = drv.client;
    char *fns[] = {"echo", "rare"};
    rc_coredrive_join(&drv, fns, 2, 1, 1024);

    /* A few tasks of a rare function first (the oldest), then the many. */
    uint64_t id = 1, t0 = rc_mono_ns();
    fill(core, work, 10, "rare", &id);
    rc_coredrive_take(drv.client, NULL);
    uint64_t before = rss();
    uint64_t middle_us = 0;
    for (uint64_t done = 0; done < n - 10;) {
        uint64_t step = n - 10 - done < 100000 ? n - 10 - done : 100000;
        fill(core, work, step, "echo", &id);
        rc_coredrive_take(drv.client, NULL);
        done += step;
        if (!middle_us && done >= (n - 10) / 2)
            middle_us = rc_core_wall_us(core);
    }
    uint64_t after = rss();
    rc_observe_stats_t os;
    rc_observe_stats(core, &os);
    printf("bench_list: %llu records (%llu complete) in %.1f s; resident %.1f MiB more: %.1f B per kept task "
           "beyond its 32 B result; the list index: %zu entries, %.1f B each\n",
           (unsigned long long) rc_table_size(core->tasks), (unsigned long long) core->n_state[RC_COMPLETE],
           (double) (rc_mono_ns() - t0) / 1e9, (double) (after - before) / 1048576.0,
           (double) (after - before) / (double) (n - 10) - 32.0, os.list_entries,
           (double) os.list_bytes / (double) (os.list_entries ? os.list_entries : 1));
    printf("List, %d calls each (loop time of one call: the request's handling and its reply's send)%s:\n",
           calls, under_callgrind ? " [under callgrind: instructions counted, times meaningless]" : "");

    Refcache__V1__ListRequest l = REFCACHE__V1__LIST_REQUEST__INIT;
    time_list(core, client, "first page of 100, no filter", &l, calls, under_callgrind);
    l.limit = 1000;
    time_list(core, client, "first page of 1000, no filter", &l, calls, under_callgrind);
    l.limit = 100;
    l.created_before_us = middle_us;
    time_list(core, client, "a page of 100 from the middle (created before)", &l, calls, under_callgrind);
    l.created_before_us = 0;
    Refcache__V1__State processing = REFCACHE__V1__STATE__STATE_PROCESSING;
    l.n_states = 1;
    l.states = &processing;
    time_list(core, client, "state PROCESSING: none of them (a scan's budget)", &l, calls, under_callgrind);
    l.n_states = 0;
    l.function = "rare";
    time_list(core, client, "function 'rare': 10 oldest (a scan's budget)", &l, calls, under_callgrind);
    l.function = "";
    char hex[RC_REF_ID_LEN + 1];
    size_t cnt = 0;
    void **all = rc_table_snapshot(core->tasks, &cnt);
    rc_hex_encode(((rc_task_t *) all[cnt / 3])->ref, 16, hex);
    free(all);
    l.ref_id = hex;
    l.all_namespaces = true;
    time_list(core, client, "one ref_id, any namespace", &l, calls, under_callgrind);

    rc_coredrive_close(&drv);
    return 0;
}
