# Worker library tests: the built-ins' pure logic, and the worker side of the
# protocol against ROUTER sockets the test binds itself.
rc_add_test(test_builtins SOURCES test_builtins.c LIBS rc_worker)
rc_add_test(test_worker_protocol SOURCES test_worker_protocol.c LIBS rc_worker)
