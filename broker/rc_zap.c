/* rc_zap: the broker's ZAP handler — who may complete a CURVE handshake,
 * and a log line for each one refused (see rc_zap.h). ZAP (ZeroMQ RFC 27):
 * libzmq asks, on inproc://zeromq.zap.01, with [version, request id,
 * domain, address, routing id, mechanism, credentials...]; the answer is
 * [version, request id, status code, status text, user id, metadata]. */
#include "rc_zap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_common.h"
#include "rc_log.h"

#define ZAP_ENDPOINT    "inproc://zeromq.zap.01"
#define REPEAT_EVERY_US (60 * 1000000ull) /* a refused key is logged again at most this often */
#define REMEMBERED_MAX  1024              /* refused keys remembered for that */

typedef struct {
    zhashx_t *keys;    /* Z85 -> its certificate's name (owned) */
    zhashx_t *refused; /* Z85 -> refusal_t: when last logged, refused since */
} zap_t;

typedef struct {
    uint64_t logged_us, since;
} refusal_t;

static const char *channel(const char *domain)
{
    return strcmp(domain, "refcache-clients") == 0 ? "clients" : "worker";
}

/* Logs a refusal; a key (or, without one, an address) refused again and
 * again is said once a minute, with how many times. */
static void log_refused(zap_t *z, const char *who, const char *what, const char *address, const char *domain)
{
    uint64_t now = rc_mono_us();
    refusal_t *r = zhashx_lookup(z->refused, who);
    if (!r) {
        if (zhashx_size(z->refused) >= REMEMBERED_MAX)
            zhashx_purge(z->refused);
        r = calloc(1, sizeof *r);
        if (!r)
            return;
        zhashx_insert(z->refused, who, r);
    } else if (now - r->logged_us < REPEAT_EVERY_US) {
        r->since++;
        return;
    }
    if (r->since)
        rc_log(RC_LOG_WARN, "security",
               "refused %s from %s on the %s channels (and %llu times more in the last minute)", what,
               address, channel(domain), (unsigned long long) r->since);
    else
        rc_log(RC_LOG_WARN, "security", "refused %s from %s on the %s channels", what, address,
               channel(domain));
    r->logged_us = now;
    r->since = 0;
}

static void answer(zsock_t *sock, zmsg_t *req, const char *code, const char *text, const char *user)
{
    zmsg_t *rep = zmsg_new();
    zframe_t *version = zmsg_pop(req), *id = zmsg_pop(req);
    if (!rep || !version || !id) {
        zframe_destroy(&version);
        zframe_destroy(&id);
        zmsg_destroy(&rep);
        return;
    }
    zmsg_append(rep, &version);
    zmsg_append(rep, &id);
    zmsg_addstr(rep, code);
    zmsg_addstr(rep, text);
    zmsg_addstr(rep, user);
    zmsg_addmem(rep, "", 0);
    zmsg_send(&rep, sock);
}

static void handle(zap_t *z, zsock_t *sock)
{
    zmsg_t *req = zmsg_recv(sock);
    if (!req)
        return;
    /* Read without taking: version and request id go back in the answer. */
    zframe_t *f = zmsg_first(req);
    char domain[64] = "", address[64] = "", mechanism[16] = "";
    char *fields[] = {NULL, NULL, domain, address, NULL, mechanism};
    size_t sizes[] = {0, 0, sizeof domain, sizeof address, 0, sizeof mechanism};
    for (int i = 0; i < 6 && f; i++, f = zmsg_next(req))
        if (fields[i])
            snprintf(fields[i], sizes[i], "%.*s", (int) zframe_size(f), (const char *) zframe_data(f));
    if (strcmp(mechanism, "CURVE") != 0 || !f || zframe_size(f) != 32) {
        /* Every socket of the broker that asks is a CURVE server. */
        log_refused(z, address, "a handshake without a CURVE key", address, domain);
        answer(sock, req, "400", "CURVE only", "");
        zmsg_destroy(&req);
        return;
    }
    char key[41];
    zmq_z85_encode(key, zframe_data(f), 32);
    const char *name = zhashx_lookup(z->keys, key);
    if (name) {
        rc_log(RC_LOG_DEBUG, "security", "accepted the key of %s (%s) from %s on the %s channels", name, key,
               address, channel(domain));
        answer(sock, req, "200", "OK", key); /* the user id is the key: the broker reads it as User-Id */
    } else {
        char what[96];
        snprintf(what, sizeof what, "the CURVE key %s (in no allow-list)", key);
        log_refused(z, key, what, address, domain);
        answer(sock, req, "400", "key not allowed", "");
    }
    zmsg_destroy(&req);
}

static void refusal_free(void **item)
{
    free(*item);
    *item = NULL;
}

static void zap_actor(zsock_t *pipe, void *arg)
{
    zap_t z = {.keys = arg, .refused = zhashx_new()};
    zsock_t *sock = zsock_new(ZMQ_REP);
    zpoller_t *poller = NULL;
    if (z.refused)
        zhashx_set_destructor(z.refused, refusal_free);
    /* zactor_new takes the first signal; rc_zap_new waits for the second,
     * which says whether the handler is bound. */
    zsock_signal(pipe, 0);
    /* The endpoint is the context's: a handler closed just before (a broker
     * stopped and started again in one process) frees it only once libzmq's
     * reaper has closed its socket, a moment later. */
    int bound = -1;
    for (int tries = 0; sock && tries < 100; tries++) {
        if ((bound = zsock_bind(sock, ZAP_ENDPOINT)) == 0 || zmq_errno() != EADDRINUSE)
            break;
        zclock_sleep(10); /* waits for the reaper; bounded to a second */
    }
    if (!z.refused || bound != 0 || !(poller = zpoller_new(pipe, sock, NULL))) {
        zsock_signal(pipe, 1);
    } else {
        zsock_signal(pipe, 0);
        for (;;) {
            void *which = zpoller_wait(poller, -1);
            if (which == sock) {
                handle(&z, sock);
                continue;
            }
            char *cmd = NULL;
            void *keys = NULL;
            if (which == pipe)
                zsock_recv(pipe, "sp", &cmd, &keys);
            bool term = !cmd || streq(cmd, "$TERM");
            if (!term && streq(cmd, "KEYS") && keys) {
                /* The allow-lists read again (SIGHUP). */
                zhashx_destroy(&z.keys);
                z.keys = keys;
                zsock_signal(pipe, 0);
            }
            zstr_free(&cmd);
            if (term)
                break;
        }
    }
    zpoller_destroy(&poller);
    zsock_destroy(&sock);
    zhashx_destroy(&z.refused);
    zhashx_destroy(&z.keys);
}

/* One map of the keys of the n sets, to their names. */
static zhashx_t *merge(zhashx_t *const *sets, size_t n)
{
    zhashx_t *keys = zhashx_new();
    if (!keys)
        return NULL;
    zhashx_set_duplicator(keys, (zhashx_duplicator_fn *) strdup);
    zhashx_set_destructor(keys, (zhashx_destructor_fn *) zstr_free);
    for (size_t i = 0; i < n; i++)
        for (const char *name = sets[i] ? zhashx_first(sets[i]) : NULL; name; name = zhashx_next(sets[i]))
            zhashx_update(keys, zhashx_cursor(sets[i]), (void *) name);
    return keys;
}

int rc_zap_set_keys(zactor_t *zap, zhashx_t *const *sets, size_t n)
{
    zhashx_t *keys = merge(sets, n);
    if (!keys || zsock_send(zap, "sp", "KEYS", keys) != 0) {
        zhashx_destroy(&keys);
        return -1;
    }
    return zsock_wait(zap) == 0 ? 0 : -1;
}

zactor_t *rc_zap_new(zhashx_t *const *sets, size_t n)
{
    zhashx_t *keys = merge(sets, n);
    if (!keys)
        return NULL;
    zactor_t *actor = zactor_new(zap_actor, keys); /* it owns keys from here */
    if (actor && zsock_wait(actor) != 0)
        zactor_destroy(&actor);
    return actor;
}
