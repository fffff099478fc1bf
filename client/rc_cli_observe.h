/* rc_cli_observe: the CLI's commands for seeing inside the broker:
 *   refcache list [--state S[,S]] [--function F] [--limit N] [-A] [--newer-than S] [--older-than S]
 *   refcache workers
 *   refcache events [--ref REF] [--function F] [-A] [--count N]
 * each human-readable, or with --json one object (list, workers) or one
 * object per event (events). Each returns the exit status. */
#ifndef RC_CLI_OBSERVE_H
#define RC_CLI_OBSERVE_H

#include "rc_cli.h"

int rc_cli_observe_list(rc_cli_t *cli);
int rc_cli_observe_workers(rc_cli_t *cli);
int rc_cli_observe_events(rc_cli_t *cli);

#endif
