package org.diffusion4j.nn;

import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Objects;

/** A parameterless pointwise activation layer ({@link SiLU}, {@link Gelu}); formulas in {@link NnMath}. */
public abstract sealed class PointwiseLayer extends Module permits SiLU, Gelu {

    private final NnOps ops;
    private final Activation act;

    /**
     * What backward needs.
     *
     * @param x   the input (must not be modified before backward)
     * @param out the output
     */
    public record Cache(Tensor x, Tensor out) {
    }

    PointwiseLayer(NnOps ops, Activation act) {
        this.ops = Objects.requireNonNull(ops, "ops");
        this.act = act;
    }

    /** The activation. */
    public Activation activation() {
        return act;
    }

    /**
     * {@code y = act(x)}, any shape; output allocated in {@code scope}.
     *
     * @param x F32, contiguous, on this layer's backend
     * @throws IllegalArgumentException when {@code x} is not an F32 contiguous tensor on this layer's backend
     * @throws IllegalStateException    when a scope is closed
     */
    public Cache forward(TensorScope scope, Tensor x) {
        NnOps.checkTensor(ops.backend(), "x", x, false);
        Tensor y = ops.backend().empty(scope, DType.F32, x.shape());
        ops.activation(act, x, null, null, y);
        return new Cache(x, y);
    }

    /**
     * {@code dx = dy·act'(x)}, allocated in {@code scope}.
     *
     * @param cache this layer's {@link #forward} result
     * @param dy    upstream gradient, F32 of {@code cache.x()}'s shape
     * @throws NullPointerException     when {@code cache} is null
     * @throws IllegalArgumentException when {@code dy} is not an F32 contiguous tensor of {@code cache.x()}'s shape
     *                                  on this layer's backend
     * @throws IllegalStateException    when a scope is closed
     */
    public Tensor backward(TensorScope scope, Cache cache, Tensor dy) {
        Objects.requireNonNull(cache, "cache");
        Tensor dx = ops.backend().empty(scope, DType.F32, cache.x().shape());
        ops.activationBackward(act, cache.x(), dy, dx);
        return dx;
    }
}
