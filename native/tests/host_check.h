// Shared by the host tests of the kernel math (test_*_math.cpp): pass/fail counting, bit views of floats and
// doubles, and float64 oracles of single float operations (the exact result rounded once to float; a double
// holds the exact product and, free of double rounding, the sum/difference/quotient of two floats). The
// volatile stores keep a compiler allowed to contract (-ffp-contract=fast) from narrowing an oracle into a
// float FMA. Header-only, internal linkage: each test is its own executable.
#ifndef DIFFUSION4J_HOST_CHECK_H
#define DIFFUSION4J_HOST_CHECK_H

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace {

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const char *what, int row) {
    if (ok) {
        ++g_passed;
    } else {
        ++g_failed;
        std::printf("FAILED: %s (row %d)\n", what, row);
    }
}

[[maybe_unused]] float fl(uint32_t u) {
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

[[maybe_unused]] uint32_t bits(float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}

[[maybe_unused]] double db(uint64_t u) {
    double x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

[[maybe_unused]] uint64_t dbits(double x) {
    uint64_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}

[[maybe_unused]] bool same(float a, float b) { return bits(a) == bits(b) || (std::isnan(a) && std::isnan(b)); }

[[maybe_unused]] float rmul(float a, float b) {
    volatile float r = static_cast<float>(static_cast<double>(a) * static_cast<double>(b));
    return r;
}
[[maybe_unused]] float radd(float a, float b) {
    volatile float r = static_cast<float>(static_cast<double>(a) + static_cast<double>(b));
    return r;
}
[[maybe_unused]] float rsub(float a, float b) {
    volatile float r = static_cast<float>(static_cast<double>(a) - static_cast<double>(b));
    return r;
}
[[maybe_unused]] float rdiv(float a, float b) {
    volatile float r = static_cast<float>(static_cast<double>(a) / static_cast<double>(b));
    return r;
}

}  // namespace

#endif  // DIFFUSION4J_HOST_CHECK_H
