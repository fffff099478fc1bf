#!/usr/bin/env bash
# Checks of what `cmake --install` puts on a system, run by ctest
# (tests/install.cmake) on an install into a DESTDIR whose prefix is PREFIX:
#   install_check.sh install BUILD DESTDIR        cmake --install BUILD into DESTDIR (afresh)
#   install_check.sh layout DESTDIR PREFIX        the files: programs, library, only the public headers, ...
#   install_check.sh symbols DESTDIR PREFIX       librefcache exports refcache_* only, all the headers declare
#   install_check.sh units DESTDIR PREFIX         systemd-analyze verify on the installed units
#   install_check.sh run DESTDIR PREFIX           the installed broker answers the installed CLI's stats,
#                                                 the installed refcache-worker joins it
#   install_check.sh pkgconfig DESTDIR PREFIX SRC  a C program (SRC) built with pkg-config alone runs
#   install_check.sh cmake DESTDIR PREFIX SRC      the same built with find_package(refcache) alone,
#                                                 shared and static
#   install_check.sh man DESTDIR PREFIX           each man page has every long option of its --help
# Exit 77 (ctest: skipped) only when a tool a check needs is absent.
# RC_TEST_CFLAGS: flags for the programs built against the installed tree
# (a sanitized build's sanitizers).
set -euo pipefail
step=$1
shift

fail() {
  echo "FAIL: $*"
  exit 1
}

pids=()
tmp=$(mktemp -d)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The installed library's directory (multiarch or not).
libdir_of() {
  local so
  so=$(find "$1$2" -name 'librefcache.so' | head -1)
  [ -n "$so" ] || fail "no librefcache.so under $1$2"
  dirname "$so"
}

# Starts the installed broker (no in-process workers) on ephemeral loopback
# ports; sets clients, workers, control.
start_broker() {
  local bin=$1$2/bin/refcache-broker out=$tmp/broker.out
  "$bin" --workers 0 --clients 'tcp://127.0.0.1:*' --workers-endpoint 'tcp://127.0.0.1:*' \
    --control 'tcp://127.0.0.1:*' >"$out" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do
    grep -q '^ready' "$out" && break
    sleep 0.05
  done
  grep -q '^ready' "$out" || { cat "$out"; fail "the installed broker did not get ready"; }
  clients=$(awk '/^clients/{print $2}' "$out")
  workers=$(awk '/^workers/{print $2}' "$out")
  control=$(awk '/^control/{print $2}' "$out")
}

case "$step" in
install)
  build=$1 destdir=$2
  rm -rf "$destdir"
  DESTDIR=$destdir cmake --install "$build" >/dev/null
  echo "installed into $destdir:"
  (cd "$destdir" && find . -type f -o -type l | sort)
  ;;

layout)
  destdir=$1 prefix=$2
  root=$destdir$prefix
  for p in refcache refcache-broker refcache-worker refcache-bench; do
    [ -x "$root/bin/$p" ] || fail "program $p is not installed in $prefix/bin"
  done
  headers=$(cd "$root/include" && find . -type f | sort | tr '\n' ' ')
  [ "$headers" = "./refcache.h ./refcache_worker.h " ] || fail "installed headers: $headers (want only the two public ones)"
  libdir=$(libdir_of "$destdir" "$prefix")
  for f in librefcache.a librefcache.so pkgconfig/refcache.pc cmake/refcache/refcacheConfig.cmake \
           cmake/refcache/refcacheConfigVersion.cmake cmake/refcache/refcacheTargets.cmake; do
    [ -e "$libdir/$f" ] || fail "${libdir#$destdir}/$f is not installed"
  done
  # librefcache.so -> librefcache.so.SOVERSION -> librefcache.so.VERSION
  real=$(readlink -f "$libdir/librefcache.so")
  [[ $(basename "$real") =~ ^librefcache\.so\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "librefcache.so points to $real"
  echo "layout OK: 4 programs, 2 headers, librefcache.{so,a} ($(basename "$real")), pkg-config, CMake package"
  ;;

symbols)
  destdir=$1 prefix=$2
  command -v nm >/dev/null || { echo "SKIP: nm is absent (Debian package binutils)"; exit 77; }
  libdir=$(libdir_of "$destdir" "$prefix")
  so=$(readlink -f "$libdir/librefcache.so")
  nm -D --defined-only "$so" | awk '{print $NF}' | sort >"$tmp/exported"
  bad=$(grep -v '^refcache_' "$tmp/exported" || true)
  [ -z "$bad" ] || fail "librefcache.so exports names without the refcache_ prefix: $(echo $bad)"
  # Every function the headers declare is exported, and nothing else.
  grep -hv "^#" "$destdir$prefix/include/"*.h | tr '\n' ' ' | grep -o 'REFCACHE_EXPORT [^(;]*(' |
    sed 's/($//; s/.*[ *]//' | sort >"$tmp/declared"
  [ -s "$tmp/declared" ] || fail "no REFCACHE_EXPORT declaration found in the headers"
  diff "$tmp/declared" "$tmp/exported" >"$tmp/diff" ||
    { cat "$tmp/diff"; fail "headers (<) and librefcache.so's exports (>) differ"; }
  soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  [[ $soname =~ ^librefcache\.so\.[0-9.]+$ ]] && [[ $(basename "$so") == "$soname".* ]] ||
    fail "soname '$soname' of $(basename "$so")"
  [ -L "$libdir/$soname" ] || fail "no $soname link in ${libdir#$destdir}"
  bad=$(nm -g --defined-only "$libdir/librefcache.a" 2>/dev/null | awk 'NF == 3 {print $3}' | grep -v '^refcache_' || true)
  [ -z "$bad" ] || fail "librefcache.a defines global names without the refcache_ prefix: $(echo $bad | head -c 400)"
  echo "symbols OK: $(wc -l <"$tmp/exported") functions exported, all refcache_*, as the headers declare; soname $soname"
  ;;

units)
  destdir=$1 prefix=$2
  if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze is absent (Debian package systemd; scripts/setup.sh --test installs it)"
    exit 77
  fi
  # A root for systemd-analyze: the installed tree plus the system's own
  # units (the targets ours are ordered against).
  root=$tmp/root
  mkdir -p "$root/lib/systemd"
  cp -a "$destdir/." "$root/"
  cp -a /lib/systemd/system "$root/lib/systemd/"
  # The broker's ExecReload (SIGHUP: the allow-lists read again) runs kill.
  mkdir -p "$root/bin"
  cp /bin/kill "$root/bin/"
  unitdir=$root$prefix/lib/systemd/system
  for u in refcache-broker.service refcache-worker@.service; do
    [ -f "$unitdir/$u" ] || fail "$u is not installed in ${unitdir#$root}"
  done
  # The template is verified as an instance; the man pages named by
  # Documentation= are looked up in the installed tree.
  man=--man=no
  [ -d "$root$prefix/share/man" ] && man=--man=yes
  out=$(MANPATH=$root$prefix/share/man systemd-analyze verify --root="$root" $man \
        refcache-broker.service refcache-worker@default.service 2>&1) ||
    { echo "$out"; fail "systemd-analyze verify"; }
  [ -z "$out" ] || { echo "$out"; fail "systemd-analyze verify printed warnings"; }
  for want in "DynamicUser=yes" "StateDirectory=refcache" "ProtectSystem=strict" "NoNewPrivileges=yes" \
              "PrivateTmp=yes" "ProtectHome=yes" "RestrictAddressFamilies=" "SystemCallFilter=@system-service"; do
    grep -q "^$want" "$unitdir/refcache-broker.service" || fail "broker unit lacks $want"
  done
  grep -q "^ExecStart=$prefix/bin/refcache-broker " "$unitdir/refcache-broker.service" || fail "broker ExecStart"
  grep -q "^ExecStart=$prefix/bin/refcache-worker " "$unitdir/refcache-worker@.service" || fail "worker ExecStart"
  echo "systemd-analyze verify ($man): refcache-broker.service refcache-worker@default.service OK"
  ;;

run)
  destdir=$1 prefix=$2
  bin=$destdir$prefix/bin
  start_broker "$destdir" "$prefix"
  "$bin/refcache" --endpoint "$clients" stats >"$tmp/stats" || { cat "$tmp/stats"; fail "refcache stats"; }
  grep -q '^version ' "$tmp/stats" || fail "no version in stats: $(cat "$tmp/stats")"
  "$bin/refcache-worker" --broker "$workers" --control "$control" --threads 1 >"$tmp/worker.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    n=$("$bin/refcache" --endpoint "$clients" --json stats | sed -n 's/.*"workers": \([0-9]*\).*/\1/p')
    [ "${n:-0}" -ge 1 ] && break
    sleep 0.05
  done
  [ "${n:-0}" -ge 1 ] || fail "the installed refcache-worker did not join: $(cat "$tmp/worker.out")"
  out=$("$bin/refcache" --endpoint "$clients" --json submit primes n=100 --async-timeout 5000)
  grep -q '"state": "COMPLETE"' <<<"$out" || fail "a task on the installed worker did not complete: $out"
  for p in refcache refcache-broker refcache-worker refcache-bench; do
    "$bin/$p" --version >/dev/null || fail "$p --version"
  done
  echo "run OK: the installed broker answered the installed CLI; the installed worker ran a task"
  ;;

pkgconfig)
  destdir=$1 prefix=$2 src=$3
  command -v pkg-config >/dev/null || { echo "SKIP: pkg-config is absent"; exit 77; }
  libdir=$(libdir_of "$destdir" "$prefix")
  # The installed tree as a sysroot: pkg-config's own search path, with ours first.
  export PKG_CONFIG_PATH=$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$destdir
  [ "$(pkg-config --modversion refcache)" = "$(readlink -f "$libdir/librefcache.so" | sed 's/.*\.so\.//')" ] ||
    fail "pkg-config --modversion refcache: $(pkg-config --modversion refcache)"
  # shellcheck disable=SC2046
  "${CC:-cc}" -std=c11 -Wall -Wextra -Werror ${RC_TEST_CFLAGS:-} -o "$tmp/client" "$src" \
    $(pkg-config --cflags --libs refcache) ||
    fail "could not build $src with pkg-config"
  start_broker "$destdir" "$prefix"
  LD_LIBRARY_PATH=$libdir "$tmp/client" "$clients" "$workers" "$control" || fail "the client built with pkg-config"
  # (outputs are read whole before grep -q: an early exit of grep would fail the pipeline)
  deps=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/client")
  grep -q "librefcache.so.* => $libdir/" <<<"$deps" || fail "not linked to the installed librefcache.so"
  echo "pkgconfig OK: built with \`pkg-config --cflags --libs refcache\` alone, ran against the installed broker"
  ;;

cmake)
  destdir=$1 prefix=$2 src=$3
  libdir=$(libdir_of "$destdir" "$prefix")
  mkdir -p "$tmp/proj"
  cat >"$tmp/proj/CMakeLists.txt" <<'PROJ'
cmake_minimum_required(VERSION 3.18)
project(refcache_consumer C)
find_package(refcache REQUIRED)
add_executable(client_shared ${CLIENT_SRC})
target_link_libraries(client_shared PRIVATE refcache::refcache)
add_executable(client_static ${CLIENT_SRC})
target_link_libraries(client_static PRIVATE refcache::refcache_static)
PROJ
  cmake -S "$tmp/proj" -B "$tmp/proj/build" -DCMAKE_PREFIX_PATH="$destdir$prefix" -DCLIENT_SRC="$src" \
    -DCMAKE_C_FLAGS="-Wall -Wextra -Werror ${RC_TEST_CFLAGS:-}" -DCMAKE_EXE_LINKER_FLAGS="${RC_TEST_CFLAGS:-}" \
    >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; fail "find_package(refcache)"; }
  cmake --build "$tmp/proj/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "building against refcache::"; }
  start_broker "$destdir" "$prefix"
  "$tmp/proj/build/client_shared" "$clients" "$workers" "$control" || fail "client_shared"
  "$tmp/proj/build/client_static" "$clients" "$workers" "$control" || fail "client_static"
  deps=$(ldd "$tmp/proj/build/client_shared")
  grep -q "librefcache.so.* => $libdir/" <<<"$deps" || fail "client_shared not linked to it"
  deps=$(ldd "$tmp/proj/build/client_static")
  ! grep -q librefcache <<<"$deps" || fail "client_static linked to librefcache.so"
  echo "cmake OK: find_package(refcache) alone; refcache::refcache and refcache::refcache_static ran"
  ;;

man)
  destdir=$1 prefix=$2
  root=$destdir$prefix
  # Every long option a program's --help prints (and, for refcache, each
  # command's --help) is in its installed man page.
  for page in refcache.1 refcache-bench.1 refcache-broker.8 refcache-worker.8; do
    prog=${page%.*}
    file=$root/share/man/man${page##*.}/$page.gz
    [ -f "$file" ] || fail "${file#$destdir} is not installed"
    text=$(gzip -dc "$file" | sed 's/\\-/-/g')
    grep -q "^\.TH .*\"refcache $(sed -n 's/^refcache \(.*\)/\1/p' <<<"$("$root/bin/refcache" --version)")\"" <<<"$text" ||
      fail "$page: its .TH line does not carry the programs' version"
    helps=$("$root/bin/$prog" --help)
    if [ "$prog" = refcache ]; then
      for cmd in submit status wait fetch cancel delete stats keygen; do
        helps+=$'\n'$("$root/bin/refcache" "$cmd" --help)
      done
    fi
    flags=$(grep -o -- '--[a-z][a-z0-9-]*' <<<"$helps" | sort -u)
    [ -n "$flags" ] || fail "no long option in $prog --help"
    missing=
    for f in $flags; do
      grep -q -- "$f\b" <<<"$text" || missing+=" $f"
    done
    [ -z "$missing" ] || fail "$page lacks options that $prog --help prints:$missing"
    if command -v groff >/dev/null; then
      warn=$(gzip -dc "$file" | groff -man -ww -z -Tutf8 2>&1)
      [ -z "$warn" ] || fail "$page: groff: $warn"
    fi
    echo "$page: all $(wc -w <<<"$flags") long options of $prog --help documented"
  done
  ;;

*)
  echo "install_check.sh: unknown step $step" >&2
  exit 2
  ;;
esac
