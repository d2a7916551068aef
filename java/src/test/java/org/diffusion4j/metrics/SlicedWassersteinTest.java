package org.diffusion4j.metrics;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.diffusion4j.metrics.MetricsTestSupport.gaussian;
import static org.diffusion4j.metrics.MetricsTestSupport.phi;
import static org.diffusion4j.metrics.MetricsTestSupport.shifted;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Sliced Wasserstein: the exact 1-D distance for unequal counts against independent oracles, the closed forms
 * for shifted Gaussians, and the sampling-noise bounds that the tolerances come from.
 *
 * <p><b>Noise bound used below</b> (for {@code p = 1}, unit-variance Gaussians). For a projection direction
 * {@code θ}, the triangle inequality gives {@code |W1(μ_N^θ, ν_M^θ) − W1(μ^θ, ν^θ)| <= W1(μ_N^θ, μ^θ) + W1(ν_M^θ,
 * ν^θ)}, where {@code W1(μ^θ, ν^θ) = |⟨m, θ⟩|} for a shift {@code m}. (i) Mean: {@code W1(μ_N, μ) = ∫|F_N − F|}
 * and {@code E|F_N(t) − F(t)| <= √(F(1−F)/N)} (Jensen), so {@code E W1(μ_N, μ) <= J/√N} with
 * {@code J = ∫ √(Φ(1−Φ)) dt} for a unit normal projection. (ii) Concentration: moving the samples changes
 * {@code W1(μ_N, μ)} by at most {@code (1/N) Σ|x_i − x'_i| <= ‖x − x'‖/√N}, and projections are 1-Lipschitz, so
 * the mean over directions of both error terms is a {@code √(1/N + 1/M)}-Lipschitz function of standard
 * Gaussians; by the Gaussian concentration inequality (Tsirelson–Ibragimov–Sudakov; e.g. Boucheron, Lugosi and
 * Massart, "Concentration Inequalities", 2013, Thm. 5.6) it exceeds its mean by {@code t} with probability at most
 * {@code exp(−t² / (2 (1/N + 1/M)))}. With {@code δ = 1e-9}: tolerance
 * {@code J (1/√N + 1/√M) + √(2 ln(1/δ) (1/N + 1/M))}.
 */
class SlicedWassersteinTest {

    private static final double DELTA = 1e-9;

    /** {@code J = ∫ √(Φ(t)(1 − Φ(t))) dt}, Simpson's rule on [−12, 12] (the tails beyond add below 1e-15). */
    private static double jIntegral() {
        int steps = 24000;
        double h = 24.0 / steps;
        double s = 0;
        for (int i = 0; i <= steps; i++) {
            double t = -12 + i * h;
            double f = Math.sqrt(phi(t) * (1 - phi(t)));
            s += f * (i == 0 || i == steps ? 1 : i % 2 == 1 ? 4 : 2);
        }
        return s * h / 3;
    }

    private static double samplingTolerance(int n, int m) {
        return jIntegral() * (1 / Math.sqrt(n) + 1 / Math.sqrt(m)) + Math.sqrt(2 * Math.log(1 / DELTA) * (1.0 / n + 1.0 / m));
    }

    /** {@code E|θ_1|} for {@code θ} uniform on {@code S^{D−1}}: {@code Γ(D/2) / (√π Γ((D+1)/2))}. */
    static double meanAbsCoordinate(int d) {
        // θ_1 has density ∝ (1 − t²)^{(D−3)/2} on [−1, 1] (e.g. Fang, Kotz and Ng, "Symmetric Multivariate and
        // Related Distributions", 1990); integrating 2t(1 − t²)^{(D−3)/2} over [0, 1] gives 2/(D−1),
        // normalised by B(1/2, (D−1)/2), which simplifies to the ratio of gammas. r(D) = Γ(D/2)/Γ((D+1)/2)
        // obeys r(1) = √π, r(2) = 2/√π, r(D + 2) = r(D) · D/(D + 1).
        double r = d % 2 == 1 ? Math.sqrt(Math.PI) : 2 / Math.sqrt(Math.PI);
        for (int k = d % 2 == 1 ? 1 : 2; k < d; k += 2) {
            r *= (double) k / (k + 1);
        }
        return r / Math.sqrt(Math.PI);
    }

    /**
     * Found by an adversarial trial: {@code |d|^p} overflowed (p = 20 at a scale of 1e20: Infinity) and underflowed
     * (at 1e-30: 0). The distance is positively homogeneous, {@code SW_p(λx, λy) = λ SW_p(x, y)}; it now holds at
     * both extremes and for p = 1e6 (where SW_p approaches the largest matched difference), unequal sizes included.
     */
    @Test
    void extremeScalesAndOrdersStayHomogeneousAndFinite() {
        PointSet x = MetricsTestSupport.gaussian("x", 40, 3, null, 1, 5);
        PointSet y = MetricsTestSupport.gaussian("y", 29, 3, MetricsTestSupport.constant(3, 0.4), 1.3, 6);
        for (double p : new double[] {1, 2, 20, 1e6}) {
            SlicedWasserstein.Options o = new SlicedWasserstein.Options(16, p, 2);
            SlicedWasserstein.Result unit = SlicedWasserstein.compute(x, y, o);
            assertTrue(unit.distance() > 0 && Double.isFinite(unit.distance()), "p = " + p + ": " + unit);
            for (double scale : new double[] {1e20, 1e-30}) {
                SlicedWasserstein.Result r = SlicedWasserstein.compute(scaled(x, scale), scaled(y, scale), o);
                assertEquals(unit.distance() * scale, r.distance(), 1e-5 * unit.distance() * scale,
                        "p = " + p + ", scale " + scale);
                assertEquals(unit.meanSliceDistance() * scale, r.meanSliceDistance(),
                        1e-5 * unit.meanSliceDistance() * scale, "p = " + p + ", scale " + scale);
            }
        }
        double want = (Math.pow(1e10, 20) + Math.pow(2e10, 20)) / 2;                  // 5.2e205: representable
        assertEquals(want, SlicedWasserstein.wassersteinPow1d(new double[] {0, 1e10}, new double[] {3e10, 1e10}, 20),
                1e-12 * want, "W_p^p itself");
    }

    private static PointSet scaled(PointSet p, double s) {
        float[] v = p.toArray();
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (v[i] * s);
        }
        return PointSet.of(p.name(), v, p.size(), p.dim());
    }

    @Test
    void meanAbsCoordinateHasItsKnownSmallCases() {
        assertEquals(1.0, meanAbsCoordinate(1), 1e-15);              // θ = ±1
        assertEquals(2 / Math.PI, meanAbsCoordinate(2), 1e-15);      // E|cos φ|
        assertEquals(0.5, meanAbsCoordinate(3), 1e-15);              // Archimedes: θ_1 uniform on [−1, 1]
        // large D: √D θ_1 → N(0, 1), E|N(0,1)| = √(2/π)
        assertEquals(Math.sqrt(2 / Math.PI), meanAbsCoordinate(4001) * Math.sqrt(4001), 1e-3);
    }

    /**
     * Oracle for unequal counts: repeating each value of {@code a [N]} M times and of {@code b [M]} N times gives
     * two sets of N·M equally weighted atoms with the same distributions, where W_p^p is the mean of
     * |sorted − sorted|^p.
     */
    private static double replicatedOracle(double[] a, double[] b, double p) {
        int n = a.length;
        int m = b.length;
        double[] ra = new double[n * m];
        double[] rb = new double[n * m];
        for (int i = 0; i < n * m; i++) {
            ra[i] = a[i / m];
            rb[i] = b[i / n];
        }
        Arrays.sort(ra);
        Arrays.sort(rb);
        double s = 0;
        for (int i = 0; i < ra.length; i++) {
            s += Math.pow(Math.abs(ra[i] - rb[i]), p);
        }
        return s / ra.length;
    }

    /** {@code W1 = ∫ |F_a(t) − G_b(t)| dt}, the CDF form, on the merged sorted values. */
    private static double cdfFormW1(double[] a, double[] b) {
        double[] all = new double[a.length + b.length];
        System.arraycopy(a, 0, all, 0, a.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        Arrays.sort(all);
        double s = 0;
        for (int k = 0; k + 1 < all.length; k++) {
            double t = all[k];
            double fa = Arrays.stream(a).filter(v -> v <= t).count() / (double) a.length;
            double fb = Arrays.stream(b).filter(v -> v <= t).count() / (double) b.length;
            s += Math.abs(fa - fb) * (all[k + 1] - t);
        }
        return s;
    }

    @Test
    void oneDimensionalDistanceIsExactForUnequalCounts() {
        SplittableRandom r = new SplittableRandom(11);
        int[][] sizes = {{7, 5}, {13, 13}, {1, 9}, {31, 17}, {40, 24}};
        for (int[] nm : sizes) {
            double[] a = r.doubles(nm[0], -2, 3).toArray();
            double[] b = r.doubles(nm[1], -1, 5).map(v -> v * v).toArray();
            for (double p : new double[] {1, 2, 3.5}) {
                double got = SlicedWasserstein.wassersteinPow1d(a, b, p);
                double want = replicatedOracle(a, b, p);
                assertEquals(want, got, 1e-12 * want, "N=" + nm[0] + " M=" + nm[1] + " p=" + p);
            }
            assertEquals(cdfFormW1(a, b), SlicedWasserstein.wassersteinPow1d(a, b, 1), 1e-12);
        }
    }

    /** For N = M the sorted pairing is the optimal assignment: brute force over all 6! assignments. */
    @Test
    void sortedPairingIsTheOptimalAssignment() {
        SplittableRandom r = new SplittableRandom(12);
        double[] a = r.doubles(6, -3, 3).toArray();
        double[] b = r.doubles(6, -1, 4).toArray();
        for (double p : new double[] {1, 2, 3}) {
            double best = bestAssignment(a, b, p, new int[6], new boolean[6], 0);
            assertEquals(best / 6, SlicedWasserstein.wassersteinPow1d(a, b, p), 1e-12);
        }
    }

    private static double bestAssignment(double[] a, double[] b, double p, int[] perm, boolean[] used, int k) {
        if (k == a.length) {
            double s = 0;
            for (int i = 0; i < a.length; i++) {
                s += Math.pow(Math.abs(a[i] - b[perm[i]]), p);
            }
            return s;
        }
        double best = Double.POSITIVE_INFINITY;
        for (int j = 0; j < b.length; j++) {
            if (!used[j]) {
                used[j] = true;
                perm[k] = j;
                best = Math.min(best, bestAssignment(a, b, p, perm, used, k + 1));
                used[j] = false;
            }
        }
        return best;
    }

    @Test
    void identicalSetsGiveZero() {
        PointSet x = gaussian("x", 301, 7, null, 2, 13);
        PointSet copy = PointSet.of("copy", x.toArray(), 301, 7);
        for (PointSet y : new PointSet[] {x, copy}) {
            SlicedWasserstein.Result r = SlicedWasserstein.compute(x, y, new SlicedWasserstein.Options(64, 2, 5));
            assertEquals(0.0, r.distance());
            assertEquals(0.0, r.meanSliceDistance());
        }
    }

    @Test
    void directionsAreUnitDeterministicAndSeeded() {
        double[][] t = SlicedWasserstein.directions(50, 9, 7);
        for (double[] row : t) {
            double n2 = 0;
            for (double v : row) {
                n2 += v * v;
            }
            assertEquals(1.0, n2, 1e-14);
        }
        assertTrue(Arrays.deepEquals(t, SlicedWasserstein.directions(50, 9, 7)));
        assertTrue(!Arrays.deepEquals(t, SlicedWasserstein.directions(50, 9, 8)));
    }

    /**
     * A set against its own translate by {@code m}: every slice is a translate by {@code ⟨m, θ⟩}, so
     * {@code SW_p = (mean_l |⟨m, θ_l⟩|^p)^{1/p}} exactly (float rounding of the moved points aside), and over the
     * sphere {@code E|⟨m, θ⟩| = ‖m‖ E|θ_1|}, {@code E⟨m, θ⟩² = ‖m‖²/D}. Monte Carlo error over {@code L} directions
     * by Bernstein's inequality: the slice values {@code v = |⟨m, θ⟩|^p} lie in {@code [0, b]},
     * {@code b = ‖m‖^p}, so {@code Var v <= E[v²] <= b E[v]}, and the mean of {@code L} of them is within
     * {@code √(2 b E[v] ln(2/δ)/L) + 2 b ln(2/δ)/(3L)} of {@code E[v]} with probability {@code >= 1 − δ}.
     */
    @Test
    void translatesMatchTheSphereClosedForm() {
        int d = 6;
        int l = 32768;
        double[] m = new double[d];
        SplittableRandom r = new SplittableRandom(14);
        double norm2 = 0;
        for (int k = 0; k < d; k++) {
            m[k] = r.nextDouble(-1, 1);
            norm2 += m[k] * m[k];
        }
        double norm = Math.sqrt(norm2);
        PointSet x = gaussian("x", 24, d, null, 1, 15);
        PointSet y = shifted(x, m, "y");
        double[][] theta = SlicedWasserstein.directions(l, d, 3);
        for (double p : new double[] {1, 2}) {
            SlicedWasserstein.Result res = SlicedWasserstein.compute(x, y, new SlicedWasserstein.Options(l, p, 3));
            double sum = 0;
            for (double[] th : theta) {
                double dot = 0;
                for (int k = 0; k < d; k++) {
                    dot += m[k] * th[k];
                }
                sum += Math.pow(Math.abs(dot), p);
            }
            double exact = Math.pow(sum / l, 1 / p);
            assertEquals(exact, res.distance(), 1e-5 * exact, "p=" + p);
            double mean = p == 1 ? norm * meanAbsCoordinate(d) : norm2 / d;   // E |⟨m, θ⟩|^p
            double b = Math.pow(norm, p);
            double lg = Math.log(2 / DELTA);
            double tol = Math.sqrt(2 * b * mean * lg / l) + 2 * b * lg / (3.0 * l);
            assertEquals(mean, sum / l, tol, "Monte Carlo over directions, p=" + p);
            assertTrue(tol < 0.1 * mean, "the bound is informative: " + tol + " vs " + mean);
        }
    }

    /** 1-D N(0, 1) vs N(m, 1), unequal counts: W_1 → |m| within the derived sampling bound. */
    @Test
    void oneDimensionalNormalsGiveTheShift() {
        int n = 20000;
        int mCount = 13001;
        double tol = samplingTolerance(n, mCount);
        assertTrue(tol < 0.1, "tolerance " + tol);
        PointSet x = gaussian("x", n, 1, null, 1, 21);
        for (double shift : new double[] {0, 0.5, 2}) {
            PointSet y = gaussian("y", mCount, 1, new double[] {shift}, 1, 22);
            SlicedWasserstein.Result res = SlicedWasserstein.compute(x, y, new SlicedWasserstein.Options(4, 1, 0));
            assertEquals(shift, res.distance(), tol, "shift " + shift);
            assertEquals(res.distance(), res.meanSliceDistance(), 1e-12);
        }
    }

    /** D = 8, isotropic unit Gaussians shifted by m: SW_1 → mean_l |⟨m, θ_l⟩| within the sampling bound. */
    @Test
    void shiftedGaussiansInEightDimensions() {
        int d = 8;
        int n = 20000;
        double[] m = {0.9, -0.4, 0.3, 0, 0.5, -0.8, 0.1, 0.2};
        PointSet x = gaussian("x", n, d, null, 1, 31);
        PointSet y = gaussian("y", n, d, m, 1, 32);
        SlicedWasserstein.Options o = new SlicedWasserstein.Options(256, 1, 9);
        SlicedWasserstein.Result res = SlicedWasserstein.compute(x, y, o);
        double target = 0;
        for (double[] th : SlicedWasserstein.directions(256, d, 9)) {
            double dot = 0;
            for (int k = 0; k < d; k++) {
                dot += m[k] * th[k];
            }
            target += Math.abs(dot) / 256;
        }
        assertEquals(target, res.distance(), samplingTolerance(n, n));
        // p = 2 is a power mean of the same slices: never below the p = 1 mean
        SlicedWasserstein.Result r2 = SlicedWasserstein.compute(x, y, new SlicedWasserstein.Options(256, 2, 9));
        assertTrue(r2.distance() >= r2.meanSliceDistance() - 1e-15);
    }

    @Test
    void rejectsBadOptionsAndValues() {
        String m1 = assertThrows(IllegalArgumentException.class,
                () -> new SlicedWasserstein.Options(0, 2, 0)).getMessage();
        assertTrue(m1.contains("got 0"), m1);
        String m2 = assertThrows(IllegalArgumentException.class,
                () -> new SlicedWasserstein.Options(8, 0.5, 0)).getMessage();
        assertTrue(m2.contains("got 0.5"), m2);
        String m3 = assertThrows(IllegalArgumentException.class,
                () -> new SlicedWasserstein.Options(8, Double.NaN, 0)).getMessage();
        assertTrue(m3.contains("got NaN"), m3);
        String m4 = assertThrows(IllegalArgumentException.class,
                () -> SlicedWasserstein.wassersteinPow1d(new double[] {1, Double.NaN}, new double[] {0}, 1)).getMessage();
        assertTrue(m4.contains("a[1] is NaN"), m4);
        String m5 = assertThrows(IllegalArgumentException.class,
                () -> SlicedWasserstein.wassersteinPow1d(new double[] {1}, new double[0], 1)).getMessage();
        assertTrue(m5.contains("b is empty"), m5);
    }
}
