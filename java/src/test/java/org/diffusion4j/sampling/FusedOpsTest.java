package org.diffusion4j.sampling;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.cpu.CpuDiffusionOps;
import org.diffusion4j.random.Philox;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused sampler step and noise injection of {@link CpuDiffusionOps} against (1) the same computation composed
 * from unfused Backend ops ({@link ComposedDiffusionOps}) and (2) a float64 oracle, on odd shapes and on a batch
 * large enough to cross chunk boundaries and run on the pool; outputs poisoned with NaN first.
 */
class FusedOpsTest {

    private static Backend backend;
    private static CpuDiffusionOps fused;
    private static CpuDiffusionOps fused1;
    private static ComposedDiffusionOps composed;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
        fused = new CpuDiffusionOps(backend, 2);
        fused1 = new CpuDiffusionOps(backend, 1);
        composed = new ComposedDiffusionOps(backend);
    }

    @AfterAll
    static void tearDown() {
        fused.close();
        fused1.close();
        backend.close();
    }

    private static float[] randn(long seed, int n, float scale, float shift) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = Philox.normal(seed, 99, i) * scale + shift;
        }
        return v;
    }

    private static double[] coef(long seed, int batch, boolean present) {
        double[] c = new double[batch];
        for (int b = 0; b < batch; b++) {
            c[b] = present ? 0.25 + Philox.uniform(seed, 5, b) : 0.0;
        }
        return c;
    }

    /** One configuration of a step. */
    private record Case(long[] shape, boolean guided, double rescale, boolean readHist, boolean writeHist,
                        boolean noise, boolean separateIn, boolean inPlace) {
        @Override
        public String toString() {
            return "Case" + java.util.Arrays.toString(shape) + "[guided=" + guided + ", rescale=" + rescale
                    + ", readHist=" + readHist + ", writeHist=" + writeHist + ", noise=" + noise + ", separateIn="
                    + separateIn + ", inPlace=" + inPlace + "]";
        }
    }

    private static List<Case> cases() {
        List<Case> cs = new ArrayList<>();
        long[][] shapes = {{3, 5, 7}, {1, 1}, {2, 40_001}, {5, 3, 2, 3}};
        for (long[] shape : shapes) {
            for (int m = 0; m < 32; m++) {
                boolean guided = (m & 1) != 0;
                double rescale = (m & 2) != 0 ? 0.7 : 0.0;
                boolean hist = (m & 4) != 0;
                boolean noise = (m & 8) != 0;
                boolean sep = (m & 16) != 0;
                cs.add(new Case(shape, guided, rescale, hist, hist || sep, noise, sep, !sep));
            }
        }
        return cs;
    }

    /** Runs one case on {@code ops}; returns {xOut, histOut}. */
    private static float[][] run(DiffusionOps ops, Case k, FusedStep p, float[][] in) {
        try (TensorScope scope = TensorScope.open()) {
            long[] shape = k.shape();
            Tensor x = backend.fromArray(scope, in[0], shape);
            Tensor xIn = k.separateIn() ? backend.fromArray(scope, in[1], shape) : x;
            Tensor cond = backend.fromArray(scope, in[2], shape);
            Tensor uncond = k.guided() ? backend.fromArray(scope, in[3], shape) : null;
            Tensor hist = k.readHist() ? backend.fromArray(scope, in[4], shape) : null;
            Tensor out = k.inPlace() ? x : backend.empty(scope, DType.F32, shape);
            if (!k.inPlace()) {
                backend.fill(out, Float.NaN);
            }
            Tensor histOut = null;
            if (k.writeHist()) {
                histOut = hist != null ? hist : backend.empty(scope, DType.F32, shape);
                if (hist == null) {
                    backend.fill(histOut, Float.NaN);
                }
            }
            ops.samplerStep(p, x, xIn, cond, uncond, hist, out, histOut);
            return new float[][] {out.toFloatArray(), histOut == null ? null : histOut.toFloatArray()};
        }
    }

    /** The float64 oracle of one case (same coefficient rounding to float as the op). */
    private static double[][] oracle(Case k, FusedStep p, float[][] in, int batch, int n) {
        double[] out = new double[batch * n];
        double[] hist = new double[batch * n];
        double[] outScale = new double[batch * n];
        double[] histScale = new double[batch * n];
        NoiseSeeds seeds = p.seeds();
        for (int b = 0; b < batch; b++) {
            double f = 1.0;
            double w = (float) (p.guidance() - 1.0);
            if (k.guided() && k.rescale() != 0) {
                double[] c = new double[n];
                double[] g = new double[n];
                for (int j = 0; j < n; j++) {
                    int i = b * n + j;
                    c[j] = in[2][i];
                    g[j] = in[2][i] + w * ((double) in[2][i] - in[3][i]);
                }
                f = FusedMath.rescaleFactor(k.rescale(), var(c), var(g));
            }
            for (int j = 0; j < n; j++) {
                int i = b * n + j;
                double c = in[2][i];
                double g = k.guided() ? c + w * (c - in[3][i]) : c;
                g *= (float) f;
                double x = in[0][i];
                double xi = k.separateIn() ? in[1][i] : x;
                double h = k.readHist() ? in[4][i] : 0;
                double z = k.noise() ? seeds.normal(b, n, p.draw(), j) : 0;
                hist[i] = (float) p.ka()[b] * xi + (float) p.kb()[b] * g;
                histScale[i] = Math.abs((float) p.ka()[b] * xi) + Math.abs((float) p.kb()[b] * g);
                out[i] = (float) p.ax()[b] * x + (float) p.ai()[b] * xi + (float) p.ag()[b] * g
                        + (float) p.ah()[b] * h + (float) p.az()[b] * z;
                outScale[i] = Math.abs((float) p.ax()[b] * x) + Math.abs((float) p.ai()[b] * xi)
                        + Math.abs((float) p.ag()[b] * g) + Math.abs((float) p.ah()[b] * h)
                        + Math.abs((float) p.az()[b] * z);
            }
        }
        return new double[][] {out, hist, outScale, histScale};
    }

    private static double var(double[] v) {
        double m = 0;
        for (double x : v) {
            m += x / v.length;
        }
        double s = 0;
        for (double x : v) {
            s += (x - m) * (x - m);
        }
        return s / v.length;
    }

    /** {@code ‖a − ref‖/‖scale‖}, {@code scale} the sum of the terms' magnitudes (no cancellation blow-up). */
    private static double relErr(float[] a, double[] ref, double[] scale) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < a.length; i++) {
            num += (a[i] - ref[i]) * (a[i] - ref[i]);
            den += scale[i] * scale[i];
        }
        return Math.sqrt(num / den);
    }

    @Test
    void fusedStepEqualsComposedAndOracle() {
        int seed = 0;
        double worstComposed = 0;
        double worstOracle = 0;
        for (Case k : cases()) {
            seed++;
            int batch = (int) k.shape()[0];
            int numel = 1;
            for (long d : k.shape()) {
                numel *= (int) d;
            }
            int n = numel / batch;
            float[][] in = {randn(seed, numel, 1.3f, 0.2f), randn(seed + 1000, numel, 0.9f, -0.1f),
                    randn(seed + 2000, numel, 1.0f, 0.3f), randn(seed + 3000, numel, 0.8f, -0.2f),
                    randn(seed + 4000, numel, 1.1f, 0.0f)};
            FusedStep p = new FusedStep(coef(seed, batch, true), coef(seed + 1, batch, k.separateIn()),
                    coef(seed + 2, batch, true), coef(seed + 3, batch, k.readHist()), coef(seed + 4, batch, k.noise()),
                    coef(seed + 5, batch, true), coef(seed + 6, batch, true), 4.5, k.rescale(),
                    NoiseSeeds.batch(seed, 17, 3, batch), 2);
            float[][] f = run(fused, k, p, in);
            float[][] c = run(composed, k, p, in);
            double[][] o = oracle(k, p, in, batch, n);
            double ec = GaussianOracle.relErr(f[0], c[0]);
            double eo = relErr(f[0], o[0], o[2]);
            assertTrue(ec <= 1e-6, k + ": fused vs composed x " + ec);
            assertTrue(eo <= 1e-6, k + ": fused vs float64 x " + eo);
            if (k.writeHist()) {
                assertTrue(GaussianOracle.relErr(f[1], c[1]) <= 1e-6, k + ": history vs composed");
                assertTrue(relErr(f[1], o[1], o[3]) <= 1e-6, k + ": history vs float64");
            }
            worstComposed = Math.max(worstComposed, ec);
            worstOracle = Math.max(worstOracle, eo);
        }
        System.out.printf("fused step: worst rel err vs composed %.2e, vs float64 %.2e%n", worstComposed, worstOracle);
    }

    @Test
    void fusedStepIsThreadCountInvariant() {
        for (Case k : cases()) {
            if (k.shape()[1] < 1000 || !k.guided()) {
                continue;
            }
            int batch = (int) k.shape()[0];
            int numel = (int) (k.shape()[0] * k.shape()[1]);
            float[][] in = {randn(1, numel, 1, 0), randn(2, numel, 1, 0), randn(3, numel, 1, 0),
                    randn(4, numel, 1, 0), randn(5, numel, 1, 0)};
            FusedStep p = new FusedStep(coef(1, batch, true), coef(2, batch, k.separateIn()), coef(3, batch, true),
                    coef(4, batch, k.readHist()), coef(5, batch, k.noise()), coef(6, batch, true),
                    coef(7, batch, true), 7.5, k.rescale(), NoiseSeeds.batch(9, 0, 0, batch), 1);
            float[][] a = run(fused, k, p, in);
            float[][] b = run(fused1, k, p, in);
            assertArrayEquals(a[0], b[0], k.toString());
        }
    }

    @Test
    void guidanceOneIsTheConditionalOutputExactly() {
        int batch = 3;
        int n = 50;
        float[] c = randn(1, batch * n, 3, 1);
        float[] u = randn(2, batch * n, 5, -2);
        double[] zero = new double[batch];
        double[] one = {1, 1, 1};
        for (double phi : new double[] {0, 0.7}) {
            FusedStep p = new FusedStep(zero, zero, one, zero, zero, zero, one, 1.0, phi, null, 0);
            try (TensorScope scope = TensorScope.open()) {
                Tensor x = backend.fromArray(scope, randn(3, batch * n, 1, 0), batch, n);
                Tensor out = backend.empty(scope, DType.F32, batch, n);
                Tensor hist = backend.empty(scope, DType.F32, batch, n);
                fused.samplerStep(p, x, x, backend.fromArray(scope, c, batch, n),
                        backend.fromArray(scope, u, batch, n), null, out, hist);
                assertArrayEquals(c, out.toFloatArray(), "g = 1, phi = " + phi);
                assertArrayEquals(c, hist.toFloatArray(), "g = 1, phi = " + phi);
            }
        }
    }

    @Test
    void rescaleZeroIsPlainCfgExactly() {
        int batch = 2;
        int n = 300;
        float[] c = randn(1, batch * n, 3, 1);
        float[] u = randn(2, batch * n, 5, -2);
        float w = 6.0f;
        double[] zero = new double[batch];
        double[] one = {1, 1};
        FusedStep p = new FusedStep(zero, zero, one, zero, zero, zero, one, w, 0.0, null, 0);
        try (TensorScope scope = TensorScope.open()) {
            Tensor x = backend.zeros(scope, DType.F32, batch, n);
            Tensor out = backend.empty(scope, DType.F32, batch, n);
            fused.samplerStep(p, x, x, backend.fromArray(scope, c, batch, n), backend.fromArray(scope, u, batch, n),
                    null, out, null);
            float[] got = out.toFloatArray();
            for (int i = 0; i < got.length; i++) {
                assertEquals(c[i] + (w - 1) * (c[i] - u[i]), got[i], 0.0f, "element " + i);
                assertEquals(u[i] + w * (c[i] - u[i]), got[i], 1e-5f * Math.abs(w * (c[i] - u[i])) + 1e-5f);
            }
        }
    }

    @Test
    void rescaleMatchesLinEtAlFormula() {
        // φ·g·std(c)/std(g) + (1 − φ)·g per sample (Lin et al. 2023, §3.4; diffusers rescale_noise_cfg, unbiased std)
        int batch = 2;
        int n = 1000;
        float[] c = randn(1, batch * n, 1, 0.5f);
        float[] u = randn(2, batch * n, 1.5f, 0);
        double w = 7.5;
        double phi = 0.7;
        double[] zero = new double[batch];
        double[] one = {1, 1};
        FusedStep p = new FusedStep(zero, zero, one, zero, zero, zero, one, w, phi, null, 0);
        try (TensorScope scope = TensorScope.open()) {
            Tensor x = backend.zeros(scope, DType.F32, batch, n);
            Tensor out = backend.empty(scope, DType.F32, batch, n);
            fused.samplerStep(p, x, x, backend.fromArray(scope, c, batch, n), backend.fromArray(scope, u, batch, n),
                    null, out, null);
            float[] got = out.toFloatArray();
            for (int b = 0; b < batch; b++) {
                double[] cc = new double[n];
                double[] gg = new double[n];
                for (int j = 0; j < n; j++) {
                    cc[j] = c[b * n + j];
                    gg[j] = u[b * n + j] + w * (c[b * n + j] - u[b * n + j]);
                }
                double ratio = Math.sqrt(unbiasedVar(cc) / unbiasedVar(gg));
                for (int j = 0; j < n; j++) {
                    double want = phi * gg[j] * ratio + (1 - phi) * gg[j];
                    assertEquals(want, got[b * n + j], 2e-6 * (1 + Math.abs(want)), "sample " + b + " elem " + j);
                }
            }
        }
    }

    private static double unbiasedVar(double[] v) {
        return var(v) * v.length / (v.length - 1);
    }

    @Test
    void scaleAddNoiseUsesPhiloxAndSkipsX() {
        int batch = 3;
        int n = 20_000;
        NoiseSeeds seeds = NoiseSeeds.batch(42, 10, 0, batch);
        try (TensorScope scope = TensorScope.open()) {
            Tensor x = backend.empty(scope, DType.F32, batch, n);
            backend.fill(x, Float.NaN);                                        // not read when scale = 0
            fused.scaleAddNoise(new double[batch], new double[] {1, 1, 1}, seeds, 0, x, x);
            Tensor ref = backend.empty(scope, DType.F32, batch, n);
            backend.randn(ref, 42, 10);                                        // ids 0..B−1: exactly randn
            assertArrayEquals(ref.toFloatArray(), x.toFloatArray());
            float[] before = x.toFloatArray();
            double[] a = {0.5, 2, -1};
            double[] s = {0.25, 0, 3};
            Tensor out = backend.empty(scope, DType.F32, batch, n);
            fused.scaleAddNoise(a, s, seeds, 4, x, out);
            Tensor out2 = backend.empty(scope, DType.F32, batch, n);
            composed.scaleAddNoise(a, s, seeds, 4, x, out2);
            float[] got = out.toFloatArray();
            assertArrayEquals(out2.toFloatArray(), got);
            for (int b = 0; b < batch; b++) {
                for (int j = 0; j < n; j += 997) {
                    float want = (float) a[b] * before[b * n + j] + (float) s[b] * seeds.normal(b, n, 4, j);
                    assertEquals(want, got[b * n + j], 0f);
                }
            }
        }
    }

    @Test
    void argumentsAreChecked() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor x = backend.zeros(scope, DType.F32, 2, 3);
            Tensor wrong = backend.zeros(scope, DType.F32, 2, 4);
            double[] z2 = new double[2];
            double[] o2 = {1, 1};
            FusedStep p = new FusedStep(o2, z2, o2, z2, z2, z2, o2, 1, 0, null, 0);
            assertThrows(IllegalArgumentException.class, () -> fused.samplerStep(p, x, x, wrong, null, null, x, null));
            FusedStep readsHist = new FusedStep(o2, z2, o2, o2, z2, z2, o2, 1, 0, null, 0);
            assertThrows(IllegalArgumentException.class,
                    () -> fused.samplerStep(readsHist, x, x, x, null, null, x, null));
            assertThrows(IllegalArgumentException.class,
                    () -> new FusedStep(o2, z2, o2, z2, o2, z2, o2, 1, 0, null, 0));   // noise without seeds
            assertThrows(IllegalArgumentException.class,
                    () -> new FusedStep(o2, z2, o2, z2, z2, z2, o2, 1, 1.5, null, 0)); // φ > 1
            FusedStep three = new FusedStep(new double[3], new double[3], new double[3], new double[3],
                    new double[3], new double[3], new double[3], 1, 0, null, 0);
            assertThrows(IllegalArgumentException.class, () -> fused.samplerStep(three, x, x, x, null, null, x, null));
        }
    }
}
