package org.diffusion4j.bench;

import org.bytedeco.javacpp.Loader;
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

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * Square single-precision GEMM {@code C[n, n] = A[n, n] B[n, n]} through {@link CpuBackend#gemm} beside the
 * raw OpenBLAS {@code cblas_sgemm} called by an FFM downcall of this class on the same memory with the same
 * BLAS thread count, so the difference is the tensor layer's overhead (argument checks, the BLAS thread
 * lock, segment slicing).
 *
 * <p>Napkin math: one call is {@code 2 n^3} FLOPs; the secondary result {@code flop} is FLOP/s (divide by
 * 1e9 for GFLOP/s). Reads {@code 8 n^2} bytes and writes {@code 4 n^2}: at n = 64 a call is ~0.5 MFLOP, a
 * few microseconds, where per-call overhead shows; at 1024 it is compute-bound.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@State(Scope.Benchmark)
public class GemmBench {

    @Param({"64", "256", "1024"})
    public int n;

    CpuBackend cpu;
    /** OpenBLAS's thread count for the raw call, read back after setting it to the backend's. */
    int rawThreads;
    TensorScope scope;
    Tensor a;
    Tensor b;
    Tensor c;
    MemorySegment as;
    MemorySegment bs;
    MemorySegment cs;
    MethodHandle sgemm;

    /** FLOPs done, reported per second. */
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    @State(Scope.Thread)
    public static class Flops {
        public long flop;
    }

    @Setup(Level.Trial)
    public void setUp() throws Throwable {
        cpu = new CpuBackend();
        scope = TensorScope.open();
        SplittableRandom r = new SplittableRandom(42);
        a = cpu.empty(scope, DType.F32, n, n);
        b = cpu.empty(scope, DType.F32, n, n);
        c = cpu.zeros(scope, DType.F32, n, n);
        float[] v = new float[n * n];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextDouble(-1, 1);
        }
        a.copyFrom(v);
        b.copyFrom(v);
        as = a.segment();
        bs = b.segment();
        cs = c.segment();
        // First product through the backend: loads OpenBLAS and sets its thread count, which the raw call then
        // shares (the count is process-global).
        cpu.gemm(false, false, 1f, a, b, 0f, c);
        // The library file the backend binds (the preset's extracted OpenBLAS, as cpu.OpenBlas finds it), and its
        // thread count set explicitly: a new-user trial found SymbolLookup.loaderLookup() resolving cblas_sgemm in
        // an instance running single-threaded, so "tensor / raw" read as a negative overhead.
        Loader.load(org.bytedeco.openblas.global.openblas_nolapack.class);
        SymbolLookup lookup = null;
        for (java.util.Map.Entry<String, String> e : Loader.getLoadedLibraries().entrySet()) {
            if (e.getKey().startsWith("openblas") && e.getValue() != null
                    && java.nio.file.Files.exists(java.nio.file.Path.of(e.getValue()))) {
                lookup = SymbolLookup.libraryLookup(java.nio.file.Path.of(e.getValue()),
                        java.lang.foreign.Arena.global());
                break;
            }
        }
        if (lookup == null) {
            lookup = SymbolLookup.loaderLookup();
        }
        Linker linker = Linker.nativeLinker();
        sgemm = linker.downcallHandle(lookup.find("cblas_sgemm").orElseThrow(), FunctionDescriptor.ofVoid(JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT,
                JAVA_FLOAT, ADDRESS, JAVA_INT));
        java.lang.invoke.MethodHandle setThreads = linker.downcallHandle(
                lookup.find("openblas_set_num_threads").orElseThrow(), FunctionDescriptor.ofVoid(JAVA_INT));
        java.lang.invoke.MethodHandle getThreads = linker.downcallHandle(
                lookup.find("openblas_get_num_threads").orElseThrow(), FunctionDescriptor.of(JAVA_INT));
        setThreads.invokeExact(cpu.threads());
        rawThreads = (int) getThreads.invokeExact();
        System.out.println("\n[GemmBench] " + cpu.name() + ", n = " + n + ": " + 2L * n * n * n + " FLOP per call; raw "
                + "cblas_sgemm with " + rawThreads + " OpenBLAS threads");
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        scope.close();
        cpu.close();
    }

    /** {@code c = a b} through the tensor layer. */
    @Benchmark
    public void tensorGemm(Flops f) {
        cpu.gemm(false, false, 1f, a, b, 0f, c);
        f.flop += 2L * n * n * n;
    }

    /** The same product as one raw {@code cblas_sgemm} downcall on the same memory. */
    @Benchmark
    public void rawOpenBlas(Flops f) throws Throwable {
        sgemm.invokeExact(101, 111, 111, n, n, n, 1f, as, n, bs, n, 0f, cs, n);
        f.flop += 2L * n * n * n;
    }
}
