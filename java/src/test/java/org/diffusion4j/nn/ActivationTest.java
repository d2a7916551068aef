package org.diffusion4j.nn;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.diffusion4j.nn.NnTestSupport.ELEMENTWISE;
import static org.diffusion4j.nn.NnTestSupport.GRAD;
import static org.diffusion4j.nn.NnTestSupport.assertBitwise;
import static org.diffusion4j.nn.NnTestSupport.assertClose;
import static org.diffusion4j.nn.NnTestSupport.assertClosePointwise;
import static org.diffusion4j.nn.NnTestSupport.doubles;
import static org.diffusion4j.nn.NnTestSupport.dot;
import static org.diffusion4j.nn.NnTestSupport.numel;
import static org.diffusion4j.nn.NnTestSupport.numericGrad;
import static org.diffusion4j.nn.NnTestSupport.poisoned;
import static org.diffusion4j.nn.NnTestSupport.random;
import static org.diffusion4j.nn.NnTestSupport.s;
import static org.diffusion4j.nn.NnTestSupport.seedOf;
import static org.diffusion4j.nn.NnTestSupport.uniform;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** SiLU and GELU (tanh): forward and bias-fused forward against float64, backward by central differences. */
class ActivationTest {

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

    static final long[][] SHAPES = {{1}, {7}, {3, 5}, {2, 3, 67}, {5, 1, 1023}, {129, 517}, {1, 1025}, {4, 0}};

    @Test
    void forwardWithBiasMatchesFloat64() {
        for (long[] shape : SHAPES) {
            for (Activation act : Activation.values()) {
                for (boolean withBias : new boolean[] {false, true}) {
                    String tc = act + " " + s(shape) + " bias=" + withBias;
                    SplittableRandom r = random(tc);
                    long cols = shape[shape.length - 1];
                    try (TensorScope scope = TensorScope.open()) {
                        float[] x = uniform(r, numel(shape), -8, 8);
                        float[] b = uniform(r, cols, -1, 1);
                        Tensor out = poisoned(be, scope, shape);
                        Tensor pre = poisoned(be, scope, shape);
                        ops.activation(act, be.fromArray(scope, x, shape),
                                withBias ? be.fromArray(scope, b, cols) : null, pre, out);
                        double[] z = new double[x.length];
                        for (int i = 0; i < x.length; i++) {
                            z[i] = withBias ? (double) (x[i] + b[(int) (i % cols)]) : x[i];
                        }
                        assertClose(tc + " pre", pre.toFloatArray(), z, 0, seedOf(tc));
                        assertClosePointwise(tc, out.toFloatArray(), z, v -> Ref.act(act, v), ELEMENTWISE, seedOf(tc));
                    }
                }
            }
        }
    }

    @Test
    void cpuOpsEvaluateNnMathBitForBit() {
        String tc = "activation bits";
        SplittableRandom r = random(tc);
        long[] shape = {37, 1031};
        float[] x = uniform(r, numel(shape), -12, 12);
        float[] dy = uniform(r, numel(shape), -3, 3);
        for (Activation act : Activation.values()) {
            try (TensorScope scope = TensorScope.open()) {
                Tensor out = poisoned(be, scope, shape);
                Tensor dx = poisoned(be, scope, shape);
                Tensor xt = be.fromArray(scope, x, shape);
                ops.activation(act, xt, null, null, out);
                ops.activationBackward(act, xt, be.fromArray(scope, dy, shape), dx);
                float[] y = new float[x.length];
                float[] g = new float[x.length];
                for (int i = 0; i < x.length; i++) {
                    y[i] = NnMath.activate(act, x[i]);
                    g[i] = NnMath.activateBackward(act, x[i], dy[i]);
                }
                assertBitwise(tc + " " + act + " forward", y, out.toFloatArray(), seedOf(tc));
                assertBitwise(tc + " " + act + " backward", g, dx.toFloatArray(), seedOf(tc));
            }
        }
    }

    @Test
    void layersBackwardMatchesCentralDifferences() {
        for (PointwiseLayer layer : new PointwiseLayer[] {new SiLU(ops), new Gelu(ops)}) {
            Activation act = layer.activation();
            long[] shape = {3, 4, 7};
            String tc = act + " layer backward";
            SplittableRandom r = random(tc);
            try (TensorScope scope = TensorScope.open()) {
                float[] x = uniform(r, numel(shape), -5, 5);
                float[] w = uniform(r, numel(shape), -1, 1);
                PointwiseLayer.Cache c = layer.forward(scope, be.fromArray(scope, x, shape));
                assertClose(tc + " forward", c.out().toFloatArray(), Ref.act(act, doubles(x)), ELEMENTWISE, seedOf(tc));
                Tensor dx = layer.backward(scope, c, be.fromArray(scope, w, shape));
                double[] wd = doubles(w);
                assertClose(tc, dx.toFloatArray(), numericGrad(v -> dot(wd, Ref.act(act, v)), doubles(x), 1e-6), GRAD,
                        seedOf(tc));
            }
        }
    }

    @Test
    void saturatesWithoutNaN() {
        float[] x = {-1e30f, -500f, -88f, -20f, 0f, 20f, 88f, 500f, 1e30f};
        for (Activation act : Activation.values()) {
            try (TensorScope scope = TensorScope.open()) {
                Tensor xt = be.fromArray(scope, x, x.length);
                Tensor out = poisoned(be, scope, x.length);
                Tensor dx = poisoned(be, scope, x.length);
                ops.activation(act, xt, null, null, out);
                ops.activationBackward(act, xt, be.fromArray(scope, new float[x.length], x.length), dx);
                float[] y = out.toFloatArray();
                for (int i = 0; i < x.length; i++) {
                    assertTrue(Float.isFinite(y[i]), act + "(" + x[i] + ") = " + y[i]);
                    assertTrue(Float.isFinite(dx.toFloatArray()[i]), act + "'(" + x[i] + ")");
                }
                if (act != Activation.IDENTITY) {
                    assertEquals(0f, Math.abs(y[1]), act + " of -500 saturates to (-)0");
                    assertEquals(500f, y[7], act + " of 500 is the identity in float");
                }
            }
        }
    }

    @Test
    void badArgumentsAreRejected() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor x = be.fromArray(scope, new float[6], 2, 3);
            assertThrows(IllegalArgumentException.class,
                    () -> ops.activation(Activation.SILU, x, be.fromArray(scope, new float[2], 2), null, x));
            assertThrows(IllegalArgumentException.class,
                    () -> ops.activation(Activation.SILU, x, null, x, x));
            assertThrows(IllegalArgumentException.class,
                    () -> ops.activation(Activation.SILU, x, null, null, be.fromArray(scope, new float[6], 3, 2)));
            assertThrows(NullPointerException.class, () -> ops.activation(null, x, null, null, x));
        }
    }
}
