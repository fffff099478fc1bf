#!/usr/bin/env bash
# Soak (not in CI): refcache-broker --workers 2 plus two refcache-worker
# processes; for MINUTES (default 5) tests/soak_driver submits a mix of echo,
# sleep, spin, failing and deadline-bound tasks and cancels some, while one
# of the worker processes is killed with SIGKILL (and restarted) every 20 s.
# At the end: every ref_id handed out is terminal, nothing is PENDING or
# PROCESSING, no wait is held; the broker's rss before/after is printed.
# The broker keeps finished tasks for RC_SOAK_TTL seconds (default: the run
# plus 60 s, so that the driver can still read every one at the end); after
# the load, the script waits until they have expired and prints the broker's
# task count and rss again, so a leak or memory that is not handed back shows.
# Usage: scripts/soak.sh [MINUTES]    (env RC_SOAK_BUILD: build dir, RC_SOAK_TTL)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
minutes=${1:-5}
build=${RC_SOAK_BUILD:-$root/build-soak}

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target refcache-broker refcache-worker refcache soak_driver >/dev/null
# Records must outlive the run (the driver reads every one at the end).
ttl=${RC_SOAK_TTL:-$(awk -v m="$minutes" 'BEGIN { print int(m * 60) + 60 }')}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cep=tcp://127.0.0.1:$(port) wep=tcp://127.0.0.1:$(port) kep=tcp://127.0.0.1:$(port)
log=$(mktemp -d "${TMPDIR:-/tmp}/rc-soak.XXXXXX")
pids=()
cleanup() {
  touch "$log/stop"
  [ -n "${killer:-}" ] && wait "$killer" 2>/dev/null || true
  [ -f "$log/workers" ] && xargs -r kill -9 <"$log/workers" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

"$build/broker/refcache-broker" --clients "$cep" --workers-endpoint "$wep" --control "$kep" --workers 2 \
  --heartbeat-ms 500 --liveness 4 --retry-base-ms 50 --ttl "$ttl" --store "$log/broker.db" >"$log/broker.log" 2>&1 &
pids+=($!)
broker=$!

worker() {
  "$build/workers/refcache-worker" --broker "$wep" --control "$kep" --threads 2 --heartbeat-ms 500 \
    >>"$log/workers.log" 2>&1 &
  echo $!
}

# The killer: two worker processes, one of them killed -9 and replaced every 20 s.
(
  w=("$(worker)" "$(worker)")
  printf '%s\n' "${w[@]}" >"$log/workers"
  kills=0
  while [ ! -e "$log/stop" ]; do
    for _ in $(seq 200); do [ -e "$log/stop" ] && break; sleep 0.1; done
    [ -e "$log/stop" ] && break
    i=$((RANDOM % 2))
    kill -9 "${w[$i]}" 2>/dev/null || true
    wait "${w[$i]}" 2>/dev/null || true
    kills=$((kills + 1))
    w[$i]=$(worker)
    printf '%s\n' "${w[@]}" >"$log/workers"
    echo "$kills" >"$log/kills"
  done
  kill -9 "${w[@]}" 2>/dev/null || true
) &
killer=$!

echo "== soak for $minutes min: broker $cep (pid $broker), logs in $log"
set +e
"$build/tests/soak_driver" "$cep" "$(awk -v m="$minutes" 'BEGIN { print int(m * 60) }')"
rc=$?
set -e
touch "$log/stop"
echo "soak: worker processes killed with SIGKILL and restarted: $(cat "$log/kills" 2>/dev/null || echo 0)"
kill -0 "$broker" 2>/dev/null || { echo "soak: the broker died" >&2; tail -20 "$log/broker.log" >&2; rc=1; }

# Drain: every record's TTL passes; the table must empty and memory come back.
stat() { "$build/client/refcache" --endpoint "$cep" --json stats |
  /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["tasks_pending"]+d["tasks_processing"]+d["tasks_complete"]+d["tasks_failed"]+d["tasks_cancelled"], d["rss_bytes"])'; }
echo "soak: waiting up to $((ttl + 30)) s for the TTL to drop every record"
for _ in $(seq $(((ttl + 30) * 2))); do
  read -r tasks rss < <(stat)
  [ "$tasks" = 0 ] && break
  sleep 0.5
done
sleep 2 # one heartbeat tick after the last expiry hands the memory back
read -r tasks rss < <(stat)
echo "soak: after the TTL: $tasks task records, rss $(awk -v r="$rss" 'BEGIN { printf "%.1f MiB", r / 1048576 }')"
[ "$tasks" = 0 ] || { echo "soak: records left after their TTL" >&2; rc=1; }
exit $rc
