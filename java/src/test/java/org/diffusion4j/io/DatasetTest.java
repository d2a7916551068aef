package org.diffusion4j.io;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.random.Philox;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Philox permutations (exactness and uniformity), Dataset batches, splits and gathers. */
class DatasetTest {

    /**
     * Upper {@code p = 1e-6} quantile of chi-square with {@code k} degrees of freedom, by the Wilson–Hilferty
     * cube-root normal approximation (E. B. Wilson, M. M. Hilferty, PNAS 17(12), 1931): a fair shuffle fails
     * such a test once in a million runs.
     */
    private static double chiSquareBound(int k) {
        double z = 4.753424; // standard normal upper 1e-6 quantile
        double a = 2.0 / (9 * k);
        return k * Math.pow(1 - a + z * Math.sqrt(a), 3);
    }

    @Test
    void drawsAreThePhiloxWordsInOrder() {
        long seed = IoTestSupport.BASE_SEED;
        PhiloxShuffle s = new PhiloxShuffle(seed, 5);
        for (long i = 0; i < 21; i++) {
            assertEquals(Philox.word(seed, 5, i), s.nextWord(), "word " + i + "; " + IoTestSupport.seedOf("words"));
        }
        assertEquals(21, s.wordsDrawn());
    }

    @Test
    void permutationsAreUniform() {
        long seed = IoTestSupport.BASE_SEED;
        // all 24 orders of 4 elements, each stream one permutation
        int trials = 48_000;
        Map<String, Integer> counts = new HashMap<>();
        for (int t = 0; t < trials; t++) {
            counts.merge(Arrays.toString(PhiloxShuffle.permutation(4, seed, t)), 1, Integer::sum);
        }
        assertEquals(24, counts.size());
        double expect = trials / 24.0;
        double chi = counts.values().stream().mapToDouble(c -> (c - expect) * (c - expect) / expect).sum();
        assertTrue(chi < chiSquareBound(23), "chi-square " + chi + " over 23 dof; " + IoTestSupport.seedOf("perm"));
        // where element 0 lands among 10 positions
        int[] pos = new int[10];
        int n = 20_000;
        for (int t = 0; t < n; t++) {
            int[] p = PhiloxShuffle.permutation(10, seed + 1, t);
            for (int i = 0; i < 10; i++) {
                if (p[i] == 0) {
                    pos[i]++;
                }
            }
        }
        double chi2 = Arrays.stream(pos).mapToDouble(c -> (c - n / 10.0) * (c - n / 10.0) / (n / 10.0)).sum();
        assertTrue(chi2 < chiSquareBound(9), "chi-square " + chi2 + " over 9 dof; " + IoTestSupport.seedOf("pos"));
    }

    @Test
    void boundedIntsStayInRangeIncludingRejectionHeavyBounds() {
        PhiloxShuffle s = new PhiloxShuffle(IoTestSupport.BASE_SEED, 1); // seed: IoTestSupport.seedOf("bounded")
        int bound = (1 << 30) + (1 << 29) + 1; // 2^32 mod bound is large: many rejections
        long sum = 0;
        for (int i = 0; i < 20_000; i++) {
            int v = s.nextInt(bound);
            assertTrue(v >= 0 && v < bound);
            sum += v;
        }
        double mean = sum / 20_000.0;
        // uniform mean bound/2, sd bound/sqrt(12 * 20000); 6 sd
        assertEquals(bound / 2.0, mean, 6.0 * bound / Math.sqrt(12 * 20_000.0), IoTestSupport.seedOf("bounded"));
        assertTrue(s.wordsDrawn() > 20_000, "some draws must have been rejected");
        assertThrows(IllegalArgumentException.class, () -> s.nextInt(0));
        int[] p = PhiloxShuffle.permutation(1000, 3, 4);
        assertArrayEquals(p, PhiloxShuffle.permutation(1000, 3, 4), "deterministic");
        assertFalse(Arrays.equals(p, PhiloxShuffle.permutation(1000, 3, 5)), "streams differ");
        assertArrayEquals(java.util.stream.IntStream.range(0, 1000).toArray(), Arrays.stream(p).sorted().toArray());
    }

    private static Dataset numbered(int n, int per, int classes) {
        float[] d = new float[n * per];
        int[] l = new int[n];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < per; k++) {
                d[i * per + k] = i * 1000 + k;
            }
            l[i] = i % classes;
        }
        return Dataset.of(d, new long[] {per}, l, List.of());
    }

    @Test
    void batchesCoverEachEpochOnceAndAreReproducible() {
        Dataset d = numbered(10, 2, 3);
        Dataset.Batches b = d.batches(3, 99);
        int[] flat = new int[30];
        for (int k = 0; k < 10; k++) {
            System.arraycopy(b.indices(k), 0, flat, 3 * k, 3);
        }
        for (int e = 0; e < 3; e++) {
            int[] epoch = Arrays.copyOfRange(flat, 10 * e, 10 * e + 10);
            assertArrayEquals(PhiloxShuffle.permutation(10, 99, e), epoch, "epoch " + e);
        }
        // batch k is a function of (seed, k) only: a fresh sequence, seeking, out-of-order access
        Dataset.Batches other = d.batches(3, 99);
        assertArrayEquals(b.indices(7), other.indices(7));
        other.seek(4);
        assertEquals(4, other.step());
        assertArrayEquals(b.indices(4), other.indices(other.step()));
        assertFalse(Arrays.equals(d.batches(3, 98).indices(0), b.indices(0))
                && Arrays.equals(d.batches(3, 98).indices(1), b.indices(1)), "seeds differ");
        assertThrows(IllegalArgumentException.class, () -> d.batches(0, 1));
        // a batch larger than the dataset spans epochs
        int[] big = d.batches(25, 5).indices(0);
        assertEquals(25, big.length);
    }

    @Test
    void nextGathersSamplesAndLabelsIntoTensors() {
        Dataset d = numbered(7, 3, 4);
        try (Backend cpu = new CpuBackend(1); TensorScope scope = TensorScope.open()) {
            Tensor x = cpu.empty(scope, DType.F32, 4, 3);
            Tensor y = cpu.empty(scope, DType.I32, 4);
            Dataset.Batches b = d.batches(4, 11);
            for (int step = 0; step < 3; step++) {
                int[] idx = b.next(x, y);
                float[] xs = x.toFloatArray();
                int[] ys = new int[4];
                y.copyTo(MemorySegment.ofArray(ys));
                for (int k = 0; k < 4; k++) {
                    assertArrayEquals(d.sample(idx[k]), Arrays.copyOfRange(xs, 3 * k, 3 * k + 3));
                    assertEquals(d.label(idx[k]), ys[k]);
                }
            }
            assertEquals(3, b.step());
            Tensor wrong = cpu.empty(scope, DType.F32, 4, 2);
            assertThrows(IllegalArgumentException.class, () -> d.gather(new int[] {0, 1, 2, 3}, wrong, null));
            Tensor all = d.toTensor(cpu, scope);
            assertArrayEquals(new long[] {7, 3}, all.shape());
            assertArrayEquals(d.toArray(), all.toFloatArray());
            Tensor labels = d.labelsTensor(cpu, scope);
            assertEquals(3, labels.segment().getAtIndex(ValueLayout.JAVA_INT, 3));
        }
    }

    @Test
    void splitIsADisjointSeededPartition() {
        Dataset d = numbered(101, 1, 5);
        Dataset.Split s = d.split(0.2, 7);
        assertEquals(20, s.heldOut().size());
        assertEquals(81, s.train().size());
        Set<Float> seen = new HashSet<>();
        for (Dataset part : List.of(s.train(), s.heldOut())) {
            for (int i = 0; i < part.size(); i++) {
                float id = part.sample(i)[0];
                assertTrue(seen.add(id), "sample " + id + " in both parts");
                assertEquals(((int) id / 1000) % 5, part.label(i), "labels travel with samples");
            }
        }
        assertEquals(101, seen.size());
        assertArrayEquals(s.heldOut().toArray(), d.split(0.2, 7).heldOut().toArray(), "same seed, same split");
        assertFalse(Arrays.equals(s.heldOut().toArray(), d.split(0.2, 8).heldOut().toArray()));
        assertThrows(IllegalArgumentException.class, () -> d.split(0, 1));
        assertThrows(IllegalArgumentException.class, () -> d.split(1, 1));
        assertThrows(IllegalArgumentException.class, () -> numbered(3, 1, 1).split(0.01, 1));
    }

    @Test
    void constructionChecksCountsAndLabels() {
        assertThrows(IllegalArgumentException.class, () -> Dataset.of(new float[7], new long[] {2}, null, List.of()));
        assertThrows(IllegalArgumentException.class, () -> Dataset.of(new float[4], new long[] {2}, new int[3], List.of()));
        assertThrows(IllegalArgumentException.class, () -> Dataset.of(new float[4], new long[] {2}, new int[] {0, -1},
                List.of()));
        assertThrows(IllegalArgumentException.class, () -> Dataset.of(new float[4], new long[] {2}, new int[] {0, 2},
                List.of("a", "b")));
        assertThrows(IllegalArgumentException.class, () -> Dataset.of(new float[4], new long[] {0}, null, List.of()));
        IllegalArgumentException nan = assertThrows(IllegalArgumentException.class,
                () -> Dataset.of(new float[] {0, 1, 2, Float.NaN}, new long[] {2}, null, List.of()));
        org.junit.jupiter.api.Assertions.assertTrue(nan.getMessage().contains("element 1 of sample 1 is NaN"),
                nan.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Dataset.of(new float[] {Float.NEGATIVE_INFINITY, 0},
                new long[] {2}, null, List.of()));
        // class names: distinct and non-empty (a checkpoint records them)
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class, () -> Dataset.of(new float[4],
                new long[] {2}, new int[] {0, 1}, List.of("x", "x")));
        org.junit.jupiter.api.Assertions.assertTrue(twice.getMessage().contains("'x' of an earlier class"),
                twice.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Dataset.of(new float[4], new long[] {2}, new int[] {0, 1},
                List.of("x", "")));
        IllegalArgumentException control = assertThrows(IllegalArgumentException.class, () -> Dataset.of(
                new float[4], new long[] {2}, new int[] {0, 1}, List.of("x", "a\u001b[31m")));
        org.junit.jupiter.api.Assertions.assertTrue(control.getMessage().contains("control character"),
                control.getMessage());
        Dataset d = Dataset.of(new float[6], new long[] {1, 3}, new int[] {1, 0}, List.of("a", "b"));
        assertEquals(2, d.numClasses());
        assertArrayEquals(new long[] {5, 1, 3}, d.batchShape(5));
        Dataset u = Dataset.of(new float[6], new long[] {3}, null, List.of());
        assertThrows(IllegalStateException.class, () -> u.label(0));
        assertEquals(0, u.numClasses());
        Dataset sub = d.subset(new int[] {1, 1, 0});
        assertArrayEquals(new int[] {0, 0, 1}, sub.labels());
    }
}
