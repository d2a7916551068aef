package org.diffusion4j.training;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.io.Dataset;
import org.diffusion4j.io.Safetensors;
import org.diffusion4j.io.SafetensorsDType;
import org.diffusion4j.io.SafetensorsFile;
import org.diffusion4j.io.SafetensorsHeader;
import org.diffusion4j.nn.DiT;
import org.diffusion4j.nn.MlpDenoiser;
import org.diffusion4j.nn.Models;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.diffusion4j.training.TrainingTestSupport.assertBitwise;
import static org.diffusion4j.training.TrainingTestSupport.busy;
import static org.diffusion4j.training.TrainingTestSupport.copies;
import static org.diffusion4j.training.TrainingTestSupport.weights;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checkpoints: layout and metadata, weights-only loads (EMA by option, exports that hold only the state dict),
 * every kind of mismatch and corruption named in the error with the target left unchanged, and atomic saves.
 */
class CheckpointTest {

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

    /** The state-dict sizes computed from a configuration equal those of built models, for each kind and variant. */
    @Test
    void stateDictSizesFromTheConfigurationMatchBuiltModels() {
        List<Record> configs = List.of(new MlpDenoiser.Config(3, 16, 2, 8, 1000, 0),
                new MlpDenoiser.Config(5, 12, 0, 6, 1000, 4), DiT.Config.of(8, 3, 2, 16, 2, 2, 0),
                DiT.Config.of(12, 1, 4, 24, 1, 3, 7), new DiT.Config(6, 2, 3, 8, 3, 2, 2.5, 2, 0.1, 10, 500));
        try (TensorScope scope = TensorScope.open()) {
            for (Record c : configs) {
                long built = 0;
                for (Tensor t : Models.create(c, ops, attention, scope, 0).module().stateDict().values()) {
                    built += t.numel();
                }
                assertEquals(built, Models.stateDictNumel(c), c.toString());
            }
        }
        // found by a code review: forged sizes wrapped the count negative, which any file passes
        assertEquals(Long.MAX_VALUE, Models.stateDictNumel(new MlpDenoiser.Config(2, 45_000, Integer.MAX_VALUE, 4,
                1000, 0)));
        assertEquals(Long.MAX_VALUE, Models.stateDictNumel(new DiT.Config(8, 1, 8, 64, Integer.MAX_VALUE, 1, 1e6,
                0, 0, 4, 1000)));
    }

    /**
     * Found by an adversarial trial: a 5 KB file whose metadata claimed an MLP of width 8192 made loadModel allocate
     * 3.8 GB (a larger claim would have got the JVM killed) before failing on missing tensors. The claim is now
     * compared with the header first.
     */
    @Test
    void aForgedConfigurationIsRefusedBeforeTheModelIsBuilt(@TempDir Path dir) throws IOException {
        Path real = dir.resolve("real.safetensors");
        Path forged = dir.resolve("forged.safetensors");
        try (TensorScope scope = TensorScope.open()) {
            MlpDenoiser small = new MlpDenoiser(ops, scope, new MlpDenoiser.Config(2, 8, 1, 4, 1000, 0), 1);
            Checkpoint.exportWeights(real, small, null);
            SafetensorsFile f = Safetensors.read(real, scope, be);
            Map<String, String> meta = new HashMap<>(f.metadata());
            String config = meta.get("d4j.model.config");
            assertTrue(config.contains("\"hidden\":8"), config);
            meta.put("d4j.model.config", config.replace("\"hidden\":8", "\"hidden\":8192"));
            Safetensors.write(forged, f.tensors(), meta);
        }
        try (TensorScope scope = TensorScope.open()) {
            assertEquals(2, Checkpoint.loadModel(real, ops, attention, scope, Checkpoint.Weights.RAW).model()
                    .sampleShape()[0]);
            CheckpointException e = assertThrows(CheckpointException.class,
                    () -> Checkpoint.loadModel(forged, ops, attention, scope, Checkpoint.Weights.RAW));
            assertTrue(e.getMessage().contains("describes") && e.getMessage().contains("tensor elements in all"),
                    e.getMessage());
        }
    }

    /** Found by an adversarial trial: a forged step count of 2^63 - 1 was restored, and the next step overflowed. */
    @Test
    void aForgedStepCountIsRefusedOnRestore(@TempDir Path dir) throws IOException {
        Path real = dir.resolve("real.safetensors");
        Path forged = dir.resolve("forged.safetensors");
        try (TensorScope scope = TensorScope.open();
             Trainer t = new Trainer(new MlpDenoiser(ops, scope, TrainingTestSupport.mlp(), 1), ops, points(),
                     busy(1, 4, 10))) {
            t.step();
            t.save(real);
            try (TensorScope read = TensorScope.open()) {
                SafetensorsFile f = Safetensors.read(real, read, be);
                Map<String, String> meta = new HashMap<>(f.metadata());
                meta.put("d4j.step", Long.toString(Long.MAX_VALUE));
                Safetensors.write(forged, f.tensors(), meta);
            }
            CheckpointException e = assertThrows(CheckpointException.class, () -> t.restore(forged));
            assertTrue(e.getMessage().contains("step count 9223372036854775807"), e.getMessage());
            assertEquals(1, t.completedSteps(), "unchanged");
            t.step();
        }
    }

    static Dataset points() {
        return TrainingTestSupport.gaussian2d(19, 5);
    }

    /** Trains an MLP for 3 steps and saves it to {@code file}; returns the trainer (open) for comparisons. */
    static Trainer trained(TensorScope scope, Path file) throws IOException {
        Trainer t = new Trainer(new MlpDenoiser(ops, scope, TrainingTestSupport.mlp(), 3), ops, points(),
                busy(9, 4, 10));
        t.train(3);
        t.save(file);
        return t;
    }

    /** A class-conditional MLP trainer over {@link #points()} labelled {@code i mod k} (unnamed), trained 1 step. */
    static Trainer conditional(TensorScope scope, int k) {
        Dataset p = points();
        int[] labels = new int[p.size()];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = i % k;
        }
        Trainer t = new Trainer(new MlpDenoiser(ops, scope, TrainingTestSupport.mlp().withClasses(k), 3), ops,
                Dataset.of(p.toArray(), p.sampleShape(), labels, List.of()), busy(9, 4, 10));
        t.train(1);
        return t;
    }

    // ---------------------------------------------------------------- layout

    @Test
    void aCheckpointHoldsStateDictEmaMomentsAndMetadata(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("ck.safetensors");
        try (TensorScope s = TensorScope.open(); Trainer t = trained(s, f)) {
            SafetensorsHeader h = Safetensors.readHeader(f);
            Set<String> want = new TreeSet<>();
            for (String n : t.model().module().namedParameters().keySet()) {
                want.addAll(List.of(n, "ema." + n, "optim.m." + n, "optim.v." + n));
            }
            Set<String> have = new TreeSet<>();
            for (SafetensorsHeader.Entry e : h.entries()) {
                have.add(e.name());
                assertEquals(SafetensorsDType.F32, e.dtype(), e.name());
            }
            assertEquals(want, have);
            Map<String, String> meta = h.metadata();
            assertEquals("1", meta.get("d4j.format"));
            assertEquals("mlp", meta.get("d4j.model.kind"));
            assertEquals(TrainingTestSupport.mlp(), Models.parseConfig("mlp", meta.get("d4j.model.config")));
            assertEquals(t.config(), Checkpoint.trainingConfigFromJson(meta.get("d4j.training.config")));
            assertEquals("3", meta.get("d4j.step"));
            assertEquals("9", meta.get("d4j.seed"));
            assertEquals("3", meta.get("d4j.optim.steps"));
            assertEquals("3", meta.get("d4j.ema.updates"));
            Checkpoint.Info info = Checkpoint.readInfo(f);
            assertEquals(3, info.step());
            assertTrue(info.hasEma() && info.hasOptimizer());
            try (TensorScope r = TensorScope.open()) {
                SafetensorsFile file = Safetensors.read(f, r, be);
                for (Map.Entry<String, Tensor> e : t.model().module().stateDict().entrySet()) {
                    assertArrayEquals(e.getValue().toFloatArray(), file.tensor(e.getKey()).toFloatArray(),
                            e.getKey());
                }
                for (Map.Entry<String, Tensor> e : t.optimizer().secondMoments().entrySet()) {
                    assertArrayEquals(e.getValue().toFloatArray(), file.tensor("optim.v." + e.getKey())
                            .toFloatArray(), e.getKey());
                }
            }
        }
    }

    @Test
    void aDitCheckpointUsesTheReferenceNamesAndHoldsThePositionEmbeddingBuffer(@TempDir Path dir)
            throws IOException {
        Path f = dir.resolve("dit.safetensors");
        Dataset data = TrainingTestSupport.images(7, 1, 4, 3, 1);
        try (TensorScope s = TensorScope.open();
             Trainer t = new Trainer(new DiT(ops, attention, s, TrainingTestSupport.tinyDit(), 2), ops, data,
                     busy(1, 3, 5))) {
            t.train(2);
            t.save(f);
            Set<String> names = new TreeSet<>();
            for (SafetensorsHeader.Entry e : Safetensors.readHeader(f).entries()) {
                names.add(e.name());
            }
            for (String n : List.of("pos_embed", "x_embedder.proj.weight", "blocks.0.attn.qkv.weight",
                    "blocks.0.adaLN_modulation.1.weight", "final_layer.linear.weight",
                    "y_embedder.embedding_table.weight", "ema.blocks.0.attn.qkv.weight")) {
                assertTrue(names.contains(n), n + " missing from " + names);
            }
            assertFalse(names.contains("ema.pos_embed"), "a buffer has no EMA");
            assertFalse(names.contains("optim.m.pos_embed"), "a buffer has no optimizer state");
            try (TensorScope r = TensorScope.open()) {
                Checkpoint.Loaded l = Checkpoint.loadModel(f, ops, attention, r, Checkpoint.Weights.PREFER_EMA);
                assertTrue(l.emaUsed());
                assertEquals(TrainingTestSupport.tinyDit(), ((DiT) l.model()).config());
                assertBitwise("EMA weights", copies(t.ema().averages()), weights(l.model()));
                assertArrayEquals(((DiT) t.model()).posEmbed().toFloatArray(), ((DiT) l.model()).posEmbed()
                        .toFloatArray());
            }
        }
    }

    // ---------------------------------------------------------------- weights only

    @Test
    void weightsOnlyLoadsPickEmaOrRawWeightsByOption(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("ck.safetensors");
        Path raw = dir.resolve("raw.safetensors");
        try (TensorScope s = TensorScope.open(); Trainer t = trained(s, f); TensorScope r = TensorScope.open()) {
            Checkpoint.Loaded ema = Checkpoint.loadModel(f, ops, null, r, Checkpoint.Weights.PREFER_EMA);
            assertTrue(ema.emaUsed());
            assertBitwise("EMA weights", copies(t.ema().averages()), weights(ema.model()));
            Checkpoint.Loaded plain = Checkpoint.loadModel(f, ops, null, r, Checkpoint.Weights.RAW);
            assertFalse(plain.emaUsed());
            assertBitwise("raw weights", weights(t.model()), weights(plain.model()));
            assertThrows(AssertionError.class, () -> assertBitwise("", weights(plain.model()),
                    weights(ema.model())));

            // an export holds exactly the state dict (what torch's load_state_dict(strict=True) wants)
            Checkpoint.exportWeights(raw, t.model(), null);
            Set<String> names = new TreeSet<>();
            for (SafetensorsHeader.Entry e : Safetensors.readHeader(raw).entries()) {
                names.add(e.name());
            }
            assertEquals(new TreeSet<>(t.model().module().stateDict().keySet()), names);
            Checkpoint.Info info = Checkpoint.readInfo(raw);
            assertNull(info.training());
            assertFalse(info.hasEma());
            Checkpoint.Loaded back = Checkpoint.loadModel(raw, ops, null, r, Checkpoint.Weights.PREFER_EMA);
            assertFalse(back.emaUsed());
            assertBitwise("exported weights", weights(t.model()), weights(back.model()));
            CheckpointException e = assertThrows(CheckpointException.class,
                    () -> Checkpoint.loadModel(raw, ops, null, r, Checkpoint.Weights.EMA));
            assertTrue(e.getMessage().contains("ema."), e.getMessage());
            // a weights-only file cannot resume training
            e = assertThrows(CheckpointException.class, () -> t.restore(raw));
            assertTrue(e.getMessage().contains("d4j.training.config"), e.getMessage());

            // an export of the EMA weights, loaded into an existing model in BF16 form
            Path emaExport = dir.resolve("ema.safetensors");
            Checkpoint.exportWeights(emaExport, t.model(), t.ema());
            Path bf16 = rewrite(emaExport, dir.resolve("bf16.safetensors"), (m, meta) -> {
                for (Map.Entry<String, Tensor> en : m.entrySet()) {
                    Tensor b = be.empty(r, DType.BF16, en.getValue().shape());
                    be.cast(en.getValue(), b);
                    en.setValue(b);
                }
            });
            MlpDenoiser target = new MlpDenoiser(ops, r, TrainingTestSupport.mlp(), 44);
            // its plain names hold EMA averages, and its metadata says so
            assertEquals("ema", Checkpoint.readInfo(bf16).metadata().get(Checkpoint.KEY_WEIGHTS));
            assertTrue(Checkpoint.loadWeights(bf16, target, be, Checkpoint.Weights.RAW));
            float[] want = t.ema().averages().get("out_proj.weight").toFloatArray();
            float[] got = target.namedParameters().get("out_proj.weight").value().toFloatArray();
            for (int i = 0; i < want.length; i++) {
                assertEquals(want[i], got[i], Math.abs(want[i]) * 0x1p-8, "bf16 element " + i);
            }
        }
    }

    /** The user's own model type: here an MLP behind a class that {@link Models} does not know. */
    record CustomModel(MlpDenoiser inner) implements org.diffusion4j.nn.DenoiserModel {
        public org.diffusion4j.nn.Module module() {
            return inner;
        }

        public long[] sampleShape() {
            return inner.sampleShape();
        }

        public int numClasses() {
            return inner.numClasses();
        }

        public Pass forward(TensorScope scope, Tensor x, double[] t, int[] labels) {
            return inner.forward(scope, x, t, labels);
        }

        public void backward(TensorScope scope, Pass pass, Tensor dOut) {
            inner.backward(scope, pass, dOut);
        }

        public void predict(Tensor xt, org.diffusion4j.sampling.NoiseLevels levels, Tensor condition, Tensor out) {
            inner.predict(xt, levels, condition, out);
        }
    }

    @Test
    void aCustomModelSavesRestoresAndExportsWithoutAModelKind(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("custom.safetensors");
        Path exported = dir.resolve("custom-export.safetensors");
        try (TensorScope s = TensorScope.open();
             Trainer t = new Trainer(new CustomModel(new MlpDenoiser(ops, s, TrainingTestSupport.mlp(), 3)), ops,
                     points(), busy(9, 4, 10))) {
            t.train(3);
            t.save(f);
            Checkpoint.Info info = Checkpoint.readInfo(f);
            assertNull(info.modelKind());
            assertEquals(CustomModel.class.getName(), info.metadata().get(Checkpoint.KEY_MODEL_CLASS));
            assertEquals(3, info.step());

            // resume: a fresh custom model restored from the file continues bit for bit
            try (Trainer u = new Trainer(new CustomModel(new MlpDenoiser(ops, s, TrainingTestSupport.mlp(), 77)),
                    ops, points(), busy(9, 4, 10))) {
                u.restore(f);
                assertBitwise("restored weights", weights(t.model()), weights(u.model()));
                List<StepStats> a = new java.util.ArrayList<>();
                List<StepStats> b = new java.util.ArrayList<>();
                t.addListener(a::add);
                u.addListener(b::add);
                t.train(2);
                u.train(2);
                TrainingTestSupport.assertSameTrajectory(a, b);
            }

            // export: EMA weights, the training config, no model kind; loads into a custom model, not a built-in one
            Checkpoint.exportWeights(exported, t);
            Checkpoint.Info ex = Checkpoint.readInfo(exported);
            assertNull(ex.modelKind());
            assertEquals(t.config(), ex.training());
            CustomModel target = new CustomModel(new MlpDenoiser(ops, s, TrainingTestSupport.mlp(), 5));
            assertTrue(Checkpoint.loadWeights(exported, target, be, Checkpoint.Weights.PREFER_EMA));
            assertBitwise("EMA export", copies(t.ema().averages()), weights(target));
            CheckpointException e = assertThrows(CheckpointException.class,
                    () -> Checkpoint.loadModel(exported, ops, null, s, Checkpoint.Weights.RAW));
            assertTrue(e.getMessage().contains("d4j.model.kind"), e.getMessage());

            // a built-in model's checkpoint is refused by a custom model (and the other way round by the names)
            Path builtIn = dir.resolve("builtin.safetensors");
            try (Trainer v = trained(s, builtIn)) {
                e = assertThrows(CheckpointException.class,
                        () -> Checkpoint.loadWeights(builtIn, target, be, Checkpoint.Weights.RAW));
                assertTrue(e.getMessage().contains("not a built-in mlp"), e.getMessage());
            }
        }
    }

    @Test
    void aTrainerExportRecordsTheTrainingConfigAndEmaProvenance(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("ck.safetensors");
        Path out = dir.resolve("export.safetensors");
        try (TensorScope s = TensorScope.open(); Trainer t = trained(s, f); TensorScope r = TensorScope.open()) {
            Checkpoint.exportWeights(out, t);
            Checkpoint.Info info = Checkpoint.readInfo(out);
            assertEquals(t.config(), info.training());
            assertFalse(info.hasEma(), "the averages are under the plain names");
            Checkpoint.Loaded l = Checkpoint.loadModel(out, ops, null, r, Checkpoint.Weights.PREFER_EMA);
            assertTrue(l.emaUsed());
            assertBitwise("EMA export", copies(t.ema().averages()), weights(l.model()));
        }
    }

    // ---------------------------------------------------------------- errors

    interface Edit {
        void apply(Map<String, Tensor> tensors, Map<String, String> metadata);
    }

    /** Reads {@code src}, applies {@code edit} and writes the result to {@code dst}. */
    static Path rewrite(Path src, Path dst, Edit edit) throws IOException {
        try (TensorScope s = TensorScope.open()) {
            SafetensorsFile f = Safetensors.read(src, s, be);
            Map<String, Tensor> tensors = new LinkedHashMap<>(f.tensors());
            Map<String, String> meta = new HashMap<>(f.metadata());
            edit.apply(tensors, meta);
            Safetensors.write(dst, tensors, meta);
        }
        return dst;
    }

    /** Asserts that restoring {@code file} into {@code t} fails with a message holding every fragment, and changes nothing. */
    static void assertRestoreFails(Trainer t, Path file, String... fragments) {
        Map<String, float[]> w = weights(t.model());
        Map<String, float[]> m = copies(t.optimizer().firstMoments());
        long step = t.completedSteps();
        long opt = t.optimizer().stepCount();
        IOException e = assertThrows(IOException.class, () -> t.restore(file));
        for (String frag : fragments) {
            assertTrue(e.getMessage().contains(frag), "message lacks '" + frag + "': " + e.getMessage());
        }
        assertTrue(e.getMessage().contains(file.getFileName().toString()), e.getMessage());
        assertBitwise("weights after a failed restore", w, weights(t.model()));
        assertBitwise("moments after a failed restore", m, copies(t.optimizer().firstMoments()));
        assertEquals(step, t.completedSteps());
        assertEquals(opt, t.optimizer().stepCount());
    }

    /** A NaN in a stored weight or moment is named on load, before anything is copied. */
    @Test
    void nonFiniteValuesAreRefusedByName(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("ck.safetensors");
        try (TensorScope s = TensorScope.open(); Trainer t = trained(s, f); TensorScope r = TensorScope.open()) {
            Path bad = rewrite(f, dir.resolve("nan.safetensors"), (m, meta) -> {
                Tensor w = m.get("optim.v.out_proj.weight");
                float[] v = w.toFloatArray();
                v[1] = Float.NaN;
                m.put("optim.v.out_proj.weight", be.fromArray(r, v, w.shape()));
            });
            assertRestoreFails(t, bad, "optim.v.out_proj.weight", "NaN");
            // refused before anything was copied: the trainer is intact, not "broken part-way"
            long done = t.completedSteps();
            t.train(1);
            assertEquals(done + 1, t.completedSteps());
            Path badWeight = rewrite(f, dir.resolve("inf.safetensors"), (m, meta) -> {
                Tensor w = m.get("ema.out_proj.weight");
                float[] v = w.toFloatArray();
                v[0] = Float.POSITIVE_INFINITY;
                m.put("ema.out_proj.weight", be.fromArray(r, v, w.shape()));
            });
            MlpDenoiser target = new MlpDenoiser(ops, r, TrainingTestSupport.mlp(), 44);
            Map<String, float[]> before = weights(target);
            CheckpointException e = assertThrows(CheckpointException.class,
                    () -> Checkpoint.loadWeights(badWeight, target, be, Checkpoint.Weights.EMA));
            assertTrue(e.getMessage().contains("ema.out_proj.weight"), e.getMessage());
            assertBitwise("weights after a refused load", before, weights(target));
        }
    }

    @Test
    void mismatchesAreNamedAndLeaveTheTrainerUnchanged(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("ck.safetensors");
        try (TensorScope s = TensorScope.open(); TensorScope s2 = TensorScope.open();
             Trainer t = new Trainer(new MlpDenoiser(ops, s2, TrainingTestSupport.mlp(), 8), ops, points(),
                     busy(9, 4, 10))) {
            trained(s, f).close();
            t.train(1);
            // the unedited file restores (so each failure below is due to its edit alone)
            try (TensorScope s3 = TensorScope.open();
                 Trainer u = new Trainer(new MlpDenoiser(ops, s3, TrainingTestSupport.mlp(), 1), ops, points(),
                         busy(9, 4, 10))) {
                u.restore(f);
                assertEquals(3, u.completedSteps());
            }
            assertRestoreFails(t, rewrite(f, dir.resolve("missing.safetensors"),
                    (m, meta) -> m.remove("optim.v.out_proj.bias")), "missing tensor 'optim.v.out_proj.bias'");
            assertRestoreFails(t, rewrite(f, dir.resolve("extra.safetensors"),
                    (m, meta) -> m.put("extra.weight", m.get("out_proj.bias"))), "unexpected tensor 'extra.weight'");
            try (TensorScope tmp = TensorScope.open()) {
                assertRestoreFails(t, rewrite(f, dir.resolve("shape.safetensors"),
                        (m, meta) -> m.put("in_proj.bias", be.zeros(tmp, DType.F32, 5))), "'in_proj.bias'", "[5]",
                        "[24]");
                assertRestoreFails(t, rewrite(f, dir.resolve("dtype.safetensors"), (m, meta) -> {
                    Tensor src = m.get("ema.in_proj.weight");
                    Tensor b = be.empty(tmp, DType.BF16, src.shape());
                    be.cast(src, b);
                    m.put("ema.in_proj.weight", b);
                }), "'ema.in_proj.weight'", "BF16");
            }
            assertRestoreFails(t, rewrite(f, dir.resolve("step.safetensors"),
                    (m, meta) -> meta.put("d4j.step", "three")), "d4j.step", "three");
            assertRestoreFails(t, rewrite(f, dir.resolve("nostep.safetensors"),
                    (m, meta) -> meta.remove("d4j.optim.steps")), "d4j.optim.steps", "missing");
            assertRestoreFails(t, rewrite(f, dir.resolve("format.safetensors"),
                    (m, meta) -> meta.put("d4j.format", "99")), "d4j.format", "99");
            assertRestoreFails(t, rewrite(f, dir.resolve("config.safetensors"),
                    (m, meta) -> meta.put("d4j.training.config", "{\"seed\": 1}")), "d4j.training.config");
            assertRestoreFails(t, rewrite(f, dir.resolve("kind.safetensors"),
                    (m, meta) -> meta.put("d4j.model.kind", "unet")), "d4j.model.kind", "unet");
        }
    }

    @Test
    void anotherModelOrSeedIsRefused(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("ck.safetensors");
        try (TensorScope s = TensorScope.open(); TensorScope s2 = TensorScope.open()) {
            trained(s, f).close();
            try (Trainer wider = new Trainer(new MlpDenoiser(ops, s2, new MlpDenoiser.Config(2, 32, 2, 16, 1000), 1),
                    ops, points(), busy(9, 4, 10))) {
                assertRestoreFails(wider, f, "d4j.model.config", "\"hidden\":24");
            }
            try (Trainer otherSeed = new Trainer(new MlpDenoiser(ops, s2, TrainingTestSupport.mlp(), 1), ops,
                    points(), busy(10, 4, 10))) {
                assertRestoreFails(otherSeed, f, "seed 9", "10");
            }
            try (Trainer noEma = new Trainer(new MlpDenoiser(ops, s2, TrainingTestSupport.mlp(), 1), ops, points(),
                    busy(9, 4, 10).withEma(null))) {
                assertRestoreFails(noEma, f, "no EMA");
            }
        }
    }

    @Test
    void corruptedOrAbsentFilesAreErrorsNamingTheFile(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("ck.safetensors");
        try (TensorScope s = TensorScope.open(); Trainer t = trained(s, f)) {
            byte[] bytes = Files.readAllBytes(f);
            Path truncated = dir.resolve("truncated.safetensors");
            Files.write(truncated, java.util.Arrays.copyOf(bytes, bytes.length - 7));
            assertRestoreFails(t, truncated);
            Path garbled = dir.resolve("garbled.safetensors");
            byte[] g = bytes.clone();
            for (int i = 8; i < 40; i++) {
                g[i] = (byte) '#';
            }
            Files.write(garbled, g);
            assertRestoreFails(t, garbled);
            Path empty = dir.resolve("empty.safetensors");
            Files.write(empty, new byte[3]);
            assertRestoreFails(t, empty);
            assertThrows(NoSuchFileException.class, () -> t.restore(dir.resolve("absent.safetensors")));
            IOException e = assertThrows(IOException.class,
                    () -> Checkpoint.loadModel(truncated, ops, null, s, Checkpoint.Weights.RAW));
            assertTrue(e.getMessage().contains("truncated.safetensors"), e.getMessage());
        }
    }

    /**
     * An export of what loadModel loaded: the plain names hold the loaded (EMA) weights exactly in F32 and within
     * one rounding in BF16/F16, the caller's metadata travels, the optimizer state does not, and it cannot resume.
     */
    @Test
    void anExportOfALoadedModelKeepsItsWeightsAndMetadata(@TempDir Path dir) throws IOException {
        try (TensorScope s = TensorScope.open(); Trainer t = conditional(s, 2); TensorScope r = TensorScope.open()) {
            Path named = dir.resolve("named.safetensors");
            Checkpoint.save(t, named, Map.of(Checkpoint.KEY_CLASS_NAMES, Checkpoint.classNamesJson(List.of("a", "b")),
                    "user.note", "kept"));
            Checkpoint.Loaded ema = Checkpoint.loadModel(named, ops, null, r, Checkpoint.Weights.PREFER_EMA);
            Map<String, float[]> want = weights(ema.model());
            Path out = dir.resolve("export.safetensors");
            Checkpoint.exportWeights(out, ema, DType.F32);
            SafetensorsHeader h = Safetensors.readHeader(out);
            Set<String> names = new TreeSet<>();
            for (SafetensorsHeader.Entry e : h.entries()) {
                names.add(e.name());
                assertEquals(SafetensorsDType.F32, e.dtype(), e.name());
            }
            assertEquals(new TreeSet<>(t.model().module().stateDict().keySet()), names, "the state dict only");
            Map<String, String> meta = h.metadata();
            assertEquals("ema", meta.get(Checkpoint.KEY_WEIGHTS));
            assertEquals("kept", meta.get("user.note"));
            assertEquals("1", meta.get(Checkpoint.KEY_STEP));
            assertFalse(meta.containsKey(Checkpoint.KEY_OPTIM_STEPS) || meta.containsKey(Checkpoint.KEY_EMA_UPDATES));
            Checkpoint.Info info = Checkpoint.readInfo(out);
            assertEquals(List.of("a", "b"), info.classNames());
            assertEquals(t.config(), info.training());
            Checkpoint.Loaded back = Checkpoint.loadModel(out, ops, null, r, Checkpoint.Weights.PREFER_EMA);
            assertTrue(back.emaUsed(), "an export of EMA weights says so");
            assertBitwise("F32 export", want, weights(back.model()));
            CheckpointException e = assertThrows(CheckpointException.class, () -> t.restore(out));
            assertTrue(e.getMessage().contains("not a training checkpoint"), e.getMessage());
            // half precision: one rounding of each weight
            for (DType d : new DType[] {DType.BF16, DType.F16}) {
                Path half = dir.resolve(d + ".safetensors");
                Checkpoint.exportWeights(half, ema, d);
                for (SafetensorsHeader.Entry en : Safetensors.readHeader(half).entries()) {
                    assertEquals(d == DType.BF16 ? SafetensorsDType.BF16 : SafetensorsDType.F16, en.dtype());
                }
                assertTrue(Files.size(half) < Files.size(out) * 0.6, d + " halves the file");
                Map<String, float[]> got = weights(Checkpoint.loadModel(half, ops, null, r,
                        Checkpoint.Weights.PREFER_EMA).model());
                double ulp = d == DType.BF16 ? 0x1p-8 : 0x1p-11;
                for (Map.Entry<String, float[]> en : want.entrySet()) {
                    float[] w = en.getValue();
                    float[] g = got.get(en.getKey());
                    for (int i = 0; i < w.length; i++) {
                        assertEquals(w[i], g[i], Math.abs(w[i]) * ulp + 0x1p-24, d + " " + en.getKey() + "[" + i + "]");
                    }
                }
            }
            // F16 cannot hold 1e5: refused by name, nothing written
            Tensor w = ema.model().module().namedParameters().get("out_proj.weight").value();
            float[] v = w.toFloatArray();
            v[0] = 1e5f;
            w.copyFrom(v);
            Path big = dir.resolve("big.safetensors");
            IllegalArgumentException iae = assertThrows(IllegalArgumentException.class,
                    () -> Checkpoint.exportWeights(big, ema, DType.F16));
            assertTrue(iae.getMessage().contains("out_proj.weight") && iae.getMessage().contains("F16"),
                    iae.getMessage());
            assertFalse(Files.exists(big));
            assertThrows(IllegalArgumentException.class, () -> Checkpoint.exportWeights(big, ema, DType.I32));
            v[0] = 3.4e38f;                                    // beyond bfloat16's largest finite 0x1.fep127
            w.copyFrom(v);
            iae = assertThrows(IllegalArgumentException.class, () -> Checkpoint.exportWeights(big, ema, DType.BF16));
            assertTrue(iae.getMessage().contains("BF16 range"), iae.getMessage());
            v[0] = 0x1.fep127f;                                // the largest finite: exported as it is
            w.copyFrom(v);
            Checkpoint.exportWeights(big, ema, DType.BF16);
            assertTrue(Files.exists(big));
        }
    }

    /** A class-conditional trainer over a dataset with class names writes them into its checkpoints and exports. */
    @Test
    void aTrainersDatasetNamesTheClassesOfItsCheckpoints(@TempDir Path dir) throws IOException {
        Dataset points = points();
        int[] labels = new int[points.size()];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = i % 3;
        }
        List<String> names = List.of("north", "east", "south");
        Dataset named = Dataset.of(points.toArray(), points.sampleShape(), labels, names);
        try (TensorScope s = TensorScope.open();
             Trainer t = new Trainer(new MlpDenoiser(ops, s, TrainingTestSupport.mlp().withClasses(3), 3), ops, named,
                     busy(9, 4, 10))) {
            t.train(1);
            Path ck = dir.resolve("ck.safetensors");
            t.save(ck);
            assertEquals(names, Checkpoint.readInfo(ck).classNames());
            Path ex = dir.resolve("export.safetensors");
            Checkpoint.exportWeights(ex, t);
            assertEquals(names, Checkpoint.readInfo(ex).classNames());
        }
        // an unconditional model over the same data records none
        try (TensorScope s = TensorScope.open();
             Trainer t = new Trainer(new MlpDenoiser(ops, s, TrainingTestSupport.mlp(), 3), ops, named,
                     busy(9, 4, 10))) {
            Path ck = dir.resolve("uncond.safetensors");
            t.save(ck);
            assertEquals(List.of(), Checkpoint.readInfo(ck).classNames());
        }
    }

    /**
     * No writer makes a file its reader refuses (found by a library-embedding trial): the library's own keys are
     * refused as caller metadata, every value is read as readInfo reads it, and the data keys must fit the model.
     */
    @Test
    void callerMetadataIsCheckedBeforeAnythingIsWritten(@TempDir Path dir) throws IOException {
        try (TensorScope s = TensorScope.open(); Trainer t = conditional(s, 3); TensorScope r = TensorScope.open()) {
            Path out = dir.resolve("out.safetensors");
            Map<String, String> bad = new java.util.LinkedHashMap<>();
            bad.put(Checkpoint.KEY_WEIGHTS, "ema");                     // would make raw weights read as EMA
            bad.put(Checkpoint.KEY_STEP, "-1");
            bad.put(Checkpoint.KEY_OPTIM_STEPS, "3");
            bad.put(Checkpoint.KEY_CLASS_NAMES, Checkpoint.classNamesJson(List.of("a", "b")));
            bad.put(Checkpoint.KEY_DATA_FEATURE_NAMES, Checkpoint.stringsJson(List.of("x", "y", "z")));
            bad.put(Checkpoint.KEY_DATA_STANDARDIZATION, "garbage");
            bad.put(Checkpoint.KEY_DATA_IMAGE_SHAPE, "[1, 7, 7]");
            bad.put("", "empty key");
            bad.put(Checkpoint.KEY_DATA_SOURCE, "garbage");
            bad.put("user.big", "x".repeat(10_000_001));             // beyond what the header's reader accepts
            Checkpoint.Loaded loaded;
            Path ck = dir.resolve("ck.safetensors");
            t.save(ck);
            loaded = Checkpoint.loadModel(ck, ops, null, r, Checkpoint.Weights.PREFER_EMA);
            for (Map.Entry<String, String> e : bad.entrySet()) {
                Map<String, String> one = Map.of(e.getKey(), e.getValue());
                for (Runnable write : List.<Runnable>of(
                        () -> rethrow(() -> Checkpoint.save(t, out, one)),
                        () -> rethrow(() -> Checkpoint.exportWeights(out, t, one)),
                        () -> rethrow(() -> Checkpoint.exportWeights(out, loaded, DType.F32, one)))) {
                    IllegalArgumentException iae = assertThrows(IllegalArgumentException.class, write::run,
                            e.getKey() + " = " + e.getValue());
                    assertTrue(iae.getMessage().contains(e.getKey().isEmpty() ? "empty" : e.getKey()),
                            iae.getMessage().substring(0, Math.min(200, iae.getMessage().length())));
                    assertFalse(Files.exists(out), "nothing written for " + e.getKey());
                }
            }
            // typed accessors of the data keys
            org.diffusion4j.io.Standardization z = new org.diffusion4j.io.Standardization(new double[] {1, 2},
                    new double[] {3, 4});
            Path typed = dir.resolve("typed.safetensors");
            Checkpoint.save(t, typed, Map.of(Checkpoint.KEY_DATA_STANDARDIZATION, z.toJson()));
            assertEquals(z, Checkpoint.readInfo(typed).standardization());
            assertNull(Checkpoint.readInfo(typed).imageShape());
            Path tampered = rewrite(typed, dir.resolve("tampered.safetensors"),
                    (tensors, meta) -> meta.put(Checkpoint.KEY_DATA_IMAGE_SHAPE, "[2, 1, 1]"));
            CheckpointException ce = assertThrows(CheckpointException.class, () -> Checkpoint.readInfo(tampered));
            assertTrue(ce.getMessage().contains(Checkpoint.KEY_DATA_IMAGE_SHAPE), ce.getMessage());
            // the caller's data keys replace the loaded file's when re-exporting
            Checkpoint.exportWeights(out, loaded, DType.F32,
                    Map.of(Checkpoint.KEY_CLASS_NAMES, Checkpoint.classNamesJson(List.of("p", "q", "r"))));
            assertEquals(List.of("p", "q", "r"), Checkpoint.readInfo(out).classNames());
            // a trainer's export records its step and seed like a checkpoint does
            Path ex = dir.resolve("trainer-export.safetensors");
            Checkpoint.exportWeights(ex, t);
            assertEquals(1, Checkpoint.readInfo(ex).step());
            assertEquals(9, Checkpoint.readInfo(ex).seed());
            // another model's EMA is refused by shape
            MlpDenoiser wide = new MlpDenoiser(ops, r, new MlpDenoiser.Config(2, 32, 2, 16, 1000.0, 3), 1);
            IllegalArgumentException iae = assertThrows(IllegalArgumentException.class,
                    () -> Checkpoint.exportWeights(dir.resolve("x.safetensors"), wide, t.ema()));
            assertTrue(iae.getMessage().contains("not this model's EMA"), iae.getMessage());
        }
    }

    private interface IoAction {
        void run() throws IOException;
    }

    private static void rethrow(IoAction a) {
        try {
            a.run();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Class names travel as caller metadata; malformed ones are named when the file is read. */
    @Test
    void classNamesRoundTripAndMalformedOnesAreRefused(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("ck.safetensors");
        try (TensorScope s = TensorScope.open(); Trainer t = conditional(s, 4)) {
            t.save(f);
            List<String> names = List.of("setosa", "versicolor", "virginica, \"tall\"", "Ünïcode");
            Path named = dir.resolve("named.safetensors");
            Checkpoint.save(t, named, Map.of(Checkpoint.KEY_CLASS_NAMES, Checkpoint.classNamesJson(names)));
            assertEquals(names, Checkpoint.readInfo(named).classNames());
            assertEquals(List.of(), Checkpoint.readInfo(f).classNames(), "a file without names has none");
            // names the file could not be read back with are refused when saving: nothing is written
            Path refused = dir.resolve("refused.safetensors");
            for (String bad : new String[] {"alpha,beta,gamma,delta", "[\"a\", \"b\"]"}) {
                IllegalArgumentException iae = assertThrows(IllegalArgumentException.class,
                        () -> Checkpoint.save(t, refused, Map.of(Checkpoint.KEY_CLASS_NAMES, bad)));
                assertTrue(iae.getMessage().contains(Checkpoint.KEY_CLASS_NAMES), iae.getMessage());
                assertFalse(Files.exists(refused));
            }
            assertThrows(IllegalArgumentException.class, () -> Checkpoint.save(t, refused,
                    Map.of(Checkpoint.KEY_DATA_FEATURE_NAMES, "[1, 2]")));
            assertThrows(IllegalArgumentException.class, () -> Checkpoint.classNamesJson(List.of("a", "a")));
            assertThrows(IllegalArgumentException.class, () -> Checkpoint.classNamesJson(List.of()));
            assertThrows(IllegalArgumentException.class, () -> Checkpoint.classNamesJson(List.of("a", "")));
            String[][] bad = {{"[\"a\", 3]", "element 1 is not a string"}, {"{\"a\": 1}", "not a JSON array"},
                    {"[\"a\", \"a\"]", "the name 'a' of an earlier class"}, {"[\"a\"", "not JSON"}};
            for (String[] b : bad) {
                Path p = rewrite(named, dir.resolve("bad.safetensors"),
                        (tensors, meta) -> meta.put(Checkpoint.KEY_CLASS_NAMES, b[0]));
                CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.readInfo(p));
                assertTrue(e.getMessage().contains(Checkpoint.KEY_CLASS_NAMES) && e.getMessage().contains(b[1])
                        && e.getMessage().contains("bad.safetensors"), e.getMessage());
            }
        }
    }

    @Test
    void aFailedSaveLeavesThePreviousCheckpointIntact(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("ck.safetensors");
        try (TensorScope s = TensorScope.open(); Trainer t = trained(s, f)) {
            byte[] before = Files.readAllBytes(f);
            t.train(1);
            // an interrupted thread's channel write fails (ClosedByInterruptException) in the middle of the save
            Thread.currentThread().interrupt();
            try {
                IOException e = assertThrows(IOException.class, () -> t.save(f));
                assertTrue(e instanceof java.io.InterruptedIOException
                        && e.getCause() instanceof java.nio.channels.ClosedByInterruptException
                        && e.getMessage().contains(f.toAbsolutePath().normalize().toString()),
                        "expected the write itself to fail, naming the file, got " + e);
            } finally {
                Thread.interrupted();
            }
            assertArrayEquals(before, Files.readAllBytes(f), "the previous checkpoint changed");
            try (Stream<Path> files = Files.list(dir)) {
                assertEquals(List.of(f), files.toList(), "a temporary file was left behind");
            }
            t.save(f);     // and the next save works
            assertEquals("4", Checkpoint.readInfo(f).metadata().get("d4j.step"));
        }
    }

    /**
     * Fine-tuning loads ({@code keepPrefixes}): a DiT of another class count (or none) takes every tensor but the
     * class embedder bit for bit from a 3-class file, the class embedder keeps its own initialisation, and a file
     * of another architecture (heads) or a plain load into another class count is still refused.
     */
    @Test
    void loadWeightsKeepingTheClassEmbedderFitsAnotherClassCount(@TempDir Path dir) throws IOException {
        try (TensorScope scope = TensorScope.open()) {
            DiT.Config three = new DiT.Config(8, 1, 4, 16, 1, 2, 4.0, 3, 0.1, 32, 1000.0);
            DiT src = randomDiT(scope, three, 77);
            Path file = dir.resolve("three.safetensors");
            Checkpoint.exportWeights(file, src, null);
            Map<String, float[]> source = weights(src);
            for (int k : new int[] {0, 5}) {
                DiT dst = new DiT(ops, attention, scope, (DiT.Config) Models.withClasses(three, k, 0.1), 2);
                Map<String, float[]> fresh = weights(dst);
                CheckpointException plain = assertThrows(CheckpointException.class,
                        () -> Checkpoint.loadWeights(file, dst, be, Checkpoint.Weights.PREFER_EMA));
                assertTrue(plain.getMessage().contains("numClasses"), plain.getMessage());
                assertBitwise("unchanged after a refused load", fresh, weights(dst));

                assertFalse(Checkpoint.loadWeights(file, dst, be, Checkpoint.Weights.PREFER_EMA,
                        Set.of(Checkpoint.CLASS_EMBEDDER)));
                Map<String, float[]> expected = new LinkedHashMap<>();
                for (String name : fresh.keySet()) {
                    expected.put(name, name.startsWith(Checkpoint.CLASS_EMBEDDER) ? fresh.get(name)
                            : source.get(name));
                }
                assertEquals(k > 0, expected.keySet().stream().anyMatch(n -> n.startsWith("y_embedder.")));
                assertBitwise("classes " + k, expected, weights(dst));
            }
            // the label-dropout probability is a training setting: a plain load ignores it
            DiT otherDropout = new DiT(ops, attention, scope, (DiT.Config) Models.withClasses(three, 3, 0.3), 5);
            Checkpoint.loadWeights(file, otherDropout, be, Checkpoint.Weights.PREFER_EMA);
            assertBitwise("classDropProb 0.3", source, weights(otherDropout));
            DiT fourHeads = new DiT(ops, attention, scope, new DiT.Config(8, 1, 4, 16, 1, 4, 4.0, 5, 0.1, 32, 1000.0),
                    3);
            CheckpointException heads = assertThrows(CheckpointException.class, () -> Checkpoint.loadWeights(file,
                    fourHeads, be, Checkpoint.Weights.PREFER_EMA, Set.of(Checkpoint.CLASS_EMBEDDER)));
            assertTrue(heads.getMessage().contains("\"heads\":2"), heads.getMessage());
            assertThrows(IllegalArgumentException.class, () -> Checkpoint.loadWeights(file, fourHeads, be,
                    Checkpoint.Weights.PREFER_EMA, Set.of("")));
        }
    }

    /** A DiT of {@code config} whose every tensor is Philox noise of {@code seed}: no zero tensor to hide a miss. */
    private static DiT randomDiT(TensorScope scope, DiT.Config config, long seed) {
        DiT dit = new DiT(ops, attention, scope, config, 1);
        long stream = 0;
        for (var p : dit.module().namedParameters().values()) {
            be.randn(p.value(), seed, stream++);
        }
        return dit;
    }

    /**
     * Fine-tuning at another resolution ({@link Checkpoint#POS_EMBED} kept): a DiT for 16 × 16 images takes every
     * trained tensor of an 8 × 8 file bit for bit and keeps the position embedding it computed for its own token grid;
     * a plain load, or another channel count, is refused.
     */
    @Test
    void loadWeightsKeepingThePosEmbedFitsAnotherImageSize(@TempDir Path dir) throws IOException {
        try (TensorScope scope = TensorScope.open()) {
            DiT.Config eight = new DiT.Config(8, 1, 4, 16, 1, 2, 4.0, 3, 0.1, 32, 1000.0);
            DiT src = randomDiT(scope, eight, 78);
            Path file = dir.resolve("eight.safetensors");
            Checkpoint.exportWeights(file, src, null);
            Map<String, float[]> source = weights(src);
            DiT dst = new DiT(ops, attention, scope, eight.withImageSize(16), 2);
            float[] ownPos = dst.posEmbed().toFloatArray();
            CheckpointException plain = assertThrows(CheckpointException.class,
                    () -> Checkpoint.loadWeights(file, dst, be, Checkpoint.Weights.PREFER_EMA));
            assertTrue(plain.getMessage().contains("imageSize"), plain.getMessage());
            Checkpoint.loadWeights(file, dst, be, Checkpoint.Weights.PREFER_EMA, Set.of(Checkpoint.POS_EMBED));
            assertBitwise("every trained tensor", source, weights(dst));
            assertEquals(16 * 16 / 16 * 16, ownPos.length, "16 tokens of width 16");
            assertArrayEquals(ownPos, dst.posEmbed().toFloatArray(), "its own position embedding");
            DiT fresh16 = new DiT(ops, attention, scope, eight.withImageSize(16), 9);
            assertArrayEquals(fresh16.posEmbed().toFloatArray(), dst.posEmbed().toFloatArray(),
                    "the sin-cos table of a 4 x 4 grid");
            DiT rgb = new DiT(ops, attention, scope, new DiT.Config(16, 3, 4, 16, 1, 2, 4.0, 3, 0.1, 32, 1000.0), 3);
            CheckpointException channels = assertThrows(CheckpointException.class, () -> Checkpoint.loadWeights(file,
                    rgb, be, Checkpoint.Weights.PREFER_EMA, Set.of(Checkpoint.POS_EMBED)));
            assertTrue(channels.getMessage().contains("\"channels\":1"), channels.getMessage());
            assertThrows(IllegalArgumentException.class, () -> eight.withImageSize(10), "patch 4 must divide 10");
        }
    }
}
