/* Unit tests of the keyed hash (rc_key): the SipHash-2-4-128 reference
 * vectors, the incremental interface against a straightforward one-shot
 * implementation written here over random splits of random inputs, and the
 * properties the cache key relies on (field boundaries, secrets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rc_testkit.h"
#include "rc_key.h"

/* vectors_sip128 of the SipHash reference implementation (github.com/veorq/SipHash,
 * vectors.h): key 00 01 .. 0f, message 00 01 .. (n-1), n = 0..63. */
static const char *const vectors_sip128[64] = {
    "a3817f04ba25a8e66df67214c7550293", "da87c1d86b99af44347659119b22fc45",
    "8177228da4a45dc7fca38bdef60affe4", "9c70b60c5267a94e5f33b6b02985ed51",
    "f88164c12d9c8faf7d0f6e7c7bcd5579", "1368875980776f8854527a07690e9627",
    "14eeca338b208613485ea0308fd7a15e", "a1f1ebbed8dbc153c0b84aa61ff08239",
    "3b62a9ba6258f5610f83e264f31497b4", "264499060ad9baabc47f8b02bb6d71ed",
    "00110dc378146956c95447d3f3d0fbba", "0151c568386b6677a2b4dc6f81e5dc18",
    "d626b266905ef35882634df68532c125", "9869e247e9c08b10d029934fc4b952f7",
    "31fcefac66d7de9c7ec7485fe4494902", "5493e99933b0a8117e08ec0f97cfc3d9",
    "6ee2a4ca67b054bbfd3315bf85230577", "473d06e8738db89854c066c47ae47740",
    "a426e5e423bf4885294da481feaef723", "78017731cf65fab074d5208952512eb1",
    "9e25fc833f2290733e9344a5e83839eb", "568e495abe525a218a2214cd3e071d12",
    "4a29b54552d16b9a469c10528eff0aae", "c9d184ddd5a9f5e0cf8ce29a9abf691c",
    "2db479ae78bd50d8882a8a178a6132ad", "8ece5f042d5e447b5051b9eacb8d8f6f",
    "9c0b53b4b3c307e87eaee08678141f66", "abf248af69a6eae4bfd3eb2f129eeb94",
    "0664da1668574b88b935f3027358aef4", "aa4b9dc4bf337de90cd4fd3c467c6ab7",
    "ea5c7f471faf6bde2b1ad7d4686d2287", "2939b0183223fafc1723de4f52c43d35",
    "7c3956ca5eeafc3e363e9d556546eb68", "77c6077146f01c32b6b69d5f4ea9ffcf",
    "37a6986cb8847edf0925f0f1309b54de", "a705f0e69da9a8f907241a2e923c8cc8",
    "3dc47d1f29c448461e9e76ed904f6711", "0d62bf01e6fc0e1a0d3c4751c5d3692b",
    "8c03468bca7c669ee4fd5e084bbee7b5", "528a5bb93baf2c9c4473cce5d0d22bd9",
    "df6a301e95c95dad97ae0cc8c6913bd8", "801189902c857f39e73591285e70b6db",
    "e617346ac9c231bb3650ae34ccca0c5b", "27d93437efb721aa401821dcec5adf89",
    "89237d9ded9c5e78d8b1c9b166cc7342", "4a6d8091bf5e7d651189fa94a250b14c",
    "0e33f96055e7ae893ffc0e3dcf492902", "e61c432b720b19d18ec8d84bdc63151b",
    "f7e5aef549f782cf379055a608269b16", "438d030fd0b7a54fa837f2ad201a6403",
    "a590d3ee4fbf04e3247e0d27f286423f", "5fe2c1a172fe93c4b15cd37caef9f538",
    "2c97325cbd06b36eb2133dd08b3a017c", "92c814227a6bca949ff0659f002ad39e",
    "dce850110bd8328cfbd50841d6911d87", "67f14984c7da791248e32bb5922583da",
    "1938f2cf72d54ee97e94166fa91d2a36", "74481e9646ed49fe0f6224301604698e",
    "57fca5de98a9d6d8006438d0583d8a1d", "9fecde1cefdc1cbed4763674d9575359",
    "e3040c00eb28f15366ca73cbd872e740", "7697009a6a831dfecca91c5993670f7a",
    "5853542321f567a005d547a4f04759bd", "5150d1772f50834a503e069a973fbd7c",
};

static void unhex(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t) v;
    }
}

static void print_hex(const char *label, const uint8_t *p, size_t n)
{
    char buf[2 * 64 + 1];
    for (size_t i = 0; i < n && i < 64; i++)
        snprintf(buf + 2 * i, 3, "%02x", p[i]);
    print_error("%s %s\n", label, buf);
}

/* ---------------------------------------------------- a one-shot reference
 * Written from the SipHash paper, independently of rc_key.c: the message is
 * padded to a multiple of 8 bytes with the length in the last byte, then
 * every word is compressed; no incremental state. */

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static void sip_round(uint64_t v[4])
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

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t) p[i] << (8 * i);
    return v;
}

static void ref_siphash128(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t out[16])
{
    size_t padded = len / 8 * 8 + 8;
    uint8_t *m = calloc(padded, 1);
    assert_non_null(m);
    if (len)
        memcpy(m, msg, len);
    m[padded - 1] = (uint8_t) len;

    uint64_t k0 = le64(key), k1 = le64(key + 8);
    uint64_t v[4] = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL, k0 ^ 0x6c7967656e657261ULL,
                     k1 ^ 0x7465646279746573ULL};
    v[1] ^= 0xee;
    for (size_t off = 0; off < padded; off += 8) {
        uint64_t w = le64(m + off);
        v[3] ^= w;
        sip_round(v);
        sip_round(v);
        v[0] ^= w;
    }
    v[2] ^= 0xee;
    for (int r = 0; r < 4; r++)
        sip_round(v);
    uint64_t h0 = v[0] ^ v[1] ^ v[2] ^ v[3];
    v[1] ^= 0xdd;
    for (int r = 0; r < 4; r++)
        sip_round(v);
    uint64_t h1 = v[0] ^ v[1] ^ v[2] ^ v[3];
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t) (h0 >> (8 * i));
        out[8 + i] = (uint8_t) (h1 >> (8 * i));
    }
    free(m);
}

static void rc_oneshot(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t out[16])
{
    rc_key_state_t st;
    rc_key_init(&st, key);
    rc_key_update(&st, msg, len);
    rc_key_final(&st, out);
}

static uint64_t rng_state = 0xd1b54a32d192ed03ULL;

static uint64_t rnd(void)
{
    return rc_testkit_rnd(&rng_state);
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t) rnd();
}

/* ---------------------------------------------------------------- tests */

static void test_reference_vectors(void **state)
{
    uint8_t key[16], msg[64], want[16], got[16], ref[16];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t) i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t) i;
    /* The well-known first vector, spelled out. */
    static const uint8_t first[16] = {0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6,
                                      0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93};
    rc_oneshot(key, msg, 0, got);
    assert_memory_equal(got, first, 16);

    for (size_t n = 0; n < 64; n++) {
        unhex(vectors_sip128[n], want, 16);
        rc_oneshot(key, msg, n, got);
        ref_siphash128(key, msg, n, ref);
        if (memcmp(got, want, 16) != 0) {
            print_error("vector n=%zu\n", n);
            print_hex("  expected", want, 16);
            print_hex("  got     ", got, 16);
            fail();
        }
        /* The test's own reference agrees with the published vectors. */
        assert_memory_equal(ref, want, 16);
        /* Byte by byte gives the same. */
        rc_key_state_t st;
        rc_key_init(&st, key);
        for (size_t i = 0; i < n; i++)
            rc_key_update(&st, msg + i, 1);
        rc_key_final(&st, got);
        assert_memory_equal(got, want, 16);
    }
}

static void test_random_splits(void **state)
{
    enum { MAXLEN = 300, ROUNDS = 2000 };
    uint8_t key[16], msg[MAXLEN], want[16], got[16];
    for (int round = 0; round < ROUNDS; round++) {
        fill_random(key, 16);
        size_t len = round < 100 ? (size_t) round : rnd() % (MAXLEN + 1);
        fill_random(msg, len);
        ref_siphash128(key, msg, len, want);

        rc_key_state_t st;
        rc_key_init(&st, key);
        size_t off = 0;
        while (off < len) {
            /* Pieces of 0..20 bytes: empty updates, sub-word and multi-word. */
            size_t take = rnd() % 21;
            if (take > len - off)
                take = len - off;
            rc_key_update(&st, msg + off, take);
            off += take;
        }
        rc_key_update(&st, msg, 0);
        rc_key_final(&st, got);
        if (memcmp(got, want, 16) != 0) {
            print_error("round %d, len %zu\n", round, len);
            print_hex("  expected", want, 16);
            print_hex("  got     ", got, 16);
            fail();
        }
    }
}

static void test_long_input(void **state)
{
    /* Past 255 bytes only the low byte of the length enters the hash. */
    enum { LEN = 70000 };
    uint8_t key[16], want[16], got[16];
    uint8_t *msg = malloc(LEN);
    fill_random(key, 16);
    fill_random(msg, LEN);
    ref_siphash128(key, msg, LEN, want);
    rc_key_state_t st;
    rc_key_init(&st, key);
    rc_key_update(&st, msg, 3);
    rc_key_update(&st, msg + 3, 40000);
    rc_key_update(&st, msg + 40003, LEN - 40003);
    rc_key_final(&st, got);
    assert_memory_equal(got, want, 16);
    free(msg);
}

static void key_fields(const uint8_t secret[16], const char *a, const char *b, uint8_t out[16])
{
    rc_key_state_t st;
    rc_key_init(&st, secret);
    rc_key_field(&st, a, strlen(a));
    rc_key_field(&st, b, strlen(b));
    rc_key_final(&st, out);
}

/* A run of fields hashes as the reference does the fields' bytes, each
 * behind its 8-byte little-endian length, whether the fields before it end
 * on a block boundary or not. */
static void test_fields_as_reference(void **state)
{
    (void) state;
    enum { FIELDS = 5, MAXLEN = 40 };
    uint8_t key[16], field[FIELDS][MAXLEN], flat[FIELDS * (8 + MAXLEN)], want[16], got[16];
    for (int round = 0; round < 2000; round++) {
        fill_random(key, 16);
        rc_key_state_t st;
        rc_key_init(&st, key);
        size_t n = 0;
        for (int f = 0; f < FIELDS; f++) {
            /* Multiples of 8 often, so that the next prefix starts a block. */
            size_t len = rnd() % 2 ? 8 * (rnd() % 4) : rnd() % MAXLEN;
            fill_random(field[f], len);
            for (int i = 0; i < 8; i++)
                flat[n++] = (uint8_t) ((uint64_t) len >> (8 * i));
            memcpy(flat + n, field[f], len);
            n += len;
            rc_key_field(&st, field[f], len);
        }
        rc_key_final(&st, got);
        ref_siphash128(key, flat, n, want);
        assert_memory_equal(got, want, 16);
    }
}

/* Random runs of fields of 0..100 bytes, and now and then one of a few
 * hundred so that the length prefix has two nonzero bytes; each field is
 * read from an odd place in the buffer. rc_key consumes a stream that is
 * off the block boundary a whole word at a time, shifted, prefix included,
 * and this checks every such offset against the reference. */
static void test_random_fields(void **state)
{
    (void) state;
    enum { MAXFIELDS = 8, MAXLEN = 100, LONGLEN = 700 };
    static uint8_t flat[MAXFIELDS * (8 + LONGLEN)];
    uint8_t key[16], want[16], got[16];
    for (int round = 0; round < 3000; round++) {
        fill_random(key, 16);
        rc_key_state_t st;
        rc_key_init(&st, key);
        size_t n = 0, nfields = rnd() % (MAXFIELDS + 1);
        for (size_t f = 0; f < nfields; f++) {
            size_t len = rnd() % 16 ? rnd() % (MAXLEN + 1) : 256 + rnd() % (LONGLEN - 255);
            for (int i = 0; i < 8; i++)
                flat[n++] = (uint8_t) ((uint64_t) len >> (8 * i));
            fill_random(flat + n, len);
            rc_key_field(&st, flat + n, len);
            n += len;
        }
        rc_key_final(&st, got);
        ref_siphash128(key, flat, n, want);
        if (memcmp(got, want, 16) != 0) {
            print_error("round %d, %zu fields, %zu bytes\n", round, nfields, n);
            print_hex("  expected", want, 16);
            print_hex("  got     ", got, 16);
            fail();
        }
    }
}

static void test_field_boundaries(void **state)
{
    uint8_t secret[16], x[16], y[16];
    fill_random(secret, 16);
    key_fields(secret, "ab", "c", x);
    key_fields(secret, "a", "bc", y);
    assert_memory_not_equal(x, y, 16);
    key_fields(secret, "", "abc", x);
    key_fields(secret, "abc", "", y);
    assert_memory_not_equal(x, y, 16);
    /* The same fields give the same key. */
    key_fields(secret, "ab", "c", x);
    key_fields(secret, "ab", "c", y);
    assert_memory_equal(x, y, 16);

    /* A field is an 8-byte little-endian length and then the bytes. */
    static const uint8_t framed[] = {2, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 1, 0, 0, 0, 0, 0, 0, 0, 'c'};
    ref_siphash128(secret, framed, sizeof framed, y);
    key_fields(secret, "ab", "c", x);
    assert_memory_equal(x, y, 16);

    /* Raw updates do not separate fields: that is what rc_key_field is for. */
    rc_key_state_t st;
    rc_key_init(&st, secret);
    rc_key_update(&st, "ab", 2);
    rc_key_update(&st, "c", 1);
    rc_key_final(&st, x);
    rc_key_init(&st, secret);
    rc_key_update(&st, "a", 1);
    rc_key_update(&st, "bc", 2);
    rc_key_final(&st, y);
    assert_memory_equal(x, y, 16);
}

static void test_secrets_differ(void **state)
{
    uint8_t s1[16], s2[16], x[16], y[16];
    fill_random(s1, 16);
    memcpy(s2, s1, 16);
    key_fields(s1, "fn", "payload", x);
    for (int bit = 0; bit < 128; bit += 9) {
        memcpy(s2, s1, 16);
        s2[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        key_fields(s2, "fn", "payload", y);
        assert_memory_not_equal(x, y, 16);
    }
    /* And the two halves of the output are not the same word. */
    assert_memory_not_equal(x, x + 8, 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors),   cmocka_unit_test(test_random_splits),
        cmocka_unit_test(test_long_input),          cmocka_unit_test(test_field_boundaries),
        cmocka_unit_test(test_fields_as_reference), cmocka_unit_test(test_random_fields),
        cmocka_unit_test(test_secrets_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
