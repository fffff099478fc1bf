/* rc_jdoc: the JSON documents of the conformance kit — a recursive-descent
 * parser (strict RFC 8259: no comments, no trailing commas), constructors,
 * and a compact printer that writes raw bytes as base64. */
#include "rc_jdoc.h"

#include "rc_builtins.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

/* ------------------------------------------------------------ nodes */

rc_jdoc_t *rc_jdoc_new(rc_jdoc_type_t type)
{
    rc_jdoc_t *v = calloc(1, sizeof *v);
    if (v)
        v->type = type;
    return v;
}

rc_jdoc_t *rc_jdoc_bool(bool b)
{
    rc_jdoc_t *v = rc_jdoc_new(RC_JDOC_BOOL);
    if (v)
        v->b = b;
    return v;
}

rc_jdoc_t *rc_jdoc_string(const void *bytes, size_t len, bool raw_bytes)
{
    rc_jdoc_t *v = rc_jdoc_new(RC_JDOC_STRING);
    if (!v)
        return NULL;
    v->text = malloc(len + 1);
    if (!v->text) {
        free(v);
        return NULL;
    }
    if (len)
        memcpy(v->text, bytes, len);
    v->text[len] = '\0';
    v->len = len;
    v->bytes = raw_bytes;
    return v;
}

static rc_jdoc_t *number_of(const char *text)
{
    rc_jdoc_t *v = rc_jdoc_new(RC_JDOC_NUMBER);
    if (v && !(v->text = strdup(text))) {
        free(v);
        return NULL;
    }
    return v;
}

rc_jdoc_t *rc_jdoc_u64(uint64_t x)
{
    char text[24];
    snprintf(text, sizeof text, "%llu", (unsigned long long) x);
    return number_of(text);
}

rc_jdoc_t *rc_jdoc_i64(int64_t x)
{
    char text[24];
    snprintf(text, sizeof text, "%lld", (long long) x);
    return number_of(text);
}

void rc_jdoc_destroy(rc_jdoc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rc_jdoc_t *v = *self_p;
    for (size_t i = 0; i < v->n; i++) {
        rc_jdoc_destroy(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->text);
    free(v);
    *self_p = NULL;
}

static int grow(rc_jdoc_t *v)
{
    if (v->n < v->cap)
        return 0;
    size_t cap = v->cap ? v->cap * 2 : 4;
    rc_jdoc_t **items = realloc(v->items, cap * sizeof *items);
    if (!items)
        return -1;
    v->items = items;
    if (v->type == RC_JDOC_OBJECT) {
        char **keys = realloc(v->keys, cap * sizeof *keys);
        if (!keys)
            return -1;
        v->keys = keys;
    }
    v->cap = cap;
    return 0;
}

int rc_jdoc_push(rc_jdoc_t *array, rc_jdoc_t *value)
{
    if (!value || grow(array) != 0) {
        rc_jdoc_destroy(&value);
        return -1;
    }
    array->items[array->n++] = value;
    return 0;
}

int rc_jdoc_set(rc_jdoc_t *object, const char *key, rc_jdoc_t *value)
{
    char *k = strdup(key);
    if (!value || !k || grow(object) != 0) {
        free(k);
        rc_jdoc_destroy(&value);
        return -1;
    }
    object->keys[object->n] = k;
    object->items[object->n++] = value;
    return 0;
}

rc_jdoc_t *rc_jdoc_get(const rc_jdoc_t *object, const char *key)
{
    if (!object || object->type != RC_JDOC_OBJECT)
        return NULL;
    for (size_t i = 0; i < object->n; i++)
        if (strcmp(object->keys[i], key) == 0)
            return object->items[i];
    return NULL;
}

rc_jdoc_t *rc_jdoc_copy(const rc_jdoc_t *v)
{
    rc_jdoc_t *c;
    switch (v->type) {
    case RC_JDOC_STRING:
        return rc_jdoc_string(v->text, v->len, v->bytes);
    case RC_JDOC_NUMBER:
        return number_of(v->text);
    case RC_JDOC_BOOL:
        return rc_jdoc_bool(v->b);
    default:
        if (!(c = rc_jdoc_new(v->type)))
            return NULL;
        for (size_t i = 0; i < v->n; i++) {
            rc_jdoc_t *item = rc_jdoc_copy(v->items[i]);
            int rc = v->type == RC_JDOC_OBJECT ? rc_jdoc_set(c, v->keys[i], item) : rc_jdoc_push(c, item);
            if (rc != 0) {
                rc_jdoc_destroy(&c);
                return NULL;
            }
        }
        return c;
    }
}

int rc_jdoc_integer(const rc_jdoc_t *v, bool *negative, uint64_t *magnitude)
{
    if (!v || (v->type != RC_JDOC_NUMBER && v->type != RC_JDOC_STRING) || v->bytes)
        return -1;
    const char *p = v->text;
    *negative = *p == '-';
    if (*negative)
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long m = strtoull(p, &end, 10);
    if (errno || *end)
        return -1;
    *magnitude = m;
    return 0;
}

/* ------------------------------------------------------------ parser */

typedef struct {
    const char *p, *start, *end;
    char *err;
    size_t errlen;
    int depth;
} parser_t;

static rc_jdoc_t *fail_at(parser_t *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static rc_jdoc_t *fail_at(parser_t *ps, const char *fmt, ...)
{
    if (ps->err[0])
        return NULL; /* the innermost reason is the one to tell */
    int line = 1, col = 1;
    for (const char *q = ps->start; q < ps->p; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else
            col++;
    }
    int n = snprintf(ps->err, ps->errlen, "line %d col %d: ", line, col);
    if (n > 0 && (size_t) n < ps->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err + n, ps->errlen - (size_t) n, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

static void skip_ws(parser_t *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned) (c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned) (c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned) (c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char) (0xc0 | cp >> 6);
        out[1] = (char) (0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char) (0xe0 | cp >> 12);
        out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char) (0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char) (0xf0 | cp >> 18);
    out[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char) (0x80 | (cp & 0x3f));
    return 4;
}

/* A string at ps->p (on its opening quote) into a STRING node. */
static rc_jdoc_t *parse_string(parser_t *ps)
{
    ps->p++;
    /* Escapes only shrink text, so the raw span bounds the decoded size. */
    const char *q = ps->p;
    while (q < ps->end && *q != '"')
        q += *q == '\\' && q + 1 < ps->end ? 2 : 1;
    if (q >= ps->end)
        return fail_at(ps, "unterminated string");
    char *buf = malloc((size_t) (q - ps->p) + 1);
    if (!buf)
        return fail_at(ps, "out of memory");
    size_t n = 0;
    while (*ps->p != '"') {
        unsigned char c = (unsigned char) *ps->p;
        if (c < 0x20) {
            free(buf);
            return fail_at(ps, "control character in a string");
        }
        if (c != '\\') {
            buf[n++] = (char) c;
            ps->p++;
            continue;
        }
        char e = ps->p[1];
        ps->p += 2;
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *k = e ? strchr(from, e) : NULL;
        if (k) {
            buf[n++] = to[k - from];
            continue;
        }
        switch (e) {
        case 'u': {
            unsigned cp, lo;
            if (ps->end - ps->p < 4 || hex4(ps->p, &cp) != 0) {
                free(buf);
                return fail_at(ps, "bad \\u escape");
            }
            ps->p += 4;
            if (cp >= 0xd800 && cp < 0xdc00) {
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' || hex4(ps->p + 2, &lo) != 0 ||
                    lo < 0xdc00 || lo > 0xdfff) {
                    free(buf);
                    return fail_at(ps, "lone surrogate in a \\u escape");
                }
                ps->p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            /* 6 escaped bytes or 12 for a pair always give room for these. */
            n += put_utf8(buf + n, cp);
            break;
        }
        default:
            free(buf);
            return fail_at(ps, "bad escape \\%c", e);
        }
    }
    ps->p++;
    rc_jdoc_t *v = rc_jdoc_new(RC_JDOC_STRING);
    if (!v) {
        free(buf);
        return fail_at(ps, "out of memory");
    }
    buf[n] = '\0';
    v->text = buf;
    v->len = n;
    return v;
}

static rc_jdoc_t *parse_number(parser_t *ps)
{
    const char *s = ps->p;
    if (ps->p < ps->end && *ps->p == '-')
        ps->p++;
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
        return fail_at(ps, "expected a value");
    if (*ps->p == '0')
        ps->p++;
    else
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
            return fail_at(ps, "digits expected after '.'");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
            return fail_at(ps, "digits expected in an exponent");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    rc_jdoc_t *v = rc_jdoc_new(RC_JDOC_NUMBER);
    if (!v || !(v->text = strndup(s, (size_t) (ps->p - s)))) {
        free(v);
        return fail_at(ps, "out of memory");
    }
    return v;
}

static rc_jdoc_t *parse_value(parser_t *ps);

static rc_jdoc_t *parse_container(parser_t *ps, bool object)
{
    if (++ps->depth > MAX_DEPTH)
        return fail_at(ps, "nested deeper than %d", MAX_DEPTH);
    char close = object ? '}' : ']';
    ps->p++;
    rc_jdoc_t *v = rc_jdoc_new(object ? RC_JDOC_OBJECT : RC_JDOC_ARRAY);
    if (!v)
        return fail_at(ps, "out of memory");
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return v;
    }
    for (;;) {
        rc_jdoc_t *key = NULL;
        if (object) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"' || !(key = parse_string(ps)))
                goto bad_key;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                rc_jdoc_destroy(&key);
                fail_at(ps, "expected ':'");
                goto fail;
            }
            ps->p++;
        }
        rc_jdoc_t *item = parse_value(ps);
        if (!item) {
            rc_jdoc_destroy(&key);
            goto fail;
        }
        int rc = object ? rc_jdoc_set(v, key->text, item) : rc_jdoc_push(v, item);
        rc_jdoc_destroy(&key);
        if (rc != 0) {
            fail_at(ps, "out of memory");
            goto fail;
        }
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            ps->depth--;
            return v;
        }
        fail_at(ps, "expected ',' or '%c'", close);
        goto fail;
    }
bad_key:
    fail_at(ps, "expected a string key");
fail:
    rc_jdoc_destroy(&v);
    return NULL;
}

static bool take_word(parser_t *ps, const char *w)
{
    size_t n = strlen(w);
    if ((size_t) (ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0)
        return false;
    ps->p += n;
    return true;
}

static rc_jdoc_t *parse_value(parser_t *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail_at(ps, "unexpected end of text");
    switch (*ps->p) {
    case '{':
        return parse_container(ps, true);
    case '[':
        return parse_container(ps, false);
    case '"':
        return parse_string(ps);
    default:
        break;
    }
    if (take_word(ps, "true"))
        return rc_jdoc_bool(true);
    if (take_word(ps, "false"))
        return rc_jdoc_bool(false);
    if (take_word(ps, "null"))
        return rc_jdoc_new(RC_JDOC_NULL);
    return parse_number(ps);
}

rc_jdoc_t *rc_jdoc_parse(const char *text, size_t len, char *err, size_t errlen)
{
    char dummy[1];
    parser_t ps = {.p = text,
                   .start = text,
                   .end = text + len,
                   .err = errlen ? err : dummy,
                   .errlen = errlen ? errlen : 1};
    ps.err[0] = '\0';
    rc_jdoc_t *v = parse_value(&ps);
    if (!v)
        return NULL;
    skip_ws(&ps);
    if (ps.p != ps.end) {
        rc_jdoc_destroy(&v);
        return fail_at(&ps, "text after the value");
    }
    return v;
}

rc_jdoc_t *rc_jdoc_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            char *b = realloc(buf, cap = cap ? cap * 2 : 65536);
            if (!b) {
                free(buf);
                fclose(f);
                snprintf(err, errlen, "%s: out of memory", path);
                return NULL;
            }
            buf = b;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(err, errlen, "%s: read error", path);
        return NULL;
    }
    char why[200];
    rc_jdoc_t *v = rc_jdoc_parse(buf, len, why, sizeof why);
    free(buf);
    if (!v)
        snprintf(err, errlen, "%s: %s", path, why);
    return v;
}

/* ------------------------------------------------------------ base64 */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int rc_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len)
{
    while (len && text[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -1;
    uint8_t *buf = malloc(len / 4 * 3 + 3);
    if (!buf)
        return -1;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(text[i]);
        if (v < 0) {
            free(buf);
            return -1;
        }
        acc = acc << 6 | (uint32_t) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (uint8_t) (acc >> bits);
        }
    }
    *out = buf;
    *out_len = n;
    return 0;
}

/* ------------------------------------------------------------ printer */

/* The text being printed, in the built-ins' growable buffer; oom once
 * memory ran out (the rest is then skipped). */
typedef struct {
    rc_strbuf_t buf;
    bool oom;
} sbuf_t;

static void put(sbuf_t *b, const char *s, size_t n)
{
    if (b->oom || rc_strbuf_reserve(&b->buf, n + 1) != 0) {
        b->oom = true;
        return;
    }
    memcpy(b->buf.data + b->buf.len, s, n);
    b->buf.len += n;
    b->buf.data[b->buf.len] = '\0';
}

static void put_quoted(sbuf_t *b, const char *s, size_t n)
{
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char) c;
            put(b, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(b, esc, 6);
        } else
            put(b, (const char *) &c, 1);
    }
    put(b, "\"", 1);
}

static void put_base64(sbuf_t *b, const uint8_t *s, size_t n)
{
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v =
            (uint32_t) s[i] << 16 | (i + 1 < n ? (uint32_t) s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
                     i + 2 < n ? b64[v & 63] : '='};
        put(b, q, 4);
    }
    put(b, "\"", 1);
}

static void print_value(sbuf_t *b, const rc_jdoc_t *v)
{
    switch (v->type) {
    case RC_JDOC_NULL:
        put(b, "null", 4);
        break;
    case RC_JDOC_BOOL:
        put(b, v->b ? "true" : "false", v->b ? 4 : 5);
        break;
    case RC_JDOC_NUMBER:
        put(b, v->text, strlen(v->text));
        break;
    case RC_JDOC_STRING:
        if (v->bytes)
            put_base64(b, (const uint8_t *) v->text, v->len);
        else
            put_quoted(b, v->text, v->len);
        break;
    case RC_JDOC_ARRAY:
    case RC_JDOC_OBJECT:
        put(b, v->type == RC_JDOC_OBJECT ? "{" : "[", 1);
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                put(b, ", ", 2);
            if (v->type == RC_JDOC_OBJECT) {
                put_quoted(b, v->keys[i], strlen(v->keys[i]));
                put(b, ": ", 2);
            }
            print_value(b, v->items[i]);
        }
        put(b, v->type == RC_JDOC_OBJECT ? "}" : "]", 1);
        break;
    }
}

char *rc_jdoc_print(const rc_jdoc_t *v, size_t max)
{
    sbuf_t b = {0};
    put(&b, "", 0);
    if (v)
        print_value(&b, v);
    else
        put(&b, "(nothing)", 9);
    if (b.oom) {
        rc_strbuf_free(&b.buf);
        return NULL;
    }
    if (max && b.buf.len > max)
        memcpy(b.buf.data + max - 3, "...", 4);
    return b.buf.data;
}
