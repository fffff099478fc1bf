/* rc_listidx: the acceptance-ordered index of ref_ids that List pages
 * through (see rc_listidx.h). */
#include "rc_listidx.h"

#include <stdlib.h>
#include <string.h>

typedef rc_listidx_chunk_t chunk_t;

static size_t chunk_size(uint32_t cap)
{
    return sizeof(chunk_t) + (size_t) cap * (16 + sizeof(uint16_t));
}

static void chunk_point(chunk_t *c)
{
    c->ref = (uint8_t(*)[16])(c + 1);
    c->off = (uint16_t *) (c->ref + c->cap);
}

rc_listidx_t *rc_listidx_new(rc_listidx_live_fn *live, void *arg)
{
    rc_listidx_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->next = 1;
    self->is_live = live;
    self->arg = arg;
    return self;
}

void rc_listidx_destroy(rc_listidx_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rc_listidx_t *self = *self_p;
    for (size_t i = 0; i < self->nc; i++)
        free(self->chunks[i]);
    free(self->chunks);
    free(self);
    *self_p = NULL;
}

/* A new empty chunk at the end, taking appends from position base. */
static chunk_t *chunk_push(rc_listidx_t *self, uint64_t base, uint64_t created_us)
{
    if (self->nc == self->cap_c) {
        size_t cap = self->cap_c ? self->cap_c * 2 : 64;
        chunk_t **chunks = realloc(self->chunks, cap * sizeof *chunks);
        if (!chunks)
            return NULL;
        self->chunks = chunks;
        self->bytes += (cap - self->cap_c) * sizeof *chunks;
        self->cap_c = cap;
    }
    chunk_t *c = malloc(chunk_size(RC_LISTIDX_CHUNK));
    if (!c)
        return NULL;
    c->base = base;
    c->first_us = c->last_us = created_us;
    c->n = 0;
    c->cap = RC_LISTIDX_CHUNK;
    chunk_point(c);
    self->chunks[self->nc++] = c;
    self->tail = c;
    self->bytes += chunk_size(c->cap);
    return c;
}

int rc_listidx_add_chunk(rc_listidx_t *self, const uint8_t ref[16], uint64_t created_us)
{
    if (!chunk_push(self, self->next, created_us))
        return -1;
    return rc_listidx_add(self, ref, created_us); /* it has room now */
}

/* Gives a swept chunk's unused room back. Without memory for a smaller
 * block the chunk stays as it is. */
static void chunk_shrink(rc_listidx_t *self, size_t i)
{
    chunk_t *c = self->chunks[i];
    if (c->n == c->cap)
        return;
    memmove(c->ref + c->n, c->off, c->n * sizeof *c->off);
    size_t old = chunk_size(c->cap);
    c->cap = c->n;
    chunk_point(c);
    chunk_t *smaller = realloc(c, chunk_size(c->cap));
    if (smaller) {
        c = smaller;
        chunk_point(c);
        self->chunks[i] = c;
    }
    self->bytes -= old - chunk_size(c->cap);
}

/* Drops the dead entries of chunk i (not the last); a chunk left empty
 * goes. Returns whether chunk i is still there. */
static bool chunk_sweep(rc_listidx_t *self, size_t i)
{
    chunk_t *c = self->chunks[i];
    uint32_t w = 0;
    for (uint32_t r = 0; r < c->n; r++) {
        if (!self->is_live(self->arg, c->ref[r]))
            continue;
        if (w != r) {
            memcpy(c->ref[w], c->ref[r], 16);
            c->off[w] = c->off[r];
        }
        w++;
    }
    self->total -= c->n - w;
    c->n = w;
    if (w == 0) {
        self->bytes -= chunk_size(c->cap);
        free(c);
        memmove(&self->chunks[i], &self->chunks[i + 1], (self->nc - i - 1) * sizeof *self->chunks);
        self->nc--;
        return false;
    }
    chunk_shrink(self, i);
    return true;
}

void rc_listidx_gone(rc_listidx_t *self, size_t live)
{
    /* One record may take several refs with it (a task and its handles). */
    size_t deaths = self->live > live ? self->live - live : 1;
    self->live = live;
    /* While the dead are at most an eighth of the entries, nothing. */
    if (self->live >= self->total || (self->total - self->live) * 8 <= self->total || !self->nc)
        return;
    self->credit += RC_LISTIDX_SWEEP * deaths;
    if (self->credit > 2 * RC_LISTIDX_CHUNK)
        self->credit = 2 * RC_LISTIDX_CHUNK;
    if (self->at + 1 >= self->nc)
        self->at = 0;
    if (self->at + 1 >= self->nc)
        return; /* only the last chunk: it is not swept */
    uint32_t need = self->chunks[self->at]->n ? self->chunks[self->at]->n : 1;
    if (self->credit < need)
        return;
    /* One chunk per call at most: the burst is bounded by a chunk. */
    self->credit -= need;
    if (chunk_sweep(self, self->at))
        self->at++;
}

/* The index of the first chunk whose base is at least pos. */
static size_t chunk_from(const rc_listidx_t *self, uint64_t pos)
{
    size_t lo = 0, hi = self->nc;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->chunks[mid]->base < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* How many entries of c lie below position pos. */
static uint32_t entries_below(const chunk_t *c, uint64_t pos)
{
    if (pos - c->base > UINT16_MAX)
        return c->n;
    uint16_t rel = (uint16_t) (pos - c->base);
    uint32_t lo = 0, hi = c->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->off[mid] < rel)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint64_t rc_listidx_scan(rc_listidx_t *self, uint64_t before, uint64_t after_us, size_t budget,
                         rc_listidx_visit_fn *visit, void *arg)
{
    if (!self->nc)
        return 0;
    size_t ci;
    uint32_t k;
    if (before == 0 || before >= self->next) {
        ci = self->nc - 1;
        k = self->chunks[ci]->n;
        before = self->next;
    } else {
        ci = chunk_from(self, before);
        if (ci == 0)
            return 0;
        ci--;
        k = entries_below(self->chunks[ci], before);
    }
    uint64_t last = before;
    for (;;) {
        const chunk_t *c = self->chunks[ci];
        if (after_us && c->last_us < after_us)
            return 0;
        while (k > 0) {
            if (budget == 0)
                return last;
            budget--;
            k--;
            last = c->base + c->off[k];
            if (!visit(arg, c->ref[k]))
                return k == 0 && ci == 0 ? 0 : last; /* nothing older: no cursor */
        }
        if (ci == 0)
            return 0;
        k = self->chunks[--ci]->n;
    }
}

uint64_t rc_listidx_seek(rc_listidx_t *self, uint64_t created_us)
{
    size_t lo = 0, hi = self->nc;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->chunks[mid]->first_us <= created_us)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return 0;
    if (lo == self->nc)
        return self->next;
    return self->chunks[lo]->base; /* everything in the chunks before it */
}

size_t rc_listidx_entries(const rc_listidx_t *self)
{
    return self->total;
}

size_t rc_listidx_live(const rc_listidx_t *self)
{
    return self->live;
}

size_t rc_listidx_bytes(const rc_listidx_t *self)
{
    return self->bytes + sizeof *self;
}
