package org.diffusion4j.metrics;

import org.diffusion4j.random.Philox;

import java.util.Arrays;
import java.util.Objects;
import java.util.stream.IntStream;

/**
 * The sliced Wasserstein distance between point sets {@code x [N, D]} and {@code y [M, D]} (Bonneel, Rabin,
 * Peyré and Pfister, "Sliced and Radon Wasserstein barycenters of measures", J. Math. Imaging Vis. 51, 2015,
 * Sec. 2; Deshpande, Zhang and Schwing, "Generative modeling using the sliced Wasserstein distance",
 * CVPR 2018):
 *
 * <pre>
 *   SW_p(μ, ν)^p = ∫_{S^{D−1}} W_p(θ#μ, θ#ν)^p dθ   ≈   (1/L) Σ_l W_p(⟨x, θ_l⟩, ⟨y, θ_l⟩)^p
 * </pre>
 *
 * <p>with {@code L} directions {@code θ_l} uniform on the unit sphere: standard normal vectors from
 * {@link Philox} (seed of {@link Options}, stream {@link #DIRECTION_STREAM}, element {@code l·D + k}),
 * normalised. {@link Result#distance()} is that Monte Carlo estimate of {@code SW_p}, and
 * {@link Result#meanSliceDistance()} the plain mean {@code (1/L) Σ_l W_p} of the slice distances; the two agree
 * for {@code p = 1}. Units: those of the data.
 *
 * <p><b>Unequal sample counts.</b> In one dimension {@code W_p^p = ∫_0^1 |F^{-1}(t) − G^{-1}(t)|^p dt} for the
 * quantile functions {@code F^{-1}, G^{-1}} (e.g. Villani, "Topics in Optimal Transportation", AMS 2003,
 * Ch. 2). For empirical measures these are step functions with steps at {@code i/N} and {@code j/M}; the
 * integral is evaluated exactly on the merged grid of both step sets (after sorting the projections), so
 * {@code N ≠ M} needs no resampling or interpolation and gives the exact {@code W_p} between the two projected
 * empirical distributions. For {@code N = M} it reduces to {@code (1/N) Σ_i |x_(i) − y_(i)|^p} over the sorted
 * values.
 *
 * <p><b>Cost.</b> {@code L (N + M) D} multiply-adds for the projections (float64) and {@code L} sorts,
 * {@code O(L (N log N + M log M))}; directions run in parallel on the common fork-join pool, each one
 * independent, so results do not depend on the thread count.
 */
public final class SlicedWasserstein {

    /** Philox stream of the directions ({@code "SW"} in ASCII). */
    public static final long DIRECTION_STREAM = 0x5357L;
    /** Most directions accepted. */
    public static final int MAX_DIRECTIONS = 1 << 16;

    private SlicedWasserstein() {
    }

    /**
     * Settings of the estimate.
     *
     * @param directions number of random directions {@code L}, in {@code [1, }{@link #MAX_DIRECTIONS}{@code ]}
     * @param p          order of the Wasserstein distance, finite and {@code >= 1}
     * @param seed       Philox seed of the directions
     */
    public record Options(int directions, double p, long seed) {

        /**
         * @throws IllegalArgumentException when {@code directions} or {@code p} is out of range
         */
        public Options {
            if (directions < 1 || directions > MAX_DIRECTIONS) {
                throw new IllegalArgumentException("sliced Wasserstein directions must be in [1, " + MAX_DIRECTIONS
                        + "], got " + directions);
            }
            if (!(p >= 1) || !Double.isFinite(p)) {
                throw new IllegalArgumentException("sliced Wasserstein order p must be finite and >= 1, got " + p);
            }
        }

        /** {@code L = 128} directions, {@code p = 2}, seed 0. */
        public static Options defaults() {
            return new Options(128, 2, 0);
        }
    }

    /**
     * A sliced Wasserstein estimate.
     *
     * @param distance          {@code ((1/L) Σ_l W_p,l^p)^{1/p}}, the estimate of {@code SW_p}
     * @param meanSliceDistance {@code (1/L) Σ_l W_p,l}
     * @param directions        {@code L}
     * @param p                 the order
     */
    public record Result(double distance, double meanSliceDistance, int directions, double p) {
    }

    /**
     * The sliced Wasserstein distance of {@code x [N, D]} and {@code y [M, D]}.
     *
     * @param x       the generated samples {@code [N, D]} (the package's order; the value is symmetric)
     * @param y       the real (reference) points {@code [M, D]}
     * @param options directions, order and seed
     * @throws IllegalArgumentException when the dims differ
     */
    public static Result compute(PointSet x, PointSet y, Options options) {
        Objects.requireNonNull(options, "options");
        PointSet.requireSameDim(x, y);
        int l = options.directions();
        double p = options.p();
        double[][] theta = directions(l, x.dim(), options.seed());
        double[][] wpp = new double[l][];                      // W_p^p of each slice as {c, m}: c^p · m
        IntStream.range(0, l).parallel().forEach(s -> {
            double[] px = project(x, theta[s]);
            double[] py = project(y, theta[s]);
            Arrays.sort(px);
            Arrays.sort(py);
            wpp[s] = scaledPowerOfSorted(px, py, p);
        });
        // in units of the largest matched difference C, so that no power over- or underflows as a whole
        // (|d|^p overflowed for p = 20 at a scale of 1e20, and underflowed to 0 at 1e-30)
        double big = 0;
        double sumDist = 0;
        for (double[] w : wpp) {
            big = Math.max(big, w[0]);
            sumDist += w[0] * root(w[1], p);
        }
        if (big == 0) {
            return new Result(0, 0, l, p);
        }
        double sumPow = 0;
        for (double[] w : wpp) {
            sumPow += pow(w[0] / big, p) * w[1];
        }
        return new Result(big * root(sumPow / l, p), sumDist / l, l, p);
    }

    /**
     * The {@code count} unit directions {@code [count][dim]} used with {@code seed}: component {@code k} of
     * direction {@code l} is {@code Philox.normal(seed, DIRECTION_STREAM, l·dim + k)} before normalisation
     * (uniform on the sphere, Muller 1959, Commun. ACM 2(4)).
     *
     * @throws IllegalArgumentException when {@code count} or {@code dim} is below 1
     */
    public static double[][] directions(int count, int dim, long seed) {
        if (count < 1 || dim < 1) {
            throw new IllegalArgumentException("need count >= 1 directions of dim >= 1, got count = " + count
                    + ", dim = " + dim);
        }
        double[][] theta = new double[count][dim];
        for (int l = 0; l < count; l++) {
            double norm2 = 0;
            for (int k = 0; k < dim; k++) {
                double g = Philox.normal(seed, DIRECTION_STREAM, (long) l * dim + k);
                theta[l][k] = g;
                norm2 += g * g;
            }
            double inv = 1 / Math.sqrt(norm2);                 // > 0: every Philox normal is nonzero
            for (int k = 0; k < dim; k++) {
                theta[l][k] *= inv;
            }
        }
        return theta;
    }

    /**
     * {@code W_p(a, b)^p} between the empirical distributions of the values {@code a} and {@code b} (equal
     * weights {@code 1/N} and {@code 1/M}; any order, the arrays are not modified), exactly (see the class
     * comment).
     *
     * @throws IllegalArgumentException when an array is empty or holds a non-finite value, or {@code p} is not
     *                                  finite and {@code >= 1}
     */
    public static double wassersteinPow1d(double[] a, double[] b, double p) {
        Objects.requireNonNull(a, "a");
        Objects.requireNonNull(b, "b");
        if (!(p >= 1) || !Double.isFinite(p)) {
            throw new IllegalArgumentException("Wasserstein order p must be finite and >= 1, got " + p);
        }
        requireValues("a", a);
        requireValues("b", b);
        double[] sa = a.clone();
        double[] sb = b.clone();
        Arrays.sort(sa);
        Arrays.sort(sb);
        double[] w = scaledPowerOfSorted(sa, sb, p);
        return w[0] == 0 ? 0 : pow(w[0] * root(w[1], p), p);  // Infinity only when W_p^p itself exceeds a double
    }

    private static void requireValues(String name, double[] v) {
        if (v.length == 0) {
            throw new IllegalArgumentException(name + " is empty");
        }
        for (int i = 0; i < v.length; i++) {
            if (!Double.isFinite(v[i])) {
                throw new IllegalArgumentException(name + "[" + i + "] is " + v[i]);
            }
        }
    }

    /** {@code ⟨x_i, θ⟩} for every point, {@code [N]}, in float64. */
    private static double[] project(PointSet x, double[] theta) {
        int n = x.size();
        int d = x.dim();
        float[] v = x.values();
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double s = 0;
            int o = i * d;
            for (int k = 0; k < d; k++) {
                s += v[o + k] * theta[k];
            }
            out[i] = s;
        }
        return out;
    }

    /**
     * {@code ∫_0^1 |A^{-1}(t) − B^{-1}(t)|^p dt} for sorted {@code a [N]}, {@code b [M]} as {@code {c, m}} with the
     * integral {@code = c^p · m}: {@code c} the largest matched difference {@code |a_i − b_j|}, {@code m ∈ (0, 1]}
     * the integral of {@code (|a_i − b_j| / c)^p} ({@code {0, 0}} when every matched pair is equal). The quantile
     * levels are counted in units of {@code 1/(NM)}: value {@code a_i} covers {@code [iM, (i+1)M)} and {@code b_j}
     * covers {@code [jN, (j+1)N)}; each piece of the merged grid adds its length times its term.
     */
    private static double[] scaledPowerOfSorted(double[] a, double[] b, double p) {
        double[] max = {0};
        forEachPiece(a, b, (len, d) -> max[0] = Math.max(max[0], d));
        double c = max[0];
        if (c == 0) {
            return new double[] {0, 0};
        }
        double[] sum = {0};
        forEachPiece(a, b, (len, d) -> sum[0] += len * pow(d / c, p));
        return new double[] {c, sum[0] / ((double) a.length * b.length)};
    }

    /** A piece of the merged quantile grid: its length in units of {@code 1/(NM)} and its difference. */
    private interface Piece {
        void accept(double length, double difference);
    }

    /** Every piece of the merged quantile grid of sorted {@code a} and {@code b} (see above), in order. */
    private static void forEachPiece(double[] a, double[] b, Piece piece) {
        long n = a.length;
        long m = b.length;
        if (n == m) {
            for (int i = 0; i < n; i++) {
                piece.accept(m, Math.abs(a[i] - b[i]));          // length N·1 of N·M
            }
            return;
        }
        long pos = 0;
        int i = 0;
        int j = 0;
        while (i < n && j < m) {
            long endA = (i + 1) * m;
            long endB = (j + 1) * n;
            long end = Math.min(endA, endB);
            piece.accept(end - pos, Math.abs(a[i] - b[j]));
            pos = end;
            if (endA == end) {
                i++;
            }
            if (endB == end) {
                j++;
            }
        }
    }

    private static double pow(double v, double p) {
        return p == 1 ? v : p == 2 ? v * v : Math.pow(v, p);
    }

    private static double root(double v, double p) {
        return p == 1 ? v : p == 2 ? Math.sqrt(v) : Math.pow(v, 1 / p);
    }
}
