/* rc_wmon: what a worker pool's connections to the broker go through, in
 * its log (see rc_wmon.h). Each worker thread has libzmq monitor its work
 * socket onto inproc://rc-wmon-PREFIX-INDEX (zmq_socket_monitor); this
 * actor holds a PAIR connected to each, reads the events and logs them.
 * When a thread reconnects, its old monitor stops (MONITOR_STOPPED) and the
 * actor connects again, for the new socket's monitor to bind. */
#include "rc_wmon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_common.h"
#include "rc_log.h"

#define MON_EVENTS                                                                                           \
    (ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | \
     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_MONITOR_STOPPED)
#define REPEAT_EVERY_US (60 * 1000000ull) /* the same trouble is said again at most this often */

typedef struct {
    char prefix[32];
    int threads;
    zsock_t **pairs;
    uint64_t said_us[4]; /* when each kind of line was last written */
    uint64_t quiet[4];   /* how many of its kind were not written since */
    bool connected;      /* the last thing said was "connected" */
} mon_t;

enum { SAY_CONNECTED, SAY_AUTH, SAY_PROTOCOL, SAY_LOST };

void rc_wmon_endpoint(const char *prefix, int index, char *buf, size_t len)
{
    snprintf(buf, len, "inproc://rc-wmon-%s-%d", prefix, index);
}

int rc_wmon_watch(void *socket, const char *prefix, int index)
{
    char ep[96];
    rc_wmon_endpoint(prefix, index, ep, sizeof ep);
    return zmq_socket_monitor(socket, ep, MON_EVENTS);
}

void rc_wmon_unwatch(void *socket)
{
    zmq_socket_monitor(socket, NULL, 0);
}

static zsock_t *pair_for(const mon_t *m, int index)
{
    char ep[96];
    rc_wmon_endpoint(m->prefix, index, ep, sizeof ep);
    zsock_t *p = zsock_new(ZMQ_PAIR);
    if (p && zsock_connect(p, "%s", ep) != 0)
        zsock_destroy(&p);
    return p;
}

/* Writes a line of a kind, unless one of it was written less than a minute
 * ago (then counts it). */
static void say(mon_t *m, int kind, rc_log_level_t level, const char *msg)
{
    uint64_t now = rc_mono_us();
    if (m->said_us[kind] && now - m->said_us[kind] < REPEAT_EVERY_US) {
        m->quiet[kind]++;
        return;
    }
    if (m->quiet[kind])
        rc_log(level, "connection", "%s (and %llu times more in the last minute)", msg,
               (unsigned long long) m->quiet[kind]);
    else
        rc_log(level, "connection", "%s", msg);
    m->said_us[kind] = now;
    m->quiet[kind] = 0;
}

static void event(mon_t *m, int index)
{
    zmsg_t *msg = zmsg_recv(m->pairs[index]);
    zframe_t *f = msg ? zmsg_first(msg) : NULL;
    if (!f || zframe_size(f) < 6) {
        zmsg_destroy(&msg);
        return;
    }
    uint16_t ev;
    uint32_t value;
    memcpy(&ev, zframe_data(f), 2);
    memcpy(&value, zframe_data(f) + 2, 4);
    char addr[256] = "";
    zframe_t *a = zmsg_next(msg);
    if (a)
        snprintf(addr, sizeof addr, "%.*s", (int) zframe_size(a), (const char *) zframe_data(a));
    zmsg_destroy(&msg);
    char line[640];
    switch (ev) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        snprintf(line, sizeof line, "connected to the broker at %s", addr);
        if (!m->connected)
            say(m, SAY_CONNECTED, RC_LOG_INFO, line);
        else
            rc_log(RC_LOG_DEBUG, "connection", "thread %d connected to the broker at %s", index, addr);
        m->connected = true;
        m->said_us[SAY_LOST] = 0;
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
    case ZMQ_EVENT_MONITOR_STOPPED:
        /* Its thread opens a new socket: be there when that one's monitor binds. */
        zsock_destroy(&m->pairs[index]);
        m->pairs[index] = pair_for(m, index);
        break;
    }
}

static void mon_actor(zsock_t *pipe, void *arg)
{
    mon_t *m = arg;
    zsock_signal(pipe, 0);
    for (;;) {
        zmq_pollitem_t items[1 + 256];
        int n = 0;
        items[n++] = (zmq_pollitem_t){zsock_resolve(pipe), 0, ZMQ_POLLIN, 0};
        int index_of[256];
        for (int i = 0; i < m->threads && n < 257; i++)
            if (m->pairs[i]) {
                index_of[n - 1] = i;
                items[n++] = (zmq_pollitem_t){zsock_resolve(m->pairs[i]), 0, ZMQ_POLLIN, 0};
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
                event(m, index_of[k - 1]);
    }
    for (int i = 0; i < m->threads; i++)
        zsock_destroy(&m->pairs[i]);
    free(m->pairs);
    free(m);
}

zactor_t *rc_wmon_new(const char *prefix, int threads)
{
    if (threads <= 0 || threads > 256)
        return NULL;
    mon_t *m = calloc(1, sizeof *m);
    if (!m || !(m->pairs = calloc((size_t) threads, sizeof *m->pairs))) {
        free(m);
        return NULL;
    }
    snprintf(m->prefix, sizeof m->prefix, "%s", prefix);
    m->threads = threads;
    /* Connected before the threads' monitors bind (inproc allows it). */
    for (int i = 0; i < threads; i++)
        m->pairs[i] = pair_for(m, i);
    return zactor_new(mon_actor, m);
}
