package org.diffusion4j.training;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.diffusion4j.schedule.CosineSchedule;
import org.diffusion4j.schedule.DiscreteVpSchedule;
import org.diffusion4j.schedule.EdmSchedule;
import org.diffusion4j.schedule.NoiseSchedule;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.PredictionConversion;
import org.diffusion4j.schedule.RectifiedFlowSchedule;
import org.diffusion4j.schedule.Snr;
import org.diffusion4j.schedule.VpSchedule;
import org.junit.jupiter.api.Test;

class LossWeightsTest {

    @Test
    void minSnrEqualsHangEtAlFormulas() {
        // Hang et al. 2023, sec. 3.4: x0 target min(SNR, g); eps target min(SNR, g)/SNR; v target min(SNR, g)/(SNR+1).
        double gamma = 5;
        for (double snr : new double[] {1e-6, 0.01, 0.5, 1, 4.99, 5, 5.01, 20, 1e6}) {
            double m = Math.min(snr, gamma);
            assertEquals(m, LossWeights.minSnr(snr, gamma, Prediction.SAMPLE), 0);
            assertEquals(m / snr, LossWeights.minSnr(snr, gamma, Prediction.EPSILON), 1e-15 * (m / snr));
            assertEquals(m / (snr + 1), LossWeights.minSnr(snr, gamma, Prediction.V), 1e-15);
            double r = 1 + Math.sqrt(snr);
            assertEquals(m / (r * r), LossWeights.minSnr(snr, gamma, Prediction.VELOCITY), 1e-15);
        }
        // Below gamma the eps weight is exactly 1 (plain eps-MSE); above, gamma/SNR.
        assertEquals(1.0, LossWeights.minSnr(2.0, 5, Prediction.EPSILON));
        assertEquals(0.25, LossWeights.minSnr(20.0, 5, Prediction.EPSILON), 1e-16);
        // SNR = +inf (sigma = 0): eps and v weights vanish, x0 weight is gamma.
        assertEquals(0.0, LossWeights.minSnr(Double.POSITIVE_INFINITY, 5, Prediction.EPSILON));
        assertEquals(0.0, LossWeights.minSnr(Double.POSITIVE_INFINITY, 5, Prediction.V));
        assertEquals(5.0, LossWeights.minSnr(Double.POSITIVE_INFINITY, 5, Prediction.SAMPLE));
        // SNR = 0 (zero terminal SNR): defined for x0, v and velocity targets ...
        assertEquals(0.0, LossWeights.minSnr(0, 5, Prediction.SAMPLE));
        assertEquals(0.0, LossWeights.minSnr(0, 5, Prediction.V));
        assertEquals(0.0, LossWeights.minSnr(0, 5, Prediction.VELOCITY));
        // ... and refused for eps instead of producing NaN.
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LossWeights.minSnr(0, 5, Prediction.EPSILON));
        assertTrue(e.getMessage().contains("SNR = 0"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LossWeights.minSnr(-1, 5, Prediction.V));
        assertThrows(IllegalArgumentException.class, () -> LossWeights.minSnr(Double.NaN, 5, Prediction.V));
        assertThrows(IllegalArgumentException.class, () -> LossWeights.minSnr(1, 0, Prediction.V));
    }

    @Test
    void minSnrWeightsAreTheX0SpaceWeightOnEveryTarget() {
        // w_target * (d target)^2 = min(SNR, gamma) * (d x0)^2 with d x0 = b * d target, b the coefficient of
        // target -> SAMPLE. Holds for eps and velocity on any schedule and for v on VP schedules.
        SplittableRandom rng = new SplittableRandom(11);
        NoiseSchedule[] vp = {DiscreteVpSchedule.scaledLinear(1000), VpSchedule.song2021(),
            CosineSchedule.nicholDhariwal()};
        NoiseSchedule[] any = {RectifiedFlowSchedule.unshifted(), new RectifiedFlowSchedule(3),
            EdmSchedule.karras2022()};
        for (int trial = 0; trial < 500; trial++) {
            double t = 0.01 + 0.98 * rng.nextDouble();
            for (NoiseSchedule s : vp) {
                check(s, t, Prediction.EPSILON);
                check(s, t, Prediction.V);
                check(s, t, Prediction.VELOCITY);
            }
            for (NoiseSchedule s : any) {
                check(s, t, Prediction.EPSILON);
                check(s, t, Prediction.VELOCITY);
            }
        }
    }

    private static void check(NoiseSchedule s, double t, Prediction target) {
        double a = s.alpha(t);
        double sg = s.sigma(t);
        double snr = Snr.snr(a, sg);
        double b = PredictionConversion.of(target, Prediction.SAMPLE, a, sg).b();
        double expected = Math.min(snr, 5) * b * b;
        assertEquals(expected, LossWeights.minSnr(snr, 5, target), 1e-10 * expected, s + " " + target + " t=" + t);
    }

    @Test
    void edmPreconditioningMatchesKarrasTable1() {
        double sd = 0.5;
        EdmPreconditioning p = EdmPreconditioning.of(sd, sd);
        assertEquals(0.5, p.cSkip(), 1e-16);
        assertEquals(sd / Math.sqrt(2), p.cOut(), 1e-16);
        assertEquals(1 / (sd * Math.sqrt(2)), p.cIn(), 1e-15);
        assertEquals(0.25 * Math.log(0.5), p.cNoise(), 1e-16);
        for (double sigma : new double[] {0.002, 0.1, 1, 80}) {
            EdmPreconditioning q = EdmPreconditioning.of(sigma, sd);
            double s2 = sigma * sigma + sd * sd;
            assertEquals(sd * sd / s2, q.cSkip(), 1e-15);
            assertEquals(sigma * sd / Math.sqrt(s2), q.cOut(), 1e-15 * q.cOut());
            assertEquals(1 / Math.sqrt(s2), q.cIn(), 1e-15 * q.cIn());
            assertEquals(Math.log(sigma) / 4, q.cNoise(), 1e-15);
            double lambda = EdmPreconditioning.lossWeight(sigma, sd);
            assertEquals(s2 / Math.pow(sigma * sd, 2), lambda, 1e-12 * lambda);
            // lambda(sigma) * c_out^2 = 1: unit effective weight (Karras et al. 2022, sec. 5).
            assertEquals(1.0, lambda * q.cOut() * q.cOut(), 1e-13);
            // c_in normalizes the input: Var(x0 + sigma eps) = sigma_data^2 + sigma^2.
            assertEquals(1.0, q.cIn() * q.cIn() * s2, 1e-14);
            // D = c_skip x + c_out F_target recovers x0.
            double x0 = 0.3;
            double x = x0 + sigma * -1.1;
            assertEquals(x0, q.denoised(x, q.networkTarget(x0, x)), 1e-12);
        }
        assertThrows(IllegalArgumentException.class, () -> EdmPreconditioning.of(0, 0.5));
        assertThrows(IllegalArgumentException.class, () -> EdmPreconditioning.lossWeight(0, 0.5));
        assertThrows(IllegalArgumentException.class, () -> EdmPreconditioning.lossWeight(1, 0));
    }

    @Test
    void sd3Weightings() {
        // diffusers compute_loss_weighting_for_sd3: sigma_sqrt = sigma^-2, cosmap = 2/(pi (1 - 2 s + 2 s^2)).
        for (double s : new double[] {0.01, 0.3, 0.5, 0.99, 1.0}) {
            assertEquals(1 / (s * s), Sd3Weighting.SIGMA_SQRT.weight(s), 1e-12 / (s * s));
            assertEquals(2 / (Math.PI * (1 - 2 * s + 2 * s * s)), Sd3Weighting.COSMAP.weight(s), 1e-15);
            assertEquals(1.0, Sd3Weighting.NONE.weight(s));
        }
        // cosmap is the density of CosMap sampling (Esser et al. 2024, eq. 21): it integrates to 1 on [0, 1].
        int n = 100_000;
        double h = 1.0 / n;
        double integral = Sd3Weighting.COSMAP.weight(0) + Sd3Weighting.COSMAP.weight(1);
        for (int i = 1; i < n; i++) {
            integral += (i % 2 == 1 ? 4 : 2) * Sd3Weighting.COSMAP.weight(i * h);
        }
        assertEquals(1.0, integral * h / 3, 1e-12);
        assertThrows(IllegalArgumentException.class, () -> Sd3Weighting.SIGMA_SQRT.weight(0));
        assertThrows(IllegalArgumentException.class, () -> Sd3Weighting.COSMAP.weight(1.5));
        assertEquals(Sd3Weighting.SIGMA_SQRT, Sd3Weighting.fromName("sigma_sqrt"));
        assertEquals(Sd3Weighting.COSMAP, Sd3Weighting.fromName("cosmap"));
        assertEquals(Sd3Weighting.NONE, Sd3Weighting.fromName("logit_normal"));
        assertThrows(IllegalArgumentException.class, () -> Sd3Weighting.fromName("snr"));
    }

    @Test
    void offsetNoise() {
        OffsetNoise o = new OffsetNoise(0.1);
        assertEquals(0.5 + 0.1 * -2, o.apply(0.5, -2), 1e-16);
        assertEquals(1.01, o.variance(), 1e-16);
        assertTrue(OffsetNoise.NONE.isNone());
        assertEquals(0.5, OffsetNoise.NONE.apply(0.5, 3));
        assertThrows(IllegalArgumentException.class, () -> new OffsetNoise(-0.1));
        assertThrows(IllegalArgumentException.class, () -> new OffsetNoise(Double.NaN));
    }

    @Test
    void epsilonTargetIsRefusedAtZeroTerminalSnr() {
        DiscreteVpSchedule ztsnr = DiscreteVpSchedule.scaledLinear(1000).rescaledZeroTerminalSnr();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Objectives.requireDefined(ztsnr, Prediction.EPSILON));
        assertTrue(e.getMessage().contains("zero terminal SNR"), e.getMessage());
        Objectives.requireDefined(ztsnr, Prediction.V);
        Objectives.requireDefined(ztsnr, Prediction.VELOCITY);
        Objectives.requireDefined(ztsnr, Prediction.SAMPLE);
        // The last timestep of such a schedule: eps -> x0 and the eps min-SNR weight are refused, not Inf/NaN.
        assertThrows(IllegalArgumentException.class,
                () -> PredictionConversion.of(Prediction.EPSILON, Prediction.SAMPLE, ztsnr.alphaAt(999),
                        ztsnr.sigmaAt(999)));
        assertThrows(IllegalArgumentException.class,
                () -> LossWeights.minSnr(ztsnr.snrAt(999), 5, Prediction.EPSILON));
        assertEquals(0.0, LossWeights.minSnr(ztsnr.snrAt(999), 5, Prediction.V));
        // Rectified flow reaches zero SNR at t = 1; capping the sampled t below 1 makes eps well defined.
        assertThrows(IllegalArgumentException.class,
                () -> Objectives.requireDefined(RectifiedFlowSchedule.unshifted(), Prediction.EPSILON));
        Objectives.requireDefined(RectifiedFlowSchedule.unshifted(), Prediction.EPSILON, 0.999);
        Objectives.requireDefined(DiscreteVpSchedule.scaledLinear(1000), Prediction.EPSILON);
        Objectives.requireDefined(VpSchedule.song2021(), Prediction.EPSILON);
    }
}
