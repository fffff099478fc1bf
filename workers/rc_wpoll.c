/* rc_wpoll: socket readiness for a worker thread (see rc_wpoll.h).
 *
 * libzmq tells a socket's news through a descriptor (ZMQ_FD) that becomes
 * readable when commands reach the socket, such as "a message arrived in a
 * pipe that was empty". Once a receive has found the socket empty (libzmq
 * has then handled the socket's commands, and its pipes wait to be woken),
 * the descriptor becomes readable exactly when something new arrives: the
 * socket is armed, and poll() on the raw descriptors can wait for it, or
 * look at it, in one system call. zmq_poll asks each socket for ZMQ_EVENTS
 * before and after waiting, a system call per socket each time. A send may
 * handle the socket's pending commands, so sending disarms the socket. */
#include "rc_wpoll.h"
#include "rc_log.h"
#include "rc_wmon.h"
#include "rc_wrecv.h"
#include "rc_wsend.h"
#include "rc_wsession.h"

#include <poll.h>
#include <stdio.h>

/* Receives every message the work socket holds (a bounded number of
 * rounds: the broker sends at most the credit's dispatches), even if it is
 * armed: a receive on an armed socket only costs a system call. */
static void drain_work(rc_wthread_t *w)
{
    for (int round = 0; round < 16 && w->work_h; round++) {
        rc_wrecv_handle_work(w);
        if (w->work_armed)
            break;
    }
}

/* Handles what the sockets that are not armed hold (control, and the cancel
 * board, only if asked), work first: a dispatch and its cancel that arrive
 * together find each other. A cancel on the board may name a dispatch sent
 * before it was posted that waits in the work socket, armed or not: so the
 * work socket is emptied before the board is read, and the cancel finds its
 * task held rather than leaving a tombstone. */
static void drain_unarmed(rc_wthread_t *w, bool control)
{
    bool board_news = control && w->board && rc_board_pending(w->board);
    if (board_news)
        drain_work(w);
    else if (!w->work_armed && w->work_h)
        rc_wrecv_handle_work(w);
    if (board_news)
        rc_wrecv_board_drain(w);
    if (control && !w->control_armed && w->control_h)
        rc_wrecv_handle_control(w);
    if (!w->pipe_armed)
        rc_wrecv_handle_pipe(w);
}

/* Waits up to timeout_ms (0: only looks) for input on the pipe, the work and
 * (if asked) the control socket, and handles what arrived. When only the
 * work socket has news after a wait, it is left to the caller's next
 * receive (take_work, or the next call): draining it here would end with one
 * more empty receive, a system call that buys nothing. */
void rc_wpoll_look(rc_wthread_t *w, long timeout_ms, bool control)
{
    if (timeout_ms != 0)
        rc_wsend_results_flush(w); /* nothing waits while the worker does (a job's sleep) */
    drain_unarmed(w, control);
    if (w->terminating)
        return;
    struct pollfd fds[3];
    bool *armed[3];
    nfds_t n = 0;
    /* Without sockets (a reconnection failed), wait on the pipe alone. */
    bool all_armed =
        (w->work_armed || !w->work_h) && (!control || w->control_armed || !w->control_h) && w->pipe_armed;
    if (w->work_armed) {
        fds[n] = (struct pollfd){.fd = w->work_fd, .events = POLLIN};
        armed[n++] = &w->work_armed;
    }
    if (control && w->control_armed) {
        fds[n] = (struct pollfd){.fd = w->control_fd, .events = POLLIN};
        armed[n++] = &w->control_armed;
    }
    if (w->pipe_armed) {
        fds[n] = (struct pollfd){.fd = w->pipe_fd, .events = POLLIN};
        armed[n++] = &w->pipe_armed;
    }
    /* A socket that DRAIN_BATCH left unarmed still holds messages: no wait.
     * Nor with a task taken just now and no job running: it is to start. */
    bool wait = all_armed && (w->job || w->held_count == 0);
    int ready = poll(fds, n, wait ? (int) timeout_ms : 0);
    w->last_look_us = rc_mono_us();
    if (ready > 0) {
        for (nfds_t i = 0; i < n; i++)
            if (fds[i].revents)
                *armed[i] = false;
        if ((control && !w->control_armed) || !w->pipe_armed)
            drain_unarmed(w, control);
    }
}

/* Looks at (or waits up to timeout_ms for) every input. */
void rc_wpoll_input(rc_wthread_t *w, long timeout_ms)
{
    rc_wpoll_look(w, timeout_ms, true);
}

static zsock_t *open_dealer(rc_wthread_t *w, const char *endpoint)
{
    refcache_pool_t *pool = w->pool;
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock)
        return NULL;
    zsock_set_linger(sock, 0);
    zsock_set_sndhwm(sock, WORKER_HWM);
    zsock_set_rcvhwm(sock, WORKER_HWM);
    zsock_set_sndtimeo(sock, WORKER_SNDTIMEO_MS);
    zsock_set_reconnect_ivl(sock, WORKER_RECONNECT_IVL_MS);
    zsock_set_reconnect_ivl_max(sock, WORKER_RECONNECT_IVL_MAX_MS);
    zsock_set_identity(sock, w->id);
    if (pool->cert) {
        zcert_apply(pool->cert, sock);
        zsock_set_curve_serverkey(sock, pool->server_key);
    }
    if (zsock_connect(sock, "%s", endpoint) != 0) {
        snprintf(w->setup_err, sizeof w->setup_err, "cannot connect to %s: %s", endpoint,
                 zmq_strerror(zmq_errno()));
        zsock_destroy(&sock);
        return NULL;
    }
    return sock;
}

void rc_wpoll_close_sockets(rc_wthread_t *w)
{
    if (w->work && w->pool->monitor)
        rc_wmon_unwatch(zsock_resolve(w->work));
    zsock_destroy(&w->work);
    zsock_destroy(&w->control);
    w->work_h = w->control_h = NULL;
    w->work_armed = w->control_armed = false;
}

int rc_wpoll_open_sockets(rc_wthread_t *w)
{
    w->control = open_dealer(w, w->pool->control_endpoint);
    w->work = w->control ? open_dealer(w, w->pool->work_endpoint) : NULL;
    if (!w->work) {
        if (w->setup_err[0] == '\0')
            snprintf(w->setup_err, sizeof w->setup_err, "cannot create a socket");
        rc_wpoll_close_sockets(w);
        return -1;
    }
    w->work_h = zsock_resolve(w->work);
    w->control_h = zsock_resolve(w->control);
    if (w->pool->monitor && rc_wmon_watch(w->work_h, w->pool->id_prefix, w->index, w->generation) != 0)
        rc_log(RC_LOG_DEBUG, "connection", "thread %d: no monitor of its connection: %s", w->index,
               zmq_strerror(zmq_errno()));
    /* The board under the id of these connections, before their Ready:
     * the broker looks it up when the Ready arrives. Echoes of notices sent
     * to the old connections would wait for copies that never come. */
    if (w->board) {
        rc_board_name(w->pool->boards, w->board, w->id);
        rc_wrecv_echoes_clear(w);
    }
    w->work_fd = zsock_fd(w->work);
    w->control_fd = zsock_fd(w->control);
    w->work_armed = w->control_armed = false;
    return 0;
}

/* The broker has been silent too long: it may have restarted or the link
 * may be half-dead. New sockets drop whatever was queued for the old
 * connection, and the broker has forgotten our held tasks anyway. */
void rc_wpoll_reconnect(rc_wthread_t *w)
{
    /* Said once for the pool, and again at most every 30 s. */
    uint64_t now = rc_mono_us(), said = atomic_load(&w->pool->silence_said_us);
    if (w->work_h && (!said || now - said >= 30000000) &&
        atomic_compare_exchange_strong(&w->pool->silence_said_us, &said, now))
        rc_log(RC_LOG_WARN, "connection",
               "no word from the broker at %s for %d heartbeats: connecting again and announcing anew",
               w->pool->work_endpoint, w->pool->liveness);
    w->results_n = 0; /* for the old session: the broker has moved on */
    rc_wrecv_held_drop_all(w);
    rc_wsession_end(w, w->id);
    rc_wpoll_close_sockets(w);
    /* A new routing id for the new connections: a ROUTER without
     * ZMQ_ROUTER_HANDOVER rejects a peer whose id is still bound to the old,
     * not yet torn down connection, and would drop our Ready with it. */
    w->generation++;
    snprintf(w->id, sizeof w->id, "%s-%d.%u", w->pool->id_prefix, w->index, w->generation);
    if (rc_wpoll_open_sockets(w) == 0)
        rc_wsend_announce(w);
    /* On failure the next timer tick tries again. */
    w->last_heard_us = rc_mono_us();
}

/* Heartbeat and liveness timers; call only right after draining the work
 * socket, so that queued broker messages count as heard. */
void rc_wpoll_check_timers(rc_wthread_t *w)
{
    uint64_t now = rc_mono_us();
    uint64_t hb_us = (uint64_t) w->pool->heartbeat_ms * 1000;
    if (!w->work_h || now - w->last_heard_us >= hb_us * (uint64_t) w->pool->liveness)
        rc_wpoll_reconnect(w);
    else
        rc_wsend_heartbeat_if_due(w, now);
}

/* Milliseconds until check_timers has something to do. */
long rc_wpoll_timer_timeout_ms(rc_wthread_t *w)
{
    uint64_t now = rc_mono_us();
    uint64_t hb_us = (uint64_t) w->pool->heartbeat_ms * 1000;
    uint64_t next = w->last_sent_us + hb_us;
    uint64_t dead = w->last_heard_us + hb_us * (uint64_t) w->pool->liveness;
    if (dead < next)
        next = dead;
    if (next <= now)
        return 0;
    return (long) ((next - now + 999) / 1000);
}
