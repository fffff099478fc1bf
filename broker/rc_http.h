/* rc_http: the broker's HTTP server (refcache-broker --http HOST:PORT), a
 * read-only window on it for monitoring and people:
 *
 *   GET /metrics      the Prometheus text format (rc_http_metrics)
 *   GET /             the status page: one self-contained HTML page whose
 *                     scripts poll the three below
 *   GET /api/status   Stats, the workers and the functions, as JSON
 *   GET /api/events   the latest transitions but progress steps (a watch of the broker's,
 *                     started by the first such request, ended after 30 s
 *                     without one), as JSON
 *   GET /api/task?ref=REF   one task, in any namespace, as JSON
 *
 * It runs in a thread of its own (libmicrohttpd's) and never touches the
 * broker's state: it is a client of the broker over inproc, with the client
 * library, like any other (a connection without a key: it sees everything,
 * so it binds loopback unless told --insecure). */
#ifndef RC_HTTP_H
#define RC_HTTP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct rc_http rc_http_t;

/* Serves on addr ("HOST:PORT"; PORT * or 0 picks a free one) as a client of
 * the broker at clients_endpoint. A non-loopback HOST needs insecure; a
 * wildcard one (0.0.0.0, ::) is refused. NULL with a one-line message. */
rc_http_t *rc_http_new(const char *addr, bool insecure, const char *clients_endpoint, char *err,
                       size_t errlen);

/* "http://HOST:PORT/", the port resolved. */
const char *rc_http_url(const rc_http_t *self);

/* Stops the server and frees it; accepts NULL and clears the pointer. */
void rc_http_destroy(rc_http_t **self_p);

#endif
