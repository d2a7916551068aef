package org.diffusion4j.metrics;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.diffusion4j.io.Dataset;
import org.diffusion4j.io.Safetensors;
import org.diffusion4j.io.SafetensorsFile;
import org.diffusion4j.nn.Activation;
import org.diffusion4j.nn.Init;
import org.diffusion4j.nn.Linear;
import org.diffusion4j.nn.Module;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.Parameter;
import org.diffusion4j.optim.AdamW;
import org.diffusion4j.optim.LrSchedule;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * A small image classifier trained once on a dataset's training split, whose penultimate activations are the feature
 * space of the <b>classifier-feature Fréchet distance</b> ({@link FrechetDistance}; not the Inception FID) and whose
 * predictions give the accuracy of class-conditional samples and the class coverage ({@link LabelMetrics}).
 *
 * <p>The network is an MLP on pixels: {@code x [B, P] → GELU(fc1) [B, hidden] → GELU(fc2) [B, featureDim] →
 * head [B, K]}, trained with softmax cross-entropy ({@link SoftmaxCrossEntropy}) and AdamW (warm-up + cosine
 * learning rate) for a few epochs; the features are the {@code fc2} activations {@code [B, featureDim]}. Images
 * enter flattened in their dataset scaling ({@code [-1, 1]}).
 *
 * <p><b>Cache.</b> Training is deterministic for a config (Philox init and batch order), so the trained weights
 * are cached as safetensors in {@code <cacheDir>/classifier-<key>.safetensors}, where the key is a SHA-256 of the
 * training data (values, shape, labels) and the config; the file is written atomically, and a file whose metadata
 * does not match (other key, format or shapes) is retrained and replaced. {@link #defaultCacheDir()} is
 * {@code ${XDG_CACHE_HOME:-~/.cache}/diffusion4j}.
 */
public final class ClassifierFeatures implements AutoCloseable {

    /**
     * Format tag in the cache file's metadata and key; bump it when the network, its training or the float arithmetic
     * of the ops it trains with changes (the key sees data and config, not code: v2 after the float64 row sums of
     * LayerNorm and the blocked GEMM of 2026-11-30 changed the trained weights' last bits).
     */
    public static final String FORMAT = "diffusion4j-classifier-features-v2";

    /** Rows per inference chunk. */
    static final int CHUNK = 512;

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * What the classifier is and how it is trained.
     *
     * @param hidden      width of the first hidden layer
     * @param featureDim  width of the penultimate layer: the feature dimension of the FD
     * @param epochs      passes over the training split ({@code >= 1}; may be fractional through {@code steps})
     * @param batch       samples per step
     * @param lr          peak AdamW learning rate
     * @param weightDecay AdamW decoupled weight decay
     * @param seed        Philox seed of the initialisation and the batch order
     */
    public record Config(int hidden, int featureDim, int epochs, int batch, double lr, double weightDecay, long seed) {
        /** @throws IllegalArgumentException naming the bad value */
        public Config {
            if (hidden < 1 || featureDim < 2) {
                throw new IllegalArgumentException("classifier sizes must be hidden >= 1, featureDim >= 2; got hidden "
                        + hidden + ", featureDim " + featureDim);
            }
            if (epochs < 1 || batch < 1) {
                throw new IllegalArgumentException("classifier epochs and batch must be >= 1, got " + epochs + ", "
                        + batch);
            }
            if (!(lr > 0 && lr < 1) || !(weightDecay >= 0 && weightDecay < 1)) {
                throw new IllegalArgumentException("classifier lr must be in (0, 1) and weight decay in [0, 1), got "
                        + lr + ", " + weightDecay);
            }
        }

        /** 256 → 128 features, 3 epochs of batch 128, lr 2e-3, weight decay 1e-4, seed 0. */
        public static Config defaults() {
            return new Config(256, 128, 3, 128, 2e-3, 1e-4, 0);
        }
    }

    /**
     * How the classifier came to be.
     *
     * @param key            the cache key (SHA-256, hex)
     * @param fromCache      whether the weights were read from the cache
     * @param steps          optimizer steps of its training
     * @param finalLoss      mean cross-entropy over the last epoch's final tenth of steps, nats
     * @param trainAccuracy  accuracy on (up to 10,000 samples of) its training split
     */
    public record Provenance(String key, boolean fromCache, long steps, double finalLoss, double trainAccuracy) {
    }

    /** The network: {@code fc1}, {@code fc2}, {@code head} (state-dict names {@code fc1.weight} …). */
    static final class Net extends Module {
        final Linear fc1;
        final Linear fc2;
        final Linear head;

        Net(NnOps ops, TensorScope scope, int in, int hidden, int features, int classes) {
            fc1 = registerModule("fc1", new Linear(ops, scope, in, hidden, true));
            fc2 = registerModule("fc2", new Linear(ops, scope, hidden, features, true));
            head = registerModule("head", new Linear(ops, scope, features, classes, true));
        }
    }

    private final Backend backend;
    private final NnOps ops;
    private final TensorScope params;
    private final Net net;
    private final Config config;
    private final long[] sampleShape;
    private final int inputDim;
    private final int numClasses;
    private Provenance provenance;

    private ClassifierFeatures(Backend backend, Config config, long[] sampleShape, int numClasses) {
        this.backend = Objects.requireNonNull(backend, "backend");
        this.config = config;
        this.sampleShape = sampleShape.clone();
        long p = 1;
        for (long d : sampleShape) {
            p = Math.multiplyExact(p, d);
        }
        this.inputDim = Math.toIntExact(p);
        this.numClasses = numClasses;
        this.ops = NnOps.forBackend(backend);
        this.params = TensorScope.open();
        this.net = new Net(ops, params, inputDim, config.hidden(), config.featureDim(), numClasses);
    }

    /** An untrained (zero-weight) classifier for {@code sampleShape} inputs, for tests that set the weights. */
    static ClassifierFeatures untrained(Backend backend, long[] sampleShape, int numClasses, Config config) {
        ClassifierFeatures c = new ClassifierFeatures(backend, config, sampleShape, numClasses);
        c.provenance = new Provenance("untrained", false, 0, Double.NaN, Double.NaN);
        return c;
    }

    /** The network (for tests). */
    Net net() {
        return net;
    }

    /** {@code ${XDG_CACHE_HOME:-~/.cache}/diffusion4j}. */
    public static Path defaultCacheDir() {
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("diffusion4j");
    }

    /**
     * The classifier for {@code train}: read from {@code cacheDir} when a matching file is there, else trained and
     * written there (the folder is created; a failure to write the cache is reported through {@code log} and
     * otherwise ignored).
     *
     * @param train    labelled samples (any sample shape; flattened), at least 2 classes
     * @param cacheDir the cache folder, or null for no cache
     * @param log      one-line progress messages (may be null)
     * @throws IllegalArgumentException when {@code train} has no labels or fewer than 2 classes
     * @throws IllegalStateException    when training diverges (a non-finite loss; not seen with the default
     *                                  configuration), or the backend is closed
     */
    public static ClassifierFeatures trainOrLoad(Backend backend, Dataset train, Config config, Path cacheDir,
                                                 Consumer<String> log) {
        Objects.requireNonNull(train, "train");
        Objects.requireNonNull(config, "config");
        Consumer<String> say = log == null ? s -> { } : log;
        if (!train.hasLabels() || train.numClasses() < 2) {
            throw new IllegalArgumentException("the classifier needs a labelled training set with >= 2 classes, got "
                    + train);
        }
        String key = cacheKey(train, config);
        Path file = cacheDir == null ? null : cacheDir.resolve("classifier-" + key.substring(0, 24) + ".safetensors");
        ClassifierFeatures c = new ClassifierFeatures(backend, config, train.sampleShape(), train.numClasses());
        try {
            if (file != null && Files.isRegularFile(file) && c.tryLoad(file, key, say)) {
                return c;
            }
            say.accept("training the feature classifier on " + train.size() + " samples (once; cached)...");
            c.train(train, key);
            if (file != null) {
                try {
                    Files.createDirectories(cacheDir);
                    c.save(file);
                    say.accept("classifier cached in " + file);
                } catch (IOException | RuntimeException e) {
                    say.accept("could not cache the classifier in " + file + ": " + e.getMessage());
                }
            }
            return c;
        } catch (RuntimeException e) {
            c.close();
            throw e;
        }
    }

    /**
     * SHA-256 (hex) of {@link #FORMAT}, the config, the sample shape, every sample value and every label.
     */
    public static String cacheKey(Dataset train, Config config) {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is not available", e);
        }
        md.update((FORMAT + "|" + config + "|" + Arrays.toString(train.sampleShape()) + "|" + train.size() + "|"
                + train.numClasses()).getBytes(StandardCharsets.UTF_8));
        float[] data = train.toArray();
        ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : data) {
            if (buf.remaining() < 4) {
                md.update(buf.flip());
                buf.clear();
            }
            buf.putFloat(v);
        }
        for (int l : train.labels()) {
            if (buf.remaining() < 4) {
                md.update(buf.flip());
                buf.clear();
            }
            buf.putInt(l);
        }
        md.update(buf.flip());
        return HexFormat.of().formatHex(md.digest());
    }

    // ---------------------------------------------------------------- training

    private void train(Dataset train, String key) {
        int n = train.size();
        int batch = Math.min(config.batch(), n);
        long stepsPerEpoch = Math.max(1, n / batch);
        long steps = stepsPerEpoch * config.epochs();
        Init.linearDefault(net.fc1, config.seed(), 0);
        Init.linearDefault(net.fc2, config.seed(), 2);
        Init.linearDefault(net.head, config.seed(), 4);
        LrSchedule lr = LrSchedule.warmupCosine(config.lr(), Math.min(100, steps / 10), steps, config.lr() / 50);
        Dataset.Batches batches = train.batches(batch, config.seed());
        long tailFrom = steps - Math.max(1, stepsPerEpoch / 10);
        double tail = 0;
        int tailCount = 0;
        int[] labels = new int[batch];
        double[] logits = new double[batch * numClasses];
        double[] dLogits = new double[logits.length];
        float[] dLogitsF = new float[logits.length];
        try (AdamW opt = new AdamW(ops, net.namedParameters(), AdamW.Hyper.defaults().withWeightDecay(
                config.weightDecay()), name -> name.endsWith("weight"))) {
            for (long step = 0; step < steps; step++) {
                try (TensorScope s = TensorScope.open()) {
                    Tensor x = backend.empty(s, DType.F32, train.batchShape(batch));
                    int[] idx = batches.next(x, null);
                    for (int i = 0; i < batch; i++) {
                        labels[i] = train.label(idx[i]);
                    }
                    net.zeroGrad();
                    Linear.Cache c1 = net.fc1.forward(s, x.reshape(batch, inputDim), Activation.GELU_TANH);
                    Linear.Cache c2 = net.fc2.forward(s, c1.out(), Activation.GELU_TANH);
                    Linear.Cache c3 = net.head.forward(s, c2.out());
                    float[] z = c3.out().toFloatArray();
                    for (int i = 0; i < z.length; i++) {
                        logits[i] = z[i];
                    }
                    double loss = SoftmaxCrossEntropy.lossAndGradient(logits, labels, numClasses, dLogits);
                    if (!Double.isFinite(loss)) {
                        throw new IllegalStateException("classifier training diverged at step " + step);
                    }
                    for (int i = 0; i < dLogits.length; i++) {
                        dLogitsF[i] = (float) dLogits[i];
                    }
                    Tensor dz = backend.fromArray(s, dLogitsF, batch, numClasses);
                    Tensor d2 = net.head.backward(s, c3, dz, true);
                    Tensor d1 = net.fc2.backward(s, c2, d2, true);
                    net.fc1.backward(s, c1, d1, false);
                    opt.step(lr.lr(step));
                    if (step >= tailFrom) {
                        tail += loss;
                        tailCount++;
                    }
                }
            }
        }
        Dataset check = train.size() <= 10_000 ? train : train.subset(firstIndices(10_000));
        double acc = LabelMetrics.accuracy(predict(check.toArray(), check.size()), check.labels());
        provenance = new Provenance(key, false, steps, tail / tailCount, acc);
    }

    private static int[] firstIndices(int n) {
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = i;
        }
        return out;
    }

    // ---------------------------------------------------------------- cache

    private void save(Path file) throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, Parameter> e : net.namedParameters().entrySet()) {
            tensors.put(e.getKey(), e.getValue().value());
        }
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", FORMAT);
        meta.put("key", provenance.key());
        meta.put("config", JSON.writeValueAsString(config));
        meta.put("sample_shape", Arrays.toString(sampleShape));
        meta.put("num_classes", Integer.toString(numClasses));
        meta.put("steps", Long.toString(provenance.steps()));
        meta.put("final_loss", Double.toString(provenance.finalLoss()));
        meta.put("train_accuracy", Double.toString(provenance.trainAccuracy()));
        Safetensors.write(file, tensors, meta);
    }

    /** Loads {@code file} when its metadata and shapes match; false (after a log line) otherwise. */
    private boolean tryLoad(Path file, String key, Consumer<String> say) {
        try (TensorScope s = TensorScope.open()) {
            SafetensorsFile f = Safetensors.read(file, s, backend);
            Map<String, String> m = f.metadata();
            if (!FORMAT.equals(m.get("format")) || !key.equals(m.get("key"))) {
                say.accept("cached classifier " + file + " is for other data or settings; retraining");
                return false;
            }
            Map<String, Parameter> named = net.namedParameters();
            if (!f.tensors().keySet().equals(named.keySet())) {
                say.accept("cached classifier " + file + " has other tensors; retraining");
                return false;
            }
            for (Map.Entry<String, Parameter> e : named.entrySet()) {
                Tensor src = f.tensor(e.getKey());
                if (!Arrays.equals(src.shape(), e.getValue().shape()) || src.dtype() != DType.F32) {
                    say.accept("cached classifier " + file + " has a mismatched " + e.getKey() + "; retraining");
                    return false;
                }
            }
            for (Map.Entry<String, Parameter> e : named.entrySet()) {
                backend.copy(f.tensor(e.getKey()), e.getValue().value());
            }
            backend.synchronize();
            provenance = new Provenance(key, true, Long.parseLong(m.getOrDefault("steps", "0")),
                    Double.parseDouble(m.getOrDefault("final_loss", "NaN")),
                    Double.parseDouble(m.getOrDefault("train_accuracy", "NaN")));
            return true;
        } catch (IOException | RuntimeException e) {
            say.accept("cached classifier " + file + " is unreadable (" + e.getMessage() + "); retraining");
            return false;
        }
    }

    // ---------------------------------------------------------------- inference

    /** Feature dimension {@code F}. */
    public int featureDim() {
        return config.featureDim();
    }

    /** Number of classes {@code K}. */
    public int numClasses() {
        return numClasses;
    }

    /** The shape of one input sample. */
    public long[] sampleShape() {
        return sampleShape.clone();
    }

    /** The config. */
    public Config config() {
        return config;
    }

    /** Where the weights came from and how well the classifier fits its training split. */
    public Provenance provenance() {
        return provenance;
    }

    /**
     * Penultimate-layer features of {@code n} samples.
     *
     * @param x {@code [n, ...sampleShape]} row-major, in the training data's scaling
     * @return {@code [n, featureDim]} row-major
     * @throws IllegalArgumentException when {@code x.length != n × prod(sampleShape)}
     */
    public float[] features(float[] x, int n) {
        return run(x, n, true);
    }

    /**
     * {@link #features} as a named point set for {@link FrechetDistance}.
     *
     * @throws IllegalArgumentException as {@link #features}, for {@code n = 0}, or for non-finite features (e.g.
     *                                  from non-finite samples)
     */
    public PointSet featureSet(String name, float[] x, int n) {
        return PointSet.of(name, features(x, n), n, featureDim());
    }

    /**
     * Predicted class of each of {@code n} samples {@code [n, ...sampleShape]}, each in {@code [0, numClasses)}.
     *
     * @throws IllegalArgumentException as {@link #features}, or when a logit is NaN (e.g. from non-finite samples)
     */
    public int[] predict(float[] x, int n) {
        return SoftmaxCrossEntropy.argmax(run(x, n, false), numClasses);
    }

    private float[] run(float[] x, int n, boolean features) {
        Objects.requireNonNull(x, "x");
        if (n < 0 || x.length != (long) n * inputDim) {
            throw new IllegalArgumentException(x.length + " values are not " + n + " samples of shape "
                    + Arrays.toString(sampleShape));
        }
        int width = features ? featureDim() : numClasses;
        float[] out = new float[n * width];
        float[] chunk = new float[Math.min(CHUNK, Math.max(n, 1)) * inputDim];
        for (int from = 0; from < n; from += CHUNK) {
            int b = Math.min(CHUNK, n - from);
            try (TensorScope s = TensorScope.open()) {
                System.arraycopy(x, from * inputDim, chunk, 0, b * inputDim);
                Tensor xt = backend.empty(s, DType.F32, b, inputDim)
                        .copyFrom(b * inputDim == chunk.length ? chunk : Arrays.copyOf(chunk, b * inputDim));
                Linear.Cache c1 = net.fc1.forward(s, xt, Activation.GELU_TANH);
                Linear.Cache c2 = net.fc2.forward(s, c1.out(), Activation.GELU_TANH);
                Tensor y = features ? c2.out() : net.head.forward(s, c2.out()).out();
                System.arraycopy(y.toFloatArray(), 0, out, from * width, b * width);
            }
        }
        return out;
    }

    @Override
    public void close() {
        params.close();
        ops.close();
    }
}
