/*
 * Scalar arithmetic of fused attention (attention_f32.cu, attention_bf16.cu), written to evaluate exactly what
 * org.diffusion4j.nn.attention.AttentionMath evaluates in Java for the CPU attention: the same float operations
 * in the same order, each rounded once (d4j::fp / d4j::dfp of exact_fp.cuh, never contracted).
 *
 * Online softmax (Dao 2023, FlashAttention-2, Algorithm 1, lines 8-10 and 12-13), scores kept unscaled (s = q.k)
 * and c = scale*log2(e) rounded to float once, so e^(scale*s) = 2^(c*s). Per query row, after key tile j:
 *   m_j  = max(m_{j-1}, max_k s_k)          mc_j = fl(m_j * c)
 *   p_k  = exp2(fma(s_k, c, -mc_j))          alpha_j = exp2(mc_{j-1} - mc_j)   (0 for the first tile)
 *   l_j  = alpha_j * l_{j-1} + sum_k p_k     (float64 running sum of the float tile sums)
 *   O_j  = alpha_j * O_{j-1} + P V_j
 * end:   O = O_last * fl(1/l),  L = fl(mc_last * ln 2 + ln l)   (natural log-sum-exp, saved for backward)
 *
 * Backward (Dao 2023, Algorithm 2, lines 11-20):
 *   D_i = fl(sum_d dO_id * O_id)  (float64 sum in index order)     Lc_i = fl(L_i * log2(e))
 *   P_ik = exp2(fma(s_ik, c, -Lc_i)),  dS = P * (dP - D),  dQ = scale dS K,  dK = scale dS^T Q,  dV = P^T dO
 *
 * exp2(x): x clamped to [-125, inf) (NaN stays NaN), k = rint(x) by adding and subtracting 1.5*2^23, f = x - k in
 * [-1/2, 1/2], 2^f by the degree-7 Taylor polynomial of e^(f ln 2) in Horner form with FMAs, times 2^k built from
 * its exponent bits. Relative error below about 7e-8 (AttentionMath's class comment; checked by the host test).
 *
 * Usable from kernels and from plain C++17 (native/tests/test_attention_math.cpp replays it on the host against
 * float64 oracles and against bits written by the Java code).
 */
#ifndef DIFFUSION4J_ATTENTION_MATH_CUH
#define DIFFUSION4J_ATTENTION_MATH_CUH

#include <stdint.h>

#include <cmath>

#include "exact_fp.cuh"

namespace d4j {
namespace attn {

/* AttentionMath.LOG2E = (float) (1 / ln 2). */
constexpr float kLog2e = 0x1.715476p+0f;
/* 1.0 / Math.log(2.0) and Math.log(2.0) in float64 (the constants Java's lseShift / log2Scale / logSumExp use). */
constexpr double kInvLn2 = 0x1.71547652b82fep+0;
constexpr double kLn2 = 0x1.62e42fefa39efp-1;
/* AttentionMath.EXP2_MIN and ROUNDER. */
constexpr float kExp2Min = -125.0f;
constexpr float kRounder = 12582912.0f;
/* AttentionMath.E1..E7: (float) (ln2^n / n!) (pinned by the host test against the Java bits). */
constexpr float kE1 = 0x1.62e430p-1f;
constexpr float kE2 = 0x1.ebfbe0p-3f;
constexpr float kE3 = 0x1.c6b08ep-5f;
constexpr float kE4 = 0x1.3b2ab6p-7f;
constexpr float kE5 = 0x1.5d87fep-10f;
constexpr float kE6 = 0x1.430912p-13f;
constexpr float kE7 = 0x1.ffcbfcp-17f;

/* Java's Math.max(a, b) for the row maxima: NaN if either is NaN. (+0/-0 order does not matter here: the maximum
 * only shifts the exponentials, and fl(+0 * c) and fl(-0 * c) give the same exp2 arguments.) */
D4J_HD float jmax(float a, float b) {
    if (a != a) {
        return a;
    }
    if (b != b) {
        return b;
    }
    return a >= b ? a : b;
}

/* 2^f for f in [-1/2, 1/2]: AttentionMath.exp2Poly. */
D4J_HD float exp2_poly(float f) {
    float r = fp::fma(kE7, f, kE6);
    r = fp::fma(r, f, kE5);
    r = fp::fma(r, f, kE4);
    r = fp::fma(r, f, kE3);
    r = fp::fma(r, f, kE2);
    r = fp::fma(r, f, kE1);
    return fp::fma(r, f, 1.0f);
}

/* AttentionMath.exp2: 2^x for x <= 127. */
D4J_HD float exp2(float x) {
    if (x != x) {
        return x;
    }
    const float v = x > kExp2Min ? x : kExp2Min;
    const float k = fp::sub(fp::add(v, kRounder), kRounder);
    const float f = fp::sub(v, k);
    const int32_t ki = static_cast<int32_t>(k);
    return fp::mul(exp2_poly(f), fp::from_bits(static_cast<uint32_t>(ki + 127) << 23));
}

/* AttentionMath.log2Scale: (float) (scale * (1.0 / ln 2)). */
D4J_HD float log2_scale(float scale) { return dfp::to_float(dfp::mul(static_cast<double>(scale), kInvLn2)); }

/* AttentionMath.prob: exp2(fma(s, c, -shift)), one softmax numerator. */
D4J_HD float prob(float s, float c, float shift) { return exp2(fp::fma(s, c, -shift)); }

/* AttentionMath.rescale: exp2(mcOld - mcNew). */
D4J_HD float rescale(float mc_old, float mc_new) { return exp2(fp::sub(mc_old, mc_new)); }

/* The running sum after a tile: alpha * l + tile_sum in float64 (CpuAttention: alpha[r] * l[r] + red[r]). */
D4J_HD double running_sum(float alpha, double l, float tile_sum) {
    return dfp::add(dfp::mul(static_cast<double>(alpha), l), static_cast<double>(tile_sum));
}

/* The state of one query row of the online softmax (Algorithm 1 lines 8-10). */
struct RowState {
    float m;   /* running maximum of the raw scores */
    float mc;  /* fl(m * c): the shift of this tile's exponentials */
    double l;  /* running sum of exponentials */
};

/* New maximum and shift after a tile whose score maximum is tile_max; returns alpha (0 for the first tile, where
 * there is nothing to rescale). The caller then adds the tile's exponentials with add_tile_sum. */
D4J_HD float update_max(RowState &st, float tile_max, float c, bool first) {
    const float m_new = first ? tile_max : jmax(st.m, tile_max);
    const float mc_new = fp::mul(m_new, c);
    const float alpha = first ? 0.0f : rescale(st.mc, mc_new);
    st.m = m_new;
    st.mc = mc_new;
    return alpha;
}

/* l = tile_sum (first tile) or alpha * l + tile_sum. */
D4J_HD void add_tile_sum(RowState &st, float alpha, float tile_sum, bool first) {
    st.l = first ? static_cast<double>(tile_sum) : running_sum(alpha, st.l, tile_sum);
}

/* The factor every output element of the row is multiplied by at the end: (float) (1.0 / l). */
D4J_HD float inv_sum(double l) { return dfp::to_float(dfp::div(1.0, l)); }

D4J_HD double log_double(double x) {
#if defined(__CUDA_ARCH__)
    return ::log(x);
#else
    return dfp::barrier(std::log(x));
#endif
}

/* AttentionMath.logSumExp: (float) (mc * ln 2 + ln l). */
D4J_HD float log_sum_exp(float mc, double l) {
    return dfp::to_float(dfp::add(dfp::mul(static_cast<double>(mc), kLn2), log_double(l)));
}

/* AttentionMath.lseShift: (float) (L * (1.0 / ln 2)). */
D4J_HD float lse_shift(float lse) { return dfp::to_float(dfp::mul(static_cast<double>(lse), kInvLn2)); }

/* One term of D_i = sum_d dO_id * O_id (float64, in index order): acc + (double) a * b. */
D4J_HD double dot_step(double acc, float a, float b) {
    return dfp::add(acc, dfp::mul(static_cast<double>(a), static_cast<double>(b)));
}

/* AttentionMath.dScore: P * (dP - D) in float, two roundings. */
D4J_HD float d_score(float p, float dp, float d) { return fp::mul(p, fp::sub(dp, d)); }

}  // namespace attn
}  // namespace d4j

#endif /* DIFFUSION4J_ATTENTION_MATH_CUH */
