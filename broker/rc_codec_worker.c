/* rc_codec_worker: the broker's side of the work and control channels
 * (rc_codec.h). WorkerMessages in: a Result, a ResultBatch or a Started in
 * its common shape is read by hand (rc_wire_scan) into the structs
 * protobuf-c's unpack would make, in an arena; anything else goes to
 * protobuf-c. Out: the dispatch spec of a submit, written by hand once and
 * patched with each attempt, and the rare control messages, packed by
 * protobuf-c. */
#include "rc_codec_int.h"

#include <assert.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- fast decode */

static const uint8_t wmsg_kinds[] = {RC_SCAN(WORKER_MESSAGE, STARTED), RC_SCAN(WORKER_MESSAGE, RESULT),
                                     RC_SCAN(WORKER_MESSAGE, RESULTS)};
static const uint8_t results_kinds[] = {RC_SCAN(RESULT_BATCH, RESULTS)};
static const uint8_t result_kinds[] = {RC_SCAN(RESULT, REF_ID), RC_SCAN(RESULT, ATTEMPT),
                                       RC_SCAN(RESULT, DATA)};
static const uint8_t started_kinds[] = {RC_SCAN(STARTED, REF_ID), RC_SCAN(STARTED, ATTEMPT)};

_Static_assert(RC_KEY_RESULT_BATCH_RESULTS < 0x80,
               "a repeated field read by rc_wire_entry needs a one-byte key");

/* A Result body in the simple shape, or NULL. */
static Refcache__V1__Result *fast_result(rc_arena_t *a, const uint8_t *p, const uint8_t *end)
{
    static const Refcache__V1__Result result_init = REFCACHE__V1__RESULT__INIT;
    rc_wire_field_t f[sizeof result_kinds];
    if (!rc_wire_scan(p, end, result_kinds, RC_SCAN_N(result_kinds), 0, f))
        return NULL;
    Refcache__V1__Result *r = rc_arena_alloc(a, sizeof *r);
    if (!r)
        return NULL;
    *r = result_init;
    r->ref_id = fast_string(a, &f[RC_FIELD_RESULT_REF_ID]);
    r->attempt = (uint32_t) f[RC_FIELD_RESULT_ATTEMPT].v;
    if (!r->ref_id || !fast_bytes(a, &f[RC_FIELD_RESULT_DATA], &r->data))
        return NULL;
    return r;
}

/* A ResultBatch body of one or more Results in the simple shape, or NULL. */
static Refcache__V1__ResultBatch *fast_results(rc_arena_t *a, const uint8_t *p, const uint8_t *end)
{
    static const Refcache__V1__ResultBatch batch_init = REFCACHE__V1__RESULT_BATCH__INIT;
    rc_wire_field_t f[sizeof results_kinds];
    const rc_wire_field_t *run = &f[RC_FIELD_RESULT_BATCH_RESULTS];
    if (!rc_wire_scan(p, end, results_kinds, RC_SCAN_N(results_kinds), RC_FIELD_RESULT_BATCH_RESULTS, f) ||
        !run->v)
        return NULL;
    Refcache__V1__ResultBatch *b = rc_arena_alloc(a, sizeof *b);
    if (!b)
        return NULL;
    *b = batch_init;
    b->results = rc_arena_alloc(a, (size_t) run->v * sizeof *b->results);
    if (!b->results)
        return NULL;
    /* The scan checked the run: each entry is a key byte, a length, the bytes. */
    const uint8_t *q = run->ptr, *r;
    for (b->n_results = 0; b->n_results < run->v; b->n_results++) {
        size_t n;
        if (!rc_wire_entry(&q, run->end, &r, &n) || !(b->results[b->n_results] = fast_result(a, r, r + n)))
            return NULL;
    }
    return b;
}

/* A Started body in the simple shape, or NULL. */
static Refcache__V1__Started *fast_started(rc_arena_t *a, const uint8_t *p, const uint8_t *end)
{
    static const Refcache__V1__Started started_init = REFCACHE__V1__STARTED__INIT;
    rc_wire_field_t f[sizeof started_kinds];
    if (!rc_wire_scan(p, end, started_kinds, RC_SCAN_N(started_kinds), 0, f))
        return NULL;
    Refcache__V1__Started *st = rc_arena_alloc(a, sizeof *st);
    if (!st)
        return NULL;
    *st = started_init;
    st->ref_id = fast_string(a, &f[RC_FIELD_STARTED_REF_ID]);
    st->attempt = (uint32_t) f[RC_FIELD_STARTED_ATTEMPT].v;
    return st->ref_id ? st : NULL;
}

/* A WorkerMessage{result}, {results} or {started} in the simple shape, or
 * NULL. */
static Refcache__V1__WorkerMessage *fast_wmsg(rc_arena_t *a, const uint8_t *data, size_t len)
{
    static const Refcache__V1__WorkerMessage wmsg_init = REFCACHE__V1__WORKER_MESSAGE__INIT;
    rc_wire_field_t top[sizeof wmsg_kinds];
    const rc_wire_field_t *result = &top[RC_FIELD_WORKER_MESSAGE_RESULT];
    const rc_wire_field_t *results = &top[RC_FIELD_WORKER_MESSAGE_RESULTS];
    const rc_wire_field_t *started = &top[RC_FIELD_WORKER_MESSAGE_STARTED];
    if (!rc_wire_scan(data, data + len, wmsg_kinds, RC_SCAN_N(wmsg_kinds), 0, top) ||
        !!result->ptr + !!results->ptr + !!started->ptr != 1)
        return NULL;
    Refcache__V1__WorkerMessage *pb = rc_arena_alloc(a, sizeof *pb);
    if (!pb)
        return NULL;
    *pb = wmsg_init;
    if (result->ptr) {
        pb->body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT;
        pb->result = fast_result(a, result->ptr, result->ptr + result->v);
        return pb->result ? pb : NULL;
    }
    if (results->ptr) {
        pb->body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULTS;
        pb->results = fast_results(a, results->ptr, results->ptr + results->v);
        return pb->results ? pb : NULL;
    }
    pb->body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED;
    pb->started = fast_started(a, started->ptr, started->ptr + started->v);
    return pb->started ? pb : NULL;
}

/* ---------------------------------------------------------------- worker messages */

int rc_codec_wmsg(const uint8_t *data, size_t len, rc_wmsg_t *msg, const char **why)
{
    memset(msg, 0, sizeof *msg);
    rc_arena_t *a = rc_arena_take();
    if (!a) {
        *why = "out of memory decoding a WorkerMessage";
        return -1;
    }
    Refcache__V1__WorkerMessage *pb = fast_wmsg(a, data, len);
    if (!pb) {
        rc_arena_reset(a);
        pb = refcache__v1__worker_message__unpack(&a->pa, len, data);
    }
    if (!pb) {
        rc_arena_give(a);
        *why = "not a refcache.v1.WorkerMessage";
        return -1;
    }
    msg->pb_ = pb;
    msg->arena_ = a;
    switch (pb->body_case) {
    case REFCACHE__V1__WORKER_MESSAGE__BODY_READY:
        msg->kind = RC_WMSG_READY;
        msg->credit = pb->ready->credit;
        msg->heartbeat_ms = pb->ready->heartbeat_ms;
        msg->max_batch = pb->ready->max_batch;
        msg->n_functions = pb->ready->n_functions;
        msg->n_cacheable = pb->ready->n_cacheable;
        msg->session = pb->ready->session;
        msg->previous_session = pb->ready->previous_session;
        msg->previous_id = str_of(pb->ready->previous_worker_id);
        msg->n_tasks = pb->ready->n_previous_started;
        return 0;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED:
        msg->kind = RC_WMSG_STARTED;
        msg->ref_id = str_of(pb->started->ref_id);
        msg->attempt = pb->started->attempt;
        return 0;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_PROGRESS:
        msg->kind = RC_WMSG_PROGRESS;
        msg->ref_id = str_of(pb->progress->ref_id);
        msg->attempt = pb->progress->attempt;
        msg->done = pb->progress->done;
        msg->total = pb->progress->total;
        return 0;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT:
        msg->kind = RC_WMSG_RESULT;
        msg->ref_id = str_of(pb->result->ref_id);
        msg->attempt = pb->result->attempt;
        msg->data = (rc_bytes_t){pb->result->data.data, pb->result->data.len};
        return 0;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_FAILURE:
        msg->kind = RC_WMSG_FAILURE;
        msg->ref_id = str_of(pb->failure->ref_id);
        msg->attempt = pb->failure->attempt;
        msg->code = pb->failure->code;
        msg->message = str_of(pb->failure->message);
        msg->retryable = pb->failure->retryable;
        return 0;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_CANCEL_ACK:
        msg->kind = RC_WMSG_CANCEL_ACK;
        msg->ref_id = str_of(pb->cancel_ack->ref_id);
        msg->attempt = pb->cancel_ack->attempt;
        msg->started = pb->cancel_ack->started;
        return 0;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_HEARTBEAT:
        msg->kind = RC_WMSG_HEARTBEAT;
        return 0;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_RESULTS:
        msg->kind = RC_WMSG_RESULTS;
        msg->n_results = pb->results->n_results;
        return 0;
    case REFCACHE__V1__WORKER_MESSAGE__BODY_HAND_BACK:
        msg->kind = RC_WMSG_HAND_BACK;
        msg->n_tasks = pb->hand_back->n_tasks;
        msg->leaving = pb->hand_back->leaving;
        return 0;
    default:
        *why = "worker message has no body";
        return -1;
    }
}

rc_str_t rc_codec_wmsg_function(const rc_wmsg_t *msg, size_t i)
{
    const Refcache__V1__WorkerMessage *pb = msg->pb_;
    return str_of(pb->ready->functions[i]);
}

rc_str_t rc_codec_wmsg_cacheable(const rc_wmsg_t *msg, size_t i)
{
    const Refcache__V1__WorkerMessage *pb = msg->pb_;
    return str_of(pb->ready->cacheable[i]);
}

rc_str_t rc_codec_wmsg_task(const rc_wmsg_t *msg, size_t i, uint32_t *attempt)
{
    const Refcache__V1__WorkerMessage *pb = msg->pb_;
    const Refcache__V1__TaskRef *t = pb->body_case == REFCACHE__V1__WORKER_MESSAGE__BODY_READY
                                         ? pb->ready->previous_started[i]
                                         : pb->hand_back->tasks[i];
    *attempt = t->attempt;
    return str_of(t->ref_id);
}

rc_str_t rc_codec_wmsg_host(const rc_wmsg_t *msg)
{
    const Refcache__V1__WorkerMessage *pb = msg->pb_;
    return str_of(pb->ready->host);
}

uint32_t rc_codec_wmsg_pid(const rc_wmsg_t *msg)
{
    const Refcache__V1__WorkerMessage *pb = msg->pb_;
    return pb->ready->pid;
}

void rc_codec_wmsg_result(const rc_wmsg_t *msg, size_t i, rc_wmsg_t *result)
{
    const Refcache__V1__WorkerMessage *pb = msg->pb_;
    const Refcache__V1__Result *r = pb->results->results[i];
    *result = (rc_wmsg_t){
        .kind = RC_WMSG_RESULT,
        .ref_id = str_of(r->ref_id),
        .attempt = r->attempt,
        .data = {r->data.data, r->data.len},
    };
}

void rc_codec_wmsg_release(rc_wmsg_t *msg)
{
    rc_arena_give(msg->arena_);
    msg->arena_ = NULL;
    msg->pb_ = NULL;
}

size_t rc_codec_live_messages(void)
{
    return rc_arena_taken();
}

/* ---------------------------------------------------------------- dispatch */

/* The attempt is the last field of the Dispatch and always takes one byte
 * (max_retries is capped so attempts stay below 128): a field that appears
 * later in a protobuf encoding wins. Its key is one byte too. */
#define ATTEMPT_TAIL 2
_Static_assert(RC_KEY_DISPATCH_ATTEMPT < 0x80, "the attempt's key must be one byte");
/* A spec, a BrokerMessage{dispatch}, is byte for byte one entry of a
 * DispatchBatch (rc_codec.h). */
_Static_assert(RC_KEY_BROKER_MESSAGE_DISPATCH == RC_KEY_DISPATCH_BATCH_DISPATCHES,
               "a dispatch spec must also be an entry of a DispatchBatch");

/* A params entry of the Dispatch, copied from the submit's. */
static size_t param_size(const Refcache__V1__SubmitRequest__ParamsEntry *e)
{
    return rc_wire_sz_bytes(RC_FIELD_DISPATCH_PARAMS_ENTRY_KEY, len_of(e->key)) +
           rc_wire_sz_bytes(RC_FIELD_DISPATCH_PARAMS_ENTRY_VALUE, len_of(e->value));
}

/* protobuf-c packs the Dispatch (see below why). */
static int dispatch_spec_pb(const Refcache__V1__SubmitRequest *s, const char *ref_hex, uint8_t *room,
                            size_t room_len, uint8_t **spec, size_t *len)
{
    Refcache__V1__Dispatch d = REFCACHE__V1__DISPATCH__INIT;
    d.ref_id = (char *) ref_hex;
    d.function = s->function;
    d.n_params = s->n_params;
    d.params = (Refcache__V1__Dispatch__ParamsEntry **) s->params; /* same layout: key, value */
    d.payload = s->payload;
    size_t inner = refcache__v1__dispatch__get_packed_size(&d) + ATTEMPT_TAIL;
    size_t total = rc_wire_sz_msg(RC_FIELD_BROKER_MESSAGE_DISPATCH, inner);
    uint8_t *out = total <= room_len ? room : malloc(total);
    if (!out)
        return -1;
    uint8_t *p = rc_wire_put_msg(out, RC_FIELD_BROKER_MESSAGE_DISPATCH, inner);
    p += refcache__v1__dispatch__pack(&d, p);
    *p++ = RC_KEY_DISPATCH_ATTEMPT;
    *p++ = 0;
    *spec = out;
    *len = total;
    return 0;
}

int rc_codec_dispatch_spec(const rc_request_t *req, const char *ref_hex, uint8_t *room, size_t room_len,
                           uint8_t **spec, size_t *len)
{
    const Refcache__V1__Request *pb = req->pb_;
    const Refcache__V1__SubmitRequest *s = pb->submit;
    size_t ref_len = len_of(ref_hex), fn_len = len_of(s->function);
    size_t inner = rc_wire_sz_bytes(RC_FIELD_DISPATCH_REF_ID, ref_len) +
                   rc_wire_sz_bytes(RC_FIELD_DISPATCH_FUNCTION, fn_len) +
                   rc_wire_sz_bytes(RC_FIELD_DISPATCH_PAYLOAD, s->payload.len) + ATTEMPT_TAIL;
    for (size_t i = 0; i < s->n_params; i++) {
        /* protobuf-c keeps the unknown fields of a decoded params entry and
         * packs them again: such a rare submit keeps being forwarded as it
         * always was. */
        if (s->params[i]->base.n_unknown_fields)
            return dispatch_spec_pb(s, ref_hex, room, room_len, spec, len);
        inner += rc_wire_sz_msg(RC_FIELD_DISPATCH_PARAMS, param_size(s->params[i]));
    }
    size_t total = rc_wire_sz_msg(RC_FIELD_BROKER_MESSAGE_DISPATCH, inner);
    uint8_t *out = total <= room_len ? room : malloc(total);
    if (!out)
        return -1;
    /* In field-number order, but the attempt last (above). */
    uint8_t *p = rc_wire_put_msg(out, RC_FIELD_BROKER_MESSAGE_DISPATCH, inner);
    p = rc_wire_put_bytes(p, RC_FIELD_DISPATCH_REF_ID, ref_hex, ref_len);
    p = rc_wire_put_bytes(p, RC_FIELD_DISPATCH_FUNCTION, s->function, fn_len);
    for (size_t i = 0; i < s->n_params; i++) {
        const Refcache__V1__SubmitRequest__ParamsEntry *e = s->params[i];
        p = rc_wire_put_msg(p, RC_FIELD_DISPATCH_PARAMS, param_size(e));
        p = rc_wire_put_bytes(p, RC_FIELD_DISPATCH_PARAMS_ENTRY_KEY, e->key, len_of(e->key));
        p = rc_wire_put_bytes(p, RC_FIELD_DISPATCH_PARAMS_ENTRY_VALUE, e->value, len_of(e->value));
    }
    p = rc_wire_put_bytes(p, RC_FIELD_DISPATCH_PAYLOAD, s->payload.data, s->payload.len);
    *p++ = RC_KEY_DISPATCH_ATTEMPT;
    *p++ = 0;
    assert((size_t) (p - out) == total);
    *spec = out;
    *len = total;
    return 0;
}

void rc_codec_dispatch_set_attempt(uint8_t *spec, size_t len, uint32_t attempt)
{
    spec[len - 1] = (uint8_t) (attempt & 0x7f);
}

/* ---------------------------------------------------------------- control and the rest */

int rc_codec_control_hello(const uint8_t *data, size_t len)
{
    rc_arena_t *a = rc_arena_take();
    if (!a)
        return -1;
    Refcache__V1__ControlHello *pb = refcache__v1__control_hello__unpack(&a->pa, len, data);
    rc_arena_give(a);
    return pb ? 0 : -1;
}

int rc_codec_cancel_notice(rc_buf_t *buf, const char *ref_hex, uint32_t attempt, int reason)
{
    Refcache__V1__ControlMessage m = REFCACHE__V1__CONTROL_MESSAGE__INIT;
    Refcache__V1__CancelNotice c = REFCACHE__V1__CANCEL_NOTICE__INIT;
    c.ref_id = (char *) ref_hex;
    c.attempt = attempt;
    c.reason = (Refcache__V1__Code) reason;
    m.body_case = REFCACHE__V1__CONTROL_MESSAGE__BODY_CANCEL;
    m.cancel = &c;
    return pack_into(buf, &m.base);
}

int rc_codec_broker_heartbeat(rc_buf_t *buf)
{
    Refcache__V1__BrokerMessage m = REFCACHE__V1__BROKER_MESSAGE__INIT;
    Refcache__V1__Heartbeat hb = REFCACHE__V1__HEARTBEAT__INIT;
    m.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_HEARTBEAT;
    m.heartbeat = &hb;
    return pack_into(buf, &m.base);
}

int rc_codec_broker_reannounce(rc_buf_t *buf)
{
    Refcache__V1__BrokerMessage m = REFCACHE__V1__BROKER_MESSAGE__INIT;
    Refcache__V1__Reannounce ra = REFCACHE__V1__REANNOUNCE__INIT;
    m.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_REANNOUNCE;
    m.reannounce = &ra;
    return pack_into(buf, &m.base);
}

int rc_codec_broker_stopping(rc_buf_t *buf, uint32_t drain_ms)
{
    Refcache__V1__BrokerMessage m = REFCACHE__V1__BROKER_MESSAGE__INIT;
    Refcache__V1__Stopping st = REFCACHE__V1__STOPPING__INIT;
    st.drain_ms = drain_ms;
    m.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_STOPPING;
    m.stopping = &st;
    return pack_into(buf, &m.base);
}

/* ---------------------------------------------------------------- coverage */

#define WMSG "rc_codec: WorkerMessage decoder"
#define BMSG "rc_codec: BrokerMessage and control encoder"

/* Every field of what this file reads or writes, for test_wire_drift. */
const rc_wire_cover_t rc_codec_worker_covers[] = {
    RC_COVER(WMSG, refcache__v1__worker_message__descriptor, RC_FIELD_WORKER_MESSAGE_READY,
             RC_FIELD_WORKER_MESSAGE_STARTED, RC_FIELD_WORKER_MESSAGE_PROGRESS,
             RC_FIELD_WORKER_MESSAGE_RESULT, RC_FIELD_WORKER_MESSAGE_FAILURE,
             RC_FIELD_WORKER_MESSAGE_CANCEL_ACK, RC_FIELD_WORKER_MESSAGE_HEARTBEAT,
             RC_FIELD_WORKER_MESSAGE_RESULTS, RC_FIELD_WORKER_MESSAGE_HAND_BACK),
    {.codec = WMSG,
     .file = __FILE__,
     .message = &refcache__v1__ready__descriptor,
     .fields = RC_FIELDS(RC_FIELD_READY_FUNCTIONS, RC_FIELD_READY_CREDIT, RC_FIELD_READY_HEARTBEAT_MS,
                         RC_FIELD_READY_CACHEABLE, RC_FIELD_READY_MAX_BATCH, RC_FIELD_READY_HOST,
                         RC_FIELD_READY_PID, RC_FIELD_READY_SESSION, RC_FIELD_READY_PREVIOUS_SESSION,
                         RC_FIELD_READY_PREVIOUS_WORKER_ID, RC_FIELD_READY_PREVIOUS_STARTED),
     /* The broker knows a worker by its routing id, which is the same. */
     .left_out = RC_FIELDS(RC_FIELD_READY_WORKER_ID)},
    RC_COVER(WMSG, refcache__v1__started__descriptor, RC_FIELD_STARTED_REF_ID, RC_FIELD_STARTED_ATTEMPT),
    RC_COVER(WMSG, refcache__v1__progress__descriptor, RC_FIELD_PROGRESS_REF_ID, RC_FIELD_PROGRESS_ATTEMPT,
             RC_FIELD_PROGRESS_DONE, RC_FIELD_PROGRESS_TOTAL),
    RC_COVER(WMSG, refcache__v1__result__descriptor, RC_FIELD_RESULT_REF_ID, RC_FIELD_RESULT_ATTEMPT,
             RC_FIELD_RESULT_DATA),
    RC_COVER(WMSG, refcache__v1__result_batch__descriptor, RC_FIELD_RESULT_BATCH_RESULTS),
    RC_COVER(WMSG, refcache__v1__failure__descriptor, RC_FIELD_FAILURE_REF_ID, RC_FIELD_FAILURE_ATTEMPT,
             RC_FIELD_FAILURE_CODE, RC_FIELD_FAILURE_MESSAGE, RC_FIELD_FAILURE_RETRYABLE),
    RC_COVER(WMSG, refcache__v1__cancel_ack__descriptor, RC_FIELD_CANCEL_ACK_REF_ID,
             RC_FIELD_CANCEL_ACK_ATTEMPT, RC_FIELD_CANCEL_ACK_STARTED),
    RC_COVER_NONE(WMSG, refcache__v1__heartbeat__descriptor),
    RC_COVER(WMSG, refcache__v1__hand_back__descriptor, RC_FIELD_HAND_BACK_TASKS, RC_FIELD_HAND_BACK_LEAVING),
    RC_COVER(WMSG, refcache__v1__task_ref__descriptor, RC_FIELD_TASK_REF_REF_ID, RC_FIELD_TASK_REF_ATTEMPT),
    {.codec = "rc_codec: ControlHello decoder",
     .file = __FILE__,
     .message = &refcache__v1__control_hello__descriptor,
     .fields = RC_FIELDS(0),
     /* Only its being a ControlHello counts: the routing id is the worker id. */
     .left_out = RC_FIELDS(RC_FIELD_CONTROL_HELLO_WORKER_ID)},
    RC_COVER(BMSG, refcache__v1__broker_message__descriptor, RC_FIELD_BROKER_MESSAGE_DISPATCH,
             RC_FIELD_BROKER_MESSAGE_HEARTBEAT, RC_FIELD_BROKER_MESSAGE_REANNOUNCE,
             RC_FIELD_BROKER_MESSAGE_DISPATCHES /* the broker's dispatch batches, of specs */,
             RC_FIELD_BROKER_MESSAGE_STOPPING),
    RC_COVER(BMSG, refcache__v1__stopping__descriptor, RC_FIELD_STOPPING_DRAIN_MS),
    RC_COVER(BMSG, refcache__v1__dispatch_batch__descriptor, RC_FIELD_DISPATCH_BATCH_DISPATCHES),
    RC_COVER(BMSG, refcache__v1__dispatch__descriptor, RC_FIELD_DISPATCH_REF_ID, RC_FIELD_DISPATCH_ATTEMPT,
             RC_FIELD_DISPATCH_FUNCTION, RC_FIELD_DISPATCH_PARAMS, RC_FIELD_DISPATCH_PAYLOAD),
    RC_COVER(BMSG, refcache__v1__dispatch__params_entry__descriptor, RC_FIELD_DISPATCH_PARAMS_ENTRY_KEY,
             RC_FIELD_DISPATCH_PARAMS_ENTRY_VALUE),
    RC_COVER_NONE(BMSG, refcache__v1__heartbeat__descriptor),
    RC_COVER_NONE(BMSG, refcache__v1__reannounce__descriptor),
    RC_COVER(BMSG, refcache__v1__control_message__descriptor, RC_FIELD_CONTROL_MESSAGE_CANCEL),
    RC_COVER(BMSG, refcache__v1__cancel_notice__descriptor, RC_FIELD_CANCEL_NOTICE_REF_ID,
             RC_FIELD_CANCEL_NOTICE_ATTEMPT, RC_FIELD_CANCEL_NOTICE_REASON),
    {0},
};
