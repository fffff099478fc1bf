/* rc_client_retry: how a blocking call of the client library notices that
 * the broker went away and came back, so that it sends its request again
 * (with the same id) within its caller's timeout. A ZeroMQ socket monitor on
 * the client's DEALER reports each disconnection and each connection; a
 * connection after a disconnection is a comeback: a broker restarted (or a
 * network path restored) that never got the request, or lost it with its
 * process. Only idempotent requests are sent again (rc_client.c decides:
 * Status, Wait, Fetch, Cancel, Delete, Stats, and a Submit with a
 * request_key); a Submit without a key is never repeated.
 *
 * What it costs while the broker stays: nothing on a reply that comes
 * within RC_CLIENT_LOOK_MS (the wait looks at the DEALER alone first); a
 * longer wait (a held Submit, a Wait) polls the monitor's socket beside it. */
#ifndef RC_CLIENT_RETRY_H
#define RC_CLIENT_RETRY_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

/* A wait looks at the DEALER alone this long before it watches the monitor
 * too. */
#define RC_CLIENT_LOOK_MS 20

/* What rc_client_mon_poll returns when the broker came back: the caller
 * sends its request again. */
#define RC_CLIENT_COMEBACK 2

typedef struct {
    zsock_t *pair; /* the monitor's events; NULL: none (no retries) */
    bool down;     /* a disconnection was seen, and no connection since */
} rc_client_mon_t;

/* Starts a monitor of dealer's connections. 0, or -1 (the client then works
 * without retries). */
int rc_client_mon_open(rc_client_mon_t *m, void *dealer);

/* Stops it (before dealer is closed); NULL-safe. */
void rc_client_mon_close(rc_client_mon_t *m, void *dealer);

/* Waits up to timeout_ms for dealer to be readable: 1 when it is, 0 when
 * nothing came (the time passed, or only the monitor spoke), RC_CLIENT_COMEBACK
 * when the broker came back, -1 on a poll error (errno as zmq_poll's). */
int rc_client_mon_poll(rc_client_mon_t *m, void *dealer, long timeout_ms);

#endif
