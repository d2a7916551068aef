// Host test of native/src/attention_math.cuh (the scalar math of the fused attention kernels), plain C++17:
//  1. the constants equal Java's (AttentionMath.LOG2E, E1..E7) and their defining formulas;
//  2. exp2 / prob / rescale / logSumExp / lseShift / log2Scale bit-equal to the values the Java code wrote
//     (attention_math_golden.inc): the kernels compute what CpuAttention computes;
//  3. exp2 against the exact 2^x (long double) on random arguments: relative error < 1.2e-7, clamp and NaN;
//  4. the online softmax (update_max / add_tile_sum / inv_sum / log_sum_exp) over random tilings of random score
//     rows against the direct float64 softmax and log-sum-exp: output within 2e-6, L within 1e-6
//     relative plus the float rounding of c;
//  5. the backward's D_i = rowsum(dO o O): against long double, and the identity sum_k dS_ik = 0 that makes it
//     right (sum_k P_k dP_k = dO . sum_k P_k V_k = dO . O), checked relative to sum_k |dS_ik|.
// Exit status 0 when every check passes; prints "N passed, M failed".
#include "attention_math.cuh"

#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "attention_math_golden.inc"
#include "host_check.h"

namespace {

void constant_tests() {
    namespace a = d4j::attn;
    check(bits(a::kLog2e) == kJavaLog2e, "LOG2E == Java", 0);
    check(bits(a::kLog2e) == bits(static_cast<float>(1.0 / std::log(2.0))), "LOG2E = (float) (1/ln 2)", 0);
    const float coef[7] = {a::kE1, a::kE2, a::kE3, a::kE4, a::kE5, a::kE6, a::kE7};
    double fact = 1.0;
    for (int n = 1; n <= 7; ++n) {
        fact *= n;
        check(bits(coef[n - 1]) == kJavaExpCoef[n - 1], "E_n == Java", n);
        check(bits(coef[n - 1]) == bits(static_cast<float>(std::pow(std::log(2.0), n) / fact)), "E_n = ln2^n/n!", n);
    }
    check(dbits(a::kInvLn2) == dbits(1.0 / std::log(2.0)), "kInvLn2 = 1/ln 2", 0);
    check(dbits(a::kLn2) == dbits(std::log(2.0)), "kLn2 = ln 2", 0);
}

void golden_tests() {
    namespace a = d4j::attn;
    int row = 0;
    for (const auto &g : kExp2Golden) {
        check(bits(a::exp2(fl(g[0]))) == g[1], "exp2 == Java", row++);
    }
    row = 0;
    for (const auto &g : kProbGolden) {
        check(bits(a::prob(fl(g[0]), fl(g[1]), fl(g[2]))) == g[3], "prob == Java", row++);
    }
    row = 0;
    for (const auto &g : kRescaleGolden) {
        check(bits(a::rescale(fl(g[0]), fl(g[1]))) == g[2], "rescale == Java", row++);
    }
    row = 0;
    for (const auto &g : kLseGolden) {
        const float mc = fl(static_cast<uint32_t>(g[0]));
        const float lse = a::log_sum_exp(mc, db(g[1]));
        check(bits(lse) == static_cast<uint32_t>(g[2]), "logSumExp == Java", row);
        check(bits(a::lse_shift(lse)) == static_cast<uint32_t>(g[3]), "lseShift == Java", row++);
    }
    row = 0;
    for (const auto &g : kLog2ScaleGolden) {
        check(bits(a::log2_scale(fl(g[0]))) == g[1], "log2Scale == Java", row++);
    }
}

void exp2_tests() {
    namespace a = d4j::attn;
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> u(-125.0, 127.0);
    int bad = 0;
    double worst = 0;
    for (int i = 0; i < 200000; ++i) {
        const float x = static_cast<float>(u(rng));
        const long double exact = std::exp2(static_cast<long double>(x));
        const double rel = static_cast<double>(std::fabs((a::exp2(x) - exact) / exact));
        worst = rel > worst ? rel : worst;
        if (!(rel < 1.2e-7)) {
            ++bad;
        }
    }
    std::printf("exp2: worst relative error %.3g over 200000 arguments\n", worst);
    check(bad == 0, "exp2 relative error < 1.2e-7", bad);
    check(a::exp2(-200.0f) == std::ldexp(1.0f, -125), "exp2 clamps to 2^-125", 0);
    check(std::isnan(a::exp2(NAN)), "exp2(NaN) is NaN", 0);
    for (int k = -125; k <= 127; ++k) {
        check(a::exp2(static_cast<float>(k)) == std::ldexp(1.0f, k), "exp2 of an integer is exact", k);
    }
}

/* One query row of attention: scores s (unscaled), values v [n][dh]; the kernels' tiled evaluation vs float64. */
void online_softmax_tests() {
    namespace a = d4j::attn;
    std::mt19937_64 rng(20261130);
    std::normal_distribution<double> nrm(0.0, 1.0);
    std::uniform_int_distribution<int> tile_pick(1, 70);
    int bad_o = 0;
    int bad_l = 0;
    int bad_p = 0;
    for (int trial = 0; trial < 400; ++trial) {
        const int n = 1 + static_cast<int>(rng() % 300);
        const int dh = 1 + static_cast<int>(rng() % 9);
        const float scale = static_cast<float>(0.05 + 0.5 * std::fabs(nrm(rng)));
        const float spread = static_cast<float>(1 + 30 * std::fabs(nrm(rng)));
        std::vector<float> s(n);
        std::vector<float> v(static_cast<size_t>(n) * dh);
        for (auto &x : s) x = static_cast<float>(spread * nrm(rng));
        for (auto &x : v) x = static_cast<float>(nrm(rng));
        const float c = a::log2_scale(scale);
        // tiled, as a kernel does (tile size random per trial)
        const int bk = tile_pick(rng);
        a::RowState st{0.0f, 0.0f, 0.0};
        std::vector<float> o(dh, 0.0f);
        for (int j0 = 0; j0 < n; j0 += bk) {
            const int j1 = j0 + bk < n ? j0 + bk : n;
            const bool first = j0 == 0;
            float mx = s[j0];
            for (int j = j0 + 1; j < j1; ++j) mx = a::jmax(mx, s[j]);
            const float alpha = a::update_max(st, mx, c, first);
            float sum = 0.0f;
            std::vector<float> p(j1 - j0);
            for (int j = j0; j < j1; ++j) {
                p[j - j0] = a::prob(s[j], c, st.mc);
                sum = d4j::fp::add(sum, p[j - j0]);
            }
            a::add_tile_sum(st, alpha, sum, first);
            for (int d = 0; d < dh; ++d) {
                float acc = first ? 0.0f : d4j::fp::mul(o[d], alpha);
                for (int j = j0; j < j1; ++j) acc = d4j::fp::fma(p[j - j0], v[static_cast<size_t>(j) * dh + d], acc);
                o[d] = acc;
            }
        }
        const float inv = a::inv_sum(st.l);
        const float lse = a::log_sum_exp(st.mc, st.l);
        // float64 oracle
        double m = -INFINITY;
        for (float x : s) m = std::fmax(m, static_cast<double>(scale) * x);
        double l = 0.0;
        for (float x : s) l += std::exp(static_cast<double>(scale) * x - m);
        const double lse64 = m + std::log(l);
        // c = scale log2(e) is rounded to float (relative 2^-24), which moves every exponent by up to |scale s| 2^-24
        double smax = 0.0;
        for (float x : s) smax = std::fmax(smax, std::fabs(static_cast<double>(scale) * x));
        const double ctol = smax * 1.2e-7;
        if (!(std::fabs(lse - lse64) <= 1e-6 * (1.0 + std::fabs(lse64)) + ctol)) ++bad_l;
        for (int d = 0; d < dh; ++d) {
            double ref = 0.0;
            double mag = 0.0;
            for (int j = 0; j < n; ++j) {
                const double w = std::exp(static_cast<double>(scale) * s[j] - m) / l;
                ref += w * v[static_cast<size_t>(j) * dh + d];
                mag += w * std::fabs(v[static_cast<size_t>(j) * dh + d]);
            }
            const double got = static_cast<double>(d4j::fp::mul(o[d], inv));
            if (!(std::fabs(got - ref) <= 2e-6 * (mag + 1e-30))) ++bad_o;
        }
        // the backward recomputes P from L: rows sum to 1
        const float lc = a::lse_shift(lse);
        double psum = 0.0;
        for (float x : s) psum += a::prob(x, c, lc);
        if (!(std::fabs(psum - 1.0) < 4e-6 + 2 * ctol)) ++bad_p;
    }
    check(bad_o == 0, "online softmax output vs float64 softmax", bad_o);
    check(bad_l == 0, "log-sum-exp vs float64", bad_l);
    check(bad_p == 0, "P recomputed from L sums to 1", bad_p);
}

void backward_tests() {
    namespace a = d4j::attn;
    std::mt19937_64 rng(99);
    std::normal_distribution<double> nrm(0.0, 1.0);
    int bad_d = 0;
    int bad_sum = 0;
    for (int trial = 0; trial < 300; ++trial) {
        const int n = 1 + static_cast<int>(rng() % 200);
        const int dh = 1 + static_cast<int>(rng() % 130);
        std::vector<double> p(n);
        double tot = 0;
        for (auto &x : p) {
            x = std::exp(2.0 * nrm(rng));
            tot += x;
        }
        std::vector<float> pf(n);
        for (int j = 0; j < n; ++j) pf[j] = static_cast<float>(p[j] / tot);
        std::vector<float> v(static_cast<size_t>(n) * dh);
        std::vector<float> dout(dh);
        for (auto &x : v) x = static_cast<float>(nrm(rng));
        for (auto &x : dout) x = static_cast<float>(nrm(rng));
        std::vector<float> o(dh);
        for (int d = 0; d < dh; ++d) {
            double acc = 0;
            for (int j = 0; j < n; ++j) acc += static_cast<double>(pf[j]) * v[static_cast<size_t>(j) * dh + d];
            o[d] = static_cast<float>(acc);
        }
        double dacc = 0.0;
        long double exact = 0.0L;
        for (int d = 0; d < dh; ++d) {
            dacc = a::dot_step(dacc, dout[d], o[d]);
            exact += static_cast<long double>(dout[d]) * o[d];
        }
        const float dval = d4j::dfp::to_float(dacc);
        if (!(std::fabs(static_cast<long double>(dval) - exact) <= 1e-7L * (1.0L + std::fabs(exact)))) ++bad_d;
        double sum = 0.0;
        double mag = 0.0;
        for (int j = 0; j < n; ++j) {
            double dp = 0.0;
            for (int d = 0; d < dh; ++d) dp += static_cast<double>(dout[d]) * v[static_cast<size_t>(j) * dh + d];
            const float ds = a::d_score(pf[j], static_cast<float>(dp), dval);
            sum += ds;
            mag += std::fabs(ds);
        }
        if (!(std::fabs(sum) <= 1e-5 * (mag + 1e-30) + 1e-30)) ++bad_sum;
    }
    check(bad_d == 0, "D_i = rowsum(dO o O) vs long double", bad_d);
    check(bad_sum == 0, "sum_k dS_ik = 0 (softmax Jacobian rows)", bad_sum);
    // exact float ops of dScore
    check(bits(a::d_score(0.25f, 3.0f, 1.0f)) == bits(0.5f), "dScore = P (dP - D)", 0);
}

}  // namespace

int main() {
    constant_tests();
    golden_tests();
    exp2_tests();
    online_softmax_tests();
    backward_tests();
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
