# Installs the build tree into a scratch prefix, then builds and runs a
# consumer against it twice: with find_package(leakproof) and with pkg-config.
# -DSOURCE, -DBINARY (the leakproof trees), -DWORK (a scratch directory) and
# -DSANITIZE (the library was built with ASan+UBSan: so must its consumer be),
# -DASIO (the flavour the install must hand its consumers, who do not ask).
file(REMOVE_RECURSE ${WORK})
set(flags_for_sanitizer "")
if(SANITIZE)
  set(flags_for_sanitizer -fsanitize=address,undefined)
endif()
set(expect_flavour "")
if(ASIO STREQUAL "boost")
  set(expect_flavour -DEXPECT_ASIO_BOOST)
endif()
set(prefix ${WORK}/prefix)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "consumer: failed (${status}): ${command}")
  endif()
endfunction()

run(${CMAKE_COMMAND} --install ${BINARY} --prefix ${prefix})
set(consumer ${SOURCE}/tests/asio/consumer)
run(${CMAKE_COMMAND} -S ${consumer} -B ${WORK}/build -DCMAKE_PREFIX_PATH=${prefix}
    "-DCMAKE_CXX_FLAGS=${flags_for_sanitizer} ${expect_flavour}")
run(${CMAKE_COMMAND} --build ${WORK}/build)
run(${WORK}/build/consumer)

find_program(PKG_CONFIG pkg-config REQUIRED)
file(GLOB_RECURSE pc_file ${prefix}/*/leakproof.pc)
get_filename_component(pc_dir "${pc_file}" DIRECTORY)
set(ENV{PKG_CONFIG_PATH} ${pc_dir})
execute_process(COMMAND ${PKG_CONFIG} --cflags --libs leakproof
                OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "consumer: pkg-config does not know leakproof")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
run(c++ ${flags_for_sanitizer} ${expect_flavour} ${consumer}/main.cpp -o ${WORK}/consumer-pc ${flags})
run(${WORK}/consumer-pc)
foreach(installed bin/leakproof bin/leakproof-connect include/leakproof/asio.hpp)
  if(NOT EXISTS ${prefix}/${installed})
    message(FATAL_ERROR "consumer: ${installed} was not installed")
  endif()
endforeach()
# The installed wrapper finds the installed interposer from its own location,
# with no configuration: what it would preload must be the prefix's copy.
execute_process(COMMAND ${prefix}/bin/leakproof --env -p socks5h://127.0.0.1:9
                OUTPUT_VARIABLE exports RESULT_VARIABLE status)
string(REGEX MATCH "LD_PRELOAD='([^']*)'" preload "${exports}")
set(preloaded "${CMAKE_MATCH_1}")
if(NOT status EQUAL 0 OR NOT preloaded MATCHES "^${prefix}/" OR NOT EXISTS "${preloaded}")
  message(FATAL_ERROR "consumer: the installed wrapper preloads '${preloaded}', not the prefix's")
endif()
message(STATUS "consumer: built and ran against ${prefix}; its wrapper preloads ${preloaded}")
