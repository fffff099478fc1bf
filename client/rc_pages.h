/* rc_pages: reassembles a result read with Fetch, page by page. Pure logic
 * (no sockets), so that it can be unit-tested; refcache_client_fetch_all uses it. */
#ifndef RC_PAGES_H
#define RC_PAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
    uint64_t total;
    bool have_total;
} rc_pages_t;

/* Starts an empty assembly. */
void rc_pages_init(rc_pages_t *self);

/* Appends a page that starts at offset of a result of total bytes. 0, or
 * REFCACHE_EOUTOFORDER if it does not continue what is there (wrong offset,
 * a changed total, past the end, an empty page before the end), or
 * REFCACHE_ENOMEM. */
int rc_pages_add(rc_pages_t *self, uint64_t offset, uint64_t total, const void *data, size_t len);

/* True once a page told the total and every byte up to it is there. */
bool rc_pages_done(const rc_pages_t *self);

/* The offset of the next page to ask for. */
uint64_t rc_pages_next_offset(const rc_pages_t *self);

/* Hands over the assembled bytes (malloc'd, never NULL on success; the
 * caller frees) and resets the assembly; NULL on out of memory. */
uint8_t *rc_pages_take(rc_pages_t *self, size_t *len);

/* Frees what the assembly holds. */
void rc_pages_free(rc_pages_t *self);

#endif
