package org.diffusion4j.bench.compare;

import org.diffusion4j.bench.DiffusionOpsBench;
import org.diffusion4j.bench.Workloads;
import org.diffusion4j.cpu.CpuAttention;
import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.sampling.DiffusionOps;
import org.diffusion4j.sampling.FusedStep;
import org.diffusion4j.sampling.NoiseSeeds;
import org.diffusion4j.sampling.NoisingCoefficients;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Our side of the PyTorch peer comparison ({@code benchmarks/compare/run.sh}): the work of
 * {@code benchmarks/compare/torch_peer.py} with the same shapes, through the library on the CPU backend, printing
 * one JSON line per case {@code {"case", "impl", "ms": [time of each timed call]}} and a final {@code {"setup"}}
 * line. Not a JMH benchmark: like the Python side it times individual calls after a warm-up, so both sides are
 * measured the same way.
 *
 * <ul>
 *   <li>{@code noise}: the fused forward noising ({@link DiffusionOps#forwardNoise}) of {@code x0 [8, 524288]} at
 *       flow times {@code t_b = (b + 0.5)/8}: {@code x_t = (1 − t) x0 + t ε}, target {@code ε − x0} (what
 *       {@code lerp} and a subtraction give in PyTorch), Philox noise generated in the op;</li>
 *   <li>{@code step}: the fused DPM-Solver++(2M) + CFG step of {@link DiffusionOpsBench#dpmSolverPp2mStep()};</li>
 *   <li>{@code attn-fwd-T*}, {@code attn-fwdbwd-T*}: {@link CpuAttention}, {@code [2, 4, T, 64]};</li>
 *   <li>{@code train-ditA}, {@code train-ditB}: {@link Workloads.TrainLoop#step()} at batch 128.</li>
 * </ul>
 *
 * <p>Arguments: {@code [--quick] [--cases noise,step,attn,ditA,ditB]}; threads from {@code d4j.threads} /
 * {@code D4J_THREADS} as for every {@link CpuBackend}.
 */
public final class Ours {

    static final int N = 524288;
    static final int BATCH = DiffusionOpsBench.BATCH;

    private Ours() {
    }

    interface Call {
        void run();
    }

    /** Minimum warm-up time, so the JIT has compiled the hot loops (C2) before the timed calls, as JMH's warm-up does. */
    static final long WARMUP_NANOS = 2_000_000_000L;

    static List<Double> timed(Call c, int warmup, int calls) {
        long w0 = System.nanoTime();
        for (int i = 0; i < warmup || System.nanoTime() - w0 < WARMUP_NANOS; i++) {
            c.run();
        }
        List<Double> ms = new ArrayList<>();
        for (int i = 0; i < calls; i++) {
            long t0 = System.nanoTime();
            c.run();
            ms.add((System.nanoTime() - t0) / 1e6);
        }
        return ms;
    }

    static void emit(String name, List<Double> ms) {
        StringBuilder s = new StringBuilder("{\"case\": \"").append(name).append("\", \"impl\": \"diffusion4j\", "
                + "\"ms\": [");
        for (int i = 0; i < ms.size(); i++) {
            s.append(i == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%.4f", ms.get(i)));
        }
        System.out.println(s.append("]}"));
        System.out.flush();
    }

    static void noise(CpuBackend cpu, int warmup, int calls) {
        try (TensorScope scope = TensorScope.open(); DiffusionOps ops = DiffusionOps.forBackend(cpu)) {
            Tensor x0 = cpu.empty(scope, DType.F32, BATCH, N);
            Tensor xt = cpu.empty(scope, DType.F32, BATCH, N);
            Tensor target = cpu.empty(scope, DType.F32, BATCH, N);
            cpu.randn(x0, 1, 0);
            double[] a = new double[BATCH];
            double[] s = new double[BATCH];
            double[] c = new double[BATCH];
            double[] d = new double[BATCH];
            for (int b = 0; b < BATCH; b++) {
                double t = (b + 0.5) / BATCH;
                a[b] = 1 - t;
                s[b] = t;
                c[b] = -1;     // target = −x0 + ε
                d[b] = 1;
            }
            NoisingCoefficients k = new NoisingCoefficients(a, s, c, d);
            long[] draw = {0};
            emit("noise", timed(() -> ops.forwardNoise(k, NoiseSeeds.batch(5, 0, BATCH * draw[0]++, BATCH), 0, x0, xt,
                    target, null), warmup, calls));
        }
    }

    static void step(CpuBackend cpu, int warmup, int calls) {
        try (TensorScope scope = TensorScope.open(); DiffusionOps ops = DiffusionOps.forBackend(cpu)) {
            Tensor x = cpu.empty(scope, DType.F32, BATCH, N);
            Tensor cond = cpu.empty(scope, DType.F32, BATCH, N);
            Tensor uncond = cpu.empty(scope, DType.F32, BATCH, N);
            Tensor hist = cpu.empty(scope, DType.F32, BATCH, N);
            cpu.randn(x, 1, 1);
            cpu.randn(cond, 1, 2);
            cpu.randn(uncond, 1, 3);
            cpu.randn(hist, 1, 4);
            FusedStep st = DiffusionOpsBench.dpmSolverPp2mStep();
            emit("step", timed(() -> ops.samplerStep(st, x, x, cond, uncond, hist, x, hist), warmup, calls));
        }
    }

    static void attention(CpuBackend cpu, int[] seqs, int warmup, int calls) {
        for (int t : seqs) {
            try (TensorScope scope = TensorScope.open(); AttentionOps ops = new CpuAttention(cpu)) {
                long[] shape = {2, 4, t, 64};
                Tensor q = cpu.empty(scope, DType.F32, shape);
                Tensor k = cpu.empty(scope, DType.F32, shape);
                Tensor v = cpu.empty(scope, DType.F32, shape);
                Tensor dOut = cpu.empty(scope, DType.F32, shape);
                Tensor out = cpu.empty(scope, DType.F32, shape);
                Tensor lse = cpu.empty(scope, DType.F32, 2, 4, t);
                Tensor dq = cpu.empty(scope, DType.F32, shape);
                Tensor dk = cpu.empty(scope, DType.F32, shape);
                Tensor dv = cpu.empty(scope, DType.F32, shape);
                cpu.randn(q, 1, 0);
                cpu.randn(k, 2, 0);
                cpu.randn(v, 3, 0);
                cpu.randn(dOut, 4, 0);
                float scale = AttentionOps.defaultScale(64);
                emit("attn-fwd-T" + t, timed(() -> ops.forward(q, k, v, scale, out, lse), warmup, calls));
                emit("attn-fwdbwd-T" + t, timed(() -> {
                    ops.forward(q, k, v, scale, out, lse);
                    ops.backward(q, k, v, out, lse, dOut, scale, dq, dk, dv);
                }, warmup, calls));
            }
        }
    }

    static void train(String model, int warmup, int calls) {
        try (Workloads.TrainLoop loop = new Workloads.TrainLoop(model, Workloads.TRAIN_BATCH)) {
            emit("train-" + model, timed(loop::step, warmup, calls));
            double loss = loop.loss();
            if (!Double.isFinite(loss)) {
                throw new IllegalStateException(model + " training diverged: loss " + loss);
            }
        }
    }

    public static void main(String[] args) {
        boolean quick = false;
        Set<String> cases = Set.of("noise", "step", "attn", "ditA", "ditB");
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--quick" -> quick = true;
                case "--cases" -> cases = Set.copyOf(Arrays.asList(args[++i].split(",")));
                default -> {
                    System.err.println("unknown argument " + args[i] + " (--quick, --cases noise,step,attn,ditA,ditB)");
                    System.exit(2);
                }
            }
        }
        boolean q = quick;
        String threads;
        try (CpuBackend cpu = new CpuBackend()) {
            threads = cpu.name();
            if (cases.contains("noise")) {
                noise(cpu, 5, q ? 5 : 15);
            }
            if (cases.contains("step")) {
                step(cpu, 5, q ? 5 : 15);
            }
            if (cases.contains("attn")) {
                attention(cpu, new int[]{256, 1024}, q ? 2 : 3, q ? 3 : 8);
            }
        }
        if (cases.contains("ditA")) {
            train("ditA", q ? 2 : 3, q ? 3 : 6);
        }
        if (cases.contains("ditB")) {
            train("ditB", 1, q ? 1 : 3);
        }
        String setup = "diffusion4j " + threads + ", JDK " + Runtime.version();
        System.out.println("{\"setup\": \"" + setup.replace("\\", "/").replace("\"", "'") + "\"}");
    }
}
