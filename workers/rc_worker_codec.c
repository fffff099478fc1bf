#include "rc_worker_codec.h"

#include <string.h>

#include "rc_wire.h"

/* ---------------------------------------------------------------- decoding */

typedef Refcache__V1__BrokerMessage broker_msg_t;
typedef Refcache__V1__Dispatch__ParamsEntry param_t;

/* BrokerMessage: only its fields 1 (dispatch) and 4 (dispatches). */
static const uint8_t top_kinds[] = {RC_F_NONE, RC_F_LEN, RC_F_NONE, RC_F_NONE, RC_F_LEN};
/* DispatchBatch: its dispatches (repeated). */
static const uint8_t batch_kinds[] = {RC_F_NONE, RC_F_LEN};
/* Dispatch: ref_id, attempt, function, params (repeated), payload; the
 * second list reads what precedes an attempt that comes last. */
static const uint8_t dispatch_kinds[] = {RC_F_NONE, RC_F_LEN, RC_F_U32, RC_F_LEN, RC_F_LEN, RC_F_LEN};
static const uint8_t head_kinds[] = {RC_F_NONE, RC_F_LEN, RC_F_NONE, RC_F_LEN, RC_F_LEN, RC_F_LEN};
static const uint8_t entry_kinds[] = {RC_F_NONE, RC_F_LEN, RC_F_LEN};

/* The broker appends the attempt as its last field, one key byte and one
 * value byte (docs/protocol.md; broker/rc_codec.c). */
#define ATTEMPT_KEY RC_WIRE_KEY(2, RC_WT_VARINT)

/* Scans a Dispatch body into f[0..5]; false if it is not the common shape. */
static bool scan_dispatch(const uint8_t *p, size_t len, rc_wire_field_t *f)
{
    /* The broker's shape first: scanned in order, it would fail at its end. */
    if (len >= 2 && p[len - 2] == ATTEMPT_KEY && !(p[len - 1] & 0x80) &&
        rc_wire_scan(p, p + len - 2, head_kinds, 5, 4, f)) {
        f[2].v = p[len - 1];
        return true;
    }
    return rc_wire_scan(p, p + len, dispatch_kinds, 5, 4, f);
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
    d->attempt = (uint32_t) f[2].v;
    if (!(d->ref_id = dup_string(alloc, &f[1])) || !(d->function = dup_string(alloc, &f[3])))
        return false;
    if (f[5].v) {
        d->payload.data = alloc->alloc(alloc->allocator_data, (size_t) f[5].v);
        if (!d->payload.data)
            return false;
        memcpy(d->payload.data, f[5].ptr, (size_t) f[5].v);
        d->payload.len = (size_t) f[5].v;
    }
    if (!f[4].v)
        return true;
    size_t n = (size_t) f[4].v;
    d->params = alloc->alloc(alloc->allocator_data, n * sizeof *d->params);
    if (!d->params)
        return false;
    /* The run of params was scanned whole: each is a key byte and a length
     * that fits; only each entry's own fields are left to check. */
    const uint8_t *p = f[4].ptr, *ent;
    for (size_t i = 0; i < n; i++) {
        rc_wire_field_t e[3];
        size_t elen;
        if (!rc_wire_entry(&p, f[4].end, &ent, &elen) || !rc_wire_scan(ent, ent + elen, entry_kinds, 2, 0, e))
            return false;
        param_t *entry = alloc->alloc(alloc->allocator_data, sizeof *entry);
        if (!entry)
            return false;
        *entry = entry_init;
        d->params[d->n_params++] = entry;
        if (!(entry->key = dup_string(alloc, &e[1])) || !(entry->value = dup_string(alloc, &e[2])))
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
    rc_wire_field_t f[6];
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
    rc_wire_field_t top[5], run[2];
    if (!rc_wire_scan(data, data + len, top_kinds, 4, 0, top) || !top[1].ptr == !top[4].ptr)
        return NULL;
    if (top[4].ptr && (!rc_wire_scan(top[4].ptr, top[4].ptr + top[4].v, batch_kinds, 1, 1, run) || !run[1].v))
        return NULL;
    broker_msg_t *m = alloc->alloc(alloc->allocator_data, sizeof *m);
    if (!m)
        return NULL;
    *m = msg_init;
    bool ok;
    if (top[1].ptr) {
        Refcache__V1__Dispatch *d = NULL;
        ok = read_dispatch(top[1].ptr, (size_t) top[1].v, alloc, &d);
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
            ok = read_batch(&run[1], alloc, b);
        }
    }
    if (!ok) {
        protobuf_c_message_free_unpacked(&m->base, alloc);
        return NULL;
    }
    return m;
}

/* ---------------------------------------------------------------- encoding */

/* WorkerMessage body field numbers, and ResultBatch's one field. */
enum { BODY_STARTED = 2, BODY_RESULT = 4, BODY_RESULTS = 8, BATCH_ENTRY = 1 };

static size_t len_of(const char *s)
{
    return s ? strlen(s) : 0;
}

static size_t result_body(size_t ref_len, uint32_t attempt, size_t len)
{
    return rc_wire_sz_bytes(1, ref_len) + rc_wire_sz_varint(2, attempt) + rc_wire_sz_bytes(3, len);
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
    out = rc_wire_put_bytes(out, 1, ref_id, ref_len);
    out = rc_wire_put_varint(out, 2, attempt);
    return rc_wire_put_bytes(out, 3, data, len);
}

size_t rc_worker_codec_result_size(const char *ref_id, uint32_t attempt, size_t len)
{
    return result_size(BODY_RESULT, ref_id, attempt, len);
}

uint8_t *rc_worker_codec_result_put(uint8_t *out, const char *ref_id, uint32_t attempt, const void *data,
                                    size_t len)
{
    return result_put(out, BODY_RESULT, ref_id, attempt, data, len);
}

size_t rc_worker_codec_result_entry_size(const char *ref_id, uint32_t attempt, size_t len)
{
    return result_size(BATCH_ENTRY, ref_id, attempt, len);
}

uint8_t *rc_worker_codec_result_entry_put(uint8_t *out, const char *ref_id, uint32_t attempt,
                                          const void *data, size_t len)
{
    return result_put(out, BATCH_ENTRY, ref_id, attempt, data, len);
}

void rc_worker_codec_entry_to_result(uint8_t *entry)
{
    /* Both keys are one byte (fields 1 and 4, length-delimited). */
    entry[0] = RC_WIRE_KEY(BODY_RESULT, RC_WT_LEN);
}

size_t rc_worker_codec_results_head(uint8_t *at, size_t body_len)
{
    return rc_wire_head_before(at, BODY_RESULTS, body_len);
}

size_t rc_worker_codec_started_size(const char *ref_id, uint32_t attempt)
{
    return rc_wire_sz_msg(BODY_STARTED, result_body(len_of(ref_id), attempt, 0));
}

uint8_t *rc_worker_codec_started_put(uint8_t *out, const char *ref_id, uint32_t attempt)
{
    size_t ref_len = len_of(ref_id);
    out = rc_wire_put_msg(out, BODY_STARTED, result_body(ref_len, attempt, 0));
    out = rc_wire_put_bytes(out, 1, ref_id, ref_len);
    return rc_wire_put_varint(out, 2, attempt);
}
