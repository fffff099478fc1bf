#!/usr/bin/env bash
# Builds refcache's .deb packages (refcache, librefcache<SOVER>,
# librefcache-dev) into build-deb/: a Release build with the prefix /usr and
# Debian's hardening flags (dpkg-buildflags), packaged by CPack
# (packaging/cpack.cmake), then checked: the packages' contents and control
# fields with dpkg-deb (tests/deb_check.sh), and lintian when it is there.
# Install them with: sudo apt install ./build-deb/*.deb
# Usage: scripts/deb.sh [--lintian]   (--lintian: fail on a lintian error)
set -euo pipefail
cd "$(dirname "$0")/.."
strict=0
[ "${1:-}" = "--lintian" ] && strict=1
build=build-deb
command -v dpkg-buildflags >/dev/null && command -v dpkg-shlibdeps >/dev/null ||
  { echo "deb.sh: needs dpkg-dev (scripts/setup.sh --deb installs it)" >&2; exit 1; }

# As a Debian package is built: all of dpkg-buildflags' hardening (PIE,
# bindnow, fortify, stack protector).
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cflags="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
ldflags=$(dpkg-buildflags --get LDFLAGS)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_SYSCONFDIR=/etc \
  -DRC_SYSTEMD_UNITDIR=/lib/systemd/system -DBUILD_TESTING=OFF -DRC_WERROR=ON -DCMAKE_C_FLAGS="$cflags" \
  -DCMAKE_EXE_LINKER_FLAGS="$ldflags" -DCMAKE_SHARED_LINKER_FLAGS="$ldflags" >/dev/null
cmake --build "$build" -j "$(nproc)"
rm -f "$build"/*.deb
(cd "$build" && cpack -G DEB >cpack.log 2>&1) || { cat "$build/cpack.log"; exit 1; }
ls -l "$build"/*.deb
bash tests/deb_check.sh "$build"

if command -v lintian >/dev/null; then
  echo "== lintian (docs/packaging.md says what each finding means and what was done about it)"
  rc=0
  lintian --info --display-info "$build"/*.deb || rc=$?
  [ $strict = 1 ] && [ $rc -ne 0 ] && { echo "deb.sh: lintian reported errors" >&2; exit 1; }
else
  echo "deb.sh: lintian is not installed (scripts/setup.sh --deb): packages not linted"
fi
echo "deb.sh: packages in $build/"
