package org.diffusion4j.nn.attention;

import org.diffusion4j.cpu.CpuAttention;
import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.diffusion4j.nn.attention.AttentionOracle.poisoned;
import static org.diffusion4j.nn.attention.AttentionOracle.seedOf;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link CpuAttention} gives bitwise the same {@code out}, {@code lse}, {@code dq}, {@code dk}, {@code dv} for 1, 2
 * and 3 threads (on shapes large enough to run on the pool, with partial tiles), and for a (batch, head) computed
 * alone or inside a larger batch.
 */
class AttentionDeterminismTest {

    private static final int B = 3;
    private static final int H = 2;
    private static final int T = 300;
    private static final int DH = 64;

    @Test
    void bitwiseTheSameForAnyThreadCount() {
        String name = "threads";
        SplittableRandom r = AttentionOracle.random(name);
        int n = B * H * T * DH;
        float[] qa = AttentionOracle.normal(r, n, 1);
        float[] ka = AttentionOracle.normal(r, n, 1);
        float[] va = AttentionOracle.normal(r, n, 1);
        float[] doa = AttentionOracle.normal(r, n, 1);
        float[][] first = null;
        try (CpuBackend backend = new CpuBackend(2); TensorScope s = TensorScope.open()) {
            Tensor q = backend.fromArray(s, qa, B, H, T, DH);
            Tensor k = backend.fromArray(s, ka, B, H, T, DH);
            Tensor v = backend.fromArray(s, va, B, H, T, DH);
            Tensor dOut = backend.fromArray(s, doa, B, H, T, DH);
            for (int threads : new int[] {1, 2, 3}) {
                try (CpuAttention ops = new CpuAttention(backend, threads)) {
                    float[][] got = run(ops, s, q, k, v, dOut, B);
                    if (first == null) {
                        first = got;
                        assertTrue(Float.isFinite(got[0][0]), "sanity: finite outputs");
                    } else {
                        String[] names = {"out", "lse", "dq", "dk", "dv"};
                        for (int i = 0; i < got.length; i++) {
                            assertArrayEquals(first[i], got[i], names[i] + " with " + threads
                                    + " threads differs from 1 thread, " + seedOf(name));
                        }
                    }
                }
            }
        }
    }

    @Test
    void bitwiseTheSameAloneOrInABatch() {
        String name = "batch";
        SplittableRandom r = AttentionOracle.random(name);
        int n = B * H * T * DH;
        float[] qa = AttentionOracle.normal(r, n, 1);
        float[] ka = AttentionOracle.normal(r, n, 1);
        float[] va = AttentionOracle.normal(r, n, 1);
        float[] doa = AttentionOracle.normal(r, n, 1);
        try (CpuBackend backend = new CpuBackend(2); TensorScope s = TensorScope.open();
             CpuAttention ops = new CpuAttention(backend, 2)) {
            float[][] all = run(ops, s, backend.fromArray(s, qa, B, H, T, DH), backend.fromArray(s, ka, B, H, T, DH),
                    backend.fromArray(s, va, B, H, T, DH), backend.fromArray(s, doa, B, H, T, DH), B);
            int per = H * T * DH;
            int b = 1;
            float[][] one = run(ops, s, backend.fromArray(s, slice(qa, b * per, per), 1, H, T, DH),
                    backend.fromArray(s, slice(ka, b * per, per), 1, H, T, DH),
                    backend.fromArray(s, slice(va, b * per, per), 1, H, T, DH),
                    backend.fromArray(s, slice(doa, b * per, per), 1, H, T, DH), 1);
            String[] names = {"out", "lse", "dq", "dk", "dv"};
            for (int i = 0; i < names.length; i++) {
                int len = one[i].length;
                assertArrayEquals(slice(all[i], b * len, len), one[i], names[i] + " of sample 1 alone differs, "
                        + seedOf(name));
            }
        }
    }

    private static float[][] run(CpuAttention ops, TensorScope s, Tensor q, Tensor k, Tensor v, Tensor dOut, int b) {
        var be = ops.backend();
        Tensor out = poisoned(be, s, b, H, T, DH);
        Tensor lse = poisoned(be, s, b, H, T);
        float scale = AttentionOps.defaultScale(DH);
        ops.forward(q, k, v, scale, out, lse);
        Tensor dq = poisoned(be, s, b, H, T, DH);
        Tensor dk = poisoned(be, s, b, H, T, DH);
        Tensor dv = poisoned(be, s, b, H, T, DH);
        ops.backward(q, k, v, out, lse, dOut, scale, dq, dk, dv);
        return new float[][] {out.toFloatArray(), lse.toFloatArray(), dq.toFloatArray(), dk.toFloatArray(),
            dv.toFloatArray()};
    }

    private static float[] slice(float[] a, int from, int len) {
        return java.util.Arrays.copyOfRange(a, from, from + len);
    }
}
