package org.diffusion4j.metrics;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.io.PhiloxShuffle;
import org.diffusion4j.tensor.Backend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.diffusion4j.metrics.MetricsTestSupport.constant;
import static org.diffusion4j.metrics.MetricsTestSupport.gaussian;
import static org.diffusion4j.metrics.MetricsTestSupport.meanAndStdError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The kernel distance (KID's estimator) against its formula written out pair by pair, both engines, the
 * closed-form population value for Gaussians, and its subset recipe.
 */
class KernelDistanceTest {

    private static Backend backend;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void tearDown() {
        backend.close();
    }

    private static double kernel(PointSet a, int i, PointSet b, int j) {
        double dot = 0;
        for (int k = 0; k < a.dim(); k++) {
            dot += (double) a.get(i, k) * b.get(j, k);
        }
        double base = dot / a.dim() + 1;
        return base * base * base;
    }

    /** Bińkowski et al. 2018, Sec. 4 / Gretton et al. 2012 eq. 3 with k(x, y) = (x·y/D + 1)³, every pair. */
    private static double oracle(PointSet x, PointSet y) {
        int n = x.size();
        int m = y.size();
        double sxx = 0;
        double syy = 0;
        double sxy = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                sxx += i == j ? 0 : kernel(x, i, x, j);
            }
        }
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < m; j++) {
                syy += i == j ? 0 : kernel(y, i, y, j);
            }
        }
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                sxy += kernel(x, i, y, j);
            }
        }
        return sxx / ((double) n * (n - 1)) + syy / ((double) m * (m - 1)) - 2 * sxy / ((double) n * m);
    }

    /** Host float64 to the oracle; the float32 GEMM engine (tiles of 16, odd sizes) to within 1e-6 of the terms. */
    @Test
    void bothEnginesMatchTheFormula() {
        PointSet x = gaussian("x", 83, 7, constant(7, 0.3), 1.1, 21);
        PointSet y = gaussian("y", 59, 7, null, 0.9, 22);
        double want = oracle(x, y);
        assertTrue(Math.abs(want) > 1e-3, "a case far from 0: " + want);
        assertEquals(want, KernelDistance.mmd2Unbiased(x, y, Pairwise.host()), 1e-12 * 30);
        double gemm = KernelDistance.mmd2Unbiased(x, y, Pairwise.on(backend, 16));
        assertEquals(want, gemm, 1e-6 * 30, "terms are ~10: float32 rounding only");
        assertNotEquals(want, oracle(x, gaussian("y2", 59, 7, null, 1.2, 22)), "the oracle sees the spread");
    }

    /**
     * {@code E[(1 + x·y / D)³]} for independent {@code x ~ N(a, s² I)}, {@code y ~ N(b, r² I)}: with
     * {@code u = x·y = Σ_k x_k y_k} a sum of independent products, its first three moments follow from the
     * per-coordinate moments of a product of independent normals ({@code E t = ab},
     * {@code E t² = (a² + s²)(b² + r²)}, {@code E t³ = (a³ + 3as²)(b³ + 3br²)}) through the cumulants.
     */
    private static double expectedKernel(double a, double s, double b, double r, int d) {
        double et = a * b;
        double et2 = (a * a + s * s) * (b * b + r * r);
        double et3 = (a * a * a + 3 * a * s * s) * (b * b * b + 3 * b * r * r);
        double k1 = d * et;
        double k2 = d * (et2 - et * et);
        double k3 = d * (et3 - 3 * et * et2 + 2 * et * et * et);
        double eu = k1;
        double eu2 = k2 + k1 * k1;
        double eu3 = k3 + 3 * k1 * k2 + k1 * k1 * k1;
        return 1 + 3 * eu / d + 3 * eu2 / ((double) d * d) + eu3 / ((double) d * d * d);
    }

    /**
     * Unbiased for the population MMD²: for shifted and scaled Gaussians the mean over 16 seeds matches the closed
     * form, and for one distribution 0, within 5 standard errors of that mean (|t| > 5 with 15 degrees of freedom:
     * probability below 2e-4).
     */
    @Test
    void meanOverSeedsMatchesThePopulationValue() {
        int d = 4;
        double shift = 0.5;
        double scale = 0.8;
        double population = expectedKernel(0, 1, 0, 1, d) + expectedKernel(shift, scale, shift, scale, d)
                - 2 * expectedKernel(0, 1, shift, scale, d);
        assertTrue(population > 0.1, "a shift the estimate must see: " + population);
        int seeds = 16;
        double[] shifted = new double[seeds];
        double[] same = new double[seeds];
        for (int s = 0; s < seeds; s++) {
            PointSet x = gaussian("x", 300, d, null, 1, 1000 + 3 * s);
            PointSet y = gaussian("y", 250, d, constant(d, shift), scale, 1001 + 3 * s);
            PointSet z = gaussian("z", 250, d, null, 1, 1002 + 3 * s);
            shifted[s] = KernelDistance.mmd2Unbiased(x, y, Pairwise.host());
            same[s] = KernelDistance.mmd2Unbiased(x, z, Pairwise.host());
        }
        double[] ms = meanAndStdError(shifted);
        double[] m0 = meanAndStdError(same);
        assertTrue(Math.abs(ms[0] - population) < 5 * ms[1], "shifted: " + ms[0] + " ± " + ms[1] + ", closed form "
                + population);
        assertTrue(Math.abs(m0[0]) < 5 * m0[1], "one distribution: " + m0[0] + " ± " + m0[1]);
        assertTrue(ms[1] < 0.1 * population, "a test that can fail: standard error " + ms[1]);
    }

    /** Whole sets when the subset size covers both; otherwise the documented Philox subsets, reproducibly. */
    @Test
    void subsetsFollowTheDocumentedRecipe() {
        PointSet x = gaussian("x", 120, 5, null, 1, 31);
        PointSet y = gaussian("y", 90, 5, constant(5, 0.2), 1, 32);
        PointSet y120 = gaussian("y120", 120, 5, constant(5, 0.2), 1, 33);
        KernelDistance.Result whole = KernelDistance.compute(x, y120, 50, 1000, Pairwise.host(), 7);
        assertEquals(1, whole.subsets());
        assertEquals(0.0, whole.std());
        assertEquals(KernelDistance.mmd2Unbiased(x, y120, Pairwise.host()), whole.mean(), 0.0);
        assertEquals(50, KernelDistance.compute(x, y, 50, 1000, Pairwise.host(), 7).subsets(),
                "subsets of the larger set still differ");

        long seed = 7;
        int subsets = 6;
        int size = 40;
        KernelDistance.Result r = KernelDistance.compute(x, y, subsets, size, Pairwise.host(), seed);
        double[] v = new double[subsets];
        double mean = 0;
        for (int s = 0; s < subsets; s++) {
            v[s] = KernelDistance.mmd2Unbiased(pick(x, size, seed, KernelDistance.SUBSET_STREAM + 2L * s),
                    pick(y, size, seed, KernelDistance.SUBSET_STREAM + 2L * s + 1), Pairwise.host());
            mean += v[s] / subsets;
        }
        double var = 0;
        for (double e : v) {
            var += (e - mean) * (e - mean) / subsets;
        }
        assertEquals(subsets, r.subsets());
        assertEquals(size, r.subsetSize());
        assertEquals(mean, r.mean(), 1e-14);
        assertEquals(Math.sqrt(var), r.std(), 1e-14);
        assertTrue(r.std() > 0, "subsets differ");
        assertEquals(r, KernelDistance.compute(x, y, subsets, size, Pairwise.host(), seed), "reproducible");
        assertNotEquals(r.mean(), KernelDistance.compute(x, y, subsets, size, Pairwise.host(), seed + 1).mean());
        KernelDistance.Result g = KernelDistance.compute(x, y, subsets, size, Pairwise.on(backend, 16), seed);
        assertEquals(r.mean(), g.mean(), 1e-5);
    }

    private static PointSet pick(PointSet p, int count, long seed, long stream) {
        int[] perm = PhiloxShuffle.permutation(p.size(), seed, stream);
        float[][] rows = new float[count][];
        for (int i = 0; i < count; i++) {
            rows[i] = p.row(perm[i]);
        }
        return PointSet.of("pick", rows);
    }

    @Test
    void badInputsAreNamed() {
        PointSet one = gaussian("one", 1, 3, null, 1, 1);
        PointSet ten = gaussian("ten", 10, 3, null, 1, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> KernelDistance.compute(one, ten, Pairwise.host(), 0));
        assertTrue(e.getMessage().contains("one has 1 point"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KernelDistance.compute(ten, ten, 0, 10,
                Pairwise.host(), 0));
        assertTrue(e.getMessage().contains("subsets >= 1, got 0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KernelDistance.compute(ten, ten, 3, 1,
                Pairwise.host(), 0));
        assertTrue(e.getMessage().contains("maxSubsetSize = 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Pairwise.host().polynomialSum(ten, ten, 0, 1, 1));
        assertTrue(e.getMessage().contains("degree"), e.getMessage());
    }
}
