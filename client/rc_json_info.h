/* rc_json_info: the broker's Stats and its worker records as JSON objects,
 * one way for every program that prints them (the CLI's --json, the HTTP
 * API of refcache-broker --http), and the list of Stats' counters that the
 * CLI's text output walks too. */
#ifndef RC_JSON_INFO_H
#define RC_JSON_INFO_H

#include <stddef.h>
#include <stdint.h>

#include "rc_json.h"
#include "refcache.h"

/* A numeric field of refcache_stats_t: its name (the StatsReply field's)
 * and where it is. */
typedef struct {
    const char *name;
    size_t offset;
} rc_stats_field_t;

/* Every numeric field of refcache_stats_t, in the order shown. */
extern const rc_stats_field_t rc_stats_fields[];
extern const size_t rc_stats_field_count;

static inline uint64_t rc_stats_value(const refcache_stats_t *s, const rc_stats_field_t *f)
{
    return *(const uint64_t *) (const void *) ((const char *) s + f->offset);
}

/* Writes every field of s as keys of the object being built: the counters,
 * draining, the store's path and error, the version. */
void rc_json_stats(rc_json_t *j, const refcache_stats_t *s);

/* Writes worker x as the next element of the array being built. */
void rc_json_worker(rc_json_t *j, const refcache_worker_info_t *x);

#endif
