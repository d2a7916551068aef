/**
 * Training-loop utilities over {@link org.diffusion4j.nn.Parameter}s: the fused {@link org.diffusion4j.optim.AdamW}
 * step, global-norm {@link org.diffusion4j.optim.GradClip gradient clipping}, an {@link org.diffusion4j.optim.Ema EMA}
 * of the weights with warm-up, and {@link org.diffusion4j.optim.LrSchedule learning-rate schedules} (linear warm-up,
 * cosine decay). All run through the {@link org.diffusion4j.tensor.Backend} and
 * {@link org.diffusion4j.nn.NnOps}, so they work unchanged on every device.
 */
package org.diffusion4j.optim;
