package org.diffusion4j.nn;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Objects;

/**
 * The last layer of DiT (Peebles &amp; Xie 2023, §3.2 "Transformer decoder"; {@code FinalLayer} of
 * facebookresearch/DiT {@code models.py}):
 * <pre>
 *   shift, scale = the two [B, D] column blocks of adaLN_modulation(c) = Linear(SiLU(c))   [B, 2D]
 *   y = linear(modulate(norm_final(x), shift, scale))                                      [B, T, p·p·C]
 * </pre>
 * with {@code norm_final} a LayerNorm without affine ({@code eps = 1e-6}) fused with the modulation, and
 * {@code linear = Linear(D, p·p·C)}. State-dict names {@code norm_final}, {@code linear.*},
 * {@code adaLN_modulation.1.*}.
 */
public final class FinalLayer extends Module {

    private final NnOps ops;
    private final long dim;
    private final LayerNorm normFinal;
    private final Linear linear;
    private final Linear adaLN;

    /**
     * What {@link #backward} needs; {@link #out()} is {@code [B, T, p·p·C]}. An opaque handle of saved activations;
     * do not modify them before the backward.
     */
    public record Cache(Tensor c, Linear.Cache mod, LayerNorm.Cache norm, Linear.Cache linear) {
        /** The patch predictions {@code [B, T, p·p·C]}. */
        public Tensor out() {
            return linear.out();
        }
    }

    /** Gradients of the inputs. */
    public record Grads(Tensor dx, Tensor dc) {
    }

    /**
     * A zero-initialised layer.
     *
     * @param dim      width {@code D ≥ 1} (the model's {@code hidden}, {@link DiT.Config#hidden()})
     * @param outFeatures {@code p·p·C ≥ 1}
     * @throws IllegalArgumentException naming the bad value
     */
    public FinalLayer(NnOps ops, TensorScope scope, long dim, long outFeatures) {
        this.ops = Objects.requireNonNull(ops, "ops");
        if (outFeatures < 1) {
            throw new IllegalArgumentException("final layer needs >= 1 output features, got " + outFeatures);
        }
        this.dim = dim;
        normFinal = registerModule("norm_final", new LayerNorm(ops, scope, dim, DiTBlock.NORM_EPS, false));
        linear = registerModule("linear", new Linear(ops, scope, dim, outFeatures, true));
        ModuleList mod = registerModule("adaLN_modulation", new ModuleList());
        mod.add(new SiLU(ops));
        adaLN = mod.add(new Linear(ops, scope, dim, 2 * dim, true));
    }

    /** {@code linear}. */
    public Linear linear() {
        return linear;
    }

    /** {@code adaLN_modulation.1}, {@code Linear(D, 2D)}. */
    public Linear adaLNModulation() {
        return adaLN;
    }

    /**
     * Forward for {@code x [B, T, D]} and {@code c [B, D]}.
     *
     * @throws IllegalArgumentException on a shape mismatch
     */
    public Cache forward(TensorScope scope, Tensor x, Tensor c) {
        Backend be = ops.backend();
        NnOps.checkTensor(be, "x", x, false);
        NnOps.checkTensor(be, "c", c, false);
        if (x.rank() != 3 || x.shape(2) != dim || c.rank() != 2 || c.shape(0) != x.shape(0) || c.shape(1) != dim) {
            throw new IllegalArgumentException("DiT final layer needs x [B, T, " + dim + "] and c [B, " + dim
                    + "], got x " + x + " and c " + c);
        }
        Tensor s = be.empty(scope, DType.F32, c.shape());
        ops.activation(Activation.SILU, c, null, null, s);
        Linear.Cache mod = adaLN.forward(scope, s);                                            // [B, 2D]
        Tensor m = mod.out();
        LayerNorm.Cache n = normFinal.forward(scope, x, DiTBlock.chunk(m, dim, 0), DiTBlock.chunk(m, dim, 1));
        return new Cache(c, mod, n, linear.forward(scope, n.out()));
    }

    /**
     * Accumulates the parameter gradients for {@code dy [B, T, p·p·C]}; returns {@code dx} and {@code dc}.
     *
     * @param scope owner of the gradients and temporaries
     * @param cache this layer's {@link #forward} result
     * @param dy    gradient of {@link Cache#out()}, F32 {@code [B, T, p·p·C]}
     * @return {@code dx [B, T, D]} and {@code dc [B, D]}, allocated in {@code scope}
     * @throws NullPointerException     when {@code cache} is null
     * @throws IllegalArgumentException when {@code dy} is not an F32 contiguous tensor of the output's shape on this
     *                                  layer's backend
     * @throws IllegalStateException    when a scope is closed
     */
    public Grads backward(TensorScope scope, Cache cache, Tensor dy) {
        Objects.requireNonNull(cache, "cache");
        Backend be = ops.backend();
        Tensor dn = linear.backward(scope, cache.linear(), dy, true);
        Tensor dm = be.empty(scope, DType.F32, cache.mod().out().shape());
        LayerNorm.Cache n = cache.norm();
        ops.layerNormBackward(n.x(), null, null, n.scale(), n.mean(), n.rstd(), dn, dn, null, null,
                DiTBlock.chunk(dm, dim, 0), DiTBlock.chunk(dm, dim, 1));                        // dx over dn
        Tensor dx = dn;
        Tensor ds = adaLN.backward(scope, cache.mod(), dm, true);
        ops.activationBackward(Activation.SILU, cache.c(), ds, ds);
        return new Grads(dx, ds);
    }
}
