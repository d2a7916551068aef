package org.diffusion4j.sampling;

import org.diffusion4j.tensor.Tensor;

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
     */
    void predict(Tensor xt, NoiseLevels levels, Tensor condition, Tensor out);

    /**
     * The conditional and unconditional predictions for classifier-free guidance. The default makes two
     * {@link #predict} calls; a model may override it to run both as one batch of {@code 2B}.
     */
    default void predictGuided(Tensor xt, NoiseLevels levels, Tensor cond, Tensor uncond, Tensor outCond,
                               Tensor outUncond) {
        predict(xt, levels, cond, outCond);
        predict(xt, levels, uncond, outUncond);
    }
}
