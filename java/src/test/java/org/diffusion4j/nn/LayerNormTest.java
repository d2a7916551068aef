package org.diffusion4j.nn;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.diffusion4j.nn.NnTestSupport.GRAD;
import static org.diffusion4j.nn.NnTestSupport.REDUCTION;
import static org.diffusion4j.nn.NnTestSupport.abs;
import static org.diffusion4j.nn.NnTestSupport.assertClose;
import static org.diffusion4j.nn.NnTestSupport.assertCloseScaled;
import static org.diffusion4j.nn.NnTestSupport.doubles;
import static org.diffusion4j.nn.NnTestSupport.dot;
import static org.diffusion4j.nn.NnTestSupport.numericGrad;
import static org.diffusion4j.nn.NnTestSupport.poisoned;
import static org.diffusion4j.nn.NnTestSupport.random;
import static org.diffusion4j.nn.NnTestSupport.seedOf;
import static org.diffusion4j.nn.NnTestSupport.uniform;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LayerNorm with and without affine, fused with adaLN modulation (per-sample shift/scale, also as strided column
 * slices of a {@code [B, 6D]} tensor), and the adaLN-Zero gated residual: forward against float64, every backward
 * by central differences.
 */
class LayerNormTest {

    static CpuBackend be;
    static NnOps ops;

    @BeforeAll
    static void start() {
        be = new CpuBackend(1);
        ops = NnOps.forBackend(be);
    }

    @AfterAll
    static void stop() {
        ops.close();
        be.close();
    }

    /** {B, T, D}. */
    static final int[][] SHAPES = {{1, 1, 1}, {1, 1, 2}, {3, 5, 7}, {2, 1, 129}, {4, 37, 33}, {2, 3, 1031},
        {3, 113, 97}, {5, 0, 3}};

    /** Per-sample operand {@code [B, D]}: contiguous, or a column slice of a {@code [B, 3D]} tensor (strided rows). */
    static Tensor perSample(TensorScope scope, float[] v, int b, int d, boolean strided, int slot) {
        if (!strided) {
            return be.fromArray(scope, v, b, d);
        }
        float[] wide = new float[b * 3 * d];
        java.util.Arrays.fill(wide, Float.NaN);
        for (int i = 0; i < b; i++) {
            System.arraycopy(v, i * d, wide, i * 3 * d + slot * d, d);
        }
        return be.fromArray(scope, wide, b, 3 * d).slice(1, (long) slot * d, (long) (slot + 1) * d);
    }

    @Test
    void forwardMatchesFloat64() {
        for (int[] sh : SHAPES) {
            int b = sh[0];
            int t = sh[1];
            int d = sh[2];
            for (int variant = 0; variant < 5; variant++) {
                boolean affine = variant == 1 || variant == 3;
                boolean modulated = variant >= 2;
                boolean strided = variant == 4;
                String tc = "layerNorm " + java.util.Arrays.toString(sh) + " affine=" + affine + " modulated="
                        + modulated + " strided=" + strided;
                SplittableRandom r = random(tc);
                float eps = variant == 1 ? 1e-5f : 1e-6f;
                try (TensorScope scope = TensorScope.open()) {
                    LayerNorm ln = new LayerNorm(ops, scope, d, eps, affine);
                    float[] g = uniform(r, d, 0.5, 1.5);
                    float[] bt = uniform(r, d, -0.5, 0.5);
                    if (affine) {
                        ln.weight().value().copyFrom(g);
                        ln.bias().value().copyFrom(bt);
                    }
                    float[] x = uniform(r, (long) b * t * d, -3, 5);
                    float[] sh1 = uniform(r, (long) b * d, -1, 1);
                    float[] sc1 = uniform(r, (long) b * d, -1, 1);
                    LayerNorm.Cache c = modulated
                            ? ln.forward(scope, be.fromArray(scope, x, b, t, d),
                                perSample(scope, sh1, b, d, strided, 0), perSample(scope, sc1, b, d, strided, 1))
                            : ln.forward(scope, be.fromArray(scope, x, b, t, d));
                    double[] ref = Ref.layerNorm(doubles(x), b, t, d, affine ? doubles(g) : null,
                            affine ? doubles(bt) : null, modulated ? doubles(sh1) : null,
                            modulated ? doubles(sc1) : null, eps);
                    // The float32 x − μ loses |x| + |μ| ulps when two values of a short row nearly agree; the
                    // error is measured against that magnitude carried through rstd, γ and the modulation.
                    double[] scale = new double[ref.length];
                    for (int row = 0; row < b * t; row++) {
                        double mu = 0;
                        for (int j = 0; j < d; j++) {
                            mu += x[row * d + j];
                        }
                        mu /= d;
                        double var = 0;
                        for (int j = 0; j < d; j++) {
                            var += (x[row * d + j] - mu) * (x[row * d + j] - mu);
                        }
                        double rstd = 1 / Math.sqrt(var / d + eps);
                        int bi = row / t;
                        for (int j = 0; j < d; j++) {
                            int i = row * d + j;
                            double m = modulated ? Math.abs(1 + sc1[bi * d + j]) : 1;
                            scale[i] = ((Math.abs(x[i]) + Math.abs(mu)) * rstd * (affine ? Math.abs(g[j]) : 1)
                                    + (affine ? Math.abs(bt[j]) : 0)) * m + (modulated ? Math.abs(sh1[bi * d + j]) : 0)
                                    + Math.abs(ref[i]);
                        }
                    }
                    assertCloseScaled(tc, c.out().toFloatArray(), ref, scale, REDUCTION, seedOf(tc));
                }
            }
        }
    }

    @Test
    void constantRowsNormaliseToBeta() {
        try (TensorScope scope = TensorScope.open()) {
            LayerNorm ln = new LayerNorm(ops, scope, 5, 1e-5f, true);
            ln.bias().value().copyFrom(new float[] {1, 2, 3, 4, 5});
            LayerNorm.Cache c = ln.forward(scope, be.fromArray(scope, new float[] {7, 7, 7, 7, 7, -2, -2, -2, -2, -2},
                    2, 5));
            assertClose("constant rows", c.out().toFloatArray(), new double[] {1, 2, 3, 4, 5, 1, 2, 3, 4, 5}, 0,
                    "no random input");
            assertEquals((float) (1 / Math.sqrt(1e-5f)), c.rstd().toFloatArray()[0], 1e-3f);
        }
    }

    @Test
    void backwardMatchesCentralDifferences() {
        int[][] shapes = {{2, 3, 5}, {3, 1, 4}, {1, 2, 1}};
        for (int[] sh : shapes) {
            int b = sh[0];
            int t = sh[1];
            int d = sh[2];
            for (int variant = 0; variant < 5; variant++) {
                boolean affine = variant == 1 || variant == 3;
                boolean modulated = variant >= 2;
                boolean strided = variant == 4;
                String tc = "layerNorm backward " + java.util.Arrays.toString(sh) + " variant " + variant;
                SplittableRandom r = random(tc);
                float eps = 1e-5f;
                try (TensorScope scope = TensorScope.open()) {
                    LayerNorm ln = new LayerNorm(ops, scope, d, eps, affine);
                    float[] g = uniform(r, d, 0.5, 1.5);
                    float[] bt = uniform(r, d, -0.5, 0.5);
                    if (affine) {
                        ln.weight().value().copyFrom(g);
                        ln.bias().value().copyFrom(bt);
                    }
                    float[] x = uniform(r, (long) b * t * d, -2, 2);
                    float[] sh1 = uniform(r, (long) b * d, -1, 1);
                    float[] sc1 = uniform(r, (long) b * d, -1, 1);
                    float[] w = uniform(r, (long) b * t * d, -1, 1);
                    Tensor shiftT = perSample(scope, sh1, b, d, strided, 0);
                    Tensor scaleT = perSample(scope, sc1, b, d, strided, 1);
                    LayerNorm.Cache c = modulated
                            ? ln.forward(scope, be.fromArray(scope, x, b, t, d), shiftT, scaleT)
                            : ln.forward(scope, be.fromArray(scope, x, b, t, d));
                    Tensor dShift = modulated ? perSample(scope, new float[b * d], b, d, strided, 2) : null;
                    Tensor dScale = modulated ? poisoned(be, scope, b, d) : null;
                    Tensor dx = ln.backward(scope, c, be.fromArray(scope, w, b, t, d), dShift, dScale);

                    double[] xd = doubles(x);
                    double[] gd = affine ? doubles(g) : null;
                    double[] bd = affine ? doubles(bt) : null;
                    double[] shd = modulated ? doubles(sh1) : null;
                    double[] scd = modulated ? doubles(sc1) : null;
                    double[] wd = doubles(w);
                    double h = 1e-6;
                    assertClose(tc + " dx", dx.toFloatArray(), numericGrad(v -> dot(wd,
                            Ref.layerNorm(v, b, t, d, gd, bd, shd, scd, eps)), xd, h), GRAD, seedOf(tc));
                    if (affine) {
                        assertClose(tc + " dGamma", ln.weight().grad().toFloatArray(), numericGrad(v -> dot(wd,
                                Ref.layerNorm(xd, b, t, d, v, bd, shd, scd, eps)), gd.clone(), h), GRAD, seedOf(tc));
                        assertClose(tc + " dBeta", ln.bias().grad().toFloatArray(), numericGrad(v -> dot(wd,
                                Ref.layerNorm(xd, b, t, d, gd, v, shd, scd, eps)), bd.clone(), h), GRAD, seedOf(tc));
                    }
                    if (modulated) {
                        Tensor dShiftC = be.empty(scope, DType.F32, b, d);
                        be.copy(dShift, dShiftC);
                        assertClose(tc + " dShift", dShiftC.toFloatArray(), numericGrad(v -> dot(wd,
                                Ref.layerNorm(xd, b, t, d, gd, bd, v, scd, eps)), shd.clone(), h), GRAD, seedOf(tc));
                        assertClose(tc + " dScale", dScale.toFloatArray(), numericGrad(v -> dot(wd,
                                Ref.layerNorm(xd, b, t, d, gd, bd, shd, v, eps)), scd.clone(), h), GRAD, seedOf(tc));
                    }
                }
            }
        }
    }

    @Test
    void gatedResidualForwardAndBackward() {
        int[][] shapes = {{2, 3, 5}, {1, 1, 1}, {3, 41, 67}, {2, 1, 1030}};
        for (int[] sh : shapes) {
            int b = sh[0];
            int t = sh[1];
            int d = sh[2];
            for (boolean strided : new boolean[] {false, true}) {
                String tc = "gated residual " + java.util.Arrays.toString(sh) + " strided=" + strided;
                SplittableRandom r = random(tc);
                try (TensorScope scope = TensorScope.open()) {
                    float[] x = uniform(r, (long) b * t * d, -2, 2);
                    float[] f = uniform(r, (long) b * t * d, -2, 2);
                    float[] gate = uniform(r, (long) b * d, -1, 1);
                    float[] w = uniform(r, (long) b * t * d, -1, 1);
                    Tensor gateT = perSample(scope, gate, b, d, strided, 2);
                    Tensor fT = be.fromArray(scope, f, b, t, d);
                    Tensor out = Residual.gated(ops, scope, be.fromArray(scope, x, b, t, d), gateT, fT);
                    double[] xd = doubles(x);
                    double[] fd = doubles(f);
                    double[] gd = doubles(gate);
                    // x + gate·f may cancel: judged against |x| + |gate·f|
                    assertCloseScaled(tc, out.toFloatArray(), Ref.gatedResidual(xd, gd, fd, b, t, d),
                            Ref.gatedResidual(abs(xd), abs(gd), abs(fd), b, t, d), 1e-6, seedOf(tc));
                    if ((long) b * t * d > 1000) {
                        continue;       // central differences on the small shapes only
                    }
                    Tensor dGate = poisoned(be, scope, b, d);
                    Tensor df = Residual.gatedBackward(ops, scope, gateT, fT, be.fromArray(scope, w, b, t, d), dGate);
                    double[] wd = doubles(w);
                    assertClose(tc + " df", df.toFloatArray(), numericGrad(v -> dot(wd,
                            Ref.gatedResidual(xd, gd, v, b, t, d)), fd.clone(), 1e-6), GRAD, seedOf(tc));
                    // dGate_b = Σ_t w·f may cancel: judged against Σ_t |w·f|
                    double[] absW = abs(wd);
                    double[] absF = abs(fd);
                    double[] gateScale = numericGrad(v -> dot(absW, Ref.gatedResidual(new double[xd.length], v, absF,
                            b, t, d)), new double[gd.length], 1e-6);
                    assertCloseScaled(tc + " dGate", dGate.toFloatArray(), numericGrad(v -> dot(wd,
                            Ref.gatedResidual(xd, v, fd, b, t, d)), gd.clone(), 1e-6), gateScale, GRAD, seedOf(tc));
                    // dx = dy: the gradient of Σ w·out w.r.t. x is w itself
                    assertClose(tc + " dx", w, numericGrad(v -> dot(wd, Ref.gatedResidual(v, gd, fd, b, t, d)),
                            xd.clone(), 1e-6), GRAD, seedOf(tc));
                }
            }
        }
    }

    @Test
    void badArgumentsAreRejected() {
        try (TensorScope scope = TensorScope.open()) {
            LayerNorm ln = new LayerNorm(ops, scope, 4, 1e-6f, false);
            Tensor x = be.zeros(scope, DType.F32, 2, 3, 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ln.forward(scope, x, be.zeros(scope, DType.F32, 3, 4), null));
            assertTrue(e.getMessage().contains("shift"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> ln.forward(scope, be.zeros(scope, DType.F32, 2, 5)));
            assertThrows(IllegalArgumentException.class, () -> new LayerNorm(ops, scope, 4, 0f, true));
            assertThrows(IllegalArgumentException.class, () -> new LayerNorm(ops, scope, 0, 1e-5f, true));
            Tensor wideT = be.zeros(scope, DType.F32, 4, 2).transpose(0, 1);         // [2, 4] with column stride 2
            e = assertThrows(IllegalArgumentException.class, () -> ln.forward(scope, x, null, wideT));
            assertTrue(e.getMessage().contains("unit stride"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> ops.layerNorm(x, null, null, null, null, Float.NaN,
                    be.zeros(scope, DType.F32, 2, 3, 4), null, null));
        }
    }
}
