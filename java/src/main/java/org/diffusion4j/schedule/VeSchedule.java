package org.diffusion4j.schedule;

/**
 * The variance-exploding schedule of Song et al. 2021 ("Score-Based Generative Modeling through SDEs", eq. 9
 * and App. C): {@code x_t = x0 + σ(t)·ε} ({@code α = 1}) with the geometric noise levels
 * {@code σ(t) = σ_min·(σ_max/σ_min)^t}. {@code σ(0) = σ_min > 0}: {@code t = 0} is data up to {@code σ_min}.
 * Immutable.
 *
 * @param sigmaMin {@code σ_min > 0} (Song et al. 2021, CIFAR-10: 0.01)
 * @param sigmaMax {@code σ_max > σ_min}, finite (50)
 */
public record VeSchedule(double sigmaMin, double sigmaMax) implements NoiseSchedule {

    /** Validates {@code 0 < σ_min < σ_max < ∞}. */
    public VeSchedule {
        if (!(sigmaMin > 0 && sigmaMax > sigmaMin && sigmaMax < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("need 0 < sigmaMin < sigmaMax < inf, got sigmaMin = " + sigmaMin
                    + ", sigmaMax = " + sigmaMax);
        }
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException {@inheritDoc}
     */
    @Override
    public double alpha(double t) {
        NoiseSchedule.requireT(t);
        return 1.0;
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException {@inheritDoc}
     */
    @Override
    public double sigma(double t) {
        NoiseSchedule.requireT(t);
        return sigmaMin * Math.exp(t * Math.log(sigmaMax / sigmaMin));
    }

    /** {@code t = ln(σ/σ_min) / ln(σ_max/σ_min)} with {@code σ = e^{−λ/2}}. */
    @Override
    public double tFromLogSnr(double lambda) {
        if (Double.isNaN(lambda)) {
            throw new IllegalArgumentException("logSnr is NaN");
        }
        double t = (-0.5 * lambda - Math.log(sigmaMin)) / Math.log(sigmaMax / sigmaMin);
        if (t < -1e-12 || t > 1 + 1e-12) {
            throw new IllegalArgumentException("sigma = exp(-logSnr/2) = " + Math.exp(-0.5 * lambda)
                    + " is outside [" + sigmaMin + ", " + sigmaMax + "]");
        }
        return Math.max(0.0, Math.min(1.0, t));
    }
}
