package org.diffusion4j.nn;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Objects;

/**
 * Residual connections: the plain sum {@code x + f} (He et al. 2016) and the adaLN-Zero gated form
 * {@code x + gate_b·f} with per-sample {@code gate [B, D]} broadcast over the tokens of {@code [B, T, D]}
 * (Peebles &amp; Xie 2023, §3.2: the gates come from a zero-initialised linear, so each block starts as the
 * identity).
 */
public final class Residual {

    private Residual() {
    }

    /**
     * {@code out = x + f} (same shapes; {@code out} may be {@code x} or {@code f}). The backward is the identity:
     * the output gradient flows unchanged into both {@code x} and {@code f}.
     *
     * @throws IllegalArgumentException naming the argument: a tensor not F32, contiguous and on {@code backend}, or
     *                                  of another shape than {@code x}
     * @throws IllegalStateException    when a tensor's scope is closed
     */
    public static void add(Backend backend, Tensor x, Tensor f, Tensor out) {
        NnOps.checkTensor(backend, "x", x, false);
        NnOps.checkLike(backend, "f", f, "x", x, false);
        NnOps.checkLike(backend, "out", out, "x", x, false);
        backend.binary(Ops.Binary.ADD, x, f, out);
    }

    /**
     * {@code x + gate_b·f}, allocated in {@code scope} ({@link NnOps#gatedResidual}).
     *
     * @param x    residual stream {@code [B, T, D]} (rank ≥ 2, read as in {@link NnOps}'s token layout)
     * @param gate per-sample {@code [B, D]}, unit stride along {@code D}, any row stride (e.g. a slice of the
     *             {@code [B, 6D]} adaLN modulation)
     * @param f    branch output, {@code x}'s shape
     * @return a new {@code [B, T, D]} tensor in {@code scope}
     * @throws NullPointerException     when {@code ops} is null
     * @throws IllegalArgumentException naming the argument of another dtype, shape or device
     * @throws IllegalStateException    when a scope is closed
     */
    public static Tensor gated(NnOps ops, TensorScope scope, Tensor x, Tensor gate, Tensor f) {
        Objects.requireNonNull(ops, "ops");
        NnOps.checkTensor(ops.backend(), "x", x, false);
        Tensor out = ops.backend().empty(scope, DType.F32, x.shape());
        ops.gatedResidual(x, gate, f, out);
        return out;
    }

    /**
     * Backward of {@link #gated}: returns {@code df = dy·gate_b} (allocated in {@code scope}) and writes
     * {@code dGate = Σ_t dy·f} (per-sample {@code [B, D]}, overwritten) when given; {@code dx = dy}.
     *
     * @param gate  the forward's per-sample gate {@code [B, D]}
     * @param f     the forward's branch output {@code [B, T, D]}
     * @param dy    upstream gradient, {@code f}'s shape
     * @param dGate per-sample {@code [B, D]} output, overwritten, or null
     * @return {@code df}, {@code dy}'s shape, in {@code scope}
     * @throws NullPointerException     when {@code ops} is null
     * @throws IllegalArgumentException naming the argument of another dtype, shape or device
     * @throws IllegalStateException    when a scope is closed
     */
    public static Tensor gatedBackward(NnOps ops, TensorScope scope, Tensor gate, Tensor f, Tensor dy, Tensor dGate) {
        Objects.requireNonNull(ops, "ops");
        NnOps.checkTensor(ops.backend(), "dy", dy, false);
        Tensor df = ops.backend().empty(scope, DType.F32, dy.shape());
        ops.gatedResidualBackward(gate, f, dy, df, dGate);
        return df;
    }
}
