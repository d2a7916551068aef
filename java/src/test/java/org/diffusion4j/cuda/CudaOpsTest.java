package org.diffusion4j.cuda;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.random.Philox;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.diffusion4j.cuda.CudaTestSupport.assertBitwise;
import static org.diffusion4j.cuda.CudaTestSupport.assertClose;
import static org.diffusion4j.cuda.CudaTestSupport.awayFromZero;
import static org.diffusion4j.cuda.CudaTestSupport.random;
import static org.diffusion4j.cuda.CudaTestSupport.seedOf;
import static org.diffusion4j.cuda.CudaTestSupport.uniform;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every op of the CUDA backend against the CPU backend on the same random inputs of odd shapes, with
 * outputs poisoned (NaN) beforehand so that an element a kernel fails to write shows up. Tolerances are
 * relative L2 errors ({@code ‖cuda − cpu‖ / ‖cpu‖}, DESIGN.md §5): elementwise 1e-6, reductions and
 * softmax 1e-5, fp32 GEMM 1e-5, TF32 3e-3, BF16 2e-2; copies, casts, gathers and Philox random numbers
 * must be bit-identical.
 *
 * <p>Skipped, with the reason printed, only where there is no CUDA device (see
 * {@link CudaTestSupport#assumeDevice()}).
 */
@Tag("cuda")
class CudaOpsTest {

    static final double ELEMENTWISE = 1e-6;
    static final double REDUCTION = 1e-5;
    static final double GEMM_FP32 = 1e-5;
    static final double GEMM_TF32 = 3e-3;
    static final double GEMM_BF16 = 2e-2;

    /** Odd shapes: single elements, primes, sizes just past powers of two, size-1 dims. */
    static final long[][] SHAPES = {{1}, {7}, {3, 5}, {17, 129}, {2, 3, 67}, {5, 1, 1023}, {4099}, {3, 2, 2049}};

    static CudaBackend gpu;
    static Backend cpu;
    TensorScope scope;

    @BeforeAll
    static void start() {
        if (CudaRuntime.probe(0).usable()) {
            gpu = CudaRuntime.createBackend(0, CudaBackend.GemmMath.FP32);
            cpu = new CpuBackend();
        }
    }

    @AfterAll
    static void stop() {
        if (gpu != null) {
            gpu.close();
        }
        if (cpu != null) {
            cpu.close();
        }
    }

    @BeforeEach
    void open() {
        CudaTestSupport.assumeDevice(); // per test, so that a run without a device counts every test as skipped
        scope = TensorScope.open();
    }

    @AfterEach
    void close() {
        if (scope != null) {
            scope.close();
        }
    }

    // ---------------------------------------------------------------- helpers

    static String s(long... shape) {
        return Arrays.toString(shape);
    }

    static long numel(long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** A pair of tensors holding the same values, one per backend. */
    record Pair(Tensor g, Tensor c) {
    }

    Pair pair(float[] v, long... shape) {
        return new Pair(gpu.fromArray(scope, v, shape), cpu.fromArray(scope, v, shape));
    }

    /** NaN-poisoned F32 outputs on both backends. */
    Pair out(long... shape) {
        Tensor g = gpu.empty(scope, DType.F32, shape);
        gpu.fill(g, Float.NaN);
        Tensor c = cpu.empty(scope, DType.F32, shape);
        cpu.fill(c, Float.NaN);
        return new Pair(g, c);
    }

    static long[] withLast(long[] shape, long last) {
        long[] b = shape.clone();
        b[b.length - 1] = last;
        return b;
    }

    /** The shapes of b that broadcast against a in each way ({@link Ops.Broadcast}). */
    static List<long[]> broadcastShapes(long[] a) {
        List<long[]> l = new ArrayList<>();
        l.add(a.clone());                         // NONE
        l.add(new long[] {1});                    // SCALAR
        l.add(new long[] {a[a.length - 1]});      // ROW
        l.add(withLast(a, 1));                    // PER_ROW
        return l;
    }

    // ---------------------------------------------------------------- transfers and memory

    @Test
    void hostTransfersRoundTripAcrossStagingChunks() {
        int chunkFloats = CudaBackend.STAGING_CHUNK_BYTES / 4;
        for (int n : new int[] {1, 5, 4099, chunkFloats - 3, chunkFloats + 1, 2 * chunkFloats + chunkFloats / 2 + 7}) {
            String tc = "transfer n=" + n;
            float[] v = uniform(random(tc), n, -1e3, 1e3);
            Tensor t = gpu.fromArray(scope, v, n);
            assertBitwise("transfer (heap)", s(n), t.toFloatArray(), v, seedOf(tc));
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment host = arena.allocate((long) n * 4, 64);
                MemorySegment.copy(v, 0, host, ValueLayout.JAVA_FLOAT, 0, n);
                Tensor u = gpu.empty(scope, DType.F32, n);
                u.copyFrom(host);
                MemorySegment back = arena.allocate((long) n * 4, 64);
                u.copyTo(back);
                assertBitwise("transfer (native)", s(n), back.toArray(ValueLayout.JAVA_FLOAT), v, seedOf(tc));
            }
        }
    }

    @Test
    void nonContiguousViewsReadBackLikeTheCpu() {
        String tc = "views";
        long[] shape = {4, 6, 35};
        Pair x = pair(uniform(random(tc), numel(shape), -1, 1), shape);
        assertBitwise("toFloatArray(permute)", s(shape), x.g().permute(2, 0, 1).toFloatArray(),
                x.c().permute(2, 0, 1).toFloatArray(), seedOf(tc));
        assertBitwise("toFloatArray(slice)", s(shape), x.g().slice(1, 1, 5).slice(2, 3, 34).toFloatArray(),
                x.c().slice(1, 1, 5).slice(2, 3, 34).toFloatArray(), seedOf(tc));
    }

    @Test
    void zeroSizeTensorsAreAllowedAndOpsOnThemDoNothing() {
        Tensor z = gpu.empty(scope, DType.F32, 0, 5);
        assertEquals(0, z.toFloatArray().length);
        gpu.fill(z, 1f);
        gpu.unary(Ops.Unary.EXP, z, z);
        gpu.synchronize();
    }

    @Test
    void memoryBelongsToTheScope() {
        Tensor t;
        try (TensorScope inner = TensorScope.open()) {
            t = gpu.zeros(inner, DType.F32, 1000, 1000);
            assertEquals(0f, t.toFloatArray()[999_999]);
        }
        Tensor dead = t;
        assertThrows(IllegalStateException.class, dead::toFloatArray);
        assertThrows(IllegalStateException.class, () -> gpu.fill(dead, 1f));
        // Many scopes in a row: memory is returned at each close.
        for (int i = 0; i < 50; i++) {
            try (TensorScope inner = TensorScope.open()) {
                gpu.empty(inner, DType.F32, 64L << 20); // 256 MiB each
            }
        }
    }

    @Test
    void argumentErrorsAreCaughtInJavaBeforeAnyNativeCall() {
        Tensor a = gpu.zeros(scope, DType.F32, 3, 5);
        Tensor onCpu = cpu.zeros(scope, DType.F32, 3, 5);
        Tensor wrong = gpu.zeros(scope, DType.F32, 4, 5);
        Tensor bf = gpu.zeros(scope, DType.BF16, 3, 5);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> gpu.binary(Ops.Binary.ADD, a, onCpu, a));
        assertTrue(e.getMessage().contains("cpu"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> gpu.binary(Ops.Binary.ADD, a, wrong, a));
        assertThrows(IllegalArgumentException.class, () -> gpu.unary(Ops.Unary.EXP, bf, a));
        assertThrows(IllegalArgumentException.class, () -> gpu.unary(Ops.Unary.EXP, a.transpose(0, 1), a.reshape(5, 3)));
        assertThrows(IllegalArgumentException.class, () -> gpu.gemm(false, false, 1, a, a, 0, gpu.empty(scope, DType.F32, 3, 3)));
        assertThrows(IllegalArgumentException.class, () -> gpu.wrap(MemorySegment.ofArray(new float[15]), DType.F32, 3, 5));
    }

    // ---------------------------------------------------------------- fill, copy, cast

    @Test
    void fill() {
        for (long[] shape : SHAPES) {
            for (float v : new float[] {0f, -2.5f, 1e-30f, Float.NaN}) {
                Pair o = out(shape);
                gpu.fill(o.g(), v);
                cpu.fill(o.c(), v);
                assertBitwise("fill " + v, s(shape), o.g().toFloatArray(), o.c().toFloatArray(), "");
            }
        }
        for (DType dt : new DType[] {DType.BF16, DType.F16}) {
            Tensor g = gpu.empty(scope, dt, 3, 33);
            Tensor c = cpu.empty(scope, dt, 3, 33);
            gpu.fill(g, 1.3f);
            cpu.fill(c, 1.3f);
            assertBitwise("fill " + dt, "[3, 33]", bits(g), bits(c), "");
        }
        Tensor i = gpu.zeros(scope, DType.I32, 77);
        assertBitwise("zeros I32", "[77]", bits(i), new float[77], "");
    }

    /** The raw bytes of any tensor, widened to floats bit by bit for comparison (2-byte dtypes: one element each). */
    static float[] bits(Tensor t) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(Math.max(1, t.byteSize()), 8);
            t.copyTo(m.asSlice(0, t.byteSize()));
            float[] f = new float[(int) t.numel()];
            for (int i = 0; i < f.length; i++) {
                f[i] = Float.intBitsToFloat(t.dtype().byteSize() == 2
                        ? m.get(ValueLayout.JAVA_SHORT, 2L * i) & 0xffff
                        : m.get(ValueLayout.JAVA_INT, 4L * i));
            }
            return f;
        }
    }

    @Test
    void copyMaterialisesPermutesTransposesAndSlices() {
        record Case(long[] shape, int[] perm) {
        }
        List<Case> cases = List.of(
                new Case(new long[] {2, 3, 4, 5}, new int[] {0, 2, 1, 3}),
                new Case(new long[] {2, 3, 4, 5}, new int[] {3, 2, 1, 0}),
                new Case(new long[] {3, 7, 33, 65}, new int[] {0, 2, 1, 3}),   // attention heads [B,T,H,D] -> [B,H,T,D]
                new Case(new long[] {5, 129, 67}, new int[] {0, 2, 1}),        // batched transpose
                new Case(new long[] {1, 257, 1, 31}, new int[] {3, 1, 2, 0}),
                new Case(new long[] {2, 1, 3, 1, 2, 1, 3, 1, 2}, new int[] {8, 7, 6, 5, 4, 3, 2, 1, 0}));
        for (Case k : cases) {
            String tc = "copy " + s(k.shape()) + Arrays.toString(k.perm());
            Pair x = pair(uniform(random(tc), numel(k.shape()), -1, 1), k.shape());
            long[] ps = x.g().permute(k.perm()).shape();
            Pair o = out(ps);
            gpu.permute(x.g(), o.g(), k.perm());
            cpu.permute(x.c(), o.c(), k.perm());
            assertBitwise("copy (permute)", s(k.shape()) + Arrays.toString(k.perm()), o.g().toFloatArray(),
                    o.c().toFloatArray(), seedOf(tc));
        }
        String tc = "copy slice";
        Pair x = pair(uniform(random(tc), 9 * 41, -1, 1), 9, 41);
        Pair o = out(4, 38);
        gpu.copy(x.g().slice(0, 2, 6).slice(1, 3, 41), o.g());
        cpu.copy(x.c().slice(0, 2, 6).slice(1, 3, 41), o.c());
        assertBitwise("copy (slice)", "[9, 41][2:6, 3:41]", o.g().toFloatArray(), o.c().toFloatArray(), seedOf(tc));
        Pair t = out(41, 9);
        gpu.transposeLast2(x.g(), t.g());
        cpu.transposeLast2(x.c(), t.c());
        assertBitwise("copy (transposeLast2)", "[9, 41]", t.g().toFloatArray(), t.c().toFloatArray(), seedOf(tc));
        // 2-byte elements
        Tensor hg = gpu.empty(scope, DType.BF16, 9, 41);
        Tensor hc = cpu.empty(scope, DType.BF16, 9, 41);
        gpu.cast(x.g(), hg);
        cpu.cast(x.c(), hc);
        Tensor tg = gpu.empty(scope, DType.BF16, 41, 9);
        Tensor tcpu = cpu.empty(scope, DType.BF16, 41, 9);
        gpu.transposeLast2(hg, tg);
        cpu.transposeLast2(hc, tcpu);
        assertBitwise("copy (transposeLast2 BF16)", "[9, 41]", bits(tg), bits(tcpu), seedOf(tc));
    }

    @Test
    void castRoundsToNearestEvenLikeTheCpu() {
        String tc = "cast";
        SplittableRandom r = random(tc);
        float[] v = uniform(r, 4099, -70000, 70000);
        float[] special = {0f, -0f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MIN_VALUE,
            -Float.MIN_NORMAL, 65504f, 65520f, 1e-8f, 6e-5f, 1f + 0x1p-8f, 1f + 0x1p-8f + 0x1p-23f, 1f + 3 * 0x1p-8f,
            Float.MAX_VALUE, 3.3895314e38f};
        System.arraycopy(special, 0, v, 0, special.length);
        for (int i = special.length; i < 1000; i++) {
            v[i] *= (float) Math.pow(2, -r.nextInt(40)); // small magnitudes and F16 subnormals
        }
        Pair x = pair(v, v.length);
        for (DType dt : new DType[] {DType.BF16, DType.F16}) {
            Tensor hg = gpu.empty(scope, dt, v.length);
            Tensor hc = cpu.empty(scope, dt, v.length);
            gpu.cast(x.g(), hg);
            cpu.cast(x.c(), hc);
            assertBitwise("cast F32->" + dt, "[4099]", bits(hg), bits(hc), seedOf(tc));
            Pair back = out(v.length);
            gpu.cast(hg, back.g());
            cpu.cast(hc, back.c());
            assertBitwise("cast " + dt + "->F32", "[4099]", back.g().toFloatArray(), back.c().toFloatArray(), seedOf(tc));
        }
        Tensor b = gpu.empty(scope, DType.BF16, v.length);
        Tensor h = gpu.empty(scope, DType.F16, v.length);
        Tensor bc = cpu.empty(scope, DType.BF16, v.length);
        Tensor hc = cpu.empty(scope, DType.F16, v.length);
        gpu.cast(x.g(), b);
        cpu.cast(x.c(), bc);
        gpu.cast(b, h);
        cpu.cast(bc, hc);
        assertBitwise("cast BF16->F16", "[4099]", bits(h), bits(hc), seedOf(tc));
    }

    // ---------------------------------------------------------------- elementwise

    @Test
    void binaryWithEveryBroadcast() {
        for (Ops.Binary op : Ops.Binary.values()) {
            for (long[] shape : SHAPES) {
                for (long[] bShape : broadcastShapes(shape)) {
                    String tc = "binary " + op + s(shape) + s(bShape);
                    SplittableRandom r = random(tc);
                    Pair a = pair(uniform(r, numel(shape), -2, 2), shape);
                    Pair b = pair(op == Ops.Binary.DIV ? awayFromZero(r, numel(bShape), 0.25, 2)
                            : uniform(r, numel(bShape), -2, 2), bShape);
                    Pair o = out(shape);
                    gpu.binary(op, a.g(), b.g(), o.g());
                    cpu.binary(op, a.c(), b.c(), o.c());
                    assertClose("binary " + op + " " + Ops.Broadcast.of(a.g(), b.g()), s(shape) + " x " + s(bShape),
                            o.g().toFloatArray(), o.c().toFloatArray(), ELEMENTWISE, seedOf(tc));
                }
            }
        }
    }

    @Test
    void binaryInPlace() {
        long[] shape = {17, 129};
        String tc = "binary in place";
        SplittableRandom r = random(tc);
        Pair a = pair(uniform(r, numel(shape), -2, 2), shape);
        Pair b = pair(uniform(r, 129, -2, 2), 129);
        gpu.binary(Ops.Binary.MUL, a.g(), b.g(), a.g());
        cpu.binary(Ops.Binary.MUL, a.c(), b.c(), a.c());
        assertClose("binary MUL in place", s(shape), a.g().toFloatArray(), a.c().toFloatArray(), ELEMENTWISE, seedOf(tc));
    }

    @Test
    void binaryWithScalar() {
        for (Ops.Binary op : Ops.Binary.values()) {
            for (long[] shape : SHAPES) {
                String tc = "binary scalar " + op + s(shape);
                Pair a = pair(uniform(random(tc), numel(shape), -2, 2), shape);
                float sc = op == Ops.Binary.DIV ? 1.3f : -0.75f;
                Pair o = out(shape);
                gpu.binary(op, a.g(), sc, o.g());
                cpu.binary(op, a.c(), sc, o.c());
                assertClose("binary scalar " + op, s(shape), o.g().toFloatArray(), o.c().toFloatArray(), ELEMENTWISE,
                        seedOf(tc));
            }
        }
    }

    @Test
    void unary() {
        for (Ops.Unary op : Ops.Unary.values()) {
            for (long[] shape : SHAPES) {
                String tc = "unary " + op + s(shape);
                SplittableRandom r = random(tc);
                float[] v = switch (op) {
                    case LOG, SQRT, RSQRT -> uniform(r, numel(shape), 0.05, 20);
                    case RECIPROCAL -> awayFromZero(r, numel(shape), 0.05, 20);
                    case EXP -> uniform(r, numel(shape), -20, 20);
                    default -> uniform(r, numel(shape), -6, 6);
                };
                Pair a = pair(v, shape);
                Pair o = out(shape);
                gpu.unary(op, a.g(), o.g());
                cpu.unary(op, a.c(), o.c());
                assertClose("unary " + op, s(shape), o.g().toFloatArray(), o.c().toFloatArray(), ELEMENTWISE, seedOf(tc));
            }
        }
    }

    @Test
    void axpbyFmaScaleShift() {
        for (long[] shape : SHAPES) {
            String tc = "axpby " + s(shape);
            SplittableRandom r = random(tc);
            Pair x = pair(uniform(r, numel(shape), -2, 2), shape);
            Pair y = pair(uniform(r, numel(shape), -2, 2), shape);
            Pair o = out(shape);
            gpu.axpby(0.6f, x.g(), -0.8f, y.g(), o.g());
            cpu.axpby(0.6f, x.c(), -0.8f, y.c(), o.c());
            assertClose("axpby", s(shape), o.g().toFloatArray(), o.c().toFloatArray(), ELEMENTWISE, seedOf(tc));

            Pair o2 = out(shape);
            gpu.scaleShift(x.g(), 1.7f, -0.3f, o2.g());
            cpu.scaleShift(x.c(), 1.7f, -0.3f, o2.c());
            assertClose("scaleShift", s(shape), o2.g().toFloatArray(), o2.c().toFloatArray(), ELEMENTWISE, seedOf(tc));

            for (long[] bShape : broadcastShapes(shape)) {
                for (long[] cShape : broadcastShapes(shape)) {
                    String tf = "fma " + s(shape) + s(bShape) + s(cShape);
                    SplittableRandom rf = random(tf);
                    Pair b = pair(uniform(rf, numel(bShape), -2, 2), bShape);
                    Pair c = pair(uniform(rf, numel(cShape), -2, 2), cShape);
                    Pair o3 = out(shape);
                    gpu.fma(x.g(), b.g(), c.g(), o3.g());
                    cpu.fma(x.c(), b.c(), c.c(), o3.c());
                    assertClose("fma b " + Ops.Broadcast.of(x.g(), b.g()) + ", c " + Ops.Broadcast.of(x.g(), c.g()),
                            s(shape), o3.g().toFloatArray(), o3.c().toFloatArray(), ELEMENTWISE, seedOf(tf));
                }
            }
        }
    }

    // ---------------------------------------------------------------- reductions and softmax

    @Test
    void reduceLastDim() {
        long[][] shapes = {{1}, {3, 5}, {17, 129}, {2, 3, 67}, {1000, 3}, {37, 4099}, {1, 100_003}, {3, 1}};
        for (Ops.Reduce op : Ops.Reduce.values()) {
            for (long[] shape : shapes) {
                String tc = "reduce " + op + s(shape);
                Pair x = pair(uniform(random(tc), numel(shape), -3, 3), shape);
                long rows = numel(shape) / shape[shape.length - 1];
                Pair o = out(withLast(shape, 1));
                gpu.reduceLastDim(op, x.g(), o.g());
                cpu.reduceLastDim(op, x.c(), o.c());
                assertClose("reduceLastDim " + op, s(shape) + " (" + rows + " rows)", o.g().toFloatArray(),
                        o.c().toFloatArray(), REDUCTION, seedOf(tc));
            }
        }
    }

    @Test
    void globalNorm() {
        String tc = "globalNorm";
        SplittableRandom r = random(tc);
        List<Tensor> g = new ArrayList<>();
        List<Tensor> c = new ArrayList<>();
        for (long[] shape : new long[][] {{4099}, {17, 129}, {1}, {1_000_003}, {3, 2, 2049}}) {
            Pair p = pair(uniform(r, numel(shape), -3, 3), shape);
            g.add(p.g());
            c.add(p.c());
        }
        double ng = gpu.globalNorm(g);
        double nc = cpu.globalNorm(c);
        double err = Math.abs(ng - nc) / nc;
        CudaTestSupport.record("globalNorm", "5 tensors, 1.02M elements", err, 1e-12, err <= 1e-12);
        assertTrue(err <= 1e-12, "globalNorm cuda " + ng + " vs cpu " + nc + "; " + seedOf(tc));
        assertEquals(0.0, gpu.globalNorm(List.of()));
    }

    @Test
    void softmaxLastDim() {
        long[][] shapes = {{1, 1}, {3, 7}, {17, 1000}, {5, 4099}, {2, 3, 33}, {1024, 129}, {1, 50_021}};
        for (long[] shape : shapes) {
            for (double offset : new double[] {0, 80}) { // 80: exp overflows without the max subtraction
                String tc = "softmax " + s(shape) + " +" + offset;
                Pair x = pair(uniform(random(tc), numel(shape), offset - 8, offset + 8), shape);
                Pair o = out(shape);
                gpu.softmaxLastDim(x.g(), o.g());
                cpu.softmaxLastDim(x.c(), o.c());
                assertClose("softmaxLastDim" + (offset > 0 ? " (+80)" : ""), s(shape), o.g().toFloatArray(),
                        o.c().toFloatArray(), REDUCTION, seedOf(tc));
            }
        }
    }

    // ---------------------------------------------------------------- matrix products

    @Test
    void gemmFp32() {
        gemmAllLayouts(gpu, GEMM_FP32);
    }

    @Test
    void gemmTf32() {
        try (CudaBackend tf32 = CudaRuntime.createBackend(0, CudaBackend.GemmMath.TF32)) {
            gemmAllLayouts(tf32, GEMM_TF32);
        }
    }

    @Test
    void gemmBf16() {
        try (CudaBackend bf16 = CudaRuntime.createBackend(0, CudaBackend.GemmMath.BF16)) {
            gemmAllLayouts(bf16, GEMM_BF16);
        }
    }

    /** Every transpose pair, rank 2 and strided-batched (with a shared rank-2 operand), beta 0 and not. */
    void gemmAllLayouts(CudaBackend be, double tol) {
        long[][] mkn = {{1, 1, 1}, {17, 65, 33}, {64, 128, 96}, {3, 300, 5}, {129, 7, 255}};
        String math = be.gemmMath().name();
        for (long[] d : mkn) {
            long m = d[0];
            long k = d[1];
            long n = d[2];
            for (int layout = 0; layout < 4; layout++) {
                boolean ta = (layout & 1) != 0;
                boolean tb = (layout & 2) != 0;
                for (int batchCase = 0; batchCase < 3; batchCase++) {
                    long batch = batchCase == 0 ? 0 : 3;                  // 0: rank 2
                    boolean sharedB = batchCase == 2;
                    long[] as = ta ? new long[] {k, m} : new long[] {m, k};
                    long[] bs = tb ? new long[] {n, k} : new long[] {k, n};
                    long[] cs = {m, n};
                    if (batch > 0) {
                        as = new long[] {batch, as[0], as[1]};
                        if (!sharedB) {
                            bs = new long[] {batch, bs[0], bs[1]};
                        }
                        cs = new long[] {batch, m, n};
                    }
                    for (float beta : new float[] {0f, 0.5f}) {
                        String shape = s(as) + (ta ? "^T" : "") + " x " + s(bs) + (tb ? "^T" : "") + " beta " + beta;
                        String tc = "gemm " + math + " " + shape;
                        SplittableRandom r = random(tc);
                        Tensor ag = be.fromArray(scope, uniform(r, numel(as), -1, 1), as);
                        Tensor bg = be.fromArray(scope, uniform(r, numel(bs), -1, 1), bs);
                        Tensor ac = cpu.fromArray(scope, ag.toFloatArray(), as);
                        Tensor bc = cpu.fromArray(scope, bg.toFloatArray(), bs);
                        Tensor cg;
                        Tensor cc;
                        if (beta == 0f) { // NaN in c must not propagate when beta == 0
                            cg = be.empty(scope, DType.F32, cs);
                            be.fill(cg, Float.NaN);
                            cc = cpu.empty(scope, DType.F32, cs);
                            cpu.fill(cc, Float.NaN);
                        } else {
                            float[] c0 = uniform(r, numel(cs), -1, 1);
                            cg = be.fromArray(scope, c0, cs);
                            cc = cpu.fromArray(scope, c0, cs);
                        }
                        be.gemm(ta, tb, 1.25f, ag, bg, beta, cg);
                        cpu.gemm(ta, tb, 1.25f, ac, bc, beta, cc);
                        assertClose("gemm " + math.toLowerCase(java.util.Locale.ROOT), shape, cg.toFloatArray(),
                                cc.toFloatArray(), tol, seedOf(tc));
                    }
                }
            }
        }
    }

    @Test
    void gemmBatchedList() {
        String tc = "gemmBatched";
        SplittableRandom r = random(tc);
        List<Tensor> ag = new ArrayList<>();
        List<Tensor> bg = new ArrayList<>();
        List<Tensor> cg = new ArrayList<>();
        List<Tensor> ac = new ArrayList<>();
        List<Tensor> bc = new ArrayList<>();
        List<Tensor> cc = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            Pair a = pair(uniform(r, 9 * 31, -1, 1), 9, 31);
            Pair b = pair(uniform(r, 31 * 13, -1, 1), 31, 13);
            Pair c = out(9, 13);
            ag.add(a.g());
            bg.add(b.g());
            cg.add(c.g());
            ac.add(a.c());
            bc.add(b.c());
            cc.add(c.c());
        }
        gpu.gemmBatched(false, false, 1f, ag, bg, 0f, cg);
        cpu.gemmBatched(false, false, 1f, ac, bc, 0f, cc);
        for (int i = 0; i < 4; i++) {
            assertClose("gemmBatched", "4 x [9, 31] x [31, 13]", cg.get(i).toFloatArray(), cc.get(i).toFloatArray(),
                    GEMM_FP32, seedOf(tc));
        }
    }

    @Test
    void gemmChecksShapesAndAliasing() {
        Tensor a = gpu.zeros(scope, DType.F32, 4, 5);
        Tensor b = gpu.zeros(scope, DType.F32, 5, 6);
        Tensor c = gpu.zeros(scope, DType.F32, 4, 6);
        assertThrows(IllegalArgumentException.class, () -> gpu.gemm(true, false, 1, a, b, 0, c));
        assertThrows(IllegalArgumentException.class, () -> gpu.gemm(false, false, 1, a, b, 0, gpu.zeros(scope, DType.F32, 4, 7)));
        Tensor a3 = gpu.zeros(scope, DType.F32, 3, 4, 5);
        assertThrows(IllegalArgumentException.class, () -> gpu.gemm(false, false, 1, a3, b, 0, gpu.zeros(scope, DType.F32, 2, 4, 6)));
        assertThrows(IllegalArgumentException.class, () -> gpu.gemm(false, false, 1, a3, b, 0, c)); // rank-3 a, rank-2 c
        Tensor sq = gpu.zeros(scope, DType.F32, 4, 4);
        assertThrows(IllegalArgumentException.class, () -> gpu.gemm(false, false, 1, sq, sq, 0, sq));
        // K = 0: c = beta * c
        Tensor a0 = gpu.zeros(scope, DType.F32, 4, 0);
        Tensor b0 = gpu.zeros(scope, DType.F32, 0, 6);
        Tensor c0 = gpu.fromArray(scope, new float[24], 4, 6);
        gpu.fill(c0, 2f);
        gpu.gemm(false, false, 1, a0, b0, 0.5f, c0);
        float[] ones = new float[24];
        Arrays.fill(ones, 1f);
        assertArrayEquals(ones, c0.toFloatArray());
    }

    // ---------------------------------------------------------------- indexing

    @Test
    void gatherRows() {
        String tc = "gatherRows";
        SplittableRandom r = random(tc);
        int vocab = 50;
        int dim = 33;
        int n = 77;
        Pair table = pair(uniform(r, (long) vocab * dim, -1, 1), vocab, dim);
        int[] idx = new int[n];
        for (int i = 0; i < n; i++) {
            idx[i] = i == 0 ? 0 : i == 1 ? vocab - 1 : r.nextInt(vocab);
        }
        Tensor ig = indices(gpu, idx);
        Tensor ic = indices(cpu, idx);
        Pair o = out(n, dim);
        gpu.gatherRows(table.g(), ig, o.g());
        cpu.gatherRows(table.c(), ic, o.c());
        assertBitwise("gatherRows", "[50, 33] by [77]", o.g().toFloatArray(), o.c().toFloatArray(), seedOf(tc));

        idx[40] = vocab; // out of range
        Tensor bad = indices(gpu, idx);
        IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class,
                () -> gpu.gatherRows(table.g(), bad, o.g()));
        assertTrue(e.getMessage().contains("40") && e.getMessage().contains("50"), e.getMessage());
        idx[40] = -1;
        Tensor neg = indices(gpu, idx);
        assertThrows(IndexOutOfBoundsException.class, () -> gpu.gatherRows(table.g(), neg, o.g()));
        // the backend stays usable after the reported error
        gpu.gatherRows(table.g(), ig, o.g());
        assertBitwise("gatherRows after error", "[50, 33] by [77]", o.g().toFloatArray(), o.c().toFloatArray(), seedOf(tc));
    }

    Tensor indices(Backend be, int[] idx) {
        Tensor t = be.empty(scope, DType.I32, idx.length);
        t.copyFrom(MemorySegment.ofArray(idx));
        return t;
    }

    // ---------------------------------------------------------------- random numbers

    @Test
    void philoxIsBitIdenticalToTheCpu() {
        long[][] seeds = {{0, 0}, {42, 7}, {-1L, Long.MIN_VALUE}, {0x123456789ABCDEFL, 3}};
        for (long[] sd : seeds) {
            for (long n : new long[] {1, 5, 4099, 1_000_003}) {
                Pair o = out(n);
                gpu.randn(o.g(), sd[0], sd[1]);
                cpu.randn(o.c(), sd[0], sd[1]);
                float[] g = o.g().toFloatArray();
                assertBitwise("randn", "[" + n + "] seed " + sd[0] + " stream " + sd[1], g, o.c().toFloatArray(), "");
                assertEquals(Float.floatToRawIntBits(Philox.normal(sd[0], sd[1], n - 1)),
                        Float.floatToRawIntBits(g[(int) n - 1]), "last element against Philox.normal");
                Pair u = out(n);
                gpu.rand(u.g(), sd[0], sd[1]);
                cpu.rand(u.c(), sd[0], sd[1]);
                assertBitwise("rand", "[" + n + "] seed " + sd[0] + " stream " + sd[1], u.g().toFloatArray(),
                        u.c().toFloatArray(), "");
            }
        }
    }
}
