/* rc_broker: the refcache broker as an actor — one thread, one event loop,
 * owning every task, queue, timer and cached result. rc_broker_new() returns
 * once the sockets are bound (and the in-process workers, if any, have
 * announced themselves); rc_broker_destroy() stops the loop and frees all. */
#ifndef RC_BROKER_H
#define RC_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rc_broker rc_broker_t;

typedef struct {
    /* Endpoints to bind; "tcp://127.0.0.1:*" picks an ephemeral port (read
     * it back with rc_broker_endpoint). */
    const char *clients_endpoint; /* default tcp://127.0.0.1:5570 */
    const char *workers_endpoint; /* default tcp://127.0.0.1:5571 */
    const char *control_endpoint; /* default tcp://127.0.0.1:5572 */
    int workers;                  /* in-process worker threads over inproc; 0: none */
    int worker_credit;            /* credit of the in-process workers; 0: REFCACHE_DEFAULT_CREDIT (256) */
    uint32_t cancel_board_slots;  /* tests: entries of each in-process worker's cancel board (a power
                                     of two); 0: sized from the credit (rc_board.h) */
    uint32_t dispatch_window_us;  /* expected work a busy worker may hold; default 1000; 0: none */
    bool insecure;                /* allow binding a non-loopback address without CURVE */

    /* Limits and defaults (0 in a Submit means these). */
    uint32_t default_ttl_s;       /* terminal records kept; default 600 */
    uint32_t max_ttl_s;           /* cap on a Submit's ttl_s; default 86400 */
    uint32_t default_max_retries; /* default 0 */
    uint32_t inline_limit;        /* results up to this come inline; default 65536 */
    uint32_t preview_bytes;       /* preview of a larger result; default 1024 */
    uint32_t max_page;            /* largest Fetch page; default 1 MiB */
    uint64_t cache_bytes;         /* result bytes kept, LRU beyond; default 256 MiB */
    uint64_t max_records;         /* task records kept; default 2,000,000 */
    uint64_t max_pending;         /* PENDING tasks; RESOURCE_EXHAUSTED beyond; default 1,000,000 */
    uint64_t max_waiters;         /* held Submit/Wait replies; default 100,000 */
    uint32_t max_wait_ms;         /* cap on Wait/async timeouts; default 300,000 */
    int64_t max_msg_bytes;        /* ZMQ_MAXMSGSIZE on every socket; default 16 MiB */
    uint32_t heartbeat_ms;        /* broker->worker heartbeat; default 1000 */
    uint32_t liveness;            /* silent intervals before a worker is lost; default 5 */
    uint32_t retry_base_ms;       /* first retry back-off; default 100 */
    uint32_t retry_max_ms;        /* back-off cap; default 10,000 */
    uint32_t drain_timeout_ms;    /* a graceful stop waits this long for running tasks; default 5000 */
    /* A watcher that acknowledges nothing this long while its window is full
     * is dropped (END, RESOURCE_EXHAUSTED); default 60,000 (no flag: tests
     * shorten it). */
    uint32_t watch_stall_ms;

    /* The durable store (NULL, "" or "none": memory only). */
    const char *store_path;
    bool store_relaxed; /* a crash of the machine may lose the last second (docs/store.md) */

    /* CURVE (NULL: off). */
    const char *curve_secret_file;   /* the broker's secret certificate */
    const char *clients_allowed_dir; /* public certificates of allowed clients */
    const char *workers_allowed_dir; /* public certificates of allowed workers */
    const char *admin_allowed_dir;   /* public certificates of admin clients (see everything); NULL: none */
    const char *shared_namespaces;   /* comma-separated namespaces whose cache is shared across owners */
    bool verbose;                    /* log events to stderr (never on the hot path) */
} rc_broker_config_t;

/* What ZeroMQ itself enforces (ZMQ_MAXMSGSIZE) for max_msg_bytes: four
 * times it, at least 1 MiB more. A frame over max_msg_bytes is answered
 * (RESOURCE_EXHAUSTED, a worker's result failed) and the connection keeps
 * working; only a peer that sends a frame over this bound is disconnected,
 * as a defence. -1 (no bound) when max_msg_bytes is not positive. */
int64_t rc_broker_hard_limit(int64_t max_msg_bytes);

/* Fills config with the defaults above. */
void rc_broker_config_defaults(rc_broker_config_t *config);

/* Starts the broker thread; returns when it is ready, or NULL with a one-line
 * message in errbuf. */
rc_broker_t *rc_broker_new(const rc_broker_config_t *config, char *errbuf, size_t errlen);

/* RC_EP_CLIENTS_INPROC: the clients channel in this process, for a client
 * in another thread of it (the HTTP server); its connections carry no key. */
enum { RC_EP_CLIENTS, RC_EP_WORKERS, RC_EP_CONTROL, RC_EP_CLIENTS_INPROC };

/* The endpoint actually bound (ephemeral ports resolved), owned by the broker. */
const char *rc_broker_endpoint(rc_broker_t *self, int which);

/* A graceful stop (SIGTERM), in two steps. rc_broker_drain_start: new
 * Submits are refused UNAVAILABLE (every other request is answered as ever),
 * nothing more is dispatched, and every worker is told the broker stops
 * (BrokerMessage{stopping}): each gives back the tasks it holds and has not
 * started, and finishes its running one. rc_broker_drain_wait: waits up to
 * timeout_ms for the drain to end — nothing runs on a worker any more, or
 * drain_ms passed — and then gives how many tasks are still PROCESSING and
 * PENDING (what a store recovers at the next start); 1 then, 0 while it goes
 * on, -1 on error. rc_broker_destroy follows, which closes the store after
 * its last write (the replies it held go out). */
int rc_broker_drain_start(rc_broker_t *self, uint32_t drain_ms);
int rc_broker_drain_wait(rc_broker_t *self, int timeout_ms, int *processing, int *pending);

/* Reads the CURVE allow-list directories again (SIGHUP): keys added may
 * connect from now on, keys removed are refused at their next handshake and
 * on every request of a connection they already have (clients: answered
 * PERMISSION_DENIED; workers: their messages are ignored, so they are found
 * silent and lost after the liveness window). 0, or -1 with a message in err
 * (the lists in use stay as they were). */
int rc_broker_reload(rc_broker_t *self, char *err, size_t errlen);

/* Stops the broker (and its in-process workers) and frees everything;
 * accepts NULL and clears the caller's pointer. */
void rc_broker_destroy(rc_broker_t **self_p);

#endif
