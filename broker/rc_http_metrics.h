/* rc_http_metrics: the broker's state in the Prometheus text format
 * (version 0.0.4), as /metrics serves it: every Stats counter and gauge
 * (refcache_*, with HELP and TYPE), the per-function histograms of queue,
 * run and cancel-to-stop time in seconds, and each worker's load. It asks
 * the broker as a client does (Stats, Metrics, Workers). */
#ifndef RC_HTTP_METRICS_H
#define RC_HTTP_METRICS_H

#include "rc_buf.h"
#include "refcache.h"

/* Appends the text to out: 0, a status code of the broker's or a negative
 * library error. */
int rc_http_metrics_text(refcache_client_t *client, int timeout_ms, rc_buf_t *out);

#endif
