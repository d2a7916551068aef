package org.diffusion4j.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
    void demoRunsOnCpuAndTheLossFalls() {
        Object[] r = run("demo", "--backend", "cpu", "--batch", "512", "--dim", "8", "--steps", "40");
        String out = (String) r[1];
        assertEquals(0, r[0], () -> "stdout:\n" + out + "\nstderr:\n" + r[2]);
        assertTrue(out.contains("falling"), out);
        assertTrue(out.contains("backend     cpu"), out);
    }

    @Test
    void demoRejectsNonPositiveSizesWithAOneLineReason() {
        Object[] r = run("demo", "--backend", "cpu", "--batch", "0");
        assertNotEquals(0, r[0]);
        assertTrue(((String) r[2]).contains("--batch"), (String) r[2]);
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
