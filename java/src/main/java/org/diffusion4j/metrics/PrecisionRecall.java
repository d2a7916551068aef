package org.diffusion4j.metrics;

import java.util.Arrays;
import java.util.Objects;

/**
 * Fidelity and diversity of generated samples as separate numbers, from {@code k}-nearest-neighbour balls around
 * points in a feature space (pixels, classifier features or data vectors):
 *
 * <ul>
 *   <li><b>precision</b>: the fraction of generated points inside the real manifold, the union of the balls
 *       {@code B(r_j, NND_k(r_j))} around the real points with radius the distance to their {@code k}-th nearest real
 *       neighbour; <b>recall</b>: the fraction of real points inside the generated manifold built the same way
 *       from the generated points (Kynkäänniemi, Karras, Laine, Lehtinen and Aila, "Improved Precision and Recall
 *       Metric for Assessing Generative Models", NeurIPS 2019, eqs. 1–3; {@code k = 3} there).</li>
 *   <li><b>density</b>: {@code (1 / (k N)) Σ_i Σ_j 1[g_i ∈ B(r_j, NND_k(r_j))]} over the {@code N} generated
 *       points {@code g_i} and the {@code M} real points {@code r_j}: how many real balls contain a
 *       generated point on average, over {@code k} (about 1 when the distributions agree, above 1 when samples
 *       crowd the dense regions of the data); <b>coverage</b>: the fraction of real points whose ball contains at
 *       least one generated point (Naeem, Oh, Uh, Choi and Yoo, "Reliable Fidelity and Diversity Metrics for
 *       Generative Models", ICML 2020, eqs. 5 and 6; {@code k = 5} there). Both are less sensitive to outliers
 *       than precision and recall, whose manifolds an outlier's large ball inflates.</li>
 * </ul>
 *
 * <p>Reading them: precision low, recall high — samples off the data (blurry, broken); precision high, recall low
 * — samples good but not diverse (mode dropping, heavy guidance). Identical sets of {@code N} distinct points give
 * precision = recall = coverage = 1 and density exactly {@code (k + 1) / k} (each ball holds its centre and its
 * {@code k} neighbours). The values depend on the set sizes (the balls shrink as {@code N} grows): compare
 * models at equal sizes, ideally with as many generated as real points, as both papers do.
 *
 * <p>Balls are closed ({@code ≤}); the {@code k}-th neighbour of a point is among the other points of its set, so
 * duplicates count as neighbours at distance 0. Cost: four passes over point pairs, {@code (N + M)² D}
 * multiply-adds in all, through {@link Pairwise#squaredDistanceTiles}: float64 on the host; float32 GEMM tiles on a
 * backend, whose squared distances carry an absolute error of about {@code 1e-6 (‖a‖² + ‖b‖²)} (centred), so a point
 * near a ball's edge may land on either side (for one set against itself, a ball's {@code k}-th neighbour sits on
 * its edge: the GEMM engine gave density 1.19 where the exact value is 1.2). To compare several sample sets with one
 * real set, {@link #reference} computes the real balls once.
 */
public final class PrecisionRecall {

    /** {@code k} of precision and recall: Kynkäänniemi et al. 2019, Sec. 3 ("k = 3 ... throughout"). */
    public static final int DEFAULT_K_PRECISION_RECALL = 3;
    /** {@code k} of density and coverage: Naeem et al. 2020, Sec. 4.2 (their recommended {@code k = 5}). */
    public static final int DEFAULT_K_DENSITY_COVERAGE = 5;

    private PrecisionRecall() {
    }

    /**
     * The four numbers of one comparison.
     *
     * @param precision fraction of generated points in the real manifold, {@code [0, 1]}
     * @param recall    fraction of real points in the generated manifold, {@code [0, 1]}
     * @param density   mean count of real balls (radius at {@code kDensityCoverage}) holding a generated point,
     *                  over {@code kDensityCoverage}; {@code [0, M/k]}, about 1 for matching distributions
     * @param coverage  fraction of real balls (radius at {@code kDensityCoverage}) holding a generated point,
     *                  {@code [0, 1]}
     * @param kPrecisionRecall {@code k} of precision and recall
     * @param kDensityCoverage {@code k} of density and coverage
     * @param real      number of real points {@code M}
     * @param generated number of generated points {@code N}
     */
    public record Result(double precision, double recall, double density, double coverage, int kPrecisionRecall,
                         int kDensityCoverage, int real, int generated) {
    }

    /** {@link #compute(PointSet, PointSet, int, int, Pairwise)} with {@code k = 3} and {@code k = 5}. */
    public static Result compute(PointSet real, PointSet generated, Pairwise engine) {
        return compute(real, generated, DEFAULT_K_PRECISION_RECALL, DEFAULT_K_DENSITY_COVERAGE, engine);
    }

    /**
     * Precision, recall, density and coverage of {@code generated [N, D]} against {@code real [M, D]}.
     *
     * @param kPrecisionRecall {@code k >= 1} of precision and recall
     * @param kDensityCoverage {@code k >= 1} of density and coverage
     * @throws IllegalArgumentException when the dims differ, a {@code k} is below 1, {@code real} has no more than
     *                                  the larger {@code k} points or {@code generated} no more than
     *                                  {@code kPrecisionRecall} (a point needs {@code k} others)
     */
    public static Result compute(PointSet real, PointSet generated, int kPrecisionRecall, int kDensityCoverage,
                                 Pairwise engine) {
        return reference(real, kPrecisionRecall, kDensityCoverage, engine).compare(generated);
    }

    /**
     * The real balls of {@code real [M, D]} at both radii, computed once, to {@link Reference#compare} any number of
     * sample sets with (as {@code eval} compares the samples and real training data with one held-out set).
     *
     * @throws IllegalArgumentException when a {@code k} is below 1 or {@code real} has no more than the larger
     *                                  {@code k} points
     */
    public static Reference reference(PointSet real, int kPrecisionRecall, int kDensityCoverage, Pairwise engine) {
        Objects.requireNonNull(engine, "engine");
        Objects.requireNonNull(real, "real");
        if (kPrecisionRecall < 1 || kDensityCoverage < 1) {
            throw new IllegalArgumentException("k must be >= 1, got kPrecisionRecall = " + kPrecisionRecall
                    + ", kDensityCoverage = " + kDensityCoverage);
        }
        int kMax = Math.max(kPrecisionRecall, kDensityCoverage);
        PointSet.requireAtLeast(real, kMax + 1, "precision/recall with k = " + kMax);
        double[][] realNear = nearestWithin(real, kMax, engine);                   // [M][kMax] squared, sorted
        return new Reference(real, column(realNear, kPrecisionRecall - 1), column(realNear, kDensityCoverage - 1),
                kPrecisionRecall, kDensityCoverage, engine);
    }

    /** A real point set with its balls (see {@link #reference}); immutable, usable from several threads. */
    public static final class Reference {

        private final PointSet real;
        private final double[] realPr;                 // NND_k² of each real point at k_PR
        private final double[] realDc;                 // and at k_DC
        private final int kPr;
        private final int kDc;
        private final Pairwise engine;

        private Reference(PointSet real, double[] realPr, double[] realDc, int kPr, int kDc, Pairwise engine) {
            this.real = real;
            this.realPr = realPr;
            this.realDc = realDc;
            this.kPr = kPr;
            this.kDc = kDc;
            this.engine = engine;
        }

        /** The real points. */
        public PointSet real() {
            return real;
        }

        /**
         * Precision, recall, density and coverage of {@code generated [N, D]} against the real set.
         *
         * @throws IllegalArgumentException when the dims differ or {@code generated} has no more than
         *                                  {@code kPrecisionRecall} points
         */
        public Result compare(PointSet generated) {
            PointSet.requireSameDim(real, generated);
            PointSet.requireAtLeast(generated, kPr + 1, "precision/recall with k = " + kPr);
            int m = real.size();
            int n = generated.size();
            double[] genPr = column(nearestWithin(generated, kPr, engine), kPr - 1);

            // generated rows against real balls: precision (any ball at k_PR), density (ball count at k_DC)
            boolean[] inReal = new boolean[n];
            long[] densityCount = new long[n];
            engine.squaredDistanceTiles(generated, real, (i0, j0, rows, cols, d2) -> {
                for (int r = 0; r < rows; r++) {
                    int base = r * cols;
                    boolean in = inReal[i0 + r];
                    long count = 0;
                    for (int c = 0; c < cols; c++) {
                        double v = d2[base + c];
                        in |= v <= realPr[j0 + c];
                        count += v <= realDc[j0 + c] ? 1 : 0;
                    }
                    inReal[i0 + r] = in;
                    densityCount[i0 + r] += count;
                }
            });
            // real rows against generated balls: recall (any ball at k_PR); the nearest sample: coverage
            boolean[] inGen = new boolean[m];
            double[] nearestGen = new double[m];
            Arrays.fill(nearestGen, Double.POSITIVE_INFINITY);
            engine.squaredDistanceTiles(real, generated, (i0, j0, rows, cols, d2) -> {
                for (int r = 0; r < rows; r++) {
                    int base = r * cols;
                    boolean in = inGen[i0 + r];
                    double best = nearestGen[i0 + r];
                    for (int c = 0; c < cols; c++) {
                        double v = d2[base + c];
                        in |= v <= genPr[j0 + c];
                        best = Math.min(best, v);
                    }
                    inGen[i0 + r] = in;
                    nearestGen[i0 + r] = best;
                }
            });
            long precise = 0;
            long dens = 0;
            for (int i = 0; i < n; i++) {
                precise += inReal[i] ? 1 : 0;
                dens += densityCount[i];
            }
            long recalled = 0;
            long covered = 0;
            for (int j = 0; j < m; j++) {
                recalled += inGen[j] ? 1 : 0;
                covered += nearestGen[j] <= realDc[j] ? 1 : 0;
            }
            return new Result((double) precise / n, (double) recalled / m, (double) dens / ((double) kDc * n),
                    (double) covered / m, kPr, kDc, m, n);
        }
    }

    /**
     * The distance from each point of {@code x} to its {@code k}-th nearest other point of {@code x}
     * ({@code NND_k}, the radius of its ball), {@code [N]}, in the units of the points.
     *
     * @throws IllegalArgumentException when {@code k < 1} or {@code x} has no more than {@code k} points
     */
    public static double[] kthNeighbourDistances(PointSet x, int k, Pairwise engine) {
        Objects.requireNonNull(engine, "engine");
        if (k < 1) {
            throw new IllegalArgumentException("k must be >= 1, got " + k);
        }
        PointSet.requireAtLeast(x, k + 1, "k-th neighbour distances with k = " + k);
        double[] r = column(nearestWithin(x, k, engine), k - 1);
        for (int i = 0; i < r.length; i++) {
            r[i] = Math.sqrt(r[i]);
        }
        return r;
    }

    /** {@code out[i]} = the {@code k} smallest squared distances from {@code x_i} to the other points, ascending. */
    private static double[][] nearestWithin(PointSet x, int k, Pairwise engine) {
        int n = x.size();
        double[][] best = new double[n][k];
        for (double[] b : best) {
            Arrays.fill(b, Double.POSITIVE_INFINITY);
        }
        engine.squaredDistanceTiles(x, x, (i0, j0, rows, cols, d2) -> {
            for (int r = 0; r < rows; r++) {
                int i = i0 + r;
                double[] b = best[i];
                int base = r * cols;
                for (int c = 0; c < cols; c++) {
                    double v = d2[base + c];
                    if (v < b[k - 1] && j0 + c != i) {                    // the point itself is not a neighbour
                        int p = k - 1;
                        while (p > 0 && v < b[p - 1]) {
                            b[p] = b[p - 1];
                            p--;
                        }
                        b[p] = v;
                    }
                }
            }
        });
        return best;
    }

    private static double[] column(double[][] rows, int c) {
        double[] out = new double[rows.length];
        for (int i = 0; i < rows.length; i++) {
            out[i] = rows[i][c];
        }
        return out;
    }
}
