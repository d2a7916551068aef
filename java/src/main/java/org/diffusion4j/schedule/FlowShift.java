package org.diffusion4j.schedule;

/**
 * Timestep shifts for rectified-flow models: tiny pure functions on {@code t ∈ [0, 1]} (or a flow {@code σ},
 * which equals {@code t} for the unshifted path).
 *
 * <ul>
 *   <li>{@link #shift}: the SD3 shift {@code σ' = s·σ / (1 + (s − 1)·σ)} (Esser et al. 2024, "Scaling Rectified
 *       Flow Transformers", eq. 23; there {@code s = √(m/n)} maps a schedule tuned for resolution {@code n} to
 *       resolution {@code m}).</li>
 *   <li>{@link #timeShiftExponential}: Flux's {@code time_shift(μ, e, t) = e^μ / (e^μ + (1/t − 1)^e)} (Black
 *       Forest Labs, {@code flux/src/flux/sampling.py}; diffusers {@code FlowMatchEulerDiscreteScheduler.time_shift}).
 *       For {@code e = 1} it is exactly the SD3 shift with {@code s = e^μ}:
 *       {@code e^μ t / (e^μ t + 1 − t)}.</li>
 *   <li>{@link #mu}: the resolution-dependent ("dynamic") {@code μ}, linear in the image sequence length through
 *       {@code (256, 0.5)} and {@code (4096, 1.15)} (Flux {@code get_lin_function}; diffusers
 *       {@code calculate_shift} with {@code base_image_seq_len = 256, max_image_seq_len = 4096,
 *       base_shift = 0.5, max_shift = 1.15}). For Flux the sequence length is {@code (H/16)·(W/16)} (8× VAE, 2×2
 *       patches): 1024² gives 4096 tokens, {@code μ = 1.15}, shift {@code e^1.15 ≈ 3.16}.</li>
 * </ul>
 */
public final class FlowShift {

    /** Flux / diffusers {@code base_image_seq_len}. */
    public static final long BASE_SEQ_LEN = 256;
    /** Flux / diffusers {@code max_image_seq_len}. */
    public static final long MAX_SEQ_LEN = 4096;
    /** Flux / diffusers {@code base_shift} (μ at {@link #BASE_SEQ_LEN}). */
    public static final double BASE_SHIFT = 0.5;
    /** Flux / diffusers {@code max_shift} (μ at {@link #MAX_SEQ_LEN}). */
    public static final double MAX_SHIFT = 1.15;

    private FlowShift() {
    }

    /**
     * SD3 shift {@code σ' = s·σ / (1 + (s − 1)·σ)} (Esser et al. 2024, eq. 23). Maps {@code [0, 1]} onto itself
     * monotonically, fixing 0 and 1.
     *
     * @param sigma the flow noise level (or time) {@code σ ∈ [0, 1]}
     * @param s     the shift {@code s > 0}, finite (1: identity; SD3 uses 3)
     * @return {@code σ' ∈ [0, 1]}
     * @throws IllegalArgumentException for {@code σ ∉ [0, 1]} (or NaN), or {@code s} not finite and positive
     */
    public static double shift(double sigma, double s) {
        requireShift(s);
        NoiseSchedule.requireT(sigma);
        // the quotient can round off 1 at sigma = 1 (s = 0.1 gives 1 + 2^-52): the ends are exact, the rest clamped
        return sigma == 1.0 ? 1.0 : Math.min(1.0, s * sigma / (1.0 + (s - 1.0) * sigma));
    }

    /**
     * Inverse of {@link #shift}: {@code σ = σ' / (s − (s − 1)·σ')}.
     *
     * @param shifted the shifted level {@code σ' ∈ [0, 1]}
     * @param s       the shift {@code s > 0}, finite
     * @return {@code σ ∈ [0, 1]}
     * @throws IllegalArgumentException for {@code σ' ∉ [0, 1]} (or NaN), or {@code s} not finite and positive
     */
    public static double unshift(double shifted, double s) {
        requireShift(s);
        NoiseSchedule.requireT(shifted);
        return shifted == 1.0 ? 1.0 : Math.min(1.0, shifted / (s - (s - 1.0) * shifted));
    }

    /**
     * {@link #shift} applied to every element of a copy of {@code sigmas}.
     *
     * @param sigmas levels in {@code [0, 1]}; not modified
     * @param s      the shift {@code s > 0}, finite
     * @throws NullPointerException     for a null array
     * @throws IllegalArgumentException for an element outside {@code [0, 1]}, or {@code s} not finite and positive
     */
    public static double[] shiftAll(double[] sigmas, double s) {
        double[] out = sigmas.clone();
        for (int i = 0; i < out.length; i++) {
            out[i] = shift(out[i], s);
        }
        return out;
    }

    /**
     * Flux's exponential time shift {@code e^μ / (e^μ + (1/t − 1)^e)}; 0 at {@code t = 0}, 1 at {@code t = 1}.
     *
     * @param mu       the shift {@code μ} (finite)
     * @param exponent {@code e > 0} (Flux: 1)
     * @param t        in {@code [0, 1]}
     * @return the shifted time in {@code [0, 1]}
     * @throws IllegalArgumentException for a non-finite {@code μ}, {@code e} not finite and positive, or
     *                                  {@code t ∉ [0, 1]}
     */
    public static double timeShiftExponential(double mu, double exponent, double t) {
        requireFinite(mu, "mu");
        requireExponent(exponent);
        NoiseSchedule.requireT(t);
        if (t == 0) {
            return 0.0;
        }
        // e^μ / (e^μ + r^e) with r = 1/t − 1, as the logistic function of μ − e·ln r: no overflow of e^μ
        // for large |μ| (the dynamic μ of a long sequence), and exactly 1 at t = 1 (ln 0 = −∞).
        double z = mu - exponent * (Math.log1p(-t) - Math.log(t));
        return 1.0 / (1.0 + Math.exp(-z));
    }

    /**
     * diffusers' linear time shift ({@code time_shift_type="linear"}) {@code μ / (μ + (1/t − 1)^e)}.
     *
     * @param mu       {@code μ > 0}
     * @param exponent {@code e > 0}
     * @param t        in {@code [0, 1]}
     * @return the shifted time in {@code [0, 1]}
     * @throws IllegalArgumentException for {@code μ} or {@code e} not finite and positive, or {@code t ∉ [0, 1]}
     */
    public static double timeShiftLinear(double mu, double exponent, double t) {
        if (!(mu > 0 && mu < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("mu must be finite and > 0 for the linear time shift, got " + mu);
        }
        requireExponent(exponent);
        NoiseSchedule.requireT(t);
        if (t == 0) {
            return 0.0;
        }
        return mu / (mu + Math.pow(1.0 / t - 1.0, exponent));
    }

    /**
     * Resolution-dependent {@code μ = m·L + b}, the line through {@code (baseSeqLen, baseShift)} and
     * {@code (maxSeqLen, maxShift)} (Flux {@code get_lin_function}; diffusers {@code calculate_shift}). Not
     * clamped: like the references it extrapolates beyond {@code maxSeqLen}.
     *
     * @param imageSeqLen the image's token count {@code L ≥ 1}
     * @param baseSeqLen  the token count where {@code μ = baseShift} (Flux: 256)
     * @param maxSeqLen   the token count where {@code μ = maxShift} (Flux: 4096), not {@code baseSeqLen}
     * @param baseShift   {@code μ} at {@code baseSeqLen}, finite (Flux: 0.5)
     * @param maxShift    {@code μ} at {@code maxSeqLen}, finite (Flux: 1.15)
     * @return {@code μ}, finite
     * @throws IllegalArgumentException if {@code baseSeqLen == maxSeqLen}, {@code imageSeqLen < 1}, a shift is
     *                                  not finite, or {@code μ} overflows
     */
    public static double mu(long imageSeqLen, long baseSeqLen, long maxSeqLen, double baseShift, double maxShift) {
        requireFinite(baseShift, "baseShift");
        requireFinite(maxShift, "maxShift");
        if (imageSeqLen < 1) {
            throw new IllegalArgumentException("imageSeqLen must be >= 1, got " + imageSeqLen);
        }
        if (baseSeqLen == maxSeqLen) {
            throw new IllegalArgumentException("baseSeqLen and maxSeqLen must differ, both are " + baseSeqLen);
        }
        double m = (maxShift - baseShift) / (double) (maxSeqLen - baseSeqLen);
        double b = baseShift - m * baseSeqLen;
        double mu = imageSeqLen * m + b;
        if (!Double.isFinite(mu)) {
            throw new IllegalArgumentException("mu is not finite (" + mu + ") for imageSeqLen " + imageSeqLen
                    + " on the line through (" + baseSeqLen + ", " + baseShift + ") and (" + maxSeqLen + ", "
                    + maxShift + ")");
        }
        return mu;
    }

    /**
     * {@link #mu(long, long, long, double, double)} with the Flux / diffusers defaults (256, 4096, 0.5, 1.15).
     *
     * @param imageSeqLen the image's token count {@code L ≥ 1}
     * @throws IllegalArgumentException for {@code imageSeqLen < 1}
     */
    public static double mu(long imageSeqLen) {
        return mu(imageSeqLen, BASE_SEQ_LEN, MAX_SEQ_LEN, BASE_SHIFT, MAX_SHIFT);
    }

    private static void requireShift(double s) {
        if (!(s > 0 && s < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("shift must be finite and > 0, got " + s);
        }
    }

    private static void requireExponent(double e) {
        if (!(e > 0 && e < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("exponent must be finite and > 0, got " + e);
        }
    }

    private static void requireFinite(double x, String name) {
        if (!Double.isFinite(x)) {
            throw new IllegalArgumentException(name + " must be finite, got " + x);
        }
    }
}
