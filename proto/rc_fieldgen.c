/* rc_fieldgen: writes rc_fields.h, the field numbers, keys and scan kinds of
 * every message of refcache.proto, read from the descriptors protoc-c
 * generated from it. It runs at build time, whenever the .proto changes, so
 * the hand codecs, which name fields only through rc_fields.h, never hold a
 * number typed by hand. Usage: rc_fieldgen OUT.h
 *
 * For message M (its name without the package, "SubmitRequest.ParamsEntry"
 * as SUBMIT_REQUEST_PARAMS_ENTRY) and its field F (upper case):
 *   RC_FIELD_M_F   the field number
 *   RC_KEY_M_F     its key, (number << 3) | wire type
 *   RC_KIND_M_F    how rc_wire_scan reads it (RC_F_*, rc_wire.h): RC_F_NONE
 *                  for a type it does not read, so a message carrying one is
 *                  declined to protobuf-c
 *   RC_LAST_FIELD_M  the message's highest field number */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refcache.pb-c.h"

static const ProtobufCMessageDescriptor *const descriptors[] = {
#define RC_DESCRIPTOR(d) &d,
#include "rc_descriptors.inc"
#undef RC_DESCRIPTOR
};
#define N_DESCRIPTORS (sizeof descriptors / sizeof descriptors[0])

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static int wire_type(const ProtobufCFieldDescriptor *f)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED && (f->flags & PROTOBUF_C_FIELD_FLAG_PACKED))
        return WT_LEN;
    switch (f->type) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return WT_I32;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return WT_I64;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return WT_LEN;
    default:
        return WT_VARINT;
    }
}

static const char *wire_type_name(int wt)
{
    switch (wt) {
    case WT_VARINT:
        return "varint";
    case WT_I64:
        return "64-bit";
    case WT_LEN:
        return "length-delimited";
    default:
        return "32-bit";
    }
}

/* rc_wire_scan's kinds: an enum is read as a uint32 (a negative one takes
 * ten bytes and is declined), a packed run of numbers not at all. */
static const char *scan_kind(const ProtobufCFieldDescriptor *f)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED && wire_type(f) != WT_LEN)
        return "RC_F_NONE";
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return "RC_F_LEN";
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_ENUM:
        return f->label == PROTOBUF_C_LABEL_REPEATED ? "RC_F_NONE" : "RC_F_U32";
    case PROTOBUF_C_TYPE_UINT64:
        return f->label == PROTOBUF_C_LABEL_REPEATED ? "RC_F_NONE" : "RC_F_U64";
    case PROTOBUF_C_TYPE_BOOL:
        return f->label == PROTOBUF_C_LABEL_REPEATED ? "RC_F_NONE" : "RC_F_BOOL";
    default:
        return "RC_F_NONE";
    }
}

/* "refcache.v1.SubmitRequest.ParamsEntry" -> "SUBMIT_REQUEST_PARAMS_ENTRY". */
static void macro_name(const ProtobufCMessageDescriptor *d, char *out, size_t cap)
{
    const char *s = d->name;
    size_t plen = strlen(d->package_name);
    if (plen && !strncmp(s, d->package_name, plen) && s[plen] == '.')
        s += plen + 1;
    size_t n = 0;
    for (; *s && n + 2 < cap; s++) {
        if (*s == '.') {
            out[n++] = '_';
            continue;
        }
        if (isupper((unsigned char) *s) && n && out[n - 1] != '_' &&
            (islower((unsigned char) s[-1]) || isdigit((unsigned char) s[-1])))
            out[n++] = '_';
        out[n++] = (char) toupper((unsigned char) *s);
    }
    out[n] = 0;
}

static void upper(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 1 < cap; s++)
        out[n++] = (char) toupper((unsigned char) *s);
    out[n] = 0;
}

/* Every name written, to refuse two fields that would share a macro. */
static char **names;
static size_t n_names, cap_names;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static int remember(const char *name)
{
    if (n_names == cap_names) {
        size_t cap = cap_names ? cap_names * 2 : 256;
        char **grown = realloc(names, cap * sizeof *grown);
        if (!grown)
            return -1;
        names = grown;
        cap_names = cap;
    }
    if (!(names[n_names] = strdup(name)))
        return -1;
    n_names++;
    return 0;
}

static int write_message(FILE *out, const ProtobufCMessageDescriptor *d)
{
    char m[256], f[256], name[600];
    macro_name(d, m, sizeof m);
    fprintf(out, "\n/* %s */\n", d->name);
    unsigned last = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        upper(fd->name, f, sizeof f);
        snprintf(name, sizeof name, "%s_%s", m, f);
        if (remember(name) != 0)
            return -1;
        int wt = wire_type(fd);
        fprintf(out, "#define RC_FIELD_%s %u\n", name, fd->id);
        fprintf(out, "#define RC_KEY_%s 0x%02x /* %s */\n", name, (fd->id << 3) | (unsigned) wt,
                wire_type_name(wt));
        fprintf(out, "#define RC_KIND_%s %s\n", name, scan_kind(fd));
        if (fd->id > last)
            last = fd->id;
    }
    fprintf(out, "#define RC_LAST_FIELD_%s %u\n", m, last);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: rc_fieldgen OUT.h\n");
        return 2;
    }
    FILE *out = fopen(argv[1], "w");
    if (!out) {
        perror(argv[1]);
        return 1;
    }
    fprintf(out, "/* rc_fields.h: the field numbers, keys and rc_wire_scan kinds of every\n"
                 " * message of refcache.proto, generated from protoc-c's descriptors by\n"
                 " * proto/rc_fieldgen.c at build time: do not edit, do not commit. */\n"
                 "#ifndef RC_FIELDS_H\n#define RC_FIELDS_H\n");
    int rc = 0;
    for (size_t i = 0; i < N_DESCRIPTORS && rc == 0; i++)
        rc = write_message(out, descriptors[i]);
    fprintf(out, "\n#endif\n");
    if (rc == 0) {
        qsort(names, n_names, sizeof *names, name_cmp);
        for (size_t i = 1; i < n_names; i++)
            if (!strcmp(names[i - 1], names[i])) {
                fprintf(stderr, "rc_fieldgen: two fields would both be named %s\n", names[i]);
                rc = -1;
            }
    } else {
        fprintf(stderr, "rc_fieldgen: out of memory\n");
    }
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    if (fclose(out) != 0 || rc != 0) {
        remove(argv[1]);
        return 1;
    }
    return 0;
}
