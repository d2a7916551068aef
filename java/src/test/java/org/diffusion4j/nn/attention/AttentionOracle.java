package org.diffusion4j.nn.attention;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.SplittableRandom;

/**
 * Float64 reference of scaled dot-product attention for the tests: the textbook formulas (Vaswani et al. 2017,
 * eq. 1) evaluated row by row with the full score matrix, and their analytic gradient
 * ({@code dS_ij = P_ij·(dP_ij − Σ_k P_ik·dP_ik)}, the softmax Jacobian), plus the shared test helpers: fresh random
 * inputs (seeded by {@link org.diffusion4j.TestSeed}; failure messages name the seed), NaN
 * poisoning and the relative error {@code ‖x − ref‖/‖ref‖}.
 */
final class AttentionOracle {

    private AttentionOracle() {
    }

    static final long BASE_SEED = org.diffusion4j.TestSeed.BASE;

    static SplittableRandom random(String testCase) {
        return new SplittableRandom(BASE_SEED ^ testCase.hashCode() * 0x9E3779B97F4A7C15L);
    }

    static String seedOf(String testCase) {
        return "-Dd4j.test.seed=" + BASE_SEED + " (case " + testCase + ")";
    }

    /** The sizes of one case: {@code q [b, h, tq, dh]}, {@code k, v [b, h, tk, dh]}. */
    record Dims(int b, int h, int tq, int tk, int dh) {
        int qSize() {
            return b * h * tq * dh;
        }

        int kSize() {
            return b * h * tk * dh;
        }

        @Override
        public String toString() {
            return "[B=" + b + ", H=" + h + ", Tq=" + tq + ", Tk=" + tk + ", Dh=" + dh + "]";
        }
    }

    /** Forward results. */
    record Forward(double[] out, double[] lse) {
    }

    /** Gradients. */
    record Grads(double[] dq, double[] dk, double[] dv) {
    }

    /** {@code out = softmax(scale·q·kᵀ)·v}, {@code lse = ln Σ exp(scale·q·kᵀ)} in float64. */
    static Forward forward(Dims d, double[] q, double[] k, double[] v, double scale) {
        double[] out = new double[d.qSize()];
        double[] lse = new double[d.b() * d.h() * d.tq()];
        double[] s = new double[d.tk()];
        for (int bh = 0; bh < d.b() * d.h(); bh++) {
            int qb = bh * d.tq() * d.dh();
            int kb = bh * d.tk() * d.dh();
            for (int i = 0; i < d.tq(); i++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < d.tk(); j++) {
                    double dot = 0;
                    for (int x = 0; x < d.dh(); x++) {
                        dot += q[qb + i * d.dh() + x] * k[kb + j * d.dh() + x];
                    }
                    s[j] = scale * dot;
                    max = Math.max(max, s[j]);
                }
                double sum = 0;
                for (int j = 0; j < d.tk(); j++) {
                    s[j] = Math.exp(s[j] - max);
                    sum += s[j];
                }
                lse[bh * d.tq() + i] = max + Math.log(sum);
                for (int j = 0; j < d.tk(); j++) {
                    double p = s[j] / sum;
                    for (int x = 0; x < d.dh(); x++) {
                        out[qb + i * d.dh() + x] += p * v[kb + j * d.dh() + x];
                    }
                }
            }
        }
        return new Forward(out, lse);
    }

    /** The analytic gradient of {@code Σ dOut∘out} with respect to {@code q}, {@code k}, {@code v}, in float64. */
    static Grads backward(Dims d, double[] q, double[] k, double[] v, double[] dOut, double scale) {
        return backward(d, q, k, v, dOut, scale, false);
    }

    /**
     * The magnitudes that float rounding of the backward is proportional to (the sums of {@link #backward} with every
     * product taken in absolute value: {@code |dP_ij| = Σ|dO_i||v_j|}, {@code |dS_ij| = P_ij(|dP_ij| + Σ_l P_il|dP_il|)},
     * then {@code |dq| = scale Σ_j |dS_ij||k_j|}, {@code |dk| = scale Σ_i |dS_ij||q_i|}, {@code |dv| = Σ_i P_ij|dO_i|}):
     * a gradient that cancels to nearly 0 is judged against these, not against itself.
     */
    static Grads backwardMagnitude(Dims d, double[] q, double[] k, double[] v, double[] dOut, double scale) {
        return backward(d, q, k, v, dOut, scale, true);
    }

    private static Grads backward(Dims d, double[] q, double[] k, double[] v, double[] dOut, double scale,
                                  boolean magnitude) {
        double[] dq = new double[d.qSize()];
        double[] dk = new double[d.kSize()];
        double[] dv = new double[d.kSize()];
        double[] p = new double[d.tk()];
        double[] dp = new double[d.tk()];
        for (int bh = 0; bh < d.b() * d.h(); bh++) {
            int qb = bh * d.tq() * d.dh();
            int kb = bh * d.tk() * d.dh();
            for (int i = 0; i < d.tq(); i++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < d.tk(); j++) {
                    double dot = 0;
                    for (int x = 0; x < d.dh(); x++) {
                        dot += q[qb + i * d.dh() + x] * k[kb + j * d.dh() + x];
                    }
                    p[j] = scale * dot;
                    max = Math.max(max, p[j]);
                }
                double sum = 0;
                for (int j = 0; j < d.tk(); j++) {
                    p[j] = Math.exp(p[j] - max);
                    sum += p[j];
                }
                double pdp = 0;
                for (int j = 0; j < d.tk(); j++) {
                    p[j] /= sum;
                    double dot = 0;
                    for (int x = 0; x < d.dh(); x++) {
                        double t = dOut[qb + i * d.dh() + x] * v[kb + j * d.dh() + x];
                        dot += magnitude ? Math.abs(t) : t;
                    }
                    dp[j] = dot;                                            // dP_ij = dO_i·v_j
                    pdp += p[j] * dp[j];
                }
                for (int j = 0; j < d.tk(); j++) {
                    double ds = magnitude ? p[j] * (dp[j] + pdp) : p[j] * (dp[j] - pdp);   // softmax Jacobian
                    for (int x = 0; x < d.dh(); x++) {
                        double o = dOut[qb + i * d.dh() + x];
                        double kk = k[kb + j * d.dh() + x];
                        double qq = q[qb + i * d.dh() + x];
                        dv[kb + j * d.dh() + x] += p[j] * (magnitude ? Math.abs(o) : o);
                        dq[qb + i * d.dh() + x] += scale * ds * (magnitude ? Math.abs(kk) : kk);
                        dk[kb + j * d.dh() + x] += scale * ds * (magnitude ? Math.abs(qq) : qq);
                    }
                }
            }
        }
        return new Grads(dq, dk, dv);
    }

    /** {@code Σ dOut∘out} for the central differences. */
    static double loss(Dims d, double[] q, double[] k, double[] v, double[] dOut, double scale) {
        double[] out = forward(d, q, k, v, scale).out();
        double sum = 0;
        for (int i = 0; i < out.length; i++) {
            sum += dOut[i] * out[i];
        }
        return sum;
    }

    /** Central differences {@code (L(x + h) − L(x − h))/(2h)} of {@link #loss} for every element of {@code x}. */
    static double[] finiteDifferences(Dims d, double[] q, double[] k, double[] v, double[] dOut, double scale,
                                      double[] x, double h) {
        double[] g = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double keep = x[i];
            x[i] = keep + h;
            double up = loss(d, q, k, v, dOut, scale);
            x[i] = keep - h;
            double down = loss(d, q, k, v, dOut, scale);
            x[i] = keep;
            g[i] = (up - down) / (2 * h);
        }
        return g;
    }

    // ---------------------------------------------------------------- helpers

    /** Standard normals times {@code sigma}, rounded to float (so the oracle sees the very values the op sees). */
    static float[] normal(SplittableRandom r, int n, double sigma) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (sigma * r.nextGaussian());
        }
        return a;
    }

    static double[] widen(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }

    /** An F32 tensor full of NaN, so that elements an op fails to write are caught. */
    static Tensor poisoned(Backend be, TensorScope scope, long... shape) {
        Tensor t = be.empty(scope, DType.F32, shape);
        be.fill(t, Float.NaN);
        return t;
    }

    /** {@code ‖x − ref‖/‖ref‖} (NaN anywhere gives NaN, which fails every {@code <} check). */
    static double relErr(float[] x, double[] ref) {
        return scaledErr(x, ref, ref);
    }

    /** {@code ‖x − ref‖/‖scale‖}: the error against a magnitude {@code scale ≥ |ref|} (NaN anywhere gives NaN). */
    static double scaledErr(float[] x, double[] ref, double[] scale) {
        return ratio(widen(x), ref, scale, 0);
    }

    /**
     * {@code ‖x − ref‖/max(‖ref‖, floor·√n)}: relative error, but for a gradient that cancels to nearly 0 measured
     * against {@code floor} per element (the scale of gradients of unit-normal inputs is ~1).
     */
    static double flooredErr(float[] x, double[] ref, double floor) {
        return ratio(widen(x), ref, ref, floor);
    }

    /** {@link #flooredErr(float[], double[], double)} for a float64 {@code x}. */
    static double flooredErr(double[] x, double[] ref, double floor) {
        return ratio(x, ref, ref, floor);
    }

    static double relErr(double[] x, double[] ref) {
        return ratio(x, ref, ref, 0);
    }

    /** {@code ‖x − ref‖/max(‖scale‖, floor·√n, MIN_NORMAL)}. */
    private static double ratio(double[] x, double[] ref, double[] scale, double floor) {
        if (x.length != ref.length || scale.length != ref.length) {
            throw new IllegalArgumentException("lengths " + x.length + ", " + ref.length + ", " + scale.length);
        }
        double num = 0;
        double den = 0;
        for (int i = 0; i < x.length; i++) {
            double e = x[i] - ref[i];
            num += e * e;
            den += scale[i] * scale[i];
        }
        return Math.sqrt(num) / Math.max(Math.max(Math.sqrt(den), floor * Math.sqrt(Math.max(1, x.length))),
                Double.MIN_NORMAL);
    }
}
