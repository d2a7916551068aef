// Host test of native/src/nn_math.cuh (the per-element math of the layer-op kernels, nn.cu), plain C++17:
//  1. the float constants equal Java's (NnMath.GELU_C, GELU_K, GELU_2C, GELU_3K);
//  2. every formula against a float64 oracle rounded after each operation, on random inputs (proves the
//     evaluation order and that no product was contracted into an FMA), and the activations / derivatives
//     against the exact float64 (long double) functions within a few ulp-scale bounds;
//  3. the golden table nn_math_golden.inc written once from Java (org.diffusion4j.nn.NnMath and the
//     LayerNorm row arithmetic of CpuNnOps): equal bits prove the kernels compute what the CPU computes.
// Exit status 0 when every check passes; prints "N passed, M failed".
#include "nn_math.cuh"

#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>

#include "nn_math_golden.inc"
#include "host_check.h"

namespace {
float rsqrt(float a) {
    volatile float r = static_cast<float>(std::sqrt(static_cast<double>(a)));
    return r;
}
float rsig(float z) {
    volatile double e = std::exp(-static_cast<double>(z));
    volatile float r = static_cast<float>(1.0 / (1.0 + e));
    return r;
}

void constant_tests() {
    check(bits(d4j::nn::kGeluC) == kGeluC, "GELU_C == Java", 0);
    check(bits(d4j::nn::kGeluK) == kGeluK, "GELU_K == Java", 0);
    check(bits(d4j::nn::kGelu2C) == kGelu2C, "GELU_2C == Java", 0);
    check(bits(d4j::nn::kGelu3K) == kGelu3K, "GELU_3K == Java", 0);
    check(bits(d4j::nn::kGeluC) == bits(static_cast<float>(std::sqrt(2.0 / M_PI))), "GELU_C = (float) sqrt(2/pi)", 0);
    check(bits(d4j::nn::kGelu2C) == bits(static_cast<float>(2.0 * std::sqrt(2.0 / M_PI))), "GELU_2C", 0);
    check(bits(d4j::nn::kGelu3K) == bits(static_cast<float>(3 * 0.044715)), "GELU_3K", 0);
}

void oracle_tests() {
    std::mt19937_64 rng(20261130);
    std::uniform_real_distribution<double> mag(-4.0, 2.0);
    std::uniform_real_distribution<double> unit(-1.0, 1.0);
    auto rnd = [&] { return static_cast<float>(unit(rng) * std::pow(10.0, mag(rng))); };
    const float c = d4j::nn::kGeluC, k = d4j::nn::kGeluK, c2 = d4j::nn::kGelu2C, k3 = d4j::nn::kGelu3K;
    int bad[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 50000; ++i) {
        const float z = rnd();
        const float dy = rnd();
        const float s = rsig(z);
        if (!same(d4j::nn::sigmoid(z), s)) ++bad[0];
        if (!same(d4j::nn::silu(z), rmul(z, s))) ++bad[1];
        if (!same(d4j::nn::silu_backward(z, dy), rmul(dy, rmul(s, radd(1.0f, rmul(z, rsub(1.0f, s))))))) ++bad[2];
        const float u = rmul(c, radd(z, rmul(k, rmul(rmul(z, z), z))));
        const float sg = rsig(rmul(2.0f, u));
        if (!same(d4j::nn::gelu(z), rmul(z, sg))) ++bad[3];
        float right = rmul(rmul(rmul(z, sg), rsub(1.0f, sg)), c2);
        right = rmul(right, radd(1.0f, rmul(k3, rmul(z, z))));
        if (!same(d4j::nn::gelu_backward(z, dy), rmul(dy, radd(sg, right)))) ++bad[4];
        // Against the exact functions (long double): SiLU / GELU within 4e-7 relative + tiny absolute, the
        // derivatives within 2e-6 of |dy| (the float terms cancel near the GELU derivative's zero).
        const long double zl = z;
        const long double sl = 1.0L / (1.0L + std::exp(-zl));
        const long double silu = zl * sl;
        if (std::fabs(static_cast<long double>(d4j::nn::silu(z)) - silu) > std::fabs(silu) * 4e-7L + 1e-37L) ++bad[5];
        const long double inner = std::sqrt(2.0L / M_PI) * (zl + 0.044715L * zl * zl * zl);
        // 0.5 z (1 + tanh u) = z sigma(2u) exactly; the sigma form keeps long double accuracy where 1 + tanh cancels
        const long double gl = zl / (1.0L + std::exp(-2.0L * inner));
        // sigma(2u) amplifies the few-ulp relative error of the float u by |2u| where it is small (z < 0)
        const long double gtol = std::fabs(gl) * 1e-6L * (2.0L + 4.0L * std::fabs(inner)) + 1e-37L;
        if (std::fabs(static_cast<long double>(d4j::nn::gelu(z)) - gl) > gtol) {
            ++bad[6];
        }
        const long double th = std::tanh(inner);
        const long double dg = 0.5L * (1.0L + th) +
                               0.5L * zl * (1.0L - th * th) * std::sqrt(2.0L / M_PI) * (1.0L + 3 * 0.044715L * zl * zl);
        if (std::fabs(static_cast<long double>(d4j::nn::gelu_backward(z, 1.0f)) - dg) > 2e-6L * (1.0L + std::fabs(dg)))
            ++bad[7];
    }
    const char *names[8] = {"sigmoid vs oracle", "silu vs per-op oracle", "siluBackward vs per-op oracle",
                            "gelu vs per-op oracle", "geluBackward vs per-op oracle", "silu vs exact",
                            "gelu vs exact", "geluBackward vs exact derivative"};
    for (int q = 0; q < 8; ++q) {
        check(bad[q] == 0, names[q], bad[q]);
    }
    // The clamp: beyond +-100 the derivative is exactly 0 or 1 times dy, NaN stays NaN, no 0 * inf.
    check(same(d4j::nn::gelu_backward(1e30f, 3.0f), 3.0f), "geluBackward(+huge) = dy", 0);
    check(same(d4j::nn::gelu_backward(-1e30f, 3.0f), 0.0f) || d4j::nn::gelu_backward(-1e30f, 3.0f) == 0.0f,
          "geluBackward(-huge) = 0", 0);
    check(std::isnan(d4j::nn::gelu_backward(NAN, 1.0f)), "geluBackward(NaN) is NaN", 0);
    check(!std::isnan(d4j::nn::gelu_backward(INFINITY, 1.0f)), "geluBackward(inf) is not NaN", 0);
    check(d4j::nn::activate(d4j::nn::kIdentity, -2.5f) == -2.5f, "identity", 0);
    check(d4j::nn::activate_backward(d4j::nn::kIdentity, 7.0f, -2.5f) == -2.5f, "identity backward", 0);

    // AdamW: the per-op oracle in the order of NnMath.adamw.
    int abad = 0;
    for (int i = 0; i < 20000; ++i) {
        d4j::nn::AdamwCoef q{};
        q.decay = static_cast<float>(1.0 - 1e-4 * static_cast<double>(rng() % 100));
        q.beta1 = 0.9f;
        q.one_minus_beta1 = static_cast<float>(1.0 - 0.9);
        q.beta2 = 0.999f;
        q.one_minus_beta2 = static_cast<float>(1.0 - 0.999);
        q.step_size = std::fabs(rnd()) * 1e-2f;
        q.inv_sqrt_bc2 = 1.0f + std::fabs(rnd());
        q.eps = 1e-8f;
        q.grad_scale = std::fabs(rnd());
        float p = rnd(), g = rnd(), m = rnd(), v = std::fabs(rnd());
        const float gg = rmul(q.grad_scale, g);
        const float pd = rmul(p, q.decay);
        const float m1 = radd(rmul(q.beta1, m), rmul(q.one_minus_beta1, gg));
        const float v1 = radd(rmul(q.beta2, v), rmul(rmul(q.one_minus_beta2, gg), gg));
        const float den = radd(rmul(rsqrt(v1), q.inv_sqrt_bc2), q.eps);
        const float p1 = rsub(pd, rmul(q.step_size, rdiv(m1, den)));
        d4j::nn::adamw(q, p, g, m, v);
        if (!same(p, p1) || !same(m, m1) || !same(v, v1)) ++abad;
    }
    check(abad == 0, "adamw vs per-op oracle", abad);

    // LayerNorm element output and gated residual vs per-op oracles.
    int lbad = 0;
    for (int i = 0; i < 20000; ++i) {
        const float x = rnd(), mu = rnd(), rs = std::fabs(rnd()), ga = rnd(), be = rnd(), sc = rnd(), sh = rnd();
        const bool hg = (i & 1) != 0, hb = (i & 2) != 0, hs = (i & 4) != 0, hh = (i & 8) != 0;
        float n = rmul(rsub(x, mu), rs);
        if (hg) n = rmul(n, ga);
        if (hb) n = radd(n, be);
        if (hs || hh) n = radd(rmul(n, hs ? radd(1.0f, sc) : 1.0f), hh ? sh : 0.0f);
        if (!same(d4j::nn::ln_output(x, mu, rs, hg, ga, hb, be, hs, sc, hh, sh), n)) ++lbad;
        if (!same(d4j::nn::gated_residual(x, ga, be), radd(x, rmul(ga, be)))) ++lbad;
    }
    check(lbad == 0, "ln_output / gated_residual vs per-op oracle", lbad);
}

void golden_tests() {
    const int rows = static_cast<int>(sizeof kActGolden / sizeof kActGolden[0]);
    for (int i = 0; i < rows; ++i) {
        const uint32_t *r = kActGolden[i];
        const float z = fl(r[0]), dy = fl(r[1]);
        check(same(d4j::nn::silu(z), fl(r[2])), "silu == Java", i);
        check(same(d4j::nn::silu_backward(z, dy), fl(r[3])), "siluBackward == Java", i);
        check(same(d4j::nn::gelu(z), fl(r[4])), "gelu == Java", i);
        check(same(d4j::nn::gelu_backward(z, dy), fl(r[5])), "geluBackward == Java", i);
        check(same(d4j::nn::sigmoid(z), fl(r[6])), "sigmoid == Java", i);
        check(same(d4j::nn::activate(d4j::nn::kSilu, z), fl(r[2])), "activate(SILU) == Java", i);
        check(same(d4j::nn::activate_backward(d4j::nn::kGeluTanh, z, dy), fl(r[5])), "activateBackward == Java", i);
    }
    const int arows = static_cast<int>(sizeof kAdamwGolden / sizeof kAdamwGolden[0]);
    for (int i = 0; i < arows; ++i) {
        const uint32_t *r = kAdamwGolden[i];
        const d4j::nn::AdamwCoef q{fl(r[0]), fl(r[1]), fl(r[2]), fl(r[3]), fl(r[4]),
                                   fl(r[5]), fl(r[6]), fl(r[7]), fl(r[8])};
        float p = fl(r[9]), m = fl(r[11]), v = fl(r[12]);
        d4j::nn::adamw(q, p, fl(r[10]), m, v);
        check(same(p, fl(r[13])) && same(m, fl(r[14])) && same(v, fl(r[15])), "adamw == Java", i);
    }
    // LayerNorm rows: sums in index order (CpuNnOps' order) give Java's bits exactly.
    for (int q = 0; q < kLnRows; ++q) {
        const uint32_t *r = kLnGolden[q];
        double sum = 0.0;
        for (int i = 0; i < kLnDim; ++i) sum = d4j::dfp::add(sum, static_cast<double>(fl(r[i])));
        const float mu = d4j::nn::ln_mean(sum, kLnDim);
        double sq = 0.0;
        for (int i = 0; i < kLnDim; ++i) sq = d4j::dfp::add(sq, d4j::nn::ln_square(fl(r[i]), mu));
        const float rs = d4j::nn::ln_rstd(sq, kLnDim, kLnEps);
        check(same(mu, fl(r[2 * kLnDim])), "LayerNorm mean == Java", q);
        check(same(rs, fl(r[2 * kLnDim + 1])), "LayerNorm rstd == Java", q);
        int bad = 0;
        for (int i = 0; i < kLnDim; ++i) {
            const float y = d4j::nn::ln_output(fl(r[i]), mu, rs, true, fl(kLnGamma[i]), true, fl(kLnBeta[i]), true,
                                               fl(kLnScale[i]), true, fl(kLnShift[i]));
            if (!same(y, fl(r[kLnDim + i]))) ++bad;
        }
        check(bad == 0, "LayerNorm output == Java", q);
        // rstd against the exact float64 statistics (the float mean costs at most a few float ulps).
        long double m = 0, v = 0;
        for (int i = 0; i < kLnDim; ++i) m += fl(r[i]);
        m /= kLnDim;
        for (int i = 0; i < kLnDim; ++i) v += (fl(r[i]) - m) * (fl(r[i]) - m);
        v /= kLnDim;
        const long double rx = 1.0L / std::sqrt(v + static_cast<long double>(kLnEps));
        check(std::fabs(rs - rx) <= rx * 1e-5L, "LayerNorm rstd vs exact", q);
    }
}

}  // namespace

int main() {
    constant_tests();
    oracle_tests();
    golden_tests();
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
