/* rc_wmon: a worker pool's connections to the broker, in its log: connected,
 * lost, and why a handshake failed — the broker refused this worker's CURVE
 * key (its ZAP handler said no), or the keys do not match — where libzmq
 * alone would retry in silence. One actor per pool reads the monitor events
 * of each thread's work socket (TCP only: inproc has no handshake); the same
 * trouble is logged at most once a minute, with a count. */
#ifndef RC_WMON_H
#define RC_WMON_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

/* Starts the actor for a pool of `threads` threads whose ids start with
 * prefix; NULL if it cannot. */
zactor_t *rc_wmon_new(const char *prefix, int threads);

/* A thread's socket of a generation (0 for its first, +1 for each socket
 * it opens after): monitored onto the actor's endpoint for it (0, or -1
 * when libzmq refuses), or no longer (before it is closed). */
int rc_wmon_watch(void *socket, const char *prefix, int index, unsigned generation);
void rc_wmon_unwatch(void *socket);

/* Reads one event from the PAIR socket connected to a socket monitor (this
 * one's or the broker's, rc_hsmon): its id, its value and the endpoint it
 * names (cut to len). False when what came was not an event. */
bool rc_wmon_read(zsock_t *pair, uint16_t *event, uint32_t *value, char *endpoint, size_t len);

/* The inproc endpoint of a generation of thread index's monitor. */
void rc_wmon_endpoint(const char *prefix, int index, unsigned generation, char *buf, size_t len);

#endif
