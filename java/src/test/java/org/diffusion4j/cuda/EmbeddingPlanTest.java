package org.diffusion4j.cuda;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The host half of {@link CudaNnOps#embeddingBackward} (no GPU needed): the plan that groups positions by table row
 * must list every position exactly once, in increasing order within its group, under the group of its own index,
 * each touched row once; a bad index throws naming its position and value.
 */
class EmbeddingPlanTest {

    @Test
    void planGroupsEveryPositionUnderItsRowInOrder() {
        SplittableRandom r = new SplittableRandom(20261130);
        int[][] sizes = {{1, 1}, {7, 3}, {50, 1000}, {1000, 10}, {513, 513}}; // {N, V}
        for (int[] sz : sizes) {
            int n = sz[0];
            int v = sz[1];
            int[] idx = new int[n];
            for (int i = 0; i < n; i++) {
                idx[i] = r.nextInt(v);
            }
            int[] plan = CudaNnOps.EmbeddingPlan.build(idx, v, "table");
            int touched = CudaNnOps.EmbeddingPlan.touched(plan);
            assertEquals(n + 2 * touched + 2, plan.length, "plan length");
            int start = n;
            int rows = n + touched + 1;
            boolean[] seenPos = new boolean[n];
            boolean[] seenRow = new boolean[v];
            assertEquals(0, plan[start], "first group starts at 0");
            assertEquals(n, plan[start + touched], "last group ends at n");
            for (int g = 0; g < touched; g++) {
                int row = plan[rows + g];
                assertTrue(row >= 0 && row < v && !seenRow[row], "row " + row + " listed once");
                seenRow[row] = true;
                int p0 = plan[start + g];
                int p1 = plan[start + g + 1];
                assertTrue(p1 > p0, "group " + g + " is not empty");
                for (int p = p0; p < p1; p++) {
                    int i = plan[p];
                    assertEquals(row, idx[i], "position " + i + " in the group of its row");
                    assertTrue(!seenPos[i], "position " + i + " once");
                    seenPos[i] = true;
                    if (p > p0) {
                        assertTrue(plan[p - 1] < i, "positions increase within a group");
                    }
                }
            }
            for (int i = 0; i < n; i++) {
                assertTrue(seenPos[i], "position " + i + " listed");
                assertTrue(seenRow[idx[i]], "row " + idx[i] + " touched");
            }
        }
    }

    @Test
    void badIndexNamesPositionAndValue() {
        IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class,
                () -> CudaNnOps.EmbeddingPlan.build(new int[] {0, 2, 5, -1}, 5, "dTable [5, 3]"));
        assertTrue(e.getMessage().contains("indices[2] = 5"), e.getMessage());
        e = assertThrows(IndexOutOfBoundsException.class,
                () -> CudaNnOps.EmbeddingPlan.build(new int[] {1, -1}, 5, "dTable"));
        assertTrue(e.getMessage().contains("indices[1] = -1"), e.getMessage());
    }
}
