# Broker unit tests: one cmocka executable per module, no sockets. The state
# machine, the timer heap, the hash table, the keyed hash, the protobuf codec
# and the shared helpers in proto/ (rc_broker carries rc_proto).
rc_add_test(test_task SOURCES test_task.c LIBS rc_broker)
target_compile_definitions(test_task PRIVATE RC_STATE_MACHINE_DOC="${PROJECT_SOURCE_DIR}/docs/state-machine.md")
rc_add_test(test_timer SOURCES test_timer.c LIBS rc_broker rc_testkit)
rc_add_test(test_table SOURCES test_table.c LIBS rc_broker rc_testkit)
rc_add_test(test_key SOURCES test_key.c LIBS rc_broker rc_testkit)
rc_add_test(test_codec SOURCES test_codec.c LIBS rc_broker rc_testkit)
rc_add_test(test_common SOURCES test_common.c LIBS rc_broker)

# The core's cost per task, driven without the loop's timing (run it under
# callgrind to compare builds); the smoke test keeps it working.
add_library(rc_coredrive STATIC rc_coredrive.c)
target_include_directories(rc_coredrive PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(rc_coredrive PUBLIC rc_broker)
add_executable(bench_core bench_core.c)
target_link_libraries(bench_core PRIVATE rc_coredrive)
# Linked as refcache-broker is (link-time optimised where the broker is).
get_target_property(rc_broker_lto rc_broker INTERPROCEDURAL_OPTIMIZATION)
if(rc_broker_lto)
  set_target_properties(bench_core rc_coredrive PROPERTIES INTERPROCEDURAL_OPTIMIZATION TRUE)
endif()
add_test(NAME bench_core_smoke COMMAND bench_core 50)
set_tests_properties(bench_core_smoke PROPERTIES TIMEOUT 60)

# Handles on shared work, against a real broker and worker pool.
rc_add_test(test_handles SOURCES test_handles.c LIBS rc_testkit TIMEOUT 120)
