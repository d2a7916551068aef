package org.diffusion4j.metrics;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Backend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.diffusion4j.metrics.MetricsTestSupport.constant;
import static org.diffusion4j.metrics.MetricsTestSupport.dist2;
import static org.diffusion4j.metrics.MetricsTestSupport.gaussian;
import static org.diffusion4j.metrics.MetricsTestSupport.meanAndStdError;
import static org.diffusion4j.metrics.MetricsTestSupport.shifted;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Precision, recall, density and coverage against a brute-force float64 oracle written from the papers'
 * definitions, the exact answers of identical, disjoint and half-covered sets, and the closed-form expectations
 * of Naeem et al. 2020 for two samples of one distribution.
 */
class PrecisionRecallTest {

    private static Backend backend;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void tearDown() {
        backend.close();
    }

    /** The squared distance from point i of {@code p} to its k-th nearest other point, by sorting all of them. */
    private static double kthOracle(PointSet p, int i, int k) {
        double[] d = new double[p.size() - 1];
        int q = 0;
        for (int j = 0; j < p.size(); j++) {
            if (j != i) {
                d[q++] = dist2(p, i, p, j);
            }
        }
        Arrays.sort(d);
        return d[k - 1];
    }

    /** Kynkäänniemi et al. 2019 eqs. 1–3 and Naeem et al. 2020 eqs. 5–6, every pair in float64, no blocking. */
    private static double[] oracle(PointSet real, PointSet gen, int kPr, int kDc) {
        int m = real.size();
        int n = gen.size();
        double[] rPr = new double[m];
        double[] rDc = new double[m];
        double[] gPr = new double[n];
        for (int j = 0; j < m; j++) {
            rPr[j] = kthOracle(real, j, kPr);
            rDc[j] = kthOracle(real, j, kDc);
        }
        for (int i = 0; i < n; i++) {
            gPr[i] = kthOracle(gen, i, kPr);
        }
        double precision = 0;
        double density = 0;
        for (int i = 0; i < n; i++) {
            boolean in = false;
            for (int j = 0; j < m; j++) {
                double d = dist2(gen, i, real, j);
                in |= d <= rPr[j];
                density += d <= rDc[j] ? 1 : 0;
            }
            precision += in ? 1 : 0;
        }
        double recall = 0;
        double coverage = 0;
        for (int j = 0; j < m; j++) {
            boolean in = false;
            boolean covered = false;
            for (int i = 0; i < n; i++) {
                double d = dist2(real, j, gen, i);
                in |= d <= gPr[i];
                covered |= d <= rDc[j];
            }
            recall += in ? 1 : 0;
            coverage += covered ? 1 : 0;
        }
        return new double[] {precision / n, recall / m, density / ((double) kDc * n), coverage / m};
    }

    private static double[] values(PrecisionRecall.Result r) {
        return new double[] {r.precision(), r.recall(), r.density(), r.coverage()};
    }

    /**
     * Overlapping but different Gaussians (every number strictly between 0 and 1): the host engine equals the
     * oracle exactly; the float32 GEMM engine, whose tiles (16) cut both sets unevenly, may move a point lying
     * within rounding of a ball's boundary, so each fraction may differ by one point.
     */
    @Test
    void enginesMatchTheOracle() {
        PointSet real = gaussian("real", 97, 5, null, 1.0, 11);
        PointSet gen = gaussian("generated", 61, 5, constant(5, 0.6), 0.7, 12);
        for (int[] k : new int[][] {{3, 5}, {1, 1}, {4, 2}}) {
            double[] want = oracle(real, gen, k[0], k[1]);
            for (int q : new int[] {0, 1, 3}) {
                assertTrue(want[q] > 0 && want[q] < 1, "a case with informative fractions: " + Arrays.toString(want));
            }
            double[] host = values(PrecisionRecall.compute(gen, real, k[0], k[1], Pairwise.host()));
            assertEquals(Arrays.toString(want), Arrays.toString(host), "host engine, k = " + Arrays.toString(k));
            double[] gemm = values(PrecisionRecall.compute(gen, real, k[0], k[1], Pairwise.on(backend, 16)));
            assertEquals(Arrays.toString(want), Arrays.toString(gemm), "GEMM engine, k = " + Arrays.toString(k));
        }
    }

    /** One set against itself: every point in its own ball, each ball holding its centre and its k neighbours. */
    @Test
    void identicalSetsScoreOneAndDensityKPlusOneOverK() {
        PointSet real = gaussian("real", 150, 6, null, 1.0, 3);
        PointSet copy = real.named("copy");
        PrecisionRecall.Result r = PrecisionRecall.compute(copy, real, 3, 5, Pairwise.host());
        assertEquals(1.0, r.precision());
        assertEquals(1.0, r.recall());
        assertEquals(1.0, r.coverage());
        assertEquals(6.0 / 5.0, r.density(), 1e-15);
        PrecisionRecall.Result g = PrecisionRecall.compute(copy, real, 3, 5, Pairwise.on(backend, 64));
        assertEquals(1.0, g.precision());
        assertEquals(1.0, g.recall());
        assertEquals(1.0, g.coverage());
        assertEquals(6.0 / 5.0, g.density(), 1e-15);                 // k-th neighbours on the edges: refined
    }

    /**
     * Mode dropping: the real data has two far-apart clusters, the samples are exactly cluster A's points. Every
     * sample is real-looking (precision 1), only cluster A is recalled and covered (its share).
     */
    @Test
    void droppedModeLowersRecallAndCoverageOnly() {
        PointSet a = gaussian("a", 70, 4, null, 1.0, 5);
        PointSet b = shifted(gaussian("b", 50, 4, null, 1.0, 6), constant(4, 100), "b");
        float[] both = new float[120 * 4];
        System.arraycopy(a.toArray(), 0, both, 0, 280);
        System.arraycopy(b.toArray(), 0, both, 280, 200);
        PointSet real = PointSet.of("real", both, 120, 4);
        for (Pairwise engine : new Pairwise[] {Pairwise.host(), Pairwise.on(backend, 32)}) {
            PrecisionRecall.Result r = PrecisionRecall.compute(a.named("generated"), real, engine);
            assertEquals(1.0, r.precision(), engine.toString());
            assertEquals(70.0 / 120, r.recall(), 1e-15, engine.toString());
            assertEquals(70.0 / 120, r.coverage(), 1e-15, engine.toString());
        }
        PrecisionRecall.Result far = PrecisionRecall.compute(b, a, Pairwise.host());
        assertEquals(0.0, far.precision());
        assertEquals(0.0, far.recall());
        assertEquals(0.0, far.density());
        assertEquals(0.0, far.coverage());
    }

    /**
     * The argument order, {@code (generated, real)} as in the rest of the package: real data in two far-apart
     * modes, fresh samples of only one of them. Precision (samples on the data) is high, recall (data reached by
     * the samples) about one half; with the sets swapped the two trade places, so a swapped call cannot pass.
     */
    @Test
    void generatedComeFirstAndHalfCoverageMeansHighPrecisionLowRecall() {
        PointSet modeA = gaussian("a", 100, 2, null, 1.0, 31);
        PointSet modeB = shifted(gaussian("b", 100, 2, null, 1.0, 32), constant(2, 50), "b");
        float[] both = new float[200 * 2];
        System.arraycopy(modeA.toArray(), 0, both, 0, 200);
        System.arraycopy(modeB.toArray(), 0, both, 200, 200);
        PointSet real = PointSet.of("real", both, 200, 2);
        PointSet generated = gaussian("generated", 150, 2, null, 1.0, 33);   // mode A only, other points
        PrecisionRecall.Result r = PrecisionRecall.compute(generated, real, Pairwise.host());
        assertTrue(r.precision() > 0.9, "precision " + r.precision());
        assertTrue(r.recall() > 0.35 && r.recall() < 0.55, "recall " + r.recall());
        assertTrue(r.coverage() < 0.55, "coverage " + r.coverage());
        assertEquals(150, r.generated());
        assertEquals(200, r.real());
        PrecisionRecall.Result same = PrecisionRecall.reference(real, 3, 5, Pairwise.host()).compare(generated);
        assertEquals(r, same, "compute(generated, real) and reference(real).compare(generated)");
        PrecisionRecall.Result swapped = PrecisionRecall.compute(real, generated, Pairwise.host());
        assertTrue(swapped.precision() < 0.55 && swapped.recall() > 0.9, "swapped: " + swapped);
    }

    /**
     * Naeem et al. 2020, Sec. 4 (and its appendix): for real and generated samples of one distribution,
     * {@code E[density] = 1} and {@code E[coverage] = 1 − Π_{i=1..k} (M − i) / (M + N − i)} (the k nearest of the
     * other points around a real point are all real). Means over 12 pairs of samples agree within 5 standard
     * errors of the mean (|t| > 5 with 11 degrees of freedom has probability below 5e-4).
     */
    @Test
    void oneDistributionMeetsTheClosedFormExpectations() {
        int m = 400;
        int n = 300;
        int k = 5;
        int pairs = 12;
        double[] density = new double[pairs];
        double[] coverage = new double[pairs];
        for (int s = 0; s < pairs; s++) {
            PointSet real = gaussian("real", m, 3, null, 1.0, 100 + 2 * s);
            PointSet gen = gaussian("generated", n, 3, null, 1.0, 101 + 2 * s);
            PrecisionRecall.Result r = PrecisionRecall.compute(gen, real, 3, k, Pairwise.host());
            density[s] = r.density();
            coverage[s] = r.coverage();
        }
        double allReal = 1;
        for (int i = 1; i <= k; i++) {
            allReal *= (double) (m - i) / (m + n - i);
        }
        double[] d = meanAndStdError(density);
        double[] c = meanAndStdError(coverage);
        assertTrue(Math.abs(d[0] - 1) < 5 * d[1], "density " + d[0] + " ± " + d[1] + ", expected 1");
        assertTrue(Math.abs(c[0] - (1 - allReal)) < 5 * c[1], "coverage " + c[0] + " ± " + c[1] + ", expected "
                + (1 - allReal));
        assertTrue(d[1] < 0.05 && c[1] < 0.01, "a test that can fail: standard errors " + d[1] + ", " + c[1]);
    }

    /**
     * Found by an adversarial trial: on ties (binary features, many distances exactly equal to a radius) and at tiny
     * scales the float32 GEMM engine decided ball membership by rounding (density 1.40 where the exact value is
     * 2.62; every distance 0 at a scale of 1e-30). Decisions within the float32 error are recomputed in float64, so
     * the engines agree exactly.
     */
    @Test
    void tiesAndTinyScalesAreDecidedExactlyOnTheGemmEngine() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(17);
        int n = 300;
        int d = 16;
        float[] x = new float[n * d];
        float[] y = new float[n * d];
        for (int i = 0; i < n * d; i++) {
            x[i] = r.nextBoolean() ? 1 : -1;
            y[i] = r.nextBoolean() ? 1 : -1;
        }
        PointSet real = PointSet.of("real", x, n, d);
        PointSet gen = PointSet.of("generated", y, n, d);
        double[] want = oracle(real, gen, 3, 5);
        assertEquals(Arrays.toString(want), Arrays.toString(values(PrecisionRecall.compute(gen, real,
                Pairwise.host()))), "host");
        assertEquals(Arrays.toString(want), Arrays.toString(values(PrecisionRecall.compute(gen, real,
                Pairwise.on(backend, 64)))), "gemm");
        PointSet a = scaledBy(gaussian("a", 60, 3, null, 1, 21), 1e-30);
        PointSet b = scaledBy(gaussian("b", 50, 3, constant(3, 0.3), 1, 22), 1e-30);
        double[] tiny = values(PrecisionRecall.compute(b, a, Pairwise.host()));
        assertTrue(tiny[0] < 1 && tiny[1] < 1, "an informative case: " + Arrays.toString(tiny));
        assertEquals(Arrays.toString(tiny), Arrays.toString(values(PrecisionRecall.compute(b, a,
                Pairwise.on(backend, 16)))), "gemm at 1e-30");
    }

    private static PointSet scaledBy(PointSet p, double s) {
        float[] v = p.toArray();
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (v[i] * s);
        }
        return PointSet.of(p.name(), v, p.size(), p.dim());
    }

    /** The radii themselves, against sorting; duplicates are neighbours at distance 0. */
    @Test
    void kthNeighbourDistancesAndDuplicates() {
        PointSet p = gaussian("p", 40, 3, null, 2.0, 9);
        for (Pairwise engine : new Pairwise[] {Pairwise.host(), Pairwise.on(backend, 7)}) {
            double[] r = PrecisionRecall.kthNeighbourDistances(p, 4, engine);
            for (int i = 0; i < 40; i++) {
                assertEquals(Math.sqrt(kthOracle(p, i, 4)), r[i], 1e-5 * (1 + r[i]), engine + " point " + i);
            }
        }
        PointSet dup = PointSet.of("dup", new float[][] {{0, 0}, {0, 0}, {3, 4}});
        assertEquals(0.0, PrecisionRecall.kthNeighbourDistances(dup, 1, Pairwise.host())[0]);
        assertEquals(5.0, PrecisionRecall.kthNeighbourDistances(dup, 1, Pairwise.host())[2]);
    }

    @Test
    void badInputsAreNamed() {
        PointSet four = gaussian("four", 4, 2, null, 1, 1);
        PointSet ten = gaussian("ten", 10, 2, null, 1, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> PrecisionRecall.compute(ten, four, Pairwise.host()));      // real needs k = 5 neighbours
        assertTrue(e.getMessage().contains("four has 4 points"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> PrecisionRecall.compute(four.named("g3"), ten, 4, 2,
                Pairwise.host()));
        assertTrue(e.getMessage().contains("g3"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> PrecisionRecall.compute(ten, ten, 0, 2,
                Pairwise.host()));
        assertTrue(e.getMessage().contains("kPrecisionRecall = 0"), e.getMessage());
        PointSet threeD = gaussian("threeD", 10, 3, null, 1, 3);
        e = assertThrows(IllegalArgumentException.class, () -> PrecisionRecall.compute(threeD, ten, Pairwise.host()));
        assertTrue(e.getMessage().contains("threeD has D = 3"), e.getMessage());
    }

    /** Found by an adversarial trial: {@code k = Integer.MAX_VALUE} wrapped the size check (then OOM or a negative array). */
    @Test
    void aHugeKIsRefusedByName() {
        PointSet a = PointSet.of("generated", new float[] {0, 1, 2, 3, 4, 5}, 3, 2);
        PointSet b = PointSet.of("real", new float[] {0, 1, 2, 3, 4, 5}, 3, 2);
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> PrecisionRecall.compute(a, b, Integer.MAX_VALUE, 1, Pairwise.host()));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("2147483647"), e.getMessage());
    }
}
