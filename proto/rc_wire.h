/* rc_wire: the protobuf wire format, read and written by hand for the hot
 * messages (the broker's, the worker's and the client's codecs), where
 * protobuf-c's generic pack and unpack cost more than the rest of a
 * message's handling.
 *
 * Reading: a hot message nearly always comes in one simple shape: each field
 * at most once, in field-number order, with keys of one or two bytes (fields
 * up to 2047) written canonically, short varints and only known fields.
 * rc_wire_scan reads that shape and declines anything else, which the caller
 * then hands to protobuf-c (which decodes or rejects it, with its reason).
 * So a fast path never has to get an unusual encoding right; it only has to
 * decline it.
 *
 * Writing: as protobuf-c's pack would (the codecs' tests compare the bytes):
 * fields in field-number order; a number, bool, enum, string or bytes field
 * equal to its default (0, false, "") is left out, as proto3 wants; a
 * submessage is written when present, even empty; an enum is an int32, so a
 * negative one takes ten bytes. Sizes are computed first, so each length
 * prefix is known when it is written. */
#ifndef RC_WIRE_H
#define RC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Field numbers, keys and kinds: RC_FIELD_<MESSAGE>_<FIELD> and the rest,
 * generated from refcache.proto at build time (proto/rc_fieldgen.c). A codec
 * names every field through them and never types a number. */
#include "rc_fields.h"

/* The kinds of field rc_wire_scan accepts (RC_KIND_<MESSAGE>_<FIELD> gives
 * each field's). A kinds[] table for it lists a message's fields by number,
 * [RC_FIELD_M_F] = RC_KIND_M_F; those left out are RC_F_NONE, declined. */
enum { RC_F_NONE, RC_F_LEN, RC_F_U32, RC_F_U64, RC_F_BOOL };
#define RC_SCAN(M, F) [RC_FIELD_##M##_##F] = RC_KIND_##M##_##F
/* The highest field number such a table reads: rc_wire_scan's n. */
#define RC_SCAN_N(kinds) ((unsigned) (sizeof(kinds) - 1))

/* What a hand codec covers of one message, for the test that keeps the
 * codecs in step with refcache.proto (test_wire_drift): the fields the codec
 * reads or writes, and those it knowingly leaves to someone else or out
 * (say why beside them). The test fails for any field of the message in
 * neither list, so a field added to the .proto fails it until each codec
 * that handles the message has been taught the field. A handled field of
 * message type needs a cover of its own message from the same codec. */
struct ProtobufCMessageDescriptor;
typedef struct {
    const char *codec; /* "rc_codec: Reply encoder" */
    const char *file;  /* where the codec is */
    const struct ProtobufCMessageDescriptor *message;
    const uint32_t *fields;   /* handled: RC_FIELD_* numbers, 0-terminated */
    const char *const *names; /* or handled, by name (from an X-macro list), NULL-terminated */
    const uint32_t *left_out; /* knowingly not handled, 0-terminated; may be NULL */
} rc_wire_cover_t;
#define RC_FIELDS(...) ((const uint32_t[]){__VA_ARGS__, 0})
#define RC_COVER(codec_, desc, ...)                                                                          \
    {.codec = codec_, .file = __FILE__, .message = &desc, .fields = RC_FIELDS(__VA_ARGS__)}
#define RC_COVER_NONE(codec_, desc) {.codec = codec_, .file = __FILE__, .message = &desc, .fields = RC_FIELDS(0)}

typedef struct {
    const uint8_t *ptr; /* LEN: the bytes; a repeated field: its first key */
    uint64_t v;         /* LEN: the length; numbers: the value; repeated: the count */
    const uint8_t *end; /* a repeated field: the end of its run */
} rc_wire_field_t;

/* A varint of at most max bytes (protobuf-c takes the low 64 bits of up to
 * ten), or false. */
static inline bool rc_wire_varint(const uint8_t **pp, const uint8_t *end, size_t max, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t r = 0;
    for (size_t i = 0; i < max && p < end; i++) {
        uint8_t b = *p++;
        r |= (uint64_t) (b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *pp = p;
            *v = r;
            return true;
        }
    }
    return false;
}

/* Reads a message body whose fields are among 1..n with the kinds in
 * kinds[1..n], each at most once and in increasing order, except the field
 * `repeated` (0: none), which may come several times in a row. fields[] is
 * zeroed first; an absent field keeps v = 0. */
bool rc_wire_scan(const uint8_t *p, const uint8_t *end, const uint8_t *kinds, unsigned n, unsigned repeated,
                  rc_wire_field_t *fields);

/* The next entry of the run of a repeated length-delimited field that
 * rc_wire_scan checked (from its ptr to its end; the field is below 16, so
 * each entry is a key byte, a length and the bytes): its bytes in *data and
 * *len, and *p moved past it. False at the end of the run (or when *p is
 * NULL: no run). */
static inline bool rc_wire_entry(const uint8_t **p, const uint8_t *end, const uint8_t **data, size_t *len)
{
    if (!*p || *p >= end)
        return false;
    const uint8_t *q = *p + 1;
    uint64_t n;
    if (!rc_wire_varint(&q, end, 5, &n) || n > (uint64_t) (end - q))
        return false;
    *data = q;
    *len = (size_t) n;
    *p = q + n;
    return true;
}

/* Reads any one field (number in *field; a length-delimited one's bytes in
 * f->ptr and f->v, a varint's value in f->v) and moves *p past it: for the
 * rare walks over a message rc_wire_scan declined. False if malformed. */
bool rc_wire_field(const uint8_t **p, const uint8_t *end, uint32_t *field, rc_wire_field_t *f);

enum { RC_WT_VARINT = 0, RC_WT_LEN = 2 };

#define RC_WIRE_KEY(field, wt) (((uint32_t) (field) << 3) | (wt))

static inline size_t rc_wire_vsize(uint64_t v)
{
    /* 1 + floor(log2(v)) / 7, without a loop. */
    return (size_t) ((63 - __builtin_clzll(v | 1)) * 9 + 73) / 64;
}

static inline uint8_t *rc_wire_vput(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t) (v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t) v;
    return p;
}

static inline size_t rc_wire_sz_varint(uint32_t field, uint64_t v)
{
    return v ? rc_wire_vsize(RC_WIRE_KEY(field, RC_WT_VARINT)) + rc_wire_vsize(v) : 0;
}

static inline size_t rc_wire_sz_enum(uint32_t field, int32_t v)
{
    return v ? rc_wire_vsize(RC_WIRE_KEY(field, RC_WT_VARINT)) + rc_wire_vsize((uint64_t) (int64_t) v) : 0;
}

static inline size_t rc_wire_sz_bool(uint32_t field, bool v)
{
    return v ? rc_wire_vsize(RC_WIRE_KEY(field, RC_WT_VARINT)) + 1 : 0;
}

static inline size_t rc_wire_sz_bytes(uint32_t field, size_t n)
{
    return n ? rc_wire_vsize(RC_WIRE_KEY(field, RC_WT_LEN)) + rc_wire_vsize(n) + n : 0;
}

static inline size_t rc_wire_sz_msg(uint32_t field, size_t n)
{
    return rc_wire_vsize(RC_WIRE_KEY(field, RC_WT_LEN)) + rc_wire_vsize(n) + n;
}

static inline uint8_t *rc_wire_put_varint(uint8_t *p, uint32_t field, uint64_t v)
{
    if (!v)
        return p;
    p = rc_wire_vput(p, RC_WIRE_KEY(field, RC_WT_VARINT));
    return rc_wire_vput(p, v);
}

static inline uint8_t *rc_wire_put_enum(uint8_t *p, uint32_t field, int32_t v)
{
    return rc_wire_put_varint(p, field, (uint64_t) (int64_t) v);
}

static inline uint8_t *rc_wire_put_bool(uint8_t *p, uint32_t field, bool v)
{
    if (!v)
        return p;
    p = rc_wire_vput(p, RC_WIRE_KEY(field, RC_WT_VARINT));
    *p++ = 1;
    return p;
}

static inline uint8_t *rc_wire_put_bytes(uint8_t *p, uint32_t field, const void *data, size_t n)
{
    if (!n)
        return p;
    p = rc_wire_vput(p, RC_WIRE_KEY(field, RC_WT_LEN));
    p = rc_wire_vput(p, n);
    memcpy(p, data, n);
    return p + n;
}

static inline uint8_t *rc_wire_put_msg(uint8_t *p, uint32_t field, size_t n)
{
    p = rc_wire_vput(p, RC_WIRE_KEY(field, RC_WT_LEN));
    return rc_wire_vput(p, n);
}

/* The key and length of field `field` (below 16) that holds body_len bytes,
 * written to end just before at (a batch's head, written in front of its
 * entries once they are known); returns their length, at most
 * RC_WIRE_HEAD_MAX. */
#define RC_WIRE_HEAD_MAX 6
static inline size_t rc_wire_head_before(uint8_t *at, uint32_t field, size_t body_len)
{
    size_t head = 1 + rc_wire_vsize(body_len);
    rc_wire_put_msg(at - head, field, body_len);
    return head;
}

/* The frame of a batch of n messages written as entries of field `field`
 * (len bytes from body, with RC_WIRE_HEAD_MAX bytes of room before it):
 * the entries behind the batch's head, or when n is 1 the lone message
 * alone (the last last_len bytes), as a message it is. Sets *frame and
 * returns its length. */
static inline size_t rc_wire_batch_frame(uint8_t *body, size_t len, size_t n, size_t last_len, uint32_t field,
                                         uint8_t **frame)
{
    if (n == 1) {
        *frame = body + len - last_len;
        return last_len;
    }
    size_t head = rc_wire_head_before(body, field, len);
    *frame = body - head;
    return len + head;
}

#endif
