/* rc_journal: the broker's side of the durable store (--store). An observer
 * of the runner marks each record a transition changed; at the end of each
 * drain pass the marked records are written to the store (rc_store: their
 * latest value, or their deletion) as one group. A reply that promises a
 * fact — a ref_id handed out, cancelled = true, a Delete's found — is held
 * until the group that carries the fact is durable; the loop polls the
 * store's descriptor and releases them (rc_journal_durable). At start the
 * store's records rebuild the tasks, handles, functions, idempotency keys
 * and the broker's secret (rc_journal_open, in rc_recover.c). Memory-only
 * brokers have no journal: every call here is then a no-op. */
#ifndef RC_JOURNAL_H
#define RC_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc_codec.h"

typedef struct rc_core rc_core_t;
typedef struct rc_task rc_task_t;
typedef struct rc_fn rc_fn_t;
typedef struct rc_journal rc_journal_t;

/* Opens the store at core->cfg.store_path (a no-op without one) and rebuilds
 * the core from it, before the sockets open. 0, or -1 with a one-line
 * message in err. */
int rc_journal_open(rc_core_t *core, char *err, size_t errlen);

/* Writes what is pending, waits for the store to make it durable, closes. */
void rc_journal_close(rc_core_t *core);

/* The descriptor the loop polls (-1 without a store). */
int rc_journal_fd(rc_core_t *core);

/* The end of a drain pass: the marked records go to the store as a group,
 * and the promises made in the pass wait for it. */
void rc_journal_flush(rc_core_t *core);

/* The store's descriptor woke the loop: releases the replies whose group is
 * durable now (the caller then flushes the outboxes). */
void rc_journal_durable(rc_core_t *core);

/* Whether task t's record is on disk (always, without a store): a reply
 * that promises only its ref_id need not wait then. False when it is not
 * known to be (not written yet, or its group not durable yet). */
bool rc_journal_has_task(rc_core_t *core, rc_task_t *t);

/* Whether a new fact may be promised now: 0, or the refcache.v1.Code to
 * refuse it with (UNAVAILABLE while the store cannot write, RESOURCE_EXHAUSTED
 * while its writer is too far behind), with the reason in *why. */
int rc_journal_refusal(rc_core_t *core, const char **why);

/* A reply that promises a fact, encoded: held until durable (true), or to
 * be sent now (false: no store). */
bool rc_journal_hold(rc_core_t *core, const uint8_t *rid, size_t rid_len, bool envelope, bool batched,
                     const uint8_t *body, size_t len);

/* A function was announced (or became cacheable): the store learns it. */
void rc_journal_function(rc_core_t *core, const rc_fn_t *fn);

/* Replies held and records written, for Stats and tests. */
uint64_t rc_journal_held(rc_core_t *core);

/* The store's part of Stats (left as it is without a store); its strings
 * are valid until the next call. */
void rc_journal_stats(rc_core_t *core, rc_statsview_t *s);

#endif
