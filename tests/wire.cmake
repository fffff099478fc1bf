# The wire layer: codec_loop, the hand codecs' hot paths in a loop for
# instruction counts under callgrind (a tool, not a test).
add_executable(codec_loop codec_loop.c codec_loop_client.c)
target_include_directories(codec_loop PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(codec_loop PRIVATE rc_broker rc_client)

# Every field of every message a hand codec handles is accounted for by that
# codec, and the encoders write what they claim: adding a field to
# refcache.proto fails this until the codecs are taught it.
rc_add_test(test_wire_drift SOURCES test_wire_drift.c LIBS rc_broker rc_client)

# rc_arena, the allocator the three codecs decode into.
rc_add_test(test_arena SOURCES test_arena.c LIBS rc_proto)
