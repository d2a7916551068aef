# Host tests of the kernel math: every native/tests/test_*.cpp becomes one g++ executable registered with
# CTest. They include native/include (the C ABI) and native/src (the __host__ __device__ .cuh headers,
# which compile as plain C++ when __CUDACC__ is not defined).
#
# d4j_add_host_tests(<tests dir> <include dirs...>)
function(d4j_add_host_tests tests_dir)
  file(GLOB d4j_test_sources CONFIGURE_DEPENDS "${tests_dir}/test_*.cpp")
  list(SORT d4j_test_sources)
  foreach(src IN LISTS d4j_test_sources)
    get_filename_component(name "${src}" NAME_WE)
    add_executable(${name} "${src}")
    target_include_directories(${name} PRIVATE ${ARGN})
    target_compile_features(${name} PRIVATE cxx_std_17)
    d4j_strict_warnings(${name})
    add_test(NAME ${name} COMMAND ${name})
    set_tests_properties(${name} PROPERTIES TIMEOUT 120)
  endforeach()
  list(LENGTH d4j_test_sources d4j_test_count)
  message(STATUS "diffusion4j: ${d4j_test_count} host test(s) in ${tests_dir}")
endfunction()
