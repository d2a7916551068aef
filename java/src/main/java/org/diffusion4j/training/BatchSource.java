package org.diffusion4j.training;

import org.diffusion4j.io.Dataset;
import org.diffusion4j.tensor.Tensor;

import java.util.Objects;

/**
 * Deterministic, resumable batches of a {@link Dataset} for training: batch {@code k} holds the samples at
 * positions {@code k·B … k·B + B − 1} of the endless sequence that visits epoch {@code e} in the order of the
 * Philox permutation {@code (seed, stream e)} ({@link Dataset#batches}, {@link org.diffusion4j.io.PhiloxShuffle}).
 * A batch is a pure function of {@code (seed, k)}, so resuming at step {@code k} needs nothing but {@code k}.
 *
 * <p>Not thread-safe (the current epoch's permutation is cached).
 */
public final class BatchSource {

    /**
     * One batch; the arrays are copied in and out.
     *
     * @param indices the sample indices into the dataset, {@code [B]}
     * @param labels  their labels, {@code [B]}, for a labelled dataset; else null
     */
    public record Batch(int[] indices, int[] labels) {

        /**
         * Copies the arrays.
         *
         * @throws IllegalArgumentException when {@code labels} is not null and has another length than
         *                                  {@code indices}
         * @throws NullPointerException     when {@code indices} is null
         */
        public Batch {
            indices = Objects.requireNonNull(indices, "indices").clone();
            if (labels != null) {
                if (labels.length != indices.length) {
                    throw new IllegalArgumentException("a batch of " + indices.length + " indices got "
                            + labels.length + " labels");
                }
                labels = labels.clone();
            }
        }

        /** A copy of the sample indices. */
        @Override
        public int[] indices() {
            return indices.clone();
        }

        /** A copy of the labels, or null for an unlabelled dataset. */
        @Override
        public int[] labels() {
            return labels == null ? null : labels.clone();
        }
    }

    private final Dataset data;
    private final Dataset.Batches batches;

    /**
     * Batches of {@code batchSize} from {@code data} for {@code seed}.
     *
     * @throws IllegalArgumentException when {@code batchSize < 1} or the dataset is empty
     */
    public BatchSource(Dataset data, int batchSize, long seed) {
        this.data = Objects.requireNonNull(data, "data");
        this.batches = data.batches(batchSize, seed);
    }

    /** The dataset. */
    public Dataset dataset() {
        return data;
    }

    /** Samples per batch {@code B}. */
    public int batchSize() {
        return batches.batchSize();
    }

    /**
     * Which samples batch {@code k ≥ 0} holds.
     *
     * @throws IllegalArgumentException when {@code k < 0}
     * @throws ArithmeticException      when {@code k·B} overflows a {@code long}
     */
    public Batch batch(long k) {
        int[] idx = batches.indices(k);
        int[] labels = null;
        if (data.hasLabels()) {
            labels = new int[idx.length];
            for (int i = 0; i < idx.length; i++) {
                labels[i] = data.label(idx[i]);
            }
        }
        return new Batch(idx, labels);
    }

    /**
     * Copies batch {@code k} into {@code x} ({@code [B, ...sampleShape]} F32 contiguous, any backend).
     *
     * @throws IllegalArgumentException when {@code k < 0} or {@code x} has the wrong shape or dtype
     */
    public Batch load(long k, Tensor x) {
        return load(k, x, null);
    }

    /**
     * Like {@link #load(long, Tensor)}, mirroring sample {@code b} left-right where {@code mirror[b]}
     * ({@link Dataset#gather(int[], boolean[], Tensor, Tensor)}).
     *
     * @param mirror one flag per sample of the batch, or null
     * @throws IllegalArgumentException when {@code k < 0}, {@code x} has the wrong shape or dtype, {@code mirror} has
     *                                  another length than the batch, or a mirrored sample has rank below 2
     */
    public Batch load(long k, Tensor x, boolean[] mirror) {
        Batch b = batch(k);
        data.gather(b.indices(), mirror, x, null);
        return b;
    }
}
