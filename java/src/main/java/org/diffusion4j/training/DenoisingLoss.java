package org.diffusion4j.training;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Shape;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Objects;

/**
 * The weighted denoising regression loss of diffusion and flow-matching training and its gradient (Ho et al. 2020,
 * eq. 14, "simple" loss, with per-sample weights such as min-SNR, Hang et al. 2023, or the SD3 weightings, Esser et
 * al. 2024, §3.1):
 * <pre>
 *   L       = (1/B) Σ_b w_b · (1/n) Σ_j (out_bj − u_bj)²         n = numel/B elements per sample
 *   ∂L/∂out = 2 w_b (out − u) / (B n)
 * </pre>
 * what {@link Trainer} uses, for training loops of your own (the targets {@code u} and weights {@code w} come from
 * {@link ForwardNoising}). Per-sample sums are float64 on the host; the elementwise work runs on the tensors'
 * backend.
 */
public final class DenoisingLoss {

    private DenoisingLoss() {
    }

    /**
     * The loss of one batch.
     *
     * @param loss         unweighted mean squared error {@code (1/B) Σ_b mse_b}
     * @param weightedLoss {@code L} above (equal to {@code loss} when every weight is 1)
     * @param perSample    {@code mse_b = (1/n) Σ_j (out_bj − u_bj)²}, one per sample
     */
    public record Value(double loss, double weightedLoss, double[] perSample) {
    }

    /**
     * Computes the loss and, when {@code dOut} is given, writes {@code ∂L/∂out} into it.
     *
     * @param backend backend of the tensors
     * @param scope   scope for the temporaries (e.g. the training step's)
     * @param out     model output {@code [B, ...]}, F32 contiguous
     * @param target  regression target {@code u}, {@code out}'s shape
     * @param weights per-sample loss weights ({@code B} values), or null for all 1
     * @param dOut    output gradient of {@code out}'s shape, or null; may be {@code out} or {@code target} itself
     *                (overwritten last), must not partially overlap them
     * @return the loss values (non-finite when the batch diverged or a weight is not finite: check before
     *         stepping an optimizer)
     * @throws IllegalArgumentException for mismatched shapes, a batch of 0, empty samples or a wrong number of weights
     */
    public static Value compute(Backend backend, TensorScope scope, Tensor out, Tensor target, double[] weights,
                                Tensor dOut) {
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(scope, "scope");
        Shape.requireOperand("out", out, backend, DType.F32);
        Shape.requireOperand("target", target, backend, DType.F32);
        Shape.requireSameShape("target", target, "out", out);
        if (out.rank() < 1 || out.shape(0) < 1) {
            throw new IllegalArgumentException("out " + out + " needs a leading batch dim [B, ...] with B >= 1");
        }
        int batch = Math.toIntExact(out.shape(0));
        long n = out.numel() / batch;
        if (n == 0) {
            throw new IllegalArgumentException("out " + out + " has no elements per sample");
        }
        if (weights != null) {
            if (weights.length != batch) {
                throw new IllegalArgumentException(weights.length + " loss weights for a batch of " + batch);
            }
        }
        if (dOut != null) {
            Shape.requireOperand("dOut", dOut, backend, DType.F32);
            Shape.requireSameShape("dOut", dOut, "out", out);
            Shape.requireSameOrDisjoint("DenoisingLoss", "dOut", dOut, "out", out);     // written last, from a copy
            Shape.requireSameOrDisjoint("DenoisingLoss", "dOut", dOut, "target", target);
        }
        Tensor diff = backend.empty(scope, DType.F32, batch, n);
        backend.binary(Ops.Binary.SUB, out.reshape(batch, n), target.reshape(batch, n), diff);   // out − u
        Tensor sq = backend.empty(scope, DType.F32, batch, n);
        backend.binary(Ops.Binary.MUL, diff, diff, sq);
        Tensor sums = backend.empty(scope, DType.F32, batch, 1);
        backend.reduceLastDim(Ops.Reduce.SUM, sq, sums);                                           // Σ_j (out − u)²
        float[] s = sums.toFloatArray();
        double[] mse = new double[batch];
        float[] scale = new float[batch];
        double l = 0;
        double lw = 0;
        for (int b = 0; b < batch; b++) {
            double w = weights == null ? 1.0 : weights[b];
            mse[b] = (double) s[b] / n;
            l += mse[b];
            lw += w * mse[b];
            scale[b] = (float) (2.0 * w / ((double) batch * n));
        }
        if (dOut != null) {
            backend.binary(Ops.Binary.MUL, diff, backend.fromArray(scope, scale, batch, 1), dOut.reshape(batch, n));
        }
        return new Value(l / batch, lw / batch, mse);
    }
}
