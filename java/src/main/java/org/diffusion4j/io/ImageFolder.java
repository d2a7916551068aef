package org.diffusion4j.io;

import javax.imageio.ImageIO;
import javax.imageio.ImageReadParam;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Loads a folder of PNG/JPEG images as a dataset {@code [N, C, R, R]} with values in {@code [-1, 1]}.
 *
 * <p>Layout: either class sub-folders ({@code root/cat/1.png, root/dog/7.jpg}; labels are the sub-folder
 * names sorted alphabetically, i.e. label {@code i} is the {@code i}-th name) or images directly in
 * {@code root} (an unlabelled set). Files are taken in name order; names ending in {@code .png},
 * {@code .jpg} or {@code .jpeg} (any case) are images; other files, hidden entries ({@code .name}), macOS's
 * {@code __MACOSX} folder and folders inside class folders are skipped (and reported to the notes of
 * {@link #load(Path, int, int, Consumer)}).
 *
 * <p>Each image is centre-cropped to a square of its shorter side (offsets rounded down), then
 * resampled to {@code R × R} (separable: area averaging when shrinking, bilinear with half-pixel centres when
 * enlarging),
 * converted to {@code C = 1} (luma {@code 0.299 R + 0.587 G + 0.114 B}, ITU-R BT.601, as PIL's
 * {@code convert("L")}) or {@code C = 3} (grey replicated), and mapped from {@code [0, 255]} to
 * {@code v / 127.5 − 1}. Grey images are read from their raster (8- or 16-bit), CMYK JPEGs as
 * {@code R = (255 − C)(255 − K)/255} (and likewise G, B: PIL's {@code convert("RGB")}, no ICC profile), other colour
 * images through {@link BufferedImage#getRGB} (sRGB); alpha is ignored (transparent pixels keep their colour). A
 * JPEG's EXIF orientation (tag 0x0112, values 2–8), or a PNG's from its {@code eXIf} chunk, is applied, as PIL's
 * {@code ImageOps.exif_transpose}: a phone photo trains the way it is displayed.
 *
 * <p>Errors name the file or folder: a missing root ({@link NoSuchFileException}), a root that is a file, no
 * images, an empty class folder, images next to class folders, and an image that cannot be decoded
 * (corrupt, truncated, or not the format its name says) — all {@link FileFormatException}.
 */
public final class ImageFolder {

    private ImageFolder() {
    }

    /** {@code channels} value of {@link #load}: RGB when any image has colour, else grey. */
    public static final int AUTO_CHANNELS = 0;

    /**
     * Loads {@code root} at resolution {@code resolution} with {@code channels} channels.
     *
     * @param resolution output side {@code R >= 1}
     * @param channels   1 (grey), 3 (RGB) or {@link #AUTO_CHANNELS} (3 when some pixel of some image has unequal
     *                   red, green and blue after resampling, else 1)
     * @throws IllegalArgumentException when {@code resolution} is outside {@code [1, MAX_RESOLUTION]} or
     *                                  {@code channels} is not 0, 1 or 3
     */
    public static Dataset load(Path root, int resolution, int channels) throws IOException {
        return load(root, resolution, channels, note -> { });
    }

    /**
     * {@link #load(Path, int, int)}, telling {@code notes} what a user may not expect: files and folders skipped,
     * which image made {@link #AUTO_CHANNELS} choose RGB, images enlarged to {@code resolution}, EXIF orientations
     * applied (one line each, without a trailing newline).
     */
    public static Dataset load(Path root, int resolution, int channels, Consumer<String> notes) throws IOException {
        Objects.requireNonNull(root, "root");
        Objects.requireNonNull(notes, "notes");
        checkResolution(resolution);
        if (channels != 1 && channels != 3 && channels != AUTO_CHANNELS) {
            throw new IllegalArgumentException("channels must be 1, 3 or 0 (auto), got " + channels);
        }
        if (!Files.exists(root)) {
            throw new NoSuchFileException(root.toString(), null, "image folder does not exist");
        }
        if (!Files.isDirectory(root)) {
            throw new FileFormatException(root, "is a file, not a folder of images");
        }
        List<Path> classDirs = new ArrayList<>();
        List<Path> rootImages = new ArrayList<>();
        Skipped skipped = new Skipped();
        for (Path p : list(root, skipped)) {
            if (Files.isDirectory(p)) {
                if (p.getFileName().toString().equals("__MACOSX")) {      // resource forks left by unzipping
                    skipped.folders.add(p.getFileName().toString());
                } else {
                    classDirs.add(p);
                }
            } else if (isImage(p)) {
                rootImages.add(p);
            } else {
                skipped.file(p);
            }
        }
        List<Path> files = new ArrayList<>();
        List<Integer> labelList = new ArrayList<>();
        List<String> names = new ArrayList<>();
        if (classDirs.isEmpty()) {
            if (rootImages.isEmpty()) {
                throw new FileFormatException(root, "contains no PNG or JPEG images and no class sub-folders");
            }
            files.addAll(rootImages);
        } else {
            if (!rootImages.isEmpty()) {
                throw new FileFormatException(root, "has both class sub-folders " + fileNames(classDirs)
                        + " and images directly inside (e.g. " + rootImages.getFirst().getFileName()
                        + "); put every image in a class folder, or use a folder without sub-folders");
            }
            for (int c = 0; c < classDirs.size(); c++) {
                Path dir = classDirs.get(c);
                List<Path> imgs = new ArrayList<>();
                List<String> nested = new ArrayList<>();
                for (Path p : list(dir, skipped)) {
                    if (Files.isDirectory(p)) {
                        nested.add(dir.getFileName() + "/" + p.getFileName());
                    } else if (isImage(p)) {
                        imgs.add(p);
                    } else {
                        skipped.file(p);
                    }
                }
                if (imgs.isEmpty()) {
                    throw new FileFormatException(dir, "class folder '" + dir.getFileName()
                            + "' contains no PNG or JPEG images" + (nested.isEmpty() ? ""
                            : " (its sub-folders " + nested + " are not searched: class folders hold the images "
                            + "themselves)"));
                }
                skipped.folders.addAll(nested);
                names.add(dir.getFileName().toString());
                for (Path f : imgs) {
                    files.add(f);
                    labelList.add(c);
                }
            }
        }
        int loadAs = channels == AUTO_CHANNELS ? 3 : channels;
        int plane = resolution * resolution;
        int per = loadAs * plane;
        float[] data = new float[Math.multiplyExact(files.size(), per)];
        Path firstColour = null;
        Stats stats = new Stats();
        List<FileFormatException> bad = new ArrayList<>();
        for (int i = 0; i < files.size(); i++) {
            float[] img;
            try {
                img = loadImage(files.get(i), resolution, loadAs, stats);
            } catch (FileFormatException e) {                  // go on: one run names every unreadable image
                bad.add(e);
                continue;
            }
            System.arraycopy(img, 0, data, i * per, per);
            for (int j = 0; firstColour == null && loadAs == 3 && j < plane; j++) {
                if (img[j] != img[plane + j] || img[j] != img[2 * plane + j]) {
                    firstColour = files.get(i);
                }
            }
        }
        if (bad.size() == 1) {
            throw bad.getFirst();
        }
        if (!bad.isEmpty()) {
            StringBuilder more = new StringBuilder();
            for (FileFormatException e : bad.subList(1, Math.min(bad.size(), 10))) {
                more.append("; ").append(root.relativize(e.file())).append(": ").append(e.problem());
            }
            throw new FileFormatException(bad.getFirst().file(), bad.getFirst().problem() + " — and " + (bad.size() - 1)
                    + " more image" + (bad.size() == 2 ? "" : "s") + " cannot be read" + more
                    + (bad.size() > 10 ? "; ..." : ""), bad.getFirst());
        }
        boolean colour = firstColour != null;
        skipped.report(notes);
        stats.report(notes, resolution);
        if (channels == AUTO_CHANNELS && colour) {
            notes.accept("channels auto: RGB, since " + root.relativize(firstColour) + " has colour (the first of the "
                    + "images that do); --channels 1 trains on grey");
        }
        int[] labels = names.isEmpty() ? null : labelList.stream().mapToInt(Integer::intValue).toArray();
        if (channels == AUTO_CHANNELS && !colour) {                      // every image grey: keep one plane
            float[] grey = new float[files.size() * plane];
            for (int i = 0; i < files.size(); i++) {
                System.arraycopy(data, i * per, grey, i * plane, plane);
            }
            return Dataset.of(grey, new long[] {1, resolution, resolution}, labels, names);
        }
        return Dataset.of(data, new long[] {loadAs, resolution, resolution}, labels, names);
    }

    /**
     * One image, centre-cropped and resampled to {@code [channels, resolution, resolution]} in {@code [-1, 1]}.
     *
     * @throws IllegalArgumentException when {@code resolution} is outside {@code [1, MAX_RESOLUTION]} or
     *                                  {@code channels} is not 1 or 3
     * @throws FileFormatException      naming the file when it cannot be decoded
     */
    public static float[] loadImage(Path file, int resolution, int channels) throws IOException {
        checkResolution(resolution);
        if (channels != 1 && channels != 3) {
            throw new IllegalArgumentException("channels must be 1 or 3, got " + channels);
        }
        return loadImage(file, resolution, channels, new Stats());
    }

    /** Largest {@code resolution}: an RGB image of that side is 3·8192² = 201 M floats per sample. */
    public static final int MAX_RESOLUTION = 8192;

    private static void checkResolution(int resolution) {
        if (resolution < 1 || resolution > MAX_RESOLUTION) {
            throw new IllegalArgumentException("resolution must be in [1, " + MAX_RESOLUTION + "], got " + resolution);
        }
    }

    private static float[] loadImage(Path file, int resolution, int channels, Stats stats) throws IOException {
        BufferedImage img = decode(file, resolution);
        int orientation = Exif.orientation(file);
        int h = img.getHeight();
        int w = img.getWidth();
        stats.image(file, w, h, orientation, resolution);
        int[] sq = ImageResize.centreSquare(h, w);
        int top = sq[0];
        int left = sq[1];
        int s = sq[2];
        double[][] planes = rgbOrGrey(img, top, left, s);
        float[] out = new float[channels * resolution * resolution];
        int plane = resolution * resolution;
        // the orientation is applied to the resampled square: rotations and mirrors commute with the centre crop and
        // the resampling (up to the crop's rounding by half a source pixel when the margins are odd)
        if (channels == 1) {
            double[] grey = planes.length == 1 ? planes[0] : luma(planes);
            write(Exif.orient(ImageResize.resize(grey, s, s, resolution, resolution), resolution, orientation), out,
                    0);
        } else {
            for (int c = 0; c < 3; c++) {
                double[] src = planes[planes.length == 1 ? 0 : c];
                write(Exif.orient(ImageResize.resize(src, s, s, resolution, resolution), resolution, orientation),
                        out, c * plane);
            }
        }
        return out;
    }

    /**
     * The most pixels an image may declare (its header is read first): 64 megapixels, about 256 MiB decoded as
     * 8-bit RGBA, far above any image a small diffusion model is trained on.
     */
    public static final long MAX_PIXELS = 1L << 26;

    /**
     * The most bytes an image may take once decoded (after the source subsampling below; from the header's pixel
     * layout, e.g. 8 bytes a pixel for 16-bit RGBA): 256 MiB.
     */
    public static final long MAX_DECODED_BYTES = 1L << 28;

    /** Images of up to this many pixels (16 megapixels, e.g. 4096 x 4096) are decoded whole. */
    public static final long FULL_DECODE_PIXELS = 1L << 24;

    /**
     * Decodes the first image of {@code file} for a target of {@code resolution} pixels a side; decoder warnings
     * (e.g. JPEG's "premature end of file", for which Java returns a partly grey image) count as errors, and so
     * does a header declaring more than {@link #MAX_PIXELS} pixels or more than {@link #MAX_DECODED_BYTES} once
     * decoded (checked before decoding). An image of more than {@link #FULL_DECODE_PIXELS} pixels, or more than
     * {@link #MAX_DECODED_BYTES} decoded, is decoded at every {@code f}-th pixel and row for the smallest {@code f}
     * that fits both limits (decimation before the area resampling: some aliasing, for images far larger than a
     * training image); smaller images are decoded whole, as they always were.
     */
    private static BufferedImage decode(Path file, int resolution) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "image file does not exist");
        }
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            if (in == null) {
                throw new FileFormatException(file, "cannot be opened as an image");
            }
            Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext()) {
                long size = Files.size(file);
                throw new FileFormatException(file, size == 0 ? "is empty (0 bytes)"
                        : "is not a PNG or JPEG image (its first bytes are no image signature" + textHint(file) + ")");
            }
            ImageReader reader = readers.next();
            List<String> warnings = new ArrayList<>();
            reader.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
            BufferedImage img;
            try {
                reader.setInput(in, true, true);
                int width = reader.getWidth(0);                                   // from the header
                int height = reader.getHeight(0);
                long pixels = (long) width * height;
                if (pixels > MAX_PIXELS) {
                    throw new FileFormatException(file, "declares " + width + " x " + height
                            + " pixels, more than the " + MAX_PIXELS + " this loader decodes (a decompression bomb or "
                            + "a photo far larger than a training image; resize it first)");
                }
                int bits = bitsPerPixel(reader);
                int f = 1;                            // every f-th pixel and row: only for images beyond the limits
                while (f < Math.min(width, height) && ((long) ceilDiv(width, f) * ceilDiv(height, f)
                        > FULL_DECODE_PIXELS || (long) ceilDiv(width, f) * ceilDiv(height, f) * bits / 8
                        > MAX_DECODED_BYTES)) {
                    f++;
                }
                long kept = (long) ceilDiv(width, f) * ceilDiv(height, f);
                long bytes = kept * bits / 8;
                if (bytes > MAX_DECODED_BYTES) {
                    throw new FileFormatException(file, "declares " + width + " x " + height + " pixels that "
                            + "decode to " + bytes + " bytes, more than the " + MAX_DECODED_BYTES + " this loader "
                            + "allows (a decompression bomb, or resize the image first)");
                }
                ImageReadParam param = reader.getDefaultReadParam();
                if (f > 1) {
                    param.setSourceSubsampling(f, f, 0, 0);
                }
                img = reader.read(0, param);
            } catch (FileFormatException e) {
                throw e;
            } catch (IOException | RuntimeException e) {
                throw new FileFormatException(file, "is damaged or truncated: cannot be decoded as "
                        + reader.getFormatName() + " (" + e.getMessage() + ")", e);
            } finally {
                reader.dispose();
            }
            if (!warnings.isEmpty()) {
                throw new FileFormatException(file, "is damaged or truncated: the " + reader.getFormatName()
                        + " decoder warns: " + warnings.getFirst());
            }
            if (img.getWidth() < 1 || img.getHeight() < 1) {
                throw new FileFormatException(file, "has no pixels");
            }
            return img;
        }
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    /** Bits a decoded pixel takes (all bands), from the reader's first image type; 64 when it cannot say. */
    private static int bitsPerPixel(ImageReader reader) {
        try {
            Iterator<javax.imageio.ImageTypeSpecifier> types = reader.getImageTypes(0);
            if (types != null && types.hasNext()) {
                int[] sizes = types.next().getSampleModel().getSampleSize();
                int bits = 0;
                for (int b : sizes) {
                    bits += b;
                }
                return Math.max(bits, 8);
            }
        } catch (IOException | RuntimeException e) {
            // fall through: assume the widest common layout
        }
        return 64;
    }

    /** Values in [0, 255] to v / 127.5 - 1, clamped (resampling keeps values in range up to rounding). */
    private static void write(double[] v, float[] out, int offset) {
        for (int i = 0; i < v.length; i++) {
            out[offset + i] = (float) Math.clamp(v[i] / 127.5 - 1.0, -1.0, 1.0);
        }
    }

    private static double[] luma(double[][] rgb) {
        double[] g = new double[rgb[0].length];
        for (int i = 0; i < g.length; i++) {
            g[i] = 0.299 * rgb[0][i] + 0.587 * rgb[1][i] + 0.114 * rgb[2][i];
        }
        return g;
    }

    /** The square {@code [top, top+s) x [left, left+s)} as one grey plane or three RGB planes in [0, 255]. */
    private static double[][] rgbOrGrey(BufferedImage img, int top, int left, int s) {
        Raster r = img.getRaster();
        boolean grey = img.getColorModel().getColorSpace().getType() == ColorSpace.TYPE_GRAY
                && img.getColorModel().getNumColorComponents() == 1;
        if (grey) {
            int bits = img.getColorModel().getComponentSize(0);
            double scale = 255.0 / ((1L << bits) - 1);
            double[] g = new double[s * s];
            for (int y = 0; y < s; y++) {
                for (int x = 0; x < s; x++) {
                    g[y * s + x] = r.getSample(left + x, top + y, 0) * scale;
                }
            }
            return new double[][] {g};
        }
        double[][] rgb = new double[3][s * s];
        if (img.getColorModel().getColorSpace().getType() == ColorSpace.TYPE_CMYK && r.getNumBands() == 4) {
            // Java's CMYK colour space converts with a gamma that brightens every colour: the naive formula instead
            double max = (1L << img.getColorModel().getComponentSize(0)) - 1;
            double[] px = new double[4];
            for (int y = 0; y < s; y++) {
                for (int x = 0; x < s; x++) {
                    r.getPixel(left + x, top + y, px);
                    double k = 1.0 - px[3] / max;
                    for (int c = 0; c < 3; c++) {
                        rgb[c][y * s + x] = 255.0 * (1.0 - px[c] / max) * k;
                    }
                }
            }
            return rgb;
        }
        int[] row = new int[s];
        for (int y = 0; y < s; y++) {
            img.getRGB(left, top + y, s, 1, row, 0, s);
            for (int x = 0; x < s; x++) {
                int p = row[x];
                rgb[0][y * s + x] = (p >> 16) & 0xFF;
                rgb[1][y * s + x] = (p >> 8) & 0xFF;
                rgb[2][y * s + x] = p & 0xFF;
            }
        }
        return rgb;
    }

    /** The entries of {@code dir} in name order, hidden ones ({@code .name}) counted in {@code skipped}. */
    private static List<Path> list(Path dir, Skipped skipped) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> all = s.sorted((a, b) -> a.getFileName().toString().compareTo(b.getFileName().toString()))
                    .toList();
            List<Path> visible = new ArrayList<>();
            for (Path p : all) {
                if (p.getFileName().toString().startsWith(".")) {
                    skipped.hidden++;
                } else {
                    visible.add(p);
                }
            }
            return visible;
        }
    }

    /** Extensions of image formats this loader does not read (the skipped-files note suggests converting them). */
    private static final java.util.Set<String> OTHER_IMAGES = java.util.Set.of(".gif", ".webp", ".bmp", ".tif",
            ".tiff", ".heic", ".heif", ".avif", ".jfif", ".jpe", ".jp2", ".ppm", ".pgm", ".pbm", ".tga", ".ico");

    /** What the listing left out, for the notes. */
    private static final class Skipped {
        final java.util.TreeMap<String, Integer> byExtension = new java.util.TreeMap<>();
        final List<String> folders = new ArrayList<>();
        int hidden;

        void file(Path p) {
            String n = p.getFileName().toString();
            int dot = n.lastIndexOf('.');
            byExtension.merge(dot > 0 ? n.substring(dot).toLowerCase(Locale.ROOT) : "(no extension)", 1,
                    Integer::sum);
        }

        void report(Consumer<String> notes) {
            if (!byExtension.isEmpty()) {
                int n = byExtension.values().stream().mapToInt(Integer::intValue).sum();
                StringBuilder b = new StringBuilder();
                int shown = 0;
                for (var e : byExtension.entrySet()) {
                    if (shown++ == 8) {
                        b.append(", ...");
                        break;
                    }
                    b.append(b.isEmpty() ? "" : ", ").append(e.getValue()).append(' ').append(e.getKey());
                }
                boolean images = byExtension.keySet().stream().anyMatch(OTHER_IMAGES::contains);
                notes.accept("skipped " + n + " file" + (n == 1 ? " that is" : "s that are") + " not PNG or JPEG ("
                        + b + ")" + (images ? "; convert images to PNG to use them" : ""));
            }
            if (!folders.isEmpty()) {
                notes.accept("skipped " + folders.size() + " folder" + (folders.size() == 1 ? "" : "s") + " ("
                        + String.join(", ", folders.subList(0, Math.min(5, folders.size())))
                        + (folders.size() > 5 ? ", ..." : "") + "): only the images directly inside class folders "
                        + "are read");
            }
            if (hidden > 0) {
                notes.accept("skipped " + hidden + " hidden entr" + (hidden == 1 ? "y" : "ies") + " (names starting "
                        + "with a dot)");
            }
        }
    }

    /** Per-image facts gathered while loading, for the notes. */
    private static final class Stats {
        int enlarged;
        String smallest;
        long smallestSide = Long.MAX_VALUE;
        int oriented;

        void image(Path file, int width, int height, int orientation, int resolution) {
            int side = Math.min(width, height);
            if (side < resolution) {
                enlarged++;
                if (side < smallestSide) {
                    smallestSide = side;
                    Path parent = file.getParent();
                    smallest = (parent != null && parent.getFileName() != null ? parent.getFileName() + "/" : "")
                            + file.getFileName() + " (" + width + " x " + height + ")";
                }
            }
            if (orientation > 1) {
                oriented++;
            }
        }

        void report(Consumer<String> notes, int resolution) {
            if (enlarged > 0) {
                notes.accept(enlarged + " image" + (enlarged == 1 ? " is" : "s are") + " smaller than " + resolution
                        + " pixels on the shorter side and enlarged (blurry); the smallest is " + smallest);
            }
            if (oriented > 0) {
                notes.accept("turned " + oriented + " JPEG" + (oriented == 1 ? "" : "s") + " upright by "
                        + (oriented == 1 ? "its" : "their") + " EXIF orientation");
            }
        }
    }

    /** {@code ", it starts with text"} when the first bytes are printable ASCII, else nothing. */
    private static String textHint(Path file) {
        try (var in = Files.newInputStream(file)) {
            byte[] head = in.readNBytes(16);
            for (byte b : head) {
                if (b < 9 || (b > 13 && b < 32) || b > 126) {
                    return "";
                }
            }
            return head.length > 0 ? "; it starts with text" : "";
        } catch (IOException e) {
            return "";
        }
    }

    private static boolean isImage(Path p) {
        String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return n.endsWith(".png") || n.endsWith(".jpg") || n.endsWith(".jpeg");
    }

    private static List<String> fileNames(List<Path> ps) {
        return ps.stream().map(p -> p.getFileName().toString()).toList();
    }
}
