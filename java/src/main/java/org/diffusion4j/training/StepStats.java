package org.diffusion4j.training;

/**
 * What one {@link Trainer} step measured.
 *
 * @param step             the step's index {@code k ≥ 0} (the number of steps completed before it; after it,
 *                         {@code k + 1} are)
 * @param loss             the plain mean squared error {@code (1/B) Σ_b (1/n) Σ_j (out − target)²} over the batch
 * @param weightedLoss     the minimised loss {@code (1/B) Σ_b w_b (1/n) Σ_j (out − target)²} (equal to {@code loss}
 *                         without a loss weight)
 * @param gradNorm         the global L2 norm of the gradients before clipping
 *                         ({@link org.diffusion4j.optim.GradClip#globalNorm})
 * @param clipFactor       the factor the gradients were scaled by ({@code 1} when not clipped)
 * @param lr               the learning rate used
 * @param samplesPerSecond samples (images or vectors) processed per second of this step's wall time
 *                         ({@code B / seconds})
 * @param seconds          wall time of the step, seconds (not deterministic)
 */
public record StepStats(long step, double loss, double weightedLoss, double gradNorm, double clipFactor, double lr,
                        double samplesPerSecond, double seconds) {
}
