package org.diffusion4j;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.AdamWStep;
import org.diffusion4j.nn.ComposedNnOps;
import org.diffusion4j.nn.MlpDenoiser;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.sampling.ComposedDiffusionOps;
import org.diffusion4j.sampling.DiffusionOps;
import org.diffusion4j.sampling.FusedStep;
import org.diffusion4j.sampling.Level;
import org.diffusion4j.sampling.NoiseSeeds;
import org.diffusion4j.sampling.NoisingCoefficients;
import org.diffusion4j.sampling.SamplerContext;
import org.diffusion4j.sampling.Samplers;
import org.diffusion4j.sampling.SamplingGrid;
import org.diffusion4j.schedule.FlowShift;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.SigmaGrids;
import org.diffusion4j.schedule.VpSchedule;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Shape;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Misuse of the public API found by an adversarial trial (2026-11-30), each now refused with a message naming the
 * bad argument before anything is written: partially overlapping operands of the fused diffusion and layer ops,
 * coefficients finite as doubles but not as floats, a closed backend under an op family, a state dict that aliases
 * or is dead, sampling into the context's own buffers, an update after a shape change.
 */
class ApiMisuseTest {

    static CpuBackend cpu;

    @BeforeAll
    static void start() {
        cpu = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        cpu.close();
    }

    static void iae(Executable call, String... mustContain) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        for (String s : mustContain) {
            assertTrue(e.getMessage().contains(s), "message '" + e.getMessage() + "' lacks '" + s + "'");
        }
    }

    static Tensor rows(TensorScope scope) {
        return cpu.fromArray(scope, new float[] {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}, 3, 4);
    }

    static FusedStep copyStep() {
        double[] one = {1, 1};
        double[] zero = {0, 0};
        return new FusedStep(one, zero, zero, zero, zero, zero, zero, 1.0, 0.0, null, 0);
    }

    /** Found by an adversarial trial: accepted, then failing later or silently corrupting. */
    @Test
    void parametersOptimizerStepCountsAndSamplerNamesRefuseNonsenseUpFront() {
        try (TensorScope s = TensorScope.open()) {
            Tensor w = cpu.zeros(s, DType.F32, 2, 3);
            iae(() -> new org.diffusion4j.nn.Parameter("w", w, w), "share memory");
            iae(() -> new org.diffusion4j.nn.Parameter("w", w, w.reshape(6).reshape(2, 3)), "share memory");
            org.diffusion4j.nn.Parameter p = new org.diffusion4j.nn.Parameter("w", w, cpu.zeros(s, DType.F32, 2, 3));
            try (org.diffusion4j.optim.AdamW opt = new org.diffusion4j.optim.AdamW(NnOps.forBackend(cpu),
                    Map.of("w", p), org.diffusion4j.optim.AdamW.Hyper.defaults())) {
                iae(() -> opt.setStepCount(Long.MAX_VALUE), "step count", String.valueOf(Long.MAX_VALUE));
                opt.setStepCount(Long.MAX_VALUE - 1);
            }
        }
        NullPointerException npe = assertThrows(NullPointerException.class, () -> Samplers.byName(null));
        assertTrue(npe.getMessage().contains("sampler name"), npe.getMessage());
    }

    @Test
    void fusedDiffusionOpsRefuseOutputsThatPartiallyOverlapAnInput() {
        try (TensorScope s = TensorScope.open()) {
            for (DiffusionOps ops : List.of(DiffusionOps.forBackend(cpu), new ComposedDiffusionOps(cpu))) {
                Tensor buf = rows(s);
                float[] before = buf.toFloatArray();
                Tensor x = buf.slice(0, 0, 2);
                Tensor shifted = buf.slice(0, 1, 3);
                Tensor zeros = cpu.zeros(s, DType.F32, 2, 4);
                iae(() -> ops.samplerStep(copyStep(), x, x, zeros, null, null, shifted, null), "samplerStep", "xOut");
                iae(() -> ops.samplerStep(copyStep(), x, x, zeros, null, null, zeros, null), "xOut", "cond");
                assertArrayEquals(before, buf.toFloatArray(), "nothing written");
                iae(() -> ops.scaleAddNoise(new double[] {1, 1}, new double[] {0, 0}, NoiseSeeds.batch(1, 0, 0, 2),
                        0, x, shifted), "scaleAddNoise", "out");
                NoisingCoefficients k = new NoisingCoefficients(new double[] {1, 1}, new double[] {1, 1},
                        new double[] {1, 1}, new double[] {1, 1});
                Tensor x0 = cpu.zeros(s, DType.F32, 2, 4);
                iae(() -> ops.forwardNoise(k, NoiseSeeds.batch(1, 0, 0, 2), 0, x0, x, shifted, null),
                        "forwardNoise", "target", "xt");
                iae(() -> ops.forwardNoise(k, NoiseSeeds.batch(1, 0, 0, 2), 0, x0, x, x, null),
                        "forwardNoise", "same tensor");
                assertArrayEquals(before, buf.toFloatArray(), "nothing written");
                // exact in-place use stays allowed
                ops.samplerStep(copyStep(), x, x, zeros, null, null, x, null);
                assertArrayEquals(before, buf.toFloatArray(), "out = 1·x in place");
            }
        }
    }

    @Test
    void layerOpsRefusePartialOverlapButAcceptInterleavedPerSampleSlices() {
        try (TensorScope s = TensorScope.open()) {
            for (NnOps nn : List.of(NnOps.forBackend(cpu), new ComposedNnOps(cpu))) {
                Tensor buf = rows(s);
                float[] before = buf.toFloatArray();
                Tensor x = buf.slice(0, 0, 2);
                Tensor shifted = buf.slice(0, 1, 3);
                iae(() -> nn.layerNorm(x, null, null, null, null, 1e-5f, shifted, null, null), "layerNorm", "out");
                Tensor gate = cpu.zeros(s, DType.F32, 2, 4);
                Tensor f = cpu.zeros(s, DType.F32, 2, 4);
                iae(() -> nn.gatedResidual(x, gate, f, shifted), "gatedResidual", "out");
                iae(() -> nn.gatedResidual(x, gate, f, f), "gatedResidual", "out", "f");
                Tensor p = cpu.zeros(s, DType.F32, 4);
                Tensor g = cpu.zeros(s, DType.F32, 4);
                Tensor mv = cpu.zeros(s, DType.F32, 4);
                iae(() -> nn.adamw(AdamWStep.of(1e-3, 0.9, 0.999, 1e-8, 0, 1, 1), p, g, mv, mv), "adamw", "m", "v");
                Tensor idx = cpu.empty(s, DType.I32, 2);
                idx.copyFrom(java.lang.foreign.MemorySegment.ofArray(new int[] {0, 1}));
                iae(() -> nn.embeddingBackward(idx, x, buf.slice(0, 0, 2)), "embeddingBackward", "dTable");
                assertArrayEquals(before, buf.toFloatArray(), "nothing written");

                // dShift and dScale as the interleaved [B, D] column blocks of one [B, 2D] tensor: legal
                Tensor in = cpu.fromArray(s, new float[] {1, 2, 4, 8, 3, 1, 4, 1}, 2, 1, 4);
                Tensor mean = cpu.empty(s, DType.F32, 2);
                Tensor rstd = cpu.empty(s, DType.F32, 2);
                Tensor scale = cpu.zeros(s, DType.F32, 2, 4);
                nn.layerNorm(in, null, null, null, scale, 1e-5f, cpu.empty(s, DType.F32, 2, 1, 4), mean, rstd);
                Tensor dAda = cpu.zeros(s, DType.F32, 2, 8);
                Tensor dShift = dAda.slice(1, 0, 4);
                Tensor dScale = dAda.slice(1, 4, 8);
                Tensor dy = cpu.fromArray(s, new float[] {1, -1, 2, 0, 0.5f, 0.25f, -2, 1}, 2, 1, 4);
                nn.layerNormBackward(in, null, null, scale, mean, rstd, dy, cpu.empty(s, DType.F32, 2, 1, 4), null,
                        null, dShift, dScale);
                float[] ada = dAda.toFloatArray();
                assertArrayEquals(new float[] {1, -1, 2, 0, 0.5f, 0.25f, -2, 1}, new float[] {ada[0], ada[1], ada[2],
                        ada[3], ada[8], ada[9], ada[10], ada[11]}, "dShift = dy summed over one token");
                // the same blocks overlapping by one column are refused
                iae(() -> nn.layerNormBackward(in, null, null, scale, mean, rstd, dy,
                        cpu.empty(s, DType.F32, 2, 1, 4), null, null, dAda.slice(1, 0, 4), dAda.slice(1, 3, 7)),
                        "dShift", "dScale");
            }
        }
    }

    @Test
    void overlapIsExactForRowBlocksOfOneStride() {
        try (TensorScope s = TensorScope.open()) {
            Tensor t = cpu.zeros(s, DType.F32, 3, 12);
            assertFalse(Shape.overlaps(t.slice(1, 0, 4), t.slice(1, 4, 8)));
            assertFalse(Shape.overlaps(t.slice(1, 8, 12), t.slice(1, 0, 4)));
            assertTrue(Shape.overlaps(t.slice(1, 2, 6), t.slice(1, 5, 9)));
            assertTrue(Shape.overlaps(t.slice(1, 0, 12), t.slice(1, 11, 12)));
            assertFalse(Shape.overlaps(t.slice(0, 0, 1), t.slice(0, 1, 3)));
            assertTrue(Shape.overlaps(t, t));
            assertFalse(Shape.overlaps(t, cpu.zeros(s, DType.F32, 3, 12)));
            assertFalse(Shape.overlaps(t.slice(0, 0, 0), t), "empty tensors never overlap");
        }
    }

    @Test
    void coefficientsBeyondFloatRangeAreRefused() {
        iae(() -> AdamWStep.of(0.1, 0.9, 0.999, 1e-50, 0, 1, 1), "eps", "1.0E-50");
        iae(() -> AdamWStep.of(1e39, 0.9, 0.999, 1e-8, 0, 1, 1), "learning rate", "1.0E39");
        double[] one = {1};
        double[] zero = {0};
        iae(() -> new FusedStep(new double[] {1e39}, zero, zero, zero, zero, zero, zero, 1, 0, null, 0), "ax[0]");
        iae(() -> new FusedStep(one, zero, zero, zero, zero, zero, zero, 1e40, 0, null, 0), "guidance", "1.0E40");
        iae(() -> new NoisingCoefficients(one, one, new double[] {-1e39}, one), "c[0]");
        try (TensorScope s = TensorScope.open(); DiffusionOps ops = DiffusionOps.forBackend(cpu)) {
            Tensor x = cpu.zeros(s, DType.F32, 1, 3);
            iae(() -> ops.scaleAddNoise(new double[] {1e39}, zero, NoiseSeeds.batch(1, 0, 0, 1), 0, x, x), "1.0E39");
        }
    }

    @Test
    void fluxTimeShiftStaysFiniteForAnyFiniteMu() {
        for (double mu : new double[] {1e3, -1e3, 750, -750}) {
            double[] sigmas = SigmaGrids.fluxSigmas(4, mu);
            assertEquals(5, sigmas.length);
            for (int i = 0; i < sigmas.length; i++) {
                assertTrue(sigmas[i] >= 0 && sigmas[i] <= 1, "mu " + mu + ": sigma " + i + " = " + sigmas[i]);
                assertTrue(i == 0 || sigmas[i] <= sigmas[i - 1], "non-increasing at mu " + mu);
            }
            assertEquals(1.0, sigmas[0], "t = 1 maps to 1 at mu " + mu);
            assertEquals(0.0, sigmas[4], "t = 0 maps to 0 at mu " + mu);
        }
        // the logistic form equals the direct e^μ / (e^μ + ((1 − t)/t)^e) where that does not overflow
        for (double mu : new double[] {-3, 0, 0.5, 1.15, 7}) {
            for (double e : new double[] {0.5, 1, 2}) {
                for (double t : new double[] {1e-6, 0.1, 0.5, 0.77, 0.999}) {
                    double em = Math.exp(mu);
                    double direct = em / (em + Math.pow((1 - t) / t, e));
                    assertEquals(direct, FlowShift.timeShiftExponential(mu, e, t), 1e-13 * direct,
                            "mu " + mu + " e " + e + " t " + t);
                }
            }
        }
    }

    @Test
    void opFamiliesRefuseAClosedBackend() {
        CpuBackend own = new CpuBackend(1);
        try (TensorScope s = TensorScope.open()) {
            DiffusionOps dops = DiffusionOps.forBackend(own);
            NnOps nn = NnOps.forBackend(own);
            Tensor x = own.fromArray(s, new float[] {1, 2, 3, 4}, 2, 2);
            own.close();
            assertTrue(own.isClosed());
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> dops.scaleAddNoise(
                    new double[] {1, 1}, new double[] {0, 0}, NoiseSeeds.batch(1, 0, 0, 2), 0, x, x));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
            assertThrows(IllegalStateException.class, () -> nn.layerNorm(x, null, null, null, null, 1e-5f, x, null,
                    null));
            dops.close();
            nn.close();
        }
    }

    @Test
    void emptyShapesAreCheckedWhateverTheOrderOfTheirDims() {
        try (TensorScope s = TensorScope.open()) {
            iae(() -> cpu.empty(s, DType.F32, Long.MAX_VALUE, Long.MAX_VALUE, 0), "2^63");
            iae(() -> cpu.empty(s, DType.F32, 0, Long.MAX_VALUE, Long.MAX_VALUE), "2^63");
            assertEquals(0, cpu.empty(s, DType.F32, 0, 1 << 20, 1 << 20).numel());
        }
    }

    @Test
    void loadStateDictChecksLivenessFirstAndSkipsItsOwnTensors() {
        try (TensorScope s = TensorScope.open(); NnOps nn = NnOps.forBackend(cpu)) {
            MlpDenoiser m = new MlpDenoiser(nn, s, MlpDenoiser.Config.of(2, 8, 1), 1);
            MlpDenoiser other = new MlpDenoiser(nn, s, MlpDenoiser.Config.of(2, 8, 1), 2);
            Map<String, float[]> before = new LinkedHashMap<>();
            m.stateDict().forEach((k, v) -> before.put(k, v.toFloatArray()));

            Map<String, Tensor> src = new LinkedHashMap<>(other.stateDict());
            String last = null;
            for (String k : src.keySet()) {
                last = k;
            }
            TensorScope dead = TensorScope.open();
            Tensor gone = cpu.zeros(dead, DType.F32, src.get(last).shape());
            dead.close();
            src.put(last, gone);
            assertThrows(IllegalStateException.class, () -> m.loadStateDict(src));
            m.stateDict().forEach((k, v) -> assertArrayEquals(before.get(k), v.toFloatArray(), k + " unchanged"));

            assertTrue(m.loadStateDict(m.stateDict()).isEmpty(), "loading its own tensors is a no-op");
            m.stateDict().forEach((k, v) -> assertArrayEquals(before.get(k), v.toFloatArray(), k + " unchanged"));

            // two entries of the model's own memory swapped: the second would read an overwritten tensor
            Map<String, Tensor> own = m.stateDict();
            Map<String, Tensor> swapped = new LinkedHashMap<>(own);
            String[] names = own.keySet().toArray(String[]::new);
            String a = null;
            String b = null;
            for (int i = 0; i < names.length && b == null; i++) {
                for (int j = i + 1; j < names.length && b == null; j++) {
                    if (own.get(names[i]).sameShape(own.get(names[j]))) {
                        a = names[i];
                        b = names[j];
                    }
                }
            }
            swapped.put(a, own.get(b));
            swapped.put(b, own.get(a));
            iae(() -> m.loadStateDict(swapped), "overlaps");
        }
    }

    @Test
    void checkFiniteStopsAtTheFirstModelOutputWithNaN() {
        SamplingGrid grid = SamplingGrid.ofTimes(VpSchedule.song2021(), 0.9, 0.7, 0.5, 0.3, 0.1);
        int[] calls = {0};
        org.diffusion4j.sampling.Denoiser net = (xt, levels, cond, out) -> cpu.fill(out, ++calls[0] == 3 ? Float.NaN
                : 0.25f);
        try (TensorScope s = TensorScope.open()) {
            for (boolean check : new boolean[] {false, true}) {
                calls[0] = 0;
                Tensor x = cpu.fromArray(s, new float[] {1, 2, 3, 4}, 2, 2);
                try (SamplerContext ctx = SamplerContext.builder(cpu, net, Prediction.SAMPLE).checkFinite(check)
                        .build()) {
                    if (check) {
                        IllegalStateException e = assertThrows(IllegalStateException.class,
                                () -> ctx.sample(Samplers.euler(), x, grid));
                        assertTrue(e.getMessage().contains("model call 3") && e.getMessage().contains("NaN"),
                                e.getMessage());
                    } else {
                        ctx.sample(Samplers.euler(), x, grid);
                        assertTrue(Float.isNaN(x.toFloatArray()[0]), "unchecked, NaN spreads silently");
                    }
                }
            }
        }
    }

    @Test
    void samplerContextRefusesItsOwnBuffersAndKeepsTheEvaluationOnAShapeMismatch() {
        try (TensorScope s = TensorScope.open()) {
            SamplingGrid grid = SamplingGrid.ofTimes(VpSchedule.song2021(), 0.8, 0.4, 0.1);
            try (SamplerContext ctx = SamplerContext.builder(cpu, (xt, levels, cond, out) -> cpu.fill(out, 0.5f),
                    Prediction.SAMPLE).build()) {
                Tensor x2 = cpu.fromArray(s, new float[] {1, 1, 1, 2, 2, 2}, 2, 3);
                Tensor slot = ctx.scratch(0, x2);
                iae(() -> ctx.sample(Samplers.heun(), slot, grid), "SamplerContext");

                Level level = grid.level(0);
                ctx.evaluate(x2, level);
                Tensor x4 = cpu.zeros(s, DType.F32, 4, 3);
                iae(() -> ctx.update(SamplerContext.Update.denoised(1, 0), x4, x4, false), "[4, 3]", "[2, 3]");
                ctx.update(SamplerContext.Update.denoised(0, 1), x2, x2, false);   // the evaluation survived
                assertArrayEquals(new float[] {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f}, x2.toFloatArray());
            }
        }
    }
}
