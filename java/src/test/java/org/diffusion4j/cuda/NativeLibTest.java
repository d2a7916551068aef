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

    @Test
    void attentionAndReductionArgumentsAreCheckedBeforeCuda() {
        long fake = 1L << 20; // never dereferenced: every call below fails its checks or has nothing to do
        // head dim outside [1, 128], negative sizes, no keys, a negative / NaN scale, overflow, null pointers
        assertInvalid(NativeLib.d4j_attention_forward_f32(fake, fake, fake, fake, 0, 1, 4, 4, 0, 1f, 0),
                "head dim 0");
        assertInvalid(NativeLib.d4j_attention_forward_bf16(fake, fake, fake, fake, 0, 1, 4, 4, 129, 1f, 0),
                "head dim 129");
        assertInvalid(NativeLib.d4j_attention_backward_f32(fake, fake, fake, fake, fake, fake, fake, fake, fake, 1,
                -1, 4, 64, 1f, 0), "negative size");
        assertInvalid(NativeLib.d4j_attention_forward_f32(fake, fake, fake, fake, 0, 2, 3, 0, 64, 1f, 0), "no keys");
        assertInvalid(NativeLib.d4j_attention_forward_f32(fake, fake, fake, fake, 0, 2, 3, 3, 64, -1f, 0),
                "scale must be finite");
        assertInvalid(NativeLib.d4j_attention_forward_f32(fake, fake, fake, fake, 0, 2, 3, 3, 64, Float.NaN, 0),
                "scale must be finite");
        assertInvalid(NativeLib.d4j_attention_forward_f32(fake, fake, fake, fake, 0, Long.MAX_VALUE / 2, 3, 3, 64,
                1f, 0), "overflows");
        assertInvalid(NativeLib.d4j_attention_forward_f32(0, fake, fake, fake, 0, 1, 3, 3, 64, 1f, 0),
                "must not be null");
        assertInvalid(NativeLib.d4j_attention_backward_f32(fake, fake, fake, fake, 0, fake, fake, fake, fake, 1, 3, 3,
                64, 1f, 0), "must not be null");
        // nothing to do: OK without touching the device
        assertEquals(NativeLib.OK, NativeLib.d4j_attention_forward_f32(0, 0, 0, 0, 0, 0, 5, 5, 64, 1f, 0));
        assertEquals(NativeLib.OK, NativeLib.d4j_attention_forward_bf16(0, 0, 0, 0, 0, 3, 0, 5, 64, 1f, 0));
        assertEquals(NativeLib.OK, NativeLib.d4j_attention_backward_f32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 5, 64, 1f,
                0));
        assertInvalid(NativeLib.d4j_attention_backward_bf16(fake, fake, fake, fake, fake, fake, fake, fake, fake, 1, 3,
                3, 200, 1f, 0), "head dim 200");
        assertInvalid(NativeLib.d4j_attention_backward_bf16(fake, fake, fake, fake, fake, fake, 0, fake, fake, 1, 3, 3,
                64, 1f, 0), "must not be null");
        assertEquals(NativeLib.OK, NativeLib.d4j_attention_backward_bf16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 64, 1f,
                0));

        assertInvalid(NativeLib.d4j_column_sum_f32(fake, fake, -1, 4, 0, 0), "negative size");
        assertInvalid(NativeLib.d4j_column_sum_f32(fake, 0, 3, 4, 0, 0), "must not be null");
        assertEquals(NativeLib.OK, NativeLib.d4j_column_sum_f32(0, 0, 5, 0, 1, 0));
        assertInvalid(NativeLib.d4j_layer_norm_backward_f32(fake, 0, 0, 0, 0, fake, fake, fake, fake, fake, 0, 0, 0, 0,
                0, 2, 3, 4, 0), "d_gamma given without gamma");
        assertInvalid(NativeLib.d4j_layer_norm_backward_f32(fake, 0, 0, fake, 2, fake, fake, fake, fake, 0, 0, 0, 0, 0,
                0, 2, 3, 4, 0), "row strides");
        assertInvalid(NativeLib.d4j_layer_norm_backward_f32(fake, 0, 0, 0, 0, fake, fake, fake, fake, 0, 0, 0, 0, 0, 0,
                2, -3, 4, 0), "negative size");
        assertEquals(NativeLib.OK, NativeLib.d4j_layer_norm_backward_f32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 3, 4, 0));
        assertInvalid(NativeLib.d4j_embedding_backward_f32(fake, fake, 10, 4, fake, 5, 6, 0), "bad plan sizes");
        assertInvalid(NativeLib.d4j_embedding_backward_f32(fake, fake, 3, 4, fake, 5, 4, 0), "bad plan sizes");
        assertInvalid(NativeLib.d4j_embedding_backward_f32(fake, fake, -1, 4, fake, 5, 4, 0), "negative size");
        assertInvalid(NativeLib.d4j_embedding_backward_f32(fake, fake, 10, 4, 0, 5, 4, 0), "must not be null");
        assertEquals(NativeLib.OK, NativeLib.d4j_embedding_backward_f32(0, 0, 10, 4, 0, 0, 0, 0));
    }

    private static void assertInvalid(int rc, String messagePart) {
        String text = NativeLib.d4j_last_error();
        assertEquals(NativeLib.ERR_INVALID, rc, text);
        assertTrue(text.contains(messagePart), "'" + text + "' should contain '" + messagePart + "'");
    }

    /**
     * Every function the C header declares has a binding here with the same name and argument count (the CTest
     * {@code abi_exports} checks the other half: the library exports all of them and nothing else).
     */
    @Test
    void everyHeaderFunctionIsBound() throws java.io.IOException {
        java.nio.file.Path header = java.nio.file.Path.of("..", "native", "include", "diffusion4j.h");
        assumeTrue(java.nio.file.Files.isRegularFile(header), "source tree not here: " + header.toAbsolutePath());
        String text = java.nio.file.Files.readString(header).replaceAll("(?s)/\\*.*?\\*/", "");
        java.util.regex.Matcher m = java.util.regex.Pattern
                .compile("\\b(d4j_[a-z0-9_]+)\\s*\\(([^)]*)\\)\\s*;").matcher(text);
        java.util.Map<String, Integer> declared = new java.util.TreeMap<>();
        while (m.find()) {
            String args = m.group(2).trim();
            declared.put(m.group(1), args.isEmpty() || args.equals("void") ? 0 : args.split(",").length);
        }
        assertTrue(declared.containsKey("d4j_attention_forward_bf16") && declared.containsKey("d4j_column_sum_f32"),
                "header parsed: " + declared.keySet());
        java.util.Map<String, Integer> bound = new java.util.TreeMap<>();
        for (java.lang.reflect.Method method : NativeLib.class.getDeclaredMethods()) {
            if (java.lang.reflect.Modifier.isNative(method.getModifiers())) {
                bound.put(method.getName(), method.getParameterCount());
            }
        }
        assertEquals(declared, bound, "functions of diffusion4j.h (name -> argument count) vs NativeLib");
    }
}
