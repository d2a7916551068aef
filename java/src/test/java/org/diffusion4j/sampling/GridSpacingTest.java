package org.diffusion4j.sampling;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.random.Philox;
import org.diffusion4j.schedule.CosineSchedule;
import org.diffusion4j.schedule.DiscreteVpSchedule;
import org.diffusion4j.schedule.EdmSchedule;
import org.diffusion4j.schedule.NoiseSchedule;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.RectifiedFlowSchedule;
import org.diffusion4j.schedule.TimestepSpacing;
import org.diffusion4j.schedule.VeSchedule;
import org.diffusion4j.schedule.VpSchedule;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link GridSpacing}: names, each spacing's levels against its formula, refusals, and sampling on every grid. */
class GridSpacingTest {

    private static Backend backend;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void tearDown() {
        backend.close();
    }

    private static final List<NoiseSchedule> SCHEDULES = List.of(RectifiedFlowSchedule.unshifted(),
            new RectifiedFlowSchedule(3.0), DiscreteVpSchedule.scaledLinear(1000), DiscreteVpSchedule.linear(1000),
            CosineSchedule.nicholDhariwal(), VpSchedule.song2021(), EdmSchedule.karras2022(),
            new VeSchedule(0.01, 50));

    @Test
    void namesRoundTrip() {
        for (String s : List.of("auto", "time", "logsnr", "karras:7", "karras:2.5", "shift:3", "shift:0.5",
                "trailing", "leading", "linspace")) {
            assertEquals(s, GridSpacing.parse(s).toString(), s);
        }
        assertEquals(GridSpacing.karras(7), GridSpacing.parse(" Karras "), "default rho, case and blanks");
        assertEquals(GridSpacing.karras(5), GridSpacing.parse("KARRAS : 5"));
        assertEquals(GridSpacing.shift(3), GridSpacing.parse("shift:3.0"));
        assertEquals(GridSpacing.AUTO, GridSpacing.parse("auto"));
        for (GridSpacing.Kind k : GridSpacing.Kind.values()) {
            if (k != GridSpacing.Kind.SHIFT) {
                assertEquals(k, GridSpacing.parse(GridSpacing.of(k).toString()).kind(), k.name());
            }
        }
    }

    @Test
    void badNamesAreRefusedNamingTheText() {
        assertMessage("unknown grid spacing 'exponentail'", () -> GridSpacing.parse("exponentail"));
        assertMessage("needs its value, e.g. shift:3", () -> GridSpacing.parse("shift"));
        assertMessage("takes no value", () -> GridSpacing.parse("trailing:3"));
        assertMessage("'abc' is not a number", () -> GridSpacing.parse("karras:abc"));
        assertMessage("'' is not a number", () -> GridSpacing.parse("karras:"));
        assertMessage("must be in [0.05, 100.0], got 0", () -> GridSpacing.parse("karras:0"));
        assertMessage("must be in [0.001, 1000.0], got -2", () -> GridSpacing.parse("shift:-2"));
        assertMessage("must be in [0.001, 1000.0], got 1e999", () -> GridSpacing.parse("shift:1e999"));
        assertMessage("'7d' is not a number", () -> GridSpacing.parse("karras:7d"));
        assertMessage("'NaN' is not a number", () -> GridSpacing.parse("shift:NaN"));
        assertMessage("takes no parameter", () -> new GridSpacing(GridSpacing.Kind.TIME, 1));
        assertMessage("needs a rho in [0.05, 100.0], got NaN", () -> new GridSpacing(GridSpacing.Kind.KARRAS, Double.NaN));
    }

    @Test
    void karrasOnEdmIsKDiffusionsGrid() {
        // k-diffusion get_sigmas_karras(n, 0.002, 80, rho=7): (σmax^(1/ρ) + i/(n−1)·(σmin^(1/ρ) − σmax^(1/ρ)))^ρ, then 0
        int n = 10;
        SamplingGrid g = GridSpacing.parse("karras").grid(EdmSchedule.karras2022(), n, false);
        assertEquals(n + 1, g.size());
        double a = Math.pow(80, 1 / 7.0);
        double b = Math.pow(0.002, 1 / 7.0);
        for (int i = 0; i < n; i++) {
            double want = Math.pow(a + i / (double) (n - 1) * (b - a), 7);
            assertEquals(want, g.level(i).sigma() / g.level(i).alpha(), 1e-12 * want, "level " + i);
        }
        assertEquals(Level.clean(), g.last());
    }

    @Test
    void karrasOnStableDiffusionsScheduleSpansItsTabulatedSigmas() {
        // diffusers' EulerDiscreteScheduler(use_karras_sigmas=True) on SD 1.x (scaled_linear 0.00085..0.012, T = 1000)
        // spans sigma_max = 14.6146 (timestep 999) to sigma_min = 0.0291675 (timestep 0), then 0
        DiscreteVpSchedule sd = DiscreteVpSchedule.scaledLinear(1000);
        SamplingGrid g = GridSpacing.karras(7).grid(sd, 25, false);
        assertEquals(26, g.size());
        assertEquals(14.6146, g.first().sigma() / g.first().alpha(), 1e-4);
        assertEquals(0.0291675, g.level(24).sigma() / g.level(24).alpha(), 1e-6);
        assertEquals(sd.tOf(999), g.first().t(), 0);
        assertEquals(sd.tOf(0), g.level(24).t(), 0);
        double a = Math.pow(g.first().sigma() / g.first().alpha(), 1 / 7.0);
        double b = Math.pow(g.level(24).sigma() / g.level(24).alpha(), 1 / 7.0);
        for (int i = 1; i < 24; i++) {
            double want = Math.pow(a + i / 24.0 * (b - a), 7);
            assertEquals(want, g.level(i).sigma() / g.level(i).alpha(), 1e-9 * want, "level " + i);
        }
    }

    @Test
    void logSnrStepsAreEqual() {
        for (NoiseSchedule s : SCHEDULES) {
            SamplingGrid g = GridSpacing.parse("logsnr").grid(s, 8, false);
            assertEquals(9, g.size(), s.toString());
            double h = g.level(1).halfLogSnr() - g.level(0).halfLogSnr();
            for (int i = 1; i < 8; i++) {
                assertEquals(h, g.level(i).halfLogSnr() - g.level(i - 1).halfLogSnr(), 1e-9 * Math.abs(h), s + " level " + i);
            }
            assertEquals(Level.clean(), g.last(), s.toString());
        }
    }

    @Test
    void timeIsUniformAndStartsWhereTheSamplerCan() {
        NoiseSchedule rf = RectifiedFlowSchedule.unshifted();
        SamplingGrid flow = GridSpacing.parse("time").grid(rf, 4, true);
        for (int i = 0; i <= 4; i++) {
            assertEquals(1 - i / 4.0, flow.level(i).t(), 1e-15, "level " + i);
        }
        assertEquals(0.999, GridSpacing.parse("time").grid(rf, 4, false).first().t(), 0, "alpha(1) = 0");
        SamplingGrid vp = GridSpacing.parse("time").grid(VpSchedule.song2021(), 5, false);
        for (int i = 0; i < 5; i++) {
            assertEquals(1 - i / 5.0, vp.level(i).t(), 1e-15, "level " + i);
        }
        assertEquals(Level.clean(), GridSpacing.parse("time").grid(EdmSchedule.karras2022(), 3, false).last(),
                "ends at clean data even where sigma(0) > 0");
    }

    @Test
    void shiftMovesFlowLevelsTowardsNoise() {
        NoiseSchedule rf = RectifiedFlowSchedule.unshifted();
        SamplingGrid g = GridSpacing.shift(3).grid(rf, 4, true);
        for (int i = 0; i <= 4; i++) {
            double u = 1 - i / 4.0;
            assertEquals(3 * u / (1 + 2 * u), g.level(i).sigma(), 1e-15, "level " + i);
            assertEquals(1.0, g.level(i).alpha() + g.level(i).sigma(), 1e-12);
        }
        SamplingGrid one = GridSpacing.shift(1).grid(rf, 6, true);
        SamplingGrid time = GridSpacing.parse("time").grid(rf, 6, true);
        for (int i = 0; i <= 6; i++) {
            assertEquals(time.level(i).sigma(), one.level(i).sigma(), 1e-15, "shift 1 = uniform, level " + i);
        }
        // a schedule trained with shift 3 and a shift:3 grid: the flow levels are those of shift(u, 3)
        SamplingGrid shifted = GridSpacing.shift(3).grid(new RectifiedFlowSchedule(3.0), 4, true);
        for (int i = 0; i <= 4; i++) {
            assertEquals(g.level(i).sigma(), shifted.level(i).sigma(), 1e-12, "level " + i);
        }
    }

    @Test
    void timestepSpacingsAreDiffusers() {
        DiscreteVpSchedule d = DiscreteVpSchedule.scaledLinear(1000);
        for (TimestepSpacing ts : TimestepSpacing.values()) {
            SamplingGrid g = GridSpacing.parse(ts.diffusersName()).grid(d, 10, false);
            SamplingGrid want = SamplingGrid.ofTimesteps(d, ts.timesteps(1000, 10));
            assertEquals(want.size(), g.size());
            for (int i = 0; i < g.size(); i++) {
                assertEquals(want.level(i), g.level(i), ts + " level " + i);
            }
        }
        SamplingGrid trailing = GridSpacing.parse("trailing").grid(d, 7, false);
        SamplingGrid auto = GridSpacing.AUTO.grid(d, 7, false);
        for (int i = 0; i < auto.size(); i++) {
            assertEquals(auto.level(i), trailing.level(i), "auto = trailing on a discrete schedule, level " + i);
        }
        assertEquals(11, GridSpacing.parse("trailing").grid(DiscreteVpSchedule.linear(10), 50, false).size(),
                "at most the training timesteps");
    }

    @Test
    void gridsStartNoHigherThanTheTrainedTimes() {
        for (NoiseSchedule s : SCHEDULES) {
            boolean flow = s instanceof RectifiedFlowSchedule;
            boolean discrete = s instanceof DiscreteVpSchedule;
            for (String name : List.of("auto", "time", "logsnr", "karras", "shift:3", "trailing", "leading",
                    "linspace")) {
                GridSpacing sp = GridSpacing.parse(name);
                if ((sp.kind() == GridSpacing.Kind.SHIFT && !flow) || (!discrete && (sp.kind()
                        == GridSpacing.Kind.TRAILING || sp.kind() == GridSpacing.Kind.LEADING
                        || sp.kind() == GridSpacing.Kind.LINSPACE))) {
                    continue;
                }
                SamplingGrid capped = sp.grid(s, 20, false, 0.99);
                String what = name + " on " + s;
                assertTrue(capped.first().t() <= 0.99 + 1e-12, what + " starts at " + capped.first().t());
                if (sp.kind() != GridSpacing.Kind.LEADING) {                       // leading never reaches the top
                    assertEquals(0.99, capped.first().t(), 1e-9, what);
                }
                SamplingGrid whole = sp.grid(s, 20, false, 1.0);
                SamplingGrid plain = sp.grid(s, 20, false);
                assertEquals(plain.size(), whole.size(), what);
                for (int i = 0; i < plain.size(); i++) {
                    assertEquals(plain.level(i), whole.level(i), what + ": tMax 1 is the plain grid, level " + i);
                }
            }
        }
        // a discrete schedule trained on t <= 0.99 (timesteps 0 .. 989): trailing starts at timestep 989
        DiscreteVpSchedule d = DiscreteVpSchedule.linear(1000);
        assertEquals(d.tOf(989), GridSpacing.AUTO.grid(d, 10, false, 0.99).first().t(), 0);
        assertMessage("tMax must be in (0, 1]", () -> GridSpacing.AUTO.grid(d, 10, false, 0));
        assertMessage("below the first timestep", () -> GridSpacing.AUTO.grid(d, 10, false, 1e-4));
    }

    @Test
    void refusalsNameTheMismatch() {
        NoiseSchedule vp = VpSchedule.song2021();
        NoiseSchedule rf = RectifiedFlowSchedule.unshifted();
        assertMessage("needs a rectified-flow schedule", () -> GridSpacing.shift(3).grid(vp, 8, false));
        assertMessage("needs a discrete VP schedule", () -> GridSpacing.parse("trailing").grid(rf, 8, false));
        assertMessage("a flow sampler needs", () -> GridSpacing.parse("karras").grid(vp, 8, true));
        assertMessage("steps must be in [1, 100000], got 0", () -> GridSpacing.parse("time").grid(vp, 0, false));
        assertMessage("needs a rho in [0.05, 100.0], got 0.001", () -> GridSpacing.karras(0.001));
        assertThrows(NullPointerException.class, () -> GridSpacing.AUTO.grid(null, 8, false));
    }

    @Test
    void everySpacingGivesAValidGridOnEverySchedule() {
        for (NoiseSchedule s : SCHEDULES) {
            boolean flow = s instanceof RectifiedFlowSchedule;
            boolean discrete = s instanceof DiscreteVpSchedule;
            for (String name : List.of("auto", "time", "logsnr", "karras", "karras:3", "shift:3", "shift:0.1", "trailing",
                    "leading", "linspace")) {
                GridSpacing sp = GridSpacing.parse(name);
                boolean applies = switch (sp.kind()) {
                    case SHIFT -> flow;
                    case TRAILING, LEADING, LINSPACE -> discrete;
                    default -> true;
                };
                for (boolean flowSampler : flow ? new boolean[] {false, true} : new boolean[] {false}) {
                    for (int steps : new int[] {1, 2, 3, 50, 1000}) {
                        String what = name + " on " + s + ", " + steps + " steps, flow sampler " + flowSampler;
                        if (!applies) {
                            assertThrows(IllegalArgumentException.class, () -> sp.grid(s, steps, flowSampler), what);
                            continue;
                        }
                        SamplingGrid g = sp.grid(s, steps, flowSampler);
                        assertEquals(discrete && sp.kind() != GridSpacing.Kind.TIME && sp.kind()
                                != GridSpacing.Kind.LOGSNR && sp.kind() != GridSpacing.Kind.KARRAS
                                ? Math.min(steps, 1000) + 1 : steps + 1, g.size(), what);
                        assertTrue(Double.isFinite(g.first().sigma() / g.first().alpha()) || flowSampler, what);
                        if (flowSampler) {
                            for (Level l : g.levels()) {
                                assertEquals(1.0, l.alpha() + l.sigma(), 1e-9, what + ": a flow grid");
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * DPM-Solver++(2M) with the optimal denoiser of Gaussian data, 96 steps on each spacing, follows the exact
     * probability-flow ODE from the first level to clean data ({@link GaussianOracle.Diagonal#flow}): RMS error
     * over 4096 elements below 0.02 (measured 2e-5 to 1e-2; a level at the wrong time or scale is off by far more).
     */
    @Test
    void samplingOnEachSpacingFollowsTheExactFlow() {
        GaussianOracle.Diagonal data = new GaussianOracle.Diagonal(new double[] {-1.0, 0.5}, new double[] {0.4, 1.2});
        record Case(NoiseSchedule schedule, String spacing, Prediction prediction) {
        }
        List<Case> cases = List.of(
                new Case(DiscreteVpSchedule.scaledLinear(1000), "karras", Prediction.EPSILON),
                new Case(DiscreteVpSchedule.scaledLinear(1000), "leading", Prediction.V),
                new Case(DiscreteVpSchedule.scaledLinear(1000), "time", Prediction.EPSILON),
                new Case(CosineSchedule.nicholDhariwal(), "logsnr", Prediction.V),
                new Case(CosineSchedule.nicholDhariwal(), "karras:5", Prediction.V),
                new Case(VpSchedule.song2021(), "time", Prediction.EPSILON),
                new Case(EdmSchedule.karras2022(), "karras", Prediction.SAMPLE),
                new Case(RectifiedFlowSchedule.unshifted(), "shift:3", Prediction.VELOCITY),
                new Case(RectifiedFlowSchedule.unshifted(), "karras", Prediction.VELOCITY));
        for (Case c : cases) {
            SamplingGrid g = GridSpacing.parse(c.spacing()).grid(c.schedule(), 96, false);
            Level first = g.first();
            float[] x = new float[4096];
            for (int i = 0; i < x.length; i++) {
                int j = i % 2;
                double sd = Math.hypot(first.alpha() * data.s()[j], first.sigma());
                x[i] = (float) (first.alpha() * data.mu()[j] + sd * Philox.normal(11, 0, i));
            }
            float[] out;
            try (TensorScope scope = TensorScope.open();
                 SamplerContext ctx = SamplerContext.builder(backend, data.model(c.prediction()), c.prediction())
                         .build()) {
                Tensor t = backend.fromArray(scope, x, 1, x.length);
                ctx.sample(Samplers.dpmSolverPp2m(), t, g);
                out = t.toFloatArray();
            }
            double sq = 0;
            for (int i = 0; i < x.length; i++) {
                double exact = data.flow(i % 2, x[i], first, g.last());
                sq += (out[i] - exact) * (out[i] - exact);
            }
            double rms = Math.sqrt(sq / x.length);
            assertTrue(rms < 0.02, c + ": RMS error " + rms + " against the exact flow");
        }
    }

    private static void assertMessage(String part, org.junit.jupiter.api.function.Executable e) {
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, e);
        assertTrue(ex.getMessage().contains(part), "message '" + ex.getMessage() + "' should contain '" + part + "'");
    }
}
