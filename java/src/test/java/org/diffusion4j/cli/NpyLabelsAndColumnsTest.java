package org.diffusion4j.cli;

import org.diffusion4j.io.Npy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two findings of a new-user trial: {@code train --data x.npy --cond} takes its labels from {@code x.labels.npy}
 * beside it (what {@code sample --save-raw} writes and {@code eval --samples} reads), and a class-conditional grid of
 * many samples wraps into a multiple of the class count instead of a strip two columns wide.
 */
class NpyLabelsAndColumnsTest {

    @Test
    void trainCondReadsTheLabelsBesideAnNpy(@TempDir Path dir) throws IOException {
        int n = 60;
        float[] v = new float[n * 2];
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            labels[i] = i % 3;
            v[2 * i] = (float) (labels[i] * 2 + 0.1 * Math.sin(i));
            v[2 * i + 1] = (float) (0.1 * Math.cos(7 * i));
        }
        Path x = dir.resolve("pts.npy");
        Npy.write(x, v, n, 2);
        String[] train = {"train", "--data", x.toString(), "--out", dir.resolve("run").toString(), "--cond",
            "--steps", "3", "--batch", "8", "--sample-every", "0", "--backend", "cpu"};
        TrainSampleEvalTest.Result no = TrainSampleEvalTest.run(train);
        assertNotEquals(0, no.code(), no::toString);
        assertTrue(no.err().contains("pts.labels.npy"), "the refusal names the file to add: " + no);
        Npy.writeInt32(dir.resolve("pts.labels.npy"), labels, n);
        Files.writeString(dir.resolve("pts.classes.json"), "[\"left\", \"middle\", \"right\"]");
        TrainSampleEvalTest.Result ok = TrainSampleEvalTest.run(train);
        assertEquals(0, ok.code(), ok::toString);
        TrainSampleEvalTest.Result s = TrainSampleEvalTest.run("sample", "--checkpoint", dir.resolve("run").toString(),
                "--class", "right", "--n", "4", "--steps", "2", "--backend", "cpu", "--out",
                dir.resolve("s.png").toString());
        assertEquals(0, s.code(), s::toString);
        assertTrue(s.out().contains("class 2 (right)"), s::toString);
        // what sample --save-raw writes as IDX trains too, with its labels (found by a user trial)
        Path idx = dir.resolve("drawn.idx");
        TrainSampleEvalTest.Result raw = TrainSampleEvalTest.run("sample", "--checkpoint",
                dir.resolve("run").toString(), "--n", "12", "--steps", "2", "--backend", "cpu", "--out",
                dir.resolve("drawn.png").toString(), "--save-raw", idx.toString());
        assertEquals(0, raw.code(), raw::toString);
        TrainSampleEvalTest.Result again = TrainSampleEvalTest.run("train", "--data", idx.toString(), "--out",
                dir.resolve("run2").toString(), "--cond", "--steps", "2", "--batch", "4", "--sample-every", "0",
                "--backend", "cpu");
        assertEquals(0, again.code(), again::toString);
        assertTrue(again.out().contains("3 classes") || again.out().contains("left"), again::toString);
    }

    @Test
    void classGridsWrapIntoMultiplesOfTheClassCount() {
        assertEquals(10, SampleCommand.classColumns(10, 100), "the README's grid: a column per class");
        assertEquals(10, SampleCommand.classColumns(10, 64));
        assertEquals(10, SampleCommand.classColumns(2, 200), "not 2 x 100");
        assertEquals(2, SampleCommand.classColumns(2, 8));
        assertEquals(4, SampleCommand.classColumns(2, 9));
        assertEquals(1000, SampleCommand.classColumns(1000, 5));
        for (int k = 1; k <= 12; k++) {
            for (int n = 1; n <= 400; n += 7) {
                int c = SampleCommand.classColumns(k, n);
                int rows = (n + c - 1) / c;
                assertEquals(0, c % k, "k=" + k + " n=" + n);
                assertTrue(rows <= 2 * c || c >= n, "k=" + k + " n=" + n + ": " + rows + " rows of " + c);
                assertTrue(c == k || (n + (c - k) - 1) / (c - k) > 2 * (c - k), "the smallest such multiple");
            }
        }
    }
}
