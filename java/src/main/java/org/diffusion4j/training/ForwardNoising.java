package org.diffusion4j.training;

import org.diffusion4j.random.Philox;
import org.diffusion4j.sampling.DiffusionOps;
import org.diffusion4j.sampling.NoiseSeeds;
import org.diffusion4j.sampling.NoisingCoefficients;
import org.diffusion4j.schedule.DiscreteVpSchedule;
import org.diffusion4j.schedule.NoiseSchedule;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.Snr;
import org.diffusion4j.tensor.Tensor;

import java.util.Objects;

/**
 * The forward-noising step of training, fused: from clean data {@code x0 [B, ...]} and per-sample noise levels it
 * writes, in one pass with in-op Philox noise ({@link DiffusionOps#forwardNoise}),
 * <pre>
 *   x_t = α_b·x0 + σ_b·ε,    target = c_b·x0 + d_b·ε        (Ho et al. 2020, eq. 4 and Algorithm 1)
 * </pre>
 * with {@code (c, d)} of the chosen {@link Prediction} ({@code ε}, {@code x0}, {@code v = α ε − σ x0}, or the
 * flow velocity {@code u = ε − x0}), optionally {@code ε} itself and per-sample loss weights. Coefficients are
 * computed per sample on the host in {@code double}.
 *
 * <p><b>Noise.</b> {@code ε(b, j) = Philox.normal(key(b), stream, id(b)·n + j)} for the batch's
 * {@link NoiseSeeds} ({@code n} elements per sample): with {@code NoiseSeeds.batch(seed, stream, firstId, B)} the
 * noise of global sample {@code firstId + b} is the same whatever batch or data-parallel shard it lands in, and
 * with {@code firstId = 0} it equals {@code backend.randn(eps, seed, stream)} exactly. Times drawn in the op use
 * stream {@code stream + 1} (uniform at index {@code id(b)}); offset noise {@code stream + 2}. A training loop
 * therefore keeps <b>one fixed stream</b> and gives every step's samples fresh ids (as {@link Trainer} does):
 * advancing the stream by one per step would make step {@code k + 1}'s noise reuse the Philox words of step
 * {@code k}'s times.
 *
 * <pre>{@code
 * ForwardNoising fn = new ForwardNoising(Prediction.V).withLossWeight(ForwardNoising.LossWeight.minSnr(5, Prediction.V));
 * long firstId = (step * worldSize + rank) * B;                      // global ids: unique across steps and ranks
 * ForwardNoising.Result r = fn.apply(ops, schedule, TimeSampler.uniform(), NoiseSeeds.batch(seed, STREAM, firstId, B),
 *                                    x0, xt, target, null, weights);
 * }</pre>
 */
public final class ForwardNoising {

    /** A per-sample loss weight as a function of the noise level. */
    @FunctionalInterface
    public interface LossWeight {

        /** The weight at time {@code t} with coefficients {@code (α, σ)}. */
        double weight(double t, double alpha, double sigma);

        /** Weight 1. */
        static LossWeight none() {
            return (t, alpha, sigma) -> 1.0;
        }

        /** Min-SNR-γ ({@link LossWeights#minSnr}) for {@code target}, with {@code SNR = α²/σ²}. */
        static LossWeight minSnr(double gamma, Prediction target) {
            return (t, alpha, sigma) -> LossWeights.minSnr(Snr.snr(alpha, sigma), gamma, target);
        }

        /** EDM {@code λ(σ_VE)} ({@link EdmPreconditioning#lossWeight}) with {@code σ_VE = σ/α}. */
        static LossWeight edm(double sigmaData) {
            return (t, alpha, sigma) -> EdmPreconditioning.lossWeight(Snr.sigmaVe(alpha, sigma), sigmaData);
        }

        /** SD3 weighting ({@link Sd3Weighting#weight}) of the flow {@code σ}. */
        static LossWeight sd3(Sd3Weighting weighting) {
            Objects.requireNonNull(weighting, "weighting");
            return (t, alpha, sigma) -> weighting.weight(sigma);
        }
    }

    /**
     * What the op used per sample; the arrays are copied in and out, so a caller cannot change a result.
     *
     * @param t       times in {@code [0, 1]}, {@code [B]} ({@code NaN} where the caller gave only coefficients)
     * @param alpha   {@code α_b}, {@code [B]}
     * @param sigma   {@code σ_b}, {@code [B]}
     * @param weights loss weights, {@code [B]}
     */
    public record Result(double[] t, double[] alpha, double[] sigma, double[] weights) {

        /**
         * Copies the arrays.
         *
         * @throws IllegalArgumentException when the lengths differ
         * @throws NullPointerException     when an array is null
         */
        public Result {
            t = Objects.requireNonNull(t, "t").clone();
            alpha = Objects.requireNonNull(alpha, "alpha").clone();
            sigma = Objects.requireNonNull(sigma, "sigma").clone();
            weights = Objects.requireNonNull(weights, "weights").clone();
            if (alpha.length != t.length || sigma.length != t.length || weights.length != t.length) {
                throw new IllegalArgumentException("a result needs one value per sample in each array, got t "
                        + t.length + ", alpha " + alpha.length + ", sigma " + sigma.length + ", weights "
                        + weights.length);
            }
        }

        /** A copy of the times. */
        @Override
        public double[] t() {
            return t.clone();
        }

        /** A copy of {@code α_b}. */
        @Override
        public double[] alpha() {
            return alpha.clone();
        }

        /** A copy of {@code σ_b}. */
        @Override
        public double[] sigma() {
            return sigma.clone();
        }

        /** A copy of the loss weights. */
        @Override
        public double[] weights() {
            return weights.clone();
        }
    }

    private final Prediction target;
    private final LossWeight lossWeight;
    private final OffsetNoise offset;

    /** Noising for a network that regresses {@code target}; weight 1, no offset noise. */
    public ForwardNoising(Prediction target) {
        this(target, LossWeight.none(), OffsetNoise.NONE);
    }

    private ForwardNoising(Prediction target, LossWeight lossWeight, OffsetNoise offset) {
        this.target = Objects.requireNonNull(target, "target");
        this.lossWeight = Objects.requireNonNull(lossWeight, "lossWeight");
        this.offset = Objects.requireNonNull(offset, "offset");
    }

    /** This noising with loss weight {@code w}. */
    public ForwardNoising withLossWeight(LossWeight w) {
        return new ForwardNoising(target, w, offset);
    }

    /** This noising with offset noise ({@code x0} must then be {@code [B, C, ...]}). */
    public ForwardNoising withOffsetNoise(OffsetNoise o) {
        return new ForwardNoising(target, lossWeight, o);
    }

    /** The regression target. */
    public Prediction target() {
        return target;
    }

    // ---------------------------------------------------------------- coefficients and times

    /**
     * Per-sample coefficients {@code a = α, s = σ, c, d} of the target.
     *
     * @throws IllegalArgumentException for invalid coefficients, different lengths, or an {@code EPSILON} target at
     *                                  {@code α = 0} (zero SNR: Lin et al. 2023, §3.2; see {@link Objectives})
     */
    public NoisingCoefficients coefficients(double[] alpha, double[] sigma) {
        if (alpha.length != sigma.length) {
            throw new IllegalArgumentException("alpha has " + alpha.length + " values, sigma " + sigma.length);
        }
        int n = alpha.length;
        double[] c = new double[n];
        double[] d = new double[n];
        for (int b = 0; b < n; b++) {
            if (target == Prediction.EPSILON && alpha[b] == 0) {
                throw new IllegalArgumentException("sample " + b + " is at zero SNR (alpha = 0, sigma = " + sigma[b]
                        + "): an EPSILON target carries no information about x0 there (Lin et al. 2023, sec. 3.2);"
                        + " train with a V or VELOCITY target or keep t below the zero-SNR end");
            }
            c[b] = target.x0Coefficient(alpha[b], sigma[b]);
            d[b] = target.epsCoefficient(alpha[b], sigma[b]);
        }
        return new NoisingCoefficients(alpha.clone(), sigma.clone(), c, d);
    }

    /**
     * Times drawn per sample: {@code t_b = sampler.fromUniform(Philox.uniform(key(b), stream + 1, id(b)))}, so a
     * sample's time does not depend on its batch.
     */
    public static double[] drawTimes(TimeSampler sampler, NoiseSeeds seeds) {
        double[] t = new double[seeds.size()];
        for (int b = 0; b < t.length; b++) {
            t[b] = sampler.fromUniform(uniformOf(seeds, b));
        }
        return t;
    }

    /**
     * Stratified times over a global batch of {@code globalBatch} samples with ids {@code 0 … globalBatch − 1}:
     * {@code t_b = sampler.stratified(id(b), globalBatch, u_b)} ({@link TimeSampler#stratified}).
     *
     * @throws IllegalArgumentException when an id is outside {@code [0, globalBatch)}
     */
    public static double[] drawTimesStratified(TimeSampler sampler, NoiseSeeds seeds, int globalBatch) {
        double[] t = new double[seeds.size()];
        for (int b = 0; b < t.length; b++) {
            long id = seeds.id(b);
            if (id < 0 || id >= globalBatch) {
                throw new IllegalArgumentException("sample id " + id + " is outside the global batch [0, " + globalBatch
                        + ")");
            }
            t[b] = sampler.stratified((int) id, globalBatch, uniformOf(seeds, b));
        }
        return t;
    }

    /**
     * Integer training timesteps drawn per sample as diffusers' {@code randint(0, T)}:
     * {@code k_b = schedule.timestepFromUniform(Philox.uniform(key(b), stream + 1, id(b)))}.
     */
    public static int[] drawTimesteps(DiscreteVpSchedule schedule, NoiseSeeds seeds) {
        int[] k = new int[seeds.size()];
        for (int b = 0; b < k.length; b++) {
            k[b] = schedule.timestepFromUniform(uniformOf(seeds, b));
        }
        return k;
    }

    private static double uniformOf(NoiseSeeds seeds, int b) {
        return Philox.uniform(seeds.key(b), seeds.streamOf(NoiseSeeds.DRAW_TIME), seeds.id(b));
    }

    // ---------------------------------------------------------------- the op

    /**
     * Noising at per-sample times {@code t} of {@code schedule}.
     *
     * @param x0      clean data {@code [B, ...]} F32
     * @param xt      output {@code x_t}, shape of {@code x0} (may be {@code x0})
     * @param target  output target (what the network regresses), shape of {@code x0}
     * @param eps     output noise, or null
     * @param weights output loss weights, {@code B} F32 elements (e.g. {@code [B]}), or null
     * @throws IllegalArgumentException for times outside {@code [0, 1]}, a wrong length, or see
     *                                  {@link #coefficients} and {@link DiffusionOps#forwardNoise}
     */
    public Result apply(DiffusionOps ops, NoiseSchedule schedule, double[] t, NoiseSeeds seeds, Tensor x0, Tensor xt,
                        Tensor target, Tensor eps, Tensor weights) {
        double[] alpha = new double[t.length];
        double[] sigma = new double[t.length];
        for (int b = 0; b < t.length; b++) {
            alpha[b] = schedule.alpha(t[b]);
            sigma[b] = schedule.sigma(t[b]);
        }
        return applyLevels(ops, t.clone(), alpha, sigma, seeds, x0, xt, target, eps, weights);
    }

    /**
     * {@link #apply(DiffusionOps, NoiseSchedule, double[], NoiseSeeds, Tensor, Tensor, Tensor, Tensor, Tensor)} with
     * times from a {@code [B]} F32 tensor.
     *
     * @param t times in {@code [0, 1]}, {@code B} F32 elements (e.g. {@code [B]}), any backend
     * @throws IllegalArgumentException when {@code t} is not F32, or as the {@code double[]} form
     */
    public Result apply(DiffusionOps ops, NoiseSchedule schedule, Tensor t, NoiseSeeds seeds, Tensor x0, Tensor xt,
                        Tensor target, Tensor eps, Tensor weights) {
        float[] tf = t.toFloatArray();
        double[] td = new double[tf.length];
        for (int b = 0; b < tf.length; b++) {
            td[b] = tf[b];
        }
        return apply(ops, schedule, td, seeds, x0, xt, target, eps, weights);
    }

    /**
     * Noising with times drawn in the op from {@code sampler} ({@link #drawTimes}).
     *
     * @throws IllegalArgumentException as the {@code double[]} form
     */
    public Result apply(DiffusionOps ops, NoiseSchedule schedule, TimeSampler sampler, NoiseSeeds seeds, Tensor x0,
                        Tensor xt, Tensor target, Tensor eps, Tensor weights) {
        return apply(ops, schedule, drawTimes(sampler, seeds), seeds, x0, xt, target, eps, weights);
    }

    /**
     * Noising at per-sample coefficients {@code (α_b, σ_b)} given directly, e.g. EDM's {@code α = 1},
     * {@code σ = exp(P_mean + P_std·z)} ({@link EdmLogNormal}); {@code t} only feeds the loss weight (may be NaN).
     *
     * @param t       per-sample times {@code [B]}, only for the loss weight (NaN allowed)
     * @param alpha   {@code α_b}, {@code [B]}
     * @param sigma   {@code σ_b}, {@code [B]}
     * @param x0      clean data {@code [B, ...]} F32
     * @param xt      output {@code x_t}, shape of {@code x0} (may be {@code x0})
     * @param target  output target (what the network regresses), shape of {@code x0}
     * @param eps     output noise, or null
     * @param weights output loss weights, {@code B} F32 elements, or null
     * @throws IllegalArgumentException when the lengths of {@code t}, {@code alpha}, {@code sigma} differ,
     *                                  {@code weights} does not hold {@code B} values, for invalid coefficients or an
     *                                  {@code EPSILON} target at {@code α = 0} ({@link #coefficients}), or as
     *                                  {@link DiffusionOps#forwardNoise} (shapes, dtypes, seeds)
     */
    public Result applyLevels(DiffusionOps ops, double[] t, double[] alpha, double[] sigma, NoiseSeeds seeds,
                              Tensor x0, Tensor xt, Tensor target, Tensor eps, Tensor weights) {
        if (t.length != alpha.length) {
            throw new IllegalArgumentException("t has " + t.length + " values, alpha " + alpha.length);
        }
        NoisingCoefficients k = coefficients(alpha, sigma);
        double[] w = new double[alpha.length];
        for (int b = 0; b < w.length; b++) {
            w[b] = lossWeight.weight(t[b], alpha[b], sigma[b]);
        }
        if (weights != null && weights.numel() != w.length) {
            throw new IllegalArgumentException("weights " + weights + " must hold one value per sample (" + w.length
                    + ")");
        }
        ops.forwardNoise(k, seeds, offset.strength(), x0, xt, target, eps);
        if (weights != null) {
            float[] wf = new float[w.length];
            for (int b = 0; b < w.length; b++) {
                wf[b] = (float) w[b];
            }
            weights.copyFrom(wf);
        }
        return new Result(t, alpha, sigma, w);                   // the record copies
    }
}
