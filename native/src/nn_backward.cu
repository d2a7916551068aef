/*
 * The reduction-shaped layer ops of org.diffusion4j.nn.NnOps on CUDA (F32): the column sum of a bias gradient,
 * the LayerNorm (+ adaLN modulation) backward with its parameter gradients, and the embedding gradient's
 * scatter-add. Per-element arithmetic: nn_math.cuh (= NnMath / CpuNnOps, the same float operations in the same
 * order, never contracted).
 *
 * Determinism: no atomics anywhere. Every sum has one fixed order that depends only on the shape:
 *   column reductions (columnSum, dGamma, dBeta, dShift, dScale): a block owns 32 columns; 16 row lanes per
 *     column each add rows lane, lane + 16, ... in order in float64, and the lanes are added in order by lane 0
 *     (for dGamma / dBeta / accumulate onto the old value first, as CpuNnOps does). The CPU adds its row chunks in
 *     another order, so the float results agree to the last bit except rarely by 1 ulp.
 *   LayerNorm dx: one block per row, as the forward (fixed xor tree of float64 partial sums).
 *   embedding: the host groups the positions by table row (a stable counting sort of the indices, which it has
 *     validated anyway), so one block owns each touched row and adds its dy rows in the order of their positions
 *     in float: bitwise the CPU's dTable[idx[i]] += dy[i] in order of i.
 */
#include <cfloat>

#include "internal.cuh"
#include "nn_math.cuh"

namespace d4j {
namespace {

constexpr int kCols = 32;      // columns per block of the column reductions
constexpr int kRowLanes = 16;  // row lanes per column
constexpr int kColThreads = kCols * kRowLanes;
constexpr int kRowThreads = 256;  // threads of the per-row kernel
constexpr int kWarp = 32;
constexpr int kRowWarps = kRowThreads / kWarp;
constexpr unsigned kFull = 0xffffffffu;

/* out[col] = [(double) out[col] +] sum over rows, for the 32 columns of each block pass. */
__global__ void __launch_bounds__(kColThreads)
column_sum_kernel(const float *dy, float *out, int64_t rows, int64_t cols, int accumulate) {
    __shared__ double part[kRowLanes][kCols];
    const int cl = static_cast<int>(threadIdx.x) % kCols;
    const int rl = static_cast<int>(threadIdx.x) / kCols;
    for (int64_t c0 = static_cast<int64_t>(blockIdx.x) * kCols; c0 < cols;
         c0 += static_cast<int64_t>(gridDim.x) * kCols) {
        const int64_t col = c0 + cl;
        double s = 0.0;
        if (col < cols) {
            for (int64_t r = rl; r < rows; r += kRowLanes) {
                s = __dadd_rn(s, static_cast<double>(dy[r * cols + col]));
            }
        }
        part[rl][cl] = s;
        __syncthreads();
        if (rl == 0 && col < cols) {
            double t = accumulate ? static_cast<double>(out[col]) : 0.0;
            for (int l = 0; l < kRowLanes; ++l) {
                t = __dadd_rn(t, part[l][cl]);
            }
            out[col] = __double2float_rn(t);
        }
        __syncthreads();
    }
}

/*
 * The LayerNorm parameter gradients, column reductions over rows:
 *   per_sample = 0: rows of all samples; a = dGamma += sum dn x̂, b = dBeta += sum dn (added to the old values);
 *   per_sample = 1: rows of sample b (grid y, grid-stride); a = dShift_b = sum dy, b = dScale_b = sum dy n
 *                   (overwritten; 0 for tokens = 0).
 * a or b may be null (not wanted).
 */
__global__ void __launch_bounds__(kColThreads)
ln_params_kernel(const float *x, const float *gamma, const float *beta, const float *scale, int64_t scale_stride,
                 const float *mean, const float *rstd, const float *dy, float *out_a, int64_t a_stride, float *out_b,
                 int64_t b_stride, int64_t batch, int64_t tokens, int64_t dim, int per_sample) {
    __shared__ double pa[kRowLanes][kCols];
    __shared__ double pb[kRowLanes][kCols];
    const int cl = static_cast<int>(threadIdx.x) % kCols;
    const int rl = static_cast<int>(threadIdx.x) / kCols;
    const bool has_gamma = gamma != nullptr;
    const bool has_beta = beta != nullptr;
    const bool has_scale = scale != nullptr;
    const int64_t groups = per_sample ? batch : 1;
    for (int64_t b = per_sample ? blockIdx.y : 0; b < groups; b += per_sample ? gridDim.y : 1) {
        const int64_t r0 = per_sample ? b * tokens : 0;
        const int64_t r1 = per_sample ? r0 + tokens : batch * tokens;
        for (int64_t c0 = static_cast<int64_t>(blockIdx.x) * kCols; c0 < dim;
             c0 += static_cast<int64_t>(gridDim.x) * kCols) {
            const int64_t col = c0 + cl;
            double sa = 0.0;
            double sb = 0.0;
            if (col < dim) {
                const float g = has_gamma ? gamma[col] : 0.0f;
                const float bt = has_beta ? beta[col] : 0.0f;
                for (int64_t r = r0 + rl; r < r1; r += kRowLanes) {
                    const int64_t i = r * dim + col;
                    const float xh = nn::ln_normalize(x[i], mean[r], rstd[r]);
                    const float gy = dy[i];
                    if (!per_sample) {
                        const float ops = has_scale ? fp::add(1.0f, scale[(r / tokens) * scale_stride + col]) : 1.0f;
                        const float dn = nn::ln_dn(gy, has_scale, ops);
                        sa = __dadd_rn(sa, nn::dprod(dn, xh));
                        sb = __dadd_rn(sb, static_cast<double>(dn));
                    } else {
                        sa = __dadd_rn(sa, static_cast<double>(gy));
                        sb = __dadd_rn(sb, nn::dprod(gy, nn::ln_affine(xh, has_gamma, g, has_beta, bt)));
                    }
                }
            }
            pa[rl][cl] = sa;
            pb[rl][cl] = sb;
            __syncthreads();
            if (rl == 0 && col < dim) {
                float *oa = out_a == nullptr ? nullptr : out_a + b * a_stride + col;
                float *ob = out_b == nullptr ? nullptr : out_b + b * b_stride + col;
                double ta = (oa != nullptr && !per_sample) ? static_cast<double>(*oa) : 0.0;
                double tb = (ob != nullptr && !per_sample) ? static_cast<double>(*ob) : 0.0;
                for (int l = 0; l < kRowLanes; ++l) {
                    ta = __dadd_rn(ta, pa[l][cl]);
                    tb = __dadd_rn(tb, pb[l][cl]);
                }
                if (oa != nullptr) {
                    *oa = __double2float_rn(ta);
                }
                if (ob != nullptr) {
                    *ob = __double2float_rn(tb);
                }
            }
            __syncthreads();
        }
    }
}

/* Fixed-order block sum of one double (warp xor tree, then warps in order), returned to every thread. */
__device__ __forceinline__ double block_sum(double v, double *scratch) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
#pragma unroll
    for (int o = kWarp / 2; o > 0; o /= 2) {
        v = __dadd_rn(v, __shfl_xor_sync(kFull, v, o));
    }
    __syncthreads();
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double s = scratch[0];
        for (int w = 1; w < kRowWarps; ++w) {
            s = __dadd_rn(s, scratch[w]);
        }
        scratch[kRowWarps] = s;
    }
    __syncthreads();
    return scratch[kRowWarps];
}

/* dx of one row per block pass: dx = rstd (dx̂ - m1 - x̂ m2). dx may be dy (each element is read by the thread
 * that writes it, after the whole row's sums). */
__global__ void __launch_bounds__(kRowThreads)
ln_dx_kernel(const float *x, const float *gamma, const float *scale, int64_t scale_stride, const float *mean,
             const float *rstd, const float *dy, float *dx, int64_t rows, int64_t tokens, int64_t dim) {
    __shared__ double scratch[kRowWarps + 1];
    const bool has_gamma = gamma != nullptr;
    const bool has_scale = scale != nullptr;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float mu = mean[r];
        const float rs = rstd[r];
        const float *sc = has_scale ? scale + (r / tokens) * scale_stride : nullptr;
        const float *xr = x + r * dim;
        const float *gr = dy + r * dim;
        double s1 = 0.0;
        double s2 = 0.0;
        for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
            const float xh = nn::ln_normalize(xr[i], mu, rs);
            const float dn = nn::ln_dn(gr[i], has_scale, has_scale ? fp::add(1.0f, sc[i]) : 1.0f);
            const float dxh = has_gamma ? fp::mul(dn, gamma[i]) : dn;
            s1 = __dadd_rn(s1, static_cast<double>(dxh));
            s2 = __dadd_rn(s2, nn::dprod(dxh, xh));
        }
        const float m1 = nn::ln_row_mean(block_sum(s1, scratch), dim);
        const float m2 = nn::ln_row_mean(block_sum(s2, scratch), dim);
        float *dr = dx + r * dim;
        for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
            const float xh = nn::ln_normalize(xr[i], mu, rs);
            const float dn = nn::ln_dn(gr[i], has_scale, has_scale ? fp::add(1.0f, sc[i]) : 1.0f);
            const float dxh = has_gamma ? fp::mul(dn, gamma[i]) : dn;
            dr[i] = nn::ln_input_grad(rs, dxh, m1, xh, m2);
        }
    }
}

/* Touched table row u = rows[u] (skipped when outside [0, vocab)) gets dy rows order[start[u] .. start[u+1]) added
 * in that order, in float. plan = order (n) | start (touched + 1) | rows (touched). */
__global__ void __launch_bounds__(kRowThreads)
embedding_backward_kernel(const float *dy, float *table, int64_t vocab, int64_t dim, const int32_t *plan, int64_t n,
                          int64_t touched) {
    const int32_t *order = plan;
    const int32_t *start = plan + n;
    const int32_t *rows = start + touched + 1;
    for (int64_t u = blockIdx.x; u < touched; u += gridDim.x) {
        const int64_t v = rows[u];
        if (v < 0 || v >= vocab) {
            continue;
        }
        const int32_t p0 = start[u];
        const int32_t p1 = start[u + 1];
        for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
            float acc = table[v * dim + d];
            for (int32_t p = p0; p < p1; ++p) {
                acc = fp::add(acc, dy[static_cast<int64_t>(order[p]) * dim + d]);
            }
            table[v * dim + d] = acc;
        }
    }
}

int check_shape(const char *op, int64_t a, int64_t b, int64_t c) {
    D4J_REQUIRE(a >= 0 && b >= 0 && c >= 0, op, "negative size: %lld, %lld, %lld", (long long)a, (long long)b,
                (long long)c);
    int64_t ab = 0;
    int64_t n = 0;
    D4J_REQUIRE(checked_mul(a, b, &ab) && checked_mul(ab, c, &n) && n <= INT64_MAX / 4, op,
                "sizes overflow: %lld x %lld x %lld", (long long)a, (long long)b, (long long)c);
    return D4J_OK;
}

/* Blocks for a column reduction: one per 32 columns, at most 65535 (grid-stride beyond). */
unsigned column_blocks(int64_t cols) {
    const int64_t b = ceil_div(cols, kCols);
    return static_cast<unsigned>(b > 65535 ? 65535 : (b < 1 ? 1 : b));
}

}  // namespace
}  // namespace d4j

using d4j::as_stream;

extern "C" int d4j_column_sum_f32(const float *dy, float *out, int64_t rows, int64_t cols, int accumulate,
                                  void *stream) {
    const char *op = "d4j_column_sum_f32";
    const int rc = d4j::check_shape(op, 1, rows, cols);
    if (rc != D4J_OK) {
        return rc;
    }
    if (cols == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(out != nullptr && (rows == 0 || dy != nullptr), op, "dy and out must not be null");
    d4j::column_sum_kernel<<<d4j::column_blocks(cols), d4j::kColThreads, 0, as_stream(stream)>>>(
        dy, out, rows, cols, accumulate != 0);
    return d4j_check_launch(op);
}

extern "C" int d4j_layer_norm_backward_f32(const float *x, const float *gamma, const float *beta, const float *scale,
                                           int64_t scale_stride, const float *mean, const float *rstd,
                                           const float *dy, float *dx, float *d_gamma, float *d_beta, float *d_shift,
                                           int64_t d_shift_stride, float *d_scale, int64_t d_scale_stride,
                                           int64_t batch, int64_t tokens, int64_t dim, void *stream) {
    const char *op = "d4j_layer_norm_backward_f32";
    const int rc = d4j::check_shape(op, batch, tokens, dim);
    if (rc != D4J_OK) {
        return rc;
    }
    D4J_REQUIRE((scale == nullptr || batch <= 1 || scale_stride >= dim) &&
                    (d_shift == nullptr || batch <= 1 || d_shift_stride >= dim) &&
                    (d_scale == nullptr || batch <= 1 || d_scale_stride >= dim),
                op, "per-sample row strides must be >= dim=%lld: scale %lld, dShift %lld, dScale %lld",
                (long long)dim, (long long)scale_stride, (long long)d_shift_stride, (long long)d_scale_stride);
    D4J_REQUIRE(d_gamma == nullptr || gamma != nullptr, op, "d_gamma given without gamma");
    const int64_t rows = batch * tokens;
    if (batch == 0 || dim == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(rows == 0 || (x != nullptr && mean != nullptr && rstd != nullptr && dy != nullptr && dx != nullptr),
                op, "x, mean, rstd, dy and dx must not be null");
    const cudaStream_t s = as_stream(stream);
    const int64_t ss = batch > 1 ? scale_stride : 0;
    // parameter gradients first: they read dy, which dx may overwrite
    if (rows > 0 && (d_gamma != nullptr || d_beta != nullptr)) {
        d4j::ln_params_kernel<<<dim3(d4j::column_blocks(dim), 1), d4j::kColThreads, 0, s>>>(
            x, gamma, beta, scale, ss, mean, rstd, dy, d_gamma, 0, d_beta, 0, batch, tokens, dim, 0);
        const int lrc = d4j_check_launch(op);
        if (lrc != D4J_OK) {
            return lrc;
        }
    }
    if (d_shift != nullptr || d_scale != nullptr) {  // also for tokens = 0: the empty sums, 0
        const unsigned gy = static_cast<unsigned>(batch > 65535 ? 65535 : batch);
        d4j::ln_params_kernel<<<dim3(d4j::column_blocks(dim), gy), d4j::kColThreads, 0, s>>>(
            x, gamma, beta, scale, ss, mean, rstd, dy, d_shift, batch > 1 ? d_shift_stride : 0, d_scale,
            batch > 1 ? d_scale_stride : 0, batch, tokens, dim, 1);
        const int lrc = d4j_check_launch(op);
        if (lrc != D4J_OK) {
            return lrc;
        }
    }
    if (rows == 0) {
        return D4J_OK;
    }
    constexpr auto kernel = d4j::ln_dx_kernel;
    kernel<<<d4j::grid_for<kernel>(rows, d4j::kRowThreads, 1), d4j::kRowThreads, 0, s>>>(
        x, gamma, scale, ss, mean, rstd, dy, dx, rows, tokens, dim);
    return d4j_check_launch(op);
}

extern "C" int d4j_embedding_backward_f32(const float *dy, float *d_table, int64_t vocab, int64_t dim,
                                          const int32_t *plan, int64_t n, int64_t touched, void *stream) {
    const char *op = "d4j_embedding_backward_f32";
    const int rc = d4j::check_shape(op, vocab, dim, 1);
    if (rc != D4J_OK) {
        return rc;
    }
    D4J_REQUIRE(n >= 0 && n <= INT32_MAX && touched >= 0 && touched <= n && touched <= vocab, op,
                "bad plan sizes: n=%lld, touched=%lld, vocab=%lld", (long long)n, (long long)touched,
                (long long)vocab);
    if (touched == 0 || dim == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(dy != nullptr && d_table != nullptr && plan != nullptr, op, "dy, d_table and plan must not be null");
    constexpr auto kernel = d4j::embedding_backward_kernel;
    kernel<<<d4j::grid_for<kernel>(touched, d4j::kRowThreads, 1), d4j::kRowThreads, 0, as_stream(stream)>>>(
        dy, d_table, vocab, dim, plan, n, touched);
    return d4j_check_launch(op);
}
