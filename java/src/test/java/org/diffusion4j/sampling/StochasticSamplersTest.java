package org.diffusion4j.sampling;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.schedule.DiscreteVpSchedule;
import org.diffusion4j.schedule.EdmSchedule;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.SigmaGrids;
import org.diffusion4j.schedule.TimestepSpacing;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Stochastic samplers with the exact denoiser of a 2-D Gaussian mixture (two components, full covariances)
 * reproduce the mixture's mean and covariance within sampling tolerance: {@value #BATCH} samples, so one
 * standard error is about 0.008 for the means and 0.01 for the covariances; the tolerances (0.03, 0.04) allow
 * about 4 standard errors plus the discretisation bias of the step counts used.
 */
class StochasticSamplersTest {

    private static final int BATCH = 20_000;
    private static final double MEAN_TOL = 0.03;
    private static final double COV_TOL = 0.04;
    private static Backend backend;

    static final GaussianOracle.Mixture MIX = new GaussianOracle.Mixture(new double[] {0.35, 0.65},
            new double[][] {{-1.0, 0.5}, {1.2, -0.3}},
            new double[][][] {{{0.2, 0.05}, {0.05, 0.1}}, {{0.15, -0.06}, {-0.06, 0.3}}});

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void tearDown() {
        backend.close();
    }

    private static void check(String name, Sampler sampler, Prediction p, SamplingGrid grid) {
        try (TensorScope scope = TensorScope.open();
             SamplerContext ctx = SamplerContext.builder(backend, MIX.model(p), p)
                     .noise(NoiseSeeds.batch(2024, 0, 0, BATCH)).build()) {
            Tensor x = backend.empty(scope, DType.F32, BATCH, 2);
            ctx.initialNoise(x, grid);
            ctx.sample(sampler, x, grid);
            float[] v = x.toFloatArray();
            double[] m = new double[2];
            for (int i = 0; i < v.length; i++) {
                assertTrue(Float.isFinite(v[i]), name + ": non-finite sample");
                m[i % 2] += v[i] / BATCH;
            }
            double[][] c = new double[2][2];
            for (int b = 0; b < BATCH; b++) {
                for (int i = 0; i < 2; i++) {
                    for (int j = 0; j < 2; j++) {
                        c[i][j] += (v[2 * b + i] - m[i]) * (v[2 * b + j] - m[j]) / (BATCH - 1);
                    }
                }
            }
            double[] wantM = MIX.mean();
            double[][] wantC = MIX.covariance();
            double em = Math.max(Math.abs(m[0] - wantM[0]), Math.abs(m[1] - wantM[1]));
            double ec = 0;
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < 2; j++) {
                    ec = Math.max(ec, Math.abs(c[i][j] - wantC[i][j]));
                }
            }
            System.out.printf(Locale.ROOT, "%s: mean (%.4f, %.4f) want (%.4f, %.4f); cov (%.4f, %.4f, %.4f) want "
                            + "(%.4f, %.4f, %.4f); max errors mean %.4f cov %.4f%n", name, m[0], m[1], wantM[0],
                    wantM[1], c[0][0], c[0][1], c[1][1], wantC[0][0], wantC[0][1], wantC[1][1], em, ec);
            assertTrue(em < MEAN_TOL, name + ": mean error " + em);
            assertTrue(ec < COV_TOL, name + ": covariance error " + ec);
        }
    }

    private static SamplingGrid discrete(int n) {
        DiscreteVpSchedule s = DiscreteVpSchedule.linear(1000);
        return SamplingGrid.ofTimesteps(s, TimestepSpacing.TRAILING.timesteps(1000, n));
    }

    private static final EdmSchedule EDM = EdmSchedule.karras2022();

    private static SamplingGrid karrasToZero(int n) {
        return SamplingGrid.ofSigmasVe(EDM, SigmaGrids.appendZero(SigmaGrids.karras(n, 0.002, 80, 7)));
    }

    @Test
    void ddpmFixedSmall() {
        check("ddpm fixed_small (linear VP, trailing 500, eps)", Samplers.ddpm(Samplers.DdpmVariance.FIXED_SMALL),
                Prediction.EPSILON, discrete(500));
    }

    @Test
    void ddpmFixedLarge() {
        check("ddpm fixed_large (linear VP, trailing 250, eps)", Samplers.ddpm(Samplers.DdpmVariance.FIXED_LARGE),
                Prediction.EPSILON, discrete(250));
    }

    @Test
    void ddimEtaOne() {
        check("ddim eta=1 (linear VP, trailing 500, v)", Samplers.ddim(1), Prediction.V, discrete(500));
    }

    @Test
    void eulerAncestral() {
        check("euler ancestral (EDM, Karras 400, x0)", Samplers.eulerAncestral(1, 1), Prediction.SAMPLE,
                karrasToZero(400));
    }

    @Test
    void dpmSolverPp2mSde() {
        DiscreteVpSchedule s = DiscreteVpSchedule.linear(1000);
        SamplingGrid grid = SamplingGrid.ofSigmasVe(s, SigmaGrids.appendZero(SigmaGrids.karras(50, 0.02, 150, 7)));
        check("dpm++(2m) sde (linear VP, Karras 50, eps)", Samplers.dpmSolverPp2mSde(1, 1), Prediction.EPSILON,
                grid);
    }

    @Test
    void dpmSolverPp3mSde() {
        DiscreteVpSchedule s = DiscreteVpSchedule.linear(1000);
        SamplingGrid grid = SamplingGrid.ofSigmasVe(s, SigmaGrids.appendZero(SigmaGrids.karras(50, 0.02, 150, 7)));
        check("dpm++(3m) sde (linear VP, Karras 50, v)", Samplers.dpmSolverPp3mSde(1, 1), Prediction.V, grid);
    }

    @Test
    void heunWithChurn() {
        check("heun churn 40 (EDM, Karras 60, x0)", Samplers.heun(new Samplers.Churn(40, 0.05, 50, 1)),
                Prediction.SAMPLE, karrasToZero(60));
    }
}
