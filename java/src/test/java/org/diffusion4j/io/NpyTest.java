package org.diffusion4j.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.diffusion4j.io.IoTestSupport.assertFails;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** NPY: files written by NumPy 1.24 (committed fixtures), round trips, byte equality with numpy.save, bad files. */
class NpyTest {

    @TempDir
    Path dir;

    /** name -> {shape..., values...} from numpy_values.txt (written by the fixture script with numpy.load). */
    private static Map<String, double[][]> numpyValues() throws IOException {
        Map<String, double[][]> out = new HashMap<>();
        for (String line : Files.readAllLines(TorchFixtureTest.resource("numpy_values.txt"))) {
            String[] halves = line.split(" : ");
            String[] head = halves[0].split(" ");
            double[] shape = Arrays.stream(head).skip(1).mapToDouble(Double::parseDouble).toArray();
            double[] values = Arrays.stream(halves[1].split(" ")).mapToDouble(Double::parseDouble).toArray();
            out.put(head[0], new double[][] {shape, values});
        }
        return out;
    }

    @Test
    void readsNumpyWrittenFiles() throws IOException {
        Map<String, double[][]> expect = numpyValues();
        for (String name : List.of("numpy_f4_v1.npy", "numpy_f8_v2.npy", "numpy_u1.npy")) {
            Npy.Array a = Npy.read(TorchFixtureTest.resource(name));
            double[][] e = expect.get(name);
            assertArrayEquals(Arrays.stream(e[0]).mapToLong(d -> (long) d).toArray(), a.shape(), name);
            float[] want = new float[e[1].length];
            for (int i = 0; i < want.length; i++) {
                want[i] = (float) e[1][i];
            }
            assertArrayEquals(want, a.values(), name);
        }
        assertEquals("<f8", Npy.read(TorchFixtureTest.resource("numpy_f8_v2.npy")).descr());
        assertEquals("|u1", Npy.read(TorchFixtureTest.resource("numpy_u1.npy")).descr());
        // big-endian copy of the same array
        assertArrayEquals(Npy.read(TorchFixtureTest.resource("numpy_f4_v1.npy")).values(),
                Npy.read(TorchFixtureTest.resource("numpy_f4_bigendian.npy")).values());
        Path fortran = TorchFixtureTest.resource("numpy_f4_fortran.npy");
        assertFails(FileFormatException.class, fortran, () -> Npy.read(fortran), "fortran_order is True");
    }

    @Test
    void writerMatchesNumpySaveByteForByte() throws IOException {
        Path numpyFile = TorchFixtureTest.resource("numpy_f4_v1.npy");
        Npy.Array a = Npy.read(numpyFile);
        Path ours = dir.resolve("ours.npy");
        Npy.write(ours, a.values(), a.shape());
        assertArrayEquals(Files.readAllBytes(numpyFile), Files.readAllBytes(ours));
    }

    @Test
    void roundTripsOddShapes() throws IOException {
        SplittableRandom r = IoTestSupport.random("npy");
        for (long[] shape : new long[][] {{}, {5}, {7, 3}, {2, 3, 5}, {0, 4}, {1, 1, 1, 1}}) {
            int n = (int) Arrays.stream(shape).reduce(1, (x, y) -> x * y);
            float[] v = IoTestSupport.gaussian(r, n);
            Path f = dir.resolve("a" + shape.length + "_" + n + ".npy");
            Npy.write(f, v, shape);
            Npy.Array back = Npy.read(f);
            assertArrayEquals(shape, back.shape(), Arrays.toString(shape));
            assertArrayEquals(v, back.values(), IoTestSupport.seedOf("npy"));
            byte[] bytes = Files.readAllBytes(f);
            int headerLen = (bytes[8] & 0xFF) | (bytes[9] & 0xFF) << 8;
            assertEquals(0, (10 + headerLen) % 64, "data aligned to 64 bytes (numpy ARRAY_ALIGN)");
            assertEquals('\n', bytes[10 + headerLen - 1]);
        }
        assertThrows(IllegalArgumentException.class, () -> Npy.write(dir.resolve("x.npy"), new float[3], 2, 2));
    }

    @Test
    void int32ArraysRoundTrip() throws IOException {
        int[] v = {0, 1, -7, 1 << 24, Integer.MIN_VALUE + 1};
        Path f = dir.resolve("labels.npy");
        Npy.writeInt32(f, v, 5);
        byte[] bytes = Files.readAllBytes(f);
        int headerLen = (bytes[8] & 0xFF) | (bytes[9] & 0xFF) << 8;
        String header = new String(bytes, 10, headerLen, java.nio.charset.StandardCharsets.ISO_8859_1);
        assertTrue(header.startsWith("{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }"), header);
        java.nio.ByteBuffer data = java.nio.ByteBuffer.wrap(bytes, 10 + headerLen, 20)
                .order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int x : v) {
            assertEquals(x, data.getInt());
        }
        Npy.Array back = Npy.read(f);
        assertEquals("<i4", back.descr());
        assertArrayEquals(new float[] {0, 1, -7, 1 << 24, (float) (Integer.MIN_VALUE + 1)}, back.values());
        assertThrows(IllegalArgumentException.class, () -> Npy.writeInt32(dir.resolve("y.npy"), new int[3], 2));
    }

    @Test
    void loadGivesSamplesAlongTheFirstDim() throws IOException {
        Path f = dir.resolve("v.npy");
        Npy.write(f, new float[] {1, 2, 3, 4, 5, 6}, 3, 2);
        Dataset d = Npy.load(f);
        assertEquals(3, d.size());
        assertArrayEquals(new long[] {2}, d.sampleShape());
        assertArrayEquals(new float[] {5, 6}, d.sample(2));
        Path one = dir.resolve("one.npy");
        Npy.write(one, new float[] {7, 8}, 2);
        assertArrayEquals(new long[] {1}, Npy.load(one).sampleShape());
    }

    /** int64, NumPy's and PyTorch's default integer (found by a user trial: {@code np.arange(n) % 3} was refused). */
    @Test
    void int64ArraysAreRead() throws IOException {
        long[] v = {0, 2, -5, 1L << 24, (1L << 40) + 1};
        for (String descr : new String[] {"<i8", ">i8"}) {
            ByteBuffer b = ByteBuffer.allocate(8 * v.length).order(descr.charAt(0) == '<' ? ByteOrder.LITTLE_ENDIAN
                    : ByteOrder.BIG_ENDIAN);
            for (long x : v) {
                b.putLong(x);
            }
            Path p = npy("i8" + descr.charAt(0) + ".npy", 1, "{'descr': '" + descr + "', 'fortran_order': False, "
                    + "'shape': (5,), }", b.array());
            assertArrayEquals(new float[] {0, 2, -5, 1 << 24, (float) ((1L << 40) + 1)}, Npy.read(p).values(), descr);
        }
    }

    /** {@code x.labels.npy} (and {@code x.classes.json}) beside {@code x.npy}: the labels sample --save-raw writes. */
    @Test
    void loadTakesLabelsAndNamesFromTheFilesBeside() throws IOException {
        Path f = dir.resolve("lab.npy");
        Npy.write(f, new float[] {1, 2, 3, 4, 5, 6}, 3, 2);
        Npy.writeInt32(dir.resolve("lab.labels.npy"), new int[] {2, 0, 2}, 3);
        Dataset d = Npy.load(f);
        assertTrue(d.hasLabels());
        assertArrayEquals(new int[] {2, 0, 2}, d.labels());
        assertEquals(3, d.numClasses());
        Files.writeString(dir.resolve("lab.classes.json"), "[\"a\", \"b\", \"c\", \"d\"]");
        Dataset named = Npy.load(f);
        assertEquals(java.util.List.of("a", "b", "c", "d"), named.classNames());
        assertEquals(4, named.numClasses());
        Files.writeString(dir.resolve("lab.classes.json"), "[\"a\", \"b\"]");
        assertFails(FileFormatException.class, dir.resolve("lab.labels.npy"), () -> Npy.load(f), "label 0 = 2 ",
                "2 names");
        Files.writeString(dir.resolve("lab.classes.json"), "{\"a\": 1}");
        assertFails(FileFormatException.class, dir.resolve("lab.classes.json"), () -> Npy.load(f), "list of class");
        Files.delete(dir.resolve("lab.classes.json"));
        Npy.writeInt32(dir.resolve("lab.labels.npy"), new int[] {0, 1}, 2);
        assertFails(FileFormatException.class, dir.resolve("lab.labels.npy"), () -> Npy.load(f), "2 labels", "3");
        Npy.write(dir.resolve("lab.labels.npy"), new float[] {0, 1.5f, 1}, 3);
        assertFails(FileFormatException.class, dir.resolve("lab.labels.npy"), () -> Npy.load(f), "label 1 = 1.5");
        Npy.write(dir.resolve("lab.labels.npy"), new float[] {0, -1, 1}, 3);
        assertFails(FileFormatException.class, dir.resolve("lab.labels.npy"), () -> Npy.load(f), "label 1 = -1");
        Files.delete(dir.resolve("lab.labels.npy"));
        assertFalse(Npy.load(f).hasLabels(), "without the file: unlabelled");
    }

    // ---------------------------------------------------------------- bad files

    private Path npy(String name, int major, String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.ISO_8859_1);
        ByteBuffer b = ByteBuffer.allocate(12 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', (byte) major, 0});
        if (major == 1) {
            b.putShort((short) h.length);
        } else {
            b.putInt(h.length);
        }
        b.put(h).put(data);
        Path p = dir.resolve(name);
        Files.write(p, Arrays.copyOf(b.array(), b.position()));
        return p;
    }

    private static final String OK = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";

    @Test
    void badFilesAreReportedWithTheProblem() throws IOException {
        Path missing = dir.resolve("missing.npy");
        assertThrows(NoSuchFileException.class, () -> Npy.read(missing));
        Path text = dir.resolve("text.npy");
        Files.writeString(text, "hello, world");
        assertFails(FileFormatException.class, text, () -> Npy.read(text), "does not start with \\x93NUMPY");
        Path v4 = npy("v4.npy", 4, OK, new byte[8]);
        assertFails(FileFormatException.class, v4, () -> Npy.read(v4), "version 4.0");
        Path huge = dir.resolve("huge.npy");
        Files.write(huge, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN)
                .put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0}).putInt(1 << 30).array());
        assertFails(FileFormatException.class, huge, () -> Npy.read(huge), "header length 1073741824", "10000");
        Path shortHeader = dir.resolve("short.npy");
        Files.write(shortHeader, Arrays.copyOf(Files.readAllBytes(npy("tmp.npy", 1, OK, new byte[8])), 30));
        assertFails(FileFormatException.class, shortHeader, () -> Npy.read(shortHeader), "truncated");

        Map<String, String[]> malformed = Map.of(
                "nokey.npy", new String[] {"{'descr': '<f4', 'shape': (2,), }", "expected exactly"},
                "extrakey.npy", new String[] {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': True}",
                        "expected exactly"},
                "unterminated.npy", new String[] {"{'descr': '<f4", "unterminated string"},
                "trailing.npy", new String[] {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", "after the closing"},
                "u8.npy", new String[] {"{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }", "'<u8' is not supported"},
                "struct.npy", new String[] {"{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (2,), }",
                        "structured"},
                "negdim.npy", new String[] {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", "negative"},
                "badbool.npy", new String[] {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", "unexpected value"},
                "shapestr.npy", new String[] {"{'descr': '<f4', 'fortran_order': False, 'shape': '2', }",
                        "shape must be a tuple"});
        for (Map.Entry<String, String[]> m : malformed.entrySet()) {
            Path p = npy(m.getKey(), 1, m.getValue()[0], new byte[8]);
            assertFails(FileFormatException.class, p, () -> Npy.read(p), m.getValue()[1]);
        }
        Path truncated = npy("trunc.npy", 1, OK, new byte[5]);
        assertFails(FileFormatException.class, truncated, () -> Npy.read(truncated), "truncated", "promises 8", "holds 5");
        Path extra = npy("extra.npy", 1, OK, new byte[12]);
        assertFails(FileFormatException.class, extra, () -> Npy.read(extra), "promises 8", "holds 12");
        Path giant = npy("giant.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }", new byte[8]);
        assertFails(FileFormatException.class, giant, () -> Npy.read(giant), "too large");
    }

    @Test
    void loadRejectsNonFiniteValuesAndScalars() throws IOException {
        Path nan = dir.resolve("nan.npy");
        Npy.write(nan, new float[] {1, 2, 3, Float.NaN, 5, 6}, 3, 2);
        assertFails(FileFormatException.class, nan, () -> Npy.load(nan), "element 1 of sample 1", "NaN");
        Path inf = dir.resolve("inf.npy");
        Npy.write(inf, new float[] {Float.NEGATIVE_INFINITY}, 1);
        assertFails(FileFormatException.class, inf, () -> Npy.load(inf), "-Infinity");
        Path scalar = dir.resolve("scalar.npy");
        Npy.write(scalar, new float[] {1});
        assertFails(FileFormatException.class, scalar, () -> Npy.load(scalar), "scalar");
        Path empty = dir.resolve("empty.npy");
        Npy.write(empty, new float[0], 0, 3);
        assertFails(FileFormatException.class, empty, () -> Npy.load(empty), "no samples");
    }
}
