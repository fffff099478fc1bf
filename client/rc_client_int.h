/* rc_client_int: what the client library's other files (rc_client_observe)
 * use of rc_client.c's connection: queueing a rare request that protobuf-c
 * packs, waiting for a reply by id, the connection's namespace, and the
 * state of its one watch. Internal: not installed. */
#ifndef RC_CLIENT_INT_H
#define RC_CLIENT_INT_H

#include <protobuf-c/protobuf-c.h>

#include "refcache.h"

/* A client's watch (refcache_client_watch): its id, the events read and
 * those acknowledged, and its window. id 0: none. */
typedef struct {
    uint64_t id;
    uint64_t got, acked;
    uint32_t window;
} rc_client_watch_t;

/* Queues a Request (a Refcache__V1__Request whose id this sets to the next
 * one) like the pipelined sends: 0 and *id, or a negative error. */
int rc_client_send_pb(refcache_client_t *self, ProtobufCMessage *request, uint64_t *id);

/* Waits for the reply to request id (others are discarded), of kind when OK;
 * the reply's code, or a library error. out borrows the client's buffers. */
int rc_client_await(refcache_client_t *self, uint64_t id, int timeout_ms, refcache_reply_kind_t kind,
                    refcache_reply_t *out);

/* The connection's namespace (NULL: the default one). */
const char *rc_client_namespace(const refcache_client_t *self);

rc_client_watch_t *rc_client_watch_state(refcache_client_t *self);

#endif
