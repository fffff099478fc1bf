/* rc_board: the cancel boards of in-process worker threads and their
 * registry (see rc_board.h). */
#include "rc_board.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rc_board_registry {
    pthread_mutex_t lock; /* guards the list and the boards' ids */
    rc_board_t *boards;
    size_t capacity; /* 0: from each thread's credit */
};

size_t rc_board_capacity_for(uint32_t credit)
{
    size_t want = 2 * ((size_t) credit + 1), cap = 2;
    while (cap < want)
        cap *= 2;
    return cap;
}

rc_board_registry_t *rc_board_registry_new(size_t capacity)
{
    if (capacity != 0 && (capacity < 2 || (capacity & (capacity - 1)) != 0))
        return NULL;
    rc_board_registry_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (pthread_mutex_init(&self->lock, NULL) != 0) {
        free(self);
        return NULL;
    }
    self->capacity = capacity;
    return self;
}

void rc_board_registry_destroy(rc_board_registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rc_board_registry_t *self = *self_p;
    while (self->boards) {
        rc_board_t *b = self->boards;
        self->boards = b->next;
        free(b->entries);
        free(b);
    }
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

rc_board_t *rc_board_add(rc_board_registry_t *self, uint32_t credit)
{
    size_t cap = self->capacity ? self->capacity : rc_board_capacity_for(credit);
    /* Aligned as its type says: head and tail sit on lines of their own, so
     * the thread's polling of head does not fight the loop's writes of
     * other things, nor its own writes of tail. */
    size_t size = (sizeof(rc_board_t) + 63) / 64 * 64;
    rc_board_t *b = aligned_alloc(64, size);
    rc_board_entry_t *entries = calloc(cap, sizeof *entries);
    if (!b || !entries) {
        free(b);
        free(entries);
        return NULL;
    }
    memset(b, 0, size);
    atomic_init(&b->head, 0);
    atomic_init(&b->missed, 0);
    atomic_init(&b->tail, 0);
    b->mask = cap - 1;
    b->entries = entries;
    pthread_mutex_lock(&self->lock);
    b->next = self->boards;
    self->boards = b;
    pthread_mutex_unlock(&self->lock);
    return b;
}

void rc_board_name(rc_board_registry_t *self, rc_board_t *board, const char *id)
{
    pthread_mutex_lock(&self->lock);
    snprintf(board->id, sizeof board->id, "%s", id);
    pthread_mutex_unlock(&self->lock);
}

rc_board_t *rc_board_find(rc_board_registry_t *self, const char *id)
{
    rc_board_t *found = NULL;
    /* Under the mutex, because threads register while the loop looks up;
     * the loop looks up once per Ready, so neither the lock nor the walk
     * (one board per thread) is on a per-message path. */
    pthread_mutex_lock(&self->lock);
    for (rc_board_t *b = self->boards; b && !found; b = b->next)
        if (b->id[0] && strcmp(b->id, id) == 0)
            found = b;
    pthread_mutex_unlock(&self->lock);
    return found;
}

bool rc_board_post(rc_board_t *self, const uint8_t ref[16], uint32_t attempt)
{
    size_t head = atomic_load_explicit(&self->head, memory_order_relaxed); /* ours */
    /* Acquire: the consumer read the entries before it released them. */
    if (head - atomic_load_explicit(&self->tail, memory_order_acquire) > self->mask)
        return false;
    rc_board_entry_t *e = &self->entries[head & self->mask];
    memcpy(e->ref, ref, 16);
    e->attempt = attempt;
    atomic_store_explicit(&self->head, head + 1, memory_order_release);
    return true;
}
