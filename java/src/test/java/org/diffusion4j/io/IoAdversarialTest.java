package org.diffusion4j.io;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Mutation fuzzing of the readers with a fixed seed: every mutated file either reads or fails with an
 * {@link IOException} (a {@link FileFormatException} for broken content), never another exception type, and
 * failed writes leave neither the target nor a temporary file behind.
 */
class IoAdversarialTest {

    static CpuBackend cpu;

    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        cpu = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        cpu.close();
    }

    /** A copy of {@code valid} truncated, with random bytes overwritten, or with random bytes appended. */
    static byte[] mutate(byte[] valid, Random r, int headerEnd) {
        byte[] b = valid.clone();
        switch (r.nextInt(5)) {
            case 0 -> b = Arrays.copyOf(b, r.nextInt(b.length));
            case 1 -> {
                int n = 1 + r.nextInt(4);
                for (int j = 0; j < n; j++) {
                    b[r.nextInt(b.length)] = (byte) r.nextInt(256);
                }
            }
            case 2 -> b[r.nextInt(Math.min(headerEnd, b.length))] = (byte) "{}[]\":,0123456789-e.\\u ".charAt(r.nextInt(23));
            case 3 -> b[r.nextInt(Math.min(16, b.length))] = (byte) r.nextInt(256);
            default -> {
                byte[] e = Arrays.copyOf(b, b.length + 1 + r.nextInt(16));
                for (int j = b.length; j < e.length; j++) {
                    e[j] = (byte) r.nextInt(256);
                }
                b = e;
            }
        }
        return b;
    }

    interface Reader {
        void read(Path file) throws IOException;
    }

    /** Reads {@code count} mutations of {@code valid}; returns how many were rejected. */
    int fuzz(byte[] valid, int headerEnd, long seed, int count, Reader reader) throws IOException {
        Random r = new Random(seed);
        Path f = dir.resolve("fuzz.bin");
        int rejected = 0;
        for (int it = 0; it < count; it++) {
            byte[] b = mutate(valid, r, headerEnd);
            Files.write(f, b);
            try {
                reader.read(f);
            } catch (FileFormatException expected) {
                rejected++;
            } catch (IOException | RuntimeException | Error e) {
                fail("mutation " + it + " (seed " + seed + ", " + b.length + " bytes) threw " + e, e);
            }
        }
        return rejected;
    }

    /**
     * Found by an adversarial trial (2026-11-30): element counts that wrap around (an NPY shape whose product wraps
     * to the value count, IDX dims of 2^64 elements) were written as unreadable files; a label of 2^31 - 1 made a
     * class count of -2^31; image sizes that overflow an int failed with index errors. Each is refused by name.
     */
    @Test
    void overflowingCountsAndSizesAreRefusedByName() throws IOException {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Npy.write(dir.resolve("w.npy"), new float[] {1, 2}, 3, 6148914691236517206L));
        assertTrue(e.getMessage().contains("more than 2^63 - 1 elements"), e.getMessage());
        assertTrue(Files.notExists(dir.resolve("w.npy")));
        Npy.write(dir.resolve("empty.npy"), new float[0], 0, Long.MAX_VALUE);          // 0 elements: fine
        e = assertThrows(IllegalArgumentException.class,
                () -> new Idx.Array(Idx.Type.U8, new int[] {65536, 65536, 65536, 65536}, new byte[0]));
        assertTrue(e.getMessage().contains("more than 2^31 - 1 elements"), e.getMessage());
        assertEquals(0, new Idx.Array(Idx.Type.U8, new int[] {65536, 65536, 0}, new byte[0]).numel());
        e = assertThrows(IllegalArgumentException.class, () -> Dataset.of(new float[] {1, 2}, new long[] {1},
                new int[] {0, Integer.MAX_VALUE}, List.of()));
        assertTrue(e.getMessage().contains("label 2147483647 of sample 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ImageFolder.load(dir, 65536, 1));
        assertTrue(e.getMessage().contains("resolution must be in [1, 8192], got 65536"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ImageFolder.loadImage(dir.resolve("x.png"), 4, 2));
        assertTrue(e.getMessage().contains("channels must be 1 or 3, got 2"), e.getMessage());
    }

    @Test
    void mutatedSafetensorsFilesReadOrFailWithAFormatException() throws IOException {
        Path valid = dir.resolve("valid.safetensors");
        try (TensorScope s = TensorScope.open()) {
            Map<String, Tensor> m = new LinkedHashMap<>();
            m.put("w", cpu.fromArray(s, new float[] {1, 2, 3, 4, 5, 6}, 2, 3));
            Tensor h = cpu.empty(s, DType.BF16, 3);
            cpu.fill(h, 1.5f);
            m.put("b", h);
            m.put("i", cpu.zeros(s, DType.I32, 2));
            Safetensors.write(valid, m, Map.of("k", "v"));
        }
        byte[] bytes = Files.readAllBytes(valid);
        int headerEnd = 8 + (int) java.nio.ByteBuffer.wrap(bytes, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        int rejected = fuzz(bytes, headerEnd, 20261101L, 2000, f -> {
            try (TensorScope s = TensorScope.open()) {
                SafetensorsFile sf = Safetensors.read(f, s, cpu);
                for (Tensor t : sf.tensors().values()) {
                    if (t.dtype() == DType.F32) {
                        t.toFloatArray(); // touch the (possibly mapped) bytes
                    }
                }
            }
            Safetensors.readHeader(f);
        });
        assertTrue(rejected > 1000, "only " + rejected + " of 2000 mutations rejected: the fuzzer lost its teeth");
    }

    @Test
    void mutatedNpyIdxAndCsvFilesReadOrFailWithAFormatException() throws IOException {
        Path npy = dir.resolve("a.npy");
        Npy.write(npy, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Path idx = dir.resolve("a.idx");
        Idx.write(idx, Idx.Array.ofF32(new float[] {1, 2, 3, 4, 5, 6}, 2, 3));
        Path csv = dir.resolve("a.csv");
        Files.writeString(csv, "x,y,label\n1,2.5,0\n-3e2,4,1\n");
        int a = fuzz(Files.readAllBytes(npy), 64, 1L, 500, Npy::read);
        int b = fuzz(Files.readAllBytes(idx), 16, 2L, 500, Idx::read);
        int c = fuzz(Files.readAllBytes(csv), 10, 3L, 500, f -> {
            Csv.read(f, Csv.Header.AUTO);
            Csv.read(f, Csv.Header.PRESENT);
        });
        assertTrue(a > 250 && b > 250 && c > 100, "rejected " + a + ", " + b + ", " + c);
    }

    @Test
    void aFailedWriteLeavesNoFileAndNoTemporaryFile() throws IOException {
        Tensor dead;
        try (TensorScope gone = TensorScope.open()) {
            dead = cpu.fromArray(gone, new float[] {1}, 1);
        }
        try (TensorScope s = TensorScope.open()) {
            Map<String, Tensor> m = new LinkedHashMap<>();
            m.put("a", cpu.fromArray(s, new float[] {1, 2}, 2));
            m.put("z", dead);
            Path target = dir.resolve("out.safetensors");
            assertThrows(IllegalStateException.class, () -> Safetensors.write(target, m, Map.of()));
            Path npy = dir.resolve("out.npy");
            Tensor d = dead;
            assertThrows(IllegalStateException.class, () -> Npy.write(npy, d));
            // an existing file is left as it was
            Files.writeString(target, "old");
            assertThrows(IllegalStateException.class, () -> Safetensors.write(target, m, Map.of()));
            assertEquals("old", Files.readString(target));
            Files.delete(target);
        }
        try (Stream<Path> left = Files.list(dir)) {
            List<Path> files = left.toList();
            assertTrue(files.isEmpty(), "left behind: " + files);
        }
    }

    @Test
    void readingIntoAClosedScopeOrWithGarbageArgumentsFailsCleanly() throws IOException {
        Path valid = dir.resolve("v.safetensors");
        try (TensorScope s = TensorScope.open()) {
            Safetensors.write(valid, Map.of("x", cpu.fromArray(s, new float[] {1, 2}, 2)), Map.of());
        }
        TensorScope closed = TensorScope.open();
        closed.close();
        assertThrows(IllegalStateException.class, () -> Safetensors.read(valid, closed, cpu));
        try (TensorScope s = TensorScope.open()) {
            assertThrows(IOException.class, () -> Safetensors.read(dir.resolve("missing"), s, cpu));
            assertThrows(IOException.class, () -> Safetensors.read(dir, s, cpu)); // a folder
        }
        Path empty = dir.resolve("empty.npy");
        Files.write(empty, new byte[0]);
        assertThrows(FileFormatException.class, () -> Npy.read(empty));
        assertThrows(FileFormatException.class, () -> Idx.read(empty));
        try (TensorScope s = TensorScope.open()) {
            assertArrayEquals(new float[] {1, 2}, Safetensors.read(valid, s, cpu).tensor("x").toFloatArray());
        }
    }
}
