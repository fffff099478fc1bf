/* rc_store_salvage: copying what is intact out of a damaged store into a
 * new one. It reads a copy of the damaged file (padded back to its stated
 * size when it was truncated), skips the segments that fail their checksum
 * and the rows SQLite cannot reach, and writes the latest intact version of
 * each key through the ordinary store API. The damaged file is not touched. */
#include "rc_store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    rc_store_t *dst;
    uint64_t n;
    int code;
} salvage_t;

static int salvage_visit(void *arg, const uint8_t *key, size_t klen, const uint8_t *blob, size_t blen)
{
    salvage_t *sv = arg;
    int rc;
    while ((rc = rc_store_put(sv->dst, key, klen, blob, blen)) == RC_STORE_EBEHIND) {
        rc_store_group(sv->dst);
        struct pollfd pfd = {.fd = rc_store_fd(sv->dst), .events = POLLIN};
        poll(&pfd, 1, 100);
        rc_store_durable(sv->dst);
    }
    if (rc)
        return sv->code = rc;
    if (++sv->n % 4096 == 0)
        rc_store_group(sv->dst);
    return 0;
}

/* Copies src to dst (which it creates); returns 0 or -1 with errno. */
static int copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
    char *buf = malloc(1 << 20);
    if (in < 0 || !buf || (out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
        goto done;
    for (;;) {
        ssize_t n = read(in, buf, 1 << 20);
        if (n < 0)
            goto done;
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t) (n - off));
            if (w < 0)
                goto done;
            off += w;
        }
    }
    rc = 0;
done:
    free(buf);
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0)
        rc = -1;
    return rc;
}

/* A truncated copy is padded with zeros to the size its header states, so
 * that SQLite opens it and the missing pages read as damaged rows. */
static void pad_to_header(const char *path)
{
    uint8_t h[100];
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat sb;
    if (pread(fd, h, sizeof h, 0) == (ssize_t) sizeof h && fstat(fd, &sb) == 0) {
        uint64_t ps = (uint64_t) h[16] << 8 | h[17];
        uint64_t pages = (uint64_t) h[28] << 24 | (uint64_t) h[29] << 16 | (uint64_t) h[30] << 8 | h[31];
        if (ps == 1)
            ps = 65536;
        if (ps >= 512 && pages * ps > (uint64_t) sb.st_size && pages * ps < (1ull << 40))
            if (ftruncate(fd, (off_t) (pages * ps)) != 0)
                pages = 0;
    }
    close(fd);
}

static void unlink_db(const char *path)
{
    char p[4200];
    unlink(path);
    snprintf(p, sizeof p, "%.4000s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%.4000s-shm", path);
    unlink(p);
}

int rc_store_salvage(const char *src, const char *dst, char *errbuf, size_t errlen)
{
    struct stat sb;
    if (!src || !dst || stat(dst, &sb) == 0) {
        snprintf(errbuf, errlen, "salvage: the destination %s must not exist", dst ? dst : "(null)");
        return RC_STORE_EINVAL;
    }
    /* Salvage reads a copy: src stays as it is, and a truncated copy can be
     * padded back to its stated size. */
    char copy[4200], wal_from[4200], wal_to[4200];
    snprintf(copy, sizeof copy, "%.4000s.salvage-src", dst);
    snprintf(wal_from, sizeof wal_from, "%.4000s-wal", src);
    snprintf(wal_to, sizeof wal_to, "%.4000s-wal", copy);
    unlink_db(copy);
    if (copy_file(src, copy) != 0 || (stat(wal_from, &sb) == 0 && copy_file(wal_from, wal_to) != 0)) {
        snprintf(errbuf, errlen, "salvage: cannot copy %s to %s: %s", src, copy, strerror(errno));
        unlink_db(copy);
        return RC_STORE_EIO;
    }
    pad_to_header(copy);
    rc_store_options_t ro;
    rc_store_options_defaults(&ro);
    ro.read_only = 1;
    int code;
    rc_store_t *from = rc_store_open_as(copy, &ro, true, &code, errbuf, errlen);
    if (!from) {
        unlink_db(copy);
        return code;
    }
    rc_store_t *to = rc_store_open(dst, NULL, &code, errbuf, errlen);
    if (!to) {
        rc_store_close(&from);
        unlink_db(copy);
        return code;
    }
    salvage_t sv = {.dst = to};
    char ebuf[256] = "";
    int r = rc_store_recover(from, salvage_visit, &sv, ebuf, sizeof ebuf);
    int c2 = rc_store_close(&to);
    code = r ? (sv.code ? sv.code : r) : c2;
    snprintf(errbuf, errlen,
             "salvage of %s into %s: %llu records kept (from %zu intact segments); skipped: %llu "
             "segments failing their checksum, %llu row lookups failing in damaged b-tree pages%s%s",
             src, dst, (unsigned long long) sv.n, from->nsegs - from->segs_gone,
             (unsigned long long) from->salvage_skipped_segments,
             (unsigned long long) from->salvage_skipped_rows_unreadable, code ? ": " : "",
             code ? (ebuf[0] ? ebuf : rc_store_strerror(code)) : "");
    rc_store_close(&from);
    unlink_db(copy);
    return code;
}
