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

#define PER_ROUND 64

static void die(const char *what)
{
    fprintf(stderr, "bench_list: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static void *sock(void *ctx, int type, const char *ep, const char *id, bool bind)
{
    void *s = zmq_socket(ctx, type);
    int on = 1, zero = 0;
    if (!s)
        die("socket");
    if (type == ZMQ_ROUTER && zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &on, sizeof on) != 0)
        die("setsockopt");
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero);
    if (id)
        zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id));
    if ((bind ? zmq_bind(s, ep) : zmq_connect(s, ep)) != 0)
        die(ep);
    return s;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (!buf)
        die("out of memory");
    protobuf_c_message_pack(m, buf);
    return buf;
}

/* Hands one frame from rid to a core entry point; returns the nanoseconds
 * it took. */
static uint64_t feed(rc_core_t *core, int (*entry)(rc_core_t *, zmq_msg_t *, int), const char *rid,
                     const void *body, size_t len, bool collect)
{
    zmq_msg_t f[2];
    zmq_msg_init_size(&f[0], strlen(rid));
    memcpy(zmq_msg_data(&f[0]), rid, strlen(rid));
    zmq_msg_init_size(&f[1], len);
    memcpy(zmq_msg_data(&f[1]), body, len);
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

/* Empties a socket; returns how many messages (last frames) it held. */
static int drain(void *s)
{
    int n = 0;
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return n;
        }
        n += !zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
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
    uint8_t payload[PER_ROUND][32];
    Refcache__V1__SubmitRequest sub[PER_ROUND];
    Refcache__V1__Request req[PER_ROUND], *reqp[PER_ROUND];
    Refcache__V1__RequestBatch batch = REFCACHE__V1__REQUEST_BATCH__INIT;
    Refcache__V1__Request outer = REFCACHE__V1__REQUEST__INIT;
    outer.body_case = REFCACHE__V1__REQUEST__BODY_BATCH;
    outer.batch = &batch;
    batch.requests = reqp;
    Refcache__V1__Result res[PER_ROUND], *resp[PER_ROUND];
    Refcache__V1__ResultBatch rbatch = REFCACHE__V1__RESULT_BATCH__INIT;
    Refcache__V1__WorkerMessage wres = REFCACHE__V1__WORKER_MESSAGE__INIT;
    wres.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULTS;
    wres.results = &rbatch;
    rbatch.results = resp;
    uint64_t goal = core->c.submitted + n;
    while (core->c.submitted < goal || core->c.completed < core->c.submitted) {
        size_t k = goal - core->c.submitted < PER_ROUND ? (size_t) (goal - core->c.submitted) : PER_ROUND;
        batch.n_requests = k;
        for (size_t i = 0; i < k; i++) {
            refcache__v1__submit_request__init(&sub[i]);
            refcache__v1__request__init(&req[i]);
            memset(payload[i], 'p', sizeof payload[i]);
            memcpy(payload[i], id, sizeof *id);
            sub[i].function = (char *) fn;
            sub[i].payload = (ProtobufCBinaryData){sizeof payload[i], payload[i]};
            req[i].id = (*id)++;
            req[i].body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
            req[i].submit = &sub[i];
            reqp[i] = &req[i];
        }
        size_t len;
        uint8_t *buf;
        if (k) {
            buf = pack(&outer.base, &len);
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
            Refcache__V1__Dispatch **d = NULL;
            size_t nd = 0;
            if (bm && bm->body_case == REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCHES) {
                d = bm->dispatches->dispatches;
                nd = bm->dispatches->n_dispatches;
            } else if (bm && bm->body_case == REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCH) {
                d = &bm->dispatch;
                nd = 1;
            }
            for (size_t off = 0; off < nd; off += PER_ROUND) {
                rbatch.n_results = nd - off < PER_ROUND ? nd - off : PER_ROUND;
                for (size_t i = 0; i < rbatch.n_results; i++) {
                    refcache__v1__result__init(&res[i]);
                    res[i].ref_id = d[off + i]->ref_id;
                    res[i].attempt = d[off + i]->attempt;
                    res[i].data = d[off + i]->payload;
                    resp[i] = &res[i];
                }
                buf = pack(&wres.base, &len);
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
static void time_list(rc_core_t *core, void *client, const char *what, Refcache__V1__ListRequest *l, int calls,
                      bool collect)
{
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    r.id = 1;
    r.body_case = REFCACHE__V1__REQUEST__BODY_LIST;
    r.list = l;
    size_t len;
    uint8_t *buf = pack(&r.base, &len);
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
    void *ctx = zmq_ctx_new();
    void *clients = sock(ctx, ZMQ_ROUTER, "inproc://bl-clients", NULL, true);
    void *workers = sock(ctx, ZMQ_ROUTER, "inproc://bl-workers", NULL, true);
    void *control = sock(ctx, ZMQ_ROUTER, "inproc://bl-control", NULL, true);
    void *client = sock(ctx, ZMQ_DEALER, "inproc://bl-clients", "c", false);
    void *work = sock(ctx, ZMQ_DEALER, "inproc://bl-workers", "w", false);
    void *ctl = sock(ctx, ZMQ_DEALER, "inproc://bl-control", "w", false);

    rc_broker_config_t cfg;
    rc_broker_config_defaults(&cfg);
    cfg.dispatch_window_us = 10000000;
    cfg.max_records = n + 10000;
    cfg.max_pending = n + 10000;
    cfg.cache_bytes = 4ull << 30;
    rc_core_t *core = calloc(1, sizeof *core);
    if (!core || rc_core_init(core, &cfg) != 0)
        die("core");
    core->clients = clients;
    core->workers = workers;
    core->control = control;

    Refcache__V1__ControlHello hello = REFCACHE__V1__CONTROL_HELLO__INIT;
    hello.worker_id = "w";
    size_t len;
    uint8_t *buf = pack(&hello.base, &len);
    feed(core, rc_core_control_msg, "w", buf, len, false);
    free(buf);
    Refcache__V1__Ready ready = REFCACHE__V1__READY__INIT;
    char *fns[] = {"echo", "rare"};
    ready.worker_id = "w";
    ready.n_functions = 2;
    ready.functions = fns;
    ready.n_cacheable = 1;
    ready.cacheable = fns;
    ready.credit = 1024;
    ready.max_batch = 64;
    Refcache__V1__WorkerMessage wready = REFCACHE__V1__WORKER_MESSAGE__INIT;
    wready.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_READY;
    wready.ready = &ready;
    buf = pack(&wready.base, &len);
    feed(core, rc_core_worker_msg, "w", buf, len, false);
    free(buf);

    /* A few tasks of a rare function first (the oldest), then the many. */
    uint64_t id = 1, t0 = rc_mono_ns();
    fill(core, work, 10, "rare", &id);
    drain(client);
    uint64_t before = rss();
    uint64_t middle_us = 0;
    for (uint64_t done = 0; done < n - 10;) {
        uint64_t step = n - 10 - done < 100000 ? n - 10 - done : 100000;
        fill(core, work, step, "echo", &id);
        drain(client);
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
    printf("List, %d calls each (loop time of one call: the request's handling and its reply's send)%s:\n", calls,
           under_callgrind ? " [under callgrind: instructions counted, times meaningless]" : "");

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

    rc_core_fini(core);
    free(core);
    zmq_close(clients);
    zmq_close(workers);
    zmq_close(control);
    zmq_close(client);
    zmq_close(work);
    zmq_close(ctl);
    zmq_ctx_term(ctx);
    return 0;
}
