package org.diffusion4j.cpu;

import org.diffusion4j.tensor.Ops;

import java.lang.foreign.MemorySegment;

import static org.diffusion4j.cpu.Elementwise.BLOCK;
import static org.diffusion4j.cpu.Elementwise.F32;

/**
 * Row reductions, softmax and sums of squares over F32 segments.
 *
 * <p><b>Fixed order.</b> A row is always reduced by one thread, in one fixed order that depends only on the
 * row: sums run in float64 over four lanes (element {@code k} of the row goes to lane {@code k & 3}),
 * combined as {@code (l0 + l1) + (l2 + l3)}. Rows of at most {@link Elementwise#BLOCK} elements are loaded
 * several at a time into scratch; longer rows are streamed in blocks of {@code BLOCK} (a multiple of 4, so
 * the lane of an element is the same either way). The result is therefore bitwise the same for any thread
 * count and any grouping of rows into tasks.
 */
final class Reductions {

    private Reductions() {
    }

    // ---------------------------------------------------------------- reduceLastDim

    /** Reduces rows {@code [r0, r1)} of {@code x [R, N]} into {@code out[r]}. */
    static void reduceRows(Ops.Reduce op, MemorySegment x, MemorySegment out, long cols, long r0, long r1) {
        Elementwise.Scratch s = Elementwise.scratch();
        float[] buf = s.x;
        float[] res = s.y;
        if (cols <= BLOCK) {
            int n = (int) cols;
            int perBlock = n == 0 ? BLOCK : BLOCK / n;
            for (long r = r0; r < r1; r += perBlock) {
                int rows = (int) Math.min(perBlock, r1 - r);
                if (n > 0) {
                    MemorySegment.copy(x, F32, r * cols * 4, buf, 0, rows * n);
                }
                for (int i = 0; i < rows; i++) {
                    res[i] = reduceArray(op, buf, i * n, n);
                }
                MemorySegment.copy(res, 0, out, F32, r * 4, rows);
            }
            return;
        }
        for (long r = r0; r < r1; r++) {
            long base = r * cols;
            float v;
            if (op == Ops.Reduce.MAX) {
                float m = Float.NEGATIVE_INFINITY;
                for (long k = 0; k < cols; k += BLOCK) {
                    int n = (int) Math.min(BLOCK, cols - k);
                    MemorySegment.copy(x, F32, (base + k) * 4, buf, 0, n);
                    m = maxOf(buf, 0, n, m);
                }
                v = m;
            } else {
                double[] lanes = new double[4];
                for (long k = 0; k < cols; k += BLOCK) {
                    int n = (int) Math.min(BLOCK, cols - k);
                    MemorySegment.copy(x, F32, (base + k) * 4, buf, 0, n);
                    addLanes(buf, 0, n, lanes);
                }
                double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
                v = (float) (op == Ops.Reduce.SUM ? sum : sum / cols);
            }
            out.setAtIndex(F32, r, v);
        }
    }

    /** The reduction of {@code buf[off, off + n)}, a whole row. */
    private static float reduceArray(Ops.Reduce op, float[] buf, int off, int n) {
        return switch (op) {
            case MAX -> maxOf(buf, off, n, Float.NEGATIVE_INFINITY);
            case SUM -> (float) sumOf(buf, off, n);
            case MEAN -> (float) (sumOf(buf, off, n) / n);
        };
    }

    /** {@code max(m, buf[off..off+n))} with {@link Math#max} (NaN propagates). */
    static float maxOf(float[] buf, int off, int n, float m) {
        for (int i = 0; i < n; i++) {
            m = Math.max(m, buf[off + i]);
        }
        return m;
    }

    /** The four-lane float64 sum of a whole row {@code buf[off, off + n)}. */
    static double sumOf(float[] buf, int off, int n) {
        double l0 = 0;
        double l1 = 0;
        double l2 = 0;
        double l3 = 0;
        int i = 0;
        for (; i + 4 <= n; i += 4) {
            l0 += buf[off + i];
            l1 += buf[off + i + 1];
            l2 += buf[off + i + 2];
            l3 += buf[off + i + 3];
        }
        if (i < n) {
            l0 += buf[off + i];
        }
        if (i + 1 < n) {
            l1 += buf[off + i + 1];
        }
        if (i + 2 < n) {
            l2 += buf[off + i + 2];
        }
        return (l0 + l1) + (l2 + l3);
    }

    /**
     * {@code Σ (buf[off + k] − mu)²} over a whole row in the four-lane float64 order: each difference is a float
     * subtraction (the LayerNorm variance pass), each square exact in float64.
     */
    static double sumSquaredDeviationsOf(float[] buf, int off, int n, float mu) {
        double l0 = 0;
        double l1 = 0;
        double l2 = 0;
        double l3 = 0;
        int i = 0;
        for (; i + 4 <= n; i += 4) {
            double v0 = buf[off + i] - mu;
            double v1 = buf[off + i + 1] - mu;
            double v2 = buf[off + i + 2] - mu;
            double v3 = buf[off + i + 3] - mu;
            l0 += v0 * v0;
            l1 += v1 * v1;
            l2 += v2 * v2;
            l3 += v3 * v3;
        }
        for (; i < n; i++) {                                   // lane i & 3 of the tail
            double v = buf[off + i] - mu;
            switch (i & 3) {
                case 0 -> l0 += v * v;
                case 1 -> l1 += v * v;
                default -> l2 += v * v;
            }
        }
        return (l0 + l1) + (l2 + l3);
    }

    /** {@code Σ a[k]·b[k]} over {@code [0, n)} in the four-lane float64 order (each product exact in float64). */
    static double dotOf(float[] a, float[] b, int n) {
        double l0 = 0;
        double l1 = 0;
        double l2 = 0;
        double l3 = 0;
        int i = 0;
        for (; i + 4 <= n; i += 4) {
            l0 += (double) a[i] * b[i];
            l1 += (double) a[i + 1] * b[i + 1];
            l2 += (double) a[i + 2] * b[i + 2];
            l3 += (double) a[i + 3] * b[i + 3];
        }
        for (; i < n; i++) {
            double v = (double) a[i] * b[i];
            switch (i & 3) {
                case 0 -> l0 += v;
                case 1 -> l1 += v;
                default -> l2 += v;
            }
        }
        return (l0 + l1) + (l2 + l3);
    }

    /**
     * Adds the block {@code buf[off, off + n)} of a row to its four lanes; every block but a row's last has a
     * length that is a multiple of 4, so lane {@code k & 3} of the row is lane {@code i & 3} here.
     */
    static void addLanes(float[] buf, int off, int n, double[] lanes) {
        double l0 = lanes[0];
        double l1 = lanes[1];
        double l2 = lanes[2];
        double l3 = lanes[3];
        int i = 0;
        for (; i + 4 <= n; i += 4) {
            l0 += buf[off + i];
            l1 += buf[off + i + 1];
            l2 += buf[off + i + 2];
            l3 += buf[off + i + 3];
        }
        if (i < n) {
            l0 += buf[off + i];
        }
        if (i + 1 < n) {
            l1 += buf[off + i + 1];
        }
        if (i + 2 < n) {
            l2 += buf[off + i + 2];
        }
        lanes[0] = l0;
        lanes[1] = l1;
        lanes[2] = l2;
        lanes[3] = l3;
    }

    // ---------------------------------------------------------------- softmax

    /**
     * Softmax of rows {@code [r0, r1)} of {@code x [R, N]} into {@code out}: {@code e_k = exp(x_k - max)}
     * (float exponent of a float difference), {@code out_k = e_k * (float) (1 / sum e)} with the sum in the
     * fixed four-lane float64 order. {@code out} may be {@code x}.
     */
    static void softmaxRows(MemorySegment x, MemorySegment out, long cols, long r0, long r1) {
        Elementwise.Scratch s = Elementwise.scratch();
        float[] buf = s.x;
        if (cols <= BLOCK) {
            int n = (int) cols;
            if (n == 0) {
                return;
            }
            int perBlock = BLOCK / n;
            for (long r = r0; r < r1; r += perBlock) {
                int rows = (int) Math.min(perBlock, r1 - r);
                MemorySegment.copy(x, F32, r * cols * 4, buf, 0, rows * n);
                for (int i = 0; i < rows; i++) {
                    int off = i * n;
                    float max = maxOf(buf, off, n, Float.NEGATIVE_INFINITY);
                    expShifted(buf, off, n, max);
                    float inv = (float) (1.0 / sumOf(buf, off, n));
                    scale(buf, off, n, inv);
                }
                MemorySegment.copy(buf, 0, out, F32, r * cols * 4, rows * n);
            }
            return;
        }
        // Long rows: three passes over the row in blocks, using out as the store of the exponentials.
        for (long r = r0; r < r1; r++) {
            long base = r * cols;
            float max = Float.NEGATIVE_INFINITY;
            for (long k = 0; k < cols; k += BLOCK) {
                int n = (int) Math.min(BLOCK, cols - k);
                MemorySegment.copy(x, F32, (base + k) * 4, buf, 0, n);
                max = maxOf(buf, 0, n, max);
            }
            double[] lanes = new double[4];
            for (long k = 0; k < cols; k += BLOCK) {
                int n = (int) Math.min(BLOCK, cols - k);
                MemorySegment.copy(x, F32, (base + k) * 4, buf, 0, n);
                expShifted(buf, 0, n, max);
                addLanes(buf, 0, n, lanes);
                MemorySegment.copy(buf, 0, out, F32, (base + k) * 4, n);
            }
            float inv = (float) (1.0 / ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])));
            for (long k = 0; k < cols; k += BLOCK) {
                int n = (int) Math.min(BLOCK, cols - k);
                MemorySegment.copy(out, F32, (base + k) * 4, buf, 0, n);
                scale(buf, 0, n, inv);
                MemorySegment.copy(buf, 0, out, F32, (base + k) * 4, n);
            }
        }
    }

    private static void expShifted(float[] buf, int off, int n, float max) {
        for (int i = off; i < off + n; i++) {
            buf[i] = (float) Math.exp(buf[i] - max);
        }
    }

    private static void scale(float[] buf, int off, int n, float inv) {
        for (int i = off; i < off + n; i++) {
            buf[i] = buf[i] * inv;
        }
    }

    // ---------------------------------------------------------------- sums of squares

    /**
     * {@code sum x_k^2} over elements {@code [from, to)} in float64 (each square is exact in float64), over
     * four lanes in a fixed order.
     */
    static double sumSquares(MemorySegment x, long from, long to) {
        float[] buf = Elementwise.scratch().x;
        double l0 = 0;
        double l1 = 0;
        double l2 = 0;
        double l3 = 0;
        for (long e = from; e < to; e += BLOCK) {
            int n = (int) Math.min(BLOCK, to - e);
            MemorySegment.copy(x, F32, e * 4, buf, 0, n);
            int i = 0;
            for (; i + 4 <= n; i += 4) {
                double v0 = buf[i];
                double v1 = buf[i + 1];
                double v2 = buf[i + 2];
                double v3 = buf[i + 3];
                l0 += v0 * v0;
                l1 += v1 * v1;
                l2 += v2 * v2;
                l3 += v3 * v3;
            }
            for (; i < n; i++) {
                double v = buf[i];
                l0 += v * v;
            }
        }
        return (l0 + l1) + (l2 + l3);
    }
}
