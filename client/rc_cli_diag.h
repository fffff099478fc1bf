/* rc_cli_diag: why a broker did not answer the refcache CLI. ZeroMQ hides
 * the connection from its user (it connects in the background and retries
 * for ever), so after a timeout the CLI looks at the endpoint itself — does
 * anything accept a connection there? — and tells the user which endpoint
 * was tried and what to check. */
#ifndef RC_CLI_DIAG_H
#define RC_CLI_DIAG_H

#include <stdbool.h>
#include <stdio.h>

/* Writes the explanation for "no reply from endpoint" (timeout_ms: the --timeout)
 * (several lines, each starting "refcache: "), after probing the endpoint:
 * tcp://HOST:PORT by a TCP connection (refused, accepted, no answer, a
 * host that does not resolve), ipc://PATH by the socket file. curve: the
 * client used CURVE keys (a wrong key also ends in silence). */
void rc_cli_diag_no_reply(FILE *out, const char *endpoint, int timeout_ms, bool curve);

#endif
