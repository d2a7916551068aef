package org.diffusion4j.cli;

import org.diffusion4j.Backends;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code demo}: a smoke pipeline through the tensor API on the chosen backend. It draws data and Philox
 * noise, forms flow-matching pairs {@code x_t = (1 − t) x0 + t ε} with target {@code u = ε − x0}, and fits
 * a linear velocity model {@code u ≈ x_t W} by gradient descent with GEMMs, printing the loss as it falls.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Run a small flow-matching smoke pipeline through the tensor API and print what it measured.")
final class DemoCommand implements Callable<Integer> {

    @Option(names = "--backend", defaultValue = "auto", description = "auto, cpu, cuda or cuda:N (default: ${DEFAULT-VALUE})")
    String backend;

    @Option(names = "--batch", defaultValue = "4096", description = "pairs per step (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--dim", defaultValue = "64", description = "data dimension (default: ${DEFAULT-VALUE})")
    int dim;

    @Option(names = "--steps", defaultValue = "200", description = "gradient steps (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--seed", defaultValue = "0", description = "Philox seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Override
    public Integer call() {
        if (batch < 1 || dim < 1 || steps < 1) {
            throw new IllegalArgumentException("--batch, --dim and --steps must be >= 1 (got " + batch + ", " + dim
                    + ", " + steps + ")");
        }
        try (Backend be = Backends.create(backend); TensorScope scope = TensorScope.open()) {
            System.out.println("backend     " + be.name());
            long b = batch;
            long d = dim;
            Tensor x0 = be.empty(scope, DType.F32, b, d);
            Tensor eps = be.empty(scope, DType.F32, b, d);
            Tensor t = be.empty(scope, DType.F32, b, 1);
            Tensor omt = be.empty(scope, DType.F32, b, 1);
            Tensor xt = be.empty(scope, DType.F32, b, d);
            Tensor u = be.empty(scope, DType.F32, b, d);
            Tensor pred = be.empty(scope, DType.F32, b, d);
            Tensor err = be.empty(scope, DType.F32, b, d);
            Tensor rowLoss = be.empty(scope, DType.F32, b);
            Tensor w = be.zeros(scope, DType.F32, d, d);
            Tensor grad = be.empty(scope, DType.F32, d, d);
            float lr = 0.5f;
            double first = Double.NaN;
            double last = Double.NaN;
            long start = System.nanoTime();
            for (int step = 0; step < steps; step++) {
                // Data: x0 ~ U(-1, 1)^d scaled per coordinate, so the optimal linear velocity is not trivial.
                be.rand(x0, seed, 3L * step);
                be.scaleShift(x0, 2f, -1f, x0);                                   // x0 [B, D]
                be.randn(eps, seed, 3L * step + 1);                               // ε  [B, D]
                be.rand(t, seed, 3L * step + 2);                                  // t  [B, 1] in (0, 1]
                be.scaleShift(t, -1f, 1f, omt);                                   // 1 − t
                be.binary(Ops.Binary.MUL, eps, t, xt);                            // t ε
                be.fma(x0, omt, xt, xt);                                          // x_t = (1 − t) x0 + t ε
                be.binary(Ops.Binary.SUB, eps, x0, u);                            // u = ε − x0
                be.gemm(false, false, 1f, xt, w, 0f, pred);                       // pred = x_t W  [B, D]
                be.binary(Ops.Binary.SUB, pred, u, err);                          // pred − u
                // grad = 2/(B·D) x_tᵀ (pred − u)   [D, D]
                be.gemm(true, false, 2f / (b * d), xt, err, 0f, grad);
                be.axpby(1f, w, -lr, grad, w);
                if (step == 0 || step == steps - 1) {
                    be.unary(Ops.Unary.SQUARE, err, err);
                    be.reduceLastDim(Ops.Reduce.MEAN, err, rowLoss);
                    double loss = mean(rowLoss.toFloatArray());
                    if (step == 0) {
                        first = loss;
                    }
                    last = loss;
                }
            }
            be.synchronize();
            double seconds = (System.nanoTime() - start) / 1e9;
            float[] e = eps.toFloatArray();
            double m = mean(e);
            double var = 0;
            for (float v : e) {
                var += (v - m) * (v - m);
            }
            var /= e.length;
            double gemmFlops = 2.0 * 2.0 * b * d * d * steps;
            System.out.printf("noise       mean %+.4f  variance %.4f  (standard normal: 0, 1)%n", m, var);
            System.out.printf("model       linear velocity u ≈ x_t·W, %d steps of %d pairs × %d dims%n", steps, b, d);
            System.out.printf("loss        %.4f -> %.4f  (flow-matching MSE, %s)%n", first, last,
                    last < first ? "falling" : "NOT falling");
            System.out.printf("weights     ‖W‖ = %.4f%n", be.globalNorm(List.of(w)));
            System.out.printf("time        %.3f s  (%.3g GFLOP/s in GEMMs)%n", seconds, gemmFlops / seconds / 1e9);
            if (!(last < first) || !Double.isFinite(last)) {
                System.err.println("diffusion4j demo: the loss did not fall (" + first + " -> " + last + ")");
                return 2;
            }
            return 0;
        }
    }

    private static double mean(float[] a) {
        double s = 0;
        for (float v : a) {
            s += v;
        }
        return a.length == 0 ? 0 : s / a.length;
    }
}
