package org.diffusion4j.nn;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.diffusion4j.nn.NnTestSupport.GRAD;
import static org.diffusion4j.nn.NnTestSupport.REDUCTION;
import static org.diffusion4j.nn.NnTestSupport.assertBitwise;
import static org.diffusion4j.nn.NnTestSupport.assertClose;
import static org.diffusion4j.nn.NnTestSupport.doubles;
import static org.diffusion4j.nn.NnTestSupport.dot;
import static org.diffusion4j.nn.NnTestSupport.floats;
import static org.diffusion4j.nn.NnTestSupport.numel;
import static org.diffusion4j.nn.NnTestSupport.numericGrad;
import static org.diffusion4j.nn.NnTestSupport.poisoned;
import static org.diffusion4j.nn.NnTestSupport.random;
import static org.diffusion4j.nn.NnTestSupport.seedOf;
import static org.diffusion4j.nn.NnTestSupport.uniform;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Patchify/unpatchify: round trips in both layouts, patchify + Linear = a naive float64 Conv2d with kernel = stride =
 * p (the reference DiT's PatchEmbed), unpatchify = the reference DiT's einsum by definition, and the patch-embedding
 * backward by central differences.
 */
class PatchifyTest {

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

    /** {B, C, H, W, p}. */
    static final int[][] CASES = {{2, 3, 8, 12, 4}, {1, 1, 2, 2, 2}, {3, 5, 6, 9, 3}, {2, 4, 4, 4, 1}, {1, 2, 6, 4, 2},
        {4, 3, 32, 32, 2}};

    @Test
    void roundTripsAreIdentities() {
        for (int[] c : CASES) {
            long[] img = {c[0], c[1], c[2], c[3]};
            int p = c[4];
            long[] ps = Patchify.patchShape(img, p);
            for (PatchLayout layout : PatchLayout.values()) {
                String tc = "round trip " + Arrays.toString(c) + " " + layout;
                SplittableRandom r = random(tc);
                try (TensorScope scope = TensorScope.open()) {
                    float[] x = uniform(r, numel(img), -1, 1);
                    Tensor v = poisoned(be, scope, ps);
                    Tensor back = poisoned(be, scope, img);
                    Patchify.patchify(be, be.fromArray(scope, x, img), p, layout, v);
                    Patchify.unpatchify(be, v, p, layout, back);
                    assertBitwise(tc + ": unpatchify(patchify(x))", x, back.toFloatArray(), seedOf(tc));
                    float[] y = uniform(r, numel(ps), -1, 1);
                    Tensor img2 = poisoned(be, scope, img);
                    Tensor v2 = poisoned(be, scope, ps);
                    Patchify.unpatchify(be, be.fromArray(scope, y, ps), p, layout, img2);
                    Patchify.patchify(be, img2, p, layout, v2);
                    assertBitwise(tc + ": patchify(unpatchify(v))", y, v2.toFloatArray(), seedOf(tc));
                }
            }
        }
    }

    @Test
    void unpatchifyMatchesTheReferenceDiTEinsum() {
        for (int[] c : CASES) {
            int b = c[0];
            int ch = c[1];
            int p = c[4];
            int gh = c[2] / p;
            int gw = c[3] / p;
            String tc = "DiT unpatchify " + Arrays.toString(c);
            SplittableRandom r = random(tc);
            try (TensorScope scope = TensorScope.open()) {
                long[] ps = {b, (long) gh * gw, (long) ch * p * p};
                float[] v = uniform(r, numel(ps), -1, 1);
                Tensor out = poisoned(be, scope, b, ch, c[2], c[3]);
                Patchify.unpatchify(be, be.fromArray(scope, v, ps), p, PatchLayout.CHANNEL_LAST, out);
                assertBitwise(tc, floats(Ref.unpatchifyDiT(doubles(v), b, ch, gh, gw, p)), out.toFloatArray(),
                        seedOf(tc));
            }
        }
    }

    @Test
    void patchEmbedEqualsConv2dWithKernelEqualStride() {
        for (int[] c : CASES) {
            int b = c[0];
            int ch = c[1];
            int h = c[2];
            int w = c[3];
            int p = c[4];
            int dim = 5;
            String tc = "patch embed " + Arrays.toString(c);
            SplittableRandom r = random(tc);
            try (TensorScope scope = TensorScope.open()) {
                PatchEmbed pe = new PatchEmbed(ops, scope, ch, p, dim);
                assertEquals(List.of("proj.weight", "proj.bias"), List.copyOf(pe.namedParameters().keySet()));
                assertEquals(Arrays.toString(new long[] {dim, ch, p, p}), Arrays.toString(pe.proj().weight().shape()));
                float[] wt = uniform(r, (long) dim * ch * p * p, -1, 1);
                float[] bias = uniform(r, dim, -1, 1);
                pe.proj().weight().value().copyFrom(wt);
                pe.proj().bias().value().copyFrom(bias);
                float[] x = uniform(r, (long) b * ch * h * w, -1, 1);
                PatchEmbed.Cache cache = pe.forward(scope, be.fromArray(scope, x, b, ch, h, w));
                assertEquals(Arrays.toString(new long[] {b, (long) (h / p) * (w / p), dim}),
                        Arrays.toString(cache.out().shape()));
                assertClose(tc, cache.out().toFloatArray(),
                        Ref.patchConv(doubles(x), b, ch, h, w, p, doubles(wt), doubles(bias), dim), REDUCTION,
                        seedOf(tc));
            }
        }
    }

    @Test
    void patchEmbedBackwardMatchesCentralDifferences() {
        int b = 2;
        int ch = 2;
        int h = 4;
        int w = 6;
        int p = 2;
        int dim = 3;
        String tc = "patch embed backward";
        SplittableRandom r = random(tc);
        try (TensorScope scope = TensorScope.open()) {
            PatchEmbed pe = new PatchEmbed(ops, scope, ch, p, dim);
            float[] wt = uniform(r, (long) dim * ch * p * p, -1, 1);
            float[] bias = uniform(r, dim, -1, 1);
            pe.proj().weight().value().copyFrom(wt);
            pe.proj().bias().value().copyFrom(bias);
            float[] x = uniform(r, (long) b * ch * h * w, -1, 1);
            PatchEmbed.Cache cache = pe.forward(scope, be.fromArray(scope, x, b, ch, h, w));
            int tokens = (h / p) * (w / p);
            float[] g = uniform(r, (long) b * tokens * dim, -1, 1);
            Tensor dx = pe.backward(scope, cache, be.fromArray(scope, g, b, tokens, dim), true);
            double[] gd = doubles(g);
            double[] xd = doubles(x);
            double[] wd = doubles(wt);
            double[] bd = doubles(bias);
            assertClose(tc + " dx", dx.toFloatArray(), numericGrad(v -> dot(gd,
                    Ref.patchConv(v, b, ch, h, w, p, wd, bd, dim)), xd.clone(), 1e-6), GRAD, seedOf(tc));
            assertClose(tc + " dW", pe.proj().weight().grad().toFloatArray(), numericGrad(v -> dot(gd,
                    Ref.patchConv(xd, b, ch, h, w, p, v, bd, dim)), wd.clone(), 1e-6), GRAD, seedOf(tc));
            assertClose(tc + " db", pe.proj().bias().grad().toFloatArray(), numericGrad(v -> dot(gd,
                    Ref.patchConv(xd, b, ch, h, w, p, wd, v, dim)), bd.clone(), 1e-6), GRAD, seedOf(tc));
        }
    }

    @Test
    void badShapesAreRejected() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor x = be.zeros(scope, DType.F32, 1, 3, 6, 8);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Patchify.patchify(be, x, 4, PatchLayout.CHANNEL_FIRST, be.zeros(scope, DType.F32, 1, 2, 48)));
            assertEquals(true, e.getMessage().contains("patch size 4"), e.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> Patchify.patchify(be, x, 2, PatchLayout.CHANNEL_FIRST,
                            be.zeros(scope, DType.F32, 1, 12, 13)));
            assertThrows(IllegalArgumentException.class,
                    () -> Patchify.patchify(be, x, 0, PatchLayout.CHANNEL_LAST, be.zeros(scope, DType.F32, 1, 12, 12)));
            assertThrows(IllegalArgumentException.class, () -> Patchify.patchShape(new long[] {1, 2, 3}, 1));
            PatchEmbed pe = new PatchEmbed(ops, scope, 2, 2, 4);
            assertThrows(IllegalArgumentException.class, () -> pe.forward(scope, x));
        }
    }

    @Test
    void theCachedImageShapeCannotBeChangedByTheCaller() {
        try (TensorScope scope = TensorScope.open()) {
            PatchEmbed pe = new PatchEmbed(ops, scope, 2, 2, 3);
            PatchEmbed.Cache cache = pe.forward(scope, be.zeros(scope, DType.F32, 1, 2, 4, 6));
            cache.imageShape()[2] = 6;                       // through the accessor
            long[] given = {1, 2, 4, 6};
            PatchEmbed.Cache rebuilt = new PatchEmbed.Cache(given, cache.proj());
            given[3] = 4;                                    // through the array given to the constructor
            for (PatchEmbed.Cache c : List.of(cache, rebuilt)) {
                assertEquals("[1, 2, 4, 6]", Arrays.toString(c.imageShape()));
                Tensor dx = pe.backward(scope, c, be.zeros(scope, DType.F32, 1, 6, 3), true);
                assertEquals("[1, 2, 4, 6]", Arrays.toString(dx.shape()));
            }
        }
    }
}
