package org.diffusion4j.sampling;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.cpu.CpuDiffusionOps;
import org.diffusion4j.cuda.CudaRuntime;
import org.diffusion4j.random.Philox;
import org.diffusion4j.schedule.CosineSchedule;
import org.diffusion4j.schedule.DiscreteVpSchedule;
import org.diffusion4j.schedule.EdmSchedule;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.SigmaGrids;
import org.diffusion4j.schedule.TimestepSpacing;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Device;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.diffusion4j.training.ForwardNoising;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The sampling path on CUDA: {@link DiffusionOps#forBackend} gives {@link ComposedDiffusionOps} there (until the
 * fused kernels exist), which must agree with the CPU's fused ops; whole sampler runs with guidance agree too.
 * Skipped without a usable device, failed instead with {@code -Dd4j.cuda.required=true}
 * ({@code benchmarks/gpu/check.sh}).
 */
@Tag("cuda")
class CudaSamplingTest {

    private static Backend gpu;
    private static Backend cpu;
    private static CpuDiffusionOps cpuOps;

    @BeforeAll
    static void start() {
        CudaRuntime.Status s = CudaRuntime.probe(0);
        if (!s.usable()) {
            if (Boolean.getBoolean("d4j.cuda.required")) {
                fail("CUDA is required here but device 0 is not usable: " + s.description());
            }
            Assumptions.abort("no CUDA device: " + s.description());
        }
        gpu = CudaRuntime.createBackend(0);
        cpu = new CpuBackend(2);
        cpuOps = new CpuDiffusionOps(cpu);
    }

    @AfterAll
    static void stop() {
        if (cpuOps != null) {
            cpuOps.close();
        }
        if (cpu != null) {
            cpu.close();
        }
        if (gpu != null) {
            gpu.close();
        }
    }

    private static float[] randn(long seed, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = Philox.normal(seed, 1, i);
        }
        return v;
    }

    @Test
    void composedStepOnCudaEqualsFusedCpu() {
        // The composed path (unfused Backend ops) stays a supported fallback; check it on the device too.
        DiffusionOps ops = new ComposedDiffusionOps(gpu);
        int batch = 3;
        int n = 5 * 4099;
        double[] ax = {0.9, 1.1, 0.3};
        double[] ai = {0.2, 0.0, 0.5};
        double[] ag = {0.7, 0.4, 1.2};
        double[] ah = {-0.3, 0.25, 0.0};
        double[] az = {0.1, 0.0, 0.6};
        double[] ka = {0.5, 1.5, 0.0};
        double[] kb = {1.0, -0.5, 1.0};
        FusedStep p = new FusedStep(ax, ai, ag, ah, az, ka, kb, 7.5, 0.7, NoiseSeeds.batch(3, 4, 10, batch), 2);
        float[][] in = new float[5][];
        for (int k = 0; k < 5; k++) {
            in[k] = randn(k, batch * n);
        }
        float[][] want = step(cpu, cpuOps, p, in, batch, n);
        float[][] got = step(gpu, ops, p, in, batch, n);
        double ex = GaussianOracle.relErr(got[0], want[0]);
        double eh = GaussianOracle.relErr(got[1], want[1]);
        System.out.printf("cuda composed step vs cpu fused: x %.2e, history %.2e%n", ex, eh);
        assertTrue(ex <= 1e-6 && eh <= 1e-6, "x " + ex + ", history " + eh);
    }

    private static float[][] step(Backend be, DiffusionOps ops, FusedStep p, float[][] in, int batch, int n) {
        try (TensorScope s = TensorScope.open()) {
            Tensor x = be.fromArray(s, in[0], batch, n);
            Tensor xIn = be.fromArray(s, in[1], batch, n);
            Tensor c = be.fromArray(s, in[2], batch, n);
            Tensor u = be.fromArray(s, in[3], batch, n);
            Tensor h = be.fromArray(s, in[4], batch, n);
            Tensor out = be.empty(s, DType.F32, batch, n);
            be.fill(out, Float.NaN);
            ops.samplerStep(p, x, xIn, c, u, h, out, h);
            return new float[][] {out.toFloatArray(), h.toFloatArray()};
        }
    }

    @Test
    void forwardNoisingOnCudaEqualsFusedCpu() {
        DiffusionOps ops = DiffusionOps.forBackend(gpu);
        int batch = 4;
        long[] shape = {batch, 3, 33, 17};
        int numel = batch * 3 * 33 * 17;
        float[] x0 = randn(9, numel);
        double[] t = {0.1, 0.4, 0.7, 0.99};
        ForwardNoising fn = new ForwardNoising(Prediction.V);
        NoiseSeeds seeds = NoiseSeeds.batch(5, 6, 0, batch);
        float[][] want = noise(cpu, cpuOps, fn, t, seeds, x0, shape);
        float[][] got = noise(gpu, ops, fn, t, seeds, x0, shape);
        assertArrayEquals(want[2], got[2], "eps bit-identical");
        try (TensorScope s = TensorScope.open()) {
            Tensor ref = gpu.empty(s, DType.F32, shape);
            gpu.randn(ref, 5, 6);
            assertArrayEquals(ref.toFloatArray(), got[2], "eps = CUDA randn");
        }
        assertTrue(GaussianOracle.relErr(got[0], want[0]) <= 1e-6);
        assertTrue(GaussianOracle.relErr(got[1], want[1]) <= 1e-6);
    }

    private static float[][] noise(Backend be, DiffusionOps ops, ForwardNoising fn, double[] t, NoiseSeeds seeds,
                                   float[] x0v, long[] shape) {
        try (TensorScope s = TensorScope.open()) {
            Tensor x0 = be.fromArray(s, x0v, shape);
            Tensor xt = be.empty(s, DType.F32, shape);
            Tensor tg = be.empty(s, DType.F32, shape);
            Tensor eps = be.empty(s, DType.F32, shape);
            fn.apply(ops, CosineSchedule.nicholDhariwal(), t, seeds, x0, xt, tg, eps, null);
            return new float[][] {xt.toFloatArray(), tg.toFloatArray(), eps.toFloatArray()};
        }
    }

    @Test
    void samplerRunsOnCudaMatchCpu() {
        GaussianOracle.Diagonal data = new GaussianOracle.Diagonal(new double[] {-0.5, 0.2, 0.9},
                new double[] {0.5, 0.8, 1.1});
        DiscreteVpSchedule lin = DiscreteVpSchedule.linear(1000);
        SamplingGrid vp = SamplingGrid.ofTimesteps(lin, TimestepSpacing.TRAILING.timesteps(1000, 20));
        SamplingGrid edm = SamplingGrid.ofSigmasVe(EdmSchedule.karras2022(),
                SigmaGrids.appendZero(SigmaGrids.karras(20, 0.002, 80, 7)));
        Object[][] runs = {{"dpmpp_2m", Samplers.dpmSolverPp2m(), vp}, {"dpmpp_2m_sde", Samplers.dpmSolverPp2mSde(1, 1), vp},
                {"dpmpp_3m_sde", Samplers.dpmSolverPp3mSde(1, 1), vp}, {"unipc", Samplers.uniPc(), vp},
                {"ddpm", Samplers.ddpm(Samplers.DdpmVariance.FIXED_SMALL), vp}, {"heun", Samplers.heun(), edm},
                {"euler_ancestral", Samplers.eulerAncestral(1, 1), edm}};
        for (Object[] r : runs) {
            float[] want = run(cpu, data, (Sampler) r[1], (SamplingGrid) r[2]);
            float[] got = run(gpu, data, (Sampler) r[1], (SamplingGrid) r[2]);
            double e = GaussianOracle.relErr(got, want);
            System.out.printf("cuda %s run (CFG 4, rescale 0.7) vs cpu: %.2e%n", r[0], e);
            assertTrue(e <= 1e-5, r[0] + ": " + e);
        }
    }

    /** Image-to-image from an input and RePaint inpainting on the device agree with the CPU. */
    @Test
    void imageToImageAndInpaintingOnCudaMatchCpu() {
        GaussianOracle.Diagonal data = new GaussianOracle.Diagonal(new double[] {-0.5, 0.2, 0.9},
                new double[] {0.5, 0.8, 1.1});
        SamplingGrid vp = SamplingGrid.ofTimesteps(DiscreteVpSchedule.linear(1000),
                TimestepSpacing.TRAILING.timesteps(1000, 20)).forStrength(0.6);
        float[][] result = new float[2][];
        Backend[] backends = {cpu, gpu};
        int batch = 8;
        int n = 3 * 1000;
        for (int k = 0; k < 2; k++) {
            Backend be = backends[k];
            float[] init = randn(31, batch * n);
            float[] mask = new float[batch * n];
            for (int i = 0; i < mask.length; i++) {
                mask[i] = (i / 7) % 2;
            }
            try (TensorScope s = TensorScope.open()) {
                Tensor in = be.fromArray(s, init, batch, n);
                try (SamplerContext ctx = SamplerContext.builder(be, data.model(Prediction.EPSILON), Prediction.EPSILON)
                        .noise(NoiseSeeds.batch(8, 0, 0, batch)).inpaint(in, be.fromArray(s, mask, batch, n))
                        .build()) {
                    Tensor x = be.empty(s, DType.F32, batch, n);
                    ctx.initialNoise(x, vp, in);
                    ctx.sample(Samplers.repaint(3, 4), x, vp);
                    result[k] = x.toFloatArray();
                }
            }
            for (int i = 0; i < mask.length; i++) {
                if (mask[i] == 0) {
                    assertTrue(result[k][i] == init[i], be.name() + ": kept element " + i);
                }
            }
        }
        double e = GaussianOracle.relErr(result[1], result[0]);
        System.out.printf("cuda image-to-image + repaint inpainting vs cpu: %.2e%n", e);
        assertTrue(e <= 1e-5, "cuda vs cpu: " + e);
    }

    /** Thresholded runs (x0 clipped, Imagen's dynamic thresholding) on the device agree with the CPU. */
    @Test
    void thresholdedRunsOnCudaMatchCpu() {
        GaussianOracle.Diagonal data = new GaussianOracle.Diagonal(new double[] {-0.5, 0.2, 0.9},
                new double[] {0.5, 0.8, 1.1});
        SamplingGrid vp = SamplingGrid.ofTimesteps(DiscreteVpSchedule.linear(1000),
                TimestepSpacing.TRAILING.timesteps(1000, 12));
        for (Thresholding th : new Thresholding[] {Thresholding.clip(1), Thresholding.dynamic(0.9, 1.5)}) {
            float[] want = run(cpu, data, Samplers.dpmSolverPp2m(), vp, th);
            float[] got = run(gpu, data, Samplers.dpmSolverPp2m(), vp, th);
            double e = GaussianOracle.relErr(got, want);
            System.out.printf("cuda dpmpp_2m thresholded %s vs cpu: %.2e%n", th, e);
            assertTrue(e <= 1e-5, th + ": " + e);
        }
    }

    private static float[] run(Backend be, GaussianOracle.Diagonal data, Sampler sampler, SamplingGrid grid) {
        return run(be, data, sampler, grid, null);
    }

    private static float[] run(Backend be, GaussianOracle.Diagonal data, Sampler sampler, SamplingGrid grid,
                               Thresholding threshold) {
        int batch = 8;
        Denoiser model = (xt, lv, cond, out) -> {
            float shift = cond.toFloatArray()[0];
            double[] mu = data.mu().clone();
            for (int i = 0; i < mu.length; i++) {
                mu[i] += shift;
            }
            new GaussianOracle.Diagonal(mu, data.s()).model(Prediction.EPSILON).predict(xt, lv, cond, out);
            assertTrue(xt.device().equals(be.device()) && lv.tTensor().device().equals(be.device()));
        };
        try (TensorScope s = TensorScope.open()) {
            Tensor cond = be.fromArray(s, new float[] {0.4f}, 1);
            Tensor uncond = be.fromArray(s, new float[] {-0.2f}, 1);
            try (SamplerContext ctx = SamplerContext.builder(be, model, Prediction.EPSILON).condition(cond)
                    .guidance(Guidance.of(4, 0.7), uncond).noise(NoiseSeeds.batch(8, 0, 0, batch))
                    .thresholding(threshold).build()) {
                Tensor x = be.empty(s, DType.F32, batch, 3 * 1000);
                ctx.initialNoise(x, grid);
                ctx.sample(sampler, x, grid);
                assertTrue(be.device().type() == Device.Type.CPU
                        || ctx.ops() instanceof org.diffusion4j.cuda.CudaDiffusionOps, () -> ctx.ops().getClass().getName());
                return x.toFloatArray();
            }
        }
    }
}
