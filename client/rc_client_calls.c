/* rc_client_calls: the blocking calls of refcache.h — each queues its
 * request, waits for its reply within the caller's timeout (plus what it
 * asked the broker to hold the reply), and hands out an owned copy. An
 * idempotent request (Status, Wait, Fetch, Cancel, Delete, Stats, a Submit
 * with a request_key) is sent again, with the same id, when the broker goes
 * away and comes back before the reply (rc_client_retry.h): a restarted
 * broker with a store answers it as the first one would have. */
#include "rc_client_codec.h"
#include "rc_client_int.h"
#include "rc_common.h"
#include "rc_pages.h"
#include "refcache.h"

#include <string.h>

static uint64_t s_timeout(int timeout_ms, uint32_t hold_ms)
{
    return (uint64_t) (timeout_ms > 0 ? timeout_ms : 0) + hold_ms;
}

/* Finishes a blocking call that answers with a task: an owned copy of the
 * reply's task, when it carried one and the caller asked for it. */
static int s_task_result(int rc, const refcache_reply_t *reply, refcache_task_t **task_p)
{
    if (rc < 0 || reply->kind == REFCACHE_REPLY_NONE || !task_p)
        return rc;
    *task_p = refcache_task_dup(&reply->task);
    return *task_p ? rc : REFCACHE_ENOMEM;
}

int refcache_client_submit(refcache_client_t *self, const char *function,
                           const refcache_submit_options_t *options, refcache_task_t **task_p, int timeout_ms)
{
    if (task_p)
        *task_p = NULL;
    if (!self)
        return REFCACHE_EINVAL;
    uint64_t id = 0;
    int rc = refcache_client_send_submit(self, function, options, &id);
    if (rc)
        return rc;
    /* Only a Submit with a key may be sent twice: the second names the first. */
    bool keyed = options && options->request_key && *options->request_key;
    rc_client_again_t again = {.function = function,
                               .options = options,
                               .hold_ms = options ? options->async_timeout_ms : 0,
                               .start_us = rc_mono_us()};
    refcache_reply_t reply;
    rc = rc_client_await_again(self, id, s_timeout(timeout_ms, again.hold_ms), REFCACHE_REPLY_SUBMIT, &reply,
                               keyed ? &again : NULL);
    return s_task_result(rc, &reply, task_p);
}

int refcache_client_status(refcache_client_t *self, const char *ref_id, refcache_task_t **task_p,
                           int timeout_ms)
{
    if (task_p)
        *task_p = NULL;
    if (!self)
        return REFCACHE_EINVAL;
    uint64_t id = 0;
    int rc = refcache_client_send_status(self, ref_id, &id);
    if (rc)
        return rc;
    rc_client_again_t again = {.body = RC_CLIENT_CODEC_STATUS, .ref_id = ref_id};
    refcache_reply_t reply;
    rc = rc_client_await_again(self, id, s_timeout(timeout_ms, 0), REFCACHE_REPLY_TASK, &reply, &again);
    return s_task_result(rc, &reply, task_p);
}

int refcache_client_wait(refcache_client_t *self, const char *ref_id, uint32_t wait_ms,
                         refcache_task_t **task_p, int timeout_ms)
{
    if (task_p)
        *task_p = NULL;
    if (!self)
        return REFCACHE_EINVAL;
    uint64_t id = 0;
    int rc = refcache_client_send_wait(self, ref_id, wait_ms, &id);
    if (rc)
        return rc;
    rc_client_again_t again = {
        .body = RC_CLIENT_CODEC_WAIT, .ref_id = ref_id, .n_num = 1, .hold_ms = wait_ms, .start_us = rc_mono_us()};
    refcache_reply_t reply;
    rc = rc_client_await_again(self, id, s_timeout(timeout_ms, wait_ms), REFCACHE_REPLY_TASK, &reply, &again);
    return s_task_result(rc, &reply, task_p);
}

int refcache_client_fetch(refcache_client_t *self, const char *ref_id, uint64_t offset, uint32_t length,
                          refcache_page_t **page_p, int timeout_ms)
{
    if (page_p)
        *page_p = NULL;
    if (!self)
        return REFCACHE_EINVAL;
    uint64_t id = 0;
    int rc = refcache_client_send_fetch(self, ref_id, offset, length, &id);
    if (rc)
        return rc;
    rc_client_again_t again = {.body = RC_CLIENT_CODEC_FETCH, .ref_id = ref_id, .num = {offset, length}, .n_num = 2};
    refcache_reply_t reply;
    rc = rc_client_await_again(self, id, s_timeout(timeout_ms, 0), REFCACHE_REPLY_FETCH, &reply, &again);
    if (rc < 0 || reply.kind != REFCACHE_REPLY_FETCH || !page_p)
        return rc;
    *page_p = refcache_page_dup(&reply.fetch);
    return *page_p ? rc : REFCACHE_ENOMEM;
}

int refcache_client_fetch_all(refcache_client_t *self, const char *ref_id, uint32_t page_len, uint8_t **data,
                              size_t *len, int timeout_ms)
{
    if (!self || !data || !len)
        return REFCACHE_EINVAL;
    *data = NULL;
    *len = 0;
    rc_pages_t pages;
    rc_pages_init(&pages);
    int rc = 0;
    do {
        uint64_t offset = rc_pages_next_offset(&pages), id = 0;
        rc = refcache_client_send_fetch(self, ref_id, offset, page_len, &id);
        if (rc)
            break;
        rc_client_again_t again = {
            .body = RC_CLIENT_CODEC_FETCH, .ref_id = ref_id, .num = {offset, page_len}, .n_num = 2};
        refcache_reply_t reply;
        rc = rc_client_await_again(self, id, s_timeout(timeout_ms, 0), REFCACHE_REPLY_FETCH, &reply, &again);
        if (rc)
            break;
        /* A reply whose offset field is unset (0) answers the offset asked. */
        uint64_t at = reply.fetch.offset ? reply.fetch.offset : offset;
        rc = rc_pages_add(&pages, at, reply.fetch.total_size, reply.fetch.data, reply.fetch.len);
    } while (rc == 0 && !rc_pages_done(&pages));
    if (rc == 0) {
        *data = rc_pages_take(&pages, len);
        if (!*data)
            rc = REFCACHE_ENOMEM;
    }
    rc_pages_free(&pages);
    return rc;
}

int refcache_client_cancel(refcache_client_t *self, const char *ref_id, bool *cancelled, int *state,
                           int timeout_ms)
{
    if (cancelled)
        *cancelled = false;
    if (state)
        *state = 0;
    if (!self)
        return REFCACHE_EINVAL;
    uint64_t id = 0;
    int rc = refcache_client_send_cancel(self, ref_id, &id);
    if (rc)
        return rc;
    rc_client_again_t again = {.body = RC_CLIENT_CODEC_CANCEL, .ref_id = ref_id};
    refcache_reply_t reply;
    rc = rc_client_await_again(self, id, s_timeout(timeout_ms, 0), REFCACHE_REPLY_CANCEL, &reply, &again);
    if (rc >= 0 && reply.kind == REFCACHE_REPLY_CANCEL) {
        if (cancelled)
            *cancelled = reply.cancelled;
        if (state)
            *state = reply.cancel_state;
    }
    return rc;
}

int refcache_client_delete(refcache_client_t *self, const char *ref_id, bool *found, int timeout_ms)
{
    if (found)
        *found = false;
    if (!self)
        return REFCACHE_EINVAL;
    uint64_t id = 0;
    int rc = refcache_client_send_delete(self, ref_id, &id);
    if (rc)
        return rc;
    rc_client_again_t again = {.body = RC_CLIENT_CODEC_DELETE, .ref_id = ref_id};
    refcache_reply_t reply;
    rc = rc_client_await_again(self, id, s_timeout(timeout_ms, 0), REFCACHE_REPLY_DELETE, &reply, &again);
    if (rc >= 0 && reply.kind == REFCACHE_REPLY_DELETE && found)
        *found = reply.found;
    return rc;
}

int refcache_client_stats(refcache_client_t *self, refcache_stats_t *stats, int timeout_ms)
{
    if (!self || !stats)
        return REFCACHE_EINVAL;
    memset(stats, 0, sizeof *stats);
    uint64_t id = 0;
    int rc = refcache_client_send_stats(self, &id);
    if (rc)
        return rc;
    rc_client_again_t again = {.body = RC_CLIENT_CODEC_STATS};
    refcache_reply_t reply;
    rc = rc_client_await_again(self, id, s_timeout(timeout_ms, 0), REFCACHE_REPLY_STATS, &reply, &again);
    if (rc >= 0 && reply.kind == REFCACHE_REPLY_STATS)
        *stats = reply.stats;
    return rc;
}
