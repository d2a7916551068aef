package org.diffusion4j.tensor;

import java.util.Arrays;

/** Shape arithmetic and the shape checks every op shares; messages name the argument and its values. */
public final class Shape {

    private Shape() {
    }

    /** Product of dims (1 for rank 0). */
    public static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /** A validated copy of {@code shape}: every dim {@code >= 0}, product fits a long. */
    public static long[] checked(long[] shape) {
        long[] s = shape.clone();
        for (long d : s) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dim in shape " + Arrays.toString(s));
            }
        }
        try {
            numel(s);
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("shape " + Arrays.toString(s) + " has more than 2^63 elements");
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
        if (o0 < i1 && i0 < o1) {
            throw new IllegalArgumentException(op + ": " + outName + " " + out + " (bytes [0x" + Long.toHexString(o0)
                    + ", 0x" + Long.toHexString(o1) + ")) partially overlaps " + inName + " " + in + " (bytes [0x"
                    + Long.toHexString(i0) + ", 0x" + Long.toHexString(i1) + ")); use the same tensor for an "
                    + "in-place op or disjoint memory");
        }
    }

    /** Bytes from the first to one past the last element of a non-empty tensor (any strides). */
    private static long spanBytes(Tensor t) {
        long span = 1;
        long[] shape = t.shape();
        long[] strides = t.strides();
        for (int d = 0; d < shape.length; d++) {
            span += (shape[d] - 1) * strides[d];
        }
        return span * t.dtype().byteSize();
    }

    /** @throws IllegalArgumentException unless {@code t} lives on {@code backend}'s device, alive */
    public static void requireOn(String name, Tensor t, Backend backend) {
        if (t.backend() != backend && !t.device().equals(backend.device())) {
            throw new IllegalArgumentException(name + " " + t + " is on " + t.device() + " but the op runs on "
                    + backend.device());
        }
        t.checkAlive();
    }
}
