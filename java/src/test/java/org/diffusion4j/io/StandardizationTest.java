package org.diffusion4j.io;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Per-feature standardisation: statistics against float64 by hand, round trips, constant features, JSON. */
class StandardizationTest {

    @Test
    void fitApplyAndInvertRoundTrip() {
        // 4 samples of 3 features: the third is constant
        float[] v = {500, -2, 7, 700, -4, 7, 300, -6, 7, 100, -8, 7};
        Dataset d = Dataset.of(v, new long[] {3}, new int[] {0, 1, 0, 1}, List.of("a", "b"));
        Standardization s = Standardization.fit(d);
        assertArrayEquals(new double[] {400, -5, 7}, s.mean(), 1e-12);
        assertArrayEquals(new double[] {Math.sqrt(50000), Math.sqrt(5), 1}, s.std(), 1e-9);
        Dataset z = s.apply(d);
        assertArrayEquals(new int[] {0, 1, 0, 1}, z.labels());
        float[] zv = z.toArray();
        assertEquals((500 - 400) / Math.sqrt(50000), zv[0], 1e-6);
        assertEquals(0, zv[2], 0);                                   // constant feature: (7 − 7)/1
        s.invert(zv);
        for (int i = 0; i < v.length; i++) {
            assertEquals(v[i], zv[i], 1e-4 * Math.abs(v[i]) + 1e-5, "element " + i);
        }
        assertEquals(s, Standardization.fromJson(s.toJson()));
        assertThrows(IllegalArgumentException.class, () -> s.invert(new float[4]));
        assertThrows(IllegalArgumentException.class, () -> Standardization.fromJson("{\"mean\": [1]}"));
        assertThrows(IllegalArgumentException.class, () -> new Standardization(new double[] {1}, new double[] {0}));
        assertThrows(IllegalArgumentException.class, () -> s.apply(Dataset.of(new float[2], new long[] {2}, null,
                List.of())));
    }
}
