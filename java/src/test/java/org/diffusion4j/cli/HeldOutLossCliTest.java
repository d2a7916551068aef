package org.diffusion4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code train --held-out-loss-every}: the held-out losses land in held_out_loss.csv and run.json, do not change the
 * training (the checkpoint is bit for bit that of a run without them), and a run stopped and resumed writes the same
 * file as one that went straight through.
 */
class HeldOutLossCliTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static String[] train(Path data, Path out, String every, String... more) {
        List<String> a = new ArrayList<>(List.of("train", "--data", data.toString(), "--out", out.toString(),
                "--model", "dit", "--cond", "--hidden", "32", "--depth", "1", "--heads", "2", "--patch", "4",
                "--batch", "8", "--steps", "10", "--checkpoint-every", "5", "--sample-every", "0", "--sample-steps",
                "2", "--backend", "cpu", "--seed", "4", "--held-out-loss-every", every));
        a.addAll(Arrays.asList(more));
        return a.toArray(String[]::new);
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (var files = Files.walk(from)) {
            for (Path p : files.toList()) {
                Files.copy(p, to.resolve(from.relativize(p).toString()));
            }
        }
    }

    @Test
    void heldOutLossesAreWrittenLeaveTrainingAloneAndSurviveAResume(@TempDir Path dir) throws IOException {
        Path data = TinyData.idxFolder(dir.resolve("tiny"), 40, 20);
        Path with = dir.resolve("with");
        TrainSampleEvalTest.Result r = TrainSampleEvalTest.run(train(data, with, "4"));
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("held-out    loss "), r::toString);
        List<String> rows = Files.readAllLines(with.resolve("held_out_loss.csv"));
        assertEquals("step,held_out_loss", rows.get(0));
        assertEquals(List.of("4", "8", "10"), rows.subList(1, rows.size()).stream().map(l -> l.split(",")[0])
                .toList(), rows.toString());
        double last = Double.parseDouble(rows.get(3).split(",")[1]);
        assertTrue(Double.isFinite(last) && last > 0, rows.toString());
        JsonNode results = JSON.readTree(with.resolve("run.json").toFile()).get("results");
        assertEquals(last, results.get("heldOutLoss").asDouble());
        assertEquals(10, results.get("heldOutLossStep").asLong());
        // checkpoints/best.safetensors: the trainer at the lowest held-out loss, with that loss in its metadata
        int argmin = 1;
        for (int i = 2; i < rows.size(); i++) {
            if (Double.parseDouble(rows.get(i).split(",")[1]) < Double.parseDouble(rows.get(argmin).split(",")[1])) {
                argmin = i;
            }
        }
        Path best = with.resolve("checkpoints/best.safetensors");
        org.diffusion4j.training.Checkpoint.Info bi = org.diffusion4j.training.Checkpoint.readInfo(best);
        assertEquals(Long.parseLong(rows.get(argmin).split(",")[0]), bi.step(), rows.toString());
        assertEquals(Double.parseDouble(rows.get(argmin).split(",")[1]),
                Double.parseDouble(bi.metadata().get(TrainCommand.KEY_HELD_OUT_LOSS)), rows.toString());
        assertTrue(r.out().contains("best        held-out loss"), r::toString);
        TrainSampleEvalTest.Result info = TrainSampleEvalTest.run("info", "--checkpoint", best.toString());
        assertTrue(info.out().contains("held-out    loss " + String.format(java.util.Locale.ROOT, "%.4f",
                Double.parseDouble(bi.metadata().get(TrainCommand.KEY_HELD_OUT_LOSS))) + " at step " + bi.step()),
                info::toString);

        Path without = dir.resolve("without");
        r = TrainSampleEvalTest.run(train(data, without, "0"));
        assertEquals(0, r.code(), r::toString);
        assertFalse(Files.exists(without.resolve("held_out_loss.csv")));
        assertFalse(Files.exists(without.resolve("checkpoints/best.safetensors")), "no held-out loss, no best");
        assertTrue(JSON.readTree(without.resolve("run.json").toFile()).get("results").get("heldOutLoss").isNull());
        assertArrayEquals(Files.readAllBytes(without.resolve("checkpoints/step-000010.safetensors")),
                Files.readAllBytes(with.resolve("checkpoints/step-000010.safetensors")), "training is unchanged");

        r = TrainSampleEvalTest.run(train(data, dir.resolve("negative"), "-1"));
        assertTrue(r.code() != 0 && r.err().contains("--held-out-loss-every must be >= 0 (0: none), got -1"),
                r::toString);
        assertFalse(Files.exists(dir.resolve("negative")));

        // stopped after step 5 (its checkpoint made the latest, the later files removed), then resumed
        Path cut = dir.resolve("cut");
        copyTree(with, cut);
        Files.copy(cut.resolve("checkpoints/step-000005.safetensors"), cut.resolve("checkpoints/latest.safetensors"),
                StandardCopyOption.REPLACE_EXISTING);
        Files.delete(cut.resolve("checkpoints/step-000010.safetensors"));
        r = TrainSampleEvalTest.run("train", "--resume", "--out", cut.toString());
        assertEquals(0, r.code(), r::toString);
        assertEquals(rows, Files.readAllLines(cut.resolve("held_out_loss.csv")), "the same curve after a resume");
        assertArrayEquals(Files.readAllBytes(best), Files.readAllBytes(cut.resolve("checkpoints/best.safetensors")),
                "the resumed run keeps the same best (its losses repeat bit for bit, and only a lower one replaces it)");

        // found by a user trial: a damaged best.safetensors (or one from steps a resume drops) was kept or silently
        // replaced by a worse one; it is removed with a note, and written again only for a loss below the curve's
        Path damaged = dir.resolve("damaged");
        copyTree(cut, damaged);
        Files.copy(damaged.resolve("checkpoints/step-000005.safetensors"),
                damaged.resolve("checkpoints/latest.safetensors"), StandardCopyOption.REPLACE_EXISTING);
        Files.delete(damaged.resolve("checkpoints/step-000010.safetensors"));
        Files.write(damaged.resolve("checkpoints/best.safetensors"), new byte[] {1, 2, 3});
        r = TrainSampleEvalTest.run("train", "--resume", "--out", damaged.toString());
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("best.safetensors cannot be read") && r.out().contains("removed"), r::toString);
        boolean bestAfterStep5 = bi.step() > 5;                   // then the resumed steps measure it again
        assertEquals(bestAfterStep5, Files.exists(damaged.resolve("checkpoints/best.safetensors")), r::toString);
        if (bestAfterStep5) {
            assertArrayEquals(Files.readAllBytes(best),
                    Files.readAllBytes(damaged.resolve("checkpoints/best.safetensors")));
        }

        // a stop in a step that was due a held-out loss (checkpoint of step 8 written, its measurement not): the
        // resume measures it first, and the curve is the uninterrupted run's
        Path every4 = dir.resolve("every4");
        List<String> a = new ArrayList<>(Arrays.asList(train(data, every4, "4")));
        a.set(a.indexOf("--checkpoint-every") + 1, "4");
        r = TrainSampleEvalTest.run(a.toArray(String[]::new));
        assertEquals(0, r.code(), r::toString);
        List<String> full = Files.readAllLines(every4.resolve("held_out_loss.csv"));
        Path gap = dir.resolve("gap");
        copyTree(every4, gap);
        Files.copy(gap.resolve("checkpoints/step-000008.safetensors"), gap.resolve("checkpoints/latest.safetensors"),
                StandardCopyOption.REPLACE_EXISTING);
        Files.delete(gap.resolve("checkpoints/step-000010.safetensors"));
        Files.write(gap.resolve("held_out_loss.csv"), full.subList(0, 2));        // header and step 4 only
        r = TrainSampleEvalTest.run("train", "--resume", "--out", gap.toString());
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("at step 8 (measured on resuming"), r::toString);
        assertEquals(full, Files.readAllLines(gap.resolve("held_out_loss.csv")));
    }
}
