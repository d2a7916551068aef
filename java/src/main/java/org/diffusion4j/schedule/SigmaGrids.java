package org.diffusion4j.schedule;

import java.util.Arrays;

/**
 * Inference grids of noise levels and times, descending (noise → data), and the validation of user-supplied
 * grids. The σ grids follow k-diffusion ({@code k_diffusion/sampling.py}, Crowson) and return the {@code n}
 * values <em>before</em> its {@code append_zero}; add the final 0 with {@link #appendZero} where a sampler needs
 * it. Linear ramps use numpy's {@code linspace} ({@link #linspace}). In {@code karras}, {@code exponential},
 * {@code polyexponential} and {@code vp}, σ (and the parameters {@code sigmaMin}, {@code sigmaMax}) is the VE noise
 * level {@code σ_VE = σ_t/α_t} of k-diffusion and EDM, not the coefficient {@code σ_t} of
 * {@link NoiseSchedule#sigma}; in {@code sd3Sigmas} and {@code fluxSigmas} it is the flow coefficient
 * {@code σ_t ∈ [0, 1]}.
 *
 * <pre>
 *   karras          σ_i = (σ_max^{1/ρ} + i/(n−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ       Karras et al. 2022, eq. 5
 *   exponential     σ_i = exp(linspace(ln σ_max, ln σ_min, n))_i                       (uniform in log-SNR)
 *   polyexponential σ_i = exp(r_i^ρ·(ln σ_max − ln σ_min) + ln σ_min), r = linspace(1, 0, n)
 *   vp              σ_i = √(exp(β_d t_i²/2 + β_min t_i) − 1), t = linspace(1, ε_s, n)    Song et al. 2021, eq. 29
 *   uniformLogSnr   t_i = t(λ_i), λ = linspace(λ(t_start), λ(t_end), n)                Lu et al. 2022 (DPM-Solver)
 *   sd3Sigmas       σ_i = shift(linspace(1, 1/T, n)_i, s)                               Esser et al. 2024, eq. 23
 *   fluxSigmas      σ_i = time_shift(μ, 1, linspace(1, 0, n+1)_i)                       Flux get_schedule
 * </pre>
 */
public final class SigmaGrids {

    private SigmaGrids() {
    }

    /**
     * numpy's {@code linspace(start, stop, n)}: {@code start + i·(stop − start)/(n − 1)} with the last value set
     * to {@code stop} exactly; {@code [start]} for {@code n = 1}.
     *
     * @throws IllegalArgumentException for {@code n < 1} or non-finite ends
     */
    public static double[] linspace(double start, double stop, int n) {
        if (n < 1) {
            throw new IllegalArgumentException("linspace needs n >= 1, got " + n);
        }
        if (!Double.isFinite(start) || !Double.isFinite(stop)) {
            throw new IllegalArgumentException("linspace ends must be finite, got " + start + ", " + stop);
        }
        double[] y = new double[n];
        if (n == 1) {
            y[0] = start;
            return y;
        }
        double step = (stop - start) / (n - 1);
        for (int i = 0; i < n; i++) {
            y[i] = start + i * step;
        }
        y[n - 1] = stop;
        return y;
    }

    /**
     * Karras et al. 2022, eq. 5 (k-diffusion {@code get_sigmas_karras}): {@code n} levels from {@code σ_max} down
     * to {@code σ_min}, uniform in {@code σ^{1/ρ}}.
     *
     * @param n        the number of levels {@code ≥ 1}
     * @param sigmaMin the smallest VE noise level {@code σ_VE,min = (σ/α)_min} (not the coefficient {@code σ_t})
     * @param sigmaMax the largest VE noise level {@code σ_VE,max}
     * @param rho      {@code ρ > 0} (Karras et al. 2022: 7)
     * @return {@code n} descending VE levels, {@code σ_max} first
     * @throws IllegalArgumentException for {@code n < 1}, {@code σ_min < 0}, {@code σ_max ≤ σ_min}, non-finite
     *                                  values or {@code ρ ≤ 0}
     */
    public static double[] karras(int n, double sigmaMin, double sigmaMax, double rho) {
        requireRange(sigmaMin, sigmaMax, true);
        requirePositive(rho, "rho");
        double[] ramp = linspace(0, 1, n);
        double minInvRho = Math.pow(sigmaMin, 1.0 / rho);
        double maxInvRho = Math.pow(sigmaMax, 1.0 / rho);
        double[] s = new double[n];
        for (int i = 0; i < n; i++) {
            s[i] = Math.pow(maxInvRho + ramp[i] * (minInvRho - maxInvRho), rho);
        }
        return s;
    }

    /**
     * k-diffusion {@code get_sigmas_exponential}: {@code n} levels geometric between {@code σ_max} and
     * {@code σ_min}, i.e. uniform in {@code ln σ_VE = −λ/2}: the uniform-log-SNR grid of a VE/EDM model.
     *
     * @param n        the number of levels {@code ≥ 1}
     * @param sigmaMin the smallest VE noise level {@code σ_VE,min = (σ/α)_min} (not the coefficient {@code σ_t})
     * @param sigmaMax the largest VE noise level {@code σ_VE,max}
     * @return {@code n} descending VE levels, {@code σ_max} first
     * @throws IllegalArgumentException for {@code n < 1}, {@code σ_min ≤ 0} or {@code σ_max ≤ σ_min}
     */
    public static double[] exponential(int n, double sigmaMin, double sigmaMax) {
        requireRange(sigmaMin, sigmaMax, false);
        double[] s = linspace(Math.log(sigmaMax), Math.log(sigmaMin), n);
        for (int i = 0; i < n; i++) {
            s[i] = Math.exp(s[i]);
        }
        return s;
    }

    /**
     * k-diffusion {@code get_sigmas_polyexponential}: a polynomial of degree ρ in {@code ln σ};
     * {@code ρ = 1} is {@link #exponential}.
     *
     * @param n        the number of levels {@code ≥ 1}
     * @param sigmaMin the smallest VE noise level {@code σ_VE,min = (σ/α)_min} (not the coefficient {@code σ_t})
     * @param sigmaMax the largest VE noise level {@code σ_VE,max}
     * @param rho      the degree {@code ρ > 0}
     * @return {@code n} descending VE levels, {@code σ_max} first
     * @throws IllegalArgumentException for {@code n < 1}, {@code σ_min ≤ 0}, {@code σ_max ≤ σ_min} or {@code ρ ≤ 0}
     */
    public static double[] polyexponential(int n, double sigmaMin, double sigmaMax, double rho) {
        requireRange(sigmaMin, sigmaMax, false);
        requirePositive(rho, "rho");
        double[] ramp = linspace(1, 0, n);
        double logMin = Math.log(sigmaMin);
        double span = Math.log(sigmaMax) - logMin;
        double[] s = new double[n];
        for (int i = 0; i < n; i++) {
            s[i] = Math.exp(Math.pow(ramp[i], rho) * span + logMin);
        }
        return s;
    }

    /**
     * k-diffusion {@code get_sigmas_vp}: the VE levels of Song et al. 2021's continuous VP schedule at
     * {@code t = linspace(1, ε_s, n)}, {@code σ = √(exp(β_d t²/2 + β_min t) − 1)} (computed with {@code expm1});
     * k-diffusion's defaults are {@code β_d = 19.9, β_min = 0.1, ε_s = 1e-3}. Note the parameterisation by
     * {@code β_d = β_max − β_min} (k-diffusion's), where {@link VpSchedule} takes {@code (β_min, β_max)}: the
     * same schedule is {@code vp(n, 19.9, 0.1, ε_s)} here and {@code new VpSchedule(0.1, 20)} there.
     *
     * @param n       the number of levels {@code ≥ 1}
     * @param betaD   {@code β_d = β_max − β_min ≥ 0}
     * @param betaMin {@code β_min ≥ 0}
     * @param epsS    the last time {@code t_end = ε_s ∈ (0, 1)} (the first is {@code t = 1})
     * @return {@code n} descending VE levels {@code σ_VE}
     * @throws IllegalArgumentException for {@code n < 1}, {@code β_d < 0}, {@code β_min < 0},
     *                                  {@code β_d + β_min = 0} or {@code ε_s ∉ (0, 1)}
     */
    public static double[] vp(int n, double betaD, double betaMin, double epsS) {
        if (!(betaD >= 0 && betaMin >= 0 && betaD + betaMin > 0 && Double.isFinite(betaD + betaMin))) {
            throw new IllegalArgumentException("need betaD >= 0, betaMin >= 0, not both 0; got betaD = " + betaD
                    + ", betaMin = " + betaMin);
        }
        if (!(epsS > 0 && epsS < 1)) {
            throw new IllegalArgumentException("epsS must be in (0, 1), got " + epsS);
        }
        double[] t = linspace(1, epsS, n);
        double[] s = new double[n];
        for (int i = 0; i < n; i++) {
            s[i] = Math.sqrt(Math.expm1(betaD * t[i] * t[i] / 2.0 + betaMin * t[i]));
        }
        return s;
    }

    /**
     * Times uniform in log-SNR (Lu et al. 2022a, "DPM-Solver", §3.3, whose uniform-λ step sizes are
     * {@code skip_type="logSNR"} in its reference {@code get_time_steps}):
     * {@code λ_i = linspace(λ(t_start), λ(t_end), n)_i}, {@code t_i = schedule.tFromLogSnr(λ_i)}, with the two ends
     * returned exactly. For {@code N} solver steps ask for {@code n = N + 1} points.
     *
     * @param schedule the schedule whose log-SNR is spaced
     * @param n        the number of points {@code ≥ 1}
     * @param tStart   the first (noisiest) time, in {@code [0, 1]}
     * @param tEnd     the last time, in {@code [0, 1]}, below {@code tStart}
     * @return {@code n} descending times, {@code tStart} and {@code tEnd} exactly at the ends
     * @throws NullPointerException     for a null schedule
     * @throws IllegalArgumentException for {@code n < 1}, a time outside {@code [0, 1]} or NaN,
     *                                  {@code t_start ≤ t_end}, or {@code λ} infinite at either end (e.g.
     *                                  {@code t_end = 0}: pick a small positive {@code t_end})
     */
    public static double[] uniformLogSnr(NoiseSchedule schedule, int n, double tStart, double tEnd) {
        NoiseSchedule.requireT(tStart);
        NoiseSchedule.requireT(tEnd);
        if (!(tStart > tEnd)) {
            throw new IllegalArgumentException("need tStart > tEnd (descending grid), got tStart = " + tStart
                    + ", tEnd = " + tEnd);
        }
        double lambdaStart = schedule.logSnr(tStart);
        double lambdaEnd = schedule.logSnr(tEnd);
        if (!Double.isFinite(lambdaStart) || !Double.isFinite(lambdaEnd)) {
            throw new IllegalArgumentException("log-SNR must be finite at both ends, got lambda(" + tStart + ") = "
                    + lambdaStart + ", lambda(" + tEnd + ") = " + lambdaEnd
                    + "; move the ends inside (0, 1)");
        }
        double[] lambda = linspace(lambdaStart, lambdaEnd, n);
        double[] t = new double[n];
        for (int i = 0; i < n; i++) {
            t[i] = schedule.tFromLogSnr(lambda[i]);
        }
        t[0] = tStart;
        if (n > 1) {
            t[n - 1] = tEnd;
        }
        return t;
    }

    /**
     * The SD3 flow-matching grid with the shift applied once: {@code σ_i = shift(linspace(1, 1/T, n)_i, s)}
     * (Esser et al. 2024, eq. 23). These {@code n} values (before the final 0 a sampler appends) are both the
     * flow {@code σ} and the {@code t} of an unshifted {@link RectifiedFlowSchedule}; for a schedule built with
     * the same shift, use {@code linspace(1, 1/T, n)} as its {@code t} instead. Model timesteps are
     * {@code σ_i·T}.
     *
     * <p>diffusers' {@code FlowMatchEulerDiscreteScheduler} builds {@code linspace(σ_max·T, σ_min·T, n)/T} from
     * the already-shifted training table ({@code σ_min = shift(1/T)}) and shifts again in {@code set_timesteps};
     * for {@code s ≠ 1} its grid therefore differs from this one (shifted twice at the low-noise end, e.g. last
     * value 0.008929 instead of 0.002994 for {@code s = 3, T = 1000}).
     *
     * @throws IllegalArgumentException for {@code n < 1}, {@code T < 1} or {@code s ≤ 0}
     */
    public static double[] sd3Sigmas(int n, int numTrainTimesteps, double shift) {
        if (numTrainTimesteps < 1) {
            throw new IllegalArgumentException("numTrainTimesteps must be >= 1, got " + numTrainTimesteps);
        }
        return FlowShift.shiftAll(linspace(1.0, 1.0 / numTrainTimesteps, n), shift);
    }

    /**
     * Flux's sampling grid (Black Forest Labs, {@code flux/sampling.py} {@code get_schedule}): {@code n + 1}
     * values {@code time_shift(μ, 1, linspace(1, 0, n + 1))}, ending with 0, for {@code n} steps; {@code μ} from
     * {@link FlowShift#mu(long)}.
     *
     * @throws IllegalArgumentException for {@code n < 1} or non-finite {@code μ}
     */
    public static double[] fluxSigmas(int n, double mu) {
        if (n < 1) {
            throw new IllegalArgumentException("need n >= 1 steps, got " + n);
        }
        double[] t = linspace(1.0, 0.0, n + 1);
        for (int i = 0; i < t.length; i++) {
            t[i] = FlowShift.timeShiftExponential(mu, 1.0, t[i]);
        }
        return t;
    }

    /** A copy of {@code grid} with a final 0 appended (k-diffusion {@code append_zero}). */
    public static double[] appendZero(double[] grid) {
        return Arrays.copyOf(grid, grid.length + 1);
    }

    /**
     * Validates a user-supplied σ grid (VE/EDM {@code σ} or flow {@code σ}): non-empty, every value finite and
     * {@code ≥ 0}, strictly decreasing (so only the last may be 0). Returns a copy.
     *
     * @throws IllegalArgumentException naming the first offending index and value
     */
    public static double[] requireSigmas(double[] sigmas) {
        if (sigmas.length == 0) {
            throw new IllegalArgumentException("sigma grid is empty");
        }
        double[] s = sigmas.clone();
        for (int i = 0; i < s.length; i++) {
            if (!(s[i] >= 0 && s[i] < Double.POSITIVE_INFINITY)) {
                throw new IllegalArgumentException("sigmas[" + i + "] = " + s[i] + " must be finite and >= 0");
            }
            requireDecreasing(s, i, "sigmas");
        }
        return s;
    }

    /**
     * Validates a user-supplied time grid: non-empty, every value in {@code [0, 1]}, strictly decreasing.
     * Returns a copy.
     *
     * @throws IllegalArgumentException naming the first offending index and value
     */
    public static double[] requireTimes(double[] times) {
        if (times.length == 0) {
            throw new IllegalArgumentException("time grid is empty");
        }
        double[] t = times.clone();
        for (int i = 0; i < t.length; i++) {
            if (!(t[i] >= 0 && t[i] <= 1)) {
                throw new IllegalArgumentException("times[" + i + "] = " + t[i] + " must be in [0, 1]");
            }
            requireDecreasing(t, i, "times");
        }
        return t;
    }

    /**
     * Drops exact repeats from a non-increasing grid, keeping the first occurrence (see
     * {@link TimestepSpacing#distinct}).
     *
     * @throws IllegalArgumentException if the grid increases anywhere or holds NaN
     */
    public static double[] distinct(double[] descending) {
        double[] out = new double[descending.length];
        int m = 0;
        for (int i = 0; i < descending.length; i++) {
            if (Double.isNaN(descending[i])) {
                throw new IllegalArgumentException("grid[" + i + "] is NaN");
            }
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

    private static void requireDecreasing(double[] g, int i, String name) {
        if (i > 0 && !(g[i] < g[i - 1])) {
            throw new IllegalArgumentException(name + " must strictly decrease, but " + name + "[" + (i - 1)
                    + "] = " + g[i - 1] + " and " + name + "[" + i + "] = " + g[i]);
        }
    }

    private static void requireRange(double sigmaMin, double sigmaMax, boolean zeroMinAllowed) {
        boolean minOk = zeroMinAllowed ? sigmaMin >= 0 : sigmaMin > 0;
        if (!(minOk && sigmaMax > sigmaMin && sigmaMax < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("need " + (zeroMinAllowed ? "0 <= " : "0 < ")
                    + "sigmaMin < sigmaMax < inf, got sigmaMin = " + sigmaMin + ", sigmaMax = " + sigmaMax);
        }
    }

    private static void requirePositive(double x, String name) {
        if (!(x > 0 && x < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException(name + " must be finite and > 0, got " + x);
        }
    }
}
