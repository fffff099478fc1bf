/* rc_listidx: the order List pages through — the ref_id of every task in
 * the order the broker accepted them, newest last, kept from the runner's
 * notes by the observer (rc_observe): a Submit appends its ref. It is the
 * one index List needs beyond the task table, built for memory and for a
 * hot path that never searches it:
 *
 *  - Entries sit in chunks of up to RC_LISTIDX_CHUNK, each entry its 16-byte
 *    ref and a 2-byte offset from its chunk's base position: 18 bytes per
 *    task. A position (base + offset) is given once and never changes, so
 *    a List cursor is a position and survives everything below.
 *  - A record that goes costs the index nothing but a count: its entry is
 *    found dead later, by a sweep that looks each entry of one chunk up in
 *    the task table, drops the dead and shrinks the chunk to fit. The sweep
 *    runs only while more than an eighth of the entries are dead, paid for
 *    by the deaths (RC_LISTIDX_SWEEP lookups each), one chunk at a time, in
 *    turn over all chunks but the last (which takes appends); so the dead
 *    stay a bounded share of the index and no call does more than one
 *    chunk's lookups.
 *  - Each chunk knows when its first and last tasks were created, so an age
 *    bound skips whole chunks.
 *
 * Owned by the broker thread. */
#ifndef RC_LISTIDX_H
#define RC_LISTIDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RC_LISTIDX_CHUNK 1024 /* entries in a chunk, at most (offsets fit in 16 bits) */
#define RC_LISTIDX_SWEEP 4    /* lookups a death pays for while the dead are over an eighth */

typedef struct rc_listidx rc_listidx_t;

/* A chunk and its entries in one block: this header, cap refs, cap offsets.
 * (In the header only for the inline append below.) */
typedef struct {
    uint64_t base;      /* the position of offset 0 */
    uint64_t first_us;  /* created_us of the first task appended */
    uint64_t last_us;   /* the latest created_us appended */
    uint32_t n, cap;    /* entries held, room */
    uint8_t (*ref)[16]; /* n refs, oldest first */
    uint16_t *off;      /* their positions - base, increasing */
} rc_listidx_chunk_t;

/* The index; its fields are rc_listidx.c's (here for the inline append). */
struct rc_listidx {
    rc_listidx_chunk_t *tail;    /* the last chunk, which takes appends (NULL: none yet) */
    uint64_t next;               /* the next position (positions start at 1) */
    size_t total;                /* entries held */
    size_t live;                 /* entries whose tasks are there: the caller's last count, plus appends */
    rc_listidx_chunk_t **chunks; /* oldest first */
    size_t nc, cap_c;
    size_t at;     /* the chunk the sweep looks at next */
    size_t credit; /* lookups the deaths have paid for */
    size_t bytes;
    bool (*is_live)(void *arg, const uint8_t ref[16]);
    void *arg;
};

/* Whether the task with ref is still there (the sweep's question). */
typedef bool(rc_listidx_live_fn)(void *arg, const uint8_t ref[16]);

/* Called for each entry a scan reaches, newest first; false stops the scan
 * after this entry. */
typedef bool(rc_listidx_visit_fn)(void *arg, const uint8_t ref[16]);

rc_listidx_t *rc_listidx_new(rc_listidx_live_fn *live, void *arg);

/* Frees the index; accepts NULL and clears the caller's pointer. */
void rc_listidx_destroy(rc_listidx_t **self_p);

/* Appends a task accepted at created_us (wall clock). 0, or -1 on out of
 * memory (the task is then not listed). Inline: it runs for every Submit;
 * a new chunk comes from rc_listidx_add_chunk. */
int rc_listidx_add_chunk(rc_listidx_t *self, const uint8_t ref[16], uint64_t created_us);

static inline int rc_listidx_add(rc_listidx_t *self, const uint8_t ref[16], uint64_t created_us)
{
    rc_listidx_chunk_t *c = self->tail;
    uint64_t pos = self->next;
    /* The last chunk is never swept, so its offsets are 0, 1, 2 ... */
    if (__builtin_expect(!c || c->n == c->cap, 0))
        return rc_listidx_add_chunk(self, ref, created_us);
    self->next = pos + 1;
    memcpy(c->ref[c->n], ref, 16);
    c->off[c->n] = (uint16_t) (pos - c->base);
    c->n++;
    if (created_us > c->last_us)
        c->last_us = created_us;
    self->total++;
    self->live++;
    return 0;
}

/* Entries have gone (left for the sweep): live is how many of the index's
 * refs are still there, by the caller's count. */
void rc_listidx_gone(rc_listidx_t *self, size_t live);

/* Visits the entries at positions below `before` (0: from the newest),
 * newest first, until visit returns false, `budget` entries have been
 * visited, or the entries left were all created before after_us (0: no
 * bound). Returns the position to continue below, or 0 when nothing is
 * left. Entries may be dead: visit looks them up. */
uint64_t rc_listidx_scan(rc_listidx_t *self, uint64_t before, uint64_t after_us, size_t budget,
                         rc_listidx_visit_fn *visit, void *arg);

/* A position below which every task created at or before created_us lies
 * (0 when there is none), for a scan of tasks older than that: the end of
 * the newest chunk that began by then. */
uint64_t rc_listidx_seek(rc_listidx_t *self, uint64_t created_us);

/* Entries held (live and not yet swept), live entries (as last told), and
 * bytes used. */
size_t rc_listidx_entries(const rc_listidx_t *self);
size_t rc_listidx_live(const rc_listidx_t *self);
size_t rc_listidx_bytes(const rc_listidx_t *self);

#endif
