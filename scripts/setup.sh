#!/usr/bin/env bash
# Installs what refcache needs that is missing (Debian 12 packages), then
# configures and builds it in ./build. With --test it also installs what the
# test suite uses (pytest, valgrind, clang for the fuzzer).
# Usage: scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(gcc libc6-dev make cmake pkg-config libzmq3-dev libczmq-dev libprotobuf-c-dev protobuf-c-compiler
      libcmocka-dev libsqlite3-dev)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(protobuf-compiler python3-zmq python3-protobuf python3-pytest valgrind clang
         libclang-rt-dev)
fi

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
