/* rc_handworker: a worker driven by hand from a test — the two DEALER
 * sockets of one routing id on a broker's work and control channels, and
 * the messages of docs/protocol.md ("Workers") sent and read one at a time,
 * so a test can play a worker that holds tasks, falls silent, comes back
 * with a report, or says goodbye. Failures end the calling cmocka test. */
#ifndef RC_HANDWORKER_H
#define RC_HANDWORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc_broker.h"
#include "refcache.pb-c.h"

typedef struct {
    void *ctx, *work, *control;
    char id[64];
    uint64_t session;
    /* What came from the broker besides dispatches, counted. */
    unsigned reannounces, heartbeats, stoppings;
} rc_hw_t;

/* One attempt of a task, as a report or a HandBack names it. */
typedef struct {
    char ref[33];
    uint32_t attempt;
} rc_hw_ref_t;

/* Connects id's two sockets to broker (with its own ZeroMQ context). */
void rc_hw_open(rc_hw_t *hw, rc_broker_t *broker, const char *id);
void rc_hw_close(rc_hw_t *hw);

/* ControlHello, then Ready serving fn with credit, heartbeat_ms and
 * hw->session; with prev_session, the report of that session (its routing
 * id prev_id, the n attempts it started). */
void rc_hw_ready(rc_hw_t *hw, const char *fn, uint32_t credit, uint32_t heartbeat_ms, uint64_t prev_session,
                 const char *prev_id, const rc_hw_ref_t *started, size_t n);

void rc_hw_heartbeat(rc_hw_t *hw);
void rc_hw_started(rc_hw_t *hw, const rc_hw_ref_t *t);
void rc_hw_result(rc_hw_t *hw, const rc_hw_ref_t *t, const char *data);
void rc_hw_hand_back(rc_hw_t *hw, const rc_hw_ref_t *tasks, size_t n, bool leaving);

/* Waits up to ms for dispatches, counting (and skipping) the other broker
 * messages meanwhile, and answering nothing; appends what came to out (at
 * most max in all, *n so far). Returns how many came. */
size_t rc_hw_take(rc_hw_t *hw, int ms, rc_hw_ref_t *out, size_t *n, size_t max);

/* Reads whatever the broker sent within ms, counting it; returns the number
 * of dispatches among it (not kept). */
size_t rc_hw_drain(rc_hw_t *hw, int ms);

#endif
