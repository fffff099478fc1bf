/* Tests of the durable store (rc_store): round trips (put, delete, overwrite,
 * recover, in write order; keys and blobs of edge sizes), coalescing, the
 * queue bound, compaction keeping the store bounded, crash safety (a child
 * writing groups is killed with SIGKILL at random moments, many cycles, and
 * every group reported durable must be there whole, nothing half-applied),
 * files that are not a store, from a newer version, truncated or corrupted
 * (a clear error, then salvage of what is intact), a store in use, and a
 * full disk (RLIMIT_FSIZE in a child; a small tmpfs when run as root). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rc_store.h"
#include "rc_valgrind.h"

static char dir[256];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/rc_store_test.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300], mnt[300];
    snprintf(mnt, sizeof mnt, "%s/tmpfs", dir);
    if (umount2(mnt, 0) != 0)
        umount2(mnt, MNT_DETACH); /* a tmpfs left mounted by a failed assertion */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
    unlink(buf);
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", buf);
    unlink(wal);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Waits (polling the store's fd, bounded) until seq is durable. */
static void wait_durable(rc_store_t *s, uint64_t seq)
{
    double end = now_s() + 30;
    while (rc_store_durable(s) < seq) {
        assert_true(now_s() < end);
        assert_int_equal(rc_store_write_error(s), 0);
        struct pollfd p = {.fd = rc_store_fd(s), .events = POLLIN};
        poll(&p, 1, 100);
    }
}

static rc_store_t *open_ok(const char *path, int relaxed)
{
    rc_store_options_t o;
    rc_store_options_defaults(&o);
    o.relaxed = relaxed;
    char err[256] = "";
    int code = -1;
    rc_store_t *s = rc_store_open(path, &o, &code, err, sizeof err);
    if (!s)
        print_error("open %s: %s\n", path, err);
    assert_non_null(s);
    assert_int_equal(code, 0);
    return s;
}

/* ---- a model of what the store should hold: up to NKEYS keys ---- */

#define NKEYS 256
typedef struct {
    bool present;
    uint8_t *val;
    size_t len;
    uint64_t stamp; /* when the latest version was written (recovery order) */
} slot_t;
typedef struct {
    slot_t k[NKEYS];
    uint64_t clock;
} model_t;

static void model_put(model_t *m, int i, const uint8_t *v, size_t len)
{
    free(m->k[i].val);
    m->k[i].val = malloc(len ? len : 1);
    memcpy(m->k[i].val, v, len);
    m->k[i].len = len;
    m->k[i].present = true;
    m->k[i].stamp = ++m->clock;
}

static void model_del(model_t *m, int i)
{
    free(m->k[i].val);
    m->k[i].val = NULL;
    m->k[i].present = false;
}

static void model_free(model_t *m)
{
    for (int i = 0; i < NKEYS; i++)
        free(m->k[i].val);
    memset(m, 0, sizeof *m);
}

/* Keys "key-NNN" (7 bytes); key index from the name. */
static size_t key_of(int i, uint8_t *buf)
{
    return (size_t) snprintf((char *) buf, 16, "key-%03d", i);
}

typedef struct {
    model_t *m;
    int seen[NKEYS];
    uint64_t last_stamp;
    int n, errors;
    uint8_t meta[64];
    size_t meta_len;
    bool has_meta;
    bool probe; /* only looking for "meta": no model to check against */
} check_t;

static int check_visit(void *arg, const uint8_t *key, size_t klen, const uint8_t *blob, size_t blen)
{
    check_t *c = arg;
    if (klen == 4 && memcmp(key, "meta", 4) == 0) {
        c->has_meta = true;
        c->meta_len = blen < sizeof c->meta ? blen : sizeof c->meta;
        memcpy(c->meta, blob, c->meta_len);
        return 0;
    }
    int i;
    if (klen != 7 || sscanf((const char *) key, "key-%3d", &i) != 1 || i < 0 || i >= NKEYS) {
        c->errors++;
        return 0;
    }
    slot_t *s = &c->m->k[i];
    c->n++;
    if (c->probe)
        return 0;
    if (c->seen[i]++ || !s->present || s->len != blen || (blen && memcmp(s->val, blob, blen) != 0)) {
        print_error("key %d: present %d, model len %zu, got len %zu, seen %d, model %.12s got %.12s\n", i,
                    s->present, s->len, blen, c->seen[i], s->val ? (const char *) s->val : "-",
                    (const char *) blob);
        c->errors++;
    }
    if (s->stamp <= c->last_stamp) {
        print_error("key %d out of write order\n", i);
        c->errors++;
    }
    c->last_stamp = s->stamp;
    return 0;
}

/* Recovers the store at path into a check against m; returns the check. */
static void recover_check(rc_store_t *s, model_t *m, check_t *c)
{
    memset(c, 0, sizeof *c);
    c->m = m;
    char err[256];
    assert_int_equal(rc_store_recover(s, check_visit, c, err, sizeof err), 0);
    int want = 0;
    for (int i = 0; i < NKEYS; i++)
        want += m->k[i].present;
    if (c->n != want)
        print_error("recovered %d records, model has %d\n", c->n, want);
    assert_int_equal(c->errors, 0);
    assert_int_equal(c->n, want);
}

static void test_round_trip(void **state)
{
    char path[512];
    path_of(path, sizeof path, "rt.store");
    model_t m = {0};
    rc_store_t *s = open_ok(path, 0);
    uint8_t key[16], val[4096];
    uint64_t seq = 0;
    for (int round = 0; round < 40; round++) {
        for (int j = 0; j < 50; j++) {
            int i = (int) (rnd() % NKEYS);
            size_t klen = key_of(i, key);
            if (rnd() % 4 == 0) {
                assert_int_equal(rc_store_del(s, key, klen), 0);
                model_del(&m, i);
            } else {
                size_t len = rnd() % 5 == 0 ? 0 : rnd() % sizeof val;
                for (size_t b = 0; b < len; b++)
                    val[b] = (uint8_t) rnd();
                assert_int_equal(rc_store_put(s, key, klen, val, len), 0);
                model_put(&m, i, val, len);
            }
        }
        uint64_t g = rc_store_group(s);
        assert_int_equal(g, seq + 1);
        seq = g;
        assert_int_equal(rc_store_group(s), seq); /* nothing new: the same number */
        if (round % 10 == 9) {                    /* reopen now and then */
            wait_durable(s, seq);
            assert_int_equal(rc_store_close(&s), 0);
            assert_null(s);
            s = open_ok(path, round % 20 == 9);
            check_t c;
            recover_check(s, &m, &c);
            seq = 0;
        }
    }
    assert_int_equal(rc_store_close(&s), 0);
    assert_int_equal(rc_store_close(&s), 0); /* NULL is fine */
    assert_int_equal(rc_store_close(NULL), 0);
    s = open_ok(path, 0);
    check_t c;
    recover_check(s, &m, &c);
    /* recover only once, before writing */
    char err[128];
    assert_int_equal(rc_store_recover(s, check_visit, &c, err, sizeof err), RC_STORE_ESTATE);
    rc_store_close(&s);
    model_free(&m);
}

typedef struct {
    int n;
    size_t lens[8];
    size_t klens[8];
} edge_t;

static int edge_visit(void *arg, const uint8_t *key, size_t klen, const uint8_t *blob, size_t blen)
{
    edge_t *e = arg;
    if (e->n < 8) {
        e->klens[e->n] = klen;
        e->lens[e->n] = blen;
    }
    for (size_t i = 0; i < blen; i++)
        if (blob[i] != (uint8_t) (i * 7 + klen)) {
            e->n = 1000;
            return 1;
        }
    e->n++;
    return 0;
}

static void test_edge_sizes(void **state)
{
    char path[512];
    path_of(path, sizeof path, "edge.store");
    rc_store_t *s = open_ok(path, 0);
    uint8_t key[300];
    memset(key, 'k', sizeof key);
    size_t big = RC_STORE_BLOB_MAX;
    uint8_t *blob = malloc(big + 1);
    assert_int_equal(rc_store_put(s, key, 0, blob, 1), RC_STORE_EINVAL);
    assert_int_equal(rc_store_put(s, NULL, 3, blob, 1), RC_STORE_EINVAL);
    assert_int_equal(rc_store_put(s, key, RC_STORE_KEY_MAX + 1, blob, 1), RC_STORE_EINVAL);
    assert_int_equal(rc_store_put(s, key, 3, blob, big + 1), RC_STORE_EINVAL);
    assert_int_equal(rc_store_put(s, key, 3, NULL, 5), RC_STORE_EINVAL);
    assert_int_equal(rc_store_del(s, key, 0), RC_STORE_EINVAL);
    assert_int_equal(rc_store_del(s, key, RC_STORE_KEY_MAX + 1), RC_STORE_EINVAL);
    size_t sizes[][2] = {{1, 0}, {RC_STORE_KEY_MAX, 1}, {2, big}, {3, 65536}};
    for (int i = 0; i < 4; i++) {
        key[0] = (uint8_t) ('a' + i);
        for (size_t b = 0; b < sizes[i][1]; b++)
            blob[b] = (uint8_t) (b * 7 + sizes[i][0]);
        assert_int_equal(rc_store_put(s, key, sizes[i][0], sizes[i][1] ? blob : NULL, sizes[i][1]), 0);
        rc_store_group(s);
    }
    assert_int_equal(rc_store_close(&s), 0);
    s = open_ok(path, 0);
    edge_t e = {0};
    char err[128];
    assert_int_equal(rc_store_recover(s, edge_visit, &e, err, sizeof err), 0);
    assert_int_equal(e.n, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(e.klens[i], sizes[i][0]);
        assert_int_equal(e.lens[i], sizes[i][1]);
    }
    rc_store_close(&s);
    free(blob);
}

/* Several puts of a key in a batch write one record; a delete of a key
 * never written writes nothing; a put then delete of a new key neither. */
static void test_coalesce(void **state)
{
    char path[512];
    path_of(path, sizeof path, "co.store");
    rc_store_t *s = open_ok(path, 0);
    uint8_t v[8] = {0};
    for (int i = 0; i < 100; i++) {
        memcpy(v, &i, sizeof i);
        assert_int_equal(rc_store_put(s, "same", 4, v, sizeof v), 0);
    }
    assert_int_equal(rc_store_del(s, "never", 5), 0);
    assert_int_equal(rc_store_put(s, "brief", 5, "x", 1), 0);
    assert_int_equal(rc_store_del(s, "brief", 5), 0);
    wait_durable(s, rc_store_group(s));
    rc_store_stats_t st;
    double end = now_s() + 10;
    do {
        rc_store_stats(s, &st);
    } while (st.groups_committed < 1 && now_s() < end);
    assert_int_equal(st.records_written, 1);
    assert_int_equal(st.puts_coalesced, 100);
    assert_int_equal(st.live_records, 1);
    assert_int_equal(rc_store_close(&s), 0);
}

/* The writer may fall behind: puts are refused past the bound, never queued
 * without limit; the durable fd wakes a poller. */
static void test_queue_bound(void **state)
{
    char path[512];
    path_of(path, sizeof path, "qb.store");
    rc_store_options_t o;
    rc_store_options_defaults(&o);
    o.queue_max = 64 * 1024;
    char err[256];
    rc_store_t *s = rc_store_open(path, &o, NULL, err, sizeof err);
    assert_non_null(s);
    uint8_t v[1000] = {0}, key[16];
    int i = 0, rc;
    while ((rc = rc_store_put(s, key, key_of(i % NKEYS, key), v, sizeof v)) == 0)
        i++;
    assert_int_equal(rc, RC_STORE_EBEHIND);
    assert_true(i >= 60 && i <= 66);
    assert_int_equal(rc_store_del(s, key, 7), 0); /* deletes pass up to twice the bound */
    uint64_t seq = rc_store_group(s);
    struct pollfd p = {.fd = rc_store_fd(s), .events = POLLIN};
    double end = now_s() + 30;
    while (rc_store_durable(s) < seq && now_s() < end)
        assert_true(poll(&p, 1, 5000) >= 0);
    assert_int_equal(rc_store_durable(s), seq);
    assert_int_equal(rc_store_put(s, key, 7, v, sizeof v), 0);
    assert_int_equal(rc_store_close(&s), 0);
}

/* A constant live set under heavy overwrite/delete: compaction keeps the
 * stored bytes (and the file) bounded by the live data. */
static void test_compaction_bounded(void **state)
{
    char path[512];
    path_of(path, sizeof path, "churn.store");
    model_t m = {0};
    rc_store_t *s = open_ok(path, 0);
    uint8_t key[16], val[2048] = {0};
    uint64_t seq = 0, max_stored = 0, max_file = 0;
    int rounds = RUNNING_ON_VALGRIND ? 100 : 400;
    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < 200; j++) {
            int i = (int) (rnd() % NKEYS);
            size_t klen = key_of(i, key);
            if (rnd() % 8 == 0) {
                rc_store_del(s, key, klen);
                model_del(&m, i);
            } else {
                size_t len = 1024 + rnd() % 1024;
                for (size_t b = 0; b < len; b += 8)
                    val[b] = (uint8_t) rnd();
                int rc;
                while ((rc = rc_store_put(s, key, klen, val, len)) == RC_STORE_EBEHIND)
                    wait_durable(s, rc_store_group(s));
                assert_int_equal(rc, 0);
                model_put(&m, i, val, len);
            }
        }
        seq = rc_store_group(s);
        wait_durable(s, seq); /* a transaction per round: no coalescing across rounds */
        if (r % 20 == 0) {
            rc_store_stats_t st;
            rc_store_stats(s, &st);
            if (r > rounds / 4) {
                max_stored = st.stored_bytes > max_stored ? st.stored_bytes : max_stored;
                max_file = st.file_bytes > max_file ? st.file_bytes : max_file;
            }
        }
    }
    wait_durable(s, seq);
    rc_store_stats_t st;
    rc_store_stats(s, &st);
    /* ~400 KiB live, ~160 MiB written: what is kept must stay near the live
     * data (1.5x plus a few 1 MiB segments of slack), and the file with it
     * (plus the WAL, checkpointed at 32 MiB). */
    print_message("churn: live %llu B, stored max %llu B, file max %llu B, compaction steps %llu\n",
                  (unsigned long long) st.live_bytes, (unsigned long long) max_stored,
                  (unsigned long long) max_file, (unsigned long long) st.compaction_steps);
    assert_true(st.compaction_steps > 0);
    assert_true(max_stored < 16u << 20);
    assert_true(max_file < 96u << 20);
    assert_int_equal(rc_store_close(&s), 0);
    s = open_ok(path, 0);
    check_t c;
    recover_check(s, &m, &c);
    rc_store_close(&s);
    model_free(&m);
}

/* Tens of thousands of keys: the key index grows (incrementally) several
 * times while keys are put and removed, in the writer and in the scan. */
#define MANY 40000
typedef struct {
    bool *present;
    int n, errors;
} many_t;

static int many_visit(void *arg, const uint8_t *key, size_t klen, const uint8_t *blob, size_t blen)
{
    many_t *m = arg;
    int i;
    if (klen != 7 || sscanf((const char *) key, "m%6d", &i) != 1 || i < 0 || i >= MANY || !m->present[i] ||
        blen != sizeof i || memcmp(blob, &i, sizeof i) != 0)
        m->errors++;
    else
        m->present[i] = false; /* seen: a second visit would be an error */
    m->n++;
    return 0;
}

static void test_many_keys(void **state)
{
    char path[512];
    path_of(path, sizeof path, "many.store");
    bool *present = calloc(MANY, sizeof *present);
    rc_store_t *s = open_ok(path, 0);
    char key[16];
    int live = 0;
    for (int i = 0; i < MANY; i++) {
        snprintf(key, sizeof key, "m%06d", i);
        assert_int_equal(rc_store_put(s, key, 7, &i, sizeof i), 0);
        present[i] = true;
        live++;
        if (i % 3 == 2) { /* delete an earlier key, written or still in this group */
            int d = (int) (rnd() % (uint64_t) (i + 1));
            if (present[d]) {
                snprintf(key, sizeof key, "m%06d", d);
                assert_int_equal(rc_store_del(s, key, 7), 0);
                present[d] = false;
                live--;
            }
        }
        if (i % 500 == 499)
            rc_store_group(s);
        if (i == MANY / 2) { /* reopen halfway: the scan grows the index too */
            assert_int_equal(rc_store_close(&s), 0);
            s = open_ok(path, 0);
        }
    }
    assert_int_equal(rc_store_close(&s), 0);
    s = open_ok(path, 0);
    rc_store_stats_t st;
    rc_store_stats(s, &st);
    assert_int_equal(st.live_records, (uint64_t) live);
    many_t m = {.present = present};
    char err[128];
    assert_int_equal(rc_store_recover(s, many_visit, &m, err, sizeof err), 0);
    assert_int_equal(m.errors, 0);
    assert_int_equal(m.n, live);
    rc_store_close(&s);
    free(present);
}

/* ---- crash safety: groups generated from their number alone, so that the
 * parent can rebuild the exact state after groups 1..G ---- */

/* put, waiting (bounded) while the writer is behind; never hands the group
 * over, so that a group stays whole. */
static int put_wait(rc_store_t *s, const void *key, size_t klen, const void *val, size_t len)
{
    int rc;
    double end = now_s() + 20;
    while ((rc = rc_store_put(s, key, klen, val, len)) == RC_STORE_EBEHIND && now_s() < end) {
        struct pollfd p = {.fd = rc_store_fd(s), .events = POLLIN};
        poll(&p, 1, 10);
        rc_store_durable(s);
    }
    return rc;
}

/* Builds group g's operations, a function of g alone, into the store s (if
 * not NULL) and the model m (if not NULL; with s, only what s accepted), and
 * puts "meta" = g last. Returns the first refusal's code; never hands the
 * group over. */
static int group_ops(uint64_t g, model_t *m, rc_store_t *s)
{
    uint64_t saved = rng;
    rng = g * 0x9e3779b97f4a7c15ull + 1;
    int n = 1 + (int) (rnd() % 40), first = 0, rc;
    uint8_t key[16], val[40000];
    for (int j = 0; j < n; j++) {
        int i = (int) (rnd() % NKEYS);
        size_t klen = key_of(i, key);
        if (rnd() % 4 == 0) {
            rc = s ? rc_store_del(s, key, klen) : 0;
            if (!rc && m)
                model_del(m, i);
        } else {
            size_t len = rnd() % 16 == 0 ? 20000 + rnd() % 20000 : rnd() % 300;
            memset(val, 0, 16);
            snprintf((char *) val, 16, "g%llu/%d", (unsigned long long) g, j);
            for (size_t b = 16; b < len; b++)
                val[b] = (uint8_t) (b + g);
            if (len < 16)
                len = 16;
            rc = s ? put_wait(s, key, klen, val, len) : 0;
            if (!rc && m)
                model_put(m, i, val, len);
        }
        if (rc && !first)
            first = rc;
    }
    /* The group's number, in every group: which groups a recovery holds. */
    rc = s ? put_wait(s, "meta", 4, &g, sizeof g) : 0;
    rng = saved;
    return first ? first : rc;
}

/* The last group a store holds (its "meta" key), read by a recovery that
 * checks nothing else. */
static uint64_t held_group(const char *path)
{
    rc_store_t *s = open_ok(path, 0);
    model_t probe = {0};
    check_t c = {.m = &probe, .probe = true};
    char err[256];
    assert_int_equal(rc_store_recover(s, check_visit, &c, err, sizeof err), 0);
    model_free(&probe);
    rc_store_close(&s);
    uint64_t held = 0;
    if (c.has_meta)
        memcpy(&held, c.meta, sizeof held);
    return held;
}

/* The child: continue from the group the store holds, report each durable
 * group number on the pipe, until killed. */
static void crash_child(const char *path, int fd, int relaxed)
{
    rc_store_options_t o;
    rc_store_options_defaults(&o);
    o.relaxed = relaxed;
    char err[256];
    rc_store_t *s = rc_store_open(path, &o, NULL, err, sizeof err);
    if (!s)
        _exit(3);
    model_t dummy = {0};
    check_t c = {.m = &dummy, .probe = true};
    if (rc_store_recover(s, check_visit, &c, err, sizeof err) != 0)
        _exit(4);
    uint64_t g = 0;
    if (c.has_meta)
        memcpy(&g, c.meta, sizeof g);
    uint64_t first_seq = 0, base = g, reported = 0;
    for (;;) {
        g++;
        if (group_ops(g, NULL, s) != 0)
            _exit(6);
        uint64_t seq = rc_store_group(s);
        if (!first_seq)
            first_seq = seq;
        uint64_t d = rc_store_durable(s);
        if (d > reported) {
            uint64_t gd = base + d; /* seq n is group base + n */
            if (write(fd, &gd, sizeof gd) != sizeof gd)
                _exit(5);
            reported = d;
        }
        if (g % 8 == 0) {
            struct pollfd p = {.fd = rc_store_fd(s), .events = POLLIN};
            poll(&p, 1, 2);
        }
    }
}

static void test_crash_cycles(void **state)
{
    char path[512];
    path_of(path, sizeof path, "crash.store");
    model_t m = {0};
    uint64_t applied = 0, max_durable = 0;
    int cycles = RUNNING_ON_VALGRIND ? 6 : 40;
    double t_end = now_s() + 200;
    for (int cy = 0; cy < cycles && now_s() < t_end; cy++) {
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        int relaxed = cy % 3 == 2;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            crash_child(path, pfd[1], relaxed);
            _exit(0);
        }
        close(pfd[1]);
        /* Kill after a random number of durable reports (so each cycle
         * gets somewhere), then a random extra moment. */
        int want = 1 + (int) (rnd() % 30);
        double end = now_s() + 20;
        for (int got = 0; got < want && now_s() < end;) {
            struct pollfd p = {.fd = pfd[0], .events = POLLIN};
            if (poll(&p, 1, 100) > 0) {
                uint64_t gd;
                ssize_t n = read(pfd[0], &gd, sizeof gd);
                if (n != sizeof gd)
                    break;
                max_durable = gd > max_durable ? gd : max_durable;
                got++;
            }
        }
        struct timespec ts = {0, (long) (rnd() % 3000) * 1000};
        nanosleep(&ts, NULL); /* not a synchronisation: a random kill moment */
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        uint64_t gd;
        while (read(pfd[0], &gd, sizeof gd) == sizeof gd) /* reports that raced the kill */
            max_durable = gd > max_durable ? gd : max_durable;
        close(pfd[0]);
        assert_true(WIFSIGNALED(status));

        uint64_t held = held_group(path);
        /* every group reported durable is there */
        if (held < max_durable)
            print_error("cycle %d: store holds group %llu, %llu was reported durable\n", cy,
                        (unsigned long long) held, (unsigned long long) max_durable);
        assert_true(held >= max_durable);
        /* ...whole, and nothing of a later group: the exact state of 1..held */
        for (uint64_t g = applied + 1; g <= held; g++)
            group_ops(g, &m, NULL);
        applied = held;
        rc_store_t *s = open_ok(path, 0);
        check_t c;
        recover_check(s, &m, &c);
        rc_store_close(&s);
    }
    print_message("crash cycles: %llu groups applied, %llu reported durable\n", (unsigned long long) applied,
                  (unsigned long long) max_durable);
    assert_true(applied > 0);
    model_free(&m);
}

/* ---- files that are not a store, or damaged ---- */

static void expect_open_error(const char *path, int code, const char *words)
{
    char err[256] = "";
    int c = 0;
    rc_store_t *s = rc_store_open(path, NULL, &c, err, sizeof err);
    if (s || c != code || !strstr(err, words))
        print_error("open %s: code %d (want %d), message \"%s\" (want \"%s\")\n", path, c, code, err, words);
    assert_null(s);
    assert_int_equal(c, code);
    assert_non_null(strstr(err, words));
    assert_non_null(strstr(err, path));
}

static void test_not_a_store(void **state)
{
    char path[512];
    path_of(path, sizeof path, "text.store");
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 200; i++)
        fprintf(f, "this is a text file, line %d\n", i);
    fclose(f);
    expect_open_error(path, RC_STORE_ENOTSTORE, "not a SQLite database");
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size > 1000); /* left as it was */

    path_of(path, sizeof path, "other.db");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(a); INSERT INTO t VALUES(1)", 0, 0, 0), SQLITE_OK);
    sqlite3_close(db);
    expect_open_error(path, RC_STORE_ENOTSTORE, "another application");

    path_of(path, sizeof path, "empty.store");
    close(open(path, O_CREAT | O_WRONLY, 0600));
    expect_open_error(path, RC_STORE_ECORRUPT, "empty");

    expect_open_error(dir, RC_STORE_ENOTSTORE, "not a regular file");

    path_of(path, sizeof path, "newer.store");
    rc_store_t *s = open_ok(path, 0);
    rc_store_put(s, "k", 1, "v", 1);
    rc_store_close(&s);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=2", 0, 0, 0), SQLITE_OK);
    sqlite3_close(db);
    expect_open_error(path, RC_STORE_EVERSION, "newer");

    /* In use by another process (here: another open of this process). */
    path_of(path, sizeof path, "busy.store");
    s = open_ok(path, 0);
    expect_open_error(path, RC_STORE_EBUSY, "in use");
    rc_store_close(&s);
}

/* Writes a store of ~6 MiB (1000 keys written several times, every blob
 * saying which key and version it is), closed and checkpointed. */
static int self_check_visit(void *arg, const uint8_t *key, size_t klen, const uint8_t *blob, size_t blen)
{
    int *n = arg;
    char want[64];
    if (blen < 24 || klen >= 32)
        return n[1]++, 0;
    snprintf(want, sizeof want, "%.*s", (int) klen, (const char *) key);
    if (memcmp(blob, want, klen) != 0)
        n[1]++;
    for (size_t i = 24; i < blen; i++)
        if (blob[i] != (uint8_t) (i ^ klen))
            return n[1]++, 0;
    n[0]++;
    return 0;
}

static void write_store(const char *path, int versions, int keys)
{
    rc_store_t *s = open_ok(path, 0);
    uint8_t val[3000];
    for (int v = 0; v < versions; v++) {
        for (int i = 0; i < keys; i++) {
            char key[32];
            int klen = snprintf(key, sizeof key, "big-%04d", i);
            size_t len = 1000 + (size_t) (rnd() % 2000);
            memset(val, 0, 24);
            memcpy(val, key, (size_t) klen);
            for (size_t b = 24; b < len; b++)
                val[b] = (uint8_t) (b ^ (size_t) klen);
            while (rc_store_put(s, key, (size_t) klen, val, len) == RC_STORE_EBEHIND)
                wait_durable(s, rc_store_group(s));
            if (i % 50 == 49) /* one transaction per group: the same layout every run */
                wait_durable(s, rc_store_group(s));
        }
    }
    assert_int_equal(rc_store_close(&s), 0);
}

/* ~6 MiB, three versions of 1000 keys (so compaction has run). */
static void write_big_store(const char *path)
{
    write_store(path, 3, 1000);
}

static void salvage_and_check(const char *path, int *kept)
{
    char dst[600], err[512];
    snprintf(dst, sizeof dst, "%s.salvaged", path);
    unlink(dst);
    int rc = rc_store_salvage(path, dst, err, sizeof err);
    print_message("salvage: rc %d: %s\n", rc, err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(err, "records kept"));
    rc_store_t *s = open_ok(dst, 0);
    int n[2] = {0, 0};
    assert_int_equal(rc_store_recover(s, self_check_visit, n, err, sizeof err), 0);
    assert_int_equal(n[1], 0); /* everything salvaged is a record that was written, whole */
    *kept = n[0];
    rc_store_close(&s);
    unlink(dst);
}

static void test_truncated(void **state)
{
    char path[512];
    path_of(path, sizeof path, "trunc.store");
    write_store(path, 1, 3000); /* one version of 3000 keys: rows in write order */
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size / 2), 0);
    char err[256] = "";
    int code = 0;
    rc_store_t *s = rc_store_open(path, NULL, &code, err, sizeof err);
    print_message("truncated: code %d: %s\n", code, err);
    assert_null(s);
    assert_int_equal(code, RC_STORE_ECORRUPT);
    assert_non_null(strstr(err, "truncated"));
    int kept = 0;
    salvage_and_check(path, &kept);
    /* What SQLite can still reach through the table's b-tree pages before
     * the cut comes back; it depends on where those pages lie. */
    print_message("truncated to half: %d of 3000 keys salvaged\n", kept);
    assert_true(kept > 0 && kept < 3000);
    /* cut into the live data: the first two pages left */
    assert_int_equal(truncate(path, 2 * 65536), 0);
    s = rc_store_open(path, NULL, &code, err, sizeof err);
    print_message("truncated to 128 KiB: code %d: %s\n", code, err);
    assert_null(s);
    assert_int_equal(code, RC_STORE_ECORRUPT);
    salvage_and_check(path, &kept);
    print_message("truncated to 128 KiB: %d of 3000 keys salvaged\n", kept);
    assert_true(kept < 3000);
}

static void test_corrupted(void **state)
{
    char path[512];
    path_of(path, sizeof path, "corrupt.store");
    for (int trial = 0; trial < 12; trial++) {
        unlink(path);
        write_big_store(path);
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        int fd = open(path, O_WRONLY);
        /* random bytes over a few random pages (never page 1's header in
         * odd trials, always some of it in even ones) */
        for (int k = 0; k < 3; k++) {
            off_t page = (off_t) (rnd() % (uint64_t) (sb.st_size / 65536));
            if (trial % 2 && page == 0)
                page = 1;
            uint8_t junk[512];
            for (size_t b = 0; b < sizeof junk; b++)
                junk[b] = (uint8_t) rnd();
            off_t at = page * 65536 + (off_t) (rnd() % (65536 - sizeof junk));
            assert_int_equal(pwrite(fd, junk, sizeof junk, at), (ssize_t) sizeof junk);
        }
        close(fd);
        char err[256] = "";
        int code = 0;
        rc_store_t *s = rc_store_open(path, NULL, &code, err, sizeof err);
        if (s) {
            /* The junk fell where nothing lives: then everything is intact. */
            int n[2] = {0, 0};
            assert_int_equal(rc_store_recover(s, self_check_visit, n, err, sizeof err), 0);
            assert_int_equal(n[0], 1000);
            assert_int_equal(n[1], 0);
            rc_store_close(&s);
            print_message("corruption trial %d: landed in unused space; all 1000 intact\n", trial);
            continue;
        }
        print_message("corruption trial %d: code %d: %s\n", trial, code, err);
        assert_true(code == RC_STORE_ECORRUPT || code == RC_STORE_ENOTSTORE);
        assert_true(strlen(err) > 10);
        if (code == RC_STORE_ECORRUPT) {
            int kept = 0;
            salvage_and_check(path, &kept);
            print_message("  salvaged %d of 1000 keys\n", kept);
        }
    }
}

/* ---- a full disk ---- */

/* The child fills what it may write, then reports: the last durable group
 * and the code puts get. */
static void full_child(const char *path, int fd, rlim_t limit)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {limit, limit};
    if (limit && setrlimit(RLIMIT_FSIZE, &rl) != 0)
        _exit(2);
    rc_store_t *s = rc_store_open(path, NULL, NULL, (char[256]){0}, 256);
    if (!s)
        _exit(3);
    model_t dummy = {0};
    check_t c = {.m = &dummy, .probe = true};
    if (rc_store_recover(s, check_visit, &c, (char[256]){0}, 256) != 0)
        _exit(4);
    uint64_t g = 0, durable_g = 0;
    if (c.has_meta)
        memcpy(&g, c.meta, sizeof g);
    uint64_t base = g;
    double end = now_s() + 60;
    int code = 0;
    while (!code && now_s() < end) {
        g++;
        /* A refused put leaves the group unfinished: it is never handed over. */
        if ((code = group_ops(g, NULL, s)) != 0)
            break;
        uint64_t seq = rc_store_group(s);
        while (rc_store_durable(s) < seq && !(code = rc_store_write_error(s))) {
            struct pollfd p = {.fd = rc_store_fd(s), .events = POLLIN};
            poll(&p, 1, 100);
        }
    }
    durable_g = base + rc_store_durable(s);
    int put_code = rc_store_put(s, "x", 1, "y", 1);
    int del_code = rc_store_del(s, "x", 1);
    rc_store_stats_t st;
    rc_store_stats(s, &st);
    uint64_t msg[4] = {durable_g, (uint64_t) code, (uint64_t) put_code, (uint64_t) del_code};
    if (write(fd, msg, sizeof msg) != sizeof msg)
        _exit(5);
    if (write(fd, st.write_error_msg, sizeof st.write_error_msg) != sizeof st.write_error_msg)
        _exit(5);
    /* Wait to be killed, as a crash would stop it: no close (it would hand
     * over the unfinished group), no exit handlers (valgrind would count the
     * open store as lost). */
    for (;;)
        pause();
}

static uint64_t run_full_child(const char *path, rlim_t limit, model_t *m, uint64_t *applied)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        full_child(path, pfd[1], limit);
    }
    close(pfd[1]);
    uint64_t msg[4] = {0};
    char emsg[160] = "";
    ssize_t n1 = read(pfd[0], msg, sizeof msg), n2 = read(pfd[0], emsg, sizeof emsg);
    close(pfd[0]);
    kill(pid, SIGKILL); /* before any assertion: never leave the child behind */
    int status;
    waitpid(pid, &status, 0);
    assert_int_equal(n1, (ssize_t) sizeof msg);
    assert_int_equal(n2, (ssize_t) sizeof emsg);
    print_message("full disk: durable up to group %llu, write error %d (%s: %s), put %d, del %d\n",
                  (unsigned long long) msg[0], (int) msg[1], rc_store_strerror((int) msg[1]), emsg,
                  (int) msg[2], (int) msg[3]);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(msg[1], RC_STORE_ENOSPC);
    assert_int_equal(msg[2], msg[1]); /* puts refused with the write error */
    assert_int_equal(msg[3], 0);      /* deletes still taken */
    /* recovery works and holds every durable group, whole */
    uint64_t held = held_group(path);
    assert_true(held >= msg[0]);
    for (uint64_t g = *applied + 1; g <= held; g++)
        group_ops(g, m, NULL);
    *applied = held;
    rc_store_t *s = open_ok(path, 0);
    check_t c;
    recover_check(s, m, &c);
    rc_store_close(&s);
    return held;
}

static void test_full_disk_rlimit(void **state)
{
    char path[512];
    path_of(path, sizeof path, "full.store");
    model_t m = {0};
    uint64_t applied = 0;
    /* some durable groups first, then a limit 3 MiB above the files */
    rc_store_t *s = open_ok(path, 0);
    for (uint64_t g = 1; g <= 50; g++)
        group_ops(g, &m, s);
    wait_durable(s, rc_store_group(s));
    rc_store_close(&s);
    applied = 50;
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    run_full_child(path, (rlim_t) sb.st_size + (3u << 20), &m, &applied);
    model_free(&m);
}

static void fill(const char *filler, size_t max)
{
    static uint8_t chunk[65536];
    int fd = open(filler, O_CREAT | O_WRONLY | O_APPEND, 0600);
    assert_true(fd >= 0);
    for (size_t n = 0; n < max && write(fd, chunk, sizeof chunk) > 0; n += sizeof chunk) {
    }
    close(fd);
}

static void wait_seq(rc_store_t *s, uint64_t seq)
{
    double end = now_s() + 30;
    while (rc_store_durable(s) < seq && now_s() < end) {
        struct pollfd p = {.fd = rc_store_fd(s), .events = POLLIN};
        poll(&p, 1, 100);
    }
}

/* As root: an 8 MiB tmpfs, half of it taken by a filler file, the rest
 * filled by the store (in a child); recovery with the disk still full; the
 * filler removed, the writer's retry lands the groups it kept; full again
 * and closed while full: close says what it lost, nothing durable is. */
static void test_full_disk_tmpfs(void **state)
{
    if (geteuid() != 0) {
        print_message("not root: the tmpfs case is skipped (the RLIMIT_FSIZE case ran)\n");
        skip();
    }
    char mnt[300];
    snprintf(mnt, sizeof mnt, "%s/tmpfs", dir);
    mkdir(mnt, 0700);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=8m") != 0) {
        print_message("cannot mount a tmpfs (%s): skipped\n", strerror(errno));
        skip();
    }
    char path[512], filler[512];
    snprintf(path, sizeof path, "%s/full.store", mnt);
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    fill(filler, 4u << 20);
    model_t m = {0};
    uint64_t applied = 0;
    run_full_child(path, 0, &m, &applied); /* it recovers with the disk still full */

    rc_store_t *s = open_ok(path, 0);
    check_t c;
    recover_check(s, &m, &c);
    fill(filler, SIZE_MAX); /* whatever room is left */
    uint64_t g = applied, seq = 0;
    double end = now_s() + 30;
    while (!rc_store_write_error(s) && now_s() < end) {
        group_ops(++g, &m, s); /* the model takes what the store accepted */
        seq = rc_store_group(s);
        struct pollfd p = {.fd = rc_store_fd(s), .events = POLLIN};
        poll(&p, 1, 20);
    }
    assert_int_not_equal(rc_store_write_error(s), 0);
    unlink(filler);
    wait_seq(s, seq);
    if (rc_store_durable(s) != seq) {
        rc_store_stats_t st;
        rc_store_stats(s, &st);
        print_error("after space came back: durable %llu of %llu, error %d: %s\n",
                    (unsigned long long) rc_store_durable(s), (unsigned long long) seq, st.write_error,
                    st.write_error_msg);
    }
    assert_int_equal(rc_store_durable(s), seq); /* the kept groups landed */
    assert_int_equal(rc_store_write_error(s), 0);
    assert_int_equal(rc_store_put(s, "meta", 4, &g, sizeof g), 0); /* puts taken again */
    wait_seq(s, rc_store_group(s));
    assert_int_equal(rc_store_close(&s), 0);
    s = open_ok(path, 0);
    recover_check(s, &m, &c);

    fill(filler, SIZE_MAX);
    uint64_t durable_g = g;
    end = now_s() + 30;
    while (!rc_store_write_error(s) && now_s() < end) {
        if (group_ops(++g, NULL, s) != 0)
            break;
        seq = rc_store_group(s);
        struct pollfd p = {.fd = rc_store_fd(s), .events = POLLIN};
        poll(&p, 1, 20);
        if (!rc_store_write_error(s) && rc_store_durable(s) == seq)
            durable_g = g;
    }
    int close_code = rc_store_close(&s);
    print_message("closed while full: %d (%s)\n", close_code, rc_store_strerror(close_code));
    assert_true(close_code == RC_STORE_ENOSPC || close_code == RC_STORE_EIO);
    s = open_ok(path, 0);
    model_t probe = {0};
    check_t c2 = {.m = &probe, .probe = true};
    char err[256];
    assert_int_equal(rc_store_recover(s, check_visit, &c2, err, sizeof err), 0);
    model_free(&probe);
    uint64_t held = 0;
    memcpy(&held, c2.meta, sizeof held);
    assert_true(held >= durable_g);
    rc_store_close(&s);
    model_free(&m);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_edge_sizes),
        cmocka_unit_test(test_coalesce),         cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_queue_bound),      cmocka_unit_test(test_compaction_bounded),
        cmocka_unit_test(test_crash_cycles),     cmocka_unit_test(test_not_a_store),
        cmocka_unit_test(test_truncated),        cmocka_unit_test(test_corrupted),
        cmocka_unit_test(test_full_disk_rlimit), cmocka_unit_test(test_full_disk_tmpfs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
