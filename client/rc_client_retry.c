/* rc_client_retry: the socket monitor that tells a blocking call the broker
 * came back (see rc_client_retry.h). */
#include "rc_client_retry.h"

#include <stdio.h>
#include <string.h>

int rc_client_mon_open(rc_client_mon_t *m, void *dealer)
{
    static int serial;
    memset(m, 0, sizeof *m);
    char ep[96];
    snprintf(ep, sizeof ep, "inproc://refcache-client-monitor-%p-%d", dealer,
             __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED));
    if (zmq_socket_monitor(dealer, ep, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) != 0)
        return -1;
    m->pair = zsock_new(ZMQ_PAIR);
    if (!m->pair || zsock_connect(m->pair, "%s", ep) != 0) {
        zmq_socket_monitor(dealer, NULL, 0);
        zsock_destroy(&m->pair);
        return -1;
    }
    zsock_set_linger(m->pair, 0);
    return 0;
}

void rc_client_mon_close(rc_client_mon_t *m, void *dealer)
{
    if (!m->pair)
        return;
    zmq_socket_monitor(dealer, NULL, 0);
    zsock_destroy(&m->pair);
}

/* Reads the events that wait: true if a connection followed a
 * disconnection. An event is two frames: 16 bits of event and 32 of value,
 * then the endpoint. */
static bool read_events(rc_client_mon_t *m)
{
    void *pair = zsock_resolve(m->pair);
    bool back = false;
    for (;;) {
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, pair, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return back;
        }
        uint16_t id = 0;
        if (zmq_msg_size(&ev) >= 2)
            memcpy(&id, zmq_msg_data(&ev), 2);
        while (zmq_msg_more(&ev) && zmq_msg_recv(&ev, pair, ZMQ_DONTWAIT) >= 0)
            ;
        zmq_msg_close(&ev);
        if (id == ZMQ_EVENT_DISCONNECTED) {
            m->down = true;
        } else if (id == ZMQ_EVENT_CONNECTED && m->down) {
            m->down = false;
            back = true;
        }
    }
}

int rc_client_mon_poll(rc_client_mon_t *m, void *dealer, long timeout_ms)
{
    zmq_pollitem_t items[2] = {{dealer, 0, ZMQ_POLLIN, 0}, {NULL, 0, ZMQ_POLLIN, 0}};
    /* A reply on its way comes first: the monitor is not looked at. */
    long first = m->pair && (timeout_ms < 0 || timeout_ms > RC_CLIENT_LOOK_MS) ? RC_CLIENT_LOOK_MS : timeout_ms;
    int n = zmq_poll(items, 1, first);
    if (n != 0 || !m->pair || first == timeout_ms)
        return n > 0 ? 1 : n;
    items[1].socket = zsock_resolve(m->pair);
    n = zmq_poll(items, 2, timeout_ms < 0 ? -1 : timeout_ms - first);
    if (n <= 0)
        return n;
    if (items[1].revents & ZMQ_POLLIN && read_events(m))
        return RC_CLIENT_COMEBACK;
    return items[0].revents & ZMQ_POLLIN ? 1 : 0;
}
