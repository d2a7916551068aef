package org.diffusion4j.cli;

import org.diffusion4j.io.Csv;
import org.diffusion4j.io.Dataset;
import org.diffusion4j.io.Datasets;
import org.diffusion4j.io.ImageFolder;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * {@code --data} for the commands: reads the dataset ({@link Datasets#load}: an IDX folder or file, a folder of
 * images with class sub-folders, CSV or NPY of vectors) and divides it into a training part and a held-out part for
 * {@code eval}. An IDX folder that also holds the {@code t10k-*} files (MNIST, Fashion-MNIST) uses them as the
 * held-out part; anything else holds out a deterministic fraction ({@link Dataset#split}).
 *
 * <p>Images are {@code [C, H, W]} in {@code [-1, 1]}; NPY arrays of rank 3 ({@code [N, H, W]}) are taken as grey
 * images {@code [1, H, W]}; everything of rank 1 is a vector set. A uint8 ({@code |u1}) NPY array of image shape
 * ({@code [N, H, W]} or {@code [N, C, H, W]}, channels first) is scaled to {@code [-1, 1]} like IDX images
 * ({@code v / 127.5 - 1}); uint8 vectors ({@code [N, D]}) keep their values.
 */
final class DataLoading {

    /** Fraction held out when the data has no test split of its own. */
    static final double DEFAULT_HELD_OUT = 0.1;

    private DataLoading() {
    }

    /** What the data is. */
    enum Kind {
        /** {@code [C, H, W]} images in {@code [-1, 1]}. */
        IMAGES,
        /** {@code [D]} vectors. */
        VECTORS
    }

    /**
     * A loaded dataset.
     *
     * @param train       the training part
     * @param heldOut     the held-out part (same sample shape)
     * @param kind        images or vectors
     * @param heldOutFrom {@code "t10k"} when the IDX test files are the held-out part, else {@code "split <f>"}
     */
    record Loaded(Dataset train, Dataset heldOut, Kind kind, String heldOutFrom, List<String> featureNames) {

        /** Data without feature names. */
        Loaded(Dataset train, Dataset heldOut, Kind kind, String heldOutFrom) {
            this(train, heldOut, kind, heldOutFrom, List.of());
        }

        /** The sample shape, {@code [C, H, W]} or {@code [D]}. */
        long[] sampleShape() {
            return train.sampleShape();
        }

        /**
         * A fingerprint of the data as loaded: {@code n=TRAIN+HELD shape=[...] crc32=HEX}, the CRC-32 over the
         * little-endian float32 values and the labels of both parts (a full pass; about 0.15 s for Fashion-MNIST).
         */
        String fingerprint() {
            java.util.zip.CRC32 crc = new java.util.zip.CRC32();
            java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(4 * train.sampleSize())
                    .order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (Dataset d : new Dataset[] {train, heldOut}) {
                for (int i = 0; i < d.size(); i++) {
                    buf.clear();
                    buf.asFloatBuffer().put(d.sample(i));
                    crc.update(buf.array(), 0, 4 * d.sampleSize());
                    if (d.hasLabels()) {
                        int l = d.label(i);
                        crc.update(new byte[] {(byte) l, (byte) (l >> 8), (byte) (l >> 16), (byte) (l >> 24)});
                    }
                }
            }
            return String.format(Locale.ROOT, "n=%d+%d shape=%s crc32=%08x", train.size(), heldOut.size(),
                    Arrays.toString(sampleShape()), crc.getValue());
        }

        /** A one-line description. */
        String describe() {
            return String.format(Locale.ROOT, "%s %s: %d training, %d held out (%s)%s",
                    kind == Kind.IMAGES ? "images" : "vectors", Arrays.toString(sampleShape()), train.size(),
                    heldOut.size(), heldOutFrom,
                    train.hasLabels() ? ", " + train.numClasses() + (train.numClasses() == 1 ? " class" : " classes") + names() + emptyClasses()
                            + unseenHeldOut() : ", unlabelled");
        }

        /**
         * The class names, " (a, b, ...)" with at most ten (a name with a comma, quote or outer space quoted, a long
         * one shortened), or "" when the classes have none; a warning when there are nearly as many classes as
         * samples (an ID column taken for labels).
         */
        private String names() {
            List<String> n = train.classNames();
            String idLike = train.numClasses() >= 20 && train.numClasses() * 2L > train.size()
                    ? String.format(Locale.ROOT, " (WARNING: %d classes for %d training samples: is the label "
                    + "column an ID?)", train.numClasses(), train.size()) : "";
            if (n.isEmpty()) {
                return idLike;
            }
            return " (" + listNames(n, 10, false) + ")" + idLike;
        }

        /** A warning when held-out labels name classes the training split does not have, else "". */
        String unseenHeldOut() {
            if (!heldOut.hasLabels() || heldOut.size() == 0) {
                return "";
            }
            int k = train.numClasses();
            int beyond = 0;
            for (int l : heldOut.labels()) {
                beyond += l >= k ? 1 : 0;
            }
            return beyond == 0 ? "" : String.format(Locale.ROOT, " (WARNING: %d held-out samples have labels of "
                    + "classes the training split lacks (>= %d); class metrics on them count as wrong)", beyond, k);
        }

        /**
         * A warning when labels leave classes of {@code [0, numClasses)} without a training example (the class count
         * of integer labels is the largest label + 1, so one stray label such as 255 among 0..9 adds 246 classes),
         * else "".
         */
        String emptyClasses() {
            int k = train.numClasses();
            boolean[] seen = new boolean[k];
            for (int l : train.labels()) {
                seen[l] = true;
            }
            int empty = 0;
            int first = -1;
            for (int c = 0; c < k; c++) {
                if (!seen[c]) {
                    empty++;
                    first = first < 0 ? c : first;
                }
            }
            if (empty == 0) {
                return "";
            }
            if (!train.classNames().isEmpty()) {
                return String.format(Locale.ROOT, " (WARNING: %d of them have no training example, first %s: only "
                        + "held-out samples have them)", empty, showName(train.classNames().get(first)));
            }
            return String.format(Locale.ROOT, " (WARNING: %d of them have no training example, "
                    + "first class %d; the class count is the largest label + 1 = %d: check the labels)", empty, first,
                    k);
        }
    }

    /**
     * Class names for one line of output: the first {@code limit} as {@link #showName}, as {@code "k = name"} when
     * {@code indexed}, comma-separated, then {@code ", ... N more"}.
     */
    static String listNames(List<String> names, int limit, boolean indexed) {
        StringBuilder b = new StringBuilder();
        for (int c = 0; c < Math.min(limit, names.size()); c++) {
            b.append(c == 0 ? "" : ", ").append(indexed ? c + " = " : "").append(showName(names.get(c)));
        }
        return names.size() > limit ? b.append(", ... ").append(names.size() - limit).append(" more").toString()
                : b.toString();
    }

    /** {@code s} with control characters (escape sequences, NUL, line breaks) shown as {@code ?}: safe to print. */
    static String printable(String s) {
        return s.codePoints().map(c -> Character.isISOControl(c) ? '?' : c)
                .collect(StringBuilder::new, StringBuilder::appendCodePoint, StringBuilder::append).toString();
    }

    static String showName(String name) {
        String printable = printable(name);
        String s = printable.length() <= 40 ? printable : printable.substring(0, 37) + "...";
        boolean quote = s.contains(",") || s.contains("'") || !s.equals(s.strip()) || s.isEmpty();
        return quote ? "'" + s.replace("'", "\\'") + "'" : s;
    }

    /**
     * Loads {@code path}.
     *
     * @param resolution side of images read from an image folder
     * @param channels   1 or 3, for an image folder
     * @param heldOut    fraction held out when the data has no test split
     * @param seed       seed of the held-out split
     * @throws IOException              naming the file and the problem (missing, corrupt, empty)
     * @throws IllegalArgumentException for data that cannot be split (too few samples) or of an unusable shape
     */
    static Loaded load(Path path, int resolution, int channels, double heldOut, long seed) throws IOException {
        return load(path, resolution, channels, heldOut, seed, null);
    }

    /**
     * Like {@link #load(Path, int, int, double, long)}; with {@code labelColumn} (a header name or 0-based index) a CSV
     * file's column of integer class labels ({@link Csv#load(Path, Csv.Header, String)}).
     *
     * @throws IllegalArgumentException for a label column with data other than a CSV file
     */
    static Loaded load(Path path, int resolution, int channels, double heldOut, long seed, String labelColumn)
            throws IOException {
        return load(path, resolution, channels, heldOut, seed, labelColumn, note -> { });
    }

    /**
     * Like {@link #load(Path, int, int, double, long, String)}, passing the reader's notes (files skipped, images
     * enlarged, the channels {@code auto} chose) to {@code notes}.
     */
    static Loaded load(Path path, int resolution, int channels, double heldOut, long seed, String labelColumn,
                       java.util.function.Consumer<String> notes) throws IOException {
        Datasets.Options opts = new Datasets.Options(resolution, channels, Datasets.Split.TRAIN, Csv.Header.AUTO);
        if (labelColumn != null && !path.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".csv")) {
            throw new IllegalArgumentException("--label-column " + labelColumn + " applies to CSV files; " + path
                    + " is not one (image folders label by sub-folder, IDX by its label file)");
        }
        if (resolution < 1 || resolution > MAX_RESOLUTION) {
            throw new IllegalArgumentException("--resolution must be in [1, " + MAX_RESOLUTION + "], got "
                    + resolution);
        }
        Dataset all;
        try {
            all = normalise(path, labelColumn != null ? Csv.load(path, Csv.Header.AUTO, labelColumn)
                    : isNpy(path) || isRawIdx(path) ? loadNpy(path) : Datasets.load(path, opts, notes));
        } catch (org.diffusion4j.io.FileFormatException e) {
            java.util.regex.Matcher m = TEXT_IN_COLUMN.matcher(e.problem());
            if (labelColumn == null && m.find()) {
                int col = Integer.parseInt(m.group(1)) - 1;
                throw new org.diffusion4j.io.FileFormatException(path, e.problem() + " (a column of class names? "
                        + "give --label-column with its header name or 0-based index " + col + ")", e);
            }
            throw e;
        }
        Kind kind = all.sampleShape().length == 3 ? Kind.IMAGES : Kind.VECTORS;
        if (Files.isDirectory(path) && hasTestSplit(path)) {
            Dataset test = normalise(path, Datasets.load(path, new Datasets.Options(resolution, channels,
                    Datasets.Split.TEST, Csv.Header.AUTO)));
            if (!Arrays.equals(test.sampleShape(), all.sampleShape())) {
                throw new IllegalArgumentException(path + ": the t10k images are " + Arrays.toString(
                        test.sampleShape()) + " but the training images are " + Arrays.toString(all.sampleShape()));
            }
            return new Loaded(all, test, kind, "t10k");
        }
        if (all.size() < 2) {
            throw new IllegalArgumentException(path + ": holds " + all.size() + " sample(s); need at least 2 (one to "
                    + "train on, one held out)");
        }
        double frac = all.size() * heldOut < 1 ? 1.0 / all.size() : heldOut;
        Dataset.Split split = all.split(frac, seed);
        List<String> features = List.of();
        if (kind == Kind.VECTORS && path.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".csv")) {
            features = Csv.featureNames(path, Csv.Header.AUTO, labelColumn);
            if (features.size() != all.sampleSize()) {
                features = List.of();
            }
        }
        return new Loaded(split.train(), split.heldOut(), kind, "split " + new java.math.BigDecimal(frac)
                .round(new java.math.MathContext(4)).stripTrailingZeros().toPlainString(), features);
    }

    /** A CSV error about text in a number column: "column N: 'text' is not a number". */
    private static final java.util.regex.Pattern TEXT_IN_COLUMN =
            java.util.regex.Pattern.compile("column (\\d+): '.*' is not a number");

    /** Appended to "the data changed" errors: the files may not have, the decoding did. */
    static final String DECODING_HINT = "; if the files are the same, this version may read them differently (image "
            + "folders: the EXIF orientation of JPEG and PNG files and CMYK colours are applied since 2026-11-30)";

    /** Largest {@code --resolution}. */
    static final int MAX_RESOLUTION = 4096;

    private static boolean isNpy(Path path) {
        return Files.isRegularFile(path) && path.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".npy");
    }

    /** An {@code .idx} file as {@code sample --save-raw x.idx} writes (any IDX type, e.g. float32 samples). */
    private static boolean isRawIdx(Path path) {
        return Files.isRegularFile(path) && path.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".idx");
    }

    /**
     * An array file as one record: an {@code .npy} ({@link org.diffusion4j.io.Npy#read}), or an IDX file with its
     * type named as the NumPy dtype ({@code >f4}, {@code |u1}, ...), as {@code sample --save-raw} writes both.
     */
    static org.diffusion4j.io.Npy.Array readArray(Path file) throws IOException {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".npy") || !(name.endsWith(".idx") || name.contains("-ubyte"))) {
            return org.diffusion4j.io.Npy.read(file);
        }
        org.diffusion4j.io.Idx.Array a = org.diffusion4j.io.Idx.read(file);
        long[] shape = new long[a.dims().length];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = a.dims()[i];
        }
        String descr = switch (a.type()) {
            case U8 -> "|u1";
            case I8 -> "|i1";
            case I16 -> ">i2";
            case I32 -> ">i4";
            case F32 -> ">f4";
            case F64 -> ">f8";
        };
        return new org.diffusion4j.io.Npy.Array(descr, shape, a.toFloatArray());
    }

    /**
     * An NPY file: float arrays as they are; a {@code u1} (uint8) array of image shape, {@code [N, H, W]} or
     * {@code [N, C, H, W]}, is scaled like IDX images, {@code v / 127.5 - 1} into {@code [-1, 1]}; a {@code u1}
     * array of vectors ({@code [N]}, {@code [N, D]}) stays in {@code 0 … 255}.
     */
    static Dataset loadNpy(Path path) throws IOException {
        org.diffusion4j.io.Npy.Array a = readArray(path);
        long[] s = a.shape();
        if (a.descr().matches("[<>|=]?i[1248]")) {
            throw new org.diffusion4j.io.FileFormatException(path, "holds integer values (" + a.descr() + ": class "
                    + "labels, such as a sample --save-raw labels file?); data must be float32/float64 vectors or "
                    + "images, or uint8 images (scaled from 0..255 to [-1, 1])");
        }
        boolean u1Images = a.descr().endsWith("u1") && (s.length == 3 || s.length == 4);
        if (!u1Images) {
            return org.diffusion4j.io.Npy.dataset(path, a);        // the array read once, checked as Npy.load does
        }
        if (s[0] == 0) {
            throw new org.diffusion4j.io.FileFormatException(path, "holds no samples (shape " + Arrays.toString(s)
                    + ")");
        }
        long[] sample = Arrays.copyOfRange(s, 1, s.length);
        float[] v = a.values();
        if (v.length == 0) {
            throw new org.diffusion4j.io.FileFormatException(path, "samples of shape " + Arrays.toString(sample)
                    + " are empty");
        }
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (v[i] / 127.5 - 1.0);
        }
        return org.diffusion4j.io.Npy.withLabelsBeside(path, v, sample);
    }

    static boolean hasTestSplit(Path dir) {
        return (Files.isRegularFile(dir.resolve("t10k-images-idx3-ubyte"))
                || Files.isRegularFile(dir.resolve("t10k-images-idx3-ubyte.gz")))
                && (Files.isRegularFile(dir.resolve("t10k-labels-idx1-ubyte"))
                || Files.isRegularFile(dir.resolve("t10k-labels-idx1-ubyte.gz")));
    }

    /**
     * The {@code --channels} option: {@code auto} ({@link ImageFolder#AUTO_CHANNELS}), 1 or 3.
     *
     * @throws IllegalArgumentException naming the value otherwise
     */
    static int parseChannels(String spec) {
        return switch (spec == null ? "auto" : spec.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "auto", "0" -> ImageFolder.AUTO_CHANNELS;
            case "1" -> 1;
            case "3" -> 3;
            default -> throw new IllegalArgumentException("--channels must be auto, 1 or 3, got '" + spec + "'");
        };
    }

    /** Rank-2 samples ({@code [H, W]}) become grey images {@code [1, H, W]}; ranks 1 and 3 stay; others fail. */
    private static Dataset normalise(Path path, Dataset d) {
        long[] s = d.sampleShape();
        if (d.size() == 0) {
            throw new IllegalArgumentException(path + ": holds no samples");
        }
        if (s.length == 3 && s[0] != 1 && s[0] != 3) {
            boolean channelsLast = (s[2] == 1 || s[2] == 3) && s[2] < s[1];
            throw new IllegalArgumentException(path + ": images of shape " + Arrays.toString(s) + " have " + s[0]
                    + " channels; the tool trains on grey (1) or RGB (3) images [C, H, W]"
                    + (channelsLast ? " (this looks channels-last [H, W, C]: transpose to [N, C, H, W])" : ""));
        }
        return switch (s.length) {
            case 1, 3 -> d;
            case 2 -> d.withValues(d.toArray(), 1, s[0], s[1]);
            default -> throw new IllegalArgumentException(path + ": samples of shape " + Arrays.toString(s)
                    + " are neither vectors [D] nor images [C, H, W]");
        };
    }

    /** {@code d} with every sample flattened to {@code [prod(shape)]} (for the MLP on images). */
    static Dataset flatten(Dataset d) {
        return d.withValues(d.toArray(), d.sampleSize());
    }
}
