package org.diffusion4j.optim;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.AdamWStep;
import org.diffusion4j.nn.NnMath;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.Parameter;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.diffusion4j.nn.NnTestSupport.assertBitwise;
import static org.diffusion4j.nn.NnTestSupport.assertClose;
import static org.diffusion4j.nn.NnTestSupport.random;
import static org.diffusion4j.nn.NnTestSupport.seedOf;
import static org.diffusion4j.nn.NnTestSupport.uniform;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * AdamW against a scalar float64 implementation of Loshchilov &amp; Hutter 2019, Algorithm 2 with Kingma &amp; Ba's
 * bias correction, over several steps with a varying learning rate, gradient scale and per-parameter weight decay.
 */
class AdamWTest {

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

    /** Float64 AdamW state of one tensor. */
    static final class Scalar {
        final double[] p;
        final double[] m;
        final double[] v;

        Scalar(float[] p0) {
            p = new double[p0.length];
            for (int i = 0; i < p0.length; i++) {
                p[i] = p0[i];
            }
            m = new double[p0.length];
            v = new double[p0.length];
        }

        /** Step {@code t}: θ ← θ − lr·λ·θ; m, v updated; θ ← θ − lr·m̂/(√v̂ + ε). */
        void step(float[] grad, double gradScale, double lr, double b1, double b2, double eps, double wd, int t) {
            for (int i = 0; i < p.length; i++) {
                double g = gradScale * grad[i];
                p[i] -= lr * wd * p[i];
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                double mHat = m[i] / (1 - Math.pow(b1, t));
                double vHat = v[i] / (1 - Math.pow(b2, t));
                p[i] -= lr * mHat / (Math.sqrt(vHat) + eps);
            }
        }
    }

    @Test
    void matchesScalarFloat64OverSeveralSteps() {
        String tc = "adamw steps";
        SplittableRandom r = random(tc);
        double b1 = 0.9;
        double b2 = 0.99;
        double eps = 1e-6;
        double wd = 0.1;
        try (TensorScope scope = TensorScope.open()) {
            Parameter w = Parameter.zeros(be, scope, "weight", 7, 3);
            Parameter b = Parameter.zeros(be, scope, "bias", 5);
            float[] w0 = uniform(r, 21, -1, 1);
            float[] b0 = uniform(r, 5, -1, 1);
            w.value().copyFrom(w0);
            b.value().copyFrom(b0);
            Map<String, Parameter> params = new LinkedHashMap<>();
            params.put("layer.weight", w);
            params.put("layer.bias", b);
            Scalar sw = new Scalar(w0);
            Scalar sb = new Scalar(b0);
            LrSchedule lr = LrSchedule.warmupCosine(1e-2, 2, 8, 1e-3);
            try (AdamW opt = new AdamW(ops, params, new AdamW.Hyper(b1, b2, eps, wd), n -> !n.endsWith("bias"))) {
                for (int t = 1; t <= 8; t++) {
                    float[] gw = uniform(r, 21, -2, 2);
                    float[] gb = uniform(r, 5, -2, 2);
                    w.grad().copyFrom(gw);
                    b.grad().copyFrom(gb);
                    double scale = t % 3 == 0 ? 0.37 : 1.0;
                    double rate = lr.lr(t);
                    opt.step(rate, scale);
                    sw.step(gw, scale, rate, b1, b2, eps, wd, t);
                    sb.step(gb, scale, rate, b1, b2, eps, 0.0, t);
                    assertClose(tc + " weight after step " + t, w.value().toFloatArray(), sw.p, 2e-6, seedOf(tc));
                    assertClose(tc + " bias after step " + t, b.value().toFloatArray(), sb.p, 2e-6, seedOf(tc));
                    assertClose(tc + " m after step " + t, opt.firstMoments().get("layer.weight").toFloatArray(), sw.m,
                            2e-6, seedOf(tc));
                    assertClose(tc + " v after step " + t, opt.secondMoments().get("layer.weight").toFloatArray(),
                            sw.v, 2e-6, seedOf(tc));
                }
                assertEquals(8, opt.stepCount());
            }
        }
    }

    @Test
    void cpuStepEvaluatesNnMathBitForBit() {
        String tc = "adamw bits";
        SplittableRandom r = random(tc);
        int n = 4099;
        float[] p = uniform(r, n, -1, 1);
        float[] g = uniform(r, n, -3, 3);
        float[] m = uniform(r, n, -0.3, 0.3);
        float[] v = uniform(r, n, 0, 0.5);
        AdamWStep st = AdamWStep.of(3e-4, 0.9, 0.999, 1e-8, 0.05, 17, 0.8);
        try (TensorScope scope = TensorScope.open()) {
            Tensor pt = be.fromArray(scope, p, n);
            Tensor mt = be.fromArray(scope, m, n);
            Tensor vt = be.fromArray(scope, v, n);
            ops.adamw(st, pt, be.fromArray(scope, g, n), mt, vt);
            float[] ep = new float[n];
            float[] em = new float[n];
            float[] ev = new float[n];
            float[] o = new float[3];
            for (int i = 0; i < n; i++) {
                NnMath.adamw(st, p[i], g[i], m[i], v[i], o);
                ep[i] = o[0];
                em[i] = o[1];
                ev[i] = o[2];
            }
            assertBitwise(tc + " p", ep, pt.toFloatArray(), seedOf(tc));
            assertBitwise(tc + " m", em, mt.toFloatArray(), seedOf(tc));
            assertBitwise(tc + " v", ev, vt.toFloatArray(), seedOf(tc));
        }
    }

    @Test
    void resumingFromSavedMomentsAndStepCountGivesTheSameWeights() {
        String tc = "adamw resume";
        SplittableRandom r = random(tc);
        float[] p0 = uniform(r, 33, -1, 1);
        float[][] grads = new float[6][];
        for (int t = 0; t < 6; t++) {
            grads[t] = uniform(r, 33, -1, 1);
        }
        try (TensorScope scope = TensorScope.open()) {
            Parameter a = Parameter.zeros(be, scope, "weight", 3, 11);
            a.value().copyFrom(p0);
            try (AdamW whole = new AdamW(ops, Map.of("w", a), AdamW.Hyper.defaults())) {
                for (float[] g : grads) {
                    a.grad().copyFrom(g);
                    whole.step(1e-2);
                }
            }
            Parameter b = Parameter.zeros(be, scope, "weight", 3, 11);
            b.value().copyFrom(p0);
            float[] m;
            float[] v;
            try (AdamW first = new AdamW(ops, Map.of("w", b), AdamW.Hyper.defaults())) {
                for (int t = 0; t < 3; t++) {
                    b.grad().copyFrom(grads[t]);
                    first.step(1e-2);
                }
                m = first.firstMoments().get("w").toFloatArray();
                v = first.secondMoments().get("w").toFloatArray();
            }
            try (AdamW second = new AdamW(ops, Map.of("w", b), AdamW.Hyper.defaults())) {
                second.firstMoments().get("w").copyFrom(m);
                second.secondMoments().get("w").copyFrom(v);
                second.setStepCount(3);
                for (int t = 3; t < 6; t++) {
                    b.grad().copyFrom(grads[t]);
                    second.step(1e-2);
                }
            }
            assertBitwise(tc, a.value().toFloatArray(), b.value().toFloatArray(), seedOf(tc));
        }
    }

    @Test
    void badHyperParametersAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new AdamW.Hyper(1.0, 0.999, 1e-8, 0));
        assertThrows(IllegalArgumentException.class, () -> new AdamW.Hyper(0.9, -0.1, 1e-8, 0));
        assertThrows(IllegalArgumentException.class, () -> new AdamW.Hyper(0.9, 0.999, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new AdamW.Hyper(0.9, 0.999, 1e-8, -1));
        assertThrows(IllegalArgumentException.class, () -> AdamWStep.of(Double.NaN, 0.9, 0.999, 1e-8, 0, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> AdamWStep.of(1e-3, 0.9, 0.999, 1e-8, 0, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> AdamWStep.of(1e-3, 0.9, 0.999, 1e-8, 0, 1, -1));
        try (TensorScope scope = TensorScope.open()) {
            Parameter p = Parameter.zeros(be, scope, "weight", 2);
            AdamW opt = new AdamW(ops, Map.of("p", p), AdamW.Hyper.defaults());
            assertThrows(IllegalArgumentException.class, () -> opt.step(-1));
            opt.close();
            assertThrows(IllegalStateException.class, () -> opt.step(1e-3));
        }
    }

    @Test
    void canonicalConstructorRefusesCoefficientsTheStepCannotEvaluate() {
        // eps = 0 divides 0 by 0 at a zero gradient (v = 0): the parameter would turn NaN
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new AdamWStep(1f, 0.9f, 0.1f, 0.999f, 0.001f, 1e-3f, 1f, 0f, 1f));
        assertTrue(e.getMessage().contains("eps"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> new AdamWStep(1f, 0.9f, 0.1f, 0.999f, 0.001f, 1e-3f, 1f, Float.MIN_VALUE, 1f));
        assertThrows(IllegalArgumentException.class,
                () -> new AdamWStep(Float.NaN, 0.9f, 0.1f, 0.999f, 0.001f, 1e-3f, 1f, 1e-8f, 1f));
        assertThrows(IllegalArgumentException.class,
                () -> new AdamWStep(1f, 1.5f, 0.1f, 0.999f, 0.001f, 1e-3f, 1f, 1e-8f, 1f));
        assertThrows(IllegalArgumentException.class,
                () -> new AdamWStep(1f, 0.9f, 0.1f, 0.999f, -0.001f, 1e-3f, 1f, 1e-8f, 1f));
        assertThrows(IllegalArgumentException.class,
                () -> new AdamWStep(1f, 0.9f, 0.1f, 0.999f, 0.001f, -1e-3f, 1f, 1e-8f, 1f));
        assertThrows(IllegalArgumentException.class,
                () -> new AdamWStep(1f, 0.9f, 0.1f, 0.999f, 0.001f, 1e-3f, 0f, 1e-8f, 1f));
        assertThrows(IllegalArgumentException.class,
                () -> new AdamWStep(1f, 0.9f, 0.1f, 0.999f, 0.001f, 1e-3f, 1f, 1e-8f, Float.POSITIVE_INFINITY));
        // what the factory builds still passes, at the edges of its ranges too
        AdamWStep.of(0, 0, 0, Float.MIN_NORMAL, 0, 1, 0);
        AdamWStep.of(1e-3, Math.nextDown(1.0), Math.nextDown(1.0), 1e-8, 0.01, 1, 1);
        AdamWStep.of(10, 0.9, 0.999, 1e-8, 1, Long.MAX_VALUE - 1, 1);
        // an eps that is finite in float64 but not in float32 is refused by the factory, naming it
        IllegalArgumentException big = assertThrows(IllegalArgumentException.class,
                () -> AdamWStep.of(1e-3, 0.9, 0.999, 1e39, 0, 1, 1));
        assertTrue(big.getMessage().contains("1.0E39"), big.getMessage());
    }

    /**
     * Found by an adversarial trial: a step with one parameter's scope closed updated the parameters before it and
     * their first moments, then failed with the step count unchanged, so a retry updated them twice. Now every
     * parameter is checked first and nothing changes.
     */
    @Test
    void aStepWithAFreedParameterChangesNothing() {
        try (TensorScope keep = TensorScope.open()) {
            org.diffusion4j.nn.Parameter a = org.diffusion4j.nn.Parameter.zeros(be, keep, "a", 3);
            a.grad().copyFrom(new float[] {1, 1, 1});
            TensorScope gone = TensorScope.open();
            org.diffusion4j.nn.Parameter b = org.diffusion4j.nn.Parameter.zeros(be, gone, "b", 2);
            java.util.LinkedHashMap<String, org.diffusion4j.nn.Parameter> params = new java.util.LinkedHashMap<>();
            params.put("a", a);
            params.put("b", b);
            try (AdamW opt = new AdamW(ops, params, AdamW.Hyper.defaults())) {
                gone.close();
                assertThrows(IllegalStateException.class, () -> opt.step(0.1));
                assertEquals(0, opt.stepCount());
                assertArrayEquals(new float[3], a.value().toFloatArray(), "a not updated");
                assertArrayEquals(new float[3], opt.firstMoments().get("a").toFloatArray(), "its moment not updated");
            }
        }
    }
}
