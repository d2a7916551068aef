package org.diffusion4j.sampling;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Objects;

/**
 * The per-sample noise levels of one model call: for sample {@code b} the model time {@code t_b}, the
 * coefficients {@code α_b, σ_b} of {@code x_t = α x0 + σ ε} and {@code σ_VE = σ/α}; on request also as
 * {@code [B]} F32 tensors on the backend (filled at the first request). An instance is valid only during the
 * {@link Denoiser#predict} call it is passed to.
 */
public final class NoiseLevels {

    private final Level[] levels;
    private final Backend backend;
    private final TensorScope scope;
    private Tensor tBuffer;
    private Tensor sigmaVeBuffer;
    private boolean tFilled;
    private boolean sigmaVeFilled;

    NoiseLevels(Level[] levels, Backend backend, TensorScope scope, Tensor tBuffer, Tensor sigmaVeBuffer) {
        this.levels = levels;
        this.backend = backend;
        this.scope = scope;
        this.tBuffer = tBuffer;
        this.sigmaVeBuffer = sigmaVeBuffer;
    }

    /**
     * Levels of a batch, one per sample; the tensors are allocated in {@code scope} on request.
     *
     * @throws NullPointerException when {@code backend}, {@code scope} or a level is null (naming the sample)
     */
    public static NoiseLevels of(Backend backend, TensorScope scope, Level... perSample) {
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(scope, "scope");
        for (int b = 0; b < perSample.length; b++) {
            Objects.requireNonNull(perSample[b], "level of sample " + b);
        }
        return new NoiseLevels(perSample.clone(), backend, scope, null, null);
    }

    /** Number of samples {@code B}. */
    public int batch() {
        return levels.length;
    }

    /**
     * The level of sample {@code b}; {@link #t}, {@link #alpha}, {@link #sigma} and {@link #sigmaVe} read its fields.
     *
     * @throws ArrayIndexOutOfBoundsException when {@code b} is outside {@code [0, B)} (the same for the accessors)
     */
    public Level level(int b) {
        return levels[b];
    }

    /** Model time {@code t_b ∈ [0, 1]} (for a {@code DiscreteVpSchedule}, timestep {@code t·T − 1}). */
    public double t(int b) {
        return levels[b].t();
    }

    /** {@code α_b}. */
    public double alpha(int b) {
        return levels[b].alpha();
    }

    /** {@code σ_b}. */
    public double sigma(int b) {
        return levels[b].sigma();
    }

    /** {@code σ_VE = σ_b/α_b} (Karras et al. 2022), {@code +∞} at {@code α = 0}. */
    public double sigmaVe(int b) {
        return levels[b].sigmaVe();
    }

    /**
     * {@code [B]} F32 tensor of {@code t_b} on the backend, made on the first call.
     *
     * @throws IllegalStateException when the scope is closed (levels handed to a model are valid only during that
     *                               call)
     */
    public Tensor tTensor() {
        if (tBuffer == null) {
            tBuffer = backend.empty(scope, DType.F32, levels.length);
        }
        if (!tFilled) {
            float[] v = new float[levels.length];
            for (int b = 0; b < v.length; b++) {
                v[b] = (float) levels[b].t();
            }
            tBuffer.copyFrom(v);
            tFilled = true;
        }
        return tBuffer;
    }

    /**
     * {@code [B]} F32 tensor of {@code σ_VE,b} on the backend ({@code +∞} at {@code α = 0}), made on the first call.
     *
     * @throws IllegalStateException when the scope is closed
     */
    public Tensor sigmaVeTensor() {
        if (sigmaVeBuffer == null) {
            sigmaVeBuffer = backend.empty(scope, DType.F32, levels.length);
        }
        if (!sigmaVeFilled) {
            float[] v = new float[levels.length];
            for (int b = 0; b < v.length; b++) {
                v[b] = (float) levels[b].sigmaVe();
            }
            sigmaVeBuffer.copyFrom(v);
            sigmaVeFilled = true;
        }
        return sigmaVeBuffer;
    }
}
