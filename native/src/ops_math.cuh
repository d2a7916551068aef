/*
 * The arithmetic of the elementwise, cast, reduction and softmax kernels as __host__ __device__ inline
 * functions, so the host test (native/tests/test_ops_math.cpp, plain g++) checks exactly what the kernels
 * compute. No indexing here; see index_math.cuh for that.
 *
 * Semantics follow org.diffusion4j.tensor.Ops (Java): MAX/MIN propagate NaN and order -0 < +0 like
 * Math.max/Math.min; float conversions round to nearest even; NaN stays NaN (quiet, sign kept).
 */
#ifndef D4J_OPS_MATH_CUH
#define D4J_OPS_MATH_CUH

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "diffusion4j.h"

#ifdef __CUDACC__
#define D4J_HD __host__ __device__ __forceinline__
#else
#define D4J_HD inline
#endif

namespace d4j {

// ------------------------------------------------------------------ bit casts

D4J_HD uint32_t f32_bits(float f) {
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
#endif
}

D4J_HD float bits_f32(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

D4J_HD float f32_inf() { return bits_f32(0x7f800000u); }
D4J_HD float f32_nan() { return bits_f32(0x7fc00000u); }

// ------------------------------------------------------------------ float conversions (RNE)

/* binary32 -> bfloat16, round to nearest even; overflow rounds to Inf; NaN -> quiet NaN, sign kept. */
D4J_HD uint16_t f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return static_cast<uint16_t>((u >> 16) | 0x0040u);
    }
    u += 0x7fffu + ((u >> 16) & 1u);  // ties go to the even upper half; carries into the exponent
    return static_cast<uint16_t>(u >> 16);
}

/* bfloat16 -> binary32 (exact). */
D4J_HD float bf16_to_f32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

/* binary32 -> binary16, round to nearest even, subnormals included; |f| >= 65520 -> Inf; NaN -> quiet
 * NaN with the top payload bits and the sign kept. */
D4J_HD uint16_t f32_to_f16(float f) {
    const uint32_t u = f32_bits(f);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) {
        return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x03ffu));
    }
    if (a >= 0x477ff000u) {  // 65520 = halfway between 65504 (max half) and 65536: ties to even = Inf
        return static_cast<uint16_t>(sign | 0x7c00u);
    }
    if (a >= 0x38800000u) {  // >= 2^-14: normal half. Rebias exponent 127 -> 15, round off 13 bits.
        uint32_t m = a - 0x38000000u;
        m += 0x0fffu + ((m >> 13) & 1u);
        return static_cast<uint16_t>(sign | (m >> 13));
    }
    // Subnormal half (or zero): result = round(|f| / 2^-24) in units of the smallest subnormal.
    const uint32_t exp = a >> 23;
    if (exp < 102) {  // |f| < 2^-25: below half the smallest subnormal (exactly 2^-25 is exp 102)
        return static_cast<uint16_t>(sign);
    }
    const uint32_t mant = (a & 0x007fffffu) | 0x00800000u;  // 24 bits, value = mant * 2^(exp-150)
    const uint32_t shift = 126u - exp;                      // 14..24
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) {
        ++q;  // may carry to 0x400 = the smallest normal, which is the right encoding
    }
    return static_cast<uint16_t>(sign | q);
}

/* binary16 -> binary32 (exact). */
D4J_HD float f16_to_f32(uint16_t h) {
    const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t mant = h & 0x03ffu;
    if (exp == 0x1fu) {
        return bits_f32(sign | 0x7f800000u | (mant << 13));
    }
    if (exp == 0) {
        // mant * 2^-24, exact in binary32; sign applied by bits so -0 stays -0
        const float mag = static_cast<float>(mant) * 5.9604644775390625e-8f;
        return bits_f32(sign | f32_bits(mag));
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

/* Java's (int) cast of a float: NaN -> 0, saturating, truncation toward zero. */
D4J_HD int32_t f32_to_i32_java(float f) {
    if (f != f) {
        return 0;
    }
    if (f >= 2147483648.0f) {
        return INT32_MAX;
    }
    if (f <= -2147483648.0f) {
        return INT32_MIN;
    }
    return static_cast<int32_t>(f);
}

/* Float value -> storage bits of dtype (F32/I32: 32 bits, BF16/F16: 16 bits in the low half). */
D4J_HD uint32_t encode_dtype(int dtype, float value) {
    switch (dtype) {
    case D4J_BF16: return f32_to_bf16(value);
    case D4J_F16: return f32_to_f16(value);
    case D4J_I32: return static_cast<uint32_t>(f32_to_i32_java(value));
    default: return f32_bits(value);
    }
}

// ------------------------------------------------------------------ binary ops (Ops.Binary)

/* Math.max(a, b): NaN if either is NaN, max(-0, +0) = +0. */
D4J_HD float max_java(float a, float b) {
    if (a != a) {
        return a;
    }
    if (a == 0.0f && b == 0.0f && f32_bits(a) == 0x80000000u) {
        return b;
    }
    return a >= b ? a : b;
}

/* Math.min(a, b): NaN if either is NaN, min(-0, +0) = -0. */
D4J_HD float min_java(float a, float b) {
    if (a != a) {
        return a;
    }
    if (a == 0.0f && b == 0.0f && f32_bits(b) == 0x80000000u) {
        return b;
    }
    return a <= b ? a : b;
}

template <int OP>
D4J_HD float binary_op(float a, float b) {
    static_assert(OP >= D4J_ADD && OP <= D4J_MIN, "unknown binary op");
    if constexpr (OP == D4J_ADD) {
        return a + b;
    } else if constexpr (OP == D4J_SUB) {
        return a - b;
    } else if constexpr (OP == D4J_MUL) {
        return a * b;
    } else if constexpr (OP == D4J_DIV) {
        return a / b;
    } else if constexpr (OP == D4J_MAX) {
        return max_java(a, b);
    } else {
        return min_java(a, b);
    }
}

/* Runtime-dispatched form (host tests, host fallbacks). NaN for an unknown op. */
D4J_HD float binary_op(int op, float a, float b) {
    switch (op) {
    case D4J_ADD: return binary_op<D4J_ADD>(a, b);
    case D4J_SUB: return binary_op<D4J_SUB>(a, b);
    case D4J_MUL: return binary_op<D4J_MUL>(a, b);
    case D4J_DIV: return binary_op<D4J_DIV>(a, b);
    case D4J_MAX: return binary_op<D4J_MAX>(a, b);
    case D4J_MIN: return binary_op<D4J_MIN>(a, b);
    default: return f32_nan();
    }
}

// ------------------------------------------------------------------ unary ops (Ops.Unary)

/* IEEE-accurate forms (no fast-math intrinsics): RSQRT is 1/sqrt (two correctly rounded steps, not the
 * approximate rsqrtf), SIGMOID is 1/(1+exp(-x)), which saturates cleanly to 0 and 1. */
template <int OP>
D4J_HD float unary_op(float x) {
    static_assert(OP >= D4J_NEG && OP <= D4J_SIGMOID, "unknown unary op");
    if constexpr (OP == D4J_NEG) {
        return -x;
    } else if constexpr (OP == D4J_ABS) {
        return fabsf(x);
    } else if constexpr (OP == D4J_EXP) {
        return expf(x);
    } else if constexpr (OP == D4J_LOG) {
        return logf(x);
    } else if constexpr (OP == D4J_SQRT) {
        return sqrtf(x);
    } else if constexpr (OP == D4J_RSQRT) {
        return 1.0f / sqrtf(x);
    } else if constexpr (OP == D4J_SQUARE) {
        return x * x;
    } else if constexpr (OP == D4J_RECIPROCAL) {
        return 1.0f / x;
    } else if constexpr (OP == D4J_TANH) {
        return tanhf(x);
    } else {
        return 1.0f / (1.0f + expf(-x));
    }
}

D4J_HD float unary_op(int op, float x) {
    switch (op) {
    case D4J_NEG: return unary_op<D4J_NEG>(x);
    case D4J_ABS: return unary_op<D4J_ABS>(x);
    case D4J_EXP: return unary_op<D4J_EXP>(x);
    case D4J_LOG: return unary_op<D4J_LOG>(x);
    case D4J_SQRT: return unary_op<D4J_SQRT>(x);
    case D4J_RSQRT: return unary_op<D4J_RSQRT>(x);
    case D4J_SQUARE: return unary_op<D4J_SQUARE>(x);
    case D4J_RECIPROCAL: return unary_op<D4J_RECIPROCAL>(x);
    case D4J_TANH: return unary_op<D4J_TANH>(x);
    case D4J_SIGMOID: return unary_op<D4J_SIGMOID>(x);
    default: return f32_nan();
    }
}

// ------------------------------------------------------------------ fused affine ops

/* alpha*x + beta*y with one rounding for the alpha*x product: fma(alpha, x, beta*y). */
D4J_HD float axpby(float alpha, float x, float beta, float y) { return fmaf(alpha, x, beta * y); }

/* a*b + c, single rounding. */
D4J_HD float fma3(float a, float b, float c) { return fmaf(a, b, c); }

/* a*s + t, single rounding. */
D4J_HD float scale_shift(float a, float s, float t) { return fmaf(a, s, t); }

// ------------------------------------------------------------------ reductions

/* SUM and MEAN accumulate in double (exact squares/sums of floats lose nothing per step; on sm_80 and
 * sm_90 the fp64 adds are free next to the memory traffic); MAX in float with Math.max semantics. */
struct SumAcc {
    double v;
    D4J_HD SumAcc() : v(0.0) {}
    D4J_HD void add(float x) { v += static_cast<double>(x); }
    D4J_HD void merge(double other) { v += other; }
};

struct MaxAcc {
    float v;
    D4J_HD MaxAcc() : v(-f32_inf()) {}
    D4J_HD void add(float x) { v = max_java(v, x); }
    D4J_HD void merge(float other) { v = max_java(v, other); }
};

/* Final value of a row reduction of `cols` elements: MEAN divides in double (0/0 = NaN for cols = 0). */
D4J_HD float reduce_finish(int op, double sum, float max, int64_t cols) {
    if (op == D4J_RMAX) {
        return max;
    }
    if (op == D4J_MEAN) {
        return static_cast<float>(sum / static_cast<double>(cols));
    }
    return static_cast<float>(sum);
}

/* x^2 in double: exact for every finite float (48-bit product). */
D4J_HD double square_f64(float x) {
    const double d = static_cast<double>(x);
    return d * d;
}

// ------------------------------------------------------------------ softmax (online max / sum)

/* Running (max m, sum s of exp(x - m)) over a prefix of a row. Starts at (-Inf, 0). While the max is
 * -Inf every element so far is -Inf and contributes 0 once a finite max appears, so s stays 0 (the naive
 * form would produce exp(-Inf + Inf) = NaN too early). A row that is all -Inf ends with m = -Inf and
 * its outputs exp(x - m) / s are NaN, like the two-pass form; any NaN or +Inf gives NaN as well. */
struct SoftmaxAcc {
    float m;
    float s;
    D4J_HD SoftmaxAcc() : m(-f32_inf()), s(0.0f) {}

    D4J_HD void merge(float m2, float s2) {
        const float mn = max_java(m, m2);
        if (mn == -f32_inf()) {
            m = mn;
            s = 0.0f;
            return;
        }
        const float a = (m == mn) ? s : s * expf(m - mn);
        const float b = (m2 == mn) ? s2 : s2 * expf(m2 - mn);
        s = a + b;
        m = mn;
    }

    D4J_HD void add(float x) {
        const float mn = max_java(m, x);
        if (mn == -f32_inf()) {
            return;
        }
        s = ((m == mn) ? s : s * expf(m - mn)) + expf(x - mn);
        m = mn;
    }

    /* Four elements with one rescale: 5 exps instead of 8. */
    D4J_HD void add4(float x0, float x1, float x2, float x3) {
        const float mn = max_java(m, max_java(max_java(x0, x1), max_java(x2, x3)));
        if (mn == -f32_inf()) {
            return;
        }
        const float e = (expf(x0 - mn) + expf(x1 - mn)) + (expf(x2 - mn) + expf(x3 - mn));
        s = ((m == mn) ? s : s * expf(m - mn)) + e;
        m = mn;
    }
};

}  // namespace d4j

#endif /* D4J_OPS_MATH_CUH */
