# What `cmake --install` installs, checked in a DESTDIR
# (<build>/install-root): install_destdir installs afresh (the fixture of the
# others), then each check reads or runs the installed tree
# (tests/install_check.sh says what each one checks).
set(RC_DESTDIR ${CMAKE_BINARY_DIR}/install-root)
set(RC_INSTALL_CHECK ${CMAKE_CURRENT_SOURCE_DIR}/install_check.sh)

add_test(NAME install_destdir COMMAND ${RC_INSTALL_CHECK} install ${CMAKE_BINARY_DIR} ${RC_DESTDIR})
set_tests_properties(install_destdir PROPERTIES TIMEOUT 60 FIXTURES_SETUP installed RESOURCE_LOCK install_root)

foreach(check layout symbols units run pkgconfig cmake man)
  add_test(NAME install_${check}
           COMMAND ${RC_INSTALL_CHECK} ${check} ${RC_DESTDIR} ${CMAKE_INSTALL_PREFIX}
                   ${CMAKE_CURRENT_SOURCE_DIR}/install_client.c)
  set_tests_properties(install_${check} PROPERTIES TIMEOUT 120 FIXTURES_REQUIRED installed
                       RESOURCE_LOCK install_root SKIP_RETURN_CODE 77)
  if(RC_SANITIZE) # a program using a sanitized library is built with the same sanitizers
    set_tests_properties(install_${check} PROPERTIES ENVIRONMENT "RC_TEST_CFLAGS=-fsanitize=${RC_SANITIZE}")
  endif()
endforeach()
