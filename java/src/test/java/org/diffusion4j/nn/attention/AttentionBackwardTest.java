package org.diffusion4j.nn.attention;

import org.diffusion4j.cpu.CpuAttention;
import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.attention.AttentionOracle.Dims;
import org.diffusion4j.nn.attention.AttentionOracle.Grads;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.diffusion4j.nn.attention.AttentionOracle.flooredErr;
import static org.diffusion4j.nn.attention.AttentionOracle.poisoned;
import static org.diffusion4j.nn.attention.AttentionOracle.relErr;
import static org.diffusion4j.nn.attention.AttentionOracle.scaledErr;
import static org.diffusion4j.nn.attention.AttentionOracle.seedOf;
import static org.diffusion4j.nn.attention.AttentionOracle.widen;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The backward pass ({@code dq}, {@code dk}, {@code dv} of {@code loss = Σ dOut∘out}) of the fused
 * {@link CpuAttention} and of the naive {@link ComposedAttention}:
 * <ul>
 *   <li>on small shapes against float64 central finite differences of the float64 forward oracle (which also
 *       validates the oracle's analytic gradient);</li>
 *   <li>on larger shapes — several query blocks and key tiles, partial last tiles, head dims 32/64/128 — against
 *       the float64 analytic gradient;</li>
 *   <li>fused against naive on the same fp32 inputs.</li>
 * </ul>
 * The backward is fed the op's own fp32 forward outputs ({@code out}, {@code lse}), as in training.
 */
class AttentionBackwardTest {

    /** fp32 gradient bound, ‖g − ref‖/‖ref‖ (measured ~5e-7 on N(0, 1) inputs). */
    static final double TOL = 2e-5;

    private static CpuBackend backend;
    private static CpuAttention fused;
    private static ComposedAttention composed;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
        fused = new CpuAttention(backend, 2);
        composed = new ComposedAttention(backend);
    }

    @AfterAll
    static void tearDown() {
        fused.close();
        backend.close();
    }

    @Test
    void matchesCentralFiniteDifferencesOnSmallShapes() {
        Dims[] cases = {new Dims(1, 1, 1, 2, 1), new Dims(2, 1, 5, 5, 3), new Dims(1, 3, 3, 6, 4),
            new Dims(1, 1, 9, 2, 5)};
        for (Dims d : cases) {
            String name = "finite differences " + d;
            SplittableRandom r = AttentionOracle.random(name);
            float[] qa = AttentionOracle.normal(r, d.qSize(), 1);
            float[] ka = AttentionOracle.normal(r, d.kSize(), 1);
            float[] va = AttentionOracle.normal(r, d.kSize(), 1);
            float[] doa = AttentionOracle.normal(r, d.qSize(), 1);
            float scale = AttentionOps.defaultScale(d.dh());
            double[] q = widen(qa);
            double[] k = widen(ka);
            double[] v = widen(va);
            double[] dOut = widen(doa);
            double h = 1e-6;
            Grads fd = new Grads(AttentionOracle.finiteDifferences(d, q, k, v, dOut, scale, q, h),
                    AttentionOracle.finiteDifferences(d, q, k, v, dOut, scale, k, h),
                    AttentionOracle.finiteDifferences(d, q, k, v, dOut, scale, v, h));
            Grads analytic = AttentionOracle.backward(d, q, k, v, dOut, scale);
            String where = name + ", " + seedOf(name);
            // the oracle's analytic gradient is the derivative of the oracle's forward (central differences carry
            // ~1e-16·|f|/h ≈ 1e-10 of rounding: a gradient that cancels to ~0 is judged against a 1e-3 floor)
            assertTrue(flooredErr(analytic.dq(), fd.dq(), 1e-3) < 1e-7, "oracle dq vs finite differences, " + where);
            assertTrue(flooredErr(analytic.dk(), fd.dk(), 1e-3) < 1e-7, "oracle dk vs finite differences, " + where);
            assertTrue(flooredErr(analytic.dv(), fd.dv(), 1e-3) < 1e-7, "oracle dv vs finite differences, " + where);
            checkAgainst(d, qa, ka, va, doa, scale, fd, TOL, where + " (vs finite differences)");
        }
    }

    @Test
    void matchesFloat64AnalyticGradientOnLargerShapes() {
        Dims[] cases = {new Dims(1, 3, 257, 257, 64), new Dims(3, 1, 100, 100, 32), new Dims(1, 1, 130, 130, 128),
            new Dims(1, 3, 49, 49, 32), new Dims(1, 1, 65, 300, 24), new Dims(1, 1, 200, 7, 64)};
        for (Dims d : cases) {
            String name = "analytic " + d;
            SplittableRandom r = AttentionOracle.random(name);
            float[] qa = AttentionOracle.normal(r, d.qSize(), 1);
            float[] ka = AttentionOracle.normal(r, d.kSize(), 1);
            float[] va = AttentionOracle.normal(r, d.kSize(), 1);
            float[] doa = AttentionOracle.normal(r, d.qSize(), 1);
            float scale = AttentionOps.defaultScale(d.dh());
            Grads ref = AttentionOracle.backward(d, widen(qa), widen(ka), widen(va), widen(doa), scale);
            checkAgainst(d, qa, ka, va, doa, scale, ref, TOL, name + ", " + seedOf(name));
        }
    }

    /** Fused and naive backward agree on the same fp32 forward outputs. */
    @Test
    void fusedEqualsNaiveComposedPath() {
        Dims d = new Dims(2, 3, 150, 150, 64);
        String name = "fused vs naive " + d;
        SplittableRandom r = AttentionOracle.random(name);
        float scale = AttentionOps.defaultScale(d.dh());
        try (TensorScope s = TensorScope.open()) {
            Tensor q = tensor(s, AttentionOracle.normal(r, d.qSize(), 1.5), d, d.tq());
            Tensor k = tensor(s, AttentionOracle.normal(r, d.kSize(), 1.5), d, d.tk());
            Tensor v = tensor(s, AttentionOracle.normal(r, d.kSize(), 1), d, d.tk());
            Tensor dOut = tensor(s, AttentionOracle.normal(r, d.qSize(), 1), d, d.tq());
            Tensor out = poisoned(backend, s, d.b(), d.h(), d.tq(), d.dh());
            Tensor lse = poisoned(backend, s, d.b(), d.h(), d.tq());
            fused.forward(q, k, v, scale, out, lse);
            Tensor outN = poisoned(backend, s, d.b(), d.h(), d.tq(), d.dh());
            Tensor lseN = poisoned(backend, s, d.b(), d.h(), d.tq());
            composed.forward(q, k, v, scale, outN, lseN);
            String where = name + ", " + seedOf(name);
            assertTrue(relErr(out.toFloatArray(), widen(outN.toFloatArray())) < 1e-5, "out, " + where);
            assertTrue(relErr(lse.toFloatArray(), widen(lseN.toFloatArray())) < 1e-6, "lse, " + where);
            Tensor[] gf = grads(s, d);
            Tensor[] gn = grads(s, d);
            fused.backward(q, k, v, out, lse, dOut, scale, gf[0], gf[1], gf[2]);
            composed.backward(q, k, v, outN, lseN, dOut, scale, gn[0], gn[1], gn[2]);
            String[] names = {"dq", "dk", "dv"};
            for (int i = 0; i < 3; i++) {
                double e = relErr(gf[i].toFloatArray(), widen(gn[i].toFloatArray()));
                assertTrue(e < TOL, names[i] + " fused vs naive rel error " + e + ", " + where);
            }
        }
    }

    /** With no queries, nothing attends to the keys: their gradients are zero (written over the poison). */
    @Test
    void noQueriesGiveZeroKeyGradients() {
        try (TensorScope s = TensorScope.open()) {
            for (AttentionOps ops : new AttentionOps[] {fused, composed}) {
                Tensor q = backend.zeros(s, DType.F32, 1, 2, 0, 4);
                Tensor k = backend.zeros(s, DType.F32, 1, 2, 3, 4);
                Tensor lse = backend.zeros(s, DType.F32, 1, 2, 0);
                Tensor dk = poisoned(backend, s, 1, 2, 3, 4);
                Tensor dv = poisoned(backend, s, 1, 2, 3, 4);
                ops.backward(q, k, k, q, lse, q, 0.5f, backend.zeros(s, DType.F32, 1, 2, 0, 4), dk, dv);
                assertArrayEquals(new float[24], dk.toFloatArray(), ops.toString());
                assertArrayEquals(new float[24], dv.toFloatArray(), ops.toString());
            }
        }
    }

    /**
     * One key: the softmax is constantly 1, so {@code out = v} whatever {@code q} and {@code k} are — their
     * gradients vanish (up to fp32 rounding) and {@code dv = Σ_i dOut_i}.
     */
    @Test
    void singleKeyGradients() {
        String name = "single key";
        SplittableRandom r = AttentionOracle.random(name);
        int tq = 70;
        int dh = 16;
        float[] doa = AttentionOracle.normal(r, 3 * tq * dh, 1);
        try (TensorScope s = TensorScope.open()) {
            Tensor q = backend.fromArray(s, AttentionOracle.normal(r, 3 * tq * dh, 1), 1, 3, tq, dh);
            Tensor k = backend.fromArray(s, AttentionOracle.normal(r, 3 * dh, 1), 1, 3, 1, dh);
            Tensor v = backend.fromArray(s, AttentionOracle.normal(r, 3 * dh, 1), 1, 3, 1, dh);
            Tensor dOut = backend.fromArray(s, doa, 1, 3, tq, dh);
            for (AttentionOps ops : new AttentionOps[] {fused, composed}) {
                Tensor out = poisoned(backend, s, 1, 3, tq, dh);
                Tensor lse = poisoned(backend, s, 1, 3, tq);
                ops.forward(q, k, v, 0.25f, out, lse);
                Tensor dq = poisoned(backend, s, 1, 3, tq, dh);
                Tensor dk = poisoned(backend, s, 1, 3, 1, dh);
                Tensor dv = poisoned(backend, s, 1, 3, 1, dh);
                ops.backward(q, k, v, out, lse, dOut, 0.25f, dq, dk, dv);
                double[] sum = new double[3 * dh];
                for (int h = 0; h < 3; h++) {
                    for (int i = 0; i < tq; i++) {
                        for (int x = 0; x < dh; x++) {
                            sum[h * dh + x] += doa[(h * tq + i) * dh + x];
                        }
                    }
                }
                String where = ops + ", " + seedOf(name);
                assertTrue(relErr(dv.toFloatArray(), sum) < 1e-6, "dv = sum of dOut, " + where);
                for (float g : dq.toFloatArray()) {
                    assertTrue(Math.abs(g) < 1e-5, "dq element " + g + " should vanish, " + where);
                }
                for (float g : dk.toFloatArray()) {
                    assertTrue(Math.abs(g) < 1e-4, "dk element " + g + " should vanish, " + where);
                }
            }
        }
    }

    /** Runs forward then backward of both implementations and compares the gradients with {@code ref}. */
    private static void checkAgainst(Dims d, float[] qa, float[] ka, float[] va, float[] doa, float scale, Grads ref,
                                     double tol, String where) {
        Grads mag = AttentionOracle.backwardMagnitude(d, widen(qa), widen(ka), widen(va), widen(doa), scale);
        try (TensorScope s = TensorScope.open()) {
            Tensor q = tensor(s, qa, d, d.tq());
            Tensor k = tensor(s, ka, d, d.tk());
            Tensor v = tensor(s, va, d, d.tk());
            Tensor dOut = tensor(s, doa, d, d.tq());
            for (AttentionOps ops : new AttentionOps[] {fused, composed}) {
                Tensor out = poisoned(backend, s, d.b(), d.h(), d.tq(), d.dh());
                Tensor lse = poisoned(backend, s, d.b(), d.h(), d.tq());
                ops.forward(q, k, v, scale, out, lse);
                Tensor[] g = grads(s, d);
                ops.backward(q, k, v, out, lse, dOut, scale, g[0], g[1], g[2]);
                // errors against the magnitudes the float sums carry (a gradient may cancel to nearly 0)
                double eq = scaledErr(g[0].toFloatArray(), ref.dq(), mag.dq());
                double ek = scaledErr(g[1].toFloatArray(), ref.dk(), mag.dk());
                double ev = scaledErr(g[2].toFloatArray(), ref.dv(), mag.dv());
                assertTrue(eq < tol, "dq rel error " + eq + " >= " + tol + ", " + ops + " " + where);
                assertTrue(ek < tol, "dk rel error " + ek + " >= " + tol + ", " + ops + " " + where);
                assertTrue(ev < tol, "dv rel error " + ev + " >= " + tol + ", " + ops + " " + where);
            }
        }
    }

    private static Tensor tensor(TensorScope s, float[] a, Dims d, int rows) {
        return backend.fromArray(s, a, d.b(), d.h(), rows, d.dh());
    }

    /** Poisoned {@code dq, dk, dv}. */
    private static Tensor[] grads(TensorScope s, Dims d) {
        return new Tensor[] {poisoned(backend, s, d.b(), d.h(), d.tq(), d.dh()),
            poisoned(backend, s, d.b(), d.h(), d.tk(), d.dh()), poisoned(backend, s, d.b(), d.h(), d.tk(), d.dh())};
    }
}
