package org.diffusion4j.io;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

import static org.diffusion4j.io.IoTestSupport.craft;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Malformed and hostile safetensors files: each one crafted byte by byte, each rejected by both
 * {@link Safetensors#readHeader} and {@link Safetensors#read} with a {@link SafetensorsFormatException} that
 * names the file and the problem.
 */
class SafetensorsHostileTest {

    private static Backend cpu;

    @TempDir
    Path dir;

    @BeforeAll
    static void open() {
        cpu = new CpuBackend(1);
    }

    @AfterAll
    static void close() {
        cpu.close();
    }

    /** Asserts both entry points reject {@code file} with a message holding every phrase. */
    private static void rejects(Path file, String... phrases) {
        IoTestSupport.assertFails(SafetensorsFormatException.class, file, () -> Safetensors.readHeader(file), phrases);
        try (TensorScope scope = TensorScope.open()) {
            SafetensorsFormatException e = IoTestSupport.assertFails(SafetensorsFormatException.class, file,
                    () -> Safetensors.read(file, scope, cpu), phrases);
            assertEquals(file, e.file());
        }
    }

    private Path file(String name, String json, int dataBytes) throws IOException {
        return craft(dir, name, json, new byte[dataBytes]);
    }

    private static String f32(String name, String shape, long begin, long end) {
        return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":[" + begin + "," + end + "]}";
    }

    // ---------------------------------------------------------------- the 8-byte length and the header bytes

    @Test
    void fileShorterThanTheLengthField() throws IOException {
        Path empty = dir.resolve("empty.safetensors");
        Files.write(empty, new byte[0]);
        rejects(empty, "0 bytes", "8-byte header length");
        Path five = dir.resolve("five.safetensors");
        Files.write(five, new byte[] {1, 2, 3, 4, 5});
        rejects(five, "5 bytes");
    }

    @Test
    void headerLengthBeyondTheFile() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(50).order(ByteOrder.LITTLE_ENDIAN).putLong(1000);
        Path f = dir.resolve("beyond.safetensors");
        Files.write(f, b.array());
        rejects(f, "header length 1000", "past the end of the file", "50 bytes");
    }

    @Test
    void hugeHeaderLengths() throws IOException {
        for (long n : new long[] {100_000_001L, 1L << 40, -1L /* 2^64 - 1 */, Long.MIN_VALUE /* 2^63 */}) {
            ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(n).putLong(0);
            Path f = dir.resolve("huge" + Long.toUnsignedString(n) + ".safetensors");
            Files.write(f, b.array());
            rejects(f, "header length " + Long.toUnsignedString(n), "exceeds the limit of 100000000");
        }
    }

    /** Found by an adversarial trial: {@code info --checkpoint x.npy} spoke of a header length of 3.8e14. */
    @Test
    void otherFormatsAreNamed() throws IOException {
        Path npy = dir.resolve("x.npy");
        Npy.write(npy, new float[] {1, 2, 3}, 3);
        rejects(npy, "is not a safetensors file: it starts like an NPY array");
        Path json = dir.resolve("run.json");
        Files.writeString(json, "{\n  \"status\": \"complete\", \"options\": {}\n}\n");
        rejects(json, "is not a safetensors file: it starts like a JSON file");
        Path gz = dir.resolve("x.gz");
        Files.write(gz, new byte[] {0x1F, (byte) 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0});
        rejects(gz, "it starts like a gzip file");
    }

    @Test
    void headerThatIsNotUtf8() throws IOException {
        Path f = IoTestSupport.craftRaw(dir, "latin1.safetensors", new byte[] {'{', '"', (byte) 0xFF, (byte) 0xFE, '"', '}'},
                new byte[0]);
        rejects(f, "not valid UTF-8");
    }

    @Test
    void headerThatIsNotJson() throws IOException {
        rejects(file("trunc.safetensors", "{\"w\":", 0), "not valid JSON");
        rejects(file("garbage.safetensors", "hello", 0), "not valid JSON");
        rejects(file("blank.safetensors", "        ", 0), "not a JSON object");
        rejects(file("array.safetensors", "[1, 2]", 0), "not a JSON object", "array");
        rejects(file("string.safetensors", "\"x\"", 0), "not a JSON object");
        rejects(file("two.safetensors", "{} {}", 0), "not valid JSON");
    }

    @Test
    void deeplyNestedJsonIsAnErrorNotAStackOverflow() throws IOException {
        String deep = "{\"__metadata__\":" + "[".repeat(100_000) + "]".repeat(100_000) + "}";
        rejects(file("deep.safetensors", deep, 0), "not valid JSON", "nesting depth");
    }

    @Test
    void duplicateNames() throws IOException {
        String json = "{" + f32("w", "[1]", 0, 4) + "," + f32("w", "[1]", 4, 8) + "}";
        rejects(file("dup.safetensors", json, 8), "duplicated name", "'w'");
    }

    // ---------------------------------------------------------------- entries

    @Test
    void entriesThatAreNotObjects() throws IOException {
        rejects(file("num.safetensors", "{\"w\": 5}", 0), "tensor 'w'", "must be an object", "5");
        rejects(file("arr.safetensors", "{\"w\": [0, 4]}", 4), "tensor 'w'", "must be an object");
        rejects(file("null.safetensors", "{\"w\": null}", 0), "tensor 'w'", "must be an object");
    }

    @Test
    void missingOrMistypedFields() throws IOException {
        rejects(file("nodtype.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "'w'", "no string \"dtype\"");
        rejects(file("numdtype.safetensors", "{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                "'w'", "\"dtype\"");
        rejects(file("noshape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4), "'w'", "no \"shape\" array");
        rejects(file("strshape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":\"[1]\",\"data_offsets\":[0,4]}}", 4),
                "'w'", "\"shape\"");
        rejects(file("nooffs.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), "'w'", "no \"data_offsets\" array");
        rejects(file("oneoff.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 4),
                "'w'", "must have 2 numbers");
        rejects(file("threeoff.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8),
                "'w'", "must have 2 numbers");
    }

    @Test
    void unknownDtype() throws IOException {
        rejects(file("f33.safetensors", "{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                "'w'", "unknown dtype \"F33\"");
        rejects(file("lower.safetensors", "{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                "unknown dtype \"f32\"");
    }

    @Test
    void badShapes() throws IOException {
        rejects(file("negdim.safetensors", "{" + f32("w", "[2,-2]", 0, 16) + "}", 16), "'w'", "negative -2");
        rejects(file("floatdim.safetensors", "{" + f32("w", "[2.5]", 0, 10) + "}", 10), "'w'", "2.5", "not an integer");
        rejects(file("bigdim.safetensors", "{" + f32("w", "[1180591620717411303424]", 0, 4) + "}", 4),
                "'w'", "beyond 2^63");
        // 2^40 * 2^40 elements overflow 64 bits
        rejects(file("overflow.safetensors", "{" + f32("w", "[1099511627776,1099511627776]", 0, 4) + "}", 4),
                "'w'", "overflows 64 bits");
        // 2^61 elements of 32 bits: the bit count overflows though the element count does not
        rejects(file("bitsoverflow.safetensors", "{" + f32("w", "[2305843009213693952]", 0, 4) + "}", 4),
                "'w'", "overflows 64 bits");
        // packed F4: three elements are 12 bits
        rejects(file("f4.safetensors", "{\"w\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2),
                "'w'", "12 bits", "not a whole number of bytes");
    }

    @Test
    void shapeAndByteCountDisagree() throws IOException {
        rejects(file("mismatch.safetensors", "{" + f32("w", "[2,2]", 0, 12) + "}", 12),
                "'w'", "16 bytes", "span 12 bytes");
        rejects(file("mismatch2.safetensors", "{" + f32("w", "[0]", 0, 4) + "}", 4), "'w'", "0 bytes", "span 4 bytes");
    }

    @Test
    void badOffsets() throws IOException {
        rejects(file("negoff.safetensors", "{" + f32("w", "[1]", -4, 0) + "}", 4), "'w'", "negative -4");
        rejects(file("backwards.safetensors", "{" + f32("w", "[1]", 8, 4) + "}", 8), "'w'", "end before begin");
        rejects(file("pastend.safetensors", "{" + f32("w", "[4]", 0, 16) + "}", 8),
                "'w'", "[0, 16]", "beyond the data buffer", "8 bytes");
        rejects(file("farpastend.safetensors", "{" + f32("w", "[1]", 1L << 62, (1L << 62) + 4) + "}", 8),
                "'w'", "beyond the data buffer");
        rejects(file("u64off.safetensors", "{" + f32("w", "[1]", 0, 0) .replace("[0,0]", "[18446744073709551615,3]") + "}", 4),
                "'w'", "beyond 2^63");
    }

    @Test
    void overlappingTensors() throws IOException {
        String json = "{" + f32("a", "[4]", 0, 16) + "," + f32("b", "[4]", 8, 24) + "}";
        rejects(file("overlap.safetensors", json, 24), "'b'", "overlaps", "'a'");
        // the same range twice (an aliasing attack)
        String alias = "{" + f32("a", "[2]", 0, 8) + "," + f32("b", "[2]", 0, 8) + "}";
        rejects(file("alias.safetensors", alias, 8), "overlaps");
    }

    @Test
    void holesInTheBuffer() throws IOException {
        String json = "{" + f32("a", "[2]", 0, 8) + "," + f32("b", "[2]", 12, 20) + "}";
        rejects(file("hole.safetensors", json, 20), "bytes [8, 12)", "belong to no tensor", "'b'");
        rejects(file("lead.safetensors", "{" + f32("a", "[2]", 4, 12) + "}", 12), "bytes [0, 4)", "'a'");
    }

    @Test
    void bytesAfterTheLastTensor() throws IOException {
        rejects(file("tail.safetensors", "{" + f32("a", "[2]", 0, 8) + "}", 12), "cover 8 of the 12 bytes");
        rejects(file("tailempty.safetensors", "{}", 3), "cover 0 of the 3 bytes");
    }

    @Test
    void badMetadata() throws IOException {
        rejects(file("metaarr.safetensors", "{\"__metadata__\":[1,2]}", 0), "__metadata__", "must be an object");
        rejects(file("metanum.safetensors", "{\"__metadata__\":{\"step\":12}}", 0),
                "__metadata__ value of 'step'", "must be a string");
    }

    /**
     * The byte strings of the reference's own rejection tests (huggingface/safetensors,
     * {@code safetensors/src/tensor.rs}: {@code test_json_attack}, {@code test_metadata_incomplete_buffer},
     * {@code test_header_too_large}, {@code test_invalid_header_length}, {@code test_invalid_header_non_utf8},
     * {@code test_invalid_header_not_json}, {@code test_invalid_info}, {@code test_validation_overflow}).
     */
    @Test
    void theReferenceRejectionCases() throws IOException {
        String test22 = "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
        StringBuilder attack = new StringBuilder("{");
        for (int i = 0; i < 10; i++) {
            attack.append(i > 0 ? "," : "").append("\"weight_").append(i)
                    .append("\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}");
        }
        rejects(file("json_attack.safetensors", attack.append('}').toString(), 16), "overlaps");
        byte[] bogus = "extra_bogus_data_for_polyglot_file".getBytes(StandardCharsets.US_ASCII);
        byte[] tail = new byte[16 + bogus.length];
        System.arraycopy(bogus, 0, tail, 16, bogus.length);
        rejects(craft(dir, "polyglot.safetensors", test22, tail), "cover 16 of the 50 bytes");
        rejects(file("missing2.safetensors", test22, 14), "beyond the data buffer", "14 bytes");
        ByteBuffer tooLarge = ByteBuffer.allocate(8 + 60 + 16).order(ByteOrder.LITTLE_ENDIAN)
                .put(new byte[] {'<', 0, 0, 0, 0, (byte) 0xff, (byte) 0xff, (byte) 0xff})
                .put(test22.getBytes(StandardCharsets.US_ASCII));
        Path large = dir.resolve("too_large.safetensors");
        Files.write(large, tooLarge.array());
        rejects(large, "exceeds the limit");
        Path onlyLength = dir.resolve("only_length.safetensors");
        Files.write(onlyLength, new byte[] {'<', 0, 0, 0, 0, 0, 0, 0});
        rejects(onlyLength, "header length 60", "past the end of the file");
        rejects(IoTestSupport.craftRaw(dir, "ff.safetensors", new byte[] {(byte) 0xff}, new byte[0]), "not valid UTF-8");
        rejects(file("brace.safetensors", "{", 0), "not valid JSON");
        rejects(file("invalid_info.safetensors",
                "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0, 4]}}", 4), "16 bytes", "span 4");
        rejects(file("overflow1.safetensors",
                "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,18446744073709551614],\"data_offsets\":[0,16]}}", 16),
                "beyond 2^63");
        rejects(file("overflow2.safetensors",
                "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,9223372036854775807],\"data_offsets\":[0,16]}}", 16),
                "overflows 64 bits");
    }

    /** The reference's acceptance cases: test_deserialization, test_empty_shapes_allowed, test_whitespace_padded_header. */
    @Test
    void theReferenceAcceptanceCases() throws IOException {
        Path d = file("deser.safetensors",
                "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16);
        Path s = file("scalar.safetensors", "{\"test\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4);
        Path w = file("ws.safetensors", "{}\r \t\n", 0);
        try (TensorScope scope = TensorScope.open()) {
            assertEquals(4, Safetensors.read(d, scope, cpu).tensor("test").numel());
            assertEquals(0, Safetensors.read(s, scope, cpu).tensor("test").rank());
            assertEquals(0, Safetensors.read(w, scope, cpu).tensors().size());
        }
    }

    @Test
    void missingFileKeepsTheJdkException() {
        Path f = dir.resolve("absent.safetensors");
        assertThrows(NoSuchFileException.class, () -> Safetensors.readHeader(f));
        try (TensorScope scope = TensorScope.open()) {
            assertThrows(NoSuchFileException.class, () -> Safetensors.read(f, scope, cpu));
        }
    }

    @Test
    void wellFormedEdgeCasesAreAccepted() throws IOException {
        // zero-size tensors at shared offsets, a rank-0 tensor, null metadata, unknown extra fields ignored
        String json = "{\"__metadata__\":null," + f32("s", "[]", 0, 4) + "," + f32("z", "[0,5]", 4, 4) + ","
                + "\"y\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4],\"extra\":\"ignored\"}}";
        Path f = craft(dir, "edge.safetensors", json, IoTestSupport.le(2.5f));
        SafetensorsHeader h = Safetensors.readHeader(f);
        assertEquals(3, h.entries().size());
        try (TensorScope scope = TensorScope.open()) {
            SafetensorsFile r = Safetensors.read(f, scope, cpu);
            assertEquals(2.5f, r.tensor("s").item());
            assertEquals(0, r.tensor("z").numel());
            assertEquals(5, r.tensor("z").shape(1));
        }
        assertEquals(new String(Files.readAllBytes(f), 8, json.length(), StandardCharsets.UTF_8), json);
    }

    /**
     * Found by an adversarial trial: shape {@code [0, 2^63 − 1, 2^63 − 1]} (no elements, no bytes) passed the header
     * checks and failed at the tensor's creation with a bare "has more than 2^63 elements", naming neither file nor
     * tensor: its strides do not fit a long.
     */
    @Test
    void anEmptyTensorWhoseStridesOverflowIsRefusedByName() throws IOException {
        Path f = file("strides.safetensors", "{" + f32("w", "[0,9223372036854775807,9223372036854775807]", 0, 0)
                + "}", 0);
        rejects(f, "tensor 'w'", "more than 2^63 elements");
    }

    /** Found by an adversarial trial: {@code /dev/zero} was reported as "file has 0 bytes". */
    @Test
    void specialFilesAreNamedAsSuch() {
        rejects(Path.of("/dev/zero"), "is not a regular file");    // Linux, as the build
    }
}
