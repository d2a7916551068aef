package org.diffusion4j.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Predicate;

import org.diffusion4j.io.Dataset;
import org.diffusion4j.io.FileFormatException;
import org.diffusion4j.nn.DenoiserModel;
import org.diffusion4j.nn.DiT;
import org.diffusion4j.nn.MlpDenoiser;
import org.diffusion4j.nn.Models;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.training.Checkpoint;
import org.diffusion4j.training.TrainingConfig;

/**
 * {@code train --init-from}: the weights a new run starts from instead of random ones (fine-tuning, or training on
 * with other settings than {@code --resume} allows). The file is a training checkpoint, an export, a run folder
 * (its latest checkpoint) or a foreign safetensors state dict under the reference DiT names.
 *
 * <p>A file with model metadata fixes the architecture: the new run takes the file's model kind and configuration
 * (an explicit {@code --model}, {@code --hidden}, {@code --depth}, {@code --heads}, {@code --patch} or
 * {@code --blocks} that differs is refused), and, unless given, its objective and noise schedule and, for an image
 * folder, its image size and channels. Only the class count may change: with another number of classes (or none)
 * the class embedder ({@code y_embedder.*}) is initialised afresh from the run's seed and the rest is loaded. A
 * file without model metadata is loaded into the model the options describe, matched by tensor names and shapes.
 * The optimizer moments, the EMA (started from the loaded weights), the learning-rate schedule and the step count
 * start fresh.
 */
final class InitWeights {

    private static final List<String> DIT_OPTIONS = List.of("--hidden", "--depth", "--heads", "--patch");
    private static final List<String> MLP_OPTIONS = List.of("--hidden", "--blocks");

    private final Path file;
    private final Checkpoint.Info info;
    private final Record config;          // the file's model configuration, or null (no model metadata)

    private InitWeights(Path file, Checkpoint.Info info, Record config) {
        this.file = file;
        this.info = info;
        this.config = config;
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
            throw new FileFormatException(file, "--init-from: " + e.problem(), e);
        }
        Record config = info.modelKind() == null ? null : Models.parseConfig(info.modelKind(), info.modelConfig());
        return new InitWeights(file, info, config);
    }

    /** The checkpoint file (resolved from a run folder), absolute. */
    Path file() {
        return file;
    }

    /**
     * The run's options with what the file fixes: the model kind and size, and (when not given) the objective,
     * schedule, grid sampler, image size and channels.
     *
     * @param explicit whether an option (by its name, e.g. {@code --hidden}) was given on the command line
     * @throws IllegalArgumentException when an explicit option conflicts with the file's architecture
     */
    RunJson.TrainOptions apply(RunJson.TrainOptions opts, Predicate<String> explicit, Consumer<String> note) {
        RunJson.TrainOptions o = opts.with("initFrom", file.toString());
        if (config == null) {
            note.accept("--init-from " + file + " has no model metadata (d4j.model.kind): the model is built from "
                    + "the options, and the file's tensors must match it by name and shape");
        } else {
            String kind = info.modelKind();
            if (explicit.test("--model") && !o.model().equals(TrainCommand.AUTO_MODEL) && !o.model().equals(kind)) {
                throw conflict("--model", o.model(), kind);
            }
            o = o.withModel(kind);
            if (config instanceof DiT.Config d) {
                int[] values = {d.hidden(), d.depth(), d.heads(), d.patch()};
                for (int i = 0; i < values.length; i++) {
                    o = fixed(o, DIT_OPTIONS.get(i), values[i], explicit);
                }
                if (!explicit.test("--resolution")) {
                    o = o.with("resolution", d.imageSize());
                }
                if (!explicit.test("--channels")) {
                    o = o.with("channels", d.channels());
                }
            } else if (config instanceof MlpDenoiser.Config m) {
                o = fixed(o, MLP_OPTIONS.get(0), m.hidden(), explicit);
                o = fixed(o, MLP_OPTIONS.get(1), m.blocks(), explicit);
            }
        }
        TrainingConfig trained = info.training();
        if (trained == null) {
            note.accept("--init-from " + file + " does not say which objective its weights were trained for: this "
                    + "run trains them for --objective " + o.objective() + " (schedule " + o.schedule() + ")");
        } else {
            String obj = objectiveName(trained.objective());
            if (!explicit.test("--objective")) {
                o = o.with("objective", obj);
                if (!explicit.test("--schedule")) {
                    o = o.with("schedule", trained.schedule());
                }
                if (!explicit.test("--sampler")) {
                    o = o.with("sampler", Sampling.defaultSampler(trained.objective().prediction()));
                }
            } else if (!TrainCommand.objective(o.objective()).equals(trained.objective())) {
                note.accept("the weights of --init-from were trained for --objective " + obj + "; this run trains "
                        + "them for " + o.objective() + " (the model's output changes meaning: expect a higher loss "
                        + "at first)");
            }
        }
        return o;
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

    static String objectiveName(TrainingConfig.Objective objective) {
        return switch (objective) {
            case FLOW -> "flow";
            case EPSILON -> "eps";
            case V -> "v";
            case X0 -> "x0";
        };
    }

    /**
     * The new run's model configuration: the file's with {@code numClasses} classes, or {@code fromOptions} for a
     * file without model metadata.
     *
     * @param fromOptions the configuration the options give (already validated against the data)
     * @throws IllegalArgumentException when the data's samples do not fit the file's model
     */
    Record modelConfig(Record fromOptions, int numClasses, double labelDropout, Dataset train, long[] imageShape,
                       String data) {
        if (config == null) {
            return fromOptions;
        }
        if (config instanceof DiT.Config d) {
            long[] want = {d.channels(), d.imageSize(), d.imageSize()};
            if (imageShape == null || !Arrays.equals(imageShape, want)) {
                throw new IllegalArgumentException("the weights of --init-from " + file + " are a DiT for "
                        + shape(want) + " images; " + data + " holds " + (imageShape == null ? "vectors "
                        + Arrays.toString(train.sampleShape()) : shape(imageShape) + " images (an image folder is "
                        + "resized to --resolution, " + d.imageSize() + " by default here, and read as --channels)"));
            }
        } else if (config instanceof MlpDenoiser.Config m && train.sampleSize() != m.dataDim()) {
            throw new IllegalArgumentException("the weights of --init-from " + file + " are an MLP for " + m.dataDim()
                    + " features; " + data + " gives " + train.sampleSize() + " per sample");
        }
        return Models.withClasses(config, numClasses, labelDropout);
    }

    private static String shape(long[] chw) {
        return chw[0] + " x " + chw[1] + " x " + chw[2];
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
        int fileClasses = config instanceof DiT.Config d ? d.numClasses()
                : config instanceof MlpDenoiser.Config m ? m.numClasses() : net.numClasses();
        boolean freshClasses = fileClasses != net.numClasses();
        boolean ema = Checkpoint.loadWeights(file, net, backend, Checkpoint.Weights.PREFER_EMA,
                freshClasses ? Set.of(Checkpoint.CLASS_EMBEDDER) : Set.of());
        List<String> fileNames = info.classNames();
        if (!freshClasses && net.numClasses() > 0 && !fileNames.isEmpty() && !dataClasses.isEmpty()
                && !fileNames.equals(dataClasses)) {
            note.accept("the class names differ from those of the weights (" + fileNames + " there, " + dataClasses
                    + " here): each class keeps the embedding of the same index");
        }
        StringBuilder b = new StringBuilder("weights of ").append(file);
        if (info.step() > 0) {
            b.append(String.format(Locale.ROOT, " (step %d)", info.step()));
        }
        if (ema) {
            b.append(", EMA averages");
        } else if (config != null) {
            b.append(", trained weights (the file has no EMA averages)");
        }
        if (freshClasses) {
            b.append(net.numClasses() == 0 ? "; its class embedding is left out (unconditional run)"
                    : fileClasses == 0 ? "; a new class embedding for " + net.numClasses() + " classes"
                    : "; a new class embedding (" + fileClasses + " classes there, " + net.numClasses() + " here)");
        }
        b.append("; optimizer, EMA and learning-rate schedule start fresh");
        return b.toString();
    }
}
