/* rc_owned: the objects the client library's blocking calls hand out and
 * the caller owns — refcache_task_t and refcache_page_t, each one block with
 * its strings and bytes — made from the views a reply carries, and freed
 * with their _destroy. Also where the public state and code constants are
 * checked against the .proto's values. */
#include "refcache.h"
#include "refcache.pb-c.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* The public constants are the .proto's values. */
#define RC_SAME(pub, gen) static_assert((int) (pub) == (int) (gen), #pub " matches the .proto")
RC_SAME(REFCACHE_STATE_UNSPECIFIED, REFCACHE__V1__STATE__STATE_UNSPECIFIED);
RC_SAME(REFCACHE_STATE_PENDING, REFCACHE__V1__STATE__STATE_PENDING);
RC_SAME(REFCACHE_STATE_PROCESSING, REFCACHE__V1__STATE__STATE_PROCESSING);
RC_SAME(REFCACHE_STATE_COMPLETE, REFCACHE__V1__STATE__STATE_COMPLETE);
RC_SAME(REFCACHE_STATE_FAILED, REFCACHE__V1__STATE__STATE_FAILED);
RC_SAME(REFCACHE_STATE_CANCELLED, REFCACHE__V1__STATE__STATE_CANCELLED);
RC_SAME(REFCACHE_CODE_OK, REFCACHE__V1__CODE__CODE_OK);
RC_SAME(REFCACHE_CODE_CANCELLED, REFCACHE__V1__CODE__CODE_CANCELLED);
RC_SAME(REFCACHE_CODE_UNKNOWN, REFCACHE__V1__CODE__CODE_UNKNOWN);
RC_SAME(REFCACHE_CODE_INVALID_ARGUMENT, REFCACHE__V1__CODE__CODE_INVALID_ARGUMENT);
RC_SAME(REFCACHE_CODE_DEADLINE_EXCEEDED, REFCACHE__V1__CODE__CODE_DEADLINE_EXCEEDED);
RC_SAME(REFCACHE_CODE_NOT_FOUND, REFCACHE__V1__CODE__CODE_NOT_FOUND);
RC_SAME(REFCACHE_CODE_ALREADY_EXISTS, REFCACHE__V1__CODE__CODE_ALREADY_EXISTS);
RC_SAME(REFCACHE_CODE_PERMISSION_DENIED, REFCACHE__V1__CODE__CODE_PERMISSION_DENIED);
RC_SAME(REFCACHE_CODE_RESOURCE_EXHAUSTED, REFCACHE__V1__CODE__CODE_RESOURCE_EXHAUSTED);
RC_SAME(REFCACHE_CODE_FAILED_PRECONDITION, REFCACHE__V1__CODE__CODE_FAILED_PRECONDITION);
RC_SAME(REFCACHE_CODE_ABORTED, REFCACHE__V1__CODE__CODE_ABORTED);
RC_SAME(REFCACHE_CODE_OUT_OF_RANGE, REFCACHE__V1__CODE__CODE_OUT_OF_RANGE);
RC_SAME(REFCACHE_CODE_UNIMPLEMENTED, REFCACHE__V1__CODE__CODE_UNIMPLEMENTED);
RC_SAME(REFCACHE_CODE_INTERNAL, REFCACHE__V1__CODE__CODE_INTERNAL);
RC_SAME(REFCACHE_CODE_UNAVAILABLE, REFCACHE__V1__CODE__CODE_UNAVAILABLE);
RC_SAME(REFCACHE_CODE_DATA_LOSS, REFCACHE__V1__CODE__CODE_DATA_LOSS);
RC_SAME(REFCACHE_CODE_UNAUTHENTICATED, REFCACHE__V1__CODE__CODE_UNAUTHENTICATED);

refcache_task_t *refcache_task_dup(const refcache_task_view_t *view)
{
    if (!view)
        return NULL;
    const char *err = view->error ? view->error : "", *fn = view->function ? view->function : "",
               *ns = view->namespace_name ? view->namespace_name : "";
    size_t nerr = strlen(err) + 1, nfn = strlen(fn) + 1, nns = strlen(ns) + 1;
    /* One block: the object, then its result bytes and its strings. */
    refcache_task_t *self = malloc(sizeof *self + view->result_len + nerr + nfn + nns);
    if (!self)
        return NULL;
    self->info = *view;
    uint8_t *p = (uint8_t *) (self + 1);
    if (view->result_len)
        memcpy(p, view->result, view->result_len);
    self->info.result = view->result_len ? p : NULL;
    p += view->result_len;
    self->info.error = memcpy(p, err, nerr);
    p += nerr;
    self->info.function = memcpy(p, fn, nfn);
    p += nfn;
    self->info.namespace_name = memcpy(p, ns, nns);
    return self;
}

void refcache_task_destroy(refcache_task_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

refcache_page_t *refcache_page_dup(const refcache_page_view_t *view)
{
    if (!view)
        return NULL;
    refcache_page_t *self = malloc(sizeof *self + view->len);
    if (!self)
        return NULL;
    self->info = *view;
    self->info.data = (const uint8_t *) (self + 1);
    if (view->len)
        memcpy(self + 1, view->data, view->len);
    return self;
}

void refcache_page_destroy(refcache_page_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}
