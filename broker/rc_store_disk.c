/* rc_store_disk: everything of the store that talks to SQLite — opening a file
 * and deciding whether it is a refcache store of a version this build reads,
 * the scan that rebuilds the key index from every segment (checking each
 * segment's CRC), the group commit of a batch (coalescing several puts of a
 * key), compaction in bounded steps, checkpoints, and recovery's second pass.
 * Called from the opening thread before the writer starts, then only from
 * the writer thread. */
#include "rc_store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

int rc_store_code_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return RC_STORE_OK;
    case SQLITE_NOTADB:
        return RC_STORE_ENOTSTORE;
    case SQLITE_CORRUPT:
        return RC_STORE_ECORRUPT;
    case SQLITE_FULL:
        return RC_STORE_ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return RC_STORE_EBUSY;
    case SQLITE_NOMEM:
        return RC_STORE_ENOMEM;
    default:
        return RC_STORE_EIO;
    }
}

/* SQLite reports a write refused for want of room as an I/O error (not
 * SQLITE_FULL) when the file size limit (EFBIG) or a quota refused it, and
 * its errno is gone by then: look at the room itself. */
static const char *out_of_room(rc_store_t *self)
{
    struct rlimit rl;
    struct stat sb;
    char wal[4200];
    snprintf(wal, sizeof wal, "%.4000s-wal", self->path);
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        if ((stat(self->path, &sb) == 0 && (uint64_t) sb.st_size + 2 * 65536 > rl.rlim_cur) ||
            (stat(wal, &sb) == 0 && (uint64_t) sb.st_size + 2 * 65536 > rl.rlim_cur))
            return "the file size limit (RLIMIT_FSIZE) is reached";
    struct statvfs vs;
    if (statvfs(self->path, &vs) == 0 && (uint64_t) vs.f_bavail * vs.f_frsize < 2 * 65536)
        return "no space left on the device";
    return NULL;
}

/* Sets the message from SQLite's and returns the store code of rc. */
static int fail(rc_store_t *self, int rc, const char *what)
{
    int code = rc_store_code_of(rc);
    const char *msg = self->db ? sqlite3_errmsg(self->db) : sqlite3_errstr(rc);
    const char *room = code == RC_STORE_EIO ? out_of_room(self) : NULL;
    if (room) {
        code = RC_STORE_ENOSPC;
        msg = room;
    }
    if (code == RC_STORE_EBUSY)
        rc_store_set_error(self, "%s: the store is in use by another process (%s)", self->path, msg);
    else if (code == RC_STORE_ECORRUPT)
        rc_store_set_error(self, "%s: damaged refcache store: %s: %s", self->path, what, msg);
    else
        rc_store_set_error(self, "%s: %s: %s", self->path, what, msg);
    return code ? code : RC_STORE_EIO;
}

static int exec(rc_store_t *self, const char *sql)
{
    return sqlite3_exec(self->db, sql, NULL, NULL, NULL);
}

static int query_int(rc_store_t *self, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(self->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_NOTFOUND;
    }
    sqlite3_finalize(st);
    return rc;
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    ((rc_store_t *) arg)->wal_pages = pages;
    return SQLITE_OK;
}

/* A new file gets the header marks, WAL and the table in one go. */
static int create_schema(rc_store_t *self)
{
    char sql[256];
    unsigned ps = self->opt.page_size;
    if (ps < 4096 || ps > 65536 || (ps & (ps - 1)))
        ps = RC_STORE_PAGE_SIZE;
    snprintf(sql, sizeof sql, "PRAGMA page_size=%u", ps);
    int rc = exec(self, sql);
    if (rc == SQLITE_OK)
        rc = exec(self, "PRAGMA journal_mode=WAL");
    if (rc != SQLITE_OK)
        return fail(self, rc, "cannot create the store");
    snprintf(sql, sizeof sql,
             "BEGIN; PRAGMA application_id=%d; PRAGMA user_version=%d;"
             "CREATE TABLE seg(id INTEGER PRIMARY KEY, crc INTEGER NOT NULL, data BLOB NOT NULL); COMMIT",
             RC_STORE_APP_ID, RC_STORE_VERSION);
    rc = exec(self, sql);
    if (rc != SQLITE_OK) {
        int code = fail(self, rc, "cannot create the store");
        exec(self, "ROLLBACK");
        return code;
    }
    return 0;
}

/* An existing file must say it is a refcache store of a version we read. */
static int check_schema(rc_store_t *self)
{
    int64_t app = 0, ver = 0, has_table = 0;
    int rc = query_int(self, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK)
        rc = query_int(self, "PRAGMA user_version", &ver);
    if ((rc & 0xff) == SQLITE_NOTADB) {
        rc_store_set_error(self, "%s: not a refcache store: not a SQLite database (%s)", self->path,
                           sqlite3_errmsg(self->db));
        return RC_STORE_ENOTSTORE;
    }
    if (rc != SQLITE_OK)
        return fail(self, rc, "cannot read the store's header");
    if ((uint32_t) app != RC_STORE_APP_ID) {
        rc_store_set_error(self,
                           "%s: not a refcache store: a SQLite database of another application "
                           "(application_id 0x%08x)",
                           self->path, (unsigned) app);
        return RC_STORE_ENOTSTORE;
    }
    if (ver > RC_STORE_VERSION) {
        rc_store_set_error(self,
                           "%s: the store has format version %lld, newer than this build reads (%d): "
                           "upgrade refcache",
                           self->path, (long long) ver, RC_STORE_VERSION);
        return RC_STORE_EVERSION;
    }
    if (ver < 1) {
        rc_store_set_error(self, "%s: not a refcache store: format version %lld", self->path,
                           (long long) ver);
        return RC_STORE_ENOTSTORE;
    }
    rc = query_int(self, "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='seg'", &has_table);
    if (rc != SQLITE_OK)
        return fail(self, rc, "cannot read the store's schema");
    if (!has_table) {
        rc_store_set_error(self, "%s: damaged refcache store: its table of segments is missing", self->path);
        return RC_STORE_ECORRUPT;
    }
    return 0;
}

int rc_store_disk_open(rc_store_t *self, bool created)
{
    int flags = SQLITE_OPEN_NOMUTEX |
                (self->opt.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(self->path, &self->db, flags, NULL);
    if (rc != SQLITE_OK)
        return fail(self, rc, "cannot open");
    sqlite3_extended_result_codes(self->db, 1);
    /* Exclusive locking: one process per store (a second broker gets
     * RC_STORE_EBUSY), and the WAL index lives in the heap, not in a -shm
     * file that a full disk could refuse. A read-only open (salvage) keeps
     * the normal mode, which SQLite needs to read a WAL database it may not
     * write. */
    rc = self->opt.read_only ? SQLITE_OK : exec(self, "PRAGMA locking_mode=EXCLUSIVE");
    if (rc != SQLITE_OK)
        return fail(self, rc, "cannot set the locking mode");
    int code = created ? create_schema(self) : check_schema(self);
    if (code)
        return code;
    if (!self->opt.read_only) {
        char mode[16] = "";
        sqlite3_stmt *st;
        rc = sqlite3_prepare_v2(self->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            snprintf(mode, sizeof mode, "%s", (const char *) sqlite3_column_text(st, 0));
            rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_OK)
            return fail(self, rc, "cannot switch to WAL");
        if (strcmp(mode, "wal") != 0) {
            rc_store_set_error(self, "%s: cannot switch to WAL (journal mode stays %s)", self->path, mode);
            return RC_STORE_EIO;
        }
        /* Take the write lock now, so that a store in use fails here. */
        rc = exec(self, "BEGIN IMMEDIATE");
        if (rc == SQLITE_OK)
            rc = exec(self, "COMMIT");
        if (rc != SQLITE_OK) {
            if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
                rc_store_set_error(self, "%s: the store is in use by another process", self->path);
                return RC_STORE_EBUSY;
            }
            return fail(self, rc, "cannot lock the store");
        }
    }
    rc = exec(self, self->opt.relaxed ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL");
    if (rc == SQLITE_OK)
        rc = exec(self, "PRAGMA cache_size=-16384");
    int64_t ps = 4096;
    if (rc == SQLITE_OK)
        rc = query_int(self, "PRAGMA page_size", &ps);
    if (rc != SQLITE_OK)
        return fail(self, rc, "cannot configure the connection");
    self->page_size = (uint32_t) ps;
    /* Our own hook replaces the automatic checkpoint: the writer checkpoints
     * after publishing the durable mark, not inside a commit. */
    sqlite3_wal_hook(self->db, wal_hook, self);
    const char *sql[] = {"INSERT INTO seg(id, crc, data) VALUES(?1, ?2, ?3)",
                         "UPDATE seg SET crc = ?2, data = ?3 WHERE id = ?1", "DELETE FROM seg WHERE id = ?1",
                         "SELECT crc, data FROM seg WHERE id = ?1",
                         "SELECT id, crc, data FROM seg WHERE id > ?1 ORDER BY id"};
    sqlite3_stmt **st[] = {&self->st_ins, &self->st_upd, &self->st_del, &self->st_one, &self->st_scan};
    for (int i = 0; i < 5; i++) {
        rc = sqlite3_prepare_v3(self->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, st[i], NULL);
        if (rc != SQLITE_OK)
            return fail(self, rc, "cannot prepare a statement");
    }
    return 0;
}

void rc_store_disk_close(rc_store_t *self)
{
    sqlite3_stmt *st[] = {self->st_ins, self->st_upd, self->st_del, self->st_one, self->st_scan};
    for (int i = 0; i < 5; i++)
        sqlite3_finalize(st[i]);
    self->st_ins = self->st_upd = self->st_del = self->st_one = self->st_scan = NULL;
    if (self->db)
        sqlite3_close(self->db);
    self->db = NULL;
}

/* Checks a segment whole before anything of it is used: its CRC, that every
 * record parses, that versions only grow. Returns NULL or what is wrong. */
static const char *check_segment(const uint8_t *data, size_t len, uint32_t crc, uint64_t after_ver)
{
    if (len < 8)
        return "shorter than its header";
    if (rc_store_crc32c(data, len) != crc)
        return "checksum mismatch";
    size_t pos = 8;
    rc_store_rec_t rec;
    int r;
    uint64_t base = rc_store_le64(data), last = after_ver;
    while ((r = rc_store_rec_next(data, len, &pos, base, &rec)) == 1) {
        if (rec.ver <= last)
            return "record versions out of order";
        last = rec.ver;
    }
    return r < 0 ? "a record does not parse" : NULL;
}

/* Takes one row into the index (after checking it whole). Returns 0, 1 when
 * the row is damaged and skipped (salvage), or a code. */
static int scan_row(rc_store_t *self, uint64_t id, uint32_t crc, const uint8_t *data, size_t len)
{
    const char *bad = check_segment(data, len, crc, self->max_ver);
    if (bad) {
        if (!self->salvaging) {
            rc_store_set_error(self, "%s: damaged refcache store: segment %llu: %s", self->path,
                               (unsigned long long) id, bad);
            return RC_STORE_ECORRUPT;
        }
        self->salvage_skipped_segments++;
        return 1;
    }
    rc_store_seg_t *s = rc_store_seg_append(self, id);
    if (!s)
        return fail(self, SQLITE_NOMEM, "scanning");
    s->bytes = (uint32_t) len;
    self->stored_bytes += len;
    size_t pos = 8;
    rc_store_rec_t rec;
    uint64_t base = rc_store_le64(data);
    while (rc_store_rec_next(data, len, &pos, base, &rec) == 1) {
        rc_store_kent_t *e = rc_store_kd_get(self, rec.key, rec.klen, rc_store_hash(rec.key, rec.klen));
        if (!e)
            return fail(self, SQLITE_NOMEM, "scanning");
        rc_store_apply(self, e, &rec, id);
        self->max_ver = rec.ver;
    }
    return 0;
}

/* Salvage past a damaged b-tree: look every id up on its own (a lookup
 * whose path is intact still works), up to the largest id if it can be
 * read, else until 65536 ids in a row gave nothing. */
static int probe_rows(rc_store_t *self, uint64_t after, uint64_t *max_id)
{
    int64_t top = 0;
    bool known = query_int(self, "SELECT max(id) FROM seg", &top) == SQLITE_OK && top > 0;
    sqlite3_stmt *st = self->st_one;
    uint64_t last_found = after;
    for (uint64_t id = after + 1; known ? id <= (uint64_t) top : id - last_found <= 65536; id++) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64) id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            int r = scan_row(self, id, (uint32_t) sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
                             (size_t) sqlite3_column_bytes(st, 1));
            if (r > 1) {
                sqlite3_reset(st);
                return r;
            }
            *max_id = last_found = id;
        } else if (rc != SQLITE_DONE) {
            self->salvage_skipped_rows_unreadable++;
        }
        sqlite3_reset(st);
    }
    return 0;
}

/* Reads every segment in id order into the index. A damaged row or b-tree
 * fails the open with a message naming it, unless salvaging. */
int rc_store_disk_scan(rc_store_t *self)
{
    rc_store_kd_clear(self);
    rc_store_seg_clear(self);
    self->live_bytes = self->stored_bytes = self->live_records = 0;
    self->max_ver = 0;
    uint64_t last_id = 0;
    sqlite3_stmt *st = self->st_scan;
    sqlite3_bind_int64(st, 1, 0);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        last_id = (uint64_t) sqlite3_column_int64(st, 0);
        int r = scan_row(self, last_id, (uint32_t) sqlite3_column_int64(st, 1), sqlite3_column_blob(st, 2),
                         (size_t) sqlite3_column_bytes(st, 2));
        if (r > 1) {
            sqlite3_reset(st);
            return r;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        if (!self->salvaging) {
            char what[96];
            snprintf(what, sizeof what, "reading the segment after %llu", (unsigned long long) last_id);
            int code = fail(self, rc, what);
            return code == RC_STORE_EIO || code == RC_STORE_ENOTSTORE ? RC_STORE_ECORRUPT : code;
        }
        self->salvage_skipped_rows_unreadable++;
        int r = probe_rows(self, last_id, &last_id);
        if (r)
            return r;
    }
    self->next_ver = self->max_ver + 1;
    self->next_seg = last_id + 1;
    self->st.live_records = self->live_records;
    return 0;
}

/* ---- group commit ---- */

static int ensure(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 65536;
    while (c < need)
        c *= 2;
    uint8_t *p = realloc(*buf, c);
    if (!p)
        return -1;
    *buf = p;
    *cap = c;
    return 0;
}

typedef struct {
    rc_store_t *self;
    uint64_t seg, base;
    bool in_txn;
} batch_t;

static int flush_segment(batch_t *b)
{
    rc_store_t *self = b->self;
    int rc = SQLITE_OK;
    if (!b->in_txn) {
        rc = exec(self, "BEGIN");
        if (rc != SQLITE_OK)
            return rc;
        b->in_txn = true;
    }
    sqlite3_stmt *st = self->st_ins;
    sqlite3_bind_int64(st, 1, (sqlite3_int64) b->seg);
    sqlite3_bind_int64(st, 2, rc_store_crc32c(self->out, self->out_len));
    sqlite3_bind_blob(st, 3, self->out, (int) self->out_len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return rc;
    rc_store_seg_t *s = rc_store_seg_find(self, b->seg);
    s->bytes = (uint32_t) self->out_len;
    self->stored_bytes += self->out_len;
    b->seg = 0;
    return SQLITE_OK;
}

/* Encodes one record into the segment being built (starting one if needed). */
static int emit(batch_t *b, rc_store_kent_t *e, int kind, const uint8_t *key, size_t klen,
                const uint8_t *blob, size_t blen)
{
    rc_store_t *self = b->self;
    size_t need = rc_store_rec_bound(klen, blen);
    if (b->seg && self->out_len + need > RC_STORE_SEG_TARGET) {
        int rc = flush_segment(b);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (!b->seg) {
        if (!rc_store_seg_append(self, self->next_seg))
            return SQLITE_NOMEM;
        b->seg = self->next_seg++;
        b->base = self->next_ver;
        self->out_len = 8;
        if (ensure(&self->out, &self->out_cap, 8))
            return SQLITE_NOMEM;
        rc_store_put_le64(self->out, b->base);
    }
    if (ensure(&self->out, &self->out_cap, self->out_len + need))
        return SQLITE_NOMEM;
    rc_store_rec_t rec = {.kind = kind, .ver = self->next_ver++, .key = key, .klen = klen};
    rec.rlen = rc_store_rec_encode(self->out + self->out_len, kind, rec.ver - b->base, key, klen, blob, blen);
    self->out_len += rec.rlen;
    rc_store_apply(self, e, &rec, b->seg);
    self->st.records_written++;
    return SQLITE_OK;
}

/* Writes the groups as one transaction. Only the last operation of each key
 * in the batch is written; a delete of a key with nothing on disk writes
 * nothing. The index is updated as records are encoded: if the transaction
 * fails, the caller rebuilds it from disk (rc_store_disk_scan). */
int rc_store_disk_commit(rc_store_t *self, rc_store_group_t *groups)
{
    size_t nops = 0;
    for (rc_store_group_t *g = groups; g; g = g->next)
        nops += g->nops;
    if (nops > self->op_cap) {
        rc_store_kent_t **p = realloc(self->op_ent, nops * sizeof *p);
        const uint8_t **q = p ? realloc(self->op_ptr, nops * sizeof *q) : NULL;
        uint32_t *h = q ? realloc(self->op_hash, nops * sizeof *h) : NULL;
        if (p)
            self->op_ent = p;
        if (q)
            self->op_ptr = q;
        if (h)
            self->op_hash = h;
        if (!h)
            return fail(self, SQLITE_NOMEM, "committing");
        self->op_cap = nops;
    }
    size_t i = 0;
    for (rc_store_group_t *g = groups; g; g = g->next) {
        for (size_t pos = 0; pos < g->len; i++) {
            const uint8_t *op = g->data + pos;
            uint32_t blen;
            memcpy(&blen, op + 2, 4);
            self->op_ptr[i] = op;
            pos += RC_STORE_OP_HEAD + op[1] + blen;
        }
    }
    /* The index is far bigger than the caches: hash a few operations ahead
     * and prefetch their slots, then look them up. */
    for (size_t c = 0; c < nops; c += 16) {
        size_t end = c + 16 < nops ? c + 16 : nops;
        for (size_t j = c; j < end; j++) {
            const uint8_t *op = self->op_ptr[j];
            self->op_hash[j] = rc_store_hash(op + RC_STORE_OP_HEAD, op[1]);
            rc_store_kd_prefetch(self, self->op_hash[j]);
        }
        for (size_t j = c; j < end; j++) {
            const uint8_t *op = self->op_ptr[j];
            rc_store_kent_t *e = rc_store_kd_get(self, op + RC_STORE_OP_HEAD, op[1], self->op_hash[j]);
            if (!e)
                return fail(self, SQLITE_NOMEM, "committing");
            e->last = (uint32_t) j;
            self->op_ent[j] = e;
        }
    }
    batch_t b = {.self = self};
    int rc = SQLITE_OK;
    for (i = 0; i < nops && rc == SQLITE_OK; i++) {
        if (i + 8 < nops)
            __builtin_prefetch(self->op_ent[i + 8]);
        const uint8_t *op = self->op_ptr[i], *key = op + RC_STORE_OP_HEAD;
        uint32_t blen;
        memcpy(&blen, op + 2, 4);
        rc_store_kent_t *e = self->op_ent[i];
        if (e->last != i) {
            self->st.puts_coalesced++;
            continue;
        }
        if (op[0] == RC_STORE_REC_PUT)
            rc = emit(&b, e, RC_STORE_REC_PUT, key, op[1], key + op[1], blen);
        else if ((e->flags & RC_KE_HEAD) && !(e->flags & RC_KE_TOMB))
            rc = emit(&b, e, RC_STORE_REC_DEL, key, op[1], NULL, 0);
        if (!(e->flags & RC_KE_HEAD))
            rc_store_kd_remove(self, e);
    }
    if (rc == SQLITE_OK && b.seg)
        rc = flush_segment(&b);
    if (rc == SQLITE_OK && b.in_txn)
        rc = exec(self, "COMMIT");
    if (rc != SQLITE_OK) {
        int code = fail(self, rc, "writing a group");
        if (!sqlite3_get_autocommit(self->db))
            exec(self, "ROLLBACK");
        return code;
    }
    if (b.in_txn)
        self->st.transactions++;
    self->st.live_records = self->live_records;
    return 0;
}

int rc_store_disk_checkpoint(rc_store_t *self, bool truncate)
{
    int rc = sqlite3_wal_checkpoint_v2(
        self->db, NULL, truncate ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK)
        return fail(self, rc, "checkpointing");
    self->wal_pages = 0;
    return 0;
}

uint64_t rc_store_disk_file_bytes(rc_store_t *self)
{
    struct stat sb;
    uint64_t n = 0;
    char wal[4096];
    if (stat(self->path, &sb) == 0)
        n += (uint64_t) sb.st_size;
    snprintf(wal, sizeof wal, "%s-wal", self->path);
    if (stat(wal, &sb) == 0)
        n += (uint64_t) sb.st_size;
    return n;
}
