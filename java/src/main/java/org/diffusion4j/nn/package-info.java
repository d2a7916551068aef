/**
 * Layers with explicit forward and backward passes (no general autograd), the models built from them, and the
 * fused ops they need beyond the generic {@link org.diffusion4j.tensor.Backend}.
 *
 * <h2>Structure</h2>
 * <ul>
 *   <li>{@link org.diffusion4j.nn.Parameter} (value + gradient) and {@link org.diffusion4j.nn.Module}, which lists
 *       parameters recursively under PyTorch state-dict names ({@code blocks.0.fc1.weight}); values keep their
 *       state-dict shapes (a linear weight is {@code [out, in]}), so weights move to and from PyTorch code without
 *       renaming or transposing.</li>
 *   <li>Layers: {@link org.diffusion4j.nn.Linear} (GEMM + fused bias/activation), {@link org.diffusion4j.nn.SiLU},
 *       {@link org.diffusion4j.nn.Gelu}, {@link org.diffusion4j.nn.LayerNorm} (optionally fused with adaLN
 *       modulation), {@link org.diffusion4j.nn.Residual} (plain and adaLN-Zero gated),
 *       {@link org.diffusion4j.nn.TimestepEmbedder}, {@link org.diffusion4j.nn.Embedding},
 *       {@link org.diffusion4j.nn.ClassEmbedder} (learned null class, Philox label dropout),
 *       {@link org.diffusion4j.nn.Patchify} and {@link org.diffusion4j.nn.PatchEmbed}.</li>
 *   <li>Models, behind {@link org.diffusion4j.nn.DenoiserModel} (a {@link org.diffusion4j.sampling.Denoiser} with
 *       forward/backward for training): {@link org.diffusion4j.nn.MlpDenoiser} and {@link org.diffusion4j.nn.DiT}
 *       (Peebles &amp; Xie 2023, with the reference implementation's state-dict names); {@link org.diffusion4j.nn.Models}
 *       builds either from its kind and JSON config (checkpoints, CLI).</li>
 *   <li>{@link org.diffusion4j.nn.NnOps}: the SPI of the fused ops, per-element math in
 *       {@link org.diffusion4j.nn.NnMath}; {@code org.diffusion4j.cpu.CpuNnOps} on the CPU,
 *       {@link org.diffusion4j.nn.ComposedNnOps} (generic backend ops) elsewhere.</li>
 * </ul>
 *
 * <h2>Forward and backward</h2>
 * A layer's {@code forward(scope, inputs...)} allocates its output and whatever its backward needs in the caller's
 * {@link org.diffusion4j.tensor.TensorScope} and returns them as a {@code Cache} record; {@code backward(scope, cache,
 * dy, ...)} returns the input gradient (allocated in {@code scope}) and <b>adds</b> to the parameters' gradients
 * ({@link org.diffusion4j.nn.Module#zeroGrad()} clears them). The caller keeps the inputs unchanged between the
 * two passes and closes the scope after the backward pass, which frees every activation at once.
 */
package org.diffusion4j.nn;
