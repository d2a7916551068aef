package org.diffusion4j.metrics;

import org.diffusion4j.random.Philox;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SoftmaxCrossEntropyTest {

    private static double[] randomLogits(int b, int k, double scale, long seed) {
        double[] z = new double[b * k];
        for (int i = 0; i < z.length; i++) {
            z[i] = scale * Philox.normal(seed, 0, i);
        }
        return z;
    }

    private static int[] randomLabels(int b, int k, long seed) {
        int[] y = new int[b];
        for (int i = 0; i < b; i++) {
            y[i] = (int) Math.min(k - 1, Math.floor(Philox.uniform(seed, 1, i) * k));
        }
        return y;
    }

    /** The textbook form {@code −(1/B) Σ log(exp(z_y) / Σ exp(z_j))}, no max shift (fine for moderate logits). */
    private static double oracle(double[] z, int[] y, int k) {
        double total = 0;
        for (int b = 0; b < y.length; b++) {
            double sum = 0;
            for (int j = 0; j < k; j++) {
                sum += Math.exp(z[b * k + j]);
            }
            total -= Math.log(Math.exp(z[b * k + y[b]]) / sum);
        }
        return total / y.length;
    }

    @Test
    void lossMatchesTheTextbookFormula() {
        int b = 5;
        int k = 7;
        double[] z = randomLogits(b, k, 2.0, 3);
        int[] y = randomLabels(b, k, 3);
        double loss = SoftmaxCrossEntropy.lossAndGradient(z, y, k, null);
        assertEquals(oracle(z, y, k), loss, 1e-12 * Math.max(1, loss));
    }

    @Test
    void gradientMatchesCentralFiniteDifferences() {
        int b = 3;
        int k = 5;
        double[] z = randomLogits(b, k, 1.5, 11);
        int[] y = randomLabels(b, k, 11);
        double[] grad = new double[z.length];
        SoftmaxCrossEntropy.lossAndGradient(z, y, k, grad);
        double h = 1e-5;
        double maxErr = 0;
        for (int i = 0; i < z.length; i++) {
            double[] zp = z.clone();
            double[] zm = z.clone();
            zp[i] += h;
            zm[i] -= h;
            double fd = (SoftmaxCrossEntropy.lossAndGradient(zp, y, k, null)
                    - SoftmaxCrossEntropy.lossAndGradient(zm, y, k, null)) / (2 * h);
            maxErr = Math.max(maxErr, Math.abs(fd - grad[i]));
        }
        assertTrue(maxErr < 1e-9, "max |fd - analytic| = " + maxErr);
        // each row of the gradient sums to 0 (softmax minus one-hot)
        for (int r = 0; r < b; r++) {
            double s = 0;
            for (int j = 0; j < k; j++) {
                s += grad[r * k + j];
            }
            assertEquals(0, s, 1e-15);
        }
    }

    @Test
    void hugeLogitsStayFinite() {
        double[] z = {1000, -1000, 999};
        double loss = SoftmaxCrossEntropy.lossAndGradient(z, new int[] {2}, 3, new double[3]);
        // log(1 + e^{-1} + e^{-1999}) + 1 for label 2
        assertEquals(1 + Math.log1p(Math.exp(-1)), loss, 1e-12);
    }

    @Test
    void badInputIsRefusedNamingTheValue() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SoftmaxCrossEntropy.lossAndGradient(new double[6], new int[] {0, 3}, 3, null));
        assertTrue(e.getMessage().contains("label 3"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> SoftmaxCrossEntropy.lossAndGradient(new double[5], new int[] {0, 1}, 3, null));
        assertTrue(e.getMessage().contains("length 5"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> SoftmaxCrossEntropy.lossAndGradient(new double[] {0, Double.NaN}, new int[] {0}, 2, null));
        assertTrue(e.getMessage().contains("NaN"), e.getMessage());
    }

    @Test
    void argmaxTakesTheFirstOfTies() {
        assertArrayEquals(new int[] {1, 0, 2}, SoftmaxCrossEntropy.argmax(new float[] {0, 2, 2, 5, 1, 1, -1, -2, 0},
                3));
        assertThrows(IllegalArgumentException.class, () -> SoftmaxCrossEntropy.argmax(new float[] {Float.NaN, 2}, 2));
    }
}
