package org.diffusion4j.cpu;

import org.diffusion4j.random.Philox;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.GemmShape;
import org.diffusion4j.tensor.Device;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Shape;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

import static org.diffusion4j.cpu.Elementwise.F32;
import static org.diffusion4j.cpu.Elementwise.I32;

/**
 * The CPU backend: tensors in host memory owned by a {@link TensorScope} (64-byte aligned), elementwise ops,
 * reductions, softmax, casts, copies, gathers and random numbers in plain Java on a fixed thread pool, and
 * matrix products through OpenBLAS.
 *
 * <p><b>Threads.</b> {@link #CpuBackend()} uses the system property {@code d4j.threads}, else the
 * environment variable {@code D4J_THREADS}, else {@link Runtime#availableProcessors()}. An op runs on the
 * calling thread plus {@code threads - 1} pool workers; ops on fewer than 32 Ki elements run on the calling
 * thread alone. Work is cut into pieces that do not depend on the thread count and every row reduction has
 * one fixed order, so <b>every op gives bitwise the same result for any thread count</b> (a product's summation
 * order is OpenBLAS's single-threaded one).
 *
 * <p><b>GEMM and BLAS threads.</b> OpenBLAS always runs single-threaded; a product is cut into blocks of rows (or
 * columns) of {@code c} that depend only on its shape (at most 4 blocks of at least 2^20 multiply-adds each, see
 * {@link #gemmBlock}), and a batch of products into its products times their blocks; the pool spreads these
 * over its threads. OpenBLAS's own workers are never woken: after a multithreaded product they keep spinning
 * (its {@code OPENBLAS_THREAD_TIMEOUT}, about 0.07 s by default), which on 2 cores took the cores from the
 * pool's ops (a DiT training step measured 2.2x more CPU time with 2 BLAS threads). OpenBLAS's thread count is
 * process-global, so a caller elsewhere that wants another count takes turns with this backend's products;
 * {@code OPENBLAS_*} environment variables are left as they are.
 *
 * <p><b>Errors.</b> Every argument is checked before memory is touched: a wrong shape, dtype, device or
 * layout throws {@link IllegalArgumentException} naming the argument with its shape and dtype; a tensor whose
 * scope is closed, or this backend after {@link #close()}, throws {@link IllegalStateException}.
 *
 * <p>Instances are thread-safe: ops may be called from several threads at once.
 */
public final class CpuBackend implements Backend {

    /** System property that sets the default thread count. */
    public static final String THREADS_PROPERTY = "d4j.threads";

    /** The most threads a backend takes (more would only take turns on any machine, and can exhaust the OS's). */
    public static final int MAX_THREADS = 1024;
    /** Environment variable that sets the default thread count when the property is absent. */
    public static final String THREADS_ENV = "D4J_THREADS";

    /** Elements per partial sum of {@link #globalNorm}: fixed, so the result does not depend on threads. */
    static final long NORM_CHUNK = WorkerPool.GRAIN;

    /** A thread that owns no arena: a segment accessible by it is accessible by every thread. */
    private static final Thread NOT_THE_OWNER = Thread.ofPlatform().unstarted(() -> { });

    private final WorkerPool pool;
    private final int threads;
    /**
     * The calls running now (between {@link #enter()} and {@link #exit()}), or {@link #CLOSED}: one atomic word, so
     * that a close never shows a transient closed state to a call that enters while it is being refused.
     */
    private final java.util.concurrent.atomic.AtomicInteger state = new java.util.concurrent.atomic.AtomicInteger();
    private static final int CLOSED = Integer.MIN_VALUE;

    /** A backend with the default thread count (see the class comment). */
    public CpuBackend() {
        this(defaultThreads());
    }

    /**
     * A backend running ops on {@code threads} threads (the caller plus {@code threads - 1} workers).
     *
     * @throws IllegalArgumentException when {@code threads < 1}
     */
    public CpuBackend(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("the CPU backend needs at least 1 thread, got " + threads);
        }
        if (threads > MAX_THREADS) {
            throw new IllegalArgumentException("the CPU backend takes at most " + MAX_THREADS + " threads, got "
                    + threads + " (this machine has " + Runtime.getRuntime().availableProcessors() + " cores)");
        }
        this.threads = threads;
        this.pool = new WorkerPool(threads);
    }

    /**
     * The default thread count: system property {@value #THREADS_PROPERTY}, else environment variable
     * {@value #THREADS_ENV}, else the number of available processors.
     *
     * @throws IllegalArgumentException when the property or variable is set but is not an integer {@code >= 1}
     */
    public static int defaultThreads() {
        String p = System.getProperty(THREADS_PROPERTY);
        if (p != null && !p.isBlank()) {
            return parseThreads("system property " + THREADS_PROPERTY, p);
        }
        String e = System.getenv(THREADS_ENV);
        if (e != null && !e.isBlank()) {
            return parseThreads("environment variable " + THREADS_ENV, e);
        }
        return Runtime.getRuntime().availableProcessors();
    }

    private static int parseThreads(String what, String value) {
        try {
            int n = Integer.parseInt(value.trim());
            if (n >= 1 && n <= MAX_THREADS) {
                return n;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new IllegalArgumentException(what + " is '" + value + "'; expected a thread count in [1, "
                + MAX_THREADS + "]");
    }

    /** Threads an op runs on. */
    public int threads() {
        return threads;
    }

    /** This backend's pool, for other host-side op families of this package to share instead of making their own. */
    WorkerPool pool() {
        return pool;
    }

    /**
     * The pool an op family ({@code Cpu*Ops}) working on {@code backend} with {@code threads} threads should use:
     * the backend's own when it is a {@code CpuBackend} of that thread count (so the families never put more
     * spinning threads to work than there are cores), else null (the family makes its own).
     */
    static WorkerPool sharedPool(Backend backend, int threads) {
        return backend instanceof CpuBackend cpu && cpu.threads == threads ? cpu.pool : null;
    }

    /** E.g. {@code "cpu (2 threads, OpenBLAS 0.3.31)"}; loads OpenBLAS if it is not loaded yet. */
    @Override
    public String name() {
        return "cpu (" + threads + (threads == 1 ? " thread, " : " threads, ") + OpenBlas.describe() + ")";
    }

    @Override
    public Device device() {
        return Device.CPU;
    }

    @Override
    public String toString() {
        return name();
    }

    // ---------------------------------------------------------------- memory

    /**
     * Allocates uninitialised host memory from {@code scope}, aligned to 64 bytes (see
     * {@link TensorScope#allocate(long, long)}).
     *
     * @throws IllegalArgumentException on a negative dim or a byte size beyond {@code 2^63 - 1}
     * @throws IllegalStateException    when {@code scope} or this backend is closed
     * @throws OutOfMemoryError         naming the byte count when the host has no room
     */
    @Override
    public Tensor empty(TensorScope scope, DType dtype, long... shape) {
        enter();
        try {
            Objects.requireNonNull(scope, "scope");
            Objects.requireNonNull(dtype, "dtype");
            long[] s = Shape.checked(shape);
            long bytes;
            try {
                bytes = Math.multiplyExact(Shape.numel(s), (long) dtype.byteSize());
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException(dtype + " " + Arrays.toString(s) + " needs more than 2^63 bytes");
            }
            MemorySegment seg;
            try {
                seg = scope.allocate(bytes, 64);
            } catch (OutOfMemoryError e) {
                OutOfMemoryError oom = new OutOfMemoryError("cannot allocate " + bytes + " bytes of host memory for "
                        + dtype + " " + Arrays.toString(s) + ": " + e.getMessage());
                oom.initCause(e);
                throw oom;
            }
            return Tensor.of(this, seg, dtype, s);
        } finally {
            exit();
        }
    }

    /**
     * Wraps a native host segment without copying; the caller keeps it alive.
     *
     * @throws IllegalArgumentException when the segment is a heap segment (backed by a Java array), read-only,
     *                                  smaller than the shape needs, not aligned to the dtype's size, or
     *                                  confined to one thread while this backend has several; the message
     *                                  names the segment's address, size and the need
     * @throws IllegalStateException    when the segment's arena is closed
     */
    @Override
    public Tensor wrap(MemorySegment hostSegment, DType dtype, long... shape) {
        enter();
        try {
            Objects.requireNonNull(hostSegment, "hostSegment");
            Objects.requireNonNull(dtype, "dtype");
            long[] s = Shape.checked(shape);
            if (!hostSegment.isNative()) {
                throw new IllegalArgumentException("cannot wrap a heap segment (backed by a Java array, "
                        + hostSegment.byteSize() + " bytes) as " + dtype + " " + Arrays.toString(s)
                        + ": wrap needs native memory (e.g. from an Arena); copy heap data in with copyFromHost");
            }
            if (hostSegment.isReadOnly()) {
                throw new IllegalArgumentException("cannot wrap a read-only segment (" + hostSegment.byteSize()
                        + " bytes) as " + dtype + " " + Arrays.toString(s) + ": ops write their outputs in place");
            }
            if (!hostSegment.scope().isAlive()) {
                throw new IllegalStateException("cannot wrap a segment whose arena is closed");
            }
            if (threads > 1 && !hostSegment.isAccessibleBy(NOT_THE_OWNER)) {
                throw new IllegalArgumentException("cannot wrap a segment of a confined arena (only its owner "
                        + "thread may access it) as " + dtype + " " + Arrays.toString(s) + ": this backend's " + threads
                        + " threads read it; allocate it from Arena.ofShared(), ofAuto() or global()");
            }
            long need;
            try {
                need = Math.multiplyExact(Shape.numel(s), (long) dtype.byteSize());
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException(dtype + " " + Arrays.toString(s) + " needs more than 2^63 bytes");
            }
            if (hostSegment.byteSize() < need) {
                throw new IllegalArgumentException("segment of " + hostSegment.byteSize() + " bytes is too small for "
                        + dtype + " " + Arrays.toString(s) + " (" + need + " bytes)");
            }
            if (hostSegment.address() % dtype.byteSize() != 0) {
                throw new IllegalArgumentException("segment at address 0x" + Long.toHexString(hostSegment.address())
                        + " is not aligned to " + dtype.byteSize() + " bytes, as " + dtype + " needs");
            }
            return Tensor.of(this, hostSegment, dtype, s);
        } finally {
            exit();
        }
    }

    /**
     * Copies {@code dst.byteSize()} bytes from the start of {@code src} (heap or native) into contiguous
     * {@code dst}. A segment of a confined arena is copied on the calling thread (its owner).
     *
     * @throws IllegalArgumentException when {@code src} holds fewer bytes than {@code dst}
     */
    @Override
    public void copyFromHost(MemorySegment src, Tensor dst) {
        enter();
        try {
            Objects.requireNonNull(src, "src");
            Objects.requireNonNull(dst, "dst");
            Shape.requireOn("dst", dst, this);
            Shape.requireContiguous("dst", dst);
            if (src.byteSize() < dst.byteSize()) {
                throw new IllegalArgumentException("source segment has " + src.byteSize() + " bytes, dst " + dst
                        + " needs " + dst.byteSize());
            }
            if (dst.numel() == 0) {
                return;
            }
            requireDisjoint("copyFromHost", "src", src, src.address(), dst.byteSize(), "dst", dst);
            StridedCopy.bulk(poolFor(src), src, 0, dst.segment(), 0, dst.byteSize());
        } finally {
            exit();
        }
    }

    /**
     * Copies the elements of {@code src} (any strides, row-major order) to the start of {@code dst} (heap or
     * native). A segment of a confined arena is filled on the calling thread (its owner).
     *
     * @throws IllegalArgumentException when {@code dst} holds fewer than {@code src.byteSize()} bytes or is
     *                                  read-only
     */
    @Override
    public void copyToHost(Tensor src, MemorySegment dst) {
        enter();
        try {
            Objects.requireNonNull(src, "src");
            Objects.requireNonNull(dst, "dst");
            Shape.requireOn("src", src, this);
            if (dst.byteSize() < src.byteSize()) {
                throw new IllegalArgumentException("destination segment has " + dst.byteSize() + " bytes, src " + src
                        + " holds " + src.byteSize());
            }
            if (dst.isReadOnly()) {
                throw new IllegalArgumentException("destination segment is read-only");
            }
            if (src.numel() == 0) {
                return;
            }
            requireDisjoint("copyToHost", "dst", dst, dst.address(), src.byteSize(), "src", src);
            StridedCopy.copy(poolFor(dst), src.storage(), src.offset(), src.shape(), src.strides(),
                    src.dtype().byteSize(), dst);
        } finally {
            exit();
        }
    }

    /** The pool, or the calling thread alone when {@code host} is confined to it (a confined arena). */
    private WorkerPool poolFor(MemorySegment host) {
        return host.isAccessibleBy(NOT_THE_OWNER) ? pool : WorkerPool.CALLER_ONLY;
    }

    /** A no-op: CPU ops are synchronous. */
    @Override
    public void synchronize() {
        enter();
        try {
        } finally {
            exit();
        }
    }

    // ---------------------------------------------------------------- fill, copy, cast

    /**
     * Sets every element of contiguous {@code out} to {@code value}: F32 bit for bit (NaN payloads included),
     * BF16 and F16 rounded to nearest even, I32 only for {@code value == 0}.
     *
     * @throws IllegalArgumentException for a non-zero value on an I32 tensor
     */
    @Override
    public void fill(Tensor out, float value) {
        enter();
        try {
            Objects.requireNonNull(out, "out");
            Shape.requireOn("out", out, this);
            Shape.requireContiguous("out", out);
            if (out.dtype() == DType.I32 && value != 0f) {
                throw new IllegalArgumentException("fill of I32 " + out + " takes only 0, got " + value);
            }
            long n = out.numel();
            if (n == 0) {
                return;
            }
            MemorySegment o = out.segment();
            switch (out.dtype()) {
                case F32 -> {
                    int bits = Float.floatToRawIntBits(value);
                    pool.forRange(n, WorkerPool.GRAIN, (from, to) -> Elementwise.fill32(o, bits, from, to));
                }
                case I32 -> pool.forRange(n, WorkerPool.GRAIN, (from, to) -> Elementwise.fill32(o, 0, from, to));
                case BF16, F16 -> {
                    short bits = Casts.encode16(out.dtype(), value);
                    pool.forRange(n, WorkerPool.GRAIN, (from, to) -> Elementwise.fill16(o, bits, from, to));
                }
            }
        } finally {
            exit();
        }
    }

    /**
     * Copies {@code src} (any strides, any dtype) into contiguous {@code dst} of the same shape and dtype, bit
     * for bit.
     *
     * @throws IllegalArgumentException when shapes or dtypes differ, {@code dst} is not contiguous, or the two
     *                                  overlap in memory
     */
    @Override
    public void copy(Tensor src, Tensor dst) {
        enter();
        try {
            Objects.requireNonNull(src, "src");
            Objects.requireNonNull(dst, "dst");
            Shape.requireOn("src", src, this);
            Shape.requireOn("dst", dst, this);
            Shape.requireSameShape("src", src, "dst", dst);
            if (src.dtype() != dst.dtype()) {
                throw new IllegalArgumentException("copy needs one dtype: src " + src + " is " + src.dtype() + ", dst "
                        + dst + " is " + dst.dtype() + "; use cast");
            }
            Shape.requireContiguous("dst", dst);
            if (src.numel() == 0) {
                return;
            }
            requireNoOverlap("copy", "dst", dst, "src", src);
            StridedCopy.copy(pool, src.storage(), src.offset(), src.shape(), src.strides(), src.dtype().byteSize(),
                    dst.segment());
        } finally {
            exit();
        }
    }

    /**
     * Converts contiguous {@code src} into contiguous {@code dst} of the same shape: F32, BF16 and F16 in any
     * direction, round to nearest even (NaN stays a quiet NaN with its sign); equal dtypes copy.
     *
     * @throws IllegalArgumentException when shapes differ, a tensor is not contiguous or a dtype is I32 (and
     *                                  the other is not)
     */
    @Override
    public void cast(Tensor src, Tensor dst) {
        enter();
        try {
            Objects.requireNonNull(src, "src");
            Objects.requireNonNull(dst, "dst");
            Shape.requireOn("src", src, this);
            Shape.requireOn("dst", dst, this);
            Shape.requireSameShape("src", src, "dst", dst);
            Shape.requireContiguous("src", src);
            Shape.requireContiguous("dst", dst);
            Shape.requireSameOrDisjoint("cast", "dst", dst, "src", src);
            DType sd = src.dtype();
            DType dd = dst.dtype();
            if (sd == dd) {
                if (src.numel() > 0 && src.segment().address() != dst.segment().address()) {
                    StridedCopy.bulk(pool, src.segment(), 0, dst.segment(), 0, src.byteSize());
                }
                return;
            }
            if (!sd.isFloatingPoint() || !dd.isFloatingPoint()) {
                throw new IllegalArgumentException("cast converts between float dtypes (F32, BF16, F16); src " + src
                        + " is " + sd + ", dst " + dst + " is " + dd);
            }
            long n = src.numel();
            if (n == 0) {
                return;
            }
            MemorySegment s = src.segment();
            MemorySegment d = dst.segment();
            pool.forRange(n, WorkerPool.GRAIN, (from, to) -> Casts.convert(sd, s, dd, d, from, to));
        } finally {
            exit();
        }
    }

    // ---------------------------------------------------------------- elementwise

    @Override
    public void binary(Ops.Binary op, Tensor a, Tensor b, Tensor out) {
        enter();
        try {
            Objects.requireNonNull(op, "op");
            f32("a", a);
            f32("b", b);
            f32("out", out);
            Ops.Broadcast kind = Ops.Broadcast.of(a, b);
            Shape.requireSameShape("a", a, "out", out);
            Shape.requireSameOrDisjoint("binary", "out", out, "a", a);
            Shape.requireSameOrDisjoint("binary", "out", out, "b", b);
            long n = a.numel();
            if (n == 0) {
                return;
            }
            MemorySegment as = a.segment();
            MemorySegment os = out.segment();
            Elementwise.Operand bo = Elementwise.Operand.of(kind, b, a);
            pool.forRange(n, WorkerPool.GRAIN, (from, to) -> Elementwise.binary(op, as, bo, os, from, to));
        } finally {
            exit();
        }
    }

    @Override
    public void binary(Ops.Binary op, Tensor a, float s, Tensor out) {
        enter();
        try {
            Objects.requireNonNull(op, "op");
            f32("a", a);
            f32("out", out);
            Shape.requireSameShape("a", a, "out", out);
            Shape.requireSameOrDisjoint("binary", "out", out, "a", a);
            long n = a.numel();
            if (n == 0) {
                return;
            }
            MemorySegment as = a.segment();
            MemorySegment os = out.segment();
            Elementwise.Operand bo = Elementwise.Operand.scalar(s);
            pool.forRange(n, WorkerPool.GRAIN, (from, to) -> Elementwise.binary(op, as, bo, os, from, to));
        } finally {
            exit();
        }
    }

    @Override
    public void unary(Ops.Unary op, Tensor a, Tensor out) {
        enter();
        try {
            Objects.requireNonNull(op, "op");
            f32("a", a);
            f32("out", out);
            Shape.requireSameShape("a", a, "out", out);
            Shape.requireSameOrDisjoint("unary", "out", out, "a", a);
            long n = a.numel();
            if (n == 0) {
                return;
            }
            MemorySegment as = a.segment();
            MemorySegment os = out.segment();
            pool.forRange(n, WorkerPool.GRAIN, (from, to) -> Elementwise.unary(op, as, os, from, to));
        } finally {
            exit();
        }
    }

    @Override
    public void axpby(float alpha, Tensor x, float beta, Tensor y, Tensor out) {
        enter();
        try {
            f32("x", x);
            f32("y", y);
            f32("out", out);
            Shape.requireSameShape("x", x, "y", y);
            Shape.requireSameShape("x", x, "out", out);
            Shape.requireSameOrDisjoint("axpby", "out", out, "x", x);
            Shape.requireSameOrDisjoint("axpby", "out", out, "y", y);
            long n = x.numel();
            if (n == 0) {
                return;
            }
            MemorySegment xs = x.segment();
            MemorySegment ys = y.segment();
            MemorySegment os = out.segment();
            pool.forRange(n, WorkerPool.GRAIN, (from, to) -> Elementwise.axpby(alpha, xs, beta, ys, os, from, to));
        } finally {
            exit();
        }
    }

    /** {@code out = a * b + c}, computed as a float product then a float sum (two roundings). */
    @Override
    public void fma(Tensor a, Tensor b, Tensor c, Tensor out) {
        enter();
        try {
            f32("a", a);
            f32("b", b);
            f32("c", c);
            f32("out", out);
            Ops.Broadcast kb = broadcast("b", b, a);
            Ops.Broadcast kc = broadcast("c", c, a);
            Shape.requireSameShape("a", a, "out", out);
            Shape.requireSameOrDisjoint("fma", "out", out, "a", a);
            Shape.requireSameOrDisjoint("fma", "out", out, "b", b);
            Shape.requireSameOrDisjoint("fma", "out", out, "c", c);
            long n = a.numel();
            if (n == 0) {
                return;
            }
            MemorySegment as = a.segment();
            MemorySegment os = out.segment();
            Elementwise.Operand bo = Elementwise.Operand.of(kb, b, a);
            Elementwise.Operand co = Elementwise.Operand.of(kc, c, a);
            pool.forRange(n, WorkerPool.GRAIN, (from, to) -> Elementwise.fma(as, bo, co, os, from, to));
        } finally {
            exit();
        }
    }

    /** {@code out = a * s + t}, computed as a float product then a float sum (two roundings). */
    @Override
    public void scaleShift(Tensor a, float s, float t, Tensor out) {
        enter();
        try {
            f32("a", a);
            f32("out", out);
            Shape.requireSameShape("a", a, "out", out);
            Shape.requireSameOrDisjoint("scaleShift", "out", out, "a", a);
            long n = a.numel();
            if (n == 0) {
                return;
            }
            MemorySegment as = a.segment();
            MemorySegment os = out.segment();
            pool.forRange(n, WorkerPool.GRAIN, (from, to) -> Elementwise.scaleShift(as, s, t, os, from, to));
        } finally {
            exit();
        }
    }

    // ---------------------------------------------------------------- reductions and softmax

    /**
     * Reduces {@code x [..., N]} over its last dim into {@code out} (any shape with {@code x.rows()}
     * elements). SUM and MEAN accumulate in float64 in a fixed order; over an empty row SUM gives 0, MEAN NaN
     * and MAX {@code -Infinity}. MAX propagates NaN.
     *
     * @throws IllegalArgumentException when {@code out} does not have one element per row
     */
    @Override
    public void reduceLastDim(Ops.Reduce op, Tensor x, Tensor out) {
        enter();
        try {
            Objects.requireNonNull(op, "op");
            f32("x", x);
            f32("out", out);
            if (out.numel() != x.rows()) {
                throw new IllegalArgumentException("out " + out + " must have " + x.rows() + " elements (one per "
                        + "row of x " + x + "), has " + out.numel());
            }
            Shape.requireSameOrDisjoint("reduceLastDim", "out", out, "x", x);
            long rows = x.rows();
            if (rows == 0) {
                return;
            }
            long cols = x.cols();
            MemorySegment xs = x.numel() == 0 ? MemorySegment.NULL : x.segment();
            MemorySegment os = out.segment();
            pool.forRows(rows, cols, (r0, r1) -> Reductions.reduceRows(op, xs, os, cols, r0, r1));
        } finally {
            exit();
        }
    }

    /**
     * {@code sqrt(sum of x^2)} over all tensors, in float64: each tensor is cut into fixed pieces of
     * {@value #NORM_CHUNK} elements whose sums of squares are added in tensor and piece order, so the result
     * does not depend on the thread count. An empty list gives 0.
     */
    @Override
    public double globalNorm(List<Tensor> xs) {
        enter();
        try {
            Objects.requireNonNull(xs, "xs");
            int count = xs.size();
            MemorySegment[] segs = new MemorySegment[count];
            long[] numel = new long[count];
            long pieces = 0;
            for (int i = 0; i < count; i++) {
                Tensor x = xs.get(i);
                f32("xs[" + i + "]", x);
                numel[i] = x.numel();
                segs[i] = numel[i] == 0 ? MemorySegment.NULL : x.segment();
                pieces += (numel[i] + NORM_CHUNK - 1) / NORM_CHUNK;
            }
            if (pieces == 0) {
                return 0.0;
            }
            if (pieces > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("globalNorm over " + pieces + " pieces of " + NORM_CHUNK
                        + " elements is too large");
            }
            int[] owner = new int[(int) pieces];   // piece -> tensor
            long[] start = new long[(int) pieces]; // piece -> first element
            int p = 0;
            long total = 0;
            for (int i = 0; i < count; i++) {
                for (long e = 0; e < numel[i]; e += NORM_CHUNK) {
                    owner[p] = i;
                    start[p++] = e;
                }
                total += numel[i];
            }
            double[] partial = new double[(int) pieces];
            pool.forTasks((int) pieces, total >= WorkerPool.SERIAL_MAX, q -> {
                int i = owner[q];
                partial[q] = Reductions.sumSquares(segs[i], start[q], Math.min(numel[i], start[q] + NORM_CHUNK));
            });
            double sum = 0;
            for (double v : partial) {
                sum += v;
            }
            return Math.sqrt(sum);
        } finally {
            exit();
        }
    }

    /**
     * Softmax over the last dim: {@code out = exp(x - max) / sum exp(x - max)}, the sum in float64 in a fixed
     * order. {@code out} may be {@code x}.
     */
    @Override
    public void softmaxLastDim(Tensor x, Tensor out) {
        enter();
        try {
            f32("x", x);
            f32("out", out);
            Shape.requireSameShape("x", x, "out", out);
            Shape.requireSameOrDisjoint("softmaxLastDim", "out", out, "x", x);
            if (x.numel() == 0) {
                return;
            }
            long cols = x.cols();
            MemorySegment xs = x.segment();
            MemorySegment os = out.segment();
            pool.forRows(x.rows(), cols, (r0, r1) -> Reductions.softmaxRows(xs, os, cols, r0, r1));
        } finally {
            exit();
        }
    }

    // ---------------------------------------------------------------- matrix products

    /**
     * {@code c = alpha op(a) op(b) + beta c} through OpenBLAS {@code cblas_sgemm} (see
     * {@link Backend#gemm} for shapes). When {@code K == 0} or {@code alpha == 0} no product is computed and
     * {@code c = beta c} ({@code c} is zero-filled when {@code beta == 0}).
     *
     * @throws IllegalArgumentException when the shapes do not fit, a dim exceeds {@code 2^31 - 1} or
     *                                  {@code c} overlaps {@code a} or {@code b}
     * @throws IllegalStateException    when OpenBLAS could not be loaded (the message gives the reason)
     */
    @Override
    public void gemm(boolean transA, boolean transB, float alpha, Tensor a, Tensor b, float beta, Tensor c) {
        enter();
        try {
            f32("a", a);
            f32("b", b);
            f32("c", c);
            GemmShape g = GemmShape.of(transA, transB, a, b, c);
            requireNoOverlap("gemm", "c", c, "a", a);
            requireNoOverlap("gemm", "c", c, "b", b);
            if (c.numel() == 0) {
                return;
            }
            if (g.k() == 0 || alpha == 0f) {
                if (beta == 0f) {
                    fill(c, 0f);
                } else if (beta != 1f) {
                    binary(Ops.Binary.MUL, c, beta, c);
                }
                return;
            }
            OpenBlas blas = OpenBlas.get();
            MemorySegment as = a.segment();
            MemorySegment bs = b.segment();
            MemorySegment cs = c.segment();
            // Every product runs on one BLAS thread, cut into row (or column) blocks of c that the pool spreads over
            // its threads. OpenBLAS's own threads are never woken: after a call they busy-wait (sched_yield) for
            // ~0.1 s, and on a small machine that spinning took the cores from the pool's pointwise ops (measured
            // on 2 cores: a DiT training step cost 2.8 s of CPU with 2 BLAS threads, 1.3 s with this scheme).
            // The blocks depend only on the shape, so the result is the same for any thread count.
            int m = g.m();
            int n = g.n();
            boolean alongM = m >= n;
            int dim = alongM ? m : n;
            int blockLen = gemmBlock(dim, (long) m * n * g.k());
            int blocks = (dim + blockLen - 1) / blockLen;
            long tasks = (long) g.batch() * blocks;
            blas.acquire(1);
            try {
                pool.forTasks(Math.toIntExact(tasks), threads > 1, t -> {
                    long i = t / blocks;
                    int j0 = (t % blocks) * blockLen;
                    int len = Math.min(blockLen, dim - j0);
                    long aOff = i * g.strideA();
                    long bOff = i * g.strideB();
                    long cOff = i * g.strideC();
                    if (alongM) {   // rows j0.. of op(a) and c
                        aOff += g.transA() ? j0 : (long) j0 * g.lda();
                        cOff += (long) j0 * g.ldc();
                    } else {        // columns j0.. of op(b) and c
                        bOff += g.transB() ? (long) j0 * g.ldb() : j0;
                        cOff += j0;
                    }
                    blas.sgemm(g.transA(), g.transB(), alongM ? len : m, alongM ? n : len, g.k(), alpha,
                            as.asSlice(aOff * 4), g.lda(), bs.asSlice(bOff * 4), g.ldb(), beta, cs.asSlice(cOff * 4),
                            g.ldc());
                });
            } finally {
                blas.release();
            }
        } finally {
            exit();
        }
    }

    /** Smallest multiply-adds of one GEMM block worth a task of its own. */
    static final long GEMM_BLOCK_MACS = 1L << 20;
    /**
     * Most blocks one product is cut into: every block packs the whole of the other operand again, so few large
     * blocks beat many (on 2 cores a DiT step measured within noise of each other for 2, 4 and 8).
     */
    static final int GEMM_MAX_BLOCKS = 4;

    /**
     * Rows (or columns) per block when cutting a product of {@code macs} multiply-adds along a dim of
     * {@code dim}: a multiple of 32 (whole micro-kernel panels), at most {@value #GEMM_MAX_BLOCKS} blocks, each of
     * at least {@value #GEMM_BLOCK_MACS} multiply-adds. Depends only on the shape.
     */
    static int gemmBlock(int dim, long macs) {
        long blocks = Math.min(GEMM_MAX_BLOCKS, Math.min(macs / GEMM_BLOCK_MACS, dim / 32));
        if (blocks <= 1) {
            return dim;
        }
        long len = (dim + blocks - 1) / blocks;
        len = (len + 31) / 32 * 32;
        return (int) Math.min(dim, len);
    }

    // ---------------------------------------------------------------- indexing

    /**
     * {@code out[i, :] = table[indices[i], :]}. All indices are checked before any row is copied.
     *
     * @throws IndexOutOfBoundsException naming the position and value of the first index outside
     *                                   {@code [0, V)}; {@code out} is then untouched
     */
    @Override
    public void gatherRows(Tensor table, Tensor indices, Tensor out) {
        enter();
        try {
            Shape.requireGatherRows(this, table, indices, out);
            long v = table.shape(0);
            long d = table.shape(1);
            long n = indices.shape(0);
            requireNoOverlap("gatherRows", "out", out, "table", table);
            requireNoOverlap("gatherRows", "out", out, "indices", indices);
            if (n == 0) {
                return;
            }
            MemorySegment is = indices.segment();
            int[] buf = new int[(int) Math.min(n, 4096)];
            for (long p = 0; p < n; p += buf.length) {
                int len = (int) Math.min(buf.length, n - p);
                MemorySegment.copy(is, I32, p * 4, buf, 0, len);
                for (int k = 0; k < len; k++) {
                    if (buf[k] < 0 || buf[k] >= v) {
                        throw new IndexOutOfBoundsException("gatherRows: indices[" + (p + k) + "] = " + buf[k]
                                + " is outside [0, " + v + ") of table " + table);
                    }
                }
            }
            if (d == 0) {
                return;
            }
            MemorySegment ts = table.segment();
            MemorySegment os = out.segment();
            pool.forRows(n, d, (r0, r1) -> {
                for (long r = r0; r < r1; r++) {
                    long row = is.getAtIndex(I32, r);
                    MemorySegment.copy(ts, row * d * 4, os, r * d * 4, d * 4);
                }
            });
        } finally {
            exit();
        }
    }

    // ---------------------------------------------------------------- random numbers

    /** Element {@code i} of {@code out} (row-major) is {@code Philox.normal(seed, stream, i)}. */
    @Override
    public void randn(Tensor out, long seed, long stream) {
        random(out, seed, stream, true);
    }

    /** Element {@code i} of {@code out} (row-major) is {@code Philox.uniform(seed, stream, i)}, in (0, 1]. */
    @Override
    public void rand(Tensor out, long seed, long stream) {
        random(out, seed, stream, false);
    }

    private void random(Tensor out, long seed, long stream, boolean normal) {
        enter();
        try {
            f32("out", out);
            long n = out.numel();
            if (n == 0) {
                return;
            }
            MemorySegment os = out.segment();
            pool.forRange(n, WorkerPool.GRAIN, (from, to) -> {
                MemorySegment piece = os.asSlice(from * 4, (to - from) * 4);
                if (normal) {
                    Philox.fillNormal(piece, to - from, seed, stream, from);
                } else {
                    Philox.fillUniform(piece, to - from, seed, stream, from);
                }
            });
        } finally {
            exit();
        }
    }

    // ---------------------------------------------------------------- lifecycle

    /**
     * Shuts the worker threads down; later calls throw {@link IllegalStateException}. Idempotent.
     *
     * @throws IllegalStateException changing nothing while calls on other threads are running, this backend's own
     *                               ops or those of the op families on it ({@link CpuNnOps}, {@link CpuDiffusionOps},
     *                               {@link CpuAttention}): close after they return
     */
    @Override
    public void close() {
        while (true) {
            int s = state.get();
            if (s == CLOSED) {
                return;
            }
            if (s > 0) {
                throw new IllegalStateException("backend cpu (" + threads + " threads) is in use by " + s + " call"
                        + (s == 1 ? "" : "s") + " on other threads; close it after they return");
            }
            if (state.compareAndSet(0, CLOSED)) {
                break;
            }
        }
        pool.close();
    }

    @Override
    public boolean isClosed() {
        return state.get() == CLOSED;
    }

    // ---------------------------------------------------------------- helpers

    /**
     * Starts a call: counted until its {@link #exit()}, so that {@link #close()} refuses while it runs; throws when
     * the backend is closed. The op families on this backend bracket their calls with it too.
     */
    void enter() {
        while (true) {
            int s = state.get();
            if (s == CLOSED) {
                throw new IllegalStateException("backend " + "cpu (" + threads + " threads) is closed");
            }
            if (state.compareAndSet(s, s + 1)) {
                return;
            }
        }
    }

    /** Calls running now (0 when closed), for tests. */
    int runningCalls() {
        return Math.max(0, state.get());
    }

    /** Ends a call started by {@link #enter()}. */
    void exit() {
        state.decrementAndGet();
    }

    /** {@link Ops.Broadcast#of}, with the operand's own name in the message. */
    private static Ops.Broadcast broadcast(String name, Tensor operand, Tensor a) {
        try {
            return Ops.Broadcast.of(a, operand);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(name + " " + operand + " cannot be broadcast against a " + a
                    + ": expected the same shape, one element, [" + a.cols() + "] (row) or [..., 1] (per row)", e);
        }
    }

    private void f32(String name, Tensor t) {
        Shape.requireOperand(name, t, this, DType.F32);
    }

    /**
     * Rejects a native host segment whose first {@code bytes} bytes overlap the bytes spanned by tensor {@code t}:
     * the copy runs in parallel pieces, so an overlap would corrupt it in a thread-dependent way.
     */
    private static void requireDisjoint(String op, String segName, MemorySegment seg, long segAddress, long bytes,
                                        String tName, Tensor t) {
        if (!seg.isNative()) {
            return;                                            // a heap array is never a tensor's memory
        }
        long s1 = segAddress + bytes;
        long t0 = t.storage().address() + t.offset() * t.dtype().byteSize();
        long t1 = t0 + Shape.spanBytes(t);
        if (segAddress < t1 && t0 < s1) {
            throw new IllegalArgumentException(op + ": " + segName + " segment (" + bytes + " bytes at 0x"
                    + Long.toHexString(segAddress) + ") overlaps " + tName + " " + t + " in memory");
        }
    }


    /** Rejects {@code out} whose bytes overlap the bytes spanned by {@code in} (any strides). */
    private static void requireNoOverlap(String op, String outName, Tensor out, String inName, Tensor in) {
        if (out.numel() == 0 || in.numel() == 0) {
            return;
        }
        MemorySegment os = out.storage();
        MemorySegment is = in.storage();
        long o0 = os.address() + out.offset() * out.dtype().byteSize();
        long o1 = o0 + out.byteSize();
        long i0 = is.address() + in.offset() * in.dtype().byteSize();
        long i1 = i0 + Shape.spanBytes(in);
        if (o0 < i1 && i0 < o1) {
            throw new IllegalArgumentException(op + ": " + outName + " " + out + " overlaps " + inName + " " + in
                    + " in memory");
        }
    }
}
