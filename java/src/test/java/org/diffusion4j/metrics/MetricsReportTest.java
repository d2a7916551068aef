package org.diffusion4j.metrics;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Backend;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.diffusion4j.metrics.MetricsTestSupport.constant;
import static org.diffusion4j.metrics.MetricsTestSupport.gaussian;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The report's JSON round trip and checks, and the one-call vector evaluation behind it. */
class MetricsReportTest {

    @Test
    void jsonRoundTripKeepsValuesAndOrder() {
        MetricsReport r = MetricsReport.of("vectors", 100, 80, 3)
                .with("zeta", 1.5).with("alpha", -2.25e-7).with("mid", 3)
                .withSetting("seed", "7");
        String json = r.toJson();
        MetricsReport back = MetricsReport.fromJson(json);
        assertEquals(r, back);
        assertEquals(List.of("zeta", "alpha", "mid"), List.copyOf(back.metrics().keySet()));
        assertTrue(json.contains("\"kind\" : \"vectors\""), json);
        assertTrue(r.toText().contains("alpha"), r.toText());
        String m = assertThrows(IllegalArgumentException.class, () -> r.with("bad", Double.NaN)).getMessage();
        assertTrue(m.contains("metric bad is NaN"), m);
        assertThrows(IllegalArgumentException.class, () -> MetricsReport.fromJson("{\"kind\": 3"));
        assertThrows(UnsupportedOperationException.class, () -> r.metrics().put("x", 1.0));
    }

    /**
     * Same distribution vs a shift of 1.5 along every axis (D = 4): every metric is at least 5 times larger for the
     * shift; the unbiased MMD² and energy distance of the same distribution stay near 0 (their sampling noise at
     * N = 500 is of order 1e-3 and 1e-2); the sliced W_2 of the shift is near ‖m‖/√D = 1.5 (each slice moves by
     * ⟨m, θ⟩ and E⟨m, θ⟩² = ‖m‖²/D), up to the sampling noise of 500 points (about 0.15, as the same-distribution
     * value shows).
     */
    @Test
    void vectorEvaluationSeparatesShiftedData() {
        try (Backend be = new CpuBackend(2)) {
            Pairwise g = Pairwise.on(be);
            PointSet ref = gaussian("held-out", 600, 4, null, 1, 1);
            PointSet same = gaussian("generated", 500, 4, null, 1, 2);
            PointSet moved = gaussian("generated", 500, 4, constant(4, 1.5), 1, 3);
            MetricsReport a = VectorMetrics.evaluate(same, ref, g, 0);
            MetricsReport b = VectorMetrics.evaluate(moved, ref, g, 0);
            assertEquals(List.of("sliced_wasserstein", "mmd2_u", "mmd_bandwidth", "energy_distance_u"),
                    List.copyOf(a.metrics().keySet()));
            for (String k : List.of("sliced_wasserstein", "mmd2_u", "energy_distance_u")) {
                assertTrue(b.metrics().get(k) > 5 * Math.abs(a.metrics().get(k)), k + ": " + a + " vs " + b);
            }
            assertEquals(0, a.metrics().get("mmd2_u"), 0.01);
            assertEquals(0, a.metrics().get("energy_distance_u"), 0.05);
            // SW_2 of a shift m (every slice moves by ⟨m, θ⟩): about ‖m‖/√D = 1.5
            assertEquals(1.5, b.metrics().get("sliced_wasserstein"), 0.3);
            assertEquals(500, a.generated());
            assertEquals(4, a.dim());
        }
    }
    /** Data where most points coincide (median distance 0): MMD is left out with a note, the rest still computed. */
    @Test
    void mostlyDuplicatedDataSkipsMmdWithANote() {
        float[][] rows = new float[20][];
        for (int i = 0; i < rows.length; i++) {
            rows[i] = i < 16 ? new float[] {1, 1} : new float[] {i, -i};
        }
        PointSet same = PointSet.of("held-out", rows);
        MetricsReport r = VectorMetrics.evaluate(PointSet.of("generated", rows), same, Pairwise.host(), 0);
        assertEquals(List.of("sliced_wasserstein", "energy_distance_u"), List.copyOf(r.metrics().keySet()));
        assertTrue(r.settings().get("mmd").startsWith("not computed"), r.settings().toString());
    }
}
