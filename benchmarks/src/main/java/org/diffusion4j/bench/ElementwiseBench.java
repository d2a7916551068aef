package org.diffusion4j.bench;

import org.diffusion4j.cpu.CpuBackend;
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
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;

/**
 * {@code out = alpha x + beta y} ({@link CpuBackend#axpby}) in bytes per second beside copies of the same
 * memory in the same run, at an L2-sized and a DRAM-sized tensor.
 *
 * <p>Napkin math: axpby reads {@code x} and {@code y} and writes {@code out}: {@code 12 n} bytes per call; a
 * copy reads and writes {@code 8 n}. The secondary result {@code bytes} is bytes/s (divide by 1e9 for GB/s).
 * Sizes: {@code n = 65536} (768 KiB in all, within one core's 1 MiB L2 on the Zen 4 build machine) and
 * {@code n = 33554432} (128 MiB per tensor, 384 MiB in all: 12x the 32 MiB L3).
 *
 * <p>Benchmarks:
 * <ul>
 *   <li>{@code axpby}: the backend, default thread count;</li>
 *   <li>{@code axpby1Thread}: the backend on one thread;</li>
 *   <li>{@code segmentLoopAxpby}: a plain one-thread {@code getAtIndex/setAtIndex} loop over the segments,
 *       the design the backend's float[]-block kernels were measured against;</li>
 *   <li>{@code segmentCopy}: one {@code MemorySegment.copy} of {@code x} into {@code out} (one thread);</li>
 *   <li>{@code backendCopy}: {@link CpuBackend#copy}, which splits large copies over the pool.</li>
 * </ul>
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@State(Scope.Benchmark)
public class ElementwiseBench {

    @Param({"65536", "33554432"})
    public int n;

    CpuBackend cpu;
    CpuBackend cpu1;
    TensorScope scope;
    Tensor x;
    Tensor y;
    Tensor out;
    MemorySegment xs;
    MemorySegment ys;
    MemorySegment os;

    /** Bytes moved, reported per second. */
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    @State(Scope.Thread)
    public static class Bytes {
        public long bytes;
    }

    @Setup(Level.Trial)
    public void setUp() {
        cpu = new CpuBackend();
        cpu1 = new CpuBackend(1);
        scope = TensorScope.open();
        x = cpu.empty(scope, DType.F32, n);
        y = cpu.empty(scope, DType.F32, n);
        out = cpu.empty(scope, DType.F32, n);
        cpu.randn(x, 1, 0);
        cpu.randn(y, 1, 1);
        cpu.fill(out, 0f);
        xs = x.segment();
        ys = y.segment();
        os = out.segment();
        System.out.println("\n[ElementwiseBench] " + cpu.name() + ", n = " + n + ": axpby moves " + 12L * n
                + " bytes, a copy " + 8L * n);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        scope.close();
        cpu.close();
        cpu1.close();
    }

    @Benchmark
    public void axpby(Bytes b) {
        cpu.axpby(0.5f, x, -2f, y, out);
        b.bytes += 12L * n;
    }

    @Benchmark
    public void axpby1Thread(Bytes b) {
        cpu1.axpby(0.5f, x, -2f, y, out);
        b.bytes += 12L * n;
    }

    @Benchmark
    public void segmentLoopAxpby(Bytes b) {
        MemorySegment xl = xs;
        MemorySegment yl = ys;
        MemorySegment ol = os;
        long len = n;
        for (long i = 0; i < len; i++) {
            ol.setAtIndex(ValueLayout.JAVA_FLOAT, i,
                    0.5f * xl.getAtIndex(ValueLayout.JAVA_FLOAT, i) - 2f * yl.getAtIndex(ValueLayout.JAVA_FLOAT, i));
        }
        b.bytes += 12L * n;
    }

    @Benchmark
    public void segmentCopy(Bytes b) {
        MemorySegment.copy(xs, 0, os, 0, 4L * n);
        b.bytes += 8L * n;
    }

    @Benchmark
    public void backendCopy(Bytes b) {
        cpu.copy(x, out);
        b.bytes += 8L * n;
    }
}
