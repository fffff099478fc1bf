/* gen_corpus: writes the hand-made seed inputs of the broker fuzzer (the
 * record format of fuzz_replay.h) into a directory, with messages packed by
 * the generated protobuf code. Run once to (re)make tests/fuzz/corpus:
 *   rc_fuzz_gen_corpus tests/fuzz/corpus
 * RC_REPLAY_VERBOSE=1 on the replay test prints what each input did. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_replay.h"
#include "refcache.pb-c.h"

#define REF1 "00000000000000000000000000000001"
#define REF2 "00000000000000000000000000000002"
#define REF3 "00000000000000000000000000000003"
#define REF4 "00000000000000000000000000000004"
#define REF5 "00000000000000000000000000000005"
#define REF6 "00000000000000000000000000000006"

static uint8_t s_frame[65536];

static void put_pb(rc_replay_buf_t *b, uint8_t op, const char *rid, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_pack(m, s_frame);
    const void *f[1] = {s_frame};
    size_t l[1] = {n};
    rc_replay_put_msg(b, op, rid, f, l, 1);
}

/* The entries of a RequestBatch being built: each a key, a length and the
 * bytes of one Request (or of anything, for garbage entries). */
typedef struct {
    uint8_t data[8192];
    size_t len;
} batch_t;

/* While a batch is being built, req() adds its Request to it instead of
 * sending it. */
static batch_t *s_batch;

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    for (; v >= 0x80; v >>= 7)
        p[n++] = (uint8_t) (v | 0x80);
    p[n++] = (uint8_t) v;
    return n;
}

/* Appends field `field` (length-delimited) holding data[0..len) to bt. */
static void batch_put(batch_t *bt, uint8_t field, const void *data, size_t len)
{
    if (bt->len + 12 + len > sizeof bt->data) {
        fprintf(stderr, "gen_corpus: a batch too big for its buffer\n");
        exit(1);
    }
    bt->data[bt->len++] = (uint8_t) (field << 3 | 2);
    bt->len += put_varint(bt->data + bt->len, len);
    memcpy(bt->data + bt->len, data, len);
    bt->len += len;
}

static void req(rc_replay_buf_t *b, const char *rid, Refcache__V1__Request *r)
{
    if (s_batch) {
        static uint8_t one[4096];
        size_t n = protobuf_c_message_pack(&r->base, one);
        batch_put(s_batch, 1, one, n);
        return;
    }
    put_pb(b, RC_REPLAY_CLIENTS, rid, &r->base);
}

/* The bytes of Request{id, batch: the entries of bt} into out; their length. */
static size_t batch_bytes(uint8_t *out, uint64_t id, const batch_t *bt)
{
    size_t n = 0;
    if (id) {
        out[n++] = 0x08;
        n += put_varint(out + n, id);
    }
    out[n++] = 0x4a; /* Request.batch */
    n += put_varint(out + n, bt->len);
    memcpy(out + n, bt->data, bt->len);
    return n + bt->len;
}

/* Sends Request{id, batch: bt} from client rid, behind a REQ envelope if
 * asked. */
static void batch_send(rc_replay_buf_t *b, const char *rid, uint64_t id, const batch_t *bt, bool envelope)
{
    size_t n = batch_bytes(s_frame, id, bt);
    const void *f[2] = {"", s_frame};
    size_t l[2] = {0, n};
    if (envelope)
        rc_replay_put_msg(b, RC_REPLAY_CLIENTS, rid, f, l, 2);
    else
        rc_replay_put_msg(b, RC_REPLAY_CLIENTS, rid, f + 1, l + 1, 1);
}

static void wmsg(rc_replay_buf_t *b, const char *rid, Refcache__V1__WorkerMessage *m)
{
    put_pb(b, RC_REPLAY_WORKERS, rid, &m->base);
}

/* ControlHello and Ready for worker rid, serving the given functions. */
static void announce_batch(rc_replay_buf_t *b, const char *rid, char **fns, size_t n, uint32_t credit,
                           uint32_t max_batch)
{
    Refcache__V1__ControlHello h = REFCACHE__V1__CONTROL_HELLO__INIT;
    h.worker_id = (char *) rid;
    put_pb(b, RC_REPLAY_CONTROL, rid, &h.base);
    Refcache__V1__Ready r = REFCACHE__V1__READY__INIT;
    r.worker_id = (char *) rid;
    r.functions = fns;
    r.n_functions = n;
    r.cacheable = fns;
    r.n_cacheable = 1;
    r.credit = credit;
    r.max_batch = max_batch;
    r.heartbeat_ms = 100;
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_READY;
    m.ready = &r;
    wmsg(b, rid, &m);
}

static void announce(rc_replay_buf_t *b, const char *rid, char **fns, size_t n, uint32_t credit)
{
    announce_batch(b, rid, fns, n, credit, 0);
}

static void submit(rc_replay_buf_t *b, const char *rid, uint64_t id, const char *fn, const char *payload,
                   uint32_t async_ms, uint32_t deadline_ms, uint32_t retries)
{
    Refcache__V1__SubmitRequest s = REFCACHE__V1__SUBMIT_REQUEST__INIT;
    s.function = (char *) fn;
    Refcache__V1__SubmitRequest__ParamsEntry e = REFCACHE__V1__SUBMIT_REQUEST__PARAMS_ENTRY__INIT;
    Refcache__V1__SubmitRequest__ParamsEntry *ep[1] = {&e};
    e.key = "ms";
    e.value = "50";
    s.params = ep;
    s.n_params = 1;
    s.payload.data = (uint8_t *) payload;
    s.payload.len = payload ? strlen(payload) : 0;
    s.async_timeout_ms = async_ms;
    s.deadline_ms = deadline_ms;
    s.max_retries = retries;
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    r.id = id;
    r.body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
    r.submit = &s;
    req(b, rid, &r);
}

static void by_ref(rc_replay_buf_t *b, const char *rid, uint64_t id, int kind, const char *ref)
{
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    Refcache__V1__StatusRequest st = REFCACHE__V1__STATUS_REQUEST__INIT;
    Refcache__V1__WaitRequest wt = REFCACHE__V1__WAIT_REQUEST__INIT;
    Refcache__V1__FetchRequest fe = REFCACHE__V1__FETCH_REQUEST__INIT;
    Refcache__V1__CancelRequest ca = REFCACHE__V1__CANCEL_REQUEST__INIT;
    Refcache__V1__DeleteRequest de = REFCACHE__V1__DELETE_REQUEST__INIT;
    Refcache__V1__StatsRequest sa = REFCACHE__V1__STATS_REQUEST__INIT;
    r.id = id;
    r.body_case = kind;
    switch (kind) {
    case REFCACHE__V1__REQUEST__BODY_STATUS:
        st.ref_id = (char *) ref;
        r.status = &st;
        break;
    case REFCACHE__V1__REQUEST__BODY_WAIT:
        wt.ref_id = (char *) ref;
        wt.timeout_ms = 1000;
        r.wait = &wt;
        break;
    case REFCACHE__V1__REQUEST__BODY_FETCH:
        fe.ref_id = (char *) ref;
        fe.offset = 3;
        fe.length = 5;
        r.fetch = &fe;
        break;
    case REFCACHE__V1__REQUEST__BODY_CANCEL:
        ca.ref_id = (char *) ref;
        r.cancel = &ca;
        break;
    case REFCACHE__V1__REQUEST__BODY_DELETE:
        de.ref_id = (char *) ref;
        r.delete_ = &de;
        break;
    default:
        r.stats = &sa;
        break;
    }
    req(b, rid, &r);
}

static void started(rc_replay_buf_t *b, const char *rid, const char *ref, uint32_t attempt)
{
    Refcache__V1__Started s = REFCACHE__V1__STARTED__INIT;
    s.ref_id = (char *) ref;
    s.attempt = attempt;
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED;
    m.started = &s;
    wmsg(b, rid, &m);
}

static void progress(rc_replay_buf_t *b, const char *rid, const char *ref, uint32_t attempt)
{
    Refcache__V1__Progress p = REFCACHE__V1__PROGRESS__INIT;
    p.ref_id = (char *) ref;
    p.attempt = attempt;
    p.done = 1;
    p.total = 2;
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_PROGRESS;
    m.progress = &p;
    wmsg(b, rid, &m);
}

static void result(rc_replay_buf_t *b, const char *rid, const char *ref, uint32_t attempt, size_t size)
{
    static uint8_t data[300];
    memset(data, 'r', sizeof data);
    Refcache__V1__Result r = REFCACHE__V1__RESULT__INIT;
    r.ref_id = (char *) ref;
    r.attempt = attempt;
    r.data.data = data;
    r.data.len = size;
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT;
    m.result = &r;
    wmsg(b, rid, &m);
}

/* One ResultBatch with a result for each of refs (attempt 1). */
static void results(rc_replay_buf_t *b, const char *rid, const char *const *refs, size_t n)
{
    Refcache__V1__Result r[8], *rp[8];
    for (size_t i = 0; i < n && i < 8; i++) {
        refcache__v1__result__init(&r[i]);
        r[i].ref_id = (char *) refs[i];
        r[i].attempt = 1;
        r[i].data.data = (uint8_t *) "batched";
        r[i].data.len = 7;
        rp[i] = &r[i];
    }
    Refcache__V1__ResultBatch rb = REFCACHE__V1__RESULT_BATCH__INIT;
    rb.results = rp;
    rb.n_results = n < 8 ? n : 8;
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULTS;
    m.results = &rb;
    wmsg(b, rid, &m);
}

static void failure(rc_replay_buf_t *b, const char *rid, const char *ref, uint32_t attempt, bool retryable)
{
    Refcache__V1__Failure f = REFCACHE__V1__FAILURE__INIT;
    f.ref_id = (char *) ref;
    f.attempt = attempt;
    f.code = REFCACHE__V1__CODE__CODE_INTERNAL;
    f.message = "boom";
    f.retryable = retryable;
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_FAILURE;
    m.failure = &f;
    wmsg(b, rid, &m);
}

static void cancel_ack(rc_replay_buf_t *b, const char *rid, const char *ref, uint32_t attempt)
{
    Refcache__V1__CancelAck a = REFCACHE__V1__CANCEL_ACK__INIT;
    a.ref_id = (char *) ref;
    a.attempt = attempt;
    a.started = true;
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK;
    m.cancel_ack = &a;
    wmsg(b, rid, &m);
}

static void heartbeat(rc_replay_buf_t *b, const char *rid)
{
    Refcache__V1__Heartbeat h = REFCACHE__V1__HEARTBEAT__INIT;
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_HEARTBEAT;
    m.heartbeat = &h;
    wmsg(b, rid, &m);
}

static int save(const char *dir, const char *name, rc_replay_buf_t *b)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->data, 1, b->len, f) != b->len) {
        perror(path);
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    rc_replay_buf_free(b);
    return 0;
}

/* A worker that takes batches: dispatches gathered, results in one
 * ResultBatch (with a stale entry), a cancel. */
static void batches(rc_replay_buf_t *b, char **fns)
{
    announce_batch(b, "w1", fns, 3, 4, 4);
    static const char *const payloads[] = {"p1", "p2", "p3", "p4", "p5", "p6"};
    for (uint64_t id = 1; id <= 6; id++)
        submit(b, "c1", id, "echo", payloads[id - 1], 100, 0, 1);
    rc_replay_put_clock(b, RC_REPLAY_STEP_1MS);
    const char *const first[] = {REF1};
    results(b, "w1", first, 1); /* echo is known to be quick now: the rest go in one batch */
    rc_replay_put_clock(b, RC_REPLAY_STEP_1MS);
    const char *const rest[] = {REF2, REF4, REF3, REF1, REF5};
    results(b, "w1", rest, 5);
    by_ref(b, "c1", 7, REFCACHE__V1__REQUEST__BODY_CANCEL, REF6);
    rc_replay_put_clock(b, RC_REPLAY_STEP_300MS);
    by_ref(b, "c1", 8, REFCACHE__V1__REQUEST__BODY_STATS, NULL);
}

/* Clients that send RequestBatches: held Submits and Waits answered later
 * by results, bad entries (a nested batch, garbage, no body), an empty
 * batch, shapes the codec leaves to protobuf-c (the batch split in two,
 * an unknown field), a REQ client's batch, and more clients with replies
 * due in one drain than the broker has outboxes. */
static void client_batches(rc_replay_buf_t *b, char **fns)
{
    announce_batch(b, "w1", fns, 3, 4, 4);
    batch_t bt = {0}, inner = {0};
    s_batch = &bt;
    submit(b, "c1", 1, "echo", "b1", 1000, 0, 0); /* REF1, held */
    submit(b, "c1", 2, "echo", "b2", 0, 0, 0);    /* REF2 */
    by_ref(b, "c1", 3, REFCACHE__V1__REQUEST__BODY_STATUS, REF1);
    by_ref(b, "c1", 4, REFCACHE__V1__REQUEST__BODY_WAIT, REF2);
    by_ref(b, "c1", 5, REFCACHE__V1__REQUEST__BODY_STATS, NULL);
    s_batch = &inner;
    by_ref(b, "c1", 7, REFCACHE__V1__REQUEST__BODY_STATUS, REF1);
    s_batch = &bt;
    uint8_t nested[256];
    batch_put(&bt, 1, nested, batch_bytes(nested, 6, &inner)); /* a batch in the batch */
    batch_put(&bt, 1, "\xff\xff\x07", 3);                      /* garbage */
    batch_put(&bt, 1, "\x08\x08", 2);                          /* an id, no body */
    s_batch = NULL;
    batch_send(b, "c1", 0, &bt, false);

    batch_t empty = {0};
    batch_send(b, "c2", 9, &empty, false);

    /* The batch field in two occurrences, then with an unknown field after
     * it. */
    batch_t one = {0}, two = {0};
    s_batch = &one;
    by_ref(b, "c1", 10, REFCACHE__V1__REQUEST__BODY_STATUS, REF1);
    s_batch = &two;
    by_ref(b, "c1", 11, REFCACHE__V1__REQUEST__BODY_WAIT, REF1);
    s_batch = NULL;
    size_t n = batch_bytes(s_frame, 0, &one);
    n += batch_bytes(s_frame + n, 0, &two);
    const void *f[1] = {s_frame};
    size_t l[1] = {n};
    rc_replay_put_msg(b, RC_REPLAY_CLIENTS, "c1", f, l, 1);
    l[0] = batch_bytes(s_frame, 12, &two);
    s_frame[l[0]++] = 0x50; /* field 10, a varint */
    s_frame[l[0]++] = 0x01;
    rc_replay_put_msg(b, RC_REPLAY_CLIENTS, "c1", f, l, 1);

    /* A REQ client's batch of one. */
    batch_t st = {0};
    s_batch = &st;
    by_ref(b, "req", 13, REFCACHE__V1__REQUEST__BODY_STATS, NULL);
    s_batch = NULL;
    batch_send(b, "req", 0, &st, true);

    /* The worker runs them: the held Submit and the Waits are answered. */
    rc_replay_put_clock(b, RC_REPLAY_STEP_1MS);
    started(b, "w1", REF1, 1);
    result(b, "w1", REF1, 1, 10);
    rc_replay_put_clock(b, RC_REPLAY_STEP_1MS);
    result(b, "w1", REF2, 1, 100);
    rc_replay_put_clock(b, RC_REPLAY_STEP_1MS);

    /* Ten clients wait in batches on one task (REF3); its result answers
     * them all in one message. */
    static const char *const cs[] = {"c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12"};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        batch_t w = {0};
        s_batch = &w;
        if (i == 0)
            submit(b, cs[i], 20, "sleep", "long", 1000, 0, 0);
        by_ref(b, cs[i], 21 + i, REFCACHE__V1__REQUEST__BODY_WAIT, REF3);
        by_ref(b, cs[i], 41 + i, REFCACHE__V1__REQUEST__BODY_STATUS, REF3);
        s_batch = NULL;
        batch_send(b, cs[i], 0, &w, false);
    }
    rc_replay_put_clock(b, RC_REPLAY_STEP_1MS);
    result(b, "w1", REF3, 1, 3);
    rc_replay_put_clock(b, RC_REPLAY_STEP_300MS);
    by_ref(b, "c1", 60, REFCACHE__V1__REQUEST__BODY_STATS, NULL);
}

/* The requests that look inside: List (filters, a cursor, a ref lookup),
 * Workers, Metrics, and a Watch taking events, acked, then stopped. */
static void observe(rc_replay_buf_t *b, char **fns)
{
    announce(b, "w1", fns, 3, 2);
    submit(b, "c1", 1, "echo", "o1", 0, 0, 0);
    submit(b, "c1", 2, "sleep", "o2", 0, 0, 0);
    Refcache__V1__State states[] = {REFCACHE__V1__STATE__STATE_PENDING, REFCACHE__V1__STATE__STATE_PROCESSING};
    Refcache__V1__ListRequest l = REFCACHE__V1__LIST_REQUEST__INIT;
    l.states = states;
    l.n_states = 2;
    l.limit = 1;
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    r.id = 3;
    r.body_case = REFCACHE__V1__REQUEST__BODY_LIST;
    r.list = &l;
    req(b, "c1", &r);
    Refcache__V1__ListRequest l2 = REFCACHE__V1__LIST_REQUEST__INIT;
    l2.cursor = "c1";
    l2.function = "sleep";
    l2.all_namespaces = true;
    r.id = 4;
    r.list = &l2;
    req(b, "c1", &r);
    Refcache__V1__ListRequest l3 = REFCACHE__V1__LIST_REQUEST__INIT;
    l3.ref_id = REF2;
    l3.all_namespaces = true;
    r.id = 5;
    r.list = &l3;
    req(b, "c1", &r);
    Refcache__V1__WorkersRequest wr = REFCACHE__V1__WORKERS_REQUEST__INIT;
    Refcache__V1__Request w = REFCACHE__V1__REQUEST__INIT;
    w.id = 6;
    w.body_case = REFCACHE__V1__REQUEST__BODY_WORKERS;
    w.workers = &wr;
    req(b, "c1", &w);
    Refcache__V1__WatchRequest wa = REFCACHE__V1__WATCH_REQUEST__INIT;
    wa.window = 2;
    Refcache__V1__Request wq = REFCACHE__V1__REQUEST__INIT;
    wq.id = 7;
    wq.body_case = REFCACHE__V1__REQUEST__BODY_WATCH;
    wq.watch = &wa;
    req(b, "c2", &wq);
    started(b, "w1", REF1, 1);
    result(b, "w1", REF1, 1, 10);
    by_ref(b, "c1", 8, REFCACHE__V1__REQUEST__BODY_CANCEL, REF2);
    cancel_ack(b, "w1", REF2, 1);
    Refcache__V1__WatchRequest ack = REFCACHE__V1__WATCH_REQUEST__INIT;
    ack.watch_id = 7;
    ack.acked = 3;
    wq.id = 9;
    wq.watch = &ack;
    req(b, "c2", &wq);
    rc_replay_put_clock(b, RC_REPLAY_STEP_10S);
    Refcache__V1__MetricsRequest mr = REFCACHE__V1__METRICS_REQUEST__INIT;
    Refcache__V1__Request m = REFCACHE__V1__REQUEST__INIT;
    m.id = 10;
    m.body_case = REFCACHE__V1__REQUEST__BODY_METRICS;
    m.metrics = &mr;
    req(b, "c1", &m);
    Refcache__V1__WatchRequest stop = REFCACHE__V1__WATCH_REQUEST__INIT;
    stop.watch_id = 7;
    stop.stop = true;
    wq.id = 11;
    wq.watch = &stop;
    req(b, "c2", &wq);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    char *fns[] = {"echo", "sleep", "fail"};
    rc_replay_buf_t b = {0};
    int rc = 0;

    /* Client requests on a worker that never answers (replies refused). */
    announce(&b, "w1", fns, 3, 2);
    submit(&b, "c1", 1, "echo", "hi", 0, 0, 0);
    by_ref(&b, "c1", 2, REFCACHE__V1__REQUEST__BODY_STATUS, REF1);
    by_ref(&b, "c1", 3, REFCACHE__V1__REQUEST__BODY_CANCEL, REF1);
    by_ref(&b, "c1", 4, REFCACHE__V1__REQUEST__BODY_WAIT, REF1);
    by_ref(&b, "c1", 5, REFCACHE__V1__REQUEST__BODY_DELETE, REF1);
    by_ref(&b, "c1", 6, REFCACHE__V1__REQUEST__BODY_STATS, NULL);
    submit(&b, "c1", 7, "nope", NULL, 0, 0, 0);
    rc |= save(dir, "client_submit_status_cancel", &b);

    /* A full run: dispatch (delivered), Started, Progress, Result, Fetch. */
    uint8_t nm = RC_REPLAY_CLOCK | RC_REPLAY_NO_MANDATORY;
    rc_replay_put_clock(&b, nm);
    announce(&b, "w1", fns, 3, 2);
    submit(&b, "c1", 1, "sleep", "x", 1000, 0, 0);
    started(&b, "w1", REF1, 1);
    progress(&b, "w1", REF1, 1);
    heartbeat(&b, "w1");
    result(&b, "w1", REF1, 1, 200);
    by_ref(&b, "c1", 2, REFCACHE__V1__REQUEST__BODY_FETCH, REF1);
    by_ref(&b, "c1", 3, REFCACHE__V1__REQUEST__BODY_STATUS, REF1);
    submit(&b, "c2", 4, "echo", "same", 0, 0, 0);
    result(&b, "w1", REF2, 1, 10);
    submit(&b, "c2", 5, "echo", "same", 0, 0, 0); /* cache hit */
    by_ref(&b, "c1", 6, REFCACHE__V1__REQUEST__BODY_DELETE, REF1);
    rc |= save(dir, "worker_result_fetch", &b);

    /* Retries: a retryable failure, back-off, a second attempt that fails
     * for good; a stale result of attempt 1. */
    rc_replay_put_clock(&b, nm);
    announce(&b, "w1", fns, 3, 1);
    submit(&b, "c1", 1, "fail", NULL, 0, 0, 2);
    failure(&b, "w1", REF1, 1, true);
    for (int i = 0; i < 12; i++) /* past the back-off, within liveness */
        rc_replay_put_clock(&b, RC_REPLAY_STEP_1MS);
    heartbeat(&b, "w1");
    result(&b, "w1", REF1, 1, 5);
    failure(&b, "w1", REF1, 2, false);
    by_ref(&b, "c1", 2, REFCACHE__V1__REQUEST__BODY_STATUS, REF1);
    rc |= save(dir, "worker_failure_retry", &b);

    /* Cancel and deadline while PROCESSING, acks; a worker lost. */
    rc_replay_put_clock(&b, nm);
    announce(&b, "w1", fns, 3, 2);
    announce(&b, "w2", fns, 3, 2);
    submit(&b, "c1", 1, "sleep", NULL, 0, 0, 1);
    submit(&b, "c1", 2, "sleep", NULL, 0, 200, 0);
    by_ref(&b, "c1", 3, REFCACHE__V1__REQUEST__BODY_CANCEL, REF1);
    cancel_ack(&b, "w1", REF1, 1);
    rc_replay_put_clock(&b, RC_REPLAY_STEP_300MS);
    cancel_ack(&b, "w2", REF2, 1);
    submit(&b, "c1", 4, "sleep", NULL, 0, 0, 1);
    rc_replay_put_clock(&b, RC_REPLAY_STEP_10S);
    by_ref(&b, "c1", 5, REFCACHE__V1__REQUEST__BODY_STATS, NULL);
    rc |= save(dir, "cancel_deadline_lost", &b);

    /* The same with every send to a worker accepted (delivered), then
     * refused (no such peer): a refused batch retries each of its tasks. */
    rc_replay_put_clock(&b, nm);
    batches(&b, fns);
    rc |= save(dir, "worker_batches", &b);
    rc_replay_put_clock(&b, RC_REPLAY_CLOCK);
    batches(&b, fns);
    rc |= save(dir, "worker_batches_refused", &b);

    /* Batches from clients, replies delivered, then refused. */
    rc_replay_put_clock(&b, nm);
    client_batches(&b, fns);
    rc |= save(dir, "client_batches", &b);
    rc_replay_put_clock(&b, RC_REPLAY_CLOCK);
    client_batches(&b, fns);
    rc |= save(dir, "client_batches_refused", &b);

    /* Looking inside, replies delivered, then refused. */
    rc_replay_put_clock(&b, nm);
    observe(&b, fns);
    rc |= save(dir, "observe", &b);
    rc_replay_put_clock(&b, RC_REPLAY_CLOCK);
    observe(&b, fns);
    rc |= save(dir, "observe_refused", &b);

    /* Malformed frames on every channel, and a REQ envelope. */
    const void *f3[3] = {"", "\x0a\x01", "junk"};
    size_t l3[3] = {0, 2, 4};
    rc_replay_put_msg(&b, RC_REPLAY_CLIENTS, "c1", f3, l3, 1);
    rc_replay_put_msg(&b, RC_REPLAY_CLIENTS, "c1", f3, l3, 3);
    rc_replay_put_msg(&b, RC_REPLAY_CLIENTS, "c1", f3 + 1, l3 + 1, 2);
    rc_replay_put_msg(&b, RC_REPLAY_WORKERS, "w\x01", f3 + 2, l3 + 2, 1);
    rc_replay_put_msg(&b, RC_REPLAY_CONTROL, "", f3 + 2, l3 + 2, 1);
    Refcache__V1__Request st = REFCACHE__V1__REQUEST__INIT;
    Refcache__V1__StatsRequest sr = REFCACHE__V1__STATS_REQUEST__INIT;
    st.id = 9;
    st.body_case = REFCACHE__V1__REQUEST__BODY_STATS;
    st.stats = &sr;
    size_t n = protobuf_c_message_pack(&st.base, s_frame);
    const void *env[2] = {"", s_frame};
    size_t envl[2] = {0, n};
    rc_replay_put_msg(&b, RC_REPLAY_CLIENTS, "req", env, envl, 2);
    rc |= save(dir, "malformed_and_envelope", &b);
    return rc ? 1 : 0;
}
