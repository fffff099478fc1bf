/* refcache-relay: the performance baseline of docs/performance.md, a bare
 * ZeroMQ forwarder shaped like a broker with in-process workers, so that
 * refcache-bench's figures can be read against what ZeroMQ alone does on the
 * same machine at the same moment (scripts/perf.sh runs them side by side).
 *
 *   serve FRONT [WORKERS]   ROUTER bound to FRONT (port * picks one) ->
 *                           zmq_proxy -> DEALER -> WORKERS echo threads over
 *                           inproc (2); prints "front EP" then "ready"
 *   load FRONT N DEPTH      one DEALER client, N requests pipelined with at
 *                           most DEPTH outstanding; prints "relay_rps R"
 *   ping FRONT N [GAP_US]   N sequential round trips, GAP_US idle between
 *                           them (0); prints "relay_rtt_us p50 A p99 B"
 *
 * Requests are 32-byte bodies, echoed unchanged. No parsing, no state, no
 * allocation per message beyond ZeroMQ's own: the ceiling of a forwarder.
 * A client gives up when no reply comes for 5 s (the server is not there). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define RELAY_BODY_BYTES   32
#define RELAY_RECV_TIMEOUT 5000 /* ms without a reply before a client gives up */
#define RELAY_BACKEND      "inproc://relay-workers"

static const char s_usage[] =
    "usage: refcache-relay serve FRONT [WORKERS]\n"
    "       refcache-relay load FRONT N DEPTH\n"
    "       refcache-relay ping FRONT N [GAP_US]\n"
    "A bare ZeroMQ forwarder and its clients: the baseline of docs/performance.md.\n";

static double s_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

/* A positive count from argv, or false. */
static bool s_count(const char *text, long min, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min)
        return false;
    *out = v;
    return true;
}

/* No high-water mark: like the broker's queues, nothing is dropped. */
static void s_unbounded(void *sock)
{
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &zero, sizeof zero);
}

/* ------------------------------------------------------------ serve */

/* An echo worker: a ROUTER connected to the proxy's DEALER, so that it can
 * take the next request before the previous reply has left. Every frame
 * (the proxy's routing id, the client's, the body) goes back as it came. */
static void *s_echo(void *ctx)
{
    void *sock = zmq_socket(ctx, ZMQ_ROUTER);
    if (!sock)
        return NULL;
    s_unbounded(sock);
    if (zmq_connect(sock, RELAY_BACKEND) == 0) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        while (zmq_msg_recv(&msg, sock, 0) >= 0) {
            int more = zmq_msg_more(&msg);
            if (zmq_msg_send(&msg, sock, more ? ZMQ_SNDMORE : 0) < 0)
                break;
        }
        zmq_msg_close(&msg);
    }
    zmq_close(sock);
    return NULL;
}

/* Binds FRONT and the backend, starts the echo threads, then forwards until
 * the process is killed. Returns only on a failure (sockets closed, so that
 * the context can end). */
static int s_serve(void *ctx, const char *front_ep, long workers)
{
    void *front = zmq_socket(ctx, ZMQ_ROUTER);
    void *back = zmq_socket(ctx, ZMQ_DEALER);
    int rc = 1;
    if (!front || !back) {
        fprintf(stderr, "refcache-relay: no socket: %s\n", zmq_strerror(errno));
        goto out;
    }
    s_unbounded(front);
    s_unbounded(back);
    if (zmq_bind(front, front_ep) != 0) {
        fprintf(stderr, "refcache-relay: cannot bind %s: %s\n", front_ep, zmq_strerror(errno));
        goto out;
    }
    if (zmq_bind(back, RELAY_BACKEND) != 0) {
        fprintf(stderr, "refcache-relay: cannot bind %s: %s\n", RELAY_BACKEND, zmq_strerror(errno));
        goto out;
    }
    for (long i = 0; i < workers; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, s_echo, ctx) != 0) {
            fprintf(stderr, "refcache-relay: cannot start an echo thread\n");
            goto out; /* the started ones end when the context does */
        }
        pthread_detach(t);
    }
    char bound[256];
    size_t len = sizeof bound;
    if (zmq_getsockopt(front, ZMQ_LAST_ENDPOINT, bound, &len) != 0)
        snprintf(bound, sizeof bound, "%s", front_ep);
    printf("front %s\nready\n", bound);
    fflush(stdout);
    zmq_proxy(front, back, NULL);
    rc = 0;
out:
    if (front)
        zmq_close(front);
    if (back)
        zmq_close(back);
    return rc;
}

/* ------------------------------------------------------------ clients */

static void *s_client(void *ctx, const char *front_ep)
{
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    if (!sock)
        return NULL;
    s_unbounded(sock);
    int timeout = RELAY_RECV_TIMEOUT, linger = 0;
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(sock, ZMQ_LINGER, &linger,
                   sizeof linger); /* a request left unsent does not hold the exit */
    if (zmq_connect(sock, front_ep) != 0) {
        fprintf(stderr, "refcache-relay: cannot connect to %s: %s\n", front_ep, zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

/* One reply (blocking up to the receive timeout, or not at all). */
static int s_recv(void *sock, int flags, const char *front_ep)
{
    char buf[64];
    if (zmq_recv(sock, buf, sizeof buf, flags) >= 0)
        return 0;
    if (errno == EAGAIN && !(flags & ZMQ_DONTWAIT))
        fprintf(stderr,
                "refcache-relay: no reply from %s within %d ms (is 'refcache-relay serve' running?)\n",
                front_ep, RELAY_RECV_TIMEOUT);
    return -1;
}

static const char s_body[RELAY_BODY_BYTES] = "0123456789abcdef0123456789abcde";

/* A first round trip, not timed: the connection is up before the clock starts. */
static int s_warm(void *sock, const char *front_ep)
{
    if (zmq_send(sock, s_body, sizeof s_body, 0) < 0)
        return -1;
    return s_recv(sock, 0, front_ep);
}

static int s_load(void *sock, const char *front_ep, long n, long depth)
{
    if (s_warm(sock, front_ep))
        return 1;
    long sent = 0, got = 0;
    double t0 = s_now();
    while (got < n) {
        while (sent < n && sent - got < depth) {
            if (zmq_send(sock, s_body, sizeof s_body, 0) < 0)
                return 1;
            sent++;
        }
        if (s_recv(sock, 0, front_ep))
            return 1;
        got++;
        while (got < sent && s_recv(sock, ZMQ_DONTWAIT, front_ep) == 0)
            got++;
    }
    printf("relay_rps %.0f\n", (double) n / (s_now() - t0));
    return 0;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static int s_ping(void *sock, const char *front_ep, long n, long gap_us)
{
    double *rtt = malloc(sizeof *rtt * (size_t) n);
    if (!rtt) {
        fprintf(stderr, "refcache-relay: no memory for %ld samples\n", n);
        return 1;
    }
    int rc = s_warm(sock, front_ep) ? 1 : 0;
    struct timespec gap = {gap_us / 1000000, (gap_us % 1000000) * 1000};
    for (long i = 0; i < n && rc == 0; i++) {
        double t0 = s_now();
        if (zmq_send(sock, s_body, sizeof s_body, 0) < 0 || s_recv(sock, 0, front_ep)) {
            rc = 1;
            break;
        }
        rtt[i] = (s_now() - t0) * 1e6;
        if (gap_us > 0)
            nanosleep(&gap, NULL);
    }
    if (rc == 0) {
        qsort(rtt, (size_t) n, sizeof *rtt, s_cmp_double);
        printf("relay_rtt_us p50 %.1f p99 %.1f\n", rtt[n / 2], rtt[n * 99 / 100]);
    }
    free(rtt);
    return rc;
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(s_usage, stdout);
        return 0;
    }
    /* serve: a = workers; load: a = N, b = depth; ping: a = N, b = gap. */
    long a = 2, b = 0;
    const char *mode = argc >= 3 ? argv[1] : "";
    bool ok = false;
    if (!strcmp(mode, "serve"))
        ok = argc == 3 || (argc == 4 && s_count(argv[3], 1, &a));
    else if (!strcmp(mode, "load"))
        ok = argc == 5 && s_count(argv[3], 1, &a) && s_count(argv[4], 1, &b);
    else if (!strcmp(mode, "ping"))
        ok = (argc == 4 || argc == 5) && s_count(argv[3], 1, &a) && (argc == 4 || s_count(argv[4], 0, &b));
    if (!ok) {
        fputs(s_usage, stderr);
        return 2;
    }
    void *ctx = zmq_ctx_new();
    if (!ctx) {
        fprintf(stderr, "refcache-relay: no ZeroMQ context: %s\n", zmq_strerror(errno));
        return 1;
    }
    int rc;
    if (!strcmp(mode, "serve")) {
        rc = s_serve(ctx, argv[2], a);
    } else {
        void *sock = s_client(ctx, argv[2]);
        if (!sock)
            rc = 1;
        else if (!strcmp(mode, "load"))
            rc = s_load(sock, argv[2], a, b);
        else
            rc = s_ping(sock, argv[2], a, b);
        if (sock)
            zmq_close(sock);
    }
    zmq_ctx_term(ctx);
    return rc;
}
