/* rc_wrecv: what a worker thread receives — broker messages unpacked into
 * reused per-message arenas, the ring of held dispatches, the tombstones of
 * cancel notices that overtook their dispatch, cancels taken from the
 * thread's board (and the echoes that recognise their copies on the
 * socket), and the handling of the work, control and pipe sockets'
 * messages. */
#ifndef RC_WRECV_H
#define RC_WRECV_H

#include "rc_wthread.h"

/* Frees the thread's spare arenas. */
void rc_wrecv_arenas_free_all(rc_wthread_t *w);

/* Lets go of a received message; its last user recycles its arena. */
void rc_wrecv_msg_free(rc_wthread_t *w, void *msg);

/* Takes the oldest held task into *out; false if none. */
bool rc_wrecv_held_pop(rc_wthread_t *w, held_t *out);

/* Drops every held task without telling the broker (it forgot them). */
void rc_wrecv_held_drop_all(rc_wthread_t *w);

/* Handles what the work socket holds, up to DRAIN_BATCH messages. */
void rc_wrecv_handle_work(rc_wthread_t *w);

/* Takes one message from the work socket if one is queued; true if so. */
bool rc_wrecv_take_work(rc_wthread_t *w);

/* Takes the cancels posted on the thread's board (it has one) since the
 * last call and acts on them. */
void rc_wrecv_board_drain(rc_wthread_t *w);

/* True when a cancel may wait that the thread must take before it starts a
 * held task (rc_wpoll_look with control takes it): the thread has no board
 * (cancels come by the control socket), its board holds new entries, or a
 * notice found the board full. Inline, as the thread asks before every held
 * task: with a board, two loads when nothing is new. */
static inline bool rc_wrecv_cancels_may_wait(rc_wthread_t *w)
{
    rc_board_t *b = w->board;
    return !b || rc_board_pending(b) || rc_board_missing(b);
}

/* Forgets the echoes of board notices: on a new connection their copies
 * will not come. */
void rc_wrecv_echoes_clear(rc_wthread_t *w);

/* Handles the cancel notices the control socket holds (the board's
 * first). */
void rc_wrecv_handle_control(rc_wthread_t *w);

/* Reads the actor pipe: anything there is a stop request. */
void rc_wrecv_handle_pipe(rc_wthread_t *w);

#endif
