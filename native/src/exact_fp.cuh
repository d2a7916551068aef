/*
 * Exactly rounded float and double operations shared by the kernel math headers (philox.cuh,
 * diffusion_math.cuh, nn_math.cuh): on the device each operation is its _rn intrinsic, which nvcc never
 * contracts into an FMA or reorders; on the host a plain operator followed by an empty asm barrier, so a
 * compiler allowed to contract (-ffp-contract=fast, -march=native) cannot fuse a product into a later
 * addition. This is what makes the host tests, the CUDA kernels and Java (which never contracts) agree bit
 * for bit. Usable from kernels and from plain C++17.
 */
#ifndef DIFFUSION4J_EXACT_FP_CUH
#define DIFFUSION4J_EXACT_FP_CUH

#include <stdint.h>

#if defined(__CUDACC__)
#define D4J_HD __host__ __device__ __forceinline__
#else
#define D4J_HD inline
#endif

#if !defined(__CUDA_ARCH__)
#include <cfloat>
#include <cmath>
#include <cstring>
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0 && FLT_EVAL_METHOD != -1
#error "exact_fp.cuh needs float expressions evaluated in float (FLT_EVAL_METHOD 0), e.g. SSE2, not x87"
#endif
#endif

namespace d4j {

/* ------------------------------------------------------------------ exactly rounded float operations */
namespace fp {

/* Keeps the compiler from fusing a rounded host product into a later addition (no instruction emitted). */
D4J_HD float barrier(float x) {
#if !defined(__CUDA_ARCH__) && defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __asm__("" : "+x"(x));
#elif !defined(__CUDA_ARCH__) && defined(__GNUC__) && defined(__aarch64__)
    __asm__("" : "+w"(x));
#endif
    return x;
}

D4J_HD float add(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fadd_rn(a, b);
#else
    return barrier(a + b);
#endif
}

D4J_HD float sub(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fsub_rn(a, b);
#else
    return barrier(a - b);
#endif
}

D4J_HD float mul(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return barrier(a * b);
#endif
}

D4J_HD float div(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fdiv_rn(a, b);
#else
    return barrier(a / b);
#endif
}

/* a * b + c with one rounding. */
D4J_HD float fma(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
    return __fmaf_rn(a, b, c);
#else
    return barrier(std::fma(a, b, c));
#endif
}

D4J_HD float sqrt(float a) {
#if defined(__CUDA_ARCH__)
    return __fsqrt_rn(a);
#else
    return barrier(std::sqrt(a));
#endif
}

/* int to float; exact for |i| <= 2^24, which is all this file converts. */
D4J_HD float i2f(int32_t i) {
#if defined(__CUDA_ARCH__)
    return __int2float_rn(i);
#else
    return static_cast<float>(i);
#endif
}

D4J_HD uint32_t bits(float x) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(x);
#else
    uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
#endif
}

D4J_HD float from_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
#endif
}

/* Leading zero bits of v != 0. */
D4J_HD int32_t clz(uint32_t v) {
#if defined(__CUDA_ARCH__)
    return __clz(static_cast<int>(v));
#elif defined(__GNUC__)
    return __builtin_clz(v);
#else
    int32_t n = 0;
    while ((v & 0x80000000u) == 0) {
        v <<= 1;
        ++n;
    }
    return n;
#endif
}

/* High 32 bits of the 64-bit product a * b. */
D4J_HD uint32_t mulhi(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __umulhi(a, b);
#else
    return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

}  // namespace fp

/* ------------------------------------------------------------------ exactly rounded double operations */
namespace dfp {

D4J_HD double barrier(double x) {
#if !defined(__CUDA_ARCH__) && defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __asm__("" : "+x"(x));
#elif !defined(__CUDA_ARCH__) && defined(__GNUC__) && defined(__aarch64__)
    __asm__("" : "+w"(x));
#endif
    return x;
}

D4J_HD double add(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dadd_rn(a, b);
#else
    return barrier(a + b);
#endif
}

D4J_HD double sub(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dsub_rn(a, b);
#else
    return barrier(a - b);
#endif
}

D4J_HD double mul(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dmul_rn(a, b);
#else
    return barrier(a * b);
#endif
}

D4J_HD double div(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __ddiv_rn(a, b);
#else
    return barrier(a / b);
#endif
}

D4J_HD double sqrt(double a) {
#if defined(__CUDA_ARCH__)
    return __dsqrt_rn(a);
#else
    return barrier(std::sqrt(a));
#endif
}

/* Java's (float) d: round to nearest even. */
D4J_HD float to_float(double d) {
#if defined(__CUDA_ARCH__)
    return __double2float_rn(d);
#else
    return static_cast<float>(d);
#endif
}

/* Java's Math.max(0.0, x): NaN stays NaN, -0.0 and negatives give +0.0. */
D4J_HD double max_zero(double x) {
    if (x != x) {
        return x;
    }
    return x > 0.0 ? x : 0.0;
}

}  // namespace dfp

}  // namespace d4j

#endif /* DIFFUSION4J_EXACT_FP_CUH */
