package org.diffusion4j.cpu;

import org.diffusion4j.tensor.Ops;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.diffusion4j.cpu.CpuTestSupport.REDUCTION;
import static org.diffusion4j.cpu.CpuTestSupport.SHAPES;
import static org.diffusion4j.cpu.CpuTestSupport.assertClose;
import static org.diffusion4j.cpu.CpuTestSupport.poisoned;
import static org.diffusion4j.cpu.CpuTestSupport.random;
import static org.diffusion4j.cpu.CpuTestSupport.s;
import static org.diffusion4j.cpu.CpuTestSupport.seedOf;
import static org.diffusion4j.cpu.CpuTestSupport.uniform;
import static org.diffusion4j.cpu.CpuTestSupport.withLast;
import static org.diffusion4j.cpu.Reference.numel;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Row reductions, softmax and the global norm of {@link CpuBackend} against the float64 {@link Reference}. */
class CpuReductionTest {

    static CpuBackend cpu;

    /** Row lengths on both sides of the 1024-element block, long rows, many short rows. */
    static final long[][] ROW_SHAPES = {
        {1}, {3, 1}, {3, 5}, {17, 129}, {2, 3, 67}, {1000, 3}, {37, 1023}, {37, 1024}, {37, 1025}, {5, 4099},
        {1, 100_003}, {4, 0}, {0, 7}, {40_000, 2}, {300, 301}
    };

    @BeforeAll
    static void start() {
        cpu = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        cpu.close();
    }

    @Test
    void reduceLastDim() {
        List<long[]> shapes = new ArrayList<>(List.of(ROW_SHAPES));
        shapes.addAll(List.of(SHAPES));
        for (Ops.Reduce op : Ops.Reduce.values()) {
            for (long[] shape : shapes) {
                try (TensorScope scope = TensorScope.open()) {
                    String tc = "reduce " + op + " " + s(shape);
                    SplittableRandom r = random(tc);
                    float[] xv = uniform(r, numel(shape), -3, 3);
                    Tensor x = cpu.fromArray(scope, xv, shape);
                    long rows = x.rows();
                    Tensor out = poisoned(cpu, scope, withLast(shape, 1));
                    cpu.reduceLastDim(op, x, out);
                    assertClose(tc, s(shape), out.toFloatArray(), Reference.reduceLastDim(op, xv, rows, x.cols()),
                            REDUCTION, seedOf(tc));
                }
            }
        }
    }

    @Test
    void reduceIntoAnyShapeWithOneElementPerRow() {
        try (TensorScope scope = TensorScope.open()) {
            float[] xv = uniform(random("reduce flat"), 6 * 7, -1, 1);
            Tensor x = cpu.fromArray(scope, xv, 2, 3, 7);
            Tensor out = poisoned(cpu, scope, 6);
            cpu.reduceLastDim(Ops.Reduce.SUM, x, out);
            assertClose("reduce into [6]", "[2, 3, 7]", out.toFloatArray(),
                    Reference.reduceLastDim(Ops.Reduce.SUM, xv, 6, 7), REDUCTION, seedOf("reduce flat"));
        }
    }

    @Test
    void emptyRowsReduceToTheIdentity() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor x = cpu.empty(scope, org.diffusion4j.tensor.DType.F32, 3, 0);
            Tensor out = poisoned(cpu, scope, 3, 1);
            cpu.reduceLastDim(Ops.Reduce.SUM, x, out);
            assertEquals(0f, out.toFloatArray()[2]);
            cpu.reduceLastDim(Ops.Reduce.MAX, x, out);
            assertEquals(Float.NEGATIVE_INFINITY, out.toFloatArray()[1]);
            cpu.reduceLastDim(Ops.Reduce.MEAN, x, out);
            assertTrue(Float.isNaN(out.toFloatArray()[0]));
        }
    }

    @Test
    void maxPropagatesNaN() {
        try (TensorScope scope = TensorScope.open()) {
            float[] v = new float[3000];
            v[1777] = Float.NaN;
            Tensor x = cpu.fromArray(scope, v, 2, 1500);
            Tensor out = poisoned(cpu, scope, 2);
            cpu.reduceLastDim(Ops.Reduce.MAX, x, out);
            float[] o = out.toFloatArray();
            assertEquals(0f, o[0]);
            assertTrue(Float.isNaN(o[1]));
        }
    }

    @Test
    void softmaxLastDim() {
        List<long[]> shapes = new ArrayList<>(List.of(ROW_SHAPES));
        shapes.addAll(List.of(SHAPES));
        for (long[] shape : shapes) {
            for (double offset : new double[] {0, 80}) { // +80: exp overflows without the max subtraction
                try (TensorScope scope = TensorScope.open()) {
                    String tc = "softmax " + s(shape) + " +" + offset;
                    SplittableRandom r = random(tc);
                    float[] xv = uniform(r, numel(shape), offset - 8, offset + 8);
                    Tensor x = cpu.fromArray(scope, xv, shape);
                    Tensor out = poisoned(cpu, scope, shape);
                    cpu.softmaxLastDim(x, out);
                    double[] ref = Reference.softmax(xv, x.rows(), x.cols());
                    assertClose(tc, s(shape), out.toFloatArray(), ref, REDUCTION, seedOf(tc));
                    cpu.softmaxLastDim(x, x); // in place
                    assertClose(tc + " in place", s(shape), x.toFloatArray(), ref, REDUCTION, seedOf(tc));
                }
            }
        }
    }

    @Test
    void softmaxRowsSumToOne() {
        try (TensorScope scope = TensorScope.open()) {
            String tc = "softmax sums";
            Tensor x = cpu.fromArray(scope, uniform(random(tc), 7 * 5000, -20, 20), 7, 5000);
            Tensor out = poisoned(cpu, scope, 7, 5000);
            cpu.softmaxLastDim(x, out);
            Tensor sums = poisoned(cpu, scope, 7);
            cpu.reduceLastDim(Ops.Reduce.SUM, out, sums);
            for (float v : sums.toFloatArray()) {
                assertEquals(1.0, v, 1e-5, seedOf(tc));
            }
        }
    }

    @Test
    void globalNorm() {
        try (TensorScope scope = TensorScope.open()) {
            String tc = "globalNorm";
            SplittableRandom r = random(tc);
            List<Tensor> xs = new ArrayList<>();
            List<float[]> vs = new ArrayList<>();
            for (long[] shape : new long[][] {{4099}, {0}, {17, 129}, {1}, {1_000_003}, {3, 0}, {3, 2, 2049}}) {
                float[] v = uniform(r, numel(shape), -3, 3);
                vs.add(v);
                xs.add(cpu.fromArray(scope, v, shape));
            }
            double got = cpu.globalNorm(xs);
            double ref = Reference.globalNorm(vs.toArray(new float[0][]));
            assertEquals(ref, got, 1e-12 * ref, seedOf(tc));
            assertEquals(0.0, cpu.globalNorm(List.of()));
            assertEquals(0.0, cpu.globalNorm(List.of(cpu.empty(scope, org.diffusion4j.tensor.DType.F32, 0))));
            assertEquals(5.0, cpu.globalNorm(List.of(cpu.fromArray(scope, new float[] {3, 4}, 2))));
        }
    }

    /**
     * The row helpers of the LayerNorm and attention passes: the four-lane float64 order (lane {@code k & 3},
     * combined as {@code (l0 + l1) + (l2 + l3)}) exactly, and within float64 rounding of a float64 oracle.
     */
    @Test
    void fixedOrderRowDotAndSquaredDeviations() {
        SplittableRandom r = new SplittableRandom(20261130);
        for (int n = 0; n <= 37; n++) {
            float[] a = uniform(r, n, -3, 3);
            float[] b = uniform(r, n, -3, 3);
            float mu = (float) r.nextDouble(-1, 1);
            double[] dl = new double[4];
            double[] ql = new double[4];
            double dot64 = 0;
            double sq64 = 0;
            for (int k = 0; k < n; k++) {
                dl[k & 3] += (double) a[k] * b[k];
                double c = a[k] - mu;                          // the float difference, as LayerNorm takes it
                ql[k & 3] += c * c;
                dot64 += (double) a[k] * b[k];
                sq64 += ((double) a[k] - mu) * ((double) a[k] - mu);
            }
            double dot = Reductions.dotOf(a, b, n);
            double sq = Reductions.sumSquaredDeviationsOf(a, 0, n, mu);
            assertEquals((dl[0] + dl[1]) + (dl[2] + dl[3]), dot, 0.0, "dot order, n = " + n);
            assertEquals((ql[0] + ql[1]) + (ql[2] + ql[3]), sq, 0.0, "squared deviations order, n = " + n);
            assertEquals(dot64, dot, 1e-12 * (1 + Math.abs(dot64)), "dot value, n = " + n);
            assertEquals(sq64, sq, 1e-6 * (1 + sq64), "squared deviations value, n = " + n);
        }
        float[] padded = {9f, 1f, 2f, 4f, 9f};                  // a row at an offset: the neighbours are not read
        float mu = 7f / 3;
        double want = 0;
        for (float v : new float[] {1f, 2f, 4f}) {
            want += (double) (v - mu) * (v - mu);
        }
        assertEquals(want, Reductions.sumSquaredDeviationsOf(padded, 1, 3, mu), 1e-12);
    }
}
