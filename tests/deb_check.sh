#!/usr/bin/env bash
# Checks the .deb packages that scripts/deb.sh built in BUILD with dpkg-deb:
# the three packages are there; each holds what it should and nothing of the
# others (programs and units; the shared library; headers, static library,
# .so link, pkg-config and CMake files); the Depends that dpkg-shlibdeps
# computed; the conffiles; no maintainer script but the library's ldconfig
# trigger; the copyright and changelog of each. Bounded: dpkg-deb only.
# Usage: tests/deb_check.sh BUILD
set -euo pipefail
build=$1
fail() {
  echo "FAIL: $*"
  exit 1
}

shopt -s nullglob
debs=("$build"/*.deb)
[ ${#debs[@]} -eq 3 ] || fail "want 3 packages in $build, found: ${debs[*]:-none}"
deb_of() {
  local d
  for d in "${debs[@]}"; do
    [ "$(dpkg-deb -f "$d" Package)" = "$1" ] && { echo "$d"; return 0; }
  done
  fail "no package $1 among ${debs[*]}"
}
lib_pkg=
for d in "${debs[@]}"; do
  p=$(dpkg-deb -f "$d" Package)
  [[ $p =~ ^librefcache[0-9.]+$ ]] && lib_pkg=$p
done
[ -n "$lib_pkg" ] || fail "no librefcache<soversion> package"

prog=$(deb_of refcache) lib=$(deb_of "$lib_pkg") dev=$(deb_of librefcache-dev)
version=$(dpkg-deb -f "$prog" Version)
for d in "$lib" "$dev"; do
  [ "$(dpkg-deb -f "$d" Version)" = "$version" ] || fail "$(basename "$d") has another version than $version"
done

files() { dpkg-deb -c "$1" | awk '{print $6 ($7 ? " " $7 " " $8 : "")}' | sed 's|^\./|/|'; }
has() { grep -qxF -- "$2" <<<"$(files "$1" | sed 's/ -> .*//')" || fail "$(basename "$1") lacks $2"; }
hasnt() { ! grep -q -- "$2" <<<"$(files "$1")" || fail "$(basename "$1") holds $2"; }

for p in refcache refcache-broker refcache-worker refcache-bench; do has "$prog" "/usr/bin/$p"; done
has "$prog" /lib/systemd/system/refcache-broker.service
has "$prog" /lib/systemd/system/refcache-worker@.service
for f in broker.conf broker.env worker.conf worker.env; do has "$prog" "/etc/refcache/$f"; done
for m in man1/refcache.1.gz man1/refcache-bench.1.gz man8/refcache-broker.8.gz man8/refcache-worker.8.gz; do
  has "$prog" "/usr/share/man/$m"
done
hasnt "$prog" librefcache
hasnt "$prog" /usr/include

so=$(files "$lib" | grep -o '/usr/lib/[^ ]*/librefcache\.so\.[0-9.]*$' | sort | tail -1)
[ -n "$so" ] || fail "$lib_pkg holds no librefcache.so.VERSION"
soname=$(files "$lib" | grep -o 'librefcache\.so\.[0-9.]* -> ' | sed 's/ -> //' | head -1)
[ "librefcache${soname#librefcache.so.}" = "$lib_pkg" ] || fail "package $lib_pkg holds soname $soname"
hasnt "$lib" /usr/include
hasnt "$lib" "librefcache.so -> "
hasnt "$lib" librefcache.a
hasnt "$lib" /usr/bin

for f in /usr/include/refcache.h /usr/include/refcache_worker.h; do has "$dev" "$f"; done
libdir=$(dirname "$so")
for f in librefcache.a librefcache.so pkgconfig/refcache.pc cmake/refcache/refcacheConfig.cmake \
         cmake/refcache/refcacheConfigVersion.cmake cmake/refcache/refcacheTargets.cmake; do
  has "$dev" "$libdir/$f"
done
[ "$(files "$dev" | grep -c '^/usr/include/.*\.h$')" = 2 ] || fail "librefcache-dev holds other headers"
hasnt "$dev" /usr/bin

# Depends: dpkg-shlibdeps' for the binaries; the -dev package's own.
for d in "$prog" "$lib"; do
  dep=$(dpkg-deb -f "$d" Depends)
  for want in libc6 libczmq4 libzmq5 libprotobuf-c1; do
    grep -q "$want" <<<"$dep" || fail "$(basename "$d") Depends lacks $want: $dep"
  done
done
dep=$(dpkg-deb -f "$dev" Depends)
grep -qF "$lib_pkg (= $version)" <<<"$dep" || fail "librefcache-dev Depends lacks $lib_pkg (= $version): $dep"

# Control files: conffiles for /etc; no maintainer script; the library's
# shlibs and ldconfig trigger.
ctl=$(mktemp -d)
trap 'rm -rf "$ctl"' EXIT
for d in "$prog" "$lib" "$dev"; do
  rm -rf "${ctl:?}"/*
  dpkg-deb -e "$d" "$ctl"
  for s in preinst postinst prerm postrm; do
    [ ! -e "$ctl/$s" ] || fail "$(basename "$d") has a $s script"
  done
  pkg=$(dpkg-deb -f "$d" Package)
  has "$d" "/usr/share/doc/$pkg/copyright"
  has "$d" "/usr/share/doc/$pkg/changelog.Debian.gz"
  case "$pkg" in
  refcache)
    [ "$(sort "$ctl/conffiles" | tr '\n' ' ')" = "/etc/refcache/broker.conf /etc/refcache/broker.env /etc/refcache/worker.conf /etc/refcache/worker.env " ] ||
      fail "refcache conffiles: $(cat "$ctl/conffiles" 2>/dev/null)" ;;
  "$lib_pkg")
    grep -q "^librefcache ${soname#librefcache.so.} $lib_pkg" "$ctl/shlibs" || fail "$lib_pkg shlibs: $(cat "$ctl/shlibs")"
    grep -q "ldconfig" "$ctl/triggers" || fail "$lib_pkg has no ldconfig trigger" ;;
  esac
done
echo "deb_check: OK: refcache, $lib_pkg, librefcache-dev $version ($(basename "$so"), soname $soname)"
