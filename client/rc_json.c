/* rc_json: the one JSON writer of the CLI and the bench (see rc_json.h). */
#include "rc_json.h"
#include "rc_buf.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rc_json {
    rc_buf_t b; /* the text, NUL-terminated */
    bool first;
    bool failed;
    bool closed;
    /* Objects opened with rc_json_begin and not yet closed, and whether
     * each outer one was at its first key. */
    unsigned depth;
    bool outer_first[RC_JSON_DEPTH];
    char closer[RC_JSON_DEPTH]; /* '}' or ']' */
};

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if the bytes there
 * are not one (overlong forms, surrogates and code points past U+10FFFF
 * are invalid). Only called for a lead byte >= 0x80. */
static size_t s_utf8_len(const uint8_t *p, size_t avail)
{
    uint8_t c = p[0];
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else
        return 0;
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

size_t rc_json_escape(const void *bytes, size_t len, char *out, size_t cap)
{
    const uint8_t *p = bytes;
    size_t need = 0;
#define PUT(ch)                                                                                              \
    do {                                                                                                     \
        if (need + 1 < cap)                                                                                  \
            out[need] = (ch);                                                                                \
        need++;                                                                                              \
    } while (0)
    for (size_t i = 0; i < len;) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\') {
            PUT('\\');
            PUT((char) c);
            i++;
        } else if (c >= 0x20 && c < 0x7F) {
            PUT((char) c);
            i++;
        } else if (c == '\n' || c == '\t' || c == '\r') {
            PUT('\\');
            PUT(c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
            i++;
        } else {
            size_t n = c >= 0x80 ? s_utf8_len(p + i, len - i) : 0;
            if (n) {
                for (size_t k = 0; k < n; k++)
                    PUT((char) p[i + k]);
                i += n;
            } else {
                /* Control characters, DEL and bytes that are not UTF-8:
                 * the byte's value as a code point keeps the output valid. */
                static const char hex[] = "0123456789abcdef";
                PUT('\\');
                PUT('u');
                PUT('0');
                PUT('0');
                PUT(hex[c >> 4]);
                PUT(hex[c & 15]);
                i++;
            }
        }
    }
#undef PUT
    if (cap)
        out[need < cap ? need : cap - 1] = '\0';
    return need;
}

static void s_reserve(rc_json_t *self, size_t more)
{
    if (!self->failed && rc_buf_reserve(&self->b, self->b.len + more + 1) != 0)
        self->failed = true;
}

static void s_raw(rc_json_t *self, const char *text, size_t n)
{
    s_reserve(self, n);
    if (self->failed)
        return;
    memcpy(((char *) self->b.data) + self->b.len, text, n);
    self->b.len += n;
    ((char *) self->b.data)[self->b.len] = '\0';
}

/* Whether the bytes need no escaping: printable ASCII, no quote, no
 * backslash (ids, names, most messages). */
static bool s_plain(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x20 || p[i] >= 0x7F || p[i] == '"' || p[i] == '\\')
            return false;
    return true;
}

static void s_escaped(rc_json_t *self, const void *bytes, size_t len)
{
    if (s_plain(bytes, len)) {
        s_raw(self, "\"", 1);
        s_raw(self, bytes, len);
        s_raw(self, "\"", 1);
        return;
    }
    size_t need = rc_json_escape(bytes, len, NULL, 0);
    s_raw(self, "\"", 1);
    s_reserve(self, need);
    if (self->failed)
        return;
    rc_json_escape(bytes, len, ((char *) self->b.data) + self->b.len, need + 1);
    self->b.len += need;
    s_raw(self, "\"", 1);
}

static void s_key(rc_json_t *self, const char *key)
{
    if (!self->first)
        s_raw(self, ", ", 2);
    self->first = false;
    s_escaped(self, key, strlen(key));
    s_raw(self, ": ", 2);
}

rc_json_t *rc_json_new(void)
{
    rc_json_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->first = true;
    s_raw(self, "{", 1);
    if (self->failed)
        rc_json_destroy(&self);
    return self;
}

void rc_json_destroy(rc_json_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rc_buf_free(&(*self_p)->b);
    free(*self_p);
    *self_p = NULL;
}

void rc_json_str(rc_json_t *self, const char *key, const char *value)
{
    value = value ? value : "";
    rc_json_bytes(self, key, value, strlen(value));
}

void rc_json_bytes(rc_json_t *self, const char *key, const void *bytes, size_t len)
{
    s_key(self, key);
    s_escaped(self, bytes ? bytes : "", bytes ? len : 0);
}

void rc_json_uint(rc_json_t *self, const char *key, uint64_t value)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRIu64, value);
    s_key(self, key);
    s_raw(self, num, (size_t) n);
}

void rc_json_bool(rc_json_t *self, const char *key, bool value)
{
    s_key(self, key);
    s_raw(self, value ? "true" : "false", value ? 4 : 5);
}

void rc_json_double(rc_json_t *self, const char *key, double value)
{
    char num[48];
    int n = snprintf(num, sizeof num, "%.3f", isfinite(value) ? value : 0.0);
    s_key(self, key);
    s_raw(self, num, (size_t) n);
}

void rc_json_begin(rc_json_t *self, const char *key)
{
    if (self->depth >= RC_JSON_DEPTH) {
        self->failed = true;
        return;
    }
    s_key(self, key);
    s_raw(self, "{", 1);
    self->closer[self->depth] = '}';
    self->outer_first[self->depth++] = false;
    self->first = true;
}

void rc_json_array(rc_json_t *self, const char *key)
{
    if (self->depth >= RC_JSON_DEPTH) {
        self->failed = true;
        return;
    }
    s_key(self, key);
    s_raw(self, "[", 1);
    self->closer[self->depth] = ']';
    self->outer_first[self->depth++] = false;
    self->first = true;
}

/* The separator before an element of the array being written. */
static bool s_element(rc_json_t *self)
{
    if (!self->depth || self->closer[self->depth - 1] != ']') {
        self->failed = true;
        return false;
    }
    if (!self->first)
        s_raw(self, ", ", 2);
    self->first = false;
    return true;
}

void rc_json_element(rc_json_t *self)
{
    if (self->depth >= RC_JSON_DEPTH || !s_element(self)) {
        self->failed = true;
        return;
    }
    s_raw(self, "{", 1);
    self->closer[self->depth] = '}';
    self->outer_first[self->depth++] = false;
    self->first = true;
}

void rc_json_element_str(rc_json_t *self, const char *value)
{
    if (s_element(self))
        s_escaped(self, value ? value : "", value ? strlen(value) : 0);
}

void rc_json_end(rc_json_t *self)
{
    if (self->depth == 0) {
        self->failed = true;
        return;
    }
    self->depth--;
    s_raw(self, &self->closer[self->depth], 1);
    self->first = self->outer_first[self->depth];
}

const char *rc_json_finish(rc_json_t *self)
{
    while (self->depth)
        rc_json_end(self);
    if (!self->closed) {
        s_raw(self, "}", 1);
        self->closed = true;
    }
    return self->failed ? NULL : ((char *) self->b.data);
}
