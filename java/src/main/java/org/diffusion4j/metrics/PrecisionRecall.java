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
 * backend, where every decision the float32 value cannot make (a distance within its rounding bound of a ball's
 * edge, as ties are: duplicate rows, discrete features, a set against itself) and every ball radius is recomputed in
 * float64, so both engines give the same numbers (an adversarial trial had measured density 1.40 for 2.62 on
 * binary features before). To compare several sample sets with one real set, {@link #reference} computes the real
 * balls once.
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
     * @param generated number of generated points {@code N}
     * @param real      number of real points {@code M}
     */
    public record Result(double precision, double recall, double density, double coverage, int kPrecisionRecall,
                         int kDensityCoverage, int generated, int real) {
    }

    /**
     * {@link #compute(PointSet, PointSet, int, int, Pairwise)} with {@code k = 3} and {@code k = 5}.
     *
     * @param generated the generated samples {@code [N, D]} (first, as everywhere in this package)
     * @param real      the real (reference, e.g. held-out) points {@code [M, D]}
     * @param engine    where the pairwise distances run
     * @throws IllegalArgumentException when the dims differ, {@code real} has no more than 5 points or
     *                                  {@code generated} no more than 3
     */
    public static Result compute(PointSet generated, PointSet real, Pairwise engine) {
        return compute(generated, real, DEFAULT_K_PRECISION_RECALL, DEFAULT_K_DENSITY_COVERAGE, engine);
    }

    /**
     * Precision, recall, density and coverage of {@code generated [N, D]} against {@code real [M, D]}. The order
     * matters: swapping the sets swaps precision and recall (and changes density and coverage).
     *
     * @param generated        the generated samples {@code [N, D]}: precision is the fraction of them in the real
     *                         manifold
     * @param real             the real (reference, e.g. held-out) points {@code [M, D]}: recall is the fraction of
     *                         them in the generated manifold
     * @param kPrecisionRecall {@code k >= 1} of precision and recall
     * @param kDensityCoverage {@code k >= 1} of density and coverage
     * @param engine           where the pairwise distances run
     * @throws IllegalArgumentException when the dims differ, a {@code k} is below 1, {@code real} has no more than
     *                                  the larger {@code k} points or {@code generated} no more than
     *                                  {@code kPrecisionRecall} (a point needs {@code k} others)
     */
    public static Result compute(PointSet generated, PointSet real, int kPrecisionRecall, int kDensityCoverage,
                                 Pairwise engine) {
        Objects.requireNonNull(generated, "generated");
        return reference(real, kPrecisionRecall, kDensityCoverage, engine).compare(generated);
    }

    /**
     * The real balls of {@code real [M, D]} at both radii, computed once, to {@link Reference#compare} any number of
     * sample sets with (as {@code eval} compares the samples and real training data with one held-out set).
     *
     * @param real             the real (reference, e.g. held-out) points {@code [M, D]}
     * @param kPrecisionRecall {@code k >= 1} of precision and recall
     * @param kDensityCoverage {@code k >= 1} of density and coverage
     * @param engine           where the pairwise distances run (also those of later {@link Reference#compare} calls)
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
        PointSet.requireAtLeast(real, kMax + 1L, "precision/recall with k = " + kMax);
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
         * @param generated the generated samples {@code [N, D]}
         * @throws IllegalArgumentException when the dims differ or {@code generated} has no more than
         *                                  {@code kPrecisionRecall} points
         */
        public Result compare(PointSet generated) {
            PointSet.requireSameDim(real, generated);
            PointSet.requireAtLeast(generated, kPr + 1L, "precision/recall with k = " + kPr);
            int m = real.size();
            int n = generated.size();
            double[] genPr = column(nearestWithin(generated, kPr, engine), kPr - 1);

            // generated rows against real balls: precision (any ball at k_PR), density (ball count at k_DC)
            Edges gr = new Edges(engine, generated, real);
            boolean[] inReal = new boolean[n];
            long[] densityCount = new long[n];
            engine.squaredDistanceTiles(generated, real, (i0, j0, rows, cols, d2) -> {
                for (int r = 0; r < rows; r++) {
                    int i = i0 + r;
                    int base = r * cols;
                    boolean in = inReal[i];
                    long count = 0;
                    for (int c = 0; c < cols; c++) {
                        double v = d2[base + c];
                        int j = j0 + c;
                        in = in || gr.within(v, realPr[j], i, j);
                        count += gr.within(v, realDc[j], i, j) ? 1 : 0;
                    }
                    inReal[i] = in;
                    densityCount[i] += count;
                }
            });
            // real rows against generated balls: recall (any ball at k_PR); coverage (a sample in its own ball)
            Edges rg = new Edges(engine, real, generated);
            boolean[] inGen = new boolean[m];
            boolean[] covered = new boolean[m];
            engine.squaredDistanceTiles(real, generated, (i0, j0, rows, cols, d2) -> {
                for (int r = 0; r < rows; r++) {
                    int i = i0 + r;
                    int base = r * cols;
                    boolean in = inGen[i];
                    boolean cov = covered[i];
                    for (int c = 0; c < cols; c++) {
                        double v = d2[base + c];
                        int j = j0 + c;
                        in = in || rg.within(v, genPr[j], i, j);
                        cov = cov || rg.within(v, realDc[i], i, j);
                    }
                    inGen[i] = in;
                    covered[i] = cov;
                }
            });
            long precise = 0;
            long dens = 0;
            for (int i = 0; i < n; i++) {
                precise += inReal[i] ? 1 : 0;
                dens += densityCount[i];
            }
            long recalled = 0;
            long coveredCount = 0;
            for (int j = 0; j < m; j++) {
                recalled += inGen[j] ? 1 : 0;
                coveredCount += covered[j] ? 1 : 0;
            }
            return new Result((double) precise / n, (double) recalled / m, (double) dens / ((double) kDc * n),
                    (double) coveredCount / m, kPr, kDc, n, m);
        }
    }

    /**
     * Decides {@code ‖a_i − b_j‖² ≤ r²} from an engine's squared distance: as given for the float64 host engine;
     * for the float32 GEMM engine, from the float32 value when it lies clearly on one side, and from the float64
     * distance recomputed when it lies within the float32 error of the edge. That error is bounded by
     * {@code (K + 4) 2^-22 (‖a_i − μ‖² + ‖b_j − μ‖²)} for the engine's centring {@code μ} and {@code K = D + 2} terms
     * (a generous form of the usual dot-product bound), so ties (duplicate rows, discrete features: distances
     * exactly at a ball's edge) and tiny scales are decided as the host engine decides them.
     */
    private static final class Edges {

        private final boolean refine;
        private final PointSet a;
        private final PointSet b;
        private final double[] tolA;
        private final double[] tolB;

        Edges(Pairwise engine, PointSet a, PointSet b) {
            this.refine = engine.backend() != null;
            this.a = a;
            this.b = b;
            if (refine) {
                double[] mean = Pairwise.pooledMean(a, b);
                double c = (a.dim() + 2 + 4) * 0x1p-22;
                tolA = centredNorms(a, mean, c);
                tolB = b == a ? tolA : centredNorms(b, mean, c);
            } else {
                tolA = null;
                tolB = null;
            }
        }

        private static double[] centredNorms(PointSet p, double[] mean, double scale) {
            int d = p.dim();
            double[] out = new double[p.size()];
            for (int i = 0; i < out.length; i++) {
                double s = 0;
                for (int k = 0; k < d; k++) {
                    double t = p.get(i, k) - mean[k];
                    s += t * t;
                }
                out[i] = scale * s;
            }
            return out;
        }

        /** Whether the pair with engine distance {@code approx} lies in a ball of squared radius {@code r2}. */
        boolean within(double approx, double r2, int i, int j) {
            if (!refine) {
                return approx <= r2;
            }
            double tol = tolA[i] + tolB[j] + Double.MIN_NORMAL;
            if (approx < r2 - tol) {
                return true;
            }
            if (approx > r2 + tol) {
                return false;
            }
            return exact(i, j) <= r2;
        }

        private double exact(int i, int j) {
            return squaredDistance(a, i, b, j);
        }
    }

    private static double squaredDistance(PointSet a, int i, PointSet b, int j) {
        double s = 0;
        for (int k = 0; k < a.dim(); k++) {
            double t = (double) a.get(i, k) - b.get(j, k);
            s += t * t;
        }
        return s;
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
        PointSet.requireAtLeast(x, k + 1L, "k-th neighbour distances with k = " + k);
        double[] r = column(nearestWithin(x, k, engine), k - 1);
        for (int i = 0; i < r.length; i++) {
            r[i] = Math.sqrt(r[i]);
        }
        return r;
    }

    /** Candidates kept beyond {@code k} per point on the GEMM engine, whose exact distances then decide the k-th. */
    private static final int SLACK = 8;

    /**
     * {@code out[i]} = the {@code k} smallest squared distances from {@code x_i} to the other points, ascending, in
     * float64: on the GEMM engine the {@code k + }{@link #SLACK} nearest by the float32 values are recomputed
     * exactly, so a k-th neighbour among ties or within rounding of others still gets its exact distance.
     */
    private static double[][] nearestWithin(PointSet x, int k, Pairwise engine) {
        int n = x.size();
        boolean refine = engine.backend() != null;
        int keep = refine ? Math.min(k + SLACK, n - 1) : k;
        double[][] best = new double[n][keep];
        int[][] who = new int[n][keep];
        for (double[] b : best) {
            Arrays.fill(b, Double.POSITIVE_INFINITY);
        }
        engine.squaredDistanceTiles(x, x, (i0, j0, rows, cols, d2) -> {
            for (int r = 0; r < rows; r++) {
                int i = i0 + r;
                double[] b = best[i];
                int[] w = who[i];
                int base = r * cols;
                for (int c = 0; c < cols; c++) {
                    double v = d2[base + c];
                    if (v < b[keep - 1] && j0 + c != i) {                 // the point itself is not a neighbour
                        int p = keep - 1;
                        while (p > 0 && v < b[p - 1]) {
                            b[p] = b[p - 1];
                            w[p] = w[p - 1];
                            p--;
                        }
                        b[p] = v;
                        w[p] = j0 + c;
                    }
                }
            }
        });
        if (!refine) {
            return best;
        }
        double[][] out = new double[n][];
        for (int i = 0; i < n; i++) {
            double[] exact = new double[keep];
            for (int q = 0; q < keep; q++) {
                exact[q] = squaredDistance(x, i, x, who[i][q]);
            }
            Arrays.sort(exact);
            out[i] = Arrays.copyOf(exact, k);
        }
        return out;
    }

    private static double[] column(double[][] rows, int c) {
        double[] out = new double[rows.length];
        for (int i = 0; i < rows.length; i++) {
            out[i] = rows[i][c];
        }
        return out;
    }
}
