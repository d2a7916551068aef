package org.diffusion4j.cpu;

import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * Elementwise F32 kernels over a range {@code [from, to)} of element indices, for one task of the pool.
 *
 * <p><b>Why float[] blocks.</b> Each range is processed in blocks of {@link #BLOCK} elements: the inputs are
 * copied from their segments into per-thread {@code float[]} scratch with {@link MemorySegment#copy}, the
 * op runs as a plain indexed loop over the arrays, and the result is copied back. C2 auto-vectorises the
 * array loops (JDK 25 does not vectorise loops over two different native segments, whose addresses it
 * cannot prove disjoint). Measured against a loop of {@code getAtIndex/setAtIndex} over the segments (axpby,
 * one thread, {@code ElementwiseBench}): 1.5x faster in L2 and 1.2x from DRAM; see
 * {@code benchmarks/RESULTS.md}.
 *
 * <p>Every output element depends only on the input elements at the same index (and the broadcast
 * operand), so results do not depend on how a tensor is cut into ranges or on the thread count.
 * {@code out} may be the same tensor as an input: each block is read completely before it is written.
 */
final class Elementwise {

    /** Elements per scratch block: 4 KiB per array, three arrays fit L1. */
    static final int BLOCK = 1024;

    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;
    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    /** Per-thread scratch arrays. */
    static final class Scratch {
        final float[] x = new float[BLOCK];
        final float[] y = new float[BLOCK];
        final float[] z = new float[BLOCK];
        final short[] h = new short[BLOCK];
        final int[] i = new int[BLOCK];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    static Scratch scratch() {
        return SCRATCH.get();
    }

    private Elementwise() {
    }

    // ---------------------------------------------------------------- broadcast operands

    /**
     * The second (or third) operand of an elementwise op, broadcast against {@code a [R, N]} by one of the
     * rules of {@link Ops.Broadcast}; {@link #load} materialises any block of it into an array.
     */
    static final class Operand {
        private final Ops.Broadcast kind;
        private final MemorySegment seg;
        private final long cols;
        private final float scalar;
        /** For a ROW operand with {@code cols <= BLOCK}: the row repeated, {@code >= cols + BLOCK} values. */
        private final float[] pattern;

        private Operand(Ops.Broadcast kind, MemorySegment seg, long cols, float scalar, float[] pattern) {
            this.kind = kind;
            this.seg = seg;
            this.cols = cols;
            this.scalar = scalar;
            this.pattern = pattern;
        }

        /** A scalar operand. */
        static Operand scalar(float value) {
            return new Operand(Ops.Broadcast.SCALAR, null, 1, value, null);
        }

        /** Operand {@code b} (contiguous F32) broadcast by {@code kind} against {@code a}. */
        static Operand of(Ops.Broadcast kind, Tensor b, Tensor a) {
            MemorySegment s = b.segment();
            long cols = a.cols();
            return switch (kind) {
                case NONE -> new Operand(kind, s, cols, 0f, null);
                case SCALAR -> scalar(s.get(F32, 0));
                case PER_ROW -> new Operand(kind, s, cols, 0f, null);
                case ROW -> {
                    float[] pattern = null;
                    if (cols <= BLOCK) {
                        int c = (int) cols;
                        int len = c + (int) Math.min(BLOCK, a.numel());
                        pattern = new float[len];
                        MemorySegment.copy(s, F32, 0, pattern, 0, c);
                        for (int k = c; k < len; k++) {
                            pattern[k] = pattern[k - c];
                        }
                    }
                    yield new Operand(kind, s, cols, 0f, pattern);
                }
            };
        }

        boolean isScalar() {
            return kind == Ops.Broadcast.SCALAR;
        }

        float scalarValue() {
            return scalar;
        }

        /** Writes the operand's values for elements {@code e .. e + n - 1} of {@code a} into {@code dst[0, n)}. */
        void load(long e, float[] dst, int n) {
            switch (kind) {
                case NONE -> MemorySegment.copy(seg, F32, e * 4, dst, 0, n);
                case SCALAR -> Arrays.fill(dst, 0, n, scalar);
                case ROW -> {
                    long col = e % cols;
                    if (pattern != null) {
                        System.arraycopy(pattern, (int) col, dst, 0, n);
                    } else {
                        int k = 0;
                        while (k < n) {
                            int len = (int) Math.min(cols - col, n - k);
                            MemorySegment.copy(seg, F32, col * 4, dst, k, len);
                            k += len;
                            col = 0;
                        }
                    }
                }
                case PER_ROW -> {
                    long row = e / cols;
                    long col = e % cols;
                    int k = 0;
                    while (k < n) {
                        int len = (int) Math.min(cols - col, n - k);
                        Arrays.fill(dst, k, k + len, seg.getAtIndex(F32, row));
                        k += len;
                        row++;
                        col = 0;
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- kernels

    /** {@code out = a OP b} for elements {@code [from, to)}. */
    static void binary(Ops.Binary op, MemorySegment a, Operand b, MemorySegment out, long from, long to) {
        Scratch s = scratch();
        float[] x = s.x;
        float[] y = s.y;
        for (long e = from; e < to; e += BLOCK) {
            int n = (int) Math.min(BLOCK, to - e);
            MemorySegment.copy(a, F32, e * 4, x, 0, n);
            b.load(e, y, n);
            apply(op, x, y, n);
            MemorySegment.copy(x, 0, out, F32, e * 4, n);
        }
    }

    /** {@code x[i] = x[i] OP y[i]} for {@code i < n}. */
    static void apply(Ops.Binary op, float[] x, float[] y, int n) {
        switch (op) {
            case ADD -> {
                for (int i = 0; i < n; i++) {
                    x[i] = x[i] + y[i];
                }
            }
            case SUB -> {
                for (int i = 0; i < n; i++) {
                    x[i] = x[i] - y[i];
                }
            }
            case MUL -> {
                for (int i = 0; i < n; i++) {
                    x[i] = x[i] * y[i];
                }
            }
            case DIV -> {
                for (int i = 0; i < n; i++) {
                    x[i] = x[i] / y[i];
                }
            }
            case MAX -> {
                for (int i = 0; i < n; i++) {
                    x[i] = Math.max(x[i], y[i]);
                }
            }
            case MIN -> {
                for (int i = 0; i < n; i++) {
                    x[i] = Math.min(x[i], y[i]);
                }
            }
        }
    }

    /** {@code out = OP(a)} for elements {@code [from, to)}. */
    static void unary(Ops.Unary op, MemorySegment a, MemorySegment out, long from, long to) {
        float[] x = scratch().x;
        for (long e = from; e < to; e += BLOCK) {
            int n = (int) Math.min(BLOCK, to - e);
            MemorySegment.copy(a, F32, e * 4, x, 0, n);
            apply(op, x, n);
            MemorySegment.copy(x, 0, out, F32, e * 4, n);
        }
    }

    /**
     * {@code x[i] = OP(x[i])}. Transcendentals go through float64 {@link Math} (correctly rounded to float in
     * nearly every case); RSQRT is {@code 1 / sqrt} (two rounded steps), SIGMOID {@code 1 / (1 + exp(-x))},
     * which saturates cleanly to 0 and 1.
     */
    static void apply(Ops.Unary op, float[] x, int n) {
        switch (op) {
            case NEG -> {
                for (int i = 0; i < n; i++) {
                    x[i] = -x[i];
                }
            }
            case ABS -> {
                for (int i = 0; i < n; i++) {
                    x[i] = Math.abs(x[i]);
                }
            }
            case EXP -> {
                for (int i = 0; i < n; i++) {
                    x[i] = (float) Math.exp(x[i]);
                }
            }
            case LOG -> {
                for (int i = 0; i < n; i++) {
                    x[i] = (float) Math.log(x[i]);
                }
            }
            case SQRT -> {
                for (int i = 0; i < n; i++) {
                    x[i] = (float) Math.sqrt(x[i]);
                }
            }
            case RSQRT -> {
                for (int i = 0; i < n; i++) {
                    x[i] = 1f / (float) Math.sqrt(x[i]);
                }
            }
            case SQUARE -> {
                for (int i = 0; i < n; i++) {
                    x[i] = x[i] * x[i];
                }
            }
            case RECIPROCAL -> {
                for (int i = 0; i < n; i++) {
                    x[i] = 1f / x[i];
                }
            }
            case TANH -> {
                for (int i = 0; i < n; i++) {
                    x[i] = (float) Math.tanh(x[i]);
                }
            }
            case SIGMOID -> {
                for (int i = 0; i < n; i++) {
                    x[i] = (float) (1.0 / (1.0 + Math.exp(-x[i])));
                }
            }
        }
    }

    /** {@code out = alpha x + beta y} for elements {@code [from, to)}. */
    static void axpby(float alpha, MemorySegment xs, float beta, MemorySegment ys, MemorySegment out,
                      long from, long to) {
        Scratch s = scratch();
        float[] x = s.x;
        float[] y = s.y;
        for (long e = from; e < to; e += BLOCK) {
            int n = (int) Math.min(BLOCK, to - e);
            MemorySegment.copy(xs, F32, e * 4, x, 0, n);
            MemorySegment.copy(ys, F32, e * 4, y, 0, n);
            for (int i = 0; i < n; i++) {
                x[i] = alpha * x[i] + beta * y[i];
            }
            MemorySegment.copy(x, 0, out, F32, e * 4, n);
        }
    }

    /** {@code out = a * b + c} (two roundings: Java never contracts) for elements {@code [from, to)}. */
    static void fma(MemorySegment a, Operand b, Operand c, MemorySegment out, long from, long to) {
        Scratch s = scratch();
        float[] x = s.x;
        float[] y = s.y;
        float[] z = s.z;
        for (long e = from; e < to; e += BLOCK) {
            int n = (int) Math.min(BLOCK, to - e);
            MemorySegment.copy(a, F32, e * 4, x, 0, n);
            b.load(e, y, n);
            c.load(e, z, n);
            for (int i = 0; i < n; i++) {
                x[i] = x[i] * y[i] + z[i];
            }
            MemorySegment.copy(x, 0, out, F32, e * 4, n);
        }
    }

    /** {@code out = a * s + t} for elements {@code [from, to)}. */
    static void scaleShift(MemorySegment a, float sc, float t, MemorySegment out, long from, long to) {
        float[] x = scratch().x;
        for (long e = from; e < to; e += BLOCK) {
            int n = (int) Math.min(BLOCK, to - e);
            MemorySegment.copy(a, F32, e * 4, x, 0, n);
            for (int i = 0; i < n; i++) {
                x[i] = x[i] * sc + t;
            }
            MemorySegment.copy(x, 0, out, F32, e * 4, n);
        }
    }

    // ---------------------------------------------------------------- fills

    /** Writes the 32-bit pattern {@code bits} to elements {@code [from, to)} of a 4-byte-element segment. */
    static void fill32(MemorySegment out, int bits, long from, long to) {
        if (bits == 0) {
            out.asSlice(from * 4, (to - from) * 4).fill((byte) 0);
            return;
        }
        int[] v = scratch().i;
        Arrays.fill(v, bits);
        for (long e = from; e < to; e += BLOCK) {
            int n = (int) Math.min(BLOCK, to - e);
            MemorySegment.copy(v, 0, out, I32, e * 4, n);
        }
    }

    /** Writes the 16-bit pattern {@code bits} to elements {@code [from, to)} of a 2-byte-element segment. */
    static void fill16(MemorySegment out, short bits, long from, long to) {
        if (bits == 0) {
            out.asSlice(from * 2, (to - from) * 2).fill((byte) 0);
            return;
        }
        short[] v = scratch().h;
        Arrays.fill(v, bits);
        for (long e = from; e < to; e += BLOCK) {
            int n = (int) Math.min(BLOCK, to - e);
            MemorySegment.copy(v, 0, out, I16, e * 2, n);
        }
    }
}
