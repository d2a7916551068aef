package org.diffusion4j.training;

/**
 * Offset noise (Guttenberg 2023, "Diffusion with Offset Noise", Crosslabs blog): the training noise gets a
 * per-channel constant added, {@code ε' = ε + strength·δ}, with {@code δ ~ N(0, 1)} drawn once per
 * (sample, channel) and broadcast over the spatial dims of {@code [B, C, H, W]}, so the model can learn to move the
 * mean brightness of an image (typical {@code strength ≈ 0.1}). {@code ε'} is then used both in
 * {@code x_t = α x0 + σ ε'} and in the target. This record is the parameter of the fused noising op; its
 * per-element arithmetic is {@link #apply}.
 *
 * <p>The per-element variance becomes {@code 1 + strength²}; like the reference implementation this does not
 * renormalize. Draw {@code δ} from its own Philox stream (index {@code b·C + c}) so that enabling offset noise
 * does not change {@code ε}.
 *
 * @param strength the offset scale, finite and {@code ≥ 0} (0 = off)
 */
public record OffsetNoise(double strength) {

    /** No offset. */
    public static final OffsetNoise NONE = new OffsetNoise(0.0);

    /** Validates {@code strength ≥ 0}, finite. */
    public OffsetNoise {
        if (!(strength >= 0 && strength < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("offset noise strength must be finite and >= 0, got " + strength);
        }
    }

    /** One element: {@code ε + strength·δ}, {@code δ} the draw of this element's (sample, channel). */
    public double apply(double eps, double channelNoise) {
        return eps + strength * channelNoise;
    }

    /** Per-element variance of {@code ε'}: {@code 1 + strength²}. */
    public double variance() {
        return 1.0 + strength * strength;
    }

    /** Whether the offset is off ({@code strength = 0}). */
    public boolean isNone() {
        return strength == 0;
    }
}
