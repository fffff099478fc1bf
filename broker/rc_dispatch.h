/* rc_dispatch: handing tasks to workers — which peer gets which queued
 * task (idle ones first, then ones whose expected backlog stays within the
 * dispatch window), the credit slots that track what each peer holds, the
 * batches of dispatches sent together, the service time learned per
 * function, and the cancel notices pushed on the control channel. */
#ifndef RC_DISPATCH_H
#define RC_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "rc_peers.h"
#include "rc_record.h"

#define RC_MAX_BATCH   64         /* dispatches in one message, at most */
#define RC_BATCH_BYTES (64 << 10) /* a batch that would pass this goes out first */

/* Dispatches fn's queued tasks while some peer can take one. */
void rc_dispatch_fn(rc_core_t *core, rc_fn_t *fn);

/* Fills a peer's free credit with the oldest queued tasks it can run. */
void rc_dispatch_peer(rc_core_t *core, rc_peer_t *peer);

/* The ASSIGN action: takes a credit slot of peer for t (attempt + 1) and
 * sends the dispatch, or puts it in the peer's batch. -1 if the peer
 * refused it (gone, or its queue full): the slot is free again and the peer
 * gets nothing more until it speaks; the caller treats the attempt as lost. */
int rc_dispatch_assign(rc_core_t *core, rc_peer_t *peer, rc_task_t *t);

/* The slot of (ref, attempt) on peer, or NULL. */
rc_slot_t *rc_dispatch_slot_find(rc_peer_t *peer, const uint8_t ref[16], uint32_t attempt);

/* Frees a slot whose task the peer ended at now: ran (learns the
 * function's service time) or was stopped by a cancel (ran: whether it had
 * started). */
void rc_dispatch_slot_end(rc_core_t *core, rc_peer_t *peer, rc_slot_t *slot, bool cancelled, bool ran);

/* Empties every slot of a peer whose session is over (what waited in its
 * batch is not sent): each task still held goes back (retry) or fails. */
void rc_dispatch_release_all(rc_core_t *core, rc_peer_t *peer);

/* Empties one slot: its task's attempt is lost (retried or failed), or,
 * when the worker never started it, given back uncounted (hand_back). */
void rc_dispatch_slot_lost(rc_core_t *core, rc_peer_t *peer, rc_slot_t *slot);
void rc_dispatch_slot_hand_back(rc_core_t *core, rc_peer_t *peer, rc_slot_t *slot);

/* Sizes a peer's slots and batch for its Ready (all slots are free). 0 or -1. */
int rc_dispatch_setup(rc_peer_t *peer, uint32_t credit, uint32_t max_batch);

/* Frees what rc_dispatch_setup allocated. */
void rc_dispatch_teardown(rc_peer_t *peer);

/* Pushes a cancel notice for (ref, attempt) to peer, after the dispatch it
 * cancels if that still waits in the peer's batch. */
void rc_dispatch_notice(rc_core_t *core, rc_peer_t *peer, const uint8_t ref[16], uint32_t attempt, int reason);

/* Sends the batches waiting in peers (rc_core_flush); a refused batch hands
 * its tasks back (retry or fail). */
void rc_dispatch_flush(rc_core_t *core);

/* Forgets a peer's pending batch without sending it. */
void rc_dispatch_discard(rc_peer_t *peer);

#endif
