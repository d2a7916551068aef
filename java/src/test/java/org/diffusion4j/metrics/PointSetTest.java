package org.diffusion4j.metrics;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Point sets: copies, shapes, tensor input, and every bad input rejected with a message naming the value. */
class PointSetTest {

    private static Backend backend;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void tearDown() {
        backend.close();
    }

    private static void assertRejects(String expectedFragment, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(expectedFragment), () -> "message '" + e.getMessage()
                + "' should contain '" + expectedFragment + "'");
    }

    @Test
    void rowsAreCopiedAndReadBack() {
        float[][] rows = {{1, 2, 3}, {4, 5, 6}};
        PointSet p = PointSet.of("x", rows);
        rows[0][0] = 99;                                        // the set keeps its own copy
        assertEquals(2, p.size());
        assertEquals(3, p.dim());
        assertEquals(1f, p.get(0, 0));
        assertArrayEquals(new float[] {4, 5, 6}, p.row(1));
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, p.toArray());
        assertEquals("x [2, 3]", p.toString());
        assertEquals("y", p.named("y").name());
        float[] flat = {1, 2, 3, 4};
        PointSet q = PointSet.of("f", flat, 2, 2);
        flat[3] = 0;
        assertEquals(4f, q.get(1, 1));
    }

    @Test
    void tensorsOfAnyRankFlattenTrailingDims() {
        try (TensorScope scope = TensorScope.open()) {
            float[] v = new float[3 * 2 * 2 * 5];
            for (int i = 0; i < v.length; i++) {
                v[i] = i * 0.5f - 7;
            }
            Tensor images = backend.fromArray(scope, v, 3, 2, 2, 5);  // [N, C, H, W]
            PointSet p = PointSet.of("images", images);
            assertEquals(3, p.size());
            assertEquals(20, p.dim());
            assertArrayEquals(v, p.toArray());
            // a transposed (non-contiguous) view is read in row-major order of the view
            Tensor m = backend.fromArray(scope, new float[] {1, 2, 3, 4, 5, 6}, 2, 3).transpose(0, 1);  // [3, 2]
            assertArrayEquals(new float[] {1, 4, 2, 5, 3, 6}, PointSet.of("t", m).toArray());

            assertRejects("rank", () -> PointSet.of("v", backend.fromArray(scope, new float[] {1, 2}, 2)));
            assertRejects("empty", () -> PointSet.of("e", backend.empty(scope, DType.F32, 0, 4)));
            assertRejects("must be F32", () -> PointSet.of("b", backend.zeros(scope, DType.BF16, 2, 2)));
            Tensor bad = backend.fromArray(scope, new float[] {0, 1, 2, 3, Float.NaN, 5}, 3, 2);
            assertRejects("bad[2][0] is NaN", () -> PointSet.of("bad", bad));
        }
    }

    @Test
    void badArraysAreRejectedNamingTheValue() {
        assertRejects("x is empty", () -> PointSet.of("x", new float[0][]));
        assertRejects("x[0] has 0 columns", () -> PointSet.of("x", new float[][] {{}}));
        assertRejects("x[1] is null", () -> PointSet.of("x", new float[][] {{1}, null}));
        assertRejects("x[2] has 3 columns but x[0] has 2",
                () -> PointSet.of("x", new float[][] {{1, 2}, {3, 4}, {5, 6, 7}}));
        assertRejects("gen[1][2] is NaN", () -> PointSet.of("gen", new float[][] {{1, 2, 3}, {4, 5, Float.NaN}}));
        assertRejects("gen[0][1] is Infinity",
                () -> PointSet.of("gen", new float[][] {{1, Float.POSITIVE_INFINITY}}));
        assertRejects("has shape [0, 3]", () -> PointSet.of("f", new float[0], 0, 3));
        assertRejects("has 5 values but shape [2, 3] needs 6", () -> PointSet.of("f", new float[5], 2, 3));
        assertRejects("f[1][0] is -Infinity",
                () -> PointSet.of("f", new float[] {0, 0, Float.NEGATIVE_INFINITY, 0}, 2, 2));
    }

    @Test
    void everyMetricRejectsMismatchedDims() {
        PointSet a = PointSet.of("generated", new float[12], 4, 3);
        PointSet b = PointSet.of("reference", new float[16], 4, 4);
        String msg = "generated has D = 3 but reference has D = 4";
        assertRejects(msg, () -> SlicedWasserstein.compute(a, b, SlicedWasserstein.Options.defaults()));
        assertRejects(msg, () -> Mmd.compute(a, b, 1.0, Estimator.V_STATISTIC, Pairwise.host()));
        assertRejects(msg, () -> Mmd.medianHeuristic(a, b, 100, 0));
        assertRejects(msg, () -> EnergyDistance.compute(a, b, Estimator.V_STATISTIC, Pairwise.on(backend)));
        assertRejects(msg, () -> FrechetDistance.compute(a, b));
        assertRejects(msg, () -> NearestNeighbourRatio.compute(a, b, b, Pairwise.host()));
        assertRejects(msg, () -> Pairwise.on(backend).nearestDistances(a, b));
    }

    /** pick: the documented Philox permutation's first entries, the set itself for all, bad counts named. */
    @Test
    void pickTakesThePermutationsFirstPoints() {
        PointSet p = PointSet.of("p", new float[] {0, 0, 1, 1, 2, 2, 3, 3, 4, 4}, 5, 2);
        int[] perm = org.diffusion4j.io.PhiloxShuffle.permutation(5, 3, 9);
        PointSet q = p.pick(3, 3, 9);
        assertEquals(3, q.size());
        for (int i = 0; i < 3; i++) {
            assertEquals(perm[i], q.get(i, 1), 0f);
        }
        assertSame(p, p.pick(5, 3, 9));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> p.pick(6, 0, 0));
        assertTrue(e.getMessage().contains("cannot pick 6 of the 5 points of p"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> p.pick(0, 0, 0), "no empty point sets");
    }
}
