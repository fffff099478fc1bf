/* rc_key: SipHash-2-4 with a 128-bit digest, fed a word at a time, for the
 * result cache's keys and the owner ids of CURVE keys (see rc_key.h). */
#include "rc_key.h"

#include <stdbool.h>
#include <string.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

/* SipHash reads its input as little-endian words. On a little-endian target
 * that is a plain load (memcpy, so alignment does not matter); elsewhere the
 * shifts say the byte order and compilers turn them into a load and a swap. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RC_KEY_LITTLE_ENDIAN 1
#else
#define RC_KEY_LITTLE_ENDIAN 0
#endif

static inline uint64_t load_le64(const uint8_t *p)
{
    if (RC_KEY_LITTLE_ENDIAN) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    return (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16 | (uint64_t) p[3] << 24 |
           (uint64_t) p[4] << 32 | (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48 | (uint64_t) p[7] << 56;
}

/* n < 8 bytes as the low bytes of a little-endian word, read one at a time:
 * reading a whole word could run past the end of the caller's buffer. */
static inline uint64_t load_le_short(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    while (n > 0)
        v = v << 8 | p[--n];
    return v;
}

static inline void store_le64(uint8_t *p, uint64_t v)
{
    if (RC_KEY_LITTLE_ENDIAN) {
        memcpy(p, &v, sizeof v);
        return;
    }
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t) (v >> (8 * i));
}

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

static inline void compress(rc_key_state_t *s, uint64_t m)
{
    s->v3 ^= m;
    sipround(s);
    sipround(s);
    s->v0 ^= m;
}

/* Appends 8 bytes to the stream at whatever offset it is at: the word's low
 * bytes complete the pending block and its high bytes become the new tail, so
 * a stream that is not on a block boundary is still consumed a word at a
 * time. The tail keeps ntail bytes and zeros above them. */
static inline void absorb_word(rc_key_state_t *s, uint64_t w)
{
    unsigned shift = 8 * (unsigned) s->ntail;
    compress(s, s->tail | w << shift);
    s->tail = shift ? w >> (64 - shift) : 0;
}

static inline void absorb(rc_key_state_t *s, const uint8_t *p, size_t len)
{
    for (; len >= 8; p += 8, len -= 8)
        absorb_word(s, load_le64(p));
    if (len == 0)
        return;
    uint64_t w = load_le_short(p, len);
    unsigned shift = 8 * (unsigned) s->ntail;
    s->tail |= w << shift;
    s->ntail += len;
    if (s->ntail >= 8) {
        /* Here shift > 0, since len < 8. */
        compress(s, s->tail);
        s->tail = w >> (64 - shift);
        s->ntail -= 8;
    }
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

/* Feeds len bytes, behind their 8-byte little-endian length if prefixed.
 * It works on a local copy of the state: the input is bytes, which may alias
 * anything, so through st the compiler would have to store and reload the
 * four words around every block. Both public functions are this one call, so
 * the loop exists once and the compiler inlines absorb into it. */
static void feed(rc_key_state_t *st, const uint8_t *p, size_t len, bool prefixed)
{
    rc_key_state_t s = *st;
    s.total += len;
    if (prefixed) {
        s.total += 8;
        absorb_word(&s, (uint64_t) len);
    }
    absorb(&s, p, len);
    *st = s;
}

void rc_key_update(rc_key_state_t *st, const void *data, size_t len)
{
    feed(st, data, len, false);
}

void rc_key_field(rc_key_state_t *st, const void *data, size_t len)
{
    feed(st, data, len, true);
}

void rc_key_final(rc_key_state_t *st, uint8_t out[16])
{
    uint64_t b = (st->total & 0xff) << 56 | st->tail;
    compress(st, b);
    st->v2 ^= 0xee;
    for (int i = 0; i < 4; i++)
        sipround(st);
    store_le64(out, st->v0 ^ st->v1 ^ st->v2 ^ st->v3);
    st->v1 ^= 0xdd;
    for (int i = 0; i < 4; i++)
        sipround(st);
    store_le64(out + 8, st->v0 ^ st->v1 ^ st->v2 ^ st->v3);
}
