package org.diffusion4j.sampling;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.schedule.DiscreteVpSchedule;
import org.diffusion4j.schedule.EdmSchedule;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.RectifiedFlowSchedule;
import org.diffusion4j.schedule.SigmaGrids;
import org.diffusion4j.schedule.TimestepSpacing;
import org.diffusion4j.schedule.VpSchedule;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Sampler behaviour: edge cases (1-step grids, N = T, squaredcos_cap_v2 at N = 2..50 in fp32, zero terminal SNR),
 * per-sample noise invariant under batch splitting, guidance through the context, exact final steps, call counts
 * and the equivalences between first-order samplers.
 */
class SamplerBehaviourTest {

    private static Backend backend;
    private static final GaussianOracle.Diagonal DATA = new GaussianOracle.Diagonal(
            new double[] {-0.8, 0.0, 0.4, 1.1}, new double[] {0.4, 0.6, 1.0, 0.8});

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void tearDown() {
        backend.close();
    }

    /** Every sampler except the flow ones, with names. */
    private static Map<String, Sampler> diffusionSamplers() {
        Map<String, Sampler> m = new LinkedHashMap<>();
        m.put("ddpm", Samplers.ddpm(Samplers.DdpmVariance.FIXED_SMALL));
        m.put("ddpm_large", Samplers.ddpm(Samplers.DdpmVariance.FIXED_LARGE));
        m.put("ddim0", Samplers.ddim(0));
        m.put("ddim1", Samplers.ddim(1));
        m.put("euler", Samplers.euler());
        m.put("euler_ancestral", Samplers.eulerAncestral(1, 1));
        m.put("heun", Samplers.heun());
        m.put("heun_churn", Samplers.heun(new Samplers.Churn(30, 0, Double.POSITIVE_INFINITY, 1)));
        m.put("dpmpp_2m", Samplers.dpmSolverPp2m());
        m.put("dpmpp_2m_sde", Samplers.dpmSolverPp2mSde(1, 1));
        m.put("dpmpp_3m", Samplers.dpmSolverPp3m());
        m.put("dpmpp_3m_sde", Samplers.dpmSolverPp3mSde(1, 1));
        m.put("unipc", Samplers.uniPc());
        m.put("repaint", Samplers.repaint(10, 10));
        return m;
    }

    private static final List<String> ANCESTRAL = List.of("ddpm", "ddpm_large", "ddim1", "euler_ancestral",
            "dpmpp_2m_sde", "heun_churn", "dpmpp_3m_sde", "repaint");

    /** Runs {@code sampler} from initial noise; returns the samples. */
    private static float[] run(Sampler sampler, Denoiser model, Prediction p, SamplingGrid grid, NoiseSeeds seeds,
                               int batch, Guidance g) {
        try (TensorScope scope = TensorScope.open();
             SamplerContext ctx = SamplerContext.builder(backend, model, p).noise(seeds).guidance(g, null).build()) {
            Tensor x = backend.empty(scope, DType.F32, batch, DATA.dim());
            ctx.initialNoise(x, grid);
            ctx.sample(sampler, x, grid);
            return x.toFloatArray();
        }
    }

    private static float[] run(Sampler sampler, Prediction p, SamplingGrid grid, int batch) {
        return run(sampler, DATA.model(p), p, grid, NoiseSeeds.batch(5, 0, 0, batch), batch, Guidance.NONE);
    }

    private static void assertFinite(float[] v, String what) {
        for (int i = 0; i < v.length; i++) {
            assertTrue(Float.isFinite(v[i]), what + ": element " + i + " = " + v[i]);
        }
    }

    // ---------------------------------------------------------------- edge cases

    @Test
    void samplersPrintTheirNameAndParameters() {
        assertEquals("dpmpp-2m", Samplers.byName("DPMPP-2M").toString());
        assertEquals("ddim(eta=0.0)", Samplers.byName("ddim").toString());
        assertEquals("ddpm(fixed-large)", Samplers.byName("ddpm_large").toString());
        assertEquals("euler-ancestral(eta=1.0, s-noise=1.0)", Samplers.byName("euler_a").toString());
        assertEquals("dpmpp-2m-sde(eta=0.5, s-noise=1.0)", Samplers.dpmSolverPp2mSde(0.5, 1).toString());
        assertEquals("dpmpp-3m-sde(eta=1.0, s-noise=1.0)", Samplers.byName("dpmpp_3m_sde").toString());
        assertEquals("heun", Samplers.heun().toString());
        assertEquals("flow-midpoint", Samplers.flowMidpoint().toString());
    }

    @Test
    void squaredcosCapV2EveryAncestralSamplerNEquals2To50IsFinite() {
        DiscreteVpSchedule cos = DiscreteVpSchedule.squaredcosCapV2(1000);
        for (TimestepSpacing spacing : new TimestepSpacing[] {TimestepSpacing.TRAILING, TimestepSpacing.LINSPACE}) {
            for (int n = 2; n <= 50; n++) {
                SamplingGrid grid = SamplingGrid.ofTimesteps(cos, spacing.timesteps(1000, n));
                for (String name : ANCESTRAL) {
                    for (Prediction p : new Prediction[] {Prediction.EPSILON, Prediction.V}) {
                        float[] out = run(diffusionSamplers().get(name), p, grid, 3);
                        assertFinite(out, name + " " + p + " " + spacing + " N=" + n);
                    }
                }
            }
        }
    }

    @Test
    void oneStepGridsReturnTheDenoisedPrediction() {
        DiscreteVpSchedule lin = DiscreteVpSchedule.linear(1000);
        SamplingGrid grid = SamplingGrid.ofTimesteps(lin, TimestepSpacing.TRAILING.timesteps(1000, 1));
        assertEquals(1, grid.steps());
        for (var e : diffusionSamplers().entrySet()) {
            if (e.getKey().equals("heun_churn") || e.getKey().equals("repaint")) {
                continue;   // churn moves the evaluation level; RePaint jumps back and samples the step again
            }
            float[] out = run(e.getValue(), Prediction.EPSILON, grid, 2);
            // one step into clean data: x = D(x_T) for every sampler (no noise into sigma = 0)
            float[] init = run((ctx, x, g) -> { }, Prediction.EPSILON, grid, 2);
            Level first = grid.first();
            for (int i = 0; i < out.length; i++) {
                double d = DATA.denoised(i % DATA.dim(), init[i], first.alpha(), first.sigma());
                assertEquals(d, out[i], 1e-4 * (1 + Math.abs(d)), e.getKey() + " element " + i);
            }
        }
        // flow: one step from sigma = 1 to 0 returns x − u = D
        SamplingGrid flow = SamplingGrid.ofFlowSigmas(RectifiedFlowSchedule.unshifted(), 1, 0);
        for (Sampler s : List.of(Samplers.flowEuler(), Samplers.flowMidpoint())) {
            assertFinite(run(s, Prediction.VELOCITY, flow, 2), "flow 1-step");
        }
        float[] init = run((ctx, x, g) -> { }, Prediction.VELOCITY, flow, 2);
        float[] out = run(Samplers.flowEuler(), Prediction.VELOCITY, flow, 2);
        for (int i = 0; i < out.length; i++) {
            assertEquals(DATA.denoised(i % DATA.dim(), init[i], 0, 1), out[i], 1e-5);
        }
    }

    @Test
    void nEqualsTIsFinite() {
        DiscreteVpSchedule lin = DiscreteVpSchedule.linear(1000);
        SamplingGrid grid = SamplingGrid.ofTimesteps(lin, TimestepSpacing.TRAILING.timesteps(1000, 1000));
        assertEquals(1000, grid.steps());
        for (var e : diffusionSamplers().entrySet()) {
            assertFinite(run(e.getValue(), Prediction.EPSILON, grid, 2), e.getKey() + " N = T");
        }
    }

    @Test
    void zeroTerminalSnrWorksWithVButNotWithEpsilon() {
        DiscreteVpSchedule zt = DiscreteVpSchedule.linear(1000).rescaledZeroTerminalSnr();
        SamplingGrid grid = SamplingGrid.ofTimesteps(zt, TimestepSpacing.TRAILING.timesteps(1000, 20));
        assertEquals(0.0, grid.first().alpha());
        for (var e : diffusionSamplers().entrySet()) {
            // Heun too: off VE grids it steps in τ = σ/(α + σ), which is 1 (not σ_VE = ∞) at pure noise
            assertFinite(run(e.getValue(), Prediction.V, grid, 2), e.getKey() + " zero terminal SNR");
        }
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
                () -> run(Samplers.ddim(0), Prediction.EPSILON, grid, 2));
        assertTrue(ex.getMessage().contains("alpha"), ex.getMessage());
    }

    @Test
    void gridsRejectRepeatsAndNonFlowGridsAreRefusedByFlowSamplers() {
        DiscreteVpSchedule lin = DiscreteVpSchedule.linear(1000);
        assertThrows(IllegalArgumentException.class, () -> SamplingGrid.ofTimesteps(lin, 500, 500, 100));
        assertThrows(IllegalArgumentException.class, () -> SamplingGrid.ofTimes(lin, 0.5));
        SamplingGrid ok = SamplingGrid.ofTimesteps(lin, TimestepSpacing.distinct(new int[] {900, 500, 500, 100}));
        assertEquals(3, ok.steps());
        assertThrows(IllegalArgumentException.class, () -> run(Samplers.flowEuler(), Prediction.EPSILON, ok, 2));
    }

    // ---------------------------------------------------------------- exactness and equivalences

    @Test
    void dpmSolverPp2mStepsToZeroReturnDenoisedExactly() {
        SamplingGrid grid = SamplingGrid.ofSigmasVe(EdmSchedule.karras2022(),
                SigmaGrids.appendZero(SigmaGrids.karras(7, 0.002, 80, 7)));
        float[][] last = new float[1][];
        Denoiser model = (xt, lv, c, out) -> {
            DATA.model(Prediction.SAMPLE).predict(xt, lv, c, out);
            last[0] = out.toFloatArray();
        };
        for (Sampler s : List.of(Samplers.dpmSolverPp2m(), Samplers.dpmSolverPp2mSde(1, 1))) {
            float[] out = run(s, model, Prediction.SAMPLE, grid, NoiseSeeds.batch(1, 0, 0, 3), 3, Guidance.NONE);
            assertArrayEquals(last[0], out);
        }
    }

    /** {@code byName} gives the named algorithm with its defaults, whatever the case and {@code -}/{@code _}. */
    @Test
    void byNameGivesTheSameSamplesAsTheFactoriesForEverySpelling() {
        DiscreteVpSchedule lin = DiscreteVpSchedule.linear(1000);
        SamplingGrid grid = SamplingGrid.ofTimesteps(lin, TimestepSpacing.TRAILING.timesteps(1000, 6));
        Map<String, Sampler> m = diffusionSamplers();
        for (String name : List.of("ddpm", "ddpm_large", "euler", "euler_ancestral", "heun", "dpmpp_2m",
                "dpmpp_2m_sde", "dpmpp_3m", "dpmpp_3m_sde", "unipc", "repaint")) {
            float[] want = run(m.get(name), Prediction.EPSILON, grid, 3);
            for (String spelling : List.of(name, name.toUpperCase(java.util.Locale.ROOT), name.replace('_', '-'),
                    " " + name + " ")) {
                assertArrayEquals(want, run(Samplers.byName(spelling), Prediction.EPSILON, grid, 3), spelling);
            }
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Samplers.byName("dpm3"));
        assertTrue(e.getMessage().contains("'dpm3'") && e.getMessage().contains("dpmpp_2m"), e.getMessage());
    }

    @Test
    void firstOrderSamplersCoincide() {
        DiscreteVpSchedule lin = DiscreteVpSchedule.linear(1000);
        SamplingGrid grid = SamplingGrid.ofTimesteps(lin, TimestepSpacing.LEADING.timesteps(1000, 25, 1));
        float[] ddim0 = run(Samplers.ddim(0), Prediction.EPSILON, grid, 4);
        float[] euler = run(Samplers.euler(), Prediction.EPSILON, grid, 4);
        assertTrue(GaussianOracle.relErr(euler, ddim0) < 1e-5, "Euler vs DDIM(0)");
        float[] ddim1 = run(Samplers.ddim(1), Prediction.EPSILON, grid, 4);
        float[] ddpm = run(Samplers.ddpm(Samplers.DdpmVariance.FIXED_SMALL), Prediction.EPSILON, grid, 4);
        float[] ea = run(Samplers.eulerAncestral(1, 1), Prediction.EPSILON, grid, 4);
        assertTrue(GaussianOracle.relErr(ddpm, ddim1) < 1e-5, "DDPM fixed_small vs DDIM(1)");
        assertTrue(GaussianOracle.relErr(ea, ddim1) < 1e-5, "Euler ancestral vs DDIM(1)");
        float[] sde0 = run(Samplers.dpmSolverPp2mSde(0, 1), Prediction.EPSILON, grid, 4);
        float[] pp2m = run(Samplers.dpmSolverPp2m(), Prediction.EPSILON, grid, 4);
        assertArrayEquals(pp2m, sde0);
    }

    @Test
    void modelCallCounts() {
        SamplingGrid grid = SamplingGrid.ofSigmasVe(EdmSchedule.karras2022(),
                SigmaGrids.appendZero(SigmaGrids.karras(10, 0.002, 80, 7)));
        int[][] expect = {{0, 10}, {1, 19}, {2, 10}};
        Sampler[] samplers = {Samplers.euler(), Samplers.heun(), Samplers.dpmSolverPp2m()};
        for (int k = 0; k < samplers.length; k++) {
            for (Guidance g : new Guidance[] {Guidance.NONE, Guidance.of(3)}) {
                try (TensorScope scope = TensorScope.open();
                     SamplerContext ctx = SamplerContext.builder(backend, DATA.model(Prediction.SAMPLE),
                             Prediction.SAMPLE).guidance(g, null).build()) {
                    Tensor x = backend.zeros(scope, DType.F32, 2, DATA.dim());
                    ctx.sample(samplers[k], x, grid);
                    assertEquals(expect[k][1] * (g.isGuided() ? 2L : 1L), ctx.modelCalls());
                }
            }
        }
        SamplingGrid flow = SamplingGrid.ofFlowSigmas(RectifiedFlowSchedule.unshifted(), SigmaGrids.linspace(1, 0, 9));
        try (TensorScope scope = TensorScope.open();
             SamplerContext ctx = SamplerContext.builder(backend, DATA.model(Prediction.VELOCITY),
                     Prediction.VELOCITY).build()) {
            Tensor x = backend.zeros(scope, DType.F32, 2, DATA.dim());
            ctx.sample(Samplers.flowMidpoint(), x, flow);
            assertEquals(16, ctx.modelCalls());
        }
    }

    // ---------------------------------------------------------------- guidance through the context

    /** A conditional model: the Gaussian oracle whose mean is shifted by the condition's first element. */
    private static Denoiser conditional(Prediction p, List<Tensor> seen) {
        return (xt, lv, cond, out) -> {
            seen.add(cond);
            float shift = cond == null ? 0f : cond.toFloatArray()[0];
            double[] mu = DATA.mu().clone();
            for (int i = 0; i < mu.length; i++) {
                mu[i] += shift;
            }
            new GaussianOracle.Diagonal(mu, DATA.s()).model(p).predict(xt, lv, cond, out);
        };
    }

    @Test
    void guidancePassesBothConditionsAndGuidanceOneMatchesUnguided() {
        SamplingGrid grid = SamplingGrid.ofSigmasVe(EdmSchedule.karras2022(),
                SigmaGrids.appendZero(SigmaGrids.karras(12, 0.002, 80, 7)));
        try (TensorScope scope = TensorScope.open()) {
            Tensor cond = backend.fromArray(scope, new float[] {0.5f}, 1);
            Tensor uncond = backend.fromArray(scope, new float[] {-0.25f}, 1);
            for (Sampler s : List.of(Samplers.dpmSolverPp2m(), Samplers.heun(), Samplers.eulerAncestral(1, 1))) {
                List<Tensor> seen = new ArrayList<>();
                float[] plain = runWith(s, conditional(Prediction.EPSILON, seen), cond, null, Guidance.NONE, grid);
                assertTrue(seen.stream().allMatch(t -> t == cond), "unguided: only the condition");
                seen.clear();
                float[] one = runWith(s, conditional(Prediction.EPSILON, seen), cond, uncond, Guidance.of(1.0, 0.7),
                        grid);
                assertArrayEquals(plain, one, "g = 1");
                assertTrue(seen.stream().allMatch(t -> t == cond), "g = 1 does not evaluate the uncond model");
                seen.clear();
                float[] guided = runWith(s, conditional(Prediction.EPSILON, seen), cond, uncond, Guidance.of(3.0, 0.0),
                        grid);
                assertTrue(seen.contains(cond) && seen.contains(uncond), "guided: both conditions");
                // means shifted by +0.5 (cond) and −0.25 (uncond): ε is linear in the mean, so guidance 3 samples
                // the Gaussian with mean shift −0.25 + 3·0.75 = 2.0, i.e. 1.5 beyond the conditional one
                double dm = mean(guided) - mean(plain);
                assertEquals(1.5, dm, 0.1, "guided mean shift");
                // identical cond and uncond outputs: any w and φ give the unguided result exactly
                seen.clear();
                float[] same = runWith(s, conditional(Prediction.EPSILON, seen), cond, cond, Guidance.of(7.0, 0.7),
                        grid);
                assertArrayEquals(plain, same, "cond = uncond");
            }
        }
    }

    private static double mean(float[] v) {
        double m = 0;
        for (float f : v) {
            m += f / v.length;
        }
        return m;
    }

    private static float[] runWith(Sampler s, Denoiser model, Tensor cond, Tensor uncond, Guidance g,
                                   SamplingGrid grid) {
        try (TensorScope scope = TensorScope.open();
             SamplerContext ctx = SamplerContext.builder(backend, model, Prediction.EPSILON).condition(cond)
                     .guidance(g, uncond).noise(NoiseSeeds.batch(3, 0, 0, 4)).build()) {
            Tensor x = backend.empty(scope, DType.F32, 4, DATA.dim());
            ctx.initialNoise(x, grid);
            ctx.sample(s, x, grid);
            return x.toFloatArray();
        }
    }

    // ---------------------------------------------------------------- per-sample noise

    @Test
    void noiseIsInvariantUnderBatchSplitting() {
        DiscreteVpSchedule lin = DiscreteVpSchedule.linear(1000);
        SamplingGrid vp = SamplingGrid.ofTimesteps(lin, TimestepSpacing.TRAILING.timesteps(1000, 15));
        SamplingGrid edm = SamplingGrid.ofSigmasVe(EdmSchedule.karras2022(),
                SigmaGrids.appendZero(SigmaGrids.karras(15, 0.002, 80, 7)));
        int batch = 6;
        NoiseSeeds all = NoiseSeeds.batch(77, 12, 1000, batch);
        for (var e : diffusionSamplers().entrySet()) {
            SamplingGrid grid = e.getKey().startsWith("heun") ? edm : vp;
            for (Guidance g : new Guidance[] {Guidance.NONE, Guidance.of(4.0, 0.7)}) {
                Denoiser model = g.isGuided() ? conditional(Prediction.EPSILON, new ArrayList<>())
                        : DATA.model(Prediction.EPSILON);
                float[] whole = runSeeds(e.getValue(), model, grid, all, batch, g);
                float[] head = runSeeds(e.getValue(), model, grid, all.slice(0, 2), 2, g);
                float[] tail = runSeeds(e.getValue(), model, grid, all.slice(2, 6), 4, g);
                int d = DATA.dim();
                assertArrayEquals(Arrays.copyOfRange(whole, 0, 2 * d), head, e.getKey() + " head " + g);
                assertArrayEquals(Arrays.copyOfRange(whole, 2 * d, 6 * d), tail, e.getKey() + " tail " + g);
            }
        }
        // per-sample seeds: a sample keeps its noise whatever its position
        float[] ab = runSeeds(Samplers.ddpm(Samplers.DdpmVariance.FIXED_SMALL), DATA.model(Prediction.EPSILON), vp,
                NoiseSeeds.perSample(0, 11, 22), 2, Guidance.NONE);
        float[] ba = runSeeds(Samplers.ddpm(Samplers.DdpmVariance.FIXED_SMALL), DATA.model(Prediction.EPSILON), vp,
                NoiseSeeds.perSample(0, 22, 11), 2, Guidance.NONE);
        int d = DATA.dim();
        assertArrayEquals(Arrays.copyOfRange(ab, 0, d), Arrays.copyOfRange(ba, d, 2 * d));
    }

    private static float[] runSeeds(Sampler s, Denoiser model, SamplingGrid grid, NoiseSeeds seeds, int batch,
                                    Guidance g) {
        try (TensorScope scope = TensorScope.open()) {
            Tensor cond = backend.fromArray(scope, new float[] {0.5f}, 1);
            Tensor uncond = backend.fromArray(scope, new float[] {-0.3f}, 1);
            try (SamplerContext ctx = SamplerContext.builder(backend, model, Prediction.EPSILON)
                    .condition(g.isGuided() ? cond : null).guidance(g, uncond).noise(seeds).build()) {
                Tensor x = backend.empty(scope, DType.F32, batch, DATA.dim());
                ctx.initialNoise(x, grid);
                ctx.sample(s, x, grid);
                return x.toFloatArray();
            }
        }
    }

    // ---------------------------------------------------------------- API details

    @Test
    void contextDetails() {
        assertThrows(IllegalArgumentException.class, () -> Samplers.byName("plms"));
        for (String n : List.of("ddpm", "ddpm_large", "ddim", "euler", "euler_ancestral", "heun", "dpmpp_2m",
                "dpmpp_2m_sde", "flow_euler", "flow_midpoint")) {
            Samplers.byName(n);
        }
        SamplingGrid grid = SamplingGrid.ofTimes(VpSchedule.song2021(), 1.0, 0.5, 0.01);
        try (TensorScope scope = TensorScope.open();
             SamplerContext ctx = SamplerContext.builder(backend, DATA.model(Prediction.EPSILON),
                     Prediction.EPSILON).build()) {
            Tensor x = backend.zeros(scope, DType.F32, 2, DATA.dim());
            assertThrows(IllegalStateException.class, () -> ctx.initialNoise(x, grid));         // no seeds
            assertThrows(IllegalStateException.class, () -> ctx.sample(Samplers.ddim(1), x, grid));
            assertSame(Prediction.EPSILON, ctx.prediction());
            // the levels a model sees
            List<NoiseLevels> seen = new ArrayList<>();
            try (SamplerContext c2 = SamplerContext.builder(backend, (xt, lv, c, out) -> {
                seen.add(lv);
                assertEquals(2, lv.batch());
                assertArrayEquals(new float[] {(float) lv.t(0), (float) lv.t(1)}, lv.tTensor().toFloatArray());
                assertEquals(lv.sigma(0) / lv.alpha(0), lv.sigmaVeTensor().toFloatArray()[1], 1e-6 * lv.sigmaVe(0));
                backend.fill(out, 0f);
            }, Prediction.EPSILON).build()) {
                c2.sample(Samplers.ddim(0), x, grid);
            }
            assertEquals(2, seen.size());
            assertEquals(1.0, seen.get(0).t(0));
            assertEquals(0.5, seen.get(1).t(1));
        }
    }
}
