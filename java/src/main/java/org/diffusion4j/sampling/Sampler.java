package org.diffusion4j.sampling;

import org.diffusion4j.tensor.Tensor;

/**
 * A sampling algorithm: walks {@code x} from the first level of a {@link SamplingGrid} to the last, calling the
 * model through {@link SamplerContext#evaluate} and updating {@code x} with fused passes
 * ({@link SamplerContext#update}). After each step, {@code x} at level {@code i + 1}, it calls
 * {@link SamplerContext#afterStep}{@code (x, grid, i + 1)}, where inpainting replaces the known region (a sampler
 * that does not is refused for inpainting). Implementations: {@link Samplers}.
 */
@FunctionalInterface
public interface Sampler {

    /**
     * Runs the sampler.
     *
     * @param ctx  the model, guidance, noise seeds and fused ops
     * @param x    {@code [B, ...]} F32 contiguous: on entry the sample at {@code grid.first()} (e.g. from
     *             {@link SamplerContext#initialNoise}), on return the sample at {@code grid.last()}
     * @param grid the levels, noisiest first
     * @throws IllegalArgumentException when the grid or the model's prediction type does not suit the algorithm
     */
    void sample(SamplerContext ctx, Tensor x, SamplingGrid grid);
}
