package org.diffusion4j.nn;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.diffusion4j.nn.NnTestSupport.GRAD;
import static org.diffusion4j.nn.NnTestSupport.REDUCTION;
import static org.diffusion4j.nn.NnTestSupport.abs;
import static org.diffusion4j.nn.NnTestSupport.assertClose;
import static org.diffusion4j.nn.NnTestSupport.assertCloseScaled;
import static org.diffusion4j.nn.NnTestSupport.doubles;
import static org.diffusion4j.nn.NnTestSupport.dot;
import static org.diffusion4j.nn.NnTestSupport.numel;
import static org.diffusion4j.nn.NnTestSupport.numericGrad;
import static org.diffusion4j.nn.NnTestSupport.random;
import static org.diffusion4j.nn.NnTestSupport.s;
import static org.diffusion4j.nn.NnTestSupport.seedOf;
import static org.diffusion4j.nn.NnTestSupport.uniform;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Linear (+ fused activation): forward against float64 on odd shapes, backward by central differences. */
class LinearTest {

    static CpuBackend be;
    static NnOps ops;

    @BeforeAll
    static void start() {
        be = new CpuBackend(1);
        ops = NnOps.forBackend(be);
    }

    @AfterAll
    static void stop() {
        ops.close();
        be.close();
    }

    /** {x shape..., out}: the last entry is the output size. */
    static final long[][] CASES = {
        {1, 1, 1}, {7, 13, 5}, {2, 3, 17, 11}, {3, 1, 1, 2}, {257, 129, 65}, {0, 4, 3}, {5, 0, 3}, {3, 7, 0}, {9, 1}
    };

    static Linear linear(TensorScope scope, SplittableRandom r, long in, long out, boolean bias) {
        Linear l = new Linear(ops, scope, in, out, bias);
        l.weight().value().copyFrom(uniform(r, in * out, -1, 1));
        if (bias) {
            l.bias().value().copyFrom(uniform(r, out, -1, 1));
        }
        return l;
    }

    @Test
    void forwardMatchesFloat64() {
        for (long[] c : CASES) {
            long[] xs = Arrays.copyOf(c, c.length - 1);
            long in = xs[xs.length - 1];
            long out = c[c.length - 1];
            long rows = numel(xs) / Math.max(1, in);
            if (in == 0) {
                rows = numel(Arrays.copyOf(xs, xs.length - 1));
            }
            for (Activation act : Activation.values()) {
                for (boolean bias : new boolean[] {true, false}) {
                    String tc = "linear " + s(c) + " " + act + " bias=" + bias;
                    SplittableRandom r = random(tc);
                    try (TensorScope scope = TensorScope.open()) {
                        Linear l = linear(scope, r, in, out, bias);
                        float[] x = uniform(r, numel(xs), -2, 2);
                        Linear.Cache cache = l.forward(scope, be.fromArray(scope, x, xs), act);
                        long[] ys = xs.clone();
                        ys[ys.length - 1] = out;
                        assertEquals(Arrays.toString(ys), Arrays.toString(cache.out().shape()), tc);
                        double[] w = doubles(l.weight().value().toFloatArray());
                        double[] b = bias ? doubles(l.bias().value().toFloatArray()) : null;
                        double[] z = Ref.linear(doubles(x), (int) rows, (int) in, w, b, (int) out);
                        double[] ref = Ref.act(act, z);
                        // Rounding moves z by a fraction of Σ|x w| + |b|, and y by |act'(z)| times that.
                        double[] zMagnitude = Ref.linear(abs(doubles(x)), (int) rows, (int) in, abs(w),
                                b == null ? null : abs(b), (int) out);
                        double[] scale = new double[ref.length];
                        for (int i = 0; i < scale.length; i++) {
                            double h = 1e-6 * Math.max(1, Math.abs(z[i]));
                            double slope = (Ref.act(act, z[i] + h) - Ref.act(act, z[i] - h)) / (2 * h);
                            scale[i] = Math.max(Math.abs(ref[i]), Math.abs(slope) * zMagnitude[i]);
                        }
                        assertCloseScaled(tc, cache.out().toFloatArray(), ref, scale, REDUCTION, seedOf(tc));
                    }
                }
            }
        }
    }

    @Test
    void backwardMatchesCentralDifferences() {
        long[][] shapes = {{2, 3, 5}, {4, 7}, {1, 1}};
        long[] outs = {4, 3, 2};
        for (int k = 0; k < shapes.length; k++) {
            long[] xs = shapes[k];
            int in = (int) xs[xs.length - 1];
            int out = (int) outs[k];
            int rows = (int) (numel(xs) / in);
            for (Activation act : Activation.values()) {
                for (boolean bias : new boolean[] {true, false}) {
                    String tc = "linear backward " + s(xs) + " -> " + out + " " + act + " bias=" + bias;
                    SplittableRandom r = random(tc);
                    try (TensorScope scope = TensorScope.open()) {
                        Linear l = linear(scope, r, in, out, bias);
                        float[] x = uniform(r, numel(xs), -2, 2);
                        float[] w = uniform(r, (long) rows * out, -1, 1);
                        Linear.Cache cache = l.forward(scope, be.fromArray(scope, x, xs), act);
                        long[] ys = xs.clone();
                        ys[ys.length - 1] = out;
                        Tensor dx = l.backward(scope, cache, be.fromArray(scope, w, ys), true);

                        double[] xd = doubles(x);
                        double[] wd = doubles(l.weight().value().toFloatArray());
                        double[] bd = bias ? doubles(l.bias().value().toFloatArray()) : null;
                        double[] dw = doubles(w);
                        // Each gradient is a sum of products of g = dy·act'(z) with W, x or 1; it is checked
                        // against the sum of their magnitudes (a one-element dx of [1, 1] -> 2 may cancel).
                        double[] z = Ref.linear(xd, rows, in, wd, bd, out);
                        double[] g = new double[z.length];
                        for (int i = 0; i < g.length; i++) {
                            double h = 1e-6 * Math.max(1, Math.abs(z[i]));
                            g[i] = Math.abs(dw[i] * (Ref.act(act, z[i] + h) - Ref.act(act, z[i] - h)) / (2 * h));
                        }
                        double[] dxScale = new double[xd.length];
                        double[] dWScale = new double[wd.length];
                        double[] dbScale = new double[out];
                        for (int rr = 0; rr < rows; rr++) {
                            for (int o = 0; o < out; o++) {
                                double go = g[rr * out + o];
                                dbScale[o] += go;
                                for (int i = 0; i < in; i++) {
                                    dxScale[rr * in + i] += go * Math.abs(wd[o * in + i]);
                                    dWScale[o * in + i] += go * Math.abs(xd[rr * in + i]);
                                }
                            }
                        }
                        assertCloseScaled(tc + " dx", dx.toFloatArray(), numericGrad(v -> dot(dw,
                                Ref.act(act, Ref.linear(v, rows, in, wd, bd, out))), xd, 1e-6), dxScale, GRAD,
                                seedOf(tc));
                        assertCloseScaled(tc + " dW", l.weight().grad().toFloatArray(), numericGrad(v -> dot(dw,
                                Ref.act(act, Ref.linear(xd, rows, in, v, bd, out))), wd, 1e-6), dWScale, GRAD,
                                seedOf(tc));
                        if (bias) {
                            assertCloseScaled(tc + " db", l.bias().grad().toFloatArray(), numericGrad(v -> dot(dw,
                                    Ref.act(act, Ref.linear(xd, rows, in, wd, v, out))), bd, 1e-6), dbScale, GRAD,
                                    seedOf(tc));
                        }
                    }
                }
            }
        }
    }

    @Test
    void parameterGradientsAccumulate() {
        String tc = "linear accumulate";
        SplittableRandom r = random(tc);
        try (TensorScope scope = TensorScope.open()) {
            Linear l = linear(scope, r, 6, 5, true);
            Tensor x = be.fromArray(scope, uniform(r, 3 * 6, -1, 1), 3, 6);
            Tensor dy = be.fromArray(scope, uniform(r, 3 * 5, -1, 1), 3, 5);
            Linear.Cache c = l.forward(scope, x, Activation.GELU_TANH);
            assertNull(l.backward(scope, c, dy, false));
            float[] gw1 = l.weight().grad().toFloatArray();
            float[] gb1 = l.bias().grad().toFloatArray();
            l.backward(scope, c, dy, false);
            float[] gw2 = l.weight().grad().toFloatArray();
            float[] gb2 = l.bias().grad().toFloatArray();
            double[] twiceW = new double[gw1.length];
            double[] twiceB = new double[gb1.length];
            for (int i = 0; i < gw1.length; i++) {
                twiceW[i] = 2.0 * gw1[i];
            }
            for (int i = 0; i < gb1.length; i++) {
                twiceB[i] = 2.0 * gb1[i];
            }
            assertClose(tc + " dW", gw2, twiceW, 1e-6, seedOf(tc));
            assertClose(tc + " db", gb2, twiceB, 1e-6, seedOf(tc));
            l.zeroGrad();
            assertClose(tc + " zeroGrad", l.weight().grad().toFloatArray(), new double[gw1.length], 0, seedOf(tc));
        }
    }

    @Test
    void namesAndStoredShapeFollowPyTorch() {
        try (TensorScope scope = TensorScope.open()) {
            Linear l = new Linear(ops, scope, 3, 4, true);
            assertEquals("[weight, bias]", l.namedParameters().keySet().toString());
            assertEquals("[4, 3]", Arrays.toString(l.weight().shape()));
            Linear conv = new Linear(ops, scope, 12, 5, false, new long[] {5, 3, 2, 2});
            assertEquals("[5, 3, 2, 2]", Arrays.toString(conv.weight().shape()));
            assertEquals("[5, 12]", Arrays.toString(conv.weightMatrix().shape()));
            assertEquals(60, conv.parameterCount());
        }
    }

    @Test
    void badInputsAreRejected() {
        try (TensorScope scope = TensorScope.open()) {
            Linear l = new Linear(ops, scope, 3, 4, true);
            Tensor x = be.zeros(scope, DType.F32, 2, 5);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> l.forward(scope, x));
            assertEquals(true, e.getMessage().contains("[..., 3]"), e.getMessage());
            Linear.Cache c = l.forward(scope, be.zeros(scope, DType.F32, 2, 3));
            assertThrows(IllegalArgumentException.class,
                    () -> l.backward(scope, c, be.zeros(scope, DType.F32, 2, 5), true));
            assertThrows(IllegalArgumentException.class, () -> new Linear(ops, scope, -1, 4, true));
            assertThrows(IllegalArgumentException.class,
                    () -> new Linear(ops, scope, 3, 4, true, new long[] {4, 2, 2}));
            assertThrows(IllegalArgumentException.class, () -> l.forward(scope, be.zeros(scope, DType.BF16, 2, 3)));
        }
    }

    @Test
    void xavierInitRefusesANegativeFan() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor w = be.zeros(scope, DType.F32, 4, 5);
            // fanIn + fanOut = 4 > 0 passed before, and gave the bound of fans (1, 3)
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Init.xavierUniform(w, -1, 5, 1, 0));
            assertEquals(true, e.getMessage().contains("-1 + 5"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> Init.xavierUniform(w, 5, -1, 1, 0));
            assertThrows(IllegalArgumentException.class, () -> Init.xavierUniform(w, 0, 0, 1, 0));
            Init.xavierUniform(w, 5, 0, 1, 0);
            double a = Math.sqrt(6.0 / 5);
            for (float v : w.toFloatArray()) {
                assertEquals(true, Math.abs(v) <= a, v + " outside [-" + a + ", " + a + "]");
            }
        }
    }
}
