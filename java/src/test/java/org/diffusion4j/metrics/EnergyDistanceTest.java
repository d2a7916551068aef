package org.diffusion4j.metrics;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Backend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.diffusion4j.metrics.MetricsTestSupport.distanceSumOracle;
import static org.diffusion4j.metrics.MetricsTestSupport.gaussian;
import static org.diffusion4j.metrics.MetricsTestSupport.meanAbsNormal;
import static org.diffusion4j.metrics.MetricsTestSupport.meanAndStdError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Energy distance against its definition, the 1-D CDF identity, and the closed form for 1-D normals. */
class EnergyDistanceTest {

    private static Backend backend;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void tearDown() {
        backend.close();
    }

    @Test
    void estimatorsFollowTheirDefinitions() {
        PointSet x = gaussian("x", 43, 5, null, 1, 1);
        PointSet y = gaussian("y", 31, 5, new double[] {1, 0, 0, 0.5, 0}, 0.8, 2);
        double n = 43;
        double m = 31;
        double sxx = distanceSumOracle(x, x);
        double syy = distanceSumOracle(y, y);
        double sxy = distanceSumOracle(x, y);
        double v = 2 * sxy / (n * m) - sxx / (n * n) - syy / (m * m);
        double u = 2 * sxy / (n * m) - sxx / (n * (n - 1)) - syy / (m * (m - 1));
        assertEquals(v, EnergyDistance.compute(x, y, Estimator.V_STATISTIC, Pairwise.host()).energy(), 1e-12);
        assertEquals(u, EnergyDistance.compute(x, y, Estimator.U_STATISTIC, Pairwise.host()).energy(), 1e-12);
        Pairwise g = Pairwise.on(backend, 16);
        assertEquals(v, EnergyDistance.compute(x, y, Estimator.V_STATISTIC, g).energy(), 2e-5);
        assertEquals(u, EnergyDistance.compute(x, y, Estimator.U_STATISTIC, g).energy(), 2e-5);
    }

    /**
     * In one dimension the V-statistic is the energy distance of the two empirical distributions, which equals
     * {@code 2 ∫ (F_N(t) − G_M(t))² dt} (Székely and Rizzo 2013, Sec. 2): an exact identity, checked here with
     * the integral over the merged sorted values.
     */
    @Test
    void oneDimensionalVStatisticIsTwiceTheSquaredCdfGap() {
        PointSet x = gaussian("x", 64, 1, null, 1, 3);
        PointSet y = gaussian("y", 37, 1, new double[] {0.7}, 1.5, 4);
        double[] a = new double[64];
        double[] b = new double[37];
        for (int i = 0; i < 64; i++) {
            a[i] = x.get(i, 0);
        }
        for (int i = 0; i < 37; i++) {
            b[i] = y.get(i, 0);
        }
        Arrays.sort(a);
        Arrays.sort(b);
        double[] all = new double[101];
        System.arraycopy(a, 0, all, 0, 64);
        System.arraycopy(b, 0, all, 64, 37);
        Arrays.sort(all);
        double integral = 0;
        int i = 0;
        int j = 0;
        for (int k = 0; k + 1 < all.length; k++) {
            while (i < a.length && a[i] <= all[k]) {
                i++;
            }
            while (j < b.length && b[j] <= all[k]) {
                j++;
            }
            double gap = (double) i / a.length - (double) j / b.length;
            integral += gap * gap * (all[k + 1] - all[k]);
        }
        assertEquals(2 * integral, EnergyDistance.compute(x, y, Estimator.V_STATISTIC, Pairwise.host()).energy(), 1e-12);
    }

    @Test
    void identicalSetsGiveZero() {
        PointSet x = gaussian("x", 80, 6, null, 1, 5);
        PointSet copy = PointSet.of("copy", x.toArray(), 80, 6);
        assertEquals(0.0, EnergyDistance.compute(x, x, Estimator.V_STATISTIC, Pairwise.host()).energy());
        assertEquals(0.0, EnergyDistance.compute(x, copy, Estimator.V_STATISTIC, Pairwise.host()).energy(), 1e-12);
        assertEquals(0.0, EnergyDistance.compute(x, x, Estimator.V_STATISTIC, Pairwise.on(backend, 32)).energy(), 1e-5);
        // U-statistic of a set against itself: 2 S/N² − 2 S/(N(N−1)) = −2 S / (N²(N − 1)), S = Σ_ij ‖x_i − x_j‖
        double s = distanceSumOracle(x, x);
        assertEquals(-2 * s / (80.0 * 80 * 79), EnergyDistance.compute(x, x, Estimator.U_STATISTIC, Pairwise.host()).energy(),
                1e-12);
    }

    /**
     * {@code X ~ N(μ1, σ1²)}, {@code Y ~ N(μ2, σ2²)}: {@code E|X − X'| = 2σ1/√π} and {@code E|X − Y| = E|Z|} for
     * {@code Z ~ N(μ1 − μ2, σ1² + σ2²)}, so {@code E = 2 E|Z| − 2σ1/√π − 2σ2/√π}. The unbiased U-statistic's mean
     * over 16 seeds matches within 5 standard errors (from the spread over seeds; |t| > 5 at 15 degrees of
     * freedom has probability 2e-4), and the standard error is below 1% of the within-set terms.
     */
    @Test
    void oneDimensionalNormalsMatchTheClosedForm() {
        double[][] cases = {{0, 1, 0, 1}, {0, 1, 1, 1}, {0.5, 1, -0.5, 2}};
        for (double[] c : cases) {
            double exact = 2 * meanAbsNormal(c[0] - c[2], Math.sqrt(c[1] * c[1] + c[3] * c[3]))
                    - 2 * c[1] / Math.sqrt(Math.PI) - 2 * c[3] / Math.sqrt(Math.PI);
            double[] values = new double[16];
            for (int s = 0; s < values.length; s++) {
                PointSet x = gaussian("x", 600, 1, new double[] {c[0]}, c[1], 300 + s);
                PointSet y = gaussian("y", 500, 1, new double[] {c[2]}, c[3], 400 + s);
                values[s] = EnergyDistance.compute(x, y, Estimator.U_STATISTIC, Pairwise.host()).energy();
            }
            double[] ms = meanAndStdError(values);
            assertEquals(exact, ms[0], 5 * ms[1], Arrays.toString(c) + ": mean " + ms[0] + " ± " + ms[1]);
            double scale = 2 * (c[1] + c[3]) / Math.sqrt(Math.PI);      // E|X − X'| + E|Y − Y'|
            assertTrue(ms[1] < 0.01 * scale, "standard error " + ms[1] + " against the scale " + scale);
        }
    }

    @Test
    void rejectsBadInputs() {
        PointSet x = gaussian("x", 5, 2, null, 1, 6);
        PointSet one = gaussian("lonely", 1, 2, null, 1, 7);
        String m = assertThrows(IllegalArgumentException.class,
                () -> EnergyDistance.compute(one, x, Estimator.U_STATISTIC, Pairwise.host())).getMessage();
        assertTrue(m.contains("lonely has 1 point but the energy-distance U-statistic needs at least 2"), m);
        assertEquals(5, EnergyDistance.compute(one, x, Estimator.V_STATISTIC, Pairwise.host()).m());
    }
}
