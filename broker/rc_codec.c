#include "rc_codec.h"

#include <assert.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rc_wire.h"
#include "refcache.pb-c.h"

/* Arena memory is reused, so a view read after its release would go unseen
 * by ASan and memcheck: released arenas are poisoned for both. */
#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define RC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang */
#define RC_ASAN 1
#endif
#endif
#if defined(RC_ASAN)
#include <sanitizer/asan_interface.h>
#define ARENA_POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#elif defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define ARENA_POISON(p, n)   VALGRIND_MAKE_MEM_NOACCESS(p, n)
#define ARENA_UNPOISON(p, n) VALGRIND_MAKE_MEM_UNDEFINED(p, n)
#endif
#endif
#ifndef ARENA_POISON
#define ARENA_POISON(p, n)   ((void) (p), (void) (n))
#define ARENA_UNPOISON(p, n) ((void) (p), (void) (n))
#endif

int rc_buf_reserve(rc_buf_t *buf, size_t n)
{
    if (n <= buf->cap)
        return 0;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < n)
        cap *= 2;
    uint8_t *data = realloc(buf->data, cap);
    if (!data)
        return -1;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

void rc_buf_free(rc_buf_t *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

static rc_str_t str_of(const char *s)
{
    return (rc_str_t){s, s ? strlen(s) : 0};
}

/* ---------------------------------------------------------------- arenas */

/* protobuf-c's unpack allocates every submessage, string and bytes field
 * apart; an arena makes that a pointer bump, and its release one store. The
 * static arenas are taken with an atomic flag, so that the broker, the tests
 * and the fuzzer may decode from any thread and keep several messages alive
 * at once; when every one is taken, a heap arena with no buffer of its own
 * (every allocation is a block) stands in. */
#define ARENA_BYTES 16384
#define ARENA_SLOTS 8
#define ARENA_ALIGN alignof(max_align_t)

/* An allocation that did not fit in the arena: malloc'd with this header in
 * front, on the arena's list so that the release frees it. */
typedef union rc_block {
    struct {
        union rc_block *prev, *next;
    } l;
    max_align_t align_;
} rc_block_t;

typedef struct {
    ProtobufCAllocator pa;
    uint8_t *buf;
    size_t cap, used;
    rc_block_t *blocks;
    bool heap;        /* a stand-in, freed at the release */
    atomic_bool busy; /* static arenas: taken */
} rc_arena_t;

static alignas(ARENA_ALIGN) uint8_t arena_mem[ARENA_SLOTS][ARENA_BYTES];
static rc_arena_t arenas[ARENA_SLOTS];
static atomic_size_t arenas_live;

static void *arena_alloc(void *data, size_t size)
{
    rc_arena_t *a = data;
    size_t n = (size + ARENA_ALIGN - 1) & ~(size_t) (ARENA_ALIGN - 1);
    if (size && n >= size && n <= a->cap - a->used) {
        void *p = a->buf + a->used;
        a->used += n;
        return p;
    }
    if (size > SIZE_MAX - sizeof(rc_block_t))
        return NULL;
    rc_block_t *b = malloc(sizeof *b + size);
    if (!b)
        return NULL;
    b->l.prev = NULL;
    b->l.next = a->blocks;
    if (a->blocks)
        a->blocks->l.prev = b;
    a->blocks = b;
    return b + 1;
}

/* protobuf-c frees what it allocated only when an unpack fails half-way (and
 * its scratch space for messages of many fields): arena memory is left for
 * the release, a block is freed now. */
static void arena_free(void *data, void *p)
{
    rc_arena_t *a = data;
    uintptr_t u = (uintptr_t) p;
    if (!p || (u >= (uintptr_t) a->buf && u < (uintptr_t) a->buf + a->cap))
        return;
    rc_block_t *b = (rc_block_t *) p - 1;
    if (b->l.prev)
        b->l.prev->l.next = b->l.next;
    else
        a->blocks = b->l.next;
    if (b->l.next)
        b->l.next->l.prev = b->l.prev;
    free(b);
}

static rc_arena_t *arena_acquire(void)
{
    rc_arena_t *a = NULL;
    for (size_t i = 0; i < ARENA_SLOTS; i++) {
        if (!atomic_load_explicit(&arenas[i].busy, memory_order_relaxed) &&
            !atomic_exchange_explicit(&arenas[i].busy, true, memory_order_acquire)) {
            a = &arenas[i];
            a->buf = arena_mem[i];
            a->cap = ARENA_BYTES;
            a->heap = false;
            break;
        }
    }
    if (!a) {
        a = malloc(sizeof *a);
        if (!a)
            return NULL;
        a->buf = NULL;
        a->cap = 0;
        a->heap = true;
    }
    a->used = 0;
    a->blocks = NULL;
    a->pa.alloc = arena_alloc;
    a->pa.free = arena_free;
    a->pa.allocator_data = a;
    ARENA_UNPOISON(a->buf, a->cap);
    atomic_fetch_add_explicit(&arenas_live, 1, memory_order_relaxed);
    return a;
}

static void arena_release(rc_arena_t *a)
{
    if (!a)
        return;
    for (rc_block_t *b = a->blocks, *next; b; b = next) {
        next = b->l.next;
        free(b);
    }
    atomic_fetch_sub_explicit(&arenas_live, 1, memory_order_relaxed);
    if (a->heap) {
        free(a);
        return;
    }
    ARENA_POISON(a->buf, a->used);
    atomic_store_explicit(&a->busy, false, memory_order_release);
}

size_t rc_codec_live_messages(void)
{
    return atomic_load_explicit(&arenas_live, memory_order_relaxed);
}

/* Forgets what a failed fast path allocated, keeping the arena. */
static void arena_reset(rc_arena_t *a)
{
    for (rc_block_t *b = a->blocks, *next; b; b = next) {
        next = b->l.next;
        free(b);
    }
    a->blocks = NULL;
    a->used = 0;
}

/* ---------------------------------------------------------------- fast decode */

/* The hot messages (a Submit, a worker's Result or Started) are read by
 * rc_wire_scan into the same protobuf-c structs protobuf-c's unpack would
 * make, in the arena; what it declines goes to protobuf-c as before. */

/* A NUL-terminated copy of a string field in the arena, as protobuf-c makes. */
static char *fast_string(rc_arena_t *a, const rc_wire_field_t *f)
{
    if (!f->v)
        return (char *) protobuf_c_empty_string;
    char *s = arena_alloc(a, (size_t) f->v + 1);
    if (s) {
        memcpy(s, f->ptr, (size_t) f->v);
        s[f->v] = 0;
    }
    return s;
}

static bool fast_bytes(rc_arena_t *a, const rc_wire_field_t *f, ProtobufCBinaryData *out)
{
    out->len = (size_t) f->v;
    out->data = NULL;
    if (!f->v)
        return true;
    out->data = arena_alloc(a, (size_t) f->v);
    if (!out->data)
        return false;
    memcpy(out->data, f->ptr, (size_t) f->v);
    return true;
}

static const uint8_t request_kinds[] = {RC_F_NONE, RC_F_U64, RC_F_LEN};
static const uint8_t submit_kinds[] = {RC_F_NONE, RC_F_LEN, RC_F_LEN, RC_F_LEN, RC_F_U32,
                                       RC_F_U32,  RC_F_U32, RC_F_U32, RC_F_LEN, RC_F_BOOL};
static const uint8_t entry_kinds[] = {RC_F_NONE, RC_F_LEN, RC_F_LEN};

/* A Request{id, submit} in the simple shape, or NULL. */
static Refcache__V1__Request *fast_request(rc_arena_t *a, const uint8_t *data, size_t len)
{
    static const Refcache__V1__Request request_init = REFCACHE__V1__REQUEST__INIT;
    static const Refcache__V1__SubmitRequest submit_init = REFCACHE__V1__SUBMIT_REQUEST__INIT;
    static const Refcache__V1__SubmitRequest__ParamsEntry entry_init =
        REFCACHE__V1__SUBMIT_REQUEST__PARAMS_ENTRY__INIT;
    rc_wire_field_t top[3], f[10], e[3];
    if (!rc_wire_scan(data, data + len, request_kinds, 2, 0, top) || !top[2].ptr ||
        !rc_wire_scan(top[2].ptr, top[2].ptr + top[2].v, submit_kinds, 9, 2, f))
        return NULL;
    Refcache__V1__Request *pb = arena_alloc(a, sizeof *pb);
    Refcache__V1__SubmitRequest *s = arena_alloc(a, sizeof *s);
    if (!pb || !s)
        return NULL;
    *pb = request_init;
    *s = submit_init;
    pb->id = top[1].v;
    pb->body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
    pb->submit = s;
    s->function = fast_string(a, &f[1]);
    s->namespace_ = fast_string(a, &f[8]);
    if (!s->function || !s->namespace_ || !fast_bytes(a, &f[3], &s->payload))
        return NULL;
    s->async_timeout_ms = (uint32_t) f[4].v;
    s->deadline_ms = (uint32_t) f[5].v;
    s->max_retries = (uint32_t) f[6].v;
    s->ttl_s = (uint32_t) f[7].v;
    s->no_cache = f[9].v != 0;
    if (f[2].v) {
        size_t n = (size_t) f[2].v;
        s->params = arena_alloc(a, n * sizeof *s->params);
        Refcache__V1__SubmitRequest__ParamsEntry *entries = arena_alloc(a, n * sizeof *entries);
        if (!s->params || !entries)
            return NULL;
        /* The run of params was scanned whole: each is a key 0x12 and a
         * length that fits. */
        const uint8_t *p = f[2].ptr, *ent;
        for (size_t i = 0; i < n; i++) {
            size_t elen;
            if (!rc_wire_entry(&p, f[2].end, &ent, &elen) || !rc_wire_scan(ent, ent + elen, entry_kinds, 2, 0, e))
                return NULL;
            entries[i] = entry_init;
            entries[i].key = fast_string(a, &e[1]);
            entries[i].value = fast_string(a, &e[2]);
            if (!entries[i].key || !entries[i].value)
                return NULL;
            s->params[i] = &entries[i];
        }
        s->n_params = n;
    }
    return pb;
}

static const uint8_t wmsg_kinds[] = {RC_F_NONE, RC_F_NONE, RC_F_LEN,  RC_F_NONE, RC_F_LEN,
                                     RC_F_NONE, RC_F_NONE, RC_F_NONE, RC_F_LEN};
static const uint8_t batch_kinds[] = {RC_F_NONE, RC_F_LEN};
static const uint8_t result_kinds[] = {RC_F_NONE, RC_F_LEN, RC_F_U32, RC_F_LEN};

/* A Result body (fields ref_id, attempt, data) in the simple shape, or NULL. */
static Refcache__V1__Result *fast_result(rc_arena_t *a, const uint8_t *p, const uint8_t *end)
{
    static const Refcache__V1__Result result_init = REFCACHE__V1__RESULT__INIT;
    rc_wire_field_t f[4];
    if (!rc_wire_scan(p, end, result_kinds, 3, 0, f))
        return NULL;
    Refcache__V1__Result *r = arena_alloc(a, sizeof *r);
    if (!r)
        return NULL;
    *r = result_init;
    r->ref_id = fast_string(a, &f[1]);
    r->attempt = (uint32_t) f[2].v;
    if (!r->ref_id || !fast_bytes(a, &f[3], &r->data))
        return NULL;
    return r;
}

/* A ResultBatch body of one or more Results in the simple shape, or NULL. */
static Refcache__V1__ResultBatch *fast_results(rc_arena_t *a, const uint8_t *p, const uint8_t *end)
{
    static const Refcache__V1__ResultBatch batch_init = REFCACHE__V1__RESULT_BATCH__INIT;
    rc_wire_field_t f[2];
    if (!rc_wire_scan(p, end, batch_kinds, 1, 1, f) || !f[1].v)
        return NULL;
    Refcache__V1__ResultBatch *b = arena_alloc(a, sizeof *b);
    if (!b)
        return NULL;
    *b = batch_init;
    b->results = arena_alloc(a, (size_t) f[1].v * sizeof *b->results);
    if (!b->results)
        return NULL;
    /* The scan checked the run: each entry is key 0x0a, a length, the bytes. */
    const uint8_t *q = f[1].ptr, *r;
    for (b->n_results = 0; b->n_results < f[1].v; b->n_results++) {
        size_t n;
        if (!rc_wire_entry(&q, f[1].end, &r, &n) || !(b->results[b->n_results] = fast_result(a, r, r + n)))
            return NULL;
    }
    return b;
}

/* A WorkerMessage{result}, {results} or {started} in the simple shape, or
 * NULL. */
static Refcache__V1__WorkerMessage *fast_wmsg(rc_arena_t *a, const uint8_t *data, size_t len)
{
    static const Refcache__V1__WorkerMessage wmsg_init = REFCACHE__V1__WORKER_MESSAGE__INIT;
    static const Refcache__V1__Started started_init = REFCACHE__V1__STARTED__INIT;
    rc_wire_field_t top[9], f[3];
    if (!rc_wire_scan(data, data + len, wmsg_kinds, 8, 0, top) ||
        !!top[2].ptr + !!top[4].ptr + !!top[8].ptr != 1)
        return NULL;
    Refcache__V1__WorkerMessage *pb = arena_alloc(a, sizeof *pb);
    if (!pb)
        return NULL;
    *pb = wmsg_init;
    if (top[4].ptr) {
        pb->body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT;
        pb->result = fast_result(a, top[4].ptr, top[4].ptr + top[4].v);
        return pb->result ? pb : NULL;
    }
    if (top[8].ptr) {
        pb->body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULTS;
        pb->results = fast_results(a, top[8].ptr, top[8].ptr + top[8].v);
        return pb->results ? pb : NULL;
    }
    if (!rc_wire_scan(top[2].ptr, top[2].ptr + top[2].v, result_kinds, 2, 0, f))
        return NULL;
    Refcache__V1__Started *st = arena_alloc(a, sizeof *st);
    if (!st)
        return NULL;
    *st = started_init;
    st->ref_id = fast_string(a, &f[1]);
    st->attempt = (uint32_t) f[2].v;
    if (!st->ref_id)
        return NULL;
    pb->body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED;
    pb->started = st;
    return pb;
}

/* A Request{batch} in the simple shape (an id at most beside it, and the
 * entries of the RequestBatch one after the other): the run of entries in
 * req, or false. */
static bool fast_batch(const uint8_t *data, size_t len, rc_request_t *req)
{
    static const uint8_t top_kinds[] = {RC_F_NONE, RC_F_U64, RC_F_NONE, RC_F_NONE, RC_F_NONE, RC_F_NONE,
                                        RC_F_NONE, RC_F_NONE, RC_F_NONE, RC_F_LEN};
    rc_wire_field_t top[10], f[2];
    if (!rc_wire_scan(data, data + len, top_kinds, 9, 0, top) || !top[9].ptr ||
        !rc_wire_scan(top[9].ptr, top[9].ptr + top[9].v, batch_kinds, 1, 1, f))
        return false;
    req->id = top[1].v;
    req->kind = RC_REQ_BATCH;
    req->run_ = f[1].ptr;
    req->run_end_ = f[1].end;
    req->n_entries = (size_t) f[1].v;
    return true;
}

/* The batch of a Request that protobuf-c unpacked. protobuf merges the
 * occurrences of a message field, but protobuf-c keeps only the last one
 * of a oneof member: the batch is rebuilt from every occurrence of the
 * field after the last other body field (which would have replaced it),
 * each unpacked into the arena. NULL if out of memory. */
static Refcache__V1__RequestBatch *merged_batch(rc_arena_t *a, const uint8_t *data, size_t len)
{
    enum { BATCH = 9 };
    const uint8_t *p = data, *end = data + len, *from = data;
    rc_wire_field_t f;
    uint32_t field;
    size_t parts = 0;
    while (p < end && rc_wire_field(&p, end, &field, &f)) {
        if (field >= 2 && field < BATCH) {
            from = p;
            parts = 0;
        }
        parts += field == BATCH;
    }
    Refcache__V1__RequestBatch **part = arena_alloc(a, (parts ? parts : 1) * sizeof *part);
    Refcache__V1__RequestBatch *b = arena_alloc(a, sizeof *b);
    if (!part || !b)
        return NULL;
    size_t n = 0, total = 0;
    for (p = from; p < end && rc_wire_field(&p, end, &field, &f);)
        if (field == BATCH) {
            if (!(part[n] = refcache__v1__request_batch__unpack(&a->pa, (size_t) f.v, f.ptr)))
                return NULL;
            total += part[n++]->n_requests;
        }
    static const Refcache__V1__RequestBatch batch_init = REFCACHE__V1__REQUEST_BATCH__INIT;
    *b = batch_init;
    b->requests = arena_alloc(a, (total ? total : 1) * sizeof *b->requests);
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
    rc_arena_t *a = arena_acquire();
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
        arena_reset(a);
        pb = refcache__v1__request__unpack(&a->pa, len, data);
    }
    if (!pb) {
        arena_release(a);
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
    arena_release(req->arena_);
    req->arena_ = NULL;
    req->pb_ = NULL;
}

/* ---------------------------------------------------------------- wire format */

/* The hot messages are encoded by hand with rc_wire's writers (the tests
 * compare the bytes with protobuf-c's); strings are sent up to their NUL,
 * as protobuf-c measures them. */
static inline size_t len_of(const char *s)
{
    return s ? strlen(s) : 0;
}

/* ---------------------------------------------------------------- dispatch */

/* The attempt is the last field of the Dispatch and always takes one byte
 * (max_retries is capped so attempts stay below 128): a field that appears
 * later in a protobuf encoding wins, and the tag byte 0x10 is field 2,
 * varint. */
#define ATTEMPT_TAIL 2

/* Dispatch.params is a map<string, string>: each entry a submessage
 * {key = 1, value = 2}. */
static size_t param_size(const Refcache__V1__SubmitRequest__ParamsEntry *e)
{
    return rc_wire_sz_bytes(1, len_of(e->key)) + rc_wire_sz_bytes(2, len_of(e->value));
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
    size_t total = rc_wire_sz_msg(1, inner);
    uint8_t *out = total <= room_len ? room : malloc(total);
    if (!out)
        return -1;
    uint8_t *p = rc_wire_put_msg(out, 1, inner);
    p += refcache__v1__dispatch__pack(&d, p);
    *p++ = RC_WIRE_KEY(2, RC_WT_VARINT);
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
    size_t inner = rc_wire_sz_bytes(1, ref_len) + rc_wire_sz_bytes(3, fn_len) +
                   rc_wire_sz_bytes(5, s->payload.len) + ATTEMPT_TAIL;
    for (size_t i = 0; i < s->n_params; i++) {
        /* protobuf-c keeps the unknown fields of a decoded params entry and
         * packs them again: such a rare submit keeps being forwarded as it
         * always was. */
        if (s->params[i]->base.n_unknown_fields)
            return dispatch_spec_pb(s, ref_hex, room, room_len, spec, len);
        inner += rc_wire_sz_msg(4, param_size(s->params[i]));
    }
    size_t total = rc_wire_sz_msg(1, inner);
    uint8_t *out = total <= room_len ? room : malloc(total);
    if (!out)
        return -1;
    uint8_t *p = rc_wire_put_msg(out, 1, inner); /* BrokerMessage.dispatch */
    p = rc_wire_put_bytes(p, 1, ref_hex, ref_len);
    p = rc_wire_put_bytes(p, 3, s->function, fn_len);
    for (size_t i = 0; i < s->n_params; i++) {
        const Refcache__V1__SubmitRequest__ParamsEntry *e = s->params[i];
        p = rc_wire_put_msg(p, 4, param_size(e));
        p = rc_wire_put_bytes(p, 1, e->key, len_of(e->key));
        p = rc_wire_put_bytes(p, 2, e->value, len_of(e->value));
    }
    p = rc_wire_put_bytes(p, 5, s->payload.data, s->payload.len);
    *p++ = RC_WIRE_KEY(2, RC_WT_VARINT);
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

int rc_codec_batch_entry(rc_buf_t *buf, const uint8_t *reply, size_t len)
{
    /* ReplyBatch.replies is field 1. */
    if (rc_buf_reserve(buf, buf->len + 1 + rc_wire_vsize(len) + len) != 0)
        return -1;
    uint8_t *p = rc_wire_put_msg(buf->data + buf->len, 1, len);
    memcpy(p, reply, len);
    buf->len = (size_t) (p + len - buf->data);
    return 0;
}

/* ---------------------------------------------------------------- replies */

/* TaskInfo, measured once (with its strings) and then written. */
typedef struct {
    size_t ref, error, function, ns, total;
} task_size_t;

static void task_measure(const rc_taskview_t *v, task_size_t *z)
{
    z->ref = len_of(v->ref_hex);
    z->error = len_of(v->error);
    z->function = len_of(v->function);
    z->ns = len_of(v->ns);
    z->total = rc_wire_sz_bytes(1, z->ref) + rc_wire_sz_enum(2, v->state) +
               rc_wire_sz_bytes(3, v->result.len) + rc_wire_sz_varint(4, v->result_size) +
               rc_wire_sz_bool(5, v->result_truncated) + rc_wire_sz_varint(6, v->progress_done) +
               rc_wire_sz_varint(7, v->progress_total) + rc_wire_sz_varint(8, v->attempt) +
               rc_wire_sz_enum(9, v->error_code) + rc_wire_sz_bytes(10, z->error) +
               rc_wire_sz_bytes(11, z->function) + rc_wire_sz_varint(12, v->created_at_us) +
               rc_wire_sz_varint(13, v->started_at_us) + rc_wire_sz_varint(14, v->finished_at_us) +
               rc_wire_sz_varint(15, v->stopped_at_us) + rc_wire_sz_varint(16, v->max_retries) +
               rc_wire_sz_bytes(17, z->ns) + rc_wire_sz_varint(18, v->expires_at_us) +
               rc_wire_sz_bool(19, v->ever_started);
}

static uint8_t *task_put(uint8_t *p, const rc_taskview_t *v, const task_size_t *z)
{
    p = rc_wire_put_bytes(p, 1, v->ref_hex, z->ref);
    p = rc_wire_put_enum(p, 2, v->state);
    p = rc_wire_put_bytes(p, 3, v->result.ptr, v->result.len);
    p = rc_wire_put_varint(p, 4, v->result_size);
    p = rc_wire_put_bool(p, 5, v->result_truncated);
    p = rc_wire_put_varint(p, 6, v->progress_done);
    p = rc_wire_put_varint(p, 7, v->progress_total);
    p = rc_wire_put_varint(p, 8, v->attempt);
    p = rc_wire_put_enum(p, 9, v->error_code);
    p = rc_wire_put_bytes(p, 10, v->error, z->error);
    p = rc_wire_put_bytes(p, 11, v->function, z->function);
    p = rc_wire_put_varint(p, 12, v->created_at_us);
    p = rc_wire_put_varint(p, 13, v->started_at_us);
    p = rc_wire_put_varint(p, 14, v->finished_at_us);
    p = rc_wire_put_varint(p, 15, v->stopped_at_us);
    p = rc_wire_put_varint(p, 16, v->max_retries);
    p = rc_wire_put_bytes(p, 17, v->ns, z->ns);
    p = rc_wire_put_varint(p, 18, v->expires_at_us);
    p = rc_wire_put_bool(p, 19, v->ever_started);
    return p;
}

/* A StatsReply is rare and wide: protobuf-c packs it. */
static int reply_stats(rc_buf_t *buf, const rc_reply_t *r)
{
    Refcache__V1__Reply reply = REFCACHE__V1__REPLY__INIT;
    Refcache__V1__StatsReply stats = REFCACHE__V1__STATS_REPLY__INIT;
    reply.id = r->id;
    reply.code = (Refcache__V1__Code) r->code;
    reply.message = (char *) (r->message ? r->message : "");
#define RC_STATS_COPY(name) stats.name = r->stats->name;
    RC_STATS_FIELDS(RC_STATS_COPY)
#undef RC_STATS_COPY
    stats.version = (char *) (r->stats->version ? r->stats->version : "");
    reply.body_case = REFCACHE__V1__REPLY__BODY_STATS;
    reply.stats = &stats;
    size_t n = refcache__v1__reply__get_packed_size(&reply);
    if (rc_buf_reserve(buf, n) != 0)
        return -1;
    buf->len = refcache__v1__reply__pack(&reply, buf->data);
    return 0;
}

/* Reply.body field numbers. */
enum { BODY_SUBMIT = 4, BODY_TASK = 5, BODY_FETCH = 6, BODY_CANCEL = 7, BODY_DELETE = 8 };

int rc_codec_reply(rc_buf_t *buf, const rc_reply_t *r)
{
    if (r->kind == RC_REPLY_STATS && r->stats)
        return reply_stats(buf, r);
    if (r->kind == RC_REPLY_LIST || r->kind == RC_REPLY_WORKERS || r->kind == RC_REPLY_METRICS)
        return rc_codec_reply_observe(buf, r);

    task_size_t tz = {0};
    uint32_t body_field = 0; /* none */
    size_t body = 0;
    switch (r->kind) {
    case RC_REPLY_SUBMIT:
        body_field = BODY_SUBMIT;
        if (r->task) {
            task_measure(r->task, &tz);
            body += rc_wire_sz_msg(1, tz.total);
        }
        body += rc_wire_sz_bool(2, r->cache_hit) + rc_wire_sz_bool(3, r->deduplicated);
        break;
    case RC_REPLY_TASK:
        if (!r->task)
            break;
        body_field = BODY_TASK;
        task_measure(r->task, &tz);
        body = tz.total;
        break;
    case RC_REPLY_FETCH:
        body_field = BODY_FETCH;
        body = rc_wire_sz_bytes(1, r->data.len) + rc_wire_sz_varint(2, r->total_size) +
               rc_wire_sz_varint(3, r->offset);
        break;
    case RC_REPLY_CANCEL:
        body_field = BODY_CANCEL;
        body = rc_wire_sz_bool(1, r->flag) + rc_wire_sz_enum(2, r->state);
        break;
    case RC_REPLY_DELETE:
        body_field = BODY_DELETE;
        body = rc_wire_sz_bool(1, r->flag);
        break;
    case RC_REPLY_STATS: /* without stats: no body */
    case RC_REPLY_NONE:
    case RC_REPLY_LIST: /* rc_codec_reply_observe */
    case RC_REPLY_WORKERS:
    case RC_REPLY_METRICS:
        break;
    }
    size_t message_len = len_of(r->message);
    size_t n = rc_wire_sz_varint(1, r->id) + rc_wire_sz_enum(2, r->code) + rc_wire_sz_bytes(3, message_len) +
               (body_field ? rc_wire_sz_msg(body_field, body) : 0);
    if (rc_buf_reserve(buf, n ? n : 1) != 0)
        return -1;

    uint8_t *p = buf->data;
    p = rc_wire_put_varint(p, 1, r->id);
    p = rc_wire_put_enum(p, 2, r->code);
    p = rc_wire_put_bytes(p, 3, r->message, message_len);
    if (body_field)
        p = rc_wire_put_msg(p, body_field, body);
    switch (body_field) {
    case BODY_SUBMIT:
        if (r->task) {
            p = rc_wire_put_msg(p, 1, tz.total);
            p = task_put(p, r->task, &tz);
        }
        p = rc_wire_put_bool(p, 2, r->cache_hit);
        p = rc_wire_put_bool(p, 3, r->deduplicated);
        break;
    case BODY_TASK:
        p = task_put(p, r->task, &tz);
        break;
    case BODY_FETCH:
        p = rc_wire_put_bytes(p, 1, r->data.ptr, r->data.len);
        p = rc_wire_put_varint(p, 2, r->total_size);
        p = rc_wire_put_varint(p, 3, r->offset);
        break;
    case BODY_CANCEL:
        p = rc_wire_put_bool(p, 1, r->flag);
        p = rc_wire_put_enum(p, 2, r->state);
        break;
    case BODY_DELETE:
        p = rc_wire_put_bool(p, 1, r->flag);
        break;
    }
    buf->len = (size_t) (p - buf->data);
    assert(buf->len == n);
    return 0;
}

/* ---------------------------------------------------------------- workers */

int rc_codec_wmsg(const uint8_t *data, size_t len, rc_wmsg_t *msg, const char **why)
{
    memset(msg, 0, sizeof *msg);
    rc_arena_t *a = arena_acquire();
    if (!a) {
        *why = "out of memory decoding a WorkerMessage";
        return -1;
    }
    Refcache__V1__WorkerMessage *pb = fast_wmsg(a, data, len);
    if (!pb) {
        arena_reset(a);
        pb = refcache__v1__worker_message__unpack(&a->pa, len, data);
    }
    if (!pb) {
        arena_release(a);
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
        msg->host = str_of(pb->ready->host);
        msg->pid = pb->ready->pid;
        msg->n_functions = pb->ready->n_functions;
        msg->n_cacheable = pb->ready->n_cacheable;
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
    arena_release(msg->arena_);
    msg->arena_ = NULL;
    msg->pb_ = NULL;
}

int rc_codec_control_hello(const uint8_t *data, size_t len)
{
    rc_arena_t *a = arena_acquire();
    if (!a)
        return -1;
    Refcache__V1__ControlHello *pb = refcache__v1__control_hello__unpack(&a->pa, len, data);
    arena_release(a);
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
    size_t n = refcache__v1__control_message__get_packed_size(&m);
    if (rc_buf_reserve(buf, n) != 0)
        return -1;
    buf->len = refcache__v1__control_message__pack(&m, buf->data);
    return 0;
}

static int broker_msg(rc_buf_t *buf, Refcache__V1__BrokerMessage *m)
{
    size_t n = refcache__v1__broker_message__get_packed_size(m);
    if (rc_buf_reserve(buf, n) != 0)
        return -1;
    buf->len = refcache__v1__broker_message__pack(m, buf->data);
    return 0;
}

int rc_codec_broker_heartbeat(rc_buf_t *buf)
{
    Refcache__V1__BrokerMessage m = REFCACHE__V1__BROKER_MESSAGE__INIT;
    Refcache__V1__Heartbeat hb = REFCACHE__V1__HEARTBEAT__INIT;
    m.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_HEARTBEAT;
    m.heartbeat = &hb;
    return broker_msg(buf, &m);
}

int rc_codec_broker_reannounce(rc_buf_t *buf)
{
    Refcache__V1__BrokerMessage m = REFCACHE__V1__BROKER_MESSAGE__INIT;
    Refcache__V1__Reannounce ra = REFCACHE__V1__REANNOUNCE__INIT;
    m.body_case = REFCACHE__V1__BROKER_MESSAGE__BODY_REANNOUNCE;
    m.reannounce = &ra;
    return broker_msg(buf, &m);
}
