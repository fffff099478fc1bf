/* rc_store_compact: what reads segments back after open — compaction, which
 * rewrites a wasteful row in place with only its live records (merging small
 * neighbours into it, so the write order of the latest versions is kept), one
 * bounded step at a time in the writer thread; and recovery's pass, which
 * hands the caller each live record in write order. */
#include "rc_store_int.h"

#include <stdlib.h>
#include <string.h>

/* A row under this is small: merged with its small neighbours. Rows above
 * it cost SQLite no more than one row each, so they are left as they are
 * until they hold dead records: a larger bound made every byte of a busy
 * broker's store (a row per commit, tens of KiB) be rewritten several times
 * as rows were merged up to it, the writer's largest cost. */
#define SMALL_ROW (RC_STORE_SEG_TARGET / 64)

/* Worth a step: dead bytes beyond half the live ones (so the store stays
 * under ~1.5x its live data, plus a few segments of slack), or many more
 * rows than the bytes need (small groups at a low rate make small rows).
 * When dead bytes are beyond half the live ones, some row is less than two
 * thirds live: that is what a step looks for, so a step always finds one. */
bool rc_store_disk_compact_wanted(rc_store_t *self)
{
    uint64_t dead = self->stored_bytes - self->live_bytes;
    if (dead > self->live_bytes / 2 + 4ull * RC_STORE_SEG_TARGET)
        return true;
    return self->st.segments > 64 && self->st.segments > 16 + self->stored_bytes / (SMALL_ROW);
}

static rc_store_seg_t *next_seg(rc_store_t *self, size_t i)
{
    for (i++; i < self->nsegs; i++)
        if (!self->segs[i].gone)
            return &self->segs[i];
    return NULL;
}

/* A row to rewrite: under two thirds live; or small, followed by small rows
 * holding at least as much as it does (so that merging at least doubles
 * it: each byte is rewritten a few times, not once per small row). */
static bool wasteful(rc_store_t *self, size_t i)
{
    rc_store_seg_t *s = &self->segs[i];
    if (s->gone || s->bad)
        return false;
    if ((uint64_t) s->live * 3 < (uint64_t) s->bytes * 2)
        return true;
    if (s->bytes >= SMALL_ROW)
        return false;
    uint64_t after = 0;
    rc_store_seg_t *n = next_seg(self, i);
    for (int k = 0; n && k < 64 && !n->bad && n->bytes < SMALL_ROW; k++) {
        after += n->live;
        if (after >= s->live)
            return true;
        n = next_seg(self, (size_t) (n - self->segs));
    }
    return false;
}

/* Rows merged into one in a step, at most (and at most 4 segments read). */
#define MERGE_MAX 1024

typedef struct {
    rc_store_kent_t **kept;
    size_t nkept, cap;
} kept_t;

/* Appends the live records of one row to the compaction buffer (re-encoded
 * against base), and settles the index for the dead ones. */
static int filter_row(rc_store_t *self, uint64_t id, uint64_t dest, uint64_t *base, size_t *clen, kept_t *k,
                      uint64_t *read)
{
    sqlite3_stmt *st = self->st_one;
    sqlite3_bind_int64(st, 1, (sqlite3_int64) id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
    }
    uint32_t crc = (uint32_t) sqlite3_column_int64(st, 0);
    const uint8_t *data = sqlite3_column_blob(st, 1);
    size_t len = (size_t) sqlite3_column_bytes(st, 1);
    *read += len;
    if (len < 8 || rc_store_crc32c(data, len) != crc) {
        sqlite3_reset(st);
        return SQLITE_CORRUPT;
    }
    uint64_t b = rc_store_le64(data);
    if (*clen == 0) {
        *base = b;
        memcpy(self->cbuf, data, 8);
        *clen = 8;
    }
    size_t pos = 8;
    rc_store_rec_t rec;
    while (rc_store_rec_next(data, len, &pos, b, &rec) == 1) {
        rc_store_kent_t *e = rc_store_kd_find(self, rec.key, rec.klen, rc_store_hash(rec.key, rec.klen));
        bool head = e && (e->flags & RC_KE_HEAD) && e->ver == rec.ver;
        if (!head) {
            /* A superseded record: one fewer copy shadowed by the head; a
             * tombstone that shadows nothing any more stops counting. */
            if (e && e->shadow > 0 && --e->shadow == 0 && (e->flags & RC_KE_TOMB))
                rc_store_uncount(self, e);
            continue;
        }
        if ((e->flags & RC_KE_TOMB) && e->shadow == 0) {
            rc_store_kd_remove(self, e);
            continue;
        }
        if (k->nkept == k->cap) {
            size_t cap = k->cap ? k->cap * 2 : 1024;
            rc_store_kent_t **p = realloc(k->kept, cap * sizeof *p);
            if (!p) {
                sqlite3_reset(st);
                return SQLITE_NOMEM;
            }
            k->kept = p;
            k->cap = cap;
        }
        size_t need = *clen + rc_store_rec_bound(rec.klen, rec.blen);
        if (need > self->cbuf_cap) {
            size_t c = self->cbuf_cap * 2;
            while (c < need)
                c *= 2;
            uint8_t *p = realloc(self->cbuf, c);
            if (!p) {
                sqlite3_reset(st);
                return SQLITE_NOMEM;
            }
            self->cbuf = p;
            self->cbuf_cap = c;
        }
        size_t n = rc_store_rec_encode(self->cbuf + *clen, rec.kind, rec.ver - *base, rec.key, rec.klen,
                                       rec.blob, rec.blen);
        *clen += n;
        e->seg = dest;
        /* Keep the counted length in step with the re-encoded record. */
        if (e->flags & RC_KE_COUNTED) {
            rc_store_seg_t *s = rc_store_seg_find(self, id);
            if (s)
                s->live = s->live + (uint32_t) n - e->rlen;
            self->live_bytes = self->live_bytes + n - e->rlen;
        }
        e->rlen = (uint32_t) n;
        k->kept[k->nkept++] = e;
    }
    sqlite3_reset(st);
    return SQLITE_OK;
}

/* One step: find (from the cursor, looking at no more than 64 rows) a row to
 * rewrite (see wasteful); rewrite it with its live records and those of the
 * following rows while they fit in one segment; delete the rows merged into
 * it. Reads at most about four segments' worth and 1024 rows. Returns 0 (bytes_read 0: nothing to do) or a
 * code. */
int rc_store_disk_compact_step(rc_store_t *self, uint64_t *bytes_read)
{
    *bytes_read = 0;
    if (!self->nsegs)
        return 0;
    size_t i = rc_store_seg_index(self, self->cursor), looked = 0;
    if (i >= self->nsegs)
        i = 0;
    while (looked < 64 && looked < self->nsegs && !wasteful(self, i)) {
        looked++;
        if (++i >= self->nsegs)
            i = 0;
    }
    if (looked >= 64 || looked >= self->nsegs) {
        self->cursor = self->segs[i].id;
        return 0;
    }
    if (!self->cbuf && !(self->cbuf = malloc(self->cbuf_cap = 2 * RC_STORE_SEG_TARGET)))
        return RC_STORE_ENOMEM;
    uint64_t dest = self->segs[i].id, base = 0, merged[MERGE_MAX];
    size_t clen = 0, nmerged = 0;
    kept_t k = {0};
    int rc =
        sqlite3_exec(self->db, self->opt.relaxed ? "BEGIN" : "PRAGMA synchronous=NORMAL; BEGIN", 0, 0, 0);
    if (rc == SQLITE_OK)
        rc = filter_row(self, dest, dest, &base, &clen, &k, bytes_read);
    size_t j = i;
    while (rc == SQLITE_OK && nmerged < MERGE_MAX && *bytes_read < 4 * RC_STORE_SEG_TARGET) {
        rc_store_seg_t *n = next_seg(self, j);
        if (!n || n->bad || clen + n->live > RC_STORE_SEG_TARGET)
            break;
        j = (size_t) (n - self->segs);
        rc = filter_row(self, n->id, dest, &base, &clen, &k, bytes_read);
        if (rc == SQLITE_OK)
            merged[nmerged++] = n->id;
    }
    sqlite3_stmt *st = clen > 8 ? self->st_upd : self->st_del;
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64) dest);
        if (clen > 8) {
            sqlite3_bind_int64(st, 2, rc_store_crc32c(self->cbuf, clen));
            sqlite3_bind_blob(st, 3, self->cbuf, (int) clen, SQLITE_STATIC);
        }
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(self->db);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    for (size_t m = 0; m < nmerged && rc == SQLITE_OK; m++) {
        sqlite3_bind_int64(self->st_del, 1, (sqlite3_int64) merged[m]);
        rc = sqlite3_step(self->st_del) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(self->db);
        sqlite3_reset(self->st_del);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(self->db, "COMMIT", 0, 0, 0);
    if (!self->opt.relaxed)
        sqlite3_exec(self->db, "PRAGMA synchronous=FULL", 0, 0, 0);
    if (rc != SQLITE_OK) {
        free(k.kept);
        if ((rc & 0xff) == SQLITE_CORRUPT) {
            /* A row that fails its checksum after open: leave it alone. */
            rc_store_seg_t *s = rc_store_seg_find(self, dest);
            if (s)
                s->bad = 1;
        }
        rc_store_set_error(self, "%s: compaction: %s", self->path, sqlite3_errmsg(self->db));
        if (!sqlite3_get_autocommit(self->db))
            sqlite3_exec(self->db, "ROLLBACK", 0, 0, 0);
        return rc_store_code_of(rc) ? rc_store_code_of(rc) : RC_STORE_EIO;
    }
    /* The rows' totals: dest now holds clen bytes, of them the counted kept
     * records; the merged rows are gone. */
    rc_store_seg_t *d = rc_store_seg_find(self, dest);
    uint64_t live = 0;
    for (size_t m = 0; m < k.nkept; m++)
        if (k.kept[m]->flags & RC_KE_COUNTED)
            live += k.kept[m]->rlen;
    free(k.kept);
    self->live_bytes -= d->live;
    self->stored_bytes -= d->bytes;
    for (size_t m = 0; m < nmerged; m++)
        rc_store_seg_drop(self, rc_store_seg_find(self, merged[m]));
    if (clen > 8) {
        d->bytes = (uint32_t) clen;
        d->live = (uint32_t) live;
        self->live_bytes += live;
        self->stored_bytes += clen;
    } else {
        d->bytes = d->live = 0;
        rc_store_seg_drop(self, d);
    }
    self->cursor = dest + 1;
    self->st.compaction_steps++;
    self->st.compaction_bytes_read += *bytes_read;
    self->st.live_records = self->live_records;
    return 0;
}

/* Recovery's pass: every segment the scan took, in id order, read on its
 * own; of each, the records that are the head of their key and not deletes. */
int rc_store_disk_recover(rc_store_t *self, rc_store_visit_fn *visit, void *arg)
{
    for (size_t i = 0; i < self->nsegs; i++) {
        if (self->segs[i].gone)
            continue;
        uint64_t id = self->segs[i].id;
        sqlite3_stmt *st = self->st_one;
        sqlite3_bind_int64(st, 1, (sqlite3_int64) id);
        int rc = sqlite3_step(st);
        const uint8_t *data = rc == SQLITE_ROW ? sqlite3_column_blob(st, 1) : NULL;
        size_t len = rc == SQLITE_ROW ? (size_t) sqlite3_column_bytes(st, 1) : 0;
        if (!data || len < 8 || rc_store_crc32c(data, len) != (uint32_t) sqlite3_column_int64(st, 0)) {
            rc_store_set_error(self, "%s: damaged refcache store: segment %llu cannot be read again: %s",
                               self->path, (unsigned long long) id,
                               rc == SQLITE_ROW ? "checksum mismatch" : sqlite3_errmsg(self->db));
            sqlite3_reset(st);
            return RC_STORE_ECORRUPT;
        }
        size_t pos = 8;
        rc_store_rec_t rec;
        uint64_t base = rc_store_le64(data);
        while (rc_store_rec_next(data, len, &pos, base, &rec) == 1) {
            if (rec.kind != RC_STORE_REC_PUT)
                continue;
            rc_store_kent_t *e = rc_store_kd_find(self, rec.key, rec.klen, rc_store_hash(rec.key, rec.klen));
            if (!e || e->ver != rec.ver)
                continue;
            int r = visit(arg, rec.key, rec.klen, rec.blob, rec.blen);
            if (r) {
                sqlite3_reset(st);
                return r;
            }
        }
        sqlite3_reset(st);
    }
    return 0;
}
