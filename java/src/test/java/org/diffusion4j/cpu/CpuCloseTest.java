package org.diffusion4j.cpu;

import org.diffusion4j.nn.Activation;
import org.diffusion4j.nn.NnOps;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link CpuBackend#close()} against calls on other threads, from a code review (2026-11-30): a refused close must
 * not be seen by anyone (it once set the closed flag for a moment, and a call entering then failed), and the op
 * families on the backend count as its calls (a close once succeeded in the middle of a large NnOps call).
 */
class CpuCloseTest {

    /** Runs {@code body} on a new thread; returns it started. */
    private static Thread start(Runnable body) {
        Thread t = new Thread(body);
        t.start();
        return t;
    }

    @Test
    void refusedClosesAreInvisibleToOtherCalls() throws Exception {
        CpuBackend be = new CpuBackend(2);
        int n = 2000;                                              // 16 GFLOP: >= 0.1 s here
        AtomicReference<Throwable> small = new AtomicReference<>();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicBoolean inProduct = new AtomicBoolean();
        try (TensorScope s = TensorScope.open()) {
            Tensor a = be.empty(s, DType.F32, n, n);
            be.fill(a, 0.25f);
            Tensor c = be.empty(s, DType.F32, n, n);
            Tensor tiny = be.empty(s, DType.F32, 8);
            Thread big = start(() -> {
                inProduct.set(true);
                be.gemm(false, false, 1f, a, a, 0f, c);             // hundreds of milliseconds on 2 cores
                inProduct.set(false);
            });
            Thread calls = start(() -> {
                try {
                    while (!stop.get()) {
                        be.fill(tiny, 1f);                          // short calls entering all the time
                    }
                } catch (Throwable t) {
                    small.set(t);
                }
            });
            while (!inProduct.get() || be.runningCalls() == 0) {
                Thread.onSpinWait();
            }
            long until = System.nanoTime() + 20_000_000L;          // well inside the product
            int refusals = 0;
            while (System.nanoTime() < until) {
                IllegalStateException e = assertThrows(IllegalStateException.class, be::close);
                assertTrue(e.getMessage().contains("is in use by"), e.getMessage());
                assertFalse(be.isClosed());
                refusals++;
            }
            stop.set(true);
            calls.join(30_000);
            big.join(60_000);
            assertNull(small.get(), "a refused close reached another thread's call after " + refusals + " refusals");
            assertEquals(0, be.runningCalls());
            be.close();
            assertTrue(be.isClosed());
            assertThrows(IllegalStateException.class, () -> be.fill(tiny, 0f));
        }
    }

    @Test
    void opFamilyCallsCountAsCallsOfTheBackend() throws Exception {
        CpuBackend be = new CpuBackend(2);
        NnOps ops = NnOps.forBackend(be);
        AtomicInteger done = new AtomicInteger();
        AtomicReference<Throwable> failed = new AtomicReference<>();
        try (TensorScope s = TensorScope.open()) {
            Tensor x = be.empty(s, DType.F32, 4096, 4096);
            be.fill(x, 0.5f);
            Tensor y = be.empty(s, DType.F32, 4096, 4096);
            Thread worker = start(() -> {
                try {
                    for (int i = 0; i < 3; i++) {
                        ops.activation(Activation.GELU_TANH, x, null, null, y);   // 16 M elements a call
                        done.incrementAndGet();
                    }
                } catch (Throwable t) {
                    failed.set(t);
                }
            });
            while (be.runningCalls() == 0 && worker.isAlive()) {
                Thread.onSpinWait();
            }
            int refusals = 0;
            while (worker.isAlive()) {
                try {
                    be.close();
                    break;
                } catch (IllegalStateException e) {
                    refusals++;
                    Thread.onSpinWait();
                }
            }
            worker.join(60_000);
            assertTrue(refusals > 0, "close met the family's running call");
            Throwable t = failed.get();
            assertTrue(t == null || t.getMessage().contains("is closed"), String.valueOf(t));
            ops.close();
            be.close();
        }
    }
}
