# Lists every message descriptor refcache.pb-c.h declares, one
# RC_DESCRIPTOR(name) line each, for rc_fieldgen (cmake -DIN=... -DOUT=... -P).
file(STRINGS ${IN} lines REGEX "^extern const ProtobufCMessageDescriptor [a-z0-9_]+;")
set(out "/* Generated from refcache.pb-c.h by descriptors.cmake: do not edit. */\n")
foreach(line IN LISTS lines)
  string(REGEX REPLACE "^extern const ProtobufCMessageDescriptor ([a-z0-9_]+);.*" "RC_DESCRIPTOR(\\1)" entry "${line}")
  string(APPEND out "${entry}\n")
endforeach()
file(WRITE ${OUT} "${out}")
