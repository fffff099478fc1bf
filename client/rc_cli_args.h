/* rc_cli_args: parses the refcache CLI's command line into a plain struct.
 * Pure (no I/O), so that unit tests can drive it. */
#ifndef RC_CLI_ARGS_H
#define RC_CLI_ARGS_H

#include "refcache.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses of the CLI (documented in --help). */
enum {
    RC_EXIT_OK = 0,
    RC_EXIT_TRANSPORT = 1, /* timeout, transport, bad reply, local I/O */
    RC_EXIT_USAGE = 2,
    RC_EXIT_CODE_BASE = 10 /* + the reply's non-OK status code */
};

#define RC_CLI_DEFAULT_ENDPOINT "tcp://127.0.0.1:5570"
#define RC_CLI_DEFAULT_TIMEOUT  5000
#define RC_CLI_DEFAULT_WAIT     30000

typedef enum {
    RC_CMD_NONE = 0,
    RC_CMD_SUBMIT,
    RC_CMD_STATUS,
    RC_CMD_WAIT,
    RC_CMD_FETCH,
    RC_CMD_CANCEL,
    RC_CMD_DELETE,
    RC_CMD_STATS,
    RC_CMD_KEYGEN,
    RC_CMD_LIST,
    RC_CMD_WORKERS,
    RC_CMD_EVENTS,
    RC_CMD_TOP
} rc_cmd_t;

typedef struct {
    /* global */
    const char *endpoint;
    bool json;
    int timeout_ms;
    const char *curve_secret;
    const char *curve_server;
    /* --namespace NS (NULL if not given; the CLI then reads
     * REFCACHE_NAMESPACE): the namespace every command runs in */
    const char *namespace_name;
    bool help;
    bool version;
    rc_cmd_t cmd;
    /* the command's operand: FUNCTION (submit), REF, or PATH (keygen) */
    const char *operand;
    /* submit */
    refcache_param_t *params; /* keys are owned copies; values point into argv */
    size_t param_count;
    size_t param_cap_; /* internal: room in params */
    const char *payload; /* TEXT, or @FILE (read by the CLI) */
    uint32_t async_timeout_ms;
    uint32_t deadline_ms;
    uint32_t retries;
    uint32_t ttl_s;
    bool no_cache;
    /* wait */
    uint32_t wait_ms;
    /* fetch */
    uint64_t offset;
    uint32_t length;
    bool have_length;
    const char *out_file;
    /* list */
    unsigned states; /* --state S[,S...]: REFCACHE_STATE_BIT()s; 0: every state */
    const char *function;
    uint32_t limit;  /* tasks to show in all (pages as needed); 0: 100 */
    const char *cursor;
    bool all_namespaces; /* list, events */
    uint64_t newer_than_s, older_than_s;
    /* events: --ref REF (and --function, --all-namespaces); --count N: exit after N */
    const char *ref;
    uint64_t count;
    /* top: --interval MS, --iterations N (0: until q or Ctrl-C) */
    uint32_t interval_ms;
    uint64_t iterations;
} rc_cli_args_t;

/* Parses argv (argv[0] is the program) with rc_opts: options may come
 * before or after the command; the environment gives REFCACHE_ENDPOINT,
 * REFCACHE_NAMESPACE, REFCACHE_CURVE_SECRET and REFCACHE_BROKER_PUBLIC
 * (formerly REFCACHE_CURVE_SERVER, still read with a note). env_endpoint is
 * the endpoint's default (NULL: RC_CLI_DEFAULT_ENDPOINT). Returns 0, or RC_EXIT_USAGE with a one-line message
 * in err. Free the result with rc_cli_args_free (also after an error). */
int rc_cli_parse(int argc, char **argv, const char *env_endpoint, rc_cli_args_t *args, char *err,
                 size_t errlen);

/* Writes the option lines of --help: the global options for RC_CMD_NONE,
 * else those of the command (from the table rc_cli_parse uses). */
void rc_cli_options_help(FILE *out, rc_cmd_t cmd);

/* Frees what parsing allocated. */
void rc_cli_args_free(rc_cli_args_t *args);

/* The command's name ("submit"), or NULL for RC_CMD_NONE. */
const char *rc_cli_cmd_name(rc_cmd_t cmd);

/* The exit status for a call's result (0, a status code, or a negative
 * library error). */
int rc_cli_exit_status(int rc);

#endif
