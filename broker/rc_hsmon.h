/* rc_hsmon: the handshakes that fail on the broker's endpoints before any
 * key is checked — a peer with the wrong broker public key, a peer without
 * CURVE on a CURVE endpoint (or with it on a plain one), a connection that
 * is not ZeroMQ at all. The ZAP handler (rc_zap) logs the keys it refuses;
 * these never reach it. ZeroMQ reports them to a socket monitor only, with
 * the endpoint that accepted them (not the peer's address). A thread of its
 * own reads the monitors of the three channels, so the loop polls nothing
 * more, and logs a WARN line per channel and cause, at most once a minute
 * with the count since (security: handshake failed …). */
#ifndef RC_HSMON_H
#define RC_HSMON_H

typedef struct rc_hsmon rc_hsmon_t;

/* Starts monitoring the handshakes of the sockets (the clients, workers
 * and control ROUTERs, as the loop thread owns them: call it there, before
 * the loop). NULL on failure (logged; the broker runs without it). */
rc_hsmon_t *rc_hsmon_start(void *clients, void *workers, void *control);

/* Stops the monitors (from the thread that started them, before the
 * sockets close) and the thread. */
void rc_hsmon_stop(rc_hsmon_t **self_p, void *clients, void *workers, void *control);

/* What a failed handshake's protocol error code means, in a few words a
 * person acts on. */
const char *rc_hsmon_cause(unsigned code);

#endif
