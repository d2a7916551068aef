package org.diffusion4j.nn;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.optim.AdamW;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Arrays;

/**
 * Throwaway timing of one DiT training step on the CPU (forward, MSE gradient, backward, AdamW), not a test: run
 * {@code java -cp <test classpath> org.diffusion4j.nn.DiTStepTiming [A|B] [batch] [steps] [threads]}. Config A is
 * patch 4 / width 128 / depth 4 / 4 heads, B patch 2 / width 192 / depth 6 / 6 heads, both 28×28×1 with 10 classes
 * (issue 5's benchmark configs). Prints the median and per-phase times and the process CPU time per step (less
 * sensitive to other load on a shared machine); timing proper lives in JMH (issue 7).
 */
public final class DiTStepTiming {

    private DiTStepTiming() {
    }

    public static void main(String[] args) {
        String which = args.length > 0 ? args[0] : "A";
        int batch = args.length > 1 ? Integer.parseInt(args[1]) : 128;
        int steps = args.length > 2 ? Integer.parseInt(args[2]) : 10;
        int threads = args.length > 3 ? Integer.parseInt(args[3]) : Runtime.getRuntime().availableProcessors();
        DiT.Config c = which.equals("B") ? DiT.Config.of(28, 1, 2, 192, 6, 6, 10) : DiT.Config.of(28, 1, 4, 128, 4, 4, 10);
        try (CpuBackend be = new CpuBackend(threads); NnOps ops = NnOps.forBackend(be);
             AttentionOps att = AttentionOps.forBackend(be); TensorScope model = TensorScope.open()) {
            DiT m = new DiT(ops, att, model, c, 1);
            // random weights everywhere (the zero adaLN init would skip no work, but keep values realistic)
            long stream = 100;
            for (Parameter p : m.parameters()) {
                Init.normal(p.value(), 0.02, 9, stream++);
            }
            Tensor x = be.empty(model, DType.F32, batch, 1, 28, 28);
            Tensor target = be.empty(model, DType.F32, batch, 1, 28, 28);
            Init.normal(x, 1, 3, 0);
            Init.normal(target, 1, 3, 1);
            double[] t = new double[batch];
            int[] y = new int[batch];
            for (int b = 0; b < batch; b++) {
                t[b] = (b + 0.5) / batch;
                y[b] = b % 11;
            }
            System.out.printf("DiT config %s: %s, %d parameters, batch %d, %d threads%n", which, c, m.parameterCount(),
                    batch, threads);
            boolean reuse = !"off".equals(System.getProperty("workspace"));
            try (AdamW opt = new AdamW(ops, m.namedParameters(), AdamW.Hyper.defaults());
                 org.diffusion4j.tensor.Workspace ws = org.diffusion4j.tensor.Workspace.create()) {
                double[] total = new double[steps];
                double[] fwd = new double[steps];
                double[] bwd = new double[steps];
                double[] cpu = new double[steps];
                var os = (com.sun.management.OperatingSystemMXBean)
                        java.lang.management.ManagementFactory.getOperatingSystemMXBean();
                for (int s = 0; s < steps; s++) {
                    long c0 = os.getProcessCpuTime();
                    long t0 = System.nanoTime();
                    long t1;
                    long t2;
                    try (TensorScope step = reuse ? TensorScope.open(ws) : TensorScope.open()) {
                        DiT.Cache cache = m.forward(step, x, t, y);
                        Tensor d = be.empty(step, DType.F32, x.shape());
                        be.binary(Ops.Binary.SUB, cache.out(), target, d);
                        be.scaleShift(d, (float) (2.0 / d.numel()), 0f, d);            // dMSE/dout
                        t1 = System.nanoTime();
                        m.zeroGrad();
                        m.backward(step, cache, d);
                        t2 = System.nanoTime();
                        opt.step(1e-4);
                    }
                    long t3 = System.nanoTime();
                    cpu[s] = (os.getProcessCpuTime() - c0) / 1e6;
                    total[s] = (t3 - t0) / 1e6;
                    fwd[s] = (t1 - t0) / 1e6;
                    bwd[s] = (t2 - t1) / 1e6;
                    System.out.printf("step %d: %.1f ms (forward %.1f, backward %.1f, adamw+free %.1f), process CPU %.1f ms"
                            + ", workspace %.1f MiB%n", s, total[s], fwd[s], bwd[s], total[s] - fwd[s] - bwd[s], cpu[s],
                            ws.capacity() / 1048576.0);
                }
                System.out.printf("fastest step: %.1f ms%n", Arrays.stream(total).skip(2).min().orElse(total[0]));
                System.out.printf("median of steps 2..: %.1f ms/step (forward %.1f, backward %.1f), %.0f images/s; "
                        + "process CPU %.1f ms/step (a load-independent floor: CPU/threads = %.1f ms)%n", median(total),
                        median(fwd), median(bwd), batch / median(total) * 1e3, median(cpu), median(cpu) / threads);
            }
        }
    }

    private static double median(double[] v) {
        double[] a = Arrays.copyOfRange(v, Math.min(2, v.length - 1), v.length);
        Arrays.sort(a);
        return a[a.length / 2];
    }
}
