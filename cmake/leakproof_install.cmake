# Installed layout: headers, the library, a CMake package and a pkg-config file.
include(CMakePackageConfigHelpers)

install(DIRECTORY include/leakproof DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS leakproof EXPORT leakproofTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT leakproofTargets NAMESPACE leakproof::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/leakproof)

configure_package_config_file(cmake/leakproofConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/leakproofConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/leakproof)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/leakproofConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/leakproofConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/leakproofConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/leakproof)

# Relocatable: the prefix is found from the .pc file's own place.
set(LEAKPROOF_PC_ASIO_CFLAGS "")
if(LEAKPROOF_ASIO STREQUAL "boost")
  set(LEAKPROOF_PC_ASIO_CFLAGS " -DLEAKPROOF_ASIO_BOOST")
endif()
file(RELATIVE_PATH LEAKPROOF_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
configure_file(cmake/leakproof.pc.in ${CMAKE_CURRENT_BINARY_DIR}/leakproof.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/leakproof.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# Shell completions, where bash-completion and zsh look for them. zsh's
# directory depends on the prefix given at install time (cmake --install
# --prefix): Debian's zsh searches share/zsh/vendor-completions for /usr and
# share/zsh/site-functions for every other prefix (/usr/local among them).
install(FILES completions/leakproof.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME leakproof)
install(FILES completions/leakproof-connect.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME leakproof-connect)
install(CODE "
  set(zsh_dir site-functions)
  if(CMAKE_INSTALL_PREFIX MATCHES \"^/usr/?$\" AND EXISTS /etc/debian_version)
    set(zsh_dir vendor-completions)
  endif()
  file(INSTALL \"${PROJECT_SOURCE_DIR}/completions/_leakproof\"
       DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DATADIR}/zsh/\${zsh_dir}\")
")
