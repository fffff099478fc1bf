#!/usr/bin/env bash
# refcache-relay works as scripts/perf.sh uses it: serve on an ephemeral
# loopback port (the bound endpoint read back from its output), load and
# ping (with and without a gap) print their figures; bad arguments get the
# usage and exit 2; a client with no server gives up with a clear error.
# Usage: relay_check.sh RELAY
set -euo pipefail
relay=$1
out=$(mktemp)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -f "$out"; }
trap cleanup EXIT

"$relay" serve 'tcp://127.0.0.1:*' 2 >"$out" &
pid=$!
for _ in $(seq 100); do grep -q '^ready' "$out" && break; sleep 0.05; done
grep -q '^ready' "$out" || { echo "FAIL: relay not ready"; cat "$out"; exit 1; }
ep=$(awk '/^front/{print $2}' "$out")
echo "relay serving on $ep"

load=$(timeout 30 "$relay" load "$ep" 20000 100)
echo "$load"
[[ $load =~ ^relay_rps\ [0-9]+$ ]] || { echo "FAIL: load printed '$load'"; exit 1; }
ping=$(timeout 30 "$relay" ping "$ep" 500)
echo "$ping"
[[ $ping =~ ^relay_rtt_us\ p50\ [0-9.]+\ p99\ [0-9.]+$ ]] || { echo "FAIL: ping printed '$ping'"; exit 1; }
gap=$(timeout 30 "$relay" ping "$ep" 50 200)
echo "$gap"
[[ $gap =~ ^relay_rtt_us\ p50 ]] || { echo "FAIL: ping with a gap printed '$gap'"; exit 1; }

set +e
"$relay" load "$ep" 0 10 2>/dev/null; [ $? -eq 2 ] || { echo "FAIL: load N=0 not refused with 2"; exit 1; }
"$relay" frobnicate "$ep" 2>/dev/null; [ $? -eq 2 ] || { echo "FAIL: unknown mode not refused with 2"; exit 1; }
kill "$pid"; wait "$pid" 2>/dev/null; pid=
msg=$(timeout 30 "$relay" ping "$ep" 1 2>&1); rc=$?
set -e
[ $rc -eq 1 ] && [[ $msg == *"no reply from $ep"* ]] || { echo "FAIL: no server: rc $rc, '$msg'"; exit 1; }
echo "relay_check: OK"
