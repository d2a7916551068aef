package org.diffusion4j.nn;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.io.Safetensors;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.nn.attention.ComposedAttention;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link DiTBlock} and a whole small {@link DiT} (forward, input and parameter gradients), the state-dict names and
 * shapes, and the fixed position embedding, against PyTorch's values in {@code src/test/resources/torch/} written by
 * {@code tools/make_torch_nn_fixtures.py} with the reference-structured torch DiT of {@code tools/torch_dit.py}
 * (float64 results of the stored float32 inputs and random weights; tolerances in {@link TorchFixture}). The weights
 * are loaded by their state-dict names. Each case runs with the fused CPU ops and with the generic compositions
 * ({@link ComposedNnOps}, {@link ComposedAttention}).
 */
class TorchDiTCrossCheckTest {

    private static final JsonMapper JSON = JsonMapper.builder().build();

    private static CpuBackend backend;
    private static NnOps fused;
    private static NnOps composed;
    private static AttentionOps fusedAttention;
    private static AttentionOps naiveAttention;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
        fused = NnOps.forBackend(backend);
        composed = new ComposedNnOps(backend);
        fusedAttention = AttentionOps.forBackend(backend);
        naiveAttention = new ComposedAttention(backend);
    }

    @AfterAll
    static void tearDown() {
        naiveAttention.close();
        fusedAttention.close();
        composed.close();
        fused.close();
        backend.close();
    }

    /** The file's metadata "state_dict": [[name, shape], ...] in torch's order. */
    private static List<String> torchStateDict(String file) throws IOException {
        Path path;
        try {
            path = Path.of(TorchDiTCrossCheckTest.class.getResource("/torch/" + file).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
        JsonNode list = JSON.readTree(Safetensors.readHeader(path).metadata().get("state_dict"));
        List<String> out = new ArrayList<>();
        for (JsonNode e : list) {
            out.add(e.get(0).asText() + " " + e.get(1).toString().replace(",", ", "));
        }
        return out;
    }

    private static List<String> ourStateDict(Module m) {
        List<String> out = new ArrayList<>();
        for (Map.Entry<String, Tensor> e : m.stateDict().entrySet()) {
            out.add(e.getKey() + " " + Arrays.toString(e.getValue().shape()));
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void blockMatchesPytorch(boolean composedOps) throws IOException {
        NnOps ops = composedOps ? composed : fused;
        AttentionOps att = composedOps ? naiveAttention : fusedAttention;
        String file = "dit_block_d32_h2_t6.safetensors";
        try (TensorScope scope = TensorScope.open()) {
            TorchFixture f = TorchFixture.load(file, scope, backend);
            DiTBlock block = new DiTBlock(ops, att, scope, 32, 2, 128);
            assertEquals(torchStateDict(file), ourStateDict(block), "state-dict names, shapes and order");
            f.loadParameters(block, "");
            DiTBlock.Cache c = block.forward(scope, f.tensor("x"), f.tensor("c"));        // [2, 6, 32], [2, 32]
            f.assertOutputClose("DiTBlock forward", c.out(), "out");
            DiTBlock.Grads g = block.backward(scope, c, f.tensor("dout"));
            f.assertGradClose("DiTBlock dx", g.dx(), "dx");
            f.assertGradClose("DiTBlock dc", g.dc(), "dc");
            for (Map.Entry<String, Parameter> e : block.namedParameters().entrySet()) {
                f.assertGradClose("DiTBlock d" + e.getKey(), e.getValue().grad(), e.getKey() + ".grad");
            }
            System.out.println(f.summary(composedOps ? "composed ops" : "fused ops"));
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void wholeDiTMatchesPytorch(boolean composedOps) throws IOException {
        NnOps ops = composedOps ? composed : fused;
        AttentionOps att = composedOps ? naiveAttention : fusedAttention;
        String file = "dit_small.safetensors";
        try (TensorScope scope = TensorScope.open()) {
            TorchFixture f = TorchFixture.load(file, scope, backend);
            Path path;
            try {
                path = Path.of(getClass().getResource("/torch/" + file).toURI());
            } catch (URISyntaxException e) {
                throw new IllegalStateException(e);
            }
            DiT.Config config = JSON.readValue(Safetensors.readHeader(path).metadata().get("config"),
                    DiT.Config.class);
            assertEquals(new DiT.Config(8, 2, 2, 32, 2, 2, 4.0, 3, 0.1, 256, 1000.0), config, "fixture config");
            DiT dit = new DiT(ops, att, scope, config, 99);
            assertEquals(torchStateDict(file), ourStateDict(dit), "state-dict names, shapes and order");
            f.assertOutputClose("pos_embed buffer", dit.posEmbed(), "pos_embed");
            f.loadParameters(dit, "");
            float[] tf = f.tensor("t").toFloatArray();
            double[] t = new double[tf.length];
            for (int i = 0; i < t.length; i++) {
                t[i] = tf[i];
            }
            float[] yf = f.tensor("y").toFloatArray();
            int[] y = new int[yf.length];
            for (int i = 0; i < y.length; i++) {
                y[i] = Math.round(yf[i]);
            }
            DiT.Cache c = dit.forward(scope, f.tensor("x"), t, y);                             // [3, 2, 8, 8]
            f.assertOutputClose("DiT forward", c.out(), "out");
            dit.zeroGrad();
            dit.backward(scope, c, f.tensor("dout"));
            for (Map.Entry<String, Parameter> e : dit.namedParameters().entrySet()) {
                f.assertGradClose("DiT d" + e.getKey(), e.getValue().grad(), e.getKey() + ".grad");
            }
            System.out.println(f.summary(composedOps ? "composed ops" : "fused ops"));
        }
    }

    /** The fixed embedding of the Fashion-MNIST patch-4 grid (7 × 7, width 128) against the reference's numpy code. */
    @Test
    void posEmbedMatchesReferenceNumpy() throws IOException {
        try (TensorScope scope = TensorScope.open()) {
            TorchFixture f = TorchFixture.load("pos_embed_d128_g7.safetensors", scope, backend);
            Tensor ours = backend.fromArray(scope, SinCosPosEmbed.grid2d(128, 7, 7), 49, 128);
            double err = f.check("SinCosPosEmbed.grid2d", ours, "pos_embed", 1e-7);
            float[] a = ours.toFloatArray();
            float[] b = f.tensor("pos_embed").toFloatArray();
            double maxAbs = 0;
            for (int i = 0; i < a.length; i++) {
                maxAbs = Math.max(maxAbs, Math.abs(a[i] - b[i]));
            }
            // both round the same float64 values once to float32; sin/cos libraries may differ by an ulp
            assertEquals(0, maxAbs, 1.2e-7, "max abs difference");
            System.out.println("pos_embed d128 g7: rel err " + err + ", max abs " + maxAbs);
        }
    }
}
