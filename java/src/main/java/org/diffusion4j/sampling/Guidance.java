package org.diffusion4j.sampling;

/**
 * Classifier-free guidance settings: {@code out = uncond + w·(cond − uncond)} (DESIGN.md §2), which is Ho &amp;
 * Salimans 2022 ("Classifier-Free Diffusion Guidance", eq. 6: {@code (1 + w')·cond − w'·uncond}) with
 * {@code w = 1 + w'}: this library's {@code w = 1} is no guidance (the paper's {@code w' = 0}), so a scale
 * {@code w'} taken from that paper is {@code w = w' + 1} here; diffusers' and Stable Diffusion's
 * {@code guidance_scale} is this {@code w}. Optional rescale {@code out ← φ·out·std(cond)/std(out) + (1 − φ)·out}
 * per sample (Lin et al. 2023, "Common Diffusion Noise
 * Schedules and Sample Steps are Flawed", §3.4). Both are applied to the raw model outputs, in the model's own
 * prediction type, as diffusers' {@code guidance_scale} and {@code guidance_rescale} are; the guided output is then
 * converted to what the sampler needs. {@code w = 1} is no guidance (the unconditional model is not evaluated).
 *
 * @param scale   {@code w = 1 + w'}, finite (1: off; Stable Diffusion uses 7.5)
 * @param rescale {@code φ ∈ [0, 1]} (0: off; Lin et al. recommend 0.7)
 */
public record Guidance(double scale, double rescale) {

    /** No guidance: {@code w = 1, φ = 0}. */
    public static final Guidance NONE = new Guidance(1.0, 0.0);

    /**
     * Validates finite {@code w} and {@code φ ∈ [0, 1]}.
     *
     * @throws IllegalArgumentException naming the bad value
     */
    public Guidance {
        if (!Double.isFinite(scale)) {
            throw new IllegalArgumentException("guidance scale must be finite, got " + scale);
        }
        if (!(rescale >= 0 && rescale <= 1)) {
            throw new IllegalArgumentException("guidance rescale must be in [0, 1], got " + rescale);
        }
    }

    /**
     * Plain CFG with scale {@code w} (no rescale).
     *
     * @param scale {@code w = 1 + w'} of Ho &amp; Salimans' eq. 6, finite
     * @throws IllegalArgumentException for a non-finite {@code w}
     */
    public static Guidance of(double scale) {
        return new Guidance(scale, 0.0);
    }

    /**
     * CFG with scale {@code w} and rescale {@code φ}.
     *
     * @param scale   {@code w = 1 + w'} of Ho &amp; Salimans' eq. 6, finite
     * @param rescale {@code φ ∈ [0, 1]}
     * @throws IllegalArgumentException for a non-finite {@code w} or {@code φ ∉ [0, 1]}, naming the value
     */
    public static Guidance of(double scale, double rescale) {
        return new Guidance(scale, rescale);
    }

    /** Whether the unconditional output is needed ({@code w ≠ 1}). */
    public boolean isGuided() {
        return scale != 1.0;
    }
}
