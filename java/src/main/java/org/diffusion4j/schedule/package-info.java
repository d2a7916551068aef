/**
 * Noise schedules, inference grids and prediction-type conversions: the scalar (host, {@code double}) core that
 * samplers, trainers and the fused noising kernels build on.
 *
 * <h2>Conventions (DESIGN.md §2)</h2>
 * <ul>
 *   <li>Continuous time {@code t ∈ [0, 1]}: {@code t = 0} is clean data, {@code t = 1} is noise. The forward
 *       process is {@code x_t = α_t·x0 + σ_t·ε}, {@code ε ~ N(0, I)}.</li>
 *   <li>Signal-to-noise ratio {@code SNR = α²/σ²}, log-SNR {@code λ = log SNR = 2·(ln α − ln σ)}
 *       (Kingma et al. 2021, "Variational Diffusion Models", eq. 2); VE/EDM noise level
 *       {@code σ_VE = σ/α = exp(−λ/2)} (Karras et al. 2022, §2, eq. 4 and Table 1, with {@code s(t) = α}).</li>
 *   <li>Discrete VP schedules keep integer timesteps {@code k = 0 … T−1} with tabulated {@code ᾱ_k}
 *       ({@code α = √ᾱ}, {@code σ = √(1−ᾱ)}), exactly as diffusers indexes {@code alphas_cumprod}. The continuous
 *       time of timestep {@code k} is {@code t_k = (k+1)/T}: DDPM's 1-based step {@code k+1} over {@code T}
 *       (Ho et al. 2020, §2), so that {@code t = 0} is the clean data the convention requires and
 *       {@code t = 1} the last training step. See {@link org.diffusion4j.schedule.DiscreteVpSchedule}.</li>
 *   <li>Rectified flow: {@code α = 1 − t}, {@code σ = t}, velocity {@code u = ε − x0}
 *       ({@link org.diffusion4j.schedule.RectifiedFlowSchedule}).</li>
 *   <li>Prediction types {@link org.diffusion4j.schedule.Prediction}: {@code EPSILON}, {@code SAMPLE} (x0),
 *       {@code V} ({@code v = α ε − σ x0}), {@code VELOCITY} ({@code u = ε − x0}); every pair converts exactly
 *       given {@code (x_t, α, σ)} ({@link org.diffusion4j.schedule.PredictionConversion}).</li>
 * </ul>
 *
 * <h2>Map</h2>
 * <ul>
 *   <li>{@link org.diffusion4j.schedule.NoiseSchedule}: {@code alpha(t), sigma(t), logSnr(t)} and the inverse
 *       {@code tFromLogSnr}. Implementations: {@link org.diffusion4j.schedule.DiscreteVpSchedule} (diffusers beta
 *       schedules, zero-terminal-SNR rescale), {@link org.diffusion4j.schedule.VpSchedule} (Song et al. 2021),
 *       {@link org.diffusion4j.schedule.CosineSchedule} (Nichol &amp; Dhariwal 2021),
 *       {@link org.diffusion4j.schedule.RectifiedFlowSchedule} (with the SD3 shift),
 *       {@link org.diffusion4j.schedule.EdmSchedule} (Karras et al. 2022) and
 *       {@link org.diffusion4j.schedule.VeSchedule} (Song et al. 2021).</li>
 *   <li>Grids: {@link org.diffusion4j.schedule.TimestepSpacing} (diffusers {@code leading / trailing /
 *       linspace}), {@link org.diffusion4j.schedule.SigmaGrids} (k-diffusion Karras, exponential,
 *       polyexponential, VP; uniform log-SNR; SD3 and Flux flow grids; validation of user grids) and
 *       {@link org.diffusion4j.schedule.FlowShift} (SD3 shift, resolution-dependent shift).</li>
 * </ul>
 */
package org.diffusion4j.schedule;
