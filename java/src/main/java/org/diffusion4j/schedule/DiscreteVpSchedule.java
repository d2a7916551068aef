package org.diffusion4j.schedule;

import java.util.Arrays;

/**
 * A discrete variance-preserving schedule with {@code T} training timesteps {@code k = 0 … T−1}:
 * {@code ᾱ_k = ∏_{i ≤ k} (1 − β_i)}, {@code α_k = √ᾱ_k}, {@code σ_k = √(1 − ᾱ_k)} (Ho et al. 2020, eq. 4),
 * indexed exactly like diffusers' {@code alphas_cumprod}. Immutable.
 *
 * <h2>Timestep ↔ continuous time</h2>
 * Timestep {@code k} sits at {@code t_k = (k + 1)/T}, i.e. DDPM's 1-based step {@code k + 1} over {@code T}
 * (Ho et al. 2020, §2: {@code x_0} is data, {@code x_1 … x_T} noised). So {@code t = 0} is clean data
 * ({@code α = 1, σ = 0}) and {@code t = 1} the last training timestep {@code T−1}; the fractional timestep of a
 * time is {@code k(t) = t·T − 1 ∈ [−1, T−1]} ({@link #timestepOf(double)}). Between the tabulated knots the
 * continuous schedule ({@link #alpha(double)}, {@link #sigma(double)}, {@link #logSnr(double)}) interpolates:
 * <ul>
 *   <li>between timesteps {@code k} and {@code k+1}: linearly in {@code λ = log SNR}, i.e. in
 *       {@code log σ_VE}, exactly as k-diffusion's {@code DiscreteSchedule.t_to_sigma} (Crowson,
 *       k-diffusion {@code external.py}) and diffusers' {@code interpolation_type="log_linear"} do;</li>
 *   <li>between clean data ({@code k = −1}, {@code σ_VE = 0}) and timestep 0: linearly in {@code σ_VE}
 *       (log-linear is impossible next to {@code log 0});</li>
 *   <li>into a zero-terminal-SNR last timestep ({@code σ_VE = ∞}): linearly in {@code 1/σ_VE = √SNR}.</li>
 * </ul>
 * The result is continuous, strictly decreasing in {@code λ}, agrees with the table at every {@code t_k}, and
 * is exactly invertible ({@link #tFromLogSnr}, {@link #timestepFromSigmaVe}).
 *
 * <p>Sampling grids of integer timesteps come from {@link TimestepSpacing}; training timesteps from a uniform
 * draw via {@link #timestepFromUniform(double)}. The "previous" level after timestep 0 that DDIM uses with
 * diffusers' {@code set_alpha_to_one = true} ({@code ᾱ = 1}) is {@code t = 0} here.
 */
public final class DiscreteVpSchedule implements NoiseSchedule {

    private final double[] betas;
    private final double[] alphaBar;
    private final double[] oneMinusAlphaBar;
    private final double[] logSnr;

    private DiscreteVpSchedule(double[] betas, double[] alphaBar, double[] oneMinusAlphaBar) {
        this.betas = betas;
        this.alphaBar = alphaBar;
        this.oneMinusAlphaBar = oneMinusAlphaBar;
        this.logSnr = new double[alphaBar.length];
        for (int k = 0; k < alphaBar.length; k++) {
            logSnr[k] = Math.log(alphaBar[k]) - Math.log(oneMinusAlphaBar[k]);
        }
        for (int k = 0; k + 1 < logSnr.length; k++) {
            if (!(logSnr[k + 1] < logSnr[k])) {
                throw new IllegalArgumentException("log-SNR must strictly decrease with the timestep, but lambda["
                        + k + "] = " + logSnr[k] + " and lambda[" + (k + 1) + "] = " + logSnr[k + 1]);
            }
        }
    }

    // ---------------------------------------------------------------- factories

    /**
     * A schedule of a diffusers {@code beta_schedule} family.
     *
     * @throws IllegalArgumentException see {@link BetaSchedule#betas}
     */
    public static DiscreteVpSchedule of(BetaSchedule family, int numTrainTimesteps, double betaStart, double betaEnd) {
        return fromBetas(family.betas(numTrainTimesteps, betaStart, betaEnd));
    }

    /** diffusers' default {@code linear} schedule: β 1e-4 … 0.02 (Ho et al. 2020, §4). */
    public static DiscreteVpSchedule linear(int numTrainTimesteps) {
        return of(BetaSchedule.LINEAR, numTrainTimesteps, 1e-4, 0.02);
    }

    /** Stable Diffusion's {@code scaled_linear} schedule: β 0.00085 … 0.012. */
    public static DiscreteVpSchedule scaledLinear(int numTrainTimesteps) {
        return of(BetaSchedule.SCALED_LINEAR, numTrainTimesteps, 0.00085, 0.012);
    }

    /** The {@code squaredcos_cap_v2} cosine schedule (Nichol &amp; Dhariwal 2021, eq. 17; β capped at 0.999). */
    public static DiscreteVpSchedule squaredcosCapV2(int numTrainTimesteps) {
        return fromBetas(BetaSchedule.cosineBetas(numTrainTimesteps, BetaSchedule.COSINE_MAX_BETA));
    }

    /**
     * A schedule from explicit betas (diffusers {@code trained_betas}); {@code ᾱ} is accumulated in log space,
     * {@code ᾱ_k = exp(Σ log1p(−β_i))}, {@code 1 − ᾱ_k = −expm1(Σ log1p(−β_i))}, so small {@code 1 − ᾱ} keep full
     * precision.
     *
     * @param betas {@code T ≥ 1} values, each in {@code (0, 1)}; only the last may equal 1 (zero terminal SNR), and
     *              only when {@code T ≥ 2}
     * @throws NullPointerException     for a null array
     * @throws IllegalArgumentException naming the first bad beta; also when the log-SNR does not strictly decrease
     *                                  with the timestep, which betas in {@code (0, 1)} reach only by rounding (a
     *                                  beta too small to change the accumulated {@code Σ log1p(−β_i)} in double)
     */
    public static DiscreteVpSchedule fromBetas(double[] betas) {
        if (betas.length < 1) {
            throw new IllegalArgumentException("need at least one beta");
        }
        double[] b = betas.clone();
        int n = b.length;
        for (int k = 0; k < n; k++) {
            boolean lastMayBeOne = n >= 2 && k == n - 1 && b[k] == 1.0;
            if (!(b[k] > 0 && (b[k] < 1 || lastMayBeOne))) {
                throw new IllegalArgumentException("beta[" + k + "] = " + b[k] + " must be in (0, 1)"
                        + (n >= 2 && k == n - 1 ? " or exactly 1" : "") + " (T = " + n + ")");
            }
        }
        double[] ab = new double[n];
        double[] omab = new double[n];
        double logCum = 0;
        for (int k = 0; k < n; k++) {
            logCum += Math.log1p(-b[k]);
            ab[k] = Math.exp(logCum);
            omab[k] = -Math.expm1(logCum);
        }
        return new DiscreteVpSchedule(b, ab, omab);
    }

    /**
     * This schedule rescaled to zero terminal SNR (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample
     * Steps are Flawed", Algorithm 1): {@code √ᾱ' = (√ᾱ − √ᾱ_{T−1}) · √ᾱ_0 / (√ᾱ_0 − √ᾱ_{T−1})}, so
     * {@code √ᾱ'_0 = √ᾱ_0} (kept bit-exact) and {@code ᾱ'_{T−1} = 0} exactly; {@code β'_k = 1 − ᾱ'_k/ᾱ'_{k−1}}
     * (so {@code β'_{T−1} = 1}). Such a schedule needs a {@code V} or {@code VELOCITY} target (ibid. §3.2).
     *
     * <p>diffusers' Euler-type schedulers, which work in {@code σ_VE}, additionally replace
     * {@code ᾱ'_{T−1} = 0} by {@code 2^-24} to keep {@code σ_VE} finite; this table keeps the exact 0
     * ({@link #sigmaVeAt} returns {@code +∞} there).
     *
     * @throws IllegalArgumentException if {@code T < 2}
     */
    public DiscreteVpSchedule rescaledZeroTerminalSnr() {
        int n = alphaBar.length;
        if (n < 2) {
            throw new IllegalArgumentException("zero-terminal-SNR rescale needs T >= 2, got T = " + n);
        }
        double s0 = Math.sqrt(alphaBar[0]);
        double sLast = Math.sqrt(alphaBar[n - 1]);
        double scale = s0 / (s0 - sLast);
        double[] ab = new double[n];
        double[] omab = new double[n];
        ab[0] = alphaBar[0];
        omab[0] = oneMinusAlphaBar[0];
        for (int k = 1; k < n - 1; k++) {
            double s = (Math.sqrt(alphaBar[k]) - sLast) * scale;
            ab[k] = s * s;
            omab[k] = (1.0 - s) * (1.0 + s);
        }
        ab[n - 1] = 0.0;
        omab[n - 1] = 1.0;
        double[] b = new double[n];
        b[0] = betas[0];
        for (int k = 1; k < n; k++) {
            b[k] = 1.0 - ab[k] / ab[k - 1];
        }
        return new DiscreteVpSchedule(b, ab, omab);
    }

    // ---------------------------------------------------------------- the table

    /** {@code T}, the number of training timesteps. */
    public int numTrainTimesteps() {
        return alphaBar.length;
    }

    /**
     * {@code β_k}.
     *
     * @param timestep {@code k ∈ [0, T−1]}
     * @throws IllegalArgumentException for a timestep outside {@code [0, T−1]}
     */
    public double betaAt(int timestep) {
        return betas[check(timestep)];
    }

    /**
     * {@code ᾱ_k = ∏_{i ≤ k}(1 − β_i)} (diffusers {@code alphas_cumprod[k]}).
     *
     * @param timestep {@code k ∈ [0, T−1]}
     * @throws IllegalArgumentException for a timestep outside {@code [0, T−1]}
     */
    public double alphaBarAt(int timestep) {
        return alphaBar[check(timestep)];
    }

    /**
     * {@code α_k = √ᾱ_k}.
     *
     * @param timestep {@code k ∈ [0, T−1]}
     * @throws IllegalArgumentException for a timestep outside {@code [0, T−1]}
     */
    public double alphaAt(int timestep) {
        return Math.sqrt(alphaBar[check(timestep)]);
    }

    /**
     * {@code σ_k = √(1 − ᾱ_k)}.
     *
     * @param timestep {@code k ∈ [0, T−1]}
     * @throws IllegalArgumentException for a timestep outside {@code [0, T−1]}
     */
    public double sigmaAt(int timestep) {
        return Math.sqrt(oneMinusAlphaBar[check(timestep)]);
    }

    /**
     * {@code σ_VE,k = √((1 − ᾱ_k)/ᾱ_k)} (k-diffusion / diffusers Euler {@code sigmas}); {@code +∞} where
     * {@code ᾱ = 0}.
     *
     * @param timestep {@code k ∈ [0, T−1]}
     * @throws IllegalArgumentException for a timestep outside {@code [0, T−1]}
     */
    public double sigmaVeAt(int timestep) {
        int k = check(timestep);
        return Math.sqrt(oneMinusAlphaBar[k] / alphaBar[k]);
    }

    /**
     * {@code SNR_k = ᾱ_k/(1 − ᾱ_k)}; 0 at a zero-terminal-SNR last step.
     *
     * @param timestep {@code k ∈ [0, T−1]}
     * @throws IllegalArgumentException for a timestep outside {@code [0, T−1]}
     */
    public double snrAt(int timestep) {
        int k = check(timestep);
        return alphaBar[k] / oneMinusAlphaBar[k];
    }

    /**
     * {@code λ_k = ln ᾱ_k − ln(1 − ᾱ_k)}; {@code −∞} at a zero-terminal-SNR last step.
     *
     * @param timestep {@code k ∈ [0, T−1]}
     * @throws IllegalArgumentException for a timestep outside {@code [0, T−1]}
     */
    public double logSnrAt(int timestep) {
        return logSnr[check(timestep)];
    }

    /** A copy of {@code β_0 … β_{T−1}}. */
    public double[] betas() {
        return betas.clone();
    }

    /** A copy of {@code ᾱ_0 … ᾱ_{T−1}}. */
    public double[] alphaBars() {
        return alphaBar.clone();
    }

    /** A copy of {@code σ_VE,0 … σ_VE,T−1}, ascending (k-diffusion {@code DiscreteSchedule.sigmas}). */
    public double[] sigmasVe() {
        double[] s = new double[alphaBar.length];
        for (int k = 0; k < s.length; k++) {
            s[k] = sigmaVeAt(k);
        }
        return s;
    }

    /** Whether {@code ᾱ_{T−1} = 0} (see {@link #rescaledZeroTerminalSnr()}). */
    @Override
    public boolean hasZeroTerminalSnr() {
        return alphaBar[alphaBar.length - 1] == 0.0;
    }

    // ---------------------------------------------------------------- timestep <-> t

    /**
     * Continuous time of timestep {@code k}: {@code t_k = (k + 1)/T} (see the class notes).
     *
     * @param timestep {@code k ∈ [0, T−1]}
     * @throws IllegalArgumentException for a timestep outside {@code [0, T−1]}
     */
    public double tOf(int timestep) {
        return (check(timestep) + 1.0) / alphaBar.length;
    }

    /**
     * {@link #tOf(int)} of every element of a timestep grid (e.g. from {@link TimestepSpacing}).
     *
     * @param timesteps each in {@code [0, T−1]}
     * @throws NullPointerException     for a null array
     * @throws IllegalArgumentException for a timestep outside {@code [0, T−1]}
     */
    public double[] tOf(int[] timesteps) {
        double[] t = new double[timesteps.length];
        for (int i = 0; i < t.length; i++) {
            t[i] = tOf(timesteps[i]);
        }
        return t;
    }

    /**
     * Fractional timestep of a continuous time: {@code k(t) = t·T − 1 ∈ [−1, T−1]}; {@code −1} is clean data.
     *
     * @throws IllegalArgumentException for {@code t} outside {@code [0, 1]}
     */
    public double timestepOf(double t) {
        NoiseSchedule.requireT(t);
        return t * alphaBar.length - 1.0;
    }

    /**
     * The integer training timestep of a uniform draw {@code u ∈ [0, 1]}: {@code k = clamp(⌈u·T⌉ − 1, 0, T−1)}.
     * For {@code u} uniform on {@code (0, 1]} (Philox) every timestep has probability exactly {@code 1/T}, as
     * diffusers' {@code torch.randint(0, T)}; for a non-uniform {@code t} it is the timestep whose interval
     * {@code ((k)/T, (k+1)/T]} contains {@code t}.
     *
     * @throws IllegalArgumentException for {@code u} outside {@code [0, 1]}
     */
    public int timestepFromUniform(double u) {
        NoiseSchedule.requireT(u);
        int k = (int) Math.ceil(u * alphaBar.length) - 1;
        return Math.max(0, Math.min(alphaBar.length - 1, k));
    }

    /**
     * Fractional timestep whose (interpolated) VE noise level is {@code σ_VE}: k-diffusion's
     * {@code DiscreteSchedule.sigma_to_t} (log-linear between the tabulated {@code σ_VE,k}) for
     * {@code σ_VE ∈ [σ_VE,0, σ_VE,T−1]}, continued by the class's interpolation below {@code σ_VE,0}
     * (values in {@code [−1, 0)}, toward clean data) and into a zero-terminal-SNR last step.
     *
     * @throws IllegalArgumentException for a negative or NaN σ, or σ above {@code σ_VE,T−1}
     */
    public double timestepFromSigmaVe(double sigmaVe) {
        return tFromSigmaVe(sigmaVe) * alphaBar.length - 1.0;
    }

    /**
     * The integer timestep nearest to {@link #timestepFromSigmaVe(double)}, clamped to {@code [0, T−1]}.
     *
     * @param sigmaVe the VE noise level {@code σ_VE = σ/α ≥ 0}
     * @throws IllegalArgumentException for a negative or NaN {@code σ_VE}, or one above {@code σ_VE,T−1}
     */
    public int nearestTimestepFromSigmaVe(double sigmaVe) {
        long k = Math.round(timestepFromSigmaVe(sigmaVe));
        return (int) Math.max(0, Math.min(alphaBar.length - 1, k));
    }

    // ---------------------------------------------------------------- continuous view

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException {@inheritDoc}
     */
    @Override
    public double alpha(double t) {
        NoiseSchedule.requireT(t);
        double u = t * alphaBar.length - 1.0;
        int knot = knotAt(u);
        return knot >= 0 ? Math.sqrt(alphaBar[knot]) : Snr.vpAlphaFromLogSnr(lambdaAt(u));
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException {@inheritDoc}
     */
    @Override
    public double sigma(double t) {
        NoiseSchedule.requireT(t);
        double u = t * alphaBar.length - 1.0;
        int knot = knotAt(u);
        return knot >= 0 ? Math.sqrt(oneMinusAlphaBar[knot]) : Snr.vpSigmaFromLogSnr(lambdaAt(u));
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException {@inheritDoc}
     */
    @Override
    public double logSnr(double t) {
        NoiseSchedule.requireT(t);
        double u = t * alphaBar.length - 1.0;
        int knot = knotAt(u);
        return knot >= 0 ? logSnr[knot] : lambdaAt(u);
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException {@inheritDoc}
     */
    @Override
    public double tFromLogSnr(double lambda) {
        if (Double.isNaN(lambda)) {
            throw new IllegalArgumentException("logSnr is NaN");
        }
        int n = logSnr.length;
        double u;
        if (lambda >= logSnr[0]) {
            // clean-data segment: σ_VE = (u + 1)·σ_VE,0
            u = Math.exp(-0.5 * lambda) / sigmaVeAt(0) - 1.0;
        } else if (lambda < logSnr[n - 1]) {
            throw new IllegalArgumentException("logSnr " + lambda + " is below this schedule's terminal log-SNR "
                    + logSnr[n - 1] + " (T = " + n + ")");
        } else if (hasZeroTerminalSnr() && lambda < logSnr[n - 2]) {
            // zero-terminal-SNR segment: √SNR = (1 − w)·√SNR_{T−2}
            double w = 1.0 - Math.exp(0.5 * (lambda - logSnr[n - 2]));
            u = n - 2 + w;
        } else {
            // log-linear segment: find k with λ_k ≥ λ ≥ λ_{k+1}
            int lo = 0;
            int hi = n - 1;
            while (hi - lo > 1) {
                int mid = (lo + hi) >>> 1;
                if (logSnr[mid] >= lambda) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            double w = (logSnr[lo] - lambda) / (logSnr[lo] - logSnr[hi]);
            u = lo + w;
        }
        return Math.max(0.0, Math.min(1.0, (u + 1.0) / n));
    }

    /** Index of the knot {@code u} sits on (exactly), or −1 when it lies strictly between knots. */
    private int knotAt(double u) {
        if (u >= alphaBar.length - 1) {
            return alphaBar.length - 1;
        }
        if (u >= 0 && u == Math.floor(u)) {
            return (int) u;
        }
        return -1;
    }

    /** Interpolated log-SNR at fractional timestep {@code u ∈ [−1, T−1]} strictly between knots. */
    private double lambdaAt(double u) {
        if (u < 0) {
            double sigmaVe = (u + 1.0) * sigmaVeAt(0);
            return -2.0 * Math.log(sigmaVe);
        }
        int k = (int) Math.floor(u);
        double w = u - k;
        int n = logSnr.length;
        if (k + 1 == n - 1 && hasZeroTerminalSnr()) {
            double rootSnr = (1.0 - w) * Math.exp(0.5 * logSnr[k]);
            return 2.0 * Math.log(rootSnr);
        }
        return (1.0 - w) * logSnr[k] + w * logSnr[k + 1];
    }

    private int check(int timestep) {
        if (timestep < 0 || timestep >= alphaBar.length) {
            throw new IllegalArgumentException("timestep " + timestep + " out of range [0, " + (alphaBar.length - 1)
                    + "]");
        }
        return timestep;
    }

    @Override
    public String toString() {
        return "DiscreteVpSchedule[T=" + alphaBar.length + ", beta0=" + betas[0] + ", betaLast="
                + betas[betas.length - 1] + ", alphaBarLast=" + alphaBar[alphaBar.length - 1] + "]";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof DiscreteVpSchedule d && Arrays.equals(alphaBar, d.alphaBar)
                && Arrays.equals(betas, d.betas);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(alphaBar);
    }
}
