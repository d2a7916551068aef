package org.diffusion4j.cpu;

import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.diffusion4j.cpu.CpuTestSupport.REDUCTION;
import static org.diffusion4j.cpu.CpuTestSupport.assertClose;
import static org.diffusion4j.cpu.CpuTestSupport.assertCloseScaled;
import static org.diffusion4j.cpu.CpuTestSupport.poisoned;
import static org.diffusion4j.cpu.CpuTestSupport.random;
import static org.diffusion4j.cpu.CpuTestSupport.s;
import static org.diffusion4j.cpu.CpuTestSupport.seedOf;
import static org.diffusion4j.cpu.CpuTestSupport.uniform;
import static org.diffusion4j.cpu.Reference.numel;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link CpuBackend#gemm} (through OpenBLAS) against the float64 {@link Reference}. */
class CpuGemmTest {

    /** Error bound relative to {@code |A||B|}: about {@code sqrt(K)} float roundings. */
    static final double GEMM = 1e-6;

    static CpuBackend cpu;
    static CpuBackend cpu1;
    TensorScope scope;

    @BeforeAll
    static void start() {
        cpu = new CpuBackend(2);
        cpu1 = new CpuBackend(1);
    }

    @AfterAll
    static void stop() {
        cpu.close();
        cpu1.close();
    }

    @BeforeEach
    void open() {
        scope = TensorScope.open();
    }

    @AfterEach
    void close() {
        scope.close();
    }

    /**
     * Every transpose pair, rank 2 and strided-batched with own operands, a shared rank-2 {@code a} or
     * {@code b}; beta 0 (c poisoned with NaN, which must not propagate) and beta 0.5; small products (spread
     * over the pool) and large ones (cut into blocks spread over the pool).
     */
    @Test
    void allLayoutsAndBatchings() {
        // the last two are cut into blocks (CpuBackend.gemmBlock): 200x170 along m, 70x333 along n, ragged last block
        long[][] mkn = {{1, 1, 1}, {17, 65, 33}, {64, 128, 96}, {3, 300, 5}, {129, 7, 255}, {1, 513, 1}, {200, 150, 170},
            {70, 300, 333}};
        for (CpuBackend be : new CpuBackend[] {cpu, cpu1}) {
            for (long[] d : mkn) {
                for (int layout = 0; layout < 4; layout++) {
                    for (int batchCase = 0; batchCase < 4; batchCase++) {
                        for (float beta : new float[] {0f, 0.5f}) {
                            check(be, d[0], d[1], d[2], (layout & 1) != 0, (layout & 2) != 0, batchCase, beta);
                        }
                    }
                }
            }
        }
    }

    /** batchCase 0: rank 2; 1: [3, ., .] each; 2: shared rank-2 b; 3: shared rank-2 a. */
    void check(CpuBackend be, long m, long k, long n, boolean ta, boolean tb, int batchCase, float beta) {
        long batch = batchCase == 0 ? 1 : 3;
        long[] as = ta ? new long[] {k, m} : new long[] {m, k};
        long[] bs = tb ? new long[] {n, k} : new long[] {k, n};
        long[] cs = {m, n};
        boolean batchedA = batchCase == 1 || batchCase == 2;
        boolean batchedB = batchCase == 1 || batchCase == 3;
        if (batchCase > 0) {
            if (batchedA) {
                as = new long[] {batch, as[0], as[1]};
            }
            if (batchedB) {
                bs = new long[] {batch, bs[0], bs[1]};
            }
            cs = new long[] {batch, m, n};
        }
        String shape = s(as) + (ta ? "^T" : "") + " x " + s(bs) + (tb ? "^T" : "") + " beta " + beta + " on "
                + be.threads() + " threads";
        String tc = "gemm " + shape;
        SplittableRandom r = random(tc);
        float[] av = uniform(r, numel(as), -1, 1);
        float[] bv = uniform(r, numel(bs), -1, 1);
        Tensor a = be.fromArray(scope, av, as);
        Tensor b = be.fromArray(scope, bv, bs);
        float[] c0 = null;
        Tensor c;
        if (beta == 0f) {
            c = poisoned(be, scope, cs);
        } else {
            c0 = uniform(r, numel(cs), -1, 1);
            c = be.fromArray(scope, c0, cs);
        }
        float alpha = 1.25f;
        be.gemm(ta, tb, alpha, a, b, beta, c);
        long sa = batchedA ? m * k : 0;
        long sb = batchedB ? k * n : 0;
        double[] ref = Reference.gemm(ta, tb, alpha, av, sa, bv, sb, beta, c0, (int) batch, (int) m, (int) n, (int) k);
        double[] mag = Reference.gemmMagnitude(ta, tb, alpha, av, sa, bv, sb, beta, c0, (int) batch, (int) m,
                (int) n, (int) k);
        float[] got = c.toFloatArray();
        assertCloseScaled("gemm", shape, got, ref, mag, GEMM, seedOf(tc));
        if (m * n >= 64) { // many outputs: cancellation averages out, so the plain relative error is small too
            assertClose("gemm", shape, got, ref, REDUCTION, seedOf(tc));
        }
    }

    /** Blocks of a product depend only on its shape: multiples of 32, at most GEMM_MAX_BLOCKS, whole when small. */
    @Test
    void blocksDependOnlyOnTheShape() {
        org.junit.jupiter.api.Assertions.assertEquals(64, CpuBackend.gemmBlock(200, 200L * 150 * 170));
        org.junit.jupiter.api.Assertions.assertEquals(96, CpuBackend.gemmBlock(333, 70L * 300 * 333));
        org.junit.jupiter.api.Assertions.assertEquals(129, CpuBackend.gemmBlock(129, 129L * 7 * 255), "too few MACs");
        org.junit.jupiter.api.Assertions.assertEquals(40, CpuBackend.gemmBlock(40, 1L << 30), "too narrow to cut");
        for (int dim = 1; dim < 2000; dim += 37) {
            int len = CpuBackend.gemmBlock(dim, 1L << 32);
            assertTrue(len == dim || len % 32 == 0, dim + " -> " + len);
            assertTrue((dim + len - 1) / len <= CpuBackend.GEMM_MAX_BLOCKS, dim + " -> " + len);
        }
    }

    /** A product cut into blocks gives bitwise the same c on 1 and 2 threads, for every layout and batching. */
    @Test
    void blockedProductsAreBitwiseTheSameForAnyThreadCount() {
        for (int layout = 0; layout < 4; layout++) {
            for (int batchCase = 0; batchCase < 4; batchCase++) {
                boolean ta = (layout & 1) != 0;
                boolean tb = (layout & 2) != 0;
                for (long[] d : new long[][] {{200, 150, 170}, {70, 300, 333}}) {
                    long m = d[0];
                    long k = d[1];
                    long n = d[2];
                    long batch = batchCase == 0 ? 1 : 3;
                    long[] as = ta ? new long[] {k, m} : new long[] {m, k};
                    long[] bs = tb ? new long[] {n, k} : new long[] {k, n};
                    if (batchCase == 1 || batchCase == 2) {
                        as = new long[] {batch, as[0], as[1]};
                    }
                    if (batchCase == 1 || batchCase == 3) {
                        bs = new long[] {batch, bs[0], bs[1]};
                    }
                    long[] cs = batchCase == 0 ? new long[] {m, n} : new long[] {batch, m, n};
                    String tc = "gemm threads " + s(as) + " " + s(bs) + " " + layout;
                    SplittableRandom r = random(tc);
                    float[] av = uniform(r, numel(as), -1, 1);
                    float[] bv = uniform(r, numel(bs), -1, 1);
                    float[][] out = new float[2][];
                    int i = 0;
                    for (CpuBackend be : new CpuBackend[] {cpu, cpu1}) {
                        Tensor c = poisoned(be, scope, cs);
                        be.gemm(ta, tb, 0.75f, be.fromArray(scope, av, as), be.fromArray(scope, bv, bs), 0f, c);
                        out[i++] = c.toFloatArray();
                    }
                    assertArrayEquals(out[1], out[0], tc);
                }
            }
        }
    }

    @Test
    void manySmallProductsSpreadOverThePool() {
        for (CpuBackend be : new CpuBackend[] {cpu, cpu1}) {
            for (int batchCase = 1; batchCase < 4; batchCase++) {
                String tc = "gemm many small " + batchCase + " on " + be.threads();
                SplittableRandom r = random(tc);
                int batch = 97;
                int m = 9;
                int k = 17;
                int n = 13;
                boolean batchedA = batchCase != 3;
                boolean batchedB = batchCase != 2;
                long[] as = batchedA ? new long[] {batch, m, k} : new long[] {m, k};
                long[] bs = batchedB ? new long[] {batch, k, n} : new long[] {k, n};
                float[] av = uniform(r, numel(as), -1, 1);
                float[] bv = uniform(r, numel(bs), -1, 1);
                Tensor c = poisoned(be, scope, batch, m, n);
                be.gemm(false, false, 1f, be.fromArray(scope, av, as), be.fromArray(scope, bv, bs), 0f, c);
                double[] ref = Reference.gemm(false, false, 1, av, batchedA ? m * k : 0, bv, batchedB ? k * n : 0, 0,
                        null, batch, m, n, k);
                assertClose(tc, s(as) + " x " + s(bs), c.toFloatArray(), ref, REDUCTION, seedOf(tc));
            }
        }
    }

    @Test
    void emptyDimsAndZeroAlpha() {
        // K = 0: c = beta * c
        Tensor a0 = cpu.zeros(scope, DType.F32, 4, 0);
        Tensor b0 = cpu.zeros(scope, DType.F32, 0, 6);
        Tensor c0 = cpu.empty(scope, DType.F32, 4, 6);
        cpu.fill(c0, 2f);
        cpu.gemm(false, false, 1, a0, b0, 0.5f, c0);
        float[] ones = new float[24];
        Arrays.fill(ones, 1f);
        assertArrayEquals(ones, c0.toFloatArray());
        Tensor cNaN = poisoned(cpu, scope, 4, 6);
        cpu.gemm(false, false, 1, a0, b0, 0f, cNaN); // beta 0: zeros, NaN does not propagate
        assertArrayEquals(new float[24], cNaN.toFloatArray());
        // alpha = 0: a and b are not used
        Tensor a = cpu.empty(scope, DType.F32, 4, 3);
        cpu.fill(a, Float.NaN);
        Tensor b = cpu.zeros(scope, DType.F32, 3, 6);
        Tensor c = cpu.empty(scope, DType.F32, 4, 6);
        cpu.fill(c, 4f);
        cpu.gemm(false, false, 0f, a, b, 0.25f, c);
        assertArrayEquals(ones, c.toFloatArray());
        // M = 0, N = 0, B = 0: nothing to do
        cpu.gemm(false, false, 1, cpu.zeros(scope, DType.F32, 0, 3), b, 0f, cpu.empty(scope, DType.F32, 0, 6));
        cpu.gemm(false, false, 1, a, cpu.zeros(scope, DType.F32, 3, 0), 0f, cpu.empty(scope, DType.F32, 4, 0));
        cpu.gemm(false, false, 1, cpu.zeros(scope, DType.F32, 0, 4, 3), b, 0f, cpu.empty(scope, DType.F32, 0, 4, 6));
    }

    @Test
    void gemmBatchedList() {
        String tc = "gemmBatched";
        SplittableRandom r = random(tc);
        List<Tensor> as = new ArrayList<>();
        List<Tensor> bs = new ArrayList<>();
        List<Tensor> cs = new ArrayList<>();
        List<float[]> av = new ArrayList<>();
        List<float[]> bv = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            av.add(uniform(r, 31 * 9, -1, 1));
            bv.add(uniform(r, 31 * 13, -1, 1));
            as.add(cpu.fromArray(scope, av.get(i), 31, 9));
            bs.add(cpu.fromArray(scope, bv.get(i), 13, 31));
            cs.add(poisoned(cpu, scope, 9, 13));
        }
        cpu.gemmBatched(true, true, 1f, as, bs, 0f, cs);
        for (int i = 0; i < 4; i++) {
            assertClose(tc, "4 x [31, 9]^T x [13, 31]^T", cs.get(i).toFloatArray(),
                    Reference.gemm(true, true, 1, av.get(i), 0, bv.get(i), 0, 0, null, 1, 9, 13, 31), REDUCTION,
                    seedOf(tc));
        }
    }

    @Test
    void shapeRankAndAliasingErrorsNameTheShapes() {
        Tensor a = cpu.zeros(scope, DType.F32, 4, 5);
        Tensor b = cpu.zeros(scope, DType.F32, 5, 6);
        Tensor c = cpu.zeros(scope, DType.F32, 4, 6);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> cpu.gemm(true, false, 1, a, b, 0, c));
        assertTrue(e.getMessage().contains("[4, 5]") && e.getMessage().contains("[5, 6]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> cpu.gemm(false, false, 1, a, b, 0, cpu.zeros(scope, DType.F32, 4, 7)));
        assertTrue(e.getMessage().contains("[4, 7]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> cpu.gemm(false, false, 1, a, b, 0, cpu.zeros(scope, DType.F32, 2, 2, 4, 6)));
        assertTrue(e.getMessage().contains("rank"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> cpu.gemm(false, false, 1, cpu.zeros(scope, DType.F32, 2, 4, 5), b, 0, c));
        assertTrue(e.getMessage().contains("[2, 4, 5]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> cpu.gemm(false, false, 1,
                cpu.zeros(scope, DType.F32, 2, 4, 5), b, 0, cpu.zeros(scope, DType.F32, 3, 4, 6)));
        assertTrue(e.getMessage().contains("batch 2"), e.getMessage());
        Tensor sq = cpu.zeros(scope, DType.F32, 4, 4);
        e = assertThrows(IllegalArgumentException.class, () -> cpu.gemm(false, false, 1, sq, sq, 0, sq));
        assertTrue(e.getMessage().contains("overlaps"), e.getMessage());
        Tensor big = cpu.zeros(scope, DType.F32, 8, 4);
        e = assertThrows(IllegalArgumentException.class,
                () -> cpu.gemm(false, false, 1, big.slice(0, 0, 4), sq, 0, big.slice(0, 2, 6)));
        assertTrue(e.getMessage().contains("overlaps"), e.getMessage());
        // c = rows 4..7 of big and a = rows 0..3: disjoint views of one allocation, allowed
        cpu.gemm(false, false, 1, big.slice(0, 0, 4), sq, 0, big.slice(0, 4, 8));
        e = assertThrows(IllegalArgumentException.class,
                () -> cpu.gemm(false, false, 1, a.transpose(0, 1), cpu.zeros(scope, DType.F32, 4, 6),
                        0, cpu.zeros(scope, DType.F32, 5, 6)));
        assertTrue(e.getMessage().contains("contiguous"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> cpu.gemm(false, false, 1,
                cpu.zeros(scope, DType.BF16, 4, 5), b, 0, c));
        assertTrue(e.getMessage().contains("BF16"), e.getMessage());
    }
}
