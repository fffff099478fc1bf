/* refcache: the command-line client. Parsing is in rc_cli_args, JSON in
 * rc_json, what a person reads in rc_cli_show, the diagnosis of a silent
 * broker in rc_cli_diag, the protocol in rc_client; this file runs one
 * command and prints its outcome. */
#include "rc_buf.h"
#include "rc_cli.h"
#include "rc_cli_args.h"
#include "rc_cli_diag.h"
#include "rc_cli_observe.h"
#include "rc_cli_show.h"
#include "rc_cli_top.h"
#include "rc_common.h"
#include "rc_json.h"
#include "rc_json_info.h"
#include "refcache.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* While waiting or fetching on a terminal, the progress bar is redrawn this
 * often (and a Wait is asked for this long at a time). */
#define RC_CLI_BAR_MS 250

static const char *const global_help =
    "usage: refcache [--endpoint EP] [--namespace NS] [--json] [--timeout MS] COMMAND [ARGS...]\n"
    "\n"
    "Talks to a refcache broker.\n"
    "\n"
    "commands:\n"
    "  submit FUNCTION [key=value ...] [options]   start a task (see refcache submit --help)\n"
    "  status REF                                  show a task's state and progress\n"
    "  wait REF [--timeout MS]                     wait until a task is terminal\n"
    "  fetch REF [--offset N] [--length N] [-o FILE]  read a result (all pages by default)\n"
    "  cancel REF                                  cancel a PENDING or PROCESSING task\n"
    "  delete REF                                  drop a terminal task and its result\n"
    "  stats                                       show the broker's counters\n"
    "  list [--state S] [--function F] [--limit N] the newest tasks, with their state\n"
    "  workers                                     the worker threads, their load and functions\n"
    "  events [--ref REF]                          the live stream of transitions (Ctrl-C ends it)\n"
    "  top                                         a live view: counts, rates, functions, workers\n"
    "  keygen PATH                                 write a CURVE certificate: PATH and PATH_secret\n"
    "\n"
    "global options (before or after the command; [the environment variable]):\n";

static const char *const exit_help =
    "\n"
    "exit status:\n"
    "  0       the reply's code is OK\n"
    "  1       no usable reply: timeout, transport error, bad reply, or a local file error\n"
    "  2       usage error\n"
    "  3, 4, 5 wait --exit-status: the task ended FAILED (3) or CANCELLED (4), or\n"
    "          it was still PENDING or PROCESSING when the wait gave up (5)\n"
    "  10+N    the reply's status code N was not OK, e.g. 15 = NOT_FOUND (5),\n"
    "          11 = CANCELLED, 13 = INVALID_ARGUMENT, 19 = FAILED_PRECONDITION,\n"
    "          22 = UNIMPLEMENTED, 24 = UNAVAILABLE\n"
    "  130     interrupted by Ctrl-C (SIGINT; 128 + the signal: 143 for SIGTERM)\n"
    "  Without --exit-status a task's own state (FAILED, CANCELLED) does not change\n"
    "  the exit status of status/wait: the call itself succeeded; read `state`.\n"
    "\n"
    "On a terminal, wait and fetch of long work draw a progress bar on stderr\n"
    "(not with --json or --quiet, nor when stderr is not a terminal).\n";

/* A command's help before its option lines (rc_cli_options_help). */
static const char *s_command_help(rc_cmd_t cmd)
{
    switch (cmd) {
    case RC_CMD_SUBMIT:
        return "usage: refcache submit FUNCTION [key=value ...] [options]\n"
               "\n"
               "Starts FUNCTION(params, payload). Built-in functions: echo, sleep ms= step_ms=,\n"
               "primes n=, spin iterations= step=, fail message= retryable=0|1. --namespace NS\n"
               "(a global option) names the task's and the cache's namespace; later commands on\n"
               "the task need the same one.\n"
               "\n";
    case RC_CMD_STATUS:
        return "usage: refcache status REF\n\n"
               "Shows a task's state, progress, attempt, times (local time, and how long ago)\n"
               "and result. --json gives the times as microseconds since the epoch.\n\n";
    case RC_CMD_WAIT:
        return "usage: refcache wait REF [--timeout MS] [--exit-status]\n\n"
               "Waits until the task is terminal, then shows it like status.\n"
               "If the time passes first, it shows the current (non-terminal) state, exit 0\n"
               "(5 with --exit-status). On a terminal it draws a progress bar meanwhile.\n\n";
    case RC_CMD_FETCH:
        return "usage: refcache fetch REF [--offset N] [--length N] [-o FILE]\n\n"
               "Reads a COMPLETE task's result. Without --length it reads every page from the\n"
               "offset to the end. The bytes go to standard output (raw), or to FILE with -o;\n"
               "with --json they are the `result` string.\n\n";
    case RC_CMD_CANCEL:
        return "usage: refcache cancel REF\n\n"
               "Cancels a PENDING or PROCESSING task. `cancelled` is true only if this call\n"
               "cancelled it; a second cancel prints false. Unknown REF: NOT_FOUND (exit 15).\n\n";
    case RC_CMD_DELETE:
        return "usage: refcache delete REF\n\nDrops a terminal task and its result now.\n\n";
    case RC_CMD_STATS:
        return "usage: refcache stats\n\nShows the broker's counters.\n\n";
    case RC_CMD_KEYGEN:
        return "usage: refcache keygen PATH [--force]\n\n"
               "Writes a new CURVE certificate: PATH (public) and PATH_secret (mode 0600).\n"
               "An existing PATH or PATH_secret is left alone (the broker or client using it\n"
               "would be locked out) unless --force is given.\n\n";
    case RC_CMD_LIST:
        return "usage: refcache list [--state S[,S...]] [--function F] [--limit N] [options]\n\n"
               "Shows the newest tasks (of --namespace's namespace, or of every one with -A),\n"
               "newest first: ref_id, state, function, age, attempt, progress. Under CURVE a\n"
               "client sees only its own tasks (an admin key sees all).\n\n";
    case RC_CMD_WORKERS:
        return "usage: refcache workers\n\n"
               "Shows the broker's worker threads: id, host and pid, whether ready, tasks held\n"
               "of its credit, tasks ended, since when, when last heard, functions. Under CURVE\n"
               "it needs an admin key.\n\n";
    case RC_CMD_EVENTS:
        return "usage: refcache events [--ref REF] [--function F] [-A] [--count N]\n\n"
               "Streams every transition as it happens: the task, its function, the event,\n"
               "old and new state, attempt, worker, and who asked (a CURVE key's name or a\n"
               "connection); a cancel's stop shows when the worker confirms it. A watcher\n"
               "too slow to keep up is told how many events it lost. Ctrl-C ends it (exit 0).\n\n";
    case RC_CMD_TOP:
        return "usage: refcache top [--interval MS] [-n N]\n\n"
               "A live view, refreshed every second: tasks by state, rates, the busiest\n"
               "functions, the workers. q or Ctrl-C quits and leaves the terminal clean.\n\n";
    default:
        return global_help;
    }
}

static void s_help(rc_cmd_t cmd)
{
    fputs(s_command_help(cmd), stdout);
    rc_cli_options_help(stdout, cmd);
    if (cmd == RC_CMD_NONE)
        fputs(exit_help, stdout);
}

/* Everything one run needs (rc_cli.h), so that helpers take one argument. */
typedef struct rc_cli cli_t;

/* The signal that interrupted a call: the CLI exits 128 + it. */
static volatile sig_atomic_t s_signal;

/* Replaces CZMQ's handler: the same flag for the library (a blocking call
 * returns REFCACHE_EINTR), and the signal's number for the exit status. */
static void s_on_signal(int sig)
{
    s_signal = sig;
    zsys_interrupted = 1;
}

static int s_fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "refcache: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return RC_EXIT_TRANSPORT;
}

/* Prints the one-line error for a call that did not end OK and returns the
 * exit status. */
static int s_report(cli_t *cli, int rc)
{
    if (rc == 0)
        return RC_EXIT_OK;
    if (rc == REFCACHE_EINTR) {
        fprintf(stderr, "refcache: interrupted\n");
        return RC_EXIT_SIGNAL_BASE + (s_signal ? s_signal : SIGINT);
    }
    if (rc == REFCACHE_ETIMEOUT) {
        rc_cli_diag_no_reply(stderr, cli->args->endpoint, cli->args->timeout_ms,
                             cli->args->curve_secret != NULL);
    } else if (rc < 0) {
        fprintf(stderr, "refcache: %s (%s)\n", refcache_strerror(rc), cli->args->endpoint);
    } else {
        const char *msg = refcache_client_message(cli->client);
        fprintf(stderr, "refcache: %s%s%s\n", rc_code_name(rc), *msg ? ": " : "", msg);
    }
    return rc_cli_exit_status(rc);
}

static void s_json_emit(rc_json_t *json)
{
    const char *text = json ? rc_json_finish(json) : NULL;
    if (text)
        printf("%s\n", text);
    else
        fprintf(stderr, "refcache: out of memory writing JSON\n");
}

static rc_json_t *s_json_start(cli_t *cli, int rc)
{
    rc_json_t *json = rc_json_new();
    if (json) {
        rc_json_str(json, "code", rc_code_name(rc));
        rc_json_str(json, "message", refcache_client_message(cli->client));
    }
    return json;
}

static void s_json_task(rc_json_t *json, const refcache_task_view_t *t, bool submit, bool preview)
{
    rc_json_str(json, "ref_id", t->ref_id);
    rc_json_str(json, "state", rc_state_name(t->state));
    rc_json_uint(json, "progress_done", t->progress_done);
    rc_json_uint(json, "progress_total", t->progress_total);
    rc_json_uint(json, "attempt", t->attempt);
    rc_json_uint(json, "result_size", t->result_size);
    if (preview && (t->result_len || t->state == REFCACHE_STATE_COMPLETE))
        rc_json_bytes(json, "result", t->result, t->result_len);
    rc_json_bool(json, "result_truncated", t->result_truncated);
    rc_json_str(json, "error", t->error);
    if (t->error_code)
        rc_json_str(json, "error_code", rc_code_name(t->error_code));
    rc_json_str(json, "function", t->function);
    rc_json_str(json, "namespace", t->namespace_name);
    rc_json_bool(json, "ever_started", t->ever_started);
    rc_json_uint(json, "created_at_us", t->created_at_us);
    rc_json_uint(json, "started_at_us", t->started_at_us);
    rc_json_uint(json, "finished_at_us", t->finished_at_us);
    rc_json_uint(json, "stopped_at_us", t->stopped_at_us);
    rc_json_uint(json, "expires_at_us", t->expires_at_us);
    if (submit) {
        rc_json_bool(json, "cache_hit", t->cache_hit);
        rc_json_bool(json, "deduplicated", t->deduplicated);
    }
}

/* Prints a task reply (submit/status/wait) and returns the exit status. */
static int s_task_out(cli_t *cli, int rc, refcache_task_t **task_p, rc_cmd_t cmd)
{
    rc_cli_args_t *a = cli->args;
    const refcache_task_view_t *t = *task_p ? &(*task_p)->info : NULL;
    bool submit = cmd == RC_CMD_SUBMIT;
    if (rc >= 0 && a->json) {
        rc_json_t *json = s_json_start(cli, rc);
        if (json && t && *t->ref_id)
            s_json_task(json, t, submit, !a->no_preview);
        s_json_emit(json);
        rc_json_destroy(&json);
    } else if (rc == 0 && t && a->quiet) {
        if (submit)
            printf("%s\n", t->ref_id);
    } else if (rc == 0 && t) {
        unsigned flags = (submit ? RC_SHOW_SUBMIT : RC_SHOW_TIMES) | (a->no_preview ? RC_SHOW_NO_PREVIEW : 0);
        rc_cli_show_task(stdout, t, flags, rc_wall_us());
    }
    int status = s_report(cli, rc);
    if (rc == 0 && t && cmd == RC_CMD_WAIT && a->exit_status) {
        if (t->state == REFCACHE_STATE_FAILED)
            status = RC_EXIT_TASK_FAILED;
        else if (t->state == REFCACHE_STATE_CANCELLED)
            status = RC_EXIT_TASK_CANCELLED;
        else if (t->state != REFCACHE_STATE_COMPLETE)
            status = RC_EXIT_STILL_RUNNING;
    }
    refcache_task_destroy(task_p);
    return status;
}

/* Reads --payload: TEXT, @FILE, or @- (standard input). */
static int s_payload(const char *arg, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (!arg)
        return 0;
    if (arg[0] != '@') {
        *len = strlen(arg);
        *data = (uint8_t *) strdup(arg);
        return *data ? 0 : s_fail("out of memory%s%s", "", "");
    }
    const char *path = arg + 1;
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return s_fail("cannot read payload file %s: %s", path, strerror(errno));
    rc_buf_t buf = {0};
    int rc = 0;
    for (;;) {
        if (buf.len == buf.cap && rc_buf_reserve(&buf, buf.cap ? buf.cap * 2 : 65536) != 0) {
            rc = s_fail("out of memory reading %s%s", path, "");
            break;
        }
        size_t n = fread(buf.data + buf.len, 1, buf.cap - buf.len, f);
        buf.len += n;
        if (n == 0) {
            if (ferror(f))
                rc = s_fail("cannot read payload file %s: %s", path, strerror(errno));
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (rc)
        rc_buf_free(&buf);
    else
        *data = rc_buf_take(&buf, len);
    return rc;
}

static int s_cmd_submit(cli_t *cli)
{
    rc_cli_args_t *a = cli->args;
    refcache_submit_options_t opts;
    refcache_submit_options_init(&opts);
    uint8_t *payload;
    size_t payload_len;
    if (s_payload(a->payload, &payload, &payload_len))
        return RC_EXIT_TRANSPORT;
    opts.params = a->params;
    opts.param_count = a->param_count;
    opts.payload = payload;
    opts.payload_len = payload_len;
    opts.async_timeout_ms = a->async_timeout_ms;
    opts.deadline_ms = a->deadline_ms;
    opts.max_retries = a->retries;
    opts.ttl_s = a->ttl_s;
    opts.no_cache = a->no_cache;
    opts.request_key = a->request_key;
    refcache_task_t *t = NULL;
    int rc = refcache_client_submit(cli->client, a->operand, &opts, &t, a->timeout_ms);
    free(payload);
    return s_task_out(cli, rc, &t, RC_CMD_SUBMIT);
}

static int s_cmd_status(cli_t *cli)
{
    refcache_task_t *t = NULL;
    int rc = refcache_client_status(cli->client, cli->args->operand, &t, cli->args->timeout_ms);
    return s_task_out(cli, rc, &t, RC_CMD_STATUS);
}

static bool s_terminal(int state)
{
    return state == REFCACHE_STATE_COMPLETE || state == REFCACHE_STATE_FAILED ||
           state == REFCACHE_STATE_CANCELLED;
}

/* One Wait for the whole time; on a terminal, Waits of RC_CLI_BAR_MS in a
 * row instead, the progress bar redrawn after each. */
static int s_cmd_wait(cli_t *cli)
{
    rc_cli_args_t *a = cli->args;
    refcache_task_t *t = NULL;
    rc_cli_bar_t bar;
    rc_cli_bar_init(&bar, stderr, cli->tty && !a->quiet);
    uint64_t deadline = rc_mono_us() + (uint64_t) a->wait_ms * 1000;
    int rc;
    for (;;) {
        uint64_t now = rc_mono_us();
        uint32_t left = now < deadline ? (uint32_t) ((deadline - now + 999) / 1000) : 0;
        uint32_t slice = bar.on && left > RC_CLI_BAR_MS ? RC_CLI_BAR_MS : left;
        rc = refcache_client_wait(cli->client, a->operand, slice, &t, a->timeout_ms);
        if (rc || slice == left || s_terminal(t->info.state))
            break;
        rc_cli_bar_draw(&bar, "waiting", t->info.progress_done, t->info.progress_total, false);
        refcache_task_destroy(&t);
    }
    rc_cli_bar_clear(&bar);
    return s_task_out(cli, rc, &t, RC_CMD_WAIT);
}

static int s_cmd_fetch(cli_t *cli)
{
    rc_cli_args_t *a = cli->args;
    FILE *out = NULL;
    if (a->out_file) {
        out = fopen(a->out_file, "wb");
        if (!out)
            return s_fail("cannot write %s: %s", a->out_file, strerror(errno));
    } else if (!a->json) {
        out = stdout;
    }
    /* A bar when the bytes do not go to the terminal it is drawn on. */
    rc_cli_bar_t bar;
    rc_cli_bar_init(&bar, stderr, cli->tty && !a->have_length && (a->out_file || !isatty(STDOUT_FILENO)));
    /* JSON needs the bytes at once; raw output streams page by page. */
    rc_buf_t buf = {0};
    size_t len = 0;
    uint64_t offset = a->offset, total = 0;
    int rc = 0, exit_status = RC_EXIT_OK;
    for (;;) {
        refcache_page_t *page = NULL;
        uint32_t want = a->have_length ? a->length : 0;
        rc = refcache_client_fetch(cli->client, a->operand, offset, want, &page, a->timeout_ms);
        if (rc)
            break;
        total = page->info.total_size;
        if (out) {
            if (page->info.len && fwrite(page->info.data, 1, page->info.len, out) != page->info.len) {
                refcache_page_destroy(&page);
                exit_status =
                    s_fail("cannot write %s: %s", a->out_file ? a->out_file : "stdout", strerror(errno));
                break;
            }
        } else if (rc_buf_append(&buf, page->info.data, page->info.len) != 0) {
            refcache_page_destroy(&page);
            exit_status = s_fail("out of memory%s%s", "", "");
            break;
        }
        len += page->info.len;
        offset += page->info.len;
        size_t got = page->info.len;
        refcache_page_destroy(&page);
        if (a->have_length || got == 0 || offset >= total)
            break;
        rc_cli_bar_draw(&bar, "fetching", offset, total, true);
    }
    rc_cli_bar_clear(&bar);
    if (out == stdout) {
        fflush(stdout);
    } else if (out && fclose(out) != 0 && exit_status == RC_EXIT_OK) {
        exit_status = s_fail("cannot write %s: %s", a->out_file, strerror(errno));
    }
    if (exit_status != RC_EXIT_OK) {
        rc_buf_free(&buf);
        return exit_status;
    }
    if (rc >= 0 && a->json) {
        rc_json_t *json = s_json_start(cli, rc);
        if (json) {
            rc_json_str(json, "ref_id", a->operand);
            rc_json_uint(json, "offset", a->offset);
            rc_json_uint(json, "length", len);
            rc_json_uint(json, "result_size", total);
            if (a->out_file)
                rc_json_str(json, "file", a->out_file);
            else if (rc == 0)
                rc_json_bytes(json, "result", buf.data, buf.len);
        }
        s_json_emit(json);
        rc_json_destroy(&json);
    } else if (rc == 0 && a->out_file) {
        printf("wrote %zu bytes to %s (result_size %" PRIu64 ")\n", len, a->out_file, total);
    }
    rc_buf_free(&buf);
    return s_report(cli, rc);
}

static int s_cmd_cancel(cli_t *cli)
{
    bool cancelled;
    int state;
    int rc =
        refcache_client_cancel(cli->client, cli->args->operand, &cancelled, &state, cli->args->timeout_ms);
    if (rc >= 0 && cli->args->json) {
        rc_json_t *json = s_json_start(cli, rc);
        if (json) {
            rc_json_str(json, "ref_id", cli->args->operand);
            rc_json_bool(json, "cancelled", cancelled);
            if (state)
                rc_json_str(json, "state", rc_state_name(state));
        }
        s_json_emit(json);
        rc_json_destroy(&json);
    } else if (rc == 0) {
        printf("ref_id  %s  cancelled %s  %s\n", cli->args->operand, cancelled ? "true" : "false",
               rc_state_name(state));
    }
    return s_report(cli, rc);
}

static int s_cmd_delete(cli_t *cli)
{
    bool found;
    int rc = refcache_client_delete(cli->client, cli->args->operand, &found, cli->args->timeout_ms);
    if (rc >= 0 && cli->args->json) {
        rc_json_t *json = s_json_start(cli, rc);
        if (json) {
            rc_json_str(json, "ref_id", cli->args->operand);
            rc_json_bool(json, "found", found);
        }
        s_json_emit(json);
        rc_json_destroy(&json);
    } else if (rc == 0) {
        printf("ref_id  %s  deleted (found %s)\n", cli->args->operand, found ? "true" : "false");
    }
    return s_report(cli, rc);
}

static int s_cmd_stats(cli_t *cli)
{
    refcache_stats_t s;
    int rc = refcache_client_stats(cli->client, &s, cli->args->timeout_ms);
    if (rc >= 0 && cli->args->json) {
        rc_json_t *json = s_json_start(cli, rc);
        if (json && rc == 0)
            rc_json_stats(json, &s);
        s_json_emit(json);
        rc_json_destroy(&json);
    } else if (rc == 0) {
        for (size_t i = 0; i < rc_stats_field_count; i++)
            printf("%-28s %" PRIu64 "\n", rc_stats_fields[i].name, rc_stats_value(&s, &rc_stats_fields[i]));
        printf("%-28s %s\n", "draining", s.draining ? "yes" : "no");
        printf("%-28s %s\n", "store_path", *s.store_path ? s.store_path : "none (memory only)");
        if (*s.store_error)
            printf("%-28s %s\n", "store_error", s.store_error);
        printf("%-28s %s\n", "version", s.version);
    }
    return s_report(cli, rc);
}

static int s_cmd_keygen(rc_cli_args_t *a)
{
    char secret[4096];
    snprintf(secret, sizeof secret, "%s_secret", a->operand);
    /* A key pair in use (the broker's, a client's) must not vanish by a
     * mistyped command: whoever holds it would be locked out. */
    struct stat st;
    const char *existing = stat(a->operand, &st) == 0 ? a->operand : stat(secret, &st) == 0 ? secret : NULL;
    if (existing && !a->force) {
        fprintf(
            stderr,
            "refcache: %s already exists: not overwriting a key pair (a broker or client using it would be "
            "locked out); --force replaces it\n",
            existing);
        return RC_EXIT_TRANSPORT;
    }
    zcert_t *cert = zcert_new();
    if (!cert)
        return s_fail("cannot create a certificate%s%s", "", "");
    int rc = zcert_save(cert, a->operand);
    if (rc != 0) {
        zcert_destroy(&cert);
        return s_fail("cannot write %s or %s", a->operand, secret);
    }
    if (chmod(secret, 0600) != 0) {
        zcert_destroy(&cert);
        return s_fail("cannot chmod 0600 %s: %s", secret, strerror(errno));
    }
    if (a->json) {
        rc_json_t *json = rc_json_new();
        if (json) {
            rc_json_str(json, "code", "OK");
            rc_json_str(json, "message", "");
            rc_json_str(json, "public_key", zcert_public_txt(cert));
            rc_json_str(json, "public_file", a->operand);
            rc_json_str(json, "secret_file", secret);
        }
        s_json_emit(json);
        rc_json_destroy(&json);
    } else {
        printf("public key %s\nwrote %s and %s (0600)\n", zcert_public_txt(cert), a->operand, secret);
    }
    zcert_destroy(&cert);
    return RC_EXIT_OK;
}

/* The helpers above, for the commands of rc_cli_observe.c (rc_cli.h). */
int rc_cli_report(rc_cli_t *cli, int rc)
{
    return s_report(cli, rc);
}

rc_json_t *rc_cli_json_start(rc_cli_t *cli, int rc)
{
    return s_json_start(cli, rc);
}

void rc_cli_json_emit(rc_json_t *json)
{
    s_json_emit(json);
}

void rc_cli_json_task(rc_json_t *json, const refcache_task_view_t *t)
{
    s_json_task(json, t, false, false);
}

int main(int argc, char **argv)
{
    /* Ctrl-C and SIGTERM: the blocking call returns, the exit status says
     * which signal (CZMQ's own handler would say nothing; zsys_init installs
     * it, so it runs first). */
    zsys_init();
    zsys_handler_set(s_on_signal);
    rc_cli_args_t args;
    char err[512];
    int rc = rc_cli_parse(argc, argv, getenv("REFCACHE_ENDPOINT"), &args, err, sizeof err);
    if (rc) {
        fprintf(stderr, "refcache: %s\n", err);
        rc_cli_args_free(&args);
        return RC_EXIT_USAGE;
    }
    if (args.help) {
        s_help(args.cmd);
        rc_cli_args_free(&args);
        return RC_EXIT_OK;
    }
    if (args.version) {
        printf("refcache %s\n", RC_VERSION);
        rc_cli_args_free(&args);
        return RC_EXIT_OK;
    }
    if (args.cmd == RC_CMD_KEYGEN) {
        rc = s_cmd_keygen(&args);
        rc_cli_args_free(&args);
        return rc;
    }

    refcache_client_options_t opts;
    refcache_client_options_init(&opts);
    opts.endpoint = args.endpoint;
    opts.curve_secret_file = args.curve_secret;
    opts.broker_public_file = args.curve_server;
    opts.namespace_name = args.namespace_name;
    refcache_client_t *client = refcache_client_new(&opts, err, sizeof err);
    if (!client) {
        fprintf(stderr, "refcache: %s\n", err);
        rc_cli_args_free(&args);
        return RC_EXIT_TRANSPORT;
    }
    cli_t cli = {&args, client, isatty(STDERR_FILENO) && !args.json};
    switch (args.cmd) {
    case RC_CMD_SUBMIT:
        rc = s_cmd_submit(&cli);
        break;
    case RC_CMD_STATUS:
        rc = s_cmd_status(&cli);
        break;
    case RC_CMD_WAIT:
        rc = s_cmd_wait(&cli);
        break;
    case RC_CMD_FETCH:
        rc = s_cmd_fetch(&cli);
        break;
    case RC_CMD_CANCEL:
        rc = s_cmd_cancel(&cli);
        break;
    case RC_CMD_DELETE:
        rc = s_cmd_delete(&cli);
        break;
    case RC_CMD_STATS:
        rc = s_cmd_stats(&cli);
        break;
    case RC_CMD_LIST:
        rc = rc_cli_observe_list(&cli);
        break;
    case RC_CMD_WORKERS:
        rc = rc_cli_observe_workers(&cli);
        break;
    case RC_CMD_EVENTS:
        rc = rc_cli_observe_events(&cli);
        break;
    case RC_CMD_TOP:
        rc = rc_cli_top_run(&cli);
        break;
    default:
        rc = RC_EXIT_USAGE;
        break;
    }
    refcache_client_destroy(&client);
    rc_cli_args_free(&args);
    return rc;
}
