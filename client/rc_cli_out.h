/* rc_cli_out: the CLI's shared output — a run's arguments and client,
 * the one-line error and exit status of a call, and the JSON of a reply and
 * of a task. Used by cli.c and the commands in rc_cli_observe.c and
 * rc_cli_top.c. */
#ifndef RC_CLI_OUT_H
#define RC_CLI_OUT_H

#include "rc_cli_args.h"
#include "rc_json.h"
#include "refcache.h"

/* Everything one run needs, so that helpers take one argument. */
typedef struct {
    rc_cli_args_t *args;
    refcache_client_t *client;
} rc_cli_t;

/* Prints "refcache: " and the message to stderr; returns RC_EXIT_TRANSPORT. */
int rc_cli_out_fail(const char *fmt, const char *a, const char *b);

/* Prints the one-line error of a call that did not end OK and returns the
 * exit status. */
int rc_cli_out_report(rc_cli_t *cli, int rc);

/* A JSON object with the reply's code and message; NULL on out of memory. */
rc_json_t *rc_cli_out_json_start(rc_cli_t *cli, int rc);

/* Prints the object (one line). */
void rc_cli_out_json_emit(rc_json_t *json);

/* A task's keys (submit: with cache_hit and deduplicated). */
void rc_cli_out_json_task(rc_json_t *json, const refcache_task_view_t *t, bool submit);

#endif
