package org.diffusion4j.cli;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code sample --trajectory}: which levels are kept, how the picture is laid out, and the command's checks. */
class TrajectoryTest {

    @Test
    void keepsEvenlySpacedLevelsAndLaysOutRowsBySampleThenLevel() {
        assertArrayEquals(new int[] {0, 1, 2, 3}, new Trajectory(5, 64, 2, 3).levels());
        assertArrayEquals(new int[] {0, 2, 4, 7, 9, 11, 13, 16, 18, 20}, new Trajectory(5, 64, 2, 20).levels());
        try (CpuBackend be = new CpuBackend(1); TensorScope s = TensorScope.open()) {
            Trajectory t = new Trajectory(3, 64, 2, 2);                  // 3 samples of 2 values, levels 0, 1, 2
            assertEquals(3, t.rows());
            assertEquals(3, t.columns());
            assertThrows(IllegalStateException.class, t::values);  // nothing recorded yet
            t.start(state(be, s, 0));
            t.onStep(1, null, state(be, s, 100));
            t.onStep(1, null, state(be, s, 1));                      // a level visited again: the last visit
            t.onStep(2, null, state(be, s, 2));
            float[] v = t.values();
            for (int r = 0; r < 3; r++) {
                for (int c = 0; c < 3; c++) {
                    for (int j = 0; j < 2; j++) {
                        assertEquals(c + 10 * r + 0.5f * j, v[(r * 3 + c) * 2 + j], "sample " + r + " level " + c);
                    }
                }
            }
            Trajectory firstRows = new Trajectory(2, 64, 2, 1);          // the first rows of a larger batch
            firstRows.start(state(be, s, 0));
            firstRows.onStep(1, null, state(be, s, 1));
            assertEquals(2 * 2 * 2, firstRows.values().length);
            assertEquals(3, new Trajectory(20, 3, 2, 4).rows());     // the first batch's samples only
            assertEquals(Trajectory.MAX_ROWS, new Trajectory(20, 64, 2, 4).rows());
        }
    }

    /** A batch of 4 samples of 2 values: sample r holds {@code level + 10·r + 0.5·j}. */
    private static Tensor state(CpuBackend be, TensorScope s, int level) {
        float[] x = new float[8];
        for (int r = 0; r < 4; r++) {
            for (int j = 0; j < 2; j++) {
                x[r * 2 + j] = level + 10 * r + 0.5f * j;
            }
        }
        return be.fromArray(s, x, 4, 2);
    }

    @Test
    void sampleDrawsTheTrajectoryOfImageModelsOnly(@TempDir Path dir) throws IOException {
        Path data = TinyData.idxFolder(dir.resolve("tiny"), 32, 8);
        Path run = dir.resolve("run");
        TrainSampleEvalTest.Result t = TrainSampleEvalTest.run("train", "--data", data.toString(), "--out",
                run.toString(), "--model", "dit", "--hidden", "16", "--depth", "1", "--heads", "1", "--patch", "4",
                "--batch", "8", "--steps", "3", "--sample-steps", "2", "--backend", "cpu");
        assertEquals(0, t.code(), t::toString);
        Path traj = dir.resolve("traj.png");
        TrainSampleEvalTest.Result r = TrainSampleEvalTest.run("sample", "--checkpoint", run.toString(), "--n", "3",
                "--batch", "3", "--steps", "4", "--sampler", "flow-euler", "--out", dir.resolve("s.png").toString(),
                "--trajectory", traj.toString(), "--backend", "cpu");
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("levels [0, 1, 2, 3, 4] of 4 by column"), r::toString);
        BufferedImage img = ImageIO.read(traj.toFile());
        // 5 columns by 3 rows of 16-pixel tiles with 2-pixel padding (92 x 56), drawn at some integer scale
        assertEquals(0, img.getWidth() % 92, img.getWidth() + " x " + img.getHeight());
        assertEquals(img.getWidth() / 92 * 56, img.getHeight(), img.getWidth() + " x " + img.getHeight());

        r = TrainSampleEvalTest.run("sample", "--checkpoint", run.toString(), "--n", "4", "--batch", "2",
                "--steps", "2", "--out", dir.resolve("s2.png").toString(), "--trajectory",
                dir.resolve("traj2.png").toString(), "--backend", "cpu");           // more samples than a batch
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("(samples 0..1 by row"), r::toString);
        Path folder = dir.resolve("folder");                        // 32 x 32 images: a trajectory too large to draw
        for (int c = 0; c < 2; c++) {
            Path sub = Files.createDirectories(folder.resolve("c" + c));
            for (int i = 0; i < 4; i++) {
                BufferedImage im = new BufferedImage(TinyData.SIDE, TinyData.SIDE, BufferedImage.TYPE_BYTE_GRAY);
                im.getRaster().setDataElements(0, 0, TinyData.SIDE, TinyData.SIDE, TinyData.image(c, i));
                ImageIO.write(im, "png", sub.resolve(i + ".png").toFile());
            }
        }
        Path big = dir.resolve("big");
        t = TrainSampleEvalTest.run("train", "--data", folder.toString(), "--resolution", "32", "--out",
                big.toString(), "--model", "dit", "--hidden", "16", "--depth", "1", "--heads", "1", "--patch", "8",
                "--batch", "4", "--steps", "1", "--sample-steps", "1", "--backend", "cpu");
        assertEquals(0, t.code(), t::toString);
        Path huge = dir.resolve("huge.png");
        r = TrainSampleEvalTest.run("sample", "--checkpoint", big.toString(), "--n", "8", "--steps", "20",
                "--zoom", "64", "--out", dir.resolve("s3.png").toString(), "--trajectory", huge.toString(),
                "--backend", "cpu");
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("--trajectory: "), r::toString);
        assertFalse(Files.exists(dir.resolve("s3.png")), "refused before sampling");

        Path same = dir.resolve("s.png");
        r = TrainSampleEvalTest.run("sample", "--checkpoint", run.toString(), "--n", "2", "--out", same.toString(),
                "--trajectory", same.toString(), "--backend", "cpu");
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("--trajectory " + same + " is the --out file"), r::toString);
        Path link = Files.createSymbolicLink(dir.resolve("link"), dir);   // the --out file through a link
        r = TrainSampleEvalTest.run("sample", "--checkpoint", run.toString(), "--n", "2", "--out",
                dir.resolve("s4.png").toString(), "--trajectory", link.resolve("s4.png").toString(), "--backend",
                "cpu");
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("is the --out file"), r::toString);
        Path bad = dir.resolve("bad.jpg");
        r = TrainSampleEvalTest.run("sample", "--checkpoint", run.toString(), "--n", "2", "--out",
                dir.resolve("t.png").toString(), "--trajectory", bad.toString(), "--backend", "cpu");
        assertNotEquals(0, r.code());
        assertFalse(Files.exists(bad));
    }
}
