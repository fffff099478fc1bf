/* rc_hsmon: failed handshakes on the broker's endpoints (see rc_hsmon.h). */
#include "rc_hsmon.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>

#include "rc_log.h"
#include "rc_wmon.h"

#define EVENTS   (ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
#define CHANNELS 3
#define CAUSES   4

static const char *const channel_names[CHANNELS] = {"clients", "workers", "control"};

struct rc_hsmon {
    zactor_t *actor;
    char eps[CHANNELS][64]; /* the monitors' inproc endpoints */
};

/* The thread's side: a PAIR per monitor, and a line per channel and cause
 * at most once a minute. */
typedef struct {
    zsock_t *pairs[CHANNELS];
    rc_log_every_t said[CHANNELS][CAUSES];
} watch_t;

const char *rc_hsmon_cause(unsigned code)
{
    switch (code) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return "its CURVE handshake did not decrypt: the peer does not have this broker's public key "
               "(--broker-public)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "the peer uses another security mechanism: CURVE on one side only";
    case 0:
        return "the connection closed during the handshake";
    default:
        return "the peer does not speak the ZeroMQ handshake (not a ZeroMQ peer, or another version)";
    }
}

static int cause_index(unsigned code)
{
    return code == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC        ? 0
           : code == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH ? 1
           : code == 0                                          ? 2
                                                                : 3;
}

static void on_event(watch_t *w, int ch)
{
    uint16_t ev;
    uint32_t value;
    char endpoint[256];
    if (!rc_wmon_read(w->pairs[ch], &ev, &value, endpoint, sizeof endpoint))
        return;
    unsigned code = ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? value : 0;
    rc_log_every(&w->said[ch][cause_index(code)], RC_LOG_WARN, "security",
                 "a handshake failed on the %s endpoint %s: %s (protocol error 0x%x)", channel_names[ch],
                 endpoint, rc_hsmon_cause(code), code);
}

static void run(zsock_t *pipe, void *arg)
{
    rc_hsmon_t *self = arg;
    watch_t w;
    memset(&w, 0, sizeof w);
    zpoller_t *poller = zpoller_new(pipe, NULL);
    for (int ch = 0; ch < CHANNELS && poller; ch++) {
        w.pairs[ch] = zsock_new(ZMQ_PAIR);
        if (w.pairs[ch] && zsock_connect(w.pairs[ch], "%s", self->eps[ch]) == 0)
            zpoller_add(poller, w.pairs[ch]);
    }
    zsock_signal(pipe, 0);
    while (poller) {
        void *which = zpoller_wait(poller, -1);
        if (!which || which == pipe)
            break; /* $TERM, or the context is ending */
        for (int ch = 0; ch < CHANNELS; ch++)
            if (which == w.pairs[ch])
                on_event(&w, ch);
    }
    zpoller_destroy(&poller);
    for (int ch = 0; ch < CHANNELS; ch++)
        zsock_destroy(&w.pairs[ch]);
}

rc_hsmon_t *rc_hsmon_start(void *clients, void *workers, void *control)
{
    rc_hsmon_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    void *socks[CHANNELS] = {clients, workers, control};
    for (int ch = 0; ch < CHANNELS; ch++) {
        snprintf(self->eps[ch], sizeof self->eps[ch], "inproc://rc-hsmon-%p-%s", (void *) self,
                 channel_names[ch]);
        if (socks[ch] && zmq_socket_monitor(socks[ch], self->eps[ch], EVENTS) != 0) {
            rc_log(RC_LOG_WARN, "security", "cannot watch the handshakes of the %s endpoints: %s",
                   channel_names[ch], zmq_strerror(zmq_errno()));
            rc_hsmon_stop(&self, clients, workers, control);
            return NULL;
        }
    }
    self->actor = zactor_new(run, self);
    if (!self->actor) {
        rc_hsmon_stop(&self, clients, workers, control);
        return NULL;
    }
    return self;
}

void rc_hsmon_stop(rc_hsmon_t **self_p, void *clients, void *workers, void *control)
{
    if (!self_p || !*self_p)
        return;
    void *socks[CHANNELS] = {clients, workers, control};
    for (int ch = 0; ch < CHANNELS; ch++)
        if (socks[ch])
            zmq_socket_monitor(socks[ch], NULL, 0);
    zactor_destroy(&(*self_p)->actor);
    free(*self_p);
    *self_p = NULL;
}
