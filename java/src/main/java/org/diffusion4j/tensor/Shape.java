package org.diffusion4j.tensor;

import java.util.Arrays;

/**
 * Shape arithmetic and the shape checks every op shares; messages name the argument and its values.
 *
 * <p>The {@code require*}, {@link #overlaps} and {@link #spanBytes} helpers are an SPI for backend and op
 * implementations (the {@code cpu} and {@code cuda} packages, {@code nn}, {@code nn.attention}); they are public
 * because those packages share them, and callers of the ops need not use them: every op checks its own arguments.
 */
public final class Shape {

    private Shape() {
    }

    /**
     * Product of dims (1 for rank 0). No dim is checked for sign: see {@link #checked}.
     *
     * @throws ArithmeticException when the product overflows a long
     */
    public static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /**
     * A validated copy of {@code shape}: every dim {@code >= 0}, and the product of the dims (zeros counted as 1, so
     * that the row-major strides of an empty tensor fit too, whatever the order of its dims) fits a long.
     *
     * @throws IllegalArgumentException naming the shape when a dim is negative or the product overflows
     */
    public static long[] checked(long[] shape) {
        long[] s = shape.clone();
        long span = 1;
        for (long d : s) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dim in shape " + Arrays.toString(s));
            }
            try {
                span = Math.multiplyExact(span, Math.max(d, 1));
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("shape " + Arrays.toString(s) + " has more than 2^63 elements"
                        + " (counting a zero dim as 1, as its strides do)");
            }
        }
        return s;
    }

    /** Row-major element strides for {@code shape}. */
    public static long[] contiguousStrides(long[] shape) {
        long[] st = new long[shape.length];
        long acc = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            st[d] = acc;
            acc *= Math.max(shape[d], 1);
        }
        return st;
    }

    static long[] infer(long[] newShape, long numel, Tensor of) {
        long[] s = newShape.clone();
        int unknown = -1;
        long known = 1;
        for (int i = 0; i < s.length; i++) {
            if (s[i] == -1) {
                if (unknown >= 0) {
                    throw new IllegalArgumentException("reshape " + Arrays.toString(newShape) + " has more than one -1");
                }
                unknown = i;
            } else if (s[i] < 0) {
                throw new IllegalArgumentException("negative dim in reshape " + Arrays.toString(newShape));
            } else {
                try {
                    known = Math.multiplyExact(known, s[i]);
                } catch (ArithmeticException e) {
                    throw new IllegalArgumentException("cannot reshape " + of + " (" + numel + " elements) to "
                            + Arrays.toString(newShape) + ": the dims multiply to more than 2^63 - 1");
                }
            }
        }
        if (unknown >= 0) {
            if (known == 0 || numel % known != 0) {
                throw new IllegalArgumentException("cannot reshape " + of + " (" + numel + " elements) to "
                        + Arrays.toString(newShape));
            }
            s[unknown] = numel / known;
        }
        if (numel(s) != numel) {
            throw new IllegalArgumentException("cannot reshape " + of + " (" + numel + " elements) to "
                    + Arrays.toString(newShape) + " (" + numel(s) + " elements)");
        }
        return s;
    }

    /** @throws IllegalArgumentException unless {@code a} and {@code b} have the same shape */
    public static void requireSameShape(String aName, Tensor a, String bName, Tensor b) {
        if (!a.sameShape(b)) {
            throw new IllegalArgumentException(aName + " " + a + " and " + bName + " " + b + " must have the same shape");
        }
    }

    /** @throws IllegalArgumentException unless {@code t} has dtype {@code want} */
    public static void requireDType(String name, Tensor t, DType want) {
        if (t.dtype() != want) {
            throw new IllegalArgumentException(name + " " + t + " must be " + want + ", is " + t.dtype());
        }
    }

    /** @throws IllegalArgumentException unless {@code t} has rank {@code want} */
    public static void requireRank(String name, Tensor t, int want) {
        if (t.rank() != want) {
            throw new IllegalArgumentException(name + " " + t + " must have rank " + want + ", has " + t.rank());
        }
    }

    /** @throws IllegalArgumentException unless {@code t} is contiguous */
    public static void requireContiguous(String name, Tensor t) {
        if (!t.isContiguous()) {
            throw new IllegalArgumentException(name + " " + t + " must be contiguous (strides "
                    + Arrays.toString(t.strides()) + ")");
        }
    }

    /**
     * The usual check of an op operand: {@code t} is non-null, alive, on {@code backend}'s device, of dtype
     * {@code want} and contiguous.
     *
     * @throws NullPointerException     naming the argument when {@code t} is null
     * @throws IllegalStateException    when its scope is closed
     * @throws IllegalArgumentException naming the argument, its shape and dtype otherwise
     */
    public static void requireOperand(String name, Tensor t, Backend backend, DType want) {
        java.util.Objects.requireNonNull(t, name);
        requireOn(name, t, backend);
        requireDType(name, t, want);
        requireContiguous(name, t);
    }

    /**
     * The aliasing rule of {@link Backend}: {@code out} may be exactly {@code in} (same first element, dtype,
     * shape and strides: an in-place op) or lie outside the byte range it spans (from its first to one past
     * its last element, so interleaved strided views count as overlapping); a partial overlap (e.g. {@code out} one
     * element after {@code in} in one storage, or the same bytes read as another dtype) is rejected, because
     * an op would read elements it has already overwritten. Compares addresses only (host or device), so it
     * costs nothing per element; empty tensors never overlap.
     *
     * @throws IllegalArgumentException naming the op, both arguments and their byte ranges on a partial overlap
     * @throws IllegalStateException    when either tensor's scope is closed
     */
    public static void requireSameOrDisjoint(String op, String outName, Tensor out, String inName, Tensor in) {
        if (out.numel() == 0 || in.numel() == 0) {
            return;
        }
        long o0 = out.storage().address() + out.offset() * out.dtype().byteSize();
        long i0 = in.storage().address() + in.offset() * in.dtype().byteSize();
        if (o0 == i0 && out.dtype() == in.dtype() && out.sameShape(in)
                && Arrays.equals(out.strides(), in.strides())) {
            return;
        }
        long o1 = o0 + spanBytes(out);
        long i1 = i0 + spanBytes(in);
        if (overlaps(out, in)) {
            throw new IllegalArgumentException(op + ": " + outName + " " + out + " (bytes [0x" + Long.toHexString(o0)
                    + ", 0x" + Long.toHexString(o1) + ")) partially overlaps " + inName + " " + in + " (bytes [0x"
                    + Long.toHexString(i0) + ", 0x" + Long.toHexString(i1) + ")); use the same tensor for an "
                    + "in-place op or disjoint memory");
        }
    }

    /**
     * Like {@link #requireSameOrDisjoint} but stricter: {@code a} and {@code b} must not share any byte, not even as
     * the same tensor (e.g. two outputs of one op, or an output and an input of another role).
     *
     * @throws IllegalArgumentException naming the op and both arguments when their byte ranges overlap
     * @throws IllegalStateException    when either tensor's scope is closed
     */
    public static void requireDisjoint(String op, String aName, Tensor a, String bName, Tensor b) {
        if (a.numel() == 0 || b.numel() == 0) {
            return;
        }
        if (overlaps(a, b)) {
            throw new IllegalArgumentException(op + ": " + aName + " " + a + " and " + bName + " " + b
                    + (a == b ? " are the same tensor" : " overlap in memory") + "; they must be disjoint");
        }
    }

    /**
     * Whether two tensors may share bytes. Exact for tensors whose byte spans (first to one past last element) are
     * disjoint and for two {@code [B, D]} row views with unit column stride and one common row stride {@code S ≥ D}
     * (e.g. the per-sample {@code shift} and {@code scale} slices of one {@code [B, 6D]} tensor, which interleave
     * but never share an element); conservative (true) for other interleaved strided views. Empty tensors never
     * overlap. Compares addresses only.
     *
     * @throws IllegalStateException when either tensor's scope is closed
     */
    public static boolean overlaps(Tensor a, Tensor b) {
        if (a.numel() == 0 || b.numel() == 0) {
            return false;
        }
        long a0 = a.storage().address() + a.offset() * a.dtype().byteSize();
        long b0 = b.storage().address() + b.offset() * b.dtype().byteSize();
        long a1 = a0 + spanBytes(a);
        long b1 = b0 + spanBytes(b);
        if (a1 <= b0 || b1 <= a0) {
            return false;
        }
        if (a.rank() == 2 && b.rank() == 2 && a.dtype() == b.dtype() && a.stride(0) == b.stride(0)
                && (a.shape(1) == 1 || a.stride(1) == 1) && (b.shape(1) == 1 || b.stride(1) == 1)
                && a.stride(0) >= a.shape(1) && a.stride(0) >= b.shape(1) && a.stride(0) > 0) {
            long row = a.stride(0) * a.dtype().byteSize();
            long wa = a.shape(1) * a.dtype().byteSize();
            long wb = b.shape(1) * b.dtype().byteSize();
            // The columns of every row of a and b are [a0, a0 + wa) and [b0, b0 + wb) modulo the row pitch.
            return Math.floorMod(b0 - a0, row) < wa || Math.floorMod(a0 - b0, row) < wb;
        }
        return true;
    }

    /**
     * The arguments of {@link Backend#gatherRows}: F32 {@code table [V, D]} and {@code out [N, D]}, I32
     * {@code indices [N]}, all on {@code backend}; the indices' values are the op's to check.
     *
     * @throws IllegalArgumentException naming the argument of another dtype, rank, device or shape
     */
    public static void requireGatherRows(Backend backend, Tensor table, Tensor indices, Tensor out) {
        requireOperand("table", table, backend, DType.F32);
        requireOperand("indices", indices, backend, DType.I32);
        requireOperand("out", out, backend, DType.F32);
        requireRank("table", table, 2);
        requireRank("indices", indices, 1);
        requireRank("out", out, 2);
        long n = indices.shape(0);
        long d = table.shape(1);
        if (out.shape(0) != n || out.shape(1) != d) {
            throw new IllegalArgumentException("gatherRows: out " + out + " must be [" + n + ", " + d + "] for table "
                    + table + " and indices " + indices);
        }
    }

    /**
     * Bytes from the first to one past the last element of a tensor (any strides, non-negative strides as every view
     * has); 0 for an empty tensor.
     */
    public static long spanBytes(Tensor t) {
        if (t.numel() == 0) {
            return 0;
        }
        long span = 1;
        long[] shape = t.shape();
        long[] strides = t.strides();
        for (int d = 0; d < shape.length; d++) {
            span += (shape[d] - 1) * strides[d];
        }
        return span * t.dtype().byteSize();
    }

    /**
     * Checks that {@code backend} may run an op on {@code t}: the backend is open, {@code t} is on its device (and,
     * for host memory wrapped by another backend, accessible from its worker threads) and alive.
     *
     * @throws IllegalArgumentException unless {@code t} lives on {@code backend}'s device, or when {@code t} is
     *                                  host memory of a confined arena wrapped by another backend (whose worker
     *                                  threads may not touch it)
     * @throws IllegalStateException    when {@code t}'s scope or {@code backend} is closed
     */
    public static void requireOn(String name, Tensor t, Backend backend) {
        if (backend.isClosed()) {
            throw new IllegalStateException("backend " + backend.name() + " is closed");
        }
        if (t.backend() != backend) {
            if (!t.device().equals(backend.device())) {
                throw new IllegalArgumentException(name + " " + t + " is on " + t.device() + " but the op runs on "
                        + backend.device());
            }
            if (t.device().type() == Device.Type.CPU && t.storage().isNative()
                    && !t.storage().isAccessibleBy(NOT_THE_OWNER)) {
                throw new IllegalArgumentException(name + " " + t + " is memory of a confined arena (only its owner "
                        + "thread may access it) wrapped by another backend, and " + backend.name() + " may run this "
                        + "op on other threads: allocate it from Arena.ofShared(), ofAuto() or global(), or wrap it "
                        + "with this backend");
            }
        }
        t.checkAlive();
    }

    /** A thread that owns no arena: a segment it may not access is confined to some other thread. */
    private static final Thread NOT_THE_OWNER = Thread.ofPlatform().unstarted(() -> { });
}
