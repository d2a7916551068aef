package org.diffusion4j.training;

import org.diffusion4j.io.Dataset;
import org.diffusion4j.nn.ClassEmbedder;
import org.diffusion4j.nn.DenoiserModel;
import org.diffusion4j.nn.Embedding;
import org.diffusion4j.nn.Module;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.Parameter;
import org.diffusion4j.optim.AdamW;
import org.diffusion4j.optim.Ema;
import org.diffusion4j.optim.GradClip;
import org.diffusion4j.optim.LrSchedule;
import org.diffusion4j.random.Philox;
import org.diffusion4j.sampling.DiffusionOps;
import org.diffusion4j.sampling.NoiseSeeds;
import org.diffusion4j.schedule.NoiseSchedule;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.diffusion4j.tensor.Workspace;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Trains a {@link DenoiserModel} on a {@link Dataset} by denoising score matching (Vincent 2011, "A connection
 * between score matching and denoising autoencoders"; in its ε-prediction form Ho et al. 2020, Algorithm 1) or flow
 * matching (Lipman et al. 2023, eq. 23 with {@code σ_min = 0}: the rectified-flow path of Liu et al. 2022), with
 * explicit forward and backward passes. One {@link #step()}:
 * <pre>
 *   x0, y   = batch k of the data                              [B, ...]   (BatchSource: Philox permutation per epoch)
 *   y       = y with label dropout to the null class           [B]        (conditional models only)
 *   t, ε    = Philox draws of the batch's global sample ids k·B … k·B+B−1
 *   x_t, u  = α_t x0 + σ_t ε,  c_t x0 + d_t ε                             (ForwardNoising, one fused pass)
 *   out     = model(x_t, t, y)                                 [B, ...]
 *   L       = (1/B) Σ_b w_b · (1/n) Σ_j (out − u)²                         (w: loss weight, n = numel/B)
 *   ∂L/∂out = 2 w_b (out − u) / (B n)                                      (DenoisingLoss)
 *   grads   = model.backward(∂L/∂out)
 *             (with TrainingConfig.microBatch m: out, L and ∂L/∂out per slice of m samples, ∂L/∂out scaled by m/B,
 *              the slices' gradients accumulated; the batch, noise and times are the same)
 *   N       = ‖grads‖₂ (global, float64);  f = min(1, maxNorm/(N + 1e-6))  (Pascanu et al. 2013; f = 1 unclipped)
 *   AdamW step at lr(k) on f·grads                                         (Loshchilov &amp; Hutter 2019)
 *   EMA update                                                             (warm-up decay 1 − (1 + n/γ)^(−p))
 * </pre>
 * with every tensor of the step in a {@link TensorScope} closed at the end of the step, its host memory taken from one
 * {@link Workspace} reused by every step (native memory does not grow with the number of steps; the parameters,
 * AdamW moments and EMA averages are the only long-lived tensors).
 *
 * <p><b>Determinism.</b> Every random draw is a Philox counter keyed by the config's {@code seed}: the batch order
 * uses streams {@code 0, 1, 2, …} (one per epoch, {@link Dataset#batches}); noise, times and label dropout use
 * streams {@link #NOISE_STREAM} {@code + 0, 1, 3} (offset noise {@code + 2}, horizontal flips {@code + 4}) at the
 * sample's global id {@code k·B + b} (noise element
 * {@code j} at {@code id·n + j}, {@link NoiseSeeds}). So step {@code k} depends only on {@code (seed, k)} and the
 * state, a run is bitwise reproducible on the CPU for a fixed thread count, and a run resumed from a checkpoint at
 * step {@code k} ({@link Checkpoint}) continues bit-exactly.
 *
 * <p><b>Weight decay</b> (decoupled, AdamW's {@code λ}) applies only to weight matrices: parameters of rank
 * {@code ≥ 2} that are neither embedding tables ({@link Embedding}, {@link ClassEmbedder}) nor a position embedding
 * ({@code pos_embed}); biases and norm scales/shifts are not decayed. This is the common choice for transformers
 * (e.g. minGPT's {@code configure_optimizers}; Loshchilov &amp; Hutter decay every weight, which the config can
 * approximate with {@code weightDecay = 0}).
 *
 * <p>A diverging step (a non-finite loss or gradient norm) throws {@link IllegalStateException} naming the step
 * before the optimizer touches the weights. Not thread-safe.
 */
public final class Trainer implements AutoCloseable {

    /**
     * First Philox stream of the per-sample draws: noise {@code +0}, time {@code +1}, offset noise {@code +2}
     * ({@link NoiseSeeds#DRAW_OFFSET}), label dropout {@code +3} ({@link #DRAW_LABEL_DROP}), horizontal flips
     * {@code +4} ({@link #DRAW_FLIP}).
     */
    public static final long NOISE_STREAM = 1L << 62;

    /** Stream offset of the label-dropout uniforms (after NoiseSeeds' draws 0..2). */
    public static final long DRAW_LABEL_DROP = 3;
    /** Stream offset of the horizontal-flip draws ({@link TrainingConfig#randomFlip()}). */
    public static final long DRAW_FLIP = 4;
    /**
     * First Philox stream of {@link #heldOutLoss}'s per-sample draws (noise and time, keyed by the sample's index in
     * the held-out set), far from the training draws.
     */
    public static final long HELD_OUT_STREAM = NOISE_STREAM + (1L << 40);

    private final DenoiserModel model;
    private final NnOps ops;
    private final Backend backend;
    private final DiffusionOps diffusionOps;
    private final Dataset data;
    private final TrainingConfig config;
    private final BatchSource batches;
    private final NoiseSchedule schedule;
    private final TimeSampler timeSampler;
    private final ForwardNoising noising;
    private final LrSchedule lrSchedule;
    private final Map<String, Parameter> params;
    private final List<Parameter> paramList;
    private final Set<String> decayed;
    private final AdamW optimizer;
    private final Ema ema;
    private final List<TrainingListener> listeners = new CopyOnWriteArrayList<>();
    /** Host memory of the step scopes, reused from step to step (no zero-filling or fresh pages per step). */
    private final Workspace workspace = Workspace.create();
    /** The temporaries of one micro-batch ({@link TrainingConfig#microBatch}), reused by every pass. */
    private final Workspace microWorkspace = Workspace.create();
    /** The temporaries of {@link #heldOutLoss}. */
    private final Workspace heldOutWorkspace = Workspace.create();
    private long completed;
    private boolean closed;
    /** Why the weights are inconsistent (a step failed during its update), or null; cleared by a restore. */
    private String broken;

    /**
     * A trainer at step 0 for {@code model} (whose current weights are the starting point) on {@code data}.
     *
     * @param ops the layer ops of the model's backend (AdamW runs through them)
     * @throws IllegalArgumentException when the data's sample shape differs from the model's, a conditional model
     *                                  gets unlabelled data or more classes than it has, or the model's parameters
     *                                  are not on {@code ops}' backend
     */
    public Trainer(DenoiserModel model, NnOps ops, Dataset data, TrainingConfig config) {
        this.model = Objects.requireNonNull(model, "model");
        this.ops = Objects.requireNonNull(ops, "ops");
        this.data = Objects.requireNonNull(data, "data");
        this.config = Objects.requireNonNull(config, "config");
        this.backend = ops.backend();
        if (!Arrays.equals(data.sampleShape(), model.sampleShape())) {
            throw new IllegalArgumentException("dataset samples are " + Arrays.toString(data.sampleShape())
                    + " but the model takes " + Arrays.toString(model.sampleShape()));
        }
        if (model.numClasses() > 0) {
            if (!data.hasLabels()) {
                throw new IllegalArgumentException("the model is class-conditional (" + model.numClasses()
                        + " classes) but the dataset has no labels");
            }
            if (data.numClasses() > model.numClasses()) {
                throw new IllegalArgumentException("the dataset has " + data.numClasses()
                        + " classes, the model only " + model.numClasses());
            }
        }
        if (config.randomFlip() && data.sampleShape().length < 2) {
            throw new IllegalArgumentException("horizontal flips need image samples (rank >= 2), the dataset's are "
                    + Arrays.toString(data.sampleShape()));
        }
        this.batches = new BatchSource(data, config.batchSize(), config.seed());
        this.schedule = config.buildNoiseSchedule();
        this.timeSampler = config.buildTimeSampler();
        this.noising = new ForwardNoising(config.objective().prediction()).withLossWeight(config.buildLossWeight());
        this.lrSchedule = config.buildLrSchedule();
        this.params = model.module().namedParameters();
        this.paramList = List.copyOf(params.values());
        this.decayed = decayedNames(model.module());
        DiffusionOps dops = null;
        AdamW opt = null;
        Ema e = null;
        try {
            dops = DiffusionOps.forBackend(backend);
            opt = new AdamW(ops, params, config.adamw(), decayed::contains);
            e = config.ema() == null ? null : new Ema(backend, params, config.ema());
        } catch (RuntimeException ex) {
            if (opt != null) {
                opt.close();
            }
            if (dops != null) {
                dops.close();
            }
            throw ex;
        }
        this.diffusionOps = dops;
        this.optimizer = opt;
        this.ema = e;
    }

    /**
     * The names of the parameters that get weight decay (see the class comment), in parameter order.
     */
    public static Set<String> decayedNames(Module root) {
        Set<String> out = new java.util.LinkedHashSet<>();
        collectDecayed(root, "", out);
        return out;
    }

    private static void collectDecayed(Module m, String prefix, Set<String> out) {
        boolean embedding = m instanceof Embedding || m instanceof ClassEmbedder;
        for (Map.Entry<String, Parameter> e : m.localParameters().entrySet()) {
            String name = e.getKey();
            if (!embedding && e.getValue().value().rank() >= 2 && !name.contains("pos_embed")) {
                out.add(prefix + name);
            }
        }
        for (Map.Entry<String, Module> c : m.children().entrySet()) {
            collectDecayed(c.getValue(), prefix + c.getKey() + ".", out);
        }
    }

    // ---------------------------------------------------------------- accessors

    /** The model being trained. */
    public DenoiserModel model() {
        return model;
    }

    /** The layer ops. */
    public NnOps ops() {
        return ops;
    }

    /** The training data. */
    public Dataset data() {
        return data;
    }

    /** The configuration. */
    public TrainingConfig config() {
        return config;
    }

    /** The optimizer (its moments and step counter are part of a checkpoint). */
    public AdamW optimizer() {
        return optimizer;
    }

    /** The EMA of the weights, or {@code null} when the config has none. */
    public Ema ema() {
        return ema;
    }

    /** The batch source. */
    public BatchSource batches() {
        return batches;
    }

    /** Steps completed so far; the next {@link #step()} has this index. */
    public long completedSteps() {
        return completed;
    }

    /**
     * Sets the step counter (used by {@link Checkpoint#restore} when resuming, after every tensor is loaded: the
     * trainer is then whole again).
     */
    void setCompletedSteps(long steps) {
        if (steps < 0) {
            throw new IllegalArgumentException("step count must be >= 0, got " + steps);
        }
        completed = steps;
        broken = null;
    }

    /** Marks the state inconsistent: {@link #requireIntact} refuses until a restore completes. */
    void markBroken(String why) {
        broken = Objects.requireNonNull(why, "why");
    }

    /** Adds a listener, called after every step. */
    public void addListener(TrainingListener listener) {
        listeners.add(Objects.requireNonNull(listener, "listener"));
    }

    /** Removes a listener. */
    public void removeListener(TrainingListener listener) {
        listeners.remove(listener);
    }

    // ---------------------------------------------------------------- training

    /**
     * Runs {@code steps} more steps. An interrupt of the calling thread ({@link Thread#interrupt()},
     * {@code Future.cancel(true)}) stops it between two steps: the trainer is then as after its last completed step,
     * and the thread's interrupt status stays set (clear it with {@link Thread#interrupted()} before saving or training
     * on from the same thread: interrupted file I/O fails).
     *
     * @return the last step's stats, or null when {@code steps == 0}
     * @throws IllegalArgumentException for {@code steps < 0}
     * @throws IllegalStateException    on divergence (see the class comment), after {@link #close()}, or while the
     *                                  trainer is broken (see {@link #step()})
     * @throws java.util.concurrent.CancellationException when the calling thread is interrupted, naming the steps
     *                                  completed
     * @throws ArithmeticException      when a sample id {@code k·B} overflows a {@code long} (beyond any real run)
     */
    public StepStats train(long steps) {
        if (steps < 0) {
            throw new IllegalArgumentException("steps must be >= 0, got " + steps);
        }
        StepStats last = null;
        for (long i = 0; i < steps; i++) {
            if (Thread.currentThread().isInterrupted()) {
                throw new java.util.concurrent.CancellationException("training interrupted after " + i + " of "
                        + steps + " steps (step " + completed + " in all; the trainer is consistent: clear the interrupt "
                        + "with Thread.interrupted(), then save it or train on)");
            }
            last = step();
        }
        return last;
    }

    /**
     * One training step (see the class comment), then the listeners.
     *
     * @throws IllegalStateException on divergence, after {@link #close()}, or while the trainer is broken: a step
     *                               that failed while updating the weights, or a restore that failed part-way, left
     *                               them half-updated, and only a successful {@link #restore} repairs that
     * @throws ArithmeticException   when a sample id {@code k·B} overflows a {@code long} (beyond any real run)
     */
    public StepStats step() {
        if (closed) {
            throw new IllegalStateException("trainer is closed");
        }
        requireIntact("train");
        long k = completed;
        boolean updating = false;
        long t0 = System.nanoTime();
        int batch = config.batchSize();
        double loss;
        double weighted;
        double norm;
        double factor;
        double lr = lrSchedule.lr(k);
        try (TensorScope scope = openOn(workspace, "a training step")) {
            Tensor x0 = backend.empty(scope, DType.F32, data.batchShape(batch));
            long firstId = Math.multiplyExact(k, (long) batch);
            BatchSource.Batch b = batches.load(k, x0, config.randomFlip() ? flips(firstId, batch) : null);
            NoiseSeeds seeds = NoiseSeeds.batch(config.seed(), NOISE_STREAM, firstId, batch);
            int[] labels = model.numClasses() > 0 ? dropLabels(b.labels(), firstId) : null;

            Tensor xt = backend.empty(scope, DType.F32, x0.shape());
            Tensor target = backend.empty(scope, DType.F32, x0.shape());
            ForwardNoising.Result r = noising.apply(diffusionOps, schedule, timeSampler, seeds, x0, xt, target, null,
                    null);

            model.module().zeroGrad();
            int passes = config.microBatches();
            if (passes == 1) {
                double[] v = forwardBackward(scope, k, xt, target, r.t(), labels, r.weights(), 1);
                loss = v[0];
                weighted = v[1];
            } else {
                // gradient accumulation: each micro-batch's gradient of its mean loss, scaled by 1/passes, adds up to
                // the gradient of the whole batch's mean loss; the batch, its noise and its times are those of one pass
                int m = config.microBatch();
                double lossSum = 0;
                double weightedSum = 0;
                for (int j = 0; j < passes; j++) {
                    int from = j * m;
                    try (TensorScope ms = TensorScope.open(microWorkspace)) {
                        double[] v = forwardBackward(ms, k, xt.slice(0, from, from + m),
                                target.slice(0, from, from + m), Arrays.copyOfRange(r.t(), from, from + m),
                                labels == null ? null : Arrays.copyOfRange(labels, from, from + m),
                                r.weights() == null ? null : Arrays.copyOfRange(r.weights(), from, from + m), passes);
                        lossSum += v[0];
                        weightedSum += v[1];
                    }
                }
                loss = lossSum / passes;
                weighted = weightedSum / passes;
            }

            norm = GradClip.globalNorm(backend, paramList);
            if (!Double.isFinite(norm)) {
                throw new IllegalStateException("training diverged at step " + k + ": gradient norm " + norm
                        + " (loss " + loss + "); a lower learning rate or gradient clipping may help");
            }
            factor = config.maxGradNorm() > 0 ? GradClip.clipFactor(norm, config.maxGradNorm()) : 1.0;
            updating = true;                            // from here a failure leaves the weights half-updated
            optimizer.step(lr, factor);
            if (ema != null) {
                ema.update();
            }
            backend.synchronize();
            updating = false;
        } catch (RuntimeException | Error e) {
            if (updating) {
                broken = "step " + k + " failed while updating the weights (" + e + "), leaving some of them, their "
                        + "AdamW moments or EMA averages updated and others not";
            }
            throw e;
        }
        completed = k + 1;
        double seconds = (System.nanoTime() - t0) / 1e9;
        StepStats stats = new StepStats(k, loss, weighted, norm, factor, lr, batch / seconds, seconds);
        for (TrainingListener listener : listeners) {
            listener.onStep(stats);
        }
        return stats;
    }

    /**
     * The denoising loss of the current weights (the trained ones, not the EMA averages) on held-out data: the mean
     * over the first {@code min(limit, N)} samples of {@code data} of the same per-sample loss as
     * {@link StepStats#loss()} (unweighted), each sample noised at a time and with noise fixed by the trainer's seed
     * and the sample's index ({@link #HELD_OUT_STREAM}), and a class-conditional model given each sample's own label
     * (no label dropout). Successive calls thus see the same noisy inputs, so the values trace the model's progress
     * on data it does not train on without the noise of fresh draws: a held-out loss that rises while the training
     * loss falls means the model is memorising its training set. Changes nothing in the trainer (weights, gradients,
     * optimizer, EMA, the position of its draws): training continues bit for bit as without the call.
     *
     * <p>Runs in batches of {@link TrainingConfig#batchSize()} samples, or of {@link TrainingConfig#microBatch()}
     * when training accumulates micro-batches (the same activation memory as a training pass).
     *
     * @param data  samples of the model's shape (labelled for a class-conditional model)
     * @param limit how many samples at most (the cost is that many forward passes)
     * @return the mean loss, float64
     * @throws IllegalArgumentException when the data's samples differ from the model's, are empty or unlabelled for a
     *                                  class-conditional model, hold a label outside the model's classes, or
     *                                  {@code limit < 1}
     * @throws IllegalStateException    when the trainer is closed, or the loss is not finite
     */
    public double heldOutLoss(Dataset data, int limit) {
        Objects.requireNonNull(data, "data");
        if (closed) {
            throw new IllegalStateException("trainer is closed");
        }
        requireIntact("measure a held-out loss of");
        if (limit < 1) {
            throw new IllegalArgumentException("limit must be >= 1, got " + limit);
        }
        if (!Arrays.equals(data.sampleShape(), model.sampleShape())) {
            throw new IllegalArgumentException("held-out samples are " + Arrays.toString(data.sampleShape())
                    + " but the model takes " + Arrays.toString(model.sampleShape()));
        }
        int n = Math.min(limit, data.size());
        if (n == 0) {
            throw new IllegalArgumentException("the held-out data is empty");
        }
        boolean conditional = model.numClasses() > 0;
        if (conditional && !data.hasLabels()) {
            throw new IllegalArgumentException("the model is class-conditional but the held-out data has no labels");
        }
        int batch = config.microBatches() > 1 ? config.microBatch() : config.batchSize();   // its activation memory
        double sum = 0;
        for (int from = 0; from < n; from += batch) {
            int m = Math.min(batch, n - from);
            int[] idx = new int[m];
            int[] labels = conditional ? new int[m] : null;
            for (int i = 0; i < m; i++) {
                idx[i] = from + i;
                if (conditional) {
                    labels[i] = data.label(from + i);
                    if (labels[i] < 0 || labels[i] >= model.numClasses()) {
                        throw new IllegalArgumentException("held-out sample " + (from + i) + " has label "
                                + labels[i] + ", outside the model's classes [0, " + model.numClasses() + ")");
                    }
                }
            }
            try (TensorScope b = openOn(heldOutWorkspace, "heldOutLoss")) {
                Tensor x0 = backend.empty(b, DType.F32, data.batchShape(m));
                data.gather(idx, x0, null);
                Tensor xt = backend.empty(b, DType.F32, x0.shape());
                Tensor target = backend.empty(b, DType.F32, x0.shape());
                ForwardNoising.Result r = noising.apply(diffusionOps, schedule, timeSampler,
                        NoiseSeeds.batch(config.seed(), HELD_OUT_STREAM, from, m), x0, xt, target, null, null);
                DenoiserModel.Pass pass = model.forward(b, xt, r.t(), labels);
                Tensor dOut = backend.empty(b, DType.F32, pass.out().shape());
                double loss = DenoisingLoss.compute(backend, b, pass.out(), target, r.weights(), dOut).loss();
                if (!Double.isFinite(loss)) {
                    throw new IllegalStateException("held-out loss " + loss + " on samples " + from + ".."
                            + (from + m - 1));
                }
                sum += loss * m;
            }
        }
        return sum / n;
    }

    /**
     * Forward, loss and backward of (part of) a step's batch, accumulating the parameter gradients of its mean loss
     * divided by {@code passes}; returns {@code {loss, weighted loss}} of this part.
     *
     * @throws IllegalStateException when the loss is not finite
     */
    private double[] forwardBackward(TensorScope scope, long k, Tensor xt, Tensor target, double[] t, int[] labels,
                                     double[] weights, int passes) {
        DenoiserModel.Pass pass = model.forward(scope, xt, t, labels);
        Tensor out = pass.out();
        Tensor dOut = backend.empty(scope, DType.F32, out.shape());
        DenoisingLoss.Value v = DenoisingLoss.compute(backend, scope, out, target, weights, dOut);
        double loss = v.loss();
        double weighted = v.weightedLoss();
        if (!Double.isFinite(weighted)) {
            throw new IllegalStateException("training diverged at step " + k + ": loss " + loss
                    + ", weighted loss " + weighted + (k == 0 ? " at the very first step:"
                    + " check that the data is finite and near unit scale (images in [-1, 1], vectors"
                    + " standardised)" : "; a lower learning rate or gradient clipping may help"));
        }
        if (passes > 1) {
            backend.binary(org.diffusion4j.tensor.Ops.Binary.MUL, dOut, 1f / passes, dOut);
        }
        model.backward(scope, pass, dOut);
        return new double[] {loss, weighted};
    }

    /**
     * Classifier-free-guidance label dropout: label {@code b} becomes the null class {@code numClasses} when
     * {@code Philox.uniform(seed, NOISE_STREAM + 3, firstId + b) <= labelDropout} (the rule of
     * {@link ClassEmbedder#dropLabels}, keyed by the global sample id).
     */
    private int[] dropLabels(int[] labels, long firstId) {
        int[] out = labels.clone();
        double p = config.labelDropout();
        if (p > 0) {
            for (int b = 0; b < out.length; b++) {
                if (Philox.uniform(config.seed(), NOISE_STREAM + DRAW_LABEL_DROP, firstId + b) <= p) {
                    out[b] = model.numClasses();
                }
            }
        }
        return out;
    }

    /** Sample {@code b} is mirrored when {@code Philox.uniform(seed, NOISE_STREAM + 4, firstId + b) <= 1/2}. */
    private boolean[] flips(long firstId, int batch) {
        boolean[] f = new boolean[batch];
        for (int b = 0; b < batch; b++) {
            f[b] = Philox.uniform(config.seed(), NOISE_STREAM + DRAW_FLIP, firstId + b) <= 0.5f;
        }
        return f;
    }

    // ---------------------------------------------------------------- checkpoints

    /**
     * {@link Checkpoint#save}: writes this trainer's state to {@code file} atomically.
     *
     * @throws IOException           on a write failure; {@code file} is then unchanged
     * @throws IllegalStateException when the trainer is closed or broken (see {@link #step()})
     */
    public void save(Path file) throws IOException {
        Checkpoint.save(this, file);
    }

    /**
     * {@link Checkpoint#restore}: loads the state saved in {@code file} into this trainer (also into a broken one,
     * which it repairs).
     *
     * @throws CheckpointException   when the file does not match this trainer or holds non-finite values (nothing is
     *                               changed then)
     * @throws IOException           when the file cannot be read; a failure part-way through the copies leaves the
     *                               trainer broken
     * @throws IllegalStateException when the trainer is closed
     */
    public void restore(Path file) throws IOException {
        Checkpoint.restore(file, this);
    }

    /**
     * Frees the optimizer moments, the EMA averages and the fused-op resources (not the model). Idempotent.
     *
     * @throws IllegalStateException changing nothing (a later {@code close()} frees everything) while a training
     *                               step on another thread holds the workspace
     */
    @Override
    public synchronized void close() {               // with openOn: no scope opens between the checks and the closes
        if (closed) {
            return;
        }
        if (workspace.inUse() || heldOutWorkspace.inUse()) {        // refuse before closing either
            throw new IllegalStateException("Trainer is in use (a training step or heldOutLoss holds its workspace); "
                    + "close it after that call returns");
        }
        try {
            workspace.close();                          // the ones that can refuse: first, so that nothing leaks
            heldOutWorkspace.close();
        } catch (IllegalStateException e) {
            throw new IllegalStateException("Trainer is in use (a training step or heldOutLoss holds its workspace); "
                    + "close it after that call returns", e);
        }
        microWorkspace.close();                         // free: the step's scope, now closed, held every micro-batch's
        closed = true;
        optimizer.close();
        if (ema != null) {
            ema.close();
        }
        diffusionOps.close();
    }

    /** Names of the parameters in state-dict order. */
    List<String> parameterNames() {
        return new ArrayList<>(params.keySet());
    }

    /**
     * A scope on one of this trainer's workspaces, with messages about the trainer when it cannot be had: a
     * trainer runs one step (or held-out measurement) at a time, and a close on another thread ends it.
     */
    private TensorScope openOn(Workspace w, String what) {
        String busy = "Trainer is in use: another thread is running " + what + " on it (a trainer runs one step or "
                + "held-out measurement at a time)";
        return openExclusive(w, busy, "trainer was closed by another thread");
    }

    /**
     * A scope on {@code w}, which no other call holds meanwhile; {@code busy} when another call holds it, or
     * {@code closedMessage} when the trainer was closed (the two checks and the open under one lock with
     * {@link #close()}).
     */
    private synchronized TensorScope openExclusive(Workspace w, String busy, String closedMessage) {
        if (closed) {
            throw new IllegalStateException(closedMessage);
        }
        if (w.inUse()) {
            throw new IllegalStateException(busy);
        }
        try {
            return TensorScope.open(w);
        } catch (IllegalStateException e) {
            throw new IllegalStateException(busy, e);
        }
    }

    /** What {@link #hold} returns: closing it lets steps and held-out measurements run again. */
    interface Hold extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * Holds both of this trainer's workspaces for a checkpoint save or restore ({@code what}), so that no training
     * step or held-out measurement runs on another thread until the hold is closed: a save sees the state of one
     * step, and a restore cannot interleave with a step (each had written files or trainers mixing two steps).
     *
     * @throws IllegalStateException naming {@code what} when a step or held-out measurement is running, or the
     *                               trainer is closed
     */
    Hold hold(String what) {
        TensorScope a = openForHold(workspace, what);
        TensorScope b;
        try {
            b = openForHold(heldOutWorkspace, what);
        } catch (RuntimeException e) {
            a.close();
            throw e;
        }
        return () -> {
            b.close();
            a.close();
        };
    }

    private TensorScope openForHold(Workspace w, String what) {
        return openExclusive(w, "cannot " + what + " while this trainer is in use: another thread is running a "
                + "training step, heldOutLoss, a save or a restore on it; " + what + " after that call returns",
                "cannot " + what + " a closed trainer");
    }

    /**
     * Throws when a step failed half-way through its update (the backend closed under it, say), so that neither
     * training nor a checkpoint goes on from weights of two different steps; {@link Checkpoint#restore} makes the
     * trainer whole again.
     *
     * @param what the refused action, e.g. {@code "save"}
     * @throws IllegalStateException naming the failed step and its cause
     */
    void requireIntact(String what) {
        if (broken != null) {
            throw new IllegalStateException("cannot " + what + " this trainer: " + broken + "; restore a checkpoint "
                    + "into it (Trainer.restore) to go on");
        }
    }

    /** True once closed. */
    boolean isClosed() {
        return closed;
    }
}
