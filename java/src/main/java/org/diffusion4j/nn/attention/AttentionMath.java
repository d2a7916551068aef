package org.diffusion4j.nn.attention;

/**
 * The scalar arithmetic of fused attention, written once so that the CPU loops of
 * {@code org.diffusion4j.cpu.CpuAttention} (which evaluate it lane by lane in the same float operations) and the
 * CUDA kernels of {@code org.diffusion4j.cuda.CudaAttention} ({@code native/src/attention_math.cuh}) read the same
 * formulas. These are kernel building blocks, public so that both backends' packages can share them; they check no
 * ranges (each method states its domain) and are not meant for callers of the attention ops.
 *
 * <h2>Online softmax (Dao 2023, FlashAttention-2, Algorithm 1, lines 8–10 and 12–13)</h2>
 * Scores are kept unscaled, {@code s = q·k}; with {@code c = scale·log2(e)} (rounded to float once) every
 * exponential is a power of two, {@code e^(scale·s) = 2^(c·s)}. Per query row, after key tile {@code j}:
 * <pre>
 *   m_j   = max(m_{j−1}, max_k s_k)                      (running maximum of the raw scores; m_0 = −∞)
 *   mc_j  = fl(m_j·c)                                    (the shift every exponential of tile j uses)
 *   p_k   = exp2(fma(s_k, c, −mc_j))                     (≤ 1 up to rounding; {@link #exp2})
 *   α_j   = exp2(mc_{j−1} − mc_j)                         (float; exactly 1 when the maximum did not change)
 *   l_j   = α_j·l_{j−1} + Σ_k p_k                         (float64 running sum; the tile sum in float)
 *   O_j   = α_j·O_{j−1} + P·V_j                           (unnormalised output)
 * end:
 *   O     = O_last / l                                   (one float division per row: O·fl(1/l))
 *   L     = mc_last·ln 2 + ln l                          (natural log-sum-exp of scale·s, saved for backward)
 * </pre>
 *
 * <h2>Backward (Dao 2023, Algorithm 2, lines 11–20; the scale applied as in §3.1.2)</h2>
 * <pre>
 *   D_i   = Σ_d dO_id·O_id                                (float64 sum, rounded to float once)
 *   Lc_i  = fl(L_i·log2(e))
 *   P_ik  = exp2(fma(s_ik, c, −Lc_i))                     (= softmax(scale·S) recomputed from L)
 *   dV    = Pᵀ·dO,   dP = dO·Vᵀ
 *   dS    = P∘(dP − D)                                    (float: fl(P·fl(dP − D)))
 *   dQ    = scale·dS·K,   dK = scale·dSᵀ·Q
 * </pre>
 *
 * <h2>exp2 (the vectorisable exponential)</h2>
 * {@code 2^x} for {@code x ≤ 127}: {@code x} is clamped to {@code [−125, ∞)} (so results are normal floats;
 * a true value below {@code 2^−125} becomes {@code 2^−125}, which against a row sum {@code ≥ 1} is far below
 * float resolution), split as {@code x = k + f} with integer {@code k = rint(x)} (round half to even, by adding and
 * subtracting {@code 1.5·2^23}) and {@code f ∈ [−1/2, 1/2]}, {@code 2^f} by the degree-7 Taylor polynomial of {@code e^(f·ln 2)} in Horner form
 * with fused multiply-adds (truncation error below {@code 5·10^−9}), and {@code 2^k} built from its exponent
 * bits. Measured maximum relative error against float64 {@code 2^x}: about {@code 7·10^−8} (under one float ulp).
 * NaN gives NaN. Only the exact IEEE operations {@code fma}, {@code max}, add, multiply and int/float conversions
 * are used, so the value does not depend on JIT compilation or vector width.
 */
public final class AttentionMath {

    private AttentionMath() {
    }

    /** {@code log2(e)}, rounded to float. */
    public static final float LOG2E = (float) (1.0 / Math.log(2.0));
    /** {@code ln 2} in float64. */
    public static final double LN2 = Math.log(2.0);
    /** Smallest argument {@link #exp2} evaluates; below it the result is {@code 2^−125}. */
    public static final float EXP2_MIN = -125f;

    // Taylor coefficients E_n = ln2^n / n! of 2^f = e^(f·ln 2), n = 1..7, each rounded to float.
    /** {@code ln 2}, the degree-1 Taylor coefficient of {@code 2^f}, rounded to float. */
    public static final float E1 = (float) LN2;
    /** {@code ln2²/2!}, the degree-2 Taylor coefficient of {@code 2^f}, rounded to float. */
    public static final float E2 = (float) (LN2 * LN2 / 2);
    /** {@code ln2³/3!}, the degree-3 Taylor coefficient of {@code 2^f}, rounded to float. */
    public static final float E3 = (float) (Math.pow(LN2, 3) / 6);
    /** {@code ln2⁴/4!}, the degree-4 Taylor coefficient of {@code 2^f}, rounded to float. */
    public static final float E4 = (float) (Math.pow(LN2, 4) / 24);
    /** {@code ln2⁵/5!}, the degree-5 Taylor coefficient of {@code 2^f}, rounded to float. */
    public static final float E5 = (float) (Math.pow(LN2, 5) / 120);
    /** {@code ln2⁶/6!}, the degree-6 Taylor coefficient of {@code 2^f}, rounded to float. */
    public static final float E6 = (float) (Math.pow(LN2, 6) / 720);
    /** {@code ln2⁷/7!}, the degree-7 Taylor coefficient of {@code 2^f}, rounded to float. */
    public static final float E7 = (float) (Math.pow(LN2, 7) / 5040);

    /**
     * {@code c = scale·log2(e)}, the factor that turns {@code e^(scale·s)} into {@code 2^(c·s)}.
     */
    public static float log2Scale(float scale) {
        return (float) (scale * (1.0 / Math.log(2.0)));
    }

    /** {@code 1.5·2^23}: {@code (x + ROUNDER) − ROUNDER} rounds {@code |x| < 2^22} to the nearest integer (ties even). */
    public static final float ROUNDER = 12582912f;

    /** The integer part {@code k = rint(x)} of {@link #exp2}, as a float; exact for {@code |x| < 2^22}. */
    public static float exp2IntPart(float clamped) {
        return (clamped + ROUNDER) - ROUNDER;
    }

    /** {@code 2^f} for {@code f ∈ [−1/2, 1/2]}: degree-7 Taylor polynomial of {@code e^(f ln 2)}, Horner with fma. */
    public static float exp2Poly(float f) {
        return Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(E7, f, E6), f, E5), f, E4), f, E3),
                f, E2), f, E1), f, 1f);
    }

    /**
     * {@code 2^k} for an integral float {@code k ∈ [−126, 127]}, exactly, from its exponent bits. Unchecked (it
     * runs per element): outside that range, or for a non-integral {@code k}, the result is not {@code 2^k}
     * (another power of two, zero, infinity or NaN). {@link #exp2} calls it only with {@code k ∈ [−125, 127]}.
     */
    public static float pow2Int(float k) {
        return Float.intBitsToFloat(((int) k + 127) << 23);
    }

    /**
     * {@code 2^x} for {@code x ≤ 127} as described in the class comment (the scalar form of the CPU loops; bitwise
     * the same values).
     */
    public static float exp2(float x) {
        float v = Math.max(x, EXP2_MIN);
        float k = exp2IntPart(v);
        return exp2Poly(v - k) * pow2Int(k);
    }

    /** {@code P = exp2(fma(s, c, −shift))}: one softmax numerator (forward: shift = mc; backward: shift = Lc). */
    public static float prob(float s, float c, float shift) {
        return exp2(Math.fma(s, c, -shift));
    }

    /** {@code α = exp2(mcOld − mcNew)}: the factor that moves a row's sums from shift {@code mcOld} to {@code mcNew}. */
    public static float rescale(float mcOld, float mcNew) {
        return exp2(mcOld - mcNew);
    }

    /** {@code L = mc·ln 2 + ln l}: the natural log-sum-exp of the scaled scores of one row, rounded once. */
    public static float logSumExp(float mc, double l) {
        return (float) (mc * LN2 + StrictMath.log(l));
    }

    /** {@code Lc = fl(L·log2(e))}: the backward shift of one row. */
    public static float lseShift(float lse) {
        return (float) (lse * (1.0 / Math.log(2.0)));
    }

    /** {@code dS = P·(dP − D)} in float, two roundings. */
    public static float dScore(float p, float dp, float d) {
        return p * (dp - d);
    }
}
