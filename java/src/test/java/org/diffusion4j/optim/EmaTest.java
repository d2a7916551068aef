package org.diffusion4j.optim;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.Parameter;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.SplittableRandom;

import static org.diffusion4j.nn.NnTestSupport.assertClose;
import static org.diffusion4j.nn.NnTestSupport.random;
import static org.diffusion4j.nn.NnTestSupport.seedOf;
import static org.diffusion4j.nn.NnTestSupport.uniform;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** EMA with the inverse-power warm-up of k-diffusion / diffusers' EMAModel. */
class EmaTest {

    static CpuBackend be;

    @BeforeAll
    static void start() {
        be = new CpuBackend(1);
    }

    @AfterAll
    static void stop() {
        be.close();
    }

    @Test
    void warmUpFollowsTheFormula() {
        Ema.Schedule s = new Ema.Schedule(0.9999, 0.0, 1.0, 2.0 / 3.0, 0);
        assertEquals(0.0, s.decay(0));
        assertEquals(0.0, s.decay(1), "the first update copies the weights");
        for (long n = 2; n < 5000; n += 37) {
            assertEquals(Math.min(0.9999, 1 - Math.pow(n, -2.0 / 3.0)), s.decay(n), 1e-15, "update " + n);
        }
        Ema.Schedule g = new Ema.Schedule(0.95, 0.2, 4.0, 0.5, 10);
        for (long n = 0; n <= 11; n++) {
            assertEquals(0.0, g.decay(n), "no averaging before update " + (10 + 2));
        }
        assertEquals(Math.max(0.2, 1 - Math.pow(1 + 1 / 4.0, -0.5)), g.decay(12), 1e-15);
        assertEquals(0.95, g.decay(1_000_000), "clamped at maxDecay");
    }

    @Test
    void reachesTheDocumentedDecays() {
        // k-diffusion EMAWarmup / diffusers EMAModel documentation: inv_gamma = 1, power = 2/3 reaches 0.999 at
        // 31.6K steps and 0.9999 at 1M; power = 3/4 reaches 0.999 at 10K and 0.9999 at 215.4K.
        Ema.Schedule twoThirds = new Ema.Schedule(1.0, 0.0, 1.0, 2.0 / 3.0, 0);
        Ema.Schedule threeQuarters = new Ema.Schedule(1.0, 0.0, 1.0, 0.75, 0);
        assertEquals(0.999, twoThirds.decay(31_600 + 1), 2e-6);
        assertEquals(0.9999, twoThirds.decay(1_000_000 + 1), 2e-7);
        assertEquals(0.999, threeQuarters.decay(10_000 + 1), 2e-6);
        assertEquals(0.9999, threeQuarters.decay(215_400 + 1), 2e-7);
    }

    @Test
    void averagesTheWeights() {
        String tc = "ema";
        SplittableRandom r = random(tc);
        Ema.Schedule s = new Ema.Schedule(0.9, 0.0, 1.0, 0.75, 1);
        try (TensorScope scope = TensorScope.open()) {
            Parameter p = Parameter.zeros(be, scope, "weight", 4, 9);
            float[] w = uniform(r, 36, -1, 1);
            p.value().copyFrom(w);
            double[] avg = new double[36];
            for (int i = 0; i < 36; i++) {
                avg[i] = w[i];
            }
            try (Ema ema = new Ema(be, Map.of("w", p), s)) {
                assertClose(tc + " initial copy", ema.averages().get("w").toFloatArray(), avg, 0, seedOf(tc));
                for (int n = 1; n <= 12; n++) {
                    w = uniform(r, 36, -1, 1);
                    p.value().copyFrom(w);
                    double d = ema.update();
                    assertEquals(s.decay(n), d);
                    for (int i = 0; i < 36; i++) {
                        avg[i] = d * avg[i] + (1 - d) * w[i];
                    }
                    assertClose(tc + " after update " + n, ema.averages().get("w").toFloatArray(), avg, 1e-6,
                            seedOf(tc));
                }
                assertEquals(12, ema.updates());
                ema.copyToParameters();
                assertClose(tc + " copied back", p.value().toFloatArray(), avg, 1e-6, seedOf(tc));
            }
        }
    }

    @Test
    void badSchedulesAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new Ema.Schedule(1.1, 0, 1, 0.75, 0));
        assertThrows(IllegalArgumentException.class, () -> new Ema.Schedule(0.9, 0.95, 1, 0.75, 0));
        assertThrows(IllegalArgumentException.class, () -> new Ema.Schedule(0.9, 0, 0, 0.75, 0));
        assertThrows(IllegalArgumentException.class, () -> new Ema.Schedule(0.9, 0, 1, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new Ema.Schedule(0.9, 0, 1, 0.75, -1));
    }

    @Test
    void closedEmaAndAnOverflowingCounterAreRefused() {
        try (TensorScope scope = TensorScope.open()) {
            Parameter p = Parameter.zeros(be, scope, "weight", 3);
            p.value().copyFrom(new float[] {1, 2, 3});
            Ema ema = new Ema(be, Map.of("w", p), Ema.Schedule.defaults());
            // the next update would be number 2^63: the counter would wrap to a negative update number
            IllegalArgumentException wrap = assertThrows(IllegalArgumentException.class,
                    () -> ema.setUpdates(Long.MAX_VALUE));
            assertTrue(wrap.getMessage().contains(Long.toString(Long.MAX_VALUE)), wrap.getMessage());
            ema.setUpdates(Long.MAX_VALUE - 1);
            assertEquals(Long.MAX_VALUE - 1, ema.updates());
            ema.close();
            IllegalStateException closed = assertThrows(IllegalStateException.class, ema::copyToParameters);
            assertEquals("Ema is closed", closed.getMessage());
            assertArrayEquals(new float[] {1, 2, 3}, p.value().toFloatArray());
        }
    }

    @Test
    void updateNumbersBeforeTheFirstGiveNoDecayEvenAtTheBottomOfTheRange() {
        Ema.Schedule s = Ema.Schedule.defaults();
        // Long.MIN_VALUE - 0 - 1 wrapped to Long.MAX_VALUE: the decay was maxDecay instead of 0
        assertEquals(0.0, s.decay(Long.MIN_VALUE));
        assertEquals(0.0, s.decay(-1));
        assertEquals(0.0, s.decay(0));
        assertEquals(0.0, s.decay(1));
        assertEquals(1.0 - Math.pow(2.0, -2.0 / 3.0), s.decay(2), 1e-15);
        Ema.Schedule late = new Ema.Schedule(0.9999, 0.0, 1.0, 2.0 / 3.0, Long.MAX_VALUE);
        assertEquals(0.0, late.decay(Long.MAX_VALUE));
        assertEquals(0.0, late.decay(Long.MIN_VALUE));
    }

    /**
     * Found by an adversarial trial: {@code update()} with one parameter's scope closed counted the update and moved
     * the other averages before failing, and at {@code updates = 2^63 − 1} the counter wrapped to
     * {@code Long.MIN_VALUE}, whose decay 0 replaced the average by the raw weights. Now nothing changes in either case.
     */
    @Test
    void anUpdateThatCannotCompleteChangesNothing() {
        Ema.Schedule s = new Ema.Schedule(0.9, 0.0, 1.0, 0.75, 0);
        try (TensorScope keep = TensorScope.open()) {
            Parameter a = Parameter.zeros(be, keep, "a", 3);
            a.value().copyFrom(new float[] {1, 2, 3});
            TensorScope gone = TensorScope.open();
            Parameter b = Parameter.zeros(be, gone, "b", 2);
            java.util.LinkedHashMap<String, Parameter> params = new java.util.LinkedHashMap<>();
            params.put("a", a);
            params.put("b", b);
            try (Ema ema = new Ema(be, params, s)) {
                a.value().copyFrom(new float[] {5, 5, 5});
                gone.close();
                assertThrows(IllegalStateException.class, ema::update);
                assertEquals(0, ema.updates());
                assertArrayEquals(new float[] {1, 2, 3}, ema.averages().get("a").toFloatArray());
            }
        }
        try (TensorScope scope = TensorScope.open()) {
            Parameter p = Parameter.zeros(be, scope, "w", 2);
            try (Ema ema = new Ema(be, Map.of("w", p), s)) {
                ema.setUpdates(Long.MAX_VALUE - 1);
                ema.update();
                assertEquals(Long.MAX_VALUE, ema.updates());
                IllegalStateException e = assertThrows(IllegalStateException.class, ema::update);
                assertTrue(e.getMessage().contains("cannot grow"), e.getMessage());
                assertEquals(Long.MAX_VALUE, ema.updates());
            }
        }
    }
}
