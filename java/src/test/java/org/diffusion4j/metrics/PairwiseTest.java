package org.diffusion4j.metrics;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Backend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.diffusion4j.metrics.MetricsTestSupport.constant;
import static org.diffusion4j.metrics.MetricsTestSupport.distanceSumOracle;
import static org.diffusion4j.metrics.MetricsTestSupport.gaussian;
import static org.diffusion4j.metrics.MetricsTestSupport.nearestOracle;
import static org.diffusion4j.metrics.MetricsTestSupport.rbfSumOracle;
import static org.diffusion4j.metrics.MetricsTestSupport.relErr;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Both pairwise engines against the float64 brute-force oracles, on odd shapes that cut the tiles unevenly,
 * symmetric and asymmetric, and on data far from the origin (where only the centring keeps float32 GEMM exact
 * enough).
 */
class PairwiseTest {

    private static Backend backend;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void tearDown() {
        backend.close();
    }

    /**
     * Found by an adversarial trial: duplicated points made the float32 d² slightly negative and the RBF kernel
     * exceed 1 (MMD² V 0.33 instead of 0.22 at h = 1e-3, Infinity at 1e-4); points near 1e20 overflowed the
     * GEMM's squared norms (energy distance NaN). Kernels now stay in [0, 1] and huge values use float64.
     */
    @Test
    void duplicatesTinyBandwidthsAndHugeValuesStayFinite() {
        PointSet x = PointSet.of("x", new float[][] {{0, 1}, {2, 3}, {4, 5}});
        PointSet y = PointSet.of("y", new float[][] {{0, 1}, {2, 3}, {4, 6}});
        Pairwise gemm = Pairwise.on(backend, 16);
        for (double h : new double[] {1e-3, 1e-4, 1e-6, 1e-30}) {
            double got = gemm.rbfSum(x, y, h);
            assertEquals(Pairwise.host().rbfSum(x, y, h), got, 1e-6, "h = " + h);   // the two duplicates: 2
        }
        assertThrows(IllegalArgumentException.class, () -> gemm.rbfSum(x, y, 1e-160));
        PointSet big = PointSet.of("big", new float[][] {{1e20f, 0}, {-1e20f, 3e19f}, {5e19f, 1}});
        double d = gemm.distanceSum(big, x);
        assertEquals(Pairwise.host().distanceSum(big, x), d, 1e-9 * Math.abs(d));
        double[] nn = gemm.nearestDistances(big, x);
        double[] want = Pairwise.host().nearestDistances(big, x);
        for (int i = 0; i < nn.length; i++) {
            assertEquals(want[i], nn[i], 1e-9 * want[i]);
        }
    }

    /**
     * The polynomial kernel sums: host against a pair-by-pair oracle, the GEMM engine (symmetric and not, tiles
     * cutting the sets unevenly) against the host, and values beyond float32's products through the host loops.
     */
    @Test
    void polynomialSumsMatchTheOracle() {
        PointSet a = gaussian("a", 45, 6, constant(6, 0.5), 1.2, 7);
        PointSet b = gaussian("b", 29, 6, null, 0.8, 8);
        for (PointSet[] p : new PointSet[][] {{a, b}, {a, a}, {b, a}}) {
            for (int degree : new int[] {1, 2, 3}) {
                double want = 0;
                for (int i = 0; i < p[0].size(); i++) {
                    for (int j = 0; j < p[1].size(); j++) {
                        double dot = 0;
                        for (int k = 0; k < 6; k++) {
                            dot += (double) p[0].get(i, k) * p[1].get(j, k);
                        }
                        want += Math.pow(dot / 6 + 0.5, degree);
                    }
                }
                double host = Pairwise.host().polynomialSum(p[0], p[1], degree, 1.0 / 6, 0.5);
                assertTrue(relErr(host, want) < 1e-12, "host degree " + degree + ": " + host + " vs " + want);
                double gemm = Pairwise.on(backend, 8).polynomialSum(p[0], p[1], degree, 1.0 / 6, 0.5);
                assertTrue(relErr(gemm, want) < 1e-5, "gemm degree " + degree + ": " + gemm + " vs " + want);
            }
        }
        // found by a code review: features near 1e7 overflowed the float32 tiles' cubes (NaN); float64 takes them
        PointSet large = MetricsTestSupport.gaussian("large", 20, 8, null, 1e7, 4);
        double exact = Pairwise.host().polynomialSum(large, large, 3, 1.0 / 8, 1);
        assertTrue(Double.isFinite(exact) && exact > 0, "" + exact);
        assertEquals(exact, Pairwise.on(backend, 8).polynomialSum(large, large, 3, 1.0 / 8, 1), 1e-12 * exact);
        // and a gamma below float32's range (found by an adversarial trial: 0 on the GEMM engine), and points 1e-30
        // apart, whose float32 squared distances underflow
        assertEquals(Pairwise.host().polynomialSum(a, b, 3, 1e-40, 1e-40),
                Pairwise.on(backend, 8).polynomialSum(a, b, 3, 1e-40, 1e-40), 0.0);
        PointSet speck = PointSet.of("speck", new float[][] {{0, 0}, {3e-30f, 0}, {0, 4e-30f}});
        double[] nn = Pairwise.on(backend, 2).nearestDistances(speck, PointSet.of("o", new float[][] {{0, 1e-30f}}));
        assertEquals(1e-30, nn[0], 1e-36);
        PointSet big = PointSet.of("big", new float[][] {{1e25f, 0}, {0, 3e24f}});
        assertEquals(Pairwise.host().polynomialSum(big, big, 2, 1, 0),
                Pairwise.on(backend, 4).polynomialSum(big, big, 2, 1, 0), 0.0, "beyond float32: float64 loops");
    }

    /** float64 loops: equal to the oracle up to summation order. */
    @Test
    void hostEngineMatchesTheOracle() {
        PointSet a = gaussian("a", 131, 5, null, 1.3, 1);
        PointSet b = gaussian("b", 77, 5, constant(5, 0.4), 0.9, 2);
        Pairwise host = Pairwise.host();
        for (PointSet[] pair : new PointSet[][] {{a, b}, {a, a}, {b, a}}) {
            assertTrue(relErr(host.rbfSum(pair[0], pair[1], 1.7), rbfSumOracle(pair[0], pair[1], 1.7)) < 1e-12);
            assertTrue(relErr(host.distanceSum(pair[0], pair[1]), distanceSumOracle(pair[0], pair[1])) < 1e-12);
        }
        double[] nn = host.nearestDistances(a, b);
        double[] want = nearestOracle(a, b);
        for (int i = 0; i < nn.length; i++) {
            assertEquals(want[i], nn[i], 1e-12 * want[i]);
        }
    }

    /**
     * Blocked GEMM in float32, tiles of 16 and 64 that do not divide N = 131 or M = 77: sums within 2e-6 relative
     * (float32 squared distances, float64 sums), nearest distances within 1e-5 of the data's scale.
     */
    @Test
    void gemmEngineMatchesTheOracleAcrossUnevenTiles() {
        for (double offset : new double[] {0, 1000}) {          // far from the origin: the centring matters
            PointSet a = gaussian("a", 131, 6, constant(6, offset), 1.3, 3);
            PointSet b = gaussian("b", 77, 6, constant(6, offset + 0.4), 0.9, 4);
            for (int tile : new int[] {16, 64, 1024}) {
                Pairwise g = Pairwise.on(backend, tile);
                for (PointSet[] pair : new PointSet[][] {{a, b}, {a, a}, {b, b}}) {
                    double rbf = g.rbfSum(pair[0], pair[1], 1.7);
                    double rbfWant = rbfSumOracle(pair[0], pair[1], 1.7);
                    assertTrue(relErr(rbf, rbfWant) < 2e-6, () -> "rbf tile " + tile + " offset " + offset + ": "
                            + rbf + " vs " + rbfWant);
                    double dist = g.distanceSum(pair[0], pair[1]);
                    double distWant = distanceSumOracle(pair[0], pair[1]);
                    assertTrue(relErr(dist, distWant) < 2e-6, () -> "distance tile " + tile + " offset " + offset
                            + ": " + dist + " vs " + distWant);
                }
                double[] nn = g.nearestDistances(a, b);
                double[] want = nearestOracle(a, b);
                for (int i = 0; i < nn.length; i++) {
                    assertEquals(want[i], nn[i], 1e-5 * 3, "nearest " + i + " tile " + tile + " offset " + offset);
                }
            }
        }
    }

    /** A query that is also a reference point has distance 0 (host exactly; GEMM to float32 resolution). */
    @Test
    void pointsOfTheReferenceHaveDistanceZero() {
        PointSet ref = gaussian("ref", 50, 8, null, 1, 5);
        float[] v = ref.toArray();
        PointSet q = PointSet.of("q", java.util.Arrays.copyOf(v, 8 * 10), 10, 8);   // the first 10 reference points
        for (double d : Pairwise.host().nearestDistances(q, ref)) {
            assertEquals(0.0, d);
        }
        for (double d : Pairwise.on(backend, 7).nearestDistances(q, ref)) {
            assertTrue(d < 1e-2, () -> "gemm distance of a copy: " + d);  // √(float32 rounding of d² ~ 1e-5 · 8)
        }
    }

    /** {@link Pairwise#auto}: the host loops below the threshold, the GEMM engine above it, bit for bit. */
    @Test
    void autoPicksTheEngineBySize() {
        Pairwise auto = Pairwise.auto(backend);
        PointSet a = gaussian("a", 40, 3, null, 1, 7);
        PointSet b = gaussian("b", 30, 3, null, 1, 8);
        assertEquals(Pairwise.host().rbfSum(a, b, 1.1), auto.rbfSum(a, b, 1.1));
        assertEquals(Pairwise.host().distanceSum(a, a), auto.distanceSum(a, a));
        int n = (int) Math.ceil(Math.sqrt(Pairwise.AUTO_HOST_MAX_MACS / 64.0)) + 1;   // just above, at D = 64
        PointSet big = gaussian("big", n, 64, null, 1, 9);
        Pairwise gemm = Pairwise.on(backend);
        assertEquals(gemm.distanceSum(big, big), auto.distanceSum(big, big));
        assertTrue(java.util.Arrays.equals(gemm.nearestDistances(big, big), auto.nearestDistances(big, big)));
        assertTrue(auto.toString().startsWith("auto: host float64 below"), auto.toString());
    }

    @Test
    void rejectsBadSettings() {
        PointSet a = gaussian("a", 3, 2, null, 1, 6);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Pairwise.host().rbfSum(a, a, 0));
        assertTrue(e.getMessage().contains("got 0.0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Pairwise.on(backend).rbfSum(a, a, Double.NaN));
        assertTrue(e.getMessage().contains("got NaN"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Pairwise.on(backend, 0));
        assertTrue(e.getMessage().contains("got 0"), e.getMessage());
    }
}
