/* rc_cli_top: `refcache top [--interval MS] [-n N] [-A]`, a live view of a
 * broker refreshed every second: tasks by state, rates, the busiest
 * functions (runs per second, mean run and wait), the workers and their
 * load. q or Ctrl-C quits, leaving the terminal as it was. Returns the exit
 * status. */
#ifndef RC_CLI_TOP_H
#define RC_CLI_TOP_H

#include "rc_cli.h"

int rc_cli_top_run(rc_cli_t *cli);

#endif
