package org.diffusion4j.schedule;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class FlowShiftTest {

    @Test
    void shiftFixesTheEndsIsMonotoneAndInvertible() {
        for (double s : new double[] {0.3, 1, 3, Math.exp(1.15), 12}) {
            assertEquals(0.0, FlowShift.shift(0, s));
            assertEquals(1.0, FlowShift.shift(1, s), 1e-15);
            double prev = -1;
            for (int i = 0; i <= 1000; i++) {
                double t = i / 1000.0;
                double sh = FlowShift.shift(t, s);
                assertTrue(sh > prev, "monotone, s = " + s);
                prev = sh;
                assertEquals(t, FlowShift.unshift(sh, s), 1e-14);
            }
        }
        // exactly 1 at 1 for every shift (the quotient alone rounds to 1 + 2^-52 at s = 0.1, 0.2, 0.45, ...)
        for (int k = 1; k <= 2000; k++) {
            double s = k / 200.0;
            assertEquals(1.0, FlowShift.shift(1, s), 0, "s = " + s);
            assertEquals(1.0, FlowShift.unshift(1, s), 0, "s = " + s);
        }
        assertEquals(0.5, FlowShift.shift(0.5, 1.0));
        // Esser et al. 2024, eq. 23 at s = 3: 3*0.5/(1 + 2*0.5) = 0.75.
        assertEquals(0.75, FlowShift.shift(0.5, 3.0), 1e-16);
    }

    @Test
    void exponentialTimeShiftEqualsSd3ShiftWithExpMu() {
        for (double mu : new double[] {-1, 0, 0.5, 1.15, 3}) {
            for (int i = 0; i <= 100; i++) {
                double t = i / 100.0;
                assertEquals(FlowShift.shift(t, Math.exp(mu)), FlowShift.timeShiftExponential(mu, 1.0, t), 1e-15);
            }
        }
        // exponent != 1: e^mu / (e^mu + (1/t - 1)^2)
        assertEquals(Math.exp(0.7) / (Math.exp(0.7) + 9.0), FlowShift.timeShiftExponential(0.7, 2.0, 0.25), 1e-15);
        assertEquals(2.0 / (2.0 + 3.0), FlowShift.timeShiftLinear(2.0, 1.0, 0.25), 1e-15);
        assertEquals(0.0, FlowShift.timeShiftLinear(2.0, 1.0, 0.0));
        assertEquals(1.0, FlowShift.timeShiftLinear(2.0, 1.0, 1.0));
    }

    @Test
    void resolutionDependentMu() {
        // diffusers calculate_shift / Flux get_lin_function: (256, 0.5) -> (4096, 1.15).
        assertEquals(0.5, FlowShift.mu(256), 1e-15);
        assertEquals(1.15, FlowShift.mu(4096), 1e-14);
        assertEquals(0.5 + 0.65 * (1024 - 256) / 3840.0, FlowShift.mu(1024), 1e-15);
        assertEquals(1.0, FlowShift.mu(20, 10, 30, 0.0, 2.0), 1e-15);
        assertThrows(IllegalArgumentException.class, () -> FlowShift.mu(0));
        assertThrows(IllegalArgumentException.class, () -> FlowShift.mu(100, 5, 5, 0.5, 1.15));
        // non-finite shifts are named instead of returning a NaN or infinite mu
        for (double bad : new double[] {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> FlowShift.mu(100, 256, 4096, bad, 1.15));
            assertTrue(e.getMessage().contains("baseShift"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> FlowShift.mu(100, 256, 4096, 0.5, bad));
            assertTrue(e.getMessage().contains("maxShift"), e.getMessage());
        }
        IllegalArgumentException overflow = assertThrows(IllegalArgumentException.class,
                () -> FlowShift.mu(100, 256, 4096, -1.7e308, 1.7e308));
        assertTrue(overflow.getMessage().contains("mu is not finite"), overflow.getMessage());
    }

    @Test
    void refusesBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> FlowShift.shift(0.5, 0));
        assertThrows(IllegalArgumentException.class, () -> FlowShift.shift(1.5, 3));
        assertThrows(IllegalArgumentException.class, () -> FlowShift.timeShiftExponential(Double.NaN, 1, 0.5));
        assertThrows(IllegalArgumentException.class, () -> FlowShift.timeShiftExponential(1, 0, 0.5));
        assertThrows(IllegalArgumentException.class, () -> FlowShift.timeShiftLinear(-1, 1, 0.5));
    }
}
