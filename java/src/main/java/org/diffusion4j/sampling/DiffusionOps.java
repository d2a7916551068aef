package org.diffusion4j.sampling;

import org.diffusion4j.cpu.CpuDiffusionOps;
import org.diffusion4j.cuda.CudaBackend;
import org.diffusion4j.cuda.CudaDiffusionOps;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Device;
import org.diffusion4j.tensor.Shape;
import org.diffusion4j.tensor.Tensor;

/**
 * The fused diffusion ops: forward noising, one sampler-step pass with classifier-free guidance, and noise
 * injection — each one pass over the batch on the CPU and one kernel on CUDA. The per-element arithmetic is
 * {@link FusedMath}; coefficients come per sample from the host ({@link NoisingCoefficients}, {@link FusedStep}).
 *
 * <p><b>Layout.</b> Every tensor is F32, contiguous, alive, on {@link #backend()}'s device, of shape
 * {@code [B, ...]} with {@code B ≥ 1} samples of {@code n = numel/B} elements each; all tensors of one call share
 * that shape. Outputs may alias inputs of the same role exactly ({@code xOut = x} or {@code xIn},
 * {@code histOut = hist}, {@code xt = x0}, {@code out = x}); every other pair of an output and another tensor of the
 * call must be disjoint in memory. A violation throws {@link IllegalArgumentException}
 * (or {@link IllegalStateException} for a closed scope) naming the argument, before memory is touched.
 *
 * <p><b>Noise.</b> Gaussian noise is generated inside the op from {@link NoiseSeeds}, identical on every
 * backend and for every thread count, and independent of how samples are batched.
 *
 * <p>Implementations: {@link CpuDiffusionOps} (one pass, multithreaded), {@link CudaDiffusionOps} (one kernel
 * per op) and {@link ComposedDiffusionOps} (the same computation from unfused {@link Backend} ops: the
 * reference in tests and the unfused twin in benchmarks). {@link #forBackend} picks one.
 */
public interface DiffusionOps extends AutoCloseable {

    /** The backend whose tensors this instance operates on. */
    Backend backend();

    /**
     * Fused forward noising (Ho et al. 2020, eq. 4 and Algorithm 1, generalised to {@code x_t = α x0 + σ ε}):
     * per sample {@code b} and element {@code j},
     * {@code ε = z(b, j, draw 0)} [{@code + strength·δ(b, c)} with {@code δ} from draw 2 at index
     * {@code id(b)·C + c}, {@code c = j / (n/C)} the channel of dim 1 (Guttenberg 2023, offset noise)],
     * {@code xt = a_b x0 + s_b ε}, {@code target = c_b x0 + d_b ε}, and {@code eps = ε} when asked.
     *
     * @param k              per-sample coefficients ({@code B} each)
     * @param seeds          noise seeds of the {@code B} samples
     * @param offsetStrength offset-noise strength {@code ≥ 0} (0: off); needs {@code x0} of rank {@code ≥ 2}
     * @param x0             clean data {@code [B, ...]}
     * @param xt             output {@code x_t} {@code [B, ...]}
     * @param target         output target {@code [B, ...]}
     * @param eps            output noise {@code [B, ...]}, or null
     * @throws IllegalArgumentException when a tensor is not F32, contiguous and of {@code x0}'s shape on this
     *                                  backend, outputs overlap each other or {@code x0}, the batch differs from
     *                                  the coefficients' or the seeds', or {@code offsetStrength} is negative,
     *                                  not finite or set for an {@code x0} of rank below 2
     * @throws IllegalStateException    when the backend or a tensor's scope is closed
     */
    void forwardNoise(NoisingCoefficients k, NoiseSeeds seeds, double offsetStrength, Tensor x0, Tensor xt,
                      Tensor target, Tensor eps);

    /**
     * One fused sampler-step pass (see {@link FusedMath}): guidance of {@code cond} and {@code uncond} with
     * optional per-sample rescale, conversion to the working prediction, the update of {@code x} and the new
     * history, reading each operand once (twice for {@code cond}/{@code uncond} when rescaling: phase 1 takes
     * per-sample statistics).
     *
     * @param p       coefficients and guidance ({@code B} samples)
     * @param x       state {@code [B, ...]} (read where {@code ax ≠ 0})
     * @param xIn     the model input the outputs belong to (may be {@code x}); read where {@code ai ≠ 0} or the
     *                history is written
     * @param cond    conditional (or only) model output {@code [B, ...]}, x's shape
     * @param uncond  unconditional model output {@code [B, ...]}, or null (then {@code g = cond})
     * @param hist    history {@code [B, ...]} read where {@code ah ≠ 0}, or null when no sample reads it
     * @param xOut    output state {@code [B, ...]} (may be {@code x})
     * @param histOut output history {@code D} {@code [B, ...]}, or null (may be {@code hist})
     * @throws IllegalArgumentException when a tensor is not F32, contiguous and of x's shape on this backend, the
     *                                  batch differs from {@code p}'s, an output overlaps an input other than the
     *                                  aliases allowed above, or the step reads a null history
     * @throws IllegalStateException    when the backend or a tensor's scope is closed
     */
    void samplerStep(FusedStep p, Tensor x, Tensor xIn, Tensor cond, Tensor uncond, Tensor hist, Tensor xOut,
                     Tensor histOut);

    /**
     * Noise injection {@code out = scale_b·x + noiseScale_b·z(b, j, draw)} (e.g. Karras et al. 2022, Algorithm 2,
     * line 6; a sampling run's initial noise with {@code scale = 0}). {@code x} is not read where
     * {@code scale_b = 0}.
     *
     * @param scale      {@code B} per-sample factors of {@code x}, each finite in float32
     * @param noiseScale {@code B} per-sample factors of the noise, each finite in float32
     * @param seeds      noise seeds of the {@code B} samples
     * @param draw       which of the samples' independent draws ({@code k} of {@link NoiseSeeds}'s {@code z(b, j, k)})
     * @param x          input {@code [B, ...]} F32
     * @param out        output of x's shape, may be {@code x}
     * @throws IllegalArgumentException for arrays of another length than the batch, a coefficient that is not
     *                                  finite in float32, or a tensor of another shape, dtype or backend
     * @throws IllegalStateException    when the backend or a tensor's scope is closed
     */
    void scaleAddNoise(double[] scale, double[] noiseScale, NoiseSeeds seeds, long draw, Tensor x, Tensor out);

    /** Releases resources (worker threads); the backend stays open. */
    @Override
    default void close() {
    }

    /**
     * The fused ops for {@code backend}: {@link CpuDiffusionOps} on the CPU, {@link CudaDiffusionOps} (one
     * kernel per op) on CUDA, {@link ComposedDiffusionOps} for any other backend.
     */
    static DiffusionOps forBackend(Backend backend) {
        if (backend.device().type() == Device.Type.CPU) {
            return new CpuDiffusionOps(backend);
        }
        return backend instanceof CudaBackend ? new CudaDiffusionOps(backend) : new ComposedDiffusionOps(backend);
    }

    // ---------------------------------------------------------------- argument checks for implementations

    /**
     * Checks a tensor argument of a fused op: F32, contiguous, alive, on {@code backend}, of {@code like}'s shape.
     * Null is allowed only when {@code optional}.
     */
    static void checkTensor(Backend backend, String name, Tensor t, Tensor like, boolean optional) {
        if (t == null) {
            if (optional) {
                return;
            }
            throw new IllegalArgumentException(name + " must not be null");
        }
        Shape.requireOn(name, t, backend);
        Shape.requireDType(name, t, DType.F32);
        Shape.requireContiguous(name, t);
        if (like != null) {
            Shape.requireSameShape(name, t, "x", like);
        }
    }

    private static void disjointIfPresent(String op, String aName, Tensor a, String bName, Tensor b) {
        if (b != null) {
            Shape.requireDisjoint(op, aName, a, bName, b);
        }
    }

    /** The batch size {@code B = shape(0)} of {@code x}, checked against {@code expectedBatch}. */
    static int batchOf(String name, Tensor x, int expectedBatch) {
        if (x.rank() < 1) {
            throw new IllegalArgumentException(name + " " + x + " needs a leading batch dim [B, ...]");
        }
        long b = x.shape(0);
        if (b != expectedBatch) {
            throw new IllegalArgumentException(name + " " + x + " has batch " + b + " but the coefficients are for "
                    + expectedBatch + " samples");
        }
        return (int) b;
    }

    /** Checks every argument of {@link #samplerStep}; returns the elements per sample {@code n}. */
    static long checkStep(Backend backend, FusedStep p, Tensor x, Tensor xIn, Tensor cond, Tensor uncond, Tensor hist,
                          Tensor xOut, Tensor histOut) {
        checkTensor(backend, "x", x, null, false);
        checkTensor(backend, "xIn", xIn, x, false);
        checkTensor(backend, "cond", cond, x, false);
        checkTensor(backend, "uncond", uncond, x, true);
        checkTensor(backend, "hist", hist, x, true);
        checkTensor(backend, "xOut", xOut, x, false);
        checkTensor(backend, "histOut", histOut, x, true);
        int batch = batchOf("x", x, p.batch());
        String op = "samplerStep";
        Shape.requireSameOrDisjoint(op, "xOut", xOut, "x", x);
        Shape.requireSameOrDisjoint(op, "xOut", xOut, "xIn", xIn);
        Shape.requireDisjoint(op, "xOut", xOut, "cond", cond);
        disjointIfPresent(op, "xOut", xOut, "uncond", uncond);
        disjointIfPresent(op, "xOut", xOut, "hist", hist);
        if (histOut != null) {
            Shape.requireDisjoint(op, "histOut", histOut, "xOut", xOut);
            Shape.requireDisjoint(op, "histOut", histOut, "x", x);
            Shape.requireDisjoint(op, "histOut", histOut, "xIn", xIn);
            Shape.requireDisjoint(op, "histOut", histOut, "cond", cond);
            disjointIfPresent(op, "histOut", histOut, "uncond", uncond);
            if (hist != null) {
                Shape.requireSameOrDisjoint(op, "histOut", histOut, "hist", hist);
            }
        }
        if (hist == null && p.readsHistory()) {
            throw new IllegalArgumentException("the step reads the history (ah != 0) but hist is null");
        }
        return batch == 0 ? 0 : x.numel() / batch;
    }

    /** Checks every argument of {@link #forwardNoise}; returns the elements per sample {@code n}. */
    static long checkNoising(Backend backend, NoisingCoefficients k, NoiseSeeds seeds, double offsetStrength,
                             Tensor x0, Tensor xt, Tensor target, Tensor eps) {
        checkTensor(backend, "x0", x0, null, false);
        checkTensor(backend, "xt", xt, x0, false);
        checkTensor(backend, "target", target, x0, false);
        checkTensor(backend, "eps", eps, x0, true);
        int batch = batchOf("x0", x0, k.batch());
        String op = "forwardNoise";
        Shape.requireSameOrDisjoint(op, "xt", xt, "x0", x0);
        Shape.requireDisjoint(op, "target", target, "x0", x0);
        Shape.requireDisjoint(op, "target", target, "xt", xt);
        if (eps != null) {
            Shape.requireDisjoint(op, "eps", eps, "x0", x0);
            Shape.requireDisjoint(op, "eps", eps, "xt", xt);
            Shape.requireDisjoint(op, "eps", eps, "target", target);
        }
        seeds.requireSize(batch);
        if (!(offsetStrength >= 0 && offsetStrength < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("offset-noise strength must be finite and >= 0, got " + offsetStrength);
        }
        if (offsetStrength > 0 && x0.rank() < 2) {
            throw new IllegalArgumentException("offset noise needs x0 [B, C, ...] of rank >= 2, got " + x0);
        }
        return batch == 0 ? 0 : x0.numel() / batch;
    }

    /** Checks every argument of {@link #scaleAddNoise}; returns the elements per sample {@code n}. */
    static long checkNoise(Backend backend, double[] scale, double[] noiseScale, NoiseSeeds seeds, Tensor x, Tensor out) {
        checkTensor(backend, "x", x, null, false);
        checkTensor(backend, "out", out, x, false);
        int batch = batchOf("x", x, scale.length);
        Shape.requireSameOrDisjoint("scaleAddNoise", "out", out, "x", x);
        if (noiseScale.length != batch) {
            throw new IllegalArgumentException("noiseScale has " + noiseScale.length + " values for " + batch
                    + " samples");
        }
        for (int b = 0; b < batch; b++) {
            if (!(Math.abs(scale[b]) <= Float.MAX_VALUE) || !(Math.abs(noiseScale[b]) <= Float.MAX_VALUE)) {
                throw new IllegalArgumentException("noise-injection coefficients of sample " + b
                        + " are not finite in float32: " + scale[b] + ", " + noiseScale[b]);
            }
        }
        seeds.requireSize(batch);
        return batch == 0 ? 0 : x.numel() / batch;
    }
}
