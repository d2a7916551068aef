package org.diffusion4j.cli;

import org.diffusion4j.Backends;
import org.diffusion4j.io.Dataset;
import org.diffusion4j.io.Datasets;
import org.diffusion4j.io.ImageGrid;
import org.diffusion4j.io.Npy;
import org.diffusion4j.nn.DenoiserModel;
import org.diffusion4j.nn.DiT;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.sampling.Guidance;
import org.diffusion4j.sampling.NoiseSeeds;
import org.diffusion4j.sampling.SamplerContext;
import org.diffusion4j.sampling.Samplers;
import org.diffusion4j.sampling.SamplingGrid;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.diffusion4j.training.Checkpoint;
import org.diffusion4j.training.Trainer;
import org.diffusion4j.training.TrainingConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The README's "Training from Java" example, call for call, on a tiny generated IDX folder (16×16 images, 3 classes,
 * a small DiT, a few steps) instead of Fashion-MNIST, so the documented API cannot drift from the code.
 */
class ReadmeExampleTest {

    @Test
    void theReadmeTrainingExampleRunsAndWritesALoadableCheckpoint(@TempDir Path dir) throws IOException {
        Path folder = TinyData.idxFolder(dir.resolve("data"), 48, 12);
        Path file = dir.resolve("dit.safetensors");
        List<Double> losses = new ArrayList<>();
        // --- as in README.md (sizes scaled down) ---
        try (Backend be = Backends.create("cpu"); NnOps ops = NnOps.forBackend(be);
             AttentionOps attention = AttentionOps.forBackend(be); TensorScope weights = TensorScope.open()) {
            Dataset data = Datasets.load(folder, Datasets.Options.defaults());
            DiT model = new DiT(ops, attention, weights, DiT.Config.of(16, 1, 4, 32, 2, 2, 3), /*seed*/ 0);
            try (Trainer trainer = new Trainer(model, ops, data, TrainingConfig.defaults(/*seed*/ 0, 8, 6))) {
                trainer.addListener(s -> losses.add(s.loss()));
                trainer.train(6);
                Checkpoint.save(trainer, file);
            }
        }
        // --- end of the example ---
        assertEquals(6, losses.size());
        assertTrue(losses.stream().allMatch(Double::isFinite), losses.toString());
        assertTrue(Files.size(file) > 0);
        Checkpoint.Info info = Checkpoint.readInfo(file);
        assertEquals("dit", info.modelKind());
        assertEquals(6, info.step());
    }

    /**
     * The README's "a checkpoint written by train" sampling example, call for call (16×16 images, 3 classes, 6
     * samples), against the command it says it reproduces: the same bits.
     */
    @Test
    void theReadmeCheckpointSamplingExampleReproducesTheCommand(@TempDir Path dir) throws IOException {
        Path folder = TinyData.idxFolder(dir.resolve("data"), 48, 12);
        Path runDir = dir.resolve("run");
        TrainSampleEvalTest.Result t = TrainSampleEvalTest.run("train", "--data", folder.toString(), "--out",
                runDir.toString(), "--model", "dit", "--cond", "--hidden", "32", "--depth", "1", "--heads", "2",
                "--patch", "4", "--steps", "4", "--batch", "8", "--sample-every", "0", "--held-out-loss-every", "0",
                "--backend", "cpu");
        assertEquals(0, t.code(), t::toString);
        Path raw = dir.resolve("cli.npy");
        TrainSampleEvalTest.Result c = TrainSampleEvalTest.run("sample", "--checkpoint", runDir.toString(), "--n", "6",
                "--batch", "6", "--steps", "5", "--guidance", "2", "--seed", "0", "--backend", "cpu", "--out",
                dir.resolve("cli.png").toString(), "--save-raw", raw.toString());
        assertEquals(0, c.code(), c::toString);
        float[] java;
        // --- as in README.md (sizes scaled down) ---
        try (Backend be = Backends.create("cpu"); NnOps ops = NnOps.forBackend(be);
             AttentionOps attention = AttentionOps.forBackend(be); TensorScope scope = TensorScope.open()) {
            Checkpoint.Loaded run = Checkpoint.loadModel(runDir.resolve("checkpoints/latest.safetensors"), ops,
                    attention, scope, Checkpoint.Weights.PREFER_EMA);
            DenoiserModel model = run.model();
            TrainingConfig training = run.info().training();
            int b = 6;
            int k = model.numClasses();
            int[] labels = new int[b];
            int[] nulls = new int[b];
            for (int i = 0; i < b; i++) {
                labels[i] = i % k;
                nulls[i] = k;
            }
            SamplingGrid grid = SamplingGrid.standard(training.buildNoiseSchedule(), 5, /*flowSampler*/ true);
            Tensor x = be.empty(scope, DType.F32, b, 1, 16, 16);
            try (var ctx = SamplerContext.builder(be, model, training.objective().prediction())
                    .condition(be.fromArray(scope, labels, b)).guidance(Guidance.of(2), be.fromArray(scope, nulls, b))
                    .noise(NoiseSeeds.batch(/*seed*/ 0, NoiseSeeds.SAMPLE_STREAM, 0, b)).build()) {
                ctx.initialNoise(x, grid);
                ctx.sample(Samplers.flowMidpoint(), x, grid);
            }
            ImageGrid.write(dir.resolve("samples.png"), x, /*columns*/ 3, /*padding*/ 2);
            java = x.toFloatArray();
        }
        // --- end of the example ---
        assertArrayEquals(Npy.read(raw).values(), java, "the command's samples, bit for bit");
        assertTrue(Files.size(dir.resolve("samples.png")) > 0);
    }
}
