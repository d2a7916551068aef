package org.diffusion4j.bench;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.nn.DenoiserModel;
import org.diffusion4j.nn.DiT;
import org.diffusion4j.nn.MlpDenoiser;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.optim.AdamW;
import org.diffusion4j.sampling.DiffusionOps;
import org.diffusion4j.sampling.Guidance;
import org.diffusion4j.sampling.NoiseSeeds;
import org.diffusion4j.sampling.SamplerContext;
import org.diffusion4j.sampling.Samplers;
import org.diffusion4j.sampling.SamplingGrid;
import org.diffusion4j.schedule.CosineSchedule;
import org.diffusion4j.schedule.NoiseSchedule;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.diffusion4j.io.Dataset;
import org.diffusion4j.io.Datasets;
import org.diffusion4j.training.ForwardNoising;
import org.diffusion4j.training.Trainer;
import org.diffusion4j.training.TrainingConfig;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * The end-to-end workloads shared by the JMH benchmarks ({@link TrainingBench}, {@link SamplingBench}) and the
 * PyTorch comparison ({@code org.diffusion4j.bench.compare.Ours}; {@code benchmarks/compare/torch_peer.py} does the
 * same work with the same shapes).
 *
 * <p>Models ({@link #model}): {@code "mlp"}: {@link MlpDenoiser} on flattened 28×28 images (data dim 784, width 512,
 * 3 blocks); {@code "ditA"}: {@link DiT} 28×28×1, patch 4, hidden 128, depth 4, 4 heads (49 tokens);
 * {@code "ditB"}: patch 2, hidden 192, depth 6, 6 heads (196 tokens); both DiTs class-conditional with 10 classes
 * (+ the null class), MLP ratio 4, frequency dim 256 (the models issue's configs A and B).
 *
 * <p>One training step ({@link TrainLoop#step}) is what a trainer does per batch, without EMA, clipping and
 * logging: fused forward noising at per-sample times (cosine VP schedule, v-prediction target), forward pass, MSE
 * loss gradient {@code dOut = 2(out − target)/N}, zeroing the gradients, backward pass, one AdamW step
 * ({@code lr 1e-4}, β = (0.9, 0.999), ε = 1e-8, weight decay 0.01 on every parameter).
 */
public final class Workloads {

    /** Training batch of the configs. */
    public static final int TRAIN_BATCH = 128;
    /** Sampling batch. */
    public static final int SAMPLE_BATCH = 64;
    /** Classes of the conditional DiTs (Fashion-MNIST). */
    public static final int CLASSES = 10;
    /** Classifier-free guidance scale of the sampling workloads. */
    public static final double GUIDANCE = 4.0;

    private Workloads() {
    }

    /** The DiT configuration of {@code name} ({@code ditA} or {@code ditB}). */
    public static DiT.Config ditConfig(String name) {
        return switch (name) {
            case "ditA" -> DiT.Config.of(28, 1, 4, 128, 4, 4, CLASSES);
            case "ditB" -> DiT.Config.of(28, 1, 2, 192, 6, 6, CLASSES);
            default -> throw new IllegalArgumentException("no DiT config named '" + name + "' (ditA, ditB)");
        };
    }

    /** The MLP configuration. */
    public static MlpDenoiser.Config mlpConfig() {
        return MlpDenoiser.Config.of(784, 512, 3);
    }

    /** A model by name ({@code mlp}, {@code ditA}, {@code ditB}) with deterministic initial weights. */
    public static DenoiserModel model(String name, NnOps ops, AttentionOps attention, TensorScope scope) {
        if (name.equals("mlp")) {
            return new MlpDenoiser(ops, scope, mlpConfig(), 7);
        }
        return new DiT(ops, attention, scope, ditConfig(name), 7);
    }

    /**
     * Approximate forward FLOPs per sample: the matrix products (2 per multiply-add) and, for a DiT, the attention
     * products ({@code 4·T²·D} per block); pointwise work, norms and the softmax are not counted. A training step is
     * counted as 3× the forward (the backward does two products for each forward one).
     */
    public static double forwardFlopsPerSample(String name) {
        if (name.equals("mlp")) {
            MlpDenoiser.Config c = mlpConfig();
            double h = c.hidden();
            double time = 2.0 * c.frequencyDim() * h + 2 * h * h;
            return time + 2.0 * c.dataDim() * h + c.blocks() * 3 * 2 * h * h + 2 * h * c.dataDim();
        }
        DiT.Config c = ditConfig(name);
        double d = c.hidden();
        double t = c.tokenCount();
        double pp = (double) c.patch() * c.patch() * c.channels();
        double mlp = c.mlpHiddenWidth();
        double time = 2.0 * c.frequencyDim() * d + 2 * d * d;
        double embed = 2 * t * pp * d;
        double block = 2 * d * 6 * d                       // adaLN modulation
                + 2 * t * d * 3 * d + 2 * t * d * d            // qkv, proj
                + 4 * t * t * d                                // q·kᵀ and p·v
                + 2 * 2 * t * d * mlp;                         // fc1, fc2
        double last = 2 * d * 2 * d + 2 * t * d * pp;
        return time + embed + c.depth() * block + last;
    }

    /** The sample shape {@code [B, ...]} of a model's input. */
    static long[] batchShape(DenoiserModel model, int batch) {
        long[] s = model.sampleShape();
        long[] shape = new long[s.length + 1];
        shape[0] = batch;
        System.arraycopy(s, 0, shape, 1, s.length);
        return shape;
    }

    /** One model with its optimizer and fixed data, training one step per {@link #step()}. */
    public static final class TrainLoop implements AutoCloseable {
        final String name;
        final CpuBackend cpu;
        final NnOps ops;
        final AttentionOps attention;
        final DiffusionOps diffusion;
        final TensorScope scope;
        /** The step's activations, reused from step to step as the trainer (and PyTorch's caching allocator) does. */
        final org.diffusion4j.tensor.Workspace workspace = org.diffusion4j.tensor.Workspace.create();
        final DenoiserModel model;
        final AdamW adamw;
        final ForwardNoising noising = new ForwardNoising(Prediction.V);
        final NoiseSchedule schedule = CosineSchedule.nicholDhariwal();
        final Tensor x0;
        final Tensor xt;
        final Tensor target;
        final Tensor dOut;
        final int[] labels;
        final int batch;
        long steps;

        /** A training loop of model {@code name} at {@code batch} on a new CPU backend (default threads). */
        public TrainLoop(String name, int batch) {
            this.name = name;
            this.batch = batch;
            cpu = new CpuBackend();
            ops = NnOps.forBackend(cpu);
            attention = AttentionOps.forBackend(cpu);
            diffusion = DiffusionOps.forBackend(cpu);
            scope = TensorScope.open();
            model = Workloads.model(name, ops, attention, scope);
            adamw = new AdamW(ops, model.module().namedParameters(), new AdamW.Hyper(0.9, 0.999, 1e-8, 0.01));
            long[] shape = batchShape(model, batch);
            x0 = cpu.empty(scope, DType.F32, shape);
            xt = cpu.empty(scope, DType.F32, shape);
            target = cpu.empty(scope, DType.F32, shape);
            dOut = cpu.empty(scope, DType.F32, shape);
            cpu.randn(x0, 11, 0);
            if (model.numClasses() > 0) {
                labels = new int[batch];
                for (int b = 0; b < batch; b++) {
                    labels[b] = b % model.numClasses();
                }
            } else {
                labels = null;
            }
        }

        /** One training step. */
        public void step() {
            double[] t = new double[batch];
            for (int b = 0; b < batch; b++) {
                // Stratified times that move every step (the golden-ratio rotation), away from 0 and 1.
                double u = ((b + 0.5) / batch + steps * 0.6180339887498949) % 1.0;
                t[b] = 0.001 + 0.998 * u;
            }
            NoiseSeeds seeds = NoiseSeeds.batch(1234, 0, steps * batch, batch);
            noising.apply(diffusion, schedule, t, seeds, x0, xt, target, null, null);
            try (TensorScope tmp = TensorScope.open(workspace)) {
                DenoiserModel.Pass pass = model.forward(tmp, xt, t, labels);
                float g = 2f / xt.numel();
                cpu.axpby(g, pass.out(), -g, target, dOut);
                model.module().zeroGrad();
                model.backward(tmp, pass, dOut);
            }
            steps++;
            adamw.step(1e-4);
        }

        /** The mean squared error of the last step's prediction, from {@code dOut} (for sanity checks). */
        public double loss() {
            float[] d = dOut.toFloatArray();
            double s = 0;
            for (float v : d) {
                s += v * (double) v;
            }
            double n = d.length;
            return s * n / 4;       // dOut = 2 e / n, so Σ e²/n = Σ dOut² n / 4
        }

        /** The model. */
        public DenoiserModel model() {
            return model;
        }

        @Override
        public void close() {
            adamw.close();
            workspace.close();
            scope.close();
            diffusion.close();
            attention.close();
            ops.close();
            cpu.close();
        }
    }

    /**
     * One model trained by the library's {@link Trainer} (what users run: batches drawn from a dataset, label
     * dropout, forward noising, loss, backward, gradient clipping, AdamW with its learning-rate schedule, EMA) with
     * {@link TrainingConfig#defaults} (rectified flow) at {@code batch}, on 1024 random 28×28 images (784-vectors for
     * the MLP) with labels {@code i mod 10}.
     */
    public static final class TrainerLoop implements AutoCloseable {
        final Backend backend;
        final boolean ownsBackend;
        final NnOps ops;
        final AttentionOps attention;
        final TensorScope scope;
        final DenoiserModel model;
        final Trainer trainer;
        double lastLoss = Double.NaN;

        /** A trainer of model {@code name} at {@code batch} on a new CPU backend (default threads). */
        public TrainerLoop(String name, int batch) {
            this(name, batch, new CpuBackend(), true);
        }

        /** A trainer of model {@code name} at {@code batch} on {@code backend}, which stays the caller's. */
        public TrainerLoop(String name, int batch, Backend backend) {
            this(name, batch, backend, false);
        }

        private TrainerLoop(String name, int batch, Backend backend, boolean owns) {
            this.backend = backend;
            this.ownsBackend = owns;
            ops = NnOps.forBackend(backend);
            attention = AttentionOps.forBackend(backend);
            scope = TensorScope.open();
            model = Workloads.model(name, ops, attention, scope);
            long[] shape = model.sampleShape();
            int size = 1;
            for (long d : shape) {
                size *= (int) d;
            }
            int n = 1024;
            float[] data = new float[n * size];
            java.util.SplittableRandom r = new java.util.SplittableRandom(3);
            for (int i = 0; i < data.length; i++) {
                data[i] = (float) r.nextDouble(-1, 1);
            }
            int[] labels = null;
            List<String> names = List.of();
            if (model.numClasses() > 0) {
                labels = new int[n];
                for (int i = 0; i < n; i++) {
                    labels[i] = i % CLASSES;
                }
                names = Datasets.FASHION_MNIST_CLASSES;
            }
            trainer = new Trainer(model, ops, Dataset.of(data, shape, labels, names),
                    TrainingConfig.defaults(7, batch, 1_000_000));
        }

        /** One {@link Trainer#step()}. */
        public void step() {
            lastLoss = trainer.step().loss();
        }

        /** The loss of the last step. */
        public double loss() {
            return lastLoss;
        }

        /** The model. */
        public DenoiserModel model() {
            return model;
        }

        @Override
        public void close() {
            trainer.close();
            scope.close();
            attention.close();
            ops.close();
            if (ownsBackend) {
                backend.close();
            }
        }
    }

    /**
     * A class-conditional DiT sampling with DPM-Solver++(2M) (Lu et al. 2022b) and classifier-free guidance
     * {@link #GUIDANCE} (one model call of batch {@code 2B} per step, {@link DiT#predictGuided}), v-prediction,
     * cosine VP schedule, times {@code linspace(1, 0, steps + 1)} clipped to {@code [1e-3, 0.999]} at the ends.
     */
    public static final class SampleLoop implements AutoCloseable {
        final Backend backend;
        final boolean ownsBackend;
        final NnOps ops;
        final AttentionOps attention;
        final DiffusionOps diffusion;
        final TensorScope scope;
        final DenoiserModel model;
        final Tensor x;
        final Tensor cond;
        final Tensor uncond;
        final SamplerContext ctx;
        final NoiseSchedule schedule = CosineSchedule.nicholDhariwal();

        /** A sampler of DiT {@code name} at {@code batch} on a new CPU backend (default threads). */
        public SampleLoop(String name, int batch) {
            this(name, batch, new CpuBackend(), true);
        }

        /** A sampler of DiT {@code name} at {@code batch} on {@code backend}, which stays the caller's. */
        public SampleLoop(String name, int batch, Backend backend) {
            this(name, batch, backend, false);
        }

        private SampleLoop(String name, int batch, Backend backend, boolean owns) {
            this.backend = backend;
            this.ownsBackend = owns;
            ops = NnOps.forBackend(backend);
            attention = AttentionOps.forBackend(backend);
            diffusion = DiffusionOps.forBackend(backend);
            scope = TensorScope.open();
            model = Workloads.model(name, ops, attention, scope);
            x = backend.empty(scope, DType.F32, batchShape(model, batch));
            cond = labels(batch, false);
            uncond = labels(batch, true);
            ctx = SamplerContext.builder(backend, model, Prediction.V).ops(diffusion)
                    .condition(cond).guidance(Guidance.of(GUIDANCE), uncond)
                    .noise(NoiseSeeds.batch(99, 0, 0, batch)).build();
        }

        private Tensor labels(int batch, boolean nullClass) {
            Tensor t = backend.empty(scope, DType.I32, batch);
            try (Arena a = Arena.ofConfined()) {
                MemorySegment s = a.allocate(4L * batch);
                for (int b = 0; b < batch; b++) {
                    s.setAtIndex(ValueLayout.JAVA_INT, b, nullClass ? CLASSES : b % CLASSES);
                }
                backend.copyFromHost(s, t);
            }
            return t;
        }

        /** The grid of {@code steps} steps. */
        public SamplingGrid grid(int steps) {
            double[] times = new double[steps + 1];
            for (int i = 0; i <= steps; i++) {
                times[i] = 1.0 - (double) i / steps;
            }
            times[0] = 0.999;
            times[steps] = 0.0;
            return SamplingGrid.ofTimes(schedule, times);
        }

        /** Draws the initial noise and runs {@code grid} over it. */
        public void sample(SamplingGrid grid) {
            ctx.initialNoise(x, grid);
            ctx.sample(Samplers.dpmSolverPp2m(), x, grid);
        }

        /** The current samples. */
        public Tensor samples() {
            return x;
        }

        /** The sampler context (its grid and noise set up). */
        public SamplerContext context() {
            return ctx;
        }

        @Override
        public void close() {
            ctx.close();
            scope.close();
            diffusion.close();
            attention.close();
            ops.close();
            if (ownsBackend) {
                backend.close();
            }
        }
    }
}
