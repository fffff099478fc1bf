#!/usr/bin/env bash
# Takes docs/status-page.png: a broker with --http and 4 in-process workers,
# some traffic (echo, primes, a failure, sleeps running, one cancelled), and
# the status page as headless Chromium draws it after a few seconds.
# Usage: scripts/status-screenshot.sh [OUT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/status-page.png}
cmake --build build -j2 --target refcache-broker refcache >/dev/null
tmp=$(mktemp -d)
trap 'kill "$bpid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
build/broker/refcache-broker --store none --workers 4 --clients 'tcp://127.0.0.1:*' --workers-endpoint 'tcp://127.0.0.1:*' \
  --control 'tcp://127.0.0.1:*' --http '127.0.0.1:*' >"$tmp/broker.txt" 2>"$tmp/broker.log" &
bpid=$!
for _ in $(seq 100); do grep -q '^ready' "$tmp/broker.txt" && break; sleep 0.05; done
ep=$(awk '/^clients/{print $2}' "$tmp/broker.txt")
url=$(awk '/^http/{print $2}' "$tmp/broker.txt")
cli() { build/client/refcache -e "$ep" "$@"; }
curl -s "${url}api/events" >/dev/null   # the page's event watch, as a first look starts it
for i in $(seq 40); do cli submit echo --payload "hello $i" --async-timeout 1000 >/dev/null; done
cli submit primes n=200000 --async-timeout 5000 >/dev/null
cli submit fail message='bad input' --async-timeout 1000 >/dev/null || true
for i in 1 2 3; do cli submit sleep ms=60000 step_ms=100 >/dev/null; done
ref=$(cli --json submit sleep ms=60000 | sed -n 's/.*"ref_id": "\([0-9a-f]*\)".*/\1/p')
sleep 0.5
cli cancel "$ref" >/dev/null
sleep 1.5
profile=$tmp/profile
chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --no-first-run --user-data-dir="$profile" --hide-scrollbars --window-size=1280,1180 \
  --virtual-time-budget=3000 --screenshot="$out" "${url}?ref=$ref" 2>/dev/null
echo "wrote $out"
