/* codec_loop: runs the hot paths of the three hand codecs a given number of
 * times, for instruction counts under callgrind (not a test: it checks only
 * that each step succeeds). Usage: codec_loop GROUP N, GROUP one of
 *   submit   broker: decode a Request{submit}, write its dispatch spec
 *   batch    broker: decode a Request{batch} of 16 submits, each entry too
 *   reply    broker: encode a Reply{submit} and a Reply{task}, batch them
 *   result   broker: decode a WorkerMessage{result} and {results} of 16
 *   client   client: encode a submit and a wait, decode a Reply{submit}
 *            and a Reply{task} (codec_loop_client.c)
 *   worker   worker: decode a BrokerMessage{dispatch} and {dispatches} of
 *            16, encode a Result, a batch entry and a Started
 * Instructions per round: callgrind's total for N rounds minus that for 0,
 * divided by N (scripts in docs/performance.md, "Codec"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_loop.h"
#include "rc_codec.h"
#include "rc_worker_codec.h"
#include "refcache.pb-c.h"

static const char REF[] = "0123456789abcdef0123456789abcdef";
static uint8_t payload[32];

void loop_fail(const char *what)
{
    fprintf(stderr, "codec_loop: %s failed\n", what);
    exit(1);
}

/* A bump allocator over one buffer, reset each round, for the decoders that
 * take the caller's allocator (the same before and after any change to the
 * libraries' own arenas, which are measured end to end instead). */
static uint8_t bump_mem[1 << 16];
static size_t bump_used;

static void *bump_alloc(void *data, size_t n)
{
    (void) data;
    n = (n + 15) & ~(size_t) 15;
    if (n > sizeof bump_mem - bump_used)
        return NULL;
    void *p = bump_mem + bump_used;
    bump_used += n;
    return p;
}

static void bump_free(void *data, void *p)
{
    (void) data;
    (void) p;
}

ProtobufCAllocator loop_alloc = {bump_alloc, bump_free, NULL};

void loop_alloc_reset(void)
{
    bump_used = 0;
}

/* A SubmitRequest as the bench sends it: "echo", two params, 32 bytes. */
static Refcache__V1__SubmitRequest__ParamsEntry e1 = REFCACHE__V1__SUBMIT_REQUEST__PARAMS_ENTRY__INIT;
static Refcache__V1__SubmitRequest__ParamsEntry e2 = REFCACHE__V1__SUBMIT_REQUEST__PARAMS_ENTRY__INIT;
static Refcache__V1__SubmitRequest__ParamsEntry *params[] = {&e1, &e2};
static Refcache__V1__SubmitRequest submit = REFCACHE__V1__SUBMIT_REQUEST__INIT;

static size_t pack_submit(uint64_t id, uint8_t *out)
{
    e1.key = "n";
    e1.value = "1000";
    e2.key = "mode";
    e2.value = "fast";
    submit.function = "echo";
    submit.n_params = 2;
    submit.params = params;
    submit.payload.data = payload;
    submit.payload.len = sizeof payload;
    submit.async_timeout_ms = 1000;
    Refcache__V1__Request r = REFCACHE__V1__REQUEST__INIT;
    r.id = id;
    r.body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
    r.submit = &submit;
    return refcache__v1__request__pack(&r, out);
}

static void run_submit(long n)
{
    uint8_t frame[256], room[128];
    size_t len = pack_submit(77, frame);
    for (long i = 0; i < n; i++) {
        rc_request_t req;
        const char *why;
        uint8_t *spec;
        size_t spec_len;
        if (rc_codec_request(frame, len, &req, &why) != 0 ||
            rc_codec_dispatch_spec(&req, REF, room, sizeof room, &spec, &spec_len) != 0)
            loop_fail("submit");
        rc_codec_dispatch_set_attempt(spec, spec_len, 1);
        rc_codec_request_release(&req);
    }
}

static void run_batch(long n)
{
    enum { N = 16 };
    Refcache__V1__Request *entries[N];
    Refcache__V1__Request rs[N];
    Refcache__V1__RequestBatch b = REFCACHE__V1__REQUEST_BATCH__INIT;
    for (int i = 0; i < N; i++) {
        rs[i] = (Refcache__V1__Request) REFCACHE__V1__REQUEST__INIT;
        rs[i].id = 100 + (uint64_t) i;
        rs[i].body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
        rs[i].submit = &submit;
        entries[i] = &rs[i];
    }
    pack_submit(1, (uint8_t[256]){0}); /* fills submit */
    b.n_requests = N;
    b.requests = entries;
    Refcache__V1__Request outer = REFCACHE__V1__REQUEST__INIT;
    outer.body_case = REFCACHE__V1__REQUEST__BODY_BATCH;
    outer.batch = &b;
    static uint8_t frame[8192];
    size_t len = refcache__v1__request__pack(&outer, frame);
    rc_buf_t scratch = {0};
    for (long i = 0; i < n; i++) {
        rc_request_t req;
        const char *why;
        if (rc_codec_request(frame, len, &req, &why) != 0 || req.kind != RC_REQ_BATCH)
            loop_fail("batch");
        rc_bytes_t entry;
        while (rc_codec_request_next(&req, &scratch, &entry)) {
            rc_request_t one;
            if (rc_codec_request(entry.ptr, entry.len, &one, &why) != 0)
                loop_fail("batch entry");
            rc_codec_request_release(&one);
        }
        rc_codec_request_release(&req);
    }
    rc_buf_free(&scratch);
}

static void run_reply(long n)
{
    rc_taskview_t pending = {.ref_hex = REF,
                             .state = 1,
                             .function = "echo",
                             .created_at_us = 1700000000000000ULL,
                             .expires_at_us = 0};
    rc_taskview_t done = pending;
    done.state = 3;
    done.result = (rc_bytes_t){payload, sizeof payload};
    done.result_size = sizeof payload;
    done.attempt = 1;
    done.started_at_us = done.created_at_us + 10;
    done.finished_at_us = done.created_at_us + 20;
    done.expires_at_us = done.created_at_us + 3600000000ULL;
    rc_buf_t buf = {0}, batch = {0};
    for (long i = 0; i < n; i++) {
        rc_reply_t r = {.id = 5, .kind = RC_REPLY_SUBMIT, .task = &pending};
        batch.len = 0;
        if (rc_codec_reply(&buf, &r) != 0 || rc_codec_batch_entry(&batch, buf.data, buf.len) != 0)
            loop_fail("reply submit");
        r = (rc_reply_t){.id = 6, .kind = RC_REPLY_TASK, .task = &done};
        if (rc_codec_reply(&buf, &r) != 0 || rc_codec_batch_entry(&batch, buf.data, buf.len) != 0)
            loop_fail("reply task");
    }
    rc_buf_free(&buf);
    rc_buf_free(&batch);
}

static void run_result(long n)
{
    enum { N = 16 };
    Refcache__V1__Result rs[N];
    Refcache__V1__Result *entries[N];
    for (int i = 0; i < N; i++) {
        rs[i] = (Refcache__V1__Result) REFCACHE__V1__RESULT__INIT;
        rs[i].ref_id = (char *) REF;
        rs[i].attempt = 1;
        rs[i].data = (ProtobufCBinaryData){sizeof payload, payload};
        entries[i] = &rs[i];
    }
    Refcache__V1__WorkerMessage one = REFCACHE__V1__WORKER_MESSAGE__INIT;
    one.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT;
    one.result = &rs[0];
    Refcache__V1__ResultBatch b = REFCACHE__V1__RESULT_BATCH__INIT;
    b.n_results = N;
    b.results = entries;
    Refcache__V1__WorkerMessage many = REFCACHE__V1__WORKER_MESSAGE__INIT;
    many.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULTS;
    many.results = &b;
    static uint8_t f1[256], f2[4096];
    size_t l1 = refcache__v1__worker_message__pack(&one, f1);
    size_t l2 = refcache__v1__worker_message__pack(&many, f2);
    for (long i = 0; i < n; i++) {
        rc_wmsg_t m, r;
        const char *why;
        if (rc_codec_wmsg(f1, l1, &m, &why) != 0 || m.kind != RC_WMSG_RESULT)
            loop_fail("result");
        rc_codec_wmsg_release(&m);
        if (rc_codec_wmsg(f2, l2, &m, &why) != 0 || m.kind != RC_WMSG_RESULTS)
            loop_fail("results");
        for (size_t k = 0; k < m.n_results; k++)
            rc_codec_wmsg_result(&m, k, &r);
        rc_codec_wmsg_release(&m);
    }
}

static void run_worker(long n)
{
    enum { N = 16 };
    /* The broker's own specs, as it sends them. */
    uint8_t frame[256], room[128], *spec;
    size_t len = pack_submit(9, frame), spec_len;
    rc_request_t req;
    const char *why;
    if (rc_codec_request(frame, len, &req, &why) != 0 ||
        rc_codec_dispatch_spec(&req, REF, room, sizeof room, &spec, &spec_len) != 0)
        loop_fail("spec");
    rc_codec_dispatch_set_attempt(spec, spec_len, 1);
    rc_codec_request_release(&req);
    static uint8_t batch[RC_BATCH_HEAD + N * 128];
    size_t blen = 0;
    for (int i = 0; i < N; i++) {
        memcpy(batch + RC_BATCH_HEAD + blen, spec, spec_len);
        blen += spec_len;
    }
    size_t head = rc_wire_head_before(batch + RC_BATCH_HEAD, RC_DISPATCHES_FIELD, blen);
    const uint8_t *bframe = batch + RC_BATCH_HEAD - head;
    blen += head;
    uint8_t out[256];
    for (long i = 0; i < n; i++) {
        loop_alloc_reset();
        Refcache__V1__BrokerMessage *m = rc_worker_codec_dispatch(spec, spec_len, &loop_alloc);
        Refcache__V1__BrokerMessage *mb = rc_worker_codec_dispatch(bframe, blen, &loop_alloc);
        if (!m || !mb || mb->dispatches->n_dispatches != N)
            loop_fail("dispatch");
        size_t need = rc_worker_codec_result_size(REF, 1, sizeof payload) +
                      rc_worker_codec_result_entry_size(REF, 1, sizeof payload) +
                      rc_worker_codec_started_size(REF, 1);
        if (need > sizeof out)
            loop_fail("sizes");
        uint8_t *p = rc_worker_codec_result_put(out, REF, 1, payload, sizeof payload);
        p = rc_worker_codec_result_entry_put(p, REF, 1, payload, sizeof payload);
        rc_worker_codec_started_put(p, REF, 1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: codec_loop submit|batch|reply|result|client|worker N\n");
        return 2;
    }
    long n = atol(argv[2]);
    memset(payload, 'x', sizeof payload);
    const char *g = argv[1];
    if (!strcmp(g, "submit"))
        run_submit(n);
    else if (!strcmp(g, "batch"))
        run_batch(n);
    else if (!strcmp(g, "reply"))
        run_reply(n);
    else if (!strcmp(g, "result"))
        run_result(n);
    else if (!strcmp(g, "client"))
        loop_client(n);
    else if (!strcmp(g, "worker"))
        run_worker(n);
    else {
        fprintf(stderr, "codec_loop: unknown group %s\n", g);
        return 2;
    }
    return 0;
}
