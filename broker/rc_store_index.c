/* rc_store_index: the store's in-memory side that needs no disk — the record
 * codec of a segment, the CRC-32C that guards each segment, the key index
 * (where each key's latest record lives, how many older records of it are
 * still on disk) and the segment table (bytes and live bytes per row), which
 * together tell compaction what it may drop. Owned by the writer thread. */
#include "rc_store_int.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc_soft(uint32_t c, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c;
}

#if defined(__x86_64__)
/* The SSE4.2 instruction computes CRC-32C at several GB/s, so checking every
 * segment on recovery costs little next to reading it. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t n)
{
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t) c64;
    while (n--)
        c = _mm_crc32_u8(c, *p++);
    return c;
}
#endif

uint32_t rc_store_crc32c(const uint8_t *p, size_t n)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return ~crc_hw(~0u, p, n);
#endif
    pthread_once(&crc_once, crc_init);
    return ~crc_soft(~0u, p, n);
}

uint32_t rc_store_hash(const uint8_t *key, size_t klen)
{
    /* A multiply-xorshift over 8-byte words: keys are short, often random. */
    uint64_t h = 0x9e3779b97f4a7c15ull ^ klen;
    while (klen >= 8) {
        uint64_t v;
        memcpy(&v, key, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        key += 8;
        klen -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, key, klen);
    h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return (uint32_t) (h ^ (h >> 32));
}

uint64_t rc_store_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void rc_store_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (uint8_t) v;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t) (v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t) v;
    return n;
}

static int get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= len)
            return -1;
        uint8_t b = p[(*pos)++];
        r |= (uint64_t) (b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

size_t rc_store_rec_bound(size_t klen, size_t blen)
{
    return 2 + 10 + 5 + klen + blen;
}

/* A record: kind, key length, version - segment base (varint), blob length
 * (varint, puts only), key, blob. */
size_t rc_store_rec_encode(uint8_t *dst, int kind, uint64_t ver_delta, const uint8_t *key, size_t klen,
                           const uint8_t *blob, size_t blen)
{
    size_t n = 0;
    dst[n++] = (uint8_t) kind;
    dst[n++] = (uint8_t) klen;
    n += put_varint(dst + n, ver_delta);
    if (kind == RC_STORE_REC_PUT)
        n += put_varint(dst + n, blen);
    memcpy(dst + n, key, klen);
    n += klen;
    if (kind == RC_STORE_REC_PUT && blen) {
        memcpy(dst + n, blob, blen);
        n += blen;
    }
    return n;
}

int rc_store_rec_next(const uint8_t *seg, size_t len, size_t *pos, uint64_t base, rc_store_rec_t *rec)
{
    size_t start = *pos;
    if (start == len)
        return 0;
    if (len - start < 3)
        return -1;
    rec->kind = seg[start];
    rec->klen = seg[start + 1];
    if ((rec->kind != RC_STORE_REC_PUT && rec->kind != RC_STORE_REC_DEL) || rec->klen == 0)
        return -1;
    size_t p = start + 2;
    uint64_t d, blen = 0;
    if (get_varint(seg, len, &p, &d) < 0 || d > UINT64_MAX - base)
        return -1;
    if (rec->kind == RC_STORE_REC_PUT && (get_varint(seg, len, &p, &blen) < 0 || blen > RC_STORE_BLOB_MAX))
        return -1;
    if (len - p < rec->klen || len - p - rec->klen < blen)
        return -1;
    rec->ver = base + d;
    rec->key = seg + p;
    rec->blob = seg + p + rec->klen;
    rec->blen = (size_t) blen;
    *pos = p + rec->klen + (size_t) blen;
    rec->rlen = *pos - start;
    return 1;
}

/* ---- the key index: open addressing with linear probing; each slot keeps
 * the key's hash beside the entry pointer, so a probe touches the entry only
 * when the hashes match (a miss costs one cache line, not a chain walk).
 * Growing is incremental: a new table twice the size takes the inserts while
 * every insert and removal moves 16 slots of the old one over (an old slot
 * moved or removed is marked, so that probes go on past it), so that no call
 * pays for rehashing a million keys at once. ---- */

#define KD_MOVED ((rc_store_kent_t *) 1)
#define KD_STEP  16

static rc_store_kent_t *find_in(rc_store_kslot_t *t, size_t n, const uint8_t *key, size_t klen, uint32_t hash,
                                size_t *slot)
{
    size_t mask = n - 1, i = hash & mask;
    for (;; i = (i + 1) & mask) {
        rc_store_kent_t *e = t[i].e;
        if (!e) {
            *slot = i;
            return NULL;
        }
        if (e != KD_MOVED && t[i].hash == hash && e->klen == klen && memcmp(e->key, key, klen) == 0) {
            *slot = i;
            return e;
        }
    }
}

static void place_new(rc_store_t *self, rc_store_kslot_t s)
{
    size_t mask = self->nbuckets - 1, i = s.hash & mask;
    while (self->buckets[i].e)
        i = (i + 1) & mask;
    self->buckets[i] = s;
}

static void migrate(rc_store_t *self)
{
    for (int k = 0; k < KD_STEP && self->old; k++) {
        if (self->old_cursor == self->nold) {
            free(self->old);
            self->old = NULL;
            self->nold = self->old_cursor = 0;
            break;
        }
        rc_store_kslot_t *s = &self->old[self->old_cursor++];
        if (s->e && s->e != KD_MOVED) {
            place_new(self, *s);
            s->e = KD_MOVED;
        }
    }
}

void rc_store_kd_prefetch(rc_store_t *self, uint32_t hash)
{
    if (self->nbuckets)
        __builtin_prefetch(&self->buckets[hash & (self->nbuckets - 1)]);
}

rc_store_kent_t *rc_store_kd_find(rc_store_t *self, const uint8_t *key, size_t klen, uint32_t hash)
{
    size_t slot;
    rc_store_kent_t *e =
        self->nbuckets ? find_in(self->buckets, self->nbuckets, key, klen, hash, &slot) : NULL;
    if (!e && self->old)
        e = find_in(self->old, self->nold, key, klen, hash, &slot);
    return e;
}

static int kd_grow(rc_store_t *self)
{
    while (self->old)
        migrate(self); /* never two migrations at once (cannot happen: see rc_store_kd_get) */
    size_t n = self->nbuckets ? self->nbuckets * 2 : 4096;
    rc_store_kslot_t *b = calloc(n, sizeof *b);
    if (!b)
        return -1;
    if (self->nbuckets) {
        self->old = self->buckets;
        self->nold = self->nbuckets;
        self->old_cursor = 0;
    }
    self->buckets = b;
    self->nbuckets = n;
    return 0;
}

rc_store_kent_t *rc_store_kd_get(rc_store_t *self, const uint8_t *key, size_t klen, uint32_t hash)
{
    /* At most 3/4 full, so probe runs stay short. A migration ends after
     * nold/16 inserts, long before the new table (twice the size) is 3/4 full. */
    if ((self->nkeys + 1) * 4 > self->nbuckets * 3 && kd_grow(self) < 0)
        return NULL;
    migrate(self);
    size_t slot;
    rc_store_kent_t *e = find_in(self->buckets, self->nbuckets, key, klen, hash, &slot);
    if (e)
        return e;
    size_t old_slot;
    if (self->old && (e = find_in(self->old, self->nold, key, klen, hash, &old_slot)))
        return e;
    e = malloc(sizeof *e + klen);
    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    e->hash = hash;
    e->klen = (uint8_t) klen;
    memcpy(e->key, key, klen);
    self->buckets[slot].hash = hash;
    self->buckets[slot].e = e;
    self->nkeys++;
    return e;
}

void rc_store_kd_remove(rc_store_t *self, rc_store_kent_t *e)
{
    migrate(self);
    size_t mask = self->nbuckets - 1, i = e->hash & mask;
    while (self->buckets[i].e && self->buckets[i].e != e)
        i = (i + 1) & mask;
    if (!self->buckets[i].e) {
        /* Not moved yet: mark its old slot, probes go on past it. */
        size_t omask = self->nold - 1, j = e->hash & omask;
        while (self->old && self->old[j].e && self->old[j].e != e)
            j = (j + 1) & omask;
        if (!self->old || !self->old[j].e)
            return;
        self->old[j].e = KD_MOVED;
        free(e);
        self->nkeys--;
        return;
    }
    free(e);
    self->nkeys--;
    /* Backward-shift deletion: pull later members of the run into the hole
     * when their home slot is not between the hole and them. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; self->buckets[j].e; j = (j + 1) & mask) {
        size_t home = self->buckets[j].hash & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            self->buckets[hole] = self->buckets[j];
            hole = j;
        }
    }
    self->buckets[hole].e = NULL;
    self->buckets[hole].hash = 0;
}

void rc_store_kd_clear(rc_store_t *self)
{
    for (size_t i = 0; i < self->nbuckets; i++)
        free(self->buckets[i].e);
    for (size_t i = 0; i < self->nold; i++)
        if (self->old[i].e != KD_MOVED)
            free(self->old[i].e);
    free(self->buckets);
    free(self->old);
    self->buckets = self->old = NULL;
    self->nbuckets = self->nkeys = self->nold = self->old_cursor = 0;
}

/* ---- the segment table: sorted by id (ids only grow), removed rows marked
 * and squeezed out once they are half of the table ---- */

size_t rc_store_seg_index(rc_store_t *self, uint64_t id)
{
    size_t lo = 0, hi = self->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->segs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

rc_store_seg_t *rc_store_seg_find(rc_store_t *self, uint64_t id)
{
    size_t lo = rc_store_seg_index(self, id);
    if (lo < self->nsegs && self->segs[lo].id == id && !self->segs[lo].gone)
        return &self->segs[lo];
    return NULL;
}

rc_store_seg_t *rc_store_seg_append(rc_store_t *self, uint64_t id)
{
    if (self->segs_gone > 64 && self->segs_gone * 2 > self->nsegs) {
        size_t j = 0;
        for (size_t i = 0; i < self->nsegs; i++)
            if (!self->segs[i].gone)
                self->segs[j++] = self->segs[i];
        self->nsegs = j;
        self->segs_gone = 0;
    }
    if (self->nsegs == self->segs_cap) {
        size_t cap = self->segs_cap ? self->segs_cap * 2 : 256;
        rc_store_seg_t *s = realloc(self->segs, cap * sizeof *s);
        if (!s)
            return NULL;
        self->segs = s;
        self->segs_cap = cap;
    }
    rc_store_seg_t *s = &self->segs[self->nsegs++];
    memset(s, 0, sizeof *s);
    s->id = id;
    self->st.segments++;
    return s;
}

void rc_store_seg_drop(rc_store_t *self, rc_store_seg_t *s)
{
    self->stored_bytes -= s->bytes;
    self->live_bytes -= s->live;
    s->gone = 1;
    s->bytes = s->live = 0;
    self->segs_gone++;
    self->st.segments--;
}

void rc_store_seg_clear(rc_store_t *self)
{
    free(self->segs);
    self->segs = NULL;
    self->nsegs = self->segs_cap = self->segs_gone = 0;
    self->st.segments = 0;
}

void rc_store_uncount(rc_store_t *self, rc_store_kent_t *e)
{
    if (!(e->flags & RC_KE_COUNTED))
        return;
    rc_store_seg_t *s = rc_store_seg_find(self, e->seg);
    if (s)
        s->live -= e->rlen;
    self->live_bytes -= e->rlen;
    e->flags &= (uint8_t) ~RC_KE_COUNTED;
}

void rc_store_apply(rc_store_t *self, rc_store_kent_t *e, const rc_store_rec_t *rec, uint64_t seg)
{
    bool was_put = (e->flags & RC_KE_HEAD) && !(e->flags & RC_KE_TOMB);
    if (e->flags & RC_KE_HEAD) {
        rc_store_uncount(self, e);
        e->shadow++;
    }
    e->ver = rec->ver;
    e->seg = seg;
    e->rlen = (uint32_t) rec->rlen;
    e->flags = RC_KE_HEAD;
    if (rec->kind == RC_STORE_REC_DEL) {
        e->flags |= RC_KE_TOMB;
        if (was_put)
            self->live_records--;
        if (e->shadow == 0)
            return; /* nothing older on disk: the tombstone is not needed */
    } else if (!was_put) {
        self->live_records++;
    }
    e->flags |= RC_KE_COUNTED;
    rc_store_seg_t *s = rc_store_seg_find(self, seg);
    if (s)
        s->live += e->rlen;
    self->live_bytes += e->rlen;
}
