package org.diffusion4j.training;

import org.diffusion4j.io.Dataset;
import org.diffusion4j.nn.DenoiserModel;
import org.diffusion4j.nn.DiT;
import org.diffusion4j.nn.MlpDenoiser;
import org.diffusion4j.nn.Parameter;
import org.diffusion4j.optim.AdamW;
import org.diffusion4j.optim.Ema;
import org.diffusion4j.random.Philox;
import org.diffusion4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Data sets, configurations and bitwise comparisons shared by the trainer and checkpoint tests. */
final class TrainingTestSupport {

    private TrainingTestSupport() {
    }

    /** {@code n} points of a 2-D Gaussian with mean {@code (2, −1)} and std {@code (0.5, 0.3)} (Philox normals). */
    static Dataset gaussian2d(int n, long seed) {
        float[] d = new float[2 * n];
        for (int i = 0; i < n; i++) {
            d[2 * i] = (float) (2.0 + 0.5 * Philox.normal(seed, 7, 2L * i));
            d[2 * i + 1] = (float) (-1.0 + 0.3 * Philox.normal(seed, 7, 2L * i + 1));
        }
        return Dataset.of(d, new long[] {2}, null, List.of());
    }

    /** {@code n} random labelled {@code [C, S, S]} images in {@code [-1, 1]} with {@code classes} classes. */
    static Dataset images(int n, int c, int s, int classes, long seed) {
        int per = c * s * s;
        float[] d = new float[n * per];
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            labels[i] = i % classes;
            for (int j = 0; j < per; j++) {
                d[i * per + j] = (2 * Philox.uniform(seed, 8, (long) i * per + j) - 1) * 0.5f
                        + 0.3f * labels[i] - 0.3f;
            }
        }
        return Dataset.of(d, new long[] {c, s, s}, labels, List.of());
    }

    /** A small MLP for 2-D data. */
    static MlpDenoiser.Config mlp() {
        return new MlpDenoiser.Config(2, 24, 2, 16, 1000);
    }

    /** A tiny class-conditional DiT on {@code [1, 4, 4]} images: patch 2, width 8, depth 1, 2 heads, 3 classes. */
    static DiT.Config tinyDit() {
        return new DiT.Config(4, 1, 2, 8, 1, 2, 2.0, 3, 0.0, 16, 1000.0);
    }

    /**
     * A configuration that exercises every part: warm-up and cosine decay, clipping that is active, an EMA whose
     * decay varies from the second update, and weight decay on the matrices.
     */
    static TrainingConfig busy(long seed, int batch, long total) {
        return new TrainingConfig(seed, batch, total, 2e-2, 3, 1e-4, new AdamW.Hyper(0.9, 0.99, 1e-8, 0.05), 0.5,
                new Ema.Schedule(0.999, 0.0, 1.0, 0.75, 0), TrainingConfig.Objective.FLOW, "rf", "uniform", "none",
                0.25, false, 0);
    }

    /** Copies of every parameter value, by name. */
    static Map<String, float[]> weights(DenoiserModel model) {
        Map<String, float[]> m = new LinkedHashMap<>();
        for (Map.Entry<String, Parameter> e : model.module().namedParameters().entrySet()) {
            m.put(e.getKey(), e.getValue().value().toFloatArray());
        }
        return m;
    }

    /** Copies of live tensors, by name. */
    static Map<String, float[]> copies(Map<String, Tensor> tensors) {
        Map<String, float[]> m = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            m.put(e.getKey(), e.getValue().toFloatArray());
        }
        return m;
    }

    /** Asserts two name-to-array maps equal bit for bit (float {@code ==} on bits, NaN-aware). */
    static void assertBitwise(String what, Map<String, float[]> expected, Map<String, float[]> actual) {
        assertEquals(expected.keySet(), actual.keySet(), what + ": names");
        for (Map.Entry<String, float[]> e : expected.entrySet()) {
            float[] a = e.getValue();
            float[] b = actual.get(e.getKey());
            assertEquals(a.length, b.length, what + " " + e.getKey());
            for (int i = 0; i < a.length; i++) {
                if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) {
                    throw new AssertionError(what + " " + e.getKey() + "[" + i + "]: expected " + a[i] + " but was "
                            + b[i]);
                }
            }
        }
    }

    /** The bits of each step's loss, weighted loss, gradient norm and learning rate. */
    static List<long[]> bits(List<StepStats> stats) {
        List<long[]> out = new ArrayList<>();
        for (StepStats s : stats) {
            out.add(new long[] {s.step(), Double.doubleToRawLongBits(s.loss()),
                    Double.doubleToRawLongBits(s.weightedLoss()), Double.doubleToRawLongBits(s.gradNorm()),
                    Double.doubleToRawLongBits(s.clipFactor()), Double.doubleToRawLongBits(s.lr())});
        }
        return out;
    }

    /** Asserts equal per-step bits. */
    static void assertSameTrajectory(List<StepStats> expected, List<StepStats> actual) {
        assertEquals(expected.size(), actual.size(), "number of steps");
        List<long[]> a = bits(expected);
        List<long[]> b = bits(actual);
        for (int i = 0; i < a.size(); i++) {
            assertArrayEquals(a.get(i), b.get(i), "step " + i + ": expected " + expected.get(i) + " but was "
                    + actual.get(i));
        }
    }
}
