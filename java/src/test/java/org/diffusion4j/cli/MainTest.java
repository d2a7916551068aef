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
    void demoRejectsAnOutputInAMissingFolder(@TempDir Path dir) {
        Path bad = dir.resolve("missing").resolve("x.png");
        Object[] r = run("demo", "--backend", "cpu", "--steps", "1", "--out", bad.toString());
        assertNotEquals(0, r[0]);
        assertTrue(((String) r[2]).contains("--out"), (String) r[2]);
        assertFalse(Files.exists(bad));
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
}
