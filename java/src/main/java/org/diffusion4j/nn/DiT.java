package org.diffusion4j.nn;

import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.random.Philox;
import org.diffusion4j.sampling.NoiseLevels;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.diffusion4j.tensor.Workspace;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * The Diffusion Transformer of Peebles &amp; Xie 2023 ("Scalable Diffusion Models with Transformers", §3.2, Fig. 3):
 * patch embedding, fixed 2-D sin-cos position embedding, timestep and class embedders, {@code depth} adaLN-Zero
 * blocks ({@link DiTBlock}), the adaLN final layer ({@link FinalLayer}) and unpatchify. Structure, parameter names
 * and layouts follow the reference implementation (facebookresearch/DiT {@code models.py}, class {@code DiT}), so
 * a state dict moves between this library and that code without renaming:
 * <pre>
 *   x [B, C, H, W]  (H = W = imageSize, T = (H/p)²)
 *   h = x_embedder(x) + pos_embed                               [B, T, D]   x_embedder.proj.{weight [D, C, p, p], bias}
 *                                                                           pos_embed [1, T, D] (buffer, fixed)
 *   c = t_embedder(timeScale·t) (+ y_embedder(y))               [B, D]      t_embedder.mlp.{0,2}.*,
 *                                                                           y_embedder.embedding_table.weight [K+1, D]
 *   h = blocks.k(h, c), k = 0..depth−1                          [B, T, D]
 *   v = final_layer(h, c)                                       [B, T, p·p·C]
 *   out = unpatchify(v)  (einsum 'nhwpqc->nchpwq')              [B, C, H, W]
 * </pre>
 *
 * <p><b>Differences from the reference</b>, all deliberate:
 * <ul>
 * <li>No {@code learn_sigma}: the output has the input's {@code C} channels (the model predicts one quantity —
 *     ε, x0, v or a velocity — as the trainer chooses).</li>
 * <li>Time: the model takes this library's {@code t ∈ [0, 1]} and embeds {@code timeScale·t} (default 1000, the
 *     reference's integer timestep range).</li>
 * <li>A conditional model ({@code numClasses > 0}) <b>always</b> has the null-class row (index {@code numClasses}) in
 *     its table, {@code [numClasses + 1, D]}, also when {@code classDropProb = 0} (the reference adds it only when
 *     its dropout is {@code > 0}; with dropout {@code > 0} the layouts agree). The model does not drop labels
 *     itself: the trainer passes labels already dropped, e.g. with {@link #dropLabels}. An unconditional model
 *     ({@code numClasses = 0}) has no {@code y_embedder} and {@code c} is the time embedding alone.</li>
 * <li>{@code pos_embed} is a buffer ({@link Module#registerBuffer}): in the state dict, not among the trainable
 *     parameters (in the reference it is a {@code requires_grad=False} parameter).</li>
 * </ul>
 *
 * <p><b>Initialisation</b> (the reference's {@code initialize_weights}) from Philox streams of {@code seed}: every
 * linear weight Xavier-uniform (the patch weight on its flattened {@code [D, C·p·p]} view; stream 0 for the patch
 * embedding, {@code 4 + 4k + j} for block {@code k}'s {@code qkv, proj, fc1, fc2}), every bias 0; the timestep MLP
 * weights {@code N(0, 0.02²)} (streams 1, 2) and the label table {@code N(0, 0.02²)} (stream 3); every
 * {@code adaLN_modulation} linear and the final {@code linear} zero (adaLN-Zero: each block starts as the identity,
 * the output at 0).
 *
 * <p><b>Use.</b> For training call {@link #forward} and {@link #backward} (gradients accumulate into the
 * parameters); as a {@link org.diffusion4j.sampling.Denoiser}, {@link #predict} takes the labels as an I32
 * {@code [B]} condition and {@link #predictGuided} runs the conditional and unconditional halves as one batch of
 * {@code 2B}. The caller owns the {@link NnOps} and {@link AttentionOps} and closes them after the model's last use.
 */
public final class DiT extends Module implements DenoiserModel {

    /**
     * Architecture (Jackson-serialisable: plain components). Validation names the bad value.
     *
     * @param imageSize     {@code H = W ≥ 1}, divisible by {@code patch}
     * @param channels      input (= output) channels {@code C ≥ 1}
     * @param patch         patch size {@code p ≥ 1}
     * @param hidden        width {@code D}, a positive multiple of 4 (the 2-D sin-cos embedding) and of {@code heads};
     *                      the layers call the same width {@code dim}
     * @param depth         number of blocks {@code ≥ 0}
     * @param heads         attention heads {@code ≥ 1}; head dim {@code D/heads ≤ 256} ({@code long} in the layer
     *                      constructors, same value)
     * @param mlpRatio      MLP hidden width {@code int(D·mlpRatio) ≥ 1} (reference 4.0)
     * @param numClasses    real classes {@code K ≥ 0}; 0 = unconditional
     * @param classDropProb label-drop probability in {@code [0, 1]} for classifier-free guidance training (reference
     *                      0.1), used by {@link #dropLabels}; must be 0 when unconditional. The same quantity is
     *                      {@code TrainingConfig.labelDropout} in training and {@code dropProb} in
     *                      {@link ClassEmbedder}
     * @param frequencyDim  sinusoidal size of the time embedding {@code ≥ 1} (reference 256)
     * @param timeScale     model time {@code t ∈ [0, 1]} is embedded as {@code timeScale·t}; finite {@code > 0}
     */
    public record Config(int imageSize, int channels, int patch, int hidden, int depth, int heads, double mlpRatio,
                         int numClasses, double classDropProb, int frequencyDim, double timeScale) {

        /** Validates. */
        public Config {
            if (imageSize < 1) {
                throw new IllegalArgumentException("DiT imageSize must be >= 1, got " + imageSize);
            }
            if (channels < 1) {
                throw new IllegalArgumentException("DiT channels must be >= 1, got " + channels);
            }
            if (patch < 1) {
                throw new IllegalArgumentException("DiT patch must be >= 1, got " + patch);
            }
            if (imageSize % patch != 0) {
                throw new IllegalArgumentException("DiT patch " + patch + " must divide imageSize " + imageSize);
            }
            if (hidden < 4 || hidden % 4 != 0) {
                throw new IllegalArgumentException("DiT hidden must be a positive multiple of 4 (2-D sin-cos position "
                        + "embedding), got " + hidden);
            }
            if (heads < 1 || hidden % heads != 0) {
                throw new IllegalArgumentException("DiT heads must be >= 1 and divide hidden " + hidden + ", got "
                        + heads);
            }
            if (hidden / heads > AttentionOps.MAX_HEAD_DIM) {
                throw new IllegalArgumentException("DiT head dim hidden/heads = " + hidden + "/" + heads + " = "
                        + hidden / heads + " exceeds " + AttentionOps.MAX_HEAD_DIM);
            }
            if (depth < 0) {
                throw new IllegalArgumentException("DiT depth must be >= 0, got " + depth);
            }
            if (!(mlpRatio > 0 && Double.isFinite(mlpRatio)) || (long) (hidden * mlpRatio) < 1
                    || hidden * mlpRatio > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("DiT mlpRatio must be finite and give an MLP width int(hidden·"
                        + "mlpRatio) >= 1, got " + mlpRatio);
            }
            if (numClasses < 0) {
                throw new IllegalArgumentException("DiT numClasses must be >= 0 (0 = unconditional), got "
                        + numClasses);
            }
            if (!(classDropProb >= 0 && classDropProb <= 1)) {
                throw new IllegalArgumentException("DiT classDropProb must be in [0, 1], got " + classDropProb);
            }
            if (numClasses == 0 && classDropProb != 0) {
                throw new IllegalArgumentException("DiT classDropProb must be 0 for an unconditional model, got "
                        + classDropProb);
            }
            if (frequencyDim < 1) {
                throw new IllegalArgumentException("DiT frequencyDim must be >= 1, got " + frequencyDim);
            }
            if (!(timeScale > 0 && Double.isFinite(timeScale))) {
                throw new IllegalArgumentException("DiT timeScale must be finite and > 0, got " + timeScale);
            }
            long grid = imageSize / patch;
            if (grid * grid * hidden > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("DiT imageSize " + imageSize + " with patch " + patch + " gives "
                        + grid * grid + " tokens of width " + hidden + ": beyond 2^31 - 1 elements per image");
            }
        }

        /**
         * This configuration for images of {@code size × size}: every trained tensor keeps its shape (the patch
         * embedding, the blocks and the final layer do not depend on the image size); only the fixed {@code pos_embed}
         * buffer, a function of the token grid, changes (fine-tuning at another resolution).
         *
         * @throws IllegalArgumentException when {@code patch} does not divide {@code size}
         */
        public Config withImageSize(int size) {
            return new Config(size, channels, patch, hidden, depth, heads, mlpRatio, numClasses, classDropProb,
                    frequencyDim, timeScale);
        }

        /**
         * Elements of the state dict this configuration gives (parameters and the {@code pos_embed} buffer), computed
         * without building the model: a loader compares it with a file before allocating the model.
         * {@link Long#MAX_VALUE} when the count does not fit a {@code long}.
         */
        public long stateDictNumel() {
            long d = hidden;
            long h = mlpHiddenWidth();
            try {                                                       // a forged configuration may overflow
                long out = Math.multiplyExact(Math.multiplyExact((long) patch, patch), channels);
                long block = Models.sum(linear(d, 3 * d), linear(d, d), linear(d, h), linear(h, d), linear(d, 6 * d));
                return Models.sum(linear(out, d),                       // x_embedder.proj
                        Math.multiplyExact((long) tokenCount(), d),     // pos_embed
                        linear(frequencyDim, d), linear(d, d),          // t_embedder.mlp.0, .2
                        conditional() ? Math.multiplyExact(numClasses + 1L, d) : 0,   // y_embedder.embedding_table
                        Math.multiplyExact(depth, block),
                        linear(d, out), linear(d, 2 * d));              // final_layer.linear, .adaLN_modulation.1
            } catch (ArithmeticException e) {
                return Long.MAX_VALUE;                                  // beyond any file
            }
        }

        /**
         * The reference's defaults for the rest: mlpRatio 4, classDropProb 0.1 when conditional (0 otherwise),
         * frequencyDim 256, timeScale 1000.
         */
        public static Config of(int imageSize, int channels, int patch, int hidden, int depth, int heads,
                                int numClasses) {
            return new Config(imageSize, channels, patch, hidden, depth, heads, 4.0, numClasses,
                    numClasses > 0 ? 0.1 : 0.0, TimestepEmbedder.DEFAULT_FREQUENCY_DIM, 1000.0);
        }

        /** Elements of a {@code Linear(in, out)} with bias, {@code in·out + out}, exactly. */
        private static long linear(long in, long out) {
            return Math.addExact(Math.multiplyExact(in, out), out);
        }

        /** Patches per side {@code imageSize/patch}. */
        public int gridSize() {
            return imageSize / patch;
        }

        /** Tokens {@code T = (imageSize/patch)²}. */
        public int tokenCount() {
            return gridSize() * gridSize();
        }

        /** MLP hidden width {@code int(hidden·mlpRatio)} (Python's truncation). */
        public int mlpHiddenWidth() {
            return (int) (hidden * mlpRatio);
        }

        /** Whether the model is class-conditional. */
        public boolean conditional() {
            return numClasses > 0;
        }
    }

    /** The reference's {@code LabelEmbedder}: child {@code embedding_table} {@code [numClasses + 1, D]}. */
    static final class LabelEmbedder extends Module {
        final Embedding table;

        LabelEmbedder(NnOps ops, TensorScope scope, int numClasses, long dim) {
            table = registerModule("embedding_table", new Embedding(ops, scope, numClasses + 1L, dim));
        }
    }

    /**
     * What {@link #backward} needs; {@link #out()} is the prediction {@code [B, C, H, W]}; {@code owner} is the model
     * whose forward made it and {@code consumed} whether a backward has used it (backward refuses another model's
     * pass and a second backward of one pass, whose saved activations the first one overwrote).
     *
     * <p>An opaque handle: the components are the saved activations, and {@link #backward} <b>consumes</b> them
     * (overwrites some in place). Do not modify them before the backward or read them after it; the block list is
     * an unmodifiable copy.
     */
    public record Cache(PatchEmbed.Cache patches, TimestepEmbedder.Cache time, Embedding.Cache label, Tensor c,
                        List<DiTBlock.Cache> blocks, FinalLayer.Cache last, Tensor out, DiT owner,
                        java.util.concurrent.atomic.AtomicBoolean consumed) implements Pass {

        /**
         * Copies {@code blocks} into an unmodifiable list.
         *
         * @throws NullPointerException when {@code blocks} or one of its entries is null
         */
        public Cache {
            blocks = List.copyOf(blocks);
        }

        /** {@code DiT pass (out ...)}: short, for messages (the components hold every activation). */
        @Override
        public String toString() {
            return "DiT pass (out " + out + ")";
        }
    }

    private final NnOps ops;
    private final Config config;
    private final PatchEmbed xEmbedder;
    private final TimestepEmbedder tEmbedder;
    private final LabelEmbedder yEmbedder;
    private final Tensor posEmbed;
    private final List<DiTBlock> blocks = new ArrayList<>();
    private final FinalLayer finalLayer;

    /**
     * A model whose parameters and buffer live in {@code scope}, initialised from {@code seed} as the class comment
     * says.
     *
     * @param ops       ops of the backend the model lives on
     * @param attention attention ops on the same device (the caller keeps ownership)
     * @param scope     owner of the parameters and the {@code pos_embed} buffer
     * @param config    the architecture
     * @param seed      seed of the initialisation (the same seed gives the same weights on every backend)
     * @throws NullPointerException     when an argument is null
     * @throws IllegalArgumentException when the ops and the attention ops are on different devices (checked before
     *                                  anything is allocated, whatever the depth)
     * @throws IllegalStateException    when {@code scope} is closed
     */
    public DiT(NnOps ops, AttentionOps attention, TensorScope scope, Config config, long seed) {
        this.ops = Objects.requireNonNull(ops, "ops");
        Objects.requireNonNull(attention, "attention");
        this.config = Objects.requireNonNull(config, "config");
        Objects.requireNonNull(scope, "scope");
        if (attention.backend() != ops.backend() && !attention.backend().device().equals(ops.backend().device())) {
            throw new IllegalArgumentException("DiT: attention ops on " + attention.backend().device()
                    + " but layer ops on " + ops.backend().device());
        }
        Backend be = ops.backend();
        int d = config.hidden();
        int t = config.tokenCount();
        xEmbedder = registerModule("x_embedder", new PatchEmbed(ops, scope, config.channels(), config.patch(), d));
        tEmbedder = registerModule("t_embedder", new TimestepEmbedder(ops, scope, d, config.frequencyDim(),
                TimestepEmbedder.DEFAULT_MAX_PERIOD));
        yEmbedder = config.conditional()
                ? registerModule("y_embedder", new LabelEmbedder(ops, scope, config.numClasses(), d)) : null;
        posEmbed = registerBuffer("pos_embed", be.fromArray(scope,
                SinCosPosEmbed.grid2d(d, config.gridSize(), config.gridSize()), 1, t, d));
        ModuleList list = registerModule("blocks", new ModuleList());
        for (int k = 0; k < config.depth(); k++) {
            blocks.add(list.add(new DiTBlock(ops, attention, scope, d, config.heads(), config.mlpHiddenWidth())));
        }
        long outFeatures = (long) config.patch() * config.patch() * config.channels();
        finalLayer = registerModule("final_layer", new FinalLayer(ops, scope, d, outFeatures));
        initialize(seed);
    }

    /** The reference's {@code initialize_weights} (see the class comment); zeros are already in place. */
    private void initialize(long seed) {
        Linear proj = xEmbedder.proj();
        Init.xavierUniform(proj.weight().value(), proj.in(), proj.out(), seed, 0);
        Init.normal(tEmbedder.fc1().weight().value(), 0.02, seed, 1);
        Init.normal(tEmbedder.fc2().weight().value(), 0.02, seed, 2);
        if (yEmbedder != null) {
            Init.normal(yEmbedder.table.weight().value(), 0.02, seed, 3);
        }
        for (int k = 0; k < blocks.size(); k++) {
            DiTBlock b = blocks.get(k);
            Linear[] ls = {b.attn().qkv(), b.attn().proj(), b.fc1(), b.fc2()};
            for (int j = 0; j < ls.length; j++) {
                Init.xavierUniform(ls[j].weight().value(), ls[j].in(), ls[j].out(), seed, 4L + 4L * k + j);
            }
        }
    }

    /** The architecture. */
    public Config config() {
        return config;
    }

    /** The blocks, in order. */
    public List<DiTBlock> blocks() {
        return List.copyOf(blocks);
    }

    /** The final layer. */
    public FinalLayer finalLayer() {
        return finalLayer;
    }

    /** The fixed position embedding {@code [1, T, D]} (the {@code pos_embed} buffer). */
    public Tensor posEmbed() {
        return posEmbed;
    }

    @Override
    public Module module() {
        return this;
    }

    /** {@code [C, H, W]}. */
    @Override
    public long[] sampleShape() {
        return new long[] {config.channels(), config.imageSize(), config.imageSize()};
    }

    @Override
    public int numClasses() {
        return config.numClasses();
    }

    /**
     * Classifier-free-guidance label dropout (Ho &amp; Salimans 2022, §3.2) with {@code classDropProb}: label
     * {@code b} becomes the null class {@code numClasses} when {@code Philox.uniform(seed, stream, b) <= classDropProb}
     * (the rule of {@link ClassEmbedder#dropLabels}); deterministic for a seed, independent of threads and device.
     *
     * @return a new array; the input is not modified
     * @throws IllegalArgumentException when the model is unconditional or a label is outside {@code [0, numClasses]}
     */
    public int[] dropLabels(int[] labels, long seed, long stream) {
        if (!config.conditional()) {
            throw new IllegalArgumentException("this DiT is unconditional (numClasses = 0): no labels to drop");
        }
        int[] out = checkLabels(labels, labels == null ? -1 : labels.length).clone();
        double p = config.classDropProb();
        if (p > 0) {
            for (int b = 0; b < out.length; b++) {
                if (Philox.uniform(seed, stream, b) <= p) {
                    out[b] = config.numClasses();
                }
            }
        }
        return out;
    }

    private int[] checkLabels(int[] labels, long batch) {
        return ClassLabels.check("DiT", config.numClasses(), labels, batch);
    }

    /**
     * Forward pass.
     *
     * @param scope  owner of the output and every saved activation
     * @param x      F32 contiguous {@code [B, C, H, W]} with the config's sizes
     * @param t      {@code B} model times (host), finite; embedded as {@code timeScale·t}
     * @param labels {@code B} labels in {@code [0, numClasses]} ({@code numClasses} = null class) for a conditional
     *               model, {@code null} for an unconditional one
     * @throws IllegalArgumentException on a shape mismatch, a non-finite time or a bad label, naming the value
     */
    @Override
    public Cache forward(TensorScope scope, Tensor x, double[] t, int[] labels) {
        Backend be = ops.backend();
        NnOps.checkTensor(be, "x", x, false);
        long[] want = {x.rank() > 0 ? x.shape(0) : -1, config.channels(), config.imageSize(), config.imageSize()};
        if (!Arrays.equals(x.shape(), want)) {
            throw new IllegalArgumentException("x " + x + " must be [B, " + config.channels() + ", "
                    + config.imageSize() + ", " + config.imageSize() + "]");
        }
        long batch = x.shape(0);
        Objects.requireNonNull(t, "t");
        if (t.length != batch) {
            throw new IllegalArgumentException(t.length + " times for a batch of " + batch);
        }
        checkLabels(labels, batch);
        double[] ts = new double[t.length];
        for (int b = 0; b < t.length; b++) {
            if (!Double.isFinite(t[b])) {
                throw new IllegalArgumentException("t[" + b + "] = " + t[b] + " is not finite");
            }
            ts[b] = config.timeScale() * t[b];
        }
        long d = config.hidden();
        long tokens = config.tokenCount();
        PatchEmbed.Cache pc = xEmbedder.forward(scope, x);                                   // [B, T, D]
        Tensor h = pc.out();
        ops.activation(Activation.IDENTITY, h.reshape(batch, tokens * d), posEmbed.reshape(tokens * d), null,
                h.reshape(batch, tokens * d));                                                // + pos_embed (in place)
        TimestepEmbedder.Cache tc = tEmbedder.forward(scope, ts);                           // [B, D]
        Tensor c = tc.out();
        Embedding.Cache yc = null;
        if (labels != null) {
            Tensor idx = be.empty(scope, DType.I32, batch);
            if (batch > 0) {
                idx.copyFrom(MemorySegment.ofArray(labels.clone()));
            }
            yc = yEmbedder.table.forward(scope, idx);                                         // [B, D]
            c = be.empty(scope, DType.F32, batch, d);
            be.binary(Ops.Binary.ADD, tc.out(), yc.out(), c);                                 // c = t_emb + y_emb
        }
        List<DiTBlock.Cache> caches = new ArrayList<>(blocks.size());
        for (DiTBlock blk : blocks) {
            DiTBlock.Cache bc = blk.forward(scope, h, c);
            caches.add(bc);
            h = bc.out();
        }
        FinalLayer.Cache fc = finalLayer.forward(scope, h, c);                               // [B, T, p·p·C]
        Tensor out = be.empty(scope, DType.F32, x.shape());
        Patchify.unpatchify(be, fc.out(), config.patch(), PatchLayout.CHANNEL_LAST, out);    // 'nhwpqc->nchpwq'
        return new Cache(pc, tc, yc, c, caches, fc, out, this, new java.util.concurrent.atomic.AtomicBoolean());
    }

    /**
     * Backward pass for {@code dOut [B, C, H, W]}: accumulates every parameter gradient (the buffer gets none; the
     * input is not differentiated). It consumes the pass (see {@link DiTBlock#backward}): call it once per
     * {@link #forward}; {@link Cache#out()} stays intact.
     *
     * @throws IllegalArgumentException when {@code pass} is not a pass of a DiT or {@code dOut} has the wrong shape
     */
    @Override
    public void backward(TensorScope scope, Pass pass, Tensor dOut) {
        if (!(pass instanceof Cache cache)) {
            throw new IllegalArgumentException("not a DiT pass: " + pass);
        }
        if (cache.owner() != this) {
            throw new IllegalArgumentException(cache + " comes from another DiT's forward; backward takes a pass of "
                    + "this model");
        }
        Backend be = ops.backend();
        NnOps.checkLike(be, "dOut", dOut, "out", cache.out(), false);
        if (!cache.consumed().compareAndSet(false, true)) {
            throw new IllegalArgumentException(cache + " was already used by a backward, which overwrites its saved "
                    + "activations: run forward again");
        }
        Tensor dv = be.empty(scope, DType.F32, cache.last().out().shape());                 // [B, T, p·p·C]
        Patchify.patchify(be, dOut, config.patch(), PatchLayout.CHANNEL_LAST, dv);
        FinalLayer.Grads g = finalLayer.backward(scope, cache.last(), dv);
        Tensor dh = g.dx();
        Tensor dc = g.dc();
        for (int k = blocks.size() - 1; k >= 0; k--) {
            DiTBlock.Grads bg = blocks.get(k).backward(scope, cache.blocks().get(k), dh);
            dh = bg.dx();
            be.binary(Ops.Binary.ADD, dc, bg.dc(), dc);
        }
        xEmbedder.backward(scope, cache.patches(), dh, false);
        tEmbedder.backward(scope, cache.time(), dc);
        if (cache.label() != null) {
            yEmbedder.table.backward(cache.label(), dc);
        }
    }

    /**
     * Evaluates the model on {@code xt [B, C, H, W]} (any shape of {@code B} samples of {@code C·H·W} values) at the
     * levels' times {@code t_b}.
     *
     * @param condition I32 {@code [B]} labels in {@code [0, numClasses]} for a conditional model, null otherwise
     * @throws IllegalArgumentException on a shape mismatch or a bad condition
     */
    @Override
    public void predict(Tensor xt, NoiseLevels levels, Tensor condition, Tensor out) {
        predict(xt, levels, condition, out, null);
    }

    /**
     * {@link #predict(Tensor, NoiseLevels, Tensor, Tensor)} with the activations taken from {@code scratch} (the
     * caller's, one call at a time; null: a scope of their own).
     */
    @Override
    public void predict(Tensor xt, NoiseLevels levels, Tensor condition, Tensor out, Workspace scratch) {
        Objects.requireNonNull(levels, "levels");
        int batch = levels.batch();
        checkSamples(xt, out, batch);
        int[] labels = readLabels(condition, batch);
        double[] t = times(levels, batch);
        Backend be = ops.backend();
        try (TensorScope tmp = scratch == null ? TensorScope.open() : TensorScope.open(scratch)) {
            Cache c = forward(tmp, xt.reshape(imageShape(batch)), t, labels);
            be.copy(c.out(), out.reshape(imageShape(batch)));
        }
    }

    /**
     * The conditional and unconditional predictions as one forward pass over a batch of {@code 2B} (the inputs
     * repeated, labels {@code cond} then {@code uncond}).
     *
     * @throws IllegalArgumentException on a shape mismatch or a bad condition (both conditions are required for a
     *                                  conditional model, both must be null for an unconditional one)
     */
    @Override
    public void predictGuided(Tensor xt, NoiseLevels levels, Tensor cond, Tensor uncond, Tensor outCond,
                              Tensor outUncond) {
        predictGuided(xt, levels, cond, uncond, outCond, outUncond, null);
    }

    /**
     * {@link #predictGuided(Tensor, NoiseLevels, Tensor, Tensor, Tensor, Tensor)} with the activations of the
     * {@code 2B} batch taken from {@code scratch} (the caller's, one call at a time; null: a scope of their own).
     */
    @Override
    public void predictGuided(Tensor xt, NoiseLevels levels, Tensor cond, Tensor uncond, Tensor outCond,
                              Tensor outUncond, Workspace scratch) {
        Objects.requireNonNull(levels, "levels");
        int batch = levels.batch();
        checkSamples(xt, outCond, batch);
        checkSamples(xt, outUncond, batch);
        int[] lc = readLabels(cond, batch);
        int[] lu = readLabels(uncond, batch);
        double[] t = times(levels, batch);
        double[] t2 = new double[2 * batch];
        System.arraycopy(t, 0, t2, 0, batch);
        System.arraycopy(t, 0, t2, batch, batch);
        int[] l2 = null;
        if (lc != null) {
            l2 = new int[2 * batch];
            System.arraycopy(lc, 0, l2, 0, batch);
            System.arraycopy(lu, 0, l2, batch, batch);
        }
        Backend be = ops.backend();
        try (TensorScope tmp = scratch == null ? TensorScope.open() : TensorScope.open(scratch)) {
            Tensor x2 = be.empty(tmp, DType.F32, imageShape(2 * batch));
            be.copy(xt.reshape(imageShape(batch)), x2.slice(0, 0, batch));
            be.copy(xt.reshape(imageShape(batch)), x2.slice(0, batch, 2L * batch));
            Cache c = forward(tmp, x2, t2, l2);
            be.copy(c.out().slice(0, 0, batch), outCond.reshape(imageShape(batch)));
            be.copy(c.out().slice(0, batch, 2L * batch), outUncond.reshape(imageShape(batch)));
        }
    }

    private long[] imageShape(long batch) {
        return new long[] {batch, config.channels(), config.imageSize(), config.imageSize()};
    }

    private void checkSamples(Tensor xt, Tensor out, int batch) {
        Backend be = ops.backend();
        NnOps.checkTensor(be, "xt", xt, false);
        NnOps.checkLike(be, "out", out, "xt", xt, false);
        long per = (long) config.channels() * config.imageSize() * config.imageSize();
        if (xt.rank() < 1 || xt.shape(0) != batch || xt.numel() != batch * per) {
            throw new IllegalArgumentException("xt " + xt + " must be [" + batch + ", ...] with " + per
                    + " values per sample (C·H·W)");
        }
    }

    private static double[] times(NoiseLevels levels, int batch) {
        double[] t = new double[batch];
        for (int b = 0; b < batch; b++) {
            t[b] = levels.t(b);
        }
        return t;
    }

    private int[] readLabels(Tensor condition, int batch) {
        return ClassLabels.read("DiT", config.numClasses(), ops.backend(), condition, batch);
    }

    @Override
    public String toString() {
        return "DiT" + config;
    }
}
