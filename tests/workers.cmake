# Worker library tests: the built-ins' pure logic, and the worker side of the
# protocol against ROUTER sockets the test binds itself.
rc_add_test(test_builtins SOURCES test_builtins.c LIBS rc_worker)
rc_add_test(test_worker_protocol SOURCES test_worker_protocol.c LIBS rc_worker)
# The in-process pool's cancel board: the ring and its registry.
rc_add_test(test_board SOURCES test_board.c LIBS rc_worker)
# The worker's hand-written codec against protobuf-c (and the broker's
# encoder of the dispatch it reads, from rc_broker).
rc_add_test(test_worker_codec SOURCES test_worker_codec.c LIBS rc_broker)
