/* rc_broker: the actor that owns the broker's sockets and runs its loop.
 * The loop polls three ROUTER sockets and the actor pipe, drains each socket
 * in batches, and runs the timers that are due; the rooms of rc_core.h do
 * the rest. */
#include "rc_broker.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_board.h"
#include "rc_common.h"
#include "rc_core.h"
#include "rc_hsmon.h"
#include "rc_keys.h"
#include "rc_log.h"
#include "rc_pool.h"
#include "rc_zap.h"

#define RC_BATCH      256 /* requests or worker messages taken from one socket before looking at the others */
#define RC_MAX_FRAMES 4   /* frames kept of one message; more makes it malformed */

struct rc_broker {
    zactor_t *actor;
    zactor_t *auth; /* the ZAP handler (rc_zap), with CURVE */
    /* The allow-list directories, read again by rc_broker_reload. */
    char *clients_dir, *workers_dir, *admin_dir;
    refcache_pool_t *pool;
    /* The cancel boards of the in-process pool's threads: the loop posts,
     * each thread reads its own. Freed after both the pool and the loop. */
    rc_board_registry_t *boards;
    char endpoints[4][256];
};

typedef struct {
    const rc_broker_config_t *cfg;
    zcert_t *cert;       /* the broker's certificate, with CURVE */
    rc_keys_t keys;      /* the allow-lists, handed to the loop */
    zhashx_t *shared_ns; /* handed to the loop */
    char work_inproc[64], control_inproc[64], clients_inproc[64];
    rc_board_registry_t *boards;
    char endpoints[4][256];
    char err[256];
} start_args_t;

int64_t rc_broker_hard_limit(int64_t max_msg_bytes)
{
    if (max_msg_bytes <= 0)
        return -1;
    int64_t four = max_msg_bytes > INT64_MAX / 4 ? INT64_MAX : max_msg_bytes * 4;
    return four - max_msg_bytes < (1 << 20) ? max_msg_bytes + (1 << 20) : four;
}

void rc_broker_config_defaults(rc_broker_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->clients_endpoint = "tcp://127.0.0.1:5570";
    c->workers_endpoint = "tcp://127.0.0.1:5571";
    c->control_endpoint = "tcp://127.0.0.1:5572";
    c->default_ttl_s = 600;
    c->max_ttl_s = 86400;
    c->inline_limit = 64 * 1024;
    c->preview_bytes = 1024;
    c->max_page = 1024 * 1024;
    c->cache_bytes = 256ull * 1024 * 1024;
    c->max_records = 2000000;
    c->max_pending = 1000000;
    c->max_waiters = 100000;
    c->max_wait_ms = 300000;
    c->dispatch_window_us = 1000;
    c->max_msg_bytes = 16 * 1024 * 1024;
    c->heartbeat_ms = 1000;
    c->liveness = 5;
    c->retry_base_ms = 100;
    c->retry_max_ms = 10000;
    c->drain_timeout_ms = 5000;
    c->watch_stall_ms = 60000;
}

/* True for endpoints that only this machine can reach. */
static bool endpoint_is_local(const char *ep)
{
    if (strncmp(ep, "inproc://", 9) == 0 || strncmp(ep, "ipc://", 6) == 0)
        return true;
    if (strncmp(ep, "tcp://", 6) != 0)
        return false;
    const char *host = ep + 6;
    return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost:", 10) == 0 ||
           strncmp(host, "[::1]:", 6) == 0;
}

static zsock_t *router(const start_args_t *args, const char *zap_domain, int sndhwm, int rcvhwm)
{
    const rc_broker_config_t *cfg = args->cfg;
    zsock_t *s = zsock_new(ZMQ_ROUTER);
    if (!s)
        return NULL;
    if (args->cert) {
        /* TCP peers must complete a CURVE handshake with a key the ZAP
         * handler allows; inproc peers (the in-process pool) skip it. */
        zcert_apply(args->cert, s);
        zsock_set_curve_server(s, 1);
        zsock_set_zap_domain(s, zap_domain);
    }
    /* Refuse, rather than silently drop, what cannot be delivered; the
     * handlers count every refusal. */
    zsock_set_router_mandatory(s, 1);
    zsock_set_sndhwm(s, sndhwm);
    zsock_set_rcvhwm(s, rcvhwm);
    zsock_set_linger(s, 0);
    zsock_set_maxmsgsize(s, rc_broker_hard_limit(cfg->max_msg_bytes));
    return s;
}

static int bind_to(zsock_t *s, const char *ep, char *resolved, size_t len, char *err, size_t errlen)
{
    if (zsock_bind(s, "%s", ep) < 0) {
        snprintf(err, errlen, "cannot bind %s: %s", ep, zmq_strerror(zmq_errno()));
        return -1;
    }
    if (resolved) {
        char *last = zsock_last_endpoint(s);
        snprintf(resolved, len, "%s", last ? last : ep);
        zstr_free(&last);
    }
    return 0;
}

/* Receives one whole message without blocking. Returns its frame count (the
 * first RC_MAX_FRAMES frames are kept in frames), or 0 if nothing waits. */
static int recv_frames(void *sock, zmq_msg_t *frames)
{
    int count = 0;
    int more = 1;
    while (more) {
        zmq_msg_t scratch, *m = count < RC_MAX_FRAMES ? &frames[count] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, count ? 0 : ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            break;
        }
        more = zmq_msg_more(m);
        if (m == &scratch)
            zmq_msg_close(m);
        count++;
    }
    return count;
}

static void close_frames(zmq_msg_t *frames, int count)
{
    for (int i = 0; i < count && i < RC_MAX_FRAMES; i++)
        zmq_msg_close(&frames[i]);
}

typedef int(handler_fn)(rc_core_t *, zmq_msg_t *, int);

/* Handles what waits on sock (about RC_BATCH requests or worker messages,
 * however many frames carry them), then sends the dispatches and replies
 * they made in batches. */
static void drain(rc_core_t *core, void *sock, handler_fn *handle)
{
    zmq_msg_t frames[RC_MAX_FRAMES];
    for (int done = 0; done < RC_BATCH;) {
        int n = recv_frames(sock, frames);
        if (n == 0)
            break;
        done += handle(core, frames, n);
        close_frames(frames, n);
    }
    rc_core_flush(core);
}

/* A command on the actor pipe ($TERM, WORKERS, DRAIN ms, KEYS keys); false
 * for $TERM (or a pipe gone). */
static bool command(rc_core_t *core, zsock_t *pipe, bool *drain_asked)
{
    char *cmd = NULL, *arg = NULL;
    void *ptr = NULL;
    if (zsock_recv(pipe, "ssp", &cmd, &arg, &ptr) != 0 || !cmd || streq(cmd, "$TERM")) {
        zstr_free(&cmd);
        zstr_free(&arg);
        return false;
    }
    if (streq(cmd, "WORKERS")) {
        /* How many workers can take work: rc_broker_new waits for its
         * in-process pool with this. */
        int ready = 0;
        for (rc_list_t *n = core->peers.next; n != &core->peers; n = n->next) {
            rc_peer_t *w = rc_container_of(n, rc_peer_t, link);
            ready += w->ready && w->hello;
        }
        zsock_send(pipe, "i", ready);
    } else if (streq(cmd, "DRAIN") && arg) {
        /* Stop accepting, dispatch nothing more, tell the workers (they
         * give back what they hold), and answer once nothing runs. */
        uint32_t ms = (uint32_t) strtoul(arg, NULL, 10);
        core->draining = true;
        core->drain_until_us = rc_mono_us() + (uint64_t) ms * 1000;
        rc_peers_stopping(core, ms);
        rc_core_flush(core);
        *drain_asked = true;
    } else if (streq(cmd, "KEYS") && ptr) {
        rc_keys_t *k = ptr;
        rc_log(RC_LOG_INFO, "security",
               "allow-lists reloaded: %zu client, %zu worker, %zu admin key(s) (were %zu, %zu, %zu)",
               zhashx_size(k->client), zhashx_size(k->worker), k->admin ? zhashx_size(k->admin) : 0,
               core->client_keys ? zhashx_size(core->client_keys) : 0,
               core->worker_keys ? zhashx_size(core->worker_keys) : 0,
               core->admin_keys ? zhashx_size(core->admin_keys) : 0);
        zhashx_destroy(&core->client_keys);
        zhashx_destroy(&core->worker_keys);
        zhashx_destroy(&core->admin_keys);
        core->client_keys = k->client;
        core->worker_keys = k->worker;
        core->admin_keys = k->admin;
        free(k);
        rc_observe_keys_changed(core);
        zsock_signal(pipe, 0);
    }
    zstr_free(&cmd);
    zstr_free(&arg);
    return true;
}

static void broker_actor(zsock_t *pipe, void *arg)
{
    start_args_t *args = arg;
    const rc_broker_config_t *cfg = args->cfg;
    rc_core_t core;
    zsock_t *clients = router(args, "refcache-clients", 200000, 200000);
    zsock_t *workers = router(args, "refcache-workers", 100000, 100000);
    zsock_t *control = router(args, "refcache-workers", 100000, 1000);
    int rc = rc_core_init(&core, cfg);
    /* The loop owns the key sets from here on. */
    core.client_keys = args->keys.client;
    core.worker_keys = args->keys.worker;
    core.admin_keys = args->keys.admin;
    core.shared_ns = args->shared_ns;
    core.boards = args->boards;
    args->keys = (rc_keys_t){0};
    args->shared_ns = NULL;
    if (rc != 0 || !clients || !workers || !control)
        snprintf(args->err, sizeof args->err, "out of memory starting the broker");
    else if (rc_journal_open(&core, args->err, sizeof args->err) != 0)
        rc = -1; /* the store first: nothing is served before its state is back */
    else if (bind_to(clients, cfg->clients_endpoint, args->endpoints[RC_EP_CLIENTS], 256, args->err, 256) !=
                 0 ||
             bind_to(workers, cfg->workers_endpoint, args->endpoints[RC_EP_WORKERS], 256, args->err, 256) !=
                 0 ||
             bind_to(control, cfg->control_endpoint, args->endpoints[RC_EP_CONTROL], 256, args->err, 256) !=
                 0 ||
             bind_to(workers, args->work_inproc, NULL, 0, args->err, 256) != 0 ||
             bind_to(clients, args->clients_inproc, NULL, 0, args->err, 256) != 0 ||
             bind_to(control, args->control_inproc, NULL, 0, args->err, 256) != 0)
        rc = -1;
    if (args->err[0]) {
        zsock_destroy(&clients);
        zsock_destroy(&workers);
        zsock_destroy(&control);
        rc_journal_close(&core);
        rc_core_fini(&core);
        zsock_signal(pipe, 1);
        return;
    }
    core.clients = zsock_resolve(clients);
    core.workers = zsock_resolve(workers);
    core.control = zsock_resolve(control);
    rc_hsmon_t *hsmon = rc_hsmon_start(core.clients, core.workers, core.control);
    zsock_signal(pipe, 0);

    zmq_pollitem_t items[] = {
        {zsock_resolve(pipe), 0, ZMQ_POLLIN, 0},
        {core.workers, 0, ZMQ_POLLIN, 0},
        {core.control, 0, ZMQ_POLLIN, 0},
        {core.clients, 0, ZMQ_POLLIN, 0},
        {NULL, rc_journal_fd(&core), ZMQ_POLLIN, 0}, /* the store's durable mark moved */
    };
    int n_items = rc_journal_fd(&core) >= 0 ? 5 : 4;
    bool running = true, drain_asked = false;
    while (running) {
        uint64_t now = rc_mono_us();
        uint64_t next = rc_core_timers(&core, now);
        if (drain_asked && core.drain_until_us < next)
            next = core.drain_until_us;
        long timeout = -1;
        if (next != UINT64_MAX) {
            now = rc_mono_us();
            timeout = next <= now ? 0 : (long) ((next - now + 999) / 1000);
        }
        if (zmq_poll(items, n_items, timeout) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            running = command(&core, pipe, &drain_asked);
        /* Worker traffic first: results free credit that queued work needs. */
        if (items[1].revents & ZMQ_POLLIN)
            drain(&core, core.workers, rc_core_worker_msg);
        if (items[2].revents & ZMQ_POLLIN)
            drain(&core, core.control, rc_core_control_msg);
        if (items[3].revents & ZMQ_POLLIN)
            drain(&core, core.clients, rc_core_client_msg);
        if (n_items == 5 && items[4].revents & ZMQ_POLLIN) {
            rc_journal_durable(&core);
            rc_outbox_flush_all(&core);
        }
        /* Stopping: done once nothing runs on a worker, or at the deadline. */
        if (drain_asked && (!core.n_state[RC_PROCESSING] || rc_mono_us() >= core.drain_until_us)) {
            zsock_send(pipe, "ii", (int) core.n_state[RC_PROCESSING], (int) core.n_state[RC_PENDING]);
            drain_asked = false;
        }
    }
    /* The replies the store held go out once it is closed: let them leave. */
    if (core.draining)
        zsock_set_linger(clients, 1000);
    rc_hsmon_stop(&hsmon, core.clients, core.workers, core.control);
    rc_journal_close(&core);
    rc_core_fini(&core);
    zsock_destroy(&clients);
    zsock_destroy(&workers);
    zsock_destroy(&control);
}

static int setup_curve(rc_broker_t *self, const rc_broker_config_t *c, start_args_t *args, char *err,
                       size_t errlen)
{
    if (!zsys_has_curve()) {
        snprintf(err, errlen, "this libzmq has no CURVE support");
        return -1;
    }
    if (!c->clients_allowed_dir || !c->workers_allowed_dir) {
        snprintf(err, errlen, "CURVE needs --clients-allowed DIR and --workers-allowed DIR");
        return -1;
    }
    args->cert = rc_keys_secret_cert(c->curve_secret_file);
    if (!args->cert) {
        snprintf(
            err, errlen,
            "cannot load the broker's secret certificate from %s (write one with 'refcache keygen PATH')",
            c->curve_secret_file);
        return -1;
    }
    if (rc_keys_load(&args->keys, c->clients_allowed_dir, c->workers_allowed_dir, c->admin_allowed_dir, err,
                     errlen) != 0)
        return -1;
    self->clients_dir = strdup(c->clients_allowed_dir);
    self->workers_dir = strdup(c->workers_allowed_dir);
    self->admin_dir = c->admin_allowed_dir ? strdup(c->admin_allowed_dir) : NULL;
    if (!self->clients_dir || !self->workers_dir || (c->admin_allowed_dir && !self->admin_dir)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    zhashx_t *sets[] = {args->keys.client, args->keys.worker};
    self->auth = rc_zap_new(sets, 2);
    if (!self->auth) {
        snprintf(err, errlen, "cannot start the ZAP handler");
        return -1;
    }
    return 0;
}

static zhashx_t *parse_set(const char *list)
{
    zhashx_t *set = zhashx_new();
    if (!set || !list)
        return set;
    char *copy = strdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (*tok)
            zhashx_insert(set, tok, (void *) "");
    free(copy);
    return set;
}

static void free_args(start_args_t *args)
{
    zcert_destroy(&args->cert);
    rc_keys_free(&args->keys);
    zhashx_destroy(&args->shared_ns);
    free(args);
}

static int wait_for_workers(zactor_t *actor, int want)
{
    int64_t until = zclock_mono() + 10000;
    while (zclock_mono() < until) {
        zstr_send(actor, "WORKERS");
        int ready = 0;
        if (zsock_recv(actor, "i", &ready) != 0)
            return -1;
        if (ready >= want)
            return 0;
        zclock_sleep(2);
    }
    return -1;
}

rc_broker_t *rc_broker_new(const rc_broker_config_t *config, char *errbuf, size_t errlen)
{
    static int instance;
    const char *eps[] = {config->clients_endpoint, config->workers_endpoint, config->control_endpoint};
    bool curve = config->curve_secret_file != NULL;
    if (!curve && (config->clients_allowed_dir || config->workers_allowed_dir)) {
        /* Without CURVE no key is checked: the lists would only look like security. */
        snprintf(
            errbuf, errlen,
            "--clients-allowed and --workers-allowed need --curve-secret: without CURVE no key is checked");
        return NULL;
    }
    for (int i = 0; i < 3; i++) {
        if (!eps[i] || !*eps[i]) {
            snprintf(errbuf, errlen, "an endpoint is missing");
            return NULL;
        }
        if (!endpoint_is_local(eps[i]) && !curve && !config->insecure) {
            snprintf(errbuf, errlen,
                     "refusing to bind %s without CURVE: it is reachable from other machines "
                     "(use --curve-secret, or --insecure to accept that)",
                     eps[i]);
            return NULL;
        }
    }
    rc_broker_t *self = calloc(1, sizeof *self);
    start_args_t *args = calloc(1, sizeof *args);
    if (!self || !args) {
        free(self);
        free(args);
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    args->cfg = config;
    args->shared_ns = parse_set(config->shared_namespaces);
    if (curve && setup_curve(self, config, args, errbuf, errlen) != 0) {
        free_args(args);
        rc_broker_destroy(&self);
        return NULL;
    }
    int id = __atomic_add_fetch(&instance, 1, __ATOMIC_RELAXED);
    snprintf(args->work_inproc, sizeof args->work_inproc, "inproc://refcache-work-%d", id);
    snprintf(args->clients_inproc, sizeof args->clients_inproc, "inproc://refcache-clients-%d", id);
    snprintf(args->endpoints[RC_EP_CLIENTS_INPROC], sizeof args->endpoints[0], "%s", args->clients_inproc);
    snprintf(args->control_inproc, sizeof args->control_inproc, "inproc://refcache-control-%d", id);
    if (config->workers > 0) {
        self->boards = rc_board_registry_new(config->cancel_board_slots);
        if (!self->boards) {
            snprintf(errbuf, errlen, "cannot make cancel boards of %u entries (a power of two is needed)",
                     config->cancel_board_slots);
            free_args(args);
            rc_broker_destroy(&self);
            return NULL;
        }
    }
    args->boards = self->boards;
    self->actor = zactor_new(broker_actor, args);
    if (!self->actor || args->err[0]) {
        snprintf(errbuf, errlen, "%s", args->err[0] ? args->err : "cannot start the broker thread");
        free_args(args);
        rc_broker_destroy(&self);
        return NULL;
    }
    memcpy(self->endpoints, args->endpoints, sizeof self->endpoints);
    if (config->workers > 0) {
        refcache_pool_config_t pc = {
            .work_endpoint = args->work_inproc,
            .control_endpoint = args->control_inproc,
            .threads = config->workers,
            .credit = config->worker_credit,
            .heartbeat_ms = (int) config->heartbeat_ms,
            .liveness = (int) config->liveness,
            /* Leave room for the envelope under the broker's message limit. */
            .max_result_bytes =
                config->max_msg_bytes > (128 << 10) ? (size_t) config->max_msg_bytes - (64 << 10) : 0,
        };
        self->pool = rc_pool_new(&pc, self->boards, errbuf, errlen);
        if (!self->pool || wait_for_workers(self->actor, config->workers) != 0) {
            if (self->pool)
                snprintf(errbuf, errlen, "the in-process workers did not announce themselves");
            rc_broker_destroy(&self);
            free_args(args);
            return NULL;
        }
    }
    free_args(args);
    return self;
}

int rc_broker_drain_start(rc_broker_t *self, uint32_t drain_ms)
{
    char ms[16];
    snprintf(ms, sizeof ms, "%u", drain_ms);
    return self && zsock_send(self->actor, "ssp", "DRAIN", ms, NULL) == 0 ? 0 : -1;
}

int rc_broker_drain_wait(rc_broker_t *self, int timeout_ms, int *processing, int *pending)
{
    zmq_pollitem_t it = {zsock_resolve(self->actor), 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return 0;
    int a = 0, b = 0;
    if (zsock_recv(self->actor, "ii", &a, &b) != 0)
        return -1;
    if (processing)
        *processing = a;
    if (pending)
        *pending = b;
    return 1;
}

int rc_broker_reload(rc_broker_t *self, char *err, size_t errlen)
{
    if (!self || !self->auth) {
        snprintf(err, errlen, "no allow-lists to reload: the broker runs without CURVE");
        return -1;
    }
    rc_keys_t *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (rc_keys_load(k, self->clients_dir, self->workers_dir, self->admin_dir, err, errlen) != 0) {
        free(k);
        return -1;
    }
    /* New handshakes first, then the loop's per-message checks. */
    zhashx_t *sets[] = {k->client, k->worker};
    if (rc_zap_set_keys(self->auth, sets, 2) != 0 || zsock_send(self->actor, "ssp", "KEYS", "", k) != 0) {
        snprintf(err, errlen, "cannot hand the new allow-lists over");
        rc_keys_free(k);
        free(k);
        return -1;
    }
    zsock_wait(self->actor); /* the loop has taken k */
    return 0;
}

const char *rc_broker_endpoint(rc_broker_t *self, int which)
{
    if (!self || which < 0 || which > RC_EP_CLIENTS_INPROC)
        return NULL;
    return self->endpoints[which];
}

void rc_broker_destroy(rc_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rc_broker_t *self = *self_p;
    /* Workers first, so none is cut off mid-message by the broker's exit. */
    refcache_pool_destroy(&self->pool);
    zactor_destroy(&self->actor);
    rc_board_registry_destroy(&self->boards);
    zactor_destroy(&self->auth);
    free(self->clients_dir);
    free(self->workers_dir);
    free(self->admin_dir);
    free(self);
    *self_p = NULL;
}
