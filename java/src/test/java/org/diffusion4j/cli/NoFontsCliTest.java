package org.diffusion4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A machine without fonts (a bare container; the H200 machine of the GPU check of 2026-11-30 was one, and
 * {@code train} failed there after its last step with "Fontconfig head is null") still trains, samples and runs the
 * demo: a picture that needs text is noted and skipped, never fatal. The JDK's two failures are checked directly;
 * the whole commands run in a child JVM inside a user and mount namespace ({@code unshare -rm}) whose font folders
 * are replaced by an empty one.
 */
class NoFontsCliTest {

    @TempDir
    Path dir;

    @Test
    void theJdksNoFontFailuresBecomeOneExceptionNamingThePicture() {
        Path png = Path.of("runs", "loss.png");
        // the two forms seen: fontconfig present without fonts, and no font files at all
        for (Throwable jdk : List.of(new RuntimeException("Fontconfig head is null, check your fonts or fonts "
                + "configuration"), new Error("Probable fatal error: No physical fonts found."))) {
            Plots.NoFontsException e = assertThrows(Plots.NoFontsException.class, () -> Plots.withFonts(png, () -> {
                throw sneaky(jdk);
            }));
            assertSame(jdk, e.getCause());
            assertTrue(e.getMessage().startsWith("cannot draw loss.png: Java found no usable fonts ("
                    + jdk.getMessage() + ")"), e.getMessage());
        }
        // anything else passes unchanged
        IllegalStateException other = new IllegalStateException("closed scope");
        assertSame(other, assertThrows(IllegalStateException.class, () -> Plots.withFonts(png, () -> {
            throw other;
        })));
        OutOfMemoryError oom = new OutOfMemoryError("font cache");           // named so, still not ours to catch
        assertSame(oom, assertThrows(OutOfMemoryError.class, () -> Plots.withFonts(png, () -> {
            throw oom;
        })));
        IOException io = new IOException("disk full");
        assertSame(io, assertThrows(IOException.class, () -> Plots.withFonts(png, () -> {
            throw io;
        })));
    }

    private static RuntimeException sneaky(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        throw (Error) t;
    }

    @Test
    void trainSampleAndDemoGoOnWithoutFonts() throws Exception {
        assumeTrue(run(List.of("unshare", "-rm", "true"), "probe") == 0,
                "unshare -rm (user and mount namespaces) is not available here");
        int probe = runWithoutFonts("probe-fonts", Probe.class, List.of());
        assumeTrue(probe == 3, () -> "the fonts could not be hidden here (probe exit " + probe + "):\n"
                + readQuietly("probe-fonts"));
        StringBuilder csv = new StringBuilder("x,y\n");
        for (int i = 0; i < 96; i++) {
            csv.append(Math.cos(i * 0.2)).append(',').append(Math.sin(i * 0.2)).append('\n');
        }
        Path data = Files.writeString(dir.resolve("ring.csv"), csv.toString());
        Path run = dir.resolve("run");
        List<String> train = List.of("train", "--data", data.toString(), "--out", run.toString(), "--model", "mlp",
                "--hidden", "16", "--blocks", "1", "--batch", "16", "--warmup", "2", "--sample-every", "4",
                "--checkpoint-every", "4", "--held-out-loss-every", "4", "--backend", "cpu", "--threads", "1");
        // 8 steps with fonts (loss.png and the grids drawn), then resumed to 16 without
        List<String> withFonts = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                Main.class.getName()));
        withFonts.addAll(train);
        withFonts.addAll(List.of("--steps", "8"));
        assertEquals(0, run(withFonts, "train-fonts"), () -> readQuietly("train-fonts"));
        assertTrue(Files.exists(run.resolve("loss.png")) && Files.exists(run.resolve("samples/latest.png")));
        List<String> resume = new ArrayList<>(train);
        resume.addAll(List.of("--steps", "16", "--resume"));
        int code = runWithoutFonts("train", resume);
        String out = read("train");
        assertEquals(0, code, out);
        assertTrue(Files.exists(run.resolve("checkpoints").resolve("step-000016.safetensors")), out);
        assertTrue(Files.exists(run.resolve("loss.csv")), out);
        // no picture of step 8 stays beside the numbers of step 16; each warning once, not at every update
        assertFalse(Files.exists(run.resolve("loss.png")), out);
        assertFalse(Files.exists(run.resolve("samples/latest.png")), out);
        assertTrue(out.contains("warning     loss.png not drawn (the older one removed): cannot draw loss.png: Java "
                + "found no usable fonts"), out);
        assertEquals(1, out.split("loss.png not drawn", -1).length - 1, out);
        assertTrue(out.contains("warning     sample grids not drawn from step 12 (the older samples/latest.png "
                + "removed): cannot draw step-000012.png: Java found no usable fonts"), out);
        assertEquals(1, out.split("grids not drawn", -1).length - 1, out);
        assertTrue(Files.readString(run.resolve("run.json")).contains("\"complete\""), out);

        // sample: a scatter plot of vectors needs text; the command fails with the remedy, in one line
        Path png = dir.resolve("s.png");
        int sample = runWithoutFonts("sample", List.of("sample", "--checkpoint", run.toString(), "--n", "16",
                "--out", png.toString(), "--backend", "cpu"));
        String s = read("sample");
        assertEquals(1, sample, s);
        assertTrue(s.contains("diffusion4j sample: cannot draw s.png: Java found no usable fonts")
                && s.contains("fonts-dejavu-core"), s);
        assertFalse(s.contains("sampled ") || s.contains("Exception"), "checked before sampling, in words: " + s);

        // the demo draws its panels without captions
        Path demo = dir.resolve("demo.png");
        int d = runWithoutFonts("demo", List.of("demo", "--backend", "cpu", "--steps", "8", "--batch", "32",
                "--samples", "64", "--sampling-steps", "2", "--hidden", "16", "--out", demo.toString()));
        String ds = read("demo");
        assertEquals(0, d, ds);
        assertTrue(Files.size(demo) > 1000, ds);
        assertTrue(ds.contains("demo.png drawn without captions: Java found no usable fonts ("), ds);
    }

    /** The CLI in a child JVM whose font folders (those that exist) are covered by an empty folder. */
    private int runWithoutFonts(String name, List<String> args) throws Exception {
        return runWithoutFonts(name, Main.class, args);
    }

    private int runWithoutFonts(String name, Class<?> main, List<String> args) throws Exception {
        Path empty = Files.createDirectories(dir.resolve("no-fonts"));
        StringBuilder mounts = new StringBuilder();
        for (String f : List.of("/usr/share/fonts", "/usr/local/share/fonts", "/usr/lib/X11/fonts",
                "/var/cache/fontconfig")) {
            if (Files.isDirectory(Path.of(f))) {
                mounts.append("mount --bind '").append(empty).append("' ").append(f).append(" || exit 97; ");
            }
        }
        List<String> cmd = new ArrayList<>(List.of("unshare", "-rm", "sh", "-c", mounts + "exec \"$@\"", "sh",
                ProcessHandle.current().info().command().orElse("java"), "--enable-native-access=ALL-UNNAMED",
                "-Duser.home=" + empty, "-cp", System.getProperty("java.class.path"), main.getName()));
        cmd.addAll(args);
        return run(cmd, name);
    }

    private int run(List<String> cmd, String name) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve(name + ".log").toFile());
        pb.environment().put("HOME", dir.resolve("no-fonts").toString());
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            return -1;                                                     // no unshare on this machine
        }
        try {
            assertTrue(p.waitFor(180, TimeUnit.SECONDS), name + " finished");
            return p.exitValue();
        } finally {
            p.destroyForcibly();
        }
    }

    private String readQuietly(String name) {
        try {
            return read(name);
        } catch (IOException e) {
            return e.toString();
        }
    }

    /** Draws one line of text ({@link Plots#requireFonts}): exit 0 when it works, 3 when Java finds no fonts. */
    static final class Probe {
        public static void main(String[] args) throws IOException {
            try {
                Plots.requireFonts(Path.of("probe.png"));
            } catch (Plots.NoFontsException e) {
                System.out.println(e.getMessage());
                System.exit(3);
            }
            System.exit(0);
        }
    }

    private String read(String name) throws IOException {
        return Files.readString(dir.resolve(name + ".log"));
    }
}
