package org.diffusion4j.nn;

import org.diffusion4j.sampling.Denoiser;
import org.diffusion4j.sampling.NoiseLevels;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.diffusion4j.tensor.Workspace;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A time-conditioned residual MLP denoiser for low-dimensional data (points, tabular rows, short series flattened to
 * vectors): {@code [B, D]} in, {@code [B, D]} out, in whatever prediction type it is trained for.
 *
 * <pre>
 *   e   = TimestepEmbedder(timeScale·t) (+ table[y])          [B, H]   (t_embedder.mlp.{0,2},
 *                                                                       y_embedder.embedding_table [K+1, H])
 *   s   = SiLU(e)
 *   h   = in_proj(x)                                          [B, H]
 *   for each block k:                                                  (blocks.k)
 *       z = fc1(LayerNorm(h)) + t_proj(s)                     (norm, fc1, t_proj)
 *       h = h + fc2(SiLU(z))                                  (fc2)
 *   out = out_proj(SiLU(final_norm(h)))                       [B, D]   (final_norm, out_proj)
 * </pre>
 * A pre-norm residual MLP (He et al. 2016, "Identity mappings in deep residual networks") whose blocks receive the
 * time embedding additively, as the residual blocks of ADM (Dhariwal &amp; Nichol 2021) do. LayerNorms are affine
 * with {@code eps = 1e-5}; linears start with PyTorch's default init from a Philox seed.
 *
 * <p>With {@code numClasses = K > 0} it is class-conditional as DiT is (Peebles &amp; Xie 2023, §3.2: the class
 * embedding added to the time embedding), with the null class {@code K} for classifier-free guidance; as a
 * {@link Denoiser} it then takes an I32 {@code [B]} condition of labels in {@code [0, K]}, and
 * {@link #predictGuided} runs the conditional and unconditional halves as one batch. An unconditional model
 * ({@code K = 0}, no {@code y_embedder}) rejects a non-null condition. It evaluates on {@code xt [B, ...]} with
 * {@code numel/B = D}. For training call {@link #forward} and {@link #backward} directly;
 * gradients accumulate into the parameters.
 */
public final class MlpDenoiser extends Module implements DenoiserModel {

    /**
     * Architecture.
     *
     * @param dataDim      {@code D ≥ 1}
     * @param hidden       width {@code H ≥ 1}
     * @param blocks       residual blocks {@code ≥ 0}
     * @param frequencyDim sinusoidal feature size of the time embedding {@code ≥ 1}
     * @param timeScale    factor from model time {@code t ∈ [0, 1]} to the embedded time (e.g. 1000, DiT's range)
     * @param numClasses   real classes {@code K ≥ 0}; 0 = unconditional (configurations written before this field
     *                     existed read as 0)
     */
    public record Config(int dataDim, int hidden, int blocks, int frequencyDim, double timeScale, int numClasses) {

        /** Validates. */
        public Config {
            if (dataDim < 1 || hidden < 1 || blocks < 0 || frequencyDim < 1) {
                throw new IllegalArgumentException("MlpDenoiser config needs dataDim, hidden, frequencyDim >= 1 and "
                        + "blocks >= 0, got " + dataDim + ", " + hidden + ", " + frequencyDim + ", " + blocks);
            }
            if (numClasses < 0) {
                throw new IllegalArgumentException("MlpDenoiser numClasses must be >= 0 (0 = unconditional), got "
                        + numClasses);
            }
            if (!(timeScale > 0 && Double.isFinite(timeScale))) {
                throw new IllegalArgumentException("timeScale must be finite and > 0, got " + timeScale);
            }
        }

        /** An unconditional model. */
        public Config(int dataDim, int hidden, int blocks, int frequencyDim, double timeScale) {
            this(dataDim, hidden, blocks, frequencyDim, timeScale, 0);
        }

        /** Frequency dim 64 and time scale 1000, unconditional. */
        public static Config of(int dataDim, int hidden, int blocks) {
            return new Config(dataDim, hidden, blocks, 64, 1000.0, 0);
        }

        /** This configuration with {@code numClasses} classes. */
        public Config withClasses(int numClasses) {
            return new Config(dataDim, hidden, blocks, frequencyDim, timeScale, numClasses);
        }

        /**
         * Elements of the state dict this configuration gives, computed without building the model: a loader
         * compares it with a file before allocating the model. {@link Long#MAX_VALUE} when the count does not fit a
         * {@code long}.
         */
        public long stateDictNumel() {
            long h = hidden;
            try {                                                       // a forged configuration may overflow
                long lin = Math.addExact(Math.multiplyExact(h, h), h);
                long block = Models.sum(2 * h, lin, lin, lin);          // norm, fc1, t_proj, fc2
                return Models.sum(Math.multiplyExact((long) frequencyDim, h), h, lin,   // t_embedder.mlp.0, .2
                        conditional() ? Math.multiplyExact(numClasses + 1L, h) : 0,    // y_embedder.embedding_table
                        Math.multiplyExact((long) dataDim, h), h,                      // in_proj
                        Math.multiplyExact(blocks, block),
                        2 * h,                                                          // final_norm
                        Math.multiplyExact(h, (long) dataDim), dataDim);               // out_proj
            } catch (ArithmeticException e) {
                return Long.MAX_VALUE;                                  // beyond any file
            }
        }

        /** Whether the model is class-conditional. */
        public boolean conditional() {
            return numClasses > 0;
        }
    }

    /**
     * One residual block (children {@code norm}, {@code fc1}, {@code t_proj}, {@code fc2}). Public for the
     * state-dict structure only; it has no API of its own (the model runs it).
     */
    public static final class Block extends Module {
        final LayerNorm norm;
        final Linear fc1;
        final Linear tProj;
        final Linear fc2;

        Block(NnOps ops, TensorScope scope, int hidden) {
            norm = registerModule("norm", new LayerNorm(ops, scope, hidden, 1e-5f, true));
            fc1 = registerModule("fc1", new Linear(ops, scope, hidden, hidden, true));
            tProj = registerModule("t_proj", new Linear(ops, scope, hidden, hidden, true));
            fc2 = registerModule("fc2", new Linear(ops, scope, hidden, hidden, true));
        }
    }

    /** Saved activations of one block: an opaque part of {@link Cache}, consumed by {@link #backward}. */
    public record BlockCache(LayerNorm.Cache norm, Linear.Cache fc1, Linear.Cache tProj, Tensor z, Tensor act,
                             Linear.Cache fc2) {
    }

    /**
     * Everything {@link #backward} needs; {@link #out()} is the prediction {@code [B, D]}; {@code owner} is the model
     * whose forward made it (backward refuses another model's pass).
     *
     * <p>An opaque handle: the components are the saved activations for {@link #backward}; do not modify them
     * before it. The block list is an unmodifiable copy.
     */
    public record Cache(TimestepEmbedder.Cache time, Embedding.Cache label, Tensor e, Tensor s, Linear.Cache in,
                        List<BlockCache> blocks, LayerNorm.Cache finalNorm, Tensor finalAct, Linear.Cache outProj,
                        MlpDenoiser owner)
            implements Pass {

        /**
         * Copies {@code blocks} into an unmodifiable list.
         *
         * @throws NullPointerException when {@code blocks} or one of its entries is null
         */
        public Cache {
            blocks = List.copyOf(blocks);
        }

        /** The prediction {@code [B, D]}. */
        @Override
        public Tensor out() {
            return outProj.out();
        }

        /** {@code MlpDenoiser pass (out ...)}: short, for messages (the components hold every activation). */
        @Override
        public String toString() {
            return "MlpDenoiser pass (out " + out() + ")";
        }
    }

    private final NnOps ops;
    private final Config config;
    private final TimestepEmbedder tEmbedder;
    private final DiT.LabelEmbedder yEmbedder;
    private final Linear inProj;
    private final List<Block> blocks = new ArrayList<>();
    private final LayerNorm finalNorm;
    private final Linear outProj;

    /**
     * A model whose parameters live in {@code scope}, initialised from {@code seed}: every linear with PyTorch's
     * default {@link Init#linearDefault} on Philox streams {@code 2k, 2k + 1} (k-th linear in parameter order),
     * LayerNorms at γ = 1, β = 0.
     */
    public MlpDenoiser(NnOps ops, TensorScope scope, Config config, long seed) {
        this.ops = Objects.requireNonNull(ops, "ops");
        this.config = Objects.requireNonNull(config, "config");
        int h = config.hidden();
        tEmbedder = registerModule("t_embedder", new TimestepEmbedder(ops, scope, h, config.frequencyDim(), 10000));
        yEmbedder = config.conditional()
                ? registerModule("y_embedder", new DiT.LabelEmbedder(ops, scope, config.numClasses(), h)) : null;
        inProj = registerModule("in_proj", new Linear(ops, scope, config.dataDim(), h, true));
        ModuleList list = registerModule("blocks", new ModuleList());
        for (int k = 0; k < config.blocks(); k++) {
            blocks.add(list.add(new Block(ops, scope, h)));
        }
        finalNorm = registerModule("final_norm", new LayerNorm(ops, scope, h, 1e-5f, true));
        outProj = registerModule("out_proj", new Linear(ops, scope, h, config.dataDim(), true));
        List<Linear> linears = new ArrayList<>(List.of(tEmbedder.fc1(), tEmbedder.fc2(), inProj));
        for (Block b : blocks) {
            linears.addAll(List.of(b.fc1, b.tProj, b.fc2));
        }
        linears.add(outProj);
        for (int k = 0; k < linears.size(); k++) {
            Init.linearDefault(linears.get(k), seed, 2L * k);
        }
        if (yEmbedder != null) {
            Init.normal(yEmbedder.table.weight().value(), 0.02, seed, CLASS_TABLE_STREAM);   // as DiT's table
        }
    }

    /** The architecture. */
    public Config config() {
        return config;
    }

    @Override
    public Module module() {
        return this;
    }

    /** {@code [D]}. */
    @Override
    public long[] sampleShape() {
        return new long[] {config.dataDim()};
    }

    /** Philox stream of the class table's initial values (above every linear's {@code 2k, 2k + 1}). */
    static final long CLASS_TABLE_STREAM = 1L << 40;

    /** {@code K}, 0 when unconditional. */
    @Override
    public int numClasses() {
        return config.numClasses();
    }

    /**
     * Forward pass for inputs {@code [B, D]} with class labels.
     *
     * @param labels {@code B} labels in {@code [0, numClasses]} ({@code numClasses} = null class) for a conditional
     *               model, null for an unconditional one
     * @throws IllegalArgumentException when labels are missing, given to an unconditional model or out of range, or
     *                                  see {@link #forward(TensorScope, Tensor, double[])}
     */
    @Override
    public Cache forward(TensorScope scope, Tensor x, double[] t, int[] labels) {
        if (!config.conditional()) {
            if (labels != null) {
                throw new IllegalArgumentException("MlpDenoiser is unconditional; got " + labels.length + " labels");
            }
            return forward(scope, x, t);
        }
        if (labels == null) {
            throw new IllegalArgumentException("this MlpDenoiser is class-conditional (numClasses = "
                    + config.numClasses() + "): labels are required");
        }
        return forwardWith(scope, x, t, checkLabels(labels, t.length));
    }

    private int[] checkLabels(int[] labels, int batch) {
        return ClassLabels.check("MlpDenoiser", config.numClasses(), labels, batch);
    }

    /**
     * {@link #backward(TensorScope, Cache, Tensor)} for a pass of this model.
     *
     * @throws IllegalArgumentException when {@code pass} is not an {@link MlpDenoiser} pass
     */
    @Override
    public void backward(TensorScope scope, Pass pass, Tensor dOut) {
        if (!(pass instanceof Cache c)) {
            throw new IllegalArgumentException("not an MlpDenoiser pass: " + pass);
        }
        backward(scope, c, dOut);
    }

    /**
     * Forward pass.
     *
     * @param scope owner of the output and every saved activation
     * @param x     F32 contiguous {@code [B, D]}
     * @param t     model times {@code t_b} (host), {@code B} values; embedded as {@code timeScale·t_b}
     * @throws IllegalArgumentException on a shape mismatch or a non-finite time
     */
    public Cache forward(TensorScope scope, Tensor x, double[] t) {
        if (config.conditional()) {
            throw new IllegalArgumentException("this MlpDenoiser is class-conditional: use forward(scope, x, t, "
                    + "labels)");
        }
        return forwardWith(scope, x, t, null);
    }

    private Cache forwardWith(TensorScope scope, Tensor x, double[] t, int[] labels) {
        Backend be = ops.backend();
        NnOps.checkTensor(be, "x", x, false);
        if (x.rank() != 2 || x.shape(1) != config.dataDim()) {
            throw new IllegalArgumentException("x " + x + " must be [B, " + config.dataDim() + "]");
        }
        long batch = x.shape(0);
        if (t.length != batch) {
            throw new IllegalArgumentException(t.length + " times for a batch of " + batch);
        }
        double[] ts = new double[t.length];
        for (int b = 0; b < t.length; b++) {
            ts[b] = config.timeScale() * t[b];
        }
        long h = config.hidden();
        TimestepEmbedder.Cache time = tEmbedder.forward(scope, ts);
        Tensor e = time.out();
        Embedding.Cache label = null;
        if (labels != null) {
            label = yEmbedder.table.forward(scope, be.fromArray(scope, labels.clone(), batch));   // [B, H]
            e = be.empty(scope, DType.F32, batch, h);
            be.binary(Ops.Binary.ADD, time.out(), label.out(), e);                 // e = t_emb + y_emb
        }
        Tensor s = be.empty(scope, DType.F32, batch, h);
        ops.activation(Activation.SILU, e, null, null, s);                         // s = SiLU(e)
        Linear.Cache in = inProj.forward(scope, x);
        Tensor hid = in.out();
        List<BlockCache> caches = new ArrayList<>(blocks.size());
        for (Block blk : blocks) {
            LayerNorm.Cache nc = blk.norm.forward(scope, hid);
            Linear.Cache c1 = blk.fc1.forward(scope, nc.out());
            Linear.Cache ct = blk.tProj.forward(scope, s);
            Tensor z = be.empty(scope, DType.F32, batch, h);
            be.binary(Ops.Binary.ADD, c1.out(), ct.out(), z);                    // z = fc1(n) + t_proj(s)
            Tensor a = be.empty(scope, DType.F32, batch, h);
            ops.activation(Activation.SILU, z, null, null, a);
            Linear.Cache c2 = blk.fc2.forward(scope, a);
            Tensor next = be.empty(scope, DType.F32, batch, h);
            Residual.add(be, hid, c2.out(), next);                                // h + fc2(SiLU(z))
            caches.add(new BlockCache(nc, c1, ct, z, a, c2));
            hid = next;
        }
        LayerNorm.Cache fn = finalNorm.forward(scope, hid);
        Tensor fa = be.empty(scope, DType.F32, batch, h);
        ops.activation(Activation.SILU, fn.out(), null, null, fa);
        Linear.Cache o = outProj.forward(scope, fa);
        return new Cache(time, label, e, s, in, caches, fn, fa, o, this);
    }

    /**
     * Backward pass for {@code dOut [B, D]} (the gradient of the loss w.r.t. {@link Cache#out()}): accumulates
     * every parameter gradient. The input is not differentiated.
     *
     * @throws IllegalArgumentException when {@code cache} comes from another model's forward
     */
    public void backward(TensorScope scope, Cache cache, Tensor dOut) {
        Objects.requireNonNull(cache, "cache");
        if (cache.owner() != this) {
            throw new IllegalArgumentException(cache + " comes from another MlpDenoiser's forward; backward takes a "
                    + "pass of this model");
        }
        Backend be = ops.backend();
        long batch = cache.out().shape(0);
        long h = config.hidden();
        Tensor dfa = outProj.backward(scope, cache.outProj(), dOut, true);
        Tensor dfn = be.empty(scope, DType.F32, batch, h);
        ops.activationBackward(Activation.SILU, cache.finalNorm().out(), dfa, dfn);
        Tensor dh = finalNorm.backward(scope, cache.finalNorm(), dfn);
        Tensor ds = be.zeros(scope, DType.F32, batch, h);
        for (int k = blocks.size() - 1; k >= 0; k--) {
            Block blk = blocks.get(k);
            BlockCache c = cache.blocks().get(k);
            Tensor da = blk.fc2.backward(scope, c.fc2(), dh, true);                 // residual branch gets dh
            Tensor dz = be.empty(scope, DType.F32, batch, h);
            ops.activationBackward(Activation.SILU, c.z(), da, dz);
            Tensor dsk = blk.tProj.backward(scope, c.tProj(), dz, true);
            be.binary(Ops.Binary.ADD, ds, dsk, ds);
            Tensor dn = blk.fc1.backward(scope, c.fc1(), dz, true);
            Tensor dhn = blk.norm.backward(scope, c.norm(), dn);
            Tensor sum = be.empty(scope, DType.F32, batch, h);
            be.binary(Ops.Binary.ADD, dh, dhn, sum);                               // skip + branch
            dh = sum;
        }
        inProj.backward(scope, cache.in(), dh, false);
        Tensor de = be.empty(scope, DType.F32, batch, h);
        ops.activationBackward(Activation.SILU, cache.e(), ds, de);
        tEmbedder.backward(scope, cache.time(), de);
        if (cache.label() != null) {
            yEmbedder.table.backward(cache.label(), de);
        }
    }

    /**
     * Evaluates the model on {@code xt [B, ...]} ({@code numel/B = D}) at the levels' times {@code t_b}.
     *
     * @param xt        F32 samples {@code [B, ...]}, {@code D} values each, contiguous, on this model's backend
     * @param levels    the noise levels; {@code B = levels.batch()}
     * @param condition I32 {@code [B]} labels in {@code [0, numClasses]} ({@code numClasses} = the null class) for a
     *                  class-conditional model ({@code numClasses > 0}); null for an unconditional one
     * @param out       F32 output of {@code xt}'s shape, overwritten with the prediction
     * @throws NullPointerException     when {@code levels} is null
     * @throws IllegalArgumentException on a shape or dtype mismatch of {@code xt}/{@code out}, or a bad condition:
     *                                  missing for a conditional model, given to an unconditional one, not I32
     *                                  {@code [B]}, or a label outside {@code [0, numClasses]}
     */
    @Override
    public void predict(Tensor xt, NoiseLevels levels, Tensor condition, Tensor out) {
        predict(xt, levels, condition, out, null);
    }

    /**
     * {@link #predict(Tensor, NoiseLevels, Tensor, Tensor)} with the activations taken from {@code scratch} (the
     * caller's, one call at a time; null: a scope of their own).
     *
     * @throws NullPointerException     when {@code levels} is null
     * @throws IllegalArgumentException as {@link #predict(Tensor, NoiseLevels, Tensor, Tensor)}
     */
    @Override
    public void predict(Tensor xt, NoiseLevels levels, Tensor condition, Tensor out, Workspace scratch) {
        Objects.requireNonNull(levels, "levels");
        Backend be = ops.backend();
        int batch = levels.batch();
        checkSamples(xt, out, batch);
        int[] labels = readLabels(condition, batch);
        try (TensorScope tmp = scratch == null ? TensorScope.open() : TensorScope.open(scratch)) {
            Cache c = forwardWith(tmp, xt.reshape(batch, config.dataDim()), times(levels, batch), labels);
            be.copy(c.out(), out.reshape(batch, config.dataDim()));
        }
    }

    /**
     * The conditional and unconditional predictions as one forward pass over a batch of {@code 2B} (the inputs
     * repeated, labels {@code cond} then {@code uncond}); an unconditional model takes null conditions (and
     * computes one prediction, copied to both outputs).
     *
     * @param xt        F32 samples {@code [B, ...]}, {@code D} values each, contiguous, on this model's backend
     * @param levels    the noise levels; {@code B = levels.batch()}
     * @param cond      I32 {@code [B]} labels in {@code [0, numClasses]} for a conditional model, null otherwise
     * @param uncond    I32 {@code [B]} labels (usually all {@code numClasses}, the null class) for a conditional
     *                  model, null otherwise
     * @param outCond   F32 output of {@code xt}'s shape: the prediction with {@code cond}
     * @param outUncond F32 output of {@code xt}'s shape: the prediction with {@code uncond}
     * @param scratch   where the activations of the {@code 2B} batch are taken from (one call at a time), or null
     * @throws NullPointerException     when {@code levels} is null
     * @throws IllegalArgumentException on a shape or dtype mismatch, or a bad condition (both conditions are
     *                                  required for a conditional model, both must be null for an unconditional
     *                                  one; labels as for {@link #predict(Tensor, NoiseLevels, Tensor, Tensor)})
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
        if (lc == null) {                                   // unconditional: both halves are the same prediction
            predict(xt, levels, null, outCond, scratch);
            ops.backend().copy(outCond, outUncond);
            return;
        }
        double[] t = times(levels, batch);
        double[] t2 = new double[2 * batch];
        System.arraycopy(t, 0, t2, 0, batch);
        System.arraycopy(t, 0, t2, batch, batch);
        int[] l2 = new int[2 * batch];
        System.arraycopy(lc, 0, l2, 0, batch);
        System.arraycopy(lu, 0, l2, batch, batch);
        Backend be = ops.backend();
        int d = config.dataDim();
        try (TensorScope tmp = scratch == null ? TensorScope.open() : TensorScope.open(scratch)) {
            Tensor x2 = be.empty(tmp, DType.F32, 2L * batch, d);
            be.copy(xt.reshape(batch, d), x2.slice(0, 0, batch));
            be.copy(xt.reshape(batch, d), x2.slice(0, batch, 2L * batch));
            Cache c = forwardWith(tmp, x2, t2, l2);
            be.copy(c.out().slice(0, 0, batch), outCond.reshape(batch, d));
            be.copy(c.out().slice(0, batch, 2L * batch), outUncond.reshape(batch, d));
        }
    }

    /**
     * {@link #predictGuided(Tensor, NoiseLevels, Tensor, Tensor, Tensor, Tensor, Workspace)} with a scope of its own
     * for the activations.
     *
     * @throws NullPointerException     when {@code levels} is null
     * @throws IllegalArgumentException on a shape or dtype mismatch, or a bad condition
     */
    @Override
    public void predictGuided(Tensor xt, NoiseLevels levels, Tensor cond, Tensor uncond, Tensor outCond,
                              Tensor outUncond) {
        predictGuided(xt, levels, cond, uncond, outCond, outUncond, null);
    }

    private void checkSamples(Tensor xt, Tensor out, int batch) {
        Backend be = ops.backend();
        NnOps.checkTensor(be, "xt", xt, false);
        NnOps.checkLike(be, "out", out, "xt", xt, false);
        if (xt.rank() < 1 || xt.shape(0) != batch || xt.numel() != (long) batch * config.dataDim()) {
            throw new IllegalArgumentException("xt " + xt + " must be [" + batch + ", ...] with " + config.dataDim()
                    + " values per sample");
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
        return ClassLabels.read("MlpDenoiser", config.numClasses(), ops.backend(), condition, batch);
    }
}
