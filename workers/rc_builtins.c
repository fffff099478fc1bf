/* rc_builtins: the built-in functions every worker serves (echo, sleep,
 * primes, spin, fail) and the pure logic behind them. */
#include "rc_builtins.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_common.h"
#include "refcache_worker.h"

/* ------------------------------------------------------------ params */

int rc_param_u64(const char *text, uint64_t def, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!text) {
        *out = def;
        return 0;
    }
    /* strtoull accepts signs and leading blanks; a param is plain digits. */
    if (*text < '0' || *text > '9')
        return -1;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int rc_param_bool(const char *text, bool def, bool *out)
{
    if (!text)
        *out = def;
    else if (strcmp(text, "1") == 0 || strcmp(text, "true") == 0)
        *out = true;
    else if (strcmp(text, "0") == 0 || strcmp(text, "false") == 0)
        *out = false;
    else
        return -1;
    return 0;
}

/* ------------------------------------------------------------ strbuf */

int rc_strbuf_reserve(rc_strbuf_t *self, size_t extra)
{
    if (extra <= self->cap - self->len)
        return 0;
    if (extra > SIZE_MAX / 2 - self->len)
        return -1;
    size_t cap = self->cap ? self->cap : 256;
    while (cap - self->len < extra)
        cap *= 2;
    char *data = realloc(self->data, cap);
    if (!data)
        return -1;
    self->data = data;
    self->cap = cap;
    return 0;
}

void rc_strbuf_free(rc_strbuf_t *self)
{
    free(self->data);
    self->data = NULL;
    self->len = self->cap = 0;
}

/* ------------------------------------------------------------ sieve */

/* Segments of 256 Ki numbers keep the marks (one byte each) in L2 cache and
 * make a step short enough (well under a millisecond) for a prompt cancel. */
#define SIEVE_DEFAULT_SEGMENT (256u * 1024u)

struct rc_sieve {
    uint64_t n;       /* sieve [0, n) */
    uint64_t segment; /* numbers per step */
    uint64_t lo;      /* start of the next segment */
    uint32_t *base;   /* primes up to sqrt(n - 1) */
    size_t nbase;
    uint8_t *marks; /* one per number of a segment; 1 = composite */
};

static uint64_t isqrt(uint64_t x)
{
    uint64_t lo = 0, hi = x < 2 ? x : (x / 2 < 0xffffffffULL ? x / 2 : 0xffffffffULL);
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo + 1) / 2;
        if (mid * mid <= x)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

rc_sieve_t *rc_sieve_new(uint64_t n, uint64_t segment)
{
    rc_sieve_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->n = n;
    self->segment = segment ? segment : SIEVE_DEFAULT_SEGMENT;
    if (self->segment > n && n > 0)
        self->segment = n;
    uint64_t limit = n > 1 ? isqrt(n - 1) : 0;

    /* A plain sieve up to sqrt(n) gives the primes that mark every segment. */
    uint8_t *small = calloc(limit + 1, 1);
    self->base = malloc((limit / 2 + 2) * sizeof *self->base);
    self->marks = malloc(self->segment ? self->segment : 1);
    if (!small || !self->base || !self->marks) {
        free(small);
        rc_sieve_destroy(&self);
        return NULL;
    }
    for (uint64_t i = 2; i <= limit; i++) {
        if (small[i])
            continue;
        self->base[self->nbase++] = (uint32_t) i;
        for (uint64_t j = i * i; j <= limit; j += i)
            small[j] = 1;
    }
    free(small);
    return self;
}

/* Writes v in decimal plus a newline at p; returns the bytes written. */
static size_t put_line(char *p, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    p[n] = '\n';
    return n + 1;
}

int rc_sieve_step(rc_sieve_t *self, rc_strbuf_t *out)
{
    if (self->lo >= self->n)
        return 0;
    uint64_t lo = self->lo;
    uint64_t hi = self->n - lo > self->segment ? lo + self->segment : self->n;
    uint64_t len = hi - lo;

    /* At most every other number of a segment is prime (plus 2), and each
     * takes at most 20 digits and a newline. */
    if (rc_strbuf_reserve(out, (size_t) (len / 2 + 2) * 21) != 0)
        return -1;
    memset(self->marks, 0, len);
    for (size_t k = 0; k < self->nbase; k++) {
        uint64_t p = self->base[k];
        if (p * p >= hi)
            break;
        uint64_t start = (lo + p - 1) / p * p;
        if (start < p * p)
            start = p * p;
        for (uint64_t j = start; j < hi; j += p)
            self->marks[j - lo] = 1;
    }
    for (uint64_t i = lo < 2 ? 2 : lo; i < hi; i++)
        if (!self->marks[i - lo])
            out->len += put_line(out->data + out->len, i);
    self->lo = hi;
    return self->lo < self->n ? 1 : 0;
}

uint64_t rc_sieve_done(const rc_sieve_t *self)
{
    return self->lo;
}

void rc_sieve_destroy(rc_sieve_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rc_sieve_t *self = *self_p;
    free(self->base);
    free(self->marks);
    free(self);
    *self_p = NULL;
}

/* ------------------------------------------------------------ spin */

static inline uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static inline void sipround(uint64_t *v)
{
    v[0] += v[1];
    v[1] = rotl(v[1], 13);
    v[1] ^= v[0];
    v[0] = rotl(v[0], 32);
    v[2] += v[3];
    v[3] = rotl(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = rotl(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = rotl(v[1], 17);
    v[1] ^= v[2];
    v[2] = rotl(v[2], 32);
}

void rc_spin_seed(rc_spin_t *self, const void *bytes, size_t len)
{
    /* SipHash's initial constants with a zero key, absorbing the payload as
     * SipHash-2-4 does, so that every payload gives a different chain. */
    uint64_t *v = self->v;
    v[0] = 0x736f6d6570736575ULL;
    v[1] = 0x646f72616e646f6dULL;
    v[2] = 0x6c7967656e657261ULL;
    v[3] = 0x7465646279746573ULL;
    const uint8_t *p = bytes;
    size_t left = len;
    while (left >= 8) {
        uint64_t m = 0;
        for (int i = 0; i < 8; i++)
            m |= (uint64_t) p[i] << (8 * i);
        v[3] ^= m;
        sipround(v);
        sipround(v);
        v[0] ^= m;
        p += 8;
        left -= 8;
    }
    uint64_t m = (uint64_t) (len & 0xff) << 56;
    for (size_t i = 0; i < left; i++)
        m |= (uint64_t) p[i] << (8 * i);
    v[3] ^= m;
    sipround(v);
    sipround(v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sipround(v);
}

void rc_spin_run(rc_spin_t *self, uint64_t first, uint64_t count)
{
    uint64_t v[4] = {self->v[0], self->v[1], self->v[2], self->v[3]};
    for (uint64_t i = first; i < first + count; i++) {
        v[1] ^= i;
        sipround(v);
        v[3] ^= i;
    }
    memcpy(self->v, v, sizeof v);
}

void rc_spin_hex(const rc_spin_t *self, char out[65])
{
    uint8_t bytes[32];
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 8; i++)
            bytes[k * 8 + i] = (uint8_t) (self->v[k] >> (56 - 8 * i));
    rc_hex_encode(bytes, sizeof bytes, out);
}

/* ------------------------------------------------------------ functions */

/* An integer param of a built-in: a decimal integer in [min, max], def when
 * absent (unless required). docs/protocol.md lists them. */
typedef struct {
    const char *fn;
    const char *key;
    uint64_t def, min, max;
    bool required;
} int_param_t;

static const int_param_t sleep_ms = {"sleep", "ms", 1000, 0, 24ULL * 3600 * 1000, false};
static const int_param_t sleep_step_ms = {"sleep", "step_ms", 10, 1, 60000, false};
static const int_param_t primes_n = {"primes", "n", 0, 2, RC_PRIMES_MAX_N, true};
static const int_param_t spin_iterations = {"spin", "iterations", 1000000, 0, 1000000000000ULL, false};
static const int_param_t spin_step = {"spin", "step", 10000, 1, 1000000000ULL, false};

/* Reads an integer param, or fails the task at once with INVALID_ARGUMENT
 * (not retryable: the same params fail again) naming the param and its
 * range; -1 then. */
static int job_param_u64(refcache_job_t *job, const int_param_t *p, uint64_t *out)
{
    const char *text = refcache_job_param(job, p->key);
    if ((text || !p->required) && rc_param_u64(text, p->def, p->min, p->max, out) == 0)
        return 0;
    if (!text)
        refcache_job_fail(job, REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT, false,
                          "param %s of %s is required: a decimal integer in [%llu, %llu]", p->key, p->fn,
                          (unsigned long long) p->min, (unsigned long long) p->max);
    else
        refcache_job_fail(job, REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT, false,
                          "param %s of %s must be a decimal integer in [%llu, %llu], got \"%.64s\"", p->key,
                          p->fn, (unsigned long long) p->min, (unsigned long long) p->max, text);
    return -1;
}

static int fn_echo(refcache_job_t *job)
{
    size_t len;
    const void *payload = refcache_job_payload(job, &len);
    return refcache_job_result(job, payload, len);
}

static int fn_sleep(refcache_job_t *job)
{
    uint64_t ms, step;
    if (job_param_u64(job, &sleep_ms, &ms) != 0 || job_param_u64(job, &sleep_step_ms, &step) != 0)
        return -1;
    uint64_t start = rc_mono_us();
    uint64_t elapsed = 0;
    if (refcache_job_cancelled(job))
        return 0;
    while (elapsed < ms) {
        uint64_t wait = ms - elapsed < step ? ms - elapsed : step;
        /* Waiting on the control socket (rather than nanosleep) lets a cancel
         * stop the sleep at once instead of at the end of the step. */
        if (refcache_job_sleep(job, (int) wait))
            return 0;
        elapsed = (rc_mono_us() - start) / 1000;
        if (elapsed > ms)
            elapsed = ms;
        refcache_job_progress(job, elapsed, ms);
    }
    char text[48];
    int n = snprintf(text, sizeof text, "slept %llu ms", (unsigned long long) ms);
    return refcache_job_result(job, text, (size_t) n);
}

static int fn_primes(refcache_job_t *job)
{
    uint64_t n;
    if (job_param_u64(job, &primes_n, &n) != 0)
        return -1;
    rc_strbuf_t out = {0};
    rc_sieve_t *sieve = rc_sieve_new(n, 0);
    int rc = sieve ? 1 : -1;
    while (rc == 1) {
        if (refcache_job_cancelled(job))
            break;
        rc = rc_sieve_step(sieve, &out);
        refcache_job_progress(job, rc_sieve_done(sieve), n);
    }
    rc_sieve_destroy(&sieve);
    if (rc < 0) {
        rc_strbuf_free(&out);
        refcache_job_fail(job, REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED, true,
                          "out of memory sieving below %llu", (unsigned long long) n);
        return -1;
    }
    if (rc == 1) { /* cancelled */
        rc_strbuf_free(&out);
        return 0;
    }
    void *data = out.data;
    return refcache_job_result_take(job, &data, out.len);
}

static int fn_spin(refcache_job_t *job)
{
    uint64_t iterations, step;
    if (job_param_u64(job, &spin_iterations, &iterations) != 0 || job_param_u64(job, &spin_step, &step) != 0)
        return -1;
    size_t len;
    const void *payload = refcache_job_payload(job, &len);
    rc_spin_t spin;
    rc_spin_seed(&spin, payload, len);
    for (uint64_t i = 0; i < iterations;) {
        if (refcache_job_cancelled(job))
            return 0;
        uint64_t count = iterations - i < step ? iterations - i : step;
        rc_spin_run(&spin, i, count);
        i += count;
        refcache_job_progress(job, i, iterations);
    }
    char hex[65];
    rc_spin_hex(&spin, hex);
    return refcache_job_result(job, hex, 64);
}

/* Fails with CODE_UNKNOWN: it stands for an application error that has no
 * better code, which is what a job failing "on purpose" simulates. A `code`
 * param (a code name such as UNAVAILABLE) picks another one for tests. */
static int fn_fail(refcache_job_t *job)
{
    const char *message = refcache_job_param(job, "message");
    bool retryable;
    if (rc_param_bool(refcache_job_param(job, "retryable"), false, &retryable) != 0) {
        refcache_job_fail(job, REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT, false,
                          "param retryable of fail must be 0 or 1 (or false, true), got \"%.64s\"",
                          refcache_job_param(job, "retryable"));
        return -1;
    }
    int code = REFCACHE__V1__CODE__CODE_UNKNOWN;
    const char *code_name = refcache_job_param(job, "code");
    if (code_name) {
        code = rc_code_parse(code_name);
        if (code <= 0) {
            refcache_job_fail(job, REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT, false,
                              "param code of fail must be a status code name other than OK, got \"%.64s\"",
                              code_name);
            return -1;
        }
    }
    return refcache_job_fail(job, code, retryable, "%s", message ? message : "failed on purpose");
}

static const refcache_function_t builtins[] = {
    {"echo", fn_echo, true}, {"sleep", fn_sleep, false}, {"primes", fn_primes, true},
    {"spin", fn_spin, true}, {"fail", fn_fail, false},
};

const refcache_function_t *refcache_builtin_functions(size_t *count)
{
    if (count)
        *count = sizeof builtins / sizeof builtins[0];
    return builtins;
}
