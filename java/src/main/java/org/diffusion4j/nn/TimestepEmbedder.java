package org.diffusion4j.nn;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Objects;

/**
 * Timestep embedding of the reference DiT ({@code TimestepEmbedder}; the sinusoidal features of ADM, Dhariwal &amp;
 * Nichol 2021, and of the Transformer, Vaswani et al. 2017, §3.5): sinusoidal features of the scalar time followed
 * by {@code Linear(F → H) – SiLU – Linear(H → H)}, parameters {@code mlp.0.*} and {@code mlp.2.*} (the SiLU is
 * {@code mlp.1}). The first linear and the SiLU run as one fused pass.
 *
 * <p>The time is used as given: DiT feeds integer timesteps {@code 0..999}; with this library's {@code t ∈ [0, 1]}
 * pass {@code 1000·t} for the same frequency range.
 */
public final class TimestepEmbedder extends Module {

    /** DiT's frequency dim. */
    public static final int DEFAULT_FREQUENCY_DIM = 256;
    /** DiT's (and the Transformer's) maximum period. */
    public static final double DEFAULT_MAX_PERIOD = 10000;

    private final NnOps ops;
    private final int frequencyDim;
    private final double maxPeriod;
    private final Linear fc1;
    private final Linear fc2;

    /** What backward needs. */
    public record Cache(Tensor features, Linear.Cache fc1, Linear.Cache fc2) {
        /** The embeddings {@code [B, H]}. */
        public Tensor out() {
            return fc2.out();
        }
    }

    /** DiT's embedder: frequency dim 256, max period 10000. */
    public TimestepEmbedder(NnOps ops, TensorScope scope, long hidden) {
        this(ops, scope, hidden, DEFAULT_FREQUENCY_DIM, DEFAULT_MAX_PERIOD);
    }

    /**
     * @param hidden       output size {@code H ≥ 1} (the model width, {@code DiT.Config.hidden}: the {@code dim} of
     *                     the blocks and layers it feeds)
     * @param frequencyDim sinusoidal feature size {@code F ≥ 1}
     * @param maxPeriod    longest period {@code > 0}
     * @throws IllegalArgumentException naming the bad value
     */
    public TimestepEmbedder(NnOps ops, TensorScope scope, long hidden, int frequencyDim, double maxPeriod) {
        this.ops = Objects.requireNonNull(ops, "ops");
        if (hidden < 1 || frequencyDim < 1) {
            throw new IllegalArgumentException("TimestepEmbedder needs hidden >= 1 and frequencyDim >= 1, got "
                    + hidden + " and " + frequencyDim);
        }
        if (!(maxPeriod > 0 && Double.isFinite(maxPeriod))) {
            throw new IllegalArgumentException("max period must be finite and > 0, got " + maxPeriod);
        }
        this.frequencyDim = frequencyDim;
        this.maxPeriod = maxPeriod;
        ModuleList mlp = registerModule("mlp", new ModuleList());
        fc1 = mlp.add(new Linear(ops, scope, frequencyDim, hidden, true));
        mlp.add(new SiLU(ops));
        fc2 = mlp.add(new Linear(ops, scope, hidden, hidden, true));
    }

    /** The first linear ({@code mlp.0}). */
    public Linear fc1() {
        return fc1;
    }

    /** The second linear ({@code mlp.2}). */
    public Linear fc2() {
        return fc2;
    }

    /** {@code F}. */
    public int frequencyDim() {
        return frequencyDim;
    }

    /**
     * Sinusoidal features {@code [B, dim]} row-major: with {@code h = ⌊dim/2⌋} and
     * {@code f_i = exp(−ln(maxPeriod)·i/h)}, row {@code b} is {@code cos(t_b f_0..f_{h−1})}, then
     * {@code sin(t_b f_0..f_{h−1})}, then a 0 when {@code dim} is odd (DiT's {@code timestep_embedding}). Computed
     * in float64 and rounded once (PyTorch computes the arguments in float32, which differs by up to about
     * {@code 1e-4} at {@code t ≈ 1000}).
     *
     * @throws IllegalArgumentException for a non-finite time, {@code dim < 1} or a bad period
     */
    public static float[] sinusoidal(double[] t, int dim, double maxPeriod) {
        Objects.requireNonNull(t, "t");
        if (dim < 1) {
            throw new IllegalArgumentException("embedding dim must be >= 1, got " + dim);
        }
        if (!(maxPeriod > 0 && Double.isFinite(maxPeriod))) {
            throw new IllegalArgumentException("max period must be finite and > 0, got " + maxPeriod);
        }
        int half = dim / 2;
        float[] out = new float[Math.multiplyExact(t.length, dim)];
        for (int b = 0; b < t.length; b++) {
            if (!Double.isFinite(t[b])) {
                throw new IllegalArgumentException("t[" + b + "] = " + t[b] + " is not finite");
            }
            for (int i = 0; i < half; i++) {
                double arg = t[b] * Math.exp(-Math.log(maxPeriod) * i / half);
                out[b * dim + i] = (float) Math.cos(arg);
                out[b * dim + half + i] = (float) Math.sin(arg);
            }
        }
        return out;
    }

    /**
     * Embeds the times {@code t [B]} (host values) into {@code [B, H]}.
     *
     * @param scope the scope of the outputs
     * @param t     the times as the model embeds them, on the caller's scale, not this library's
     *              {@code t ∈ [0, 1]}: the models pass {@code timeScale·t} (e.g. {@code 1000·t}, DiT's timestep
     *              range); each finite
     * @return the cache; {@link Cache#out()} is F32 {@code [B, H]}
     * @throws NullPointerException     when {@code t} is null
     * @throws IllegalArgumentException naming the position and value of a non-finite time
     * @throws IllegalStateException    when a scope is closed
     */
    public Cache forward(TensorScope scope, double[] t) {
        Backend be = ops.backend();
        Tensor feat = be.fromArray(scope, sinusoidal(t, frequencyDim, maxPeriod), t.length, frequencyDim);
        Linear.Cache c1 = fc1.forward(scope, feat, Activation.SILU);
        Linear.Cache c2 = fc2.forward(scope, c1.out());
        return new Cache(feat, c1, c2);
    }

    /**
     * Accumulates the parameter gradients for {@code dy [B, H]} (times are not differentiated).
     *
     * @param scope the scope of temporaries
     * @param cache this layer's {@link #forward} cache
     * @param dy    upstream gradient, F32 {@code [B, H]}
     * @throws NullPointerException     when {@code cache} is null
     * @throws IllegalArgumentException when {@code dy} is not an F32 contiguous {@code [B, H]} tensor on this layer's
     *                                  backend
     * @throws IllegalStateException    when a scope is closed
     */
    public void backward(TensorScope scope, Cache cache, Tensor dy) {
        Objects.requireNonNull(cache, "cache");
        Tensor dh = fc2.backward(scope, cache.fc2(), dy, true);
        fc1.backward(scope, cache.fc1(), dh, false);
    }
}
