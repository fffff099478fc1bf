/* rc_buf: the one growable buffer's growth (see rc_buf.h). */
#include "rc_buf.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The capacity, doubling from first, that holds need; 0 on overflow. */
static size_t s_grown(size_t cap, size_t need, size_t first)
{
    size_t c = cap ? cap : first;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return need;
        c *= 2;
    }
    return c;
}

int rc_buf_grow_(rc_buf_t *buf, size_t n)
{
    if (n <= buf->cap)
        return 0;
    if (n > PTRDIFF_MAX)
        return -1; /* no object is that big */
    size_t cap = s_grown(buf->cap, n, 256);
    uint8_t *data = realloc(buf->data, cap);
    if (!data)
        return -1;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

int rc_buf_append(rc_buf_t *buf, const void *bytes, size_t n)
{
    if (n > PTRDIFF_MAX - buf->len || rc_buf_reserve(buf, buf->len + n) != 0)
        return -1;
    if (n)
        memcpy(buf->data + buf->len, bytes, n);
    buf->len += n;
    return 0;
}

uint8_t *rc_buf_take(rc_buf_t *buf, size_t *len)
{
    uint8_t *data = buf->data ? buf->data : malloc(1);
    if (len)
        *len = data ? buf->len : 0;
    buf->data = NULL;
    buf->len = buf->cap = 0;
    return data;
}

void rc_buf_free(rc_buf_t *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

int rc_buf_grow_array(void *items_p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = s_grown(*cap, need, 16);
    if (size && n > SIZE_MAX / size)
        return -1;
    void **items = items_p;
    void *grown = realloc(*items, n * size);
    if (!grown)
        return -1;
    *items = grown;
    *cap = n;
    return 0;
}
