package org.diffusion4j.schedule;

import java.util.Arrays;
import java.util.Locale;

/**
 * How {@code N} inference timesteps are chosen from {@code T} integer training timesteps — the diffusers
 * {@code timestep_spacing} options, named after Lin et al. 2023 ("Common Diffusion Noise Schedules and Sample
 * Steps are Flawed", Table 2). All grids are descending (noise → data), as diffusers'
 * {@code scheduler.timesteps}; rounding is numpy's {@code round} (half to even).
 *
 * <pre>
 *   LEADING   k_i = (N−1−i)·⌊T/N⌋ + steps_offset                    (DDIM, Song et al. 2021a; SD: steps_offset = 1)
 *   TRAILING  k_i = round(T − i·T/N) − 1                             (Lin et al. 2023, §3.3)
 *   LINSPACE  k_i = round(linspace(0, T−1, N))[N−1−i]                (PNDM / LMS style)
 * </pre>
 * (diffusers {@code DDIMScheduler.set_timesteps}; {@code trailing} there is
 * {@code np.round(np.arange(T, 0, -T/N)) - 1}, of which this takes exactly the first {@code N} values.)
 * {@code steps_offset} only affects {@code LEADING}, as in diffusers.
 *
 * <p>For {@code 1 ≤ N ≤ T} every grid is strictly decreasing (the spacing is ≥ 1 before rounding), so no
 * duplicates arise; {@code N > T} is refused (diffusers refuses it too). {@code LINSPACE} with {@code N = 1} is
 * {@code [0]} and {@code LEADING} with {@code N = 1} is {@code [steps_offset]} (diffusers' behaviour: a single
 * step from an almost clean timestep — use {@code TRAILING}, {@code [T−1]}, for few-step sampling, Lin et al.
 * 2023 §3.3).
 */
public enum TimestepSpacing {
    /** {@code k_i = (N−1−i)·⌊T/N⌋ + steps_offset}: never reaches {@code T−1} (Lin et al. 2023, Table 2). */
    LEADING("leading"),
    /** {@code k_i = round(T − i·T/N) − 1}: starts at {@code T−1} (Lin et al. 2023, §3.3). */
    TRAILING("trailing"),
    /** {@code round(linspace(0, T−1, N))}, descending: includes both {@code T−1} and 0. */
    LINSPACE("linspace");

    private final String diffusersName;

    TimestepSpacing(String diffusersName) {
        this.diffusersName = diffusersName;
    }

    /** The diffusers {@code timestep_spacing} string. */
    public String diffusersName() {
        return diffusersName;
    }

    /**
     * {@link #timesteps(int, int, int)} with {@code steps_offset = 0}.
     *
     * @param numTrainTimesteps {@code T ≥ 1}
     * @param numInferenceSteps {@code 1 ≤ N ≤ T}
     * @return {@code N} strictly decreasing timesteps in {@code [0, T−1]}
     * @throws IllegalArgumentException for {@code T < 1} or {@code N} outside {@code [1, T]}
     */
    public int[] timesteps(int numTrainTimesteps, int numInferenceSteps) {
        return timesteps(numTrainTimesteps, numInferenceSteps, 0);
    }

    /**
     * The {@code N} descending inference timesteps.
     *
     * @param numTrainTimesteps {@code T ≥ 1}
     * @param numInferenceSteps {@code 1 ≤ N ≤ T}
     * @param stepsOffset       added to every {@code LEADING} timestep ({@code ≥ 0}; ignored by the others)
     * @return {@code N} strictly decreasing timesteps in {@code [0, T−1]}
     * @throws IllegalArgumentException for {@code T < 1}, {@code N} outside {@code [1, T]}, a negative offset, or a
     *                                  {@code LEADING} grid whose offset pushes the first timestep past {@code T−1}
     */
    public int[] timesteps(int numTrainTimesteps, int numInferenceSteps, int stepsOffset) {
        int t = numTrainTimesteps;
        int n = numInferenceSteps;
        if (t < 1) {
            throw new IllegalArgumentException("numTrainTimesteps must be >= 1, got " + t);
        }
        if (n < 1 || n > t) {
            throw new IllegalArgumentException("numInferenceSteps must be in [1, numTrainTimesteps = " + t
                    + "], got " + n);
        }
        if (stepsOffset < 0) {
            throw new IllegalArgumentException("stepsOffset must be >= 0, got " + stepsOffset);
        }
        int[] ts = new int[n];
        switch (this) {
            case LEADING -> {
                int stepRatio = t / n;
                for (int i = 0; i < n; i++) {
                    ts[i] = (n - 1 - i) * stepRatio + stepsOffset;
                }
                if (ts[0] > t - 1) {
                    throw new IllegalArgumentException("leading spacing with T = " + t + ", N = " + n
                            + " and steps_offset = " + stepsOffset + " starts at timestep " + ts[0]
                            + " > T-1 = " + (t - 1) + "; use a smaller offset or TRAILING");
                }
            }
            case TRAILING -> {
                double stepRatio = (double) t / n;
                for (int i = 0; i < n; i++) {
                    ts[i] = (int) Math.rint(t - i * stepRatio) - 1;
                }
            }
            case LINSPACE -> {
                double[] lin = SigmaGrids.linspace(0, t - 1, n);
                for (int i = 0; i < n; i++) {
                    ts[i] = (int) Math.rint(lin[n - 1 - i]);
                }
            }
        }
        return requireTimesteps(ts, t);
    }

    /**
     * Parses a diffusers {@code timestep_spacing} string ({@code leading}, {@code trailing}, {@code linspace};
     * case and surrounding blanks ignored).
     *
     * @throws NullPointerException     for a null name
     * @throws IllegalArgumentException for an unknown name
     */
    public static TimestepSpacing fromName(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        for (TimestepSpacing s : values()) {
            if (s.diffusersName.equals(n)) {
                return s;
            }
        }
        throw new IllegalArgumentException("unknown timestep spacing '" + name
                + "'; expected leading, trailing or linspace");
    }

    /**
     * Validates a user-supplied grid of integer timesteps (diffusers {@code timesteps=[...]}): non-empty, every
     * value in {@code [0, T−1]}, strictly decreasing. Returns a copy.
     *
     * @param timesteps         the grid; not modified
     * @param numTrainTimesteps {@code T ≥ 1}
     * @throws NullPointerException     for a null array
     * @throws IllegalArgumentException for {@code T < 1} or an empty grid, or naming the first offending index and
     *                                  value
     */
    public static int[] requireTimesteps(int[] timesteps, int numTrainTimesteps) {
        if (numTrainTimesteps < 1) {
            throw new IllegalArgumentException("numTrainTimesteps must be >= 1, got " + numTrainTimesteps);
        }
        if (timesteps.length == 0) {
            throw new IllegalArgumentException("timestep grid is empty");
        }
        int[] ts = timesteps.clone();
        for (int i = 0; i < ts.length; i++) {
            if (ts[i] < 0 || ts[i] >= numTrainTimesteps) {
                throw new IllegalArgumentException("timesteps[" + i + "] = " + ts[i] + " is outside [0, "
                        + (numTrainTimesteps - 1) + "]");
            }
            if (i > 0 && ts[i] >= ts[i - 1]) {
                throw new IllegalArgumentException("timesteps must strictly decrease, but timesteps[" + (i - 1)
                        + "] = " + ts[i - 1] + " and timesteps[" + i + "] = " + ts[i] + " in "
                        + Arrays.toString(ts));
            }
        }
        return ts;
    }

    /**
     * Drops repeated values from a descending grid (e.g. σ grids quantized to the nearest training timestep,
     * where several σ round to the same {@code k}), keeping the first occurrence. A repeated timestep would make
     * a sampler take a zero-size step ({@code h = 0}, a division by zero in multistep solvers).
     *
     * @throws IllegalArgumentException if the grid increases anywhere
     */
    public static int[] distinct(int[] descending) {
        int[] out = new int[descending.length];
        int m = 0;
        for (int i = 0; i < descending.length; i++) {
            if (i > 0 && descending[i] > descending[i - 1]) {
                throw new IllegalArgumentException("grid must not increase, but [" + (i - 1) + "] = "
                        + descending[i - 1] + " < [" + i + "] = " + descending[i]);
            }
            if (m == 0 || descending[i] != out[m - 1]) {
                out[m++] = descending[i];
            }
        }
        return Arrays.copyOf(out, m);
    }
}
