package org.diffusion4j.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * Opens a dataset from a path, choosing the reader by what the path is (for the command line's
 * {@code --data}):
 *
 * <table>
 *   <caption>What a path is read as</caption>
 *   <tr><th>path</th><th>read by</th><th>samples</th></tr>
 *   <tr><td>a folder holding {@code train-images-idx3-ubyte[.gz]} and {@code train-labels-idx1-ubyte[.gz]}
 *       (or {@code t10k-…} for {@link Split#TEST})</td><td>{@link Idx#load}</td><td>{@code [1, H, W]}, labelled</td></tr>
 *   <tr><td>an IDX image file ({@code …idx3-ubyte[.gz]}); its labels file ({@code images-idx3} →
 *       {@code labels-idx1}) is used when it exists</td><td>{@link Idx#load}</td><td>{@code [1, H, W]}</td></tr>
 *   <tr><td>any other folder</td><td>{@link ImageFolder#load}</td><td>{@code [C, R, R]}</td></tr>
 *   <tr><td>{@code *.csv}</td><td>{@link Csv#load} (header detected)</td><td>{@code [D]}</td></tr>
 *   <tr><td>{@code *.npy}</td><td>{@link Npy#load}</td><td>{@code shape[1:]}</td></tr>
 * </table>
 *
 * Fashion-MNIST, as Debian's {@code dataset-fashion-mnist} package installs it, is the folder
 * {@link #DEBIAN_FASHION_MNIST} holding {@code train-images-idx3-ubyte.gz}, {@code train-labels-idx1-ubyte.gz},
 * {@code t10k-images-idx3-ubyte.gz} and {@code t10k-labels-idx1-ubyte.gz}; an IDX folder whose name contains
 * {@code fashion} gets the class names {@link #FASHION_MNIST_CLASSES}.
 */
public final class Datasets {

    /** Where Debian's {@code dataset-fashion-mnist} package puts the four IDX files. */
    public static final Path DEBIAN_FASHION_MNIST = Path.of("/usr/share/datasets/fashion-mnist");

    /** Fashion-MNIST's labels 0–9 (Xiao, Rasul, Vollgraf 2017, arXiv:1708.07747, Table 1). */
    public static final List<String> FASHION_MNIST_CLASSES = List.of("T-shirt/top", "Trouser", "Pullover", "Dress",
            "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot");

    /** Which part of an IDX folder to read. */
    public enum Split {
        /** {@code train-*} files. */
        TRAIN("train"),
        /** {@code t10k-*} files (the MNIST test set). */
        TEST("t10k");

        private final String prefix;

        Split(String prefix) {
            this.prefix = prefix;
        }

        /** The file-name prefix. */
        public String prefix() {
            return prefix;
        }
    }

    /**
     * How to read what the path holds.
     *
     * @param resolution side of the images of an image folder ({@code 1 .. ImageFolder.MAX_RESOLUTION}; checked when an
     *                   image folder is read, ignored for other sources)
     * @param channels   1 or 3 for an image folder (checked when one is read, ignored for other sources)
     * @param split      which IDX files of an IDX folder
     * @param csvHeader  header handling of CSV files
     */
    public record Options(int resolution, int channels, Split split, Csv.Header csvHeader) {
        /** @throws NullPointerException when {@code split} or {@code csvHeader} is null */
        public Options {
            Objects.requireNonNull(split, "split");
            Objects.requireNonNull(csvHeader, "csvHeader");
        }

        /** 28 × 28 grey images, the training split, CSV header detected. */
        public static Options defaults() {
            return new Options(28, 1, Split.TRAIN, Csv.Header.AUTO);
        }

        /** These options reading {@code split} of an IDX folder, e.g. {@code defaults().withSplit(Split.TEST)}. */
        public Options withSplit(Split split) {
            return new Options(resolution, channels, split, csvHeader);
        }

        /** These options with images of an image folder resized to {@code resolution} and {@code channels} (1 or 3). */
        public Options withImages(int resolution, int channels) {
            return new Options(resolution, channels, split, csvHeader);
        }
    }

    private Datasets() {
    }

    /**
     * Loads the dataset at {@code path} (see the class comment).
     *
     * @throws NoSuchFileException  when the path does not exist
     * @throws FileFormatException  from the chosen reader, or when a file's kind is not recognised
     */
    public static Dataset load(Path path, Options options) throws IOException {
        return load(path, options, note -> { });
    }

    /**
     * {@link #load(Path, Options)}, telling {@code notes} what the reader skipped or decided on its own (an image
     * folder's skipped files, enlarged images, the channels {@code auto} chose; see
     * {@link ImageFolder#load(Path, int, int, java.util.function.Consumer)}).
     */
    public static Dataset load(Path path, Options options, java.util.function.Consumer<String> notes)
            throws IOException {
        Objects.requireNonNull(path, "path");
        Objects.requireNonNull(options, "options");
        Objects.requireNonNull(notes, "notes");
        if (!Files.exists(path)) {
            throw new NoSuchFileException(path.toString(), null, "dataset path does not exist");
        }
        if (Files.isDirectory(path)) {
            Path images = find(path, options.split().prefix() + "-images-idx3-ubyte");
            if (images != null) {
                Path labels = find(path, options.split().prefix() + "-labels-idx1-ubyte");
                if (labels == null) {
                    throw new FileFormatException(path, "holds " + images.getFileName() + " but no "
                            + options.split().prefix() + "-labels-idx1-ubyte[.gz]");
                }
                return Idx.load(images, labels, namesFor(path, labels));
            }
            if (find(path, "train-images-idx3-ubyte") != null || find(path, "t10k-images-idx3-ubyte") != null) {
                throw new FileFormatException(path, "holds IDX files but not the " + options.split().prefix()
                        + "-images-idx3-ubyte[.gz] of the " + options.split() + " split");
            }
            return ImageFolder.load(path, options.resolution(), options.channels(), notes);
        }
        String name = path.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".csv")) {
            return Csv.load(path, options.csvHeader());
        }
        if (name.endsWith(".npy")) {
            return Npy.load(path);
        }
        if (name.contains("idx3-ubyte")) {
            String labelsName = path.getFileName().toString().replace("images-idx3", "labels-idx1");
            Path labels = path.resolveSibling(labelsName);
            Path lab = !labelsName.equals(path.getFileName().toString()) && Files.exists(labels) ? labels : null;
            return Idx.load(path, lab, lab == null ? List.of() : namesFor(path.toAbsolutePath().getParent(), lab));
        }
        throw new FileFormatException(path, "is not a dataset this tool reads: expected a folder (IDX files or "
                + "images), an IDX image file, .csv or .npy");
    }

    /** {@code dir/stem} or {@code dir/stem.gz}, whichever exists (raw first), else null. */
    private static Path find(Path dir, String stem) {
        Path raw = dir.resolve(stem);
        if (Files.isRegularFile(raw)) {
            return raw;
        }
        Path gz = dir.resolve(stem + ".gz");
        return Files.isRegularFile(gz) ? gz : null;
    }

    /**
     * Fashion-MNIST's class names for a folder whose name says "fashion" and whose labels are all among its 10
     * classes; none otherwise (other data in a folder of that name keeps numbered classes).
     */
    private static List<String> namesFor(Path dir, Path labels) throws IOException {
        if (dir == null || dir.getFileName() == null
                || !dir.getFileName().toString().toLowerCase(Locale.ROOT).contains("fashion")) {
            return List.of();
        }
        for (int v : Idx.readLabels(labels).toIntArray()) {
            if (v >= FASHION_MNIST_CLASSES.size()) {
                return List.of();
            }
        }
        return FASHION_MNIST_CLASSES;
    }
}
