package org.diffusion4j.schedule;

/**
 * The EDM / variance-exploding noise levels of Karras et al. 2022 ("Elucidating the Design Space of
 * Diffusion-Based Generative Models"), {@code x = x0 + σ·ε} ({@code α = 1}), with {@code σ(t)} the continuous
 * form of their sampling discretization (eq. 5, {@code t = 1 − i/(N−1)}):
 * <pre>
 *   σ(t) = (σ_min^{1/ρ} + t·(σ_max^{1/ρ} − σ_min^{1/ρ}))^ρ
 * </pre>
 * so {@link SigmaGrids#karras} samples it at {@code t = linspace(1, 0, n)}. {@code σ(0) = σ_min} (clean data
 * only when {@code σ_min = 0}), {@code σ(1) = σ_max}. {@code σ_data} is carried for the preconditioning and loss
 * weight of {@code org.diffusion4j.training.EdmPreconditioning}. Immutable.
 *
 * @param sigmaMin  {@code σ_min ≥ 0} (Karras et al. 2022: 0.002)
 * @param sigmaMax  {@code σ_max > σ_min}, finite (80)
 * @param rho       {@code ρ > 0} (7)
 * @param sigmaData {@code σ_data > 0}, the data standard deviation (0.5)
 */
public record EdmSchedule(double sigmaMin, double sigmaMax, double rho, double sigmaData) implements NoiseSchedule {

    /** Validates the parameters. */
    public EdmSchedule {
        if (!(sigmaMin >= 0 && sigmaMax > sigmaMin && sigmaMax < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("need 0 <= sigmaMin < sigmaMax < inf, got sigmaMin = " + sigmaMin
                    + ", sigmaMax = " + sigmaMax);
        }
        if (!(rho > 0 && rho < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("rho must be finite and > 0, got " + rho);
        }
        if (!(sigmaData > 0 && sigmaData < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("sigmaData must be finite and > 0, got " + sigmaData);
        }
    }

    /** Karras et al. 2022's defaults: {@code σ ∈ [0.002, 80]}, {@code ρ = 7}, {@code σ_data = 0.5}. */
    public static EdmSchedule karras2022() {
        return new EdmSchedule(0.002, 80.0, 7.0, 0.5);
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
        double lo = Math.pow(sigmaMin, 1.0 / rho);
        double hi = Math.pow(sigmaMax, 1.0 / rho);
        return Math.pow(lo + t * (hi - lo), rho);
    }

    /** {@code t = (σ^{1/ρ} − σ_min^{1/ρ}) / (σ_max^{1/ρ} − σ_min^{1/ρ})} with {@code σ = e^{−λ/2}}. */
    @Override
    public double tFromLogSnr(double lambda) {
        if (Double.isNaN(lambda)) {
            throw new IllegalArgumentException("logSnr is NaN");
        }
        double sigma = Math.exp(-0.5 * lambda);
        if (sigma < sigmaMin * (1 - 1e-12) || sigma > sigmaMax * (1 + 1e-12)) {
            throw new IllegalArgumentException("sigma = exp(-logSnr/2) = " + sigma + " is outside [" + sigmaMin
                    + ", " + sigmaMax + "]");
        }
        double lo = Math.pow(sigmaMin, 1.0 / rho);
        double hi = Math.pow(sigmaMax, 1.0 / rho);
        return Math.max(0.0, Math.min(1.0, (Math.pow(sigma, 1.0 / rho) - lo) / (hi - lo)));
    }
}
