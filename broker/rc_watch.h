/* rc_watch: the live event stream. A client's Watch request makes it a
 * watcher: every applied transition that passes its filters (a ref_id, a
 * function, a namespace; under CURVE, its own tasks only unless its key is
 * an admin key) goes to it as an Event reply carrying the Watch's request
 * id, gathered per watcher and sent as one ReplyBatch frame when the loop
 * has drained a socket.
 *
 * A watcher never slows the broker and never holds memory beyond a bound:
 *
 *  - Flow control by acknowledgement: a watcher may have at most its window
 *    of events (RC_WATCH_WINDOW by default, RC_WATCH_WINDOW_MAX at most)
 *    sent and not yet acknowledged (a Watch request with watch_id and
 *    acked, which the client libraries send as they read), and all the
 *    watchers together at most RC_WATCH_IN_FLIGHT. An event beyond either
 *    is dropped and counted; the next event the watcher gets is preceded by
 *    a LOST marker saying how many it missed. A send the socket refuses
 *    (its queue full) loses its events the same way.
 *  - So what one watcher can hold is its window of events in the socket's
 *    queue and one batch being gathered (RC_WATCH_BATCH events), each event
 *    at most RC_WATCH_EVENT_MAX bytes; at most RC_WATCH_MAX watchers.
 *  - A watch ends when its client stops it (a Watch request with watch_id
 *    and stop: an END event follows on the stream, then the stop's own
 *    reply), when its connection is gone (a send to it is refused as
 *    unroutable; an idle watcher gets a HEARTBEAT event every
 *    RC_WATCH_IDLE_US, which finds that out), or when it has acknowledged
 *    nothing for the broker's watch_stall_ms (60 s) while its window was full (dropped as
 *    too slow, with an END event of code RESOURCE_EXHAUSTED if it can take
 *    one). Owned by the broker thread. */
#ifndef RC_WATCH_H
#define RC_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "rc_codec.h"
#include "rc_list.h"
#include "rc_runner.h"

typedef struct rc_core rc_core_t;

#define RC_WATCH_MAX        64
#define RC_WATCH_WINDOW     1024
#define RC_WATCH_WINDOW_MAX 4096
#define RC_WATCH_IN_FLIGHT  16384
#define RC_WATCH_BATCH      64
#define RC_WATCH_EVENT_MAX  1024 /* an Event's Reply: ids and names are bounded (RC_MAX_NAME, routing ids) */
#define RC_WATCH_IDLE_US    (5 * 1000000ull)

typedef struct {
    rc_list_t watchers;
    uint32_t n;
    uint64_t in_flight;     /* events sent and not acknowledged, all watchers */
    uint64_t events_total;  /* events sent */
    uint64_t lost_total;    /* events dropped */
    uint64_t dropped_total; /* watchers dropped as too slow */
    uint64_t last_probe_us; /* the last look for idle and stalled watchers */
    rc_buf_t ev;            /* the Event of the note at hand, encoded once */
    rc_buf_t aux;           /* a watcher's own event (WATCHING, LOST, HEARTBEAT, END) */
} rc_watch_t;

void rc_watch_init(rc_watch_t *self);

/* Frees every watcher (without telling them: the broker is stopping). */
void rc_watch_fini(rc_watch_t *self);

/* A Watch request (start, acknowledgement or stop) from the request being
 * handled (core->rid); admin: its requester sees every task. */
void rc_watch_request(rc_core_t *core, rc_watch_t *self, uint64_t id, const rc_watchreq_t *req, bool admin);

/* One applied transition, for the watchers that want it. client: who asked
 * (a CLIENT cause), or NULL. */
void rc_watch_note(rc_core_t *core, rc_watch_t *self, const rc_note_t *note, const char *client);

/* Sends what the watchers gathered; once in a while, probes idle watchers
 * and drops stalled ones. The end of every drain and timer pass. */
void rc_watch_flush(rc_core_t *core, rc_watch_t *self);

#endif
