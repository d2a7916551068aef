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
 * coefficients on the host in {@code double}. A step ends with {@link #afterStep}. Not thread-safe: one sampling
 * run at a time.
 *
 * <h2>Image-to-image and inpainting</h2>
 * <pre>{@code
 * SamplingGrid tail = grid.forStrength(0.6);          // SDEdit: the last 60 % of the steps
 * ctx.initialNoise(x, tail, init);                    // x = α·init + σ·z at the tail's first level
 * ctx.sample(sampler, x, tail);
 * }</pre>
 * and a context built with {@link Builder#inpaint}{@code (known, mask)} keeps the known region at every level.
 */
public final class SamplerContext implements AutoCloseable {

    /** Told of each step of a sampling run ({@link Builder#onStep}). */
    @FunctionalInterface
    public interface StepListener {
        /**
         * @param level the level just reached, {@code 1 … grid.steps()} (RePaint also reports the levels it jumps
         *              back to, except level 0)
         * @param grid  the grid being walked
         * @param x     the state at that level: read it (e.g. {@code toFloatArray}), do not keep or modify it
         */
        void onStep(int level, SamplingGrid grid, Tensor x);
    }

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

        /**
         * Validates the coefficients.
         *
         * @throws NullPointerException     for a null {@code target}
         * @throws IllegalArgumentException when a coefficient is NaN or infinite, listing all five
         */
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
    /** The model calls' temporaries (reused by every call; freed at {@link #close()} unless the caller's). */
    private final Workspace workspace;
    private final boolean ownsWorkspace;
    private long[] shape;
    private Tensor outCond;
    private Tensor outUncond;
    private Tensor history;
    private Prediction historyTarget;
    private final Tensor[] scratch = new Tensor[4];
    private Tensor tBuffer;
    private Tensor sigmaVeBuffer;

    private final boolean checkFinite;
    /** Inpainting: the known data, the mask (1 = generate), and per run {@code 1 − mask} and a temporary. */
    private final Tensor known;
    private final Tensor mask;
    private Tensor keep;
    private Tensor replacement;
    private final StepListener stepListener;
    /** The last grid level of the current run: 0 at its start, then each level {@link #afterStep} was told of. */
    private int reached = -1;
    private Tensor evalInput;
    private Level evalLevel;
    private final Thresholding thresholding;
    /** The thresholded guided prediction of the last evaluation (with thresholding), in SAMPLE form. */
    private Tensor denoised;
    private long modelCalls;
    private volatile boolean closed;
    /** Set while {@link #sample} runs: a second run or {@link #close()} meanwhile is refused. */
    private final java.util.concurrent.atomic.AtomicBoolean running = new java.util.concurrent.atomic.AtomicBoolean();
    /** The thread inside {@link #sample}, or null: the samplers' bodies run only there (see {@link #sampling}). */
    private volatile Thread runner;

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
        this.known = b.known;
        this.mask = b.mask;
        this.stepListener = b.stepListener;
        this.thresholding = b.thresholding;
        this.ownsWorkspace = b.workspace == null;
        this.workspace = b.workspace == null ? Workspace.create() : b.workspace;
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
        private Tensor known;
        private Tensor mask;
        private StepListener stepListener;
        private Workspace workspace;
        private Thresholding thresholding;

        private Builder(Backend backend, Denoiser model, Prediction prediction) {
            this.backend = Objects.requireNonNull(backend, "backend");
            this.model = Objects.requireNonNull(model, "model");
            this.prediction = Objects.requireNonNull(prediction, "prediction");
        }

        /**
         * The fused ops to use (default {@link DiffusionOps#forBackend}; not closed by the context).
         *
         * @throws NullPointerException     for null {@code ops}
         * @throws IllegalArgumentException when {@code ops} run on another backend than the context
         */
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

        /**
         * Inpainting by replacement: after every step, where {@code mask} is 0 the state is replaced by the known
         * data noised to the level reached, {@code x ← m·x + (1 − m)·(α·known + σ·z)}, with fresh noise {@code z} of
         * draw {@link NoiseSeeds#DRAW_INPAINT}{@code  + level} (Song et al. 2021, "Score-Based Generative Modeling
         * through Stochastic Differential Equations", App. I.2, imputation; Lugmayr et al. 2022, "RePaint", eq. 8
         * without its resampling). The last level of a grid to clean data gives exactly {@code known} where
         * {@code m = 0}. Values of {@code m} between 0 and 1 blend. The replacement conditions the model only
         * through the state, so the generated region follows the known one best with stochastic samplers and many
         * steps; it needs the noise seeds, and samplers that call {@link #afterStep} (all of {@link Samplers} do).
         * The two tensors are read at every step, not copied: keep them unchanged and open while sampling.
         *
         * @param known {@code [B, ...]} F32 contiguous, the shape of the sampled {@code x}: the data to keep (any
         *              finite values where {@code m = 1})
         * @param mask  {@code [B, ...]} F32 contiguous, same shape, values in {@code [0, 1]}: 1 = generate,
         *              0 = keep (diffusers' convention: white is repainted); checked when sampling starts
         */
        public Builder inpaint(Tensor known, Tensor mask) {
            this.known = Objects.requireNonNull(known, "known");
            this.mask = Objects.requireNonNull(mask, "mask");
            return this;
        }

        /**
         * Calls {@code listener} after every step of a sampling run, with the state just reached (after inpainting's
         * replacement): for progress display, previews of intermediate states, or stopping a run (by interrupting
         * the thread). Not called for the starting state.
         */
        public Builder onStep(StepListener listener) {
            this.stepListener = listener;
            return this;
        }

        /**
         * Takes the model calls' temporaries from {@code workspace} (the caller's: not closed by the context) instead
         * of the context's own, e.g. one workspace for the contexts of every batch of a long sampling job, so that
         * only the first batch allocates (and zero-fills) them. One context at a time may use it: a model call
         * while another context's call holds it throws {@link IllegalStateException}.
         */
        public Builder workspace(Workspace workspace) {
            this.workspace = Objects.requireNonNull(workspace, "workspace");
            return this;
        }

        /**
         * Thresholds the denoised prediction {@code D} at every evaluation before the update uses it (see
         * {@link Thresholding}; null, the default: none). Costs one extra pass over the outputs and, on a GPU, a copy
         * of {@code D} to the host and back per evaluation.
         */
        public Builder thresholding(Thresholding thresholding) {
            this.thresholding = thresholding;
            return this;
        }

        /**
         * The context. Builds without checking the settings against each other: the noise seeds' batch size, the
         * inpainting tensors' shapes and the condition are checked against {@code x} only when it is known, by
         * {@link #initialNoise}, {@link #sample} and {@link #evaluate}, which then throw.
         */
        public SamplerContext build() {
            return new SamplerContext(this);
        }
    }

    // ---------------------------------------------------------------- for users

    /**
     * Runs {@code sampler} over {@code grid}, updating {@code x} in place. The sampler's own exceptions (e.g. an
     * {@link IllegalArgumentException} for a grid or prediction type it cannot use) pass through.
     *
     * @param sampler the algorithm ({@link Samplers})
     * @param x       {@code [B, ...]} F32 contiguous, on this context's backend: the state at {@code grid.first()}
     *                in (e.g. from {@link #initialNoise}), at {@code grid.last()} out
     * @param grid    the levels, noisiest first
     * @throws NullPointerException     for a null {@code x} or {@code grid}
     * @throws IllegalArgumentException when {@code x} is (or overlaps) one of this context's own buffers (its model
     *                                  outputs, history or {@link #scratch} slots, which samplers overwrite)
     * @throws java.util.concurrent.CancellationException when the calling thread is interrupted (before a model
     *                                  call; {@code x} then holds a partly sampled state)
     * @throws IllegalStateException    when this context is closed or already sampling (one run at a time), or,
     *                                  with inpainting or a step listener, when the sampler did not report its last
     *                                  level
     */
    public void sample(Sampler sampler, Tensor x, SamplingGrid grid) {
        checkOpen();
        Objects.requireNonNull(x, "x");
        for (Tensor own : new Tensor[] {outCond, outUncond, denoised, history, scratch[0], scratch[1], scratch[2], scratch[3]}) {
            if (own != null && own.device().equals(x.device()) && Shape.overlaps(own, x)) {
                throw new IllegalArgumentException("x " + x + " is a buffer of this SamplerContext (model output,"
                        + " history or scratch slot), which the sampler overwrites; sample into your own tensor");
            }
        }
        Objects.requireNonNull(grid, "grid");
        if (!running.compareAndSet(false, true)) {
            throw new IllegalStateException("this SamplerContext is already sampling (another thread's run, or the "
                    + "model calling back into it), or closing; it serves one run at a time");
        }
        try {
            runner = Thread.currentThread();
            checkOpen();                                 // close() may have finished between the check above and here
            historyTarget = null;
            evalInput = null;
            reached = 0;
            if (known != null) {
                prepareInpainting(x);
                replace(x, grid, 0, 0);              // the known region at the first level, whatever x held there
            }
            sampler.sample(this, x, grid);
        } finally {
            runner = null;
            running.set(false);
        }
        if ((known != null || stepListener != null) && reached != grid.size() - 1) {
            throw new IllegalStateException((known != null ? "inpainting" : "a step listener") + " needs a sampler "
                    + "that calls afterStep(x, grid, level) after each step; " + sampler + " last reported level "
                    + reached + " of " + (grid.size() - 1) + (known != null ? ", so the known region was not kept"
                    : ""));
        }
    }

    /**
     * True on the thread that is inside {@link #sample} of this context. The public bodies of {@link Samplers}
     * called directly (not from a {@link Sampler} that {@code sample} runs) go through {@code sample} themselves, so
     * that they too run one at a time, refuse this context's own buffers as {@code x} and keep the known region of
     * an inpainting run.
     */
    boolean sampling() {
        return runner == Thread.currentThread();
    }

    /**
     * Tells the context that {@code x} has reached level {@code level} of {@code grid} (every {@link Sampler} calls
     * this after each step, with {@code level = i + 1} after step {@code i}). With inpainting
     * ({@link Builder#inpaint}) this replaces the known region, {@code x ← m·x + (1 − m)·(α·known + σ·z)} at that
     * level; otherwise it only records the level.
     *
     * @throws IndexOutOfBoundsException for a level outside {@code grid}
     * @throws IllegalArgumentException for an {@code x} of another shape
     * @throws IllegalStateException    during {@link #sample}, for a level that is not the next one (levels are
     *                                  reported in order; a pass {@code > 0} may go back)
     */
    public void afterStep(Tensor x, SamplingGrid grid, int level) {
        afterStep(x, grid, level, 0);
    }

    /**
     * {@link #afterStep(Tensor, SamplingGrid, int)} for samplers that visit a level more than once (RePaint's
     * resampling): pass {@code p} replaces with draw {@code DRAW_INPAINT + level + p·grid.size()}, fresh noise on every
     * visit.
     *
     * @param pass the visit, {@code ≥ 0} (0: the first)
     */
    public void afterStep(Tensor x, SamplingGrid grid, int level, int pass) {
        checkOpen();
        Objects.requireNonNull(x, "x");
        Objects.checkIndex(level, grid.size());
        if (pass < 0) {
            throw new IllegalArgumentException("pass must be >= 0, got " + pass);
        }
        if (shape != null && !Arrays.equals(shape, x.shape())) {
            throw new IllegalArgumentException("afterStep: x " + x + " does not have the shape "
                    + Arrays.toString(shape) + " of the states of this run");
        }
        if (running.get() && level != reached + 1 && !(pass > 0 && level <= reached)) {
            throw new IllegalStateException("afterStep(level " + level + ", pass " + pass + ") after level " + reached
                    + ": a sampler reports every level in order (a later pass may go back, as RePaint's jumps do)");
        }
        reached = level;
        if (known != null) {
            replace(x, grid, level, pass);
        }
        if (stepListener != null && level > 0) {
            stepListener.onStep(level, grid, x);
        }
    }

    /** Inpainting's replacement at {@code level} (pass {@code pass}): {@code x ← m·x + (1 − m)·(α·known + σ·z)}. */
    private void replace(Tensor x, SamplingGrid grid, int level, int pass) {
        int batch = ensureShape(x);
        if (keep == null) {
            prepareInpainting(x);
        }
        Level l = grid.level(level);
        ops.scaleAddNoise(filled(batch, l.alpha()), filled(batch, l.sigma()), requireSeeds(batch),
                NoiseSeeds.DRAW_INPAINT + level + (long) pass * grid.size(), known, replacement);   // α·known + σ·z
        backend.binary(org.diffusion4j.tensor.Ops.Binary.MUL, keep, replacement, replacement);
        backend.fma(mask, x, replacement, x);                                   // exact where m is 0 or 1
    }

    /** Checks the inpainting tensors against {@code x} and computes {@code 1 − m} once per run. */
    private void prepareInpainting(Tensor x) {
        int batch = ensureShape(x);
        requireSeeds(batch);
        DiffusionOps.checkTensor(backend, "inpainting known data", known, x, false);
        DiffusionOps.checkTensor(backend, "inpainting mask", mask, x, false);
        for (Tensor t : new Tensor[] {known, mask}) {
            if (Shape.overlaps(t, x)) {
                throw new IllegalArgumentException("the inpainting " + (t == known ? "known data " : "mask ") + t
                        + " overlaps x " + x + ", which the sampler overwrites");
            }
        }
        float[] m = mask.toFloatArray();
        for (int i = 0; i < m.length; i++) {
            if (!(m[i] >= 0 && m[i] <= 1)) {
                throw new IllegalArgumentException("inpainting mask values must be in [0, 1] (1 = generate, 0 = keep),"
                        + " got " + m[i] + " at flat index " + i);
            }
        }
        if (!Double.isFinite(backend.globalNorm(java.util.List.of(known)))) {
            throw new IllegalArgumentException("the inpainting known data " + known + " holds NaN or infinite values"
                    + " (put any finite value, e.g. 0, where the mask is 1)");
        }
        if (keep == null) {
            keep = backend.empty(scope, DType.F32, shape);
            replacement = backend.empty(scope, DType.F32, shape);
        }
        backend.scaleShift(mask, -1f, 1f, keep);                                // 1 − m, exact for 0 and 1
    }

    /**
     * Writes the initial noise {@code x = σ_0·z} of {@code grid.first()} (k-diffusion's {@code randn·σ_max} in
     * {@code x_t} form; for VP schedules {@code σ_0 ≈ 1}), {@code z} from draw 0 of the noise seeds.
     *
     * @param x    {@code [B, ...]} F32 contiguous, on this context's backend; overwritten
     * @param grid the grid whose first level gives {@code σ_0}
     * @throws NullPointerException     for a null argument
     * @throws IllegalArgumentException when {@code x} has no batch dimension ({@code [B, ...]}, {@code B ≥ 1}) or
     *                                  the noise seeds hold another number of samples than {@code B}
     * @throws IllegalStateException    when no noise seeds were given, or the context is closed
     */
    public void initialNoise(Tensor x, SamplingGrid grid) {
        int batch = ensureShape(x);
        double[] zero = new double[batch];
        double[] s = filled(batch, grid.first().sigma());
        ops.scaleAddNoise(zero, s, requireSeeds(batch), NoiseSeeds.DRAW_INITIAL, x, x);
    }

    /**
     * Writes the noised input {@code x = α_0·init + σ_0·z} of {@code grid.first()}, {@code z} from draw 0 of the noise
     * seeds (the noise {@link #initialNoise(Tensor, SamplingGrid)} uses): the start of image-to-image sampling
     * (SDEdit, Meng et al. 2022, Algorithm 1) on a grid shortened with {@link SamplingGrid#forStrength}. At a first
     * level with {@code α_0 = 0} (strength 1 on a grid from pure noise) this is exactly {@code initialNoise}.
     *
     * @param x    {@code [B, ...]} F32 contiguous, on this context's backend; overwritten
     * @param grid the (shortened) grid whose first level gives {@code α_0, σ_0}
     * @param init {@code [B, ...]} F32 contiguous, the shape of {@code x}: the input in the model's data space
     *             (e.g. images scaled to {@code [-1, 1]}); not modified
     * @throws NullPointerException     for a null argument
     * @throws IllegalArgumentException when {@code init} has another shape or dtype, is not on this backend,
     *                                  overlaps {@code x} or holds NaN or infinite values; when {@code x} has no batch
     *                                  dimension or the noise seeds hold another number of samples than {@code B}
     * @throws IllegalStateException    when no noise seeds were given, or the context is closed
     */
    public void initialNoise(Tensor x, SamplingGrid grid, Tensor init) {
        int batch = ensureShape(x);
        DiffusionOps.checkTensor(backend, "init", init, x, false);
        if (Shape.overlaps(init, x)) {
            throw new IllegalArgumentException("init " + init + " overlaps x " + x + "; give the input its own tensor");
        }
        if (!Double.isFinite(backend.globalNorm(java.util.List.of(init)))) {
            throw new IllegalArgumentException("init " + init + " holds NaN or infinite values");
        }
        ops.scaleAddNoise(filled(batch, grid.first().alpha()), filled(batch, grid.first().sigma()),
                requireSeeds(batch), NoiseSeeds.DRAW_INITIAL, init, x);
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
     * into this context's output buffers. The next {@link #update} uses these outputs. An {@code xIn} of another
     * shape than the last one frees every buffer handed out before (see {@link #scratch}).
     *
     * @param xIn   {@code [B, ...]} F32 contiguous, on this context's backend: the state the model sees; not modified
     * @param level its noise level (the model is given {@code level.t()} and {@code level.sigmaVe()} per sample)
     * @throws java.util.concurrent.CancellationException when the calling thread is interrupted (checked before
     *                                                    each evaluation, so an interrupt stops a sampling run within
     *                                                    one step; the interrupt status stays set)
     * @throws NullPointerException                       for a null argument
     * @throws IllegalArgumentException                   when {@code xIn} has no batch dimension ({@code B ≥ 1}), or
     *                                                    the model refuses its inputs (shape, condition)
     * @throws IllegalStateException                      when the context is closed, or, with
     *                                                    {@link Builder#checkFinite}, when a model output holds NaN
     *                                                    or infinite values (naming the call and level)
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
        if (thresholding != null) {
            threshold(xIn, level, batch);
        }
    }

    /**
     * {@code denoised ← threshold(D)}, {@code D} the guided prediction in SAMPLE form (one fused pass), thresholded
     * on the host per sample.
     */
    private void threshold(Tensor xIn, Level level, int batch) {
        PredictionConversion conv = PredictionConversion.of(prediction, Prediction.SAMPLE, level.alpha(),
                level.sigma());
        if (denoised == null) {
            denoised = backend.empty(scope, DType.F32, shape);
        }
        FusedStep p = new FusedStep(filled(batch, 0), filled(batch, conv.a()), filled(batch, conv.b()),
                filled(batch, 0), filled(batch, 0), filled(batch, conv.a()), filled(batch, conv.b()),
                guidance.scale(), guidance.rescale(), null, 0);
        ops.samplerStep(p, xIn, xIn, outCond, guidance.isGuided() ? outUncond : null, null, denoised, null);
        float[] d = denoised.toFloatArray();
        thresholding.apply(d, batch, d.length / batch);
        denoised.copyFrom(d);
    }

    /**
     * One fused pass {@code out = u.x·x + u.xIn·xIn + u.pred·P + u.history·H + u.noise·z} (class notes), with the
     * outputs of the last {@link #evaluate}; when {@code saveHistory}, {@code P} is kept as the history for later
     * updates.
     *
     * @param u           the coefficients
     * @param x           {@code [B, ...]} F32 contiguous, the shape of the last evaluated input: the current state
     * @param out         {@code [B, ...]} F32 contiguous, the same shape: the result (may be {@code x})
     * @param saveHistory whether to keep {@code P} (converted to {@code u.target()}) as the history
     * @throws NullPointerException     for a null {@code x}
     * @throws IllegalStateException    when nothing was evaluated, the history is read before it was saved (or
     *                                  was saved for another target), noise is needed without seeds, or, with
     *                                  {@link Builder#checkFinite}, the result holds NaN or infinite values
     * @throws IllegalArgumentException when the conversion to {@code u.target} is undefined at the evaluated level
     *                                  (e.g. an {@code EPSILON} model at {@code α = 0}), {@code x} or {@code out}
     *                                  has another shape, or the noise seeds hold another number of samples
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
        boolean th = thresholding != null;                  // then the model's outputs are replaced by D
        PredictionConversion conv = PredictionConversion.of(th ? Prediction.SAMPLE : prediction, u.target(),
                evalLevel.alpha(), evalLevel.sigma());
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
        ops.samplerStep(p, x, evalInput, th ? denoised : outCond, guidance.isGuided() && !th ? outUncond : null, hist,
                out, histOut);
        if (saveHistory) {
            historyTarget = u.target();
        }
        requireFiniteState(out);
    }

    /**
     * With {@link Builder#checkFinite}, throws when {@code state} (an updated state, e.g. after a sampler's own extra
     * pass) holds NaN or infinite values; otherwise nothing.
     *
     * @throws IllegalStateException naming the last model call and level
     */
    void requireFiniteState(Tensor state) {
        if (checkFinite && !Double.isFinite(backend.globalNorm(java.util.List.of(state)))) {
            throw new IllegalStateException("the update after model call " + modelCalls + " at " + evalLevel
                    + " produced NaN or infinite values from finite model outputs (guidance scale "
                    + guidance.scale() + "; outputs near the float range overflow)");
        }
    }

    /**
     * Noise injection {@code x ← scale·x + noiseScale·z} with {@code z} of draw {@code draw} (Karras et al. 2022,
     * Algorithm 2, line 6).
     *
     * @param x          {@code [B, ...]} F32 contiguous, on this context's backend; updated in place
     * @param scale      factor of {@code x}, finite in float32
     * @param noiseScale factor of {@code z}, finite in float32
     * @param draw       the {@link NoiseSeeds} draw index of {@code z} (0 is the initial noise; the built-in
     *                   samplers use {@code i + 1} for step {@code i})
     * @throws NullPointerException     for a null {@code x}
     * @throws IllegalArgumentException when {@code x} has no batch dimension, a factor is not finite in float32, or
     *                                  the noise seeds hold another number of samples than {@code B}
     * @throws IllegalStateException    when no noise seeds were given, or the context is closed
     */
    public void addNoise(Tensor x, double scale, double noiseScale, long draw) {
        int batch = ensureShape(x);
        ops.scaleAddNoise(filled(batch, scale), filled(batch, noiseScale), requireSeeds(batch), draw, x, x);
    }

    /**
     * The history saved by the last {@link #update} with {@code saveHistory} (for samplers that keep older ones, e.g.
     * by copying it to a {@link #scratch} slot before the next update overwrites it).
     *
     * @throws IllegalStateException when no update saved one yet
     */
    public Tensor history() {
        if (historyTarget == null) {
            throw new IllegalStateException("no history saved yet");
        }
        return history;
    }

    /**
     * Scratch buffer {@code slot} (0–3) of {@code like}'s shape, F32, owned by this context: workspace for
     * {@link Sampler} implementations, not a place to sample into. The built-in samplers use slot 0 (Heun, flow
     * midpoint, DPM-Solver++(3M)), slot 1 (DPM-Solver++(3M)) and slots 0, 2 and 3 (UniPC); a custom sampler that
     * calls one of them must not keep its own data in those slots across the call.
     *
     * <p>A {@code like} of another shape than the context's current one (that of the last {@code x} given to
     * {@code evaluate}, {@code update}, {@code initialNoise}, {@code addNoise} or {@code scratch}) frees every
     * buffer handed out before — the model outputs, the history and all four slots — and starts afresh at the new
     * shape: tensors obtained earlier must not be used after that.
     *
     * @param slot 0, 1, 2 or 3
     * @param like a tensor of the wanted shape ({@code [B, ...]}); not read
     * @return the slot's buffer, contents undefined on first use
     * @throws IndexOutOfBoundsException for a slot outside {@code [0, 3]}
     * @throws IllegalArgumentException  when {@code like} has no batch dimension
     * @throws IllegalStateException     when the context is closed
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
     * @throws IllegalStateException changing nothing (a later {@code close()} frees everything) while a sampling run
     *                               ({@link #sample}) is in progress on another thread or calls it from inside (the
     *                               model), or a model call holds the workspace
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        if (!running.compareAndSet(false, true)) {       // held while closing: no run starts meanwhile
            throw new IllegalStateException("SamplerContext is in use (a sampling run on another thread, or the "
                    + "model calling close() from inside it); close it after the run returns");
        }
        try {
            closeUnlessClosed();
        } finally {
            running.set(false);
        }
    }

    private void closeUnlessClosed() {
        if (!closed) {
            try {
                if (ownsWorkspace) {
                    workspace.close();                  // the one that can refuse: first, so that nothing leaks
                }
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
            denoised = null;
            history = null;
            historyTarget = null;
            Arrays.fill(scratch, null);
            tBuffer = null;
            sigmaVeBuffer = null;
            evalInput = null;
            keep = null;
            replacement = null;
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
