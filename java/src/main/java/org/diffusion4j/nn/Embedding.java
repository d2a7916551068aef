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
     * @param indices I32 {@code [N]} on the backend, each in {@code [0, V)}
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

    /** Adds {@code dy [N, D]} into the gradient rows named by the cached indices. */
    public void backward(Cache cache, Tensor dy) {
        Objects.requireNonNull(cache, "cache");
        ops.embeddingBackward(cache.indices(), dy, weight.grad());
    }
}
