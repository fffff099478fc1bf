/* rc_cache: the result cache — where task records are born, shrunk and
 * freed. It owns the records' memory (active records from a spare list,
 * finished ones shrunk to their kept fields plus result or error text), the
 * cache key of a Submit and the index that serves cache hits and joins
 * identical work in flight, the LRU order of finished tasks, and the two
 * caps (result bytes, records) that evict from it. Shrinking and freeing
 * happen at the end of a message (rc_cache_settle), never under a caller
 * that holds a record. */
#ifndef RC_CACHE_H
#define RC_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc_codec.h"
#include "rc_record.h"

typedef struct rc_core rc_core_t;

#define RC_SPEC_ROOM 128 /* a dispatch spec up to this size lives in its active record */

void rc_cache_init(rc_core_t *core);

/* A zeroed active record (with room for its spec), or NULL. */
rc_task_t *rc_cache_record_new(rc_core_t *core);

/* Gives back a record that was never accepted (a Submit that failed). */
void rc_cache_record_discard(rc_core_t *core, rc_task_t *t);

/* The cache key of a Submit: (namespace, function, owner, params in key
 * order, payload), hashed with the broker's secret. */
void rc_cache_key(rc_core_t *core, const rc_request_t *req, uint64_t owner, uint8_t key[16]);

/* The task holding key in the index (COMPLETE, or in flight), or NULL. */
rc_task_t *rc_cache_lookup(rc_core_t *core, const uint8_t key[16]);

/* Puts t in the index (0, or -1: it is then just not shared). */
int rc_cache_index(rc_core_t *core, rc_task_t *t);
void rc_cache_unindex(rc_core_t *core, rc_task_t *t);

/* A finished task was used: it moves to the back of the LRU order. */
void rc_cache_touch(rc_core_t *core, rc_task_t *t);

/* Allocates t's shrunk record to be, with the result bytes in it (the
 * STORE_RESULT action takes it). -1 when there is no memory for it. */
int rc_cache_keep_result(rc_core_t *core, rc_task_t *t, const uint8_t *data, size_t len);

/* t just finished: it is shrunk, gets its TTL and joins the LRU order at
 * the end of the message. */
void rc_cache_retire(rc_core_t *core, rc_task_t *t);

/* t leaves every table and list now and is freed at the end of the message. */
void rc_cache_drop(rc_core_t *core, rc_task_t *t);

/* The end of a message: shrinks what finished, evicts past the caps (each
 * an event for the runner), frees what was dropped. */
void rc_cache_settle(rc_core_t *core);

/* Frees a record at once (shutdown only). */
void rc_cache_free(rc_core_t *core, rc_task_t *t);

#endif
