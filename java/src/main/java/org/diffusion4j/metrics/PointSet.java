package org.diffusion4j.metrics;

import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;

import java.util.Objects;

/**
 * A validated, immutable set of {@code N} points in {@code D} dimensions, shape {@code [N, D]}, held on the host
 * as row-major F32: the input of every metric in this package (samples, reference data, classifier features).
 *
 * <p>Every factory copies its input and checks it once, so the metrics need not: {@code N >= 1},
 * {@code D >= 1}, rectangular rows, and every value finite. A violation throws
 * {@link IllegalArgumentException} naming the set (the {@code name} given, e.g. {@code "generated"}), and for a
 * bad value its row, column and value, e.g. {@code "generated[12][3] is NaN"}.
 */
public final class PointSet {

    private final String name;
    private final int n;
    private final int d;
    private final float[] data;

    private PointSet(String name, int n, int d, float[] data) {
        this.name = name;
        this.n = n;
        this.d = d;
        this.data = data;
    }

    /**
     * A set from rows {@code rows[i][k]}, {@code [N, D]}.
     *
     * @param name used in error messages (e.g. {@code "generated"}, {@code "held-out"})
     * @throws IllegalArgumentException when there are no rows, a row is null or empty, the rows differ in
     *                                  length, or a value is NaN or infinite
     */
    public static PointSet of(String name, float[][] rows) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(rows, name);
        if (rows.length == 0) {
            throw new IllegalArgumentException(name + " is empty: a point set needs at least one row");
        }
        int d = requireRow(name, rows, 0).length;
        if (d == 0) {
            throw new IllegalArgumentException(name + "[0] has 0 columns: points need at least one dimension");
        }
        long total = (long) rows.length * d;
        if (total > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(name + " has " + rows.length + " x " + d + " = " + total
                    + " values, more than a float[] holds");
        }
        float[] data = new float[(int) total];
        for (int i = 0; i < rows.length; i++) {
            float[] row = requireRow(name, rows, i);
            if (row.length != d) {
                throw new IllegalArgumentException(name + "[" + i + "] has " + row.length + " columns but "
                        + name + "[0] has " + d + ": rows must have one length");
            }
            System.arraycopy(row, 0, data, i * d, d);
        }
        return checked(name, rows.length, d, data);
    }

    /**
     * A set from row-major values {@code data[i * d + k]}, {@code [n, d]} (copied).
     *
     * @throws IllegalArgumentException when {@code n < 1}, {@code d < 1}, {@code data.length != n * d}, or a
     *                                  value is NaN or infinite
     */
    public static PointSet of(String name, float[] data, int n, int d) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(data, name);
        if (n < 1 || d < 1) {
            throw new IllegalArgumentException(name + " has shape [" + n + ", " + d
                    + "]: a point set needs N >= 1 points of D >= 1 dimensions");
        }
        if ((long) n * d != data.length) {
            throw new IllegalArgumentException(name + " has " + data.length + " values but shape [" + n + ", " + d
                    + "] needs " + (long) n * d);
        }
        return checked(name, n, d, data.clone());
    }

    /**
     * A set from an F32 tensor on any device (copied to the host): {@code [N, D]}, or {@code [N, ...]} of
     * higher rank whose trailing dims are flattened into {@code D} (e.g. images {@code [N, C, H, W]} give
     * {@code D = C * H * W}).
     *
     * @throws IllegalArgumentException when the tensor is not F32, has rank below 2, has a zero dim, or holds
     *                                  a NaN or infinite value (named by its index)
     */
    public static PointSet of(String name, Tensor tensor) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(tensor, name);
        if (tensor.dtype() != DType.F32) {
            throw new IllegalArgumentException(name + " " + tensor + " must be F32, is " + tensor.dtype());
        }
        if (tensor.rank() < 2) {
            throw new IllegalArgumentException(name + " " + tensor + " must have rank >= 2 ([N, D]), has rank "
                    + tensor.rank());
        }
        long n = tensor.shape(0);
        long d = tensor.numel() / Math.max(n, 1);
        if (n < 1 || d < 1) {
            throw new IllegalArgumentException(name + " " + tensor + " is empty: a point set needs N >= 1 points"
                    + " of D >= 1 dimensions");
        }
        if (n > Integer.MAX_VALUE || d > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(name + " " + tensor + " has more rows or columns than an int holds");
        }
        return checked(name, (int) n, (int) d, tensor.toFloatArray());
    }

    private static float[] requireRow(String name, float[][] rows, int i) {
        if (rows[i] == null) {
            throw new IllegalArgumentException(name + "[" + i + "] is null");
        }
        return rows[i];
    }

    private static PointSet checked(String name, int n, int d, float[] data) {
        for (int i = 0; i < data.length; i++) {
            float v = data[i];
            if (!Float.isFinite(v)) {
                throw new IllegalArgumentException(name + "[" + i / d + "][" + i % d + "] is " + v
                        + ": metrics need finite values");
            }
        }
        return new PointSet(name, n, d, data);
    }

    /** The name used in error messages. */
    public String name() {
        return name;
    }

    /** Number of points {@code N}. */
    public int size() {
        return n;
    }

    /** Dimension {@code D} of each point. */
    public int dim() {
        return d;
    }

    /** Value {@code k} of point {@code i}. */
    public float get(int i, int k) {
        Objects.checkIndex(i, n);
        Objects.checkIndex(k, d);
        return data[i * d + k];
    }

    /** A copy of point {@code i}, {@code [D]}. */
    public float[] row(int i) {
        Objects.checkIndex(i, n);
        float[] r = new float[d];
        System.arraycopy(data, i * d, r, 0, d);
        return r;
    }

    /** A copy of the values, row-major {@code [N * D]}. */
    public float[] toArray() {
        return data.clone();
    }

    /** The same points under another name (no copy). */
    public PointSet named(String newName) {
        return new PointSet(Objects.requireNonNull(newName, "newName"), n, d, data);
    }

    /**
     * {@code count} of these points chosen without replacement: the first {@code count} entries of the Philox
     * permutation {@code PhiloxShuffle.permutation(size(), seed, stream)}, in that order; this set itself when
     * {@code count == size()}.
     *
     * @throws IllegalArgumentException unless {@code 1 <= count <= size()}
     */
    public PointSet pick(int count, long seed, long stream) {
        if (count < 1 || count > n) {                   // a point set holds at least one point
            throw new IllegalArgumentException("cannot pick " + count + " of the " + n + " points of " + name);
        }
        if (count == n) {
            return this;
        }
        int[] perm = org.diffusion4j.io.PhiloxShuffle.permutation(n, seed, stream);
        float[] out = new float[count * d];
        for (int i = 0; i < count; i++) {
            System.arraycopy(data, perm[i] * d, out, i * d, d);
        }
        return new PointSet(name, count, d, out);
    }

    /** The values themselves, row-major (not copied: callers in this package must not write). */
    float[] values() {
        return data;
    }

    /**
     * Throws unless {@code a} and {@code b} have one dimension.
     *
     * @throws IllegalArgumentException naming both sets and their dimensions
     */
    static void requireSameDim(PointSet a, PointSet b) {
        if (a.d != b.d) {
            throw new IllegalArgumentException(a.name + " has D = " + a.d + " but " + b.name + " has D = " + b.d
                    + ": the sets must have one dimension");
        }
    }

    /**
     * Throws unless the set has at least {@code min} points.
     *
     * @throws IllegalArgumentException naming the set, its size and what needs the points
     */
    static void requireAtLeast(PointSet a, long min, String forWhat) {
        if (a.n < min) {
            throw new IllegalArgumentException(a.name + " has " + a.n + " point" + (a.n == 1 ? "" : "s") + " but "
                    + forWhat + " needs at least " + min);
        }
    }

    /** {@code "name [N, D]"}. */
    @Override
    public String toString() {
        return name + " [" + n + ", " + d + "]";
    }
}
