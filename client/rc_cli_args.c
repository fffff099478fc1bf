#include "rc_cli_args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const cmd_names[] = {NULL,     "submit", "status", "wait",  "fetch",
                                        "cancel", "delete", "stats",  "keygen"};

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

/* Strict unsigned decimal parse: digits only, no sign, within max. */
static bool s_parse_u64(const char *text, uint64_t max, uint64_t *out)
{
    if (!text || !*text)
        return false;
    for (const char *p = text; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

/* Takes the value of option argv[*i] (the next argument). */
static const char *s_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static int s_number(int argc, char **argv, int *i, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
    const char *opt = argv[*i];
    const char *v = s_value(argc, argv, i);
    if (!v)
        return s_usage(err, errlen, "%s needs a value", opt);
    if (!s_parse_u64(v, max, out))
        return s_usage(err, errlen, "%s: '%s' is not a number from 0 to %llu", opt, v,
                       (unsigned long long) max);
    return 0;
}

static int s_add_param(rc_cli_args_t *args, const char *kv, char *err, size_t errlen)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return s_usage(err, errlen, "parameter '%s' is not key=value", kv);
    refcache_param_t *grown = realloc(args->params, (args->param_count + 1) * sizeof *grown);
    if (!grown)
        return s_usage(err, errlen, "out of memory");
    args->params = grown;
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

/* Options every position accepts (before or after the command). */
static int s_global(rc_cli_args_t *args, int argc, char **argv, int *i, bool before_cmd, bool *matched,
                    char *err, size_t errlen)
{
    const char *a = argv[*i];
    *matched = true;
    if (strcmp(a, "--json") == 0) {
        args->json = true;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
        args->help = true;
    } else if (strcmp(a, "--endpoint") == 0 || strcmp(a, "-e") == 0) {
        if (!(args->endpoint = s_value(argc, argv, i)))
            return s_usage(err, errlen, "%s needs a value", a);
    } else if (strcmp(a, "--namespace") == 0) {
        if (!(args->namespace_name = s_value(argc, argv, i)))
            return s_usage(err, errlen, "%s needs a value", a);
    } else if (strcmp(a, "--curve-secret") == 0) {
        if (!(args->curve_secret = s_value(argc, argv, i)))
            return s_usage(err, errlen, "%s needs a value", a);
    } else if (strcmp(a, "--broker-public") == 0 || strcmp(a, "--curve-server") == 0) {
        /* --broker-public, as refcache-worker names it; --curve-server is
         * the older name, kept. */
        if (!(args->curve_server = s_value(argc, argv, i)))
            return s_usage(err, errlen, "%s needs a value", a);
    } else if ((before_cmd || args->cmd != RC_CMD_WAIT) && strcmp(a, "--timeout") == 0) {
        uint64_t v;
        int rc = s_number(argc, argv, i, 86400000, &v, err, errlen);
        if (rc)
            return rc;
        args->timeout_ms = (int) v;
    } else if (before_cmd && strcmp(a, "--version") == 0) {
        args->version = true;
    } else {
        *matched = false;
    }
    return 0;
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

    int i = 1;
    for (; i < argc; i++) {
        bool matched;
        int rc = s_global(args, argc, argv, &i, true, &matched, err, errlen);
        if (rc)
            return rc;
        if (matched)
            continue;
        if (argv[i][0] == '-')
            return s_usage(err, errlen, "unknown option %s (see refcache --help)", argv[i]);
        break;
    }
    if (i >= argc) {
        if (args->help || args->version)
            return 0;
        return s_usage(err, errlen, "no command given (see refcache --help)");
    }
    args->cmd = s_command(argv[i]);
    if (args->cmd == RC_CMD_NONE)
        return s_usage(err, errlen, "unknown command '%s' (see refcache --help)", argv[i]);
    const char *cmd = argv[i++];

    for (; i < argc; i++) {
        const char *a = argv[i];
        bool matched;
        int rc = s_global(args, argc, argv, &i, false, &matched, err, errlen);
        if (rc)
            return rc;
        if (matched)
            continue;
        uint64_t v = 0;
        if (args->cmd == RC_CMD_SUBMIT && strcmp(a, "--payload") == 0) {
            if (!(args->payload = s_value(argc, argv, &i)))
                return s_usage(err, errlen, "--payload needs a value");
        } else if (args->cmd == RC_CMD_SUBMIT && strcmp(a, "--async-timeout") == 0) {
            if ((rc = s_number(argc, argv, &i, UINT32_MAX, &v, err, errlen)))
                return rc;
            args->async_timeout_ms = (uint32_t) v;
        } else if (args->cmd == RC_CMD_SUBMIT && strcmp(a, "--deadline") == 0) {
            if ((rc = s_number(argc, argv, &i, UINT32_MAX, &v, err, errlen)))
                return rc;
            args->deadline_ms = (uint32_t) v;
        } else if (args->cmd == RC_CMD_SUBMIT && strcmp(a, "--retries") == 0) {
            if ((rc = s_number(argc, argv, &i, UINT32_MAX, &v, err, errlen)))
                return rc;
            args->retries = (uint32_t) v;
        } else if (args->cmd == RC_CMD_SUBMIT && strcmp(a, "--ttl") == 0) {
            if ((rc = s_number(argc, argv, &i, UINT32_MAX, &v, err, errlen)))
                return rc;
            args->ttl_s = (uint32_t) v;
        } else if (args->cmd == RC_CMD_SUBMIT && strcmp(a, "--no-cache") == 0) {
            args->no_cache = true;
        } else if (args->cmd == RC_CMD_WAIT && strcmp(a, "--timeout") == 0) {
            if ((rc = s_number(argc, argv, &i, UINT32_MAX, &v, err, errlen)))
                return rc;
            args->wait_ms = (uint32_t) v;
        } else if (args->cmd == RC_CMD_FETCH && strcmp(a, "--offset") == 0) {
            if ((rc = s_number(argc, argv, &i, UINT64_MAX, &v, err, errlen)))
                return rc;
            args->offset = v;
        } else if (args->cmd == RC_CMD_FETCH && strcmp(a, "--length") == 0) {
            if ((rc = s_number(argc, argv, &i, UINT32_MAX, &v, err, errlen)))
                return rc;
            args->length = (uint32_t) v;
            args->have_length = true;
        } else if (args->cmd == RC_CMD_FETCH && (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)) {
            if (!(args->out_file = s_value(argc, argv, &i)))
                return s_usage(err, errlen, "%s needs a file name", a);
        } else if (a[0] == '-' && a[1] != '\0') {
            return s_usage(err, errlen, "%s: unknown option %s (see refcache %s --help)", cmd, a, cmd);
        } else if (!args->operand) {
            args->operand = a;
        } else if (args->cmd == RC_CMD_SUBMIT) {
            if ((rc = s_add_param(args, a, err, errlen)))
                return rc;
        } else {
            return s_usage(err, errlen, "%s: unexpected argument '%s'", cmd, a);
        }
    }
    if (args->help)
        return 0;
    if (args->cmd == RC_CMD_STATS) {
        if (args->operand)
            return s_usage(err, errlen, "stats: unexpected argument '%s'", args->operand);
    } else if (!args->operand) {
        const char *what = args->cmd == RC_CMD_SUBMIT   ? "FUNCTION"
                           : args->cmd == RC_CMD_KEYGEN ? "PATH"
                                                        : "REF";
        return s_usage(err, errlen, "%s: missing %s (see refcache %s --help)", cmd, what, cmd);
    }
    /* Each may come from its flag or its environment variable. */
    const char *secret = args->curve_secret ? args->curve_secret : getenv("REFCACHE_CURVE_SECRET");
    const char *server = args->curve_server ? args->curve_server : getenv("REFCACHE_CURVE_SERVER");
    if (!secret != !server)
        return s_usage(err, errlen,
                       "--curve-secret and --broker-public go together (or REFCACHE_CURVE_SECRET and "
                       "REFCACHE_CURVE_SERVER)");
    return 0;
}

void rc_cli_args_free(rc_cli_args_t *args)
{
    if (!args)
        return;
    for (size_t i = 0; i < args->param_count; i++)
        free((char *) args->params[i].key);
    free(args->params);
    args->params = NULL;
    args->param_count = 0;
}
