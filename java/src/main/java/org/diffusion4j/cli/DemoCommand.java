package org.diffusion4j.cli;

import org.diffusion4j.io.AtomicFiles;
import org.diffusion4j.metrics.Estimator;
import org.diffusion4j.metrics.Mmd;
import org.diffusion4j.metrics.Pairwise;
import org.diffusion4j.metrics.PointSet;
import org.diffusion4j.metrics.SlicedWasserstein;
import org.diffusion4j.nn.MlpDenoiser;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.optim.AdamW;
import org.diffusion4j.optim.Ema;
import org.diffusion4j.optim.GradClip;
import org.diffusion4j.optim.LrSchedule;
import org.diffusion4j.random.Philox;
import org.diffusion4j.sampling.NoiseSeeds;
import org.diffusion4j.sampling.SamplerContext;
import org.diffusion4j.sampling.Samplers;
import org.diffusion4j.sampling.SamplingGrid;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.RectifiedFlowSchedule;
import org.diffusion4j.schedule.SigmaGrids;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code demo}: trains a small flow-matching model on a built-in 2-D distribution ({@link Toy2d}), samples from it,
 * measures how close the samples are to held-out data and draws both side by side into a PNG. Nothing is
 * downloaded.
 *
 * <p>Training is rectified flow / conditional flow matching (Liu et al. 2023, "Flow straight and fast", eq. 1;
 * Lipman et al. 2023, "Flow matching for generative modeling", eq. 23 with {@code σ_min = 0}): with data at
 * {@code t = 0}, {@code x_t = (1 − t) x0 + t ε}, {@code t ~ U(0, 1]}, {@code ε ~ N(0, I)}, and the model
 * ({@link MlpDenoiser}) regresses the velocity {@code u = ε − x0} under the mean squared error. It is optimised
 * with AdamW (warm-up + cosine learning rate, gradient clipping at norm 1) and an EMA of the weights is sampled
 * with the flow-matching midpoint sampler from {@code t = 1} to {@code t = 0}.
 *
 * <p>Quality: the sliced 2-Wasserstein distance (128 directions) and the RBF-kernel MMD (U-statistic, bandwidth
 * from the median heuristic of the held-out and reference sets, fixed for both comparisons) between the samples
 * and a held-out set of real points; the same numbers for a second, independent real set against the held-out
 * one show what "as good as the data itself" looks like at this sample size.
 */
@Command(name = "demo", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Train a flow-matching MLP on a built-in 2-D distribution, sample it, print quality metrics "
                + "and write a PNG of the samples beside the data.")
final class DemoCommand implements Callable<Integer> {

    /** Philox streams of the demo's independent draws (all from {@code --seed}). */
    static final long STREAM_TRAIN = 0;
    static final long STREAM_HELD_OUT = 1;
    static final long STREAM_REFERENCE = 2;
    static final long STREAM_EPS = 3;
    static final long STREAM_TIME = 4;
    static final long STREAM_SAMPLING = 5;

    /** Width and height of each scatter panel, pixels. */
    static final int PANEL = 480;
    /** Height of the title strip above the panels, pixels. */
    static final int TITLE = 36;
    /** Width of the PNG written: two panels. */
    static final int PNG_WIDTH = 2 * PANEL;
    /** Height of the PNG written. */
    static final int PNG_HEIGHT = PANEL + TITLE;

    @Mixin
    RuntimeOptions runtime;

    @Option(names = "--dataset", defaultValue = "checkerboard",
            description = "checkerboard, moons, 8gaussians or swissroll (default: ${DEFAULT-VALUE})")
    String dataset;

    @Option(names = "--steps", defaultValue = "3000", description = "training steps (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--batch", defaultValue = "256", description = "points per training step (default: ${DEFAULT-VALUE})")
    int batch;

    /** The most samples {@code demo} draws (and holds as real points beside them, with their pairwise metrics). */
    static final int MAX_SAMPLES = 100_000;         // the MMD is pairwise: 10^10 kernel values at this size

    @Option(names = "--samples", defaultValue = "2000",
            description = "points sampled, and in each held-out set (default: ${DEFAULT-VALUE})")
    int samples;

    @Option(names = {"--sample-steps", "--sampling-steps"}, defaultValue = "32",
            description = "midpoint-sampler steps (default: ${DEFAULT-VALUE})")
    int samplingSteps;

    @Option(names = "--hidden", defaultValue = "128", description = "MLP width (default: ${DEFAULT-VALUE})")
    int hidden;

    @Option(names = "--lr", defaultValue = "2e-3", description = "peak AdamW learning rate (default: ${DEFAULT-VALUE})")
    double lr;

    @Option(names = "--seed", defaultValue = "0", description = "Philox seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--out", defaultValue = "demo.png", description = "PNG to write (default: ${DEFAULT-VALUE})")
    Path out;

    @Override
    public Integer call() throws IOException {
        if (steps < 1) {
            throw new IllegalArgumentException("--steps must be >= 1, got " + steps);
        }
        if (batch < 1) {
            throw new IllegalArgumentException("--batch must be >= 1, got " + batch);
        }
        if (samples < 2 || samples > MAX_SAMPLES) {
            throw new IllegalArgumentException("--samples must be in [2, " + MAX_SAMPLES + "], got " + samples);
        }
        if (hidden < 1) {
            throw new IllegalArgumentException("--hidden must be >= 1, got " + hidden);
        }
        if (!(lr > 0 && lr < 1)) {
            throw new IllegalArgumentException("--lr must be in (0, 1), got " + lr);
        }
        if (samplingSteps < 1) {
            throw new IllegalArgumentException("--sample-steps must be >= 1, got " + samplingSteps);
        }
        Toy2d data = Toy2d.byName(dataset);
        Path png = SampleCommand.requireWritable("--out", out, ".png");
        SampleCommand.refuseNonPng("--out", png);
        long start = System.nanoTime();
        runtime.applyThreads();
        try (Backend be = RuntimeOptions.createBackend(runtime.backend); NnOps ops = NnOps.forBackend(be);
             TensorScope params = TensorScope.open()) {
            System.out.println("backend     " + be.name());
            MlpDenoiser model = new MlpDenoiser(ops, params, MlpDenoiser.Config.of(2, hidden, 3), seed);
            System.out.printf("model       MlpDenoiser hidden %d, 3 blocks, %d parameters; dataset %s%n",
                    hidden, model.parameterCount(), data.id());
            double finalLoss = train(be, ops, model, data);
            System.out.printf("final loss  %.4f  (mean over the last 10%% of steps; sampling uses the EMA weights)%n",
                    finalLoss);

            float[] generated = sample(be, model);
            float[] heldOut = data.sample(samples, seed, STREAM_HELD_OUT, 0);
            float[] reference = data.sample(samples, seed, STREAM_REFERENCE, 0);
            for (float v : generated) {
                if (!Float.isFinite(v)) {
                    System.err.println("diffusion4j demo: the model produced a non-finite sample");
                    return 2;
                }
            }
            PointSet gen = PointSet.of("generated", generated, samples, 2);
            PointSet held = PointSet.of("held-out", heldOut, samples, 2);
            PointSet ref = PointSet.of("reference", reference, samples, 2);
            SlicedWasserstein.Options sw = SlicedWasserstein.Options.defaults();
            double h = Mmd.medianHeuristic(held, ref, Mmd.MEDIAN_HEURISTIC_POINTS, 0);
            Pairwise engine = Pairwise.host();
            double swModel = SlicedWasserstein.compute(gen, held, sw).distance();
            double swRef = SlicedWasserstein.compute(ref, held, sw).distance();
            Mmd.Result mmdModel = Mmd.compute(gen, held, h, Estimator.U_STATISTIC, engine);
            Mmd.Result mmdRef = Mmd.compute(ref, held, h, Estimator.U_STATISTIC, engine);
            System.out.printf("metrics     against %d held-out points: sliced W2, MMD² (RBF, h = %.3f, unbiased: "
                    + "can be < 0)%n", samples, h);
            System.out.printf("  model     %5d samples       SW2 %.4f   MMD² %+.2e%n", samples, swModel,
                    mmdModel.mmd2());
            System.out.printf("  reference %5d real points   SW2 %.4f   MMD² %+.2e   (a perfect model scores about "
                    + "this)%n", samples, swRef, mmdRef.mmd2());

            SampleCommand.createParent(png);
            writePng(png, heldOut, generated, data.id(), swModel);
            System.out.printf("time        %.1f s%n", (System.nanoTime() - start) / 1e9);
            System.out.println("png         " + png);
            return 0;
        }
    }

    /** Trains {@code model} in place, ends with the EMA weights in it and returns the mean loss of the last 10%. */
    private double train(Backend be, NnOps ops, MlpDenoiser model, Toy2d data) {
        LrSchedule schedule = LrSchedule.warmupCosine(lr, Math.min(100, steps / 10), steps, lr / 100);
        int report = Math.max(1, steps / 10);
        long tStart = System.nanoTime();
        double tail = 0;
        int tailCount = 0;
        double window = 0;
        int windowCount = 0;
        float[] xt = new float[2 * batch];
        float[] u = new float[2 * batch];
        double[] t = new double[batch];
        try (AdamW opt = new AdamW(ops, model.namedParameters(), AdamW.Hyper.defaults().withWeightDecay(0));
             Ema ema = new Ema(be, model.namedParameters(), new Ema.Schedule(0.999, 0, 1, 0.75, 0))) {
            for (int step = 0; step < steps; step++) {
                float[] x0 = data.sample(batch, seed, STREAM_TRAIN, (long) step * batch);
                long base = (long) step * batch;
                for (int b = 0; b < batch; b++) {
                    t[b] = Philox.uniform(seed, STREAM_TIME, base + b);                   // t ∈ (0, 1]
                    for (int j = 0; j < 2; j++) {
                        int k = 2 * b + j;
                        double eps = Philox.normal(seed, STREAM_EPS, 2 * base + k);
                        xt[k] = (float) ((1 - t[b]) * x0[k] + t[b] * eps);              // x_t = (1 − t) x0 + t ε
                        u[k] = (float) (eps - x0[k]);                                     // u = ε − x0
                    }
                }
                double loss;
                try (TensorScope scope = TensorScope.open()) {
                    model.zeroGrad();
                    MlpDenoiser.Cache c = model.forward(scope, be.fromArray(scope, xt, batch, 2), t);
                    Tensor dOut = be.empty(scope, DType.F32, batch, 2);
                    be.binary(Ops.Binary.SUB, c.out(), be.fromArray(scope, u, batch, 2), dOut);
                    loss = meanSquare(dOut.toFloatArray());
                    be.binary(Ops.Binary.MUL, dOut, 2f / (2 * batch), dOut);           // d(mean squared error)
                    model.backward(scope, c, dOut);
                    double norm = GradClip.globalNorm(be, model.parameters());
                    if (!Double.isFinite(norm)) {
                        throw new IllegalStateException("training diverged: gradient norm " + norm + " at step "
                                + step);
                    }
                    opt.step(schedule.lr(step), GradClip.clipFactor(norm, 1.0));
                    ema.update();
                }
                window += loss;
                windowCount++;
                if (step >= steps - report) {
                    tail += loss;
                    tailCount++;
                }
                if ((step + 1) % report == 0 || step == steps - 1) {
                    double secs = (System.nanoTime() - tStart) / 1e9;
                    System.out.printf("train       step %5d/%d  loss %.4f  %.0f steps/s%n", step + 1, steps,
                            window / windowCount, (step + 1) / secs);
                    window = 0;
                    windowCount = 0;
                }
            }
            ema.copyToParameters();
        }
        return tail / tailCount;
    }

    /** Samples {@link #samples} points from noise at {@code t = 1} to data at {@code t = 0}; {@code [N, 2]}. */
    private float[] sample(Backend be, MlpDenoiser model) {
        RectifiedFlowSchedule schedule = RectifiedFlowSchedule.unshifted();
        SamplingGrid grid = SamplingGrid.ofFlowSigmas(schedule, SigmaGrids.linspace(1, 0, samplingSteps + 1));
        try (TensorScope scope = TensorScope.open();
             SamplerContext ctx = SamplerContext.builder(be, model, Prediction.VELOCITY)
                     .noise(NoiseSeeds.batch(seed, STREAM_SAMPLING, 0, samples)).build()) {
            Tensor x = be.empty(scope, DType.F32, samples, 2);
            ctx.initialNoise(x, grid);
            ctx.sample(Samplers.flowMidpoint(), x, grid);
            be.synchronize();
            return x.toFloatArray();
        }
    }

    private static double meanSquare(float[] a) {
        double s = 0;
        for (float v : a) {
            s += (double) v * v;
        }
        return s / a.length;
    }

    // ---------------------------------------------------------------- plot

    /** Two scatter panels on the same axes, data left and samples right, written atomically as a PNG. */
    static void writePng(Path target, float[] data, float[] samples, String name, double sw) throws IOException {
        System.setProperty("java.awt.headless", "true");
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (float v : data) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        double pad = 0.08 * (hi - lo) + 1e-6;
        lo -= pad;
        hi += pad;
        BufferedImage img = new BufferedImage(PNG_WIDTH, PNG_HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, PNG_WIDTH, PNG_HEIGHT);
            try {                            // captions; a machine without fonts gets the panels alone
                Plots.withFonts(target, () -> {
                    g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
                    g.setColor(Color.DARK_GRAY);
                    g.drawString(name + ": held-out data (" + data.length / 2 + ")", 16, 24);
                    g.drawString(String.format("flow-matching samples (%d), sliced W2 %.3f", samples.length / 2,
                            sw), PANEL + 16, 24);
                    return null;
                });
            } catch (Plots.NoFontsException e) {
                org.slf4j.LoggerFactory.getLogger(DemoCommand.class).warn("{} drawn without captions: Java found "
                        + "no usable fonts ({})", target.getFileName(), e.getCause().getMessage());
            }
            panel(g, 0, data, lo, hi, new Color(31, 119, 180, 110));
            panel(g, PANEL, samples, lo, hi, new Color(214, 39, 40, 110));
        } finally {
            g.dispose();
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        if (!ImageIO.write(img, "png", bytes)) {
            throw new IOException("no PNG writer available");
        }
        AtomicFiles.writeBytes(target, bytes.toByteArray());
    }

    private static void panel(Graphics2D g, int x0, float[] pts, double lo, double hi, Color color) {
        int m = 12;
        int size = PANEL - 2 * m;
        int top = TITLE + m;
        g.setColor(new Color(245, 245, 245));
        g.fillRect(x0 + m, top, size, size);
        g.setColor(new Color(200, 200, 200));
        g.setStroke(new BasicStroke(1f));
        // axes through 0 when 0 is in range
        if (lo < 0 && hi > 0) {
            int zx = x0 + m + (int) Math.round((0 - lo) / (hi - lo) * size);
            int zy = top + size - (int) Math.round((0 - lo) / (hi - lo) * size);
            g.drawLine(zx, top, zx, top + size);
            g.drawLine(x0 + m, zy, x0 + m + size, zy);
        }
        g.drawRect(x0 + m, top, size, size);
        g.setColor(color);
        for (int i = 0; i + 1 < pts.length; i += 2) {
            double px = (pts[i] - lo) / (hi - lo);
            double py = (pts[i + 1] - lo) / (hi - lo);
            if (!(px >= 0 && px <= 1 && py >= 0 && py <= 1)) {
                continue;                                                       // outside the data's box
            }
            int sx = x0 + m + (int) Math.round(px * size);
            int sy = top + size - (int) Math.round(py * size);
            g.fillOval(sx - 2, sy - 2, 4, 4);
        }
    }
}
