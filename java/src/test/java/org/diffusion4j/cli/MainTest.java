package org.diffusion4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MainTest {

    /** Runs the tool with stdout and stderr captured; returns {exitCode, out, err}. */
    private static Object[] run(String... args) {
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int code = Main.execute(args);
            return new Object[] {code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)};
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    @Test
    void demoTrainsSamplesPrintsMetricsAndWritesAPng(@TempDir Path dir) throws Exception {
        Path png = dir.resolve("out.png");
        Object[] r = run("demo", "--backend", "cpu", "--steps", "12", "--batch", "64", "--samples", "200",
                "--sampling-steps", "4", "--hidden", "16", "--dataset", "moons", "--out", png.toString());
        String out = (String) r[1];
        assertEquals(0, r[0], () -> "stdout:\n" + out + "\nstderr:\n" + r[2]);
        assertTrue(out.contains("backend     cpu"), out);
        assertTrue(out.contains("step    12/12"), out);
        assertTrue(out.contains("final loss"), out);
        assertTrue(out.contains("model       200 samples"), out);
        assertTrue(out.contains("reference   200 real points"), out);
        assertTrue(out.contains("SW2 ") && out.contains("MMD²"), out);
        assertTrue(out.contains("png         " + png.toAbsolutePath()), out);
        byte[] bytes = Files.readAllBytes(png);
        byte[] magic = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        assertArrayEquals(magic, Arrays.copyOf(bytes, 8), "PNG signature");
        BufferedImage img = ImageIO.read(png.toFile());
        assertNotNull(img, "ImageIO could not decode " + png);
        assertEquals(DemoCommand.PNG_WIDTH, img.getWidth());
        assertEquals(DemoCommand.PNG_HEIGHT, img.getHeight());
        try (var files = Files.list(dir)) {
            assertEquals(List.of(png), files.toList(), "no temporary files left beside the PNG");
        }
    }

    @Test
    void demoRejectsNonPositiveSizesWithAOneLineReason() {
        for (String opt : List.of("--batch", "--steps", "--samples", "--hidden", "--sample-steps")) {
            Object[] r = run("demo", "--backend", "cpu", opt, "0");
            assertNotEquals(0, r[0], opt);
            String err = (String) r[2];
            assertTrue(err.contains(opt), err);
            assertEquals(1, err.strip().lines().count(), err);
        }
    }

    @Test
    void demoRejectsAnUnknownDatasetNamingIt() {
        Object[] r = run("demo", "--backend", "cpu", "--dataset", "spirals");
        assertNotEquals(0, r[0]);
        String err = (String) r[2];
        assertTrue(err.contains("--dataset") && err.contains("spirals") && err.contains("checkerboard"), err);
    }

    @Test
    void demoCreatesAMissingOutputFolderButRejectsAFileAsOne(@TempDir Path dir) throws java.io.IOException {
        Path file = Files.writeString(dir.resolve("plain"), "x");
        Path bad = file.resolve("x.png");
        Object[] r = run("demo", "--backend", "cpu", "--steps", "1", "--out", bad.toString());
        assertNotEquals(0, r[0]);
        assertTrue(((String) r[2]).contains("--out") && ((String) r[2]).contains("is not a folder"), (String) r[2]);
        // refused for another reason: the missing folders are not created
        Path unused = dir.resolve("c").resolve("d").resolve("x.png");
        r = run("demo", "--backend", "cpu", "--steps", "0", "--out", unused.toString());
        assertNotEquals(0, r[0]);
        assertFalse(Files.exists(dir.resolve("c")), "nothing left behind by a refused command");
        Path nested = dir.resolve("a").resolve("b").resolve("x.png");
        r = run("demo", "--backend", "cpu", "--steps", "2", "--batch", "8", "--samples", "16", "--out",
                nested.toString());
        assertEquals(0, r[0], (String) r[2]);
        assertTrue(Files.isRegularFile(nested));
    }

    @Test
    void unknownOptionIsAnErrorNamingIt() {
        Object[] r = run("demo", "--no-such-option");
        assertNotEquals(0, r[0]);
        assertTrue(((String) r[2]).contains("--no-such-option"), (String) r[2]);
    }

    @Test
    void unknownBackendIsAnErrorNamingIt() {
        Object[] r = run("demo", "--backend", "tpu");
        assertNotEquals(0, r[0]);
        assertTrue(((String) r[2]).contains("tpu"), (String) r[2]);
    }

    @Test
    void infoReportsCpuAndWhyCudaIsOrIsNotUsed() {
        Object[] r = run("info");
        String out = (String) r[1];
        assertEquals(0, r[0], () -> out + r[2]);
        assertTrue(out.contains("cpu "), out);
        assertTrue(out.contains("cuda "), out);
    }

    @Test
    void noCommandIsAUsageErrorWithTheUsageOnStderr() {
        Object[] r = run();
        assertEquals(2, r[0], () -> r[1] + "" + r[2]);
        assertEquals("", r[1]);
        assertTrue(((String) r[2]).contains("Usage: diffusion4j"), (String) r[2]);
        Object[] help = run("--help");
        assertEquals(0, help[0], () -> help[1] + "" + help[2]);
        assertTrue(((String) help[1]).contains("Usage: diffusion4j"), (String) help[1]);
        Object[] version = run("--version");
        assertEquals(0, version[0], () -> version[1] + "" + version[2]);
        assertTrue(((String) version[1]).contains("diffusion4j"), (String) version[1]);
    }

    @Test
    void samplingOptionsAreRejectedBeforeTheCheckpointIsRead(@TempDir Path dir) throws Exception {
        // not a checkpoint: an error naming the option proves it was checked before the file was read
        Path bogus = dir.resolve("not-a-checkpoint.safetensors");
        Files.writeString(bogus, "garbage");
        Path png = dir.resolve("s.png");
        Object[] sampler = run("sample", "--checkpoint", bogus.toString(), "--sampler", "eulr", "--out",
                png.toString(), "--backend", "cpu");
        assertEquals(1, sampler[0], (String) sampler[2]);
        assertTrue(((String) sampler[2]).contains("unknown --sampler 'eulr'"), (String) sampler[2]);
        Object[] cls = run("sample", "--checkpoint", bogus.toString(), "--class", "-1", "--out", png.toString(),
                "--backend", "cpu");
        assertEquals(1, cls[0], (String) cls[2]);
        assertTrue(((String) cls[2]).contains("--class must be >= 0, got -1"), (String) cls[2]);
        Object[] steps = run("sample", "--checkpoint", bogus.toString(), "--steps", "0", "--out", png.toString(),
                "--backend", "cpu");
        assertTrue(((String) steps[2]).contains("--steps must be in [1, 100000], got 0"), (String) steps[2]);
        Object[] many = run("sample", "--checkpoint", bogus.toString(), "--steps", "200000", "--out", png.toString(),
                "--backend", "cpu");
        assertTrue(((String) many[2]).contains("--steps must be in [1, 100000], got 200000"), (String) many[2]);
        Object[] eval = run("eval", "--checkpoint", bogus.toString(), "--sampler", "eulr", "--backend", "cpu");
        assertEquals(1, eval[0], (String) eval[2]);
        assertTrue(((String) eval[2]).contains("unknown --sampler 'eulr'"), (String) eval[2]);
        // the same file without the bad option fails on the file itself
        Object[] file = run("sample", "--checkpoint", bogus.toString(), "--out", png.toString(), "--backend", "cpu");
        assertEquals(1, file[0], (String) file[2]);
        assertFalse(((String) file[2]).contains("--sampler"), (String) file[2]);
        assertFalse(Files.exists(png));
    }

    @Test
    void autoBackendSaysWhyCudaIsNotUsedOncePerProcess() {
        PrintStream oldErr = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            for (int i = 0; i < 3; i++) {
                try (var be = RuntimeOptions.createBackend("auto")) {
                    assertNotNull(be);
                }
            }
        } finally {
            System.setErr(oldErr);
        }
        String log = err.toString(StandardCharsets.UTF_8);
        int count = log.split("CUDA not used", -1).length - 1;
        assertTrue(count <= 1, "three auto backends, the reason printed " + count + " times:\n" + log);
    }

    @Test
    void evalSamplesDefaultOutputIsBesideTheSamples() {
        assertEquals(Path.of("/a/b/x.eval.json"), EvalCommand.besideSamples(Path.of("/a/b/x.npy")));
        assertEquals(Path.of("/a/b/x.eval.json"), EvalCommand.besideSamples(Path.of("/a/b/x.NPY")));
        assertEquals(Path.of("/a/b/x.bin.eval.json"), EvalCommand.besideSamples(Path.of("/a/b/x.bin")));
    }
}
