/* store_bench: measurements of the durable store (rc_store) and of the disk
 * under it, for docs/store.md. Not a test: each mode prints figures.
 *
 *   store_bench disk DIR                      sequential write + fdatasync: bandwidth, latency
 *   store_bench puts DIR [relaxed] COUNT GROUP BLOB [wait]  puts/s, writer CPU, bytes per record
 *                                             (wait: one group per commit, the caller waits)
 *   store_bench tasks DIR [relaxed] TASKS PASS          broker-like: 3 puts per task (accepted,
 *                                             running, finished), PASS tasks per group
 *   store_bench latency DIR [relaxed] RATE SECONDS       put-to-durable latency p50/p99/max
 *   store_bench fill PATH COUNT [BLOB]        writes COUNT records (for recover)
 *   store_bench recover PATH                  open + recover: time, records, peak RSS
 *   store_bench churn DIR LIVE SECONDS        put new / delete oldest at full speed, live
 *                                             set constant; prints the file size each second
 */
#include "rc_store.h"

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double cpu_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A broker-like key: a kind byte and a 16-byte id derived from n. */
static void make_key(uint8_t key[17], uint64_t n)
{
    key[0] = 'T';
    uint64_t a = n * 0x9e3779b97f4a7c15ull, b = a ^ (n << 17) ^ 0x5bd1e995;
    memcpy(key + 1, &a, 8);
    memcpy(key + 9, &b, 8);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static rc_store_t *open_or_die(const char *path, int relaxed)
{
    rc_store_options_t o;
    rc_store_options_defaults(&o);
    o.relaxed = relaxed;
    const char *ps = getenv("STORE_PAGE_SIZE");
    if (ps)
        o.page_size = (unsigned) atoi(ps);
    const char *cb = getenv("STORE_CHECKPOINT_MB");
    if (cb)
        o.checkpoint_bytes = (size_t) atoi(cb) << 20;
    char err[256];
    rc_store_t *s = rc_store_open(path, &o, NULL, err, sizeof err);
    if (!s) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
    return s;
}

static void wait_durable(rc_store_t *s, uint64_t seq)
{
    while (rc_store_durable(s) < seq) {
        struct pollfd p = {.fd = rc_store_fd(s), .events = POLLIN};
        poll(&p, 1, 100);
        if (rc_store_write_error(s)) {
            fprintf(stderr, "write error: %s\n", rc_store_strerror(rc_store_write_error(s)));
            exit(1);
        }
    }
}

/* put, and when the writer is behind, hand over the group and wait a little. */
static void put_retry(rc_store_t *s, const uint8_t *key, size_t klen, const uint8_t *blob, size_t blen,
                      uint64_t *refused)
{
    int rc;
    while ((rc = rc_store_put(s, key, klen, blob, blen)) == RC_STORE_EBEHIND) {
        (*refused)++;
        rc_store_group(s);
        struct pollfd p = {.fd = rc_store_fd(s), .events = POLLIN};
        poll(&p, 1, 10);
        rc_store_durable(s);
    }
    if (rc) {
        fprintf(stderr, "put: %s\n", rc_store_strerror(rc));
        exit(1);
    }
}

static void report_stats(rc_store_t *s, const char *tag)
{
    rc_store_stats_t st;
    rc_store_stats(s, &st);
    printf("%s live_records=%" PRIu64 " live_bytes=%" PRIu64 " stored_bytes=%" PRIu64 " segments=%" PRIu64
           " file_bytes=%" PRIu64 " groups=%" PRIu64 " transactions=%" PRIu64 " records_written=%" PRIu64
           " coalesced=%" PRIu64 " compaction_steps=%" PRIu64 " compaction_read=%" PRIu64
           " checkpoints=%" PRIu64 " max_commit_ms=%.1f max_compact_step_ms=%.1f max_checkpoint_ms=%.1f\n",
           tag, st.live_records, st.live_bytes, st.stored_bytes, st.segments, st.file_bytes,
           st.groups_committed, st.transactions, st.records_written, st.puts_coalesced, st.compaction_steps,
           st.compaction_bytes_read, st.checkpoints, st.max_commit_us / 1e3, st.max_compact_step_us / 1e3,
           st.max_checkpoint_us / 1e3);
}

static int mode_disk(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/disk_bench.tmp", dir);
    size_t sizes[] = {4096, 65536, 1 << 20, 8 << 20};
    uint8_t *buf = aligned_alloc(4096, 8 << 20);
    memset(buf, 0xa5, 8 << 20);
    for (int k = 0; k < 4; k++) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int n = sizes[k] >= (1 << 20) ? 60 : 400;
        double *lat = calloc((size_t) n, sizeof *lat), t0 = now_s();
        for (int i = 0; i < n; i++) {
            double a = now_s();
            if (write(fd, buf, sizes[k]) != (ssize_t) sizes[k] || fdatasync(fd) != 0) {
                perror("write");
                return 1;
            }
            lat[i] = now_s() - a;
        }
        double el = now_s() - t0;
        qsort(lat, (size_t) n, sizeof *lat, cmp_d);
        printf("disk write+fdatasync block=%zu: %.1f MB/s, %.0f syncs/s, latency p50 %.2f ms p99 %.2f ms\n",
               sizes[k], (double) sizes[k] * n / el / 1e6, n / el, lat[n / 2] * 1e3, lat[n * 99 / 100] * 1e3);
        free(lat);
        close(fd);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    double t0 = now_s();
    for (int i = 0; i < 64; i++)
        if (write(fd, buf, 8 << 20) != 8 << 20)
            return 1;
    fdatasync(fd);
    printf("disk stream 512 MiB + one fdatasync: %.1f MB/s\n", 512.0 * 1048576 / (now_s() - t0) / 1e6);
    close(fd);
    unlink(path);
    free(buf);
    return 0;
}

/* wait: each group waits for its durable mark before the next is built, so
 * a transaction is exactly one group (the commit cost at that size); else
 * the caller runs ahead and the writer commits whatever has queued. */
static int mode_puts(const char *dir, int relaxed, uint64_t count, uint64_t group, size_t blen, int wait)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/puts.store", dir);
    unlink(path);
    rc_store_t *s = open_or_die(path, relaxed);
    uint8_t key[17], *blob = malloc(blen);
    for (size_t i = 0; i < blen; i++)
        blob[i] = (uint8_t) rnd();
    uint64_t refused = 0, seq = 0;
    double c0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID), m0 = cpu_s(CLOCK_THREAD_CPUTIME_ID), t0 = now_s();
    for (uint64_t i = 0; i < count; i++) {
        make_key(key, i);
        memcpy(blob, &i, sizeof i);
        put_retry(s, key, 17, blob, blen, &refused);
        if ((i + 1) % group == 0) {
            seq = rc_store_group(s);
            if (wait)
                wait_durable(s, seq);
        }
        if ((i & 1023) == 0)
            rc_store_durable(s);
    }
    seq = rc_store_group(s);
    wait_durable(s, seq);
    double el = now_s() - t0, cpu = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - c0,
           mine = cpu_s(CLOCK_THREAD_CPUTIME_ID) - m0;
    printf("puts %s %s group=%" PRIu64
           " blob=%zu: %.0f puts/s (%.2f s), writer cpu %.2f s (%.0f%% of one core), "
           "caller cpu %.2f s, refused-while-behind %" PRIu64 "\n",
           relaxed ? "relaxed" : "durable", wait ? "one-group-per-commit" : "pipelined", group, blen,
           count / el, el, cpu - mine, 100 * (cpu - mine) / el, mine, refused);
    report_stats(s, "after:");
    rc_store_close(&s);
    struct stat sb;
    stat(path, &sb);
    printf("bytes per record after close (checkpointed): %.1f (record %zu B key+blob)\n",
           (double) sb.st_size / (double) count, 17 + blen);
    unlink(path);
    free(blob);
    return 0;
}

/* Three puts per task as a broker makes them (accepted, running, finished
 * with a small result), PASS tasks begun per drain pass; a task's later
 * puts land one and two passes after its first, so some coalesce in the
 * writer and some do not. */
static int mode_tasks(const char *dir, int relaxed, uint64_t tasks, uint64_t pass)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tasks.store", dir);
    unlink(path);
    rc_store_t *s = open_or_die(path, relaxed);
    uint8_t key[17], blob[200];
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (uint8_t) rnd();
    uint64_t refused = 0, seq = 0, puts = 0;
    double c0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID), m0 = cpu_s(CLOCK_THREAD_CPUTIME_ID), t0 = now_s();
    for (uint64_t p = 0; p * pass < tasks + 2 * pass; p++) {
        for (uint64_t j = 0; j < pass; j++) {
            uint64_t t = p * pass + j;
            if (t < tasks) { /* accepted */
                make_key(key, t);
                put_retry(s, key, 17, blob, 150, &refused);
                puts++;
            }
            if (p >= 1 && (t = (p - 1) * pass + j) < tasks) { /* running */
                make_key(key, t);
                put_retry(s, key, 17, blob, 160, &refused);
                puts++;
            }
            if (p >= 2 && (t = (p - 2) * pass + j) < tasks) { /* finished, small result */
                make_key(key, t);
                put_retry(s, key, 17, blob, 190, &refused);
                puts++;
            }
        }
        seq = rc_store_group(s);
        rc_store_durable(s);
    }
    wait_durable(s, seq);
    double el = now_s() - t0, cpu = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - c0,
           mine = cpu_s(CLOCK_THREAD_CPUTIME_ID) - m0;
    printf("tasks %s pass=%" PRIu64 ": %.0f tasks/s, %.0f puts/s (%.2f s), writer cpu %.0f%% of one core, "
           "caller cpu %.2f s, refused %" PRIu64 "\n",
           relaxed ? "relaxed" : "durable", pass, tasks / el, puts / el, el, 100 * (cpu - mine) / el, mine,
           refused);
    report_stats(s, "after:");
    rc_store_close(&s);
    unlink(path);
    return 0;
}

static int mode_latency(const char *dir, int relaxed, double rate, double seconds)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/latency.store", dir);
    unlink(path);
    rc_store_t *s = open_or_die(path, relaxed);
    /* A drain pass every 100 us carrying the puts due by then. */
    size_t cap = (size_t) (seconds * 10000) + 16, ng = 0;
    double *sent = calloc(cap, sizeof *sent), *lat = calloc(cap, sizeof *lat);
    uint64_t *seqs = calloc(cap, sizeof *seqs), done = 0, n = 0, refused = 0;
    uint8_t key[17], blob[150];
    memset(blob, 7, sizeof blob);
    double t0 = now_s(), next = t0;
    size_t nl = 0;
    while (now_s() - t0 < seconds) {
        double now = now_s();
        uint64_t due = (uint64_t) ((now - t0) * rate);
        bool any = false;
        while (n < due) {
            make_key(key, n++);
            put_retry(s, key, 17, blob, sizeof blob, &refused);
            any = true;
        }
        if (any && ng < cap) {
            seqs[ng] = rc_store_group(s);
            sent[ng++] = now;
        }
        uint64_t d = rc_store_durable(s);
        double t = now_s();
        while (done < ng && seqs[done] <= d)
            lat[nl++] = t - sent[done++];
        next += 100e-6;
        double wait = next - now_s();
        struct pollfd p = {.fd = rc_store_fd(s), .events = POLLIN};
        poll(&p, 1, wait > 0 ? (int) (wait * 1000) : 0);
    }
    while (done < ng) {
        wait_durable(s, seqs[done]);
        double t = now_s();
        uint64_t d = rc_store_durable(s);
        while (done < ng && seqs[done] <= d)
            lat[nl++] = t - sent[done++];
    }
    qsort(lat, nl, sizeof *lat, cmp_d);
    printf("latency %s rate=%.0f puts/s: %zu groups, put-to-durable p50 %.2f ms p99 %.2f ms max %.2f ms\n",
           relaxed ? "relaxed" : "durable", rate, nl, lat[nl / 2] * 1e3, lat[nl * 99 / 100] * 1e3,
           lat[nl - 1] * 1e3);
    report_stats(s, "writer:");
    rc_store_close(&s);
    unlink(path);
    free(sent);
    free(lat);
    free(seqs);
    return 0;
}

static int mode_fill(const char *path, uint64_t count, size_t blen)
{
    rc_store_t *s = open_or_die(path, 0);
    uint8_t key[17], *blob = malloc(blen);
    memset(blob, 3, blen);
    uint64_t refused = 0;
    for (uint64_t i = 0; i < count; i++) {
        make_key(key, i);
        memcpy(blob, &i, sizeof i);
        put_retry(s, key, 17, blob, blen, &refused);
        if ((i + 1) % 4096 == 0)
            rc_store_group(s);
    }
    wait_durable(s, rc_store_group(s));
    report_stats(s, "filled:");
    rc_store_close(&s);
    return 0;
}

static int count_visit(void *arg, const uint8_t *key, size_t klen, const uint8_t *blob, size_t blen)
{
    uint64_t *n = arg;
    n[0]++;
    n[1] += klen + blen;
    return 0;
}

static int mode_recover(const char *path)
{
    double t0 = now_s();
    rc_store_t *s = open_or_die(path, 0);
    double t1 = now_s();
    uint64_t n[2] = {0, 0};
    char err[256];
    int rc = rc_store_recover(s, count_visit, n, err, sizeof err);
    double t2 = now_s();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("recover: %" PRIu64 " records (%" PRIu64
           " key+blob bytes): open+index %.2f s, recover pass %.2f s, "
           "total %.2f s; peak RSS %.0f MiB; rc=%d\n",
           n[0], n[1], t1 - t0, t2 - t1, t2 - t0, ru.ru_maxrss / 1024.0, rc);
    rc_store_close(&s);
    return rc;
}

static int mode_churn(const char *dir, uint64_t live, double seconds)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/churn.store", dir);
    unlink(path);
    rc_store_t *s = open_or_die(path, 0);
    uint8_t key[17], blob[150];
    memset(blob, 9, sizeof blob);
    uint64_t refused = 0, n = 0;
    double t0 = now_s(), next_report = t0 + 1;
    while (now_s() - t0 < seconds) {
        for (int k = 0; k < 2000; k++, n++) {
            make_key(key, n);
            put_retry(s, key, 17, blob, sizeof blob, &refused);
            if (n >= live) {
                make_key(key, n - live);
                rc_store_del(s, key, 17);
            }
        }
        rc_store_group(s);
        rc_store_durable(s);
        if (now_s() >= next_report) {
            rc_store_stats_t st;
            rc_store_stats(s, &st);
            printf("churn t=%.0fs puts=%" PRIu64 " live=%" PRIu64 " live_bytes=%" PRIu64 " stored=%" PRIu64
                   " file=%" PRIu64 " segments=%" PRIu64 " compaction_steps=%" PRIu64 "\n",
                   now_s() - t0, n, st.live_records, st.live_bytes, st.stored_bytes, st.file_bytes,
                   st.segments, st.compaction_steps);
            fflush(stdout);
            next_report += 1;
        }
    }
    wait_durable(s, rc_store_group(s));
    double el = now_s() - t0;
    printf("churn: %.0f puts/s + as many deletes, refused %" PRIu64 "\n", n / el, refused);
    report_stats(s, "end:");
    rc_store_close(&s);
    unlink(path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: see the comment at the top of tests/store_bench.c\n");
        return 2;
    }
    const char *mode = argv[1], *dir = argv[2];
    int a = 3, relaxed = 0;
    if (argc > a && strcmp(argv[a], "relaxed") == 0) {
        relaxed = 1;
        a++;
    }
#define ARG(i, d) (argc > a + (i) ? strtod(argv[a + (i)], NULL) : (d))
    if (!strcmp(mode, "disk"))
        return mode_disk(dir);
    if (!strcmp(mode, "puts"))
        return mode_puts(dir, relaxed, (uint64_t) ARG(0, 2e6), (uint64_t) ARG(1, 4096), (size_t) ARG(2, 150),
                         argc > a + 3 && strcmp(argv[a + 3], "wait") == 0);
    if (!strcmp(mode, "tasks"))
        return mode_tasks(dir, relaxed, (uint64_t) ARG(0, 1e6), (uint64_t) ARG(1, 1000));
    if (!strcmp(mode, "latency"))
        return mode_latency(dir, relaxed, ARG(0, 100000), ARG(1, 5));
    if (!strcmp(mode, "fill"))
        return mode_fill(dir, (uint64_t) ARG(0, 1e6), (size_t) ARG(1, 150));
    if (!strcmp(mode, "recover"))
        return mode_recover(dir);
    if (!strcmp(mode, "churn"))
        return mode_churn(dir, (uint64_t) ARG(0, 200000), ARG(1, 60));
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
