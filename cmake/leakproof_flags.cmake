# Flags for the project's own code: strict warnings, optional sanitizers.
add_library(leakproof_warnings INTERFACE)
target_compile_options(leakproof_warnings INTERFACE -Wall -Wextra -Werror -Wshadow -Wconversion
                                                    -Wno-sign-conversion)
# GCC 12 at -O3 warns -Wrestrict inside libstdc++ for `"x" + std::string`
# (GCC bug 105329): a false positive that would break Release builds.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(leakproof_warnings INTERFACE -Wno-restrict)
endif()

if(LEAKPROOF_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# The fuzz build instruments everything for coverage; only its fuzz targets are run.
if(LEAKPROOF_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# ThreadSanitizer for the interposer's threads. Unlike ASan it works
# in a preloaded library, provided the program is instrumented too: only
# preload/ and tests/preload's stress_probe are meant to be run in this build
# (scripts/test-all: ctest -L tsan). TSan cannot share a process with ASan.
if(LEAKPROOF_TSAN)
  if(LEAKPROOF_SANITIZE OR LEAKPROOF_FUZZ)
    message(FATAL_ERROR "LEAKPROOF_TSAN excludes LEAKPROOF_SANITIZE and LEAKPROOF_FUZZ")
  endif()
  set(LEAKPROOF_TSAN_FLAGS -fsanitize=thread -fno-omit-frame-pointer)
  add_compile_options(${LEAKPROOF_TSAN_FLAGS})
  add_link_options(-fsanitize=thread)
endif()
