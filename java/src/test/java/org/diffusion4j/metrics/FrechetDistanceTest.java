package org.diffusion4j.metrics;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.diffusion4j.metrics.MetricsTestSupport.meanAndStdError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The classifier-feature Fréchet distance from exact covariances against independently computed closed forms
 * (diagonal, rotated, 2 x 2, and a Denman–Beavers matrix square root of the non-symmetric product), from samples,
 * for identical and rank-deficient sets, and its input checks.
 */
class FrechetDistanceTest {

    // ---------------------------------------------------------------- small float64 linear algebra (oracles)

    static double[][] mul(double[][] a, double[][] b) {
        int n = a.length;
        int k = b.length;
        int m = b[0].length;
        double[][] c = new double[n][m];
        for (int i = 0; i < n; i++) {
            for (int p = 0; p < k; p++) {
                for (int j = 0; j < m; j++) {
                    c[i][j] += a[i][p] * b[p][j];
                }
            }
        }
        return c;
    }

    static double[][] transpose(double[][] a) {
        double[][] t = new double[a[0].length][a.length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[0].length; j++) {
                t[j][i] = a[i][j];
            }
        }
        return t;
    }

    static double[][] diag(double[] v) {
        double[][] d = new double[v.length][v.length];
        for (int i = 0; i < v.length; i++) {
            d[i][i] = v[i];
        }
        return d;
    }

    static double trace(double[][] a) {
        double t = 0;
        for (int i = 0; i < a.length; i++) {
            t += a[i][i];
        }
        return t;
    }

    /** A random orthogonal matrix: Gram–Schmidt of a Gaussian matrix. */
    static double[][] orthogonal(int d, SplittableRandom r) {
        double[][] q = new double[d][d];
        for (int c = 0; c < d; c++) {
            double[] v = new double[d];
            for (int i = 0; i < d; i++) {
                v[i] = r.nextGaussian();
            }
            for (int p = 0; p < c; p++) {
                double dot = 0;
                for (int i = 0; i < d; i++) {
                    dot += v[i] * q[i][p];
                }
                for (int i = 0; i < d; i++) {
                    v[i] -= dot * q[i][p];
                }
            }
            double norm = 0;
            for (double x : v) {
                norm += x * x;
            }
            norm = Math.sqrt(norm);
            for (int i = 0; i < d; i++) {
                q[i][c] = v[i] / norm;
            }
        }
        return q;
    }

    /** {@code Q diag(eig) Qᵀ}. */
    static double[][] spd(double[][] q, double[] eig) {
        return mul(mul(q, diag(eig)), transpose(q));
    }

    static double[][] inverse(double[][] a) {
        int n = a.length;
        double[][] m = new double[n][2 * n];
        for (int i = 0; i < n; i++) {
            System.arraycopy(a[i], 0, m[i], 0, n);
            m[i][n + i] = 1;
        }
        for (int c = 0; c < n; c++) {
            int piv = c;
            for (int r = c + 1; r < n; r++) {
                if (Math.abs(m[r][c]) > Math.abs(m[piv][c])) {
                    piv = r;
                }
            }
            double[] t = m[c];
            m[c] = m[piv];
            m[piv] = t;
            double p = m[c][c];
            for (int j = 0; j < 2 * n; j++) {
                m[c][j] /= p;
            }
            for (int r = 0; r < n; r++) {
                if (r != c && m[r][c] != 0) {
                    double f = m[r][c];
                    for (int j = 0; j < 2 * n; j++) {
                        m[r][j] -= f * m[c][j];
                    }
                }
            }
        }
        double[][] inv = new double[n][n];
        for (int i = 0; i < n; i++) {
            System.arraycopy(m[i], n, inv[i], 0, n);
        }
        return inv;
    }

    /**
     * {@code Tr(A^{1/2})} of a matrix with positive real eigenvalues by the Denman–Beavers iteration
     * {@code Y ← (Y + Z^{-1})/2, Z ← (Z + Y^{-1})/2}, {@code Y0 = A, Z0 = I}, which converges quadratically to
     * the principal square root (Denman and Beavers, Appl. Math. Comput. 2, 1976; Higham, "Functions of
     * Matrices", SIAM 2008, Ch. 6) — no symmetric eigendecomposition involved.
     */
    static double traceSqrtDenmanBeavers(double[][] a) {
        int n = a.length;
        double[][] y = a;
        double[][] z = diag(filled(n, 1));
        for (int it = 0; it < 60; it++) {
            double[][] yi = inverse(y);
            double[][] zi = inverse(z);
            double[][] y2 = new double[n][n];
            double[][] z2 = new double[n][n];
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    y2[i][j] = 0.5 * (y[i][j] + zi[i][j]);
                    z2[i][j] = 0.5 * (z[i][j] + yi[i][j]);
                }
            }
            y = y2;
            z = z2;
        }
        return trace(y);
    }

    static double[] filled(int n, double v) {
        double[] a = new double[n];
        java.util.Arrays.fill(a, v);
        return a;
    }

    static double[] randomVector(int d, SplittableRandom r, double lo, double hi) {
        return r.doubles(d, lo, hi).toArray();
    }

    static double meanTerm(double[] m1, double[] m2) {
        double s = 0;
        for (int i = 0; i < m1.length; i++) {
            s += (m1[i] - m2[i]) * (m1[i] - m2[i]);
        }
        return s;
    }

    // ---------------------------------------------------------------- closed forms

    /** Diagonal covariances: {@code FD = ‖μ1 − μ2‖² + Σ_i (√a_i − √b_i)²}; rotating both by one Q changes nothing. */
    @Test
    void diagonalAndJointlyRotatedCovariances() {
        SplittableRandom r = new SplittableRandom(1);
        int d = 9;
        double[] a = randomVector(d, r, 0.1, 3);
        double[] b = randomVector(d, r, 0.1, 3);
        double[] m1 = randomVector(d, r, -1, 1);
        double[] m2 = randomVector(d, r, -1, 1);
        double exact = meanTerm(m1, m2);
        for (int i = 0; i < d; i++) {
            exact += (Math.sqrt(a[i]) - Math.sqrt(b[i])) * (Math.sqrt(a[i]) - Math.sqrt(b[i]));
        }
        double fd = FrechetDistance.between(new GaussianFit(m1, diag(a), 0), new GaussianFit(m2, diag(b), 0));
        assertEquals(exact, fd, 1e-12 * exact);
        double[][] q = orthogonal(d, r);
        double[][] s1 = spd(q, a);
        double[][] s2 = spd(q, b);
        double rotated = FrechetDistance.between(new GaussianFit(m1, s1, 0), new GaussianFit(m2, s2, 0));
        assertEquals(exact, rotated, 1e-10 * exact);
        // means only: equal covariances give ‖μ1 − μ2‖²
        assertEquals(meanTerm(m1, m2),
                FrechetDistance.between(new GaussianFit(m1, s1, 0), new GaussianFit(m2, s1, 0)), 1e-10);
    }

    /**
     * 2 x 2, non-commuting: the eigenvalues {@code λ1, λ2 >= 0} of {@code Σ1 Σ2} give
     * {@code (√λ1 + √λ2)² = tr(Σ1 Σ2) + 2 √(det Σ1 det Σ2)}.
     */
    @Test
    void twoByTwoNonCommutingCovariances() {
        double[][] s1 = {{2.0, 0.9}, {0.9, 1.0}};
        double[][] s2 = {{0.5, -0.3}, {-0.3, 1.7}};
        double det1 = 2.0 * 1.0 - 0.81;
        double det2 = 0.5 * 1.7 - 0.09;
        double trProd = trace(mul(s1, s2));
        double trSqrt = Math.sqrt(trProd + 2 * Math.sqrt(det1 * det2));
        assertEquals(trSqrt, FrechetDistance.traceSqrtProduct(s1, s2), 1e-13);
        double[] m1 = {1, -2};
        double[] m2 = {0.5, 0.5};
        double exact = meanTerm(m1, m2) + trace(s1) + trace(s2) - 2 * trSqrt;
        assertEquals(exact, FrechetDistance.between(new GaussianFit(m1, s1, 0), new GaussianFit(m2, s2, 0)), 1e-12);
    }

    /** D = 7, random non-commuting SPD pair: the symmetric form against Denman–Beavers on Σ1 Σ2 itself. */
    @Test
    void generalCovariancesAgainstDenmanBeavers() {
        SplittableRandom r = new SplittableRandom(2);
        int d = 7;
        double[][] s1 = spd(orthogonal(d, r), randomVector(d, r, 0.05, 4));
        double[][] s2 = spd(orthogonal(d, r), randomVector(d, r, 0.05, 4));
        double want = traceSqrtDenmanBeavers(mul(s1, s2));
        assertEquals(want, FrechetDistance.traceSqrtProduct(s1, s2), 1e-10 * want);
        assertEquals(want, FrechetDistance.traceSqrtProduct(s2, s1), 1e-10 * want);   // Σ2 Σ1 is similar
    }

    @Test
    void matrixSquareRootIsSymmetricAndSquaresBack() {
        SplittableRandom r = new SplittableRandom(3);
        double[][] q = orthogonal(6, r);
        for (double[] eig : new double[][] {randomVector(6, r, 0.1, 5), {3, 2, 1, 0, 0, 0}}) {   // incl. singular
            double[][] s = spd(q, eig);
            double[][] root = FrechetDistance.sqrtPsd(s);
            double[][] sq = mul(root, root);
            for (int i = 0; i < 6; i++) {
                for (int j = 0; j < 6; j++) {
                    assertEquals(s[i][j], sq[i][j], 1e-12 * 5);
                    assertEquals(root[i][j], root[j][i], 0.0);
                }
            }
        }
    }

    // ---------------------------------------------------------------- from samples

    @Test
    void fitMatchesTheTwoPassFormula() {
        PointSet x = MetricsTestSupport.gaussian("x", 37, 5, new double[] {3, -1, 0, 2, 7}, 1.5, 4);
        GaussianFit fit = GaussianFit.of(x);
        double[] mean = new double[5];
        for (int i = 0; i < 37; i++) {
            for (int k = 0; k < 5; k++) {
                mean[k] += x.get(i, k) / 37.0;
            }
        }
        for (int j = 0; j < 5; j++) {
            assertEquals(mean[j], fit.mean()[j], 1e-13);
            for (int k = 0; k < 5; k++) {
                double c = 0;
                for (int i = 0; i < 37; i++) {
                    c += (x.get(i, j) - mean[j]) * (x.get(i, k) - mean[k]);
                }
                assertEquals(c / 36, fit.covariance()[j][k], 1e-12);
            }
        }
        assertEquals(37, fit.count());
        assertEquals(5, fit.dim());
    }

    /** One feature set against itself (and a copy): 0 up to eigensolver rounding, also when N &lt; D (singular Σ). */
    @Test
    void identicalSetsGiveZeroEvenWhenSingular() {
        for (int[] nd : new int[][] {{200, 10}, {5, 12}}) {
            PointSet x = MetricsTestSupport.gaussian("x", nd[0], nd[1], null, 2, 5);
            PointSet copy = PointSet.of("copy", x.toArray(), nd[0], nd[1]);
            double tr = 2 * trace(GaussianFit.of(x).covariance());
            assertEquals(0.0, FrechetDistance.compute(x, copy), 1e-10 * tr, "N=" + nd[0] + " D=" + nd[1]);
        }
        // two different singular fits: finite, non-negative, symmetric
        PointSet a = MetricsTestSupport.gaussian("a", 5, 12, null, 1, 6);
        PointSet b = MetricsTestSupport.gaussian("b", 7, 12, null, 1, 7);
        double ab = FrechetDistance.compute(a, b);
        assertTrue(ab > 0 && Double.isFinite(ab), "FD " + ab);
        assertEquals(ab, FrechetDistance.compute(b, a), 1e-10 * ab);
    }

    /**
     * Samples of {@code N(μ1, Σ1)} and {@code N(μ2, Σ2)} with known non-commuting {@code Σ}: the mean of FD over 10
     * seeds matches the closed form within 5 standard errors (from the spread over seeds). The estimator's bias
     * is {@code O(D/N)} (its mean term alone is biased by exactly {@code tr(Σ1 + Σ2)/N}, here 8e-4), far below the
     * tolerance.
     */
    @Test
    void samplesOfShiftedGaussiansGiveTheClosedForm() {
        SplittableRandom r = new SplittableRandom(8);
        int d = 4;
        int n = 20000;
        double[][] q1 = orthogonal(d, r);
        double[][] q2 = orthogonal(d, r);
        double[] e1 = {2, 1, 0.5, 0.25};
        double[] e2 = {0.3, 1.5, 1, 0.6};
        double[] m1 = {1, 0, 0, 0};
        double[] m2 = {0, 0.5, 0, -0.5};
        double exact = FrechetDistance.between(new GaussianFit(m1, spd(q1, e1), 0), new GaussianFit(m2, spd(q2, e2), 0));
        double[] values = new double[10];
        for (int s = 0; s < values.length; s++) {
            values[s] = FrechetDistance.compute(sample(q1, e1, m1, n, 100 + s), sample(q2, e2, m2, n, 200 + s));
        }
        double[] ms = meanAndStdError(values);
        assertEquals(exact, ms[0], 5 * ms[1], "mean " + ms[0] + " ± " + ms[1] + " vs " + exact);
        assertTrue(ms[1] < 0.02 * exact, "standard error " + ms[1] + " vs " + exact);
    }

    /** {@code x = μ + Q diag(√e) z}: covariance {@code Q diag(e) Qᵀ}. */
    private static PointSet sample(double[][] q, double[] e, double[] mu, int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int d = mu.length;
        float[] v = new float[n * d];
        double[] z = new double[d];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < d; k++) {
                z[k] = r.nextGaussian() * Math.sqrt(e[k]);
            }
            for (int j = 0; j < d; j++) {
                double s = mu[j];
                for (int k = 0; k < d; k++) {
                    s += q[j][k] * z[k];
                }
                v[i * d + j] = (float) s;
            }
        }
        return PointSet.of("sample", v, n, d);
    }

    // ---------------------------------------------------------------- bad inputs

    private static void assertRejects(String fragment, org.junit.jupiter.api.function.Executable call) {
        String m = assertThrows(IllegalArgumentException.class, call).getMessage();
        assertTrue(m.contains(fragment), () -> "'" + m + "' should contain '" + fragment + "'");
    }

    @Test
    void rejectsBadGaussians() {
        double[] m = {0, 0};
        assertRejects("mean[1] is NaN", () -> new GaussianFit(new double[] {0, Double.NaN}, diag(filled(2, 1)), 0));
        assertRejects("covariance[0][1] is Infinity",
                () -> new GaussianFit(m, new double[][] {{1, Double.POSITIVE_INFINITY}, {0, 1}}, 0));
        assertRejects("not symmetric: [0][1] = 0.5 but [1][0] = 0.2",
                () -> new GaussianFit(m, new double[][] {{1, 0.5}, {0.2, 1}}, 0));
        assertRejects("covariance[1][1] = -1.0 is a negative variance",
                () -> new GaussianFit(m, new double[][] {{1, 0}, {0, -1}}, 0));
        assertRejects("covariance has 3 rows but mean has D = 2", () -> new GaussianFit(m, new double[3][3], 0));
        assertRejects("covariance[1] has 3 columns", () -> new GaussianFit(m, new double[][] {{1, 0}, {0, 1, 2}}, 0));
        assertRejects("mean is empty", () -> new GaussianFit(new double[0], new double[0][0], 0));
        assertRejects("count must be >= 0, got -1", () -> new GaussianFit(m, diag(filled(2, 1)), -1));
        // symmetric with non-negative variances but an eigenvalue of -1: not a covariance
        GaussianFit indefinite = new GaussianFit(m, new double[][] {{1, 2}, {2, 1}}, 0);
        GaussianFit ok = new GaussianFit(m, diag(filled(2, 1)), 0);
        assertRejects("not positive semi-definite: it has eigenvalue -1.0", () -> FrechetDistance.between(indefinite, ok));
        assertRejects("not positive semi-definite: it has eigenvalue -1.0", () -> FrechetDistance.between(ok, indefinite));
        assertRejects("differ in dimension: 2 vs 3",
                () -> FrechetDistance.between(ok, new GaussianFit(new double[3], diag(filled(3, 1)), 0)));
        assertRejects("one has 1 point but a covariance needs at least 2",
                () -> GaussianFit.of(PointSet.of("one", new float[][] {{1, 2}})));
        assertRejects("sigma2[1][0] is NaN",
                () -> FrechetDistance.traceSqrtProduct(diag(filled(2, 1)), new double[][] {{1, 0}, {Double.NaN, 1}}));
        assertRejects("sigma1 is 2 x 2 but sigma2 is 3 x 3",
                () -> FrechetDistance.traceSqrtProduct(diag(filled(2, 1)), diag(filled(3, 1))));
    }
}
