package org.diffusion4j.cuda;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.cpu.CpuNnOps;
import org.diffusion4j.nn.Activation;
import org.diffusion4j.nn.AdamWStep;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@link CudaNnOps} against {@link CpuNnOps} (the CPU one-pass reference, itself tested against float64 oracles
 * and finite differences in {@code org.diffusion4j.nn}) on random odd shapes, outputs poisoned with NaN first.
 * AdamW, the gated residual and {@code df} must be bit-identical (same NnMath operations, no transcendental);
 * the activations within 1e-6 relative (the device's double {@code exp} may differ from Java's by an ulp that
 * the float rounding rarely shows); LayerNorm and {@code dGate} within 1e-5 relative (float64 sums added in
 * another fixed order). Per-sample operands are {@code [B, D]} column slices of a {@code [B, 3D]} tensor (row
 * stride 3D), and the whole parent is compared, so writes outside the slice would show.
 */
@Tag("cuda")
class CudaNnOpsTest {

    private static Backend gpu;
    private static CpuBackend cpu;
    private static CpuNnOps cpuOps;
    private static CudaNnOps gpuOps;

    /** [B, T, D] shapes: odd, D = 1, T = 1, D above the block size, B above one. */
    private static final long[][] SHAPES = {{1, 1, 7}, {3, 5, 7}, {2, 13, 1}, {4, 1, 33}, {2, 3, 257}, {5, 17, 96},
        {1, 2, 1031}, {7, 0, 5}};

    @BeforeAll
    static void start() {
        CudaTestSupport.assumeDevice();
        gpu = CudaRuntime.createBackend(0);
        cpu = new CpuBackend(2);
        cpuOps = new CpuNnOps(cpu);
        gpuOps = new CudaNnOps(gpu);
    }

    @AfterAll
    static void stop() throws Exception {
        CudaTestSupport.closeAll(gpuOps, cpuOps, cpu, gpu);
    }

    private static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** The pair (cpu tensor, gpu tensor) holding the same values. */
    private static Tensor[] pair(TensorScope s, float[] v, long... shape) {
        return new Tensor[] {cpu.fromArray(s, v, shape), gpu.fromArray(s, v, shape)};
    }

    private static Tensor[] nanPair(TensorScope s, long... shape) {
        float[] v = new float[Math.toIntExact(numel(shape))];
        Arrays.fill(v, Float.NaN);
        return pair(s, v, shape);
    }

    private static Tensor[] randomPair(TensorScope s, SplittableRandom r, double lo, double hi, long... shape) {
        return pair(s, CudaTestSupport.uniform(r, numel(shape), lo, hi), shape);
    }

    /** Columns [D, 2D) of a [B, 3D] pair: a per-sample operand with row stride 3D. */
    private static Tensor[] perSample(Tensor[] parent, long d) {
        return new Tensor[] {parent[0].slice(1, d, 2 * d), parent[1].slice(1, d, 2 * d)};
    }

    private static Tensor at(Tensor[] p, int i) {
        return p == null ? null : p[i];
    }

    @Test
    void forBackendPicksTheKernels() {
        try (NnOps ops = NnOps.forBackend(gpu)) {
            assertInstanceOf(CudaNnOps.class, ops);
        }
    }

    @Test
    void activationMatchesTheCpu() {
        for (long[] shape : SHAPES) {
            for (Activation act : Activation.values()) {
                for (int mode = 0; mode < 4; mode++) { // 0 plain, 1 bias + pre, 2 bias in place (out = x), 3 pre = x
                    String name = "activation " + act + " " + Arrays.toString(shape) + " mode " + mode;
                    SplittableRandom r = CudaTestSupport.random(name);
                    String seed = CudaTestSupport.seedOf(name);
                    String sh = Arrays.toString(shape);
                    try (TensorScope s = TensorScope.open()) {
                        Tensor[] x = randomPair(s, r, -12, 12, shape);
                        Tensor[] bias = mode == 1 || mode == 2 ? randomPair(s, r, -1, 1, shape[2]) : null;
                        Tensor[] pre = mode == 1 ? nanPair(s, shape) : mode == 3 ? x : null;
                        Tensor[] out = mode == 2 ? x : nanPair(s, shape);
                        for (int i = 0; i < 2; i++) {
                            (i == 0 ? cpuOps : gpuOps).activation(act, x[i], at(bias, i), at(pre, i), out[i]);
                        }
                        CudaTestSupport.assertClose("activation " + act, sh, out[1].toFloatArray(),
                                out[0].toFloatArray(), 1e-6, seed);
                        if (pre != null) {
                            CudaTestSupport.assertBitwise("activation pre " + act, sh, pre[1].toFloatArray(),
                                    pre[0].toFloatArray(), seed);
                        }
                    }
                }
            }
        }
    }

    @Test
    void activationBackwardMatchesTheCpu() {
        for (long[] shape : SHAPES) {
            for (Activation act : Activation.values()) {
                for (boolean inPlace : new boolean[] {false, true}) {
                    String name = "activationBackward " + act + " " + Arrays.toString(shape) + " " + inPlace;
                    SplittableRandom r = CudaTestSupport.random(name);
                    try (TensorScope s = TensorScope.open()) {
                        Tensor[] pre = randomPair(s, r, -12, 12, shape);
                        Tensor[] dy = randomPair(s, r, -2, 2, shape);
                        Tensor[] dx = inPlace ? dy : nanPair(s, shape);
                        cpuOps.activationBackward(act, pre[0], dy[0], dx[0]);
                        gpuOps.activationBackward(act, pre[1], dy[1], dx[1]);
                        CudaTestSupport.assertClose("activationBackward " + act, Arrays.toString(shape),
                                dx[1].toFloatArray(), dx[0].toFloatArray(), 1e-6, CudaTestSupport.seedOf(name));
                    }
                }
            }
        }
    }

    @Test
    void adamwIsBitwiseTheCpu() {
        for (long[] shape : SHAPES) {
            String name = "adamw " + Arrays.toString(shape);
            SplittableRandom r = CudaTestSupport.random(name);
            AdamWStep step = AdamWStep.of(r.nextDouble(1e-4, 1e-2), 0.9, 0.999, 1e-8, r.nextDouble(0, 0.1),
                    1 + r.nextInt(1000), r.nextDouble(0.5, 1.0));
            try (TensorScope s = TensorScope.open()) {
                Tensor[] p = randomPair(s, r, -1, 1, shape);
                Tensor[] g = randomPair(s, r, -1, 1, shape);
                Tensor[] m = randomPair(s, r, -0.1, 0.1, shape);
                Tensor[] v = randomPair(s, r, 0, 0.01, shape);
                for (int it = 0; it < 3; it++) {
                    cpuOps.adamw(step, p[0], g[0], m[0], v[0]);
                    gpuOps.adamw(step, p[1], g[1], m[1], v[1]);
                }
                String seed = CudaTestSupport.seedOf(name);
                String sh = Arrays.toString(shape);
                CudaTestSupport.assertBitwise("adamw param", sh, p[1].toFloatArray(), p[0].toFloatArray(), seed);
                CudaTestSupport.assertBitwise("adamw m", sh, m[1].toFloatArray(), m[0].toFloatArray(), seed);
                CudaTestSupport.assertBitwise("adamw v", sh, v[1].toFloatArray(), v[0].toFloatArray(), seed);
                CudaTestSupport.assertBitwise("adamw grad untouched", sh, g[1].toFloatArray(), g[0].toFloatArray(),
                        seed);
            }
        }
    }

    @Test
    void layerNormMatchesTheCpu() {
        for (long[] shape : SHAPES) {
            for (int mode = 0; mode < 6; mode++) { // bit 0 affine, bit 1 modulation; 4, 5: in place, gamma only
                String name = "layerNorm " + Arrays.toString(shape) + " mode " + mode;
                SplittableRandom r = CudaTestSupport.random(name);
                String seed = CudaTestSupport.seedOf(name);
                String sh = Arrays.toString(shape);
                long b = shape[0];
                long d = shape[2];
                boolean affine = (mode & 1) != 0 || mode >= 4;
                boolean modulated = (mode & 2) != 0;
                try (TensorScope s = TensorScope.open()) {
                    Tensor[] x = randomPair(s, r, -3 + 5 * mode, 3 + 5 * mode, shape);
                    Tensor[] gamma = affine ? randomPair(s, r, 0.5, 1.5, d) : null;
                    Tensor[] beta = affine && mode != 5 ? randomPair(s, r, -0.5, 0.5, d) : null;
                    Tensor[] shiftParent = randomPair(s, r, -0.5, 0.5, b, 3 * d);
                    Tensor[] scaleParent = randomPair(s, r, -0.5, 0.5, b, 3 * d);
                    Tensor[] shift = modulated ? perSample(shiftParent, d) : null;
                    Tensor[] scale = modulated || mode == 5 ? perSample(scaleParent, d) : null;
                    Tensor[] out = mode >= 4 ? x : nanPair(s, shape);
                    Tensor[] mean = nanPair(s, b, shape[1]);
                    Tensor[] rstd = nanPair(s, b * shape[1]);
                    float eps = 1e-5f;
                    for (int i = 0; i < 2; i++) {
                        (i == 0 ? cpuOps : gpuOps).layerNorm(x[i], at(gamma, i), at(beta, i), at(shift, i),
                                at(scale, i), eps, out[i], at(mean, i), at(rstd, i));
                    }
                    CudaTestSupport.assertClose("layerNorm out", sh, out[1].toFloatArray(), out[0].toFloatArray(),
                            1e-5, seed);
                    CudaTestSupport.assertClose("layerNorm mean", sh, mean[1].toFloatArray(),
                            mean[0].toFloatArray(), 1e-6, seed);
                    CudaTestSupport.assertClose("layerNorm rstd", sh, rstd[1].toFloatArray(),
                            rstd[0].toFloatArray(), 1e-6, seed);
                }
            }
        }
    }

    @Test
    void gatedResidualIsBitwiseTheCpu() {
        for (long[] shape : SHAPES) {
            for (boolean inPlace : new boolean[] {false, true}) {
                String name = "gatedResidual " + Arrays.toString(shape) + " " + inPlace;
                SplittableRandom r = CudaTestSupport.random(name);
                try (TensorScope s = TensorScope.open()) {
                    Tensor[] x = randomPair(s, r, -2, 2, shape);
                    Tensor[] gate = perSample(randomPair(s, r, -1, 1, shape[0], 3 * shape[2]), shape[2]);
                    Tensor[] f = randomPair(s, r, -2, 2, shape);
                    Tensor[] out = inPlace ? x : nanPair(s, shape);
                    cpuOps.gatedResidual(x[0], gate[0], f[0], out[0]);
                    gpuOps.gatedResidual(x[1], gate[1], f[1], out[1]);
                    CudaTestSupport.assertBitwise("gatedResidual", Arrays.toString(shape), out[1].toFloatArray(),
                            out[0].toFloatArray(), CudaTestSupport.seedOf(name));
                }
            }
        }
    }

    @Test
    void gatedResidualBackwardMatchesTheCpu() {
        for (long[] shape : SHAPES) {
            for (int mode = 0; mode < 4; mode++) { // 0 both, 1 df only, 2 dGate only, 3 df = f
                String name = "gatedResidualBackward " + Arrays.toString(shape) + " mode " + mode;
                SplittableRandom r = CudaTestSupport.random(name);
                String seed = CudaTestSupport.seedOf(name);
                String sh = Arrays.toString(shape);
                long b = shape[0];
                long d = shape[2];
                try (TensorScope s = TensorScope.open()) {
                    Tensor[] gate = perSample(randomPair(s, r, -1, 1, b, 3 * d), d);
                    Tensor[] f = randomPair(s, r, -2, 2, shape);
                    Tensor[] dy = randomPair(s, r, -2, 2, shape);
                    Tensor[] df = mode == 2 ? null : mode == 3 ? f : nanPair(s, shape);
                    Tensor[] dGateParent = nanPair(s, b, 3 * d);
                    Tensor[] dGate = mode == 1 ? null : perSample(dGateParent, d);
                    for (int i = 0; i < 2; i++) {
                        (i == 0 ? cpuOps : gpuOps).gatedResidualBackward(gate[i], f[i], dy[i], at(df, i),
                                at(dGate, i));
                    }
                    if (df != null) {
                        CudaTestSupport.assertBitwise("gatedResidualBackward df", sh, df[1].toFloatArray(),
                                df[0].toFloatArray(), seed);
                    }
                    if (dGate != null) {
                        // the whole [B, 3D] parent: the NaN columns outside the slice must stay NaN
                        CudaTestSupport.assertClose("gatedResidualBackward dGate", sh,
                                dGateParent[1].toFloatArray(), dGateParent[0].toFloatArray(), 1e-5, seed);
                    }
                }
            }
        }
    }

    @Test
    void columnSumMatchesTheCpu() {
        long[][] shapes = {{1, 1}, {9, 13}, {1, 1031}, {257, 3}, {0, 5}, {3, 0, 7}, {5, 17, 96}, {4097, 33}};
        for (long[] shape : shapes) {
            for (boolean accumulate : new boolean[] {false, true}) {
                String name = "columnSum " + Arrays.toString(shape) + " " + accumulate;
                SplittableRandom r = CudaTestSupport.random(name);
                long cols = shape[shape.length - 1];
                try (TensorScope s = TensorScope.open()) {
                    Tensor[] dy = randomPair(s, r, -1, 1, shape);
                    Tensor[] out = accumulate ? randomPair(s, r, -1, 1, cols) : nanPair(s, cols);
                    cpuOps.columnSum(dy[0], out[0], accumulate);
                    gpuOps.columnSum(dy[1], out[1], accumulate);
                    // float64 sums in another fixed order: equal up to the final rounding (1 ulp)
                    CudaTestSupport.assertClose("columnSum", Arrays.toString(shape), out[1].toFloatArray(),
                            out[0].toFloatArray(), 1e-6, CudaTestSupport.seedOf(name));
                }
            }
        }
    }

    @Test
    void layerNormBackwardMatchesTheCpu() {
        for (long[] shape : SHAPES) {
            for (int mode = 0; mode < 6; mode++) { // bit 0 affine, bit 1 modulation; 4: dx = dy, 5: gamma only
                String name = "layerNormBackward " + Arrays.toString(shape) + " mode " + mode;
                SplittableRandom r = CudaTestSupport.random(name);
                String seed = CudaTestSupport.seedOf(name);
                String sh = Arrays.toString(shape);
                long b = shape[0];
                long d = shape[2];
                boolean affine = (mode & 1) != 0 || mode >= 4;
                boolean modulated = (mode & 2) != 0 || mode == 4;
                try (TensorScope s = TensorScope.open()) {
                    Tensor[] x = randomPair(s, r, -3, 3 + mode, shape);
                    Tensor[] gamma = affine ? randomPair(s, r, 0.5, 1.5, d) : null;
                    Tensor[] beta = affine && mode != 5 ? randomPair(s, r, -0.5, 0.5, d) : null;
                    Tensor[] scale = modulated ? perSample(randomPair(s, r, -0.5, 0.5, b, 3 * d), d) : null;
                    Tensor[] mean = nanPair(s, b * shape[1]);
                    Tensor[] rstd = nanPair(s, b * shape[1]);
                    Tensor[] y = nanPair(s, shape);
                    cpuOps.layerNorm(x[0], at(gamma, 0), at(beta, 0), null, at(scale, 0), 1e-5f, y[0], mean[0],
                            rstd[0]);
                    // the same saved statistics on both sides
                    Tensor[] meanPair = pair(s, mean[0].toFloatArray(), b * shape[1]);
                    Tensor[] rstdPair = pair(s, rstd[0].toFloatArray(), b * shape[1]);
                    Tensor[] dy = randomPair(s, r, -2, 2, shape);
                    Tensor[] dx = mode == 4 ? dy : nanPair(s, shape);
                    Tensor[] dGamma = affine ? randomPair(s, r, -1, 1, d) : null;
                    Tensor[] dBeta = mode != 5 ? randomPair(s, r, -1, 1, d) : null;
                    Tensor[] dShiftParent = nanPair(s, b, 3 * d);
                    Tensor[] dScaleParent = nanPair(s, b, 3 * d);
                    Tensor[] dShift = modulated || mode == 0 ? perSample(dShiftParent, d) : null;
                    Tensor[] dScale = modulated ? perSample(dScaleParent, d) : null;
                    for (int i = 0; i < 2; i++) {
                        (i == 0 ? cpuOps : gpuOps).layerNormBackward(x[i], at(gamma, i), at(beta, i), at(scale, i),
                                meanPair[i], rstdPair[i], dy[i], dx[i], at(dGamma, i), at(dBeta, i), at(dShift, i),
                                at(dScale, i));
                    }
                    CudaTestSupport.assertClose("layerNormBackward dx", sh, dx[1].toFloatArray(),
                            dx[0].toFloatArray(), 1e-5, seed);
                    if (dGamma != null) {
                        CudaTestSupport.assertClose("layerNormBackward dGamma", sh, dGamma[1].toFloatArray(),
                                dGamma[0].toFloatArray(), 1e-6, seed);
                    }
                    if (dBeta != null) {
                        CudaTestSupport.assertClose("layerNormBackward dBeta", sh, dBeta[1].toFloatArray(),
                                dBeta[0].toFloatArray(), 1e-6, seed);
                    }
                    // whole [B, 3D] parents: columns outside the slices stay NaN
                    CudaTestSupport.assertClose("layerNormBackward dShift", sh, dShiftParent[1].toFloatArray(),
                            dShiftParent[0].toFloatArray(), 1e-6, seed);
                    CudaTestSupport.assertClose("layerNormBackward dScale", sh, dScaleParent[1].toFloatArray(),
                            dScaleParent[0].toFloatArray(), 1e-6, seed);
                }
            }
        }
    }

    @Test
    void embeddingBackwardIsBitwiseTheCpu() {
        long[][] cases = {{1, 1, 1}, {7, 5, 3}, {50, 11, 33}, {1000, 10, 96}, {13, 1000, 257}}; // {N, V, D}
        for (long[] c : cases) {
            String name = "embeddingBackward " + Arrays.toString(c);
            SplittableRandom r = CudaTestSupport.random(name);
            int n = (int) c[0];
            int[] idx = new int[n];
            for (int i = 0; i < n; i++) {
                idx[i] = r.nextInt((int) c[1]);
            }
            try (TensorScope s = TensorScope.open()) {
                Tensor[] indices = new Tensor[2];
                Backend[] bs = {cpu, gpu};
                for (int i = 0; i < 2; i++) {
                    indices[i] = bs[i].empty(s, org.diffusion4j.tensor.DType.I32, n);
                    indices[i].copyFrom(java.lang.foreign.MemorySegment.ofArray(idx));
                }
                Tensor[] dy = randomPair(s, r, -1, 1, n, c[2]);
                Tensor[] table = randomPair(s, r, -1, 1, c[1], c[2]);
                cpuOps.embeddingBackward(indices[0], dy[0], table[0]);
                gpuOps.embeddingBackward(indices[1], dy[1], table[1]);
                CudaTestSupport.assertBitwise("embeddingBackward", Arrays.toString(c), table[1].toFloatArray(),
                        table[0].toFloatArray(), CudaTestSupport.seedOf(name));
                // a bad index: exception naming it, nothing written
                float[] before = table[1].toFloatArray();
                idx[n / 2] = (int) c[1];
                indices[1].copyFrom(java.lang.foreign.MemorySegment.ofArray(idx));
                Tensor bad = indices[1];
                IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class,
                        () -> gpuOps.embeddingBackward(bad, dy[1], table[1]));
                org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("indices[" + (n / 2) + "] = "
                        + c[1]), e.getMessage());
                CudaTestSupport.assertBitwise("embeddingBackward untouched on error", Arrays.toString(c),
                        table[1].toFloatArray(), before, CudaTestSupport.seedOf(name));
            }
        }
    }

    @Test
    void badArgumentsThrowBeforeTheDevice() {
        try (TensorScope s = TensorScope.open()) {
            Tensor x = gpu.zeros(s, org.diffusion4j.tensor.DType.F32, 2, 3, 5);
            Tensor hostX = cpu.zeros(s, org.diffusion4j.tensor.DType.F32, 2, 3, 5);
            assertThrows(IllegalArgumentException.class, () -> gpuOps.activation(Activation.SILU, x, null, x, x));
            assertThrows(IllegalArgumentException.class,
                    () -> gpuOps.activation(Activation.SILU, hostX, null, null, x));
            assertThrows(IllegalArgumentException.class,
                    () -> gpuOps.layerNorm(x, null, null, null, null, 0f, x, null, null));
            assertThrows(IllegalArgumentException.class, () -> new CudaNnOps(cpu));
        }
    }
}
