/* rc_worker_codec: the worker's hot messages without protobuf-c's generic
 * code (docs/performance.md). A Dispatch is read by hand into the same
 * protobuf-c structs refcache__v1__broker_message__unpack makes, and a
 * Result or Started is written byte for byte as protobuf-c packs it, with
 * the field numbers of rc_fields.h. Not part of the public worker API. */
#ifndef RC_WORKER_CODEC_H
#define RC_WORKER_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "rc_wire.h"
#include "refcache.pb-c.h"

/* Decodes a BrokerMessage{dispatch}, or a BrokerMessage{dispatches} whose
 * every Dispatch is, in its common shape: each field of the
 * Dispatch at most once, in field-number order or with the attempt last (as
 * the broker writes it), one-byte keys, no unknown field. Everything is
 * allocated with alloc, the message itself first, as protobuf-c's unpack
 * does, so protobuf_c_message_free_unpacked frees it. NULL for any other
 * shape (and out of memory), with what it allocated freed: the caller then
 * hands the bytes to protobuf-c, which decodes or rejects them. */
Refcache__V1__BrokerMessage *rc_worker_codec_dispatch(const uint8_t *data, size_t len,
                                                      ProtobufCAllocator *alloc);

/* The size of WorkerMessage{result{ref_id, attempt, data}}, and its bytes
 * written at out (which has room for them); returns the end. ref_id may be
 * NULL (empty). */
size_t rc_worker_codec_result_size(const char *ref_id, uint32_t attempt, size_t len);
uint8_t *rc_worker_codec_result_put(uint8_t *out, const char *ref_id, uint32_t attempt, const void *data,
                                    size_t len);

/* Results sent together: each as one entry of a ResultBatch, and the head
 * of the WorkerMessage{results} around entries of body_len bytes, written
 * so that it ends just before at; returns its length (at most
 * RC_WORKER_RESULTS_HEAD). A single entry goes as WorkerMessage{result}
 * instead: the same bytes but for the first, the key, which
 * rc_worker_codec_entry_to_result rewrites. */
#define RC_WORKER_RESULTS_HEAD RC_WIRE_HEAD_MAX
size_t rc_worker_codec_result_entry_size(const char *ref_id, uint32_t attempt, size_t len);
uint8_t *rc_worker_codec_result_entry_put(uint8_t *out, const char *ref_id, uint32_t attempt,
                                          const void *data, size_t len);
size_t rc_worker_codec_results_head(uint8_t *at, size_t body_len);
void rc_worker_codec_entry_to_result(uint8_t *entry);

/* The same for WorkerMessage{started{ref_id, attempt}}. */
size_t rc_worker_codec_started_size(const char *ref_id, uint32_t attempt);
uint8_t *rc_worker_codec_started_put(uint8_t *out, const char *ref_id, uint32_t attempt);

/* What the codec reads and writes of each message, field by field, for
 * test_wire_drift (rc_wire.h); ended by a zeroed entry. */
extern const rc_wire_cover_t rc_worker_codec_covers[];

#endif
