#!/usr/bin/env bash
# Builds the broker fuzzer (clang, libFuzzer + ASan + UBSan, in build-fuzz/)
# and runs it for SECONDS (default 60) over a copy of the committed seed
# corpus (tests/fuzz/corpus), with the known regressions as extra seeds.
# Exits non-zero if the fuzzer finds a crash, a leak or a timeout; the input
# is left in build-fuzz/fuzz-artifacts/ (keep it in tests/fuzz/regressions/).
# Usage: scripts/fuzz.sh [SECONDS]    (env RC_FUZZ_BUILD: build dir, RC_FUZZ_JOBS)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-60}
build=${RC_FUZZ_BUILD:-$root/build-fuzz}

command -v clang >/dev/null || { echo "fuzz.sh: clang is needed" >&2; exit 1; }
CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRC_FUZZ=ON \
  -DRC_SANITIZE=address,undefined >/dev/null
cmake --build "$build" -j "$(nproc)" --target fuzz_broker >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/rc-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$build/fuzz-artifacts"
cp tests/fuzz/corpus/* "$work/corpus/"
seeds=(tests/fuzz/corpus)
if compgen -G "tests/fuzz/regressions/*" >/dev/null; then
  seeds+=(tests/fuzz/regressions)
fi

echo "== fuzz_broker for ${secs}s ($(ls "$work/corpus" | wc -l) seeds)"
set +e
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$build/tests/fuzz_broker" "$work/corpus" "${seeds[@]}" \
  -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -max_len=4096 -print_final_stats=1 \
  -artifact_prefix="$build/fuzz-artifacts/" >"$work/log" 2>&1
rc=$?
set -e
grep -E '^stat::number_of_executed_units|^stat::peak_rss' "$work/log" || true
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
echo "fuzz: ${execs:-?} executions in ${secs}s, corpus $(ls "$work/corpus" | wc -l) inputs" \
  "($(du -sk "$work/corpus" | cut -f1) KiB)"
if [ "$rc" -ne 0 ]; then
  echo "fuzz: FAILED (exit $rc); the last 80 lines of the log:" >&2
  tail -n 80 "$work/log" >&2
  ls -l "$build/fuzz-artifacts/" >&2
  exit 1
fi
