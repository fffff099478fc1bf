/* rc_json: a tiny writer for one JSON object per call, as the CLI's --json
 * output and the bench's report need (objects and arrays nest up to
 * RC_JSON_DEPTH). Strings are escaped so that the output is always
 * valid JSON: valid UTF-8 passes through, control characters and every byte
 * that is not part of a valid UTF-8 sequence become \u00XX. */
#ifndef RC_JSON_H
#define RC_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rc_json rc_json_t;

#define RC_JSON_DEPTH 8

/* Starts an object ("{"). NULL on out of memory. */
rc_json_t *rc_json_new(void);

/* Frees the writer; accepts NULL and clears the caller's pointer. */
void rc_json_destroy(rc_json_t **self_p);

/* Adds "key": "string" (NUL-terminated text). */
void rc_json_str(rc_json_t *self, const char *key, const char *value);

/* Adds "key": "..." from len arbitrary bytes (binary-safe). */
void rc_json_bytes(rc_json_t *self, const char *key, const void *bytes, size_t len);

/* Adds "key": number. */
void rc_json_uint(rc_json_t *self, const char *key, uint64_t value);

/* Adds "key": true|false. */
void rc_json_bool(rc_json_t *self, const char *key, bool value);

/* Adds "key": number with three decimals (0 for NaN or infinity). */
void rc_json_double(rc_json_t *self, const char *key, double value);

/* Opens "key": { ... }, closed by rc_json_end; keys go into it meanwhile. */
void rc_json_begin(rc_json_t *self, const char *key);

/* Opens "key": [ ... ], closed by rc_json_end; its elements are objects
 * (rc_json_element, each closed by rc_json_end) or strings
 * (rc_json_element_str). */
void rc_json_array(rc_json_t *self, const char *key);
void rc_json_element(rc_json_t *self);
void rc_json_element_str(rc_json_t *self, const char *value);

/* Closes the object or array rc_json_begin, rc_json_array or
 * rc_json_element opened. */
void rc_json_end(rc_json_t *self);

/* Closes the object (and any still open) and returns its text (owned by the writer); NULL if
 * memory ran out while writing. */
const char *rc_json_finish(rc_json_t *self);

/* Appends len bytes escaped as a JSON string body (without quotes) to out,
 * which has room for cap bytes; returns the length the full escape needs
 * (as snprintf does) and NUL-terminates when cap > 0. */
size_t rc_json_escape(const void *bytes, size_t len, char *out, size_t cap);

#endif
