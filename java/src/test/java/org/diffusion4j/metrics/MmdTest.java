package org.diffusion4j.metrics;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Backend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.diffusion4j.metrics.MetricsTestSupport.dist2;
import static org.diffusion4j.metrics.MetricsTestSupport.gaussian;
import static org.diffusion4j.metrics.MetricsTestSupport.meanAndStdError;
import static org.diffusion4j.metrics.MetricsTestSupport.rbfSumOracle;
import static org.diffusion4j.metrics.MetricsTestSupport.shifted;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * MMD² against its defining formulas, the closed form for Gaussians, its zero for one distribution, its growth
 * with the shift, and the median heuristic against brute force and a U-statistic concentration bound.
 */
class MmdTest {

    private static Backend backend;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void tearDown() {
        backend.close();
    }

    /** Gretton et al. 2012 eq. 3 and 5 written out with the brute-force kernel sums. */
    @Test
    void estimatorsFollowTheirDefinitions() {
        PointSet x = gaussian("x", 41, 3, null, 1, 1);
        PointSet y = gaussian("y", 29, 3, new double[] {0.5, 0, -0.2}, 1.2, 2);
        double h = 1.3;
        double n = 41;
        double m = 29;
        double kxx = rbfSumOracle(x, x, h);
        double kyy = rbfSumOracle(y, y, h);
        double kxy = rbfSumOracle(x, y, h);
        double u = (kxx - n) / (n * (n - 1)) + (kyy - m) / (m * (m - 1)) - 2 * kxy / (n * m);
        double v = kxx / (n * n) + kyy / (m * m) - 2 * kxy / (n * m);
        Mmd.Result ru = Mmd.compute(x, y, h, Estimator.U_STATISTIC, Pairwise.host());
        Mmd.Result rv = Mmd.compute(x, y, h, Estimator.V_STATISTIC, Pairwise.host());
        assertEquals(u, ru.mmd2(), 1e-13);
        assertEquals(v, rv.mmd2(), 1e-13);
        assertEquals(Math.sqrt(v), rv.mmd(), 1e-13);
        assertEquals(h, ru.bandwidth());
        assertEquals(41, ru.n());
        assertEquals(29, ru.m());
        // the GEMM engine (float32 squared distances, tiles of 16 cutting both sets unevenly)
        Pairwise g = Pairwise.on(backend, 16);
        assertEquals(u, Mmd.compute(x, y, h, Estimator.U_STATISTIC, g).mmd2(), 1e-6);
        assertEquals(v, Mmd.compute(x, y, h, Estimator.V_STATISTIC, g).mmd2(), 1e-6);
    }

    /**
     * One set against itself: MMD²_b = 0, and MMD²_u = (2/N)(K̄ − 1) with K̄ the mean off-diagonal kernel value
     * (the two within-set terms are K̄, the cross term (K̄ (N − 1) + 1)/N).
     */
    @Test
    void identicalSets() {
        PointSet x = gaussian("x", 57, 4, null, 1, 3);
        PointSet copy = PointSet.of("copy", x.toArray(), 57, 4);
        double h = 2;
        double n = 57;
        double kbar = (rbfSumOracle(x, x, h) - n) / (n * (n - 1));
        for (Pairwise engine : new Pairwise[] {Pairwise.host(), Pairwise.on(backend, 32)}) {
            for (PointSet y : new PointSet[] {x, copy}) {
                assertEquals(0.0, Mmd.compute(x, y, h, Estimator.V_STATISTIC, engine).mmd2(), 1e-6, engine.toString());
                assertEquals(2 / n * (kbar - 1), Mmd.compute(x, y, h, Estimator.U_STATISTIC, engine).mmd2(), 1e-6);
            }
        }
        assertEquals(0.0, Mmd.compute(x, x, h, Estimator.V_STATISTIC, Pairwise.host()).mmd2(), 1e-15);
    }

    /**
     * {@code X ~ N(μ1, s² I)}, {@code Y ~ N(μ2, s² I)} in {@code D} dims, {@code δ = μ1 − μ2}: a difference of two
     * such points is {@code N(δ, 2s² I)}, and per coordinate {@code E exp(−Z²/(2h²)) = √(h²/(h² + v))
     * exp(−δ²/(2(h² + v)))} for {@code Z ~ N(δ, v)} (a Gaussian integral), so
     * {@code MMD² = 2 (h²/(h² + 2s²))^{D/2} (1 − exp(−‖δ‖²/(2(h² + 2s²))))}.
     */
    private static double gaussianMmd2(int d, double s, double h, double delta) {
        double c = Math.pow(h * h / (h * h + 2 * s * s), d / 2.0);
        return 2 * c * (1 - Math.exp(-delta * delta / (2 * (h * h + 2 * s * s))));
    }

    /**
     * The U-statistic is unbiased: its mean over 16 seeds matches the closed form (0 for one distribution) within
     * 5 standard errors of that mean (estimated from the spread over seeds: |t| > 5 with 15 degrees of freedom has
     * probability 2e-4), and the standard error itself is small against the shifted value.
     */
    @Test
    void unbiasedEstimateMatchesTheGaussianClosedForm() {
        int d = 3;
        double h = 1.5;
        int seeds = 16;
        for (double delta : new double[] {0, 0.6}) {
            double[] values = new double[seeds];
            for (int s = 0; s < seeds; s++) {
                PointSet x = gaussian("x", 400, d, null, 1, 100 + s);
                PointSet y = gaussian("y", 350, d, new double[] {delta, 0, 0}, 1, 200 + s);
                values[s] = Mmd.compute(x, y, h, Estimator.U_STATISTIC, Pairwise.host()).mmd2();
            }
            double[] ms = meanAndStdError(values);
            double exact = gaussianMmd2(d, 1, h, delta);
            assertEquals(exact, ms[0], 5 * ms[1], "delta " + delta + ": mean " + ms[0] + " ± " + ms[1]);
            assertTrue(ms[1] < 0.1 * gaussianMmd2(d, 1, h, 0.6), "standard error " + ms[1]);
        }
    }

    /** With common random numbers, MMD² grows strictly with the shift (both estimators, fixed bandwidth). */
    @Test
    void growsWithTheShift() {
        PointSet x = gaussian("x", 300, 5, null, 1, 7);
        PointSet base = gaussian("y", 300, 5, null, 1, 8);
        for (Estimator e : Estimator.values()) {
            double previous = Double.NEGATIVE_INFINITY;
            for (double delta : new double[] {0, 0.25, 0.5, 1, 2, 4}) {
                PointSet y = shifted(base, new double[] {delta, 0, 0, 0, delta / 2}, "y");
                double v = Mmd.compute(x, y, 2.0, e, Pairwise.host()).mmd2();
                assertTrue(v > previous, e + " at shift " + delta + ": " + v + " after " + previous);
                previous = v;
            }
        }
    }

    private static double[] allPairDistances(PointSet x, PointSet y) {
        int n = x.size();
        int total = n + y.size();
        double[] out = new double[total * (total - 1) / 2];
        int q = 0;
        for (int i = 0; i < total; i++) {
            for (int j = i + 1; j < total; j++) {
                PointSet a = i < n ? x : y;
                PointSet b = j < n ? x : y;
                out[q++] = Math.sqrt(dist2(a, i < n ? i : i - n, b, j < n ? j : j - n));
            }
        }
        Arrays.sort(out);
        return out;
    }

    @Test
    void medianHeuristicOfASmallPoolIsTheExactMedian() {
        PointSet x = gaussian("x", 30, 3, null, 1, 9);
        PointSet y = gaussian("y", 21, 3, null, 2, 10);
        double[] all = allPairDistances(x, y);                 // 1275 pairs: the middle one
        assertEquals(all[all.length / 2], Mmd.medianHeuristic(x, y, 1000, 0));
        PointSet a = PointSet.of("a", new float[][] {{0, 0}, {3, 0}});
        PointSet b = PointSet.of("b", new float[][] {{0, 4}, {10, 0}});
        // distances 3, 4, 10, 5, 7, √116: sorted 3 4 5 7 10 10.77 → (5 + 7) / 2
        assertEquals(6.0, Mmd.medianHeuristic(a, b, 1000, 0), 1e-12);
    }

    /**
     * A random subset of S = 1000 of 3000 pooled points: the fraction of the subset's pairs below a threshold
     * is a U-statistic (sampling without replacement) with a 0/1 kernel, within {@code ε = √(ln(2/δ)/(2⌊S/2⌋))}
     * of the full pool's fraction with probability {@code 1 − δ} (Hoeffding 1963, JASA 58, Sec. 5–6). So the
     * subset median lies between the full pool's {@code (1/2 − ε)} and {@code (1/2 + ε)} quantiles
     * ({@code δ = 1e-9}: {@code ε = 0.147}).
     */
    @Test
    void medianHeuristicOfALargePoolStaysWithinTheConcentrationBound() {
        PointSet x = gaussian("x", 1800, 4, null, 1, 11);
        PointSet y = gaussian("y", 1200, 4, new double[] {1, 0, 0, 0}, 0.7, 12);
        double[] all = allPairDistances(x, y);
        double eps = Math.sqrt(Math.log(2 / 1e-9) / (2 * 500));
        double lo = all[(int) Math.floor((0.5 - eps) * all.length)];
        double hi = all[(int) Math.ceil((0.5 + eps) * all.length)];
        for (long seed = 0; seed < 3; seed++) {
            double med = Mmd.medianHeuristic(x, y, 1000, seed);
            assertTrue(med > lo && med < hi, "seed " + seed + ": " + med + " outside [" + lo + ", " + hi + "]");
            assertEquals(med, Mmd.medianHeuristic(x, y, 1000, seed));   // reproducible
        }
        assertTrue(Mmd.medianHeuristic(x, y, 1000, 0) != Mmd.medianHeuristic(x, y, 1000, 1));
        Mmd.Result r = Mmd.compute(x, y, Estimator.V_STATISTIC, Pairwise.on(backend));
        assertEquals(Mmd.medianHeuristic(x, y, Mmd.MEDIAN_HEURISTIC_POINTS, 0), r.bandwidth());
    }

    @Test
    void rejectsBadInputs() {
        PointSet x = gaussian("x", 5, 2, null, 1, 13);
        PointSet one = gaussian("single", 1, 2, null, 1, 14);
        String m1 = assertThrows(IllegalArgumentException.class,
                () -> Mmd.compute(x, one, Estimator.U_STATISTIC, Pairwise.host())).getMessage();
        assertTrue(m1.contains("single has 1 point but the MMD U-statistic needs at least 2"), m1);
        for (double h : new double[] {0, -1, Double.NaN, Double.POSITIVE_INFINITY}) {
            String m = assertThrows(IllegalArgumentException.class,
                    () -> Mmd.compute(x, x, h, Estimator.V_STATISTIC, Pairwise.host())).getMessage();
            assertTrue(m.contains("got " + h), m);
        }
        PointSet same = PointSet.of("same", new float[][] {{1, 1}, {1, 1}, {1, 1}});
        String m2 = assertThrows(IllegalArgumentException.class,
                () -> Mmd.compute(same, same, Estimator.V_STATISTIC, Pairwise.host())).getMessage();
        assertTrue(m2.contains("median heuristic of 0"), m2);
        String m3 = assertThrows(IllegalArgumentException.class, () -> Mmd.medianHeuristic(x, x, 1, 0)).getMessage();
        assertTrue(m3.contains("got 1"), m3);
    }
}
