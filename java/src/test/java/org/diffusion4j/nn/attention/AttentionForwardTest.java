package org.diffusion4j.nn.attention;

import org.diffusion4j.cpu.CpuAttention;
import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.attention.AttentionOracle.Dims;
import org.diffusion4j.nn.attention.AttentionOracle.Forward;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.diffusion4j.nn.attention.AttentionOracle.poisoned;
import static org.diffusion4j.nn.attention.AttentionOracle.relErr;
import static org.diffusion4j.nn.attention.AttentionOracle.scaledErr;
import static org.diffusion4j.nn.attention.AttentionOracle.seedOf;
import static org.diffusion4j.nn.attention.AttentionOracle.widen;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The forward pass of the fused {@link CpuAttention} and of the naive {@link ComposedAttention} against the
 * float64 oracle ({@link AttentionOracle#forward}) on fresh random inputs: head dims 32, 64, 128 (and odd ones),
 * sequence lengths 1, 7, 49, 100, 257 (below, at and across the 64-query / 128-key tile edges), odd batch and head
 * counts, self- and cross-attention, large logits; outputs poisoned with NaN first, the log-sum-exp checked too.
 */
class AttentionForwardTest {

    /** ‖out − ref‖/‖ref‖ bound for fp32 attention (measured ~4e-7 on N(0, 1) inputs). */
    static final double TOL = 1e-5;

    private static CpuBackend backend;
    private static CpuAttention fused;
    private static ComposedAttention composed;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
        fused = new CpuAttention(backend, 2);
        composed = new ComposedAttention(backend);
    }

    @AfterAll
    static void tearDown() {
        fused.close();
        backend.close();
    }

    @Test
    void matchesFloat64OracleForHeadDimsAndSequenceLengths() {
        int[] headDims = {32, 64, 128};
        int[] lengths = {1, 7, 49, 100, 257};
        int[][] batchHeads = {{1, 3}, {3, 1}, {1, 1}};
        int c = 0;
        for (int dh : headDims) {
            for (int t : lengths) {
                int[] bh = batchHeads[c++ % batchHeads.length];
                check(new Dims(bh[0], bh[1], t, t, dh), 1.0, TOL);
            }
        }
    }

    @Test
    void oddHeadDimsAndCrossAttention() {
        check(new Dims(1, 1, 5, 3, 1), 1.0, TOL);
        check(new Dims(3, 5, 2, 11, 3), 1.0, TOL);
        check(new Dims(1, 3, 65, 129, 17), 1.0, TOL);
        check(new Dims(1, 1, 130, 1, 40), 1.0, TOL);
        check(new Dims(1, 1, 1, 300, 256), 1.0, TOL);
        check(new Dims(5, 1, 9, 7, 96), 1.0, TOL);
    }

    /**
     * Logits spread over hundreds of units (scale·s ~ N(0, 16²)): the online softmax must neither overflow nor lose
     * the dominant terms. fp32 scores carry an absolute error of about |s|·6e-8, hence the looser bound.
     */
    @Test
    void largeLogitsStayAccurate() {
        check(new Dims(1, 3, 200, 200, 64), 16.0, 3e-5);
        check(new Dims(1, 1, 7, 300, 32), 40.0, 3e-5);
    }

    @Test
    void emptyBatchAndNoQueriesAreNoOps() {
        try (TensorScope s = TensorScope.open()) {
            for (AttentionOps ops : new AttentionOps[] {fused, composed}) {
                Tensor q = backend.zeros(s, DType.F32, 2, 3, 0, 8);
                Tensor k = backend.zeros(s, DType.F32, 2, 3, 5, 8);
                Tensor out = backend.zeros(s, DType.F32, 2, 3, 0, 8);
                Tensor lse = backend.zeros(s, DType.F32, 2, 3, 0);
                ops.forward(q, k, k, 0.5f, out, lse);
                Tensor q0 = backend.zeros(s, DType.F32, 0, 3, 4, 8);
                Tensor k0 = backend.zeros(s, DType.F32, 0, 3, 5, 8);
                ops.forward(q0, k0, k0, 0.5f, backend.zeros(s, DType.F32, 0, 3, 4, 8), null);
            }
        }
    }

    /** Without an lse output the fused forward computes the same {@code out}, bit for bit. */
    @Test
    void lseIsOptional() {
        Dims d = new Dims(2, 3, 70, 70, 32);
        SplittableRandom r = AttentionOracle.random("lseIsOptional");
        try (TensorScope s = TensorScope.open()) {
            Tensor q = backend.fromArray(s, AttentionOracle.normal(r, d.qSize(), 1), 2, 3, 70, 32);
            Tensor k = backend.fromArray(s, AttentionOracle.normal(r, d.kSize(), 1), 2, 3, 70, 32);
            Tensor v = backend.fromArray(s, AttentionOracle.normal(r, d.kSize(), 1), 2, 3, 70, 32);
            Tensor o1 = poisoned(backend, s, 2, 3, 70, 32);
            Tensor o2 = poisoned(backend, s, 2, 3, 70, 32);
            fused.forward(q, k, v, o1, poisoned(backend, s, 2, 3, 70));
            fused.forward(q, k, v, o2, null);
            assertArrayEquals(o1.toFloatArray(), o2.toFloatArray(), seedOf("lseIsOptional"));
        }
    }

    /** Checks both implementations against the oracle for {@code d}, inputs ~ N(0, 1), q scaled by {@code qScale}. */
    private static void check(Dims d, double qScale, double tol) {
        String name = "forward " + d + " qScale=" + qScale;
        SplittableRandom r = AttentionOracle.random(name);
        float[] qa = AttentionOracle.normal(r, d.qSize(), qScale);
        float[] ka = AttentionOracle.normal(r, d.kSize(), 1);
        float[] va = AttentionOracle.normal(r, d.kSize(), 1);
        float scale = AttentionOps.defaultScale(d.dh());
        Forward ref = AttentionOracle.forward(d, widen(qa), widen(ka), widen(va), scale);
        double[] absV = widen(va);
        for (int i = 0; i < absV.length; i++) {
            absV[i] = Math.abs(absV[i]);
        }
        Forward absRef = AttentionOracle.forward(d, widen(qa), widen(ka), absV, scale);   // P|v|
        try (TensorScope s = TensorScope.open()) {
            Tensor q = backend.fromArray(s, qa, d.b(), d.h(), d.tq(), d.dh());
            Tensor k = backend.fromArray(s, ka, d.b(), d.h(), d.tk(), d.dh());
            Tensor v = backend.fromArray(s, va, d.b(), d.h(), d.tk(), d.dh());
            for (AttentionOps ops : new AttentionOps[] {fused, composed}) {
                Tensor out = poisoned(backend, s, d.b(), d.h(), d.tq(), d.dh());
                Tensor lse = poisoned(backend, s, d.b(), d.h(), d.tq());
                ops.forward(q, k, v, scale, out, lse);
                // out is a convex combination of the rows of v, so it is judged against P|v| (it may cancel);
                // lse against max(1, |lse|) (a single key's score q·k may be near 0)
                double eo = scaledErr(out.toFloatArray(), ref.out(), absRef.out());
                double[] lseScale = new double[ref.lse().length];
                for (int i = 0; i < lseScale.length; i++) {
                    lseScale[i] = Math.max(1, Math.abs(ref.lse()[i]));
                }
                double el = scaledErr(lse.toFloatArray(), ref.lse(), lseScale);
                String where = ops + " " + name + ", " + seedOf(name);
                assertTrue(eo < tol, "out rel error " + eo + " >= " + tol + " for " + where);
                assertTrue(el < tol, "lse rel error " + el + " >= " + tol + " for " + where);
                float[] lv = lse.toFloatArray();
                for (int i = 0; i < lv.length; i++) {
                    double bound = tol * Math.max(1, Math.abs(ref.lse()[i]));
                    if (!(Math.abs(lv[i] - ref.lse()[i]) <= bound)) {
                        fail("lse[" + i + "] = " + lv[i] + ", oracle " + ref.lse()[i] + " for " + where);
                    }
                }
            }
        }
    }

    /** A single key: every query returns that key's value and {@code lse = scale·q·k}. */
    @Test
    void singleKeyReturnsItsValue() {
        try (TensorScope s = TensorScope.open()) {
            float[] qa = {1, 2, 3, -1, 0.5f, 4};
            Tensor q = backend.fromArray(s, qa, 1, 1, 2, 3);
            Tensor k = backend.fromArray(s, new float[] {0.25f, -1, 2}, 1, 1, 1, 3);
            Tensor v = backend.fromArray(s, new float[] {7, -8, 9}, 1, 1, 1, 3);
            Tensor out = poisoned(backend, s, 1, 1, 2, 3);
            Tensor lse = poisoned(backend, s, 1, 1, 2);
            fused.forward(q, k, v, 0.5f, out, lse);
            assertArrayEquals(new float[] {7, -8, 9, 7, -8, 9}, out.toFloatArray(), 1e-5f);
            float[] l = lse.toFloatArray();
            assertEquals(0.5 * (0.25 - 2 + 6), l[0], 1e-6);
            assertEquals(0.5 * (-0.25 - 0.5 + 8), l[1], 1e-6);
        }
    }
}
