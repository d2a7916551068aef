package org.diffusion4j.training;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import java.util.function.DoubleUnaryOperator;
import org.junit.jupiter.api.Test;

/**
 * Distribution checks: sample moments of {@value #N} draws against closed forms (or quadrature of the quantile
 * function), with tolerances of 5 standard errors estimated from the sample itself. Seeds are fixed, so the
 * tests are deterministic.
 */
class TimeSamplerTest {

    static final int N = 200_000;
    static final double Z = 5.0;

    /** Sample mean and variance. */
    record Moments(double mean, double var, double fourth) {
        static Moments of(double[] x) {
            double m = 0;
            for (double v : x) {
                m += v;
            }
            m /= x.length;
            double m2 = 0;
            double m4 = 0;
            for (double v : x) {
                double d = (v - m) * (v - m);
                m2 += d;
                m4 += d * d;
            }
            return new Moments(m, m2 / (x.length - 1), m4 / x.length);
        }

        double seMean() {
            return Math.sqrt(var / N);
        }

        /** Standard error of the sample variance: sqrt((m4 − var²)/n). */
        double seVar() {
            return Math.sqrt((fourth - var * var) / N);
        }
    }

    static double[] draws(DoubleUnaryOperator f, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        double[] x = new double[N];
        for (int i = 0; i < N; i++) {
            x[i] = f.applyAsDouble(1.0 - rng.nextDouble());  // (0, 1], like Philox.uniform
        }
        return x;
    }

    /** ∫₀¹ g(u) du by composite Simpson with 2·10⁵ panels (the quantile form of E[g(t)]). */
    static double integrate01(DoubleUnaryOperator g) {
        int n = 200_000;
        double h = 1.0 / n;
        double s = g.applyAsDouble(0) + g.applyAsDouble(1);
        for (int i = 1; i < n; i++) {
            s += (i % 2 == 1 ? 4 : 2) * g.applyAsDouble(i * h);
        }
        return s * h / 3;
    }

    /** E[g(z)], z ~ N(0, 1), by Simpson on [−12, 12]. */
    static double gaussianExpectation(DoubleUnaryOperator g) {
        int n = 200_000;
        double a = -12;
        double h = 24.0 / n;
        double s = 0;
        for (int i = 0; i <= n; i++) {
            double z = a + i * h;
            double w = (i == 0 || i == n) ? 1 : (i % 2 == 1 ? 4 : 2);
            s += w * g.applyAsDouble(z) * Gaussian.density(z);
        }
        return s * h / 3;
    }

    static void assertMoments(double mean, double var, Moments m, String what) {
        assertEquals(mean, m.mean(), Z * m.seMean(), what + " mean");
        assertEquals(var, m.var(), Z * m.seVar(), what + " variance");
    }

    static double logit(double t) {
        return Math.log(t) - Math.log1p(-t);
    }

    @Test
    void uniform() {
        TimeSampler u = TimeSampler.uniform();
        assertMoments(0.5, 1.0 / 12, Moments.of(draws(u::fromUniform, 1)), "U(0,1)");
        TimeSampler.Uniform ab = new TimeSampler.Uniform(0.2, 0.9);
        assertMoments(0.55, 0.49 / 12, Moments.of(draws(ab::fromUniform, 2)), "U(0.2,0.9)");
        assertEquals(0.9, ab.fromUniform(1.0));
        assertEquals(0.2, ab.fromUniform(0.0));
        assertThrows(IllegalArgumentException.class, () -> new TimeSampler.Uniform(0.5, 0.5));
        assertThrows(IllegalArgumentException.class, () -> u.fromUniform(1.0000001));
    }

    @Test
    void logitNormalFromUniformAndFromNormal() {
        // Esser et al. 2024, eq. 19: logit(t) ~ N(m, s^2); E[t] by quadrature of sigmoid(m + s z).
        double m = 0.5;
        double s = 0.8;
        TimeSampler.LogitNormal ln = new TimeSampler.LogitNormal(m, s);
        double meanT = gaussianExpectation(z -> 1 / (1 + Math.exp(-(m + s * z))));
        double meanT2 = gaussianExpectation(z -> Math.pow(1 / (1 + Math.exp(-(m + s * z))), 2));
        double[] viaUniform = draws(ln::fromUniform, 3);
        SplittableRandom rng = new SplittableRandom(4);
        double[] viaNormal = new double[N];
        for (int i = 0; i < N; i++) {
            viaNormal[i] = ln.fromNormal(rng.nextGaussian());
        }
        for (double[] t : new double[][] {viaUniform, viaNormal}) {
            double[] lt = new double[N];
            for (int i = 0; i < N; i++) {
                assertTrue(t[i] > 0 && t[i] < 1);
                lt[i] = logit(t[i]);
            }
            assertMoments(m, s * s, Moments.of(lt), "logit(t)");
            assertMoments(meanT, meanT2 - meanT * meanT, Moments.of(t), "t");
        }
        // SD3's default (m = 0, s = 1) is symmetric about 1/2.
        TimeSampler.LogitNormal sd3 = new TimeSampler.LogitNormal(0, 1);
        assertEquals(0.5, sd3.fromUniform(0.5), 1e-16);
        assertEquals(1.0, sd3.fromUniform(0.2) + sd3.fromUniform(0.8), 1e-15);
        // Endpoint draws stay finite and inside [0, 1].
        assertTrue(ln.fromUniform(1.0) < 1 && ln.fromUniform(0.0) > 0);
        assertThrows(IllegalArgumentException.class, () -> new TimeSampler.LogitNormal(0, 0));
    }

    @Test
    void modeSampling() {
        // Esser et al. 2024, eq. 20: t = 1 - u - s (cos^2(pi u / 2) - 1 + u); E[t] = 1/2 for every s.
        for (double scale : new double[] {-1.0, 0.0, 1.29, TimeSampler.Mode.MAX_SCALE}) {
            TimeSampler.Mode mode = new TimeSampler.Mode(scale);
            double m1 = integrate01(mode::fromUniform);
            double m2 = integrate01(u -> Math.pow(mode.fromUniform(u), 2));
            assertEquals(0.5, m1, 1e-12);
            assertMoments(0.5, m2 - 0.25, Moments.of(draws(mode::fromUniform, 5)), "mode s=" + scale);
            // A decreasing bijection of [0, 1].
            double prev = 2;
            for (int i = 0; i <= 1000; i++) {
                double t = mode.fromUniform(i / 1000.0);
                assertTrue(t <= prev && t >= 0 && t <= 1, "s = " + scale);
                prev = t;
            }
            assertEquals(1.0, mode.fromUniform(0.0));
            assertEquals(0.0, mode.fromUniform(1.0), 1e-16);
        }
        assertThrows(IllegalArgumentException.class, () -> new TimeSampler.Mode(-1.01));
        assertThrows(IllegalArgumentException.class, () -> new TimeSampler.Mode(1.76));
    }

    @Test
    void cosMapSampling() {
        // Esser et al. 2024, eq. 21: t = 1 - 1/(tan(pi u / 2) + 1); symmetric, E[t] = 1/2.
        TimeSampler.CosMap c = new TimeSampler.CosMap();
        double m2 = integrate01(u -> Math.pow(c.fromUniform(u), 2));
        assertMoments(0.5, m2 - 0.25, Moments.of(draws(c::fromUniform, 6)), "cosmap");
        assertEquals(0.5, c.fromUniform(0.5), 1e-15);
        assertEquals(1.0, c.fromUniform(1.0));
        assertEquals(0.0, c.fromUniform(0.0));
    }

    @Test
    void edmLogNormal() {
        // Karras et al. 2022: ln sigma ~ N(P_mean, P_std^2) = N(-1.2, 1.2^2); E[sigma] = exp(P_mean + P_std^2/2).
        EdmLogNormal edm = EdmLogNormal.karras2022();
        double[] sigma = draws(edm::fromUniform, 7);
        double[] logSigma = new double[N];
        for (int i = 0; i < N; i++) {
            assertTrue(sigma[i] > 0 && Double.isFinite(sigma[i]));
            logSigma[i] = Math.log(sigma[i]);
        }
        assertMoments(-1.2, 1.44, Moments.of(logSigma), "ln sigma");
        double mean = Math.exp(-1.2 + 0.72);
        double var = (Math.exp(1.44) - 1) * Math.exp(-2.4 + 1.44);
        assertMoments(mean, var, Moments.of(sigma), "sigma");
        assertEquals(Math.exp(-1.2 + 1.2 * 0.5), edm.fromNormal(0.5), 1e-15);
        assertTrue(Double.isFinite(edm.fromUniform(1.0)) && edm.fromUniform(0.0) > 0);
        assertThrows(IllegalArgumentException.class, () -> edm.fromNormal(Double.POSITIVE_INFINITY));
        assertThrows(IllegalArgumentException.class, () -> new EdmLogNormal(-1.2, 0));
    }

    @Test
    void stratifiedBatchesCoverEveryStratumAndReduceVariance() {
        int batch = 16;
        int batches = 20_000;
        TimeSampler.LogitNormal ln = new TimeSampler.LogitNormal(0, 1);
        SplittableRandom rng = new SplittableRandom(8);
        double[] stratMeans = new double[batches];
        double[] iidMeans = new double[batches];
        double[] all = new double[batches * batch];
        for (int b = 0; b < batches; b++) {
            double sumS = 0;
            double sumI = 0;
            for (int i = 0; i < batch; i++) {
                double u = 1.0 - rng.nextDouble();
                double strat = TimeSampler.stratum(i, batch, u);
                assertTrue(strat >= (double) i / batch && strat < (i + 1.0) / batch, "stratum " + i);
                double t = ln.stratified(i, batch, u);
                all[b * batch + i] = t;
                sumS += t;
                sumI += ln.fromUniform(1.0 - rng.nextDouble());
            }
            stratMeans[b] = sumS / batch;
            iidMeans[b] = sumI / batch;
        }
        // Unbiased: the pooled stratified draws have the logit-normal mean 1/2.
        Moments pooled = Moments.of(all);
        assertEquals(0.5, pooled.mean(), 1e-3);
        // Variance of the batch mean drops by far more than a factor 10 at B = 16.
        double vs = Moments.of(stratMeans).var();
        double vi = Moments.of(iidMeans).var();
        assertTrue(vs < vi / 10, "stratified var " + vs + " vs iid " + vi);
        // EDM sigma, stratified: every stratum gives a finite positive sigma, even u = 1 in stratum 0.
        EdmLogNormal edm = EdmLogNormal.karras2022();
        for (int i = 0; i < batch; i++) {
            assertTrue(Double.isFinite(edm.stratified(i, batch, 1.0)) && edm.stratified(i, batch, 1.0) > 0);
        }
        assertThrows(IllegalArgumentException.class, () -> TimeSampler.stratum(16, 16, 0.5));
        assertThrows(IllegalArgumentException.class, () -> TimeSampler.stratum(-1, 16, 0.5));
        assertThrows(IllegalArgumentException.class, () -> TimeSampler.stratum(0, 0, 0.5));
    }

    @Test
    void philoxDrawsArePureFunctionsOfTheCounter() {
        TimeSampler.LogitNormal ln = new TimeSampler.LogitNormal(0, 1);
        TimeSampler.Mode mode = new TimeSampler.Mode(1.29);
        EdmLogNormal edm = EdmLogNormal.karras2022();
        for (long i = 0; i < 64; i++) {
            double a = ln.draw(42, 7, i);
            assertEquals(a, ln.draw(42, 7, i));
            assertTrue(a > 0 && a < 1);
            double m = mode.draw(42, 7, i);
            assertTrue(m >= 0 && m <= 1);
            double s = edm.draw(42, 7, i);
            assertTrue(s > 0 && Double.isFinite(s));
        }
    }

    @Test
    void gaussianQuantile() {
        // Reference values of the standard normal quantile: scipy.stats.norm.ppf for the moderate ones; the tails
        // solved to 17 digits with mpmath (ln(erfc(-x/sqrt 2)/2) = ln p, 60-digit arithmetic).
        assertEquals(0.0, Gaussian.quantile(0.5));
        assertEquals(1.959963984540054, Gaussian.quantile(0.975), 1e-15);
        assertEquals(-1.2815515655446004, Gaussian.quantile(0.1), 1e-15);
        assertEquals(-2.3263478740408408, Gaussian.quantile(0.01), 1e-14);
        assertEquals(-6.361340902404056, Gaussian.quantile(1e-10), 1e-13);
        assertEquals(-9.2623400897984076, Gaussian.quantile(1e-20), 1e-13);
        assertEquals(-37.047096299361199, Gaussian.quantile(1e-300), 1e-12);
        // Symmetry (p chosen so that 1 - p is exact in binary).
        for (double p : new double[] {0x1p-30, 0.00390625, 0.1875, 0.4375}) {
            assertEquals(-Gaussian.quantile(p), Gaussian.quantile(1 - p), 1e-14);
        }
        assertEquals(Double.NEGATIVE_INFINITY, Gaussian.quantile(0));
        assertEquals(Double.POSITIVE_INFINITY, Gaussian.quantile(1));
        assertThrows(IllegalArgumentException.class, () -> Gaussian.quantile(1.1));
        assertThrows(IllegalArgumentException.class, () -> Gaussian.quantile(Double.NaN));
    }
}
