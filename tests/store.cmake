# The durable store (rc_store): its cmocka test (round trips, crashes under
# SIGKILL, damaged and foreign files, a full disk) and store_bench, the tool
# that measures it and the disk (docs/store.md; not a test).
if(TARGET rc_store)
  rc_add_test(test_store SOURCES test_store.c LIBS rc_store TIMEOUT 300)
  add_executable(store_bench store_bench.c)
  target_link_libraries(store_bench PRIVATE rc_store)
endif()

# The broker on a store: what a restart keeps.
rc_add_test(test_store_broker SOURCES test_store_broker.c LIBS rc_testkit TIMEOUT 120)
target_compile_definitions(test_store_broker PRIVATE RC_BROKER_PATH="$<TARGET_FILE:refcache-broker>")
add_dependencies(test_store_broker refcache-broker)

# refcache-broker killed with SIGKILL under load and started again on its
# store, many times: every promise a reply made is kept.
rc_add_test(test_crash SOURCES test_crash.c LIBS rc_testkit TIMEOUT 300)
target_compile_definitions(test_crash PRIVATE RC_BROKER_PATH="$<TARGET_FILE:refcache-broker>")
add_dependencies(test_crash refcache-broker)
