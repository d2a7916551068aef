package org.diffusion4j.tensor;

import java.lang.foreign.MemorySegment;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.Objects;

/**
 * An n-dimensional array: a {@link DType}, a shape, row-major element strides and an element offset into
 * a storage {@link MemorySegment} owned by a {@link TensorScope}.
 *
 * <p>Tensors are immutable descriptors; views ({@link #reshape}, {@link #slice}, {@link #permute},
 * {@link #transpose}) share storage and never copy. Memory is freed when the owning scope closes; after
 * that every method that touches memory throws {@link IllegalStateException}. For a tensor on a CUDA
 * device the storage segment carries the device address and its size but must never be dereferenced from
 * Java; host transfers ({@link #copyFrom(float[])}, {@link #toFloatArray()}) go through the owning
 * {@link Backend}.
 *
 * <p>Strides and offsets count elements, not bytes. Dimensions may be negative in the Python sense
 * ({@code -1} is the last dim).
 */
public final class Tensor {

    private final Backend backend;
    private final MemorySegment storage;
    private final DType dtype;
    private final long[] shape;
    private final long[] strides;
    private final long offset;
    private final long numel;

    private Tensor(Backend backend, MemorySegment storage, DType dtype, long[] shape, long[] strides, long offset) {
        this.backend = backend;
        this.storage = storage;
        this.dtype = dtype;
        this.shape = shape;
        this.strides = strides;
        this.offset = offset;
        this.numel = Shape.numel(shape);
    }

    /**
     * Creates a contiguous tensor over {@code storage}. For {@link Backend} implementations; users allocate
     * with {@link Backend#empty} or wrap host memory with {@link Backend#wrap}.
     *
     * <p>SPI, for backend implementations only: nothing checks that {@code storage} is memory of {@code backend}'s
     * device, is aligned for {@code dtype}, or stays alive; the tensor's lifetime is the segment's scope. A tensor made
     * here over foreign memory makes every op that reads it undefined.
     *
     * @throws NullPointerException     when an argument is null
     * @throws IllegalArgumentException when a dim is negative, the byte count overflows, or the storage is smaller
     *                                  than the shape needs
     */
    public static Tensor of(Backend backend, MemorySegment storage, DType dtype, long... shape) {
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(dtype, "dtype");
        long[] s = Shape.checked(shape);
        long need;
        try {
            need = Math.multiplyExact(Shape.numel(s), (long) dtype.byteSize());
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(dtype + " " + Arrays.toString(s) + " needs more than 2^63 - 1 bytes");
        }
        if (storage.byteSize() < need) {
            throw new IllegalArgumentException("storage of " + storage.byteSize() + " bytes is too small for "
                    + dtype + " " + Arrays.toString(s) + " (" + need + " bytes)");
        }
        return new Tensor(backend, storage, dtype, s, Shape.contiguousStrides(s), 0);
    }

    // ---------------------------------------------------------------- descriptors

    /** The backend that allocated (or wrapped) this tensor's memory; ops on it must go through that backend. */
    public Backend backend() {
        return backend;
    }

    /** The device whose memory holds the elements: {@code backend().device()}. */
    public Device device() {
        return backend.device();
    }

    /** The element type. */
    public DType dtype() {
        return dtype;
    }

    /** A copy of the shape. */
    public long[] shape() {
        return shape.clone();
    }

    /**
     * Size of dim {@code d} (negative counts from the end).
     *
     * @param d in {@code [−rank, rank)}
     * @throws IllegalArgumentException when {@code d} is out of range
     */
    public long shape(int d) {
        return shape[dim(d)];
    }

    /** A copy of the element strides. */
    public long[] strides() {
        return strides.clone();
    }

    /**
     * Stride of dim {@code d} in elements.
     *
     * @param d in {@code [−rank, rank)} (negative counts from the end)
     * @throws IllegalArgumentException when {@code d} is out of range
     */
    public long stride(int d) {
        return strides[dim(d)];
    }

    /** Element offset of this view into its storage. */
    public long offset() {
        return offset;
    }

    /** Number of dims (0 for a scalar). */
    public int rank() {
        return shape.length;
    }

    /** Number of elements (1 for a rank-0 tensor, 0 when any dim is 0). */
    public long numel() {
        return numel;
    }

    /** Bytes spanned by the elements of this tensor when contiguous: {@code numel * dtype.byteSize()}. */
    public long byteSize() {
        return numel * dtype.byteSize();
    }

    /** Product of all dims but the last ("rows" of the last-dim ops); 1 for rank 0. */
    public long rows() {
        long r = 1;
        for (int d = 0; d < shape.length - 1; d++) {
            r *= shape[d];
        }
        return r;
    }

    /** Size of the last dim; 1 for rank 0. */
    public long cols() {
        return shape.length == 0 ? 1 : shape[shape.length - 1];
    }

    /** True when the elements are laid out row-major without gaps (size-1 dims may have any stride). */
    public boolean isContiguous() {
        long expect = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            if (shape[d] != 1 && strides[d] != expect) {
                return numel == 0;
            }
            expect *= shape[d];
        }
        return true;
    }

    /** True while the owning scope is open. */
    public boolean isAlive() {
        return storage.scope().isAlive();
    }

    /** True when this tensor and {@code other} have the same shape. */
    public boolean sameShape(Tensor other) {
        return Arrays.equals(shape, other.shape);
    }

    // ---------------------------------------------------------------- memory access

    /**
     * The whole storage segment (all views of one allocation share it).
     *
     * @throws IllegalStateException when the owning scope is closed
     */
    public MemorySegment storage() {
        checkAlive();
        return storage;
    }

    /**
     * The bytes of this contiguous tensor: {@code storage.asSlice(offset * es, numel * es)}. On a CUDA
     * tensor the slice holds the device address and must not be dereferenced. An empty tensor gives an
     * empty slice (at the end of the storage when its offset lies beyond it, e.g. {@code slice(1, n, n)} of
     * a {@code [0, n]} tensor).
     *
     * @throws IllegalStateException    when the owning scope is closed
     * @throws IllegalArgumentException when this view is not contiguous
     */
    public MemorySegment segment() {
        checkAlive();
        if (!isContiguous()) {
            throw new IllegalArgumentException(this + " is not contiguous (strides " + Arrays.toString(strides)
                    + "); copy it into a contiguous tensor first");
        }
        long es = dtype.byteSize();
        if (numel == 0) {
            // An empty view may sit past the end of its storage (its offset counts the dims of size > 0).
            return storage.asSlice(Math.min(offset * es, storage.byteSize()), 0);
        }
        return storage.asSlice(offset * es, numel * es);
    }

    /**
     * Address of the first element of this view whatever its strides, for native calls that take a pointer plus
     * strides (e.g. a row-strided {@code [B, D]} column slice). Views are only made by checked operations, so
     * every element the strides reach lies inside the storage.
     *
     * @throws IllegalStateException when the owning scope is closed
     */
    public long firstElementAddress() {
        checkAlive();
        return storage.address() + offset * dtype.byteSize();
    }

    /**
     * Address of the first element (host or device) of this contiguous tensor, checked as {@link #segment()} is;
     * {@link #firstElementAddress()} serves strided views.
     *
     * @throws IllegalStateException    when the owning scope is closed
     * @throws IllegalArgumentException when this view is not contiguous
     */
    public long address() {
        return segment().address();
    }

    /** @throws IllegalStateException naming this tensor when its scope is closed */
    public void checkAlive() {
        if (!storage.scope().isAlive()) {
            throw new IllegalStateException(describe() + ": its memory is freed (the tensor scope, or for a wrapped "
                    + "segment its arena, is closed)");
        }
    }

    // ---------------------------------------------------------------- views

    /**
     * A view with a new shape and the same elements; one dim may be {@code -1} (inferred).
     *
     * @throws IllegalArgumentException when the element count differs or this view is not contiguous
     */
    public Tensor reshape(long... newShape) {
        long[] s = Shape.infer(newShape, numel, this);
        if (!isContiguous()) {
            throw new IllegalArgumentException("reshape of non-contiguous " + this + " to " + Arrays.toString(s)
                    + ": copy it into a contiguous tensor first");
        }
        return new Tensor(backend, storage, dtype, s, Shape.contiguousStrides(s), offset);
    }

    /**
     * The view {@code [start, end)} along dim {@code d}.
     *
     * @throws IllegalArgumentException when {@code 0 <= start <= end <= shape(d)} does not hold
     */
    public Tensor slice(int d, long start, long end) {
        int k = dim(d);
        if (start < 0 || end < start || end > shape[k]) {
            throw new IllegalArgumentException("slice [" + start + ", " + end + ") out of range for dim " + d
                    + " of size " + shape[k] + " in " + this);
        }
        long[] s = shape.clone();
        s[k] = end - start;
        return new Tensor(backend, storage, dtype, s, strides.clone(), offset + start * strides[k]);
    }

    /**
     * A view with dims reordered: result dim {@code i} is this tensor's dim {@code dims[i]}.
     *
     * @throws IllegalArgumentException when {@code dims} is not a permutation of {@code 0..rank-1}
     */
    public Tensor permute(int... dims) {
        if (dims.length != shape.length) {
            throw new IllegalArgumentException("permute " + Arrays.toString(dims) + " has " + dims.length
                    + " dims but " + this + " has rank " + shape.length);
        }
        boolean[] seen = new boolean[shape.length];
        long[] s = new long[shape.length];
        long[] st = new long[shape.length];
        for (int i = 0; i < dims.length; i++) {
            int k = dim(dims[i]);
            if (seen[k]) {
                throw new IllegalArgumentException("permute " + Arrays.toString(dims) + " repeats dim " + dims[i]);
            }
            seen[k] = true;
            s[i] = shape[k];
            st[i] = strides[k];
        }
        return new Tensor(backend, storage, dtype, s, st, offset);
    }

    /**
     * A view with dims {@code d0} and {@code d1} swapped (negative counts from the end).
     *
     * @throws IllegalArgumentException when {@code d0} or {@code d1} is out of {@code [−rank, rank)}
     */
    public Tensor transpose(int d0, int d1) {
        int[] p = new int[shape.length];
        for (int i = 0; i < p.length; i++) {
            p[i] = i;
        }
        int a = dim(d0);
        int b = dim(d1);
        p[a] = b;
        p[b] = a;
        return permute(p);
    }

    // ---------------------------------------------------------------- host transfers

    /**
     * Copies {@code src} (row-major, {@code numel} values) into this contiguous F32 tensor.
     *
     * @throws IllegalArgumentException when the length or dtype does not match
     */
    public Tensor copyFrom(float[] src) {
        requireHostCopy(src.length, DType.F32);
        backend.copyFromHost(MemorySegment.ofArray(src), this);
        return this;
    }

    /**
     * Copies {@code src} (row-major, {@code numel} values) into this contiguous I32 tensor (e.g. class labels or
     * gather indices).
     *
     * @throws IllegalArgumentException when the length or dtype does not match
     */
    public Tensor copyFrom(int[] src) {
        requireHostCopy(src.length, DType.I32);
        backend.copyFromHost(MemorySegment.ofArray(src), this);
        return this;
    }

    /**
     * Copies the remaining {@code numel} floats of {@code src} into this F32 tensor and advances the buffer;
     * on any exception the buffer's position is unchanged.
     *
     * @throws IllegalArgumentException when {@code src.remaining() != numel}, the dtype is not F32 or this
     *                                  view is not contiguous
     * @throws IllegalStateException    when the owning scope is closed
     */
    public Tensor copyFrom(FloatBuffer src) {
        requireHostCopy(src.remaining(), DType.F32);
        checkAlive();
        float[] a = new float[src.remaining()];
        int pos = src.position();
        src.get(pos, a);
        copyFrom(a);
        src.position(pos + a.length);
        return this;
    }

    /**
     * Copies {@code byteSize()} bytes from a host segment (heap or native) into this contiguous tensor (any dtype).
     *
     * @param src exactly {@code byteSize()} bytes, in this tensor's dtype layout
     * @throws IllegalArgumentException when {@code src} does not hold exactly {@code byteSize()} bytes, this view is
     *                                  not contiguous, or {@code src} overlaps this tensor's memory (checked by
     *                                  {@link Backend#copyFromHost})
     * @throws IllegalStateException    when the owning scope, {@code src}'s arena or the backend is closed
     */
    public Tensor copyFrom(MemorySegment src) {
        if (src.byteSize() != byteSize()) {
            throw new IllegalArgumentException("source segment has " + src.byteSize() + " bytes, " + this
                    + " needs " + byteSize());
        }
        backend.copyFromHost(src, this);
        return this;
    }

    /**
     * The elements of this F32 tensor as a new row-major array (any strides). Synchronous.
     *
     * @throws IllegalArgumentException when the dtype is not F32 or there are more than {@code 2^31 − 9} elements
     * @throws IllegalStateException    when the owning scope or the backend is closed
     */
    public float[] toFloatArray() {
        if (dtype != DType.F32) {
            throw new IllegalArgumentException("toFloatArray needs F32, " + this + " is " + dtype
                    + "; cast it first");
        }
        if (numel > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(this + " has too many elements for a float[]");
        }
        float[] out = new float[(int) numel];
        backend.copyToHost(this, MemorySegment.ofArray(out));
        return out;
    }

    /**
     * The elements of this I32 tensor as a new row-major array (any strides). Synchronous.
     *
     * @throws IllegalArgumentException when the dtype is not I32 or there are more than {@code 2^31 − 9} elements
     * @throws IllegalStateException    when the owning scope or the backend is closed
     */
    public int[] toIntArray() {
        if (dtype != DType.I32) {
            throw new IllegalArgumentException("toIntArray needs I32, " + this + " is " + dtype);
        }
        if (numel > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(this + " has too many elements for an int[]");
        }
        int[] out = new int[(int) numel];
        backend.copyToHost(this, MemorySegment.ofArray(out));
        return out;
    }

    /**
     * Copies the {@code numel} elements of this F32 tensor (row-major, any strides) into {@code dst} at its
     * position and advances the buffer; on any exception {@code dst} is unchanged.
     *
     * @throws IllegalArgumentException when the dtype is not F32, or {@code dst} is read-only or has fewer
     *                                  than {@code numel} floats remaining
     * @throws IllegalStateException    when the owning scope is closed
     */
    public void copyTo(FloatBuffer dst) {
        if (dst.isReadOnly()) {
            throw new IllegalArgumentException("destination buffer is read-only; " + this + " cannot be copied into it");
        }
        if (dst.remaining() < numel) {
            throw new IllegalArgumentException("destination buffer has " + dst.remaining() + " floats remaining, "
                    + this + " holds " + numel);
        }
        float[] a = toFloatArray();
        dst.put(a);
    }

    /**
     * Copies the elements (row-major, any strides) into a host segment of exactly {@code byteSize()} bytes.
     * Synchronous.
     *
     * @param dst writable, exactly {@code byteSize()} bytes
     * @throws IllegalArgumentException when {@code dst} does not hold exactly {@code byteSize()} bytes, is read-only
     *                                  or overlaps this tensor's memory
     * @throws IllegalStateException    when the owning scope, {@code dst}'s arena or the backend is closed
     */
    public void copyTo(MemorySegment dst) {
        if (dst.byteSize() != byteSize()) {
            throw new IllegalArgumentException("destination segment has " + dst.byteSize() + " bytes, " + this
                    + " holds " + byteSize());
        }
        backend.copyToHost(this, dst);
    }

    /**
     * The single element of a one-element F32 tensor (any shape with {@code numel = 1}, e.g. {@code []} or
     * {@code [1, 1]}). Synchronous.
     *
     * @throws IllegalArgumentException when {@code numel ≠ 1} or the dtype is not F32
     * @throws IllegalStateException    when the owning scope or the backend is closed
     */
    public float item() {
        if (numel != 1) {
            throw new IllegalArgumentException("item() needs exactly one element, " + this + " has " + numel);
        }
        return toFloatArray()[0];
    }

    // ---------------------------------------------------------------- helpers

    private void requireHostCopy(long n, DType want) {
        if (dtype != want) {
            throw new IllegalArgumentException("copy of " + want + " values into " + this);
        }
        if (n != numel) {
            throw new IllegalArgumentException("source has " + n + " values, " + this + " has " + numel);
        }
        if (!isContiguous()) {
            throw new IllegalArgumentException("copy into non-contiguous " + this);
        }
    }

    /**
     * Normalises a possibly negative dim index: {@code d} for {@code d ≥ 0}, {@code d + rank} for {@code d < 0}.
     *
     * @param d in {@code [−rank, rank)}
     * @return the dim in {@code [0, rank)}
     * @throws IllegalArgumentException when {@code d} is out of range
     */
    public int dim(int d) {
        int k = d < 0 ? d + shape.length : d;
        if (k < 0 || k >= shape.length) {
            throw new IllegalArgumentException("dim " + d + " out of range for rank " + shape.length + " " + this);
        }
        return k;
    }

    private String describe() {
        return "Tensor[" + dtype.name().toLowerCase(java.util.Locale.ROOT) + " " + Arrays.toString(shape) + " "
                + backend.device() + "]";
    }

    @Override
    public String toString() {
        return describe();
    }
}
