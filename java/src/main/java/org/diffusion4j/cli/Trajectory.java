package org.diffusion4j.cli;

import org.diffusion4j.sampling.SamplerContext;
import org.diffusion4j.sampling.SamplingGrid;
import org.diffusion4j.tensor.Tensor;

/**
 * {@code sample --trajectory}: the states of the first samples along the sampler's levels, from the starting noise
 * (level 0) to the result, at up to {@value #MAX_COLUMNS} evenly spaced levels, for a picture with a row per sample
 * and a column per level. A level visited more than once (RePaint's jumps back) keeps its last visit. Listens to the
 * first batch only (it holds the first samples).
 */
final class Trajectory implements SamplerContext.StepListener {

    /** Samples drawn at the most (rows). */
    static final int MAX_ROWS = 8;
    /** Levels drawn at the most (columns), the first and the last among them. */
    static final int MAX_COLUMNS = 10;

    private final int rows;
    private final int per;
    private final int[] levels;            // the kept levels, ascending: 0 … steps
    private final float[][] states;        // per kept level: rows × per values, or null until reached

    /**
     * @param n     samples drawn (the rows are the first {@code min(n, batch, MAX_ROWS)}: those of the first batch)
     * @param batch samples per model batch
     * @param per   values per sample
     * @param steps the grid's steps
     */
    Trajectory(int n, int batch, long per, int steps) {
        this.rows = Math.min(Math.min(n, batch), MAX_ROWS);
        this.per = Math.toIntExact(per);
        int columns = Math.min(MAX_COLUMNS, steps + 1);
        this.levels = new int[columns];
        for (int c = 0; c < columns; c++) {
            levels[c] = (int) Math.round((double) c * steps / (columns - 1));
        }
        this.states = new float[columns][];
    }

    /** The starting state (level 0) of the first batch. */
    void start(Tensor x) {
        record(0, x);
    }

    @Override
    public void onStep(int level, SamplingGrid grid, Tensor x) {
        record(level, x);
    }

    private void record(int level, Tensor x) {
        for (int c = 0; c < levels.length; c++) {
            if (levels[c] == level) {
                states[c] = x.slice(0, 0, rows).toFloatArray();
            }
        }
    }

    /** Rows of the picture (samples). */
    int rows() {
        return rows;
    }

    /** Columns of the picture (levels). */
    int columns() {
        return levels.length;
    }

    /** The kept levels, 0 (the starting noise) to the grid's steps. */
    int[] levels() {
        return levels.clone();
    }

    /**
     * The picture's values, row-major by sample then level: {@code rows × columns} samples of {@code per} values.
     *
     * @throws IllegalStateException when a kept level was never reached
     */
    float[] values() {
        float[] out = new float[rows * levels.length * per];
        for (int c = 0; c < levels.length; c++) {
            if (states[c] == null) {
                throw new IllegalStateException("level " + levels[c] + " was never reached");
            }
            for (int r = 0; r < rows; r++) {
                System.arraycopy(states[c], r * per, out, (r * levels.length + c) * per, per);
            }
        }
        return out;
    }
}
