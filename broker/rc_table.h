/* rc_table: an open-addressing hash table of objects keyed by 16 bytes that
 * live inside the objects themselves (a ref_id, a cache key). The keys are
 * random or keyed-hash outputs, so their first 8 bytes are the hash. No
 * allocation per entry; deletion shifts back, leaving no tombstones. */
#ifndef RC_TABLE_H
#define RC_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define RC_KEY_LEN 16

typedef struct rc_table rc_table_t;

/* key_offset: where the 16-byte key sits inside each stored object. */
rc_table_t *rc_table_new(size_t key_offset);

/* Frees the table (not the objects). */
void rc_table_destroy(rc_table_t **self_p);

/* The object whose key equals key, or NULL. */
void *rc_table_get(rc_table_t *self, const uint8_t key[RC_KEY_LEN]);

/* Inserts obj (its key must not be present). 0, or -1 on out of memory. */
int rc_table_put(rc_table_t *self, void *obj);

/* Removes obj if it is stored; returns 0 if it was, -1 if not. */
int rc_table_remove(rc_table_t *self, void *obj);

/* Puts obj where old was (obj holds the same key, e.g. a moved copy of old):
 * no probe chain is disturbed. 0, or -1 if old is not stored. */
int rc_table_replace(rc_table_t *self, void *old, void *obj);

size_t rc_table_size(rc_table_t *self);

/* A malloc'd array of every stored object (caller frees it), or NULL; for
 * tear-down and tests, not for the hot path. */
void **rc_table_snapshot(rc_table_t *self, size_t *count);

/* Bytes the table's slots take (for memory accounting). */
size_t rc_table_bytes(rc_table_t *self);

#endif
