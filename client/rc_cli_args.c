/* rc_cli_args: the refcache CLI's command line, from its rc_opts table,
 * into a plain struct (see rc_cli_args.h). */
#include "rc_buf.h"
#include "rc_cli_args.h"
#include "rc_opts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const cmd_names[] = {NULL,     "submit", "status", "wait",    "fetch",  "cancel", "delete",
                                        "stats",  "keygen", "list",   "workers", "events", "top"};

const char *rc_cli_cmd_name(rc_cmd_t cmd)
{
    if ((size_t) cmd >= sizeof cmd_names / sizeof cmd_names[0])
        return NULL;
    return cmd_names[cmd];
}

int rc_cli_exit_status(int rc)
{
    if (rc == 0)
        return RC_EXIT_OK;
    if (rc < 0)
        return RC_EXIT_TRANSPORT;
    return RC_EXIT_CODE_BASE + rc;
}

static int s_usage(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int s_usage(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return RC_EXIT_USAGE;
}

static int s_add_param(rc_cli_args_t *args, const char *kv, char *err, size_t errlen)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return s_usage(err, errlen, "parameter '%s' is not key=value", kv);
    if (rc_buf_grow_array(&args->params, &args->param_cap_, args->param_count + 1, sizeof *args->params) != 0)
        return s_usage(err, errlen, "out of memory");
    char *key = strndup(kv, (size_t) (eq - kv));
    if (!key)
        return s_usage(err, errlen, "out of memory");
    args->params[args->param_count].key = key;
    args->params[args->param_count].value = eq + 1;
    args->param_count++;
    return 0;
}

static rc_cmd_t s_command(const char *name)
{
    for (size_t i = 1; i < sizeof cmd_names / sizeof cmd_names[0]; i++)
        if (strcmp(name, cmd_names[i]) == 0)
            return (rc_cmd_t) i;
    return RC_CMD_NONE;
}

/* Scopes (rc_opts): before the command, and one per command. */
#define SCOPE_TOP    1u
#define SCOPE(cmd)   (1u << (cmd))
#define SCOPE_ALL    (SCOPE_TOP | 0x3FFEu)
#define SCOPE_NOWAIT (SCOPE_ALL & ~SCOPE(RC_CMD_WAIT))

typedef struct {
    rc_cli_args_t *args;
    uint64_t length; /* fetch --length, UINT64_MAX when not given */
    bool curve_server_alias;
    const char *states; /* list --state, parsed after */
} parse_t;

/* The CLI's options: one table for parsing and for --help. */
static size_t s_table(parse_t *p, rc_opt_t *t)
{
    rc_cli_args_t *a = p->args;
    size_t n = 0;
    t[n++] = (rc_opt_t) RC_OPT_STR_("endpoint", 'e', a->endpoint, "EP",
                                    "broker clients endpoint (default " RC_CLI_DEFAULT_ENDPOINT ")");
    t[n - 1].env = true;
    t[n++] = (rc_opt_t) RC_OPT_STR_("namespace", 0, a->namespace_name, "NS",
                                    "the namespace every command runs in (default: the default\n"
                                    "namespace). A task is found only in the namespace it was\n"
                                    "submitted in: status, wait, fetch, cancel and delete of it\n"
                                    "from any other answer NOT_FOUND");
    t[n - 1].env = true;
    t[n++] = (rc_opt_t) RC_OPT_FLAG_("json", 0, a->json,
                                     "print one JSON object per call (keys: code, message,\n"
                                     "ref_id, state, cancelled, progress_done, progress_total,\n"
                                     "attempt, result_size, result, error, ...)");
    t[n++] = (rc_opt_t) RC_OPT_UINT_("timeout", 0, a->timeout_ms, 0, 86400000, "MS",
                                     "how long to wait for each reply (default 5000; submit\n"
                                     "and wait add their own hold time)");
    t[n - 1].scope = SCOPE_NOWAIT;
    t[n++] =
        (rc_opt_t) RC_OPT_STR_("curve-secret", 0, a->curve_secret, "FILE", "this client's CURVE certificate");
    t[n - 1].env = true;
    t[n++] = (rc_opt_t) RC_OPT_STR_("broker-public", 0, a->curve_server, "FILE",
                                    "the broker's public certificate");
    t[n - 1].env = true;
    t[n - 1].old_env = "REFCACHE_CURVE_SERVER";
    /* The older name of --broker-public, kept for scripts. */
    t[n++] =
        (rc_opt_t) RC_OPT_STR_("curve-server", 0, a->curve_server, "FILE", "the same as --broker-public");
    t[n - 1].hidden = true;
    t[n++] = (rc_opt_t) RC_OPT_FLAG_("help", 'h', a->help, "this help; COMMAND --help for a command's own");
    t[n++] = (rc_opt_t) RC_OPT_FLAG_("version", 'V', a->version, "print the version");
    t[n - 1].scope = SCOPE_TOP;
    /* submit */
    unsigned sub = SCOPE(RC_CMD_SUBMIT);
    t[n++] = (rc_opt_t) RC_OPT_STR_("payload", 0, a->payload, "TEXT|@FILE",
                                    "payload bytes (@- reads standard input)");
    t[n - 1].scope = sub;
    t[n++] = (rc_opt_t) RC_OPT_UINT_("async-timeout", 0, a->async_timeout_ms, 0, UINT32_MAX, "MS",
                                     "hold the reply up to MS for the result (0: reply at once)");
    t[n - 1].scope = sub;
    t[n++] = (rc_opt_t) RC_OPT_UINT_("deadline", 0, a->deadline_ms, 0, UINT32_MAX, "MS",
                                     "fail with DEADLINE_EXCEEDED if not done in MS");
    t[n - 1].scope = sub;
    t[n++] = (rc_opt_t) RC_OPT_UINT_("retries", 0, a->retries, 0, UINT32_MAX, "N",
                                     "retries of a retryable failure or lost worker");
    t[n - 1].scope = sub;
    t[n++] =
        (rc_opt_t) RC_OPT_UINT_("ttl", 0, a->ttl_s, 0, UINT32_MAX, "S", "keep the terminal record S seconds");
    t[n - 1].scope = sub;
    t[n++] = (rc_opt_t) RC_OPT_FLAG_("no-cache", 0, a->no_cache, "never share this task through the cache");
    t[n - 1].scope = sub;
    t[n++] = (rc_opt_t) RC_OPT_STR_("request-key", 0, a->request_key, "K",
                                    "an idempotency key: the same submit again gets\nthe first one's ref_id");
    t[n - 1].scope = sub;
    /* submit, status, wait: what of the task is printed */
    unsigned shown = sub | SCOPE(RC_CMD_STATUS) | SCOPE(RC_CMD_WAIT);
    t[n++] = (rc_opt_t) RC_OPT_FLAG_("no-preview", 0, a->no_preview,
                                     "leave the result's bytes (or its preview) out of the output");
    t[n - 1].scope = shown;
    t[n++] = (rc_opt_t) RC_OPT_FLAG_("quiet", 'q', a->quiet,
                                     "print only the ref_id (submit) or nothing (wait); --json\n"
                                     "still prints its object");
    t[n - 1].scope = sub | SCOPE(RC_CMD_WAIT);
    /* wait */
    t[n++] = (rc_opt_t) RC_OPT_UINT_("timeout", 0, a->wait_ms, 0, UINT32_MAX, "MS",
                                     "wait up to MS for the task to be terminal (30000)");
    t[n - 1].scope = SCOPE(RC_CMD_WAIT);
    t[n++] = (rc_opt_t) RC_OPT_FLAG_("exit-status", 0, a->exit_status,
                                     "exit 0 only if the task ended COMPLETE: 3 FAILED,\n"
                                     "4 CANCELLED, 5 gave up waiting (still PENDING or PROCESSING)");
    t[n - 1].scope = SCOPE(RC_CMD_WAIT);
    /* fetch */
    unsigned fetch = SCOPE(RC_CMD_FETCH);
    t[n++] = (rc_opt_t) RC_OPT_UINT_("offset", 0, a->offset, 0, UINT64_MAX, "N", "first byte to read (0)");
    t[n - 1].scope = fetch;
    t[n++] = (rc_opt_t) RC_OPT_UINT_("length", 0, p->length, 0, UINT32_MAX, "N",
                                     "read one page of at most N bytes");
    t[n - 1].scope = fetch;
    t[n++] = (rc_opt_t) RC_OPT_STR_("output", 'o', a->out_file, "FILE", "write the bytes to FILE");
    t[n - 1].scope = fetch;
    /* list, events */
    unsigned list = SCOPE(RC_CMD_LIST), events = SCOPE(RC_CMD_EVENTS);
    t[n++] = (rc_opt_t) RC_OPT_STR_("state", 0, p->states, "S[,S...]",
                                    "only tasks in these states (PENDING, PROCESSING, COMPLETE,\n"
                                    "FAILED, CANCELLED)");
    t[n - 1].scope = list;
    t[n++] = (rc_opt_t) RC_OPT_STR_("function", 0, a->function, "F", "only tasks of function F");
    t[n - 1].scope = list | events;
    t[n++] = (rc_opt_t) RC_OPT_UINT_("limit", 0, a->limit, 1, 1000000, "N", "show at most N tasks (100)");
    t[n - 1].scope = list;
    t[n++] = (rc_opt_t) RC_OPT_UINT_("newer-than", 0, a->newer_than_s, 1, UINT32_MAX, "S",
                                     "only tasks accepted in the last S seconds");
    t[n - 1].scope = list;
    t[n++] = (rc_opt_t) RC_OPT_UINT_("older-than", 0, a->older_than_s, 1, UINT32_MAX, "S",
                                     "only tasks accepted more than S seconds ago");
    t[n - 1].scope = list;
    t[n++] = (rc_opt_t) RC_OPT_STR_("cursor", 0, a->cursor, "C", "continue from a page's next_cursor");
    t[n - 1].scope = list;
    t[n++] = (rc_opt_t) RC_OPT_FLAG_("all-namespaces", 'A', a->all_namespaces,
                                     "every namespace, not only --namespace's");
    t[n - 1].scope = list | events;
    t[n++] = (rc_opt_t) RC_OPT_STR_("ref", 0, a->ref, "REF", "only the events of task REF");
    t[n - 1].scope = events;
    t[n++] = (rc_opt_t) RC_OPT_UINT_("count", 0, a->count, 1, UINT64_MAX, "N",
                                     "exit after N events (default: until Ctrl-C)");
    t[n - 1].scope = events;
    /* top */
    t[n++] = (rc_opt_t) RC_OPT_UINT_("interval", 0, a->interval_ms, 100, 3600000, "MS",
                                     "refresh every MS (1000)");
    t[n - 1].scope = SCOPE(RC_CMD_TOP);
    t[n++] = (rc_opt_t) RC_OPT_UINT_("iterations", 'n', a->iterations, 1, UINT64_MAX, "N",
                                     "exit after N refreshes (default: until q or Ctrl-C)");
    t[n - 1].scope = SCOPE(RC_CMD_TOP);
    /* keygen */
    t[n++] = (rc_opt_t) RC_OPT_FLAG_("force", 0, a->force, "replace an existing key pair at PATH");
    t[n - 1].scope = SCOPE(RC_CMD_KEYGEN);
    return n;
}

#define TABLE_MAX 48

/* --state S[,S...] into a set of REFCACHE_STATE_BIT()s; 0 or a usage error. */
static int s_states(const char *list, unsigned *states, char *err, size_t errlen)
{
    static const char *const names[] = {NULL, "PENDING", "PROCESSING", "COMPLETE", "FAILED", "CANCELLED"};
    *states = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = 0;
        for (int s = 1; s <= 5; s++)
            if (n == strlen(names[s]) && strncasecmp(p, names[s], n) == 0)
                found = s;
        if (!found)
            return s_usage(err, errlen, "list: --state takes PENDING, PROCESSING, COMPLETE, FAILED or CANCELLED, not '%.*s'",
                           (int) n, p);
        *states |= REFCACHE_STATE_BIT(found);
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int s_operand(void *ctx, const char *arg, unsigned *scope, char *err, size_t errlen)
{
    parse_t *p = ctx;
    rc_cli_args_t *a = p->args;
    if (a->cmd == RC_CMD_NONE) {
        a->cmd = s_command(arg);
        if (a->cmd == RC_CMD_NONE)
            return s_usage(err, errlen, "unknown command '%s' (see refcache --help)", arg);
        *scope = SCOPE(a->cmd);
        return 0;
    }
    if (!a->operand) {
        a->operand = arg;
        return 0;
    }
    if (a->cmd == RC_CMD_SUBMIT)
        return s_add_param(a, arg, err, errlen);
    return s_usage(err, errlen, "%s: unexpected argument '%s'", rc_cli_cmd_name(a->cmd), arg);
}

int rc_cli_parse(int argc, char **argv, const char *env_endpoint, rc_cli_args_t *args, char *err,
                 size_t errlen)
{
    memset(args, 0, sizeof *args);
    args->endpoint = env_endpoint && *env_endpoint ? env_endpoint : RC_CLI_DEFAULT_ENDPOINT;
    args->timeout_ms = RC_CLI_DEFAULT_TIMEOUT;
    args->wait_ms = RC_CLI_DEFAULT_WAIT;
    if (err && errlen)
        err[0] = '\0';

    parse_t p = {.args = args, .length = UINT64_MAX};
    rc_opt_t table[TABLE_MAX];
    rc_opts_spec_t spec = {.program = "refcache",
                           .opts = table,
                           .count = s_table(&p, table),
                           .operand = s_operand,
                           .ctx = &p,
                           .scope = SCOPE_TOP};
    char why[384];
    int rc = rc_opts_parse(&spec, argc, argv, why, sizeof why);
    rc_opts_free(&spec);
    if (rc) {
        const char *cmd = rc_cli_cmd_name(args->cmd);
        if (cmd && strncmp(why, cmd, strlen(cmd)) != 0 && strstr(why, "option"))
            return s_usage(err, errlen, "%s: %s (see refcache %s --help)", cmd, why, cmd);
        if (strstr(why, "unknown option"))
            return s_usage(err, errlen, "%s (see refcache --help)", why);
        return s_usage(err, errlen, "%s", why);
    }
    if (p.length != UINT64_MAX) {
        args->length = (uint32_t) p.length;
        args->have_length = true;
    }
    if (p.states && s_states(p.states, &args->states, err, errlen))
        return RC_EXIT_USAGE;
    if (args->cmd == RC_CMD_NONE) {
        if (args->help || args->version)
            return 0;
        return s_usage(err, errlen, "no command given (see refcache --help)");
    }
    if (args->help)
        return 0;
    const char *cmd = rc_cli_cmd_name(args->cmd);
    if (args->cmd == RC_CMD_STATS || args->cmd == RC_CMD_LIST || args->cmd == RC_CMD_WORKERS ||
        args->cmd == RC_CMD_EVENTS || args->cmd == RC_CMD_TOP) {
        if (args->operand)
            return s_usage(err, errlen, "%s: unexpected argument '%s'", cmd, args->operand);
    } else if (!args->operand) {
        const char *what = args->cmd == RC_CMD_SUBMIT   ? "FUNCTION"
                           : args->cmd == RC_CMD_KEYGEN ? "PATH"
                                                        : "REF";
        return s_usage(err, errlen, "%s: missing %s (see refcache %s --help)", cmd, what, cmd);
    }
    if (!args->curve_secret != !args->curve_server)
        return s_usage(err, errlen,
                       "--curve-secret and --broker-public go together (or REFCACHE_CURVE_SECRET and "
                       "REFCACHE_BROKER_PUBLIC)");
    return 0;
}

void rc_cli_options_help(FILE *out, rc_cmd_t cmd)
{
    rc_cli_args_t dummy = {0};
    parse_t p = {.args = &dummy};
    rc_opt_t table[TABLE_MAX];
    rc_opts_spec_t spec = {.program = "refcache", .opts = table, .count = s_table(&p, table)};
    if (cmd == RC_CMD_NONE) {
        rc_opts_help(&spec, 0, out);
        rc_opts_help(&spec, SCOPE_TOP, out);
    } else {
        rc_opts_help(&spec, SCOPE(cmd), out);
    }
}

void rc_cli_args_free(rc_cli_args_t *args)
{
    if (!args)
        return;
    for (size_t i = 0; i < args->param_count; i++)
        free((char *) args->params[i].key);
    free(args->params);
    args->params = NULL;
    args->param_count = args->param_cap_ = 0;
}
