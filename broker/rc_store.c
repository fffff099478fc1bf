/* rc_store: the store's public side and its writer thread. The caller's
 * thread builds a group (put/del copy into a buffer it alone touches), hands
 * it over with rc_store_group() (one mutex, no disk), and learns of durable
 * groups through an eventfd. The writer thread takes every group handed over,
 * commits them in one transaction (rc_store_disk_commit), publishes the
 * durable mark, then runs compaction steps and checkpoints. When a commit
 * fails (disk full, I/O error) it keeps the groups, refuses new puts through
 * an atomic status, rebuilds its index from disk and retries with back-off.
 * Also: open (with its checks of the file), recover, close. */
#include "rc_store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_MAX_DEFAULT (64u << 20)
#define GROUP_MIN_CAP     4096u      /* a group's first buffer; doubled as it fills */
#define SPARE_MAX         64         /* committed groups kept for reuse */
#define SPARE_CAP_MAX     (1u << 20) /* larger buffers are freed, not kept */
#define RETRY_MAX_US      2000000u

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

void rc_store_set_error(rc_store_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->errmsg, sizeof self->errmsg, fmt, ap);
    va_end(ap);
}

const char *rc_store_strerror(int code)
{
    switch (code) {
    case RC_STORE_OK:
        return "ok";
    case RC_STORE_EINVAL:
        return "invalid argument (key of 1..255 bytes, blob up to 16 MiB)";
    case RC_STORE_EBEHIND:
        return "the store's writer is behind (queue full)";
    case RC_STORE_ENOSPC:
        return "the store's disk is full";
    case RC_STORE_EIO:
        return "the store cannot write (I/O error)";
    case RC_STORE_ENOTSTORE:
        return "not a refcache store";
    case RC_STORE_EVERSION:
        return "the store is from a newer version";
    case RC_STORE_ECORRUPT:
        return "the store is damaged";
    case RC_STORE_EBUSY:
        return "the store is in use by another process";
    case RC_STORE_ENOMEM:
        return "out of memory";
    case RC_STORE_ESTATE:
        return "call out of order";
    default:
        return "unknown store error";
    }
}

void rc_store_options_defaults(rc_store_options_t *options)
{
    memset(options, 0, sizeof *options);
    options->relaxed_sync_ms = 1000;
    options->queue_max = QUEUE_MAX_DEFAULT;
    options->page_size = RC_STORE_PAGE_SIZE;
    options->checkpoint_bytes = RC_STORE_WAL_CHECKPOINT;
}

static void notify(rc_store_t *self)
{
    uint64_t one = 1;
    ssize_t n = write(self->efd, &one, sizeof one);
    (void) n; /* EAGAIN only if the counter is saturated: it is readable anyway */
}

static void recycle(rc_store_t *self, rc_store_group_t *g)
{
    while (g) {
        rc_store_group_t *next = g->next;
        if (self->nspare < SPARE_MAX && g->cap <= SPARE_CAP_MAX) {
            g->len = 0;
            g->nops = 0;
            g->next = self->spare;
            self->spare = g;
            self->nspare++;
        } else {
            free(g->data);
            free(g);
        }
        g = next;
    }
}

static void publish(rc_store_t *self, bool stat_files)
{
    self->st.live_bytes = self->live_bytes;
    self->st.stored_bytes = self->stored_bytes;
    if (stat_files)
        self->st.file_bytes = rc_store_disk_file_bytes(self);
    pthread_mutex_lock(&self->mu);
    uint64_t file_bytes = self->pub.file_bytes;
    self->pub = self->st;
    if (!stat_files)
        self->pub.file_bytes = file_bytes;
    pthread_mutex_unlock(&self->mu);
}

/* After a failed transaction the index no longer matches the disk, and
 * SQLite may keep its connection in an error state (it does, in exclusive
 * locking mode, after a full disk): open the connection again and read the
 * index back from disk, which holds every committed group (reads work on a
 * full disk). Done just before a retry. */
static int rebuild(rc_store_t *self)
{
    uint64_t ver = self->next_ver, seg = self->next_seg;
    rc_store_disk_close(self);
    int code = rc_store_disk_open(self, false);
    if (!code)
        code = rc_store_disk_scan(self);
    if (!code) {
        /* Never reuse a number a failed transaction may have half-written. */
        self->next_ver = self->next_ver > ver ? self->next_ver : ver;
        self->next_seg = self->next_seg > seg ? self->next_seg : seg;
        /* A checkpoint lets the next transaction write the WAL from its
         * start again instead of growing it (it may fail on a full disk). */
        rc_store_disk_checkpoint(self, false);
    }
    return code;
}

static void *writer_main(void *arg)
{
    rc_store_t *self = arg;
    rc_store_group_t *retained = NULL;
    uint64_t retry_at = 0, backoff = 50000, last_stat = 0, empty_looks = 0;
    int close_tries = 0;
    bool dirty = false, compact_idle = false, need_rebuild = false;
    pthread_mutex_lock(&self->mu);
    while (!self->started && !self->closing)
        pthread_cond_wait(&self->cv, &self->mu);
    for (;;) {
        bool compact = !retained && !compact_idle && rc_store_disk_compact_wanted(self);
        while (!self->q_head && !self->closing && !compact) {
            uint64_t now = now_us(), wake = now + 200000;
            if (retained && retry_at <= now)
                break;
            if (self->opt.relaxed && dirty && self->last_sync_us + self->opt.relaxed_sync_ms * 1000u <= now)
                break;
            if (retained && retry_at < wake)
                wake = retry_at;
            if (self->opt.relaxed && dirty && self->last_sync_us + self->opt.relaxed_sync_ms * 1000u < wake)
                wake = self->last_sync_us + self->opt.relaxed_sync_ms * 1000u;
            struct timespec ts = {.tv_sec = (time_t) (wake / 1000000u),
                                  .tv_nsec = (long) (wake % 1000000u) * 1000};
            if (pthread_cond_timedwait(&self->cv, &self->mu, &ts) == ETIMEDOUT && !retained && !dirty)
                break;
        }
        rc_store_group_t *batch = self->q_head;
        self->q_head = self->q_tail = NULL;
        bool closing = self->closing;
        pthread_mutex_unlock(&self->mu);

        if (retained) {
            rc_store_group_t *t = retained;
            while (t->next)
                t = t->next;
            t->next = batch;
            batch = retained;
            retained = NULL;
        }
        uint64_t now = now_us(), committed = 0;
        if (batch && atomic_load(&self->write_error) && now < retry_at && !closing) {
            retained = batch;
        } else if (batch) {
            int code = need_rebuild ? rebuild(self) : 0;
            need_rebuild = code != 0;
            if (!code) {
                uint64_t t_commit = now_us();
                code = rc_store_disk_commit(self, batch);
                t_commit = now_us() - t_commit;
                self->st.max_commit_us =
                    t_commit > self->st.max_commit_us ? t_commit : self->st.max_commit_us;
            }
            uint64_t seq = 0, bytes = 0, groups = 0, charged = 0;
            for (rc_store_group_t *g = batch; g; g = g->next, groups++) {
                seq = g->seq;
                bytes += g->len;
                charged += g->charged;
            }
            if (code == 0) {
                self->st.groups_committed += groups;
                atomic_fetch_sub(&self->queued_bytes, charged);
                atomic_store(&self->durable, seq);
                atomic_store(&self->write_error, 0);
                publish(self, false); /* counters first: a waiter woken next sees them */
                notify(self);
                committed = bytes;
                dirty = true;
                backoff = 50000;
                compact_idle = false;
                empty_looks = 0;
                pthread_mutex_lock(&self->mu);
                recycle(self, batch);
                pthread_mutex_unlock(&self->mu);
            } else {
                snprintf(self->st.write_error_msg, sizeof self->st.write_error_msg, "%.159s", self->errmsg);
                publish(self, false);
                atomic_store(&self->write_error, code == RC_STORE_ENOSPC ? RC_STORE_ENOSPC : RC_STORE_EIO);
                notify(self);
                need_rebuild = true;
                retained = batch;
                retry_at = now_us() + backoff;
                backoff = backoff * 2 > RETRY_MAX_US ? RETRY_MAX_US : backoff * 2;
                if (closing && ++close_tries >= 3) {
                    self->close_code = code;
                    atomic_fetch_sub(&self->queued_bytes, charged);
                    pthread_mutex_lock(&self->mu);
                    recycle(self, retained);
                    pthread_mutex_unlock(&self->mu);
                    retained = NULL;
                }
            }
        }
        /* Compaction keeps pace with what was written: it reads twice the
         * bytes just committed (every byte written becomes garbage some day,
         * and a step reclaims at least a third of what it reads). Between
         * batches, or with nothing committed, a few steps; each step reads
         * one or a few segments, so the pause per turn is bounded by the
         * batch (itself bounded by the queue). */
        if (!retained && !need_rebuild && !atomic_load(&self->write_error) && !compact_idle) {
            uint64_t budget = committed * 2, done = 0;
            if (budget < 4 * RC_STORE_SEG_TARGET)
                budget = 4 * RC_STORE_SEG_TARGET;
            while (done < budget && rc_store_disk_compact_wanted(self)) {
                uint64_t read = 0;
                uint64_t t_step = now_us();
                int code = rc_store_disk_compact_step(self, &read);
                t_step = now_us() - t_step;
                if (t_step > self->st.max_compact_step_us)
                    self->st.max_compact_step_us = t_step;
                if (code == RC_STORE_ENOSPC || code == RC_STORE_EIO) {
                    need_rebuild = rebuild(self) != 0;
                    compact_idle = true;
                    break;
                }
                if (read == 0) {
                    empty_looks += 64;
                    if (empty_looks >= self->nsegs) {
                        compact_idle = true; /* a whole round found nothing: wait for writes */
                        break;
                    }
                } else {
                    empty_looks = 0;
                }
                done += read ? read : 1;
            }
        }
        if (!need_rebuild && (uint64_t) self->wal_pages * self->page_size > self->opt.checkpoint_bytes) {
            uint64_t t_ckpt = now_us();
            rc_store_disk_checkpoint(self, false);
            t_ckpt = now_us() - t_ckpt;
            self->st.checkpoints++;
            if (t_ckpt > self->st.max_checkpoint_us)
                self->st.max_checkpoint_us = t_ckpt;
            dirty = false;
            self->last_sync_us = now_us();
        }
        now = now_us();
        if (!need_rebuild && self->opt.relaxed && dirty &&
            self->last_sync_us + self->opt.relaxed_sync_ms * 1000u <= now) {
            rc_store_disk_checkpoint(self, false);
            dirty = false;
            self->last_sync_us = now;
        }
        bool stat_files = now - last_stat > 100000;
        if (stat_files)
            last_stat = now;
        publish(self, stat_files);
        pthread_mutex_lock(&self->mu);
        if (closing && !self->q_head && !retained)
            break;
    }
    pthread_mutex_unlock(&self->mu);
    if (!self->close_code && !need_rebuild)
        rc_store_disk_checkpoint(self, true);
    publish(self, true);
    return NULL;
}

static void free_groups(rc_store_group_t *g)
{
    while (g) {
        rc_store_group_t *next = g->next;
        free(g->data);
        free(g);
        g = next;
    }
}

static void destroy(rc_store_t *self)
{
    rc_store_disk_close(self);
    free_groups(self->q_head);
    free_groups(self->spare);
    free_groups(self->building);
    rc_store_kd_clear(self);
    rc_store_seg_clear(self);
    free(self->out);
    free(self->cbuf);
    free(self->op_ent);
    free(self->op_ptr);
    free(self->op_hash);
    if (self->efd >= 0)
        close(self->efd);
    pthread_mutex_destroy(&self->mu);
    pthread_cond_destroy(&self->cv);
    free(self->path);
    free(self);
}

/* A SQLite file states its size in pages in its header: a shorter file was
 * cut (a partial copy, a full disk during a copy) — say so plainly. Not when
 * a WAL is beside it: a checkpoint cut short (a crash, a full disk) leaves
 * the file shorter than its header, and the WAL holds the rest. */
static int check_size(rc_store_t *self, uint64_t size)
{
    char wal[4200];
    struct stat sb;
    snprintf(wal, sizeof wal, "%.4000s-wal", self->path);
    if (stat(wal, &sb) == 0 && sb.st_size > 0)
        return 0;
    uint8_t h[100];
    int fd = open(self->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0; /* SQLite will say why it cannot open it */
    ssize_t n = pread(fd, h, sizeof h, 0);
    close(fd);
    if (n != (ssize_t) sizeof h || memcmp(h, "SQLite format 3", 16) != 0)
        return 0;
    uint64_t ps = (uint64_t) h[16] << 8 | h[17];
    uint64_t pages = (uint64_t) h[28] << 24 | (uint64_t) h[29] << 16 | (uint64_t) h[30] << 8 | h[31];
    if (ps == 1)
        ps = 65536;
    if (pages * ps <= size)
        return 0;
    rc_store_set_error(self,
                       "%s: damaged refcache store: the file is truncated (%llu bytes; its header says "
                       "%llu)",
                       self->path, (unsigned long long) size, (unsigned long long) (pages * ps));
    return RC_STORE_ECORRUPT;
}

rc_store_t *rc_store_open_as(const char *path, const rc_store_options_t *options, bool salvaging, int *code,
                             char *errbuf, size_t errlen)
{
    int c = RC_STORE_ENOMEM;
    rc_store_t *self = calloc(1, sizeof *self);
    if (!self || !(self->path = strdup(path ? path : ""))) {
        free(self);
        snprintf(errbuf, errlen, "out of memory");
        if (code)
            *code = c;
        return NULL;
    }
    rc_store_options_defaults(&self->opt);
    if (options) {
        self->opt = *options;
        if (!self->opt.relaxed_sync_ms)
            self->opt.relaxed_sync_ms = 1000;
        if (!self->opt.queue_max)
            self->opt.queue_max = QUEUE_MAX_DEFAULT;
        if (!self->opt.checkpoint_bytes)
            self->opt.checkpoint_bytes = RC_STORE_WAL_CHECKPOINT;
    }
    self->salvaging = salvaging;
    self->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&self->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&self->cv, &ca);
    pthread_condattr_destroy(&ca);

    struct stat sb;
    bool exists = stat(self->path, &sb) == 0;
    if (!path || !*path) {
        c = RC_STORE_EINVAL;
        rc_store_set_error(self, "no store path given");
    } else if (self->efd < 0) {
        c = RC_STORE_EIO;
        rc_store_set_error(self, "eventfd: %s", strerror(errno));
    } else if (!exists && (errno != ENOENT || self->opt.read_only)) {
        c = RC_STORE_EIO;
        rc_store_set_error(self, "%s: %s", self->path, strerror(errno));
    } else if (exists && !S_ISREG(sb.st_mode)) {
        c = RC_STORE_ENOTSTORE;
        rc_store_set_error(self, "%s: not a refcache store: not a regular file", self->path);
    } else if (exists && sb.st_size == 0) {
        /* A store is never empty (its header page is written at creation):
         * an empty file is a truncated store or someone else's file. */
        c = RC_STORE_ECORRUPT;
        rc_store_set_error(self,
                           "%s: not a usable refcache store: the file is empty (truncated?); "
                           "move it away to start a new store",
                           self->path);
    } else if (exists && (c = check_size(self, (uint64_t) sb.st_size)) != 0) {
        /* message set */
    } else {
        c = rc_store_disk_open(self, !exists);
        if (!c)
            c = rc_store_disk_scan(self);
        self->st.live_bytes = self->live_bytes;
        self->st.stored_bytes = self->stored_bytes;
        self->st.file_bytes = rc_store_disk_file_bytes(self);
        self->pub = self->st;
        if (!c && !self->opt.read_only) {
            if (pthread_create(&self->thread, NULL, writer_main, self) != 0) {
                c = RC_STORE_ENOMEM;
                rc_store_set_error(self, "cannot start the store's writer thread");
            } else {
                self->thread_running = true;
            }
        }
    }
    if (c) {
        snprintf(errbuf, errlen, "%s", self->errmsg);
        if (code)
            *code = c;
        bool created = !exists && self->db;
        destroy(self);
        if (created && path) {
            char wal[4096];
            snprintf(wal, sizeof wal, "%s-wal", path);
            unlink(wal);
            unlink(path);
        }
        return NULL;
    }
    if (code)
        *code = 0;
    return self;
}

rc_store_t *rc_store_open(const char *path, const rc_store_options_t *options, int *code, char *errbuf,
                          size_t errlen)
{
    return rc_store_open_as(path, options, false, code, errbuf, errlen);
}

static void start(rc_store_t *self)
{
    if (self->started_local)
        return;
    self->started_local = true;
    pthread_mutex_lock(&self->mu);
    self->started = true;
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mu);
}

int rc_store_recover(rc_store_t *self, rc_store_visit_fn *visit, void *arg, char *errbuf, size_t errlen)
{
    if (!self || !visit || self->started_local) {
        snprintf(errbuf, errlen, "rc_store_recover: only once, before the first put/del/group");
        return RC_STORE_ESTATE;
    }
    int r = rc_store_disk_recover(self, visit, arg);
    if (r > 0 && r <= RC_STORE_ESTATE && self->errmsg[0])
        snprintf(errbuf, errlen, "%s", self->errmsg);
    if (!self->opt.read_only)
        start(self);
    return r;
}

/* Room for need more bytes in the group being built (started if needed). */
static int reserve(rc_store_t *self, size_t need)
{
    rc_store_group_t *g = self->building;
    if (!g) {
        start(self);
        pthread_mutex_lock(&self->mu);
        if ((g = self->spare)) {
            self->spare = g->next;
            self->nspare--;
        }
        pthread_mutex_unlock(&self->mu);
        if (!g && !(g = calloc(1, sizeof *g)))
            return RC_STORE_ENOMEM;
        g->next = NULL;
        self->building = g;
    }
    if (g->len + need > g->cap) {
        size_t cap = g->cap ? g->cap : GROUP_MIN_CAP;
        while (cap < g->len + need)
            cap *= 2;
        uint8_t *p = realloc(g->data, cap);
        if (!p)
            return RC_STORE_ENOMEM;
        g->data = p;
        g->cap = cap;
    }
    return 0;
}

/* Bytes handed to the writer plus those of the group being built. */
static size_t pending_bytes(rc_store_t *self)
{
    return atomic_load_explicit(&self->queued_bytes, memory_order_relaxed) +
           (self->building ? self->building->len : 0);
}

static void append_op(rc_store_t *self, int kind, const void *key, size_t klen, const void *blob, size_t blen)
{
    rc_store_group_t *g = self->building;
    uint8_t *p = g->data + g->len;
    uint32_t b = (uint32_t) blen;
    p[0] = (uint8_t) kind;
    p[1] = (uint8_t) klen;
    memcpy(p + 2, &b, 4);
    memcpy(p + RC_STORE_OP_HEAD, key, klen);
    if (blen)
        memcpy(p + RC_STORE_OP_HEAD + klen, blob, blen);
    g->len += RC_STORE_OP_HEAD + klen + blen;
    g->nops++;
}

int rc_store_put(rc_store_t *self, const void *key, size_t key_len, const void *blob, size_t blob_len)
{
    if (!self || !self->thread_running)
        return RC_STORE_ESTATE;
    if (!key || key_len == 0 || key_len > RC_STORE_KEY_MAX || blob_len > RC_STORE_BLOB_MAX ||
        (blob_len && !blob))
        return RC_STORE_EINVAL;
    int werr = atomic_load_explicit(&self->write_error, memory_order_relaxed);
    if (werr)
        return werr;
    size_t need = RC_STORE_OP_HEAD + key_len + blob_len;
    if (pending_bytes(self) + need > self->opt.queue_max)
        return RC_STORE_EBEHIND;
    int rc = reserve(self, need);
    if (rc)
        return rc;
    append_op(self, RC_STORE_REC_PUT, key, key_len, blob, blob_len);
    return 0;
}

int rc_store_del(rc_store_t *self, const void *key, size_t key_len)
{
    if (!self || !self->thread_running)
        return RC_STORE_ESTATE;
    if (!key || key_len == 0 || key_len > RC_STORE_KEY_MAX)
        return RC_STORE_EINVAL;
    /* A delete frees space: neither failing writes nor the bound on puts
     * refuses it; only twice the bound does, so memory stays bounded. */
    size_t need = RC_STORE_OP_HEAD + key_len;
    if (pending_bytes(self) + need > 2 * self->opt.queue_max)
        return RC_STORE_EBEHIND;
    int rc = reserve(self, need);
    if (rc)
        return rc;
    append_op(self, RC_STORE_REC_DEL, key, key_len, NULL, 0);
    return 0;
}

uint64_t rc_store_group(rc_store_t *self)
{
    if (!self || !self->building || self->building->nops == 0)
        return self ? self->last_seq : 0;
    rc_store_group_t *g = self->building;
    self->building = NULL;
    uint64_t seq = g->seq = ++self->last_seq; /* g is the writer's once queued */
    /* The bound counts the memory held, not only the bytes used: many small
     * groups must not hold far more than queue_max. */
    g->charged = g->cap + sizeof *g;
    atomic_fetch_add(&self->queued_bytes, g->charged);
    pthread_mutex_lock(&self->mu);
    if (self->q_tail)
        self->q_tail->next = g;
    else
        self->q_head = g;
    self->q_tail = g;
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mu);
    return seq;
}

uint64_t rc_store_durable(rc_store_t *self)
{
    if (!self)
        return 0;
    uint64_t n;
    if (read(self->efd, &n, sizeof n) < 0 && errno != EAGAIN)
        return atomic_load(&self->durable);
    return atomic_load(&self->durable);
}

int rc_store_fd(rc_store_t *self)
{
    return self ? self->efd : -1;
}

int rc_store_write_error(rc_store_t *self)
{
    return self ? atomic_load(&self->write_error) : RC_STORE_ESTATE;
}

void rc_store_stats(rc_store_t *self, rc_store_stats_t *stats)
{
    memset(stats, 0, sizeof *stats);
    if (!self)
        return;
    pthread_mutex_lock(&self->mu);
    *stats = self->pub;
    pthread_mutex_unlock(&self->mu);
    stats->queued_bytes = atomic_load(&self->queued_bytes);
    stats->write_error = atomic_load(&self->write_error);
}

int rc_store_close(rc_store_t **self_p)
{
    if (!self_p || !*self_p)
        return 0;
    rc_store_t *self = *self_p;
    *self_p = NULL;
    if (self->thread_running) {
        rc_store_group(self);
        pthread_mutex_lock(&self->mu);
        self->closing = true;
        pthread_cond_signal(&self->cv);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->thread, NULL);
    }
    int code = self->close_code;
    destroy(self);
    return code;
}
