package org.diffusion4j.nn;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.cpu.CpuNnOps;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.diffusion4j.nn.NnTestSupport.assertBitwise;
import static org.diffusion4j.nn.NnTestSupport.assertClose;
import static org.diffusion4j.nn.NnTestSupport.assertCloseScaled;
import static org.diffusion4j.nn.NnTestSupport.doubles;
import static org.diffusion4j.nn.NnTestSupport.numel;
import static org.diffusion4j.nn.NnTestSupport.random;
import static org.diffusion4j.nn.NnTestSupport.seedOf;
import static org.diffusion4j.nn.NnTestSupport.uniform;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Every {@link NnOps} op on shapes large enough to use the thread pool: {@link CpuNnOps} gives bitwise the same
 * results on 1, 2, 3 and 5 threads, and {@link ComposedNnOps} (the CUDA path until kernels exist) agrees with it.
 */
class NnOpsConsistencyTest {

    /** Suffix of the entries of {@link #runAll} that hold a sum's magnitude, not an op's output. */
    static final String MAGNITUDE = " |magnitude|";

    static final int[] THREADS = {1, 2, 3, 5};
    static CpuBackend be;

    @BeforeAll
    static void start() {
        be = new CpuBackend(1);
    }

    @AfterAll
    static void stop() {
        be.close();
    }

    static Tensor in(TensorScope scope, SplittableRandom r, double lo, double hi, long... shape) {
        return be.fromArray(scope, uniform(r, numel(shape), lo, hi), shape);
    }

    /** Runs every op with inputs from a fixed seed; returns each output by name. */
    static Map<String, float[]> runAll(NnOps ops) {
        Map<String, float[]> out = new LinkedHashMap<>();
        SplittableRandom r = random("consistency");
        try (TensorScope scope = TensorScope.open()) {
            long[] sh = {129, 517};
            Tensor x = in(scope, r, -6, 6, sh);
            Tensor bias = in(scope, r, -1, 1, 517);
            Tensor dy = in(scope, r, -1, 1, sh);
            for (Activation act : Activation.values()) {
                Tensor pre = be.empty(scope, DType.F32, sh);
                Tensor y = be.empty(scope, DType.F32, sh);
                Tensor dx = be.empty(scope, DType.F32, sh);
                ops.activation(act, x, bias, pre, y);
                ops.activationBackward(act, pre, dy, dx);
                out.put(act + " forward", y.toFloatArray());
                out.put(act + " backward", dx.toFloatArray());
            }
            for (long[] cs : new long[][] {{1031, 67}, {40_000, 3}, {3, 40_000}, {2, 3, 5}}) {
                Tensor g = in(scope, r, -1, 1, cs);
                Tensor acc = in(scope, r, -1, 1, cs[cs.length - 1]);
                float[] magnitude = acc.toFloatArray();                   // Σ_r |g[r, n]| + |acc[n]|
                float[] gv = g.toFloatArray();
                for (int i = 0; i < magnitude.length; i++) {
                    magnitude[i] = Math.abs(magnitude[i]);
                }
                for (int i = 0; i < gv.length; i++) {
                    magnitude[i % magnitude.length] += Math.abs(gv[i]);
                }
                ops.columnSum(g, acc, true);
                out.put("columnSum " + java.util.Arrays.toString(cs), acc.toFloatArray());
                out.put("columnSum " + java.util.Arrays.toString(cs) + MAGNITUDE, magnitude);
            }

            int b = 3;
            int t = 113;
            int d = 197;
            Tensor lx = in(scope, r, -2, 3, b, t, d);
            Tensor gamma = in(scope, r, 0.5, 1.5, d);
            Tensor beta = in(scope, r, -0.5, 0.5, d);
            Tensor mod = in(scope, r, -1, 1, b, 6L * d);
            Tensor shift = mod.slice(1, 0, d);
            Tensor scale = mod.slice(1, d, 2L * d);
            Tensor gate = mod.slice(1, 2L * d, 3L * d);
            Tensor ldy = in(scope, r, -1, 1, b, t, d);
            for (boolean modulated : new boolean[] {false, true}) {
                String tag = modulated ? "modulated " : "plain ";
                Tensor y = be.empty(scope, DType.F32, b, t, d);
                Tensor mean = be.empty(scope, DType.F32, (long) b * t);
                Tensor rstd = be.empty(scope, DType.F32, (long) b * t);
                ops.layerNorm(lx, gamma, beta, modulated ? shift : null, modulated ? scale : null, 1e-6f, y, mean,
                        rstd);
                out.put(tag + "layerNorm", y.toFloatArray());
                out.put(tag + "mean", mean.toFloatArray());
                out.put(tag + "rstd", rstd.toFloatArray());
                Tensor dx = be.empty(scope, DType.F32, b, t, d);
                Tensor dGamma = be.zeros(scope, DType.F32, d);
                Tensor dBeta = be.zeros(scope, DType.F32, d);
                Tensor dMod = be.zeros(scope, DType.F32, b, 6L * d);
                ops.layerNormBackward(lx, gamma, beta, modulated ? scale : null, mean, rstd, ldy, dx, dGamma, dBeta,
                        modulated ? dMod.slice(1, 0, d) : null, modulated ? dMod.slice(1, d, 2L * d) : null);
                out.put(tag + "layerNorm dx", dx.toFloatArray());
                out.put(tag + "layerNorm dGamma", dGamma.toFloatArray());
                out.put(tag + "layerNorm dBeta", dBeta.toFloatArray());
                out.put(tag + "layerNorm dShift,dScale", dMod.toFloatArray());
            }
            Tensor f = in(scope, r, -1, 1, b, t, d);
            Tensor res = be.empty(scope, DType.F32, b, t, d);
            ops.gatedResidual(lx, gate, f, res);
            out.put("gatedResidual", res.toFloatArray());
            Tensor df = be.empty(scope, DType.F32, b, t, d);
            Tensor dGate = be.empty(scope, DType.F32, b, d);
            ops.gatedResidualBackward(gate, f, ldy, df, dGate);
            out.put("gatedResidual df", df.toFloatArray());
            out.put("gatedResidual dGate", dGate.toFloatArray());

            int n = 97;
            int v = 11;
            int ed = 2051;
            int[] idx = new int[n];
            for (int i = 0; i < n; i++) {
                idx[i] = r.nextInt(v);
            }
            Tensor it = be.empty(scope, DType.I32, n);
            it.copyFrom(MemorySegment.ofArray(idx));
            Tensor table = in(scope, r, -1, 1, v, ed);
            ops.embeddingBackward(it, in(scope, r, -1, 1, n, ed), table);
            out.put("embeddingBackward", table.toFloatArray());

            long pn = 70_001;
            Tensor p = in(scope, r, -1, 1, pn);
            Tensor m = in(scope, r, -0.1, 0.1, pn);
            Tensor vv = in(scope, r, 0, 0.01, pn);
            Tensor grad = in(scope, r, -1, 1, pn);
            ops.adamw(AdamWStep.of(1e-3, 0.9, 0.999, 1e-8, 0.01, 7, 0.5), p, grad, m, vv);
            out.put("adamw p", p.toFloatArray());
            out.put("adamw m", m.toFloatArray());
            out.put("adamw v", vv.toFloatArray());
        }
        return out;
    }

    @Test
    void cpuOpsAreBitwiseTheSameForAnyThreadCount() {
        Map<String, float[]> first = null;
        for (int threads : THREADS) {
            try (CpuNnOps ops = new CpuNnOps(be, threads)) {
                Map<String, float[]> got = runAll(ops);
                if (first == null) {
                    first = got;
                    continue;
                }
                assertEquals(first.keySet(), got.keySet());
                for (String k : first.keySet()) {
                    assertBitwise(k + " on " + threads + " vs 1 thread", first.get(k), got.get(k),
                            seedOf("consistency"));
                }
            }
        }
    }

    @Test
    void composedOpsAgreeWithTheFusedOps() {
        Map<String, float[]> fused;
        try (CpuNnOps ops = new CpuNnOps(be, 2)) {
            fused = runAll(ops);
        }
        Map<String, float[]> composed = runAll(new ComposedNnOps(be));
        for (String k : fused.keySet()) {
            if (k.endsWith(MAGNITUDE)) {
                continue;
            }
            // LayerNorm gradients and column sums are float64 sums in the fused ops but float GEMM sums composed;
            // a long column sum is judged against the sum of its terms' magnitudes (it may cancel)
            float[] mag = fused.get(k + MAGNITUDE);
            if (mag != null) {
                assertCloseScaled(k + ": composed vs fused", composed.get(k), doubles(fused.get(k)), doubles(mag),
                        1e-6, seedOf("consistency"));
            } else {
                assertClose(k + ": composed vs fused", composed.get(k), doubles(fused.get(k)), 1e-5,
                        seedOf("consistency"));
            }
        }
    }

    /** A column-sum output inside its input (a row of it, or shifted by one) is refused by every implementation. */
    @Test
    void columnSumRefusesAnOutputInsideItsInput() {
        try (TensorScope scope = TensorScope.open(); CpuNnOps cpu = new CpuNnOps(be, 2)) {
            Tensor dy = in(scope, new SplittableRandom(1), -1, 1, 4, 6);
            float[] before = dy.toFloatArray();
            for (NnOps ops : new NnOps[] {cpu, new ComposedNnOps(be)}) {
                for (Tensor out : new Tensor[] {dy.slice(0, 2, 3).reshape(6), dy.reshape(24).slice(0, 1, 7)}) {
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                            () -> ops.columnSum(dy, out, false));
                    assertTrue(e.getMessage().contains("columnSum") && e.getMessage().contains("overlaps"),
                            e.getMessage());
                }
            }
            assertArrayEquals(before, dy.toFloatArray(), "nothing written");
            Tensor row = in(scope, new SplittableRandom(2), -1, 1, 6);    // rank 1: out == dy is the same tensor
            for (NnOps ops : new NnOps[] {cpu, new ComposedNnOps(be)}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> ops.columnSum(row, row, true));
                assertTrue(e.getMessage().contains("columnSum") && e.getMessage().contains("memory of dy"),
                        e.getMessage());
            }
        }
    }

    @Test
    void forBackendPicksTheFusedOpsOnTheCpu() {
        try (NnOps ops = NnOps.forBackend(be)) {
            assertEquals(CpuNnOps.class, ops.getClass());
            assertEquals(be, ops.backend());
        }
        Backend b = be;
        assertEquals(ComposedNnOps.class, new ComposedNnOps(b).getClass());
    }
}
