package org.diffusion4j.cuda;

import org.diffusion4j.cpu.CpuAttention;
import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.attention.AttentionOps;
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
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@link CudaAttention} against {@link CpuAttention} (the fused CPU attention, itself tested against float64
 * oracles and central finite differences in {@code org.diffusion4j.nn.attention}) on random inputs: sequence lengths
 * 1, 49, 50, 197 and 1024 (ragged tiles on both sides), head dims 32, 64, 128 and the padded odd ones 7 and 100,
 * a head dim above the kernels' (160, composed fallback), cross-attention ({@code Tq ≠ Tk}) and a non-default scale.
 * Outputs are poisoned with NaN first. Tolerances (relative L2 error over the whole tensor): F32 forward
 * {@code out} 1e-5 and {@code lse} 1e-5 (the softmax arithmetic is the CPU's, the dot products are summed in another
 * order), F32 backward 2e-5; BF16 forward 1e-2 at the default scale (inputs and P rounded to 8 significant bits),
 * and at any scale against the CPU run on the BF16-rounded inputs: {@code out} 1e-2 (only P's rounding and the
 * summation order remain), {@code lse} 1e-5. With one key ({@code Tk = 1}) {@code dq} and {@code dk} are exactly
 * zero, so both sides' rounding noise is bounded instead (L2 norm ≤ 1e-4). BF16 backward: 1e-2 against the F32
 * results at the default scale, and against the CPU on BF16-rounded {@code q, k, v, dOut}: {@code dv} 1e-2,
 * {@code dq}, {@code dk} 2e-2 ({@code dS = P(dP − D)} cancels, which amplifies the rounding of P and dP); both
 * precisions bit-identical run to run.
 */
@Tag("cuda")
class CudaAttentionTest {

    private static Backend gpu;
    private static CpuBackend cpu;
    private static CpuAttention cpuOps;
    private static CudaAttention f32;
    private static CudaAttention bf16;

    /** {B, H, Tq, Tk, Dh}. */
    private static final int[][] CASES = {
        {2, 3, 1, 1, 32}, {1, 2, 49, 49, 64}, {2, 1, 50, 50, 128}, {1, 2, 197, 197, 64}, {1, 1, 197, 197, 32},
        {1, 1, 197, 197, 128}, {1, 2, 1024, 1024, 64}, {1, 1, 1024, 1024, 128}, {1, 1, 1024, 1024, 32},
        {2, 2, 50, 197, 7}, {1, 3, 197, 49, 100}, {1, 1, 49, 50, 160}, {3, 1, 1, 197, 64}, {1, 2, 50, 1, 64}};

    @BeforeAll
    static void start() {
        CudaTestSupport.assumeDevice();
        gpu = CudaRuntime.createBackend(0);
        cpu = new CpuBackend(Math.max(2, Runtime.getRuntime().availableProcessors()));
        cpuOps = new CpuAttention(cpu);
        f32 = new CudaAttention(gpu);
        bf16 = new CudaAttention(gpu, CudaAttention.Precision.BF16);
    }

    @AfterAll
    static void stop() {
        for (AutoCloseable c : new AutoCloseable[] {bf16, f32, cpuOps, cpu, gpu}) {
            if (c != null) {
                try {
                    c.close();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
        }
    }

    private static Tensor[] pair(TensorScope s, float[] v, long... shape) {
        return new Tensor[] {cpu.fromArray(s, v, shape), gpu.fromArray(s, v, shape)};
    }

    private static Tensor[] nanPair(TensorScope s, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        float[] v = new float[Math.toIntExact(n)];
        Arrays.fill(v, Float.NaN);
        return pair(s, v, shape);
    }

    private static Tensor[] randomPair(TensorScope s, SplittableRandom r, double lo, double hi, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return pair(s, CudaTestSupport.uniform(r, n, lo, hi), shape);
    }

    private static float scaleOf(int[] c, int variant) {
        return variant == 0 ? AttentionOps.defaultScale(c[4]) : 0.3f;
    }

    @Test
    void forBackendPicksTheFusedKernels() {
        try (AttentionOps ops = AttentionOps.forBackend(gpu)) {
            assertInstanceOf(CudaAttention.class, ops);
        }
    }

    @Test
    void forwardMatchesTheCpu() {
        for (int[] c : CASES) {
            for (int variant = 0; variant < 2; variant++) {
                if (variant == 1 && c[2] >= 1024) {
                    continue;
                }
                String sh = Arrays.toString(c) + " scale " + scaleOf(c, variant);
                String name = "attention forward " + sh;
                SplittableRandom r = CudaTestSupport.random(name);
                String seed = CudaTestSupport.seedOf(name);
                float scale = scaleOf(c, variant);
                try (TensorScope s = TensorScope.open()) {
                    Tensor[] q = randomPair(s, r, -2, 2, c[0], c[1], c[2], c[4]);
                    Tensor[] k = randomPair(s, r, -2, 2, c[0], c[1], c[3], c[4]);
                    Tensor[] v = randomPair(s, r, -2, 2, c[0], c[1], c[3], c[4]);
                    Tensor[] out = nanPair(s, c[0], c[1], c[2], c[4]);
                    Tensor[] lse = nanPair(s, c[0], c[1], c[2]);
                    cpuOps.forward(q[0], k[0], v[0], scale, out[0], lse[0]);
                    f32.forward(q[1], k[1], v[1], scale, out[1], lse[1]);
                    float[] refOut = out[0].toFloatArray();
                    float[] refLse = lse[0].toFloatArray();
                    CudaTestSupport.assertClose("attention f32 out", sh, out[1].toFloatArray(), refOut, 1e-5, seed);
                    CudaTestSupport.assertClose("attention f32 lse", sh, lse[1].toFloatArray(), refLse, 1e-5, seed);
                    gpu.fill(out[1], Float.NaN);
                    gpu.fill(lse[1], Float.NaN);
                    bf16.forward(q[1], k[1], v[1], scale, out[1], lse[1]);
                    float[] gotOut = out[1].toFloatArray();
                    float[] gotLse = lse[1].toFloatArray();
                    if (c[4] > CudaAttention.MAX_KERNEL_HEAD_DIM) {
                        // no BF16 kernel for this head dim: the composed F32 path runs, on the unrounded inputs
                        CudaTestSupport.assertClose("attention bf16 out (composed F32)", sh, gotOut, refOut, 1e-5,
                                seed);
                        CudaTestSupport.assertClose("attention bf16 lse (composed F32)", sh, gotLse, refLse, 1e-5,
                                seed);
                    } else {
                        if (variant == 0) { // logits of standard deviation ~1.3: BF16 inputs cost < 1e-2
                            CudaTestSupport.assertClose("attention bf16 out", sh, gotOut, refOut, 1e-2, seed);
                            CudaTestSupport.assertClose("attention bf16 lse", sh, gotLse, refLse, 1e-2, seed);
                        }
                        // against the CPU on the BF16-rounded inputs: what is left is P in BF16 and the sum order
                        Tensor qr = cpu.fromArray(s, bf16Round(q[0].toFloatArray()), c[0], c[1], c[2], c[4]);
                        Tensor kr = cpu.fromArray(s, bf16Round(k[0].toFloatArray()), c[0], c[1], c[3], c[4]);
                        Tensor vr = cpu.fromArray(s, bf16Round(v[0].toFloatArray()), c[0], c[1], c[3], c[4]);
                        cpuOps.forward(qr, kr, vr, scale, out[0], lse[0]);
                        CudaTestSupport.assertClose("attention bf16 out (rounded inputs)", sh, gotOut,
                                out[0].toFloatArray(), 1e-2, seed);
                        CudaTestSupport.assertClose("attention bf16 lse (rounded inputs)", sh, gotLse,
                                lse[0].toFloatArray(), 1e-5, seed);
                    }
                    // lse is optional
                    gpu.fill(out[1], Float.NaN);
                    f32.forward(q[1], k[1], v[1], scale, out[1], null);
                    CudaTestSupport.assertClose("attention f32 out (no lse)", sh, out[1].toFloatArray(), refOut, 1e-5,
                            seed);
                }
            }
        }
    }

    /** A GPU tensor of {@code shape} holding {@code v}, as a contiguous view starting {@code offset} floats in. */
    private static Tensor gpuAt(TensorScope s, float[] v, int offset, long... shape) {
        float[] padded = new float[v.length + offset];
        Arrays.fill(padded, 0, offset, Float.NaN);
        System.arraycopy(v, 0, padded, offset, v.length);
        return gpu.fromArray(s, padded, padded.length).slice(0, offset, padded.length).reshape(shape);
    }

    /**
     * The BF16 forward has two kernels: a pipelined one (cp.async, ldmatrix) for {@code Dh % 4 == 0} with 16-byte
     * aligned {@code k}, {@code v} and 8-byte aligned {@code q}, {@code out}, and the staged one for the rest. Both
     * against the CPU on BF16-rounded inputs, at head dims 4 and 36 (zero-padded buckets) and on views that start
     * 1 or 2 floats into their buffers.
     */
    @Test
    void bf16ForwardTakesSmallHeadDimsAndMisalignedViews() {
        int[][] cases = {{1, 2, 70, 130, 4}, {1, 1, 65, 97, 36}, {2, 2, 64, 64, 64}, {1, 1, 33, 200, 128}};
        for (int[] c : cases) {
            for (int offset = 0; offset < 3; offset++) {
                String sh = Arrays.toString(c) + " offset " + offset;
                String name = "attention bf16 views " + sh;
                SplittableRandom r = CudaTestSupport.random(name);
                String seed = CudaTestSupport.seedOf(name);
                float scale = scaleOf(c, 0);
                long nq = (long) c[0] * c[1] * c[2] * c[4];
                long nk = (long) c[0] * c[1] * c[3] * c[4];
                float[] q = CudaTestSupport.uniform(r, nq, -2, 2);
                float[] k = CudaTestSupport.uniform(r, nk, -2, 2);
                float[] v = CudaTestSupport.uniform(r, nk, -2, 2);
                try (TensorScope s = TensorScope.open()) {
                    Tensor out = gpuAt(s, new float[Math.toIntExact(nq)], offset, c[0], c[1], c[2], c[4]);
                    gpu.fill(out, Float.NaN);
                    Tensor lse = gpu.fromArray(s, new float[c[0] * c[1] * c[2]], c[0], c[1], c[2]);
                    gpu.fill(lse, Float.NaN);
                    bf16.forward(gpuAt(s, q, offset, c[0], c[1], c[2], c[4]), gpuAt(s, k, offset, c[0], c[1], c[3],
                            c[4]), gpuAt(s, v, offset, c[0], c[1], c[3], c[4]), scale, out, lse);
                    Tensor refOut = cpu.zeros(s, DType.F32, c[0], c[1], c[2], c[4]);
                    Tensor refLse = cpu.zeros(s, DType.F32, c[0], c[1], c[2]);
                    cpuOps.forward(cpu.fromArray(s, bf16Round(q), c[0], c[1], c[2], c[4]),
                            cpu.fromArray(s, bf16Round(k), c[0], c[1], c[3], c[4]),
                            cpu.fromArray(s, bf16Round(v), c[0], c[1], c[3], c[4]), scale, refOut, refLse);
                    CudaTestSupport.assertClose("attention bf16 out (views)", sh, out.toFloatArray(),
                            refOut.toFloatArray(), 1e-2, seed);
                    CudaTestSupport.assertClose("attention bf16 lse (views)", sh, lse.toFloatArray(),
                            refLse.toFloatArray(), 1e-5, seed);
                }
            }
        }
    }

    @Test
    void backwardMatchesTheCpuAndIsDeterministic() {
        for (int[] c : CASES) {
            String sh = Arrays.toString(c);
            String name = "attention backward " + sh;
            SplittableRandom r = CudaTestSupport.random(name);
            String seed = CudaTestSupport.seedOf(name);
            float scale = scaleOf(c, 0);
            try (TensorScope s = TensorScope.open()) {
                Tensor[] q = randomPair(s, r, -2, 2, c[0], c[1], c[2], c[4]);
                Tensor[] k = randomPair(s, r, -2, 2, c[0], c[1], c[3], c[4]);
                Tensor[] v = randomPair(s, r, -2, 2, c[0], c[1], c[3], c[4]);
                Tensor[] dOut = randomPair(s, r, -1, 1, c[0], c[1], c[2], c[4]);
                Tensor out0 = cpu.empty(s, DType.F32, c[0], c[1], c[2], c[4]);
                Tensor lse0 = cpu.empty(s, DType.F32, c[0], c[1], c[2]);
                cpuOps.forward(q[0], k[0], v[0], scale, out0, lse0);
                // both backwards from the same forward outputs (the CPU's), so only the backward is compared
                Tensor[] out = pair(s, out0.toFloatArray(), c[0], c[1], c[2], c[4]);
                Tensor[] lse = pair(s, lse0.toFloatArray(), c[0], c[1], c[2]);
                Tensor[] dq = nanPair(s, c[0], c[1], c[2], c[4]);
                Tensor[] dk = nanPair(s, c[0], c[1], c[3], c[4]);
                Tensor[] dv = nanPair(s, c[0], c[1], c[3], c[4]);
                cpuOps.backward(q[0], k[0], v[0], out[0], lse[0], dOut[0], scale, dq[0], dk[0], dv[0]);
                f32.backward(q[1], k[1], v[1], out[1], lse[1], dOut[1], scale, dq[1], dk[1], dv[1]);
                float[][] first = {dq[1].toFloatArray(), dk[1].toFloatArray(), dv[1].toFloatArray()};
                if (c[3] == 1) {
                    // one key: the softmax is constant 1, so dq = dk = 0 exactly; both sides hold rounding noise of
                    // dP − D (|dP| ≲ 10 here), so compare their L2 norms with zero instead of with each other
                    float[] zeros = new float[first[0].length];
                    CudaTestSupport.assertClose("attention f32 dq (one key: 0)", sh, first[0], zeros, 1e-4, seed);
                    CudaTestSupport.assertClose("attention cpu dq (one key: 0)", sh, dq[0].toFloatArray(), zeros,
                            1e-4, seed);
                    CudaTestSupport.assertClose("attention f32 dk (one key: 0)", sh, first[1],
                            new float[first[1].length], 1e-4, seed);
                } else {
                    CudaTestSupport.assertClose("attention f32 dq", sh, first[0], dq[0].toFloatArray(), 2e-5, seed);
                    CudaTestSupport.assertClose("attention f32 dk", sh, first[1], dk[0].toFloatArray(), 2e-5, seed);
                }
                CudaTestSupport.assertClose("attention f32 dv", sh, first[2], dv[0].toFloatArray(), 2e-5, seed);
                // no atomics: a second run is bit-identical
                for (Tensor t : new Tensor[] {dq[1], dk[1], dv[1]}) {
                    gpu.fill(t, Float.NaN);
                }
                f32.backward(q[1], k[1], v[1], out[1], lse[1], dOut[1], scale, dq[1], dk[1], dv[1]);
                CudaTestSupport.assertBitwise("attention dq run to run", sh, dq[1].toFloatArray(), first[0], seed);
                CudaTestSupport.assertBitwise("attention dk run to run", sh, dk[1].toFloatArray(), first[1], seed);
                CudaTestSupport.assertBitwise("attention dv run to run", sh, dv[1].toFloatArray(), first[2], seed);

                // BF16 tensor cores: against the CPU on the same F32 inputs (logits of standard deviation ~1.3 at
                // the default scale) and, tighter in meaning, against the CPU on BF16-rounded q, k, v, dOut
                for (Tensor t : new Tensor[] {dq[1], dk[1], dv[1]}) {
                    gpu.fill(t, Float.NaN);
                }
                bf16.backward(q[1], k[1], v[1], out[1], lse[1], dOut[1], scale, dq[1], dk[1], dv[1]);
                float[][] half = {dq[1].toFloatArray(), dk[1].toFloatArray(), dv[1].toFloatArray()};
                bf16.backward(q[1], k[1], v[1], out[1], lse[1], dOut[1], scale, dq[1], dk[1], dv[1]);
                CudaTestSupport.assertBitwise("attention bf16 dq run to run", sh, dq[1].toFloatArray(), half[0],
                        seed);
                CudaTestSupport.assertBitwise("attention bf16 dk run to run", sh, dk[1].toFloatArray(), half[1],
                        seed);
                CudaTestSupport.assertBitwise("attention bf16 dv run to run", sh, dv[1].toFloatArray(), half[2],
                        seed);
                CudaTestSupport.assertClose("attention bf16 dv", sh, half[2], dv[0].toFloatArray(), 1e-2, seed);
                Tensor qr = cpu.fromArray(s, bf16Round(q[0].toFloatArray()), c[0], c[1], c[2], c[4]);
                Tensor kr = cpu.fromArray(s, bf16Round(k[0].toFloatArray()), c[0], c[1], c[3], c[4]);
                Tensor vr = cpu.fromArray(s, bf16Round(v[0].toFloatArray()), c[0], c[1], c[3], c[4]);
                Tensor dor = cpu.fromArray(s, bf16Round(dOut[0].toFloatArray()), c[0], c[1], c[2], c[4]);
                cpuOps.backward(qr, kr, vr, out[0], lse[0], dor, scale, dq[0], dk[0], dv[0]);
                CudaTestSupport.assertClose("attention bf16 dv (rounded inputs)", sh, half[2], dv[0].toFloatArray(),
                        1e-2, seed);
                // one key: the exact dq, dk are 0 and BF16 leaves only the rounding noise of dP − D, so there is
                // nothing relative to compare (dv above and the F32 checks cover that case)
                if (c[3] > 1) {
                    CudaTestSupport.assertClose("attention bf16 dq", sh, half[0], first[0], 1e-2, seed);
                    CudaTestSupport.assertClose("attention bf16 dk", sh, half[1], first[1], 1e-2, seed);
                    CudaTestSupport.assertClose("attention bf16 dq (rounded inputs)", sh, half[0],
                            dq[0].toFloatArray(), 2e-2, seed);
                    CudaTestSupport.assertClose("attention bf16 dk (rounded inputs)", sh, half[1],
                            dk[0].toFloatArray(), 2e-2, seed);
                }
            }
        }
    }

    @Test
    void emptyQueriesGiveZeroKeyGradients() {
        try (TensorScope s = TensorScope.open()) {
            Tensor q = gpu.empty(s, DType.F32, 2, 2, 0, 64);
            Tensor k = gpu.fromArray(s, CudaTestSupport.uniform(new SplittableRandom(1), 2 * 2 * 5 * 64, -1, 1),
                    2, 2, 5, 64);
            Tensor out = gpu.empty(s, DType.F32, 2, 2, 0, 64);
            Tensor lse = gpu.empty(s, DType.F32, 2, 2, 0);
            Tensor dk = gpu.fromArray(s, nans(2 * 2 * 5 * 64), 2, 2, 5, 64);
            Tensor dv = gpu.fromArray(s, nans(2 * 2 * 5 * 64), 2, 2, 5, 64);
            f32.forward(q, k, k, out, lse);
            f32.backward(q, k, k, out, lse, out, 0.125f, out, dk, dv);
            CudaTestSupport.assertBitwise("attention dk (Tq = 0)", "[2, 2, 0/5, 64]", dk.toFloatArray(),
                    new float[2 * 2 * 5 * 64], "fixed inputs");
            CudaTestSupport.assertBitwise("attention dv (Tq = 0)", "[2, 2, 0/5, 64]", dv.toFloatArray(),
                    new float[2 * 2 * 5 * 64], "fixed inputs");
        }
    }

    @Test
    void badArgumentsThrowBeforeTheDevice() {
        try (TensorScope s = TensorScope.open()) {
            Tensor q = gpu.zeros(s, DType.F32, 1, 2, 3, 8);
            Tensor hostQ = cpu.zeros(s, DType.F32, 1, 2, 3, 8);
            Tensor lse = gpu.zeros(s, DType.F32, 1, 2, 3);
            Tensor out = gpu.zeros(s, DType.F32, 1, 2, 3, 8);
            assertThrows(IllegalArgumentException.class, () -> f32.forward(q, q, q, -1f, out, lse));
            assertThrows(IllegalArgumentException.class, () -> f32.forward(hostQ, q, q, 1f, out, lse));
            assertThrows(IllegalArgumentException.class, () -> f32.forward(q, q, q, 1f, q, lse));
            assertThrows(IllegalArgumentException.class, () -> new CudaAttention(cpu));
        }
    }

    /** Each value rounded to BF16 (nearest even; the kernels' {@code __float2bfloat16_rn}), kept as float. */
    static float[] bf16Round(float[] a) {
        float[] r = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            int bits = Float.floatToRawIntBits(a[i]);
            bits += 0x7FFF + ((bits >>> 16) & 1);
            r[i] = Float.intBitsToFloat(bits & 0xFFFF0000);
        }
        return r;
    }

    private static float[] nans(int n) {
        float[] a = new float[n];
        Arrays.fill(a, Float.NaN);
        return a;
    }
}
