package org.diffusion4j.training;

import org.diffusion4j.TestSeed;
import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** {@link DenoisingLoss} against float64 and its gradient against central differences of the float64 loss. */
class DenoisingLossTest {

    static CpuBackend be;

    @BeforeAll
    static void start() {
        be = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        be.close();
    }

    /** The float64 reference loss of {@link TrainerTest#loss}, with unit weights for {@code w = null}. */
    static double lossOf(double[] out, double[] u, double[] w, int batch) {
        double[] ones = new double[batch];
        java.util.Arrays.fill(ones, 1.0);
        return TrainerTest.loss(out, u, w == null ? ones : w, batch, out.length / batch);
    }

    @Test
    void lossAndGradientMatchFloat64() {
        String seed = "-Dd4j.test.seed=" + TestSeed.BASE;
        SplittableRandom r = new SplittableRandom(TestSeed.BASE ^ 0x10557L);
        long[][] shapes = {{1, 1}, {3, 2, 5}, {4, 1, 7, 7}};
        for (long[] shape : shapes) {
            for (boolean weighted : new boolean[] {false, true}) {
                try (TensorScope s = TensorScope.open()) {
                    int batch = (int) shape[0];
                    int total = 1;
                    for (long d : shape) {
                        total *= (int) d;
                    }
                    float[] o = new float[total];
                    float[] u = new float[total];
                    for (int i = 0; i < total; i++) {
                        o[i] = (float) r.nextGaussian();
                        u[i] = (float) r.nextGaussian();
                    }
                    double[] w = null;
                    if (weighted) {
                        w = new double[batch];
                        for (int b = 0; b < batch; b++) {
                            w[b] = 0.1 + 3 * r.nextDouble();
                        }
                    }
                    Tensor out = be.fromArray(s, o, shape);
                    Tensor target = be.fromArray(s, u, shape);
                    Tensor grad = be.empty(s, DType.F32, shape);
                    be.fill(grad, Float.NaN);
                    DenoisingLoss.Value v = DenoisingLoss.compute(be, s, out, target, w, grad);

                    double[] od = new double[total];
                    double[] ud = new double[total];
                    for (int i = 0; i < total; i++) {
                        od[i] = o[i];
                        ud[i] = u[i];
                    }
                    double want = lossOf(od, ud, w, batch);
                    String what = java.util.Arrays.toString(shape) + " weighted=" + weighted + "; " + seed;
                    assertEquals(want, v.weightedLoss(), 1e-6 * want, "weighted loss " + what);
                    assertEquals(lossOf(od, ud, null, batch), v.loss(), 1e-6 * v.loss(), "loss " + what);
                    // the loss is quadratic: its gradient is exactly 2 w_b (o − u)/(B n) (the central difference of
                    // the float64 loss agrees up to its own rounding); float32 gives it to a few ulps
                    float[] g = grad.toFloatArray();
                    int n = total / batch;
                    for (int i = 0; i < total; i++) {
                        double wi = w == null ? 1 : w[i / n];
                        double exact = 2 * wi * (od[i] - ud[i]) / ((double) batch * n);
                        double h = 1e-6;
                        double keep = od[i];
                        od[i] = keep + h;
                        double up = lossOf(od, ud, w, batch);
                        od[i] = keep - h;
                        double down = lossOf(od, ud, w, batch);
                        od[i] = keep;
                        assertEquals(exact, (up - down) / (2 * h), 1e-6 * Math.abs(exact) + 1e-8, "oracle " + what);
                        double ulps = 2 * wi * (Math.abs(od[i]) + Math.abs(ud[i])) / ((double) batch * n);
                        assertEquals(exact, g[i], 4 * Math.ulp(1f) * ulps, "gradient element " + i + " " + what);
                    }
                    // in place: the gradient into out itself
                    DenoisingLoss.Value again = DenoisingLoss.compute(be, s, out, target, w, out);
                    assertEquals(v.weightedLoss(), again.weightedLoss(), 0.0);
                    assertArrayEquals(g, out.toFloatArray());
                }
            }
        }
    }

    @Test
    void badArgumentsAreNamed() {
        try (TensorScope s = TensorScope.open()) {
            Tensor out = be.zeros(s, DType.F32, 2, 3);
            Tensor u = be.zeros(s, DType.F32, 2, 3);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> DenoisingLoss.compute(be, s, out, be.zeros(s, DType.F32, 3, 2), null, null));
            assertEquals(true, e.getMessage().contains("target"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> DenoisingLoss.compute(be, s, out, u, new double[] {1}, null));
            assertEquals(true, e.getMessage().contains("1 loss weights for a batch of 2"), e.getMessage());
            Tensor wide = be.zeros(s, DType.F32, 3, 3);
            e = assertThrows(IllegalArgumentException.class, () -> DenoisingLoss.compute(be, s, wide.slice(0, 0, 2), u,
                    null, wide.slice(0, 1, 3)));
            assertEquals(true, e.getMessage().contains("dOut"), e.getMessage());
        }
    }
}
