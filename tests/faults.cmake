# Fault-injection integration tests: a broker in the test process and real
# refcache-worker processes (killed, frozen), a garbage-speaking worker, a
# submit flood and vanishing clients.
if(TARGET rc_broker AND TARGET rc_client AND TARGET refcache-worker)
  rc_add_test(test_faults SOURCES test_faults.c LIBS rc_testkit TIMEOUT 300)
  target_compile_definitions(test_faults PRIVATE RC_WORKER_PATH="$<TARGET_FILE:refcache-worker>")
  add_dependencies(test_faults refcache-worker)
endif()

# The client side of scripts/soak.sh (not a test: the soak runs for minutes).
if(TARGET rc_client)
  add_executable(soak_driver soak_driver.c)
  target_link_libraries(soak_driver PRIVATE rc_client)
endif()
# RequestBatch and ReplyBatch with a broker in the test process (in-process
# echo workers and a hand-driven one) and raw client sockets.
if(TARGET rc_broker AND TARGET rc_client)
  rc_add_test(test_request_batches SOURCES test_request_batches.c LIBS rc_testkit TIMEOUT 120)
endif()
