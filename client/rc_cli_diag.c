/* rc_cli_diag: probes an endpoint that did not answer (see the header). */
#include "rc_cli_diag.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROBE_MS 1000 /* how long a TCP connection may take before the probe gives up */

typedef enum { PROBE_ACCEPTED, PROBE_REFUSED, PROBE_SILENT, PROBE_UNRESOLVED, PROBE_UNKNOWN } probe_t;

/* One non-blocking connect to addr, waiting up to PROBE_MS. */
static probe_t s_connect(const struct addrinfo *ai, int *error)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        *error = errno;
        return PROBE_UNKNOWN;
    }
    probe_t result = PROBE_UNKNOWN;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        result = PROBE_ACCEPTED;
    } else if (errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n = poll(&p, 1, PROBE_MS);
        if (n == 0) {
            result = PROBE_SILENT;
        } else if (n > 0) {
            int so = 0;
            socklen_t len = sizeof so;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len);
            result = so == 0 ? PROBE_ACCEPTED : so == ECONNREFUSED ? PROBE_REFUSED : PROBE_UNKNOWN;
            *error = so;
        } else {
            *error = errno;
        }
    } else {
        *error = errno;
        result = errno == ECONNREFUSED ? PROBE_REFUSED : PROBE_UNKNOWN;
    }
    close(fd);
    return result;
}

/* tcp://HOST:PORT (HOST may be [v6]); the first address that accepts wins. */
static probe_t s_probe_tcp(const char *hostport, char *what, size_t len)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport || (size_t) (colon - hostport) >= sizeof host)
        return PROBE_UNKNOWN;
    const char *h = hostport, *port = colon + 1;
    size_t hl = (size_t) (colon - hostport);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(what, len, "%s port %s", host, port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(what, len, "%s: %s", host, gai_strerror(gai));
        return PROBE_UNRESOLVED;
    }
    probe_t best = PROBE_UNKNOWN;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int error = 0;
        probe_t p = s_connect(ai, &error);
        if (p == PROBE_ACCEPTED) {
            best = p;
            break;
        }
        if (p == PROBE_REFUSED || best == PROBE_UNKNOWN)
            best = p;
    }
    freeaddrinfo(res);
    return best;
}

void rc_cli_diag_no_reply(FILE *out, const char *endpoint, int timeout_ms, bool curve)
{
    /* The call waited timeout_ms beyond any time it asked the broker to hold
     * its reply (submit --async-timeout, wait --timeout). */
    fprintf(out, "refcache: no reply from %s (--timeout %d ms)\n", endpoint, timeout_ms);
    char what[320] = "";
    probe_t p = PROBE_UNKNOWN;
    if (strncmp(endpoint, "tcp://", 6) == 0) {
        p = s_probe_tcp(endpoint + 6, what, sizeof what);
    } else if (strncmp(endpoint, "ipc://", 6) == 0) {
        struct stat st;
        snprintf(what, sizeof what, "%s", endpoint + 6);
        p = stat(endpoint + 6, &st) != 0 ? PROBE_REFUSED
            : S_ISSOCK(st.st_mode)       ? PROBE_ACCEPTED
                                         : PROBE_UNKNOWN;
    }
    switch (p) {
    case PROBE_REFUSED:
        fprintf(out,
                "refcache: nothing accepts connections at %s: is refcache-broker running, and is this "
                "its clients endpoint?\n",
                what);
        break;
    case PROBE_ACCEPTED:
        fprintf(out,
                "refcache: something accepts connections at %s but did not answer as a refcache broker: "
                "is it the broker's clients endpoint (not its workers or control one)?\n",
                what);
        if (curve)
            fprintf(out, "refcache: with CURVE, also check that --broker-public is this broker's public "
                         "certificate and that the broker allows this client's key (--clients-allowed)\n");
        else
            fprintf(out, "refcache: a broker started with --curve-secret answers only clients with keys "
                         "(--curve-secret, --broker-public)\n");
        break;
    case PROBE_SILENT:
        fprintf(out,
                "refcache: %s did not answer a TCP connection within %d ms: is the host up, and does "
                "a firewall let the port through?\n",
                what, PROBE_MS);
        break;
    case PROBE_UNRESOLVED:
        fprintf(out, "refcache: the host does not resolve (%s)\n", what);
        break;
    case PROBE_UNKNOWN:
        fprintf(out, "refcache: is refcache-broker running, and is this its clients endpoint?\n");
        break;
    }
    fprintf(out, "refcache: the endpoint comes from --endpoint or REFCACHE_ENDPOINT (default "
                 "tcp://127.0.0.1:5570); refcache-broker prints its own as 'clients EP' when it starts\n");
}
