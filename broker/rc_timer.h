/* rc_timer: a binary min-heap of timers embedded in the objects they time
 * (tasks, waiters). Add, remove and re-arm are O(log n); the loop asks for the
 * earliest due time and pops what is due. */
#ifndef RC_TIMER_H
#define RC_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Embed one of these in an object; `kind` tells the owner what fired. */
typedef struct {
    uint64_t due_us; /* monotonic microseconds */
    uint32_t index;  /* position in the heap + 1; 0 = not armed */
    uint32_t kind;
} rc_timer_t;

typedef struct rc_timers rc_timers_t;

rc_timers_t *rc_timers_new(void);

/* Frees the heap (not the timers, which belong to their objects). */
void rc_timers_destroy(rc_timers_t **self_p);

/* Arms (or re-arms) timer to fire at due_us. 0, or -1 on out of memory. */
int rc_timers_set(rc_timers_t *self, rc_timer_t *timer, uint64_t due_us);

/* Disarms timer; harmless if it is not armed. */
void rc_timers_cancel(rc_timers_t *self, rc_timer_t *timer);

/* True if timer is armed. */
static inline bool rc_timer_armed(const rc_timer_t *timer)
{
    return timer->index != 0;
}

/* The earliest armed timer, or NULL. */
rc_timer_t *rc_timers_first(rc_timers_t *self);

/* Removes and returns the earliest timer if it is due at now_us, else NULL. */
rc_timer_t *rc_timers_pop_due(rc_timers_t *self, uint64_t now_us);

/* Number of armed timers. */
size_t rc_timers_size(rc_timers_t *self);

#endif
