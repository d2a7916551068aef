/*
 * Fused scaled dot-product attention in F32 (org.diffusion4j.cuda.CudaAttention, Precision.F32): FlashAttention-2
 * (Dao 2023, Algorithm 1 forward, Algorithm 2 backward) with tiles of Q, K, V in shared memory, the online softmax
 * of attention_math.cuh, never a Tq x Tk matrix; the forward saves the natural log-sum-exp for the backward.
 *
 * Layout: q [BH, Tq, dh], k, v [BH, Tk, dh], out [BH, Tq, dh], lse [BH, Tq], contiguous F32. Head dims 1..128 run
 * on kernels compiled for 32, 64 and 128 (attention_common.cuh: the tiles are zero-padded from dh to the bucket,
 * which adds exact zeros to every dot product). The ragged last query block and key tile are masked: rows past Tq
 * are computed on zeros and never stored, keys past Tk get probability 0.
 *
 * Thread layout (all kernels, 256 threads): thread (ty, tx) = (tid / 16, tid % 16) owns rows ty + 16 i and columns
 * tx + 16 j of every tile product, so a row's 16 owners are one half-warp and row maxima / sums are xor-shuffle
 * trees over 16 lanes; shared-memory rows are padded by one float (conflict-free column reads).
 *
 * Forward: one block per (problem, 64 query rows); per 64-key tile: S = Q K^T (4x4 scores per thread), the online
 * softmax update, P to shared memory, O = alpha O + P V in registers. Backward, deterministic (no atomics): one
 * kernel per (problem, 64-key tile) accumulating dK, dV over all query blocks of 32 in order, and one kernel per
 * (problem, 64 query rows) accumulating dQ over all key tiles of 32 in order; both recompute P from the saved
 * log-sum-exp and D_i = rowsum(dO o O) (float64, index order) — the cost of determinism is the second
 * recomputation of S and dP (7 tile products instead of FlashAttention-2's 5 with an atomic dQ).
 *
 * Arithmetic: the dot products are float FMAs in index order (OpenBLAS on the CPU sums in another order: results
 * agree to float rounding, not bitwise); the softmax arithmetic is attention_math.cuh, bitwise the CPU's.
 */
#include <cfloat>

#include "attention_common.cuh"
#include "attention_math.cuh"

namespace d4j {
namespace attn {
namespace {

constexpr int kThreads = 256;
constexpr unsigned kFull = 0xffffffffu;

/* Rows [row0, row0 + R) of a [T, dh] matrix into shared [R][DH + 1], zero outside (rows >= T, columns >= dh). */
template <int R, int DH>
__device__ __forceinline__ void load_tile(float *dst, const float *src, int64_t row0, int64_t t, int dh) {
    for (int e = threadIdx.x; e < R * DH; e += kThreads) {
        const int r = e / DH;
        const int d = e - r * DH;
        const int64_t row = row0 + r;
        dst[r * (DH + 1) + d] = (row < t && d < dh) ? src[row * dh + d] : 0.0f;
    }
}

/* acc[i][j] = sum_d A[ty + 16 i][d] * B[tx + 16 j][d] over d < DH (A, B shared with row stride DH + 1). */
template <int RI, int CJ, int DH>
__device__ __forceinline__ void dot_tile(const float *a, const float *b, int ty, int tx, float (&acc)[RI][CJ]) {
#pragma unroll
    for (int i = 0; i < RI; ++i) {
#pragma unroll
        for (int j = 0; j < CJ; ++j) {
            acc[i][j] = 0.0f;
        }
    }
#pragma unroll 4
    for (int d = 0; d < DH; ++d) {
        float av[RI];
        float bv[CJ];
#pragma unroll
        for (int i = 0; i < RI; ++i) {
            av[i] = a[(ty + 16 * i) * (DH + 1) + d];
        }
#pragma unroll
        for (int j = 0; j < CJ; ++j) {
            bv[j] = b[(tx + 16 * j) * (DH + 1) + d];
        }
#pragma unroll
        for (int i = 0; i < RI; ++i) {
#pragma unroll
            for (int j = 0; j < CJ; ++j) {
                acc[i][j] = __fmaf_rn(av[i], bv[j], acc[i][j]);
            }
        }
    }
}

/* acc[i][j] += sum_{n < N} A(ty + 16 i, n) * B[n][tx + 16 j], A(r, n) = a[r * a_row + n * a_col], B shared with
 * row stride DH + 1. */
template <int RI, int OJ, int N, int DH>
__device__ __forceinline__ void mac_tile(const float *a, int a_row, int a_col, const float *b, int ty, int tx,
                                         float (&acc)[RI][OJ]) {
#pragma unroll 4
    for (int n = 0; n < N; ++n) {
        float av[RI];
        float bv[OJ];
#pragma unroll
        for (int i = 0; i < RI; ++i) {
            av[i] = a[(ty + 16 * i) * a_row + n * a_col];
        }
#pragma unroll
        for (int j = 0; j < OJ; ++j) {
            bv[j] = b[n * (DH + 1) + tx + 16 * j];
        }
#pragma unroll
        for (int i = 0; i < RI; ++i) {
#pragma unroll
            for (int j = 0; j < OJ; ++j) {
                acc[i][j] = __fmaf_rn(av[i], bv[j], acc[i][j]);
            }
        }
    }
}

/* Max / sum over the 16 lanes of a half-warp (fixed xor tree: the same order on every run). */
__device__ __forceinline__ float half_warp_max(float v) {
#pragma unroll
    for (int o = 8; o > 0; o >>= 1) {
        v = jmax(v, __shfl_xor_sync(kFull, v, o));
    }
    return v;
}

__device__ __forceinline__ float half_warp_sum(float v) {
#pragma unroll
    for (int o = 8; o > 0; o >>= 1) {
        v = __fadd_rn(v, __shfl_xor_sync(kFull, v, o));
    }
    return v;
}

/* ------------------------------------------------------------------ forward */

template <int DH>
struct Fwd {
    static constexpr int kBq = 64;
    static constexpr int kBk = 64;
    static constexpr int kLd = DH + 1;
    static constexpr int kLdp = kBk + 1;
    static constexpr size_t kSmem = sizeof(float) * (kBq * kLd + 2 * kBk * kLd + kBq * kLdp);
};

template <int DH>
__global__ void __launch_bounds__(kThreads)
forward_kernel(const float *q, const float *k, const float *v, float *out, float *lse, int64_t tq, int64_t tk, int dh,
               float c, int64_t q_blocks) {
    using F = Fwd<DH>;
    constexpr int RI = F::kBq / 16;
    constexpr int CJ = F::kBk / 16;
    constexpr int OJ = DH / 16;
    extern __shared__ float smem[];
    float *s_q = smem;
    float *s_k = s_q + F::kBq * F::kLd;
    float *s_v = s_k + F::kBk * F::kLd;
    float *s_p = s_v + F::kBk * F::kLd;
    const int64_t bh = blockIdx.x / q_blocks;
    const int64_t i0 = (blockIdx.x - bh * q_blocks) * F::kBq;
    const float *qh = q + bh * tq * dh;
    const float *kh = k + bh * tk * dh;
    const float *vh = v + bh * tk * dh;
    const int tx = static_cast<int>(threadIdx.x) & 15;
    const int ty = static_cast<int>(threadIdx.x) >> 4;

    load_tile<F::kBq, DH>(s_q, qh, i0, tq, dh);
    float o[RI][OJ];
    RowState st[RI];
#pragma unroll
    for (int i = 0; i < RI; ++i) {
        st[i] = RowState{0.0f, 0.0f, 0.0};
#pragma unroll
        for (int j = 0; j < OJ; ++j) {
            o[i][j] = 0.0f;
        }
    }
    for (int64_t j0 = 0; j0 < tk; j0 += F::kBk) {
        const bool first = j0 == 0;
        __syncthreads();  // the previous tile's readers of s_k, s_v, s_p are done
        load_tile<F::kBk, DH>(s_k, kh, j0, tk, dh);
        load_tile<F::kBk, DH>(s_v, vh, j0, tk, dh);
        __syncthreads();
        float s[RI][CJ];
        dot_tile<RI, CJ, DH>(s_q, s_k, ty, tx, s);
#pragma unroll
        for (int i = 0; i < RI; ++i) {
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < CJ; ++j) {
                if (j0 + tx + 16 * j < tk) {
                    mx = jmax(mx, s[i][j]);
                }
            }
            mx = half_warp_max(mx);
            const float alpha = update_max(st[i], mx, c, first);
            float sum = 0.0f;
#pragma unroll
            for (int j = 0; j < CJ; ++j) {
                const float p = (j0 + tx + 16 * j < tk) ? prob(s[i][j], c, st[i].mc) : 0.0f;
                s_p[(ty + 16 * i) * F::kLdp + tx + 16 * j] = p;
                sum = __fadd_rn(sum, p);
            }
            add_tile_sum(st[i], alpha, half_warp_sum(sum), first);
            if (!first) {
#pragma unroll
                for (int j = 0; j < OJ; ++j) {
                    o[i][j] = __fmul_rn(o[i][j], alpha);
                }
            }
        }
        __syncthreads();  // P complete
        mac_tile<RI, OJ, F::kBk, DH>(s_p, F::kLdp, 1, s_v, ty, tx, o);
    }
#pragma unroll
    for (int i = 0; i < RI; ++i) {
        const int64_t row = i0 + ty + 16 * i;
        if (row >= tq) {
            continue;
        }
        const float inv = inv_sum(st[i].l);
        float *orow = out + (bh * tq + row) * dh;
#pragma unroll
        for (int j = 0; j < OJ; ++j) {
            const int col = tx + 16 * j;
            if (col < dh) {
                orow[col] = __fmul_rn(o[i][j], inv);
            }
        }
        if (lse != nullptr && tx == 0) {
            lse[bh * tq + row] = log_sum_exp(st[i].mc, st[i].l);
        }
    }
}

/* ------------------------------------------------------------------ backward */

/* Rows [row0, row0 + R) of the block's queries: Lc (lse shift) and D = rowsum(dO o O) in float64 index order,
 * from the dO tile already in shared memory and O from global memory; 0 for rows past tq (masked anyway). */
template <int R, int DH>
__device__ __forceinline__ void row_terms(const float *s_do, const float *oh, const float *lh, int64_t row0,
                                          int64_t tq, int dh, float *s_lc, float *s_d) {
    for (int r = threadIdx.x; r < R; r += kThreads) {
        const int64_t row = row0 + r;
        float lc = 0.0f;
        double acc = 0.0;
        if (row < tq) {
            lc = lse_shift(lh[row]);
            const float *orow = oh + row * dh;
            for (int d = 0; d < dh; ++d) {
                acc = dot_step(acc, s_do[r * (DH + 1) + d], orow[d]);
            }
        }
        s_lc[r] = lc;
        s_d[r] = __double2float_rn(acc);
    }
}

/* P and dS of a [16 RI, 16 CJ] tile (queries x keys) into shared [.][ldp], masked outside [tq) x [tk):
 * s = Q K^T, dp = dO V^T recomputed, P = exp2(fma(s, c, -Lc)), dS = P (dP - D). */
template <int RI, int CJ, int DH>
__device__ __forceinline__ void p_ds_tile(const float *s_q, const float *s_do, const float *s_k, const float *s_v,
                                          const float *s_lc, const float *s_d, int64_t q0, int64_t tq, int64_t k0,
                                          int64_t tk, float c, float *s_p, float *s_ds, int ldp, int ty, int tx) {
    float s[RI][CJ];
    float dp[RI][CJ];
    dot_tile<RI, CJ, DH>(s_q, s_k, ty, tx, s);
    dot_tile<RI, CJ, DH>(s_do, s_v, ty, tx, dp);
#pragma unroll
    for (int i = 0; i < RI; ++i) {
        const int r = ty + 16 * i;
        const bool row_ok = q0 + r < tq;
        const float lc = s_lc[r];
        const float dd = s_d[r];
#pragma unroll
        for (int j = 0; j < CJ; ++j) {
            const int col = tx + 16 * j;
            const float p = (row_ok && k0 + col < tk) ? prob(s[i][j], c, lc) : 0.0f;
            if (s_p != nullptr) {
                s_p[r * ldp + col] = p;
            }
            s_ds[r * ldp + col] = p == 0.0f ? 0.0f : d_score(p, dp[i][j], dd);
        }
    }
}

template <int DH>
struct BwdKv {
    static constexpr int kBk = 64;  // keys per block
    static constexpr int kBq = 32;  // queries per step
    static constexpr int kLd = DH + 1;
    static constexpr int kLdp = kBk + 1;
    static constexpr size_t kSmem =
        sizeof(float) * (2 * kBk * kLd + 2 * kBq * kLd + 2 * kBq * kLdp + 2 * kBq);
};

/* dK, dV of one (problem, key tile): loops over every query block in order. */
template <int DH>
__global__ void __launch_bounds__(kThreads)
backward_kv_kernel(const float *q, const float *k, const float *v, const float *o, const float *lse, const float *dout,
                   float *dk, float *dv, int64_t tq, int64_t tk, int dh, float scale, float c, int64_t k_blocks) {
    using F = BwdKv<DH>;
    constexpr int OJ = DH / 16;
    constexpr int KI = F::kBk / 16;  // key rows per thread in the accumulation
    extern __shared__ float smem[];
    float *s_k = smem;
    float *s_v = s_k + F::kBk * F::kLd;
    float *s_q = s_v + F::kBk * F::kLd;
    float *s_do = s_q + F::kBq * F::kLd;
    float *s_p = s_do + F::kBq * F::kLd;
    float *s_ds = s_p + F::kBq * F::kLdp;
    float *s_lc = s_ds + F::kBq * F::kLdp;
    float *s_d = s_lc + F::kBq;
    const int64_t bh = blockIdx.x / k_blocks;
    const int64_t k0 = (blockIdx.x - bh * k_blocks) * F::kBk;
    const int tx = static_cast<int>(threadIdx.x) & 15;
    const int ty = static_cast<int>(threadIdx.x) >> 4;
    const float *qh = q + bh * tq * dh;
    const float *doh = dout + bh * tq * dh;
    const float *oh = o + bh * tq * dh;
    const float *lh = lse + bh * tq;

    load_tile<F::kBk, DH>(s_k, k + bh * tk * dh, k0, tk, dh);
    load_tile<F::kBk, DH>(s_v, v + bh * tk * dh, k0, tk, dh);
    float acc_k[KI][OJ];
    float acc_v[KI][OJ];
#pragma unroll
    for (int i = 0; i < KI; ++i) {
#pragma unroll
        for (int j = 0; j < OJ; ++j) {
            acc_k[i][j] = 0.0f;
            acc_v[i][j] = 0.0f;
        }
    }
    for (int64_t q0 = 0; q0 < tq; q0 += F::kBq) {
        __syncthreads();  // the previous step's readers are done
        load_tile<F::kBq, DH>(s_q, qh, q0, tq, dh);
        load_tile<F::kBq, DH>(s_do, doh, q0, tq, dh);
        __syncthreads();
        row_terms<F::kBq, DH>(s_do, oh, lh, q0, tq, dh, s_lc, s_d);
        __syncthreads();
        p_ds_tile<F::kBq / 16, F::kBk / 16, DH>(s_q, s_do, s_k, s_v, s_lc, s_d, q0, tq, k0, tk, c, s_p, s_ds,
                                                F::kLdp, ty, tx);
        __syncthreads();
        // dV_j += P^T dO_i, dK_j += dS^T Q_i: A(key, r) = s_p[r * ldp + key]
        mac_tile<KI, OJ, F::kBq, DH>(s_p, 1, F::kLdp, s_do, ty, tx, acc_v);
        mac_tile<KI, OJ, F::kBq, DH>(s_ds, 1, F::kLdp, s_q, ty, tx, acc_k);
    }
#pragma unroll
    for (int i = 0; i < KI; ++i) {
        const int64_t key = k0 + ty + 16 * i;
        if (key >= tk) {
            continue;
        }
        float *dkr = dk + (bh * tk + key) * dh;
        float *dvr = dv + (bh * tk + key) * dh;
#pragma unroll
        for (int j = 0; j < OJ; ++j) {
            const int col = tx + 16 * j;
            if (col < dh) {
                dkr[col] = __fmul_rn(scale, acc_k[i][j]);
                dvr[col] = acc_v[i][j];
            }
        }
    }
}

template <int DH>
struct BwdQ {
    static constexpr int kBq = 64;  // queries per block
    static constexpr int kBk = 32;  // keys per step
    static constexpr int kLd = DH + 1;
    static constexpr int kLdp = kBk + 1;
    static constexpr size_t kSmem = sizeof(float) * (2 * kBq * kLd + 2 * kBk * kLd + kBq * kLdp + 2 * kBq);
};

/* dQ of one (problem, query block): loops over every key tile in order. */
template <int DH>
__global__ void __launch_bounds__(kThreads)
backward_q_kernel(const float *q, const float *k, const float *v, const float *o, const float *lse, const float *dout,
                  float *dq, int64_t tq, int64_t tk, int dh, float scale, float c, int64_t q_blocks) {
    using F = BwdQ<DH>;
    constexpr int RI = F::kBq / 16;
    constexpr int OJ = DH / 16;
    extern __shared__ float smem[];
    float *s_q = smem;
    float *s_do = s_q + F::kBq * F::kLd;
    float *s_k = s_do + F::kBq * F::kLd;
    float *s_v = s_k + F::kBk * F::kLd;
    float *s_ds = s_v + F::kBk * F::kLd;
    float *s_lc = s_ds + F::kBq * F::kLdp;
    float *s_d = s_lc + F::kBq;
    const int64_t bh = blockIdx.x / q_blocks;
    const int64_t q0 = (blockIdx.x - bh * q_blocks) * F::kBq;
    const int tx = static_cast<int>(threadIdx.x) & 15;
    const int ty = static_cast<int>(threadIdx.x) >> 4;
    const float *kh = k + bh * tk * dh;
    const float *vh = v + bh * tk * dh;

    load_tile<F::kBq, DH>(s_q, q + bh * tq * dh, q0, tq, dh);
    load_tile<F::kBq, DH>(s_do, dout + bh * tq * dh, q0, tq, dh);
    __syncthreads();
    row_terms<F::kBq, DH>(s_do, o + bh * tq * dh, lse + bh * tq, q0, tq, dh, s_lc, s_d);
    float acc[RI][OJ];
#pragma unroll
    for (int i = 0; i < RI; ++i) {
#pragma unroll
        for (int j = 0; j < OJ; ++j) {
            acc[i][j] = 0.0f;
        }
    }
    for (int64_t k0 = 0; k0 < tk; k0 += F::kBk) {
        __syncthreads();  // row terms written / the previous step's readers are done
        load_tile<F::kBk, DH>(s_k, kh, k0, tk, dh);
        load_tile<F::kBk, DH>(s_v, vh, k0, tk, dh);
        __syncthreads();
        p_ds_tile<RI, F::kBk / 16, DH>(s_q, s_do, s_k, s_v, s_lc, s_d, q0, tq, k0, tk, c, nullptr, s_ds, F::kLdp, ty,
                                       tx);
        __syncthreads();
        mac_tile<RI, OJ, F::kBk, DH>(s_ds, F::kLdp, 1, s_k, ty, tx, acc);  // dQ_i += dS K_j
    }
#pragma unroll
    for (int i = 0; i < RI; ++i) {
        const int64_t row = q0 + ty + 16 * i;
        if (row >= tq) {
            continue;
        }
        float *dqr = dq + (bh * tq + row) * dh;
#pragma unroll
        for (int j = 0; j < OJ; ++j) {
            const int col = tx + 16 * j;
            if (col < dh) {
                dqr[col] = __fmul_rn(scale, acc[i][j]);
            }
        }
    }
}

/* ------------------------------------------------------------------ launchers */

template <int DH>
int forward_launch(const char *op, const float *q, const float *k, const float *v, float *out, float *lse, int64_t bh,
                   int64_t tq, int64_t tk, int dh, float c, cudaStream_t stream) {
    const int64_t q_blocks = ceil_div(tq, Fwd<DH>::kBq);
    unsigned blocks = 0;
    int rc = grid_blocks(op, bh, q_blocks, &blocks);
    if (rc == D4J_OK) {
        constexpr auto kernel = forward_kernel<DH>;
        rc = allow_shared<kernel>(op, Fwd<DH>::kSmem);
        if (rc == D4J_OK) {
            kernel<<<blocks, kThreads, Fwd<DH>::kSmem, stream>>>(q, k, v, out, lse, tq, tk, dh, c, q_blocks);
            rc = d4j_check_launch(op);
        }
    }
    return rc;
}

template <int DH>
int backward_launch(const char *op, const float *q, const float *k, const float *v, const float *o, const float *lse,
                    const float *dout, float *dq, float *dk, float *dv, int64_t bh, int64_t tq, int64_t tk, int dh,
                    float scale, float c, cudaStream_t stream) {
    const int64_t k_blocks = ceil_div(tk, BwdKv<DH>::kBk);
    const int64_t q_blocks = ceil_div(tq, BwdQ<DH>::kBq);
    unsigned kv_grid = 0;
    unsigned q_grid = 0;
    int rc = grid_blocks(op, bh, k_blocks, &kv_grid);
    if (rc == D4J_OK) {
        rc = grid_blocks(op, bh, q_blocks, &q_grid);
    }
    if (rc != D4J_OK) {
        return rc;
    }
    constexpr auto kv = backward_kv_kernel<DH>;
    constexpr auto qk = backward_q_kernel<DH>;
    rc = allow_shared<kv>(op, BwdKv<DH>::kSmem);
    if (rc == D4J_OK) {
        rc = allow_shared<qk>(op, BwdQ<DH>::kSmem);
    }
    if (rc != D4J_OK) {
        return rc;
    }
    kv<<<kv_grid, kThreads, BwdKv<DH>::kSmem, stream>>>(q, k, v, o, lse, dout, dk, dv, tq, tk, dh, scale, c,
                                                         k_blocks);
    rc = d4j_check_launch(op);
    if (rc != D4J_OK || q_grid == 0) {  // no queries: dK = dV = 0 written, no dQ
        return rc;
    }
    qk<<<q_grid, kThreads, BwdQ<DH>::kSmem, stream>>>(q, k, v, o, lse, dout, dq, tq, tk, dh, scale, c, q_blocks);
    return d4j_check_launch(op);
}

}  // namespace
}  // namespace attn
}  // namespace d4j

extern "C" int d4j_attention_forward_f32(const float *q, const float *k, const float *v, float *out, float *lse,
                                         int64_t bh, int64_t tq, int64_t tk, int64_t dh, float scale, void *stream) {
    const char *op = "d4j_attention_forward_f32";
    bool empty = false;
    const int rc = d4j::attn::check_forward(op, q, k, v, out, bh, tq, tk, dh, scale, &empty);
    if (rc != D4J_OK || empty) {
        return rc;
    }
    const float c = d4j::attn::log2_scale(scale);
    const cudaStream_t s = d4j::as_stream(stream);
    const int d = static_cast<int>(dh);
    return d4j::attn::with_head_bucket(dh, [&](auto bucket) {
        return d4j::attn::forward_launch<decltype(bucket)::value>(op, q, k, v, out, lse, bh, tq, tk, d, c, s);
    });
}

extern "C" int d4j_attention_backward_f32(const float *q, const float *k, const float *v, const float *out,
                                          const float *lse, const float *dout, float *dq, float *dk, float *dv,
                                          int64_t bh, int64_t tq, int64_t tk, int64_t dh, float scale, void *stream) {
    const char *op = "d4j_attention_backward_f32";
    bool empty = false;
    const int rc = d4j::attn::check_backward(op, q, k, v, out, lse, dout, dq, dk, dv, bh, tq, tk, dh, scale, &empty);
    if (rc != D4J_OK || empty) {
        return rc;
    }
    const float c = d4j::attn::log2_scale(scale);
    const cudaStream_t s = d4j::as_stream(stream);
    const int d = static_cast<int>(dh);
    return d4j::attn::with_head_bucket(dh, [&](auto bucket) {
        return d4j::attn::backward_launch<decltype(bucket)::value>(op, q, k, v, out, lse, dout, dq, dk, dv, bh, tq, tk,
                                                                   d, scale, c, s);
    });
}
