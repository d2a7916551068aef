package org.diffusion4j.cli;

import org.diffusion4j.nn.DenoiserModel;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.TensorScope;
import org.diffusion4j.training.Checkpoint;
import org.diffusion4j.training.CheckpointException;
import org.diffusion4j.training.TrainingConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * A model loaded from a checkpoint for {@code sample} and {@code eval}: the backend and ops it runs on, the model
 * (EMA weights when the file has them, unless asked otherwise), its training configuration (for the prediction type
 * and noise schedule) and, when the checkpoint lies in a run folder, that run's {@code run.json} (for the image
 * shape of a flattened MLP and for the dataset).
 */
final class ModelSession implements AutoCloseable {

    final Path file;
    final Backend backend;
    final NnOps ops;
    final AttentionOps attention;
    final TensorScope scope;
    final Checkpoint.Loaded loaded;
    final RunFolder runFolder;
    final RunJson run;

    private ModelSession(Path file, Backend backend, NnOps ops, AttentionOps attention, TensorScope scope,
                         Checkpoint.Loaded loaded, RunFolder runFolder, RunJson run) {
        this.file = file;
        this.backend = backend;
        this.ops = ops;
        this.attention = attention;
        this.scope = scope;
        this.loaded = loaded;
        this.runFolder = runFolder;
        this.run = run;
    }

    /**
     * Opens {@code checkpointArg} (a checkpoint file or a run folder).
     *
     * @param runtime --backend (the backend to load on) and --threads (applied before creating it)
     * @param weights {@code ema}, {@code raw} or {@code auto} (EMA when present)
     * @throws IOException naming the file when it is missing, malformed or not a training checkpoint
     */
    static ModelSession open(Path checkpointArg, RuntimeOptions runtime, String weights)
            throws IOException {
        Path file = RunFolder.resolveCheckpoint(checkpointArg);
        Checkpoint.Weights which = switch (weights.trim().toLowerCase(Locale.ROOT)) {
            case "auto" -> Checkpoint.Weights.PREFER_EMA;
            case "ema" -> Checkpoint.Weights.EMA;
            case "raw" -> Checkpoint.Weights.RAW;
            default -> throw new IllegalArgumentException("--weights must be auto, ema or raw, got '" + weights + "'");
        };
        Checkpoint.Info info;
        try {
            info = Checkpoint.readInfo(file);
        } catch (org.diffusion4j.io.FileFormatException e) {
            throw new org.diffusion4j.io.FileFormatException(file, (e.problem().contains("not a safetensors")
                    ? "" : "not a safetensors file: ") + e.problem(), e);
        }
        if (info.training() == null) {
            throw new CheckpointException(file, "has no training configuration (d4j.training.config), so its "
                    + "objective and noise schedule are unknown; sample from a checkpoint written by train");
        }
        runtime.applyThreads();
        RunFolder folder = RunFolder.ofCheckpoint(file);
        RunJson run = folder == null ? null : RunJson.read(folder.runJson());
        Backend be = RuntimeOptions.createBackend(runtime.backend);
        NnOps ops = null;
        AttentionOps att = null;
        TensorScope scope = null;
        try {
            ops = NnOps.forBackend(be);
            att = AttentionOps.forBackend(be);
            scope = TensorScope.open();
            Checkpoint.Loaded loaded;
            try {
                loaded = Checkpoint.loadModel(file, ops, att, scope, which);
            } catch (ArithmeticException e) {
                throw new CheckpointException(file, "its model configuration " + info.modelConfig()
                        + " has sizes too large to allocate (" + e.getMessage() + ")", e);
            }
            if (which == Checkpoint.Weights.RAW && loaded.emaUsed()) {
                throw new CheckpointException(file, "holds only EMA weights (an export of them, d4j.weights = ema): "
                        + "--weights raw cannot be had from it; use --weights auto or ema");
            }
            java.util.List<String> names = loaded.info().classNames();
            if (!names.isEmpty() && names.size() != loaded.model().numClasses()) {
                throw new CheckpointException(file, "metadata " + Checkpoint.KEY_CLASS_NAMES + " has " + names.size()
                        + " names for a model of " + loaded.model().numClasses() + " classes");
            }
            return new ModelSession(file, be, ops, att, scope, loaded, folder, run);
        } catch (IOException | RuntimeException e) {
            if (scope != null) {
                scope.close();
            }
            if (att != null) {
                att.close();
            }
            if (ops != null) {
                ops.close();
            }
            be.close();
            throw e;
        }
    }

    DenoiserModel model() {
        return loaded.model();
    }

    /** The checkpoint's metadata. */
    java.util.Map<String, String> metadata() {
        return loaded.info().metadata();
    }

    TrainingConfig training() {
        return loaded.info().training();
    }

    Prediction prediction() {
        return training().objective().prediction();
    }

    /**
     * The per-feature standardisation the model was trained on (vector data), or null.
     *
     * @throws IllegalStateException when the metadata's feature count does not fit the model's samples
     */
    org.diffusion4j.io.Standardization standardization() {
        org.diffusion4j.io.Standardization st = loaded.info().standardization();
        long features = org.diffusion4j.tensor.Shape.numel(model().sampleShape());
        if (st != null && st.features() != features) {
            throw new IllegalStateException(file + ": metadata " + Checkpoint.KEY_DATA_STANDARDIZATION + " has "
                    + st.features() + " features, the model's samples " + features);
        }
        return st;
    }

    /**
     * The image shape {@code [C, H, W]} of the samples, or null for vectors: the model's own shape when it has rank
     * 3, else (a flattened MLP) the checkpoint's {@link Checkpoint#KEY_DATA_IMAGE_SHAPE} or the run's data shape when
     * that is an image of as many values.
     */
    long[] imageShape() {
        long[] s = model().sampleShape();
        if (s.length == 3) {
            return s;
        }
        long[] stored = loaded.info().imageShape();
        if (stored != null && s.length == 1 && stored[0] * stored[1] * stored[2] == s[0]) {
            return stored;
        }
        if (run != null && run.data() != null && run.data().sampleShape() != null
                && run.data().sampleShape().length == 3) {
            long[] img = run.data().sampleShape();
            if (img[0] * img[1] * img[2] == s[0]) {
                return img;
            }
        }
        return null;
    }

    /**
     * The names of the model's classes: the checkpoint's {@link Checkpoint#KEY_CLASS_NAMES} (checked against the
     * model's class count when the session opens), else (checkpoints written before it) the run's {@code run.json}
     * when it has one name per class; else an empty list.
     */
    java.util.List<String> classNames() {
        int k = model().numClasses();
        java.util.List<String> names = loaded.info().classNames();
        if (!names.isEmpty()) {
            return names;
        }
        if (run != null && run.data() != null && run.data().classNames() != null
                && run.data().classNames().size() == k && k > 0) {
            return run.data().classNames();
        }
        return java.util.List.of();
    }

    /** The names of the vector features (the CSV header), when the checkpoint has one per coordinate; else empty. */
    java.util.List<String> featureNames() {
        java.util.List<String> f = loaded.info().featureNames();
        return f.size() == org.diffusion4j.tensor.Shape.numel(model().sampleShape()) ? f : java.util.List.of();
    }

    /**
     * The class {@code spec} names: {@code index:N}, {@code name:NAME}, or a bare value — a class name (exactly, then
     * in NFC form without surrounding spaces, then ignoring case when that matches one class) or a 0-based index.
     * A bare integer that is a valid index and also the name of another class is refused as ambiguous (image
     * folders {@code 0 … 11} sort as {@code 0, 1, 10, 11, 2, …}: {@code 2} is index 2 and the name of class 4).
     *
     * @throws IllegalArgumentException naming the spec and the classes when it matches none, several, or is
     *                                  ambiguous
     */
    int classIndex(String spec) {
        return classIndex(spec, model().numClasses(), classNames());
    }

    /** {@link #classIndex(String)} for a model of {@code k} classes named {@code names} (empty: no names). */
    static int classIndex(String spec, int k, java.util.List<String> names) {
        if (k == 0) {
            throw new IllegalArgumentException("--class needs a class-conditional model; this one is unconditional");
        }
        if (spec.startsWith("index:")) {
            return index(spec, spec.substring("index:".length()), k, names);
        }
        if (spec.startsWith("name:")) {
            int c = byName(spec.substring("name:".length()), names);
            if (c < 0) {
                throw new IllegalArgumentException("--class '" + spec + "' is not a class name" + (names.isEmpty()
                        ? ": this model's classes have no names" : namesNote(names)));
            }
            return c;
        }
        int named = byName(spec, names);
        boolean integer = spec.strip().matches("\\+?\\d{1,9}");
        if (named >= 0 && integer) {
            int i = Integer.parseInt(spec.strip());
            if (i < k && i != named) {
                throw new IllegalArgumentException("--class " + spec.strip() + " is ambiguous: class " + i + " is named '"
                        + names.get(i) + "' and '" + spec.strip() + "' is the name of class " + named + "; write --class "
                        + "index:" + i + " or --class name:" + spec.strip());
            }
        }
        if (named >= 0) {
            return named;
        }
        if (integer) {
            return index(spec, spec, k, names);
        }
        throw new IllegalArgumentException(names.isEmpty()
                ? "--class '" + spec + "': this model's classes have no names (give an index in [0, " + k + "))"
                : "--class '" + spec + "' is not a class name" + namesNote(names));
    }

    private static int index(String spec, String digits, int k, java.util.List<String> names) {
        String d = digits.strip();
        if (!d.matches("\\+?\\d{1,9}")) {
            throw new IllegalArgumentException("--class '" + spec + "': not a 0-based class index");
        }
        int c = Integer.parseInt(d);
        if (c >= k) {
            throw new IllegalArgumentException("--class " + c + " is outside [0, " + k + ")" + namesNote(names));
        }
        return c;
    }

    /** The class named {@code s}: exactly, else in normal form, else ignoring case (when unique); -1 if none. */
    private static int byName(String s, java.util.List<String> names) {
        int exact = names.indexOf(s);
        if (exact >= 0) {
            return exact;
        }
        String n = org.diffusion4j.io.Csv.normaliseLabel(s);
        int found = -1;
        for (int pass = 0; pass < 2 && found < 0; pass++) {
            for (int c = 0; c < names.size(); c++) {
                String m = org.diffusion4j.io.Csv.normaliseLabel(names.get(c));
                if (pass == 0 ? m.equals(n) : m.equalsIgnoreCase(n)) {
                    if (found >= 0) {
                        throw new IllegalArgumentException("--class '" + s + "' is ambiguous"
                                + (pass == 0 ? "" : " ignoring case") + namesNote(names));
                    }
                    found = c;
                }
            }
        }
        return found;
    }

    private static String namesNote(java.util.List<String> names) {
        return names.isEmpty() ? "" : " (classes: " + DataLoading.listNames(names, 20, true) + ")";
    }


    /**
     * Where the model's data came from: the run's run.json in a run folder, else the checkpoint's
     * {@link Checkpoint#KEY_DATA_SOURCE}; null when neither says.
     *
     * @throws IllegalArgumentException naming the file when the metadata is malformed
     */
    RunJson.DataSource dataSource() {
        RunJson.DataSource runs = runDataSource();
        RunJson.DataSource own = ownDataSource();
        if (own == null) {
            return runs;
        }
        if (runs != null && runs.sameSplit(own)) {
            return runs;                                       // the run's path: data moved with --resume --data
        }
        return own;                                            // what this checkpoint trained on
    }

    /**
     * Whether this checkpoint lies in a run folder whose run.json describes other data or another split than the
     * checkpoint's own {@link Checkpoint#KEY_DATA_SOURCE} (a file copied in from another run).
     */
    boolean foreignToRun() {
        RunJson.DataSource own = ownDataSource();
        RunJson.DataSource runs = runDataSource();
        return own != null && runs != null && !runs.sameSplit(own);
    }

    /** The run folder's data source (run.json), or null outside a run folder. */
    private RunJson.DataSource runDataSource() {
        return run == null || run.options() == null ? null
                : RunJson.DataSource.of(run.options(), run.data() == null ? null : run.data().fingerprint());
    }

    /** The checkpoint's own data source, or null (absent, or malformed: then a warning, and it is not used). */
    private RunJson.DataSource ownDataSource() {
        String json = loaded.info().metadata().get(Checkpoint.KEY_DATA_SOURCE);
        if (json == null) {
            return null;
        }
        try {
            return RunJson.DataSource.fromJson(json);
        } catch (IllegalArgumentException e) {
            if (!warnedSource) {
                warnedSource = true;
                System.err.println("warning: " + file + ": metadata " + Checkpoint.KEY_DATA_SOURCE + " is not used ("
                        + DataLoading.printable(e.getMessage()) + ")");
            }
            return null;
        }
    }

    private boolean warnedSource;

    /** The run's dataset path, or null. */
    Path runData() {
        return run == null || run.options() == null || run.options().data() == null ? null
                : Path.of(run.options().data());
    }

    /** A one-line description. */
    String describe() {
        return String.format(Locale.ROOT, "%s %s, step %d, %s weights, objective %s", loaded.info().modelKind(),
                loaded.info().modelConfig(), loaded.info().step(), loaded.emaUsed() ? "EMA" : "raw",
                training().objective());
    }

    static boolean exists(Path p) {
        return p != null && Files.exists(p);
    }

    @Override
    public void close() {
        scope.close();
        attention.close();
        ops.close();
        backend.close();
    }
}
