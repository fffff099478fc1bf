# Seeing inside: the list index and the histograms as units; List, Workers,
# Watch and Metrics against a real broker.
rc_add_test(test_listidx SOURCES test_listidx.c LIBS rc_broker)
rc_add_test(test_metrics SOURCES test_metrics.c LIBS rc_broker)
rc_add_test(test_observe SOURCES test_observe.c LIBS rc_testkit TIMEOUT 120)

# The CLI's list, workers and events, run as a user runs them (pytest).
add_test(NAME cli_observe
  COMMAND /usr/bin/python3 -m pytest -q -p no:cacheprovider ${CMAKE_CURRENT_SOURCE_DIR}/observe/test_cli_observe.py ${CMAKE_CURRENT_SOURCE_DIR}/observe/test_top.py ${CMAKE_CURRENT_SOURCE_DIR}/observe/test_logs.py)
set_tests_properties(cli_observe PROPERTIES TIMEOUT 180
  ENVIRONMENT "REFCACHE_BROKER=$<TARGET_FILE:refcache-broker>;REFCACHE_CLI=$<TARGET_FILE:refcache>;PYTHONDONTWRITEBYTECODE=1")

# Who sees what under CURVE: client keys their own tasks, admin keys all.
rc_add_test(test_observe_curve SOURCES test_observe_curve.c LIBS rc_testkit TIMEOUT 120)

# --http: /metrics through the Prometheus client's parser, the JSON API,
# and the status page as headless Chromium shows it.
add_test(NAME http_observe
  COMMAND /usr/bin/python3 -m pytest -q -p no:cacheprovider ${CMAKE_CURRENT_SOURCE_DIR}/observe/test_http.py ${CMAKE_CURRENT_SOURCE_DIR}/observe/test_page.py)
set_tests_properties(http_observe PROPERTIES TIMEOUT 240
  ENVIRONMENT "REFCACHE_BROKER=$<TARGET_FILE:refcache-broker>;REFCACHE_CLI=$<TARGET_FILE:refcache>;PYTHONDONTWRITEBYTECODE=1")

# List's loop time and the memory per kept task with millions of records
# (a tool: build-rel/tests/bench_list 2000000); the smoke test keeps it working.
add_executable(bench_list bench_list.c)
target_link_libraries(bench_list PRIVATE rc_coredrive)
add_test(NAME bench_list_smoke COMMAND bench_list 5000 5)
set_tests_properties(bench_list_smoke PROPERTIES TIMEOUT 60)

# One watcher that only counts events, beside refcache-bench throughput: what
# watching costs the broker (a tool, docs/performance.md; not a test).
add_executable(watch_count watch_count.c)
target_link_libraries(watch_count PRIVATE rc_client)
