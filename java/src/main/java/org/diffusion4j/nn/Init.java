package org.diffusion4j.nn;

import org.diffusion4j.tensor.Tensor;

/**
 * Parameter initialisers drawn from the Philox stream {@code (seed, stream)} through the backend
 * ({@code rand}/{@code randn}), so a model initialises to the same values on every device and thread count.
 */
public final class Init {

    private Init() {
    }

    /**
     * {@code U(−bound, bound]}: {@code (2u − 1)·bound} from Philox uniforms {@code u ∈ (0, 1]}.
     *
     * @param t      the tensor to fill: F32, contiguous, overwritten
     * @param seed   the Philox key
     * @param stream the Philox stream (one per tensor, so that tensors draw independent values)
     * @param bound  half-width, finite, {@code ≥ 0}
     * @throws IllegalArgumentException for a negative or non-finite {@code bound}, or a {@code t} that is not F32
     *                                  and contiguous
     * @throws IllegalStateException    when {@code t}'s scope is closed
     */
    public static void uniform(Tensor t, double bound, long seed, long stream) {
        if (!(bound >= 0 && Double.isFinite(bound))) {
            throw new IllegalArgumentException("uniform init bound must be finite and >= 0, got " + bound);
        }
        t.backend().rand(t, seed, stream);
        t.backend().scaleShift(t, (float) (2 * bound), (float) -bound, t);
    }

    /**
     * {@code N(0, std²)} from Philox normals.
     *
     * @param t      the tensor to fill: F32, contiguous, overwritten
     * @param seed   the Philox key
     * @param stream the Philox stream (one per tensor, so that tensors draw independent values)
     * @param std    standard deviation, finite, {@code ≥ 0}
     * @throws IllegalArgumentException for a negative or non-finite {@code std}, or a {@code t} that is not F32 and
     *                                  contiguous
     * @throws IllegalStateException    when {@code t}'s scope is closed
     */
    public static void normal(Tensor t, double std, long seed, long stream) {
        if (!(std >= 0 && Double.isFinite(std))) {
            throw new IllegalArgumentException("normal init std must be finite and >= 0, got " + std);
        }
        t.backend().randn(t, seed, stream);
        t.backend().scaleShift(t, (float) std, 0f, t);
    }

    /**
     * Fills with {@code value} ({@link org.diffusion4j.tensor.Backend#fill}).
     *
     * @param t contiguous; F32, BF16 or F16 for any value, I32 only for 0
     * @throws IllegalArgumentException for an I32 {@code t} with {@code value ≠ 0}, or a {@code t} that is not
     *                                  contiguous
     * @throws IllegalStateException    when {@code t}'s scope is closed
     */
    public static void constant(Tensor t, float value) {
        t.backend().fill(t, value);
    }

    /**
     * Xavier/Glorot uniform {@code U(−a, a)}, {@code a = √(6/(fanIn + fanOut))} (Glorot &amp; Bengio 2010, eq. 16;
     * PyTorch {@code xavier_uniform_}; the reference DiT's init of its linear weights).
     *
     * @param t      the tensor to fill: F32, contiguous, overwritten
     * @param seed   the Philox key
     * @param stream the Philox stream (one per tensor, so that tensors draw independent values)
     * @param fanIn  input features {@code ≥ 0}
     * @param fanOut output features {@code ≥ 0}; {@code fanIn + fanOut ≥ 1}
     * @throws IllegalArgumentException for a negative fan, a zero sum, or a {@code t} that is not F32 and contiguous
     * @throws IllegalStateException    when {@code t}'s scope is closed
     */
    public static void xavierUniform(Tensor t, long fanIn, long fanOut, long seed, long stream) {
        if (fanIn < 0 || fanOut < 0 || fanIn + fanOut <= 0) {
            throw new IllegalArgumentException("xavier init needs fanIn, fanOut >= 0 and fanIn + fanOut > 0, got "
                    + fanIn + " + " + fanOut);
        }
        uniform(t, Math.sqrt(6.0 / (fanIn + fanOut)), seed, stream);
    }

    /**
     * PyTorch's default {@code nn.Linear} init ({@code Linear.reset_parameters}): weight and bias
     * {@code U(−1/√in, 1/√in)}. PyTorch writes the weight's as {@code kaiming_uniform_(a = √5)} (He et al. 2015,
     * §2.2), bound {@code gain·√(3/in)} with {@code gain = √(2/(1 + a²)) = √(1/3)}, which is the same bound; a layer
     * with {@code in = 0} gets bound 0. Weight from stream {@code stream}, bias from {@code stream + 1}.
     *
     * @throws NullPointerException  when {@code l} is null
     * @throws IllegalStateException when the layer's scope is closed
     */
    public static void linearDefault(Linear l, long seed, long stream) {
        double bound = l.in() == 0 ? 0 : 1.0 / Math.sqrt(l.in());
        uniform(l.weight().value(), bound, seed, stream);
        if (l.bias() != null) {
            uniform(l.bias().value(), bound, seed, stream + 1);
        }
    }
}
