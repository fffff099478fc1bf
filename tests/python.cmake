# The Python package's tests (client/python/tests), run against the package
# as a user installs it: python_install makes a fresh venv with
# --system-site-packages (Debian's python3-zmq, python3-protobuf, pytest) and
# installs the package into it with `pip install --no-index
# --no-build-isolation` from the staged sources (client/python/README.md);
# python_client then runs pytest with that venv's python, outside the source
# tree, against the refcache-broker and refcache CLI built here.
if(NOT TARGET refcache_python)
  message(WARNING "the Python package is not built (see above): its tests are not added")
  return()
endif()

set(RC_PY_TEST_VENV ${CMAKE_BINARY_DIR}/python/test-venv)
add_test(NAME python_install
  COMMAND ${CMAKE_COMMAND} -E env PIP_DISABLE_PIP_VERSION_CHECK=1 REFCACHE_SOURCE_DIR=${PROJECT_SOURCE_DIR}
          PROTOC=${RC_PROTOC} /bin/sh -c "rm -rf \"$0\" && \"$1\" -m venv --system-site-packages \"$0\" && \"$0/bin/python\" -m pip install --quiet --no-index --no-build-isolation --no-cache-dir \"$2\""
          ${RC_PY_TEST_VENV} ${RC_PYTHON} ${RC_PY_STAGE})
set_tests_properties(python_install PROPERTIES TIMEOUT 120 FIXTURES_SETUP python_venv)

add_test(NAME python_client
  COMMAND ${RC_PY_TEST_VENV}/bin/python -m pytest -q -p no:cacheprovider ${PROJECT_SOURCE_DIR}/client/python)
set_tests_properties(python_client PROPERTIES
  TIMEOUT 300
  FIXTURES_REQUIRED python_venv
  WORKING_DIRECTORY ${CMAKE_BINARY_DIR}/python
  ENVIRONMENT "REFCACHE_BROKER=$<TARGET_FILE:refcache-broker>;REFCACHE_CLI=$<TARGET_FILE:refcache>;REFCACHE_PROJECT_VERSION=${PROJECT_VERSION};PYTHONDONTWRITEBYTECODE=1")
