package org.diffusion4j.io;

/**
 * Separable resampling of one image plane (float64, row-major {@code [H, W]}) and the centre crop used by
 * {@link ImageFolder}.
 *
 * <ul>
 *   <li><b>Downscaling</b> ({@code out <= in} along an axis): area averaging (a box filter). Output pixel
 *       {@code o} covers the input interval {@code [o·in/out, (o+1)·in/out)}; each input pixel contributes
 *       in proportion to its overlap with that interval, so a constant image stays constant and an integer
 *       factor averages whole blocks. (OpenCV's {@code INTER_AREA} and PIL's {@code BOX} filter do the same.)</li>
 *   <li><b>Upscaling</b>: bilinear interpolation with half-pixel centres: output {@code o} samples input
 *       position {@code (o + 0.5)·in/out − 0.5}, clamped to the edge pixels (OpenCV {@code INTER_LINEAR},
 *       PyTorch {@code interpolate(..., align_corners=False)}).</li>
 * </ul>
 *
 * <p>Package-private: {@link ImageFolder}'s loading is its only user.
 */
final class ImageResize {

    private ImageResize() {
    }

    /** The contributions to one output index: input indices and their weights (summing to 1). */
    record Taps(int[][] index, double[][] weight) {
    }

    /** Taps for resampling an axis of {@code in} pixels to {@code out} pixels. */
    static Taps taps(int in, int out) {
        if (in < 1 || out < 1) {
            throw new IllegalArgumentException("sizes must be >= 1, got " + in + " -> " + out);
        }
        int[][] idx = new int[out][];
        double[][] w = new double[out][];
        double scale = (double) in / out;
        for (int o = 0; o < out; o++) {
            if (in >= out) {
                double lo = o * scale;
                double hi = (o + 1) * scale;
                int first = (int) Math.floor(lo);
                int last = Math.min(in - 1, (int) Math.ceil(hi) - 1);
                idx[o] = new int[last - first + 1];
                w[o] = new double[last - first + 1];
                for (int i = first; i <= last; i++) {
                    double overlap = Math.min(hi, i + 1) - Math.max(lo, i);
                    idx[o][i - first] = i;
                    w[o][i - first] = Math.max(0, overlap) / scale;
                }
            } else {
                double c = (o + 0.5) * scale - 0.5;
                int i0 = (int) Math.floor(c);
                double f = c - i0;
                int a = Math.clamp(i0, 0, in - 1);
                int b = Math.clamp(i0 + 1, 0, in - 1);
                idx[o] = new int[] {a, b};
                w[o] = new double[] {1 - f, f};
            }
        }
        return new Taps(idx, w);
    }

    /**
     * Resamples {@code src [h, w]} to {@code [outH, outW]}: rows first, then columns (the filters are
     * separable, so the order does not change the result beyond rounding).
     */
    static double[] resize(double[] src, int h, int w, int outH, int outW) {
        if (src.length != (long) h * w) {
            throw new IllegalArgumentException(src.length + " values for a " + h + " x " + w + " plane");
        }
        Taps tx = taps(w, outW);
        Taps ty = taps(h, outH);
        double[] tmp = new double[h * outW];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < outW; x++) {
                double acc = 0;
                int[] ix = tx.index[x];
                double[] wx = tx.weight[x];
                for (int k = 0; k < ix.length; k++) {
                    acc += wx[k] * src[y * w + ix[k]];
                }
                tmp[y * outW + x] = acc;
            }
        }
        double[] out = new double[outH * outW];
        for (int y = 0; y < outH; y++) {
            int[] iy = ty.index[y];
            double[] wy = ty.weight[y];
            for (int x = 0; x < outW; x++) {
                double acc = 0;
                for (int k = 0; k < iy.length; k++) {
                    acc += wy[k] * tmp[iy[k] * outW + x];
                }
                out[y * outW + x] = acc;
            }
        }
        return out;
    }

    /**
     * The centred square of side {@code min(h, w)}: offsets {@code ((h − s) / 2, (w − s) / 2)} rounded down.
     *
     * @return {@code {top, left, side}}
     */
    static int[] centreSquare(int h, int w) {
        int s = Math.min(h, w);
        return new int[] {(h - s) / 2, (w - s) / 2, s};
    }
}
