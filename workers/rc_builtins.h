/* rc_builtins: the pure logic behind the built-in functions (parameter
 * parsing, the segmented prime sieve, the spin hash chain), kept apart from
 * the job API so that it can be unit-tested without sockets. Not part of the
 * public worker API. */
#ifndef RC_BUILTINS_H
#define RC_BUILTINS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest `n` the primes function accepts: its result (~1 GB of text at this
 * size) is already far beyond what a broker keeps, so larger is pointless. */
#define RC_PRIMES_MAX_N 2000000000ULL

/* Parses a decimal unsigned integer param. NULL text gives def. 0 with the
 * value in *out, or -1 if the text is not a plain decimal in [min, max]. */
int rc_param_u64(const char *text, uint64_t def, uint64_t min, uint64_t max, uint64_t *out);

/* Parses a boolean param "0"/"1" (also "false"/"true"). NULL gives def. */
int rc_param_bool(const char *text, bool def, bool *out);

/* A growable byte buffer (text output of the built-ins). */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} rc_strbuf_t;

/* Makes room for extra more bytes; 0, or -1 out of memory. */
int rc_strbuf_reserve(rc_strbuf_t *self, size_t extra);

/* Frees the buffer's bytes and empties it. */
void rc_strbuf_free(rc_strbuf_t *self);

/* A segmented sieve of Eratosthenes over [0, n), one segment per step. */
typedef struct rc_sieve rc_sieve_t;

/* Creates a sieve for the primes below n with segments of `segment` numbers
 * (0: a default that fits in L2 cache); NULL out of memory. */
rc_sieve_t *rc_sieve_new(uint64_t n, uint64_t segment);

/* Sieves the next segment and appends its primes to out, one decimal per
 * line. 1 if more segments remain, 0 when done, -1 out of memory. */
int rc_sieve_step(rc_sieve_t *self, rc_strbuf_t *out);

/* How many numbers of [0, n) are sieved so far (for progress). */
uint64_t rc_sieve_done(const rc_sieve_t *self);

/* Frees the sieve; accepts NULL and clears the caller's pointer. */
void rc_sieve_destroy(rc_sieve_t **self_p);

/* The spin hash chain: a 256-bit state mixed with SipHash rounds. Iteration i
 * depends only on the state and i, so running [0, a) then [a, b) gives the
 * same state as [0, b): a job can stop and check for cancel anywhere. */
typedef struct {
    uint64_t v[4];
} rc_spin_t;

/* Seeds the state from the payload bytes. */
void rc_spin_seed(rc_spin_t *self, const void *bytes, size_t len);

/* Runs iterations first .. first+count-1. */
void rc_spin_run(rc_spin_t *self, uint64_t first, uint64_t count);

/* Writes the state as 64 lowercase hex digits plus a NUL. */
void rc_spin_hex(const rc_spin_t *self, char out[65]);

#endif
