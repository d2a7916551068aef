package org.diffusion4j.nn.attention;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.TorchFixture;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.util.List;

import static org.diffusion4j.nn.NnTestSupport.poisoned;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Scaled dot-product attention ({@link AttentionOps}, forward with log-sum-exp and backward) and timm's
 * {@code Attention} layer ({@link MultiHeadSelfAttention} with PyTorch's {@code qkv.*}/{@code proj.*} weights loaded
 * by state-dict name) against PyTorch's values in {@code src/test/resources/torch/}, written by
 * {@code tools/make_torch_nn_fixtures.py} with Debian's python3-torch 1.13 (float64 results of the stored float32
 * inputs; tolerances in {@link TorchFixture}). Each case runs with the fused CPU attention
 * ({@link AttentionOps#forBackend}) and the naive {@link ComposedAttention}.
 */
class TorchAttentionCrossCheckTest {

    private static CpuBackend backend;
    private static NnOps ops;
    private static AttentionOps fused;
    private static AttentionOps naive;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
        ops = NnOps.forBackend(backend);
        fused = AttentionOps.forBackend(backend);
        naive = new ComposedAttention(backend);
    }

    @AfterAll
    static void tearDown() {
        naive.close();
        fused.close();
        ops.close();
        backend.close();
    }

    private static AttentionOps attention(boolean composed) {
        return composed ? naive : fused;
    }

    private static String label(boolean composed) {
        return composed ? "ComposedAttention" : "CpuAttention";
    }

    /** {@code softmax(q·kᵀ/√Dh)·v} for {@code q, k, v [B=2, H=3, T, Dh]}, head dims 32 and 64. */
    @ParameterizedTest
    @CsvSource({"attention_d32_t11.safetensors, false", "attention_d32_t11.safetensors, true",
            "attention_d64_t7.safetensors, false", "attention_d64_t7.safetensors, true"})
    void attentionMatchesPytorch(String file, boolean composed) throws IOException {
        AttentionOps att = attention(composed);
        try (TensorScope scope = TensorScope.open()) {
            TorchFixture f = TorchFixture.load(file, scope, backend);
            Tensor q = f.tensor("q");
            Tensor k = f.tensor("k");
            Tensor v = f.tensor("v");
            long[] s = q.shape();                                                   // [B, H, T, Dh]
            float scale = AttentionOps.defaultScale(s[3]);
            Tensor out = poisoned(backend, scope, s);
            Tensor lse = poisoned(backend, scope, s[0], s[1], s[2]);
            att.forward(q, k, v, scale, out, lse);
            f.assertOutputClose("attention forward", out, "out");
            f.assertOutputClose("attention log-sum-exp", lse, "lse");
            Tensor dq = poisoned(backend, scope, s);
            Tensor dk = poisoned(backend, scope, k.shape());
            Tensor dv = poisoned(backend, scope, v.shape());
            att.backward(q, k, v, out, lse, f.tensor("dout"), scale, dq, dk, dv);
            f.assertGradClose("attention backward", dq, "dq");
            f.assertGradClose("attention backward", dk, "dk");
            f.assertGradClose("attention backward", dv, "dv");
            System.out.println(f.summary(label(composed)));
        }
    }

    /** timm's {@code Attention(dim=48, num_heads=3, qkv_bias=True)} on {@code x [2, 5, 48]}, as in DiT's blocks. */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void multiHeadSelfAttentionMatchesPytorch(boolean composed) throws IOException {
        try (TensorScope scope = TensorScope.open()) {
            TorchFixture f = TorchFixture.load("mhsa_d48_h3_t5.safetensors", scope, backend);
            MultiHeadSelfAttention attn = new MultiHeadSelfAttention(ops, attention(composed), scope, 48, 3, true);
            assertEquals(List.of("qkv.weight", "qkv.bias", "proj.weight", "proj.bias"),
                    List.copyOf(attn.namedParameters().keySet()), "timm state-dict names");
            f.loadParameters(attn, "");
            MultiHeadSelfAttention.Cache c = attn.forward(scope, f.tensor("x"));
            f.assertOutputClose("MultiHeadSelfAttention forward", c.out(), "out");
            Tensor dx = attn.backward(scope, c, f.tensor("dout"));
            f.assertGradClose("MultiHeadSelfAttention backward dx", dx, "dx");
            for (String p : new String[] {"qkv.weight", "qkv.bias", "proj.weight", "proj.bias"}) {
                f.assertGradClose("MultiHeadSelfAttention backward", attn.namedParameters().get(p).grad(), p + ".grad");
            }
            System.out.println(f.summary(label(composed)));
        }
    }
}
