package org.diffusion4j.metrics;

import java.util.Objects;

/**
 * Metrics of class labels that a classifier predicted for generated samples — the generic part of the image
 * metrics (the classifier itself lives elsewhere).
 */
public final class LabelMetrics {

    private LabelMetrics() {
    }

    /**
     * Class coverage of a sample set.
     *
     * @param coverage   fraction of the {@code K} classes predicted at least {@code minCount} times, in [0, 1]
     * @param covered    number of such classes
     * @param counts     predictions per class, {@code [K]} (a copy)
     * @param minCount   the threshold {@code k}
     */
    public record Coverage(double coverage, int covered, int[] counts, int minCount) {

        /** Copies {@code counts}. */
        public Coverage {
            counts = counts.clone();
        }

        /** A copy of the counts per class. */
        @Override
        public int[] counts() {
            return counts.clone();
        }
    }

    /**
     * Fraction of the {@code numClasses} classes that occur at least {@code minCount} times among
     * {@code predicted} (e.g. {@code minCount = 1}: classes seen at all; a mode-collapsed model covers few).
     *
     * @param predicted  predicted class of each sample, {@code [N]}, values in {@code [0, numClasses)}
     * @param numClasses {@code K >= 1}
     * @param minCount   {@code k >= 1}
     * @throws IllegalArgumentException when {@code predicted} is empty, a label is out of range (named with its
     *                                  position), {@code numClasses < 1} or {@code minCount < 1}
     */
    public static Coverage coverage(int[] predicted, int numClasses, int minCount) {
        Objects.requireNonNull(predicted, "predicted");
        if (numClasses < 1) {
            throw new IllegalArgumentException("numClasses must be >= 1, got " + numClasses);
        }
        if (minCount < 1) {
            throw new IllegalArgumentException("minCount must be >= 1, got " + minCount);
        }
        if (predicted.length == 0) {
            throw new IllegalArgumentException("predicted is empty: coverage needs at least one sample");
        }
        int[] counts = new int[numClasses];
        for (int i = 0; i < predicted.length; i++) {
            int c = predicted[i];
            if (c < 0 || c >= numClasses) {
                throw new IllegalArgumentException("predicted[" + i + "] = " + c + " is not a class in [0, "
                        + numClasses + ")");
            }
            counts[c]++;
        }
        int covered = 0;
        for (int c : counts) {
            if (c >= minCount) {
                covered++;
            }
        }
        return new Coverage((double) covered / numClasses, covered, counts, minCount);
    }

    /**
     * Fraction of samples whose predicted class equals the intended one (the classifier's accuracy on
     * class-conditional samples).
     *
     * @param predicted predicted classes {@code [N]}
     * @param intended  the classes the samples were generated for {@code [N]}
     * @throws IllegalArgumentException when the arrays are empty or differ in length
     */
    public static double accuracy(int[] predicted, int[] intended) {
        Objects.requireNonNull(predicted, "predicted");
        Objects.requireNonNull(intended, "intended");
        if (predicted.length != intended.length) {
            throw new IllegalArgumentException("predicted has " + predicted.length + " labels but intended has "
                    + intended.length);
        }
        if (predicted.length == 0) {
            throw new IllegalArgumentException("predicted is empty: accuracy needs at least one sample");
        }
        int hits = 0;
        for (int i = 0; i < predicted.length; i++) {
            if (predicted[i] == intended[i]) {
                hits++;
            }
        }
        return (double) hits / predicted.length;
    }
}
