#include "rc_key.h"

#include <string.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static inline void sipround(rc_key_state_t *s)
{
    s->v0 += s->v1;
    s->v1 = ROTL(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = ROTL(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = ROTL(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = ROTL(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = ROTL(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = ROTL(s->v2, 32);
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void compress(rc_key_state_t *s, uint64_t m)
{
    s->v3 ^= m;
    sipround(s);
    sipround(s);
    s->v0 ^= m;
}

void rc_key_init(rc_key_state_t *st, const uint8_t secret[16])
{
    uint64_t k0 = load_le64(secret), k1 = load_le64(secret + 8);
    st->v0 = 0x736f6d6570736575ULL ^ k0;
    st->v1 = 0x646f72616e646f6dULL ^ k1 ^ 0xee; /* 0xee selects the 128-bit output */
    st->v2 = 0x6c7967656e657261ULL ^ k0;
    st->v3 = 0x7465646279746573ULL ^ k1;
    st->tail = 0;
    st->ntail = 0;
    st->total = 0;
}

void rc_key_update(rc_key_state_t *st, const void *data, size_t len)
{
    const uint8_t *p = data;
    st->total += len;
    while (len > 0 && st->ntail > 0) {
        st->tail |= (uint64_t) *p++ << (8 * st->ntail);
        len--;
        if (++st->ntail == 8) {
            compress(st, st->tail);
            st->tail = 0;
            st->ntail = 0;
        }
    }
    for (; len >= 8; p += 8, len -= 8)
        compress(st, load_le64(p));
    for (; len > 0; len--)
        st->tail |= (uint64_t) *p++ << (8 * st->ntail++);
}

void rc_key_field(rc_key_state_t *st, const void *data, size_t len)
{
    uint8_t prefix[8];
    uint64_t n = len;
    for (int i = 0; i < 8; i++)
        prefix[i] = (uint8_t) (n >> (8 * i));
    rc_key_update(st, prefix, sizeof prefix);
    rc_key_update(st, data, len);
}

void rc_key_final(rc_key_state_t *st, uint8_t out[16])
{
    uint64_t b = (st->total & 0xff) << 56 | st->tail;
    compress(st, b);
    st->v2 ^= 0xee;
    for (int i = 0; i < 4; i++)
        sipround(st);
    uint64_t h0 = st->v0 ^ st->v1 ^ st->v2 ^ st->v3;
    st->v1 ^= 0xdd;
    for (int i = 0; i < 4; i++)
        sipround(st);
    uint64_t h1 = st->v0 ^ st->v1 ^ st->v2 ^ st->v3;
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t) (h0 >> (8 * i));
        out[8 + i] = (uint8_t) (h1 >> (8 * i));
    }
}
