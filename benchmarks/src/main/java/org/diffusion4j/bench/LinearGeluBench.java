package org.diffusion4j.bench;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.Activation;
import org.diffusion4j.nn.ComposedNnOps;
import org.diffusion4j.nn.NnOps;
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

import java.util.concurrent.TimeUnit;

/**
 * The first linear layer of a DiT MLP, {@code y = GELU_tanh(x·Wᵀ + b)} on {@code x [rows, in]},
 * {@code W [4·in, in]}, as {@link org.diffusion4j.nn.Linear#forward} runs it: one OpenBLAS product, then the bias
 * add and activation either fused in one pass ({@code CpuNnOps.activation}, which also saves the pre-activation for
 * backward) or composed from unfused backend ops ({@link ComposedNnOps#activation}). Forward alone, and forward
 * plus backward ({@code dz = dy·GELU'(pre)}, {@code dW += dzᵀx}, {@code db += Σ dz}, {@code dx = dz·W}).
 *
 * <p>Shapes: {@code shape = "A"}: {@code rows = 128·49} tokens of DiT config A (batch 128, 28×28 patch 4), in 128,
 * out 512; {@code "B"}: {@code rows = 128·196} (patch 2), in 192, out 768. FLOPs counted: {@code 2·rows·in·out}
 * forward, 3× that forward + backward (the pointwise work is not counted); the secondary result {@code flop} is
 * FLOP/s. The ceiling is the in-run {@link GemmBench} rate.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@State(Scope.Benchmark)
public class LinearGeluBench {

    @Param({"A", "B"})
    public String shape;

    @Param({"fused", "unfused"})
    public String impl;

    CpuBackend cpu;
    NnOps ops;
    TensorScope scope;
    Tensor x;
    Tensor w;
    Tensor bias;
    Tensor z;
    Tensor y;
    Tensor dy;
    Tensor dz;
    Tensor dw;
    Tensor db;
    Tensor dx;
    long flops;

    /** FLOPs done, reported per second. */
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    @State(Scope.Thread)
    public static class Flops {
        public long flop;
    }

    @Setup(Level.Trial)
    public void setUp() {
        long rows;
        long in;
        switch (shape) {
            case "A" -> {
                rows = 128L * 49;
                in = 128;
            }
            case "B" -> {
                rows = 128L * 196;
                in = 192;
            }
            default -> throw new IllegalArgumentException("shape must be A or B, got " + shape);
        }
        long out = 4 * in;
        cpu = new CpuBackend();
        ops = switch (impl) {
            case "fused" -> NnOps.forBackend(cpu);
            case "unfused" -> new ComposedNnOps(cpu);
            default -> throw new IllegalArgumentException("impl must be fused or unfused, got " + impl);
        };
        scope = TensorScope.open();
        x = cpu.empty(scope, DType.F32, rows, in);
        w = cpu.empty(scope, DType.F32, out, in);
        bias = cpu.empty(scope, DType.F32, out);
        z = cpu.empty(scope, DType.F32, rows, out);
        y = cpu.empty(scope, DType.F32, rows, out);
        dy = cpu.empty(scope, DType.F32, rows, out);
        dz = cpu.empty(scope, DType.F32, rows, out);
        dw = cpu.zeros(scope, DType.F32, out, in);
        db = cpu.zeros(scope, DType.F32, out);
        dx = cpu.empty(scope, DType.F32, rows, in);
        cpu.randn(x, 1, 0);
        cpu.randn(w, 2, 0);
        cpu.randn(bias, 3, 0);
        cpu.randn(dy, 4, 0);
        flops = 2 * rows * in * out;
        System.out.println("\n[LinearGeluBench] " + ops + ", [" + rows + ", " + in + "] -> " + out + ": "
                + flops / 1e9 + " GFLOP forward");
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        ops.close();
        scope.close();
        cpu.close();
    }

    @Benchmark
    public void forward(Flops f) {
        cpu.gemm(false, true, 1f, x, w, 0f, z);
        ops.activation(Activation.GELU_TANH, z, bias, z, y);
        f.flop += flops;
    }

    @Benchmark
    public void forwardBackward(Flops f) {
        cpu.gemm(false, true, 1f, x, w, 0f, z);
        ops.activation(Activation.GELU_TANH, z, bias, z, y);
        ops.activationBackward(Activation.GELU_TANH, z, dy, dz);
        cpu.gemm(true, false, 1f, dz, x, 1f, dw);
        ops.columnSum(dz, db, true);
        cpu.gemm(false, false, 1f, dz, w, 0f, dx);
        f.flop += 3 * flops;
    }
}
