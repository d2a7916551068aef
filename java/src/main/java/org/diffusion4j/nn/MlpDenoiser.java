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
 *   e   = TimestepEmbedder(timeScale·t)                       [B, H]   (t_embedder.mlp.{0,2})
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
 * <p>As a {@link Denoiser} it is unconditional (a non-null condition is rejected) and evaluates on
 * {@code xt [B, ...]} with {@code numel/B = D}. For training call {@link #forward} and {@link #backward} directly;
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
     */
    public record Config(int dataDim, int hidden, int blocks, int frequencyDim, double timeScale) {

        /** Validates. */
        public Config {
            if (dataDim < 1 || hidden < 1 || blocks < 0 || frequencyDim < 1) {
                throw new IllegalArgumentException("MlpDenoiser config needs dataDim, hidden, frequencyDim >= 1 and "
                        + "blocks >= 0, got " + dataDim + ", " + hidden + ", " + frequencyDim + ", " + blocks);
            }
            if (!(timeScale > 0 && Double.isFinite(timeScale))) {
                throw new IllegalArgumentException("timeScale must be finite and > 0, got " + timeScale);
            }
        }

        /** Frequency dim 64 and time scale 1000. */
        public static Config of(int dataDim, int hidden, int blocks) {
            return new Config(dataDim, hidden, blocks, 64, 1000.0);
        }
    }

    /** One residual block (children {@code norm}, {@code fc1}, {@code t_proj}, {@code fc2}). */
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

    /** Saved activations of one block. */
    public record BlockCache(LayerNorm.Cache norm, Linear.Cache fc1, Linear.Cache tProj, Tensor z, Tensor act,
                             Linear.Cache fc2) {
    }

    /** Everything {@link #backward} needs; {@link #out()} is the prediction {@code [B, D]}. */
    public record Cache(TimestepEmbedder.Cache time, Tensor s, Linear.Cache in, List<BlockCache> blocks,
                        LayerNorm.Cache finalNorm, Tensor finalAct, Linear.Cache outProj) implements Pass {
        /** The prediction {@code [B, D]}. */
        @Override
        public Tensor out() {
            return outProj.out();
        }
    }

    private final NnOps ops;
    private final Config config;
    private final TimestepEmbedder tEmbedder;
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

    /** 0: this model is unconditional. */
    @Override
    public int numClasses() {
        return 0;
    }

    /**
     * {@link #forward(TensorScope, Tensor, double[])} for inputs {@code [B, D]}.
     *
     * @throws IllegalArgumentException when {@code labels} is not null (the model is unconditional), or see there
     */
    @Override
    public Cache forward(TensorScope scope, Tensor x, double[] t, int[] labels) {
        if (labels != null) {
            throw new IllegalArgumentException("MlpDenoiser is unconditional; got " + labels.length + " labels");
        }
        return forward(scope, x, t);
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
        Tensor s = be.empty(scope, DType.F32, batch, h);
        ops.activation(Activation.SILU, time.out(), null, null, s);                // s = SiLU(e)
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
        return new Cache(time, s, in, caches, fn, fa, o);
    }

    /**
     * Backward pass for {@code dOut [B, D]} (the gradient of the loss w.r.t. {@link Cache#out()}): accumulates
     * every parameter gradient. The input is not differentiated.
     */
    public void backward(TensorScope scope, Cache cache, Tensor dOut) {
        Objects.requireNonNull(cache, "cache");
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
        ops.activationBackward(Activation.SILU, cache.time().out(), ds, de);
        tEmbedder.backward(scope, cache.time(), de);
    }

    /**
     * Evaluates the model on {@code xt [B, ...]} ({@code numel/B = D}) at the levels' times {@code t_b}.
     *
     * @throws IllegalArgumentException when {@code condition} is not null, or on a shape mismatch
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
        if (condition != null) {
            throw new IllegalArgumentException("MlpDenoiser is unconditional; got condition " + condition);
        }
        Backend be = ops.backend();
        NnOps.checkTensor(be, "xt", xt, false);
        NnOps.checkLike(be, "out", out, "xt", xt, false);
        int batch = levels.batch();
        if (xt.rank() < 1 || xt.shape(0) != batch || xt.numel() != (long) batch * config.dataDim()) {
            throw new IllegalArgumentException("xt " + xt + " must be [" + batch + ", ...] with " + config.dataDim()
                    + " values per sample");
        }
        double[] t = new double[batch];
        for (int b = 0; b < batch; b++) {
            t[b] = levels.t(b);
        }
        try (TensorScope tmp = scratch == null ? TensorScope.open() : TensorScope.open(scratch)) {
            Cache c = forward(tmp, xt.reshape(batch, config.dataDim()), t);
            be.copy(c.out(), out.reshape(batch, config.dataDim()));
        }
    }
}
