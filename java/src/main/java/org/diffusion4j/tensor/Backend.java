package org.diffusion4j.tensor;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The ops every device implements. Algorithms (schedules, samplers, layers, training) call tensors only
 * through this interface, so they run unchanged on the CPU and on CUDA.
 *
 * <p>Conventions shared by every op:
 * <ul>
 *   <li>Outputs are preallocated by the caller and named {@code out} (or {@code c}, {@code dst}); an op
 *       never allocates its result. {@code out} may alias an input of the same shape (in-place) unless the
 *       op says otherwise.</li>
 *   <li>Every tensor argument must be alive, on this backend's device, of dtype {@link DType#F32} and
 *       contiguous unless the op says otherwise. A violation throws {@link IllegalArgumentException}
 *       (or {@link IllegalStateException} for a closed scope) naming the argument, its shape and dtype,
 *       before any memory is touched.</li>
 *   <li>"Rows" are all dims but the last: a tensor {@code [..., N]} has {@link Tensor#rows()} rows of
 *       {@code N} elements.</li>
 *   <li>Ops are asynchronous with respect to the host on devices that queue work; {@link #synchronize()}
 *       waits. Host transfers synchronise.</li>
 * </ul>
 */
public interface Backend extends AutoCloseable {

    /** Human-readable name, e.g. {@code "cpu (2 threads, OpenBLAS 0.3.31)"}. */
    String name();

    /** The device whose memory this backend's tensors live in. */
    Device device();

    // ---------------------------------------------------------------- memory

    /**
     * Allocates an uninitialised contiguous tensor owned by {@code scope}.
     *
     * @param shape dims, each {@code >= 0}
     * @throws IllegalArgumentException on a negative dim
     * @throws IllegalStateException    when {@code scope} is closed
     * @throws OutOfMemoryError         when the device has no room (the message names the byte count)
     */
    Tensor empty(TensorScope scope, DType dtype, long... shape);

    /**
     * Allocates a zero-filled contiguous tensor owned by {@code scope}.
     *
     * @param shape dims, each {@code >= 0}
     * @throws IllegalArgumentException on a negative dim
     * @throws IllegalStateException    when {@code scope} is closed
     * @throws OutOfMemoryError         when the device has no room
     */
    default Tensor zeros(TensorScope scope, DType dtype, long... shape) {
        Tensor t = empty(scope, dtype, shape);
        fill(t, 0f);
        return t;
    }

    /**
     * An F32 tensor of {@code shape} holding {@code values} (row-major).
     *
     * @param values exactly {@code numel(shape)} values
     * @throws IllegalArgumentException on a negative dim, or when {@code values.length} is not the element count
     * @throws IllegalStateException    when {@code scope} is closed
     */
    default Tensor fromArray(TensorScope scope, float[] values, long... shape) {
        return empty(scope, DType.F32, shape).copyFrom(values);
    }

    /**
     * An I32 tensor of {@code shape} holding {@code values} (row-major), e.g. class labels.
     *
     * @param values exactly {@code numel(shape)} values
     * @throws IllegalArgumentException on a negative dim, or when {@code values.length} is not the element count
     * @throws IllegalStateException    when {@code scope} is closed
     */
    default Tensor fromArray(TensorScope scope, int[] values, long... shape) {
        return empty(scope, DType.I32, shape).copyFrom(values);
    }

    /**
     * Wraps a caller's host segment as a tensor without copying (the caller keeps ownership and must keep
     * the segment alive). Only backends whose device is the host can do this.
     *
     * @param hostSegment native memory of at least {@code numel(shape)·dtype.byteSize()} bytes, aligned for
     *                    {@code dtype}, writable
     * @throws IllegalArgumentException when the segment is too small, misaligned for {@code dtype}, a heap segment
     *                                  (backed by a Java array) rather than native memory, read-only, of a confined
     *                                  arena on a backend whose worker threads would touch it, on a negative dim,
     *                                  or when this backend is not on the host
     * @throws IllegalStateException    when the segment's arena is closed
     */
    Tensor wrap(MemorySegment hostSegment, DType dtype, long... shape);

    /**
     * Copies {@code dst.byteSize()} bytes from a host segment (heap or native) into contiguous {@code dst}.
     * Synchronous.
     *
     * @param src at least {@code dst.byteSize()} bytes (the first ones are read), in {@code dst}'s dtype layout
     * @param dst contiguous, any dtype
     * @throws IllegalArgumentException when {@code src} holds fewer than {@code dst.byteSize()} bytes, {@code dst}
     *                                  is not contiguous or not on this backend, or {@code src} overlaps
     *                                  {@code dst}'s memory
     * @throws IllegalStateException    when {@code dst}'s scope, {@code src}'s arena or this backend is closed
     */
    void copyFromHost(MemorySegment src, Tensor dst);

    /**
     * Copies the elements of {@code src} (any strides, row-major order) into a host segment. Synchronous.
     *
     * @param src any strides, any dtype
     * @param dst writable, at least {@code src.byteSize()} bytes (the first ones are written)
     * @throws IllegalArgumentException when {@code dst} holds fewer than {@code src.byteSize()} bytes, is
     *                                  read-only or overlaps {@code src}'s memory, or {@code src} is not on this
     *                                  backend
     * @throws IllegalStateException    when {@code src}'s scope, {@code dst}'s arena or this backend is closed
     */
    void copyToHost(Tensor src, MemorySegment dst);

    /** Waits until all queued work of this backend has finished. A no-op on the CPU. */
    void synchronize();

    // ---------------------------------------------------------------- fill, copy, cast

    /**
     * Sets every element of {@code out} to {@code value}: F32 as is, BF16 and F16 rounded to nearest even, I32 only
     * for {@code value = 0}.
     *
     * @param out contiguous, any dtype
     * @throws IllegalArgumentException when {@code out} is I32 and {@code value ≠ 0}, not contiguous, or not on this
     *                                  backend
     * @throws IllegalStateException    when {@code out}'s scope is closed
     */
    void fill(Tensor out, float value);

    /**
     * Copies {@code src} into {@code dst}: same shape and dtype, <b>any strides</b> on {@code src}
     * (this is how a permuted or transposed view is materialised), contiguous {@code dst}, bit for bit.
     * {@code src} and {@code dst} must not overlap.
     *
     * @throws IllegalArgumentException when the shapes or dtypes differ (use {@link #cast} to convert), {@code dst}
     *                                  is not contiguous, the two overlap, or either is not on this backend
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void copy(Tensor src, Tensor dst);

    /**
     * Converts between float dtypes (F32 ↔ BF16, F32 ↔ F16; round to nearest even), both contiguous and of
     * the same shape; equal dtypes copy. BF16 ↔ F16 is allowed too and goes through F32 (exact), so it rounds
     * once, to nearest even (F16 → BF16 can lose precision; BF16 → F16 can overflow to ±∞ or underflow).
     *
     * @throws IllegalArgumentException when a dtype is not a float dtype (I32), the shapes differ, a tensor is not
     *                                  contiguous or not on this backend, or the two overlap partially
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void cast(Tensor src, Tensor dst);

    /** Materialises {@code src.permute(dims)} into contiguous {@code out} of the permuted shape. */
    default void permute(Tensor src, Tensor out, int... dims) {
        copy(src.permute(dims), out);
    }

    /** Materialises the transpose of the last two dims of {@code src} into {@code out} {@code [..., N, M]}. */
    default void transposeLast2(Tensor src, Tensor out) {
        copy(src.transpose(-2, -1), out);
    }

    // ---------------------------------------------------------------- elementwise

    /**
     * {@code out = a OP b} with {@code b} broadcast by {@link Ops.Broadcast#of} (same shape, one element,
     * row vector {@code [N]}, or one value per row {@code [..., 1]}). {@code out} has the shape of {@code a}.
     *
     * @throws IllegalArgumentException when {@code b} cannot be broadcast against {@code a} (naming both shapes),
     *                                  {@code out} is not {@code a}'s shape, or a tensor is not F32, contiguous and
     *                                  on this backend
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void binary(Ops.Binary op, Tensor a, Tensor b, Tensor out);

    /**
     * {@code out = a OP s}.
     *
     * @param out F32 of {@code a}'s shape; may be {@code a}
     * @throws IllegalArgumentException when {@code out} is not {@code a}'s shape, or a tensor is not F32, contiguous
     *                                  and on this backend
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void binary(Ops.Binary op, Tensor a, float s, Tensor out);

    /**
     * {@code out = OP(a)}.
     *
     * @param out F32 of {@code a}'s shape; may be {@code a}
     * @throws IllegalArgumentException when {@code out} is not {@code a}'s shape, or a tensor is not F32, contiguous
     *                                  and on this backend
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void unary(Ops.Unary op, Tensor a, Tensor out);

    /**
     * {@code out = alpha * x + beta * y}: F32, same shapes; {@code out} may be {@code x} or {@code y} (see the class
     * comment).
     *
     * @throws IllegalArgumentException when the shapes differ, or a tensor is not F32, contiguous and on this
     *                                  backend
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void axpby(float alpha, Tensor x, float beta, Tensor y, Tensor out);

    /**
     * {@code out = a * b + c}, {@code b} and {@code c} each broadcast against {@code a} as in {@link #binary}.
     *
     * @param out F32 of {@code a}'s shape
     * @throws IllegalArgumentException when {@code b} or {@code c} cannot be broadcast against {@code a}, {@code out}
     *                                  is not {@code a}'s shape, or a tensor is not F32, contiguous and on this
     *                                  backend
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void fma(Tensor a, Tensor b, Tensor c, Tensor out);

    /**
     * {@code out = a * s + t} for scalars {@code s}, {@code t}.
     *
     * @param out F32 of {@code a}'s shape; may be {@code a}
     * @throws IllegalArgumentException when {@code out} is not {@code a}'s shape, or a tensor is not F32, contiguous
     *                                  and on this backend
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void scaleShift(Tensor a, float s, float t, Tensor out);

    // ---------------------------------------------------------------- reductions and softmax

    /**
     * Reduces {@code x [..., N]} over its last dim into {@code out} with {@code x.rows()} elements (any shape).
     *
     * @param x   F32 {@code [..., N]}
     * @param out F32 with {@code x.rows()} elements, e.g. {@code [..., 1]} or {@code [...]}
     * @throws IllegalArgumentException when {@code out} does not have {@code x.rows()} elements, overlaps {@code x}
     *                                  other than by being it, or a tensor is not F32, contiguous and on this
     *                                  backend
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void reduceLastDim(Ops.Reduce op, Tensor x, Tensor out);

    /**
     * {@code sqrt(sum over all tensors of sum x_i^2)}, accumulated in float64 in a fixed order (the
     * result does not depend on the thread count). Synchronous.
     *
     * @param xs F32 tensors on this backend (any shapes); an empty list gives 0
     * @return the norm; NaN or infinite when an element is
     * @throws IllegalArgumentException when a tensor is not F32, contiguous and on this backend
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    double globalNorm(List<Tensor> xs);

    /**
     * Softmax over the last dim of {@code x [..., N]}, max-subtracted, into {@code out} of the same shape.
     *
     * @throws IllegalArgumentException when the shapes differ, {@code out} overlaps {@code x} other than by being
     *                                  it, or a tensor is not F32, contiguous and on this backend
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void softmaxLastDim(Tensor x, Tensor out);

    // ---------------------------------------------------------------- matrix products

    /**
     * General matrix product {@code c = alpha * op(a) @ op(b) + beta * c}, row-major, where {@code op(x)}
     * is {@code x} or its transpose of the last two dims.
     *
     * <p>Shapes: {@code a [M, K]} (or {@code [K, M]} when {@code transA}), {@code b [K, N]} (or
     * {@code [N, K]}), {@code c [M, N]}. With rank-3 operands this is the strided-batched product over the
     * leading dim {@code B}: {@code c [B, M, N]}, {@code a} and {@code b} each {@code [B, ., .]} or rank 2
     * (the same matrix for every batch). {@code c} must not alias {@code a} or {@code b}. When
     * {@code beta == 0}, {@code c} is not read (NaN in it does not propagate).
     *
     * @throws IllegalArgumentException when the shapes do not fit together (by {@link GemmShape#of}: a rank other
     *                                  than 2 or 3, mismatched {@code M}, {@code N}, {@code K} or batch, or a dim
     *                                  above {@code 2^31 − 1}; the message names all three shapes), when {@code c}
     *                                  overlaps {@code a} or {@code b}, or a tensor is not F32, contiguous and on
     *                                  this backend
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void gemm(boolean transA, boolean transB, float alpha, Tensor a, Tensor b, float beta, Tensor c);

    /**
     * Batched product over lists of independent rank-2 operands: {@code c[i] = alpha op(a[i]) op(b[i]) +
     * beta c[i]}. All {@code a[i]} share one shape, likewise {@code b[i]} and {@code c[i]}.
     *
     * @throws IllegalArgumentException when the lists differ in length, an entry is not rank 2 or differs in shape
     *                                  from entry 0, or as {@link #gemm} for an entry (entries before it are then
     *                                  already computed)
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    default void gemmBatched(boolean transA, boolean transB, float alpha, List<Tensor> a, List<Tensor> b,
                             float beta, List<Tensor> c) {
        if (a.size() != b.size() || a.size() != c.size()) {
            throw new IllegalArgumentException("gemmBatched needs lists of one length, got a=" + a.size()
                    + ", b=" + b.size() + ", c=" + c.size());
        }
        for (int i = 0; i < a.size(); i++) {
            Tensor ai = a.get(i);
            Tensor bi = b.get(i);
            Tensor ci = c.get(i);
            Shape.requireRank("a[" + i + "]", ai, 2);
            Shape.requireRank("b[" + i + "]", bi, 2);
            Shape.requireRank("c[" + i + "]", ci, 2);
            if (i > 0 && !(ai.sameShape(a.get(0)) && bi.sameShape(b.get(0)) && ci.sameShape(c.get(0)))) {
                throw new IllegalArgumentException("gemmBatched entry " + i + " (a " + ai + ", b " + bi + ", c "
                        + ci + ") differs in shape from entry 0");
            }
            gemm(transA, transB, alpha, ai, bi, beta, ci);
        }
    }

    // ---------------------------------------------------------------- indexing

    /**
     * {@code out[i, :] = table[indices[i], :]}: {@code table [V, D]} F32, {@code indices [N]} I32,
     * {@code out [N, D]} F32.
     *
     * @throws IndexOutOfBoundsException naming the position and the value of the first index outside
     *                                   {@code [0, V)}; {@code out} is then unspecified
     */
    void gatherRows(Tensor table, Tensor indices, Tensor out);

    // ---------------------------------------------------------------- random numbers

    /**
     * Fills {@code out} with standard normals from the Philox4x32-10 stream {@code (seed, stream)} (Salmon et al.
     * 2011, "Parallel random numbers: as easy as 1, 2, 3"; Box–Muller of a pair of uniforms, see
     * {@link org.diffusion4j.random.Philox#normal}): element {@code i} (row-major index) is
     * {@code Philox.normal(seed, stream, i)}, on every backend and for every thread count.
     *
     * @param out F32, contiguous, overwritten
     * @throws IllegalArgumentException when {@code out} is not F32, contiguous and on this backend
     * @throws IllegalStateException    when {@code out}'s scope is closed
     */
    void randn(Tensor out, long seed, long stream);

    /**
     * Like {@link #randn} with uniforms in {@code (0, 1]}: element {@code i} is
     * {@link org.diffusion4j.random.Philox#uniform Philox.uniform(seed, stream, i)}.
     *
     * @param out F32, contiguous, overwritten
     * @throws IllegalArgumentException when {@code out} is not F32, contiguous and on this backend
     * @throws IllegalStateException    when {@code out}'s scope is closed
     */
    void rand(Tensor out, long seed, long stream);

    /**
     * Releases the backend's own resources (thread pool, handles, streams). Tensors stay owned by their scopes, but
     * every later op on this backend, or on an op family built on it ({@code DiffusionOps}, {@code NnOps},
     * {@code AttentionOps}), and every copy to or from its tensors throws {@link IllegalStateException}: close a
     * backend after the work that uses it.
     */
    @Override
    void close();

    /** Whether {@link #close()} was called. */
    default boolean isClosed() {
        return false;
    }
}
