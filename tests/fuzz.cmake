# The broker fuzzer (tests/fuzz_broker.c, libFuzzer; only with -DRC_FUZZ=ON
# and clang), its seed generator, and the regression test that replays every
# committed input (always built). The record interpreter, fuzz_replay.c, is
# shared by all three.
if(TARGET rc_broker)
  rc_add_test(test_fuzz_regressions SOURCES test_fuzz_regressions.c fuzz_replay.c LIBS rc_broker TIMEOUT 120)
  target_compile_definitions(test_fuzz_regressions PRIVATE RC_FUZZ_DIR="${CMAKE_CURRENT_SOURCE_DIR}/fuzz")

  # Writes the hand-made seed inputs: rc_fuzz_gen_corpus tests/fuzz/corpus
  add_executable(rc_fuzz_gen_corpus fuzz/gen_corpus.c fuzz_replay.c)
  target_include_directories(rc_fuzz_gen_corpus PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(rc_fuzz_gen_corpus PRIVATE rc_broker)

  if(RC_FUZZ)
    if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
      message(WARNING "RC_FUZZ needs clang (CC=clang); fuzz_broker is not built")
    else()
      # Coverage feedback must come from the code under test, so the broker
      # and the protocol library get the fuzzer's instrumentation too (only
      # in a build configured with RC_FUZZ).
      foreach(lib rc_broker rc_proto)
        target_compile_options(${lib} PRIVATE -fsanitize=fuzzer-no-link)
      endforeach()
      add_executable(fuzz_broker fuzz_broker.c fuzz_replay.c)
      target_include_directories(fuzz_broker PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
      target_compile_options(fuzz_broker PRIVATE -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer)
      target_link_options(fuzz_broker PRIVATE -fsanitize=fuzzer,address,undefined)
      target_link_libraries(fuzz_broker PRIVATE rc_broker)
    endif()
  endif()
endif()
