package org.diffusion4j.cpu;

import org.diffusion4j.random.Philox;
import org.diffusion4j.tensor.Ops;

/**
 * Float64 scalar oracles of every op of the CPU backend, written for clarity, not speed, and used only by
 * tests. Inputs are row-major {@code float[]} with their shapes; outputs are {@code double[]} (or the exact
 * storage bits for casts).
 */
final class Reference {

    private Reference() {
    }

    static long numel(long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    static long cols(long[] shape) {
        return shape.length == 0 ? 1 : shape[shape.length - 1];
    }

    /** The value of broadcast operand {@code b} (by {@code kind}) at element {@code e} of {@code a [R, N]}. */
    static double operandAt(Ops.Broadcast kind, float[] b, long cols, long e) {
        return switch (kind) {
            case NONE -> b[(int) e];
            case SCALAR -> b[0];
            case ROW -> b[(int) (e % cols)];
            case PER_ROW -> b[(int) (e / cols)];
        };
    }

    // ---------------------------------------------------------------- elementwise

    static double[] binary(Ops.Binary op, float[] a, long[] aShape, Ops.Broadcast kind, float[] b) {
        double[] out = new double[a.length];
        long cols = cols(aShape);
        for (int e = 0; e < a.length; e++) {
            out[e] = op.apply(a[e], operandAt(kind, b, cols, e));
        }
        return out;
    }

    static double[] unary(Ops.Unary op, float[] a) {
        double[] out = new double[a.length];
        for (int e = 0; e < a.length; e++) {
            out[e] = op.apply(a[e]);
        }
        return out;
    }

    static double[] axpby(double alpha, float[] x, double beta, float[] y) {
        double[] out = new double[x.length];
        for (int e = 0; e < x.length; e++) {
            out[e] = alpha * x[e] + beta * y[e];
        }
        return out;
    }

    static double[] fma(float[] a, long[] aShape, Ops.Broadcast kb, float[] b, Ops.Broadcast kc, float[] c) {
        double[] out = new double[a.length];
        long cols = cols(aShape);
        for (int e = 0; e < a.length; e++) {
            out[e] = a[e] * operandAt(kb, b, cols, e) + operandAt(kc, c, cols, e);
        }
        return out;
    }

    static double[] scaleShift(float[] a, double s, double t) {
        double[] out = new double[a.length];
        for (int e = 0; e < a.length; e++) {
            out[e] = a[e] * s + t;
        }
        return out;
    }

    // The magnitudes of the two terms that the two-rounding ops above add (|p| + |q| for p + q): what their float
    // rounding error is proportional to, however much the terms cancel (a one-element result near 0 is otherwise a
    // huge "relative" error).

    static double[] axpbyScale(double alpha, float[] x, double beta, float[] y) {
        double[] out = new double[x.length];
        for (int e = 0; e < x.length; e++) {
            out[e] = Math.abs(alpha * x[e]) + Math.abs(beta * y[e]);
        }
        return out;
    }

    static double[] fmaScale(float[] a, long[] aShape, Ops.Broadcast kb, float[] b, Ops.Broadcast kc, float[] c) {
        double[] out = new double[a.length];
        long cols = cols(aShape);
        for (int e = 0; e < a.length; e++) {
            out[e] = Math.abs((double) a[e] * operandAt(kb, b, cols, e)) + Math.abs(operandAt(kc, c, cols, e));
        }
        return out;
    }

    static double[] scaleShiftScale(float[] a, double s, double t) {
        double[] out = new double[a.length];
        for (int e = 0; e < a.length; e++) {
            out[e] = Math.abs(a[e] * s) + Math.abs(t);
        }
        return out;
    }

    // ---------------------------------------------------------------- reductions and softmax

    static double[] reduceLastDim(Ops.Reduce op, float[] x, long rows, long cols) {
        double[] out = new double[(int) rows];
        for (int r = 0; r < rows; r++) {
            double acc = op == Ops.Reduce.MAX ? Double.NEGATIVE_INFINITY : 0;
            for (int k = 0; k < cols; k++) {
                double v = x[(int) (r * cols + k)];
                acc = op == Ops.Reduce.MAX ? Math.max(acc, v) : acc + v;
            }
            out[r] = op == Ops.Reduce.MEAN ? acc / cols : acc;
        }
        return out;
    }

    static double[] softmax(float[] x, long rows, long cols) {
        double[] out = new double[x.length];
        for (int r = 0; r < rows; r++) {
            int base = (int) (r * cols);
            double max = Double.NEGATIVE_INFINITY;
            for (int k = 0; k < cols; k++) {
                max = Math.max(max, x[base + k]);
            }
            double sum = 0;
            for (int k = 0; k < cols; k++) {
                sum += Math.exp(x[base + k] - max);
            }
            for (int k = 0; k < cols; k++) {
                out[base + k] = Math.exp(x[base + k] - max) / sum;
            }
        }
        return out;
    }

    /** {@code sqrt(sum x^2)} with Kahan-compensated float64 summation. */
    static double globalNorm(float[]... xs) {
        double sum = 0;
        double comp = 0;
        for (float[] x : xs) {
            for (float v : x) {
                double y = (double) v * v - comp;
                double t = sum + y;
                comp = (t - sum) - y;
                sum = t;
            }
        }
        return Math.sqrt(sum);
    }

    // ---------------------------------------------------------------- matrix products

    /**
     * {@code c = alpha op(a) op(b) + beta c0} over {@code batch} products; {@code a}, {@code b} shared
     * across batches when their batch stride is 0. {@code c0} may be null (beta ignored, like BLAS with
     * beta 0).
     */
    static double[] gemm(boolean ta, boolean tb, double alpha, float[] a, long strideA, float[] b, long strideB,
                         double beta, float[] c0, int batch, int m, int n, int k) {
        return gemm(ta, tb, alpha, a, strideA, b, strideB, beta, c0, batch, m, n, k, false);
    }

    /**
     * The magnitude {@code |alpha| |op(a)| |op(b)| + |beta| |c0|} of each output: the scale of the rounding
     * error of any float summation order, which the GEMM test measures errors against (a single dot product
     * with heavy cancellation has a tiny result but not a tiny error).
     */
    static double[] gemmMagnitude(boolean ta, boolean tb, double alpha, float[] a, long strideA, float[] b,
                                  long strideB, double beta, float[] c0, int batch, int m, int n, int k) {
        return gemm(ta, tb, alpha, a, strideA, b, strideB, beta, c0, batch, m, n, k, true);
    }

    private static double[] gemm(boolean ta, boolean tb, double alpha, float[] a, long strideA, float[] b,
                                 long strideB, double beta, float[] c0, int batch, int m, int n, int k,
                                 boolean magnitude) {
        double[] c = new double[batch * m * n];
        for (int q = 0; q < batch; q++) {
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double acc = 0;
                    for (int p = 0; p < k; p++) {
                        double av = ta ? a[(int) (q * strideA + (long) p * m + i)] : a[(int) (q * strideA + (long) i * k + p)];
                        double bv = tb ? b[(int) (q * strideB + (long) j * k + p)] : b[(int) (q * strideB + (long) p * n + j)];
                        acc += magnitude ? Math.abs(av * bv) : av * bv;
                    }
                    int ci = q * m * n + i * n + j;
                    double cTerm = c0 == null || beta == 0 ? 0 : beta * c0[ci];
                    c[ci] = magnitude ? Math.abs(alpha) * acc + Math.abs(cTerm) : alpha * acc + cTerm;
                }
            }
        }
        return c;
    }

    // ---------------------------------------------------------------- copies and indexing

    /** Elements of {@code src} (contiguous {@code shape}) read through the permutation {@code dims}, row-major. */
    static float[] permute(float[] src, long[] shape, int[] dims) {
        int r = shape.length;
        long[] strides = new long[r];
        long acc = 1;
        for (int d = r - 1; d >= 0; d--) {
            strides[d] = acc;
            acc *= shape[d];
        }
        long[] ps = new long[r];
        long[] pst = new long[r];
        for (int i = 0; i < r; i++) {
            ps[i] = shape[dims[i]];
            pst[i] = strides[dims[i]];
        }
        float[] out = new float[src.length];
        long[] idx = new long[r];
        for (int e = 0; e < out.length; e++) {
            long off = 0;
            for (int d = 0; d < r; d++) {
                off += idx[d] * pst[d];
            }
            out[e] = src[(int) off];
            for (int d = r - 1; d >= 0; d--) {
                if (++idx[d] < ps[d]) {
                    break;
                }
                idx[d] = 0;
            }
        }
        return out;
    }

    static float[] gatherRows(float[] table, long dim, int[] indices) {
        float[] out = new float[(int) (indices.length * dim)];
        for (int i = 0; i < indices.length; i++) {
            System.arraycopy(table, (int) (indices[i] * dim), out, (int) (i * dim), (int) dim);
        }
        return out;
    }

    static float[] randn(long n, long seed, long stream) {
        float[] out = new float[(int) n];
        for (int i = 0; i < n; i++) {
            out[i] = Philox.normal(seed, stream, i);
        }
        return out;
    }

    static float[] rand(long n, long seed, long stream) {
        float[] out = new float[(int) n];
        for (int i = 0; i < n; i++) {
            out[i] = Philox.uniform(seed, stream, i);
        }
        return out;
    }

    // ---------------------------------------------------------------- casts

    /** Every non-negative finite bfloat16 value, by code ({@code 0 .. 0x7f7f}), plus 2^128 at {@code 0x7f80}. */
    private static final double[] BF16_VALUES = new double[0x7f81];
    /** Every non-negative finite binary16 value, by code ({@code 0 .. 0x7bff}), plus 2^16 at {@code 0x7c00}. */
    private static final double[] F16_VALUES = new double[0x7c01];

    static {
        for (int c = 0; c <= 0x7f7f; c++) {
            BF16_VALUES[c] = Float.intBitsToFloat(c << 16);
        }
        BF16_VALUES[0x7f80] = 0x1p128;
        for (int c = 0; c <= 0x7bff; c++) {
            int e = c >>> 10;
            int m = c & 0x3ff;
            F16_VALUES[c] = e == 0 ? m * 0x1p-24 : (1024 + m) * Math.scalb(1.0, e - 25);
        }
        F16_VALUES[0x7c00] = 0x1p16;
    }

    /**
     * The nearest code to {@code |x|} in a table of ascending values (the last one standing for infinity),
     * ties to the even code: round to nearest even by search, independent of the bit tricks under test.
     */
    private static int nearestCode(double[] values, double ax) {
        int lo = 0;
        int hi = values.length - 1;
        if (ax >= values[hi]) {
            return hi;
        }
        while (hi - lo > 1) { // invariant: values[lo] <= ax < values[hi]
            int mid = (lo + hi) >>> 1;
            if (values[mid] <= ax) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        double dl = ax - values[lo];
        double dh = values[hi] - ax;
        if (dl < dh) {
            return lo;
        }
        if (dh < dl) {
            return hi;
        }
        return (lo & 1) == 0 ? lo : hi;
    }

    /** F32 to BF16 bits: RNE by search; NaN becomes quiet with sign and top payload bits. */
    static short toBf16(float f) {
        int u = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) {
            return (short) ((u >>> 16) | 0x40);
        }
        int sign = (u >>> 16) & 0x8000;
        if (Float.isInfinite(f)) {
            return (short) (sign | 0x7f80);
        }
        return (short) (sign | nearestCode(BF16_VALUES, Math.abs((double) f)));
    }

    /** F32 to F16 bits: RNE by search, subnormals included; NaN becomes quiet with sign and top payload. */
    static short toF16(float f) {
        int u = Float.floatToRawIntBits(f);
        int sign = (u >>> 16) & 0x8000;
        if (Float.isNaN(f)) {
            return (short) (sign | 0x7e00 | ((u >>> 13) & 0x3ff));
        }
        if (Float.isInfinite(f)) {
            return (short) (sign | 0x7c00);
        }
        return (short) (sign | nearestCode(F16_VALUES, Math.abs((double) f)));
    }

    /** BF16 bits to F32 bits (exact). */
    static int fromBf16(short h) {
        return (h & 0xffff) << 16;
    }

    /** F16 bits to F32 bits (exact; NaN keeps sign and payload). */
    static int fromF16(short h) {
        int sign = (h & 0x8000) << 16;
        int c = h & 0x7fff;
        if (c >= 0x7c00) {
            return sign | 0x7f800000 | ((c & 0x3ff) << 13);
        }
        return sign | Float.floatToRawIntBits((float) F16_VALUES[c]);
    }
}
