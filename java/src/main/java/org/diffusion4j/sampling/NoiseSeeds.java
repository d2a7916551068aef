package org.diffusion4j.sampling;

import org.diffusion4j.random.Philox;

import java.util.Arrays;
import java.util.Objects;

/**
 * Where each sample of a batch draws its Gaussian noise from, so that <b>the noise a sample sees does not depend
 * on the batch it is in</b> (its position, the batch size, or how a batch is split).
 *
 * <p>Sample {@code b} has a Philox key {@code key(b)} and a global id {@code id(b)}. Element {@code j} (row-major
 * within the sample, {@code 0 ≤ j < n}, {@code n} the elements per sample) of noise draw {@code k} is
 * <pre>
 *   z(b, j, k) = Philox.normal(key(b), stream + k, id(b)·n + j)
 * </pre>
 * (unsigned 64-bit arithmetic). With one key for the whole batch and ids {@code 0 … B−1} ({@link #batch}), draw 0
 * of a contiguous {@code [B, ...]} tensor is exactly {@code backend.randn(out, seed, stream)}; splitting that batch
 * into parts with ids {@code 0 … b−1} and {@code b … B−1} reproduces the same numbers. With one key per sample
 * and id 0 ({@link #perSample}) every sample has its own generator, like a list of per-image generators.
 *
 * <p>Draws used by this library: forward noising uses draw 0 for {@code ε}, draw 1 (uniform, index {@code id(b)})
 * for an in-op time {@code t}, draw 2 (index {@code id(b)·C + c}) for offset noise; a sampling run uses draw 0
 * for its initial noise and draw {@code i + 1} for the noise of step {@code i} (and, when inpainting, draws
 * {@code DRAW_INPAINT + j}). A run therefore consumes streams {@code stream … stream + N}; give independent runs
 * different keys, or streams further apart than their step counts.
 */
public final class NoiseSeeds {

    /** Draw index of a sampling run's initial noise and of forward noising's {@code ε}. */
    public static final long DRAW_INITIAL = 0;
    /** Draw index of forward noising's in-op time. */
    public static final long DRAW_TIME = 1;
    /** Draw index of forward noising's offset noise. */
    public static final long DRAW_OFFSET = 2;
    /**
     * First draw index of inpainting's noise ({@link SamplerContext.Builder#inpaint}): the known data noised to
     * level {@code j} of a grid uses draw {@code DRAW_INPAINT + j}, far above the draws {@code 0 … N} of a sampling
     * run.
     */
    public static final long DRAW_INPAINT = 1L << 32;

    /**
     * The stream of the command-line tool's sampling ({@code sample}, {@code eval}, the training previews): sample
     * {@code i} of {@code --seed S} draws from {@code batch(S, SAMPLE_STREAM, i, …)}, so a Java loop with these
     * seeds, the same model, grid, sampler, labels and batch reproduces the tool's samples bit for bit.
     */
    public static final long SAMPLE_STREAM = 1L << 40;

    private final long[] keys;
    private final long[] ids;
    private final long stream;

    private NoiseSeeds(long[] keys, long[] ids, long stream) {
        if (keys.length != ids.length) {
            throw new IllegalArgumentException("need one key and one id per sample, got " + keys.length + " keys and "
                    + ids.length + " ids");
        }
        this.keys = keys;
        this.ids = ids;
        this.stream = stream;
    }

    /**
     * One key {@code seed} for all samples, ids {@code firstSampleId … firstSampleId + batch − 1}: sample
     * {@code b} of this batch is global sample {@code firstSampleId + b}.
     *
     * @throws IllegalArgumentException for {@code batch < 0}
     */
    public static NoiseSeeds batch(long seed, long stream, long firstSampleId, int batch) {
        if (batch < 0) {
            throw new IllegalArgumentException("batch must be >= 0, got " + batch);
        }
        long[] k = new long[batch];
        long[] id = new long[batch];
        Arrays.fill(k, seed);
        for (int b = 0; b < batch; b++) {
            id[b] = firstSampleId + b;
        }
        return new NoiseSeeds(k, id, stream);
    }

    /** One Philox key per sample ({@code seeds[b]}), all ids 0, streams from {@code stream}. */
    public static NoiseSeeds perSample(long stream, long... seeds) {
        return new NoiseSeeds(seeds.clone(), new long[seeds.length], stream);
    }

    /**
     * Explicit keys and ids (same length); both copied.
     *
     * @param keys   one Philox key per sample
     * @param ids    one global sample id per sample
     * @param stream the base stream (draw {@code k} uses {@code stream + k})
     * @throws NullPointerException     for a null array
     * @throws IllegalArgumentException when {@code keys} and {@code ids} differ in length
     */
    public static NoiseSeeds of(long[] keys, long[] ids, long stream) {
        return new NoiseSeeds(keys.clone(), ids.clone(), stream);
    }

    /** Number of samples. */
    public int size() {
        return keys.length;
    }

    /**
     * Philox key of sample {@code b}.
     *
     * @throws ArrayIndexOutOfBoundsException for {@code b} outside {@code [0, size())}
     */
    public long key(int b) {
        return keys[b];
    }

    /**
     * Global id of sample {@code b}.
     *
     * @throws ArrayIndexOutOfBoundsException for {@code b} outside {@code [0, size())}
     */
    public long id(int b) {
        return ids[b];
    }

    /** The base stream; draw {@code k} uses stream {@code stream + k}. */
    public long stream() {
        return stream;
    }

    /** Philox stream of draw {@code k}: {@code stream + k}. */
    public long streamOf(long draw) {
        return stream + draw;
    }

    /** Philox index of element {@code j} of sample {@code b} with {@code n} elements per sample: {@code id(b)·n + j}. */
    public long index(int b, long n, long j) {
        return ids[b] * n + j;
    }

    /**
     * {@code z(b, j, k)} of the class notes. Note the argument order, which differs from the formula's.
     *
     * @param b    the sample, {@code [0, size())}
     * @param n    elements per sample
     * @param draw the draw {@code k} (0: initial noise; the built-in samplers use {@code i + 1} for step {@code i})
     * @param j    the element within the sample, {@code [0, n)}
     * @throws ArrayIndexOutOfBoundsException for {@code b} outside {@code [0, size())}
     */
    public float normal(int b, long n, long draw, long j) {
        return Philox.normal(keys[b], stream + draw, ids[b] * n + j);
    }

    /**
     * Samples {@code [from, to)} of this batch, keeping their keys and ids (so they see the same noise).
     *
     * @throws IndexOutOfBoundsException unless {@code 0 ≤ from ≤ to ≤ size()}
     */
    public NoiseSeeds slice(int from, int to) {
        Objects.checkFromToIndex(from, to, keys.length);
        return new NoiseSeeds(Arrays.copyOfRange(keys, from, to), Arrays.copyOfRange(ids, from, to), stream);
    }

    /** @throws IllegalArgumentException unless this holds exactly {@code batch} samples */
    public NoiseSeeds requireSize(int batch) {
        if (keys.length != batch) {
            throw new IllegalArgumentException("noise seeds hold " + keys.length + " samples, the batch has " + batch);
        }
        return this;
    }

    @Override
    public String toString() {
        return "NoiseSeeds[stream=" + stream + ", keys=" + Arrays.toString(keys) + ", ids=" + Arrays.toString(ids) + "]";
    }
}
