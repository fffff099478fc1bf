/* rc_board: the cancel board of an in-process worker thread, and the
 * registry where the broker finds it. Internal: not part of the public
 * worker API.
 *
 * A board is a single-producer, single-consumer ring of cancel notices,
 * (ref, attempt), in memory shared by the broker's loop thread (the only
 * producer) and one worker thread of the broker's own pool (the only
 * consumer). The broker posts a notice there BEFORE it sends the same notice
 * on the control socket, and the thread takes what is new before it starts
 * each held task. The ordering is C11's: the producer publishes an entry
 * with a release store of `head`, the consumer reads `head` with an acquire
 * load, so an entry it counts is an entry it can read; it hands slots back
 * with a release store of `tail`, which the producer reads with an acquire
 * load before it writes over them. Nothing rests on when a message sent on
 * a ZeroMQ socket becomes readable on the other side: a cancel posted
 * before the thread's look at its board is seen by that look.
 *
 * Capacity. An entry the thread has not taken names a task whose credit
 * slot the broker still counts as used, with one exception: the task the
 * thread started since its last look may end (its Result frees the slot,
 * which the broker may fill and cancel again) before the next look. So at
 * most credit + 1 entries wait in normal operation; a board holds a power
 * of two of at least twice that, for the rarer cases where the broker frees
 * slots without an answer (a worker declared lost, then heard again). Full
 * is still handled: rc_board_post refuses, the broker counts the notice as
 * missed (rc_board_miss) until the task it names is answered
 * (rc_board_settle), and while any is missed the thread looks at its
 * control socket before every held task, as a worker without a board does.
 *
 * The registry maps a thread's routing id to its board. It owns the boards,
 * so they outlive both the pool's threads and the broker's loop, whichever
 * stops first. */
#ifndef RC_BOARD_H
#define RC_BOARD_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t ref[16];
    uint32_t attempt;
} rc_board_entry_t;

typedef struct rc_board_registry rc_board_registry_t;

typedef struct rc_board {
    /* The producer's line: what it writes, what the consumer polls. */
    alignas(64) atomic_size_t head; /* entries published (release) */
    atomic_uint missed;             /* notices not posted because the board was full, not yet settled */
    /* The consumer's line. */
    alignas(64) atomic_size_t tail; /* entries taken (release) */
    alignas(64) size_t mask;        /* capacity - 1 */
    rc_board_entry_t *entries;
    struct rc_board *next; /* in the registry */
    char id[64];           /* the routing id it is registered under ("" for none) */
} rc_board_t;

/* Capacity of the board for a thread of this credit: a power of two of at
 * least 2 * (credit + 1). */
size_t rc_board_capacity_for(uint32_t credit);

/* A registry of boards. capacity 0: each board is sized from its thread's
 * credit; otherwise every board gets this many entries (a power of two of
 * at least 2; tests force a tiny ring with it). NULL without memory. */
rc_board_registry_t *rc_board_registry_new(size_t capacity);

/* Frees the registry and every board in it; accepts NULL and clears the
 * caller's pointer. Nothing may use a board afterwards. */
void rc_board_registry_destroy(rc_board_registry_t **self_p);

/* A new board for a thread of this credit, owned by the registry, not yet
 * registered under any id. NULL without memory. */
rc_board_t *rc_board_add(rc_board_registry_t *self, uint32_t credit);

/* Registers board under routing id (replacing the id it had: a thread that
 * reconnects takes a new one). Call before the Ready that carries it. */
void rc_board_name(rc_board_registry_t *self, rc_board_t *board, const char *id);

/* The board registered under routing id, or NULL. Takes the registry's
 * mutex and walks its list: for the loop's look-up when a peer's Ready
 * arrives, never per message. */
rc_board_t *rc_board_find(rc_board_registry_t *self, const char *id);

/* Producer (the broker's loop thread only). */

/* Posts a cancel notice; false (and nothing posted) if the board is full. */
bool rc_board_post(rc_board_t *self, const uint8_t ref[16], uint32_t attempt);

/* Counts a notice that could not be posted, before it is sent on the
 * socket (release: a thread that has not seen the entry sees the count);
 * rc_board_settle when the task it names has been answered. Inline: the
 * broker's release of a credit slot checks for a settle on every task. */
static inline void rc_board_miss(rc_board_t *self)
{
    atomic_fetch_add_explicit(&self->missed, 1, memory_order_release);
}

static inline void rc_board_settle(rc_board_t *self)
{
    atomic_fetch_sub_explicit(&self->missed, 1, memory_order_release);
}

/* Consumer (the board's worker thread only). */

/* True if an entry waits to be taken: one acquire load when none does. */
static inline bool rc_board_pending(rc_board_t *self)
{
    return atomic_load_explicit(&self->head, memory_order_acquire) !=
           atomic_load_explicit(&self->tail, memory_order_relaxed); /* ours */
}

/* Takes the oldest entry not yet taken into *out; false if none. */
static inline bool rc_board_take(rc_board_t *self, rc_board_entry_t *out)
{
    size_t tail = atomic_load_explicit(&self->tail, memory_order_relaxed); /* ours */
    if (atomic_load_explicit(&self->head, memory_order_acquire) == tail)
        return false;
    *out = self->entries[tail & self->mask];
    atomic_store_explicit(&self->tail, tail + 1, memory_order_release);
    return true;
}

/* True while some notice is missing from the board (see rc_board_miss):
 * the thread must then look at its control socket before a held task. */
static inline bool rc_board_missing(rc_board_t *self)
{
    return atomic_load_explicit(&self->missed, memory_order_acquire) != 0;
}

#endif
