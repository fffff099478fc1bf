/* bench_run: a connection's thread — clocks, error classes, the in-flight
 * map, receiving (noting created tasks for the cleanup), the closed loop of
 * throughput, the open and closed loops of latency, pipelining, and the
 * dispatch to a scenario. */
#include <errno.h>
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

#include "rc_bench.h"
#include "rc_common.h"

uint64_t rc_bench_mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t) t.tv_sec * 1000000000u + (uint64_t) t.tv_nsec;
}

void rc_bench_sleep_ns(uint64_t ns)
{
    struct timespec t = {(time_t) (ns / 1000000000u), (long) (ns % 1000000000u)};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

/* xorshift64*: cheap per-thread randomness for payloads and op choices. */
uint64_t rc_bench_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

const char *rc_bench_err_name(int i)
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

int rc_bench_err_class(int rc)
{
    if (rc > 0 && rc < ERR_LIB0)
        return rc;
    if (rc < 0 && -rc <= 9)
        return ERR_LIB0 + (-rc) - 1;
    return 2; /* UNKNOWN */
}

static size_t s_infl_home(const infl_t *m, uint64_t id)
{
    return (size_t) ((id * UINT64_C(0x9E3779B97F4A7C15)) >> m->shift);
}

int rc_bench_infl_init(infl_t *m, size_t want)
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

void rc_bench_infl_free(infl_t *m)
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

int rc_bench_infl_put(infl_t *m, uint64_t id, uint64_t t_ns, int op, uint64_t aux)
{
    if ((m->n + 1) * 2 > m->mask + 1) {
        infl_t bigger;
        if (rc_bench_infl_init(&bigger, (m->mask + 1) * 2))
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

bool rc_bench_infl_take(infl_t *m, uint64_t id, infl_ent_t *out)
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

volatile sig_atomic_t rc_bench_interrupted;

bool rc_bench_should_stop(conn_t *c, uint64_t sent)
{
    if (rc_bench_interrupted)
        return true;
    if (c->quota)
        return sent >= c->quota;
    return rc_bench_mono_ns() >= c->b->deadline_ns;
}

void rc_bench_record(conn_t *c, rc_hist_t *h, uint64_t ns)
{
    rc_hist_record(h, ns);
    pthread_mutex_lock(&c->mu);
    rc_hist_record(c->ival, ns);
    pthread_mutex_unlock(&c->mu);
}

void rc_bench_count_done(conn_t *c)
{
    atomic_fetch_add_explicit(&c->done, 1, memory_order_relaxed);
}

void rc_bench_error(conn_t *c, int cls)
{
    c->errors[cls]++;
}

/* No reply for longer than any request can be held (the async timeout of
 * 30 s, plus a margin) means the broker is gone: count what is outstanding
 * as timed out. Returns true if it gave up. */
bool rc_bench_give_up(conn_t *c, uint64_t last_reply_ns, uint64_t now_ns, uint64_t *got, uint64_t sent)
{
    if (now_ns - last_reply_ns <= 35000000000ull)
        return false;
    for (; *got < sent; (*got)++) {
        rc_bench_error(c, rc_bench_err_class(REFCACHE_ETIMEOUT));
        rc_bench_count_done(c);
    }
    return true;
}

/* refcache_client_recv, noting the task of every Submit reply so that the
 * run can delete what it created. */
int rc_bench_recv(conn_t *c, refcache_reply_t *r, int timeout_ms)
{
    int rc = refcache_client_recv(c->client, r, timeout_ms);
    if (rc == 0 && r->kind == REFCACHE_REPLY_SUBMIT && r->task.ref_id[0] &&
        rc_bench_refs_add(&c->refs, r->task.ref_id) != 0)
        c->refs.lost++;
    return rc;
}

/* Sends nothing; waits for the reply to id, discarding others (those only
 * occur when an earlier wait gave up). */
int rc_bench_await(conn_t *c, uint64_t id, refcache_reply_t *r, int timeout_ms)
{
    uint64_t deadline = rc_bench_mono_ns() + (uint64_t) timeout_ms * 1000000u;
    for (;;) {
        uint64_t now = rc_bench_mono_ns();
        int left = now >= deadline ? 0 : (int) ((deadline - now) / 1000000u);
        int rc = rc_bench_recv(c, r, left);
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
void rc_bench_stamp(uint8_t *payload, uint64_t nonce, int conn, uint64_t seq)
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
        rc_bench_error(c, rc_bench_err_class(r->code));
    } else if (r->task.state != REFCACHE_STATE_COMPLETE) {
        rc_bench_error(c, ERR_INCOMPLETE);
    } else if (is_echo && (r->task.result_len != o->payload_size || !r->task.result ||
                           memcmp(r->task.result + 8, &seq, 8) != 0)) {
        rc_bench_error(c, ERR_BAD_RESULT);
    } else {
        rc_bench_record(c, c->lat, lat_ns);
    }
    rc_bench_count_done(c);
}

/* Sends the Submit of request seq, its payload stamped, its id in *id. A
 * send the library refused counts as a finished request with its error.
 * 0, or the library's code. */
static int s_send(conn_t *c, const refcache_submit_options_t *so, uint8_t *payload, uint64_t seq,
                  uint64_t *id)
{
    rc_bench_stamp(payload, c->b->nonce, c->index, seq);
    int rc = refcache_client_send_submit(c->client, c->b->o.function, so, id);
    if (rc) {
        rc_bench_error(c, rc_bench_err_class(rc));
        rc_bench_count_done(c);
    }
    return rc;
}

/* throughput, and latency without --rate: a closed loop with depth requests
 * outstanding, each Submit held by async_timeout until its task finished. */
static void s_run_closed(conn_t *c)
{
    const opts_t *o = &c->b->o;
    bool is_echo = strcmp(o->function, "echo") == 0;
    uint8_t *payload = calloc(1, o->payload_size);
    infl_t m;
    if (!payload || rc_bench_infl_init(&m, (size_t) o->depth)) {
        free(payload);
        rc_bench_error(c, ERR_LIB0 + 4);
        return;
    }
    for (size_t i = 16; i < o->payload_size; i++)
        payload[i] = (uint8_t) ('a' + i % 26);
    refcache_submit_options_t so;
    refcache_submit_options_init(&so);
    so.payload = payload;
    so.payload_len = o->payload_size;
    so.async_timeout_ms = 30000;
    uint64_t sent = 0, got = 0, last_reply = rc_bench_mono_ns();
    bool stopping = false;
    refcache_reply_t r;
    for (;;) {
        /* One time for the burst: its requests leave together, in batches,
         * when the client reads next (or as each batch fills). */
        uint64_t t_send = rc_bench_mono_ns();
        while (!stopping && sent - got < (uint64_t) o->depth) {
            if (rc_bench_should_stop(c, sent)) {
                stopping = true;
                break;
            }
            uint64_t id, seq = sent + 1;
            if (s_send(c, &so, payload, seq, &id) != 0) {
                sent++, got++;
                continue;
            }
            rc_bench_infl_put(&m, id, t_send, 0, seq);
            sent++;
        }
        if (got == sent && (stopping || rc_bench_should_stop(c, sent)))
            break;
        int rc = rc_bench_recv(c, &r, 1000);
        uint64_t now = rc_bench_mono_ns();
        infl_ent_t e;
        if (rc == REFCACHE_ETIMEOUT || rc == REFCACHE_EINTR) {
            if (rc_bench_give_up(c, last_reply, now, &got, sent))
                stopping = true;
            continue;
        }
        if (rc) {
            rc_bench_error(c, rc_bench_err_class(rc));
            continue;
        }
        for (;;) {
            last_reply = now;
            if (rc_bench_infl_take(&m, r.id, &e)) { /* else not ours */
                got++;
                s_check_submit(c, &r, e.aux, now - e.t_ns, is_echo);
            }
            /* Take every reply already here before sending more, so that
             * sends go out in batches as the replies came in. */
            if (got == sent)
                break;
            rc = rc_bench_recv(c, &r, 0);
            if (rc) {
                if (rc != REFCACHE_ETIMEOUT)
                    rc_bench_error(c, rc_bench_err_class(rc));
                break;
            }
            now = rc_bench_mono_ns();
        }
    }
    rc_bench_infl_free(&m);
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
    uint64_t deadline = rc_bench_mono_ns() + ns;
    for (;;) {
        int events;
        len = sizeof events;
        if (zmq_getsockopt(sock, ZMQ_EVENTS, &events, &len) != 0 || (events & ZMQ_POLLIN))
            return 1;
        uint64_t now = rc_bench_mono_ns();
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
    if (!payload || rc_bench_infl_init(&m, 1024)) {
        free(payload);
        rc_bench_error(c, ERR_LIB0 + 4);
        return;
    }
    refcache_submit_options_t so;
    refcache_submit_options_init(&so);
    so.payload = payload;
    so.payload_len = o->payload_size;
    so.async_timeout_ms = 30000;
    uint64_t interval = (uint64_t) (1e9 * o->connections / o->rate);
    uint64_t next = c->b->t_start_ns + interval * (uint64_t) c->index / (uint64_t) o->connections;
    uint64_t sent = 0, got = 0, last_reply = rc_bench_mono_ns();
    bool stopping = false;
    refcache_reply_t r;
    for (;;) {
        uint64_t now = rc_bench_mono_ns();
        while (!stopping && now >= next) {
            if (rc_bench_should_stop(c, sent)) {
                stopping = true;
                break;
            }
            uint64_t id, seq = sent + 1;
            if (s_send(c, &so, payload, seq, &id) != 0)
                got++;
            else
                rc_bench_infl_put(&m, id, next, 0, seq);
            sent++;
            next += interval;
        }
        if (!stopping && rc_bench_should_stop(c, sent))
            stopping = true;
        if (stopping && got == sent)
            break;
        int wait_ms = 1000;
        if (!stopping) {
            now = rc_bench_mono_ns();
            refcache_client_flush(c->client); /* an error shows at the receive */
            if (!s_wait_readable(c->client, next > now ? next - now : 0))
                continue; /* time to send the next one */
            wait_ms = 0;
        }
        int rc = rc_bench_recv(c, &r, wait_ms);
        now = rc_bench_mono_ns();
        if (rc == REFCACHE_ETIMEOUT || rc == REFCACHE_EINTR) {
            if (stopping)
                rc_bench_give_up(c, last_reply, now, &got, sent);
            continue;
        }
        if (rc) {
            rc_bench_error(c, rc_bench_err_class(rc));
            continue;
        }
        last_reply = now;
        infl_ent_t e;
        if (!rc_bench_infl_take(&m, r.id, &e))
            continue;
        got++;
        s_check_submit(c, &r, e.aux, now - e.t_ns, is_echo);
    }
    rc_bench_infl_free(&m);
    free(payload);
}

int rc_bench_stats(refcache_client_t *cl, refcache_stats_t *st)
{
    return refcache_client_stats(cl, st, 5000);
}

int rc_bench_pipeline(conn_t *c, uint64_t count, rc_bench_send_fn send, rc_bench_reply_fn on_reply, void *ctx)
{
    infl_t m;
    if (rc_bench_infl_init(&m, (size_t) c->b->o.depth))
        return REFCACHE_ENOMEM;
    uint64_t sent = 0, got = 0;
    refcache_reply_t r;
    int result = 0;
    while (got < count) {
        while (sent < count && sent - got < (uint64_t) c->b->o.depth) {
            uint64_t id;
            int rc = send(c, sent, &id, ctx);
            if (rc) {
                rc_bench_error(c, rc_bench_err_class(rc));
                got++;
            } else {
                rc_bench_infl_put(&m, id, rc_bench_mono_ns(), 0, sent);
            }
            sent++;
        }
        if (got >= count)
            break;
        int rc = rc_bench_recv(c, &r, 30000);
        if (rc) {
            result = rc;
            break;
        }
        infl_ent_t e;
        if (!rc_bench_infl_take(&m, r.id, &e))
            continue;
        got++;
        on_reply(c, e.aux, &r, rc_bench_mono_ns() - e.t_ns, ctx);
    }
    rc_bench_infl_free(&m);
    return result;
}

void *rc_bench_conn_main(void *arg)
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
        rc_bench_run_cancel(c);
        break;
    case SC_STORM:
        rc_bench_run_storm(c);
        break;
    default:
        rc_bench_run_mixed(c);
        break;
    }
    uint64_t end = rc_bench_mono_ns(), prev = atomic_load(&c->b->t_end_ns);
    while (end > prev && !atomic_compare_exchange_weak(&c->b->t_end_ns, &prev, end))
        ;
    atomic_fetch_sub(&c->b->running, 1);
    return NULL;
}
