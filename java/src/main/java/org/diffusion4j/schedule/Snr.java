package org.diffusion4j.schedule;

/**
 * Signal-to-noise ratio of {@code x_t = α x0 + σ ε} and its logarithm, as tiny functions of {@code (α, σ)}.
 *
 * <p>{@code SNR = α²/σ²} and {@code λ = log SNR} (Kingma et al. 2021, "Variational Diffusion Models", eq. 2).
 * For variance-preserving processes ({@code α² + σ² = 1}) {@code α² = sigmoid(λ)} and {@code σ² = sigmoid(−λ)}
 * (ibid., §3). Every function refuses NaN, infinite or negative coefficients and {@code α = σ = 0} with an
 * {@link IllegalArgumentException}.
 */
public final class Snr {

    private Snr() {
    }

    /**
     * {@code SNR = α²/σ²} in {@code [0, +∞]} ({@code +∞} at {@code σ = 0}).
     *
     * @throws IllegalArgumentException for a NaN, infinite or negative coefficient, or {@code α = σ = 0}
     */
    public static double snr(double alpha, double sigma) {
        requireCoefficients(alpha, sigma);
        double r = alpha / sigma;
        return r * r;
    }

    /**
     * {@code λ = 2·(ln α − ln σ)}; {@code +∞} at {@code σ = 0}, {@code −∞} at {@code α = 0}.
     *
     * @throws IllegalArgumentException for a NaN, infinite or negative coefficient, or {@code α = σ = 0}
     */
    public static double logSnr(double alpha, double sigma) {
        requireCoefficients(alpha, sigma);
        return 2.0 * (Math.log(alpha) - Math.log(sigma));
    }

    /**
     * VE/EDM noise level {@code σ_VE = σ/α} (Karras et al. 2022, §2, eq. 4 and Table 1, with {@code s(t) = α});
     * {@code +∞} at {@code α = 0}.
     *
     * @throws IllegalArgumentException for a NaN, infinite or negative coefficient, or {@code α = σ = 0}
     */
    public static double sigmaVe(double alpha, double sigma) {
        requireCoefficients(alpha, sigma);
        return sigma / alpha;
    }

    /**
     * Log-SNR of a VE noise level: {@code λ = −2 ln σ_VE} ({@code +∞} at {@code σ_VE = 0}, {@code −∞} at
     * {@code +∞}).
     *
     * @throws IllegalArgumentException for a negative or NaN {@code σ_VE}
     */
    public static double logSnrOfSigmaVe(double sigmaVe) {
        if (!(sigmaVe >= 0)) {
            throw new IllegalArgumentException("sigmaVe must be >= 0, got " + sigmaVe);
        }
        return -2.0 * Math.log(sigmaVe);
    }

    /**
     * VP signal coefficient of a log-SNR: {@code α = √sigmoid(λ)} (Kingma et al. 2021, §3).
     *
     * @param logSnr {@code λ = log(α²/σ²)}, may be {@code ±∞}
     * @throws IllegalArgumentException for a NaN {@code λ}
     */
    public static double vpAlphaFromLogSnr(double logSnr) {
        return Math.sqrt(sigmoid(logSnr));
    }

    /**
     * VP noise coefficient of a log-SNR: {@code σ = √sigmoid(−λ)} (Kingma et al. 2021, §3).
     *
     * @param logSnr {@code λ = log(α²/σ²)}, may be {@code ±∞}
     * @throws IllegalArgumentException for a NaN {@code λ}
     */
    public static double vpSigmaFromLogSnr(double logSnr) {
        return Math.sqrt(sigmoid(-logSnr));
    }

    /**
     * {@code sigmoid(x) = 1/(1 + e^{−x})}, evaluated without overflow for either sign; {@code ±∞} map to 1, 0.
     *
     * @throws IllegalArgumentException for NaN
     */
    public static double sigmoid(double x) {
        if (Double.isNaN(x)) {
            throw new IllegalArgumentException("sigmoid of NaN");
        }
        if (x >= 0) {
            return 1.0 / (1.0 + Math.exp(-x));
        }
        double e = Math.exp(x);
        return e / (1.0 + e);
    }

    /**
     * Checks that {@code α} and {@code σ} are finite, non-negative and not both zero.
     *
     * @throws IllegalArgumentException naming the offending value
     */
    public static void requireCoefficients(double alpha, double sigma) {
        if (!(alpha >= 0 && alpha < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("alpha must be finite and >= 0, got " + alpha);
        }
        if (!(sigma >= 0 && sigma < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("sigma must be finite and >= 0, got " + sigma);
        }
        if (alpha == 0 && sigma == 0) {
            throw new IllegalArgumentException("alpha and sigma are both 0: x_t = 0 carries neither data nor noise");
        }
    }
}
