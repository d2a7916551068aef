package org.diffusion4j.schedule;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class DiscreteVpScheduleTest {

    static List<DiscreteVpSchedule> all() {
        return List.of(DiscreteVpSchedule.linear(1000), DiscreteVpSchedule.scaledLinear(1000),
                DiscreteVpSchedule.squaredcosCapV2(1000), DiscreteVpSchedule.of(BetaSchedule.SIGMOID, 1000, 1e-4, 0.02),
                DiscreteVpSchedule.scaledLinear(1000).rescaledZeroTerminalSnr(),
                DiscreteVpSchedule.squaredcosCapV2(1000).rescaledZeroTerminalSnr(),
                DiscreteVpSchedule.linear(7), DiscreteVpSchedule.linear(2).rescaledZeroTerminalSnr(),
                DiscreteVpSchedule.linear(1));
    }

    @Test
    void squaredcosCapV2MatchesPublishedValues() {
        // diffusers betas_for_alpha_bar (Nichol & Dhariwal 2021, eq. 17, beta capped at 0.999), T = 1000:
        // beta_0 = 4.128e-5, beta_999 = 0.999 (the cap), sigma_VE at the last step ~ 2.03e4.
        DiscreteVpSchedule s = DiscreteVpSchedule.squaredcosCapV2(1000);
        assertEquals(4.128e-5, s.betaAt(0), 0.0005e-5);
        assertEquals(0.999, s.betaAt(999));
        assertEquals(2.03e4, s.sigmaVeAt(999), 0.005e4);
        // beta_0 = 1 - f(1/T)/f(0) in closed form.
        double f0 = Math.pow(Math.cos(0.008 / 1.008 * Math.PI / 2), 2);
        double f1 = Math.pow(Math.cos((0.001 + 0.008) / 1.008 * Math.PI / 2), 2);
        assertEquals(1 - f1 / f0, s.betaAt(0), 1e-15);
    }

    @Test
    void cosineTableTelescopesToTheContinuousCosine() {
        // Without clipping, prod(1 - beta_i) = f((k+1)/T)/f(0): the discrete table samples the continuous cosine
        // schedule at t_k = (k+1)/T, which is exactly this library's timestep <-> t mapping.
        DiscreteVpSchedule d = DiscreteVpSchedule.squaredcosCapV2(1000);
        CosineSchedule c = CosineSchedule.nicholDhariwal();
        for (int k = 0; k < 990; k++) {
            double expected = Math.pow(c.alpha(d.tOf(k)), 2);
            assertEquals(expected, d.alphaBarAt(k), 1e-11 * expected, "k = " + k);
        }
    }

    @Test
    void scaledLinearTerminalSignalMatchesLinEtAl() {
        // Lin et al. 2023, sec. 3.1: Stable Diffusion's schedule leaves sqrt(alphaBar_T) = 0.068265 (SNR 0.0047).
        DiscreteVpSchedule sd = DiscreteVpSchedule.scaledLinear(1000);
        assertEquals(0.068265, sd.alphaAt(999), 5e-7);
        assertEquals(0.0047, sd.snrAt(999), 0.00005);
        assertEquals(0.00085, sd.betaAt(0), 1e-15);
        assertEquals(0.012, sd.betaAt(999), 1e-15);
    }

    @Test
    void linearAndSigmoidBetas() {
        DiscreteVpSchedule l = DiscreteVpSchedule.linear(1000);
        assertEquals(1e-4, l.betaAt(0), 1e-18);
        assertEquals(0.02, l.betaAt(999), 1e-17);
        assertEquals(1e-4 + 500 * (0.02 - 1e-4) / 999, l.betaAt(500), 1e-16);
        double[] sig = BetaSchedule.SIGMOID.betas(1000, 1e-4, 0.02);
        assertEquals(1.0 / (1 + Math.exp(6)) * (0.02 - 1e-4) + 1e-4, sig[0], 1e-16);
        assertEquals(1.0 / (1 + Math.exp(-6)) * (0.02 - 1e-4) + 1e-4, sig[999], 1e-16);
        for (int k = 0; k < 1000; k++) {
            assertEquals(0.02 + 1e-4, sig[k] + sig[999 - k], 1e-15, "sigmoid betas are antisymmetric about the mean");
        }
        assertEquals(BetaSchedule.SCALED_LINEAR, BetaSchedule.fromName("scaled_linear"));
        assertEquals(BetaSchedule.SQUAREDCOS_CAP_V2, BetaSchedule.fromName("squaredcos_cap_v2"));
        assertThrows(IllegalArgumentException.class, () -> BetaSchedule.fromName("cosine_v3"));
    }

    @Test
    void tableIdentities() {
        for (DiscreteVpSchedule s : all()) {
            int n = s.numTrainTimesteps();
            double cum = 1;
            for (int k = 0; k < n; k++) {
                cum *= 1 - s.betaAt(k);
                assertEquals(cum, s.alphaBarAt(k), 1e-13, s + " k = " + k);
                double a = s.alphaAt(k);
                double sg = s.sigmaAt(k);
                assertEquals(1.0, a * a + sg * sg, 1e-14, s + " k = " + k);
                if (a > 0) {
                    assertEquals(sg / a, s.sigmaVeAt(k), 1e-12 * sg / a);
                    assertEquals(Math.log(s.snrAt(k)), s.logSnrAt(k), 1e-12 * Math.max(1, Math.abs(s.logSnrAt(k))));
                }
            }
        }
    }

    @Test
    void snrStrictlyDecreasesOnTheTableAndInContinuousTime() {
        for (DiscreteVpSchedule s : all()) {
            int n = s.numTrainTimesteps();
            for (int k = 1; k < n; k++) {
                assertTrue(s.snrAt(k) < s.snrAt(k - 1), s + " k = " + k);
                assertTrue(s.logSnrAt(k) < s.logSnrAt(k - 1), s + " k = " + k);
            }
            double prev = Double.POSITIVE_INFINITY;
            for (int i = 1; i <= 20_000; i++) {
                double t = i / 20_000.0;
                double l = s.logSnr(t);
                assertFalse(Double.isNaN(l), s + " t = " + t);
                assertTrue(l < prev, s + ": lambda must decrease, t = " + t);
                prev = l;
            }
            assertEquals(Double.POSITIVE_INFINITY, s.logSnr(0.0));
            assertEquals(1.0, s.alpha(0.0));
            assertEquals(0.0, s.sigma(0.0));
        }
    }

    @Test
    void continuousViewAgreesWithTheTableAtTheKnots() {
        for (DiscreteVpSchedule s : all()) {
            int n = s.numTrainTimesteps();
            for (int k = 0; k < n; k++) {
                double t = s.tOf(k);
                assertEquals((k + 1.0) / n, t);
                assertEquals(s.alphaAt(k), s.alpha(t), 1e-15, s + " k = " + k);
                assertEquals(s.sigmaAt(k), s.sigma(t), 1e-15, s + " k = " + k);
                assertEquals(k, s.timestepOf(t), 1e-9);
            }
            assertEquals(s.alphaAt(n - 1), s.alpha(1.0));
        }
        DiscreteVpSchedule sd = DiscreteVpSchedule.scaledLinear(1000);
        double[] t = sd.tOf(TimestepSpacing.TRAILING.timesteps(1000, 4));
        assertEquals(4, t.length);
        assertEquals(1.0, t[0]);
        assertEquals(250 / 1000.0, t[3]);
    }

    @Test
    void interpolationIsLogLinearInSigmaVeLikeKDiffusion() {
        // k-diffusion DiscreteSchedule.t_to_sigma: log sigma is linear in the fractional timestep.
        DiscreteVpSchedule s = DiscreteVpSchedule.scaledLinear(1000);
        for (int k : new int[] {0, 1, 17, 500, 998}) {
            double tMid = (k + 1.5) / 1000;
            double geometricMean = Math.sqrt(s.sigmaVeAt(k) * s.sigmaVeAt(k + 1));
            assertEquals(geometricMean, s.sigmaVe(tMid), 1e-12 * geometricMean, "k = " + k);
            assertEquals(k + 0.5, s.timestepFromSigmaVe(geometricMean), 1e-9);
        }
        // Before timestep 0: sigma_VE linear from 0 (clean data, t = 0) to sigma_VE,0 at t = 1/T.
        assertEquals(0.5 * s.sigmaVeAt(0), s.sigmaVe(0.5 / 1000), 1e-15);
        assertEquals(-0.5, s.timestepFromSigmaVe(0.5 * s.sigmaVeAt(0)), 1e-12);
    }

    @Test
    void logSnrInverseRoundTrips() {
        for (DiscreteVpSchedule s : all()) {
            for (int i = 0; i <= 5000; i++) {
                double t = i / 5000.0;
                double back = s.tFromLogSnr(s.logSnr(t));
                assertEquals(t, back, 1e-12, s + " t = " + t);
            }
            for (int k = 0; k < s.numTrainTimesteps(); k++) {
                assertEquals(s.tOf(k), s.tFromLogSnr(s.logSnrAt(k)), 1e-12);
            }
            if (!s.hasZeroTerminalSnr()) {
                double below = s.logSnrAt(s.numTrainTimesteps() - 1) - 1;
                assertThrows(IllegalArgumentException.class, () -> s.tFromLogSnr(below));
            }
            assertThrows(IllegalArgumentException.class, () -> s.tFromLogSnr(Double.NaN));
        }
    }

    @Test
    void zeroTerminalSnrRescale() {
        // Lin et al. 2023, Algorithm 1: last alphaBar = 0 exactly, first sqrt(alphaBar) unchanged.
        for (DiscreteVpSchedule base : List.of(DiscreteVpSchedule.scaledLinear(1000), DiscreteVpSchedule.linear(1000),
                DiscreteVpSchedule.squaredcosCapV2(1000), DiscreteVpSchedule.linear(2))) {
            DiscreteVpSchedule z = base.rescaledZeroTerminalSnr();
            int n = z.numTrainTimesteps();
            assertEquals(0.0, z.alphaBarAt(n - 1));
            assertEquals(base.alphaAt(0), z.alphaAt(0));
            assertEquals(base.alphaBarAt(0), z.alphaBarAt(0));
            assertEquals(1.0, z.betaAt(n - 1));
            assertTrue(z.hasZeroTerminalSnr());
            assertFalse(base.hasZeroTerminalSnr());
            assertEquals(0.0, z.snrAt(n - 1));
            assertEquals(Double.NEGATIVE_INFINITY, z.logSnrAt(n - 1));
            assertEquals(Double.POSITIVE_INFINITY, z.sigmaVeAt(n - 1));
            assertEquals(0.0, z.alpha(1.0));
            assertEquals(1.0, z.sigma(1.0));
            assertEquals(1.0, z.tFromLogSnr(Double.NEGATIVE_INFINITY));
            assertEquals(1.0, z.tFromSigmaVe(Double.POSITIVE_INFINITY));
            // The interior follows Algorithm 1's shift-and-scale of sqrt(alphaBar).
            double s0 = base.alphaAt(0);
            double sT = base.alphaAt(n - 1);
            for (int k = 1; k < n - 1; k++) {
                double expected = (base.alphaAt(k) - sT) * s0 / (s0 - sT);
                assertEquals(expected, z.alphaAt(k), 1e-15, "k = " + k);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> DiscreteVpSchedule.linear(1).rescaledZeroTerminalSnr());
        // A rescaled table is also accepted back through fromBetas (diffusers' trained_betas).
        DiscreteVpSchedule z = DiscreteVpSchedule.scaledLinear(1000).rescaledZeroTerminalSnr();
        DiscreteVpSchedule again = DiscreteVpSchedule.fromBetas(z.betas());
        assertEquals(0.0, again.alphaBarAt(999));
        assertEquals(z.alphaBarAt(500), again.alphaBarAt(500), 1e-12);
    }

    @Test
    void trainingTimestepsFromUniformDrawsAreUniform() {
        DiscreteVpSchedule s = DiscreteVpSchedule.linear(10);
        assertEquals(9, s.timestepFromUniform(1.0));
        assertEquals(0, s.timestepFromUniform(0.0));
        assertEquals(0, s.timestepFromUniform(1e-9));
        assertEquals(0, s.timestepFromUniform(0.1));
        assertEquals(1, s.timestepFromUniform(0.1 + 1e-12));
        // A fine uniform grid of u in (0, 1] hits every timestep equally often.
        int[] counts = new int[10];
        for (int i = 1; i <= 100_000; i++) {
            counts[s.timestepFromUniform(i / 100_000.0)]++;
        }
        for (int c : counts) {
            assertEquals(10_000, c);
        }
        // And it inverts tOf: the interval ((k)/T, (k+1)/T] maps to k.
        for (int k = 0; k < 10; k++) {
            assertEquals(k, s.timestepFromUniform(s.tOf(k)));
        }
    }

    @Test
    void sigmaVeToTimestepAtTheKnots() {
        DiscreteVpSchedule s = DiscreteVpSchedule.squaredcosCapV2(1000);
        double[] sig = s.sigmasVe();
        for (int k = 0; k < 1000; k += 37) {
            assertEquals(k, s.timestepFromSigmaVe(sig[k]), 1e-9);
            assertEquals(k, s.nearestTimestepFromSigmaVe(sig[k]));
        }
        assertThrows(IllegalArgumentException.class, () -> s.timestepFromSigmaVe(sig[999] * 1.01));
        assertThrows(IllegalArgumentException.class, () -> s.timestepFromSigmaVe(-1));
        assertEquals(0, s.nearestTimestepFromSigmaVe(0.0));
    }

    @Test
    void invalidTablesAndIndicesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> DiscreteVpSchedule.fromBetas(new double[] {}));
        assertThrows(IllegalArgumentException.class, () -> DiscreteVpSchedule.fromBetas(new double[] {0.1, 0}));
        assertThrows(IllegalArgumentException.class, () -> DiscreteVpSchedule.fromBetas(new double[] {0.1, 1, 0.2}));
        assertThrows(IllegalArgumentException.class, () -> DiscreteVpSchedule.fromBetas(new double[] {1}));
        assertThrows(IllegalArgumentException.class,
                () -> DiscreteVpSchedule.fromBetas(new double[] {0.1, Double.NaN}));
        assertThrows(IllegalArgumentException.class, () -> DiscreteVpSchedule.of(BetaSchedule.LINEAR, 0, 1e-4, 0.02));
        assertThrows(IllegalArgumentException.class, () -> DiscreteVpSchedule.of(BetaSchedule.LINEAR, 10, 0.02, 1e-4));
        DiscreteVpSchedule s = DiscreteVpSchedule.linear(10);
        assertThrows(IllegalArgumentException.class, () -> s.alphaAt(10));
        assertThrows(IllegalArgumentException.class, () -> s.betaAt(-1));
        assertThrows(IllegalArgumentException.class, () -> s.alpha(1.0000001));
        assertThrows(IllegalArgumentException.class, () -> s.sigma(Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> s.timestepFromUniform(1.5));
    }

    @Test
    void singleTimestepSchedule() {
        DiscreteVpSchedule one = DiscreteVpSchedule.linear(1);
        assertEquals(1e-4, one.betaAt(0), 1e-18);
        assertEquals(1.0, one.tOf(0));
        assertEquals(one.alphaAt(0), one.alpha(1.0));
        assertEquals(0.5, one.tFromLogSnr(one.logSnr(0.5)), 1e-12);
        assertEquals(0, one.timestepFromUniform(0.7));
    }
}
