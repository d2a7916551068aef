package org.diffusion4j.training;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link BatchSource.Batch}: a value, not a view of the caller's arrays. */
class BatchSourceTest {

    @Test
    void aBatchCopiesItsArraysInAndOut() {
        int[] idx = {4, 1, 3};
        int[] labels = {0, 2, 1};
        BatchSource.Batch b = new BatchSource.Batch(idx, labels);
        idx[0] = 99;
        labels[0] = 99;
        b.indices()[1] = 99;
        b.labels()[2] = 99;
        assertArrayEquals(new int[] {4, 1, 3}, b.indices());
        assertArrayEquals(new int[] {0, 2, 1}, b.labels());
        assertNull(new BatchSource.Batch(idx, null).labels());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new BatchSource.Batch(new int[3], new int[2]));
        assertTrue(e.getMessage().contains("3 indices got 2 labels"), e.getMessage());
    }
}
