package org.diffusion4j.schedule;

import java.util.Locale;

/**
 * The diffusers {@code beta_schedule} families that tabulate {@code β_k}, {@code k = 0 … T−1}, of a discrete VP
 * process {@code ᾱ_k = ∏_{i ≤ k} (1 − β_i)} (Ho et al. 2020, §2).
 *
 * <p>Values are computed in {@code double}; diffusers builds the linear families in {@code float32}
 * ({@code torch.linspace(..., dtype=torch.float32)}), so its tables agree with these to about 1e-7 relative.
 */
public enum BetaSchedule {
    /** {@code β_k = linspace(β_start, β_end, T)_k} (Ho et al. 2020, §4: 1e-4 … 0.02 for T = 1000). */
    LINEAR("linear"),
    /**
     * {@code β_k = linspace(√β_start, √β_end, T)_k²}: the latent-diffusion schedule (Rombach et al. 2022;
     * Stable Diffusion uses 0.00085 … 0.012).
     */
    SCALED_LINEAR("scaled_linear"),
    /**
     * Cosine schedule of Nichol &amp; Dhariwal 2021, eq. 17, discretized as in their §3.2 and diffusers'
     * {@code betas_for_alpha_bar}: {@code f(τ) = cos²((τ + 0.008)/1.008 · π/2)},
     * {@code β_k = min(1 − f((k+1)/T)/f(k/T), 0.999)}. β_start and β_end are ignored.
     */
    SQUAREDCOS_CAP_V2("squaredcos_cap_v2"),
    /**
     * {@code β_k = sigmoid(linspace(−6, 6, T)_k)·(β_end − β_start) + β_start} (GeoDiff, Xu et al. 2022;
     * diffusers {@code "sigmoid"}).
     */
    SIGMOID("sigmoid");

    /** The cap on β of {@link #SQUAREDCOS_CAP_V2} (Nichol &amp; Dhariwal 2021, §3.2). */
    public static final double COSINE_MAX_BETA = 0.999;
    /** Offset {@code s} of the cosine schedule (Nichol &amp; Dhariwal 2021, eq. 17). */
    public static final double COSINE_OFFSET = 0.008;

    private final String diffusersName;

    BetaSchedule(String diffusersName) {
        this.diffusersName = diffusersName;
    }

    /** The diffusers {@code beta_schedule} string. */
    public String diffusersName() {
        return diffusersName;
    }

    /**
     * The {@code T} betas of this family.
     *
     * @param numTrainTimesteps {@code T ≥ 1}
     * @param betaStart         first β of {@code LINEAR} and {@code SCALED_LINEAR}, lower end of {@code SIGMOID}, in
     *                          {@code (0, 1)}; ignored by {@code SQUAREDCOS_CAP_V2}
     * @param betaEnd           last β (upper end of {@code SIGMOID}), in {@code [betaStart, 1)}; ignored by
     *                          {@code SQUAREDCOS_CAP_V2}
     * @return {@code T} betas
     * @throws IllegalArgumentException for {@code T < 1} or, in every family but {@code SQUAREDCOS_CAP_V2}, unless
     *                                  {@code 0 < betaStart ≤ betaEnd < 1}
     */
    public double[] betas(int numTrainTimesteps, double betaStart, double betaEnd) {
        if (numTrainTimesteps < 1) {
            throw new IllegalArgumentException("numTrainTimesteps must be >= 1, got " + numTrainTimesteps);
        }
        int n = numTrainTimesteps;
        if (this != SQUAREDCOS_CAP_V2
                && !(betaStart > 0 && betaStart <= betaEnd && betaEnd < 1)) {
            throw new IllegalArgumentException("need 0 < betaStart <= betaEnd < 1, got betaStart = " + betaStart
                    + ", betaEnd = " + betaEnd);
        }
        return switch (this) {
            case LINEAR -> SigmaGrids.linspace(betaStart, betaEnd, n);
            case SCALED_LINEAR -> {
                double[] b = SigmaGrids.linspace(Math.sqrt(betaStart), Math.sqrt(betaEnd), n);
                for (int i = 0; i < n; i++) {
                    b[i] = b[i] * b[i];
                }
                yield b;
            }
            case SQUAREDCOS_CAP_V2 -> cosineBetas(n, COSINE_MAX_BETA);
            case SIGMOID -> {
                double[] x = SigmaGrids.linspace(-6.0, 6.0, n);
                for (int i = 0; i < n; i++) {
                    x[i] = Snr.sigmoid(x[i]) * (betaEnd - betaStart) + betaStart;
                }
                yield x;
            }
        };
    }

    /**
     * Betas that discretize {@code ᾱ(τ) = f(τ)/f(0)}, {@code f(τ) = cos²((τ + s)/(1 + s) · π/2)}
     * (Nichol &amp; Dhariwal 2021, eq. 17): {@code β_k = min(1 − f((k+1)/T)/f(k/T), maxBeta)}.
     *
     * @throws IllegalArgumentException for {@code T < 1} or {@code maxBeta} outside {@code (0, 1]}
     */
    public static double[] cosineBetas(int numTrainTimesteps, double maxBeta) {
        if (numTrainTimesteps < 1) {
            throw new IllegalArgumentException("numTrainTimesteps must be >= 1, got " + numTrainTimesteps);
        }
        if (!(maxBeta > 0 && maxBeta <= 1)) {
            throw new IllegalArgumentException("maxBeta must be in (0, 1], got " + maxBeta);
        }
        double[] b = new double[numTrainTimesteps];
        for (int i = 0; i < numTrainTimesteps; i++) {
            double t1 = (double) i / numTrainTimesteps;
            double t2 = (double) (i + 1) / numTrainTimesteps;
            b[i] = Math.min(1.0 - cosineF(t2) / cosineF(t1), maxBeta);
        }
        return b;
    }

    /** {@code f(τ) = cos²((τ + 0.008)/1.008 · π/2)} (Nichol &amp; Dhariwal 2021, eq. 17). */
    private static double cosineF(double tau) {
        double c = Math.cos((tau + COSINE_OFFSET) / (1.0 + COSINE_OFFSET) * Math.PI / 2.0);
        return c * c;
    }

    /**
     * Parses a diffusers {@code beta_schedule} string ({@code "linear"}, {@code "scaled_linear"},
     * {@code "squaredcos_cap_v2"}, {@code "sigmoid"}) or an enum constant name.
     *
     * @throws IllegalArgumentException for an unknown name
     */
    public static BetaSchedule fromName(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        for (BetaSchedule b : values()) {
            if (b.diffusersName.equals(n) || b.name().toLowerCase(Locale.ROOT).equals(n)) {
                return b;
            }
        }
        throw new IllegalArgumentException("unknown beta schedule '" + name
                + "'; expected linear, scaled_linear, squaredcos_cap_v2 or sigmoid");
    }
}
