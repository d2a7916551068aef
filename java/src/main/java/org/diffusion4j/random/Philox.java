package org.diffusion4j.random;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;

/**
 * Philox4x32-10, the counter-based random number generator of Salmon, Moraes, Dror and Shaw, "Parallel
 * random numbers: as easy as 1, 2, 3" (SC'11, doi:10.1145/2063384.2063405), with uniform and standard
 * normal transforms that give <b>bit-identical</b> results in Java and in the CUDA kernels
 * ({@code native/src/philox.cuh}).
 *
 * <h2>Contract (fixed: kernels, tests and stored seeds depend on it)</h2>
 * <ul>
 *   <li><b>Key and counter.</b> A stream of random numbers is named by {@code (seed, stream)}. The Philox
 *       key is {@code (k0, k1) = (low32(seed), high32(seed))}. Block {@code j} (an unsigned 64-bit index)
 *       enciphers the counter {@code (low32(j), high32(j), low32(stream), high32(stream))} with 10 rounds and
 *       gives four 32-bit words {@code r0..r3}.</li>
 *   <li><b>Elements.</b> Element {@code i} (an unsigned 64-bit index) uses block {@code j = i >>> 2} and
 *       lane {@code i & 3}: its value depends only on {@code (seed, stream, i)}, never on how a fill is
 *       split into ranges or threads.</li>
 *   <li><b>Uniform</b> ({@link #uniform}): the lane word {@code r} gives the float
 *       {@code ((r >>> 8) + 1) * 2^-24}, exactly, in {@code (0, 1]}.</li>
 *   <li><b>Normal</b> ({@link #normal}): Box–Muller (Box and Muller, Ann. Math. Statist. 29(2), 1958) over the
 *       lane pairs {@code (0, 1)} and {@code (2, 3)}. The pair's first word {@code a} gives {@code u1}: the
 *       odd number {@code (a | 1) * 2^-32} truncated to 24 significant bits, an exact float in
 *       {@code [2^-32, 1 - 2^-24]} (all 32 bits count, so the tail reaches {@code sqrt(64 ln 2) = 6.6604});
 *       the second word {@code b} gives {@code u2 = (b >>> 8) * 2^-24} in {@code [0, 1)}. With
 *       {@code R = sqrt(-2 ln u1)} the even lane is {@code R cos(2 pi u2)} and the odd lane
 *       {@code R sin(2 pi u2)}. Since {@code u1 < 1}, {@code R >= 3.45e-4}; since {@code u1 >= 2^-32},
 *       {@code |z| <= }{@link #MAX_ABS_NORMAL}; no value is infinite or NaN.</li>
 * </ul>
 *
 * <h2>Why the bits agree on CPU and GPU</h2>
 * The logarithm and the sine/cosine are not library calls (whose last bits differ between libm, the JDK and
 * CUDA) but short polynomials of this class, evaluated only with operations that IEEE 754 rounds exactly
 * ({@code +, -, *, /, fma, sqrt} in float, round to nearest even), exact integer operations and int-to-float
 * conversions that are exact (every converted integer has at most 24 significant bits). Java evaluates float
 * arithmetic exactly so: it never contracts {@code a*b+c}, and {@link Math#fma} rounds once. The CUDA twin
 * ({@code d4j::} functions of {@code philox.cuh}) spells every operation with its {@code _rn} intrinsic
 * ({@code __fmul_rn}, {@code __fadd_rn}, {@code __fmaf_rn}, {@code __fdiv_rn}, {@code __fsqrt_rn}) in the
 * same order, which nvcc never contracts or reorders, whatever {@code --fmad}; no intermediate is subnormal, so
 * flush-to-zero does not matter either. The table {@code native/tests/philox_golden.inc} of
 * {@code (seed, stream, i) -> bits} is asserted by both {@code PhiloxGoldenTest} and the native host test.
 *
 * <h2>Accuracy</h2>
 * Measured against float64 of the same {@code u1, u2} ({@code PhiloxAccuracyTest}): {@link #log} within
 * 0.94 ulp at every float in {@code [2^-32, 1]}; {@link #radius} within 0.99 ulp; {@link #cosTurns} and
 * {@link #sinTurns} within 1.02 ulp on all {@code 2^24} angles; normals within 2.6 ulp of the float64
 * Box–Muller value (5e7 samples), i.e. relative error below {@code 3.1e-7}, absolute below {@code 6.5e-7}.
 *
 * <h2>Speed</h2>
 * The bulk fills run C2-vectorised loops over chunks of 256 blocks (Philox rounds, then the transforms on
 * planes of words) and interleave the planes into a float array: about 2.1 ns per normal and 1.3 ns per uniform
 * on one core of the 2-core AMD EPYC (Zen 4, AVX-512) build machine (of a normal: 0.8 ns rounds, 0.8 ns
 * Box–Muller, 0.3 ns interleaving), against about 8 and 4 ns for the scalar loop ({@code PhiloxSpeed} in the
 * tests prints them). Code that stages blocks in arrays should call the array forms
 * ({@link #fillNormal(float[], int, int, long, long, long)}); the segment forms stage through the same loop.
 *
 * <p>All methods are static and thread-safe.
 */
public final class Philox {

    /** Philox4x32 round multiplier applied to counter word 0 (Salmon et al. 2011; Random123 {@code PHILOX_M4x32_0}). */
    public static final int M0 = 0xD2511F53;
    /** Round multiplier applied to counter word 2 ({@code PHILOX_M4x32_1}). */
    public static final int M1 = 0xCD9E8D57;
    /** Weyl key increment of key word 0: the golden ratio in 0.32 fixed point ({@code PHILOX_W32_0}). */
    public static final int W0 = 0x9E3779B9;
    /** Weyl key increment of key word 1: {@code sqrt(3) - 1} in 0.32 fixed point ({@code PHILOX_W32_1}). */
    public static final int W1 = 0xBB67AE85;
    /** Number of rounds (Philox4x32-10). */
    public static final int ROUNDS = 10;

    /** The largest |normal|: {@code R} at {@code u1 = 2^-32}, i.e. {@code RN(sqrt(64 ln 2))} = 6.660437. */
    public static final float MAX_ABS_NORMAL = 6.660437f;

    private static final long MASK32 = 0xFFFF_FFFFL;
    private static final long M0L = M0 & MASK32;
    private static final long M1L = M1 & MASK32;
    /** Block indices are the top 62 bits of an unsigned 64-bit element index. */
    private static final long BLOCK_MASK = -1L >>> 2;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    // ---- ln u for u = 2^e m, m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact): ln(1 + f) = 2 atanh(s) with
    // s = f / (2 + f), written f - s (f - R), R = s^2 (2/3 + 2/5 s^2 + 2/7 s^4 + 2/9 s^6) (the atanh Taylor
    // series; |s| <= 0.1716, truncation below 2e-9 relative). ln 2 is split so that e * LN2_HI is exact.
    private static final float LOG_L1 = 0x1.555556p-1f;   // 2/3
    private static final float LOG_L2 = 0x1.99999ap-2f;   // 2/5
    private static final float LOG_L3 = 0x1.24924ap-2f;   // 2/7
    private static final float LOG_L4 = 0x1.c71c72p-3f;   // 2/9
    private static final float LN2_HI = 0x1.62e4p-1f;     // ln 2 to 16 bits: e * LN2_HI exact for |e| < 256
    private static final float LN2_LO = 0x1.7f7d1cp-20f;  // RN(ln 2 - LN2_HI)
    private static final int SQRT_HALF_BITS = 0x3f3504f3; // RN(sqrt(1/2))

    // ---- sin(2 pi t), cos(2 pi t) for |t| <= 1/8 turn: Taylor series of sin x and cos x at x = 2 pi t to
    // degree 9 and 10 (truncation below 3e-9 relative on |x| <= pi/4); 2 pi split into hi + lo.
    private static final float S1 = 0x1.921fb6p+2f;       // RN(2 pi)
    private static final float S1_LO = -0x1.777a5cp-23f;  // RN(2 pi - S1)
    private static final float S3 = -0x1.4abbcep+5f;      // -(2 pi)^3 / 3!
    private static final float S5 = 0x1.466bc6p+6f;       // (2 pi)^5 / 5!
    private static final float S7 = -0x1.32d2ccp+6f;      // -(2 pi)^7 / 7!
    private static final float S9 = 0x1.507834p+5f;       // (2 pi)^9 / 9!
    private static final float C2 = -0x1.3bd3ccp+4f;      // -(2 pi)^2 / 2!
    private static final float C4 = 0x1.03c1fp+6f;        // (2 pi)^4 / 4!
    private static final float C6 = -0x1.55d3c8p+6f;      // -(2 pi)^6 / 6!
    private static final float C8 = 0x1.e1f506p+5f;       // (2 pi)^8 / 8!
    private static final float C10 = -0x1.a6d1f2p+4f;     // -(2 pi)^10 / 10!

    private Philox() {
    }

    // ================================================================ the block function

    /**
     * The raw Philox4x32-10 bijection: enciphers counter {@code (c0, c1, c2, c3)} under key {@code (k0, k1)}
     * (Salmon et al. 2011, Sec. 3.3). Each round maps {@code (c0, c1, c2, c3)} to
     * {@code (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0))} with unsigned 32x32-bit
     * products, and the key is bumped by {@code (W0, W1)} between rounds. Matches Random123's
     * {@code kat_vectors}.
     *
     * @return a new array {@code {r0, r1, r2, r3}}
     */
    public static int[] philox4x32_10(int c0, int c1, int c2, int c3, int k0, int k1) {
        int[] out = new int[4];
        encipher(c0, c1, c2, c3, k0, k1, out, 0);
        return out;
    }

    /** The four words of block {@code j} of stream {@code (seed, stream)}, as a new array. */
    public static int[] block(long seed, long stream, long j) {
        int[] out = new int[4];
        block(seed, stream, j, out, 0);
        return out;
    }

    /**
     * Writes the four words of block {@code j} of stream {@code (seed, stream)} to
     * {@code out[offset .. offset + 3]}, without allocating.
     *
     * @throws IndexOutOfBoundsException when {@code out} has no room for four words at {@code offset}
     */
    public static void block(long seed, long stream, long j, int[] out, int offset) {
        Objects.checkFromIndexSize(offset, 4, out.length);
        encipher((int) j, (int) (j >>> 32), (int) stream, (int) (stream >>> 32), (int) seed, (int) (seed >>> 32),
                out, offset);
    }

    private static void encipher(int c0, int c1, int c2, int c3, int k0, int k1, int[] out, int offset) {
        for (int round = 0; round < ROUNDS; round++) {
            long p0 = M0L * (c0 & MASK32);
            long p1 = M1L * (c2 & MASK32);
            int n0 = (int) (p1 >>> 32) ^ c1 ^ k0;
            int n2 = (int) (p0 >>> 32) ^ c3 ^ k1;
            c1 = (int) p1;
            c3 = (int) p0;
            c0 = n0;
            c2 = n2;
            k0 += W0;
            k1 += W1;
        }
        out[offset] = c0;
        out[offset + 1] = c1;
        out[offset + 2] = c2;
        out[offset + 3] = c3;
    }

    /**
     * Words {@code lane} and {@code lane + 1} of block {@code j} as {@code (long) w[lane] << 32 | w[lane + 1]},
     * {@code lane} 0 or 2 (allocation-free).
     */
    private static long wordPair(long seed, long stream, long j, int lane) {
        int k0 = (int) seed;
        int k1 = (int) (seed >>> 32);
        int c0 = (int) j;
        int c1 = (int) (j >>> 32);
        int c2 = (int) stream;
        int c3 = (int) (stream >>> 32);
        for (int round = 0; round < ROUNDS; round++) {
            long p0 = M0L * (c0 & MASK32);
            long p1 = M1L * (c2 & MASK32);
            int n0 = (int) (p1 >>> 32) ^ c1 ^ k0;
            int n2 = (int) (p0 >>> 32) ^ c3 ^ k1;
            c1 = (int) p1;
            c3 = (int) p0;
            c0 = n0;
            c2 = n2;
            k0 += W0;
            k1 += W1;
        }
        return lane == 0 ? (long) c0 << 32 | (c1 & MASK32) : (long) c2 << 32 | (c3 & MASK32);
    }

    /** The word of element {@code i}: word {@code i & 3} of block {@code i >>> 2}. */
    public static int word(long seed, long stream, long i) {
        long pair = wordPair(seed, stream, i >>> 2, (int) i & 2);
        return (i & 1) == 0 ? (int) (pair >>> 32) : (int) pair;
    }

    // ================================================================ single values

    /** Uniform element {@code i} of stream {@code (seed, stream)}: {@code ((r >>> 8) + 1) * 2^-24} in (0, 1]. */
    public static float uniform(long seed, long stream, long i) {
        return uniformOf(word(seed, stream, i));
    }

    /**
     * Standard normal element {@code i} of stream {@code (seed, stream)}: Box–Muller of the lane pair
     * {@code (i & ~1, i | 1)} of block {@code i >>> 2} (see the class contract).
     */
    public static float normal(long seed, long stream, long i) {
        long pair = wordPair(seed, stream, i >>> 2, (int) i & 2);
        int a = (int) (pair >>> 32);
        int b = (int) pair;
        return (i & 1) == 0 ? radius(a) * cosTurns(b) : radius(a) * sinTurns(b);
    }

    // ================================================================ transforms of words
    // The building blocks of the contract, bit-exact twins of philox.cuh; public for fused kernels and tests
    // (except log, whose domain is too narrow for a public name).

    /** {@code ((r >>> 8) + 1) * 2^-24}: the uniform of the word {@code r}, an exact float in (0, 1]. */
    public static float uniformOf(int r) {
        return (float) ((r >>> 8) + 1) * 0x1p-24f;
    }

    /**
     * The Box–Muller {@code u1} of the word {@code a}: the odd number {@code (a | 1) * 2^-32} truncated to its
     * 24 leading significant bits, an exact float in {@code [2^-32, 1 - 2^-24]}.
     */
    public static float boxMullerU1(int a) {
        int v = a | 1;
        int nz = Integer.numberOfLeadingZeros(v);
        int mi = (v << nz) >>> 8;                              // 24 leading bits, in [2^23, 2^24)
        return Math.scalb((float) mi, -24 - nz);
    }

    /**
     * {@code R = sqrt(-2 ln u1)}, the Box–Muller radius of the word {@code a} ({@code u1} of
     * {@link #boxMullerU1}), in {@code [3.45e-4, 6.660437]}; within 1 ulp. Written without bit casts or
     * variable shifts so that C2 vectorises it: the exponent and mantissa of {@code u1} come from integer
     * operations.
     */
    public static float radius(int a) {
        int v = a | 1;
        int nz = Integer.numberOfLeadingZeros(v);
        int r = Integer.reverse(v);
        int mi = (v * (r & -r)) >>> 8;                         // (v << nz) >>> 8: r & -r = 2^nz
                                                               // u1 = mi * 2^(-24 - nz), mi in [2^23, 2^24)
        int big = (0xB5_04F3 - mi) >>> 31;                     // 1 when mi * 2^-23 > sqrt(2)
        float m = (float) mi * ((float) (2 - big) * 0x1p-24f); // mi * 2^-23 or mi * 2^-24: in [sqrt(1/2), sqrt(2))
        float e = (float) (big - 1 - nz);                      // u1 = 2^e * m
        float lnU1 = logReduced(e, m);                         // < 0, as u1 <= 1 - 2^-24
        return (float) Math.sqrt(lnU1 * -2f);                  // correctly rounded float sqrt
    }

    /**
     * Natural logarithm of a positive normal float, within 1 ulp on {@code [2^-32, 1]} (the reference form of
     * the Box–Muller logarithm; tested there). It checks nothing: zero, subnormals, negative values, infinities
     * and NaN give wrong finite values (e.g. {@code log(0) = -88.03}, {@code log(NaN) = 89.13}) without an
     * exception, so it is package-private: the accuracy and golden tests of this package use it, {@link Math#log}
     * is the general logarithm. The CUDA twin {@code d4j::log_pos} returns the same bits.
     */
    static float log(float u) {
        int ix = Float.floatToRawIntBits(u) - SQRT_HALF_BITS;
        float e = (float) (ix >> 23);                                         // u = 2^e * m
        float m = Float.intBitsToFloat((ix & 0x007f_ffff) + SQRT_HALF_BITS);  // m in [sqrt(1/2), sqrt(2))
        return logReduced(e, m);
    }

    /** {@code e ln 2 + ln m} for an integer {@code e} and {@code m} in {@code [sqrt(1/2), sqrt(2))}. */
    private static float logReduced(float e, float m) {
        float f = m - 1f;                                      // exact (Sterbenz)
        float s = f / (2f + f);
        float z = s * s;
        float w = Math.fma(z, LOG_L4, LOG_L3);
        w = Math.fma(z, w, LOG_L2);
        w = Math.fma(z, w, LOG_L1);
        float r = z * w;
        float log1pF = Math.fma(-s, f - r, f);                 // f - s (f - R) = ln(1 + f)
        return Math.fma(e, LN2_HI, Math.fma(e, LN2_LO, log1pF));
    }

    /**
     * {@code cos(2 pi u2)} of the word {@code b}, {@code u2 = (b >>> 8) * 2^-24}; within 1.02 ulp. The angle
     * is reduced exactly, in integers, to the nearest quarter turn {@code q} and a rest of at most 1/8 turn;
     * the quadrant's swap and signs are exact float selections (no branches, no bit casts).
     */
    public static float cosTurns(int b) {
        float t = turnRest(b);
        return cosOfQuarter(b, cosPoly(t), sinPoly(t));
    }

    /** {@code sin(2 pi u2)} of the word {@code b}, {@code u2 = (b >>> 8) * 2^-24}; within 1.02 ulp. */
    public static float sinTurns(int b) {
        float t = turnRest(b);
        return sinOfQuarter(b, cosPoly(t), sinPoly(t));
    }

    /** The rest {@code t = u2 - q/4} turns, {@code |t| <= 1/8}, {@code q} the nearest quarter turn (exact). */
    private static float turnRest(int b) {
        int k = b >>> 8;                                       // u2 = k / 2^24 turns
        return (float) (k - (((k + 0x20_0000) >>> 22) << 22)) * 0x1p-24f;
    }

    /** {@code cos(q pi/2 + x)} from {@code c = cos x, s = sin x}: {@code +c, -s, -c, +s} for q = 0, 1, 2, 3. */
    private static float cosOfQuarter(int b, float c, float s) {
        int q = (((b >>> 8) + 0x20_0000) >>> 22) & 3;
        float odd = (float) (q & 1);
        return (float) (1 - ((q + 1) & 2)) * (c * (1f - odd) + s * odd);
    }

    /** {@code sin(q pi/2 + x)} from {@code c = cos x, s = sin x}: {@code +s, +c, -s, -c} for q = 0, 1, 2, 3. */
    private static float sinOfQuarter(int b, float c, float s) {
        int q = (((b >>> 8) + 0x20_0000) >>> 22) & 3;
        float odd = (float) (q & 1);
        return (float) (1 - (q & 2)) * (s * (1f - odd) + c * odd);
    }

    /** {@code sin(2 pi t)} for {@code |t| <= 1/8}. */
    private static float sinPoly(float t) {
        float t2 = t * t;
        float p = Math.fma(t2, S9, S7);
        p = Math.fma(t2, p, S5);
        p = Math.fma(t2, p, S3);
        float t3 = t2 * t;
        return Math.fma(t, S1, Math.fma(t3, p, t * S1_LO));
    }

    /** {@code cos(2 pi t)} for {@code |t| <= 1/8}. */
    private static float cosPoly(float t) {
        float t2 = t * t;
        float p = Math.fma(t2, C10, C8);
        p = Math.fma(t2, p, C6);
        p = Math.fma(t2, p, C4);
        p = Math.fma(t2, p, C2);
        return Math.fma(t2, p, 1f);
    }

    // ================================================================ bulk fills

    /**
     * Writes {@code count} standard normals, elements {@code firstIndex .. firstIndex + count - 1} of stream
     * {@code (seed, stream)}, as consecutive floats ({@link ValueLayout#JAVA_FLOAT}, native byte order, any
     * alignment) at the start of {@code out}: bit for bit {@link #normal} of each index, for any
     * {@code firstIndex} (indices are unsigned 64-bit and wrap). Allocation-free after a thread's first call.
     *
     * @param out        destination; its first {@code 4 * count} bytes are written
     * @param count      number of elements, {@code >= 0}
     * @param seed       Philox key (any 64-bit value)
     * @param stream     second half of the counter: independent streams under one seed
     * @param firstIndex index of the element written first (unsigned 64-bit)
     * @throws IllegalArgumentException when {@code count < 0}, {@code out} holds fewer than
     *                                  {@code 4 * count} bytes or is read-only; nothing is written then
     */
    public static void fillNormal(MemorySegment out, long count, long seed, long stream, long firstIndex) {
        fill(out, count, seed, stream, firstIndex, true);
    }

    /**
     * Writes {@code count} uniforms in (0, 1], elements {@code firstIndex .. firstIndex + count - 1} of stream
     * {@code (seed, stream)}, as consecutive floats at the start of {@code out}: bit for bit {@link #uniform}
     * of each index. Allocation-free after a thread's first call.
     *
     * @param out        destination; its first {@code 4 * count} bytes are written
     * @param count      number of elements, {@code >= 0}
     * @param seed       Philox key (any 64-bit value)
     * @param stream     second half of the counter: independent streams under one seed
     * @param firstIndex index of the element written first (unsigned 64-bit)
     * @throws IllegalArgumentException when {@code count < 0}, {@code out} holds fewer than
     *                                  {@code 4 * count} bytes or is read-only; nothing is written then
     */
    public static void fillUniform(MemorySegment out, long count, long seed, long stream, long firstIndex) {
        fill(out, count, seed, stream, firstIndex, false);
    }

    /** Blocks per chunk of the bulk path (1024 elements; 14 KiB of scratch per thread). */
    private static final int CHUNK = 256;
    /** {@code IOTA[b] = b}: the loop index as loaded data, which C2's auto-vectoriser handles. */
    private static final int[] IOTA = new int[CHUNK];
    /** Per-thread scratch of the bulk path (no allocation per call). */
    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    static {
        for (int b = 0; b < CHUNK; b++) {
            IOTA[b] = b;
        }
    }

    /**
     * Scratch of the bulk path, in planes of word pairs: {@code a[b] = r0, bw[b] = r1} and
     * {@code a[CHUNK + b] = r2, bw[CHUNK + b] = r3} of the chunk's block {@code b}; {@code x, y} the values of
     * lanes 0, 1 (at {@code b}) and 2, 3 (at {@code CHUNK + b}); {@code r} the Box–Muller radii.
     */
    private static final class Scratch {
        final int[] a = new int[2 * CHUNK];
        final int[] bw = new int[2 * CHUNK];
        final float[] x = new float[2 * CHUNK];
        final float[] y = new float[2 * CHUNK];
        final float[] r = new float[2 * CHUNK];
        /** Staging of the segment fills. */
        final float[] buf = new float[4 * CHUNK];
    }

    /**
     * Writes {@code count} standard normals, elements {@code firstIndex .. firstIndex + count - 1} of stream
     * {@code (seed, stream)}, to {@code out[offset .. offset + count - 1]}: bit for bit {@link #normal} of each
     * index, the same values as {@link #fillNormal(MemorySegment, long, long, long, long)}. The fastest form for
     * code that stages blocks in arrays (no segment access at all). Allocation-free after a thread's first call.
     *
     * @throws IndexOutOfBoundsException when {@code [offset, offset + count)} is not inside {@code out}; nothing
     *                                   is written then
     */
    public static void fillNormal(float[] out, int offset, int count, long seed, long stream, long firstIndex) {
        Objects.checkFromIndexSize(offset, count, out.length);
        fillArray(out, offset, count, seed, stream, firstIndex, true, SCRATCH.get());
    }

    /**
     * Writes {@code count} uniforms in (0, 1], elements {@code firstIndex .. firstIndex + count - 1} of stream
     * {@code (seed, stream)}, to {@code out[offset .. offset + count - 1]}: bit for bit {@link #uniform} of each
     * index. Allocation-free after a thread's first call.
     *
     * @throws IndexOutOfBoundsException when {@code [offset, offset + count)} is not inside {@code out}; nothing
     *                                   is written then
     */
    public static void fillUniform(float[] out, int offset, int count, long seed, long stream, long firstIndex) {
        Objects.checkFromIndexSize(offset, count, out.length);
        fillArray(out, offset, count, seed, stream, firstIndex, false, SCRATCH.get());
    }

    /**
     * The segment fills: pieces of up to {@code 4 * CHUNK} elements made in the thread's array and copied out in
     * bulk. Every element store of the generator is an array store, whatever the segment kind: one compiled form
     * serves heap and native segments alike (a per-element {@code MemorySegment.set} in the generator loop, reached
     * with both kinds, lost its type profile and ran 2.7x slower).
     */
    private static void fill(MemorySegment out, long count, long seed, long stream, long firstIndex,
                             boolean normal) {
        checkFill(out, count);
        Scratch sc = SCRATCH.get();
        long done = 0;
        // the first piece ends on a block boundary, so that every later piece starts on one
        int piece = (int) Math.min(count, 4 * CHUNK - (firstIndex & 3));
        while (done < count) {
            fillArray(sc.buf, 0, piece, seed, stream, firstIndex + done, normal, sc);
            MemorySegment.copy(sc.buf, 0, out, F32, done * 4, piece);
            done += piece;
            piece = (int) Math.min(count - done, 4 * CHUNK);
        }
    }

    /** Elements {@code i .. i + count - 1} into {@code out[off ..]} (bounds checked by the caller). */
    private static void fillArray(float[] out, int off, int count, long seed, long stream, long i, boolean normal,
                                  Scratch sc) {
        int end = off + count;
        while (off < end && (i & 3) != 0) {                    // head: up to the next block boundary
            out[off++] = normal ? normal(seed, stream, i) : uniform(seed, stream, i);
            i++;
        }
        long j = i >>> 2;
        int blocks = (end - off) >>> 2;
        if (blocks > 0) {
            int k0 = (int) seed;
            int k1 = (int) (seed >>> 32);
            int s0 = (int) stream;
            int s1 = (int) (stream >>> 32);
            float[] x = sc.x;
            float[] y = sc.y;
            while (blocks > 0) {
                // a chunk never crosses a multiple of 2^32 blocks, so low32(j + b) = low32(j) + b
                int n = (int) Math.min(Math.min(blocks, CHUNK), (1L << 32) - (j & MASK32));
                rounds1to4(k0, k1, s0, s1, (int) j, (int) (j >>> 32), n, sc.a, sc.bw);
                rounds5to7(k0, k1, n, sc.a, sc.bw);
                rounds8to10(k0, k1, n, sc.a, sc.bw);
                if (normal) {
                    boxMuller(0, n, sc);
                    boxMuller(CHUNK, n, sc);
                } else {
                    uniforms(0, n, sc);
                    uniforms(CHUNK, n, sc);
                }
                for (int b = 0; b < n; b++, off += 4) {          // interleave the planes: element 4j + lane
                    out[off] = x[b];
                    out[off + 1] = y[b];
                    out[off + 2] = x[CHUNK + b];
                    out[off + 3] = y[CHUNK + b];
                }
                blocks -= n;
                j = (j + n) & BLOCK_MASK;
            }
        }
        i = j << 2;
        for (; off < end; off++, i++) {                        // tail
            out[off] = normal ? normal(seed, stream, i) : uniform(seed, stream, i);
        }
    }

    // The loops below are straight-line, branch-free and short, so that C2 vectorises them (SuperWord):
    // unsigned 32x32-bit products as long multiplies of zero-extended ints, numberOfLeadingZeros, reverse,
    // int-to-float conversions and float arithmetic; no bit casts or variable shifts, which stay scalar. Ten
    // rounds, or a whole Box–Muller, in one loop body exceed C2's unrolling budget and the loop stays scalar
    // (4x slower); 4 + 3 + 3 rounds measured fastest (5 + 5: 10% slower). Each loop computes exactly the
    // operations of the scalar methods above, so the results are the same bits.

    /** Rounds 1..4 of blocks {@code (jLo + b, jHi)}, {@code b < n}, into the scratch words. */
    private static void rounds1to4(int k0, int k1, int s0, int s1, int jLo, int jHi, int n, int[] a, int[] bw) {
        for (int b = 0; b < n; b++) {
            int c0 = jLo + IOTA[b];
            int c1 = jHi;
            int c2 = s0;
            int c3 = s1;
            long p0;
            long p1;
            int lo0;
            int lo1;
            p0 = M0L * (c0 & MASK32);                          // round 1
            p1 = M1L * (c2 & MASK32);
            lo0 = c0 * M0;                                     // = (int) p0, one narrowing fewer
            lo1 = c2 * M1;
            c0 = (int) (p1 >>> 32) ^ c1 ^ k0;
            c1 = lo1;
            c2 = (int) (p0 >>> 32) ^ c3 ^ k1;
            c3 = lo0;
            p0 = M0L * (c0 & MASK32);                          // round 2
            p1 = M1L * (c2 & MASK32);
            lo0 = c0 * M0;                                     // = (int) p0, one narrowing fewer
            lo1 = c2 * M1;
            c0 = (int) (p1 >>> 32) ^ c1 ^ (k0 + W0);
            c1 = lo1;
            c2 = (int) (p0 >>> 32) ^ c3 ^ (k1 + W1);
            c3 = lo0;
            p0 = M0L * (c0 & MASK32);                          // round 3
            p1 = M1L * (c2 & MASK32);
            lo0 = c0 * M0;                                     // = (int) p0, one narrowing fewer
            lo1 = c2 * M1;
            c0 = (int) (p1 >>> 32) ^ c1 ^ (k0 + 2 * W0);
            c1 = lo1;
            c2 = (int) (p0 >>> 32) ^ c3 ^ (k1 + 2 * W1);
            c3 = lo0;
            p0 = M0L * (c0 & MASK32);                          // round 4
            p1 = M1L * (c2 & MASK32);
            lo0 = c0 * M0;                                     // = (int) p0, one narrowing fewer
            lo1 = c2 * M1;
            c0 = (int) (p1 >>> 32) ^ c1 ^ (k0 + 3 * W0);
            c1 = lo1;
            c2 = (int) (p0 >>> 32) ^ c3 ^ (k1 + 3 * W1);
            c3 = lo0;
            a[b] = c0;
            bw[b] = c1;
            a[CHUNK + b] = c2;
            bw[CHUNK + b] = c3;
        }
    }

    /** Rounds 5..7, in place on the scratch words. */
    private static void rounds5to7(int k0, int k1, int n, int[] a, int[] bw) {
        for (int b = 0; b < n; b++) {
            int c0 = a[b];
            int c1 = bw[b];
            int c2 = a[CHUNK + b];
            int c3 = bw[CHUNK + b];
            long p0;
            long p1;
            int lo0;
            int lo1;
            p0 = M0L * (c0 & MASK32);                          // round 5
            p1 = M1L * (c2 & MASK32);
            lo0 = c0 * M0;                                     // = (int) p0, one narrowing fewer
            lo1 = c2 * M1;
            c0 = (int) (p1 >>> 32) ^ c1 ^ (k0 + 4 * W0);
            c1 = lo1;
            c2 = (int) (p0 >>> 32) ^ c3 ^ (k1 + 4 * W1);
            c3 = lo0;
            p0 = M0L * (c0 & MASK32);                          // round 6
            p1 = M1L * (c2 & MASK32);
            lo0 = c0 * M0;                                     // = (int) p0, one narrowing fewer
            lo1 = c2 * M1;
            c0 = (int) (p1 >>> 32) ^ c1 ^ (k0 + 5 * W0);
            c1 = lo1;
            c2 = (int) (p0 >>> 32) ^ c3 ^ (k1 + 5 * W1);
            c3 = lo0;
            p0 = M0L * (c0 & MASK32);                          // round 7
            p1 = M1L * (c2 & MASK32);
            lo0 = c0 * M0;                                     // = (int) p0, one narrowing fewer
            lo1 = c2 * M1;
            c0 = (int) (p1 >>> 32) ^ c1 ^ (k0 + 6 * W0);
            c1 = lo1;
            c2 = (int) (p0 >>> 32) ^ c3 ^ (k1 + 6 * W1);
            c3 = lo0;
            a[b] = c0;
            bw[b] = c1;
            a[CHUNK + b] = c2;
            bw[CHUNK + b] = c3;
        }
    }

    /** Rounds 8..10, in place on the scratch words. */
    private static void rounds8to10(int k0, int k1, int n, int[] a, int[] bw) {
        for (int b = 0; b < n; b++) {
            int c0 = a[b];
            int c1 = bw[b];
            int c2 = a[CHUNK + b];
            int c3 = bw[CHUNK + b];
            long p0;
            long p1;
            int lo0;
            int lo1;
            p0 = M0L * (c0 & MASK32);                          // round 8
            p1 = M1L * (c2 & MASK32);
            lo0 = c0 * M0;                                     // = (int) p0, one narrowing fewer
            lo1 = c2 * M1;
            c0 = (int) (p1 >>> 32) ^ c1 ^ (k0 + 7 * W0);
            c1 = lo1;
            c2 = (int) (p0 >>> 32) ^ c3 ^ (k1 + 7 * W1);
            c3 = lo0;
            p0 = M0L * (c0 & MASK32);                          // round 9
            p1 = M1L * (c2 & MASK32);
            lo0 = c0 * M0;                                     // = (int) p0, one narrowing fewer
            lo1 = c2 * M1;
            c0 = (int) (p1 >>> 32) ^ c1 ^ (k0 + 8 * W0);
            c1 = lo1;
            c2 = (int) (p0 >>> 32) ^ c3 ^ (k1 + 8 * W1);
            c3 = lo0;
            p0 = M0L * (c0 & MASK32);                          // round 10
            p1 = M1L * (c2 & MASK32);
            lo0 = c0 * M0;                                     // = (int) p0, one narrowing fewer
            lo1 = c2 * M1;
            c0 = (int) (p1 >>> 32) ^ c1 ^ (k0 + 9 * W0);
            c1 = lo1;
            c2 = (int) (p0 >>> 32) ^ c3 ^ (k1 + 9 * W1);
            c3 = lo0;
            a[b] = c0;
            bw[b] = c1;
            a[CHUNK + b] = c2;
            bw[CHUNK + b] = c3;
        }
    }

    /**
     * Box–Muller of the word pairs {@code (a[p], bw[p])}, {@code off <= p < off + n}, into {@code x[p], y[p]}:
     * {@link #radius}, {@link #turnRest}, {@link #cosPoly}, {@link #sinPoly} and the quadrant selections written
     * out in the loop bodies, not called. A loop that calls them vectorises only when the JIT inlines each call, and
     * its inlining of these 40-80-byte methods depends on the profile (in training JVMs it refused some: "callee is
     * too large"); with no calls in the bodies the loops vectorise in every JVM. The same operations in the same
     * order as the scalar methods, so the same bits (tested against {@link #normal}).
     */
    private static void boxMuller(int off, int n, Scratch sc) {
        int[] a = sc.a;
        int[] bw = sc.bw;
        float[] x = sc.x;
        float[] y = sc.y;
        float[] r = sc.r;
        for (int p = off; p < off + n; p++) {                  // radius(a[p])
            int v = a[p] | 1;
            int nz = Integer.numberOfLeadingZeros(v);
            int rv = Integer.reverse(v);
            int mi = (v * (rv & -rv)) >>> 8;
            int big = (0xB5_04F3 - mi) >>> 31;
            float m = (float) mi * ((float) (2 - big) * 0x1p-24f);
            float e = (float) (big - 1 - nz);
            float f = m - 1f;                                  // logReduced(e, m)
            float sq = f / (2f + f);
            float z = sq * sq;
            float w = Math.fma(z, LOG_L4, LOG_L3);
            w = Math.fma(z, w, LOG_L2);
            w = Math.fma(z, w, LOG_L1);
            float rr = z * w;
            float log1pF = Math.fma(-sq, f - rr, f);
            float lnU1 = Math.fma(e, LN2_HI, Math.fma(e, LN2_LO, log1pF));
            r[p] = (float) Math.sqrt(lnU1 * -2f);
        }
        for (int p = off; p < off + n; p++) {                  // cosPoly(t), sinPoly(t), t = turnRest(bw[p])
            int k = bw[p] >>> 8;
            float t = (float) (k - (((k + 0x20_0000) >>> 22) << 22)) * 0x1p-24f;
            float t2 = t * t;
            float pc = Math.fma(t2, C10, C8);
            pc = Math.fma(t2, pc, C6);
            pc = Math.fma(t2, pc, C4);
            pc = Math.fma(t2, pc, C2);
            x[p] = Math.fma(t2, pc, 1f);
            float ps = Math.fma(t2, S9, S7);
            ps = Math.fma(t2, ps, S5);
            ps = Math.fma(t2, ps, S3);
            float t3 = t2 * t;
            y[p] = Math.fma(t, S1, Math.fma(t3, ps, t * S1_LO));
        }
        for (int p = off; p < off + n; p++) {                  // r·cosOfQuarter, r·sinOfQuarter
            float c = x[p];
            float sn = y[p];
            int q = (((bw[p] >>> 8) + 0x20_0000) >>> 22) & 3;
            float odd = (float) (q & 1);
            x[p] = r[p] * ((float) (1 - ((q + 1) & 2)) * (c * (1f - odd) + sn * odd));
            y[p] = r[p] * ((float) (1 - (q & 2)) * (sn * (1f - odd) + c * odd));
        }
    }

    /** Uniforms of the words {@code a[p], bw[p]}, {@code off <= p < off + n}, into {@code x[p], y[p]}. */
    private static void uniforms(int off, int n, Scratch sc) {
        int[] a = sc.a;
        int[] bw = sc.bw;
        float[] x = sc.x;
        float[] y = sc.y;
        for (int p = off; p < off + n; p++) {
            x[p] = uniformOf(a[p]);
            y[p] = uniformOf(bw[p]);
        }
    }

    private static void checkFill(MemorySegment out, long count) {
        Objects.requireNonNull(out, "out");
        if (count < 0 || count > Long.MAX_VALUE / 4 || out.byteSize() < count * 4) {
            throw new IllegalArgumentException("cannot write " + count + " floats"
                    + (count < 0 || count > Long.MAX_VALUE / 4 ? "" : " (" + count * 4 + " bytes)")
                    + " into a segment of " + out.byteSize() + " bytes");
        }
        if (out.isReadOnly() && count > 0) {
            throw new IllegalArgumentException("cannot write " + count + " floats into a read-only segment");
        }
    }
}
