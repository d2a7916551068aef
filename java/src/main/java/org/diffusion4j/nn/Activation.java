package org.diffusion4j.nn;

/**
 * Pointwise activations with a fused op ({@link NnOps#activation}) and its backward; formulas in {@link NnMath}.
 * The ordinal is part of the future C ABI (a CUDA kernel takes it), so the order is fixed.
 */
public enum Activation {
    /** {@code y = z}: a bias add alone. */
    IDENTITY,
    /** SiLU / swish {@code z·σ(z)} (Elfwing, Uchibe &amp; Doya 2018; PyTorch {@code nn.SiLU}). */
    SILU,
    /**
     * GELU, tanh approximation {@code 0.5·z·(1 + tanh(√(2/π)(z + 0.044715 z³)))} (Hendrycks &amp; Gimpel 2016,
     * §2; PyTorch {@code nn.GELU(approximate='tanh')}, used by the reference DiT's MLP).
     */
    GELU_TANH
}
