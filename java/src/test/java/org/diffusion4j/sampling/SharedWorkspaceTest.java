package org.diffusion4j.sampling;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.nn.DiT;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.RectifiedFlowSchedule;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.diffusion4j.tensor.Workspace;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link SamplerContext.Builder#workspace}: contexts that share the caller's workspace sample exactly what contexts
 * with their own do, only the first one grows it, and closing a context leaves it open.
 */
class SharedWorkspaceTest {

    @Test
    void contextsSharingTheCallersWorkspaceSampleAsTheirOwnAndLeaveItOpen() {
        try (CpuBackend be = new CpuBackend(2); NnOps ops = NnOps.forBackend(be);
             AttentionOps att = AttentionOps.forBackend(be); TensorScope weights = TensorScope.open();
             Workspace shared = Workspace.create()) {
            DiT model = new DiT(ops, att, weights, new DiT.Config(8, 1, 4, 16, 1, 2, 4.0, 2, 0.1, 32, 1000.0), 4);
            long stream = 0;
            for (var p : model.module().namedParameters().values()) {
                be.randn(p.value(), 9, stream++);          // a model whose output depends on every layer
            }
            SamplingGrid grid = SamplingGrid.standard(new RectifiedFlowSchedule(1.0), 4, true);
            long capacityAfterFirst = -1;
            for (int batch = 0; batch < 3; batch++) {
                float[] own = sample(be, model, grid, batch, null);
                float[] withShared = sample(be, model, grid, batch, shared);
                assertArrayEquals(own, withShared, "batch " + batch);
                if (batch == 0) {
                    capacityAfterFirst = shared.capacity();
                    assertTrue(capacityAfterFirst > 0, "the first context sized the shared workspace");
                } else {
                    assertEquals(capacityAfterFirst, shared.capacity(), "later contexts reuse it as it is");
                }
            }
            try (TensorScope s = TensorScope.open(shared)) {   // still open after every context closed
                assertEquals(4, be.empty(s, DType.F32, 4).numel());
            }
            assertThrows(NullPointerException.class,
                    () -> SamplerContext.builder(be, model, Prediction.VELOCITY).workspace(null));
        }
    }

    private static float[] sample(CpuBackend be, DiT model, SamplingGrid grid, int batch, Workspace ws) {
        try (TensorScope scope = TensorScope.open()) {
            Tensor cond = be.fromArray(scope, new int[] {0, 1, 1}, 3);
            Tensor uncond = be.fromArray(scope, new int[] {2, 2, 2}, 3);
            SamplerContext.Builder b = SamplerContext.builder(be, model, Prediction.VELOCITY)
                    .noise(NoiseSeeds.batch(3, 0, 3L * batch, 3)).condition(cond)
                    .guidance(Guidance.of(2.0, 0.0), uncond);
            if (ws != null) {
                b.workspace(ws);
            }
            try (SamplerContext ctx = b.build()) {
                Tensor x = be.empty(scope, DType.F32, 3, 1, 8, 8);
                ctx.initialNoise(x, grid);
                ctx.sample(Samplers.flowMidpoint(), x, grid);
                return x.toFloatArray();
            }
        }
    }
}
