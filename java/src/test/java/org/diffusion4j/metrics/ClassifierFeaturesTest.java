package org.diffusion4j.metrics;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.io.Dataset;
import org.diffusion4j.random.Philox;
import org.diffusion4j.tensor.Backend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ClassifierFeaturesTest {

    private static Backend be;

    /** Small, fast classifier settings. */
    private static final ClassifierFeatures.Config SMALL = new ClassifierFeatures.Config(32, 8, 4, 16, 5e-3, 1e-4, 1);

    @BeforeAll
    static void open() {
        be = new CpuBackend();
    }

    @AfterAll
    static void close() {
        be.close();
    }

    /** {@code perClass} samples {@code [1, 3, 3]} of each of 3 classes: well-separated Gaussian blobs. */
    private static Dataset blobs(int perClass, long seed) {
        int d = 9;
        int n = 3 * perClass;
        float[] x = new float[n * d];
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            int c = i % 3;
            y[i] = c;
            for (int j = 0; j < d; j++) {
                double mean = (j % 3 == c) ? 0.8 : -0.4;
                x[i * d + j] = (float) (mean + 0.25 * Philox.normal(seed, 0, (long) i * d + j));
            }
        }
        return Dataset.of(x, new long[] {1, 3, 3}, y, List.of());
    }

    @Test
    void learnsSeparableClassesAndCachesItsWeights(@TempDir Path cache) throws IOException {
        Dataset train = blobs(40, 1);
        Dataset test = blobs(20, 2);
        List<String> log = new ArrayList<>();
        float[] first;
        try (ClassifierFeatures c = ClassifierFeatures.trainOrLoad(be, train, SMALL, cache, log::add)) {
            assertFalse(c.provenance().fromCache());
            assertTrue(c.provenance().trainAccuracy() > 0.95, "train accuracy " + c.provenance().trainAccuracy());
            double acc = LabelMetrics.accuracy(c.predict(test.toArray(), test.size()), test.labels());
            assertTrue(acc > 0.95, "held-out accuracy " + acc);
            first = c.features(test.toArray(), test.size());
            assertEquals(test.size() * SMALL.featureDim(), first.length);
        }
        List<Path> files;
        try (var s = Files.list(cache)) {
            files = s.toList();
        }
        assertEquals(1, files.size(), files.toString());
        assertTrue(files.get(0).getFileName().toString().startsWith("classifier-"), files.toString());

        try (ClassifierFeatures c = ClassifierFeatures.trainOrLoad(be, train, SMALL, cache, log::add)) {
            assertTrue(c.provenance().fromCache(), log.toString());
            assertArrayEquals(first, c.features(test.toArray(), test.size()), "cached weights give the same features");
        }

        // a damaged cache file is retrained (deterministically: the same features) and replaced
        byte[] bytes = Files.readAllBytes(files.get(0));
        Files.write(files.get(0), Arrays.copyOf(bytes, bytes.length / 2));
        log.clear();
        try (ClassifierFeatures c = ClassifierFeatures.trainOrLoad(be, train, SMALL, cache, log::add)) {
            assertFalse(c.provenance().fromCache());
            assertTrue(log.stream().anyMatch(l -> l.contains("unreadable")), log.toString());
            assertArrayEquals(first, c.features(test.toArray(), test.size()), "training is deterministic");
        }
        assertEquals(bytes.length, Files.size(files.get(0)), "the cache file was rewritten whole");
    }

    @Test
    void cacheKeyDependsOnDataLabelsAndConfig() {
        Dataset a = blobs(10, 1);
        String key = ClassifierFeatures.cacheKey(a, SMALL);
        assertEquals(key, ClassifierFeatures.cacheKey(blobs(10, 1), SMALL));
        float[] x = a.toArray();
        x[17] = Math.nextUp(x[17]);
        assertNotEquals(key, ClassifierFeatures.cacheKey(Dataset.of(x, a.sampleShape(), a.labels(), List.of()), SMALL));
        int[] y = a.labels();
        y[0] = (y[0] + 1) % 3;
        assertNotEquals(key, ClassifierFeatures.cacheKey(Dataset.of(a.toArray(), a.sampleShape(), y, List.of()),
                SMALL));
        ClassifierFeatures.Config more = new ClassifierFeatures.Config(32, 8, 5, 16, 5e-3, 1e-4, 1);
        assertNotEquals(key, ClassifierFeatures.cacheKey(a, more));
    }

    @Test
    void unlabelledDataIsRefused() {
        Dataset d = Dataset.of(new float[18], new long[] {9}, null, List.of());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ClassifierFeatures.trainOrLoad(be, d, SMALL, null, null));
        assertTrue(e.getMessage().contains("labelled"), e.getMessage());
    }

    @Test
    void inputOfTheWrongSizeIsRefused() {
        try (ClassifierFeatures c = ClassifierFeatures.untrained(be, new long[] {4}, 2, SMALL)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> c.features(new float[7], 2));
            assertTrue(e.getMessage().contains("7 values"), e.getMessage());
        }
    }

    /**
     * Wiring of the feature pipeline: with {@code fc1 = I, b1 = 12, fc2 = I, b2 = −12} the penultimate features are
     * {@code GELU(GELU(x + 12) − 12)}, which is {@code x} to float precision for {@code |x| < 6}... only when the
     * outer GELU sees positive inputs; so {@code b2 = 0} instead: features {@code = x + 12} up to
     * {@code (x + 12)·(1 − Φ(x + 12)) < 1e-20}. Gaussian inputs then give Gaussian features, and the FD of the
     * features of two Gaussian sets must equal the closed form of Dowson and Landau for diagonal covariances,
     * {@code ‖μ1 − μ2‖² + Σ_i (√a_i − √b_i)²}, within the sampling error, and the FD of the raw points exactly.
     */
    @Test
    void fdOfFeaturesMatchesTheClosedFormForGaussianFeatures() {
        int d = 4;
        int n = 40_000;
        ClassifierFeatures.Config cfg = new ClassifierFeatures.Config(d, d, 1, 16, 1e-3, 0, 0);
        double[] mu1 = {0, 0, 0, 0};
        double[] var1 = {1, 0.5, 0.25, 2};
        double[] mu2 = {0.5, -0.3, 0, 0.2};
        double[] var2 = {0.5, 0.5, 1, 1};
        float[] x = gaussian(n, mu1, var1, 5);
        float[] y = gaussian(n, mu2, var2, 6);
        try (ClassifierFeatures c = ClassifierFeatures.untrained(be, new long[] {d}, 2, cfg)) {
            float[] eye = new float[d * d];
            for (int i = 0; i < d; i++) {
                eye[i * d + i] = 1;
            }
            float[] twelve = new float[d];
            Arrays.fill(twelve, 12f);
            c.net().fc1.weight().value().copyFrom(eye);
            c.net().fc1.bias().value().copyFrom(twelve);
            c.net().fc2.weight().value().copyFrom(eye);
            c.net().fc2.bias().value().copyFrom(new float[d]);
            float[] fx = c.features(x, n);
            for (int i = 0; i < 8; i++) {
                assertEquals(x[i] + 12f, fx[i], 2e-6f, "feature " + i + " is x + 12");
            }
            double fd = FrechetDistance.compute(c.featureSet("x", x, n), c.featureSet("y", y, n));
            double raw = FrechetDistance.compute(PointSet.of("x", x, n, d), PointSet.of("y", y, n, d));
            assertEquals(raw, fd, 1e-4 * raw, "a shift by 12 leaves the FD unchanged");
            double closed = 0;
            for (int i = 0; i < d; i++) {
                closed += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]);
                closed += Math.pow(Math.sqrt(var1[i]) - Math.sqrt(var2[i]), 2);
            }
            // sampling error of the fitted moments at n = 40000: ~ sqrt(var/n) per mean, ~ var·sqrt(2/n) per variance
            assertEquals(closed, fd, 0.02, "closed form " + closed);
            assertEquals(0, FrechetDistance.compute(c.featureSet("x", x, n), c.featureSet("x again", x, n)), 1e-9,
                    "identical sets");
        }
    }

    private static float[] gaussian(int n, double[] mu, double[] var, long seed) {
        int d = mu.length;
        float[] out = new float[n * d];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                out[i * d + j] = (float) (mu[j] + Math.sqrt(var[j]) * Philox.normal(seed, 0, (long) i * d + j));
            }
        }
        return out;
    }
}
