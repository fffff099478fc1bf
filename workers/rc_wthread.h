/* rc_wthread: what the worker library's modules share about one worker
 * thread — its state (rc_wthread_t), a job's (struct refcache_job), a held
 * task, the pool's read-only configuration (struct refcache_pool) and the
 * tunables. Internal: not part of the public worker API.
 *
 * Each worker thread is a CZMQ actor that owns two DEALER sockets with the
 * same routing id (its worker id): one on the work channel, one on the
 * control channel (docs/protocol.md, "Workers"). The thread runs one task at
 * a time and holds up to `credit` dispatched tasks in a local FIFO. Nothing
 * is shared between threads except the read-only pool configuration and, in
 * the broker's own pool, each thread's cancel board (rc_board: a lock-free
 * ring the broker writes and the thread reads), so there are no locks. The
 * modules: rc_wsend (what goes to the broker, results sent together),
 * rc_wrecv (what comes from it: arenas, held tasks, dispatches and cancel
 * notices, from the socket or the board), rc_wpoll (waiting for sockets,
 * connecting, timers), rc_job.c (the job API) and rc_pool.c (the thread's
 * loop and the pool). */
#ifndef RC_WTHREAD_H
#define RC_WTHREAD_H

#include <czmq.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc_arena.h"
#include "rc_board.h"
#include "rc_buf.h"
#include "rc_common.h"
#include "rc_worker_codec.h"
#include "refcache_worker.h"

typedef Refcache__V1__BrokerMessage broker_msg_t;
typedef Refcache__V1__WorkerMessage worker_msg_t;

/* High-water marks: the broker never sends more than the credit plus a few
 * heartbeats, and the worker sends a bounded stream of progress; 1000 only
 * matters while disconnected, where it bounds what queues up. */
#define WORKER_HWM 1000
/* A send that cannot proceed this long (queue full while the broker is
 * away) is dropped: the broker will declare the worker lost and retry. */
#define WORKER_SNDTIMEO_MS          1000
#define WORKER_RECONNECT_IVL_MS     100
#define WORKER_RECONNECT_IVL_MAX_MS 2000
/* Cancel notices for tasks not (yet) held: a notice travels on the control
 * connection and can overtake the dispatch it cancels on the work
 * connection, so remember the last few and drop such a dispatch on arrival. */
#define WORKER_TOMBSTONES 32
/* Progress messages are rate-limited to one per this interval (plus the
 * final one), so a job that steps quickly cannot flood the broker. */
#define PROGRESS_MIN_INTERVAL_US 5000
/* Messages handled per socket per poll, so one socket cannot starve another. */
#define DRAIN_BATCH 64
/* While tasks keep the thread busy, look at the pipe and the timers (and
 * drain the work socket) when this long has passed since the last look:
 * looking costs system calls, and a stop request or a heartbeat can wait
 * this long. The control socket is looked at before every held task
 * instead, unless the thread has a cancel board (the notice is then on the
 * board): looking at it on a timer would add nothing but hide a broker that
 * forgot to post. */
#define INPUT_CHECK_US 1000
#define MAX_THREADS    1024
/* Results sent together, at most; and the most a batch's first waits. */
#define RESULTS_MAX     64
#define RESULTS_BYTES   (64 << 10)
#define RESULTS_WAIT_US 50
#define MAX_CREDIT      1024

typedef struct rc_wthread rc_wthread_t;

/* Received messages are unpacked into per-message arenas (rc_arena) that
 * are reused, so the hot path does not call malloc for every field of every
 * message. An arena lives as long as its message: a held task keeps it, and
 * the tasks of one DispatchBatch share it (its users count them). At most
 * credit + 2 are ever in use. What does not fit goes to malloc. */
#define ARENA_BYTES 4096

struct refcache_job {
    rc_wthread_t *worker;
    const Refcache__V1__Dispatch *dispatch;
    bool cancelled;    /* a cancel notice for this (ref_id, attempt) arrived */
    bool disowned;     /* the broker no longer counts this task as ours: say nothing of it */
    bool started_sent; /* Started went out (at the job's first step boundary) */
    bool has_result;
    bool has_failure;
    bool retryable;
    int fail_code;
    const void *result; /* into the payload, the worker's buffer or `owned` */
    size_t result_len;
    void *owned; /* a buffer given with refcache_job_result_take */
    uint64_t last_progress_us;
};

typedef struct {
    char ref_id[RC_REF_ID_LEN * 2 + 1];
    uint32_t attempt;
    bool used;
} tombstone_t;

/* One attempt of a task, as a worker's session report names it. */
typedef struct {
    char ref_id[RC_REF_ID_LEN + 1];
    uint32_t attempt;
} rc_wtaskref_t;

/* A held task: its Dispatch, and the message it came in (shared by the
 * tasks of a DispatchBatch). */
typedef struct {
    broker_msg_t *msg;
    const Refcache__V1__Dispatch *d;
} held_t;

struct rc_wthread {
    refcache_pool_t *pool;
    int index;
    char id[48];         /* routing id of the current connections */
    unsigned generation; /* reconnections so far */
    zactor_t *actor;
    /* Set by the thread before it signals the constructor. */
    atomic_int setup_rc;
    char setup_err[256];

    /* Everything below belongs to the worker thread. */
    zsock_t *pipe;
    zsock_t *work;
    zsock_t *control;
    void *pipe_h;
    void *work_h;
    void *control_h;
    /* Each socket's ZMQ_FD, and whether the socket is armed: a receive found
     * it empty and nothing has touched it since, so its descriptor becomes
     * readable when something new arrives ("waiting", below). */
    int pipe_fd, work_fd, control_fd;
    bool pipe_armed, work_armed, control_armed;
    zmq_msg_t in; /* reused for every received frame */
    rc_arena_list_t free_arenas;

    held_t *held; /* ring of held dispatches, capacity = credit */
    size_t held_head;
    size_t held_count;
    tombstone_t tombs[WORKER_TOMBSTONES];
    size_t tomb_next;
    /* The cancel board (broker's own pool only; NULL otherwise), and the
     * notices taken from it whose copy on the control socket has not come
     * yet (a FIFO ring as large as the board: that copy then finds nothing
     * to do, and leaves no tombstone). */
    rc_board_t *board;
    rc_board_entry_t *echoes;
    size_t echo_mask, echo_head, echo_tail;

    uint64_t last_sent_us;
    uint64_t last_heard_us;
    /* The session with the broker (rc_wsession.h): its number, the tasks it
     * started (the last credit + 1, a ring), and the report of the session
     * before it, which every Ready of this one carries. */
    uint64_t session, prev_session;
    char prev_id[48];
    rc_wtaskref_t *starts, *report; /* credit + 1 each */
    size_t starts_head, starts_n, report_n;
    Refcache__V1__TaskRef *report_pb, **report_ptrs; /* the report as Ready's previous_started */
    bool unconfirmed;      /* a Ready went out and the broker has sent nothing else since */
    uint64_t announced_us; /* when */
    bool broker_stopping;  /* the broker is stopping: held tasks go back to it, none starts */
    bool leaving;          /* this thread stops: it said goodbye, and finishes its running job */
    uint64_t stop_at_us;   /* leaving: when the running job is told to stop */
    bool terminating;
    bool silent_too_long;  /* we sent nothing for the broker's whole liveness window */
    uint64_t last_look_us; /* when the sockets were last polled */
    refcache_job_t *job;   /* the running job, or NULL */

    uint8_t *result_buf; /* reused for copied results */
    size_t result_cap;
    /* Results to send together (docs/protocol.md, "Batches"): ResultBatch
     * entries behind RC_WORKER_RESULTS_HEAD bytes of room for the head. They
     * go out before the worker waits, before any other message, when
     * RESULTS_MAX or RESULTS_BYTES is reached, and once the first has waited
     * RESULTS_WAIT_US (checked after each task and at step boundaries). */
    rc_buf_t results;
    unsigned results_n;
    uint64_t results_since_us;
    char fail_msg[1024];
};

struct refcache_pool {
    char *work_endpoint;
    char *control_endpoint;
    int threads;
    int credit;
    int heartbeat_ms;
    int liveness;
    int drain_ms; /* a stopping thread lets its running job go on this long */
    size_t max_result_bytes;
    refcache_function_t *functions; /* names duplicated */
    size_t function_count;
    char **function_names;  /* for Ready */
    char **cacheable_names; /* for Ready */
    size_t cacheable_count;
    zcert_t *cert;      /* CURVE: this worker's certificate, or NULL */
    char *server_key;   /* CURVE: the broker's public key (Z85) */
    char id_prefix[17]; /* random, shared by the pool's worker ids */
    rc_wthread_t **workers;
    int started;
    atomic_uint_fast64_t tasks_done;
    rc_board_registry_t *boards;          /* the broker's, for its own pool; or NULL */
    zactor_t *monitor;                    /* rc_wmon: its connections in the log (TCP only), or NULL */
    atomic_uint_fast64_t silence_said_us; /* when a reconnection for a silent broker was last logged */
};

#endif
