package org.diffusion4j.nn;

import org.diffusion4j.cpu.CpuNnOps;
import org.diffusion4j.cuda.CudaBackend;
import org.diffusion4j.cuda.CudaNnOps;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Device;
import org.diffusion4j.tensor.Shape;
import org.diffusion4j.tensor.Tensor;

import java.util.Objects;

/**
 * The fused ops of the layers and the optimizer that the generic {@link Backend} does not have: pointwise
 * activations with a bias and their backward, the column-sum of a bias gradient, LayerNorm fused with adaLN
 * modulation (forward and backward), the adaLN-Zero gated residual, the scatter-add of an embedding gradient and
 * the fused AdamW step. The per-element arithmetic is {@link NnMath}.
 *
 * <p><b>Conventions.</b> Every tensor is F32 (indices I32), alive, on {@link #backend()}'s device and contiguous,
 * except the per-sample operands {@code shift}, {@code scale}, {@code gate} and their gradients: those are
 * {@code [B, D]} with unit stride along {@code D} and any row stride {@code ≥ D} (e.g. a {@code [B, D]} slice of
 * the {@code [B, 6D]} output of DiT's {@code adaLN_modulation} linear). Outputs are preallocated by the caller.
 * Gradients of <b>parameters</b> ({@code dGamma}, {@code dBeta}, {@code dTable}, the bias sum with
 * {@code accumulate}) are <b>added</b> to; gradients of <b>inputs</b> ({@code dx}, {@code dShift}, ...) are
 * overwritten. An output may be the very tensor of the input it replaces where an op says so, never a partial
 * overlap. A violation throws {@link IllegalArgumentException} (or {@link IllegalStateException} for a closed
 * scope) naming the argument before memory is touched.
 *
 * <p><b>Token layout.</b> The LayerNorm and residual ops read {@code x} of rank {@code ≥ 2} as {@code [B, T, D]}:
 * {@code B = shape(0)}, {@code D = shape(-1)}, {@code T = numel/(B·D)} (so {@code [B, D]} is {@code T = 1}).
 *
 * <p>Implementations: {@link CpuNnOps} (one pass per op, multithreaded, bitwise the same for any thread count) and
 * {@link CudaNnOps} (CUDA kernels; the ops without one yet run composed) and {@link ComposedNnOps} (the same math
 * from generic {@link Backend} ops: the reference in tests). Every op has a composition, so no op throws for lack
 * of a kernel.
 */
public interface NnOps extends AutoCloseable {

    /** The backend whose tensors this instance operates on. */
    Backend backend();

    /**
     * Pointwise {@code out = act(x + bias)}, and {@code pre = x + bias} when {@code pre} is given (what
     * {@link #activationBackward} needs).
     *
     * @param act  the activation
     * @param x    input {@code [..., N]}
     * @param bias {@code [N]} added to every row, or null
     * @param pre  output {@code x + bias} of {@code x}'s shape, or null; may be {@code x}
     * @param out  output of {@code x}'s shape; may be {@code x} (then {@code pre} must not be {@code x})
     * @throws NullPointerException     when {@code act} is null
     * @throws IllegalArgumentException naming the argument: a tensor not F32, contiguous and on this backend, a
     *                                  shape that does not fit, or an output that overlaps an input other than as
     *                                  allowed here
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void activation(Activation act, Tensor x, Tensor bias, Tensor pre, Tensor out);

    /**
     * {@code dx = dy·act'(pre)}.
     *
     * @param pre the activation's input (after any bias)
     * @param dy  upstream gradient, {@code pre}'s shape
     * @param dx  output, {@code pre}'s shape; may be {@code dy}
     * @throws NullPointerException     when {@code act} is null
     * @throws IllegalArgumentException naming the argument: a tensor not F32, contiguous and on this backend, a
     *                                  shape that does not fit, or an output that overlaps an input other than as
     *                                  allowed here
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void activationBackward(Activation act, Tensor pre, Tensor dy, Tensor dx);

    /**
     * Column sums {@code out[n] (+)= Σ_r dy[r, n]} over the rows of {@code dy [..., N]} (the bias gradient of a
     * linear layer), accumulated in float64 in a fixed order.
     *
     * @param out        {@code [N]}, not overlapping {@code dy}
     * @param accumulate add to {@code out} (true) or overwrite it
     * @throws IllegalArgumentException when {@code out} is not {@code [N]} or overlaps {@code dy}
     */
    void columnSum(Tensor dy, Tensor out, boolean accumulate);

    /**
     * LayerNorm over the last dim (Ba et al. 2016, eq. 4; biased variance, as PyTorch's {@code layer_norm}),
     * optionally affine, optionally fused with adaLN modulation (Peebles &amp; Xie 2023, §3.2; see {@link NnMath}):
     * {@code y = ((x − μ)·rstd·γ + β)·(1 + scale_b) + shift_b}. Statistics in float64 per row.
     *
     * @param x     input {@code [B, T, D]} (rank ≥ 2, see the class comment)
     * @param gamma {@code [D]} or null (no affine scale)
     * @param beta  {@code [D]} or null (no affine shift)
     * @param shift per-sample {@code [B, D]} or null
     * @param scale per-sample {@code [B, D]} or null
     * @param eps   {@code > 0}, added to the variance
     * @param out   output, {@code x}'s shape; may be {@code x}
     * @param mean  output {@code μ} (any shape with {@code B·T} elements) or null
     * @param rstd  output {@code 1/√(var + eps)} ({@code B·T} elements) or null
     * @throws IllegalArgumentException for {@code eps} not finite and {@code > 0}, or naming the argument: a tensor
     *                                  not F32 and on this backend (contiguous, except the per-sample operands, see
     *                                  the class comment), a shape that does not fit, or an overlapping output
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void layerNorm(Tensor x, Tensor gamma, Tensor beta, Tensor shift, Tensor scale, float eps, Tensor out, Tensor mean,
                   Tensor rstd);

    /**
     * Backward of {@link #layerNorm} given the saved {@code mean} and {@code rstd}. {@code gamma}, {@code beta} and
     * {@code scale} are the forward's (null where the forward had none).
     *
     * @param dy     upstream gradient, {@code x}'s shape
     * @param dx     output, {@code x}'s shape, overwritten; may be {@code dy}
     * @param dGamma {@code [D]}, added to (null when {@code gamma} is null or its gradient is not wanted)
     * @param dBeta  {@code [D]}, added to (null when not wanted)
     * @param dShift per-sample {@code [B, D]}, overwritten (null when not wanted)
     * @param dScale per-sample {@code [B, D]}, overwritten (null when not wanted)
     * @throws IllegalArgumentException naming the argument: a tensor not F32 and on this backend (contiguous, except
     *                                  the per-sample operands), a shape that does not fit, {@code dGamma} given
     *                                  without {@code gamma}, or an overlapping output
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void layerNormBackward(Tensor x, Tensor gamma, Tensor beta, Tensor scale, Tensor mean, Tensor rstd, Tensor dy,
                           Tensor dx, Tensor dGamma, Tensor dBeta, Tensor dShift, Tensor dScale);

    /**
     * adaLN-Zero gated residual {@code out = x + gate_b·f} (Peebles &amp; Xie 2023, §3.2).
     *
     * @param x    residual stream {@code [B, T, D]}
     * @param gate per-sample {@code [B, D]}
     * @param f    branch output, {@code x}'s shape
     * @param out  output, {@code x}'s shape; may be {@code x}
     * @throws IllegalArgumentException naming the argument: a tensor not F32, contiguous and on this backend, a
     *                                  shape that does not fit, or an output that overlaps an input other than as
     *                                  allowed here
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void gatedResidual(Tensor x, Tensor gate, Tensor f, Tensor out);

    /**
     * Backward of {@link #gatedResidual}: {@code df = dy·gate_b}, {@code dGate_b = Σ_t dy·f}; the gradient of
     * {@code x} is {@code dy} itself.
     *
     * @param gate  the forward's per-sample gate {@code [B, D]}
     * @param f     the forward's branch output {@code [B, T, D]}
     * @param dy    upstream gradient, {@code f}'s shape
     * @param df    output, {@code dy}'s shape, or null; may be {@code f} (read first, per element)
     * @param dGate per-sample {@code [B, D]} output, overwritten, or null
     * @throws IllegalArgumentException naming the argument: a tensor not F32, contiguous and on this backend, a
     *                                  shape that does not fit, or an output that overlaps an input other than as
     *                                  allowed here
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void gatedResidualBackward(Tensor gate, Tensor f, Tensor dy, Tensor df, Tensor dGate);

    /**
     * Embedding gradient {@code dTable[indices[i], :] += dy[i, :]}, rows added in order of {@code i}.
     *
     * @param indices I32 {@code [N]}, each in {@code [0, V)}
     * @param dy      {@code [N, D]}
     * @param dTable  {@code [V, D]}, added to
     * @throws IllegalArgumentException  naming the argument of another dtype, rank, shape or device, or
     *                                   {@code dTable} overlapping {@code dy}
     * @throws IllegalStateException     when a tensor's scope is closed
     * @throws IndexOutOfBoundsException naming the position and value of the first index outside
     *                                   {@code [0, V)}; nothing is written then
     */
    void embeddingBackward(Tensor indices, Tensor dy, Tensor dTable);

    /**
     * One fused AdamW step over one parameter tensor: reads {@code param, grad, m, v} once and writes
     * {@code param, m, v} once (see {@link NnMath}). The weight decay {@code step.decay() = 1 − lr·λ} couples λ with
     * the learning rate as PyTorch does (see {@link org.diffusion4j.optim.AdamW} for the paper's form).
     *
     * @param step  the coefficients ({@link AdamWStep#of})
     * @param param the weights, updated in place
     * @param grad  the gradient, {@code param}'s shape (scaled by {@code step.gradScale()})
     * @param m     first moment, {@code param}'s shape, updated in place
     * @param v     second moment, {@code param}'s shape, updated in place
     * @throws NullPointerException     when {@code step} is null
     * @throws IllegalArgumentException naming the argument: a tensor not F32, contiguous and on this backend, a
     *                                  shape that does not fit, or an output that overlaps an input other than as
     *                                  allowed here
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    void adamw(AdamWStep step, Tensor param, Tensor grad, Tensor m, Tensor v);

    /** Releases resources (worker threads); the backend stays open. */
    @Override
    default void close() {
    }

    /**
     * The ops for {@code backend}: {@link CpuNnOps} on the CPU, {@link CudaNnOps} on a {@link CudaBackend}
     * (kernels for most ops, compositions for the rest), {@link ComposedNnOps} elsewhere.
     */
    static NnOps forBackend(Backend backend) {
        Objects.requireNonNull(backend, "backend");
        if (backend.device().type() == Device.Type.CPU) {
            return new CpuNnOps(backend);
        }
        return backend instanceof CudaBackend ? new CudaNnOps(backend) : new ComposedNnOps(backend);
    }

    // ---------------------------------------------------------------- argument checks for implementations
    // (Everything below is an SPI for implementations, public only because interface members are.)

    /**
     * {@code [B, T, D]} of a token tensor.
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    record Tokens(long batch, long tokens, long dim) {
        /** {@code B·T}. */
        public long rows() {
            return batch * tokens;
        }
    }

    /**
     * Checks an F32 contiguous operand on {@code backend}; null passes only when {@code optional}.
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    static void checkTensor(Backend backend, String name, Tensor t, boolean optional) {
        if (t == null) {
            if (optional) {
                return;
            }
            throw new IllegalArgumentException(name + " must not be null");
        }
        Shape.requireOn(name, t, backend);
        Shape.requireDType(name, t, DType.F32);
        Shape.requireContiguous(name, t);
    }

    /**
     * Like {@link #checkTensor} and of {@code like}'s shape.
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    static void checkLike(Backend backend, String name, Tensor t, String likeName, Tensor like, boolean optional) {
        checkTensor(backend, name, t, optional);
        if (t != null) {
            Shape.requireSameShape(name, t, likeName, like);
        }
    }

    /**
     * Checks a {@code [N]} vector (bias, γ, β).
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    static void checkVector(Backend backend, String name, Tensor t, long n, boolean optional) {
        checkTensor(backend, name, t, optional);
        if (t != null && (t.rank() != 1 || t.shape(0) != n)) {
            throw new IllegalArgumentException(name + " " + t + " must have shape [" + n + "]");
        }
    }

    /**
     * Checks a tensor with {@code n} elements (any shape): saved statistics.
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    static void checkCount(Backend backend, String name, Tensor t, long n, boolean optional) {
        checkTensor(backend, name, t, optional);
        if (t != null && t.numel() != n) {
            throw new IllegalArgumentException(name + " " + t + " must have " + n + " elements (one per row)");
        }
    }

    /**
     * Checks a per-sample operand: F32 {@code [B, D]} on {@code backend}, alive, unit stride along {@code D} and a
     * row stride {@code ≥ D} (rows need not be adjacent).
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    static void checkPerSample(Backend backend, String name, Tensor t, long batch, long dim, boolean optional) {
        if (t == null) {
            if (optional) {
                return;
            }
            throw new IllegalArgumentException(name + " must not be null");
        }
        Shape.requireOn(name, t, backend);
        Shape.requireDType(name, t, DType.F32);
        if (t.rank() != 2 || t.shape(0) != batch || t.shape(1) != dim) {
            throw new IllegalArgumentException(name + " " + t + " must have shape [" + batch + ", " + dim + "]");
        }
        if ((dim > 1 && t.stride(1) != 1) || (batch > 1 && t.stride(0) < dim)) {
            throw new IllegalArgumentException(name + " " + t + " needs unit stride along D and a row stride >= " + dim
                    + ", has strides " + java.util.Arrays.toString(t.strides()));
        }
    }

    /**
     * The {@code [B, T, D]} reading of {@code x} (rank ≥ 2).
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    static Tokens tokens(String name, Tensor x) {
        if (x.rank() < 2) {
            throw new IllegalArgumentException(name + " " + x + " must have rank >= 2 ([B, T, D] or [B, D])");
        }
        long t = 1;
        for (int i = 1; i < x.rank() - 1; i++) {
            t *= x.shape(i);
        }
        return new Tokens(x.shape(0), t, x.shape(-1));
    }

    /**
     * The checks of {@link #columnSum}; returns {@code N}. {@code out} may not share any memory with {@code dy}, not
     * even as the very same tensor (a rank-1 {@code dy} would be summed into itself).
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    static long checkColumnSum(Backend backend, Tensor dy, Tensor out) {
        checkTensor(backend, "dy", dy, false);
        long cols = dy.cols();
        checkVector(backend, "out", out, cols, false);
        Shape.requireSameOrDisjoint("columnSum", "out", out, "dy", dy);
        if (out.numel() > 0 && dy.numel() > 0 && out.storage().address() + out.offset() * 4
                == dy.storage().address() + dy.offset() * 4) {
            throw new IllegalArgumentException("columnSum: out " + out + " is the memory of dy " + dy
                    + " (partially overlaps it); give a separate [" + cols + "] tensor");
        }
        return cols;
    }

    /**
     * Checks every argument of {@link #activation}.
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    static void checkActivation(Backend backend, Activation act, Tensor x, Tensor bias, Tensor pre, Tensor out) {
        Objects.requireNonNull(act, "act");
        checkTensor(backend, "x", x, false);
        checkVector(backend, "bias", bias, x.cols(), true);
        checkLike(backend, "pre", pre, "x", x, true);
        checkLike(backend, "out", out, "x", x, false);
        String op = "activation";
        Shape.requireSameOrDisjoint(op, "out", out, "x", x);
        disjoint(op, "out", out, "bias", bias);
        if (pre != null) {
            Shape.requireSameOrDisjoint(op, "pre", pre, "x", x);
            Shape.requireDisjoint(op, "pre", pre, "out", out);
            disjoint(op, "pre", pre, "bias", bias);
        }
    }

    /**
     * Checks every argument of {@link #activationBackward}.
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    static void checkActivationBackward(Backend backend, Activation act, Tensor pre, Tensor dy, Tensor dx) {
        Objects.requireNonNull(act, "act");
        checkTensor(backend, "pre", pre, false);
        checkLike(backend, "dy", dy, "pre", pre, false);
        checkLike(backend, "dx", dx, "pre", pre, false);
        Shape.requireSameOrDisjoint("activationBackward", "dx", dx, "dy", dy);
        Shape.requireDisjoint("activationBackward", "dx", dx, "pre", pre);
    }

    /** {@link Shape#requireDisjoint} for each pair of an output and another argument that is not null. */
    private static void disjoint(String op, String outName, Tensor out, Object... namesAndTensors) {
        if (out == null) {
            return;
        }
        for (int i = 0; i < namesAndTensors.length; i += 2) {
            Tensor t = (Tensor) namesAndTensors[i + 1];
            if (t != null) {
                Shape.requireDisjoint(op, outName, out, (String) namesAndTensors[i], t);
            }
        }
    }

    /**
     * Checks every argument of {@link #layerNorm}; returns the token layout.
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    static Tokens checkLayerNorm(Backend backend, Tensor x, Tensor gamma, Tensor beta, Tensor shift, Tensor scale,
                                 float eps, Tensor out, Tensor mean, Tensor rstd) {
        checkTensor(backend, "x", x, false);
        Tokens k = tokens("x", x);
        checkVector(backend, "gamma", gamma, k.dim(), true);
        checkVector(backend, "beta", beta, k.dim(), true);
        checkPerSample(backend, "shift", shift, k.batch(), k.dim(), true);
        checkPerSample(backend, "scale", scale, k.batch(), k.dim(), true);
        if (!(eps > 0 && Float.isFinite(eps))) {
            throw new IllegalArgumentException("LayerNorm eps must be finite and > 0, got " + eps);
        }
        checkLike(backend, "out", out, "x", x, false);
        checkCount(backend, "mean", mean, k.rows(), true);
        checkCount(backend, "rstd", rstd, k.rows(), true);
        String op = "layerNorm";
        Shape.requireSameOrDisjoint(op, "out", out, "x", x);
        disjoint(op, "out", out, "gamma", gamma, "beta", beta, "shift", shift, "scale", scale, "mean", mean,
                "rstd", rstd);
        disjoint(op, "mean", mean, "x", x, "gamma", gamma, "beta", beta, "shift", shift, "scale", scale, "rstd", rstd);
        disjoint(op, "rstd", rstd, "x", x, "gamma", gamma, "beta", beta, "shift", shift, "scale", scale);
        return k;
    }

    /**
     * Checks every argument of {@link #layerNormBackward}; returns the token layout.
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    static Tokens checkLayerNormBackward(Backend backend, Tensor x, Tensor gamma, Tensor beta, Tensor scale,
                                        Tensor mean, Tensor rstd, Tensor dy, Tensor dx, Tensor dGamma, Tensor dBeta,
                                        Tensor dShift, Tensor dScale) {
        checkTensor(backend, "x", x, false);
        Tokens k = tokens("x", x);
        checkVector(backend, "gamma", gamma, k.dim(), true);
        checkVector(backend, "beta", beta, k.dim(), true);
        checkPerSample(backend, "scale", scale, k.batch(), k.dim(), true);
        checkCount(backend, "mean", mean, k.rows(), false);
        checkCount(backend, "rstd", rstd, k.rows(), false);
        checkLike(backend, "dy", dy, "x", x, false);
        checkLike(backend, "dx", dx, "x", x, false);
        checkVector(backend, "dGamma", dGamma, k.dim(), true);
        checkVector(backend, "dBeta", dBeta, k.dim(), true);
        checkPerSample(backend, "dShift", dShift, k.batch(), k.dim(), true);
        checkPerSample(backend, "dScale", dScale, k.batch(), k.dim(), true);
        if (dGamma != null && gamma == null) {
            throw new IllegalArgumentException("dGamma " + dGamma + " was given but the forward had no gamma");
        }
        String op = "layerNormBackward";
        Shape.requireSameOrDisjoint(op, "dx", dx, "dy", dy);
        Object[] inputs = {"x", x, "gamma", gamma, "beta", beta, "scale", scale, "mean", mean, "rstd", rstd};
        disjoint(op, "dx", dx, inputs);
        disjoint(op, "dx", dx, "dGamma", dGamma, "dBeta", dBeta, "dShift", dShift, "dScale", dScale);
        disjoint(op, "dGamma", dGamma, inputs);
        disjoint(op, "dGamma", dGamma, "dy", dy, "dBeta", dBeta, "dShift", dShift, "dScale", dScale);
        disjoint(op, "dBeta", dBeta, inputs);
        disjoint(op, "dBeta", dBeta, "dy", dy, "dShift", dShift, "dScale", dScale);
        disjoint(op, "dShift", dShift, inputs);
        disjoint(op, "dShift", dShift, "dy", dy, "dScale", dScale);
        disjoint(op, "dScale", dScale, inputs);
        disjoint(op, "dScale", dScale, "dy", dy);
        return k;
    }

    /**
     * Checks every argument of {@link #gatedResidual}; returns the token layout.
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    static Tokens checkGatedResidual(Backend backend, Tensor x, Tensor gate, Tensor f, Tensor out) {
        checkTensor(backend, "x", x, false);
        Tokens k = tokens("x", x);
        checkPerSample(backend, "gate", gate, k.batch(), k.dim(), false);
        checkLike(backend, "f", f, "x", x, false);
        checkLike(backend, "out", out, "x", x, false);
        Shape.requireSameOrDisjoint("gatedResidual", "out", out, "x", x);
        disjoint("gatedResidual", "out", out, "gate", gate, "f", f);
        return k;
    }

    /**
     * Checks every argument of {@link #gatedResidualBackward}; returns the token layout.
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    static Tokens checkGatedResidualBackward(Backend backend, Tensor gate, Tensor f, Tensor dy, Tensor df,
                                            Tensor dGate) {
        checkTensor(backend, "dy", dy, false);
        Tokens k = tokens("dy", dy);
        checkPerSample(backend, "gate", gate, k.batch(), k.dim(), false);
        checkLike(backend, "f", f, "dy", dy, false);
        checkLike(backend, "df", df, "dy", dy, true);
        checkPerSample(backend, "dGate", dGate, k.batch(), k.dim(), true);
        String op = "gatedResidualBackward";
        if (df != null) {
            Shape.requireSameOrDisjoint(op, "df", df, "f", f);
        }
        disjoint(op, "df", df, "gate", gate, "dy", dy, "dGate", dGate);
        disjoint(op, "dGate", dGate, "gate", gate, "f", f, "dy", dy);
        return k;
    }

    /**
     * Checks the shapes of {@link #embeddingBackward} (indices are checked by the implementation).
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    static void checkEmbeddingBackward(Backend backend, Tensor indices, Tensor dy, Tensor dTable) {
        Shape.requireOperand("indices", indices, backend, DType.I32);
        Shape.requireRank("indices", indices, 1);
        checkTensor(backend, "dy", dy, false);
        checkTensor(backend, "dTable", dTable, false);
        Shape.requireRank("dy", dy, 2);
        Shape.requireRank("dTable", dTable, 2);
        if (dy.shape(0) != indices.shape(0) || dy.shape(1) != dTable.shape(1)) {
            throw new IllegalArgumentException("dy " + dy + " must be [" + indices.shape(0) + ", " + dTable.shape(1)
                    + "] for indices " + indices + " and dTable " + dTable);
        }
        disjoint("embeddingBackward", "dTable", dTable, "dy", dy, "indices", indices);
    }

    /**
     * Checks every argument of {@link #adamw}.
     *
     * <p>SPI helper, for backend implementations of {@link NnOps} (and the layers of this package); public only because
     * interface members are. Callers of the ops need not use it.
     */
    static void checkAdamw(Backend backend, AdamWStep step, Tensor param, Tensor grad, Tensor m, Tensor v) {
        Objects.requireNonNull(step, "step");
        checkTensor(backend, "param", param, false);
        checkLike(backend, "grad", grad, "param", param, false);
        checkLike(backend, "m", m, "param", param, false);
        checkLike(backend, "v", v, "param", param, false);
        disjoint("adamw", "param", param, "grad", grad, "m", m, "v", v);
        disjoint("adamw", "m", m, "grad", grad, "v", v);
        disjoint("adamw", "v", v, "grad", grad);
    }
}
