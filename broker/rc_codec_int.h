/* rc_codec_int: what the broker codec's three files share (not for the rest
 * of the broker): the arena a decoded message lives in, the copies the hand
 * readers make into it, and string lengths as protobuf-c measures them.
 *   rc_codec_request.c  client Requests in (and RequestBatches)
 *   rc_codec_reply.c    Replies out (and ReplyBatch entries)
 *   rc_codec_worker.c   the work and control channels: WorkerMessages and
 *                       ControlHello in, Dispatches and control messages out */
#ifndef RC_CODEC_INT_H
#define RC_CODEC_INT_H

#include <string.h>

#include "rc_arena.h"
#include "rc_codec.h"
#include "rc_wire.h"
#include "refcache.pb-c.h"

static inline rc_str_t str_of(const char *s)
{
    return (rc_str_t){s, s ? strlen(s) : 0};
}

/* Strings are sent up to their NUL, as protobuf-c measures them. */
static inline size_t len_of(const char *s)
{
    return s ? strlen(s) : 0;
}

/* A NUL-terminated copy of a string field in the arena, as protobuf-c
 * makes; NULL if out of memory. */
static inline char *fast_string(rc_arena_t *a, const rc_wire_field_t *f)
{
    if (!f->v)
        return (char *) protobuf_c_empty_string;
    char *s = rc_arena_alloc(a, (size_t) f->v + 1);
    if (s) {
        memcpy(s, f->ptr, (size_t) f->v);
        s[f->v] = 0;
    }
    return s;
}

/* A bytes field copied into the arena; false if out of memory. */
static inline bool fast_bytes(rc_arena_t *a, const rc_wire_field_t *f, ProtobufCBinaryData *out)
{
    out->len = (size_t) f->v;
    out->data = NULL;
    if (!f->v)
        return true;
    out->data = rc_arena_alloc(a, (size_t) f->v);
    if (!out->data)
        return false;
    memcpy(out->data, f->ptr, (size_t) f->v);
    return true;
}

/* m packed by protobuf-c into buf (replacing its contents): the rare
 * messages are not written by hand. 0 or -1 (out of memory). */
static inline int pack_into(rc_buf_t *buf, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (rc_buf_reserve(buf, n ? n : 1) != 0)
        return -1;
    buf->len = protobuf_c_message_pack(m, buf->data);
    return 0;
}

#endif
