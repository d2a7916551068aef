package org.diffusion4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.io.Safetensors;
import org.diffusion4j.io.SafetensorsFile;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code train --init-from}: a new run starts from a checkpoint's EMA weights (checked tensor by tensor after one
 * step at a learning rate too small to move them), takes the architecture, objective and schedule from the file,
 * gets a fresh class embedding for another class count, and refuses conflicting options and unfit data without
 * creating the run folder.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class InitFromTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private Path dir;
    private Path data;
    private Path base;

    private static TrainSampleEvalTest.Result run(String... args) {
        return TrainSampleEvalTest.run(args);
    }

    private static String[] args(String... a) {
        List<String> l = new ArrayList<>(Arrays.asList(a));
        l.addAll(List.of("--batch", "8", "--sample-steps", "2", "--backend", "cpu", "--seed", "3"));
        return l.toArray(String[]::new);
    }

    @BeforeAll
    void trainBase(@TempDir Path tmp) throws IOException {
        dir = tmp;
        data = TinyData.idxFolder(dir.resolve("tiny"), 48, 12);
        base = dir.resolve("base");
        TrainSampleEvalTest.Result r = run(args("train", "--data", data.toString(), "--out", base.toString(),
                "--model", "dit", "--cond", "--hidden", "32", "--depth", "1", "--heads", "2", "--patch", "4",
                "--steps", "12", "--lr", "2e-3", "--ema", "0.99"));
        assertEquals(0, r.code(), r::toString);
    }

    private static Map<String, float[]> tensors(Path file) throws IOException {
        Map<String, float[]> m = new LinkedHashMap<>();
        try (CpuBackend be = new CpuBackend(1); TensorScope scope = TensorScope.open()) {
            SafetensorsFile f = Safetensors.read(file, scope, be);
            for (String name : f.tensors().keySet()) {
                m.put(name, f.tensor(name).toFloatArray());
            }
        }
        return m;
    }

    private static double maxAbsDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double d = 0;
        for (int i = 0; i < a.length; i++) {
            d = Math.max(d, Math.abs((double) a[i] - b[i]));
        }
        return d;
    }

    /** A folder of two classes ({@code bar}, {@code square}) of TinyData images as PNG. */
    private Path twoClassFolder() throws IOException {
        Path folder = dir.resolve("two");
        if (Files.isDirectory(folder)) {
            return folder;
        }
        String[] names = {"bar", "square"};
        int[] classes = {0, 2};
        for (int c = 0; c < 2; c++) {
            Path sub = Files.createDirectories(folder.resolve(names[c]));
            for (int i = 0; i < 10; i++) {
                byte[] px = TinyData.image(classes[c], i);
                BufferedImage img = new BufferedImage(TinyData.SIDE, TinyData.SIDE, BufferedImage.TYPE_BYTE_GRAY);
                img.getRaster().setDataElements(0, 0, TinyData.SIDE, TinyData.SIDE, px);
                ImageIO.write(img, "png", sub.resolve(i + ".png").toFile());
            }
        }
        return folder;
    }

    /**
     * Found by a user trial: fine-tuning on the same CSV with another --seed held out other rows (some the source
     * model trained on) without a word. A note says so and how to hold out the same rows; with them, no note.
     */
    @Test
    void anotherSplitOfTheSameDataIsNoted(@TempDir Path tmp) throws IOException {
        StringBuilder csv = new StringBuilder("a,b\n");
        for (int i = 0; i < 60; i++) {
            csv.append(Math.sin(i)).append(',').append(Math.cos(3 * i)).append('\n');
        }
        Path file = tmp.resolve("v.csv");
        Files.writeString(file, csv);
        String[] common = {"--model", "mlp", "--hidden", "16", "--blocks", "1", "--steps", "2", "--batch", "8",
            "--sample-every", "0", "--held-out-loss-every", "0", "--backend", "cpu"};
        List<String> src = new java.util.ArrayList<>(List.of("train", "--data", file.toString(), "--out",
                tmp.resolve("src").toString(), "--seed", "7"));
        src.addAll(List.of(common));
        assertEquals(0, run(src.toArray(String[]::new)).code());
        for (String seed : List.of("8", "7")) {
            List<String> ft = new java.util.ArrayList<>(List.of("train", "--data", file.toString(), "--out",
                    tmp.resolve("ft" + seed).toString(), "--init-from", tmp.resolve("src").toString(), "--seed", seed,
                    "--steps", "2", "--batch", "8", "--sample-every", "0", "--held-out-loss-every", "0", "--backend",
                    "cpu"));
            TrainSampleEvalTest.Result r = run(ft.toArray(String[]::new));
            assertEquals(0, r.code(), r::toString);
            assertEquals(seed.equals("8"), r.out().contains("--seed 7 --held-out 0.1 holds out the same rows"),
                    r::toString);
        }
    }

    @Test
    void aNewRunStartsFromTheFileEmaWeightsWithItsArchitecture() throws IOException {
        Path out = dir.resolve("same");
        TrainSampleEvalTest.Result r = run(args("train", "--data", data.toString(), "--out", out.toString(),
                "--init-from", base.toString(), "--cond", "--steps", "1", "--lr", "1e-12", "--ema", "0"));
        assertEquals(0, r.code(), r::toString);
        Path from = base.resolve("checkpoints/latest.safetensors").toAbsolutePath().normalize();
        assertTrue(r.out().contains("init        weights of " + from + " (step 12, EMA averages)"), r::toString);
        JsonNode j = JSON.readTree(out.resolve("run.json").toFile());
        assertEquals(from.toString(), j.get("options").get("initFrom").asText());
        JsonNode cfg = j.get("model").get("config");
        assertEquals(32, cfg.get("hidden").asInt());                // not the --hidden default of 128
        assertEquals(2, cfg.get("heads").asInt());
        assertEquals(3, cfg.get("numClasses").asInt());

        Map<String, float[]> baseTensors = tensors(from);
        Map<String, float[]> mine = tensors(out.resolve("checkpoints/latest.safetensors"));
        int differsFromRaw = 0;
        for (Map.Entry<String, float[]> e : mine.entrySet()) {
            if (e.getKey().startsWith("optim.") || e.getKey().equals("pos_embed")) {
                continue;
            }
            float[] ema = baseTensors.get("ema." + e.getKey());
            assertTrue(ema != null, e.getKey());
            // one AdamW step at lr 1e-12 moves no weight by more than ~1e-12
            assertTrue(maxAbsDiff(ema, e.getValue()) < 1e-9, e.getKey() + " is not the file's EMA average");
            if (maxAbsDiff(baseTensors.get(e.getKey()), e.getValue()) > 1e-6) {
                differsFromRaw++;
            }
        }
        assertTrue(differsFromRaw > 0, "the EMA averages, not the trained weights, were loaded");

        Path exported = dir.resolve("same-export.safetensors");
        TrainSampleEvalTest.Result e = run("export", "--checkpoint", out.toString(), "--out", exported.toString(),
                "--backend", "cpu");
        assertEquals(0, e.code(), e::toString);
        for (Path p : List.of(out, exported)) {
            TrainSampleEvalTest.Result info = run("info", "--checkpoint", p.toString());
            assertEquals(0, info.code(), info::toString);
            assertTrue(info.out().contains("fine-tuned  from " + from + " (step 12, EMA averages)"), info::toString);
            assertTrue(info.out().contains(" (held out its t10k split, "), info::toString);
        }
    }

    @Test
    void anotherClassCountGetsAFreshClassEmbeddingAndNoCondDropsIt() throws IOException {
        Path two = twoClassFolder();
        Path out = dir.resolve("two-classes");
        TrainSampleEvalTest.Result r = run(args("train", "--data", two.toString(), "--out", out.toString(),
                "--init-from", base.toString(), "--cond", "--steps", "1", "--lr", "1e-12", "--ema", "0"));
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("a new class embedding (3 classes there, 2 here)"), r::toString);
        // a run of the same architecture from random weights, for the class embedding's initialisation
        Path fresh = dir.resolve("two-fresh");
        TrainSampleEvalTest.Result f = run(args("train", "--data", two.toString(), "--out", fresh.toString(),
                "--model", "dit", "--cond", "--hidden", "32", "--depth", "1", "--heads", "2", "--patch", "4",
                "--steps", "1", "--lr", "1e-12", "--ema", "0"));
        assertEquals(0, f.code(), f::toString);
        Map<String, float[]> baseTensors = tensors(base.resolve("checkpoints/latest.safetensors"));
        Map<String, float[]> mine = tensors(out.resolve("checkpoints/latest.safetensors"));
        Map<String, float[]> random = tensors(fresh.resolve("checkpoints/latest.safetensors"));
        String table = "y_embedder.embedding_table.weight";
        assertEquals(3 * 32, mine.get(table).length);               // [2 + 1 null class, hidden]
        assertTrue(maxAbsDiff(random.get(table), mine.get(table)) < 1e-9, "the class embedding is initialised");
        String qkv = "blocks.0.attn.qkv.weight";
        assertTrue(maxAbsDiff(baseTensors.get("ema." + qkv), mine.get(qkv)) < 1e-9, "the rest is loaded");
        assertTrue(maxAbsDiff(random.get(qkv), mine.get(qkv)) > 1e-3);

        Path uncond = dir.resolve("unconditional");
        TrainSampleEvalTest.Result u = run(args("train", "--data", data.toString(), "--out", uncond.toString(),
                "--init-from", base.toString(), "--steps", "1", "--lr", "1e-12", "--ema", "0"));
        assertEquals(0, u.code(), u::toString);
        assertTrue(u.out().contains("its class embedding left out (unconditional run)"), u::toString);
        Map<String, float[]> plain = tensors(uncond.resolve("checkpoints/latest.safetensors"));
        assertFalse(plain.keySet().stream().anyMatch(n -> n.startsWith("y_embedder.")), plain.keySet().toString());
        assertTrue(maxAbsDiff(baseTensors.get("ema." + qkv), plain.get(qkv)) < 1e-9);
    }

    @Test
    void trainingSettingsComeFromTheFileUnlessGiven() throws IOException {
        Path epsRun = dir.resolve("eps");
        TrainSampleEvalTest.Result r = run(args("train", "--data", data.toString(), "--out", epsRun.toString(),
                "--model", "dit", "--hidden", "16", "--depth", "1", "--heads", "1", "--patch", "4", "--steps", "2",
                "--objective", "eps", "--schedule", "cosine", "--time-sampler", "uniform:0:0.99", "--loss-weight",
                "min-snr:5"));
        assertEquals(0, r.code(), r::toString);
        for (String[] extra : new String[][] {{}, {"--objective", "eps"}}) {      // the same objective given
            Path inherit = dir.resolve("eps-inherit" + extra.length);
            String[] a = {"train", "--data", data.toString(), "--out", inherit.toString(), "--init-from",
                epsRun.toString(), "--steps", "1"};
            r = run(args(java.util.stream.Stream.concat(Arrays.stream(a), Arrays.stream(extra))
                    .toArray(String[]::new)));
            assertEquals(0, r.code(), r::toString);
            JsonNode o = JSON.readTree(inherit.resolve("run.json").toFile()).get("options");
            assertEquals("eps", o.get("objective").asText());
            assertEquals("cosine", o.get("schedule").asText());
            assertEquals("uniform:0:0.99", o.get("timeSampler").asText());
            assertEquals("min-snr:5", o.get("lossWeight").asText());
            assertEquals(Sampling.defaultSampler(org.diffusion4j.schedule.Prediction.EPSILON),
                    o.get("sampler").asText());
            assertEquals(16, o.get("hidden").asInt());
        }
        // an error caused by a setting taken from the file says so
        Path out = dir.resolve("flow-linear");
        assertRefused(out, "[this run took objective flow, time sampler uniform, loss weight none from --init-from", "train", "--data", data.toString(), "--out", out.toString(), "--init-from",
                base.toString(), "--schedule", "linear");
        // the label-dropout probability is free (the class table has the same shape)
        Path dropout = dir.resolve("dropout");
        r = run(args("train", "--data", data.toString(), "--out", dropout.toString(), "--init-from",
                base.toString(), "--cond", "--label-dropout", "0.25", "--steps", "1"));
        assertEquals(0, r.code(), r::toString);
        assertEquals(0.25, JSON.readTree(dropout.resolve("run.json").toFile()).get("model").get("config")
                .get("classDropProb").asDouble());

        Path changed = dir.resolve("eps-to-v");
        r = run(args("train", "--data", data.toString(), "--out", changed.toString(), "--init-from",
                epsRun.toString(), "--steps", "1", "--objective", "v"));
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("were trained for --objective eps; this run trains them for v"), r::toString);
        assertEquals("linear", JSON.readTree(changed.resolve("run.json").toFile()).get("options").get("schedule")
                .asText());
    }

    @Test
    void conflictingOptionsAndUnfitDataAreRefusedBeforeTheRunFolderExists() throws IOException {
        Path out = dir.resolve("refused");
        String from = base.toString();
        assertRefused(out, "--hidden 64 conflicts with the weights of --init-from", "train", "--data",
                data.toString(), "--out", out.toString(), "--init-from", from, "--hidden", "64");
        assertRefused(out, "--heads 4 conflicts", "train", "--data", data.toString(), "--out", out.toString(),
                "--init-from", from, "--heads", "4");
        assertRefused(out, "--model mlp conflicts", "train", "--data", data.toString(), "--out", out.toString(),
                "--init-from", from, "--model", "mlp");
        assertRefused(out, "--init-from: no such checkpoint file", "train", "--data", data.toString(), "--out",
                out.toString(), "--init-from", dir.resolve("missing.safetensors").toString());
        Path two = twoClassFolder();
        assertRefused(out, "are a DiT for 1 x 16 x 16 images (patch 4); " + two.toAbsolutePath().normalize()
                + " holds 1 x 18 x 18 images", "train", "--data", two.toString(), "--out", out.toString(),
                "--init-from", from, "--resolution", "18");
        assertRefused(out, "the channel count is fixed", "train", "--data", two.toString(), "--out", out.toString(),
                "--init-from", from, "--channels", "3");
        Path npy = dir.resolve("thirty.npy");                       // 30 x 30: no --patch 4 advice, the file decides
        org.diffusion4j.io.Npy.write(npy, new float[4 * 30 * 30], 4, 1, 30, 30);
        assertRefused(out, "are a DiT for 1 x 16 x 16 images (patch 4); " + npy.toAbsolutePath().normalize()
                + " holds 1 x 30 x 30 images: a DiT takes square images whose side the patch divides", "train",
                "--data", npy.toString(), "--out", out.toString(), "--init-from", from);
        Path noLatest = dir.resolve("no-latest");                    // a run folder whose latest checkpoint is gone
        Files.createDirectories(noLatest.resolve("checkpoints"));
        Files.writeString(noLatest.resolve("run.json"), "{}");
        Files.copy(base.resolve("checkpoints/latest.safetensors"), noLatest.resolve("checkpoints/step-000012"
                + ".safetensors"));
        assertRefused(out, "the newest step checkpoint is " + noLatest.resolve("checkpoints/step-000012.safetensors")
                + ": give that file", "train", "--data", data.toString(), "--out", out.toString(), "--init-from",
                noLatest.toString());
        Path csv = dir.resolve("points.csv");
        Files.writeString(csv, "x,y\n1,2\n3,4\n5,6\n7,8\n9,10\n11,12\n13,14\n15,16\n17,18\n19,20\n21,22\n");
        assertRefused(out, "holds vectors", "train", "--data", csv.toString(), "--out", out.toString(),
                "--init-from", from);
        assertRefused(base, "--init-from starts a new run", "train", "--resume", "--out", base.toString(),
                "--init-from", from);
    }

    /** Found by a new-user trial: the README said --resolution overrides the file's size, and it was refused. */
    @Test
    void aDitFineTunesAtAnotherResolutionDividedByItsPatch() throws IOException {
        Path out = dir.resolve("twenty");
        TrainSampleEvalTest.Result r = run(args("train", "--data", twoClassFolder().toString(), "--out",
                out.toString(), "--init-from", base.toString(), "--resolution", "20", "--steps", "2"));
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("trained on 16 x 16 images; this run trains it on 20 x 20 (25 tokens instead of "
                + "16; every weight is kept, the fixed pos_embed is computed for the new grid)"), r::toString);
        assertTrue(r.out().contains("the image folder is read at 20 x 20 (--resolution), grey (the --init-from "
                + "model's channels"), r::toString);
        assertEquals(20, JSON.readTree(out.resolve("run.json").toFile()).get("model").get("config").get("imageSize")
                .asInt());
        Path raw = dir.resolve("twenty.npy");
        TrainSampleEvalTest.Result s = run("sample", "--checkpoint", out.toString(), "--n", "2", "--steps", "2",
                "--backend", "cpu", "--out", dir.resolve("twenty.png").toString(), "--save-raw", raw.toString());
        assertEquals(0, s.code(), s::toString);
        assertEquals("[2, 1, 20, 20]", java.util.Arrays.toString(org.diffusion4j.io.Npy.read(raw).shape()));
    }

    private void assertRefused(Path out, String message, String... a) {
        boolean existed = Files.exists(out);
        TrainSampleEvalTest.Result r = run(args(a));
        assertNotEquals(0, r.code(), r::toString);
        assertTrue(r.err().contains(message), r::toString);
        assertEquals(existed, Files.exists(out), "run folder " + out);
    }

    /**
     * A state dict without metadata (as PyTorch writes it) of another class count gets a fresh class embedding
     * too (its count read from the table), and an error for a model of other sizes says which options to give.
     */
    @Test
    void aFileWithoutMetadataTakesTheClassCountFromItsTable() throws IOException {
        Path stripped = dir.resolve("no-metadata.safetensors");
        TrainSampleEvalTest.Result e = run("export", "--checkpoint", base.toString(), "--out",
                dir.resolve("base-export.safetensors").toString(), "--backend", "cpu");
        assertEquals(0, e.code(), e::toString);
        stripMetadata(dir.resolve("base-export.safetensors"), stripped);
        String[] dit = {"--model", "dit", "--hidden", "32", "--depth", "1", "--heads", "2", "--patch", "4"};
        Path out = dir.resolve("no-meta-two");
        String[] a = {"train", "--data", twoClassFolder().toString(), "--resolution", "16", "--out", out.toString(),
            "--init-from", stripped.toString(), "--cond", "--steps", "1", "--lr", "1e-12", "--ema", "0"};
        TrainSampleEvalTest.Result r = run(args(concat(a, dit)));
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("a new class embedding (3 classes there, 2 here)"), r::toString);
        String qkv = "blocks.0.attn.qkv.weight";
        assertTrue(maxAbsDiff(tensors(stripped).get(qkv),
                tensors(out.resolve("checkpoints/latest.safetensors")).get(qkv)) < 1e-9);

        Path wrong = dir.resolve("no-meta-wrong");
        assertRefused(wrong, "give its --hidden, --depth, --heads, --patch or --blocks", "train", "--data",
                data.toString(), "--out", wrong.toString(), "--init-from", stripped.toString(), "--cond",
                "--hidden", "48", "--depth", "1", "--heads", "2", "--patch", "4");
    }

    private static String[] concat(String[] a, String[] b) {
        return java.util.stream.Stream.concat(Arrays.stream(a), Arrays.stream(b)).toArray(String[]::new);
    }

    /** Rewrites a safetensors file without its {@code __metadata__} (what a plain PyTorch state dict looks like). */
    private static void stripMetadata(Path in, Path out) throws IOException {
        byte[] b = Files.readAllBytes(in);
        long n = java.nio.ByteBuffer.wrap(b, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        com.fasterxml.jackson.databind.node.ObjectNode header = (com.fasterxml.jackson.databind.node.ObjectNode)
                JSON.readTree(new String(b, 8, (int) n, java.nio.charset.StandardCharsets.UTF_8));
        header.remove("__metadata__");
        StringBuilder h = new StringBuilder(JSON.writeValueAsString(header));
        while (h.length() % 8 != 0) {
            h.append(' ');
        }
        byte[] hb = h.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
        java.io.ByteArrayOutputStream o = new java.io.ByteArrayOutputStream();
        o.write(java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(hb.length).array());
        o.write(hb);
        o.write(b, 8 + (int) n, b.length - 8 - (int) n);
        Files.write(out, o.toByteArray());
    }

    /**
     * The image size of an image folder comes from the file (a DiT's, or an MLP's trained on flattened images),
     * and an RGB folder read as the file's grey says so.
     */
    @Test
    void anImageFolderIsReadAtTheFileSize() throws IOException {
        Path rgb = dir.resolve("rgb");
        for (int c = 0; c < 2; c++) {
            Path sub = Files.createDirectories(rgb.resolve("c" + c));
            for (int i = 0; i < 6; i++) {
                BufferedImage img = new BufferedImage(40, 30, BufferedImage.TYPE_INT_RGB);
                for (int y = 0; y < 30; y++) {
                    for (int x = 0; x < 40; x++) {
                        img.setRGB(x, y, ((x * 6 + i) & 255) << 16 | ((y * 8) & 255) << 8 | (c * 200));
                    }
                }
                ImageIO.write(img, "png", sub.resolve(i + ".png").toFile());
            }
        }
        Path out = dir.resolve("rgb-run");
        TrainSampleEvalTest.Result r = run(args("train", "--data", rgb.toString(), "--out", out.toString(),
                "--init-from", base.toString(), "--cond", "--steps", "1"));
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("the image folder is read at 16 x 16 (the --init-from model's size; "
                + "--resolution, a multiple of the patch 4, overrides it), grey (the --init-from model's channels: "
                + "colour is dropped)"), r::toString);

        Path mlpRun = dir.resolve("mlp-images");
        r = run(args("train", "--data", data.toString(), "--out", mlpRun.toString(), "--model", "mlp", "--hidden",
                "32", "--blocks", "1", "--steps", "2"));
        assertEquals(0, r.code(), r::toString);
        Path mlpTuned = dir.resolve("mlp-images-tuned");
        r = run(args("train", "--data", twoClassFolder().toString(), "--out", mlpTuned.toString(), "--init-from",
                mlpRun.toString(), "--steps", "1"));                 // without --resolution: 16 from the file
        assertEquals(0, r.code(), r::toString);
        assertEquals(16, JSON.readTree(mlpTuned.resolve("run.json").toFile()).get("options").get("resolution")
                .asInt());
    }

    /**
     * A fine-tuned run stopped at step 2 (its step-2 checkpoint made the latest) and resumed to step 4 ends bit for
     * bit where the uninterrupted run does, without reading the --init-from file again (it is deleted first).
     */
    @Test
    void aFineTunedRunResumesBitExactlyWithoutTheInitFile() throws IOException {
        Path init = dir.resolve("init-copy.safetensors");
        Files.copy(base.resolve("checkpoints/latest.safetensors"), init);
        Path straight = dir.resolve("straight");
        TrainSampleEvalTest.Result r = run(args("train", "--data", data.toString(), "--out", straight.toString(),
                "--init-from", init.toString(), "--cond", "--steps", "4", "--checkpoint-every", "2"));
        assertEquals(0, r.code(), r::toString);
        Path cut = dir.resolve("cut");
        try (var files = Files.walk(straight)) {
            for (Path p : files.toList()) {
                Files.copy(p, cut.resolve(straight.relativize(p).toString()));
            }
        }
        Files.copy(cut.resolve("checkpoints/step-000002.safetensors"), cut.resolve("checkpoints/latest.safetensors"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Files.delete(cut.resolve("checkpoints/step-000004.safetensors"));
        Files.delete(init);
        r = run(args("train", "--resume", "--out", cut.toString(), "--steps", "4"));
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("resume      from step 2"), r::toString);
        Map<String, float[]> expected = tensors(straight.resolve("checkpoints/latest.safetensors"));
        Map<String, float[]> actual = tensors(cut.resolve("checkpoints/latest.safetensors"));
        assertEquals(expected.keySet(), actual.keySet());
        for (String name : expected.keySet()) {
            assertArrayEquals(expected.get(name), actual.get(name), name);
        }
    }
}
