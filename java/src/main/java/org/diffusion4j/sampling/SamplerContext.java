package org.diffusion4j.sampling;

import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.PredictionConversion;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Shape;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.diffusion4j.tensor.Workspace;

import java.util.Arrays;
import java.util.Objects;

/**
 * Everything a {@link Sampler} needs besides the grid: the {@link Denoiser} and its declared {@link Prediction},
 * the conditioning and {@link Guidance}, the {@link NoiseSeeds} of the batch, the fused ops and the scratch
 * buffers (model outputs, history, intermediate states), which it owns and frees at {@link #close()}.
 *
 * <pre>{@code
 * try (SamplerContext ctx = SamplerContext.builder(backend, model, Prediction.EPSILON)
 *         .condition(text).guidance(Guidance.of(7.5, 0.7), emptyText)
 *         .noise(NoiseSeeds.batch(seed, 0, 0, batch)).build()) {
 *     ctx.initialNoise(x, grid);
 *     ctx.sample(Samplers.dpmSolverPp2m(), x, grid);
 * }
 * }</pre>
 *
 * <h2>For sampler authors</h2>
 * A step calls {@link #evaluate} (the model, twice with guidance) and then {@link #update}, which runs one fused
 * pass ({@link DiffusionOps#samplerStep}) computing
 * <pre>
 *   out = u.x·x + u.xIn·xIn + u.pred·P + u.history·H + u.noise·z
 * </pre>
 * where {@code xIn} is the last evaluated input, {@code P} the guided model output converted to {@code u.target}
 * (usually {@code SAMPLE}, the denoised {@code x0}) at the evaluated level, {@code H} the {@code P} saved by an
 * earlier update and {@code z} the noise of draw {@code u.draw}. The conversion is folded into the per-sample
 * coefficients on the host in {@code double}. Not thread-safe: one sampling run at a time.
 */
public final class SamplerContext implements AutoCloseable {

    /**
     * The scalar coefficients of one update (same for every sample), see the class notes.
     *
     * @param target  the prediction {@code P} is converted to
     * @param x       coefficient of the state {@code x}
     * @param xIn     coefficient of the evaluated input (when it is not {@code x})
     * @param pred    coefficient of {@code P}
     * @param history coefficient of the saved history {@code H}
     * @param noise   coefficient of the noise {@code z}
     * @param draw    the noise draw ({@link NoiseSeeds}); ignored when {@code noise = 0}
     */
    public record Update(Prediction target, double x, double xIn, double pred, double history, double noise,
                         long draw) {

        /** Validates finite coefficients. */
        public Update {
            Objects.requireNonNull(target, "target");
            for (double v : new double[] {x, xIn, pred, history, noise}) {
                if (!Double.isFinite(v)) {
                    throw new IllegalArgumentException("update coefficients must be finite: x = " + x + ", xIn = "
                            + xIn + ", pred = " + pred + ", history = " + history + ", noise = " + noise);
                }
            }
        }

        /** {@code x·x + denoised·D} with {@code D} the denoised ({@code SAMPLE}) prediction. */
        public static Update denoised(double x, double denoised) {
            return new Update(Prediction.SAMPLE, x, 0, denoised, 0, 0, -1);
        }

        /** {@code x·x + velocity·u} with {@code u} the flow velocity ({@code VELOCITY}) prediction. */
        public static Update velocity(double x, double velocity) {
            return new Update(Prediction.VELOCITY, x, 0, velocity, 0, 0, -1);
        }

        /** This update plus {@code c·H}. */
        public Update withHistory(double c) {
            return new Update(target, x, xIn, pred, c, noise, draw);
        }

        /** This update plus {@code c·xIn}. */
        public Update withInput(double c) {
            return new Update(target, x, c, pred, history, noise, draw);
        }

        /** This update plus {@code c·z} with {@code z} of noise draw {@code k}. */
        public Update withNoise(double c, long k) {
            return new Update(target, x, xIn, pred, history, c, k);
        }
    }

    private final Backend backend;
    private final DiffusionOps ops;
    private final boolean ownsOps;
    private final Denoiser model;
    private final Prediction prediction;
    private final Tensor condition;
    private final Tensor uncondition;
    private final Guidance guidance;
    private final NoiseSeeds seeds;

    private TensorScope scope;
    /** The model calls' temporaries (reused by every call; freed at {@link #close()}). */
    private final Workspace workspace = Workspace.create();
    private long[] shape;
    private Tensor outCond;
    private Tensor outUncond;
    private Tensor history;
    private Prediction historyTarget;
    private final Tensor[] scratch = new Tensor[4];
    private Tensor tBuffer;
    private Tensor sigmaVeBuffer;

    private final boolean checkFinite;
    private Tensor evalInput;
    private Level evalLevel;
    private long modelCalls;
    private boolean closed;

    private SamplerContext(Builder b) {
        this.backend = b.backend;
        this.ownsOps = b.ops == null;
        this.ops = b.ops == null ? DiffusionOps.forBackend(b.backend) : b.ops;
        this.model = b.model;
        this.prediction = b.prediction;
        this.condition = b.condition;
        this.uncondition = b.uncondition;
        this.guidance = b.guidance;
        this.seeds = b.seeds;
        this.checkFinite = b.checkFinite;
        this.scope = TensorScope.open();
    }

    /**
     * Starts a context for {@code model}, which predicts {@code prediction}, on {@code backend}.
     */
    public static Builder builder(Backend backend, Denoiser model, Prediction prediction) {
        return new Builder(backend, model, prediction);
    }

    /** Builder of a {@link SamplerContext}. */
    public static final class Builder {
        private final Backend backend;
        private final Denoiser model;
        private final Prediction prediction;
        private DiffusionOps ops;
        private Tensor condition;
        private Tensor uncondition;
        private Guidance guidance = Guidance.NONE;
        private NoiseSeeds seeds;
        private boolean checkFinite;

        private Builder(Backend backend, Denoiser model, Prediction prediction) {
            this.backend = Objects.requireNonNull(backend, "backend");
            this.model = Objects.requireNonNull(model, "model");
            this.prediction = Objects.requireNonNull(prediction, "prediction");
        }

        /** The fused ops to use (default {@link DiffusionOps#forBackend}; not closed by the context). */
        public Builder ops(DiffusionOps ops) {
            if (ops.backend() != backend) {
                throw new IllegalArgumentException("ops run on " + ops.backend().name() + ", the context on "
                        + backend.name());
            }
            this.ops = ops;
            return this;
        }

        /** The conditioning passed to every model call (default null: unconditional). */
        public Builder condition(Tensor condition) {
            this.condition = condition;
            return this;
        }

        /**
         * Classifier-free guidance with {@code uncondition} (e.g. the empty prompt's embedding; null is passed to
         * the model as is) as the unconditional input.
         */
        public Builder guidance(Guidance guidance, Tensor uncondition) {
            this.guidance = Objects.requireNonNull(guidance, "guidance");
            this.uncondition = uncondition;
            return this;
        }

        /** The batch's noise seeds, needed by stochastic samplers and {@link #initialNoise}. */
        public Builder noise(NoiseSeeds seeds) {
            this.seeds = seeds;
            return this;
        }

        /**
         * Checks every model output and every updated state for NaN and infinities (one extra reduction pass per
         * evaluation and per update; off by default) and throws {@link IllegalStateException} naming the level and
         * the call at the first bad one, instead of letting NaN spread silently through the rest of the run. The
         * state check catches what finite model outputs can still produce: a guided combination or a step that
         * overflows {@code float}.
         */
        public Builder checkFinite(boolean check) {
            this.checkFinite = check;
            return this;
        }

        /** The context. */
        public SamplerContext build() {
            return new SamplerContext(this);
        }
    }

    // ---------------------------------------------------------------- for users

    /**
     * Runs {@code sampler} over {@code grid}, updating {@code x} in place.
     *
     * @throws IllegalArgumentException when {@code x} is (or overlaps) one of this context's own buffers (its model
     *                                  outputs, history or {@link #scratch} slots, which samplers overwrite)
     * @throws java.util.concurrent.CancellationException when the calling thread is interrupted (before a model
     *                                  call; {@code x} then holds a partly sampled state)
     */
    public void sample(Sampler sampler, Tensor x, SamplingGrid grid) {
        checkOpen();
        Objects.requireNonNull(x, "x");
        for (Tensor own : new Tensor[] {outCond, outUncond, history, scratch[0], scratch[1], scratch[2], scratch[3]}) {
            if (own != null && own.device().equals(x.device()) && Shape.overlaps(own, x)) {
                throw new IllegalArgumentException("x " + x + " is a buffer of this SamplerContext (model output,"
                        + " history or scratch slot), which the sampler overwrites; sample into your own tensor");
            }
        }
        historyTarget = null;
        evalInput = null;
        sampler.sample(this, x, grid);
    }

    /**
     * Writes the initial noise {@code x = σ_0·z} of {@code grid.first()} (k-diffusion's {@code randn·σ_max} in
     * {@code x_t} form; for VP schedules {@code σ_0 ≈ 1}), {@code z} from draw 0 of the noise seeds.
     *
     * @throws IllegalStateException when no noise seeds were given
     */
    public void initialNoise(Tensor x, SamplingGrid grid) {
        int batch = ensureShape(x);
        double[] zero = new double[batch];
        double[] s = filled(batch, grid.first().sigma());
        ops.scaleAddNoise(zero, s, requireSeeds(batch), NoiseSeeds.DRAW_INITIAL, x, x);
    }

    /** The model's declared prediction type. */
    public Prediction prediction() {
        return prediction;
    }

    /** The guidance settings. */
    public Guidance guidance() {
        return guidance;
    }

    /** The fused ops in use. */
    public DiffusionOps ops() {
        return ops;
    }

    /** The backend. */
    public Backend backend() {
        return backend;
    }

    /** Number of {@link Denoiser} calls made so far (two per guided evaluation). */
    public long modelCalls() {
        return modelCalls;
    }

    // ---------------------------------------------------------------- for samplers

    /**
     * Evaluates the model (with guidance: conditional and unconditional) at {@code xIn} on level {@code level},
     * into this context's output buffers. The next {@link #update} uses these outputs.
     *
     * @throws java.util.concurrent.CancellationException when the calling thread is interrupted (checked before
     *                                                    each evaluation, so an interrupt stops a sampling run within
     *                                                    one step; the interrupt status stays set)
     */
    public void evaluate(Tensor xIn, Level level) {
        if (Thread.currentThread().isInterrupted()) {
            throw new java.util.concurrent.CancellationException("sampling interrupted before model call "
                    + (modelCalls + 1) + " at " + level);
        }
        int batch = ensureShape(xIn);
        Level[] per = new Level[batch];
        Arrays.fill(per, Objects.requireNonNull(level, "level"));
        NoiseLevels levels = new NoiseLevels(per, backend, scope, tBuffer(batch), sigmaVeBuffer(batch));
        if (outCond == null) {
            outCond = backend.empty(scope, DType.F32, shape);
        }
        if (guidance.isGuided()) {
            if (outUncond == null) {
                outUncond = backend.empty(scope, DType.F32, shape);
            }
            model.predictGuided(xIn, levels, condition, uncondition, outCond, outUncond, workspace);
            modelCalls += 2;
            requireFinite("unconditional", outUncond, level);
        } else {
            model.predict(xIn, levels, condition, outCond, workspace);
            modelCalls++;
        }
        requireFinite(guidance.isGuided() ? "conditional" : "", outCond, level);
        evalInput = xIn;
        evalLevel = level;
    }

    /**
     * One fused pass {@code out = u.x·x + u.xIn·xIn + u.pred·P + u.history·H + u.noise·z} (class notes), with the
     * outputs of the last {@link #evaluate}; when {@code saveHistory}, {@code P} is kept as the history for later
     * updates.
     *
     * @param out output (may be {@code x})
     * @throws IllegalStateException    when nothing was evaluated, the history is read before it was saved (or
     *                                  was saved for another target), or noise is needed without seeds
     * @throws IllegalArgumentException when the conversion to {@code u.target} is undefined at the evaluated level
     *                                  (e.g. an {@code EPSILON} model at {@code α = 0})
     */
    public void update(Update u, Tensor x, Tensor out, boolean saveHistory) {
        if (evalInput == null) {
            throw new IllegalStateException("update before evaluate: call evaluate(xIn, level) first");
        }
        Objects.requireNonNull(x, "x");
        if (!Arrays.equals(shape, x.shape())) {
            throw new IllegalArgumentException("update: x " + x + " does not have the shape "
                    + Arrays.toString(shape) + " of the evaluated input " + evalInput);
        }
        int batch = ensureShape(x);
        PredictionConversion conv = PredictionConversion.of(prediction, u.target(), evalLevel.alpha(),
                evalLevel.sigma());
        double cx = u.x();
        double ci = u.xIn() + u.pred() * conv.a();
        if (sameMemory(evalInput, x)) {
            cx += ci;
            ci = 0;
        }
        Tensor hist = null;
        if (u.history() != 0) {
            if (historyTarget == null) {
                throw new IllegalStateException("the update reads the history but no earlier update saved one");
            }
            if (historyTarget != u.target()) {
                throw new IllegalStateException("the history holds " + historyTarget + " predictions, the update"
                        + " reads it as " + u.target());
            }
            hist = history;
        }
        Tensor histOut = null;
        if (saveHistory) {
            if (history == null) {
                history = backend.empty(scope, DType.F32, shape);
            }
            histOut = history;
        }
        NoiseSeeds s = u.noise() != 0 ? requireSeeds(batch) : seeds;
        FusedStep p = new FusedStep(filled(batch, cx), filled(batch, ci), filled(batch, u.pred() * conv.b()),
                filled(batch, u.history()), filled(batch, u.noise()), filled(batch, conv.a()),
                filled(batch, conv.b()), guidance.scale(), guidance.rescale(), s, u.draw());
        ops.samplerStep(p, x, evalInput, outCond, guidance.isGuided() ? outUncond : null, hist, out, histOut);
        if (saveHistory) {
            historyTarget = u.target();
        }
        if (checkFinite && !Double.isFinite(backend.globalNorm(java.util.List.of(out)))) {
            throw new IllegalStateException("the update after model call " + modelCalls + " at " + evalLevel
                    + " produced NaN or infinite values from finite model outputs (guidance scale "
                    + guidance.scale() + "; outputs near the float range overflow)");
        }
    }

    /**
     * Noise injection {@code x ← scale·x + noiseScale·z} with {@code z} of draw {@code draw} (Karras et al. 2022,
     * Algorithm 2, line 6).
     */
    public void addNoise(Tensor x, double scale, double noiseScale, long draw) {
        int batch = ensureShape(x);
        ops.scaleAddNoise(filled(batch, scale), filled(batch, noiseScale), requireSeeds(batch), draw, x, x);
    }

    /**
     * Scratch buffer {@code slot} (0–3) of {@code like}'s shape, owned by this context: workspace for
     * {@link Sampler} implementations (the built-in two-stage samplers use slot 0), not a place to sample into.
     */
    public Tensor scratch(int slot, Tensor like) {
        ensureShape(like);
        Objects.checkIndex(slot, scratch.length);
        if (scratch[slot] == null) {
            scratch[slot] = backend.empty(scope, DType.F32, shape);
        }
        return scratch[slot];
    }

    /**
     * Frees every buffer; closes the fused ops if this context created them. Idempotent.
     *
     * @throws IllegalStateException changing nothing (a later {@code close()} frees everything) while a model call
     *                               of a sampling run on another thread, or the calling model itself, holds the
     *                               workspace
     */
    @Override
    public void close() {
        if (!closed) {
            try {
                workspace.close();                      // the one that can refuse: first, so that nothing leaks
            } catch (IllegalStateException e) {
                throw new IllegalStateException("SamplerContext is in use (a model call holds its workspace); close "
                        + "it after the sampling run returns", e);
            }
            scope.close();                              // refuses, changing nothing, while an op uses its tensors
            if (ownsOps) {
                ops.close();
            }
            closed = true;
        }
    }

    // ---------------------------------------------------------------- helpers

    private int ensureShape(Tensor x) {
        checkOpen();
        Objects.requireNonNull(x, "x");
        if (x.rank() < 1 || x.shape(0) < 1) {
            throw new IllegalArgumentException("x " + x + " needs a leading batch dim [B, ...] with B >= 1");
        }
        if (!Arrays.equals(shape, x.shape())) {
            scope.close();
            scope = TensorScope.open();
            shape = x.shape();
            outCond = null;
            outUncond = null;
            history = null;
            historyTarget = null;
            Arrays.fill(scratch, null);
            tBuffer = null;
            sigmaVeBuffer = null;
            evalInput = null;
        }
        return (int) shape[0];
    }

    private void requireFinite(String which, Tensor out, Level level) {
        if (checkFinite && !Double.isFinite(backend.globalNorm(java.util.List.of(out)))) {
            throw new IllegalStateException("the model's " + (which.isEmpty() ? "" : which + " ") + "output at "
                    + level + " (model call " + modelCalls + ") holds NaN or infinite values");
        }
    }

    private Tensor tBuffer(int batch) {
        if (tBuffer == null) {
            tBuffer = backend.empty(scope, DType.F32, batch);
        }
        return tBuffer;
    }

    private Tensor sigmaVeBuffer(int batch) {
        if (sigmaVeBuffer == null) {
            sigmaVeBuffer = backend.empty(scope, DType.F32, batch);
        }
        return sigmaVeBuffer;
    }

    private NoiseSeeds requireSeeds(int batch) {
        if (seeds == null) {
            throw new IllegalStateException("this sampler needs noise: give the context NoiseSeeds "
                    + "(builder.noise(NoiseSeeds.batch(seed, stream, firstSampleId, batch)))");
        }
        return seeds.requireSize(batch);
    }

    private static boolean sameMemory(Tensor a, Tensor b) {
        return a == b || (a.device().equals(b.device()) && a.sameShape(b) && a.address() == b.address());
    }

    private static double[] filled(int n, double v) {
        double[] a = new double[n];
        Arrays.fill(a, v);
        return a;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("sampler context is closed");
        }
    }
}
