package org.diffusion4j.cli;

import org.diffusion4j.nn.DenoiserModel;
import org.diffusion4j.sampling.GridSpacing;
import org.diffusion4j.sampling.Guidance;
import org.diffusion4j.sampling.NoiseSeeds;
import org.diffusion4j.sampling.Sampler;
import org.diffusion4j.sampling.SamplerContext;
import org.diffusion4j.sampling.Samplers;
import org.diffusion4j.sampling.SamplingGrid;
import org.diffusion4j.sampling.Thresholding;
import org.diffusion4j.schedule.NoiseSchedule;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.RectifiedFlowSchedule;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.diffusion4j.tensor.Workspace;
import org.diffusion4j.training.TrainingConfig;

import java.util.Locale;
import java.util.function.IntUnaryOperator;

/**
 * Sampling for the commands: the grid for a schedule, a sampler by its command-line name, and a chunked sampling
 * loop whose every sample depends only on {@code (seed, its index, its label)}.
 *
 * <p><b>Reproducibility.</b> Sample {@code i} draws its noise from {@link NoiseSeeds#batch} at global id {@code i}
 * and is computed in the chunk {@code ⌊i / chunk⌋}, always run at the full chunk size (the last chunk is padded with
 * the samples that would follow and the padding is dropped), so sample {@code i} is the same bits whatever
 * {@code --n} is; its label is a function of {@code i} alone.
 */
final class Sampling {

    /** Philox stream of a sampling run's noise (draw {@code k} uses {@code STREAM + k}). */
    static final long STREAM = NoiseSeeds.SAMPLE_STREAM;

    /** Names accepted by {@code --sampler} (dashes or underscores). */
    static final String NAMES = "flow-euler, flow-midpoint, euler, heun, dpmpp-2m, ddim, ddpm, ddpm-large, "
            + "euler-ancestral, dpmpp-2m-sde, dpmpp-3m, dpmpp-3m-sde, unipc, repaint";

    private Sampling() {
    }

    /** What {@code --threshold} takes. */
    static final String THRESHOLD_DESCRIPTION = "thresholding of the denoised prediction x0 at every step: none, "
            + "clip[:R] (clamp to +-R, default 1; DDPM's clipping, diffusers' clip_sample), dynamic[:P[:MAX]] "
            + "(Imagen's dynamic thresholding, default 0.995:1.5, DeepFloyd IF's; MAX 1 is the plain clip) or auto (default: clip for images from eps-, v- and "
            + "x0-prediction models, whose x0 estimate overshoots at high noise; none for flow models and vectors)";

    /**
     * The thresholding {@code --threshold text} names for a model predicting {@code prediction}; {@code auto} (or
     * null) gives {@link Thresholding#clip clip(1)} for image models that do not predict a flow velocity (image data
     * lie in [−1, 1]; DDPM and diffusers' DDPM/DDIM schedulers clip {@code x̂0} there by default) and none otherwise.
     *
     * @throws IllegalArgumentException for a bad text, or thresholding asked for on vectors (standardised, unbounded)
     */
    static Thresholding threshold(String text, Prediction prediction, boolean images) {
        if (text == null || text.trim().equalsIgnoreCase("auto")) {
            return images && prediction != Prediction.VELOCITY ? Thresholding.clip(1) : null;
        }
        Thresholding t;
        try {
            t = Thresholding.parse(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--threshold: " + e.getMessage() + " (none, auto, clip[:R] or "
                    + "dynamic[:P[:MAX]])");
        }
        if (t != null && !images) {
            throw new IllegalArgumentException("--threshold " + text + " bounds the pixel values of image models "
                    + "(data in [-1, 1]); this model samples vectors, which have no such bound (use --threshold none)");
        }
        return t;
    }

    /** Standardised features wider than this (their data have std 1) make {@link #spreadNote} speak. */
    static final double WIDE_SPREAD = 3.0;

    /**
     * A note when standardised vector samples ({@code n} of {@code per} features, data std 1 per feature) spread
     * more than {@link #WIDE_SPREAD} times wider than the data in some feature, or null: an ODE sampler on an
     * eps-prediction model amplifies its error by 1/α where α is small (a new-user trial sampled std 9.4 against the
     * data's 1.6), and nothing bounds vectors the way clipping bounds images.
     */
    static String spreadNote(float[] x, long per, int n, Prediction prediction, String sampler, double guidance) {
        if (n < 20 || per < 1 || per > Integer.MAX_VALUE) {
            return null;                                    // too few samples to tell a spread
        }
        int d = (int) per;
        double worst = 0;
        int at = 0;
        for (int f = 0; f < d; f++) {
            double sum = 0;
            double sq = 0;
            for (int i = 0; i < n; i++) {
                double v = x[i * d + f];
                sum += v;
                sq += v * v;
            }
            double mean = sum / n;
            double std = Math.sqrt(Math.max(0, sq / n - mean * mean));
            if (std > worst) {
                worst = std;
                at = f;
            }
        }
        if (!(worst > WIDE_SPREAD)) {
            return null;
        }
        boolean stochastic = sampler.startsWith("ddpm") || sampler.startsWith("euler-ancestral")
                || sampler.startsWith("repaint") || sampler.contains("sde");
        String cause = guidance > 4 ? String.format(Locale.ROOT, ": guidance %.3g pushes the samples away from the "
                + "unconditional ones by that factor; a scale of 1-4 is usual", guidance)
                : prediction == Prediction.EPSILON
                ? ": an eps-prediction model's x0 estimate (x - sigma eps)/alpha magnifies its error where alpha is "
                + "small, and " + sampler + " follows it; a model trained longer or with --objective v or flow avoids "
                + "that" + (stochastic ? "" : " (--sampler ddpm, which adds fresh noise at every step, suffers less)")
                : ": the model may be undertrained (see its loss.png) or the sampling grid too coarse (--steps)";
        return String.format(Locale.ROOT, "the samples spread %.1f times wider than the training data in feature %d "
                + "(standardised units)%s", worst, at, cause);
    }

    /** The default sampler of a prediction type: flow-midpoint for velocity, DPM-Solver++(2M) otherwise. */
    static String defaultSampler(Prediction prediction) {
        return prediction == Prediction.VELOCITY ? "flow-midpoint" : "dpmpp-2m";
    }

    /** A sampler by its command-line name ({@code flow-euler} or {@code flow_euler}). */
    static Sampler sampler(String name) {
        return sampler(name, Knobs.DEFAULT);
    }

    /**
     * The sampling options beyond the sampler's name: {@code --threshold} (null: auto), {@code --eta} and
     * {@code --s-churn} (null: the sampler's default).
     */
    record Knobs(String threshold, Double eta, Double sChurn) {
        static final Knobs DEFAULT = new Knobs(null, null, null);
    }

    /**
     * Maps standardised samples back to the data's units in place ({@code scaling.invert}), refusing a result beyond
     * float32's range (data near ±3.4e38 whose samples overshoot it) before anything is written.
     *
     * @throws IllegalStateException naming the first overflowing value
     */
    static void toDataUnits(org.diffusion4j.io.Standardization scaling, float[] x) {
        scaling.invert(x);
        for (int i = 0; i < x.length; i++) {
            if (!Float.isFinite(x[i])) {
                throw new IllegalStateException("sample value " + i + " is " + x[i] + " in the data's units: the "
                        + "data's scale (values up to ~3.4e38, float32's limit) leaves no room for samples that "
                        + "overshoot it; rescale the data (e.g. to units of 1e30) and train again");
            }
        }
    }

    /** {@code --eta}'s help text. */
    static final String ETA_DESCRIPTION = "stochasticity eta >= 0 of ddim (default 0: deterministic; 1: DDPM-like), "
            + "euler-ancestral, dpmpp-2m-sde and dpmpp-3m-sde (default 1; 0: their ODE form), as diffusers' and "
            + "k-diffusion's eta";

    /** {@code --s-churn}'s help text. */
    static final String CHURN_DESCRIPTION = "heun only: Karras et al.'s S_churn >= 0, noise added back before each "
            + "step (Algorithm 2; default 0, e.g. 40 as EDM's ImageNet-64 setting), with S_noise 1 over all levels";

    /**
     * The sampler {@code name} with {@code knobs}' {@code eta} or {@code sChurn} when given.
     *
     * @throws IllegalArgumentException for an unknown name, a knob the sampler does not take, or a bad value
     */
    static Sampler sampler(String name, Knobs knobs) {
        Sampler base;
        try {
            base = Samplers.byName(name);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown --sampler '" + name + "'; expected one of " + NAMES);
        }
        String c = name.trim().toLowerCase(Locale.ROOT).replace('-', '_');
        Double eta = knobs.eta();
        if (eta != null) {
            if (!(eta >= 0 && eta < Double.POSITIVE_INFINITY)) {
                throw new IllegalArgumentException("--eta must be finite and >= 0, got " + eta);
            }
            if (eta > 1 && (c.equals("ddim") || c.startsWith("euler_a"))) {
                throw new IllegalArgumentException("--eta must be in [0, 1] for " + name + " (1 already draws all of "
                        + "the step's noise afresh; more changes nothing), got " + eta);
            }
            base = switch (c) {
                case "ddim" -> Samplers.ddim(eta);
                case "euler_ancestral", "euler_a" -> Samplers.eulerAncestral(eta, 1);
                case "dpmpp_2m_sde", "dpm++2m_sde" -> Samplers.dpmSolverPp2mSde(eta, 1);
                case "dpmpp_3m_sde", "dpm++3m_sde" -> Samplers.dpmSolverPp3mSde(eta, 1);
                default -> throw new IllegalArgumentException("--eta applies to ddim, euler-ancestral, dpmpp-2m-sde "
                        + "and dpmpp-3m-sde; --sampler " + name + " takes none");
            };
        }
        Double churn = knobs.sChurn();
        if (churn != null) {
            if (!(churn >= 0 && churn < Double.POSITIVE_INFINITY)) {
                throw new IllegalArgumentException("--s-churn must be finite and >= 0, got " + churn);
            }
            if (!c.equals("heun")) {
                throw new IllegalArgumentException("--s-churn applies to heun; --sampler " + name + " takes none");
            }
            base = Samplers.heun(new Samplers.Churn(churn, 0, Double.POSITIVE_INFINITY, 1));
        }
        return base;
    }

    /** {@code --grid}'s help text. */
    static final String GRID_DESCRIPTION = "how the sampler's levels are spaced: auto (the schedule's usual grid: "
            + "uniform time for flow models, trailing timesteps for --schedule linear, uniform log-SNR otherwise), "
            + "time, logsnr, karras or karras:RHO (Karras et al. 2022; RHO 7 if not given), shift:S (flow models; "
            + "S > 1 puts more steps at high noise), trailing, leading or linspace (discrete-timestep models, as "
            + "diffusers' timestep_spacing); S is absolute, and every grid starts no higher than the largest time "
            + "the model was trained on (default: ${DEFAULT-VALUE})";

    /** {@code --grid} read ({@link GridSpacing#parse}), its errors naming the option. */
    static GridSpacing gridSpacing(String text) {
        try {
            return GridSpacing.parse(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--grid: " + e.getMessage());
        }
    }

    /** Smallest largest-training-time a model can be sampled from (below it the grid has no room). */
    static final double MIN_TRAINED_T_MAX = 0.05;

    /** {@link #grid(TrainingConfig, String, int, GridSpacing)} on the schedule's usual grid. */
    static SamplingGrid grid(TrainingConfig training, String samplerName, int steps) {
        return grid(training, samplerName, steps, GridSpacing.AUTO);
    }

    /**
     * The sampling grid of {@code steps} steps from noise to data over the training's schedule
     * ({@link GridSpacing#grid(NoiseSchedule, int, boolean, double)}), starting no higher than the largest time the
     * training sampled ({@code --time-sampler uniform:0:0.99} gives 0.99), with the CLI's option names in its errors.
     */
    static SamplingGrid grid(TrainingConfig training, String samplerName, int steps, GridSpacing spacing) {
        if (steps < 1 || steps > 100_000) {
            throw new IllegalArgumentException("--steps must be in [1, 100000], got " + steps);
        }
        NoiseSchedule schedule = training.buildNoiseSchedule();
        boolean flowSampler = samplerName.trim().toLowerCase(Locale.ROOT).replace('-', '_').startsWith("flow_");
        if (flowSampler && !(schedule instanceof RectifiedFlowSchedule)) {
            throw new IllegalArgumentException("--sampler " + samplerName + " needs a flow-matching model (trained "
                    + "with --objective flow); this one uses --schedule " + training.schedule());
        }
        boolean discrete = schedule instanceof org.diffusion4j.schedule.DiscreteVpSchedule;
        if (spacing.kind() == GridSpacing.Kind.SHIFT && !(schedule instanceof RectifiedFlowSchedule)) {
            throw new IllegalArgumentException("--grid " + spacing + " shifts the noise levels of flow models (trained "
                    + "with --objective flow); this model uses --schedule " + training.schedule());
        }
        if (!discrete && (spacing.kind() == GridSpacing.Kind.TRAILING || spacing.kind() == GridSpacing.Kind.LEADING
                || spacing.kind() == GridSpacing.Kind.LINSPACE)) {
            throw new IllegalArgumentException("--grid " + spacing + " picks integer timesteps of models trained with "
                    + "--schedule linear or linear:T; this model uses --schedule " + training.schedule());
        }
        // the largest time training drew (time samplers are monotone in u; mode:S decreases)
        var ts = TrainingConfig.parseTimeSampler(training.timeSampler());
        double tMax = Math.max(ts.fromUniform(0.0), ts.fromUniform(1.0));
        if (!(tMax >= MIN_TRAINED_T_MAX)) {
            throw new IllegalArgumentException("the model was trained on times t <= " + tMax + " only (--time-sampler "
                    + training.timeSampler() + "): too narrow a range to sample from noise (it needs t up to at "
                    + "least " + MIN_TRAINED_T_MAX + ")");
        }
        // a sampler reaching 0.999 counts as reaching 1: logit-normal's largest draw is 0.99973, and such models are
        // sampled from pure noise (SD3); the cap is for ranges that stop short on purpose (uniform:0:0.99)
        double start = tMax >= 0.999 ? 1.0 : tMax;
        try {
            return spacing.grid(schedule, steps, flowSampler, start);
        } catch (IllegalArgumentException e) {
            String m = e.getMessage();
            throw new IllegalArgumentException(m.startsWith("grid spacing ") ? "--grid " + m.substring(13)
                    : "--grid " + spacing + " on --schedule " + training.schedule() + ": " + m);
        }
    }

    /**
     * What to sample.
     *
     * @param n        samples
     * @param seed     the noise seed
     * @param labelOf  the label of sample {@code i} ({@code [0, K)}, or {@code K}: the null class), or null for an unconditional model
     * @param guidance classifier-free guidance scale ({@code 1}: none)
     * @param rescale  guidance rescale φ in {@code [0, 1]} ({@code 0}: none; {@link Guidance})
     * @param chunk    samples per model batch
     * @param negativeClass the class guided away from in place of the null class (a negative prompt), or -1
     * @param threshold thresholding of the denoised prediction at every step, or null (see {@link Sampling#threshold})
     */
    record Request(int n, long seed, IntUnaryOperator labelOf, double guidance, double rescale, int chunk,
                   int negativeClass, Thresholding threshold) {

        Request(int n, long seed, IntUnaryOperator labelOf, double guidance, double rescale, int chunk) {
            this(n, seed, labelOf, guidance, rescale, chunk, -1, null);
        }

        /** This request with thresholding {@code t} of the denoised prediction (null: none). */
        Request withThreshold(Thresholding t) {
            return new Request(n, seed, labelOf, guidance, rescale, chunk, negativeClass, t);
        }

        Request {
            if (n < 1) {
                throw new IllegalArgumentException("--n must be >= 1, got " + n);
            }
            if (chunk < 1) {
                throw new IllegalArgumentException("sampling batch must be >= 1, got " + chunk);
            }
            if (!(guidance >= 0 && Double.isFinite(guidance))) {
                throw new IllegalArgumentException("--guidance must be finite and >= 0, got " + guidance);
            }
            if (!(rescale >= 0 && rescale <= 1)) {
                throw new IllegalArgumentException("--guidance-rescale must be in [0, 1], got " + rescale);
            }
        }
    }

    /**
     * Draws {@code r.n()} samples {@code [n, ...sampleShape]} (row-major) from {@code model}.
     *
     * @param progress called with the number of samples done after each chunk (may be null)
     */
    static float[] sample(Backend be, DenoiserModel model, Prediction prediction, Sampler sampler, SamplingGrid grid,
                          Request r, java.util.function.IntConsumer progress) {
        return sample(be, model, prediction, sampler, grid, r, null, false, progress);
    }

    /**
     * {@link #sample(Backend, DenoiserModel, Prediction, Sampler, SamplingGrid, Request, java.util.function.IntConsumer)}
     * from inputs: sample {@code i} starts from input {@code i mod K} of {@code edit} noised to the grid's first level
     * when {@code noisedInit} (image-to-image; the grid is then shortened by the strength), else from noise; with
     * {@code edit.mask()} the masked-out region is kept (inpainting, {@link SamplerContext.Builder#inpaint}).
     *
     * @param edit null for plain sampling
     */
    static float[] sample(Backend be, DenoiserModel model, Prediction prediction, Sampler sampler, SamplingGrid grid,
                          Request r, EditInput edit, boolean noisedInit, java.util.function.IntConsumer progress) {
        return sample(be, model, prediction, sampler, grid, r, edit, noisedInit, progress, null);
    }

    /**
     * {@link #sample(Backend, DenoiserModel, Prediction, Sampler, SamplingGrid, Request, EditInput, boolean,
     * java.util.function.IntConsumer)} with {@code steps} told of every level of every batch (null: none).
     */
    static float[] sample(Backend be, DenoiserModel model, Prediction prediction, Sampler sampler, SamplingGrid grid,
                          Request r, EditInput edit, boolean noisedInit, java.util.function.IntConsumer progress,
                          SamplerContext.StepListener steps) {
        return sample(be, model, prediction, sampler, grid, r, edit, noisedInit, progress, steps, null);
    }

    /** {@link #sample(Backend, DenoiserModel, Prediction, Sampler, SamplingGrid, Request, EditInput, boolean,
     * java.util.function.IntConsumer, SamplerContext.StepListener)} recording the first batch in {@code trajectory}
     * (null: none). */
    static float[] sample(Backend be, DenoiserModel model, Prediction prediction, Sampler sampler, SamplingGrid grid,
                          Request r, EditInput edit, boolean noisedInit, java.util.function.IntConsumer progress,
                          SamplerContext.StepListener steps, Trajectory trajectory) {
        long per = 1;
        long[] sampleShape = model.sampleShape();
        for (long d : sampleShape) {
            per *= d;
        }
        int k = model.numClasses();
        if (k > 0 && r.labelOf() == null) {
            throw new IllegalArgumentException("the model is class-conditional; labels are needed");
        }
        if (k == 0 && r.guidance() != 1.0) {
            throw new IllegalArgumentException("--guidance needs a class-conditional model; this one is "
                    + "unconditional (use --guidance 1)");
        }
        if (k == 0 && r.rescale() != 0) {
            throw new IllegalArgumentException("--guidance-rescale needs a class-conditional model with guidance; "
                    + "this one is unconditional");
        }
        float[] out = new float[Math.toIntExact(r.n() * per)];
        long[] shape = new long[sampleShape.length + 1];
        shape[0] = r.chunk();
        System.arraycopy(sampleShape, 0, shape, 1, sampleShape.length);
        try (Workspace activations = Workspace.create()) {         // one for every batch: allocated once
            sampleBatches(be, model, prediction, sampler, grid, r, edit, noisedInit, progress, steps, trajectory,
                    activations, out, shape, per, k);
        }
        return out;
    }

    private static void sampleBatches(Backend be, DenoiserModel model, Prediction prediction, Sampler sampler,
                                      SamplingGrid grid, Request r, EditInput edit, boolean noisedInit,
                                      java.util.function.IntConsumer progress, SamplerContext.StepListener steps,
                                      Trajectory trajectory, Workspace activations, float[] out, long[] shape,
                                      long per, int k) {
        int chunk = r.chunk();
        for (int from = 0; from < r.n(); from += chunk) {
            try (TensorScope scope = TensorScope.open()) {
                Tensor cond = null;
                Tensor uncond = null;
                if (k > 0) {
                    int[] labels = new int[chunk];
                    int[] nulls = new int[chunk];
                    for (int i = 0; i < chunk; i++) {
                        int l = r.labelOf().applyAsInt(from + i);
                        if (l < 0 || l > k) {                  // k: the null class, the unconditional model
                            throw new IllegalArgumentException("class " + l + " is outside [0, " + k + "]");
                        }
                        labels[i] = l;
                        nulls[i] = r.negativeClass() >= 0 ? r.negativeClass() : k;
                    }
                    cond = be.fromArray(scope, labels, chunk);
                    uncond = be.fromArray(scope, nulls, chunk);
                }
                SamplerContext.Builder b = SamplerContext.builder(be, model, prediction).workspace(activations)
                        .noise(NoiseSeeds.batch(r.seed(), STREAM, from, chunk)).condition(cond)
                        .checkFinite(true)    // a NaN model output stops with the level named, not a black grid
                        .thresholding(r.threshold())
                        .onStep(from == 0 && trajectory != null ? both(steps, trajectory) : steps);
                Tensor init = edit == null ? null : be.fromArray(scope, edit.rows(edit.init(), from, chunk), shape);
                if (edit != null && edit.mask() != null) {
                    b.inpaint(init, be.fromArray(scope, edit.rows(edit.mask(), from, chunk), shape));
                }
                if (k > 0 && r.guidance() != 1.0) {
                    b.guidance(Guidance.of(r.guidance(), r.rescale()), uncond);
                }
                try (SamplerContext ctx = b.build()) {
                    Tensor x = be.empty(scope, DType.F32, shape);
                    if (init != null && noisedInit) {
                        ctx.initialNoise(x, grid, init);
                    } else {
                        ctx.initialNoise(x, grid);
                    }
                    if (from == 0 && trajectory != null) {
                        trajectory.start(x);
                    }
                    ctx.sample(sampler, x, grid);
                    be.synchronize();
                    float[] xs = x.toFloatArray();
                    int take = Math.min(chunk, r.n() - from);
                    System.arraycopy(xs, 0, out, Math.toIntExact(from * per), Math.toIntExact(take * per));
                    if (progress != null) {
                        progress.accept(from + take);
                    }
                }
            }
        }
    }

    private static SamplerContext.StepListener both(SamplerContext.StepListener a, SamplerContext.StepListener b) {
        return a == null ? b : (level, grid, x) -> {
            a.onStep(level, grid, x);
            b.onStep(level, grid, x);
        };
    }

    /** True when every value is finite. */
    static boolean allFinite(float[] v) {
        for (float f : v) {
            if (!Float.isFinite(f)) {
                return false;
            }
        }
        return true;
    }
}
