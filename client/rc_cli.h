/* rc_cli: what the refcache CLI's commands share (cli.c implements it): a
 * run's arguments and client, the one-line error and exit status of a call,
 * and the JSON object of a reply and of a task. Used by the commands of
 * rc_cli_observe.c. */
#ifndef RC_CLI_H
#define RC_CLI_H

#include <stdbool.h>

#include "rc_cli_args.h"
#include "rc_json.h"
#include "refcache.h"

/* Everything one run needs, so that helpers take one argument. */
struct rc_cli {
    rc_cli_args_t *args;
    refcache_client_t *client;
    bool tty; /* stderr is a terminal and the output is for a person: progress bars */
};
typedef struct rc_cli rc_cli_t;

/* Prints the one-line error of a call that did not end OK (with the
 * diagnosis of a silent broker) and returns the exit status. */
int rc_cli_report(rc_cli_t *cli, int rc);

/* A JSON object with the reply's code and message; NULL on out of memory. */
rc_json_t *rc_cli_json_start(rc_cli_t *cli, int rc);

/* Prints the object (one line). */
void rc_cli_json_emit(rc_json_t *json);

/* A task's keys, without result bytes. */
void rc_cli_json_task(rc_json_t *json, const refcache_task_view_t *t);

#endif
