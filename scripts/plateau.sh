#!/usr/bin/env bash
# The broker's size over a long mixed run (not in CI): refcache-broker
# --workers 2 --ttl 60 under `refcache-bench --duration SECONDS mixed`,
# sampled every 30 s — the records it holds, its resident memory and, with
# --store, the size of its store (the database and its WAL). With a 60 s TTL
# the records reach their plateau within the first two minutes, so whatever
# still grows after that is a leak, in memory or on disk.
# Builds Release into build-rel/. Prints one line per sample and a table.
# Usage: scripts/plateau.sh [--store] [SECONDS]   (default 600)
set -euo pipefail
cd "$(dirname "$0")/.."
store=none
if [ "${1:-}" = --store ]; then
  store=yes
  shift
fi
seconds=${1:-600}
cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-rel -j "$(nproc)" --target refcache-broker refcache-bench refcache >/dev/null
dir=$(mktemp -d "${TMPDIR:-/tmp}/rc-plateau.XXXXXX")
[ $store = yes ] && store=$dir/broker.db
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

build-rel/broker/refcache-broker --workers 2 --ttl 60 --store "$store" --clients 'tcp://127.0.0.1:*' \
  --workers-endpoint 'tcp://127.0.0.1:*' --control 'tcp://127.0.0.1:*' >"$dir/broker.txt" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^ready' "$dir/broker.txt" && break; sleep 0.05; done
ep=$(awk '/^clients/{print $2}' "$dir/broker.txt")
[ -n "$ep" ] || { cat "$dir/broker.txt" >&2; exit 1; }
build-rel/client/refcache-bench -e "$ep" --json --duration "$seconds" mixed >"$dir/mixed.json" &
bench=$!
pids+=("$bench")

echo "plateau: store $store, $seconds s of mixed against $ep (load: $(cut -d' ' -f1-3 /proc/loadavg))"
samples=()
for t in $(seq 30 30 "$seconds"); do
  sleep 30
  json=$(build-rel/client/refcache --json -e "$ep" stats)
  file=0
  [ "$store" != none ] && file=$(du -b "$store" "$store-wal" 2>/dev/null | awk '{s += $1} END {print s + 0}')
  line=$(/usr/bin/python3 -c '
import json, sys
s = json.loads(sys.argv[1])
records = sum(s.get(k, 0) for k in ("tasks_pending", "tasks_processing", "tasks_complete", "tasks_failed", "tasks_cancelled"))
print(sys.argv[2], records, round(s.get("rss_bytes", 0) / 1048576, 1), round(int(sys.argv[3]) / 1048576, 1), s.get("requests_total", 0))
' "$json" "$t" "$file")
  echo "t=${t}s records, rss MiB, store MiB, requests: $line"
  samples+=("$line")
done
wait "$bench" || true
/usr/bin/python3 - "$store" "${samples[@]}" <<'EOF'
import sys
store, rows = sys.argv[1], [r.split() for r in sys.argv[2:]]
def table(label, col, fmt):
    print(f"| {label} | " + " | ".join(fmt(r[col]) for r in rows) + " |")
print("| t (s) | " + " | ".join(r[0] for r in rows) + " |")
print("|---|" + "---|" * len(rows))
table("records", 1, lambda v: f"{int(v):,}")
table("RSS (MiB)", 2, str)
if store != "none":
    table("store (MiB)", 3, str)
table("requests so far (k)", 4, lambda v: f"{int(v) // 1000:,}")
EOF
