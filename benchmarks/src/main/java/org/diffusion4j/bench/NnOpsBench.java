package org.diffusion4j.bench;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.AdamWStep;
import org.diffusion4j.nn.ComposedNnOps;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
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

import java.util.concurrent.TimeUnit;

/**
 * The memory-bound fused layer ops of the CPU backend ({@link NnOps#forBackend}, i.e.
 * {@code org.diffusion4j.cpu.CpuNnOps}) against the same computation composed from the library's unfused backend
 * ops ({@link ComposedNnOps} on the same {@link CpuBackend}), in bytes per second. The in-run copies of the same
 * sizes are {@link DiffusionOpsBench#segmentCopy} and {@link DiffusionOpsBench#backendCopy} ({@code numel} is the
 * same parameter there), so {@code benchmarks/run.sh} runs both classes with the same sizes.
 *
 * <p>Napkin math (bytes per call, every input read once and every output written once; the composed path's
 * temporaries are not counted, so they show as a lower rate):
 * <ul>
 *   <li>{@code layerNormModulate}: DiT's pre-attention norm {@code y = LN(x)·(1 + scale_b) + shift_b} (no affine,
 *       as in the reference DiT block; Peebles &amp; Xie 2023, §3.2), {@code x [B = 8, T, D = 256]}, saving the row
 *       mean and {@code rstd} for backward: reads {@code x}, writes {@code y}: {@code 8 numel} (the per-sample
 *       {@code shift, scale} and the per-row statistics are under 1% of it);</li>
 *   <li>{@code adamw}: one AdamW step (Loshchilov &amp; Hutter 2019, Alg. 2) over {@code numel} parameters: reads
 *       {@code param, grad, m, v}, writes {@code param, m, v}: {@code 28 numel}.</li>
 * </ul>
 * The secondary result {@code bytes} is bytes/s.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@State(Scope.Benchmark)
public class NnOpsBench {

    /** Samples per batch of the LayerNorm case. */
    static final int BATCH = 8;
    /** Feature width of the LayerNorm case. */
    static final int DIM = 256;

    /** Floats per operand; a multiple of {@code B·D = 2048}. */
    @Param({"32768", "262144", "2097152", "16777216"})
    public int numel;

    CpuBackend cpu;
    NnOps fused;
    NnOps composed;
    TensorScope scope;
    Tensor x;
    Tensor y;
    Tensor shift;
    Tensor scale;
    Tensor mean;
    Tensor rstd;
    Tensor param;
    Tensor grad;
    Tensor m;
    Tensor v;
    AdamWStep step;

    @Setup(Level.Trial)
    public void setUp() {
        if (numel % (BATCH * DIM) != 0) {
            throw new IllegalArgumentException("numel " + numel + " is not a multiple of B*D = " + BATCH * DIM);
        }
        int tokens = numel / (BATCH * DIM);
        cpu = new CpuBackend();
        fused = NnOps.forBackend(cpu);
        composed = new ComposedNnOps(cpu);
        scope = TensorScope.open();
        x = cpu.empty(scope, DType.F32, BATCH, tokens, DIM);
        y = cpu.empty(scope, DType.F32, BATCH, tokens, DIM);
        shift = cpu.empty(scope, DType.F32, BATCH, DIM);
        scale = cpu.empty(scope, DType.F32, BATCH, DIM);
        mean = cpu.empty(scope, DType.F32, BATCH, tokens);
        rstd = cpu.empty(scope, DType.F32, BATCH, tokens);
        param = cpu.empty(scope, DType.F32, numel);
        grad = cpu.empty(scope, DType.F32, numel);
        m = cpu.empty(scope, DType.F32, numel);
        v = cpu.empty(scope, DType.F32, numel);
        cpu.randn(x, 1, 0);
        cpu.randn(shift, 2, 0);
        cpu.randn(scale, 3, 0);
        cpu.randn(param, 4, 0);
        cpu.randn(grad, 5, 0);
        cpu.fill(m, 0f);
        cpu.fill(v, 0f);
        cpu.fill(y, 0f);
        // Mid-training coefficients (step 1000): the update stays small, so thousands of in-place calls keep the
        // values finite.
        step = AdamWStep.of(1e-4, 0.9, 0.999, 1e-8, 0.01, 1000, 1.0);
        System.out.println("\n[NnOpsBench] " + cpu.name() + ", LayerNorm [" + BATCH + ", " + tokens + ", " + DIM
                + "] moves " + 8L * numel + " bytes, AdamW over " + numel + " parameters " + 28L * numel);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        fused.close();
        composed.close();
        scope.close();
        cpu.close();
    }

    @Benchmark
    public void fusedLayerNormModulate(DiffusionOpsBench.Bytes b) {
        fused.layerNorm(x, null, null, shift, scale, 1e-6f, y, mean, rstd);
        b.bytes += 8L * numel;
    }

    @Benchmark
    public void composedLayerNormModulate(DiffusionOpsBench.Bytes b) {
        composed.layerNorm(x, null, null, shift, scale, 1e-6f, y, mean, rstd);
        b.bytes += 8L * numel;
    }

    @Benchmark
    public void fusedAdamw(DiffusionOpsBench.Bytes b) {
        fused.adamw(step, param, grad, m, v);
        b.bytes += 28L * numel;
    }

    @Benchmark
    public void composedAdamw(DiffusionOpsBench.Bytes b) {
        composed.adamw(step, param, grad, m, v);
        b.bytes += 28L * numel;
    }
}
