package org.diffusion4j.cli;

import org.diffusion4j.io.Csv;
import org.diffusion4j.io.Dataset;
import org.diffusion4j.io.Datasets;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

/**
 * {@code --data} for the commands: reads the dataset ({@link Datasets#load}: an IDX folder or file, a folder of
 * images with class sub-folders, CSV or NPY of vectors) and divides it into a training part and a held-out part for
 * {@code eval}. An IDX folder that also holds the {@code t10k-*} files (MNIST, Fashion-MNIST) uses them as the
 * held-out part; anything else holds out a deterministic fraction ({@link Dataset#split}).
 *
 * <p>Images are {@code [C, H, W]} in {@code [-1, 1]}; NPY arrays of rank 3 ({@code [N, H, W]}) are taken as grey
 * images {@code [1, H, W]}; everything of rank 1 is a vector set.
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
    record Loaded(Dataset train, Dataset heldOut, Kind kind, String heldOutFrom) {

        /** The sample shape, {@code [C, H, W]} or {@code [D]}. */
        long[] sampleShape() {
            return train.sampleShape();
        }

        /** A one-line description. */
        String describe() {
            return String.format(Locale.ROOT, "%s %s: %d training, %d held out (%s)%s",
                    kind == Kind.IMAGES ? "images" : "vectors", Arrays.toString(sampleShape()), train.size(),
                    heldOut.size(), heldOutFrom,
                    train.hasLabels() ? ", " + train.numClasses() + " classes" : ", unlabelled");
        }
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
        Datasets.Options opts = new Datasets.Options(resolution, channels, Datasets.Split.TRAIN, Csv.Header.AUTO);
        Dataset all = normalise(path, Datasets.load(path, opts));
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
        return new Loaded(split.train(), split.heldOut(), kind, "split " + frac);
    }

    private static boolean hasTestSplit(Path dir) {
        return (Files.isRegularFile(dir.resolve("t10k-images-idx3-ubyte"))
                || Files.isRegularFile(dir.resolve("t10k-images-idx3-ubyte.gz")))
                && (Files.isRegularFile(dir.resolve("t10k-labels-idx1-ubyte"))
                || Files.isRegularFile(dir.resolve("t10k-labels-idx1-ubyte.gz")));
    }

    /** Rank-2 samples ({@code [H, W]}) become grey images {@code [1, H, W]}; ranks 1 and 3 stay; others fail. */
    private static Dataset normalise(Path path, Dataset d) {
        long[] s = d.sampleShape();
        if (d.size() == 0) {
            throw new IllegalArgumentException(path + ": holds no samples");
        }
        return switch (s.length) {
            case 1, 3 -> d;
            case 2 -> Dataset.of(d.toArray(), new long[] {1, s[0], s[1]}, d.hasLabels() ? d.labels() : null,
                    d.hasLabels() ? d.classNames() : java.util.List.of());
            default -> throw new IllegalArgumentException(path + ": samples of shape " + Arrays.toString(s)
                    + " are neither vectors [D] nor images [C, H, W]");
        };
    }

    /** {@code d} with every sample flattened to {@code [prod(shape)]} (for the MLP on images). */
    static Dataset flatten(Dataset d) {
        return Dataset.of(d.toArray(), new long[] {d.sampleSize()}, d.hasLabels() ? d.labels() : null,
                d.hasLabels() ? d.classNames() : java.util.List.of());
    }
}
