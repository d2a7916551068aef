package org.diffusion4j.optim;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.Parameter;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;

import static org.diffusion4j.nn.NnTestSupport.assertBitwise;
import static org.diffusion4j.nn.NnTestSupport.assertClose;
import static org.diffusion4j.nn.NnTestSupport.random;
import static org.diffusion4j.nn.NnTestSupport.seedOf;
import static org.diffusion4j.nn.NnTestSupport.uniform;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Global-norm clipping as PyTorch's clip_grad_norm_: factor min(1, maxNorm/(norm + 1e-6)) on every gradient. */
class GradClipTest {

    static CpuBackend be;

    @BeforeAll
    static void start() {
        be = new CpuBackend(1);
    }

    @AfterAll
    static void stop() {
        be.close();
    }

    @Test
    void clipsToTheMaximumNormAndReturnsTheNormBefore() {
        String tc = "clip";
        SplittableRandom r = random(tc);
        try (TensorScope scope = TensorScope.open()) {
            Parameter a = Parameter.zeros(be, scope, "weight", 13, 7);
            Parameter b = Parameter.zeros(be, scope, "bias", 40_003);
            float[] ga = uniform(r, 91, -3, 3);
            float[] gb = uniform(r, 40_003, -1, 1);
            a.grad().copyFrom(ga);
            b.grad().copyFrom(gb);
            double sq = 0;
            for (float v : ga) {
                sq += (double) v * v;
            }
            for (float v : gb) {
                sq += (double) v * v;
            }
            double norm = Math.sqrt(sq);
            List<Parameter> ps = List.of(a, b);
            assertEquals(norm, GradClip.globalNorm(be, ps), 1e-12 * norm);

            double max = norm / 3;
            assertEquals(norm, GradClip.clip(be, ps, max), 1e-12 * norm);
            double f = max / (norm + 1e-6);
            double[] ea = new double[ga.length];
            for (int i = 0; i < ga.length; i++) {
                ea[i] = ga[i] * f;
            }
            assertClose(tc + " a", a.grad().toFloatArray(), ea, 1e-6, seedOf(tc));
            assertEquals(max, GradClip.globalNorm(be, ps), 1e-6 * max);

            float[] before = b.grad().toFloatArray();
            double now = GradClip.clip(be, ps, 10 * norm);
            assertTrue(now < norm);
            assertBitwise(tc + ": below the maximum nothing changes", before, b.grad().toFloatArray(), seedOf(tc));
        }
    }

    @Test
    void nonFiniteNormsLeaveGradientsAlone() {
        try (TensorScope scope = TensorScope.open()) {
            Parameter a = Parameter.zeros(be, scope, "weight", 3);
            a.grad().copyFrom(new float[] {1, Float.NaN, 2});
            assertTrue(Double.isNaN(GradClip.clip(be, List.of(a), 1.0)));
            float[] g = a.grad().toFloatArray();
            assertEquals(1f, g[0]);
            assertEquals(2f, g[2]);
            assertEquals(1.0, GradClip.clipFactor(Double.POSITIVE_INFINITY, 1.0));
            assertEquals(1.0, GradClip.clipFactor(0.5, 1.0));
            assertEquals(0.5 / (2 + 1e-6), GradClip.clipFactor(2, 0.5), 1e-15);
            assertThrows(IllegalArgumentException.class, () -> GradClip.clipFactor(1, 0));
        }
    }
}
