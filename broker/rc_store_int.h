/* rc_store internals shared by its files: rc_store.c (the calling thread's
 * side, the queue, the writer thread, open and close), rc_store_index.c (the
 * record codec, checksums, the key index and the segment table),
 * rc_store_disk.c (SQLite: open and checks, the scan that rebuilds the index,
 * group commits), rc_store_compact.c (compaction, recovery's pass) and
 * rc_store_salvage.c. Nothing here is used outside the store. */
#ifndef RC_STORE_INT_H
#define RC_STORE_INT_H

#include "rc_store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>

/* What a refcache store says about itself in the SQLite header. */
#define RC_STORE_APP_ID  0x52435354 /* "RCST" */
#define RC_STORE_VERSION 1

/* A segment (one row) is closed once it holds this many bytes; compaction
 * merges neighbours up to it, and reads at most a few of them per step. */
#define RC_STORE_SEG_TARGET (1u << 20)
/* Checkpoint the WAL into the database once it holds this much. */
#define RC_STORE_WAL_CHECKPOINT (8u << 20)
/* Page size of a new store. */
#define RC_STORE_PAGE_SIZE 16384

/* Record kinds in a segment. */
enum { RC_STORE_REC_PUT = 1, RC_STORE_REC_DEL = 2 };

/* An operation in a group being built or queued: kind (1 byte), key length
 * (1 byte), blob length (4 bytes, native order), key, blob. */
#define RC_STORE_OP_HEAD 6

typedef struct rc_store_group {
    struct rc_store_group *next;
    uint64_t seq;
    uint8_t *data;
    size_t len, cap, charged; /* charged: what it counts against queue_max once queued */
    uint32_t nops;
} rc_store_group_t;

/* Index entry of a key: where its latest on-disk record (its head) is, and how
 * many older records of it are still on disk (shadowed). A delete's record
 * (tombstone) is needed, and counted live, only while shadowed records exist. */
enum { RC_KE_HEAD = 1, RC_KE_TOMB = 2, RC_KE_COUNTED = 4 };
typedef struct rc_store_kent {
    uint64_t ver, seg;
    uint32_t hash, rlen, shadow, last; /* last: index of its last op in the batch */
    uint8_t flags, klen;
    uint8_t key[];
} rc_store_kent_t;

typedef struct {
    uint32_t hash;
    rc_store_kent_t *e; /* NULL: a free slot */
} rc_store_kslot_t;

typedef struct {
    uint64_t id;
    uint32_t bytes, live; /* encoded bytes in the row; of them, live */
    uint8_t gone, bad;    /* row removed; row failed its checksum after open */
} rc_store_seg_t;

/* A record parsed out of a segment. */
typedef struct {
    int kind;
    uint64_t ver;
    const uint8_t *key, *blob;
    size_t klen, blen, rlen;
} rc_store_rec_t;

struct rc_store {
    char *path;
    rc_store_options_t opt;
    sqlite3 *db;
    sqlite3_stmt *st_ins, *st_upd, *st_del, *st_one, *st_scan;
    uint32_t page_size;
    bool salvaging; /* rc_store_salvage: damaged segments are skipped, not fatal */
    char salvage_note[256];
    uint64_t salvage_skipped_segments, salvage_skipped_rows_unreadable;

    /* The calling thread's side. */
    rc_store_group_t *building;
    uint64_t last_seq;
    bool started_local, wrote;

    /* Shared between the caller and the writer, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rc_store_group_t *q_head, *q_tail, *spare;
    int nspare;
    bool started, closing, thread_running;
    rc_store_stats_t pub;
    _Atomic size_t queued_bytes;
    _Atomic uint64_t durable;
    _Atomic int write_error;
    int efd;
    pthread_t thread;
    int close_code;

    /* The writer's own (and the opener's, before the thread starts). */
    rc_store_kslot_t *buckets, *old; /* old: the table being moved into buckets */
    size_t nbuckets, nkeys, nold, old_cursor;
    rc_store_seg_t *segs;
    size_t nsegs, segs_cap, segs_gone, cursor;
    uint64_t next_ver, next_seg, max_ver;
    uint64_t live_bytes, stored_bytes, live_records;
    rc_store_stats_t st; /* the writer's counters, published into pub */
    uint8_t *out;        /* the segment being encoded */
    size_t out_len, out_cap;
    uint8_t *cbuf; /* compaction output */
    size_t cbuf_cap;
    uint32_t *op_last; /* per op of a batch: the index entry */
    rc_store_kent_t **op_ent;
    const uint8_t **op_ptr;
    uint32_t *op_hash;
    size_t op_cap;
    int wal_pages;
    uint64_t last_sync_us;
    char errmsg[256];
};

/* rc_store_index.c */
uint32_t rc_store_crc32c(const uint8_t *p, size_t n);
uint32_t rc_store_hash(const uint8_t *key, size_t klen);
size_t rc_store_rec_encode(uint8_t *dst, int kind, uint64_t ver_delta, const uint8_t *key, size_t klen,
                           const uint8_t *blob, size_t blen);
size_t rc_store_rec_bound(size_t klen, size_t blen);
/* Parses the record at *pos of a segment (base version base); returns 1 and
 * advances, 0 at the end, -1 when the bytes are not a record. */
int rc_store_rec_next(const uint8_t *seg, size_t len, size_t *pos, uint64_t base, rc_store_rec_t *rec);
rc_store_kent_t *rc_store_kd_find(rc_store_t *self, const uint8_t *key, size_t klen, uint32_t hash);
void rc_store_kd_prefetch(rc_store_t *self, uint32_t hash);
rc_store_kent_t *rc_store_kd_get(rc_store_t *self, const uint8_t *key, size_t klen, uint32_t hash);
void rc_store_kd_remove(rc_store_t *self, rc_store_kent_t *e);
void rc_store_kd_clear(rc_store_t *self);
uint64_t rc_store_le64(const uint8_t *p);
void rc_store_put_le64(uint8_t *p, uint64_t v);
/* Position of the first row whose id is >= id in the segment table. */
size_t rc_store_seg_index(rc_store_t *self, uint64_t id);
rc_store_seg_t *rc_store_seg_find(rc_store_t *self, uint64_t id);
rc_store_seg_t *rc_store_seg_append(rc_store_t *self, uint64_t id);
void rc_store_seg_drop(rc_store_t *self, rc_store_seg_t *s);
void rc_store_seg_clear(rc_store_t *self);
/* The index's effect of writing record rec in segment seg (in write order). */
void rc_store_apply(rc_store_t *self, rc_store_kent_t *e, const rc_store_rec_t *rec, uint64_t seg);
/* A record of e stops being live (counted) in its segment. */
void rc_store_uncount(rc_store_t *self, rc_store_kent_t *e);

/* rc_store_disk.c */
int rc_store_disk_open(rc_store_t *self, bool created);
int rc_store_disk_scan(rc_store_t *self);
int rc_store_disk_commit(rc_store_t *self, rc_store_group_t *groups);
bool rc_store_disk_compact_wanted(rc_store_t *self);
int rc_store_disk_compact_step(rc_store_t *self, uint64_t *bytes_read);
int rc_store_disk_recover(rc_store_t *self, rc_store_visit_fn *visit, void *arg);
int rc_store_disk_checkpoint(rc_store_t *self, bool truncate);
void rc_store_disk_close(rc_store_t *self);
uint64_t rc_store_disk_file_bytes(rc_store_t *self);
int rc_store_code_of(int sqlite_rc);

/* rc_store.c */
rc_store_t *rc_store_open_as(const char *path, const rc_store_options_t *options, bool salvaging, int *code,
                             char *errbuf, size_t errlen);
void rc_store_set_error(rc_store_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
