/* rc_worker_codec: the worker's hand codec (see rc_worker_codec.h): Dispatches
 * read by rc_wire_scan, Results and Started written by rc_wire's writers. */
#include "rc_worker_codec.h"

#include <string.h>

#include "rc_wire.h"

/* ---------------------------------------------------------------- decoding */

typedef Refcache__V1__BrokerMessage broker_msg_t;
typedef Refcache__V1__Dispatch__ParamsEntry param_t;

/* BrokerMessage: only its dispatch and dispatches. */
static const uint8_t top_kinds[] = {RC_SCAN(BROKER_MESSAGE, DISPATCH), RC_SCAN(BROKER_MESSAGE, DISPATCHES)};
static const uint8_t batch_kinds[] = {RC_SCAN(DISPATCH_BATCH, DISPATCHES)};
/* Dispatch: ref_id, attempt, function, params (repeated), payload; the
 * second list reads what precedes an attempt that comes last. */
static const uint8_t dispatch_kinds[] = {RC_SCAN(DISPATCH, REF_ID), RC_SCAN(DISPATCH, ATTEMPT),
                                         RC_SCAN(DISPATCH, FUNCTION), RC_SCAN(DISPATCH, PARAMS),
                                         RC_SCAN(DISPATCH, PAYLOAD)};
static const uint8_t head_kinds[] = {RC_SCAN(DISPATCH, REF_ID), RC_SCAN(DISPATCH, FUNCTION),
                                     RC_SCAN(DISPATCH, PARAMS), RC_SCAN(DISPATCH, PAYLOAD)};
static const uint8_t entry_kinds[] = {RC_SCAN(DISPATCH_PARAMS_ENTRY, KEY), RC_SCAN(DISPATCH_PARAMS_ENTRY, VALUE)};

/* The broker appends the attempt as its last field, one key byte and one
 * value byte (docs/protocol.md; broker/rc_codec_worker.c). */
#define ATTEMPT_KEY RC_KEY_DISPATCH_ATTEMPT
_Static_assert(ATTEMPT_KEY < 0x80, "the attempt's key must be one byte");
_Static_assert(RC_KEY_DISPATCH_PARAMS < 0x80 && RC_KEY_DISPATCH_BATCH_DISPATCHES < 0x80,
               "a repeated field read by rc_wire_entry needs a one-byte key");

/* Scans a Dispatch body into f (sizeof dispatch_kinds of them); false if it
 * is not the common shape. */
static bool scan_dispatch(const uint8_t *p, size_t len, rc_wire_field_t *f)
{
    _Static_assert(RC_SCAN_N(head_kinds) <= RC_SCAN_N(dispatch_kinds), "head_kinds reads fewer fields");
    /* The broker's shape first: scanned in order, it would fail at its end. */
    if (len >= 2 && p[len - 2] == ATTEMPT_KEY && !(p[len - 1] & 0x80) &&
        rc_wire_scan(p, p + len - 2, head_kinds, RC_SCAN_N(head_kinds), RC_FIELD_DISPATCH_PARAMS, f)) {
        f[RC_FIELD_DISPATCH_ATTEMPT].v = p[len - 1];
        return true;
    }
    return rc_wire_scan(p, p + len, dispatch_kinds, RC_SCAN_N(dispatch_kinds), RC_FIELD_DISPATCH_PARAMS, f);
}

/* A NUL-terminated copy of a string field, as protobuf-c makes one. */
static char *dup_string(ProtobufCAllocator *alloc, const rc_wire_field_t *f)
{
    if (!f->v)
        return (char *) protobuf_c_empty_string;
    char *s = alloc->alloc(alloc->allocator_data, (size_t) f->v + 1);
    if (s) {
        memcpy(s, f->ptr, (size_t) f->v);
        s[f->v] = 0;
    }
    return s;
}

/* Fills d from the scanned fields, allocating as it goes; every pointer it
 * has not set yet is NULL or a default, so a half-built message can be freed
 * with protobuf_c_message_free_unpacked. false out of memory. */
static bool fill_dispatch(Refcache__V1__Dispatch *d, const rc_wire_field_t *f, ProtobufCAllocator *alloc)
{
    static const param_t entry_init = REFCACHE__V1__DISPATCH__PARAMS_ENTRY__INIT;
    const rc_wire_field_t *payload = &f[RC_FIELD_DISPATCH_PAYLOAD], *params = &f[RC_FIELD_DISPATCH_PARAMS];
    d->attempt = (uint32_t) f[RC_FIELD_DISPATCH_ATTEMPT].v;
    if (!(d->ref_id = dup_string(alloc, &f[RC_FIELD_DISPATCH_REF_ID])) ||
        !(d->function = dup_string(alloc, &f[RC_FIELD_DISPATCH_FUNCTION])))
        return false;
    if (payload->v) {
        d->payload.data = alloc->alloc(alloc->allocator_data, (size_t) payload->v);
        if (!d->payload.data)
            return false;
        memcpy(d->payload.data, payload->ptr, (size_t) payload->v);
        d->payload.len = (size_t) payload->v;
    }
    if (!params->v)
        return true;
    size_t n = (size_t) params->v;
    d->params = alloc->alloc(alloc->allocator_data, n * sizeof *d->params);
    if (!d->params)
        return false;
    /* The run of params was scanned whole: each is a key byte and a length
     * that fits; only each entry's own fields are left to check. */
    const uint8_t *p = params->ptr, *ent;
    for (size_t i = 0; i < n; i++) {
        rc_wire_field_t e[sizeof entry_kinds];
        size_t elen;
        if (!rc_wire_entry(&p, params->end, &ent, &elen) ||
            !rc_wire_scan(ent, ent + elen, entry_kinds, RC_SCAN_N(entry_kinds), 0, e))
            return false;
        param_t *entry = alloc->alloc(alloc->allocator_data, sizeof *entry);
        if (!entry)
            return false;
        *entry = entry_init;
        d->params[d->n_params++] = entry;
        if (!(entry->key = dup_string(alloc, &e[RC_FIELD_DISPATCH_PARAMS_ENTRY_KEY])) ||
            !(entry->value = dup_string(alloc, &e[RC_FIELD_DISPATCH_PARAMS_ENTRY_VALUE])))
            return false;
    }
    return true;
}

/* Reads a Dispatch body of the common shape into a new struct, stored in
 * *out as soon as it exists (so that a half-built message can be freed);
 * false if the shape is not the common one or out of memory. */
static bool read_dispatch(const uint8_t *p, size_t len, ProtobufCAllocator *alloc,
                          Refcache__V1__Dispatch **out)
{
    static const Refcache__V1__Dispatch dispatch_init = REFCACHE__V1__DISPATCH__INIT;
    rc_wire_field_t f[sizeof dispatch_kinds];
    if (!scan_dispatch(p, len, f))
        return false;
    Refcache__V1__Dispatch *d = alloc->alloc(alloc->allocator_data, sizeof *d);
    if (!d)
        return false;
    *d = dispatch_init;
    *out = d;
    return fill_dispatch(d, f, alloc);
}

/* The Dispatches of a DispatchBatch body whose run of entries was scanned
 * (each a key byte and a length that fits). */
static bool read_batch(const rc_wire_field_t *run, ProtobufCAllocator *alloc, Refcache__V1__DispatchBatch *b)
{
    size_t n = (size_t) run->v;
    if (!(b->dispatches = alloc->alloc(alloc->allocator_data, n * sizeof *b->dispatches)))
        return false;
    const uint8_t *p = run->ptr, *entry;
    for (size_t i = 0; i < n; i++) {
        size_t dlen;
        if (!rc_wire_entry(&p, run->end, &entry, &dlen))
            return false;
        Refcache__V1__Dispatch *d = NULL;
        bool ok = read_dispatch(entry, dlen, alloc, &d);
        if (d)
            b->dispatches[b->n_dispatches++] = d;
        if (!ok)
            return false;
    }
    return true;
}

Refcache__V1__BrokerMessage *rc_worker_codec_dispatch(const uint8_t *data, size_t len,
                                                      ProtobufCAllocator *alloc)
{
    static const broker_msg_t msg_init = REFCACHE__V1__BROKER_MESSAGE__INIT;
    static const Refcache__V1__DispatchBatch batch_init = REFCACHE__V1__DISPATCH_BATCH__INIT;
    rc_wire_field_t top[sizeof top_kinds], run[sizeof batch_kinds];
    const rc_wire_field_t *one = &top[RC_FIELD_BROKER_MESSAGE_DISPATCH];
    const rc_wire_field_t *many = &top[RC_FIELD_BROKER_MESSAGE_DISPATCHES];
    if (!rc_wire_scan(data, data + len, top_kinds, RC_SCAN_N(top_kinds), 0, top) || !one->ptr == !many->ptr)
        return NULL;
    if (many->ptr && (!rc_wire_scan(many->ptr, many->ptr + many->v, batch_kinds, RC_SCAN_N(batch_kinds),
                                    RC_FIELD_DISPATCH_BATCH_DISPATCHES, run) ||
                      !run[RC_FIELD_DISPATCH_BATCH_DISPATCHES].v))
        return NULL;
    broker_msg_t *m = alloc->alloc(alloc->allocator_data, sizeof *m);
    if (!m)
        return NULL;
    *m = msg_init;
    bool ok;
    if (one->ptr) {
        Refcache__V1__Dispatch *d = NULL;
        ok = read_dispatch(one->ptr, (size_t) one->v, alloc, &d);
        if (d) {
            m->body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCH;
            m->dispatch = d;
        }
    } else {
        Refcache__V1__DispatchBatch *b = alloc->alloc(alloc->allocator_data, sizeof *b);
        ok = b != NULL;
        if (b) {
            *b = batch_init;
            m->body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCHES;
            m->dispatches = b;
            ok = read_batch(&run[RC_FIELD_DISPATCH_BATCH_DISPATCHES], alloc, b);
        }
    }
    if (!ok) {
        protobuf_c_message_free_unpacked(&m->base, alloc);
        return NULL;
    }
    return m;
}

/* ---------------------------------------------------------------- encoding */

static size_t len_of(const char *s)
{
    return s ? strlen(s) : 0;
}

static size_t result_body(size_t ref_len, uint32_t attempt, size_t len)
{
    return rc_wire_sz_bytes(RC_FIELD_RESULT_REF_ID, ref_len) + rc_wire_sz_varint(RC_FIELD_RESULT_ATTEMPT, attempt) +
           rc_wire_sz_bytes(RC_FIELD_RESULT_DATA, len);
}

/* A Result (ref_id, attempt, data) as field `field` of its container. */
static size_t result_size(unsigned field, const char *ref_id, uint32_t attempt, size_t len)
{
    return rc_wire_sz_msg(field, result_body(len_of(ref_id), attempt, len));
}

static uint8_t *result_put(uint8_t *out, unsigned field, const char *ref_id, uint32_t attempt,
                           const void *data, size_t len)
{
    size_t ref_len = len_of(ref_id);
    out = rc_wire_put_msg(out, field, result_body(ref_len, attempt, len));
    out = rc_wire_put_bytes(out, RC_FIELD_RESULT_REF_ID, ref_id, ref_len);
    out = rc_wire_put_varint(out, RC_FIELD_RESULT_ATTEMPT, attempt);
    return rc_wire_put_bytes(out, RC_FIELD_RESULT_DATA, data, len);
}

size_t rc_worker_codec_result_size(const char *ref_id, uint32_t attempt, size_t len)
{
    return result_size(RC_FIELD_WORKER_MESSAGE_RESULT, ref_id, attempt, len);
}

uint8_t *rc_worker_codec_result_put(uint8_t *out, const char *ref_id, uint32_t attempt, const void *data,
                                    size_t len)
{
    return result_put(out, RC_FIELD_WORKER_MESSAGE_RESULT, ref_id, attempt, data, len);
}

size_t rc_worker_codec_result_entry_size(const char *ref_id, uint32_t attempt, size_t len)
{
    return result_size(RC_FIELD_RESULT_BATCH_RESULTS, ref_id, attempt, len);
}

uint8_t *rc_worker_codec_result_entry_put(uint8_t *out, const char *ref_id, uint32_t attempt,
                                          const void *data, size_t len)
{
    return result_put(out, RC_FIELD_RESULT_BATCH_RESULTS, ref_id, attempt, data, len);
}

/* An entry and a lone Result differ only in their key, one byte each. */
_Static_assert(RC_KEY_RESULT_BATCH_RESULTS < 0x80 && RC_KEY_WORKER_MESSAGE_RESULT < 0x80,
               "a result entry becomes a WorkerMessage{result} by its first byte");

void rc_worker_codec_entry_to_result(uint8_t *entry)
{
    entry[0] = RC_KEY_WORKER_MESSAGE_RESULT;
}

_Static_assert(RC_KEY_WORKER_MESSAGE_RESULTS < 0x80, "rc_wire_head_before writes a one-byte key");

size_t rc_worker_codec_results_head(uint8_t *at, size_t body_len)
{
    return rc_wire_head_before(at, RC_FIELD_WORKER_MESSAGE_RESULTS, body_len);
}

static size_t started_body(size_t ref_len, uint32_t attempt)
{
    return rc_wire_sz_bytes(RC_FIELD_STARTED_REF_ID, ref_len) + rc_wire_sz_varint(RC_FIELD_STARTED_ATTEMPT, attempt);
}

size_t rc_worker_codec_started_size(const char *ref_id, uint32_t attempt)
{
    return rc_wire_sz_msg(RC_FIELD_WORKER_MESSAGE_STARTED, started_body(len_of(ref_id), attempt));
}

uint8_t *rc_worker_codec_started_put(uint8_t *out, const char *ref_id, uint32_t attempt)
{
    size_t ref_len = len_of(ref_id);
    out = rc_wire_put_msg(out, RC_FIELD_WORKER_MESSAGE_STARTED, started_body(ref_len, attempt));
    out = rc_wire_put_bytes(out, RC_FIELD_STARTED_REF_ID, ref_id, ref_len);
    return rc_wire_put_varint(out, RC_FIELD_STARTED_ATTEMPT, attempt);
}

/* ---------------------------------------------------------------- coverage */

#define DEC "rc_worker_codec: BrokerMessage decoder"
#define ENC "rc_worker_codec: WorkerMessage encoder"

/* Every field of what the worker's codec reads and writes, for
 * test_wire_drift. */
const rc_wire_cover_t rc_worker_codec_covers[] = {
    {.codec = DEC,
     .file = __FILE__,
     .message = &refcache__v1__broker_message__descriptor,
     .fields = RC_FIELDS(RC_FIELD_BROKER_MESSAGE_DISPATCH, RC_FIELD_BROKER_MESSAGE_DISPATCHES),
     /* Rare: declined here, unpacked by protobuf-c in rc_wrecv.c. */
     .left_out = RC_FIELDS(RC_FIELD_BROKER_MESSAGE_HEARTBEAT, RC_FIELD_BROKER_MESSAGE_REANNOUNCE,
                           RC_FIELD_BROKER_MESSAGE_STOPPING)},
    RC_COVER(DEC, refcache__v1__dispatch_batch__descriptor, RC_FIELD_DISPATCH_BATCH_DISPATCHES),
    RC_COVER(DEC, refcache__v1__dispatch__descriptor, RC_FIELD_DISPATCH_REF_ID, RC_FIELD_DISPATCH_ATTEMPT,
             RC_FIELD_DISPATCH_FUNCTION, RC_FIELD_DISPATCH_PARAMS, RC_FIELD_DISPATCH_PAYLOAD),
    RC_COVER(DEC, refcache__v1__dispatch__params_entry__descriptor, RC_FIELD_DISPATCH_PARAMS_ENTRY_KEY,
             RC_FIELD_DISPATCH_PARAMS_ENTRY_VALUE),
    {.codec = ENC,
     .file = __FILE__,
     .message = &refcache__v1__worker_message__descriptor,
     .fields = RC_FIELDS(RC_FIELD_WORKER_MESSAGE_STARTED, RC_FIELD_WORKER_MESSAGE_RESULT,
                         RC_FIELD_WORKER_MESSAGE_RESULTS),
     /* Rare: rc_wsend.c and rc_job.c pack them with protobuf-c. */
     .left_out = RC_FIELDS(RC_FIELD_WORKER_MESSAGE_READY, RC_FIELD_WORKER_MESSAGE_PROGRESS,
                           RC_FIELD_WORKER_MESSAGE_FAILURE, RC_FIELD_WORKER_MESSAGE_CANCEL_ACK,
                           RC_FIELD_WORKER_MESSAGE_HEARTBEAT, RC_FIELD_WORKER_MESSAGE_HAND_BACK)},
    RC_COVER(ENC, refcache__v1__result_batch__descriptor, RC_FIELD_RESULT_BATCH_RESULTS),
    RC_COVER(ENC, refcache__v1__result__descriptor, RC_FIELD_RESULT_REF_ID, RC_FIELD_RESULT_ATTEMPT,
             RC_FIELD_RESULT_DATA),
    RC_COVER(ENC, refcache__v1__started__descriptor, RC_FIELD_STARTED_REF_ID, RC_FIELD_STARTED_ATTEMPT),
    {0},
};
