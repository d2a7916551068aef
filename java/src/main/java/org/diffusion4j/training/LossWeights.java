package org.diffusion4j.training;

import org.diffusion4j.schedule.Prediction;

/**
 * Per-sample loss weights that depend on the noise level only. See also {@link EdmPreconditioning#lossWeight}
 * (EDM {@code λ(σ)}) and {@link Sd3Weighting} (SD3 {@code sigma_sqrt}, {@code cosmap}).
 */
public final class LossWeights {

    private LossWeights() {
    }

    /**
     * Min-SNR-γ weight (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting Strategy", §3.4),
     * the weight that turns the plain MSE on {@code target} into an x0-space loss weighted by
     * {@code min(SNR, γ)}:
     * <pre>
     *   SAMPLE (x0)  min(SNR, γ)
     *   EPSILON      min(SNR, γ) / SNR
     *   V            min(SNR, γ) / (SNR + 1)              (assumes a VP schedule, α² + σ² = 1)
     *   VELOCITY     min(SNR, γ) / (1 + √SNR)²            (this library's extension, below)
     * </pre>
     * The VELOCITY row follows the same derivation: from {@code x0 = (x_t − σ u)/(α + σ)} an error {@code δu}
     * is an x0 error {@code σ δu/(α + σ) = δu/(1 + √SNR)}. diffusers' training scripts use the first three rows
     * ({@code compute_snr}, {@code snr_gamma}); Hang et al. recommend {@code γ = 5}.
     *
     * @param snr    {@code SNR = α²/σ² ∈ [0, +∞]}
     * @param gamma  {@code γ > 0}
     * @param target what the network regresses
     * @throws IllegalArgumentException for NaN/negative SNR or {@code γ ≤ 0}, and for {@code SNR = 0} with an
     *                                  {@code EPSILON} target: {@code min(0, γ)/0} is undefined — zero terminal
     *                                  SNR needs a V or VELOCITY target (Lin et al. 2023, §3.2)
     */
    public static double minSnr(double snr, double gamma, Prediction target) {
        if (!(snr >= 0)) {
            throw new IllegalArgumentException("SNR must be >= 0, got " + snr);
        }
        if (!(gamma > 0 && gamma < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("min-SNR gamma must be finite and > 0, got " + gamma);
        }
        double clipped = Math.min(snr, gamma);
        return switch (target) {
            case SAMPLE -> clipped;
            case EPSILON -> {
                if (snr == 0) {
                    throw new IllegalArgumentException("min-SNR weight for an epsilon target is undefined at SNR = 0"
                            + " (zero terminal SNR): an epsilon prediction carries no information about x0 there"
                            + " (Lin et al. 2023, sec. 3.2); train with a V or VELOCITY target");
                }
                yield clipped / snr;
            }
            case V -> clipped / (snr + 1.0);
            case VELOCITY -> {
                double root = 1.0 + Math.sqrt(snr);
                yield clipped / (root * root);
            }
        };
    }
}
