/* refcache-bench: the load-testing harness. Any user can point it at a broker:
 *
 *   throughput  closed loop, C connections x D outstanding Submits of `echo`
 *               with a distinct payload each (so none is a cache hit);
 *   latency     sequential Submit-to-COMPLETE round trips, or with --rate an
 *               open loop whose latencies count from the intended send time;
 *   cancel      sleep tasks cancelled at a random point while they run: the
 *               Cancel reply time and the time until the worker stopped;
 *   storm       N tasks queued behind busy workers, all cancelled pipelined;
 *   mixed       a mix of submits, status polls, waits, fetches and cancels.
 *
 * Each connection is one thread with its own rc_client (the pipelined API)
 * and its own histograms, merged at the end. The main thread samples the
 * per-second series (progress line, --report CSV). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "rc_common.h"
#include "rc_hist.h"
#include "rc_json.h"
#include "refcache.h"

/* ------------------------------------------------------------ options */

typedef enum { SC_THROUGHPUT, SC_LATENCY, SC_CANCEL, SC_STORM, SC_MIXED, SC_COUNT } scenario_t;
static const char *s_scenario_names[SC_COUNT] = {"throughput", "latency", "cancel", "storm", "mixed"};

typedef struct {
    scenario_t scenario;
    const char *endpoint;
    int connections;
    int depth;
    uint64_t requests;
    double duration_s; /* > 0: run for this long instead of a request count */
    double rate;       /* latency: open loop at this many requests/s in total */
    const char *function;
    size_t payload_size;
    uint32_t task_ms; /* cancel/storm: length of the sleep tasks */
    unsigned batch;   /* refcache_client_options_t.max_batch (0: the library's default) */
    bool json;
    const char *report_dir;
} opts_t;

static void s_usage(FILE *out)
{
    fprintf(out, "usage: refcache-bench [options] SCENARIO\n"
                 "\n"
                 "Load-tests a refcache broker. SCENARIO is one of:\n"
                 "  throughput  closed loop: C connections x D outstanding echo Submits, each with a\n"
                 "              distinct payload (never a cache hit); counts Submit-to-COMPLETE\n"
                 "  latency     sequential Submit-to-COMPLETE round trips; with --rate R an open loop\n"
                 "              at R requests/s, latency measured from the intended send time\n"
                 "  cancel      sleep tasks cancelled at a random point while running: Cancel reply\n"
                 "              time and stop latency (TaskInfo.stopped_at_us - cancel send time)\n"
                 "  storm       N sleep tasks queued behind busy workers, all cancelled pipelined\n"
                 "  mixed       submits of various lengths, status polls, waits, fetches, cancels\n"
                 "\n"
                 "options:\n"
                 "  -e, --endpoint EP      broker clients endpoint (env REFCACHE_ENDPOINT;\n"
                 "                         default tcp://127.0.0.1:5570)\n"
                 "  -c, --connections N    connections, one thread each (throughput/mixed 2, others 1)\n"
                 "  -d, --depth N          outstanding requests per connection (throughput 128,\n"
                 "                         mixed 8, storm 1000, latency 1)\n"
                 "  -n, --requests N       requests (tasks for cancel/storm) in total\n"
                 "                         (throughput 100000, latency 10000, cancel 100, storm 10000)\n"
                 "  -t, --duration S       run for S seconds instead (mixed: 10)\n"
                 "  -r, --rate R           latency: open loop at R requests/s\n"
                 "  -f, --function NAME    function for throughput/latency (echo)\n"
                 "  -p, --payload-size B   payload bytes, at least 16 (32)\n"
                 "      --task-ms MS       cancel/storm: length of the sleep tasks (cancel 2000, storm 50)\n"
                 "  -b, --batch N          requests sent together in one frame at most (the client\n"
                 "                         library's default, 64); 1: each request alone\n"
                 "      --json             print one JSON object on stdout\n"
                 "      --report DIR       write DIR/result.json, DIR/timeseries.csv and, with gnuplot,\n"
                 "                         DIR/plot.png\n"
                 "  -h, --help             this help\n"
                 "  -V, --version          print the version\n");
}

static int s_parse_u64(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
        fprintf(stderr, "refcache-bench: %s needs a number from %" PRIu64 " to %" PRIu64 ", not '%s'\n", flag,
                min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int s_parse_double(const char *flag, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || !isfinite(v)) {
        fprintf(stderr, "refcache-bench: %s needs a positive number, not '%s'\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns 0 to run, 1 when --help/--version was handled, -1 on bad usage. */
static int s_parse_args(int argc, char **argv, opts_t *o)
{
    enum { OPT_JSON = 1000, OPT_REPORT, OPT_TASK_MS };
    static const struct option longopts[] = {{"endpoint", required_argument, NULL, 'e'},
                                             {"connections", required_argument, NULL, 'c'},
                                             {"depth", required_argument, NULL, 'd'},
                                             {"requests", required_argument, NULL, 'n'},
                                             {"duration", required_argument, NULL, 't'},
                                             {"rate", required_argument, NULL, 'r'},
                                             {"function", required_argument, NULL, 'f'},
                                             {"payload-size", required_argument, NULL, 'p'},
                                             {"task-ms", required_argument, NULL, OPT_TASK_MS},
                                             {"batch", required_argument, NULL, 'b'},
                                             {"json", no_argument, NULL, OPT_JSON},
                                             {"report", required_argument, NULL, OPT_REPORT},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    const char *env = getenv("REFCACHE_ENDPOINT");
    o->endpoint = env && *env ? env : "tcp://127.0.0.1:5570";
    o->function = "echo";
    o->payload_size = 32;
    uint64_t v;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":e:c:d:n:t:r:f:p:b:hV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'e':
            o->endpoint = optarg;
            break;
        case 'c':
            if (s_parse_u64("--connections", optarg, 1, 256, &v))
                return -1;
            o->connections = (int) v;
            break;
        case 'd':
            if (s_parse_u64("--depth", optarg, 1, 1000000, &v))
                return -1;
            o->depth = (int) v;
            break;
        case 'n':
            if (s_parse_u64("--requests", optarg, 1, UINT64_C(1) << 40, &o->requests))
                return -1;
            break;
        case 't':
            if (s_parse_double("--duration", optarg, &o->duration_s))
                return -1;
            break;
        case 'r':
            if (s_parse_double("--rate", optarg, &o->rate))
                return -1;
            break;
        case 'f':
            o->function = optarg;
            break;
        case 'p':
            if (s_parse_u64("--payload-size", optarg, 16, 16 << 20, &v))
                return -1;
            o->payload_size = (size_t) v;
            break;
        case 'b':
            if (s_parse_u64("--batch", optarg, 1, 1024, &v))
                return -1;
            o->batch = (unsigned) v;
            break;
        case OPT_TASK_MS:
            if (s_parse_u64("--task-ms", optarg, 1, 3600 * 1000, &v))
                return -1;
            o->task_ms = (uint32_t) v;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_REPORT:
            o->report_dir = optarg;
            break;
        case 'h':
            s_usage(stdout);
            return 1;
        case 'V':
            printf("refcache-bench %s\n", RC_VERSION);
            return 1;
        case ':':
            fprintf(stderr, "refcache-bench: %s needs a value (try --help)\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "refcache-bench: unknown option '%s' (try --help)\n", argv[optind - 1]);
            return -1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "refcache-bench: give exactly one scenario: throughput, latency, cancel, storm or "
                        "mixed (try --help)\n");
        return -1;
    }
    o->scenario = SC_COUNT;
    for (int i = 0; i < SC_COUNT; i++)
        if (strcmp(argv[optind], s_scenario_names[i]) == 0)
            o->scenario = (scenario_t) i;
    if (o->scenario == SC_COUNT) {
        fprintf(stderr, "refcache-bench: unknown scenario '%s' (try --help)\n", argv[optind]);
        return -1;
    }
    if (o->rate > 0 && o->scenario != SC_LATENCY) {
        fprintf(stderr, "refcache-bench: --rate applies to the latency scenario only\n");
        return -1;
    }
    if (o->duration_s > 0 && o->scenario == SC_STORM) {
        fprintf(stderr, "refcache-bench: storm runs a number of tasks (--requests), not a duration\n");
        return -1;
    }
    /* Defaults per scenario. */
    static const int def_conn[SC_COUNT] = {2, 1, 1, 1, 2};
    static const int def_depth[SC_COUNT] = {128, 1, 1, 1000, 8};
    static const uint64_t def_req[SC_COUNT] = {100000, 10000, 100, 10000, 0};
    if (!o->connections)
        o->connections = def_conn[o->scenario];
    if (o->scenario == SC_STORM)
        o->connections = 1; /* one connection queues and cancels everything */
    if (!o->depth)
        o->depth = def_depth[o->scenario];
    if (o->scenario == SC_LATENCY && o->rate == 0)
        o->depth = 1;
    if (!o->requests && o->duration_s == 0) {
        if (o->scenario == SC_MIXED)
            o->duration_s = 10;
        else
            o->requests = def_req[o->scenario];
    }
    if (o->duration_s > 0)
        o->requests = 0;
    if (!o->task_ms)
        o->task_ms = o->scenario == SC_CANCEL ? 2000 : 50;
    return 0;
}

/* ------------------------------------------------------------ clocks */

static uint64_t s_mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t) t.tv_sec * 1000000000u + (uint64_t) t.tv_nsec;
}

static void s_sleep_ns(uint64_t ns)
{
    struct timespec t = {(time_t) (ns / 1000000000u), (long) (ns % 1000000000u)};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

/* xorshift64*: cheap per-thread randomness for payloads and op choices. */
static uint64_t s_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

/* ------------------------------------------------------------ errors */

/* Error classes: the broker's codes 1..16, the library's errors, and what
 * the harness itself checks. */
enum {
    ERR_LIB0 = 17,                 /* + (-REFCACHE_E*) - 1 */
    ERR_INCOMPLETE = ERR_LIB0 + 9, /* OK, but the task was not COMPLETE */
    ERR_BAD_RESULT,                /* echo returned other bytes */
    ERR_NOT_CANCELLED,             /* cancel answered cancelled=false */
    ERR_NO_START,                  /* cancel: the task did not start in time */
    ERR_STOP_TIMEOUT,              /* cancel: stopped_at_us never appeared */
    ERR_COUNT
};

static const char *s_err_name(int i)
{
    static const char *lib[] = {"TIMEOUT", "TRANSPORT", "BAD_REPLY",   "EINVAL", "ENOMEM",
                                "ECURVE",  "EINTR",     "EOUTOFORDER", "EAGAIN"};
    if (i < ERR_LIB0)
        return rc_code_name(i);
    if (i < ERR_INCOMPLETE)
        return lib[i - ERR_LIB0];
    switch (i) {
    case ERR_INCOMPLETE:
        return "INCOMPLETE";
    case ERR_BAD_RESULT:
        return "BAD_RESULT";
    case ERR_NOT_CANCELLED:
        return "NOT_CANCELLED";
    case ERR_NO_START:
        return "NOT_STARTED_IN_TIME";
    default:
        return "STOP_TIMEOUT";
    }
}

static int s_err_class(int rc)
{
    if (rc > 0 && rc < ERR_LIB0)
        return rc;
    if (rc < 0 && -rc <= 9)
        return ERR_LIB0 + (-rc) - 1;
    return 2; /* UNKNOWN */
}

/* ------------------------------------------------------------ in-flight map */

/* Requests in flight on one connection, by id: open addressing with linear
 * probing and backward-shift deletion, grown when half full. Ids are
 * consecutive, so they are scattered by a multiplicative hash: placed at
 * id & mask they formed one cluster as long as the depth, which every
 * deletion walked to its end. */
typedef struct {
    uint64_t id; /* 0: free */
    uint64_t t_ns;
    uint64_t aux; /* what the scenario needs back: a sequence number, a slot */
    int op;
} infl_ent_t;

typedef struct {
    infl_ent_t *e;
    size_t mask;
    size_t n;
    unsigned shift; /* 64 - log2(capacity) */
} infl_t;

static size_t s_infl_home(const infl_t *m, uint64_t id)
{
    return (size_t) ((id * UINT64_C(0x9E3779B97F4A7C15)) >> m->shift);
}

static int s_infl_init(infl_t *m, size_t want)
{
    size_t cap = 16;
    unsigned bits = 4;
    for (; cap < want * 2; bits++)
        cap <<= 1;
    m->e = calloc(cap, sizeof *m->e);
    m->mask = cap - 1;
    m->shift = 64 - bits;
    m->n = 0;
    return m->e ? 0 : -1;
}

static void s_infl_free(infl_t *m)
{
    free(m->e);
    m->e = NULL;
}

static void s_infl_insert(infl_t *m, const infl_ent_t *ent)
{
    size_t i = s_infl_home(m, ent->id);
    while (m->e[i].id)
        i = (i + 1) & m->mask;
    m->e[i] = *ent;
    m->n++;
}

static int s_infl_put(infl_t *m, uint64_t id, uint64_t t_ns, int op, uint64_t aux)
{
    if ((m->n + 1) * 2 > m->mask + 1) {
        infl_t bigger;
        if (s_infl_init(&bigger, (m->mask + 1) * 2))
            return -1;
        for (size_t i = 0; i <= m->mask; i++)
            if (m->e[i].id)
                s_infl_insert(&bigger, &m->e[i]);
        free(m->e);
        *m = bigger;
    }
    infl_ent_t ent = {id, t_ns, aux, op};
    s_infl_insert(m, &ent);
    return 0;
}

static bool s_infl_take(infl_t *m, uint64_t id, infl_ent_t *out)
{
    if (!id)
        return false;
    size_t i = s_infl_home(m, id);
    while (m->e[i].id != id) {
        if (!m->e[i].id)
            return false;
        i = (i + 1) & m->mask;
    }
    *out = m->e[i];
    m->e[i].id = 0;
    m->n--;
    /* Backward shift: pull later entries of the cluster into the hole. */
    size_t hole = i;
    for (size_t j = (i + 1) & m->mask; m->e[j].id; j = (j + 1) & m->mask) {
        size_t home = s_infl_home(m, m->e[j].id);
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            m->e[hole] = m->e[j];
            m->e[j].id = 0;
            hole = j;
        }
    }
    return true;
}

/* ------------------------------------------------------------ the run */

/* mixed's operations. */
enum { OP_ECHO, OP_SLEEP, OP_STATUS, OP_WAIT, OP_FETCH, OP_CANCEL, OP_COUNT };
static const char *s_op_names[OP_COUNT] = {"submit_echo", "submit_sleep", "status",
                                           "wait",        "fetch",        "cancel"};

typedef struct bench bench_t;

typedef struct {
    bench_t *b;
    int index;
    refcache_client_t *client;
    pthread_t thread;
    uint64_t quota; /* requests for this connection; 0 with a duration */
    uint64_t rng;
    pthread_mutex_t mu;
    rc_hist_t *ival; /* this second's latencies, under mu, for the series */
    rc_hist_t *lat;  /* every latency (ns), this thread only */
    rc_hist_t *stop; /* cancel: stop latency (ns) */
    rc_hist_t *op[OP_COUNT];
    uint64_t op_count[OP_COUNT];
    _Atomic uint64_t done;
    uint64_t errors[ERR_COUNT];
    uint64_t cancel_lost; /* mixed: cancels that found the task already done */
} conn_t;

typedef struct {
    double t_s;
    double rate;
    double p50_us;
    double p99_us;
} sample_t;

struct bench {
    opts_t o;
    conn_t *conns;
    uint64_t nonce;
    uint64_t t_start_ns;
    uint64_t deadline_ns; /* duration mode: stop sending after this */
    _Atomic int running;  /* connection threads still running */
    _Atomic uint64_t t_end_ns;
    sample_t *samples;
    size_t nsamples, samples_cap;
    /* storm */
    double cancel_all_s, drain_s;
    uint64_t storm_cancelled, storm_not_cancelled, started_after_cancel, occupiers;
};

static volatile sig_atomic_t s_interrupted;

static void s_on_signal(int sig)
{
    (void) sig;
    s_interrupted = 1;
}

static bool s_should_stop(conn_t *c, uint64_t sent)
{
    if (s_interrupted)
        return true;
    if (c->quota)
        return sent >= c->quota;
    return s_mono_ns() >= c->b->deadline_ns;
}

static void s_record(conn_t *c, rc_hist_t *h, uint64_t ns)
{
    rc_hist_record(h, ns);
    pthread_mutex_lock(&c->mu);
    rc_hist_record(c->ival, ns);
    pthread_mutex_unlock(&c->mu);
}

static void s_count_done(conn_t *c)
{
    atomic_fetch_add_explicit(&c->done, 1, memory_order_relaxed);
}

static void s_error(conn_t *c, int cls)
{
    c->errors[cls]++;
}

/* No reply for longer than any request can be held (the async timeout of
 * 30 s, plus a margin) means the broker is gone: count what is outstanding
 * as timed out. Returns true if it gave up. */
static bool s_give_up(conn_t *c, uint64_t last_reply_ns, uint64_t now_ns, uint64_t *got, uint64_t sent)
{
    if (now_ns - last_reply_ns <= 35000000000ull)
        return false;
    for (; *got < sent; (*got)++) {
        s_error(c, s_err_class(REFCACHE_ETIMEOUT));
        s_count_done(c);
    }
    return true;
}

/* Sends nothing; waits for the reply to id, discarding others (those only
 * occur when an earlier wait gave up). */
static int s_await(conn_t *c, uint64_t id, refcache_reply_t *r, int timeout_ms)
{
    uint64_t deadline = s_mono_ns() + (uint64_t) timeout_ms * 1000000u;
    for (;;) {
        uint64_t now = s_mono_ns();
        int left = now >= deadline ? 0 : (int) ((deadline - now) / 1000000u);
        int rc = refcache_client_recv(c->client, r, left);
        if (rc)
            return rc;
        if (r->id == id)
            return r->code;
        if (now >= deadline)
            return REFCACHE_ETIMEOUT;
    }
}

/* Fills the payload's first 16 bytes: the run's nonce mixed with the
 * connection, then the sequence number, so that no two requests of any run
 * carry the same payload. */
static void s_stamp(uint8_t *payload, uint64_t nonce, int conn, uint64_t seq)
{
    uint64_t a = nonce ^ ((uint64_t) conn << 48);
    memcpy(payload, &a, 8);
    memcpy(payload + 8, &seq, 8);
}

/* A reply to an echo Submit: COMPLETE with our bytes back. */
static void s_check_submit(conn_t *c, const refcache_reply_t *r, uint64_t seq, uint64_t lat_ns, bool is_echo)
{
    const opts_t *o = &c->b->o;
    if (r->code) {
        s_error(c, s_err_class(r->code));
    } else if (r->task.state != REFCACHE_STATE_COMPLETE) {
        s_error(c, ERR_INCOMPLETE);
    } else if (is_echo && (r->task.result_len != o->payload_size || !r->task.result ||
                           memcmp(r->task.result + 8, &seq, 8) != 0)) {
        s_error(c, ERR_BAD_RESULT);
    } else {
        s_record(c, c->lat, lat_ns);
    }
    s_count_done(c);
}

/* throughput, and latency without --rate: a closed loop with depth requests
 * outstanding, each Submit held by async_timeout until its task finished. */
static void s_run_closed(conn_t *c)
{
    const opts_t *o = &c->b->o;
    bool is_echo = strcmp(o->function, "echo") == 0;
    uint8_t *payload = calloc(1, o->payload_size);
    infl_t m;
    if (!payload || s_infl_init(&m, (size_t) o->depth)) {
        free(payload);
        s_error(c, ERR_LIB0 + 4);
        return;
    }
    for (size_t i = 16; i < o->payload_size; i++)
        payload[i] = (uint8_t) ('a' + i % 26);
    refcache_submit_options_t so;
    refcache_submit_options_init(&so);
    so.payload = payload;
    so.payload_len = o->payload_size;
    so.async_timeout_ms = 30000;
    uint64_t sent = 0, got = 0, last_reply = s_mono_ns();
    bool stopping = false;
    refcache_reply_t r;
    for (;;) {
        /* One time for the burst: its requests leave together, in batches,
         * when the client reads next (or as each batch fills). */
        uint64_t t_send = s_mono_ns();
        while (!stopping && sent - got < (uint64_t) o->depth) {
            if (s_should_stop(c, sent)) {
                stopping = true;
                break;
            }
            uint64_t id, seq = sent + 1;
            s_stamp(payload, c->b->nonce, c->index, seq);
            int rc = refcache_client_send_submit(c->client, o->function, &so, &id);
            if (rc) {
                s_error(c, s_err_class(rc));
                s_count_done(c);
                sent++, got++;
                continue;
            }
            s_infl_put(&m, id, t_send, 0, seq);
            sent++;
        }
        if (got == sent && (stopping || s_should_stop(c, sent)))
            break;
        int rc = refcache_client_recv(c->client, &r, 1000);
        uint64_t now = s_mono_ns();
        infl_ent_t e;
        if (rc == REFCACHE_ETIMEOUT || rc == REFCACHE_EINTR) {
            if (s_give_up(c, last_reply, now, &got, sent))
                stopping = true;
            continue;
        }
        if (rc) {
            s_error(c, s_err_class(rc));
            continue;
        }
        for (;;) {
            last_reply = now;
            if (s_infl_take(&m, r.id, &e)) { /* else not ours */
                got++;
                s_check_submit(c, &r, e.aux, now - e.t_ns, is_echo);
            }
            /* Take every reply already here before sending more, so that
             * sends go out in batches as the replies came in. */
            if (got == sent)
                break;
            rc = refcache_client_recv(c->client, &r, 0);
            if (rc) {
                if (rc != REFCACHE_ETIMEOUT)
                    s_error(c, s_err_class(rc));
                break;
            }
            now = s_mono_ns();
        }
    }
    s_infl_free(&m);
    free(payload);
}

/* Waits up to ns nanoseconds for a reply to be readable; 1 if one is, 0 if
 * not. Uses the socket's ZMQ_FD with ppoll for sub-millisecond timeouts
 * (zmq_poll counts in milliseconds); the fd only signals that ZMQ_EVENTS may
 * have changed, so ZMQ_EVENTS is checked before and after each wait. */
static int s_wait_readable(refcache_client_t *cl, uint64_t ns)
{
    void *sock = refcache_client_socket(cl);
    int fd;
    size_t len = sizeof fd;
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &len) != 0)
        return 1; /* let refcache_client_recv report the problem */
    uint64_t deadline = s_mono_ns() + ns;
    for (;;) {
        int events;
        len = sizeof events;
        if (zmq_getsockopt(sock, ZMQ_EVENTS, &events, &len) != 0 || (events & ZMQ_POLLIN))
            return 1;
        uint64_t now = s_mono_ns();
        if (now >= deadline)
            return 0;
        uint64_t left = deadline - now;
        struct timespec t = {(time_t) (left / 1000000000u), (long) (left % 1000000000u)};
        struct pollfd p = {fd, POLLIN, 0};
        ppoll(&p, 1, &t, NULL);
    }
}

/* latency with --rate: an open loop. Request i is due at start + i/rate; its
 * latency counts from then, so a stall that delays sending is measured too
 * (no coordinated omission). */
static void s_run_open(conn_t *c)
{
    const opts_t *o = &c->b->o;
    bool is_echo = strcmp(o->function, "echo") == 0;
    uint8_t *payload = calloc(1, o->payload_size);
    infl_t m;
    if (!payload || s_infl_init(&m, 1024)) {
        free(payload);
        s_error(c, ERR_LIB0 + 4);
        return;
    }
    refcache_submit_options_t so;
    refcache_submit_options_init(&so);
    so.payload = payload;
    so.payload_len = o->payload_size;
    so.async_timeout_ms = 30000;
    uint64_t interval = (uint64_t) (1e9 * o->connections / o->rate);
    uint64_t next = c->b->t_start_ns + interval * (uint64_t) c->index / (uint64_t) o->connections;
    uint64_t sent = 0, got = 0, last_reply = s_mono_ns();
    bool stopping = false;
    refcache_reply_t r;
    for (;;) {
        uint64_t now = s_mono_ns();
        while (!stopping && now >= next) {
            if (s_should_stop(c, sent)) {
                stopping = true;
                break;
            }
            uint64_t id, seq = sent + 1;
            s_stamp(payload, c->b->nonce, c->index, seq);
            int rc = refcache_client_send_submit(c->client, o->function, &so, &id);
            if (rc) {
                s_error(c, s_err_class(rc));
                s_count_done(c);
                got++;
            } else {
                s_infl_put(&m, id, next, 0, seq);
            }
            sent++;
            next += interval;
        }
        if (!stopping && s_should_stop(c, sent))
            stopping = true;
        if (stopping && got == sent)
            break;
        int wait_ms = 1000;
        if (!stopping) {
            now = s_mono_ns();
            refcache_client_flush(c->client); /* an error shows at the receive */
            if (!s_wait_readable(c->client, next > now ? next - now : 0))
                continue; /* time to send the next one */
            wait_ms = 0;
        }
        int rc = refcache_client_recv(c->client, &r, wait_ms);
        now = s_mono_ns();
        if (rc == REFCACHE_ETIMEOUT || rc == REFCACHE_EINTR) {
            if (stopping)
                s_give_up(c, last_reply, now, &got, sent);
            continue;
        }
        if (rc) {
            s_error(c, s_err_class(rc));
            continue;
        }
        last_reply = now;
        infl_ent_t e;
        if (!s_infl_take(&m, r.id, &e))
            continue;
        got++;
        s_check_submit(c, &r, e.aux, now - e.t_ns, is_echo);
    }
    s_infl_free(&m);
    free(payload);
}

/* Polls Status every half millisecond until done(reply) or timeout; returns
 * the last code (0 with *r filled) or an error. */
typedef bool (*s_poll_done_fn)(const refcache_reply_t *r);

static int s_poll_status(conn_t *c, const char *ref, refcache_reply_t *r, s_poll_done_fn done, int timeout_ms)
{
    uint64_t deadline = s_mono_ns() + (uint64_t) timeout_ms * 1000000u;
    for (;;) {
        uint64_t id;
        int rc = refcache_client_send_status(c->client, ref, &id);
        if (rc == 0)
            rc = s_await(c, id, r, 5000);
        if (rc)
            return rc;
        if (done(r))
            return 0;
        if (s_mono_ns() >= deadline)
            return REFCACHE_ETIMEOUT;
        s_sleep_ns(500000);
    }
}

static bool s_is_started(const refcache_reply_t *r)
{
    return (r->task.state == REFCACHE_STATE_PROCESSING && r->task.started_at_us) ||
           rc_state_is_terminal(r->task.state);
}

static bool s_is_stopped(const refcache_reply_t *r)
{
    return r->task.stopped_at_us != 0;
}

/* cancel: one sleep task at a time per connection, cancelled at a random
 * point after it started. Stop latency compares the broker's stopped_at_us
 * with this process's wall clock at the cancel's send: both CLOCK_REALTIME,
 * valid only with the broker on this machine. */
static void s_run_cancel(conn_t *c)
{
    const opts_t *o = &c->b->o;
    char ms[16], ref[REFCACHE_REF_MAX + 1];
    snprintf(ms, sizeof ms, "%" PRIu32, o->task_ms);
    refcache_param_t params[] = {{"ms", ms}, {"step_ms", "10"}};
    refcache_submit_options_t so;
    refcache_submit_options_init(&so);
    so.params = params;
    so.param_count = 2;
    so.no_cache = true;
    refcache_reply_t r;
    uint64_t max_wait_ms = o->task_ms / 2 < 100 ? o->task_ms / 2 : 100;
    for (uint64_t n = 0; !s_should_stop(c, n); n++) {
        uint64_t id;
        int rc = refcache_client_send_submit(c->client, "sleep", &so, &id);
        if (rc == 0)
            rc = s_await(c, id, &r, 10000);
        if (rc) {
            s_error(c, s_err_class(rc));
            s_count_done(c);
            continue;
        }
        snprintf(ref, sizeof ref, "%s", r.task.ref_id);
        rc = s_poll_status(c, ref, &r, s_is_started, 30000);
        if (rc || rc_state_is_terminal(r.task.state)) {
            s_error(c, rc ? s_err_class(rc) : ERR_NO_START);
            s_count_done(c);
            continue;
        }
        if (max_wait_ms)
            s_sleep_ns(s_rand(&c->rng) % (max_wait_ms * 1000000u));
        uint64_t t_wall = rc_wall_us(), t0 = s_mono_ns();
        rc = refcache_client_send_cancel(c->client, ref, &id);
        if (rc == 0)
            rc = s_await(c, id, &r, 10000);
        uint64_t reply_ns = s_mono_ns() - t0;
        if (rc) {
            s_error(c, s_err_class(rc));
            s_count_done(c);
            continue;
        }
        s_record(c, c->lat, reply_ns);
        if (!r.cancelled) {
            s_error(c, ERR_NOT_CANCELLED);
            s_count_done(c);
            continue;
        }
        rc = s_poll_status(c, ref, &r, s_is_stopped, 5000);
        if (rc) {
            s_error(c, rc == REFCACHE_ETIMEOUT ? ERR_STOP_TIMEOUT : s_err_class(rc));
        } else {
            uint64_t stopped = r.task.stopped_at_us;
            rc_hist_record(c->stop, stopped > t_wall ? (stopped - t_wall) * 1000u : 0);
        }
        s_count_done(c);
    }
}

static int s_stats(refcache_client_t *cl, refcache_stats_t *st)
{
    return refcache_client_stats(cl, st, 5000);
}

/* Sends count requests built by send(i) with at most depth outstanding and
 * hands each reply to on_reply(i); used by storm for its bulk phases. */
typedef int (*s_send_fn)(conn_t *c, uint64_t i, uint64_t *id, void *ctx);
typedef void (*s_reply_fn)(conn_t *c, uint64_t i, const refcache_reply_t *r, uint64_t lat_ns, void *ctx);

static int s_pipeline(conn_t *c, uint64_t count, s_send_fn send, s_reply_fn on_reply, void *ctx)
{
    infl_t m;
    if (s_infl_init(&m, (size_t) c->b->o.depth))
        return REFCACHE_ENOMEM;
    uint64_t sent = 0, got = 0;
    refcache_reply_t r;
    int result = 0;
    while (got < count) {
        while (sent < count && sent - got < (uint64_t) c->b->o.depth) {
            uint64_t id;
            int rc = send(c, sent, &id, ctx);
            if (rc) {
                s_error(c, s_err_class(rc));
                got++;
            } else {
                s_infl_put(&m, id, s_mono_ns(), 0, sent);
            }
            sent++;
        }
        if (got >= count)
            break;
        int rc = refcache_client_recv(c->client, &r, 30000);
        if (rc) {
            result = rc;
            break;
        }
        infl_ent_t e;
        if (!s_infl_take(&m, r.id, &e))
            continue;
        got++;
        on_reply(c, e.aux, &r, s_mono_ns() - e.t_ns, ctx);
    }
    s_infl_free(&m);
    return result;
}

typedef struct {
    char (*refs)[REFCACHE_REF_MAX + 1];
    bool *cancelled;
    refcache_submit_options_t so;
    uint64_t first_send_ns, last_reply_ns;
} storm_t;

static int s_storm_send_submit(conn_t *c, uint64_t i, uint64_t *id, void *ctx)
{
    storm_t *s = ctx;
    return refcache_client_send_submit(c->client, "sleep", &s->so, id);
}

static void s_storm_on_submit(conn_t *c, uint64_t i, const refcache_reply_t *r, uint64_t lat_ns, void *ctx)
{
    storm_t *s = ctx;
    if (r->code)
        s_error(c, s_err_class(r->code));
    snprintf(s->refs[i], sizeof s->refs[i], "%s", r->code ? "" : r->task.ref_id);
}

static int s_storm_send_cancel(conn_t *c, uint64_t i, uint64_t *id, void *ctx)
{
    storm_t *s = ctx;
    if (i == 0)
        s->first_send_ns = s_mono_ns();
    return refcache_client_send_cancel(c->client, s->refs[i], id);
}

static void s_storm_on_cancel(conn_t *c, uint64_t i, const refcache_reply_t *r, uint64_t lat_ns, void *ctx)
{
    storm_t *s = ctx;
    s->last_reply_ns = s_mono_ns();
    if (r->code) {
        s_error(c, s_err_class(r->code));
    } else {
        s_record(c, c->lat, lat_ns);
        s->cancelled[i] = r->cancelled;
        if (r->cancelled)
            c->b->storm_cancelled++;
        else
            c->b->storm_not_cancelled++;
    }
    s_count_done(c);
}

static int s_storm_send_status(conn_t *c, uint64_t i, uint64_t *id, void *ctx)
{
    storm_t *s = ctx;
    return refcache_client_send_status(c->client, s->refs[i], id);
}

static void s_storm_on_status(conn_t *c, uint64_t i, const refcache_reply_t *r, uint64_t lat_ns, void *ctx)
{
    storm_t *s = ctx;
    if (r->code)
        s_error(c, s_err_class(r->code));
    else if (s->cancelled[i] && r->task.ever_started)
        c->b->started_after_cancel++;
}

/* storm: occupy every worker slot with long sleeps, queue N short sleeps
 * behind them, cancel the N pipelined, wait for the broker's queue to empty,
 * then check that no task answered cancelled=true ever started. */
static void s_run_storm(conn_t *c)
{
    bench_t *b = c->b;
    const opts_t *o = &b->o;
    uint64_t n = c->quota;
    storm_t s = {0};
    s.refs = calloc(n, sizeof *s.refs);
    s.cancelled = calloc(n, sizeof *s.cancelled);
    char(*occ)[REFCACHE_REF_MAX + 1] = calloc(4096, sizeof *occ);
    if (!s.refs || !s.cancelled || !occ) {
        s_error(c, ERR_LIB0 + 4);
        goto done;
    }
    /* Occupy: submit long sleeps one by one until one stays queued, which
     * means every worker's credit is used; that last one is cancelled. */
    refcache_param_t occ_params[] = {{"ms", "600000"}, {"step_ms", "10"}};
    refcache_submit_options_t oso;
    refcache_submit_options_init(&oso);
    oso.params = occ_params;
    oso.param_count = 2;
    oso.no_cache = true;
    refcache_reply_t r;
    refcache_stats_t st;
    int rc;
    for (;;) {
        uint64_t id;
        if (b->occupiers == 4096) {
            s_error(c, ERR_INCOMPLETE);
            goto cleanup;
        }
        rc = refcache_client_send_submit(c->client, "sleep", &oso, &id);
        if (rc == 0)
            rc = s_await(c, id, &r, 10000);
        if (rc) {
            s_error(c, s_err_class(rc));
            goto cleanup;
        }
        snprintf(occ[b->occupiers++], sizeof occ[0], "%s", r.task.ref_id);
        if ((rc = s_stats(c->client, &st)) != 0) {
            s_error(c, s_err_class(rc));
            goto cleanup;
        }
        if (st.queue_depth > 0)
            break;
    }
    char ms[16];
    snprintf(ms, sizeof ms, "%" PRIu32, o->task_ms);
    refcache_param_t params[] = {{"ms", ms}, {"step_ms", "10"}};
    refcache_submit_options_init(&s.so);
    s.so.params = params;
    s.so.param_count = 2;
    s.so.no_cache = true;
    if ((rc = s_pipeline(c, n, s_storm_send_submit, s_storm_on_submit, &s)) != 0) {
        s_error(c, s_err_class(rc));
        goto cleanup;
    }
    if ((rc = s_pipeline(c, n, s_storm_send_cancel, s_storm_on_cancel, &s)) != 0) {
        s_error(c, s_err_class(rc));
        goto cleanup;
    }
    b->cancel_all_s = (double) (s.last_reply_ns - s.first_send_ns) / 1e9;
    /* Drain: the queue holds only the last occupier now (cancelled below), so
     * idle means no PENDING task beyond it. */
    uint64_t t_drain = s_mono_ns();
    for (;;) {
        if ((rc = s_stats(c->client, &st)) != 0) {
            s_error(c, s_err_class(rc));
            break;
        }
        if (st.tasks_pending <= 1 && st.queue_depth <= 1) {
            b->drain_s = (double) (s_mono_ns() - t_drain) / 1e9;
            break;
        }
        if (s_mono_ns() - t_drain > 60000000000ull) {
            s_error(c, ERR_INCOMPLETE);
            b->drain_s = -1;
            break;
        }
        s_sleep_ns(200000);
    }
    if ((rc = s_pipeline(c, n, s_storm_send_status, s_storm_on_status, &s)) != 0)
        s_error(c, s_err_class(rc));
cleanup:
    for (uint64_t i = 0; i < b->occupiers; i++) {
        uint64_t id;
        if (refcache_client_send_cancel(c->client, occ[i], &id) == 0)
            s_await(c, id, &r, 5000);
    }
done:
    free(occ);
    free(s.refs);
    free(s.cancelled);
}

/* mixed: a pipelined loop (depth outstanding) choosing each request at
 * random: short echo submits of various sizes, short sleeps (at most two
 * live per connection, so the workers are not buried), status polls and
 * waits on those sleeps, cancels of them, and page fetches of a large
 * `primes` result computed once per connection. */
#define MIXED_LIVE 2

typedef struct {
    char ref[REFCACHE_REF_MAX + 1]; /* "" when free */
} live_t;

static int s_pick_live(conn_t *c, live_t *live)
{
    int n = 0, idx[MIXED_LIVE];
    for (int i = 0; i < MIXED_LIVE; i++)
        if (live[i].ref[0])
            idx[n++] = i;
    return n ? idx[s_rand(&c->rng) % (uint64_t) n] : -1;
}

static void s_run_mixed(conn_t *c)
{
    const opts_t *o = &c->b->o;
    refcache_reply_t r;
    /* The large result: primes below ~300k, about 180 KB, read with Fetch. */
    char nbuf[24], primes_ref[REFCACHE_REF_MAX + 1] = "";
    uint64_t primes_size = 0;
    snprintf(nbuf, sizeof nbuf, "%d", 300000 + c->index);
    refcache_param_t pparams[] = {{"n", nbuf}};
    refcache_submit_options_t pso;
    refcache_submit_options_init(&pso);
    pso.params = pparams;
    pso.param_count = 1;
    pso.async_timeout_ms = 30000;
    uint64_t id;
    int rc = refcache_client_send_submit(c->client, "primes", &pso, &id);
    if (rc == 0)
        rc = s_await(c, id, &r, 40000);
    if (rc == 0 && r.task.state == REFCACHE_STATE_COMPLETE) {
        snprintf(primes_ref, sizeof primes_ref, "%s", r.task.ref_id);
        primes_size = r.task.result_size;
    } else {
        s_error(c, rc ? s_err_class(rc) : ERR_INCOMPLETE);
    }

    uint8_t payload[4096];
    memset(payload, 'm', sizeof payload);
    char ms[16];
    refcache_param_t sparams[] = {{"ms", ms}, {"step_ms", "5"}};
    live_t live[MIXED_LIVE];
    memset(live, 0, sizeof live);
    int pending_sleeps = 0;
    infl_t m;
    if (s_infl_init(&m, (size_t) o->depth)) {
        s_error(c, ERR_LIB0 + 4);
        return;
    }
    uint64_t sent = 0, got = 0, seq = 0;
    bool stopping = false;
    uint64_t last_reply = s_mono_ns();
    while (!(stopping && got == sent)) {
        while (!stopping && sent - got < (uint64_t) o->depth) {
            if (s_should_stop(c, sent)) {
                stopping = true;
                break;
            }
            /* Weights out of 100: echo 35, sleep 10, status 20, wait 10, fetch 15, cancel 10. */
            uint64_t dice = s_rand(&c->rng) % 100;
            int op = dice < 35   ? OP_ECHO
                     : dice < 45 ? OP_SLEEP
                     : dice < 65 ? OP_STATUS
                     : dice < 75 ? OP_WAIT
                     : dice < 90 ? OP_FETCH
                                 : OP_CANCEL;
            int slot = -1;
            if (op == OP_STATUS || op == OP_WAIT || op == OP_CANCEL) {
                slot = s_pick_live(c, live);
                if (slot < 0)
                    op = OP_SLEEP;
            }
            if (op == OP_SLEEP) {
                int free_slot = -1;
                for (int i = 0; i < MIXED_LIVE; i++)
                    if (!live[i].ref[0])
                        free_slot = i;
                if (free_slot < 0 || pending_sleeps)
                    op = OP_ECHO;
            }
            if (op == OP_FETCH && !primes_ref[0])
                op = OP_ECHO;
            switch (op) {
            case OP_ECHO: {
                refcache_submit_options_t so;
                refcache_submit_options_init(&so);
                so.payload = payload;
                so.payload_len = 16 + (size_t) (s_rand(&c->rng) % (sizeof payload - 16));
                so.async_timeout_ms = 30000;
                s_stamp(payload, c->b->nonce, c->index, ++seq);
                rc = refcache_client_send_submit(c->client, "echo", &so, &id);
                break;
            }
            case OP_SLEEP: {
                refcache_submit_options_t so;
                refcache_submit_options_init(&so);
                snprintf(ms, sizeof ms, "%u", (unsigned) (5 + s_rand(&c->rng) % 46));
                so.params = sparams;
                so.param_count = 2;
                so.no_cache = true;
                rc = refcache_client_send_submit(c->client, "sleep", &so, &id);
                if (rc == 0)
                    pending_sleeps++;
                break;
            }
            case OP_STATUS:
                rc = refcache_client_send_status(c->client, live[slot].ref, &id);
                break;
            case OP_WAIT:
                rc = refcache_client_send_wait(c->client, live[slot].ref, 100, &id);
                break;
            case OP_FETCH: {
                uint32_t page = 65536;
                uint64_t off = primes_size > page ? s_rand(&c->rng) % (primes_size - page) : 0;
                rc = refcache_client_send_fetch(c->client, primes_ref, off, page, &id);
                break;
            }
            default:
                rc = refcache_client_send_cancel(c->client, live[slot].ref, &id);
                live[slot].ref[0] = 0; /* a cancelled task is not polled again */
                break;
            }
            if (rc) {
                s_error(c, s_err_class(rc));
                s_count_done(c);
                sent++, got++;
                continue;
            }
            s_infl_put(&m, id, s_mono_ns(), op, (uint64_t) (slot + 1));
            sent++;
        }
        if (stopping && got == sent)
            break;
        rc = refcache_client_recv(c->client, &r, 1000);
        if (rc == REFCACHE_ETIMEOUT || rc == REFCACHE_EINTR) {
            if (s_give_up(c, last_reply, s_mono_ns(), &got, sent))
                stopping = true;
            continue;
        }
        if (rc) {
            s_error(c, s_err_class(rc));
            continue;
        }
        uint64_t now = s_mono_ns();
        last_reply = now;
        infl_ent_t e;
        if (!s_infl_take(&m, r.id, &e))
            continue;
        got++;
        s_count_done(c);
        c->op_count[e.op]++;
        if (e.op == OP_SLEEP)
            pending_sleeps--;
        if (r.code) {
            s_error(c, s_err_class(r.code));
            continue;
        }
        uint64_t lat = now - e.t_ns;
        s_record(c, c->lat, lat);
        rc_hist_record(c->op[e.op], lat);
        if (e.op == OP_ECHO && r.task.state != REFCACHE_STATE_COMPLETE)
            s_error(c, ERR_INCOMPLETE);
        if (e.op == OP_SLEEP) {
            for (int i = 0; i < MIXED_LIVE; i++)
                if (!live[i].ref[0]) {
                    snprintf(live[i].ref, sizeof live[i].ref, "%s", r.task.ref_id);
                    break;
                }
        }
        if ((e.op == OP_STATUS || e.op == OP_WAIT) && rc_state_is_terminal(r.task.state)) {
            int slot = (int) e.aux - 1;
            if (slot >= 0 && strcmp(live[slot].ref, r.task.ref_id) == 0)
                live[slot].ref[0] = 0;
        }
        if (e.op == OP_CANCEL && !r.cancelled)
            c->cancel_lost++;
    }
    /* Leave nothing running behind. */
    for (int i = 0; i < MIXED_LIVE; i++)
        if (live[i].ref[0] && refcache_client_send_cancel(c->client, live[i].ref, &id) == 0)
            s_await(c, id, &r, 5000);
    s_infl_free(&m);
}

static void *s_conn_main(void *arg)
{
    conn_t *c = arg;
    switch (c->b->o.scenario) {
    case SC_THROUGHPUT:
        s_run_closed(c);
        break;
    case SC_LATENCY:
        if (c->b->o.rate > 0)
            s_run_open(c);
        else
            s_run_closed(c);
        break;
    case SC_CANCEL:
        s_run_cancel(c);
        break;
    case SC_STORM:
        s_run_storm(c);
        break;
    default:
        s_run_mixed(c);
        break;
    }
    uint64_t end = s_mono_ns(), prev = atomic_load(&c->b->t_end_ns);
    while (end > prev && !atomic_compare_exchange_weak(&c->b->t_end_ns, &prev, end))
        ;
    atomic_fetch_sub(&c->b->running, 1);
    return NULL;
}

/* ------------------------------------------------------------ output */

/* A growing buffer for one JSON object with nested objects. */
typedef struct {
    char *buf;
    size_t len, cap;
    int depth;
    bool first[16];
    bool failed;
} jb_t;

static void jb_raw(jb_t *j, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(j->buf ? j->buf + j->len : NULL, j->buf ? j->cap - j->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            j->failed = true;
            return;
        }
        if (j->buf && j->len + (size_t) n < j->cap) {
            j->len += (size_t) n;
            return;
        }
        size_t cap = j->cap ? j->cap * 2 : 1024;
        while (cap < j->len + (size_t) n + 1)
            cap *= 2;
        char *nb = realloc(j->buf, cap);
        if (!nb) {
            j->failed = true;
            return;
        }
        j->buf = nb;
        j->cap = cap;
    }
}

static void jb_key(jb_t *j, const char *key)
{
    if (!key)
        return;
    if (!j->first[j->depth])
        jb_raw(j, ",");
    j->first[j->depth] = false;
    jb_raw(j, "\"%s\":", key);
}

static void jb_begin(jb_t *j, const char *key)
{
    jb_key(j, key);
    jb_raw(j, "{");
    j->first[++j->depth] = true;
}

static void jb_end(jb_t *j)
{
    jb_raw(j, "}");
    j->depth--;
}

static void jb_u64(jb_t *j, const char *key, uint64_t v)
{
    jb_key(j, key);
    jb_raw(j, "%" PRIu64, v);
}

static void jb_num(jb_t *j, const char *key, double v)
{
    jb_key(j, key);
    jb_raw(j, "%.3f", isfinite(v) ? v : 0.0);
}

static void jb_str(jb_t *j, const char *key, const char *s)
{
    char esc[1024];
    rc_json_escape(s, strlen(s), esc, sizeof esc);
    jb_key(j, key);
    jb_raw(j, "\"%s\"", esc);
}

static double s_us(uint64_t ns)
{
    return (double) ns / 1000.0;
}

static void jb_hist(jb_t *j, const char *key, const rc_hist_t *h)
{
    jb_begin(j, key);
    jb_u64(j, "count", rc_hist_count(h));
    jb_num(j, "p50", s_us(rc_hist_percentile(h, 50)));
    jb_num(j, "p90", s_us(rc_hist_percentile(h, 90)));
    jb_num(j, "p99", s_us(rc_hist_percentile(h, 99)));
    jb_num(j, "p999", s_us(rc_hist_percentile(h, 99.9)));
    jb_num(j, "max", s_us(rc_hist_max(h)));
    jb_num(j, "mean", s_us((uint64_t) rc_hist_mean(h)));
    jb_end(j);
}

static void jb_stats(jb_t *j, const char *key, const refcache_stats_t *st, bool ok)
{
    jb_begin(j, key);
    jb_u64(j, "ok", ok);
    if (ok) {
        jb_u64(j, "tasks",
               st->tasks_pending + st->tasks_processing + st->tasks_complete + st->tasks_failed +
                   st->tasks_cancelled);
        jb_begin(j, "tasks_by_state");
        jb_u64(j, "pending", st->tasks_pending);
        jb_u64(j, "processing", st->tasks_processing);
        jb_u64(j, "complete", st->tasks_complete);
        jb_u64(j, "failed", st->tasks_failed);
        jb_u64(j, "cancelled", st->tasks_cancelled);
        jb_end(j);
        jb_u64(j, "queue_depth", st->queue_depth);
        jb_u64(j, "workers", st->workers);
        jb_u64(j, "rss_bytes", st->rss_bytes);
        jb_u64(j, "cache_bytes", st->cache_bytes);
        jb_u64(j, "cache_entries", st->cache_entries);
        jb_u64(j, "dropped_replies_total", st->dropped_replies_total);
    }
    jb_end(j);
}

/* ------------------------------------------------------------ sampling */

static void s_sample(bench_t *b, rc_hist_t *tmp, uint64_t *prev_done, uint64_t *prev_t, bool print)
{
    uint64_t now = s_mono_ns(), done = 0;
    rc_hist_reset(tmp);
    for (int i = 0; i < b->o.connections; i++) {
        conn_t *c = &b->conns[i];
        done += atomic_load_explicit(&c->done, memory_order_relaxed);
        pthread_mutex_lock(&c->mu);
        rc_hist_merge(tmp, c->ival);
        rc_hist_reset(c->ival);
        pthread_mutex_unlock(&c->mu);
    }
    double dt = (double) (now - *prev_t) / 1e9;
    if (dt <= 0)
        return;
    sample_t s = {(double) (now - b->t_start_ns) / 1e9, (double) (done - *prev_done) / dt,
                  s_us(rc_hist_percentile(tmp, 50)), s_us(rc_hist_percentile(tmp, 99))};
    *prev_done = done;
    *prev_t = now;
    if (b->nsamples == b->samples_cap) {
        size_t cap = b->samples_cap ? b->samples_cap * 2 : 64;
        sample_t *ns = realloc(b->samples, cap * sizeof *ns);
        if (!ns)
            return;
        b->samples = ns;
        b->samples_cap = cap;
    }
    b->samples[b->nsamples++] = s;
    if (print)
        fprintf(stderr, "\r%6.1fs  done %-10" PRIu64 " rate %10.0f/s  p99 %10.1f us   ", s.t_s, done, s.rate,
                s.p99_us);
}

/* ------------------------------------------------------------ report */

static bool s_on_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        return false;
    char buf[4096];
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t) (colon - path) : strlen(path);
        if (n > 0 && n < sizeof buf - strlen(prog) - 2) {
            snprintf(buf, sizeof buf, "%.*s/%s", (int) n, path, prog);
            if (access(buf, X_OK) == 0)
                return true;
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return false;
}

static int s_write_file(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "refcache-bench: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

/* The plot's title: the scenario and every parameter that shaped the run,
 * so that a plot read on its own says what it measured (quotes dropped:
 * gnuplot reads the title between single quotes). */
static void s_plot_title(const opts_t *o, char *buf, size_t size)
{
    char amount[64], rate[48] = "", work[160] = "", batch[32];
    if (o->duration_s > 0)
        snprintf(amount, sizeof amount, "%.0f s", o->duration_s);
    else
        snprintf(amount, sizeof amount, "%" PRIu64 " requests", o->requests);
    if (o->rate > 0)
        snprintf(rate, sizeof rate, ", open loop %.0f/s", o->rate);
    if (o->scenario == SC_CANCEL || o->scenario == SC_STORM)
        snprintf(work, sizeof work, "sleep tasks %" PRIu32 " ms, ", o->task_ms);
    else if (o->scenario != SC_MIXED) /* mixed picks its own functions */
        snprintf(work, sizeof work, "function %s, payload %zu B, ", o->function, o->payload_size);
    if (o->batch)
        snprintf(batch, sizeof batch, "%u", o->batch);
    else
        snprintf(batch, sizeof batch, "default");
    snprintf(buf, size, "refcache-bench %s (refcache %s): %s,\\n%d connection%s x depth %d, %s%s, %sbatch %s",
             s_scenario_names[o->scenario], RC_VERSION, o->endpoint, o->connections,
             o->connections == 1 ? "" : "s", o->depth, amount, rate, work, batch);
    for (char *c = buf; *c; c++)
        if (*c == '\'' || *c == '"')
            *c = ' ';
}

static int s_report(bench_t *b, const char *json)
{
    const char *dir = b->o.report_dir;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "refcache-bench: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (s_write_file(dir, "result.json", json))
        return -1;
    jb_t csv = {0};
    jb_raw(&csv, "t_s,rate_rps,p50_us,p99_us\n");
    for (size_t i = 0; i < b->nsamples; i++)
        jb_raw(&csv, "%.3f,%.1f,%.1f,%.1f\n", b->samples[i].t_s, b->samples[i].rate, b->samples[i].p50_us,
               b->samples[i].p99_us);
    int rc = csv.failed ? -1 : s_write_file(dir, "timeseries.csv", csv.buf);
    free(csv.buf);
    if (rc)
        return -1;
    if (b->nsamples < 2) {
        fprintf(stderr, "refcache-bench: the run was too short for a plot; %s/plot.png skipped\n", dir);
        return 0;
    }
    char title[512];
    s_plot_title(&b->o, title, sizeof title);
    char script[2048];
    snprintf(script, sizeof script,
             "set terminal pngcairo size 900,640 font ',10'\n"
             "set output 'plot.png'\n"
             "set datafile separator ','\n"
             "set key autotitle columnhead\n"
             "set multiplot layout 2,1 title \"%s\"\n"
             "set grid\n"
             "set ylabel 'requests/s'\n"
             "set yrange [0:*]\n"
             "plot 'timeseries.csv' using 1:2 with linespoints title 'rate'\n"
             "set xlabel 'time (s)'\n"
             "set ylabel 'latency (us)'\n"
             "set logscale y\n"
             "set yrange [*:*]\n"
             "plot 'timeseries.csv' using 1:3 with linespoints title 'p50', "
             "'' using 1:4 with linespoints title 'p99'\n"
             "unset multiplot\n",
             title);
    if (s_write_file(dir, "plot.gp", script))
        return -1;
    if (!s_on_path("gnuplot")) {
        fprintf(stderr,
                "refcache-bench: gnuplot is not on PATH; %s/plot.png skipped (gnuplot plot.gp there)\n", dir);
        return 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) != 0)
            _exit(127);
        execlp("gnuplot", "gnuplot", "plot.gp", (char *) NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "refcache-bench: gnuplot failed; %s/plot.png not written\n", dir);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ main */

static void s_print_hist(const char *label, const rc_hist_t *h)
{
    printf("  %-16s n=%-9" PRIu64 " p50 %9.1f  p90 %9.1f  p99 %9.1f  p999 %9.1f  max %9.1f us\n", label,
           rc_hist_count(h), s_us(rc_hist_percentile(h, 50)), s_us(rc_hist_percentile(h, 90)),
           s_us(rc_hist_percentile(h, 99)), s_us(rc_hist_percentile(h, 99.9)), s_us(rc_hist_max(h)));
}

static void s_print_stats(const char *label, const refcache_stats_t *st, bool ok)
{
    if (!ok) {
        printf("  %-16s (Stats failed)\n", label);
        return;
    }
    printf("  %-16s tasks %" PRIu64 " (pending %" PRIu64 ", processing %" PRIu64 ", complete %" PRIu64
           ", failed %" PRIu64 ", cancelled %" PRIu64 "), rss %.1f MiB, cache %.1f MiB\n",
           label,
           st->tasks_pending + st->tasks_processing + st->tasks_complete + st->tasks_failed +
               st->tasks_cancelled,
           st->tasks_pending, st->tasks_processing, st->tasks_complete, st->tasks_failed, st->tasks_cancelled,
           (double) st->rss_bytes / 1048576.0, (double) st->cache_bytes / 1048576.0);
}

int main(int argc, char **argv)
{
    bench_t b;
    memset(&b, 0, sizeof b);
    int prc = s_parse_args(argc, argv, &b.o);
    if (prc)
        return prc > 0 ? 0 : 2;
    const opts_t *o = &b.o;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rc_random_bytes(&b.nonce, sizeof b.nonce);
    char err[256];
    refcache_client_options_t copts;
    refcache_client_options_init(&copts);
    copts.endpoint = o->endpoint;
    copts.max_batch = o->batch;
    refcache_client_t *ctl = refcache_client_new(&copts, err, sizeof err);
    if (!ctl) {
        fprintf(stderr, "refcache-bench: %s\n", err);
        return 3;
    }
    refcache_stats_t before = {0}, after = {0};
    int src = s_stats(ctl, &before);
    if (src) {
        fprintf(stderr, "refcache-bench: no answer from the broker at %s: %s\n", o->endpoint,
                refcache_strerror(src));
        refcache_client_destroy(&ctl);
        return 3;
    }

    b.conns = calloc((size_t) o->connections, sizeof *b.conns);
    if (!b.conns) {
        refcache_client_destroy(&ctl);
        return 1;
    }
    int status = 0;
    for (int i = 0; i < o->connections; i++) {
        conn_t *c = &b.conns[i];
        c->b = &b;
        c->index = i;
        c->rng = b.nonce ^ (UINT64_C(0x9E3779B97F4A7C15) * (uint64_t) (i + 1));
        if (!c->rng)
            c->rng = 1;
        pthread_mutex_init(&c->mu, NULL);
        c->ival = rc_hist_new();
        c->lat = rc_hist_new();
        c->stop = rc_hist_new();
        bool ok = c->ival && c->lat && c->stop;
        for (int k = 0; k < OP_COUNT; k++)
            ok = (c->op[k] = rc_hist_new()) != NULL && ok;
        if (o->requests)
            c->quota = o->requests / (uint64_t) o->connections +
                       ((uint64_t) i < o->requests % (uint64_t) o->connections ? 1 : 0);
        c->client = ok ? refcache_client_new(&copts, err, sizeof err) : NULL;
        refcache_stats_t warm;
        /* Connecting is asynchronous: a first round trip makes it so before the clock starts. */
        if (!c->client || s_stats(c->client, &warm) != 0) {
            fprintf(stderr, "refcache-bench: connection %d failed: %s\n", i, c->client ? "no answer" : err);
            status = 3;
        }
    }
    if (status == 0) {
        b.t_start_ns = s_mono_ns();
        b.deadline_ns = b.t_start_ns + (uint64_t) (o->duration_s * 1e9);
        atomic_store(&b.running, o->connections);
        int started = 0;
        for (int i = 0; i < o->connections; i++) {
            if (pthread_create(&b.conns[i].thread, NULL, s_conn_main, &b.conns[i]) != 0) {
                atomic_fetch_sub(&b.running, 1);
                status = 1;
                break;
            }
            started++;
        }
        bool tty = isatty(STDERR_FILENO);
        rc_hist_t *tmp = rc_hist_new();
        uint64_t prev_done = 0, prev_t = b.t_start_ns, next_sample = b.t_start_ns + 1000000000u;
        while (atomic_load(&b.running) > 0) {
            uint64_t now = s_mono_ns();
            if (now >= next_sample && tmp) {
                s_sample(&b, tmp, &prev_done, &prev_t, tty);
                next_sample += 1000000000u;
            }
            s_sleep_ns(20000000);
        }
        if (tmp && (b.nsamples == 0 || s_mono_ns() - prev_t > 100000000u))
            s_sample(&b, tmp, &prev_done, &prev_t, tty);
        if (tty)
            fprintf(stderr, "\n");
        rc_hist_destroy(&tmp);
        for (int i = 0; i < started; i++)
            pthread_join(b.conns[i].thread, NULL);
    }
    bool after_ok = s_stats(ctl, &after) == 0;

    /* Merge the connections. */
    rc_hist_t *lat = rc_hist_new(), *stop = rc_hist_new(), *ops[OP_COUNT];
    for (int k = 0; k < OP_COUNT; k++)
        ops[k] = rc_hist_new();
    uint64_t errors[ERR_COUNT] = {0}, done = 0, op_count[OP_COUNT] = {0}, cancel_lost = 0, nerrors = 0;
    for (int i = 0; i < o->connections; i++) {
        conn_t *c = &b.conns[i];
        if (c->lat) {
            rc_hist_merge(lat, c->lat);
            rc_hist_merge(stop, c->stop);
            for (int k = 0; k < OP_COUNT; k++)
                rc_hist_merge(ops[k], c->op[k]);
        }
        done += atomic_load(&c->done);
        for (int k = 0; k < ERR_COUNT; k++)
            errors[k] += c->errors[k];
        for (int k = 0; k < OP_COUNT; k++)
            op_count[k] += c->op_count[k];
        cancel_lost += c->cancel_lost;
    }
    for (int k = 0; k < ERR_COUNT; k++)
        nerrors += errors[k];
    uint64_t t_end = atomic_load(&b.t_end_ns);
    double elapsed = t_end > b.t_start_ns ? (double) (t_end - b.t_start_ns) / 1e9 : 0;
    double rps = elapsed > 0 ? (double) done / elapsed : 0;

    jb_t j = {0};
    j.first[0] = true;
    jb_raw(&j, "{");
    jb_str(&j, "scenario", s_scenario_names[o->scenario]);
    jb_str(&j, "version", RC_VERSION);
    jb_str(&j, "endpoint", o->endpoint);
    jb_str(&j, "function", o->scenario <= SC_LATENCY ? o->function : "");
    jb_u64(&j, "connections", (uint64_t) o->connections);
    jb_u64(&j, "depth", (uint64_t) o->depth);
    jb_u64(&j, "payload_size", o->payload_size);
    jb_u64(&j, "batch", o->batch ? o->batch : REFCACHE_BATCH_DEFAULT);
    jb_num(&j, "rate", o->rate);
    jb_num(&j, "duration_s", elapsed);
    jb_u64(&j, "requests", done);
    jb_u64(&j, "requests_wanted", o->requests);
    jb_begin(&j, "errors");
    for (int k = 0; k < ERR_COUNT; k++)
        if (errors[k])
            jb_u64(&j, s_err_name(k), errors[k]);
    jb_end(&j);
    jb_num(&j, "throughput_rps", rps);
    jb_hist(&j, "latency_us", lat);
    if (o->scenario == SC_CANCEL) {
        jb_hist(&j, "cancel_reply_us", lat);
        jb_hist(&j, "stop_latency_us", stop);
        jb_str(&j, "stop_latency_clock",
               "broker stopped_at_us minus this process's CLOCK_REALTIME at the "
               "cancel's send; valid with the broker on this machine");
        jb_u64(&j, "task_ms", o->task_ms);
    }
    if (o->scenario == SC_STORM) {
        jb_num(&j, "cancel_all_s", b.cancel_all_s);
        jb_num(&j, "drain_s", b.drain_s);
        jb_u64(&j, "started_after_cancel", b.started_after_cancel);
        jb_u64(&j, "cancelled", b.storm_cancelled);
        jb_u64(&j, "not_cancelled", b.storm_not_cancelled);
        jb_u64(&j, "occupiers", b.occupiers);
        jb_u64(&j, "task_ms", o->task_ms);
    }
    if (o->scenario == SC_MIXED) {
        jb_begin(&j, "ops");
        for (int k = 0; k < OP_COUNT; k++) {
            jb_begin(&j, s_op_names[k]);
            jb_u64(&j, "count", op_count[k]);
            jb_hist(&j, "latency_us", ops[k]);
            jb_end(&j);
        }
        jb_end(&j);
        jb_u64(&j, "cancels_after_finish", cancel_lost);
    }
    jb_stats(&j, "broker_before", &before, true);
    jb_stats(&j, "broker_after", &after, after_ok);
    jb_raw(&j, "}\n");

    if (!j.failed && o->json) {
        fputs(j.buf, stdout);
    } else {
        printf("refcache-bench %s against %s: %" PRIu64 " requests in %.2f s, %.0f/s, %" PRIu64 " errors\n",
               s_scenario_names[o->scenario], o->endpoint, done, elapsed, rps, nerrors);
        for (int k = 0; k < ERR_COUNT; k++)
            if (errors[k])
                printf("  error %-18s %" PRIu64 "\n", s_err_name(k), errors[k]);
        s_print_hist(o->scenario == SC_CANCEL || o->scenario == SC_STORM ? "cancel reply" : "latency", lat);
        if (o->scenario == SC_CANCEL)
            s_print_hist("stop latency", stop);
        if (o->scenario == SC_STORM)
            printf("  cancel_all %.3f s, drain %.3f s, cancelled %" PRIu64 ", started after cancel %" PRIu64
                   "\n",
                   b.cancel_all_s, b.drain_s, b.storm_cancelled, b.started_after_cancel);
        if (o->scenario == SC_MIXED)
            for (int k = 0; k < OP_COUNT; k++)
                s_print_hist(s_op_names[k], ops[k]);
        s_print_stats("broker before", &before, true);
        s_print_stats("broker after", &after, after_ok);
    }
    if (o->report_dir && !j.failed && s_report(&b, j.buf) != 0 && status == 0)
        status = 1;

    if (status == 0 && (nerrors || b.started_after_cancel || s_interrupted))
        status = 1;
    free(j.buf);
    free(b.samples);
    rc_hist_destroy(&lat);
    rc_hist_destroy(&stop);
    for (int k = 0; k < OP_COUNT; k++)
        rc_hist_destroy(&ops[k]);
    for (int i = 0; i < o->connections; i++) {
        conn_t *c = &b.conns[i];
        refcache_client_destroy(&c->client);
        rc_hist_destroy(&c->ival);
        rc_hist_destroy(&c->lat);
        rc_hist_destroy(&c->stop);
        for (int k = 0; k < OP_COUNT; k++)
            rc_hist_destroy(&c->op[k]);
        pthread_mutex_destroy(&c->mu);
    }
    free(b.conns);
    refcache_client_destroy(&ctl);
    return status;
}
