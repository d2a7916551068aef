package org.diffusion4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.diffusion4j.io.Idx;
import org.diffusion4j.io.Npy;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * End to end on a tiny generated IDX dataset: {@code train} a small class-conditional DiT into a run folder,
 * {@code sample} from it (determinism, invariance to {@code --n}), {@code eval} it, {@code --resume} it; commands are
 * run in-process through picocli with captured output.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TrainSampleEvalTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private Path dir;

    private Path data;
    private Path run;
    private Path cache;

    /** Exit code, stdout, stderr. */
    record Result(int code, String out, String err) {
        @Override
        public String toString() {
            return "exit " + code + "\n--- stdout\n" + out + "--- stderr\n" + err;
        }
    }

    static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.execute(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Result(code, out.toString(), err.toString());
    }

    private static String[] concat(String[] a, String... b) {
        List<String> l = new ArrayList<>(Arrays.asList(a));
        l.addAll(Arrays.asList(b));
        return l.toArray(String[]::new);
    }

    private String[] trainArgs(int steps) {
        return new String[] {"train", "--data", data.toString(), "--out", run.toString(), "--model", "dit", "--cond",
            "--hidden", "32", "--depth", "1", "--heads", "2", "--patch", "4", "--steps", Integer.toString(steps),
            "--batch", "16", "--lr", "2e-3", "--checkpoint-every", "15", "--sample-every", "15", "--sample-steps", "3",
            "--backend", "cpu", "--seed", "5"};
    }

    @BeforeAll
    void trainOnce(@TempDir Path tmp) throws IOException {
        dir = tmp;
        data = TinyData.idxFolder(dir.resolve("tiny"), 96, 30);
        run = dir.resolve("run");
        cache = dir.resolve("cache");
        Result r = run(trainArgs(30));
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("done        30 steps"), r::toString);
    }

    @Test
    @Order(1)
    void trainWritesRunJsonCheckpointsGridsAndLossCurve() throws IOException {
        JsonNode j = JSON.readTree(run.resolve("run.json").toFile());
        assertEquals("complete", j.get("status").asText());
        assertEquals(30, j.get("results").get("steps").asLong());
        assertTrue(Double.isFinite(j.get("results").get("finalLoss").asDouble()), j.toString());
        assertTrue(j.get("results").get("imagesPerSecond").asDouble() > 0, j.toString());
        assertTrue(j.get("results").get("wallSeconds").asDouble() > 0, j.toString());
        assertEquals("dit", j.get("model").get("kind").asText());
        assertEquals(3, j.get("model").get("config").get("numClasses").asInt());
        assertEquals("FLOW", j.get("training").get("objective").asText());
        assertEquals("t10k", j.get("data").get("heldOutFrom").asText());
        assertEquals(96, j.get("data").get("train").asInt());
        assertTrue(j.get("versions").has("java"));
        for (String f : List.of("checkpoints/step-000015.safetensors", "checkpoints/step-000030.safetensors",
                "checkpoints/latest.safetensors", "samples/step-000015.png", "samples/step-000030.png",
                "samples/latest.png", "loss.png", "loss.csv")) {
            assertTrue(Files.isRegularFile(run.resolve(f)), f);
        }
        assertArrayEquals(Files.readAllBytes(run.resolve("checkpoints/step-000030.safetensors")),
                Files.readAllBytes(run.resolve("checkpoints/latest.safetensors")));
        BufferedImage grid = ImageIO.read(run.resolve("samples/latest.png").toFile());
        assertNotNull(grid);
        // one column per class, 8 rows of 16-pixel tiles with 2-pixel padding, drawn 4x (tiles of >= 64 pixels)
        assertEquals(4 * (3 * 16 + 4 * 2), grid.getWidth());
        assertEquals(4 * (8 * 16 + 9 * 2), grid.getHeight());
        assertNotNull(ImageIO.read(run.resolve("loss.png").toFile()));
        assertEquals(31, Files.readAllLines(run.resolve("loss.csv")).size());
        try (var s = Files.walk(run)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().endsWith(".tmp")), "no temporary files left");
        }
    }

    @Test
    @Order(2)
    void sampleIsDeterministicAndTheNthSampleDoesNotDependOnN() throws IOException {
        String[] base = {"sample", "--checkpoint", run.toString(), "--steps", "3", "--backend", "cpu", "--batch", "4"};
        Result a = run(concat(base, "--seed", "11", "--n", "6", "--out", dir.resolve("a.png").toString(), "--save-raw",
                dir.resolve("a.npy").toString()));
        assertEquals(0, a.code(), a::toString);
        Result b = run(concat(base, "--seed", "11", "--n", "6", "--out", dir.resolve("b.png").toString(), "--save-raw",
                dir.resolve("b.npy").toString()));
        assertEquals(0, b.code(), b::toString);
        assertArrayEquals(Files.readAllBytes(dir.resolve("a.png")), Files.readAllBytes(dir.resolve("b.png")));
        assertArrayEquals(Files.readAllBytes(dir.resolve("a.npy")), Files.readAllBytes(dir.resolve("b.npy")));
        // an export (EMA weights, no optimizer state) samples exactly like the run, with its class names
        Path exported = dir.resolve("export/dit-ema.safetensors");
        Result ex = run("export", "--checkpoint", run.toString(), "--out", exported.toString(), "--backend", "cpu");
        assertEquals(0, ex.code(), ex::toString);
        assertTrue(ex.out().contains("EMA weights as F32"), ex::toString);
        assertTrue(Files.size(exported) < Files.size(run.resolve("checkpoints/latest.safetensors")) / 2,
                "no optimizer moments, no second copy of the weights");
        Result fromExport = run("sample", "--checkpoint", exported.toString(), "--steps", "3", "--backend", "cpu",
                "--batch", "4", "--seed", "11", "--n", "6", "--out", dir.resolve("x.png").toString(), "--save-raw",
                dir.resolve("x.npy").toString());
        assertEquals(0, fromExport.code(), fromExport::toString);
        assertArrayEquals(Files.readAllBytes(dir.resolve("a.npy")), Files.readAllBytes(dir.resolve("x.npy")),
                "the export samples bit for bit like the run");
        // it holds EMA weights only: --weights ema reads them, --weights raw is refused
        assertEquals(0, run("sample", "--checkpoint", exported.toString(), "--weights", "ema", "--steps", "2",
                "--backend", "cpu", "--n", "2", "--out", dir.resolve("xe.png").toString()).code());
        assertOneLineFailure(run("sample", "--checkpoint", exported.toString(), "--weights", "raw", "--steps", "2",
                "--backend", "cpu", "--n", "2", "--out", dir.resolve("xr.png").toString()), "holds only EMA weights");
        Result same = run("export", "--checkpoint", exported.toString(), "--out", exported.toString(), "--backend",
                "cpu");
        assertOneLineFailure(same, "is the checkpoint being exported");
        assertOneLineFailure(run("export", "--checkpoint", run.toString(), "--out", dir.resolve("w.bin").toString(),
                "--backend", "cpu"), "must end in .safetensors");
        assertOneLineFailure(run("export", "--checkpoint", run.toString(), "--out", dir.resolve("w.safetensors")
                .toString(), "--dtype", "f64", "--backend", "cpu"), "--dtype must be f32, bf16 or f16, got 'f64'");
        Result c = run(concat(base, "--seed", "11", "--n", "3", "--out", dir.resolve("c.png").toString(), "--save-raw",
                dir.resolve("c.idx").toString()));
        assertEquals(0, c.code(), c::toString);
        Npy.Array six = Npy.read(dir.resolve("a.npy"));
        assertArrayEquals(new long[] {6, 1, 16, 16}, six.shape());
        Idx.Array three = Idx.read(dir.resolve("c.idx"));
        assertArrayEquals(new int[] {3, 1, 16, 16}, three.dims());
        assertArrayEquals(Arrays.copyOf(six.values(), 3 * 256), three.toFloatArray(),
                "samples 0..2 are the same with --n 3 and --n 6");
        Result d = run(concat(base, "--n", "6", "--seed", "12", "--out", dir.resolve("d.png").toString(),
                "--save-raw", dir.resolve("d.npy").toString()));
        assertEquals(0, d.code(), d::toString);
        assertFalse(Arrays.equals(six.values(), Npy.read(dir.resolve("d.npy")).values()), "another seed differs");
        Result z = run(concat(base, "--seed", "11", "--n", "6", "--zoom", "3", "--out", dir.resolve("z.png").toString()));
        assertEquals(0, z.code(), z::toString);
        BufferedImage plain = ImageIO.read(dir.resolve("a.png").toFile());
        BufferedImage zoomed = ImageIO.read(dir.resolve("z.png").toFile());
        assertEquals(3 * plain.getWidth(), zoomed.getWidth());
        assertEquals(plain.getRGB(plain.getWidth() - 5, 7), zoomed.getRGB(3 * (plain.getWidth() - 5) + 2, 3 * 7 + 1),
                "--zoom draws each pixel as a 3 x 3 square");
        assertTrue(a.out().contains("sampling    6 samples") && a.out().contains("sampling    4/6")
                && a.out().contains("sampling    6/6"), "progress lines per batch: " + a);
        // guidance rescale: 0 is plain CFG bit for bit; 0.7 changes the guided samples, stays finite, keeps sample k
        String[] guided = concat(base, "--seed", "11", "--guidance", "4", "--out", dir.resolve("g.png").toString());
        Result g0 = run(concat(guided, "--n", "6", "--save-raw", dir.resolve("g0.npy").toString()));
        Result gz = run(concat(guided, "--n", "6", "--guidance-rescale", "0", "--save-raw",
                dir.resolve("gz.npy").toString()));
        Result gr = run(concat(guided, "--n", "6", "--guidance-rescale", "0.7", "--save-raw",
                dir.resolve("gr.npy").toString()));
        Result gr3 = run(concat(guided, "--n", "3", "--guidance-rescale", "0.7", "--save-raw",
                dir.resolve("gr3.npy").toString()));
        for (Result x : List.of(g0, gz, gr, gr3)) {
            assertEquals(0, x.code(), x::toString);
        }
        float[] plainCfg = Npy.read(dir.resolve("g0.npy")).values();
        float[] rescaled = Npy.read(dir.resolve("gr.npy")).values();
        assertArrayEquals(plainCfg, Npy.read(dir.resolve("gz.npy")).values(), "--guidance-rescale 0 is plain CFG");
        assertFalse(Arrays.equals(plainCfg, rescaled), "rescale 0.7 changes the guided samples");
        for (float v : rescaled) {
            assertTrue(Float.isFinite(v));
        }
        assertArrayEquals(Arrays.copyOf(rescaled, 3 * 256), Npy.read(dir.resolve("gr3.npy")).values(),
                "with the rescale too, samples 0..2 do not depend on --n");
        assertTrue(gr.out().contains("(rescale 0.70)"), gr::toString);
        Result badRescale = run(concat(guided, "--n", "2", "--guidance-rescale", "1.5"));
        assertEquals(1, badRescale.code(), badRescale::toString);
        assertTrue(badRescale.err().contains("--guidance-rescale must be in [0, 1], got 1.5"), badRescale::toString);
        Result huge = run(concat(base, "--n", "60", "--columns", "60", "--zoom", "64", "--out",
                dir.resolve("huge.png").toString()));
        assertEquals(1, huge.code(), huge::toString);
        assertTrue(huge.err().contains("69248 x") && huge.err().contains("too large"), huge::toString);
        assertFalse(huge.out().contains("sampling "), "refused before sampling: " + huge);
        Result small = run(concat(base, "--n", "2", "--out", dir.resolve("s.png").toString()));
        assertTrue(small.out().contains("--n 2 runs as one batch of 4"), small::toString);
        Result k = run(concat(base, "--n", "2", "--class", "7", "--out", dir.resolve("k.png").toString()));
        assertEquals(1, k.code(), k::toString);
        assertTrue(k.err().contains("--class 7"), k::toString);
    }

    @Test
    @Order(3)
    void evalWritesTheImageMetricsAndAddsThemToRunJson() throws IOException {
        Result r = run("eval", "--checkpoint", run.toString(), "--n", "24", "--reference", "30", "--steps", "3",
                "--batch", "8", "--backend", "cpu", "--cache-dir", cache.toString());
        assertEquals(0, r.code(), r::toString);
        JsonNode j = JSON.readTree(run.resolve("eval.json").toFile());
        JsonNode m = j.get("metrics");
        for (String key : List.of("classifier_fd", "classifier_fd_real_reference", "classifier_kid",
                "classifier_kid_std", "classifier_kid_real_reference", "classifier_accuracy",
                "classifier_accuracy_held_out", "class_coverage", "nn_ratio", "density", "density_real_reference")) {
            assertTrue(m.has(key) && Double.isFinite(m.get(key).asDouble()), key + " in " + j);
        }
        for (String key : List.of("precision", "recall", "coverage", "precision_real_reference",
                "recall_real_reference", "coverage_real_reference")) {
            double v = m.get(key).asDouble(-1);
            assertTrue(v >= 0 && v <= 1, key + " is a fraction: " + j);
        }
        assertTrue(j.get("settings").get("precision_recall").asText().contains("24 samples against 24 held-out"),
                "equal sizes: the smaller of --n and --reference: " + j);
        // a weak feature classifier is said to be one; the default guidance of a dropout-trained model is noted
        assertEquals(m.get("classifier_accuracy_held_out").asDouble() < EvalCommand.WEAK_CLASSIFIER,
                r.out().contains("the feature classifier recognises only"), r::toString);
        assertTrue(r.out().contains("note        guidance 2.0 (the default"), r::toString);
        assertTrue(m.get("classifier_fd").asDouble() >= 0);
        double acc = m.get("classifier_accuracy_held_out").asDouble();
        assertTrue(acc > 0.9, "the classifier separates the three synthetic classes: " + acc);
        JsonNode runJson = JSON.readTree(run.resolve("run.json").toFile());
        assertTrue(runJson.get("results").get("metrics").has("classifier_fd"), runJson.toString());
        assertEquals("30", j.get("settings").get("checkpoint_step").asText(), "which checkpoint was measured");
        assertEquals(30, runJson.get("results").get("metricsStep").asLong(), runJson::toString);
        assertFalse(runJson.get("results").get("metrics").has("checkpoint_step"), "no step among the scores");
        // found by a new-user trial: a second eval merged its metrics into the first one's; run.json now holds
        // exactly the latest eval's (here one too small for precision/recall, whose keys must not linger)
        Result small = run("eval", "--checkpoint", run.toString(), "--n", "4", "--reference", "30", "--steps", "2",
                "--batch", "4", "--backend", "cpu", "--cache-dir", cache.toString());
        assertEquals(0, small.code(), small::toString);
        assertTrue(small.out().contains("note        precision/recall not computed"), small::toString);
        JsonNode latest = JSON.readTree(run.resolve("eval.json").toFile()).get("metrics");
        assertFalse(latest.has("precision"), latest.toString());
        assertEquals(latest, JSON.readTree(run.resolve("run.json").toFile()).get("results").get("metrics"));

        // --guidance-sweep: one report per scale (the same noise each), a table, a plot; run.json left alone; the
        // first scale's report equals a plain eval at that guidance
        Result plain = run("eval", "--checkpoint", run.toString(), "--n", "12", "--reference", "30", "--steps", "2",
                "--batch", "4", "--guidance", "1", "--backend", "cpu", "--cache-dir", cache.toString(), "--out",
                dir.resolve("g1.json").toString());
        assertEquals(0, plain.code(), plain::toString);
        JsonNode runMetrics = JSON.readTree(run.resolve("run.json").toFile()).get("results").get("metrics");
        Result sw = run("eval", "--checkpoint", run.toString(), "--n", "12", "--reference", "30", "--steps", "2",
                "--batch", "4", "--guidance-sweep", "3,1", "--backend", "cpu", "--cache-dir", cache.toString());
        assertEquals(0, sw.code(), sw::toString);
        JsonNode list = JSON.readTree(run.resolve("eval-guidance.json").toFile());
        assertEquals(2, list.size(), list.toString());
        assertEquals("1.0", list.get(0).get("settings").get("guidance").asText());
        assertEquals("3.0", list.get(1).get("settings").get("guidance").asText());
        assertTrue(list.get(1).get("settings").get("sampler").asText().contains("guidance 3.0"), list.toString());
        assertEquals(JSON.readTree(dir.resolve("g1.json").toFile()).get("metrics"), list.get(0).get("metrics"));
        assertNotEquals(list.get(0).get("metrics"), list.get(1).get("metrics"));
        assertNotNull(ImageIO.read(run.resolve("eval-guidance.png").toFile()), "the plot");
        assertTrue(sw.out().contains("guidance ") && sw.out().lines().anyMatch(l -> l.startsWith("3.0 ")),
                sw::toString);
        assertEquals(runMetrics, JSON.readTree(run.resolve("run.json").toFile()).get("results").get("metrics"));
        Files.writeString(dir.resolve("mine.png"), "not the sweep's");             // found by a user trial
        Result png = run("eval", "--checkpoint", run.toString(), "--guidance-sweep", "1,2", "--out",
                dir.resolve("mine.json").toString(), "--backend", "cpu");
        assertTrue(png.code() != 0 && png.err().contains("mine.png exists"), png::toString);
        assertEquals("not the sweep's", Files.readString(dir.resolve("mine.png")));
        for (String[] bad : new String[][] {{"--guidance-sweep", "2"}, {"--guidance-sweep", "1,1"},
            {"--guidance-sweep", "1,x"}, {"--guidance-sweep", "1,-2"}, {"--guidance-sweep", "1,2", "--guidance", "2"}}) {
            List<String> args = new ArrayList<>(List.of("eval", "--checkpoint", run.toString(), "--backend", "cpu"));
            args.addAll(List.of(bad));
            Result b = run(args.toArray(String[]::new));
            assertEquals(1, b.code(), b::toString);
            assertTrue(b.err().contains("--guidance"), b::toString);
        }
        try (var s = Files.list(cache)) {
            assertEquals(1, s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).count());
        }
    }

    @Test
    @Order(4)
    void evalOfTheHeldOutSetItselfGivesZeroFdAndUnitNnRatio() throws IOException {
        // the held-out images as "samples": the feature pipeline must give FD ~ 0 and the NN ratio exactly 1
        Idx.Array images = Idx.readImages(data.resolve("t10k-images-idx3-ubyte.gz"));
        float[] v = new float[images.numel()];
        float[] raw = images.toFloatArray();
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (raw[i] / 127.5 - 1.0);
        }
        Path npy = dir.resolve("held.npy");
        Npy.write(npy, v, 30, 1, 16, 16);
        Path out = dir.resolve("held.eval.json"); // no --out: the default is x.eval.json beside x.npy
        Result r = run("eval", "--samples", npy.toString(), "--data", data.toString(), "--reference", "30",
                "--backend", "cpu", "--cache-dir", cache.toString());
        assertEquals(0, r.code(), r::toString);
        assertTrue(Files.isRegularFile(out), r::toString);
        assertTrue(r.out().contains(out.toAbsolutePath().normalize().toString()), r::toString);
        JsonNode m = JSON.readTree(out.toFile()).get("metrics");
        assertEquals(0.0, m.get("classifier_fd").asDouble(), 1e-6, m.toString());
        assertEquals(1.0, m.get("nn_ratio").asDouble(), 1e-12, m.toString());
        // every sample is a held-out image: each in its own k-NN ball, each ball holding its centre and k neighbours
        assertEquals(1.0, m.get("precision").asDouble(), m.toString());
        assertEquals(1.0, m.get("recall").asDouble(), m.toString());
        assertEquals(1.0, m.get("coverage").asDouble(), m.toString());
        assertEquals(6.0 / 5.0, m.get("density").asDouble(), 1e-12, m.toString());
        assertTrue(r.out().contains("classifier") && !r.out().contains("training the feature classifier"),
                "the classifier comes from the cache the first eval wrote: " + r);
        // the same samples as IDX (sample --save-raw x.idx writes that too): the same metrics
        Path idx = dir.resolve("held.idx");
        Idx.write(idx, Idx.Array.ofF32(v, 30, 1, 16, 16));
        Result ri = run("eval", "--samples", idx.toString(), "--data", data.toString(), "--reference", "30",
                "--backend", "cpu", "--cache-dir", cache.toString());
        assertEquals(0, ri.code(), ri::toString);
        JsonNode mi = JSON.readTree(dir.resolve("held.eval.json").toFile()).get("metrics");
        assertEquals(m.toString(), mi.toString(), "IDX and NPY of the same samples score the same");

        // found by a new-user trial: samples were scored unclipped (their images are clipped), and uint8 samples
        // unscaled. The held-out images with their saturated pixels pushed out of range, and as uint8, score as they do
        float[] pushed = v.clone();
        int outside = 0;
        for (int i = 0; i < pushed.length; i++) {
            if (Math.abs(pushed[i]) == 1f) {
                pushed[i] *= 4;
                outside++;
            }
        }
        assertTrue(outside > 0, "the test images have saturated pixels");
        Path far = dir.resolve("far.npy");
        Npy.write(far, pushed, 30, 1, 16, 16);
        Path u8 = dir.resolve("u8.npy");
        writeUint8Npy(u8, raw, 30, 16, 16);
        Path i32 = dir.resolve("i32.npy");                   // found by an adversarial trial: int32 was not scaled
        int[] ints = new int[raw.length];
        for (int i = 0; i < ints.length; i++) {
            ints[i] = (int) raw[i];
        }
        Npy.writeInt32(i32, ints, 30, 1, 16, 16);
        for (Path p : List.of(far, u8, i32)) {
            Result c = run("eval", "--samples", p.toString(), "--data", data.toString(), "--reference", "30",
                    "--backend", "cpu", "--cache-dir", cache.toString());
            assertEquals(0, c.code(), c::toString);
            JsonNode j = JSON.readTree(dir.resolve(p.getFileName().toString().replace(".npy", ".eval.json")).toFile());
            assertEquals(0.0, j.get("metrics").get("classifier_fd").asDouble(), 1e-6, j.toString());
            assertEquals(1.0, j.get("metrics").get("precision").asDouble(), j.toString());
            assertTrue(j.get("settings").get("clipping").asText().contains(p == far
                    ? String.format(java.util.Locale.ROOT, "%.1f %%", 100.0 * outside / pushed.length) : "0.0 %"),
                    j.toString());
            assertEquals(p != far, c.out().contains("holds integer images"), c::toString);
            assertEquals(p == far && outside > 0.05 * pushed.length, c.out().contains("lie beyond ±2"),
                    c::toString);                                // values beyond ±2 in over 5 % of the values
        }
        Path f255 = dir.resolve("f255.npy");                 // pixels 0..255 stored as floats: mostly outside
        Npy.write(f255, raw, 30, 1, 16, 16);
        Result w = run("eval", "--samples", f255.toString(), "--data", data.toString(), "--backend", "cpu",
                "--cache-dir", cache.toString());
        assertEquals(0, w.code(), w::toString);
        assertTrue(w.out().contains("lie beyond ±2: samples of another scale"), w::toString);
        float[] unit = new float[raw.length];                 // pixels in [0, 1]
        for (int i = 0; i < unit.length; i++) {
            unit[i] = raw[i] / 255f;
        }
        Path f01 = dir.resolve("f01.npy");
        Npy.write(f01, unit, 30, 1, 16, 16);
        Result w01 = run("eval", "--samples", f01.toString(), "--data", data.toString(), "--backend", "cpu",
                "--cache-dir", cache.toString());
        assertTrue(w01.out().contains("images in [0, 1]? map them to [-1, 1]"), w01::toString);
        ints[7] = 300;
        Npy.writeInt32(i32, ints, 30, 1, 16, 16);
        Result bad = run("eval", "--samples", i32.toString(), "--data", data.toString(), "--backend", "cpu",
                "--cache-dir", cache.toString());
        assertTrue(bad.code() != 0 && bad.err().contains("values in [0, 300]"), bad::toString);
        Path one = dir.resolve("one.npy");
        Npy.write(one, Arrays.copyOf(v, 256), 1, 1, 16, 16);
        Result single = run("eval", "--samples", one.toString(), "--data", data.toString(), "--backend", "cpu");
        assertTrue(single.code() != 0 && single.err().contains("holds 1 sample; eval needs at least 2"),
                single::toString);
        Result n = run("eval", "--samples", npy.toString(), "--data", data.toString(), "--n", "10");
        assertEquals(1, n.code(), n::toString);
        assertTrue(n.err().contains("--n applies to sampling a --checkpoint"), n::toString);
    }

    /** A NumPy {@code |u1} array {@code [n, h, w]} of the values in {@code raw} (0..255), format version 1.0. */
    private static void writeUint8Npy(Path file, float[] raw, int n, int h, int w) throws IOException {
        String dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (" + n + ", " + h + ", " + w + "), }";
        int pad = 64 - (10 + dict.length() + 1) % 64;
        String header = dict + " ".repeat(pad % 64) + "\n";
        java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
        b.write(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0});
        b.write(header.length() & 0xFF);
        b.write(header.length() >> 8);
        b.write(header.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        for (float f : raw) {
            b.write((int) f);
        }
        Files.write(file, b.toByteArray());
    }

    @Test
    @Order(5)
    void resumeContinuesAndRefusesConflictingOptions() throws IOException {
        Result bad = run("train", "--out", run.toString(), "--resume", "--steps", "45", "--lr", "1e-4",
                "--backend", "cpu");
        assertEquals(1, bad.code(), bad::toString);
        assertEquals(1, bad.err().strip().lines().count(), bad::toString);
        assertTrue(bad.err().contains("--lr") && bad.err().contains("conflicts"), bad::toString);

        Result r = run(concat(trainArgs(45), "--resume"));              // the same options again are fine
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("resume      from step 30"), r::toString);
        JsonNode j = JSON.readTree(run.resolve("run.json").toFile());
        assertEquals(45, j.get("results").get("steps").asLong());
        assertEquals("complete", j.get("status").asText());
        assertTrue(Files.isRegularFile(run.resolve("checkpoints/step-000045.safetensors")));
        List<String> lossLines = Files.readAllLines(run.resolve("loss.csv"));
        assertEquals(46, lossLines.size());
        assertTrue(j.get("results").get("metrics").has("classifier_fd"), "metrics survive a resume");
        // the final loss averages the last 10 % of the whole run (4 of 45 steps), as without the interruption
        assertTrue(r.out().contains("(mean of the last 4: 10 % of the steps)"), r::toString);
        double mean = 0;
        for (String line : lossLines.subList(lossLines.size() - 4, lossLines.size())) {
            mean += Double.parseDouble(line.split(",")[1]) / 4;
        }
        assertEquals(mean, j.get("results").get("finalLoss").asDouble(), 1e-6 * Math.abs(mean));

        Result again = run(trainArgs(30));
        assertEquals(1, again.code(), again::toString);
        assertTrue(again.err().contains("already holds a run"), again::toString);
    }

    @Test
    @Order(6)
    void gridOptionSpacesTheLevelsAndNamesMismatches() throws IOException {
        String[] base = {"sample", "--checkpoint", run.toString(), "--steps", "4", "--backend", "cpu", "--batch", "4",
            "--n", "4", "--seed", "3"};
        Path[] raw = new Path[3];
        String[] grids = {"auto", "karras", "shift:3"};
        for (int i = 0; i < grids.length; i++) {
            raw[i] = dir.resolve("grid-" + i + ".npy");
            Result r = run(concat(base, "--grid", grids[i], "--out", dir.resolve("grid-" + i + ".png").toString(),
                    "--save-raw", raw[i].toString()));
            assertEquals(0, r.code(), r::toString);
            assertTrue(r.out().contains(i == 0 ? "4 steps, guidance" : "4 steps (" + (i == 1 ? "karras:7" : "shift:3")
                    + " grid)"), r::toString);
        }
        assertFalse(Arrays.equals(Npy.read(raw[0]).values(), Npy.read(raw[1]).values()), "karras differs");
        assertFalse(Arrays.equals(Npy.read(raw[0]).values(), Npy.read(raw[2]).values()), "shift differs");
        Result again = run(concat(base, "--grid", "karras", "--out", dir.resolve("grid-again.png").toString(),
                "--save-raw", dir.resolve("grid-again.npy").toString()));
        assertEquals(0, again.code(), again::toString);
        assertArrayEquals(Files.readAllBytes(raw[1]), Files.readAllBytes(dir.resolve("grid-again.npy")));
        // the flow model's schedule has no integer timesteps; typos fail before the model loads
        assertOneLineFailure(run(concat(base, "--grid", "trailing", "--out", dir.resolve("grid-bad.png").toString())),
                "--grid trailing picks integer timesteps of models trained with --schedule linear");
        assertOneLineFailure(run(concat(base, "--grid", "karas", "--out", dir.resolve("grid-bad.png").toString())),
                "--grid: unknown grid spacing 'karas'", "karras:RHO");
        assertFalse(Files.exists(dir.resolve("grid-bad.png")));
        Result eval = run("eval", "--checkpoint", run.toString(), "--n", "8", "--reference", "30", "--steps", "3",
                "--grid", "logsnr", "--backend", "cpu", "--cache-dir", cache.toString(), "--out",
                dir.resolve("grid-eval.json").toString());
        assertEquals(0, eval.code(), eval::toString);
        assertTrue(JSON.readTree(dir.resolve("grid-eval.json").toFile()).get("settings").get("sampler").asText()
                .contains("(logsnr grid)"), eval::toString);
        assertOneLineFailure(run("eval", "--samples", raw[0].toString(), "--data", data.toString(), "--grid",
                "karras", "--backend", "cpu"), "--grid applies to sampling a --checkpoint");
        // a report overwrites an earlier report, never an unrelated JSON file
        Result reeval = run("eval", "--checkpoint", run.toString(), "--n", "8", "--reference", "30", "--steps", "3",
                "--backend", "cpu", "--cache-dir", cache.toString(), "--out", dir.resolve("grid-eval.json").toString());
        assertEquals(0, reeval.code(), reeval::toString);
        Path foreign = Files.writeString(dir.resolve("mine.json"), "{\"a\": 1}");
        assertOneLineFailure(run("eval", "--checkpoint", run.toString(), "--n", "8", "--backend", "cpu", "--out",
                foreign.toString()), "is not an eval report; refusing to overwrite it");
        assertEquals("{\"a\": 1}", Files.readString(foreign));
    }

    @Test
    @Order(7)
    void labelledImagesWithoutCondAreSaidToBeUnused() {
        Result r = run("train", "--data", data.toString(), "--out", dir.resolve("uncond").toString(), "--model", "dit",
                "--hidden", "16", "--depth", "1", "--heads", "2", "--patch", "4", "--steps", "1", "--batch", "8",
                "--sample-every", "0", "--backend", "cpu");
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("note        the 3 classes of the data are not used: add --cond"), r::toString);
    }

    @Test
    @Order(8)
    void infoDescribesACheckpointWithoutLoadingIt() throws IOException {
        Result r = run("info", "--checkpoint", run.toString());
        assertEquals(0, r.code(), r::toString);
        long step = org.diffusion4j.training.Checkpoint.readInfo(run.resolve("checkpoints/latest.safetensors")).step();
        for (String part : List.of("latest.safetensors", "kind        training checkpoint", "model       dit {",
                "step        " + step + " (seed 5)", "objective flow", "classes     3 (without names",
                "data        " + data)) {
            assertTrue(r.out().contains(part), () -> "'" + part + "' in " + r);
        }
        Path exported = dir.resolve("info-export.safetensors");
        Result ex = run("export", "--checkpoint", run.toString(), "--out", exported.toString(), "--dtype", "bf16",
                "--backend", "cpu");
        assertEquals(0, ex.code(), ex::toString);
        Result ri = run("info", "--checkpoint", exported.toString());
        assertEquals(0, ri.code(), ri::toString);
        assertTrue(ri.out().contains("kind        export of EMA weights") && ri.out().contains("(BF16)"), ri::toString);
        Path text = Files.writeString(dir.resolve("not.safetensors"), "hello");
        assertOneLineFailure(run("info", "--checkpoint", text.toString()), text.toString());
    }

    /** Time samplers decreasing in u (mode:S) and narrow ones: the grid's start comes from the trained range. */
    @Test
    void timeSamplersBoundTheGridsStart() throws IOException {
        StringBuilder b = new StringBuilder("x,y\n");
        for (int i = 0; i < 64; i++) {
            b.append(Math.cos(i * 0.1)).append(',').append(Math.sin(i * 0.1)).append('\n');
        }
        Path csv = Files.writeString(dir.resolve("modes.csv"), b.toString());
        for (String ts : List.of("mode:1.29", "uniform:0:0.01")) {
            Path out = dir.resolve("ts-" + ts.replace(':', '_'));
            Result t = run("train", "--data", csv.toString(), "--out", out.toString(), "--model", "mlp", "--hidden",
                    "16", "--blocks", "1", "--steps", "2", "--batch", "8", "--sample-every", "0", "--time-sampler", ts,
                    "--objective", "v", "--schedule", "cosine", "--backend", "cpu");
            if (ts.startsWith("mode")) {
                assertEquals(0, t.code(), t::toString);
                Result s = run("sample", "--checkpoint", out.toString(), "--n", "4", "--batch", "4", "--steps", "3",
                        "--grid", "karras", "--out", dir.resolve("ts.png").toString(), "--backend", "cpu");
                assertEquals(0, s.code(), s::toString);
            } else {
                assertOneLineFailure(t, "trained on times t <= 0.01 only (--time-sampler uniform:0:0.01)");
            }
        }
    }

    // ---------------------------------------------------------------- bad input

    private void assertOneLineFailure(Result r, String... fragments) {
        assertNotEquals(0, r.code(), r::toString);
        String err = r.err().strip();
        assertEquals(1, err.lines().count(), () -> "one line: " + r);
        assertFalse(err.contains("\tat "), () -> "no stack trace: " + r);
        for (String f : fragments) {
            assertTrue(err.contains(f), () -> "'" + f + "' in " + r);
        }
    }

    @Test
    void badInputsGiveOneLineReasons() throws IOException {
        Path out = dir.resolve("bad-run");
        Path missing = dir.resolve("nope");
        assertOneLineFailure(run("train", "--data", missing.toString(), "--out", out.toString(), "--backend", "cpu"),
                missing.toString());
        assertOneLineFailure(run("train", "--resume", "--out", missing.toString(), "--backend", "cpu"),
                "--resume: " + missing.toAbsolutePath(), "does not exist");
        assertFalse(Files.exists(missing), "nothing created");

        Path corrupt = dir.resolve("corrupt");
        Files.createDirectories(corrupt);
        TinyData.writeIdx(corrupt, "train", 10, 0, false);
        Path img = corrupt.resolve("train-images-idx3-ubyte");
        byte[] bytes = Files.readAllBytes(img);
        Files.write(img, Arrays.copyOf(bytes, bytes.length - 100));
        assertOneLineFailure(run("train", "--data", corrupt.toString(), "--out", out.toString(), "--backend", "cpu"),
                "train-images-idx3-ubyte");

        Path empty = dir.resolve("empty");
        Files.createDirectories(empty);
        assertOneLineFailure(run("train", "--data", empty.toString(), "--out", out.toString(), "--backend", "cpu"),
                empty.toString());

        Path csv = dir.resolve("nan.csv");
        Files.writeString(csv, "x,y\n1,2\n3,NaN\n");
        assertOneLineFailure(run("train", "--data", csv.toString(), "--out", out.toString(), "--model", "mlp",
                "--backend", "cpu"), "nan.csv", "NaN");

        Path npy = dir.resolve("short.npy");
        Files.write(npy, new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0});
        assertOneLineFailure(run("train", "--data", npy.toString(), "--out", out.toString(), "--model", "mlp",
                "--backend", "cpu"), "short.npy");

        assertOneLineFailure(run("train", "--data", data.toString(), "--out", out.toString(), "--patch", "5",
                "--backend", "cpu"), "--patch 5");
        Path points = dir.resolve("points.csv");
        Files.writeString(points, "x,y\n1,2\n3,4\n5,6\n");
        assertOneLineFailure(run("train", "--data", points.toString(), "--out", out.toString(), "--model", "mlp",
                "--cond", "--backend", "cpu"), "--cond needs labelled data");
        assertOneLineFailure(run("train", "--data", data.toString(), "--out", out.toString(), "--objective", "eps",
                "--sampler", "flow-euler", "--backend", "cpu"), "flow-euler");
        assertOneLineFailure(run("train", "--data", data.toString(), "--out", out.toString(), "--objective", "eps",
                "--schedule", "rf", "--backend", "cpu"), "--objective eps is undefined", "--schedule rf",
                "--time-sampler uniform:0:0.99");
        // a guidance that only the sample grids use, and a floor above the peak, are refused before any training
        assertOneLineFailure(run("train", "--data", data.toString(), "--out", out.toString(), "--cond",
                "--guidance", "NaN", "--backend", "cpu"), "--guidance", "NaN");
        assertOneLineFailure(run("train", "--data", data.toString(), "--out", out.toString(), "--cond",
                "--guidance", "-1", "--backend", "cpu"), "--guidance", "-1");
        assertOneLineFailure(run("train", "--data", data.toString(), "--out", out.toString(), "--lr", "1e-3",
                "--min-lr", "2", "--backend", "cpu"), "--min-lr", "2.0");
        Path stuck = dir.resolve("stuck");                  // a run that failed before its first checkpoint
        Files.createDirectories(stuck);
        Files.writeString(stuck.resolve("run.json"), "{}");
        assertOneLineFailure(run("train", "--data", data.toString(), "--out", stuck.toString(), "--backend", "cpu"),
                "no checkpoint yet", "may still be running", "delete the folder");
        assertOneLineFailure(run("train", "--out", stuck.toString(), "--resume", "--backend", "cpu"),
                "has no checkpoint (checkpoints/latest.safetensors)", "stopped before its first checkpoint",
                "start again with another --out");
        Result unknown = run("train", "--out", out.toString(), "--bogus");
        assertEquals(2, unknown.code(), unknown::toString);
        assertOneLineFailure(unknown, "--bogus");
        assertOneLineFailure(run("sample", "--checkpoint", missing.toString(), "--backend", "cpu"), missing.toString());
        assertOneLineFailure(run("sample", "--checkpoint", npy.toString(), "--backend", "cpu"), "short.npy");
        assertOneLineFailure(run("eval", "--backend", "cpu"), "--checkpoint", "--samples");
        assertFalse(Files.exists(out), "nothing written for bad input");

        Result verbose = run("train", "--data", missing.toString(), "--out", out.toString(), "--verbose");
        assertNotEquals(0, verbose.code());
        assertTrue(verbose.err().contains("\tat "), "--verbose prints the stack trace: " + verbose);
    }

    @Test
    void everyCommandHasHelp() {
        for (String cmd : List.of("train", "sample", "eval", "export")) {
            Result r = run(cmd, "--help");
            assertEquals(0, r.code(), r::toString);
            assertTrue(r.out().contains("Usage: diffusion4j " + cmd), r::toString);
        }
    }

    @Test
    void vectorsTrainAnMlpAndEvalGivesTheVectorMetrics() throws IOException {
        StringBuilder b = new StringBuilder("x,y\n");
        for (int i = 0; i < 200; i++) {
            double a = i * 2 * Math.PI / 200;
            b.append(Math.cos(a)).append(',').append(Math.sin(a)).append('\n');
        }
        Path csv = dir.resolve("ring.csv");
        Files.writeString(csv, b.toString());
        Path vrun = dir.resolve("vrun");
        Result t = run("train", "--data", csv.toString(), "--out", vrun.toString(), "--model", "mlp", "--hidden",
                "32", "--blocks", "1", "--steps", "20", "--batch", "32", "--checkpoint-every", "20",
                "--sample-every", "0", "--sample-steps", "4", "--backend", "cpu");
        assertEquals(0, t.code(), t::toString);
        assertNotNull(ImageIO.read(vrun.resolve("samples/latest.png").toFile()), "a scatter plot of the samples");
        Result e = run("eval", "--checkpoint", vrun.toString(), "--n", "40", "--steps", "4", "--backend", "cpu");
        assertEquals(0, e.code(), e::toString);
        JsonNode m = JSON.readTree(vrun.resolve("eval.json").toFile()).get("metrics");
        for (String key : List.of("sliced_wasserstein", "mmd2_u", "energy_distance_u",
                "sliced_wasserstein_real_reference", "precision", "recall", "density", "coverage",
                "recall_real_reference")) {
            assertTrue(m.has(key), key + " in " + m);
        }
        assertFalse(m.has("precision_std"), "40 samples, 20 held-out rows: one subset, no spread");
        Result unc = run("eval", "--checkpoint", vrun.toString(), "--guidance-sweep", "1,2", "--backend", "cpu");
        assertTrue(unc.code() != 0 && unc.err().contains("--guidance-sweep needs a class-conditional model"),
                unc::toString);                                  // before any sampling
        // 8 samples against 20 held-out rows: two disjoint held-out subsets of 8, their mean and spread
        Result few = run("eval", "--checkpoint", vrun.toString(), "--n", "8", "--steps", "4", "--backend", "cpu");
        assertEquals(0, few.code(), few::toString);
        JsonNode fj = JSON.readTree(vrun.resolve("eval.json").toFile());
        assertTrue(fj.get("metrics").has("precision_std") && fj.get("metrics").has("coverage_std"), fj.toString());
        assertTrue(fj.get("settings").get("precision_recall").asText().contains("over 2 disjoint held-out subsets"),
                fj.toString());
        // the export keeps the standardisation: its samples come back in the data's units, as the run's do
        Path vx = dir.resolve("vrun-bf16.safetensors");
        assertEquals(0, run("export", "--checkpoint", vrun.toString(), "--out", vx.toString(), "--dtype", "bf16",
                "--backend", "cpu").code());
        Result fromRun = run("sample", "--checkpoint", vrun.toString(), "--n", "8", "--steps", "4", "--backend", "cpu",
                "--out", dir.resolve("vr.png").toString(), "--save-raw", dir.resolve("vr.npy").toString());
        Result fromBf16 = run("sample", "--checkpoint", vx.toString(), "--n", "8", "--steps", "4", "--backend", "cpu",
                "--out", dir.resolve("vx.png").toString(), "--save-raw", dir.resolve("vx.npy").toString());
        assertEquals(0, fromRun.code(), fromRun::toString);
        assertEquals(0, fromBf16.code(), fromBf16::toString);
        float[] want = Npy.read(dir.resolve("vr.npy")).values();
        float[] got = Npy.read(dir.resolve("vx.npy")).values();
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], 0.05, "BF16 weights move sample " + i / 2 + " a little, not to other units");
        }
        Result s = run("sample", "--checkpoint", vrun.toString(), "--n", "5", "--steps", "4", "--backend", "cpu",
                "--guidance", "3", "--out", dir.resolve("v.png").toString());
        assertOneLineFailure(s, "--guidance");
    }
}
