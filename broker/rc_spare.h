/* rc_spare: a list of freed blocks of one size, kept for the next
 * allocation of that size instead of going back to malloc. The broker's
 * loop allocates and frees its short-lived blocks (active task records,
 * waiters) at the task rate; handed back to malloc, they are split to hold
 * the long-lived shrunk records, whose heap they then riddle with holes,
 * and each round trip costs malloc's bookkeeping. A list holds at most
 * `cap` blocks (beyond that they are freed). Under AddressSanitizer a
 * block on the list is poisoned but for its link, so a use after release
 * is still caught. Not thread-safe: the loop's own. */
#ifndef RC_SPARE_H
#define RC_SPARE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define RC_SPARE_POISON(p, n)   ASAN_POISON_MEMORY_REGION((uint8_t *) (p) + sizeof(void *), (n) - sizeof(void *))
#define RC_SPARE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define RC_SPARE_POISON(p, n)   ((void) (p), (void) (n))
#define RC_SPARE_UNPOISON(p, n) ((void) (p), (void) (n))
#endif

typedef struct {
    void *head;  /* linked through each block's first bytes */
    size_t size; /* every block's size (at least a pointer's) */
    uint32_t n, cap;
} rc_spare_t;

/* A zeroed block of s->size bytes, or NULL when out of memory. */
static inline void *rc_spare_get(rc_spare_t *s)
{
    void *p = s->head;
    if (!p)
        return calloc(1, s->size);
    RC_SPARE_UNPOISON(p, s->size);
    s->head = *(void **) p;
    s->n--;
    memset(p, 0, s->size);
    return p;
}

/* Takes back a block from rc_spare_get (or any malloc'd block of s->size). */
static inline void rc_spare_put(rc_spare_t *s, void *p)
{
    if (s->n >= s->cap) {
        free(p);
        return;
    }
    *(void **) p = s->head;
    s->head = p;
    s->n++;
    RC_SPARE_POISON(p, s->size);
}

/* Frees every block on the list. */
static inline void rc_spare_drain(rc_spare_t *s)
{
    while (s->head) {
        void *p = s->head;
        RC_SPARE_UNPOISON(p, s->size);
        s->head = *(void **) p;
        free(p);
    }
    s->n = 0;
}

#endif
