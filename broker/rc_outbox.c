/* rc_outbox: replies to clients, sent now or gathered per connection into
 * ReplyBatches (see rc_outbox.h). */
#include "rc_outbox.h"

#include <string.h>

#include "rc_common.h"
#include "rc_core.h"

int rc_route(void *sock, const void *rid, size_t rid_len, bool envelope, const void *body, size_t len,
             uint64_t *dropped)
{
    /* A refusal (peer gone: EHOSTUNREACH, or its queue full: EAGAIN) is
     * counted, never retried: the loop must not wait on one slow peer. */
    if (zmq_send(sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        goto refused;
    if (envelope && zmq_send(sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        goto refused;
    if (zmq_send(sock, body, len, ZMQ_DONTWAIT) < 0)
        goto refused;
    return 0;
refused:
    if (dropped)
        (*dropped)++;
    return -1;
}

static void outbox_flush(rc_core_t *core, rc_outbox_t *o)
{
    if (!o->n)
        return;
    uint8_t *frame;
    size_t len = rc_wire_batch_frame(o->buf.data + RC_BATCH_HEAD, o->buf.len - RC_BATCH_HEAD, o->n, o->last_len,
                                     RC_REPLY_BATCH_FIELD, &frame);
    if (rc_route(core->clients, o->rid, o->rid_len, o->envelope, frame, len, NULL) != 0)
        core->c.dropped_replies += o->n;
    o->n = 0;
    o->buf.len = RC_BATCH_HEAD;
}

/* The client's open outbox, else a new one (when all are taken, one of
 * them, in turn, is sent to make room). */
static rc_outbox_t *outbox_for(rc_core_t *core, const uint8_t *rid, size_t rid_len, bool envelope)
{
    for (unsigned i = 0; i < core->n_outbox; i++) {
        rc_outbox_t *o = &core->outbox[i];
        if (o->rid_len == rid_len && o->envelope == envelope && memcmp(o->rid, rid, rid_len) == 0)
            return o;
    }
    rc_outbox_t *o;
    if (core->n_outbox < RC_OUTBOXES) {
        o = &core->outbox[core->n_outbox++];
    } else {
        o = &core->outbox[core->outbox_turn++ % RC_OUTBOXES];
        outbox_flush(core, o);
    }
    o->rid_len = (uint8_t) rid_len;
    memcpy(o->rid, rid, rid_len);
    o->envelope = envelope;
    o->buf.len = RC_BATCH_HEAD;
    return o;
}

/* Sends an encoded reply now, or (to a batched request) puts it in the
 * client's outbox. One that would not fit in a batch goes alone. */
static inline void outbox_send(rc_core_t *core, const uint8_t *rid, size_t rid_len, bool envelope, bool batched,
                               const uint8_t *body, size_t len)
{
    if (batched && len <= RC_BATCH_BYTES / 2) {
        rc_outbox_t *o = outbox_for(core, rid, rid_len, envelope);
        if (o->n && (o->n >= RC_MAX_BATCH || o->buf.len + len + 6 > RC_BATCH_BYTES))
            outbox_flush(core, o);
        if (rc_codec_batch_entry(&o->buf, body, len) == 0) {
            o->last_len = len;
            o->n++;
            return;
        }
    }
    rc_route(core->clients, rid, rid_len, envelope, body, len, &core->c.dropped_replies);
}

void rc_outbox_send(rc_core_t *core, const uint8_t *rid, size_t rid_len, bool envelope, bool batched,
                    const uint8_t *body, size_t len)
{
    outbox_send(core, rid, rid_len, envelope, batched, body, len);
}

/* Sends a reply now, unless it promises a fact the store does not hold yet
 * (core->promise, with --store): then the journal holds it until it does. */
static void send_encoded(rc_core_t *core, const uint8_t *rid, size_t rid_len, bool envelope, bool batched,
                         const rc_buf_t *reply)
{
    if (core->promise && core->journal &&
        rc_journal_hold(core, rid, rid_len, envelope, batched, reply->data, reply->len))
        return;
    outbox_send(core, rid, rid_len, envelope, batched, reply->data, reply->len);
}

static inline void reply_to(rc_core_t *core, const uint8_t *rid, size_t rid_len, bool envelope, bool batched,
                            const rc_reply_t *r)
{
    if (rc_codec_reply(&core->out, r) != 0) {
        core->c.dropped_replies++;
        return;
    }
    send_encoded(core, rid, rid_len, envelope, batched, &core->out);
}

void rc_reply_to(rc_core_t *core, const uint8_t *rid, size_t rid_len, bool envelope, bool batched,
                 const rc_reply_t *r)
{
    reply_to(core, rid, rid_len, envelope, batched, r);
}

/* Says in r's message which numbers were clamped, when it has none. */
static const char *clamp_text(rc_core_t *core, const rc_reply_t *r)
{
    if (!r->n_clamped || (r->message && *r->message))
        return r->message;
    size_t n = 0;
    for (size_t i = 0; i < r->n_clamped && n < sizeof core->clamp_text; i++) {
        const rc_clamp_t *c = &r->clamped[i];
        n += (size_t) snprintf(core->clamp_text + n, sizeof core->clamp_text - n, "%s%s %llu clamped to %llu",
                               i ? "; " : "", c->field, (unsigned long long) c->requested,
                               (unsigned long long) c->used);
    }
    return core->clamp_text;
}

void rc_reply(rc_core_t *core, const rc_reply_t *r)
{
    if (!core->n_clamps || r->n_clamped) {
        rc_reply_to(core, core->rid, core->rid_len, core->envelope, core->batched, r);
        return;
    }
    rc_reply_t with = *r;
    with.clamped = core->clamps;
    with.n_clamped = core->n_clamps;
    with.message = clamp_text(core, &with);
    rc_reply_to(core, core->rid, core->rid_len, core->envelope, core->batched, &with);
}

void rc_reply_error(rc_core_t *core, uint64_t id, int code, const char *message)
{
    rc_reply_t r = {.id = id, .code = code, .message = message};
    rc_reply(core, &r);
}

/* The view, inlined into the reply path (rc_view_task is its copy for
 * the other rooms). */
static inline void view_task(rc_core_t *core, const rc_task_t *t, rc_taskview_t *v, char *hex)
{
    rc_hex_encode(t->ref, 16, hex);
    memset(v, 0, sizeof *v);
    v->ref_hex = hex;
    v->state = t->state;
    v->result_size = t->result_len;
    const uint8_t *result = rc_task_result(t);
    if (result) {
        size_t n = t->result_len;
        if (n > core->cfg.inline_limit) {
            /* The preview of a result too big to come inline is never
             * bigger than what comes inline. */
            uint32_t preview = core->cfg.preview_bytes < core->cfg.inline_limit ? core->cfg.preview_bytes
                                                                                  : core->cfg.inline_limit;
            n = t->result_len < preview ? t->result_len : preview;
            v->result_truncated = true;
        }
        v->result = (rc_bytes_t){result, n};
    }
    v->progress_done = rc_task_progress_done(t);
    v->progress_total = rc_task_progress_total(t);
    v->attempt = t->attempt;
    v->max_retries = t->max_retries;
    v->error_code = t->error_code;
    v->error = rc_task_error(t);
    v->function = t->fn->name;
    v->ns = rc_task_ns(t);
    v->created_at_us = t->created_us;
    v->started_at_us = t->started_us;
    v->finished_at_us = t->finished_us;
    v->stopped_at_us = rc_task_stopped_us(t);
    v->ever_started = t->flags & F_EVER_STARTED;
    if (t->finished_us)
        v->expires_at_us = t->finished_us + (uint64_t) t->ttl_s * 1000000;
}

void rc_view_task(rc_core_t *core, const rc_task_t *t, rc_taskview_t *v, char *hex)
{
    view_task(core, t, v, hex);
}

void rc_reply_task_to(rc_core_t *core, const uint8_t *rid, size_t rid_len, bool envelope, bool batched,
                      uint64_t id, rc_reply_kind_t kind, const rc_task_t *t, const rc_handle_t *h, unsigned sflags,
                      const rc_clamp_t *clamped, size_t n_clamped)
{
    rc_taskview_t v;
    char hex[RC_REF_ID_LEN + 1];
    if (h || t->hstate)
        rc_view_handle(core, t, h, &v, hex);
    else
        view_task(core, t, &v, hex);
    rc_reply_t r = {.id = id,
                    .code = 0,
                    .kind = kind,
                    .task = &v,
                    .cache_hit = sflags & RC_SF_HIT,
                    .deduplicated = sflags & RC_SF_DEDUP,
                    .replayed = sflags & RC_SF_REPLAYED,
                    .clamped = clamped,
                    .n_clamped = n_clamped};
    if (n_clamped)
        r.message = clamp_text(core, &r);
    reply_to(core, rid, rid_len, envelope, batched, &r);
}

void rc_reply_task(rc_core_t *core, uint64_t id, rc_reply_kind_t kind, const rc_task_t *t, const rc_handle_t *h,
                   unsigned sflags)
{
    rc_reply_task_to(core, core->rid, core->rid_len, core->envelope, core->batched, id, kind, t, h, sflags,
                     core->clamps, core->n_clamps);
}

void rc_outbox_flush_all(rc_core_t *core)
{
    for (unsigned i = 0; i < core->n_outbox; i++)
        outbox_flush(core, &core->outbox[i]);
    core->n_outbox = 0;
}
