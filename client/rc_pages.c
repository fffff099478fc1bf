/* rc_pages: reassembling a result read page by page (see rc_pages.h). */
#include "rc_pages.h"
#include "refcache.h"

#include <stdlib.h>
#include <string.h>

void rc_pages_init(rc_pages_t *self)
{
    memset(self, 0, sizeof *self);
}

int rc_pages_add(rc_pages_t *self, uint64_t offset, uint64_t total, const void *data, size_t len)
{
    if (self->have_total && total != self->total)
        return REFCACHE_EOUTOFORDER;
    if (offset != self->len || offset > total || len > total - offset)
        return REFCACHE_EOUTOFORDER;
    if (len == 0 && offset < total)
        return REFCACHE_EOUTOFORDER; /* would never finish */
    if (total > SIZE_MAX)
        return REFCACHE_ENOMEM;
    self->total = total;
    self->have_total = true;
    if (self->len + len > self->cap) {
        /* Grow geometrically, but never beyond the announced total: a huge
         * total from a confused peer costs nothing until bytes arrive. */
        size_t cap = self->cap ? self->cap : 4096;
        while (cap < self->len + len)
            cap *= 2;
        if (cap > total)
            cap = (size_t) total;
        uint8_t *grown = realloc(self->data, cap);
        if (!grown)
            return REFCACHE_ENOMEM;
        self->data = grown;
        self->cap = cap;
    }
    if (len)
        memcpy(self->data + self->len, data, len);
    self->len += len;
    return 0;
}

bool rc_pages_done(const rc_pages_t *self)
{
    return self->have_total && self->len == self->total;
}

uint64_t rc_pages_next_offset(const rc_pages_t *self)
{
    return self->len;
}

uint8_t *rc_pages_take(rc_pages_t *self, size_t *len)
{
    uint8_t *data = self->data;
    if (!data)
        data = malloc(1); /* an empty result still hands over a buffer */
    if (!data)
        return NULL;
    *len = self->len;
    rc_pages_init(self);
    return data;
}

void rc_pages_free(rc_pages_t *self)
{
    free(self->data);
    rc_pages_init(self);
}
