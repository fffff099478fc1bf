/* rc_jrecord: the store's record formats (see rc_jrecord.h). Fixed fields
 * first, in a fixed order, little-endian; then each byte string as a 32-bit
 * length and its bytes. A reader checks every length against what is left. */
#include "rc_jrecord.h"

#include <string.h>

size_t rc_jrecord_key(uint8_t kind, const uint8_t ref[16], uint8_t out[17])
{
    out[0] = kind;
    memcpy(out + 1, ref, 16);
    return 17;
}

/* ---------------------------------------------------------------- writing */

typedef struct {
    uint8_t *p;
} wr_t;

static void w8(wr_t *w, uint8_t v)
{
    *w->p++ = v;
}

static void w32(wr_t *w, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *w->p++ = (uint8_t) (v >> (8 * i));
}

static void w64(wr_t *w, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *w->p++ = (uint8_t) (v >> (8 * i));
}

static void wraw(wr_t *w, const void *p, size_t n)
{
    if (n)
        memcpy(w->p, p, n);
    w->p += n;
}

static void wbytes(wr_t *w, rc_bytes_t b)
{
    w32(w, (uint32_t) b.len);
    wraw(w, b.ptr, b.len);
}

/* Room for n more bytes at the end of buf, as a writer. */
static int begin(rc_buf_t *buf, size_t n, wr_t *w)
{
    if (rc_buf_reserve(buf, buf->len + n) != 0)
        return -1;
    w->p = buf->data + buf->len;
    return 0;
}

static void end(rc_buf_t *buf, const wr_t *w)
{
    buf->len = (size_t) (w->p - buf->data);
}

#define TASK_FIXED (1 + 16 * 3 + 1 + 6 + 4 + 8 * 12)

int rc_jrecord_put_task(rc_buf_t *buf, const rc_jtask_t *t)
{
    wr_t w;
    size_t n = TASK_FIXED + 5 * 4 + t->fn.len + t->ns.len + t->spec.len + t->error.len + t->result.len;
    if (begin(buf, n, &w) != 0)
        return -1;
    w8(&w, RC_JRECORD_FORMAT);
    wraw(&w, t->ref, 16);
    wraw(&w, t->key, 16);
    wraw(&w, t->idem, 16);
    w8(&w, t->has_idem);
    w8(&w, t->state);
    w8(&w, t->flags);
    w8(&w, t->error_code);
    w8(&w, t->attempt);
    w8(&w, t->max_retries);
    w8(&w, t->hstate);
    w32(&w, t->ttl_s);
    w64(&w, t->owner);
    w64(&w, t->seq);
    w64(&w, t->created_us);
    w64(&w, t->started_us);
    w64(&w, t->finished_us);
    w64(&w, t->stopped_us);
    w64(&w, t->deadline_us);
    w64(&w, t->own_left_us);
    w64(&w, t->progress_done);
    w64(&w, t->progress_total);
    w64(&w, 0); /* room for what a later format adds, read as 0 */
    w64(&w, 0);
    wbytes(&w, t->fn);
    wbytes(&w, t->ns);
    wbytes(&w, t->spec);
    wbytes(&w, t->error);
    wbytes(&w, t->result);
    end(buf, &w);
    return 0;
}

#define HANDLE_FIXED (1 + 16 * 3 + 1 + 1 + 4 + 8 * 4)

int rc_jrecord_put_handle(rc_buf_t *buf, const rc_jhandle_t *h)
{
    wr_t w;
    if (begin(buf, HANDLE_FIXED, &w) != 0)
        return -1;
    w8(&w, RC_JRECORD_FORMAT);
    wraw(&w, h->ref, 16);
    wraw(&w, h->task, 16);
    wraw(&w, h->idem, 16);
    w8(&w, h->has_idem);
    w8(&w, h->state);
    w32(&w, h->ttl_s);
    w64(&w, h->owner);
    w64(&w, h->created_us);
    w64(&w, h->left_us);
    w64(&w, h->deadline_us);
    end(buf, &w);
    return 0;
}

int rc_jrecord_put_function(rc_buf_t *buf, bool cacheable)
{
    wr_t w;
    if (begin(buf, 2, &w) != 0)
        return -1;
    w8(&w, RC_JRECORD_FORMAT);
    w8(&w, cacheable);
    end(buf, &w);
    return 0;
}

/* ---------------------------------------------------------------- reading */

typedef struct {
    const uint8_t *p, *end;
    bool short_;
} rd_t;

static const uint8_t *take(rd_t *r, size_t n)
{
    if ((size_t) (r->end - r->p) < n) {
        r->short_ = true;
        return NULL;
    }
    const uint8_t *at = r->p;
    r->p += n;
    return at;
}

static uint8_t r8(rd_t *r)
{
    const uint8_t *p = take(r, 1);
    return p ? *p : 0;
}

static uint32_t r32(rd_t *r)
{
    const uint8_t *p = take(r, 4);
    uint32_t v = 0;
    for (int i = 0; p && i < 4; i++)
        v |= (uint32_t) p[i] << (8 * i);
    return v;
}

static uint64_t r64(rd_t *r)
{
    const uint8_t *p = take(r, 8);
    uint64_t v = 0;
    for (int i = 0; p && i < 8; i++)
        v |= (uint64_t) p[i] << (8 * i);
    return v;
}

static void rraw(rd_t *r, void *out, size_t n)
{
    const uint8_t *p = take(r, n);
    if (p)
        memcpy(out, p, n);
}

static rc_bytes_t rbytes(rd_t *r)
{
    uint32_t n = r32(r);
    const uint8_t *p = take(r, n);
    return p ? (rc_bytes_t){p, n} : (rc_bytes_t){NULL, 0};
}

static int start(rd_t *r, const uint8_t *blob, size_t len, const char **why)
{
    r->p = blob;
    r->end = blob + len;
    r->short_ = false;
    if (len == 0 || blob[0] != RC_JRECORD_FORMAT) {
        *why = len ? "a record of a format this build does not read" : "an empty record";
        return -1;
    }
    r->p++;
    return 0;
}

static int finish(const rd_t *r, const char **why)
{
    if (r->short_) {
        *why = "a record cut short";
        return -1;
    }
    return 0;
}

int rc_jrecord_task(const uint8_t *blob, size_t len, rc_jtask_t *t, const char **why)
{
    rd_t r;
    memset(t, 0, sizeof *t);
    if (start(&r, blob, len, why) != 0)
        return -1;
    rraw(&r, t->ref, 16);
    rraw(&r, t->key, 16);
    rraw(&r, t->idem, 16);
    t->has_idem = r8(&r);
    t->state = r8(&r);
    t->flags = r8(&r);
    t->error_code = r8(&r);
    t->attempt = r8(&r);
    t->max_retries = r8(&r);
    t->hstate = r8(&r);
    t->ttl_s = r32(&r);
    t->owner = r64(&r);
    t->seq = r64(&r);
    t->created_us = r64(&r);
    t->started_us = r64(&r);
    t->finished_us = r64(&r);
    t->stopped_us = r64(&r);
    t->deadline_us = r64(&r);
    t->own_left_us = r64(&r);
    t->progress_done = r64(&r);
    t->progress_total = r64(&r);
    (void) r64(&r);
    (void) r64(&r);
    t->fn = rbytes(&r);
    t->ns = rbytes(&r);
    t->spec = rbytes(&r);
    t->error = rbytes(&r);
    t->result = rbytes(&r);
    return finish(&r, why);
}

int rc_jrecord_handle(const uint8_t *blob, size_t len, rc_jhandle_t *h, const char **why)
{
    rd_t r;
    memset(h, 0, sizeof *h);
    if (start(&r, blob, len, why) != 0)
        return -1;
    rraw(&r, h->ref, 16);
    rraw(&r, h->task, 16);
    rraw(&r, h->idem, 16);
    h->has_idem = r8(&r);
    h->state = r8(&r);
    h->ttl_s = r32(&r);
    h->owner = r64(&r);
    h->created_us = r64(&r);
    h->left_us = r64(&r);
    h->deadline_us = r64(&r);
    return finish(&r, why);
}

int rc_jrecord_function(const uint8_t *blob, size_t len, bool *cacheable, const char **why)
{
    rd_t r;
    if (start(&r, blob, len, why) != 0)
        return -1;
    *cacheable = r8(&r);
    return finish(&r, why);
}
