package org.diffusion4j.nn;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.diffusion4j.tensor.Workspace;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A DiT training step (forward, MSE gradient, backward) in a scope on a {@link Workspace} whose slab is full of NaN
 * gives bitwise the same output and parameter gradients as in a fresh, zero-filled scope: no op relies on
 * {@code Backend.empty} returning zeros.
 */
class DiTWorkspaceTest {

    @Test
    void stepOnAPoisonedWorkspaceEqualsAFreshScope() {
        DiT.Config c = new DiT.Config(8, 3, 2, 16, 2, 2, 2.0, 5, 0.0, 16, 1000.0);
        int batch = 3;
        try (CpuBackend be = new CpuBackend(2); NnOps ops = NnOps.forBackend(be);
             AttentionOps att = AttentionOps.forBackend(be); TensorScope model = TensorScope.open();
             Workspace ws = Workspace.create()) {
            DiT m = new DiT(ops, att, model, c, 7);
            long stream = 1;
            for (Parameter p : m.parameters()) {
                Init.normal(p.value(), 0.3, 5, stream++);   // non-zero everywhere (adaLN-Zero would hide paths)
            }
            SplittableRandom r = new SplittableRandom(42);
            int n = batch * c.channels() * c.imageSize() * c.imageSize();
            float[] x = new float[n];
            float[] target = new float[n];
            for (int i = 0; i < n; i++) {
                x[i] = (float) r.nextDouble(-2, 2);
                target[i] = (float) r.nextDouble(-1, 1);
            }
            double[] t = {0.1, 0.5, 0.93};
            int[] y = {1, 5, 0};
            List<float[]> fresh;
            try (TensorScope s = TensorScope.open()) {
                fresh = step(be, m, s, x, target, t, y, c, batch);
            }
            for (int round = 0; round < 3; round++) {
                // poison: fill the whole slab with NaN through one big tensor
                try (TensorScope s = TensorScope.open(ws)) {
                    long floats = Math.max(1, ws.capacity() / 4 - 64);
                    be.fill(be.empty(s, DType.F32, floats), Float.NaN);
                    step(be, m, s, x, target, t, y, c, batch);      // sizes the slab in round 0
                }
                try (TensorScope s = TensorScope.open(ws)) {
                    be.fill(be.empty(s, DType.F32, Math.max(1, ws.capacity() / 4 - 64)), Float.NaN);
                }
                List<float[]> reused;
                try (TensorScope s = TensorScope.open(ws)) {
                    reused = step(be, m, s, x, target, t, y, c, batch);
                }
                assertTrue(ws.capacity() > 0);
                for (int i = 0; i < fresh.size(); i++) {
                    assertArrayEquals(fresh.get(i), reused.get(i), "round " + round + " result " + i);
                }
            }
        }
    }

    private static List<float[]> step(CpuBackend be, DiT m, TensorScope s, float[] x, float[] target, double[] t,
                                      int[] y, DiT.Config c, int batch) {
        Tensor xt = be.fromArray(s, x, batch, c.channels(), c.imageSize(), c.imageSize());
        DiT.Cache cache = m.forward(s, xt, t, y);
        float[] out = cache.out().toFloatArray();
        float[] d = new float[out.length];
        for (int i = 0; i < out.length; i++) {
            d[i] = (float) (2.0 * (out[i] - target[i]) / out.length);
        }
        m.zeroGrad();
        m.backward(s, cache, be.fromArray(s, d, cache.out().shape()));
        List<float[]> res = new ArrayList<>();
        res.add(out);
        for (Map.Entry<String, Parameter> e : m.namedParameters().entrySet()) {
            float[] g = e.getValue().grad().toFloatArray();
            assertTrue(Arrays.stream(box(g)).allMatch(Float::isFinite), e.getKey());
            res.add(g);
        }
        return res;
    }

    private static Float[] box(float[] v) {
        Float[] b = new Float[v.length];
        for (int i = 0; i < v.length; i++) {
            b[i] = v[i];
        }
        return b;
    }
}
