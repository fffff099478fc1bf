#!/usr/bin/env bash
# Boots systemd in a container (systemd-nspawn, on a throw-away overlay of
# this machine's /) with refcache installed from BUILD, and checks that the
# installed units run under all their hardening: the broker and a worker
# pool start, `refcache stats` sees the workers, a task completes, the
# broker's state directory exists; then the same with CURVE, the keys handed
# to the services as credentials by the drop-ins the example configuration
# files show. Configuration in /etc/refcache/*.conf (threads = 2 for the pool).
# Nothing on this machine changes (the overlay lives on a tmpfs, unmounted at
# the end). Needs root and systemd-container. Not part of the test suite
# (ctest runs `systemd-analyze verify` on the units): run it after changing
# a unit. With --deb DIR, refcache comes from the .deb packages in DIR
# (scripts/deb.sh), installed with dpkg in the container's root instead.
# Usage: scripts/check-units.sh [BUILD | --deb DIR]   (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
debs=
if [ "${1:-}" = "--deb" ]; then
  debs=$(cd "${2:?--deb DIR}" && pwd)
  prefix=/usr
else
  build=${1:-build}
  prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
  [ -n "$prefix" ] || { echo "check-units: no install prefix in $build/CMakeCache.txt" >&2; exit 1; }
fi
[ "$(id -u)" -eq 0 ] || { echo "check-units: needs root (mounts an overlay, boots a container)" >&2; exit 1; }
command -v systemd-nspawn >/dev/null ||
  { echo "check-units: needs systemd-nspawn (apt-get install systemd-container)" >&2; exit 1; }

top=$(mktemp -d /tmp/rc-units.XXXXXX)
R=$top/root
cleanup() {
  umount "$R" 2>/dev/null || true
  umount "$top" 2>/dev/null || true
  rm -rf "$top"
}
trap cleanup EXIT
mount -t tmpfs tmpfs "$top"
mkdir -p "$top/upper" "$top/work" "$R"
mount -t overlay overlay -o "lowerdir=/,upperdir=$top/upper,workdir=$top/work" "$R"
rm -f "$R/etc/machine-id"                      # the container gets its own
rm -rf "$R/var/lib/refcache" "$R/var/lib/private/refcache" "$R/etc/systemd/system/refcache-"* "$R/etc/refcache"
if [ -n "$debs" ]; then
  mkdir -p "$R/tmp/debs" && cp "$debs"/*.deb "$R/tmp/debs/"
  chroot "$R" sh -c 'dpkg -i /tmp/debs/*.deb' >"$top/dpkg.log" 2>&1 || { cat "$top/dpkg.log"; exit 1; }
  echo "check-units: installed $(cd "$debs" && ls *.deb | tr '\n' ' ')"
  unitdir=$R/lib/systemd/system
else
  DESTDIR=$R cmake --install "$build" >/dev/null
  unitdir=$R$prefix/lib/systemd/system
fi
confdir=$(sed -n 's/^EnvironmentFile=-\(.*\)\/broker\.env$/\1/p' "$unitdir/refcache-broker.service")
[ -n "$confdir" ] || { echo "check-units: no broker.env in the broker's unit" >&2; exit 1; }
echo "threads = 2" >>"$R$confdir/worker.conf"

mkdir -p "$R/usr/local/sbin"
cat >"$R/usr/local/sbin/rc-units-check" <<CHECK
#!/bin/sh
# Runs inside the container as its boot's only job, then powers it off.
exec > /rc-result 2>&1
cli=$prefix/bin/refcache
up() {  # waits up to 10 s for stats to show workers
  for i in \$(seq 50); do
    n=\$(timeout 3 \$cli --timeout 500 "\$@" --json stats 2>/dev/null | sed -n 's/.*"workers": \([0-9]*\).*/\1/p')
    [ "\${n:-0}" -ge 1 ] && { echo "workers \$n"; return 0; }
    sleep 0.2
  done
  echo "FAIL: no workers seen"; return 1
}
check() {
  up "\$@" || return 1
  timeout 10 \$cli --timeout 2000 "\$@" --json submit primes n=1000 --async-timeout 5000 | grep -q '"state": "COMPLETE"' &&
    echo "task COMPLETE" || { echo "FAIL: task not COMPLETE"; return 1; }
}
echo "== plain"
systemctl start refcache-broker refcache-worker@default
check && systemctl is-active refcache-broker refcache-worker@default && ls -d /var/lib/private/refcache &&
  echo "PLAIN OK"
echo "== curve"
mkdir -p $confdir/curve/clients $confdir/curve/workers && cd $confdir/curve
\$cli keygen broker && \$cli keygen worker1 && \$cli keygen alice
cp alice clients/ && cp worker1 workers/
mkdir -p /etc/systemd/system/refcache-broker.service.d /etc/systemd/system/refcache-worker@default.service.d
printf '%s\n' '[Service]' 'LoadCredential=broker_secret:$confdir/curve/broker_secret' \\
  'Environment=REFCACHE_CURVE_SECRET=%d/broker_secret' \\
  'Environment=REFCACHE_CLIENTS_ALLOWED=$confdir/curve/clients' \\
  'Environment=REFCACHE_WORKERS_ALLOWED=$confdir/curve/workers' \\
  > /etc/systemd/system/refcache-broker.service.d/curve.conf
printf '%s\n' '[Service]' 'LoadCredential=worker_secret:$confdir/curve/worker1_secret' \\
  'Environment=REFCACHE_CURVE_SECRET=%d/worker_secret' 'Environment=REFCACHE_BROKER_PUBLIC=$confdir/curve/broker' \\
  > /etc/systemd/system/refcache-worker@default.service.d/curve.conf
systemctl daemon-reload
systemctl restart refcache-broker refcache-worker@default
check --curve-secret $confdir/curve/alice_secret --broker-public $confdir/curve/broker && echo "CURVE OK"
echo "== journal"
journalctl -b --no-pager -u refcache-broker -u refcache-worker@default | tail -20
systemctl poweroff
CHECK
chmod +x "$R/usr/local/sbin/rc-units-check"
printf '%s\n' '[Unit]' 'Description=check the refcache units' '[Service]' 'Type=oneshot' \
  'ExecStart=/usr/local/sbin/rc-units-check' >"$R/etc/systemd/system/rc-units-check.service"

timeout 180 systemd-nspawn -q -D "$R" --register=no --keep-unit --link-journal=no -M rc-units \
  -b systemd.unit=rc-units-check.service >"$top/boot.log" 2>&1 || true
if [ ! -f "$R/rc-result" ]; then
  tail -30 "$top/boot.log"; echo "check-units: the container wrote no result"; exit 1
fi
cat "$R/rc-result"
if grep -q "^PLAIN OK" "$R/rc-result" && grep -q "^CURVE OK" "$R/rc-result"; then
  echo "check-units: OK"
  exit 0
fi
echo "check-units: FAILED"
exit 1
