# Run by cpack after it has built the .deb packages (CPACK_POST_BUILD_SCRIPTS,
# packaging/cpack.cmake): what debhelper would do and CPack does not.
#  - Every ELF file loses its .comment and .note sections (dh_strip does
#    this; CPack's strip does not), static libraries their debug sections.
#  - The package holding librefcache.so gets the trigger "activate-noawait
#    ldconfig" instead of the postinst/postrm scripts CPack writes to call
#    ldconfig, and a symbols file (dpkg-gensymbols) beside its shlibs.
# Each package is unpacked, changed, its md5sums written again (conffiles
# excepted, as dh_md5sums does), and packed.
foreach(deb IN LISTS CPACK_PACKAGE_FILES)
  if(NOT deb MATCHES "\\.deb$")
    continue()
  endif()
  execute_process(COMMAND dpkg-deb --field ${deb} Package Version OUTPUT_VARIABLE fields COMMAND_ERROR_IS_FATAL ANY)
  string(REGEX REPLACE ".*Package: ([^\n]*).*" "\\1" package "${fields}")
  string(REGEX REPLACE ".*Version: ([^\n]*).*" "\\1" version "${fields}")
  set(tree ${CPACK_TOPLEVEL_DIRECTORY}/finish/${package})
  file(REMOVE_RECURSE ${tree})
  file(MAKE_DIRECTORY ${CPACK_TOPLEVEL_DIRECTORY}/finish)
  execute_process(COMMAND dpkg-deb --raw-extract ${deb} ${tree} COMMAND_ERROR_IS_FATAL ANY)

  file(GLOB_RECURSE files LIST_DIRECTORIES false RELATIVE ${tree} ${tree}/*)
  list(FILTER files EXCLUDE REGEX "^DEBIAN/")
  list(SORT files)
  set(conffiles)
  if(EXISTS ${tree}/DEBIAN/conffiles)
    file(STRINGS ${tree}/DEBIAN/conffiles conffiles)
  endif()
  set(md5sums "")
  foreach(f IN LISTS files)
    if(IS_SYMLINK ${tree}/${f} OR "/${f}" IN_LIST conffiles) # dpkg keeps the conffiles' sums itself
      continue()
    endif()
    if(f MATCHES "\\.a$")
      execute_process(COMMAND strip --strip-debug --remove-section=.comment --remove-section=.note
                              --enable-deterministic-archives ${tree}/${f} COMMAND_ERROR_IS_FATAL ANY)
    elseif(f MATCHES "^usr/bin/" OR f MATCHES "\\.so(\\.[0-9]+)*$")
      execute_process(COMMAND strip --remove-section=.comment --remove-section=.note ${tree}/${f}
                      COMMAND_ERROR_IS_FATAL ANY)
    endif()
    file(MD5 ${tree}/${f} sum)
    string(APPEND md5sums "${sum}  ${f}\n")
  endforeach()
  file(WRITE ${tree}/DEBIAN/md5sums "${md5sums}")

  if(package MATCHES "^librefcache[0-9.]+$")
    file(REMOVE ${tree}/DEBIAN/postinst ${tree}/DEBIAN/postrm)
    file(WRITE ${tree}/DEBIAN/triggers "activate-noawait ldconfig\n")
    file(GLOB sofiles ${tree}/usr/lib/*/librefcache.so.*.*.*)
    set(args)
    foreach(so IN LISTS sofiles)
      list(APPEND args -e${so})
    endforeach()
    # Every symbol appeared in this upstream version (no Debian revision in a
    # symbols file); the -dev package is the one programs build against.
    string(REGEX REPLACE "-[^-]*$" "" upstream "${version}")
    execute_process(COMMAND dpkg-gensymbols -p${package} -P${tree} -v${upstream} -O${tree}/DEBIAN/symbols ${args}
                    OUTPUT_QUIET ERROR_QUIET COMMAND_ERROR_IS_FATAL ANY)
    file(READ ${tree}/DEBIAN/symbols symbols)
    string(FIND "${symbols}" "\n" eol)
    math(EXPR eol "${eol} + 1")
    string(SUBSTRING "${symbols}" 0 ${eol} head)
    string(SUBSTRING "${symbols}" ${eol} -1 body)
    set(symbols "${head}* Build-Depends-Package: librefcache-dev\n${body}")
    file(WRITE ${tree}/DEBIAN/symbols "${symbols}")
  endif()
  file(GLOB control ${tree}/DEBIAN/*)
  foreach(c IN LISTS control)
    if(NOT c MATCHES "/(preinst|postinst|prerm|postrm)$")
      file(CHMOD ${c} PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    endif()
  endforeach()
  execute_process(COMMAND dpkg-deb --root-owner-group --build ${tree} ${deb} OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE_RECURSE ${tree})
endforeach()
