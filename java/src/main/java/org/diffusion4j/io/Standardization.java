package org.diffusion4j.io;

import java.util.Arrays;
import java.util.Locale;
import java.util.Objects;

/**
 * Per-feature standardisation of vector data, {@code z = (x − μ)/s} (scikit-learn's {@code StandardScaler}): the
 * forward process adds noise of unit scale, so features far from unit scale (prices, pixel counts, uint8 values)
 * must be brought there for a diffusion model to learn them, and samples mapped back with {@code x = μ + s·z}.
 * {@code μ} and {@code s} (population standard deviation) come from the training split, in float64; a constant
 * feature ({@code s = 0}) keeps {@code s = 1}.
 *
 * @param mean {@code μ}, one per feature
 * @param std  {@code s > 0}, one per feature
 */
public record Standardization(double[] mean, double[] std) {

    /**
     * Validates equal, non-zero lengths, finite means and finite positive scales; copies the arrays.
     *
     * @throws IllegalArgumentException naming the bad feature
     */
    public Standardization {
        Objects.requireNonNull(mean, "mean");
        Objects.requireNonNull(std, "std");
        if (mean.length != std.length || mean.length == 0) {
            throw new IllegalArgumentException("standardisation needs one mean and one scale per feature, got "
                    + mean.length + " and " + std.length);
        }
        mean = mean.clone();
        std = std.clone();
        for (int j = 0; j < mean.length; j++) {
            if (!Double.isFinite(mean[j]) || !(std[j] > 0 && std[j] < Double.POSITIVE_INFINITY)) {
                throw new IllegalArgumentException("feature " + j + ": mean " + mean[j] + " and scale " + std[j]
                        + " must be finite with a scale > 0");
            }
        }
    }

    /**
     * The mean and standard deviation of every feature of {@code data} (samples flattened to {@code numel}
     * features).
     *
     * @throws IllegalArgumentException for an empty dataset
     */
    public static Standardization fit(Dataset data) {
        int n = data.size();
        int d = data.sampleSize();
        if (n == 0 || d == 0) {
            throw new IllegalArgumentException("cannot standardise an empty dataset");
        }
        float[] v = data.toArray();
        double[] mean = new double[d];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                mean[j] += v[i * d + j];
            }
        }
        for (int j = 0; j < d; j++) {
            mean[j] /= n;
        }
        double[] var = new double[d];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                double c = v[i * d + j] - mean[j];
                var[j] += c * c;
            }
        }
        double[] std = new double[d];
        for (int j = 0; j < d; j++) {
            double s = Math.sqrt(var[j] / n);
            std[j] = s > 0 && Double.isFinite(s) ? s : 1.0;
        }
        return new Standardization(mean, std);
    }

    /** Number of features. */
    public int features() {
        return mean.length;
    }

    /** The means. */
    @Override
    public double[] mean() {
        return mean.clone();
    }

    /** The scales. */
    @Override
    public double[] std() {
        return std.clone();
    }

    /**
     * {@code data} standardised (same shape, labels and class names).
     *
     * @throws IllegalArgumentException when the samples do not have {@link #features()} elements
     */
    public Dataset apply(Dataset data) {
        requireFeatures(data.sampleSize());
        float[] v = data.toArray();
        int d = mean.length;
        for (int i = 0; i < v.length; i++) {
            int j = i % d;
            v[i] = (float) ((v[i] - mean[j]) / std[j]);
        }
        return data.withValues(v, data.sampleShape());
    }

    /**
     * Standardises values in place: {@code values[i] = (values[i] − μ_j)/s_j} with {@code j = i mod D} (NaN stays
     * NaN), the map {@link #apply} uses and {@link #invert} undoes.
     *
     * @throws IllegalArgumentException when {@code values.length} is not a multiple of {@link #features()}
     */
    public void standardize(float[] values) {
        int d = mean.length;
        if (values.length % d != 0) {
            throw new IllegalArgumentException(values.length + " values are not whole samples of " + d + " features");
        }
        for (int i = 0; i < values.length; i++) {
            int j = i % d;
            values[i] = (float) ((values[i] - mean[j]) / std[j]);
        }
    }

    /**
     * Maps standardised values back in place: {@code values[i] = μ_j + s_j·values[i]} with {@code j = i mod D}.
     *
     * @throws IllegalArgumentException when {@code values.length} is not a multiple of {@link #features()}
     */
    public void invert(float[] values) {
        int d = mean.length;
        if (values.length % d != 0) {
            throw new IllegalArgumentException(values.length + " values are not whole samples of " + d + " features");
        }
        for (int i = 0; i < values.length; i++) {
            int j = i % d;
            values[i] = (float) (mean[j] + std[j] * values[i]);
        }
    }

    private void requireFeatures(long d) {
        if (d != mean.length) {
            throw new IllegalArgumentException("samples of " + d + " features, the standardisation has "
                    + mean.length);
        }
    }

    /** A compact JSON object {@code {"mean": [...], "std": [...]}} (round-trip exact doubles). */
    public String toJson() {
        return "{\"mean\": " + list(mean) + ", \"std\": " + list(std) + "}";
    }

    private static String list(double[] a) {
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < a.length; i++) {
            b.append(i == 0 ? "" : ", ").append(Double.toString(a[i]));
        }
        return b.append(']').toString();
    }

    /**
     * Parses {@link #toJson()}.
     *
     * @throws IllegalArgumentException for malformed JSON or invalid values
     */
    public static Standardization fromJson(String json) {
        try {
            com.fasterxml.jackson.databind.JsonNode node = new com.fasterxml.jackson.databind.ObjectMapper()
                    .readTree(json);
            return new Standardization(doubles(node, "mean"), doubles(node, "std"));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException("bad standardisation JSON: " + e.getOriginalMessage(), e);
        }
    }

    private static double[] doubles(com.fasterxml.jackson.databind.JsonNode node, String field) {
        com.fasterxml.jackson.databind.JsonNode a = node == null ? null : node.get(field);
        if (a == null || !a.isArray()) {
            throw new IllegalArgumentException("standardisation JSON lacks the array '" + field + "'");
        }
        double[] v = new double[a.size()];
        for (int i = 0; i < v.length; i++) {
            if (!a.get(i).isNumber()) {
                throw new IllegalArgumentException("standardisation '" + field + "' element " + i + " is not a number");
            }
            v[i] = a.get(i).asDouble();
        }
        return v;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Standardization s && Arrays.equals(mean, s.mean) && Arrays.equals(std, s.std);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(mean) + Arrays.hashCode(std);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "Standardization[%d features]", mean.length);
    }
}
