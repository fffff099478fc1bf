/* rc_codec_request: the client Requests the broker reads (rc_codec.h), and
 * the RequestBatches that carry several. A Submit in its common shape, and a
 * batch's run of entries, are read by hand (rc_wire_scan) into the same
 * protobuf-c structs protobuf-c's unpack would make, in an arena; anything
 * else goes to protobuf-c, which decodes or rejects it. */
#include "rc_codec_int.h"

/* ---------------------------------------------------------------- fast decode */

static const uint8_t request_kinds[] = {RC_SCAN(REQUEST, ID), RC_SCAN(REQUEST, SUBMIT)};
static const uint8_t submit_kinds[] = {
    RC_SCAN(SUBMIT_REQUEST, FUNCTION),    RC_SCAN(SUBMIT_REQUEST, PARAMS),
    RC_SCAN(SUBMIT_REQUEST, PAYLOAD),     RC_SCAN(SUBMIT_REQUEST, ASYNC_TIMEOUT_MS),
    RC_SCAN(SUBMIT_REQUEST, DEADLINE_MS), RC_SCAN(SUBMIT_REQUEST, MAX_RETRIES),
    RC_SCAN(SUBMIT_REQUEST, TTL_S),       RC_SCAN(SUBMIT_REQUEST, NAMESPACE),
    RC_SCAN(SUBMIT_REQUEST, NO_CACHE),    RC_SCAN(SUBMIT_REQUEST, REQUEST_KEY),
};
static const uint8_t entry_kinds[] = {RC_SCAN(SUBMIT_REQUEST_PARAMS_ENTRY, KEY),
                                      RC_SCAN(SUBMIT_REQUEST_PARAMS_ENTRY, VALUE)};
/* A Request{batch}: an id at most beside it. */
static const uint8_t batch_top_kinds[] = {RC_SCAN(REQUEST, ID), RC_SCAN(REQUEST, BATCH)};
static const uint8_t batch_kinds[] = {RC_SCAN(REQUEST_BATCH, REQUESTS)};

/* rc_wire_entry reads runs of fields whose key is one byte. */
_Static_assert(RC_KEY_SUBMIT_REQUEST_PARAMS < 0x80 && RC_KEY_REQUEST_BATCH_REQUESTS < 0x80,
               "a repeated field read by rc_wire_entry needs a one-byte key");

/* A Request{id, submit} in the simple shape, or NULL. */
static Refcache__V1__Request *fast_request(rc_arena_t *a, const uint8_t *data, size_t len)
{
    static const Refcache__V1__Request request_init = REFCACHE__V1__REQUEST__INIT;
    static const Refcache__V1__SubmitRequest submit_init = REFCACHE__V1__SUBMIT_REQUEST__INIT;
    static const Refcache__V1__SubmitRequest__ParamsEntry entry_init =
        REFCACHE__V1__SUBMIT_REQUEST__PARAMS_ENTRY__INIT;
    rc_wire_field_t top[sizeof request_kinds], f[sizeof submit_kinds], e[sizeof entry_kinds];
    const rc_wire_field_t *body = &top[RC_FIELD_REQUEST_SUBMIT];
    if (!rc_wire_scan(data, data + len, request_kinds, RC_SCAN_N(request_kinds), 0, top) || !body->ptr ||
        !rc_wire_scan(body->ptr, body->ptr + body->v, submit_kinds, RC_SCAN_N(submit_kinds),
                      RC_FIELD_SUBMIT_REQUEST_PARAMS, f))
        return NULL;
    Refcache__V1__Request *pb = rc_arena_alloc(a, sizeof *pb);
    Refcache__V1__SubmitRequest *s = rc_arena_alloc(a, sizeof *s);
    if (!pb || !s)
        return NULL;
    *pb = request_init;
    *s = submit_init;
    pb->id = top[RC_FIELD_REQUEST_ID].v;
    pb->body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
    pb->submit = s;
    s->function = fast_string(a, &f[RC_FIELD_SUBMIT_REQUEST_FUNCTION]);
    s->namespace_ = fast_string(a, &f[RC_FIELD_SUBMIT_REQUEST_NAMESPACE]);
    s->request_key = fast_string(a, &f[RC_FIELD_SUBMIT_REQUEST_REQUEST_KEY]);
    if (!s->function || !s->namespace_ || !s->request_key || !fast_bytes(a, &f[RC_FIELD_SUBMIT_REQUEST_PAYLOAD], &s->payload))
        return NULL;
    s->async_timeout_ms = (uint32_t) f[RC_FIELD_SUBMIT_REQUEST_ASYNC_TIMEOUT_MS].v;
    s->deadline_ms = (uint32_t) f[RC_FIELD_SUBMIT_REQUEST_DEADLINE_MS].v;
    s->max_retries = (uint32_t) f[RC_FIELD_SUBMIT_REQUEST_MAX_RETRIES].v;
    s->ttl_s = (uint32_t) f[RC_FIELD_SUBMIT_REQUEST_TTL_S].v;
    s->no_cache = f[RC_FIELD_SUBMIT_REQUEST_NO_CACHE].v != 0;
    const rc_wire_field_t *params = &f[RC_FIELD_SUBMIT_REQUEST_PARAMS];
    if (params->v) {
        size_t n = (size_t) params->v;
        s->params = rc_arena_alloc(a, n * sizeof *s->params);
        Refcache__V1__SubmitRequest__ParamsEntry *entries = rc_arena_alloc(a, n * sizeof *entries);
        if (!s->params || !entries)
            return NULL;
        /* The run of params was scanned whole: each is a key byte and a
         * length that fits. */
        const uint8_t *p = params->ptr, *ent;
        for (size_t i = 0; i < n; i++) {
            size_t elen;
            if (!rc_wire_entry(&p, params->end, &ent, &elen) ||
                !rc_wire_scan(ent, ent + elen, entry_kinds, RC_SCAN_N(entry_kinds), 0, e))
                return NULL;
            entries[i] = entry_init;
            entries[i].key = fast_string(a, &e[RC_FIELD_SUBMIT_REQUEST_PARAMS_ENTRY_KEY]);
            entries[i].value = fast_string(a, &e[RC_FIELD_SUBMIT_REQUEST_PARAMS_ENTRY_VALUE]);
            if (!entries[i].key || !entries[i].value)
                return NULL;
            s->params[i] = &entries[i];
        }
        s->n_params = n;
    }
    return pb;
}

/* A Request{batch} in the simple shape (an id at most beside it, and the
 * entries of the RequestBatch one after the other): the run of entries in
 * req, or false. */
static bool fast_batch(const uint8_t *data, size_t len, rc_request_t *req)
{
    rc_wire_field_t top[sizeof batch_top_kinds], f[sizeof batch_kinds];
    const rc_wire_field_t *body = &top[RC_FIELD_REQUEST_BATCH], *run = &f[RC_FIELD_REQUEST_BATCH_REQUESTS];
    if (!rc_wire_scan(data, data + len, batch_top_kinds, RC_SCAN_N(batch_top_kinds), 0, top) || !body->ptr ||
        !rc_wire_scan(body->ptr, body->ptr + body->v, batch_kinds, RC_SCAN_N(batch_kinds),
                      RC_FIELD_REQUEST_BATCH_REQUESTS, f))
        return false;
    req->id = top[RC_FIELD_REQUEST_ID].v;
    req->kind = RC_REQ_BATCH;
    req->run_ = run->ptr;
    req->run_end_ = run->end;
    req->n_entries = (size_t) run->v;
    return true;
}

/* A member of Request's body oneof other than batch (the descriptor tells:
 * this path is rare), whose occurrence replaces the batch. */
static bool other_body(uint32_t field)
{
    const ProtobufCMessageDescriptor *d = &refcache__v1__request__descriptor;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, field);
    const ProtobufCFieldDescriptor *batch =
        protobuf_c_message_descriptor_get_field(d, RC_FIELD_REQUEST_BATCH);
    return f && f != batch && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
           f->quantifier_offset == batch->quantifier_offset;
}

/* The batch of a Request that protobuf-c unpacked. protobuf merges the
 * occurrences of a message field, but protobuf-c keeps only the last one
 * of a oneof member: the batch is rebuilt from every occurrence of the
 * field after the last other body field (which would have replaced it),
 * each unpacked into the arena. NULL if out of memory. */
static Refcache__V1__RequestBatch *merged_batch(rc_arena_t *a, const uint8_t *data, size_t len)
{
    const uint8_t *p = data, *end = data + len, *from = data;
    rc_wire_field_t f;
    uint32_t field;
    size_t parts = 0;
    while (p < end && rc_wire_field(&p, end, &field, &f)) {
        if (other_body(field)) {
            from = p;
            parts = 0;
        }
        parts += field == RC_FIELD_REQUEST_BATCH;
    }
    Refcache__V1__RequestBatch **part = rc_arena_alloc(a, (parts ? parts : 1) * sizeof *part);
    Refcache__V1__RequestBatch *b = rc_arena_alloc(a, sizeof *b);
    if (!part || !b)
        return NULL;
    size_t n = 0, total = 0;
    for (p = from; p < end && rc_wire_field(&p, end, &field, &f);)
        if (field == RC_FIELD_REQUEST_BATCH) {
            if (!(part[n] = refcache__v1__request_batch__unpack(&a->pa, (size_t) f.v, f.ptr)))
                return NULL;
            total += part[n++]->n_requests;
        }
    static const Refcache__V1__RequestBatch batch_init = REFCACHE__V1__REQUEST_BATCH__INIT;
    *b = batch_init;
    b->requests = rc_arena_alloc(a, (total ? total : 1) * sizeof *b->requests);
    if (!b->requests)
        return NULL;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < part[i]->n_requests; k++)
            b->requests[b->n_requests++] = part[i]->requests[k];
    return b;
}

/* ---------------------------------------------------------------- requests */

int rc_codec_request(const uint8_t *data, size_t len, rc_request_t *req, const char **why)
{
    memset(req, 0, sizeof *req);
    rc_arena_t *a = rc_arena_take();
    if (!a) {
        *why = "out of memory decoding a Request";
        return -1;
    }
    Refcache__V1__Request *pb = fast_request(a, data, len);
    if (!pb && fast_batch(data, len, req)) {
        req->arena_ = a;
        return 0;
    }
    if (!pb) {
        rc_arena_reset(a);
        pb = refcache__v1__request__unpack(&a->pa, len, data);
    }
    if (!pb) {
        rc_arena_give(a);
        *why = "not a refcache.v1.Request";
        return -1;
    }
    req->pb_ = pb;
    req->arena_ = a;
    req->id = pb->id;
    switch (pb->body_case) {
    case REFCACHE__V1__REQUEST__BODY_SUBMIT: {
        Refcache__V1__SubmitRequest *s = pb->submit;
        req->kind = RC_REQ_SUBMIT;
        req->function = str_of(s->function);
        req->ns = str_of(s->namespace_);
        req->payload = (rc_bytes_t){s->payload.data, s->payload.len};
        req->n_params = s->n_params;
        req->async_timeout_ms = s->async_timeout_ms;
        req->deadline_ms = s->deadline_ms;
        req->max_retries = s->max_retries;
        req->ttl_s = s->ttl_s;
        req->no_cache = s->no_cache;
        req->request_key = str_of(s->request_key);
        return 0;
    }
    case REFCACHE__V1__REQUEST__BODY_STATUS:
        req->kind = RC_REQ_STATUS;
        req->ref_id = str_of(pb->status->ref_id);
        req->ns = str_of(pb->status->namespace_);
        return 0;
    case REFCACHE__V1__REQUEST__BODY_WAIT:
        req->kind = RC_REQ_WAIT;
        req->ref_id = str_of(pb->wait->ref_id);
        req->timeout_ms = pb->wait->timeout_ms;
        req->ns = str_of(pb->wait->namespace_);
        return 0;
    case REFCACHE__V1__REQUEST__BODY_FETCH:
        req->kind = RC_REQ_FETCH;
        req->ref_id = str_of(pb->fetch->ref_id);
        req->offset = pb->fetch->offset;
        req->length = pb->fetch->length;
        req->ns = str_of(pb->fetch->namespace_);
        return 0;
    case REFCACHE__V1__REQUEST__BODY_CANCEL:
        req->kind = RC_REQ_CANCEL;
        req->ref_id = str_of(pb->cancel->ref_id);
        req->ns = str_of(pb->cancel->namespace_);
        return 0;
    case REFCACHE__V1__REQUEST__BODY_DELETE:
        req->kind = RC_REQ_DELETE;
        req->ref_id = str_of(pb->delete_->ref_id);
        req->ns = str_of(pb->delete_->namespace_);
        return 0;
    case REFCACHE__V1__REQUEST__BODY_STATS:
        req->kind = RC_REQ_STATS;
        return 0;
    case REFCACHE__V1__REQUEST__BODY_BATCH:
        if (!(pb->batch = merged_batch(a, data, len))) {
            *why = "out of memory decoding a RequestBatch";
            return -1;
        }
        req->kind = RC_REQ_BATCH;
        req->n_entries = pb->batch->n_requests;
        return 0;
    default:
        if (rc_codec_request_observe(pb, req) == 0)
            return 0;
        *why = "request has no body (or one this broker does not know)";
        return -1;
    }
}

void rc_codec_request_param(const rc_request_t *req, size_t i, rc_str_t *key, rc_str_t *value)
{
    const Refcache__V1__Request *pb = req->pb_;
    const Refcache__V1__SubmitRequest__ParamsEntry *e = pb->submit->params[i];
    *key = str_of(e->key);
    *value = str_of(e->value);
}

bool rc_codec_request_next(rc_request_t *req, rc_buf_t *scratch, rc_bytes_t *entry)
{
    if (req->next_ >= req->n_entries)
        return false;
    req->next_++;
    if (!req->pb_) {
        size_t len;
        if (!rc_wire_entry(&req->run_, req->run_end_, &entry->ptr, &len))
            return false;
        entry->len = len;
        return true;
    }
    /* Unusual shapes are rare: the entry goes back to bytes, to be read as
     * any lone Request is. */
    const Refcache__V1__Request *pb = req->pb_;
    const Refcache__V1__Request *e = pb->batch->requests[req->next_ - 1];
    size_t len = refcache__v1__request__get_packed_size(e);
    if (rc_buf_reserve(scratch, len ? len : 1) != 0)
        return false;
    scratch->len = refcache__v1__request__pack(e, scratch->data);
    *entry = (rc_bytes_t){scratch->data, scratch->len};
    return true;
}

void rc_codec_request_release(rc_request_t *req)
{
    /* Everything the unpack allocated is in the arena or on its list. */
    rc_arena_give(req->arena_);
    req->arena_ = NULL;
    req->pb_ = NULL;
}

/* ---------------------------------------------------------------- coverage */

/* Every field of what rc_codec_request reads, for test_wire_drift. */
const rc_wire_cover_t rc_codec_request_covers[] = {
    RC_COVER("rc_codec: Request decoder", refcache__v1__request__descriptor, RC_FIELD_REQUEST_ID,
             RC_FIELD_REQUEST_SUBMIT, RC_FIELD_REQUEST_STATUS, RC_FIELD_REQUEST_WAIT, RC_FIELD_REQUEST_FETCH,
             RC_FIELD_REQUEST_CANCEL, RC_FIELD_REQUEST_DELETE, RC_FIELD_REQUEST_STATS,
             RC_FIELD_REQUEST_BATCH, RC_FIELD_REQUEST_LIST, RC_FIELD_REQUEST_WORKERS, RC_FIELD_REQUEST_WATCH,
             RC_FIELD_REQUEST_METRICS /* their bodies: rc_codec_observe */),
    RC_COVER("rc_codec: Request decoder", refcache__v1__request_batch__descriptor,
             RC_FIELD_REQUEST_BATCH_REQUESTS),
    RC_COVER("rc_codec: Request decoder", refcache__v1__submit_request__descriptor,
             RC_FIELD_SUBMIT_REQUEST_FUNCTION, RC_FIELD_SUBMIT_REQUEST_PARAMS,
             RC_FIELD_SUBMIT_REQUEST_PAYLOAD, RC_FIELD_SUBMIT_REQUEST_ASYNC_TIMEOUT_MS,
             RC_FIELD_SUBMIT_REQUEST_DEADLINE_MS, RC_FIELD_SUBMIT_REQUEST_MAX_RETRIES,
             RC_FIELD_SUBMIT_REQUEST_TTL_S, RC_FIELD_SUBMIT_REQUEST_NAMESPACE, RC_FIELD_SUBMIT_REQUEST_REQUEST_KEY,
             RC_FIELD_SUBMIT_REQUEST_NO_CACHE),
    RC_COVER("rc_codec: Request decoder", refcache__v1__submit_request__params_entry__descriptor,
             RC_FIELD_SUBMIT_REQUEST_PARAMS_ENTRY_KEY, RC_FIELD_SUBMIT_REQUEST_PARAMS_ENTRY_VALUE),
    RC_COVER("rc_codec: Request decoder", refcache__v1__status_request__descriptor,
             RC_FIELD_STATUS_REQUEST_REF_ID, RC_FIELD_STATUS_REQUEST_NAMESPACE),
    RC_COVER("rc_codec: Request decoder", refcache__v1__wait_request__descriptor,
             RC_FIELD_WAIT_REQUEST_REF_ID, RC_FIELD_WAIT_REQUEST_TIMEOUT_MS, RC_FIELD_WAIT_REQUEST_NAMESPACE),
    RC_COVER("rc_codec: Request decoder", refcache__v1__fetch_request__descriptor,
             RC_FIELD_FETCH_REQUEST_REF_ID, RC_FIELD_FETCH_REQUEST_OFFSET, RC_FIELD_FETCH_REQUEST_LENGTH,
             RC_FIELD_FETCH_REQUEST_NAMESPACE),
    RC_COVER("rc_codec: Request decoder", refcache__v1__cancel_request__descriptor,
             RC_FIELD_CANCEL_REQUEST_REF_ID, RC_FIELD_CANCEL_REQUEST_NAMESPACE),
    RC_COVER("rc_codec: Request decoder", refcache__v1__delete_request__descriptor,
             RC_FIELD_DELETE_REQUEST_REF_ID, RC_FIELD_DELETE_REQUEST_NAMESPACE),
    RC_COVER_NONE("rc_codec: Request decoder", refcache__v1__stats_request__descriptor),
    {0},
};
