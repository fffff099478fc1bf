# The durable store (rc_store): its cmocka test (round trips, crashes under
# SIGKILL, damaged and foreign files, a full disk) and store_bench, the tool
# that measures it and the disk (docs/store.md; not a test).
if(TARGET rc_store)
  rc_add_test(test_store SOURCES test_store.c LIBS rc_store TIMEOUT 300)
  add_executable(store_bench store_bench.c)
  target_link_libraries(store_bench PRIVATE rc_store)
endif()
