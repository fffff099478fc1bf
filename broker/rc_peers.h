/* rc_peers: the worker registry — the broker's record of each worker
 * thread (rc_peer_t), keyed by the routing id it uses on both channels; its
 * Ready, ControlHello and heartbeats; the messages it sends about tasks,
 * turned into events for the runner; and declaring it lost. What a peer
 * holds (credit slots, its pending batch) is the dispatcher's (rc_dispatch). */
#ifndef RC_PEERS_H
#define RC_PEERS_H

#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "rc_board.h"
#include "rc_codec.h"
#include "rc_list.h"

typedef struct rc_core rc_core_t;
typedef struct rc_fn rc_fn_t;

#define RC_MAX_ROUTING_ID 255
#define RC_MAX_CREDIT     1024

/* A task a peer holds (running or queued on its side). */
typedef struct {
    uint8_t ref[16];
    uint32_t attempt;
    bool used;
    bool unposted; /* its cancel notice found the peer's board full (rc_board_miss) */
    rc_fn_t *fn;
    uint64_t est_ns; /* the function's service time when dispatched */
} rc_slot_t;

typedef struct rc_peer {
    char id[RC_MAX_ROUTING_ID + 1]; /* routing id on both channels (printable) */
    size_t id_len;
    bool ready, hello;
    bool refused; /* a send to it was refused: no dispatch until it speaks again */
    bool leaving; /* it said goodbye: it is sent nothing more and forgotten once it holds nothing */
    /* Declared lost but kept (in core->ghosts, not core->peers) while tasks
     * it may never have started wait for its report (rc_rejoin.h). */
    bool lost;
    bool unroutable;        /* the last heartbeat to it was refused: its connection is gone */
    uint64_t session;       /* the session of its last Ready (0: it does not say) */
    uint64_t lost_until_us; /* lost: when what waits for its report is given up as lost attempts */
    rc_fn_t **fns;
    size_t nfns;
    uint32_t credit, outstanding;
    rc_slot_t *slots;    /* credit of them */
    uint32_t slot_next;  /* where to look for a free slot first */
    uint32_t slot_done;  /* where to look for a finished task's slot first */
    uint64_t backlog_ns; /* expected work in what it holds: sum of est_ns */
    /* When the task it runs began, as far as the broker can tell: its
     * previous task's end, or the dispatch if it was idle. */
    uint64_t busy_since_ns;
    uint64_t last_seen_us;
    uint64_t quiet_us; /* silent longer than this (two of its heartbeats), it is sent no new task */
    /* The thread's cancel board when it is one of the broker's own pool
     * (found by its routing id when its Ready arrives), else NULL: cancel
     * notices are posted there before they are sent. */
    rc_board_t *board;
    /* What Workers shows besides: where it runs (from its Ready), since when
     * (its last Ready, monotonic), and how many tasks it ended (rc_observe). */
    char host[64];
    uint32_t pid;
    uint64_t joined_us, tasks_ended;
    uint32_t heartbeat_ms; /* how often it said it sends a Heartbeat when quiet (its Ready); 0: ours */
    rc_list_t link; /* core->peers, rotated for fairness; core->ghosts while lost */
    /* Dispatches to send together, when the worker takes batches
     * (max_batch > 1): their specs behind RC_BATCH_HEAD bytes of room for
     * the head, and the credit slots they fill. They go out when the loop
     * has drained a socket (rc_core_flush), when the batch is full, and
     * before a cancel notice to the worker. */
    uint32_t max_batch, batch_n;
    bool batch_refused;    /* the worker refused it: rc_core_flush hands its tasks back */
    uint32_t *batch_slots; /* credit of them */
    rc_buf_t batch;
    rc_list_t flush_link; /* in core->to_flush while batch_n > 0 */
} rc_peer_t;

/* One frame set from the work channel or the control channel; the first
 * frame is the peer's routing id. Each returns how many worker messages the
 * frame carried (at least 1), which the loop counts against its budget. */
int rc_peers_work_msg(rc_core_t *core, zmq_msg_t *frames, int nframes);
int rc_peers_control_msg(rc_core_t *core, zmq_msg_t *frames, int nframes);

/* Heartbeats out, and silent peers declared lost (once per interval). */
void rc_peers_tick(rc_core_t *core, uint64_t now_us);

/* Peers that can take tasks now (Ready and ControlHello seen), and how many
 * of them hold any. */
void rc_peers_count(rc_core_t *core, uint64_t *ready, uint64_t *busy);

/* Frees every peer (at shutdown; their tasks are gone already). */
void rc_peers_free_all(rc_core_t *core);

/* Forgets a peer at once: out of the registry and freed (its slots must be
 * empty, or their tasks already dealt with). */
void rc_peers_forget(rc_core_t *core, rc_peer_t *peer);

/* Tells every worker the broker is stopping (BrokerMessage{stopping}). */
void rc_peers_stopping(rc_core_t *core, uint32_t drain_ms);

#endif
