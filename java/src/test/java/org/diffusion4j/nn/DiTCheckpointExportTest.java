package org.diffusion4j.nn;

import com.fasterxml.jackson.databind.json.JsonMapper;
import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.io.Safetensors;
import org.diffusion4j.io.SafetensorsFile;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.diffusion4j.nn.NnTestSupport.assertBitwise;
import static org.diffusion4j.nn.NnTestSupport.random;
import static org.diffusion4j.nn.NnTestSupport.uniform;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A DiT's weights written as safetensors under their state-dict names, with the config in the metadata
 * ({@code d4j.model.kind = dit}, {@code d4j.model.config} = the JSON of {@link DiT.Config}) and a check batch
 * ({@code check.x}, {@code check.t}, {@code check.labels} I32, {@code check.out}: the Java prediction) — the layout
 * {@code tools/torch_check_checkpoint.py} reads to run the same weights in PyTorch. The test reads the file back
 * into a fresh model ({@link Module#loadStateDict}) and asserts the same output bitwise; with the environment variable
 * {@code D4J_DIT_CHECK_DIR} set it also leaves the files there for the Python check ({@code dit_check_cond.safetensors},
 * {@code dit_check_uncond.safetensors}).
 */
class DiTCheckpointExportTest {

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

    @Test
    void conditionalRoundTrip(@TempDir Path dir) throws Exception {
        roundTrip(dir, "dit_check_cond.safetensors", new DiT.Config(12, 3, 3, 24, 2, 3, 2.5, 5, 0.1, 64, 1000.0),
                new int[] {0, 4, 5, 2});
    }

    @Test
    void unconditionalRoundTrip(@TempDir Path dir) throws Exception {
        roundTrip(dir, "dit_check_uncond.safetensors", DiT.Config.of(8, 1, 4, 16, 1, 2, 0), null);
    }

    private void roundTrip(Path dir, String name, DiT.Config c, int[] labels) throws Exception {
        String env = System.getenv("D4J_DIT_CHECK_DIR");
        Path out = env == null || env.isEmpty() ? dir : Files.createDirectories(Path.of(env));
        Path file = out.resolve(name);
        SplittableRandom r = random("dit export " + name);
        int batch = 4;
        try (TensorScope scope = TensorScope.open()) {
            DiT m = new DiT(ops, att, scope, c, 21);
            DiTTest.randomize(m, r);
            Tensor x = be.fromArray(scope, uniform(r, (long) batch * c.channels() * c.imageSize() * c.imageSize(), -2,
                    2), batch, c.channels(), c.imageSize(), c.imageSize());
            double[] t = {0.0, 0.25, 0.6, 1.0};
            Tensor out1 = m.forward(scope, x, t, labels).out();
            Map<String, Tensor> tensors = new LinkedHashMap<>(m.stateDict());
            tensors.put("check.x", x);
            float[] tf = new float[batch];
            for (int b = 0; b < batch; b++) {
                tf[b] = (float) t[b];
            }
            tensors.put("check.t", be.fromArray(scope, tf, batch));
            if (labels != null) {
                Tensor l = be.empty(scope, DType.I32, batch);
                l.copyFrom(MemorySegment.ofArray(labels));
                tensors.put("check.labels", l);
            }
            tensors.put("check.out", out1);
            tensors.put("optim.step_dummy", be.zeros(scope, DType.F32, 1));         // other prefixed state is ignored
            Safetensors.write(file, tensors, Map.of("d4j.model.kind", "dit", "d4j.model.config",
                    JsonMapper.builder().build().writeValueAsString(c)));

            SafetensorsFile f = Safetensors.read(file, scope, be);
            assertEquals("dit", f.metadata().get("d4j.model.kind"));
            DiT.Config back = JsonMapper.builder().build().readValue(f.metadata().get("d4j.model.config"),
                    DiT.Config.class);
            assertEquals(c, back);
            DiT fresh = new DiT(ops, att, scope, back, 999);
            List<String> extra = fresh.loadStateDict(f.tensors());
            assertTrue(extra.stream().allMatch(k -> k.startsWith("check.") || k.startsWith("optim.")), extra.toString());
            float[] again = fresh.forward(scope, f.tensor("check.x"), t, labels).out().toFloatArray();
            assertBitwise("reloaded model", out1.toFloatArray(), again, name);

            Map<String, Tensor> partial = new LinkedHashMap<>(f.tensors());
            partial.remove("final_layer.linear.bias");
            partial.remove("pos_embed");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> fresh.loadStateDict(partial));
            assertTrue(e.getMessage().contains("final_layer.linear.bias") && e.getMessage().contains("pos_embed"),
                    e.getMessage());
            partial.put("final_layer.linear.bias", be.zeros(scope, DType.F32, 2));
            partial.put("pos_embed", fresh.posEmbed());
            e = assertThrows(IllegalArgumentException.class, () -> fresh.loadStateDict(partial));
            assertTrue(e.getMessage().contains("final_layer.linear.bias"), e.getMessage());
        }
    }
}
