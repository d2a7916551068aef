package org.diffusion4j.metrics;

import org.diffusion4j.random.Philox;

import java.util.Arrays;
import java.util.Objects;

/**
 * Squared maximum mean discrepancy with a Gaussian RBF kernel, {@code k(x, y) = exp(−‖x − y‖² / (2 h²))},
 * between point sets {@code x [N, D]} and {@code y [M, D]} (Gretton, Borgwardt, Rasch, Schölkopf and Smola,
 * "A Kernel Two-Sample Test", JMLR 13, 2012):
 *
 * <pre>
 *   U-statistic (eq. 3):  MMD²_u = Σ_{i≠j} k(x_i, x_j) / (N(N−1)) + Σ_{i≠j} k(y_i, y_j) / (M(M−1)) − 2 Σ_ij k(x_i, y_j) / (NM)
 *   V-statistic (eq. 5):  MMD²_b = Σ_ij k(x_i, x_j) / N² + Σ_ij k(y_i, y_j) / M² − 2 Σ_ij k(x_i, y_j) / (NM)
 * </pre>
 *
 * <p>The population MMD² is 0 exactly when the distributions agree (the Gaussian kernel is characteristic);
 * MMD²_u is unbiased (≈ 0 on average for identical distributions, and may be negative), MMD²_b is
 * non-negative and biased upwards by {@code O(1/N + 1/M)}.
 *
 * <p><b>Bandwidth.</b> By default {@code h} is the median heuristic of Gretton et al. (2012, Sec. 8): the median
 * Euclidean distance between points of the pooled sample {@code x ∪ y}. Above
 * {@link #MEDIAN_HEURISTIC_POINTS} pooled points, the median is taken over the pairs of a random subset of that
 * many points, chosen without replacement by a Philox-driven partial Fisher–Yates shuffle (stream
 * {@link #MEDIAN_STREAM}), so the bandwidth is reproducible for a seed. The subset median is a consistent
 * estimate of the pooled one whose error shrinks like {@code 1/√S} in the subset size {@code S}.
 *
 * <p><b>Cost.</b> {@code (N² + M²)/2 + NM} kernel evaluations of {@code D} multiply-adds each, through
 * {@link Pairwise} (float64 loops, or blocked GEMM on a backend); the median heuristic adds
 * {@code S(S−1)/2} distances in float64.
 */
public final class Mmd {

    /** Pooled points above which the median heuristic uses a random subset of this size. */
    public static final int MEDIAN_HEURISTIC_POINTS = 1000;
    /** Largest subset of the median heuristic: its {@code S(S−1)/2} distances take {@code 4 S²} bytes (64 MiB). */
    public static final int MAX_MEDIAN_POINTS = 4096;
    /** Philox stream of the median heuristic's subset ({@code "MMD"} in ASCII). */
    public static final long MEDIAN_STREAM = 0x4D4D44L;

    private Mmd() {
    }

    /**
     * An MMD² estimate.
     *
     * @param mmd2      the estimate of {@code MMD²} (squared units of the kernel, i.e. dimensionless)
     * @param bandwidth the RBF bandwidth {@code h} used, in the units of the data
     * @param estimator U- or V-statistic
     * @param n         points in {@code x}
     * @param m         points in {@code y}
     */
    public record Result(double mmd2, double bandwidth, Estimator estimator, int n, int m) {

        /** {@code sqrt(max(mmd2, 0))}: the MMD itself (a U-statistic below 0 counts as 0). */
        public double mmd() {
            return Math.sqrt(Math.max(mmd2, 0));
        }
    }

    /**
     * {@link #compute(PointSet, PointSet, double, Estimator, Pairwise)} with the median-heuristic bandwidth (seed 0).
     *
     * @param x         the generated samples {@code [N, D]}, F32 host copies (the package's order; the value is
     *                  symmetric in {@code x} and {@code y})
     * @param y         the real (reference) points {@code [M, D]}
     * @param estimator U- or V-statistic
     * @param engine    where the pairwise kernel sums run
     * @throws IllegalArgumentException when the dims differ, the U-statistic gets a set of fewer than 2 points, or
     *                                  more than half of the pooled pairs coincide, so that the median distance, the
     *                                  bandwidth, is 0 (pass a bandwidth, as {@link VectorMetrics} reports the case)
     */
    public static Result compute(PointSet x, PointSet y, Estimator estimator, Pairwise engine) {
        return compute(x, y, medianHeuristic(x, y, MEDIAN_HEURISTIC_POINTS, 0), estimator, engine);
    }

    /**
     * MMD² of {@code x [N, D]} and {@code y [M, D]} with bandwidth {@code h}.
     *
     * @param x         the generated samples {@code [N, D]}, F32 host copies (the package's order; the value is
     *                  symmetric in {@code x} and {@code y})
     * @param y         the real (reference) points {@code [M, D]}
     * @param bandwidth the RBF bandwidth {@code h}, in the units of the data
     * @param estimator U- or V-statistic
     * @param engine    where the pairwise kernel sums run
     * @throws IllegalArgumentException when the dims differ, {@code h} is not finite and positive, or the
     *                                  U-statistic gets a set of fewer than 2 points
     */
    public static Result compute(PointSet x, PointSet y, double bandwidth, Estimator estimator, Pairwise engine) {
        Objects.requireNonNull(estimator, "estimator");
        Objects.requireNonNull(engine, "engine");
        PointSet.requireSameDim(x, y);
        if (!(bandwidth > 0) || !Double.isFinite(bandwidth)) {
            throw new IllegalArgumentException("MMD bandwidth must be finite and > 0, got " + bandwidth
                    + (bandwidth == 0 ? " (a median heuristic of 0 means most pooled points coincide)" : ""));
        }
        if (estimator == Estimator.U_STATISTIC) {
            PointSet.requireAtLeast(x, 2, "the MMD U-statistic");
            PointSet.requireAtLeast(y, 2, "the MMD U-statistic");
        }
        double n = x.size();
        double m = y.size();
        double sxx = engine.rbfSum(x, x, bandwidth);   // includes N diagonal terms k(x_i, x_i) = 1
        double syy = engine.rbfSum(y, y, bandwidth);
        double sxy = engine.rbfSum(x, y, bandwidth);
        double mmd2 = estimator == Estimator.U_STATISTIC
                ? (sxx - n) / (n * (n - 1)) + (syy - m) / (m * (m - 1)) - 2 * sxy / (n * m)
                : sxx / (n * n) + syy / (m * m) - 2 * sxy / (n * m);
        return new Result(mmd2, bandwidth, estimator, x.size(), y.size());
    }

    /**
     * The median heuristic bandwidth: the median of {@code ‖z_i − z_j‖} over pairs {@code i < j} of the pooled
     * sample {@code z = x ∪ y}, or of a random subset of {@code maxPoints} pooled points when there are more
     * (see the class comment). For an even number of pairs, the mean of the two middle values.
     *
     * @param maxPoints subset size {@code S}, in {@code [2, }{@link #MAX_MEDIAN_POINTS}{@code ]}
     * @param seed      Philox seed of the subset (used only when the pool exceeds {@code maxPoints})
     * @return the median distance, {@code >= 0} (0 when more than half of the pairs coincide)
     * @throws IllegalArgumentException when the dims differ or {@code maxPoints} is out of range
     */
    public static double medianHeuristic(PointSet x, PointSet y, int maxPoints, long seed) {
        PointSet.requireSameDim(x, y);
        if (maxPoints < 2 || maxPoints > MAX_MEDIAN_POINTS) {
            throw new IllegalArgumentException("the median heuristic needs maxPoints in [2, " + MAX_MEDIAN_POINTS
                    + "], got " + maxPoints);
        }
        int pool = x.size() + y.size();
        int s = Math.min(pool, maxPoints);
        int[] idx = new int[pool];
        for (int i = 0; i < pool; i++) {
            idx[i] = i;
        }
        if (s < pool) {                                        // partial Fisher–Yates: idx[0, s) is the subset
            for (int i = 0; i < s; i++) {
                double u = Philox.uniform(seed, MEDIAN_STREAM, i);          // (0, 1]
                int r = i + (int) Math.min(pool - i - 1, (long) (u * (pool - i)));
                int tmp = idx[i];
                idx[i] = idx[r];
                idx[r] = tmp;
            }
        }
        int d = x.dim();
        double[][] pts = new double[s][d];
        for (int i = 0; i < s; i++) {
            int p = idx[i];
            PointSet src = p < x.size() ? x : y;
            int row = p < x.size() ? p : p - x.size();
            float[] v = src.values();
            for (int k = 0; k < d; k++) {
                pts[i][k] = v[row * d + k];
            }
        }
        double[] dist = new double[(int) ((long) s * (s - 1) / 2)];
        int q = 0;
        for (int i = 0; i < s; i++) {
            for (int j = i + 1; j < s; j++) {
                double acc = 0;
                for (int k = 0; k < d; k++) {
                    double t = pts[i][k] - pts[j][k];
                    acc += t * t;
                }
                dist[q++] = Math.sqrt(acc);
            }
        }
        Arrays.sort(dist);
        int h = dist.length / 2;
        return dist.length % 2 == 1 ? dist[h] : 0.5 * (dist[h - 1] + dist[h]);
    }
}
