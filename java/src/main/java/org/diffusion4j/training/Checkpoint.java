package org.diffusion4j.training;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;

import org.diffusion4j.io.Safetensors;
import org.diffusion4j.io.SafetensorsDType;
import org.diffusion4j.io.SafetensorsFile;
import org.diffusion4j.io.SafetensorsHeader;
import org.diffusion4j.nn.DenoiserModel;
import org.diffusion4j.nn.DiT;
import org.diffusion4j.nn.Models;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.Parameter;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.optim.AdamW;
import org.diffusion4j.optim.Ema;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;

/**
 * Training checkpoints in the <b>safetensors</b> format ({@link Safetensors}; written atomically: temporary file,
 * fsync, rename — a failed save leaves any previous file intact).
 *
 * <h2>Layout</h2>
 * <pre>
 *   NAME              model parameters and buffers under their state-dict names ({@code Module#stateDict()}),
 *                     F32, PyTorch's layout: {@code torch.nn.Module.load_state_dict} takes them after dropping
 *                     the prefixed entries below (or use {@link #exportWeights}, which writes only these)
 *   ema.NAME          EMA average of parameter NAME (when the run has an EMA)
 *   optim.m.NAME      AdamW first moment of parameter NAME
 *   optim.v.NAME      AdamW second moment of parameter NAME
 *   __metadata__      d4j.format            format version ({@value #FORMAT_VERSION})
 *                     d4j.model.kind        {@link Models} kind, e.g. "mlp" (built-in models only)
 *                     d4j.model.config      the model's configuration record as JSON (built-in models only)
 *                     d4j.model.class       the model's Java class (informative; any DenoiserModel)
 *                     d4j.weights           "raw" or "ema": what an {@link #exportWeights export} holds
 *                     d4j.data.standardization  per-feature mean and scale of vector data (the CLI's)
 *                     d4j.data.class_names  JSON array, the name of each class (from the dataset, or the caller's)
 *                     d4j.data.feature_names  JSON array, the name of each vector coordinate (the CLI's, from a CSV
 *                                           header)
 *                     d4j.data.image_shape  JSON array [C, H, W] of a model trained on flattened images (the CLI's)
 *                     d4j.data.source       JSON: the data's path, fingerprint and split (the CLI's)
 *                     d4j.training.config   the {@link TrainingConfig} as JSON
 *                     d4j.step              completed steps (also the position of every random stream: the
 *                                           trainer's draws are functions of (seed, step))
 *                     d4j.seed              the run's seed
 *                     d4j.optim.steps       AdamW's step counter (bias correction)
 *                     d4j.ema.updates       the EMA's update counter (warm-up)
 * </pre>
 *
 * <p>Any {@link DenoiserModel} can be saved, restored and exported, the user's own included: for a model that is not
 * one of {@link Models}' kinds the file has no kind and configuration (the caller builds the model, then
 * {@link #restore} or {@link #loadWeights}; every tensor's name and shape is still checked).
 *
 * <h2>Loading</h2>
 * The file is memory-mapped ({@link Safetensors#read}, zero-copy on the CPU backend) into a temporary scope and
 * every tensor is <b>copied</b> into the tensors that already exist (the model's parameters and buffers in the
 * model's scope, the optimizer's moments and the EMA's averages in theirs); the mapping is released when the load
 * returns, so the model never depends on the file (it may be overwritten by the next save). Before anything is
 * copied, every name, shape and dtype and the metadata are checked; a problem is a {@link CheckpointException}
 * naming the file and the tensor or key (missing tensor, unexpected tensor, shape mismatch, dtype other than F32,
 * missing or malformed metadata, a model or run that does not match), and the target is then left unchanged. A
 * file that breaks the safetensors format itself is a {@code SafetensorsFormatException}.
 *
 * <h2>Resuming and sampling</h2>
 * <pre>{@code
 * Checkpoint.Info info = Checkpoint.readInfo(file);                       // header only
 * DenoiserModel model = Models.create(info.modelKind(), info.modelConfig(), ops, attention, scope, 0);
 * try (Trainer trainer = new Trainer(model, ops, data, info.training())) {
 *     trainer.restore(file);                                              // weights, moments, EMA, step
 *     trainer.train(info.training().totalSteps() - trainer.completedSteps());
 * }
 * Checkpoint.Loaded l = Checkpoint.loadModel(file, ops, attention, scope, Checkpoint.Weights.PREFER_EMA);
 * }</pre>
 */
public final class Checkpoint {

    /** The format version this class writes and reads. */
    public static final String FORMAT_VERSION = "1";

    /** Metadata key of the format version. */
    public static final String KEY_FORMAT = "d4j.format";
    /** Metadata key of the model kind. */
    public static final String KEY_MODEL_KIND = "d4j.model.kind";
    /** Metadata key of the model configuration JSON. */
    public static final String KEY_MODEL_CONFIG = "d4j.model.config";
    /** Metadata key of the training configuration JSON. */
    public static final String KEY_TRAINING_CONFIG = "d4j.training.config";
    /** Metadata key: the Java class of the model (informative). */
    public static final String KEY_MODEL_CLASS = "d4j.model.class";
    /**
     * Metadata key of the per-feature standardisation the model was trained on
     * ({@link org.diffusion4j.io.Standardization#toJson()}; written by the CLI for vector data): samples are mapped
     * back with it.
     */
    public static final String KEY_DATA_STANDARDIZATION = "d4j.data.standardization";
    /**
     * Metadata key of the class names of a class-conditional model's labels, a JSON array of strings (class
     * {@code k} is element {@code k}; written by the CLI when its data names the classes): {@code sample --class}
     * accepts them.
     */
    public static final String KEY_CLASS_NAMES = "d4j.data.class_names";
    /**
     * Metadata key of where the training data came from and how it was split (the CLI's JSON: path, fingerprint,
     * held-out fraction, split seed, label column, resolution, channels): {@code eval} of a checkpoint outside its run
     * folder scores it against the same held-out part.
     */
    public static final String KEY_DATA_SOURCE = "d4j.data.source";
    /**
     * Metadata key of the names of the vector features (a JSON array of strings, one per coordinate; written by the
     * CLI for a CSV with a header): plots label their axes with them.
     */
    public static final String KEY_DATA_FEATURE_NAMES = "d4j.data.feature_names";
    /**
     * Metadata key of the image shape {@code [C, H, W]} (a JSON array) of a model trained on flattened images (an MLP
     * on images; written by the CLI): samples are drawn as images of that shape.
     */
    public static final String KEY_DATA_IMAGE_SHAPE = "d4j.data.image_shape";
    /**
     * Metadata key of where a fine-tuned run's starting weights came from (written by the CLI's
     * {@code train --init-from}: the path of that file); provenance only, nothing reads it back.
     */
    public static final String KEY_INIT_FROM = "d4j.init_from";
    /** Metadata key of an export: {@code "ema"} when its weights are EMA averages, else {@code "raw"}. */
    public static final String KEY_WEIGHTS = "d4j.weights";
    /** Metadata key of the completed steps. */
    public static final String KEY_STEP = "d4j.step";
    /** Metadata key of the seed. */
    public static final String KEY_SEED = "d4j.seed";
    /** Metadata key of AdamW's step counter. */
    public static final String KEY_OPTIM_STEPS = "d4j.optim.steps";
    /** Metadata key of the EMA's update counter. */
    public static final String KEY_EMA_UPDATES = "d4j.ema.updates";

    /** Prefix of the EMA averages. */
    public static final String EMA_PREFIX = "ema.";
    /** Prefix of AdamW's first moments. */
    public static final String M_PREFIX = "optim.m.";
    /** Prefix of AdamW's second moments. */
    public static final String V_PREFIX = "optim.v.";

    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .enable(DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    private Checkpoint() {
    }

    /**
     * What a checkpoint's metadata says.
     *
     * @param modelKind      {@link Models} kind, or null when the file has none (e.g. a file written by PyTorch)
     * @param modelConfig    the model configuration JSON, or null
     * @param training       the training configuration, or null for a weights-only file
     * @param step           completed steps (0 when absent)
     * @param seed           the run's seed (0 when absent)
     * @param optimSteps     AdamW's step counter (0 when absent)
     * @param emaUpdates     EMA update counter (0 when absent)
     * @param hasEma         whether the file holds {@code ema.*} tensors
     * @param hasOptimizer   whether the file holds {@code optim.*} tensors
     * @param metadata       all metadata strings
     */
    public record Info(String modelKind, String modelConfig, TrainingConfig training, long step, long seed,
                       long optimSteps, long emaUpdates, boolean hasEma, boolean hasOptimizer,
                       Map<String, String> metadata) {

        /** Copies the map. */
        public Info {
            metadata = Map.copyOf(metadata);
        }

        /**
         * The class names of {@value #KEY_CLASS_NAMES} (class {@code k} is element {@code k}), or an empty list when
         * the file has none. {@link #readInfo} has checked them (a JSON array of distinct non-empty strings).
         */
        public List<String> classNames() {
            String json = metadata.get(KEY_CLASS_NAMES);
            return json == null ? List.of() : parseClassNames(json);
        }

        /**
         * The feature names of {@value #KEY_DATA_FEATURE_NAMES}, or an empty list when the file has none.
         * {@link #readInfo} has checked them (a JSON array of strings).
         */
        public List<String> featureNames() {
            String json = metadata.get(KEY_DATA_FEATURE_NAMES);
            return json == null ? List.of() : parseStrings(json);
        }

        /**
         * The per-feature standardisation of {@value #KEY_DATA_STANDARDIZATION} (samples are mapped back with
         * {@link org.diffusion4j.io.Standardization#invert}), or null when the file has none. {@link #readInfo} has
         * checked it.
         */
        public org.diffusion4j.io.Standardization standardization() {
            String json = metadata.get(KEY_DATA_STANDARDIZATION);
            return json == null ? null : org.diffusion4j.io.Standardization.fromJson(json);
        }

        /**
         * The image shape {@code [C, H, W]} of {@value #KEY_DATA_IMAGE_SHAPE} (a model trained on flattened images),
         * or null when the file has none. {@link #readInfo} has checked it ({@code C} 1 or 3, positive sizes).
         */
        public long[] imageShape() {
            String json = metadata.get(KEY_DATA_IMAGE_SHAPE);
            return json == null ? null : parseImageShape(json);
        }
    }

    /**
     * The name prefix of the class embedder of the built-in models ({@code y_embedder.}, as in the reference DiT), for
     * {@link #loadWeights(Path, DenoiserModel, Backend, Weights, Set)}.
     */
    public static final String CLASS_EMBEDDER = "y_embedder.";

    /**
     * The name of the DiT's fixed position embedding ({@code pos_embed}, a buffer computed from the token grid), for
     * {@link #loadWeights(Path, DenoiserModel, Backend, Weights, Set)}: kept as the model computed it, a DiT of another
     * image size (same patch, channels and width) takes the file's other weights.
     */
    public static final String POS_EMBED = "pos_embed";

    /** Which weights a weights-only load takes. */
    public enum Weights {
        /**
         * The plain state-dict names: the trained parameters of a training checkpoint (of an export of EMA averages,
         * those averages: {@link #loadWeights} then returns true).
         */
        RAW,
        /** The EMA averages: the file's {@code ema.*} tensors, or the plain names of an export of EMA averages. */
        EMA,
        /** The EMA averages when the file has them, else the trained parameters. */
        PREFER_EMA
    }

    /**
     * A model built from a checkpoint: {@code emaUsed} tells whether its weights are EMA averages (the file's
     * {@code ema.*} tensors, or an export of EMA averages).
     */
    public record Loaded(DenoiserModel model, Info info, boolean emaUsed) {
    }

    // ================================================================ save

    /**
     * Writes the full training state of {@code trainer} (see the class comment) to {@code file} atomically, with the
     * class names of its dataset ({@value #KEY_CLASS_NAMES}) when the model is class-conditional and the dataset
     * names exactly its classes (one name per model class).
     *
     * @throws IOException on a write failure; {@code file} is then unchanged
     * @throws IllegalStateException when the trainer is closed, or broken by a failed step or restore (its state is
     *                               then no run's: restore a checkpoint into it first), or while another thread runs
     *                               a step, {@code heldOutLoss}, a save or a restore on it
     */
    public static void save(Trainer trainer, Path file) throws IOException {
        save(trainer, file, Map.of());
    }

    /**
     * {@link #save(Trainer, Path)} with further metadata of the caller's (e.g. the CLI's
     * {@value #KEY_DATA_STANDARDIZATION}); {@link #readInfo} returns it with the rest.
     *
     * @param extra metadata strings; a key the checkpoint writes itself is refused
     * @throws IllegalArgumentException for a key of the checkpoint's own
     * @throws IllegalStateException    when the trainer is closed, broken or in use (see {@link #save(Trainer, Path)})
     * @throws IOException              on a write failure; {@code file} is then unchanged
     */
    public static void save(Trainer trainer, Path file, Map<String, String> extra) throws IOException {
        Objects.requireNonNull(trainer, "trainer");
        Objects.requireNonNull(extra, "extra");
        Objects.requireNonNull(file, "file");
        if (trainer.isClosed()) {
            throw new IllegalStateException("cannot save a closed trainer");
        }
        try (Trainer.Hold held = trainer.hold("save")) {  // no step may run meanwhile: one step's state, not two
            trainer.requireIntact("save");
            saveHeld(trainer, file, extra);
        }
    }

    private static void saveHeld(Trainer trainer, Path file, Map<String, String> extra) throws IOException {
        DenoiserModel model = trainer.model();
        Map<String, Tensor> tensors = new LinkedHashMap<>(model.module().stateDict());
        Ema ema = trainer.ema();
        if (ema != null) {
            for (Map.Entry<String, Tensor> e : ema.averages().entrySet()) {
                tensors.put(EMA_PREFIX + e.getKey(), e.getValue());
            }
        }
        AdamW opt = trainer.optimizer();
        for (Map.Entry<String, Tensor> e : opt.firstMoments().entrySet()) {
            tensors.put(M_PREFIX + e.getKey(), e.getValue());
        }
        for (Map.Entry<String, Tensor> e : opt.secondMoments().entrySet()) {
            tensors.put(V_PREFIX + e.getKey(), e.getValue());
        }
        Map<String, String> meta = modelMetadata(model);
        meta.put(KEY_TRAINING_CONFIG, toJson(trainer.config()));
        meta.put(KEY_STEP, Long.toString(trainer.completedSteps()));
        meta.put(KEY_SEED, Long.toString(trainer.config().seed()));
        meta.put(KEY_OPTIM_STEPS, Long.toString(opt.stepCount()));
        if (ema != null) {
            meta.put(KEY_EMA_UPDATES, Long.toString(ema.updates()));
        }
        putExtra(meta, extra);
        putClassNames(meta, trainer);
        checkMetadata(file, meta, model);
        trainer.ops().backend().synchronize();
        Safetensors.write(file, tensors, meta);
    }

    /** The longest metadata value written (Jackson, which reads the header, refuses strings beyond 20 M characters). */
    static final int MAX_METADATA_CHARS = 10_000_000;

    /** The metadata keys the library writes and interprets itself: a caller's {@code extra} may not set them. */
    private static final Set<String> OWN_KEYS = Set.of(KEY_FORMAT, KEY_MODEL_KIND, KEY_MODEL_CONFIG, KEY_MODEL_CLASS,
            KEY_TRAINING_CONFIG, KEY_WEIGHTS, KEY_STEP, KEY_SEED, KEY_OPTIM_STEPS, KEY_EMA_UPDATES);

    /** Adds the caller's {@code extra} to {@code meta}, refusing the library's own keys and null values. */
    private static void putExtra(Map<String, String> meta, Map<String, String> extra) {
        for (Map.Entry<String, String> e : extra.entrySet()) {
            if (OWN_KEYS.contains(Objects.requireNonNull(e.getKey(), "metadata key"))) {
                throw new IllegalArgumentException("metadata key " + e.getKey() + " is the checkpoint's own");
            }
            if (e.getKey().isEmpty()) {
                throw new IllegalArgumentException("metadata key is empty");
            }
            meta.put(e.getKey(), Objects.requireNonNull(e.getValue(), e.getKey()));
        }
    }

    /**
     * Refuses metadata that {@link #readInfo} or {@link #loadModel} would refuse later, so that no writer makes a file
     * it cannot read back: every value read as {@link #readInfo} reads it, and the data keys against the model:
     * {@value #KEY_CLASS_NAMES} one distinct name per class, {@value #KEY_DATA_FEATURE_NAMES} one name per
     * coordinate, {@value #KEY_DATA_STANDARDIZATION} one mean and scale per coordinate, {@value #KEY_DATA_IMAGE_SHAPE}
     * a {@code [C, H, W]} of as many values (C 1 or 3).
     *
     * @throws IllegalArgumentException naming the key and the problem
     */
    private static void checkMetadata(Path file, Map<String, String> meta, DenoiserModel model) {
        for (Map.Entry<String, String> e : meta.entrySet()) {
            if (e.getValue().length() > MAX_METADATA_CHARS) {                 // JSON readers refuse longer strings
                throw new IllegalArgumentException("metadata " + e.getKey() + " holds " + e.getValue().length()
                        + " characters; at most " + MAX_METADATA_CHARS);
            }
        }
        String source = meta.get(KEY_DATA_SOURCE);
        if (source != null) {
            JsonNode node = null;
            try {
                node = JSON.readTree(source);
            } catch (JsonProcessingException ignored) {
                // reported below
            }
            if (node == null || !node.isObject()) {
                throw new IllegalArgumentException("metadata " + KEY_DATA_SOURCE + " is not a JSON object");
            }
        }
        Info info;
        try {
            info = info(file, meta, false, false);
        } catch (CheckpointException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
        long numel = org.diffusion4j.tensor.Shape.numel(model.sampleShape());
        List<String> names = info.classNames();
        if (!names.isEmpty() && names.size() != model.numClasses()) {
            throw new IllegalArgumentException("metadata " + KEY_CLASS_NAMES + " has " + names.size() + " names for a "
                    + "model of " + model.numClasses() + " classes");
        }
        List<String> features = info.featureNames();
        if (!features.isEmpty() && features.size() != numel) {
            throw new IllegalArgumentException("metadata " + KEY_DATA_FEATURE_NAMES + " has " + features.size()
                    + " names for samples of " + numel + " values");
        }
        org.diffusion4j.io.Standardization st = info.standardization();
        if (st != null && st.features() != numel) {
            throw new IllegalArgumentException("metadata " + KEY_DATA_STANDARDIZATION + " has " + st.features()
                    + " features, the model's samples " + numel);
        }
        long[] shape = info.imageShape();
        if (shape != null && shape[0] * shape[1] * shape[2] != numel) {
            throw new IllegalArgumentException("metadata " + KEY_DATA_IMAGE_SHAPE + " = " + Arrays.toString(shape)
                    + " is not of the model's " + numel + " values");
        }
    }

    /**
     * Adds {@value #KEY_CLASS_NAMES} from the trainer's dataset when its model is class-conditional, the dataset names
     * one class per model class and {@code meta} has no names yet.
     */
    private static void putClassNames(Map<String, String> meta, Trainer trainer) {
        List<String> names = trainer.data().classNames();
        int k = trainer.model().numClasses();
        if (k > 0 && names.size() == k && !meta.containsKey(KEY_CLASS_NAMES)) {
            meta.put(KEY_CLASS_NAMES, classNamesJson(names));
        }
    }

    /**
     * Writes only the model's state dict (parameters and buffers; with {@code ema} given, the parameters replaced
     * by its averages) and the model metadata: a file that {@code torch.nn.Module.load_state_dict} takes as it is
     * and {@link #loadModel} builds a model from. Without a training configuration the file does not say which
     * prediction type and schedule the model was trained for; {@link #exportWeights(Path, Trainer)} records them.
     *
     * @param ema the EMA whose averages to write instead of the parameters, or null
     * @throws IllegalArgumentException when {@code ema} lacks an average of one of the model's parameters or holds
     *                                  one of another shape (the EMA of another model)
     * @throws IOException              on a write failure; {@code file} is then unchanged
     */
    public static void exportWeights(Path file, DenoiserModel model, Ema ema) throws IOException {
        exportWeights(file, model, ema, null);
    }

    /**
     * {@link #exportWeights(Path, DenoiserModel, Ema)} of a trainer's model, with its EMA averages when it keeps an
     * EMA, and its training configuration in the metadata (objective, schedule: what sampling needs).
     *
     * @throws IOException on a write failure; {@code file} is then unchanged
     * @throws IllegalStateException when the trainer is closed or broken (see {@link #save(Trainer, Path)})
     */
    public static void exportWeights(Path file, Trainer trainer) throws IOException {
        exportWeights(file, trainer, Map.of());
    }

    /**
     * {@link #exportWeights(Path, Trainer)} with further metadata of the caller's (e.g.
     * {@value #KEY_DATA_STANDARDIZATION}), checked like {@link #save(Trainer, Path, Map)}'s.
     *
     * @throws IllegalArgumentException for a key of the export's own, or malformed class or feature names
     * @throws IllegalStateException    when the trainer is closed or broken (see {@link #save(Trainer, Path)})
     * @throws IOException              on a write failure; {@code file} is then unchanged
     */
    public static void exportWeights(Path file, Trainer trainer, Map<String, String> extra) throws IOException {
        Objects.requireNonNull(trainer, "trainer");
        Objects.requireNonNull(extra, "extra");
        if (trainer.isClosed()) {
            throw new IllegalStateException("cannot export a closed trainer");
        }
        trainer.requireIntact("export");
        trainer.ops().backend().synchronize();
        Map<String, String> meta = new LinkedHashMap<>();
        putExtra(meta, extra);
        putClassNames(meta, trainer);
        meta.put(KEY_STEP, Long.toString(trainer.completedSteps()));
        meta.put(KEY_SEED, Long.toString(trainer.config().seed()));
        exportWeights(file, trainer.model(), trainer.ema(), trainer.config(), meta);
    }

    /**
     * {@link #exportWeights(Path, DenoiserModel, Ema)} with the training configuration (may be null) in the
     * metadata.
     *
     * @throws IllegalArgumentException when {@code ema} is not this model's (see
     *                                  {@link #exportWeights(Path, DenoiserModel, Ema)})
     * @throws IOException              on a write failure; {@code file} is then unchanged
     */
    public static void exportWeights(Path file, DenoiserModel model, Ema ema, TrainingConfig training)
            throws IOException {
        exportWeights(file, model, ema, training, Map.of());
    }

    private static void exportWeights(Path file, DenoiserModel model, Ema ema, TrainingConfig training,
                                      Map<String, String> extra) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(model, "model");
        Map<String, Tensor> tensors = new LinkedHashMap<>(model.module().stateDict());
        if (ema != null) {
            for (String name : model.module().namedParameters().keySet()) {
                Tensor avg = ema.averages().get(name);
                if (avg == null) {
                    throw new IllegalArgumentException("the EMA has no average of parameter '" + name + "'");
                }
                long[] want = tensors.get(name).shape();
                if (!Arrays.equals(avg.shape(), want)) {
                    throw new IllegalArgumentException("the EMA's average of '" + name + "' has shape "
                            + Arrays.toString(avg.shape()) + ", the parameter " + Arrays.toString(want)
                            + ": not this model's EMA");
                }
                tensors.put(name, avg);
            }
        }
        Map<String, String> meta = modelMetadata(model);
        meta.put(KEY_WEIGHTS, ema != null ? "ema" : "raw");
        if (training != null) {
            meta.put(KEY_TRAINING_CONFIG, toJson(training));
        }
        meta.putAll(extra);                                    // checked by the caller (putExtra) or the library's
        checkMetadata(file, meta, model);
        Safetensors.write(file, tensors, meta);
    }

    /**
     * Exports what {@link #loadModel} loaded, as a weights-only file a PyTorch model of the reference layout loads
     * with {@code load_state_dict} (the plain state-dict names hold the loaded weights: the EMA averages when
     * {@link Loaded#emaUsed()}), and that {@link #loadModel} reads back. The metadata keeps the model and training
     * configuration, the step and seed, the caller's entries (e.g. {@value #KEY_DATA_STANDARDIZATION},
     * {@value #KEY_CLASS_NAMES}) and records {@value #KEY_WEIGHTS}; the optimizer state is left out, so the file
     * cannot resume training. Written atomically.
     *
     * @param dtype {@link DType#F32} (exact), {@link DType#BF16} or {@link DType#F16} (half the bytes; rounded to
     *              nearest even)
     * @throws IllegalArgumentException for another dtype, or a weight that rounds to infinity in {@code dtype}
     *                                  (beyond ±65504 in F16; named; nothing is written)
     * @throws IOException              on a write failure; {@code file} is then unchanged
     */
    public static void exportWeights(Path file, Loaded loaded, DType dtype) throws IOException {
        exportWeights(file, loaded, dtype, Map.of());
    }

    /**
     * {@link #exportWeights(Path, Loaded, DType)} with further metadata of the caller's, added where the loaded file
     * has none (e.g. class names a run folder kept outside its older checkpoints), checked like
     * {@link #save(Trainer, Path, Map)}'s.
     *
     * @throws IllegalArgumentException also for malformed class or feature names
     */
    public static void exportWeights(Path file, Loaded loaded, DType dtype, Map<String, String> extra)
            throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(loaded, "loaded");
        Objects.requireNonNull(dtype, "dtype");
        Objects.requireNonNull(extra, "extra");
        if (dtype != DType.F32 && dtype != DType.BF16 && dtype != DType.F16) {
            throw new IllegalArgumentException("export dtype must be F32, BF16 or F16, got " + dtype);
        }
        DenoiserModel model = loaded.model();
        Map<String, String> meta = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : loaded.info().metadata().entrySet()) {
            if (!e.getKey().equals(KEY_OPTIM_STEPS) && !e.getKey().equals(KEY_EMA_UPDATES)) {
                meta.put(e.getKey(), e.getValue());
            }
        }
        meta.putAll(modelMetadata(model));
        meta.put(KEY_WEIGHTS, loaded.emaUsed() ? "ema" : "raw");
        putExtra(meta, extra);                                 // the caller's data keys replace the loaded ones
        checkMetadata(file, meta, model);
        Map<String, Tensor> state = model.module().stateDict();
        Backend be = state.values().iterator().next().backend();
        be.synchronize();
        try (TensorScope scope = TensorScope.open()) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (Map.Entry<String, Tensor> e : state.entrySet()) {
                Tensor src = e.getValue();
                if (dtype == DType.F32 || src.dtype() != DType.F32) {
                    tensors.put(e.getKey(), src);
                    continue;
                }
                // the first magnitude that rounds to infinity: binary16 65520, bfloat16 0x1.ffp127
                float overflow = dtype == DType.F16 ? 65520f : 0x1.ffp127f;
                float[] v = src.toFloatArray();
                for (int i = 0; i < v.length; i++) {
                    if (Math.abs(v[i]) >= overflow) {
                        throw new IllegalArgumentException("weight '" + e.getKey() + "' element " + i + " = " + v[i]
                                + " is beyond the " + dtype + " range (rounds to infinity); export as "
                                + (dtype == DType.F16 ? "BF16 or F32" : "F32"));
                    }
                }
                Tensor dst = be.empty(scope, dtype, src.shape());
                be.cast(src, dst);
                tensors.put(e.getKey(), dst);
            }
            Safetensors.write(file, tensors, meta);
        }
    }

    private static Map<String, String> modelMetadata(DenoiserModel model) {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(KEY_FORMAT, FORMAT_VERSION);
        if (Models.isBuiltIn(model)) {
            meta.put(KEY_MODEL_KIND, Models.kindOf(model));
            meta.put(KEY_MODEL_CONFIG, Models.configJson(model));
        }
        meta.put(KEY_MODEL_CLASS, model.getClass().getName());
        return meta;
    }

    /** The training configuration as JSON (the form of {@code d4j.training.config}). */
    public static String toJson(TrainingConfig config) {
        try {
            return JSON.writeValueAsString(config);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialise " + config, e);
        }
    }

    /**
     * Parses a training configuration from JSON.
     *
     * @throws IllegalArgumentException for malformed JSON, an unknown or missing field or an invalid value
     */
    public static TrainingConfig trainingConfigFromJson(String json) {
        Objects.requireNonNull(json, "json");
        try {
            com.fasterxml.jackson.databind.JsonNode node = JSON.readTree(json);
            if (node instanceof com.fasterxml.jackson.databind.node.ObjectNode o) {
                for (Map.Entry<String, Object> e : ADDED_LATER.entrySet()) {
                    if (!o.has(e.getKey())) {                  // written before the field existed: its old behaviour
                        o.set(e.getKey(), JSON.valueToTree(e.getValue()));
                    }
                }
            }
            return JSON.treeToValue(node, TrainingConfig.class);
        } catch (JsonProcessingException e) {
            Throwable c = e;
            while (c.getCause() != null && c.getCause() != c) {
                c = c.getCause();
            }
            String why = c instanceof IllegalArgumentException || c instanceof NullPointerException ? c.getMessage()
                    : e.getOriginalMessage();
            throw new IllegalArgumentException("bad training config: " + why, e);
        }
    }

    /**
     * Fields of {@link TrainingConfig} added after format 1 was first written, with the value that reproduces the
     * behaviour of files that lack them (every other field must be present).
     */
    private static final Map<String, Object> ADDED_LATER = Map.of("randomFlip", false, "microBatch", 0);

    // ================================================================ info

    /**
     * Reads and checks the metadata of {@code file} (the header only; no tensor data is read).
     *
     * @throws CheckpointException for an unsupported format version or malformed metadata
     * @throws IOException         when the file cannot be read or breaks the safetensors format
     */
    public static Info readInfo(Path file) throws IOException {
        Objects.requireNonNull(file, "file");
        return info(file, Safetensors.readHeader(file));
    }

    private static Info info(Path file, SafetensorsHeader header) throws CheckpointException {
        boolean hasEma = false;
        boolean hasOpt = false;
        for (SafetensorsHeader.Entry e : header.entries()) {
            hasEma |= e.name().startsWith(EMA_PREFIX);
            hasOpt |= e.name().startsWith(M_PREFIX) || e.name().startsWith(V_PREFIX);
        }
        return info(file, header.metadata(), hasEma, hasOpt);
    }

    /** What {@code meta} says (see {@link #readInfo}); every value parsed and checked. */
    private static Info info(Path file, Map<String, String> meta, boolean hasEma, boolean hasOpt)
            throws CheckpointException {
        String format = meta.get(KEY_FORMAT);
        if (format != null && !format.equals(FORMAT_VERSION)) {
            throw new CheckpointException(file, "metadata " + KEY_FORMAT + " = '" + format
                    + "': this version reads format " + FORMAT_VERSION);
        }
        String kind = meta.get(KEY_MODEL_KIND);
        String config = meta.get(KEY_MODEL_CONFIG);
        if ((kind == null) != (config == null)) {
            throw new CheckpointException(file, "metadata has " + (kind == null ? KEY_MODEL_CONFIG : KEY_MODEL_KIND)
                    + " without " + (kind == null ? KEY_MODEL_KIND : KEY_MODEL_CONFIG));
        }
        if (kind != null) {
            try {
                Models.parseConfig(kind, config);
            } catch (IllegalArgumentException e) {
                throw new CheckpointException(file, "metadata " + KEY_MODEL_KIND + "/" + KEY_MODEL_CONFIG + ": "
                        + e.getMessage(), e);
            }
        }
        TrainingConfig training = parsed(file, meta, KEY_TRAINING_CONFIG, Checkpoint::trainingConfigFromJson);
        parsed(file, meta, KEY_CLASS_NAMES, Checkpoint::parseClassNames);
        parsed(file, meta, KEY_DATA_FEATURE_NAMES, Checkpoint::parseStrings);
        parsed(file, meta, KEY_DATA_STANDARDIZATION, org.diffusion4j.io.Standardization::fromJson);
        parsed(file, meta, KEY_DATA_IMAGE_SHAPE, Checkpoint::parseImageShape);
        String weights = meta.get(KEY_WEIGHTS);
        if (weights != null && !weights.equals("ema") && !weights.equals("raw")) {
            throw new CheckpointException(file, "metadata " + KEY_WEIGHTS + " = '" + weights + "': expected ema or raw");
        }
        return new Info(kind, config, training, count(file, meta, KEY_STEP), count(file, meta, KEY_SEED, true),
                count(file, meta, KEY_OPTIM_STEPS), count(file, meta, KEY_EMA_UPDATES), hasEma, hasOpt, meta);
    }

    /**
     * The metadata value of {@value #KEY_CLASS_NAMES} for {@code names}, for {@link #save(Trainer, Path, Map)}'s
     * {@code extra}.
     *
     * @throws IllegalArgumentException for an empty list, an empty or repeated name
     */
    public static String classNamesJson(List<String> names) {
        Objects.requireNonNull(names, "names");
        checkClassNames(names);
        return stringsJson(names);
    }

    /** A list of strings as a JSON array (the form of {@value #KEY_DATA_FEATURE_NAMES}). */
    public static String stringsJson(List<String> strings) {
        try {
            return JSON.writeValueAsString(List.copyOf(strings));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** {@code [C, H, W]} from JSON: {@code C} 1 or 3, {@code H, W} in {@code [1, 2^20]}. */
    private static long[] parseImageShape(String json) {
        long[] shape = null;
        try {
            shape = JSON.readValue(json, long[].class);
        } catch (JsonProcessingException ignored) {
            // reported below
        }
        if (shape == null || shape.length != 3 || (shape[0] != 1 && shape[0] != 3) || shape[1] < 1 || shape[2] < 1
                || shape[1] > 1 << 20 || shape[2] > 1 << 20) {
            throw new IllegalArgumentException("'" + json + "' is not an image shape [C, H, W] (C 1 or 3)");
        }
        return shape;
    }

    private static List<String> parseClassNames(String json) {
        List<String> names = parseStrings(json);
        checkClassNames(names);
        return names;
    }

    private static List<String> parseStrings(String json) {
        JsonNode node;
        try {
            node = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("not JSON (" + e.getOriginalMessage() + ")", e);
        }
        if (node == null || !node.isArray()) {
            throw new IllegalArgumentException("not a JSON array of names");
        }
        List<String> names = new ArrayList<>();
        for (JsonNode n : node) {
            if (!n.isTextual()) {
                throw new IllegalArgumentException("element " + names.size() + " is not a string: " + n);
            }
            names.add(n.asText());
        }
        return List.copyOf(names);
    }

    private static void checkClassNames(List<String> names) {
        if (names.isEmpty()) {
            throw new IllegalArgumentException("no class names");
        }
        Set<String> seen = new HashSet<>();
        for (int k = 0; k < names.size(); k++) {
            String n = Objects.requireNonNull(names.get(k), "class name");
            if (n.isEmpty() || !seen.add(n)) {
                throw new IllegalArgumentException("class " + k + " has " + (n.isEmpty() ? "an empty name"
                        : "the name '" + n + "' of an earlier class"));
            }
            if (n.chars().anyMatch(Character::isISOControl)) {
                throw new IllegalArgumentException("class " + k + " has a name with a control character");
            }
        }
    }

    /**
     * The value of {@code key} read by {@code parse}, or null when absent.
     *
     * @throws CheckpointException naming the file and key when {@code parse} refuses the value
     */
    private static <T> T parsed(Path file, Map<String, String> meta, String key,
                                java.util.function.Function<String, T> parse) throws CheckpointException {
        String v = meta.get(key);
        if (v == null) {
            return null;
        }
        try {
            return parse.apply(v);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(file, "metadata " + key + ": " + e.getMessage(), e);
        }
    }

    private static long count(Path file, Map<String, String> meta, String key) throws CheckpointException {
        return count(file, meta, key, false);
    }

    private static long count(Path file, Map<String, String> meta, String key, boolean signed)
            throws CheckpointException {
        String v = meta.get(key);
        if (v == null) {
            return 0;
        }
        long n;
        try {
            n = Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new CheckpointException(file, "metadata " + key + " = '" + v + "' is not an integer", e);
        }
        if (!signed && n < 0) {
            throw new CheckpointException(file, "metadata " + key + " = " + n + " is negative");
        }
        return n;
    }

    // ================================================================ restore

    /**
     * Loads the full training state saved by {@link #save} into {@code trainer}: weights, buffers, AdamW moments
     * and step counter, EMA averages and update counter, and the trainer's step, so that training continues
     * bit-exactly as the saved run would have. The trainer's model must have the checkpoint's kind and
     * configuration, and its configuration the checkpoint's seed and batch size (which fix the random streams);
     * other training settings may differ (e.g. more total steps).
     *
     * @throws CheckpointException   naming the tensor or key when anything does not match, or a tensor holds NaN or
     *                               infinite values (nothing is changed then)
     * @throws IOException           when the file cannot be read or breaks the safetensors format; a read that fails
     *                               part-way through the copy leaves the trainer broken (save and step refuse it
     *                               until a restore succeeds)
     * @throws IllegalStateException when the trainer is closed (a broken trainer is what restore repairs), or while
     *                               another thread runs a step, {@code heldOutLoss}, a save or a restore on it
     */
    public static void restore(Path file, Trainer trainer) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(trainer, "trainer");
        if (trainer.isClosed()) {
            throw new IllegalStateException("cannot restore into a closed trainer");
        }
        try (Trainer.Hold held = trainer.hold("restore")) {  // no step may interleave with the copies
            restoreHeld(file, trainer);
        }
    }

    private static void restoreHeld(Path file, Trainer trainer) throws IOException {
        SafetensorsHeader header = Safetensors.readHeader(file);
        Info info = info(file, header);
        Map<String, String> meta = info.metadata();
        for (String key : List.of(KEY_TRAINING_CONFIG, KEY_STEP, KEY_SEED, KEY_OPTIM_STEPS)) {
            if (!meta.containsKey(key)) {
                throw new CheckpointException(file, "metadata " + key + " is missing: not a training checkpoint"
                        + " (a weights-only file loads with loadWeights/loadModel)");
            }
        }
        requireSameModel(file, info, trainer.model(), false, false);
        TrainingConfig mine = trainer.config();
        TrainingConfig theirs = info.training();
        if (theirs.seed() != mine.seed() || info.seed() != mine.seed()) {
            throw new CheckpointException(file, "checkpoint seed " + info.seed() + " differs from the trainer's "
                    + mine.seed() + " (the seed fixes the batch order and noise; resume with the same seed)");
        }
        if (theirs.batchSize() != mine.batchSize()) {
            throw new CheckpointException(file, "checkpoint batch size " + theirs.batchSize()
                    + " differs from the trainer's " + mine.batchSize());
        }
        if (theirs.randomFlip() != mine.randomFlip()) {
            throw new CheckpointException(file, "checkpoint random flips " + theirs.randomFlip() + " differ from the "
                    + "trainer's " + mine.randomFlip() + " (the flips are part of each step's batch)");
        }
        Ema ema = trainer.ema();
        if (ema == null && meta.containsKey(KEY_EMA_UPDATES)) {
            throw new CheckpointException(file, "metadata " + KEY_EMA_UPDATES + " is present but the trainer has no "
                    + "EMA");
        }
        if (ema != null && !meta.containsKey(KEY_EMA_UPDATES)) {
            throw new CheckpointException(file, "metadata " + KEY_EMA_UPDATES + " is missing but the trainer has an "
                    + "EMA");
        }

        Map<String, Tensor> targets = new LinkedHashMap<>(trainer.model().module().stateDict());
        if (ema != null) {
            for (Map.Entry<String, Tensor> e : ema.averages().entrySet()) {
                targets.put(EMA_PREFIX + e.getKey(), e.getValue());
            }
        }
        AdamW opt = trainer.optimizer();
        for (Map.Entry<String, Tensor> e : opt.firstMoments().entrySet()) {
            targets.put(M_PREFIX + e.getKey(), e.getValue());
        }
        for (Map.Entry<String, Tensor> e : opt.secondMoments().entrySet()) {
            targets.put(V_PREFIX + e.getKey(), e.getValue());
        }
        long batch = trainer.config().batchSize();
        for (long count : new long[] {info.step(), info.optimSteps()}) {
            if (count > Long.MAX_VALUE / Math.max(1, batch) / 4) {     // sample ids step·batch (+ margins) must fit
                throw new CheckpointException(file, "step count " + count + " in its metadata is beyond any run at "
                        + "batch " + batch + " (corrupt metadata)");
            }
        }
        // counters checked before any copy (a forged one refused by a setter after the copies left a half-restored
        // trainer): no run makes more optimizer steps or EMA updates than training steps
        if (info.optimSteps() > info.step()) {
            throw new CheckpointException(file, "metadata " + KEY_OPTIM_STEPS + " = " + info.optimSteps()
                    + " exceeds " + KEY_STEP + " = " + info.step() + " (corrupt metadata)");
        }
        if (ema != null && (info.emaUpdates() < 0 || info.emaUpdates() > info.step())) {
            throw new CheckpointException(file, "metadata " + KEY_EMA_UPDATES + " = " + info.emaUpdates()
                    + " is outside [0, " + KEY_STEP + " = " + info.step() + "] (corrupt metadata)");
        }
        checkTensors(file, header, targets, Set.of(), true);
        // a file refused before the first copy (unreadable, a NaN) leaves the trainer as it was; a failure during the
        // copies leaves it half-loaded, so broken until a restore succeeds
        copyAll(file, trainer.ops().backend(), targets, identity(targets.keySet()),
                e -> trainer.markBroken("restoring " + file + " failed part-way (" + e + "), leaving some tensors "
                        + "loaded and others not"));
        try {
            opt.setStepCount(info.optimSteps());
            if (ema != null) {
                ema.setUpdates(info.emaUpdates());
            }
        } catch (RuntimeException e) {                   // not expected after the checks above; never half-restored
            trainer.markBroken("restoring " + file + " failed after its tensors were loaded (" + e + ")");
            throw new CheckpointException(file, "its step counters cannot be set: " + e.getMessage(), e);
        }
        trainer.setCompletedSteps(info.step());
    }

    // ================================================================ weights only

    /**
     * Checks, from the header alone, that {@code file} holds at least as many tensor elements as the model
     * {@code config} describes ({@link Models#stateDictNumel}): call it before building a model from a file's
     * metadata, so that a corrupt or forged configuration is refused before the model's memory is allocated.
     *
     * @throws CheckpointException naming both counts when the file holds fewer
     * @throws IOException         when the file cannot be read or breaks the safetensors format
     */
    public static void requireWeightsFor(Path file, Record config) throws IOException {
        long want = Models.stateDictNumel(config);
        long have = 0;
        for (SafetensorsHeader.Entry e : Safetensors.readHeader(file).entries()) {
            have += e.numel();
        }
        if (have < want) {
            throw new CheckpointException(file, "its model configuration (" + Models.kindOf(config) + ") describes "
                    + want + " weights but the file holds " + have + " tensor elements in all: corrupt or not the "
                    + "file the metadata was written for");
        }
    }

    /**
     * Builds the model a checkpoint describes (metadata {@code d4j.model.kind}, {@code d4j.model.config}) in
     * {@code scope} and loads its weights (see {@link #loadWeights}).
     *
     * @param attention attention ops for a DiT (the caller keeps ownership), may be null for an MLP
     *
     * @throws CheckpointException when the file has no model metadata, holds fewer weights than its configuration
     *                             describes ({@link #requireWeightsFor}), or see {@link #loadWeights} (including a
     *                             tensor with NaN or infinite values)
     * @throws IOException         when the file cannot be read or breaks the safetensors format
     */
    public static Loaded loadModel(Path file, NnOps ops, AttentionOps attention, TensorScope scope, Weights which)
            throws IOException {
        Objects.requireNonNull(ops, "ops");
        Objects.requireNonNull(scope, "scope");
        Info info = readInfo(file);
        if (info.modelKind() == null) {
            throw new CheckpointException(file, "metadata " + KEY_MODEL_KIND + " is missing: the file does not say "
                    + "which model it holds; build the model yourself and use loadWeights");
        }
        requireWeightsFor(file, Models.parseConfig(info.modelKind(), info.modelConfig()));
        DenoiserModel model = Models.create(info.modelKind(), info.modelConfig(), ops, attention, scope, 0);
        boolean ema = loadWeights(file, model, ops.backend(), which);
        return new Loaded(model, info, ema);
    }

    /**
     * Loads the model weights of a checkpoint (a training checkpoint, an {@link #exportWeights export}, or a
     * safetensors state dict written by PyTorch) into {@code model}'s existing parameters and buffers. F32, BF16
     * and F16 tensors are accepted (converted to F32). {@code ema.*} and {@code optim.*} entries are otherwise
     * ignored; any other name the model does not have is an error. When the file has model metadata, its kind and
     * configuration must match the model's (all but the DiT's {@code classDropProb}, a training setting that no
     * tensor depends on).
     *
     * @param backend the model's backend
     * @return true when the loaded weights are EMA averages (the file's {@code ema.*} tensors, or the plain names
     *         of an export whose {@code d4j.weights} is {@code "ema"})
     * @throws CheckpointException naming the tensor: missing, unexpected, shape mismatch, unsupported dtype, NaN or
     *                             infinite values, or {@code EMA} asked for a file without EMA averages (neither
     *                             {@code ema.*} tensors nor an EMA export; the model is then unchanged)
     * @throws IOException         when the file cannot be read or breaks the safetensors format
     */
    public static boolean loadWeights(Path file, DenoiserModel model, Backend backend, Weights which)
            throws IOException {
        return loadWeights(file, model, backend, which, Set.of());
    }

    /**
     * {@link #loadWeights(Path, DenoiserModel, Backend, Weights)} for fine-tuning: the model's tensors whose names
     * start with one of {@code keepPrefixes} keep their current values (they are neither read nor required), and the
     * file's tensors under those prefixes (or their {@code ema.*} averages) are ignored whatever their shapes. With
     * {@link #CLASS_EMBEDDER} among them, a model of another class count (or none) takes the rest of a
     * class-conditional or unconditional file's weights: the file's model configuration must then match the model's
     * except for {@code numClasses} and {@code classDropProb}, the fields only the class embedder depends on. Class
     * names in the file are not checked against such a model.
     *
     * @param keepPrefixes name prefixes of tensors to leave as initialised, e.g. {@code Set.of(CLASS_EMBEDDER)} (an
     *                     empty set: the plain load)
     * @return see {@link #loadWeights(Path, DenoiserModel, Backend, Weights)}
     * @throws CheckpointException      see {@link #loadWeights(Path, DenoiserModel, Backend, Weights)}; a prefix
     *                                  that no tensor of the model or file has is not an error
     * @throws IllegalArgumentException when {@code keepPrefixes} holds an empty prefix (it would keep every tensor)
     * @throws IOException              when the file cannot be read or breaks the safetensors format
     */
    public static boolean loadWeights(Path file, DenoiserModel model, Backend backend, Weights which,
                                      Set<String> keepPrefixes) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(which, "which");
        Set<String> keep = Set.copyOf(Objects.requireNonNull(keepPrefixes, "keepPrefixes"));
        for (String k : keep) {
            if (k.isEmpty()) {
                throw new IllegalArgumentException("keepPrefixes holds an empty prefix (it would keep every tensor)");
            }
        }
        java.util.function.Predicate<String> kept = n -> keep.stream().anyMatch(n::startsWith);
        boolean newClasses = keep.contains(CLASS_EMBEDDER);
        SafetensorsHeader header = Safetensors.readHeader(file);
        Info info = info(file, header);
        requireSameModel(file, info, model, newClasses, keep.contains(POS_EMBED));
        if (!newClasses && !info.classNames().isEmpty() && info.classNames().size() != model.numClasses()) {
            throw new CheckpointException(file, "metadata " + KEY_CLASS_NAMES + " has " + info.classNames().size()
                    + " names for a model of " + model.numClasses() + " classes");
        }
        Map<String, Parameter> params = model.module().namedParameters();
        boolean useEma = switch (which) {
            case RAW -> false;
            case EMA -> {
                if (!info.hasEma() && !"ema".equals(info.metadata().get(KEY_WEIGHTS))) {
                    throw new CheckpointException(file, "EMA weights were asked for but the file has no "
                            + EMA_PREFIX + "* tensors (and is no export of EMA weights)");
                }
                yield info.hasEma();                           // else an EMA export: its plain names
            }
            case PREFER_EMA -> info.hasEma();
        };
        Map<String, Tensor> targets = new LinkedHashMap<>(model.module().stateDict());
        targets.keySet().removeIf(kept);
        Map<String, String> source = new LinkedHashMap<>();
        for (String name : targets.keySet()) {
            source.put(name, useEma && params.containsKey(name) ? EMA_PREFIX + name : name);
        }
        Map<String, Tensor> bySource = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : source.entrySet()) {
            bySource.put(e.getValue(), targets.get(e.getKey()));
        }
        // Names the model does not consume but a training checkpoint legitimately carries.
        Set<String> tolerated = new LinkedHashSet<>();
        for (SafetensorsHeader.Entry e : header.entries()) {
            String n = e.name();
            String plain = n.startsWith(EMA_PREFIX) ? n.substring(EMA_PREFIX.length()) : n;
            if (n.startsWith(M_PREFIX) || n.startsWith(V_PREFIX) || kept.test(plain)
                    || (n.startsWith(EMA_PREFIX) && params.containsKey(plain))
                    || (useEma && params.containsKey(n))) {
                tolerated.add(n);
            }
        }
        checkTensors(file, header, bySource, tolerated, false);
        Map<String, String> identity = identity(bySource.keySet());
        copyAll(file, backend, bySource, identity, e -> { });
        return useEma || "ema".equals(info.metadata().get(KEY_WEIGHTS));
    }

    // ================================================================ checks and copies

    /**
     * A file with a model kind needs a built-in model of that kind and configuration; a file without one (a custom
     * model's, or a foreign state dict) is checked by its tensors' names and shapes only.
     */
    private static void requireSameModel(Path file, Info info, DenoiserModel model, boolean classesMayDiffer,
                                         boolean sizeMayDiffer) throws CheckpointException {
        if (info.modelKind() == null) {
            return;
        }
        if (!Models.isBuiltIn(model)) {
            throw new CheckpointException(file, "metadata " + KEY_MODEL_KIND + " = '" + info.modelKind()
                    + "' but the model is " + model.getClass().getName() + ", not a built-in " + info.modelKind());
        }
        String kind = Models.kindOf(model);
        if (!kind.equals(info.modelKind())) {
            throw new CheckpointException(file, "metadata " + KEY_MODEL_KIND + " = '" + info.modelKind()
                    + "' but the model is '" + kind + "'");
        }
        Record theirs = Models.parseConfig(info.modelKind(), info.modelConfig());
        Record mine = Models.configOf(model);
        if (sizeMayDiffer && theirs instanceof DiT.Config t && mine instanceof DiT.Config m) {
            theirs = t.withImageSize(m.imageSize());     // only pos_embed depends on it, and it is kept
        }
        // the label-dropout probability (DiT classDropProb) is a training setting no tensor depends on
        boolean same = classesMayDiffer
                ? Models.withClasses(theirs, 0, 0.0).equals(Models.withClasses(mine, 0, 0.0))
                : Models.withClasses(theirs, Models.numClasses(theirs), 0.0).equals(Models.withClasses(mine,
                        Models.numClasses(mine), 0.0));
        if (!same) {
            throw new CheckpointException(file, "metadata " + KEY_MODEL_CONFIG + " = " + info.modelConfig()
                    + " but the model's configuration is " + Models.toJson(mine));
        }
    }

    /**
     * Checks that the file holds exactly the {@code targets} (plus {@code tolerated}), each with the target's shape
     * and an accepted dtype (F32 only when {@code strictF32}, else F32/BF16/F16).
     */
    private static void checkTensors(Path file, SafetensorsHeader header, Map<String, Tensor> targets,
                                     Set<String> tolerated, boolean strictF32) throws CheckpointException {
        Map<String, SafetensorsHeader.Entry> entries = new LinkedHashMap<>();
        for (SafetensorsHeader.Entry e : header.entries()) {
            entries.put(e.name(), e);
        }
        List<String> missing = new ArrayList<>();
        for (String name : targets.keySet()) {
            if (!entries.containsKey(name)) {
                missing.add(name);
            }
        }
        if (!missing.isEmpty()) {
            throw new CheckpointException(file, "missing tensor" + (missing.size() == 1 ? " '" + missing.get(0) + "'"
                    : "s " + missing) + " (the file has " + entries.size() + " tensors)");
        }
        Set<String> unexpected = new TreeSet<>();
        for (String name : entries.keySet()) {
            if (!targets.containsKey(name) && !tolerated.contains(name)) {
                unexpected.add(name);
            }
        }
        if (!unexpected.isEmpty()) {
            throw new CheckpointException(file, "unexpected tensor" + (unexpected.size() == 1 ? " '"
                    + unexpected.iterator().next() + "'" : "s " + unexpected) + ": the target has no such entry");
        }
        for (Map.Entry<String, Tensor> t : targets.entrySet()) {
            SafetensorsHeader.Entry e = entries.get(t.getKey());
            if (!Arrays.equals(e.shape(), t.getValue().shape())) {
                throw new CheckpointException(file, "tensor '" + t.getKey() + "' has shape "
                        + Arrays.toString(e.shape()) + " in the file but " + Arrays.toString(t.getValue().shape())
                        + " in the target");
            }
            SafetensorsDType d = e.dtype();
            boolean ok = d == SafetensorsDType.F32
                    || (!strictF32 && (d == SafetensorsDType.BF16 || d == SafetensorsDType.F16));
            if (!ok) {
                throw new CheckpointException(file, "tensor '" + t.getKey() + "' has dtype " + d + "; expected F32"
                        + (strictF32 ? " (training state is stored exactly)" : ", BF16 or F16"));
            }
        }
    }

    private static Map<String, String> identity(Set<String> names) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String n : names) {
            m.put(n, n);
        }
        return m;
    }

    /**
     * Maps the file into a temporary scope and copies (casting to F32 where needed) each source into its target,
     * once every source is known to be finite; {@code partial} hears of a failure after the first copy began (some
     * targets then hold the file's values, others not), before it propagates.
     */
    private static void copyAll(Path file, Backend backend, Map<String, Tensor> targets, Map<String, String> names,
                                java.util.function.Consumer<Throwable> partial) throws IOException {
        Set<String> wanted = new LinkedHashSet<>(names.values());
        boolean copying = false;
        try (TensorScope tmp = TensorScope.open()) {
            SafetensorsFile f = Safetensors.read(file, tmp, backend, wanted::contains);
            // every value finite, before anything is copied: a NaN would otherwise surface as a diverged step
            for (Map.Entry<String, Tensor> e : targets.entrySet()) {
                String name = names.get(e.getKey());
                Tensor src = f.tensor(name);
                Tensor f32 = src;
                if (src.dtype() != DType.F32) {
                    f32 = backend.empty(tmp, DType.F32, src.shape());
                    backend.cast(src, f32);
                }
                if (f32.numel() > 0 && !Double.isFinite(backend.globalNorm(List.of(f32)))) {
                    throw new CheckpointException(file, "tensor '" + name + "' holds NaN or infinite values (the "
                            + "run that wrote it had diverged?)");
                }
            }
            copying = true;
            for (Map.Entry<String, Tensor> e : targets.entrySet()) {
                Tensor src = f.tensor(names.get(e.getKey()));
                Tensor dst = e.getValue();
                if (src.dtype() == DType.F32) {
                    backend.copy(src, dst);
                } else {
                    backend.cast(src, dst);
                }
            }
            backend.synchronize();
        } catch (IOException | RuntimeException | Error e) {
            if (copying) {
                partial.accept(e);
            }
            throw e;
        }
    }
}
