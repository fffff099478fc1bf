#!/usr/bin/env bash
# Installs what refcache needs that is missing (Debian 12 packages), then
# configures and builds it in ./build. Extra sets of packages:
#   --test  what the test suite uses (pytest; venv, setuptools and wheel to
#           build and install the Python package; systemd-analyze to verify
#           the units; valgrind; clang for the fuzzer; the Prometheus
#           client's parser for /metrics and headless Chromium for the
#           status page; iproute2's ip, for the fault test that cuts a
#           worker's network namespace off)
#   --plot  gnuplot, for the plots of refcache-bench --report and perf.sh --plot
#   --deb   what scripts/deb.sh needs to build and check the .deb packages
#           (dpkg-dev, file, binutils, lintian)
# Usage: scripts/setup.sh [--test] [--plot] [--deb]
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(gcc libc6-dev make cmake pkg-config libzmq3-dev libczmq-dev libprotobuf-c-dev protobuf-c-compiler
      libcmocka-dev libsqlite3-dev libmicrohttpd-dev)
for arg in "$@"; do
  case "$arg" in
  --test)
    pkgs+=(protobuf-compiler python3-zmq python3-protobuf python3-pytest python3-venv python3-setuptools
           python3-wheel systemd valgrind clang libclang-rt-dev python3-prometheus-client chromium
           iproute2) ;;
  --plot)
    pkgs+=(gnuplot-nox) ;;
  --deb)
    pkgs+=(dpkg-dev file binutils lintian) ;;
  *)
    echo "usage: scripts/setup.sh [--test] [--plot] [--deb]" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    as_root=(sudo)
  fi
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRC_WERROR=ON >/dev/null
cmake --build build -j "$(nproc)"
