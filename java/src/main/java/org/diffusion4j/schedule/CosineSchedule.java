package org.diffusion4j.schedule;

/**
 * The continuous cosine schedule of Nichol &amp; Dhariwal 2021 ("Improved Denoising Diffusion Probabilistic
 * Models", eq. 17): {@code ᾱ(t) = f(t)/f(0)}, {@code f(t) = cos²(θ(t))}, {@code θ(t) = (t + s)/(1 + s) · π/2},
 * so
 * <pre>
 *   α(t) = cos θ(t) / cos θ₀ = sin((1 − t)/(1 + s) · π/2) / cos θ₀,
 *   σ(t) = √(sin(θ − θ₀)·sin(θ + θ₀)) / cos θ₀,             θ₀ = θ(0) = s/(1 + s) · π/2,
 * </pre>
 * both written so that they keep full relative precision at either end. {@code α(1) = 0} exactly: the continuous
 * cosine schedule has zero terminal SNR (the discrete {@code squaredcos_cap_v2} table caps β at 0.999 instead,
 * {@link DiscreteVpSchedule#squaredcosCapV2}); {@code s = 0} gives {@code α = cos(πt/2)}, {@code σ = sin(πt/2)}
 * (Salimans &amp; Ho 2022, §4). Immutable.
 *
 * @param s the offset, {@code s ≥ 0} (Nichol &amp; Dhariwal 2021: 0.008)
 */
public record CosineSchedule(double s) implements NoiseSchedule {

    /** Validates {@code s ≥ 0}, finite. */
    public CosineSchedule {
        if (!(s >= 0 && s < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("cosine offset s must be finite and >= 0, got " + s);
        }
    }

    /** Nichol &amp; Dhariwal 2021's offset {@code s = 0.008}. */
    public static CosineSchedule nicholDhariwal() {
        return new CosineSchedule(BetaSchedule.COSINE_OFFSET);
    }

    private double theta0() {
        return s / (1.0 + s) * Math.PI / 2.0;
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException {@inheritDoc}
     */
    @Override
    public double alpha(double t) {
        NoiseSchedule.requireT(t);
        if (t == 0) {
            return 1.0;
        }
        return Math.min(1.0, Math.sin((1.0 - t) / (1.0 + s) * Math.PI / 2.0) / Math.cos(theta0()));
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException {@inheritDoc}
     */
    @Override
    public double sigma(double t) {
        NoiseSchedule.requireT(t);
        if (t == 1) {
            return 1.0;
        }
        double minus = t / (1.0 + s) * Math.PI / 2.0;            // θ − θ₀
        double plus = (t + 2.0 * s) / (1.0 + s) * Math.PI / 2.0;  // θ + θ₀
        return Math.min(1.0, Math.sqrt(Math.sin(minus) * Math.sin(plus)) / Math.cos(theta0()));
    }

    /**
     * Inverse log-SNR: with {@code α² = sigmoid(λ)}, {@code σ² = sigmoid(−λ)} (VP), {@code cos θ = α cos θ₀} and
     * {@code sin θ = √(sin²θ₀ + cos²θ₀·σ²)}, so {@code θ = atan2(sin θ, cos θ)} and
     * {@code t = θ·(1 + s)·2/π − s}. Every {@code λ ∈ [−∞, +∞]} is in range.
     */
    @Override
    public double tFromLogSnr(double lambda) {
        if (Double.isNaN(lambda)) {
            throw new IllegalArgumentException("logSnr is NaN");
        }
        double alpha = Snr.vpAlphaFromLogSnr(lambda);
        double sigma = Snr.vpSigmaFromLogSnr(lambda);
        double c0 = Math.cos(theta0());
        double s0 = Math.sin(theta0());
        double theta = Math.atan2(Math.sqrt(s0 * s0 + c0 * c0 * sigma * sigma), alpha * c0);
        double t = theta * (1.0 + s) * 2.0 / Math.PI - s;
        return Math.max(0.0, Math.min(1.0, t));
    }
}
