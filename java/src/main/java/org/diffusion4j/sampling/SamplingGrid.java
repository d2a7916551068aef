package org.diffusion4j.sampling;

import org.diffusion4j.schedule.DiscreteVpSchedule;
import org.diffusion4j.schedule.NoiseSchedule;
import org.diffusion4j.schedule.TimestepSpacing;

import java.util.Arrays;
import java.util.Objects;

/**
 * The descending sequence of noise levels a sampler walks, from level 0 (the noisiest, where the initial noise
 * lives) to the last level (usually clean data). A sampler takes {@link #steps()} {@code = size − 1} steps and
 * indexes levels by the step counter, never by looking a time up by value.
 *
 * <p>Validity: at least two levels; the VE noise level {@code σ/α} strictly decreases (equivalently the log-SNR
 * strictly increases: no zero-size steps, so multistep solvers never divide by {@code h = 0}); only the first
 * level may have {@code α = 0} (zero terminal SNR) and only the last may have {@code σ = 0}. Violations throw
 * {@link IllegalArgumentException} naming the index. Duplicate timesteps from rounding must be removed first
 * ({@link TimestepSpacing#distinct}).
 *
 * <p>The grid keeps its {@link NoiseSchedule} so that samplers which evaluate the model between grid levels
 * (Heun's churn, flow midpoint) can find the model time of such a level.
 */
public final class SamplingGrid {

    private final NoiseSchedule schedule;
    private final Level[] levels;

    private SamplingGrid(NoiseSchedule schedule, Level[] levels) {
        this.schedule = Objects.requireNonNull(schedule, "schedule");
        if (levels.length < 2) {
            throw new IllegalArgumentException("a sampling grid needs at least 2 levels (1 step), got "
                    + levels.length);
        }
        for (int i = 0; i < levels.length; i++) {
            Level l = Objects.requireNonNull(levels[i], "levels[" + i + "]");
            if (l.alpha() == 0 && i > 0) {
                throw new IllegalArgumentException("only the first level may have alpha = 0, but levels[" + i
                        + "] = " + l);
            }
            if (l.sigma() == 0 && i < levels.length - 1) {
                throw new IllegalArgumentException("only the last level may have sigma = 0, but levels[" + i
                        + "] = " + l + (i == 0 ? " (a grid runs from noise to data: times descend, e.g. 1 ... 0)"
                        : ""));
            }
            if (i > 0 && !(l.halfLogSnr() > levels[i - 1].halfLogSnr())) {
                throw new IllegalArgumentException("noise levels must strictly decrease (sigma/alpha), but levels["
                        + (i - 1) + "] = " + levels[i - 1] + " and levels[" + i + "] = " + l
                        + " (remove duplicates, e.g. with TimestepSpacing.distinct)");
            }
        }
        this.levels = levels;
    }

    /**
     * A grid of explicit levels over {@code schedule} (checked as in the class notes).
     *
     * @param schedule the schedule the levels come from (used for levels between grid points)
     * @param levels   the levels, noisiest first; copied
     * @throws NullPointerException     for a null schedule, array or level
     * @throws IllegalArgumentException for fewer than 2 levels, {@code α = 0} at a level other than the first,
     *                                  {@code σ = 0} at a level other than the last, or VE noise levels that do not
     *                                  strictly decrease (naming the index)
     */
    public static SamplingGrid of(NoiseSchedule schedule, Level... levels) {
        return new SamplingGrid(schedule, levels.clone());
    }

    /**
     * Levels {@code (t_i, α(t_i), σ(t_i))} at descending times, e.g. from
     * {@link org.diffusion4j.schedule.SigmaGrids#uniformLogSnr} or {@code linspace(1, 0, N + 1)}.
     *
     * @param schedule the schedule
     * @param times    descending times in {@code [0, 1]}, at least 2
     * @throws NullPointerException     for a null schedule or array
     * @throws IllegalArgumentException for fewer than 2 times (e.g. {@code ofTimes(s, 0.5)}), times outside
     *                                  {@code [0, 1]}, or levels that break the rules of the class notes (not
     *                                  strictly decreasing noise, {@code α = 0} or {@code σ = 0} in the middle)
     */
    public static SamplingGrid ofTimes(NoiseSchedule schedule, double... times) {
        return ofTimesChecked(schedule, times);
    }

    /**
     * A sensible grid of {@code steps} steps from noise to clean data for {@code schedule} (what the CLI samples on):
     * <ul>
     *   <li>a rectified flow ({@link org.diffusion4j.schedule.RectifiedFlowSchedule}): uniform in time,
     *       {@code t = 1 → 0} for the flow samplers, {@code t = 0.999 → 0} for the others (they convert to
     *       {@code ε}, undefined at {@code α = 0});</li>
     *   <li>a discrete VP schedule: trailing timesteps ({@link TimestepSpacing#TRAILING}; Lin et al. 2023,
     *       "Common Diffusion Noise Schedules and Sample Steps are Flawed", WACV 2024, Table 2), at most its
     *       {@code T} training timesteps (more steps give a grid of {@code T} steps);</li>
     *   <li>any other schedule: uniform in log-SNR from {@code t = 1} (or {@code 0.999} where {@code α(1) = 0}) to
     *       {@code t = 1e-3} (as DPM-Solver's "logSNR" spacing, Lu et al. 2022, Sec. 3.3), then {@code t = 0}
     *       (clean data for VP schedules; the schedule's smallest σ for VE and EDM ones).</li>
     * </ul>
     *
     * @param schedule    the model's noise schedule
     * @param steps       {@code N ∈ [1, 100000]}
     * @param flowSampler whether the sampler integrates the flow ODE itself ({@link Samplers#flowEuler},
     *                    {@link Samplers#flowMidpoint}); they need a
     *                    {@link org.diffusion4j.schedule.RectifiedFlowSchedule}
     * @throws NullPointerException     for a null schedule
     * @throws IllegalArgumentException for {@code steps} outside {@code [1, 100000]}, or a flow sampler on another
     *                                  schedule than a {@code RectifiedFlowSchedule}
     * @see GridSpacing#grid(NoiseSchedule, int, boolean)
     */
    public static SamplingGrid standard(NoiseSchedule schedule, int steps, boolean flowSampler) {
        return GridSpacing.AUTO.grid(schedule, steps, flowSampler);
    }

    private static SamplingGrid ofTimesChecked(NoiseSchedule schedule, double... times) {
        Level[] l = new Level[times.length];
        for (int i = 0; i < times.length; i++) {
            l[i] = new Level(times[i], schedule.alpha(times[i]), schedule.sigma(times[i]));
        }
        return new SamplingGrid(schedule, l);
    }

    /**
     * The levels of descending integer timesteps of a discrete VP schedule (e.g. from {@link TimestepSpacing}),
     * using the table exactly ({@code α = √ᾱ_k, σ = √(1 − ᾱ_k)}, {@code t = (k+1)/T}), followed by clean data
     * ({@code t = 0}: the "previous" level of timestep 0, diffusers' {@code set_alpha_to_one = True}).
     * {@code N} timesteps give {@code N} steps, so a single timestep is a valid (one-step) grid.
     *
     * @param schedule  the discrete VP schedule
     * @param timesteps at least one, strictly decreasing, each in {@code [0, T−1]}
     * @throws NullPointerException     for a null schedule or array
     * @throws IllegalArgumentException for no timesteps, timesteps outside {@code [0, T−1]} or not strictly
     *                                  decreasing
     */
    public static SamplingGrid ofTimesteps(DiscreteVpSchedule schedule, int... timesteps) {
        int[] ks = TimestepSpacing.requireTimesteps(timesteps, schedule.numTrainTimesteps());
        Level[] l = new Level[ks.length + 1];
        for (int i = 0; i < ks.length; i++) {
            l[i] = new Level(schedule.tOf(ks[i]), schedule.alphaAt(ks[i]), schedule.sigmaAt(ks[i]));
        }
        l[ks.length] = Level.clean();
        return new SamplingGrid(schedule, l);
    }

    /**
     * Levels at descending VE noise levels {@code σ_VE = σ/α} (k-diffusion grids:
     * {@link org.diffusion4j.schedule.SigmaGrids#karras} and friends, with or without the final 0). A value 0 is
     * {@link Level#clean()}; any other value gives {@code t = schedule.tFromSigmaVe(σ_VE)}, {@code α = α(t)} and
     * {@code σ = σ_VE·α}, so the level's {@code σ/α} is exactly the value asked for.
     *
     * @param schedule the schedule
     * @param sigmasVe descending VE noise levels {@code σ_VE ∈ [0, ∞)}, at least 2
     * @throws NullPointerException     for a null schedule or array
     * @throws IllegalArgumentException for fewer than 2 values, values outside the schedule's range, or values
     *                                  that are not strictly decreasing
     */
    public static SamplingGrid ofSigmasVe(NoiseSchedule schedule, double... sigmasVe) {
        Level[] l = new Level[sigmasVe.length];
        for (int i = 0; i < sigmasVe.length; i++) {
            l[i] = levelAtSigmaVe(schedule, sigmasVe[i]);
        }
        return new SamplingGrid(schedule, l);
    }

    /**
     * Levels of a rectified-flow path ({@code α = 1 − σ}) at descending flow noise levels {@code σ ∈ [0, 1]}
     * (e.g. {@link org.diffusion4j.schedule.SigmaGrids#sd3Sigmas} with a final 0 appended, or
     * {@link org.diffusion4j.schedule.SigmaGrids#fluxSigmas}); {@code t} is the schedule's time of that
     * {@code σ} (for {@link org.diffusion4j.schedule.RectifiedFlowSchedule} with shift {@code s},
     * {@code t = FlowShift.unshift(σ, s)}).
     *
     * @param schedule a schedule with {@code α + σ = 1} (any such schedule, not only
     *                 {@link org.diffusion4j.schedule.RectifiedFlowSchedule})
     * @param sigmas   descending flow noise levels {@code σ ∈ [0, 1]}, at least 2
     * @throws NullPointerException     for a null schedule or array
     * @throws IllegalArgumentException for fewer than 2 values, {@code σ ∉ [0, 1]}, a schedule with
     *                                  {@code α + σ ≠ 1}, or levels that are not strictly decreasing
     */
    public static SamplingGrid ofFlowSigmas(NoiseSchedule schedule, double... sigmas) {
        Level[] l = new Level[sigmas.length];
        for (int i = 0; i < sigmas.length; i++) {
            l[i] = levelAtFlowSigma(schedule, sigmas[i]);
        }
        return new SamplingGrid(schedule, l);
    }

    /** The level of {@code schedule} with VE noise level {@code σ_VE} (see {@link #ofSigmasVe}). */
    static Level levelAtSigmaVe(NoiseSchedule schedule, double sigmaVe) {
        if (!(sigmaVe >= 0 && sigmaVe < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("sigma_VE must be finite and >= 0, got " + sigmaVe);
        }
        if (sigmaVe == 0) {
            return Level.clean();
        }
        double t = schedule.tFromSigmaVe(sigmaVe);
        double alpha = schedule.alpha(t);
        return new Level(t, alpha, sigmaVe * alpha);
    }

    /** The level of a rectified-flow {@code schedule} with flow noise level {@code σ} (see {@link #ofFlowSigmas}). */
    static Level levelAtFlowSigma(NoiseSchedule schedule, double sigma) {
        if (!(sigma >= 0 && sigma <= 1)) {
            throw new IllegalArgumentException("flow sigma must be in [0, 1], got " + sigma);
        }
        requireFlow(schedule, 0.5);
        double t;
        if (sigma == 0 || sigma == 1) {
            t = sigma;
        } else {
            t = schedule.tFromLogSnr(2.0 * (Math.log1p(-sigma) - Math.log(sigma)));
        }
        return new Level(t, 1.0 - sigma, sigma);
    }

    /** @throws IllegalArgumentException unless {@code α(t) + σ(t) = 1} (a rectified-flow path) at {@code t} */
    static void requireFlow(NoiseSchedule schedule, double t) {
        double sum = schedule.alpha(t) + schedule.sigma(t);
        if (!(Math.abs(sum - 1.0) <= 1e-9)) {
            throw new IllegalArgumentException("flow samplers need a rectified-flow schedule (alpha + sigma = 1), but "
                    + schedule + " has alpha + sigma = " + sum + " at t = " + t);
        }
    }

    /** The schedule the levels come from. */
    public NoiseSchedule schedule() {
        return schedule;
    }

    /** Number of levels ({@link #steps()} + 1). */
    public int size() {
        return levels.length;
    }

    /** Number of sampler steps: {@code size() − 1}. */
    public int steps() {
        return levels.length - 1;
    }

    /**
     * Level {@code i}.
     *
     * @param i {@code 0 ≤ i < size()}
     * @throws IndexOutOfBoundsException for {@code i} outside {@code [0, size())}
     */
    public Level level(int i) {
        Objects.checkIndex(i, levels.length);
        return levels[i];
    }

    /** The first (noisiest) level. */
    public Level first() {
        return levels[0];
    }

    /** The last level. */
    public Level last() {
        return levels[levels.length - 1];
    }

    /** A copy of the levels. */
    public Level[] levels() {
        return levels.clone();
    }

    /**
     * The levels from index {@code first} on: the last {@code steps() − first} steps of this grid, for a sampler that
     * starts at a noised input instead of pure noise ({@link #forStrength}).
     *
     * @param first index of the new first level, {@code 0 ≤ first < steps()}
     * @throws IndexOutOfBoundsException for {@code first} outside {@code [0, steps())} (a grid keeps at least 1 step)
     */
    public SamplingGrid from(int first) {
        if (first < 0 || first >= steps()) {
            throw new IndexOutOfBoundsException("first level " + first + " outside [0, " + steps()
                    + ") of a " + steps() + "-step grid (at least one step must remain)");
        }
        return first == 0 ? this : new SamplingGrid(schedule, Arrays.copyOfRange(levels, first, levels.length));
    }

    /**
     * The tail of this grid that image-to-image sampling walks at a given strength (SDEdit: Meng et al. 2022,
     * "SDEdit: Guided Image Synthesis and Editing with Stochastic Differential Equations", Algorithm 1, where the
     * input is noised to an intermediate time {@code t0} and denoised from there): of this grid's {@code N} steps
     * the last {@code k = min(⌊N·strength⌋, N)} are kept, diffusers' rule in its img2img pipelines
     * ({@code init_timestep = min(int(num_inference_steps * strength), num_inference_steps)}, the product in
     * {@code double}), so that {@code --steps 50 --strength 0.8} runs 40 model steps from level 10. Strength 1
     * keeps the whole grid. Start the sample there with
     * {@link SamplerContext#initialNoise(org.diffusion4j.tensor.Tensor, SamplingGrid, org.diffusion4j.tensor.Tensor)}.
     *
     * @param strength how much of the input is replaced by noise, in {@code (0, 1]}
     * @throws IllegalArgumentException for a strength outside {@code (0, 1]} or one that keeps no step
     *                                  ({@code N·strength < 1}), naming the smallest strength that works
     */
    public SamplingGrid forStrength(double strength) {
        if (!(strength > 0 && strength <= 1)) {
            throw new IllegalArgumentException("strength must be in (0, 1], got " + strength);
        }
        int n = steps();
        int k = (int) Math.min(Math.floor(n * strength), n);
        if (k < 1) {
            double least = 1.0 / n;
            while (Math.floor(n * least) < 1) {
                least = Math.nextUp(least);                  // e.g. 49·(1/49) = 0.9999999999999999
            }
            throw new IllegalArgumentException("strength " + strength + " of a " + n + "-step grid keeps no step ("
                    + n + " x " + strength + " < 1); use a strength >= " + least + " or more steps");
        }
        return from(n - k);
    }

    /**
     * This grid's level at VE noise level {@code σ_VE} of its schedule (for levels between grid points).
     *
     * @param sigmaVe the VE noise level {@code σ_VE = σ/α ∈ [0, ∞)} (0: {@link Level#clean()})
     * @throws IllegalArgumentException for a negative, infinite or NaN {@code σ_VE}, or one outside the schedule's
     *                                  range
     */
    public Level levelAtSigmaVe(double sigmaVe) {
        return levelAtSigmaVe(schedule, sigmaVe);
    }

    /**
     * This grid's level at flow noise level {@code σ} (schedules with {@code α + σ = 1} only).
     *
     * @param sigma the flow noise level, the coefficient {@code σ ∈ [0, 1]} (not a VE level)
     * @throws IllegalArgumentException for {@code σ ∉ [0, 1]}, or a schedule with {@code α + σ ≠ 1}
     */
    public Level levelAtFlowSigma(double sigma) {
        return levelAtFlowSigma(schedule, sigma);
    }

    @Override
    public String toString() {
        return "SamplingGrid[" + steps() + " steps over " + schedule + ": " + Arrays.toString(levels) + "]";
    }
}
