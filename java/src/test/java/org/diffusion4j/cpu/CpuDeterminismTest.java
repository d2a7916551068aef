package org.diffusion4j.cpu;

import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.BiFunction;

import static org.diffusion4j.cpu.CpuTestSupport.assertBitwise;
import static org.diffusion4j.cpu.CpuTestSupport.poisoned;
import static org.diffusion4j.cpu.CpuTestSupport.random;
import static org.diffusion4j.cpu.CpuTestSupport.s;
import static org.diffusion4j.cpu.CpuTestSupport.seedOf;
import static org.diffusion4j.cpu.CpuTestSupport.uniform;
import static org.diffusion4j.cpu.Reference.numel;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Every op gives bitwise the same result on 1, 2, 3 and 5 threads: work is cut into pieces that do not
 * depend on the thread count and each row is reduced in one fixed order. Shapes are large enough that the
 * pool is used.
 */
class CpuDeterminismTest {

    static final int[] THREADS = {1, 2, 3, 5};
    static final long[][] SHAPES = {{70_001}, {129, 517}, {3, 40_000}, {40_000, 3}, {2, 150_007}, {7, 1025}};
    static final List<CpuBackend> BACKENDS = new ArrayList<>();

    @BeforeAll
    static void start() {
        for (int t : THREADS) {
            BACKENDS.add(new CpuBackend(t));
        }
    }

    @AfterAll
    static void stop() {
        BACKENDS.forEach(CpuBackend::close);
    }

    /**
     * Runs {@code op(backend, scope)} on every backend over the same inputs (made inside {@code op} from a
     * fixed seed) and asserts the outputs are bitwise equal.
     */
    static void sameOnEveryThreadCount(String what, BiFunction<CpuBackend, TensorScope, float[]> op) {
        float[] first = null;
        for (CpuBackend be : BACKENDS) {
            try (TensorScope scope = TensorScope.open()) {
                float[] out = op.apply(be, scope);
                if (first == null) {
                    first = out;
                } else {
                    assertBitwise(what + " on " + be.threads() + " vs 1 thread", first, out, seedOf(what));
                }
            }
        }
    }

    static Tensor input(CpuBackend be, TensorScope scope, String tc, long[] shape, double lo, double hi) {
        return be.fromArray(scope, uniform(random(tc), numel(shape), lo, hi), shape);
    }

    @Test
    void elementwise() {
        for (long[] shape : SHAPES) {
            long[] row = {shape[shape.length - 1]};
            for (Ops.Binary op : Ops.Binary.values()) {
                String tc = "binary " + op + " " + s(shape);
                sameOnEveryThreadCount(tc, (be, scope) -> {
                    Tensor out = poisoned(be, scope, shape);
                    be.binary(op, input(be, scope, tc + "a", shape, -3, 3), input(be, scope, tc + "b", row, 0.5, 3),
                            out);
                    return out.toFloatArray();
                });
            }
            for (Ops.Unary op : Ops.Unary.values()) {
                String tc = "unary " + op + " " + s(shape);
                sameOnEveryThreadCount(tc, (be, scope) -> {
                    Tensor out = poisoned(be, scope, shape);
                    be.unary(op, input(be, scope, tc, shape, 0.1, 4), out);
                    return out.toFloatArray();
                });
            }
            String tc = "axpby/fma/scaleShift " + s(shape);
            sameOnEveryThreadCount(tc, (be, scope) -> {
                Tensor x = input(be, scope, tc + "x", shape, -3, 3);
                Tensor y = input(be, scope, tc + "y", shape, -3, 3);
                Tensor out = poisoned(be, scope, shape);
                be.axpby(0.7f, x, -1.3f, y, out);
                be.fma(out, input(be, scope, tc + "b", withOne(shape), -3, 3), y, out);
                be.scaleShift(out, 1.1f, 0.2f, out);
                return out.toFloatArray();
            });
        }
    }

    static long[] withOne(long[] shape) {
        long[] s = shape.clone();
        s[s.length - 1] = 1;
        return s;
    }

    @Test
    void reductionsAndSoftmax() {
        for (long[] shape : SHAPES) {
            for (Ops.Reduce op : Ops.Reduce.values()) {
                String tc = "reduce " + op + " " + s(shape);
                sameOnEveryThreadCount(tc, (be, scope) -> {
                    Tensor x = input(be, scope, tc, shape, -3, 3);
                    Tensor out = poisoned(be, scope, x.rows());
                    be.reduceLastDim(op, x, out);
                    return out.toFloatArray();
                });
            }
            String tc = "softmax " + s(shape);
            sameOnEveryThreadCount(tc, (be, scope) -> {
                Tensor out = poisoned(be, scope, shape);
                be.softmaxLastDim(input(be, scope, tc, shape, -10, 10), out);
                return out.toFloatArray();
            });
        }
    }

    @Test
    void globalNorm() {
        String tc = "globalNorm";
        double first = Double.NaN;
        for (CpuBackend be : BACKENDS) {
            try (TensorScope scope = TensorScope.open()) {
                SplittableRandom r = random(tc);
                List<Tensor> xs = new ArrayList<>();
                for (long[] shape : new long[][] {{4099}, {1_000_003}, {0}, {17, 129}, {3, 2, 49_999}}) {
                    xs.add(be.fromArray(scope, uniform(r, numel(shape), -3, 3), shape));
                }
                double n = be.globalNorm(xs);
                if (Double.isNaN(first)) {
                    first = n;
                } else {
                    assertEquals(Double.doubleToRawLongBits(first), Double.doubleToRawLongBits(n),
                            "globalNorm on " + be.threads() + " threads: " + n + " vs " + first + "; " + seedOf(tc));
                }
            }
        }
    }

    @Test
    void copiesCastsAndRandomNumbers() {
        long[] shape = {6, 70, 130};
        String tc = "copies";
        sameOnEveryThreadCount(tc, (be, scope) -> {
            Tensor x = input(be, scope, tc, shape, -3, 3);
            Tensor p = poisoned(be, scope, 130, 6, 70);
            be.permute(x, p, 2, 0, 1);
            Tensor h = be.empty(scope, DType.BF16, 130, 6, 70);
            be.cast(p, h);
            Tensor back = poisoned(be, scope, 130, 6, 70);
            be.cast(h, back);
            Tensor n = poisoned(be, scope, 130, 6, 70);
            be.randn(n, 3, 4);
            be.binary(Ops.Binary.ADD, back, n, back);
            return back.toFloatArray();
        });
    }
}
