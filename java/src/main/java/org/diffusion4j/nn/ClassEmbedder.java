package org.diffusion4j.nn;

import org.diffusion4j.random.Philox;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * Class-label embedding with a learned null class for classifier-free guidance (Ho &amp; Salimans 2022, §3.2;
 * the reference DiT's {@code LabelEmbedder}): a table {@code embedding_table.weight [numClasses + 1, D]} whose last
 * row (index {@code numClasses}) is the "no label" embedding. In training each sample's label is replaced by the
 * null class with probability {@code dropProb}; the draw of sample {@code b} is
 * {@code Philox.uniform(seed, stream, b) <= dropProb} (uniforms lie in {@code (0, 1]}, so 0 never and 1 always
 * drops) — deterministic for a seed, independent of thread count and device. As in DiT the null row exists only
 * when {@code dropProb > 0}.
 */
public final class ClassEmbedder extends Module {

    private final int numClasses;
    private final double dropProb;
    private final Embedding table;

    /**
     * What backward needs: the table lookup (indices after dropping) and the output {@code [B, D]}.
     *
     * @param lookup the table lookup (the I32 indices {@code [B]} and the output {@code [B, D]})
     * @param labels the labels embedded, after any dropout ({@code numClasses} = null class); copied, and
     *               {@link #labels()} returns a copy, so a caller cannot change what the record holds
     */
    public record Cache(Embedding.Cache lookup, int[] labels) {

        /**
         * Copies {@code labels}.
         *
         * @throws NullPointerException when an argument is null
         */
        public Cache {
            Objects.requireNonNull(lookup, "lookup");
            labels = Objects.requireNonNull(labels, "labels").clone();
        }

        /** A copy of the labels embedded, after any dropout ({@code [B]}; {@code numClasses} = null class). */
        @Override
        public int[] labels() {
            return labels.clone();
        }

        /** The embeddings {@code [B, D]}. */
        public Tensor out() {
            return lookup.out();
        }
    }

    /**
     * @param numClasses number of real classes {@code ≥ 1}
     * @param dim        embedding size {@code D}
     * @param dropProb   label-drop probability in {@code [0, 1]}; a null row is added when {@code > 0} (the
     *                   {@code classDropProb} of {@link DiT.Config}, the {@code labelDropout} of training)
     * @throws IllegalArgumentException naming the bad value
     */
    public ClassEmbedder(NnOps ops, TensorScope scope, int numClasses, long dim, double dropProb) {
        Objects.requireNonNull(ops, "ops");
        if (numClasses < 1) {
            throw new IllegalArgumentException("ClassEmbedder needs numClasses >= 1, got " + numClasses);
        }
        if (!(dropProb >= 0 && dropProb <= 1)) {
            throw new IllegalArgumentException("class drop probability must be in [0, 1], got " + dropProb);
        }
        this.numClasses = numClasses;
        this.dropProb = dropProb;
        this.table = registerModule("embedding_table",
                new Embedding(ops, scope, numClasses + (dropProb > 0 ? 1 : 0), dim));
    }

    /** Number of real classes; also the index of the null class. */
    public int numClasses() {
        return numClasses;
    }

    /** Whether the table has the null row. */
    public boolean hasNullClass() {
        return dropProb > 0;
    }

    /** The drop probability. */
    public double dropProb() {
        return dropProb;
    }

    /** The table module ({@code embedding_table}). */
    public Embedding table() {
        return table;
    }

    /**
     * The labels after classifier-free-guidance dropout: label {@code b} becomes {@code numClasses} when
     * {@code Philox.uniform(seed, stream, b) <= dropProb}; labels already equal to {@code numClasses} stay.
     *
     * @param labels the labels {@code [B]}, each in {@code [0, numClasses)}, or {@code numClasses} when the null row
     *               exists; not modified
     * @param seed   the Philox key of the drop draws
     * @param stream the Philox stream (e.g. the training step), so that every step draws afresh
     * @return a new array with the dropped labels replaced by {@code numClasses}
     * @throws NullPointerException     when {@code labels} is null
     * @throws IllegalArgumentException naming the position and value of a label out of range
     */
    public int[] dropLabels(int[] labels, long seed, long stream) {
        int[] out = checkLabels(labels);
        if (dropProb > 0) {
            for (int b = 0; b < out.length; b++) {
                if (Philox.uniform(seed, stream, b) <= dropProb) {
                    out[b] = numClasses;
                }
            }
        }
        return out;
    }

    /**
     * Embeds labels as given (no dropout: evaluation, or sampling with {@code numClasses} as the unconditional
     * label).
     *
     * @param labels each in {@code [0, numClasses)}, or {@code numClasses} when the null row exists
     * @throws IllegalArgumentException naming the position and value of a bad label
     */
    public Cache forward(TensorScope scope, int[] labels) {
        return lookup(scope, checkLabels(labels));
    }

    /**
     * Embeds labels after training-time dropout ({@link #dropLabels}).
     *
     * @param scope  the scope of the outputs
     * @param labels as for {@link #dropLabels}
     * @param seed   the Philox key of the drop draws
     * @param stream the Philox stream
     * @return the cache; {@link Cache#out()} is {@code [B, D]}
     * @throws NullPointerException     when {@code labels} is null
     * @throws IllegalArgumentException naming the position and value of a label out of range
     */
    public Cache forwardTrain(TensorScope scope, int[] labels, long seed, long stream) {
        return lookup(scope, dropLabels(labels, seed, stream));
    }

    /** Adds {@code dy [B, D]} into the gradient rows of the labels used. */
    public void backward(Cache cache, Tensor dy) {
        Objects.requireNonNull(cache, "cache");
        table.backward(cache.lookup(), dy);
    }

    private Cache lookup(TensorScope scope, int[] labels) {
        var be = table.weight().value().backend();
        Tensor idx = be.empty(scope, DType.I32, labels.length);
        if (labels.length > 0) {
            idx.copyFrom(MemorySegment.ofArray(labels));
        }
        return new Cache(table.forward(scope, idx), labels);
    }

    private int[] checkLabels(int[] labels) {
        Objects.requireNonNull(labels, "labels");
        int max = hasNullClass() ? numClasses : numClasses - 1;
        for (int b = 0; b < labels.length; b++) {
            if (labels[b] < 0 || labels[b] > max) {
                throw new IllegalArgumentException("labels[" + b + "] = " + labels[b] + " is outside [0, " + max + "]"
                        + (hasNullClass() ? " (" + numClasses + " = null class)" : " (no null class: dropProb = 0)"));
            }
        }
        return labels.clone();
    }
}
