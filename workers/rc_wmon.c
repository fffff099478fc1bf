/* rc_wmon: what a worker pool's connections to the broker go through, in
 * its log (see rc_wmon.h). Each worker thread has libzmq monitor its work
 * socket onto inproc://rc-wmon-PREFIX-INDEX.GENERATION (zmq_socket_monitor;
 * a new name for each socket it opens); this actor reads the events and
 * logs them.
 *
 * libzmq's IO thread sends a monitor's events with a blocking send, holding
 * the socket's monitor lock: a monitor with no reader connected would stop
 * that IO thread (and every socket it serves) and the socket's owner at its
 * next zmq_socket_monitor. So the actor is always connected first: it holds
 * a PAIR to each thread's current generation and, ahead of time, to the
 * next AHEAD ones (inproc lets a connect wait for its bind), and lets go of
 * a generation only at its MONITOR_STOPPED, the last event it sends. */
#include "rc_wmon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_common.h"
#include "rc_log.h"

#define MON_EVENTS                                                                                           \
    (ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | \
     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_MONITOR_STOPPED)
#define AHEAD 3 /* generations connected to ahead of their socket */

typedef struct {
    zsock_t *pair;
    unsigned generation;
} conn_t;

typedef struct {
    char prefix[32];
    int threads;
    conn_t *conns;          /* AHEAD + 1 per thread: threads x (AHEAD + 1) */
    rc_log_every_t said[4]; /* each kind of line, once a minute */
    bool connected;         /* the last thing said was "connected" */
} mon_t;

enum { SAY_CONNECTED, SAY_AUTH, SAY_PROTOCOL, SAY_LOST };

void rc_wmon_endpoint(const char *prefix, int index, unsigned generation, char *buf, size_t len)
{
    snprintf(buf, len, "inproc://rc-wmon-%s-%d.%u", prefix, index, generation);
}

int rc_wmon_watch(void *socket, const char *prefix, int index, unsigned generation)
{
    char ep[96];
    rc_wmon_endpoint(prefix, index, generation, ep, sizeof ep);
    return zmq_socket_monitor(socket, ep, MON_EVENTS);
}

void rc_wmon_unwatch(void *socket)
{
    zmq_socket_monitor(socket, NULL, 0);
}

/* Connects slot c to thread index's monitor of that generation. */
static void conn_open(const mon_t *m, conn_t *c, int index, unsigned generation)
{
    char ep[96];
    rc_wmon_endpoint(m->prefix, index, generation, ep, sizeof ep);
    c->generation = generation;
    c->pair = zsock_new(ZMQ_PAIR);
    if (c->pair && zsock_connect(c->pair, "%s", ep) != 0)
        zsock_destroy(&c->pair);
}

/* Writes a line of a kind, unless one of it was written less than a minute
 * ago (then counts it). */
static void say(mon_t *m, int kind, rc_log_level_t level, const char *msg)
{
    rc_log_every(&m->said[kind], level, "connection", "%s", msg);
}

bool rc_wmon_read(zsock_t *pair, uint16_t *event, uint32_t *value, char *endpoint, size_t len)
{
    zmsg_t *msg = zmsg_recv(pair);
    zframe_t *f = msg ? zmsg_first(msg) : NULL;
    if (!f || zframe_size(f) < 6) {
        zmsg_destroy(&msg);
        return false;
    }
    memcpy(event, zframe_data(f), 2);
    memcpy(value, zframe_data(f) + 2, 4);
    zframe_t *a = zmsg_next(msg);
    snprintf(endpoint, len, "%.*s", a ? (int) zframe_size(a) : 0, a ? (const char *) zframe_data(a) : "");
    zmsg_destroy(&msg);
    return true;
}

static void event(mon_t *m, int slot)
{
    int index = slot / (AHEAD + 1);
    conn_t *c = &m->conns[slot];
    uint16_t ev;
    uint32_t value;
    char addr[256];
    if (!rc_wmon_read(c->pair, &ev, &value, addr, sizeof addr))
        return;
    char line[640];
    switch (ev) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        snprintf(line, sizeof line, "connected to the broker at %s", addr);
        if (!m->connected)
            say(m, SAY_CONNECTED, RC_LOG_INFO, line);
        else
            rc_log(RC_LOG_DEBUG, "connection", "thread %d connected to the broker at %s", index, addr);
        m->connected = true;
        m->said[SAY_LOST].said_us = 0;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        m->connected = false;
        snprintf(
            line, sizeof line,
            "the broker at %s refused this worker's CURVE key (ZAP status %u): its public certificate must "
            "be in the broker's --workers-allowed directory",
            addr, value);
        say(m, SAY_AUTH, RC_LOG_ERROR, line);
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        m->connected = false;
        snprintf(line, sizeof line,
                 "the handshake with the broker at %s failed (error %u): with CURVE, is --broker-public the "
                 "broker's key, and do both ends use CURVE?",
                 addr, value);
        say(m, SAY_PROTOCOL, RC_LOG_ERROR, line);
        break;
    case ZMQ_EVENT_DISCONNECTED:
        snprintf(line, sizeof line, "lost the connection to the broker at %s", addr);
        if (m->connected)
            say(m, SAY_LOST, RC_LOG_WARN, line);
        m->connected = false;
        break;
    case ZMQ_EVENT_MONITOR_STOPPED: {
        /* The generation's last event. Its slot, and any of an older one
         * (whose monitor never bound: its name is never used again), take
         * the next generations to come, after the latest this thread has. */
        conn_t *mine = &m->conns[index * (AHEAD + 1)];
        unsigned stopped = c->generation, latest = stopped;
        for (int k = 0; k <= AHEAD; k++)
            if ((int) (mine[k].generation - latest) > 0)
                latest = mine[k].generation;
        for (int k = 0; k <= AHEAD; k++)
            if ((int) (mine[k].generation - stopped) <= 0) {
                zsock_destroy(&mine[k].pair);
                conn_open(m, &mine[k], index, ++latest);
            }
        break;
    }
    }
}

static void mon_actor(zsock_t *pipe, void *arg)
{
    mon_t *m = arg;
    zsock_signal(pipe, 0);
    int slots = m->threads * (AHEAD + 1);
    zmq_pollitem_t *items = calloc((size_t) slots + 1, sizeof *items);
    int *slot_of = calloc((size_t) slots + 1, sizeof *slot_of);
    for (; items && slot_of;) {
        int n = 0;
        items[n++] = (zmq_pollitem_t){zsock_resolve(pipe), 0, ZMQ_POLLIN, 0};
        for (int i = 0; i < slots; i++)
            if (m->conns[i].pair) {
                slot_of[n] = i;
                items[n++] = (zmq_pollitem_t){zsock_resolve(m->conns[i].pair), 0, ZMQ_POLLIN, 0};
            }
        if (zmq_poll(items, n, -1) < 0 && zmq_errno() != EINTR)
            break;
        if (items[0].revents & ZMQ_POLLIN) {
            char *cmd = zstr_recv(pipe);
            bool term = !cmd || streq(cmd, "$TERM");
            zstr_free(&cmd);
            if (term)
                break;
        }
        for (int k = 1; k < n; k++)
            if (items[k].revents & ZMQ_POLLIN)
                event(m, slot_of[k]);
    }
    free(items);
    free(slot_of);
    for (int i = 0; i < slots; i++)
        zsock_destroy(&m->conns[i].pair);
    free(m->conns);
    free(m);
}

zactor_t *rc_wmon_new(const char *prefix, int threads)
{
    if (threads <= 0 || threads > 256)
        return NULL;
    mon_t *m = calloc(1, sizeof *m);
    if (!m || !(m->conns = calloc((size_t) threads * (AHEAD + 1), sizeof *m->conns))) {
        free(m);
        return NULL;
    }
    snprintf(m->prefix, sizeof m->prefix, "%s", prefix);
    m->threads = threads;
    /* Connected before the threads' monitors bind (inproc allows it): the
     * first generations of each. */
    for (int i = 0; i < threads; i++)
        for (int k = 0; k <= AHEAD; k++)
            conn_open(m, &m->conns[i * (AHEAD + 1) + k], i, (unsigned) k);
    return zactor_new(mon_actor, m);
}
