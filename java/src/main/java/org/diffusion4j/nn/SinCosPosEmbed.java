package org.diffusion4j.nn;

/**
 * The fixed 2-D sine-cosine position embedding of MAE and the reference DiT ({@code get_2d_sincos_pos_embed} in
 * facebookresearch/DiT {@code models.py}, after facebookresearch/mae {@code util/pos_embed.py}; the 1-D form is the
 * Transformer's, Vaswani et al. 2017, §3.5).
 *
 * <p>For a grid of {@code gh} rows and {@code gw} columns, token {@code m = i·gw + j} (row {@code i}, column
 * {@code j}, the row-major patch order of {@link Patchify}) gets the {@code D}-vector
 * <pre>
 *   [ e(j) | e(i) ]                  e(pos) ∈ ℝ^{D/2}: [ sin(pos·ω_0..ω_{D/4−1}) | cos(pos·ω_0..ω_{D/4−1}) ]
 *   ω_k = 10000^(−k/(D/4))
 * </pre>
 * The <b>first</b> half encodes the <b>column</b> index: the reference builds its grid with
 * {@code np.meshgrid(grid_w, grid_h)} ("here w goes first"), so its {@code grid[0]}, embedded into the first half
 * ({@code emb_h}), holds the column coordinates. Computed in float64 (the reference computes in float64 and casts
 * to float32 once) and rounded once.
 */
public final class SinCosPosEmbed {

    private SinCosPosEmbed() {
    }

    /**
     * The embedding {@code [gh·gw, D]} row-major.
     *
     * @param dim {@code D}, a positive multiple of 4
     * @param gh  grid rows {@code ≥ 1}
     * @param gw  grid columns {@code ≥ 1}
     * @throws IllegalArgumentException naming the bad value
     */
    public static float[] grid2d(int dim, int gh, int gw) {
        if (dim < 4 || dim % 4 != 0) {
            throw new IllegalArgumentException("2-D sin-cos position embedding needs a dim that is a positive multiple "
                    + "of 4, got " + dim);
        }
        if (gh < 1 || gw < 1) {
            throw new IllegalArgumentException("position grid must be at least 1x1, got " + gh + "x" + gw);
        }
        int quarter = dim / 4;
        double[] omega = new double[quarter];
        for (int k = 0; k < quarter; k++) {
            omega[k] = 1.0 / Math.pow(10000.0, (double) k / quarter);
        }
        float[] out = new float[Math.multiplyExact(Math.multiplyExact(gh, gw), dim)];
        for (int i = 0; i < gh; i++) {
            for (int j = 0; j < gw; j++) {
                int base = (i * gw + j) * dim;
                for (int k = 0; k < quarter; k++) {
                    double aw = j * omega[k];                         // first half: column j
                    double ah = i * omega[k];                         // second half: row i
                    out[base + k] = (float) Math.sin(aw);
                    out[base + quarter + k] = (float) Math.cos(aw);
                    out[base + 2 * quarter + k] = (float) Math.sin(ah);
                    out[base + 3 * quarter + k] = (float) Math.cos(ah);
                }
            }
        }
        return out;
    }
}
