package org.diffusion4j.cli;

import org.diffusion4j.io.AtomicFiles;
import org.diffusion4j.io.Dataset;
import org.diffusion4j.io.FileFormatException;
import org.diffusion4j.io.Npy;
import org.diffusion4j.metrics.ClassifierFeatures;
import org.diffusion4j.metrics.FrechetDistance;
import org.diffusion4j.metrics.GaussianFit;
import org.diffusion4j.metrics.KernelDistance;
import org.diffusion4j.metrics.LabelMetrics;
import org.diffusion4j.metrics.MetricsReport;
import org.diffusion4j.metrics.NearestNeighbourClassifier;
import org.diffusion4j.metrics.NearestNeighbourRatio;
import org.diffusion4j.metrics.Pairwise;
import org.diffusion4j.metrics.PointSet;
import org.diffusion4j.metrics.PrecisionRecall;
import org.diffusion4j.metrics.VectorMetrics;
import org.diffusion4j.tensor.Backend;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code eval}: the quality of samples — drawn from a checkpoint, or read from an NPY file — against the held-out
 * part of the data ({@link DataLoading}).
 *
 * <p>Images: the <b>classifier-feature Fréchet distance</b> ({@link FrechetDistance} in the penultimate features of
 * a small classifier trained once on the training split and cached, {@link ClassifierFeatures}; not the Inception
 * FID) against held-out images, with the same number for an equal-sized set of real training images as the
 * "perfect model" reference; for a class-conditional model the classifier's accuracy on the samples (their intended
 * class against its prediction; beside its accuracy on held-out real images) and the class coverage
 * ({@link LabelMetrics#coverage}, classes predicted for at least {@code max(1, n/(4K))} samples); the
 * nearest-neighbour memorisation ratio ({@link NearestNeighbourRatio}, ≈ 1 novel, ≪ 1 copying the training set);
 * the kernel distance in the classifier's features ({@link KernelDistance}). Vectors: sliced Wasserstein, MMD² (RBF,
 * median heuristic) and energy distance ({@link VectorMetrics}), again with a real-data reference row. Both:
 * precision, recall, density and coverage ({@link PrecisionRecall}; classifier features, or standardised vectors) at
 * equal set sizes, with a real-data reference.
 *
 * <p>With {@code --guidance-sweep G1,G2,...} the checkpoint is sampled at each scale from the same noise and each
 * sample set scored as above; a table, a JSON list of the reports and a plot against the scale are written, and
 * run.json is left alone.
 *
 * <p>Prints the report and writes it as JSON ({@code --out}, default {@code eval.json} in the run folder of the
 * checkpoint, else in the working folder; for {@code --samples x.npy}, {@code x.eval.json} beside it); a checkpoint
 * inside a run folder also gets the metrics in its {@code run.json}.
 */
@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Evaluate samples (from a checkpoint, or an .npy file) against held-out data: for labelled "
                + "images a classifier-feature FD and kernel distance, class accuracy and coverage; for vectors sliced "
                + "Wasserstein, MMD and energy distance; for both precision, recall, density and coverage and a "
                + "real-data reference row; prints the metrics and writes them as JSON.")
final class EvalCommand implements Callable<Integer> {

    /** Philox stream of the choice of held-out and training subsets. */
    static final long SUBSET_STREAM = 77;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--checkpoint", description = "a checkpoint file or a run folder (its latest) to sample from")
    Path checkpoint;

    @Option(names = "--samples", description = "an .npy or .idx of samples [n, ...] (as sample --save-raw writes "
            + "them) to evaluate instead of sampling")
    Path samplesFile;

    @Option(names = "--data", description = "the dataset (default: the run's --data; for a run folder another "
            + "one is refused, and so is data changed since training)")
    Path data;

    @Option(names = "--n", defaultValue = "500", description = "samples to draw (default: ${DEFAULT-VALUE})")
    int n;

    @Option(names = "--reference", defaultValue = "2000",
            description = "held-out (and real reference) samples used at most (default: ${DEFAULT-VALUE})")
    int reference;

    @Option(names = "--sampler", description = "sampler (default: flow-midpoint for flow models, dpmpp-2m otherwise)")
    String sampler;

    @Option(names = "--steps", defaultValue = "16", description = "sampler steps (default: ${DEFAULT-VALUE})")
    int steps;

    @Mixin
    SamplerKnobs knobs;

    @Option(names = "--grid", defaultValue = "auto", description = Sampling.GRID_DESCRIPTION)
    String grid;

    @Option(names = "--guidance", description = "guidance scale (default: 2 for a conditional model trained with "
            + "label dropout, else 1)")
    Double guidance;

    @Option(names = "--guidance-sweep", paramLabel = "G1,G2,...", description = "evaluate at each of these guidance "
            + "scales (2 to 12, the same noise for each) instead of one: prints a table, writes the reports as a JSON "
            + "list (--out, default eval-guidance.json beside eval.json) and a plot of the metrics against the scale "
            + "(the same name, .png); leaves run.json alone")
    String guidanceSweep;

    @Option(names = "--seed", defaultValue = "0", description = "noise seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--weights", defaultValue = "auto", description = "auto, ema or raw (default: ${DEFAULT-VALUE})")
    String weights;

    @Option(names = "--batch", defaultValue = "64", description = "samples per model batch (default: "
            + "${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--held-out", defaultValue = "0.1",
            description = "fraction held out when the data has no test split (default: ${DEFAULT-VALUE}; for a run "
                    + "folder the run's value, and another one is refused)")
    double heldOut;

    @Option(names = "--resolution", defaultValue = "32", description = "image-folder resolution (default: "
            + "${DEFAULT-VALUE}; the run's value for a run folder)")
    int resolution;

    @Option(names = "--label-column", description = "CSV data: the column of class labels, left out of the vectors "
            + "(the run's value for a run folder)")
    String labelColumn;

    @Option(names = "--channels", defaultValue = "auto", description = "image-folder channels: 1, 3 or auto (default: "
            + "${DEFAULT-VALUE}; the run's value for a run folder)")
    String channels;

    @Option(names = "--split-seed", description = "seed of the held-out split (default: the run's seed, else 0)")
    Long splitSeed;

    @Option(names = "--classifier-epochs", defaultValue = "3",
            description = "epochs of the feature classifier (default: ${DEFAULT-VALUE})")
    int classifierEpochs;

    @Option(names = "--cache-dir", description = "classifier cache (default: ${XDG_CACHE_HOME:-~/.cache}/diffusion4j)")
    Path cacheDir;

    @Option(names = "--out", description = "JSON to write (default: eval.json in the checkpoint's run folder, else "
            + "in the working folder; with --samples x.npy: x.eval.json beside it)")
    Path out;

    @Mixin
    RuntimeOptions runtime;

    @Override
    public Integer call() throws IOException {
        PrintWriter o = spec.commandLine().getOut();
        if ((checkpoint == null) == (samplesFile == null)) {
            throw new IllegalArgumentException("give exactly one of --checkpoint (sample a model) and --samples "
                    + "(an .npy or .idx of samples); to score samples against a run's held-out data, give --samples "
                    + "with the run's --data (and --label-column, --held-out, --seed when the run set them)");
        }
        if (samplesFile != null) {                        // sampling options would be ignored: say so
            for (String opt : new String[] {"--sampler", "--steps", "--grid", "--guidance", "--weights", "--n",
                "--batch", "--guidance-sweep", "--threshold", "--eta", "--s-churn"}) {
                if (spec.commandLine().getParseResult().hasMatchedOption(opt)) {
                    throw new IllegalArgumentException(opt + " applies to sampling a --checkpoint; --samples "
                            + samplesFile + " are already drawn");
                }
            }
        }
        List<Double> sweep = guidanceSweep == null ? null : parseSweep(guidanceSweep);
        if (sweep != null && guidance != null) {
            throw new IllegalArgumentException("give one of --guidance and --guidance-sweep");
        }
        if (n < 2 || reference < 2) {
            throw new IllegalArgumentException("--n and --reference must be >= 2, got " + n + ", " + reference);
        }
        if (classifierEpochs < 1) {                       // before loading and sampling, not after
            throw new IllegalArgumentException("--classifier-epochs must be >= 1, got " + classifierEpochs);
        }
        if (samplesFile != null && (samplesFile.toString().isEmpty() || Files.isDirectory(samplesFile))) {
            throw new IllegalArgumentException("--samples " + (samplesFile.toString().isEmpty() ? "is empty"
                    : samplesFile.toAbsolutePath().normalize() + " is a folder") + "; give an .npy or .idx file of "
                    + "samples (sample --save-raw writes one)");
        }
        if (data != null && data.toString().isEmpty()) {
            throw new IllegalArgumentException("--data is empty; give the dataset's path");
        }
        if (batch < 1 || batch > SampleCommand.MAX_BATCH) {
            throw new IllegalArgumentException("--batch must be in [1, " + SampleCommand.MAX_BATCH + "], got " + batch);
        }
        org.diffusion4j.sampling.GridSpacing spacing = org.diffusion4j.sampling.GridSpacing.AUTO;
        if (checkpoint != null) {
            spacing = SampleCommand.checkBeforeLoad(sampler, steps, grid, null);
        }
        Path jsonOut = out != null ? SampleCommand.requireWritable("--out", out, ".json")
                : samplesFile != null ? SampleCommand.requireWritable("--out", besideSamples(samplesFile), ".json")
                : null;
        if (jsonOut != null) {
            if (sweep != null) {
                refuseForeignSweep(jsonOut);
            } else {
                refuseForeignJson(jsonOut);                      // before the work, not after it
            }
        }
        long start = System.nanoTime();

        float[] generated;
        List<float[]> sweepSamples = new ArrayList<>();        // with --guidance-sweep: the samples of each scale
        int[] intended = null;
        int count;
        long[] sampleShape;
        Path dataPath = data;
        RunFolder folder = null;
        double frac = heldOut;
        int res = resolution;
        int ch = DataLoading.parseChannels(channels);
        String labels = labelColumn;
        long split = splitSeed != null ? splitSeed : 0;
        String runFingerprint = null;
        MetricsReport report;
        DataLoading.Loaded loaded = null;
        Map<String, String> settings = new LinkedHashMap<>();
        if (checkpoint != null) {
            try (ModelSession s = ModelSession.open(checkpoint, runtime, weights)) {
                o.println("checkpoint  " + s.file + ": " + s.describe());
                folder = s.runFolder;
                if (s.foreignToRun()) {
                    o.println("warning     " + s.file.getFileName() + " was trained on other data or another split "
                            + "than the run in " + s.runFolder.root() + ": it is scored on its own split, and the "
                            + "run's run.json is left alone");
                    folder = null;
                }
                if (jsonOut == null && sweep != null) {          // the default, decided once, checked before sampling
                    jsonOut = sweepJsonOut(folder);
                    refuseForeignSweep(jsonOut);
                } else if (jsonOut == null) {
                    jsonOut = defaultJsonOut(folder);
                    refuseForeignJson(jsonOut);
                }
                RunJson.DataSource src = s.dataSource();
                if (src != null) {
                    runFingerprint = src.fingerprint();
                    String where = s.run != null && !s.foreignToRun() ? " (the run in " + s.runFolder.root() + " used "
                            : " (the checkpoint's training used ";
                    refuseConflicts(src, where, runFingerprint != null);
                    if (dataPath == null) {
                        dataPath = Path.of(src.data());
                        if (!Files.exists(dataPath)) {
                            throw new IllegalArgumentException("the data the model trained on, " + dataPath + ", is "
                                    + "gone (moved or deleted); give its new place with --data (the split and a "
                                    + "fingerprint check come from the " + (s.run != null ? "run" : "checkpoint") + ")");
                        }
                    }
                    frac = src.heldOut();
                    labels = src.labelColumn();
                    res = src.resolution();
                    ch = src.channels();
                    if (splitSeed == null) {
                        split = src.seed();
                    }
                    if (s.run == null || s.foreignToRun()) {
                        o.println("split       from the checkpoint's metadata: held out " + frac + " of "
                                + DataLoading.printable(dataPath.toString()) + ", seed " + split
                                + (labels != null ? ", labels in column " + DataLoading.printable(labels) : ""));
                    }
                }
                if (dataPath == null) {
                    throw new IllegalArgumentException("--data is needed: " + s.file + " is not in a run folder and "
                            + "does not say which data it was trained on");
                }
                loaded = loadChecked(o, dataPath, res, ch, frac, split, runFingerprint, labels,
                        src == null ? null : src.data());                                     // before sampling
                int[] toData = classMap(s.model().numClasses(), s.classNames(), loaded.train());
                if (sweep != null && s.model().numClasses() == 0) {
                    throw new IllegalArgumentException("--guidance-sweep needs a class-conditional model; "
                            + s.file.getFileName() + " is unconditional");
                }
                SampleCommand.Result r = null;
                for (Double g : sweep != null ? sweep : java.util.Collections.singletonList(guidance)) {
                    if (sweep != null) {
                        o.println("guidance    " + g);
                    }
                    r = SampleCommand.run(s, sampler, steps, spacing, g, 0.0, null, seed, n, batch,
                            spec.commandLine().getErr(), o, knobs.knobs());
                    sweepSamples.add(r.samples());
                }
                generated = r.samples();
                intended = r.labels();
                if (intended != null && toData != null) {
                    remap(intended, toData);
                }
                if (guidance == null && sweep == null && r.guidance() != 1.0) {
                    o.println("note        guidance " + r.guidance() + " (the default of a model trained with label "
                            + "dropout) sharpens the classes and moves samples away from the data's distribution; "
                            + "--guidance 1 measures the model's own distribution");
                }
                count = n;
                long[] img = s.imageShape();
                sampleShape = img != null ? img : s.model().sampleShape();
                settings.put("checkpoint", s.file.toString());
                settings.put("checkpoint_step", Long.toString(s.loaded.info().step()));
                settings.put("sampler", r.samplerName() + ", " + r.steps() + " steps"
                        + SampleCommand.gridNote(r.spacing()) + ", guidance " + r.guidance() + ", seed " + seed);
                if (sweep == null) {
                    o.println("sampler     " + settings.get("sampler"));
                }
                settings.put("weights", s.loaded.emaUsed() ? "EMA" : "raw");
            }
        } else {
            if (dataPath == null) {
                throw new IllegalArgumentException("--data is needed with --samples");
            }
            loaded = loadChecked(o, dataPath, res, ch, frac, split, null, labels, null);
            Npy.Array a = DataLoading.readArray(samplesFile);
            long[] shape = a.shape();
            if (shape.length < 2) {
                throw new FileFormatException(samplesFile, "holds an array of shape " + Arrays.toString(shape)
                        + "; need [n, ...sample shape]");
            }
            count = Math.toIntExact(shape[0]);
            sampleShape = Arrays.copyOfRange(shape, 1, shape.length);
            generated = a.values();
            if (count < 2) {
                throw new FileFormatException(samplesFile, "holds " + count + " sample" + (count == 1 ? "" : "s")
                        + "; eval needs at least 2");
            }
            boolean integers = a.descr().matches("[<>|=]?[iu][1248]");
            if (integers && loaded.kind() == DataLoading.Kind.IMAGES) {
                float lo = Float.POSITIVE_INFINITY;
                float hi = Float.NEGATIVE_INFINITY;
                for (float v : generated) {
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
                if (lo < 0 || hi > 255) {
                    throw new FileFormatException(samplesFile, "holds integer images (" + a.descr() + ") with values "
                            + "in [" + (long) lo + ", " + (long) hi + "]: integer samples are read as 8-bit pixels, "
                            + "0..255; store other scales as floats in the data's [-1, 1]");
                }
                for (int i = 0; i < generated.length; i++) {          // as uint8 image data is read
                    generated[i] = (float) (generated[i] / 127.5 - 1.0);
                }
                o.println("note        " + samplesFile.getFileName() + " holds integer images (" + a.descr() + "): "
                        + "scaled from 0..255 to [-1, 1] like the data");
            }
            if (!loaded.heldOutFrom().equals("t10k") && splitSeed == null) {
                o.println("note        the held-out rows are a " + loaded.heldOutFrom() + " of the data drawn with "
                        + "seed 0; for samples of a model trained with another --seed, give it as --split-seed "
                        + "(or evaluate with --checkpoint), else the model has seen some of these rows");
            }
            int perSample = count > 0 ? generated.length / count : 1;
            for (int i = 0; i < generated.length; i++) {
                if (!Float.isFinite(generated[i])) {
                    throw new FileFormatException(samplesFile, "sample " + i / perSample + ", value " + i % perSample
                            + " (element " + i + ") is " + generated[i]
                            + (Float.isInfinite(generated[i]) ? " (or beyond float32's range)" : ""));
                }
            }
            settings.put("samples", samplesFile.toAbsolutePath().normalize().toString());
            Path labelsFile = SampleCommand.labelsFile(samplesFile);
            if (Files.isRegularFile(labelsFile) && loaded.train().hasLabels()) {
                Path classesFile = SampleCommand.classesFile(samplesFile);
                List<String> names = List.of();
                if (Files.isRegularFile(classesFile)) {
                    try {
                        names = List.of(RunJson.JSON.readValue(classesFile.toFile(), String[].class));
                    } catch (IOException | RuntimeException e) {
                        throw new FileFormatException(classesFile, "is not a JSON list of class names", e);
                    }
                }
                int modelClasses = names.isEmpty() ? loaded.train().numClasses() : names.size();
                intended = intendedLabels(labelsFile, count, modelClasses);
                remap(intended, classMap(modelClasses, names, loaded.train()));
                o.println("labels      " + labelsFile + ": the class each sample was drawn for (sample --save-raw)"
                        + (names.isEmpty() ? "" : ", named in " + classesFile.getFileName()));
                settings.put("labels", labelsFile.toAbsolutePath().normalize().toString());
            }
        }
        long[] dataShape = loaded.sampleShape();
        if (sampleShape.length == 2 && dataShape.length == 3 && dataShape[0] == 1) {
            sampleShape = new long[] {1, sampleShape[0], sampleShape[1]};
        }
        if (!Arrays.equals(sampleShape, dataShape)) {
            boolean imageFolder = dataPath != null && InitWeights.isImageFolder(dataPath) && sampleShape.length == 3
                    && dataShape.length == 3 && sampleShape[1] == sampleShape[2];
            throw new IllegalArgumentException("the samples are " + Arrays.toString(sampleShape) + " but the data's are "
                    + Arrays.toString(dataShape) + (imageFolder && sampleShape[1] != dataShape[1] ? " (an image folder is "
                    + "read at --resolution, default 32: give --resolution " + sampleShape[1] + ")" : ""));
        }
        Dataset held = subset(loaded.heldOut(), reference, split, 0);
        if (held.size() < reference && spec.commandLine().getParseResult().hasMatchedOption("--reference")) {
            o.println("note        --reference " + reference + " asks for more than the " + held.size()
                    + " held-out samples of the data: using all " + held.size());
        }
        // the real reference at the samples' size: what a perfect model with as many samples scores (the FD and the
        // distances depend on the sample count)
        Dataset trainRef = subset(loaded.train(), Math.min(count, loaded.train().size()), split, 1);
        settings.put("data", dataPath.toString() + " (held out: " + loaded.heldOutFrom() + ")");

        runtime.applyThreads();
        if (sweep != null) {
            return sweep(o, folder, jsonOut, loaded, held, trainRef, sweep, sweepSamples, count, intended, settings,
                    start);
        }
        report = score(o, loaded, held, trainRef, generated, count, intended);
        String pr = report.settings().get("precision_recall");
        if (pr != null && pr.startsWith("not computed")) {
            o.println("note        precision/recall " + pr);
        }
        for (Map.Entry<String, String> e : settings.entrySet()) {
            report = report.withSetting(e.getKey(), e.getValue());
        }
        report = report.withSetting("seconds", String.format(Locale.ROOT, "%.1f", (System.nanoTime() - start) / 1e9));
        o.print(report.toText());
        if (!report.toText().endsWith("\n")) {
            o.println();
        }
        if (jsonOut == null) {
            jsonOut = defaultJsonOut(folder);
        }
        SampleCommand.createParent(jsonOut);
        AtomicFiles.writeBytes(jsonOut, (report.toJson() + "\n").getBytes(StandardCharsets.UTF_8));
        o.println("json        " + jsonOut);
        RunFolder.Lock lock = null;
        if (folder != null && Files.isRegularFile(folder.runJson())) {
            try {
                lock = folder.lock();
            } catch (IllegalStateException e) {
                spec.commandLine().getErr().println("warning: run.json not updated with the metrics: "
                        + e.getMessage());
                spec.commandLine().getErr().flush();
            }
        }
        if (lock != null) {
            try (RunFolder.Lock ignored = lock) {
                updateRun(folder, report);
            }
        }
        o.flush();
        return 0;
    }

    /** The metrics of one sample set, with the warnings printed (a backend of the run's choice for the pairs). */
    private MetricsReport score(PrintWriter o, DataLoading.Loaded loaded, Dataset held, Dataset trainRef,
                                float[] generated, int count, int[] intended) {
        MetricsReport report;
        try (Backend be = RuntimeOptions.createBackend(runtime.backend)) {
            if (loaded.kind() == DataLoading.Kind.IMAGES) {
                report = images(o, be, loaded, held, trainRef, generated, count, intended);
            } else {
                report = vectors(be, loaded, held, trainRef, generated, count, intended);
                if (report.settings().containsKey("warning_knn")) {
                    o.println("warning     " + report.settings().get("warning_knn"));
                }
                if (held.size() < 50) {
                    String w = "only " + held.size() + " held-out samples: the distances are noisy (compare with "
                            + "the real reference); " + moreHeldOut(loaded, held.size());
                    o.println("warning     " + w);
                    report = report.withSetting("warning", w);
                }
            }
        }
        return report;
    }

    /** Most scales of a guidance sweep. */
    static final int MAX_SWEEP = 12;

    /** {@code --guidance-sweep}: 2 to {@link #MAX_SWEEP} distinct finite scales {@code >= 0}, sorted ascending. */
    static List<Double> parseSweep(String text) {
        List<Double> values = new ArrayList<>();
        for (String part : text.split(",", -1)) {
            double g;
            try {
                g = Double.parseDouble(part.strip());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--guidance-sweep: '" + part.strip() + "' is not a number; expected "
                        + "a list such as 1,1.5,2,3,4");
            }
            if (!(g >= 0) || !Double.isFinite(g)) {
                throw new IllegalArgumentException("--guidance-sweep: scales must be finite and >= 0, got " + g);
            }
            if (values.contains(g)) {
                throw new IllegalArgumentException("--guidance-sweep: " + g + " is given twice");
            }
            values.add(g);
        }
        if (values.size() < 2 || values.size() > MAX_SWEEP) {
            throw new IllegalArgumentException("--guidance-sweep needs 2 to " + MAX_SWEEP + " scales, got "
                    + values.size() + " (one scale: --guidance)");
        }
        values.sort(null);                                 // ascending, for the table and the plot's lines
        return values;
    }

    /** Metrics of the sweep's table, in this order, when the reports have them. */
    private static final List<String> SWEEP_COLUMNS = List.of("classifier_fd", "classifier_kid", "sliced_wasserstein",
            "precision", "recall", "coverage", "classifier_accuracy", "knn_class_accuracy");

    /**
     * Scores each scale's samples, prints one row per scale, writes the reports as a JSON list and the plot; the
     * run's run.json keeps the metrics of a plain eval.
     */
    private int sweep(PrintWriter o, RunFolder folder, Path jsonOut, DataLoading.Loaded loaded, Dataset held,
                      Dataset trainRef, List<Double> scales, List<float[]> samples, int count, int[] intended,
                      Map<String, String> settings, long start) throws IOException {
        Path json = jsonOut != null ? jsonOut : sweepJsonOut(folder);
        List<MetricsReport> reports = new ArrayList<>();
        for (int i = 0; i < scales.size(); i++) {
            o.println("scoring     guidance " + scales.get(i));
            MetricsReport r = score(o, loaded, held, trainRef, samples.get(i), count, intended);
            for (Map.Entry<String, String> e : settings.entrySet()) {
                r = r.withSetting(e.getKey(), e.getValue());
            }
            String sampler = settings.get("sampler");
            if (sampler != null) {
                r = r.withSetting("sampler", sampler.replaceAll("guidance [^,]+", "guidance " + scales.get(i)));
            }
            reports.add(r.withSetting("guidance", Double.toString(scales.get(i))));
        }
        List<String> columns = new ArrayList<>();
        for (String c : SWEEP_COLUMNS) {
            if (reports.get(0).metrics().containsKey(c)) {
                columns.add(c);
            }
        }
        StringBuilder head = new StringBuilder(String.format(Locale.ROOT, "%-9s", "guidance"));
        for (String c : columns) {
            head.append(String.format(Locale.ROOT, " %14s", c.replace("classifier_", "")));
        }
        o.println(head);
        for (int i = 0; i < reports.size(); i++) {
            StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "%-9s", scales.get(i)));
            for (String c : columns) {
                row.append(String.format(Locale.ROOT, " %14.4g", reports.get(i).metrics().get(c)));
            }
            o.println(row);
        }
        StringBuilder list = new StringBuilder("[\n");
        for (int i = 0; i < reports.size(); i++) {
            list.append(reports.get(i).toJson()).append(i + 1 < reports.size() ? ",\n" : "\n");
        }
        list.append("]\n");
        SampleCommand.createParent(json);
        AtomicFiles.writeBytes(json, list.toString().getBytes(StandardCharsets.UTF_8));
        o.println("json        " + json);
        Path png = sweepPlot(json);
        double[] g = new double[scales.size()];
        List<Map<String, Double>> metrics = new ArrayList<>();
        for (int i = 0; i < g.length; i++) {
            g[i] = scales.get(i);
            metrics.add(reports.get(i).metrics());
        }
        try {
            Plots.guidanceSweep(png, g, metrics, "guidance sweep");
            o.println("plot        " + png);
        } catch (Plots.NoFontsException e) {                 // the JSON above holds every number of the plot
            o.println("plot        not drawn: " + e.getMessage());
        }
        o.printf(Locale.ROOT, "time        %.1f s%n", (System.nanoTime() - start) / 1e9);
        o.flush();
        return 0;
    }

    /** Where a sweep goes without {@code --out}: eval-guidance.json in the run folder, else in the working one. */
    private static Path sweepJsonOut(RunFolder folder) {
        return (folder != null ? folder.root() : Path.of("")).resolve("eval-guidance.json").toAbsolutePath()
                .normalize();
    }

    /** The plot beside a sweep's JSON: the same name, {@code .png}. */
    static Path sweepPlot(Path json) {
        String name = json.getFileName().toString();
        return json.resolveSibling((name.endsWith(".json") ? name.substring(0, name.length() - 5) : name) + ".png");
    }

    /**
     * Refuses to replace a file that is not a sweep written by this command, or a PNG beside it that is not that
     * sweep's plot (a sample grid, a run's loss.png): both checked before any sampling.
     */
    private static void refuseForeignSweep(Path file) throws IOException {
        if (!Files.exists(file)) {
            if (Files.exists(sweepPlot(file))) {
                throw new IllegalArgumentException("--out: " + sweepPlot(file) + " exists, and the sweep's plot would "
                        + "replace it; refusing (give --out another name)");
            }
            return;
        }
        try {
            com.fasterxml.jackson.databind.JsonNode node = RunJson.JSON.readTree(file.toFile());
            if (!node.isArray() || node.isEmpty() || !node.get(0).has("metrics")) {
                throw new IllegalArgumentException();
            }
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException("--out: " + file + " exists and is not a guidance sweep of this "
                    + "command; refusing to overwrite it (delete it or give --out another name)");
        }
    }

    /**
     * The data's class of each of the model's {@code k} classes, for judging class-conditional samples by the data's
     * labels: by name when both name their classes (the same names in another order are remapped), else the
     * identity when the counts agree; null when the model is unconditional or the data unlabelled.
     *
     * @throws IllegalArgumentException when a model class has no namesake in the data, or the counts differ
     */
    static int[] classMap(int k, List<String> modelNames, Dataset data) {
        if (k == 0 || !data.hasLabels()) {
            return null;
        }
        List<String> dataNames = data.classNames();
        int[] map = new int[k];
        if (!modelNames.isEmpty() && !dataNames.isEmpty()) {
            for (int c = 0; c < k; c++) {
                map[c] = dataNames.indexOf(modelNames.get(c));
                if (map[c] < 0) {
                    throw new IllegalArgumentException("the model's class " + c + " '" + modelNames.get(c) + "' is "
                            + "not a class of the data (" + dataNames + "): its samples cannot be judged; evaluate "
                            + "on data with the model's classes " + modelNames);
                }
            }
            return map;
        }
        if (k != data.numClasses()) {
            throw new IllegalArgumentException("the model has " + k + " classes but the data " + data.numClasses()
                    + ": its class-conditional samples cannot be judged by the data's labels");
        }
        for (int c = 0; c < k; c++) {
            map[c] = c;
        }
        return map;
    }

    /**
     * The labels file of {@code sample --save-raw}: {@code count} integer classes in {@code [0, classes)} (the model's
     * numbering; {@link #classMap} takes them to the data's by the names of {@code x.classes.json}).
     *
     * @throws FileFormatException naming the file for another count, a non-integer or an out-of-range class
     */
    static int[] intendedLabels(Path file, int count, int classes) throws IOException {
        Npy.Array a = Npy.read(file);
        float[] v = a.values();
        if (v.length != count) {
            throw new FileFormatException(file, "holds " + v.length + " labels for " + count + " samples");
        }
        int[] out = new int[count];
        for (int i = 0; i < count; i++) {
            if (!(v[i] >= 0 && v[i] < classes && v[i] == Math.rint(v[i]))) {
                String shown = v[i] == Math.rint(v[i]) && Math.abs(v[i]) < 0x1p62 ? Long.toString((long) v[i])
                        : Float.toString(v[i]);
                throw new FileFormatException(file, "label " + i + " = " + shown + " is not a class (0 .. "
                        + (classes - 1) + ")");
            }
            out[i] = (int) v[i];
        }
        return out;
    }

    /** {@code labels[i] = map[labels[i]]} in place (the model's classes to the data's, {@link #classMap}). */
    private static void remap(int[] labels, int[] map) {
        for (int i = 0; i < labels.length; i++) {
            labels[i] = map[labels[i]];
        }
    }

    /** How to evaluate against more held-out data than the {@code used} samples. */
    private static String moreHeldOut(DataLoading.Loaded loaded, int used) {
        int available = loaded.heldOut().size();
        if (used < available) {
            return "raise --reference (" + available + " held-out samples are available)";
        }
        return loaded.heldOutFrom().startsWith("split")
                ? "all " + available + " held-out samples are used: a run trained with a larger --held-out keeps more"
                : "all " + available + " samples of the data's test split are used";
    }

    /**
     * Loads the data and checks it against the run's fingerprint (when there is one). {@code runData}, the run's
     * data path when known, names what other data is compared with: data that cannot even be read the way the
     * run's was says so, naming both.
     */
    private static DataLoading.Loaded loadChecked(java.io.PrintWriter o, Path dataPath, int res, int ch, double frac,
                                                  long split, String runFingerprint, String labelColumn,
                                                  String runData) throws IOException {
        boolean other = runData != null && !realPath(dataPath).equals(realPath(Path.of(runData)));
        boolean runDataGone = runData != null && !Files.exists(Path.of(runData));
        String remedy = runDataGone ? "; the run's data, " + runData + ", is gone: give it (moved) with --data"
                : "; leave --data out to use the run's data, " + runData;
        if (!Files.exists(dataPath)) {
            throw new IllegalArgumentException("--data " + dataPath + ": no such file or folder"
                    + (other ? remedy : ""));
        }
        DataLoading.Loaded loaded;
        try {
            loaded = DataLoading.load(dataPath, res, ch, frac, split, labelColumn,
                    note -> o.println("note        " + DataLoading.printable(note)));
        } catch (IOException | IllegalArgumentException e) {
            if (!other) {
                throw e;
            }
            throw new IllegalArgumentException(dataPath + " cannot be read the way the run's data was: "
                    + e.getMessage() + remedy, e);
        }
        o.println("data        " + dataPath + ": " + loaded.describe());
        o.flush();
        if (runFingerprint != null && !runFingerprint.equals(loaded.fingerprint())) {
            throw new IllegalArgumentException("the data in " + dataPath + " is not the data the run trained on (now "
                    + loaded.fingerprint() + ", trained on " + runFingerprint + "); the held-out split would not "
                    + "be the one training left out" + (other ? remedy : "")
                    + (Files.isDirectory(dataPath) ? DataLoading.DECODING_HINT : ""));
        }
        return loaded;
    }

    /** The default {@code --out} of {@code --samples x.npy}: {@code x.eval.json} beside it. */
    static Path besideSamples(Path samples) {
        Path abs = samples.toAbsolutePath().normalize();
        String name = abs.getFileName().toString();
        String stem = name.toLowerCase(Locale.ROOT).endsWith(".npy") ? name.substring(0, name.length() - 4) : name;
        return abs.resolveSibling(stem + ".eval.json");
    }

    /** Where the report goes without {@code --out}: eval.json of the run folder it updates, else of the working one. */
    private static Path defaultJsonOut(RunFolder folder) {
        return (folder != null ? folder.root() : Path.of("")).resolve("eval.json").toAbsolutePath();
    }

    /** Refuses to replace a file that is not a report of this command (an unrelated eval.json in the folder). */
    static void refuseForeignJson(Path file) throws IOException {
        if (!Files.isRegularFile(file) || Files.size(file) == 0) {
            return;
        }
        try {
            MetricsReport.fromJson(Files.readString(file, StandardCharsets.UTF_8));
        } catch (RuntimeException | IOException e) {
            throw new IllegalArgumentException("--out: " + file + " exists and is not an eval report; refusing to "
                    + "overwrite it (delete it or give --out another name)");
        }
    }

    /** Puts the metrics in the run's run.json in place of an older eval's (under the run-folder lock). */
    private static void updateRun(RunFolder folder, MetricsReport report) throws IOException {
        {
            RunJson run = RunJson.read(folder.runJson());
            Map<String, Double> m = new LinkedHashMap<>(report.metrics());   // this eval's, not a mix with older ones
            String step = report.settings().get("checkpoint_step");   // which checkpoint the metrics describe
            RunJson.Results r = run.results();
            run.withResults(new RunJson.Results(r.steps(), r.wallSeconds(), r.trainSeconds(), r.finalLoss(),
                    r.imagesPerSecond(), r.msPerStep(), r.latestCheckpoint(), r.latestGrid(), m,
                    step == null ? null : Long.valueOf(step), r.heldOutLoss(), r.heldOutLossStep()))
                    .write(folder.runJson());
        }
    }

    /**
     * Refuses data options given explicitly with values that differ from the run's (the held-out split must be the
     * one training left out); moved data passes by its fingerprint.
     */
    private void refuseConflicts(RunJson.DataSource ro, String where, boolean fingerprinted) {
        CommandLine.ParseResult pr = spec.commandLine().getParseResult();
        if (data != null && ro.data() != null && !fingerprinted
                && !realPath(data).equals(realPath(Path.of(ro.data())))) {
            throw new IllegalArgumentException("--data " + data + " differs from the run's data" + where + ro.data()
                    + ", and run.json has no fingerprint to compare it with); leave --data out to use it");
        }
        if (pr.hasMatchedOption("--held-out") && heldOut != ro.heldOut()) {
            throw new IllegalArgumentException("--held-out " + heldOut + " differs from the run's" + where
                    + ro.heldOut() + "); leave it out");
        }
        if (pr.hasMatchedOption("--resolution") && resolution != ro.resolution()) {
            throw new IllegalArgumentException("--resolution " + resolution + " differs from the run's" + where
                    + ro.resolution() + "); leave it out");
        }
        if (pr.hasMatchedOption("--channels") && DataLoading.parseChannels(channels) != ro.channels()) {
            throw new IllegalArgumentException("--channels " + channels + " differs from the run's" + where
                    + (ro.channels() == 0 ? "auto" : ro.channels()) + "); leave it out");
        }
        if (labelColumn != null && !labelColumn.equals(ro.labelColumn())) {
            throw new IllegalArgumentException("--label-column " + labelColumn + " differs from the run's" + where
                    + (ro.labelColumn() == null ? "none" : ro.labelColumn()) + "); leave it out");
        }
        if (splitSeed != null && splitSeed != ro.seed()) {
            throw new IllegalArgumentException("--split-seed " + splitSeed + " differs from the run's seed" + where
                    + ro.seed() + "); leave it out");
        }
    }

    private static Path realPath(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        try {
            return abs.toRealPath();
        } catch (IOException e) {
            return abs;
        }
    }

    /** Up to {@code max} samples of {@code d} chosen by a Philox permutation (all of them, in order, if fewer). */
    static Dataset subset(Dataset d, int max, long seed, long which) {
        if (d.size() <= max) {
            return d;
        }
        int[] p = org.diffusion4j.io.PhiloxShuffle.permutation(d.size(), seed, SUBSET_STREAM + which);
        int[] idx = Arrays.copyOf(p, max);
        Arrays.sort(idx);
        return d.subset(idx);
    }

    private MetricsReport images(PrintWriter o, Backend be, DataLoading.Loaded loaded, Dataset held, Dataset trainRef,
                                 float[] raw, int count, int[] intended) {
        int dim = held.sampleSize();
        // scored as the images they are (a PNG, or any uint8 export, clips to the data's range), as FID tools score
        // uint8 images: a model's out-of-range pixels would otherwise move the features of images no one sees
        float[] generated = raw.clone();
        long clipped = 0;
        long far = 0;
        float min = Float.POSITIVE_INFINITY;
        for (int i = 0; i < generated.length; i++) {
            float v = generated[i];
            min = Math.min(min, v);
            if (v < -1f || v > 1f) {
                generated[i] = Math.max(-1f, Math.min(1f, v));
                clipped++;
                far += Math.abs(v) > 2f ? 1 : 0;
            }
        }
        String clipNote = String.format(Locale.ROOT, "samples clipped to the data's range [-1, 1], as their images "
                + "are: %.1f %% of the values were outside", 100.0 * clipped / Math.max(1, generated.length));
        // a model overshoots saturated pixels a little (that is what the clipping is for); another scale is far out
        if (far > 0.05 * generated.length) {
            o.println(String.format(Locale.ROOT, "warning     %.0f %% of the sample values lie beyond ±2: %s",
                    100.0 * far / generated.length, samplesFile == null
                    ? "the model overshoots the data's [-1, 1] (an eps- or v-model sampled with --threshold none? "
                    + "the default, auto, clips its x0 estimate at every step)"
                    : "samples of another scale (0..255 stored as floats?) need mapping to the data's [-1, 1] first"));
        } else if (min >= 0f && darkShare(held) > 0.1) {
            o.println("warning     no sample value is below 0 while the data's pixels reach -1: images in [0, 1]? "
                    + "map them to [-1, 1] (2x - 1) first");
        }
        if (count < 100) {
            o.println("warning     only " + count + " samples: the FD, kernel distance and precision/recall are mostly "
                    + "estimation noise at this size (compare with the real reference, measured at the same size)");
        }
        PointSet genPixels = PointSet.of("generated", generated, count, dim);
        PointSet heldPixels = PointSet.of("held-out", held.toArray(), held.size(), dim);
        Dataset nnTrain = subset(loaded.train(), 10_000, 0, 2);
        PointSet nnTrainPixels = PointSet.of("training", nnTrain.toArray(), nnTrain.size(), dim);
        Pairwise engine = Pairwise.auto(be);
        MetricsReport report;
        if (loaded.train().hasLabels() && loaded.train().numClasses() >= 2) {
            ClassifierFeatures.Config cc = ClassifierFeatures.Config.defaults();
            cc = new ClassifierFeatures.Config(cc.hidden(), cc.featureDim(), classifierEpochs, cc.batch(), cc.lr(),
                    cc.weightDecay(), cc.seed());
            Path cache = cacheDir != null ? cacheDir : ClassifierFeatures.defaultCacheDir();
            try (ClassifierFeatures clf = ClassifierFeatures.trainOrLoad(be, loaded.train(), cc, cache,
                    line -> {
                        o.println("classifier  " + line);
                        o.flush();
                    })) {
                int k = clf.numClasses();
                PointSet heldFeatures = clf.featureSet("held-out", held.toArray(), held.size());
                PointSet genFeatures = clf.featureSet("generated", generated, count);
                PointSet trainFeatures = clf.featureSet("training", trainRef.toArray(), trainRef.size());
                GaussianFit heldFit = GaussianFit.of(heldFeatures);
                double fd = FrechetDistance.between(GaussianFit.of(genFeatures), heldFit);
                double fdRef = FrechetDistance.between(GaussianFit.of(trainFeatures), heldFit);
                int[] predicted = clf.predict(generated, count);
                int[] heldPred = clf.predict(held.toArray(), held.size());
                LabelMetrics.Coverage cov = LabelMetrics.coverage(predicted, k, Math.max(1, count / (4 * k)));
                report = MetricsReport.of("images", count, held.size(), clf.featureDim())
                        .with("classifier_fd", fd)
                        .with("classifier_fd_real_reference", fdRef)
                        .withSetting("clipping", clipNote);
                report = withKernelDistance(report, genFeatures, trainFeatures, heldFeatures, engine);
                report = withPrecisionRecall(report, genFeatures, trainFeatures, heldFeatures, engine,
                        "the classifier's features");
                if (held.size() < 2 * clf.featureDim()) {
                    String w = "only " + held.size() + " held-out images for " + clf.featureDim() + "-dimensional "
                            + "features: the Fréchet distances are mostly estimation error (compare with the real "
                            + "reference); " + moreHeldOut(loaded, held.size());
                    o.println("warning     " + w);
                    report = report.withSetting("warning", w);
                }
                if (intended != null) {
                    report = report.with("classifier_accuracy", LabelMetrics.accuracy(predicted, intended));
                }
                double heldAccuracy = LabelMetrics.accuracy(heldPred, held.labels());
                if (heldAccuracy < WEAK_CLASSIFIER) {
                    String w = String.format(Locale.ROOT, "the feature classifier recognises only %.0f %% of held-out "
                            + "images (chance %.0f %%): every metric in its features (FD, kernel distance, precision, "
                            + "recall, density, coverage, class accuracy and coverage) says little; train it longer "
                            + "(--classifier-epochs, now %d) or on more data", 100 * heldAccuracy, 100.0 / k,
                            classifierEpochs);
                    o.println("warning     " + w);
                    report = report.withSetting("warning_classifier", w);
                }
                report = report.with("classifier_accuracy_held_out", heldAccuracy)
                        .with("class_coverage", cov.coverage())
                        .withSetting("classifier", "MLP " + held.sampleSize() + "-" + cc.hidden() + "-"
                                + cc.featureDim() + "-" + k + " (GELU), " + cc.epochs() + " epochs on the training "
                                + "split, features = penultimate layer; FD is a classifier-feature Frechet distance,"
                                + " not Inception FID; cache key " + clf.provenance().key().substring(0, 16))
                        .withSetting("class_coverage", "classes predicted for >= " + cov.minCount() + " samples; "
                                + "counts " + Arrays.toString(cov.counts()));
            }
        } else {
            String none = "none: the data has no class labels to train a feature classifier on, so no FD, kernel "
                    + "distance or precision/recall (only the memorisation ratio, in pixels)";
            o.println("note        classifier " + none);
            report = MetricsReport.of("images", count, held.size(), dim)
                    .withSetting("classifier", none)
                    .withSetting("clipping", clipNote);
        }
        NearestNeighbourRatio nn = NearestNeighbourRatio.compute(genPixels, nnTrainPixels, heldPixels, engine);
        return report.with("nn_ratio", nn.medianRatio())
                .withSetting("nn_ratio", "median nearest-training-image distance of the samples over that of "
                        + "held-out images (pixels, " + nnTrain.size() + " training images); ~1 novel, << 1 copying");
    }

    /** Philox streams of the equal-sized sets of precision and recall. */
    static final long PR_STREAM = SUBSET_STREAM + 16;

    /**
     * The kernel distance ({@link KernelDistance}: KID's unbiased estimator, cubic kernel, 100 subsets of up to
     * 1000) of the samples' features against the held-out features, with its standard deviation over subsets and
     * the same for the real training features.
     */
    private static MetricsReport withKernelDistance(MetricsReport r, PointSet gen, PointSet train, PointSet held,
                                                    Pairwise engine) {
        if (gen.size() < 2 || held.size() < 2 || train.size() < 2) {
            return r;
        }
        KernelDistance.Result kid = KernelDistance.compute(gen, held, engine, 0);
        KernelDistance.Result ref = KernelDistance.compute(train, held, engine, 0);
        return r.with("classifier_kid", kid.mean())
                .with("classifier_kid_std", kid.std())
                .with("classifier_kid_real_reference", ref.mean())
                .withSetting("classifier_kid", "kernel distance (KID's estimator: unbiased MMD^2, kernel (x.y/D + 1)^3) "
                        + "in the classifier's features, mean and std over " + kid.subsets() + " subset"
                        + (kid.subsets() == 1 ? "" : "s") + " of " + kid.subsetSize() + "; unbiased, so unlike the FD "
                        + "it does not grow as --n shrinks, and may be slightly negative");
    }

    /**
     * Precision, recall, density and coverage ({@link PrecisionRecall}) of the samples against the held-out set, and
     * of real training data against the same set, all three at one size (the smallest; each set a Philox-chosen
     * subset), since the k-NN balls shrink as a set grows.
     */
    private static MetricsReport withPrecisionRecall(MetricsReport r, PointSet gen, PointSet train, PointSet held,
                                                     Pairwise engine, String space) {
        int size = Math.min(gen.size(), Math.min(train.size(), held.size()));
        int kMax = Math.max(PrecisionRecall.DEFAULT_K_PRECISION_RECALL, PrecisionRecall.DEFAULT_K_DENSITY_COVERAGE);
        if (size <= kMax) {
            return r.withSetting("precision_recall", "not computed: " + size + " samples per set (the smallest of the "
                    + "samples, held-out and training sets), need more than " + kMax);
        }
        // up to PR_REPEATS disjoint held-out subsets: one outlying real point's ball can decide a single subset's
        // precision (a trial scored blank images 0 on one subset and 1 on another), so report the mean and spread
        int repeats = Math.max(1, Math.min(PR_REPEATS, held.size() / size));
        float[] heldRows = held.pick(repeats * size, 0, PR_STREAM).toArray();
        PointSet samples = gen.pick(size, 0, PR_STREAM + 1);
        int dim = held.dim();
        double[][] model = new double[4][repeats];
        double[][] real = new double[4][repeats];
        int kPr = PrecisionRecall.DEFAULT_K_PRECISION_RECALL;
        int kDc = PrecisionRecall.DEFAULT_K_DENSITY_COVERAGE;
        for (int q = 0; q < repeats; q++) {
            PointSet part = PointSet.of(held.name(), Arrays.copyOfRange(heldRows, q * size * dim,
                    (q + 1) * size * dim), size, dim);
            PrecisionRecall.Reference balls = PrecisionRecall.reference(part, kPr, kDc, engine);
            PrecisionRecall.Result pr = balls.compare(samples);
            PrecisionRecall.Result ref = balls.compare(train.pick(size, 0, PR_STREAM + 2 + q));
            double[] a = {pr.precision(), pr.recall(), pr.density(), pr.coverage()};
            double[] b = {ref.precision(), ref.recall(), ref.density(), ref.coverage()};
            for (int m = 0; m < 4; m++) {
                model[m][q] = a[m];
                real[m][q] = b[m];
            }
        }
        String[] names = {"precision", "recall", "density", "coverage"};
        for (int m = 0; m < 4; m++) {
            r = r.with(names[m], mean(model[m]));
        }
        if (repeats > 1) {
            for (int m = 0; m < 4; m++) {
                r = r.with(names[m] + "_std", std(model[m]));
            }
        }
        for (int m = 0; m < 4; m++) {
            r = r.with(names[m] + "_real_reference", mean(real[m]));
        }
        return r.withSetting("precision_recall", "k-NN manifolds in " + space + ", " + size + " samples against "
                + size + " held-out (equal sizes), mean" + (repeats > 1 ? " and std" : "") + " over " + repeats
                + " disjoint held-out subset" + (repeats > 1 ? "s" : "") + ": precision and recall with k = " + kPr
                + " (Kynkaanniemi et al. 2019), density and coverage with k = " + kDc + " (Naeem et al. 2020); low "
                + "precision: samples off the data, low recall or coverage: parts of the data never sampled");
    }

    /** The share of a dataset's values below -0.5 (dark pixels, for the [0, 1] warning). */
    private static double darkShare(Dataset d) {
        float[] v = d.toArray();
        long dark = 0;
        for (float x : v) {
            dark += x < -0.5f ? 1 : 0;
        }
        return (double) dark / Math.max(1, v.length);
    }

    /** Disjoint held-out subsets precision and recall are averaged over, at most. */
    static final int PR_REPEATS = 4;

    private static double mean(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x;
        }
        return s / v.length;
    }

    /** Population standard deviation. */
    private static double std(double[] v) {
        double m = mean(v);
        double s = 0;
        for (double x : v) {
            s += (x - m) * (x - m);
        }
        return Math.sqrt(s / v.length);
    }

    /** Held-out accuracy below which the image classifier's metrics are called unreliable. */
    static final double WEAK_CLASSIFIER = 0.75;

    private MetricsReport vectors(Backend be, DataLoading.Loaded loaded, Dataset held, Dataset trainRef,
                                  float[] generated, int count, int[] intended) {
        int dim = held.sampleSize();
        Pairwise engine = Pairwise.auto(be);
        PointSet gen = PointSet.of("generated", generated, count, dim);
        PointSet ref = PointSet.of("held-out", held.toArray(), held.size(), dim);
        MetricsReport r = VectorMetrics.evaluate(gen, ref, engine, 0);
        MetricsReport real = VectorMetrics.evaluate(PointSet.of("training", trainRef.toArray(), trainRef.size(), dim),
                ref, engine, 0);
        for (Map.Entry<String, Double> e : real.metrics().entrySet()) {
            if (!e.getKey().equals("mmd_bandwidth")) {
                r = r.with(e.getKey() + "_real_reference", e.getValue());
            }
        }
        r = r.withSetting("real_reference", trainRef.size() + " training samples against the same held-out set "
                + "(what a perfect model scores)");
        // k-NN balls in standardised units, so that no feature's scale decides the neighbours
        org.diffusion4j.io.Standardization z = org.diffusion4j.io.Standardization.fit(trainRef);
        float[] genZ = z.apply(Dataset.of(Arrays.copyOf(generated, count * dim), new long[] {dim}, null,
                java.util.List.of())).toArray();
        r = withPrecisionRecall(r, PointSet.of("generated", genZ, count, dim),
                PointSet.of("training", z.apply(trainRef).toArray(), trainRef.size(), dim),
                PointSet.of("held-out", z.apply(held).toArray(), held.size(), dim), engine,
                "standardised data (each feature by the training rows' mean and std)");
        return loaded.train().hasLabels() && loaded.train().numClasses() >= 2 && held.hasLabels()
                ? withNeighbourClasses(r, loaded.train(), held, generated, count, intended) : r;
    }

    /** Most training points the k-NN label metrics compare with (each query scans them all). */
    static final int KNN_REFERENCE = 20_000;

    /**
     * The label metrics of labelled vectors: a 5-NN classifier over (up to {@link #KNN_REFERENCE}) standardised
     * training points gives each sample a class; {@code knn_class_accuracy} is the fraction that has the class it
     * was drawn for (class-conditional models), {@code knn_class_accuracy_held_out} the same classifier's accuracy
     * on held-out data (what a perfect model scores), {@code class_coverage} the fraction of classes given to at
     * least a quarter of their share of the samples.
     */
    private static MetricsReport withNeighbourClasses(MetricsReport r, Dataset train, Dataset held, float[] generated,
                                                      int count, int[] intended) {
        int dim = held.sampleSize();
        int k = train.numClasses();
        Dataset ref = subset(train, KNN_REFERENCE, 0, 3);
        org.diffusion4j.io.Standardization z = org.diffusion4j.io.Standardization.fit(ref);
        float[] gen = z.apply(Dataset.of(Arrays.copyOf(generated, count * dim), new long[] {dim}, null,
                java.util.List.of())).toArray();
        NearestNeighbourClassifier knn = new NearestNeighbourClassifier(
                PointSet.of("training", z.apply(ref).toArray(), ref.size(), dim), ref.labels(), k,
                Math.min(5, ref.size()));
        int[] predicted = knn.predict(PointSet.of("generated", gen, count, dim));
        int[] heldPred = knn.predict(PointSet.of("held-out", z.apply(held).toArray(), held.size(), dim));
        LabelMetrics.Coverage cov = LabelMetrics.coverage(predicted, k, Math.max(1, count / (4 * k)));
        if (intended != null) {
            r = r.with("knn_class_accuracy", LabelMetrics.accuracy(predicted, intended));
        }
        double heldAccuracy = LabelMetrics.accuracy(heldPred, held.labels());
        if (heldAccuracy < WEAK_CLASSIFIER) {
            r = r.withSetting("warning_knn", String.format(Locale.ROOT, "a %d-NN classifier recognises only %.0f %% "
                    + "of held-out rows: the classes overlap in the data (or have few rows), and the samples' "
                    + "knn_class_accuracy is bounded by that", knn.k(), 100 * heldAccuracy));
        }
        return r.with("knn_class_accuracy_held_out", heldAccuracy)
                .with("class_coverage", cov.coverage())
                .withSetting("knn_class_accuracy", knn.k() + "-NN over " + ref.size() + " training samples, each "
                        + "feature standardised by their mean and std; the class of each sample against the class it "
                        + "was drawn for")
                .withSetting("class_coverage", "classes given to >= " + cov.minCount() + " samples; counts "
                        + Arrays.toString(cov.counts()));
    }
}
