package org.diffusion4j.training;

import org.diffusion4j.random.Philox;
import org.diffusion4j.schedule.Snr;

/**
 * A training distribution over {@code t ∈ [0, 1]}, written as a pure function of one uniform draw
 * ({@link #fromUniform}, its quantile function) so that it composes with counter-based randomness: element
 * {@code i} of a batch is {@code fromUniform(Philox.uniform(seed, stream, i))} ({@link #draw}), identical on every
 * device. Samplers whose natural input is a normal draw also take one ({@link LogitNormal#fromNormal}).
 *
 * <p><b>Stratified sampling.</b> {@link #stratified} draws sample {@code i} of a batch of {@code B} from the
 * stratum {@code [i/B, (i+1)/B)} of the uniform, then applies the quantile function: every batch covers the
 * distribution evenly and the variance of batch means drops (cf. the low-discrepancy sampler of {@code t} in
 * Kingma et al. 2021, "Variational Diffusion Models"; here as plain stratification).
 *
 * <p>Normal-based quantiles clamp {@code u} to {@code [2^-53, 1 − 2^-53]}, so that {@code u = 0} or {@code 1}
 * (Philox's uniform can return exactly 1, with probability {@code 2^-24}) map to finite values
 * ({@code |z| ≤ 8.3}).
 */
public sealed interface TimeSampler permits TimeSampler.Uniform, TimeSampler.LogitNormal, TimeSampler.Mode,
        TimeSampler.CosMap {

    /** Smallest uniform value fed to a normal quantile (and {@code 1 −} it the largest). */
    double U_EPS = 0x1p-53;

    /**
     * The sample for a uniform draw {@code u ∈ [0, 1]} (the distribution's quantile function at {@code u}).
     *
     * @throws IllegalArgumentException for {@code u} outside {@code [0, 1]} or NaN
     */
    double fromUniform(double u);

    /**
     * Sample {@code i} of a stratified batch of {@code batch}: {@code fromUniform(stratum(i, batch, u))}.
     *
     * @throws IllegalArgumentException for {@code i ∉ [0, batch)} or {@code u ∉ [0, 1]}
     */
    default double stratified(int i, int batch, double u) {
        return fromUniform(stratum(i, batch, u));
    }

    /** Element {@code i} of stream {@code (seed, stream)}: {@code fromUniform(Philox.uniform(seed, stream, i))}. */
    default double draw(long seed, long stream, long i) {
        return fromUniform(Philox.uniform(seed, stream, i));
    }

    /**
     * Maps a uniform draw {@code u ∈ (0, 1]} into stratum {@code i} of {@code batch}:
     * {@code (i + 1 − u)/batch ∈ [i/B, (i+1)/B)} (for {@code u = 0} the stratum's upper end).
     *
     * @throws IllegalArgumentException for {@code i ∉ [0, batch)} or {@code u ∉ [0, 1]}
     */
    static double stratum(int i, int batch, double u) {
        if (batch < 1 || i < 0 || i >= batch) {
            throw new IllegalArgumentException("need 0 <= i < batch, got i = " + i + ", batch = " + batch);
        }
        requireUniform(u);
        return (i + 1.0 - u) / batch;
    }

    /**
     * Checks {@code u ∈ [0, 1]} and returns it (a helper of the implementations).
     *
     * @throws IllegalArgumentException for {@code u} outside {@code [0, 1]} or NaN
     */
    static double requireUniform(double u) {
        if (!(u >= 0 && u <= 1)) {
            throw new IllegalArgumentException("uniform draw must be in [0, 1], got " + u);
        }
        return u;
    }

    /**
     * {@code u ∈ [0, 1]} clamped to {@code [2^-53, 1 − 2^-53]}, for normal quantiles (a helper of the
     * implementations; only the ends move, out-of-range values are refused, not clamped).
     *
     * @throws IllegalArgumentException for {@code u} outside {@code [0, 1]} or NaN
     */
    static double clampOpen(double u) {
        return Math.max(U_EPS, Math.min(1.0 - U_EPS, requireUniform(u)));
    }

    /** Uniform {@code t} on {@code [0, 1]}: {@code t = u} (Ho et al. 2020, Algorithm 1; Liu et al. 2022). */
    static Uniform uniform() {
        return new Uniform(0.0, 1.0);
    }

    /** Uniform {@code t = (1 − u)·tMin + u·tMax}; mean {@code (tMin + tMax)/2}, variance {@code (tMax − tMin)²/12}. */
    record Uniform(double tMin, double tMax) implements TimeSampler {
        /** Validates {@code 0 ≤ tMin < tMax ≤ 1}. */
        public Uniform {
            if (!(tMin >= 0 && tMax > tMin && tMax <= 1)) {
                throw new IllegalArgumentException("need 0 <= tMin < tMax <= 1, got tMin = " + tMin + ", tMax = "
                        + tMax);
            }
        }

        @Override
        public double fromUniform(double u) {
            requireUniform(u);
            return (1.0 - u) * tMin + u * tMax;  // exact at both ends
        }
    }

    /**
     * Logit-normal {@code t = sigmoid(m + s·z)}, {@code z ~ N(0, 1)} (Esser et al. 2024, "Scaling Rectified Flow
     * Transformers", eq. 19; SD3 trains with {@code m = 0, s = 1}): {@code logit(t) ~ N(m, s²)}, density
     * {@code π(t) = exp(−(logit t − m)²/(2s²)) / (s√(2π)·t(1 − t))}.
     *
     * @param mean {@code m} (finite)
     * @param std  {@code s > 0} (finite)
     */
    record LogitNormal(double mean, double std) implements TimeSampler {
        /** Validates finite {@code m} and {@code s > 0}. */
        public LogitNormal {
            if (!Double.isFinite(mean) || !(std > 0 && std < Double.POSITIVE_INFINITY)) {
                throw new IllegalArgumentException("need finite mean and std > 0, got mean = " + mean + ", std = "
                        + std);
            }
        }

        /** {@code t = sigmoid(m + s·z)} for a standard normal draw {@code z} (diffusers {@code "logit_normal"}). */
        public double fromNormal(double z) {
            if (Double.isNaN(z)) {
                throw new IllegalArgumentException("normal draw is NaN");
            }
            return Snr.sigmoid(mean + std * z);
        }

        /** {@code fromNormal(Φ⁻¹(u))}, {@code u} clamped to {@code [2^-53, 1 − 2^-53]}. */
        @Override
        public double fromUniform(double u) {
            return fromNormal(Gaussian.quantile(clampOpen(u)));
        }

        /** {@code fromNormal(Philox.normal(seed, stream, i))} (Box–Muller; {@code |z| ≤ 6.67}). */
        @Override
        public double draw(long seed, long stream, long i) {
            return fromNormal(Philox.normal(seed, stream, i));
        }
    }

    /**
     * Mode sampling with heavy tails (Esser et al. 2024, eq. 20; diffusers {@code "mode"}):
     * {@code t = f_mode(u; s) = 1 − u − s·(cos²(π u/2) − 1 + u)}. {@code s = 0} is uniform; {@code s > 0} moves
     * mass to the middle. {@code f_mode} is a decreasing bijection of {@code [0, 1]} only for
     * {@code −1 ≤ s ≤ 2/(π − 2)} (ibid.), so other scales are refused. Mean {@code 1/2} for every {@code s}.
     *
     * @param scale {@code s ∈ [−1, 2/(π − 2)]} (SD3 ablations: 1.29)
     */
    record Mode(double scale) implements TimeSampler {
        /** The largest scale for which {@code f_mode} is monotone: {@code 2/(π − 2) ≈ 1.7519}. */
        public static final double MAX_SCALE = 2.0 / (Math.PI - 2.0);

        /** Validates {@code −1 ≤ s ≤ 2/(π − 2)}. */
        public Mode {
            if (!(scale >= -1 && scale <= MAX_SCALE)) {
                throw new IllegalArgumentException("mode scale must be in [-1, 2/(pi-2) = " + MAX_SCALE
                        + "] for f_mode to be monotone (Esser et al. 2024, eq. 20), got " + scale);
            }
        }

        @Override
        public double fromUniform(double u) {
            requireUniform(u);
            double c = Math.cos(Math.PI * u / 2.0);
            return Math.max(0.0, Math.min(1.0, 1.0 - u - scale * (c * c - 1.0 + u)));
        }
    }

    /**
     * CosMap sampling (Esser et al. 2024, eq. 21): {@code t = f(u) = 1 − 1/(tan(π u/2) + 1)}, the time change
     * that makes rectified flow's log-SNR match the cosine schedule's; density
     * {@code π(t) = 2/(π(1 − 2t + 2t²))} (the {@code cosmap} loss weight, {@link Sd3Weighting#COSMAP}).
     */
    record CosMap() implements TimeSampler {
        @Override
        public double fromUniform(double u) {
            requireUniform(u);
            if (u == 1) {
                return 1.0;
            }
            return 1.0 - 1.0 / (Math.tan(Math.PI * u / 2.0) + 1.0);
        }
    }
}
