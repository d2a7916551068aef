package org.diffusion4j.cli;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.io.Safetensors;
import org.diffusion4j.io.SafetensorsFile;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.diffusion4j.training.Checkpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * Files written by an earlier version (test resources {@code compat/v87c9e89}, see its README) still load, sample and
 * resume: the resumed run ends bit for bit where that version's own resume ended.
 */
class CompatibilityTest {

    static Path fixture() throws URISyntaxException {
        return Path.of(CompatibilityTest.class.getResource("/compat/v87c9e89/README.md").toURI()).getParent();
    }

    static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> s = Files.walk(from)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                Path q = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(q);
                } else {
                    Files.copy(p, q);
                }
            }
        }
    }

    @Test
    void aRunOfTheEarlierVersionResumesBitExactly(@TempDir Path dir) throws Exception {
        Path old = fixture();
        Path run = dir.resolve("run4");
        copyTree(old.resolve("run4"), run);
        Path data = dir.resolve("points.csv");
        Files.copy(old.resolve("points.csv"), data);

        Checkpoint.Info info = Checkpoint.readInfo(run.resolve("checkpoints/latest.safetensors"));
        assertEquals(4, info.step());
        assertFalse(info.training().randomFlip(), "a config written before randomFlip existed reads as false");
        assertNull(info.metadata().get(Checkpoint.KEY_DATA_STANDARDIZATION));

        // the data moved (run.json names the writer's path): accepted by its fingerprint
        TrainSampleEvalTest.Result r = TrainSampleEvalTest.run("train", "--out", run.toString(), "--resume",
                "--steps", "6", "--data", data.toString(), "--threads", "1", "--backend", "cpu");
        assertEquals(0, r.code(), r::toString);
        try (CpuBackend cpu = new CpuBackend(1); TensorScope s = TensorScope.open()) {
            SafetensorsFile want = Safetensors.read(old.resolve("expected-step6.safetensors"), s, cpu);
            SafetensorsFile got = Safetensors.read(run.resolve("checkpoints/latest.safetensors"), s, cpu);
            assertEquals(want.tensors().keySet(), got.tensors().keySet());
            for (Map.Entry<String, Tensor> e : want.tensors().entrySet()) {
                assertArrayEquals(e.getValue().toFloatArray(), got.tensor(e.getKey()).toFloatArray(), e.getKey());
            }
            assertEquals(want.metadata().get(Checkpoint.KEY_STEP), got.metadata().get(Checkpoint.KEY_STEP));
        }

        TrainSampleEvalTest.Result smp = TrainSampleEvalTest.run("sample", "--checkpoint", run.toString(), "--n", "8",
                "--steps", "2", "--backend", "cpu", "--out", dir.resolve("s.png").toString());
        assertEquals(0, smp.code(), smp::toString);
    }
}
