package org.diffusion4j.nn;

/**
 * GELU with the tanh approximation as a layer (PyTorch {@code nn.GELU(approximate='tanh')}); see {@link NnMath}.
 */
public final class Gelu extends PointwiseLayer {

    /** A GELU (tanh) layer computing with {@code ops}. */
    public Gelu(NnOps ops) {
        super(ops, Activation.GELU_TANH);
    }
}
