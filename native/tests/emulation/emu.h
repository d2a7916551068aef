// Host emulation of the CUDA features the kernels use (native/tests/emulation/run.sh; developer check, not CTest).
#pragma once
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <cfloat>
#include <thread>
#include <vector>
#include <memory>
#include <atomic>
#include <functional>
#include <algorithm>
#include "diffusion4j.h"

struct dim3 { unsigned x = 1, y = 1, z = 1; dim3() {} dim3(unsigned a, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };
typedef void *cudaStream_t;
typedef int cudaError_t;
#define cudaSuccess 0
#define cudaFuncAttributeMaxDynamicSharedMemorySize 0
template <class F> inline int cudaFuncSetAttribute(F, int, int) { return 0; }
#define cudaDevAttrMaxSharedMemoryPerBlockOptin 0
inline int cudaGetDevice(int *d) { *d = 0; return 0; }
inline int emu_optin = 232448;  // H100/H200
inline int cudaDeviceGetAttribute(int *v, int, int) { *v = emu_optin; return 0; }
inline int cudaGetLastError() { return 0; }

namespace emu {
inline thread_local dim3 threadIdx_, blockIdx_;
inline dim3 gridDim_, blockDim_;
inline unsigned char *dyn_smem = nullptr;
inline std::barrier<> *block_bar = nullptr;
inline std::vector<std::unique_ptr<std::barrier<>>> warp_bars;
inline std::vector<uint64_t> xbuf;  // per-thread exchange slots
inline std::vector<uint32_t> mbuf;  // mma exchange: per thread 4 a + 2 b
}
#define threadIdx emu::threadIdx_
#define blockIdx emu::blockIdx_
#define gridDim emu::gridDim_
#define blockDim emu::blockDim_
#define __syncthreads() emu::block_bar->arrive_and_wait()

template <class T>
inline T emu_shfl_xor(T v, int o) {
    unsigned t = threadIdx.x;
    unsigned w = t / 32, lane = t % 32;
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    emu::xbuf[t] = bits;
    emu::warp_bars[w]->arrive_and_wait();
    uint64_t got = emu::xbuf[w * 32 + (lane ^ o)];
    emu::warp_bars[w]->arrive_and_wait();
    T r;
    std::memcpy(&r, &got, sizeof(T));
    return r;
}
#define __shfl_xor_sync(mask, v, o) emu_shfl_xor((v), (o))

inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
inline double __dadd_rn(double a, double b) { volatile double r = a + b; return r; }
inline double __dmul_rn(double a, double b) { volatile double r = a * b; return r; }
inline float __double2float_rn(double d) { return (float)d; }

struct __nv_bfloat16 { uint16_t bits; };
struct __nv_bfloat162 { __nv_bfloat16 x, y; };
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u; std::memcpy(&u, &f, 4);
    u += 0x7FFF + ((u >> 16) & 1);
    return __nv_bfloat16{(uint16_t)(u >> 16)};
}
inline float bf2f(uint16_t b) { uint32_t u = (uint32_t)b << 16; float f; std::memcpy(&f, &u, 4); return f; }
inline __nv_bfloat162 __floats2bfloat162_rn(float lo, float hi) { return {__float2bfloat16_rn(lo), __float2bfloat16_rn(hi)}; }

// Warp-collective m16n8k16 bf16 mma with the PTX ISA fragment layouts.
inline void emu_mma(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
    unsigned t = threadIdx.x, w = t / 32, lane = t % 32;
    uint32_t *m = &emu::mbuf[t * 6];
    m[0] = a0; m[1] = a1; m[2] = a2; m[3] = a3; m[4] = b0; m[5] = b1;
    emu::warp_bars[w]->arrive_and_wait();
    float A[16][16], B[16][8];
    for (int l = 0; l < 32; ++l) {
        const uint32_t *ml = &emu::mbuf[(w * 32 + l) * 6];
        int g = l >> 2, tg = l & 3;
        for (int i = 0; i < 8; ++i) {
            uint32_t reg = ml[i / 2];
            uint16_t h = (i & 1) ? (reg >> 16) : (reg & 0xFFFF);
            int row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
            int col = tg * 2 + (i & 1) + (i >= 4 ? 8 : 0);
            A[row][col] = bf2f(h);
        }
        for (int i = 0; i < 4; ++i) {
            uint32_t reg = ml[4 + i / 2];
            uint16_t h = (i & 1) ? (reg >> 16) : (reg & 0xFFFF);
            int row = tg * 2 + (i & 1) + (i >= 2 ? 8 : 0);
            B[row][g] = bf2f(h);
        }
    }
    emu::warp_bars[w]->arrive_and_wait();
    int g = lane >> 2, tg = lane & 3;
    for (int i = 0; i < 4; ++i) {
        int row = i < 2 ? g : g + 8;
        int col = tg * 2 + (i & 1);
        float acc = d[i];
        for (int k = 0; k < 16; ++k) acc += A[row][k] * B[k][col];
        d[i] = acc;
    }
}

// ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: lanes 8m..8m+7 give the row addresses of 8x8 matrix m; lane l
// receives, of each matrix, row l / 4, columns 2 (l % 4) and + 1 (with trans: those of the transposed matrix).
inline void emu_ldmatrix_x4(uint32_t (&r)[4], const uint16_t *row, bool trans) {
    unsigned t = threadIdx.x, w = t / 32, lane = t % 32;
    emu::xbuf[t] = reinterpret_cast<uint64_t>(row);
    emu::warp_bars[w]->arrive_and_wait();
    const unsigned g = lane / 4, c = 2 * (lane % 4);
    for (int m = 0; m < 4; ++m) {
        auto rowp = [&](unsigned j) { return reinterpret_cast<const uint16_t *>(emu::xbuf[w * 32 + 8 * m + j]); };
        uint16_t lo = trans ? rowp(c)[g] : rowp(g)[c];
        uint16_t hi = trans ? rowp(c + 1)[g] : rowp(g)[c + 1];
        r[m] = (uint32_t)lo | ((uint32_t)hi << 16);
    }
    emu::warp_bars[w]->arrive_and_wait();
}

struct float2 { float x, y; };
struct float4 { float x, y, z, w; };
struct uint2 { uint32_t x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline uint2 make_uint2(uint32_t x, uint32_t y) { return {x, y}; }

// internal.cuh replacements
#define D4J_INTERNAL_CUH
inline int d4j_fail(int status, const char *op, const char *fmt, ...) { std::fprintf(stderr, "d4j_fail %s: %s\n", op, fmt); return status; }
inline int d4j_check_launch(const char *) { return 0; }
#define D4J_REQUIRE(cond, op, ...) do { if (!(cond)) { return d4j_fail(D4J_ERR_INVALID, (op), __VA_ARGS__); } } while (0)
namespace d4j {
inline int cuda_status(cudaError_t e, const char *) { return e; }
inline cudaStream_t as_stream(void *s) { return s; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline bool checked_mul(int64_t a, int64_t b, int64_t *n) { if (a != 0 && b > INT64_MAX / a) return false; *n = a * b; return true; }
template <auto K> inline unsigned grid_for(int64_t work, int, int64_t per_block) { int64_t b = ceil_div(work, per_block); return (unsigned)std::max<int64_t>(1, std::min<int64_t>(b, 5)); }
}

namespace emu {
template <class K, class... A>
void launch(K kernel, dim3 grid, dim3 block, size_t smem, A... args) {
    gridDim_ = grid; blockDim_ = block;
    unsigned n = block.x;
    std::vector<unsigned char> sm(smem + 16);
    xbuf.assign(n, 0); mbuf.assign(n * 6, 0);
    warp_bars.clear();
    for (unsigned w = 0; w < (n + 31) / 32; ++w) warp_bars.emplace_back(new std::barrier<>(std::min(32u, n - w * 32)));
    for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
        // poison dynamic shared memory
        for (size_t i = 0; i < sm.size(); ++i) sm[i] = 0xff;
        dyn_smem = sm.data();
        std::barrier<> bar(n);
        block_bar = &bar;
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < n; ++t) ts.emplace_back([=] { threadIdx_ = dim3(t); blockIdx_ = dim3(bx, by); kernel(args...); });
        for (auto &th : ts) th.join();
    }
}
}
