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
                    float[] g = grad.toFloatArray();
                    for (int i = 0; i < total; i++) {
                        double h = 1e-6;
                        double keep = od[i];
                        od[i] = keep + h;
                        double up = lossOf(od, ud, w, batch);
                        od[i] = keep - h;
                        double down = lossOf(od, ud, w, batch);
                        od[i] = keep;
                        double num = (up - down) / (2 * h);
                        double mag = 2 * Math.abs(od[i] - ud[i]) * (w == null ? 1 : w[i / (total / batch)])
                                / total + 1e-12;
                        assertEquals(num, g[i], 1e-5 * mag + 1e-9, "gradient element " + i + " " + what);
                    }
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
            e = assertThrows(IllegalArgumentException.class, () -> DenoisingLoss.compute(be, s, out, u, null, out));
            assertEquals(true, e.getMessage().contains("dOut"), e.getMessage());
        }
    }
}
