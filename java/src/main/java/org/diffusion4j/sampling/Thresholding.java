package org.diffusion4j.sampling;

import java.util.Arrays;
import java.util.Locale;

/**
 * Thresholding of the denoised prediction {@code D = x̂0} at every model evaluation, before the sampler's update uses
 * it: what keeps an ε- or v-prediction model's samples inside the data range when {@code x̂0 = (x − σ·ε̂)/α} is
 * amplified at low {@code α}.
 * <ul>
 *   <li>{@link #clip(double) clip(r)}: {@code D ← clamp(D, −r, r)} (Ho et al. 2020's sampler clips {@code x̂0} to
 *       the data range [−1, 1]; diffusers' {@code clip_sample}, {@code clip_sample_range}).</li>
 *   <li>{@link #dynamic(double, double) dynamic(p, max)}: per sample, {@code s = clamp(q_p(|D|), 1, max)}, then
 *       {@code D ← clamp(D, −s, s)/s} (Saharia et al. 2022, "Photorealistic Text-to-Image Diffusion Models with Deep
 *       Language Understanding" (Imagen), §2.3 "dynamic thresholding"; diffusers' {@code thresholding},
 *       {@code dynamic_thresholding_ratio}, {@code sample_max_value}). {@code q_p} is the {@code p}-quantile of the
 *       sample's absolute values with linear interpolation between order statistics (as {@code torch.quantile}).</li>
 * </ul>
 * Both assume data in {@code [−1, 1]} (images as this library loads them), not standardised vectors. The guided
 * prediction is thresholded (after classifier-free guidance and its rescale), as diffusers does. Immutable.
 *
 * @param kind       which thresholding
 * @param percentile {@code p} of {@link Kind#DYNAMIC} in {@code (0, 1]}; 1 for {@link Kind#CLIP}
 * @param max        the clip bound {@code r} of {@link Kind#CLIP}, or the largest {@code s} of {@link Kind#DYNAMIC};
 *                   {@code > 0} and finite ({@code ≥ 1} for dynamic)
 */
public record Thresholding(Kind kind, double percentile, double max) {

    /** The two kinds. */
    public enum Kind {
        /** {@code D ← clamp(D, −max, max)}. */
        CLIP,
        /** Imagen's per-sample dynamic thresholding. */
        DYNAMIC
    }

    /** Imagen's default percentile (and diffusers' {@code dynamic_thresholding_ratio}). */
    public static final double DEFAULT_PERCENTILE = 0.995;

    /**
     * The default largest scale {@code s} of {@link #parse parsed} dynamic thresholding: 1.5, DeepFloyd IF's
     * {@code sample_max_value} (with diffusers' default 1.0, {@code s} is always 1 and dynamic thresholding is the
     * plain clip; Imagen bounds {@code s} only by the data).
     */
    public static final double DEFAULT_DYNAMIC_MAX = 1.5;

    /**
     * Validates the parameters.
     *
     * @throws IllegalArgumentException naming the bad value
     */
    public Thresholding {
        java.util.Objects.requireNonNull(kind, "kind");
        if (!(max >= 1e-30 && max <= Float.MAX_VALUE)) {          // applied in float32 arithmetic
            throw new IllegalArgumentException("threshold bound must be finite and in [1e-30, 3.4e38] (float32), got "
                    + max);
        }
        if (kind == Kind.DYNAMIC) {
            if (!(percentile > 0 && percentile <= 1)) {
                throw new IllegalArgumentException("dynamic threshold percentile must be in (0, 1], got " + percentile);
            }
            if (!(max >= 1)) {
                throw new IllegalArgumentException("dynamic threshold max must be >= 1, got " + max);
            }
        } else if (percentile != 1) {
            throw new IllegalArgumentException("clip thresholding takes no percentile, got " + percentile);
        }
    }

    /** {@code D ← clamp(D, −r, r)}. */
    public static Thresholding clip(double r) {
        return new Thresholding(Kind.CLIP, 1, r);
    }

    /** Imagen's dynamic thresholding with percentile {@code p} and largest scale {@code max}. */
    public static Thresholding dynamic(double p, double max) {
        return new Thresholding(Kind.DYNAMIC, p, max);
    }

    /**
     * Parses {@code clip}, {@code clip:R}, {@code dynamic}, {@code dynamic:P} or {@code dynamic:P:MAX} (the CLI's
     * spelling; {@code clip} is {@code clip:1}, {@code dynamic} is {@code dynamic:0.995:1.5}); {@code none} gives null.
     *
     * @return the thresholding, or {@code null} for {@code none} (no thresholding)
     * @throws NullPointerException     for null text
     * @throws IllegalArgumentException naming the bad text
     */
    public static Thresholding parse(String text) {
        String[] parts = text.trim().split(":", -1);               // numbers as given: "NaN", not "nan"
        try {
            return switch (parts[0].toLowerCase(Locale.ROOT)) {
                case "none" -> {
                    if (parts.length != 1) {
                        throw new IllegalArgumentException("none takes no parameters");
                    }
                    yield null;
                }
                case "clip" -> {
                    if (parts.length > 2) {
                        throw new IllegalArgumentException("clip takes one bound, clip:R");
                    }
                    yield clip(parts.length == 2 ? Double.parseDouble(parts[1]) : 1);
                }
                case "dynamic" -> {
                    if (parts.length > 3) {
                        throw new IllegalArgumentException("dynamic takes dynamic:P or dynamic:P:MAX");
                    }
                    yield dynamic(parts.length >= 2 ? Double.parseDouble(parts[1]) : DEFAULT_PERCENTILE,
                            parts.length == 3 ? Double.parseDouble(parts[2]) : DEFAULT_DYNAMIC_MAX);
                }
                default -> throw new IllegalArgumentException("expected none, clip[:R] or dynamic[:P[:MAX]]");
            };
        } catch (NumberFormatException e) {                    // "For input string: ..." says nothing here
            throw new IllegalArgumentException("bad thresholding '" + text + "': its numbers must be decimal numbers, "
                    + "as clip:1.5 or dynamic:0.995:1.5", e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("bad thresholding '" + text + "': " + e.getMessage(), e);
        }
    }

    /**
     * Thresholds {@code d}, {@code rows} samples of {@code cols} values each (row-major), in place.
     *
     * @throws IllegalArgumentException when {@code d.length != rows·cols}
     */
    public void apply(float[] d, int rows, int cols) {
        if (rows < 0 || cols < 0 || (long) rows * cols != d.length) {
            throw new IllegalArgumentException("thresholding " + d.length + " values as " + rows + " x " + cols);
        }
        if (kind == Kind.CLIP) {
            float r = (float) max;
            for (int i = 0; i < d.length; i++) {
                d[i] = Math.min(Math.max(d[i], -r), r);              // NaN stays NaN
            }
            return;
        }
        float[] abs = new float[cols];
        for (int row = 0; row < rows; row++) {
            int off = row * cols;
            for (int j = 0; j < cols; j++) {
                abs[j] = Math.abs(d[off + j]);
            }
            double s = Math.min(Math.max(quantile(abs, percentile), 1.0), max);
            float sf = (float) s;
            for (int j = 0; j < cols; j++) {
                d[off + j] = (float) (Math.min(Math.max(d[off + j], -sf), sf) / s);
            }
        }
    }

    /**
     * The {@code p}-quantile of {@code v} with linear interpolation between order statistics ({@code torch.quantile}'s
     * default: position {@code p·(n − 1)}); sorts {@code v}. NaN when {@code v} holds NaN.
     */
    static double quantile(float[] v, double p) {
        Arrays.sort(v);                                            // NaNs sort last
        if (v.length == 0) {
            return Double.NaN;
        }
        if (Float.isNaN(v[v.length - 1])) {
            return Double.NaN;
        }
        double pos = p * (v.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = Math.min(lo + 1, v.length - 1);
        double frac = pos - lo;
        return v[lo] + (v[hi] - (double) v[lo]) * frac;
    }

    @Override
    public String toString() {
        return kind == Kind.CLIP ? "clip:" + fmt(max) : "dynamic:" + fmt(percentile) + ":" + fmt(max);
    }

    private static String fmt(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v);
    }
}
