/* rc_wpoll: socket readiness for a worker thread — waiting on the armed
 * sockets' descriptors with poll(), opening and reconnecting the two DEALER
 * sockets (and registering the thread's cancel board under their routing
 * id), and the heartbeat and liveness timers. */
#ifndef RC_WPOLL_H
#define RC_WPOLL_H

#include "rc_wthread.h"

/* Waits up to timeout_ms (0: only looks) for input on the pipe, the work
 * and (if asked) the control socket, and handles what arrived; asked for
 * control, it also takes what the cancel board holds (after the work
 * socket, before the control socket): a notice posted there stops a running
 * job at this step boundary, wherever its copy on the socket is. */
void rc_wpoll_look(rc_wthread_t *w, long timeout_ms, bool control);

/* Looks at (or waits up to timeout_ms for) every input. */
void rc_wpoll_input(rc_wthread_t *w, long timeout_ms);

/* Closes the work and control sockets. */
void rc_wpoll_close_sockets(rc_wthread_t *w);

/* Opens and connects the work and control sockets. 0, or -1 with
 * w->setup_err set. */
int rc_wpoll_open_sockets(rc_wthread_t *w);

/* New sockets and a new routing id, dropping what was held (the broker
 * has forgotten it), then Ready again. */
void rc_wpoll_reconnect(rc_wthread_t *w);

/* Heartbeat and liveness timers; call only right after draining the work
 * socket, so that queued broker messages count as heard. */
void rc_wpoll_check_timers(rc_wthread_t *w);

/* Milliseconds until rc_wpoll_check_timers has something to do. */
long rc_wpoll_timer_timeout_ms(rc_wthread_t *w);

#endif
