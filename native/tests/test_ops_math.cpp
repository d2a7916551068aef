// Host tests of the kernel arithmetic (native/src/ops_math.cuh) and index maps (native/src/index_math.cuh)
// against double-precision references. Plain C++17; the .cuh files compile as host code here.
//
// Prints "<N> passed, <M> failed" and returns nonzero when anything failed.
#include <algorithm>
#include <cfloat>
#include <cstdarg>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "diffusion4j.h"
#include "elementwise.cuh"
#include "index_math.cuh"
#include "ops_math.cuh"

namespace {

long g_passed = 0;
long g_failed = 0;
int g_reported = 0;

void check(bool ok, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void check(bool ok, const char *what, const char *fmt, ...) {
    if (ok) {
        ++g_passed;
        return;
    }
    ++g_failed;
    if (g_reported++ < 40) {
        std::printf("FAIL %s: ", what);
        va_list args;
        va_start(args, fmt);
        std::vprintf(fmt, args);
        va_end(args);
        std::printf("\n");
    }
}

void check(bool ok, const char *what) { check(ok, what, "%s", "failed"); }

float f(uint32_t bits) { return d4j::bits_f32(bits); }
uint32_t bits(float x) { return d4j::f32_bits(x); }
const double kInf = std::numeric_limits<double>::infinity();

// ------------------------------------------------------------------ reference rounding

// x rounded to a binary format with p significand bits (implicit bit included), smallest normal exponent
// emin and largest finite value maxfinite; round to nearest, ties to even; overflow to +-Inf.
double ref_round(double x, int p, int emin, double maxfinite) {
    if (std::isnan(x) || std::isinf(x) || x == 0.0) {
        return x;
    }
    int e = std::ilogb(x);
    if (e < emin) {
        e = emin;  // subnormal range: fixed quantum 2^(emin - p + 1)
    }
    const double q = std::ldexp(x, p - 1 - e);  // exact
    const double r = std::nearbyint(q);          // default rounding mode: ties to even
    const double y = std::ldexp(r, e - (p - 1));
    if (std::fabs(y) > maxfinite) {
        return std::copysign(kInf, x);
    }
    return y;
}

const double kMaxF16 = 65504.0;
const double kMaxBf16 = std::ldexp(255.0, 120);  // (2 - 2^-7) * 2^127

double ref_f16(double x) { return ref_round(x, 11, -14, kMaxF16); }
double ref_bf16(double x) { return ref_round(x, 8, -126, kMaxBf16); }

// Independent binary16 decoder.
double decode_f16(uint16_t h) {
    const int s = h >> 15;
    const int e = (h >> 10) & 0x1f;
    const int m = h & 0x3ff;
    double v;
    if (e == 0x1f) {
        v = m == 0 ? kInf : std::numeric_limits<double>::quiet_NaN();
    } else if (e == 0) {
        v = std::ldexp(static_cast<double>(m), -24);
    } else {
        v = std::ldexp(static_cast<double>(1024 + m), e - 25);
    }
    return s ? -v : v;
}

bool same_value(double a, double b) {
    if (std::isnan(a) || std::isnan(b)) {
        return std::isnan(a) && std::isnan(b);
    }
    return a == b && std::signbit(a) == std::signbit(b);
}

// ------------------------------------------------------------------ conversions

void test_bf16() {
    // Exhaustive: every code decodes exactly and re-encodes to itself (NaNs stay NaN with their sign).
    int bad_roundtrip = 0;
    for (uint32_t h = 0; h <= 0xffff; ++h) {
        const float v = d4j::bf16_to_f32(static_cast<uint16_t>(h));
        const uint16_t back = d4j::f32_to_bf16(v);
        const bool nan = (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0;
        if (nan) {
            bad_roundtrip += !(std::isnan(v) && (back & 0x7f80) == 0x7f80 && (back & 0x7f) != 0 &&
                               (back & 0x8000) == (h & 0x8000) && (back & 0x40) != 0);
        } else {
            bad_roundtrip += back != h || bits(v) != (h << 16);
        }
    }
    check(bad_roundtrip == 0, "bf16 exhaustive round trip", "%d codes differ", bad_roundtrip);

    // Midpoints between neighbouring codes (ties) and one float ulp either side.
    int bad_mid = 0;
    for (uint32_t h = 0; h < 0x7f80; ++h) {
        for (int sign = 0; sign < 2; ++sign) {
            const double lo = d4j::bf16_to_f32(static_cast<uint16_t>(h));
            const double hi = h + 1 == 0x7f80 ? std::ldexp(1.0, 128) : d4j::bf16_to_f32(static_cast<uint16_t>(h + 1));
            const float mid = static_cast<float>((lo + hi) / 2);  // exact: 9 significant bits
            if (!std::isfinite(mid)) {
                continue;
            }
            const float cases[3] = {mid, std::nextafter(mid, -FLT_MAX), std::nextafter(mid, FLT_MAX)};
            for (float c : cases) {
                const float x = sign ? -c : c;
                bad_mid += !same_value(d4j::bf16_to_f32(d4j::f32_to_bf16(x)), ref_bf16(x));
            }
        }
    }
    check(bad_mid == 0, "bf16 ties and neighbours vs double reference", "%d cases differ", bad_mid);

    std::mt19937 rng(1234);
    int bad_rand = 0;
    for (int i = 0; i < 2000000; ++i) {
        const float x = f(rng());
        const double got = std::isnan(x) ? 0.0 : d4j::bf16_to_f32(d4j::f32_to_bf16(x));
        bad_rand += !std::isnan(x) && !same_value(got, ref_bf16(x));
    }
    check(bad_rand == 0, "bf16 random bit patterns vs double reference", "%d cases differ", bad_rand);

    struct Case {
        uint32_t in;
        uint16_t out;
        const char *name;
    } cases[] = {
        {0x3f800000u, 0x3f80, "1"},
        {0x3f808000u, 0x3f80, "1 + 2^-8 (tie, even down)"},
        {0x3f818000u, 0x3f82, "1 + 3*2^-8 (tie, even up)"},
        {0x3f808001u, 0x3f81, "just above a tie"},
        {0x7f7fffffu, 0x7f80, "FLT_MAX overflows to Inf"},
        {0x7f7f7fffu, 0x7f7f, "just below the overflow midpoint"},
        {0x7f7f8000u, 0x7f80, "overflow midpoint (tie to even = Inf)"},
        {0x7f800000u, 0x7f80, "+Inf"},
        {0xff800000u, 0xff80, "-Inf"},
        {0x80000000u, 0x8000, "-0"},
        {0x00000001u, 0x0000, "smallest subnormal rounds to 0"},
        {0x00008000u, 0x0000, "subnormal tie to even 0"},
        {0x00018000u, 0x0002, "subnormal tie to even 2"},
        {0x007fffffu, 0x0080, "largest subnormal rounds to smallest normal"},
        {0x7fc00000u, 0x7fc0, "quiet NaN"},
        {0x7f800001u, 0x7fc0, "signalling NaN with low payload stays NaN"},
        {0xffc00000u, 0xffc0, "negative NaN"},
    };
    for (const Case &c : cases) {
        const uint16_t got = d4j::f32_to_bf16(f(c.in));
        check(got == c.out, "bf16 edge", "%s: 0x%08x -> 0x%04x, expected 0x%04x", c.name, c.in, got, c.out);
    }
}

void test_f16() {
    int bad_decode = 0;
    int bad_roundtrip = 0;
    for (uint32_t h = 0; h <= 0xffff; ++h) {
        const float v = d4j::f16_to_f32(static_cast<uint16_t>(h));
        bad_decode += !same_value(v, decode_f16(static_cast<uint16_t>(h)));
        const uint16_t back = d4j::f32_to_f16(v);
        const bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
        if (nan) {
            bad_roundtrip += !((back & 0x7c00) == 0x7c00 && (back & 0x3ff) != 0 && (back & 0x8000) == (h & 0x8000) &&
                               (back & 0x200) != 0);
        } else {
            bad_roundtrip += back != h;
        }
    }
    check(bad_decode == 0, "f16 exhaustive decode vs independent decoder", "%d codes differ", bad_decode);
    check(bad_roundtrip == 0, "f16 exhaustive round trip", "%d codes differ", bad_roundtrip);

    int bad_mid = 0;
    for (uint32_t h = 0; h < 0x7c00; ++h) {
        for (int sign = 0; sign < 2; ++sign) {
            const double lo = decode_f16(static_cast<uint16_t>(h));
            const double hi = h + 1 == 0x7c00 ? 65536.0 : decode_f16(static_cast<uint16_t>(h + 1));
            const float mid = static_cast<float>((lo + hi) / 2);  // exact: 12 significant bits
            const float cases[3] = {mid, std::nextafter(mid, -FLT_MAX), std::nextafter(mid, FLT_MAX)};
            for (float c : cases) {
                const float x = sign ? -c : c;
                bad_mid += !same_value(d4j::f16_to_f32(d4j::f32_to_f16(x)), ref_f16(x));
            }
        }
    }
    check(bad_mid == 0, "f16 ties and neighbours vs double reference", "%d cases differ", bad_mid);

    std::mt19937 rng(5678);
    int bad_rand = 0;
    for (int i = 0; i < 2000000; ++i) {
        // Half of the draws in the f16 range (exponent 100..143) where the rounding work happens.
        uint32_t u = rng();
        if (i & 1) {
            u = (u & 0x807fffffu) | ((100u + (u >> 23) % 44u) << 23);
        }
        const float x = f(u);
        if (std::isnan(x)) {
            continue;
        }
        bad_rand += !same_value(d4j::f16_to_f32(d4j::f32_to_f16(x)), ref_f16(x));
    }
    check(bad_rand == 0, "f16 random bit patterns vs double reference", "%d cases differ", bad_rand);

    struct Case {
        float in;
        uint16_t out;
        const char *name;
    } cases[] = {
        {1.0f, 0x3c00, "1"},
        {65504.0f, 0x7bff, "max half"},
        {65519.99f, 0x7bff, "just below the overflow midpoint"},
        {65520.0f, 0x7c00, "overflow midpoint (tie to even = Inf)"},
        {1e10f, 0x7c00, "large overflows to Inf"},
        {-1e10f, 0xfc00, "large negative overflows to -Inf"},
        {FLT_MAX, 0x7c00, "FLT_MAX"},
        {std::ldexp(1.0f, -14), 0x0400, "smallest normal"},
        {std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25), 0x0400, "tie below the smallest normal rounds up (even)"},
        {std::ldexp(1.0f, -24), 0x0001, "smallest subnormal"},
        {std::ldexp(1.0f, -25), 0x0000, "half the smallest subnormal: tie to even 0"},
        {std::nextafter(std::ldexp(1.0f, -25), 1.0f), 0x0001, "just above that tie"},
        {std::ldexp(3.0f, -25), 0x0002, "1.5 units: tie to even 2"},
        {std::ldexp(5.0f, -25), 0x0002, "2.5 units: tie to even 2"},
        {std::ldexp(1.0f, -26), 0x0000, "a quarter unit"},
        {f(0x00000001u), 0x0000, "smallest float subnormal"},
        {-0.0f, 0x8000, "-0"},
        {-std::ldexp(1.0f, -30), 0x8000, "tiny negative rounds to -0"},
        {std::numeric_limits<float>::infinity(), 0x7c00, "+Inf"},
        {-std::numeric_limits<float>::infinity(), 0xfc00, "-Inf"},
        {f(0x7fc00000u), 0x7e00, "quiet NaN"},
        {f(0xffc00000u), 0xfe00, "negative NaN"},
        {1.0f + std::ldexp(1.0f, -11), 0x3c00, "1 + 2^-11 (tie, even down)"},
        {1.0f + std::ldexp(3.0f, -11), 0x3c02, "1 + 3*2^-11 (tie, even up)"},
    };
    for (const Case &c : cases) {
        const uint16_t got = d4j::f32_to_f16(c.in);
        check(got == c.out, "f16 edge", "%s: %a -> 0x%04x, expected 0x%04x", c.name, static_cast<double>(c.in), got,
              c.out);
    }
    // bf16 -> f16 through the exact f32 intermediate rounds once.
    const uint16_t b = d4j::f32_to_bf16(1.0f + std::ldexp(1.0f, -7));  // 1 + 2^-7, exact in both
    check(d4j::f32_to_f16(d4j::bf16_to_f32(b)) == 0x3c08, "bf16 -> f16 exact value", "got 0x%04x",
          d4j::f32_to_f16(d4j::bf16_to_f32(b)));
}

void test_int_and_encode() {
    using d4j::f32_to_i32_java;
    check(f32_to_i32_java(f(0x7fc00000u)) == 0, "i32 NaN -> 0");
    check(f32_to_i32_java(3e9f) == INT32_MAX, "i32 saturates high");
    check(f32_to_i32_java(-3e9f) == INT32_MIN, "i32 saturates low");
    check(f32_to_i32_java(2147483648.0f) == INT32_MAX, "i32 2^31 saturates");
    check(f32_to_i32_java(-2147483648.0f) == INT32_MIN, "i32 -2^31 exact");
    check(f32_to_i32_java(-2.7f) == -2, "i32 truncates toward zero");
    check(f32_to_i32_java(2.7f) == 2, "i32 truncates toward zero (positive)");
    check(d4j::encode_dtype(D4J_F32, -0.0f) == 0x80000000u, "encode F32 -0");
    check(d4j::encode_dtype(D4J_BF16, 1.0f) == 0x3f80u, "encode BF16 1");
    check(d4j::encode_dtype(D4J_F16, 1.0f) == 0x3c00u, "encode F16 1");
    check(d4j::encode_dtype(D4J_I32, 7.9f) == 7u, "encode I32 7.9");
    check(d4j::encode_dtype(D4J_I32, -1.0f) == 0xffffffffu, "encode I32 -1");
}

// ------------------------------------------------------------------ binary and unary ops

void test_binary() {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> u(-10.0f, 10.0f);
    int bad = 0;
    for (int i = 0; i < 200000; ++i) {
        const float a = u(rng);
        const float b = (i % 7 == 0) ? 0.0f : u(rng);
        for (int op = D4J_ADD; op <= D4J_MIN; ++op) {
            double ref;
            const double da = a, db = b;
            switch (op) {
            case D4J_ADD: ref = da + db; break;
            case D4J_SUB: ref = da - db; break;
            case D4J_MUL: ref = da * db; break;
            case D4J_DIV: ref = da / db; break;
            case D4J_MAX: ref = std::fmax(da, db); break;
            default: ref = std::fmin(da, db); break;
            }
            // +,-,*,/ in binary32 are correctly rounded; the double result rounded once more is the same
            // value (53 >= 2*24 + 2, so double rounding is harmless).
            bad += !same_value(d4j::binary_op(op, a, b), static_cast<float>(ref));
        }
    }
    check(bad == 0, "binary ops vs double reference", "%d results differ", bad);
    const float nan = f(0x7fc00000u);
    for (int op = D4J_MAX; op <= D4J_MIN; ++op) {
        check(std::isnan(d4j::binary_op(op, nan, 1.0f)), "max/min NaN first", "op %d", op);
        check(std::isnan(d4j::binary_op(op, 1.0f, nan)), "max/min NaN second", "op %d", op);
    }
    check(bits(d4j::binary_op(D4J_MAX, -0.0f, 0.0f)) == 0u, "max(-0, +0) = +0");
    check(bits(d4j::binary_op(D4J_MAX, 0.0f, -0.0f)) == 0u, "max(+0, -0) = +0");
    check(bits(d4j::binary_op(D4J_MIN, 0.0f, -0.0f)) == 0x80000000u, "min(+0, -0) = -0");
    check(bits(d4j::binary_op(D4J_MIN, -0.0f, 0.0f)) == 0x80000000u, "min(-0, +0) = -0");
    check(d4j::binary_op(D4J_MAX, -INFINITY, 3.0f) == 3.0f, "max(-Inf, 3)");
    check(std::isinf(d4j::binary_op(D4J_DIV, 1.0f, 0.0f)), "1/0 = Inf");
    check(std::isnan(d4j::binary_op(99, 1.0f, 2.0f)), "unknown binary op -> NaN");
}

double ulp_distance(float got, double ref) {
    if (std::isnan(ref) || std::isnan(got)) {
        return (std::isnan(ref) && std::isnan(got)) ? 0.0 : 1e30;
    }
    if (std::isinf(ref) || std::isinf(got)) {
        return (static_cast<double>(got) == ref) ? 0.0 : 1e30;
    }
    const float r = static_cast<float>(ref);
    const double ulp = std::fabs(static_cast<double>(std::nextafter(r, INFINITY)) - static_cast<double>(r));
    return std::fabs(static_cast<double>(got) - ref) / (ulp > 0 ? ulp : std::ldexp(1.0, -149));
}

double ref_unary(int op, double x) {
    switch (op) {
    case D4J_NEG: return -x;
    case D4J_ABS: return std::fabs(x);
    case D4J_EXP: return std::exp(x);
    case D4J_LOG: return std::log(x);
    case D4J_SQRT: return std::sqrt(x);
    case D4J_RSQRT: return 1.0 / std::sqrt(x);
    case D4J_SQUARE: return x * x;
    case D4J_RECIPROCAL: return 1.0 / x;
    case D4J_TANH: return std::tanh(x);
    default: return 1.0 / (1.0 + std::exp(-x));
    }
}

void test_unary() {
    // Exactly rounded ops must be exact (<= 0.5 ulp); library ones within 4 ulp (CUDA documents <= 2 ulp
    // for expf/tanhf and 1 ulp for logf; glibc is tighter).
    const double limit[10] = {0.5, 0.5, 4, 4, 0.5, 2, 0.5, 0.5, 4, 4};
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> wide(-80.0f, 80.0f);
    std::uniform_real_distribution<float> pos(1e-30f, 1e6f);
    for (int op = D4J_NEG; op <= D4J_SIGMOID; ++op) {
        double worst = 0.0;
        float worst_x = 0.0f;
        for (int i = 0; i < 100000; ++i) {
            const bool positive_domain = op == D4J_LOG || op == D4J_SQRT || op == D4J_RSQRT;
            float x = positive_domain ? pos(rng) : wide(rng);
            if (i % 3 == 0) {
                x = std::ldexp(x, -static_cast<int>(rng() % 20));  // small magnitudes too
            }
            const double d = ulp_distance(d4j::unary_op(op, x), ref_unary(op, static_cast<double>(x)));
            if (d > worst) {
                worst = d;
                worst_x = x;
            }
        }
        check(worst <= limit[op], "unary op accuracy", "op %d: %.2f ulp at x=%a", op, worst,
              static_cast<double>(worst_x));
    }
    const float inf = std::numeric_limits<float>::infinity();
    check(d4j::unary_op(D4J_SIGMOID, -200.0f) == 0.0f, "sigmoid(-200) = 0");
    check(d4j::unary_op(D4J_SIGMOID, 200.0f) == 1.0f, "sigmoid(200) = 1");
    check(d4j::unary_op(D4J_SIGMOID, -inf) == 0.0f, "sigmoid(-Inf) = 0");
    check(d4j::unary_op(D4J_SIGMOID, inf) == 1.0f, "sigmoid(Inf) = 1");
    check(d4j::unary_op(D4J_SIGMOID, 0.0f) == 0.5f, "sigmoid(0) = 0.5");
    check(d4j::unary_op(D4J_LOG, 0.0f) == -inf, "log(0) = -Inf");
    check(std::isnan(d4j::unary_op(D4J_LOG, -1.0f)), "log(-1) = NaN");
    check(std::isnan(d4j::unary_op(D4J_SQRT, -1.0f)), "sqrt(-1) = NaN");
    check(d4j::unary_op(D4J_RSQRT, 0.0f) == inf, "rsqrt(0) = Inf");
    check(d4j::unary_op(D4J_RSQRT, 4.0f) == 0.5f, "rsqrt(4) = 0.5");
    check(d4j::unary_op(D4J_RECIPROCAL, -0.0f) == -inf, "1/-0 = -Inf");
    check(d4j::unary_op(D4J_TANH, inf) == 1.0f && d4j::unary_op(D4J_TANH, -inf) == -1.0f, "tanh(+-Inf) = +-1");
    check(d4j::unary_op(D4J_EXP, -inf) == 0.0f && d4j::unary_op(D4J_EXP, 100.0f) == inf, "exp limits");
    check(bits(d4j::unary_op(D4J_ABS, -0.0f)) == 0u, "abs(-0) = +0");
    check(bits(d4j::unary_op(D4J_NEG, 0.0f)) == 0x80000000u, "neg(+0) = -0");
    check(std::isnan(d4j::unary_op(99, 1.0f)), "unknown unary op -> NaN");
    for (int op = D4J_NEG; op <= D4J_SIGMOID; ++op) {
        check(std::isnan(d4j::unary_op(op, f(0x7fc00000u))), "unary op keeps NaN", "op %d", op);
    }
}

void test_affine() {
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> u(-100.0f, 100.0f);
    double worst_axpby = 0.0;
    int bad_fma = 0;
    int bad_ss = 0;
    for (int i = 0; i < 200000; ++i) {
        const float a = u(rng), b = u(rng), c = u(rng), d = u(rng);
        // fma: one rounding of the exact a*b + c (the double sum may round once first: allow 1 ulp).
        const double exact_fma = static_cast<double>(a) * b + c;
        bad_fma += ulp_distance(d4j::fma3(a, b, c), exact_fma) > 0.5 + 1e-9 &&
                   d4j::fma3(a, b, c) != static_cast<float>(exact_fma);
        bad_ss += ulp_distance(d4j::scale_shift(a, b, c), exact_fma) > 0.5 + 1e-9 &&
                  d4j::scale_shift(a, b, c) != static_cast<float>(exact_fma);
        // axpby: fma(alpha, x, round(beta*y)): error bounded by the rounding of beta*y plus the final one.
        const double exact = static_cast<double>(a) * b + static_cast<double>(c) * d;
        const double err = std::fabs(d4j::axpby(a, b, c, d) - exact);
        const double bound = std::ldexp(1.0, -24) * (std::fabs(exact) + std::fabs(static_cast<double>(c) * d)) * 1.0001;
        worst_axpby = std::fmax(worst_axpby, err / (bound > 0 ? bound : 1.0));
    }
    check(bad_fma == 0, "fma single rounding", "%d differ", bad_fma);
    check(bad_ss == 0, "scale_shift single rounding", "%d differ", bad_ss);
    check(worst_axpby <= 1.0, "axpby error bound", "worst %.3f of the bound", worst_axpby);
    check(d4j::axpby(2.0f, 3.0f, -1.0f, 6.0f) == 0.0f, "axpby exact cancel");
}

// ------------------------------------------------------------------ reductions and softmax

void test_reduce() {
    d4j::SumAcc s;
    for (int i = 1; i <= 1000; ++i) {
        s.add(static_cast<float>(i));
    }
    check(s.v == 500500.0, "SumAcc exact integers");
    // Cancellation that float accumulation would lose.
    d4j::SumAcc c;
    c.add(1e8f);
    for (int i = 0; i < 1000; ++i) {
        c.add(1.0f);
    }
    c.add(-1e8f);
    check(c.v == 1000.0, "SumAcc keeps small terms next to large ones", "got %f", c.v);
    check(std::isnan(d4j::reduce_finish(D4J_MEAN, 0.0, 0.0f, 0)), "MEAN of 0 columns is NaN");
    check(d4j::reduce_finish(D4J_MEAN, 10.0, 0.0f, 4) == 2.5f, "MEAN divides by cols");
    check(d4j::reduce_finish(D4J_SUM, 10.0, 0.0f, 4) == 10.0f, "SUM");
    check(d4j::reduce_finish(D4J_RMAX, 10.0, 7.0f, 4) == 7.0f, "MAX");

    d4j::MaxAcc m;
    check(m.v == -INFINITY, "MaxAcc identity is -Inf");
    m.add(-3.0f);
    m.add(5.0f);
    m.add(2.0f);
    check(m.v == 5.0f, "MaxAcc");
    m.add(f(0x7fc00000u));
    m.add(9.0f);
    check(std::isnan(m.v), "MaxAcc propagates NaN");
    d4j::MaxAcc m2;
    m2.merge(-0.0f);
    m2.merge(0.0f);
    check(bits(m2.v) == 0u, "MaxAcc max(-0, +0) = +0");

    check(d4j::square_f64(3.0f) == 9.0, "square_f64");
    const float big = std::ldexp(1.0f, 100) * 1.2345678f;
    check(d4j::square_f64(big) == static_cast<double>(big) * static_cast<double>(big), "square_f64 exact for large");
}

// Softmax of row via the online accumulator in the kernels' grouping: per-"thread" partials over strided
// float4 groups and singles, merged in a tree. Returns the outputs exp(x - m) / s.
std::vector<float> softmax_online(const std::vector<float> &row, int threads, int head) {
    std::vector<d4j::SoftmaxAcc> acc(threads);
    const int cols = static_cast<int>(row.size());
    const int h = head < cols ? head : cols;
    for (int t = 0; t < threads; ++t) {
        for (int c = t; c < h; c += threads) {
            acc[t].add(row[c]);
        }
        const int groups = (cols - h) / 4;
        for (int g = t; g < groups; g += threads) {
            const int c = h + 4 * g;
            acc[t].add4(row[c], row[c + 1], row[c + 2], row[c + 3]);
        }
        for (int c = h + groups * 4 + t; c < cols; c += threads) {
            acc[t].add(row[c]);
        }
    }
    for (int w = 1; w < threads; w *= 2) {  // xor-tree order is irrelevant to the value up to rounding
        for (int t = 0; t + w < threads; t += 2 * w) {
            acc[t].merge(acc[t + w].m, acc[t + w].s);
        }
    }
    std::vector<float> out(row.size());
    const float inv = 1.0f / acc[0].s;
    for (int c = 0; c < cols; ++c) {
        out[c] = std::exp(row[c] - acc[0].m) * inv;
    }
    return out;
}

std::vector<double> softmax_ref(const std::vector<float> &row) {
    double m = -kInf;
    for (float x : row) {
        m = std::isnan(m) ? m : (std::isnan(x) ? x : std::fmax(m, static_cast<double>(x)));
    }
    double s = 0.0;
    for (float x : row) {
        s += std::exp(static_cast<double>(x) - m);
    }
    std::vector<double> out(row.size());
    for (size_t c = 0; c < row.size(); ++c) {
        out[c] = std::exp(static_cast<double>(row[c]) - m) / s;
    }
    return out;
}

void test_softmax() {
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.0f, 4.0f);
    const int sizes[] = {1, 2, 3, 5, 31, 32, 33, 100, 1000, 1025, 4099};
    double worst = 0.0;
    for (int cols : sizes) {
        for (int rep = 0; rep < 3; ++rep) {
            std::vector<float> row(cols);
            for (float &x : row) {
                x = nd(rng) + (rep == 2 ? 1000.0f : 0.0f);  // large offsets: max subtraction matters
            }
            if (rep == 1 && cols > 3) {
                row[0] = -INFINITY;  // leading -Inf must not poison the running sum
                row[2] = -INFINITY;
            }
            const std::vector<double> ref = softmax_ref(row);
            for (int threads : {1, 4, 32}) {
                for (int head = 0; head < 4; ++head) {
                    const std::vector<float> got = softmax_online(row, threads, head);
                    double num = 0.0, den = 0.0;
                    for (int c = 0; c < cols; ++c) {
                        num += (got[c] - ref[c]) * (got[c] - ref[c]);
                        den += ref[c] * ref[c];
                    }
                    worst = std::fmax(worst, std::sqrt(num / den));
                }
            }
        }
    }
    check(worst < 1e-5, "softmax online vs double two-pass", "worst relative L2 error %.3g", worst);

    auto all_nan = [](const std::vector<float> &v) {
        for (float x : v) {
            if (!std::isnan(x)) {
                return false;
            }
        }
        return true;
    };
    check(all_nan(softmax_online({-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY}, 2, 1)),
          "softmax all -Inf -> NaN (like the two-pass form)");
    check(all_nan(softmax_online({1.0f, INFINITY, 2.0f, 3.0f, 4.0f}, 2, 0)), "softmax with +Inf -> NaN");
    check(all_nan(softmax_online({1.0f, f(0x7fc00000u), 2.0f, 3.0f, 4.0f, 5.0f}, 3, 2)), "softmax with NaN -> NaN");
    check(softmax_online({-7.0f}, 1, 0)[0] == 1.0f, "softmax of one element = 1");
    std::vector<float> half = softmax_online({-INFINITY, 0.0f, -INFINITY, 0.0f, -INFINITY}, 2, 1);
    check(half[0] == 0.0f && half[1] == 0.5f && half[3] == 0.5f && half[4] == 0.0f, "softmax with -Inf entries",
          "%g %g %g %g %g", half[0], half[1], half[2], half[3], half[4]);
}

// ------------------------------------------------------------------ index maps

void test_rowcol() {
    std::mt19937 rng(3);
    int bad = 0;
    for (int rep = 0; rep < 2000; ++rep) {
        const uint32_t cols = 1 + rng() % (rep % 2 ? 7 : 3000);
        const uint32_t step = 1 + rng() % 5000;
        const uint32_t start = rng() % 10000;
        d4j::RowCol<uint32_t> rc(start, step, cols);
        uint32_t i = start;
        for (int k = 0; k < 50; ++k, i += step, rc.advance()) {
            bad += rc.r != i / cols || rc.c != i % cols;
            uint32_t r = rc.r, c = rc.c;
            for (uint32_t j = 1; j < 4; ++j) {
                d4j::next_rc(r, c, cols);
                bad += r != (i + j) / cols || c != (i + j) % cols;
            }
        }
    }
    // 64-bit beyond 2^32.
    d4j::RowCol<int64_t> big(int64_t(5) << 32, int64_t(3) << 30, 1000003);
    int64_t i = int64_t(5) << 32;
    for (int k = 0; k < 1000; ++k, i += int64_t(3) << 30, big.advance()) {
        bad += big.r != i / 1000003 || big.c != i % 1000003;
    }
    check(bad == 0, "RowCol walker and next_rc vs division", "%d mismatches", bad);
}

// Copies `src` viewed with (shape, strides) into a contiguous buffer through the plan, replaying the kernels'
// index maps on the host; compares with a direct multi-index loop. Returns the plan kind used.
int copy_case(int elem, const std::vector<int64_t> &shape, const std::vector<int64_t> &strides, int64_t base_elems,
              const std::vector<uint8_t> &storage, const char *name, int expect_kind = -1, int expect_elem = -1) {
    const int rank = static_cast<int>(shape.size());
    int64_t numel = 1;
    for (int64_t s : shape) {
        numel *= s;
    }
    // Reference.
    std::vector<uint8_t> ref(static_cast<size_t>(numel * elem), 0);
    std::vector<int64_t> idx(rank, 0);
    for (int64_t i = 0; i < numel; ++i) {
        int64_t off = base_elems;
        for (int d = 0; d < rank; ++d) {
            off += idx[d] * strides[d];
        }
        std::memcpy(&ref[static_cast<size_t>(i * elem)], &storage[static_cast<size_t>(off * elem)], elem);
        for (int d = rank - 1; d >= 0; --d) {
            if (++idx[d] < shape[d]) {
                break;
            }
            idx[d] = 0;
        }
    }
    const uint8_t *src = storage.data() + base_elems * elem;
    std::vector<uint8_t> dst(static_cast<size_t>(numel * elem) + 16, 0xcd);
    uint8_t *dst_aligned = dst.data();
    while (reinterpret_cast<uintptr_t>(dst_aligned) % 16 != 0) {
        ++dst_aligned;
    }
    d4j::CopyPlan p;
    const bool ok = d4j::plan_copy(&p, elem, rank, shape.data(), strides.data(), reinterpret_cast<uintptr_t>(src),
                                   reinterpret_cast<uintptr_t>(dst_aligned));
    check(ok, "plan_copy accepts", "%s", name);
    if (!ok) {
        return -1;
    }
    std::vector<int> writes(static_cast<size_t>(p.numel), 0);
    const int64_t es = p.elem_size;
    int out_of_bounds = 0;
    auto in_storage = [&](int64_t off) {  // element offset from src, in planned elements
        const int64_t byte = base_elems * elem + off * es;
        return byte >= 0 && byte + es <= static_cast<int64_t>(storage.size());
    };
    if (p.kind == d4j::COPY_CONTIGUOUS) {
        std::memcpy(dst_aligned, src, static_cast<size_t>(p.numel * es));
        std::fill(writes.begin(), writes.end(), 1);
    } else if (p.kind == d4j::COPY_GENERAL) {
        for (int64_t i = 0; i < p.numel; ++i) {
            const int64_t off = p.numel <= INT32_MAX ? d4j::copy_src_offset<uint32_t>(p, static_cast<uint32_t>(i))
                                                     : d4j::copy_src_offset<int64_t>(p, i);
            if (!in_storage(off)) {
                ++out_of_bounds;
                continue;
            }
            std::memcpy(dst_aligned + i * es, src + off * es, static_cast<size_t>(es));
            ++writes[static_cast<size_t>(i)];
        }
    } else if (p.kind == d4j::COPY_TRANSPOSE) {
        const int64_t tj = d4j::transpose_tiles_j(p), tl = d4j::transpose_tiles_l(p);
        const int64_t nj = p.shape[p.tdim], nl = p.shape[p.rank - 1];
        const int64_t tiles = p.numel / (nj * nl) * tj * tl;
        const int64_t sl = p.sstride[p.rank - 1], dj = p.dstride[p.tdim];
        for (int64_t t = 0; t < tiles; ++t) {
            const d4j::TransposeTile tt = d4j::transpose_tile(p, t, tj, tl);
            for (int a = 0; a < d4j::kTile; ++a) {
                for (int b = 0; b < d4j::kTile; ++b) {
                    const int64_t j = tt.j0 + a, l = tt.l0 + b;
                    if (j < nj && l < nl) {
                        const int64_t d = tt.dst_base + j * dj + l;
                        const int64_t s = tt.src_base + j + l * sl;
                        if (d < 0 || d >= p.numel || !in_storage(s)) {
                            ++out_of_bounds;
                            continue;
                        }
                        std::memcpy(dst_aligned + d * es, src + s * es, static_cast<size_t>(es));
                        ++writes[static_cast<size_t>(d)];
                    }
                }
            }
        }
    }
    check(out_of_bounds == 0, "copy plan stays in bounds", "%s: %d accesses out of bounds (kind %d)", name,
          out_of_bounds, p.kind);
    int multiple = 0;
    for (int w : writes) {
        multiple += w != 1;
    }
    check(multiple == 0, "copy plan writes every element once", "%s: %d elements written != 1 times (kind %d)", name,
          multiple, p.kind);
    check(std::memcmp(dst_aligned, ref.data(), ref.size()) == 0, "copy plan result", "%s (kind %d, elem %d, rank %d)",
          name, p.kind, p.elem_size, p.rank);
    if (expect_kind >= 0) {
        check(p.kind == expect_kind, "copy plan kind", "%s: kind %d, expected %d", name, p.kind, expect_kind);
    }
    if (expect_elem >= 0) {
        check(p.elem_size == expect_elem, "copy plan widening", "%s: elem %d, expected %d", name, p.elem_size,
              expect_elem);
    }
    return p.kind;
}

std::vector<int64_t> contiguous_strides(const std::vector<int64_t> &shape) {
    std::vector<int64_t> s(shape.size());
    int64_t run = 1;
    for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
        s[d] = run;
        run *= shape[d];
    }
    return s;
}

void test_copy_plan() {
    std::vector<uint8_t> storage(1 << 22);
    std::mt19937 rng(17);
    for (uint8_t &b : storage) {
        b = static_cast<uint8_t>(rng());
    }
    // storage.data() is at least 16-byte aligned (operator new).
    // Contiguous.
    copy_case(4, {3, 5, 7}, contiguous_strides({3, 5, 7}), 0, storage, "contiguous", d4j::COPY_CONTIGUOUS);
    copy_case(2, {1, 1, 1}, {0, 0, 0}, 3, storage, "single element", d4j::COPY_CONTIGUOUS);
    // Transpose of the last two dims: [B, M, N] -> [B, N, M].
    copy_case(4, {3, 40, 70}, {40 * 70, 1, 70}, 0, storage, "transposeLast2 f32", d4j::COPY_TRANSPOSE);
    copy_case(2, {2, 33, 65}, {33 * 65, 1, 33}, 5, storage, "transposeLast2 bf16 ragged", d4j::COPY_TRANSPOSE);
    copy_case(1, {64, 9}, {1, 64}, 1, storage, "transpose bytes", d4j::COPY_TRANSPOSE);
    copy_case(8, {9, 100}, {1, 9}, 0, storage, "transpose 8-byte", d4j::COPY_TRANSPOSE);
    // Attention head split [B, T, H, D] -> [B, H, T, D], D = 64 f32: widened to 16-byte elements.
    {
        const std::vector<int64_t> shape = {2, 4, 50, 64};  // permuted view shape [B, H, T, D]
        const std::vector<int64_t> s = {50 * 4 * 64, 64, 4 * 64, 1};
        copy_case(4, shape, s, 0, storage, "head split f32", d4j::COPY_GENERAL, 16);
        copy_case(4, shape, s, 1, storage, "head split f32 misaligned base", d4j::COPY_GENERAL, 4);
        copy_case(2, shape, s, 4, storage, "head split bf16, 8-byte aligned base", d4j::COPY_GENERAL, 8);
    }
    // Slices with gaps, zero strides (expand), negative strides.
    copy_case(4, {5, 6}, {20, 2}, 0, storage, "strided slice", d4j::COPY_GENERAL);
    copy_case(4, {4, 8}, {0, 1}, 0, storage, "broadcast rows (stride 0)", d4j::COPY_GENERAL, 16);
    copy_case(4, {10, 3}, {-3, 1}, 40, storage, "negative stride", d4j::COPY_GENERAL);
    copy_case(4, {3, 0, 5}, {0, 0, 0}, 0, storage, "empty", d4j::COPY_EMPTY);
    // Merging: a [4, 6] slice of [4, 8] rows keeps 2 dims; [2, 3, 4] contiguous inside a sliced outer dim merges.
    copy_case(4, {4, 6}, {8, 1}, 0, storage, "row slice");
    copy_case(4, {2, 3, 4}, {24, 4, 1}, 0, storage, "sliced outer dim merges inner", d4j::COPY_GENERAL, 16);

    // Random permutations of random shapes (rank 1..6), random element sizes and base offsets.
    int kinds[4] = {0, 0, 0, 0};
    for (int rep = 0; rep < 400; ++rep) {
        const int elem = 1 << (rng() % 4);
        const int rank = 1 + static_cast<int>(rng() % 6);
        std::vector<int64_t> base_shape(rank);
        int64_t numel = 1;
        for (int d = 0; d < rank; ++d) {
            base_shape[d] = 1 + rng() % (rank <= 2 ? 70 : 9);
            numel *= base_shape[d];
        }
        if (numel * elem * 2 > static_cast<int64_t>(storage.size())) {
            continue;
        }
        const std::vector<int64_t> base_strides = contiguous_strides(base_shape);
        std::vector<int> perm(rank);
        for (int d = 0; d < rank; ++d) {
            perm[d] = d;
        }
        std::shuffle(perm.begin(), perm.end(), rng);
        std::vector<int64_t> shape(rank), strides(rank);
        for (int d = 0; d < rank; ++d) {
            shape[d] = base_shape[perm[d]];
            strides[d] = base_strides[perm[d]];
        }
        const int64_t base = rng() % 8;
        char name[64];
        std::snprintf(name, sizeof name, "random permutation #%d", rep);
        const int kind = copy_case(elem, shape, strides, base, storage, name);
        if (kind >= 0) {
            ++kinds[kind];
        }
    }
    check(kinds[d4j::COPY_TRANSPOSE] > 20 && kinds[d4j::COPY_GENERAL] > 20 && kinds[d4j::COPY_CONTIGUOUS] > 5,
          "random permutations exercise every kernel", "contiguous %d, transpose %d, general %d",
          kinds[d4j::COPY_CONTIGUOUS], kinds[d4j::COPY_TRANSPOSE], kinds[d4j::COPY_GENERAL]);

    // Arbitrary strided views: random extents and strides (zero and negative included), base mid-storage.
    for (int rep = 0; rep < 400; ++rep) {
        const int elem = 1 << (rng() % 4);
        const int rank = 1 + static_cast<int>(rng() % 5);
        std::vector<int64_t> shape(rank), strides(rank);
        int64_t span = 0;
        for (int d = 0; d < rank; ++d) {
            shape[d] = 1 + rng() % 12;
            strides[d] = static_cast<int64_t>(rng() % 41) - 8;
            if (rng() % 3 == 0) {
                strides[d] = rng() % 2 ? 1 : 4 * (1 + rng() % 8);  // unit and 16-byte-friendly strides
            }
            span += (shape[d] - 1) * (strides[d] < 0 ? -strides[d] : strides[d]);
        }
        const int64_t base = static_cast<int64_t>(storage.size()) / elem / 2 + rng() % 4;
        if ((base + span + 1) * elem > static_cast<int64_t>(storage.size())) {
            continue;
        }
        char name[64];
        std::snprintf(name, sizeof name, "random strided view #%d", rep);
        copy_case(elem, shape, strides, base, storage, name);
    }
    copy_case(4, {4, 6}, {7, 1}, 0, storage, "odd outer stride blocks widening", d4j::COPY_GENERAL, 4);
    copy_case(4, {4, 6}, {6, 1}, 0, storage, "contiguous 2-d merges", d4j::COPY_CONTIGUOUS, 4);

    // Invalid requests.
    d4j::CopyPlan p;
    const int64_t sh[2] = {2, 3}, st[2] = {3, 1};
    check(!d4j::plan_copy(&p, 3, 2, sh, st, 0, 0), "plan_copy rejects elem_size 3");
    check(!d4j::plan_copy(&p, 4, 9, sh, st, 0, 0), "plan_copy rejects rank 9");
    const int64_t neg[2] = {-1, 3};
    check(!d4j::plan_copy(&p, 4, 2, neg, st, 0, 0), "plan_copy rejects a negative extent");
    const int64_t huge[2] = {INT64_MAX / 2, 3};
    check(!d4j::plan_copy(&p, 4, 2, huge, st, 0, 0), "plan_copy rejects an overflowing byte count");
    check(d4j::plan_copy(&p, 4, 0, nullptr, nullptr, 0, 0) && p.kind == d4j::COPY_CONTIGUOUS && p.numel == 1,
          "rank 0 is one element");
}

// Replays a whole launch of the elementwise kernel body (every thread of a small grid) and checks each
// output element against a direct evaluation, with NaN-poisoned outputs so unwritten elements fail.
template <int N, typename Fn>
int replay_ew(const d4j::EwArgs<N> &args, const Fn &fn, int64_t blocks, int64_t threads) {
    const int64_t stride = blocks * threads;
    for (int64_t t = 0; t < stride; ++t) {
        const uint32_t t32 = static_cast<uint32_t>(t), s32 = static_cast<uint32_t>(stride);
        if (args.need_rc) {
            d4j::ew_thread<uint32_t, N, Fn, true>(args, fn, t32, s32);
        } else if (t % 2 == 0) {  // both index widths and both walker variants must agree
            d4j::ew_thread<uint32_t, N, Fn, false>(args, fn, t32, s32);
        } else {
            d4j::ew_thread<int64_t, N, Fn, true>(args, fn, t, stride);
        }
    }
    int bad = 0;
    for (int64_t i = 0; i < args.n; ++i) {
        const int64_t r = i / args.cols, c = i % args.cols;
        float x[3] = {0.0f, 0.0f, 0.0f};
        for (int k = 0; k < N; ++k) {
            const d4j::Operand &o = args.in[k];
            switch (o.src) {
            case d4j::SRC_TENSOR: x[k] = o.p[i]; break;
            case d4j::SRC_SCALAR: x[k] = o.p[0]; break;
            case d4j::SRC_ROW: x[k] = o.p[c]; break;
            case d4j::SRC_PER_ROW: x[k] = o.p[r]; break;
            default: x[k] = o.imm; break;
            }
        }
        const float want = fn(x[0], x[1], x[2]);
        bad += !(bits(args.out[i]) == bits(want));
    }
    return bad;
}

void test_elementwise_replay() {
    std::mt19937 rng(23);
    std::uniform_real_distribution<float> u(-3.0f, 3.0f);
    const int64_t shapes[][2] = {{1, 1}, {1, 3}, {1, 4}, {1, 5}, {3, 7}, {7, 3}, {5, 1}, {1, 1000}, {13, 17},
                                 {4, 64}, {2, 130}, {129, 3}, {31, 33}};
    int bad = 0;
    int cases = 0;
    std::vector<float> a(8192 + 8), b(8192 + 8), c(8192 + 8), out(8192 + 8);
    for (float &v : a) v = u(rng);
    for (float &v : b) v = u(rng);
    for (float &v : c) v = u(rng);
    for (const auto &sh : shapes) {
        const int64_t rows = sh[0], cols = sh[1];
        for (int bb = D4J_BCAST_NONE; bb <= d4j::SRC_IMM; ++bb) {
            for (int cb = D4J_BCAST_NONE; cb <= D4J_BCAST_PER_ROW; ++cb) {
                for (int offset = 0; offset < 2; ++offset) {  // 0: aligned (vec), 1: one float off (scalar)
                    for (int64_t blocks : {1, 3}) {
                        for (int64_t threads : {1, 32, 256}) {
                            // a, b, c are vectors of floats: their data() is 16-byte aligned (operator new).
                            std::fill(out.begin(), out.end(), std::numeric_limits<float>::quiet_NaN());
                            d4j::EwArgs<3> args;
                            args.out = out.data() + offset;
                            args.in[0] = {a.data() + offset, d4j::SRC_TENSOR, 0.0f};
                            args.in[1] = {b.data() + offset, bb, 1.5f};
                            args.in[2] = {c.data() + offset, cb, 0.0f};
                            args.n = rows * cols;
                            args.cols = cols;
                            args.vec = offset == 0;
                            args.need_rc = bb == d4j::SRC_ROW || bb == d4j::SRC_PER_ROW || cb == d4j::SRC_ROW ||
                                           cb == d4j::SRC_PER_ROW;
                            bad += replay_ew(args, d4j::FmaFn{}, blocks, threads);
                            // Nothing beyond n was touched.
                            bad += !std::isnan(out[static_cast<size_t>(rows * cols + offset)]);
                            if (offset == 1) {
                                bad += !std::isnan(out[0]);
                            }
                            d4j::EwArgs<2> args2;
                            args2.out = args.out;
                            args2.in[0] = args.in[0];
                            args2.in[1] = args.in[1];
                            args2.n = args.n;
                            args2.cols = cols;
                            args2.vec = args.vec;
                            args2.need_rc = bb == d4j::SRC_ROW || bb == d4j::SRC_PER_ROW;
                            bad += replay_ew(args2, d4j::BinaryFn<D4J_MAX>{}, blocks, threads);
                            ++cases;
                        }
                    }
                }
            }
        }
    }
    check(bad == 0, "elementwise launch replay (all broadcast modes, vec/scalar, tails, grids)",
          "%d mismatches in %d cases", bad, cases);
    // In-place: out aliases a.
    std::vector<float> x(103);
    for (float &v : x) v = u(rng);
    std::vector<float> want(x.size());
    for (size_t i = 0; i < x.size(); ++i) want[i] = d4j::unary_op(D4J_EXP, x[i]);
    d4j::EwArgs<1> args;
    args.out = x.data();
    args.in[0] = {x.data(), d4j::SRC_TENSOR, 0.0f};
    args.n = static_cast<int64_t>(x.size());
    args.cols = args.n;
    args.vec = true;
    args.need_rc = false;
    for (uint32_t t = 0; t < 64; ++t) {
        d4j::ew_thread<uint32_t, 1, d4j::UnaryFn<D4J_EXP>, false>(args, d4j::UnaryFn<D4J_EXP>{}, t, 64u);
    }
    check(std::memcmp(x.data(), want.data(), x.size() * sizeof(float)) == 0, "elementwise in place");
}

}  // namespace

int main() {
    test_bf16();
    test_f16();
    test_int_and_encode();
    test_binary();
    test_unary();
    test_affine();
    test_reduce();
    test_softmax();
    test_rowcol();
    test_copy_plan();
    test_elementwise_replay();
    std::printf("%ld passed, %ld failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
