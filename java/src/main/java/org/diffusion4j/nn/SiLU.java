package org.diffusion4j.nn;

/** SiLU {@code x·σ(x)} as a layer (PyTorch {@code nn.SiLU}); see {@link NnMath} for the forward and backward. */
public final class SiLU extends PointwiseLayer {

    /** A SiLU layer computing with {@code ops}. */
    public SiLU(NnOps ops) {
        super(ops, Activation.SILU);
    }
}
