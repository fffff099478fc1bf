/* rc_common: names and helpers shared by the broker, the workers and the
 * clients. Everything here is pure or thread-safe. */
#ifndef RC_COMMON_H
#define RC_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "refcache.pb-c.h"

/* The length of a ref_id on the wire: 128 random bits as lowercase hex. */
#define RC_REF_ID_LEN 32

/* Printable name of a status code without its prefix ("OK", "NOT_FOUND");
 * "UNKNOWN" for a value outside the enum. */
const char *rc_code_name(int code);

/* Parses a code name ("NOT_FOUND" or "CODE_NOT_FOUND"); -1 if unknown. */
int rc_code_parse(const char *name);

/* Printable name of a task state without its prefix ("PENDING"). */
const char *rc_state_name(int state);

/* True for COMPLETE, FAILED and CANCELLED. */
bool rc_state_is_terminal(int state);

/* Microseconds on the monotonic clock (for timers and latencies). */
uint64_t rc_mono_us(void);

/* Nanoseconds on the monotonic clock (for short durations). */
uint64_t rc_mono_ns(void);

/* Microseconds since the Unix epoch (for timestamps shown to users). */
uint64_t rc_wall_us(void);

/* Fills buf with len bytes from the OS's random source; 0 or -1. */
int rc_random_bytes(void *buf, size_t len);

/* Writes len bytes as lowercase hex plus a NUL into out (2*len+1 bytes). */
void rc_hex_encode(const uint8_t *bytes, size_t len, char *out);

/* Parses exactly 2*len hex characters into bytes; 0, or -1 if malformed. */
int rc_hex_decode(const char *hex, size_t hexlen, uint8_t *bytes, size_t len);

#endif
