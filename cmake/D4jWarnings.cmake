# Warnings as errors for host C++ (g++) and CUDA (nvcc + its host compiler), and release flags.
#
# d4j_strict_warnings(<target>) applies them to one target so that third-party code is never affected.

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

# Release: -O3 for host code and device code; no fast-math, so exp/log/div match the CPU oracles
# within the tolerances of the tests. -lineinfo costs nothing at run time and lets Nsight map SASS to
# source lines.
set(CMAKE_CXX_FLAGS_RELEASE "-O3 -DNDEBUG")
set(CMAKE_CUDA_FLAGS_RELEASE "-O3 -DNDEBUG -lineinfo")

function(d4j_strict_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Werror>
    # nvcc: every nvcc/ptxas/host-compiler warning is an error; cross-execution-space calls included.
    $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xcompiler=-Wall,-Wextra,-Werror>)
endfunction()
