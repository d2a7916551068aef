package org.diffusion4j.schedule;

import java.util.Locale;

/**
 * What a denoising network predicts, for {@code x_t = α x0 + σ ε} (DESIGN.md §2).
 *
 * <ul>
 *   <li>{@link #EPSILON}: the noise {@code ε} (Ho et al. 2020, eq. 14).</li>
 *   <li>{@link #SAMPLE}: the clean data {@code x0} (diffusers {@code "sample"}).</li>
 *   <li>{@link #V}: {@code v = α ε − σ x0} (Salimans &amp; Ho 2022, "Progressive Distillation", §4;
 *       diffusers {@code "v_prediction"}).</li>
 *   <li>{@link #VELOCITY}: the rectified-flow velocity {@code u = ε − x0} (Liu et al. 2022, eq. 1; Lipman et al.
 *       2023 with {@code α = 1 − t, σ = t}; Esser et al. 2024, §2). It equals {@code dx_t/dt} only for the
 *       rectified-flow schedule, but as a target it is defined for any {@code (α, σ)}.</li>
 * </ul>
 *
 * <p>Each target is linear in {@code (x0, ε)}: {@code target = x0Coefficient·x0 + epsCoefficient·ε}, which is the
 * form the fused noising op consumes. Conversions between predictions given {@code x_t}:
 * {@link PredictionConversion}.
 */
public enum Prediction {
    /** Noise {@code ε}: target {@code 0·x0 + 1·ε}. */
    EPSILON,
    /** Clean data {@code x0}: target {@code 1·x0 + 0·ε}. */
    SAMPLE,
    /** {@code v = α ε − σ x0}: target {@code −σ·x0 + α·ε}. */
    V,
    /** Flow velocity {@code u = ε − x0}: target {@code −1·x0 + 1·ε}. */
    VELOCITY;

    /**
     * Coefficient of {@code x0} in this target at {@code (α, σ)}.
     *
     * @throws IllegalArgumentException if {@code (α, σ)} are not valid coefficients ({@link Snr#requireCoefficients})
     */
    public double x0Coefficient(double alpha, double sigma) {
        Snr.requireCoefficients(alpha, sigma);
        return switch (this) {
            case EPSILON -> 0.0;
            case SAMPLE -> 1.0;
            case V -> -sigma;
            case VELOCITY -> -1.0;
        };
    }

    /**
     * Coefficient of {@code ε} in this target at {@code (α, σ)}.
     *
     * @throws IllegalArgumentException if {@code (α, σ)} are not valid coefficients ({@link Snr#requireCoefficients})
     */
    public double epsCoefficient(double alpha, double sigma) {
        Snr.requireCoefficients(alpha, sigma);
        return switch (this) {
            case EPSILON -> 1.0;
            case SAMPLE -> 0.0;
            case V -> alpha;
            case VELOCITY -> 1.0;
        };
    }

    /** The training target for one element: {@code x0Coefficient·x0 + epsCoefficient·ε}. */
    public double target(double x0, double eps, double alpha, double sigma) {
        return x0Coefficient(alpha, sigma) * x0 + epsCoefficient(alpha, sigma) * eps;
    }

    /**
     * Parses a prediction name: this enum's names (any case) or the diffusers {@code prediction_type} strings
     * {@code "epsilon"}, {@code "sample"}, {@code "v_prediction"}, {@code "flow_prediction"}.
     *
     * @throws IllegalArgumentException for an unknown name
     */
    public static Prediction fromName(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        return switch (n) {
            case "epsilon", "eps" -> EPSILON;
            case "sample", "x0" -> SAMPLE;
            case "v", "v_prediction" -> V;
            case "velocity", "flow_prediction", "flow" -> VELOCITY;
            default -> throw new IllegalArgumentException("unknown prediction type '" + name
                    + "'; expected one of epsilon, sample, v_prediction, velocity");
        };
    }
}
