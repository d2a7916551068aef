#!/usr/bin/env bash
# Runs the fused attention and layer-reduction kernels (native/src/attention_f32.cu, attention_bf16.cu,
# nn_backward.cu) on the CPU, without a GPU, against float64 references: a developer check of the kernels'
# indexing, tiling, masking and fragment layouts for machines without a CUDA device (CTest: kernel_emulation).
#
#   native/tests/emulation/run.sh [work dir]
#
# How: transform.py rewrites a copy of each .cu into plain C++ (launches `k<<<g, b, smem, s>>>(args)` become
# emu::launch(k, g, b, smem, args); __shared__ becomes static, dynamic shared memory a per-block buffer poisoned with
# 0xff bytes); emu.h runs every CUDA thread of a block as a std::thread with std::barrier for __syncthreads and
# per-warp barriers for __shfl_xor_sync, and emulates mma.sync.m16n8k16 (BF16) from the fragment layouts of the
# PTX ISA (section "Matrix Fragments for mma.m16n8k16 with floating point type"), ldmatrix.x4 (.trans) from its
# section "ldmatrix", and cp.async as a synchronous copy (zero-filled when its source size is 0). Blocks run one
# after another.
# Needs g++ (or $CXX) with C++20 (<barrier>) and python3. Takes ~20 s on 2 cores; CTest runs it (kernel_emulation).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/../../src"
inc="$here/../../include"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
cp "$here/emu.h" "$work/"
for f in attention_f32 attention_bf16 nn_backward; do
  python3 "$here/transform.py" "$src/$f.cu" "$work/$f.emu.cpp"
  "${CXX:-g++}" -std=c++20 -O2 -pthread -w -I"$inc" -I"$src" -I"$work" -c "$work/$f.emu.cpp" -o "$work/$f.o" &
done
wait
"${CXX:-g++}" -std=c++20 -O2 -pthread -w -I"$inc" -I"$work" "$here/driver.cpp" "$work"/*.o -o "$work/driver"
"$work/driver"
