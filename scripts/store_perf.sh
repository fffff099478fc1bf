#!/usr/bin/env bash
# Measures the durable store (rc_store) and the disk under it, as quoted in
# docs/store.md: REPS repetitions of each figure, every run printed, then the
# median. Builds tests/store_bench in build-rel/ (Release) if needed.
# Usage: scripts/store_perf.sh [REPS] [DIR]   (DIR: where the stores go; a
#        directory on the disk to measure, default a new one under /var/tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
dir=${2:-$(mktemp -d /var/tmp/store-perf.XXXXXX)}
B=build-rel/tests/store_bench
if [ ! -x "$B" ]; then
  cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build-rel -j2 --target store_bench >/dev/null
fi

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# run LABEL PATTERN ARGS...: runs store_bench ARGS reps times, prints each
# first line and the median of the number PATTERN (a grep -oP with \K) finds.
run() {
  local label=$1 pat=$2; shift 2
  local vals=()
  for _ in $(seq "$reps"); do
    local out
    out=$("$B" "$@" 2>&1)
    echo "  $(echo "$out" | head -1)"
    vals+=("$(echo "$out" | grep -oP "$pat" | head -1)")
  done
  printf '%-58s median %s\n' "$label" "$(printf '%s\n' "${vals[@]}" | median)"
}

echo "== load before: $(uptime)"
echo "== disk ($dir)"
"$B" disk "$dir"
dd if=/dev/zero of="$dir/dd.tmp" bs=64k count=1000 oflag=dsync 2>&1 | tail -1 | sed 's/^/  dd bs=64k oflag=dsync: /'
rm -f "$dir/dd.tmp"

echo "== puts/s, 2,000,000 puts of 17+150 B, the caller running ahead (pipelined)"
for mode in durable relaxed; do
  m=(); [ $mode = relaxed ] && m=(relaxed)
  for g in 100 1000 10000; do
    run "pipelined $mode, group of $g puts: puts/s" '\K[0-9]+(?= puts/s)' puts "$dir" "${m[@]}" 2000000 $g 150
  done
done
echo "== puts/s, one group per commit (the caller waits for each group's durable mark)"
for mode in durable relaxed; do
  m=(); [ $mode = relaxed ] && m=(relaxed)
  for g in 10 100 1000 10000; do
    n=$((g * 300)); [ $n -gt 1000000 ] && n=1000000
    run "one group per commit, $mode, $g puts: puts/s" '\K[0-9]+(?= puts/s)' puts "$dir" "${m[@]}" $n $g 150 wait
  done
done
echo "== broker-like: 3 puts per task (accepted, running, finished), 1000 tasks per pass"
run "tasks, durable: tasks/s" '\K[0-9]+(?= tasks/s)' tasks "$dir" 1000000 1000
run "tasks, relaxed: tasks/s" '\K[0-9]+(?= tasks/s)' tasks "$dir" relaxed 1000000 1000
echo "== put-to-durable latency, a group every 100 us"
for rate in 10000 100000; do
  run "latency durable at $rate puts/s: p50 ms" 'p50 \K[0-9.]+' latency "$dir" $rate 10
  run "latency durable at $rate puts/s: p99 ms" 'p99 \K[0-9.]+' latency "$dir" $rate 10
done
run "latency relaxed at 100000 puts/s: p99 ms" 'p99 \K[0-9.]+' latency "$dir" relaxed 100000 10
echo "== recovery of 1,000,000 records of 17+150 B"
rm -f "$dir/recover.store"*
"$B" fill "$dir/recover.store" 1000000 150 >/dev/null
echo "  file: $(stat -c %s "$dir/recover.store") bytes"
run "recover 1M records: seconds" 'total \K[0-9.]+' recover "$dir/recover.store"
run "recover 1M records: peak RSS MiB" 'peak RSS \K[0-9]+' recover "$dir/recover.store"
rm -f "$dir/recover.store"*
echo "== churn: 1,000,000 live keys (more than a batch holds, so puts and deletes do not cancel out in the writer), put new + delete oldest for 60 s"
"$B" churn "$dir" 1000000 60 | awk 'NR%10==1 || /churn:/ || /end:/'
echo "== load after: $(uptime)"
