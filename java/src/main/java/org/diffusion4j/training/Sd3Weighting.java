package org.diffusion4j.training;

import java.util.Locale;

/**
 * Loss weightings of rectified-flow training over the flow {@code σ} (= shifted {@code t}), as diffusers'
 * {@code compute_loss_weighting_for_sd3} (training_utils.py) implements the SD3 study (Esser et al. 2024,
 * "Scaling Rectified Flow Transformers", §3.1). diffusers' other {@code weighting_scheme} values
 * ({@code "logit_normal"}, {@code "mode"}) change the t-sampler ({@link TimeSampler}), not the weight, and map to
 * {@link #NONE} here.
 */
public enum Sd3Weighting {
    /** Weight 1. */
    NONE,
    /**
     * {@code w(σ) = σ^−2}: reference code diffusers {@code "sigma_sqrt"}, no paper equation (§3.1 of Esser et al.
     * 2024 does not give this weight). Refuses {@code σ = 0} (infinite weight).
     */
    SIGMA_SQRT,
    /**
     * {@code w(σ) = 2 / (π·(1 − 2σ + 2σ²))} (diffusers {@code "cosmap"}), the density of the CosMap sampler
     * (Esser et al. 2024, eq. 21); finite on all of {@code [0, 1]}.
     */
    COSMAP;

    /**
     * The weight at flow noise level {@code σ ∈ [0, 1]}.
     *
     * @throws IllegalArgumentException for {@code σ ∉ [0, 1]}, or {@code σ = 0} with {@link #SIGMA_SQRT}
     */
    public double weight(double sigma) {
        if (!(sigma >= 0 && sigma <= 1)) {
            throw new IllegalArgumentException("flow sigma must be in [0, 1], got " + sigma);
        }
        return switch (this) {
            case NONE -> 1.0;
            case SIGMA_SQRT -> {
                if (sigma == 0) {
                    throw new IllegalArgumentException("sigma_sqrt weighting sigma^-2 is infinite at sigma = 0");
                }
                yield 1.0 / (sigma * sigma);
            }
            case COSMAP -> 2.0 / (Math.PI * (1.0 - 2.0 * sigma + 2.0 * sigma * sigma));
        };
    }

    /**
     * Parses a diffusers {@code weighting_scheme}: {@code "sigma_sqrt"}, {@code "cosmap"}, or {@code "none"},
     * {@code "logit_normal"}, {@code "mode"} (all weight 1).
     *
     * @throws IllegalArgumentException for an unknown name
     */
    public static Sd3Weighting fromName(String name) {
        return switch (name.trim().toLowerCase(Locale.ROOT)) {
            case "sigma_sqrt" -> SIGMA_SQRT;
            case "cosmap" -> COSMAP;
            case "none", "logit_normal", "mode" -> NONE;
            default -> throw new IllegalArgumentException("unknown SD3 weighting scheme '" + name
                    + "'; expected sigma_sqrt, cosmap, logit_normal, mode or none");
        };
    }
}
