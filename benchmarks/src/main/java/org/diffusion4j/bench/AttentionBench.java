package org.diffusion4j.bench;

import org.diffusion4j.cpu.CpuAttention;
import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.attention.AttentionDims;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.nn.attention.ComposedAttention;
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
 * Scaled dot-product attention on the CPU backend, fused ({@link CpuAttention}: FlashAttention-2 tiles over
 * OpenBLAS, never a {@code T×T} matrix) against naive ({@link ComposedAttention}: batched GEMM, softmax, GEMM with
 * the full score matrix), forward alone and forward + backward, {@code q, k, v [B, H, T, Dh]} with
 * {@code B = 2, H = 4, Dh = 64}, at {@code T = 49} (DiT A's 7×7 tokens), 256, 1024 and 4096 (the naive path's score
 * matrix is 512 MiB there, and one naive forward + backward call takes seconds).
 *
 * <p>Napkin math (the FlashAttention-2 convention, Dao 2023 §4.1): forward {@code 4·B·H·T²·Dh} FLOPs, backward
 * 2.5× that, so one forward + backward call counts {@code 14·B·H·T²·Dh}; the secondary result {@code flop} is
 * FLOP/s (divide by 1e9 for GFLOP/s). Compare with the OpenBLAS sgemm ceiling of {@code GemmBench} (~230 GFLOP/s on
 * 2 cores): the attention products are small ({@code 64×128×Dh} tiles), and the softmax costs ~12 float operations
 * per score that are not counted. The naive path also moves the {@code B·H·T²} score matrix through memory several
 * times ({@code 4·B·H·T²} bytes per pass: 32 MiB at {@code T = 1024}).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@State(Scope.Benchmark)
public class AttentionBench {

    static final int BATCH = 2;
    static final int HEADS = 4;

    @Param({"49", "256", "1024", "4096"})
    public int seqLen;

    @Param({"64"})
    public int headDim;

    @Param({"fused", "naive"})
    public String impl;

    CpuBackend cpu;
    AttentionOps ops;
    TensorScope scope;
    Tensor q;
    Tensor k;
    Tensor v;
    Tensor out;
    Tensor lse;
    Tensor dOut;
    Tensor dq;
    Tensor dk;
    Tensor dv;
    float scale;
    long forwardFlops;

    /** FLOPs done, reported per second. */
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    @State(Scope.Thread)
    public static class Flops {
        public long flop;
    }

    @Setup(Level.Trial)
    public void setUp() {
        cpu = new CpuBackend();
        ops = impl.equals("fused") ? new CpuAttention(cpu) : new ComposedAttention(cpu);
        scope = TensorScope.open();
        long[] shape = {BATCH, HEADS, seqLen, headDim};
        q = cpu.empty(scope, DType.F32, shape);
        k = cpu.empty(scope, DType.F32, shape);
        v = cpu.empty(scope, DType.F32, shape);
        dOut = cpu.empty(scope, DType.F32, shape);
        cpu.randn(q, 1, 0);
        cpu.randn(k, 2, 0);
        cpu.randn(v, 3, 0);
        cpu.randn(dOut, 4, 0);
        out = cpu.empty(scope, DType.F32, shape);
        lse = cpu.empty(scope, DType.F32, BATCH, HEADS, seqLen);
        dq = cpu.empty(scope, DType.F32, shape);
        dk = cpu.empty(scope, DType.F32, shape);
        dv = cpu.empty(scope, DType.F32, shape);
        scale = AttentionOps.defaultScale(headDim);
        AttentionDims d = new AttentionDims(BATCH, HEADS, seqLen, seqLen, headDim);
        forwardFlops = (long) d.forwardFlops();
        ops.forward(q, k, v, scale, out, lse);
        System.out.println("\n[AttentionBench] " + ops + ", " + d + ": forward " + forwardFlops / 1e9
                + " GFLOP, forward+backward " + (forwardFlops + (long) d.backwardFlops()) / 1e9 + " GFLOP per call"
                + (impl.equals("naive") ? "; score matrix " + 4L * BATCH * HEADS * seqLen * seqLen / (1 << 20)
                + " MiB" : ""));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        scope.close();
        ops.close();
        cpu.close();
    }

    /** {@code out, lse = attention(q, k, v)}. */
    @Benchmark
    public void forward(Flops f) {
        ops.forward(q, k, v, scale, out, lse);
        f.flop += forwardFlops;
    }

    /** Forward, then backward from the saved {@code out} and {@code lse}: one training step's attention. */
    @Benchmark
    public void forwardBackward(Flops f) {
        ops.forward(q, k, v, scale, out, lse);
        ops.backward(q, k, v, out, lse, dOut, scale, dq, dk, dv);
        f.flop += forwardFlops * 7 / 2;
    }
}
