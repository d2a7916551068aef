package org.diffusion4j.training;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.cpu.CpuDiffusionOps;
import org.diffusion4j.random.Philox;
import org.diffusion4j.sampling.ComposedDiffusionOps;
import org.diffusion4j.sampling.DiffusionOps;
import org.diffusion4j.sampling.NoiseSeeds;
import org.diffusion4j.schedule.CosineSchedule;
import org.diffusion4j.schedule.DiscreteVpSchedule;
import org.diffusion4j.schedule.NoiseSchedule;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.RectifiedFlowSchedule;
import org.diffusion4j.schedule.Snr;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused forward-noising op: exactly Philox's normals, equal to the composition of unfused ops and to a float64
 * oracle, invariant under batch splitting, times drawn in the op, loss weights, offset noise, refusals.
 */
class ForwardNoisingTest {

    private static Backend backend;
    private static CpuDiffusionOps fused;
    private static ComposedDiffusionOps composed;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
        fused = new CpuDiffusionOps(backend);
        composed = new ComposedDiffusionOps(backend);
    }

    @AfterAll
    static void tearDown() {
        fused.close();
        backend.close();
    }

    private static float[] data(int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = Philox.normal(3, 3, i) * 0.7f + 0.1f;
        }
        return v;
    }

    /** {xt, target, eps} of one run. */
    private static float[][] run(DiffusionOps ops, ForwardNoising fn, NoiseSchedule schedule, double[] t,
                                 NoiseSeeds seeds, float[] x0v, long... shape) {
        try (TensorScope scope = TensorScope.open()) {
            Tensor x0 = backend.fromArray(scope, x0v, shape);
            Tensor xt = backend.empty(scope, DType.F32, shape);
            Tensor target = backend.empty(scope, DType.F32, shape);
            Tensor eps = backend.empty(scope, DType.F32, shape);
            backend.fill(xt, Float.NaN);
            backend.fill(target, Float.NaN);
            backend.fill(eps, Float.NaN);
            fn.apply(ops, schedule, t, seeds, x0, xt, target, eps, null);
            return new float[][] {xt.toFloatArray(), target.toFloatArray(), eps.toFloatArray()};
        }
    }

    @Test
    void usesExactlyPhiloxNormalsAndEqualsComposition() {
        NoiseSchedule schedule = CosineSchedule.nicholDhariwal();
        for (Prediction target : Prediction.values()) {
            for (long[] shape : new long[][] {{3, 5, 7}, {2, 3, 41, 140}, {1, 1}}) {
                int batch = (int) shape[0];
                int numel = 1;
                for (long d : shape) {
                    numel *= (int) d;
                }
                int n = numel / batch;
                double[] t = new double[batch];
                for (int b = 0; b < batch; b++) {
                    t[b] = 0.05 + 0.9 * b / Math.max(1, batch - 1);
                }
                float[] x0 = data(numel);
                ForwardNoising fn = new ForwardNoising(target);
                NoiseSeeds seeds = NoiseSeeds.batch(1234, 77, 0, batch);
                float[][] f = run(fused, fn, schedule, t, seeds, x0, shape);
                float[][] c = run(composed, fn, schedule, t, seeds, x0, shape);
                // ε is Philox's stream (seed, stream) element by element: exactly backend.randn
                try (TensorScope scope = TensorScope.open()) {
                    Tensor ref = backend.empty(scope, DType.F32, shape);
                    backend.randn(ref, 1234, 77);
                    assertArrayEquals(ref.toFloatArray(), f[2], target + " eps");
                }
                assertArrayEquals(c[0], f[0], target + " xt fused vs composed");
                assertArrayEquals(c[1], f[1], target + " target fused vs composed");
                for (int i = 0; i < numel; i++) {
                    int b = i / n;
                    double a = schedule.alpha(t[b]);
                    double s = schedule.sigma(t[b]);
                    double eps = f[2][i];
                    double xt = a * x0[i] + s * eps;
                    double tg = target.target(x0[i], eps, a, s);
                    double scale = Math.abs(a * x0[i]) + Math.abs(s * eps);
                    double tscale = Math.abs(target.x0Coefficient(a, s) * x0[i])
                            + Math.abs(target.epsCoefficient(a, s) * eps);
                    assertEquals(xt, f[0][i], 2e-7 * scale + 1e-30, "xt " + i);
                    assertEquals(tg, f[1][i], 2e-7 * tscale + 1e-30, "target " + i);
                }
            }
        }
    }

    @Test
    void noiseDoesNotDependOnTheBatch() {
        int batch = 6;
        int n = 5 * 33;
        float[] x0 = data(batch * n);
        double[] t = {0.1, 0.3, 0.5, 0.6, 0.8, 0.95};
        NoiseSchedule schedule = RectifiedFlowSchedule.unshifted();
        ForwardNoising fn = new ForwardNoising(Prediction.VELOCITY);
        NoiseSeeds all = NoiseSeeds.batch(9, 4, 100, batch);
        float[][] whole = run(fused, fn, schedule, t, all, x0, batch, 5, 33);
        int cut = 2;
        float[][] head = run(fused, fn, schedule, java.util.Arrays.copyOfRange(t, 0, cut), all.slice(0, cut),
                java.util.Arrays.copyOfRange(x0, 0, cut * n), cut, 5, 33);
        float[][] tail = run(fused, fn, schedule, java.util.Arrays.copyOfRange(t, cut, batch), all.slice(cut, batch),
                java.util.Arrays.copyOfRange(x0, cut * n, batch * n), batch - cut, 5, 33);
        for (int k = 0; k < 3; k++) {
            assertArrayEquals(java.util.Arrays.copyOfRange(whole[k], 0, cut * n), head[k]);
            assertArrayEquals(java.util.Arrays.copyOfRange(whole[k], cut * n, batch * n), tail[k]);
        }
        // sample 4 alone, as global sample 104, sees the same noise
        float[][] one = run(fused, fn, schedule, new double[] {0.8}, NoiseSeeds.batch(9, 4, 104, 1),
                java.util.Arrays.copyOfRange(x0, 4 * n, 5 * n), 1, 5, 33);
        assertArrayEquals(java.util.Arrays.copyOfRange(whole[2], 4 * n, 5 * n), one[2]);
    }

    @Test
    void drawsTimesInTheOpAndWritesLossWeights() {
        int batch = 5;
        NoiseSchedule schedule = CosineSchedule.nicholDhariwal();
        NoiseSeeds seeds = NoiseSeeds.batch(21, 8, 40, batch);
        ForwardNoising fn = new ForwardNoising(Prediction.EPSILON)
                .withLossWeight(ForwardNoising.LossWeight.minSnr(5.0, Prediction.EPSILON));
        TimeSampler sampler = new TimeSampler.LogitNormal(0, 1);
        try (TensorScope scope = TensorScope.open()) {
            Tensor x0 = backend.fromArray(scope, data(batch * 12), batch, 12);
            Tensor xt = backend.empty(scope, DType.F32, batch, 12);
            Tensor tg = backend.empty(scope, DType.F32, batch, 12);
            Tensor w = backend.empty(scope, DType.F32, batch);
            ForwardNoising.Result r = fn.apply(fused, schedule, sampler, seeds, x0, xt, tg, null, w);
            float[] wf = w.toFloatArray();
            for (int b = 0; b < batch; b++) {
                double want = sampler.fromUniform(Philox.uniform(21, 9, 40 + b));   // stream + 1, index = id
                assertEquals(want, r.t()[b], 0.0);
                double snr = Snr.snr(schedule.alpha(want), schedule.sigma(want));
                assertEquals(LossWeights.minSnr(snr, 5.0, Prediction.EPSILON), r.weights()[b], 1e-15);
                assertEquals((float) r.weights()[b], wf[b], 0f);
            }
            // the same through a [B] tensor of times
            Tensor tt = backend.empty(scope, DType.F32, batch);
            float[] tf = new float[batch];
            for (int b = 0; b < batch; b++) {
                tf[b] = (float) r.t()[b];
            }
            tt.copyFrom(tf);
            Tensor xt2 = backend.empty(scope, DType.F32, batch, 12);
            fn.apply(fused, schedule, tt, seeds, x0, xt2, tg, null, null);
            float[] a = xt.toFloatArray();
            float[] b2 = xt2.toFloatArray();
            for (int i = 0; i < a.length; i++) {
                assertEquals(a[i], b2[i], 1e-5f * (1 + Math.abs(a[i])));
            }
        }
        // discrete timesteps as diffusers' randint(0, T)
        DiscreteVpSchedule dvp = DiscreteVpSchedule.linear(1000);
        int[] k = ForwardNoising.drawTimesteps(dvp, seeds);
        for (int b = 0; b < batch; b++) {
            assertEquals(dvp.timestepFromUniform(Philox.uniform(21, 9, 40 + b)), k[b]);
        }
    }

    @Test
    void offsetNoiseIsPerSampleAndChannel() {
        int batch = 2;
        int channels = 3;
        int spatial = 50;
        double strength = 0.1;
        NoiseSeeds seeds = NoiseSeeds.batch(5, 0, 7, batch);
        ForwardNoising fn = new ForwardNoising(Prediction.EPSILON).withOffsetNoise(new OffsetNoise(strength));
        float[] x0 = data(batch * channels * spatial);
        double[] t = {0.3, 0.7};
        NoiseSchedule schedule = CosineSchedule.nicholDhariwal();
        float[][] f = run(fused, fn, schedule, t, seeds, x0, batch, channels, spatial);
        float[][] c = run(composed, fn, schedule, t, seeds, x0, batch, channels, spatial);
        assertArrayEquals(c[2], f[2]);
        assertArrayEquals(c[0], f[0]);
        int n = channels * spatial;
        for (int b = 0; b < batch; b++) {
            for (int ch = 0; ch < channels; ch++) {
                float delta = Philox.normal(5, 2, (7 + b) * channels + ch);
                for (int s = 0; s < spatial; s++) {
                    int j = ch * spatial + s;
                    float base = seeds.normal(b, n, 0, j);
                    assertEquals(base + (float) strength * delta, f[2][b * n + j], 0f);
                }
            }
        }
    }

    @Test
    void refusesAnEpsilonTargetAtZeroSnr() {
        ForwardNoising fn = new ForwardNoising(Prediction.EPSILON);
        try (TensorScope scope = TensorScope.open()) {
            Tensor x0 = backend.zeros(scope, DType.F32, 2, 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> fn.apply(fused, RectifiedFlowSchedule.unshifted(), new double[] {0.5, 1.0},
                            NoiseSeeds.batch(1, 0, 0, 2), x0, x0, x0, null, null));
            assertTrue(e.getMessage().contains("zero SNR"), e.getMessage());
            // V and VELOCITY targets are fine there
            new ForwardNoising(Prediction.VELOCITY).apply(fused, RectifiedFlowSchedule.unshifted(),
                    new double[] {0.5, 1.0}, NoiseSeeds.batch(1, 0, 0, 2), x0, x0,
                    backend.empty(scope, DType.F32, 2, 4), null, null);
        }
    }

    /** A result's arrays were the caller's to change: the weights a trainer read could be rewritten behind it. */
    @Test
    void aResultCannotBeChangedFromOutside() {
        double[] t = {0.25, 0.5};
        double[] w = {1, 2};
        ForwardNoising.Result r = new ForwardNoising.Result(t, new double[] {0.9, 0.8}, new double[] {0.1, 0.2}, w);
        t[0] = 7;
        w[1] = 7;
        r.weights()[0] = 7;
        r.t()[1] = 7;
        assertArrayEquals(new double[] {0.25, 0.5}, r.t());
        assertArrayEquals(new double[] {1, 2}, r.weights());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new ForwardNoising.Result(new double[2], new double[2], new double[1], new double[2]));
        assertTrue(e.getMessage().contains("sigma 1"), e.getMessage());
    }
}
