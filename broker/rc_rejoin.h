/* rc_rejoin: workers that leave and come back without storms and without
 * spending attempts on tasks that never ran.
 *
 *  - Reannounce, the answer to a worker the broker does not know, goes at
 *    most once per heartbeat interval to each routing id: a worker cut off
 *    for a while has many messages queued, and each drew one.
 *  - A worker's Ready names its session (a number it picks whenever it
 *    forgets what it held). A Ready of the session the broker knows changes
 *    nothing of what the worker holds; a Ready of a new session that names
 *    the one it follows reports which tasks of that one the worker started:
 *    the others go back to the queue without counting an attempt (the
 *    hand_back event), the started ones are lost attempts.
 *  - A worker declared lost (silent for the liveness window) hands its
 *    tasks known to have started to worker_lost at once; those it may never
 *    have started stay with it, a ghost, for a grace period: its report,
 *    when it comes back, settles them; when the grace ends they are lost
 *    attempts too (a worker that never comes back may have started them).
 *  - A HandBack gives held tasks back (a worker stopping, or answering the
 *    broker's own stop); with `leaving` the worker is sent nothing more and
 *    forgotten once it holds nothing. */
#ifndef RC_REJOIN_H
#define RC_REJOIN_H

#include <stdbool.h>
#include <stdint.h>

#include "rc_codec.h"

typedef struct rc_core rc_core_t;
typedef struct rc_peer rc_peer_t;

/* Routing ids recently sent a Reannounce: a hash and when, in a small
 * table (a collision only delays one Reannounce by an interval). */
#define RC_REANNOUNCE_SLOTS 256
typedef struct {
    uint64_t hash, at_us;
} rc_reannounced_t;

/* Sends a Reannounce to routing id rid unless one went to it less than a
 * heartbeat interval ago. */
void rc_rejoin_reannounce(rc_core_t *core, const uint8_t *rid, size_t rid_len);

/* Declares peer lost (its liveness window passed): it leaves core->peers;
 * its tasks known to have started are lost attempts now, the others wait
 * with it (core->ghosts) for its report, or it is freed when none do. */
void rc_rejoin_lost(rc_core_t *core, rc_peer_t *peer);

/* The session part of a Ready from peer (before it takes its new
 * functions and credit): settles the session it names as its previous one
 * (on this peer or on the one of its previous routing id) from its report,
 * brings a ghost back, and otherwise hands back (as lost attempts) what a
 * new session forgot. A Ready of the session already known changes
 * nothing. */
void rc_rejoin_ready(rc_core_t *core, rc_peer_t *peer, const rc_wmsg_t *ready);

/* A HandBack from peer. */
void rc_rejoin_hand_back(rc_core_t *core, rc_peer_t *peer, const rc_wmsg_t *m);

/* The ghosts whose grace is over: what waited for them is lost attempts. */
void rc_rejoin_tick(rc_core_t *core, uint64_t now_us);

/* Frees every ghost (at shutdown). */
void rc_rejoin_free_all(rc_core_t *core);

#endif
