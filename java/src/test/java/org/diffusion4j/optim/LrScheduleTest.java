package org.diffusion4j.optim;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Linear warm-up then cosine decay to a floor. */
class LrScheduleTest {

    @Test
    void warmUpThenCosine() {
        LrSchedule s = LrSchedule.warmupCosine(1e-3, 100, 1100, 1e-5);
        assertEquals(0.0, s.lr(0));
        assertEquals(0.5e-3, s.lr(50), 1e-18);
        assertEquals(0.99e-3, s.lr(99), 1e-18);
        assertEquals(1e-3, s.lr(100), 1e-18, "peak at the end of warm-up");
        assertEquals((1e-3 + 1e-5) / 2, s.lr(600), 1e-15, "halfway through the decay: cos(pi/2) = 0");
        assertEquals(1e-5, s.lr(1100), 1e-18);
        assertEquals(1e-5, s.lr(5000), 1e-18, "stays at the floor after the last step");
        // cos(pi/4) at a quarter of the decay
        assertEquals(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + Math.sqrt(0.5)), s.lr(350), 1e-15);
        double prev = s.lr(100);
        for (long t = 101; t <= 1100; t++) {
            assertTrue(s.lr(t) <= prev, "non-increasing after warm-up at " + t);
            prev = s.lr(t);
        }
        LrSchedule noWarmup = LrSchedule.warmupCosine(2.0, 0, 10, 0);
        assertEquals(2.0, noWarmup.lr(0));
        assertEquals(0.0, noWarmup.lr(10), 1e-15);
        assertEquals(0.25, LrSchedule.constant(0.25).lr(12345));
    }

    /** The documented constant schedule (`--min-lr` = `--lr`): exactly the peak after the warm-up, bit for bit. */
    @Test
    void aFloorAtThePeakIsConstantAfterTheWarmUp() {
        LrSchedule s = LrSchedule.warmupCosine(1e-4, 10, 1000, 1e-4);
        assertEquals(5e-5, s.lr(5), 1e-20);
        for (long k : new long[] {10, 11, 333, 999, 1000, 5000}) {
            assertEquals(1e-4, s.lr(k), 0.0, "step " + k);
        }
        assertEquals(1e-4, LrSchedule.warmupCosine(1e-4, 0, 1000, 1e-4).lr(0), 0.0, "no warm-up: from step 0");
    }

    @Test
    void badArgumentsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.warmupCosine(-1, 0, 10, 0));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.warmupCosine(1, 20, 10, 0));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.warmupCosine(1, 0, 10, 2));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.warmupCosine(1, 0, 10, 0).lr(-1));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.constant(Double.NaN));
        // both schedules refuse a negative step alike
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.constant(1e-3).lr(-1));
        assertEquals(1e-3, LrSchedule.constant(1e-3).lr(0), 0.0);
    }

    /** Found by an adversarial trial: {@code peak·step} overflowed for a huge peak; the warm-up value stays finite. */
    @Test
    void warmUpOfAHugePeakStaysFinite() {
        LrSchedule s = LrSchedule.warmupCosine(Double.MAX_VALUE, 10, 20, 0);
        org.junit.jupiter.api.Assertions.assertEquals(Double.MAX_VALUE * 0.5, s.lr(5), Double.MAX_VALUE * 1e-15);
        LrSchedule usual = LrSchedule.warmupCosine(1e-3, 7, 20, 0);
        org.junit.jupiter.api.Assertions.assertEquals(1e-3 * 3 / 7, usual.lr(3), 0, "the usual bits: (peak·step)/warmup");
    }
}
