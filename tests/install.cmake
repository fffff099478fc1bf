# What `cmake --install` installs, checked in a DESTDIR
# (<build>/install-root): install_destdir installs afresh (the fixture of the
# others), then each check reads the installed tree (tests/install_check.sh).
set(RC_DESTDIR ${CMAKE_BINARY_DIR}/install-root)
set(RC_INSTALL_CHECK ${CMAKE_CURRENT_SOURCE_DIR}/install_check.sh)

add_test(NAME install_destdir COMMAND ${RC_INSTALL_CHECK} install ${CMAKE_BINARY_DIR} ${RC_DESTDIR})
set_tests_properties(install_destdir PROPERTIES TIMEOUT 60 FIXTURES_SETUP installed
                     RESOURCE_LOCK install_root)

add_test(NAME install_units_verify COMMAND ${RC_INSTALL_CHECK} units ${RC_DESTDIR} ${CMAKE_INSTALL_PREFIX})
set_tests_properties(install_units_verify PROPERTIES TIMEOUT 60 FIXTURES_REQUIRED installed
                     RESOURCE_LOCK install_root SKIP_RETURN_CODE 77)
