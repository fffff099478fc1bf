# The Python client (client/python): refcache_pb2.py generated from the
# contract into the build dir at build time (never committed), and the pytest
# suite run by ctest against the refcache-broker built here.
find_program(RC_PROTOC protoc)
set(RC_PYTHON /usr/bin/python3 CACHE FILEPATH "Python with Debian's python3-zmq, python3-protobuf and python3-pytest")

if(NOT RC_PROTOC)
  message(WARNING "protoc not found (protobuf-compiler): the Python client test is not added")
  return()
endif()

set(RC_PB2_DIR ${CMAKE_BINARY_DIR}/python)
set(RC_PROTO_FILE ${PROJECT_SOURCE_DIR}/proto/refcache.proto)
add_custom_command(
  OUTPUT ${RC_PB2_DIR}/refcache_pb2.py
  COMMAND ${CMAKE_COMMAND} -E make_directory ${RC_PB2_DIR}
  COMMAND ${RC_PROTOC} --python_out=${RC_PB2_DIR} -I${PROJECT_SOURCE_DIR}/proto ${RC_PROTO_FILE}
  DEPENDS ${RC_PROTO_FILE}
  COMMENT "protoc --python_out refcache.proto")
add_custom_target(refcache_python ALL DEPENDS ${RC_PB2_DIR}/refcache_pb2.py)

if(TARGET refcache-broker)
  set(RC_PY_BROKER $<TARGET_FILE:refcache-broker>)
else()
  set(RC_PY_BROKER ${CMAKE_BINARY_DIR}/broker/refcache-broker)
endif()
if(TARGET refcache)
  set(RC_PY_CLI $<TARGET_FILE:refcache>)
else()
  set(RC_PY_CLI ${CMAKE_BINARY_DIR}/client/refcache)
endif()

add_test(NAME python_client
  COMMAND ${RC_PYTHON} -m pytest -q -p no:cacheprovider ${PROJECT_SOURCE_DIR}/client/python)
set_tests_properties(python_client PROPERTIES
  TIMEOUT 300
  ENVIRONMENT "REFCACHE_PB2_DIR=${RC_PB2_DIR};REFCACHE_BROKER=${RC_PY_BROKER};REFCACHE_CLI=${RC_PY_CLI};PYTHONDONTWRITEBYTECODE=1")
