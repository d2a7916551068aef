package org.diffusion4j.nn;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.random.Philox;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.diffusion4j.nn.NnTestSupport.GRAD;
import static org.diffusion4j.nn.NnTestSupport.REDUCTION;
import static org.diffusion4j.nn.NnTestSupport.assertBitwise;
import static org.diffusion4j.nn.NnTestSupport.assertClose;
import static org.diffusion4j.nn.NnTestSupport.doubles;
import static org.diffusion4j.nn.NnTestSupport.dot;
import static org.diffusion4j.nn.NnTestSupport.numericGrad;
import static org.diffusion4j.nn.NnTestSupport.random;
import static org.diffusion4j.nn.NnTestSupport.seedOf;
import static org.diffusion4j.nn.NnTestSupport.uniform;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Sinusoidal timestep embedding + MLP, class embedding with a learned null class, embedding scatter-add. */
class EmbeddingTest {

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

    @Test
    void sinusoidalFeaturesMatchFloat64() {
        for (int dim : new int[] {1, 2, 7, 64, 256, 257}) {
            String tc = "sinusoidal dim " + dim;
            SplittableRandom r = random(tc);
            double[] t = new double[9];
            for (int b = 0; b < t.length; b++) {
                t[b] = 1000 * r.nextDouble();
            }
            float[] got = TimestepEmbedder.sinusoidal(t, dim, 10000);
            assertClose(tc, got, Ref.sinusoidal(t, dim, 10000), 1e-7, seedOf(tc));
            if (dim % 2 == 1) {
                for (int b = 0; b < t.length; b++) {
                    assertEquals(0f, got[b * dim + dim - 1], tc + ": odd dims end in a zero column");
                }
            }
        }
        // t = 0: every cosine is 1 and every sine 0 (cos 0, sin 0)
        float[] zero = TimestepEmbedder.sinusoidal(new double[] {0}, 6, 10000);
        assertArrayEquals(new float[] {1, 1, 1, 0, 0, 0}, zero);
        // the first frequency is 1: column 0 is cos t, column h is sin t
        float[] one = TimestepEmbedder.sinusoidal(new double[] {0.5}, 8, 10000);
        assertEquals((float) Math.cos(0.5), one[0]);
        assertEquals((float) Math.sin(0.5), one[4]);
        assertThrows(IllegalArgumentException.class,
                () -> TimestepEmbedder.sinusoidal(new double[] {Double.NaN}, 4, 10000));
        assertThrows(IllegalArgumentException.class, () -> TimestepEmbedder.sinusoidal(new double[] {1}, 0, 10000));
    }

    /** Float64 reference of the embedder for the parameter vector {@code p = [W1, b1, W2, b2]}. */
    static double[] embedderRef(double[] feat, int batch, int f, int h, double[] p) {
        double[] w1 = Arrays.copyOfRange(p, 0, h * f);
        double[] b1 = Arrays.copyOfRange(p, h * f, h * f + h);
        double[] w2 = Arrays.copyOfRange(p, h * f + h, h * f + h + h * h);
        double[] b2 = Arrays.copyOfRange(p, h * f + h + h * h, p.length);
        double[] a = Ref.act(Activation.SILU, Ref.linear(feat, batch, f, w1, b1, h));
        return Ref.linear(a, batch, h, w2, b2, h);
    }

    @Test
    void timestepEmbedderForwardAndBackward() {
        int f = 7;
        int h = 5;
        String tc = "timestep embedder";
        SplittableRandom r = random(tc);
        double[] t = {0, 3.5, 999, 250.25};
        try (TensorScope scope = TensorScope.open()) {
            TimestepEmbedder te = new TimestepEmbedder(ops, scope, h, f, 10000);
            assertEquals(List.of("mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"),
                    List.copyOf(te.namedParameters().keySet()));
            assertEquals("[5, 7]", Arrays.toString(te.namedParameters().get("mlp.0.weight").shape()));
            int total = 0;
            for (Parameter p : te.parameters()) {
                p.value().copyFrom(uniform(r, p.numel(), -0.7, 0.7));
                total += (int) p.numel();
            }
            double[] pv = new double[total];
            int off = 0;
            for (Parameter p : te.parameters()) {
                double[] v = doubles(p.value().toFloatArray());
                System.arraycopy(v, 0, pv, off, v.length);
                off += v.length;
            }
            double[] feat = Ref.sinusoidal(t, f, 10000);
            TimestepEmbedder.Cache c = te.forward(scope, t);
            assertClose(tc + " forward", c.out().toFloatArray(), embedderRef(feat, t.length, f, h, pv), REDUCTION,
                    seedOf(tc));
            float[] w = uniform(r, (long) t.length * h, -1, 1);
            te.backward(scope, c, be.fromArray(scope, w, t.length, h));
            double[] wd = doubles(w);
            double[] num = numericGrad(v -> dot(wd, embedderRef(feat, t.length, f, h, v)), pv, 1e-6);
            off = 0;
            for (Map.Entry<String, Parameter> e : te.namedParameters().entrySet()) {
                int n = (int) e.getValue().numel();
                assertClose(tc + " d" + e.getKey(), e.getValue().grad().toFloatArray(),
                        Arrays.copyOfRange(num, off, off + n), GRAD, seedOf(tc));
                off += n;
            }
        }
    }

    @Test
    void classEmbedderLooksUpRowsAndDropsDeterministically() {
        String tc = "class embedder";
        SplittableRandom r = random(tc);
        int classes = 10;
        int dim = 6;
        try (TensorScope scope = TensorScope.open()) {
            ClassEmbedder ce = new ClassEmbedder(ops, scope, classes, dim, 0.1);
            assertEquals(List.of("embedding_table.weight"), List.copyOf(ce.namedParameters().keySet()));
            assertEquals("[11, 6]", Arrays.toString(ce.table().weight().shape()));
            float[] table = uniform(r, (classes + 1) * dim, -1, 1);
            ce.table().weight().value().copyFrom(table);
            int[] labels = {3, 0, 9, 10, 3};
            float[] got = ce.forward(scope, labels).out().toFloatArray();
            for (int b = 0; b < labels.length; b++) {
                float[] row = Arrays.copyOfRange(table, labels[b] * dim, (labels[b] + 1) * dim);
                assertArrayEquals(row, Arrays.copyOfRange(got, b * dim, (b + 1) * dim), "row of label " + labels[b]);
            }

            int n = 20_000;
            int[] many = new int[n];
            for (int b = 0; b < n; b++) {
                many[b] = b % classes;
            }
            int[] d1 = ce.dropLabels(many, 42, 7);
            assertArrayEquals(d1, ce.dropLabels(many, 42, 7), "same seed and stream, same drops");
            assertFalse(Arrays.equals(d1, ce.dropLabels(many, 42, 8)), "another stream, other drops");
            int dropped = 0;
            for (int b = 0; b < n; b++) {
                boolean expect = Philox.uniform(42, 7, b) <= 0.1;
                assertEquals(expect ? classes : many[b], d1[b], "sample " + b);
                dropped += d1[b] == classes ? 1 : 0;
            }
            // Binomial(20000, 0.1): mean 2000, sd 42.4; 5 sd either side
            assertTrue(Math.abs(dropped - 2000) < 212, "dropped " + dropped + " of " + n + " at p = 0.1");
            int[] trained = ce.forwardTrain(scope, many, 42, 7).labels();
            assertArrayEquals(d1, trained);

            ClassEmbedder never = new ClassEmbedder(ops, scope, 3, 2, 0.0);
            assertEquals("[3, 2]", Arrays.toString(never.table().weight().shape()));
            assertArrayEquals(new int[] {0, 1, 2, 1}, never.dropLabels(new int[] {0, 1, 2, 1}, 1, 1));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> never.forward(scope, new int[] {0, 3}));
            assertTrue(e.getMessage().contains("labels[1] = 3"), e.getMessage());
            ClassEmbedder always = new ClassEmbedder(ops, scope, 3, 2, 1.0);
            assertArrayEquals(new int[] {3, 3, 3}, always.dropLabels(new int[] {0, 1, 2}, 5, 0));
            assertThrows(IllegalArgumentException.class, () -> ce.forward(scope, new int[] {-1}));
            assertThrows(IllegalArgumentException.class, () -> new ClassEmbedder(ops, scope, 3, 2, 1.5));
        }
    }

    @Test
    void embeddingBackwardAddsRowsInOrder() {
        int v = 7;
        int n = 53;
        for (int d : new int[] {1, 5, 2051}) {
            String tc = "embedding backward d=" + d;
            SplittableRandom r = random(tc);
            try (TensorScope scope = TensorScope.open()) {
                int[] idx = new int[n];
                for (int i = 0; i < n; i++) {
                    idx[i] = r.nextInt(v);
                }
                idx[0] = idx[1];   // repeats on purpose
                Tensor it = be.empty(scope, DType.I32, n);
                it.copyFrom(MemorySegment.ofArray(idx));
                float[] dy = uniform(r, (long) n * d, -1, 1);
                float[] start = uniform(r, (long) v * d, -1, 1);
                Tensor grad = be.fromArray(scope, start, v, d);
                ops.embeddingBackward(it, be.fromArray(scope, dy, n, d), grad);
                double[] ref = doubles(start);
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < d; j++) {
                        ref[idx[i] * d + j] += dy[i * d + j];
                    }
                }
                assertClose(tc, grad.toFloatArray(), ref, 1e-6, seedOf(tc));

                float[] before = grad.toFloatArray();
                idx[n - 1] = v;
                it.copyFrom(MemorySegment.ofArray(idx));
                IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class,
                        () -> ops.embeddingBackward(it, be.fromArray(scope, dy, n, d), grad));
                assertTrue(e.getMessage().contains("indices[" + (n - 1) + "] = " + v), e.getMessage());
                assertBitwise(tc + ": nothing written on a bad index", before, grad.toFloatArray(), seedOf(tc));
            }
        }
    }

    @Test
    void classEmbedderBackwardReachesTheUsedRows() {
        try (TensorScope scope = TensorScope.open()) {
            ClassEmbedder ce = new ClassEmbedder(ops, scope, 4, 2, 0.5);
            ClassEmbedder.Cache c = ce.forward(scope, new int[] {1, 4, 1});
            ce.backward(c, be.fromArray(scope, new float[] {1, 2, 3, 4, 5, 6}, 3, 2));
            assertArrayEquals(new float[] {0, 0, 6, 8, 0, 0, 0, 0, 3, 4}, ce.table().weight().grad().toFloatArray());
        }
    }

    @Test
    void classEmbedderCacheLabelsCannotBeChangedByTheCaller() {
        try (TensorScope scope = TensorScope.open()) {
            ClassEmbedder ce = new ClassEmbedder(ops, scope, 4, 2, 0.5);
            int[] labels = {1, 4, 1};
            ClassEmbedder.Cache c = ce.forward(scope, labels);
            labels[0] = 3;
            c.labels()[1] = 0;
            assertArrayEquals(new int[] {1, 4, 1}, c.labels());
            int[] given = {2, 2, 2};
            ClassEmbedder.Cache rebuilt = new ClassEmbedder.Cache(c.lookup(), given);
            given[0] = 0;
            assertArrayEquals(new int[] {2, 2, 2}, rebuilt.labels());
        }
    }
}
