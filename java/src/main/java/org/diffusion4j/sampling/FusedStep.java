package org.diffusion4j.sampling;

import java.util.Objects;

/**
 * The host-side parameters of one fused sampler-step pass ({@link DiffusionOps#samplerStep}): per-sample
 * coefficients of the update (computed in {@code double}, rounded to {@code float} by the op) and the guidance
 * settings. See {@link FusedMath} for the per-element formula.
 *
 * <p>The arrays are shared, not copied, on construction and on access (this record is built once per pass on a
 * hot path): the compact constructor's checks hold for their contents at that moment only, so do not modify an
 * array after handing it over.
 *
 * @param ax       per-sample coefficient of the state {@code x}
 * @param ai       per-sample coefficient of the model input {@code xIn} (beyond its part through {@code D})
 * @param ag       per-sample coefficient of the guided model output {@code g}
 * @param ah       per-sample coefficient of the history {@code h}
 * @param az       per-sample coefficient of this step's noise {@code z}
 * @param ka       per-sample coefficient of {@code xIn} in the prediction written to the history
 * @param kb       per-sample coefficient of {@code g} in the prediction written to the history
 * @param guidance CFG scale {@code w} (finite); used only when an {@code uncond} output is given
 * @param rescale  guidance rescale {@code φ ∈ [0, 1]}; used only when an {@code uncond} output is given
 * @param seeds    the batch's noise seeds, or null when every {@code az} is 0
 * @param draw     the noise draw of this step ({@link NoiseSeeds}: stream {@code stream + draw})
 */
public record FusedStep(double[] ax, double[] ai, double[] ag, double[] ah, double[] az, double[] ka, double[] kb,
                        double guidance, double rescale, NoiseSeeds seeds, long draw) {

    /**
     * Validates equal lengths, values finite in float32 (the kernels' arithmetic), {@code φ ∈ [0, 1]} and the presence of seeds when noise is used.
     *
     * @throws IllegalArgumentException naming the offending field
     */
    public FusedStep {
        int n = ax.length;
        double[][] all = {ax, ai, ag, ah, az, ka, kb};
        String[] names = {"ax", "ai", "ag", "ah", "az", "ka", "kb"};
        for (int i = 0; i < all.length; i++) {
            Objects.requireNonNull(all[i], names[i]);
            if (all[i].length != n) {
                throw new IllegalArgumentException("coefficient " + names[i] + " has " + all[i].length
                        + " values, ax has " + n + " (one per sample)");
            }
            for (int b = 0; b < n; b++) {
                if (!(Math.abs(all[i][b]) <= Float.MAX_VALUE)) {
                    throw new IllegalArgumentException("coefficient " + names[i] + "[" + b + "] = " + all[i][b]
                            + " is not finite in float32 (the kernels' arithmetic)");
                }
            }
        }
        if (!(Math.abs(guidance) <= Float.MAX_VALUE)) {
            throw new IllegalArgumentException("guidance scale must be finite in float32, got " + guidance);
        }
        if (!(rescale >= 0 && rescale <= 1)) {
            throw new IllegalArgumentException("guidance rescale must be in [0, 1], got " + rescale);
        }
        boolean noise = false;
        for (double v : az) {
            noise |= v != 0;
        }
        if (noise) {
            if (seeds == null) {
                throw new IllegalArgumentException("the step adds noise (az != 0) but no noise seeds were given");
            }
            seeds.requireSize(n);
        }
    }

    /** Number of samples. */
    public int batch() {
        return ax.length;
    }

    /** Whether any sample adds noise. */
    public boolean hasNoise() {
        for (double v : az) {
            if (v != 0) {
                return true;
            }
        }
        return false;
    }

    /** Whether any sample reads the history. */
    public boolean readsHistory() {
        for (double v : ah) {
            if (v != 0) {
                return true;
            }
        }
        return false;
    }
}
