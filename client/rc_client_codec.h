/* rc_client_codec: the client library's wire codec (internal; the public API
 * is refcache.h).
 *
 * Requests are written by hand with rc_wire's writers, byte for byte as
 * protobuf-c's pack would write them (test_client_codec compares the bytes):
 * measure first, so that the caller can size a ZeroMQ message exactly, then
 * write into it, with no allocation of its own.
 *
 * Replies in their common shape (a Submit's or a Status/Wait's answer, or a
 * reply without a body) are read straight into an refcache_reply_t; anything else
 * (another body, unknown, repeated or out-of-order fields, long varints, a
 * view protobuf-c's path would refuse) is declined and goes to protobuf-c's
 * unpack, which accepts or rejects it as it always has. Both paths give the
 * same view. */
#ifndef RC_CLIENT_CODEC_H
#define RC_CLIENT_CODEC_H

#include "refcache.h"

#include <protobuf-c/protobuf-c.h>

#include "rc_wire.h"

/* A Request{id, submit}. The caller fills the inputs (function not NULL, no
 * NULL key or value in options->params); rc_client_codec_submit_size fills
 * the rest. */
typedef struct {
    uint64_t id;
    const char *function;
    const refcache_submit_options_t *options;
    const char *ns;                           /* NULL or "": none */
    size_t function_len_, ns_len_, key_len_, body_len_; /* internal: measured */
} rc_client_codec_submit_t;

/* Measures the Request: returns its size in bytes. */
size_t rc_client_codec_submit_size(rc_client_codec_submit_t *s);

/* Writes the Request just measured into out (room for its size); returns
 * the end of what it wrote. */
uint8_t *rc_client_codec_submit_put(const rc_client_codec_submit_t *s, uint8_t *out);

/* Request.body field numbers of the requests rc_client_codec_ref writes. */
typedef enum {
    RC_CLIENT_CODEC_STATUS = RC_FIELD_REQUEST_STATUS,
    RC_CLIENT_CODEC_WAIT = RC_FIELD_REQUEST_WAIT,
    RC_CLIENT_CODEC_FETCH = RC_FIELD_REQUEST_FETCH,
    RC_CLIENT_CODEC_CANCEL = RC_FIELD_REQUEST_CANCEL,
    RC_CLIENT_CODEC_DELETE = RC_FIELD_REQUEST_DELETE,
    RC_CLIENT_CODEC_STATS = RC_FIELD_REQUEST_STATS
} rc_client_codec_body_t;

/* Every other Request: a body of ref_id, n_num numbers (Wait's timeout_ms;
 * Fetch's offset and length) and the namespace. Stats has none of them:
 * ref_id and ns NULL, n_num 0. */
typedef struct {
    uint64_t id;
    rc_client_codec_body_t body;
    const char *ref_id; /* NULL or "": none */
    uint64_t num[2];
    unsigned n_num;
    const char *ns;                      /* NULL or "": none */
    size_t ref_len_, ns_len_, body_len_; /* internal: measured */
} rc_client_codec_ref_t;

/* Measures the Request: returns its size in bytes. */
size_t rc_client_codec_ref_size(rc_client_codec_ref_t *r);

/* Writes the Request just measured into out; returns the end. */
uint8_t *rc_client_codec_ref_put(const rc_client_codec_ref_t *r, uint8_t *out);

/* Reads a Reply of the common shape into out: strings are copied into
 * memory from alloc (NUL-terminated, like protobuf-c's), bytes point into
 * data. 0, or -1 when it declines (out is then undefined): hand the bytes to
 * rc_client_codec_reply_pb. */
int rc_client_codec_reply_fast(const uint8_t *data, size_t len, ProtobufCAllocator *alloc,
                               refcache_reply_t *out);

/* Unpacks a Reply with protobuf-c (in memory from alloc) into out. 0, or
 * REFCACHE_EREPLY: not a Reply, or a body without what the view needs (out
 * then holds what was read, its id among it). */
int rc_client_codec_reply_pb(const uint8_t *data, size_t len, ProtobufCAllocator *alloc,
                             refcache_reply_t *out);

/* Request.batch and RequestBatch.requests, Reply.batch (field numbers). */
enum {
    RC_CLIENT_CODEC_REQUEST_BATCH = RC_FIELD_REQUEST_BATCH,
    RC_CLIENT_CODEC_BATCH_ENTRY = RC_FIELD_REQUEST_BATCH_REQUESTS,
    RC_CLIENT_CODEC_REPLY_BATCH = RC_FIELD_REPLY_BATCH
};

/* A Reply{batch} in the simple shape (only the batch field, and in it only
 * replies): true with its run of entries, each a Reply, from *run to *end
 * (read them with rc_wire_entry). False for anything else: a lone Reply. */
bool rc_client_codec_reply_batch(const uint8_t *data, size_t len, const uint8_t **run, const uint8_t **end);

/* The view of a TaskInfo protobuf-c unpacked (for List's pages): 0 or
 * REFCACHE_EREPLY. */
int rc_client_codec_task(refcache_task_view_t *t, const void *task_info);

/* The part of the protobuf-c reader for List, Workers, Event and Metrics
 * replies (rc_client_observe.c): sets out's kind, and its event or body_
 * (the unpacked body, in the reply's memory); REFCACHE_REPLY_NONE for a
 * reply without a body. 0 or REFCACHE_EREPLY. */
int rc_client_codec_reply_observe(refcache_reply_t *out, const void *reply);

/* The fast reader, and protobuf-c's where it declines. */
int rc_client_codec_reply(const uint8_t *data, size_t len, ProtobufCAllocator *alloc, refcache_reply_t *out);

/* What the codec writes and reads of each message, field by field, for
 * test_wire_drift (rc_wire.h); ended by a zeroed entry. */
extern const rc_wire_cover_t rc_client_codec_covers[];
extern const rc_wire_cover_t rc_client_observe_covers[];

#endif
