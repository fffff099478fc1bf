/* fuzz_replay: feeds a byte string to the broker core as a sequence of
 * received messages. Shared by the libFuzzer target (fuzz_broker.c), the
 * regression test that replays every committed input
 * (test_fuzz_regressions.c) and the seed generator (fuzz/gen_corpus.c).
 *
 * An input is a sequence of records, read until the bytes run out (a
 * truncated last record is fed as far as it goes):
 *
 *   [op: 1 byte] [rid_len: 1 byte] [rid: rid_len bytes] [nframes: 1 byte]
 *   nframes x ( [len: 2 bytes, little-endian] [len bytes] )
 *
 * op & 3 picks the channel: 0 clients, 1 workers, 2 control; 3 is no message
 * but a clock step (nothing else of the record is read): the fake "now" moves
 * by 1 ms, 300 ms, 10 s or 1 h (bits 2-3) and the core's timers run. Every
 * RC_REPLAY_TICK_EVERY messages the clock also moves by 50 ms. Bit 4 of the
 * first record's op sends replies through sockets without
 * ZMQ_ROUTER_MANDATORY, so dispatches "succeed" and tasks reach PROCESSING;
 * otherwise every reply is refused (EHOSTUNREACH) as for a vanished peer.
 *
 * A rid of length 0 becomes "fuzz-peer" (a ROUTER never delivers an empty
 * routing id). Like the broker's receive loop, at most RC_REPLAY_MAX_FRAMES
 * frames (rid included) are kept, but the handler is told the real count.
 *
 * ref_ids are made predictable: the n-th task created by one input (n from
 * 1) has ref_id "%032x" of n, so an input can address its own tasks. */
#ifndef FUZZ_REPLAY_H
#define FUZZ_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define RC_REPLAY_MAX_FRAMES 4
#define RC_REPLAY_TICK_EVERY 8

enum { RC_REPLAY_CLIENTS = 0, RC_REPLAY_WORKERS = 1, RC_REPLAY_CONTROL = 2, RC_REPLAY_CLOCK = 3 };
enum {
    RC_REPLAY_STEP_1MS = 0 << 2,
    RC_REPLAY_STEP_300MS = 1 << 2,
    RC_REPLAY_STEP_10S = 2 << 2,
    RC_REPLAY_STEP_1H = 3 << 2
};
#define RC_REPLAY_NO_MANDATORY 0x10

/* Replays one input against a fresh broker core (initialised, fed, run
 * until every timer has fired, finalised). The sockets are created on the
 * first call and kept. Returns 0, or -1 if the core could not start. */
int rc_replay(const uint8_t *data, size_t len);

/* Closes the sockets and the context made by rc_replay; rc_replay may be
 * called again afterwards. */
void rc_replay_shutdown(void);

/* A growable byte string for building inputs. */
typedef struct {
    uint8_t *data;
    size_t len, cap;
} rc_replay_buf_t;

/* Appends one message record: channel op, routing id and frames. 0 or -1. */
int rc_replay_put_msg(rc_replay_buf_t *b, uint8_t op, const char *rid, const void *const *frames,
                      const size_t *lens, size_t nframes);

/* Appends a clock step record (op: RC_REPLAY_CLOCK | RC_REPLAY_STEP_*). */
int rc_replay_put_clock(rc_replay_buf_t *b, uint8_t op);

void rc_replay_buf_free(rc_replay_buf_t *b);

#endif
