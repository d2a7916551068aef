package org.diffusion4j.schedule;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class ContinuousSchedulesTest {

    static List<NoiseSchedule> all() {
        return List.of(VpSchedule.song2021(), new VpSchedule(0, 5), CosineSchedule.nicholDhariwal(),
                new CosineSchedule(0), RectifiedFlowSchedule.unshifted(), new RectifiedFlowSchedule(3.0),
                new RectifiedFlowSchedule(0.5), RectifiedFlowSchedule.forImageSeqLen(4096), EdmSchedule.karras2022(),
                new EdmSchedule(0, 80, 7, 0.5), new VeSchedule(0.01, 50), DiscreteVpSchedule.scaledLinear(1000));
    }

    static boolean variancePreserving(NoiseSchedule s) {
        return s instanceof VpSchedule || s instanceof CosineSchedule || s instanceof DiscreteVpSchedule;
    }

    @Test
    void coefficientsAreValidAndLogSnrStrictlyDecreases() {
        for (NoiseSchedule s : all()) {
            double prev = Double.POSITIVE_INFINITY;
            for (int i = 0; i <= 4000; i++) {
                double t = i / 4000.0;
                double a = s.alpha(t);
                double sg = s.sigma(t);
                assertTrue(a >= 0 && a <= 1 && Double.isFinite(sg) && sg >= 0, s + " t = " + t);
                if (variancePreserving(s)) {
                    assertEquals(1.0, a * a + sg * sg, 1e-14, s + " t = " + t);
                }
                double l = s.logSnr(t);
                assertFalse(Double.isNaN(l), s + " t = " + t);
                assertEquals(Snr.logSnr(a, sg), l, 1e-9 * Math.max(1, Math.abs(l)), s + " t = " + t);
                if (i > 0) {
                    assertTrue(l < prev, s + ": lambda must strictly decrease at t = " + t);
                }
                prev = l;
            }
        }
    }

    @Test
    void logSnrInverseRoundTrips() {
        for (NoiseSchedule s : all()) {
            for (int i = 0; i <= 2000; i++) {
                double t = i / 2000.0;
                assertEquals(t, s.tFromLogSnr(s.logSnr(t)), 1e-9, s + " t = " + t);
            }
            double mid = s.sigmaVe(0.37);
            assertEquals(0.37, s.tFromSigmaVe(mid), 1e-9, s.toString());
            assertThrows(IllegalArgumentException.class, () -> s.tFromLogSnr(Double.NaN));
            assertThrows(IllegalArgumentException.class, () -> s.alpha(-0.01));
            assertThrows(IllegalArgumentException.class, () -> s.sigma(1.01));
        }
    }

    @Test
    void endpointsAndTerminalSnr() {
        // t = 0 is clean data wherever the schedule reaches it.
        for (NoiseSchedule s : List.of(VpSchedule.song2021(), CosineSchedule.nicholDhariwal(),
                RectifiedFlowSchedule.unshifted(), new RectifiedFlowSchedule(3), new EdmSchedule(0, 80, 7, 0.5))) {
            assertEquals(1.0, s.alpha(0.0), s.toString());
            assertEquals(0.0, s.sigma(0.0), s.toString());
            assertEquals(Double.POSITIVE_INFINITY, s.logSnr(0.0), s.toString());
            assertEquals(0.0, s.tFromLogSnr(Double.POSITIVE_INFINITY), s.toString());
        }
        // Zero terminal SNR: rectified flow and the continuous cosine schedule reach alpha = 0 at t = 1.
        for (NoiseSchedule s : List.of(RectifiedFlowSchedule.unshifted(), new RectifiedFlowSchedule(3),
                CosineSchedule.nicholDhariwal(), new CosineSchedule(0))) {
            assertTrue(s.hasZeroTerminalSnr(), s.toString());
            assertEquals(0.0, s.alpha(1.0), s.toString());
            assertEquals(1.0, s.sigma(1.0), s.toString());
            assertEquals(Double.NEGATIVE_INFINITY, s.logSnr(1.0));
            assertEquals(1.0, s.tFromLogSnr(Double.NEGATIVE_INFINITY), s.toString());
        }
        for (NoiseSchedule s : List.of(VpSchedule.song2021(), EdmSchedule.karras2022(), new VeSchedule(0.01, 50),
                DiscreteVpSchedule.linear(1000))) {
            assertFalse(s.hasZeroTerminalSnr(), s.toString());
        }
    }

    @Test
    void rectifiedFlowIsTheStraightPath() {
        RectifiedFlowSchedule rf = RectifiedFlowSchedule.unshifted();
        for (int i = 0; i <= 100; i++) {
            double t = i / 100.0;
            assertEquals(1 - t, rf.alpha(t), 1e-16);
            assertEquals(t, rf.sigma(t), 1e-16);
        }
        RectifiedFlowSchedule sd3 = new RectifiedFlowSchedule(3.0);
        for (int i = 0; i <= 100; i++) {
            double t = i / 100.0;
            assertEquals(FlowShift.shift(t, 3.0), sd3.sigma(t), 1e-16);
            assertEquals(1 - FlowShift.shift(t, 3.0), sd3.alpha(t), 1e-15);
        }
        // Flux at 1024^2: 4096 tokens, mu = 1.15, shift e^1.15.
        assertEquals(Math.exp(1.15), RectifiedFlowSchedule.forImageSeqLen(4096).shift(), 1e-14);
        assertEquals(0.25, RectifiedFlowSchedule.tFromDataAtOne(0.75));
        assertEquals(-0.3, RectifiedFlowSchedule.velocityFromDataAtOne(0.3));
        assertThrows(IllegalArgumentException.class, () -> new RectifiedFlowSchedule(0));
        assertThrows(IllegalArgumentException.class, () -> new RectifiedFlowSchedule(1e-300));   // t lost in α, σ
        assertThrows(IllegalArgumentException.class, () -> new RectifiedFlowSchedule(1e7));
    }

    @Test
    void vpMatchesSongEtAlAndTheLinearDdpmTable() {
        VpSchedule vp = VpSchedule.song2021();
        // Song et al. 2021, eq. 29: mean coefficient exp(-t^2 (b1 - b0)/4 - t b0/2).
        assertEquals(Math.exp(-0.25 * 19.9 - 0.05), vp.alpha(1.0), 1e-15);
        assertEquals(Math.exp(-0.25 * 0.25 * 19.9 - 0.025), vp.alpha(0.5), 1e-15);
        // DDPM's linear betas (1e-4 .. 0.02, T = 1000) are the discretization beta_k ~ beta(t)/T of this SDE:
        // ln alphaBar_k agrees with ln alpha(t_k)^2 at t_k = (k+1)/T to within 1% (the gap is the O(beta^2)
        // term of ln(1 - beta)).
        DiscreteVpSchedule ddpm = DiscreteVpSchedule.linear(1000);
        for (int k = 99; k < 1000; k += 100) {
            double discrete = Math.log(ddpm.alphaBarAt(k));
            double continuous = 2 * Math.log(vp.alpha(ddpm.tOf(k)));
            assertEquals(continuous, discrete, 1e-2 * Math.abs(continuous), "k = " + k);
        }
        assertThrows(IllegalArgumentException.class, () -> new VpSchedule(5, 1));
        assertThrows(IllegalArgumentException.class, () -> vp.tFromLogSnr(vp.logSnr(1.0) - 1));
    }

    @Test
    void cosineMatchesNicholDhariwal() {
        CosineSchedule c = CosineSchedule.nicholDhariwal();
        double f0 = Math.pow(Math.cos(0.008 / 1.008 * Math.PI / 2), 2);
        for (int i = 0; i <= 50; i++) {
            double t = i / 50.0;
            double alphaBar = Math.pow(Math.cos((t + 0.008) / 1.008 * Math.PI / 2), 2) / f0;
            assertEquals(alphaBar, c.alpha(t) * c.alpha(t), 1e-14, "t = " + t);
        }
        CosineSchedule plain = new CosineSchedule(0);
        assertEquals(Math.cos(Math.PI * 0.3 / 2), plain.alpha(0.3), 1e-15);
        assertEquals(Math.sin(Math.PI * 0.3 / 2), plain.sigma(0.3), 1e-15);
        // sigma keeps full relative precision near t = 0 (no 1 - alpha^2 cancellation).
        double t = 1e-9;
        double theta0 = 0.008 / 1.008 * Math.PI / 2;
        double dTheta = t / 1.008 * Math.PI / 2;
        double expected = Math.sqrt(Math.sin(dTheta) * Math.sin(dTheta + 2 * theta0)) / Math.cos(theta0);
        assertEquals(expected, c.sigma(t), 1e-15 * expected);
    }

    @Test
    void edmAndVeSchedules() {
        EdmSchedule edm = EdmSchedule.karras2022();
        assertEquals(0.002, edm.sigma(0), 1e-17);
        assertEquals(80, edm.sigma(1), 1e-12);
        assertEquals(1.0, edm.alpha(0.4));
        assertEquals(edm.sigma(0.4), edm.sigmaVe(0.4), 1e-15);
        assertThrows(IllegalArgumentException.class, () -> edm.tFromSigmaVe(100));
        assertThrows(IllegalArgumentException.class, () -> edm.tFromSigmaVe(0.001));
        VeSchedule ve = new VeSchedule(0.01, 50);
        assertEquals(0.01, ve.sigma(0), 1e-17);
        assertEquals(50, ve.sigma(1), 1e-12);
        assertEquals(Math.sqrt(0.01 * 50), ve.sigma(0.5), 1e-14);
        assertThrows(IllegalArgumentException.class, () -> new EdmSchedule(1, 1, 7, 0.5));
        assertThrows(IllegalArgumentException.class, () -> new VeSchedule(0, 50));
    }

    @Test
    void snrHelpers() {
        assertEquals(4.0, Snr.snr(0.8, 0.4), 1e-15);
        assertEquals(Math.log(4.0), Snr.logSnr(0.8, 0.4), 1e-15);
        assertEquals(0.5, Snr.sigmaVe(0.8, 0.4), 1e-15);
        assertEquals(Double.POSITIVE_INFINITY, Snr.snr(1, 0));
        assertEquals(0.0, Snr.snr(0, 1));
        assertEquals(Double.NEGATIVE_INFINITY, Snr.logSnr(0, 1));
        for (double l : new double[] {-40, -3, 0, 2.5, 40}) {
            double a = Snr.vpAlphaFromLogSnr(l);
            double s = Snr.vpSigmaFromLogSnr(l);
            assertEquals(1.0, a * a + s * s, 1e-15);
            assertEquals(l, Snr.logSnr(a, s), 1e-12 * Math.max(1, Math.abs(l)));
        }
        assertEquals(-2 * Math.log(3.0), Snr.logSnrOfSigmaVe(3.0), 1e-15);
        assertThrows(IllegalArgumentException.class, () -> Snr.snr(0, 0));
        assertThrows(IllegalArgumentException.class, () -> Snr.snr(-0.1, 1));
        assertThrows(IllegalArgumentException.class, () -> Snr.logSnr(1, Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> Snr.sigmaVe(Double.POSITIVE_INFINITY, 1));
    }
}
