/* codec_loop: what its two halves share (the client's codec cannot be
 * compiled beside the broker's, whose internal names it reuses). */
#ifndef CODEC_LOOP_H
#define CODEC_LOOP_H

#include <protobuf-c/protobuf-c.h>

/* Prints what failed and exits. */
void loop_fail(const char *what);

/* A bump allocator, emptied by loop_alloc_reset. */
extern ProtobufCAllocator loop_alloc;
void loop_alloc_reset(void);

/* The client group: n rounds. */
void loop_client(long n);

#endif
