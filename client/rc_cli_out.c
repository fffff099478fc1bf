/* rc_cli_out: what the CLI's commands share to print an outcome — the
 * one-line error and exit status of a call, and the JSON object of a
 * reply (see rc_cli_out.h). */
#include "rc_cli_out.h"

#include <inttypes.h>
#include <stdio.h>

#include "rc_common.h"

int rc_cli_out_fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "refcache: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return RC_EXIT_TRANSPORT;
}

/* Prints the one-line error for a call that did not end OK and returns the
 * exit status. */
int rc_cli_out_report(rc_cli_t *cli, int rc)
{
    if (rc == 0)
        return RC_EXIT_OK;
    if (rc < 0) {
        fprintf(stderr, "refcache: %s (%s)\n", refcache_strerror(rc), cli->args->endpoint);
    } else {
        const char *msg = refcache_client_message(cli->client);
        fprintf(stderr, "refcache: %s%s%s\n", rc_code_name(rc), *msg ? ": " : "", msg);
    }
    return rc_cli_exit_status(rc);
}

void rc_cli_out_json_emit(rc_json_t *json)
{
    const char *text = json ? rc_json_finish(json) : NULL;
    if (text)
        printf("%s\n", text);
    else
        fprintf(stderr, "refcache: out of memory writing JSON\n");
}

rc_json_t *rc_cli_out_json_start(rc_cli_t *cli, int rc)
{
    rc_json_t *json = rc_json_new();
    if (json) {
        rc_json_str(json, "code", rc_code_name(rc));
        rc_json_str(json, "message", refcache_client_message(cli->client));
    }
    return json;
}

void rc_cli_out_json_task(rc_json_t *json, const refcache_task_view_t *t, bool submit)
{
    rc_json_str(json, "ref_id", t->ref_id);
    rc_json_str(json, "state", rc_state_name(t->state));
    rc_json_uint(json, "progress_done", t->progress_done);
    rc_json_uint(json, "progress_total", t->progress_total);
    rc_json_uint(json, "attempt", t->attempt);
    rc_json_uint(json, "result_size", t->result_size);
    if (t->result_len || t->state == REFCACHE_STATE_COMPLETE)
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
