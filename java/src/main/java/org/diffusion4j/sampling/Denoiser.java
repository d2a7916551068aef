package org.diffusion4j.sampling;

import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.Workspace;

/**
 * The model a sampler calls: any network — this library's, an ONNX Runtime session, a user's own — that maps a
 * noisy batch to a prediction. The prediction type it produces ({@link org.diffusion4j.schedule.Prediction}:
 * {@code EPSILON}, {@code SAMPLE}, {@code V} or {@code VELOCITY}) is declared once to the
 * {@link SamplerContext}; samplers convert it exactly to what each algorithm needs.
 *
 * <p>Contract of {@link #predict}: read {@code xt} and write every element of {@code out}; do not keep references
 * to either after returning (the sampler reuses both buffers), and do not modify {@code xt}.
 */
@FunctionalInterface
public interface Denoiser {

    /**
     * Predicts for one batch.
     *
     * @param xt        model input {@code x_t = α x0 + σ ε} {@code [B, ...]} F32, in the schedule's parameterisation
     *                  (for VE/EDM schedules {@code α = 1}); apply any input preconditioning (EDM {@code c_in},
     *                  k-diffusion's {@code 1/√(σ²+1)}) inside the model
     * @param levels    per-sample noise level: {@code t}, {@code α}, {@code σ}, {@code σ_VE} (host values and, on
     *                  request, {@code [B]} tensors on the backend)
     * @param condition the conditioning (e.g. text embeddings, class labels), or null when unconditional
     * @param out       output {@code [B, ...]} F32, the shape of {@code xt}: the model's prediction
     * @throws IllegalArgumentException (expected of implementations) when {@code xt}, {@code out} or the
     *                                  condition does not fit the model, naming the tensor; the samplers pass it
     *                                  on unchanged
     */
    void predict(Tensor xt, NoiseLevels levels, Tensor condition, Tensor out);

    /**
     * The conditional and unconditional predictions for classifier-free guidance. The default makes two
     * {@link #predict} calls; a model may override it to run both as one batch of {@code 2B}.
     *
     * @param xt        model input {@code [B, ...]} F32, as in {@link #predict}
     * @param levels    per-sample noise levels, as in {@link #predict}
     * @param cond      the conditioning of the guided prediction (model-defined, e.g. I32 {@code [B]} labels)
     * @param uncond    the unconditional (null-class or negative) conditioning, or null when the model takes
     *                  "no condition" as null
     * @param outCond   output: the conditional prediction, {@code [B, ...]} F32 of {@code xt}'s shape
     * @param outUncond output: the unconditional prediction, {@code [B, ...]} F32 of {@code xt}'s shape
     * @throws IllegalArgumentException as {@link #predict}
     */
    default void predictGuided(Tensor xt, NoiseLevels levels, Tensor cond, Tensor uncond, Tensor outCond,
                               Tensor outUncond) {
        predict(xt, levels, cond, outCond);
        predict(xt, levels, uncond, outUncond);
    }

    /**
     * {@link #predict(Tensor, NoiseLevels, Tensor, Tensor)} with the call's temporary tensors taken from
     * {@code scratch}: a {@link Workspace} the caller owns and passes to every call of a loop (one call at a time),
     * so that a sampling loop does not map, zero and unmap fresh native memory at every step ({@link SamplerContext}
     * does this). The default ignores {@code scratch}; this library's models use it.
     *
     * @param scratch the caller's workspace, or null for temporaries of their own
     */
    default void predict(Tensor xt, NoiseLevels levels, Tensor condition, Tensor out, Workspace scratch) {
        predict(xt, levels, condition, out);
    }

    /**
     * {@link #predictGuided(Tensor, NoiseLevels, Tensor, Tensor, Tensor, Tensor)} with the temporaries taken from
     * {@code scratch}, as {@link #predict(Tensor, NoiseLevels, Tensor, Tensor, Workspace)}.
     *
     * @param scratch the caller's workspace, or null for temporaries of their own
     */
    default void predictGuided(Tensor xt, NoiseLevels levels, Tensor cond, Tensor uncond, Tensor outCond,
                               Tensor outUncond, Workspace scratch) {
        predictGuided(xt, levels, cond, uncond, outCond, outUncond);
    }
}
