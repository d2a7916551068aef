package org.diffusion4j.metrics;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Backend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.diffusion4j.metrics.MetricsTestSupport.gaussian;
import static org.diffusion4j.metrics.MetricsTestSupport.nearestOracle;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The memorisation ratio: copies give 0, fresh samples of the data distribution give 1 within a DKW bound. */
class NearestNeighbourRatioTest {

    private static Backend backend;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void tearDown() {
        backend.close();
    }

    @Test
    void distancesAndMediansFollowTheDefinition() {
        PointSet train = gaussian("train", 60, 3, null, 1, 1);
        PointSet gen = gaussian("generated", 21, 3, null, 1.2, 2);
        PointSet held = gaussian("held-out", 16, 3, null, 1, 3);
        NearestNeighbourRatio r = NearestNeighbourRatio.compute(gen, train, held, Pairwise.host());
        double[] dg = nearestOracle(gen, train);
        double[] dh = nearestOracle(held, train);
        assertArrayEquals(dg, r.generatedDistances(), 1e-12);
        assertArrayEquals(dh, r.heldOutDistances(), 1e-12);
        double[] sg = dg.clone();
        double[] sh = dh.clone();
        Arrays.sort(sg);
        Arrays.sort(sh);
        assertEquals(sg[10], r.medianGenerated(), 1e-12);                      // odd count: the middle one
        assertEquals(0.5 * (sh[7] + sh[8]), r.medianHeldOut(), 1e-12);         // even count: mean of the middle two
        assertEquals(sg[10] / (0.5 * (sh[7] + sh[8])), r.medianRatio(), 1e-12);
        long below = Arrays.stream(dg).filter(v -> v < 0.8 * r.medianHeldOut()).count();
        assertEquals(below / 21.0, r.fractionBelow(0.8), 1e-15);
        NearestNeighbourRatio g = NearestNeighbourRatio.compute(gen, train, held, Pairwise.on(backend, 8));
        assertEquals(r.medianRatio(), g.medianRatio(), 1e-5);
    }

    /** Generated samples that are training points (or within 1e-3 of them) sit far below the held-out scale. */
    @Test
    void copiesOfTrainingPointsGiveARatioNearZero() {
        PointSet train = gaussian("train", 500, 6, null, 1, 4);
        PointSet held = gaussian("held-out", 200, 6, null, 1, 5);
        float[] v = Arrays.copyOf(train.toArray(), 100 * 6);
        PointSet copies = PointSet.of("copies", v, 100, 6);
        NearestNeighbourRatio exact = NearestNeighbourRatio.compute(copies, train, held, Pairwise.host());
        assertEquals(0.0, exact.medianRatio());
        assertEquals(1.0, exact.fractionBelow(0.01));
        SplittableRandom r = new SplittableRandom(6);
        for (int i = 0; i < v.length; i++) {
            v[i] += (float) (1e-3 * r.nextGaussian());
        }
        NearestNeighbourRatio near = NearestNeighbourRatio.compute(PointSet.of("near", v, 100, 6), train, held,
                Pairwise.on(backend));
        assertTrue(near.medianRatio() < 0.02, "ratio " + near.medianRatio());
        assertEquals(1.0, near.fractionBelow(0.05));
    }

    /**
     * Generated and held-out points drawn from the training distribution: given the training set, their
     * nearest-training distances are i.i.d. from one CDF {@code F}. By the DKW inequality (Massart 1990, Ann.
     * Probab. 18) each empirical CDF is within {@code ε_n = √(ln(2/δ)/(2n))} of {@code F} with probability
     * {@code 1 − δ}, so the generated median lies between the held-out quantiles at
     * {@code 1/2 ∓ (ε_G + ε_H + 1/H)}, and the share of generated samples below the held-out median is within
     * {@code ε_G + ε_H + 1/H} of 1/2 ({@code δ = 1e-9}).
     */
    @Test
    void freshSamplesGiveARatioNearOne() {
        int n = 3000;
        PointSet train = gaussian("train", n, 4, null, 1, 7);
        PointSet gen = gaussian("generated", n, 4, null, 1, 8);
        PointSet held = gaussian("held-out", n, 4, null, 1, 9);
        NearestNeighbourRatio r = NearestNeighbourRatio.compute(gen, train, held, Pairwise.on(backend));
        double eps = 2 * Math.sqrt(Math.log(2 / 1e-9) / (2 * n)) + 1.0 / n;
        double[] sh = r.heldOutDistances();
        Arrays.sort(sh);
        double lo = sh[(int) Math.floor((0.5 - eps) * n)] / r.medianHeldOut();
        double hi = sh[(int) Math.ceil((0.5 + eps) * n)] / r.medianHeldOut();
        assertTrue(r.medianRatio() >= lo && r.medianRatio() <= hi,
                "ratio " + r.medianRatio() + " outside [" + lo + ", " + hi + "]");
        assertEquals(0.5, r.fractionBelow(1), eps);
        assertTrue(hi - lo < 0.5, "informative bound: [" + lo + ", " + hi + "]");
    }

    @Test
    void rejectsAHeldOutSetThatRepeatsTraining() {
        PointSet train = gaussian("train", 20, 2, null, 1, 10);
        PointSet gen = gaussian("generated", 5, 2, null, 1, 11);
        String m = assertThrows(IllegalArgumentException.class,
                () -> NearestNeighbourRatio.compute(gen, train, train.named("held-out"), Pairwise.host())).getMessage();
        assertTrue(m.contains("from held-out to its nearest train point is 0.0"), m);
    }

    /**
     * The public constructor took any medians: a held-out median of 0 (or negative, or NaN) made
     * {@code medianRatio} infinite or NaN and {@code fractionBelow} wrong, and no generated distances made
     * {@code fractionBelow} 0/0. It checks what {@code compute} guarantees.
     */
    @Test
    void theConstructorRefusesWhatComputeNeverProduces() {
        double[] one = {1.0};
        for (double bad : new double[] {0, -1, Double.NaN, Double.POSITIVE_INFINITY}) {
            String m = assertThrows(IllegalArgumentException.class,
                    () -> new NearestNeighbourRatio(one, one, 1, bad)).getMessage();
            assertTrue(m.contains("medianHeldOut") && m.contains(String.valueOf(bad)), m);
        }
        String m = assertThrows(IllegalArgumentException.class,
                () -> new NearestNeighbourRatio(one, one, Double.NaN, 1)).getMessage();
        assertTrue(m.contains("medianGenerated"), m);
        m = assertThrows(IllegalArgumentException.class,
                () -> new NearestNeighbourRatio(new double[0], one, 0, 1)).getMessage();
        assertTrue(m.contains("generatedDistances"), m);
        m = assertThrows(IllegalArgumentException.class,
                () -> new NearestNeighbourRatio(one, new double[] {1, -2}, 1, 1)).getMessage();
        assertTrue(m.contains("heldOutDistances[1]") && m.contains("-2.0"), m);
        assertThrows(NullPointerException.class, () -> new NearestNeighbourRatio(null, one, 1, 1));
        NearestNeighbourRatio ok = new NearestNeighbourRatio(new double[] {0.05, 2}, one, 1, 1);
        assertEquals(0.5, ok.fractionBelow(0.1));
        assertEquals(1.0, ok.medianRatio());
        assertThrows(IllegalArgumentException.class, () -> ok.fractionBelow(Double.NaN));
    }
}
