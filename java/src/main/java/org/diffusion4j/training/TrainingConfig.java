package org.diffusion4j.training;

import org.diffusion4j.optim.AdamW;
import org.diffusion4j.optim.Ema;
import org.diffusion4j.optim.LrSchedule;
import org.diffusion4j.schedule.CosineSchedule;
import org.diffusion4j.schedule.DiscreteVpSchedule;
import org.diffusion4j.schedule.NoiseSchedule;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.RectifiedFlowSchedule;
import org.diffusion4j.schedule.VpSchedule;

import java.util.Locale;
import java.util.Objects;

/**
 * Everything that defines a training run of {@link Trainer}, serialisable as JSON (Jackson, component names as
 * fields; stored in checkpoints as {@code d4j.training.config}).
 *
 * @param seed            the run's seed: batch order, times, noise and label dropout are all Philox draws keyed by it
 *                        (see {@link Trainer})
 * @param batchSize       samples per step {@code B ≥ 1}
 * @param totalSteps      planned steps {@code ≥ 1}: the end of the cosine decay (training may run past it at
 *                        {@code minLearningRate})
 * @param learningRate    peak learning rate {@code ≥ 0}
 * @param warmupSteps     linear warm-up steps in {@code [0, totalSteps]}
 * @param minLearningRate floor of the cosine decay in {@code [0, learningRate]}
 * @param adamw           AdamW hyper-parameters; weight decay applies only to weight matrices (see {@link Trainer})
 * @param maxGradNorm     global-norm clipping threshold {@code > 0}, or {@code 0} for no clipping
 * @param ema             EMA warm-up schedule, or {@code null} for no EMA
 * @param objective       what the network regresses
 * @param schedule        noise schedule (for {@code FLOW} it must be a rectified-flow one, {@code "rf"} or
 *                        {@code "rf:SHIFT"}; any of them for the other objectives): {@code "rf"} / {@code "rf:SHIFT"}
 *                        ({@link RectifiedFlowSchedule}), {@code "cosine"} ({@link CosineSchedule#nicholDhariwal}),
 *                        {@code "vp"} ({@link VpSchedule#song2021}), {@code "linear"} / {@code "linear:T"}
 *                        (DDPM's discrete linear β schedule with {@code T} steps, default 1000,
 *                        {@link DiscreteVpSchedule#linear})
 * @param timeSampler     training distribution of {@code t}: {@code "uniform"}, {@code "uniform:TMIN:TMAX"},
 *                        {@code "logit-normal"} / {@code "logit-normal:M:S"}, {@code "mode:S"}, {@code "cosmap"}
 *                        ({@link TimeSampler}; the last three are Esser et al. 2024, "Scaling Rectified Flow
 *                        Transformers", eqs. 19, 20 and 21)
 * @param lossWeight      per-sample loss weight: {@code "none"} or {@code "min-snr:GAMMA"} ({@link LossWeights#minSnr},
 *                        Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting Strategy")
 * @param labelDropout    probability in {@code [0, 1]} of replacing a class label by the null class (classifier-free
 *                        guidance training, Ho &amp; Salimans 2022, §3.2); ignored for unconditional models. The
 *                        trainer draws the dropout itself and passes labels in {@code [0, numClasses]} to the model, so
 *                        a model's own dropout setting (e.g. {@code DiT.Config.classDropProb}) is not used in training
 * @param randomFlip  mirror each training image left-right with probability 1/2 (the data augmentation of
 *                        ADM, Dhariwal &amp; Nichol 2021, and DiT, Peebles &amp; Xie 2023; EDM's "xflip"); a Philox
 *                        draw of the sample's global id decides, so runs stay reproducible and resumable. Images
 *                        only (samples of rank ≥ 2); absent from configurations saved before it existed (false)
 * @param microBatch  samples per forward/backward pass, dividing {@code batchSize}; the gradients of the
 *                        {@code batchSize / microBatch} passes of a step are accumulated before the one optimizer step
 *                        (gradient accumulation: the same update as the whole batch at once, up to float rounding,
 *                        with the activation memory of a micro-batch); {@code 0} (also for configurations saved before
 *                        it existed) or {@code batchSize}: the whole batch in one pass
 */
public record TrainingConfig(long seed, int batchSize, long totalSteps, double learningRate, long warmupSteps,
                             double minLearningRate, AdamW.Hyper adamw, double maxGradNorm, Ema.Schedule ema,
                             Objective objective, String schedule, String timeSampler, String lossWeight,
                             double labelDropout, boolean randomFlip, int microBatch) {

    /** The regression target of training. */
    public enum Objective {
        /** Rectified flow (Liu et al. 2022; Lipman et al. 2023): {@code x_t = (1 − t) x0 + t ε}, target {@code ε − x0}. */
        FLOW,
        /** Noise prediction (Ho et al. 2020, eq. 14) on {@link #schedule}. */
        EPSILON,
        /** v-prediction {@code α ε − σ x0} (Salimans &amp; Ho 2022, §4) on {@link #schedule}. */
        V,
        /** Clean-data prediction on {@link #schedule}. */
        X0;

        /** The {@link Prediction} the network outputs. */
        public Prediction prediction() {
            return switch (this) {
                case FLOW -> Prediction.VELOCITY;
                case EPSILON -> Prediction.EPSILON;
                case V -> Prediction.V;
                case X0 -> Prediction.SAMPLE;
            };
        }
    }

    /**
     * Validates every field, including the three specification strings.
     *
     * @throws IllegalArgumentException naming the bad field and value
     */
    public TrainingConfig {
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize must be >= 1, got " + batchSize);
        }
        if (microBatch < 0 || microBatch > batchSize || (microBatch > 0 && batchSize % microBatch != 0)) {
            throw new IllegalArgumentException("microBatch must divide batchSize " + batchSize + " (or be 0: the whole "
                    + "batch), got " + microBatch);
        }
        if (totalSteps < 1) {
            throw new IllegalArgumentException("totalSteps must be >= 1, got " + totalSteps);
        }
        Objects.requireNonNull(adamw, "adamw");
        Objects.requireNonNull(objective, "objective");
        Objects.requireNonNull(schedule, "schedule");
        Objects.requireNonNull(timeSampler, "timeSampler");
        Objects.requireNonNull(lossWeight, "lossWeight");
        LrSchedule.warmupCosine(learningRate, warmupSteps, totalSteps, minLearningRate);
        if (!(maxGradNorm >= 0 && Double.isFinite(maxGradNorm))) {
            throw new IllegalArgumentException("maxGradNorm must be finite and >= 0 (0: no clipping), got "
                    + maxGradNorm);
        }
        if (!(labelDropout >= 0 && labelDropout <= 1)) {
            throw new IllegalArgumentException("labelDropout must be in [0, 1], got " + labelDropout);
        }
        NoiseSchedule s = parseSchedule(objective, schedule);
        TimeSampler ts = parseTimeSampler(timeSampler);
        parseLossWeight(lossWeight, objective.prediction());
        Objectives.requireDefined(s, objective.prediction(), ts.fromUniform(1.0));
    }

    /**
     * Rectified-flow training with the usual settings: uniform {@code t}, no loss weight, AdamW
     * {@code β = (0.9, 0.999)}, {@code ε = 1e-8}, weight decay 0, peak learning rate 1e-3 with
     * {@code min(1000, totalSteps/10)} warm-up steps and cosine decay to 1e-5, clipping at norm 1, EMA with
     * {@code max decay 0.9999, p = 2/3}, label dropout 0.1.
     *
     * @param seed       seed of every Philox draw of the run (noise, times, label dropout, flips, batches)
     * @param batchSize  samples per optimizer step, {@code >= 1}
     * @param totalSteps optimizer steps of the run, {@code >= 1} (the length of the learning-rate schedule)
     * @throws IllegalArgumentException when {@code batchSize < 1} or {@code totalSteps < 1}
     */
    public static TrainingConfig defaults(long seed, int batchSize, long totalSteps) {
        return new TrainingConfig(seed, batchSize, totalSteps, 1e-3, Math.min(1000, totalSteps / 10), 1e-5,
                AdamW.Hyper.defaults().withWeightDecay(0), 1.0, Ema.Schedule.defaults(), Objective.FLOW, "rf",
                "uniform", "none", 0.1, false, 0);
    }

    /**
     * A builder starting from {@link #defaults}{@code (seed, batchSize, totalSteps)}: set fields in any order, checked
     * once by {@link Builder#build()} (the {@code with…} methods check after each change, so a combination that is
     * only valid once complete, e.g. an {@code EPSILON} objective on a schedule whose last time needs a narrower time
     * sampler, must be set in the right order there).
     *
     * @throws IllegalArgumentException when {@code batchSize < 1} or {@code totalSteps < 1} (see {@link #defaults})
     */
    public static Builder builder(long seed, int batchSize, long totalSteps) {
        return defaults(seed, batchSize, totalSteps).toBuilder();
    }

    /** A builder holding this configuration's fields. */
    public Builder toBuilder() {
        return new Builder(this);
    }

    /** Mutable fields of a {@link TrainingConfig}, checked together by {@link #build()}. */
    public static final class Builder {
        private long seed;
        private int batchSize;
        private long totalSteps;
        private double learningRate;
        private long warmupSteps;
        private double minLearningRate;
        private AdamW.Hyper adamw;
        private double maxGradNorm;
        private Ema.Schedule ema;
        private Objective objective;
        private String schedule;
        private String timeSampler;
        private String lossWeight;
        private double labelDropout;
        private boolean randomFlip;
        private int microBatch;

        private Builder(TrainingConfig c) {
            seed = c.seed;
            batchSize = c.batchSize;
            totalSteps = c.totalSteps;
            learningRate = c.learningRate;
            warmupSteps = c.warmupSteps;
            minLearningRate = c.minLearningRate;
            adamw = c.adamw;
            maxGradNorm = c.maxGradNorm;
            ema = c.ema;
            objective = c.objective;
            schedule = c.schedule;
            timeSampler = c.timeSampler;
            lossWeight = c.lossWeight;
            labelDropout = c.labelDropout;
            randomFlip = c.randomFlip;
            microBatch = c.microBatch;
        }

        /** The seed. */
        public Builder seed(long s) {
            seed = s;
            return this;
        }

        /** Samples per step and planned steps. */
        public Builder batch(int size, long steps) {
            batchSize = size;
            totalSteps = steps;
            return this;
        }

        /** Peak learning rate, warm-up steps and the floor of the cosine decay. */
        public Builder learningRate(double peak, long warmup, double min) {
            learningRate = peak;
            warmupSteps = warmup;
            minLearningRate = min;
            return this;
        }

        /** AdamW hyper-parameters. */
        public Builder adamw(AdamW.Hyper h) {
            adamw = h;
            return this;
        }

        /** Gradient clipping threshold (0: none). */
        public Builder maxGradNorm(double max) {
            maxGradNorm = max;
            return this;
        }

        /** EMA schedule (null: none). */
        public Builder ema(Ema.Schedule e) {
            ema = e;
            return this;
        }

        /** Objective and noise schedule. */
        public Builder objective(Objective o, String noiseSchedule) {
            objective = o;
            schedule = noiseSchedule;
            return this;
        }

        /** Time sampler and loss weight. */
        public Builder timeSampling(String sampler, String weight) {
            timeSampler = sampler;
            lossWeight = weight;
            return this;
        }

        /** Label-dropout probability. */
        public Builder labelDropout(double p) {
            labelDropout = p;
            return this;
        }

        /** Random horizontal flips of training images. */
        public Builder randomFlip(boolean flip) {
            randomFlip = flip;
            return this;
        }

        /** Samples per forward/backward pass (0: the whole batch). */
        public Builder microBatch(int m) {
            microBatch = m;
            return this;
        }

        /**
         * The configuration.
         *
         * @throws IllegalArgumentException naming the bad field and value (see {@link TrainingConfig})
         */
        public TrainingConfig build() {
            return new TrainingConfig(seed, batchSize, totalSteps, learningRate, warmupSteps, minLearningRate, adamw,
                    maxGradNorm, ema, objective, schedule, timeSampler, lossWeight, labelDropout, randomFlip,
                    microBatch);
        }
    }

    /**
     * This configuration with another seed.
     */
    public TrainingConfig withSeed(long s) {
        return toBuilder().seed(s).build();
    }

    /**
     * This configuration with another learning-rate schedule.
     *
     * @param peak   peak learning rate, {@code >= 0}
     * @param warmup linear warm-up steps in {@code [0, totalSteps]}
     * @param min    floor of the cosine decay in {@code [0, peak]}
     * @throws IllegalArgumentException naming the value out of range
     */
    public TrainingConfig withLearningRate(double peak, long warmup, double min) {
        return toBuilder().learningRate(peak, warmup, min).build();
    }

    /**
     * This configuration with other AdamW hyper-parameters.
     *
     * @throws NullPointerException when {@code h} is null
     */
    public TrainingConfig withAdamW(AdamW.Hyper h) {
        return toBuilder().adamw(h).build();
    }

    /**
     * This configuration with another clipping threshold (0: none).
     *
     * @param max global-norm threshold, finite and {@code >= 0} (0: no clipping)
     * @throws IllegalArgumentException when {@code max} is negative or not finite
     */
    public TrainingConfig withMaxGradNorm(double max) {
        return toBuilder().maxGradNorm(max).build();
    }

    /**
     * This configuration with another EMA schedule ({@code null}: no EMA).
     */
    public TrainingConfig withEma(Ema.Schedule e) {
        return toBuilder().ema(e).build();
    }

    /**
     * This configuration with another objective and schedule.
     *
     * @param o             the regression target
     * @param noiseSchedule a schedule specification (see the record comment)
     * @throws IllegalArgumentException when the schedule is unknown or malformed, {@code FLOW} gets a schedule that
     *                                  is not rectified flow, or the target is undefined at the time sampler's last
     *                                  time (e.g. {@code EPSILON} where {@code α = 0})
     * @throws NullPointerException     when an argument is null
     */
    public TrainingConfig withObjective(Objective o, String noiseSchedule) {
        return toBuilder().objective(o, noiseSchedule).build();
    }

    /**
     * This configuration with another time sampler and loss weight.
     *
     * @param sampler a time-sampler specification (see the record comment)
     * @param weight  a loss-weight specification (see the record comment)
     * @throws IllegalArgumentException when a specification is unknown or malformed, or the objective's target is
     *                                  undefined at the new sampler's last time
     * @throws NullPointerException     when an argument is null
     */
    public TrainingConfig withTimeSampling(String sampler, String weight) {
        return toBuilder().timeSampling(sampler, weight).build();
    }

    /**
     * This configuration with another label-dropout probability.
     *
     * @param p probability in {@code [0, 1]}
     * @throws IllegalArgumentException when {@code p} is outside {@code [0, 1]} or NaN
     */
    public TrainingConfig withLabelDropout(double p) {
        return toBuilder().labelDropout(p).build();
    }

    /**
     * This configuration with or without random horizontal flips of the training images.
     */
    public TrainingConfig withRandomFlip(boolean flip) {
        return toBuilder().randomFlip(flip).build();
    }

    /**
     * This configuration with {@code microBatch} samples per forward/backward pass (0: the whole batch).
     *
     * @throws IllegalArgumentException when it does not divide {@link #batchSize}
     */
    public TrainingConfig withMicroBatch(int microBatch) {
        return toBuilder().microBatch(microBatch).build();
    }

    /** Forward/backward passes per step: {@code batchSize / microBatch} (1 for {@code microBatch = 0}). */
    public int microBatches() {
        return microBatch == 0 ? 1 : batchSize / microBatch;
    }

    /** The learning rate per step: warm-up then cosine decay ({@link LrSchedule#warmupCosine}). */
    public LrSchedule buildLrSchedule() {
        return LrSchedule.warmupCosine(learningRate, warmupSteps, totalSteps, minLearningRate);
    }

    /** The noise schedule of the objective ({@link RectifiedFlowSchedule#unshifted()}-like for {@code FLOW}). */
    public NoiseSchedule buildNoiseSchedule() {
        return parseSchedule(objective, schedule);
    }

    /** The time sampler. */
    public TimeSampler buildTimeSampler() {
        return parseTimeSampler(timeSampler);
    }

    /** The per-sample loss weight. */
    public ForwardNoising.LossWeight buildLossWeight() {
        return parseLossWeight(lossWeight, objective.prediction());
    }

    // ---------------------------------------------------------------- specification strings

    /**
     * The schedule named by {@code spec} (see the record comment). {@code FLOW} requires a rectified-flow
     * schedule ({@code "rf"} or {@code "rf:SHIFT"}).
     *
     * @throws IllegalArgumentException naming the specification
     */
    public static NoiseSchedule parseSchedule(Objective objective, String spec) {
        String[] p = split("schedule", spec);
        NoiseSchedule s;
        try {
            s = switch (p[0]) {
                case "rf" -> {
                    if (p.length == 1) {
                        yield RectifiedFlowSchedule.unshifted();
                    }
                    arity("schedule", spec, p, 2);
                    yield new RectifiedFlowSchedule(number("schedule", spec, p, 1));
                }
                case "cosine" -> {
                    arity("schedule", spec, p, 1);
                    yield CosineSchedule.nicholDhariwal();
                }
                case "vp" -> {
                    arity("schedule", spec, p, 1);
                    yield VpSchedule.song2021();
                }
                case "linear" -> DiscreteVpSchedule.linear(p.length == 1 ? 1000 : timesteps(spec, p));
                default -> throw new IllegalArgumentException("unknown schedule '" + spec
                        + "'; expected rf, rf:SHIFT, cosine, vp, linear or linear:T");
            };
        } catch (IllegalArgumentException e) {
            if (e.getMessage() != null && e.getMessage().contains(spec)) {
                throw e;
            }
            throw new IllegalArgumentException("bad schedule '" + spec + "': " + e.getMessage(), e);
        }
        if (objective == Objective.FLOW && !(s instanceof RectifiedFlowSchedule)) {
            throw new IllegalArgumentException("the FLOW objective trains on the rectified-flow path; schedule '"
                    + spec + "' is not one (use rf or rf:SHIFT, or an EPSILON/V/X0 objective)");
        }
        return s;
    }

    /**
     * The time sampler named by {@code spec} (see the record comment).
     *
     * @throws IllegalArgumentException naming the specification
     */
    public static TimeSampler parseTimeSampler(String spec) {
        String[] p = split("timeSampler", spec);
        try {
            return switch (p[0]) {
                case "uniform" -> {
                    if (p.length == 1) {
                        yield TimeSampler.uniform();
                    }
                    arity("timeSampler", spec, p, 3);
                    yield new TimeSampler.Uniform(number("timeSampler", spec, p, 1), number("timeSampler", spec, p,
                            2));
                }
                case "logit-normal" -> {
                    if (p.length == 1) {
                        yield new TimeSampler.LogitNormal(0, 1);
                    }
                    arity("timeSampler", spec, p, 3);
                    yield new TimeSampler.LogitNormal(number("timeSampler", spec, p, 1),
                            number("timeSampler", spec, p, 2));
                }
                case "mode" -> {
                    arity("timeSampler", spec, p, 2);
                    yield new TimeSampler.Mode(number("timeSampler", spec, p, 1));
                }
                case "cosmap" -> {
                    arity("timeSampler", spec, p, 1);
                    yield new TimeSampler.CosMap();
                }
                default -> throw new IllegalArgumentException("unknown time sampler '" + spec
                        + "'; expected uniform, uniform:TMIN:TMAX, logit-normal, logit-normal:M:S, mode:S or cosmap");
            };
        } catch (IllegalArgumentException e) {
            if (e.getMessage() != null && e.getMessage().contains(spec)) {
                throw e;
            }
            throw new IllegalArgumentException("bad time sampler '" + spec + "': " + e.getMessage(), e);
        }
    }

    /**
     * The loss weight named by {@code spec}: {@code "none"} or {@code "min-snr:GAMMA"}.
     *
     * @throws IllegalArgumentException naming the specification
     */
    public static ForwardNoising.LossWeight parseLossWeight(String spec, Prediction target) {
        String[] p = split("lossWeight", spec);
        return switch (p[0]) {
            case "none" -> {
                arity("lossWeight", spec, p, 1);
                yield ForwardNoising.LossWeight.none();
            }
            case "min-snr" -> {
                arity("lossWeight", spec, p, 2);
                double gamma = number("lossWeight", spec, p, 1);
                if (!(gamma > 0 && Double.isFinite(gamma))) {
                    throw new IllegalArgumentException("min-SNR gamma must be finite and > 0, got '" + spec + "'");
                }
                yield ForwardNoising.LossWeight.minSnr(gamma, target);
            }
            default -> throw new IllegalArgumentException("unknown loss weight '" + spec
                    + "'; expected none or min-snr:GAMMA");
        };
    }

    private static String[] split(String field, String spec) {
        Objects.requireNonNull(spec, field);
        String s = spec.trim().toLowerCase(Locale.ROOT);
        if (s.isEmpty()) {
            throw new IllegalArgumentException(field + " must not be empty");
        }
        return s.split(":", -1);
    }

    private static void arity(String field, String spec, String[] p, int n) {
        if (p.length != n) {
            throw new IllegalArgumentException(field + " '" + spec + "' needs " + (n - 1) + " parameter(s), got "
                    + (p.length - 1));
        }
    }

    private static double number(String field, String spec, String[] p, int i) {
        if (i >= p.length) {
            throw new IllegalArgumentException(field + " '" + spec + "' lacks parameter " + i);
        }
        try {
            return Double.parseDouble(p[i]);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(field + " '" + spec + "': '" + p[i] + "' is not a number", e);
        }
    }

    /** {@code T} of {@code "linear:T"}, in {@code [1, 2^31 − 1]} (a larger value was once cut to its low 32 bits). */
    private static int timesteps(String spec, String[] p) {
        arity("schedule", spec, p, 2);
        long t = integer("schedule", spec, p, 1);
        if (t < 1 || t > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("schedule '" + spec + "': T must be in [1, " + Integer.MAX_VALUE
                    + "], got " + t);
        }
        return (int) t;
    }

    private static long integer(String field, String spec, String[] p, int i) {
        try {
            return Long.parseLong(p[i]);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(field + " '" + spec + "': '" + p[i] + "' is not an integer", e);
        }
    }
}
