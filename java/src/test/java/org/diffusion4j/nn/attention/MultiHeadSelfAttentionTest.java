package org.diffusion4j.nn.attention;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.Parameter;
import org.diffusion4j.nn.attention.AttentionOracle.Dims;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;
import java.util.function.ToDoubleFunction;

import static org.diffusion4j.nn.attention.AttentionOracle.relErr;
import static org.diffusion4j.nn.attention.AttentionOracle.seedOf;
import static org.diffusion4j.nn.attention.AttentionOracle.widen;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link MultiHeadSelfAttention} against a float64 re-implementation of timm's {@code Attention.forward}
 * (qkv linear, reshape {@code [B, T, 3, H, Dh]}, permute, attention, merge, proj), its backward against float64
 * central differences of that reference for the input and all four parameters, the state-dict names, and the
 * fused and naive attention giving the same layer output.
 */
class MultiHeadSelfAttentionTest {

    private static CpuBackend backend;
    private static NnOps ops;
    private static AttentionOps fused;
    private static AttentionOps naive;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
        ops = NnOps.forBackend(backend);
        fused = AttentionOps.forBackend(backend);
        naive = new ComposedAttention(backend);
    }

    @AfterAll
    static void tearDown() {
        fused.close();
        ops.close();
        backend.close();
    }

    /** Float64 reference of the layer: {@code x [B, T, D]} and the four parameters → {@code y [B, T, D]}. */
    static double[] reference(int b, int t, int d, int h, double[] x, double[] wQkv, double[] bQkv, double[] wProj,
                              double[] bProj) {
        int dh = d / h;
        double[] qkv = linear(x, b * t, d, wQkv, bQkv, 3 * d);                    // [B, T, 3, H, Dh]
        Dims dims = new Dims(b, h, t, t, dh);
        double[][] parts = new double[3][b * h * t * dh];                           // [3][B, H, T, Dh]
        for (int bi = 0; bi < b; bi++) {
            for (int ti = 0; ti < t; ti++) {
                for (int c = 0; c < 3; c++) {
                    for (int hi = 0; hi < h; hi++) {
                        for (int x0 = 0; x0 < dh; x0++) {
                            parts[c][((bi * h + hi) * t + ti) * dh + x0] =
                                    qkv[(((bi * t + ti) * 3 + c) * h + hi) * dh + x0];
                        }
                    }
                }
            }
        }
        double[] o = AttentionOracle.forward(dims, parts[0], parts[1], parts[2], 1 / Math.sqrt(dh)).out();
        double[] merged = new double[b * t * d];                                    // [B, T, H, Dh]
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                for (int ti = 0; ti < t; ti++) {
                    for (int x0 = 0; x0 < dh; x0++) {
                        merged[((bi * t + ti) * h + hi) * dh + x0] = o[((bi * h + hi) * t + ti) * dh + x0];
                    }
                }
            }
        }
        return linear(merged, b * t, d, wProj, bProj, d);
    }

    /** {@code y = x·Wᵀ + b}, {@code W [out, in]}. */
    static double[] linear(double[] x, int rows, int in, double[] w, double[] bias, int out) {
        double[] y = new double[rows * out];
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < out; o++) {
                double acc = bias == null ? 0 : bias[o];
                for (int i = 0; i < in; i++) {
                    acc += x[r * in + i] * w[o * in + i];
                }
                y[r * out + o] = acc;
            }
        }
        return y;
    }

    private static MultiHeadSelfAttention layer(TensorScope s, AttentionOps attn, SplittableRandom r, int d, int h) {
        MultiHeadSelfAttention l = new MultiHeadSelfAttention(ops, attn, s, d, h, true);
        for (Parameter p : l.parameters()) {
            p.value().copyFrom(AttentionOracle.normal(r, (int) p.numel(), 0.4));
        }
        return l;
    }

    @Test
    void stateDictNamesAndShapesFollowTimm() {
        try (TensorScope s = TensorScope.open()) {
            MultiHeadSelfAttention l = new MultiHeadSelfAttention(ops, fused, s, 96, 3, true);
            List<String> names = List.copyOf(l.namedParameters().keySet());
            assertEquals(List.of("qkv.weight", "qkv.bias", "proj.weight", "proj.bias"), names);
            assertEquals("[288, 96]", java.util.Arrays.toString(l.namedParameters().get("qkv.weight").shape()));
            assertEquals("[96, 96]", java.util.Arrays.toString(l.namedParameters().get("proj.weight").shape()));
            assertEquals(32, l.headDim());
            MultiHeadSelfAttention noBias = new MultiHeadSelfAttention(ops, fused, s, 8, 2, false);
            assertEquals(List.of("qkv.weight", "proj.weight", "proj.bias"),
                    List.copyOf(noBias.namedParameters().keySet()));
            assertThrows(IllegalArgumentException.class, () -> new MultiHeadSelfAttention(ops, fused, s, 10, 3, true));
            assertThrows(IllegalArgumentException.class, () -> new MultiHeadSelfAttention(ops, fused, s, 600, 2, true));
            Tensor bad = backend.zeros(s, org.diffusion4j.tensor.DType.F32, 2, 5, 7);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new MultiHeadSelfAttention(ops, fused, s, 8, 2, true).forward(s, bad));
            assertTrue(e.getMessage().contains("x") && e.getMessage().contains("[B, T, 8]"), e.getMessage());
        }
    }

    @Test
    void forwardMatchesFloat64ReferenceWithFusedAndNaiveAttention() {
        int[][] cases = {{2, 65, 96, 3}, {1, 7, 64, 1}, {3, 1, 32, 4}, {1, 130, 128, 2}};
        for (int[] c : cases) {
            int b = c[0];
            int t = c[1];
            int d = c[2];
            int h = c[3];
            String name = "mhsa forward B=" + b + " T=" + t + " D=" + d + " H=" + h;
            SplittableRandom r = AttentionOracle.random(name);
            float[] xa = AttentionOracle.normal(r, b * t * d, 1);
            try (TensorScope s = TensorScope.open()) {
                MultiHeadSelfAttention lf = layer(s, fused, r, d, h);
                MultiHeadSelfAttention ln = new MultiHeadSelfAttention(ops, naive, s, d, h, true);
                for (String p : lf.namedParameters().keySet()) {
                    ln.namedParameters().get(p).value().copyFrom(lf.namedParameters().get(p).value().toFloatArray());
                }
                double[] ref = reference(b, t, d, h, widen(xa), values(lf, "qkv.weight"), values(lf, "qkv.bias"),
                        values(lf, "proj.weight"), values(lf, "proj.bias"));
                Tensor x = backend.fromArray(s, xa, b, t, d);
                double ef = relErr(lf.forward(s, x).out().toFloatArray(), ref);
                double en = relErr(ln.forward(s, x).out().toFloatArray(), ref);
                assertTrue(ef < 2e-5, "fused rel error " + ef + ", " + seedOf(name));
                assertTrue(en < 2e-5, "naive rel error " + en + ", " + seedOf(name));
            }
        }
    }

    @Test
    void backwardMatchesCentralFiniteDifferences() {
        int b = 2;
        int t = 5;
        int d = 6;
        int h = 2;
        String name = "mhsa backward";
        SplittableRandom r = AttentionOracle.random(name);
        float[] xa = AttentionOracle.normal(r, b * t * d, 1);
        float[] dya = AttentionOracle.normal(r, b * t * d, 1);
        try (TensorScope s = TensorScope.open()) {
            MultiHeadSelfAttention l = layer(s, fused, r, d, h);
            Tensor x = backend.fromArray(s, xa, b, t, d);
            MultiHeadSelfAttention.Cache cache = l.forward(s, x);
            Tensor dx = l.backward(s, cache, backend.fromArray(s, dya, b, t, d));
            double[] dy = widen(dya);
            double[][] p = {widen(xa), values(l, "qkv.weight"), values(l, "qkv.bias"), values(l, "proj.weight"),
                values(l, "proj.bias")};
            ToDoubleFunction<double[][]> loss = v -> {
                double[] y = reference(b, t, d, h, v[0], v[1], v[2], v[3], v[4]);
                double sum = 0;
                for (int i = 0; i < y.length; i++) {
                    sum += dy[i] * y[i];
                }
                return sum;
            };
            float[][] got = {dx.toFloatArray(), grad(l, "qkv.weight"), grad(l, "qkv.bias"), grad(l, "proj.weight"),
                grad(l, "proj.bias")};
            String[] what = {"dx", "d qkv.weight", "d qkv.bias", "d proj.weight", "d proj.bias"};
            for (int k = 0; k < p.length; k++) {
                double[] fd = new double[p[k].length];
                for (int i = 0; i < fd.length; i++) {
                    double keep = p[k][i];
                    p[k][i] = keep + 1e-6;
                    double up = loss.applyAsDouble(p);
                    p[k][i] = keep - 1e-6;
                    double down = loss.applyAsDouble(p);
                    p[k][i] = keep;
                    fd[i] = (up - down) / 2e-6;
                }
                double e = relErr(got[k], fd);
                assertTrue(e < 1e-4, what[k] + " rel error " + e + " against central differences, " + seedOf(name));
            }
        }
    }

    private static double[] values(MultiHeadSelfAttention l, String name) {
        return widen(l.namedParameters().get(name).value().toFloatArray());
    }

    private static float[] grad(MultiHeadSelfAttention l, String name) {
        return l.namedParameters().get(name).grad().toFloatArray();
    }
}
