package org.diffusion4j.cpu;

import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.diffusion4j.cpu.CpuTestSupport.ELEMENTWISE;
import static org.diffusion4j.cpu.CpuTestSupport.SHAPES;
import static org.diffusion4j.cpu.CpuTestSupport.assertBitwise;
import static org.diffusion4j.cpu.CpuTestSupport.assertClose;
import static org.diffusion4j.cpu.CpuTestSupport.assertCloseScaled;
import static org.diffusion4j.cpu.CpuTestSupport.awayFromZero;
import static org.diffusion4j.cpu.CpuTestSupport.poisoned;
import static org.diffusion4j.cpu.CpuTestSupport.random;
import static org.diffusion4j.cpu.CpuTestSupport.s;
import static org.diffusion4j.cpu.CpuTestSupport.seedOf;
import static org.diffusion4j.cpu.CpuTestSupport.uniform;
import static org.diffusion4j.cpu.Reference.numel;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Elementwise ops of {@link CpuBackend} against the float64 {@link Reference}, every broadcast, in place. */
class CpuElementwiseTest {

    static CpuBackend cpu;
    TensorScope scope;

    @BeforeAll
    static void start() {
        cpu = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        cpu.close();
    }

    @BeforeEach
    void open() {
        scope = TensorScope.open();
    }

    @AfterEach
    void close() {
        scope.close();
    }

    /** The shapes {@code b} can take against {@code a}: same, one element, row [N], per row [..., 1]. */
    static List<long[]> operandShapes(long[] a) {
        List<long[]> out = new ArrayList<>();
        out.add(a.clone());
        out.add(new long[] {1});
        if (a.length >= 1) {
            out.add(new long[] {a[a.length - 1]});
            long[] perRow = a.clone();
            perRow[perRow.length - 1] = 1;
            out.add(perRow);
        }
        return out;
    }

    static float[] inputFor(Ops.Binary op, SplittableRandom r, long n) {
        return op == Ops.Binary.DIV ? awayFromZero(r, n, 0.25, 4) : uniform(r, n, -3, 3);
    }

    @Test
    void binaryWithEveryBroadcast() {
        for (long[] shape : SHAPES) {
            for (long[] bShape : operandShapes(shape)) {
                for (Ops.Binary op : Ops.Binary.values()) {
                    try (TensorScope scope = TensorScope.open()) {
                        String tc = "binary " + op + " " + s(shape) + " x " + s(bShape);
                        SplittableRandom r = random(tc);
                        float[] av = uniform(r, numel(shape), -3, 3);
                        float[] bv = inputFor(op, r, numel(bShape));
                        Tensor a = cpu.fromArray(scope, av, shape);
                        Tensor b = cpu.fromArray(scope, bv, bShape);
                        Ops.Broadcast kind = Ops.Broadcast.of(a, b);
                        Tensor out = poisoned(cpu, scope, shape);
                        cpu.binary(op, a, b, out);
                        assertClose(tc + " (" + kind + ")", s(shape), out.toFloatArray(),
                                Reference.binary(op, av, shape, kind, bv), ELEMENTWISE, seedOf(tc));
                    }
                }
            }
        }
    }

    @Test
    void binaryWithScalar() {
        for (long[] shape : SHAPES) {
            for (Ops.Binary op : Ops.Binary.values()) {
                try (TensorScope scope = TensorScope.open()) {
                    String tc = "binary scalar " + op + " " + s(shape);
                    SplittableRandom r = random(tc);
                    float[] av = uniform(r, numel(shape), -3, 3);
                    float sv = inputFor(op, r, 1)[0];
                    Tensor a = cpu.fromArray(scope, av, shape);
                    Tensor out = poisoned(cpu, scope, shape);
                    cpu.binary(op, a, sv, out);
                    assertClose(tc, s(shape), out.toFloatArray(),
                            Reference.binary(op, av, shape, Ops.Broadcast.SCALAR, new float[] {sv}), ELEMENTWISE,
                            seedOf(tc));
                }
            }
        }
    }

    @Test
    void maxAndMinFollowMathMaxAndMin() {
        float[] a = {Float.NaN, 1f, -0f, 0f, Float.NEGATIVE_INFINITY, 2f};
        float[] b = {1f, Float.NaN, 0f, -0f, 3f, Float.POSITIVE_INFINITY};
        Tensor ta = cpu.fromArray(scope, a, a.length);
        Tensor tb = cpu.fromArray(scope, b, b.length);
        Tensor out = poisoned(cpu, scope, a.length);
        float[] max = new float[a.length];
        float[] min = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            max[i] = Math.max(a[i], b[i]);
            min[i] = Math.min(a[i], b[i]);
        }
        cpu.binary(Ops.Binary.MAX, ta, tb, out);
        assertBitwise("MAX", max, out.toFloatArray(), "");
        cpu.binary(Ops.Binary.MIN, ta, tb, out);
        assertBitwise("MIN", min, out.toFloatArray(), "");
    }

    @Test
    void binaryInPlace() {
        for (long[] shape : new long[][] {{3, 5}, {129, 517}}) {
            for (long[] bShape : operandShapes(shape)) {
                String tc = "binary in place " + s(shape) + " x " + s(bShape);
                SplittableRandom r = random(tc);
                float[] av = uniform(r, numel(shape), -3, 3);
                float[] bv = uniform(r, numel(bShape), -3, 3);
                Tensor a = cpu.fromArray(scope, av, shape);
                Tensor b = cpu.fromArray(scope, bv, bShape);
                Ops.Broadcast kind = Ops.Broadcast.of(a, b);
                cpu.binary(Ops.Binary.MUL, a, b, a);
                assertClose(tc, s(shape), a.toFloatArray(), Reference.binary(Ops.Binary.MUL, av, shape, kind, bv),
                        ELEMENTWISE, seedOf(tc));
            }
            // out aliasing b (same shape)
            String tc = "binary out = b " + s(shape);
            SplittableRandom r = random(tc);
            float[] av = uniform(r, numel(shape), -3, 3);
            float[] bv = uniform(r, numel(shape), -3, 3);
            Tensor a = cpu.fromArray(scope, av, shape);
            Tensor b = cpu.fromArray(scope, bv, shape);
            cpu.binary(Ops.Binary.SUB, a, b, b);
            assertClose(tc, s(shape), b.toFloatArray(),
                    Reference.binary(Ops.Binary.SUB, av, shape, Ops.Broadcast.NONE, bv), ELEMENTWISE, seedOf(tc));
            // a OP a into a
            Tensor c = cpu.fromArray(scope, av, shape);
            cpu.binary(Ops.Binary.ADD, c, c, c);
            assertClose("a + a in place", s(shape), c.toFloatArray(),
                    Reference.binary(Ops.Binary.ADD, av, shape, Ops.Broadcast.NONE, av), ELEMENTWISE, seedOf(tc));
        }
    }

    static float[] inputFor(Ops.Unary op, SplittableRandom r, long n) {
        return switch (op) {
            case LOG, SQRT, RSQRT -> uniform(r, n, 0.01, 10);
            case RECIPROCAL -> awayFromZero(r, n, 0.1, 10);
            case EXP -> uniform(r, n, -10, 10);
            case TANH, SIGMOID -> uniform(r, n, -8, 8);
            default -> uniform(r, n, -3, 3);
        };
    }

    @Test
    void unaryOps() {
        for (long[] shape : SHAPES) {
            for (Ops.Unary op : Ops.Unary.values()) {
                try (TensorScope scope = TensorScope.open()) {
                    String tc = "unary " + op + " " + s(shape);
                    SplittableRandom r = random(tc);
                    float[] av = inputFor(op, r, numel(shape));
                    Tensor a = cpu.fromArray(scope, av, shape);
                    Tensor out = poisoned(cpu, scope, shape);
                    cpu.unary(op, a, out);
                    assertClose(tc, s(shape), out.toFloatArray(), Reference.unary(op, av), ELEMENTWISE, seedOf(tc));
                    cpu.unary(op, a, a); // in place
                    assertClose(tc + " in place", s(shape), a.toFloatArray(), Reference.unary(op, av), ELEMENTWISE,
                            seedOf(tc));
                }
            }
        }
    }

    @Test
    void unaryEdgeValues() {
        float[] x = {-200f, -88f, 0f, 88f, 200f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        Tensor a = cpu.fromArray(scope, x, x.length);
        Tensor out = poisoned(cpu, scope, x.length);
        cpu.unary(Ops.Unary.SIGMOID, a, out);
        float[] sig = out.toFloatArray();
        assertEquals(0f, sig[0]);
        assertEquals(0.5f, sig[2]);
        assertEquals(1f, sig[4]);
        assertEquals(1f, sig[6]);
        assertEquals(0f, sig[7]);
        assertEquals(Float.NaN, sig[5]);
        cpu.unary(Ops.Unary.TANH, a, out);
        float[] th = out.toFloatArray();
        assertEquals(-1f, th[0]);
        assertEquals(1f, th[4]);
        cpu.unary(Ops.Unary.EXP, a, out);
        float[] ex = out.toFloatArray();
        assertEquals(0f, ex[0]);
        assertEquals(Float.POSITIVE_INFINITY, ex[4]);
    }

    @Test
    void axpby() {
        for (long[] shape : SHAPES) {
            String tc = "axpby " + s(shape);
            SplittableRandom r = random(tc);
            float[] xv = uniform(r, numel(shape), -3, 3);
            float[] yv = uniform(r, numel(shape), -3, 3);
            float alpha = (float) r.nextDouble(-2, 2);
            float beta = (float) r.nextDouble(-2, 2);
            Tensor x = cpu.fromArray(scope, xv, shape);
            Tensor y = cpu.fromArray(scope, yv, shape);
            Tensor out = poisoned(cpu, scope, shape);
            cpu.axpby(alpha, x, beta, y, out);
            double[] ref = Reference.axpby(alpha, xv, beta, yv);
            double[] scale = Reference.axpbyScale(alpha, xv, beta, yv);   // the terms may cancel
            assertCloseScaled(tc, s(shape), out.toFloatArray(), ref, scale, ELEMENTWISE, seedOf(tc));
            cpu.axpby(alpha, x, beta, y, y); // in place on y
            assertCloseScaled(tc + " in place", s(shape), y.toFloatArray(), ref, scale, ELEMENTWISE, seedOf(tc));
        }
    }

    @Test
    void fmaWithEveryBroadcastPair() {
        for (long[] shape : SHAPES) {
            for (long[] bShape : operandShapes(shape)) {
                for (long[] cShape : operandShapes(shape)) {
                    try (TensorScope scope = TensorScope.open()) {
                        String tc = "fma " + s(shape) + " b " + s(bShape) + " c " + s(cShape);
                        SplittableRandom r = random(tc);
                        float[] av = uniform(r, numel(shape), -3, 3);
                        float[] bv = uniform(r, numel(bShape), -3, 3);
                        float[] cv = uniform(r, numel(cShape), -3, 3);
                        Tensor a = cpu.fromArray(scope, av, shape);
                        Tensor b = cpu.fromArray(scope, bv, bShape);
                        Tensor c = cpu.fromArray(scope, cv, cShape);
                        Tensor out = poisoned(cpu, scope, shape);
                        cpu.fma(a, b, c, out);
                        assertCloseScaled(tc, s(shape), out.toFloatArray(), Reference.fma(av, shape,
                                Ops.Broadcast.of(a, b), bv, Ops.Broadcast.of(a, c), cv), Reference.fmaScale(av, shape,
                                Ops.Broadcast.of(a, b), bv, Ops.Broadcast.of(a, c), cv), ELEMENTWISE, seedOf(tc));
                    }
                }
            }
        }
    }

    @Test
    void fmaInPlace() {
        long[] shape = {129, 517};
        String tc = "fma in place";
        SplittableRandom r = random(tc);
        float[] av = uniform(r, numel(shape), -3, 3);
        float[] bv = uniform(r, 517, -3, 3);
        float[] cv = uniform(r, numel(shape), -3, 3);
        Tensor a = cpu.fromArray(scope, av, shape);
        Tensor b = cpu.fromArray(scope, bv, 517);
        Tensor c = cpu.fromArray(scope, cv, shape);
        cpu.fma(a, b, c, c);
        assertCloseScaled(tc, s(shape), c.toFloatArray(),
                Reference.fma(av, shape, Ops.Broadcast.ROW, bv, Ops.Broadcast.NONE, cv),
                Reference.fmaScale(av, shape, Ops.Broadcast.ROW, bv, Ops.Broadcast.NONE, cv), ELEMENTWISE, seedOf(tc));
    }

    @Test
    void scaleShift() {
        for (long[] shape : SHAPES) {
            String tc = "scaleShift " + s(shape);
            SplittableRandom r = random(tc);
            float[] av = uniform(r, numel(shape), -3, 3);
            float sc = (float) r.nextDouble(-2, 2);
            float t = (float) r.nextDouble(-2, 2);
            Tensor a = cpu.fromArray(scope, av, shape);
            Tensor out = poisoned(cpu, scope, shape);
            cpu.scaleShift(a, sc, t, out);
            double[] ref = Reference.scaleShift(av, sc, t);
            double[] scale = Reference.scaleShiftScale(av, sc, t);        // the terms may cancel
            assertCloseScaled(tc, s(shape), out.toFloatArray(), ref, scale, ELEMENTWISE, seedOf(tc));
            cpu.scaleShift(a, sc, t, a);
            assertCloseScaled(tc + " in place", s(shape), a.toFloatArray(), ref, scale, ELEMENTWISE, seedOf(tc));
        }
    }

    @Test
    void rankZeroTensorsActAsOneElement() {
        Tensor a = cpu.fromArray(scope, new float[] {3f});
        Tensor b = cpu.fromArray(scope, new float[] {4f});
        Tensor out = poisoned(cpu, scope);
        cpu.binary(Ops.Binary.MUL, a, b, out);
        assertEquals(12f, out.item());
        cpu.unary(Ops.Unary.SQRT, b, out);
        assertEquals(2f, out.item());
        Tensor v = cpu.fromArray(scope, new float[] {1f, 2f, 3f}, 3);
        Tensor o3 = poisoned(cpu, scope, 3);
        cpu.binary(Ops.Binary.ADD, v, a, o3); // rank-0 b: one element, SCALAR
        assertBitwise("vector + rank-0", new float[] {4f, 5f, 6f}, o3.toFloatArray(), "");
        assertEquals(DType.F32, out.dtype());
    }
}
