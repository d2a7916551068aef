package org.diffusion4j.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Predicate;

import org.diffusion4j.io.Dataset;
import org.diffusion4j.io.FileFormatException;
import org.diffusion4j.io.Safetensors;
import org.diffusion4j.io.SafetensorsHeader;
import org.diffusion4j.nn.DenoiserModel;
import org.diffusion4j.nn.DiT;
import org.diffusion4j.nn.MlpDenoiser;
import org.diffusion4j.nn.Models;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.training.Checkpoint;
import org.diffusion4j.training.CheckpointException;
import org.diffusion4j.training.TrainingConfig;

/**
 * {@code train --init-from}: the weights a new run starts from instead of random ones (fine-tuning, or training on
 * with other settings than {@code --resume} allows). The file is a training checkpoint, an export, a run folder
 * (its latest checkpoint) or a foreign safetensors state dict under the reference DiT names.
 *
 * <p>A file with model metadata fixes the architecture: the new run takes the file's model kind and configuration
 * (an explicit {@code --model}, {@code --hidden}, {@code --depth}, {@code --heads}, {@code --patch} or
 * {@code --blocks} that differs is refused), unless given its image size and channels, and unless given its
 * objective; with the file's objective also its schedule, time sampler and loss weight (each unless given). Only the
 * class count may change: with another number of classes (or none) the class embedder ({@code y_embedder.*}) is
 * initialised afresh from the run's seed and the rest is loaded; the label-dropout probability is free. A file
 * without model metadata is loaded into the model the options describe, matched by tensor names and shapes (its
 * class count read from its class-embedding table). The optimizer moments, the EMA (started from the loaded
 * weights), the learning-rate schedule and the step count start fresh.
 */
final class InitWeights {

    private static final String TABLE = Checkpoint.CLASS_EMBEDDER + "embedding_table.weight";

    private final Path file;
    private final Checkpoint.Info info;
    private final Record config;          // the file's model configuration, or null (no model metadata)
    private final List<String> inherited = new ArrayList<>();   // "objective eps", ... taken from the file
    private boolean sizeFromFile;         // the image size of an image folder came from the file
    private boolean channelsFromFile;     // the channels of an image folder came from the file
    private String provenance;            // set by load

    private InitWeights(Path file, Checkpoint.Info info, Record config) {
        this.file = file;
        this.info = info;
        this.config = config;
        this.provenance = file.toString();
    }

    /**
     * Reads the metadata of {@code arg} (a checkpoint file or a run folder).
     *
     * @throws IOException naming the file when it is missing or not a safetensors checkpoint
     */
    static InitWeights open(Path arg) throws IOException {
        Path file;
        try {
            file = RunFolder.resolveCheckpoint(arg).toAbsolutePath().normalize();
        } catch (java.nio.file.NoSuchFileException e) {
            throw new java.nio.file.NoSuchFileException(e.getFile(), null, "--init-from: " + e.getReason());
        }
        Checkpoint.Info info;
        try {
            info = Checkpoint.readInfo(file);
        } catch (FileFormatException e) {
            throw new FileFormatException(file, "--init-from: " + (e.problem().contains("not a safetensors")
                    ? "" : "not a safetensors file: ") + e.problem(), e);
        }
        Record config = info.modelKind() == null ? null : Models.parseConfig(info.modelKind(), info.modelConfig());
        if (config != null) {
            Checkpoint.requireWeightsFor(file, config);         // before the run builds a model of that size
        }
        return new InitWeights(file, info, config);
    }

    /** Where the file's model was trained ({@link Checkpoint#KEY_DATA_SOURCE}), or null when it does not say. */
    RunJson.DataSource dataSource() {
        String json = info.metadata().get(Checkpoint.KEY_DATA_SOURCE);
        try {
            return json == null ? null : RunJson.DataSource.fromJson(json);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /** The checkpoint file (resolved from a run folder), absolute. */
    Path file() {
        return file;
    }

    /**
     * The run's options with what the file fixes: the model kind and size; unless given, the image size and
     * channels, the objective and, with the file's objective, the schedule, time sampler, loss weight and the grid
     * sampler's default.
     *
     * @param explicit whether an option (by its name, e.g. {@code --hidden}) was given on the command line
     * @throws IllegalArgumentException when an explicit option conflicts with the file's architecture
     */
    RunJson.TrainOptions apply(RunJson.TrainOptions opts, Predicate<String> explicit, Consumer<String> note) {
        RunJson.TrainOptions o = opts.with("initFrom", file.toString());
        long[] imageShape = null;                           // [C, H, W] the file's model was trained on
        if (config == null) {
            note.accept("--init-from " + file + " has no model metadata (d4j.model.kind): the model is built from "
                    + "the options (--model, --hidden, --depth, --heads, --patch, --blocks), and the file's tensors "
                    + "must match it by name and shape");
        } else {
            String kind = info.modelKind();
            if (explicit.test("--model") && !o.model().equals(TrainCommand.AUTO_MODEL) && !o.model().equals(kind)) {
                throw conflict("--model", o.model(), kind);
            }
            o = o.withModel(kind);
            if (config instanceof DiT.Config d) {
                o = fixed(o, "--hidden", d.hidden(), explicit);
                o = fixed(o, "--depth", d.depth(), explicit);
                o = fixed(o, "--heads", d.heads(), explicit);
                o = fixed(o, "--patch", d.patch(), explicit);
                imageShape = new long[] {d.channels(), d.imageSize(), d.imageSize()};
            } else if (config instanceof MlpDenoiser.Config m) {
                o = fixed(o, "--hidden", m.hidden(), explicit);
                o = fixed(o, "--blocks", m.blocks(), explicit);
                imageShape = info.imageShape();             // an MLP trained on flattened images, or null
            }
        }
        if (imageShape != null && imageShape[1] == imageShape[2]) {
            if (!explicit.test("--resolution")) {
                o = o.with("resolution", (int) imageShape[1]);
                sizeFromFile = true;
            }
            if (!explicit.test("--channels")) {
                o = o.with("channels", (int) imageShape[0]);
                channelsFromFile = true;
            }
        }
        TrainingConfig trained = info.training();
        if (trained == null) {
            note.accept("--init-from " + file + " does not say which objective its weights were trained for: this "
                    + "run trains them for --objective " + o.objective() + " (schedule " + o.schedule() + ")");
            return o;
        }
        String obj = objectiveName(trained.objective());
        if (!explicit.test("--objective")) {
            o = o.with("objective", obj);
            inherited.add("objective " + obj);
            if (!explicit.test("--sampler")) {
                o = o.with("sampler", Sampling.defaultSampler(trained.objective().prediction()));
            }
        }
        if (TrainCommand.objective(o.objective()).equals(trained.objective())) {
            o = inherit(o, "--schedule", "schedule", trained.schedule(), explicit);
            o = inherit(o, "--time-sampler", "timeSampler", trained.timeSampler(), explicit);
            o = inherit(o, "--loss-weight", "lossWeight", trained.lossWeight(), explicit);
        } else {
            note.accept("the weights of --init-from were trained for --objective " + obj + "; this run trains "
                    + "them for " + o.objective() + " (the model's output changes meaning: expect a higher loss "
                    + "at first)");
        }
        return o;
    }

    private RunJson.TrainOptions inherit(RunJson.TrainOptions o, String option, String component, String value,
                                         Predicate<String> explicit) {
        if (explicit.test(option)) {
            return o;
        }
        inherited.add(option.substring(2).replace('-', ' ') + " " + value);
        return o.with(component, value);
    }

    private RunJson.TrainOptions fixed(RunJson.TrainOptions o, String option, int value, Predicate<String> explicit) {
        String component = option.substring(2);
        int given;
        try {
            given = (int) RunJson.TrainOptions.class.getMethod(component).invoke(o);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
        if (explicit.test(option) && given != value) {
            throw conflict(option, String.valueOf(given), String.valueOf(value));
        }
        return o.with(component, value);
    }

    private IllegalArgumentException conflict(String option, String given, String fileValue) {
        return new IllegalArgumentException(option + " " + given + " conflicts with the weights of --init-from "
                + file + " (" + option.substring(2) + " " + fileValue + "): the architecture comes from the file; "
                + "leave the option out");
    }

    /**
     * {@code e} with a note of the training settings this run took from the file, for errors those settings cause
     * (e.g. a schedule the explicitly given objective cannot use); {@code e} itself when none were taken.
     */
    IllegalArgumentException explain(IllegalArgumentException e) {
        if (inherited.isEmpty()) {
            return e;
        }
        return new IllegalArgumentException(e.getMessage() + " [this run took " + String.join(", ", inherited)
                + " from --init-from " + file + "; give the option to change it]", e);
    }

    static String objectiveName(TrainingConfig.Objective objective) {
        return switch (objective) {
            case FLOW -> "flow";
            case EPSILON -> "eps";
            case V -> "v";
            case X0 -> "x0";
        };
    }

    /**
     * Checks that the data's samples fit the file's model, before the options' own checks of the data (whose advice,
     * e.g. another {@code --patch}, the file does not allow), and notes an image folder read at the file's size.
     *
     * @param imageShape {@code [C, H, W]} of image data, or null for vectors
     * @param resolution the run's {@code --resolution} (given or taken from the file)
     * @throws IllegalArgumentException naming both shapes when the data does not fit
     */
    void checkData(Dataset train, long[] imageShape, String data, boolean imageFolder, int resolution,
                   Consumer<String> note) {
        String folderHint = imageFolder ? " (an image folder is resized to --resolution, " + resolution + " in this "
                + "run, and read as --channels)" : "";
        if (config instanceof DiT.Config d) {
            long[] want = {d.channels(), d.imageSize(), d.imageSize()};
            // another square size divisible by the patch is fine: only the fixed pos_embed depends on it
            boolean fits = imageShape != null && imageShape[0] == d.channels() && imageShape[1] == imageShape[2]
                    && imageShape[1] % d.patch() == 0;
            if (!fits) {
                throw new IllegalArgumentException("the weights of --init-from " + file + " are a DiT for "
                        + shape(want) + " images (patch " + d.patch() + "); " + data + " holds "
                        + (imageShape == null ? "vectors " + Arrays.toString(train.sampleShape())
                        : shape(imageShape) + " images" + folderHint)
                        + (imageShape == null ? "" : imageShape[0] != d.channels() ? ": the channel count is fixed by "
                        + "its patch embedding and final layer" : ": a DiT takes square images whose side the patch "
                        + "divides"));
            }
            if (imageShape[1] != d.imageSize()) {
                note.accept("the DiT of --init-from was trained on " + d.imageSize() + " x " + d.imageSize()
                        + " images; this run trains it on " + imageShape[1] + " x " + imageShape[2] + " ("
                        + (imageShape[1] / d.patch()) * (imageShape[2] / d.patch()) + " tokens instead of "
                        + (d.imageSize() / d.patch()) * (d.imageSize() / d.patch()) + "; every weight is kept, the fixed "
                        + "pos_embed is computed for the new grid)");
            }
        } else if (config instanceof MlpDenoiser.Config m) {
            long features = imageShape == null ? train.sampleSize() : imageShape[0] * imageShape[1] * imageShape[2];
            if (features != m.dataDim()) {
                long[] trainedOn = info.imageShape();
                throw new IllegalArgumentException("the weights of --init-from " + file + " are an MLP for "
                        + m.dataDim() + " features" + (trainedOn != null ? " (" + shape(trainedOn) + " images)" : "")
                        + "; " + data + " gives " + features + " per sample" + (imageShape != null ? folderHint : ""));
            }
        }
        if (imageFolder && (sizeFromFile || channelsFromFile) && imageShape != null) {
            String colour = (imageShape[0] == 1 ? "grey" : "RGB") + (channelsFromFile ? " (the --init-from model's "
                    + "channels: colour is " + (imageShape[0] == 1 ? "dropped" : "kept") + ")" : "");
            String size = imageShape[1] + " x " + imageShape[2] + (sizeFromFile ? " (the --init-from model's size"
                    + (config instanceof DiT.Config d ? "; --resolution, a multiple of the patch " + d.patch()
                    + ", overrides it)" : "; the MLP's input size fixes it)") : " (--resolution)");
            note.accept("the image folder is read at " + size + ", " + colour);
        }
    }

    /**
     * The new run's model configuration: the file's with {@code numClasses} classes, or {@code fromOptions} for a
     * file without model metadata.
     */
    Record modelConfig(Record fromOptions, int numClasses, double labelDropout) {
        if (config == null) {
            return fromOptions;
        }
        Record c = Models.withClasses(config, numClasses, labelDropout);
        if (c instanceof DiT.Config d && fromOptions instanceof DiT.Config o && o.imageSize() != d.imageSize()) {
            c = d.withImageSize(o.imageSize());             // the data's size (checkData allowed it)
        }
        return c;
    }

    private static String shape(long[] chw) {
        return chw[0] + " x " + chw[1] + " x " + chw[2];
    }

    /** Whether {@code data} is a folder of images (a folder without IDX files). */
    static boolean isImageFolder(Path data) throws IOException {
        if (!Files.isDirectory(data)) {
            return false;
        }
        try (var files = Files.list(data)) {
            return files.noneMatch(f -> f.getFileName().toString().contains("idx3-ubyte"));
        }
    }

    /**
     * Loads the file's weights (EMA averages when it has them) into {@code net}; a class embedder whose class count
     * differs from the file's keeps its fresh initialisation.
     *
     * @param dataClasses the class names of the run's data (for a note when they differ from the file's)
     * @return a one-line description for the run's output
     * @throws IOException see {@link Checkpoint#loadWeights(Path, DenoiserModel, Backend, Checkpoint.Weights, Set)}
     */
    String load(DenoiserModel net, Backend backend, List<String> dataClasses, Consumer<String> note)
            throws IOException {
        int fileClasses = config != null ? Models.numClasses(config) : classesInTable();
        boolean freshClasses = fileClasses != net.numClasses();
        boolean newSize = config instanceof DiT.Config d && Models.configOf(net) instanceof DiT.Config m
                && d.imageSize() != m.imageSize();
        Set<String> keep = new java.util.HashSet<>();
        if (freshClasses) {
            keep.add(Checkpoint.CLASS_EMBEDDER);
        }
        if (newSize) {
            keep.add(Checkpoint.POS_EMBED);
        }
        boolean ema;
        try {
            ema = Checkpoint.loadWeights(file, net, backend, Checkpoint.Weights.PREFER_EMA, keep);
        } catch (CheckpointException e) {
            if (config != null) {
                throw e;
            }
            String prefix = file + ": ";
            String problem = e.getMessage().startsWith(prefix) ? e.getMessage().substring(prefix.length())
                    : e.getMessage();
            throw new CheckpointException(file, problem + " [a file without model metadata must match the model the "
                    + "options describe: " + Models.toJson(Models.configOf(net)) + "; give its --hidden, --depth, "
                    + "--heads, --patch or --blocks]", e);
        }
        List<String> fileNames = info.classNames();
        if (!freshClasses && net.numClasses() > 0 && !fileNames.isEmpty() && !dataClasses.isEmpty()
                && !fileNames.equals(dataClasses)) {
            note.accept("the class names differ from those of the weights (" + fileNames + " there, " + dataClasses
                    + " here): each class keeps the embedding of the same index");
        }
        StringBuilder b = new StringBuilder();
        if (info.step() > 0) {
            b.append(String.format(Locale.ROOT, "step %d, ", info.step()));
        }
        if (ema) {
            b.append("EMA averages");
        } else {
            b.append(config != null ? "trained weights (the file has no EMA averages)" : "its weights");
        }
        if (freshClasses) {
            b.append(net.numClasses() == 0 ? "; its class embedding left out (unconditional run)"
                    : fileClasses == 0 ? "; a new class embedding for " + net.numClasses() + " classes"
                    : "; a new class embedding (" + fileClasses + " classes there, " + net.numClasses() + " here)");
        }
        provenance = file + " (" + b + ")";
        return "weights of " + provenance + "; optimizer, EMA and learning-rate schedule start fresh";
    }

    /** The file and what was taken from it (after {@link #load}: its step, which weights, the class embedding). */
    String provenance() {
        return provenance;
    }

    /** The class count of a file without model metadata: its class-embedding table's rows − 1 (0 without one). */
    private int classesInTable() throws IOException {
        SafetensorsHeader header = Safetensors.readHeader(file);
        for (SafetensorsHeader.Entry e : header.entries()) {
            if ((e.name().equals(TABLE) || e.name().equals(Checkpoint.EMA_PREFIX + TABLE)) && e.shape().length == 2
                    && e.shape()[0] >= 1) {
                return (int) Math.min(Integer.MAX_VALUE, e.shape()[0] - 1);
            }
        }
        return 0;
    }
}
