/*
 * Per-element arithmetic of the layer ops (nn.cu), written to evaluate exactly what org.diffusion4j.nn.NnMath
 * evaluates in Java: the same float operations in the same order, each rounded once (d4j::fp::* from
 * philox.cuh: __fmul_rn / __fadd_rn on the device, barrier-protected operators on the host; never contracted
 * into an FMA). Transcendentals go through double exp() and are rounded to float once, as Java's Math.exp
 * path does (device exp() and Java's Math.exp may differ by an ulp of the double, which the float rounding
 * hides in nearly every case). The LayerNorm statistics use exactly rounded double operations (d4j::dfp).
 *
 * Usable from kernels and from plain C++17 (native/tests/test_nn_math.cpp replays it on the host).
 */
#ifndef DIFFUSION4J_NN_MATH_CUH
#define DIFFUSION4J_NN_MATH_CUH

#include <stdint.h>

#include <cmath>

#include "exact_fp.cuh"

namespace d4j {
namespace nn {

/* Activation codes of the C ABI: the ordinals of org.diffusion4j.nn.Activation. */
constexpr int kIdentity = 0;
constexpr int kSilu = 1;
constexpr int kGeluTanh = 2;

/* NnMath.GELU_C = (float) sqrt(2/pi), GELU_K = 0.044715f, GELU_2C = (float) (2 sqrt(2/pi)),
 * GELU_3K = (float) (3 * 0.044715): the float values Java rounds them to (pinned by the host test). */
constexpr float kGeluC = 0x1.988454p-1f;
constexpr float kGeluK = 0x1.6e4e26p-5f;
constexpr float kGelu2C = 0x1.988454p+0f;
constexpr float kGelu3K = 0x1.12ba9ep-3f;
constexpr float kGeluClamp = 100.0f;

D4J_HD double exp_double(double x) {
#if defined(__CUDA_ARCH__)
    return ::exp(x);
#else
    return dfp::barrier(std::exp(x));
#endif
}

/* NnMath.sigmoid: (float) (1.0 / (1.0 + Math.exp(-z))). */
D4J_HD float sigmoid(float z) {
    const double e = exp_double(static_cast<double>(-z));
    return dfp::to_float(dfp::div(1.0, dfp::add(1.0, e)));
}

/* NnMath.silu: z * sigmoid(z). */
D4J_HD float silu(float z) { return fp::mul(z, sigmoid(z)); }

/* NnMath.siluBackward: dy * (s * (1 + z * (1 - s))). */
D4J_HD float silu_backward(float z, float dy) {
    const float s = sigmoid(z);
    return fp::mul(dy, fp::mul(s, fp::add(1.0f, fp::mul(z, fp::sub(1.0f, s)))));
}

/* NnMath.geluInner: c * (z + k * (z * z * z)). */
D4J_HD float gelu_inner(float z) {
    return fp::mul(kGeluC, fp::add(z, fp::mul(kGeluK, fp::mul(fp::mul(z, z), z))));
}

/* NnMath.gelu: z * sigmoid(2 * inner(z)). */
D4J_HD float gelu(float z) { return fp::mul(z, sigmoid(fp::mul(2.0f, gelu_inner(z)))); }

/* Java's Math.min(Math.max(z, -100f), 100f): NaN stays NaN. */
D4J_HD float gelu_clamp(float z) {
    if (z < -kGeluClamp) {
        return -kGeluClamp;
    }
    if (z > kGeluClamp) {
        return kGeluClamp;
    }
    return z;
}

/* NnMath.geluBackward: dy * (s + zc * s * (1 - s) * 2c * (1 + 3k * (zc * zc))), left to right. */
D4J_HD float gelu_backward(float z, float dy) {
    const float zc = gelu_clamp(z);
    const float s = sigmoid(fp::mul(2.0f, gelu_inner(zc)));
    float right = fp::mul(zc, s);
    right = fp::mul(right, fp::sub(1.0f, s));
    right = fp::mul(right, kGelu2C);
    right = fp::mul(right, fp::add(1.0f, fp::mul(kGelu3K, fp::mul(zc, zc))));
    return fp::mul(dy, fp::add(s, right));
}

/* NnMath.activate (act is one of the codes above; anything else is the identity). */
D4J_HD float activate(int act, float z) {
    switch (act) {
        case kSilu:
            return silu(z);
        case kGeluTanh:
            return gelu(z);
        default:
            return z;
    }
}

/* NnMath.activateBackward. */
D4J_HD float activate_backward(int act, float z, float dy) {
    switch (act) {
        case kSilu:
            return silu_backward(z, dy);
        case kGeluTanh:
            return gelu_backward(z, dy);
        default:
            return dy;
    }
}

/* ------------------------------------------------------------------ AdamW */

/* The coefficients of one step in AdamWStep's record order (the host_coef layout of d4j_adamw_f32). */
struct AdamwCoef {
    float decay;
    float beta1;
    float one_minus_beta1;
    float beta2;
    float one_minus_beta2;
    float step_size;
    float inv_sqrt_bc2;
    float eps;
    float grad_scale;
};

/* NnMath.adamw on one element: p, m, v updated in place. */
D4J_HD void adamw(const AdamwCoef &c, float &p, float grad, float &m, float &v) {
    const float g = fp::mul(c.grad_scale, grad);
    const float pd = fp::mul(p, c.decay);
    const float m1 = fp::add(fp::mul(c.beta1, m), fp::mul(c.one_minus_beta1, g));
    const float v1 = fp::add(fp::mul(c.beta2, v), fp::mul(fp::mul(c.one_minus_beta2, g), g));
    const float denom = fp::add(fp::mul(fp::sqrt(v1), c.inv_sqrt_bc2), c.eps);
    p = fp::sub(pd, fp::mul(c.step_size, fp::div(m1, denom)));
    m = m1;
    v = v1;
}

/* ------------------------------------------------------------------ LayerNorm + adaLN modulation */

/* mu = (float) (sum / d). */
D4J_HD float ln_mean(double sum, int64_t d) { return dfp::to_float(dfp::div(sum, static_cast<double>(d))); }

/* One term of the variance sum: c = x - mu in float, then (double) c * c. */
D4J_HD double ln_square(float x, float mu) {
    const double c = static_cast<double>(fp::sub(x, mu));
    return dfp::mul(c, c);
}

/* NnMath.rstd(sq / d, eps): (float) (1.0 / Math.sqrt(sq / d + eps)). */
D4J_HD float ln_rstd(double sq, int64_t d, float eps) {
    const double var = dfp::div(sq, static_cast<double>(d));
    return dfp::to_float(dfp::div(1.0, dfp::sqrt(dfp::add(var, static_cast<double>(eps)))));
}

/*
 * The output of one element as CpuNnOps.layerNorm computes it: x̂ = (x - mu) * rstd, times gamma (when
 * has_gamma), plus beta (when has_beta), then n * (1 + scale) + shift when either modulation is present (the
 * absent one as 1 and 0, as CpuNnOps does).
 */
D4J_HD float ln_output(float x, float mu, float rstd, bool has_gamma, float gamma, bool has_beta, float beta,
                       bool has_scale, float scale, bool has_shift, float shift) {
    float n = fp::mul(fp::sub(x, mu), rstd);
    if (has_gamma) {
        n = fp::mul(n, gamma);
    }
    if (has_beta) {
        n = fp::add(n, beta);
    }
    if (has_scale || has_shift) {
        const float ops = has_scale ? fp::add(1.0f, scale) : 1.0f;
        n = fp::add(fp::mul(n, ops), has_shift ? shift : 0.0f);
    }
    return n;
}

/* NnMath.normalize: x̂ = (x - mu) * rstd. */
D4J_HD float ln_normalize(float x, float mu, float rstd) { return fp::mul(fp::sub(x, mu), rstd); }

/* The affine output n = x̂ γ + β of the backward's dScale term (CpuNnOps.layerNormBackward: x̂ without gamma, no
 * addition without beta). */
D4J_HD float ln_affine(float xhat, bool has_gamma, float gamma, bool has_beta, float beta) {
    float n = has_gamma ? fp::mul(xhat, gamma) : xhat;
    if (has_beta) {
        n = fp::add(n, beta);
    }
    return n;
}

/* dn = dy (1 + scale) (dy without modulation), with one_plus_scale = fl(1 + scale) precomputed. */
D4J_HD float ln_dn(float dy, bool has_scale, float one_plus_scale) {
    return has_scale ? fp::mul(dy, one_plus_scale) : dy;
}

/* NnMath.layerNormInputGrad: dx = rstd * (dx̂ - m1 - x̂ * m2), left to right. */
D4J_HD float ln_input_grad(float rstd, float dxhat, float m1, float xhat, float m2) {
    return fp::mul(rstd, fp::sub(fp::sub(dxhat, m1), fp::mul(xhat, m2)));
}

/* m1 or m2 of the backward: (float) (sum / d). */
D4J_HD float ln_row_mean(double sum, int64_t d) { return dfp::to_float(dfp::div(sum, static_cast<double>(d))); }

/* One float64 term (double) a * b of the backward's sums. */
D4J_HD double dprod(float a, float b) { return dfp::mul(static_cast<double>(a), static_cast<double>(b)); }

/* ------------------------------------------------------------------ gated residual */

/* NnMath.gatedResidual: x + gate * f. */
D4J_HD float gated_residual(float x, float gate, float f) { return fp::add(x, fp::mul(gate, f)); }

}  // namespace nn
}  // namespace d4j

#endif /* DIFFUSION4J_NN_MATH_CUH */
