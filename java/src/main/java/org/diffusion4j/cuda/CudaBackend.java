package org.diffusion4j.cuda;

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
import java.util.Locale;

/**
 * The CUDA backend: tensors in device memory, ops as the kernels of {@code native/include/diffusion4j.h}
 * queued on one CUDA stream per backend, GEMM through cuBLAS.
 *
 * <ul>
 *   <li><b>Memory.</b> {@link #empty} allocates with {@code d4j_malloc}; the buffer belongs to the
 *       {@link TensorScope}'s arena ({@code MemorySegment.ofAddress(ptr).reinterpret(bytes, arena, free)}) and
 *       is freed when the scope closes, never by the garbage collector. The segment carries the device
 *       address and size only and is never dereferenced from Java.</li>
 *   <li><b>Transfers</b> go through two pinned host staging buffers of {@value #STAGING_CHUNK_BYTES} bytes,
 *       double-buffered so that the host-side copy of one chunk overlaps the DMA of the previous one.
 *       They synchronise the backend's stream.</li>
 *   <li><b>Errors.</b> Every native status is checked; a failure throws {@link CudaException} carrying the
 *       CUDA error name and text, the op and the operands' shapes. Shape, dtype and device checks happen in
 *       Java before any native call ({@link IllegalArgumentException}, as on the CPU).</li>
 *   <li><b>Threads.</b> Ops may be called from any thread; each call makes the backend's device current on
 *       the calling thread first. Ops of one backend are ordered by its stream.</li>
 * </ul>
 */
public final class CudaBackend implements Backend {

    /** Compute mode of {@link #gemm} on fp32 tensors. */
    public enum GemmMath {
        /** Full fp32 FMA (CUBLAS_COMPUTE_32F): matches the CPU to ~1e-6 relative. */
        FP32,
        /** TF32 tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32): 10-bit mantissa inputs, ~1e-3 relative. */
        TF32,
        /** BF16 tensor cores (CUBLAS_COMPUTE_32F_FAST_16BF): 7-bit mantissa inputs, ~1e-2 relative. */
        BF16;

        /** From {@code -Dd4j.cuda.gemm=fp32|tf32|bf16}; FP32 when unset. */
        static GemmMath fromProperty() {
            String v = System.getProperty("d4j.cuda.gemm", "fp32").trim().toUpperCase(Locale.ROOT);
            try {
                return valueOf(v);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("-Dd4j.cuda.gemm=" + v.toLowerCase(Locale.ROOT)
                        + " is not one of fp32, tf32, bf16", e);
            }
        }
    }

    /** Bytes of each of the two pinned staging buffers. */
    static final int STAGING_CHUNK_BYTES = 4 << 20;

    /** cudaErrorMemoryAllocation. */
    private static final int CUDA_ERROR_MEMORY_ALLOCATION = 2;
    /** Most dims {@code d4j_copy_strided} takes. */
    private static final int MAX_COPY_RANK = 8;

    /** The device each thread last made current in our runtime (cudaSetDevice is per thread). */
    private static final ThreadLocal<int[]> CURRENT_DEVICE = ThreadLocal.withInitial(() -> new int[] {-1});

    private final DeviceInfo info;
    private final int index;
    private final Device device;
    private final long stream;
    private volatile GemmMath gemmMath;
    private final Object transferLock = new Object();
    private long pinned; // 2 * STAGING_CHUNK_BYTES, allocated at the first transfer
    private final Object workspaceLock = new Object();
    private long workspace;
    private long workspaceBytes;
    private final Object cublasLock = new Object();
    private CublasApi cublas;
    private volatile boolean closed;

    CudaBackend(DeviceInfo info, GemmMath gemmMath) {
        this.info = info;
        this.index = info.index();
        this.device = Device.cuda(index);
        this.gemmMath = gemmMath;
        makeCurrent();
        long[] s = new long[1];
        check(NativeLib.d4j_stream_create(s), "create backend", "d4j_stream_create", "");
        this.stream = s[0];
    }

    @Override
    public String name() {
        return "cuda:" + index + " (" + info + ", gemm " + gemmMath.name().toLowerCase(Locale.ROOT) + ")";
    }

    @Override
    public Device device() {
        return device;
    }

    /** What the runtime reported about this backend's device. */
    public DeviceInfo deviceInfo() {
        return info;
    }

    /** The compute mode of {@link #gemm}. */
    public GemmMath gemmMath() {
        return gemmMath;
    }

    /** Sets the compute mode of later {@link #gemm} calls. */
    public void setGemmMath(GemmMath math) {
        this.gemmMath = java.util.Objects.requireNonNull(math, "math");
    }

    /** The CUDA stream ({@code cudaStream_t}) this backend queues on, for interop. */
    public long stream() {
        return stream;
    }

    // ---------------------------------------------------------------- memory

    @Override
    @SuppressWarnings("restricted") // the segment only carries the device address; it is never dereferenced
    public Tensor empty(TensorScope scope, DType dtype, long... shape) {
        long[] s = Shape.checked(shape);
        long bytes = Math.multiplyExact(Shape.numel(s), (long) dtype.byteSize());
        if (!scope.isAlive()) {
            throw new IllegalStateException("tensor scope is closed");
        }
        ensureOpen();
        makeCurrent();
        long[] p = new long[1];
        int rc = NativeLib.d4j_malloc(p, Math.max(bytes, 1));
        if (rc == CUDA_ERROR_MEMORY_ALLOCATION) {
            throw new OutOfMemoryError("CUDA device " + index + " (" + info.name() + ") has no room for " + bytes
                    + " bytes (" + dtype + " " + Arrays.toString(s) + "): " + NativeLib.d4j_last_error());
        }
        check(rc, "empty", "d4j_malloc", dtype + " " + Arrays.toString(s) + ", " + bytes + " bytes");
        long ptr = p[0];
        int dev = index;
        MemorySegment storage;
        try {
            storage = MemorySegment.ofAddress(ptr).reinterpret(bytes, scope.arena(), ignored -> freeDevice(dev, ptr));
        } catch (RuntimeException e) { // the scope closed meanwhile
            freeDevice(dev, ptr);
            throw e;
        }
        Tensor t = Tensor.of(this, storage, dtype, s);
        if (POISON_EMPTY && dtype != DType.I32 && t.numel() > 0) {
            fill(t, Float.NaN);          // tests: an op reading an element nobody wrote sees NaN (see HostMemory)
        }
        return t;
    }

    /** {@code -Dd4j.poisonEmpty=true} (the test runs): {@link #empty} fills float tensors with NaN. */
    private static final boolean POISON_EMPTY = Boolean.getBoolean("d4j.poisonEmpty");

    /** Runs in the thread that closes the scope; cudaFree waits for queued kernels that use the buffer. */
    private static void freeDevice(int dev, long ptr) {
        if (CURRENT_DEVICE.get()[0] != dev) {
            selectDevice(dev);
        }
        NativeLib.d4j_free(ptr); // a failure here (e.g. after a sticky error) has no one to report to
    }

    @Override
    public Tensor wrap(MemorySegment hostSegment, DType dtype, long... shape) {
        throw new IllegalArgumentException("cannot wrap a host segment as a tensor of " + device
                + ": device memory is separate; allocate with empty() and copy with Tensor.copyFrom");
    }

    @Override
    public void copyFromHost(MemorySegment src, Tensor dst) {
        Shape.requireOn("dst", dst, this);
        Shape.requireContiguous("dst", dst);
        long bytes = dst.byteSize();
        if (src.byteSize() < bytes) {
            throw new IllegalArgumentException("source segment has " + src.byteSize() + " bytes, " + dst + " needs "
                    + bytes);
        }
        if (bytes == 0) {
            return;
        }
        long dstAddr = dst.address();
        synchronized (transferLock) {
            MemorySegment[] buf = staging();
            long done = 0;
            int k = 0;
            while (done < bytes) {
                int n = (int) Math.min(STAGING_CHUNK_BYTES, bytes - done);
                MemorySegment b = buf[k & 1];
                MemorySegment.copy(src, done, b, 0, n);
                // The DMA of chunk k-1 has overlapped the host copy above; wait for it before reusing its buffer.
                check(NativeLib.d4j_stream_synchronize(stream), "copyFromHost", "d4j_stream_synchronize", dst.toString());
                check(NativeLib.d4j_memcpy_h2d(dstAddr + done, b.address(), n, stream), "copyFromHost",
                        "d4j_memcpy_h2d", dst + ", chunk at byte " + done);
                done += n;
                k++;
            }
            check(NativeLib.d4j_stream_synchronize(stream), "copyFromHost", "d4j_stream_synchronize", dst.toString());
        }
    }

    @Override
    public void copyToHost(Tensor src, MemorySegment dst) {
        Shape.requireOn("src", src, this);
        long bytes = src.byteSize();
        if (dst.byteSize() < bytes) {
            throw new IllegalArgumentException("destination segment has " + dst.byteSize() + " bytes, " + src
                    + " holds " + bytes);
        }
        if (bytes == 0) {
            return;
        }
        if (!src.isContiguous()) {
            try (TensorScope tmp = TensorScope.open()) {
                Tensor c = empty(tmp, src.dtype(), src.shape());
                copy(src, c);
                copyToHost(c, dst);
            }
            return;
        }
        long srcAddr = src.address();
        synchronized (transferLock) {
            MemorySegment[] buf = staging();
            long done = 0;
            int k = 0;
            int pendingBytes = 0;
            MemorySegment pending = null;
            long pendingAt = 0;
            while (done < bytes || pending != null) {
                MemorySegment b = buf[k & 1];
                int n = (int) Math.min(STAGING_CHUNK_BYTES, bytes - done);
                if (n > 0) {
                    check(NativeLib.d4j_memcpy_d2h(b.address(), srcAddr + done, n, stream), "copyToHost",
                            "d4j_memcpy_d2h", src + ", chunk at byte " + done);
                }
                // Drain the previous chunk while this one is in flight.
                if (pending != null) {
                    MemorySegment.copy(pending, 0, dst, pendingAt, pendingBytes);
                    pending = null;
                }
                check(NativeLib.d4j_stream_synchronize(stream), "copyToHost", "d4j_stream_synchronize", src.toString());
                if (n > 0) {
                    pending = b;
                    pendingAt = done;
                    pendingBytes = n;
                    done += n;
                    k++;
                }
            }
        }
    }

    /** The two pinned staging buffers (allocated on first use, freed by {@link #close()}). */
    @SuppressWarnings("restricted") // pinned host memory of known size from d4j_malloc_host
    private MemorySegment[] staging() {
        ensureOpen();
        makeCurrent();
        if (pinned == 0) {
            long[] p = new long[1];
            check(NativeLib.d4j_malloc_host(p, 2L * STAGING_CHUNK_BYTES), "host transfer", "d4j_malloc_host",
                    2L * STAGING_CHUNK_BYTES + " pinned bytes");
            pinned = p[0];
        }
        MemorySegment all = MemorySegment.ofAddress(pinned).reinterpret(2L * STAGING_CHUNK_BYTES);
        return new MemorySegment[] {all.asSlice(0, STAGING_CHUNK_BYTES), all.asSlice(STAGING_CHUNK_BYTES, STAGING_CHUNK_BYTES)};
    }

    @Override
    public void synchronize() {
        ensureOpen();
        makeCurrent();
        check(NativeLib.d4j_stream_synchronize(stream), "synchronize", "d4j_stream_synchronize", "");
    }

    // ---------------------------------------------------------------- fill, copy, cast

    @Override
    public void fill(Tensor out, float value) {
        Shape.requireOn("out", out, this);
        Shape.requireContiguous("out", out);
        if (out.dtype() == DType.I32 && value != 0f) {
            throw new IllegalArgumentException("fill of I32 " + out + " takes only 0, got " + value);
        }
        if (out.numel() == 0) {
            return;
        }
        prepare();
        check(NativeLib.d4j_fill(out.address(), out.dtype().ordinal(), out.numel(), value, stream), "fill", "d4j_fill",
                out + " = " + value);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
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
        int es = src.dtype().byteSize();
        long srcBase = src.storage().address() + src.offset() * es;
        prepare();
        if (src.isContiguous()) {
            check(NativeLib.d4j_memcpy_d2d(dst.address(), srcBase, src.byteSize(), stream), "copy", "d4j_memcpy_d2d",
                    "src " + src + ", dst " + dst);
            return;
        }
        long[][] cs = coalesce(src.shape(), src.strides());
        if (cs[0].length > MAX_COPY_RANK) {
            throw new IllegalArgumentException("copy of " + src + " with strides " + Arrays.toString(src.strides())
                    + " needs " + cs[0].length + " dims after merging; the CUDA copy supports " + MAX_COPY_RANK);
        }
        check(NativeLib.d4j_copy_strided(srcBase, dst.address(), es, cs[0].length, cs[0], cs[1], stream), "copy",
                "d4j_copy_strided", "src " + src + " strides " + Arrays.toString(src.strides()) + ", dst " + dst);
    }

    /**
     * Drops size-1 dims and merges dims {@code d, d+1} whose strides chain ({@code stride[d] = stride[d+1] *
     * shape[d+1]}), so that e.g. a transposed {@code [B, H, T, D]} view becomes a rank-3 copy. The element
     * order (row-major over the original shape) is unchanged.
     */
    static long[][] coalesce(long[] shape, long[] strides) {
        long[] s = new long[shape.length];
        long[] st = new long[shape.length];
        int r = 0;
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] == 1) {
                continue;
            }
            if (r > 0 && st[r - 1] == strides[d] * shape[d]) {
                s[r - 1] *= shape[d];
                st[r - 1] = strides[d];
            } else {
                s[r] = shape[d];
                st[r] = strides[d];
                r++;
            }
        }
        if (r == 0) {
            return new long[][] {{1}, {1}};
        }
        return new long[][] {Arrays.copyOf(s, r), Arrays.copyOf(st, r)};
    }

    @Override
    public void cast(Tensor src, Tensor dst) {
        Shape.requireOn("src", src, this);
        Shape.requireOn("dst", dst, this);
        Shape.requireSameShape("src", src, "dst", dst);
        Shape.requireContiguous("src", src);
        Shape.requireContiguous("dst", dst);
        if (!src.dtype().isFloatingPoint() || !dst.dtype().isFloatingPoint()) {
            throw new IllegalArgumentException("cast converts between float dtypes; src " + src + ", dst " + dst);
        }
        if (src.numel() == 0) {
            return;
        }
        prepare();
        if (src.dtype() == dst.dtype()) {
            check(NativeLib.d4j_memcpy_d2d(dst.address(), src.address(), src.byteSize(), stream), "cast",
                    "d4j_memcpy_d2d", "src " + src + ", dst " + dst);
            return;
        }
        check(NativeLib.d4j_cast(src.address(), src.dtype().ordinal(), dst.address(), dst.dtype().ordinal(),
                src.numel(), stream), "cast", "d4j_cast", "src " + src + ", dst " + dst);
    }

    // ---------------------------------------------------------------- elementwise

    @Override
    public void binary(Ops.Binary op, Tensor a, Tensor b, Tensor out) {
        requireF32("a", a);
        requireF32("b", b);
        requireF32("out", out);
        Shape.requireSameShape("a", a, "out", out);
        Ops.Broadcast bc = Ops.Broadcast.of(a, b);
        if (a.numel() == 0) {
            return;
        }
        prepare();
        check(NativeLib.d4j_binary_f32(op.ordinal(), a.address(), b.address(), bc.ordinal(), out.address(), a.rows(),
                a.cols(), stream), "binary " + op, "d4j_binary_f32", "a " + a + ", b " + b + " (" + bc + "), out " + out);
    }

    @Override
    public void binary(Ops.Binary op, Tensor a, float s, Tensor out) {
        requireF32("a", a);
        requireF32("out", out);
        Shape.requireSameShape("a", a, "out", out);
        if (a.numel() == 0) {
            return;
        }
        prepare();
        check(NativeLib.d4j_binary_scalar_f32(op.ordinal(), a.address(), s, out.address(), a.numel(), stream),
                "binary " + op, "d4j_binary_scalar_f32", "a " + a + ", s " + s + ", out " + out);
    }

    @Override
    public void unary(Ops.Unary op, Tensor a, Tensor out) {
        requireF32("a", a);
        requireF32("out", out);
        Shape.requireSameShape("a", a, "out", out);
        if (a.numel() == 0) {
            return;
        }
        prepare();
        check(NativeLib.d4j_unary_f32(op.ordinal(), a.address(), out.address(), a.numel(), stream), "unary " + op,
                "d4j_unary_f32", "a " + a + ", out " + out);
    }

    @Override
    public void axpby(float alpha, Tensor x, float beta, Tensor y, Tensor out) {
        requireF32("x", x);
        requireF32("y", y);
        requireF32("out", out);
        Shape.requireSameShape("x", x, "y", y);
        Shape.requireSameShape("x", x, "out", out);
        if (x.numel() == 0) {
            return;
        }
        prepare();
        check(NativeLib.d4j_axpby_f32(alpha, x.address(), beta, y.address(), out.address(), x.numel(), stream),
                "axpby", "d4j_axpby_f32", "x " + x + ", y " + y + ", out " + out);
    }

    @Override
    public void fma(Tensor a, Tensor b, Tensor c, Tensor out) {
        requireF32("a", a);
        requireF32("b", b);
        requireF32("c", c);
        requireF32("out", out);
        Shape.requireSameShape("a", a, "out", out);
        Ops.Broadcast bb = Ops.Broadcast.of(a, b);
        Ops.Broadcast cb = Ops.Broadcast.of(a, c);
        if (a.numel() == 0) {
            return;
        }
        prepare();
        check(NativeLib.d4j_fma_f32(a.address(), b.address(), bb.ordinal(), c.address(), cb.ordinal(), out.address(),
                a.rows(), a.cols(), stream), "fma", "d4j_fma_f32",
                "a " + a + ", b " + b + " (" + bb + "), c " + c + " (" + cb + "), out " + out);
    }

    @Override
    public void scaleShift(Tensor a, float s, float t, Tensor out) {
        requireF32("a", a);
        requireF32("out", out);
        Shape.requireSameShape("a", a, "out", out);
        if (a.numel() == 0) {
            return;
        }
        prepare();
        check(NativeLib.d4j_scale_shift_f32(a.address(), s, t, out.address(), a.numel(), stream), "scaleShift",
                "d4j_scale_shift_f32", "a " + a + ", s " + s + ", t " + t + ", out " + out);
    }

    // ---------------------------------------------------------------- reductions and softmax

    @Override
    public void reduceLastDim(Ops.Reduce op, Tensor x, Tensor out) {
        requireF32("x", x);
        requireF32("out", out);
        if (out.numel() != x.rows()) {
            throw new IllegalArgumentException("out " + out + " must have " + x.rows() + " elements (one per row of x "
                    + x + "), has " + out.numel());
        }
        if (x.rows() == 0) {
            return;
        }
        prepare();
        check(NativeLib.d4j_reduce_last_f32(op.ordinal(), x.address(), out.address(), x.rows(), x.cols(), stream),
                "reduceLastDim " + op, "d4j_reduce_last_f32", "x " + x + ", out " + out);
    }

    @Override
    public double globalNorm(List<Tensor> xs) {
        for (int i = 0; i < xs.size(); i++) {
            requireF32("xs[" + i + "]", xs.get(i));
        }
        prepare();
        double sum = 0;
        double[] r = new double[1];
        synchronized (workspaceLock) {
            for (int i = 0; i < xs.size(); i++) {
                Tensor x = xs.get(i);
                if (x.numel() == 0) {
                    continue;
                }
                long ws = ensureWorkspace(NativeLib.d4j_sum_squares_workspace_bytes(x.numel()));
                check(NativeLib.d4j_sum_squares_f32(x.address(), x.numel(), ws, r, stream), "globalNorm",
                        "d4j_sum_squares_f32", "xs[" + i + "] " + x);
                sum += r[0];
            }
        }
        return Math.sqrt(sum);
    }

    private long ensureWorkspace(long bytes) {
        if (bytes > workspaceBytes) {
            if (workspace != 0) {
                check(NativeLib.d4j_stream_synchronize(stream), "globalNorm", "d4j_stream_synchronize", "");
                check(NativeLib.d4j_free(workspace), "globalNorm", "d4j_free", "workspace");
                workspace = 0;
                workspaceBytes = 0;
            }
            long[] p = new long[1];
            check(NativeLib.d4j_malloc(p, Math.max(bytes, 1)), "globalNorm", "d4j_malloc", "workspace of " + bytes + " bytes");
            workspace = p[0];
            workspaceBytes = bytes;
        }
        return workspace;
    }

    @Override
    public void softmaxLastDim(Tensor x, Tensor out) {
        requireF32("x", x);
        requireF32("out", out);
        Shape.requireSameShape("x", x, "out", out);
        if (x.numel() == 0) {
            return;
        }
        prepare();
        check(NativeLib.d4j_softmax_last_f32(x.address(), out.address(), x.rows(), x.cols(), stream), "softmaxLastDim",
                "d4j_softmax_last_f32", "x " + x + ", out " + out);
    }

    // ---------------------------------------------------------------- matrix products

    @Override
    public void gemm(boolean transA, boolean transB, float alpha, Tensor a, Tensor b, float beta, Tensor c) {
        requireF32("a", a);
        requireF32("b", b);
        requireF32("c", c);
        GemmShape g = GemmShape.of(transA, transB, a, b, c);
        requireNoOverlap("c", c, "a", a);
        requireNoOverlap("c", c, "b", b);
        if (g.m() == 0 || g.n() == 0 || g.batch() == 0) {
            return;
        }
        if (g.k() == 0 || alpha == 0f) { // no product: c = beta c, as on the CPU (c not read when beta == 0)
            if (beta == 0f) {
                fill(c, 0f);
            } else if (beta != 1f) {
                binary(Ops.Binary.MUL, c, beta, c);
            }
            return;
        }
        prepare();
        String operands = "a " + a + (transA ? "^T" : "") + ", b " + b + (transB ? "^T" : "") + ", c " + c;
        // Row-major C = op(A) op(B)  <=>  column-major C^T = op(B)^T op(A)^T: swap operands and m/n.
        cublas().gemmF32(transB, transA, g.n(), g.m(), g.k(), alpha,
                b.address(), g.ldb(), g.strideB(),
                a.address(), g.lda(), g.strideA(), beta,
                c.address(), g.ldc(), g.strideC(), g.batch(), gemmMath, operands);
    }

    private CublasApi cublas() {
        synchronized (cublasLock) {
            ensureOpen();
            if (cublas == null) {
                cublas = CublasApi.open(index, stream);
            }
            return cublas;
        }
    }

    /**
     * The cuBLAS behind {@link #gemm}, e.g. {@code "cuBLAS 13.1.0 (bytedeco cuda presets)"}; loads it.
     *
     * @throws IllegalStateException when no cuBLAS can be loaded (the message says what was tried)
     */
    public String gemmLibrary() {
        return cublas().description();
    }

    // ---------------------------------------------------------------- indexing

    @Override
    public void gatherRows(Tensor table, Tensor indices, Tensor out) {
        Shape.requireGatherRows(this, table, indices, out);
        long v = table.shape(0);
        long d = table.shape(1);
        long n = indices.shape(0);
        if (n == 0 || d == 0) {
            return;
        }
        prepare();
        int rc = NativeLib.d4j_gather_rows_f32(table.address(), v, d, indices.address(), n, out.address(), stream);
        if (rc == NativeLib.ERR_INVALID) {
            throw new IndexOutOfBoundsException("gatherRows: an index of " + indices + " is outside [0, " + v + "): "
                    + NativeLib.d4j_last_error());
        }
        check(rc, "gatherRows", "d4j_gather_rows_f32", "table " + table + ", indices " + indices + ", out " + out);
    }

    // ---------------------------------------------------------------- random numbers

    @Override
    public void randn(Tensor out, long seed, long streamId) {
        random(out, seed, streamId, true);
    }

    @Override
    public void rand(Tensor out, long seed, long streamId) {
        random(out, seed, streamId, false);
    }

    private void random(Tensor out, long seed, long streamId, boolean normal) {
        requireF32("out", out);
        if (out.numel() == 0) {
            return;
        }
        prepare();
        check(NativeLib.d4j_random_f32(out.address(), out.numel(), seed, streamId, normal ? 1 : 0, stream),
                normal ? "randn" : "rand", "d4j_random_f32", "out " + out + ", seed " + seed + ", stream " + streamId);
    }

    // ---------------------------------------------------------------- lifecycle

    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        makeCurrent();
        NativeLib.d4j_stream_synchronize(stream);
        synchronized (cublasLock) {
            if (cublas != null) {
                cublas.close();
                cublas = null;
            }
        }
        synchronized (workspaceLock) {
            if (workspace != 0) {
                NativeLib.d4j_free(workspace);
                workspace = 0;
            }
        }
        synchronized (transferLock) {
            if (pinned != 0) {
                NativeLib.d4j_free_host(pinned);
                pinned = 0;
            }
        }
        NativeLib.d4j_stream_destroy(stream);
    }

    @Override
    public String toString() {
        return name();
    }

    @Override
    public boolean isClosed() {
        return closed;
    }

    // ---------------------------------------------------------------- helpers

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("backend " + device + " is closed");
        }
    }

    /** Makes this backend's device current on the calling thread (cudaSetDevice is per thread). */
    private void makeCurrent() {
        if (CURRENT_DEVICE.get()[0] != index) {
            check(selectDevice(index), "select device", "d4j_set_device", "device " + index);
        }
    }

    /**
     * {@code d4j_set_device} that keeps the per-thread cache of {@link #makeCurrent()} right; every call of
     * {@code d4j_set_device} in this package goes through here.
     */
    static int selectDevice(int device) {
        int rc = NativeLib.d4j_set_device(device);
        CURRENT_DEVICE.get()[0] = rc == 0 ? device : -1;
        return rc;
    }

    private void prepare() {
        ensureOpen();
        makeCurrent();
    }

    private void requireF32(String name, Tensor t) {
        Shape.requireOperand(name, t, this, DType.F32);
    }

    private static void requireNoOverlap(String outName, Tensor out, String inName, Tensor in) {
        long o0 = out.address();
        long o1 = o0 + out.byteSize();
        long i0 = in.address();
        long i1 = i0 + in.byteSize();
        if (o0 < i1 && i0 < o1 && out.byteSize() > 0 && in.byteSize() > 0) {
            throw new IllegalArgumentException("gemm: " + outName + " " + out + " overlaps " + inName + " " + in);
        }
    }

    private static void check(int rc, String op, String function, String operands) {
        if (rc != 0) {
            throw new CudaException(op, function, rc, NativeLib.d4j_last_error(), operands);
        }
    }
}
