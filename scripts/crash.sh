#!/usr/bin/env bash
# Crash cycles, longer than CI runs them: refcache-broker on a store is
# killed with SIGKILL at random moments under a mixed load and started again
# on the same store, CYCLES times (default 200); every promise a reply made
# is checked after each restart (tests/test_crash.c says what is checked).
# Usage: scripts/crash.sh [CYCLES]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc)" --target test_crash refcache-broker >/dev/null
RC_CRASH_CYCLES=${1:-200} build/tests/test_crash
