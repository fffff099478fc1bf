/* rc_bench_cleanup: the bench deletes what it created. Each connection
 * notes the ref_id of every task a Submit reply named (rc_bench_refs_t);
 * at the end of the run they are deleted, pipelined, and the tasks that
 * were not finished yet are cancelled first. Without this a run would leave
 * hundreds of thousands of records in the broker until their TTL. */
#ifndef RC_BENCH_CLEANUP_H
#define RC_BENCH_CLEANUP_H

#include <stddef.h>
#include <stdint.h>

#include "rc_common.h"
#include "refcache.h"

typedef struct {
    char (*ids)[RC_REF_ID_LEN + 1];
    size_t n, cap;
    uint64_t lost; /* refs that found no memory (or were too long): left behind */
} rc_bench_refs_t;

typedef struct {
    uint64_t deleted; /* Delete found and dropped the task */
    uint64_t gone;    /* already gone: expired, evicted, or named twice */
    uint64_t left;    /* still in the broker (no answer, or not deletable) */
} rc_bench_cleanup_t;

/* Notes a ref_id; 0, or -1 without memory (or for an over-long id). */
int rc_bench_refs_add(rc_bench_refs_t *self, const char *ref_id);

/* Frees the list. */
void rc_bench_refs_free(rc_bench_refs_t *self);

/* Deletes every task in refs through client, at most depth requests in
 * flight, each reply waited for up to timeout_ms; tasks not finished yet
 * are cancelled and deleted again. Adds the outcome to *out. */
void rc_bench_cleanup(refcache_client_t *client, const rc_bench_refs_t *refs, int depth, int timeout_ms,
                      rc_bench_cleanup_t *out);

#endif
