package org.diffusion4j.nn;

import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.nn.attention.MultiHeadSelfAttention;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Objects;

/**
 * One DiT block with adaLN-Zero conditioning (Peebles &amp; Xie 2023, §3.2 and Fig. 3; {@code DiTBlock} of
 * facebookresearch/DiT {@code models.py}), with the reference's state-dict names:
 * <pre>
 *   m = adaLN_modulation(c) = Linear(SiLU(c))                      [B, 6D]   (adaLN_modulation.1)
 *   shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = the six [B, D] column blocks of m
 *   x = x + gate_msa·attn(modulate(norm1(x), shift_msa, scale_msa))          (norm1, attn.qkv, attn.proj)
 *   x = x + gate_mlp·mlp(modulate(norm2(x), shift_mlp, scale_mlp))           (norm2, mlp.fc1, mlp.fc2)
 *   modulate(y, shift, scale) = y·(1 + scale) + shift, per sample, broadcast over the T tokens
 * </pre>
 * {@code x [B, T, D]}, {@code c [B, D]}. The norms are LayerNorm without affine, {@code eps = 1e-6}; the attention is
 * timm's ({@link MultiHeadSelfAttention}, {@code qkv} with bias); the MLP is timm's {@code Mlp}:
 * {@code fc2(GELU_tanh(fc1(·)))} with hidden width {@code int(D·mlpRatio)}.
 *
 * <p>The six modulation tensors are <b>views</b> (column slices, row stride {@code 6D}) of the one linear output;
 * norm and modulation run as one fused pass ({@link NnOps#layerNorm}), the gated residual as another
 * ({@link NnOps#gatedResidual}), {@code fc1} with its GELU as one GEMM plus one pass. Backward writes the six
 * modulation gradients straight into the column blocks of one {@code [B, 6D]} tensor.
 */
public final class DiTBlock extends Module {

    /** The LayerNorm epsilon of the reference DiT. */
    public static final float NORM_EPS = 1e-6f;

    private final NnOps ops;
    private final long dim;
    private final LayerNorm norm1;
    private final MultiHeadSelfAttention attn;
    private final LayerNorm norm2;
    private final Linear fc1;
    private final Linear fc2;
    private final Linear adaLN;

    /**
     * What {@link #backward} needs; {@link #out()} is the block output {@code [B, T, D]}. An opaque handle: the
     * components are saved activations that {@link #backward} consumes (overwrites in place); do not modify them
     * before the backward or read them after it.
     */
    public record Cache(Tensor c, Tensor siluC, Linear.Cache mod, LayerNorm.Cache norm1,
                        MultiHeadSelfAttention.Cache attn, Tensor x1, LayerNorm.Cache norm2, Linear.Cache fc1,
                        Linear.Cache fc2, Tensor out) {
    }

    /** Gradients of the block's inputs. */
    public record Grads(Tensor dx, Tensor dc) {
    }

    /**
     * A zero-initialised block (see {@link DiT} for the reference initialisation).
     *
     * @param ops       ops of the parameters' backend
     * @param attention attention ops on the same backend (the caller keeps ownership)
     * @param dim       width {@code D ≥ 1} (the model's {@code hidden}, {@link DiT.Config#hidden()})
     * @param heads     attention heads, dividing {@code D}
     * @param mlpHidden MLP hidden width {@code ≥ 1} ({@code int(D·mlpRatio)} in the reference)
     * @throws IllegalArgumentException naming the bad value
     */
    public DiTBlock(NnOps ops, AttentionOps attention, TensorScope scope, long dim, long heads, long mlpHidden) {
        this.ops = Objects.requireNonNull(ops, "ops");
        if (mlpHidden < 1) {
            throw new IllegalArgumentException("DiT block MLP hidden width must be >= 1, got " + mlpHidden);
        }
        this.dim = dim;
        norm1 = registerModule("norm1", new LayerNorm(ops, scope, dim, NORM_EPS, false));
        attn = registerModule("attn", new MultiHeadSelfAttention(ops, attention, scope, dim, heads, true));
        norm2 = registerModule("norm2", new LayerNorm(ops, scope, dim, NORM_EPS, false));
        Mlp mlp = registerModule("mlp", new Mlp(ops, scope, dim, mlpHidden));
        fc1 = mlp.fc1;
        fc2 = mlp.fc2;
        ModuleList mod = registerModule("adaLN_modulation", new ModuleList());
        mod.add(new SiLU(ops));
        adaLN = mod.add(new Linear(ops, scope, dim, 6 * dim, true));
    }

    /** timm's {@code Mlp} (children {@code fc1}, {@code fc2}; the GELU and dropouts hold no parameters). */
    static final class Mlp extends Module {
        final Linear fc1;
        final Linear fc2;

        Mlp(NnOps ops, TensorScope scope, long dim, long hidden) {
            fc1 = registerModule("fc1", new Linear(ops, scope, dim, hidden, true));
            fc2 = registerModule("fc2", new Linear(ops, scope, hidden, dim, true));
        }
    }

    /** {@code attn}. */
    public MultiHeadSelfAttention attn() {
        return attn;
    }

    /** {@code mlp.fc1}. */
    public Linear fc1() {
        return fc1;
    }

    /** {@code mlp.fc2}. */
    public Linear fc2() {
        return fc2;
    }

    /** {@code adaLN_modulation.1}, {@code Linear(D, 6D)}. */
    public Linear adaLNModulation() {
        return adaLN;
    }

    /** Column block {@code k} ({@code [B, D]}, row stride {@code n·D}) of a {@code [B, n·D]} tensor. */
    static Tensor chunk(Tensor m, long dim, int k) {
        return m.slice(1, k * dim, (k + 1) * dim);
    }

    /**
     * Forward.
     *
     * @param scope owner of the output and the cache
     * @param x     F32 contiguous {@code [B, T, D]}
     * @param c     F32 contiguous conditioning {@code [B, D]}
     * @throws IllegalArgumentException on a shape mismatch
     */
    public Cache forward(TensorScope scope, Tensor x, Tensor c) {
        Backend be = ops.backend();
        NnOps.checkTensor(be, "x", x, false);
        NnOps.checkTensor(be, "c", c, false);
        if (x.rank() != 3 || x.shape(2) != dim || c.rank() != 2 || c.shape(0) != x.shape(0) || c.shape(1) != dim) {
            throw new IllegalArgumentException("DiT block needs x [B, T, " + dim + "] and c [B, " + dim + "], got x "
                    + x + " and c " + c);
        }
        Tensor s = be.empty(scope, DType.F32, c.shape());
        ops.activation(Activation.SILU, c, null, null, s);                                    // SiLU(c)   [B, D]
        Linear.Cache mod = adaLN.forward(scope, s);                                           // m         [B, 6D]
        Tensor m = mod.out();
        LayerNorm.Cache n1 = norm1.forward(scope, x, chunk(m, dim, 0), chunk(m, dim, 1));     // [B, T, D]
        MultiHeadSelfAttention.Cache a = attn.forward(scope, n1.out());                        // [B, T, D]
        Tensor x1 = Residual.gated(ops, scope, x, chunk(m, dim, 2), a.out());                  // x + g·attn
        LayerNorm.Cache n2 = norm2.forward(scope, x1, chunk(m, dim, 3), chunk(m, dim, 4));
        Linear.Cache h = fc1.forward(scope, n2.out(), Activation.GELU_TANH);                   // [B, T, Dm]
        Linear.Cache f = fc2.forward(scope, h.out());                                          // [B, T, D]
        Tensor out = Residual.gated(ops, scope, x1, chunk(m, dim, 5), f.out());
        return new Cache(c, s, mod, n1, a, x1, n2, h, f, out);
    }

    /**
     * Backward: accumulates every parameter gradient and returns the input gradients. To save memory traffic it
     * <b>consumes</b> the cache: saved tensors it no longer needs (the branch outputs, the MLP's upstream gradient)
     * are overwritten in place, so call it once per {@link #forward}.
     *
     * @param scope owner of the gradients and temporaries
     * @param cache this block's {@link #forward} result, not yet consumed
     * @param dy    gradient of {@link Cache#out()} {@code [B, T, D]}
     * @return {@code dx [B, T, D]} and {@code dc [B, D]}, allocated in {@code scope}
     * @throws NullPointerException     when {@code cache} is null
     * @throws IllegalArgumentException when {@code dy} is not an F32 contiguous tensor of the output's shape on this
     *                                  block's backend
     * @throws IllegalStateException    when a scope is closed
     */
    public Grads backward(TensorScope scope, Cache cache, Tensor dy) {
        Objects.requireNonNull(cache, "cache");
        Backend be = ops.backend();
        NnOps.checkLike(be, "dy", dy, "out", cache.out(), false);
        Tensor dm = be.empty(scope, DType.F32, cache.mod().out().shape());                    // [B, 6D]
        Tensor m = cache.mod().out();
        // x2 = x1 + gate_mlp·f:  df = dy·gate_mlp written over f (fc2's output is not needed by its backward)
        Tensor f = cache.fc2().out();
        ops.gatedResidualBackward(chunk(m, dim, 5), f, dy, f, chunk(dm, dim, 5));
        Tensor dh = fc2.backward(scope, cache.fc2(), f, true);                                 // [B, T, Dm]
        Linear.Cache c1 = cache.fc1();
        ops.activationBackward(c1.act(), c1.pre(), dh, dh);                                    // GELU' in place
        Tensor dn2 = fc1.backward(scope, new Linear.Cache(c1.x(), c1.pre(), c1.pre(), Activation.IDENTITY), dh,
                true);
        Tensor dx1 = normBackwardInPlace(cache.norm2(), dn2, chunk(dm, dim, 3), chunk(dm, dim, 4));
        be.binary(Ops.Binary.ADD, dx1, dy, dx1);                                               // skip + branch
        // x1 = x + gate_msa·attn
        Tensor a = cache.attn().out();
        ops.gatedResidualBackward(chunk(m, dim, 2), a, dx1, a, chunk(dm, dim, 2));
        Tensor dn1 = attn.backward(scope, cache.attn(), a);
        Tensor dx = normBackwardInPlace(cache.norm1(), dn1, chunk(dm, dim, 0), chunk(dm, dim, 1));
        be.binary(Ops.Binary.ADD, dx, dx1, dx);
        Tensor ds = adaLN.backward(scope, cache.mod(), dm, true);                             // [B, D]
        ops.activationBackward(Activation.SILU, cache.c(), ds, ds);                            // dc
        return new Grads(dx, ds);
    }

    /** Backward of a modulated norm without affine, {@code dx} written over {@code dy}; returns it. */
    private Tensor normBackwardInPlace(LayerNorm.Cache c, Tensor dy, Tensor dShift, Tensor dScale) {
        ops.layerNormBackward(c.x(), null, null, c.scale(), c.mean(), c.rstd(), dy, dy, null, null, dShift, dScale);
        return dy;
    }

    @Override
    public String toString() {
        return "DiTBlock(dim=" + dim + ", heads=" + attn.heads() + ", mlp=" + fc1.out() + ")";
    }
}
