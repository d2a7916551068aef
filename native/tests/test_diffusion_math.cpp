// Host test of native/src/diffusion_math.cuh (the per-element math of the fused diffusion kernels), plain C++17:
//  1. every float formula against a float64 oracle that rounds after each operation (exact: a double holds
//     the product and, double-rounding-free, the sum of two floats), on random inputs: proves the
//     evaluation order and that no product was contracted into an FMA;
//  2. the golden table fused_math_golden.inc written once from Java (org.diffusion4j.sampling.FusedMath):
//     equal bits prove the kernels compute what the CPU computes;
//  3. variance / rescale factor against the Java golden doubles, and the statistics accumulation;
//  4. the Philox group layout of a sample (every element j maps to block (id*n + j) >> 2, lane (id*n + j) & 3).
// Exit status 0 when every check passes; prints "N passed, M failed".
#include "diffusion_math.cuh"

#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>

#include "fused_math_golden.inc"
#include "host_check.h"

namespace {

void oracle_tests() {
    std::mt19937_64 rng(12345);
    std::uniform_real_distribution<double> mag(-3.0, 2.0);
    std::uniform_real_distribution<double> unit(-1.0, 1.0);
    auto rnd = [&] { return static_cast<float>(unit(rng) * std::pow(10.0, mag(rng))); };
    int bad[6] = {0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 20000; ++i) {
        float x[10];
        for (float &v : x) {
            v = rnd();
        }
        if (!same(d4j::fused::guide(x[0], x[1], x[2]), radd(x[0], rmul(x[2], rsub(x[0], x[1]))))) ++bad[0];
        if (!same(d4j::fused::prediction(x[0], x[1], x[2], x[3]), radd(rmul(x[0], x[1]), rmul(x[2], x[3])))) ++bad[1];
        float u = radd(rmul(x[0], x[1]), rmul(x[2], x[3]));
        u = radd(u, rmul(x[4], x[5]));
        u = radd(u, rmul(x[6], x[7]));
        u = radd(u, rmul(x[8], x[9]));
        if (!same(d4j::fused::update(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9]), u)) ++bad[2];
        if (!same(d4j::fused::noised(x[0], x[1], x[2], x[3]), radd(rmul(x[0], x[1]), rmul(x[2], x[3])))) ++bad[3];
        if (!same(d4j::fused::offset(x[0], x[1], x[2]), radd(x[0], rmul(x[1], x[2])))) ++bad[4];
        if (!same(d4j::fused::guided(x[0], x[1], x[2], x[3]),
                  rmul(radd(x[0], rmul(x[2], rsub(x[0], x[1]))), x[3]))) ++bad[5];
        // The float64 value of the whole update, for scale: the float result is within a few ulp of the sum's
        // magnitude.
        double exact = 0;
        for (int k = 0; k < 10; k += 2) exact += static_cast<double>(x[k]) * x[k + 1];
        double mags = 0;
        for (int k = 0; k < 10; k += 2) mags += std::fabs(static_cast<double>(x[k]) * x[k + 1]);
        if (std::fabs(d4j::fused::update(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9]) - exact) >
            mags * 6e-7 + 1e-30) {
            ++bad[2];
        }
    }
    const char *names[6] = {"guide vs per-op oracle", "prediction vs per-op oracle", "update vs oracle",
                            "noised vs per-op oracle", "offset vs per-op oracle", "guided vs per-op oracle"};
    for (int k = 0; k < 6; ++k) {
        check(bad[k] == 0, names[k], bad[k]);
    }
    // w = 1 gives exactly cond; a zero coefficient with a zero operand adds nothing.
    check(same(d4j::fused::guide(1.25f, 7.0f, 0.0f), 1.25f), "guide at w = 1", 0);
    check(same(d4j::fused::update(0.5f, 2.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f), 1.0f),
          "update with zero terms", 0);
}

void golden_tests() {
    const int rows = static_cast<int>(sizeof kFusedGolden / sizeof kFusedGolden[0]);
    for (int i = 0; i < rows; ++i) {
        const uint32_t *r = kFusedGolden[i];
        float x[10];
        for (int k = 0; k < 10; ++k) {
            x[k] = fl(r[k]);
        }
        check(same(d4j::fused::guide(x[0], x[1], x[2]), fl(r[10])), "guide == Java", i);
        check(same(d4j::fused::prediction(x[0], x[1], x[2], x[3]), fl(r[11])), "prediction == Java", i);
        check(same(d4j::fused::update(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9]), fl(r[12])),
              "update == Java", i);
        check(same(d4j::fused::noised(x[0], x[1], x[2], x[3]), fl(r[13])), "noised == Java", i);
        check(same(d4j::fused::offset(x[0], x[1], x[2]), fl(r[14])), "offset == Java", i);
        check(same(d4j::fused::scale_add(x[0], x[1], x[2], x[3]), fl(r[15])), "scaleAdd == Java", i);
    }
    const int srows = static_cast<int>(sizeof kRescaleGolden / sizeof kRescaleGolden[0]);
    for (int i = 0; i < srows; ++i) {
        const uint64_t *r = kRescaleGolden[i];
        const int64_t n = static_cast<int64_t>(r[0]);
        const double vc = d4j::fused::variance(n, db(r[1]), db(r[2]));
        const double vg = d4j::fused::variance(n, db(r[3]), db(r[4]));
        check(dbits(vc) == r[6], "variance(cond) == Java", i);
        check(dbits(vg) == r[7], "variance(guided) == Java", i);
        check(dbits(d4j::fused::rescale_factor(db(r[5]), vc, vg)) == r[8], "rescaleFactor == Java", i);
        check(bits(d4j::fused::rescale_of_sums(db(r[5]), n, db(r[1]), db(r[2]), db(r[3]), db(r[4]))) ==
                  static_cast<uint32_t>(r[9]),
              "(float) rescaleFactor == Java", i);
    }
}

void stats_tests() {
    // Shifted sums give the float64 two-pass population variance; factor formula against long double.
    std::mt19937_64 rng(7);
    std::normal_distribution<double> nd(3.0, 2.0);
    for (int t = 0; t < 20; ++t) {
        const int n = 1 + static_cast<int>(rng() % 5000);
        float v[5000];
        for (int i = 0; i < n; ++i) v[i] = static_cast<float>(nd(rng));
        double s1 = 0, s2 = 0;
        for (int i = 0; i < n; ++i) d4j::fused::accumulate(v[i], v[0], s1, s2);
        long double mean = 0;
        for (int i = 0; i < n; ++i) mean += v[i];
        mean /= n;
        long double var = 0;
        for (int i = 0; i < n; ++i) var += (v[i] - mean) * (v[i] - mean);
        var /= n;
        const double got = d4j::fused::variance(n, s1, s2);
        check(std::fabs(got - static_cast<double>(var)) <= 1e-12 * (static_cast<double>(var) + 1e-300) + 1e-15,
              "shifted-sum variance vs two-pass", t);
        const double phi = 0.7;
        const long double ref = phi * std::sqrt(static_cast<long double>(got) / 2.5L) + (1 - phi);
        check(std::fabs(d4j::fused::rescale_factor(phi, got, 2.5) - static_cast<double>(ref)) < 1e-14,
              "rescale factor vs long double", t);
    }
    check(d4j::fused::rescale_factor(0.0, 1.0, 2.0) == 1.0, "phi = 0 gives 1", 0);
    check(d4j::fused::rescale_factor(0.5, 1.0, 0.0) == 1.0, "var g = 0 gives 1", 0);
    check(d4j::fused::variance(0, 1.0, 1.0) == 0.0, "variance of nothing", 0);
    const double nan = std::nan("");
    check(std::isnan(d4j::fused::variance(3, nan, 1.0)), "variance NaN stays NaN (Math.max)", 0);
    check(dbits(d4j::fused::variance(4, 2.0, 1.0)) == dbits(0.0), "negative m2 clamps to +0", 0);
}

void layout_tests() {
    // Every element j of a sample is covered exactly once, by block (id*n + j) >> 2 at lane (id*n + j) & 3.
    const uint64_t ids[] = {0, 1, 2, 3, 5, 77, 0xFFFFFFFFFFFFFFFFull, 0x4000000000000001ull};
    const int64_t ns[] = {1, 2, 3, 4, 5, 7, 8, 13, 64, 101};
    int bad = 0;
    for (uint64_t id : ids) {
        for (int64_t n : ns) {
            const d4j::fused::NoiseLayout l = d4j::fused::noise_layout(id, n);
            const int64_t groups = d4j::fused::group_count(n, l.phase);
            int seen[101] = {0};
            for (int64_t g = 0; g < groups; ++g) {
                for (int k = 0; k < 4; ++k) {
                    const int64_t j = 4 * g + k - l.phase;
                    if (j < 0 || j >= n) continue;
                    ++seen[j];
                    const uint64_t idx = id * static_cast<uint64_t>(n) + static_cast<uint64_t>(j);
                    if (d4j::fused::group_block(l, static_cast<uint64_t>(g)) != (idx >> 2) ||
                        static_cast<uint64_t>(k) != (idx & 3u)) {
                        ++bad;
                    }
                }
            }
            for (int64_t j = 0; j < n; ++j) {
                if (seen[j] != 1) ++bad;
            }
            // The group count is minimal: the last group has an element.
            if (4 * (groups - 1) - l.phase >= n) ++bad;
        }
    }
    check(bad == 0, "Philox group layout covers each element once at its index", bad);
    // A group's four normals equal the per-element Philox normals.
    const uint64_t id = 3;
    const int64_t n = 7;
    const d4j::fused::NoiseLayout l = d4j::fused::noise_layout(id, n);
    int bad2 = 0;
    for (int64_t g = 0; g < d4j::fused::group_count(n, l.phase); ++g) {
        float z[4];
        d4j::philox_normal4(42, 9, d4j::fused::group_block(l, static_cast<uint64_t>(g)), z);
        for (int k = 0; k < 4; ++k) {
            const int64_t j = 4 * g + k - l.phase;
            if (j < 0 || j >= n) continue;
            if (bits(z[k]) != bits(d4j::philox_normal(42, 9, id * n + static_cast<uint64_t>(j)))) ++bad2;
        }
    }
    check(bad2 == 0, "group normals == per-element Philox normals", bad2);
}

}  // namespace

int main() {
    oracle_tests();
    golden_tests();
    stats_tests();
    layout_tests();
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
