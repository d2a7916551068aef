package org.diffusion4j.training;

import org.diffusion4j.random.Philox;

/**
 * EDM's training noise distribution {@code ln σ ~ N(P_mean, P_std²)} (Karras et al. 2022, "Elucidating the
 * Design Space of Diffusion-Based Generative Models", Table 1 and §5: {@code P_mean = −1.2, P_std = 1.2}) as a
 * pure function of a normal or uniform draw. {@code E[σ] = exp(P_mean + P_std²/2)}. Returns a VE/EDM noise
 * level {@code σ > 0}; a VP model maps it to {@code t} with {@code NoiseSchedule.tFromSigmaVe}.
 *
 * @param pMean {@code P_mean} (finite)
 * @param pStd  {@code P_std > 0} (finite)
 */
public record EdmLogNormal(double pMean, double pStd) {

    /** Validates finite {@code P_mean} and {@code P_std > 0}. */
    public EdmLogNormal {
        if (!Double.isFinite(pMean) || !(pStd > 0 && pStd < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("need finite pMean and pStd > 0, got pMean = " + pMean + ", pStd = "
                    + pStd);
        }
    }

    /** Karras et al. 2022's {@code P_mean = −1.2, P_std = 1.2}. */
    public static EdmLogNormal karras2022() {
        return new EdmLogNormal(-1.2, 1.2);
    }

    /** {@code σ = exp(P_mean + P_std·z)} for a standard normal draw {@code z} (finite). */
    public double fromNormal(double z) {
        if (!Double.isFinite(z)) {
            throw new IllegalArgumentException("normal draw must be finite, got " + z);
        }
        return Math.exp(pMean + pStd * z);
    }

    /**
     * {@code fromNormal(Φ⁻¹(u))} for a uniform draw {@code u ∈ [0, 1]}; the ends 0 and 1 are moved in to
     * {@code 2^-53} and {@code 1 − 2^-53} (finite quantiles).
     *
     * @throws IllegalArgumentException for {@code u} outside {@code [0, 1]} or NaN (refused, not clamped)
     */
    public double fromUniform(double u) {
        return fromNormal(Gaussian.quantile(TimeSampler.clampOpen(u)));
    }

    /**
     * Sample {@code i} of a stratified batch of {@code batch} (see {@link TimeSampler#stratum}).
     *
     * @throws IllegalArgumentException for {@code i ∉ [0, batch)} or {@code u ∉ [0, 1]}
     */
    public double stratified(int i, int batch, double u) {
        return fromUniform(TimeSampler.stratum(i, batch, u));
    }

    /** {@code fromNormal(Philox.normal(seed, stream, i))}. */
    public double draw(long seed, long stream, long i) {
        return fromNormal(Philox.normal(seed, stream, i));
    }
}
