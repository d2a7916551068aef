/*
 * Per-element and per-sample arithmetic of the fused diffusion ops (diffusion.cu), written to evaluate
 * exactly what org.diffusion4j.sampling.FusedMath evaluates in Java: the same float operations in the same
 * order, each rounded once (Java never contracts a*b + c into an FMA, so neither do we: every operation is
 * d4j::fp::* from philox.cuh, i.e. __fmul_rn / __fadd_rn on the device and barrier-protected operators on
 * the host). The double-precision rescale statistics use the same discipline (__dmul_rn, ... / barriers).
 *
 * Usable from kernels and from plain C++17 (native/tests/test_diffusion_math.cpp replays it on the host).
 */
#ifndef DIFFUSION4J_DIFFUSION_MATH_CUH
#define DIFFUSION4J_DIFFUSION_MATH_CUH

#include <stdint.h>

#include "philox.cuh"

namespace d4j {

/* ------------------------------------------------------------------ FusedMath, element by element */
namespace fused {

/* FusedMath.guide: c + (w - 1)(c - u). */
D4J_HD float guide(float c, float u, float w_minus_1) {
    return fp::add(c, fp::mul(w_minus_1, fp::sub(c, u)));
}

/* The guided, rescaled output of a sampler step: guide(c, u, w - 1) * f (CpuDiffusionOps.stepBlock). */
D4J_HD float guided(float c, float u, float w_minus_1, float f) {
    return fp::mul(guide(c, u, w_minus_1), f);
}

/* FusedMath.prediction: ka xIn + kb g. */
D4J_HD float prediction(float ka, float x_in, float kb, float g) {
    return fp::add(fp::mul(ka, x_in), fp::mul(kb, g));
}

/* FusedMath.update: ax x + ai xIn + ag g + ah h + az z, left to right. */
D4J_HD float update(float ax, float x, float ai, float x_in, float ag, float g, float ah, float h, float az,
                    float z) {
    float r = fp::add(fp::mul(ax, x), fp::mul(ai, x_in));
    r = fp::add(r, fp::mul(ag, g));
    r = fp::add(r, fp::mul(ah, h));
    return fp::add(r, fp::mul(az, z));
}

/* FusedMath.noised: a x0 + s eps (x_t and the target). */
D4J_HD float noised(float a, float x0, float s, float eps) {
    return fp::add(fp::mul(a, x0), fp::mul(s, eps));
}

/* FusedMath.offset: eps + strength delta. */
D4J_HD float offset(float eps, float strength, float delta) {
    return fp::add(eps, fp::mul(strength, delta));
}

/* FusedMath.scaleAdd: a x + s z. */
D4J_HD float scale_add(float a, float x, float s, float z) {
    return fp::add(fp::mul(a, x), fp::mul(s, z));
}

/* ------------------------------------------------------------------ rescale statistics (double) */

/* Shifted sums of one value v with shift k: s1 += v - k, s2 += (v - k)^2, as in CpuDiffusionOps. */
D4J_HD void accumulate(float v, float k, double &s1, double &s2) {
    const double d = dfp::sub(static_cast<double>(v), static_cast<double>(k));
    s1 = dfp::add(s1, d);
    s2 = dfp::add(s2, dfp::mul(d, d));
}

/* FusedMath.variance: population variance from shifted sums over n values (0 for n <= 0). */
D4J_HD double variance(int64_t n, double s1, double s2) {
    if (n <= 0) {
        return 0.0;
    }
    const double dn = static_cast<double>(n);
    const double m2 = dfp::sub(s2, dfp::div(dfp::mul(s1, s1), dn));
    return dfp::max_zero(dfp::div(m2, dn));
}

/* FusedMath.rescaleFactor: phi sqrt(varC / varG) + (1 - phi); 1 for phi = 0 or varG not > 0. */
D4J_HD double rescale_factor(double phi, double var_cond, double var_guided) {
    if (phi == 0.0 || !(var_guided > 0.0)) {
        return 1.0;
    }
    return dfp::add(dfp::mul(phi, dfp::sqrt(dfp::div(var_cond, var_guided))), dfp::sub(1.0, phi));
}

/* The float factor f_b of a sample from its four sums (s1c, s2c, s1g, s2g), as CpuDiffusionOps rounds it. */
D4J_HD float rescale_of_sums(double phi, int64_t n, double s1c, double s2c, double s1g, double s2g) {
    return dfp::to_float(rescale_factor(phi, variance(n, s1c, s2c), variance(n, s1g, s2g)));
}

/* ------------------------------------------------------------------ noise indexing (NoiseSeeds) */

/*
 * Element j of a sample with global id `id` and n elements has Philox index id*n + j (unsigned 64-bit,
 * wrapping like Java's long arithmetic): block (id*n + j) >> 2, lane (id*n + j) & 3. A kernel walks a sample
 * in "groups" of one Philox block each: group g covers elements j = 4g + k - r (k = 0..3, kept when
 * 0 <= j < n), r = (id*n) & 3, and reads Philox block ((id*n) >> 2) + g (mod 2^62, the block range).
 */
struct NoiseLayout {
    uint64_t first_block;  /* (id*n) >> 2 */
    int64_t phase;         /* r = (id*n) & 3 */
};

D4J_HD NoiseLayout noise_layout(uint64_t id, int64_t n) {
    const uint64_t base = id * static_cast<uint64_t>(n);
    NoiseLayout l;
    l.first_block = base >> 2;
    l.phase = static_cast<int64_t>(base & 3u);
    return l;
}

/* Number of groups of a sample: ceil((n + r) / 4). */
D4J_HD int64_t group_count(int64_t n, int64_t phase) {
    return (n + phase + 3) / 4;
}

/* Philox block of group g. */
D4J_HD uint64_t group_block(const NoiseLayout &l, uint64_t g) {
    return (l.first_block + g) & 0x3FFFFFFFFFFFFFFFull;
}

}  // namespace fused
}  // namespace d4j

#endif /* DIFFUSION4J_DIFFUSION_MATH_CUH */
