#!/usr/bin/env bash
# Checks of what `cmake --install` puts on a system, run by ctest
# (tests/install.cmake) on an install into a DESTDIR:
#   install_check.sh install BUILD DESTDIR      cmake --install BUILD into DESTDIR (afresh)
#   install_check.sh units DESTDIR PREFIX       systemd-analyze verify on the installed units
# Exit 77 (ctest: skipped) only when a tool the check needs is absent.
set -euo pipefail
step=$1; shift

case "$step" in
install)
  build=$1 destdir=$2
  rm -rf "$destdir"
  DESTDIR=$destdir cmake --install "$build" >/dev/null
  echo "installed into $destdir:"
  (cd "$destdir" && find . -type f -o -type l | sort)
  ;;
units)
  destdir=$1 prefix=$2
  if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze is absent (Debian package systemd; scripts/setup.sh --test installs it)"
    exit 77
  fi
  # A root for systemd-analyze: the installed tree plus the system's own
  # units (the targets ours are ordered against).
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  cp -a "$destdir/." "$root/"
  mkdir -p "$root/lib/systemd"
  cp -a /lib/systemd/system "$root/lib/systemd/"
  unitdir=$root$prefix/lib/systemd/system
  for u in refcache-broker.service refcache-worker@.service; do
    [ -f "$unitdir/$u" ] || { echo "FAIL: $u is not installed in ${unitdir#$root}"; exit 1; }
  done
  # The template is verified as an instance; the broker names its state dir.
  out=$(systemd-analyze verify --root="$root" --man=no refcache-broker.service \
        refcache-worker@default.service 2>&1) || { echo "$out"; echo "FAIL: systemd-analyze verify"; exit 1; }
  if [ -n "$out" ]; then echo "$out"; echo "FAIL: systemd-analyze verify printed warnings"; exit 1; fi
  for want in "DynamicUser=yes" "StateDirectory=refcache" "ProtectSystem=strict" "NoNewPrivileges=yes" \
              "PrivateTmp=yes" "ProtectHome=yes" "RestrictAddressFamilies=" "SystemCallFilter=@system-service"; do
    grep -q "^$want" "$unitdir/refcache-broker.service" || { echo "FAIL: broker unit lacks $want"; exit 1; }
  done
  grep -q "^ExecStart=$prefix/bin/refcache-broker " "$unitdir/refcache-broker.service"
  grep -q "^ExecStart=$prefix/bin/refcache-worker " "$unitdir/refcache-worker@.service"
  echo "systemd-analyze verify: refcache-broker.service refcache-worker@default.service OK"
  ;;
*)
  echo "install_check.sh: unknown step $step" >&2; exit 2 ;;
esac
