package org.diffusion4j.cli;

import org.diffusion4j.io.ImageFolder;
import org.diffusion4j.io.Npy;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.diffusion4j.cli.TrainSampleEvalTest.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code sample --init/--strength/--mask}: image-to-image, inpainting and vector imputation through the command
 * line, on tiny models trained once. What is checked is what the options promise, whatever the (barely trained)
 * model draws: kept pixels and cells equal the input exactly, generated ones do not, a low strength stays closer to
 * the input than plain sampling, sample {@code i} does not depend on {@code --n}, and bad input is refused by name.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ImageToImageCliTest {

    private Path dir;
    private Path imageRun;
    private Path vectorRun;
    private Path initPng;
    private Path maskPng;

    @BeforeAll
    void trainOnce(@TempDir Path tmp) throws IOException {
        dir = tmp;
        Path data = TinyData.idxFolder(dir.resolve("tiny"), 48, 12);
        imageRun = dir.resolve("img");
        TrainSampleEvalTest.Result r = run("train", "--data", data.toString(), "--out", imageRun.toString(),
                "--model", "dit", "--cond", "--hidden", "32", "--depth", "1", "--heads", "2", "--patch", "4",
                "--steps", "12", "--batch", "16", "--sample-every", "1000", "--backend", "cpu", "--seed", "3");
        assertEquals(0, r.code(), r::toString);
        // a 16x16 grey input (class 1's vertical bar) and a mask whose left half is white (generate)
        BufferedImage in = new BufferedImage(16, 16, BufferedImage.TYPE_BYTE_GRAY);
        byte[] bar = TinyData.image(1, 7);
        BufferedImage mask = new BufferedImage(16, 16, BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < 16; y++) {
            for (int x = 0; x < 16; x++) {
                int v = bar[y * 16 + x] & 0xff;
                in.getRaster().setSample(x, y, 0, v);
                mask.getRaster().setSample(x, y, 0, x < 8 ? 255 : 0);
            }
        }
        initPng = dir.resolve("init.png");
        maskPng = dir.resolve("mask.png");
        ImageIO.write(in, "png", initPng.toFile());
        ImageIO.write(mask, "png", maskPng.toFile());

        StringBuilder csv = new StringBuilder("a,label,b\n");
        java.util.Random rnd = new java.util.Random(4);
        for (int i = 0; i < 300; i++) {
            int y = i % 2;
            double a = (y == 0 ? -2 : 2) + 0.5 * rnd.nextGaussian();
            csv.append(a).append(',').append(y == 0 ? "low" : "high").append(',').append(3 * a + 0.3 * rnd.nextGaussian())
                    .append('\n');
        }
        Path table = dir.resolve("table.csv");
        Files.writeString(table, csv);
        vectorRun = dir.resolve("vec");
        r = run("train", "--data", table.toString(), "--label-column", "label", "--cond", "--out", vectorRun.toString(),
                "--steps", "40", "--batch", "64", "--sample-every", "1000", "--backend", "cpu", "--seed", "3");
        assertEquals(0, r.code(), r::toString);
    }

    private float[] sample(String out, String... extra) throws IOException {
        Path raw = dir.resolve(out + ".npy");
        String[] base = {"sample", "--checkpoint", imageRun.toString(), "--out", dir.resolve(out + ".png").toString(),
            "--save-raw", raw.toString(), "--steps", "6", "--batch", "8", "--backend", "cpu"};
        String[] args = Arrays.copyOf(base, base.length + extra.length);
        System.arraycopy(extra, 0, args, base.length, extra.length);
        TrainSampleEvalTest.Result r = run(args);
        assertEquals(0, r.code(), r::toString);
        return Npy.read(raw).values();
    }

    @Test
    void inpaintingKeepsTheBlackHalfOfTheMaskExactly() throws IOException {
        float[] want = ImageFolder.loadImage(initPng, 16, 1);
        for (String sampler : new String[] {"ddpm", "repaint", "flow-midpoint"}) {
            float[] x = sample("paint-" + sampler, "--init", initPng.toString(), "--mask", maskPng.toString(),
                    "--n", "3", "--sampler", sampler);
            assertEquals(3 * 256, x.length);
            int differ = 0;
            for (int s = 0; s < 3; s++) {
                for (int p = 0; p < 256; p++) {
                    if (p % 16 >= 8) {
                        assertEquals(want[p], x[s * 256 + p], 0f, sampler + ": kept pixel " + p + " of sample " + s);
                    } else if (x[s * 256 + p] != want[p]) {
                        differ++;
                    }
                }
            }
            assertTrue(differ > 3 * 100, sampler + ": the white half must be generated, " + differ + " of 384 differ");
        }
    }

    @Test
    void lowStrengthStaysNearTheInputAndSampleIDoesNotDependOnN() throws IOException {
        float[] want = ImageFolder.loadImage(initPng, 16, 1);
        float[] low = sample("low", "--init", initPng.toString(), "--strength", "0.34", "--n", "5");
        float[] plain = sample("plain", "--n", "5");
        double dLow = 0;
        double dPlain = 0;
        for (int i = 0; i < low.length; i++) {
            dLow += Math.pow(low[i] - want[i % 256], 2);
            dPlain += Math.pow(plain[i] - want[i % 256], 2);
        }
        assertTrue(dLow < dPlain / 4, "strength 0.34 must stay near the input: " + dLow + " vs plain " + dPlain);
        float[] two = sample("low2", "--init", initPng.toString(), "--strength", "0.34", "--n", "2");
        assertArrayEquals(Arrays.copyOf(low, 512), two, "sample i must not depend on --n");
        // strength 1 without a mask is plain sampling (of the same class): the input is all noise then
        float[] plainOne = sample("plain1", "--n", "5", "--class", "1");
        float[] full = sample("full", "--init", initPng.toString(), "--strength", "1", "--n", "5", "--class", "1");
        assertArrayEquals(plainOne, full);
        // without --class the samples from an input are unconditional (the null class), not a cycle of classes
        TrainSampleEvalTest.Result r = run("sample", "--checkpoint", imageRun.toString(), "--init", initPng.toString(),
                "--n", "2", "--out", dir.resolve("nc.png").toString(), "--save-raw", dir.resolve("nc.npy").toString(),
                "--backend", "cpu");
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("no --class: the samples are unconditional"), r::toString);
        assertTrue(r.out().contains("guidance 1.00"), r::toString);
        assertFalse(Files.exists(dir.resolve("nc.labels.npy")), "no class labels for unconditional samples");
        r = run("sample", "--checkpoint", imageRun.toString(), "--init", initPng.toString(), "--guidance", "3",
                "--out", dir.resolve("nc.png").toString(), "--backend", "cpu");
        assertTrue(r.code() != 0 && r.err().contains("--guidance 3.0 with --init needs --class"), r::toString);
        // an NPY input (what --save-raw writes) is read as the same images
        float[] again = sample("fromnpy", "--init", dir.resolve("low.npy").toString(), "--strength", "0.5", "--n", "5");
        assertEquals(low.length, again.length);
    }

    /** Found by a new-user trial: eval of a run against other data failed with a hint about that data's labels. */
    @Test
    void evalAgainstDataUnlikeTheRunsSaysSo() throws IOException {
        Path other = dir.resolve("other.csv");
        Files.writeString(other, "length,width,species\n1.0,2.0,alpine\n1.5,2.5,desert\n1.2,2.2,alpine\n");
        TrainSampleEvalTest.Result r = run("eval", "--checkpoint", vectorRun.toString(), "--data", other.toString(),
                "--n", "8", "--backend", "cpu");
        assertEquals(1, r.code(), r::toString);
        assertTrue(r.err().contains(other + " cannot be read the way the run's data was: ")
                && r.err().contains("leave --data out to use the run's data, ")
                && r.err().contains("table.csv"), r::toString);
        // a file that is not there is named as missing (an adversarial trial got only its name in brackets)
        Path missing = dir.resolve("missing.csv");
        TrainSampleEvalTest.Result m = run("eval", "--checkpoint", vectorRun.toString(), "--data", missing.toString(),
                "--n", "8", "--backend", "cpu");
        assertEquals(1, m.code(), m::toString);
        assertTrue(m.err().contains("--data " + missing + ": no such file or folder; leave --data out"),
                m::toString);
    }

    @Test
    void imputationFillsOnlyTheEmptyCells() throws IOException {
        Path rows = dir.resolve("rows.csv");
        Files.writeString(rows, "a,b\n-2.0,\n,0.95\n1.3,NaN\n");   // kept values that do not survive (v-m)/s*s+m
        Path raw = dir.resolve("imputed.npy");
        TrainSampleEvalTest.Result r = run("sample", "--checkpoint", vectorRun.toString(), "--init", rows.toString(),
                "--n", "6", "--out", dir.resolve("imputed.png").toString(), "--save-raw", raw.toString(),
                "--backend", "cpu");
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("imputation  50.0 % of the values generated")
                && r.out().contains("imputation keeps the given cells"), r::toString);
        float[] x = Npy.read(raw).values();
        assertEquals(12, x.length);
        for (int s = 0; s < 6; s++) {
            int row = s % 3;
            float[] v = {x[2 * s], x[2 * s + 1]};
            switch (row) {                                   // exactly as read, not round-tripped
                case 0 -> assertEquals(-2.0f, v[0], 0f, "kept a of row 1");
                case 1 -> assertEquals(0.95f, v[1], 0f, "kept b of row 2");
                default -> assertEquals(1.3f, v[0], 0f, "kept a of row 3");
            }
            assertTrue(Float.isFinite(v[0]) && Float.isFinite(v[1]), "finite sample " + s);
        }
        assertFalse(x[1] == x[7] && x[2] == x[8], "samples 0 and 3 (same row) draw different values");
        // a CSV with the label column: each row keeps its class (the model's class names), --class overrides it
        Path labelled = dir.resolve("labelled.csv");
        Files.writeString(labelled, "a,label,b\n-2.0,high,\n2.0,low,\n,high,1.0\n");
        Path raw2 = dir.resolve("labelled.npy");
        r = run("sample", "--checkpoint", vectorRun.toString(), "--init", labelled.toString(), "--n", "5",
                "--out", dir.resolve("labelled.png").toString(), "--save-raw", raw2.toString(), "--backend", "cpu");
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("each sample has the class of its --init row (column 'label')"), r::toString);
        // classes are the sorted names: high = 0, low = 1
        assertArrayEquals(new float[] {0, 1, 0, 0, 1}, Npy.read(dir.resolve("labelled.labels.npy")).values());
        r = run("sample", "--checkpoint", vectorRun.toString(), "--init", labelled.toString(), "--n", "3",
                "--class", "low", "--out", dir.resolve("labelled.png").toString(), "--save-raw", raw2.toString(),
                "--backend", "cpu");
        assertEquals(0, r.code(), r::toString);
        assertArrayEquals(new float[] {1, 1, 1}, Npy.read(dir.resolve("labelled.labels.npy")).values());
        // an empty class cell is the unconditional model; a name the model does not know is refused
        Files.writeString(labelled, "a,label,b\n-2.0,high,\n2.0,,\n");
        r = run("sample", "--checkpoint", vectorRun.toString(), "--init", labelled.toString(), "--n", "2",
                "--out", dir.resolve("labelled.png").toString(), "--backend", "cpu");
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("1 empty cell: no class, the unconditional model"), r::toString);
        Files.writeString(labelled, "a,label,b\n-2.0,high,\n2.0,martian,\n");
        r = run("sample", "--checkpoint", vectorRun.toString(), "--init", labelled.toString(), "--n", "2",
                "--out", dir.resolve("labelled.png").toString(), "--backend", "cpu");
        assertTrue(r.code() != 0 && r.err().contains("row 2 has class martian in column 'label'"), r::toString);
        // empty cells have nothing to start from below strength 1
        r = run("sample", "--checkpoint", vectorRun.toString(), "--init", rows.toString(), "--strength", "0.5",
                "--out", dir.resolve("labelled.png").toString(), "--backend", "cpu");
        assertTrue(r.code() != 0 && r.err().contains("imputation runs at strength 1"), r::toString);
        // without a header, a first row of missing cells is a row, not the column names
        Path headless = dir.resolve("headless.csv");
        Files.writeString(headless, "NA,NA\n1.0,\n");
        r = run("sample", "--checkpoint", vectorRun.toString(), "--init", headless.toString(), "--n", "2",
                "--out", dir.resolve("headless.png").toString(), "--backend", "cpu");
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("(2 rows)") && r.out().contains("75.0 % of the values generated"), r::toString);
        // the training file itself is a valid --init
        r = run("sample", "--checkpoint", vectorRun.toString(), "--init", dir.resolve("table.csv").toString(),
                "--strength", "0.5", "--n", "4", "--out", dir.resolve("edit.png").toString(), "--backend", "cpu");
        assertEquals(0, r.code(), r::toString);
    }

    /** A uint8 NPY of pixels is scaled as training data is; float pixels 0..255 are refused, not sampled. */
    @Test
    void npyInputsAreInTheModelsScale() throws IOException {
        float[] want = ImageFolder.loadImage(initPng, 16, 1);
        Path u8 = dir.resolve("u8.npy");
        byte[] bar = TinyData.image(1, 7);
        byte[] npy = new byte[128 + 256];
        String header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 16, 16), }";
        header = header + " ".repeat(128 - 10 - header.length() - 1) + "\n";
        npy[0] = (byte) 0x93;
        System.arraycopy("NUMPY".getBytes(java.nio.charset.StandardCharsets.US_ASCII), 0, npy, 1, 5);
        npy[6] = 1;
        npy[8] = (byte) header.length();
        System.arraycopy(header.getBytes(java.nio.charset.StandardCharsets.US_ASCII), 0, npy, 10, header.length());
        System.arraycopy(bar, 0, npy, 128, 256);
        Files.write(u8, npy);
        float[] fromPng = sample("u8-png", "--init", initPng.toString(), "--strength", "0.5", "--n", "2");
        float[] fromU8 = sample("u8-npy", "--init", u8.toString(), "--strength", "0.5", "--n", "2");
        assertArrayEquals(fromPng, fromU8, "a uint8 NPY of the same pixels gives the same samples");
        assertEquals(256, want.length);
        Path pixels = dir.resolve("pixels.npy");
        float[] p = new float[256];
        for (int i = 0; i < 256; i++) {
            p[i] = bar[i] & 0xff;
        }
        Npy.write(pixels, p, 1, 16, 16);
        TrainSampleEvalTest.Result r = run("sample", "--checkpoint", imageRun.toString(), "--init", pixels.toString(),
                "--out", dir.resolve("pixels.png").toString(), "--backend", "cpu");
        assertTrue(r.code() != 0 && r.err().contains("image inputs are in [-1, 1]"), r::toString);
    }

    @Test
    void badInputsAreRefusedByName() throws IOException {
        String ck = imageRun.toString();
        String png = dir.resolve("bad.png").toString();
        Path anNpy = dir.resolve("any.npy");
        Npy.write(anNpy, new float[256], 1, 1, 16, 16);
        String[][] cases = {
            {"--strength needs --init", "--strength", "0.5"},
            {"--mask needs --init", "--mask", maskPng.toString()},
            {"--strength must be in (0, 1], got 1.5", "--init", initPng.toString(), "--strength", "1.5"},
            {"--init: " + dir.resolve("nope.png") + " does not exist", "--init", dir.resolve("nope.png").toString()},
            {"--strength 0.1 with --steps 6 keeps no step", "--init", initPng.toString(), "--strength", "0.1",
                "--steps", "6"},
            {"the default --strength 0.8 with --steps 1 keeps no step", "--init", initPng.toString(), "--steps", "1"},
            {"--out " + initPng + " is the --init file", "--init", initPng.toString(), "--out", initPng.toString()},
            {"is the --mask file", "--init", initPng.toString(), "--mask", maskPng.toString(), "--save-raw",
                maskPng.toString().replace(".png", ".npy"), "--out", maskPng.toString()},
            {"--mask takes a PNG or JPEG", "--init", initPng.toString(), "--mask", anNpy.toString()},
        };
        for (String[] c : cases) {
            String[] full = Arrays.copyOf(new String[] {"sample", "--checkpoint", ck, "--out", png, "--backend", "cpu"},
                    7 + c.length - 1);
            System.arraycopy(c, 1, full, 7, c.length - 1);
            TrainSampleEvalTest.Result r = run(full);
            assertTrue(r.code() != 0, r::toString);
            assertTrue(r.err().contains(c[0]), "expected '" + c[0] + "' in\n" + r);
        }
        // an NPY of the wrong shape
        Path wrong = dir.resolve("wrong.npy");
        Npy.write(wrong, new float[3 * 100], 3, 10, 10);
        TrainSampleEvalTest.Result r = run("sample", "--checkpoint", ck, "--out", png, "--backend", "cpu", "--init",
                wrong.toString());
        assertTrue(r.code() != 0 && r.err().contains("has shape [3, 10, 10]"), r::toString);
        // a mask for a vector model
        r = run("sample", "--checkpoint", vectorRun.toString(), "--out", png, "--backend", "cpu", "--init",
                dir.resolve("table.csv").toString(), "--mask", maskPng.toString());
        assertTrue(r.code() != 0 && r.err().contains("--mask is for image models"), r::toString);
        // a CSV with other columns
        Path cols = dir.resolve("cols.csv");
        Files.writeString(cols, "x,y,z\n1,2,3\n");
        r = run("sample", "--checkpoint", vectorRun.toString(), "--out", png, "--backend", "cpu", "--init",
                cols.toString());
        assertTrue(r.code() != 0 && r.err().contains("has 3 columns"), r::toString);
        assertFalse(Files.exists(Path.of(png)), "a refused command writes nothing");
    }
}
