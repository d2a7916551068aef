package org.diffusion4j.metrics;

import java.util.Objects;

/**
 * The energy distance between point sets {@code x [N, D]} and {@code y [M, D]} (Székely and Rizzo, "Energy
 * statistics: A class of statistics based on distances", J. Stat. Plann. Inference 143, 2013, Sec. 2):
 *
 * <pre>
 *   E(X, Y) = 2 E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖
 *   V-statistic:            E_{N,M} = 2/(NM) Σ_ij ‖x_i − y_j‖ − 1/N² Σ_ij ‖x_i − x_j‖ − 1/M² Σ_ij ‖y_i − y_j‖
 *   U-statistic:            the within-set sums divided by N(N−1) and M(M−1) instead (unbiased)
 * </pre>
 *
 * <p>{@code E >= 0}, with equality exactly when the distributions agree (for finite first moments); in one
 * dimension {@code E = 2 ∫ (F(t) − G(t))² dt} for the CDFs {@code F, G} (ibid., Sec. 2). Units: those of the
 * data (a distance, not squared). The V-statistic is non-negative and 0 for a set against itself; the
 * U-statistic is unbiased.
 *
 * <p><b>Cost.</b> {@code (N² + M²)/2 + NM} Euclidean distances of {@code D} multiply-adds each, through
 * {@link Pairwise}.
 */
public final class EnergyDistance {

    private EnergyDistance() {
    }

    /**
     * An energy-distance estimate.
     *
     * @param energy    the estimate of {@code E(X, Y)}, in the units of the data
     * @param estimator U- or V-statistic
     * @param n         points in {@code x}
     * @param m         points in {@code y}
     */
    public record Result(double energy, Estimator estimator, int n, int m) {
    }

    /**
     * Energy distance of {@code x [N, D]} and {@code y [M, D]}.
     *
     * @param x         the generated samples {@code [N, D]}, F32 host copies (the package's order; the value is
     *                  symmetric in {@code x} and {@code y})
     * @param y         the real (reference) points {@code [M, D]}
     * @param estimator U- or V-statistic
     * @param engine    where the pairwise distance sums run
     * @throws IllegalArgumentException when the dims differ, or the U-statistic gets a set of fewer than 2
     *                                  points
     */
    public static Result compute(PointSet x, PointSet y, Estimator estimator, Pairwise engine) {
        Objects.requireNonNull(estimator, "estimator");
        Objects.requireNonNull(engine, "engine");
        PointSet.requireSameDim(x, y);
        if (estimator == Estimator.U_STATISTIC) {
            PointSet.requireAtLeast(x, 2, "the energy-distance U-statistic");
            PointSet.requireAtLeast(y, 2, "the energy-distance U-statistic");
        }
        double n = x.size();
        double m = y.size();
        double sxx = engine.distanceSum(x, x);                 // diagonal terms are 0
        double syy = engine.distanceSum(y, y);
        double sxy = engine.distanceSum(x, y);
        double e = estimator == Estimator.U_STATISTIC
                ? 2 * sxy / (n * m) - sxx / (n * (n - 1)) - syy / (m * (m - 1))
                : 2 * sxy / (n * m) - sxx / (n * n) - syy / (m * m);
        return new Result(e, estimator, x.size(), y.size());
    }
}
