/* rc_buf: the one growable buffer of the tree — bytes that are appended to
 * and reused across messages (the broker codec's output, the CLI's reads,
 * a Fetch's pages, the JSON writer, a worker's batch of results), and the
 * growth of a typed array (rc_buf_grow_array). Capacity doubles, so n
 * appends cost O(n). */
#ifndef RC_BUF_H
#define RC_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;
    size_t len, cap;
} rc_buf_t;

/* Makes room for n bytes in all (not n more); 0 or -1 on out of memory.
 * Inline: the hot encoders call it for every message, and there is nearly
 * always room already. */
int rc_buf_grow_(rc_buf_t *buf, size_t n);
static inline int rc_buf_reserve(rc_buf_t *buf, size_t n)
{
    return n <= buf->cap ? 0 : rc_buf_grow_(buf, n);
}

/* Appends n bytes; 0 or -1 on out of memory (then nothing is appended). */
int rc_buf_append(rc_buf_t *buf, const void *bytes, size_t n);

/* Hands over the bytes (malloc'd, the caller frees; never NULL unless out of
 * memory, even when empty) and leaves buf empty. */
uint8_t *rc_buf_take(rc_buf_t *buf, size_t *len);

/* Frees the bytes and leaves buf empty. */
void rc_buf_free(rc_buf_t *buf);

/* Grows the array *items_p (elements of size bytes, capacity *cap) to hold
 * at least need elements; 0 or -1 on out of memory (the array unchanged). */
int rc_buf_grow_array(void *items_p, size_t *cap, size_t need, size_t size);

#endif
