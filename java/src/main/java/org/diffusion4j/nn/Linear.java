package org.diffusion4j.nn;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Shape;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Arrays;
import java.util.Objects;

/**
 * Fully connected layer {@code y = act(x·Wᵀ + b)} with PyTorch's layout ({@code nn.Linear}): parameters
 * {@code weight [out, in]} and {@code bias [out]}. The product is one GEMM; the bias add and an optional activation
 * are one fused pass ({@link NnOps#activation}) that also saves the pre-activation for backward.
 *
 * <p>Shapes: {@code x [..., in]} → {@code y [..., out]} (all leading dims are rows). Backward: {@code dW += dzᵀ·x},
 * {@code db += Σ_rows dz}, {@code dx = dz·W} with {@code dz = dy·act'(z)}.
 */
public final class Linear extends Module {

    private final NnOps ops;
    private final long in;
    private final long out;
    private final Parameter weight;
    private final Parameter bias;

    /**
     * What {@link #backward} needs, allocated in the caller's scope by {@link #forward}. The caller must not
     * modify {@code x} before the backward pass.
     *
     * @param x   the input {@code [..., in]}
     * @param pre {@code z = x·Wᵀ + b} {@code [..., out]} (the same tensor as {@code out} when {@code act} is
     *            {@link Activation#IDENTITY})
     * @param out the output {@code act(z)}
     * @param act the fused activation
     */
    public record Cache(Tensor x, Tensor pre, Tensor out, Activation act) {
    }

    /**
     * A zero-initialised linear layer (initialise with {@link Init}).
     *
     * @param ops   ops of the backend the parameters live on
     * @param scope owner of the parameters
     * @throws IllegalArgumentException when {@code in} or {@code out} is negative
     */
    public Linear(NnOps ops, TensorScope scope, long in, long out, boolean bias) {
        this(ops, scope, in, out, bias, new long[] {out, in});
    }

    /**
     * A linear layer whose weight is stored in {@code weightShape} — {@code [out, ...]} with the trailing dims
     * multiplying to {@code in} — and viewed as {@code [out, in]}; e.g. a patch embedding keeps the Conv2d layout
     * {@code [D, C, p, p]} of its state dict.
     *
     * @throws IllegalArgumentException when {@code weightShape} does not hold {@code out·in} elements with
     *                                  {@code out} leading
     */
    public Linear(NnOps ops, TensorScope scope, long in, long out, boolean bias, long[] weightShape) {
        this.ops = Objects.requireNonNull(ops, "ops");
        Objects.requireNonNull(scope, "scope");
        if (in < 0 || out < 0) {
            throw new IllegalArgumentException("Linear sizes must be >= 0, got in=" + in + ", out=" + out);
        }
        if (weightShape.length < 2 || weightShape[0] != out
                || Shape.numel(weightShape) != Math.multiplyExact(in, out)) {
            throw new IllegalArgumentException("weight shape " + Arrays.toString(weightShape) + " cannot hold a ["
                    + out + ", " + in + "] linear weight");
        }
        this.in = in;
        this.out = out;
        Backend be = ops.backend();
        this.weight = registerParameter(Parameter.zeros(be, scope, "weight", weightShape));
        this.bias = bias ? registerParameter(Parameter.zeros(be, scope, "bias", out)) : null;
    }

    /** Input features. */
    public long in() {
        return in;
    }

    /** Output features. */
    public long out() {
        return out;
    }

    /** {@code weight}, in its stored shape. */
    public Parameter weight() {
        return weight;
    }

    /** {@code bias [out]}, or null. */
    public Parameter bias() {
        return bias;
    }

    /** {@code y = x·Wᵀ + b}; see {@link #forward(TensorScope, Tensor, Activation)}. */
    public Cache forward(TensorScope scope, Tensor x) {
        return forward(scope, x, Activation.IDENTITY);
    }

    /**
     * {@code y = act(x·Wᵀ + b)}.
     *
     * @param scope owner of the output and the saved tensors
     * @param x     F32 contiguous {@code [..., in]} (rank ≥ 1)
     * @throws IllegalArgumentException when {@code x} is not {@code [..., in]}
     */
    public Cache forward(TensorScope scope, Tensor x, Activation act) {
        Objects.requireNonNull(act, "act");
        Backend be = ops.backend();
        NnOps.checkTensor(be, "x", x, false);
        if (x.rank() < 1 || x.shape(-1) != in) {
            throw new IllegalArgumentException("x " + x + " must be [..., " + in + "] for Linear(" + in + " -> " + out
                    + ")");
        }
        long rows = x.rows();
        long[] outShape = x.shape();
        outShape[outShape.length - 1] = out;
        Tensor z = be.empty(scope, DType.F32, outShape);
        be.gemm(false, true, 1f, x.reshape(rows, in), weightMatrix(), 0f, z.reshape(rows, out));   // x·Wᵀ
        Tensor b = bias == null ? null : bias.value();
        if (act == Activation.IDENTITY) {
            if (b != null) {
                ops.activation(Activation.IDENTITY, z, b, null, z);                               // + b
            }
            return new Cache(x, z, z, act);
        }
        Tensor y = be.empty(scope, DType.F32, outShape);
        ops.activation(act, z, b, z, y);                                                          // act(z + b)
        return new Cache(x, z, y, act);
    }

    /**
     * Accumulates {@code dW} and {@code db} and returns {@code dx} (when {@code inputGrad}).
     *
     * @param scope     owner of {@code dx} and temporaries
     * @param cache     this layer's {@link #forward} result
     * @param dy        gradient of the output, {@code cache.out()}'s shape
     * @param inputGrad whether to compute {@code dx} (false saves a GEMM, e.g. for the first layer)
     * @return {@code dx [..., in]}, or null when not asked
     * @throws NullPointerException     when {@code cache} is null
     * @throws IllegalArgumentException when {@code dy} is not an F32 contiguous tensor of {@code cache.out()}'s shape
     *                                  on this layer's backend
     * @throws IllegalStateException    when a scope is closed
     */
    public Tensor backward(TensorScope scope, Cache cache, Tensor dy, boolean inputGrad) {
        Objects.requireNonNull(cache, "cache");
        Backend be = ops.backend();
        NnOps.checkLike(be, "dy", dy, "cache.out", cache.out(), false);
        long rows = cache.x().rows();
        Tensor dz = dy;
        if (cache.act() != Activation.IDENTITY) {
            dz = be.empty(scope, DType.F32, dy.shape());
            ops.activationBackward(cache.act(), cache.pre(), dy, dz);
        }
        Tensor dz2 = dz.reshape(rows, out);
        Tensor x2 = cache.x().reshape(rows, in);
        be.gemm(true, false, 1f, dz2, x2, 1f, weight.grad().reshape(out, in));                   // dW += dzᵀ·x
        if (bias != null) {
            ops.columnSum(dz2, bias.grad(), true);                                                // db += Σ dz
        }
        if (!inputGrad) {
            return null;
        }
        Tensor dx = be.empty(scope, DType.F32, cache.x().shape());
        be.gemm(false, false, 1f, dz2, weightMatrix(), 0f, dx.reshape(rows, in));                // dx = dz·W
        return dx;
    }

    /** The weight viewed as {@code [out, in]}. */
    public Tensor weightMatrix() {
        return weight.value().reshape(out, in);
    }

    @Override
    public String toString() {
        return "Linear(" + in + " -> " + out + (bias == null ? ", no bias)" : ")");
    }
}
