package org.diffusion4j.schedule;

/**
 * Exact conversion between two {@link Prediction}s at one noise level: per element
 * {@code out = a·x_t + b·pred}, with {@code (a, b)} functions of {@code (α, σ)} only.
 *
 * <p>All formulas follow from {@code x_t = α x0 + σ ε} and the target definitions
 * ({@code v = α ε − σ x0}, Salimans &amp; Ho 2022, §4; {@code u = ε − x0}, Liu et al. 2022, eq. 1):
 * <pre>
 *   from EPSILON:  x0 = (x_t − σ ε)/α            v = (−σ x_t + (α²+σ²) ε)/α      u = (−x_t + (α+σ) ε)/α
 *   from SAMPLE:   ε  = (x_t − α x0)/σ           v = (α x_t − (α²+σ²) x0)/σ      u = (x_t − (α+σ) x0)/σ
 *   from V:        x0 = (α x_t − σ v)/(α²+σ²)    ε = (σ x_t + α v)/(α²+σ²)       u = ((σ−α) x_t + (α+σ) v)/(α²+σ²)
 *   from VELOCITY: x0 = (x_t − σ u)/(α+σ)        ε = (x_t + α u)/(α+σ)           v = ((α−σ) x_t + (α²+σ²) u)/(α+σ)
 * </pre>
 * (For VP schedules {@code α²+σ² = 1}, so e.g. {@code x0 = α x_t − σ v}, Salimans &amp; Ho 2022, §4.)
 *
 * <p><b>Edge cases.</b> Conversions <em>from</em> {@code EPSILON} need {@code α > 0}: at {@code α = 0}
 * ({@code x_t = σ ε}, zero terminal SNR, rectified flow at {@code t = 1}) an ε prediction says nothing about
 * {@code x0} (Lin et al. 2023, §3.2). Conversions <em>from</em> {@code SAMPLE} need {@code σ > 0}: at
 * {@code σ = 0} ({@code x_t = α x0}, clean data) an x0 prediction says nothing about {@code ε}. These throw
 * {@link IllegalArgumentException}. From {@code V} (determinant {@code α²+σ²}) and {@code VELOCITY}
 * (determinant {@code α+σ}) every conversion is defined for all valid {@code (α, σ)}; the identity conversion is
 * always defined.
 *
 * <p>The canonical constructor checks nothing: a hand-built record need not be a valid conversion.
 * {@link #of} is the factory that computes sound coefficients; use the constructor only to carry coefficients
 * computed elsewhere.
 *
 * @param from the prediction the network produced
 * @param to   the prediction wanted
 * @param a    coefficient of {@code x_t}
 * @param b    coefficient of {@code pred}
 */
public record PredictionConversion(Prediction from, Prediction to, double a, double b) {

    /**
     * The coefficients converting {@code from} to {@code to} at {@code (α, σ)}.
     *
     * @param from  the prediction the network produced
     * @param to    the prediction wanted
     * @param alpha {@code α ≥ 0}, finite
     * @param sigma {@code σ ≥ 0}, finite, not both zero
     * @throws NullPointerException     for a null {@code from} or {@code to}
     * @throws IllegalArgumentException if {@code (α, σ)} are invalid ({@link Snr#requireCoefficients}) or the
     *                                  conversion is undefined there ({@code EPSILON→·} at {@code α = 0},
     *                                  {@code SAMPLE→·} at {@code σ = 0})
     */
    public static PredictionConversion of(Prediction from, Prediction to, double alpha, double sigma) {
        java.util.Objects.requireNonNull(from, "from");
        java.util.Objects.requireNonNull(to, "to");
        Snr.requireCoefficients(alpha, sigma);
        if (from == to) {
            return new PredictionConversion(from, to, 0.0, 1.0);
        }
        double sumSq = alpha * alpha + sigma * sigma;  // det of (x0, ε) -> (x_t, v)
        double sum = alpha + sigma;                    // det of (x0, ε) -> (x_t, u)
        return switch (from) {
            case EPSILON -> {
                requirePositive(alpha, "alpha", from, to,
                        "x_t = sigma*eps carries no information about x0 (zero SNR; Lin et al. 2023, sec. 3.2)");
                yield switch (to) {
                    case SAMPLE -> new PredictionConversion(from, to, 1.0 / alpha, -sigma / alpha);
                    case V -> new PredictionConversion(from, to, -sigma / alpha, sumSq / alpha);
                    case VELOCITY -> new PredictionConversion(from, to, -1.0 / alpha, sum / alpha);
                    case EPSILON -> throw new AssertionError();
                };
            }
            case SAMPLE -> {
                requirePositive(sigma, "sigma", from, to,
                        "x_t = alpha*x0 carries no information about eps (clean data, t = 0)");
                yield switch (to) {
                    case EPSILON -> new PredictionConversion(from, to, 1.0 / sigma, -alpha / sigma);
                    case V -> new PredictionConversion(from, to, alpha / sigma, -sumSq / sigma);
                    case VELOCITY -> new PredictionConversion(from, to, 1.0 / sigma, -sum / sigma);
                    case SAMPLE -> throw new AssertionError();
                };
            }
            case V -> switch (to) {
                case SAMPLE -> new PredictionConversion(from, to, alpha / sumSq, -sigma / sumSq);
                case EPSILON -> new PredictionConversion(from, to, sigma / sumSq, alpha / sumSq);
                case VELOCITY -> new PredictionConversion(from, to, (sigma - alpha) / sumSq, sum / sumSq);
                case V -> throw new AssertionError();
            };
            case VELOCITY -> switch (to) {
                case SAMPLE -> new PredictionConversion(from, to, 1.0 / sum, -sigma / sum);
                case EPSILON -> new PredictionConversion(from, to, 1.0 / sum, alpha / sum);
                case V -> new PredictionConversion(from, to, (alpha - sigma) / sum, sumSq / sum);
                case VELOCITY -> throw new AssertionError();
            };
        };
    }

    /** Whether {@code from → to} is defined at {@code (α, σ)} (see the class notes); false for invalid coefficients. */
    public static boolean isDefined(Prediction from, Prediction to, double alpha, double sigma) {
        try {
            Snr.requireCoefficients(alpha, sigma);
        } catch (IllegalArgumentException e) {
            return false;
        }
        if (from == to) {
            return true;
        }
        return switch (from) {
            case EPSILON -> alpha > 0;
            case SAMPLE -> sigma > 0;
            case V, VELOCITY -> true;
        };
    }

    /** One element: {@code a·x_t + b·pred}. */
    public double apply(double xt, double pred) {
        return a * xt + b * pred;
    }

    private static void requirePositive(double value, String name, Prediction from, Prediction to, String why) {
        if (value <= 0) {
            throw new IllegalArgumentException("conversion " + from + " -> " + to + " is undefined at " + name
                    + " = " + value + ": " + why);
        }
    }
}
