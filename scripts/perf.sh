#!/usr/bin/env bash
# Measures refcache against refcache-relay, the project's bare ZeroMQ
# forwarder (client/relay.c), side by side, in one run on this machine: the
# method of docs/performance.md.
# Builds Release into build-rel/, then REPS times (default 3): a fresh
# `refcache-broker --workers 2` and a fresh relay with 2 echo threads, and
#   relay load / refcache-bench throughput   (1 client, 1000 in flight; and,
#                                             on a second fresh broker, the
#                                             same with --batch 1)
#   relay ping / refcache-bench latency      (sequential round trips)
#   refcache-bench cancel, storm (100,000), open-loop latency, mixed (10 s)
# on memory-only brokers (--store none), and throughput and latency again on
# a broker with a store (--store in build-rel/perf/), each right after its
# memory-only run, the broker then killed (SIGKILL) and started again to time
# its recovery; the store's bytes per kept task are its files'
# size over the tasks it holds.
# Prints every run's figures and a table of medians with ratios to the relay.
# JSON of every run is left in build-rel/perf/. With --plot, the last run's
# mixed scenario also writes build-rel/perf/mixed-plot/plot.png (gnuplot; the
# set-up installs it when missing), titled with the run's parameters.
# --smoke runs every step with a hundredth of the requests (a check of the
# script; its figures mean nothing). Not part of the test suite.
# Usage: scripts/perf.sh [--plot] [--smoke] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
plot=0 div=1 mixed_s=10
while [ $# -gt 0 ]; do
  case "$1" in
  --plot) plot=1 ;;
  --smoke) div=100 mixed_s=2 ;;   # every step, tiny counts: checks the script, measures nothing
  *) break ;;
  esac
  shift
done
reps=${1:-3}
if [ $plot = 1 ] && ! command -v gnuplot >/dev/null; then
  bash scripts/setup.sh --plot
fi

cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build-rel -j "$(nproc)" --target refcache-broker refcache-bench refcache-relay >/dev/null
out=build-rel/perf
rm -rf "$out" && mkdir -p "$out"
bench=build-rel/client/refcache-bench
relay=build-rel/client/refcache-relay

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Waits (up to 5 s) for a server's "ready" line in file $1.
wait_ready() {
  for _ in $(seq 100); do grep -q '^ready' "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "perf.sh: no 'ready' in $1" >&2; cat "$1" >&2; exit 1
}

# Starts a fresh broker on ephemeral ports, output in $1, its store $2
# (default none): its pid in bpid, its clients endpoint in ep.
start_broker() {
  build-rel/broker/refcache-broker --workers 2 --store "${2:-none}" --clients 'tcp://127.0.0.1:*' \
    --workers-endpoint 'tcp://127.0.0.1:*' --control 'tcp://127.0.0.1:*' >"$1" 2>&1 &
  bpid=$!; pids+=("$bpid")
  wait_ready "$1"
  ep=$(awk '/^clients/{print $2}' "$1")
}

# Starts a fresh relay with 2 echo threads on an ephemeral port: rpid, relay_ep.
start_relay() {
  $relay serve 'tcp://127.0.0.1:*' 2 >"$1" 2>&1 &
  rpid=$!; pids+=("$rpid")
  wait_ready "$1"
  relay_ep=$(awk '/^front/{print $2}' "$1")
}

for rep in $(seq 1 "$reps"); do
  store="$out/store-$rep.db"
  start_broker "$out/broker-store-$rep.txt" "$store"
  store_ep=$ep; store_pid=$bpid
  start_broker "$out/broker-unbatched-$rep.txt"
  unbatched_ep=$ep; unbatched_pid=$bpid
  start_broker "$out/broker-$rep.txt"
  start_relay "$out/relay-serve-$rep.txt"
  echo "== run $rep (broker $ep, relay $relay_ep)"
  # Memory-only and with a store one right after the other, so that their
  # ratio is not the machine's load moving between them.
  $relay load "$relay_ep" $((500000 / div)) 1000 | tee "$out/relay-load-$rep.txt"
  $bench -e "$ep" --json -c 1 -d 1000 -n $((200000 / div)) throughput >"$out/throughput-$rep.json"
  $bench -e "$store_ep" --json -c 1 -d 1000 -n $((200000 / div)) --keep throughput >"$out/store-throughput-$rep.json"
  $bench -e "$unbatched_ep" --json -c 1 -d 1000 -n $((200000 / div)) --batch 1 throughput >"$out/unbatched-$rep.json"
  kill "$unbatched_pid"; wait "$unbatched_pid" 2>/dev/null || true
  $relay ping "$relay_ep" $((20000 / div)) | tee "$out/relay-ping-$rep.txt"
  $bench -e "$ep" --json -n $((20000 / div)) latency >"$out/latency-$rep.json"
  $bench -e "$store_ep" --json -n $((20000 / div)) --keep latency >"$out/store-latency-$rep.json"
  $bench -e "$ep" --json --rate 2000 -n $((20000 / div)) latency >"$out/openloop-$rep.json"
  $bench -e "$ep" --json -n $((div == 1 ? 100 : 5)) cancel >"$out/cancel-$rep.json"
  $bench -e "$ep" --json -n $((100000 / div)) storm >"$out/storm-$rep.json"
  report=()
  [ $plot = 1 ] && [ "$rep" = "$reps" ] && report=(--report "$out/mixed-plot")
  $bench -e "$ep" --json --duration "$mixed_s" "${report[@]}" mixed >"$out/mixed-$rep.json"
  kill "$bpid"; wait "$bpid" 2>/dev/null || true
  # The store's size, then its recovery after a SIGKILL.
  du -b "$store" "$store-wal" 2>/dev/null | awk '{s += $1} END {print s}' >"$out/store-bytes-$rep.txt"
  kill -9 "$store_pid"; wait "$store_pid" 2>/dev/null || true
  start_broker "$out/broker-recover-$rep.txt" "$store"
  kill "$bpid" "$rpid"; wait "$bpid" "$rpid" 2>/dev/null || true
  rm -f "$store" "$store-wal" "$store-shm"
done

/usr/bin/python3 - "$out" "$reps" <<'EOF'
import json, statistics, sys
out, reps = sys.argv[1], int(sys.argv[2])
def j(name, r): return json.load(open(f"{out}/{name}-{r}.json"))
def relay(name, r):
    words = open(f"{out}/relay-{name}-{r}.txt").read().split()
    return {w: float(words[i + 1]) for i, w in enumerate(words[:-1]) if w in ("relay_rps", "p50", "p99")}
rows = []
# ratio: of the medians; per run: the median of each run's own ratio (the
# relay and refcache of one run shared the machine's load of the moment).
def row(what, vals, fmt, ref=None, goal=""):
    med = statistics.median(vals)
    ratio = "" if ref is None else f"{med / statistics.median(ref):.3f}"
    per_run = "" if ref is None else f"{statistics.median(v / r for v, r in zip(vals, ref)):.3f}"
    refs = "" if ref is None else fmt.format(statistics.median(ref))
    rows.append((what, fmt.format(med), refs, ratio, per_run, goal, " / ".join(fmt.format(v) for v in vals)))
R = range(1, reps + 1)
tp = [j("throughput", r) for r in R]
row("throughput (tasks/s)", [t["throughput_rps"] for t in tp], "{:.0f}", [relay("load", r)["relay_rps"] for r in R], ">= 0.5")
row("throughput --batch 1 (tasks/s)", [j("unbatched", r)["throughput_rps"] for r in R], "{:.0f}", [relay("load", r)["relay_rps"] for r in R])
lat = [j("latency", r) for r in R]
row("latency p50 (us)", [t["latency_us"]["p50"] for t in lat], "{:.1f}", [relay("ping", r)["p50"] for r in R], "<= 1.3")
row("latency p99 (us)", [t["latency_us"]["p99"] for t in lat], "{:.1f}", [relay("ping", r)["p99"] for r in R])
ol = [j("openloop", r) for r in R]
row("open loop 2000/s p99 (us)", [t["latency_us"]["p99"] for t in ol], "{:.1f}")
ca = [j("cancel", r) for r in R]
row("cancel reply p99 (us)", [t["cancel_reply_us"]["p99"] for t in ca], "{:.0f}", goal="< 1000")
row("stop latency p99 (us)", [t["stop_latency_us"]["p99"] for t in ca], "{:.0f}", goal="< 11000 (step 10 ms + 1 ms)")
st = [j("storm", r) for r in R]
row("storm 100k: cancel_all (s)", [t["cancel_all_s"] for t in st], "{:.3f}", goal="< 1")
row("storm 100k: drain (s)", [t["drain_s"] for t in st], "{:.3f}")
row("storm 100k: started after cancel", [t["started_after_cancel"] for t in st], "{:.0f}", goal="0")
mem = []
for t in tp:
    b, a = t["broker_before"], t["broker_after"]
    kept = a["tasks"] - b["tasks"]
    mem.append((a["rss_bytes"] - b["rss_bytes"]) / kept - 32)
row("memory per kept task beyond its 32 B result (B)", mem, "{:.0f}", goal="<= 200")
mx = [j("mixed", r) for r in R]
row("mixed 10 s (requests/s)", [t["throughput_rps"] for t in mx], "{:.0f}")
stp = [j("store-throughput", r)["throughput_rps"] for r in R]
row("--store: throughput (tasks/s)", stp, "{:.0f}", [relay("load", r)["relay_rps"] for r in R])
rows.append(("--store: throughput / memory-only", f"{statistics.median(stp) / statistics.median(t['throughput_rps'] for t in tp):.3f}",
             "", "", "", ">= 0.5", " / ".join(f"{a / b['throughput_rps']:.3f}" for a, b in zip(stp, tp))))
slat = [j("store-latency", r) for r in R]
row("--store: latency p50 (us)", [t["latency_us"]["p50"] for t in slat], "{:.1f}", [relay("ping", r)["p50"] for r in R])
row("--store: latency p99 (us)", [t["latency_us"]["p99"] for t in slat], "{:.1f}", [relay("ping", r)["p99"] for r in R])
def kept(r):
    a = j("store-latency", r)["broker_after"]
    return a["tasks"]
row("--store: bytes per kept task (B)", [float(open(f"{out}/store-bytes-{r}.txt").read()) / kept(r) for r in R], "{:.0f}")
import re
def recovery(r):
    m = re.search(r"recovered (\d+) task\(s\).* in ([0-9.]+) s", open(f"{out}/broker-recover-{r}.txt").read())
    return float(m.group(2)) / int(m.group(1)) * 1e6
row("--store: recovery (s per million records)", [recovery(r) for r in R], "{:.2f}")
errs = sum(sum(j(n, r).get("errors", {}).values()) for n in ("throughput", "unbatched", "latency", "openloop", "cancel", "storm", "mixed", "store-throughput", "store-latency") for r in R)
hdr = ("what", "refcache", "relay", "ratio", "ratio per run", "goal", "runs")
w = [max(len(r[i]) for r in rows + [hdr]) for i in range(len(hdr))]
print()
print("| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(hdr)) + " |")
print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for r in rows:
    print("| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |")
print(f"\nmedians of {reps} runs; errors reported by the bench over all runs: {errs}")
EOF
