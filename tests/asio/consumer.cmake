# Installs the build tree into a scratch prefix, then builds and runs a
# consumer against it twice: with find_package(leakproof) and with pkg-config.
# -DSOURCE, -DBINARY (the leakproof trees), -DWORK (a scratch directory) and
# -DSANITIZE (the library was built with ASan+UBSan: so must its consumer be).
file(REMOVE_RECURSE ${WORK})
set(flags_for_sanitizer "")
if(SANITIZE)
  set(flags_for_sanitizer -fsanitize=address,undefined)
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
    "-DCMAKE_CXX_FLAGS=${flags_for_sanitizer}")
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
run(c++ ${flags_for_sanitizer} ${consumer}/main.cpp -o ${WORK}/consumer-pc ${flags})
run(${WORK}/consumer-pc)
foreach(installed bin/leakproof bin/leakproof-connect include/leakproof/asio.hpp)
  if(NOT EXISTS ${prefix}/${installed})
    message(FATAL_ERROR "consumer: ${installed} was not installed")
  endif()
endforeach()
message(STATUS "consumer: built and ran against ${prefix}")
