package org.diffusion4j.io;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Shared by the io tests: seeded randomness (-Dd4j.test.seed=N), crafted files, byte views of tensors. */
final class IoTestSupport {

    private IoTestSupport() {
    }

    static final long BASE_SEED = org.diffusion4j.TestSeed.BASE;

    static SplittableRandom random(String testCase) {
        return new SplittableRandom(BASE_SEED ^ testCase.hashCode() * 0x9E3779B97F4A7C15L);
    }

    static String seedOf(String testCase) {
        return "-Dd4j.test.seed=" + BASE_SEED + " (case " + testCase + ")";
    }

    static float[] gaussian(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            // Box-Muller in double; only the spread of values matters here
            double u1 = 1 - r.nextDouble();
            double u2 = r.nextDouble();
            a[i] = (float) (Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
        }
        return a;
    }

    /** The row-major bytes of any tensor (any dtype, any strides), copied to the heap. */
    static byte[] bytesOf(Tensor t) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment seg = a.allocate(Math.max(1, t.byteSize()), 8).asSlice(0, t.byteSize());
            t.copyTo(seg);
            return seg.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        }
    }

    /** An I32 tensor holding {@code values}. */
    static Tensor ints(Backend be, TensorScope scope, int[] values, long... shape) {
        Tensor t = be.empty(scope, DType.I32, shape);
        t.copyFrom(MemorySegment.ofArray(values));
        return t;
    }

    /** A safetensors file: LE u64 length of {@code json}, the JSON bytes, then {@code data}. */
    static Path craft(Path dir, String name, String json, byte[] data) throws IOException {
        return craftRaw(dir, name, json.getBytes(StandardCharsets.UTF_8), data);
    }

    static Path craftRaw(Path dir, String name, byte[] header, byte[] data) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header).put(data);
        Path p = dir.resolve(name);
        Files.write(p, b.array());
        return p;
    }

    /** Little-endian bytes of floats. */
    static byte[] le(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) {
            b.putFloat(x);
        }
        return b.array();
    }

    /** Asserts that {@code call} throws {@code type} whose message names {@code file} and contains each phrase. */
    static <T extends Throwable> T assertFails(Class<T> type, Path file, ThrowingRunnable call, String... phrases) {
        T e = assertThrows(type, call::run);
        String msg = e.getMessage();
        assertTrue(msg != null && msg.contains(file.toString()), "message should name " + file + ": " + msg);
        for (String p : phrases) {
            assertTrue(msg.toLowerCase(java.util.Locale.ROOT).contains(p.toLowerCase(java.util.Locale.ROOT)),
                    "message should contain '" + p + "': " + msg);
        }
        return e;
    }

    @FunctionalInterface
    interface ThrowingRunnable {
        void run() throws Throwable;
    }
}
