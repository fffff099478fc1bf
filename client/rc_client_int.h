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

/* What a blocking call's idempotent request is, to send it again with the
 * same id when the broker comes back (rc_client_retry.h): a Submit
 * (function and options; only with a request_key), or a request that names
 * a task (body, ref_id, its numbers) or Stats. hold_ms is the time it asked
 * the broker to hold the reply (a Submit's async timeout, a Wait's), sent
 * again as what is left of it since start_us. */
typedef struct {
    const char *function;
    const refcache_submit_options_t *options;
    int body; /* rc_client_codec_body_t */
    const char *ref_id;
    uint64_t num[2];
    unsigned n_num;
    uint32_t hold_ms;
    uint64_t start_us;
} rc_client_again_t;

/* A wait met the broker's comeback (an internal code, never returned to the
 * library's callers). */
#define RC_CLIENT_ECOMEBACK (-1000)

/* Sends the request of `again` anew with id, at once. 0 or an error. */
int rc_client_send_again(refcache_client_t *self, const rc_client_again_t *again, uint64_t id);

/* rc_client_await, sending the request again (again; NULL: never) when the
 * broker comes back within timeout_ms. */
int rc_client_await_again(refcache_client_t *self, uint64_t id, uint64_t timeout_ms, refcache_reply_kind_t kind,
                          refcache_reply_t *out, const rc_client_again_t *again);

/* The connection's namespace (NULL: the default one). */
const char *rc_client_namespace(const refcache_client_t *self);

rc_client_watch_t *rc_client_watch_state(refcache_client_t *self);

#endif
