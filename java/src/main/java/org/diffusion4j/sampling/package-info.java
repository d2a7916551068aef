/**
 * Sampling: the {@link org.diffusion4j.sampling.Denoiser} SPI any model plugs into, the samplers, classifier-free
 * guidance, per-sample noise seeds, and the fused diffusion ops (sampler steps and forward noising) behind the
 * {@link org.diffusion4j.sampling.DiffusionOps} SPI.
 *
 * <h2>Conventions (DESIGN.md §2)</h2>
 * {@code t ∈ [0, 1]}, {@code t = 0} data; {@code x_t = α x0 + σ ε}; the sampler state is {@code x_t} in the
 * schedule's own parameterisation (for VE/EDM {@code α = 1}); VE noise level {@code σ_VE = σ/α}; the model's
 * {@link org.diffusion4j.schedule.Prediction} ({@code EPSILON}, {@code SAMPLE}, {@code V}, {@code VELOCITY}) is
 * converted exactly ({@link org.diffusion4j.schedule.PredictionConversion}).
 *
 * <h2>Map</h2>
 * <ul>
 *   <li>{@link org.diffusion4j.sampling.SamplingGrid} of {@link org.diffusion4j.sampling.Level}s: built from times,
 *       discrete timesteps, VE sigmas (Karras, exponential…) or flow sigmas; walked by step counter.</li>
 *   <li>{@link org.diffusion4j.sampling.Samplers}: DDPM ancestral ({@code fixed_small}, {@code fixed_large}),
 *       DDIM (η), Euler, Euler ancestral, Heun (with churn), DPM-Solver++(2M), DPM-Solver++(2M) SDE,
 *       DPM-Solver++(3M) and (3M) SDE, UniPC, flow Euler,
 *       flow midpoint, RePaint — each one short function following its paper.</li>
 *   <li>Image-to-image and inpainting: {@link org.diffusion4j.sampling.SamplingGrid#forStrength} (SDEdit's shortened
 *       grid), {@code SamplerContext.initialNoise(x, grid, init)}, and
 *       {@link org.diffusion4j.sampling.SamplerContext.Builder#inpaint} (the known region replaced after every
 *       step).</li>
 *   <li>{@link org.diffusion4j.sampling.SamplerContext}: model, prediction type, conditioning,
 *       {@link org.diffusion4j.sampling.Guidance} (CFG with rescale), {@link org.diffusion4j.sampling.NoiseSeeds},
 *       scratch buffers; {@code evaluate} + {@code update} are what samplers are written in.</li>
 *   <li>{@link org.diffusion4j.sampling.DiffusionOps}: the fused ops, with the per-element formulas in
 *       {@link org.diffusion4j.sampling.FusedMath}; implementations {@code org.diffusion4j.cpu.CpuDiffusionOps}
 *       (one pass), {@code org.diffusion4j.cuda.CudaDiffusionOps} (CUDA kernels, one per op) and
 *       {@link org.diffusion4j.sampling.ComposedDiffusionOps} (unfused Backend ops: the test reference, and the
 *       fallback for other backends); {@link org.diffusion4j.sampling.DiffusionOps#forBackend} picks one.</li>
 *   <li>Forward noising for training: {@code org.diffusion4j.training.ForwardNoising} on
 *       {@link org.diffusion4j.sampling.DiffusionOps#forwardNoise}.</li>
 * </ul>
 *
 * <h2>Embedding a sampler</h2>
 * <pre>{@code
 * Denoiser net = (xt, levels, cond, out) -> myModel.forward(xt, levels.tTensor(), cond, out); // writes eps
 * try (Backend be = Backends.create("auto"); TensorScope scope = TensorScope.open()) {
 *     var schedule = DiscreteVpSchedule.scaledLinear(1000);
 *     var grid = SamplingGrid.ofTimesteps(schedule, TimestepSpacing.TRAILING.timesteps(1000, 25));
 *     Tensor x = be.empty(scope, DType.F32, 4, 4, 64, 64);
 *     try (var ctx = SamplerContext.builder(be, net, Prediction.EPSILON).condition(text)
 *             .guidance(Guidance.of(7.5, 0.7), emptyText).noise(NoiseSeeds.batch(42, 0, 0, 4)).build()) {
 *         ctx.initialNoise(x, grid);
 *         ctx.sample(Samplers.dpmSolverPp2m(), x, grid);                    // x now holds the samples
 *     }
 * }
 * }</pre>
 */
package org.diffusion4j.sampling;
