package org.diffusion4j.sampling;

import org.diffusion4j.schedule.DiscreteVpSchedule;
import org.diffusion4j.schedule.FlowShift;
import org.diffusion4j.schedule.NoiseSchedule;
import org.diffusion4j.schedule.RectifiedFlowSchedule;
import org.diffusion4j.schedule.SigmaGrids;
import org.diffusion4j.schedule.TimestepSpacing;

import java.util.Locale;
import java.util.Objects;

/**
 * How the levels of a {@link SamplingGrid} are spaced between pure noise and clean data, by name: what the CLI's
 * {@code --grid} option takes, and the choices of k-diffusion's {@code get_sigmas_*} and diffusers'
 * {@code timestep_spacing} / {@code use_karras_sigmas} in one place.
 *
 * <table>
 *   <caption>Spacings ({@code N} steps give {@code N + 1} levels)</caption>
 *   <tr><th>name</th><th>levels</th><th>schedules</th></tr>
 *   <tr><td>{@code auto}</td><td>{@link SamplingGrid#standard}</td><td>any</td></tr>
 *   <tr><td>{@code time}</td><td>uniform in {@code t} from {@code t_max} to 0</td><td>any</td></tr>
 *   <tr><td>{@code logsnr}</td><td>uniform in log-SNR {@code λ} from {@code t_max'} to {@code t_min}, then clean
 *       data (Lu et al. 2022, "DPM-Solver", Sec. 3.3; for VE/EDM schedules k-diffusion's
 *       {@code get_sigmas_exponential})</td><td>any</td></tr>
 *   <tr><td>{@code karras[:ρ]}</td><td>uniform in {@code σ_VE^{1/ρ}} from {@code σ_VE(t_max')} to
 *       {@code σ_VE(t_min)}, then clean data (Karras et al. 2022, eq. 5; {@code ρ = 7} by default; diffusers'
 *       {@code use_karras_sigmas})</td><td>any</td></tr>
 *   <tr><td>{@code shift:s}</td><td>flow noise levels {@code σ_i = s·u_i / (1 + (s − 1)·u_i)} of a uniform
 *       {@code u} from {@code u_max} (whose {@code σ} is the noise level of {@code t_max}) to 0 (Esser et al. 2024,
 *       eq. 23): more steps at high noise for {@code s > 1}; {@code s} is absolute, not added to a shift the schedule
 *       was trained with (on a schedule with shift {@code s}, {@code shift:s} is its {@code time} grid)</td>
 *       <td>rectified flow</td></tr>
 *   <tr><td>{@code trailing}, {@code leading}, {@code linspace}</td><td>integer timesteps by
 *       {@link TimestepSpacing} (at most {@code T} of them), then clean data</td><td>discrete VP</td></tr>
 * </table>
 * where {@code t_max = 1}, except {@code 0.999} when {@code α(1) = 0} (zero terminal SNR, e.g. a rectified flow)
 * and the sampler is not a flow sampler (the others convert to {@code ε}, undefined at {@code α = 0});
 * {@code t_max' = 0.999} whenever {@code α(1) = 0} ({@code λ} and {@code σ_VE} are infinite there); {@code t_min} is
 * the time of training timestep 0 ({@code 1/T}) for a discrete VP schedule, {@code 0} when {@code σ(0) > 0}
 * (VE, EDM) and {@code 10⁻³} otherwise. Every grid but {@code auto} ends at {@link Level#clean()}.
 *
 * <p>Immutable; {@link #toString()} gives the name {@link #parse} reads back.
 *
 * @param kind      the spacing
 * @param parameter {@code ρ ∈ [0.05, 100]} for {@link Kind#KARRAS}, the shift {@code s ∈ [0.001, 1000]} for
 *                  {@link Kind#SHIFT} (beyond, the levels collapse), NaN for the others
 */
public record GridSpacing(Kind kind, double parameter) {

    /** The spacings; see the class notes. */
    public enum Kind {
        /** {@link SamplingGrid#standard}. */
        AUTO,
        /** Uniform in time. */
        TIME,
        /** Uniform in log-SNR. */
        LOGSNR,
        /** Karras et al. 2022, eq. 5, with parameter {@code ρ}. */
        KARRAS,
        /** A uniform rectified-flow grid time-shifted by the parameter {@code s}. */
        SHIFT,
        /** {@link TimestepSpacing#TRAILING} timesteps of a discrete VP schedule. */
        TRAILING,
        /** {@link TimestepSpacing#LEADING} timesteps of a discrete VP schedule. */
        LEADING,
        /** {@link TimestepSpacing#LINSPACE} timesteps of a discrete VP schedule. */
        LINSPACE
    }

    /** The names {@link #parse} accepts, for messages. */
    public static final String NAMES = "auto, time, logsnr, karras, karras:RHO, shift:S, trailing, leading, linspace";

    /** {@code ρ} of {@code karras} without a value: Karras et al. 2022's choice. */
    public static final double DEFAULT_RHO = 7.0;

    /** {@link SamplingGrid#standard}. */
    public static final GridSpacing AUTO = new GridSpacing(Kind.AUTO, Double.NaN);

    /** Lowest level of the log-SNR and Karras grids of continuous VP schedules (as {@link SamplingGrid#standard}). */
    private static final double T_MIN_CONTINUOUS = 1e-3;

    /** Start of grids on schedules with {@code α(1) = 0} for samplers that need {@code α > 0}. */
    private static final double T_MAX_ZERO_SNR = 0.999;

    /**
     * Validates the pair.
     *
     * @throws IllegalArgumentException for a parameter outside {@code [0.05, 100]} ({@code karras}) or
     *                                  {@code [0.001, 1000]} ({@code shift}), or not NaN (the others)
     * @throws NullPointerException     for a null kind
     */
    public GridSpacing {
        Objects.requireNonNull(kind, "kind");
        boolean takesParameter = kind == Kind.KARRAS || kind == Kind.SHIFT;
        if (takesParameter && !(parameter >= minOf(kind) && parameter <= maxOf(kind))) {
            throw new IllegalArgumentException("grid spacing " + name(kind) + " needs a "
                    + (kind == Kind.KARRAS ? "rho" : "shift") + " in [" + minOf(kind) + ", " + maxOf(kind) + "], got "
                    + parameter);
        }
        if (!takesParameter && !Double.isNaN(parameter)) {
            throw new IllegalArgumentException("grid spacing " + name(kind) + " takes no parameter, got "
                    + parameter);
        }
    }

    /** Smallest {@code ρ} of {@code karras} (0.05) and shift {@code s} (0.001): beyond, the levels collapse. */
    private static double minOf(Kind k) {
        return k == Kind.KARRAS ? 0.05 : 1e-3;
    }

    /** Largest {@code ρ} of {@code karras} (100) and shift {@code s} (1000). */
    private static double maxOf(Kind k) {
        return k == Kind.KARRAS ? 100 : 1e3;
    }

    /** A decimal number: digits, an optional fraction and exponent (no Java suffixes, hex or words). */
    private static final java.util.regex.Pattern DECIMAL =
            java.util.regex.Pattern.compile("[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?");

    /**
     * {@code karras:ρ}.
     *
     * @param rho {@code ρ ∈ [0.05, 100]} (Karras et al. 2022 use 7)
     * @throws IllegalArgumentException for {@code ρ} outside {@code [0.05, 100]} or NaN
     */
    public static GridSpacing karras(double rho) {
        return new GridSpacing(Kind.KARRAS, rho);
    }

    /**
     * {@code shift:s}.
     *
     * @param s the shift {@code s ∈ [0.001, 1000]} (Esser et al. 2024 use 3 for SD3)
     * @throws IllegalArgumentException for {@code s} outside {@code [0.001, 1000]} or NaN
     */
    public static GridSpacing shift(double s) {
        return new GridSpacing(Kind.SHIFT, s);
    }

    /**
     * A spacing without a parameter ({@code karras} gets {@link #DEFAULT_RHO}).
     *
     * @throws NullPointerException     for a null kind
     * @throws IllegalArgumentException for {@link Kind#SHIFT}, which needs its value ({@link #shift})
     */
    public static GridSpacing of(Kind kind) {
        if (kind == Kind.KARRAS) {
            return karras(DEFAULT_RHO);
        }
        return new GridSpacing(kind, Double.NaN);
    }

    /**
     * Reads a name of {@link #NAMES} (case-insensitive, surrounding blanks ignored): {@code karras},
     * {@code karras:5}, {@code shift:3}, {@code trailing}, ...
     *
     * @throws NullPointerException     for null text
     * @throws IllegalArgumentException naming the text for an unknown name, a missing, unparsable or out-of-range
     *                                  parameter, or a parameter given to a spacing that takes none
     */
    public static GridSpacing parse(String text) {
        Objects.requireNonNull(text, "text");
        String s = text.strip().toLowerCase(Locale.ROOT);
        int colon = s.indexOf(':');
        String head = colon < 0 ? s : s.substring(0, colon).strip();
        Kind kind = null;
        for (Kind k : Kind.values()) {
            if (name(k).equals(head)) {
                kind = k;
            }
        }
        if (kind == null) {
            throw new IllegalArgumentException("unknown grid spacing '" + text + "'; expected one of " + NAMES);
        }
        if (colon < 0) {
            if (kind == Kind.SHIFT) {
                throw new IllegalArgumentException("grid spacing 'shift' needs its value, e.g. shift:3");
            }
            return of(kind);
        }
        if (kind != Kind.KARRAS && kind != Kind.SHIFT) {
            throw new IllegalArgumentException("grid spacing '" + head + "' takes no value, got '" + text + "'");
        }
        String typed = text.strip();
        String value = typed.substring(typed.indexOf(':') + 1).strip();   // as typed
        if (!DECIMAL.matcher(value).matches()) {
            throw new IllegalArgumentException("grid spacing '" + text + "': '" + value + "' is not a number");
        }
        double v = Double.parseDouble(value);
        if (!(v >= minOf(kind) && v <= maxOf(kind))) {
            throw new IllegalArgumentException("grid spacing '" + text + "': the "
                    + (kind == Kind.KARRAS ? "rho" : "shift") + " must be in [" + minOf(kind) + ", " + maxOf(kind)
                    + "], got " + value);
        }
        return new GridSpacing(kind, v);
    }

    /**
     * The grid of {@code steps} steps over {@code schedule}.
     *
     * <p>On a {@link DiscreteVpSchedule}, {@code auto} and the timestep spacings pick at most {@code T} distinct
     * timesteps: asking for more steps than {@code T} gives a grid of {@code T} steps (check
     * {@link SamplingGrid#steps()}), where {@link TimestepSpacing#timesteps(int, int)} itself refuses
     * {@code N > T}. A schedule counts as a rectified flow here (for {@code shift}, {@code auto}'s uniform-time grid
     * and flow samplers) only when it is a {@link RectifiedFlowSchedule}; {@link SamplingGrid#ofFlowSigmas} and
     * the flow samplers themselves accept any schedule with {@code α + σ = 1}, so build the grid of another such
     * schedule with {@link SamplingGrid#ofFlowSigmas}.
     *
     * @param schedule    the model's noise schedule
     * @param steps       the number of steps {@code N ∈ [1, 100000]} ({@code N + 1} levels)
     * @param flowSampler whether the sampler integrates the flow ODE itself ({@link Samplers#flowEuler},
     *                    {@link Samplers#flowMidpoint}), which needs a rectified flow and may start at {@code t = 1}
     * @return the grid, noisiest level first
     * @throws NullPointerException     for a null schedule
     * @throws IllegalArgumentException for {@code steps} outside {@code [1, 100000]}, a flow sampler on another
     *                                  schedule than a {@link RectifiedFlowSchedule}, {@code shift} on a schedule
     *                                  that is not one, a timestep spacing on a schedule that is not a discrete VP
     *                                  one, or a grid that collapses (levels not strictly decreasing, e.g. a tiny
     *                                  {@code ρ})
     */
    public SamplingGrid grid(NoiseSchedule schedule, int steps, boolean flowSampler) {
        return grid(schedule, steps, flowSampler, 1.0);
    }

    /**
     * {@link #grid(NoiseSchedule, int, boolean)} for a model trained on times {@code t ≤ tMax} only (e.g. an
     * {@code ε} model on a zero-terminal-SNR schedule, trained with {@code t ∈ [0, 0.99]}): the grid starts at
     * {@code min(t_max, tMax)} (the {@code t_max} of the class notes) instead of where the model never learned; for
     * timestep spacings and a discrete VP schedule's {@code auto} grid, at the largest timestep {@code k} with
     * {@code (k + 1)/T ≤ tMax}. {@code tMax = 1} is {@link #grid(NoiseSchedule, int, boolean)}.
     *
     * @param tMax the largest time the model was trained on, in {@code (0, 1]}
     * @throws NullPointerException     for a null schedule
     * @throws IllegalArgumentException as {@link #grid(NoiseSchedule, int, boolean)}, or for {@code tMax} outside
     *                                  {@code (0, 1]} or below a discrete schedule's first timestep
     */
    public SamplingGrid grid(NoiseSchedule schedule, int steps, boolean flowSampler, double tMax) {
        Objects.requireNonNull(schedule, "schedule");
        if (steps < 1 || steps > 100_000) {
            throw new IllegalArgumentException("steps must be in [1, 100000], got " + steps);
        }
        if (!(tMax > 0 && tMax <= 1)) {
            throw new IllegalArgumentException("tMax must be in (0, 1], got " + tMax);
        }
        boolean flow = schedule instanceof RectifiedFlowSchedule;
        if (flowSampler && !flow) {
            throw new IllegalArgumentException("a flow sampler needs a flow-matching (rectified flow) schedule; "
                    + "this one is " + schedule);
        }
        boolean zeroTerminal = schedule.alpha(1.0) == 0;
        double tTop = Math.min(tMax, zeroTerminal && !flowSampler ? T_MAX_ZERO_SNR : 1.0);
        double tMaxFinite = Math.min(tMax, zeroTerminal ? T_MAX_ZERO_SNR : 1.0);
        return switch (kind) {
            case AUTO -> {                                          // SamplingGrid.standard's documented grid
                if (flow) {                                         // uniform in time
                    yield SamplingGrid.ofTimes(schedule, SigmaGrids.linspace(tTop, 0, steps + 1));
                }
                if (schedule instanceof DiscreteVpSchedule d) {
                    yield timesteps(d, TimestepSpacing.TRAILING, steps, tMax);
                }
                double[] t = SigmaGrids.uniformLogSnr(schedule, steps, tMaxFinite, T_MIN_CONTINUOUS);
                double[] all = java.util.Arrays.copyOf(t, steps + 1);
                all[steps] = 0;
                yield SamplingGrid.ofTimes(schedule, all);
            }
            case TIME -> {
                double[] t = SigmaGrids.linspace(tTop, 0, steps + 1);
                Level[] l = levelsAt(schedule, t);
                l[steps] = Level.clean();
                yield SamplingGrid.of(schedule, l);
            }
            case LOGSNR -> {
                double[] t = SigmaGrids.uniformLogSnr(schedule, steps, tMaxFinite, tMin(schedule));
                yield endClean(schedule, levelsAt(schedule, t));
            }
            case KARRAS -> {
                double tMin = tMin(schedule);
                double sigmaMax = sigmaVe(schedule, tMaxFinite);
                double sigmaMin = sigmaVe(schedule, tMin);
                if (!Double.isFinite(Math.pow(sigmaMax, 1.0 / parameter))) {
                    throw new IllegalArgumentException("grid spacing " + this + ": rho " + parameter + " is too small "
                            + "for sigma_max = " + sigmaMax + " (sigma_max^(1/rho) overflows); use a rho of at least "
                            + String.format(java.util.Locale.ROOT, "%.3g", Math.log(sigmaMax) / 700));
                }
                double[] sv = SigmaGrids.karras(steps, sigmaMin, sigmaMax, parameter);
                Level[] l = new Level[steps];
                for (int i = 0; i < steps; i++) {
                    // the ends at their exact times (no round trip through tFromSigmaVe), the rest by σ_VE
                    l[i] = i == 0 ? levelAt(schedule, tMaxFinite)
                            : i == steps - 1 ? levelAt(schedule, tMin)
                            : SamplingGrid.levelAtSigmaVe(schedule, sv[i]);
                }
                yield endClean(schedule, l);
            }
            case SHIFT -> {
                if (!flow) {
                    throw new IllegalArgumentException("grid spacing " + this + " shifts flow noise levels and needs "
                            + "a rectified-flow schedule; this one is " + schedule);
                }
                double uTop = FlowShift.unshift(schedule.sigma(tTop), parameter);  // starts at tTop's noise level
                double[] u = SigmaGrids.linspace(uTop, 0, steps + 1);
                yield SamplingGrid.ofFlowSigmas(schedule, FlowShift.shiftAll(u, parameter));
            }
            case TRAILING, LEADING, LINSPACE -> {
                if (!(schedule instanceof DiscreteVpSchedule d)) {
                    throw new IllegalArgumentException("grid spacing " + this + " picks integer timesteps and needs "
                            + "a discrete VP schedule; this one is " + schedule);
                }
                yield timesteps(d, TimestepSpacing.valueOf(kind.name()), steps, tMax);
            }
        };
    }

    /** {@code spacing}'s timesteps among {@code 0 .. k_top}, {@code k_top} the largest with {@code (k+1)/T ≤ tMax}. */
    private static SamplingGrid timesteps(DiscreteVpSchedule d, TimestepSpacing spacing, int steps, double tMax) {
        int t = d.numTrainTimesteps();
        int count = (int) Math.min(t, Math.floor(tMax * t + 1e-9));      // timesteps 0 .. count-1
        if (count < 1) {
            throw new IllegalArgumentException("tMax " + tMax + " is below the first timestep's time " + d.tOf(0));
        }
        return SamplingGrid.ofTimesteps(d, spacing.timesteps(count, Math.min(steps, count)));
    }

    /** The name {@link #parse} reads: {@code karras:7}, {@code shift:3}, {@code trailing}, ... */
    @Override
    public String toString() {
        if (Double.isNaN(parameter)) {
            return name(kind);
        }
        String v = parameter == Math.rint(parameter) && Math.abs(parameter) < 1e15
                ? Long.toString((long) parameter) : Double.toString(parameter);
        return name(kind) + ":" + v;
    }

    private static String name(Kind k) {
        return k.name().toLowerCase(Locale.ROOT);
    }

    /** {@code 1/T} for a discrete VP schedule, 0 when {@code σ(0) > 0}, else {@link #T_MIN_CONTINUOUS}. */
    private static double tMin(NoiseSchedule schedule) {
        if (schedule instanceof DiscreteVpSchedule d) {
            return d.tOf(0);
        }
        return schedule.sigma(0.0) > 0 ? 0.0 : T_MIN_CONTINUOUS;
    }

    private static double sigmaVe(NoiseSchedule schedule, double t) {
        return schedule.sigma(t) / schedule.alpha(t);
    }

    private static Level levelAt(NoiseSchedule schedule, double t) {
        return new Level(t, schedule.alpha(t), schedule.sigma(t));
    }

    private static Level[] levelsAt(NoiseSchedule schedule, double[] t) {
        Level[] l = new Level[t.length];
        for (int i = 0; i < t.length; i++) {
            l[i] = levelAt(schedule, t[i]);
        }
        return l;
    }

    /** {@code levels} followed by {@link Level#clean()}. */
    private static SamplingGrid endClean(NoiseSchedule schedule, Level[] levels) {
        Level[] all = java.util.Arrays.copyOf(levels, levels.length + 1);
        all[levels.length] = Level.clean();
        return SamplingGrid.of(schedule, all);
    }
}
