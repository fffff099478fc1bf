# Security tests: a CURVE broker started in-process, worker pools
# and clients with their own keys over TCP, certificates generated per test.
if(TARGET rc_broker AND TARGET rc_worker AND TARGET rc_client)
  rc_add_test(test_security SOURCES test_security.c LIBS rc_testkit rc_client rc_worker rc_broker TIMEOUT 180)
endif()
