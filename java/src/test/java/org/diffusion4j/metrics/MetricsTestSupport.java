package org.diffusion4j.metrics;

import java.util.SplittableRandom;

/**
 * Shared by the metric tests: Gaussian point sets, float64 brute-force oracles written independently of the
 * library (no symmetry tricks, no blocking), the normal CDF, and the small statistics behind the tolerances.
 */
final class MetricsTestSupport {

    private MetricsTestSupport() {
    }

    /** {@code n} points of {@code N(mean, scale² I_d)}: {@code x = mean + scale z}, z from {@code seed}. */
    static PointSet gaussian(String name, int n, int d, double[] mean, double scale, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n * d];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < d; k++) {
                v[i * d + k] = (float) ((mean == null ? 0 : mean[k]) + scale * r.nextGaussian());
            }
        }
        return PointSet.of(name, v, n, d);
    }

    /** The same points moved by {@code shift [D]} (computed in float64, stored as float). */
    static PointSet shifted(PointSet p, double[] shift, String name) {
        int n = p.size();
        int d = p.dim();
        float[] v = p.toArray();
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < d; k++) {
                v[i * d + k] = (float) (v[i * d + k] + shift[k]);
            }
        }
        return PointSet.of(name, v, n, d);
    }

    static double[] constant(int d, double value) {
        double[] m = new double[d];
        java.util.Arrays.fill(m, value);
        return m;
    }

    static double dist2(PointSet a, int i, PointSet b, int j) {
        double s = 0;
        for (int k = 0; k < a.dim(); k++) {
            double t = (double) a.get(i, k) - b.get(j, k);
            s += t * t;
        }
        return s;
    }

    /** {@code Σ_ij exp(−d²/(2h²))}, every ordered pair. */
    static double rbfSumOracle(PointSet a, PointSet b, double h) {
        double s = 0;
        for (int i = 0; i < a.size(); i++) {
            for (int j = 0; j < b.size(); j++) {
                s += Math.exp(-dist2(a, i, b, j) / (2 * h * h));
            }
        }
        return s;
    }

    /** {@code Σ_ij d}, every ordered pair. */
    static double distanceSumOracle(PointSet a, PointSet b) {
        double s = 0;
        for (int i = 0; i < a.size(); i++) {
            for (int j = 0; j < b.size(); j++) {
                s += Math.sqrt(dist2(a, i, b, j));
            }
        }
        return s;
    }

    /** {@code min_j d(a_i, b_j)} for each i. */
    static double[] nearestOracle(PointSet a, PointSet b) {
        double[] out = new double[a.size()];
        for (int i = 0; i < a.size(); i++) {
            double best = Double.POSITIVE_INFINITY;
            for (int j = 0; j < b.size(); j++) {
                best = Math.min(best, dist2(a, i, b, j));
            }
            out[i] = Math.sqrt(best);
        }
        return out;
    }

    /**
     * {@code erfc(x)} with fractional error below 1.2e-7 everywhere: the Chebyshev-fitted form of Press,
     * Teukolsky, Vetterling and Flannery, Numerical Recipes in C, 2nd ed., Sec. 6.2 ({@code erfcc}).
     */
    static double erfc(double x) {
        double z = Math.abs(x);
        double t = 1 / (1 + 0.5 * z);
        double ans = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
                + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
                + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? ans : 2 - ans;
    }

    /** Standard normal CDF {@code Φ(x) = erfc(−x/√2)/2}. */
    static double phi(double x) {
        return 0.5 * erfc(-x / Math.sqrt(2));
    }

    /** {@code E|Z|} for {@code Z ~ N(mu, s²)}: {@code s √(2/π) exp(−mu²/(2s²)) + mu (1 − 2Φ(−mu/s))}. */
    static double meanAbsNormal(double mu, double s) {
        return s * Math.sqrt(2 / Math.PI) * Math.exp(-mu * mu / (2 * s * s)) + mu * (1 - 2 * phi(-mu / s));
    }

    /** Mean and standard error of the mean of {@code v}. */
    static double[] meanAndStdError(double[] v) {
        double m = 0;
        for (double x : v) {
            m += x;
        }
        m /= v.length;
        double ss = 0;
        for (double x : v) {
            ss += (x - m) * (x - m);
        }
        double sd = Math.sqrt(ss / (v.length - 1));
        return new double[] {m, sd / Math.sqrt(v.length)};
    }

    static double relErr(double got, double want) {
        return Math.abs(got - want) / Math.max(Math.abs(want), 1e-300);
    }
}
