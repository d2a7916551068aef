package org.diffusion4j.metrics;

import java.util.Objects;

/**
 * The vector-data metrics of an evaluation in one call: sliced Wasserstein, MMD² (RBF, median heuristic) and the
 * energy distance of generated samples against held-out reference data, both {@code [N, D]}.
 *
 * <p>Report keys: {@code sliced_wasserstein} ({@code SW_2}, {@link SlicedWasserstein.Options#defaults()} with
 * the given seed), {@code mmd2_u} and {@code mmd_bandwidth} ({@link Mmd}, U-statistic, median heuristic; left out,
 * with a note, when more than half of the pooled pairs coincide and the median distance is 0),
 * {@code energy_distance_u} ({@link EnergyDistance}, U-statistic). The U-statistics are unbiased, so they
 * compare fairly across sample sizes and may be slightly negative when the distributions agree.
 */
public final class VectorMetrics {

    private VectorMetrics() {
    }

    /**
     * Evaluates {@code generated [N, D]} against {@code reference [M, D]}, pairwise terms on {@code engine}.
     *
     * @throws IllegalArgumentException when the dims differ or a set has fewer than 2 points
     */
    public static MetricsReport evaluate(PointSet generated, PointSet reference, Pairwise engine, long seed) {
        Objects.requireNonNull(engine, "engine");
        PointSet.requireSameDim(generated, reference);
        PointSet.requireAtLeast(generated, 2, "the vector metrics");
        PointSet.requireAtLeast(reference, 2, "the vector metrics");
        SlicedWasserstein.Options sw = new SlicedWasserstein.Options(SlicedWasserstein.Options.defaults().directions(),
                2, seed);
        double bandwidth = Mmd.medianHeuristic(generated, reference, Mmd.MEDIAN_HEURISTIC_POINTS, seed);
        EnergyDistance.Result energy = EnergyDistance.compute(generated, reference, Estimator.U_STATISTIC, engine);
        MetricsReport r = MetricsReport.of("vectors", generated.size(), reference.size(), generated.dim())
                .with("sliced_wasserstein", SlicedWasserstein.compute(generated, reference, sw).distance());
        if (bandwidth > 0) {
            Mmd.Result mmd = Mmd.compute(generated, reference, bandwidth, Estimator.U_STATISTIC, engine);
            r = r.with("mmd2_u", mmd.mmd2())
                    .with("mmd_bandwidth", bandwidth)
                    .withSetting("mmd", "RBF exp(-d^2/(2h^2)), h = median pooled distance ("
                            + Mmd.MEDIAN_HEURISTIC_POINTS + "-point subset, seed " + seed + ")");
        } else {
            r = r.withSetting("mmd", "not computed: more than half of the pooled pairs coincide (median distance 0),"
                    + " so the median heuristic gives no bandwidth");
        }
        return r.with("energy_distance_u", energy.energy())
                .withSetting("sliced_wasserstein", "SW_2, " + sw.directions() + " Philox directions, seed " + seed)
                .withSetting("engine", engine.toString());
    }
}
