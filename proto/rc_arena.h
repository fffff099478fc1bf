/* rc_arena: the memory the codecs decode messages into, for the broker, the
 * workers and the client alike.
 *
 * protobuf-c's unpack allocates every submessage, string and bytes field
 * apart, and so do the hand readers that build the same structs; an arena
 * makes each allocation a pointer bump in one buffer, and forgetting them
 * all one reset. What does not fit in the buffer is malloc'd as a block on
 * the arena's list, freed at the reset (or at once, when protobuf-c frees it
 * after an unpack that failed half-way). `pa` hands the arena to protobuf-c.
 *
 * Three ways to hold arenas, one per user:
 *   rc_arena_new/_destroy   one arena (the client's, reset per reply);
 *   rc_arena_list_*         a free list owned by one thread (a worker
 *                           thread's, whose held tasks keep their message);
 *   rc_arena_take/_give     a process-wide pool of static arenas, taken from
 *                           any thread (the broker's codec, whose decoded
 *                           messages may be many at once).
 *
 * An arena given back to its list or to the pool is poisoned for
 * AddressSanitizer and valgrind's memcheck until it is taken again, so that
 * a view read after its message was let go does not go unseen just because
 * the memory is reused. */
#ifndef RC_ARENA_H
#define RC_ARENA_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Every allocation is aligned for any type. */
#define RC_ARENA_ALIGN alignof(max_align_t)
/* Where an arena from rc_arena_new keeps its buffer: this far from its
 * start, in the same malloc. */
#define RC_ARENA_HEAD ((sizeof(rc_arena_t) + RC_ARENA_ALIGN - 1) & ~(RC_ARENA_ALIGN - 1))

typedef struct rc_arena rc_arena_t;
struct rc_arena {
    ProtobufCAllocator pa; /* allocates from this arena */
    uint8_t *buf;          /* the buffer: cap bytes, the first used of them handed out */
    size_t cap, used;
    union rc_arena_block *blocks; /* what did not fit, malloc'd */
    size_t spilled;               /* bytes asked of blocks since the last reset */
    bool failed;                  /* an allocation found no memory since the last reset */
    bool own_buf;                 /* buf was malloc'd apart (a grown buffer) */
    uint8_t slot_;                /* internal: 1 + its place in the pool, 0 if none */
    unsigned users;               /* for its holder: who still uses what it holds */
    rc_arena_t *next;             /* for its holder's lists */
};

/* A new arena with a buffer of cap bytes (0: every allocation a block), in
 * one malloc with it; NULL if out of memory. */
rc_arena_t *rc_arena_new(size_t cap);

/* Frees the arena, its blocks and its buffer; accepts NULL and clears the
 * caller's pointer. */
void rc_arena_destroy(rc_arena_t **self_p);

/* size bytes (aligned to RC_ARENA_ALIGN) valid until the next reset, or NULL
 * if out of memory (failed is then set). */
void *rc_arena_block_(rc_arena_t *self, size_t size);
static inline void *rc_arena_alloc(rc_arena_t *self, size_t size)
{
    size_t n = (size + RC_ARENA_ALIGN - 1) & ~(size_t) (RC_ARENA_ALIGN - 1);
    if (size && n >= size && n <= self->cap - self->used) {
        void *p = self->buf + self->used;
        self->used += n;
        return p;
    }
    return rc_arena_block_(self, size);
}

/* Forgets every allocation: frees the blocks and reuses the buffer. */
void rc_arena_reset(rc_arena_t *self);

/* The same, and if the allocations since the last reset went past the
 * buffer, trades it for one of twice their total, so that a message like
 * the last one fits next time (keeps the old one if out of memory). */
void rc_arena_reset_to_fit(rc_arena_t *self);

/* The arena from rc_arena_new whose first allocation from its buffer is
 * first (a message decoded first thing into a fresh arena finds its arena
 * from its own address). */
static inline rc_arena_t *rc_arena_of(const void *first)
{
    return (rc_arena_t *) (void *) ((uint8_t *) (uintptr_t) first - RC_ARENA_HEAD);
}

/* A free list of arenas from rc_arena_new, for one thread. */
typedef struct {
    rc_arena_t *head;
} rc_arena_list_t;

/* An arena of at least cap bytes, reset, users 1: the list's first if it is
 * big enough, else a new one. NULL if out of memory. */
rc_arena_t *rc_arena_list_take(rc_arena_list_t *list, size_t cap);

/* Resets the arena, poisons it and puts it first on the list. */
void rc_arena_list_give(rc_arena_list_t *list, rc_arena_t *arena);

/* Destroys every arena on the list. */
void rc_arena_list_free(rc_arena_list_t *list);

/* A reset arena from the process-wide pool: one of a few static arenas, or
 * when all are taken a stand-in from rc_arena_new(0). Any thread may take
 * and give; NULL if out of memory. */
rc_arena_t *rc_arena_take(void);

/* Gives back an arena from rc_arena_take, reset and poisoned (NULL:
 * nothing). */
void rc_arena_give(rc_arena_t *arena);

/* How many arenas of the pool are taken, in the whole process. */
size_t rc_arena_taken(void);

#endif
