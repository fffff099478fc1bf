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

/* Takes the cancels posted on the thread's board since the last call and
 * acts on them (cheap when none is new: an acquire load or two). Returns
 * true when the control socket must still be looked at before a held task
 * starts: the thread has no board, or a notice found it full. */
bool rc_wrecv_board_take(rc_wthread_t *w);

/* Forgets the echoes of board notices: on a new connection their copies
 * will not come. */
void rc_wrecv_echoes_clear(rc_wthread_t *w);

/* Handles the cancel notices the control socket holds (the board's
 * first). */
void rc_wrecv_handle_control(rc_wthread_t *w);

/* Reads the actor pipe: anything there is a stop request. */
void rc_wrecv_handle_pipe(rc_wthread_t *w);

#endif
