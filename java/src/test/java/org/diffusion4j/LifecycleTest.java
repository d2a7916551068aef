package org.diffusion4j;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.io.Dataset;
import org.diffusion4j.nn.MlpDenoiser;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.sampling.Denoiser;
import org.diffusion4j.sampling.Guidance;
import org.diffusion4j.sampling.NoiseSeeds;
import org.diffusion4j.sampling.SamplerContext;
import org.diffusion4j.sampling.Samplers;
import org.diffusion4j.sampling.SamplingGrid;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.schedule.RectifiedFlowSchedule;
import org.diffusion4j.schedule.SigmaGrids;
import org.diffusion4j.schedule.VpSchedule;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.diffusion4j.tensor.Workspace;
import org.diffusion4j.training.Checkpoint;
import org.diffusion4j.training.Trainer;
import org.diffusion4j.training.TrainingConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.InterruptedIOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Closing, interrupting and sharing across threads, from a concurrency trial of the library (2026-11-30): a
 * {@code close()} that meets a call in progress refuses without changing anything (so a later {@code close()} frees
 * everything), interrupts stop training and sampling between steps, checkpoint I/O of an interrupted thread names
 * its file, the finite-value check of sampling covers the updated state, and memory of a confined arena does not
 * reach another backend's worker threads.
 */
class LifecycleTest {

    static CpuBackend cpu;

    @BeforeAll
    static void start() {
        cpu = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        cpu.close();
    }

    private static void assertMessage(Class<? extends Throwable> type, String part, org.junit.jupiter.api.function.Executable e) {
        Throwable t = assertThrows(type, e);
        assertTrue(t.getMessage() != null && t.getMessage().contains(part),
                "message '" + t.getMessage() + "' should contain '" + part + "'");
    }

    @Test
    void samplerContextClosedByItsOwnModelRefusesThenClosesLater() {
        SamplingGrid grid = SamplingGrid.ofTimes(VpSchedule.song2021(), 0.9, 0.5, 0.0);   // ends at clean data
        AtomicReference<SamplerContext> self = new AtomicReference<>();
        AtomicReference<Throwable> refused = new AtomicReference<>();
        Denoiser net = new Denoiser() {
            @Override
            public void predict(Tensor xt, org.diffusion4j.sampling.NoiseLevels levels, Tensor condition, Tensor out) {
                cpu.fill(out, 0.5f);
            }

            @Override
            public void predict(Tensor xt, org.diffusion4j.sampling.NoiseLevels levels, Tensor condition, Tensor out,
                                Workspace scratch) {
                try (TensorScope s = TensorScope.open(scratch)) {   // what the library's models do
                    cpu.empty(s, DType.F32, 4);
                    try {
                        self.get().close();
                    } catch (IllegalStateException e) {
                        refused.compareAndSet(null, e);
                    }
                }
                cpu.fill(out, 0.5f);
            }
        };
        try (TensorScope s = TensorScope.open()) {
            Tensor x = cpu.fromArray(s, new float[] {1, 2, 3, 4}, 2, 2);
            SamplerContext ctx = SamplerContext.builder(cpu, net, Prediction.SAMPLE).build();
            self.set(ctx);
            ctx.sample(Samplers.euler(), x, grid);                  // every close() inside was refused: it finished
            assertTrue(refused.get() != null && refused.get().getMessage().contains("SamplerContext is in use"),
                    String.valueOf(refused.get()));
            assertEquals(0.5f, x.toFloatArray()[0]);
            ctx.close();                                            // now it frees everything
            ctx.close();
            assertMessage(IllegalStateException.class, "closed", () -> ctx.sample(Samplers.euler(), x, grid));
        }
    }

    @Test
    void attentionCloseDuringCallsRefusesOrLeavesTheCallsAClearError() throws Exception {
        AttentionOps att = AttentionOps.forBackend(cpu);
        AtomicReference<Throwable> worker = new AtomicReference<>();
        try (TensorScope s = TensorScope.open()) {
            Tensor q = cpu.empty(s, DType.F32, 2, 4, 256, 64);
            cpu.randn(q, 3, 0);
            Tensor o = cpu.empty(s, DType.F32, 2, 4, 256, 64);
            Tensor lse = cpu.empty(s, DType.F32, 2, 4, 256);
            Thread th = new Thread(() -> {
                try {
                    for (int i = 0; i < 100_000; i++) {
                        att.forward(q, q, q, 0.125f, o, lse);
                    }
                } catch (Throwable t) {
                    worker.set(t);
                }
            });
            th.start();
            Thread.sleep(50);
            int refusals = 0;
            while (true) {
                try {
                    att.close();
                    break;
                } catch (IllegalStateException e) {                 // a call was running: nothing changed
                    assertTrue(e.getMessage().contains("CpuAttention is in use"), e.getMessage());
                    refusals++;
                    Thread.onSpinWait();
                }
            }
            th.join(60_000);
            assertFalse(th.isAlive());
            Throwable t = worker.get();
            assertTrue(t instanceof IllegalStateException && t.getMessage().equals("CpuAttention is closed"),
                    "the calling thread sees a closed CpuAttention, not FFM's errors (" + refusals + " refusals): "
                            + t);
            att.close();                                            // idempotent
            assertMessage(IllegalStateException.class, "CpuAttention is closed",
                    () -> att.forward(q, q, q, 0.125f, o, lse));
        }
    }

    /**
     * Found by an adversarial trial: {@code CpuBackend.close()} during a long product on another thread closed the
     * backend under it. Now it refuses while a call runs (each product here takes tens of milliseconds, the gap
     * between two calls microseconds, so the first tries meet a running call); once it succeeds the other thread's
     * next call says the backend is closed, and every product that completed is right.
     */
    @Test
    void backendCloseDuringCallsRefusesUntilTheyReturn() throws Exception {
        // On a loaded machine the product thread can be descheduled in the microseconds between two calls just as
        // close() runs; then close() rightly succeeds at once. So the scenario is repeated (a fresh backend each
        // time) until close() has met a running call; every attempt checks the rest.
        boolean refused = false;
        for (int attempt = 0; attempt < 8 && !refused; attempt++) {
            refused = closeDuringProducts() > 0;
        }
        assertTrue(refused, "close met a running product in none of 8 attempts");
    }

    /** One attempt of the test above; returns how many times close() was refused. */
    private static int closeDuringProducts() throws Exception {
        CpuBackend own = new CpuBackend(2);
        AtomicReference<Throwable> worker = new AtomicReference<>();
        java.util.concurrent.atomic.AtomicInteger products = new java.util.concurrent.atomic.AtomicInteger();
        int n = 700;
        try (TensorScope s = TensorScope.open()) {
            Tensor a = own.empty(s, DType.F32, n, n);
            own.fill(a, 0.5f);
            Tensor c = own.empty(s, DType.F32, n, n);
            Thread th = new Thread(() -> {
                try {
                    for (int i = 0; i < 100_000; i++) {
                        own.gemm(false, false, 1f, a, a, 0f, c);    // every element 0.25 n
                        products.incrementAndGet();
                    }
                } catch (Throwable t) {
                    worker.set(t);
                }
            });
            th.start();
            while (products.get() == 0) {
                Thread.sleep(1);
            }
            int refusals = 0;
            while (true) {
                try {
                    own.close();
                    break;
                } catch (IllegalStateException e) {                 // a call was running: nothing changed
                    assertTrue(e.getMessage().contains("is in use by 1 call"), e.getMessage());
                    refusals++;
                    Thread.sleep(1);
                }
            }
            th.join(60_000);
            assertFalse(th.isAlive());
            Throwable t = worker.get();
            assertTrue(t instanceof IllegalStateException && t.getMessage().contains("is closed"), String.valueOf(t));
            assertTrue(own.isClosed());
            float[] host = new float[n * n];
            java.lang.foreign.MemorySegment.copy(c.segment(), java.lang.foreign.ValueLayout.JAVA_FLOAT, 0, host, 0,
                    n * n);
            for (float v : host) {
                assertEquals(0.25f * n, v, 1e-3f * n, "the last product completed before the close");
            }
            own.close();                                            // idempotent
            return refusals;
        }
    }

    @Test
    void interruptsStopTrainingAndSamplingBetweenStepsAndCheckpointIoNamesItsFile(@TempDir Path dir)
            throws Exception {
        try (TensorScope weights = TensorScope.open(); NnOps ops = NnOps.forBackend(cpu)) {
            MlpDenoiser model = new MlpDenoiser(ops, weights, new MlpDenoiser.Config(2, 24, 2, 16, 1000), 3);
            float[] data = new float[64];
            for (int i = 0; i < data.length; i++) {
                data[i] = (i % 7) * 0.25f - 0.5f;
            }
            try (Trainer tr = new Trainer(model, ops, Dataset.of(data, new long[] {2}, null, List.of()),
                    TrainingConfig.defaults(1, 8, 100))) {
                tr.train(2);
                Thread.currentThread().interrupt();
                try {
                    assertMessage(CancellationException.class, "training interrupted after 0 of 5 steps (step 2",
                            () -> tr.train(5));
                    assertTrue(Thread.currentThread().isInterrupted(), "the interrupt status stays set");
                    Path file = dir.resolve("ck.safetensors");
                    assertMessage(InterruptedIOException.class, file.toAbsolutePath().normalize().toString(),
                            () -> Checkpoint.save(tr, file));
                    assertFalse(Files.exists(file));
                    try (var list = Files.list(dir)) {
                        assertEquals(0, list.count(), "no temporary file left");
                    }
                } finally {
                    Thread.interrupted();
                }
                tr.train(1);                                      // the trainer is consistent
                assertEquals(3, tr.completedSteps());
                Path file = dir.resolve("ck.safetensors");
                tr.save(file);
                Thread.currentThread().interrupt();
                try {
                    assertMessage(InterruptedIOException.class, file.toString(), () -> Checkpoint.readInfo(file));
                } finally {
                    Thread.interrupted();
                }
            }
            SamplingGrid grid = SamplingGrid.ofTimes(RectifiedFlowSchedule.unshifted(),
                    SigmaGrids.linspace(1, 0, 9));
            try (TensorScope s = TensorScope.open();
                 SamplerContext ctx = SamplerContext.builder(cpu, model, Prediction.VELOCITY)
                         .noise(NoiseSeeds.batch(4, 0, 0, 1)).build()) {
                Tensor x = cpu.zeros(s, DType.F32, 4, 2);
                Thread.currentThread().interrupt();
                try {
                    assertMessage(CancellationException.class, "sampling interrupted before model call 1",
                            () -> ctx.sample(Samplers.flowEuler(), x, grid));
                } finally {
                    Thread.interrupted();
                }
                ctx.sample(Samplers.flowEuler(), x, grid);        // and it samples afterwards
                assertEquals(8, ctx.modelCalls());
            }
        }
    }

    @Test
    void checkFiniteCatchesAnUpdateThatOverflowsFromFiniteOutputs() {
        try (TensorScope s = TensorScope.open()) {
            Tensor cond = cpu.fromArray(s, new float[] {0, 1}, 2);
            Tensor uncond = cpu.fromArray(s, new float[] {2, 2}, 2);
            // finite outputs whose guided combination, 7.5·(3e38 + 3e38) − 3e38 ..., overflows float
            Denoiser net = (xt, levels, c, out) -> cpu.fill(out, c == cond ? 3e38f : -3e38f);
            SamplingGrid grid = SamplingGrid.ofFlowSigmas(RectifiedFlowSchedule.unshifted(),
                    SigmaGrids.linspace(1, 0, 4));
            for (boolean check : new boolean[] {false, true}) {
                Tensor x = cpu.zeros(s, DType.F32, 2, 3);
                try (SamplerContext ctx = SamplerContext.builder(cpu, net, Prediction.VELOCITY)
                        .condition(cond).guidance(Guidance.of(7.5, 0), uncond).checkFinite(check).build()) {
                    if (check) {
                        assertMessage(IllegalStateException.class, "produced NaN or infinite values from finite model "
                                + "outputs", () -> ctx.sample(Samplers.flowEuler(), x, grid));
                    } else {
                        ctx.sample(Samplers.flowEuler(), x, grid);
                        assertFalse(Float.isFinite(x.toFloatArray()[0]), "unchecked, the overflow passes silently");
                    }
                }
            }
        }
    }

    @Test
    void confinedMemoryWrappedByOneBackendIsRefusedByAnother() {
        try (Arena confined = Arena.ofConfined(); CpuBackend one = new CpuBackend(1);
             TensorScope s = TensorScope.open()) {
            Tensor w = one.wrap(confined.allocate(4L * 1024, 64), DType.F32, 1024);
            one.fill(w, 1f);                                       // its own single-threaded backend may use it
            Tensor dst = cpu.empty(s, DType.F32, 1024);
            assertMessage(IllegalArgumentException.class, "confined arena", () -> cpu.copy(w, dst));
            assertMessage(IllegalArgumentException.class, "Arena.ofShared()",
                    () -> cpu.axpby(1, w, 1, dst, dst));
        }
    }

    @Test
    void tensorScopeCloseIsIdempotent() {
        TensorScope s = TensorScope.open();
        Tensor t = cpu.zeros(s, DType.F32, 3);
        s.close();
        s.close();
        assertMessage(IllegalStateException.class, "closed", t::toFloatArray);
    }
}
