package org.diffusion4j.nn;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Shape;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Arrays;
import java.util.Objects;

/**
 * A trainable tensor and its gradient. The value keeps the shape of the PyTorch state-dict entry it corresponds
 * to (e.g. a linear weight {@code [out, in]}, a patch-embedding weight {@code [D, C, p, p]}); layers view it in
 * whatever shape their math needs. The name is the local name within its {@link Module} ({@code weight},
 * {@code bias}); {@link Module#namedParameters()} prefixes the path.
 *
 * <p>Backward passes <b>add</b> to {@link #grad()}; call {@link #zeroGrad()} (or {@link Module#zeroGrad()})
 * before each accumulation.
 */
public final class Parameter {

    private final String name;
    private final Tensor value;
    private final Tensor grad;

    /**
     * Wraps existing tensors.
     *
     * @param name  local name: non-empty, no {@code '.'}
     * @param value F32 contiguous
     * @param grad  F32 contiguous, {@code value}'s shape, on the same device
     * @throws IllegalArgumentException naming the bad argument
     */
    public Parameter(String name, Tensor value, Tensor grad) {
        this.name = checkName(name);
        Objects.requireNonNull(value, "value");
        Objects.requireNonNull(grad, "grad");
        Shape.requireDType("value", value, DType.F32);
        Shape.requireDType("grad", grad, DType.F32);
        Shape.requireContiguous("value", value);
        Shape.requireContiguous("grad", grad);
        Shape.requireSameShape("value", value, "grad", grad);
        if (!value.device().equals(grad.device())) {
            throw new IllegalArgumentException("value " + value + " and grad " + grad + " are on different devices");
        }
        if (Shape.overlaps(value, grad)) {
            throw new IllegalArgumentException("value " + value + " and grad " + grad + " share memory; a gradient "
                    + "needs its own tensor (the backward pass would overwrite the weights)");
        }
        this.value = value;
        this.grad = grad;
    }

    /**
     * A zero-filled parameter of {@code shape} (value and gradient, F32) allocated in {@code scope}.
     *
     * @param name  local name: non-empty, no {@code '.'}
     * @param shape dims, each {@code ≥ 0}
     * @throws NullPointerException     when {@code name} is null
     * @throws IllegalArgumentException for a bad name or a negative dim
     * @throws IllegalStateException    when {@code scope} is closed
     */
    public static Parameter zeros(Backend backend, TensorScope scope, String name, long... shape) {
        checkName(name);
        return new Parameter(name, backend.zeros(scope, DType.F32, shape), backend.zeros(scope, DType.F32, shape));
    }

    static String checkName(String name) {
        Objects.requireNonNull(name, "name");
        if (name.isEmpty() || name.indexOf('.') >= 0) {
            throw new IllegalArgumentException("parameter or module name must be non-empty and contain no '.', got '"
                    + name + "'");
        }
        return name;
    }

    /** The local name, e.g. {@code weight}. */
    public String name() {
        return name;
    }

    /** The value in its state-dict shape. */
    public Tensor value() {
        return value;
    }

    /** The gradient, the value's shape. */
    public Tensor grad() {
        return grad;
    }

    /** A copy of the shape. */
    public long[] shape() {
        return value.shape();
    }

    /** Number of elements. */
    public long numel() {
        return value.numel();
    }

    /** Sets the gradient to zero. */
    public void zeroGrad() {
        grad.backend().fill(grad, 0f);
    }

    @Override
    public String toString() {
        return "Parameter[" + name + " " + Arrays.toString(value.shape()) + "]";
    }
}
