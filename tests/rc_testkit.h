/* rc_testkit: what the tests share — a real broker on ephemeral loopback
 * ports and a client of it, the broker's counters and the wait for its
 * workers, a hand-driven worker's messages, and a small deterministic random
 * generator. Failures end the calling cmocka test. */
#ifndef RC_TESTKIT_H
#define RC_TESTKIT_H

#include "rc_broker.h"
#include "refcache.h"
#include "refcache.pb-c.h"

/* The broker's defaults, with all three endpoints on tcp://127.0.0.1:*. */
void rc_testkit_config(rc_broker_config_t *config);

/* Starts a broker with config, or fails the test with the broker's error. */
rc_broker_t *rc_testkit_broker(const rc_broker_config_t *config);

/* A client connected to broker's clients endpoint, or fails the test. */
refcache_client_t *rc_testkit_client(rc_broker_t *broker);

/* A raw ZeroMQ socket of type in ctx, connected to endpoint, with no
 * linger and routing id `id` (unless NULL), or fails the test. */
void *rc_testkit_socket(void *ctx, int type, const char *id, const char *endpoint);

/* Sends m, packed, as one frame on a raw ZeroMQ socket (or fails the test). */
void rc_testkit_send_pb(void *sock, const ProtobufCMessage *m);

/* For a hand-driven worker: waits up to ms for a BrokerMessage on its work
 * socket and returns it unpacked (free it with
 * refcache__v1__broker_message__free_unpacked), its Dispatches in *d and
 * *n (one alone, a DispatchBatch's, or none for another body); NULL if
 * nothing came. */
Refcache__V1__BrokerMessage *rc_testkit_take_dispatches(void *work, int ms, Refcache__V1__Dispatch ***d,
                                                        size_t *n);

/* Reads the broker's counters into *s (or fails the test). */
void rc_testkit_stats(refcache_client_t *client, refcache_stats_t *s);

/* Polls Stats until the broker counts exactly n workers (a pool's Ready
 * seen, or its loss noticed), up to ms; fails the test after that. */
void rc_testkit_wait_workers(refcache_client_t *client, uint64_t n, int ms);

/* xorshift64: the next number of the sequence whose state (never 0) the
 * caller keeps, so that a test's random cases repeat from run to run. */
uint64_t rc_testkit_rnd(uint64_t *state);

#endif
