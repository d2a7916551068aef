package org.diffusion4j.training;

/**
 * EDM preconditioning at one noise level (Karras et al. 2022, "Elucidating the Design Space of
 * Diffusion-Based Generative Models", Table 1, "Ours" column, derived in App. B.6): the denoiser is
 * {@code D(x; σ) = c_skip·x + c_out·F(c_in·x; c_noise)} with
 * <pre>
 *   c_skip = σ_data² / (σ² + σ_data²)      c_out = σ·σ_data / √(σ² + σ_data²)
 *   c_in   = 1 / √(σ² + σ_data²)           c_noise = ¼·ln σ
 * </pre>
 * and the training loss weight {@code λ(σ) = (σ² + σ_data²)/(σ·σ_data)² = 1/c_out²}, which makes the effective
 * weight on {@code F} equal to one at every σ. Here {@code x = x0 + σ ε} ({@code α = 1}); for a VP model use
 * {@code σ = σ_VE} and feed {@code x_t/α}.
 *
 * @param cSkip  weight of the skip connection
 * @param cOut   scale of the network output
 * @param cIn    scale of the network input
 * @param cNoise the network's noise conditioning
 */
public record EdmPreconditioning(double cSkip, double cOut, double cIn, double cNoise) {

    /** EDM's {@code σ_data = 0.5}. */
    public static final double SIGMA_DATA = 0.5;

    /**
     * The coefficients at noise level {@code σ}.
     *
     * @throws IllegalArgumentException for {@code σ ≤ 0} or non-finite ({@code c_noise = ln σ/4} is undefined at 0),
     *                                  or {@code σ_data ≤ 0}
     */
    public static EdmPreconditioning of(double sigma, double sigmaData) {
        requireSigma(sigma, sigmaData);
        double s2 = sigma * sigma + sigmaData * sigmaData;
        double root = Math.sqrt(s2);
        return new EdmPreconditioning(sigmaData * sigmaData / s2, sigma * sigmaData / root, 1.0 / root,
                0.25 * Math.log(sigma));
    }

    /**
     * EDM loss weight {@code λ(σ) = (σ² + σ_data²)/(σ·σ_data)²} (Karras et al. 2022, Table 1).
     *
     * @throws IllegalArgumentException for {@code σ ≤ 0} (infinite weight) or non-finite, or {@code σ_data ≤ 0}
     */
    public static double lossWeight(double sigma, double sigmaData) {
        requireSigma(sigma, sigmaData);
        double ss = sigma * sigmaData;
        return (sigma * sigma + sigmaData * sigmaData) / (ss * ss);
    }

    /** One element of the denoiser output: {@code c_skip·x + c_out·F}. */
    public double denoised(double x, double networkOutput) {
        return cSkip * x + cOut * networkOutput;
    }

    /** One element of the effective regression target of {@code F}: {@code (x0 − c_skip·x)/c_out} (eq. 8). */
    public double networkTarget(double x0, double x) {
        return (x0 - cSkip * x) / cOut;
    }

    private static void requireSigma(double sigma, double sigmaData) {
        if (!(sigma > 0 && sigma < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("EDM sigma must be finite and > 0, got " + sigma);
        }
        if (!(sigmaData > 0 && sigmaData < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("sigmaData must be finite and > 0, got " + sigmaData);
        }
    }
}
