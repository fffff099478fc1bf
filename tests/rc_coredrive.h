/* rc_coredrive: a broker core driven by hand, as the loop drives it, for the
 * benchmarks that measure the core alone (bench_core, bench_list): real
 * inproc sockets to a client and a worker the program plays itself, the
 * core's entry points called directly so that callgrind can count them and
 * a clock can time them. Any failure prints and exits (a benchmark has no
 * one to report to). */
#ifndef RC_COREDRIVE_H
#define RC_COREDRIVE_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "rc_common.h"
#include "rc_core.h"

typedef struct {
    void *ctx;
    void *clients, *workers, *control; /* the core's ROUTERs */
    void *client;                      /* DEALER "c" on the core's client channel */
    void *work;                        /* DEALER "w" on its worker channel */
    void *ctl;                         /* DEALER "w" on its control channel */
    rc_core_t *core;
} rc_coredrive_t;

/* Binds the core's three ROUTERs on inproc://NAME-*, connects the client
 * and the worker, and starts a core on cfg (with its store when
 * cfg->store_path names one). */
void rc_coredrive_open(rc_coredrive_t *d, const char *name, const rc_broker_config_t *cfg);

/* Closes the core (and its store), the sockets and the context. */
void rc_coredrive_close(rc_coredrive_t *d);

/* The worker "w" announces itself on both channels: functions fns (the
 * first n_cacheable of them cacheable), its credit, batches of 64. */
void rc_coredrive_join(rc_coredrive_t *d, char **fns, size_t n_fns, size_t n_cacheable, uint32_t credit);

/* m packed into a new buffer (the caller frees it); *len its size. */
uint8_t *rc_coredrive_pack(const ProtobufCMessage *m, size_t *len);

/* The two frames a ROUTER hands over for body from rid (the caller closes
 * them after the entry point took them). */
void rc_coredrive_frames(zmq_msg_t f[2], const char *rid, const void *body, size_t len);

/* A round of the client and the worker: up to RC_COREDRIVE_ROUND Submits
 * in one RequestBatch, and the ResultBatch that answers dispatches, built
 * in place (no allocation per round). */
#define RC_COREDRIVE_ROUND 64
typedef struct {
    uint8_t payload[RC_COREDRIVE_ROUND][32];
    Refcache__V1__SubmitRequest sub[RC_COREDRIVE_ROUND];
    Refcache__V1__Request req[RC_COREDRIVE_ROUND], *reqp[RC_COREDRIVE_ROUND];
    Refcache__V1__RequestBatch batch;
    Refcache__V1__Request outer;
    Refcache__V1__Result res[RC_COREDRIVE_ROUND], *resp[RC_COREDRIVE_ROUND];
    Refcache__V1__ResultBatch rbatch;
    Refcache__V1__WorkerMessage wres;
} rc_coredrive_round_t;

void rc_coredrive_round_init(rc_coredrive_round_t *r);

/* The Request (a batch) of k Submits of fn, request ids *id on (advanced),
 * 32-byte payloads of 'p' that start with their request id unless `same`,
 * held by async_ms. */
const ProtobufCMessage *rc_coredrive_submits(rc_coredrive_round_t *r, size_t k, const char *fn, uint64_t *id,
                                             bool same, uint32_t async_ms);

/* The dispatches bm carries (*n of them), or NULL when it is not one. */
Refcache__V1__Dispatch **rc_coredrive_dispatches(Refcache__V1__BrokerMessage *bm, size_t *n);

/* The WorkerMessage with the results of dispatches d[0..n) (n at most
 * RC_COREDRIVE_ROUND), each its payload echoed. */
const ProtobufCMessage *rc_coredrive_results(rc_coredrive_round_t *r, Refcache__V1__Dispatch **d, size_t n);

/* Receives whatever waits on s, without waiting: the number of messages
 * (last frames), and the last one in *last when last is not NULL (the
 * caller closes it; untouched when there was none). */
int rc_coredrive_take(void *s, zmq_msg_t *last);

#endif
