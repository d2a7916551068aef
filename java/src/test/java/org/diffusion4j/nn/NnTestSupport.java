package org.diffusion4j.nn;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.ToDoubleFunction;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Shared by the layer tests: fresh random inputs (seeded by {@link org.diffusion4j.TestSeed}; every
 * failure names the seed), NaN-poisoned outputs, the relative error {@code ‖out − ref‖/‖ref‖} of DESIGN.md §5 and
 * central finite differences in float64.
 */
public final class NnTestSupport {

    private NnTestSupport() {
    }

    public static final long BASE_SEED = org.diffusion4j.TestSeed.BASE;

    /** Forward of elementwise ops against float64: a few float ulps. */
    public static final double ELEMENTWISE = 2e-6;

    /**
     * Like {@link #assertClose} for a pointwise function {@code y = f(z)} evaluated in float: the error of element
     * {@code i} is measured against {@code max(|y_i|, |z_i f'(z_i)|)} rather than {@code |y_i|}, since rounding
     * the input (or an inner float term) by one ulp moves {@code y} by {@code |z f'(z)|} ulps (the condition
     * number; e.g. ~30 in GELU's far negative tail, where {@code y ~ 1e-12}). {@code f'} is taken by central
     * differences of the float64 reference.
     */
    public static void assertClosePointwise(String what, float[] out, double[] z,
                                            java.util.function.DoubleUnaryOperator f, double tol, String seed) {
        if (out.length != z.length) {
            fail(what + ": " + out.length + " values, expected " + z.length + "; " + seed);
        }
        for (int i = 0; i < out.length; i++) {
            double y = f.applyAsDouble(z[i]);
            double h = 1e-6 * Math.max(1, Math.abs(z[i]));
            double slope = (f.applyAsDouble(z[i] + h) - f.applyAsDouble(z[i] - h)) / (2 * h);
            double scale = Math.max(Math.abs(y), Math.abs(z[i] * slope));
            double err = Math.abs(out[i] - y);
            if (Float.isNaN(out[i]) || !(err <= tol * scale + Double.MIN_NORMAL)) {
                fail(String.format("%s: element %d (z = %s) is %s, expected %s (error %.3g > %.1g x %.3g); %s", what, i,
                        z[i], out[i], y, err, tol, scale, seed));
            }
        }
    }
    /** Forward of reductions / GEMM against float64. */
    public static final double REDUCTION = 2e-5;
    /** Analytic float32 gradients against central differences of the float64 reference. */
    public static final double GRAD = 1e-4;

    public static SplittableRandom random(String testCase) {
        return new SplittableRandom(BASE_SEED ^ testCase.hashCode() * 0x9E3779B97F4A7C15L);
    }

    public static String seedOf(String testCase) {
        return "-Dd4j.test.seed=" + BASE_SEED + " (case " + testCase + ")";
    }

    /** Uniform values in [lo, hi). */
    public static float[] uniform(SplittableRandom r, long n, double lo, double hi) {
        float[] a = new float[Math.toIntExact(n)];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) (lo + (hi - lo) * r.nextDouble());
        }
        return a;
    }

    public static long numel(long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    public static double[] doubles(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    public static float[] floats(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = (float) v[i];
        }
        return f;
    }

    /** An F32 tensor full of NaN, so that elements an op fails to write are caught. */
    public static Tensor poisoned(Backend be, TensorScope scope, long... shape) {
        Tensor t = be.empty(scope, DType.F32, shape);
        be.fill(t, Float.NaN);
        return t;
    }

    /** {@code Σ w_i y_i} in float64. */
    public static double dot(double[] w, double[] y) {
        double s = 0;
        for (int i = 0; i < w.length; i++) {
            s += w[i] * y[i];
        }
        return s;
    }

    /**
     * Central differences {@code (f(x + h e_i) − f(x − h e_i))/2h} of a float64 function at {@code x}, for every
     * coordinate ({@code x} is restored).
     */
    public static double[] numericGrad(ToDoubleFunction<double[]> f, double[] x, double h) {
        double[] g = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double keep = x[i];
            x[i] = keep + h;
            double up = f.applyAsDouble(x);
            x[i] = keep - h;
            double down = f.applyAsDouble(x);
            x[i] = keep;
            g[i] = (up - down) / (2 * h);
        }
        return g;
    }

    /** Asserts {@code ‖out − ref‖/‖ref‖ ≤ tol} (absolute when {@code ‖ref‖ = 0}); NaN anywhere fails. */
    public static void assertClose(String what, float[] out, double[] ref, double tol, String seed) {
        check(what, out, ref, abs(ref), tol, seed, "relative error");
    }

    /**
     * Asserts {@code ‖out − ref‖/‖scale‖ ≤ tol}: the error measured against the magnitude of the terms that were
     * summed ({@code scale_i ≥ |ref_i|}; for a dot product {@code Σ|x_k w_k|}, the bound of Higham, <i>Accuracy
     * and Stability of Numerical Algorithms</i>, 2nd ed., eq. 3.5), not against a result that cancellation may
     * make arbitrarily small. NaN anywhere fails.
     */
    public static void assertCloseScaled(String what, float[] out, double[] ref, double[] scale, double tol,
                                         String seed) {
        check(what, out, ref, scale, tol, seed, "error of the magnitude");
    }

    private static void check(String what, float[] out, double[] ref, double[] scale, double tol, String seed,
                              String measure) {
        if (out.length != ref.length || scale.length != ref.length) {
            fail(what + ": " + out.length + " values, expected " + ref.length + "; " + seed);
        }
        double num = 0;
        double den = 0;
        int worst = -1;
        double worstErr = -1;
        for (int i = 0; i < out.length; i++) {
            if (Float.isNaN(out[i]) || Double.isNaN(ref[i])) {
                fail(what + ": element " + i + " is " + out[i] + ", expected " + ref[i] + "; " + seed);
            }
            double d = out[i] - ref[i];
            num += d * d;
            den += scale[i] * scale[i];
            if (Math.abs(d) > worstErr) {
                worstErr = Math.abs(d);
                worst = i;
            }
        }
        double rel = den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
        if (!(rel <= tol)) {
            fail(String.format("%s: %s %.3g > %.1g (worst element %d: %s vs %s); %s", what, measure, rel, tol, worst,
                    worst < 0 ? "-" : out[worst], worst < 0 ? "-" : ref[worst], seed));
        }
    }

    /** Elementwise {@code |v_i|}. */
    public static double[] abs(double[] v) {
        double[] a = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            a[i] = Math.abs(v[i]);
        }
        return a;
    }

    /** Asserts the raw bits of two float arrays are equal. */
    public static void assertBitwise(String what, float[] expected, float[] actual, String seed) {
        if (expected.length != actual.length) {
            fail(what + ": " + actual.length + " values, expected " + expected.length + "; " + seed);
        }
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                fail(what + ": element " + i + " is " + actual[i] + ", expected " + expected[i] + "; " + seed);
            }
        }
    }

    public static String s(long... shape) {
        return Arrays.toString(shape);
    }
}
