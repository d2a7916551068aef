package org.diffusion4j.metrics;

import java.util.Objects;

/**
 * The kernel distance of Bińkowski, Sutherland, Arbel and Gretton ("Demystifying MMD GANs", ICLR 2018, Sec. 4):
 * the unbiased MMD² (Gretton et al. 2012, JMLR 13, eq. 3) with the cubic polynomial kernel
 * {@code k(x, y) = (x·y / D + 1)³} between features {@code x [N, D]} of generated samples and {@code y [M, D]} of
 * real data, averaged over random subsets. In Inception features this is KID; here it is computed in whatever
 * features are given (the CLI uses its classifier's, as for its Fréchet distance), so compare values only within
 * one feature space.
 *
 * <p>Unlike the Fréchet distance, whose plug-in estimate is biased upwards by {@code O(D / N)} (so a smaller
 * sample scores worse), the estimate is unbiased: its expectation does not depend on the sample size, it is
 * about 0 for matching distributions and may be slightly negative. The subsets follow the reference
 * implementations (torch-fidelity, clean-fid): {@code S} subsets (default 100) of
 * {@code m = min(N, M, 1000)} points drawn without replacement from each set, one MMD²_u per subset; the result
 * is their mean and standard deviation (population, over subsets; a spread of the estimate, not a confidence
 * interval). When {@code m} takes all of both sets, every subset is the same and one is computed.
 *
 * <p>Subsets come from Philox permutations (seed, stream {@link #SUBSET_STREAM} + 2s for {@code x}, + 2s + 1 for
 * {@code y}), so a result is reproducible for a seed. Cost: up to {@code 2 S m² D} multiply-adds through
 * {@link Pairwise#polynomialSum} (two symmetric within-set sums and one cross sum per subset; a set taken whole,
 * as the generated set is when it has fewer than {@code maxSubsetSize} points, has its within-set sum once).
 */
public final class KernelDistance {

    /** Subsets of the estimate by default (torch-fidelity's {@code kid_subsets}, clean-fid's {@code num_subsets}). */
    public static final int DEFAULT_SUBSETS = 100;
    /** Largest subset by default (torch-fidelity's {@code kid_subset_size}, clean-fid's {@code max_subset_size}). */
    public static final int DEFAULT_SUBSET_SIZE = 1000;
    /** Philox stream base of the subsets ({@code "KID"} in ASCII). */
    public static final long SUBSET_STREAM = 0x4B4944L << 32;

    private KernelDistance() {
    }

    /**
     * A kernel-distance estimate.
     *
     * @param mean       mean of the per-subset MMD²_u (dimensionless; may be slightly negative)
     * @param std        population standard deviation of the per-subset values (0 for one subset)
     * @param subsets    subsets averaged
     * @param subsetSize points per subset and set, {@code m}
     * @param n          points in {@code x}
     * @param m          points in {@code y}
     */
    public record Result(double mean, double std, int subsets, int subsetSize, int n, int m) {
    }

    /**
     * {@link #compute(PointSet, PointSet, int, int, Pairwise, long)} with 100 subsets of up to 1000 points.
     *
     * @param x             features of the generated samples {@code [N, D]} (the package's order; swapping the
     *                      sets changes only which random subsets are drawn)
     * @param y             features of the real (reference) data {@code [M, D]}
     * @param engine        where the kernel sums run
     * @param seed          Philox seed of the subsets
     * @throws IllegalArgumentException when the dims differ or a set has fewer than 2 points
     */
    public static Result compute(PointSet x, PointSet y, Pairwise engine, long seed) {
        return compute(x, y, DEFAULT_SUBSETS, DEFAULT_SUBSET_SIZE, engine, seed);
    }

    /**
     * The kernel distance of {@code x [N, D]} and {@code y [M, D]} over {@code subsets} subsets of
     * {@code min(N, M, maxSubsetSize)} points of each.
     *
     * @param x             features of the generated samples {@code [N, D]} (the package's order; swapping the
     *                      sets changes only which random subsets are drawn)
     * @param y             features of the real (reference) data {@code [M, D]}
     * @param subsets       subsets averaged, {@code >= 1}
     * @param maxSubsetSize largest subset, {@code >= 2} points
     * @param engine        where the kernel sums run
     * @param seed          Philox seed of the subsets
     * @throws IllegalArgumentException when the dims differ, a set has fewer than 2 points, {@code subsets < 1}
     *                                  or {@code maxSubsetSize < 2}
     */
    public static Result compute(PointSet x, PointSet y, int subsets, int maxSubsetSize, Pairwise engine, long seed) {
        Objects.requireNonNull(engine, "engine");
        PointSet.requireSameDim(x, y);
        PointSet.requireAtLeast(x, 2, "the kernel distance");
        PointSet.requireAtLeast(y, 2, "the kernel distance");
        if (subsets < 1) {
            throw new IllegalArgumentException("the kernel distance needs subsets >= 1, got " + subsets);
        }
        if (maxSubsetSize < 2) {
            throw new IllegalArgumentException("the kernel distance needs subsets of >= 2 points, got maxSubsetSize = "
                    + maxSubsetSize);
        }
        int m = Math.min(maxSubsetSize, Math.min(x.size(), y.size()));
        int runs = m == x.size() && m == y.size() ? 1 : subsets;
        // a set taken whole is the same in every subset: its within-set term once
        double wholeX = m == x.size() ? withinMean(x, engine) : Double.NaN;
        double wholeY = m == y.size() ? withinMean(y, engine) : Double.NaN;
        double[] values = new double[runs];
        for (int s = 0; s < runs; s++) {
            PointSet xs = x.pick(m, seed, SUBSET_STREAM + 2L * s);
            PointSet ys = y.pick(m, seed, SUBSET_STREAM + 2L * s + 1);
            double txx = xs == x ? wholeX : withinMean(xs, engine);
            double tyy = ys == y ? wholeY : withinMean(ys, engine);
            values[s] = txx + tyy - 2 * crossMean(xs, ys, engine);
        }
        double mean = 0;
        for (double v : values) {
            mean += v;
        }
        mean /= runs;
        double var = 0;
        for (double v : values) {
            var += (v - mean) * (v - mean);
        }
        return new Result(mean, Math.sqrt(var / runs), runs, m, x.size(), y.size());
    }

    /**
     * One unbiased estimate on the whole sets: {@code Σ_{i≠j} k(x_i, x_j) / (N(N−1)) + Σ_{i≠j} k(y_i, y_j) /
     * (M(M−1)) − 2 Σ_ij k(x_i, y_j) / (NM)} with {@code k(x, y) = (x·y / D + 1)³}.
     *
     * @throws IllegalArgumentException when the dims differ or a set has fewer than 2 points
     */
    public static double mmd2Unbiased(PointSet x, PointSet y, Pairwise engine) {
        Objects.requireNonNull(engine, "engine");
        PointSet.requireSameDim(x, y);
        PointSet.requireAtLeast(x, 2, "the kernel distance");
        PointSet.requireAtLeast(y, 2, "the kernel distance");
        return withinMean(x, engine) + withinMean(y, engine) - 2 * crossMean(x, y, engine);
    }

    /** {@code Σ_{i≠j} k(x_i, x_j) / (N(N−1))}. */
    private static double withinMean(PointSet x, Pairwise engine) {
        double n = x.size();
        double gamma = 1.0 / x.dim();
        return (engine.polynomialSum(x, x, 3, gamma, 1) - diagonal(x, gamma)) / (n * (n - 1));
    }

    /** {@code Σ_ij k(x_i, y_j) / (NM)}. */
    private static double crossMean(PointSet x, PointSet y, Pairwise engine) {
        return engine.polynomialSum(x, y, 3, 1.0 / x.dim(), 1) / ((double) x.size() * y.size());
    }

    /** {@code Σ_i k(x_i, x_i)} in float64. */
    private static double diagonal(PointSet x, double gamma) {
        int d = x.dim();
        float[] v = x.values();
        double s = 0;
        for (int i = 0; i < x.size(); i++) {
            double dot = 0;
            for (int k = 0; k < d; k++) {
                dot += (double) v[i * d + k] * v[i * d + k];
            }
            double b = gamma * dot + 1;
            s += b * b * b;
        }
        return s;
    }
}
