package org.diffusion4j.tensor;

import org.diffusion4j.cpu.CpuBackend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Workspace} with {@link TensorScope#open(Workspace)}: it sizes itself after the first scope, then serves
 * every allocation from the same slab (stale contents, no zero-fill), its tensors still die with their scope, and
 * it refuses a second open scope.
 */
class WorkspaceTest {

    private static CpuBackend be;

    @BeforeAll
    static void setUp() {
        be = new CpuBackend(1);
    }

    @AfterAll
    static void tearDown() {
        be.close();
    }

    @Test
    void growsAfterTheFirstScopeThenReusesTheSlabUninitialised() {
        try (Workspace ws = Workspace.create()) {
            assertEquals(0, ws.capacity());
            long firstAddress;
            try (TensorScope s = TensorScope.open(ws)) {
                Tensor a = be.empty(s, DType.F32, 3, 5);
                Tensor b = be.empty(s, DType.F32, 1000);
                assertTrue(Float.isNaN(a.toFloatArray()[7]), "before the slab exists: fresh memory, poisoned");
                b.copyFrom(new float[1000]);
                firstAddress = a.segment().address();
            }
            assertTrue(ws.capacity() >= 15 * 4 + 1000 * 4, "capacity " + ws.capacity());
            long slabAddress;
            try (TensorScope s = TensorScope.open(ws)) {
                Tensor a = be.empty(s, DType.F32, 3, 5);
                Tensor b = be.empty(s, DType.F32, 1000);
                slabAddress = a.segment().address();
                assertEquals(0, slabAddress % 64, "64-byte alignment");
                assertTrue(b.segment().address() >= slabAddress + 60, "b after a");
                float[] poison = new float[1000];
                java.util.Arrays.fill(poison, Float.NaN);
                b.copyFrom(poison);
            }
            assertTrue(slabAddress != firstAddress || ws.capacity() > 0);
            try (TensorScope s = TensorScope.open(ws)) {
                Tensor a = be.empty(s, DType.F32, 3, 5);
                Tensor b = be.empty(s, DType.F32, 1000);
                assertEquals(slabAddress, a.segment().address(), "the same slab again");
                assertTrue(Float.isNaN(b.toFloatArray()[999]), "empty() is uninitialised: the last scope's NaNs");
                Tensor z = be.zeros(s, DType.F32, 1000);
                assertEquals(0f, z.toFloatArray()[500], "zeros() still zero-fills");
            }
        }
    }

    @Test
    void theTestsRunWithPoisonedAllocations() {
        // the build's surefire argLine sets -Dd4j.poisonEmpty=true: every test then sees NaN where an op reads an
        // element that nobody wrote, instead of the zero a fresh page happens to hold
        assertTrue(HostMemory.POISON, "run the tests with -Dd4j.poisonEmpty=true (pom.xml, surefire argLine)");
    }

    @Test
    void tensorsDieWithTheirScope() {
        try (Workspace ws = Workspace.create()) {
            for (int i = 0; i < 2; i++) {   // the second round is served by the slab
                Tensor kept;
                try (TensorScope s = TensorScope.open(ws)) {
                    kept = be.empty(s, DType.F32, 64);
                    kept.copyFrom(new float[64]);
                }
                Tensor dead = kept;
                assertThrows(IllegalStateException.class, dead::toFloatArray, "round " + i);
                assertThrows(IllegalStateException.class, () -> be.fill(dead, 1f), "round " + i);
            }
            assertTrue(ws.capacity() > 0);
        }
    }

    @Test
    void aScopeThatOutgrowsTheSlabFallsBackAndTheSlabGrows() {
        try (Workspace ws = Workspace.create()) {
            try (TensorScope s = TensorScope.open(ws)) {
                be.empty(s, DType.F32, 10);
            }
            long c0 = ws.capacity();
            long big = c0 / 4 + 1000;   // floats: more bytes than the slab holds
            try (TensorScope s = TensorScope.open(ws)) {
                Tensor small = be.empty(s, DType.F32, 10);
                Tensor t = be.empty(s, DType.F32, big);
                long slab = small.segment().address();
                long at = t.segment().address();
                assertTrue(at < slab || at >= slab + c0, "the fallback lies outside the slab");
                assertTrue(Float.isNaN(t.toFloatArray()[(int) big - 1]), "the fallback is fresh memory, poisoned");
            }
            assertTrue(ws.capacity() >= big * 4, "grew to " + ws.capacity() + " for " + big * 4 + " bytes");
        }
    }

    @Test
    void oneOpenScopeAtATime() {
        Workspace ws = Workspace.create();
        TensorScope s = TensorScope.open(ws);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> TensorScope.open(ws));
        assertTrue(e.getMessage().contains("still open"), e.getMessage());
        assertThrows(IllegalStateException.class, ws::close);
        s.close();
        try (TensorScope again = TensorScope.open(ws)) {
            assertTrue(again.isAlive());
        }
        ws.close();
        assertThrows(IllegalStateException.class, () -> TensorScope.open(ws));
        assertThrows(NullPointerException.class, () -> TensorScope.open(null));
    }

    @Test
    void theArenaOfAScopeClosesOnlyWithTheScope() {
        Workspace ws = Workspace.create();
        TensorScope s = TensorScope.open(ws);
        Tensor t = be.zeros(s, DType.F32, 4);
        // closing the arena directly would free the tensors but keep the workspace attached to a dead scope
        assertThrows(UnsupportedOperationException.class, () -> s.arena().close());
        assertTrue(s.isAlive());
        assertEquals(0f, t.toFloatArray()[3]);
        assertEquals(s.arena().scope(), t.storage().scope());
        assertEquals(16, s.arena().allocate(16, 4).byteSize());
        s.close();
        assertFalse(s.arena().scope().isAlive());
        try (TensorScope again = TensorScope.open(ws)) {
            assertTrue(again.isAlive());
        }
        ws.close();
    }

    /**
     * Found by an adversarial trial: after a refused allocation of ~2^63 bytes, closing the scope failed with
     * "cannot allocate -9223372036853727232 bytes" (the demand, rounded up, wrapped). The demand now saturates and
     * the workspace keeps its slab.
     */
    @Test
    void aRefusedHugeAllocationDoesNotBreakTheScopesClose() {
        try (Workspace ws = Workspace.create()) {
            TensorScope s = TensorScope.open(ws);
            org.junit.jupiter.api.Assertions.assertThrows(Throwable.class, () -> s.allocate(Long.MAX_VALUE - 10, 8));
            s.close();
            org.junit.jupiter.api.Assertions.assertFalse(s.isAlive());
            try (TensorScope again = TensorScope.open(ws)) {
                again.allocate(1024, 8);                     // reusable
            }
        }
    }
}
