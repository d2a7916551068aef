package org.diffusion4j.metrics;

import java.util.Arrays;
import java.util.Objects;

/**
 * A memorisation check: how close generated samples lie to the training set, relative to how close unseen real
 * data lie to it. For every generated sample {@code g} the Euclidean distance to its nearest training sample,
 * {@code d(g) = min_t ‖g − t‖}, is divided by the same statistic of held-out real samples, the median of
 * {@code d(h) = min_t ‖h − t‖}; the report is the median of these ratios,
 * {@code median_g d(g) / median_h d(h)}.
 *
 * <p>Reading it: about 1 when generated samples are as novel as fresh data; well below 1 when they sit on top of
 * training points (copies); above 1 when they are farther from the data than real samples are (poor samples, or
 * a training set too sparse to say). This compares the two nearest-neighbour distance distributions in the
 * spirit of Meehan, Chaudhuri and Dasgupta, "A non-parametric test to detect data-copying in generative models",
 * AISTATS 2020 (generated-to-training vs held-out-to-training distances); {@link #fractionBelow} gives the share
 * of generated samples closer than a given fraction of the held-out median.
 *
 * <p><b>Cost.</b> {@code (G + H) T} distances of {@code D} multiply-adds for {@code G} generated, {@code H}
 * held-out and {@code T} training points, through {@link Pairwise} (blocked GEMM on a backend; see its note on
 * float32 resolution of very small distances).
 *
 * @param generatedDistances {@code d(g)} for each generated sample, {@code [G]}, {@code G >= 1} (a copy), data units,
 *                           each finite and {@code >= 0}
 * @param heldOutDistances   {@code d(h)} for each held-out sample, {@code [H]}, {@code H >= 1} (a copy), data units,
 *                           each finite and {@code >= 0}
 * @param medianGenerated    median of {@code d(g)}, finite and {@code >= 0}
 * @param medianHeldOut      median of {@code d(h)}, finite and {@code > 0} (the scale of {@link #medianRatio})
 */
public record NearestNeighbourRatio(double[] generatedDistances, double[] heldOutDistances, double medianGenerated,
                                    double medianHeldOut) {

    /**
     * Copies the arrays.
     *
     * @throws IllegalArgumentException when an array is empty or holds a negative or non-finite distance,
     *                                  {@code medianGenerated} is negative or not finite, or {@code medianHeldOut} is
     *                                  not finite and {@code > 0}
     * @throws NullPointerException     when an array is null
     */
    public NearestNeighbourRatio {
        generatedDistances = distances(generatedDistances, "generatedDistances");
        heldOutDistances = distances(heldOutDistances, "heldOutDistances");
        if (!(medianGenerated >= 0) || !Double.isFinite(medianGenerated)) {
            throw new IllegalArgumentException("medianGenerated must be finite and >= 0, got " + medianGenerated);
        }
        if (!(medianHeldOut > 0) || !Double.isFinite(medianHeldOut)) {
            throw new IllegalArgumentException("medianHeldOut must be finite and > 0 (it divides the ratio), got "
                    + medianHeldOut);
        }
    }

    private static double[] distances(double[] v, String name) {
        Objects.requireNonNull(v, name);
        if (v.length == 0) {
            throw new IllegalArgumentException(name + " must hold at least one distance");
        }
        double[] c = v.clone();
        for (int i = 0; i < c.length; i++) {
            if (!(c[i] >= 0) || !Double.isFinite(c[i])) {
                throw new IllegalArgumentException(name + "[" + i + "] must be finite and >= 0, got " + c[i]);
            }
        }
        return c;
    }

    /**
     * The nearest-training-sample distances of {@code generated [G, D]} and {@code heldOut [H, D]} against
     * {@code training [T, D]}.
     *
     * @param generated the generated samples {@code [G, D]}
     * @param training  the training set {@code [T, D]} the model saw
     * @param heldOut   real samples {@code [H, D]} the model did not see (the scale of a novel sample)
     * @param engine    where the pairwise distances run
     *
     * @throws IllegalArgumentException when the dims differ, or the held-out median distance is 0 (the held-out
     *                                  set mostly repeats training points, so there is no scale to compare with)
     */
    public static NearestNeighbourRatio compute(PointSet generated, PointSet training, PointSet heldOut,
                                                Pairwise engine) {
        Objects.requireNonNull(engine, "engine");
        PointSet.requireSameDim(generated, training);
        PointSet.requireSameDim(heldOut, training);
        double[] dg = engine.nearestDistances(generated, training);
        double[] dh = engine.nearestDistances(heldOut, training);
        double mh = median(dh);
        if (!(mh > 0)) {
            throw new IllegalArgumentException("the median distance from " + heldOut.name() + " to its nearest "
                    + training.name() + " point is " + mh + ": the held-out set repeats training points");
        }
        return new NearestNeighbourRatio(dg, dh, median(dg), mh);
    }

    /** {@code median_g d(g) / median_h d(h)}: the median ratio (≈ 1 novel, ≪ 1 copying). */
    public double medianRatio() {
        return medianGenerated / medianHeldOut;
    }

    /**
     * Fraction of generated samples with {@code d(g) / median_h d(h) < ratio}, e.g. {@code ratio = 0.1} for
     * near-copies.
     *
     * @param ratio the bound, in units of the held-out median distance
     * @return a fraction in {@code [0, 1]}
     * @throws IllegalArgumentException when {@code ratio} is NaN
     */
    public double fractionBelow(double ratio) {
        if (Double.isNaN(ratio)) {
            throw new IllegalArgumentException("fractionBelow needs a ratio, got NaN");
        }
        double limit = ratio * medianHeldOut;
        int c = 0;
        for (double v : generatedDistances) {
            if (v < limit) {
                c++;
            }
        }
        return (double) c / generatedDistances.length;
    }

    /** A copy of {@code d(g)}. */
    @Override
    public double[] generatedDistances() {
        return generatedDistances.clone();
    }

    /** A copy of {@code d(h)}. */
    @Override
    public double[] heldOutDistances() {
        return heldOutDistances.clone();
    }

    /** Median (the mean of the two middle values for an even count) of a non-empty array. */
    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        int h = s.length / 2;
        return s.length % 2 == 1 ? s[h] : 0.5 * (s[h - 1] + s[h]);
    }
}
