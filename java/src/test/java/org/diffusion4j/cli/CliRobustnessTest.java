package org.diffusion4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.diffusion4j.io.AtomicFiles;
import org.diffusion4j.io.Idx;
import org.diffusion4j.io.Npy;
import org.diffusion4j.training.Checkpoint;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CLI against misuse found by a tester: concurrent runs on one folder, overwriting foreign files, interrupted
 * runs, folders that are not run folders, uint8 NPY scaling, eval/resume against other data, sizes that overflow,
 * confusing messages. Commands run in-process ({@link TrainSampleEvalTest#run}).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CliRobustnessTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private Path dir;
    private Path data;
    /** A finished 4-step conditional DiT run trained with --label-dropout 0 and --warmup 3; never modified. */
    private Path base;

    private static TrainSampleEvalTest.Result run(String... args) {
        return TrainSampleEvalTest.run(args);
    }

    private String[] trainArgs(Path d, Path out, int steps) {
        return new String[] {"train", "--data", d.toString(), "--out", out.toString(), "--model", "dit", "--cond",
            "--label-dropout", "0", "--hidden", "16", "--depth", "1", "--heads", "2", "--patch", "4", "--steps",
            Integer.toString(steps), "--warmup", "3", "--batch", "8", "--checkpoint-every", "2", "--sample-every",
            "0", "--sample-steps", "2", "--backend", "cpu", "--seed", "3"};
    }

    @BeforeAll
    void trainOnce(@TempDir Path tmp) throws IOException {
        dir = tmp;
        data = TinyData.idxFolder(dir.resolve("tiny"), 24, 6);
        base = dir.resolve("base");
        TrainSampleEvalTest.Result r = run(trainArgs(data, base, 4));
        assertEquals(0, r.code(), r::toString);
    }

    /** {@code --keep-checkpoints N}: only the newest N step checkpoints stay (latest too); resumable. */
    @Test
    void keepCheckpointsPrunesTheOldestStepCheckpoints() throws IOException {
        Path out = dir.resolve("keep");
        String[] a = trainArgs(data, out, 8);
        String[] args = java.util.Arrays.copyOf(a, a.length + 2);
        args[a.length] = "--keep-checkpoints";
        args[a.length + 1] = "2";
        TrainSampleEvalTest.Result t = run(args);
        assertEquals(0, t.code(), t::toString);
        assertEquals(java.util.List.of("latest.safetensors", "step-000006.safetensors", "step-000008.safetensors"),
                stepFiles(out));
        TrainSampleEvalTest.Result r = run("train", "--resume", "--out", out.toString(), "--steps", "12",
                "--keep-checkpoints", "1", "--backend", "cpu");
        assertEquals(0, r.code(), r::toString);
        assertEquals(java.util.List.of("latest.safetensors", "step-000012.safetensors"), stepFiles(out));
        TrainSampleEvalTest.Result bad = run("train", "--data", data.toString(), "--out", dir.resolve("keep-bad")
                .toString(), "--keep-checkpoints", "-1", "--steps", "2", "--backend", "cpu");
        assertNotEquals(0, bad.code(), bad::toString);
        assertTrue(bad.err().contains("--keep-checkpoints must be >= 0"), bad::toString);
    }

    private static java.util.List<String> stepFiles(Path run) throws IOException {
        try (var s = Files.list(run.resolve("checkpoints"))) {
            return s.map(p -> p.getFileName().toString()).filter(n -> !n.startsWith("best")).sorted().toList();
        }
    }

    /** Found by a new-user trial: eval of a run whose data moved said only that the path does not exist. */
    @Test
    void evalOfARunWhoseDataMovedAsksForData() throws IOException {
        Path moved = TinyData.idxFolder(dir.resolve("moving"), 24, 6);
        Path out = dir.resolve("moving-run");
        TrainSampleEvalTest.Result t = run(trainArgs(moved, out, 4));
        assertEquals(0, t.code(), t::toString);
        Path now = dir.resolve("moved-here");
        Files.move(moved, now);
        TrainSampleEvalTest.Result e = run("eval", "--checkpoint", out.toString(), "--n", "6", "--steps", "2",
                "--backend", "cpu");
        assertNotEquals(0, e.code(), e::toString);
        assertTrue(e.err().contains(moved.toAbsolutePath().normalize() + ", is gone") && e.err().contains("--data"),
                e::toString);
        TrainSampleEvalTest.Result ok = run("eval", "--checkpoint", out.toString(), "--data", now.toString(), "--n",
                "6", "--steps", "2", "--backend", "cpu", "--reference", "6");
        assertEquals(0, ok.code(), ok::toString);
    }

    /** Found by a new-user trial: samples of another size than an image folder's default said nothing of why. */
    @Test
    void samplesOfAnotherSizeThanAnImageFolderNameTheResolution() throws IOException {
        Path folder = Files.createDirectories(dir.resolve("pics/a"));
        java.awt.image.BufferedImage img = new java.awt.image.BufferedImage(40, 40,
                java.awt.image.BufferedImage.TYPE_BYTE_GRAY);
        for (int i = 0; i < 3; i++) {
            javax.imageio.ImageIO.write(img, "png", folder.resolve(i + ".png").toFile());
        }
        Path npy = dir.resolve("s28.npy");
        org.diffusion4j.io.Npy.write(npy, new float[3 * 28 * 28], 3, 1, 28, 28);
        assertOneLineFailure(run("eval", "--samples", npy.toString(), "--data", dir.resolve("pics").toString(),
                "--backend", "cpu"), "[1, 28, 28] but the data's are [1, 32, 32]", "give --resolution 28");
    }

    /**
     * Vector data far from unit scale (found by a user trial: samples came out near 130 ± 1 for data at 500 ± 200):
     * trained standardised, sampled back in the data's units; --no-standardize warns.
     */
    @Test
    void offScaleVectorsAreStandardisedAndSampledBackInTheirUnits() throws IOException {
        StringBuilder csv = new StringBuilder("a,b\n");
        java.util.SplittableRandom r = new java.util.SplittableRandom(4);
        for (int i = 0; i < 400; i++) {
            csv.append(500 + 200 * r.nextGaussian()).append(',').append(-3 + 0.01 * r.nextGaussian()).append('\n');
        }
        Path file = dir.resolve("offscale.csv");
        Files.writeString(file, csv);
        Path out = dir.resolve("offscale-run");
        TrainSampleEvalTest.Result t = run("train", "--data", file.toString(), "--out", out.toString(), "--model",
                "mlp", "--hidden", "32", "--blocks", "2", "--steps", "300", "--batch", "64", "--sample-every", "0",
                "--sample-steps", "4", "--backend", "cpu", "--seed", "1");
        assertEquals(0, t.code(), t::toString);
        assertTrue(t.out().contains("scaling     each of the 2 features to mean 0, std 1"), t::toString);
        Path raw = dir.resolve("offscale.npy");
        TrainSampleEvalTest.Result s = run("sample", "--checkpoint", out.toString(), "--n", "256", "--steps", "16",
                "--backend", "cpu", "--out", dir.resolve("offscale.png").toString(), "--save-raw", raw.toString());
        assertEquals(0, s.code(), s::toString);
        float[] v = Npy.read(raw).values();
        double[] mean = new double[2];
        double[] var = new double[2];
        for (int i = 0; i < v.length; i++) {
            mean[i % 2] += v[i] / 256.0;
        }
        for (int i = 0; i < v.length; i++) {
            var[i % 2] += (v[i] - mean[i % 2]) * (v[i] - mean[i % 2]) / 256.0;
        }
        assertEquals(500, mean[0], 60, "feature a in its units");
        assertEquals(200, Math.sqrt(var[0]), 80);
        assertEquals(-3, mean[1], 0.01, "feature b in its units");
        assertEquals(0.01, Math.sqrt(var[1]), 0.008);

        TrainSampleEvalTest.Result w = run("train", "--data", file.toString(), "--out", dir.resolve("offscale-raw")
                .toString(), "--model", "mlp", "--hidden", "8", "--blocks", "1", "--steps", "2", "--batch", "8",
                "--sample-every", "0", "--sample-steps", "2", "--backend", "cpu", "--no-standardize");
        assertEquals(0, w.code(), w::toString);
        assertTrue(w.out().contains("warning     the features are far from unit scale"), w::toString);
    }

    /**
     * {@code --micro-batch}: the run trains like the whole batch (the same losses up to float rounding), says so, is
     * recorded in run.json, may change on resume, and must divide {@code --batch}.
     */
    @Test
    void microBatchesAccumulateToTheWholeBatch() throws IOException {
        Path whole = dir.resolve("mb-whole");
        Path split = dir.resolve("mb-split");
        TrainSampleEvalTest.Result a = run(trainArgs(data, whole, 4));
        String[] args = trainArgs(data, split, 4);
        String[] withMicro = java.util.Arrays.copyOf(args, args.length + 2);
        withMicro[args.length] = "--micro-batch";
        withMicro[args.length + 1] = "2";
        TrainSampleEvalTest.Result b = run(withMicro);
        assertEquals(0, a.code(), a::toString);
        assertEquals(0, b.code(), b::toString);
        assertTrue(b.out().contains("batch       8 per step, in 4 passes of 2 (gradients accumulated)"), b::toString);
        List<String> la = Files.readAllLines(whole.resolve("loss.csv"));
        List<String> lb = Files.readAllLines(split.resolve("loss.csv"));
        assertEquals(la.size(), lb.size());
        for (int i = 1; i < la.size(); i++) {
            double x = Double.parseDouble(la.get(i).split(",")[1]);
            double y = Double.parseDouble(lb.get(i).split(",")[1]);
            assertEquals(x, y, 1e-4 * Math.abs(x), "loss.csv line " + i + ": " + la.get(i) + " vs " + lb.get(i));
        }
        assertEquals(2, JSON.readTree(split.resolve("run.json").toFile()).get("options").get("microBatch").asInt());
        TrainSampleEvalTest.Result resumed = run("train", "--resume", "--out", split.toString(), "--steps", "6",
                "--micro-batch", "4", "--backend", "cpu");
        assertEquals(0, resumed.code(), resumed::toString);
        assertTrue(resumed.out().contains("in 2 passes of 4"), resumed::toString);
        String[] bad = java.util.Arrays.copyOf(withMicro, withMicro.length);
        bad[withMicro.length - 1] = "3";
        bad[java.util.Arrays.asList(bad).indexOf("--out") + 1] = dir.resolve("mb-bad").toString();
        TrainSampleEvalTest.Result refused = run(bad);
        assertTrue(refused.code() != 0 && refused.err().contains("--micro-batch must divide --batch 8, got 3 "
                + "(divisors: 1, 2, 4, 8)"), refused::toString);
        assertFalse(Files.exists(dir.resolve("mb-bad")), "a refused run leaves no folder");
    }

    /** Held-out labels of classes the training split lacks are pointed out on the data line. */
    @Test
    void heldOutLabelsBeyondTheTrainingClassesAreWarnedAbout() {
        org.diffusion4j.io.Dataset train = org.diffusion4j.io.Dataset.of(new float[3], new long[] {1}, new int[] {0, 1, 2},
                List.of());
        org.diffusion4j.io.Dataset held = org.diffusion4j.io.Dataset.of(new float[2], new long[] {1}, new int[] {1, 7},
                List.of());
        String line = new DataLoading.Loaded(train, held, DataLoading.Kind.VECTORS, "t10k").describe();
        assertTrue(line.contains("WARNING: 1 held-out samples have labels of classes the training split lacks (>= 3)"),
                line);
        String fine = new DataLoading.Loaded(train, train, DataLoading.Kind.VECTORS, "t10k").describe();
        assertFalse(fine.contains("WARNING"), fine);
    }

    /**
     * Labelled tabular data: a CSV column of class names, a class-conditional MLP chosen by {@code --model auto}, and
     * {@code --class} (a name, its index, the name in another case) picking the class's cluster.
     */
    @Test
    void aCsvLabelColumnTrainsAClassConditionalMlp() throws IOException {
        StringBuilder csv = new StringBuilder("a,label,b\n");
        java.util.SplittableRandom r = new java.util.SplittableRandom(6);
        double[] centre = {-40, 0, 40};
        String[] name = {"low", "mid", "high"};                 // sorted: high = 0, low = 1, mid = 2
        for (int i = 0; i < 450; i++) {
            int y = i % 3;
            csv.append(centre[y] + 3 * r.nextGaussian()).append(',').append(name[y]).append(',')
                    .append(100 + centre[y] + 3 * r.nextGaussian()).append('\n');
        }
        Path file = dir.resolve("labelled.csv");
        Files.writeString(file, csv);
        Path out = dir.resolve("labelled-run");
        TrainSampleEvalTest.Result t = run("train", "--data", file.toString(), "--out", out.toString(), "--cond",
                "--label-column", "label", "--hidden", "32", "--blocks", "2", "--steps", "400",
                "--batch", "64", "--sample-every", "0", "--sample-steps", "4", "--backend", "cpu", "--seed", "2");
        assertEquals(0, t.code(), t::toString);
        assertTrue(t.out().contains("vectors [2]") && t.out().contains("3 classes (high, low, mid)"), t::toString);
        assertTrue(t.out().contains("model       mlp "), "--model auto picks the MLP for vectors: " + t);
        assertEquals("mlp", RunJson.read(out.resolve("run.json")).options().model(), "run.json records the choice");
        Checkpoint.Info info = Checkpoint.readInfo(out.resolve("checkpoints/latest.safetensors"));
        assertEquals(List.of("high", "low", "mid"), info.classNames());
        assertEquals(List.of("a", "b"), info.featureNames(), "the CSV header, without the label column");
        // every class: the rows cycle through the classes, and the labels file says so
        Path all = dir.resolve("all-classes.npy");
        TrainSampleEvalTest.Result every = run("sample", "--checkpoint", out.toString(), "--n", "7", "--steps", "2",
                "--backend", "cpu", "--out", dir.resolve("all-classes.png").toString(), "--save-raw", all.toString());
        assertEquals(0, every.code(), every::toString);
        assertArrayEquals(new float[] {0, 1, 2, 0, 1, 2, 0}, Npy.read(dir.resolve("all-classes.labels.npy")).values());
        assertTrue(every.out().contains("all-classes.labels.npy (int32"), every::toString);
        // the same data without --label-column: the error says how to name the label column
        assertOneLineFailure(run("train", "--data", file.toString(), "--out", dir.resolve("no-label").toString(),
                "--backend", "cpu"), "'low' is not a number", "--label-column", "0-based index 1");
        // labels without --cond are said to be unused
        TrainSampleEvalTest.Result unused = run("train", "--data", file.toString(), "--out",
                dir.resolve("unused-labels").toString(), "--label-column", "label", "--steps", "1", "--hidden", "8",
                "--blocks", "1", "--batch", "8", "--sample-every", "0", "--backend", "cpu");
        assertEquals(0, unused.code(), unused::toString);
        assertTrue(unused.out().contains("are not used: add --cond"), unused::toString);
        // eval of saved samples reads their labels file; the labels file is no data, and an unconditional model's
        // samples leave no stale labels beside them
        TrainSampleEvalTest.Result fromSamples = run("eval", "--samples", all.toString(), "--data", file.toString(),
                "--label-column", "label", "--backend", "cpu");
        assertEquals(0, fromSamples.code(), fromSamples::toString);
        assertTrue(fromSamples.out().contains("knn_class_accuracy ")
                && fromSamples.out().contains("named in all-classes.classes.json"), fromSamples::toString);
        // ... by class name: data with one more class (sorting first) renumbers the others, and the samples still
        // score as their classes (found by an adversarial trial: 0.01 before)
        StringBuilder extraClass = new StringBuilder(csv);
        for (int i = 0; i < 30; i++) {
            extraClass.append(200 + i).append(",aaa,").append(300 + i).append('\n');
        }
        Path moreFile = dir.resolve("more-classes.csv");
        Files.writeString(moreFile, extraClass);
        Path wider = dir.resolve("wider.npy");
        assertEquals(0, run("sample", "--checkpoint", out.toString(), "--n", "60", "--steps", "8", "--guidance", "1",
                "--backend", "cpu", "--out", dir.resolve("wider.png").toString(), "--save-raw", wider.toString())
                .code());
        Path widerEval = dir.resolve("wider.eval.json");
        assertEquals(0, run("eval", "--samples", wider.toString(), "--data", moreFile.toString(), "--label-column",
                "label", "--backend", "cpu").code());
        assertTrue(JSON.readTree(widerEval.toFile()).get("metrics").get("knn_class_accuracy").asDouble() > 0.9);
        assertOneLineFailure(run("train", "--data", dir.resolve("all-classes.labels.npy").toString(), "--out",
                dir.resolve("labels-as-data").toString(), "--backend", "cpu"), "holds integer values (<i4: class labels");
        assertEquals(0, run("sample", "--checkpoint", dir.resolve("unused-labels").toString(), "--n", "3", "--steps",
                "2", "--backend", "cpu", "--out", dir.resolve("all-classes.png").toString(), "--save-raw",
                all.toString()).code());
        assertFalse(Files.exists(dir.resolve("all-classes.labels.npy")), "no labels beside unconditional samples");
        assertFalse(Files.exists(dir.resolve("all-classes.classes.json")));
        // a checkpoint copied into another run's folder (other split) is scored on its own split; run.json untouched
        Path foreign = dir.resolve("unused-labels/checkpoints/foreign.safetensors");
        Files.copy(out.resolve("checkpoints/latest.safetensors"), foreign);
        byte[] runJsonBefore = Files.readAllBytes(dir.resolve("unused-labels/run.json"));
        TrainSampleEvalTest.Result fe = run("eval", "--checkpoint", foreign.toString(), "--n", "12", "--steps", "2",
                "--backend", "cpu", "--out", dir.resolve("foreign.eval.json").toString());
        assertEquals(0, fe.code(), fe::toString);
        assertTrue(fe.out().contains("was trained on other data or another split")
                && fe.out().contains("split       from the checkpoint's metadata"), fe::toString);
        assertArrayEquals(runJsonBefore, Files.readAllBytes(dir.resolve("unused-labels/run.json")));
        // an export outside the run folder keeps the class names, also those only run.json knew (older checkpoints)
        Path latest = out.resolve("checkpoints/latest.safetensors");
        Path unnamed = out.resolve("checkpoints/step-000400.safetensors");
        try (org.diffusion4j.tensor.TensorScope sc = org.diffusion4j.tensor.TensorScope.open();
             org.diffusion4j.cpu.CpuBackend cpu = new org.diffusion4j.cpu.CpuBackend(1)) {
            var f = org.diffusion4j.io.Safetensors.read(latest, sc, cpu);
            java.util.Map<String, String> meta = new java.util.HashMap<>(f.metadata());
            meta.remove(Checkpoint.KEY_CLASS_NAMES);
            org.diffusion4j.io.Safetensors.write(unnamed, f.tensors(), meta);
        }
        Path exported = dir.resolve("exports/labelled.safetensors");
        assertEquals(0, run("export", "--checkpoint", unnamed.toString(), "--out", exported.toString(), "--backend",
                "cpu").code());
        assertEquals(List.of("high", "low", "mid"), Checkpoint.readInfo(exported).classNames());
        TrainSampleEvalTest.Result byName = run("sample", "--checkpoint", exported.toString(), "--n", "4", "--class",
                "mid", "--steps", "2", "--backend", "cpu", "--out", dir.resolve("mid.png").toString());
        assertTrue(byName.out().contains("class 2 (mid)"), byName::toString);
        // eval of the export outside the run folder: the data, its split and label column come from its metadata,
        // so it scores exactly like the run (same held-out rows; found by a README trial with --seed 5)
        Path runEval = dir.resolve("run-eval.json");
        assertEquals(0, run("eval", "--checkpoint", out.toString(), "--n", "60", "--steps", "8", "--backend", "cpu",
                "--out", runEval.toString()).code());
        JsonNode runMetrics = JSON.readTree(runEval.toFile()).get("metrics");
        Path exportEval = dir.resolve("export-eval.json");
        TrainSampleEvalTest.Result ee = run("eval", "--checkpoint", exported.toString(), "--n", "60", "--steps", "8",
                "--backend", "cpu", "--out", exportEval.toString());
        assertEquals(0, ee.code(), ee::toString);
        assertTrue(ee.out().contains("split       from the checkpoint's metadata"), ee::toString);
        JsonNode exportMetrics = JSON.readTree(exportEval.toFile()).get("metrics");
        for (String key : List.of("sliced_wasserstein", "sliced_wasserstein_real_reference", "knn_class_accuracy")) {
            assertEquals(runMetrics.get(key).asDouble(), exportMetrics.get(key).asDouble(), key);
        }
        assertOneLineFailure(run("export", "--checkpoint", exported.toString(), "--out", latest.toString(),
                "--backend", "cpu"), "lies in a run's checkpoints folder");
        Path elsewhere = dir.resolve("copy-of-latest.safetensors");
        Files.copy(latest, elsewhere);
        assertOneLineFailure(run("export", "--checkpoint", exported.toString(), "--out", elsewhere.toString(),
                "--backend", "cpu"), "is a training checkpoint", "refusing to overwrite");
        Path text = dir.resolve("notes.safetensors");
        Files.writeString(text, "my notes");
        assertOneLineFailure(run("export", "--checkpoint", exported.toString(), "--out", text.toString(),
                "--backend", "cpu"), "is not a safetensors file");
        // eval of the export on data whose classes are not the model's: refused, not silently misjudged
        StringBuilder sub = new StringBuilder("a,label,b\n");
        for (String line : csv.toString().split("\n")) {
            if (line.contains(",low,") || line.contains(",mid,")) {
                sub.append(line).append('\n');
            }
        }
        Path subFile = dir.resolve("sub.csv");
        Files.writeString(subFile, sub);
        // (the export knows its data's fingerprint; a file without it meets the class check of ClassMapTest)
        assertOneLineFailure(run("eval", "--checkpoint", exported.toString(), "--data", subFile.toString(),
                "--label-column", "label", "--n", "8", "--steps", "2", "--backend", "cpu"),
                "is not the data the run trained on");
        for (String spec : new String[] {"high", "0", " HIGH"}) {
            Path raw = dir.resolve("class-high.npy");
            TrainSampleEvalTest.Result s = run("sample", "--checkpoint", out.toString(), "--n", "64", "--class", spec,
                    "--guidance", "1", "--steps", "16", "--backend", "cpu", "--out",
                    dir.resolve("class-high.png").toString(), "--save-raw", raw.toString());
            assertEquals(0, s.code(), s::toString);
            assertTrue(s.out().contains("class 0 (high)"), s::toString);
            float[] v = Npy.read(raw).values();
            double a = 0;
            double b = 0;
            for (int i = 0; i < 64; i++) {
                a += v[2 * i] / 64.0;
                b += v[2 * i + 1] / 64.0;
            }
            assertEquals(40, a, 10, "samples of class 'high' sit at its centre (a), --class " + spec);
            assertEquals(140, b, 10, "samples of class 'high' sit at its centre (b), --class " + spec);
        }
        assertOneLineFailure(run("sample", "--checkpoint", out.toString(), "--class", "top", "--backend", "cpu",
                "--out", dir.resolve("top.png").toString()), "--class 'top' is not a class name",
                "0 = high, 1 = low, 2 = mid");
        assertOneLineFailure(run("sample", "--checkpoint", out.toString(), "--class", "3", "--backend", "cpu",
                "--out", dir.resolve("three.png").toString()), "--class 3 is outside [0, 3)");
        TrainSampleEvalTest.Result e = run("eval", "--checkpoint", out.toString(), "--n", "60", "--steps", "8",
                "--backend", "cpu");
        assertEquals(0, e.code(), e::toString);
        // the k-NN label metrics: samples of each class are recognised as that class, like held-out data
        JsonNode m = JSON.readTree(out.resolve("eval.json").toFile()).get("metrics");
        assertTrue(m.get("knn_class_accuracy").asDouble() > 0.9, m::toString);
        assertEquals(1.0, m.get("knn_class_accuracy_held_out").asDouble(), m::toString);
        assertEquals(1.0, m.get("class_coverage").asDouble(), m::toString);
        assertOneLineFailure(run("train", "--data", file.toString(), "--out", dir.resolve("bad-label").toString(),
                "--model", "mlp", "--cond", "--label-column", "nope", "--backend", "cpu"), "no column 'nope'");
        // a resumed run keeps the model --model auto chose, and auto given again agrees with it
        TrainSampleEvalTest.Result more = run("train", "--out", out.toString(), "--resume", "--steps", "410",
                "--model", "auto", "--backend", "cpu");
        assertEquals(0, more.code(), more::toString);
        assertTrue(more.out().contains("model       mlp "), more::toString);
    }

    /**
     * An MLP on flattened images keeps drawing images when its checkpoint leaves the run folder (exported): the image
     * shape travels in the checkpoint's metadata, not only in run.json.
     */
    @Test
    void aFlattenedMlpExportStillSamplesImages() throws IOException {
        Path out = dir.resolve("mlp-images");
        TrainSampleEvalTest.Result t = run("train", "--data", data.toString(), "--out", out.toString(), "--model",
                "mlp", "--hidden", "16", "--blocks", "1", "--steps", "2", "--batch", "8", "--sample-every", "0",
                "--backend", "cpu");
        assertEquals(0, t.code(), t::toString);
        Path exported = dir.resolve("elsewhere/mlp.safetensors");
        assertEquals(0, run("export", "--checkpoint", out.toString(), "--out", exported.toString(), "--backend",
                "cpu").code());
        Path raw = dir.resolve("mlp-images.npy");
        TrainSampleEvalTest.Result s = run("sample", "--checkpoint", exported.toString(), "--n", "4", "--steps", "2",
                "--backend", "cpu", "--out", dir.resolve("mlp-images.png").toString(), "--save-raw", raw.toString());
        assertEquals(0, s.code(), s::toString);
        assertArrayEquals(new long[] {4, 1, 16, 16}, Npy.read(raw).shape(), "images, not vectors [256]");
        // an image shape of the right size but no image layout is named, not drawn as 16 channels
        Path tampered = dir.resolve("elsewhere/tampered.safetensors");
        try (org.diffusion4j.tensor.TensorScope sc = org.diffusion4j.tensor.TensorScope.open();
             org.diffusion4j.cpu.CpuBackend cpu = new org.diffusion4j.cpu.CpuBackend(1)) {
            var f = org.diffusion4j.io.Safetensors.read(exported, sc, cpu);
            java.util.Map<String, String> meta = new java.util.HashMap<>(f.metadata());
            meta.put(Checkpoint.KEY_DATA_IMAGE_SHAPE, "[16, 16, 1]");
            org.diffusion4j.io.Safetensors.write(tampered, f.tensors(), meta);
        }
        assertOneLineFailure(run("sample", "--checkpoint", tampered.toString(), "--n", "2", "--steps", "2",
                "--backend", "cpu", "--out", dir.resolve("tampered.png").toString()), Checkpoint.KEY_DATA_IMAGE_SHAPE,
                "is not an image shape");
        // --save-raw does not overwrite a file of another kind
        Path notes = dir.resolve("notes.npy");
        Files.writeString(notes, "my notes");
        assertOneLineFailure(run("sample", "--checkpoint", exported.toString(), "--n", "2", "--steps", "2",
                "--backend", "cpu", "--out", dir.resolve("n.png").toString(), "--save-raw", notes.toString()),
                "--save-raw", "is not an NPY file");
        assertEquals("my notes", Files.readString(notes));
    }

    /**
     * From an adversarial trial: renamed classes on resume, an eval --label-column other than the run's, and what
     * --model auto says about images a DiT cannot take (it never names options the user did not give).
     */
    @Test
    void renamedClassesAndAutoModelMessages() throws IOException {
        StringBuilder csv = new StringBuilder("x,y,kind\n");
        for (int i = 0; i < 60; i++) {
            csv.append(i % 7).append(',').append(i % 5).append(',').append(i % 2 == 0 ? "even" : "odd").append('\n');
        }
        Path file = dir.resolve("kinds.csv");
        Files.writeString(file, csv);
        Path out = dir.resolve("kinds-run");
        assertEquals(0, run("train", "--data", file.toString(), "--out", out.toString(), "--cond", "--label-column",
                "kind", "--hidden", "8", "--blocks", "1", "--steps", "2", "--batch", "8", "--sample-every", "0",
                "--backend", "cpu").code());
        Files.writeString(file, csv.toString().replace("even", "alpha").replace("odd", "beta"));
        TrainSampleEvalTest.Result resumed = run("train", "--out", out.toString(), "--resume", "--steps", "4",
                "--backend", "cpu");
        assertOneLineFailure(resumed, "class names", "changed since the run started", "[alpha, beta]",
                "[even, odd]");
        assertOneLineFailure(run("eval", "--checkpoint", out.toString(), "--label-column", "x", "--backend", "cpu"),
                "--label-column x differs from the run's", "kind");

        float[] wide = new float[4 * 16 * 8];
        Path npy = dir.resolve("wide.npy");
        Npy.write(npy, wide, new long[] {4, 1, 16, 8});
        assertOneLineFailure(run("train", "--data", npy.toString(), "--out", dir.resolve("wide-run").toString(),
                "--backend", "cpu"), "a DiT (what --model auto picks for images) needs square images, got 16 x 8",
                "--model mlp");
        Path odd = dir.resolve("odd.npy");
        Npy.write(odd, new float[4 * 15 * 15], new long[] {4, 1, 15, 15});
        assertOneLineFailure(run("train", "--data", odd.toString(), "--out", dir.resolve("new/parents/odd-run")
                .toString(), "--backend", "cpu"), "--patch 4 (the default) must divide the image size 15",
                "give --patch 3 or 5");
        assertFalse(Files.exists(dir.resolve("new")), "nothing written, not even the parents of --out");
    }

    /** A --resume with fewer --steps than done changes nothing, run.json included. */
    @Test
    void resumeWithFewerStepsLeavesTheRunAlone() throws IOException {
        Path r = copyOfBase("fewer-steps");
        byte[] before = Files.readAllBytes(r.resolve("run.json"));
        TrainSampleEvalTest.Result t = run("train", "--out", r.toString(), "--resume", "--steps", "3", "--backend",
                "cpu");
        assertEquals(0, t.code(), t::toString);
        assertTrue(t.out().contains("already completed 4 of 3 steps; nothing to do"), t::toString);
        assertArrayEquals(before, Files.readAllBytes(r.resolve("run.json")));
    }

    /** A deleted latest checkpoint points to the newest intact step checkpoint, by step number. */
    @Test
    void resumeWithoutLatestNamesTheNewestIntactStepCheckpoint() throws IOException {
        Path run = copyOfBase("no-latest");
        Path ck = run.resolve("checkpoints");
        Files.delete(ck.resolve("latest.safetensors"));
        // step 4 damaged, and a 7-digit name that sorts before "step-000002" as a string but is newer
        Files.write(ck.resolve("step-000004.safetensors"), new byte[] {1, 2, 3});
        Files.copy(ck.resolve("step-000002.safetensors"), ck.resolve("step-1000000.safetensors"));
        TrainSampleEvalTest.Result r = run("train", "--out", run.toString(), "--resume", "--steps", "6",
                "--backend", "cpu");
        assertOneLineFailure(r, "newest intact checkpoint is checkpoints/step-1000000.safetensors",
                "copy it to checkpoints/latest.safetensors");
        Files.delete(ck.resolve("step-1000000.safetensors"));
        assertOneLineFailure(run("train", "--out", run.toString(), "--resume", "--steps", "6", "--backend", "cpu"),
                "newest intact checkpoint is checkpoints/step-000002.safetensors");
    }

    /**
     * Found by an adversarial trial: an lr edited into run.json was used on resume without a word (the command line
     * refuses --lr on a resume). The checkpoint's training settings now win: a difference is refused.
     */
    @Test
    void resumeRefusesTrainingSettingsEditedIntoRunJson() throws IOException {
        Path r = copyOfBase("edited-lr");
        editRunJson(r, j -> ((ObjectNode) j.get("options")).put("lr", 0.5));
        byte[] latest = Files.readAllBytes(r.resolve("checkpoints/latest.safetensors"));
        assertOneLineFailure(run("train", "--out", r.toString(), "--resume", "--steps", "6", "--backend", "cpu"),
                "was run.json edited", "lr ", "0.5");
        assertArrayEquals(latest, Files.readAllBytes(r.resolve("checkpoints/latest.safetensors")), "nothing lost");
    }

    /** The same trial: an edited model setting (hidden) got advice to copy a step checkpoint, which cannot help. */
    @Test
    void resumeNamesAModelSettingEditedIntoRunJson() throws IOException {
        Path r = copyOfBase("edited-hidden");
        editRunJson(r, j -> {
            ((ObjectNode) j.get("options")).put("hidden", 24);
            ((ObjectNode) j.get("model").get("config")).put("hidden", 24);
        });
        assertOneLineFailure(run("train", "--out", r.toString(), "--resume", "--steps", "6", "--backend", "cpu"),
                "the model run.json describes differs", "was run.json edited");
    }

    /**
     * Found by an adversarial trial: {@code --save-raw x.idx} rewrote the {@code x.labels.npy} of an earlier
     * {@code --save-raw x.npy}, and eval then scored x.npy against the other file's labels.
     */
    @Test
    void saveRawRefusesToRelabelItsTwin() throws IOException {
        Path out = dir.resolve("twins");
        Files.createDirectories(out);
        TrainSampleEvalTest.Result a = run("sample", "--checkpoint", base.toString(), "--n", "4", "--steps", "2",
                "--out", out.resolve("a.png").toString(), "--save-raw", out.resolve("x.npy").toString(), "--backend",
                "cpu");
        assertEquals(0, a.code(), a::toString);
        byte[] labels = Files.readAllBytes(out.resolve("x.labels.npy"));
        assertOneLineFailure(run("sample", "--checkpoint", base.toString(), "--n", "4", "--steps", "2", "--class", "1",
                "--out", out.resolve("b.png").toString(), "--save-raw", out.resolve("x.idx").toString(), "--backend",
                "cpu"), "x.npy beside it shares its labels file x.labels.npy");
        assertArrayEquals(labels, Files.readAllBytes(out.resolve("x.labels.npy")));
        assertFalse(Files.exists(out.resolve("x.idx")));
    }

    /**
     * Found by an adversarial trial: a completed run whose latest and step checkpoints were deleted, best kept, was
     * told it "stopped before its first checkpoint; delete the folder" (losing best.safetensors). It now names best.
     */
    @Test
    void aRunWithOnlyItsBestCheckpointIsPointedToIt() throws IOException {
        Path r = copyOfBase("best-only");
        Path ck = r.resolve("checkpoints");
        assertTrue(Files.isRegularFile(ck.resolve("best.safetensors")), "the base run has a best checkpoint");
        try (Stream<Path> files = Files.list(ck)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                if (!f.getFileName().toString().equals("best.safetensors")) {
                    Files.delete(f);
                }
            }
        }
        assertOneLineFailure(run("train", "--out", r.toString(), "--resume", "--steps", "6", "--backend", "cpu"),
                "only checkpoints/best.safetensors", "copy it to checkpoints/latest.safetensors", "--init-from");
        assertOneLineFailure(run("sample", "--checkpoint", r.toString(), "--n", "2", "--backend", "cpu"),
                "best checkpoint is", "best.safetensors");
        assertTrue(Files.isRegularFile(ck.resolve("best.safetensors")), "nothing deleted");
    }

    /** Found by an adversarial CLI trial: a new run inside another run's checkpoints folder was accepted. */
    @Test
    void aRunInsideAnotherRunsCheckpointsFolderIsRefused() {
        Path inside = base.resolve("checkpoints").resolve("x");
        assertOneLineFailure(run(trainArgs(data, inside, 2)), "lies inside the checkpoints folder of the run",
                base.toString());
        assertFalse(Files.exists(inside));
    }

    /** Edits {@code run}'s run.json in place, as a user with a text editor would. */
    private static void editRunJson(Path run, java.util.function.Consumer<ObjectNode> edit) throws IOException {
        ObjectNode j = (ObjectNode) JSON.readTree(run.resolve("run.json").toFile());
        edit.accept(j);
        JSON.writeValue(run.resolve("run.json").toFile(), j);
    }

    /** A copy of the base run folder (for tests that change it). */
    private Path copyOfBase(String name) throws IOException {
        Path to = dir.resolve(name);
        try (Stream<Path> s = Files.walk(base)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                Path q = to.resolve(base.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(q);
                } else if (!p.getFileName().toString().equals(RunFolder.LOCK)) {
                    Files.copy(p, q, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
        return to;
    }

    private static void assertOneLineFailure(TrainSampleEvalTest.Result r, String... fragments) {
        assertNotEquals(0, r.code(), r::toString);
        String err = r.err().strip();
        assertEquals(1, err.lines().count(), () -> "one line: " + r);
        assertFalse(err.contains("\tat "), () -> "no stack trace: " + r);
        for (String f : fragments) {
            assertTrue(err.contains(f), () -> "'" + f + "' in " + r);
        }
    }

    private static List<String> tmpFiles(Path root) throws IOException {
        List<String> l = new ArrayList<>();
        try (Stream<Path> s = Files.walk(root)) {
            s.filter(p -> p.getFileName().toString().endsWith(".tmp")).forEach(p -> l.add(p.toString()));
        }
        return l;
    }

    // ---------------------------------------------------------------- 1. run-folder lock

    @Test
    void aRunFolderInUseIsRefused() throws IOException {
        Path copy = copyOfBase("locked");
        try (RunFolder.Lock held = new RunFolder(copy.toAbsolutePath()).lock()) {
            assertOneLineFailure(run(concat(trainArgs(data, copy, 6), "--resume")), "run folder", "is in use by "
                    + "another process");
            Path fresh = dir.resolve("fresh-locked");
            try (RunFolder.Lock other = new RunFolder(fresh.toAbsolutePath()).lock()) {
                assertOneLineFailure(run(trainArgs(data, fresh, 2)), "is in use by another process");
            }
        }
        // released: the same resume now works
        TrainSampleEvalTest.Result ok = run(concat(trainArgs(data, copy, 6), "--resume"));
        assertEquals(0, ok.code(), ok::toString);
    }

    // ---------------------------------------------------------------- 2. demo --out

    @Test
    void demoRefusesANonPngOutputAndAForeignFile() throws IOException {
        Path victim = dir.resolve("victim.csv");
        Files.writeString(victim, "a,b\n1,2\n");
        assertOneLineFailure(run("demo", "--out", victim.toString()), ".png");
        Path fake = dir.resolve("notreally.png");
        Files.writeString(fake, "precious text");
        assertOneLineFailure(run("demo", "--out", fake.toString()), "is not a PNG");
        assertEquals("a,b\n1,2\n", Files.readString(victim));
        assertEquals("precious text", Files.readString(fake));
        assertOneLineFailure(run("sample", "--checkpoint", base.toString(), "--out", fake.toString(), "--backend",
                "cpu"), "is not a PNG");
    }

    // ---------------------------------------------------------------- 3. interrupts

    @Test
    void theShutdownHookDeletesTemporariesInFlightAndMarksTheRunInterrupted() throws IOException {
        Path copy = copyOfBase("interrupted");
        RunFolder folder = new RunFolder(copy.toAbsolutePath());
        RunJson running = RunJson.read(folder.runJson()).withStatus("running");
        Path target = folder.checkpoint(99);
        List<Path> seen = new ArrayList<>();
        // the write must fail (its temporary vanished under it) and leave nothing behind
        assertThrows(IOException.class, () -> AtomicFiles.write(target, ch -> {
            seen.addAll(AtomicFiles.inFlight());
            ch.write(ByteBuffer.allocate(1000));
            TrainCommand.onShutdown(folder, running);
        }));
        assertEquals(1, seen.size(), seen::toString);
        assertTrue(seen.get(0).getFileName().toString().startsWith(".step-000099.safetensors."), seen::toString);
        assertFalse(Files.exists(seen.get(0)), "the temporary file was deleted");
        assertFalse(Files.exists(target));
        assertEquals("interrupted", JSON.readTree(folder.runJson().toFile()).get("status").asText());
        assertEquals(List.of(), tmpFiles(copy));
    }

    /** A {@code train} process on a small ring of points, its output in {@code NAME.out} / {@code NAME.err}. */
    private Process trainProcess(String name, String... options) throws IOException {
        StringBuilder csv = new StringBuilder("x,y\n");
        for (int i = 0; i < 64; i++) {
            csv.append(Math.cos(i * 0.1)).append(',').append(Math.sin(i * 0.1)).append('\n');
        }
        Path data = Files.writeString(dir.resolve(name + ".csv"), csv.toString());
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                Main.class.getName(), "train", "--data", data.toString(), "--out", dir.resolve(name).toString(),
                "--model", "mlp", "--hidden", "16", "--blocks", "1", "--batch", "16", "--warmup", "10",
                "--sample-every", "0", "--backend", "cpu", "--threads", "1"));
        cmd.addAll(List.of(options));
        return new ProcessBuilder(cmd).redirectOutput(dir.resolve(name + ".out").toFile())
                .redirectError(dir.resolve(name + ".err").toFile()).start();
    }

    /** Waits until {@code NAME.out} contains {@code text}, then sends SIGTERM and waits for the exit. */
    private void terminateAfter(Process p, String name, String text) throws Exception {
        try {
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (!read(name + ".out").contains(text) && System.nanoTime() < deadline && p.isAlive()) {
                Thread.sleep(50);
            }
            Thread.sleep(500);
            assertTrue(p.isAlive(), () -> "the run ended early: " + read(name + ".out") + read(name + ".err"));
            p.destroy();                                           // SIGTERM
            assertTrue(p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS), "stopped");
        } finally {
            p.destroyForcibly();
        }
        assertEquals(143, p.exitValue(), () -> read(name + ".out") + read(name + ".err"));   // 128 + SIGTERM
        assertTrue(read(name + ".err").contains("finishing the current step and saving a checkpoint"),
                () -> read(name + ".err"));
    }

    /**
     * SIGTERM (what Ctrl-C's SIGINT also does) to a real {@code train} process: it finishes the step in progress,
     * writes its checkpoint, marks run.json interrupted at that step and says how to resume; resuming continues.
     */
    @Test
    void aStopSignalCheckpointsTheStepInProgress() throws Exception {
        Path out = dir.resolve("signalled");
        Process p = trainProcess("signalled", "--steps", "100000000", "--checkpoint-every", "100000000");
        terminateAfter(p, "signalled", "backend ");
        String stdout = read("signalled.out");
        JsonNode j = JSON.readTree(out.resolve("run.json").toFile());
        assertEquals("interrupted", j.get("status").asText(), j::toString);
        long steps = j.get("results").get("steps").asLong();
        assertTrue(steps > 0, j::toString);
        assertTrue(stdout.contains("interrupted at step " + steps + " of 100000000: checkpoint checkpoints/step-"),
                stdout);
        assertEquals(steps, Checkpoint.readInfo(out.resolve("checkpoints/latest.safetensors")).step());
        assertTrue(Files.isRegularFile(out.resolve(String.format("checkpoints/step-%06d.safetensors", steps))));
        assertEquals(List.of(), tmpFiles(out));
        TrainSampleEvalTest.Result resumed = run("train", "--resume", "--out", out.toString(), "--steps",
                Long.toString(steps + 3), "--backend", "cpu");
        assertEquals(0, resumed.code(), resumed::toString);
        assertTrue(resumed.out().contains("resume      from step " + steps), resumed::toString);
    }

    /** A stop while the final grid is drawn drops the grid and completes the run (its checkpoint is written). */
    @Test
    void aStopSignalDuringTheFinalGridCompletesTheRun() throws Exception {
        Path out = dir.resolve("last-grid");
        Process p = trainProcess("last-grid", "--steps", "20", "--sample-steps", "100000");
        terminateAfter(p, "last-grid", "drawing the step-20 sample grid");
        assertTrue(read("last-grid.out").contains("the step-20 grid was dropped: stopping"), () -> read("last-grid.out"));
        JsonNode j = JSON.readTree(out.resolve("run.json").toFile());
        assertEquals("complete", j.get("status").asText(), j::toString);
        assertEquals(20, Checkpoint.readInfo(out.resolve("checkpoints/latest.safetensors")).step());
        assertEquals(List.of(), tmpFiles(out));
    }

    private String read(String name) {
        try {
            return Files.readString(dir.resolve(name));
        } catch (IOException e) {
            return "(" + e + ")";
        }
    }

    @Test
    void resumeRemovesStaleTemporariesOfAKilledRun() throws IOException {
        Path copy = copyOfBase("killed");
        Files.writeString(copy.resolve(".run.json.0123456789ab.tmp"), "{");
        Files.write(copy.resolve("checkpoints/.step-000006.safetensors.a1b2c3d4e5f6.tmp"), new byte[4096]);
        Files.write(copy.resolve("samples/.latest.png.ffffffffffff.tmp"), new byte[10]);
        Files.writeString(copy.resolve("notes.txt"), "mine");
        TrainSampleEvalTest.Result r = run(concat(trainArgs(data, copy, 6), "--resume"));
        assertEquals(0, r.code(), r::toString);
        assertTrue(r.out().contains("removed 3 stale temporary file(s)"), r::toString);
        assertEquals(List.of(), tmpFiles(copy));
        assertTrue(Files.exists(copy.resolve("notes.txt")), "only temporaries are removed");
    }

    // ---------------------------------------------------------------- 4. --out checks

    @Test
    void outMustBeANewOrEmptyFolderOutsideTheData() throws IOException {
        Path full = dir.resolve("full");
        Files.createDirectories(full);
        Files.writeString(full.resolve("thesis.tex"), "\\begin{document}");
        assertOneLineFailure(run(trainArgs(data, full, 2)), "is not empty and holds no run");
        assertOneLineFailure(run(trainArgs(data, data, 2)), "must be outside the data", "same folder");
        assertOneLineFailure(run(trainArgs(data, data.resolve("sub"), 2)), "must be outside the data", "inside");
        Path outer = dir.resolve("outer");
        Path inner = TinyData.idxFolder(outer.resolve("data"), 12, 3);
        assertOneLineFailure(run(trainArgs(inner, outer, 2)), "must be outside the data", "data lies inside");
        assertEquals(List.of("thesis.tex"), Files.list(full).map(p -> p.getFileName().toString()).toList());
        assertFalse(Files.exists(data.resolve("sub")));
        Path empty = dir.resolve("empty-out");
        Files.createDirectories(empty);
        TrainSampleEvalTest.Result ok = run(trainArgs(data, empty, 4));
        assertEquals(0, ok.code(), ok::toString);
    }

    // ---------------------------------------------------------------- 5. uint8 NPY

    /** A version-1.0 NPY file of dtype |u1. */
    static void writeU8Npy(Path file, byte[] values, long... shape) throws IOException {
        StringBuilder s = new StringBuilder();
        for (long d : shape) {
            s.append(s.isEmpty() ? "" : ", ").append(d);
        }
        String dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (" + s + (shape.length == 1 ? ",)" : ")")
                + ", }";
        int pad = 64 - (10 + dict.length() + 1) % 64;
        String header = dict + " ".repeat(pad % 64) + "\n";
        ByteBuffer b = ByteBuffer.allocate(10 + header.length() + values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}).putShort((short) header.length())
                .put(header.getBytes(StandardCharsets.ISO_8859_1)).put(values);
        Files.write(file, b.array());
    }

    /** One stray label (255 among 0..2) makes 256 classes, 252 of them empty: the data line warns, not silently. */
    @Test
    void labelsThatLeaveClassesEmptyAreFlagged() throws IOException {
        Path d = TinyData.idxFolder(dir.resolve("stray-label"), 12, 6);
        assertEquals("", DataLoading.load(d, 32, 1, 0.25, 0).emptyClasses(), "dense labels: no warning");
        byte[] labels = new byte[12];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = (byte) (i % TinyData.CLASSES);
        }
        labels[5] = (byte) 255;
        Idx.write(d.resolve("train-labels-idx1-ubyte.gz"), Idx.Array.ofU8(labels, labels.length));
        DataLoading.Loaded loaded = DataLoading.load(d, 32, 1, 0.25, 0);
        assertEquals(256, loaded.train().numClasses());
        String line = loaded.describe();
        assertTrue(line.contains("256 classes") && line.contains("WARNING: 252 of them have no training example")
                && line.contains("first class 3"), line);
    }

    @Test
    void uint8NpyImagesAreScaledLikeIdxAndVectorsAreNot() throws IOException {
        byte[] v = new byte[4 * 2 * 2];
        for (int i = 0; i < v.length; i++) {
            v[i] = (byte) (i * 17);                                          // 0, 17, ..., 255
        }
        Path images = dir.resolve("u8-images.npy");
        writeU8Npy(images, v, 4, 2, 2);
        assertArrayEquals(new long[] {4, 2, 2}, Npy.read(images).shape(), "the test writer is valid NPY");
        DataLoading.Loaded li = DataLoading.load(images, 32, 1, 0.25, 0);
        Path vectors = dir.resolve("u8-vectors.npy");
        writeU8Npy(vectors, v, 4, 4);
        DataLoading.Loaded lv = DataLoading.load(vectors, 32, 1, 0.25, 0);
        Path chw = dir.resolve("u8-chw.npy");
        writeU8Npy(chw, v, 4, 1, 2, 2);
        DataLoading.Loaded lc = DataLoading.load(chw, 32, 1, 0.5, 0);
        assertEquals(DataLoading.Kind.IMAGES, lc.kind());
        float[] all = concatAll(li);
        float[] allVectors = concatAll(lv);
        float[] allChw = concatAll(lc);
        Arrays.sort(all);
        Arrays.sort(allVectors);
        Arrays.sort(allChw);
        for (int i = 0; i < v.length; i++) {
            double u = Byte.toUnsignedInt(v[i]);
            assertEquals((float) (u / 127.5 - 1.0), all[i], 0f);         // the IDX mapping, Idx.toUnit
            assertEquals((float) (u / 127.5 - 1.0), allChw[i], 0f);
            assertEquals((float) u, allVectors[i], 0f);
        }
        assertEquals(-1f, all[0]);
        assertEquals(1f, all[all.length - 1]);
    }

    private static float[] concatAll(DataLoading.Loaded l) {
        float[] a = l.train().toArray();
        float[] b = l.heldOut().toArray();
        float[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    // ---------------------------------------------------------------- 6, 7. eval / resume against other data

    @Test
    void evalRefusesDataOptionsThatDifferFromTheRun() throws IOException {
        Path other = TinyData.idxFolder(dir.resolve("other"), 24, 6);
        TinyData.writeIdx(other, "train", 24, 500, true);                  // other images than the run's
        String[] e = {"eval", "--checkpoint", base.toString(), "--n", "4", "--reference", "4", "--steps", "2",
            "--backend", "cpu", "--out", dir.resolve("e.json").toString()};
        assertOneLineFailure(run(concat(e, "--held-out", "0.3")), "--held-out 0.3 differs");
        assertOneLineFailure(run(concat(e, "--data", other.toString())), "is not the data the run trained on");
        assertOneLineFailure(run(concat(e, "--split-seed", "9")), "--split-seed 9 differs");
        assertFalse(Files.exists(dir.resolve("e.json")));
    }

    /** Data moved to another folder is accepted by its fingerprint, for eval and for --resume. */
    @Test
    void movedDataIsRecognisedByItsFingerprint() throws IOException {
        Path moved = dir.resolve("moved-data");
        Files.createDirectories(moved);
        try (Stream<Path> files = Files.list(data)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.copy(f, moved.resolve(f.getFileName()));
            }
        }
        TrainSampleEvalTest.Result ev = run("eval", "--checkpoint", base.toString(), "--data", moved.toString(),
                "--n", "4", "--reference", "4", "--steps", "2", "--backend", "cpu", "--out",
                dir.resolve("moved.json").toString());
        assertEquals(0, ev.code(), ev::toString);
        Path r = copyOfBase("moved-run");
        TrainSampleEvalTest.Result t = run(concat(trainArgs(moved, r, 6), "--resume"));
        assertEquals(0, t.code(), t::toString);
        assertTrue(JSON.readTree(r.resolve("run.json").toFile()).get("options").get("data").asText()
                .endsWith("moved-data"));
    }

    @Test
    void resumeAndEvalNoticeThatTheDataChanged() throws IOException {
        Path d = TinyData.idxFolder(dir.resolve("changing"), 24, 6);
        Path r = dir.resolve("changing-run");
        TrainSampleEvalTest.Result t = run(trainArgs(d, r, 4));
        assertEquals(0, t.code(), t::toString);
        String fp = JSON.readTree(r.resolve("run.json").toFile()).get("data").get("fingerprint").asText();
        assertTrue(fp.matches("n=24\\+6 shape=\\[1, 16, 16] crc32=[0-9a-f]{8}"), fp);
        TinyData.writeIdx(d, "train", 24, 500, true);                      // same count and shape, other images
        assertOneLineFailure(run(concat(trainArgs(d, r, 6), "--resume")), "changed since the run started");
        assertOneLineFailure(run("eval", "--checkpoint", r.toString(), "--n", "4", "--reference", "4", "--steps",
                "2", "--backend", "cpu"), "is not the data the run trained on");
        // another file (a new-user trial was told the data "changed"): both paths named
        Path other = TinyData.idxFolder(dir.resolve("other-data"), 24, 6);
        TinyData.writeIdx(other, "train", 24, 700, true);
        assertOneLineFailure(run(concat(trainArgs(other, r, 6), "--resume")), "is not the run's data",
                other.toString(), d.toString());
    }

    // ---------------------------------------------------------------- 8. sizes

    /** A copy of the base checkpoint whose stored model configuration says imageSize 800000. */
    private Path hugeCheckpoint() throws IOException {
        byte[] b = Files.readAllBytes(base.resolve("checkpoints/latest.safetensors"));
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        int n = Math.toIntExact(bb.getLong(0));
        String header = new String(b, 8, n, StandardCharsets.UTF_8);
        String edited = header.replace("\\\"imageSize\\\":16", "\\\"imageSize\\\":800000");
        assertNotEquals(header, edited, "the header stores the model configuration");
        edited = edited + " ".repeat((8 - (edited.length() - header.length()) % 8) % 8);  // keep the data aligned
        byte[] h = edited.getBytes(StandardCharsets.UTF_8);
        ByteBuffer outBuf = ByteBuffer.allocate(8 + h.length + b.length - 8 - n).order(ByteOrder.LITTLE_ENDIAN);
        outBuf.putLong(h.length).put(h).put(b, 8 + n, b.length - 8 - n);
        Path file = dir.resolve("huge.safetensors");
        Files.write(file, outBuf.array());
        return file;
    }

    @Test
    void hugeSizesAreRefusedNamingTheOption() throws IOException {
        assertOneLineFailure(run("sample", "--checkpoint", hugeCheckpoint().toString(), "--backend", "cpu",
                "--out", dir.resolve("huge.png").toString()), "huge.safetensors", "imageSize\":800000",
                "beyond 2^31 - 1 elements per image");
        assertOneLineFailure(run("train", "--data", data.toString(), "--out", dir.resolve("huge").toString(),
                "--resolution", "100000", "--backend", "cpu"), "--resolution", "100000");
        assertOneLineFailure(run("sample", "--checkpoint", base.toString(), "--n", "2000000000", "--backend", "cpu",
                "--out", dir.resolve("huge.png").toString()), "--n 2000000000 is too large");
        assertTrue(Main.reason(new ArithmeticException("integer overflow")).startsWith("a size is too large"));
        assertFalse(Files.exists(dir.resolve("huge")));
    }

    // ---------------------------------------------------------------- 9. warm-up on resume

    /** A run stored before --min-lr > --lr was refused trained with min(floor, peak): it still resumes. */
    @Test
    void aStoredFloorAboveThePeakStillResumes() throws IOException {
        Path copy = copyOfBase("old-min-lr");
        Path runJson = copy.resolve("run.json");
        String json = Files.readString(runJson);
        String patched = json.replaceFirst("\"minLr\"\\s*:\\s*[0-9.eE+-]+", "\"minLr\" : 0.5");
        assertNotEquals(json, patched, "run.json holds minLr");
        Files.writeString(runJson, patched);
        // such a run's checkpoints hold the floor it trained with, min(floor, peak) = the peak
        Path latest = copy.resolve("checkpoints/latest.safetensors");
        try (org.diffusion4j.cpu.CpuBackend be = new org.diffusion4j.cpu.CpuBackend(1);
             org.diffusion4j.tensor.TensorScope sc = org.diffusion4j.tensor.TensorScope.open()) {
            var f = org.diffusion4j.io.Safetensors.read(latest, sc, be, n -> true,
                    org.diffusion4j.io.Safetensors.Mode.COPY);
            java.util.Map<String, String> meta = new java.util.HashMap<>(f.metadata());
            com.fasterxml.jackson.databind.node.ObjectNode tc = (com.fasterxml.jackson.databind.node.ObjectNode)
                    JSON.readTree(meta.get(org.diffusion4j.training.Checkpoint.KEY_TRAINING_CONFIG));
            tc.put("minLearningRate", tc.get("learningRate").asDouble());
            meta.put(org.diffusion4j.training.Checkpoint.KEY_TRAINING_CONFIG, JSON.writeValueAsString(tc));
            org.diffusion4j.io.Safetensors.write(latest, f.tensors(), meta);
        }
        TrainSampleEvalTest.Result r = run(concat(trainArgs(data, copy, 6), "--resume"));
        assertEquals(0, r.code(), r::toString);
        assertOneLineFailure(run(concat(trainArgs(data, dir.resolve("new-min-lr"), 2), "--min-lr", "0.5")),
                "--min-lr must be in [0, --lr");
    }

    @Test
    void resumeWithStepsBelowTheStoredWarmupSaysWhereItComesFrom() {
        assertOneLineFailure(run("train", "--out", base.toString(), "--resume", "--steps", "2", "--backend",
                "cpu"), "--steps 2", "warm-up of 3 steps", "run.json");
    }

    // ---------------------------------------------------------------- 10. output location

    @Test
    void anUnwritableOutputIsRefusedBeforeTheWorkNamingTheUsersPath() {
        assertOneLineFailure(run("sample", "--checkpoint", base.toString(), "--out", "/proc/x.png", "--backend",
                "cpu"), "/proc/x.png", "not writable");
        assertOneLineFailure(run("sample", "--checkpoint", base.toString(), "--save-raw", "/proc/x.npy",
                "--out", dir.resolve("ok.png").toString(), "--backend", "cpu"), "/proc/x.npy");
        IOException e = assertThrows(IOException.class, () -> AtomicFiles.writeBytes(Path.of("/proc/x.npy"),
                new byte[1]));
        assertTrue(e.getMessage().contains("/proc/x.npy") && !e.getMessage().contains(".tmp"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("ok.png")));
    }

    // ---------------------------------------------------------------- 11. minor messages

    @Test
    void minorMessagesAreClear() throws IOException {
        TrainSampleEvalTest.Result unknown = run("bogus-command");
        assertOneLineFailure(unknown, "diffusion4j: ");
        assertFalse(unknown.err().contains("diffusion4j diffusion4j"), unknown::toString);

        assertOneLineFailure(run("sample", "--checkpoint", "/dev/null", "--backend", "cpu"), "not a regular file");
        Path csv = dir.resolve("looks.csv");
        Files.writeString(csv, "x,y,z,w,v,u\n1,2,3,4,5,6\n");
        assertOneLineFailure(run("sample", "--checkpoint", csv.toString(), "--backend", "cpu"),
                "not a safetensors file");

        Path out = dir.resolve("zero");
        assertOneLineFailure(run("train", "--data", data.toString(), "--out", out.toString(), "--model", "mlp",
                "--blocks", "0", "--backend", "cpu"), "--blocks must be >= 1, got 0");
        assertOneLineFailure(run("train", "--data", data.toString(), "--out", out.toString(), "--depth", "0",
                "--backend", "cpu"), "--depth must be >= 1, got 0");

        assertOneLineFailure(run("train", "--data", data.toString(), "--out", out.toString(), "--model", "mlp",
                "--random-flip", "--backend", "cpu"), "--random-flip mirrors images");
        assertFalse(Files.exists(out));

        Path hwc = dir.resolve("hwc.npy");
        Npy.write(hwc, new float[4 * 8 * 8 * 3], 4, 8, 8, 3);
        assertOneLineFailure(run("train", "--data", hwc.toString(), "--out", out.toString(), "--backend", "cpu"),
                "8 channels", "channels-last", "[N, C, H, W]");
        assertFalse(Files.exists(out));
        // two channels used to train to the end and then fail at the first grid, before the final checkpoint
        Path twoChannels = dir.resolve("c2.npy");
        Npy.write(twoChannels, new float[4 * 2 * 8 * 8], 4, 2, 8, 8);
        assertOneLineFailure(run("train", "--data", twoChannels.toString(), "--out", out.toString(), "--backend",
                "cpu"), "2 channels", "grey (1) or RGB (3)");
        assertFalse(Files.exists(out));

        TrainSampleEvalTest.Result g = run("sample", "--checkpoint", base.toString(), "--n", "3", "--steps", "2",
                "--guidance", "3", "--backend", "cpu", "--out", dir.resolve("g.png").toString());
        assertEquals(0, g.code(), g::toString);
        assertTrue(g.err().contains("warning") && g.err().contains("--label-dropout 0"), g::toString);
    }

    /** --backend, --threads and --verbose come from one mixin ({@link RuntimeOptions}) in train, sample and eval. */
    @Test
    void theSharedRuntimeOptionsAreCheckedAlikeInEveryCommand() {
        String bad = "--threads must be in [1, 1024], got 0";
        assertOneLineFailure(run("sample", "--checkpoint", base.toString(), "--n", "2", "--backend", "cpu",
                "--threads", "100000", "--out", dir.resolve("t0.png").toString()), "diffusion4j sample: ",
                "--threads must be in [1, 1024], got 100000");
        assertOneLineFailure(run(concat(trainArgs(data, dir.resolve("threads0"), 4), "--threads", "0")), bad);
        assertOneLineFailure(run("sample", "--checkpoint", base.toString(), "--n", "2", "--backend", "cpu",
                "--threads", "0", "--out", dir.resolve("t0.png").toString()), "diffusion4j sample: ", bad);
        assertOneLineFailure(run("eval", "--checkpoint", base.toString(), "--n", "2", "--reference", "2",
                "--backend", "cpu", "--threads", "0"), "diffusion4j eval: ", bad);
        assertOneLineFailure(run("demo", "--steps", "2", "--threads", "0", "--out",
                dir.resolve("d0.png").toString()), "diffusion4j demo: ", bad);
        assertFalse(Files.exists(dir.resolve("d0.png")), "nothing written");

        TrainSampleEvalTest.Result verbose = run("sample", "--checkpoint", base.toString(), "--n", "2", "--backend",
                "cpu", "--threads", "0", "--verbose", "--out", dir.resolve("t0.png").toString());
        assertEquals(1, verbose.code(), verbose::toString);
        assertTrue(verbose.err().contains(bad) && verbose.err().contains("\tat "), verbose::toString);
    }

    @Test
    void aCorruptLatestCheckpointOnResumeNamesTheNewestIntactOne() throws IOException {
        Path copy = copyOfBase("corrupt-latest");
        Files.writeString(copy.resolve("checkpoints/latest.safetensors"), "garbage");
        Files.writeString(copy.resolve("checkpoints/step-000004.safetensors"), "garbage too");
        assertOneLineFailure(run(concat(trainArgs(data, copy, 6), "--resume")), "latest.safetensors",
                "newest intact checkpoint is checkpoints/step-000002.safetensors");
    }

    private static String[] concat(String[] a, String... b) {
        List<String> l = new ArrayList<>(Arrays.asList(a));
        l.addAll(Arrays.asList(b));
        return l.toArray(String[]::new);
    }
}
