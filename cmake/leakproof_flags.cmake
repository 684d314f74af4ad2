# Flags for the project's own code: strict warnings, optional sanitizers.
add_library(leakproof_warnings INTERFACE)
target_compile_options(leakproof_warnings INTERFACE -Wall -Wextra -Werror -Wshadow -Wconversion
                                                    -Wno-sign-conversion)

if(LEAKPROOF_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# The fuzz build instruments everything for coverage; only its fuzz targets are run.
if(LEAKPROOF_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
