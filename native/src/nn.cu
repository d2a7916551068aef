/*
 * The layer ops of org.diffusion4j.nn.NnOps on CUDA (F32): pointwise activations with a bias and their
 * backward, the fused AdamW step, LayerNorm fused with adaLN modulation (forward), and the adaLN-Zero gated
 * residual with its backward. The per-element arithmetic is nn_math.cuh (= NnMath in Java: the same float
 * operations in the same order, never contracted).
 *
 * Layout. Token tensors are [B, T, D] contiguous (rows = B*T); per-sample operands (shift, scale, gate and
 * dGate) are [B, D] with unit stride along D and a row stride (in elements) >= D. Element indices are int64
 * throughout; every kernel grid-strides, so any size (including 0, handled on the host) works with any grid.
 *
 * Kernels:
 *   activation / backward / AdamW / gated residual: one thread per element, grid-stride;
 *   LayerNorm: one block (256 threads) per row, grid-stride over rows; the row's sum and sum of squares are
 *     float64 partial sums per thread (strided elements in order) combined by a fixed warp-xor tree and the
 *     warps in order, so results are deterministic (but may differ from the CPU's sequential float64 sums in
 *     the last bit of the float mean / rstd);
 *   gated residual backward: one thread per (sample, feature), looping over the tokens in order: dGate in
 *     float64 (deterministic), df written on the way.
 */
#include <cfloat>

#include "nn_math.cuh"
#include "internal.cuh"

namespace d4j {
namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;
constexpr int kWarps = kThreads / kWarp;
constexpr unsigned kFull = 0xffffffffu;

/* ------------------------------------------------------------------ activations */

/* out[i] = act(x[i] + bias[i % cols]) (no add without bias); pre[i] = the sum when pre is not null. */
template <int kAct>
__global__ void __launch_bounds__(kThreads)
activation_kernel(const float *x, const float *bias, float *pre, float *out, int64_t cols, int64_t n) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
        float z = x[i];
        if (bias != nullptr) {
            z = fp::add(z, bias[i % cols]);
        }
        if (pre != nullptr) {
            pre[i] = z;
        }
        out[i] = nn::activate(kAct, z);
    }
}

/* dx[i] = dy[i] * act'(pre[i]). */
template <int kAct>
__global__ void __launch_bounds__(kThreads)
activation_backward_kernel(const float *pre, const float *dy, float *dx, int64_t n) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
        dx[i] = nn::activate_backward(kAct, pre[i], dy[i]);
    }
}

/* ------------------------------------------------------------------ AdamW */

__global__ void __launch_bounds__(kThreads)
adamw_kernel(float *param, const float *grad, float *m, float *v, int64_t n, const nn::AdamwCoef c) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
        float p = param[i];
        float mi = m[i];
        float vi = v[i];
        nn::adamw(c, p, grad[i], mi, vi);
        param[i] = p;
        m[i] = mi;
        v[i] = vi;
    }
}

/* ------------------------------------------------------------------ LayerNorm */

/* Fixed-order block sum of one double, returned to every thread (warp xor tree, then warps in order by
 * thread 0). Every thread must call it (barriers); scratch has kWarps + 1 entries. */
__device__ __forceinline__ double block_sum(double v, double *scratch) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
#pragma unroll
    for (int o = kWarp / 2; o > 0; o /= 2) {
        v = __dadd_rn(v, __shfl_xor_sync(kFull, v, o));
    }
    __syncthreads();  // every thread has read the previous call's result
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double s = scratch[0];
        for (int w = 1; w < kWarps; ++w) {
            s = __dadd_rn(s, scratch[w]);
        }
        scratch[kWarps] = s;
    }
    __syncthreads();
    return scratch[kWarps];
}

/* One block per row r (sample b = r / tokens): mean, rstd, then out = modulate(affine(x̂)). out may be x
 * (each element is read before the same thread writes it; the statistics passes finish first). */
__global__ void __launch_bounds__(kThreads)
layer_norm_kernel(const float *x, const float *gamma, const float *beta, const float *shift, int64_t shift_stride,
                  const float *scale, int64_t scale_stride, float eps, float *out, float *mean, float *rstd,
                  int64_t rows, int64_t tokens, int64_t dim) {
    __shared__ double scratch[kWarps + 1];
    const bool has_gamma = gamma != nullptr;
    const bool has_beta = beta != nullptr;
    const bool has_shift = shift != nullptr;
    const bool has_scale = scale != nullptr;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * dim;
        float *orow = out + r * dim;
        double s = 0.0;
        for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
            s = __dadd_rn(s, static_cast<double>(xr[i]));
        }
        const float mu = nn::ln_mean(block_sum(s, scratch), dim);
        double q = 0.0;
        for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
            q = __dadd_rn(q, nn::ln_square(xr[i], mu));
        }
        const float rs = nn::ln_rstd(block_sum(q, scratch), dim, eps);
        const int64_t b = r / tokens;
        const float *sh = has_shift ? shift + b * shift_stride : nullptr;
        const float *sc = has_scale ? scale + b * scale_stride : nullptr;
        for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
            orow[i] = nn::ln_output(xr[i], mu, rs, has_gamma, has_gamma ? gamma[i] : 0.0f, has_beta,
                                    has_beta ? beta[i] : 0.0f, has_scale, has_scale ? sc[i] : 0.0f, has_shift,
                                    has_shift ? sh[i] : 0.0f);
        }
        if (threadIdx.x == 0) {
            if (mean != nullptr) {
                mean[r] = mu;
            }
            if (rstd != nullptr) {
                rstd[r] = rs;
            }
        }
    }
}

/* ------------------------------------------------------------------ gated residual */

/* out = x + gate[b, d] * f, element i = (r, d), r = i / dim, b = r / tokens. */
__global__ void __launch_bounds__(kThreads)
gated_residual_kernel(const float *x, const float *gate, int64_t gate_stride, const float *f, float *out,
                      int64_t tokens, int64_t dim, int64_t n) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
        const int64_t r = i / dim;
        const int64_t d = i - r * dim;
        const int64_t b = r / tokens;
        out[i] = nn::gated_residual(x[i], gate[b * gate_stride + d], f[i]);
    }
}

/* Thread per (b, d) = j: df[b, t, d] = dy * gate[b, d] for t in order (when df is not null) and
 * dGate[b, d] = (float) sum_t (double) dy * f (when d_gate is not null). df may be f (read first). */
__global__ void __launch_bounds__(kThreads)
gated_residual_backward_kernel(const float *gate, int64_t gate_stride, const float *f, const float *dy, float *df,
                               float *d_gate, int64_t d_gate_stride, int64_t batch, int64_t tokens, int64_t dim) {
    const int64_t cells = batch * dim;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < cells; j += stride) {
        const int64_t b = j / dim;
        const int64_t d = j - b * dim;
        const float g = gate[b * gate_stride + d];
        double acc = 0.0;
        for (int64_t t = 0; t < tokens; ++t) {
            const int64_t i = (b * tokens + t) * dim + d;
            const float y = dy[i];
            const float fv = f[i];
            acc = __dadd_rn(acc, __dmul_rn(static_cast<double>(y), static_cast<double>(fv)));
            if (df != nullptr) {
                df[i] = fp::mul(y, g);
            }
        }
        if (d_gate != nullptr) {
            d_gate[b * d_gate_stride + d] = __double2float_rn(acc);
        }
    }
}

/* ------------------------------------------------------------------ host helpers */

/* n elements: >= 0 and a byte count that fits int64. */
int check_count(const char *op, int64_t n) {
    D4J_REQUIRE(n >= 0 && n <= INT64_MAX / 4, op, "element count out of range: n=%lld", (long long)n);
    return D4J_OK;
}

/* [batch, tokens, dim] with non-negative sizes and batch*tokens*dim elements addressable. */
int check_tokens(const char *op, int64_t batch, int64_t tokens, int64_t dim) {
    D4J_REQUIRE(batch >= 0 && tokens >= 0 && dim >= 0, op, "negative size: batch=%lld, tokens=%lld, dim=%lld",
                (long long)batch, (long long)tokens, (long long)dim);
    int64_t rows = 0;
    int64_t n = 0;
    D4J_REQUIRE(checked_mul(batch, tokens, &rows) && checked_mul(rows, dim, &n) && n <= INT64_MAX / 4, op,
                "batch*tokens*dim overflows: batch=%lld, tokens=%lld, dim=%lld", (long long)batch,
                (long long)tokens, (long long)dim);
    return D4J_OK;
}

template <auto Kernel, typename... Args>
int launch_pointwise(const char *op, int64_t work, cudaStream_t stream, Args... args) {
    Kernel<<<grid_for<Kernel>(work, kThreads, kThreads), kThreads, 0, stream>>>(args...);
    return d4j_check_launch(op);
}

}  // namespace
}  // namespace d4j

using d4j::as_stream;

extern "C" int d4j_activation_f32(int act, const float *x, const float *bias, float *pre, float *out, int64_t rows,
                                  int64_t cols, void *stream) {
    const char *op = "d4j_activation_f32";
    D4J_REQUIRE(act == d4j::nn::kIdentity || act == d4j::nn::kSilu || act == d4j::nn::kGeluTanh, op,
                "unknown activation code %d (0 identity, 1 SiLU, 2 GELU-tanh)", act);
    const int rc = d4j::check_tokens(op, 1, rows, cols);
    if (rc != D4J_OK) {
        return rc;
    }
    const int64_t n = rows * cols;
    if (n == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(x != nullptr && out != nullptr, op, "x and out must not be null");
    D4J_REQUIRE(pre == nullptr || pre != out, op, "pre and out must be different buffers");
    const cudaStream_t s = as_stream(stream);
    switch (act) {
        case d4j::nn::kSilu:
            return d4j::launch_pointwise<d4j::activation_kernel<d4j::nn::kSilu>>(op, n, s, x, bias, pre, out, cols,
                                                                                 n);
        case d4j::nn::kGeluTanh:
            return d4j::launch_pointwise<d4j::activation_kernel<d4j::nn::kGeluTanh>>(op, n, s, x, bias, pre, out,
                                                                                     cols, n);
        default:
            return d4j::launch_pointwise<d4j::activation_kernel<d4j::nn::kIdentity>>(op, n, s, x, bias, pre, out,
                                                                                     cols, n);
    }
}

extern "C" int d4j_activation_backward_f32(int act, const float *pre, const float *dy, float *dx, int64_t n,
                                           void *stream) {
    const char *op = "d4j_activation_backward_f32";
    D4J_REQUIRE(act == d4j::nn::kIdentity || act == d4j::nn::kSilu || act == d4j::nn::kGeluTanh, op,
                "unknown activation code %d (0 identity, 1 SiLU, 2 GELU-tanh)", act);
    const int rc = d4j::check_count(op, n);
    if (rc != D4J_OK) {
        return rc;
    }
    if (n == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(pre != nullptr && dy != nullptr && dx != nullptr, op, "pre, dy and dx must not be null");
    const cudaStream_t s = as_stream(stream);
    switch (act) {
        case d4j::nn::kSilu:
            return d4j::launch_pointwise<d4j::activation_backward_kernel<d4j::nn::kSilu>>(op, n, s, pre, dy, dx, n);
        case d4j::nn::kGeluTanh:
            return d4j::launch_pointwise<d4j::activation_backward_kernel<d4j::nn::kGeluTanh>>(op, n, s, pre, dy, dx,
                                                                                              n);
        default:
            return d4j::launch_pointwise<d4j::activation_backward_kernel<d4j::nn::kIdentity>>(op, n, s, pre, dy,
                                                                                              dx, n);
    }
}

extern "C" int d4j_adamw_f32(float *param, const float *grad, float *m, float *v, int64_t n, const float *host_coef,
                             void *stream) {
    const char *op = "d4j_adamw_f32";
    const int rc = d4j::check_count(op, n);
    if (rc != D4J_OK) {
        return rc;
    }
    if (n == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(param != nullptr && grad != nullptr && m != nullptr && v != nullptr, op,
                "param, grad, m and v must not be null");
    D4J_REQUIRE(host_coef != nullptr, op, "host_coef must not be null");
    const d4j::nn::AdamwCoef c{host_coef[0], host_coef[1], host_coef[2], host_coef[3], host_coef[4],
                               host_coef[5], host_coef[6], host_coef[7], host_coef[8]};
    return d4j::launch_pointwise<d4j::adamw_kernel>(op, n, as_stream(stream), param, grad, m, v, n, c);
}

extern "C" int d4j_layer_norm_f32(const float *x, const float *gamma, const float *beta, const float *shift,
                                  int64_t shift_stride, const float *scale, int64_t scale_stride, float eps,
                                  float *out, float *mean, float *rstd, int64_t batch, int64_t tokens, int64_t dim,
                                  void *stream) {
    const char *op = "d4j_layer_norm_f32";
    const int rc = d4j::check_tokens(op, batch, tokens, dim);
    if (rc != D4J_OK) {
        return rc;
    }
    D4J_REQUIRE(eps > 0.0f && eps <= FLT_MAX, op, "eps must be finite and > 0, got %g", (double)eps);
    D4J_REQUIRE((shift == nullptr || batch <= 1 || shift_stride >= dim) &&
                    (scale == nullptr || batch <= 1 || scale_stride >= dim),
                op, "per-sample row strides must be >= dim=%lld: shift %lld, scale %lld", (long long)dim,
                (long long)shift_stride, (long long)scale_stride);
    const int64_t rows = batch * tokens;
    if (rows == 0 || dim == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(x != nullptr && out != nullptr, op, "x and out must not be null");
    constexpr auto kernel = d4j::layer_norm_kernel;
    kernel<<<d4j::grid_for<kernel>(rows, d4j::kThreads, 1), d4j::kThreads, 0, as_stream(stream)>>>(
        x, gamma, beta, shift, batch > 1 ? shift_stride : 0, scale, batch > 1 ? scale_stride : 0, eps, out, mean,
        rstd, rows, tokens, dim);
    return d4j_check_launch(op);
}

extern "C" int d4j_gated_residual_f32(const float *x, const float *gate, int64_t gate_stride, const float *f,
                                      float *out, int64_t batch, int64_t tokens, int64_t dim, void *stream) {
    const char *op = "d4j_gated_residual_f32";
    const int rc = d4j::check_tokens(op, batch, tokens, dim);
    if (rc != D4J_OK) {
        return rc;
    }
    D4J_REQUIRE(batch <= 1 || gate_stride >= dim, op, "gate row stride %lld must be >= dim=%lld",
                (long long)gate_stride, (long long)dim);
    const int64_t n = batch * tokens * dim;
    if (n == 0) {
        return D4J_OK;
    }
    D4J_REQUIRE(x != nullptr && gate != nullptr && f != nullptr && out != nullptr, op,
                "x, gate, f and out must not be null");
    return d4j::launch_pointwise<d4j::gated_residual_kernel>(op, n, as_stream(stream), x, gate,
                                                             batch > 1 ? gate_stride : int64_t{0}, f, out, tokens,
                                                             dim, n);
}

extern "C" int d4j_gated_residual_backward_f32(const float *gate, int64_t gate_stride, const float *f,
                                               const float *dy, float *df, float *d_gate, int64_t d_gate_stride,
                                               int64_t batch, int64_t tokens, int64_t dim, void *stream) {
    const char *op = "d4j_gated_residual_backward_f32";
    const int rc = d4j::check_tokens(op, batch, tokens, dim);
    if (rc != D4J_OK) {
        return rc;
    }
    D4J_REQUIRE((batch <= 1 || gate_stride >= dim) && (d_gate == nullptr || batch <= 1 || d_gate_stride >= dim),
                op, "per-sample row strides must be >= dim=%lld: gate %lld, dGate %lld", (long long)dim,
                (long long)gate_stride, (long long)d_gate_stride);
    const int64_t cells = batch * dim;
    if (cells == 0 || (df == nullptr && d_gate == nullptr)) {
        return D4J_OK;
    }
    D4J_REQUIRE(gate != nullptr && (tokens == 0 || (f != nullptr && dy != nullptr)), op,
                "gate, f and dy must not be null");
    /* tokens = 0 still writes dGate = 0 (the empty sum) */
    return d4j::launch_pointwise<d4j::gated_residual_backward_kernel>(
        op, cells, as_stream(stream), gate, batch > 1 ? gate_stride : int64_t{0}, f, dy, df, d_gate,
        batch > 1 ? d_gate_stride : int64_t{0}, batch, tokens, dim);
}
