/* rc_zap: the broker's ZAP handler (ZeroMQ's authentication protocol) for
 * its CURVE sockets, in a thread of its own: a handshake completes only with
 * a key of one of the allow-lists, and every refusal is logged with the key,
 * the peer's address and the channel (a key refused again and again, once a
 * minute with a count). The key allowed becomes the connection's User-Id,
 * which the broker reads to tell client, worker and admin keys apart. */
#ifndef RC_ZAP_H
#define RC_ZAP_H

#include <czmq.h>

/* Starts the handler for the keys of the n sets (Z85 key -> certificate
 * name; copied); NULL if it cannot bind the ZAP endpoint. */
zactor_t *rc_zap_new(zhashx_t *const *sets, size_t n);

/* Replaces the handler's keys with those of the n sets (copied): the next
 * handshake sees them. 0, or -1 (out of memory). */
int rc_zap_set_keys(zactor_t *zap, zhashx_t *const *sets, size_t n);

#endif
