package org.diffusion4j.sampling;

import org.diffusion4j.schedule.Snr;

import java.util.Objects;

/**
 * One noise level of a sampling grid: the model time {@code t} and the coefficients of
 * {@code x_t = α·x0 + σ·ε} there (DESIGN.md §2: {@code t = 0} data, {@code t = 1} noise).
 *
 * <p>{@code t} is only what the {@link Denoiser} is conditioned on; every sampler formula uses {@code (α, σ)}.
 * The final level of a grid is usually {@link #clean()} ({@code α = 1, σ = 0}), at which no model is evaluated.
 *
 * @param t     model time in {@code [0, 1]}
 * @param alpha signal coefficient {@code α ≥ 0}, finite
 * @param sigma noise coefficient {@code σ ≥ 0}, finite; not both zero
 */
public record Level(double t, double alpha, double sigma) {

    /**
     * Validates the level.
     *
     * @throws IllegalArgumentException for {@code t ∉ [0, 1]} or invalid coefficients ({@link Snr#requireCoefficients})
     */
    public Level {
        if (!(t >= 0 && t <= 1)) {
            throw new IllegalArgumentException("level time t must be in [0, 1], got " + t);
        }
        Snr.requireCoefficients(alpha, sigma);
    }

    /** Clean data: {@code t = 0, α = 1, σ = 0}. */
    public static Level clean() {
        return new Level(0.0, 1.0, 0.0);
    }

    /**
     * VE/EDM noise level {@code σ_VE = σ/α}: the {@code σ(t)} of Karras et al. 2022 ("Elucidating the Design Space
     * of Diffusion-Based Generative Models", §2, eq. 4 and Table 1) when their scale {@code s(t)} is {@code α}.
     *
     * @return {@code σ/α ≥ 0}; {@code +∞} at {@code α = 0}
     */
    public double sigmaVe() {
        return sigma / alpha;
    }

    /**
     * Half log-SNR {@code λ_DPM = ln(α/σ) = logSnr/2}, the time variable of DPM-Solver and DPM-Solver++ (Lu et al.
     * 2022a, "DPM-Solver", §3.1, which calls it the half-logSNR); half of
     * {@link org.diffusion4j.schedule.NoiseSchedule#logSnr} ({@code ln(α²/σ²)}, the {@code λ} of the
     * {@code schedule} package). Step sizes {@code h = λ_s − λ_t} of the samplers are in this unit.
     *
     * @return {@code ln α − ln σ}; {@code +∞} at {@code σ = 0}, {@code −∞} at {@code α = 0}
     */
    public double halfLogSnr() {
        return Math.log(alpha) - Math.log(sigma);
    }

    /**
     * {@code σ_VE(to)/σ_VE(this) = e^{−(λ_to − λ_this)}}, computed as {@code α·σ_to/(σ·α_to)} so that it is finite
     * (0) when this level has {@code α = 0}.
     *
     * @param to the other level (usually the next, less noisy one)
     * @return {@code q = σ_VE(to)/σ_VE(this) ≥ 0}
     * @throws NullPointerException     for a null {@code to}
     * @throws IllegalArgumentException when this level has {@code σ = 0} or {@code to} has {@code α = 0}
     */
    public double ratioTo(Level to) {
        Objects.requireNonNull(to, "to");
        if (sigma == 0 || to.alpha == 0) {
            throw new IllegalArgumentException("sigma_VE ratio from " + this + " to " + to + " is undefined");
        }
        return alpha * to.sigma / (sigma * to.alpha);
    }
}
