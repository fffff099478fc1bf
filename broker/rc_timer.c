/* rc_timer: the binary min-heap of timers embedded in records, handles,
 * waiters and lanes (see rc_timer.h). */
#include "rc_timer.h"

#include <stdlib.h>

struct rc_timers {
    rc_timer_t **heap;
    size_t size, capacity;
};

rc_timers_t *rc_timers_new(void)
{
    return calloc(1, sizeof(rc_timers_t));
}

void rc_timers_destroy(rc_timers_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rc_timers_t *self = *self_p;
    for (size_t i = 0; i < self->size; i++)
        self->heap[i]->index = 0;
    free(self->heap);
    free(self);
    *self_p = NULL;
}

static void place(rc_timers_t *self, size_t i, rc_timer_t *t)
{
    self->heap[i] = t;
    t->index = (uint32_t) i + 1;
}

static void sift_up(rc_timers_t *self, size_t i)
{
    rc_timer_t *t = self->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (self->heap[parent]->due_us <= t->due_us)
            break;
        place(self, i, self->heap[parent]);
        i = parent;
    }
    place(self, i, t);
}

static void sift_down(rc_timers_t *self, size_t i)
{
    rc_timer_t *t = self->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size && self->heap[child + 1]->due_us < self->heap[child]->due_us)
            child++;
        if (t->due_us <= self->heap[child]->due_us)
            break;
        place(self, i, self->heap[child]);
        i = child;
    }
    place(self, i, t);
}

void rc_timers_cancel(rc_timers_t *self, rc_timer_t *timer)
{
    if (!timer->index)
        return;
    size_t i = timer->index - 1;
    timer->index = 0;
    rc_timer_t *last = self->heap[--self->size];
    if (i == self->size)
        return;
    place(self, i, last);
    sift_up(self, i);
    sift_down(self, last->index - 1);
}

int rc_timers_set(rc_timers_t *self, rc_timer_t *timer, uint64_t due_us)
{
    if (timer->index) {
        size_t i = timer->index - 1;
        timer->due_us = due_us;
        sift_up(self, i);
        sift_down(self, timer->index - 1);
        return 0;
    }
    if (self->size == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 64;
        rc_timer_t **heap = realloc(self->heap, capacity * sizeof *heap);
        if (!heap)
            return -1;
        self->heap = heap;
        self->capacity = capacity;
    }
    timer->due_us = due_us;
    place(self, self->size++, timer);
    sift_up(self, self->size - 1);
    return 0;
}

rc_timer_t *rc_timers_first(rc_timers_t *self)
{
    return self->size ? self->heap[0] : NULL;
}

rc_timer_t *rc_timers_pop_due(rc_timers_t *self, uint64_t now_us)
{
    if (!self->size || self->heap[0]->due_us > now_us)
        return NULL;
    rc_timer_t *t = self->heap[0];
    rc_timers_cancel(self, t);
    return t;
}

size_t rc_timers_size(rc_timers_t *self)
{
    return self->size;
}
