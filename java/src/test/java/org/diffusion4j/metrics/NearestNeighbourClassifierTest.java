package org.diffusion4j.metrics;

import org.diffusion4j.TestSeed;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** k-NN votes against a brute-force oracle (sort every distance), on separable and on random labels. */
class NearestNeighbourClassifierTest {

    /** The oracle: all distances in float64, a stable sort (ties by index), counted votes, ties to the nearer class. */
    private static int oracle(float[][] ref, int[] labels, int classes, float[] q, int k) {
        double[] d = new double[ref.length];
        for (int j = 0; j < ref.length; j++) {
            for (int c = 0; c < q.length; c++) {
                double t = (double) q[c] - ref[j][c];
                d[j] += t * t;
            }
        }
        Integer[] order = IntStream.range(0, ref.length).boxed().sorted(Comparator.comparingDouble(j -> d[j]))
                .toArray(Integer[]::new);
        int[] votes = new int[classes];
        for (int p = 0; p < k; p++) {
            votes[labels[order[p]]]++;
        }
        int most = Arrays.stream(votes).max().orElseThrow();
        for (int p = 0; p < k; p++) {
            if (votes[labels[order[p]]] == most) {
                return labels[order[p]];
            }
        }
        throw new AssertionError();
    }

    @Test
    void matchesTheBruteForceOracle() {
        long seed = TestSeed.BASE;
        SplittableRandom r = new SplittableRandom(seed);
        for (int trial = 0; trial < 6; trial++) {
            int m = 1 + r.nextInt(80);
            int d = 1 + r.nextInt(6);
            int classes = 1 + r.nextInt(4);
            int k = 1 + r.nextInt(Math.min(m, 7));
            float[][] ref = new float[m][d];
            int[] labels = new int[m];
            for (int j = 0; j < m; j++) {
                for (int c = 0; c < d; c++) {
                    // a coarse grid makes equal distances (the tie rules) common
                    ref[j][c] = trial % 2 == 0 ? (float) r.nextGaussian() : r.nextInt(3);
                }
                labels[j] = r.nextInt(classes);
            }
            float[][] q = new float[50][d];
            for (float[] row : q) {
                for (int c = 0; c < d; c++) {
                    row[c] = trial % 2 == 0 ? (float) r.nextGaussian() : r.nextInt(3);
                }
            }
            int[] got = new NearestNeighbourClassifier(PointSet.of("ref", ref), labels, classes, k)
                    .predict(PointSet.of("q", q));
            for (int i = 0; i < q.length; i++) {
                assertEquals(oracle(ref, labels, classes, q[i], k), got[i],
                        "query " + i + ", trial " + trial + ", m " + m + ", d " + d + ", k " + k + ", seed " + seed);
            }
        }
    }

    @Test
    void separatedClustersAreRecognisedAndShuffledLabelsAreChance() {
        long seed = TestSeed.BASE + 1;
        SplittableRandom r = new SplittableRandom(seed);
        int classes = 4;
        int m = 400;
        float[][] ref = new float[m][3];
        int[] labels = new int[m];
        float[][] q = new float[400][3];
        int[] truth = new int[q.length];
        for (int j = 0; j < m; j++) {
            labels[j] = j % classes;
            truth[j] = (j + 1) % classes;
            for (int c = 0; c < 3; c++) {
                ref[j][c] = (float) (10 * (labels[j] == c ? 1 : 0) + r.nextGaussian());
                q[j][c] = (float) (10 * (truth[j] == c ? 1 : 0) + r.nextGaussian());
            }
        }
        var knn = new NearestNeighbourClassifier(PointSet.of("ref", ref), labels, classes, 5);
        assertArrayEquals(truth, knn.predict(PointSet.of("q", q)), "clusters 10 standard deviations apart");
        int[] shuffled = labels.clone();
        for (int j = m - 1; j > 0; j--) {
            int t = r.nextInt(j + 1);
            int x = shuffled[j];
            shuffled[j] = shuffled[t];
            shuffled[t] = x;
        }
        double acc = LabelMetrics.accuracy(new NearestNeighbourClassifier(PointSet.of("ref", ref), shuffled, classes,
                5).predict(PointSet.of("q", q)), truth);
        // chance is 1/4; 400 queries: a standard deviation of ~0.022
        assertTrue(Math.abs(acc - 0.25) < 0.11, "shuffled labels give chance accuracy, got " + acc + ", seed " + seed);
    }

    @Test
    void badArgumentsAreNamed() {
        PointSet ref = PointSet.of("ref", new float[][] {{0}, {1}});
        assertThrows(IllegalArgumentException.class, () -> new NearestNeighbourClassifier(ref, new int[] {0}, 2, 1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new NearestNeighbourClassifier(ref, new int[] {0, 2}, 2, 1));
        assertTrue(e.getMessage().contains("label 2 of reference point 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new NearestNeighbourClassifier(ref, new int[] {0, 1}, 2,
                3));
        assertTrue(e.getMessage().contains("k must be in [1, 2], got 3"), e.getMessage());
        var knn = new NearestNeighbourClassifier(ref, new int[] {0, 1}, 2, 1);
        assertThrows(IllegalArgumentException.class, () -> knn.predict(PointSet.of("q", new float[][] {{0, 0}})));
    }
}
