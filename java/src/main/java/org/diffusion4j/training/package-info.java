/**
 * Training: the {@link org.diffusion4j.training.Trainer} with its {@link org.diffusion4j.training.TrainingConfig},
 * per-step {@link org.diffusion4j.training.StepStats} for {@link org.diffusion4j.training.TrainingListener}s,
 * deterministic resumable {@link org.diffusion4j.training.BatchSource batches}, and safetensors
 * {@link org.diffusion4j.training.Checkpoint checkpoints} of the whole training state; and the training-side
 * scalars: time and noise-level samplers, loss weights and preconditioning — pure host functions of
 * {@code double}s that the fused noising op ({@link org.diffusion4j.training.ForwardNoising}) and the trainer
 * evaluate per sample.
 *
 * <ul>
 *   <li>{@link org.diffusion4j.training.TimeSampler}: uniform, logit-normal, SD3 mode, CosMap — each a pure
 *       function of one uniform draw (and logit-normal of one normal draw), with stratified batches and
 *       {@code draw(seed, stream, i)} over {@link org.diffusion4j.random.Philox};
 *       {@link org.diffusion4j.training.EdmLogNormal}: EDM's {@code ln σ ~ N(P_mean, P_std²)}.</li>
 *   <li>{@link org.diffusion4j.training.LossWeights#minSnr}: min-SNR-γ for every prediction type;
 *       {@link org.diffusion4j.training.EdmPreconditioning}: {@code c_skip, c_out, c_in, c_noise} and
 *       {@code λ(σ)}; {@link org.diffusion4j.training.Sd3Weighting}: {@code sigma_sqrt}, {@code cosmap}.</li>
 *   <li>{@link org.diffusion4j.training.OffsetNoise}: the offset-noise parameter of the fused noising op.</li>
 *   <li>{@link org.diffusion4j.training.Objectives}: refuses an ε target at zero SNR.</li>
 * </ul>
 * Training targets and their {@code (x0, ε)} coefficients: {@link org.diffusion4j.schedule.Prediction}.
 */
package org.diffusion4j.training;
