package org.diffusion4j.bench.gpu;

import org.diffusion4j.bench.Workloads;
import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.cuda.CudaAttention;
import org.diffusion4j.cuda.CudaBackend;
import org.diffusion4j.cuda.CudaRuntime;
import org.diffusion4j.nn.attention.AttentionDims;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.nn.attention.ComposedAttention;
import org.diffusion4j.sampling.ComposedDiffusionOps;
import org.diffusion4j.sampling.DiffusionOps;
import org.diffusion4j.sampling.FusedStep;
import org.diffusion4j.sampling.NoiseSeeds;
import org.diffusion4j.sampling.NoisingCoefficients;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.IntConsumer;

/**
 * GPU throughput benchmark run by {@code benchmarks/gpu/check.sh} on a GPU machine (DESIGN.md §6 and §7): each op
 * of the CUDA backend on operands large enough that launch overhead vanishes, timed in wall-clock time between
 * two {@link Backend#synchronize()} calls, reported as the median of several trials and as a fraction of a
 * reference measured in the same run (memory-bound ops: the device-to-device copy) or of a peak (GEMM).
 *
 * <p>A plain {@code main} rather than JMH: it must finish in about two minutes on a bare machine with a jlinked
 * JRE, with CUDA asynchrony handled explicitly. Method per case: warm-up calls, then a calibration call sets the
 * calls per trial so one trial lasts about {@value #TRIAL_SECONDS} s; {@code trials} trials of that many calls,
 * each bracketed by {@code synchronize()}; the time per call is the median over trials. Operands rotate through a
 * pool of {@value #POOL} buffers so no call finds its inputs in the 50 MiB L2 left by the previous one (the sampler
 * step works in place on fixed buffers, as in a sampling loop: six 256 MiB streams per call leave nothing in L2),
 * and are re-filled with normals before each case (outside the timing) so values stay finite.
 *
 * <p>Bytes counted: every input read once, every output written once (DESIGN.md §6). copy: read + write;
 * fill, randn: write; axpby: 2 reads + write; binary ADD with a row vector {@code [N]} broadcast over
 * {@code [rows, N]}: read + write (+ the row); EXP, scaleShift: read + write; cast F32→BF16: 4 + 2 bytes per
 * element; softmax over {@code [rows, 1024]}: read + write; reduce SUM over the last dim: read (+ one value per
 * row); {@code forwardNoise}: read {@code x0}, write {@code xt} and {@code target} (no {@code eps});
 * {@code samplerStep} with classifier-free guidance: read {@code x}, {@code cond}, {@code uncond}, {@code hist},
 * write {@code x} and {@code hist} (in place). GEMM {@code [M, K] x [K, N]}: {@code 2 M N K} FLOPs.
 *
 * <p>Peaks (H200, DESIGN.md §6): dense BF16 ≈ 790 TFLOP/s measured, FP32 ≈ 67 TFLOP/s; TF32 is taken as half
 * the BF16 figure (NVIDIA's Hopper datasheets list dense TF32 at half of dense BF16). Override with
 * {@code -Dd4j.bench.peak.fp32=}, {@code .tf32=}, {@code .bf16=} (TFLOP/s). TF32 and BF16 modes run on F32
 * tensors ({@link CudaBackend.GemmMath}), so they include cuBLAS's conversion of the inputs.
 *
 * <p>System properties: {@code d4j.bench.mib} (MiB per memory-bound operand, default 256),
 * {@code d4j.bench.gemm} (comma-separated GEMM sizes, default {@code 4096,8192}), {@code d4j.bench.budget}
 * (seconds; cases that would start later are skipped, default 150), {@code d4j.bench.trials} (default 7),
 * {@code d4j.bench.out} (folder for {@code gpu-bench.tsv} and {@code gpu-bench.json}; default {@code $OUT} when
 * set), {@code d4j.bench.backend=cpu} (runs the same cases on the CPU backend, for checking the harness on a
 * machine without a GPU; use a small {@code d4j.bench.mib}).
 *
 * <p>Exit status: 0 when the run completed (also when no CUDA device is usable: one line
 * {@code "no CUDA device: <reason>"}), 1 when a case failed, 2 on bad arguments.
 */
public final class GpuBench {

    /** Target duration of one timed trial, seconds. */
    static final double TRIAL_SECONDS = 0.02;
    /** Buffers each memory-bound operand rotates through. */
    static final int POOL = 4;
    /** Samples of the fused diffusion-op cases. */
    static final int BATCH = 8;
    /** Columns of the softmax, reduce and row-broadcast cases (softmax of [65536, 1024] at 256 MiB). */
    static final int COLS = 1024;

    private final Backend backend;
    private final long n;
    private final int trials;
    private final long deadline;
    private final List<Row> rows = new ArrayList<>();
    private final PrintStream log = System.out;
    private double copyBytesPerSecond = Double.NaN;
    private boolean failed;

    /** One line of the table; {@code rate} in bytes/s or FLOP/s, {@code ref} the same unit, NaN when absent. */
    record Row(String name, String shape, double seconds, double rate, String unit, double ref, String refName,
               int calls, String note) {
    }

    GpuBench(Backend backend, long elements, int trials, double budgetSeconds) {
        this.backend = backend;
        this.n = elements;
        this.trials = trials;
        this.deadline = System.nanoTime() + (long) (budgetSeconds * 1e9);
    }

    public static void main(String[] args) {
        String which = System.getProperty("d4j.bench.backend", "cuda").trim().toLowerCase(Locale.ROOT);
        long mib;
        int trials;
        double budget;
        long[] gemmSizes;
        try {
            mib = Long.parseLong(System.getProperty("d4j.bench.mib", "256").trim());
            trials = Integer.parseInt(System.getProperty("d4j.bench.trials", "7").trim());
            budget = Double.parseDouble(System.getProperty("d4j.bench.budget", "150").trim());
            gemmSizes = Arrays.stream(System.getProperty("d4j.bench.gemm", "4096,8192").split(","))
                    .map(String::trim).filter(s -> !s.isEmpty()).mapToLong(Long::parseLong).toArray();
            if (mib < 1 || trials < 1 || !(budget > 0) || Arrays.stream(gemmSizes).anyMatch(s -> s < 1)) {
                throw new IllegalArgumentException("d4j.bench.mib=" + mib + ", d4j.bench.trials=" + trials
                        + ", d4j.bench.budget=" + budget + " and every d4j.bench.gemm size must be positive");
            }
            if (!which.equals("cuda") && !which.equals("cpu")) {
                throw new IllegalArgumentException("d4j.bench.backend=" + which + " is not one of cuda, cpu");
            }
        } catch (IllegalArgumentException e) {
            System.out.println("GpuBench: bad arguments: " + e.getMessage());
            System.exit(2);
            return;
        }
        long elements = mib * (1L << 20) / 4;
        elements = Math.max(COLS * (long) BATCH, elements / (COLS * (long) BATCH) * (COLS * (long) BATCH));

        Backend backend;
        if (which.equals("cpu")) {
            backend = new CpuBackend();
        } else {
            CudaRuntime.Status status;
            try {
                status = CudaRuntime.probe(0);
            } catch (RuntimeException | LinkageError e) {
                status = new CudaRuntime.Status(false, String.valueOf(e));
            }
            if (!status.usable()) {
                String reason = status.description();
                if (reason.startsWith("no CUDA device: ")) {
                    reason = reason.substring("no CUDA device: ".length());
                }
                System.out.println("no CUDA device: " + reason);
                return;
            }
            backend = CudaRuntime.createBackend(0, CudaBackend.GemmMath.FP32);
        }
        int rc;
        try (backend) {
            GpuBench bench = new GpuBench(backend, elements, trials, budget);
            bench.runAll(gemmSizes);
            bench.printTable();
            bench.writeFiles(outputFolder());
            rc = bench.failed ? 1 : 0;
        }
        System.exit(rc);
    }

    private static Path outputFolder() {
        String dir = System.getProperty("d4j.bench.out");
        if (dir == null || dir.isBlank()) {
            dir = System.getenv("OUT");
        }
        return dir == null || dir.isBlank() ? null : Path.of(dir);
    }

    // ---------------------------------------------------------------- the cases

    void runAll(long[] gemmSizes) {
        long start = System.nanoTime();
        log.printf(Locale.ROOT, "== GPU benchmarks on %s: %d MiB per operand, median of %d trials%n",
                backend.name(), n * 4 >> 20, trials);
        try (TensorScope scope = TensorScope.open()) {
            Tensor[] pool = new Tensor[POOL];
            for (int i = 0; i < POOL; i++) {
                pool[i] = backend.empty(scope, DType.F32, n);
            }
            Tensor[] half = {backend.empty(scope, DType.BF16, n), backend.empty(scope, DType.BF16, n)};
            Tensor row = backend.empty(scope, DType.F32, COLS);
            Tensor[] sums = {backend.empty(scope, DType.F32, n / COLS), backend.empty(scope, DType.F32, n / COLS)};
            backend.randn(row, 7, 0);
            long rowsN = n / COLS;
            String flat = count(n) + " f32";
            String matrix = "[" + rowsN + ", " + COLS + "] f32";

            memoryCase("copy (d2d)", flat, 8.0 * n, pool, i -> backend.copy(pool[i % POOL], pool[(i + 1) % POOL]));
            memoryCase("fill", flat, 4.0 * n, pool, i -> backend.fill(pool[i % POOL], 0.5f));
            memoryCase("axpby", flat, 12.0 * n, pool,
                    i -> backend.axpby(0.5f, pool[i % POOL], 0.5f, pool[(i + 1) % POOL], pool[(i + 2) % POOL]));
            memoryCase("binary ADD, row [" + COLS + "]", matrix, 8.0 * n + 4.0 * COLS, pool,
                    i -> backend.binary(Ops.Binary.ADD, pool[i % POOL].reshape(rowsN, COLS), row,
                            pool[(i + 1) % POOL].reshape(rowsN, COLS)));
            memoryCase("unary EXP", flat, 8.0 * n, pool,
                    i -> backend.unary(Ops.Unary.EXP, pool[i % POOL], pool[(i + 1) % POOL]));
            memoryCase("scaleShift", flat, 8.0 * n, pool,
                    i -> backend.scaleShift(pool[i % POOL], 0.5f, 0.25f, pool[(i + 1) % POOL]));
            memoryCase("cast F32->BF16", flat, 6.0 * n, pool, i -> backend.cast(pool[i % POOL], half[i % 2]));
            memoryCase("softmaxLastDim", matrix, 8.0 * n, pool,
                    i -> backend.softmaxLastDim(pool[i % POOL].reshape(rowsN, COLS),
                            pool[(i + 1) % POOL].reshape(rowsN, COLS)));
            memoryCase("reduceLastDim SUM", matrix, 4.0 * n + 4.0 * rowsN, pool,
                    i -> backend.reduceLastDim(Ops.Reduce.SUM, pool[i % POOL].reshape(rowsN, COLS), sums[i % 2]));
            memoryCase("randn", flat, 4.0 * n, pool, i -> backend.randn(pool[i % POOL], 11, i));
            diffusionCases(pool);
        }
        if (backend instanceof CudaBackend cuda) {
            for (long size : gemmSizes) {
                gemmCases(cuda, size);
            }
            attentionCases(cuda);
        }
        endToEndCases();
        log.printf(Locale.ROOT, "   benchmarks took %.1f s%n", (System.nanoTime() - start) / 1e9);
    }

    /** A memory-bound case: {@code bytes} moved per call, as a fraction of the copy of this run. */
    private void memoryCase(String name, String shape, double bytes, Tensor[] pool, IntConsumer call) {
        if (skipped(name, shape, "GB/s")) {
            return;
        }
        try {
            refill(pool);
            Timing t = time(call, 2);
            double rate = bytes / t.seconds();
            if (name.startsWith("copy")) {
                copyBytesPerSecond = rate;
            }
            add(new Row(name, shape, t.seconds(), rate, "GB/s", copyBytesPerSecond, "copy", t.calls(), ""));
        } catch (RuntimeException | OutOfMemoryError e) {
            failure(name, shape, "GB/s", e);
        }
    }

    private void diffusionCases(Tensor[] pool) {
        long per = n / BATCH;
        String shape = "[" + BATCH + ", " + count(per) + "] f32";
        double[] a = new double[BATCH];
        double[] s = new double[BATCH];
        double[] c = new double[BATCH];
        double[] d = new double[BATCH];
        for (int b = 0; b < BATCH; b++) { // v-prediction coefficients at varied VP times: x_t = α x0 + σ ε, v = α ε − σ x0
            double alpha = Math.cos(0.15 * (b + 1));
            double sigma = Math.sin(0.15 * (b + 1));
            a[b] = alpha;
            s[b] = sigma;
            c[b] = -sigma;
            d[b] = alpha;
        }
        NoisingCoefficients k = new NoisingCoefficients(a, s, c, d);
        double[] zero = new double[BATCH];
        double[] ax = filled(0.9);
        double[] ag = filled(0.1);
        double[] ah = filled(0.05);
        double[] ka = filled(1.0);
        double[] kb = filled(-0.5);
        FusedStep step = new FusedStep(ax, zero, ag, ah, zero, ka, kb, 5.0, 0.0, null, 0);

        DiffusionOps fused;
        try {
            fused = DiffusionOps.forBackend(backend);
        } catch (RuntimeException e) {
            failure("DiffusionOps.forBackend", shape, "GB/s", e);
            fused = null;
        }
        DiffusionOps composed = new ComposedDiffusionOps(backend);
        boolean same = fused == null || fused.getClass() == ComposedDiffusionOps.class;
        List<DiffusionOps> impls = new ArrayList<>();
        if (fused != null && !same) {
            impls.add(fused);
        }
        impls.add(composed);
        for (DiffusionOps ops : impls) {
            String who = ops == composed ? "composed" : "fused";
            String note = ops == composed && same
                    ? "forBackend returns " + (fused == null ? "nothing" : fused.getClass().getSimpleName()) : "";
            Tensor[] b = new Tensor[POOL];
            for (int i = 0; i < POOL; i++) {
                b[i] = pool[i].reshape(BATCH, per);
            }
            diffusionCase("forwardNoise " + who, shape, 12.0 * n, pool, note, i -> ops.forwardNoise(k,
                    NoiseSeeds.batch(1000 + i, 0, 0, BATCH), 0.0, b[i % POOL], b[(i + 1) % POOL], b[(i + 2) % POOL],
                    null));
            diffusionCase("samplerStep CFG " + who, shape, 24.0 * n, pool, note,
                    i -> ops.samplerStep(step, b[0], b[0], b[1], b[2], b[3], b[0], b[3]));
        }
        if (fused != null) {
            fused.close();
        }
        composed.close();
    }

    private void diffusionCase(String name, String shape, double bytes, Tensor[] pool, String note, IntConsumer call) {
        if (skipped(name, shape, "GB/s")) {
            return;
        }
        try {
            refill(pool);
            Timing t = time(call, 1);
            add(new Row(name, shape, t.seconds(), bytes / t.seconds(), "GB/s", copyBytesPerSecond, "copy",
                    t.calls(), note));
        } catch (RuntimeException | OutOfMemoryError e) {
            failure(name, shape, "GB/s", e);
        }
    }

    private void gemmCases(CudaBackend cuda, long size) {
        String shape = "M=N=K=" + size;
        CudaBackend.GemmMath previous = cuda.gemmMath();
        try (TensorScope scope = TensorScope.open()) {
            Tensor a;
            Tensor b;
            Tensor c;
            try {
                a = cuda.empty(scope, DType.F32, size, size);
                b = cuda.empty(scope, DType.F32, size, size);
                c = cuda.empty(scope, DType.F32, size, size);
                cuda.randn(a, 3, 0);
                cuda.randn(b, 3, 1);
            } catch (RuntimeException | OutOfMemoryError e) {
                failure("GEMM " + size, shape, "TFLOP/s", e);
                return;
            }
            double flops = 2.0 * size * size * size;
            for (CudaBackend.GemmMath math : CudaBackend.GemmMath.values()) {
                String name = "GEMM " + math.name().toLowerCase(Locale.ROOT);
                if (skipped(name, shape, "TFLOP/s")) {
                    continue;
                }
                try {
                    cuda.setGemmMath(math);
                    Timing t = time(i -> cuda.gemm(false, false, 1f, a, b, 0f, c), 2);
                    double peak = peak(math) * 1e12;
                    add(new Row(name, shape, t.seconds(), flops / t.seconds(), "TFLOP/s", peak,
                            "peak " + fmt(peak / 1e12) + (math == CudaBackend.GemmMath.TF32 ? " (bf16/2)" : ""),
                            t.calls(), ""));
                } catch (RuntimeException | OutOfMemoryError e) {
                    failure(name, shape, "TFLOP/s", e);
                }
            }
        } finally {
            cuda.setGemmMath(previous);
        }
    }

    // ---------------------------------------------------------------- attention (fused kernels vs composed)

    /** {@code {T, Dh}} of the attention cases. */
    static final int[][] ATTENTION_SHAPES = {{1024, 64}, {1024, 128}, {4096, 64}, {4096, 128}};
    /** Heads of every attention case; the batch is 4 at T = 1024 and 1 at T = 4096. */
    static final int ATTENTION_HEADS = 8;

    /**
     * Self-attention {@code [B, H, T, Dh]} forward and backward: {@link CudaAttention} (FlashAttention-2 kernels, F32
     * and BF16 tensor cores) against {@link ComposedAttention} (cuBLAS matmul, softmax, matmul with a
     * {@code T×T} matrix per head) on the same backend. FLOPs by the FlashAttention convention
     * ({@link AttentionDims#forwardFlops}: {@code 4·B·H·T²·Dh}; backward 2.5×); the fraction is of the F32 or BF16
     * peak, and each fused row notes its speed-up over the composed row of the same shape and pass.
     */
    private void attentionCases(CudaBackend cuda) {
        for (int[] sh : ATTENTION_SHAPES) {
            int t = sh[0];
            int dh = sh[1];
            long b = t <= 1024 ? 4 : 1;
            AttentionDims d = new AttentionDims(b, ATTENTION_HEADS, t, t, dh);
            String shape = "[" + b + ", " + ATTENTION_HEADS + ", " + t + ", " + dh + "] f32";
            double fp32 = peak(CudaBackend.GemmMath.FP32) * 1e12;
            double bf16Peak = peak(CudaBackend.GemmMath.BF16) * 1e12;
            try (TensorScope scope = TensorScope.open();
                 CudaAttention f32 = new CudaAttention(cuda);
                 CudaAttention bf16 = new CudaAttention(cuda, CudaAttention.Precision.BF16);
                 ComposedAttention composed = new ComposedAttention(cuda)) {
                Tensor[] x = new Tensor[9]; // q, k, v, out, dOut, dq, dk, dv (4D) and lse
                for (int i = 0; i < 8; i++) {
                    x[i] = cuda.empty(scope, DType.F32, b, ATTENTION_HEADS, t, dh);
                }
                x[8] = cuda.empty(scope, DType.F32, b, ATTENTION_HEADS, t);
                for (int i = 0; i < 5; i++) {
                    cuda.randn(x[i], 13, i);
                }
                Tensor q = x[0];
                Tensor k = x[1];
                Tensor v = x[2];
                Tensor out = x[3];
                Tensor dOut = x[4];
                Tensor lse = x[8];
                float scale = AttentionOps.defaultScale(dh);
                double fwd = d.forwardFlops();
                double bwd = d.backwardFlops();
                double composedFwd = attentionCase("attention fwd composed", shape, fwd, fp32, "peak fp32", "",
                        i -> composed.forward(q, k, v, scale, out, lse));
                fusedAttentionCase("attention fwd f32", shape, fwd, fp32, "peak fp32", composedFwd,
                        i -> f32.forward(q, k, v, scale, out, lse));
                fusedAttentionCase("attention fwd bf16", shape, fwd, bf16Peak, "peak bf16", composedFwd,
                        i -> bf16.forward(q, k, v, scale, out, lse));
                f32.forward(q, k, v, scale, out, lse); // the backward's saved outputs
                double composedBwd = attentionCase("attention bwd composed", shape, bwd, fp32, "peak fp32", "",
                        i -> composed.backward(q, k, v, out, lse, dOut, scale, x[5], x[6], x[7]));
                fusedAttentionCase("attention bwd f32", shape, bwd, fp32, "peak fp32", composedBwd,
                        i -> f32.backward(q, k, v, out, lse, dOut, scale, x[5], x[6], x[7]));
                fusedAttentionCase("attention bwd bf16", shape, bwd, bf16Peak, "peak bf16", composedBwd,
                        i -> bf16.backward(q, k, v, out, lse, dOut, scale, x[5], x[6], x[7]));
            } catch (RuntimeException | OutOfMemoryError e) {
                failure("attention " + t + "/" + dh, shape, "TFLOP/s", e);
            }
        }
    }

    /** The models of the training-step cases ({@code d4j.bench.models}, default all three). */
    private static List<String> trainModels() {
        return Arrays.stream(System.getProperty("d4j.bench.models", "mlp,ditA,ditB").split(","))
                .map(String::trim).filter(m -> !m.isEmpty()).toList();
    }

    /**
     * What a user of the backend gets end to end, the JMH suite's {@code TrainingBench} and {@code SamplingBench}
     * workloads ({@link Workloads}) on this backend: one {@link org.diffusion4j.training.Trainer#step()} of the MLP
     * and the two DiT configs at batch {@value Workloads#TRAIN_BATCH} (images/s, with the model FLOPs as 3x the
     * forward's), one DPM-Solver++(2M) step with guidance of DiT A at batch {@value Workloads#SAMPLE_BATCH} (one
     * guided model call of batch 2B and the fused update), and 50 such steps from fresh noise.
     */
    private void endToEndCases() {
        for (String m : trainModels()) {
            String name = "train step " + m;
            String shape = "batch " + Workloads.TRAIN_BATCH;
            if (skipped(name, shape, "img/s")) {
                continue;
            }
            try (Workloads.TrainerLoop loop = new Workloads.TrainerLoop(m, Workloads.TRAIN_BATCH, backend)) {
                Timing t = time(i -> loop.step(), 2);
                if (!Double.isFinite(loop.loss())) {
                    throw new IllegalStateException("training diverged: loss " + loop.loss());
                }
                double flops = 3 * Workloads.forwardFlopsPerSample(m) * Workloads.TRAIN_BATCH;
                add(new Row(name, shape, t.seconds(), Workloads.TRAIN_BATCH / t.seconds(), "img/s", Double.NaN, "",
                        t.calls(), String.format(Locale.ROOT, "%.3g TFLOP/s of model FLOPs, loss %.3f",
                        flops / t.seconds() / 1e12, loop.loss())));
            } catch (RuntimeException | OutOfMemoryError e) {
                failure(name, shape, "img/s", e);
            }
        }
        String shape = "ditA, batch " + Workloads.SAMPLE_BATCH + ", CFG";
        if (skipped("sampling step DPM++(2M)", shape, "ms") || skipped("sampling 50 steps", shape, "s")) {
            return;
        }
        try (Workloads.SampleLoop loop = new Workloads.SampleLoop("ditA", Workloads.SAMPLE_BATCH, backend)) {
            org.diffusion4j.sampling.SamplingGrid fifty = loop.grid(50);
            org.diffusion4j.sampling.SamplingGrid one = org.diffusion4j.sampling.SamplingGrid.of(fifty.schedule(),
                    fifty.level(25), fifty.level(26));
            loop.context().initialNoise(loop.samples(), fifty);
            Timing step = time(i -> loop.context().sample(org.diffusion4j.sampling.Samplers.dpmSolverPp2m(),
                    loop.samples(), one), 2);
            add(new Row("sampling step DPM++(2M)", shape, step.seconds(), step.seconds() * 1e3, "ms", Double.NaN, "",
                    step.calls(), ""));
            Timing all = time(i -> loop.sample(fifty), 1);
            for (float v : loop.samples().toFloatArray()) {
                if (!Float.isFinite(v)) {
                    throw new IllegalStateException("sampling produced a non-finite value");
                }
            }
            add(new Row("sampling 50 steps", shape, all.seconds(), all.seconds(), "s", Double.NaN, "", all.calls(),
                    String.format(Locale.ROOT, "%.1f images/s", Workloads.SAMPLE_BATCH / all.seconds())));
        } catch (RuntimeException | OutOfMemoryError e) {
            failure("sampling", shape, "s", e);
        }
    }

    /** A fused case noting its speed-up over {@code composedSeconds} (NaN when that case failed or was skipped). */
    private void fusedAttentionCase(String name, String shape, double flops, double peak, String peakName,
                                    double composedSeconds, IntConsumer call) {
        double s = attentionCase(name, shape, flops, peak, peakName, "", call);
        if (!Double.isNaN(s) && !Double.isNaN(composedSeconds) && !rows.isEmpty()) {
            Row r = rows.removeLast();
            rows.add(new Row(r.name(), r.shape(), r.seconds(), r.rate(), r.unit(), r.ref(), r.refName(), r.calls(),
                    String.format(Locale.ROOT, "%.1fx composed", composedSeconds / s)));
        }
    }

    /** One timed attention case; returns its seconds per call (NaN when skipped or failed). */
    private double attentionCase(String name, String shape, double flops, double peak, String peakName, String note,
                                 IntConsumer call) {
        if (skipped(name, shape, "TFLOP/s")) {
            return Double.NaN;
        }
        try {
            Timing t = time(call, 1);
            add(new Row(name, shape, t.seconds(), flops / t.seconds(), "TFLOP/s", peak, peakName, t.calls(), note));
            return t.seconds();
        } catch (RuntimeException | OutOfMemoryError e) {
            failure(name, shape, "TFLOP/s", e);
            return Double.NaN;
        }
    }

    private static double peak(CudaBackend.GemmMath math) {
        double bf16 = Double.parseDouble(System.getProperty("d4j.bench.peak.bf16", "790"));
        return switch (math) {
            case FP32 -> Double.parseDouble(System.getProperty("d4j.bench.peak.fp32", "67"));
            case TF32 -> Double.parseDouble(System.getProperty("d4j.bench.peak.tf32", String.valueOf(bf16 / 2)));
            case BF16 -> bf16;
        };
    }

    // ---------------------------------------------------------------- timing

    /** Median seconds per call and calls per trial. */
    record Timing(double seconds, int calls) {
    }

    /**
     * Times {@code call(i)} (i counts up across all calls so buffers rotate): {@code warmup} calls, one calibration
     * call, then {@link #trials} trials of enough calls to last {@link #TRIAL_SECONDS}; fewer trials (at least 3)
     * when the time budget would be exceeded.
     */
    private Timing time(IntConsumer call, int warmup) {
        int i = 0;
        for (int w = 0; w < warmup; w++) {
            call.accept(i++);
        }
        backend.synchronize();
        long t0 = System.nanoTime();
        call.accept(i++);
        backend.synchronize();
        double one = Math.max(1e-7, (System.nanoTime() - t0) / 1e9);
        int calls = (int) Math.max(1, Math.min(200, Math.ceil(TRIAL_SECONDS / one)));
        int tr = trials;
        double left = (deadline - System.nanoTime()) / 1e9;
        while (tr > 3 && tr * calls * one > Math.max(0, left) / 4) { // keep room for the remaining cases
            tr--;
        }
        double[] perCall = new double[tr];
        for (int t = 0; t < tr; t++) {
            backend.synchronize();
            long s = System.nanoTime();
            for (int c = 0; c < calls; c++) {
                call.accept(i++);
            }
            backend.synchronize();
            perCall[t] = (System.nanoTime() - s) / 1e9 / calls;
        }
        Arrays.sort(perCall);
        double median = tr % 2 == 1 ? perCall[tr / 2] : (perCall[tr / 2 - 1] + perCall[tr / 2]) / 2;
        return new Timing(median, calls);
    }

    /** Fills the pool with standard normals (outside any timing) so every case starts from finite values. */
    private void refill(Tensor[] pool) {
        for (int i = 0; i < pool.length; i++) {
            backend.randn(pool[i], 5, i);
        }
        backend.synchronize();
    }

    /** Records a row and reports it on stderr at once (check.sh keeps stderr in bench.err; useful after a time-out). */
    private void add(Row r) {
        rows.add(r);
        System.err.printf(Locale.ROOT, "GpuBench: %s %s: %s%n", r.name(), r.shape(), Double.isNaN(r.seconds())
                ? r.note() : String.format(Locale.ROOT, "%.4f ms/call, %d calls per trial", r.seconds() * 1e3, r.calls()));
    }

    private boolean skipped(String name, String shape, String unit) {
        if (System.nanoTime() < deadline) {
            return false;
        }
        add(new Row(name, shape, Double.NaN, Double.NaN, unit, Double.NaN, "", 0, "skipped: time budget spent"));
        return true;
    }

    private void failure(String name, String shape, String unit, Throwable e) {
        failed = true;
        String msg = e.getClass().getSimpleName() + ": " + String.valueOf(e.getMessage()).lines().findFirst().orElse("");
        add(new Row(name, shape, Double.NaN, Double.NaN, unit, Double.NaN, "", 0, "FAILED " + msg));
        try {
            backend.synchronize();
        } catch (RuntimeException ignored) {
            // a sticky CUDA error: later cases report their own failure
        }
    }

    // ---------------------------------------------------------------- output

    void printTable() {
        log.println("== GPU benchmark table (median time per call; rate as a fraction of the reference)");
        log.printf(Locale.ROOT, "   %-26s %-22s %10s %11s %-8s %6s  %s%n", "case", "operands", "ms/call", "rate", "unit",
                "frac", "of");
        for (Row r : rows) {
            if (Double.isNaN(r.seconds())) {
                log.printf(Locale.ROOT, "   %-26s %-22s %s%n", r.name(), r.shape(), r.note());
                continue;
            }
            double scale = switch (r.unit()) {                   // rates are kept in bytes/s and FLOP/s
                case "GB/s" -> 1e9;
                case "TFLOP/s" -> 1e12;
                default -> 1;                                   // img/s, ms, s: as they are
            };
            double frac = r.rate() / r.ref();
            log.printf(Locale.ROOT, "   %-26s %-22s %10.4f %11s %-8s %6s  %s%s%n", r.name(), r.shape(),
                    r.seconds() * 1e3, fmt(r.rate() / scale), r.unit(), Double.isNaN(frac) ? "-" : String.format(Locale.ROOT, "%.2f", frac),
                    r.refName(), r.note().isEmpty() ? "" : "  (" + r.note() + ")");
        }
    }

    void writeFiles(Path dir) {
        if (dir == null) {
            return;
        }
        StringBuilder tsv = new StringBuilder("case\toperands\tseconds_per_call\trate\tunit\tfraction\treference\tcalls_per_trial\tnote\n");
        StringBuilder json = new StringBuilder("{\n  \"backend\": ").append(quote(backend.name()))
                .append(",\n  \"bytes_per_operand\": ").append(n * 4).append(",\n  \"trials\": ").append(trials)
                .append(",\n  \"results\": [");
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            double scale = switch (r.unit()) {                   // rates are kept in bytes/s and FLOP/s
                case "GB/s" -> 1e9;
                case "TFLOP/s" -> 1e12;
                default -> 1;                                   // img/s, ms, s: as they are
            };
            double rate = r.rate() / scale;
            double frac = r.rate() / r.ref();
            tsv.append(String.join("\t", r.name(), r.shape(), num(r.seconds()), num(rate), r.unit(), num(frac),
                    r.refName(), Integer.toString(r.calls()), r.note())).append('\n');
            json.append(i == 0 ? "\n" : ",\n").append("    {\"case\": ").append(quote(r.name()))
                    .append(", \"operands\": ").append(quote(r.shape()))
                    .append(", \"seconds_per_call\": ").append(jnum(r.seconds()))
                    .append(", \"rate\": ").append(jnum(rate))
                    .append(", \"unit\": ").append(quote(r.unit()))
                    .append(", \"fraction\": ").append(jnum(frac))
                    .append(", \"reference\": ").append(quote(r.refName()))
                    .append(", \"calls_per_trial\": ").append(r.calls())
                    .append(", \"note\": ").append(quote(r.note())).append('}');
        }
        json.append("\n  ]\n}\n");
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("gpu-bench.tsv"), tsv, StandardCharsets.UTF_8);
            Files.writeString(dir.resolve("gpu-bench.json"), json, StandardCharsets.UTF_8);
            log.println("   results: " + dir.resolve("gpu-bench.tsv") + ", " + dir.resolve("gpu-bench.json"));
        } catch (IOException e) {
            log.println("   could not write the results to " + dir + ": " + e.getMessage());
        }
    }

    // ---------------------------------------------------------------- small helpers

    private static double[] filled(double v) {
        double[] a = new double[BATCH];
        Arrays.fill(a, v);
        return a;
    }

    /** {@code 67108864 -> "64M"}. */
    static String count(long v) {
        if (v % (1L << 20) == 0) {
            return (v >> 20) + "M";
        }
        if (v % (1L << 10) == 0) {
            return (v >> 10) + "K";
        }
        return Long.toString(v);
    }

    /** Three significant digits at most, no exponent. */
    static String fmt(double v) {
        if (Double.isNaN(v)) {
            return "-";
        }
        double a = Math.abs(v);
        return String.format(Locale.ROOT, a >= 100 ? "%.0f" : a >= 10 ? "%.1f" : a >= 1 ? "%.2f" : "%.3f", v);
    }

    private static String num(double v) {
        return Double.isNaN(v) ? "" : String.format(Locale.ROOT, "%.6g", v);
    }

    private static String jnum(double v) {
        return Double.isNaN(v) || Double.isInfinite(v) ? "null" : String.format(Locale.ROOT, "%.6g", v);
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            switch (ch) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\t' -> b.append("\\t");
                default -> {
                    if (ch < 0x20) {
                        b.append(String.format(Locale.ROOT, "\\u%04x", (int) ch));
                    } else {
                        b.append(ch);
                    }
                }
            }
        }
        return b.append('"').toString();
    }
}
