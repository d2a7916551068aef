package org.diffusion4j.metrics;

import org.diffusion4j.Backends;
import org.diffusion4j.tensor.Backend;

import java.util.Arrays;
import java.util.Locale;
import java.util.function.Supplier;

/**
 * A quick timing harness (not a test, not a JMH benchmark): wall time of the main metrics on two Gaussian sets
 * {@code [N, D]} (default N = 10,000, D = 64), median of {@code reps} runs after one warm-up run, with the
 * operation counts that bound them. Run from the repository root after {@code mvn test-compile}:
 * {@code java --enable-native-access=ALL-UNNAMED -cp java/target/test-classes:java/target/classes:<deps>
 * org.diffusion4j.metrics.MetricsSpeed [backend=cpu] [N] [D] [reps] [host]} ({@code host} also times the float64
 * engine, about 10 s per metric at the default size on 2 cores).
 */
public final class MetricsSpeed {

    private MetricsSpeed() {
    }

    public static void main(String[] args) {
        String spec = args.length > 0 ? args[0] : "cpu";
        int n = args.length > 1 ? Integer.parseInt(args[1]) : 10_000;
        int d = args.length > 2 ? Integer.parseInt(args[2]) : 64;
        int reps = args.length > 3 ? Integer.parseInt(args[3]) : 3;
        boolean host = args.length > 4 && args[4].equals("host");
        PointSet x = MetricsTestSupport.gaussian("x", n, d, null, 1, 1);
        PointSet y = MetricsTestSupport.gaussian("y", n, d, MetricsTestSupport.constant(d, 0.1), 1, 2);
        PointSet h = MetricsTestSupport.gaussian("h", n, d, null, 1, 3);
        try (Backend be = Backends.create(spec)) {
            Pairwise g = Pairwise.on(be);
            System.out.printf(Locale.ROOT, "metrics at N = M = %d, D = %d on %s (median of %d)%n", n, d, be.name(), reps);
            // pairs: MMD and energy visit N²/2 + M²/2 + NM = 2N² pairs (symmetric terms once), NN ratio 2N²
            double pairs = 2.0 * n * n;
            time("pairwise rbfSum x-y (gemm)", () -> g.rbfSum(x, y, 10), reps, (double) n * n);
            time("MMD² U, median heuristic (gemm)", () -> Mmd.compute(x, y, Estimator.U_STATISTIC, g).mmd2(), reps, pairs);
            time("energy distance U (gemm)", () -> EnergyDistance.compute(x, y, Estimator.U_STATISTIC, g).energy(), reps,
                    pairs);
            time("NN ratio, G = H = T = N (gemm)", () -> NearestNeighbourRatio.compute(x, y, h, g).medianRatio(), reps,
                    pairs);
            time("sliced W_2, L = 128 (host)", () -> SlicedWasserstein.compute(x, y,
                    SlicedWasserstein.Options.defaults()).distance(), reps, 0);
            time("Fréchet distance, fit + sqrt (host)", () -> FrechetDistance.compute(x, y), reps, 0);
            // precision/recall: two within-set k-NN passes and two cross passes, 4 N² distances
            time("precision/recall/density/coverage (gemm)", () -> PrecisionRecall.compute(y, x, g).recall(), reps,
                    4.0 * n * n);
            // kernel distance: 100 subsets of m = min(N, 1000), 3 kernel sums (two symmetric) = 2 m² pairs each
            double m = Math.min(n, KernelDistance.DEFAULT_SUBSET_SIZE);
            time("kernel distance, 100 subsets (gemm)", () -> KernelDistance.compute(x, y, g, 0).mean(), reps,
                    100 * 2 * m * m);
            if (host) {
                Pairwise f = Pairwise.host();
                time("MMD² U (host float64)", () -> Mmd.compute(x, y, Estimator.U_STATISTIC, f).mmd2(), 1, pairs);
                time("energy distance U (host float64)", () -> EnergyDistance.compute(x, y, Estimator.U_STATISTIC, f)
                        .energy(), 1, pairs);
            }
        }
    }

    private static void time(String label, Supplier<Object> job, int reps, double pairs) {
        Object value = job.get();                              // warm-up
        double[] s = new double[reps];
        for (int r = 0; r < reps; r++) {
            long t0 = System.nanoTime();
            value = job.get();
            s[r] = (System.nanoTime() - t0) * 1e-9;
        }
        Arrays.sort(s);
        double med = s[reps / 2];
        System.out.printf(Locale.ROOT, "  %-40s %8.3f s%s   value %s%n", label, med,
                pairs > 0 ? String.format(Locale.ROOT, "  (%.2f ns/pair)", med * 1e9 / pairs) : "", value);
    }
}
