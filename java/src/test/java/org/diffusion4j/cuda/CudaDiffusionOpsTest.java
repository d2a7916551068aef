package org.diffusion4j.cuda;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.cpu.CpuDiffusionOps;
import org.diffusion4j.sampling.DiffusionOps;
import org.diffusion4j.sampling.FusedStep;
import org.diffusion4j.sampling.NoiseSeeds;
import org.diffusion4j.sampling.NoisingCoefficients;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * {@link CudaDiffusionOps} against {@link CpuDiffusionOps} (the CPU one-pass reference) on random odd shapes
 * (n % 4 ≠ 0: the scalar path with a Philox phase, n % 4 = 0: the float4 path), B = 1 and B &gt; 1, outputs
 * poisoned with NaN first. Noise and every non-rescaled result must be bit-identical (same FusedMath operations,
 * same Philox numbers); the rescaled step within 1e-6 relative (its double sums are added in another order).
 */
@Tag("cuda")
class CudaDiffusionOpsTest {

    private static Backend gpu;
    private static CpuBackend cpu;
    private static CpuDiffusionOps cpuOps;
    private static CudaDiffusionOps gpuOps;

    private static final long[][] SHAPES = {{1, 3, 5, 7}, {3, 3, 5, 7}, {2, 4, 8, 8}, {1, 4, 16, 16}, {5, 2, 3},
        {11, 1, 1}, {2, 3, 77, 101}, {600, 3, 4, 1}};

    @BeforeAll
    static void start() {
        CudaTestSupport.assumeDevice();
        gpu = CudaRuntime.createBackend(0);
        cpu = new CpuBackend(2);
        cpuOps = new CpuDiffusionOps(cpu);
        gpuOps = new CudaDiffusionOps(gpu);
    }

    @AfterAll
    static void stop() throws Exception {
        CudaTestSupport.closeAll(gpuOps, cpuOps, cpu, gpu);
    }

    private static double[] coef(SplittableRandom r, int b, double zeroProb) {
        double[] v = new double[b];
        for (int i = 0; i < b; i++) {
            v[i] = r.nextDouble() < zeroProb ? 0.0 : r.nextDouble(-2, 2);
        }
        return v;
    }

    private static NoiseSeeds seeds(SplittableRandom r, int b) {
        if (r.nextBoolean()) {
            return NoiseSeeds.batch(r.nextLong(), r.nextLong(1000), r.nextLong(1000), b);
        }
        long[] keys = new long[b];
        long[] ids = new long[b];
        for (int i = 0; i < b; i++) {
            keys[i] = r.nextLong();
            ids[i] = r.nextLong(1 << 20);
        }
        return NoiseSeeds.of(keys, ids, r.nextLong());
    }

    /** The pair (cpu tensor, gpu tensor) holding the same random values, or NaN-poisoned outputs. */
    private static Tensor[] pair(TensorScope s, long[] shape, float[] v) {
        Tensor c = cpu.fromArray(s, v, shape);
        Tensor g = gpu.fromArray(s, v, shape);
        return new Tensor[] {c, g};
    }

    private static float[] values(SplittableRandom r, long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return CudaTestSupport.uniform(r, n, -3, 3);
    }

    private static float[] nan(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        float[] v = new float[Math.toIntExact(n)];
        Arrays.fill(v, Float.NaN);
        return v;
    }

    @Test
    void forBackendPicksTheFusedKernels() {
        assertInstanceOf(CudaDiffusionOps.class, DiffusionOps.forBackend(gpu));
    }

    @Test
    void forwardNoiseIsBitwiseTheCpu() {
        for (long[] shape : SHAPES) {
            for (double offset : new double[] {0.0, 0.1}) {
                for (boolean withEps : new boolean[] {true, false}) {
                    String name = "forwardNoise " + Arrays.toString(shape) + " offset " + offset + " eps " + withEps;
                    SplittableRandom r = CudaTestSupport.random(name);
                    int b = (int) shape[0];
                    NoisingCoefficients k = new NoisingCoefficients(coef(r, b, 0), coef(r, b, 0), coef(r, b, 0.2),
                            coef(r, b, 0.2));
                    NoiseSeeds sd = seeds(r, b);
                    try (TensorScope s = TensorScope.open()) {
                        Tensor[] x0 = pair(s, shape, values(r, shape));
                        Tensor[] xt = pair(s, shape, nan(shape));
                        Tensor[] tg = pair(s, shape, nan(shape));
                        Tensor[] ep = withEps ? pair(s, shape, nan(shape)) : new Tensor[2];
                        cpuOps.forwardNoise(k, sd, offset, x0[0], xt[0], tg[0], ep[0]);
                        gpuOps.forwardNoise(k, sd, offset, x0[1], xt[1], tg[1], ep[1]);
                        String seed = CudaTestSupport.seedOf(name);
                        String sh = Arrays.toString(shape);
                        CudaTestSupport.assertBitwise("forwardNoise xt", sh, xt[1].toFloatArray(), xt[0].toFloatArray(), seed);
                        CudaTestSupport.assertBitwise("forwardNoise target", sh, tg[1].toFloatArray(), tg[0].toFloatArray(), seed);
                        if (withEps) {
                            CudaTestSupport.assertBitwise("forwardNoise eps", sh, ep[1].toFloatArray(), ep[0].toFloatArray(), seed);
                        }
                    }
                }
            }
        }
    }

    @Test
    void samplerStepMatchesTheCpu() {
        for (long[] shape : SHAPES) {
            for (int mode = 0; mode < 4; mode++) { // 0 unguided, 1 guided, 2 guided + rescale, 3 rescale + in-place
                String name = "samplerStep " + Arrays.toString(shape) + " mode " + mode;
                SplittableRandom r = CudaTestSupport.random(name);
                int b = (int) shape[0];
                boolean guided = mode >= 1;
                boolean rescale = mode >= 2;
                boolean inPlace = mode == 3;
                double[] az = coef(r, b, 0.5);
                boolean noise = Arrays.stream(az).anyMatch(v -> v != 0);
                FusedStep p = new FusedStep(coef(r, b, 0.3), coef(r, b, 0.3), coef(r, b, 0.2), coef(r, b, 0.4), az,
                        coef(r, b, 0.3), coef(r, b, 0.2), r.nextDouble(1, 9), rescale ? r.nextDouble(0.1, 1) : 0.0,
                        noise || r.nextBoolean() ? seeds(r, b) : null, r.nextLong(100));
                try (TensorScope s = TensorScope.open()) {
                    Tensor[] x = pair(s, shape, values(r, shape));
                    Tensor[] xIn = r.nextBoolean() ? x : pair(s, shape, values(r, shape));
                    Tensor[] c = pair(s, shape, values(r, shape));
                    Tensor[] u = guided ? pair(s, shape, values(r, shape)) : new Tensor[2];
                    Tensor[] h = pair(s, shape, values(r, shape));
                    Tensor[] xo = inPlace ? x : pair(s, shape, nan(shape));
                    Tensor[] ho = inPlace ? h : (r.nextBoolean() ? pair(s, shape, nan(shape)) : new Tensor[2]);
                    if (inPlace && xIn == x) {
                        xIn = pair(s, shape, values(r, shape));
                    }
                    cpuOps.samplerStep(p, x[0], xIn[0], c[0], u[0], h[0], xo[0], ho[0]);
                    gpuOps.samplerStep(p, x[1], xIn[1], c[1], u[1], h[1], xo[1], ho[1]);
                    String seed = CudaTestSupport.seedOf(name);
                    String sh = Arrays.toString(shape) + " mode " + mode;
                    if (rescale) {
                        CudaTestSupport.assertClose("samplerStep x (rescale)", sh, xo[1].toFloatArray(),
                                xo[0].toFloatArray(), 1e-6, seed);
                        if (ho[0] != null) {
                            CudaTestSupport.assertClose("samplerStep hist (rescale)", sh, ho[1].toFloatArray(),
                                    ho[0].toFloatArray(), 1e-6, seed);
                        }
                    } else {
                        CudaTestSupport.assertBitwise("samplerStep x", sh, xo[1].toFloatArray(), xo[0].toFloatArray(), seed);
                        if (ho[0] != null) {
                            CudaTestSupport.assertBitwise("samplerStep hist", sh, ho[1].toFloatArray(),
                                    ho[0].toFloatArray(), seed);
                        }
                    }
                }
            }
        }
    }

    @Test
    void scaleAddNoiseIsBitwiseTheCpu() {
        for (long[] shape : SHAPES) {
            String name = "scaleAddNoise " + Arrays.toString(shape);
            SplittableRandom r = CudaTestSupport.random(name);
            int b = (int) shape[0];
            double[] a = coef(r, b, 0.4);
            double[] sn = coef(r, b, 0.3);
            NoiseSeeds sd = seeds(r, b);
            long draw = r.nextLong(50);
            try (TensorScope s = TensorScope.open()) {
                Tensor[] x = pair(s, shape, values(r, shape));
                Tensor[] o = pair(s, shape, nan(shape));
                cpuOps.scaleAddNoise(a, sn, sd, draw, x[0], o[0]);
                gpuOps.scaleAddNoise(a, sn, sd, draw, x[1], o[1]);
                CudaTestSupport.assertBitwise("scaleAddNoise", Arrays.toString(shape), o[1].toFloatArray(),
                        o[0].toFloatArray(), CudaTestSupport.seedOf(name));
                // in place: out = x
                cpuOps.scaleAddNoise(a, sn, sd, draw + 1, x[0], x[0]);
                gpuOps.scaleAddNoise(a, sn, sd, draw + 1, x[1], x[1]);
                CudaTestSupport.assertBitwise("scaleAddNoise in place", Arrays.toString(shape), x[1].toFloatArray(),
                        x[0].toFloatArray(), CudaTestSupport.seedOf(name));
            }
        }
    }

    @Test
    void emptyDevicePrecisionOfTheCpuDoesNotHideAGpuError() {
        // Sanity: the GPU result differs from a different draw (a test that could not fail would pass here too).
        try (TensorScope s = TensorScope.open()) {
            long[] shape = {2, 3, 5};
            NoiseSeeds sd = NoiseSeeds.batch(1, 2, 0, 2);
            Tensor x = gpu.empty(s, DType.F32, shape);
            Tensor y = gpu.empty(s, DType.F32, shape);
            gpuOps.scaleAddNoise(new double[] {0, 0}, new double[] {1, 1}, sd, 0, x, x);
            gpuOps.scaleAddNoise(new double[] {0, 0}, new double[] {1, 1}, sd, 1, y, y);
            if (Arrays.equals(x.toFloatArray(), y.toFloatArray())) {
                throw new AssertionError("two draws gave the same noise");
            }
        }
    }
}
