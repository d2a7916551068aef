package org.diffusion4j.sampling;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.schedule.DiscreteVpSchedule;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.RectifiedFlowSchedule;
import org.diffusion4j.schedule.TimestepSpacing;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The public algorithm bodies ({@code Samplers.ddim(ctx, x, grid, eta)}, …) check their arguments as the factories
 * do, naming the bad value, before the first model call; RePaint's jump length 0 is refused instead of looping forever.
 */
class SamplerArgumentsTest {

    private static Backend backend;
    private static final GaussianOracle.Diagonal DATA = new GaussianOracle.Diagonal(
            new double[] {-0.5, 0.7}, new double[] {0.5, 1.0});

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(1);
    }

    @AfterAll
    static void tearDown() {
        backend.close();
    }

    @FunctionalInterface
    private interface Body {
        void run(SamplerContext ctx, Tensor x, SamplingGrid grid);
    }

    /** Runs {@code body} on a fresh context; asserts an IAE whose message holds every one of {@code words}. */
    private static void assertRefused(Prediction p, SamplingGrid grid, Body body, String... words) {
        try (TensorScope scope = TensorScope.open();
             SamplerContext ctx = SamplerContext.builder(backend, DATA.model(p), p)
                     .noise(NoiseSeeds.batch(3, 0, 0, 2)).build()) {
            Tensor x = backend.empty(scope, DType.F32, 2, DATA.dim());
            ctx.initialNoise(x, grid);
            Executable call = () -> ctx.sample(body::run, x, grid);
            IllegalArgumentException e = assertTimeoutPreemptively(Duration.ofSeconds(20),
                    () -> assertThrows(IllegalArgumentException.class, call));
            for (String w : words) {
                assertTrue(e.getMessage().contains(w), "'" + w + "' not in: " + e.getMessage());
            }
            assertEquals(0, ctx.modelCalls(), "refused before the first model call");
        }
    }

    private static SamplingGrid vpGrid() {
        DiscreteVpSchedule lin = DiscreteVpSchedule.linear(1000);
        return SamplingGrid.ofTimesteps(lin, TimestepSpacing.TRAILING.timesteps(1000, 6));
    }

    @Test
    void repaintWithJumpLengthZeroIsRefusedNotAnEndlessLoop() {
        SamplingGrid g = vpGrid();
        assertRefused(Prediction.EPSILON, g, (c, x, gr) -> Samplers.repaint(c, x, gr, 1, 0), "jump length", "0");
        assertRefused(Prediction.EPSILON, g, (c, x, gr) -> Samplers.repaint(c, x, gr, 3, 0), "jump length", "0");
        assertRefused(Prediction.EPSILON, g, (c, x, gr) -> Samplers.repaint(c, x, gr, 2, -1), "jump length", "-1");
        assertRefused(Prediction.EPSILON, g, (c, x, gr) -> Samplers.repaint(c, x, gr, 0, 2), "resamplings", "0");
        assertRefused(Prediction.EPSILON, g, (c, x, gr) -> Samplers.repaint(c, x, gr, 1001, 2), "resamplings",
                "1001");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Samplers.repaint(2, 0));
        assertTrue(e.getMessage().contains("jump length") && e.getMessage().contains("0"), e.getMessage());
    }

    @Test
    void algorithmBodiesNameTheirBadParameter() {
        SamplingGrid g = vpGrid();
        Prediction p = Prediction.EPSILON;
        assertRefused(p, g, (c, x, gr) -> Samplers.ddim(c, x, gr, -1), "eta", "-1");
        assertRefused(p, g, (c, x, gr) -> Samplers.ddim(c, x, gr, Double.NaN), "eta", "NaN");
        assertRefused(p, g, (c, x, gr) -> Samplers.eulerAncestral(c, x, gr, -0.5, 1), "eta", "-0.5");
        assertRefused(p, g, (c, x, gr) -> Samplers.eulerAncestral(c, x, gr, 1, Double.POSITIVE_INFINITY), "sNoise",
                "Infinity");
        assertRefused(p, g, (c, x, gr) -> Samplers.dpmSolverPp2mSde(c, x, gr, -1, 1), "eta", "-1");
        assertRefused(p, g, (c, x, gr) -> Samplers.dpmSolverPp2mSde(c, x, gr, 1, -2), "sNoise", "-2");
        assertRefused(p, g, (c, x, gr) -> Samplers.dpmSolverPp3mSde(c, x, gr, -1, 1), "eta", "-1");
        assertRefused(p, g, (c, x, gr) -> Samplers.dpmSolverPp3mSde(c, x, gr, 1, Double.NaN), "sNoise", "NaN");
    }

    @Test
    void algorithmBodiesRefuseNullArguments() {
        SamplingGrid g = vpGrid();
        SamplingGrid flow = SamplingGrid.ofFlowSigmas(RectifiedFlowSchedule.unshifted(), 1, 0.5, 0);
        try (TensorScope scope = TensorScope.open();
             SamplerContext ctx = SamplerContext.builder(backend, DATA.model(Prediction.EPSILON), Prediction.EPSILON)
                     .noise(NoiseSeeds.batch(3, 0, 0, 2)).build()) {
            Tensor x = backend.empty(scope, DType.F32, 2, DATA.dim());
            assertThrows(NullPointerException.class, () -> Samplers.ddpm(ctx, x, g, null));
            assertThrows(NullPointerException.class, () -> Samplers.heun(ctx, x, g, null));
            assertThrows(NullPointerException.class, () -> Samplers.euler(null, x, g));
            assertThrows(NullPointerException.class, () -> Samplers.uniPc(ctx, null, g));
            assertThrows(NullPointerException.class, () -> Samplers.flowEuler(ctx, x, null));
            assertThrows(NullPointerException.class, () -> Samplers.flowMidpoint(null, x, flow));
            assertEquals(0, ctx.modelCalls());
        }
    }

    @Test
    void churnGammaNeedsAPositiveStepCount() {
        Samplers.Churn churn = new Samplers.Churn(30, 0, Double.POSITIVE_INFINITY, 1);
        assertEquals(Math.sqrt(2) - 1, churn.gamma(1.0, 10), 0);
        assertEquals(30.0 / 100, churn.gamma(1.0, 100), 1e-15);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> churn.gamma(1.0, 0));
        assertTrue(e.getMessage().contains("0"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Samplers.Churn.NONE.gamma(1.0, -3));
    }

    /**
     * Found by an adversarial trial: a body called directly skipped what {@code SamplerContext.sample} guards: two
     * threads running bodies on one context gave wrong samples in 3 of 5 trials, and a body sampled into the
     * context's own scratch buffer (7.64 instead of 2.85). Direct calls now go through {@code sample}: one run at a
     * time, the context's buffers refused, the same result as {@code sample} with the factory's sampler.
     */
    @Test
    void directBodyCallsAreGuardedAsSampleIs() throws Exception {
        SamplingGrid g = vpGrid();
        Prediction p = Prediction.EPSILON;
        Denoiser exact = DATA.model(p);
        java.util.concurrent.CountDownLatch inside = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        Denoiser slow = (xt, levels, condition, out) -> {
            inside.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
            exact.predict(xt, levels, condition, out);
        };
        try (TensorScope scope = TensorScope.open();
             SamplerContext ctx = SamplerContext.builder(backend, slow, p).noise(NoiseSeeds.batch(3, 0, 0, 2)).build();
             SamplerContext plain = SamplerContext.builder(backend, exact, p)
                     .noise(NoiseSeeds.batch(3, 0, 0, 2)).build()) {
            Tensor x = backend.empty(scope, DType.F32, 2, DATA.dim());
            Tensor y = backend.empty(scope, DType.F32, 2, DATA.dim());
            ctx.initialNoise(x, g);
            ctx.initialNoise(y, g);
            Thread first = new Thread(() -> Samplers.ddim(ctx, x, g, 0));
            first.start();
            inside.await();
            IllegalStateException busy = assertThrows(IllegalStateException.class, () -> Samplers.ddim(ctx, y, g, 0));
            assertTrue(busy.getMessage().contains("already sampling"), busy.getMessage());
            release.countDown();
            first.join(30_000);

            Tensor own = plain.scratch(0, y);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Samplers.heun(plain, own, g, Samplers.Churn.NONE));
            assertTrue(e.getMessage().contains("buffer of this SamplerContext"), e.getMessage());

            Tensor direct = backend.empty(scope, DType.F32, 2, DATA.dim());
            Tensor viaSample = backend.empty(scope, DType.F32, 2, DATA.dim());
            plain.initialNoise(direct, g);
            plain.initialNoise(viaSample, g);
            Samplers.ddim(plain, direct, g, 0);
            plain.sample(Samplers.ddim(0), viaSample, g);
            org.junit.jupiter.api.Assertions.assertArrayEquals(viaSample.toFloatArray(), direct.toFloatArray());
            org.junit.jupiter.api.Assertions.assertArrayEquals(viaSample.toFloatArray(), x.toFloatArray(),
                    "the first thread's run completed as a plain one");
        }
    }
}
