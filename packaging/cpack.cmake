# .deb packages with CPack, one per install component:
#   refcache              the programs, the systemd units, /etc/refcache
#   librefcache<SOVER>    the shared library (librefcache0.1 before 1.0)
#   librefcache-dev       headers, static library, .so link, pkg-config and CMake files
# Depends come from dpkg-shlibdeps (refcache, librefcache<SOVER>) and, for
# the -dev package, the library and the -dev packages refcache.pc names.
# No maintainer script: the services run as a dynamic user (nothing to
# create), the library package runs ldconfig by a trigger, and the units are
# enabled by the administrator (README). docs/packaging.md has lintian's
# findings and what was done about each. Build them with scripts/deb.sh,
# which configures the prefix /usr, Debian's hardening flags and a Release
# build; `cpack` in any build configured with CMAKE_INSTALL_PREFIX=/usr
# works too.
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  # The units and refcache.pc carry the prefix they were configured with.
  return()
endif()

set(RC_DEB_MAINTAINER "" CACHE STRING "Maintainer field of the .deb packages (default: the last commit's author)")
if(NOT RC_DEB_MAINTAINER)
  execute_process(COMMAND git -C ${PROJECT_SOURCE_DIR} log -1 --format=%an\ <%ae>
                  OUTPUT_VARIABLE RC_DEB_MAINTAINER OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()
if(NOT RC_DEB_MAINTAINER)
  set(RC_DEB_MAINTAINER "refcache maintainers <root@localhost>")
endif()

set(RC_DEB_LIBRARY librefcache${RC_SOVERSION})
set(RC_DEB_REVISION 1)

# What Debian wants in /usr/share/doc/PACKAGE of each package: the copyright
# file and a changelog, compressed with gzip -9n.
string(TIMESTAMP RC_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
file(WRITE ${CMAKE_BINARY_DIR}/deb/changelog.Debian
     "refcache (${PROJECT_VERSION}-${RC_DEB_REVISION}) unstable; urgency=medium\n\n"
     "  * Packages built with CPack from the refcache source tree.\n\n"
     " -- ${RC_DEB_MAINTAINER}  ${RC_DEB_DATE}\n")
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/deb/changelog.Debian.gz
  COMMAND gzip -9nkf ${CMAKE_BINARY_DIR}/deb/changelog.Debian
  DEPENDS ${CMAKE_BINARY_DIR}/deb/changelog.Debian)
add_custom_target(rc_deb_docs ALL DEPENDS ${CMAKE_BINARY_DIR}/deb/changelog.Debian.gz)
foreach(pair programs:refcache library:${RC_DEB_LIBRARY} development:librefcache-dev)
  string(REPLACE ":" ";" pair ${pair})
  list(GET pair 0 component)
  list(GET pair 1 package)
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/deb/copyright ${CMAKE_BINARY_DIR}/deb/changelog.Debian.gz
          DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${package} COMPONENT ${component})
endforeach()

# The example configuration is the administrator's once installed.
include(GNUInstallDirs)
set(RC_DEB_CONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/refcache)
set(conffiles)
foreach(f broker.conf broker.env worker.conf worker.env)
  string(APPEND conffiles "${RC_DEB_CONFDIR}/${f}\n")
endforeach()
file(WRITE ${CMAKE_BINARY_DIR}/deb/conffiles "${conffiles}")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME refcache)
set(CPACK_PACKAGE_VENDOR "refcache")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${RC_DEB_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL programs library development)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${RC_DEB_REVISION})
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${RC_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON) # a shlibs file where there is a shared library
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_PROGRAMS_PACKAGE_NAME refcache)
set(CPACK_DEBIAN_PROGRAMS_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PROGRAMS_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/deb/conffiles)
set(CPACK_COMPONENT_PROGRAMS_DESCRIPTION "job service over ZeroMQ with cancellation and a result cache
refcache runs computations for clients anywhere on a network: a broker queues
them, hands them to pools of worker threads, keeps every result in a cache
addressed by a reference, and lets clients poll, wait, page through results
and cancel work, which really stops it.
This package holds the broker (refcache-broker), the worker pool
(refcache-worker), the command-line client (refcache), the load-testing
harness (refcache-bench) and systemd units for the broker and worker pools.")

set(CPACK_DEBIAN_LIBRARY_PACKAGE_NAME ${RC_DEB_LIBRARY})
set(CPACK_DEBIAN_LIBRARY_PACKAGE_SECTION libs)
set(CPACK_COMPONENT_LIBRARY_DESCRIPTION "refcache client library and worker job API
librefcache lets a C program submit, watch, fetch and cancel refcache tasks,
and serve job functions of its own to a refcache broker with a pool of
worker threads.")

set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_NAME librefcache-dev)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_DEPENDS
    "${RC_DEB_LIBRARY} (= ${PROJECT_VERSION}-${RC_DEB_REVISION}), libczmq-dev, libzmq3-dev, libprotobuf-c-dev")
set(CPACK_COMPONENT_DEVELOPMENT_DESCRIPTION "refcache client library and worker job API (development files)
Headers (refcache.h, refcache_worker.h), the static library, and the
pkg-config (refcache) and CMake (find_package(refcache)) files for
building programs with librefcache.")

# What debhelper would do and CPack does not (strip .comment/.note, ldconfig
# by trigger instead of maintainer scripts, a symbols file), done on the
# built packages.
set(CPACK_POST_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/packaging/deb/finish.cmake)

include(CPack)
