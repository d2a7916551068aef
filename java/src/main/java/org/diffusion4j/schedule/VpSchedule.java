package org.diffusion4j.schedule;

/**
 * The continuous variance-preserving schedule of Song et al. 2021 ("Score-Based Generative Modeling through
 * SDEs", eq. 11 and App. B, eq. 29): linear {@code β(t) = β_min + t·(β_max − β_min)} and
 * <pre>
 *   ln α(t) = −¼·t²·(β_max − β_min) − ½·t·β_min,     σ(t) = √(1 − α(t)²)
 * </pre>
 * (the continuous limit of DDPM's linear betas with {@code β_k ≈ β(t)/T}). {@code α(0) = 1}, {@code σ(0) = 0};
 * {@code α(1) > 0}, so the terminal SNR is small but not zero. The VE noise level is
 * {@code σ_VE = √(exp(½ t² (β_max − β_min) + t β_min) − 1)}, k-diffusion's {@code get_sigmas_vp}. Immutable.
 *
 * @param betaMin {@code β_min ≥ 0} (Song et al. 2021: 0.1)
 * @param betaMax {@code β_max ≥ β_min}, {@code > 0} (Song et al. 2021: 20)
 */
public record VpSchedule(double betaMin, double betaMax) implements NoiseSchedule {

    /** Validates {@code 0 ≤ β_min ≤ β_max}, {@code β_max > 0}, both finite. */
    public VpSchedule {
        if (!(betaMin >= 0 && betaMax >= betaMin && betaMax > 0 && betaMax < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("need 0 <= betaMin <= betaMax, betaMax > 0 finite; got betaMin = "
                    + betaMin + ", betaMax = " + betaMax);
        }
    }

    /** Song et al. 2021's defaults: {@code β_min = 0.1}, {@code β_max = 20}. */
    public static VpSchedule song2021() {
        return new VpSchedule(0.1, 20.0);
    }

    /** {@code ln α(t) = −¼ t² (β_max − β_min) − ½ t β_min} (Song et al. 2021, eq. 29). */
    public double logAlpha(double t) {
        NoiseSchedule.requireT(t);
        return -0.25 * t * t * (betaMax - betaMin) - 0.5 * t * betaMin;
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException {@inheritDoc}
     */
    @Override
    public double alpha(double t) {
        return Math.exp(logAlpha(t));
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException {@inheritDoc}
     */
    @Override
    public double sigma(double t) {
        return Math.sqrt(-Math.expm1(2.0 * logAlpha(t)));
    }

    /** {@code λ = 2 ln α − ln(1 − α²)}, with {@code 1 − α²} from {@code expm1} (no cancellation near t = 0). */
    @Override
    public double logSnr(double t) {
        double la = logAlpha(t);
        return 2.0 * la - Math.log(-Math.expm1(2.0 * la));
    }

    /**
     * Inverse log-SNR: {@code ln α = −½ softplus(−λ)}, then the positive root of
     * {@code ¼(β_max − β_min) t² + ½ β_min t + ln α = 0}, written as
     * {@code t = −2 ln α / (½β_min + √(¼β_min² − (β_max − β_min) ln α))} (no cancellation; cf. Lu et al. 2022,
     * DPM-Solver, {@code NoiseScheduleVP.inverse_lambda}).
     */
    @Override
    public double tFromLogSnr(double lambda) {
        if (Double.isNaN(lambda)) {
            throw new IllegalArgumentException("logSnr is NaN");
        }
        double lambdaMin = logSnr(1.0);
        if (lambda < lambdaMin) {
            throw new IllegalArgumentException("logSnr " + lambda + " is below this schedule's terminal log-SNR "
                    + lambdaMin);
        }
        double logAlpha = -0.5 * softplus(-lambda);
        if (logAlpha == 0) {
            return 0.0;
        }
        double b = 0.5 * betaMin;
        double t = -2.0 * logAlpha / (b + Math.sqrt(b * b - (betaMax - betaMin) * logAlpha));
        return Math.min(1.0, t);
    }

    /** {@code softplus(x) = ln(1 + e^x)} without overflow. */
    static double softplus(double x) {
        if (x == Double.POSITIVE_INFINITY) {
            return x;
        }
        return Math.max(x, 0.0) + Math.log1p(Math.exp(-Math.abs(x)));
    }
}
