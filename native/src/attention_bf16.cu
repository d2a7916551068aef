/*
 * Fused attention forward on tensor cores (org.diffusion4j.cuda.CudaAttention, Precision.BF16): FlashAttention-2
 * (Dao 2023, Algorithm 1) with both tile products on mma.sync.aligned.m16n8k16 BF16 instructions (PTX ISA,
 * "Matrix fragments for mma.m16n8k16 with floating point type"; sm_80 and later) and FP32 accumulation.
 *
 * The tensors stay F32 (the AttentionOps contract): Q, K, V are rounded to BF16 (nearest even) when a tile is
 * loaded into shared memory; scores, the online softmax (attention_math.cuh, the same formulas as the F32 kernel),
 * the output accumulators and the log-sum-exp are F32. P is rounded to BF16 for the P V product while the row sums
 * use the F32 P (as FlashAttention does). Expect about 3 significant digits (relative error ~1e-2 worst case).
 *
 * Block: 4 warps, 64 query rows (16 per warp); per 64-key tile: K [64][dh] and V transposed [dh][64] in shared
 * memory (rows padded by 8 BF16, so the fragment loads are bank-conflict free), S = Q K^T as 8 m16n8 tiles per warp
 * in registers, the online softmax on them (a row's 16 scores per lane, reduced over the 4 lanes of a quad), and
 * O += P V with P reused straight from the S accumulators: the C fragment of two adjacent n8 tiles is the A
 * fragment of one k16 step (Dao 2023, §3.1; the layouts in the PTX ISA). Head dims 1..128 run on kernels compiled
 * for 32, 64 and 128 (zero-padded tiles); ragged query blocks and key tiles are masked as in attention_f32.cu.
 */
#include <cuda_bf16.h>

#include <cfloat>
#include <cmath>

#include "attention_common.cuh"
#include "attention_math.cuh"

namespace d4j {
namespace attn {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr unsigned kFull = 0xffffffffu;

template <int DH>
struct Bf16Fwd {
    static constexpr int kBq = 16 * kWarps;
    static constexpr int kBk = 64;
    static constexpr int kLdq = DH + 8;   // BF16 elements per row of Q and K tiles
    static constexpr int kLdv = kBk + 8;  // BF16 elements per row of the transposed V tile
    static constexpr size_t kSmem = sizeof(__nv_bfloat16) * (kBq * kLdq + kBk * kLdq + DH * kLdv);
};

/* D = A B + D for one m16n8k16 tile: A row-major 16x16 (a0..a3), B column-major 16x8 (b0, b1), BF16 in, F32 acc. */
__device__ __forceinline__ void mma_bf16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
    (void)d;
    (void)a0;
    (void)a1;
    (void)a2;
    (void)a3;
    (void)b0;
    (void)b1;
#endif
}

/* Two consecutive BF16 of shared memory as one 32-bit register (the lower-indexed element in the low half). */
__device__ __forceinline__ uint32_t ld_pair(const __nv_bfloat16 *p) { return *reinterpret_cast<const uint32_t *>(p); }

/* (lo, hi) rounded to BF16 and packed, lo in the low half. */
__device__ __forceinline__ uint32_t pack_pair(float lo, float hi) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t *>(&h);
}

/* The A fragment of one k16 step from F32 C fragments: n8 tiles 2 kc and 2 kc + 1 of a 16-row tile, rounded to
 * BF16 (the C layout of two adjacent n8 tiles is the A layout of one k16 step; Dao 2023, §3.1). */
template <int N>
__device__ __forceinline__ void c_to_a(const float (&c)[N][4], int kc, uint32_t (&a)[4]) {
    a[0] = pack_pair(c[2 * kc][0], c[2 * kc][1]);
    a[1] = pack_pair(c[2 * kc][2], c[2 * kc][3]);
    a[2] = pack_pair(c[2 * kc + 1][0], c[2 * kc + 1][1]);
    a[3] = pack_pair(c[2 * kc + 1][2], c[2 * kc + 1][3]);
}

/* The end of one row's online-softmax step (Algorithm 1, lines 9-10): this lane's part of the tile sum summed over
 * the quad into the running sum, and the row's output accumulators (h = 0: o[t][0..1], h = 1: o[t][2..3]) scaled
 * by alpha. */
template <int DT>
__device__ __forceinline__ void finish_row(RowState &st, float (&o)[DT][4], int h, float alpha, float sum,
                                           bool first) {
    sum = __fadd_rn(sum, __shfl_xor_sync(kFull, sum, 1));
    sum = __fadd_rn(sum, __shfl_xor_sync(kFull, sum, 2));
    add_tile_sum(st, alpha, sum, first);
    if (!first) {
#pragma unroll
        for (int t = 0; t < DT; ++t) {
            o[t][2 * h] = __fmul_rn(o[t][2 * h], alpha);
            o[t][2 * h + 1] = __fmul_rn(o[t][2 * h + 1], alpha);
        }
    }
}

/* The forward's epilogue: rows row0 (h = 0) and row0 + 8 (h = 1) of out divided by their sums, and their
 * log-sum-exp when lse is given. Pairs: dh is even and out 8-byte aligned, so each lane stores float2. */
template <int DT, bool Pairs>
__device__ __forceinline__ void store_rows(const float (&o)[DT][4], const RowState (&st)[2], float *out, float *lse,
                                           int64_t bh, int64_t row0, int64_t tq, int dh, int t4) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int64_t row = row0 + 8 * h;
        if (row >= tq) {
            continue;
        }
        const float inv = inv_sum(st[h].l);
        float *orow = out + (bh * tq + row) * dh;
#pragma unroll
        for (int t = 0; t < DT; ++t) {
            const int col = t * 8 + 2 * t4;
            if constexpr (Pairs) {
                if (col < dh) {
                    *reinterpret_cast<float2 *>(orow + col) =
                        make_float2(__fmul_rn(o[t][2 * h], inv), __fmul_rn(o[t][2 * h + 1], inv));
                }
            } else {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    if (col + e < dh) {
                        orow[col + e] = __fmul_rn(o[t][2 * h + e], inv);
                    }
                }
            }
        }
        if (lse != nullptr && t4 == 0) {
            lse[bh * tq + row] = log_sum_exp(st[h].mc, st[h].l);
        }
    }
}

/* Rows [row0, row0 + R) of a [T, dh] F32 matrix into shared BF16 [R][LD] (zero outside rows < T, columns < dh). */
template <int R, int DH, int LD>
__device__ __forceinline__ void load_rows(__nv_bfloat16 *dst, const float *src, int64_t row0, int64_t t, int dh) {
    for (int e = threadIdx.x; e < R * DH; e += kThreads) {
        const int r = e / DH;
        const int d = e - r * DH;
        const int64_t row = row0 + r;
        dst[r * LD + d] = __float2bfloat16_rn((row < t && d < dh) ? src[row * dh + d] : 0.0f);
    }
}

/* The same rows stored transposed: dst[d][r], row stride LD. */
template <int R, int DH, int LD>
__device__ __forceinline__ void load_rows_t(__nv_bfloat16 *dst, const float *src, int64_t row0, int64_t t, int dh) {
    for (int e = threadIdx.x; e < R * DH; e += kThreads) {
        const int r = e / DH;
        const int d = e - r * DH;
        const int64_t row = row0 + r;
        dst[d * LD + r] = __float2bfloat16_rn((row < t && d < dh) ? src[row * dh + d] : 0.0f);
    }
}

template <int DH>
__global__ void __launch_bounds__(kThreads)
forward_bf16_kernel(const float *q, const float *k, const float *v, float *out, float *lse, int64_t tq, int64_t tk,
                    int dh, float c, int64_t q_blocks) {
    using F = Bf16Fwd<DH>;
    constexpr int NT = F::kBk / 8;  // n8 tiles of scores per warp
    constexpr int DT = DH / 8;      // n8 tiles of the output per warp
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __nv_bfloat16 *s_q = reinterpret_cast<__nv_bfloat16 *>(smem_raw);
    __nv_bfloat16 *s_k = s_q + F::kBq * F::kLdq;
    __nv_bfloat16 *s_vt = s_k + F::kBk * F::kLdq;
    const int64_t bh = blockIdx.x / q_blocks;
    const int64_t i0 = (blockIdx.x - bh * q_blocks) * F::kBq;
    const float *kh = k + bh * tk * dh;
    const float *vh = v + bh * tk * dh;
    const int warp = static_cast<int>(threadIdx.x) >> 5;
    const int lane = static_cast<int>(threadIdx.x) & 31;
    const int g = lane >> 2;  // groupID: rows g and g + 8 of the warp's 16
    const int t4 = lane & 3;  // threadID_in_group: columns 2 t4, 2 t4 + 1 of each n8 tile

    load_rows<F::kBq, DH, F::kLdq>(s_q, q + bh * tq * dh, i0, tq, dh);
    float o[DT][4];
#pragma unroll
    for (int t = 0; t < DT; ++t) {
        o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;
    }
    RowState st[2] = {RowState{0.0f, 0.0f, 0.0}, RowState{0.0f, 0.0f, 0.0}};
    const __nv_bfloat16 *q_frag = s_q + (warp * 16 + g) * F::kLdq + 2 * t4;
    for (int64_t j0 = 0; j0 < tk; j0 += F::kBk) {
        const bool first = j0 == 0;
        __syncthreads();  // the previous tile's readers of s_k, s_vt are done (and s_q is written)
        load_rows<F::kBk, DH, F::kLdq>(s_k, kh, j0, tk, dh);
        load_rows_t<F::kBk, DH, F::kLdv>(s_vt, vh, j0, tk, dh);
        __syncthreads();
        // S = Q K^T: B(k = d, n = key) = K[key][d], a column-major B read from the row-major K tile
        float s[NT][4];
#pragma unroll
        for (int t = 0; t < NT; ++t) {
            s[t][0] = s[t][1] = s[t][2] = s[t][3] = 0.0f;
        }
#pragma unroll
        for (int kk = 0; kk < DH; kk += 16) {
            const uint32_t a0 = ld_pair(q_frag + kk);
            const uint32_t a1 = ld_pair(q_frag + 8 * F::kLdq + kk);
            const uint32_t a2 = ld_pair(q_frag + kk + 8);
            const uint32_t a3 = ld_pair(q_frag + 8 * F::kLdq + kk + 8);
#pragma unroll
            for (int t = 0; t < NT; ++t) {
                const __nv_bfloat16 *kr = s_k + (t * 8 + g) * F::kLdq + kk + 2 * t4;
                mma_bf16(s[t], a0, a1, a2, a3, ld_pair(kr), ld_pair(kr + 8));
            }
        }
        // online softmax on rows g (h = 0: s[t][0..1]) and g + 8 (h = 1: s[t][2..3])
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float mx = -INFINITY;
#pragma unroll
            for (int t = 0; t < NT; ++t) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    if (j0 + t * 8 + 2 * t4 + e < tk) {
                        mx = jmax(mx, s[t][2 * h + e]);
                    }
                }
            }
            mx = jmax(mx, __shfl_xor_sync(kFull, mx, 1));
            mx = jmax(mx, __shfl_xor_sync(kFull, mx, 2));
            const float alpha = update_max(st[h], mx, c, first);
            float sum = 0.0f;
#pragma unroll
            for (int t = 0; t < NT; ++t) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const float p = (j0 + t * 8 + 2 * t4 + e < tk) ? prob(s[t][2 * h + e], c, st[h].mc) : 0.0f;
                    s[t][2 * h + e] = p;
                    sum = __fadd_rn(sum, p);
                }
            }
            finish_row(st[h], o, h, alpha, sum, first);
        }
        // O += P V: A = P (the S accumulators of n8 tiles 2 kc and 2 kc + 1), B(k = key, n = d) = Vt[d][key]
#pragma unroll
        for (int kc = 0; kc < F::kBk / 16; ++kc) {
            uint32_t a[4];
            c_to_a(s, kc, a);
#pragma unroll
            for (int t = 0; t < DT; ++t) {
                const __nv_bfloat16 *vr = s_vt + (t * 8 + g) * F::kLdv + kc * 16 + 2 * t4;
                mma_bf16(o[t], a[0], a[1], a[2], a[3], ld_pair(vr), ld_pair(vr + 8));
            }
        }
    }
    store_rows<DT, false>(o, st, out, lse, bh, i0 + warp * 16 + g, tq, dh, t4);
}

/* ------------------------------------------------------------------ forward, pipelined (head dims % 4 == 0)
 *
 * The same algorithm as forward_bf16_kernel, arranged for throughput (measured on an H200, benchmarks/RESULTS.md):
 * - K and V tiles travel as F32 by cp.async (16 bytes per copy, PTX ISA "cp.async"; sm_80 and later) into one F32
 *   stage while the tile before is multiplied; rows past tk and columns past dh are zero-filled by the copy itself
 *   (src-size 0). Each thread rounds the chunks it copied to BF16 (nearest even, as the staged kernel) into the
 *   BF16 tiles as soon as its own copies have landed (cp.async.wait_group is per thread), so no barrier separates
 *   the copy from the rounding; then it copies the next tile into the same chunks.
 * - Fragments come from the BF16 tiles by ldmatrix.x4 (.trans for V: PTX ISA "ldmatrix"), four 8x8 matrices per
 *   instruction; rows padded by 8 BF16 keep them bank-conflict free.
 * - Q's A fragments are loaded once, straight from global memory into registers.
 * - The per-score exponential is the hardware's ex2.approx (relative error ~2^-22, far below the BF16 rounding of
 *   P) instead of AttentionMath's exactly reproducible polynomial, and the row maxima use fmaxf (a NaN score still
 *   makes its row NaN, through its exponential); the per-row state (rescale factors, the float64 running sums, the
 *   log-sum-exp) keeps attention_math.cuh's formulas.
 * - Only a ragged last key tile pays for the masking.
 * Needs dh % 4 == 0 and 16-byte aligned k, v (8-byte aligned q, out); forward_bf16_launch picks the staged kernel
 * otherwise. */
template <int DH>
struct Bf16FwdPipe {
    static constexpr int kBq = 16 * kWarps;
    static constexpr int kBk = 64;  // keys per tile: 50 KB of shared memory (98 KB at head dim 128: two blocks per SM)
    static constexpr int kLdb = DH + 8;              // BF16 per row of the K and V tiles (16-byte rows, no conflicts)
    static constexpr size_t kStage = sizeof(float) * 2 * kBk * DH;           // F32 K and V, unpadded
    static constexpr size_t kSmem = kStage + sizeof(__nv_bfloat16) * 2 * kBk * kLdb;
    static constexpr int kMinBlocks = DH >= 128 ? 1 : 4;  // head dim <= 64: 128 registers, 16 warps per SM
};

/* 16 bytes from global `src` into shared `dst`, or 16 zero bytes when !valid (src is not read then). */
__device__ __forceinline__ void cp_async16(float *dst, const float *src, bool valid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    const size_t g = __cvta_generic_to_global(src);
    const int n = valid ? 16 : 0;
    // "memory": the compiler keeps this thread's earlier reads of the chunk (round_rows) before the copy
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(g), "r"(n) : "memory");
#else
    (void)dst;
    (void)src;
    (void)valid;
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}

/* Waits until none of this thread's committed copies is in flight. */
__device__ __forceinline__ void cp_async_wait_all() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
#endif
}

/* Four 8x8 BF16 matrices: lanes 8m..8m+7 give the row addresses of matrix m; r[m] is this lane's fragment of it
 * (row lane / 4, columns 2 (lane % 4) and + 1; with .trans the same of the transposed matrix). */
template <bool Trans>
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const __nv_bfloat16 *row) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(row));
    if constexpr (Trans) {
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(a)
                     : "memory");
    } else {
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(a)
                     : "memory");
    }
#else
    (void)row;
    r[0] = r[1] = r[2] = r[3] = 0u;
#endif
}

/* 2^x by the special-function unit (ex2.approx.ftz.f32). */
__device__ __forceinline__ float fast_exp2(float x) {
#if defined(__CUDA_ARCH__)
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#else
    return std::exp2(x);  // host builds (the emulation of native/tests/emulation)
#endif
}

/* This thread's 16-byte chunks of a [R][DH] tile: chunk i is row e / (DH / 4), column 4 (e % (DH / 4)), e =
 * threadIdx.x + i * kThreads. */
template <int R, int DH>
struct Chunks {
    static constexpr int kPerRow = DH / 4;
    static constexpr int kCount = R * kPerRow / kThreads;
    static_assert(R * kPerRow % kThreads == 0, "whole chunks per thread");
};

/* Rows [row0, row0 + R) of a [t, dh] F32 matrix into the F32 stage [R][DH] by cp.async; zeros past t and dh. */
template <int R, int DH>
__device__ __forceinline__ void stage_rows(float *dst, const float *src, int64_t row0, int64_t t, int dh) {
    using C = Chunks<R, DH>;
#pragma unroll
    for (int i = 0; i < C::kCount; ++i) {
        const int e = static_cast<int>(threadIdx.x) + i * kThreads;
        const int r = e / C::kPerRow;
        const int d = 4 * (e - r * C::kPerRow);
        const int64_t row = row0 + r;
        const bool valid = row < t && d < dh;
        cp_async16(dst + r * DH + d, valid ? src + row * dh + d : src, valid);
    }
}

/* This thread's chunks of the F32 stage rounded into the BF16 tile [R][LD]. */
template <int R, int DH, int LD>
__device__ __forceinline__ void round_rows(__nv_bfloat16 *dst, const float *src) {
    using C = Chunks<R, DH>;
#pragma unroll
    for (int i = 0; i < C::kCount; ++i) {
        const int e = static_cast<int>(threadIdx.x) + i * kThreads;
        const int r = e / C::kPerRow;
        const int d = 4 * (e - r * C::kPerRow);
        const float4 x = *reinterpret_cast<const float4 *>(src + r * DH + d);
        *reinterpret_cast<uint2 *>(dst + r * LD + d) = make_uint2(pack_pair(x.x, x.y), pack_pair(x.z, x.w));
    }
}

template <int DH>
__global__ void __launch_bounds__(kThreads, Bf16FwdPipe<DH>::kMinBlocks)
forward_bf16_pipe_kernel(const float *q, const float *k, const float *v, float *out, float *lse, int64_t tq,
                         int64_t tk, int dh, float c, int64_t q_blocks) {
    using F = Bf16FwdPipe<DH>;
    constexpr int NT = F::kBk / 8;  // n8 tiles of scores per warp
    constexpr int DT = DH / 8;      // n8 tiles of the output per warp
    constexpr int KT = DH / 16;     // k16 steps of Q K^T
    extern __shared__ __align__(16) unsigned char smem_raw[];
    float *f_k = reinterpret_cast<float *>(smem_raw);  // F32 stage [kBk][DH]
    float *f_v = f_k + F::kBk * DH;                      // F32 stage [kBk][DH]
    __nv_bfloat16 *s_k = reinterpret_cast<__nv_bfloat16 *>(smem_raw + F::kStage);  // [kBk][kLdb]
    __nv_bfloat16 *s_v = s_k + F::kBk * F::kLdb;                                     // [kBk][kLdb]
    const int64_t bh = blockIdx.x / q_blocks;
    const int64_t i0 = (blockIdx.x - bh * q_blocks) * F::kBq;
    const float *kh = k + bh * tk * dh;
    const float *vh = v + bh * tk * dh;
    const int warp = static_cast<int>(threadIdx.x) >> 5;
    const int lane = static_cast<int>(threadIdx.x) & 31;
    const int g = lane >> 2;
    const int t4 = lane & 3;
    const int64_t ntiles = (tk + F::kBk - 1) / F::kBk;

    stage_rows<F::kBk, DH>(f_k, kh, 0, tk, dh);
    stage_rows<F::kBk, DH>(f_v, vh, 0, tk, dh);
    cp_async_commit();

    // Q's A fragments: rows g, g + 8 of the warp's 16, columns kk + 2 t4 (+1) and kk + 8 + 2 t4 (+1)
    uint32_t qa[KT][4];
    {
        const float *qh = q + bh * tq * dh;
        const int64_t r0 = i0 + warp * 16 + g;
#pragma unroll
        for (int kt = 0; kt < KT; ++kt) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int64_t row = r0 + 8 * h;
#pragma unroll
                for (int half = 0; half < 2; ++half) {
                    const int col = kt * 16 + 8 * half + 2 * t4;
                    float2 x = make_float2(0.0f, 0.0f);
                    if (row < tq && col < dh) {
                        x = *reinterpret_cast<const float2 *>(qh + row * dh + col);
                    }
                    qa[kt][h + 2 * half] = pack_pair(x.x, x.y);
                }
            }
        }
    }
    // ldmatrix row addresses of this lane: matrix m = lane / 8, its row lane % 8
    const int lm = lane >> 3;
    const int lr = lane & 7;
    // K (non-transposed): matrices (keys +0, d +0), (keys +0, d +8), (keys +8, d +0), (keys +8, d +8) give b0, b1
    // of n8 tiles t and t + 1
    const __nv_bfloat16 *k_row = s_k + ((lm >> 1) * 8 + lr) * F::kLdb + (lm & 1) * 8;
    // V (transposed): matrices (keys +0, d +0), (keys +8, d +0), (keys +0, d +8), (keys +8, d +8) give b0, b1 of
    // output n8 tiles t and t + 1
    const __nv_bfloat16 *v_row = s_v + ((lm & 1) * 8 + lr) * F::kLdb + (lm >> 1) * 8;

    float o[DT][4];
#pragma unroll
    for (int t = 0; t < DT; ++t) {
        o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;
    }
    RowState st[2] = {RowState{0.0f, 0.0f, 0.0}, RowState{0.0f, 0.0f, 0.0}};
    for (int64_t it = 0; it < ntiles; ++it) {
        const int64_t j0 = it * F::kBk;
        cp_async_wait_all();  // this thread's chunks of tile `it` are in the stage
        round_rows<F::kBk, DH, F::kLdb>(s_k, f_k);
        round_rows<F::kBk, DH, F::kLdb>(s_v, f_v);
        if (it + 1 < ntiles) {  // the next tile into the same chunks, under this tile's products
            stage_rows<F::kBk, DH>(f_k, kh, j0 + F::kBk, tk, dh);
            stage_rows<F::kBk, DH>(f_v, vh, j0 + F::kBk, tk, dh);
            cp_async_commit();
        }
        __syncthreads();  // the BF16 tiles are whole
        const bool first = it == 0;
        const bool ragged = j0 + F::kBk > tk;
        float s[NT][4];
#pragma unroll
        for (int t = 0; t < NT; ++t) {
            s[t][0] = s[t][1] = s[t][2] = s[t][3] = 0.0f;
        }
#pragma unroll
        for (int kt = 0; kt < KT; ++kt) {
#pragma unroll
            for (int t = 0; t < NT; t += 2) {
                uint32_t b[4];
                ldmatrix_x4<false>(b, k_row + t * 8 * F::kLdb + kt * 16);
                mma_bf16(s[t], qa[kt][0], qa[kt][1], qa[kt][2], qa[kt][3], b[0], b[1]);
                mma_bf16(s[t + 1], qa[kt][0], qa[kt][1], qa[kt][2], qa[kt][3], b[2], b[3]);
            }
        }
        // online softmax on rows g (h = 0: s[t][0..1]) and g + 8 (h = 1: s[t][2..3])
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float mx = -INFINITY;
#pragma unroll
            for (int t = 0; t < NT; ++t) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    if (!ragged || j0 + t * 8 + 2 * t4 + e < tk) {
                        mx = fmaxf(mx, s[t][2 * h + e]);
                    }
                }
            }
            mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, 2));
            const float alpha = update_max(st[h], mx, c, first);
            const float shift = -st[h].mc;
            float sum = 0.0f;
#pragma unroll
            for (int t = 0; t < NT; ++t) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    float p = fast_exp2(__fmaf_rn(s[t][2 * h + e], c, shift));
                    if (ragged && j0 + t * 8 + 2 * t4 + e >= tk) {
                        p = 0.0f;
                    }
                    s[t][2 * h + e] = p;
                    sum = __fadd_rn(sum, p);
                }
            }
            finish_row(st[h], o, h, alpha, sum, first);
        }
        // O += P V: A = P (S accumulators of n8 tiles 2 kc, 2 kc + 1), B(k = key, n = d) = V[key][d]
#pragma unroll
        for (int kc = 0; kc < F::kBk / 16; ++kc) {
            uint32_t a[4];
            c_to_a(s, kc, a);
#pragma unroll
            for (int t = 0; t < DT; t += 2) {
                uint32_t b[4];
                ldmatrix_x4<true>(b, v_row + kc * 16 * F::kLdb + t * 8);
                mma_bf16(o[t], a[0], a[1], a[2], a[3], b[0], b[1]);
                mma_bf16(o[t + 1], a[0], a[1], a[2], a[3], b[2], b[3]);
            }
        }
        __syncthreads();  // the BF16 tiles' readers are done before the next rounding
    }
    cp_async_wait_all();  // nothing in flight at exit
    store_rows<DT, true>(o, st, out, lse, bh, i0 + warp * 16 + g, tq, dh, t4);  // dh % 4 == 0: whole pairs
}

/* ------------------------------------------------------------------ backward (FlashAttention-2, Algorithm 2) */

/* Rows [row0, row0 + R) of the block's queries: Lc = fl(L log2 e) and D = rowsum(dO o O) in float64 index order
 * from the F32 tensors (as the F32 kernels and the CPU); 0 for rows past tq (masked anyway). */
template <int R>
__device__ __forceinline__ void row_terms_bf16(const float *doh, const float *oh, const float *lh, int64_t row0,
                                               int64_t tq, int dh, float *s_lc, float *s_d) {
    for (int r = threadIdx.x; r < R; r += kThreads) {
        const int64_t row = row0 + r;
        float lc = 0.0f;
        double acc = 0.0;
        if (row < tq) {
            lc = lse_shift(lh[row]);
            for (int d = 0; d < dh; ++d) {
                acc = dot_step(acc, doh[row * dh + d], oh[row * dh + d]);
            }
        }
        s_lc[r] = lc;
        s_d[r] = __double2float_rn(acc);
    }
}

/* acc[t] (+)= A B over one 16 x 64 tile row of a warp: A rows from `a_frag` (row-major [.][LD], this lane's
 * fragment base), B(k = d, n = j) = b[j][d] (row-major [64][LD]), k over DH. */
template <int DH, int LD>
__device__ __forceinline__ void tile_scores(const __nv_bfloat16 *a_frag, const __nv_bfloat16 *b, int g, int t4,
                                           float (&acc)[8][4]) {
#pragma unroll
    for (int t = 0; t < 8; ++t) {
        acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;
    }
#pragma unroll
    for (int kk = 0; kk < DH; kk += 16) {
        const uint32_t a0 = ld_pair(a_frag + kk);
        const uint32_t a1 = ld_pair(a_frag + 8 * LD + kk);
        const uint32_t a2 = ld_pair(a_frag + kk + 8);
        const uint32_t a3 = ld_pair(a_frag + 8 * LD + kk + 8);
#pragma unroll
        for (int t = 0; t < 8; ++t) {
            const __nv_bfloat16 *br = b + (t * 8 + g) * LD + kk + 2 * t4;
            mma_bf16(acc[t], a0, a1, a2, a3, ld_pair(br), ld_pair(br + 8));
        }
    }
}

/* acc[t] += A B with A = the 16 x 64 C fragments `c` reused as A (k = the 64 columns), B(k = j, n = d) =
 * bt[d][j] (transposed, row-major [DH][LDT]). */
template <int DH, int LDT>
__device__ __forceinline__ void tile_product(const float (&c)[8][4], const __nv_bfloat16 *bt, int g, int t4,
                                            float (&acc)[DH / 8][4]) {
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
        uint32_t a[4];
        c_to_a(c, kc, a);
#pragma unroll
        for (int t = 0; t < DH / 8; ++t) {
            const __nv_bfloat16 *br = bt + (t * 8 + g) * LDT + kc * 16 + 2 * t4;
            mma_bf16(acc[t], a[0], a[1], a[2], a[3], ld_pair(br), ld_pair(br + 8));
        }
    }
}

template <int DH>
struct Bf16Bwd {
    static constexpr int kRows = 16 * kWarps;  // keys (dK/dV kernel) or queries (dQ kernel) per block
    static constexpr int kStep = 64;           // queries or keys per step
    static constexpr int kLd = DH + 8;
    static constexpr int kLdt = kStep + 8;
    static constexpr size_t kSmemKv =
        sizeof(__nv_bfloat16) * (2 * kRows * kLd + 2 * kStep * kLd + 2 * DH * kLdt) + sizeof(float) * 2 * kStep;
    static constexpr size_t kSmemQ =
        sizeof(__nv_bfloat16) * (2 * kRows * kLd + 2 * kStep * kLd + DH * kLdt) + sizeof(float) * 2 * kRows;
};

/* dK, dV of one (problem, 64-key tile), each warp owning 16 keys: S^T = K Q^T and dP^T = V dO^T per 64-query step,
 * P^T and dS^T from the saved log-sum-exp, dV += P^T dO and dK += dS^T Q with P^T, dS^T reused as A fragments. */
template <int DH>
__global__ void __launch_bounds__(kThreads)
backward_kv_bf16_kernel(const float *q, const float *k, const float *v, const float *o, const float *lse,
                        const float *dout, float *dk, float *dv, int64_t tq, int64_t tk, int dh, float scale, float c,
                        int64_t k_blocks) {
    using F = Bf16Bwd<DH>;
    constexpr int DT = DH / 8;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __nv_bfloat16 *s_k = reinterpret_cast<__nv_bfloat16 *>(smem_raw);
    __nv_bfloat16 *s_v = s_k + F::kRows * F::kLd;
    __nv_bfloat16 *s_q = s_v + F::kRows * F::kLd;
    __nv_bfloat16 *s_do = s_q + F::kStep * F::kLd;
    __nv_bfloat16 *s_qt = s_do + F::kStep * F::kLd;
    __nv_bfloat16 *s_dot = s_qt + DH * F::kLdt;
    float *s_lc = reinterpret_cast<float *>(s_dot + DH * F::kLdt);
    float *s_d = s_lc + F::kStep;
    const int64_t bh = blockIdx.x / k_blocks;
    const int64_t k0 = (blockIdx.x - bh * k_blocks) * F::kRows;
    const int warp = static_cast<int>(threadIdx.x) >> 5;
    const int lane = static_cast<int>(threadIdx.x) & 31;
    const int g = lane >> 2;
    const int t4 = lane & 3;
    const float *qh = q + bh * tq * dh;
    const float *doh = dout + bh * tq * dh;

    load_rows<F::kRows, DH, F::kLd>(s_k, k + bh * tk * dh, k0, tk, dh);
    load_rows<F::kRows, DH, F::kLd>(s_v, v + bh * tk * dh, k0, tk, dh);
    float acc_k[DT][4];
    float acc_v[DT][4];
#pragma unroll
    for (int t = 0; t < DT; ++t) {
        acc_k[t][0] = acc_k[t][1] = acc_k[t][2] = acc_k[t][3] = 0.0f;
        acc_v[t][0] = acc_v[t][1] = acc_v[t][2] = acc_v[t][3] = 0.0f;
    }
    const __nv_bfloat16 *k_frag = s_k + (warp * 16 + g) * F::kLd + 2 * t4;
    const __nv_bfloat16 *v_frag = s_v + (warp * 16 + g) * F::kLd + 2 * t4;
    for (int64_t q0 = 0; q0 < tq; q0 += F::kStep) {
        __syncthreads();  // the previous step's readers are done
        load_rows<F::kStep, DH, F::kLd>(s_q, qh, q0, tq, dh);
        load_rows<F::kStep, DH, F::kLd>(s_do, doh, q0, tq, dh);
        load_rows_t<F::kStep, DH, F::kLdt>(s_qt, qh, q0, tq, dh);
        load_rows_t<F::kStep, DH, F::kLdt>(s_dot, doh, q0, tq, dh);
        row_terms_bf16<F::kStep>(doh, o + bh * tq * dh, lse + bh * tq, q0, tq, dh, s_lc, s_d);
        __syncthreads();
        float st[8][4];
        float dpt[8][4];
        tile_scores<DH, F::kLd>(k_frag, s_q, g, t4, st);    // S^T = K Q^T
        tile_scores<DH, F::kLd>(v_frag, s_do, g, t4, dpt);  // dP^T = V dO^T
#pragma unroll
        for (int t = 0; t < 8; ++t) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int qi = t * 8 + 2 * t4 + e;
                    const bool ok = q0 + qi < tq && k0 + warp * 16 + g + 8 * h < tk;
                    const float p = ok ? prob(st[t][2 * h + e], c, s_lc[qi]) : 0.0f;
                    dpt[t][2 * h + e] = p == 0.0f ? 0.0f : d_score(p, dpt[t][2 * h + e], s_d[qi]);
                    st[t][2 * h + e] = p;
                }
            }
        }
        tile_product<DH, F::kLdt>(st, s_dot, g, t4, acc_v);   // dV += P^T dO
        tile_product<DH, F::kLdt>(dpt, s_qt, g, t4, acc_k);   // dK += dS^T Q
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int64_t key = k0 + warp * 16 + g + 8 * h;
        if (key >= tk) {
            continue;
        }
        float *dkr = dk + (bh * tk + key) * dh;
        float *dvr = dv + (bh * tk + key) * dh;
#pragma unroll
        for (int t = 0; t < DT; ++t) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int col = t * 8 + 2 * t4 + e;
                if (col < dh) {
                    dkr[col] = __fmul_rn(scale, acc_k[t][2 * h + e]);
                    dvr[col] = acc_v[t][2 * h + e];
                }
            }
        }
    }
}

/* dQ of one (problem, 64 queries), each warp owning 16 queries: S = Q K^T, dP = dO V^T per 64-key step, P and dS
 * from the saved log-sum-exp, dQ += dS K with dS reused as A fragments. */
template <int DH>
__global__ void __launch_bounds__(kThreads)
backward_q_bf16_kernel(const float *q, const float *k, const float *v, const float *o, const float *lse,
                       const float *dout, float *dq, int64_t tq, int64_t tk, int dh, float scale, float c,
                       int64_t q_blocks) {
    using F = Bf16Bwd<DH>;
    constexpr int DT = DH / 8;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __nv_bfloat16 *s_q = reinterpret_cast<__nv_bfloat16 *>(smem_raw);
    __nv_bfloat16 *s_do = s_q + F::kRows * F::kLd;
    __nv_bfloat16 *s_k = s_do + F::kRows * F::kLd;
    __nv_bfloat16 *s_v = s_k + F::kStep * F::kLd;
    __nv_bfloat16 *s_kt = s_v + F::kStep * F::kLd;
    float *s_lc = reinterpret_cast<float *>(s_kt + DH * F::kLdt);
    float *s_d = s_lc + F::kRows;
    const int64_t bh = blockIdx.x / q_blocks;
    const int64_t q0 = (blockIdx.x - bh * q_blocks) * F::kRows;
    const int warp = static_cast<int>(threadIdx.x) >> 5;
    const int lane = static_cast<int>(threadIdx.x) & 31;
    const int g = lane >> 2;
    const int t4 = lane & 3;
    const float *kh = k + bh * tk * dh;
    const float *vh = v + bh * tk * dh;

    load_rows<F::kRows, DH, F::kLd>(s_q, q + bh * tq * dh, q0, tq, dh);
    load_rows<F::kRows, DH, F::kLd>(s_do, dout + bh * tq * dh, q0, tq, dh);
    row_terms_bf16<F::kRows>(dout + bh * tq * dh, o + bh * tq * dh, lse + bh * tq, q0, tq, dh, s_lc, s_d);
    float acc[DT][4];
#pragma unroll
    for (int t = 0; t < DT; ++t) {
        acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;
    }
    const __nv_bfloat16 *q_frag = s_q + (warp * 16 + g) * F::kLd + 2 * t4;
    const __nv_bfloat16 *do_frag = s_do + (warp * 16 + g) * F::kLd + 2 * t4;
    for (int64_t k0 = 0; k0 < tk; k0 += F::kStep) {
        __syncthreads();  // Q, dO and the row terms are written / the previous step's readers are done
        load_rows<F::kStep, DH, F::kLd>(s_k, kh, k0, tk, dh);
        load_rows<F::kStep, DH, F::kLd>(s_v, vh, k0, tk, dh);
        load_rows_t<F::kStep, DH, F::kLdt>(s_kt, kh, k0, tk, dh);
        __syncthreads();
        float s[8][4];
        float dp[8][4];
        tile_scores<DH, F::kLd>(q_frag, s_k, g, t4, s);    // S = Q K^T
        tile_scores<DH, F::kLd>(do_frag, s_v, g, t4, dp);  // dP = dO V^T
#pragma unroll
        for (int t = 0; t < 8; ++t) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int row = warp * 16 + g + 8 * h;
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const bool ok = q0 + row < tq && k0 + t * 8 + 2 * t4 + e < tk;
                    const float p = ok ? prob(s[t][2 * h + e], c, s_lc[row]) : 0.0f;
                    s[t][2 * h + e] = p == 0.0f ? 0.0f : d_score(p, dp[t][2 * h + e], s_d[row]);
                }
            }
        }
        tile_product<DH, F::kLdt>(s, s_kt, g, t4, acc);  // dQ += dS K
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int64_t row = q0 + warp * 16 + g + 8 * h;
        if (row >= tq) {
            continue;
        }
        float *dqr = dq + (bh * tq + row) * dh;
#pragma unroll
        for (int t = 0; t < DT; ++t) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int col = t * 8 + 2 * t4 + e;
                if (col < dh) {
                    dqr[col] = __fmul_rn(scale, acc[t][2 * h + e]);
                }
            }
        }
    }
}

template <int DH>
int backward_bf16_launch(const char *op, const float *q, const float *k, const float *v, const float *o,
                         const float *lse, const float *dout, float *dq, float *dk, float *dv, int64_t bh, int64_t tq,
                         int64_t tk, int dh, float scale, float c, cudaStream_t stream) {
    using F = Bf16Bwd<DH>;
    const int64_t k_blocks = ceil_div(tk, F::kRows);
    const int64_t q_blocks = ceil_div(tq, F::kRows);
    unsigned kv_grid = 0;
    unsigned q_grid = 0;
    int rc = grid_blocks(op, bh, k_blocks, &kv_grid);
    if (rc == D4J_OK) {
        rc = grid_blocks(op, bh, q_blocks, &q_grid);
    }
    if (rc != D4J_OK) {
        return rc;
    }
    constexpr auto kv = backward_kv_bf16_kernel<DH>;
    constexpr auto qk = backward_q_bf16_kernel<DH>;
    rc = allow_shared<kv>(op, F::kSmemKv);
    if (rc == D4J_OK) {
        rc = allow_shared<qk>(op, F::kSmemQ);
    }
    if (rc != D4J_OK) {
        return rc;
    }
    kv<<<kv_grid, kThreads, F::kSmemKv, stream>>>(q, k, v, o, lse, dout, dk, dv, tq, tk, dh, scale, c, k_blocks);
    rc = d4j_check_launch(op);
    if (rc != D4J_OK || q_grid == 0) {  // no queries: dK = dV = 0 written, no dQ
        return rc;
    }
    qk<<<q_grid, kThreads, F::kSmemQ, stream>>>(q, k, v, o, lse, dout, dq, tq, tk, dh, scale, c, q_blocks);
    return d4j_check_launch(op);
}

template <int DH>
int forward_bf16_launch(const char *op, const float *q, const float *k, const float *v, float *out, float *lse,
                        int64_t bh, int64_t tq, int64_t tk, int dh, float c, cudaStream_t stream) {
    const int64_t q_blocks = ceil_div(tq, Bf16Fwd<DH>::kBq);
    static_assert(Bf16FwdPipe<DH>::kBq == Bf16Fwd<DH>::kBq, "one grid for both kernels");
    unsigned blocks = 0;
    int rc = grid_blocks(op, bh, q_blocks, &blocks);
    const auto bits = [](const void *p) { return reinterpret_cast<uintptr_t>(p); };
    if (rc == D4J_OK && dh % 4 == 0 && ((bits(k) | bits(v)) & 15u) == 0 && ((bits(q) | bits(out)) & 7u) == 0) {
        constexpr auto kernel = forward_bf16_pipe_kernel<DH>;
        rc = allow_shared<kernel>(op, Bf16FwdPipe<DH>::kSmem);
        if (rc == D4J_OK) {
            kernel<<<blocks, kThreads, Bf16FwdPipe<DH>::kSmem, stream>>>(q, k, v, out, lse, tq, tk, dh, c, q_blocks);
            return d4j_check_launch(op);
        }
        if (rc != D4J_ERR_UNSUPPORTED) {
            return rc;
        }
        rc = D4J_OK;  // too much shared memory on this device: the staged kernel below
    }
    if (rc == D4J_OK) {
        constexpr auto kernel = forward_bf16_kernel<DH>;
        rc = allow_shared<kernel>(op, Bf16Fwd<DH>::kSmem);
        if (rc == D4J_OK) {
            kernel<<<blocks, kThreads, Bf16Fwd<DH>::kSmem, stream>>>(q, k, v, out, lse, tq, tk, dh, c, q_blocks);
            rc = d4j_check_launch(op);
        }
    }
    return rc;
}

}  // namespace
}  // namespace attn
}  // namespace d4j

extern "C" int d4j_attention_forward_bf16(const float *q, const float *k, const float *v, float *out, float *lse,
                                          int64_t bh, int64_t tq, int64_t tk, int64_t dh, float scale, void *stream) {
    const char *op = "d4j_attention_forward_bf16";
    bool empty = false;
    const int rc = d4j::attn::check_forward(op, q, k, v, out, bh, tq, tk, dh, scale, &empty);
    if (rc != D4J_OK || empty) {
        return rc;
    }
    const float c = d4j::attn::log2_scale(scale);
    const cudaStream_t s = d4j::as_stream(stream);
    const int d = static_cast<int>(dh);
    return d4j::attn::with_head_bucket(dh, [&](auto bucket) {
        return d4j::attn::forward_bf16_launch<decltype(bucket)::value>(op, q, k, v, out, lse, bh, tq, tk, d, c, s);
    });
}

extern "C" int d4j_attention_backward_bf16(const float *q, const float *k, const float *v, const float *out,
                                           const float *lse, const float *dout, float *dq, float *dk, float *dv,
                                           int64_t bh, int64_t tq, int64_t tk, int64_t dh, float scale,
                                           void *stream) {
    const char *op = "d4j_attention_backward_bf16";
    bool empty = false;
    const int rc = d4j::attn::check_backward(op, q, k, v, out, lse, dout, dq, dk, dv, bh, tq, tk, dh, scale, &empty);
    if (rc != D4J_OK || empty) {
        return rc;
    }
    const float c = d4j::attn::log2_scale(scale);
    const cudaStream_t s = d4j::as_stream(stream);
    const int d = static_cast<int>(dh);
    return d4j::attn::with_head_bucket(dh, [&](auto bucket) {
        return d4j::attn::backward_bf16_launch<decltype(bucket)::value>(op, q, k, v, out, lse, dout, dq, dk, dv, bh, tq,
                                                                        tk, d, scale, c, s);
    });
}
