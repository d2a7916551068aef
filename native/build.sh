#!/usr/bin/env bash
# Builds libdiffusion4j.so with CMake and runs the CTest host tests.
#
#   native/build.sh <build dir> [<state file>]
#
# Maven runs this in generate-resources (java/pom.xml) with <build dir> = ${project.build.directory}/native.
# When nvcc is not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin) it prints one line and exits 0: the
# build goes on CPU-only. <state file> receives `d4j.native.skip=true|false`, which the pom reads to skip
# the JavaCPP JNI build when there is no native library.
#
# Environment: CUDA_HOME, D4J_CUDA_ARCHITECTURES (overrides CMAKE_CUDA_ARCHITECTURES),
# D4J_NATIVE=off (skip even when nvcc exists), D4J_BUILD_JOBS.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="${1:?usage: native/build.sh <build dir> [<state file>]}"
state_file="${2:-}"

write_state() {
  if [[ -n "$state_file" ]]; then
    mkdir -p "$(dirname "$state_file")"
    printf 'd4j.native.skip=%s\n' "$1" >"$state_file"
  fi
}

find_nvcc() {
  if command -v nvcc >/dev/null 2>&1; then command -v nvcc; return 0; fi
  local d
  for d in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda; do
    if [[ -n "$d" && -x "$d/bin/nvcc" ]]; then echo "$d/bin/nvcc"; return 0; fi
  done
  return 1
}

if [[ "${D4J_NATIVE:-on}" == "off" ]]; then
  echo "[diffusion4j] native CUDA build skipped (D4J_NATIVE=off): building CPU-only"
  write_state true
  exit 0
fi
if ! nvcc="$(find_nvcc)"; then
  echo "[diffusion4j] nvcc not found (PATH, \$CUDA_HOME/bin, /usr/local/cuda/bin): skipping the native CUDA library, building CPU-only"
  write_state true
  exit 0
fi
if ! command -v cmake >/dev/null 2>&1; then
  echo "[diffusion4j] error: nvcc found at $nvcc but cmake is missing; install cmake >= 3.25 or set D4J_NATIVE=off" >&2
  exit 1
fi

cmake_args=(-S "$here" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$nvcc")
if [[ -n "${D4J_CUDA_ARCHITECTURES:-}" ]]; then
  cmake_args+=("-DCMAKE_CUDA_ARCHITECTURES=${D4J_CUDA_ARCHITECTURES}")
fi
jobs="${D4J_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}"

echo "[diffusion4j] native build with $nvcc in $build_dir"
mkdir -p "$build_dir"
cmake "${cmake_args[@]}" >"$build_dir/configure.log" 2>&1 || { cat "$build_dir/configure.log" >&2; exit 1; }
cmake --build "$build_dir" -j "$jobs"
if [[ "${D4J_SKIP_TESTS:-false}" == "true" ]]; then
  echo "[diffusion4j] host tests of the kernel math skipped (-DskipTests)"
else
  ctest --test-dir "$build_dir" --output-on-failure
fi
write_state false
