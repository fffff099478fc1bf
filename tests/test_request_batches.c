/* RequestBatch and ReplyBatch against a real broker in this process (on
 * ephemeral loopback ports, with in-process echo workers and a hand-driven
 * worker), driven by raw ZeroMQ client sockets so that every frame the
 * broker sends can be looked at: each request of a batch is answered once,
 * with its own id, in ReplyBatch frames of at most 64 replies and 64 KiB
 * (or alone); bad entries are refused one by one; counters count entries;
 * replies held for many clients at once go each to its own client; REQ
 * clients get their envelope back; clients that send no batch get no batch.
 * Every wait is a poll with a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_broker.h"
#include "rc_common.h"
#include "rc_testkit.h"
#include "refcache.h"
#include "refcache.pb-c.h"

#define CALL_MS       5000
#define COLLECT_MS    30000 /* a bound for failures only (valgrind is slow) */
#define ASYNC_MS      20000 /* held replies come when the task ends, long before */
#define MAX_REPLIES   64
#define MAX_BYTES     (64 << 10)
#define N_ECHO        200
#define ECHO_BATCH    50
#define N_CLIENTS     12 /* more than the broker's 8 outboxes */
#define HELD_PER      4  /* tasks of "held" per client */
#define HELD_FN       "held"
#define WORKER_CREDIT 64

#define B_SUBMIT REFCACHE__V1__REQUEST__BODY_SUBMIT
#define B_STATUS REFCACHE__V1__REQUEST__BODY_STATUS
#define B_WAIT   REFCACHE__V1__REQUEST__BODY_WAIT
#define B_STATS  REFCACHE__V1__REQUEST__BODY_STATS
#define B_BATCH  REFCACHE__V1__REQUEST__BODY_BATCH

typedef struct {
    rc_broker_t *broker;
    refcache_client_t *client; /* for Stats only */
    void *ctx;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    rc_broker_config_t config;
    rc_testkit_config(&config);
    config.workers = 2;
    /* The hand-driven worker holds every task it is given until all have
     * come: the broker must not wait for it to finish some first. */
    config.dispatch_window_us = 60000000;
    f->broker = rc_testkit_broker(&config);
    f->client = rc_testkit_client(f->broker);
    f->ctx = zmq_ctx_new();
    assert_non_null(f->ctx);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    zmq_ctx_term(f->ctx); /* every socket is closed by then */
    refcache_client_destroy(&f->client);
    rc_broker_destroy(&f->broker);
    free(f);
    return 0;
}

static void *s_socket(fixture_t *f, int type, const char *id, int endpoint)
{
    return rc_testkit_socket(f->ctx, type, id, rc_broker_endpoint(f->broker, endpoint));
}

/* ------------------------------------------------------------ requests */

/* A request under construction: the Request and whichever body it has,
 * with room for a payload and a ref. */
typedef struct {
    Refcache__V1__Request r;
    Refcache__V1__SubmitRequest submit;
    Refcache__V1__StatusRequest status;
    Refcache__V1__WaitRequest wait;
    Refcache__V1__StatsRequest stats;
    char ref[REFCACHE_REF_MAX + 1];
    uint8_t *payload;
} req_t;

static void r_submit(req_t *q, uint64_t id, const char *fn, const void *payload, size_t len,
                     uint32_t async_ms)
{
    memset(q, 0, sizeof *q);
    refcache__v1__request__init(&q->r);
    refcache__v1__submit_request__init(&q->submit);
    q->payload = malloc(len ? len : 1);
    assert_non_null(q->payload);
    memcpy(q->payload, payload, len);
    q->submit.function = (char *) fn;
    q->submit.payload.data = q->payload;
    q->submit.payload.len = len;
    q->submit.async_timeout_ms = async_ms;
    q->submit.no_cache = true;
    q->r.id = id;
    q->r.body_case = B_SUBMIT;
    q->r.submit = &q->submit;
}

static void r_by_ref(req_t *q, uint64_t id, int body, const char *ref)
{
    memset(q, 0, sizeof *q);
    refcache__v1__request__init(&q->r);
    snprintf(q->ref, sizeof q->ref, "%s", ref ? ref : "");
    q->r.id = id;
    q->r.body_case = body;
    switch (body) {
    case B_STATUS:
        refcache__v1__status_request__init(&q->status);
        q->status.ref_id = q->ref;
        q->r.status = &q->status;
        break;
    case B_WAIT:
        refcache__v1__wait_request__init(&q->wait);
        q->wait.ref_id = q->ref;
        q->wait.timeout_ms = ASYNC_MS;
        q->r.wait = &q->wait;
        break;
    default:
        refcache__v1__stats_request__init(&q->stats);
        q->r.stats = &q->stats;
        break;
    }
}

static void r_free(req_t *q, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(q[i].payload);
}

/* Sends q[0..n) as one RequestBatch with the outer id `id`. */
static void s_send_batch_id(void *sock, req_t *q, size_t n, uint64_t id)
{
    Refcache__V1__Request **entries = calloc(n ? n : 1, sizeof *entries);
    assert_non_null(entries);
    for (size_t i = 0; i < n; i++)
        entries[i] = &q[i].r;
    Refcache__V1__RequestBatch b = REFCACHE__V1__REQUEST_BATCH__INIT;
    b.requests = entries;
    b.n_requests = n;
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    r.id = id;
    r.body_case = B_BATCH;
    r.batch = &b;
    rc_testkit_send_pb(sock, &r.base);
    free(entries);
}

/* The same with outer id 0. */
static void s_send_batch(void *sock, req_t *q, size_t n)
{
    s_send_batch_id(sock, q, n, 0);
}

/* ------------------------------------------------------------ replies */

/* Everything one client socket received: the frames (unpacked, kept to be
 * freed) and each reply in the order they came. */
typedef struct {
    Refcache__V1__Reply **frames;
    size_t n_frames;
    const Refcache__V1__Reply **replies;
    size_t n;
    size_t batch_frames, plain_frames, biggest; /* biggest: replies in one frame */
    size_t first;                               /* replies before this one were looked at */
} got_t;

static void got_add(got_t *g, const Refcache__V1__Reply *r)
{
    g->replies = realloc(g->replies, (g->n + 1) * sizeof *g->replies);
    assert_non_null(g->replies);
    g->replies[g->n++] = r;
}

static void got_free(got_t *g)
{
    for (size_t i = 0; i < g->n_frames; i++)
        refcache__v1__reply__free_unpacked(g->frames[i], NULL);
    free(g->frames);
    free(g->replies);
    memset(g, 0, sizeof *g);
}

/* Receives one message from sock if one waits within ms: its Reply frame
 * checked for the batch limits and its replies added to g. False if
 * nothing came. */
static bool s_recv_one(void *sock, got_t *g, int ms)
{
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, ms) <= 0)
        return false;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    assert_true(zmq_msg_recv(&msg, sock, 0) >= 0);
    assert_false(zmq_msg_more(&msg)); /* one Reply frame, nothing after it */
    size_t len = zmq_msg_size(&msg);
    Refcache__V1__Reply *r = refcache__v1__reply__unpack(NULL, len, zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    assert_non_null(r);
    g->frames = realloc(g->frames, (g->n_frames + 1) * sizeof *g->frames);
    assert_non_null(g->frames);
    g->frames[g->n_frames++] = r;
    if (r->body_case == REFCACHE__V1__REPLY__BODY_BATCH) {
        size_t n = r->batch->n_replies;
        /* A lone reply goes as itself; a batch keeps to its limits. */
        if (n < 2 || n > MAX_REPLIES || len > MAX_BYTES)
            fail_msg("a ReplyBatch of %zu replies in %zu bytes", n, len);
        for (size_t i = 0; i < n; i++) {
            assert_int_not_equal(r->batch->replies[i]->body_case, REFCACHE__V1__REPLY__BODY_BATCH);
            got_add(g, r->batch->replies[i]);
        }
        g->batch_frames++;
        if (n > g->biggest)
            g->biggest = n;
    } else {
        got_add(g, r);
        g->plain_frames++;
        if (g->biggest < 1)
            g->biggest = 1;
    }
    return true;
}

/* Receives until g holds `want` replies in all, or fails after COLLECT_MS. */
static void s_collect(void *sock, got_t *g, size_t want)
{
    uint64_t deadline = rc_mono_us() + (uint64_t) COLLECT_MS * 1000;
    while (g->n < want) {
        if (rc_mono_us() > deadline)
            fail_msg("%zu replies of %zu after %d ms", g->n, want, COLLECT_MS);
        s_recv_one(sock, g, 100);
    }
    assert_int_equal(g->n, want); /* not more (a frame may not overshoot) */
}

/* Asserts that nothing more comes on sock for a short while. */
static void s_nothing_more(void *sock, got_t *g)
{
    size_t n = g->n;
    s_recv_one(sock, g, 200);
    if (g->n != n)
        fail_msg("an unexpected reply, id %llu", (unsigned long long) g->replies[n]->id);
}

/* The one reply with this id among g's replies from g->first on; fails if
 * there is none or more than one. */
static const Refcache__V1__Reply *s_reply(const got_t *g, uint64_t id)
{
    const Refcache__V1__Reply *found = NULL;
    for (size_t i = g->first; i < g->n; i++) {
        if (g->replies[i]->id != id)
            continue;
        if (found)
            fail_msg("two replies for id %llu", (unsigned long long) id);
        found = g->replies[i];
    }
    if (!found)
        fail_msg("no reply for id %llu", (unsigned long long) id);
    return found;
}

/* The task of a Submit, Status or Wait reply (code OK). */
static const Refcache__V1__TaskInfo *s_task(const Refcache__V1__Reply *r)
{
    if ((int) r->code != REFCACHE_CODE_OK)
        fail_msg("id %llu: code %d: %s", (unsigned long long) r->id, r->code, r->message);
    if (r->body_case == REFCACHE__V1__REPLY__BODY_SUBMIT)
        return r->submit->task;
    assert_int_equal(r->body_case, REFCACHE__V1__REPLY__BODY_TASK);
    return r->task;
}

static void s_assert_result(const Refcache__V1__Reply *r, const void *want, size_t len)
{
    const Refcache__V1__TaskInfo *t = s_task(r);
    assert_non_null(t);
    assert_int_equal(t->state, REFCACHE_STATE_COMPLETE);
    assert_false(t->result_truncated);
    assert_int_equal(t->result.len, len);
    assert_memory_equal(t->result.data, want, len);
}

static void s_assert_error(const Refcache__V1__Reply *r, int code, const char *message)
{
    assert_int_equal(r->code, code);
    if (message && !strstr(r->message, message))
        fail_msg("id %llu: \"%s\", not \"%s\"", (unsigned long long) r->id, r->message, message);
}

/* ------------------------------------------------------------ echo */

/* The payload of echo submit i: distinct, and every tenth one 3000 bytes
 * so that a batch of statuses passes 64 KiB. */
static size_t s_echo_payload(size_t i, uint8_t *buf, size_t cap)
{
    size_t len = i % 10 == 0 ? 3000 : 20 + i % 7;
    assert_true(len <= cap);
    for (size_t j = 0; j < len; j++)
        buf[j] = (uint8_t) ('a' + (i * 31 + j) % 26);
    int n = snprintf((char *) buf, cap, "echo-%zu-", i);
    buf[n] = '-'; /* snprintf's NUL */
    return len;
}

/* (a) and (c): 200 echo submits held until done (async_timeout_ms), in
 * batches of 50, then a status of each in one batch of 200: every id is
 * answered once and rightly, in frames within the limits; the counters
 * count entries. */
static void test_echo_batches(void **state)
{
    fixture_t *f = *state;
    void *sock = s_socket(f, ZMQ_DEALER, "batch-client", RC_EP_CLIENTS);
    refcache_stats_t before, after;
    rc_testkit_stats(f->client, &before);

    static uint8_t payload[3000];
    static req_t q[N_ECHO];
    char(*refs)[REFCACHE_REF_MAX + 1] = calloc(N_ECHO, sizeof *refs);
    assert_non_null(refs);
    for (size_t i = 0; i < N_ECHO; i++) {
        size_t len = s_echo_payload(i, payload, sizeof payload);
        r_submit(&q[i], 1 + i, "echo", payload, len, ASYNC_MS);
    }
    for (size_t i = 0; i < N_ECHO; i += ECHO_BATCH)
        s_send_batch(sock, &q[i], ECHO_BATCH);
    got_t g = {0};
    s_collect(sock, &g, N_ECHO);
    for (size_t i = 0; i < N_ECHO; i++) {
        size_t len = s_echo_payload(i, payload, sizeof payload);
        const Refcache__V1__Reply *r = s_reply(&g, 1 + i);
        s_assert_result(r, payload, len);
        snprintf(refs[i], sizeof refs[i], "%s", s_task(r)->ref_id);
    }
    print_message("%d held submits: %zu frames (%zu ReplyBatches, at most %zu replies in one)\n", N_ECHO,
                  g.n_frames, g.batch_frames, g.biggest);
    r_free(q, N_ECHO);

    /* Statuses of all in one batch: 200 immediate replies, which cannot go
     * in one frame (64 replies, 64 KiB at most). */
    size_t frames = g.n_frames;
    g.first = g.n;
    for (size_t i = 0; i < N_ECHO; i++)
        r_by_ref(&q[i], 1001 + i, B_STATUS, refs[i]);
    s_send_batch(sock, q, N_ECHO);
    s_collect(sock, &g, 2 * N_ECHO);
    for (size_t i = 0; i < N_ECHO; i++) {
        size_t len = s_echo_payload(i, payload, sizeof payload);
        const Refcache__V1__Reply *r = s_reply(&g, 1001 + i);
        s_assert_result(r, payload, len);
        assert_string_equal(s_task(r)->ref_id, refs[i]);
    }
    print_message("a batch of %d statuses: %zu frames\n", N_ECHO, g.n_frames - frames);
    assert_true(g.n_frames - frames >= (N_ECHO + MAX_REPLIES - 1) / MAX_REPLIES);
    assert_int_equal(g.biggest, MAX_REPLIES); /* they were gathered, up to the limit */
    s_nothing_more(sock, &g);

    /* 400 requests in 5 frames, and this Stats. */
    rc_testkit_stats(f->client, &after);
    assert_int_equal(after.requests_total - before.requests_total, 2 * N_ECHO + 1);
    assert_int_equal(after.bad_requests_total, before.bad_requests_total);
    assert_int_equal(after.completed_total - before.completed_total, N_ECHO);
    got_free(&g);
    free(refs);
    zmq_close(sock);
}

/* (b) and (c): a nested batch, a garbage entry and an entry with no body
 * are refused one by one, with their ids, and the good entries around them
 * answered; an empty batch is refused with its own id. */
static void test_bad_entries(void **state)
{
    fixture_t *f = *state;
    void *sock = s_socket(f, ZMQ_DEALER, "bad-batch-client", RC_EP_CLIENTS);

    /* A task to ask about. */
    req_t one[1];
    r_submit(&one[0], 1, "echo", "known", 5, ASYNC_MS);
    s_send_batch(sock, one, 1);
    got_t g = {0};
    s_collect(sock, &g, 1);
    assert_int_equal(g.plain_frames, 1); /* a lone reply goes as itself */
    s_assert_result(s_reply(&g, 1), "known", 5);
    char ref[REFCACHE_REF_MAX + 1];
    snprintf(ref, sizeof ref, "%s", s_task(s_reply(&g, 1))->ref_id);
    r_free(one, 1);

    refcache_stats_t before, after;
    rc_testkit_stats(f->client, &before);

    /* [status, batch{status}, garbage, status, {id, no body}, stats] as
     * bytes: the garbage entry cannot be built with protobuf-c. */
    req_t q[4], inner;
    r_by_ref(&q[0], 2001, B_STATUS, ref);
    r_by_ref(&inner, 2003, B_STATUS, ref);
    r_by_ref(&q[1], 2004, B_STATUS, ref);
    r_by_ref(&q[2], 2006, B_STATS, NULL);
    Refcache__V1__Request no_body = REFCACHE__V1__REQUEST__INIT;
    no_body.id = 2005;
    Refcache__V1__Request *inner_p = &inner.r;
    Refcache__V1__RequestBatch ib = REFCACHE__V1__REQUEST_BATCH__INIT;
    ib.requests = &inner_p;
    ib.n_requests = 1;
    Refcache__V1__Request nested = REFCACHE__V1__REQUEST__INIT;
    nested.id = 2002;
    nested.body_case = B_BATCH;
    nested.batch = &ib;
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0x07};
    const ProtobufCMessage *parts[] = {&q[0].r.base, &nested.base,  NULL,
                                       &q[1].r.base, &no_body.base, &q[2].r.base};
    uint8_t body[1024], frame[1100];
    size_t n = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t len = parts[i] ? protobuf_c_message_get_packed_size(parts[i]) : sizeof garbage;
        assert_true(len < 128 && n + 2 + len <= sizeof body);
        body[n++] = 0x0a; /* RequestBatch.requests */
        body[n++] = (uint8_t) len;
        if (parts[i])
            protobuf_c_message_pack(parts[i], body + n);
        else
            memcpy(body + n, garbage, len);
        n += len;
    }
    size_t fl = 0;
    frame[fl++] = 0x4a;            /* Request.batch */
    for (size_t v = n; v; v >>= 7) /* its length, a varint */
        frame[fl++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    memcpy(frame + fl, body, n);
    fl += n;
    assert_int_equal(zmq_send(sock, frame, fl, 0), (int) fl);

    /* And an empty batch, id 2010. */
    static const uint8_t empty[] = {0x08, 0xda, 0x0f, 0x4a, 0x00};
    assert_int_equal(zmq_send(sock, empty, sizeof empty, 0), (int) sizeof empty);

    /* Both frames may be handled in one drain: 7 replies in one or two
     * frames. */
    g.first = g.n;
    s_collect(sock, &g, g.first + 7);
    s_assert_result(s_reply(&g, 2001), "known", 5);
    s_assert_error(s_reply(&g, 2002), REFCACHE_CODE_INVALID_ARGUMENT, "a RequestBatch may not hold another");
    s_assert_error(s_reply(&g, 0), REFCACHE_CODE_INVALID_ARGUMENT, NULL);
    s_assert_result(s_reply(&g, 2004), "known", 5);
    s_assert_error(s_reply(&g, 2005), REFCACHE_CODE_INVALID_ARGUMENT, NULL);
    const Refcache__V1__Reply *st = s_reply(&g, 2006);
    assert_int_equal(st->code, REFCACHE_CODE_OK);
    assert_int_equal(st->body_case, REFCACHE__V1__REPLY__BODY_STATS);
    /* The entries the refused one held are not run. */
    for (size_t i = g.first; i < g.n; i++)
        assert_true(g.replies[i]->id != 2003);
    s_assert_error(s_reply(&g, 2010), REFCACHE_CODE_INVALID_ARGUMENT, "an empty RequestBatch");
    s_nothing_more(sock, &g);

    /* 6 entries (3 bad), the empty batch (bad), this Stats. */
    rc_testkit_stats(f->client, &after);
    assert_int_equal(after.requests_total - before.requests_total, 6 + 1 + 1);
    assert_int_equal(after.bad_requests_total - before.bad_requests_total, 3 + 1);
    r_free(q, 3);
    got_free(&g);
    zmq_close(sock);
}

/* A batch of at most 1024 requests is taken; a bigger one is refused whole,
 * with one reply (its outer id), so that no frame holds the loop for long. */
static void test_batch_limit(void **state)
{
    fixture_t *f = *state;
    void *sock = s_socket(f, ZMQ_DEALER, "limit-client", RC_EP_CLIENTS);
    enum { LIMIT = 1024 };
    req_t *q = calloc(LIMIT + 1, sizeof *q);
    assert_non_null(q);
    for (size_t i = 0; i <= LIMIT; i++)
        r_by_ref(&q[i], 5000 + i, B_STATS, NULL);
    refcache_stats_t before, after;
    rc_testkit_stats(f->client, &before);

    s_send_batch(sock, q, LIMIT);
    got_t g = {0};
    s_collect(sock, &g, LIMIT);
    for (size_t i = 0; i < LIMIT; i++)
        assert_int_equal(s_reply(&g, 5000 + i)->code, REFCACHE_CODE_OK);
    assert_true(g.batch_frames >= LIMIT / MAX_REPLIES);

    s_send_batch_id(sock, q, LIMIT + 1, 4999);
    g.first = g.n;
    s_collect(sock, &g, g.n + 1);
    s_assert_error(s_reply(&g, 4999), REFCACHE_CODE_INVALID_ARGUMENT,
                   "a RequestBatch holds at most 1024 requests");
    s_nothing_more(sock, &g);

    /* The 1024 taken, the refused batch as one bad request, this Stats. */
    rc_testkit_stats(f->client, &after);
    assert_int_equal(after.requests_total - before.requests_total, LIMIT + 1 + 1);
    assert_int_equal(after.bad_requests_total - before.bad_requests_total, 1);
    r_free(q, LIMIT + 1);
    free(q);
    got_free(&g);
    zmq_close(sock);
}

/* ------------------------------------------------------------ many clients */

typedef struct {
    void *sock;
    char id[32];
    bool batches; /* sends RequestBatches; else plain Requests */
    got_t got;
    char refs[HELD_PER][REFCACHE_REF_MAX + 1];
} client_t;

/* A hand-driven worker's view of a held task: its ref and attempt, and
 * the payload it came with. */
typedef struct {
    char ref[REFCACHE_REF_MAX + 1];
    uint32_t attempt;
    char payload[64];
} held_t;

static void w_heartbeat(void *work)
{
    Refcache__V1__Heartbeat h = REFCACHE__V1__HEARTBEAT__INIT;
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_HEARTBEAT;
    m.heartbeat = &h;
    rc_testkit_send_pb(work, &m.base);
}

/* Takes the dispatches that come within ms into held; false if none. */
static bool w_take(void *work, held_t *held, size_t *n, size_t cap, int ms)
{
    Refcache__V1__Dispatch **d;
    size_t k;
    Refcache__V1__BrokerMessage *bm = rc_testkit_take_dispatches(work, ms, &d, &k);
    if (!bm)
        return false;
    for (size_t i = 0; i < k; i++) {
        assert_true(*n < cap);
        assert_true(d[i]->payload.len < sizeof held[*n].payload);
        snprintf(held[*n].ref, sizeof held[*n].ref, "%s", d[i]->ref_id);
        memcpy(held[*n].payload, d[i]->payload.data, d[i]->payload.len);
        held[*n].payload[d[i]->payload.len] = 0;
        held[*n].attempt = d[i]->attempt;
        (*n)++;
    }
    refcache__v1__broker_message__free_unpacked(bm, NULL);
    return k > 0;
}

/* The result the hand-driven worker gives a payload. */
static void w_result_of(const char *payload, char *out, size_t cap)
{
    /* Payloads are short here; one that is not is cut, never overrun. */
    size_t n = strlen(payload);
    if (cap < 4)
        return;
    if (n > cap - 4)
        n = cap - 4;
    out[0] = 'R';
    out[1] = '(';
    memcpy(out + 2, payload, n);
    out[2 + n] = ')';
    out[3 + n] = '\0';
}

/* Answers held[0..n) in one ResultBatch, in that order. */
static void w_result(void *work, const held_t *held, size_t n)
{
    Refcache__V1__Result *res = calloc(n, sizeof *res);
    Refcache__V1__Result **resp = calloc(n, sizeof *resp);
    char(*data)[80] = calloc(n, sizeof *data);
    assert_true(res && resp && data);
    for (size_t i = 0; i < n; i++) {
        refcache__v1__result__init(&res[i]);
        res[i].ref_id = (char *) held[i].ref;
        res[i].attempt = held[i].attempt;
        w_result_of(held[i].payload, data[i], sizeof data[i]);
        res[i].data.data = (uint8_t *) data[i];
        res[i].data.len = strlen(data[i]);
        resp[i] = &res[i];
    }
    Refcache__V1__ResultBatch rb = REFCACHE__V1__RESULT_BATCH__INIT;
    rb.results = resp;
    rb.n_results = n;
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULTS;
    m.results = &rb;
    rc_testkit_send_pb(work, &m.base);
    free(data);
    free(resp);
    free(res);
}

static const held_t *w_find(const held_t *held, size_t n, const char *payload)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(held[i].payload, payload) == 0)
            return &held[i];
    fail_msg("the worker holds no task of payload %s", payload);
    return NULL;
}

/* Sends the request set q[0..n) for client c: one batch, or one by one. */
static void c_send(client_t *c, req_t *q, size_t n)
{
    if (c->batches) {
        s_send_batch(c->sock, q, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        rc_testkit_send_pb(c->sock, &q[i].r.base);
}

/* (d) and (f): N_CLIENTS batching clients and one plain client each have
 * tasks held by a hand-driven worker, and Waits and held Submits on them;
 * the worker answers all in one ResultBatch, so that one drain answers
 * more clients than the broker has outboxes, two replies each in turn.
 * Every client gets all its replies and no other's; the plain client gets
 * plain Replies only. */
static void test_many_clients(void **state)
{
    fixture_t *f = *state;
    enum { NC = N_CLIENTS + 1, TASKS = NC * HELD_PER };
    void *control = s_socket(f, ZMQ_DEALER, "hand-worker", RC_EP_CONTROL);
    void *work = s_socket(f, ZMQ_DEALER, "hand-worker", RC_EP_WORKERS);
    Refcache__V1__ControlHello hello = REFCACHE__V1__CONTROL_HELLO__INIT;
    hello.worker_id = "hand-worker";
    rc_testkit_send_pb(control, &hello.base);
    char *fns[] = {HELD_FN};
    Refcache__V1__Ready ready = REFCACHE__V1__READY__INIT;
    ready.worker_id = "hand-worker";
    ready.functions = fns;
    ready.n_functions = 1;
    ready.credit = WORKER_CREDIT;
    ready.max_batch = 64;
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_READY;
    m.ready = &ready;
    rc_testkit_send_pb(work, &m.base);
    /* The in-process workers and this one. */
    rc_testkit_wait_workers(f->client, 3, COLLECT_MS);
    uint64_t deadline = rc_mono_us() + (uint64_t) COLLECT_MS * 1000;
    /* A first task, answered at once: until the broker knows how long a
     * task of the function takes, it gives a worker one at a time. */
    static held_t held[TASKS];
    size_t n_held = 0;
    refcache_task_t *warm = NULL;
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.payload = "warm-up";
    o.payload_len = 7;
    o.no_cache = true;
    assert_int_equal(refcache_client_submit(f->client, HELD_FN, &o, &warm, CALL_MS), REFCACHE_CODE_OK);
    while (!w_take(work, held, &n_held, TASKS, 100)) {
        assert_true(rc_mono_us() < deadline);
        w_heartbeat(work);
    }
    assert_int_equal(n_held, 1);
    w_result(work, held, 1);
    n_held = 0;
    refcache_task_destroy(&warm);
    assert_int_equal(refcache_client_wait(f->client, held[0].ref, CALL_MS, &warm, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(warm->info.state, REFCACHE_STATE_COMPLETE);
    refcache_task_destroy(&warm);

    static client_t cl[NC];
    memset(cl, 0, sizeof cl);
    for (size_t c = 0; c < NC; c++) {
        cl[c].batches = c < N_CLIENTS;
        snprintf(cl[c].id, sizeof cl[c].id, "%s-%zu", cl[c].batches ? "batcher" : "plain", c);
        cl[c].sock = s_socket(f, ZMQ_DEALER, cl[c].id, RC_EP_CLIENTS);
    }

    /* Round 1: two submits each, answered at once (PENDING or PROCESSING). */
    req_t q[5];
    char payload[64];
    for (size_t c = 0; c < NC; c++) {
        for (size_t k = 0; k < 2; k++) {
            snprintf(payload, sizeof payload, "c%zu-t%zu", c, k);
            r_submit(&q[k], c * 100 + 1 + k, HELD_FN, payload, strlen(payload), 0);
        }
        c_send(&cl[c], q, 2);
        r_free(q, 2);
    }
    for (size_t c = 0; c < NC; c++) {
        s_collect(cl[c].sock, &cl[c].got, 2);
        for (size_t k = 0; k < 2; k++) {
            const Refcache__V1__TaskInfo *t = s_task(s_reply(&cl[c].got, c * 100 + 1 + k));
            assert_int_not_equal(t->state, REFCACHE_STATE_COMPLETE);
            snprintf(cl[c].refs[k], sizeof cl[c].refs[k], "%s", t->ref_id);
        }
        cl[c].got.first = cl[c].got.n;
    }

    /* Round 2, each: [Wait(t0), held Submit(t2), Wait(t1), Status(t0),
     * held Submit(t3)]; the Status is answered at once. */
    for (size_t c = 0; c < NC; c++) {
        uint64_t id = c * 100 + 10;
        r_by_ref(&q[0], id + 1, B_WAIT, cl[c].refs[0]);
        snprintf(payload, sizeof payload, "c%zu-t2", c);
        r_submit(&q[1], id + 2, HELD_FN, payload, strlen(payload), ASYNC_MS);
        r_by_ref(&q[2], id + 3, B_WAIT, cl[c].refs[1]);
        r_by_ref(&q[3], id + 4, B_STATUS, cl[c].refs[0]);
        snprintf(payload, sizeof payload, "c%zu-t3", c);
        r_submit(&q[4], id + 5, HELD_FN, payload, strlen(payload), ASYNC_MS);
        c_send(&cl[c], q, 5);
        r_free(q, 5);
    }

    /* The worker takes every task: once it has the last one, every Wait
     * and held Submit was registered (a batch is handled whole before its
     * dispatches go out; plain requests in order). */
    deadline = rc_mono_us() + (uint64_t) COLLECT_MS * 1000;
    while (n_held < TASKS) {
        if (rc_mono_us() > deadline)
            fail_msg("the worker has %zu tasks of %d", n_held, TASKS);
        if (!w_take(work, held, &n_held, TASKS, 100))
            w_heartbeat(work);
    }
    for (size_t c = 0; c < NC; c++) {
        s_collect(cl[c].sock, &cl[c].got, cl[c].got.first + 1);
        const Refcache__V1__TaskInfo *t = s_task(s_reply(&cl[c].got, c * 100 + 14));
        assert_string_equal(t->ref_id, cl[c].refs[0]);
        assert_int_not_equal(t->state, REFCACHE_STATE_COMPLETE);
        cl[c].got.first = cl[c].got.n;
    }

    /* One ResultBatch for all, two tasks of each client in turn: t0 t1 of
     * client 0, of client 1, ..., then t2 t3 of each. */
    static held_t order[TASKS];
    size_t nr = 0;
    for (size_t half = 0; half < 2; half++)
        for (size_t c = 0; c < NC; c++)
            for (size_t k = 2 * half; k < 2 * half + 2; k++) {
                snprintf(payload, sizeof payload, "c%zu-t%zu", c, k);
                order[nr++] = *w_find(held, n_held, payload);
            }
    w_result(work, order, nr);

    /* Each client: its Waits and held Submits, with its own results. */
    size_t batch_frames = 0;
    for (size_t c = 0; c < NC; c++) {
        got_t *g = &cl[c].got;
        size_t plain = g->plain_frames;
        s_collect(cl[c].sock, g, g->first + 4);
        static const unsigned ids[4] = {11, 12, 13, 15}, task[4] = {0, 2, 1, 3};
        for (size_t i = 0; i < 4; i++) {
            char want[80];
            snprintf(payload, sizeof payload, "c%zu-t%u", c, task[i]);
            w_result_of(payload, want, sizeof want);
            s_assert_result(s_reply(g, c * 100 + ids[i]), want, strlen(want));
        }
        if (!cl[c].batches) {
            assert_int_equal(g->batch_frames, 0); /* never a ReplyBatch */
            assert_int_equal(g->plain_frames - plain, 4);
        }
        batch_frames += g->batch_frames;
        s_nothing_more(cl[c].sock, g);
    }
    print_message("%d clients, one ResultBatch of %zu: %zu ReplyBatch frames in all\n", NC, nr, batch_frames);

    for (size_t c = 0; c < NC; c++) {
        got_free(&cl[c].got);
        zmq_close(cl[c].sock);
    }
    zmq_close(work);
    zmq_close(control);
}

/* ------------------------------------------------------------ REQ */

/* (e): a REQ client's batch of one status gets one plain Reply, and its
 * batch of two statuses one ReplyBatch, each behind the envelope REQ
 * expects (a REQ socket drops anything else). */
static void test_req_client(void **state)
{
    fixture_t *f = *state;
    refcache_task_t *t = NULL;
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    o.payload = "req-known";
    o.payload_len = 9;
    o.async_timeout_ms = ASYNC_MS;
    assert_int_equal(refcache_client_submit(f->client, "echo", &o, &t, CALL_MS), REFCACHE_CODE_OK);
    assert_int_equal(t->info.state, REFCACHE_STATE_COMPLETE);

    void *req = s_socket(f, ZMQ_REQ, NULL, RC_EP_CLIENTS);
    int ms = COLLECT_MS;
    zmq_setsockopt(req, ZMQ_RCVTIMEO, &ms, sizeof ms);
    req_t q[2];
    r_by_ref(&q[0], 3001, B_STATUS, t->info.ref_id);
    s_send_batch(req, q, 1);
    got_t g = {0};
    assert_true(s_recv_one(req, &g, COLLECT_MS));
    assert_int_equal(g.plain_frames, 1);
    s_assert_result(s_reply(&g, 3001), "req-known", 9);

    r_by_ref(&q[0], 3002, B_STATUS, t->info.ref_id);
    r_by_ref(&q[1], 3003, B_STATS, NULL);
    s_send_batch(req, q, 2);
    g.first = g.n;
    assert_true(s_recv_one(req, &g, COLLECT_MS));
    assert_int_equal(g.batch_frames, 1);
    assert_int_equal(g.n - g.first, 2);
    s_assert_result(s_reply(&g, 3002), "req-known", 9);
    assert_int_equal(s_reply(&g, 3003)->code, REFCACHE_CODE_OK);
    got_free(&g);
    refcache_task_destroy(&t);
    zmq_close(req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_req_client, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
