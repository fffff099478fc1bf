# Workers that leave and come back: a broker in the test process and
# hand-driven workers (rc_handworker), then real refcache-worker and
# refcache-broker processes stopped, cut off and restarted.
if(TARGET rc_broker AND TARGET rc_client)
  add_library(rc_handworker STATIC rc_handworker.c)
  target_include_directories(rc_handworker PUBLIC ${CMAKE_CURRENT_SOURCE_DIR} PRIVATE ${CMOCKA_INCLUDE_DIR})
  target_link_libraries(rc_handworker PUBLIC rc_testkit)
  rc_add_test(test_rejoin SOURCES test_rejoin.c LIBS rc_handworker TIMEOUT 120)
endif()
if(TARGET rc_broker AND TARGET rc_client AND TARGET refcache-worker AND TARGET refcache-broker)
  add_library(rc_procs STATIC rc_procs.c)
  target_include_directories(rc_procs PUBLIC ${CMAKE_CURRENT_SOURCE_DIR} PRIVATE ${CMOCKA_INCLUDE_DIR})
  target_link_libraries(rc_procs PUBLIC rc_proto ${CMOCKA_LIBRARIES})
  rc_add_test(test_stops SOURCES test_stops.c LIBS rc_procs rc_testkit TIMEOUT 240)
  target_compile_definitions(test_stops PRIVATE RC_WORKER_PATH="$<TARGET_FILE:refcache-worker>"
                                                RC_BROKER_PATH="$<TARGET_FILE:refcache-broker>")
  add_dependencies(test_stops refcache-worker refcache-broker)
endif()
if(TARGET rc_client AND TARGET refcache-broker)
  rc_add_test(test_client_retry SOURCES test_client_retry.c LIBS rc_procs rc_client TIMEOUT 180)
  target_compile_definitions(test_client_retry PRIVATE RC_BROKER_PATH="$<TARGET_FILE:refcache-broker>")
  add_dependencies(test_client_retry refcache-broker)
endif()
# The fault test across network namespaces (root: ip netns, veth).
if(TARGET rc_client AND TARGET refcache-broker AND TARGET refcache-worker)
  rc_add_test(test_fault_netns SOURCES test_fault_netns.c LIBS rc_procs rc_client TIMEOUT 180)
  target_compile_definitions(test_fault_netns PRIVATE RC_WORKER_PATH="$<TARGET_FILE:refcache-worker>"
                                                      RC_BROKER_PATH="$<TARGET_FILE:refcache-broker>")
  add_dependencies(test_fault_netns refcache-broker refcache-worker)
  set_tests_properties(test_fault_netns PROPERTIES SKIP_RETURN_CODE 77)
endif()
