package org.diffusion4j.schedule;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class PredictionConversionTest {

    static final List<NoiseSchedule> SCHEDULES = List.of(DiscreteVpSchedule.scaledLinear(1000),
            DiscreteVpSchedule.scaledLinear(1000).rescaledZeroTerminalSnr(), VpSchedule.song2021(),
            CosineSchedule.nicholDhariwal(), RectifiedFlowSchedule.unshifted(), new RectifiedFlowSchedule(3.0),
            EdmSchedule.karras2022());

    /** Target of {@code p} built from the definitions in DESIGN.md §2 (independently of Prediction.target). */
    static double target(Prediction p, double x0, double eps, double a, double s) {
        return switch (p) {
            case EPSILON -> eps;
            case SAMPLE -> x0;
            case V -> a * eps - s * x0;
            case VELOCITY -> eps - x0;
        };
    }

    @Test
    void everyPairConvertsExactlyOnRandomData() {
        SplittableRandom rng = new SplittableRandom(20240613);
        for (NoiseSchedule sched : SCHEDULES) {
            for (int trial = 0; trial < 2000; trial++) {
                double t = 0.02 + 0.96 * rng.nextDouble();
                double a = sched.alpha(t);
                double s = sched.sigma(t);
                double x0 = 3 * rng.nextGaussian();
                double eps = rng.nextGaussian();
                double xt = a * x0 + s * eps;
                for (Prediction from : Prediction.values()) {
                    double pred = target(from, x0, eps, a, s);
                    assertEquals(pred, from.target(x0, eps, a, s), 1e-15 * (1 + Math.abs(pred)));
                    for (Prediction to : Prediction.values()) {
                        PredictionConversion c = PredictionConversion.of(from, to, a, s);
                        double want = target(to, x0, eps, a, s);
                        double got = c.apply(xt, pred);
                        double scale = 1 + Math.abs(xt) + Math.abs(pred) + Math.abs(want);
                        assertEquals(want, got, 1e-12 * scale,
                                sched + " " + from + "->" + to + " t=" + t + " a=" + a + " s=" + s);
                        // Round trip back to `from`.
                        double back = PredictionConversion.of(to, from, a, s).apply(xt, got);
                        assertEquals(pred, back, 1e-12 * scale, sched + " " + from + "->" + to + "->" + from);
                    }
                }
            }
        }
    }

    @Test
    void identityIsExact() {
        for (Prediction p : Prediction.values()) {
            PredictionConversion c = PredictionConversion.of(p, p, 0.3, 0.7);
            assertEquals(0.0, c.a());
            assertEquals(1.0, c.b());
            assertEquals(1.2345, c.apply(9.0, 1.2345));
            assertEquals(1.0, PredictionConversion.of(p, p, 0.0, 1.0).b());
            assertEquals(1.0, PredictionConversion.of(p, p, 1.0, 0.0).b());
        }
    }

    @Test
    void vpFormulasMatchSalimansAndHo() {
        // Salimans & Ho 2022, sec. 4 (alpha^2 + sigma^2 = 1): x0 = alpha x_t - sigma v, eps = sigma x_t + alpha v.
        double a = Math.cos(0.7);
        double s = Math.sin(0.7);
        PredictionConversion toX0 = PredictionConversion.of(Prediction.V, Prediction.SAMPLE, a, s);
        assertEquals(a, toX0.a(), 1e-15);
        assertEquals(-s, toX0.b(), 1e-15);
        PredictionConversion toEps = PredictionConversion.of(Prediction.V, Prediction.EPSILON, a, s);
        assertEquals(s, toEps.a(), 1e-15);
        assertEquals(a, toEps.b(), 1e-15);
        // Rectified flow (alpha = 1 - t, sigma = t): x0 = x_t - t u, eps = x_t + (1 - t) u.
        double t = 0.3;
        PredictionConversion uToX0 = PredictionConversion.of(Prediction.VELOCITY, Prediction.SAMPLE, 1 - t, t);
        assertEquals(1.0, uToX0.a(), 1e-15);
        assertEquals(-t, uToX0.b(), 1e-15);
        PredictionConversion uToEps = PredictionConversion.of(Prediction.VELOCITY, Prediction.EPSILON, 1 - t, t);
        assertEquals(1.0, uToEps.a(), 1e-15);
        assertEquals(1 - t, uToEps.b(), 1e-15);
    }

    @Test
    void zeroAlphaRefusesEpsilonSources() {
        // alpha = 0 (zero terminal SNR / RF at t = 1): x_t = sigma eps carries no x0.
        double s = 1.0;
        for (Prediction to : List.of(Prediction.SAMPLE, Prediction.V, Prediction.VELOCITY)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> PredictionConversion.of(Prediction.EPSILON, to, 0.0, s));
            assertTrue(e.getMessage().contains("alpha"), e.getMessage());
            assertFalse(PredictionConversion.isDefined(Prediction.EPSILON, to, 0.0, s));
        }
        // Everything else is defined and exact there: x0 arbitrary, eps = x_t / sigma.
        double x0 = 0.37;
        double eps = -1.4;
        double xt = s * eps;
        for (Prediction from : List.of(Prediction.SAMPLE, Prediction.V, Prediction.VELOCITY)) {
            for (Prediction to : Prediction.values()) {
                assertTrue(PredictionConversion.isDefined(from, to, 0.0, s));
                double got = PredictionConversion.of(from, to, 0.0, s).apply(xt, target(from, x0, eps, 0.0, s));
                assertEquals(target(to, x0, eps, 0.0, s), got, 1e-15, from + "->" + to);
            }
        }
    }

    @Test
    void zeroSigmaRefusesSampleSources() {
        // sigma = 0 (clean data): x_t = alpha x0 carries no eps.
        double a = 1.0;
        for (Prediction to : List.of(Prediction.EPSILON, Prediction.V, Prediction.VELOCITY)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> PredictionConversion.of(Prediction.SAMPLE, to, a, 0.0));
            assertTrue(e.getMessage().contains("sigma"), e.getMessage());
        }
        double x0 = 0.37;
        double eps = -1.4;
        double xt = a * x0;
        for (Prediction from : List.of(Prediction.EPSILON, Prediction.V, Prediction.VELOCITY)) {
            for (Prediction to : Prediction.values()) {
                double got = PredictionConversion.of(from, to, a, 0.0).apply(xt, target(from, x0, eps, a, 0.0));
                assertEquals(target(to, x0, eps, a, 0.0), got, 1e-15, from + "->" + to);
            }
        }
    }

    @Test
    void invalidCoefficientsAreRefused() {
        double[][] bad = {{0, 0}, {-0.1, 1}, {1, -0.1}, {Double.NaN, 1}, {1, Double.POSITIVE_INFINITY}};
        for (double[] c : bad) {
            assertThrows(IllegalArgumentException.class,
                    () -> PredictionConversion.of(Prediction.V, Prediction.SAMPLE, c[0], c[1]));
            assertFalse(PredictionConversion.isDefined(Prediction.V, Prediction.SAMPLE, c[0], c[1]));
        }
    }

    @Test
    void predictionNamesAndTargetCoefficients() {
        assertEquals(Prediction.EPSILON, Prediction.fromName("epsilon"));
        assertEquals(Prediction.SAMPLE, Prediction.fromName("sample"));
        assertEquals(Prediction.V, Prediction.fromName("v_prediction"));
        assertEquals(Prediction.VELOCITY, Prediction.fromName("flow_prediction"));
        assertEquals(Prediction.VELOCITY, Prediction.fromName("VELOCITY"));
        assertThrows(IllegalArgumentException.class, () -> Prediction.fromName("score"));
        assertEquals(-0.6, Prediction.V.x0Coefficient(0.8, 0.6));
        assertEquals(0.8, Prediction.V.epsCoefficient(0.8, 0.6));
        assertEquals(-1.0, Prediction.VELOCITY.x0Coefficient(0.8, 0.6));
        assertEquals(1.0, Prediction.VELOCITY.epsCoefficient(0.8, 0.6));
        assertEquals(0.0, Prediction.EPSILON.x0Coefficient(0.8, 0.6));
        assertEquals(0.0, Prediction.SAMPLE.epsCoefficient(0.8, 0.6));
    }

    @Test
    void nullPredictionsAreRefusedEvenWhenEqual() {
        // of(null, null, ...) used to return an identity "conversion" with null types
        assertThrows(NullPointerException.class, () -> PredictionConversion.of(null, null, 0.8, 0.6));
        assertThrows(NullPointerException.class, () -> PredictionConversion.of(null, Prediction.V, 0.8, 0.6));
        assertThrows(NullPointerException.class, () -> PredictionConversion.of(Prediction.V, null, 0.8, 0.6));
    }
}
