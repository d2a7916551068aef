package org.diffusion4j.cli;

import org.diffusion4j.io.Idx;
import org.diffusion4j.io.Npy;
import org.diffusion4j.sampling.GridSpacing;
import org.diffusion4j.sampling.SamplingGrid;
import org.diffusion4j.sampling.Thresholding;
import org.diffusion4j.schedule.Prediction;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.function.IntUnaryOperator;

/**
 * {@code sample}: draws samples from a checkpoint and writes a PNG (a grid of images, or a scatter plot of vectors)
 * and optionally the raw samples as NPY or IDX. Sample {@code i} depends only on {@code --seed}, {@code i}, its
 * class and the sampling settings (not on {@code --n}; see {@link Sampling}). For a class-conditional model sample
 * {@code i} has class {@code i mod K} (so the grid's column {@code c} shows class {@code c}) unless {@code --class}
 * fixes one.
 */
@Command(name = "sample", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Sample from a checkpoint; writes a PNG grid and optionally the raw samples (.npy or .idx).")
final class SampleCommand implements Callable<Integer> {

    /** The largest --batch of sample and eval (every batch runs at this size: memory grows with it). */
    static final int MAX_BATCH = 8192;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--checkpoint", required = true, description = "a checkpoint file or a run folder (its latest)")
    Path checkpoint;

    @Option(names = "--n", defaultValue = "64", description = "number of samples (default: ${DEFAULT-VALUE})")
    int n;

    @Option(names = "--sampler", description = "one of " + Sampling.NAMES
            + " (default: flow-midpoint for flow models, dpmpp-2m otherwise)")
    String sampler;

    @Option(names = "--steps", defaultValue = "32", description = "sampler steps (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--grid", defaultValue = "auto", description = Sampling.GRID_DESCRIPTION)
    String grid;

    @Option(names = "--guidance", description = "classifier-free guidance scale, 1 = none (default: 2 for a "
            + "class-conditional model trained with label dropout, else 1)")
    Double guidance;

    @Option(names = "--guidance-rescale", defaultValue = "0", description = "guidance rescale phi in [0, 1] (Lin et "
            + "al. 2023, sec. 3.4; diffusers' guidance_rescale): pulls each guided output's standard deviation back "
            + "towards the conditional one's, against over-saturation at high --guidance; 0 = off (default)")
    double guidanceRescale;

    @Option(names = "--class", description = "sample only this class: a 0-based index or a class name (an image "
            + "folder's sub-folder, a CSV label, a Fashion-MNIST class); index:N or name:NAME when a name is also a "
            + "number")
    String classSpec;

    @Option(names = "--negative-class", description = "guide away from this class (an index or a name, as --class) "
            + "instead of away from the unconditional model: classifier-free guidance with this class's prediction in "
            + "place of the null class's, like diffusers' negative prompt; needs --guidance other than 1")
    String negativeSpec;

    @Mixin
    SamplerKnobs knobs;

    @Option(names = "--seed", defaultValue = "0", description = "noise seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--out", defaultValue = "samples.png", description = "PNG to write (default: ${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--save-raw", description = "also write the samples as .npy or .idx (float32, [n, ...shape]); "
            + "for a class-conditional model also x.labels.npy (int32 [n], the class of each row: i mod K, or --class) "
            + "and x.classes.json (their names)")
    Path saveRaw;

    @Option(names = "--save-images", paramLabel = "DIR", description = "image models: also write each sample as its "
            + "own PNG, DIR/00000.png, DIR/00001.png, ... (the class of sample i as in --save-raw); the folder is "
            + "created when missing")
    Path saveImages;

    @Option(names = "--columns", description = "grid columns (default: the number of classes, or a multiple of it "
            + "when the grid would be more than twice as tall as wide; sqrt(n) for unconditional models)")
    Integer columns;

    @Option(names = "--zoom", defaultValue = "1", description = "draw each pixel of an image grid as a zoom x zoom "
            + "square, 1 to 64 (default: ${DEFAULT-VALUE}; e.g. 3 to look at 28x28 images on a screen)")
    int zoom;

    @Option(names = "--weights", defaultValue = "auto", description = "auto (EMA when present), ema or raw "
            + "(default: ${DEFAULT-VALUE})")
    String weights;

    @Option(names = "--batch", defaultValue = "64", description = "samples per model batch (default: "
            + "${DEFAULT-VALUE}); every batch runs at this size, the last one padded, so that sample k is the same "
            + "for any --n; a smaller --batch is faster for a small --n but changes the samples' last bits")
    int batch;

    @Option(names = "--init", description = "start from this input instead of noise (image-to-image, SDEdit): a PNG "
            + "or JPEG for image models (resampled like training images; or an NPY [K, C, H, W] in [-1, 1]), a CSV or "
            + "NPY of rows for vector models, whose empty, NaN or NA cells are generated from the rest (imputation); "
            + "sample i starts from input i mod K")
    Path init;

    @Option(names = "--strength", description = "with --init: how much of it is replaced by noise, in (0, 1]; the "
            + "last strength x --steps steps run (diffusers' rule; default 0.8, or 1 when inpainting)")
    Double strength;

    @Option(names = "--mask", description = "with an image --init: inpaint, a PNG or JPEG whose white pixels are "
            + "generated and black ones kept (binarised at 50%% grey, applied to every channel); --sampler repaint "
            + "(10x the model calls) follows the kept region best")
    Path mask;

    @Option(names = "--trajectory", paramLabel = "FILE.png", description = "also draw how the first samples (up to "
            + Trajectory.MAX_ROWS + ", a row each) form: their states at up to " + Trajectory.MAX_COLUMNS + " evenly "
            + "spaced levels of the sampling, from the starting noise to the result (image models)")
    Path trajectory;

    @Mixin
    RuntimeOptions runtime;

    @Override
    public Integer call() throws IOException {
        PrintWriter o = spec.commandLine().getOut();
        Path png = requireWritable("--out", out, ".png");
        refuseNonPng("--out", png);
        Path trajPng = trajectory == null ? null : requireWritable("--trajectory", trajectory, ".png");
        if (trajPng != null) {
            refuseNonPng("--trajectory", trajPng);
            if (sameTarget(trajPng, png)) {
                throw new IllegalArgumentException("--trajectory " + trajectory + " is the --out file; give another "
                        + "name");
            }
        }
        Path raw = saveRaw == null ? null : requireWritable("--save-raw", saveRaw, null);
        if (raw != null && !lower(raw).endsWith(".npy") && !lower(raw).endsWith(".idx")) {
            throw new IllegalArgumentException("--save-raw must end in .npy or .idx, got " + saveRaw);
        }
        if (raw != null) {
            boolean npy = lower(raw).endsWith(".npy");
            refuseForeign("--save-raw", raw, npy ? NPY_MAGIC : IDX_MAGIC, npy ? "an NPY file" : "an IDX file");
            String name = raw.getFileName().toString();
            Path twin = raw.resolveSibling(name.substring(0, name.length() - 4) + (npy ? ".idx" : ".npy"));
            if (Files.exists(twin) && Files.exists(labelsFile(raw))) {
                // x.npy and x.idx share x.labels.npy / x.classes.json: rewriting them would relabel the other file
                throw new IllegalArgumentException("--save-raw " + saveRaw + ": " + twin.getFileName() + " beside it "
                        + "shares its labels file " + labelsFile(raw).getFileName() + ", which this would rewrite "
                        + "for the other file's samples; choose another name (or remove " + twin.getFileName() + ")");
            }
            Path labels = requireWritable("--save-raw", labelsFile(raw), ".npy");    // the labels beside it
            refuseForeign("--save-raw", labels, NPY_MAGIC, "an NPY file");
            Path classes = requireWritable("--save-raw", classesFile(raw), ".json");
            refuseForeign("--save-raw", classes, new byte[] {'['}, "a class-name list");
        }
        if (n < 1) {
            throw new IllegalArgumentException("--n must be >= 1, got " + n);
        }
        Path imagesDir = saveImages == null ? null : requireImageFolder(saveImages, n);
        if (batch < 1 || batch > MAX_BATCH) {
            throw new IllegalArgumentException("--batch must be in [1, " + MAX_BATCH + "], got " + batch);
        }
        if (zoom < 1 || zoom > 64) {
            throw new IllegalArgumentException("--zoom must be in [1, 64], got " + zoom);
        }
        if (!(guidanceRescale >= 0 && guidanceRescale <= 1)) {
            throw new IllegalArgumentException("--guidance-rescale must be in [0, 1], got " + guidanceRescale);
        }
        GridSpacing spacing = checkBeforeLoad(sampler, steps, grid, classSpec);
        if (init == null && (strength != null || mask != null)) {
            throw new IllegalArgumentException((strength != null ? "--strength" : "--mask") + " needs --init (the input"
                    + " to start from)");
        }
        if (strength != null && !(strength > 0 && strength <= 1)) {
            throw new IllegalArgumentException("--strength must be in (0, 1], got " + strength);
        }
        if (init != null) {
            EditInput.requireFile("--init", init);               // before the slow load
        }
        if (mask != null) {
            EditInput.requireFile("--mask", mask);
        }
        for (Path input : new Path[] {init, mask}) {
            if (input == null) {
                continue;
            }
            String what = input == init ? "--init" : "--mask";
            refuseSame("--out", png, what, input);
            if (trajPng != null) {
                refuseSame("--trajectory", trajPng, what, input);
            }
            if (raw != null) {
                refuseSame("--save-raw", raw, what, input);
                refuseSame("--save-raw", labelsFile(raw), what, input);
                refuseSame("--save-raw", classesFile(raw), what, input);
            }
        }
        if (n < batch) {
            o.println("note        --n " + n + " runs as one batch of " + batch + " padded with unused samples (so "
                    + "that sample k does not depend on --n); --batch " + n + " is faster, with samples that differ "
                    + "in their last bits");
        }
        long start = System.nanoTime();
        try (ModelSession s = ModelSession.open(checkpoint, runtime, weights)) {
            o.println("checkpoint  " + s.file + ": " + s.describe());
            long[] image = s.imageShape();
            if (image == null) {
                for (String opt : new String[] {"--zoom", "--columns"}) {
                    if (spec.commandLine().getParseResult().hasMatchedOption(opt)) {
                        o.println("note        " + opt + " shapes image grids; this model samples vectors (drawn as "
                                + "a scatter plot), so it is not used");
                    }
                }
            }
            int k = s.model().numClasses();
            Integer classLabel = classSpec == null ? null : s.classIndex(classSpec);
            Integer negative = null;
            if (negativeSpec != null) {
                try {
                    negative = s.classIndex(negativeSpec);
                } catch (IllegalArgumentException e) {        // its message names --class: say which option it was
                    throw new IllegalArgumentException(e.getMessage().replaceAll("--class\\b", "--negative-class"),
                            e);
                }
            }
            EditInput edit = init == null ? null : EditInput.read(init, mask, new EditInput.Target(
                    s.model().sampleShape(), image, s.standardization(), s.featureNames(), s.classNames(), k));
            if (edit != null) {
                o.println("init        " + edit.source());
                if (edit.mask() != null) {
                    o.printf(Locale.ROOT, "%s %.1f %% of the values generated, the rest kept%n",
                            image != null ? "inpainting " : "imputation ", 100 * edit.generated());
                }
                for (String note : edit.notes()) {
                    if (classLabel != null && note.startsWith("each sample has the class of its --init row")) {
                        o.println("note        --class " + classLabel + " for every sample, over the classes of the "
                                + "--init rows");
                        continue;
                    }
                    o.println("note        " + note);
                }
            }
            int cols = columns != null ? columns
                    : edit != null && edit.count() > 1 && edit.count() <= 16 && image != null ? edit.count()
                    : k > 0 && classLabel == null && edit == null ? classColumns(k, n)
                    : org.diffusion4j.io.ImageGrid.defaultColumns(n);
            if (cols < 1) {
                throw new IllegalArgumentException("--columns must be >= 1, got " + cols);
            }
            checkCount(s, n);
            if (trajPng != null && image == null) {
                throw new IllegalArgumentException("--trajectory draws images; this model samples vectors "
                        + java.util.Arrays.toString(s.model().sampleShape()));
            }
            if (trajPng != null) {                             // at most this large (a grid may have fewer steps)
                int tc = Math.min(Trajectory.MAX_COLUMNS, steps + 1);
                int tr = Math.min(Math.min(n, batch), Trajectory.MAX_ROWS);
                try {
                    org.diffusion4j.io.ImageGrid.checkSize((long) tr * tc, image[1], image[2], tc, 2, zoom);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("--trajectory: " + e.getMessage(), e);
                }
            }
            if (image != null) {                               // before the sampling, not after it
                org.diffusion4j.io.ImageGrid.checkSize(n, image[1], image[2], cols, 2, zoom);
            } else {
                Plots.requireFonts(png);                       // vectors are drawn as charts: fonts, before sampling
            }
            boolean defaultStrength = strength == null;
            double str = strength != null ? strength : edit != null && edit.mask() != null ? 1.0 : 0.8;
            Result r = run(s, sampler, steps, spacing, guidance, guidanceRescale, classLabel, seed, n, batch,
                    spec.commandLine().getErr(), o, edit, str, defaultStrength, negative, trajPng != null,
                    knobs.knobs());
            if (raw != null) {
                // labels first (or a stale labels file of an earlier run removed): never samples beside wrong labels
                if (r.labels() != null) {                      // row i is class labels[i] (i mod K without --class)
                    createParent(raw);
                    Npy.writeInt32(labelsFile(raw), r.labels(), n);
                } else {
                    Files.deleteIfExists(labelsFile(raw));
                    if (k > 0) {
                        o.println("labels      none written: some or all samples are unconditional (the model's "
                                + "null class)");
                    }
                }
                if (r.labels() != null && !s.classNames().isEmpty()) {  // the names of those numbers, for eval
                    org.diffusion4j.io.AtomicFiles.writeBytes(classesFile(raw), (org.diffusion4j.training.Checkpoint
                            .stringsJson(s.classNames()) + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
                } else {
                    Files.deleteIfExists(classesFile(raw));
                }
                long[] shape = image != null ? new long[] {n, image[0], image[1], image[2]}
                        : prepend(n, s.model().sampleShape());
                if (lower(raw).endsWith(".npy")) {
                    createParent(raw);
                    Npy.write(raw, r.samples(), shape);
                } else {
                    int[] dims = new int[shape.length];
                    for (int i = 0; i < shape.length; i++) {
                        dims[i] = Math.toIntExact(shape[i]);
                    }
                    createParent(raw);
                    Idx.write(raw, Idx.Array.ofF32(r.samples(), dims));
                }
            }
            if (imagesDir != null) {
                if (image == null) {
                    throw new IllegalArgumentException("--save-images writes images; this model samples vectors "
                            + java.util.Arrays.toString(s.model().sampleShape()) + " (use --save-raw)");
                }
                writeEach(imagesDir, r.samples(), n, image);
                o.println("images      " + n + " PNG" + (n == 1 ? "" : "s") + " in " + imagesDir + " ("
                        + imageName(0, n) + (n > 1 ? " .. " + imageName(n - 1, n) : "") + ")");
                long stale;
                try (var files = Files.list(imagesDir)) {
                    stale = files.map(f -> f.getFileName().toString()).filter(f -> f.matches("\\d{5,18}\\.png"))
                            .filter(f -> Long.parseLong(f.substring(0, f.length() - 4)) >= n).count();
                }
                if (stale > 0) {
                    o.println("note        " + stale + " PNG" + (stale == 1 ? "" : "s") + " of an earlier run (numbered "
                            + n + " and up) remain" + (stale == 1 ? "s" : "") + " in " + imagesDir + ": a folder-based "
                            + "metric would count " + (stale == 1 ? "it" : "them") + "; delete them or use an empty folder");
                }
            }
            createParent(png);
            Plots.samples(png, r.samples(), n, image, s.model().sampleShape(), cols, null, zoom,
                    new Plots.VectorLabels(r.labels(), s.classNames(), s.featureNames()));
            if (trajPng != null) {
                Trajectory t = r.trajectory();
                createParent(trajPng);
                Plots.samples(trajPng, t.values(), t.rows() * t.columns(), image, s.model().sampleShape(),
                        t.columns(), null, zoom, Plots.VectorLabels.NONE);
                o.println("trajectory  " + trajPng.toAbsolutePath().normalize() + " (samples 0.." + (t.rows() - 1)
                        + " by row, levels " + java.util.Arrays.toString(t.levels()) + " of " + r.steps()
                        + " by column)");
            }
            if (image != null && k > 0 && classLabel == null && edit == null && !s.classNames().isEmpty()
                    && cols == k) {
                o.println("columns     " + DataLoading.listNames(s.classNames(), 20, true));
            }
            o.printf(Locale.ROOT, "sampled     %d with %s, %d step%s%s%s, guidance %s%s%s, seed %d in %.1f s%n", n,
                    r.samplerName(), r.steps(), r.steps() == 1 ? "" : "s", gridNote(r.spacing()),
                    edit == null ? "" : String.format(Locale.ROOT, " from --init at strength %s", fmt(str)),
                    r.guidance() < 1e4 ? String.format(Locale.ROOT, "%.2f", r.guidance()) : fmt(r.guidance()),
                    guidanceRescale > 0 && r.guidance() != 1.0
                    ? String.format(Locale.ROOT, " (rescale %.2f)", guidanceRescale) : "",
                    (classLabel != null ? ", class " + classLabel + (s.classNames().isEmpty() ? ""
                            : " (" + DataLoading.showName(s.classNames().get(classLabel)) + ")") : "")
                    + (negative != null ? ", away from class " + negative + (s.classNames().isEmpty() ? ""
                            : " (" + DataLoading.showName(s.classNames().get(negative)) + ")") : ""), seed,
                    (System.nanoTime() - start) / 1e9);
            o.println("png         " + png);
            if (raw != null) {
                o.println("raw         " + raw.toAbsolutePath().normalize());
                if (r.labels() != null) {
                    o.println("labels      " + labelsFile(raw).toAbsolutePath().normalize() + " (int32, the class of "
                            + "each row)");
                }
            }
            o.flush();
            return 0;
        }
    }

    /** Each input row's class from --init ({@code k}, the null class, for an empty cell), or null. */
    private static int[] rowClasses(EditInput edit, int k, double labelDropout) {
        int[] rowClass = edit == null ? null : edit.labels();
        if (rowClass == null) {
            return null;
        }
        int[] mapped = rowClass.clone();
        for (int r = 0; r < mapped.length; r++) {
            if (mapped[r] < 0) {                                 // an empty label cell: the null class
                if (labelDropout == 0) {
                    throw new IllegalArgumentException("--init row " + (r + 1) + " has an empty class cell, but the "
                            + "model's null class was never trained (--label-dropout 0): give every row a class");
                }
                mapped[r] = k;
            }
        }
        return mapped;
    }

    /** A strength as typed: {@code 0.8}, {@code 1} (tiny ones as {@code 1.0E-300}). */
    private static String fmt(double v) {
        return v < 1e-6 || v >= 1e9 ? Double.toString(v)
                : java.math.BigDecimal.valueOf(v).stripTrailingZeros().toPlainString();
    }

    /** Refuses an output that would overwrite an input file. */
    private static void refuseSame(String outOption, Path out, String inOption, Path in) throws IOException {
        if (sameTarget(out, in)) {
            throw new IllegalArgumentException(outOption + " " + out + " is the " + inOption + " file; refusing to "
                    + "overwrite the input (choose another name)");
        }
    }

    /**
     * Whether two paths name the same file, existing or to be written: equal paths, the same existing file, or the
     * same name in the same existing folder (through links).
     */
    static boolean sameTarget(Path a, Path b) throws IOException {
        Path x = a.toAbsolutePath().normalize();
        Path y = b.toAbsolutePath().normalize();
        if (x.equals(y) || (Files.exists(x) && Files.exists(y) && Files.isSameFile(x, y))) {
            return true;
        }
        Path px = x.getParent();
        Path py = y.getParent();
        return px != null && py != null && java.util.Objects.equals(x.getFileName(), y.getFileName())
                && Files.isDirectory(px) && Files.isDirectory(py) && Files.isSameFile(px, py);
    }

    /** The labels file beside {@code --save-raw x.npy|x.idx}: {@code x.labels.npy}. */
    static Path labelsFile(Path raw) {
        return beside(raw, ".labels.npy");
    }

    /** The class names of those labels beside {@code --save-raw x.npy|x.idx}: {@code x.classes.json}. */
    static Path classesFile(Path raw) {
        return beside(raw, ".classes.json");
    }

    private static Path beside(Path raw, String suffix) {
        String name = raw.getFileName().toString();
        int dot = name.lastIndexOf('.');
        return raw.resolveSibling((dot > 0 ? name.substring(0, dot) : name) + suffix);
    }

    /** Samples and what produced them. */
    record Result(float[] samples, int[] labels, int classes, String samplerName, GridSpacing spacing,
                  double guidance, int steps, Trajectory trajectory) {
    }

    /**
     * Default columns of a class-conditional grid: {@code k} (a column per class) or, when that would make the grid
     * more than twice as tall as wide, the smallest multiple of {@code k} that does not (each column still shows one
     * class, since sample {@code i} is class {@code i mod k}): 200 samples of 2 classes in 10 columns, not 2 × 100.
     */
    static int classColumns(int k, int n) {
        int m = 1;
        while ((long) k * m < n && (n + (long) k * m - 1) / ((long) k * m) > 2L * k * m) {
            m++;
        }
        return k * m;
    }

    /** {@code " (karras:7 grid)"}, or nothing for the default grid. */
    static String gridNote(GridSpacing spacing) {
        return spacing.kind() == GridSpacing.Kind.AUTO ? "" : " (" + spacing + " grid)";
    }

    /** Refuses an {@code --n} whose samples do not fit one Java array. */
    static void checkCount(ModelSession s, int n) {
        long values = 1;
        for (long d : s.model().sampleShape()) {
            values *= d;
        }
        if ((long) n * values > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("--n " + n + " is too large: " + n + " samples of " + values
                    + " values exceed one Java array (2^31 - 1 floats); use --n <= "
                    + (Integer.MAX_VALUE - 8) / values);
        }
    }

    /**
     * Samples {@code n} from a session's model (shared with {@code eval}).
     *
     * @param samplerName null for the objective's default
     * @param spacing     the grid's spacing ({@link GridSpacing#AUTO}: the schedule's usual grid)
     * @param guidance    null for the default (2 for a conditional model trained with label dropout, else 1)
     * @param rescale     guidance rescale φ in [0, 1] (0: none)
     * @param classLabel  null for {@code i mod K}
     * @param warn        where warnings go (null: none)
     * @param progress    where the sampling progress lines go (null: none)
     */
    static Result run(ModelSession s, String samplerName, int steps, GridSpacing spacing, Double guidance,
                      double rescale,
                      Integer classLabel, long seed, int n, int batch, PrintWriter warn, PrintWriter progress) {
        return run(s, samplerName, steps, spacing, guidance, rescale, classLabel, seed, n, batch, warn, progress,
                null, 1.0, false, null, false, Sampling.Knobs.DEFAULT);
    }

    /** {@link #run} with {@code knobs} ({@code --threshold}, {@code --eta}, {@code --s-churn}). */
    static Result run(ModelSession s, String samplerName, int steps, GridSpacing spacing, Double guidance,
                      double rescale, Integer classLabel, long seed, int n, int batch, PrintWriter warn,
                      PrintWriter progress, Sampling.Knobs knobs) {
        return run(s, samplerName, steps, spacing, guidance, rescale, classLabel, seed, n, batch, warn, progress,
                null, 1.0, false, null, false, knobs);
    }

    /**
     * {@link #run} from inputs ({@code sample --init}): the grid shortened to {@code strength}
     * ({@link SamplingGrid#forStrength}), each sample starting from its input noised to the first level (from plain
     * noise at strength 1), the masked-out region kept when {@code edit} has a mask.
     *
     * @param edit     null for plain sampling
     * @param negative the class guided away from instead of the null class, or null
     * @param record   whether to record the first samples' {@link Trajectory} (in the result)
     */
    static Result run(ModelSession s, String samplerName, int steps, GridSpacing spacing, Double guidance,
                      double rescale, Integer classLabel, long seed, int n, int batch, PrintWriter warn,
                      PrintWriter progress, EditInput edit, double strength, boolean defaultStrength,
                      Integer negative, boolean record, Sampling.Knobs knobs) {
        Prediction pred = s.prediction();
        Thresholding th = Sampling.threshold(knobs.threshold(), pred, s.imageShape() != null);
        String name = samplerName != null ? samplerName : Sampling.defaultSampler(pred);
        var smp = Sampling.sampler(name, knobs);
        SamplingGrid grid = Sampling.grid(s.training(), name, steps, spacing);
        if (grid.steps() < steps && progress != null) {
            progress.println("note        --steps " + steps + " is more than the model's " + grid.steps()
                    + " discrete timesteps: " + grid.steps() + " steps");
        }
        if (edit != null && strength < 1) {
            try {
                grid = grid.forStrength(strength);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException((defaultStrength ? "the default --strength " : "--strength ")
                        + fmt(strength) + " with --steps " + steps + " keeps no step (strength x steps < 1); raise "
                        + "one of them");
            }
        }
        String canonical = name.trim().toLowerCase(Locale.ROOT).replace('_', '-');
        if (canonical.equals("repaint") && (edit == null || edit.mask() == null) && progress != null) {
            progress.println("note        repaint resamples for inpainting (--init with --mask, or empty cells); here "
                    + "it is DDPM with 10x the model calls");
        }
        if (canonical.startsWith("dpmpp-3m") && grid.steps() < 10 && progress != null) {
            progress.println("note        " + canonical + " over fewer than 10 steps is often worse than dpmpp-2m (its "
                    + "third-order extrapolation is unstable on coarse grids)");
        }
        if (rescale > 0 && progress != null) {
            long values = org.diffusion4j.tensor.Shape.numel(s.model().sampleShape());
            if (values < 16) {
                progress.println("note        --guidance-rescale divides by each sample's standard deviation over its "
                        + values + " values: unstable for so few (it suits images)");
            }
        }
        if (edit != null && edit.mask() != null && edit.generated() > 0 && progress != null
                && !canonical.equals("repaint")) {
            progress.println(s.imageShape() != null
                    ? "note        inpainting keeps the unmasked region by replacement at every step; --sampler "
                    + "repaint (RePaint, 10x the model calls) makes the generated region agree with it best"
                    : "note        imputation keeps the given cells by replacement at every step; --sampler repaint "
                    + "(RePaint, 10x the model calls) makes the generated cells agree with them best");
        }
        if (edit != null && edit.mask() != null && edit.kept() != null && strength < 1) {
            throw new IllegalArgumentException("--strength " + fmt(strength) + " starts from the --init values, but "
                    + "its empty cells have none: imputation runs at strength 1 (give the rows to edit, without empty "
                    + "cells, in another --init for a strength below 1)");
        }
        int k = s.model().numClasses();
        if (classLabel != null && k == 0) {
            throw new IllegalArgumentException("--class needs a class-conditional model; this one is unconditional");
        }
        if (classLabel != null && (classLabel < 0 || classLabel >= k)) {
            throw new IllegalArgumentException("--class " + classLabel + " is outside [0, " + k + ")");
        }
        checkCount(s, n);
        if (k > 0 && guidance != null && guidance != 1.0 && s.training().labelDropout() == 0 && negative == null
                && warn != null) {
            warn.println("warning: --guidance " + guidance + " on a model trained with --label-dropout 0: its null "
                    + "class was never trained, so guided samples are unreliable");
            warn.flush();
        }
        int[] rowClass = rowClasses(edit, k, s.training().labelDropout());
        // from an input without a class (none given, none in its rows): the null class, i.e. the unconditional model
        // (the input, not a class cycle, decides what the samples show) when label dropout trained it
        boolean nullClass = edit != null && k > 0 && classLabel == null && rowClass == null
                && s.training().labelDropout() > 0;
        if (nullClass && guidance != null && guidance != 1.0) {
            throw new IllegalArgumentException("--guidance " + guidance + " with --init needs --class (without one the "
                    + "samples are unconditional, guided by the input only)");
        }
        if (nullClass && progress != null) {
            progress.println("note        no --class: the samples are unconditional (the model's null class), "
                    + "shaped by --init alone; --class picks a class");
        } else if (edit != null && k > 0 && classLabel == null && rowClass == null && progress != null) {
            progress.println("note        no --class and a null class never trained (--label-dropout 0): sample i "
                    + "has class i mod " + k + "; --class picks one");
        }
        IntUnaryOperator labelOf = k == 0 ? null : classLabel != null ? i -> classLabel
                : rowClass != null ? i -> rowClass[i % rowClass.length] : nullClass ? i -> k : i -> i % k;
        double g = guidance != null ? guidance : k > 0 && s.training().labelDropout() > 0 && !nullClass ? 2.0 : 1.0;
        if (k == 0 && g != 1.0) {                           // before the "sampling" line, not after it
            throw new IllegalArgumentException("--guidance needs a class-conditional model; this one is "
                    + "unconditional (use --guidance 1)");
        }
        if (negative != null) {
            if (k == 0) {
                throw new IllegalArgumentException("--negative-class needs a class-conditional model; this one is "
                        + "unconditional");
            }
            if (negative < 0 || negative >= k) {
                throw new IllegalArgumentException("--negative-class " + negative + " is outside [0, " + k + ")");
            }
            if (nullClass) {
                throw new IllegalArgumentException("--negative-class with --init needs --class (without one the "
                        + "samples are unconditional, shaped by --init alone)");
            }
            if (classLabel != null && classLabel.equals(negative)) {
                throw new IllegalArgumentException("--negative-class " + negative + " is the --class: guidance away "
                        + "from the class itself does nothing");
            }
            if (!(g > 1.0)) {
                throw new IllegalArgumentException("--negative-class guides away from a class: it needs --guidance "
                        + "above 1 (" + (guidance == null ? "this model's default is " + fmt(g) : "got " + fmt(g))
                        + "; below 1 it would pull towards the class; e.g. --guidance 3)");
            }
            if (classLabel == null && progress != null) {
                progress.println("note        samples of class " + negative + " itself (the --negative-class) get "
                        + "no guidance");
            }
        }
        if (progress != null) {
            progress.printf(Locale.ROOT, "sampling    %d sample%s, %s, %d step%s%s, batches of %d%s%n", n,
                    n == 1 ? "" : "s", name, grid.steps(), grid.steps() == 1 ? "" : "s", gridNote(spacing), batch,
                    th == null ? "" : ", x0 thresholded (" + th + ")");
            progress.flush();
        }
        long per = org.diffusion4j.tensor.Shape.numel(s.model().sampleShape());
        Trajectory trajectory = record ? new Trajectory(n, batch, per, grid.steps()) : null;
        float[] x = Sampling.sample(s.backend, s.model(), pred, smp, grid,
                new Sampling.Request(n, seed, labelOf, g, rescale, batch, negative == null ? -1 : negative, th), edit,
                edit != null && (strength < 1 || edit.mask() == null),   // diffusers: img2img noises the input even at
                                                                         // strength 1; inpainting starts from noise
                progress != null && n > batch ? Progress.samplingLines(progress, n) : null,
                progress != null && n <= batch ? Progress.stepLines(progress, 10) : null, trajectory);
        if (!Sampling.allFinite(x)) {
            throw new IllegalStateException("the model produced non-finite samples (a diverged checkpoint?)");
        }
        org.diffusion4j.io.Standardization scaling = s.standardization();
        if (scaling != null && progress != null && edit == null) {
            String wide = Sampling.spreadNote(x, per, n, pred, canonical, g);
            if (wide != null) {
                progress.println("note        " + wide);
            }
        }
        if (scaling != null) {
            Sampling.toDataUnits(scaling, x);                    // back to the data's units
        }
        if (edit != null) {
            edit.restoreKept(x);                                 // kept cells exactly as read, not round-tripped
        }
        int[] labels = null;
        if (labelOf != null && !nullClass) {
            labels = new int[n];
            for (int i = 0; i < n; i++) {
                labels[i] = labelOf.applyAsInt(i);
                if (labels[i] == k) {                            // some rows unconditional: no class list to write
                    labels = null;
                    break;
                }
            }
        }
        String shown = canonical + (knobs.eta() != null ? " (eta " + fmt(knobs.eta()) + ")" : "")
                + (knobs.sChurn() != null ? " (S_churn " + fmt(knobs.sChurn()) + ")" : "")
                + (th != null ? " (x0 " + th + ")" : "");
        return new Result(x, labels, k, shown, spacing, g, grid.steps(), trajectory);
    }

    /**
     * The sampling options checkable without the checkpoint (a known sampler name, {@code --steps >= 1}, a known
     * {@code --grid}, a non-negative class), so that a typo fails before the slow load; what needs the model (class
     * below its number of classes, sampler and grid against its objective) is checked in {@link #run}.
     *
     * @return the parsed {@code --grid}
     * @throws IllegalArgumentException naming the bad option and value
     */
    static GridSpacing checkBeforeLoad(String samplerName, int steps, String grid, String classSpec) {
        if (samplerName != null) {
            Sampling.sampler(samplerName);
        }
        if (steps < 1 || steps > 100_000) {
            throw new IllegalArgumentException("--steps must be in [1, 100000], got " + steps);
        }
        if (classSpec != null && classSpec.strip().matches("-\\d+")) {
            throw new IllegalArgumentException("--class must be >= 0, got " + classSpec.strip() + " (a class named '"
                    + classSpec.strip() + "': --class name:" + classSpec.strip() + ")");
        }
        return Sampling.gridSpacing(grid);
    }

    static long[] prepend(long n, long[] shape) {
        long[] s = new long[shape.length + 1];
        s[0] = n;
        System.arraycopy(shape, 0, s, 1, shape.length);
        return s;
    }

    private static String lower(Path p) {
        return p.getFileName().toString().toLowerCase(Locale.ROOT);
    }

    /**
     * Refuses to replace an existing file that is not a PNG (it does not start with the PNG signature): a
     * mistyped {@code --out} must not destroy other data.
     */
    static void refuseNonPng(String option, Path png) throws IOException {
        refuseForeign(option, png, new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, "a PNG");
    }

    /**
     * Refuses to replace an existing non-empty file that does not start with {@code signature} (not a file of the
     * kind this option writes): a mistyped path must not destroy other data.
     */
    static void refuseForeign(String option, Path file, byte[] signature, String kind) throws IOException {
        if (!Files.isRegularFile(file) || Files.size(file) == 0) {
            return;
        }
        byte[] head;
        try (var in = Files.newInputStream(file)) {
            head = in.readNBytes(signature.length);
        }
        if (!java.util.Arrays.equals(head, signature)) {
            throw new IllegalArgumentException(option + ": " + file + " exists and is not " + kind + "; refusing to "
                    + "overwrite it (delete it or choose another name)");
        }
    }

    /** {@code 00042.png}: sample {@code i} of {@code n}, zero-padded to at least 5 digits. */
    static String imageName(int i, int n) {
        int digits = Math.max(5, Integer.toString(Math.max(0, n - 1)).length());
        return String.format(Locale.ROOT, "%0" + digits + "d.png", i);
    }

    /**
     * The folder of {@code --save-images}: not a file, its nearest existing ancestor writable, and none of the
     * {@code n} names it will write an existing file other than a PNG.
     */
    static Path requireImageFolder(Path dir, int n) throws IOException {
        if (dir.toString().isEmpty()) {
            throw new IllegalArgumentException("--save-images is empty; give the folder to write the PNGs to");
        }
        Path d = dir.toAbsolutePath().normalize();
        if (Files.exists(d) && !Files.isDirectory(d)) {
            throw new IllegalArgumentException("--save-images: " + d + " exists and is not a folder");
        }
        requireWritable("--save-images", d.resolve(imageName(0, n)), ".png");
        if (Files.isDirectory(d)) {
            for (int i = 0; i < n; i++) {
                refuseNonPng("--save-images", d.resolve(imageName(i, n)));
            }
        }
        return d;
    }

    /** Writes sample {@code i} of {@code values} ({@code [n, C, H, W]}) as {@code dir/imageName(i, n)}. */
    private static void writeEach(Path dir, float[] values, int n, long[] chw) throws IOException {
        Files.createDirectories(dir);
        int per = Math.toIntExact(chw[0] * chw[1] * chw[2]);
        long[] one = {1, chw[0], chw[1], chw[2]};
        for (int i = 0; i < n; i++) {
            float[] v = java.util.Arrays.copyOfRange(values, i * per, (i + 1) * per);
            org.diffusion4j.io.ImageGrid.write(dir.resolve(imageName(i, n)), v, one, 1, 0, -1f);
        }
    }

    /** The magic bytes of NPY files and of IDX files (two zero bytes). */
    static final byte[] NPY_MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    static final byte[] IDX_MAGIC = {0, 0};

    /** The outermost of {@code dir} and its ancestors that does not exist yet (null when {@code dir} exists). */
    static Path firstMissing(Path dir) {
        Path d = dir.toAbsolutePath().normalize();
        if (Files.exists(d)) {
            return null;
        }
        while (d.getParent() != null && !Files.exists(d.getParent())) {
            d = d.getParent();
        }
        return d;
    }

    /**
     * Deletes {@code dir} and its ancestors up to {@code top} (inclusive) while they are empty: the folders a command
     * created (found with {@link #firstMissing} before) for output it never wrote. Nothing when {@code top} is null.
     */
    static void removeCreated(Path dir, Path top) {
        if (top == null) {
            return;
        }
        for (Path p = dir.toAbsolutePath().normalize(); p != null && p.startsWith(top); p = p.getParent()) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException ignored) {
                return;                                        // not empty, or not ours to delete
            }
        }
    }

    static void createParent(Path file) throws IOException {
        Path parent = file.toAbsolutePath().normalize().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
    }

    static Path requireWritable(String option, Path file, String extension) {
        Path p = file.toAbsolutePath().normalize();
        if (Files.isSymbolicLink(p) && Files.exists(p)) {
            try {
                p = p.toRealPath();                            // written through the link (AtomicFiles): probe there
            } catch (IOException e) {
                throw new IllegalArgumentException(option + ": cannot resolve the link " + file + " ("
                        + e.getMessage() + ")");
            }
        }
        if (extension != null && !lower(p).endsWith(extension)) {
            throw new IllegalArgumentException(option + " must end in " + extension + ", got " + file);
        }
        // the folders that do not exist yet are created only when the file is written (createParent), so a
        // command refused later leaves nothing behind; here the nearest existing one must be a writable folder
        Path existing = p.getParent();
        while (existing != null && !Files.exists(existing)) {
            existing = existing.getParent();
        }
        if (existing != null) {
            if (!Files.isDirectory(existing)) {
                throw new IllegalArgumentException(option + ": " + existing + " is not a folder");
            }
            // a probe file named as long as the write's temporary file (".NAME.RANDOM.tmp", AtomicFiles): Files.isWritable
            // says yes to root even where nothing can be created (e.g. /proc), and a name too long fails here, not
            // after the work
            try {
                Files.delete(Files.createTempFile(existing, "." + p.getFileName() + ".", ".tmp"));
            } catch (IOException | UnsupportedOperationException e) {
                throw new IllegalArgumentException(option + ": cannot write " + p + ": folder " + existing
                        + " is not writable (" + e.getClass().getSimpleName() + ")");
            }
        }
        if (Files.isDirectory(p)) {
            throw new IllegalArgumentException(option + ": " + p + " is a folder");
        }
        if (Files.exists(p) && !Files.isRegularFile(p)) {
            throw new IllegalArgumentException(option + ": " + p + " is not a regular file");
        }
        return p;
    }
}
