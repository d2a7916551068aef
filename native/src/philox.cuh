/*
 * Philox4x32-10 counter-based random numbers with uniform and standard normal transforms that give
 * bit-identical results on the GPU, on the host (g++ / nvcc host code) and in Java
 * (org.diffusion4j.random.Philox, whose Javadoc holds the contract).
 *
 * Philox: J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11, doi:10.1145/2063384.2063405 (multipliers, Weyl key increments, 10 rounds; checked against
 * Random123's kat_vectors in native/tests/test_philox.cpp).
 *
 * Contract (fixed): key (k0, k1) = (low32(seed), high32(seed)); block j (unsigned 64-bit) enciphers the
 * counter (low32(j), high32(j), low32(stream), high32(stream)) into words r0..r3; element i uses block i >> 2,
 * lane i & 3.
 *   uniform: ((r >> 8) + 1) * 2^-24, exactly, in (0, 1].
 *   normal:  Box-Muller over lane pairs (0,1), (2,3). First word a: v = a | 1 (odd), u1 = v * 2^-32 truncated
 *            to 24 significant bits, in [2^-32, 1 - 2^-24]. Second word b: u2 = (b >> 8) * 2^-24 in [0, 1).
 *            R = sqrt(-2 ln u1) in [3.45e-4, 6.6604]; even lane R cos(2 pi u2), odd lane R sin(2 pi u2).
 *
 * Bitwise agreement: ln and sin/cos are short polynomials evaluated only with IEEE-754 operations that are
 * exactly rounded (round to nearest even) - +, -, *, /, fma, sqrt in float - plus exact integer operations and
 * int-to-float conversions that are all exact here (every converted integer has at most 24 significant bits).
 * On the device every float operation is spelled with its _rn intrinsic, which nvcc never contracts into an
 * FMA or reorders, so the result does not depend on --fmad, --use_fast_math or -O. On the host the same
 * operations are plain C++ operators with an empty asm barrier after each product, so a compiler allowed to
 * contract (-ffp-contract=fast with -mfma or -march=native) cannot fuse a product into a later addition.
 * Accuracy (measured on the host, see PhiloxAccuracyTest): ln within 0.94 ulp on every float in [2^-32, 1],
 * R within 0.99 ulp, sin/cos within 1.02 ulp on all 2^24 angles, |z - z_float64| <= 3.1 * 2^-24 * max(1, R).
 *
 * Usable from kernels and from plain C++17 (no CUDA headers needed when compiled by a host compiler).
 */
#ifndef DIFFUSION4J_PHILOX_CUH
#define DIFFUSION4J_PHILOX_CUH

#include <stdint.h>

#include "exact_fp.cuh"

namespace d4j {

/* ------------------------------------------------------------------ Philox4x32-10 */

/* Round multipliers and Weyl key increments (Salmon et al. 2011; Random123 PHILOX_M4x32_*, PHILOX_W32_*). */
constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;
constexpr int kPhiloxRounds = 10;

struct PhiloxWords {
    uint32_t r[4];
};

/* Enciphers counter (c0..c3) under key (k0, k1): 10 rounds of
 * (c0, c1, c2, c3) <- (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0)), key += (W0, W1). */
D4J_HD PhiloxWords philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int round = 0; round < kPhiloxRounds; ++round) {
        uint32_t hi0 = fp::mulhi(kPhiloxM0, c0);
        uint32_t lo0 = kPhiloxM0 * c0;
        uint32_t hi1 = fp::mulhi(kPhiloxM1, c2);
        uint32_t lo1 = kPhiloxM1 * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += kPhiloxW0;
        k1 += kPhiloxW1;
    }
    PhiloxWords out = {{c0, c1, c2, c3}};
    return out;
}

/* The four words of block j of stream (seed, stream). */
D4J_HD PhiloxWords philox_block(uint64_t seed, uint64_t stream, uint64_t j) {
    return philox4x32_10(static_cast<uint32_t>(j), static_cast<uint32_t>(j >> 32), static_cast<uint32_t>(stream),
                         static_cast<uint32_t>(stream >> 32), static_cast<uint32_t>(seed),
                         static_cast<uint32_t>(seed >> 32));
}

/* ------------------------------------------------------------------ transforms of words */

/* ((r >> 8) + 1) * 2^-24: an exact float in (0, 1]. */
D4J_HD float uniform_of(uint32_t r) {
    return fp::mul(fp::i2f(static_cast<int32_t>((r >> 8) + 1u)), 0x1p-24f);
}

namespace philox_detail {

/* Atanh series coefficients 2/(2n+1) for ln(1+f) = 2 atanh(f / (2 + f)). */
constexpr float kLogL1 = 0x1.555556p-1f;   /* 2/3 */
constexpr float kLogL2 = 0x1.99999ap-2f;   /* 2/5 */
constexpr float kLogL3 = 0x1.24924ap-2f;   /* 2/7 */
constexpr float kLogL4 = 0x1.c71c72p-3f;   /* 2/9 */
constexpr float kLn2Hi = 0x1.62e4p-1f;     /* ln 2 to 16 bits: e * kLn2Hi exact */
constexpr float kLn2Lo = 0x1.7f7d1cp-20f;  /* RN(ln 2 - kLn2Hi) */
constexpr uint32_t kSqrtHalfBits = 0x3f3504f3u;

/* Taylor coefficients of sin(2 pi t) (odd) and cos(2 pi t) (even) in t, |t| <= 1/8 turn. */
constexpr float kS1 = 0x1.921fb6p+2f;      /* RN(2 pi) */
constexpr float kS1Lo = -0x1.777a5cp-23f;  /* RN(2 pi - kS1) */
constexpr float kS3 = -0x1.4abbcep+5f;
constexpr float kS5 = 0x1.466bc6p+6f;
constexpr float kS7 = -0x1.32d2ccp+6f;
constexpr float kS9 = 0x1.507834p+5f;
constexpr float kC2 = -0x1.3bd3ccp+4f;
constexpr float kC4 = 0x1.03c1fp+6f;
constexpr float kC6 = -0x1.55d3c8p+6f;
constexpr float kC8 = 0x1.e1f506p+5f;
constexpr float kC10 = -0x1.a6d1f2p+4f;

/* e ln 2 + ln m for integer e and m in [sqrt(1/2), sqrt(2)). */
D4J_HD float log_reduced(float e, float m) {
    float f = fp::sub(m, 1.0f);  /* exact (Sterbenz) */
    float s = fp::div(f, fp::add(2.0f, f));
    float z = fp::mul(s, s);
    float w = fp::fma(z, kLogL4, kLogL3);
    w = fp::fma(z, w, kLogL2);
    w = fp::fma(z, w, kLogL1);
    float r = fp::mul(z, w);
    float log1p_f = fp::fma(-s, fp::sub(f, r), f);  /* f - s (f - R) = ln(1 + f) */
    return fp::fma(e, kLn2Hi, fp::fma(e, kLn2Lo, log1p_f));
}

/* sin(2 pi t), |t| <= 1/8. */
D4J_HD float sin_poly(float t) {
    float t2 = fp::mul(t, t);
    float p = fp::fma(t2, kS9, kS7);
    p = fp::fma(t2, p, kS5);
    p = fp::fma(t2, p, kS3);
    float t3 = fp::mul(t2, t);
    return fp::fma(t, kS1, fp::fma(t3, p, fp::mul(t, kS1Lo)));
}

/* cos(2 pi t), |t| <= 1/8. */
D4J_HD float cos_poly(float t) {
    float t2 = fp::mul(t, t);
    float p = fp::fma(t2, kC10, kC8);
    p = fp::fma(t2, p, kC6);
    p = fp::fma(t2, p, kC4);
    p = fp::fma(t2, p, kC2);
    return fp::fma(t2, p, 1.0f);
}

/* u2 = (b >> 8) / 2^24 turns = q/4 + t: the nearest quarter turn q (0..4, not reduced mod 4) ... */
D4J_HD uint32_t quarter_of(uint32_t b) {
    return ((b >> 8) + 0x200000u) >> 22;
}

/* ... and the exact rest t, |t| <= 1/8. */
D4J_HD float turn_rest(uint32_t b) {
    int32_t k = static_cast<int32_t>(b >> 8);
    int32_t rest = k - static_cast<int32_t>(quarter_of(b) << 22);
    return fp::mul(fp::i2f(rest), 0x1p-24f);
}

/* cos(q pi/2 + x) = +c, -s, -c, +s and sin(q pi/2 + x) = +s, +c, -s, -c for q = 0..3, as exact float
 * selections (the same arithmetic as the Java side, so even signed zeros agree). */
D4J_HD float cos_of_quarter(uint32_t b, float c, float s) {
    int32_t q = static_cast<int32_t>(quarter_of(b) & 3u);
    float odd = fp::i2f(q & 1);
    float sel = fp::add(fp::mul(c, fp::sub(1.0f, odd)), fp::mul(s, odd));
    return fp::mul(fp::i2f(1 - ((q + 1) & 2)), sel);
}

D4J_HD float sin_of_quarter(uint32_t b, float c, float s) {
    int32_t q = static_cast<int32_t>(quarter_of(b) & 3u);
    float odd = fp::i2f(q & 1);
    float sel = fp::add(fp::mul(s, fp::sub(1.0f, odd)), fp::mul(c, odd));
    return fp::mul(fp::i2f(1 - (q & 2)), sel);
}

}  // namespace philox_detail

/* Natural log of a positive normal float (within 1 ulp on [2^-32, 1]); the reference form of the Box-Muller
 * logarithm, identical to Philox.log in Java. */
D4J_HD float log_pos(float u) {
    uint32_t ix = fp::bits(u) - philox_detail::kSqrtHalfBits;
    float e = fp::i2f(static_cast<int32_t>(ix) >> 23);
    float m = fp::from_bits((ix & 0x007fffffu) + philox_detail::kSqrtHalfBits);
    return philox_detail::log_reduced(e, m);
}

/* Box-Muller u1 of the word a: (a | 1) * 2^-32 truncated to 24 significant bits, in [2^-32, 1 - 2^-24]. */
D4J_HD float box_muller_u1(uint32_t a) {
    uint32_t v = a | 1u;
    int32_t nz = fp::clz(v);
    int32_t mi = static_cast<int32_t>((v << nz) >> 8);  /* in [2^23, 2^24) */
    /* mi * 2^(-24 - nz) as mi * 2^-40 * 2^(16 - nz): both factors and the product exact */
    return fp::mul(fp::mul(fp::i2f(mi), 0x1p-40f), fp::from_bits(static_cast<uint32_t>(127 + 16 - nz) << 23));
}

/* R = sqrt(-2 ln u1) of the word a. */
D4J_HD float box_muller_radius(uint32_t a) {
    uint32_t v = a | 1u;
    int32_t nz = fp::clz(v);
    int32_t mi = static_cast<int32_t>((v << nz) >> 8);   /* u1 = mi * 2^(-24 - nz) */
    int32_t big = static_cast<int32_t>(static_cast<uint32_t>(0xB504F3 - mi) >> 31);  /* mi 2^-23 > sqrt 2 */
    float m = fp::mul(fp::i2f(mi), fp::mul(fp::i2f(2 - big), 0x1p-24f));  /* in [sqrt(1/2), sqrt(2)) */
    float e = fp::i2f(big - 1 - nz);                                       /* u1 = 2^e m */
    float ln_u1 = philox_detail::log_reduced(e, m);                         /* < 0 */
    return fp::sqrt(fp::mul(ln_u1, -2.0f));
}

/* cos(2 pi u2) and sin(2 pi u2) of the word b, u2 = (b >> 8) * 2^-24. */
D4J_HD float cos_turns(uint32_t b) {
    float t = philox_detail::turn_rest(b);
    return philox_detail::cos_of_quarter(b, philox_detail::cos_poly(t), philox_detail::sin_poly(t));
}

D4J_HD float sin_turns(uint32_t b) {
    float t = philox_detail::turn_rest(b);
    return philox_detail::sin_of_quarter(b, philox_detail::cos_poly(t), philox_detail::sin_poly(t));
}

/* Box-Muller of the word pair (a, b): *z_even = R cos(2 pi u2), *z_odd = R sin(2 pi u2). */
D4J_HD void normal_pair(uint32_t a, uint32_t b, float *z_even, float *z_odd) {
    float radius = box_muller_radius(a);
    float t = philox_detail::turn_rest(b);
    float c = philox_detail::cos_poly(t);
    float s = philox_detail::sin_poly(t);
    *z_even = fp::mul(radius, philox_detail::cos_of_quarter(b, c, s));
    *z_odd = fp::mul(radius, philox_detail::sin_of_quarter(b, c, s));
}

/* Elements 4j .. 4j+3 of stream (seed, stream). */
D4J_HD void philox_normal4(uint64_t seed, uint64_t stream, uint64_t j, float out[4]) {
    PhiloxWords w = philox_block(seed, stream, j);
    normal_pair(w.r[0], w.r[1], &out[0], &out[1]);
    normal_pair(w.r[2], w.r[3], &out[2], &out[3]);
}

D4J_HD void philox_uniform4(uint64_t seed, uint64_t stream, uint64_t j, float out[4]) {
    PhiloxWords w = philox_block(seed, stream, j);
    out[0] = uniform_of(w.r[0]);
    out[1] = uniform_of(w.r[1]);
    out[2] = uniform_of(w.r[2]);
    out[3] = uniform_of(w.r[3]);
}

/* Element i alone (computes its whole block; prefer the *4 forms in kernels). */
D4J_HD float philox_normal(uint64_t seed, uint64_t stream, uint64_t i) {
    float z[4];
    philox_normal4(seed, stream, i >> 2, z);
    return z[i & 3];
}

D4J_HD float philox_uniform(uint64_t seed, uint64_t stream, uint64_t i) {
    PhiloxWords w = philox_block(seed, stream, i >> 2);
    return uniform_of(w.r[i & 3]);
}

}  // namespace d4j

#endif /* DIFFUSION4J_PHILOX_CUH */
