package org.diffusion4j.metrics;

import org.diffusion4j.cuda.CudaBackend;
import org.diffusion4j.cuda.CudaRuntime;
import org.diffusion4j.tensor.Backend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.diffusion4j.metrics.MetricsTestSupport.constant;
import static org.diffusion4j.metrics.MetricsTestSupport.gaussian;
import static org.diffusion4j.metrics.MetricsTestSupport.relErr;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The blocked-GEMM pairwise engine on CUDA (cuBLAS products, device elementwise ops and row reductions) against
 * the float64 host engine, on sets that cut the tiles unevenly. Skipped without a usable device, failed instead
 * with {@code -Dd4j.cuda.required=true} ({@code benchmarks/gpu/check.sh}). The backend runs its products in FP32
 * whatever {@code -Dd4j.cuda.gemm} says, so the CPU engine's tolerances apply (2e-6 relative for the sums).
 */
@Tag("cuda")
class CudaMetricsTest {

    private static Backend gpu;
    /** Relative tolerance of the pairwise sums: float32 squared distances, float64 sums, as on the CPU. */
    private static final double TOL = 2e-6;

    @BeforeAll
    static void start() {
        CudaRuntime.Status s = CudaRuntime.probe(0);
        if (!s.usable()) {
            if (Boolean.getBoolean("d4j.cuda.required")) {
                fail("CUDA is required here but device 0 is not usable: " + s.description());
            }
            Assumptions.abort("no CUDA device: " + s.description());
        }
        gpu = CudaRuntime.createBackend(0, CudaBackend.GemmMath.FP32);
    }

    @AfterAll
    static void stop() {
        if (gpu != null) {
            gpu.close();
        }
    }

    @Test
    void pairwiseSumsAndNearestDistancesMatchTheHost() {
        PointSet a = gaussian("a", 1501, 33, constant(33, 3), 1.1, 1);
        PointSet b = gaussian("b", 1103, 33, constant(33, 3.2), 0.9, 2);
        Pairwise host = Pairwise.host();
        for (int tile : new int[] {512, 4096}) {
            Pairwise g = Pairwise.on(gpu, tile);
            for (PointSet[] p : new PointSet[][] {{a, b}, {a, a}}) {
                double h = 6.0;
                assertTrue(relErr(g.rbfSum(p[0], p[1], h), host.rbfSum(p[0], p[1], h)) < TOL, "rbf tile " + tile);
                assertTrue(relErr(g.distanceSum(p[0], p[1]), host.distanceSum(p[0], p[1])) < TOL, "dist tile " + tile);
            }
            double[] nn = g.nearestDistances(a, b);
            double[] want = host.nearestDistances(a, b);
            for (int i = 0; i < nn.length; i++) {
                assertEquals(want[i], nn[i], 1e-3 * want[i] + 1e-3, "nearest " + i + " tile " + tile);
            }
        }
    }

    @Test
    void metricsMatchTheHost() {
        PointSet x = gaussian("x", 900, 16, null, 1, 3);
        PointSet y = gaussian("y", 700, 16, constant(16, 0.2), 1, 4);
        Pairwise g = Pairwise.on(gpu);
        Pairwise h = Pairwise.host();
        Mmd.Result mg = Mmd.compute(x, y, Estimator.U_STATISTIC, g);
        Mmd.Result mh = Mmd.compute(x, y, Estimator.U_STATISTIC, h);
        assertEquals(mh.mmd2(), mg.mmd2(), 1e-4 * Math.abs(mh.mmd2()) + TOL);
        double eg = EnergyDistance.compute(x, y, Estimator.V_STATISTIC, g).energy();
        double eh = EnergyDistance.compute(x, y, Estimator.V_STATISTIC, h).energy();
        assertEquals(eh, eg, 1e-3 * eh);
        double kg = KernelDistance.mmd2Unbiased(x, y, g);
        double kh = KernelDistance.mmd2Unbiased(x, y, h);
        assertEquals(kh, kg, 1e-5 * 10, "kernel distance: terms ~10, float32 products");
        PrecisionRecall.Result pg = PrecisionRecall.compute(y, x, g);
        PrecisionRecall.Result ph = PrecisionRecall.compute(y, x, h);
        // generated y (700), real x (900); a point within float32 rounding of a ball's edge may move: a few
        // of 700 / 900
        assertEquals(ph.precision(), pg.precision(), 3.0 / 700);
        assertEquals(ph.recall(), pg.recall(), 3.0 / 900);
        assertEquals(ph.density(), pg.density(), 3.0 / (5 * 700));
        assertEquals(ph.coverage(), pg.coverage(), 3.0 / 900);
    }
}
