package org.diffusion4j.metrics;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Quality metrics of one evaluation, in the order they were added, with the settings that produced them, for
 * printing and for the JSON file an evaluation writes:
 *
 * <pre>{@code
 * {"kind":"vectors","generated":10000,"reference":10000,"dim":64,
 *  "metrics":{"sliced_wasserstein":0.031,"mmd2_u":1.2e-4,...},"settings":{"engine":"gemm on cpu ..."}}
 * }</pre>
 *
 * @param kind      what was compared, e.g. {@code "vectors"} or {@code "images"}
 * @param generated number of generated samples
 * @param reference number of reference (held-out) samples
 * @param dim       dimension of the compared points or features
 * @param metrics   name → value, finite (JSON has no NaN), insertion order kept; read-only
 * @param settings  name → setting (seed, directions, bandwidth rule, engine ...), insertion order kept; read-only
 */
public record MetricsReport(String kind, int generated, int reference, int dim, Map<String, Double> metrics,
                            Map<String, String> settings) {

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /**
     * @throws IllegalArgumentException when a count is negative or a metric is not finite (named)
     */
    public MetricsReport {
        Objects.requireNonNull(kind, "kind");
        if (generated < 0 || reference < 0 || dim < 0) {
            throw new IllegalArgumentException("counts must be >= 0, got generated = " + generated + ", reference = "
                    + reference + ", dim = " + dim);
        }
        Map<String, Double> m = new LinkedHashMap<>();
        for (Map.Entry<String, Double> e : Objects.requireNonNull(metrics, "metrics").entrySet()) {
            Double v = e.getValue();
            if (v == null || !Double.isFinite(v)) {
                throw new IllegalArgumentException("metric " + e.getKey() + " is " + v + ": reports hold finite values");
            }
            m.put(Objects.requireNonNull(e.getKey(), "metric name"), v);
        }
        metrics = Collections.unmodifiableMap(m);
        settings = Collections.unmodifiableMap(new LinkedHashMap<>(Objects.requireNonNull(settings, "settings")));
    }

    /** An empty report. */
    public static MetricsReport of(String kind, int generated, int reference, int dim) {
        return new MetricsReport(kind, generated, reference, dim, Map.of(), Map.of());
    }

    /**
     * This report with metric {@code name = value} added (or replaced, keeping its place).
     *
     * @throws IllegalArgumentException when {@code value} is not finite (JSON has no NaN or infinity)
     * @throws NullPointerException     when {@code name} is null
     */
    public MetricsReport with(String name, double value) {
        Map<String, Double> m = new LinkedHashMap<>(metrics);
        m.put(name, value);
        return new MetricsReport(kind, generated, reference, dim, m, settings);
    }

    /** This report with setting {@code name = value} added (or replaced). */
    public MetricsReport withSetting(String name, String value) {
        Map<String, String> s = new LinkedHashMap<>(settings);
        s.put(name, value);
        return new MetricsReport(kind, generated, reference, dim, metrics, s);
    }

    /** Pretty-printed JSON of every component. */
    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write the metrics report as JSON", e);
        }
    }

    /**
     * Reads a report written by {@link #toJson()}.
     *
     * @throws IllegalArgumentException when {@code json} is not such a report, or one that breaks the record's checks
     */
    public static MetricsReport fromJson(String json) {
        try {
            return JSON.readValue(json, MetricsReport.class);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("not a metrics report: " + e.getOriginalMessage(), e);
        }
    }

    /** One line per metric, {@code name  value}, for the console. */
    public String toText() {
        StringBuilder sb = new StringBuilder(kind + ": " + generated + " generated vs " + reference
                + " reference, D = " + dim + "\n");
        int width = 22;
        for (String k : metrics.keySet()) {
            width = Math.max(width, k.length());
        }
        String row = "  %-" + width + "s %.6g%n";                    // names padded to the longest: one column
        metrics.forEach((k, v) -> sb.append(String.format(java.util.Locale.ROOT, row, k, v)));
        return sb.toString();
    }
}
