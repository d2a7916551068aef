package org.diffusion4j.sampling;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.random.Philox;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.VpSchedule;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Thresholding}: the static clip and Imagen's dynamic thresholding against float64 formulas (quantiles as
 * {@code torch.quantile}), the CLI spelling, and a sampler step with thresholding through {@link SamplerContext}
 * against the DDIM update written out by hand with the clamped {@code x̂0}.
 */
class ThresholdingTest {

    private static Backend backend;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void tearDown() {
        backend.close();
    }

    @Test
    void quantilesInterpolateLikeTorch() {
        // torch.quantile(torch.tensor([1., 2., 3., 4.]), 0.5) = 2.5; of arange(10) at 0.995: 8.955; at 1: the max
        assertEquals(2.5, Thresholding.quantile(new float[] {4, 1, 3, 2}, 0.5), 1e-12);
        float[] ten = new float[10];
        for (int i = 0; i < 10; i++) {
            ten[9 - i] = i;
        }
        assertEquals(8.955, Thresholding.quantile(ten.clone(), 0.995), 1e-9);
        assertEquals(9, Thresholding.quantile(ten.clone(), 1), 0);
        assertEquals(7, Thresholding.quantile(new float[] {7}, 0.3), 0);
        assertTrue(Double.isNaN(Thresholding.quantile(new float[] {1, Float.NaN}, 0.5)));
    }

    @Test
    void clipAndDynamicThresholdingMatchTheirFormulas() {
        int rows = 5;
        int cols = 37;
        float[] d = new float[rows * cols];
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) (Philox.normal(3, 0, i) * (i / cols + 0.2) * 1.3);   // row r has scale ~ 1.3 (r + 0.2)
        }
        float[] clipped = d.clone();
        Thresholding.clip(1.5).apply(clipped, rows, cols);
        for (int i = 0; i < d.length; i++) {
            assertEquals(Math.min(Math.max(d[i], -1.5f), 1.5f), clipped[i], 0, "clip at " + i);
        }
        double p = 0.9;
        double max = 2.5;
        float[] dyn = d.clone();
        Thresholding.dynamic(p, max).apply(dyn, rows, cols);
        for (int r = 0; r < rows; r++) {
            double[] abs = new double[cols];
            for (int j = 0; j < cols; j++) {
                abs[j] = Math.abs((double) d[r * cols + j]);
            }
            Arrays.sort(abs);
            double pos = p * (cols - 1);
            int lo = (int) Math.floor(pos);
            double q = abs[lo] + (abs[lo + 1] - abs[lo]) * (pos - lo);
            double s = Math.min(Math.max(q, 1), max);
            for (int j = 0; j < cols; j++) {
                double want = Math.min(Math.max(d[r * cols + j], -s), s) / s;
                assertEquals(want, dyn[r * cols + j], 1e-6 * Math.max(1, Math.abs(want)), "row " + r + ", col " + j);
            }
        }
        // the first row lies inside ±1 at its 90 % quantile: s = 1, only values beyond ±1 are touched
        float[] small = {0.1f, -0.5f, 0.9f, 3f};
        Thresholding.dynamic(0.5, 4).apply(small, 1, 4);
        assertArrayEquals(new float[] {0.1f, -0.5f, 0.9f, 1f}, small);
        assertThrows(IllegalArgumentException.class, () -> Thresholding.clip(1).apply(new float[5], 2, 3));
    }

    @Test
    void parsesTheCliSpellingAndRefusesBadValues() {
        assertNull(Thresholding.parse("none"));
        assertEquals(Thresholding.clip(1), Thresholding.parse("clip"));
        assertEquals(Thresholding.clip(2.5), Thresholding.parse("CLIP:2.5"));
        assertEquals(Thresholding.dynamic(0.995, 1.5), Thresholding.parse("dynamic"));
        assertEquals(Thresholding.dynamic(0.9, 1.5), Thresholding.parse("dynamic:0.9"));
        assertEquals(Thresholding.dynamic(0.9, 3), Thresholding.parse("dynamic:0.9:3"));
        assertEquals("dynamic:0.9:3", Thresholding.parse("dynamic:0.9:3").toString());
        assertEquals("clip:1", Thresholding.clip(1).toString());
        IllegalArgumentException nan = assertThrows(IllegalArgumentException.class,
                () -> Thresholding.parse("clip:NaN"));
        assertTrue(nan.getMessage().contains("finite"), nan.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Thresholding.clip(1).apply(new float[0], -1, 0));
        for (String bad : new String[] {"clip:0", "clip:-1", "clip:NaN", "clip:1e-50", "clip:x", "clip:1:2",
                                        "dynamic:0",
                                        "dynamic:1.5", "dynamic:0.9:0.5", "dynamic:0.9:Infinity", "none:1", "static",
                                        ""}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Thresholding.parse(bad),
                    bad);
            assertTrue(e.getMessage().contains("'" + bad + "'"), e.getMessage());
        }
    }

    /**
     * One DDIM step (η = 0) of an ε-model with guidance, thresholded: {@code g = u + w(c − u)},
     * {@code D = clamp((x − σ_t g)/α_t, ±r)}, {@code x_s = α_s D + σ_s (x − α_t D)/σ_t}.
     */
    @Test
    void aThresholdedStepUsesTheClampedDenoisedPrediction() {
        VpSchedule vp = VpSchedule.song2021();
        SamplingGrid grid = SamplingGrid.ofTimes(vp, 0.9, 0.6);
        Level t = grid.level(0);
        Level s = grid.level(1);
        int b = 3;
        int d = 8;
        float[] x0 = new float[b * d];
        for (int i = 0; i < x0.length; i++) {
            x0[i] = (float) (2 * Philox.normal(9, 1, i));
        }
        // the model: ε̂ = 0.3 x (conditional), −0.2 x (unconditional), so D = (1 − σ·g/x)·x/α exceeds ±1 often
        Denoiser model = (xt, levels, condition, out) -> {
            float[] v = xt.toFloatArray();
            float k = condition.toFloatArray()[0] > 0 ? 0.3f : -0.2f;
            for (int i = 0; i < v.length; i++) {
                v[i] *= k;
            }
            out.copyFrom(v);
        };
        double w = 2.5;
        for (Thresholding th : new Thresholding[] {Thresholding.clip(1), Thresholding.dynamic(0.8, 2)}) {
            float[] got;
            try (TensorScope scope = TensorScope.open()) {
                Tensor cond = backend.fromArray(scope, new float[] {1, 1, 1}, b, 1);
                Tensor uncond = backend.fromArray(scope, new float[] {-1, -1, -1}, b, 1);
                try (SamplerContext ctx = SamplerContext.builder(backend, model, Prediction.EPSILON)
                        .condition(cond).guidance(Guidance.of(w), uncond).thresholding(th).build()) {
                    Tensor x = backend.fromArray(scope, x0, b, d);
                    ctx.sample(Samplers.ddim(0), x, grid);
                    got = x.toFloatArray();
                }
            }
            float[] dn = new float[b * d];
            for (int i = 0; i < dn.length; i++) {
                double g = -0.2 * x0[i] + w * (0.3 * x0[i] - -0.2 * x0[i]);
                dn[i] = (float) ((x0[i] - t.sigma() * g) / t.alpha());
            }
            int outside = 0;
            for (float v : dn) {
                outside += Math.abs(v) > 1 ? 1 : 0;
            }
            assertTrue(outside > 4, "the case exercises the threshold: " + outside + " values beyond ±1");
            th.apply(dn, b, d);
            for (int i = 0; i < got.length; i++) {
                double want = s.alpha() * dn[i] + s.sigma() * (x0[i] - t.alpha() * dn[i]) / t.sigma();
                assertEquals(want, got[i], 2e-5 * Math.max(1, Math.abs(want)), th + " at " + i);
            }
        }
    }

    @Test
    void withoutThresholdingNothingChanges() {
        // a model whose D stays inside ±1: clip(1) leaves the run as it is (up to the rounding of the extra pass)
        VpSchedule vp = VpSchedule.song2021();
        SamplingGrid grid = SamplingGrid.ofTimes(vp, 0.7, 0.4, 0.1);
        Denoiser model = (xt, levels, condition, out) -> backend.fill(out, 0f);   // ε̂ = 0: D = x/α
        float[] a = run(model, grid, null);
        float[] c = run(model, grid, Thresholding.clip(1));
        for (int i = 0; i < a.length; i++) {
            assertEquals(a[i], c[i], 1e-6 * Math.max(1, Math.abs(a[i])), "element " + i);
        }
    }

    private static float[] run(Denoiser model, SamplingGrid grid, Thresholding th) {
        try (TensorScope scope = TensorScope.open();
             SamplerContext ctx = SamplerContext.builder(backend, model, Prediction.EPSILON).thresholding(th)
                     .build()) {
            float[] init = new float[2 * 5];
            for (int i = 0; i < init.length; i++) {
                init[i] = (float) (0.02 * Philox.normal(1, 2, i));
            }
            Tensor x = backend.fromArray(scope, init, 2, 5);
            ctx.sample(Samplers.dpmSolverPp2m(), x, grid);
            return x.toFloatArray();
        }
    }
}
