package org.diffusion4j.io;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Shape;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * An in-memory dataset: {@code N} samples of one fixed shape (e.g. {@code [C, H, W]} images in
 * {@code [-1, 1]} or {@code [D]} vectors), F32, row-major in one heap array, with optional integer class
 * labels in {@code [0, numClasses)}. Immutable.
 *
 * <p>Random access for training goes through {@link #batches(int, long)}: batch {@code k} is a pure function
 * of {@code (seed, k)} (a Philox-driven shuffle per epoch), so a resumed run sees the same batches as an
 * uninterrupted one. {@link #split(double, long)} divides the samples into training and held-out parts.
 *
 * <p>Capacity: {@code N × sampleSize} must fit a Java array ({@code < 2^31 − 8} floats, ~8.6 GB).
 */
public final class Dataset {

    /**
     * Most classes a dataset may have ({@code 2^24}, far beyond ImageNet-21k's 21,841): a class-conditional model
     * holds a table row per class, so a stray huge label would otherwise surface as an out-of-memory error.
     */
    public static final int MAX_CLASSES = 1 << 24;


    /** Philox stream of the train/held-out split; epoch {@code e}'s shuffle uses stream {@code e >= 0}. */
    public static final long SPLIT_STREAM = -1L;

    private final float[] data;
    private final long[] sampleShape;
    private final int sampleSize;
    private final int size;
    private final int[] labels;
    private final List<String> classNames;
    private final int numClasses;

    private Dataset(float[] data, long[] sampleShape, int sampleSize, int size, int[] labels, List<String> classNames,
                    int numClasses) {
        this.data = data;
        this.sampleShape = sampleShape;
        this.sampleSize = sampleSize;
        this.size = size;
        this.labels = labels;
        this.classNames = classNames;
        this.numClasses = numClasses;
    }

    /**
     * A dataset over {@code data} (taken, not copied): {@code data.length / sampleSize} samples of
     * {@code sampleShape}.
     *
     * @param data        row-major samples, {@code N × prod(sampleShape)} floats
     * @param sampleShape the shape of one sample (rank ≥ 1, every dim ≥ 1)
     * @param labels      one label per sample in {@code [0, numClasses)}, or null for an unlabelled set
     * @param classNames  the names of the classes (defines {@code numClasses}), or an empty list, in which
     *                    case {@code numClasses = max(label) + 1}
     * @throws IllegalArgumentException when {@code data} is not a whole number of samples or holds NaN or an
     *                                  infinity, the label count differs from {@code N}, a label is out of range, or a
     *                                  class name is empty or repeated
     */
    public static Dataset of(float[] data, long[] sampleShape, int[] labels, List<String> classNames) {
        Objects.requireNonNull(data, "data");
        Objects.requireNonNull(sampleShape, "sampleShape");
        Objects.requireNonNull(classNames, "classNames");
        long[] shape = checkedSampleShape(sampleShape);
        long per = Shape.numel(shape);
        if (data.length % per != 0) {
            throw new IllegalArgumentException(data.length + " values are not a whole number of samples of shape "
                    + Arrays.toString(shape) + " (" + per + " values each)");
        }
        int n = (int) (data.length / per);
        for (int i = 0; i < data.length; i++) {
            if (!Float.isFinite(data[i])) {
                throw new IllegalArgumentException("element " + (i % per) + " of sample " + (i / per) + " is "
                        + data[i] + ": a dataset must be finite");
            }
        }
        int classes = classNames.size();
        java.util.Set<String> seen = new java.util.HashSet<>();
        for (int c = 0; c < classes; c++) {
            String name = Objects.requireNonNull(classNames.get(c), "class name");
            if (name.isEmpty() || !seen.add(name) || name.chars().anyMatch(Character::isISOControl)) {
                throw new IllegalArgumentException("class " + c + " has " + (name.isEmpty() ? "an empty name"
                        : seen.contains(name) && name.chars().noneMatch(Character::isISOControl)
                        ? "the name '" + name + "' of an earlier class" : "a name with a control character")
                        + " (class names must be distinct, non-empty and printable)");
            }
        }
        if (labels != null) {
            if (labels.length != n) {
                throw new IllegalArgumentException(labels.length + " labels for " + n + " samples");
            }
            int max = -1;
            for (int i = 0; i < n; i++) {
                int l = labels[i];
                if (l < 0 || l >= MAX_CLASSES || (!classNames.isEmpty() && l >= classNames.size())) {
                    throw new IllegalArgumentException("label " + l + " of sample " + i + " is outside [0, "
                            + (classNames.isEmpty() ? MAX_CLASSES : classNames.size()) + ")");
                }
                max = Math.max(max, l);
            }
            if (classNames.isEmpty()) {
                classes = max + 1;
            }
        } else if (!classNames.isEmpty()) {
            throw new IllegalArgumentException("class names " + classNames + " given without labels");
        }
        return new Dataset(data, shape, (int) per, n, labels == null ? null : labels.clone(), List.copyOf(classNames),
                classes);
    }

    // ---------------------------------------------------------------- descriptors

    /** Number of samples {@code N}. */
    public int size() {
        return size;
    }

    /** Shape of one sample, e.g. {@code [C, H, W]}. */
    public long[] sampleShape() {
        return sampleShape.clone();
    }

    /** Elements per sample. */
    public int sampleSize() {
        return sampleSize;
    }

    /** Shape of a batch of {@code b} samples: {@code [b, ...sampleShape]}. */
    public long[] batchShape(long b) {
        long[] s = new long[sampleShape.length + 1];
        s[0] = b;
        System.arraycopy(sampleShape, 0, s, 1, sampleShape.length);
        return s;
    }

    /** True when every sample has a class label. */
    public boolean hasLabels() {
        return labels != null;
    }

    /** Number of classes (0 for an unlabelled set). */
    public int numClasses() {
        return numClasses;
    }

    /** Class names by label (empty when the source had none, e.g. IDX labels). */
    public List<String> classNames() {
        return classNames;
    }

    /**
     * The label of sample {@code i}.
     *
     * @throws IllegalStateException     when the set is unlabelled
     * @throws IndexOutOfBoundsException when {@code i} is outside {@code [0, N)}
     */
    public int label(int i) {
        requireLabels();
        Objects.checkIndex(i, size);
        return labels[i];
    }

    /**
     * A copy of all labels, {@code [N]}, each in {@code [0, numClasses())}.
     *
     * @throws IllegalStateException when the set is unlabelled
     */
    public int[] labels() {
        requireLabels();
        return labels.clone();
    }

    /**
     * A copy of sample {@code i}, row-major ({@code sampleSize()} floats).
     *
     * @throws IndexOutOfBoundsException when {@code i} is outside {@code [0, N)}
     */
    public float[] sample(int i) {
        Objects.checkIndex(i, size);
        return Arrays.copyOfRange(data, i * sampleSize, (i + 1) * sampleSize);
    }

    /**
     * The same samples' labels, class names and class count over other values: {@code values} (taken, not copied)
     * as {@code N} samples of {@code sampleShape}, e.g. standardised or flattened samples. Unlike
     * {@link #of(float[], long[], int[], List)} without names, the class count stays this set's (a split that lacks
     * the highest labels keeps them).
     *
     * @throws IllegalArgumentException when {@code values} is not {@code N} samples of {@code sampleShape}
     */
    public Dataset withValues(float[] values, long... sampleShape) {
        Objects.requireNonNull(values, "values");
        long[] shape = checkedSampleShape(sampleShape);
        long per = Shape.numel(shape);
        if (per * size != values.length) {
            throw new IllegalArgumentException(values.length + " values are not " + size + " samples of "
                    + Arrays.toString(shape));
        }
        return new Dataset(values, shape, (int) per, size, labels, classNames, numClasses);
    }

    /** {@code sampleShape} checked: rank >= 1, dims >= 1, 1 to 2^31 - 1 elements. */
    private static long[] checkedSampleShape(long[] sampleShape) {
        long[] shape = Shape.checked(sampleShape);
        if (shape.length == 0) {
            throw new IllegalArgumentException("a sample needs rank >= 1, got shape []");
        }
        long per = Shape.numel(shape);
        if (per == 0 || per > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("sample shape " + Arrays.toString(shape) + " has " + per
                    + " elements; need 1 .. 2^31 - 1");
        }
        return shape;
    }

    /** A copy of all samples, {@code N × sampleSize} row-major. */
    public float[] toArray() {
        return data.clone();
    }

    // ---------------------------------------------------------------- subsets

    /**
     * The samples at {@code indices} (in that order; repeats allowed), with their labels.
     *
     * @throws IndexOutOfBoundsException when an index is outside {@code [0, N)}
     * @throws NullPointerException      when {@code indices} is null
     */
    public Dataset subset(int[] indices) {
        Objects.requireNonNull(indices, "indices");
        float[] d = new float[Math.multiplyExact(indices.length, sampleSize)];
        int[] l = labels == null ? null : new int[indices.length];
        for (int k = 0; k < indices.length; k++) {
            int i = Objects.checkIndex(indices[k], size);
            System.arraycopy(data, i * sampleSize, d, k * sampleSize, sampleSize);
            if (l != null) {
                l[k] = labels[i];
            }
        }
        return new Dataset(d, sampleShape, sampleSize, indices.length, l, classNames, numClasses);
    }

    /** Training and held-out parts of a dataset. */
    public record Split(Dataset train, Dataset heldOut) {
    }

    /**
     * Splits off {@code round(N × heldOutFraction)} samples chosen by the Philox permutation
     * {@code (seed, }{@link #SPLIT_STREAM}{@code )}; both parts keep the original sample order.
     *
     * @throws IllegalArgumentException unless {@code 0 < heldOutFraction < 1} and both parts are non-empty
     */
    public Split split(double heldOutFraction, long seed) {
        if (!(heldOutFraction > 0 && heldOutFraction < 1)) {
            throw new IllegalArgumentException("held-out fraction must be in (0, 1), got " + heldOutFraction);
        }
        int held = (int) Math.round(size * heldOutFraction);
        if (held < 1 || held > size - 1) {
            throw new IllegalArgumentException("a held-out fraction of " + heldOutFraction + " of " + size
                    + " samples leaves " + held + " held out and " + (size - held) + " for training; both must be >= 1");
        }
        int[] p = PhiloxShuffle.permutation(size, seed, SPLIT_STREAM);
        int[] h = Arrays.copyOfRange(p, 0, held);
        int[] t = Arrays.copyOfRange(p, held, size);
        Arrays.sort(h);
        Arrays.sort(t);
        return new Split(subset(t), subset(h));
    }

    // ---------------------------------------------------------------- tensors

    /** All samples as one F32 tensor {@code [N, ...sampleShape]} on {@code backend}, owned by {@code scope}. */
    public Tensor toTensor(Backend backend, TensorScope scope) {
        return backend.empty(scope, DType.F32, batchShape(size)).copyFrom(data);
    }

    /**
     * All labels as an I32 tensor {@code [N]} on {@code backend}, owned by {@code scope}.
     *
     * @throws IllegalStateException when the set is unlabelled, or the scope or backend is closed
     */
    public Tensor labelsTensor(Backend backend, TensorScope scope) {
        requireLabels();
        Tensor t = backend.empty(scope, DType.I32, size);
        t.copyFrom(MemorySegment.ofArray(labels));
        return t;
    }

    /**
     * Copies the samples at {@code indices} into {@code x} ({@code [B, ...sampleShape]} F32, contiguous, any
     * backend) and, when {@code y} is not null, their labels into {@code y} ({@code [B]} I32).
     *
     * @throws IllegalArgumentException  naming the tensor when a shape or dtype does not match
     * @throws IllegalStateException     when {@code y} is not null and the set is unlabelled
     * @throws IndexOutOfBoundsException when an index is outside {@code [0, N)}
     */
    public void gather(int[] indices, Tensor x, Tensor y) {
        gather(indices, null, x, y);
    }

    /**
     * Like {@link #gather(int[], Tensor, Tensor)}, mirroring sample {@code k} along its last dim (left-right for
     * images {@code [C, H, W]} or {@code [H, W]}) where {@code mirror[k]} is true.
     *
     * @param mirror one flag per index, or null for none
     * @throws IllegalArgumentException as the plain gather, for a {@code mirror} of another length, or for mirroring
     *                                  samples of rank below 2 (vectors have no left and right)
     */
    public void gather(int[] indices, boolean[] mirror, Tensor x, Tensor y) {
        Objects.requireNonNull(indices, "indices");
        Objects.requireNonNull(x, "x");
        if (mirror != null && mirror.length != indices.length) {
            throw new IllegalArgumentException(mirror.length + " mirror flags for " + indices.length + " indices");
        }
        if (mirror != null && sampleShape.length < 2) {
            throw new IllegalArgumentException("mirroring needs samples of rank >= 2 (images), these are "
                    + Arrays.toString(sampleShape));
        }
        int width = sampleShape.length == 0 ? 1 : (int) sampleShape[sampleShape.length - 1];
        long[] want = batchShape(indices.length);
        if (!Arrays.equals(want, x.shape()) || x.dtype() != DType.F32) {
            throw new IllegalArgumentException("batch tensor x " + x + " must be F32 " + Arrays.toString(want));
        }
        float[] buf = new float[Math.multiplyExact(indices.length, sampleSize)];
        int[] lab = y == null ? null : new int[indices.length];
        if (y != null) {
            requireLabels();
            if (y.rank() != 1 || y.shape(0) != indices.length || y.dtype() != DType.I32) {
                throw new IllegalArgumentException("label tensor y " + y + " must be I32 [" + indices.length + "]");
            }
        }
        for (int k = 0; k < indices.length; k++) {
            int i = Objects.checkIndex(indices[k], size);
            if (mirror != null && mirror[k]) {
                for (int row = 0; row < sampleSize; row += width) {
                    int from = i * sampleSize + row;
                    int to = k * sampleSize + row;
                    for (int c = 0; c < width; c++) {
                        buf[to + c] = data[from + width - 1 - c];
                    }
                }
            } else {
                System.arraycopy(data, i * sampleSize, buf, k * sampleSize, sampleSize);
            }
            if (lab != null) {
                lab[k] = labels[i];
            }
        }
        x.copyFrom(buf);
        if (y != null) {
            y.copyFrom(MemorySegment.ofArray(lab));
        }
    }

    /**
     * An endless, reproducible sequence of batches of {@code batchSize} samples: the samples of epoch
     * {@code e} are visited in the order of the Philox permutation {@code (seed, e)}; epochs are concatenated
     * and cut into consecutive batches, so every batch is full, every epoch visits every sample once, and
     * batch {@code k} depends only on {@code (seed, k)}.
     *
     * @throws IllegalArgumentException when {@code batchSize < 1} or the dataset is empty
     */
    public Batches batches(int batchSize, long seed) {
        return new Batches(this, batchSize, seed);
    }

    /** See {@link Dataset#batches}. Not thread-safe (it caches the current epoch's permutation). */
    public static final class Batches {

        private final Dataset data;
        private final int batchSize;
        private final long seed;
        private long step;
        private long cachedEpoch = -1;
        private int[] cachedPermutation;

        private Batches(Dataset data, int batchSize, long seed) {
            if (batchSize < 1) {
                throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
            }
            if (data.size == 0) {
                throw new IllegalArgumentException("cannot draw batches from an empty dataset");
            }
            this.data = data;
            this.batchSize = batchSize;
            this.seed = seed;
        }

        /** Samples per batch. */
        public int batchSize() {
            return batchSize;
        }

        /** The index of the batch {@link #next} returns next. */
        public long step() {
            return step;
        }

        /** Makes batch {@code step} the next one (to resume a run). */
        public void seek(long step) {
            if (step < 0) {
                throw new IllegalArgumentException("step must be >= 0, got " + step);
            }
            this.step = step;
        }

        /** The sample indices of batch {@code k}. */
        public int[] indices(long k) {
            if (k < 0) {
                throw new IllegalArgumentException("batch index must be >= 0, got " + k);
            }
            int n = data.size;
            int[] out = new int[batchSize];
            long p = Math.multiplyExact(k, (long) batchSize);
            for (int i = 0; i < batchSize; i++, p++) {
                long epoch = p / n;
                if (epoch != cachedEpoch) {
                    cachedPermutation = PhiloxShuffle.permutation(n, seed, epoch);
                    cachedEpoch = epoch;
                }
                out[i] = cachedPermutation[(int) (p % n)];
            }
            return out;
        }

        /**
         * Fills {@code x} ({@code [batchSize, ...sampleShape]} F32) and, when not null, {@code y}
         * ({@code [batchSize]} I32) with batch {@link #step()}, advances, and returns the batch's sample indices.
         *
         * @throws IllegalArgumentException as {@link Dataset#gather(int[], Tensor, Tensor)} for a tensor of the
         *                                  wrong shape or dtype
         * @throws IllegalStateException    when {@code y} is not null and the set is unlabelled
         */
        public int[] next(Tensor x, Tensor y) {
            int[] idx = indices(step);
            data.gather(idx, x, y);
            step++;
            return idx;
        }
    }

    private void requireLabels() {
        if (labels == null) {
            throw new IllegalStateException("this dataset has no labels");
        }
    }

    @Override
    public String toString() {
        return "Dataset[" + size + " x " + Arrays.toString(sampleShape)
                + (labels == null ? "" : ", " + numClasses + " classes") + "]";
    }
}
