/* rc_common: code and state names, clocks, random bytes and hex, shared by
 * the broker, the workers and the clients (see rc_common.h). */
#include "rc_common.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static const char *const code_names[] = {
    "OK",        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED",
};
#define CODE_COUNT (sizeof code_names / sizeof code_names[0])

static const char *const state_names[] = {
    "UNSPECIFIED", "PENDING", "PROCESSING", "COMPLETE", "FAILED", "CANCELLED",
};
#define STATE_COUNT (sizeof state_names / sizeof state_names[0])

const char *rc_code_name(int code)
{
    if (code < 0 || (size_t) code >= CODE_COUNT)
        return "UNKNOWN";
    return code_names[code];
}

int rc_code_parse(const char *name)
{
    if (!name)
        return -1;
    if (strncmp(name, "CODE_", 5) == 0)
        name += 5;
    for (size_t i = 0; i < CODE_COUNT; i++)
        if (strcmp(name, code_names[i]) == 0)
            return (int) i;
    return -1;
}

const char *rc_state_name(int state)
{
    if (state < 0 || (size_t) state >= STATE_COUNT)
        return "UNSPECIFIED";
    return state_names[state];
}

bool rc_state_is_terminal(int state)
{
    return state == REFCACHE__V1__STATE__STATE_COMPLETE || state == REFCACHE__V1__STATE__STATE_FAILED ||
           state == REFCACHE__V1__STATE__STATE_CANCELLED;
}

static uint64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

uint64_t rc_mono_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}

uint64_t rc_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

uint64_t rc_wall_us(void)
{
    return clock_us(CLOCK_REALTIME);
}

int rc_random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

void rc_hex_encode(const uint8_t *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

/* One more than each byte's value as a hex digit, 0 for any other byte:
 * a table, because every worker message's ref_id is decoded on the
 * broker's loop. */
static const uint8_t hex_plus1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

int rc_hex_decode(const char *hex, size_t hexlen, uint8_t *bytes, size_t len)
{
    if (!hex || hexlen != 2 * len)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned hi = hex_plus1[(uint8_t) hex[2 * i]], lo = hex_plus1[(uint8_t) hex[2 * i + 1]];
        if (!hi || !lo)
            return -1;
        bytes[i] = (uint8_t) ((hi - 1) << 4 | (lo - 1));
    }
    return 0;
}
