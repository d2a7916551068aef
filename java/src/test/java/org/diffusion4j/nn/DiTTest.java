package org.diffusion4j.nn;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.sampling.Level;
import org.diffusion4j.sampling.NoiseLevels;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.diffusion4j.tensor.Workspace;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.diffusion4j.nn.NnTestSupport.GRAD;
import static org.diffusion4j.nn.NnTestSupport.REDUCTION;
import static org.diffusion4j.nn.NnTestSupport.assertBitwise;
import static org.diffusion4j.nn.NnTestSupport.assertClose;
import static org.diffusion4j.nn.NnTestSupport.doubles;
import static org.diffusion4j.nn.NnTestSupport.numericGrad;
import static org.diffusion4j.nn.NnTestSupport.random;
import static org.diffusion4j.nn.NnTestSupport.seedOf;
import static org.diffusion4j.nn.NnTestSupport.uniform;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link DiT}: the whole forward against a float64 reference written from the paper's equations (Peebles &amp; Xie
 * 2023, Fig. 3 and §3.2; the reference code's {@code models.py}), every parameter gradient of an MSE loss against
 * central finite differences of that reference, the reference initialisation, the Denoiser entry points, config
 * validation and serialisation, and the {@link Module} buffers.
 */
class DiTTest {

    private static CpuBackend be;
    private static NnOps ops;
    private static AttentionOps att;

    @BeforeAll
    static void setUp() {
        be = new CpuBackend(2);
        ops = NnOps.forBackend(be);
        att = AttentionOps.forBackend(be);
    }

    @AfterAll
    static void tearDown() {
        att.close();
        ops.close();
        be.close();
    }

    /** Tiny, odd sizes: T = 4 tokens, width 8, 2 heads (head dim 4), MLP width int(8·1.5) = 12, 3 classes. */
    static final DiT.Config TINY = new DiT.Config(4, 3, 2, 8, 2, 2, 1.5, 3, 0.25, 6, 1000.0);

    // ---------------------------------------------------------------- float64 reference

    /** The DiT forward in float64 for parameters {@code p} (state-dict names) and the buffer {@code pos [T·D]}. */
    static double[] reference(DiT.Config c, Map<String, double[]> p, double[] pos, double[] x, double[] t, int[] y,
                              int batch) {
        int d = c.hidden();
        int g = c.gridSize();
        int tok = c.tokenCount();
        int ch = c.channels();
        int pp = c.patch();
        double[] h = Ref.patchConv(x, batch, ch, c.imageSize(), c.imageSize(), pp, p.get("x_embedder.proj.weight"),
                p.get("x_embedder.proj.bias"), d);
        for (int i = 0; i < h.length; i++) {
            h[i] += pos[i % (tok * d)];
        }
        double[] ts = new double[batch];
        for (int b = 0; b < batch; b++) {
            ts[b] = c.timeScale() * t[b];
        }
        int f = c.frequencyDim();
        double[] cond = Ref.linear(Ref.act(Activation.SILU, Ref.linear(Ref.sinusoidal(ts, f, 10000), batch, f,
                        p.get("t_embedder.mlp.0.weight"), p.get("t_embedder.mlp.0.bias"), d)), batch, d,
                p.get("t_embedder.mlp.2.weight"), p.get("t_embedder.mlp.2.bias"), d);
        if (y != null) {
            double[] table = p.get("y_embedder.embedding_table.weight");
            for (int b = 0; b < batch; b++) {
                for (int i = 0; i < d; i++) {
                    cond[b * d + i] += table[y[b] * d + i];
                }
            }
        }
        double[] s = Ref.act(Activation.SILU, cond);
        for (int k = 0; k < c.depth(); k++) {
            String pre = "blocks." + k + ".";
            double[] m = Ref.linear(s, batch, d, p.get(pre + "adaLN_modulation.1.weight"),
                    p.get(pre + "adaLN_modulation.1.bias"), 6 * d);
            double[] n1 = Ref.layerNorm(h, batch, tok, d, null, null, chunk(m, batch, d, 6, 0),
                    chunk(m, batch, d, 6, 1), 1e-6f);
            double[] a = attention(n1, batch, tok, d, c.heads(), p, pre + "attn.");
            h = Ref.gatedResidual(h, chunk(m, batch, d, 6, 2), a, batch, tok, d);
            double[] n2 = Ref.layerNorm(h, batch, tok, d, null, null, chunk(m, batch, d, 6, 3),
                    chunk(m, batch, d, 6, 4), 1e-6f);
            int hid = c.mlpHiddenWidth();
            double[] u = Ref.act(Activation.GELU_TANH, Ref.linear(n2, batch * tok, d, p.get(pre + "mlp.fc1.weight"),
                    p.get(pre + "mlp.fc1.bias"), hid));
            double[] v = Ref.linear(u, batch * tok, hid, p.get(pre + "mlp.fc2.weight"), p.get(pre + "mlp.fc2.bias"), d);
            h = Ref.gatedResidual(h, chunk(m, batch, d, 6, 5), v, batch, tok, d);
        }
        double[] m = Ref.linear(s, batch, d, p.get("final_layer.adaLN_modulation.1.weight"),
                p.get("final_layer.adaLN_modulation.1.bias"), 2 * d);
        double[] n = Ref.layerNorm(h, batch, tok, d, null, null, chunk(m, batch, d, 2, 0), chunk(m, batch, d, 2, 1),
                1e-6f);
        double[] v = Ref.linear(n, batch * tok, d, p.get("final_layer.linear.weight"), p.get("final_layer.linear.bias"),
                pp * pp * ch);
        return Ref.unpatchifyDiT(v, batch, ch, g, g, pp);
    }

    /** Column block {@code k} of {@code [B, n·D]} as {@code [B, D]}. */
    static double[] chunk(double[] m, int batch, int d, int n, int k) {
        double[] out = new double[batch * d];
        for (int b = 0; b < batch; b++) {
            System.arraycopy(m, b * n * d + k * d, out, b * d, d);
        }
        return out;
    }

    /** timm Attention in float64: qkv, split heads, softmax(q·kᵀ/√Dh)·v, merge, proj. */
    static double[] attention(double[] x, int batch, int tok, int d, int heads, Map<String, double[]> p, String pre) {
        double[] qkv = Ref.linear(x, batch * tok, d, p.get(pre + "qkv.weight"), p.get(pre + "qkv.bias"), 3 * d);
        int dh = d / heads;
        double scale = 1 / Math.sqrt(dh);
        double[] merged = new double[batch * tok * d];
        double[] w = new double[tok];
        for (int b = 0; b < batch; b++) {
            for (int hh = 0; hh < heads; hh++) {
                for (int i = 0; i < tok; i++) {
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < tok; j++) {
                        double dot = 0;
                        for (int e = 0; e < dh; e++) {
                            dot += qkv[(b * tok + i) * 3 * d + hh * dh + e] * qkv[(b * tok + j) * 3 * d + d + hh * dh + e];
                        }
                        w[j] = dot * scale;
                        max = Math.max(max, w[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < tok; j++) {
                        w[j] = Math.exp(w[j] - max);
                        sum += w[j];
                    }
                    for (int e = 0; e < dh; e++) {
                        double o = 0;
                        for (int j = 0; j < tok; j++) {
                            o += w[j] / sum * qkv[(b * tok + j) * 3 * d + 2 * d + hh * dh + e];
                        }
                        merged[(b * tok + i) * d + hh * dh + e] = o;
                    }
                }
            }
        }
        return Ref.linear(merged, batch * tok, d, p.get(pre + "proj.weight"), p.get(pre + "proj.bias"), d);
    }

    /** Random parameters (every one, so no adaLN gate is 0), copied into the model and returned as float64. */
    static Map<String, double[]> randomize(DiT m, SplittableRandom r) {
        Map<String, double[]> p = new HashMap<>();
        for (Map.Entry<String, Parameter> e : m.namedParameters().entrySet()) {
            long[] s = e.getValue().shape();
            double bound = s.length == 1 ? 0.3 : 1.5 / Math.sqrt((double) e.getValue().numel() / s[0]);
            float[] v = uniform(r, e.getValue().numel(), -bound, bound);
            e.getValue().value().copyFrom(v);
            p.put(e.getKey(), doubles(v));
        }
        return p;
    }

    static double mse(double[] out, double[] target) {
        double s = 0;
        for (int i = 0; i < out.length; i++) {
            s += (out[i] - target[i]) * (out[i] - target[i]);
        }
        return s / out.length;
    }

    // ---------------------------------------------------------------- forward and gradients

    @Test
    void forwardAndEveryGradientOfAnMseLossMatchFloat64() {
        DiT.Config c = TINY;
        int batch = 3;
        String tc = "dit gradients";
        SplittableRandom r = random(tc);
        try (TensorScope scope = TensorScope.open()) {
            DiT m = new DiT(ops, att, scope, c, r.nextLong());
            Map<String, double[]> p = randomize(m, r);
            double[] pos = doubles(m.posEmbed().toFloatArray());
            long n = (long) batch * c.channels() * c.imageSize() * c.imageSize();
            float[] x = uniform(r, n, -2, 2);
            float[] target = uniform(r, n, -1, 1);
            double[] t = {0.0, 0.41, 1.0};
            int[] y = {2, 3, 0};                                                         // 3 = the null class
            Tensor xt = be.fromArray(scope, x, batch, c.channels(), c.imageSize(), c.imageSize());
            DiT.Cache cache = m.forward(scope, xt, t, y);
            double[] xd = doubles(x);
            double[] td = doubles(target);
            double[] ref = reference(c, p, pos, xd, t, y, batch);
            assertClose(tc + " forward", cache.out().toFloatArray(), ref, REDUCTION, seedOf(tc));
            // MSE loss L = mean((out − target)²), dL/dout = 2(out − target)/N
            float[] out = cache.out().toFloatArray();
            float[] dOut = new float[out.length];
            for (int i = 0; i < out.length; i++) {
                dOut[i] = (float) (2.0 * (out[i] - target[i]) / out.length);
            }
            m.zeroGrad();
            m.backward(scope, cache, be.fromArray(scope, dOut, cache.out().shape()));
            for (Map.Entry<String, Parameter> e : m.namedParameters().entrySet()) {
                double[] keep = p.get(e.getKey());
                double[] num = numericGrad(v -> {
                    p.put(e.getKey(), v);
                    return mse(reference(c, p, pos, xd, t, y, batch), td);
                }, keep.clone(), 1e-6);
                p.put(e.getKey(), keep);
                assertClose(tc + " d" + e.getKey(), e.getValue().grad().toFloatArray(), num, GRAD, seedOf(tc));
            }
            // the null row was used (label 3), the unused class 1's row gets no gradient
            float[] dTable = m.namedParameters().get("y_embedder.embedding_table.weight").grad().toFloatArray();
            for (int i = 0; i < c.hidden(); i++) {
                assertEquals(0f, dTable[c.hidden() + i], "row of unused class 1");
            }
        }
    }

    @Test
    void unconditionalForwardMatchesFloat64AndRejectsLabels() {
        DiT.Config c = new DiT.Config(6, 1, 3, 12, 1, 3, 4.0, 0, 0, 8, 500.0);
        int batch = 2;
        String tc = "dit unconditional";
        SplittableRandom r = random(tc);
        try (TensorScope scope = TensorScope.open()) {
            DiT m = new DiT(ops, att, scope, c, 5);
            assertFalse(m.namedParameters().keySet().stream().anyMatch(k -> k.startsWith("y_embedder")),
                    "no y_embedder");
            Map<String, double[]> p = randomize(m, r);
            double[] pos = doubles(m.posEmbed().toFloatArray());
            float[] x = uniform(r, batch * 36L, -2, 2);
            double[] t = {0.25, 0.8};
            Tensor xt = be.fromArray(scope, x, batch, 1, 6, 6);
            assertClose(tc, m.forward(scope, xt, t, null).out().toFloatArray(),
                    reference(c, p, pos, doubles(x), t, null, batch), REDUCTION, seedOf(tc));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> m.forward(scope, xt, t, new int[] {0, 0}));
            assertTrue(e.getMessage().contains("unconditional"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> m.dropLabels(new int[] {0, 1}, 1, 2));
            assertThrows(IllegalArgumentException.class, () -> m.dropLabels(null, 1, 2));
        }
    }

    /**
     * Found by an adversarial trial: backward took another model's pass (and a second backward of one pass), and
     * accumulated gradients from activations that were not this forward's. Both are refused, with short messages,
     * and the gradients stay untouched; a DiT pass given to an MLP is named briefly.
     */
    @Test
    void backwardRefusesAnotherModelsPassAndASecondBackward() {
        try (TensorScope scope = TensorScope.open()) {
            DiT a = new DiT(ops, att, scope, TINY, 1);
            DiT b = new DiT(ops, att, scope, TINY, 2);
            Tensor x = be.fromArray(scope, uniform(random("dit owner"), 2 * 3 * 16L, -1, 1), 2, 3, 4, 4);
            double[] t = {0.3, 0.7};
            int[] y = {0, 3};
            DiT.Cache pb = b.forward(scope, x, t, y);
            Tensor dOut = be.zeros(scope, DType.F32, 2, 3, 4, 4);
            be.fill(dOut, 0.1f);
            a.module().zeroGrad();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> a.backward(scope, pb, dOut));
            assertTrue(e.getMessage().startsWith("DiT pass (out ") && e.getMessage().contains("another DiT's forward")
                    && e.getMessage().length() < 300, e.getMessage());
            for (Parameter p : a.namedParameters().values()) {
                for (float g : p.grad().toFloatArray()) {
                    assertEquals(0f, g, "no gradient accumulated");
                }
            }
            b.backward(scope, pb, dOut);
            e = assertThrows(IllegalArgumentException.class, () -> b.backward(scope, pb, dOut));
            assertTrue(e.getMessage().contains("already used by a backward"), e.getMessage());
            MlpDenoiser mlp = new MlpDenoiser(ops, scope, new MlpDenoiser.Config(2, 8, 1, 4, 1000, 0), 3);
            e = assertThrows(IllegalArgumentException.class, () -> mlp.backward(scope, pb, dOut));
            assertTrue(e.getMessage().length() < 300, e.getMessage());
            MlpDenoiser other = new MlpDenoiser(ops, scope, new MlpDenoiser.Config(2, 8, 1, 4, 1000, 0), 4);
            Tensor v = be.fromArray(scope, new float[] {0.1f, -0.2f, 0.3f, 0.4f}, 2, 2);
            MlpDenoiser.Cache po = other.forward(scope, v, t);
            e = assertThrows(IllegalArgumentException.class, () -> mlp.backward(scope, po, v));
            assertTrue(e.getMessage().contains("another MlpDenoiser's forward"), e.getMessage());
        }
    }

    // ---------------------------------------------------------------- initialisation, state dict, buffers

    @Test
    void referenceInitialisation() {
        DiT.Config c = DiT.Config.of(8, 2, 2, 32, 2, 4, 10);
        try (TensorScope scope = TensorScope.open()) {
            DiT m = new DiT(ops, att, scope, c, 11);
            Map<String, Parameter> ps = m.namedParameters();
            for (Map.Entry<String, Parameter> e : ps.entrySet()) {
                String k = e.getKey();
                float[] v = e.getValue().value().toFloatArray();
                double maxAbs = 0;
                double sq = 0;
                for (float a : v) {
                    maxAbs = Math.max(maxAbs, Math.abs(a));
                    sq += (double) a * a;
                }
                if (k.endsWith(".bias") || k.contains("adaLN_modulation") || k.startsWith("final_layer.linear")) {
                    assertEquals(0.0, maxAbs, k + " must start at 0");
                } else if (k.startsWith("t_embedder") || k.startsWith("y_embedder")) {
                    double std = Math.sqrt(sq / v.length);
                    assertEquals(0.02, std, 0.02 * 6 / Math.sqrt(v.length), k + " std");
                } else {
                    long[] s = e.getValue().shape();
                    long fanOut = s[0];
                    long fanIn = e.getValue().numel() / fanOut;
                    double bound = Math.sqrt(6.0 / (fanIn + fanOut));
                    assertTrue(maxAbs <= bound && maxAbs > 0.8 * bound, k + " xavier bound " + bound + ", max " + maxAbs);
                }
            }
            // adaLN-Zero: at initialisation the model outputs exactly 0
            Tensor x = be.fromArray(scope, uniform(random("init"), 2 * 2 * 64, -1, 1), 2, 2, 8, 8);
            float[] out = m.forward(scope, x, new double[] {0.1, 0.9}, new int[] {3, 10}).out().toFloatArray();
            for (float o : out) {
                assertEquals(0f, o);
            }
            DiT again = new DiT(ops, att, scope, c, 11);
            DiT other = new DiT(ops, att, scope, c, 12);
            float[] w = ps.get("blocks.1.mlp.fc1.weight").value().toFloatArray();
            assertBitwise("same seed", w, again.namedParameters().get("blocks.1.mlp.fc1.weight").value().toFloatArray(),
                    "seed 11");
            assertFalse(Arrays.equals(w, other.namedParameters().get("blocks.1.mlp.fc1.weight").value().toFloatArray()),
                    "another seed gives other weights");
        }
    }

    @Test
    void stateDictNamesShapesAndBuffers() {
        DiT.Config c = new DiT.Config(28, 1, 4, 128, 2, 4, 4.0, 10, 0.1, 256, 1000);
        try (TensorScope scope = TensorScope.open()) {
            DiT m = new DiT(ops, att, scope, c, 1);
            List<String> sd = new ArrayList<>();
            for (Map.Entry<String, Tensor> e : m.stateDict().entrySet()) {
                sd.add(e.getKey() + " " + Arrays.toString(e.getValue().shape()));
            }
            List<String> want = new ArrayList<>(List.of("pos_embed [1, 49, 128]",
                    "x_embedder.proj.weight [128, 1, 4, 4]", "x_embedder.proj.bias [128]",
                    "t_embedder.mlp.0.weight [128, 256]", "t_embedder.mlp.0.bias [128]",
                    "t_embedder.mlp.2.weight [128, 128]", "t_embedder.mlp.2.bias [128]",
                    "y_embedder.embedding_table.weight [11, 128]"));
            for (int k = 0; k < 2; k++) {
                String b = "blocks." + k + ".";
                want.addAll(List.of(b + "attn.qkv.weight [384, 128]", b + "attn.qkv.bias [384]",
                        b + "attn.proj.weight [128, 128]", b + "attn.proj.bias [128]",
                        b + "mlp.fc1.weight [512, 128]", b + "mlp.fc1.bias [512]", b + "mlp.fc2.weight [128, 512]",
                        b + "mlp.fc2.bias [128]", b + "adaLN_modulation.1.weight [768, 128]",
                        b + "adaLN_modulation.1.bias [768]"));
            }
            want.addAll(List.of("final_layer.linear.weight [16, 128]", "final_layer.linear.bias [16]",
                    "final_layer.adaLN_modulation.1.weight [256, 128]", "final_layer.adaLN_modulation.1.bias [256]"));
            assertEquals(want, sd, "state dict of the reference DiT (no learn_sigma)");
            assertEquals(List.of("pos_embed"), List.copyOf(m.namedBuffers().keySet()));
            assertFalse(m.namedParameters().containsKey("pos_embed"), "the buffer is not a parameter");
            assertEquals(sd.size() - 1, m.parameters().size());
            assertEquals(m.namedParameters().get("blocks.0.attn.qkv.weight").value(),
                    m.stateDict().get("blocks.0.attn.qkv.weight"), "state dict holds the live tensors");
            assertEquals(SinCosPosEmbed.grid2d(128, 7, 7).length, m.posEmbed().numel());
            // the null-class row exists also without label dropout (unlike the reference, see DiT's Javadoc)
            DiT noDrop = new DiT(ops, att, scope, new DiT.Config(8, 1, 4, 16, 1, 2, 4.0, 10, 0.0, 16, 1000), 1);
            assertEquals("[11, 16]", Arrays.toString(
                    noDrop.namedParameters().get("y_embedder.embedding_table.weight").shape()));
        }
    }

    /** A module with a buffer, to test the registration rules. */
    static final class WithBuffer extends Module {
        WithBuffer(TensorScope scope, String name, boolean clash) {
            registerParameter(Parameter.zeros(be, scope, "w", 2));
            registerBuffer(name, be.zeros(scope, DType.F32, 3));
            if (clash) {
                registerBuffer("w", be.zeros(scope, DType.F32, 1));
            }
        }
    }

    @Test
    void bufferRegistrationRules() {
        try (TensorScope scope = TensorScope.open()) {
            WithBuffer ok = new WithBuffer(scope, "stats", false);
            assertEquals(List.of("w", "stats"), List.copyOf(ok.stateDict().keySet()));
            assertEquals(List.of("stats"), List.copyOf(ok.localBuffers().keySet()));
            assertEquals(2, ok.parameterCount(), "buffers are not counted as parameters");
            assertThrows(IllegalArgumentException.class, () -> new WithBuffer(scope, "w", false));
            assertThrows(IllegalArgumentException.class, () -> new WithBuffer(scope, "a.b", false));
            assertThrows(IllegalArgumentException.class, () -> new WithBuffer(scope, "s", true));
        }
    }

    // ---------------------------------------------------------------- Denoiser entry points

    private static Tensor labelsTensor(TensorScope scope, int... labels) {
        Tensor t = be.empty(scope, DType.I32, labels.length);
        t.copyFrom(MemorySegment.ofArray(labels));
        return t;
    }

    /**
     * The prediction with the caller's {@link Workspace} (what {@code SamplerContext} passes every step) equals the
     * one without, bit for bit, even when the slab is full of NaN from the previous call; the slab is sized by the
     * first call and reused after.
     */
    @Test
    void predictOnAReusedPoisonedWorkspaceEqualsAFreshScope() {
        DiT.Config c = TINY;
        String tc = "dit predict workspace";
        SplittableRandom r = random(tc);
        try (TensorScope scope = TensorScope.open(); Workspace ws = Workspace.create()) {
            DiT m = new DiT(ops, att, scope, c, 3);
            randomize(m, r);
            int batch = 3;
            long per = (long) c.channels() * c.imageSize() * c.imageSize();
            Tensor xt = be.fromArray(scope, uniform(r, batch * per, -1, 1), batch, c.channels(), c.imageSize(),
                    c.imageSize());
            NoiseLevels levels = NoiseLevels.of(be, scope, new Level(0.2, 0.8, 0.2), new Level(0.5, 0.5, 0.5),
                    new Level(0.9, 0.1, 0.9));
            Tensor cond = labelsTensor(scope, 0, 2, 1);
            Tensor uncond = labelsTensor(scope, 3, 3, 3);
            Tensor want = NnTestSupport.poisoned(be, scope, xt.shape());
            Tensor wantC = NnTestSupport.poisoned(be, scope, xt.shape());
            Tensor wantU = NnTestSupport.poisoned(be, scope, xt.shape());
            m.predict(xt, levels, cond, want);
            m.predictGuided(xt, levels, cond, uncond, wantC, wantU);
            long capacity = -1;
            for (int round = 0; round < 3; round++) {
                Tensor out = NnTestSupport.poisoned(be, scope, xt.shape());
                Tensor gc = NnTestSupport.poisoned(be, scope, xt.shape());
                Tensor gu = NnTestSupport.poisoned(be, scope, xt.shape());
                m.predict(xt, levels, cond, out, ws);
                m.predictGuided(xt, levels, cond, uncond, gc, gu, ws);
                assertBitwise("predict, round " + round, want.toFloatArray(), out.toFloatArray(), seedOf(tc));
                assertBitwise("guided cond, round " + round, wantC.toFloatArray(), gc.toFloatArray(), seedOf(tc));
                assertBitwise("guided uncond, round " + round, wantU.toFloatArray(), gu.toFloatArray(), seedOf(tc));
                assertTrue(ws.capacity() > 0, "the slab is sized by the first call");
                if (round > 0) {
                    assertEquals(capacity, ws.capacity(), "the slab is reused, not grown, round " + round);
                }
                capacity = ws.capacity();
                try (TensorScope poison = TensorScope.open(ws)) {   // the next call starts from NaN garbage
                    be.fill(be.empty(poison, DType.F32, ws.capacity() / 4 - 64), Float.NaN);
                }
            }
        }
    }

    @Test
    void predictEqualsForwardAndGuidedEqualsTwoPredicts() {
        DiT.Config c = TINY;
        String tc = "dit predict";
        SplittableRandom r = random(tc);
        try (TensorScope scope = TensorScope.open()) {
            DiT m = new DiT(ops, att, scope, c, 3);
            randomize(m, r);
            int batch = 3;
            long per = (long) c.channels() * c.imageSize() * c.imageSize();
            float[] x = uniform(r, batch * per, -1, 1);
            Tensor xt = be.fromArray(scope, x, batch, c.channels(), c.imageSize(), c.imageSize());
            NoiseLevels levels = NoiseLevels.of(be, scope, new Level(0.2, 0.8, 0.2), new Level(0.5, 0.5, 0.5),
                    new Level(0.9, 0.1, 0.9));
            Tensor cond = labelsTensor(scope, 0, 2, 1);
            Tensor uncond = labelsTensor(scope, 3, 3, 3);
            Tensor out = NnTestSupport.poisoned(be, scope, xt.shape());
            m.predict(xt, levels, cond, out);
            float[] direct = m.forward(scope, xt, new double[] {0.2, 0.5, 0.9}, new int[] {0, 2, 1}).out()
                    .toFloatArray();
            assertBitwise("predict = forward", direct, out.toFloatArray(), seedOf(tc));
            Tensor outU = NnTestSupport.poisoned(be, scope, xt.shape());
            m.predict(xt, levels, uncond, outU);
            Tensor gc = NnTestSupport.poisoned(be, scope, xt.shape());
            Tensor gu = NnTestSupport.poisoned(be, scope, xt.shape());
            m.predictGuided(xt, levels, cond, uncond, gc, gu);
            // one batch of 2B against two batches of B: the same math, GEMM blocking may differ in the last bits
            assertClose("guided cond", gc.toFloatArray(), doubles(out.toFloatArray()), 1e-6, seedOf(tc));
            assertClose("guided uncond", gu.toFloatArray(), doubles(outU.toFloatArray()), 1e-6, seedOf(tc));
            assertNotEquals(Arrays.toString(gc.toFloatArray()), Arrays.toString(gu.toFloatArray()),
                    "the label matters");
            // bad conditions
            assertThrows(IllegalArgumentException.class, () -> m.predict(xt, levels, null, out));
            IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                    () -> m.predict(xt, levels, labelsTensor(scope, 0, 4, 1), out));
            assertTrue(bad.getMessage().contains("labels[1] = 4"), bad.getMessage());
            assertThrows(IllegalArgumentException.class, () -> m.predict(xt, levels, labelsTensor(scope, 0, 1), out));
            assertThrows(IllegalArgumentException.class, () -> m.predict(xt, levels, be.zeros(scope, DType.F32, 3),
                    out));
            Tensor wrong = be.zeros(scope, DType.F32, 3, 5);
            assertThrows(IllegalArgumentException.class, () -> m.predict(wrong, levels, cond, wrong));
            assertThrows(IllegalArgumentException.class, () -> m.forward(scope, xt, new double[] {0, Double.NaN, 1},
                    new int[] {0, 0, 0}));
            assertThrows(IllegalArgumentException.class, () -> m.forward(scope, xt, new double[] {0, 1},
                    new int[] {0, 0, 0}));
        }
    }

    @Test
    void dropLabelsFollowsPhiloxAndTheRate() {
        try (TensorScope scope = TensorScope.open()) {
            DiT m = new DiT(ops, att, scope, TINY, 1);
            int[] labels = new int[4000];
            for (int i = 0; i < labels.length; i++) {
                labels[i] = i % 3;
            }
            int[] a = m.dropLabels(labels, 7, 2);
            assertBitwise("deterministic", floatsOf(a), floatsOf(m.dropLabels(labels, 7, 2)), "seed 7");
            int dropped = 0;
            for (int i = 0; i < a.length; i++) {
                assertTrue(a[i] == labels[i] || a[i] == 3, "label " + i);
                dropped += a[i] == 3 ? 1 : 0;
            }
            // Binomial(4000, 0.25): mean 1000, sd 27.4; ±6 sd
            assertEquals(1000, dropped, 165, "dropped labels");
            assertEquals(0, labels[0], "input untouched");
        }
    }

    private static float[] floatsOf(int[] a) {
        float[] f = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            f[i] = a[i];
        }
        return f;
    }

    // ---------------------------------------------------------------- config

    @Test
    void configValidationNamesTheBadValue() {
        Object[][] cases = {
                {"imageSize", new int[] {0, 1, 1, 8, 1, 1, 0}},
                {"channels", new int[] {8, 0, 1, 8, 1, 1, 0}},
                {"patch 3 must divide imageSize 8", new int[] {8, 1, 3, 8, 1, 1, 0}},
                {"multiple of 4", new int[] {8, 1, 2, 18, 1, 1, 0}},
                {"divide hidden 24, got 5", new int[] {8, 1, 2, 24, 1, 5, 0}},
                {"head dim", new int[] {8, 1, 2, 1024, 1, 2, 0}},
                {"depth", new int[] {8, 1, 2, 8, -1, 1, 0}},
                {"numClasses", new int[] {8, 1, 2, 8, 1, 1, -2}},
        };
        for (Object[] k : cases) {
            int[] a = (int[]) k[1];
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> DiT.Config.of(a[0], a[1], a[2], a[3], a[4], a[5], a[6]), (String) k[0]);
            assertTrue(e.getMessage().contains((String) k[0]), e.getMessage());
        }
        assertMessage("mlpRatio", () -> new DiT.Config(8, 1, 2, 8, 1, 1, 0.1, 0, 0, 256, 1000));
        assertMessage("mlpRatio", () -> new DiT.Config(8, 1, 2, 8, 1, 1, Double.NaN, 0, 0, 256, 1000));
        assertMessage("classDropProb must be in [0, 1], got 1.5",
                () -> new DiT.Config(8, 1, 2, 8, 1, 1, 4, 3, 1.5, 256, 1000));
        assertMessage("classDropProb must be 0 for an unconditional",
                () -> new DiT.Config(8, 1, 2, 8, 1, 1, 4, 0, 0.1, 256, 1000));
        assertMessage("frequencyDim", () -> new DiT.Config(8, 1, 2, 8, 1, 1, 4, 0, 0, 0, 1000));
        assertMessage("timeScale", () -> new DiT.Config(8, 1, 2, 8, 1, 1, 4, 0, 0, 256, -1));
        assertEquals(28 / 4 * (28 / 4), DiT.Config.of(28, 1, 4, 128, 4, 4, 10).tokenCount());
        assertEquals(196, DiT.Config.of(28, 1, 2, 192, 6, 6, 10).tokenCount());
    }

    private static void assertMessage(String part, org.junit.jupiter.api.function.Executable ex) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, ex, part);
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }

    @Test
    void configRoundTripsThroughJackson() throws Exception {
        JsonMapper json = JsonMapper.builder().build();
        DiT.Config c = new DiT.Config(28, 1, 4, 128, 4, 4, 4.0, 10, 0.1, 256, 1000.0);
        String text = json.writeValueAsString(c);
        JsonNode tree = json.readTree(text);
        List<String> keys = new ArrayList<>();
        for (Iterator<String> it = tree.fieldNames(); it.hasNext(); ) {
            keys.add(it.next());
        }
        assertEquals(List.of("imageSize", "channels", "patch", "hidden", "depth", "heads", "mlpRatio", "numClasses",
                "classDropProb", "frequencyDim", "timeScale"), keys, text);
        assertEquals(c, json.readValue(text, DiT.Config.class));
    }

    @Test
    void attentionOpsOnAnotherDeviceAreRefusedAtAnyDepth() {
        // a backend that claims to be on cuda:0; DiT must refuse it before it allocates anything
        org.diffusion4j.tensor.Backend elsewhere = (org.diffusion4j.tensor.Backend) java.lang.reflect.Proxy
                .newProxyInstance(getClass().getClassLoader(), new Class<?>[] {org.diffusion4j.tensor.Backend.class},
                        (proxy, method, args) -> switch (method.getName()) {
                            case "device" -> org.diffusion4j.tensor.Device.cuda(0);
                            case "name" -> "elsewhere";
                            case "toString" -> "elsewhere";
                            case "hashCode" -> 0;
                            case "equals" -> proxy == args[0];
                            default -> throw new UnsupportedOperationException(method.getName());
                        });
        AttentionOps foreign = new org.diffusion4j.nn.attention.ComposedAttention(elsewhere);
        for (int depth : new int[] {0, 1}) {
            DiT.Config c = new DiT.Config(4, 1, 2, 8, depth, 2, 1.0, 0, 0, 6, 1000.0);
            try (TensorScope scope = TensorScope.open()) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> new DiT(ops, foreign, scope, c, 1));
                assertTrue(e.getMessage().contains("cuda:0"), e.getMessage());
            }
        }
    }

    @Test
    void theBlockCachesOfAPassCannotBeRemovedByTheCaller() {
        try (TensorScope scope = TensorScope.open()) {
            DiT m = new DiT(ops, att, scope, TINY, 1);
            DiT.Cache c = m.forward(scope, be.zeros(scope, DType.F32, 1, 3, 4, 4), new double[] {0.5}, new int[] {1});
            assertThrows(UnsupportedOperationException.class, () -> c.blocks().remove(0));
            assertEquals(TINY.depth(), c.blocks().size());
            m.backward(scope, c, be.zeros(scope, DType.F32, 1, 3, 4, 4));
        }
    }
}
