package org.diffusion4j.cli;

import org.diffusion4j.io.Npy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code sample --negative-class}: guidance away from a class. With one Euler step of the flow ODE the guided sample
 * is exactly the combination {@code x_neg + w·(x_cond − x_neg)} of the two unguided ones (the update is linear in
 * the model's output), which the test checks; bad uses are refused with the option named.
 */
class NegativeClassTest {

    private static float[] sample(Path run, Path dir, String name, String... extra) throws IOException {
        Path raw = dir.resolve(name + ".npy");
        String[] base = {"sample", "--checkpoint", run.toString(), "--n", "6", "--batch", "6", "--sampler",
            "flow-euler", "--steps", "1", "--seed", "7", "--backend", "cpu", "--out", dir.resolve(name + ".png")
            .toString(), "--save-raw", raw.toString()};
        String[] a = java.util.stream.Stream.concat(java.util.Arrays.stream(base), java.util.Arrays.stream(extra))
                .toArray(String[]::new);
        TrainSampleEvalTest.Result r = TrainSampleEvalTest.run(a);
        assertEquals(0, r.code(), r::toString);
        return Npy.load(raw).toArray();
    }

    @Test
    void guidanceAwayFromAClassIsTheLinearCombinationAndBadUsesAreRefused(@TempDir Path dir) throws IOException {
        Path data = TinyData.idxFolder(dir.resolve("tiny"), 48, 12);
        Path run = dir.resolve("run");
        TrainSampleEvalTest.Result t = TrainSampleEvalTest.run("train", "--data", data.toString(), "--out",
                run.toString(), "--model", "dit", "--cond", "--hidden", "32", "--depth", "1", "--heads", "2",
                "--patch", "4", "--batch", "8", "--steps", "20", "--lr", "3e-3", "--sample-steps", "2",
                "--backend", "cpu", "--seed", "2");
        assertEquals(0, t.code(), t::toString);

        float[] cond = sample(run, dir, "cond", "--class", "0", "--guidance", "1");
        float[] neg = sample(run, dir, "neg", "--class", "2", "--guidance", "1");
        float[] guided = sample(run, dir, "guided", "--class", "0", "--negative-class", "2", "--guidance", "3");
        float[] plain = sample(run, dir, "plain", "--class", "0", "--guidance", "3");
        double worst = 0;
        double differs = 0;
        for (int i = 0; i < cond.length; i++) {
            double expected = neg[i] + 3.0 * (cond[i] - neg[i]);
            worst = Math.max(worst, Math.abs(guided[i] - expected));
            differs = Math.max(differs, Math.abs(guided[i] - plain[i]));
        }
        assertTrue(worst < 1e-4, "guided sample off the combination by " + worst);
        assertTrue(differs > 1e-2, "the negative class changes the samples (by " + differs + ")");

        TrainSampleEvalTest.Result r = TrainSampleEvalTest.run("sample", "--checkpoint", run.toString(), "--n", "2",
                "--negative-class", "1", "--guidance", "1", "--out", dir.resolve("x.png").toString());
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("--negative-class guides away from a class: it needs --guidance above 1 (got 1"),
                r::toString);
        r = TrainSampleEvalTest.run("sample", "--checkpoint", run.toString(), "--n", "2", "--negative-class", "1",
                "--guidance", "0.5", "--out", dir.resolve("x.png").toString());
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("below 1 it would pull towards the class"), r::toString);
        r = TrainSampleEvalTest.run("sample", "--checkpoint", run.toString(), "--n", "2", "--class", "1",
                "--negative-class", "1", "--guidance", "3", "--out", dir.resolve("x.png").toString());
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("--negative-class 1 is the --class"), r::toString);
        r = TrainSampleEvalTest.run("sample", "--checkpoint", run.toString(), "--n", "2", "--negative-class", "7",
                "--out", dir.resolve("x.png").toString());
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("--negative-class 7 is outside [0, 3)"), r::toString);
    }
}
