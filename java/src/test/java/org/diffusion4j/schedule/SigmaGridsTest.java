package org.diffusion4j.schedule;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SigmaGridsTest {

    /** Relative comparison, element by element. */
    static void assertRel(double[] expected, double[] actual, double rel) {
        assertEquals(expected.length, actual.length, "length");
        for (int i = 0; i < expected.length; i++) {
            double tol = rel * Math.max(Math.abs(expected[i]), 1e-300);
            assertEquals(expected[i], actual[i], tol, "index " + i);
        }
    }

    @Test
    void karrasMatchesPublishedValues() {
        // k-diffusion get_sigmas_karras(10, 0.002, 80, rho=7) before append_zero (Karras et al. 2022, eq. 5),
        // values as printed by torch (7 significant digits).
        double[] expected = {80, 42.41519, 21.10868, 9.723201, 4.066124, 1.501742, 0.4699791, 0.1166386,
            0.02043533, 0.002};
        assertRel(expected, SigmaGrids.karras(10, 0.002, 80, 7), 1e-6);
    }

    @Test
    void karrasIsTheEdmScheduleOnALinearTimeGrid() {
        EdmSchedule edm = EdmSchedule.karras2022();
        double[] t = SigmaGrids.linspace(1, 0, 25);
        double[] karras = SigmaGrids.karras(25, 0.002, 80, 7);
        for (int i = 0; i < t.length; i++) {
            assertEquals(karras[i], edm.sigma(t[i]), 1e-12 * karras[i], "i = " + i);
        }
    }

    @Test
    void oneStepGridsAreSigmaMaxOnly() {
        assertArrayEquals(new double[] {80}, SigmaGrids.karras(1, 0.002, 80, 7));
        assertArrayEquals(new double[] {80, 0}, SigmaGrids.appendZero(SigmaGrids.karras(1, 0.002, 80, 7)));
        assertRel(new double[] {80}, SigmaGrids.exponential(1, 0.002, 80), 1e-15);
        assertRel(new double[] {80}, SigmaGrids.polyexponential(1, 0.002, 80, 2), 1e-15);
        assertArrayEquals(new double[] {1.0}, SigmaGrids.sd3Sigmas(1, 1000, 3.0));
        assertArrayEquals(new double[] {1.0, 0.0}, SigmaGrids.fluxSigmas(1, 1.15));
    }

    @Test
    void exponentialIsUniformInLogSigmaAndPolyexponentialWithRhoOne() {
        double[] s = SigmaGrids.exponential(12, 0.03, 14.6);
        assertEquals(14.6, s[0], 1e-13);
        assertEquals(0.03, s[11], 1e-15);
        double step = Math.log(s[1]) - Math.log(s[0]);
        for (int i = 1; i < s.length; i++) {
            assertEquals(step, Math.log(s[i]) - Math.log(s[i - 1]), 1e-12);
        }
        assertRel(s, SigmaGrids.polyexponential(12, 0.03, 14.6, 1.0), 1e-13);
    }

    @Test
    void exponentialGridIsTheUniformLogSnrGridOfAVeSchedule() {
        // λ = −2 ln σ_VE, so uniform log-SNR (DPM-Solver "logSNR") of a VE model = k-diffusion's exponential grid.
        VeSchedule ve = new VeSchedule(0.01, 50);
        double[] t = SigmaGrids.uniformLogSnr(ve, 9, 1.0, 0.0);
        double[] exp = SigmaGrids.exponential(9, 0.01, 50);
        for (int i = 0; i < t.length; i++) {
            assertEquals(exp[i], ve.sigma(t[i]), 1e-12 * exp[i], "i = " + i);
        }
    }

    @Test
    void uniformLogSnrHasEqualLambdaStepsOnVpSchedules() {
        for (NoiseSchedule s : new NoiseSchedule[] {VpSchedule.song2021(), CosineSchedule.nicholDhariwal(),
            DiscreteVpSchedule.scaledLinear(1000), new RectifiedFlowSchedule(3.0)}) {
            double[] t = SigmaGrids.uniformLogSnr(s, 21, 0.999, 1e-3);
            assertEquals(0.999, t[0]);
            assertEquals(1e-3, t[20]);
            double h = s.logSnr(t[1]) - s.logSnr(t[0]);
            assertTrue(h > 0, s + ": log-SNR must increase toward data");
            for (int i = 1; i < t.length; i++) {
                assertTrue(t[i] < t[i - 1], s + ": times must decrease");
                assertEquals(h, s.logSnr(t[i]) - s.logSnr(t[i - 1]), 1e-9 * Math.abs(h), s + " step " + i);
            }
        }
        assertThrows(IllegalArgumentException.class,
                () -> SigmaGrids.uniformLogSnr(VpSchedule.song2021(), 10, 1.0, 0.0), "lambda(0) = +inf");
        assertThrows(IllegalArgumentException.class,
                () -> SigmaGrids.uniformLogSnr(VpSchedule.song2021(), 10, 0.1, 0.5), "ascending");
    }

    @Test
    void vpGridIsSongsContinuousVpInVeForm() {
        // k-diffusion get_sigmas_vp(n, beta_d=19.9, beta_min=0.1, eps_s=1e-3) = σ_VE of the VP SDE with
        // β_min = 0.1, β_max = β_min + β_d = 20 (Song et al. 2021, eq. 29) at t = linspace(1, eps_s, n).
        double[] s = SigmaGrids.vp(7, 19.9, 0.1, 1e-3);
        VpSchedule vp = VpSchedule.song2021();
        double[] t = SigmaGrids.linspace(1, 1e-3, 7);
        for (int i = 0; i < s.length; i++) {
            assertEquals(vp.sigmaVe(t[i]), s[i], 1e-12 * s[i], "i = " + i);
        }
        assertEquals(Math.sqrt(Math.exp(19.9 / 2 + 0.1) - 1), s[0], 1e-12 * s[0]);
    }

    @Test
    void sd3ShiftThreeAppliedOnce() {
        // SD3 inference grid, shift 3, N = 10: σ = shift(linspace(1, 1/1000, 10)) with
        // shift(σ) = 3σ/(1 + 2σ) (Esser et al. 2024, eq. 23) applied exactly once.
        double[] expected = {1, 0.960043, 0.913146, 0.857326, 0.789773, 0.706349, 0.600719, 0.462656, 0.274510,
            0.002994};
        double[] actual = SigmaGrids.sd3Sigmas(10, 1000, 3.0);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 5e-7, "i = " + i);
        }
        // The same grid, seen as t of a rectified-flow schedule with that shift: t = linspace(1, 1/T, n).
        RectifiedFlowSchedule rf = new RectifiedFlowSchedule(3.0);
        double[] t = SigmaGrids.linspace(1, 1e-3, 10);
        for (int i = 0; i < t.length; i++) {
            assertEquals(actual[i], rf.sigma(t[i]), 1e-15);
        }
    }

    @Test
    void fluxGridIsTheExponentialTimeShiftOfLinspaceToZero() {
        // Flux get_schedule(4, 4096): mu = 1.15, time_shift(mu, 1, linspace(1, 0, 5)).
        double[] s = SigmaGrids.fluxSigmas(4, FlowShift.mu(4096));
        double e = Math.exp(1.15);
        double[] t = {1, 0.75, 0.5, 0.25, 0};
        for (int i = 0; i < t.length; i++) {
            assertEquals(e * t[i] / (e * t[i] + 1 - t[i]), s[i], 1e-15, "i = " + i);
        }
        assertEquals(0.0, s[4]);
    }

    @Test
    void linspaceFollowsNumpy() {
        assertArrayEquals(new double[] {0, 111, 222, 333, 444, 555, 666, 777, 888, 999},
                SigmaGrids.linspace(0, 999, 10));
        assertArrayEquals(new double[] {3.5}, SigmaGrids.linspace(3.5, 7, 1));
        assertArrayEquals(new double[] {1, 0.5, 0}, SigmaGrids.linspace(1, 0, 3));
        assertThrows(IllegalArgumentException.class, () -> SigmaGrids.linspace(0, 1, 0));
    }

    @Test
    void userSigmaGridsAreValidated() {
        assertArrayEquals(new double[] {14.6, 3, 0.5, 0}, SigmaGrids.requireSigmas(new double[] {14.6, 3, 0.5, 0}));
        assertArrayEquals(new double[] {0.0}, SigmaGrids.requireSigmas(new double[] {0.0}));
        double[][] bad = {{}, {1, 2}, {2, 2, 1}, {3, -1}, {Double.NaN, 1}, {Double.POSITIVE_INFINITY, 1},
            {1, 0, 0}};
        for (double[] g : bad) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> SigmaGrids.requireSigmas(g), java.util.Arrays.toString(g));
            assertTrue(e.getMessage().contains("sigma"), e.getMessage());
        }
        double[] in = {5, 1};
        double[] out = SigmaGrids.requireSigmas(in);
        out[0] = 7;
        assertEquals(5, in[0], "returns a copy");
    }

    @Test
    void userTimeGridsAreValidated() {
        assertArrayEquals(new double[] {1, 0.5, 0}, SigmaGrids.requireTimes(new double[] {1, 0.5, 0}));
        double[][] bad = {{}, {1.5, 0.5}, {0.5, -0.1}, {0.2, 0.4}, {0.5, 0.5}, {Double.NaN}};
        for (double[] g : bad) {
            assertThrows(IllegalArgumentException.class, () -> SigmaGrids.requireTimes(g),
                    java.util.Arrays.toString(g));
        }
    }

    @Test
    void distinctDropsRepeatsOnly() {
        assertArrayEquals(new double[] {3, 2, 1, 0}, SigmaGrids.distinct(new double[] {3, 3, 2, 1, 1, 1, 0}));
        assertArrayEquals(new double[] {}, SigmaGrids.distinct(new double[] {}));
        assertThrows(IllegalArgumentException.class, () -> SigmaGrids.distinct(new double[] {1, 2}));
    }

    @Test
    void invalidGridParametersAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> SigmaGrids.karras(0, 0.002, 80, 7));
        assertThrows(IllegalArgumentException.class, () -> SigmaGrids.karras(10, 80, 0.002, 7));
        assertThrows(IllegalArgumentException.class, () -> SigmaGrids.karras(10, -1, 80, 7));
        assertThrows(IllegalArgumentException.class, () -> SigmaGrids.karras(10, 0.002, 80, 0));
        assertThrows(IllegalArgumentException.class, () -> SigmaGrids.exponential(10, 0, 80));
        assertThrows(IllegalArgumentException.class, () -> SigmaGrids.polyexponential(10, 0.1, 80, -1));
        assertThrows(IllegalArgumentException.class, () -> SigmaGrids.vp(10, 19.9, 0.1, 0));
        assertThrows(IllegalArgumentException.class, () -> SigmaGrids.sd3Sigmas(10, 1000, 0));
        assertThrows(IllegalArgumentException.class, () -> SigmaGrids.fluxSigmas(0, 1.15));
        // σ_min = 0 is allowed for Karras (0^(1/ρ) = 0), giving a grid that ends at exactly 0.
        double[] k = SigmaGrids.karras(5, 0, 80, 7);
        assertEquals(0.0, k[4]);
        SigmaGrids.requireSigmas(k);
    }
}
