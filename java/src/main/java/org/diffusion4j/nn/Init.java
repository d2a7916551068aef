package org.diffusion4j.nn;

import org.diffusion4j.tensor.Tensor;

/**
 * Parameter initialisers drawn from the Philox stream {@code (seed, stream)} through the backend
 * ({@code rand}/{@code randn}), so a model initialises to the same values on every device and thread count.
 */
public final class Init {

    private Init() {
    }

    /** {@code U(−bound, bound]}: {@code (2u − 1)·bound} from Philox uniforms {@code u ∈ (0, 1]}. */
    public static void uniform(Tensor t, double bound, long seed, long stream) {
        if (!(bound >= 0 && Double.isFinite(bound))) {
            throw new IllegalArgumentException("uniform init bound must be finite and >= 0, got " + bound);
        }
        t.backend().rand(t, seed, stream);
        t.backend().scaleShift(t, (float) (2 * bound), (float) -bound, t);
    }

    /** {@code N(0, std²)} from Philox normals. */
    public static void normal(Tensor t, double std, long seed, long stream) {
        if (!(std >= 0 && Double.isFinite(std))) {
            throw new IllegalArgumentException("normal init std must be finite and >= 0, got " + std);
        }
        t.backend().randn(t, seed, stream);
        t.backend().scaleShift(t, (float) std, 0f, t);
    }

    /** Fills with {@code value}. */
    public static void constant(Tensor t, float value) {
        t.backend().fill(t, value);
    }

    /**
     * Xavier/Glorot uniform {@code U(−a, a)}, {@code a = √(6/(fanIn + fanOut))} (Glorot &amp; Bengio 2010, eq. 16;
     * PyTorch {@code xavier_uniform_}; the reference DiT's init of its linear weights).
     */
    public static void xavierUniform(Tensor t, long fanIn, long fanOut, long seed, long stream) {
        if (fanIn + fanOut <= 0) {
            throw new IllegalArgumentException("xavier init needs fanIn + fanOut > 0, got " + fanIn + " + " + fanOut);
        }
        uniform(t, Math.sqrt(6.0 / (fanIn + fanOut)), seed, stream);
    }

    /**
     * PyTorch's default {@code nn.Linear} init: weight and bias {@code U(−1/√in, 1/√in)} (kaiming-uniform with
     * {@code a = √5} gives the same bound). Weight from stream {@code stream}, bias from {@code stream + 1}.
     */
    public static void linearDefault(Linear l, long seed, long stream) {
        double bound = l.in() == 0 ? 0 : 1.0 / Math.sqrt(l.in());
        uniform(l.weight().value(), bound, seed, stream);
        if (l.bias() != null) {
            uniform(l.bias().value(), bound, seed, stream + 1);
        }
    }
}
