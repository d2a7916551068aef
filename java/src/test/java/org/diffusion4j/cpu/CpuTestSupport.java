package org.diffusion4j.cpu;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Shared by the CPU backend tests: random inputs (seeded by {@link org.diffusion4j.TestSeed}; every failure
 * message names the seed), NaN-poisoned outputs, odd shapes and the relative-error
 * comparison {@code ‖out − ref‖ / ‖ref‖} of DESIGN.md §5.
 */
final class CpuTestSupport {

    private CpuTestSupport() {
    }

    static final long BASE_SEED = org.diffusion4j.TestSeed.BASE;

    /** Elementwise tolerance: a few float ulps. */
    static final double ELEMENTWISE = 1e-6;
    /** Reductions, softmax and GEMM. */
    static final double REDUCTION = 1e-5;

    /**
     * Odd shapes: empty dims, single elements, size-1 dims, primes, sizes just past powers of two, and a few
     * above the 32 Ki-element threshold so that the thread pool is used.
     */
    static final long[][] SHAPES = {
        {0}, {3, 0}, {0, 5}, {2, 0, 3}, {1}, {7}, {1, 1, 1}, {3, 5}, {17, 129}, {2, 3, 67}, {5, 1, 1023},
        {4099}, {3, 2, 2049}, {1, 1025}, {70_001}, {129, 517}, {3, 40_000}
    };

    static SplittableRandom random(String testCase) {
        return new SplittableRandom(BASE_SEED ^ testCase.hashCode() * 0x9E3779B97F4A7C15L);
    }

    static String seedOf(String testCase) {
        return "-Dd4j.test.seed=" + BASE_SEED + " (case " + testCase + ")";
    }

    static String s(long... shape) {
        return Arrays.toString(shape);
    }

    /** Uniform values in [lo, hi). */
    static float[] uniform(SplittableRandom r, long n, double lo, double hi) {
        float[] a = new float[Math.toIntExact(n)];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) (lo + (hi - lo) * r.nextDouble());
        }
        return a;
    }

    /** Values with |x| in [minAbs, maxAbs) and a random sign (safe divisors). */
    static float[] awayFromZero(SplittableRandom r, long n, double minAbs, double maxAbs) {
        float[] a = uniform(r, n, minAbs, maxAbs);
        for (int i = 0; i < a.length; i++) {
            if (r.nextBoolean()) {
                a[i] = -a[i];
            }
        }
        return a;
    }

    /** An F32 tensor full of NaN, so that elements an op fails to write are caught. */
    static Tensor poisoned(Backend be, TensorScope scope, long... shape) {
        Tensor t = be.empty(scope, DType.F32, shape);
        be.fill(t, Float.NaN);
        return t;
    }

    static long[] withLast(long[] shape, long last) {
        long[] s = shape.length == 0 ? new long[] {1} : shape.clone();
        s[s.length - 1] = last;
        return s;
    }

    /** Asserts {@code ‖out − ref‖ / ‖ref‖ <= tol} (absolute when {@code ‖ref‖ = 0}); NaN anywhere fails. */
    static void assertClose(String what, String shape, float[] out, double[] ref, double tol, String seed) {
        if (out.length != ref.length) {
            fail(what + " " + shape + ": " + out.length + " values, expected " + ref.length + "; " + seed);
        }
        double num = 0;
        double den = 0;
        int worst = -1;
        double worstErr = -1;
        for (int i = 0; i < out.length; i++) {
            double d = out[i] - ref[i];
            if (Double.isNaN(out[i]) != Double.isNaN(ref[i])) {
                fail(what + " " + shape + ": element " + i + " is " + out[i] + ", expected " + ref[i] + "; " + seed);
            }
            if (Double.isNaN(ref[i]) || (Double.isInfinite(ref[i]) && out[i] == ref[i])) {
                continue;
            }
            num += d * d;
            den += ref[i] * ref[i];
            if (Math.abs(d) > worstErr) {
                worstErr = Math.abs(d);
                worst = i;
            }
        }
        double rel = den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
        if (!(rel <= tol)) {
            fail(String.format("%s %s: relative error %.3g > %.1g (worst element %d: %s vs %s); %s", what, shape, rel,
                    tol, worst, worst < 0 ? "-" : out[worst], worst < 0 ? "-" : ref[worst], seed));
        }
    }

    /**
     * Asserts {@code ‖out − ref‖ / ‖scale‖ <= tol}: the error measured against the magnitude of the terms
     * that were summed (for GEMM, {@code |A||B|}), not against a result that cancellation may make tiny.
     */
    static void assertCloseScaled(String what, String shape, float[] out, double[] ref, double[] scale, double tol,
                                  String seed) {
        if (out.length != ref.length) {
            fail(what + " " + shape + ": " + out.length + " values, expected " + ref.length + "; " + seed);
        }
        double num = 0;
        double den = 0;
        for (int i = 0; i < out.length; i++) {
            if (Double.isNaN(out[i])) {
                fail(what + " " + shape + ": element " + i + " is NaN, expected " + ref[i] + "; " + seed);
            }
            double d = out[i] - ref[i];
            num += d * d;
            den += scale[i] * scale[i];
        }
        double rel = den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
        if (!(rel <= tol)) {
            fail(String.format("%s %s: error %.3g of the magnitude > %.1g; %s", what, shape, rel, tol, seed));
        }
    }

    /** Asserts the raw bits of two float arrays are equal. */
    static void assertBitwise(String what, float[] expected, float[] actual, String seed) {
        if (expected.length != actual.length) {
            fail(what + ": " + actual.length + " values, expected " + expected.length + "; " + seed);
        }
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                fail(what + ": element " + i + " is " + actual[i] + " (0x"
                        + Integer.toHexString(Float.floatToRawIntBits(actual[i])) + "), expected " + expected[i]
                        + " (0x" + Integer.toHexString(Float.floatToRawIntBits(expected[i])) + "); " + seed);
            }
        }
    }

    /** The storage of a 2-byte-element tensor as shorts. */
    static short[] shorts(Tensor t) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(Math.max(2, t.byteSize()), 8);
            t.copyTo(m.asSlice(0, t.byteSize()));
            return m.asSlice(0, t.byteSize()).toArray(ValueLayout.JAVA_SHORT);
        }
    }

    /** A tensor of a 2-byte dtype holding {@code bits}. */
    static Tensor fromShorts(Backend be, TensorScope scope, DType dtype, short[] bits, long... shape) {
        Tensor t = be.empty(scope, dtype, shape);
        t.copyFrom(MemorySegment.ofArray(bits));
        return t;
    }

    /** An I32 tensor holding {@code values}. */
    static Tensor ints(Backend be, TensorScope scope, int[] values) {
        Tensor t = be.empty(scope, DType.I32, values.length);
        t.copyFrom(MemorySegment.ofArray(values));
        return t;
    }

    static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }
}
