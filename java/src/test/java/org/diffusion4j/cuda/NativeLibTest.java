package org.diffusion4j.cuda;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The binding itself, on any machine where the library was built (no GPU needed): argument checks in C
 * return {@code D4J_ERR_INVALID} with a message before CUDA is touched, and the error text is per thread.
 */
@Tag("cuda") // part of the GPU check too; runs (and passes) on every machine
class NativeLibTest {

    @BeforeAll
    static void loaded() {
        NativeLoader.Outcome o = NativeLoader.load();
        assumeTrue(o.loaded(), "native library not in this build: " + o.failure());
    }

    @Test
    void versionMatchesTheBuild() {
        assertTrue(NativeLib.d4j_version() >= 100, "version " + NativeLib.d4j_version());
        assertEquals("0.1.0", CudaRuntime.libraryVersion());
    }

    @Test
    void invalidArgumentsAreRejectedWithText() {
        long[] p = new long[1];
        assertEquals(NativeLib.ERR_INVALID, NativeLib.d4j_malloc(p, -5));
        assertTrue(NativeLib.d4j_last_error().startsWith("d4j_malloc: negative size -5"), NativeLib.d4j_last_error());
        assertEquals(0L, p[0]);
        assertEquals(NativeLib.ERR_INVALID, NativeLib.d4j_memcpy_h2d(0, 0, -1, 0));
        assertTrue(NativeLib.d4j_last_error().contains("d4j_memcpy_h2d"), NativeLib.d4j_last_error());
        assertEquals(0, NativeLib.d4j_malloc(p, 0), "zero bytes is a no-op");
        assertEquals(0, NativeLib.d4j_free(0));
        assertEquals(0, NativeLib.d4j_stream_destroy(0));
    }

    @Test
    void lastErrorIsPerThread() throws InterruptedException {
        assertEquals(NativeLib.ERR_INVALID, NativeLib.d4j_malloc(new long[1], -7));
        String mine = NativeLib.d4j_last_error();
        AtomicReference<String> other = new AtomicReference<>();
        Thread t = Thread.ofPlatform().start(() -> other.set(NativeLib.d4j_last_error()));
        t.join();
        assertEquals("", other.get(), "a fresh thread has no error");
        assertEquals(mine, NativeLib.d4j_last_error());
    }

    @Test
    void deviceQueriesFailCleanlyWithoutADevice() {
        int[] n = {-1};
        int rc = NativeLib.d4j_device_count(n);
        assumeTrue(rc != 0 || n[0] == 0, "a device is present");
        assertEquals(0, n[0]);
        assertTrue(NativeLib.d4j_last_error().contains("cudaError"), NativeLib.d4j_last_error());
        assertTrue(NativeLib.d4j_malloc(new long[1], 16) != 0);
        assertTrue(NativeLib.d4j_self_test() != 0);
    }
}
