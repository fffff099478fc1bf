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
    /* wait --exit-status: the task did not end COMPLETE */
    RC_EXIT_TASK_FAILED = 3,
    RC_EXIT_TASK_CANCELLED = 4,
    RC_EXIT_STILL_RUNNING = 5, /* gave up waiting: still PENDING or PROCESSING */
    RC_EXIT_CODE_BASE = 10,    /* + the reply's non-OK status code */
    RC_EXIT_SIGNAL_BASE = 128  /* + the signal that interrupted the call (130: SIGINT) */
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
    const char *request_key;
    /* submit, status, wait: leave the result's bytes out; submit, wait:
     * print only the ref_id (submit) or nothing (wait) */
    bool no_preview;
    bool quiet;
    /* wait */
    uint32_t wait_ms;
    bool exit_status; /* the task's end in the exit status (RC_EXIT_TASK_*) */
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
    /* keygen: replace an existing key pair */
    bool force;
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
