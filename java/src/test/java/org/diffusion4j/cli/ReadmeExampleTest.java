package org.diffusion4j.cli;

import org.diffusion4j.Backends;
import org.diffusion4j.io.Dataset;
import org.diffusion4j.io.Datasets;
import org.diffusion4j.nn.DiT;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.tensor.Backend;
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
}
