/* rc_pbjson: protobuf's canonical JSON mapping for protobuf-c messages,
 * done generically through their descriptors (no per-message code): JSON
 * to packed bytes for the requests a conformance case sends, and a message
 * to a JSON tree for the replies it checks. */
#ifndef RC_PBJSON_H
#define RC_PBJSON_H

#include <protobuf-c/protobuf-c.h>

#include "rc_jdoc.h"

/* Builds the d message that json describes (field names as in the .proto
 * or in lowerCamelCase; enums by name or number; 64-bit integers as
 * numbers or decimal strings; bytes as base64; maps as objects; null for a
 * default) and packs it into *out (malloc'd), *len bytes. 0, or -1 with
 * the offending field's path and the reason in err. Unknown fields and
 * two members of one oneof are errors. */
int rc_pbjson_pack(const rc_jdoc_t *json, const ProtobufCMessageDescriptor *d, uint8_t **out, size_t *len,
                   char *err, size_t errlen);

/* The JSON tree of m: field names as in the .proto; every field without
 * presence (proto3 scalars, repeated, maps), defaults included; message
 * fields and oneof members only when set; enums by name; bytes as
 * raw-bytes strings (printed as base64). NULL out of memory. */
rc_jdoc_t *rc_pbjson_tree(const ProtobufCMessage *m);

#endif
