package org.diffusion4j.io;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Per-feature standardisation: statistics against float64 by hand, round trips, constant features, JSON. */
class StandardizationTest {

    /**
     * A split whose labels miss the highest classes (unnamed labels: the class count is the whole set's largest
     * label + 1) keeps the whole set's class count through standardisation and flattening.
     */
    @Test
    void applyKeepsTheClassCountOfASplitThatLacksTheHighestLabels() {
        Dataset all = Dataset.of(new float[] {1, 2, 3, 4, 5, 6, 7, 8}, new long[] {2}, new int[] {0, 1, 0, 4},
                List.of());
        assertEquals(5, all.numClasses());
        Dataset part = all.subset(new int[] {0, 1, 2});             // labels 0, 1, 0
        assertEquals(5, part.numClasses());
        Dataset z = Standardization.fit(part).apply(part);
        assertEquals(5, z.numClasses());
        assertArrayEquals(new int[] {0, 1, 0}, z.labels());
        Dataset flat = all.withValues(all.toArray(), 1, 2);
        assertEquals(5, flat.numClasses());
        assertArrayEquals(new long[] {1, 2}, flat.sampleShape());
        assertThrows(IllegalArgumentException.class, () -> all.withValues(new float[7], 2));
    }

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
