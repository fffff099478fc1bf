/* rc_store: the broker's durable state as a content-agnostic keyed log.
 *
 * The broker keeps every record in memory and tells the store, for each
 * record that changed, its latest value: put(key, blob) or del(key). The
 * store never interprets a key or a blob. At start the broker reads back every
 * live (key, blob) in the order the latest versions were written, and rebuilds
 * its tables from them.
 *
 * Why so narrow: a store that only has to keep "the latest blob of each key,
 * in write order" and say "everything up to group N is safe" can be held by
 * something other than a local file. A replicated log or a networked database
 * (a standby broker on another machine tailing the same groups, or a SQL/KV
 * service behind the same five calls) implements put/del/group/durable/recover
 * without knowing what a task is; the broker's rule "a reply that promises
 * something waits until its group is durable" stays the same, with "durable"
 * meaning "acknowledged by the replicas" instead of "fsync'd". Nothing in this
 * interface exposes SQLite, pages, files or the writer thread.
 *
 * This implementation: an embedded SQLite database in WAL mode, written only
 * by a thread of the store's own. The caller's thread (the broker's loop)
 * never waits on the disk: put/del copy into the group being built, group()
 * hands it to the writer, the writer commits whole groups in one transaction
 * (group commit), and a file descriptor becomes readable when the durable
 * mark advances. Records are packed many to a row (segments); superseded and
 * deleted records are dropped by compaction in bounded steps in the writer
 * thread. docs/store.md has the design and its measured rates.
 *
 * Threads: every call except rc_store_stats() belongs to one caller thread
 * (the one that opened the store, or one it hands the store to). */
#ifndef RC_STORE_H
#define RC_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct rc_store rc_store_t;

/* Status codes (0 is success). */
enum {
    RC_STORE_OK = 0,
    RC_STORE_EINVAL,    /* a bad argument: key empty or too long, blob too big */
    RC_STORE_EBEHIND,   /* the writer is too far behind (queue bound reached): refuse, retry later */
    RC_STORE_ENOSPC,    /* writes fail: the disk (or a size limit) is full; durable data is intact */
    RC_STORE_EIO,       /* writes fail: an I/O error; durable data is intact */
    RC_STORE_ENOTSTORE, /* the file is not a refcache store (not SQLite, or another database) */
    RC_STORE_EVERSION,  /* the store was written by a newer format version */
    RC_STORE_ECORRUPT,  /* the store is damaged (truncated, bad pages, bad checksum) */
    RC_STORE_EBUSY,     /* another process has the store open */
    RC_STORE_ENOMEM,    /* out of memory */
    RC_STORE_ESTATE,    /* a call out of order (recover after writing, a closed store) */
};

#define RC_STORE_KEY_MAX  255u                /* bytes; a key is 1..255 bytes */
#define RC_STORE_BLOB_MAX (16u * 1024 * 1024) /* bytes; a blob may be empty */

typedef struct {
    /* 0: durable — the mark means fsync'd (WAL, synchronous=FULL, one fsync
     * per group commit). 1: relaxed — the mark means handed to the kernel: a
     * crash of the process loses nothing marked, a crash of the machine (power
     * loss, kernel panic) loses at most the groups marked in the last
     * relaxed_sync_ms, whole groups only. */
    int relaxed;
    unsigned relaxed_sync_ms; /* relaxed mode: fsync at least this often; 0: 1000 */
    /* Memory of the groups handed to the writer and not yet committed, plus
     * the bytes of the group being built, beyond which put() refuses with
     * RC_STORE_EBEHIND; 0: 64 MiB. */
    size_t queue_max;
    /* Page size of a store created now (a power of two, 4096..65536); 0: 16384
     * (a small commit writes a few pages to the WAL: small pages keep it cheap;
     * larger ones cost fewer frames for big batches). */
    unsigned page_size;
    /* The WAL is checkpointed into the database once it holds this much (the
     * writer pauses for the copy and one fsync); 0: 8 MiB. */
    size_t checkpoint_bytes;
    /* Open an existing store only to read it (rc_store_recover); no writer
     * thread, put/del/group refuse with RC_STORE_ESTATE. */
    int read_only;
} rc_store_options_t;

/* Counters, for stats and measurements. */
typedef struct {
    uint64_t live_records; /* keys with a value */
    uint64_t live_bytes;   /* bytes that must stay: their records, and the tombstones still
                            * shadowing older records of deleted keys */
    uint64_t stored_bytes; /* bytes of all segments (live + not yet compacted) */
    uint64_t segments;     /* rows */
    uint64_t file_bytes;   /* the database file plus its WAL, as the writer last saw them */
    uint64_t groups_committed, transactions, records_written, puts_coalesced;
    uint64_t compaction_steps, compaction_bytes_read, checkpoints;
    /* The writer's longest pauses so far: a transaction, a compaction step, a
     * checkpoint (each delays the groups that arrive meanwhile). */
    uint64_t max_commit_us, max_compact_step_us, max_checkpoint_us;
    uint64_t queued_bytes;     /* handed to the writer, not yet committed */
    int write_error;           /* RC_STORE_ENOSPC / RC_STORE_EIO while writes fail, else 0 */
    char write_error_msg[160]; /* what the last failed write said */
} rc_store_stats_t;

/* Fills options with the defaults. */
void rc_store_options_defaults(rc_store_options_t *options);

/* Opens the store at path, creating it if the file does not exist. Checks that
 * it is a refcache store of a version this build understands, reads every
 * segment (verifying checksums) to build the index the writer needs, and
 * starts the writer thread (unless read_only). NULL options: the defaults.
 * Returns NULL with a one-line message naming the problem in errbuf (and the
 * code in *code if code is not NULL) when the file is not a store, from a newer
 * version, damaged, in use, or cannot be read; a damaged store is never opened
 * as empty (see rc_store_salvage). */
rc_store_t *rc_store_open(const char *path, const rc_store_options_t *options, int *code, char *errbuf,
                          size_t errlen);

/* Called once per live record by rc_store_recover; key and blob are valid only
 * during the call. Return 0 to go on, anything else to stop (that value is
 * returned by rc_store_recover). */
typedef int(rc_store_visit_fn)(void *arg, const uint8_t *key, size_t key_len, const uint8_t *blob,
                               size_t blob_len);

/* Calls visit for every live (key, blob), in the order the latest versions
 * were written. Only before the first put/del/group. Returns 0, the visitor's
 * non-zero value, or a code (with a message in errbuf). */
int rc_store_recover(rc_store_t *self, rc_store_visit_fn *visit, void *arg, char *errbuf, size_t errlen);

/* The latest value of key is blob (copied; a later put or del supersedes it).
 * Never blocks. Returns 0, RC_STORE_EINVAL, RC_STORE_EBEHIND (queue bound),
 * RC_STORE_ENOSPC / RC_STORE_EIO (writes are failing) or RC_STORE_ENOMEM. */
int rc_store_put(rc_store_t *self, const void *key, size_t key_len, const void *blob, size_t blob_len);

/* key has no value any more. Never blocks. A delete frees space, so failing
 * writes do not refuse it, and the queue bound only at twice its size
 * (RC_STORE_EBEHIND); else RC_STORE_EINVAL or RC_STORE_ENOMEM. */
int rc_store_del(rc_store_t *self, const void *key, size_t key_len);

/* Ends the group being built and hands it to the writer; returns its sequence
 * number (numbers grow by one per non-empty group, from 1 at each open). A
 * group is committed whole or not at all. With nothing put or deleted since
 * the last call, returns the last number again. Never blocks. */
uint64_t rc_store_group(rc_store_t *self);

/* The highest group sequence number known to be on disk (per the mode), and
 * clears the readiness of rc_store_fd(). */
uint64_t rc_store_durable(rc_store_t *self);

/* A file descriptor (eventfd) that becomes readable when the durable mark
 * advances or writes start failing; poll it (zmq_poll takes raw fds), then
 * call rc_store_durable(). Owned by the store. */
int rc_store_fd(rc_store_t *self);

/* 0 while writes succeed; RC_STORE_ENOSPC or RC_STORE_EIO while they fail
 * (the writer retries the failed groups; puts are refused meanwhile). */
int rc_store_write_error(rc_store_t *self);

/* A snapshot of the counters (any thread). */
void rc_store_stats(rc_store_t *self, rc_store_stats_t *stats);

/* Ends the group being built, waits until the writer has committed every
 * queued group, checkpoints the WAL into the database, stops the thread and
 * frees everything; accepts NULL and clears the pointer. Returns 0, or a code
 * when queued groups could not be written (they are lost; durable ones are
 * not). */
int rc_store_close(rc_store_t **self_p);

/* Copies every intact record of the damaged store at src into a new store at
 * dst (which must not exist): the segments whose rows can be read and whose
 * checksums match; of each key the latest intact version (a version or a
 * delete that was in a damaged segment is lost, so an older version of that
 * key can come back). src is not modified. Reports what was skipped in errbuf
 * (also on success). Returns 0 or a code. */
int rc_store_salvage(const char *src, const char *dst, char *errbuf, size_t errlen);

/* A short description of a code. */
const char *rc_store_strerror(int code);

#endif
