# refcache-relay, the baseline scripts/perf.sh measures refcache against.
add_test(NAME relay_smoke COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/relay_check.sh $<TARGET_FILE:refcache-relay>)
set_tests_properties(relay_smoke PROPERTIES TIMEOUT 60)
