package org.diffusion4j.optim;

import org.diffusion4j.nn.Parameter;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Global-norm gradient clipping (Pascanu, Mikolov &amp; Bengio 2013, Algorithm 1), as PyTorch's
 * {@code clip_grad_norm_}: with {@code N = √(Σ_p ‖grad_p‖²)} over all parameters ({@link Backend#globalNorm},
 * float64, thread-count invariant), every gradient is multiplied by {@code min(1, maxNorm/(N + 1e-6))}.
 */
public final class GradClip {

    /** The {@code 1e-6} PyTorch adds to the norm in the clip coefficient. */
    public static final double EPS = 1e-6;

    private GradClip() {
    }

    /**
     * The global L2 norm {@code √(Σ_p ‖grad_p‖²)} of the parameters' gradients, accumulated in float64.
     *
     * @param backend the backend holding the gradients
     * @param params  the parameters (F32 gradients); an empty list gives 0
     * @return the norm; NaN or infinite when a gradient element is
     * @throws NullPointerException     when an argument is null
     * @throws IllegalArgumentException when a gradient is not an F32 tensor on {@code backend}'s device
     * @throws IllegalStateException    when a gradient's scope is closed
     */
    public static double globalNorm(Backend backend, List<Parameter> params) {
        List<Tensor> grads = new ArrayList<>(params.size());
        for (Parameter p : params) {
            grads.add(p.grad());
        }
        return backend.globalNorm(grads);
    }

    /**
     * The clip factor {@code min(1, maxNorm/(norm + 1e-6))}; 1 when the norm is not finite (nothing sensible to
     * scale by: the caller decides whether to skip the step).
     *
     * @param norm    the global norm ({@link #globalNorm})
     * @param maxNorm the largest norm left unscaled, {@code > 0} ({@code +∞} never clips)
     * @throws IllegalArgumentException when {@code maxNorm} is not positive (NaN included)
     */
    public static double clipFactor(double norm, double maxNorm) {
        if (!(maxNorm > 0)) {
            throw new IllegalArgumentException("max gradient norm must be > 0, got " + maxNorm);
        }
        if (!Double.isFinite(norm)) {
            return 1.0;
        }
        return Math.min(1.0, maxNorm / (norm + EPS));
    }

    /**
     * Scales every gradient by {@link #clipFactor} in place (only when the factor is below 1) and returns the norm
     * before clipping (NaN or infinite when a gradient is; the gradients are then left as they are).
     *
     * @param backend the backend holding the gradients
     * @param params  the parameters whose F32 gradients are clipped
     * @param maxNorm the largest global norm left unscaled, {@code > 0}
     * @return the global norm before clipping
     * @throws NullPointerException     when an argument is null
     * @throws IllegalArgumentException when {@code maxNorm} is not positive, or a gradient is not an F32 tensor on
     *                                  {@code backend}'s device (nothing is scaled then)
     * @throws IllegalStateException    when a gradient's scope is closed
     */
    public static double clip(Backend backend, List<Parameter> params, double maxNorm) {
        Objects.requireNonNull(params, "params");
        double norm = globalNorm(backend, params);
        double f = clipFactor(norm, maxNorm);
        if (f < 1.0) {
            for (Parameter p : params) {
                backend.binary(Ops.Binary.MUL, p.grad(), (float) f, p.grad());
            }
        }
        return norm;
    }
}
