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

    /** Allocates a zero-filled contiguous tensor owned by {@code scope}. */
    default Tensor zeros(TensorScope scope, DType dtype, long... shape) {
        Tensor t = empty(scope, dtype, shape);
        fill(t, 0f);
        return t;
    }

    /** An F32 tensor of {@code shape} holding {@code values} (row-major). */
    default Tensor fromArray(TensorScope scope, float[] values, long... shape) {
        return empty(scope, DType.F32, shape).copyFrom(values);
    }

    /** An I32 tensor of {@code shape} holding {@code values} (row-major), e.g. class labels. */
    default Tensor fromArray(TensorScope scope, int[] values, long... shape) {
        return empty(scope, DType.I32, shape).copyFrom(values);
    }

    /**
     * Wraps a caller's host segment as a tensor without copying (the caller keeps ownership and must keep
     * the segment alive). Only backends whose device is the host can do this.
     *
     * @throws IllegalArgumentException when the segment is too small, misaligned for {@code dtype}, not
     *                                  native memory or a heap segment, or this backend is not on the host
     */
    Tensor wrap(MemorySegment hostSegment, DType dtype, long... shape);

    /**
     * Copies {@code dst.byteSize()} bytes from a host segment (heap or native) into contiguous {@code dst}.
     * Synchronous.
     */
    void copyFromHost(MemorySegment src, Tensor dst);

    /** Copies the elements of {@code src} (any strides, row-major order) into a host segment. Synchronous. */
    void copyToHost(Tensor src, MemorySegment dst);

    /** Waits until all queued work of this backend has finished. A no-op on the CPU. */
    void synchronize();

    // ---------------------------------------------------------------- fill, copy, cast

    /** Sets every element of {@code out} (F32, any dtype for value 0) to {@code value}. */
    void fill(Tensor out, float value);

    /**
     * Copies {@code src} into {@code dst}: same shape and dtype, <b>any strides</b> on {@code src}
     * (this is how a permuted or transposed view is materialised), contiguous {@code dst}.
     * {@code src} and {@code dst} must not overlap.
     */
    void copy(Tensor src, Tensor dst);

    /**
     * Converts between float dtypes (F32 ↔ BF16, F32 ↔ F16; round to nearest even), both contiguous and of
     * the same shape; equal dtypes copy.
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
     */
    void binary(Ops.Binary op, Tensor a, Tensor b, Tensor out);

    /** {@code out = a OP s}. */
    void binary(Ops.Binary op, Tensor a, float s, Tensor out);

    /** {@code out = OP(a)}. */
    void unary(Ops.Unary op, Tensor a, Tensor out);

    /**
     * {@code out = alpha * x + beta * y}: F32, same shapes; {@code out} may be {@code x} or {@code y} (see the class
     * comment).
     */
    void axpby(float alpha, Tensor x, float beta, Tensor y, Tensor out);

    /** {@code out = a * b + c}, {@code b} and {@code c} each broadcast against {@code a} as in {@link #binary}. */
    void fma(Tensor a, Tensor b, Tensor c, Tensor out);

    /** {@code out = a * s + t} for scalars {@code s}, {@code t}. */
    void scaleShift(Tensor a, float s, float t, Tensor out);

    // ---------------------------------------------------------------- reductions and softmax

    /** Reduces {@code x [..., N]} over its last dim into {@code out} with {@code x.rows()} elements (any shape). */
    void reduceLastDim(Ops.Reduce op, Tensor x, Tensor out);

    /**
     * {@code sqrt(sum over all tensors of sum x_i^2)}, accumulated in float64 in a fixed order (the
     * result does not depend on the thread count). Synchronous.
     */
    double globalNorm(List<Tensor> xs);

    /** Softmax over the last dim of {@code x [..., N]}, max-subtracted, into {@code out} of the same shape. */
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
     */
    void gemm(boolean transA, boolean transB, float alpha, Tensor a, Tensor b, float beta, Tensor c);

    /**
     * Batched product over lists of independent rank-2 operands: {@code c[i] = alpha op(a[i]) op(b[i]) +
     * beta c[i]}. All {@code a[i]} share one shape, likewise {@code b[i]} and {@code c[i]}.
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
     * Fills {@code out} with standard normals from the Philox4x32-10 stream {@code (seed, stream)}:
     * element {@code i} (row-major index) is {@code Philox.normal(seed, stream, i)}, on every backend and
     * for every thread count.
     */
    void randn(Tensor out, long seed, long stream);

    /** Like {@link #randn} with uniforms in {@code (0, 1]}: element {@code i} is {@code Philox.uniform(seed, stream, i)}. */
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
