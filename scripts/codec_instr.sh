#!/usr/bin/env bash
# Instructions per round of each hot codec path (tests/codec_loop.c), under
# callgrind: (total for N rounds - total for 0 rounds) / N. Deterministic, so
# a loaded machine gives the same figures. Builds Release into build-cg/.
# Usage: scripts/codec_instr.sh [N]   (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
cmake -S . -B build-cg -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-cg -j2 --target codec_loop >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ir() {
  valgrind --tool=callgrind --callgrind-out-file="$tmp/out" build-cg/tests/codec_loop "$1" "$2" 2>"$tmp/err" >/dev/null
  awk '/^summary:/{print $2}' "$tmp/out"
}
printf '%-8s %12s\n' group 'Ir/round'
for g in submit batch reply result client worker; do
  base=$(ir "$g" 0)
  total=$(ir "$g" "$n")
  awk -v g="$g" -v t="$total" -v b="$base" -v n="$n" 'BEGIN{printf "%-8s %12.1f\n", g, (t - b) / n}'
done
