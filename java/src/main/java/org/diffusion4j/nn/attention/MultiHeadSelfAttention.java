package org.diffusion4j.nn.attention;

import org.diffusion4j.nn.Linear;
import org.diffusion4j.nn.Module;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Objects;

/**
 * Multi-head self-attention (Vaswani et al. 2017, §3.2.2) in the layout of timm's {@code Attention}, which the
 * reference DiT (Peebles &amp; Xie 2023) uses in every block: one fused projection {@code qkv} ({@code Linear(D, 3D)},
 * parameters {@code qkv.weight [3D, D]}, {@code qkv.bias [3D]}), split into heads, scaled dot-product attention
 * with {@code scale = 1/√Dh} through {@link AttentionOps}, heads merged, and the output projection {@code proj}
 * ({@code Linear(D, D)}, {@code proj.weight [D, D]}, {@code proj.bias [D]}). The state-dict names are those of
 * timm, so {@code blocks.N.attn.qkv.weight} etc. load unchanged.
 *
 * <pre>
 *   x [B, T, D] → qkv = x·W_qkvᵀ + b_qkv  [B, T, 3D] = [B, T, 3, H, Dh]
 *               → permute to [3, B, H, T, Dh]; q, k, v = its three [B, H, T, Dh] slices
 *               → o = softmax(scale·q·kᵀ)·v  [B, H, T, Dh]   (+ lse [B, H, T] for backward)
 *               → permute to [B, T, H, Dh] = [B, T, D] → y = o·W_projᵀ + b_proj  [B, T, D]
 * </pre>
 * The two permutations are strided copies ({@link Backend#copy}); the attention never forms a {@code T×T} matrix
 * on the CPU ({@link org.diffusion4j.cpu.CpuAttention}). Backward runs the same steps in reverse; parameter
 * gradients are <b>added</b> to (see {@link org.diffusion4j.nn.Parameter}).
 */
public final class MultiHeadSelfAttention extends Module {

    private final AttentionOps attention;
    private final long dim;
    private final long heads;
    private final long headDim;
    private final float scale;
    private final Linear qkv;
    private final Linear proj;

    /**
     * What {@link #backward} needs, owned by the scope given to {@link #forward}.
     *
     * @param qkv   the {@code qkv} projection's cache
     * @param qkvHeads {@code q, k, v} as {@code [3, B, H, T, Dh]}
     * @param o     the attention output {@code [B, H, T, Dh]} before the merge
     * @param lse   the attention's log-sum-exp {@code [B, H, T]}
     * @param proj  the output projection's cache ({@code proj.out()} is the layer's output {@code [B, T, D]})
     */
    public record Cache(Linear.Cache qkv, Tensor qkvHeads, Tensor o, Tensor lse, Linear.Cache proj) {

        /** The layer's output {@code [B, T, D]}. */
        public Tensor out() {
            return proj.out();
        }
    }

    /**
     * A zero-initialised layer (initialise {@link #qkv()} and {@link #proj()} with {@link org.diffusion4j.nn.Init}).
     *
     * @param ops       ops of the parameters' backend
     * @param attention the attention ops, on the same backend (the caller keeps ownership and closes it)
     * @param scope     owner of the parameters
     * @param dim       model width {@code D ≥ 1} (the model's {@code hidden}, {@code DiT.Config.hidden()})
     * @param heads     number of heads {@code H ≥ 1}, dividing {@code D}, with {@code D/H ≤ 256}
     * @param qkvBias   whether {@code qkv} has a bias (true in DiT)
     * @throws IllegalArgumentException naming the bad value
     */
    public MultiHeadSelfAttention(NnOps ops, AttentionOps attention, TensorScope scope, long dim, long heads,
                                  boolean qkvBias) {
        Objects.requireNonNull(ops, "ops");
        this.attention = Objects.requireNonNull(attention, "attention");
        if (attention.backend() != ops.backend() && !attention.backend().device().equals(ops.backend().device())) {
            throw new IllegalArgumentException("attention ops on " + attention.backend().device()
                    + " but layer ops on " + ops.backend().device());
        }
        if (dim < 1 || heads < 1 || dim % heads != 0) {
            throw new IllegalArgumentException("MultiHeadSelfAttention needs dim >= 1 divisible by heads >= 1, got dim="
                    + dim + ", heads=" + heads);
        }
        if (dim / heads > AttentionOps.MAX_HEAD_DIM) {
            throw new IllegalArgumentException("head dim " + dim / heads + " (dim=" + dim + " / heads=" + heads
                    + ") exceeds " + AttentionOps.MAX_HEAD_DIM);
        }
        this.dim = dim;
        this.heads = heads;
        this.headDim = dim / heads;
        this.scale = AttentionOps.defaultScale(headDim);
        this.qkv = registerModule("qkv", new Linear(ops, scope, dim, 3 * dim, qkvBias));
        this.proj = registerModule("proj", new Linear(ops, scope, dim, dim, true));
    }

    /** Model width {@code D}. */
    public long dim() {
        return dim;
    }

    /** Number of heads {@code H}. */
    public long heads() {
        return heads;
    }

    /** {@code Dh = D/H}. */
    public long headDim() {
        return headDim;
    }

    /** The logit scale {@code 1/√Dh}. */
    public float scale() {
        return scale;
    }

    /** The fused input projection {@code Linear(D, 3D)}. */
    public Linear qkv() {
        return qkv;
    }

    /** The output projection {@code Linear(D, D)}. */
    public Linear proj() {
        return proj;
    }

    /**
     * {@code y = proj(MHSA(qkv(x)))}.
     *
     * @param scope owner of the output and of the cache
     * @param x     F32 contiguous {@code [B, T, D]}, {@code T ≥ 1}
     * @throws IllegalArgumentException when {@code x} is not {@code [B, T, D]}
     */
    public Cache forward(TensorScope scope, Tensor x) {
        Objects.requireNonNull(x, "x");
        if (x.rank() != 3 || x.shape(2) != dim || x.shape(1) < 1) {
            throw new IllegalArgumentException("x " + x + " must be [B, T, " + dim + "] with T >= 1 for "
                    + this);
        }
        Backend be = attention.backend();
        long b = x.shape(0);
        long t = x.shape(1);
        Linear.Cache qkvCache = qkv.forward(scope, x);                                     // [B, T, 3D]
        Tensor headsQkv = be.empty(scope, DType.F32, 3, b, heads, t, headDim);
        be.copy(qkvCache.out().reshape(b, t, 3, heads, headDim).permute(2, 0, 3, 1, 4), headsQkv);
        Tensor o = be.empty(scope, DType.F32, b, heads, t, headDim);
        Tensor lse = be.empty(scope, DType.F32, b, heads, t);
        attention.forward(part(headsQkv, 0), part(headsQkv, 1), part(headsQkv, 2), scale, o, lse);
        Tensor merged = be.empty(scope, DType.F32, b, t, heads, headDim);
        be.copy(o.permute(0, 2, 1, 3), merged);                                             // [B, T, H, Dh]
        Linear.Cache projCache = proj.forward(scope, merged.reshape(b, t, dim));
        return new Cache(qkvCache, headsQkv, o, lse, projCache);
    }

    /**
     * Adds the parameter gradients of {@code qkv} and {@code proj} and returns {@code dx}.
     *
     * @param scope owner of {@code dx} and temporaries
     * @param cache this layer's {@link #forward} result
     * @param dy    gradient of the output {@code [B, T, D]}
     * @return {@code dx [B, T, D]}
     * @throws NullPointerException     when {@code cache} is null
     * @throws IllegalArgumentException when {@code dy} is not an F32 contiguous {@code [B, T, D]} tensor on this
     *                                  layer's backend
     * @throws IllegalStateException    when a scope is closed
     */
    public Tensor backward(TensorScope scope, Cache cache, Tensor dy) {
        Objects.requireNonNull(cache, "cache");
        Backend be = attention.backend();
        long b = cache.o().shape(0);
        long t = cache.o().shape(2);
        Tensor dMerged = proj.backward(scope, cache.proj(), dy, true);                     // [B, T, D]
        Tensor dO = be.empty(scope, DType.F32, b, heads, t, headDim);
        be.copy(dMerged.reshape(b, t, heads, headDim).permute(0, 2, 1, 3), dO);            // [B, H, T, Dh]
        Tensor dHeads = be.empty(scope, DType.F32, 3, b, heads, t, headDim);
        Tensor h = cache.qkvHeads();
        attention.backward(part(h, 0), part(h, 1), part(h, 2), cache.o(), cache.lse(), dO, scale, part(dHeads, 0),
                part(dHeads, 1), part(dHeads, 2));
        Tensor dQkv = be.empty(scope, DType.F32, b, t, 3, heads, headDim);
        be.copy(dHeads.permute(1, 3, 0, 2, 4), dQkv);                                       // [B, T, 3, H, Dh]
        return qkv.backward(scope, cache.qkv(), dQkv.reshape(b, t, 3 * dim), true);
    }

    /** Slice {@code i} of a {@code [3, B, H, T, Dh]} tensor as a contiguous {@code [B, H, T, Dh]}. */
    private static Tensor part(Tensor qkvHeads, int i) {
        long[] s = qkvHeads.shape();
        return qkvHeads.slice(0, i, i + 1).reshape(s[1], s[2], s[3], s[4]);
    }

    @Override
    public String toString() {
        return "MultiHeadSelfAttention(dim=" + dim + ", heads=" + heads + ")";
    }
}
