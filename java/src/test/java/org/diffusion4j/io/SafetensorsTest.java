package org.diffusion4j.io;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Device;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;

import static org.diffusion4j.io.IoTestSupport.bytesOf;
import static org.diffusion4j.io.IoTestSupport.craft;
import static org.diffusion4j.io.IoTestSupport.gaussian;
import static org.diffusion4j.io.IoTestSupport.ints;
import static org.diffusion4j.io.IoTestSupport.le;
import static org.diffusion4j.io.IoTestSupport.seedOf;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Writing and reading safetensors: round trips, the reference's known bytes, zero-copy, atomicity, conversions. */
class SafetensorsTest {

    private static Backend cpu;

    @TempDir
    Path dir;

    @BeforeAll
    static void open() {
        cpu = new CpuBackend(2);
    }

    @AfterAll
    static void close() {
        cpu.close();
    }

    private static Tensor cast(TensorScope scope, Tensor f32, DType to) {
        Tensor t = cpu.empty(scope, to, f32.shape());
        cpu.cast(f32, t);
        return t;
    }

    @Test
    void roundTripKeepsEveryDtypeShapeAndByte() throws IOException {
        String seed = seedOf("roundTrip");
        SplittableRandom r = IoTestSupport.random("roundTrip");
        try (TensorScope scope = TensorScope.open()) {
            Map<String, Tensor> in = new LinkedHashMap<>();
            in.put("blocks.0.attn.qkv.weight", cpu.fromArray(scope, gaussian(r, 3 * 5 * 7), 3, 5, 7));
            in.put("bf", cast(scope, cpu.fromArray(scope, gaussian(r, 17), 17), DType.BF16));
            in.put("half", cast(scope, cpu.fromArray(scope, gaussian(r, 6), 2, 3), DType.F16));
            int[] labels = r.ints(4, -1000, 1000).toArray();
            in.put("labels", ints(cpu, scope, labels, 4, 1));
            in.put("scalar", cpu.fromArray(scope, new float[] {r.nextFloat()}));
            in.put("empty", cpu.empty(scope, DType.F32, 0, 3));
            // a transposed view: written row-major in its own (permuted) shape
            Tensor base = cpu.fromArray(scope, gaussian(r, 15), 3, 5);
            in.put("transposed", base.transpose(0, 1));
            in.put("ünïcødé ✓", cpu.fromArray(scope, gaussian(r, 2), 2));
            Map<String, String> meta = Map.of("step", "1234", "config", "{\"width\": 128}", "note", "ß 🎉");
            Path file = dir.resolve("ckpt.safetensors");
            Safetensors.write(file, in, meta);

            try (TensorScope readScope = TensorScope.open()) {
                SafetensorsFile f = Safetensors.read(file, readScope, cpu);
                assertEquals(meta, f.metadata(), seed);
                assertEquals(in.keySet(), f.tensors().keySet(), seed);
                for (Map.Entry<String, Tensor> e : in.entrySet()) {
                    Tensor got = f.tensor(e.getKey());
                    assertEquals(e.getValue().dtype(), got.dtype(), e.getKey());
                    assertArrayEquals(e.getValue().shape(), got.shape(), e.getKey());
                    assertArrayEquals(bytesOf(e.getValue()), bytesOf(got), e.getKey() + "; " + seed);
                    // the writer aligns every tensor, so every one is zero-copy on the CPU
                    assertTrue(f.isZeroCopy(e.getKey()), e.getKey() + " should wrap the mapping");
                    assertTrue(got.storage().isMapped(), e.getKey() + " storage should be the file mapping");
                }
                // the transposed view was written as its row-major elements
                float[] b = base.toFloatArray();
                float[] t = f.tensor("transposed").toFloatArray();
                for (int i = 0; i < 3; i++) {
                    for (int j = 0; j < 5; j++) {
                        assertEquals(b[i * 5 + j], t[j * 3 + i]);
                    }
                }
            }
        }
    }

    @Test
    void headerIsPaddedAndTensorsAreOrderedAsTheReferenceWriterDoes() throws IOException {
        try (TensorScope scope = TensorScope.open()) {
            Map<String, Tensor> in = new LinkedHashMap<>();
            in.put("a_half", cpu.empty(scope, DType.F16, 3));
            in.put("b_f32", cpu.zeros(scope, DType.F32, 1));
            in.put("c_bf16", cpu.empty(scope, DType.BF16, 1));
            in.put("a_int", ints(cpu, scope, new int[] {7}, 1));
            in.put("a_f32", cpu.zeros(scope, DType.F32, 2));
            Path file = dir.resolve("order.safetensors");
            Safetensors.write(file, in, Map.of());
            SafetensorsHeader h = Safetensors.readHeader(file);
            assertEquals(0, h.headerBytes() % 8, "header padded to 8 bytes");
            List<String> names = h.entries().stream().map(SafetensorsHeader.Entry::name).toList();
            // tensor.rs prepare(): dtype descending in the reference's enum order (F32 > I32 > BF16 > F16), then name
            assertEquals(List.of("a_f32", "b_f32", "a_int", "c_bf16", "a_half"), names);
            assertEquals(Files.size(file), h.dataStart() + h.dataBytes());
        }
    }

    /**
     * Byte-exact output of the reference writer, from the unit tests of huggingface/safetensors
     * ({@code safetensors/src/tensor.rs}: {@code test_serialization}, {@code test_serialization_forced_alignement},
     * {@code test_empty}). For {@code test_empty}'s case with metadata only the header length (40) and text are
     * checked: the byte list stored with that test lacks the closing quote of {@code "pt"}, so it is 47 bytes
     * against the 48 its own length field implies.
     */
    @Test
    void writerMatchesTheReferenceBytes() throws IOException {
        int[] attnDot0 = {
            64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
            116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
            58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
            101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
            0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64};
        int[] attn0 = {
            72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
            121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
            91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
            115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
            32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
            160, 64};
        int[] empty = {8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32};
        float[] values = {0, 1, 2, 3, 4, 5};
        try (TensorScope scope = TensorScope.open()) {
            Path f1 = dir.resolve("attn.0.safetensors");
            Safetensors.write(f1, Map.of("attn.0", cpu.fromArray(scope, values, 1, 2, 3)), Map.of());
            assertArrayEquals(bytes(attnDot0), Files.readAllBytes(f1));
            Path f2 = dir.resolve("attn0.safetensors");
            Safetensors.write(f2, Map.of("attn0", cpu.fromArray(scope, values, 1, 1, 2, 3)), Map.of());
            assertArrayEquals(bytes(attn0), Files.readAllBytes(f2));
            Path f3 = dir.resolve("empty.safetensors");
            Safetensors.write(f3, Map.of(), Map.of());
            assertArrayEquals(bytes(empty), Files.readAllBytes(f3));
            // test_empty's second case: header length 40 = {"__metadata__":{"framework":"pt"}} + 5 spaces
            Safetensors.write(f3, Map.of(), Map.of("framework", "pt"));
            byte[] withMeta = Files.readAllBytes(f3);
            assertEquals(48, withMeta.length);
            assertEquals(40, withMeta[0]);
            assertEquals("{\"__metadata__\":{\"framework\":\"pt\"}}     ",
                    new String(withMeta, 8, 40, java.nio.charset.StandardCharsets.UTF_8));
        }
        // and the reader takes the reference's bytes back
        Path g = dir.resolve("ref.safetensors");
        Files.write(g, bytes(attn0));
        try (TensorScope scope = TensorScope.open()) {
            SafetensorsFile f = Safetensors.read(g, scope, cpu);
            assertArrayEquals(values, f.tensor("attn0").toFloatArray());
            assertArrayEquals(new long[] {1, 1, 2, 3}, f.tensor("attn0").shape());
        }
    }

    private static byte[] bytes(int[] v) {
        byte[] b = new byte[v.length];
        for (int i = 0; i < v.length; i++) {
            b[i] = (byte) v[i];
        }
        return b;
    }

    @Test
    void unalignedTensorsAreCopiedWithTheSameValues() throws IOException {
        // Header of odd length: the data buffer starts at an odd file offset, so F32 cannot be wrapped.
        String json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                + "\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[16,18]}}";
        if ((8 + json.length()) % 2 == 0) {
            json += " ";
        }
        ByteBuffer data = ByteBuffer.allocate(18).order(ByteOrder.LITTLE_ENDIAN);
        data.put(le(1.5f, -2f, 3.25f, 1e-3f)).putShort((short) 0x3C00); // F16 1.0
        Path file = craft(dir, "unaligned.safetensors", json, data.array());
        try (TensorScope scope = TensorScope.open()) {
            SafetensorsFile f = Safetensors.read(file, scope, cpu);
            assertFalse(f.isZeroCopy("w"));
            assertFalse(f.isZeroCopy("h"));
            assertFalse(f.tensor("w").storage().isMapped());
            assertArrayEquals(new float[] {1.5f, -2f, 3.25f, 1e-3f}, f.tensor("w").toFloatArray());
            Tensor h32 = cpu.empty(scope, DType.F32, 1);
            cpu.cast(f.tensor("h"), h32);
            assertEquals(1.0f, h32.item());
            assertEquals(0, f.tensor("w").address() % 4, "the copy is aligned");
        }
    }

    /** COPY mode: no tensor refers to the file, so truncating it afterwards (a bus error when mapped) is harmless. */
    @Test
    void copyModeTensorsDoNotDependOnTheFile() throws IOException {
        Path file = dir.resolve("copied.safetensors");
        float[] values = gaussian(new SplittableRandom(3), 64 * 64);
        try (TensorScope scope = TensorScope.open()) {
            Safetensors.write(file, Map.of("w", cpu.fromArray(scope, values, 64, 64)), Map.of());
        }
        try (TensorScope scope = TensorScope.open()) {
            SafetensorsFile f = Safetensors.read(file, scope, cpu, name -> true, Safetensors.Mode.COPY);
            assertFalse(f.isZeroCopy("w"));
            assertFalse(f.tensor("w").storage().isMapped());
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file,
                    java.nio.file.StandardOpenOption.WRITE)) {
                ch.truncate(100);
            }
            Tensor out = cpu.empty(scope, DType.F32, 64, 64);
            cpu.gemm(false, false, 1f, f.tensor("w"), f.tensor("w"), 0f, out);   // native code reads it
            assertArrayEquals(values, f.tensor("w").toFloatArray());
        }
    }

    @Test
    void zeroCopyTensorsAreCopyOnWriteAndOutliveNothing() throws IOException {
        Path file = dir.resolve("cow.safetensors");
        try (TensorScope scope = TensorScope.open()) {
            Safetensors.write(file, Map.of("w", cpu.fromArray(scope, new float[] {1, 2, 3}, 3)), Map.of());
        }
        byte[] before = Files.readAllBytes(file);
        Tensor kept;
        try (TensorScope scope = TensorScope.open()) {
            SafetensorsFile f = Safetensors.read(file, scope, cpu);
            assertTrue(f.isZeroCopy("w"));
            cpu.fill(f.tensor("w"), 7f); // an op writes into the mapped tensor
            assertArrayEquals(new float[] {7, 7, 7}, f.tensor("w").toFloatArray());
            kept = f.tensor("w");
        }
        assertArrayEquals(before, Files.readAllBytes(file), "the file must not change");
        assertThrows(IllegalStateException.class, kept::toFloatArray, "closed scope unmaps the file");
    }

    @Test
    void readOnlyFilesAreCopiedNotMapped() throws IOException {
        Path file = dir.resolve("ro.safetensors");
        try (TensorScope scope = TensorScope.open()) {
            Safetensors.write(file, Map.of("w", cpu.fromArray(scope, new float[] {4, 5}, 2)), Map.of());
        }
        assertTrue(file.toFile().setWritable(false, false));
        boolean rootCanStillWrite = Files.isWritable(file); // root ignores permission bits
        try (TensorScope scope = TensorScope.open()) {
            SafetensorsFile f = Safetensors.read(file, scope, cpu);
            assertArrayEquals(new float[] {4, 5}, f.tensor("w").toFloatArray());
            assertEquals(rootCanStillWrite, f.isZeroCopy("w"));
        } finally {
            assertTrue(file.toFile().setWritable(true, false));
        }
    }

    /** A backend that claims to be a GPU: read must copy through copyFromHost, never wrap. */
    @Test
    void nonHostBackendsGetCopies() throws IOException {
        Path file = dir.resolve("dev.safetensors");
        try (TensorScope scope = TensorScope.open()) {
            Safetensors.write(file, Map.of("w", cpu.fromArray(scope, new float[] {1, 2, 3, 4}, 2, 2),
                    "i", ints(cpu, scope, new int[] {9, -9}, 2)), Map.of());
        }
        AtomicInteger wraps = new AtomicInteger();
        Backend fake = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, m, args) -> switch (m.getName()) {
                    case "device" -> Device.cuda(0);
                    case "wrap" -> {
                        wraps.incrementAndGet();
                        throw new IllegalArgumentException("no wrap on a device");
                    }
                    default -> {
                        try {
                            yield m.invoke(cpu, args);
                        } catch (InvocationTargetException e) {
                            throw e.getCause();
                        }
                    }
                });
        try (TensorScope scope = TensorScope.open()) {
            SafetensorsFile f = Safetensors.read(file, scope, fake);
            assertEquals(0, wraps.get());
            assertTrue(f.zeroCopy().isEmpty());
            assertArrayEquals(new float[] {1, 2, 3, 4}, f.tensor("w").toFloatArray());
            assertArrayEquals(IoTestSupport.bytesOf(ints(cpu, scope, new int[] {9, -9}, 2)), bytesOf(f.tensor("i")));
        }
    }

    // ---------------------------------------------------------------- atomic writes

    @Test
    void aFailedWriteLeavesTheOldFileAndNoTemporary() throws IOException {
        Path file = dir.resolve("atomic.safetensors");
        try (TensorScope scope = TensorScope.open()) {
            Safetensors.write(file, Map.of("w", cpu.fromArray(scope, new float[] {1, 2}, 2)), Map.of("v", "1"));
        }
        byte[] old = Files.readAllBytes(file);
        // A "device" tensor whose transfer to the host fails half-way through the file.
        Backend failing = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, m, args) -> switch (m.getName()) {
                    case "device" -> Device.cuda(0);
                    case "copyToHost" -> throw new IllegalStateException("simulated device failure");
                    case "toString", "name" -> "failing backend";
                    default -> throw new UnsupportedOperationException(m.getName());
                });
        try (Arena arena = Arena.ofShared(); TensorScope scope = TensorScope.open()) {
            MemorySegment seg = arena.allocate(4 * 1000, 8);
            Tensor bad = Tensor.of(failing, seg, DType.F32, 1000);
            Map<String, Tensor> in = new LinkedHashMap<>();
            in.put("a_good", cpu.fromArray(scope, new float[] {3, 4, 5}, 3));
            in.put("z_bad", bad);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> Safetensors.write(file, in, Map.of("v", "2")));
            assertEquals("simulated device failure", e.getMessage());
        }
        assertArrayEquals(old, Files.readAllBytes(file), "old checkpoint must be intact");
        try (var listing = Files.list(dir)) {
            assertEquals(List.of(file), listing.toList(), "no temporary file may remain");
        }
    }

    @Test
    void writeChecksArgumentsBeforeCreatingAnything() throws IOException {
        Path file = dir.resolve("never.safetensors");
        Tensor dead;
        try (TensorScope scope = TensorScope.open()) {
            dead = cpu.zeros(scope, DType.F32, 2);
            Tensor ok = cpu.zeros(scope, DType.F32, 2);
            IllegalArgumentException reserved = assertThrows(IllegalArgumentException.class,
                    () -> Safetensors.write(file, Map.of("__metadata__", ok), Map.of()));
            assertTrue(reserved.getMessage().contains("__metadata__"));
        }
        assertThrows(IllegalStateException.class, () -> Safetensors.write(file, Map.of("w", dead), Map.of()));
        assertFalse(Files.exists(file));
        try (var listing = Files.list(dir)) {
            assertEquals(0, listing.count());
        }
        assertThrows(NoSuchFileException.class,
                () -> Safetensors.write(dir.resolve("no/such/folder/x.safetensors"), Map.of(), Map.of()));
    }

    /**
     * Found by a new-user trial: a run folder passed where a file belongs failed with a bare "Is a directory". The
     * error names the path, and the run's newest checkpoint when there is one.
     */
    @Test
    void aDirectoryIsRefusedWithItsPathAndTheRunFoldersCheckpoint(@TempDir Path dir) throws IOException {
        Path run = dir.resolve("run");
        Files.createDirectories(run.resolve("checkpoints"));
        java.nio.file.FileSystemException e = assertThrows(java.nio.file.FileSystemException.class,
                () -> Safetensors.readHeader(run));
        assertTrue(e.getMessage().contains(run + ": is a directory, not a safetensors file"), e.getMessage());
        Path latest = run.resolve("checkpoints/latest.safetensors");
        try (TensorScope scope = TensorScope.open()) {
            Safetensors.write(latest, Map.of("w", cpu.zeros(scope, DType.F32, 2)), Map.of());
            e = assertThrows(java.nio.file.FileSystemException.class, () -> Safetensors.read(run, scope, cpu));
        }
        assertTrue(e.getMessage().contains("its newest checkpoint is " + latest), e.getMessage());
    }

    @Test
    void largeNonContiguousDeviceStyleTensorsAreStagedInChunks() throws IOException {
        // A [3, 70001] transposed view goes through the staging path (non-contiguous).
        SplittableRandom r = IoTestSupport.random("staged");
        try (TensorScope scope = TensorScope.open()) {
            Tensor base = cpu.fromArray(scope, gaussian(r, 3 * 70_001), 70_001, 3);
            Path file = dir.resolve("staged.safetensors");
            Safetensors.write(file, Map.of("t", base.transpose(0, 1)), Map.of());
            try (TensorScope s2 = TensorScope.open()) {
                Tensor t = Safetensors.read(file, s2, cpu).tensor("t");
                Tensor expect = cpu.empty(scope, DType.F32, 3, 70_001);
                cpu.copy(base.transpose(0, 1), expect);
                assertArrayEquals(expect.toFloatArray(), t.toFloatArray(), seedOf("staged"));
            }
        }
    }

    // ---------------------------------------------------------------- dtype conversions

    @Test
    void otherDtypesAreConvertedExactlyOrRefused() throws IOException {
        ByteBuffer d = ByteBuffer.allocate(1024).order(ByteOrder.LITTLE_ENDIAN);
        StringBuilder json = new StringBuilder("{");
        long[] at = {0};
        java.util.function.BiConsumer<String, String> entry = (name, spec) -> {
            // spec: dtype|shape|bytes
            String[] p = spec.split("\\|");
            long n = Long.parseLong(p[2]);
            json.append(json.length() > 1 ? "," : "").append('"').append(name).append("\":{\"dtype\":\"").append(p[0])
                    .append("\",\"shape\":").append(p[1]).append(",\"data_offsets\":[").append(at[0]).append(',')
                    .append(at[0] + n).append("]}");
            at[0] += n;
        };
        entry.accept("f64", "F64|[3]|24");
        d.putDouble(1.0 / 3).putDouble(-1e300).putDouble(Math.PI);
        entry.accept("i64", "I64|[2]|16");
        d.putLong(-5).putLong(Integer.MAX_VALUE);
        entry.accept("u8", "U8|[3]|3");
        d.put((byte) 0).put((byte) 200).put((byte) 255);
        entry.accept("bool", "BOOL|[2]|2");
        d.put((byte) 1).put((byte) 0);
        entry.accept("i8", "I8|[2]|2");
        d.put((byte) -128).put((byte) 127);
        entry.accept("i16", "I16|[1]|2");
        d.putShort((short) -30000);
        entry.accept("u16", "U16|[1]|2");
        d.putShort((short) 60000);
        entry.accept("u32", "U32|[1]|4");
        d.putInt(123456);
        entry.accept("u64", "U64|[1]|8");
        d.putLong(42);
        entry.accept("fp8", "F8_E4M3|[2]|2");
        d.put((byte) 0x38).put((byte) 0x40);
        json.append('}');
        byte[] data = java.util.Arrays.copyOf(d.array(), (int) at[0]);
        Path file = craft(dir, "dtypes.safetensors", json.toString(), data);

        try (TensorScope scope = TensorScope.open()) {
            SafetensorsFile f = Safetensors.read(file, scope, cpu, name -> !name.equals("fp8"));
            Tensor f64 = f.tensor("f64");
            assertEquals(DType.F32, f64.dtype());
            assertArrayEquals(new float[] {(float) (1.0 / 3), Float.NEGATIVE_INFINITY, (float) Math.PI}, f64.toFloatArray());
            assertInts(f.tensor("i64"), -5, Integer.MAX_VALUE);
            assertInts(f.tensor("u8"), 0, 200, 255);
            assertInts(f.tensor("bool"), 1, 0);
            assertInts(f.tensor("i8"), -128, 127);
            assertInts(f.tensor("i16"), -30000);
            assertInts(f.tensor("u16"), 60000);
            assertInts(f.tensor("u32"), 123456);
            assertInts(f.tensor("u64"), 42);
            assertFalse(f.tensors().containsKey("fp8"));
            IoTestSupport.assertFails(SafetensorsFormatException.class, file,
                    () -> Safetensors.read(file, scope, cpu), "'fp8'", "F8_E4M3", "cannot load");
        }
        // an I64 beyond the int range is an error naming the value
        String big = "{\"big\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}";
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1).putLong(5_000_000_000L);
        Path bigFile = craft(dir, "big.safetensors", big, b.array());
        try (TensorScope scope = TensorScope.open()) {
            IoTestSupport.assertFails(SafetensorsFormatException.class, bigFile,
                    () -> Safetensors.read(bigFile, scope, cpu), "'big'", "5000000000", "element 1");
        }
    }

    private static void assertInts(Tensor t, int... expect) {
        assertEquals(DType.I32, t.dtype());
        int[] got = bytesToInts(bytesOf(t));
        assertArrayEquals(expect, got, t.toString());
    }

    private static int[] bytesToInts(byte[] b) {
        int[] out = new int[b.length / 4];
        ByteBuffer.wrap(b).order(ByteOrder.nativeOrder()).asIntBuffer().get(out);
        return out;
    }
}
