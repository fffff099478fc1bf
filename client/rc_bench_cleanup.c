/* rc_bench_cleanup: the bench deleting the tasks it created (see
 * rc_bench_cleanup.h). */
#include "rc_bench_cleanup.h"
#include "rc_buf.h"

#include <stdlib.h>
#include <string.h>

int rc_bench_refs_add(rc_bench_refs_t *self, const char *ref_id)
{
    size_t len = strlen(ref_id);
    if (len > RC_REF_ID_LEN)
        return -1;
    if (rc_buf_grow_array(&self->ids, &self->cap, self->n + 1, sizeof *self->ids) != 0)
        return -1;
    memcpy(self->ids[self->n++], ref_id, len + 1);
    return 0;
}

void rc_bench_refs_free(rc_bench_refs_t *self)
{
    free(self->ids);
    memset(self, 0, sizeof *self);
}

typedef enum { CLEAN_DELETE, CLEAN_CANCEL } clean_op_t;

/* Sends op for refs[from..to) pipelined; each id names its index (the
 * client numbers its requests one after another). Refs whose delete found a
 * task not finished yet go to *busy (their indexes). Returns how many got
 * no usable answer. */
static uint64_t s_window(refcache_client_t *client, clean_op_t op, char (*refs)[RC_REF_ID_LEN + 1], size_t n,
                         int timeout_ms, rc_bench_cleanup_t *out, size_t *busy, size_t *nbusy)
{
    uint64_t first = 0, id = 0;
    size_t sent = 0;
    for (; sent < n; sent++) {
        int rc = op == CLEAN_DELETE ? refcache_client_send_delete(client, refs[sent], &id)
                                    : refcache_client_send_cancel(client, refs[sent], &id);
        if (rc)
            break;
        if (sent == 0)
            first = id;
    }
    uint64_t unanswered = n - sent;
    size_t got = 0;
    while (got < sent) {
        refcache_reply_t r;
        if (refcache_client_recv(client, &r, timeout_ms) != 0) {
            unanswered += sent - got;
            break;
        }
        if (r.id < first || r.id - first >= sent)
            continue; /* a late reply to something else */
        got++;
        if (op == CLEAN_CANCEL)
            continue; /* the delete that follows counts */
        if (r.code == REFCACHE_CODE_OK && r.found)
            out->deleted++;
        else if (r.code == REFCACHE_CODE_OK || r.code == REFCACHE_CODE_NOT_FOUND)
            out->gone++;
        else if (r.code == REFCACHE_CODE_FAILED_PRECONDITION && busy)
            busy[(*nbusy)++] = (size_t) (r.id - first);
        else
            unanswered++;
    }
    return unanswered;
}

void rc_bench_cleanup(refcache_client_t *client, const rc_bench_refs_t *refs, int depth, int timeout_ms,
                      rc_bench_cleanup_t *out)
{
    out->left += refs->lost;
    size_t window = depth > 0 ? (size_t) depth : 1000;
    size_t *busy = malloc(window * sizeof *busy);
    char(*again)[RC_REF_ID_LEN + 1] = malloc(window * sizeof *again);
    if (!busy || !again) {
        out->left += refs->n;
        free(busy);
        free(again);
        return;
    }
    for (size_t at = 0; at < refs->n; at += window) {
        size_t n = refs->n - at < window ? refs->n - at : window, nbusy = 0;
        out->left += s_window(client, CLEAN_DELETE, refs->ids + at, n, timeout_ms, out, busy, &nbusy);
        if (!nbusy)
            continue;
        /* Still PENDING or PROCESSING: cancel, then delete. */
        for (size_t i = 0; i < nbusy; i++)
            memcpy(again[i], refs->ids[at + busy[i]], sizeof again[i]);
        s_window(client, CLEAN_CANCEL, again, nbusy, timeout_ms, out, NULL, NULL);
        size_t still = 0;
        out->left += s_window(client, CLEAN_DELETE, again, nbusy, timeout_ms, out, busy, &still);
        out->left += still;
    }
    free(busy);
    free(again);
}
