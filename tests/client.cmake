# Client library and CLI tests.
rc_add_test(test_client_json SOURCES test_client_json.c LIBS rc_cli_util)
rc_add_test(test_client_args SOURCES test_client_args.c LIBS rc_cli_util)
rc_add_test(test_client_pages SOURCES test_client_pages.c LIBS rc_client)
rc_add_test(test_client_lib SOURCES test_client_lib.c LIBS rc_client)
rc_add_test(test_client_codec SOURCES test_client_codec.c LIBS rc_client)

# Integration tests with a real broker and its in-process workers; they need
# the rc_broker library target.
if(TARGET rc_broker)
  rc_add_test(test_e2e SOURCES test_e2e.c LIBS rc_testkit TIMEOUT 300)
  rc_add_test(test_cli SOURCES test_cli.c LIBS rc_testkit TIMEOUT 120)
  target_compile_definitions(test_cli PRIVATE RC_CLI_PATH="$<TARGET_FILE:refcache>")
  add_dependencies(test_cli refcache)
endif()

# The public headers beside every internal one, in one translation unit.
if(TARGET rc_broker AND TARGET rc_worker)
  rc_add_test(test_headers SOURCES test_headers.c LIBS rc_client rc_worker rc_broker)
endif()

# The programs' option parser.
rc_add_test(test_opts SOURCES test_opts.c LIBS rc_util)

# The four programs' options, run as a user runs them.
if(TARGET refcache-broker AND TARGET refcache-worker AND TARGET refcache AND TARGET refcache-bench)
  rc_add_test(test_programs SOURCES test_programs.c TIMEOUT 120)
  target_compile_definitions(test_programs PRIVATE RC_BROKER_PATH="$<TARGET_FILE:refcache-broker>"
    RC_WORKER_PATH="$<TARGET_FILE:refcache-worker>" RC_CLI_PATH="$<TARGET_FILE:refcache>"
    RC_BENCH_PATH="$<TARGET_FILE:refcache-bench>")
  add_dependencies(test_programs refcache-broker refcache-worker refcache refcache-bench)
endif()

# The growable buffer every module shares (proto/rc_buf).
rc_add_test(test_buf SOURCES test_buf.c LIBS rc_proto)
