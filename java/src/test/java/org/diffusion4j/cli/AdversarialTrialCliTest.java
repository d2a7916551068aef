package org.diffusion4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Findings of an adversarial trial of the CLI (2026-11-30), each refused early in one line that names the cause:
 * sampler names in any case, samples that overflow float32 in the data's units (no file written), empty paths, a
 * folder as {@code --samples}, options checked before the slow part, a run.json edited by hand, a non-safetensors
 * file given to {@code info}, notes for options that do not apply.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AdversarialTrialCliTest {

    private Path dir;
    private Path vRun;
    private Path csv;

    private static TrainSampleEvalTest.Result run(String... args) {
        return TrainSampleEvalTest.run(args);
    }

    private static void refused(TrainSampleEvalTest.Result r, String... fragments) {
        assertNotEquals(0, r.code(), r::toString);
        assertEquals(1, r.err().strip().lines().count(), () -> "one line: " + r);
        for (String f : fragments) {
            assertTrue(r.err().contains(f), () -> "'" + f + "' in: " + r);
        }
    }

    @BeforeAll
    void train(@TempDir Path tmp) throws IOException {
        dir = tmp;
        StringBuilder b = new StringBuilder("x,y\n");
        for (int i = 0; i < 64; i++) {
            b.append(Math.sin(i)).append(',').append(Math.cos(2 * i)).append('\n');
        }
        csv = dir.resolve("pts.csv");
        Files.writeString(csv, b);
        vRun = dir.resolve("v");
        TrainSampleEvalTest.Result r = run("train", "--data", csv.toString(), "--out", vRun.toString(), "--objective",
                "v", "--steps", "3", "--batch", "8", "--sample-every", "0", "--backend", "cpu");
        assertEquals(0, r.code(), r::toString);
    }

    @Test
    void samplerNamesAreCheckedInAnyCase() {
        refused(run("sample", "--checkpoint", vRun.toString(), "--sampler", "FLOW-EULER", "--n", "2", "--backend",
                "cpu", "--out", dir.resolve("f.png").toString()), "flow-matching model");
        refused(run("train", "--data", csv.toString(), "--out", dir.resolve("flowname").toString(), "--objective",
                "v", "--sampler", " Flow-Euler", "--steps", "2", "--backend", "cpu"), "flow-matching model");
        assertFalse(Files.exists(dir.resolve("flowname")));
    }

    @Test
    void samplesBeyondFloat32InTheDataUnitsAreRefusedWithoutWritingAnything() throws IOException {
        StringBuilder b = new StringBuilder("x\n");
        for (int i = 0; i < 64; i++) {
            b.append(i % 2 == 0 ? "3.4e38" : "-3.4e38").append('\n');
        }
        Path huge = dir.resolve("huge.csv");
        Files.writeString(huge, b);
        Path out = dir.resolve("huge-run");
        TrainSampleEvalTest.Result t = run("train", "--data", huge.toString(), "--out", out.toString(), "--steps",
                "2", "--batch", "8", "--sample-every", "0", "--backend", "cpu");
        assertEquals(0, t.code(), t::toString);
        Path raw = dir.resolve("huge.npy");
        TrainSampleEvalTest.Result s = run("sample", "--checkpoint", out.toString(), "--n", "64", "--steps", "2",
                "--backend", "cpu", "--out", dir.resolve("huge.png").toString(), "--save-raw", raw.toString());
        refused(s, "in the data's units", "float32");
        assertFalse(Files.exists(raw), "no raw file of infinities");
        assertFalse(Files.exists(dir.resolve("huge.png")));
    }

    @Test
    void emptyPathsFoldersAndLateChecksAreRefusedFirst() throws IOException {
        refused(run("train", "--data", "", "--out", dir.resolve("e1").toString(), "--backend", "cpu"),
                "--data is empty");
        refused(run("train", "--data", csv.toString(), "--out", "", "--backend", "cpu"), "--out is empty");
        refused(run("eval", "--samples", dir.toString(), "--data", csv.toString(), "--backend", "cpu"),
                "is a folder");
        refused(run("eval", "--checkpoint", vRun.toString(), "--classifier-epochs", "0", "--backend", "cpu"),
                "--classifier-epochs must be >= 1, got 0");
        refused(run("demo", "--samples", "100000000", "--out", dir.resolve("d.png").toString()),
                "--samples must be in [2, 100000]");
        refused(run("info", "--checkpoint", vRun.resolve("run.json").toString()), "is not a safetensors file",
                "JSON");
        TrainSampleEvalTest.Result z = run("sample", "--checkpoint", vRun.toString(), "--n", "4", "--steps", "2",
                "--zoom", "3", "--backend", "cpu", "--out", dir.resolve("z.png").toString());
        assertEquals(0, z.code(), z::toString);
        assertTrue(z.out().contains("--zoom shapes image grids"), z::toString);
    }

    /** Round 2: a stray label of 100000 built a 100001-class model whose sample grid took 24 GB. */
    @Test
    void aStrayLargeLabelIsRefusedAndEmptyImageFoldersToo() throws IOException {
        int n = 40;
        float[] v = new float[n * 2];
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            labels[i] = i % 2;
            v[2 * i] = i;
            v[2 * i + 1] = -i;
        }
        labels[3] = 100_000;
        Path x = dir.resolve("stray.npy");
        org.diffusion4j.io.Npy.write(x, v, n, 2);
        org.diffusion4j.io.Npy.writeInt32(dir.resolve("stray.labels.npy"), labels, n);
        refused(run("train", "--data", x.toString(), "--out", dir.resolve("stray").toString(), "--cond", "--steps",
                "2", "--backend", "cpu"), "100001 classes", "largest label is 100000", "more classes than samples");
        assertFalse(Files.exists(dir.resolve("stray")));
        refused(run("sample", "--checkpoint", vRun.toString(), "--n", "2", "--backend", "cpu", "--out",
                dir.resolve("e.png").toString(), "--save-images", ""), "--save-images is empty");
    }

    @Test
    void aRunJsonEditedByHandIsNamedAsTheCause() throws IOException {
        Path copy = dir.resolve("edited");
        TrainSampleEvalTest.Result t = run("train", "--data", csv.toString(), "--out", copy.toString(), "--steps",
                "2", "--batch", "8", "--sample-every", "0", "--backend", "cpu");
        assertEquals(0, t.code(), t::toString);
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = (ObjectNode) json.readTree(copy.resolve("run.json").toFile());
        ((ObjectNode) root.get("options")).put("lr", -1.0);
        Files.writeString(copy.resolve("run.json"), json.writeValueAsString(root));
        refused(run("train", "--resume", "--out", copy.toString(), "--steps", "4", "--backend", "cpu"),
                "--lr must be in (0, 1), got -1.0", "run.json", "edited");
    }
}
