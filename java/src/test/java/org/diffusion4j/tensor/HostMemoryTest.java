package org.diffusion4j.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import org.diffusion4j.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link HostMemory}: large buffers come uninitialised from the C library, owned by the arena (usable until it
 * closes, refused after), aligned, poisoned in the test runs; impossible sizes fail with the byte count.
 */
class HostMemoryTest {

    @Test
    void largeBuffersComeFromTheCLibraryOwnedByTheArena() {
        assertTrue(HostMemory.usesMalloc(), "Linux's C library has aligned_alloc");
        MemorySegment kept;
        try (Arena arena = Arena.ofShared()) {
            for (long bytes : new long[] {HostMemory.MIN_BYTES, HostMemory.MIN_BYTES + 3, 10_000_019L}) {
                MemorySegment s = HostMemory.allocate(arena, bytes, 64);
                assertEquals(bytes, s.byteSize());
                assertEquals(0, s.address() % 64, "aligned to 64 bytes");
                assertTrue(Float.isNaN(s.get(ValueLayout.JAVA_FLOAT_UNALIGNED, bytes - 4 - bytes % 4)), "poisoned");
                s.set(ValueLayout.JAVA_BYTE, bytes - 1, (byte) 7);        // every byte is ours to write
                assertEquals(7, s.get(ValueLayout.JAVA_BYTE, bytes - 1));
                assertThrows(IndexOutOfBoundsException.class, () -> s.get(ValueLayout.JAVA_BYTE, bytes));
            }
            kept = HostMemory.allocate(arena, 1 << 20, 4096);
            assertEquals(0, kept.address() % 4096, "page alignment when asked");
        }
        MemorySegment dead = kept;
        assertFalse(dead.scope().isAlive(), "freed with its arena");
        assertThrows(IllegalStateException.class, () -> dead.get(ValueLayout.JAVA_INT, 0));
    }

    @Test
    void smallBuffersComeFromTheArenaPoisonedToo() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = HostMemory.allocate(arena, 40, 8);
            assertEquals(40, s.byteSize());
            for (int i = 0; i < 10; i++) {
                assertTrue(Float.isNaN(s.getAtIndex(ValueLayout.JAVA_FLOAT, i)), "element " + i);
            }
        }
    }

    @Test
    void impossibleSizesAndClosedArenasAreRefused() {
        try (Arena arena = Arena.ofShared()) {
            OutOfMemoryError e = assertThrows(OutOfMemoryError.class,
                    () -> HostMemory.allocate(arena, Long.MAX_VALUE / 2, 64));
            assertTrue(e.getMessage().contains(Long.toString(Long.MAX_VALUE / 2)), e.getMessage());
            assertThrows(OutOfMemoryError.class, () -> HostMemory.allocate(arena, Long.MAX_VALUE - 10, 64));
        }
        try (Arena arena = Arena.ofShared()) {
            for (long align : new long[] {0, -8, 3, 96}) {                // found by an adversarial trial
                assertThrows(IllegalArgumentException.class, () -> HostMemory.allocate(arena, 1 << 20, align));
                assertThrows(IllegalArgumentException.class, () -> HostMemory.allocate(arena, 16, align));
            }
            assertThrows(IllegalArgumentException.class, () -> HostMemory.allocate(arena, -1, 8));
            OutOfMemoryError big = assertThrows(OutOfMemoryError.class,
                    () -> HostMemory.allocate(arena, Long.MAX_VALUE, 8192));
            assertTrue(big.getMessage() != null && big.getMessage().contains(Long.toString(Long.MAX_VALUE)));
        }
        Arena closed = Arena.ofShared();
        closed.close();
        assertThrows(IllegalStateException.class, () -> HostMemory.allocate(closed, 1 << 20, 64));
        assertThrows(IllegalStateException.class, () -> HostMemory.allocate(closed, 16, 8));
    }

    @Test
    void backendTensorsOfEverySizeArePoisonedAndZerosStillZeroFills() {
        try (CpuBackend be = new CpuBackend(1); TensorScope s = TensorScope.open()) {
            for (int n : new int[] {1, 1000, 100_000}) {
                float[] e = be.empty(s, DType.F32, n).toFloatArray();
                assertTrue(Float.isNaN(e[0]) && Float.isNaN(e[n - 1]), "empty(" + n + ")");
                float[] z = be.zeros(s, DType.F32, n).toFloatArray();
                assertEquals(0f, z[0]);
                assertEquals(0f, z[n - 1]);
                assertEquals(-1, be.empty(s, DType.I32, n).toIntArray()[n - 1], "an int32 poison is -1");
            }
        }
    }
}
