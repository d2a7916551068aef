package org.diffusion4j.metrics;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Class coverage and accuracy of predicted labels, and their input checks. */
class LabelMetricsTest {

    @Test
    void coverageCountsClassesSeenOftenEnough() {
        int[] predicted = {0, 0, 0, 2, 2, 5, 1, 0, 2};           // counts: 0→4, 1→1, 2→3, 5→1; 3, 4 unseen
        LabelMetrics.Coverage once = LabelMetrics.coverage(predicted, 6, 1);
        assertEquals(4.0 / 6, once.coverage(), 1e-15);
        assertEquals(4, once.covered());
        assertArrayEquals(new int[] {4, 1, 3, 0, 0, 1}, once.counts());
        LabelMetrics.Coverage thrice = LabelMetrics.coverage(predicted, 6, 3);
        assertEquals(2.0 / 6, thrice.coverage(), 1e-15);
        assertEquals(0.0, LabelMetrics.coverage(predicted, 6, 10).coverage());
        // a mode-collapsed sampler: one class only
        assertEquals(0.1, LabelMetrics.coverage(new int[] {7, 7, 7, 7}, 10, 1).coverage(), 1e-15);
    }

    @Test
    void accuracyIsTheShareOfMatches() {
        assertEquals(0.75, LabelMetrics.accuracy(new int[] {1, 2, 3, 4}, new int[] {1, 2, 0, 4}), 1e-15);
        assertEquals(0.0, LabelMetrics.accuracy(new int[] {1}, new int[] {2}));
    }

    @Test
    void rejectsBadLabels() {
        String m1 = assertThrows(IllegalArgumentException.class,
                () -> LabelMetrics.coverage(new int[] {0, 3, 10}, 10, 1)).getMessage();
        assertTrue(m1.contains("predicted[2] = 10 is not a class in [0, 10)"), m1);
        String m2 = assertThrows(IllegalArgumentException.class,
                () -> LabelMetrics.coverage(new int[] {-1}, 10, 1)).getMessage();
        assertTrue(m2.contains("predicted[0] = -1"), m2);
        String m3 = assertThrows(IllegalArgumentException.class,
                () -> LabelMetrics.coverage(new int[0], 10, 1)).getMessage();
        assertTrue(m3.contains("predicted is empty"), m3);
        String m4 = assertThrows(IllegalArgumentException.class,
                () -> LabelMetrics.coverage(new int[] {0}, 0, 1)).getMessage();
        assertTrue(m4.contains("numClasses must be >= 1, got 0"), m4);
        String m5 = assertThrows(IllegalArgumentException.class,
                () -> LabelMetrics.coverage(new int[] {0}, 2, 0)).getMessage();
        assertTrue(m5.contains("minCount must be >= 1, got 0"), m5);
        String m6 = assertThrows(IllegalArgumentException.class,
                () -> LabelMetrics.accuracy(new int[] {0, 1}, new int[] {0})).getMessage();
        assertTrue(m6.contains("predicted has 2 labels but intended has 1"), m6);
    }
}
