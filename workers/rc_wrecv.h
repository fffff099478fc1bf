/* rc_wrecv: what a worker thread receives — broker messages unpacked into
 * reused per-message arenas, the ring of held dispatches, the tombstones of
 * cancel notices that overtook their dispatch, and the handling of the work,
 * control and pipe sockets' messages. */
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

/* Handles the cancel notices the control socket holds. */
void rc_wrecv_handle_control(rc_wthread_t *w);

/* Reads the actor pipe: anything there is a stop request. */
void rc_wrecv_handle_pipe(rc_wthread_t *w);

#endif
