package org.diffusion4j.bench;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.sampling.ComposedDiffusionOps;
import org.diffusion4j.sampling.DiffusionOps;
import org.diffusion4j.sampling.FusedStep;
import org.diffusion4j.sampling.NoiseSeeds;
import org.diffusion4j.sampling.NoisingCoefficients;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.PredictionConversion;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;

/**
 * The fused diffusion ops of the CPU backend ({@link DiffusionOps#forBackend}, i.e.
 * {@code org.diffusion4j.cpu.CpuDiffusionOps}) against the same computation composed from the library's unfused
 * backend ops ({@link ComposedDiffusionOps} on the same {@link CpuBackend}), beside in-run copies of the same
 * memory, in bytes per second. All tensors are F32 {@code [B = 8, n]} with {@code numel = 8 n} floats per operand.
 *
 * <p>Napkin math (bytes per call, compulsory traffic only; temporaries of the composed path are not counted, so
 * its extra passes show as a lower rate):
 * <ul>
 *   <li>{@code forwardNoise}: reads {@code x0}, writes {@code x_t} and the target (v), no {@code ε} output:
 *       {@code 12 numel}. Noise is Philox generated inside the op (fused) or on the host and copied in
 *       (composed), so this op may be bound by Philox arithmetic rather than by memory;</li>
 *   <li>{@code samplerStep}: one DPM-Solver++(2M) step (Lu et al. 2022b, Algorithm 2; coefficients as
 *       {@code Samplers.dpmSolverPp2m} passes them, mid-run so the history is read and rewritten) of a
 *       v-prediction model with classifier-free guidance {@code w = 7.5}, no rescale, {@code xIn = x}: reads
 *       {@code x}, {@code cond}, {@code uncond}, {@code hist}, writes {@code x} and {@code hist} in place:
 *       {@code 24 numel};</li>
 *   <li>{@code segmentCopy} ({@code MemorySegment.copy}, one thread) and {@code backendCopy}
 *       ({@link CpuBackend#copy}, split over the pool) of one operand into another: {@code 8 numel}
 *       (read + write).</li>
 * </ul>
 * The secondary result {@code bytes} is bytes/s (divide by 1e9 for GB/s); an op's fraction of copy bandwidth is
 * its {@code bytes} over a copy's. Default sizes for a Zen 4 core (1 MiB L2, 32 MiB L3), from L2-resident to
 * ≥ 4× the last-level cache: {@code numel = 32768} (128 KiB per operand, 512 KiB for the four buffers of a step),
 * {@code 262144} (1 MiB per operand: L3), {@code 2097152} (8 MiB per operand: 16–32 MiB in all, about the L3) and
 * {@code 16777216} (64 MiB per operand: 192 MiB per noising call, 256 MiB per step, 6x and 8x the L3);
 * {@code benchmarks/run.sh} derives the same four sizes from the machine's cache sizes and passes them with
 * {@code -p numel=...} to this class and {@link NnOpsBench}.
 *
 * <p>The step runs in place for thousands of calls; with v-prediction the linear recurrence it iterates is
 * contracting (spectral radius ~0.996), so the values stay finite and away from subnormals.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@State(Scope.Benchmark)
public class DiffusionOpsBench {

    /** Samples per batch. */
    public static final int BATCH = 8;

    /** Floats per operand ({@code B·n}). */
    @Param({"32768", "262144", "2097152", "16777216"})
    public int numel;

    CpuBackend cpu;
    DiffusionOps fused;
    DiffusionOps composed;
    TensorScope scope;
    Tensor x0;
    Tensor xt;
    Tensor target;
    Tensor x;
    Tensor cond;
    Tensor uncond;
    Tensor hist;
    Tensor copyDst;
    MemorySegment xs;
    MemorySegment copyDstSeg;
    NoisingCoefficients noising;
    NoiseSeeds seeds;
    FusedStep step;

    /** Bytes moved, reported per second. */
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    @State(Scope.Thread)
    public static class Bytes {
        public long bytes;
    }

    @Setup(Level.Trial)
    public void setUp() {
        if (numel % BATCH != 0) {
            throw new IllegalArgumentException("numel " + numel + " is not a multiple of the batch " + BATCH);
        }
        int n = numel / BATCH;
        cpu = new CpuBackend();
        fused = DiffusionOps.forBackend(cpu);
        composed = new ComposedDiffusionOps(cpu);
        scope = TensorScope.open();
        x0 = cpu.empty(scope, DType.F32, BATCH, n);
        xt = cpu.empty(scope, DType.F32, BATCH, n);
        target = cpu.empty(scope, DType.F32, BATCH, n);
        x = cpu.empty(scope, DType.F32, BATCH, n);
        cond = cpu.empty(scope, DType.F32, BATCH, n);
        uncond = cpu.empty(scope, DType.F32, BATCH, n);
        hist = cpu.empty(scope, DType.F32, BATCH, n);
        copyDst = cpu.empty(scope, DType.F32, BATCH, n);
        cpu.randn(x0, 1, 0);
        cpu.randn(x, 1, 1);
        cpu.randn(cond, 1, 2);
        cpu.randn(uncond, 1, 3);
        cpu.randn(hist, 1, 4);
        cpu.fill(xt, 0f);
        cpu.fill(target, 0f);
        cpu.fill(copyDst, 0f);
        xs = x.segment();
        copyDstSeg = copyDst.segment();

        // Forward noising: cosine VP levels at per-sample t in (0, 1), v target (Salimans & Ho 2022, §4).
        double[] a = new double[BATCH];
        double[] s = new double[BATCH];
        double[] c = new double[BATCH];
        double[] d = new double[BATCH];
        for (int b = 0; b < BATCH; b++) {
            double t = (b + 0.5) / BATCH;
            a[b] = Math.cos(0.5 * Math.PI * t);
            s[b] = Math.sin(0.5 * Math.PI * t);
            c[b] = Prediction.V.x0Coefficient(a[b], s[b]);
            d[b] = Prediction.V.epsCoefficient(a[b], s[b]);
        }
        noising = new NoisingCoefficients(a, s, c, d);
        seeds = NoiseSeeds.batch(1234, 0, 0, BATCH);
        step = dpmSolverPp2mStep();

        System.out.println("\n[DiffusionOpsBench] " + cpu.name() + ", [" + BATCH + ", " + n + "]: forwardNoise moves "
                + 12L * numel + " bytes, samplerStep " + 24L * numel + ", a copy " + 8L * numel);
    }

    /**
     * The {@link FusedStep} of a mid-run DPM-Solver++(2M) step from VP level {@code (α_t, σ_t) = (0.8, 0.6)} to
     * {@code (α_s, σ_s) = (0.85, √(1 − 0.85²))} with equal previous step ({@code r = 1}), built as
     * {@code Samplers.dpmSolverPp2mSde} (η = 0) and {@code SamplerContext.update} build it for a v-prediction
     * model evaluated at {@code x} itself ({@code xIn = x}, so {@code ai = 0}).
     */
    public static FusedStep dpmSolverPp2mStep() {
        double alphaT = 0.8;
        double sigmaT = 0.6;
        double alphaS = 0.85;
        double sigmaS = Math.sqrt(1 - alphaS * alphaS);
        double h = Math.log(alphaS / sigmaS) - Math.log(alphaT / sigmaT);     // λ_s − λ_t
        double phi = -Math.expm1(-h);                                          // 1 − e^{−h}
        double k = 0.5;                                                        // 1/(2r), r = h_{i−1}/h_i = 1
        double decay = sigmaS / sigmaT;
        double pred = alphaS * phi * (1 + k);                                  // coefficient of D_i
        double histCoef = -alphaS * phi * k;                                   // coefficient of D_{i−1}
        PredictionConversion conv = PredictionConversion.of(Prediction.V, Prediction.SAMPLE, alphaT, sigmaT);
        return new FusedStep(filled(decay + pred * conv.a()), filled(0), filled(pred * conv.b()), filled(histCoef),
                filled(0), filled(conv.a()), filled(conv.b()), 7.5, 0.0, null, 1);
    }

    private static double[] filled(double v) {
        double[] a = new double[BATCH];
        Arrays.fill(a, v);
        return a;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        fused.close();
        composed.close();
        scope.close();
        cpu.close();
    }

    @Benchmark
    public void fusedForwardNoise(Bytes b) {
        fused.forwardNoise(noising, seeds, 0, x0, xt, target, null);
        b.bytes += 12L * numel;
    }

    @Benchmark
    public void composedForwardNoise(Bytes b) {
        composed.forwardNoise(noising, seeds, 0, x0, xt, target, null);
        b.bytes += 12L * numel;
    }

    @Benchmark
    public void fusedSamplerStep(Bytes b) {
        fused.samplerStep(step, x, x, cond, uncond, hist, x, hist);
        b.bytes += 24L * numel;
    }

    @Benchmark
    public void composedSamplerStep(Bytes b) {
        composed.samplerStep(step, x, x, cond, uncond, hist, x, hist);
        b.bytes += 24L * numel;
    }

    @Benchmark
    public void segmentCopy(Bytes b) {
        MemorySegment.copy(xs, 0, copyDstSeg, 0, 4L * numel);
        b.bytes += 8L * numel;
    }

    @Benchmark
    public void backendCopy(Bytes b) {
        cpu.copy(x, copyDst);
        b.bytes += 8L * numel;
    }
}
