/* rc_arena: one arena allocator for the three codecs (see rc_arena.h): the
 * arena itself, a thread's free list of arenas, and the process-wide pool of
 * static arenas. */
#include "rc_arena.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* An arena given back is poisoned for AddressSanitizer or else, where
 * valgrind's header is found, for memcheck, and made usable again when it
 * is taken: two client requests per message, none per allocation. */
#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define RC_ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang */
#define RC_ARENA_ASAN 1
#endif
#endif
#if defined(RC_ARENA_ASAN)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#elif defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define POISON(p, n)   VALGRIND_MAKE_MEM_NOACCESS(p, n)
#define UNPOISON(p, n) VALGRIND_MAKE_MEM_UNDEFINED(p, n)
#endif
#endif
#ifndef POISON
#define POISON(p, n)   ((void) (p), (void) (n))
#define UNPOISON(p, n) ((void) (p), (void) (n))
#endif

/* An allocation that did not fit in the buffer: malloc'd with this header in
 * front, on the arena's list so that the reset frees it. */
typedef union rc_arena_block {
    struct {
        union rc_arena_block *prev, *next;
    } l;
    max_align_t align_;
} block_t;

static void *pa_alloc(void *data, size_t size)
{
    return rc_arena_alloc(data, size);
}

/* protobuf-c frees what it allocated only when an unpack fails half-way (and
 * its scratch space for messages of many fields): buffer memory is left for
 * the reset, a block is freed now. */
static void pa_free(void *data, void *p)
{
    rc_arena_t *a = data;
    uintptr_t u = (uintptr_t) p;
    if (!p || (u >= (uintptr_t) a->buf && u < (uintptr_t) a->buf + a->cap))
        return;
    block_t *b = (block_t *) p - 1;
    if (b->l.prev)
        b->l.prev->l.next = b->l.next;
    else
        a->blocks = b->l.next;
    if (b->l.next)
        b->l.next->l.prev = b->l.prev;
    free(b);
}

static void init(rc_arena_t *a, uint8_t *buf, size_t cap)
{
    memset(a, 0, sizeof *a);
    a->pa.alloc = pa_alloc;
    a->pa.free = pa_free;
    a->pa.allocator_data = a;
    a->buf = buf;
    a->cap = cap;
}

rc_arena_t *rc_arena_new(size_t cap)
{
    if (cap > SIZE_MAX - RC_ARENA_HEAD)
        return NULL;
    rc_arena_t *a = malloc(RC_ARENA_HEAD + cap);
    if (a)
        init(a, cap ? (uint8_t *) a + RC_ARENA_HEAD : NULL, cap);
    return a;
}

static void free_blocks(rc_arena_t *a)
{
    for (block_t *b = a->blocks, *next; b; b = next) {
        next = b->l.next;
        free(b);
    }
    a->blocks = NULL;
}

void rc_arena_destroy(rc_arena_t **self_p)
{
    rc_arena_t *a = self_p ? *self_p : NULL;
    if (!a)
        return;
    free_blocks(a);
    UNPOISON(a->buf, a->cap);
    if (a->own_buf)
        free(a->buf);
    free(a);
    *self_p = NULL;
}

void *rc_arena_block_(rc_arena_t *a, size_t size)
{
    block_t *b = size <= SIZE_MAX - sizeof(block_t) ? malloc(sizeof *b + size) : NULL;
    if (!b) {
        a->failed = true;
        return NULL;
    }
    b->l.prev = NULL;
    b->l.next = a->blocks;
    if (a->blocks)
        a->blocks->l.prev = b;
    a->blocks = b;
    a->spilled = size <= SIZE_MAX - a->spilled ? a->spilled + size : SIZE_MAX;
    return b + 1;
}

static inline void forget(rc_arena_t *a)
{
    if (a->blocks)
        free_blocks(a);
    a->used = 0;
    a->spilled = 0;
    a->failed = false;
}

void rc_arena_reset(rc_arena_t *a)
{
    forget(a);
}

/* Reset, and unusable until unparked. */
static inline void park(rc_arena_t *a)
{
    POISON(a->buf, a->used);
    forget(a);
}

static inline void unpark(rc_arena_t *a)
{
    UNPOISON(a->buf, a->cap);
}

void rc_arena_reset_to_fit(rc_arena_t *a)
{
    size_t want = a->used + a->spilled;
    if (a->spilled && a->spilled <= SIZE_MAX / 4 && a->used <= SIZE_MAX / 4) {
        uint8_t *buf = malloc(want * 2);
        if (buf) {
            UNPOISON(a->buf, a->cap);
            if (a->own_buf)
                free(a->buf);
            a->buf = buf;
            a->cap = want * 2;
            a->own_buf = true;
        }
    }
    rc_arena_reset(a);
}

/* ---------------------------------------------------------------- free lists */

rc_arena_t *rc_arena_list_take(rc_arena_list_t *list, size_t cap)
{
    rc_arena_t *a = list->head;
    if (a && a->cap >= cap) {
        list->head = a->next;
        a->next = NULL;
        unpark(a);
    } else if (!(a = rc_arena_new(cap))) {
        return NULL;
    }
    a->users = 1;
    return a;
}

void rc_arena_list_give(rc_arena_list_t *list, rc_arena_t *a)
{
    park(a);
    a->users = 0;
    a->next = list->head;
    list->head = a;
}

void rc_arena_list_free(rc_arena_list_t *list)
{
    while (list->head) {
        rc_arena_t *a = list->head;
        list->head = a->next;
        rc_arena_destroy(&a);
    }
}

/* ---------------------------------------------------------------- the pool */

/* A static arena is taken with an atomic flag, so that the broker, the tests
 * and the fuzzer may decode from any thread and keep several messages alive
 * at once; when every one is taken, a heap arena with no buffer of its own
 * (every allocation a block) stands in. */
#define POOL_BYTES 16384
#define POOL_SLOTS 8 /* below 256: slot_ holds 1 + the place */

static alignas(RC_ARENA_ALIGN) uint8_t pool_mem[POOL_SLOTS][POOL_BYTES];
static rc_arena_t pool[POOL_SLOTS];
static atomic_bool pool_busy[POOL_SLOTS];
static atomic_size_t pool_taken;

rc_arena_t *rc_arena_take(void)
{
    rc_arena_t *a = NULL;
    for (size_t i = 0; i < POOL_SLOTS; i++) {
        if (!atomic_load_explicit(&pool_busy[i], memory_order_relaxed) &&
            !atomic_exchange_explicit(&pool_busy[i], true, memory_order_acquire)) {
            a = &pool[i];
            if (!a->pa.alloc) {
                init(a, pool_mem[i], POOL_BYTES);
                a->slot_ = (uint8_t) (i + 1);
            }
            unpark(a);
            break;
        }
    }
    if (!a && !(a = rc_arena_new(0)))
        return NULL;
    atomic_fetch_add_explicit(&pool_taken, 1, memory_order_relaxed);
    return a;
}

void rc_arena_give(rc_arena_t *a)
{
    if (!a)
        return;
    atomic_fetch_sub_explicit(&pool_taken, 1, memory_order_relaxed);
    if (!a->slot_) {
        rc_arena_destroy(&a);
        return;
    }
    park(a);
    atomic_store_explicit(&pool_busy[a->slot_ - 1], false, memory_order_release);
}

size_t rc_arena_taken(void)
{
    return atomic_load_explicit(&pool_taken, memory_order_relaxed);
}
