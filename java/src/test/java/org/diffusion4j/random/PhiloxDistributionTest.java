package org.diffusion4j.random;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Statistical checks of the generator with fixed seeds: moments and tails of 10^6 normals within 5 standard
 * errors, Kolmogorov–Smirnov distances to N(0, 1) and U(0, 1] below the 0.1% critical value, per lane and
 * overall, a 2-D chi-square of consecutive uniforms, and correlations between streams, seeds and lags within
 * 5 / sqrt(n).
 */
class PhiloxDistributionTest {

    private static final int N = 1_000_000;
    /** Asymptotic Kolmogorov–Smirnov critical value at the 0.1% level: sqrt(-ln(0.0005) / 2) / sqrt(n). */
    private static final double KS_001 = Math.sqrt(-Math.log(0.0005) / 2);

    private static float[] normals(long seed, long stream, long first, int n) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(4L * n, 64);
            Philox.fillNormal(seg, n, seed, stream, first);
            return seg.toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    private static float[] uniforms(long seed, long stream, long first, int n) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(4L * n, 64);
            Philox.fillUniform(seg, n, seed, stream, first);
            return seg.toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    /** Standard normal CDF: 1/2 + phi(x) * sum_k x^(2k+1) / (1 * 3 * ... * (2k+1)), about 1e-15 absolute. */
    static double phi(double x) {
        double term = x;
        double sum = x;
        double q = x * x;
        for (int k = 3; Math.abs(term) > 1e-17 * Math.abs(sum) && k < 2000; k += 2) {
            term *= q / k;
            sum += term;
        }
        return Math.min(1, Math.max(0, 0.5 + sum * Math.exp(-0.5 * q - 0.5 * Math.log(2 * Math.PI))));
    }

    /** Kolmogorov–Smirnov distance of the sample to the CDF {@code cdf}. */
    private static double ks(float[] sample, java.util.function.DoubleUnaryOperator cdf) {
        double[] x = new double[sample.length];
        for (int i = 0; i < x.length; i++) {
            x[i] = sample[i];
        }
        Arrays.sort(x);
        int n = x.length;
        double d = 0;
        for (int i = 0; i < n; i++) {
            double f = cdf.applyAsDouble(x[i]);
            d = Math.max(d, Math.max((i + 1.0) / n - f, f - (double) i / n));
        }
        return d;
    }

    private static float[] lane(float[] v, int lane) {
        float[] out = new float[v.length / 4];
        for (int i = 0; i < out.length; i++) {
            out[i] = v[4 * i + lane];
        }
        return out;
    }

    private static double correlation(float[] x, float[] y, int lag) {
        int n = Math.min(x.length, y.length - lag);
        double sx = 0;
        double sy = 0;
        double sxx = 0;
        double syy = 0;
        double sxy = 0;
        for (int i = 0; i < n; i++) {
            double a = x[i];
            double b = y[i + lag];
            sx += a;
            sy += b;
            sxx += a * a;
            syy += b * b;
            sxy += a * b;
        }
        double cov = sxy / n - (sx / n) * (sy / n);
        return cov / Math.sqrt((sxx / n - (sx / n) * (sx / n)) * (syy / n - (sy / n) * (sy / n)));
    }

    @Test
    void phiIsTheNormalCdf() {
        assertTrue(Math.abs(phi(0) - 0.5) < 1e-16);
        assertTrue(Math.abs(phi(1.959963984540054) - 0.975) < 1e-14);
        assertTrue(Math.abs(phi(-3) - 0.0013498980316301) < 1e-14);
    }

    @Test
    void normalMomentsAndTailsMatchNZeroOne() {
        float[] z = normals(20261101L, 0, 0, N);
        double m1 = 0;
        for (float v : z) {
            m1 += v;
        }
        m1 /= N;
        double m2 = 0;
        double m3 = 0;
        double m4 = 0;
        int beyond3 = 0;
        int beyond4 = 0;
        for (float v : z) {
            double d = v - m1;
            m2 += d * d;
            m3 += d * d * d;
            m4 += d * d * d * d;
            beyond3 += Math.abs(v) > 3 ? 1 : 0;
            beyond4 += Math.abs(v) > 4 ? 1 : 0;
            assertTrue(Math.abs(v) <= Philox.MAX_ABS_NORMAL);
        }
        m2 /= N;
        m3 /= N;
        m4 /= N;
        double skew = m3 / Math.pow(m2, 1.5);
        double exKurt = m4 / (m2 * m2) - 3;
        // standard errors of mean, variance, skewness, excess kurtosis for N(0, 1): 1, sqrt 2, sqrt 6, sqrt 24 / sqrt n
        double rn = Math.sqrt(N);
        assertTrue(Math.abs(m1) < 5 / rn, "mean " + m1);
        assertTrue(Math.abs(m2 - 1) < 5 * Math.sqrt(2) / rn, "variance " + m2);
        assertTrue(Math.abs(skew) < 5 * Math.sqrt(6) / rn, "skewness " + skew);
        assertTrue(Math.abs(exKurt) < 5 * Math.sqrt(24) / rn, "excess kurtosis " + exKurt);
        double p3 = 2 * phi(-3);
        double p4 = 2 * phi(-4);
        assertTrue(Math.abs(beyond3 - N * p3) < 5 * Math.sqrt(N * p3), "|z| > 3: " + beyond3 + " vs " + N * p3);
        assertTrue(Math.abs(beyond4 - N * p4) < 5 * Math.sqrt(N * p4), "|z| > 4: " + beyond4 + " vs " + N * p4);
    }

    @Test
    void normalsPassKolmogorovSmirnovOverallAndPerLane() {
        float[] z = normals(7, 11, 3, N);
        double d = ks(z, PhiloxDistributionTest::phi);
        assertTrue(d < KS_001 / Math.sqrt(N), "KS distance " + d + " vs critical " + KS_001 / Math.sqrt(N));
        for (int l = 0; l < 4; l++) {
            float[] zl = lane(z, l);
            double dl = ks(zl, PhiloxDistributionTest::phi);
            assertTrue(dl < KS_001 / Math.sqrt(zl.length), "lane " + l + " KS distance " + dl);
        }
    }

    @Test
    void uniformsPassKolmogorovSmirnovAndLieOnTheGrid() {
        float[] u = uniforms(99, 1, 0, N);
        for (float v : u) {
            assertTrue(v > 0 && v <= 1 && v * 16777216f == Math.rint(v * 16777216f), "uniform " + v);
        }
        double d = ks(u, x -> Math.min(1, Math.max(0, x)));
        assertTrue(d < KS_001 / Math.sqrt(N), "KS distance " + d);
        for (int l = 0; l < 4; l++) {
            float[] ul = lane(u, l);
            double dl = ks(ul, x -> Math.min(1, Math.max(0, x)));
            assertTrue(dl < KS_001 / Math.sqrt(ul.length), "lane " + l + " KS distance " + dl);
        }
    }

    @Test
    void consecutiveUniformPairsFillTheSquareEvenly() {
        float[] u = uniforms(3, 4, 5, N);
        int cells = 16;
        long[] count = new long[cells * cells];
        for (int i = 0; i + 1 < N; i += 2) {
            int cx = Math.min(cells - 1, (int) ((u[i] - 0x1p-25f) * cells));
            int cy = Math.min(cells - 1, (int) ((u[i + 1] - 0x1p-25f) * cells));
            count[cx * cells + cy]++;
        }
        double expected = (N / 2.0) / (cells * cells);
        double chi2 = 0;
        for (long c : count) {
            chi2 += (c - expected) * (c - expected) / expected;
        }
        int df = cells * cells - 1;
        // 0.1% critical value by Wilson–Hilferty: df (1 - 2/(9 df) + 3.0902 sqrt(2/(9 df)))^3
        double h = 2.0 / (9 * df);
        double critical = df * Math.pow(1 - h + 3.0902 * Math.sqrt(h), 3);
        assertTrue(chi2 < critical, "chi2 " + chi2 + " vs " + critical);
    }

    @Test
    void streamsSeedsAndLagsAreUncorrelated() {
        int n = 250_000;
        double bound = 5 / Math.sqrt(n);
        float[] base = normals(1234, 0, 0, n);
        float[][] others = {
            normals(1234, 1, 0, n),          // next stream
            normals(1234, 1L << 32, 0, n),   // stream differing in the high word only
            normals(1235, 0, 0, n),          // next seed
            normals(1234 | 1L << 32, 0, 0, n), // seed differing in the high word only
            normals(0, 1234, 0, n),          // seed and stream swapped
        };
        for (int k = 0; k < others.length; k++) {
            double r = correlation(base, others[k], 0);
            assertTrue(Math.abs(r) < bound, "case " + k + ": correlation " + r);
        }
        for (int lag : new int[] {1, 2, 3, 4, 5, 8}) {
            double r = correlation(base, base, lag);
            assertTrue(Math.abs(r) < bound, "lag " + lag + ": correlation " + r);
        }
        // the two normals of one Box–Muller pair are uncorrelated, also in their squares
        float[] even = new float[n / 2];
        float[] odd = new float[n / 2];
        for (int i = 0; i < n / 2; i++) {
            even[i] = base[2 * i];
            odd[i] = base[2 * i + 1];
        }
        assertTrue(Math.abs(correlation(even, odd, 0)) < 5 / Math.sqrt(n / 2.0));
        for (int i = 0; i < n / 2; i++) {
            even[i] *= even[i];
            odd[i] *= odd[i];
        }
        assertTrue(Math.abs(correlation(even, odd, 0)) < 5 / Math.sqrt(n / 2.0));
        float[] u1 = uniforms(1234, 0, 0, n);
        float[] u2 = uniforms(1234, 1, 0, n);
        assertTrue(Math.abs(correlation(u1, u2, 0)) < bound);
        assertTrue(Math.abs(correlation(u1, u1, 1)) < bound);
    }
}
