/* rc_jdoc: a small JSON document (RFC 8259) for the conformance runner —
 * parse text into a tree, build trees, print them compactly. Numbers keep
 * their text, so 64-bit integers stay exact. A string node may carry raw
 * bytes (a protobuf bytes field): it prints as base64, as protobuf's JSON
 * mapping writes bytes. Test code only: errors are reported, never
 * asserted. */
#ifndef RC_JDOC_H
#define RC_JDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    RC_JDOC_NULL,
    RC_JDOC_BOOL,
    RC_JDOC_NUMBER,
    RC_JDOC_STRING,
    RC_JDOC_ARRAY,
    RC_JDOC_OBJECT,
} rc_jdoc_type_t;

typedef struct rc_jdoc rc_jdoc_t;
struct rc_jdoc {
    rc_jdoc_type_t type;
    bool b;            /* BOOL */
    bool bytes;        /* STRING holding raw bytes (prints as base64) */
    char *text;        /* STRING: its bytes, NUL-terminated; NUMBER: its text */
    size_t len;        /* STRING: length of text */
    rc_jdoc_t **items; /* ARRAY and OBJECT: the values, in order */
    char **keys;       /* OBJECT: the keys, one per item */
    size_t n;
    size_t cap;
};

/* Parses text (len bytes); NULL with "line L col C: why" in err. */
rc_jdoc_t *rc_jdoc_parse(const char *text, size_t len, char *err, size_t errlen);

/* Reads and parses a whole file; NULL with the reason in err. */
rc_jdoc_t *rc_jdoc_load(const char *path, char *err, size_t errlen);

/* Frees a tree; accepts NULL and clears the caller's pointer. */
void rc_jdoc_destroy(rc_jdoc_t **self_p);

/* Constructors; NULL when memory runs out. */
rc_jdoc_t *rc_jdoc_new(rc_jdoc_type_t type);
rc_jdoc_t *rc_jdoc_bool(bool b);
rc_jdoc_t *rc_jdoc_string(const void *bytes, size_t len, bool raw_bytes);
rc_jdoc_t *rc_jdoc_u64(uint64_t v);
rc_jdoc_t *rc_jdoc_i64(int64_t v);
rc_jdoc_t *rc_jdoc_copy(const rc_jdoc_t *v);

/* Appends value (taken; freed on failure) to an array, or under key to an
 * object. 0, or -1 out of memory. */
int rc_jdoc_push(rc_jdoc_t *array, rc_jdoc_t *value);
int rc_jdoc_set(rc_jdoc_t *object, const char *key, rc_jdoc_t *value);

/* The value under key in an object (the first), or NULL. */
rc_jdoc_t *rc_jdoc_get(const rc_jdoc_t *object, const char *key);

/* The integer a NUMBER (or a STRING of decimal digits, as protobuf's JSON
 * writes 64-bit integers) holds: 0 with its sign and magnitude, -1 if it
 * is not an integer that fits in 64 bits. */
int rc_jdoc_integer(const rc_jdoc_t *v, bool *negative, uint64_t *magnitude);

/* Compact JSON text of v (malloc'd), or NULL out of memory. Longer than
 * max bytes: cut there with "..." (0: no limit). */
char *rc_jdoc_print(const rc_jdoc_t *v, size_t max);

/* Base64 (standard alphabet, or URL-safe; padding optional) to bytes:
 * malloc'd into *out, 0, or -1 if text is not base64. */
int rc_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len);

#endif
