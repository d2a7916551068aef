package org.diffusion4j.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.zip.GZIPOutputStream;

import static org.diffusion4j.io.IoTestSupport.assertFails;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** IDX (MNIST format): the layout byte by byte, raw and gzip, the [-1, 1] mapping, and every kind of bad file. */
class IdxTest {

    @TempDir
    Path dir;

    /** An MNIST-style file laid out by hand: magic 0x00000803, dims 2 x 2 x 3, twelve pixels. */
    static byte[] handMadeImages() {
        ByteBuffer b = ByteBuffer.allocate(16 + 12); // big-endian by default
        b.putInt(0x00000803).putInt(2).putInt(2).putInt(3);
        for (int i = 0; i < 12; i++) {
            b.put((byte) (i * 23));
        }
        return b.array();
    }

    static byte[] labels(int... v) {
        ByteBuffer b = ByteBuffer.allocate(8 + v.length);
        b.putInt(0x00000801).putInt(v.length);
        for (int x : v) {
            b.put((byte) x);
        }
        return b.array();
    }

    static byte[] gzip(byte[] raw) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream g = new GZIPOutputStream(out)) {
            g.write(raw);
        }
        return out.toByteArray();
    }

    private Path file(String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    @Test
    void readsTheMnistLayoutRawAndGzipped() throws IOException {
        for (boolean gz : new boolean[] {false, true}) {
            // compression is found by the magic bytes, not the name
            Path img = file("images" + gz, gz ? gzip(handMadeImages()) : handMadeImages());
            Path lab = file("labels" + gz, gz ? gzip(labels(3, 9)) : labels(3, 9));
            Idx.Array a = Idx.readImages(img);
            assertEquals(Idx.Type.U8, a.type());
            assertArrayEquals(new int[] {2, 2, 3}, a.dims());
            assertEquals(46, Byte.toUnsignedInt(a.data()[2]));
            Dataset d = Idx.load(img, lab, List.of());
            assertArrayEquals(new long[] {1, 2, 3}, d.sampleShape());
            assertEquals(2, d.size());
            assertArrayEquals(new int[] {3, 9}, d.labels());
            assertEquals(10, d.numClasses());
            float[] s1 = d.sample(1);
            for (int i = 0; i < 6; i++) {
                int v = (6 + i) * 23;
                assertEquals((float) (v / 127.5 - 1), s1[i]);
            }
        }
    }

    @Test
    void pixelMappingHitsBothEndsExactly() {
        assertEquals(-1f, Idx.toUnit(0));
        assertEquals(1f, Idx.toUnit(255));
        for (int v = 0; v < 256; v++) {
            double exact = v / 127.5 - 1;
            assertEquals((float) exact, Idx.toUnit(v));
        }
    }

    @Test
    void writeRoundTripsEveryTypeRawAndGzip() throws IOException {
        SplittableRandom r = IoTestSupport.random("idx");
        byte[] px = new byte[5 * 7 * 3];
        r.nextBytes(px);
        float[] f = IoTestSupport.gaussian(r, 11);
        for (String name : new String[] {"a-idx3-ubyte", "a-idx3-ubyte.gz"}) {
            Idx.Array u8 = Idx.Array.ofU8(px, 5, 7, 3);
            Path p = dir.resolve(name);
            Idx.write(p, u8);
            assertEquals(u8, Idx.read(p));
            assertEquals(name.endsWith(".gz"), (Files.readAllBytes(p)[0] & 0xFF) == 0x1f);
            Idx.Array f32 = Idx.Array.ofF32(f, 11);
            Idx.write(p, f32);
            assertArrayEquals(f, Idx.read(p).toFloatArray(), IoTestSupport.seedOf("idx"));
        }
        Path hand = dir.resolve("hand");
        Idx.write(hand, Idx.Array.ofU8(Arrays.copyOfRange(handMadeImages(), 16, 28), 2, 2, 3));
        assertArrayEquals(handMadeImages(), Files.readAllBytes(hand), "writer lays out the bytes as MNIST does");
    }

    // ---------------------------------------------------------------- bad files

    @Test
    void missingEmptyAndForeignFiles() throws IOException {
        assertThrows(NoSuchFileException.class, () -> Idx.read(dir.resolve("none")));
        Path empty = file("empty", new byte[0]);
        assertFails(FileFormatException.class, empty, () -> Idx.read(empty), "too short");
        Path png = file("fake", new byte[] {(byte) 0x89, 'P', 'N', 'G', 13, 10, 26, 10});
        assertFails(FileFormatException.class, png, () -> Idx.read(png), "not an IDX file", "0x89504E47");
        Path type = file("type", new byte[] {0, 0, 0x0A, 1, 0, 0, 0, 1, 0});
        assertFails(FileFormatException.class, type, () -> Idx.read(type), "unknown IDX element type 0x0A");
        Path rank0 = file("rank0", new byte[] {0, 0, 8, 0});
        assertFails(FileFormatException.class, rank0, () -> Idx.read(rank0), "declares 0 dims");
        Path hdr = file("hdr", Arrays.copyOf(handMadeImages(), 10));
        assertFails(FileFormatException.class, hdr, () -> Idx.read(hdr), "truncated header", "3 dims need 12 bytes");
    }

    @Test
    void truncatedAndOverlongData() throws IOException {
        byte[] full = handMadeImages();
        Path cut = file("cut", Arrays.copyOf(full, full.length - 5));
        assertFails(FileFormatException.class, cut, () -> Idx.read(cut), "truncated", "promises 12", "holds 7");
        Path cutGz = file("cut.gz", gzip(Arrays.copyOf(full, full.length - 5)));
        assertFails(FileFormatException.class, cutGz, () -> Idx.read(cutGz), "truncated", "after decompression", "holds 7");
        Path longer = file("long", Arrays.copyOf(full, full.length + 3));
        assertFails(FileFormatException.class, longer, () -> Idx.read(longer), "promises 12", "holds 15");
        Path longerGz = file("long.gz", gzip(Arrays.copyOf(full, full.length + 3)));
        assertFails(FileFormatException.class, longerGz, () -> Idx.read(longerGz), "continue past the 12 bytes");
    }

    @Test
    void corruptAndCutGzipStreams() throws IOException {
        byte[] big = new byte[16 + 4000];
        ByteBuffer.wrap(big).putInt(0x00000803).putInt(10).putInt(20).putInt(20);
        byte[] gz = gzip(big);
        Path cut = file("cutstream.gz", Arrays.copyOf(gz, gz.length / 2));
        assertFails(FileFormatException.class, cut, () -> Idx.read(cut), "corrupt or truncated gzip");
        byte[] bad = gz.clone();
        bad[bad.length - 6] ^= 0x55; // inside the CRC-32 trailer
        Path crc = file("crc.gz", bad);
        assertFails(FileFormatException.class, crc, () -> Idx.read(crc), "corrupt or truncated gzip");
        byte[] header = gz.clone();
        header[10] = (byte) 0xFF; // first deflate block header: BTYPE 11 is reserved (RFC 1951, 3.2.3)
        Path block = file("block.gz", header);
        assertFails(FileFormatException.class, block, () -> Idx.read(block), "corrupt or truncated gzip");
        // found by an adversarial trial: the JDK's GZIPInputStream drops bytes after the last member silently
        for (byte[] tail : new byte[][] {{9, 9, 9}, {0}, new byte[40], {0x1f}}) {
            byte[] junk = Arrays.copyOf(gz, gz.length + tail.length);
            System.arraycopy(tail, 0, junk, gz.length, tail.length);
            Path j = file("junk" + tail.length + ".gz", junk);
            assertFails(FileFormatException.class, j, () -> Idx.read(j), "corrupt or truncated gzip");
        }
        Path tailJunk = file("junk.gz", concat(gz, new byte[] {7, 7}));
        FileFormatException e = assertThrows(FileFormatException.class, () -> Idx.read(tailJunk));
        assertTrue(e.getMessage().contains("trailing garbage"), e.getMessage());
        // members concatenated (gzip a b > c) are one stream, as RFC 1952 sec. 2.2 says
        Path members = file("members.gz", concat(gzip(Arrays.copyOf(big, 1000)),
                gzip(Arrays.copyOfRange(big, 1000, big.length))));
        assertArrayEquals(Arrays.copyOfRange(big, 16, big.length), Idx.read(members).data());
        byte[] named = gzipNamed(big);                                // FNAME and FCOMMENT fields are skipped
        assertArrayEquals(Arrays.copyOfRange(big, 16, big.length), Idx.read(file("named.gz", named)).data());
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    /** {@link #gzip} with the FNAME and FCOMMENT header fields set (RFC 1952, 2.3.1), as gzip(1) writes names. */
    private static byte[] gzipNamed(byte[] raw) throws IOException {
        byte[] plain = gzip(raw);
        byte[] extra = "x.idx\0a comment\0".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
        byte[] out = new byte[plain.length + extra.length];
        System.arraycopy(plain, 0, out, 0, 10);
        out[3] = (byte) (8 | 16);
        System.arraycopy(extra, 0, out, 10, extra.length);
        System.arraycopy(plain, 10, out, 10 + extra.length, plain.length - 10);
        return out;
    }

    @Test
    void hugeDimsAreRefusedBeforeAnyAllocation() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(16).putInt(0x00000803).putInt(65536).putInt(65536).putInt(65536);
        Path raw = file("huge", b.array());
        assertFails(FileFormatException.class, raw, () -> Idx.read(raw), "too large to load");
        Path gz = file("huge.gz", gzip(b.array()));
        assertFails(FileFormatException.class, gz, () -> Idx.read(gz), "too large to load");
        ByteBuffer u = ByteBuffer.allocate(12).putInt(0x00000802).putInt(-1).putInt(1);
        Path unsigned = file("unsigned", u.array());
        assertFails(FileFormatException.class, unsigned, () -> Idx.read(unsigned), "4294967295", "too large");
        // a gzip bomb claiming 1.9 GB but holding a few bytes only costs what it holds
        ByteBuffer bomb = ByteBuffer.allocate(20).putInt(0x00000801).putInt(1_900_000_000).putInt(0);
        Path b2 = file("bomb.gz", gzip(bomb.array()));
        assertFails(FileFormatException.class, b2, () -> Idx.read(b2), "truncated", "promises 1900000000", "holds 12");
    }

    @Test
    void wrongKindsAndMismatchedCounts() throws IOException {
        Path img = file("img", handMadeImages());
        Path lab = file("lab", labels(1, 2, 3));
        assertFails(FileFormatException.class, lab, () -> Idx.readImages(lab), "expected MNIST-style images", "[3]");
        assertFails(FileFormatException.class, img, () -> Idx.readLabels(img), "expected MNIST-style labels", "[2, 2, 3]");
        FileFormatException e = assertFails(FileFormatException.class, lab, () -> Idx.load(img, lab, List.of()),
                "holds 3 labels", "holds 2 images");
        assertEquals(lab, e.file());
        assertEquals(true, e.getMessage().contains(img.toString()), "names the image file too");
        Path lab2 = file("lab2", labels(1, 12));
        assertFails(FileFormatException.class, lab2, () -> Idx.load(img, lab2, Datasets.FASHION_MNIST_CLASSES),
                "label 12", "10 class names");
    }
}
