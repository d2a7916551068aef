package org.diffusion4j.nn;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Shape;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Objects;

/**
 * A lookup table {@code weight [V, D]} (PyTorch {@code nn.Embedding}): {@code out[i] = weight[indices[i]]}; the
 * backward adds each output row's gradient into the row it came from ({@link NnOps#embeddingBackward}).
 */
public final class Embedding extends Module {

    private final NnOps ops;
    private final long count;
    private final long dim;
    private final Parameter weight;

    /**
     * What backward needs.
     *
     * @param indices I32 {@code [N]}
     * @param out     {@code [N, D]}
     */
    public record Cache(Tensor indices, Tensor out) {
    }

    /**
     * A zero-initialised table of {@code count} rows of {@code dim} values.
     *
     * @throws IllegalArgumentException for a negative size
     */
    public Embedding(NnOps ops, TensorScope scope, long count, long dim) {
        this.ops = Objects.requireNonNull(ops, "ops");
        if (count < 0 || dim < 0) {
            throw new IllegalArgumentException("Embedding sizes must be >= 0, got " + count + " x " + dim);
        }
        this.count = count;
        this.dim = dim;
        this.weight = registerParameter(Parameter.zeros(ops.backend(), scope, "weight", count, dim));
    }

    /** Rows {@code V}. */
    public long count() {
        return count;
    }

    /** Row size {@code D}. */
    public long dim() {
        return dim;
    }

    /** The table {@code [V, D]}. */
    public Parameter weight() {
        return weight;
    }

    /**
     * Gathers rows.
     *
     * @param scope   the scope of the output
     * @param indices I32 {@code [N]} on the backend, each in {@code [0, V)}
     * @return the cache; {@link Cache#out()} is F32 {@code [N, D]}
     * @throws IllegalArgumentException  when {@code indices} is not an I32 contiguous rank-1 tensor on this layer's
     *                                   backend
     * @throws IllegalStateException     when a scope is closed
     * @throws IndexOutOfBoundsException naming the position and value of the first bad index
     */
    public Cache forward(TensorScope scope, Tensor indices) {
        Backend be = ops.backend();
        Shape.requireOperand("indices", indices, be, DType.I32);
        Shape.requireRank("indices", indices, 1);
        Tensor out = be.empty(scope, DType.F32, indices.shape(0), dim);
        be.gatherRows(weight.value(), indices, out);
        return new Cache(indices, out);
    }

    /**
     * Adds {@code dy [N, D]} into the gradient rows named by the cached indices (rows added in order of position,
     * so repeated indices accumulate deterministically).
     *
     * @param cache this layer's {@link #forward} cache
     * @param dy    upstream gradient, F32 {@code [N, D]}
     * @throws NullPointerException     when {@code cache} is null
     * @throws IllegalArgumentException when {@code dy} is not an F32 contiguous {@code [N, D]} tensor on this layer's
     *                                  backend
     * @throws IllegalStateException    when a scope is closed
     */
    public void backward(Cache cache, Tensor dy) {
        Objects.requireNonNull(cache, "cache");
        ops.embeddingBackward(cache.indices(), dy, weight.grad());
    }
}
