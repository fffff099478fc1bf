/* rc_pbjson: JSON <-> protobuf-c messages through their descriptors. A
 * message built from JSON lives in an arena (every block it points to is
 * recorded there) that is freed at once after packing, so no per-field
 * ownership rules are needed. */
#include "rc_pbjson.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ arena */

typedef struct {
    void **blocks;
    size_t n, cap;
    char *err;
    size_t errlen;
} build_t;

static void *arena_alloc(build_t *b, size_t size)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        void **blocks = realloc(b->blocks, cap * sizeof *blocks);
        if (!blocks)
            return NULL;
        b->blocks = blocks;
        b->cap = cap;
    }
    void *p = calloc(1, size ? size : 1);
    if (p)
        b->blocks[b->n++] = p;
    return p;
}

static void arena_free(build_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->blocks[i]);
    free(b->blocks);
}

static int bad(build_t *b, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(build_t *b, const char *path, const char *fmt, ...)
{
    int n = snprintf(b->err, b->errlen, "%s: ", path[0] ? path : "(message)");
    if (n > 0 && (size_t) n < b->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->err + n, b->errlen - (size_t) n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ------------------------------------------------------------ descriptors */

/* "ref_id" matches "ref_id" and "refId" (protobuf's JSON name). */
static bool name_matches(const char *proto_name, const char *key)
{
    if (strcmp(proto_name, key) == 0)
        return true;
    const char *p = proto_name, *k = key;
    while (*p && *k) {
        if (*p == '_' && p[1]) {
            if (*k != (p[1] >= 'a' && p[1] <= 'z' ? p[1] - 'a' + 'A' : p[1]))
                return false;
            p += 2;
        } else {
            if (*k != *p)
                return false;
            p++;
        }
        k++;
    }
    return !*p && !*k;
}

static const ProtobufCFieldDescriptor *field_named(const ProtobufCMessageDescriptor *d, const char *key)
{
    for (unsigned i = 0; i < d->n_fields; i++)
        if (name_matches(d->fields[i].name, key))
            return &d->fields[i];
    return NULL;
}

/* protoc turns map<K, V> into a repeated nested "...Entry" message of two
 * fields, key = 1 and value = 2; protobuf-c keeps no map flag. */
static bool is_map(const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label != PROTOBUF_C_LABEL_REPEATED)
        return false;
    const ProtobufCMessageDescriptor *e = f->descriptor;
    size_t n = strlen(e->short_name);
    return e->n_fields == 2 && n > 5 && strcmp(e->short_name + n - 5, "Entry") == 0 &&
           strcmp(e->fields[0].name, "key") == 0 && strcmp(e->fields[1].name, "value") == 0;
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4; /* 32-bit integers, float, enum */
    }
}

/* ------------------------------------------------------------ JSON -> message */

static int fill_message(build_t *b, const rc_jdoc_t *json, const ProtobufCMessageDescriptor *d,
                        ProtobufCMessage *m, const char *path);

static int fill_integer(build_t *b, const ProtobufCFieldDescriptor *f, const rc_jdoc_t *v, void *dst,
                        const char *path)
{
    bool neg;
    uint64_t mag;
    if (rc_jdoc_integer(v, &neg, &mag) != 0)
        return bad(b, path, "expected an integer, got \"%s\"", v->text ? v->text : "(not a number)");
    bool is_signed = f->type == PROTOBUF_C_TYPE_INT32 || f->type == PROTOBUF_C_TYPE_SINT32 ||
                     f->type == PROTOBUF_C_TYPE_SFIXED32 || f->type == PROTOBUF_C_TYPE_INT64 ||
                     f->type == PROTOBUF_C_TYPE_SINT64 || f->type == PROTOBUF_C_TYPE_SFIXED64;
    bool wide = elem_size(f->type) == 8;
    uint64_t max = wide ? (is_signed ? INT64_MAX : UINT64_MAX) : (is_signed ? INT32_MAX : UINT32_MAX);
    if ((neg && !is_signed) || (!neg && mag > max) || (neg && mag > max + 1))
        return bad(b, path, "%s%llu is out of range", neg ? "-" : "", (unsigned long long) mag);
    uint64_t u = neg ? (uint64_t) 0 - mag : mag;
    if (wide)
        memcpy(dst, &u, 8);
    else {
        uint32_t u32 = (uint32_t) u;
        memcpy(dst, &u32, 4);
    }
    return 0;
}

/* One value of field f (a singular field, or one element of a repeated one)
 * at dst. */
static int fill_value(build_t *b, const ProtobufCFieldDescriptor *f, const rc_jdoc_t *v, void *dst,
                      const char *path)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        if (v->type != RC_JDOC_BOOL)
            return bad(b, path, "expected true or false");
        *(protobuf_c_boolean *) dst = v->b;
        return 0;
    case PROTOBUF_C_TYPE_STRING: {
        if (v->type != RC_JDOC_STRING)
            return bad(b, path, "expected a string");
        char *s = arena_alloc(b, v->len + 1);
        if (!s)
            return bad(b, path, "out of memory");
        memcpy(s, v->text, v->len);
        *(char **) dst = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        uint8_t *bytes;
        size_t n;
        if (v->type != RC_JDOC_STRING || rc_base64_decode(v->text, v->len, &bytes, &n) != 0)
            return bad(b, path, "expected base64 text (protobuf's JSON form of bytes)");
        uint8_t *copy = arena_alloc(b, n);
        if (!copy) {
            free(bytes);
            return bad(b, path, "out of memory");
        }
        memcpy(copy, bytes, n);
        free(bytes);
        *(ProtobufCBinaryData *) dst = (ProtobufCBinaryData){n, n ? copy : NULL};
        return 0;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        if (v->type == RC_JDOC_STRING) {
            const ProtobufCEnumValue *ev =
                protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, v->text);
            if (!ev)
                return bad(b, path, "\"%s\" is not a value of %s", v->text,
                           ((const ProtobufCEnumDescriptor *) f->descriptor)->name);
            *(int *) dst = ev->value;
            return 0;
        }
        /* Numbers are allowed too (open enums). */
        static const ProtobufCFieldDescriptor as_int32 = {.type = PROTOBUF_C_TYPE_INT32};
        return fill_integer(b, &as_int32, v, dst, path);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        if (v->type != RC_JDOC_OBJECT)
            return bad(b, path, "expected an object (a %s)", sd->name);
        ProtobufCMessage *sub = arena_alloc(b, sd->sizeof_message);
        if (!sub)
            return bad(b, path, "out of memory");
        *(ProtobufCMessage **) dst = sub;
        return fill_message(b, v, sd, sub, path);
    }
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        char *end;
        if (v->type != RC_JDOC_NUMBER)
            return bad(b, path, "expected a number");
        double x = strtod(v->text, &end);
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *) dst = (float) x;
        else
            *(double *) dst = x;
        return 0;
    }
    default:
        return fill_integer(b, f, v, dst, path);
    }
}

/* A map field from a JSON object: one entry message per key. */
static int fill_map(build_t *b, const ProtobufCFieldDescriptor *f, const rc_jdoc_t *v, ProtobufCMessage *m,
                    const char *path)
{
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    ProtobufCMessage **entries = arena_alloc(b, (v->n ? v->n : 1) * sizeof *entries);
    if (!entries)
        return bad(b, path, "out of memory");
    for (size_t i = 0; i < v->n; i++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%.180s[\"%.60s\"]", path, v->keys[i]);
        ProtobufCMessage *e = arena_alloc(b, ed->sizeof_message);
        if (!e)
            return bad(b, sub, "out of memory");
        protobuf_c_message_init(ed, e);
        rc_jdoc_t key = {.type = RC_JDOC_STRING, .text = v->keys[i], .len = strlen(v->keys[i])};
        if (ed->fields[0].type != PROTOBUF_C_TYPE_STRING)
            key.type = RC_JDOC_NUMBER; /* protobuf's JSON writes integer map keys as strings */
        if (fill_value(b, &ed->fields[0], &key, (char *) e + ed->fields[0].offset, sub) != 0 ||
            fill_value(b, &ed->fields[1], v->items[i], (char *) e + ed->fields[1].offset, sub) != 0)
            return -1;
        entries[i] = e;
    }
    *(size_t *) ((char *) m + f->quantifier_offset) = v->n;
    *(ProtobufCMessage ***) ((char *) m + f->offset) = entries;
    return 0;
}

static int fill_message(build_t *b, const rc_jdoc_t *json, const ProtobufCMessageDescriptor *d,
                        ProtobufCMessage *m, const char *path)
{
    protobuf_c_message_init(d, m);
    if (json->type != RC_JDOC_OBJECT)
        return bad(b, path, "expected an object (a %s)", d->name);
    for (size_t i = 0; i < json->n; i++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%.180s%s%.60s", path, path[0] ? "." : "", json->keys[i]);
        const ProtobufCFieldDescriptor *f = field_named(d, json->keys[i]);
        if (!f)
            return bad(b, sub, "%s has no such field", d->name);
        const rc_jdoc_t *v = json->items[i];
        if (v->type == RC_JDOC_NULL)
            continue; /* null: the field's default */
        char *at = (char *) m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (v->type == RC_JDOC_OBJECT && is_map(f)) {
                if (fill_map(b, f, v, m, sub) != 0)
                    return -1;
                continue;
            }
            if (v->type != RC_JDOC_ARRAY)
                return bad(b, sub, "expected an array");
            size_t es = elem_size(f->type);
            char *arr = arena_alloc(b, (v->n ? v->n : 1) * es);
            if (!arr)
                return bad(b, sub, "out of memory");
            for (size_t k = 0; k < v->n; k++) {
                char item[280];
                snprintf(item, sizeof item, "%.250s[%zu]", sub, k);
                if (fill_value(b, f, v->items[k], arr + k * es, item) != 0)
                    return -1;
            }
            *(size_t *) ((char *) m + f->quantifier_offset) = v->n;
            *(void **) at = arr;
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *which = (uint32_t *) ((char *) m + f->quantifier_offset);
            if (*which != 0)
                return bad(b, sub, "a second member of the same oneof");
            *which = f->id;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset) {
            *(protobuf_c_boolean *) ((char *) m + f->quantifier_offset) = 1;
        }
        if (fill_value(b, f, v, at, sub) != 0)
            return -1;
    }
    return 0;
}

int rc_pbjson_pack(const rc_jdoc_t *json, const ProtobufCMessageDescriptor *d, uint8_t **out, size_t *len,
                   char *err, size_t errlen)
{
    build_t b = {.err = err, .errlen = errlen};
    ProtobufCMessage *m = arena_alloc(&b, d->sizeof_message);
    int rc = m ? fill_message(&b, json, d, m, "") : bad(&b, "", "out of memory");
    if (rc == 0) {
        size_t n = protobuf_c_message_get_packed_size(m);
        *out = malloc(n ? n : 1);
        if (*out) {
            *len = protobuf_c_message_pack(m, *out);
        } else
            rc = bad(&b, "", "out of memory");
    }
    arena_free(&b);
    return rc;
}

/* ------------------------------------------------------------ message -> JSON */

static rc_jdoc_t *tree_of(const ProtobufCMessage *m);

static rc_jdoc_t *value_tree(const ProtobufCFieldDescriptor *f, const void *at)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        return rc_jdoc_bool(*(const protobuf_c_boolean *) at);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *) at;
        return rc_jdoc_string(s ? s : "", s ? strlen(s) : 0, false);
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = at;
        return rc_jdoc_string(bd->data, bd->len, true);
    }
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *) at;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        return ev ? rc_jdoc_string(ev->name, strlen(ev->name), false) : rc_jdoc_i64(v);
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return tree_of(*(ProtobufCMessage *const *) at);
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return rc_jdoc_i64(*(const int32_t *) at);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return rc_jdoc_u64(*(const uint32_t *) at);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return rc_jdoc_i64(*(const int64_t *) at);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return rc_jdoc_u64(*(const uint64_t *) at);
    default: {
        char text[64];
        double x = f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *) at : *(const double *) at;
        snprintf(text, sizeof text, "%.17g", x);
        rc_jdoc_t *v = rc_jdoc_new(RC_JDOC_NUMBER);
        if (v && !(v->text = strdup(text))) {
            free(v);
            v = NULL;
        }
        return v;
    }
    }
}

/* A map's entries as an object keyed by their keys' text. */
static rc_jdoc_t *map_tree(const ProtobufCFieldDescriptor *f, ProtobufCMessage *const *entries, size_t n)
{
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    rc_jdoc_t *obj = rc_jdoc_new(RC_JDOC_OBJECT);
    for (size_t i = 0; obj && i < n; i++) {
        rc_jdoc_t *key = value_tree(&ed->fields[0], (const char *) entries[i] + ed->fields[0].offset);
        rc_jdoc_t *val = value_tree(&ed->fields[1], (const char *) entries[i] + ed->fields[1].offset);
        if (!key) {
            rc_jdoc_destroy(&val);
            rc_jdoc_destroy(&obj);
        } else if (rc_jdoc_set(obj, key->text, val) != 0)
            rc_jdoc_destroy(&obj);
        rc_jdoc_destroy(&key);
    }
    return obj;
}

static rc_jdoc_t *tree_of(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    rc_jdoc_t *obj = rc_jdoc_new(RC_JDOC_OBJECT);
    for (unsigned i = 0; obj && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *at = (const char *) m + f->offset;
        rc_jdoc_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *) ((const char *) m + f->quantifier_offset);
            const char *arr = *(char *const *) at;
            if (is_map(f)) {
                v = map_tree(f, (ProtobufCMessage *const *) arr, n);
            } else {
                v = rc_jdoc_new(RC_JDOC_ARRAY);
                for (size_t k = 0; v && k < n; k++)
                    if (rc_jdoc_push(v, value_tree(f, arr + k * elem_size(f->type))) != 0)
                        rc_jdoc_destroy(&v);
            }
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *) ((const char *) m + f->quantifier_offset) != f->id)
                continue;
            v = value_tree(f, at);
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (!*(ProtobufCMessage *const *) at)
                continue;
            v = value_tree(f, at);
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                   !*(const protobuf_c_boolean *) ((const char *) m + f->quantifier_offset)) {
            continue; /* explicit presence, and not set */
        } else {
            v = value_tree(f, at);
        }
        if (rc_jdoc_set(obj, f->name, v) != 0)
            rc_jdoc_destroy(&obj);
    }
    return obj;
}

rc_jdoc_t *rc_pbjson_tree(const ProtobufCMessage *m)
{
    return tree_of(m);
}
