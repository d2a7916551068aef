# GPU architectures diffusion4j compiles for. Include this BEFORE project(): CMake reads
# CMAKE_CUDA_ARCHITECTURES when the CUDA language is enabled.
#
#   80-real     SASS for A100 (runs on every 8.x card: 8.6, 8.9 by binary compatibility)
#   90-real     SASS for H100/H200
#   90-virtual  compute_90 PTX, JIT-compiled by the driver for newer cards (10.x, 12.x)
#
# Override with -DCMAKE_CUDA_ARCHITECTURES=... (e.g. "native" on a GPU box for a faster build).
# The Java side (CudaRuntime) refuses devices below compute capability 8.0 with a clear message;
# keep D4J_MIN_COMPUTE_CAPABILITY in sync with it.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "80-real;90-real;90-virtual" CACHE STRING "CUDA architectures to build for")
endif()
set(D4J_MIN_COMPUTE_CAPABILITY 80)
