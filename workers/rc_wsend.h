/* rc_wsend: what a worker thread sends to the broker — heartbeats, Ready and
 * ControlHello, Started, Progress (through rc_wsend_work), CancelAck,
 * Failure and Result — and the results it sends together: a burst of short
 * tasks' results waits (at most RESULTS_MAX of them, RESULTS_BYTES, or
 * RESULTS_WAIT_US for the first) and goes out as one ResultBatch, before any
 * other message and before the thread waits. Started and Result are encoded
 * by hand (rc_worker_codec), the rest by protobuf-c. */
#ifndef RC_WSEND_H
#define RC_WSEND_H

#include "rc_wthread.h"

/* Sends the results that wait to go out together (one as a Result, more as a
 * ResultBatch); with no memory for the message they stay for the next flush. */
void rc_wsend_results_flush(rc_wthread_t *w);

/* The same once the first result has waited RESULTS_WAIT_US. */
void rc_wsend_results_flush_if_due(rc_wthread_t *w);

/* Packs wm and sends it on the work socket after the waiting results. 0 or -1. */
int rc_wsend_work(rc_wthread_t *w, worker_msg_t *wm);

/* Sends a Heartbeat if nothing went out for a heartbeat interval. */
void rc_wsend_heartbeat_if_due(rc_wthread_t *w, uint64_t now);

/* Marks the thread silent too long (and its job disowned) when it sent
 * nothing for the broker's whole liveness window. */
void rc_wsend_check_silence(rc_wthread_t *w);

/* Sends Started for d. */
void rc_wsend_started(rc_wthread_t *w, const Refcache__V1__Dispatch *d);

/* Sends CancelAck (started: the job had begun). */
void rc_wsend_cancel_ack(rc_wthread_t *w, const char *ref_id, uint32_t attempt, bool started);

/* Sends Failure for d. */
void rc_wsend_failure(rc_wthread_t *w, const Refcache__V1__Dispatch *d, int code, bool retryable,
                      const char *message);

/* Queues d's Result with the others that go out together (or sends it
 * alone when there is no memory to queue it). */
void rc_wsend_result(rc_wthread_t *w, const Refcache__V1__Dispatch *d, const void *data, size_t len);

/* Sends ControlHello on the control channel, then Ready. 0 or -1. */
int rc_wsend_announce(rc_wthread_t *w);

#endif
