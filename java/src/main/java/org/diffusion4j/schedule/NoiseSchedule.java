package org.diffusion4j.schedule;

/**
 * A Gaussian noising process {@code x_t = α(t)·x0 + σ(t)·ε}, {@code ε ~ N(0, I)}, over continuous time
 * {@code t ∈ [0, 1]} ({@code t = 0} data, {@code t = 1} noise; DESIGN.md §2).
 *
 * <p>Every schedule is described by its two coefficients and, equivalently, by its log signal-to-noise ratio
 * {@code λ(t) = log(α²/σ²)} (Kingma et al. 2021, "Variational Diffusion Models", eq. 2), which must be
 * non-increasing in {@code t}. Implementations may take {@code λ = ±∞} at the ends ({@code σ(0) = 0} for clean
 * data, {@code α(1) = 0} for zero terminal SNR, Lin et al. 2023).
 *
 * <p>Methods taking {@code t} throw {@link IllegalArgumentException} for {@code t} outside {@code [0, 1]} or NaN.
 */
public interface NoiseSchedule {

    /**
     * Signal coefficient {@code α(t) ≥ 0} of {@code x_t = α x0 + σ ε}.
     *
     * @param t time in {@code [0, 1]} ({@code t = 0} data, {@code t = 1} noise)
     * @throws IllegalArgumentException for {@code t ∉ [0, 1]} or NaN
     */
    double alpha(double t);

    /**
     * Noise coefficient {@code σ(t) ≥ 0} of {@code x_t = α x0 + σ ε}.
     *
     * @param t time in {@code [0, 1]} ({@code t = 0} data, {@code t = 1} noise)
     * @throws IllegalArgumentException for {@code t ∉ [0, 1]} or NaN
     */
    double sigma(double t);

    /**
     * Log-SNR {@code λ(t) = 2·(ln α(t) − ln σ(t))} (Kingma et al. 2021, eq. 2); {@code +∞} where {@code σ = 0},
     * {@code −∞} where {@code α = 0}.
     *
     * @param t time in {@code [0, 1]} ({@code t = 0} data, {@code t = 1} noise)
     * @throws IllegalArgumentException for {@code t ∉ [0, 1]} or NaN
     */
    default double logSnr(double t) {
        return Snr.logSnr(alpha(t), sigma(t));
    }

    /**
     * Signal-to-noise ratio {@code SNR(t) = α²/σ²} in {@code [0, +∞]}.
     *
     * @param t time in {@code [0, 1]} ({@code t = 0} data, {@code t = 1} noise)
     * @throws IllegalArgumentException for {@code t ∉ [0, 1]} or NaN
     */
    default double snr(double t) {
        return Snr.snr(alpha(t), sigma(t));
    }

    /**
     * Noise level in VE/EDM form {@code σ_VE(t) = σ/α = exp(−λ/2)} (Karras et al. 2022, §2, eq. 4 and
     * Table 1, with {@code s(t) = α(t)}), in {@code [0, +∞]}.
     *
     * @param t time in {@code [0, 1]} ({@code t = 0} data, {@code t = 1} noise)
     * @throws IllegalArgumentException for {@code t ∉ [0, 1]} or NaN
     */
    default double sigmaVe(double t) {
        return Snr.sigmaVe(alpha(t), sigma(t));
    }

    /**
     * Inverse of {@link #logSnr}: the time {@code t ∈ [0, 1]} with {@code λ(t) = logSnr}. Where {@code λ} is
     * constant over an interval the smallest such {@code t} is returned.
     *
     * @throws IllegalArgumentException if {@code logSnr} is NaN or outside {@code [λ(1), λ(0)]}
     */
    double tFromLogSnr(double logSnr);

    /**
     * Inverse of {@link #sigmaVe}: {@code t} with {@code σ(t)/α(t) = sigmaVe}, via {@code λ = −2 ln σ_VE}.
     *
     * @throws IllegalArgumentException if {@code sigmaVe} is negative, NaN or outside the schedule's range
     */
    default double tFromSigmaVe(double sigmaVe) {
        if (!(sigmaVe >= 0)) {
            throw new IllegalArgumentException("sigmaVe must be >= 0, got " + sigmaVe);
        }
        return tFromLogSnr(-2.0 * Math.log(sigmaVe));
    }

    /**
     * Whether {@code α(1) = 0}, i.e. the terminal SNR is exactly zero (Lin et al. 2023, "Common Diffusion Noise
     * Schedules and Sample Steps are Flawed", §3.1). With such a schedule an {@code EPSILON} prediction carries no
     * information about {@code x0} at {@code t = 1}.
     */
    default boolean hasZeroTerminalSnr() {
        return alpha(1.0) == 0.0;
    }

    /**
     * Checks {@code t ∈ [0, 1]} and returns it (the check every method taking {@code t} makes).
     *
     * @param t a time
     * @return {@code t}
     * @throws IllegalArgumentException for {@code t ∉ [0, 1]} or NaN, naming it
     */
    static double requireT(double t) {
        if (!(t >= 0.0 && t <= 1.0)) {
            throw new IllegalArgumentException("t must be in [0, 1] (t = 0 data, t = 1 noise), got " + t);
        }
        return t;
    }
}
