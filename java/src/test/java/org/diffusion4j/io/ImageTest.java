package org.diffusion4j.io;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.diffusion4j.io.IoTestSupport.assertFails;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Resampling against independent oracles, image folders (layout, values, errors) and PNG grids. */
class ImageTest {

    @TempDir
    Path dir;

    // ---------------------------------------------------------------- resampling

    /**
     * Area-average oracle along one axis, independent of the overlap arithmetic: repeat every input sample
     * {@code out} times (length {@code in·out}), then average consecutive runs of {@code in}.
     */
    private static double[] areaOracle(double[] src, int out) {
        int in = src.length;
        double[] fine = new double[in * out];
        for (int i = 0; i < fine.length; i++) {
            fine[i] = src[i / out];
        }
        double[] res = new double[out];
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int k = 0; k < in; k++) {
                s += fine[o * in + k];
            }
            res[o] = s / in;
        }
        return res;
    }

    @Test
    void areaDownscaleMatchesTheSupersampledOracle() {
        SplittableRandom r = IoTestSupport.random("area");
        int[][] sizes = {{4, 2}, {7, 3}, {28, 28}, {30, 28}, {5, 1}, {64, 17}, {9, 8}};
        for (int[] hw : sizes) {
            int h = hw[0];
            int w = hw[0] + 3;
            int oh = hw[1];
            int ow = Math.max(1, oh - 1);
            double[] src = r.doubles((long) h * w, 0, 255).toArray();
            double[] got = ImageResize.resize(src, h, w, oh, ow);
            // oracle: rows, then columns, each by supersampling
            double[] tmp = new double[h * ow];
            for (int y = 0; y < h; y++) {
                double[] row = areaOracle(Arrays.copyOfRange(src, y * w, (y + 1) * w), ow);
                System.arraycopy(row, 0, tmp, y * ow, ow);
            }
            for (int x = 0; x < ow; x++) {
                double[] col = new double[h];
                for (int y = 0; y < h; y++) {
                    col[y] = tmp[y * ow + x];
                }
                double[] res = areaOracle(col, oh);
                for (int y = 0; y < oh; y++) {
                    assertEquals(res[y], got[y * ow + x], 1e-9, h + "x" + w + " -> " + oh + "x" + ow + "; "
                            + IoTestSupport.seedOf("area"));
                }
            }
        }
    }

    @Test
    void bilinearUpscaleUsesHalfPixelCentres() {
        // 1 x 2 -> 1 x 4: sample positions -0.25, 0.25, 0.75, 1.25 (clamped)
        double[] got = ImageResize.resize(new double[] {10, 30}, 1, 2, 1, 4);
        assertArrayEquals(new double[] {10, 15, 25, 30}, got, 1e-12);
        // 3 -> 5 at 0.1, 0.7, 1.3, 1.9, 2.5 - 0.5 offsets: positions (o + 0.5) * 0.6 - 0.5
        double[] src = {0, 100, 40};
        double[] up = ImageResize.resize(src, 3, 1, 5, 1);
        for (int o = 0; o < 5; o++) {
            double c = Math.clamp((o + 0.5) * 3 / 5.0 - 0.5, 0, 2);
            int i0 = (int) Math.floor(c);
            int i1 = Math.min(2, i0 + 1);
            double f = c - i0;
            assertEquals(src[i0] * (1 - f) + src[i1] * f, up[o], 1e-12, "o = " + o);
        }
    }

    @Test
    void constantsStayConstantAndCropIsCentred() {
        for (int[] c : new int[][] {{5, 3}, {3, 5}, {7, 7}, {1, 9}, {9, 1}}) {
            double[] src = new double[c[0] * c[0]];
            Arrays.fill(src, 77.25);
            for (double v : ImageResize.resize(src, c[0], c[0], c[1], c[1])) {
                assertEquals(77.25, v, 1e-9);
            }
        }
        assertArrayEquals(new int[] {0, 1, 4}, ImageResize.centreSquare(4, 6));
        assertArrayEquals(new int[] {1, 0, 5}, ImageResize.centreSquare(8, 5));
        assertArrayEquals(new int[] {0, 0, 3}, ImageResize.centreSquare(3, 3));
    }

    // ---------------------------------------------------------------- image folders

    private static BufferedImage grey(int w, int h, int... px) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_BYTE_GRAY);
        img.getRaster().setPixels(0, 0, w, h, px);
        return img;
    }

    /** A grey image of value 9 everywhere. */
    private static BufferedImage flat(int w, int h) {
        int[] px = new int[w * h];
        Arrays.fill(px, 9);
        return grey(w, h, px);
    }

    private static BufferedImage solid(int w, int h, int rgb) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                img.setRGB(x, y, rgb);
            }
        }
        return img;
    }

    private static Path png(Path file, BufferedImage img) throws IOException {
        Files.createDirectories(file.getParent());
        assertTrue(ImageIO.write(img, "png", file.toFile()));
        return file;
    }

    @Test
    void classFoldersGiveSortedLabelsAndExactPixels() throws IOException {
        Path root = dir.resolve("data");
        // "bird" < "cat" alphabetically; file order within a class is by name
        png(root.resolve("cat/b.png"), grey(2, 2, 0, 255, 255, 0));      // mean 127.5 -> 0.0
        png(root.resolve("cat/a.png"), grey(2, 2, 51, 51, 51, 51));      // 51 -> 51/127.5 - 1 = -0.6
        png(root.resolve("bird/x.png"), solid(3, 3, 0xFF0000));           // pure red
        Files.writeString(root.resolve("cat/notes.txt"), "ignored");
        Files.writeString(root.resolve(".hidden"), "ignored");
        Dataset d = ImageFolder.load(root, 1, 1);
        assertEquals(List.of("bird", "cat"), d.classNames());
        assertArrayEquals(new int[] {0, 1, 1}, d.labels());
        assertArrayEquals(new long[] {1, 1, 1}, d.sampleShape());
        assertEquals((float) (0.299 * 255 / 127.5 - 1), d.sample(0)[0], 1e-6, "luma of red (BT.601)");
        assertEquals((float) (51 / 127.5 - 1), d.sample(1)[0], 1e-6);
        assertEquals(0f, d.sample(2)[0], 1e-6);

        Dataset rgb = ImageFolder.load(root, 2, 3);
        assertArrayEquals(new long[] {3, 2, 2}, rgb.sampleShape());
        float[] red = rgb.sample(0);
        for (int i = 0; i < 4; i++) {
            assertEquals(1f, red[i], 1e-6);         // R plane
            assertEquals(-1f, red[4 + i], 1e-6);    // G plane
            assertEquals(-1f, red[8 + i], 1e-6);    // B plane
        }
        float[] greyAsRgb = rgb.sample(1);
        for (int i = 0; i < 12; i++) {
            assertEquals((float) (51 / 127.5 - 1), greyAsRgb[i], 1e-6);
        }

        // auto: one red image makes the folder RGB (equal to channels 3); a folder of grey images stays grey
        Dataset auto = ImageFolder.load(root, 2, ImageFolder.AUTO_CHANNELS);
        assertArrayEquals(new long[] {3, 2, 2}, auto.sampleShape());
        assertArrayEquals(rgb.toArray(), auto.toArray());
        Path greyRoot = dir.resolve("grey");
        png(greyRoot.resolve("cat/b.png"), grey(2, 2, 0, 255, 255, 0));
        png(greyRoot.resolve("cat/a.png"), solid(2, 2, 0x333333));          // an RGB image whose pixels are grey
        Dataset greyAuto = ImageFolder.load(greyRoot, 2, ImageFolder.AUTO_CHANNELS);
        assertArrayEquals(new long[] {1, 2, 2}, greyAuto.sampleShape());
        assertArrayEquals(ImageFolder.load(greyRoot, 2, 1).toArray(), greyAuto.toArray());
    }

    @Test
    void wideImagesAreCentreCroppedThenResized() throws IOException {
        // 6 x 2 grey: columns 2..3 form the centred 2 x 2 square
        BufferedImage img = grey(6, 2, 0, 0, 100, 200, 0, 0, 0, 0, 50, 250, 0, 0);
        Path f = png(dir.resolve("flat/wide.png"), img);
        float[] v = ImageFolder.loadImage(f, 2, 1);
        assertArrayEquals(new float[] {(float) (100 / 127.5 - 1), (float) (200 / 127.5 - 1),
            (float) (50 / 127.5 - 1), (float) (250 / 127.5 - 1)}, v, 1e-6f);
        Dataset d = ImageFolder.load(dir.resolve("flat"), 1, 1);
        assertEquals(false, d.hasLabels());
        assertEquals((float) (150 / 127.5 - 1), d.sample(0)[0], 1e-6);
        // 16-bit grey PNG: scaled by 255 / 65535
        BufferedImage g16 = new BufferedImage(1, 1, BufferedImage.TYPE_USHORT_GRAY);
        g16.getRaster().setSample(0, 0, 0, 65535);
        assertEquals(1f, ImageFolder.loadImage(png(dir.resolve("g16/a.png"), g16), 1, 1)[0], 1e-6);
    }

    @Test
    void jpegImagesLoad() throws IOException {
        Path f = dir.resolve("j/a.jpg");
        Files.createDirectories(f.getParent());
        assertTrue(ImageIO.write(solid(8, 8, 0x808080), "jpg", f.toFile()));
        float[] v = ImageFolder.loadImage(f, 4, 3);
        for (float x : v) {
            assertEquals(128 / 127.5 - 1, x, 3 / 127.5, "JPEG of mid grey"); // lossy: a few levels
        }
    }

    /** PNGs carry EXIF in an "eXIf" chunk, which PIL's exif_transpose applies too (tools/make_image_fixtures.py). */
    @Test
    void pngExifOrientationIsAppliedAsPilDoes() throws IOException {
        float[] pil = Npy.read(TorchFixtureTest.resource("images/exif_png_pil.npy")).values();
        int[] orientations = {3, 6, 8};
        for (int k = 0; k < orientations.length; k++) {
            Path png = TorchFixtureTest.resource("images/exif_o" + orientations[k] + ".png");
            assertEquals(orientations[k], Exif.orientation(png));
            float[] v = ImageFolder.loadImage(png, 16, 3);
            for (int c = 0; c < 3; c++) {
                for (int y = 0; y < 16; y++) {
                    for (int x = 0; x < 16; x++) {
                        double want = pil[((k * 16 + y) * 16 + x) * 3 + c] / 127.5 - 1;
                        assertEquals(want, v[(c * 16 + y) * 16 + x], 1e-6, "orientation " + orientations[k]
                                + ", channel " + c + ", row " + y + ", column " + x);
                    }
                }
            }
        }
        // chunks larger than the read buffer before eXIf (an ICC profile, long text) are skipped, not given up on
        byte[] png = Files.readAllBytes(TorchFixtureTest.resource("images/exif_o6.png"));
        byte[] text = new byte[12 + 3000];
        text[2] = (byte) (3000 >> 8);
        text[3] = (byte) (3000 & 0xff);
        System.arraycopy("tEXt".getBytes(java.nio.charset.StandardCharsets.US_ASCII), 0, text, 4, 4);
        byte[] padded = new byte[png.length + text.length];
        System.arraycopy(png, 0, padded, 0, 33);                    // signature and IHDR
        System.arraycopy(text, 0, padded, 33, text.length);
        System.arraycopy(png, 33, padded, 33 + text.length, png.length - 33);
        Path big = java.nio.file.Files.createTempFile("d4j-exif", ".png");
        try {
            Files.write(big, padded);
            assertEquals(6, Exif.orientation(big));
        } finally {
            Files.delete(big);
        }
        // a PNG without eXIf, and a truncated one, count as orientation 1
        byte[] six = Files.readAllBytes(TorchFixtureTest.resource("images/exif_o6.png"));
        assertEquals(6, Exif.orientation(six));
        assertEquals(1, Exif.orientation(java.util.Arrays.copyOf(six, 40)));
        assertEquals(1, Exif.orientation(java.util.Arrays.copyOf(six, 8)));
    }

    /** PIL's reading of the fixtures of tools/make_image_fixtures.py, uint8 {@code [8, 16, 16, 3]}. */
    @Test
    void exifOrientationIsAppliedAsPilDoes() throws IOException {
        float[] pil = Npy.read(TorchFixtureTest.resource("images/exif_transpose_pil.npy")).values();
        for (int o = 1; o <= 8; o++) {
            float[] v = ImageFolder.loadImage(TorchFixtureTest.resource("images/exif_o" + o + ".jpg"), 16, 3);
            for (int c = 0; c < 3; c++) {
                for (int y = 0; y < 16; y++) {
                    for (int x = 0; x < 16; x++) {
                        double want = pil[(((o - 1) * 16 + y) * 16 + x) * 3 + c] / 127.5 - 1;
                        assertEquals(want, v[(c * 16 + y) * 16 + x], 1e-5,
                                "orientation " + o + ", channel " + c + ", row " + y + ", column " + x);
                    }
                }
            }
        }
        // the red block stored top-left is displayed top-right under orientation 6 (turn 90 degrees clockwise)
        float[] six = ImageFolder.loadImage(TorchFixtureTest.resource("images/exif_o6.jpg"), 16, 3);
        assertEquals(1f, six[15], 0.02, "red at the top-right (red channel)");
        assertEquals(-1f, six[256 + 15], 0.02, "red at the top-right (green channel)");
        assertEquals(1f, six[256], 0.02, "white at the top-left (green channel)");
        // a few bytes that are no JPEG, a JPEG without EXIF and broken EXIF blocks all count as orientation 1
        assertEquals(1, Exif.orientation(new byte[] {1, 2, 3}));
        byte[] jpeg = Files.readAllBytes(TorchFixtureTest.resource("images/exif_o6.jpg"));
        assertEquals(6, Exif.orientation(jpeg));
        // big-endian TIFF, the tag as LONG (PIL reads it), after 300 KB of APP2 segments (an ICC profile)
        java.io.ByteArrayOutputStream j = new java.io.ByteArrayOutputStream();
        j.write(new byte[] {(byte) 0xFF, (byte) 0xD8});
        for (int i = 0; i < 5; i++) {
            j.write(new byte[] {(byte) 0xFF, (byte) 0xE2, (byte) 0xEA, 0x62});           // 60002 bytes long
            j.write(new byte[60000]);
        }
        byte[] tiff = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 4, 0, 0, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0};
        int len = 2 + 6 + tiff.length;
        j.write(new byte[] {(byte) 0xFF, (byte) 0xE1, (byte) (len >> 8), (byte) len, 'E', 'x', 'i', 'f', 0, 0});
        j.write(tiff);
        j.write(jpeg, 2, jpeg.length - 2);
        assertEquals(6, Exif.orientation(j.toByteArray()));
        for (int cut = 0; cut < 200; cut++) {
            int got = Exif.orientation(Arrays.copyOf(jpeg, cut));    // truncated anywhere: never throws
            assertTrue(got == 1 || got == 6, "cut at " + cut + ": " + got);
        }
    }

    @Test
    void cmykJpegsGivePilsColours() throws IOException {
        // PIL's convert("RGB") of the fixture: (128, 128, 128) in columns 0-3, (220, 30, 30) in 4-7
        float[] v = ImageFolder.loadImage(TorchFixtureTest.resource("images/cmyk.jpg"), 8, 3);
        int[][] want = {{128, 128, 128}, {220, 30, 30}};
        for (int y = 0; y < 8; y++) {
            for (int x = 0; x < 8; x++) {
                for (int c = 0; c < 3; c++) {
                    assertEquals(want[x / 4][c], (v[(c * 8 + y) * 8 + x] + 1) * 127.5, 1.0,
                            "row " + y + ", column " + x + ", channel " + c);
                }
            }
        }
    }

    @Test
    void notesTellWhatWasSkippedEnlargedAndWhyRgb() throws IOException {
        Path root = dir.resolve("notes");
        png(root.resolve("a/1.png"), flat(8, 8));
        png(root.resolve("a/2.png"), flat(3, 5));
        BufferedImage c = solid(8, 8, 0x808080);
        c.setRGB(2, 2, 0x818080);                                   // one pixel of colour
        png(root.resolve("b/colour.png"), c);
        png(root.resolve("b/deeper/x.png"), flat(8, 8));
        Files.writeString(root.resolve("b/notes.txt"), "x");
        Files.writeString(root.resolve("b/anim.gif"), "x");
        Files.writeString(root.resolve("a/.DS_Store"), "x");
        png(root.resolve("__MACOSX/a/._1.png"), flat(8, 8));
        List<String> notes = new java.util.ArrayList<>();
        Dataset d = ImageFolder.load(root, 8, ImageFolder.AUTO_CHANNELS, notes::add);
        assertEquals(List.of("a", "b"), d.classNames(), "__MACOSX is no class");
        assertEquals(3, d.sampleShape()[0]);
        String all = String.join("\n", notes);
        assertTrue(all.contains("skipped 2 files that are not PNG or JPEG (1 .gif, 1 .txt); convert images to PNG"),
                all);
        assertTrue(all.contains("skipped 2 folders (__MACOSX, b/deeper)"), all);
        assertTrue(all.contains("skipped 1 hidden entry"), all);
        assertTrue(all.contains("1 image is smaller than 8 pixels") && all.contains("2.png (3 x 5)"), all);
        assertTrue(all.contains("channels auto: RGB, since b" + java.io.File.separator + "colour.png has colour"), all);
        Files.delete(root.resolve("b/colour.png"));
        Path nestedOnly = root.resolve("b");
        assertFails(FileFormatException.class, nestedOnly, () -> ImageFolder.load(root, 8, 1),
                "contains no PNG or JPEG images", "b/deeper", "not searched");
    }

    @Test
    void badFoldersAndImagesAreReported() throws IOException {
        assertThrows(NoSuchFileException.class, () -> ImageFolder.load(dir.resolve("absent"), 8, 1));
        Path file = Files.writeString(dir.resolve("file.png"), "x");
        assertFails(FileFormatException.class, file, () -> ImageFolder.load(file, 8, 1), "not a folder");
        Path empty = Files.createDirectories(dir.resolve("empty"));
        Files.writeString(empty.resolve("readme.txt"), "no images here");
        assertFails(FileFormatException.class, empty, () -> ImageFolder.load(empty, 8, 1), "no PNG or JPEG images");
        Path root = dir.resolve("classes");
        png(root.resolve("a/1.png"), grey(1, 1, 9));
        Path emptyClass = Files.createDirectories(root.resolve("b"));
        assertFails(FileFormatException.class, emptyClass, () -> ImageFolder.load(root, 8, 1), "class folder 'b'",
                "no PNG or JPEG");
        Files.delete(emptyClass);
        png(root.resolve("stray.png"), grey(1, 1, 9));
        assertFails(FileFormatException.class, root, () -> ImageFolder.load(root, 8, 1), "both class sub-folders",
                "stray.png");
        Files.delete(root.resolve("stray.png"));

        Path corrupt = root.resolve("a/2.png");
        Files.write(corrupt, new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9});
        assertFails(FileFormatException.class, corrupt, () -> ImageFolder.load(root, 8, 1), "not a PNG or JPEG image");
        Files.writeString(corrupt, "<html>not an image</html>");
        assertFails(FileFormatException.class, corrupt, () -> ImageFolder.load(root, 8, 1), "starts with text");
        Files.write(corrupt, new byte[0]);
        assertFails(FileFormatException.class, corrupt, () -> ImageFolder.load(root, 8, 1), "is empty (0 bytes)");
        Path second = Files.writeString(root.resolve("a/9.png"), "also text");        // every bad image named at once
        assertFails(FileFormatException.class, corrupt, () -> ImageFolder.load(root, 8, 1), "is empty (0 bytes)",
                "and 1 more image cannot be read", "9.png: is not a PNG or JPEG image");
        Files.delete(second);
        SplittableRandom r = IoTestSupport.random("png");
        BufferedImage noise = new BufferedImage(64, 64, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 64; y++) {
            for (int x = 0; x < 64; x++) {
                noise.setRGB(x, y, r.nextInt(1 << 24));
            }
        }
        Path whole = png(dir.resolve("t/whole.png"), noise);
        byte[] bytes = Files.readAllBytes(whole);
        Files.write(corrupt, Arrays.copyOf(bytes, bytes.length / 2));
        assertFails(FileFormatException.class, corrupt, () -> ImageFolder.load(root, 8, 1), "damaged or truncated", "png");
        Path jpg = dir.resolve("t/whole.jpg");
        assertTrue(ImageIO.write(noise, "jpg", jpg.toFile()));
        byte[] jb = Files.readAllBytes(jpg);
        Path cutJpg = root.resolve("a/3.jpg");
        Files.delete(corrupt);
        Files.write(cutJpg, Arrays.copyOf(jb, jb.length / 2));
        assertFails(FileFormatException.class, cutJpg, () -> ImageFolder.load(root, 8, 1), "damaged or truncated");
        Files.delete(cutJpg);
        // a PNG whose header declares 20000 x 20000 pixels (a decompression bomb): refused from the header alone
        Path bomb = root.resolve("a/bomb.png");
        Files.write(bomb, pngHeaderOnly(20_000, 20_000));
        assertFails(FileFormatException.class, bomb, () -> ImageFolder.load(root, 8, 1), "20000 x 20000",
                "more than the " + ImageFolder.MAX_PIXELS);
        // within the pixel limit, but one row of 2^26 16-bit RGBA pixels decodes to 512 MiB and cannot be
        // subsampled (its shorter side is 1): refused from the header too
        Files.write(bomb, pngHeaderOnly(67_108_864, 1, 16, 6));
        assertFails(FileFormatException.class, bomb, () -> ImageFolder.load(root, 8, 1), "67108864 x 1",
                "decode to", "more than the " + ImageFolder.MAX_DECODED_BYTES);
        Files.delete(bomb);
        assertThrows(IllegalArgumentException.class, () -> ImageFolder.load(root, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> ImageFolder.load(root, 8, 2));
        assertThrows(IllegalArgumentException.class, () -> ImageFolder.load(root, 8, -1));
    }

    /**
     * An image of more than {@link ImageFolder#FULL_DECODE_PIXELS} pixels (6000 x 3000, 18 Mpx) is decoded at every
     * second pixel and row and still averages like the image; a smaller one is decoded whole.
     */
    @Test
    void largeImagesAreSubsampledWhileDecoding() throws IOException {
        int w = 6000;
        int h = 3000;
        BufferedImage g = new BufferedImage(w, h, BufferedImage.TYPE_BYTE_GRAY);
        byte[] px = ((java.awt.image.DataBufferByte) g.getRaster().getDataBuffer()).getData();
        for (int y = 0; y < h; y++) {
            java.util.Arrays.fill(px, y * w, (y + 1) * w, (byte) Math.round(255.0 * y / (h - 1)));
        }
        assertTrue((long) w * h > ImageFolder.FULL_DECODE_PIXELS);
        Path file = png(dir.resolve("big/gradient.png"), g);
        float[] out = ImageFolder.loadImage(file, 8, 1);       // centre square: columns 1500..4499, all rows
        for (int i = 0; i < 8; i++) {
            double band = 255.0 * (375 * i + 187) / (h - 1) / 127.5 - 1;   // mean of rows 375i .. 375i + 374
            for (int x = 0; x < 8; x++) {
                assertEquals(band, out[i * 8 + x], 0.01, "row " + i + " column " + x);
            }
        }
    }

    /** The 8-byte PNG signature, an IHDR chunk (8-bit greyscale, {@code w x h}) and IEND: no pixel data at all. */
    private static byte[] pngHeaderOnly(int w, int h) {
        return pngHeaderOnly(w, h, 8, 0);
    }

    /** Like {@link #pngHeaderOnly(int, int)} with the IHDR's bit depth and colour type (6: RGBA). */
    private static byte[] pngHeaderOnly(int w, int h, int bitDepth, int colourType) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(8 + 25 + 12);
        b.put(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'});
        byte[] ihdr = java.nio.ByteBuffer.allocate(17).put(new byte[] {'I', 'H', 'D', 'R'}).putInt(w).putInt(h)
                .put(new byte[] {(byte) bitDepth, (byte) colourType, 0, 0, 0}).array();
        b.putInt(13).put(ihdr).putInt(crc(ihdr));
        byte[] iend = {'I', 'E', 'N', 'D'};
        b.putInt(0).put(iend).putInt(crc(iend));
        return b.array();
    }

    private static int crc(byte[] typeAndData) {
        java.util.zip.CRC32 c = new java.util.zip.CRC32();
        c.update(typeAndData);
        return (int) c.getValue();
    }

    // ---------------------------------------------------------------- grids

    @Test
    void gridLayoutAndRounding() throws IOException {
        assertEquals(0, ImageGrid.toByte(-1f));
        assertEquals(255, ImageGrid.toByte(1f));
        assertEquals(128, ImageGrid.toByte(0f));   // floor(127.5 + 0.5)
        assertEquals(255, ImageGrid.toByte(3f));
        assertEquals(0, ImageGrid.toByte(-7f));
        assertEquals(0, ImageGrid.toByte(Float.NaN));
        // three 2 x 2 grey images, 2 columns, padding 1: (2 * 3 + 1) x (2 * 3 + 1)
        float[] v = new float[12];
        for (int i = 0; i < 12; i++) {
            v[i] = -1f + 2f * i / 11f;
        }
        BufferedImage g = ImageGrid.render(v, new long[] {3, 1, 2, 2}, 2, 1, 1f);
        assertEquals(7, g.getWidth());
        assertEquals(7, g.getHeight());
        int[][] origin = {{1, 1}, {4, 1}, {1, 4}};
        for (int i = 0; i < 3; i++) {
            for (int y = 0; y < 2; y++) {
                for (int x = 0; x < 2; x++) {
                    assertEquals(ImageGrid.toByte(v[i * 4 + y * 2 + x]),
                            g.getRaster().getSample(origin[i][0] + x, origin[i][1] + y, 0), "image " + i);
                }
            }
        }
        assertEquals(255, g.getRaster().getSample(0, 0, 0), "padding");
        assertEquals(255, g.getRaster().getSample(5, 5, 0), "the empty fourth cell is padding");
        assertThrows(IllegalArgumentException.class, () -> ImageGrid.render(v, new long[] {3, 2, 2, 1}, 2, 1, 0f));
        assertThrows(IllegalArgumentException.class, () -> ImageGrid.render(v, new long[] {4, 1, 2, 2}, 2, 1, 0f));
        assertThrows(IllegalArgumentException.class, () -> ImageGrid.render(v, new long[] {3, 1, 2, 2}, 0, 1, 0f));
        // zoom 3: every pixel becomes a 3 x 3 square of the same value
        BufferedImage z = ImageGrid.zoom(g, 3);
        assertEquals(21, z.getWidth());
        assertEquals(21, z.getHeight());
        for (int y = 0; y < 21; y++) {
            for (int x = 0; x < 21; x++) {
                assertEquals(g.getRaster().getSample(x / 3, y / 3, 0), z.getRaster().getSample(x, y, 0), x + "," + y);
            }
        }
        assertEquals(g, ImageGrid.zoom(g, 1));
        assertThrows(IllegalArgumentException.class, () -> ImageGrid.zoom(g, 0));
        assertThrows(IllegalArgumentException.class, () -> ImageGrid.zoom(g, 65));
    }

    @Test
    void gridPngRoundTripsThroughImageIo() throws IOException {
        try (Backend cpu = new CpuBackend(1); TensorScope scope = TensorScope.open()) {
            SplittableRandom r = IoTestSupport.random("grid");
            float[] v = new float[5 * 3 * 4 * 3];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) r.nextDouble(-1.2, 1.2);
            }
            Path out = dir.resolve("grid.png");
            ImageGrid.write(out, cpu.fromArray(scope, v, 5, 3, 4, 3), 3, 2);
            BufferedImage back = ImageIO.read(out.toFile());
            assertEquals(3 * (3 + 2) + 2, back.getWidth());
            assertEquals(2 * (4 + 2) + 2, back.getHeight());
            for (int i = 0; i < 5; i++) {
                int x0 = (i % 3) * 5 + 2;
                int y0 = (i / 3) * 6 + 2;
                for (int y = 0; y < 4; y++) {
                    for (int x = 0; x < 3; x++) {
                        int rgb = back.getRGB(x0 + x, y0 + y);
                        int base = i * 36 + y * 3 + x;
                        assertEquals(ImageGrid.toByte(v[base]), (rgb >> 16) & 0xFF);
                        assertEquals(ImageGrid.toByte(v[base + 12]), (rgb >> 8) & 0xFF);
                        assertEquals(ImageGrid.toByte(v[base + 24]), rgb & 0xFF);
                    }
                }
            }
            assertEquals(0, back.getRGB(0, 0) & 0xFFFFFF, "padding is black (-1)");
            try (var listing = Files.list(dir)) {
                assertEquals(List.of(out), listing.toList(), "no temporary file left");
            }
        }
    }
}
