# refcache-bench, the load-testing harness, and its tests.

# The latency histogram, a library so that its unit test can link it.
add_library(rc_hist STATIC ${CMAKE_CURRENT_LIST_DIR}/rc_hist.c)
target_include_directories(rc_hist PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(rc_hist PUBLIC m)

add_executable(refcache-bench ${CMAKE_CURRENT_LIST_DIR}/bench.c ${CMAKE_CURRENT_LIST_DIR}/bench_options.c
  ${CMAKE_CURRENT_LIST_DIR}/bench_run.c ${CMAKE_CURRENT_LIST_DIR}/bench_scenarios.c
  ${CMAKE_CURRENT_LIST_DIR}/bench_report.c ${CMAKE_CURRENT_LIST_DIR}/rc_bench_cleanup.c)
target_link_libraries(refcache-bench PRIVATE rc_hist rc_cli_util rc_util rc_client Threads::Threads m)

# The tests are defined at the end of the top-level directory: this file is
# read before include(CTest) and find_package(cmocka) run there, so
# BUILD_TESTING and cmocka are only known then.
set(RC_BENCH_SOURCE_DIR ${CMAKE_SOURCE_DIR} CACHE INTERNAL "")
function(rc_bench_add_tests)
  if(NOT BUILD_TESTING)
    return()
  endif()
  set(dir ${RC_BENCH_SOURCE_DIR}/tests)
  add_executable(test_bench_hist ${dir}/test_bench_hist.c)
  target_include_directories(test_bench_hist PRIVATE ${CMOCKA_INCLUDE_DIR})
  target_link_libraries(test_bench_hist PRIVATE rc_hist ${CMOCKA_LIBRARIES})
  add_test(NAME test_bench_hist COMMAND test_bench_hist)
  set_tests_properties(test_bench_hist PROPERTIES TIMEOUT 60)
  if(TARGET rc_broker)
    add_executable(test_bench ${dir}/test_bench.c)
    target_include_directories(test_bench PRIVATE ${CMOCKA_INCLUDE_DIR})
    target_link_libraries(test_bench PRIVATE rc_broker rc_client ${CMOCKA_LIBRARIES})
    target_compile_definitions(test_bench PRIVATE RC_BENCH_PATH="$<TARGET_FILE:refcache-bench>")
    add_dependencies(test_bench refcache-bench)
    add_test(NAME test_bench COMMAND test_bench)
    set_tests_properties(test_bench PROPERTIES TIMEOUT 180)
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL rc_bench_add_tests)
