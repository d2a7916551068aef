package org.diffusion4j.metrics;

import java.util.Objects;

/**
 * Softmax cross-entropy of class logits against integer labels, averaged over the batch, with its gradient — the
 * training loss of {@link ClassifierFeatures}' classifier (PyTorch {@code F.cross_entropy}, mean reduction).
 *
 * <pre>
 *   p_bk = exp(z_bk − m_b) / Σ_j exp(z_bj − m_b),   m_b = max_j z_bj      (the log-sum-exp shift)
 *   L    = −(1/B) Σ_b log p_{b, y_b} = (1/B) Σ_b (m_b + log Σ_j exp(z_bj − m_b) − z_{b, y_b})
 *   ∂L/∂z_bk = (p_bk − [k = y_b]) / B
 * </pre>
 *
 * Host math in float64 on {@code [B, K]} row-major logits (K is a handful of classes, so this is never the cost of a
 * training step).
 */
public final class SoftmaxCrossEntropy {

    private SoftmaxCrossEntropy() {
    }

    /**
     * The mean loss over the batch and, when {@code dLogits} is not null, its gradient with respect to the logits.
     *
     * @param logits  {@code [B, K]} row-major, finite
     * @param labels  {@code [B]}, each in {@code [0, K)}
     * @param classes {@code K >= 1}
     * @param dLogits {@code [B, K]} output (overwritten), or null
     * @return {@code L >= 0}, nats per sample
     * @throws IllegalArgumentException on a size mismatch, a label out of range or a non-finite logit
     */
    public static double lossAndGradient(double[] logits, int[] labels, int classes, double[] dLogits) {
        Objects.requireNonNull(logits, "logits");
        Objects.requireNonNull(labels, "labels");
        int b = labels.length;
        if (classes < 1 || b < 1 || logits.length != (long) b * classes) {
            throw new IllegalArgumentException("logits of length " + logits.length + " are not [" + b + ", "
                    + classes + "] for " + b + " labels and " + classes + " classes");
        }
        if (dLogits != null && dLogits.length != logits.length) {
            throw new IllegalArgumentException("dLogits has length " + dLogits.length + ", need " + logits.length);
        }
        double total = 0;
        for (int i = 0; i < b; i++) {
            int y = labels[i];
            if (y < 0 || y >= classes) {
                throw new IllegalArgumentException("label " + y + " of sample " + i + " is outside [0, " + classes
                        + ")");
            }
            int row = i * classes;
            double m = Double.NEGATIVE_INFINITY;
            for (int k = 0; k < classes; k++) {
                double z = logits[row + k];
                if (!Double.isFinite(z)) {
                    throw new IllegalArgumentException("logit [" + i + ", " + k + "] is " + z);
                }
                m = Math.max(m, z);
            }
            double sum = 0;
            for (int k = 0; k < classes; k++) {
                sum += Math.exp(logits[row + k] - m);
            }
            double logSum = Math.log(sum);
            total += m + logSum - logits[row + y];                           // −log p_y
            if (dLogits != null) {
                for (int k = 0; k < classes; k++) {
                    double p = Math.exp(logits[row + k] - m - logSum);
                    dLogits[row + k] = (p - (k == y ? 1 : 0)) / b;            // (p − onehot) / B
                }
            }
        }
        return total / b;
    }

    /**
     * Index of the largest logit of each row of {@code [B, K]} logits (the first on ties).
     *
     * @throws IllegalArgumentException for a NaN logit (which no class would be the right answer for)
     */
    public static int[] argmax(float[] logits, int classes) {
        if (classes < 1 || logits.length % classes != 0) {
            throw new IllegalArgumentException(logits.length + " logits are not rows of " + classes + " classes");
        }
        int b = logits.length / classes;
        int[] out = new int[b];
        for (int i = 0; i < b; i++) {
            int best = 0;
            for (int k = 0; k < classes; k++) {
                float v = logits[i * classes + k];
                if (Float.isNaN(v)) {
                    throw new IllegalArgumentException("logit " + k + " of row " + i + " is NaN (a diverged "
                            + "classifier?)");
                }
                if (v > logits[i * classes + best]) {
                    best = k;
                }
            }
            out[i] = best;
        }
        return out;
    }
}
