/* rc_core: the broker's state, owned and touched by its one loop thread
 * only (no locks), and the entry points the loop (rc_broker.c) calls: a
 * message from each channel, the timer pass, the end of a drain. The rooms
 * that act on it:
 *
 *   rc_ops       client operations          rc_peers     the worker registry
 *   rc_runner    every state transition     rc_dispatch  credit, slots, batches
 *   rc_cache     records, cache, LRU, caps  rc_waiters   held replies and lanes
 *   rc_outbox    replies to clients         rc_handles   ref_ids on shared work
 *   rc_core.c    life cycle, clock, timers  rc_observe   List, Workers, Watch, Metrics (an observer)
 *
 * docs/architecture.md draws them and the path of a Submit and a Cancel. */
#ifndef RC_CORE_H
#define RC_CORE_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "rc_board.h"
#include "rc_broker.h"
#include "rc_cache.h"
#include "rc_codec.h"
#include "rc_dispatch.h"
#include "rc_handles.h"
#include "rc_idem.h"
#include "rc_journal.h"
#include "rc_list.h"
#include "rc_observe.h"
#include "rc_ops.h"
#include "rc_outbox.h"
#include "rc_peers.h"
#include "rc_record.h"
#include "rc_rejoin.h"
#include "rc_runner.h"
#include "rc_spare.h"
#include "rc_table.h"
#include "rc_task.h"
#include "rc_timer.h"
#include "rc_waiters.h"

#define RC_STR_(x) #x
#define RC_STR(x)  RC_STR_(x) /* a macro's value as a string literal */

/* What a timer in the heap belongs to. */
enum { T_RETRY = 1, T_TTL, T_DEADLINE, T_WAITER, T_WAIT_LANE, T_TICK, T_HDEADLINE, T_HTTL };

/* A function some worker announced: its queue of PENDING tasks. */
struct rc_fn {
    char *name;
    rc_list_t queue; /* PENDING tasks ready for dispatch, FIFO */
    size_t queued;
    bool cacheable; /* some worker declared it cacheable */
    bool svc_known;
    uint64_t svc_ns; /* service time per task: a moving average of 1/8 */
    struct rc_fnmetrics *metrics; /* rc_observe's histograms of it; NULL before its first task */
};

typedef struct {
    uint64_t submitted, completed, failed, cancelled, cache_hits, dedup, expired, evicted, retries,
        workers_lost, bad_requests, bad_worker_msgs, stale_msgs, dropped_replies, requests,
        resource_exhausted, deadline_exceeded, reannounces, handed_back;
} rc_counters_t;

struct rc_core {
    rc_broker_config_t cfg;
    void *clients, *workers, *control; /* raw libzmq sockets (ROUTER) */
    rc_timers_t *timers;
    rc_timer_t tick;
    rc_runner_t runner;
    /* rc_cache */
    rc_table_t *tasks; /* ref -> task */
    rc_table_t *index; /* cache key -> task (cacheable, not failed/cancelled) */
    rc_list_t lru;       /* terminal tasks, least recently used first */
    rc_list_t unsettled; /* finished in this message, to be shrunk */
    rc_list_t dead;      /* dropped in this message, to be freed */
    uint64_t cache_bytes;
    /* rc_handles */
    rc_table_t *handles;     /* ref -> extra handle */
    rc_table_t *handle_sets; /* task ref -> rc_handles_t, for tasks with F_HANDLES */
    rc_list_t dead_handles;  /* handles that went in this message, to be freed */
    /* rc_idem */
    rc_table_t *idem;      /* request_key digest -> rc_idem_t */
    rc_table_t *idem_refs; /* handle ref -> the same rc_idem_t */
    /* rc_journal: NULL without a store */
    rc_journal_t *journal;
    bool promise; /* the reply being sent promises a fact (held until durable) */
    uint64_t freed_since_trim; /* records freed since memory was last handed back */
    rc_spare_t spare_records;  /* freed active records, for reuse */
    uint8_t key_secret[16];
    /* rc_peers, rc_dispatch */
    zhashx_t *fns;      /* name -> rc_fn_t */
    zhashx_t *peer_ids; /* id -> rc_peer_t */
    rc_list_t peers;
    rc_list_t ghosts; /* lost peers whose tasks wait for their report (rc_rejoin) */
    rc_reannounced_t reannounced[RC_REANNOUNCE_SLOTS];
    rc_list_t to_flush; /* peers with dispatches waiting in their batch */
    uint64_t window_ns; /* cfg.dispatch_window_us */
    /* rc_waiters */
    rc_wait_lane_t lanes[RC_WAIT_LANES];
    rc_spare_t spare_waiters;
    uint64_t waiters;
    /* rc_outbox */
    rc_buf_t out; /* reused reply buffer */
    rc_outbox_t outbox[RC_OUTBOXES];
    unsigned n_outbox, outbox_turn; /* outbox[0..n_outbox) are open; the next to give up */
    /* rc_ops */
    uint64_t n_state[RC_STATE_COUNT];
    uint64_t next_seq, started_mono_us;
    uint8_t rand_pool[4096];
    size_t rand_left;
    rc_buf_t scratch; /* a batch entry re-encoded (rc_codec_request_next) */
    /* The message being handled (for replies). */
    const uint8_t *rid;
    size_t rid_len;
    bool envelope;
    bool batched;   /* it is an entry of a RequestBatch */
    uint64_t owner; /* owner of the request being handled */
    rc_clamp_t clamps[4]; /* the numbers of the request used clamped to a limit (rc_ops_clamp) */
    uint8_t n_clamps;
    char clamp_text[192]; /* what a reply's message says of its clamps */
    /* The clock, read once per message and per timer pass rather than at
     * every use: now_ns is monotonic, and wall time is now_ns plus
     * wall_off_us, re-read once per timer pass. */
    uint64_t now_ns;
    int64_t wall_off_us;
    rc_counters_t c;
    /* Stopping (SIGTERM): Submits are refused and nothing is dispatched
     * while the running tasks finish, until drain_until_us at the latest. */
    bool draining;
    uint64_t drain_until_us;
    /* CURVE: the public keys (Z85) allowed on each channel; NULL when off. */
    zhashx_t *client_keys, *worker_keys; /* key -> its certificate's name */
    zhashx_t *admin_keys;                /* among client_keys: those that see everything */
    zhashx_t *shared_ns; /* namespaces whose cache is shared across owners */
    /* The cancel boards of the in-process pool's threads (rc_board.h),
     * where a peer's is looked up when its Ready arrives; NULL without a
     * pool. */
    rc_board_registry_t *boards;
    rc_observe_t *observe;
};

/* Life cycle. */
int rc_core_init(rc_core_t *core, const rc_broker_config_t *cfg);
void rc_core_fini(rc_core_t *core);

/* One frame set from each channel (the first frame is the peer's routing
 * id). Each returns how many requests or worker messages the frame carried
 * (at least 1), which the loop counts against its budget per socket. */
int rc_core_client_msg(rc_core_t *core, zmq_msg_t *frames, int nframes);
int rc_core_worker_msg(rc_core_t *core, zmq_msg_t *frames, int nframes);
int rc_core_control_msg(rc_core_t *core, zmq_msg_t *frames, int nframes);

/* Runs every timer due at now; returns the next due time (or UINT64_MAX). */
uint64_t rc_core_timers(rc_core_t *core, uint64_t now_us);

/* Sends the dispatches waiting in peers' batches and the replies waiting
 * in outboxes: the loop calls it after draining a socket. */
void rc_core_flush(rc_core_t *core);

/* The function of that name, made known if it was not; NULL without memory. */
rc_fn_t *rc_core_fn(rc_core_t *core, const char *name);

/* The owner id of a CURVE public key (Z85): a keyed hash, never 0. */
uint64_t rc_core_owner_of(rc_core_t *core, const char *key);

/* Adjusts the per-state counts for t moving to state, and moves it. */
static inline void rc_core_set_state(rc_core_t *core, rc_task_t *t, int state)
{
    core->n_state[t->state]--;
    core->n_state[state]++;
    t->state = (uint8_t) state;
}

static inline uint64_t rc_core_mono_us(const rc_core_t *core)
{
    return core->now_ns / 1000;
}

static inline uint64_t rc_core_wall_us(const rc_core_t *core)
{
    return (uint64_t) ((int64_t) rc_core_mono_us(core) + core->wall_off_us);
}

/* Logs a broker event to stderr with --verbose: only events that are rare
 * by nature (workers joining and leaving, refused keys), never on the
 * per-message path. */
void rc_core_note(const rc_core_t *core, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
