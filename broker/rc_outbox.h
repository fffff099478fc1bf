/* rc_outbox: everything the broker sends to clients — a reply encoded and
 * routed to its connection now, or (to a request that came in a batch)
 * gathered in the connection's outbox and sent as a ReplyBatch when the
 * loop has drained its socket — and the view of a task a reply carries.
 * Nothing here ever blocks: a refused send is counted and dropped. */
#ifndef RC_OUTBOX_H
#define RC_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc_codec.h"
#include "rc_peers.h"
#include "rc_record.h"

typedef struct rc_core rc_core_t;

#define RC_OUTBOXES 8 /* clients with reply batches open at once */

typedef struct {
    rc_buf_t buf;
    uint32_t n;      /* replies in it */
    size_t last_len; /* the length of the last reply (a lone one is sent as itself) */
    bool envelope;
    uint8_t rid_len;
    uint8_t rid[RC_MAX_ROUTING_ID];
} rc_outbox_t;

/* Sends [rid][""?][body] on a ROUTER without waiting. -1 if refused (the
 * peer is gone or its queue is full), counted in *dropped when given. */
int rc_route(void *sock, const void *rid, size_t rid_len, bool envelope, const void *body, size_t len,
             uint64_t *dropped);

/* What a Submit's reply says of how it was served (rc_reply_task). */
enum { RC_SF_HIT = 1u << 0, RC_SF_DEDUP = 1u << 1, RC_SF_REPLAYED = 1u << 2 };

/* Replies to the request being handled (core->rid, envelope, batched),
 * with the numbers it had clamped (rc_ops_clamp). */
void rc_reply(rc_core_t *core, const rc_reply_t *r);
void rc_reply_error(rc_core_t *core, uint64_t id, int code, const char *message);
void rc_reply_task(rc_core_t *core, uint64_t id, rc_reply_kind_t kind, const rc_task_t *t, const rc_handle_t *h,
                   unsigned sflags);

/* Replies to another connection (a held reply). */
void rc_reply_to(rc_core_t *core, const uint8_t *rid, size_t rid_len, bool envelope, bool batched,
                 const rc_reply_t *r);
void rc_reply_task_to(rc_core_t *core, const uint8_t *rid, size_t rid_len, bool envelope, bool batched,
                      uint64_t id, rc_reply_kind_t kind, const rc_task_t *t, const rc_handle_t *h, unsigned sflags,
                      const rc_clamp_t *clamped, size_t n_clamped);

/* Fills v (and hex, RC_REF_ID_LEN + 1 bytes) with what a reply shows of t. */
void rc_view_task(rc_core_t *core, const rc_task_t *t, rc_taskview_t *v, char *hex);

/* Sends an encoded reply now, or (to a request that came in a batch) puts
 * it in its connection's outbox. */
void rc_outbox_send(rc_core_t *core, const uint8_t *rid, size_t rid_len, bool envelope, bool batched,
                    const uint8_t *body, size_t len);

/* Sends every open outbox (rc_core_flush). */
void rc_outbox_flush_all(rc_core_t *core);

#endif
