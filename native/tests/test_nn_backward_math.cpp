// Host test of the LayerNorm-backward math of native/src/nn_math.cuh (nn_backward.cu), plain C++17:
//  1. ln_normalize, ln_affine, ln_dn, ln_input_grad, ln_row_mean, dprod against float64 oracles rounded after each
//     operation (the evaluation order of NnMath / CpuNnOps, no contraction);
//  2. one row of the fused LayerNorm + adaLN backward, evaluated with these functions as the kernels do (dx, and
//     the row's terms of dGamma, dBeta, dShift, dScale), against central finite differences of the float64 forward
//     y = ((x - mu) rstd gamma + beta)(1 + scale) + shift on random rows of odd lengths.
// Exit status 0 when every check passes; prints "N passed, M failed".
#include "nn_math.cuh"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "host_check.h"

namespace {

namespace nn = d4j::nn;

void oracle_tests() {
    std::mt19937_64 rng(20261130);
    std::uniform_real_distribution<double> u(-3.0, 3.0);
    auto rnd = [&] { return static_cast<float>(u(rng)); };
    int bad[5] = {0, 0, 0, 0, 0};
    for (int i = 0; i < 100000; ++i) {
        const float x = rnd(), mu = rnd(), rs = std::fabs(rnd()) + 0.1f, g = rnd(), b = rnd(), dy = rnd();
        const float xh = rmul(rsub(x, mu), rs);
        if (!same(nn::ln_normalize(x, mu, rs), xh)) ++bad[0];
        if (!same(nn::ln_affine(xh, true, g, true, b), radd(rmul(xh, g), b)) ||
            !same(nn::ln_affine(xh, false, g, true, b), radd(xh, b)) ||
            !same(nn::ln_affine(xh, true, g, false, b), rmul(xh, g)) || !same(nn::ln_affine(xh, false, g, false, b), xh))
            ++bad[1];
        const float ops = radd(1.0f, b);
        if (!same(nn::ln_dn(dy, true, ops), rmul(dy, ops)) || !same(nn::ln_dn(dy, false, ops), dy)) ++bad[2];
        const float m1 = rnd(), m2 = rnd();
        if (!same(nn::ln_input_grad(rs, dy, m1, xh, m2), rmul(rs, rsub(rsub(dy, m1), rmul(xh, m2))))) ++bad[3];
        const double s = u(rng) * 1000.0;
        const int64_t d = 1 + static_cast<int64_t>(rng() % 5000);
        if (!same(nn::ln_row_mean(s, d), static_cast<float>(s / static_cast<double>(d))) ||
            nn::dprod(x, g) != static_cast<double>(x) * static_cast<double>(g))
            ++bad[4];
    }
    check(bad[0] == 0, "ln_normalize = (x - mu) * rstd", bad[0]);
    check(bad[1] == 0, "ln_affine = xhat * gamma + beta", bad[1]);
    check(bad[2] == 0, "ln_dn = dy * (1 + scale)", bad[2]);
    check(bad[3] == 0, "ln_input_grad = rstd * (dxhat - m1 - xhat * m2)", bad[3]);
    check(bad[4] == 0, "ln_row_mean and dprod", bad[4]);
}

/* float64 forward of one row: y_i = ((x_i - mu) rstd g_i + b_i)(1 + sc_i) + sh_i; loss = sum_i w_i y_i. */
double row_loss(const std::vector<double> &x, const std::vector<double> &g, const std::vector<double> &b,
                const std::vector<double> &sc, const std::vector<double> &sh, const std::vector<double> &w, double eps) {
    const size_t d = x.size();
    double mu = 0;
    for (double v : x) mu += v;
    mu /= static_cast<double>(d);
    double var = 0;
    for (double v : x) var += (v - mu) * (v - mu);
    var /= static_cast<double>(d);
    const double rs = 1.0 / std::sqrt(var + eps);
    double loss = 0;
    for (size_t i = 0; i < d; ++i) loss += w[i] * (((x[i] - mu) * rs * g[i] + b[i]) * (1 + sc[i]) + sh[i]);
    return loss;
}

void finite_difference_tests() {
    std::mt19937_64 rng(7);
    std::normal_distribution<double> nrm(0.0, 1.0);
    const int dims[] = {1, 2, 7, 33, 129};
    int bad_dx = 0;
    int bad_param = 0;
    for (int d : dims) {
        for (int trial = 0; trial < 4; ++trial) {
            const double eps = 1e-5;
            std::vector<double> x(d), g(d), b(d), sc(d), sh(d), w(d);
            std::vector<float> xf(d), gf(d), bf(d), scf(d), wf(d);
            for (int i = 0; i < d; ++i) {
                xf[i] = static_cast<float>(2.0 * nrm(rng) + 0.5);
                gf[i] = static_cast<float>(1.0 + 0.3 * nrm(rng));
                bf[i] = static_cast<float>(0.3 * nrm(rng));
                scf[i] = static_cast<float>(0.3 * nrm(rng));
                wf[i] = static_cast<float>(nrm(rng));
                x[i] = xf[i];
                g[i] = gf[i];
                b[i] = bf[i];
                sc[i] = scf[i];
                sh[i] = 0.3 * nrm(rng);
                w[i] = wf[i];
            }
            // the kernels' row statistics (the forward's) and backward, dy = w
            double s = 0;
            for (float v : xf) s += v;
            const float mu = nn::ln_mean(s, d);
            double q = 0;
            for (float v : xf) q += nn::ln_square(v, mu);
            const float rs = nn::ln_rstd(q, d, static_cast<float>(eps));
            std::vector<float> xh(d), dxh(d);
            double s1 = 0, s2 = 0;
            std::vector<double> dgam(d), dbet(d), dshf(d), dscl(d);
            for (int i = 0; i < d; ++i) {
                xh[i] = nn::ln_normalize(xf[i], mu, rs);
                const float dn = nn::ln_dn(wf[i], true, d4j::fp::add(1.0f, scf[i]));
                dgam[i] = nn::dprod(dn, xh[i]);
                dbet[i] = dn;
                dshf[i] = wf[i];
                dscl[i] = nn::dprod(wf[i], nn::ln_affine(xh[i], true, gf[i], true, bf[i]));
                dxh[i] = d4j::fp::mul(dn, gf[i]);
                s1 += dxh[i];
                s2 += nn::dprod(dxh[i], xh[i]);
            }
            const float m1 = nn::ln_row_mean(s1, d), m2 = nn::ln_row_mean(s2, d);
            for (int i = 0; i < d; ++i) {
                const float dx = nn::ln_input_grad(rs, dxh[i], m1, xh[i], m2);
                const double h = 1e-4 * (1.0 + std::fabs(x[i]));
                auto xp = x, xm = x;
                xp[i] += h;
                xm[i] -= h;
                const double fd = (row_loss(xp, g, b, sc, sh, w, eps) - row_loss(xm, g, b, sc, sh, w, eps)) / (2 * h);
                double mag = 0;
                for (int j = 0; j < d; ++j) mag += std::fabs(w[j] * g[j] * (1 + sc[j]));
                if (!(std::fabs(dx - fd) <= 1e-4 * (mag * rs + 1e-3))) ++bad_dx;
                // parameters: g_i, b_i, sc_i, sh_i
                const double hp = 1e-4;
                double fds[4];
                std::vector<double> *ps[4] = {&g, &b, &sc, &sh};
                for (int k = 0; k < 4; ++k) {
                    auto pp = *ps[k];
                    auto pm = *ps[k];
                    pp[i] += hp;
                    pm[i] -= hp;
                    const auto orig = *ps[k];
                    *ps[k] = pp;
                    const double lp = row_loss(x, g, b, sc, sh, w, eps);
                    *ps[k] = pm;
                    const double lm = row_loss(x, g, b, sc, sh, w, eps);
                    *ps[k] = orig;
                    fds[k] = (lp - lm) / (2 * hp);
                }
                const double got[4] = {dgam[i], dbet[i], dscl[i], dshf[i]};
                for (int k = 0; k < 4; ++k) {
                    if (!(std::fabs(got[k] - fds[k]) <= 1e-5 * (1.0 + std::fabs(fds[k])) * (1.0 + std::fabs(x[i])))) {
                        ++bad_param;
                    }
                }
            }
        }
    }
    check(bad_dx == 0, "LayerNorm backward dx vs central finite differences (float64 forward)", bad_dx);
    check(bad_param == 0, "dGamma, dBeta, dScale, dShift row terms vs central finite differences", bad_param);
}

}  // namespace

int main() {
    oracle_tests();
    finite_difference_tests();
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
