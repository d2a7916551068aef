package org.diffusion4j.nn;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Objects;

/**
 * Layer normalisation over the last dim (Ba, Kiros &amp; Hinton 2016, eq. 4; PyTorch {@code nn.LayerNorm}), with
 * or without the elementwise affine ({@code weight} γ {@code [D]} initialised to 1, {@code bias} β {@code [D]} to
 * 0), optionally fused with adaLN modulation (Peebles &amp; Xie 2023, §3.2, DiT's {@code modulate}):
 * {@code y = LN(x)·(1 + scale_b) + shift_b} with per-sample {@code shift, scale [B, D]} broadcast over the tokens
 * of {@code x [B, T, D]} — one pass forward ({@link NnOps#layerNorm}) and one backward
 * ({@link NnOps#layerNormBackward}). The reference DiT uses {@code LayerNorm(D, elementwise_affine=False,
 * eps=1e-6)} before every modulation.
 */
public final class LayerNorm extends Module {

    private final NnOps ops;
    private final long dim;
    private final float eps;
    private final Parameter weight;
    private final Parameter bias;

    /**
     * What backward needs ({@code shift}/{@code scale} null when not modulated). The caller must not modify
     * {@code x} or {@code scale} before the backward pass.
     *
     * @param x     the input as given to {@link #forward}: {@code [..., D]} (rank ≥ 1), e.g. {@code [B, T, D]} or
     *              {@code [B, D]}
     * @param shift per-sample shift {@code [B, D]} or null
     * @param scale per-sample scale {@code [B, D]} or null
     * @param mean  per-row mean, one per row of {@code x} ({@code x.rows()} elements)
     * @param rstd  per-row {@code 1/√(var + eps)}, one per row of {@code x}
     * @param out   the output, {@code x}'s shape
     */
    public record Cache(Tensor x, Tensor shift, Tensor scale, Tensor mean, Tensor rstd, Tensor out) {
    }

    /**
     * @param ops    ops of the parameters' backend
     * @param scope  owner of the parameters (when {@code affine})
     * @param dim    normalised size {@code D ≥ 1}
     * @param eps    {@code > 0} (PyTorch's default is {@code 1e-5}; DiT uses {@code 1e-6})
     * @param affine whether to learn γ and β
     * @throws IllegalArgumentException naming the bad value
     */
    public LayerNorm(NnOps ops, TensorScope scope, long dim, float eps, boolean affine) {
        this.ops = Objects.requireNonNull(ops, "ops");
        if (dim < 1) {
            throw new IllegalArgumentException("LayerNorm dim must be >= 1, got " + dim);
        }
        if (!(eps > 0 && Float.isFinite(eps))) {
            throw new IllegalArgumentException("LayerNorm eps must be finite and > 0, got " + eps);
        }
        this.dim = dim;
        this.eps = eps;
        if (affine) {
            Backend be = ops.backend();
            weight = registerParameter(Parameter.zeros(be, scope, "weight", dim));
            be.fill(weight.value(), 1f);
            bias = registerParameter(Parameter.zeros(be, scope, "bias", dim));
        } else {
            weight = null;
            bias = null;
        }
    }

    /** {@code D}. */
    public long dim() {
        return dim;
    }

    /** {@code eps}. */
    public float eps() {
        return eps;
    }

    /** γ, or null without affine. */
    public Parameter weight() {
        return weight;
    }

    /** β, or null without affine. */
    public Parameter bias() {
        return bias;
    }

    /**
     * {@code y = LN(x)} for {@code x [..., D]} (rank ≥ 1; a rank-1 input is one row).
     *
     * @param scope the scope of the output and the saved statistics
     * @param x     F32 {@code [..., D]}, contiguous, on this layer's backend
     * @return the cache; {@link Cache#out()} is {@code x}'s shape
     * @throws IllegalArgumentException when the last dim is not {@code D}, or {@code x} is not an F32 contiguous
     *                                  tensor on this layer's backend
     * @throws IllegalStateException    when a scope is closed
     */
    public Cache forward(TensorScope scope, Tensor x) {
        return forward(scope, x, null, null);
    }

    /**
     * {@code y = LN(x)·(1 + scale_b) + shift_b} for {@code x [B, T, D]} or {@code [B, D]} and per-sample
     * {@code shift, scale [B, D]} (either may be null; rows may be strided, see {@link NnOps}). Any
     * {@code x [..., D]} is accepted and read in {@link NnOps}'s token layout ({@code B = shape(0)}; a rank-1
     * {@code x} is one sample of one token).
     *
     * @param scope the scope of the output and the saved statistics
     * @param x     F32 {@code [..., D]}, contiguous, on this layer's backend
     * @param shift per-sample shift {@code [B, D]} or null
     * @param scale per-sample scale {@code [B, D]} or null
     * @return the cache; {@link Cache#out()} is {@code x}'s shape
     * @throws IllegalArgumentException when the last dim is not {@code D}, or naming a tensor of another dtype,
     *                                  shape or device
     * @throws IllegalStateException    when a scope is closed
     */
    public Cache forward(TensorScope scope, Tensor x, Tensor shift, Tensor scale) {
        Backend be = ops.backend();
        NnOps.checkTensor(be, "x", x, false);
        if (x.rank() < 1 || x.shape(-1) != dim) {
            throw new IllegalArgumentException("x " + x + " must be [..., " + dim + "] for LayerNorm(" + dim + ")");
        }
        Tensor x3 = x.rank() == 1 ? x.reshape(1, dim) : x;
        long rows = x3.rows();
        Tensor y = be.empty(scope, DType.F32, x.shape());
        Tensor mean = be.empty(scope, DType.F32, rows);
        Tensor rstd = be.empty(scope, DType.F32, rows);
        ops.layerNorm(x3, gamma(), beta(), shift, scale, eps, y.reshape(x3.shape()), mean, rstd);
        return new Cache(x, shift, scale, mean, rstd, y);
    }

    /**
     * Backward of {@link #forward(TensorScope, Tensor)}: accumulates γ/β gradients, returns {@code dx}.
     *
     * @param scope the scope of {@code dx}
     * @param cache this layer's forward cache
     * @param dy    upstream gradient, F32 of {@code cache.x()}'s shape
     * @return {@code dx}, {@code cache.x()}'s shape
     * @throws NullPointerException     when {@code cache} is null
     * @throws IllegalArgumentException when {@code dy} is not an F32 contiguous tensor of {@code cache.x()}'s shape
     *                                  on this layer's backend
     * @throws IllegalStateException    when a scope is closed
     */
    public Tensor backward(TensorScope scope, Cache cache, Tensor dy) {
        return backward(scope, cache, dy, null, null);
    }

    /**
     * Backward of the modulated forward: accumulates γ/β gradients, writes {@code dShift = Σ_t dy} and
     * {@code dScale = Σ_t dy·LN(x)} when given (per-sample {@code [B, D]}, possibly strided rows, overwritten) and
     * returns {@code dx} allocated in {@code scope}.
     *
     * @param scope  the scope of {@code dx}
     * @param cache  this layer's forward cache
     * @param dy     upstream gradient, F32 of {@code cache.x()}'s shape
     * @param dShift per-sample {@code [B, D]} output, or null
     * @param dScale per-sample {@code [B, D]} output, or null
     * @return {@code dx}, {@code cache.x()}'s shape
     * @throws NullPointerException     when {@code cache} is null
     * @throws IllegalArgumentException naming a tensor of another dtype, shape or device, or an overlapping output
     * @throws IllegalStateException    when a scope is closed
     */
    public Tensor backward(TensorScope scope, Cache cache, Tensor dy, Tensor dShift, Tensor dScale) {
        Objects.requireNonNull(cache, "cache");
        Backend be = ops.backend();
        NnOps.checkLike(be, "dy", dy, "x", cache.x(), false);
        Tensor x3 = cache.x().rank() == 1 ? cache.x().reshape(1, dim) : cache.x();
        Tensor dx = be.empty(scope, DType.F32, cache.x().shape());
        ops.layerNormBackward(x3, gamma(), beta(), cache.scale(), cache.mean(), cache.rstd(), dy.reshape(x3.shape()),
                dx.reshape(x3.shape()), weight == null ? null : weight.grad(), bias == null ? null : bias.grad(),
                dShift, dScale);
        return dx;
    }

    private Tensor gamma() {
        return weight == null ? null : weight.value();
    }

    private Tensor beta() {
        return bias == null ? null : bias.value();
    }

    @Override
    public String toString() {
        return "LayerNorm(" + dim + ", eps=" + eps + (weight == null ? ", no affine)" : ")");
    }
}
