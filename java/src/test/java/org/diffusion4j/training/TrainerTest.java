package org.diffusion4j.training;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.io.Dataset;
import org.diffusion4j.nn.DenoiserModel;
import org.diffusion4j.nn.DiT;
import org.diffusion4j.nn.MlpDenoiser;
import org.diffusion4j.nn.Models;
import org.diffusion4j.nn.Module;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.Parameter;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.optim.AdamW;
import org.diffusion4j.optim.Ema;
import org.diffusion4j.optim.GradClip;
import org.diffusion4j.random.Philox;
import org.diffusion4j.sampling.NoiseLevels;
import org.diffusion4j.schedule.NoiseSchedule;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.diffusion4j.training.TrainingTestSupport.assertBitwise;
import static org.diffusion4j.training.TrainingTestSupport.assertSameTrajectory;
import static org.diffusion4j.training.TrainingTestSupport.busy;
import static org.diffusion4j.training.TrainingTestSupport.copies;
import static org.diffusion4j.training.TrainingTestSupport.weights;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The trainer: bit-exact resume (MLP and DiT), determinism for a seed, learning on a 2-D Gaussian, a step compared
 * with one written out by hand (noise, times, loss, its gradient, clipping, AdamW, EMA, learning rate), weight-decay
 * groups, label dropout, per-step scopes and input checks.
 */
class TrainerTest {

    static CpuBackend be;
    static NnOps ops;
    static AttentionOps attention;

    @BeforeAll
    static void start() {
        be = new CpuBackend(2);
        ops = NnOps.forBackend(be);
        attention = AttentionOps.forBackend(be);
    }

    @AfterAll
    static void stop() {
        attention.close();
        ops.close();
        be.close();
    }

    interface Factory {
        DenoiserModel create(TensorScope scope, long initSeed);
    }

    static Factory mlpFactory() {
        return (scope, seed) -> new MlpDenoiser(ops, scope, TrainingTestSupport.mlp(), seed);
    }

    static Factory ditFactory() {
        return (scope, seed) -> new DiT(ops, attention, scope, TrainingTestSupport.tinyDit(), seed);
    }

    static List<StepStats> collect(Trainer t, long steps) {
        List<StepStats> out = new ArrayList<>();
        TrainingListener l = out::add;
        t.addListener(l);
        try {
            t.train(steps);
        } finally {
            t.removeListener(l);
        }
        return out;
    }

    // ---------------------------------------------------------------- resume

    @Test
    void resumedMlpRunContinuesBitExactly(@TempDir Path dir) throws IOException {
        // 37 points, batch 8: epochs end mid-batch, so the resumed batch order crosses an epoch boundary
        resume(dir, mlpFactory(), TrainingTestSupport.gaussian2d(37, 3), busy(11, 8, 14), 14, 6);
    }

    @Test
    void resumedDitRunContinuesBitExactly(@TempDir Path dir) throws IOException {
        TrainingConfig cfg = busy(12, 5, 7).withObjective(TrainingConfig.Objective.V, "cosine")
                .withTimeSampling("logit-normal:0:1", "min-snr:5").withLabelDropout(0.3).withRandomFlip(true);
        resume(dir, ditFactory(), TrainingTestSupport.images(13, 1, 4, 3, 4), cfg, 7, 3);
    }

    /** A class-conditional MLP on labelled points (label dropout to the null class) resumes bit-exactly. */
    @Test
    void resumedConditionalMlpRunContinuesBitExactly(@TempDir Path dir) throws IOException {
        Dataset plain = TrainingTestSupport.gaussian2d(29, 3);
        int[] labels = new int[plain.size()];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = i % 3;
        }
        Dataset labelled = Dataset.of(plain.toArray(), plain.sampleShape(), labels, List.of("a", "b", "c"));
        Factory conditional = (scope, seed) -> new MlpDenoiser(ops, scope, TrainingTestSupport.mlp().withClasses(3),
                seed);
        resume(dir, conditional, labelled, busy(11, 8, 9).withLabelDropout(0.3), 9, 4);
    }

    @Test
    void randomFlipsChangeTheRunAndNeedImages() {
        Dataset images = TrainingTestSupport.images(13, 1, 4, 3, 4);
        TrainingConfig cfg = busy(12, 5, 7);
        try (TensorScope s1 = TensorScope.open(); TensorScope s2 = TensorScope.open()) {
            List<StepStats> plain;
            List<StepStats> flipped;
            try (Trainer t = new Trainer(ditFactory().create(s1, 5), ops, images, cfg)) {
                plain = collect(t, 3);
            }
            try (Trainer t = new Trainer(ditFactory().create(s2, 5), ops, images, cfg.withRandomFlip(true))) {
                flipped = collect(t, 3);
            }
            assertFalse(plain.get(0).loss() == flipped.get(0).loss(), "flips left the first batch unchanged");

            // exactly the documented draw: the first step with flips equals the first step without them on data in
            // which the samples of batch 0 whose Philox(seed, NOISE_STREAM + 4, id) <= 1/2 are mirrored beforehand
            int[] idx = new BatchSource(images, cfg.batchSize(), cfg.seed()).batch(0).indices();
            float[] values = images.toArray();
            int per = images.sampleSize();
            int w = (int) images.sampleShape()[2];
            int mirrored = 0;
            for (int b = 0; b < idx.length; b++) {
                if (org.diffusion4j.random.Philox.uniform(cfg.seed(), Trainer.NOISE_STREAM + Trainer.DRAW_FLIP, b)
                        <= 0.5f) {
                    mirrored++;
                    float[] row = new float[w];
                    for (int r0 = idx[b] * per; r0 < (idx[b] + 1) * per; r0 += w) {
                        for (int c = 0; c < w; c++) {
                            row[c] = values[r0 + w - 1 - c];
                        }
                        System.arraycopy(row, 0, values, r0, w);
                    }
                }
            }
            assertTrue(mirrored > 0 && mirrored < idx.length, "the test needs some but not all samples mirrored");
            Dataset premirrored = Dataset.of(values, images.sampleShape(), images.labels(), images.classNames());
            try (TensorScope s3 = TensorScope.open();
                 Trainer t = new Trainer(ditFactory().create(s3, 5), ops, premirrored, cfg)) {
                assertEquals(flipped.get(0).loss(), collect(t, 1).get(0).loss(), 0.0,
                        "step 0 with flips = step 0 on the pre-mirrored batch");
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Trainer(
                    mlpFactory().create(s1, 5), ops, TrainingTestSupport.gaussian2d(9, 6), cfg.withRandomFlip(true)));
            assertTrue(e.getMessage().contains("horizontal flips need image samples"), e.getMessage());
        }
    }

    private static void resume(Path dir, Factory factory, Dataset data, TrainingConfig cfg, int total, int at)
            throws IOException {
        Path ck = dir.resolve("at" + at + ".safetensors");
        try (TensorScope s1 = TensorScope.open(); TensorScope s2 = TensorScope.open();
             TensorScope s3 = TensorScope.open()) {
            DenoiserModel a = factory.create(s1, 5);
            List<StepStats> full;
            Map<String, float[]> w;
            Map<String, float[]> ema;
            Map<String, float[]> m;
            Map<String, float[]> v;
            try (Trainer t = new Trainer(a, ops, data, cfg)) {
                full = collect(t, total);
                w = weights(a);
                ema = copies(t.ema().averages());
                m = copies(t.optimizer().firstMoments());
                v = copies(t.optimizer().secondMoments());
            }
            try (Trainer t = new Trainer(factory.create(s2, 5), ops, data, cfg)) {
                List<StepStats> first = collect(t, at);
                assertSameTrajectory(full.subList(0, at), first);
                t.save(ck);
            }
            DenoiserModel c = factory.create(s3, 777);      // other initial weights: the checkpoint must replace them
            try (Trainer t = new Trainer(c, ops, data, cfg)) {
                t.restore(ck);
                assertEquals(at, t.completedSteps());
                assertEquals(at, t.optimizer().stepCount());
                assertEquals(at, t.ema().updates());
                List<StepStats> rest = collect(t, total - at);
                assertEquals(at, rest.get(0).step());
                assertSameTrajectory(full.subList(at, total), rest);
                assertBitwise("weights", w, weights(c));
                assertBitwise("EMA", ema, copies(t.ema().averages()));
                assertBitwise("AdamW m", m, copies(t.optimizer().firstMoments()));
                assertBitwise("AdamW v", v, copies(t.optimizer().secondMoments()));
            }
        }
    }

    // ---------------------------------------------------------------- determinism

    @Test
    void sameSeedGivesTheSameBitsAndAnotherSeedDoesNot() {
        Dataset data = TrainingTestSupport.gaussian2d(50, 1);
        List<List<StepStats>> runs = new ArrayList<>();
        List<Map<String, float[]>> finals = new ArrayList<>();
        for (long seed : new long[] {21, 21, 22}) {
            try (TensorScope s = TensorScope.open();
                 Trainer t = new Trainer(mlpFactory().create(s, 5), ops, data, busy(seed, 16, 8))) {
                runs.add(collect(t, 8));
                finals.add(weights(t.model()));
            }
        }
        assertSameTrajectory(runs.get(0), runs.get(1));
        assertBitwise("final weights", finals.get(0), finals.get(1));
        for (int k = 0; k < 8; k++) {
            assertNotEquals(runs.get(0).get(k).loss(), runs.get(2).get(k).loss(), "step " + k
                    + " has the same loss for seeds 21 and 22");
        }
    }

    /**
     * Gradient accumulation: a batch of 6 in micro-batches of 2 or 3 trains like the whole batch at once, up to float
     * rounding (the same batch, noise, times and dropped labels; the gradients summed in another order): losses and
     * gradient norms agree to 1e-5 relative (a missing 1/passes scale would show as a 2-3x norm, Adam being blind to
     * it) and the weights after 4 steps to 1e-4 of their size. A micro-batch that does not divide the batch is refused.
     */
    @Test
    void microBatchesTrainLikeTheWholeBatch() {
        Dataset images = TrainingTestSupport.images(13, 1, 4, 3, 4);
        TrainingConfig cfg = busy(12, 6, 5).withObjective(TrainingConfig.Objective.V, "cosine")
                .withTimeSampling("uniform", "min-snr:5").withLabelDropout(0.3);
        List<List<StepStats>> runs = new ArrayList<>();
        List<Map<String, float[]>> finals = new ArrayList<>();
        for (int micro : new int[] {0, 2, 3}) {
            try (TensorScope s = TensorScope.open();
                 Trainer t = new Trainer(ditFactory().create(s, 5), ops, images, cfg.withMicroBatch(micro))) {
                assertEquals(micro == 0 ? 1 : 6 / micro, t.config().microBatches());
                runs.add(collect(t, 4));
                finals.add(weights(t.model()));
            }
        }
        for (int r = 1; r < 3; r++) {
            for (int k = 0; k < 4; k++) {
                StepStats a = runs.get(0).get(k);
                StepStats b = runs.get(r).get(k);
                assertEquals(a.loss(), b.loss(), 1e-5 * a.loss(), "run " + r + ", step " + k + ": loss");
                assertEquals(a.weightedLoss(), b.weightedLoss(), 1e-5 * a.weightedLoss(), "weighted loss");
                assertEquals(a.gradNorm(), b.gradNorm(), 1e-5 * a.gradNorm(), "run " + r + ", step " + k + ": norm");
            }
            double worst = 0;
            for (var e : finals.get(0).entrySet()) {
                float[] w0 = e.getValue();
                float[] w1 = finals.get(r).get(e.getKey());
                double scale = 0;
                for (float v : w0) {
                    scale = Math.max(scale, Math.abs(v));
                }
                for (int i = 0; i < w0.length; i++) {
                    worst = Math.max(worst, Math.abs(w0[i] - w1[i]) / Math.max(scale, 1e-3));
                }
            }
            System.out.printf(java.util.Locale.ROOT, "micro-batch run %d: worst weight difference %.2e of scale%n", r,
                    worst);
            assertTrue(worst < 1e-4, "weights differ by " + worst);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> cfg.withMicroBatch(4));
        assertTrue(e.getMessage().contains("microBatch must divide batchSize 6"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> cfg.withMicroBatch(-1));
        assertThrows(IllegalArgumentException.class, () -> cfg.withMicroBatch(12));
    }

    @Test
    void theRunIsTheSameForOneAndTwoThreads() {
        Dataset data = TrainingTestSupport.images(13, 1, 4, 3, 4);
        TrainingConfig cfg = busy(17, 5, 6);
        List<List<StepStats>> runs = new ArrayList<>();
        List<Map<String, float[]>> finals = new ArrayList<>();
        for (int threads : new int[] {1, 2}) {
            try (CpuBackend b = new CpuBackend(threads); NnOps o = NnOps.forBackend(b);
                 AttentionOps a = AttentionOps.forBackend(b); TensorScope s = TensorScope.open();
                 Trainer t = new Trainer(new DiT(o, a, s, TrainingTestSupport.tinyDit(), 5), o, data, cfg)) {
                runs.add(collect(t, 6));
                finals.add(weights(t.model()));
            }
        }
        assertSameTrajectory(runs.get(0), runs.get(1));
        assertBitwise("weights, 1 vs 2 threads", finals.get(0), finals.get(1));
    }

    // ---------------------------------------------------------------- learning

    @Test
    void learnsAGaussianInTwoDimensionsToTheOptimalLoss() {
        // Flow matching on x0 ~ N((2, -1), diag(s1², s2²)), s = (0.5, 0.3), uniform t. Per dimension u = ε − x0 and
        // x_t = (1 − t) x0 + t ε are jointly Gaussian, so the best possible loss at t is
        //   Var(u | x_t) = Var(u) − Cov(u, x_t)²/Var(x_t) = s²/((1 − t)² s² + t²),
        // and completing the square in t, ∫₀¹ s²/((1 + s²)(t − c)² + s²/(1 + s²)) dt = s·(arctan(1/s) + arctan(s))
        // = s·π/2 (c = s²/(1 + s²); also checked by quadrature for both s). The optimum of the mean over the two
        // dims is (0.5 + 0.3)·π/4 = 0.2π ≈ 0.628 (for the population; the 512 points differ by a few percent). A
        // model that outputs 0 scores E(ε − x0)² = mean(1 + s² + μ²) = 3.67. The last 20 steps (1280 samples,
        // sampling error about 3%) must come within 25% of the optimum, and cannot be clearly below it.
        Dataset data = TrainingTestSupport.gaussian2d(512, 2);
        TrainingConfig cfg = TrainingConfig.defaults(5, 64, 300).withLearningRate(3e-3, 20, 1e-4);
        double optimum = 0.2 * Math.PI;
        try (TensorScope s = TensorScope.open();
             Trainer t = new Trainer(mlpFactory().create(s, 5), ops, data, cfg)) {
            List<StepStats> st = collect(t, 300);
            double first = 0;
            double last = 0;
            for (int k = 0; k < 5; k++) {
                first += st.get(k).loss() / 5;
            }
            for (int k = 280; k < 300; k++) {
                last += st.get(k).loss() / 20;
            }
            assertTrue(first > 2.5 && first < 5.0, "initial loss " + first + " should be near 3.67");
            assertTrue(last < 1.25 * optimum && last > 0.85 * optimum, "final loss " + last
                    + " is not near the optimum " + optimum + " (initial " + first + ")");
            for (StepStats x : st) {
                assertTrue(x.samplesPerSecond() > 0 && x.seconds() > 0, x.toString());
            }
        }
    }

    // ---------------------------------------------------------------- held-out loss

    /**
     * {@link Trainer#heldOutLoss}: the value written out by hand (the samples in order, times and noise from
     * {@link Trainer#HELD_OUT_STREAM} keyed by the sample index, plain MSE of the v target) across batches of the
     * trainer's size, the same on every call, and training after it bit for bit as without it.
     */
    @Test
    void heldOutLossMatchesOneWrittenOutByHandAndChangesNothing() {
        long seed = 23;
        int batch = 4;
        Dataset train = TrainingTestSupport.gaussian2d(40, 2);
        Dataset held = TrainingTestSupport.gaussian2d(11, 9);
        TrainingConfig cfg = busy(seed, batch, 10).withObjective(TrainingConfig.Objective.V, "cosine");
        try (TensorScope sa = TensorScope.open(); TensorScope sb = TensorScope.open();
             Trainer ta = new Trainer(new MlpDenoiser(ops, sa, TrainingTestSupport.mlp(), 8), ops, train, cfg);
             Trainer tb = new Trainer(new MlpDenoiser(ops, sb, TrainingTestSupport.mlp(), 8), ops, train, cfg)) {
            List<StepStats> first = collect(ta, 3);
            assertSameTrajectory(first, collect(tb, 3));
            double h = ta.heldOutLoss(held, 7);                          // batches of 4 and 3
            assertEquals(h, ta.heldOutLoss(held, 7), 0.0, "the same inputs on every call");

            int m = 7;
            int n = 2;
            NoiseSchedule sched = cfg.buildNoiseSchedule();
            double[] t = new double[m];
            float[] xt = new float[m * n];
            double[] target = new double[m * n];
            for (int i = 0; i < m; i++) {
                t[i] = Philox.uniform(seed, Trainer.HELD_OUT_STREAM + 1, i);
                double al = sched.alpha(t[i]);
                double si = sched.sigma(t[i]);
                float[] x0 = held.sample(i);
                for (int j = 0; j < n; j++) {
                    double eps = Philox.normal(seed, Trainer.HELD_OUT_STREAM, (long) i * n + j);
                    xt[i * n + j] = (float) (al * x0[j] + si * eps);
                    target[i * n + j] = al * eps - si * x0[j];
                }
            }
            double byHand;
            try (TensorScope tmp = TensorScope.open()) {
                MlpDenoiser model = (MlpDenoiser) ta.model();
                double[] out = toDoubles(model.forward(tmp, be.fromArray(tmp, xt, m, n), t).out().toFloatArray());
                double[] plain = new double[m];
                Arrays.fill(plain, 1);
                byHand = loss(out, target, plain, m, n);
            }
            assertEquals(byHand, h, 1e-5 * byHand, "held-out loss");
            assertTrue(ta.heldOutLoss(held, 100) != h, "all 11 samples give another mean than the first 7");

            assertSameTrajectory(collect(tb, 4), collect(ta, 4));        // training goes on as without the calls
            assertBitwise("weights", weights(tb.model()), weights(ta.model()));

            Dataset labelled = TrainingTestSupport.images(5, 1, 4, 3, 4);
            assertThrows(IllegalArgumentException.class, () -> ta.heldOutLoss(labelled, 5));      // another shape
            assertThrows(IllegalArgumentException.class, () -> ta.heldOutLoss(held, 0));
        }
    }

    /**
     * Found by an adversarial trial: a step that failed during its update (there, the backend closed between two
     * AdamW calls) left some weights of step k + 1 beside others of step k, and training and saving went on from
     * them. Now the trainer refuses to train, measure, save or export until a restore makes it whole; after the
     * restore, training goes on bit for bit as a run that never failed.
     */
    @Test
    void aStepThatFailsMidUpdateLeavesTheTrainerRefusingUntilARestore(@TempDir Path dir) throws IOException {
        long seed = 29;
        Dataset train = TrainingTestSupport.gaussian2d(40, 3);
        TrainingConfig cfg = busy(seed, 4, 20);
        int[] adamwCalls = {0};
        int[] failAt = {-1};                              // set below: in step 1 (the second), after 2 of its tensors
        NnOps failing = (NnOps) java.lang.reflect.Proxy.newProxyInstance(NnOps.class.getClassLoader(),
                new Class<?>[] {NnOps.class}, (proxy, method, args) -> {
                    if (method.getName().equals("adamw") && adamwCalls[0]++ == failAt[0]) {
                        throw new IllegalStateException("injected failure");
                    }
                    try {
                        return method.invoke(ops, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        Path file = dir.resolve("step1.safetensors");
        try (TensorScope sa = TensorScope.open(); TensorScope sb = TensorScope.open();
             Trainer ta = new Trainer(new MlpDenoiser(ops, sa, TrainingTestSupport.mlp(), 8), failing, train, cfg);
             Trainer tb = new Trainer(new MlpDenoiser(ops, sb, TrainingTestSupport.mlp(), 8), ops, train, cfg)) {
            int tensors = ta.optimizer().firstMoments().size();
            assertTrue(tensors > 3, "a model of several tensors: " + tensors);
            failAt[0] = tensors + 2;
            ta.step();
            ta.save(file);
            IllegalStateException e = assertThrows(IllegalStateException.class, ta::step);
            assertEquals("injected failure", e.getMessage());
            assertEquals(1, ta.completedSteps());
            for (org.junit.jupiter.api.function.Executable refused : List.<org.junit.jupiter.api.function.Executable>of(
                    ta::step, () -> ta.train(1), () -> ta.heldOutLoss(train, 4), () -> ta.save(dir.resolve("x")),
                    () -> Checkpoint.exportWeights(dir.resolve("y"), ta))) {
                IllegalStateException r = assertThrows(IllegalStateException.class, refused);
                assertTrue(r.getMessage().contains("step 1 failed while updating the weights")
                        && r.getMessage().contains("injected failure") && r.getMessage().contains("restore"),
                        r.getMessage());
            }
            ta.restore(file);                             // steps 1..3 again, as the run that never failed
            assertSameTrajectory(collect(tb, 4).subList(1, 4), collect(ta, 3));
            assertBitwise("weights", weights(tb.model()), weights(ta.model()));
        }
    }

    /**
     * Found by an adversarial trial: a second thread's step met the first one's workspace and said "workspace is in
     * use by a scope that is still open". It now says that the trainer is in use, and the first thread trains on.
     */
    @Test
    void aSecondThreadsStepIsToldTheTrainerIsInUse() throws Exception {
        Dataset train = TrainingTestSupport.gaussian2d(40, 4);
        java.util.concurrent.CountDownLatch inside = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        NnOps blocking = (NnOps) java.lang.reflect.Proxy.newProxyInstance(NnOps.class.getClassLoader(),
                new Class<?>[] {NnOps.class}, (proxy, method, args) -> {
                    if (method.getName().equals("adamw") && inside.getCount() > 0) {
                        inside.countDown();                       // the first step is in its update: hold it there
                        release.await();
                    }
                    try {
                        return method.invoke(ops, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        try (TensorScope s = TensorScope.open();
             Trainer t = new Trainer(new MlpDenoiser(ops, s, TrainingTestSupport.mlp(), 8), blocking, train,
                     busy(3, 4, 10))) {
            Thread first = new Thread(t::step);
            first.start();
            inside.await();
            IllegalStateException e = assertThrows(IllegalStateException.class, t::step);
            assertTrue(e.getMessage().startsWith("Trainer is in use: another thread is running a training step"),
                    e.getMessage());
            release.countDown();
            first.join(30_000);
            assertEquals(1, t.completedSteps(), "the first thread's step completed");
            t.step();
            assertEquals(2, t.completedSteps());
        }
    }

    /**
     * Found by an adversarial trial: {@code Checkpoint.save} and {@code restore} on a trainer whose step ran on
     * another thread took no part in the trainer's one-call-at-a-time rule: 24 of 32 saves wrote a checkpoint mixing
     * two steps, and a restore during {@code train} left the weights of no step. Both now refuse while a step runs,
     * changing nothing, and work once it has returned.
     */
    @Test
    void saveAndRestoreRefuseWhileAStepRunsOnAnotherThread(@TempDir Path dir) throws Exception {
        Dataset train = TrainingTestSupport.gaussian2d(40, 4);
        java.util.concurrent.CountDownLatch inside = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicBoolean block = new java.util.concurrent.atomic.AtomicBoolean();
        NnOps blocking = (NnOps) java.lang.reflect.Proxy.newProxyInstance(NnOps.class.getClassLoader(),
                new Class<?>[] {NnOps.class}, (proxy, method, args) -> {
                    if (method.getName().equals("adamw") && block.get() && inside.getCount() > 0) {
                        inside.countDown();                       // the step is in its update: hold it there
                        release.await();
                    }
                    try {
                        return method.invoke(ops, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        Path before = dir.resolve("step-1.safetensors");
        Path during = dir.resolve("during.safetensors");
        try (TensorScope s = TensorScope.open();
             Trainer t = new Trainer(new MlpDenoiser(ops, s, TrainingTestSupport.mlp(), 8), blocking, train,
                     busy(3, 4, 10))) {
            t.step();
            t.save(before);
            block.set(true);
            Thread second = new Thread(t::step);
            second.start();
            inside.await();
            Map<String, float[]> mid = weights(t.model());
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> t.save(during));
            assertTrue(e.getMessage().startsWith("cannot save while this trainer is in use"), e.getMessage());
            assertFalse(java.nio.file.Files.exists(during), "nothing written");
            e = assertThrows(IllegalStateException.class, () -> t.restore(before));
            assertTrue(e.getMessage().startsWith("cannot restore while this trainer is in use"), e.getMessage());
            assertBitwise("weights untouched by the refused restore", mid, weights(t.model()));
            release.countDown();
            second.join(30_000);
            assertEquals(2, t.completedSteps(), "the other thread's step completed");
            t.save(during);                               // and both work afterwards
            t.restore(before);
            assertEquals(1, t.completedSteps());
        }
    }

    /**
     * Found by an adversarial trial: a step-3 checkpoint whose {@code d4j.ema.updates} was forged to 2^63 − 1 was
     * refused by {@code Ema.setUpdates} only after every tensor had been copied, leaving a trainer with the file's
     * weights, its optimizer count and its own old step count, not marked broken. Counters are now checked before
     * any copy: more optimizer steps or EMA updates than training steps is corrupt metadata.
     */
    @Test
    void forgedStepCountersAreRefusedBeforeAnythingIsCopied(@TempDir Path dir) throws Exception {
        Dataset train = TrainingTestSupport.gaussian2d(40, 4);
        try (TensorScope s = TensorScope.open();
             Trainer t = new Trainer(new MlpDenoiser(ops, s, TrainingTestSupport.mlp(), 8), ops, train,
                     busy(3, 4, 10))) {
            t.train(3);
            Path file = dir.resolve("ck.safetensors");
            t.save(file);
            t.train(5);
            Map<String, float[]> at8 = weights(t.model());
            for (String[] forged : new String[][] {{Checkpoint.KEY_EMA_UPDATES, "9223372036854775807"},
                    {Checkpoint.KEY_EMA_UPDATES, "4"}, {Checkpoint.KEY_OPTIM_STEPS, "4"}}) {
                Path bad = dir.resolve("forged.safetensors");
                try (TensorScope r = TensorScope.open()) {
                    var f = org.diffusion4j.io.Safetensors.read(file, r, be);
                    Map<String, String> meta = new java.util.HashMap<>(f.metadata());
                    meta.put(forged[0], forged[1]);
                    org.diffusion4j.io.Safetensors.write(bad, f.tensors(), meta);
                }
                CheckpointException e = assertThrows(CheckpointException.class, () -> t.restore(bad));
                assertTrue(e.getMessage().contains(forged[0]) && e.getMessage().contains(forged[1])
                        && e.getMessage().contains(bad.toString()), e.getMessage());
                assertEquals(8, t.completedSteps());
                assertEquals(8, t.optimizer().stepCount());
                assertEquals(8, t.ema().updates());
                assertBitwise("weights untouched", at8, weights(t.model()));
            }
            t.train(1);                                   // not broken
            assertEquals(9, t.completedSteps());
        }
    }

    // ---------------------------------------------------------------- one step by hand

    @Test
    void aStepMatchesOneWrittenOutByHand() {
        int batch = 6;
        long seed = 31;
        Dataset data = TrainingTestSupport.gaussian2d(9, 6);
        // V objective on the cosine schedule with min-SNR weights, large AdamW eps (so the update depends on the
        // gradient's scale and clipping shows), clipping far below the gradient norm, no warm-up.
        TrainingConfig cfg = new TrainingConfig(seed, batch, 10, 0.05, 0, 0.0, new AdamW.Hyper(0.9, 0.99, 0.1, 0.2),
                1e-3, new Ema.Schedule(0.99, 0, 1, 0.75, 0), TrainingConfig.Objective.V, "cosine", "uniform",
                "min-snr:5", 0, false, 0);
        try (TensorScope sa = TensorScope.open(); TensorScope sb = TensorScope.open();
             TensorScope sc = TensorScope.open()) {
            MlpDenoiser a = new MlpDenoiser(ops, sa, TrainingTestSupport.mlp(), 8);
            MlpDenoiser b = new MlpDenoiser(ops, sb, TrainingTestSupport.mlp(), 8);
            MlpDenoiser c = new MlpDenoiser(ops, sc, TrainingTestSupport.mlp(), 8);
            StepStats st;
            try (Trainer t = new Trainer(a, ops, data, cfg)) {
                st = t.step();
                assertEquals(1, t.completedSteps());
                for (int k = 1; k < 4; k++) {     // learning rates of later steps: warm-up-free cosine
                    assertEquals(cfg.buildLrSchedule().lr(k), t.step().lr());
                }
            }
            assertEquals(0.05, st.lr());

            // 1. Host float64 re-computation of the step's inputs, loss and dLoss/dOut.
            int n = 2;
            int[] idx = new BatchSource(data, batch, seed).batch(0).indices();
            NoiseSchedule sched = cfg.buildNoiseSchedule();
            double[] t = new double[batch];
            double[] w = new double[batch];
            float[] xt = new float[batch * n];
            double[] target = new double[batch * n];
            for (int i = 0; i < batch; i++) {
                t[i] = Philox.uniform(seed, Trainer.NOISE_STREAM + 1, i);             // uniform t, id i
                double al = sched.alpha(t[i]);
                double si = sched.sigma(t[i]);
                double snr = al * al / (si * si);
                w[i] = Math.min(snr, 5) / (snr + 1);                                  // min-SNR for V
                float[] x0 = data.sample(idx[i]);
                for (int j = 0; j < n; j++) {
                    double eps = Philox.normal(seed, Trainer.NOISE_STREAM, (long) i * n + j);
                    xt[i * n + j] = (float) (al * x0[j] + si * eps);
                    target[i * n + j] = al * eps - si * x0[j];                        // v = alpha eps - sigma x0
                }
            }
            double[] out;
            MlpDenoiser.Cache cache;
            try (TensorScope tmp = TensorScope.open()) {
                c.zeroGrad();
                cache = c.forward(tmp, be.fromArray(tmp, xt, batch, n), t);
                out = toDoubles(cache.out().toFloatArray());
                double[] dOut = lossGradient(out, target, w, batch, n);
                // the gradient formula against central differences of the loss
                for (int e = 0; e < out.length; e++) {
                    double[] p = out.clone();
                    double[] q = out.clone();
                    p[e] += 1e-6;
                    q[e] -= 1e-6;
                    double fd = (loss(p, target, w, batch, n) - loss(q, target, w, batch, n)) / 2e-6;
                    assertEquals(fd, dOut[e], 1e-7 + 1e-5 * Math.abs(fd), "dLoss/dOut[" + e + "]");
                }
                float[] dOutF = new float[dOut.length];
                for (int e = 0; e < dOut.length; e++) {
                    dOutF[e] = (float) dOut[e];
                }
                c.backward(tmp, cache, be.fromArray(tmp, dOutF, batch, n));
            }
            double[] plain = new double[batch];
            Arrays.fill(plain, 1);
            assertEquals(loss(out, target, plain, batch, n), st.loss(), 1e-5 * st.loss(), "plain loss");
            assertEquals(loss(out, target, w, batch, n), st.weightedLoss(), 1e-5 * st.weightedLoss(),
                    "weighted loss");
            double norm = GradClip.globalNorm(be, c.parameters());
            assertEquals(norm, st.gradNorm(), 1e-4 * norm, "gradient norm before clipping");
            assertEquals(GradClip.clipFactor(st.gradNorm(), 1e-3), st.clipFactor());
            assertTrue(st.clipFactor() < 0.01, "clipping must be active: factor " + st.clipFactor());

            // 2. The same update applied by hand to a copy of the initial weights, from the trainer's (unclipped)
            //    gradients of step 0: AdamW on the clipped gradients and the EMA must match bit for bit.
            try (TensorScope sa2 = TensorScope.open()) {
                MlpDenoiser a2 = new MlpDenoiser(ops, sa2, TrainingTestSupport.mlp(), 8);
                try (Trainer t2 = new Trainer(a2, ops, data, cfg)) {
                    StepStats again = t2.step();
                    assertEquals(Double.doubleToRawLongBits(st.gradNorm()),
                            Double.doubleToRawLongBits(GradClip.globalNorm(be, a2.parameters())),
                            "reported norm is GradClip.globalNorm of the step's gradients");
                    assertEquals(st.loss(), again.loss());
                    Map<String, Parameter> pb = b.namedParameters();
                    for (Map.Entry<String, Parameter> e : a2.namedParameters().entrySet()) {
                        be.copy(e.getValue().grad(), pb.get(e.getKey()).grad());
                    }
                    Map<String, float[]> unclipped;
                    try (TensorScope su = TensorScope.open()) {
                        MlpDenoiser u = new MlpDenoiser(ops, su, TrainingTestSupport.mlp(), 8);
                        for (Map.Entry<String, Parameter> e : a2.namedParameters().entrySet()) {
                            be.copy(e.getValue().grad(), u.namedParameters().get(e.getKey()).grad());
                        }
                        try (AdamW opt = new AdamW(ops, u.namedParameters(), cfg.adamw(),
                                Trainer.decayedNames(u)::contains)) {
                            opt.step(0.05, 1.0);
                        }
                        unclipped = weights(u);
                    }
                    try (AdamW opt = new AdamW(ops, pb, cfg.adamw(), Trainer.decayedNames(b)::contains);
                         Ema ema = new Ema(be, pb, cfg.ema())) {
                        opt.step(0.05, st.clipFactor());
                        ema.update();
                        assertBitwise("weights after one step", weights(b), weights(a2));
                        assertBitwise("EMA after one step", copies(ema.averages()), copies(t2.ema().averages()));
                        assertBitwise("AdamW m", copies(opt.firstMoments()), copies(t2.optimizer().firstMoments()));
                    }
                    float[] wu = unclipped.get("out_proj.weight");
                    float[] wc = weights(b).get("out_proj.weight");
                    assertFalse(Arrays.equals(wu, wc), "clipping made no difference to the update");
                }
            }
        }
    }

    static double loss(double[] out, double[] target, double[] w, int batch, int n) {
        double l = 0;
        for (int i = 0; i < batch; i++) {
            double s = 0;
            for (int j = 0; j < n; j++) {
                double d = out[i * n + j] - target[i * n + j];
                s += d * d;
            }
            l += w[i] * s / n;
        }
        return l / batch;
    }

    static double[] lossGradient(double[] out, double[] target, double[] w, int batch, int n) {
        double[] g = new double[out.length];
        for (int i = 0; i < batch; i++) {
            for (int j = 0; j < n; j++) {
                g[i * n + j] = 2 * w[i] * (out[i * n + j] - target[i * n + j]) / ((double) batch * n);
            }
        }
        return g;
    }

    static double[] toDoubles(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    @Test
    void warmUpStartsAtRateZeroAndLeavesTheWeights() {
        Dataset data = TrainingTestSupport.gaussian2d(20, 1);
        try (TensorScope s = TensorScope.open();
             Trainer t = new Trainer(mlpFactory().create(s, 5), ops, data, busy(3, 4, 10))) {
            Map<String, float[]> before = weights(t.model());
            StepStats st = t.step();
            assertEquals(0.0, st.lr());
            assertBitwise("weights after a step at lr 0", before, weights(t.model()));
            StepStats st1 = t.step();
            assertEquals(2e-2 / 3, st1.lr(), 1e-18);
            assertThrows(AssertionError.class, () -> assertBitwise("", before, weights(t.model())));
        }
    }

    // ---------------------------------------------------------------- decay groups, labels, scopes

    @Test
    void weightDecayGoesToWeightMatricesOnly() {
        try (TensorScope s = TensorScope.open()) {
            MlpDenoiser m = new MlpDenoiser(ops, s, new MlpDenoiser.Config(3, 8, 1, 6, 1000), 1);
            assertEquals(Set.of("t_embedder.mlp.0.weight", "t_embedder.mlp.2.weight", "in_proj.weight",
                    "blocks.0.fc1.weight", "blocks.0.t_proj.weight", "blocks.0.fc2.weight", "out_proj.weight"),
                    Trainer.decayedNames(m));
            DiT d = new DiT(ops, attention, s, TrainingTestSupport.tinyDit(), 1);
            Set<String> decayed = Trainer.decayedNames(d);
            assertTrue(decayed.contains("x_embedder.proj.weight"), decayed.toString());
            assertTrue(decayed.contains("blocks.0.attn.qkv.weight"), decayed.toString());
            assertFalse(decayed.contains("y_embedder.embedding_table.weight"), decayed.toString());
            for (String name : decayed) {
                assertFalse(name.endsWith(".bias"), name);
            }
        }
    }

    /** Delegates to a model and records what the trainer passes. */
    static final class Recording implements DenoiserModel {
        final DenoiserModel inner;
        final List<TensorScope> scopes = new ArrayList<>();
        final List<int[]> labels = new ArrayList<>();

        Recording(DenoiserModel inner) {
            this.inner = inner;
        }

        @Override
        public Module module() {
            return inner.module();
        }

        @Override
        public long[] sampleShape() {
            return inner.sampleShape();
        }

        @Override
        public int numClasses() {
            return inner.numClasses();
        }

        @Override
        public Pass forward(TensorScope scope, Tensor x, double[] t, int[] y) {
            scopes.add(scope);
            labels.add(y == null ? null : y.clone());
            return inner.forward(scope, x, t, y);
        }

        @Override
        public void backward(TensorScope scope, Pass pass, Tensor dOut) {
            inner.backward(scope, pass, dOut);
        }

        @Override
        public void predict(Tensor xt, NoiseLevels levels, Tensor condition, Tensor out) {
            inner.predict(xt, levels, condition, out);
        }
    }

    @Test
    void everyStepRunsInItsOwnScopeThatIsClosedAfterwards() {
        Dataset data = TrainingTestSupport.gaussian2d(20, 1);
        try (TensorScope s = TensorScope.open()) {
            Recording r = new Recording(mlpFactory().create(s, 5));
            try (Trainer t = new Trainer(r, ops, data, busy(3, 4, 10))) {
                t.train(5);
            }
            assertEquals(5, r.scopes.size());
            assertEquals(5, r.scopes.stream().distinct().count(), "one scope per step");
            for (TensorScope sc : r.scopes) {
                assertFalse(sc.isAlive(), "a step's scope is still open: its activations leak");
            }
            assertTrue(s.isAlive());
        }
    }

    @Test
    void labelDropoutReplacesLabelsByTheNullClassPerSampleId() {
        Dataset data = TrainingTestSupport.images(11, 1, 4, 3, 2);
        long seed = 4;
        int batch = 5;
        for (double p : new double[] {0.0, 0.5, 1.0}) {
            try (TensorScope s = TensorScope.open()) {
                Recording r = new Recording(ditFactory().create(s, 5));
                TrainingConfig cfg = busy(seed, batch, 10).withLabelDropout(p);
                try (Trainer t = new Trainer(r, ops, data, cfg)) {
                    t.train(3);
                }
                BatchSource src = new BatchSource(data, batch, seed);
                int dropped = 0;
                for (int k = 0; k < 3; k++) {
                    int[] real = src.batch(k).labels();
                    int[] seen = r.labels.get(k);
                    for (int b = 0; b < batch; b++) {
                        boolean drop = Philox.uniform(seed, Trainer.NOISE_STREAM + Trainer.DRAW_LABEL_DROP,
                                (long) k * batch + b) <= p;
                        assertEquals(drop ? 3 : real[b], seen[b], "p " + p + ", step " + k + ", sample " + b);
                        dropped += drop ? 1 : 0;
                    }
                }
                if (p == 0.5) {
                    assertTrue(dropped > 0 && dropped < 15, "dropped " + dropped + " of 15 at p = 0.5");
                }
            }
        }
    }

    @Test
    void rejectsDataThatDoesNotFitTheModel() {
        try (TensorScope s = TensorScope.open()) {
            DenoiserModel mlp = mlpFactory().create(s, 1);
            Dataset three = Dataset.of(new float[9], new long[] {3}, null, List.of());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new Trainer(mlp, ops, three, busy(1, 2, 5)));
            assertTrue(e.getMessage().contains("[3]") && e.getMessage().contains("[2]"), e.getMessage());
            DenoiserModel dit = ditFactory().create(s, 1);
            Dataset unlabelled = Dataset.of(new float[32], new long[] {1, 4, 4}, null, List.of());
            e = assertThrows(IllegalArgumentException.class, () -> new Trainer(dit, ops, unlabelled, busy(1, 2, 5)));
            assertTrue(e.getMessage().contains("no labels"), e.getMessage());
            Dataset many = TrainingTestSupport.images(8, 1, 4, 4, 1);
            e = assertThrows(IllegalArgumentException.class, () -> new Trainer(dit, ops, many, busy(1, 2, 5)));
            assertTrue(e.getMessage().contains("4 classes"), e.getMessage());
        }
    }

    @Test
    void divergenceStopsBeforeTheWeightsChange() {
        Dataset data = Dataset.of(new float[] {1e30f, -1e30f, 1e30f, 1e30f}, new long[] {2}, null, List.of());
        try (TensorScope s = TensorScope.open();
             Trainer t = new Trainer(mlpFactory().create(s, 5), ops, data, busy(3, 2, 10))) {
            Map<String, float[]> before = weights(t.model());
            IllegalStateException e = assertThrows(IllegalStateException.class, t::step);
            assertTrue(e.getMessage().contains("step 0"), e.getMessage());
            assertBitwise("weights", before, weights(t.model()));
            assertEquals(0, t.completedSteps());
        }
    }

    @Test
    void configRejectsBadValuesByName() {
        TrainingConfig ok = busy(1, 4, 10);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ok.withObjective(TrainingConfig.Objective.EPSILON, "rf"));
        assertTrue(e.getMessage().contains("EPSILON"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ok.withObjective(TrainingConfig.Objective.FLOW,
                "cosine"));
        assertTrue(e.getMessage().contains("cosine"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ok.withTimeSampling("gamma:2", "none"));
        assertTrue(e.getMessage().contains("gamma:2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ok.withTimeSampling("uniform", "min-snr:x"));
        assertTrue(e.getMessage().contains("min-snr:x"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ok.withMaxGradNorm(-1));
        assertTrue(e.getMessage().contains("maxGradNorm"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ok.withLabelDropout(1.5));
        assertTrue(e.getMessage().contains("labelDropout"), e.getMessage());
        assertEquals(Prediction.SAMPLE, ok.withObjective(TrainingConfig.Objective.X0, "linear:100").objective()
                .prediction());
        String json = Checkpoint.toJson(ok);
        assertEquals(ok, Checkpoint.trainingConfigFromJson(json));
        assertEquals(ok.withEma(null), Checkpoint.trainingConfigFromJson(Checkpoint.toJson(ok.withEma(null))));
        e = assertThrows(IllegalArgumentException.class,
                () -> Checkpoint.trainingConfigFromJson(json.replace("\"batchSize\":4", "\"batchSize\":0")));
        assertTrue(e.getMessage().contains("batchSize"), e.getMessage());

        // model configurations: JSON round trip, strict parsing with the problem named
        assertEquals(TrainingTestSupport.tinyDit(), Models.parseConfig("dit",
                Models.toJson(TrainingTestSupport.tinyDit())));
        String mlp = Models.toJson(TrainingTestSupport.mlp());
        assertEquals(TrainingTestSupport.mlp(), Models.parseConfig("mlp", mlp));
        e = assertThrows(IllegalArgumentException.class, () -> Models.parseConfig("mlp",
                mlp.replace("\"hidden\":24", "\"hidden\":0")));
        assertTrue(e.getMessage().contains("hidden"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Models.parseConfig("mlp",
                mlp.replace("{", "{\"depth\":3,")));
        assertTrue(e.getMessage().contains("depth"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Models.parseConfig("unet", mlp));
        assertTrue(e.getMessage().contains("unet"), e.getMessage());
    }
}
