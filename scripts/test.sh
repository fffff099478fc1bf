#!/usr/bin/env bash
# Sets up (scripts/setup.sh --test) and runs the whole test suite:
#   1. the build with -Werror, all tests (cmocka unit and integration tests,
#      the CLI, the Python client and worker) under ctest;
#   2. the same tests built with AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. the integration tests and the store's test once under valgrind (no leak allowed);
#   4. the .deb packages built and checked (scripts/deb.sh: contents with
#      dpkg-deb, no lintian error).
# Usage: scripts/test.sh [--quick]   (--quick: step 1 only)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/setup.sh --test --deb
jobs=$(nproc)

echo "== tests (build/)"
(cd build && ctest --output-on-failure -j "$jobs" --timeout 600)

[ "${1:-}" = "--quick" ] && exit 0

echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRC_WERROR=ON -DRC_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j "$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure -j "$jobs" --timeout 600 -E '^python')

echo "== short fuzz run of the broker (build-fuzz/; exits non-zero on a crash or leak)"
bash scripts/fuzz.sh 60

echo "== integration tests under valgrind (build/)"
for t in test_e2e test_worker_protocol test_request_batches conformance/test_conformance test_store test_observe \
  test_observe_curve test_rejoin; do
  [ -x "build/tests/$t" ] || { echo "missing build/tests/$t" >&2; exit 1; }
  REFCACHE_KIT_TIME_SCALE=5 valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
    "build/tests/$t"
done
echo "== .deb packages (build-deb/; bounded to 20 minutes)"
timeout 1200 bash scripts/deb.sh --lintian
echo "== all test stages passed"
