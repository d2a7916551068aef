package org.diffusion4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.diffusion4j.Backends;
import org.diffusion4j.io.AtomicFiles;
import org.diffusion4j.io.Dataset;
import org.diffusion4j.io.ImageFolder;
import org.diffusion4j.io.Standardization;
import org.diffusion4j.nn.DenoiserModel;
import org.diffusion4j.nn.DiT;
import org.diffusion4j.nn.MlpDenoiser;
import org.diffusion4j.nn.Models;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.Parameter;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.optim.AdamW;
import org.diffusion4j.optim.Ema;
import org.diffusion4j.sampling.Sampler;
import org.diffusion4j.sampling.SamplingGrid;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.diffusion4j.training.Checkpoint;
import org.diffusion4j.training.StepStats;
import org.diffusion4j.training.Trainer;
import org.diffusion4j.training.TrainingConfig;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.reflect.RecordComponent;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

/**
 * {@code train}: trains a denoiser ({@code --model dit|mlp}) on a dataset with {@link Trainer} and keeps everything
 * in a run folder ({@link RunFolder}): {@code run.json}, periodic checkpoints, sample grids, the loss curve.
 * {@code --resume} continues a run folder from its latest checkpoint with the configuration in its
 * {@code run.json}; options that would change that configuration are refused (only {@code --steps} may grow, and
 * the checkpoint and grid options, threads and backend may change).
 *
 * <p>The run folder is locked for the whole command ({@link RunFolder#lock()}): a second {@code train} on it fails.
 * A new run needs a new or empty {@code --out} outside the data. On SIGINT/SIGTERM a shutdown hook deletes the
 * temporary files of writes in flight and marks run.json {@code interrupted}; {@code --resume} deletes temporary
 * files a killed process left, refuses data whose fingerprint differs from run.json's, and refuses a
 * {@code --steps} below the stored warm-up (rather than silently changing the learning-rate schedule).
 */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Train a diffusion / flow-matching model on a dataset; writes a run folder with run.json, "
                + "checkpoints, sample grids and a loss curve.")
final class TrainCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--data", description = "IDX folder or file, image folder (class sub-folders), .csv or .npy "
            + "(float32/float64 as is; uint8 images [N, H, W] or [N, C, H, W] scaled to [-1, 1] like IDX, uint8 "
            + "vectors [N, D] kept in 0..255)")
    Path data;

    @Option(names = "--out", required = true, description = "run folder to create: new or empty, not inside --data "
            + "(or to continue with --resume); locked while the command runs")
    Path out;

    @Option(names = "--resume", description = "continue the run in --out from its latest checkpoint")
    boolean resume;

    @Option(names = "--init-from", paramLabel = "CHECKPOINT|RUN", description = "start a new run from the weights "
            + "of a checkpoint, an export or a run folder's latest checkpoint (EMA averages when it has them) instead "
            + "of random ones: fine-tuning. The architecture, and unless given the image size and the objective (with "
            + "it the schedule, time sampler and loss weight), come from the file; a different number of classes "
            + "(or --cond left out) gets a new class embedding; the optimizer, EMA and learning-rate schedule start "
            + "fresh")
    Path initFrom;

    private InitWeights init;               // --init-from, read before the run folder is locked

    @Option(names = "--model", defaultValue = "auto", description = "auto (dit for images, mlp for vectors), dit "
            + "or mlp (an MLP also trains on images, flattened) (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--hidden", defaultValue = "128", description = "width (default: ${DEFAULT-VALUE})")
    int hidden;

    @Option(names = "--depth", defaultValue = "4", description = "DiT blocks (default: ${DEFAULT-VALUE})")
    int depth;

    @Option(names = "--heads", defaultValue = "4", description = "DiT attention heads (default: ${DEFAULT-VALUE})")
    int heads;

    @Option(names = "--patch", defaultValue = "4", description = "DiT patch size; a DiT sees (size/patch)^2 tokens, so "
            + "halving the patch makes each step ~4-8x slower (default: ${DEFAULT-VALUE})")
    int patch;

    @Option(names = "--blocks", defaultValue = "4", description = "MLP residual blocks (default: ${DEFAULT-VALUE})")
    int blocks;

    @Option(names = "--objective", defaultValue = "flow",
            description = "flow (rectified flow, velocity), eps, v or x0 (default: ${DEFAULT-VALUE})")
    String objective;

    @Option(names = "--schedule", description = "noise schedule: rf, rf:SHIFT (flow); linear, linear:T, cosine, vp "
            + "(eps/v/x0) (default: rf for flow, linear otherwise)")
    String schedule;

    @Option(names = "--time-sampler", defaultValue = "uniform",
            description = "uniform, uniform:TMIN:TMAX, logit-normal[:M:S], mode:S, cosmap (default: ${DEFAULT-VALUE})")
    String timeSampler;

    @Option(names = "--loss-weight", defaultValue = "none", description = "none or min-snr:GAMMA (default: "
            + "${DEFAULT-VALUE})")
    String lossWeight;

    @Option(names = "--steps", defaultValue = "10000", description = "training steps (default: ${DEFAULT-VALUE})")
    long steps;

    @Option(names = "--batch", defaultValue = "128", description = "samples per step (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--lr", defaultValue = "1e-3", description = "peak learning rate (default: ${DEFAULT-VALUE})")
    double lr;

    @Option(names = "--min-lr", description = "floor of the cosine decay (default: lr/100); equal to --lr: a constant "
            + "rate after the warm-up (DiT's recipe: --lr 1e-4 --min-lr 1e-4 --warmup 0)")
    Double minLr;

    @Option(names = "--warmup", description = "linear warm-up steps (default: min(1000, steps/10); --resume keeps "
            + "the run's value and refuses a --steps below it)")
    Long warmup;

    @Option(names = "--weight-decay", defaultValue = "0", description = "AdamW weight decay (default: "
            + "${DEFAULT-VALUE})")
    double weightDecay;

    @Option(names = "--ema", defaultValue = "0.9999",
            description = "EMA maximum decay, with warm-up; 0 for no EMA (default: ${DEFAULT-VALUE})")
    double ema;

    @Option(names = "--grad-clip", defaultValue = "1.0", description = "global gradient-norm clip, 0 for none "
            + "(default: ${DEFAULT-VALUE})")
    double gradClip;

    @Option(names = "--cond", description = "class-conditional (needs labelled data: class sub-folders, IDX labels or --label-column)")
    boolean cond;

    @Option(names = "--label-dropout", defaultValue = "0.1",
            description = "probability of the null class in conditional training, for guidance (default: "
                    + "${DEFAULT-VALUE})")
    double labelDropout;

    @Option(names = "--micro-batch", description = "samples per forward/backward pass, dividing --batch: the "
            + "gradients of --batch/M passes are accumulated before each optimizer step (gradient accumulation: the "
            + "update of the whole batch, up to float rounding, with the activation memory of M samples; default, "
            + "or 0: the whole batch in one pass); --resume may change it (the run then stays equal only up to "
            + "rounding)")
    Integer microBatch;

    @Option(names = "--random-flip", description = "mirror each training image left-right with probability 1/2 "
            + "(data augmentation for images whose classes are left-right symmetric; not for vectors)")
    boolean randomFlip;

    @Option(names = "--standardize", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "vector data: train on each feature scaled to mean 0 and standard deviation 1 (from the "
                    + "training split), and map samples back; --no-standardize trains on the raw values (default: "
                    + "${DEFAULT-VALUE}; images are always in [-1, 1])")
    boolean standardize;

    @Option(names = "--label-column", description = "CSV data: the column (header name or 0-based index) of class "
            + "labels (integers >= 0, or names: the sorted distinct names are classes 0, 1, ...), for --cond; the "
            + "other columns are the vectors")
    String labelColumn;

    @Option(names = "--seed", defaultValue = "0", description = "seed of everything random (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--held-out", defaultValue = "0.1",
            description = "fraction held out for eval when the data has no test split (default: ${DEFAULT-VALUE})")
    double heldOut;

    @Option(names = "--resolution", defaultValue = "32", description = "side of images read from an image folder "
            + "(default: ${DEFAULT-VALUE})")
    int resolution;

    @Option(names = "--channels", defaultValue = "auto", description = "image folder: 1 (grey), 3 (RGB) or auto "
            + "(RGB when any image has colour) (default: ${DEFAULT-VALUE})")
    String channels;

    @Option(names = "--checkpoint-every", defaultValue = "1000", description = "steps between checkpoints "
            + "(default: ${DEFAULT-VALUE}; one is always written at the end)")
    long checkpointEvery;

    @Option(names = "--sample-every", defaultValue = "1000", description = "steps between sample grids, 0 for only "
            + "at the end (default: ${DEFAULT-VALUE})")
    long sampleEvery;

    @Option(names = "--held-out-loss-every", defaultValue = "250", description = "steps between evaluations of "
            + "the loss on (up to " + HELD_OUT_LOSS_SAMPLES + " samples of) the held-out data, with its noise and "
            + "times fixed, written to held_out_loss.csv and loss.png: a held-out loss that rises while the training "
            + "loss falls means memorising; checkpoints/best.safetensors keeps the step of the lowest; 0 for none "
            + "(default: ${DEFAULT-VALUE}; one also at the end)")
    long heldOutLossEvery;

    @Option(names = "--keep-checkpoints", defaultValue = "0", description = "keep only the newest N step "
            + "checkpoints (checkpoints/step-*.safetensors; latest and best are always kept); 0 keeps every one "
            + "(default: ${DEFAULT-VALUE})")
    int keepCheckpoints;

    @Option(names = "--sample-steps", defaultValue = "16", description = "sampler steps of the grids (default: "
            + "${DEFAULT-VALUE})")
    int sampleSteps;

    @Option(names = "--sampler", description = "sampler of the grids, one of " + Sampling.NAMES
            + " (default: flow-midpoint for flow, dpmpp-2m otherwise)")
    String sampler;

    @Option(names = "--guidance", defaultValue = "2.0", description = "guidance scale of the grids of a conditional "
            + "model (default: ${DEFAULT-VALUE})")
    double guidance;

    @Mixin
    RuntimeOptions runtime;

    /** How many held-out samples {@code --held-out-loss-every} evaluates (forward passes only). */
    static final int HELD_OUT_LOSS_SAMPLES = 1024;

    /** Options that --resume may change (the rest must match run.json). */
    private static final Set<String> RESUMABLE = Set.of("--steps", "--checkpoint-every", "--sample-every",
            "--sample-steps", "--sampler", "--guidance", "--backend", "--threads", "--verbose", "--resume", "--out",
            "--held-out-loss-every", "--keep-checkpoints",
            "--data", "--micro-batch");

    /** Classes an image sample grid shows (the first ones), and its largest model batch. */
    static final int GRID_MAX_CLASSES = 100;
    static final int GRID_BATCH = 256;

    /** Class counts up to this are never refused for being larger than the training set. */
    static final int MAX_CLASSES_FREE = 1000;

    /** Columns of a conditional grid (samples per class row); side of an unconditional grid. */
    static final int GRID_COLUMNS = 8;

    /** The run.json last written by this command (for the shutdown hook). */
    private volatile RunJson current;

    /** Set by the shutdown hook (SIGINT/SIGTERM) while the training loop runs: stop after this step, checkpointed. */
    private volatile boolean stopRequested;

    /** Whether the training loop is running (the hook then waits for {@link #loopDone}). */
    private volatile boolean inLoop;

    /** Guards the hand-over between the shutdown hook and the start of the training loop, and {@link #inGrid}. */
    private final Object stopLock = new Object();

    /** Whether the loop is drawing a sample grid (the hook then interrupts {@link #loopThread}: the grid is dropped). */
    private boolean inGrid;

    /** The thread running the training loop. */
    private volatile Thread loopThread;

    /** Counted down when the training loop has ended and its final status is saved, normally or by a stop request. */
    private final java.util.concurrent.CountDownLatch loopDone = new java.util.concurrent.CountDownLatch(1);

    /** Longest the shutdown hook waits for the step in progress and its checkpoint. */
    static final long STOP_WAIT_SECONDS = 120;

    @Override
    public Integer call() throws IOException {
        long wallStart = System.nanoTime();
        if (out.toString().isEmpty() || (data != null && data.toString().isEmpty())) {
            throw new IllegalArgumentException((out.toString().isEmpty() ? "--out" : "--data") + " is empty; give "
                    + (out.toString().isEmpty() ? "the run folder to write" : "the dataset's path"));
        }
        RunFolder folder = new RunFolder(out.toAbsolutePath().normalize());
        checkOutLocation(folder.root());
        if (!resume && data == null) {
            throw new IllegalArgumentException("--data is required (the dataset to train on)");
        }
        if (resume && initFrom != null) {
            throw new IllegalArgumentException("--init-from starts a new run; --resume continues the run in --out "
                    + "from its own latest checkpoint (leave --init-from out)");
        }
        init = initFrom == null ? null : InitWeights.open(initFrom);      // before --out is locked (and created)
        if (!resume) {
            checkNewRunFolder(folder, false);
        }
        boolean existed = Files.exists(folder.root());
        if (resume && !existed) {
            throw new IllegalArgumentException("--resume: " + folder.root() + " does not exist (nothing to resume; "
                    + "without --resume, train starts a run there)");
        }
        Path created = SampleCommand.firstMissing(folder.root());   // the outermost folder the lock will create
        RunFolder.Lock lock = folder.lock();
        Thread hook = new Thread(() -> {
            boolean wait;
            synchronized (stopLock) {                                 // either the loop sees the request or we wait
                stopRequested = true;
                wait = inLoop;
                if (inGrid && loopThread != null) {
                    loopThread.interrupt();                           // sampling stops between steps; grid dropped
                }
            }
            if (wait) {                                               // let the loop finish its step and save it
                System.err.println(System.lineSeparator() + "interrupt   finishing the current step and saving a "
                        + "checkpoint (at most " + STOP_WAIT_SECONDS + " s; kill -9 stops at once)");
                System.err.flush();
                try {
                    loopDone.await(STOP_WAIT_SECONDS, java.util.concurrent.TimeUnit.SECONDS);
                } catch (InterruptedException ignored) {
                    Thread.currentThread().interrupt();
                }
            }
            onShutdown(folder, current);
            if (current == null && Files.exists(folder.runJson()) && !wait) {  // --resume stopped before it began
                System.err.println(System.lineSeparator() + "interrupt   stopped before training resumed; the run is "
                        + "as it was");
                System.err.flush();
            }
            if (current == null && !Files.exists(folder.runJson())) {  // Ctrl-C before the run began
                System.err.println(System.lineSeparator() + "interrupt   stopped before training began; nothing is "
                        + "kept");
                System.err.flush();
                cleanUpFailedStart(folder, existed, created);
            }
        }, "diffusion4j-train-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            return train(folder, wallStart);
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException ignored) {
                // the JVM is shutting down: the hook runs
            }
            lock.close();
            if (!Files.exists(folder.runJson())) {
                cleanUpFailedStart(folder, existed, created);
            }
        }
    }

    /**
     * After a start that wrote no run.json: removes the lock file, and a run folder this command created with the
     * parents it created for it ({@code --out runs/new/run} of a failed start leaves no {@code runs/}).
     */
    private static void cleanUpFailedStart(RunFolder folder, boolean existed, Path created) {
        if (existed) {
            try {
                Files.deleteIfExists(folder.root().resolve(RunFolder.LOCK));
            } catch (IOException ignored) {
                // a leftover lock file is harmless
            }
            return;
        }
        removeEmptyRunFolder(folder);
        SampleCommand.removeCreated(folder.root().getParent(), created);
    }

    /**
     * What the shutdown hook does on SIGINT/SIGTERM: deletes the temporary files of writes in flight and, when the
     * run was still running, marks its run.json {@code interrupted} (an atomic write of a few KB).
     */
    static void onShutdown(RunFolder folder, RunJson run) {
        AtomicFiles.deleteInFlight();
        if (run != null && "running".equals(run.status())) {
            try {
                run.withStatus("interrupted").write(folder.runJson());
            } catch (IOException | RuntimeException ignored) {
                // best effort: the JVM is going down
            }
        }
        AtomicFiles.deleteInFlight();
    }

    private void save(RunJson run, RunFolder folder) throws IOException {
        run.write(folder.runJson());
        current = run;
    }

    /** A folder this command created but did not get to use: removed again (with its lock file). */
    private static void removeEmptyRunFolder(RunFolder folder) {
        try {
            Files.deleteIfExists(folder.root().resolve(RunFolder.LOCK));
            for (Path p : new Path[] {folder.checkpoints(), folder.samples(), folder.root()}) {
                try (Stream<Path> st = Files.list(p)) {
                    if (st.findAny().isEmpty()) {
                        Files.delete(p);
                    }
                } catch (java.nio.file.NoSuchFileException ignored) {
                    // never created
                }
            }
        } catch (IOException ignored) {
            // leftovers of a failed start are harmless
        }
    }

    /**
     * Refuses an --out for a new run that holds a run, is not a folder, lies inside the data or holds files of its
     * own. Before the lock ({@code locked} false) a folder with a lock file passes (it is a run folder, maybe in
     * use: the lock decides); under the lock only the run's own sub-folders may be there.
     */
    private void checkNewRunFolder(RunFolder folder, boolean locked) throws IOException {
        if (Files.exists(folder.runJson())) {
            if (!Files.isRegularFile(folder.latestCheckpoint())) {
                // before the lock is ours the run may still be training towards its first checkpoint
                throw new IllegalArgumentException("--out " + folder.root() + (locked
                        ? " holds a run that stopped before its first checkpoint (see its run.json): nothing to "
                        + "resume; delete the folder or give another --out"
                        : " holds a run with no checkpoint yet: it may still be running; if it stopped, delete the "
                        + "folder or give another --out"));
            }
            throw new IllegalArgumentException("--out " + folder.root() + " already holds a run (run.json); use "
                    + "--resume to continue it, or another folder");
        }
        checkNotNested(folder.root(), data);
        if (!Files.exists(folder.root())) {
            return;
        }
        if (!Files.isDirectory(folder.root())) {
            throw new IllegalArgumentException("--out " + folder.root() + " is not a folder");
        }
        Set<String> own = locked ? Set.of(RunFolder.LOCK, "checkpoints", "samples") : Set.of(RunFolder.LOCK);
        List<String> names;
        try (Stream<Path> st = Files.list(folder.root())) {
            names = st.map(p -> p.getFileName().toString()).toList();
        }
        if (!locked && names.contains(RunFolder.LOCK)) {
            return;
        }
        if (names.stream().anyMatch(n -> !own.contains(n))) {
            throw new IllegalArgumentException("--out " + folder.root() + " is not empty and holds no run "
                    + "(no run.json); give a new or empty folder");
        }
    }

    /** Refuses an --out whose nearest existing ancestor is not a writable folder, before any work. */
    static void checkOutLocation(Path root) {
        Path p = root;
        while (p != null && !Files.exists(p)) {
            p = p.getParent();
        }
        if (p == null) {
            throw new IllegalArgumentException("--out " + root + ": no existing parent folder");
        }
        if (!Files.isDirectory(p)) {
            throw new IllegalArgumentException("--out " + root + ": " + p + " is not a folder");
        }
        if (!Files.isWritable(p)) {
            throw new IllegalArgumentException("--out " + root + ": " + p + " is not writable");
        }
        for (Path a = root; a != null && a.getParent() != null; a = a.getParent()) {
            // a run inside another run's checkpoints folder, which that run's train prunes and export refuses
            if (a.getFileName() != null && a.getFileName().toString().equals("checkpoints")
                    && Files.isRegularFile(a.getParent().resolve("run.json"))) {
                throw new IllegalArgumentException("--out " + root + " lies inside the checkpoints folder of the run "
                        + a.getParent() + ", whose train manages its files; choose a folder outside it");
            }
        }
    }

    /** Refuses --out equal to, inside or containing the data. */
    static void checkNotNested(Path root, Path dataPath) {
        Path o = real(root);
        Path d = real(dataPath);
        if (o.startsWith(d) || d.startsWith(o)) {
            throw new IllegalArgumentException("--out " + root + " must be outside the data " + dataPath
                    + (o.equals(d) ? " (it is the same folder)" : o.startsWith(d) ? " (it lies inside it)"
                    : " (the data lies inside it)"));
        }
    }

    private static Path real(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        try {
            return abs.toRealPath();
        } catch (IOException e) {
            return abs;
        }
    }

    private Integer train(RunFolder folder, long wallStart) throws IOException {
        PrintWriter o = spec.commandLine().getOut();
        RunJson previous = null;
        RunJson.TrainOptions opts;
        if (resume) {
            if (!Files.isRegularFile(folder.runJson())) {
                throw new IllegalArgumentException("--resume: " + folder.root() + " holds no run.json, so it is not a "
                        + "run folder of train (a checkpoint saved from Java resumes there with Trainer.restore; "
                        + "train --init-from FILE starts a new run from its weights)");
            }
            int removed = folder.removeStaleTemporaries();
            if (removed > 0) {
                o.println("cleanup     removed " + removed + " stale temporary file(s) of an interrupted run");
            }
            if (!Files.isRegularFile(folder.latestCheckpoint())) {
                String intact = newestIntactCheckpoint(folder);
                String latest = folder.relative(folder.latestCheckpoint());
                throw new IllegalArgumentException("--resume: " + folder.root() + (intact != null
                        ? " has no " + latest + ", but the newest intact checkpoint is " + intact + ": copy it to "
                        + latest + " to resume from it"
                        : Files.isRegularFile(folder.bestCheckpoint())
                        ? " has no " + latest + " and no step checkpoint (were they deleted?), only "
                        + folder.relative(folder.bestCheckpoint()) + ": copy it to " + latest + " to resume from "
                        + "its step, or train on from its weights with --init-from " + folder.bestCheckpoint()
                        : " has no checkpoint (" + latest + "): the run stopped before its first checkpoint, or its "
                        + "checkpoints were deleted; start again with another --out"));
            }
            previous = RunJson.read(folder.runJson());
            opts = mergeForResume(previous.options(), given(),
                    previous.data() != null && previous.data().fingerprint() != null);
            if (opts.heldOutLossEvery() == null) {          // a run.json from before the option: its default
                opts = opts.with("heldOutLossEvery", heldOutLossEvery);
            }
            if (opts.keepCheckpoints() == null) {
                opts = opts.with("keepCheckpoints", keepCheckpoints);
            }
        } else {
            checkNewRunFolder(folder, true);
            opts = given();
        }
        if (init != null) {
            CommandLine.ParseResult pr = spec.commandLine().getParseResult();
            opts = init.apply(opts, pr::hasMatchedOption, note -> o.println("note        " + note));
        }
        if (resume && opts.data() != null) {
            checkNotNested(folder.root(), Path.of(opts.data()));
        }
        boolean warmupFromRun = resume && !spec.commandLine().getParseResult().hasMatchedOption("--warmup");
        if (warmupFromRun && opts.warmup() > opts.steps()) {
            throw new IllegalArgumentException("--steps " + opts.steps() + " is below the run's warm-up of "
                    + opts.warmup() + " steps (stored in run.json, the default min(1000, steps/10) of the original "
                    + "--steps unless it was given); give --steps >= " + opts.warmup());
        }
        try {
            validate(opts, resume);
        } catch (IllegalArgumentException e) {
            if (resume) {                                   // a value the user did not give: it came from run.json
                String m = e.getMessage();
                String option = m.startsWith("--") ? m.substring(0, Math.max(2, m.indexOf(' '))) : null;
                if (option != null && !spec.commandLine().getParseResult().hasMatchedOption(option)) {
                    throw new IllegalArgumentException(m + " (the value stored in " + folder.runJson() + ", which "
                            + "this resume continues: was the file edited?)", e);
                }
            }
            throw init == null ? e : init.explain(e);
        }

        DataLoading.Loaded loaded = DataLoading.load(Path.of(opts.data()), opts.resolution(), opts.channels(),
                opts.heldOut(), opts.seed(), opts.labelColumn(),
                note -> o.println("note        " + DataLoading.printable(note)));
        o.println("data        " + opts.data() + ": " + loaded.describe());
        String fingerprint = loaded.fingerprint();
        if (previous != null && previous.data() != null && previous.data().fingerprint() != null
                && !previous.data().fingerprint().equals(fingerprint)) {
            String was = previous.data().path();
            if (was != null && !Path.of(was).toAbsolutePath().normalize().equals(
                    Path.of(opts.data()).toAbsolutePath().normalize())) {
                throw new IllegalArgumentException("--resume: --data " + opts.data() + " is not the run's data " + was
                        + " (its contents differ too: " + fingerprint + ", run.json has "
                        + previous.data().fingerprint() + "); leave --data out to resume on the run's data, or start "
                        + "a new run on this data with --init-from " + folder.root());
            }
            throw new IllegalArgumentException("--resume: the data in " + opts.data() + " changed since the run "
                    + "started (now " + fingerprint + ", run.json has " + previous.data().fingerprint() + "; the "
                    + "fingerprint covers the held-out split too, so an edited --seed or --held-out in run.json "
                    + "also changes it)" + DataLoading.DECODING_HINT);
        }
        RunJson.DataSource source = init == null || resume ? null : init.dataSource();
        if (source != null && source.data() != null && !loaded.heldOutFrom().equals("t10k")
                && Path.of(source.data()).toAbsolutePath().normalize()
                        .equals(Path.of(opts.data()).toAbsolutePath().normalize())   // the fingerprint covers the split
                && (source.seed() != opts.seed() || source.heldOut() != opts.heldOut())) {
            // found by a user trial: a fine-tune of the same data held out other rows, unsaid
            o.printf(Locale.ROOT, "note        --init-from's model trained on this data with another held-out split "
                    + "(--seed %d, --held-out %s): rows held out now include some it trained on, so the held-out "
                    + "loss and eval look better than they are; --seed %d --held-out %s holds out the same rows%n",
                    source.seed(), source.heldOut(), source.seed(), source.heldOut());
        }
        List<String> namesBefore = previous == null || previous.data() == null
                || previous.data().classNames() == null ? List.of() : previous.data().classNames();
        if (!namesBefore.isEmpty() && !namesBefore.equals(loaded.train().classNames())) {
            throw new IllegalArgumentException("--resume: the class names of " + opts.data() + " changed since the run "
                    + "started (now " + loaded.train().classNames() + ", run.json has " + namesBefore + ")");
        }
        long[] imageShape = loaded.kind() == DataLoading.Kind.IMAGES ? loaded.sampleShape() : null;
        boolean imageFolder = InitWeights.isImageFolder(Path.of(opts.data()));
        if (!imageFolder && !resume && spec.commandLine().getParseResult().hasMatchedOption("--resolution")
                && (imageShape == null || imageShape[1] != opts.resolution() || imageShape[2] != opts.resolution())) {
            o.println("note        --resolution resizes image folders only; " + opts.data() + " holds "
                    + (imageShape == null ? "vectors" : imageShape[1] + " x " + imageShape[2] + " images")
                    + ", used as they are");
        }
        if (init != null) {
            init.checkData(loaded.train(), imageShape, opts.data(), imageFolder, opts.resolution(),
                    note -> o.println("note        " + note));
        }
        boolean autoModel = opts.model().equals(AUTO_MODEL);
        if (autoModel) {
            opts = opts.withModel(imageShape != null ? Models.DIT : Models.MLP);
        }
        Dataset train = loaded.train();
        boolean mlp = opts.model().equals(Models.MLP);
        if (mlp && imageShape != null) {
            train = DataLoading.flatten(train);
        }
        Standardization scaling = null;
        if (imageShape == null && opts.standardize()) {
            scaling = Standardization.fit(train);
            train = scaling.apply(train);
            o.println("scaling     each of the " + scaling.features() + " features to mean 0, std 1 (train split: "
                    + summary(scaling) + "); samples are mapped back (--no-standardize: raw values)");
        } else if (imageShape == null) {
            Standardization raw = Standardization.fit(train);
            if (far(raw)) {
                o.println("warning     the features are far from unit scale (" + summary(raw) + ") and this run "
                        + "trains on them as they are (" + (resume ? "it was started before standardisation, or with"
                        + " --no-standardize" : "--no-standardize") + "): noise of scale 1 will not cover them");
            }
        }
        Map<String, String> extraMeta = new LinkedHashMap<>();
        if (scaling != null) {
            extraMeta.put(Checkpoint.KEY_DATA_STANDARDIZATION, scaling.toJson());
        }
        if (mlp && imageShape != null) {
            extraMeta.put(Checkpoint.KEY_DATA_IMAGE_SHAPE, Arrays.toString(imageShape));
        }
        if (!loaded.featureNames().isEmpty()) {
            extraMeta.put(Checkpoint.KEY_DATA_FEATURE_NAMES, Checkpoint.stringsJson(loaded.featureNames()));
        }
        extraMeta.put(Checkpoint.KEY_DATA_SOURCE, RunJson.DataSource.of(opts, fingerprint).toJson());
        if (previous != null && opts.initFrom() != null) {          // the first session's account of it
            String had = Checkpoint.readInfo(folder.latestCheckpoint()).metadata().get(Checkpoint.KEY_INIT_FROM);
            extraMeta.put(Checkpoint.KEY_INIT_FROM, had != null ? had : opts.initFrom());
        }
        if (!opts.cond() && train.numClasses() >= 2 && !resume) {
            o.println("note        the " + (opts.labelColumn() != null ? "labels of --label-column "
                    + opts.labelColumn() : train.numClasses() + " classes of the data") + " are not used: add --cond "
                    + "to train a class-conditional model (sample --class needs one)");
        }
        if (opts.cond() && !train.hasLabels()) {
            String d = java.nio.file.Path.of(opts.data()).getFileName().toString().toLowerCase(java.util.Locale.ROOT);
            throw new IllegalArgumentException("--cond needs labelled data; " + opts.data() + " has no labels"
                    + (d.endsWith(".npy") ? " (an .npy takes them from " + d.substring(0, d.length() - 4)
                    + ".labels.npy beside it)" : d.endsWith(".csv") ? " (a CSV names its label column with "
                    + "--label-column)" : ""));
        }
        if (opts.cond() && train.numClasses() < 2) {
            throw new IllegalArgumentException("--cond needs >= 2 classes; " + opts.data() + " has "
                    + train.numClasses());
        }
        if (opts.cond() && train.numClasses() > Math.max(MAX_CLASSES_FREE, train.size())) {
            // labels up to 2^24 are accepted, and every class gets an embedding row and sample-grid column: a stray
            // large label (an ID, a typo) must not silently build a model for it
            int largest = 0;
            for (int l : train.labels()) {
                largest = Math.max(largest, l);
            }
            throw new IllegalArgumentException("--cond: the labels of " + opts.data() + " make " + train.numClasses()
                    + " classes (the largest label is " + largest + ") for " + train.size() + " training samples: "
                    + "more classes than samples; labels must be class indices 0 .. K-1 (or names)");
        }
        Record modelConfig = modelConfig(opts, train, imageShape, autoModel,
                spec.commandLine().getParseResult().hasMatchedOption("--patch"));
        int classes = opts.cond() ? train.numClasses() : 0;
        if (init != null) {
            modelConfig = init.modelConfig(modelConfig, classes, opts.cond() ? opts.labelDropout() : 0.0);
        } else if (previous != null && opts.initFrom() != null) {
            modelConfig = Models.parseConfig(previous.model().kind(), previous.model().config().toString());
        }
        String kind = Models.kindOf(modelConfig);
        String modelJson = Models.toJson(modelConfig);
        TrainingConfig tc;
        try {
            tc = trainingConfig(opts);
            Sampling.grid(tc, opts.sampler(), opts.sampleSteps());   // refuse a bad --sampler now
        } catch (IllegalArgumentException e) {
            throw init == null ? e : init.explain(e);
        }
        if (previous != null) {
            String before = previous.model().config().toString();
            if (!Models.parseConfig(previous.model().kind(), before).equals(modelConfig)) {
                throw new IllegalArgumentException("--resume: the data or model options give model " + modelJson
                        + " but the run has " + before);
            }
        }

        runtime.applyThreads();
        try (Backend be = Backends.create(runtime.backend);
             NnOps ops = NnOps.forBackend(be);
             AttentionOps att = AttentionOps.forBackend(be);
             TensorScope params = TensorScope.open();
             TensorScope gridParams = TensorScope.open()) {
            DenoiserModel net = Models.create(kind, modelJson, ops, att, params, opts.seed());
            if (init != null) {
                o.println("init        " + init.load(net, be, train.hasLabels() ? train.classNames() : List.of(),
                        note -> o.println("note        " + note)));
                extraMeta.put(Checkpoint.KEY_INIT_FROM, init.provenance());
            }
            synchronized (stopLock) {            // from here a stop request is served by the loop (step, checkpoint)
                if (stopRequested) {
                    return 130;                  // nothing written yet: the shutdown hook removes what the lock made
                }
                Main.FINISHING.add(loopDone);
                loopThread = Thread.currentThread();
                inLoop = true;
            }
            try {
                return runTraining(o, folder, wallStart, previous, opts, resume, loaded, fingerprint, train, imageShape,
                        scaling, extraMeta, kind, modelJson, tc, be, ops, att, gridParams, net);
            } finally {
                finishLoop(o);
            }
        }
    }

    private Integer runTraining(PrintWriter o, RunFolder folder, long wallStart, RunJson previous,
                                RunJson.TrainOptions opts, boolean resume, DataLoading.Loaded loaded,
                                String fingerprint, Dataset train, long[] imageShape, Standardization scaling,
                                Map<String, String> extraMeta, String kind, String modelJson, TrainingConfig tc,
                                Backend be, NnOps ops, AttentionOps att, TensorScope gridParams, DenoiserModel net)
            throws IOException {
        {
            folder.create();
            long parameterCount = net.module().parameterCount();
            o.printf(Locale.ROOT, "model       %s %s, %,d parameters%n", kind, modelJson, parameterCount);
            o.printf(Locale.ROOT, "backend     %s%n", be.name());
            if (tc.microBatches() > 1) {
                o.printf(Locale.ROOT, "batch       %d per step, in %d passes of %d (gradients accumulated)%n",
                        tc.batchSize(), tc.microBatches(), tc.microBatch());
            }
            RunJson run = new RunJson(RunJson.FORMAT, "running", opts, RunJson.currentVersions(), be.name(),
                    new RunJson.DataInfo(opts.data(), loaded.kind().name().toLowerCase(Locale.ROOT),
                            loaded.sampleShape(), loaded.train().size(), loaded.heldOut().size(),
                            loaded.heldOutFrom(), train.hasLabels() ? train.numClasses() : 0,
                            train.hasLabels() ? train.classNames() : List.of(), fingerprint),
                    new RunJson.ModelInfo(kind, RunJson.JSON.readTree(modelJson), parameterCount),
                    RunJson.JSON.readTree(Checkpoint.toJson(tc)),
                    previous == null ? RunJson.Results.empty() : previous.results());
            double previousWall = previous == null ? 0 : nz(previous.results().wallSeconds());
            double previousTrain = previous == null ? 0 : nz(previous.results().trainSeconds());
            try (Trainer trainer = new Trainer(net, ops, train, tc)) {
                List<double[]> losses = new ArrayList<>();
                List<double[]> heldLosses = new ArrayList<>();
                Dataset heldOutSet = opts.heldOutLossEvery() > 0 ? heldOutForLoss(loaded, opts, imageShape, scaling,
                        net.numClasses(), note -> o.println("note        " + note)) : null;
                // the lowest held-out loss measured so far: best.safetensors, when there is one, holds its step
                double[] best = {Double.POSITIVE_INFINITY};
                if (resume) {
                    restore(trainer, folder);
                    losses.addAll(readLosses(folder.lossCsv(), trainer.completedSteps()));
                    heldLosses.addAll(readLosses(folder.heldOutLossCsv(), trainer.completedSteps()));
                    o.printf(Locale.ROOT, "resume      from step %d (%s)%n", trainer.completedSteps(),
                            folder.relative(folder.latestCheckpoint()));
                    if (trainer.completedSteps() >= opts.steps()) {      // before run.json is touched
                        o.printf(Locale.ROOT, "the run has already completed %d of %d steps; nothing to do (raise "
                                + "--steps to continue)%n", trainer.completedSteps(), opts.steps());
                        return 0;
                    }
                    best[0] = reconcileBest(folder, trainer.completedSteps(), heldLosses,
                            note -> o.println("note        " + note));
                    long c = trainer.completedSteps();
                    if (heldOutSet != null && c % opts.heldOutLossEvery() == 0
                            && (heldLosses.isEmpty() || heldLosses.get(heldLosses.size() - 1)[0] != c)) {
                        // a stop during the step that was due one: measured now, so that the curve has no gap
                        double h = trainer.heldOutLoss(heldOutSet, HELD_OUT_LOSS_SAMPLES);
                        o.printf(Locale.ROOT, "held-out    loss %.4f at step %d (measured on resuming: the stop "
                                + "came before it)%n", h, c);
                        heldLosses.add(new double[] {c, h});
                        if (h < best[0]) {
                            saveBest(trainer, folder, extraMeta, h);
                            best[0] = h;
                        }
                        writeLosses(folder, losses, heldLosses, line -> {
                            o.println(line);
                            o.flush();
                        });
                    }
                }
                save(run, folder);
                DenoiserModel gridModel = Models.create(kind, modelJson, ops, att, gridParams, opts.seed());
                GridMaker grids = new GridMaker(be, trainer, gridModel, tc, opts, imageShape, scaling,
                        train.classNames(), loaded.featureNames(), imageShape == null ? gridReference(loaded.train())
                        : null);
                long first = trainer.completedSteps();
                long total = opts.steps();
                boolean interrupted = false;
                double[] trainSeconds = {0};
                String[] latestCkpt = {run.results().latestCheckpoint()};
                String[] latestGrid = {run.results().latestGrid()};
                try (Progress progress = Progress.start("train", first, total, o, Progress.isTerminal())
                        .unit(imageShape != null ? "img/s" : "samples/s")) {
                    double[] window = {0, 0, 0};                           // loss sum, images, seconds
                    int batchSize = opts.batch();
                    trainer.addListener(s -> {
                        losses.add(new double[] {s.step() + 1, s.loss()});
                        trainSeconds[0] += s.seconds();
                        window[0] += s.loss();
                        window[1] += batchSize;
                        window[2] += s.seconds();
                        long done = s.step() + 1;
                        int count = (int) Math.min(done - first, 50);
                        progress.update(done, meanLoss(losses, count), count,
                                window[1] / Math.max(window[2], 1e-9));
                        if (done % 50 == 0) {
                            window[0] = 0;
                            window[1] = 0;
                            window[2] = 0;
                        }
                    });
                    long savedAt = -1;                                 // the step of the last checkpoint
                    for (long step = first; step < total; step++) {
                        if (stopRequested && savedAt == step) {         // checkpointed: stop before the next step
                            run = run.withStatus("interrupted");
                            save(run, folder);
                            progress.close();                     // the resume hint is the last line
                            progress.note("interrupted at step " + step + " of " + total + ": checkpoint "
                                    + latestCkpt[0] + " written; train --resume --out " + folder.root()
                                    + " continues");
                            interrupted = true;
                            break;
                        }
                        StepStats st = trainer.step();
                        long done = st.step() + 1;
                        boolean last = done == total;
                        // measured before the stop check below (a stop asked for meanwhile still checkpoints this
                        // step), written after the checkpoint (a failing write loses nothing)
                        Double held = heldOutSet != null
                                && (last || (!stopRequested && done % opts.heldOutLossEvery() == 0))
                                ? heldOutLoss(trainer, heldOutSet, done, losses, progress) : null;
                        if (held != null) {
                            heldLosses.add(new double[] {done, held});
                        }
                        // a stop asked for during the step or the held-out loss: checkpoint now, stop at the loop's top
                        boolean stop = stopRequested && !last;
                        // the checkpoint first: a grid that fails (a NaN model, an unwritable folder) loses nothing
                        if (last || stop || done % opts.checkpointEvery() == 0) {
                            Path ck = folder.checkpoint(done);
                            Checkpoint.save(trainer, ck, extraMeta);
                            RunFolder.copyAtomically(ck, folder.latestCheckpoint());
                            latestCkpt[0] = folder.relative(ck);
                            if (opts.keepCheckpoints() != null && opts.keepCheckpoints() > 0) {
                                folder.pruneCheckpoints(opts.keepCheckpoints());
                            }
                            writeLosses(folder, losses, heldLosses, progress::note);
                            run = run.withResults(results(done, first, losses, previousWall + seconds(wallStart),
                                    previousTrain + trainSeconds[0], trainSeconds[0], opts.batch(), latestCkpt[0],
                                    latestGrid[0], run.results().metrics(), run.results().metricsStep(),
                                    run.results().heldOutLoss(), run.results().heldOutLossStep()));
                            save(run, folder);
                            savedAt = done;
                        }
                        boolean gridDue = last || (opts.sampleEvery() > 0 && done % opts.sampleEvery() == 0);
                        if (gridDue && stopRequested) {
                            progress.note("samples     the step-" + done + " grid was dropped: stopping (sample "
                                    + "--checkpoint " + folder.root() + " draws one)");
                        }
                        if (gridDue && !stopRequested) {
                            progress.note("samples     drawing the step-" + done + " sample grid (" + opts.sampleSteps()
                                    + " sampler step" + (opts.sampleSteps() == 1 ? ")" : "s)"));
                            String drawn = null;
                            synchronized (stopLock) {
                                inGrid = !stopRequested;
                            }
                            try {
                                if (inGrid) {
                                    drawn = grids.write(folder, done);
                                }
                            } catch (java.util.concurrent.CancellationException e) {
                                progress.note("samples     the step-" + done + " grid was dropped: stopping (sample "
                                        + "--checkpoint " + folder.root() + " draws one)");
                            } catch (IOException e) {
                                if (!stopRequested) {
                                    throw e;
                                }
                                // the stop's interrupt reached the PNG write (which left the old file alone)
                                progress.note("samples     the step-" + done + " grid was dropped: stopping (sample "
                                        + "--checkpoint " + folder.root() + " draws one)");
                            } catch (Plots.NoFontsException e) {
                                // no fonts: no vector grid can be drawn in this run; an older latest.png would
                                // pass for this step's
                                boolean stale = Files.deleteIfExists(folder.latestGrid());
                                if (!gridsMissing) {
                                    gridsMissing = true;
                                    progress.note("warning     sample grids not drawn from step " + done
                                            + (stale ? " (the older " + folder.relative(folder.latestGrid())
                                            + " removed)" : "") + ": " + e.getMessage());
                                }
                            } catch (RuntimeException e) {
                                // a picture that cannot be drawn must not stop the training (the checkpoint of
                                // this step is written already)
                                progress.note("warning     the step-" + done + " grid was not drawn: "
                                        + e.getMessage());
                            } finally {
                                synchronized (stopLock) {                 // no interrupt reaches the saves below
                                    inGrid = false;
                                    Thread.interrupted();
                                }
                            }
                            if (drawn != null) {
                                latestGrid[0] = drawn;
                                run = run.withResults(run.results().withLatestGrid(latestGrid[0]));
                                save(run, folder);
                            }
                        }
                        if (held != null) {
                            if (held < best[0]) {                 // before the CSV: its minimum never outruns the file
                                saveBest(trainer, folder, extraMeta, held);
                                best[0] = held;
                                progress.note(String.format(Locale.ROOT, "best        held-out loss %.4f at step %d: "
                                        + "%s", held, done, folder.relative(folder.bestCheckpoint())));
                            }
                            writeLosses(folder, losses, heldLosses, progress::note);
                            run = run.withResults(run.results().withHeldOutLoss(held, done));
                            save(run, folder);
                        }

                    }
                } catch (RuntimeException | IOException e) {
                    save(run.withStatus("failed"), folder);
                    throw e;
                }
                if (interrupted) {
                    return 130;                                       // 128 + SIGINT, as shells report it
                }
                run = run.withStatus("complete").withResults(results(total, first, losses,
                        previousWall + seconds(wallStart), previousTrain + trainSeconds[0], trainSeconds[0],
                        opts.batch(), latestCkpt[0], latestGrid[0], run.results().metrics(),
                        run.results().metricsStep(), run.results().heldOutLoss(),
                        run.results().heldOutLossStep()));
                save(run, folder);                     // the caller's finishLoop then lets a shutdown hook go on
                RunJson.Results r = run.results();
                o.printf(Locale.ROOT, "done        %d step%s, final loss %.4f (mean of the last %d: 10 %% of the "
                        + "steps), %.1f ms/step, %.0f %s, wall %s%s%n", total, total == 1 ? "" : "s", r.finalLoss(),
                        finalLossWindow(total),
                        r.msPerStep(), r.imagesPerSecond(), imageShape != null ? "images/s" : "samples/s",
                        Progress.clock(r.wallSeconds()), resume ? " (all sessions)" : "");
                o.println("run         " + folder.root());
                o.flush();
                return 0;
            }
        }
    }

    /** Ends the training loop: a waiting shutdown hook may go on (the final status is saved). */
    private void finishLoop(PrintWriter o) {
        inLoop = false;
        o.flush();
        loopDone.countDown();
        Main.FINISHING.remove(loopDone);
    }

    /** Ranges of the means and scales, for the log. */
    static String summary(Standardization s) {
        double[] m = s.mean();
        double[] d = s.std();
        return String.format(Locale.ROOT, "means %.3g .. %.3g, stds %.3g .. %.3g", Arrays.stream(m).min().orElse(0),
                Arrays.stream(m).max().orElse(0), Arrays.stream(d).min().orElse(0), Arrays.stream(d).max().orElse(0));
    }

    /** Whether some feature's mean or scale is more than 10x off unit scale. */
    static boolean far(Standardization s) {
        for (int j = 0; j < s.features(); j++) {
            double m = Math.abs(s.mean()[j]);
            double d = s.std()[j];
            if (m > 10 || d > 10 || d < 0.1) {
                return true;
            }
        }
        return false;
    }

    /**
     * Restores the latest checkpoint; when it is unreadable, names the newest intact step checkpoint. A training
     * configuration that differs from the checkpoint's in more than the total step count (and the micro-batch, which
     * changes no result) is refused: the command line cannot change it on a resume, so a difference means run.json
     * was edited (an adversarial trial resumed at lr 0.5 instead of the checkpoint's 0.001 without a word).
     */
    private static void restore(Trainer trainer, RunFolder folder) throws IOException {
        TrainingConfig stored = null;
        try {
            stored = Checkpoint.readInfo(folder.latestCheckpoint()).training();
        } catch (IOException | RuntimeException e) {
            // unreadable: the restore below names the newest intact checkpoint
        }
        TrainingConfig mine = trainer.config();
        if (stored != null) {
            String differs = stored.learningRate() != mine.learningRate() ? "lr " + stored.learningRate() + " vs "
                    + mine.learningRate()
                    : stored.minLearningRate() != mine.minLearningRate() ? "min-lr " + stored.minLearningRate()
                    + " vs " + mine.minLearningRate()
                    : stored.warmupSteps() != mine.warmupSteps() ? "warm-up " + stored.warmupSteps() + " vs "
                    + mine.warmupSteps()
                    : !stored.adamw().equals(mine.adamw()) ? "AdamW " + stored.adamw() + " vs " + mine.adamw()
                    : stored.maxGradNorm() != mine.maxGradNorm() ? "gradient clip " + stored.maxGradNorm() + " vs "
                    + mine.maxGradNorm()
                    : !java.util.Objects.equals(stored.ema(), mine.ema()) ? "EMA " + stored.ema() + " vs " + mine.ema()
                    : stored.labelDropout() != mine.labelDropout() ? "label dropout " + stored.labelDropout()
                    + " vs " + mine.labelDropout()
                    : stored.objective() != mine.objective() ? "objective " + stored.objective() + " vs "
                    + mine.objective()
                    : null;
            if (differs != null) {
                throw new IllegalArgumentException("--resume: " + folder.relative(folder.latestCheckpoint())
                        + " was trained with other settings than run.json holds (" + differs + ", checkpoint vs "
                        + "run.json); was run.json edited? A resumed run keeps its configuration");
            }
        }
        try {
            trainer.restore(folder.latestCheckpoint());
        } catch (IOException | RuntimeException e) {
            if (e instanceof org.diffusion4j.training.CheckpointException
                    && String.valueOf(e.getMessage()).contains("but the model's configuration is")) {
                // the model was built from run.json: every checkpoint of the run disagrees with it alike
                throw new IllegalArgumentException("--resume: the model run.json describes differs from the one "
                        + folder.relative(folder.latestCheckpoint()) + " holds (" + Main.reason(e) + "); was "
                        + "run.json edited? A resumed run keeps its configuration", e);
            }
            String intact = newestIntactCheckpoint(folder);
            throw new IllegalArgumentException("--resume: " + folder.latestCheckpoint() + " cannot be read ("
                    + Main.reason(e) + "); " + (intact != null ? "the newest intact checkpoint is " + intact
                    + ": copy it over " + folder.relative(folder.latestCheckpoint()) + " to resume from it"
                    : "no intact step-N checkpoint was found"), e);
        }
    }

    /** The run-relative path of the highest-numbered step-N checkpoint whose header reads, or null. */
    static String newestIntactCheckpoint(RunFolder folder) throws IOException {
        if (!Files.isDirectory(folder.checkpoints())) {
            return null;
        }
        List<Path> steps = new ArrayList<>();
        try (Stream<Path> st = Files.list(folder.checkpoints())) {
            st.filter(p -> p.getFileName().toString().matches("step-\\d{1,18}\\.safetensors")).forEach(steps::add);
        }
        // by step number, not by name: step-1000000 comes after step-999999
        steps.sort(java.util.Comparator.comparingLong((Path p) -> Long.parseLong(p.getFileName().toString()
                .replaceAll("\\D", ""))).reversed());
        for (Path p : steps) {
            try {
                if (Checkpoint.readInfo(p).hasOptimizer()) {       // a training checkpoint, not a weights-only file
                    return folder.relative(p);
                }
            } catch (IOException | RuntimeException ignored) {
                // damaged too: try an older one
            }
        }
        return null;
    }

    private static double nz(double v) {
        return Double.isFinite(v) ? v : 0;
    }

    private static double seconds(long start) {
        return (System.nanoTime() - start) / 1e9;
    }

    private static double meanLoss(List<double[]> losses, int count) {
        double s = 0;
        int n = Math.max(1, Math.min(count, losses.size()));
        for (int i = losses.size() - n; i < losses.size(); i++) {
            s += losses.get(i)[1];
        }
        return s / n;
    }

    /**
     * How many of the last steps the reported final loss averages: 10 % of the run's steps, 1 to 1000 (the same for
     * a resumed run as for an uninterrupted one: the losses of earlier sessions come back from loss.csv).
     */
    static int finalLossWindow(long runSteps) {
        return (int) Math.max(1, Math.min(1000, runSteps / 10));
    }

    private static RunJson.Results results(long steps, long first, List<double[]> losses, double wall,
                                           double trainTotal, double trainSession, int batch, String ckpt,
                                           String grid, Map<String, Double> metrics, Long metricsStep,
                                           Double heldOut, Long heldOutStep) {
        long session = steps - first;
        int tail = finalLossWindow(steps);
        double msPerStep = session > 0 ? trainSession * 1000 / session : Double.NaN;
        double ips = session > 0 ? session * (double) batch / trainSession : Double.NaN;
        return new RunJson.Results(steps, wall, trainTotal, meanLoss(losses, tail), ips, msPerStep, ckpt, grid,
                metrics == null ? new LinkedHashMap<>() : metrics, metricsStep, heldOut, heldOutStep);
    }

    // ---------------------------------------------------------------- options

    /** {@code --model auto}: DiT for images, the MLP for vectors (run.json records the choice). */
    static final String AUTO_MODEL = "auto";

    /** The options as given on the command line (with defaults). */
    private RunJson.TrainOptions given() {
        String obj = objective.trim().toLowerCase(Locale.ROOT);
        String sched = schedule != null ? schedule : obj.equals("flow") ? "rf" : "linear";
        long wu = warmup != null ? warmup : Math.min(1000, steps / 10);
        double min = minLr != null ? minLr : lr / 100;
        String smp = sampler != null ? sampler : Sampling.defaultSampler(objective(obj).prediction());
        return new RunJson.TrainOptions(data == null ? null : data.toAbsolutePath().normalize().toString(),
                model.trim().toLowerCase(Locale.ROOT), hidden, depth, heads, patch, blocks, obj, sched, timeSampler,
                lossWeight, steps, batch, lr, min, wu, weightDecay, ema, gradClip, cond, labelDropout, seed, heldOut,
                resolution, DataLoading.parseChannels(channels), checkpointEvery, sampleEvery, sampleSteps, smp, guidance,
                randomFlip, standardize, labelColumn, microBatch == null ? 0 : microBatch,
                initFrom == null ? null : initFrom.toAbsolutePath().normalize().toString(), heldOutLossEvery,
                keepCheckpoints);
    }

    /** The option names of the record components ({@code labelDropout} ↔ {@code --label-dropout}). */
    static String optionName(String component) {
        StringBuilder b = new StringBuilder("--");
        for (char c : component.toCharArray()) {
            if (Character.isUpperCase(c)) {
                b.append('-').append(Character.toLowerCase(c));
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    /**
     * The stored options with the resumable ones taken from the command line; any other option given explicitly
     * with a value different from the stored one is refused.
     */
    private RunJson.TrainOptions mergeForResume(RunJson.TrainOptions stored, RunJson.TrainOptions cli,
                                                boolean fingerprinted) {
        CommandLine.ParseResult pr = spec.commandLine().getParseResult();
        Object[] values = new Object[RunJson.TrainOptions.class.getRecordComponents().length];
        RecordComponent[] comps = RunJson.TrainOptions.class.getRecordComponents();
        for (int i = 0; i < comps.length; i++) {
            String name = optionName(comps[i].getName());
            Object mine;
            Object theirs;
            try {
                mine = comps[i].getAccessor().invoke(cli);
                theirs = comps[i].getAccessor().invoke(stored);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
            boolean explicit = pr.hasMatchedOption(name);
            if (name.equals("--data")) {
                // data moved elsewhere: taken when its fingerprint (checked once loaded) is the run's
                if (explicit && !java.util.Objects.equals(mine, theirs) && !fingerprinted) {
                    throw new IllegalArgumentException("--resume: --data " + mine + " differs from the run's "
                            + theirs + " (run.json, which has no fingerprint of the data to compare with)");
                }
                values[i] = explicit ? mine : theirs;
            } else if (name.equals("--model") && AUTO_MODEL.equals(mine)) {
                values[i] = theirs;                                   // auto: what the run chose
            } else if (explicit && RESUMABLE.contains(name)) {
                values[i] = mine;
            } else if (explicit && !java.util.Objects.equals(mine, theirs)) {
                Object shown = name.equals("--channels") && Integer.valueOf(ImageFolder.AUTO_CHANNELS).equals(theirs)
                        ? "auto" : theirs;
                throw new IllegalArgumentException("--resume: " + name + " " + mine + " conflicts with the run's "
                        + shown + " (run.json); a resumed run keeps its configuration (only --steps, --held-out-loss-every, --keep-checkpoints, "
                        + "--micro-batch, --threads, --backend and the checkpoint and sample-grid options may change)");
            } else {
                values[i] = theirs;
            }
        }
        return RunJson.TrainOptions.ofComponents(values);
    }

    /** The divisors of {@code n}, for error messages (the 12 smallest and {@code n}). */
    private static String divisors(int n) {
        java.util.List<String> d = new java.util.ArrayList<>();
        for (int i = 1; i < n && d.size() <= 12; i++) {
            if (n % i == 0) {
                d.add(Integer.toString(i));
            }
        }
        if (d.size() > 12) {
            d.set(12, "...");
        }
        d.add(Integer.toString(n));
        return String.join(", ", d);
    }

    private static void validate(RunJson.TrainOptions o, boolean resumed) {
        if (!o.model().equals(Models.MLP) && !o.model().equals(Models.DIT) && !o.model().equals(AUTO_MODEL)) {
            throw new IllegalArgumentException("--model must be auto, dit or mlp, got '" + o.model() + "'");
        }
        objective(o.objective());
        positive("--steps", o.steps());
        positive("--batch", o.batch());
        if (o.microBatch() < 0) {
            throw new IllegalArgumentException("--micro-batch must be >= 1 (or 0: the whole batch), got "
                    + o.microBatch());
        }
        if (o.microBatch() > o.batch() || (o.microBatch() > 0 && o.batch() % o.microBatch() != 0)) {
            throw new IllegalArgumentException("--micro-batch must divide --batch " + o.batch() + ", got "
                    + o.microBatch() + " (divisors: " + divisors(o.batch()) + ")");
        }
        positive("--hidden", o.hidden());
        positive("--depth", o.depth());
        positive("--heads", o.heads());
        positive("--patch", o.patch());
        positive("--blocks", o.blocks());
        if (o.hidden() > 65536) {
            throw new IllegalArgumentException("--hidden must be <= 65536, got " + o.hidden());
        }
        if (o.resolution() < 1 || o.resolution() > DataLoading.MAX_RESOLUTION) {
            throw new IllegalArgumentException("--resolution must be in [1, " + DataLoading.MAX_RESOLUTION
                    + "], got " + o.resolution());
        }
        if (o.channels() != 1 && o.channels() != 3 && o.channels() != org.diffusion4j.io.ImageFolder.AUTO_CHANNELS) {
            throw new IllegalArgumentException("--channels must be auto, 1 or 3, got " + o.channels());
        }
        if (!(o.labelDropout() >= 0 && o.labelDropout() < 1)) {           // NaN too
            throw new IllegalArgumentException("--label-dropout must be in [0, 1), got " + o.labelDropout());
        }
        positive("--checkpoint-every", o.checkpointEvery());
        positive("--sample-steps", o.sampleSteps());
        if (o.keepCheckpoints() != null && o.keepCheckpoints() < 0) {
            throw new IllegalArgumentException("--keep-checkpoints must be >= 0 (0: keep every one), got "
                    + o.keepCheckpoints());
        }
        if (o.heldOutLossEvery() < 0) {
            throw new IllegalArgumentException("--held-out-loss-every must be >= 0 (0: none), got "
                    + o.heldOutLossEvery());
        }
        if (o.sampleEvery() < 0) {
            throw new IllegalArgumentException("--sample-every must be >= 0, got " + o.sampleEvery());
        }
        if (!(o.lr() > 0 && o.lr() < 1)) {
            throw new IllegalArgumentException("--lr must be in (0, 1), got " + o.lr());
        }
        // a run stored before this check may hold a floor above the peak: it trained with min(floor, peak)
        if (!(o.minLr() >= 0 && (resumed || o.minLr() <= o.lr()))) {
            throw new IllegalArgumentException("--min-lr must be in [0, --lr = " + o.lr() + "], got " + o.minLr());
        }
        if (!(o.guidance() >= 0 && Double.isFinite(o.guidance()))) {
            throw new IllegalArgumentException("--guidance must be finite and >= 0, got " + o.guidance());
        }
        if (!(o.ema() == 0 || (o.ema() > 0 && o.ema() < 1))) {
            throw new IllegalArgumentException("--ema must be 0 (none) or in (0, 1), got " + o.ema());
        }
        if (!(o.heldOut() > 0 && o.heldOut() < 1)) {
            throw new IllegalArgumentException("--held-out must be in (0, 1), got " + o.heldOut());
        }
        if (o.warmup() < 0 || o.warmup() > o.steps()) {
            throw new IllegalArgumentException("--warmup must be in [0, --steps = " + o.steps() + "], got "
                    + o.warmup());
        }
        Sampling.sampler(o.sampler());
    }

    private static void positive(String name, long v) {
        if (v < 1) {
            throw new IllegalArgumentException(name + " must be >= 1, got " + v);
        }
    }

    static TrainingConfig.Objective objective(String s) {
        return switch (s.trim().toLowerCase(Locale.ROOT)) {
            case "flow" -> TrainingConfig.Objective.FLOW;
            case "eps", "epsilon" -> TrainingConfig.Objective.EPSILON;
            case "v" -> TrainingConfig.Objective.V;
            case "x0", "sample" -> TrainingConfig.Objective.X0;
            default -> throw new IllegalArgumentException("--objective must be flow, eps, v or x0, got '" + s + "'");
        };
    }

    private static TrainingConfig trainingConfig(RunJson.TrainOptions o) {
        try {
            return trainingConfigOf(o);
        } catch (IllegalArgumentException e) {
            if (e.getMessage() != null && e.getMessage().startsWith("an EPSILON target is undefined at zero SNR")) {
                throw new IllegalArgumentException("--objective eps is undefined where the schedule reaches pure noise "
                        + "(alpha = 0): --schedule " + (o.schedule() == null ? "(default)" : o.schedule())
                        + " does at t = 1, and --time-sampler "
                        + o.timeSampler() + " reaches it; use --objective v or x0, or keep t below 1 (e.g. "
                        + "--time-sampler uniform:0:0.99; sampling then starts there too)", e);
            }
            throw e;
        }
    }

    private static TrainingConfig trainingConfigOf(RunJson.TrainOptions o) {
        Ema.Schedule e = o.ema() == 0 ? null : new Ema.Schedule(o.ema(), 0.0, 1.0, 2.0 / 3.0, 0);
        return new TrainingConfig(o.seed(), o.batch(), o.steps(), o.lr(), o.warmup(), Math.min(o.minLr(), o.lr()),
                AdamW.Hyper.defaults().withWeightDecay(o.weightDecay()), o.gradClip(), e, objective(o.objective()),
                o.schedule(), o.timeSampler(), o.lossWeight(), o.cond() ? o.labelDropout() : 0.0, o.randomFlip(),
                o.microBatch() == o.batch() ? 0 : o.microBatch());
    }

    private static Record modelConfig(RunJson.TrainOptions o, Dataset train, long[] imageShape, boolean autoModel,
                                      boolean patchGiven) {
        String dit = autoModel ? "a DiT (what --model auto picks for images)" : "--model dit";
        if (o.randomFlip() && (imageShape == null || !o.model().equals(Models.DIT))) {
            throw new IllegalArgumentException("--random-flip mirrors images: it needs image data and --model dit"
                    + (imageShape == null ? "; " + o.data() + " holds vectors " + Arrays.toString(train.sampleShape())
                    : ""));
        }
        if (o.model().equals(Models.MLP)) {
            return MlpDenoiser.Config.of(train.sampleSize(), o.hidden(), o.blocks())
                    .withClasses(o.cond() ? train.numClasses() : 0);
        }
        if (imageShape == null) {
            throw new IllegalArgumentException(dit + " needs images; " + o.data() + " holds vectors "
                    + Arrays.toString(train.sampleShape()) + " (use --model mlp)");
        }
        if (imageShape[1] != imageShape[2]) {
            boolean channelsLast = imageShape[2] <= 4 && imageShape[2] < imageShape[1];
            throw new IllegalArgumentException(dit + " needs square images, got " + imageShape[1] + " x "
                    + imageShape[2] + (channelsLast ? " (an image array must be channels-first [N, C, H, W]; this "
                    + "looks like channels-last [N, H, W, C]: transpose it, e.g. numpy x.transpose(0, 3, 1, 2); "
                    + "sequences [N, T, F] are not images: flatten them to vectors [N, T*F])"
                    : "; --model mlp trains on them flattened"));
        }
        int size = (int) imageShape[1];
        if (o.patch() < 1 || size % o.patch() != 0) {
            List<Integer> fits = new ArrayList<>();
            for (int p = 2; p <= Math.min(8, size); p++) {
                if (size % p == 0) {
                    fits.add(p);
                }
            }
            throw new IllegalArgumentException("--patch " + o.patch() + (patchGiven ? "" : " (the default)")
                    + " must divide the image size " + size + (fits.isEmpty() ? "; " + size + " has no divisor in 2.."
                    + "8: give --patch 1 (a token per pixel), resize the images (--resolution for an image folder) or "
                    + "use --model mlp"
                    : "; give --patch " + fits.stream().map(String::valueOf).collect(
                    java.util.stream.Collectors.joining(" or "))));
        }
        int k = o.cond() ? train.numClasses() : 0;
        DiT.Config base = DiT.Config.of(size, (int) imageShape[0], o.patch(), o.hidden(), o.depth(), o.heads(), k);
        return new DiT.Config(base.imageSize(), base.channels(), base.patch(), base.hidden(), base.depth(),
                base.heads(), base.mlpRatio(), k, o.cond() ? o.labelDropout() : 0.0, base.frequencyDim(),
                base.timeScale());
    }

    // ---------------------------------------------------------------- losses

    private static List<double[]> readLosses(Path csv, long upTo) throws IOException {
        List<double[]> out = new ArrayList<>();
        if (!Files.isRegularFile(csv)) {
            return out;
        }
        for (String line : Files.readAllLines(csv, StandardCharsets.UTF_8)) {
            String[] p = line.split(",");
            if (p.length != 2 || !Character.isDigit(p[0].trim().isEmpty() ? 'x' : p[0].trim().charAt(0))) {
                continue;
            }
            try {
                long step = Long.parseLong(p[0].trim());
                if (step <= upTo) {
                    out.add(new double[] {step, Double.parseDouble(p[1].trim())});
                }
            } catch (NumberFormatException e) {
                // a damaged line: skip it (the curve is informational)
            }
        }
        return out;
    }

    /** Whether this run already said that loss.png cannot be drawn (no fonts): said once, not at every update. */
    private boolean lossPlotMissing;

    /** Whether this run already said that its vector grids cannot be drawn (no fonts). */
    private boolean gridsMissing;

    private void writeLosses(RunFolder folder, List<double[]> losses, List<double[]> heldLosses,
                             java.util.function.Consumer<String> note) throws IOException {
        long[] steps = new long[losses.size()];
        double[] values = new double[losses.size()];
        writeCsv(folder.lossCsv(), "step,loss", losses, steps, values);
        long[] heldSteps = new long[heldLosses.size()];
        double[] held = new double[heldLosses.size()];
        if (!heldLosses.isEmpty()) {
            writeCsv(folder.heldOutLossCsv(), "step,held_out_loss", heldLosses, heldSteps, held);
        }
        if (!losses.isEmpty()) {
            try {
                Plots.lossCurve(folder.lossPng(), steps, values, heldSteps, held, (held.length > 0
                        ? "training and held-out loss (" : "training loss (") + folder.root().getFileName() + ")");
            } catch (IOException | Plots.NoFontsException e) { // a picture: the run goes on (loss.csv holds the numbers)
                boolean stale = Files.deleteIfExists(folder.lossPng());   // never an out-of-date curve left behind
                if (!lossPlotMissing) {
                    lossPlotMissing = true;
                    note.accept("warning     loss.png not drawn" + (stale ? " (the older one removed)" : "") + ": "
                            + e.getMessage() + "; loss.csv holds the numbers");
                }
            }
        }
    }

    private static void writeCsv(Path csv, String header, List<double[]> rows, long[] steps, double[] values)
            throws IOException {
        StringBuilder b = new StringBuilder(header).append('\n');
        for (int i = 0; i < rows.size(); i++) {
            steps[i] = (long) rows.get(i)[0];
            values[i] = rows.get(i)[1];
            b.append(steps[i]).append(',').append(values[i]).append('\n');
        }
        AtomicFiles.writeBytes(csv, b.toString().getBytes(StandardCharsets.UTF_8));
    }

    /**
     * The held-out data as the model sees it: flattened for an MLP on images, standardised like the training split.
     */
    private static Dataset heldOutForLoss(DataLoading.Loaded loaded, RunJson.TrainOptions opts, long[] imageShape,
                                          Standardization scaling, int numClasses,
                                          java.util.function.Consumer<String> note) {
        Dataset h = loaded.heldOut();
        if (opts.model().equals(Models.MLP) && imageShape != null) {
            h = DataLoading.flatten(h);
        }
        h = scaling != null ? scaling.apply(h) : h;
        if (numClasses > 0 && h.hasLabels()) {
            int[] labels = h.labels();
            int[] keep = java.util.stream.IntStream.range(0, h.size()).filter(i -> labels[i] < numClasses).toArray();
            if (keep.length < h.size()) {
                note.accept((h.size() - keep.length) + " held-out sample(s) belong to classes the model does not "
                        + "have (>= " + numClasses + "): left out of the held-out loss");
                if (keep.length == 0) {
                    return null;
                }
                h = h.subset(keep);
            }
        }
        return h;
    }

    /** Metadata of {@code checkpoints/best.safetensors}: the held-out loss that made it the best. */
    static final String KEY_HELD_OUT_LOSS = "d4j.held_out_loss";

    /** Writes {@code checkpoints/best.safetensors}: the trainer now, with its held-out loss in the metadata. */
    private static void saveBest(Trainer trainer, RunFolder folder, Map<String, String> extraMeta, double loss)
            throws IOException {
        Map<String, String> meta = new LinkedHashMap<>(extraMeta);
        meta.put(KEY_HELD_OUT_LOSS, Double.toString(loss));
        Checkpoint.save(trainer, folder.bestCheckpoint(), meta);
    }

    /**
     * On resuming: the lowest held-out loss of the curve so far (the threshold a new best must beat), with
     * {@code best.safetensors} kept only when it is that measurement's checkpoint (its step within the resumed run
     * and its loss that minimum); one from steps the resumed run drops (a stop after it, before the next
     * checkpoint), damaged or of another value is removed with a note, so the file never claims a best the curve
     * does not show.
     */
    private static double reconcileBest(RunFolder folder, long completed, List<double[]> heldLosses,
                                        java.util.function.Consumer<String> note) throws IOException {
        double min = Double.POSITIVE_INFINITY;
        long at = -1;
        for (double[] h : heldLosses) {
            if (h[1] < min) {
                min = h[1];
                at = (long) h[0];
            }
        }
        Path file = folder.bestCheckpoint();
        if (!Files.exists(file)) {
            if (at >= 0) {
                note.accept(folder.relative(file) + " is missing: it is written again when a held-out loss beats the "
                        + "run's lowest so far (" + min + " at step " + at + ")");
            }
            return min;
        }
        String why;
        try {
            Checkpoint.Info info = Checkpoint.readInfo(file);
            String v = info.metadata().get(KEY_HELD_OUT_LOSS);
            why = info.step() > completed ? "is from step " + info.step() + ", past the resumed step " + completed
                    : v == null || Double.parseDouble(v) != min ? "does not hold the lowest held-out loss of the "
                    + "curve (" + min + " at step " + at + ")" : null;
        } catch (IOException | RuntimeException e) {
            why = "cannot be read (" + e.getMessage() + ")";
        }
        if (why != null) {
            Files.delete(file);
            note.accept(folder.relative(file) + " " + why + ": removed; it is written again when a held-out loss "
                    + "beats the run's lowest so far" + (at >= 0 ? " (" + min + " at step " + at + ")" : ""));
        }
        return min;
    }

    private static Double heldOutLoss(Trainer trainer, Dataset heldOut, long done, List<double[]> losses,
                                      Progress progress) {
        int n = Math.min(HELD_OUT_LOSS_SAMPLES, heldOut.size());
        try {
            double v = trainer.heldOutLoss(heldOut, HELD_OUT_LOSS_SAMPLES);
            int count = Math.min(50, losses.size());
            progress.note(String.format(Locale.ROOT, "held-out    loss %.4f at step %d (%d held-out sample%s; "
                    + "training loss %.4f, mean of the last %s)", v, done, n, n == 1 ? "" : "s",
                    meanLoss(losses, count), count == 1 ? "step" : count + " steps"));
            return v;
        } catch (RuntimeException e) {
            progress.note("warning     the step-" + done + " held-out loss was not measured: " + e.getMessage());
            return null;
        }
    }

    // ---------------------------------------------------------------- sample grids

    /** Points in the scatter plot of a vector run's sample grid. */
    static final int VECTOR_GRID = 512;

    /** Up to {@link #VECTOR_GRID} training rows spread over the split (in the data's units), drawn behind the grid. */
    static float[] gridReference(Dataset train) {
        int m = Math.min(VECTOR_GRID, train.size());
        int[] rows = new int[m];
        for (int i = 0; i < m; i++) {
            rows[i] = (int) ((long) i * train.size() / m);
        }
        return train.subset(rows).toArray();
    }

    /** Samples from the EMA weights (or the raw ones without EMA) into a second model and writes a grid. */
    static final class GridMaker {
        private final Backend be;
        private final Trainer trainer;
        private final DenoiserModel gridModel;
        private final Prediction prediction;
        private final Sampler sampler;
        private final SamplingGrid grid;
        private final RunJson.TrainOptions opts;
        private final long[] imageShape;
        private final int classes;
        private final Standardization scaling;
        private final List<String> classNames;
        private final List<String> featureNames;
        private final float[] reference;

        GridMaker(Backend be, Trainer trainer, DenoiserModel gridModel, TrainingConfig tc, RunJson.TrainOptions opts,
                  long[] imageShape, Standardization scaling, List<String> classNames, List<String> featureNames,
                  float[] reference) {
            this.scaling = scaling;
            this.reference = reference;
            this.classNames = classNames;
            this.featureNames = featureNames;
            this.be = be;
            this.trainer = trainer;
            this.gridModel = gridModel;
            this.prediction = tc.objective().prediction();
            this.sampler = Sampling.sampler(opts.sampler());
            this.grid = Sampling.grid(tc, opts.sampler(), opts.sampleSteps());
            this.opts = opts;
            this.imageShape = imageShape;
            this.classes = gridModel.numClasses();
        }

        /** Writes the grid of step {@code step} and returns its path relative to the run folder. */
        String write(RunFolder folder, long step) throws IOException {
            Map<String, Parameter> dst = gridModel.module().namedParameters();
            Map<String, Tensor> ema = trainer.ema() == null ? null : trainer.ema().averages();
            for (Map.Entry<String, Parameter> e : trainer.model().module().namedParameters().entrySet()) {
                Tensor src = ema != null ? ema.get(e.getKey()) : e.getValue().value();
                be.copy(src, dst.get(e.getKey()).value());
            }
            // a column per class (as sample draws it), GRID_COLUMNS rows; vectors: a scatter of ~512, cheap to draw
            // (at most VECTOR_GRID points however many classes: the first VECTOR_GRID classes then)
            // (images: the first GRID_MAX_CLASSES classes, sampled in batches of at most GRID_BATCH)
            int shown = Math.min(classes, GRID_MAX_CLASSES);
            int n = imageShape != null ? (classes > 0 ? shown * GRID_COLUMNS : GRID_COLUMNS * GRID_COLUMNS)
                    : classes > 0 ? Math.min(VECTOR_GRID, classes) * Math.max(1, VECTOR_GRID / classes) : VECTOR_GRID;
            int columns = classes > 0 ? (imageShape != null ? shown : classes) : GRID_COLUMNS;
            int cycle = imageShape != null ? shown : classes;
            double g = classes > 0 && opts.labelDropout() > 0 ? opts.guidance() : 1.0;
            Sampling.Request req = new Sampling.Request(n, opts.seed(), classes > 0 ? i -> i % cycle : null,
                    g, 0.0, Math.min(n, GRID_BATCH))
                    .withThreshold(Sampling.threshold(null, prediction, imageShape != null));  // as sample
            float[] x = Sampling.sample(be, gridModel, prediction, sampler, grid, req, null);
            if (scaling != null) {
                Sampling.toDataUnits(scaling, x);
            }
            Path file = imageShape == null ? folder.samples().resolve(String.format(Locale.ROOT, "step-%06d.png",
                    step)) : folder.grid(step);
            // small images drawn at least 64 pixels a side, so that a 16 x 16 grid is not a thumbnail
            int zoom = imageShape == null ? 1 : (int) Math.max(1, Math.min(8, 64 / Math.max(imageShape[1],
                    imageShape[2])));
            int[] labels = null;
            if (classes > 0) {
                labels = new int[n];
                for (int i = 0; i < n; i++) {
                    labels[i] = i % classes;
                }
            }
            boolean scatter = imageShape == null && gridModel.sampleShape()[0] < Plots.SERIES_MIN_DIM;
            Plots.samples(file, x, n, imageShape, gridModel.sampleShape(), columns, scatter ? reference : null, zoom,
                    new Plots.VectorLabels(labels, classNames, featureNames));
            RunFolder.copyAtomically(file, folder.latestGrid());
            return folder.relative(file);
        }
    }
}
