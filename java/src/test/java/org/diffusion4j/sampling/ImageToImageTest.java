package org.diffusion4j.sampling;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.random.Philox;
import org.diffusion4j.schedule.NoiseSchedule;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.RectifiedFlowSchedule;
import org.diffusion4j.schedule.SigmaGrids;
import org.diffusion4j.schedule.VpSchedule;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Image-to-image (SDEdit) and inpainting against closed forms for Gaussian data ({@link GaussianOracle}): the
 * shortened grid follows diffusers' strength rule; SDEdit from an input equals the exact probability-flow map of the
 * noised input; inpainting keeps the known region exactly and, for a per-element denoiser, leaves the generated
 * region bit-identical to plain sampling; on correlated data it moves the generated coordinate to the conditional
 * law.
 */
class ImageToImageTest {

    private static Backend backend;
    private static final GaussianOracle.Diagonal DATA = new GaussianOracle.Diagonal(
            new double[] {-1.0, -0.4, 0.0, 0.3, 0.9, 1.5}, new double[] {0.3, 0.5, 0.7, 0.9, 1.0, 1.2});
    private static final NoiseSchedule VP = VpSchedule.song2021();

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void tearDown() {
        backend.close();
    }

    private static SamplingGrid flowGrid(int n) {
        return SamplingGrid.ofFlowSigmas(RectifiedFlowSchedule.unshifted(), SigmaGrids.linspace(1, 0, n + 1));
    }

    private static SamplingGrid vpGrid(int n) {
        double[] t = SigmaGrids.uniformLogSnr(VP, n, 1.0, 1e-3);
        double[] withZero = Arrays.copyOf(t, n + 1);                 // ... then clean data (t = 0)
        return SamplingGrid.ofTimes(VP, withZero);
    }

    // ---------------------------------------------------------------- the grid

    @Test
    void forStrengthKeepsTheLastStepsByDiffusersRule() {
        SamplingGrid g = flowGrid(50);
        SamplingGrid tail = g.forStrength(0.8);                      // int(50 * 0.8) = 40 steps from level 10
        assertEquals(40, tail.steps());
        assertEquals(g.level(10), tail.first());
        assertEquals(g.last(), tail.last());
        assertSame(g, g.forStrength(1.0));
        // 100 * 0.29 = 28.999999999999996 in double: diffusers' int(...) keeps 28 steps, and so do we
        assertEquals(28, flowGrid(100).forStrength(0.29).steps());
        assertEquals(1, flowGrid(10).forStrength(0.1).steps());
        for (double bad : new double[] {0, -0.5, 1.0000001, Double.NaN}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> g.forStrength(bad));
            assertTrue(e.getMessage().contains("strength must be in (0, 1]"), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> flowGrid(49).forStrength(0.01));
        assertTrue(e.getMessage().contains("keeps no step"), e.getMessage());
        // the strength the message suggests must work (49 · (1/49) = 0.9999999999999999 in double)
        String least = e.getMessage().replaceAll(".*use a strength >= (\\S+) .*", "$1");
        assertEquals(1, flowGrid(49).forStrength(Double.parseDouble(least)).steps(), e.getMessage());
        assertThrows(IndexOutOfBoundsException.class, () -> g.from(50));
        assertThrows(IndexOutOfBoundsException.class, () -> g.from(-1));
        assertEquals(1, g.from(49).steps());
    }

    // ---------------------------------------------------------------- SDEdit

    /** SDEdit with a second-order solver matches the exact PF-ODE map of {@code α·init + σ·z} (z: draw 0). */
    @Test
    void sdeditIsTheExactFlowOfTheNoisedInput() {
        int batch = 3;
        int d = DATA.dim();
        float[] init = new float[batch * d];
        for (int i = 0; i < init.length; i++) {
            init[i] = (float) (2.5 * Philox.normal(11, 0, i));        // inputs far from the data, as edits are
        }
        record Case(String name, Sampler sampler, Prediction p, SamplingGrid grid, double tol) { }
        for (Case c : new Case[] {
                new Case("dpm++2m, VP, strength 0.6", Samplers.dpmSolverPp2m(), Prediction.EPSILON,
                        vpGrid(400).forStrength(0.6), 2e-3),
                // to t = 1e-3, not 0: Heun's last step into sigma = 0 is an Euler step whose error does not shrink
                new Case("heun, VP, strength 0.3", Samplers.heun(), Prediction.V, SamplingGrid.ofTimes(VP,
                        SigmaGrids.uniformLogSnr(VP, 201, 1.0, 1e-3)).forStrength(0.3), 2e-4),
                new Case("flow midpoint, strength 0.5", Samplers.flowMidpoint(), Prediction.VELOCITY,
                        flowGrid(200).forStrength(0.5), 2e-3)}) {
            Level first = c.grid().first();
            long seed = 5;
            try (TensorScope scope = TensorScope.open();
                 SamplerContext ctx = SamplerContext.builder(backend, DATA.model(c.p()), c.p())
                         .noise(NoiseSeeds.batch(seed, 0, 0, batch)).build()) {
                Tensor in = backend.fromArray(scope, init, batch, d);
                Tensor x = backend.empty(scope, DType.F32, batch, d);
                ctx.initialNoise(x, c.grid(), in);
                float[] start = x.toFloatArray();
                for (int i = 0; i < start.length; i++) {         // x = α·init + σ·z, z = Philox(seed, stream 0, i)
                    double want = first.alpha() * init[i] + first.sigma() * Philox.normal(seed, 0, i);
                    assertEquals(want, start[i], 1e-5 * (1 + Math.abs(want)), c.name() + ": noised input " + i);
                }
                ctx.sample(c.sampler(), x, c.grid());
                float[] out = x.toFloatArray();
                double worst = 0;
                for (int i = 0; i < out.length; i++) {
                    double exact = DATA.flow(i % d, start[i], first, c.grid().last());
                    worst = Math.max(worst, Math.abs(out[i] - exact));
                }
                System.out.printf(Locale.ROOT, "%s: %d steps from t = %.4f, max error %.2e%n", c.name(),
                        c.grid().steps(), first.t(), worst);
                assertTrue(worst < c.tol(), c.name() + ": max error " + worst);
            }
        }
    }

    /** Strength 1 on a grid from pure noise ({@code α = 0}) is plain sampling, bit for bit. */
    @Test
    void strengthOneFromPureNoiseIsPlainSampling() {
        int batch = 4;
        int d = DATA.dim();
        SamplingGrid g = flowGrid(12).forStrength(1.0);
        float[] init = new float[batch * d];
        Arrays.fill(init, 3.25f);
        float[][] results = new float[2][];
        for (int run = 0; run < 2; run++) {
            try (TensorScope scope = TensorScope.open();
                 SamplerContext ctx = SamplerContext.builder(backend, DATA.model(Prediction.VELOCITY),
                         Prediction.VELOCITY).noise(NoiseSeeds.batch(9, 0, 0, batch)).build()) {
                Tensor x = backend.empty(scope, DType.F32, batch, d);
                if (run == 0) {
                    ctx.initialNoise(x, g);
                } else {
                    ctx.initialNoise(x, g, backend.fromArray(scope, init, batch, d));
                }
                ctx.sample(Samplers.flowEuler(), x, g);
                results[run] = x.toFloatArray();
            }
        }
        assertArrayEquals(results[0], results[1]);
    }

    // ---------------------------------------------------------------- inpainting

    private static float[] sampleWith(Sampler sampler, Prediction p, SamplingGrid grid, float[] known, float[] mask,
                                      int batch, int d, long seed) {
        try (TensorScope scope = TensorScope.open()) {
            SamplerContext.Builder b = SamplerContext.builder(backend, DATA.model(p), p)
                    .noise(NoiseSeeds.batch(seed, 0, 0, batch));
            if (known != null) {
                b.inpaint(backend.fromArray(scope, known, batch, d), backend.fromArray(scope, mask, batch, d));
            }
            try (SamplerContext ctx = b.build()) {
                Tensor x = backend.empty(scope, DType.F32, batch, d);
                ctx.initialNoise(x, grid);
                ctx.sample(sampler, x, grid);
                return x.toFloatArray();
            }
        }
    }

    /**
     * With a per-element denoiser (diagonal Gaussian data) the generated elements never see the known ones: they
     * must equal a plain run's bit for bit, and the kept elements must equal the known data exactly.
     */
    @Test
    void inpaintingKeepsTheKnownRegionExactlyAndLeavesTheRestAlone() {
        int batch = 5;
        int d = DATA.dim();
        float[] known = new float[batch * d];
        float[] mask = new float[batch * d];
        for (int i = 0; i < known.length; i++) {
            known[i] = (float) (0.7 * Philox.normal(21, 0, i) - 0.2);
            mask[i] = Philox.uniform(21, 1, i) < 0.5 ? 1f : 0f;
        }
        record Case(String name, Sampler sampler, Prediction p, SamplingGrid grid) { }
        for (Case c : new Case[] {
                new Case("ddpm", Samplers.ddpm(Samplers.DdpmVariance.FIXED_SMALL), Prediction.EPSILON, vpGrid(20)),
                new Case("euler_a", Samplers.eulerAncestral(1, 1), Prediction.SAMPLE, vpGrid(20)),
                new Case("dpm++2m sde", Samplers.dpmSolverPp2mSde(1, 1), Prediction.V, vpGrid(20)),
                new Case("dpm++3m sde", Samplers.dpmSolverPp3mSde(1, 1), Prediction.V, vpGrid(20)),
                new Case("unipc", Samplers.uniPc(), Prediction.EPSILON, vpGrid(20)),
                new Case("heun", Samplers.heun(), Prediction.EPSILON, vpGrid(20).from(1)),
                new Case("ddim", Samplers.ddim(0), Prediction.EPSILON, vpGrid(20)),
                new Case("flow midpoint, strength 0.7", Samplers.flowMidpoint(), Prediction.VELOCITY,
                        flowGrid(20).forStrength(0.7)),
                new Case("flow euler", Samplers.flowEuler(), Prediction.VELOCITY, flowGrid(20))}) {
            float[] plain = sampleWith(c.sampler(), c.p(), c.grid(), null, null, batch, d, 3);
            float[] painted = sampleWith(c.sampler(), c.p(), c.grid(), known, mask, batch, d, 3);
            int generated = 0;
            for (int i = 0; i < plain.length; i++) {
                if (mask[i] == 1f) {
                    generated++;
                    assertEquals(plain[i], painted[i], 0f, c.name() + ": generated element " + i);
                } else {
                    assertEquals(known[i], painted[i], 0f, c.name() + ": kept element " + i);
                    assertTrue(plain[i] != known[i], c.name() + ": a plain run must differ from the known data");
                }
            }
            assertTrue(generated > 5 && generated < plain.length - 5, "mask must mix both kinds");
        }
    }

    /**
     * Correlated data {@code N(0, [[1, ρ], [ρ, 1]])}, {@code ρ = 0.9}: inpainting the second coordinate given the
     * first {@code = a = 1.5} should give the conditional law {@code N(ρa, 1 − ρ²) = N(1.35, 0.436²)}; the marginal
     * is {@code N(0, 1)}. Replacement alone is known to harmonise poorly (its noised known coordinate is drawn afresh
     * at every level, independent of the generated one; Lugmayr et al. 2022, §4.1): with 200 DDPM steps it gives mean
     * 0.93 and sd 0.56. RePaint's resampling (U = 10, j = 10) must bring both to the conditional moments within
     * 0.06 and 0.03 (measured 1.318 and 0.435; one standard error of the mean is 0.003), at least four times closer
     * than replacement alone. Both keep the known coordinate exactly.
     */
    @Test
    void repaintFollowsTheConditionalLawOfCorrelatedData() {
        double rho = 0.9;
        double a = 1.5;
        double wantM = rho * a;
        double wantSd = Math.sqrt(1 - rho * rho);
        double[] replacement = conditionalMoments(Samplers.ddpm(Samplers.DdpmVariance.FIXED_SMALL), rho, a);
        double[] repaint = conditionalMoments(Samplers.repaint(10, 10), rho, a);
        double errReplacement = Math.abs(replacement[0] - wantM);
        double errRepaint = Math.abs(repaint[0] - wantM);
        assertTrue(replacement[0] > 0.5, "replacement alone must still move the mean from 0, got " + replacement[0]);
        assertTrue(errRepaint < 0.06, "RePaint conditional mean " + repaint[0] + " vs " + wantM);
        assertTrue(Math.abs(repaint[1] - wantSd) < 0.03, "RePaint conditional sd " + repaint[1] + " vs " + wantSd);
        assertTrue(errRepaint < errReplacement / 4, "RePaint error " + errRepaint + " vs replacement " + errReplacement);
    }

    /** Mean and sd of the generated coordinate (inpainting {@code x[1]} given {@code x[0] = a}), 200 steps. */
    private static double[] conditionalMoments(Sampler sampler, double rho, double a) {
        GaussianOracle.Mixture data = new GaussianOracle.Mixture(new double[] {1.0}, new double[][] {{0, 0}},
                new double[][][] {{{1, rho}, {rho, 1}}});
        int batch = 20_000;
        float[] known = new float[2 * batch];
        float[] mask = new float[2 * batch];
        for (int b = 0; b < batch; b++) {
            known[2 * b] = (float) a;
            mask[2 * b + 1] = 1f;
        }
        SamplingGrid grid = vpGrid(200);
        try (TensorScope scope = TensorScope.open();
             SamplerContext ctx = SamplerContext.builder(backend, data.model(Prediction.EPSILON), Prediction.EPSILON)
                     .noise(NoiseSeeds.batch(77, 0, 0, batch))
                     .inpaint(backend.fromArray(scope, known, batch, 2), backend.fromArray(scope, mask, batch, 2))
                     .build()) {
            Tensor x = backend.empty(scope, DType.F32, batch, 2);
            ctx.initialNoise(x, grid);
            ctx.sample(sampler, x, grid);
            float[] v = x.toFloatArray();
            double m = 0;
            double sq = 0;
            for (int b = 0; b < batch; b++) {
                assertEquals((float) a, v[2 * b], 0f, sampler + ": kept coordinate of sample " + b);
                m += v[2 * b + 1] / batch;
                sq += (double) v[2 * b + 1] * v[2 * b + 1] / batch;
            }
            double sd = Math.sqrt(sq - m * m);
            System.out.printf(Locale.ROOT, "%s inpainting, rho %.1f, a %.1f: mean %.4f sd %.4f; conditional %.4f %.4f%n",
                    sampler, rho, a, m, sd, rho * a, Math.sqrt(1 - rho * rho));
            return new double[] {m, sd};
        }
    }

    /** RePaint with one pass is DDPM (fixed_small) bit for bit: the same steps and the same noise draws. */
    @Test
    void repaintWithOnePassIsDdpm() {
        int batch = 3;
        int d = DATA.dim();
        float[] known = new float[batch * d];
        float[] mask = new float[batch * d];
        for (int i = 0; i < mask.length; i++) {
            known[i] = (float) Philox.normal(8, 0, i);
            mask[i] = i % 3 == 0 ? 0f : 1f;
        }
        for (float[] m : new float[][] {null, mask}) {
            float[] ddpm = sampleWith(Samplers.ddpm(Samplers.DdpmVariance.FIXED_SMALL), Prediction.EPSILON,
                    vpGrid(9), m == null ? null : known, m, batch, d, 6);
            float[] repaint = sampleWith(Samplers.repaint(1, 4), Prediction.EPSILON, vpGrid(9),
                    m == null ? null : known, m, batch, d, 6);
            assertArrayEquals(ddpm, repaint);
        }
        assertThrows(IllegalArgumentException.class, () -> Samplers.repaint(0, 10));
        assertThrows(IllegalArgumentException.class, () -> Samplers.repaint(10, 0));
        assertEquals("repaint(u=10, jump=10)", Samplers.byName("repaint").toString());
    }

    /** The step listener sees every level once, in order, with the state the sampler left there. */
    @Test
    void stepListenerSeesEveryLevel() {
        int batch = 2;
        int d = DATA.dim();
        SamplingGrid grid = vpGrid(7);
        java.util.List<Integer> levels = new java.util.ArrayList<>();
        java.util.List<float[]> states = new java.util.ArrayList<>();
        try (TensorScope scope = TensorScope.open();
             SamplerContext ctx = SamplerContext.builder(backend, DATA.model(Prediction.EPSILON), Prediction.EPSILON)
                     .noise(NoiseSeeds.batch(4, 0, 0, batch))
                     .onStep((level, g, x) -> {
                         assertSame(grid, g);
                         levels.add(level);
                         states.add(x.toFloatArray());
                     }).build()) {
            Tensor x = backend.empty(scope, DType.F32, batch, d);
            ctx.initialNoise(x, grid);
            ctx.sample(Samplers.dpmSolverPp2m(), x, grid);
            assertEquals(java.util.List.of(1, 2, 3, 4, 5, 6, 7), levels);
            assertArrayEquals(x.toFloatArray(), states.get(6));
            assertTrue(!Arrays.equals(states.get(0), states.get(6)), "intermediate states are not the final one");
            Sampler silent = (c, xs, g) -> {
                c.evaluate(xs, g.level(0));
                c.update(SamplerContext.Update.denoised(0, 1), xs, xs, false);
            };
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> ctx.sample(silent, x, grid));
            assertTrue(e.getMessage().contains("a step listener needs a sampler that calls afterStep"), e.getMessage());
        }
    }

    // ---------------------------------------------------------------- misuse

    @Test
    void badInpaintingInputsAreRefusedByName() {
        int batch = 2;
        int d = DATA.dim();
        SamplingGrid grid = vpGrid(4);
        Prediction p = Prediction.EPSILON;
        float[] ok = new float[batch * d];
        float[] half = new float[batch * d];
        Arrays.fill(half, 0.5f);
        try (TensorScope scope = TensorScope.open()) {
            Tensor x = backend.empty(scope, DType.F32, batch, d);
            Tensor known = backend.fromArray(scope, ok, batch, d);
            // a mask value outside [0, 1]
            float[] badMask = half.clone();
            badMask[7] = 1.5f;
            try (SamplerContext ctx = SamplerContext.builder(backend, DATA.model(p), p)
                    .noise(NoiseSeeds.batch(1, 0, 0, batch))
                    .inpaint(known, backend.fromArray(scope, badMask, batch, d)).build()) {
                ctx.initialNoise(x, grid);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> ctx.sample(Samplers.ddim(0), x, grid));
                assertTrue(e.getMessage().contains("1.5") && e.getMessage().contains("flat index 7"), e.getMessage());
            }
            // NaN in the known data
            float[] nan = ok.clone();
            nan[3] = Float.NaN;
            try (SamplerContext ctx = SamplerContext.builder(backend, DATA.model(p), p)
                    .noise(NoiseSeeds.batch(1, 0, 0, batch))
                    .inpaint(backend.fromArray(scope, nan, batch, d), backend.fromArray(scope, half, batch, d))
                    .build()) {
                ctx.initialNoise(x, grid);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> ctx.sample(Samplers.ddim(0), x, grid));
                assertTrue(e.getMessage().contains("NaN"), e.getMessage());
            }
            // a mask of another shape
            try (SamplerContext ctx = SamplerContext.builder(backend, DATA.model(p), p)
                    .noise(NoiseSeeds.batch(1, 0, 0, batch))
                    .inpaint(known, backend.fromArray(scope, new float[d], 1, d)).build()) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> ctx.sample(Samplers.ddim(0), x, grid));
                assertTrue(e.getMessage().contains("inpainting mask"), e.getMessage());
            }
            // no noise seeds
            try (SamplerContext ctx = SamplerContext.builder(backend, DATA.model(p), p)
                    .inpaint(known, backend.fromArray(scope, half, batch, d)).build()) {
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> ctx.sample(Samplers.ddim(0), x, grid));
                assertTrue(e.getMessage().contains("NoiseSeeds"), e.getMessage());
            }
            // a custom sampler that never reports its steps
            Sampler silent = (ctx, xs, g) -> {
                for (int i = 0; i < g.steps(); i++) {
                    ctx.evaluate(xs, g.level(i));
                    ctx.update(SamplerContext.Update.denoised(0, 1), xs, xs, false);
                }
            };
            try (SamplerContext ctx = SamplerContext.builder(backend, DATA.model(p), p)
                    .noise(NoiseSeeds.batch(1, 0, 0, batch))
                    .inpaint(known, backend.fromArray(scope, half, batch, d)).build()) {
                ctx.initialNoise(x, grid);
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> ctx.sample(silent, x, grid));
                assertTrue(e.getMessage().contains("afterStep"), e.getMessage());
            }
            // a sampler that reports only its last level, or skips one, is refused (its known region was not kept)
            Sampler lastOnly = (c, xs, g) -> {
                for (int i = 0; i < g.steps(); i++) {
                    c.evaluate(xs, g.level(i));
                    c.update(SamplerContext.Update.denoised(0, 1), xs, xs, false);
                }
                c.afterStep(xs, g, g.steps());
            };
            try (SamplerContext ctx = SamplerContext.builder(backend, DATA.model(p), p)
                    .noise(NoiseSeeds.batch(1, 0, 0, batch))
                    .inpaint(known, backend.fromArray(scope, half, batch, d)).build()) {
                ctx.initialNoise(x, grid);
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> ctx.sample(lastOnly, x, grid));
                assertTrue(e.getMessage().contains("afterStep(level 4, pass 0) after level 0"), e.getMessage());
                // and a context refuses a second run while one is in progress, and close() meanwhile
                Sampler reentrant = (c, xs, g) -> {
                    assertThrows(IllegalStateException.class, () -> c.sample(Samplers.ddim(0), xs, g));
                    IllegalStateException closing = assertThrows(IllegalStateException.class, c::close);
                    assertTrue(closing.getMessage().contains("in use"), closing.getMessage());
                    Samplers.ddim(c, xs, g, 0);
                };
                ctx.sample(reentrant, x, grid);
            }
            // the init of image-to-image: NaN, wrong shape, or x itself
            try (SamplerContext ctx = SamplerContext.builder(backend, DATA.model(p), p)
                    .noise(NoiseSeeds.batch(1, 0, 0, batch)).build()) {
                float[] bad = new float[batch * d];
                bad[5] = Float.NaN;
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> ctx.initialNoise(x, grid, backend.fromArray(scope, bad, batch, d)));
                assertTrue(e.getMessage().contains("NaN"), e.getMessage());
            }
            try (SamplerContext ctx = SamplerContext.builder(backend, DATA.model(p), p)
                    .noise(NoiseSeeds.batch(1, 0, 0, batch)).build()) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> ctx.initialNoise(x, grid, backend.fromArray(scope, new float[d], 1, d)));
                assertTrue(e.getMessage().contains("init"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> ctx.initialNoise(x, grid, x));
                assertTrue(e.getMessage().contains("overlaps"), e.getMessage());
            }
        }
    }
}
