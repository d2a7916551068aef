/**
 * Attention: scaled dot-product attention as an op with a forward and a backward ({@link
 * org.diffusion4j.nn.attention.AttentionOps}; fused on the CPU by {@link org.diffusion4j.cpu.CpuAttention},
 * FlashAttention-2 tiles over OpenBLAS; fused FlashAttention-2 kernels on CUDA by {@link
 * org.diffusion4j.cuda.CudaAttention}; composed from generic Backend ops by {@link
 * org.diffusion4j.nn.attention.ComposedAttention} elsewhere), its scalar arithmetic ({@link
 * org.diffusion4j.nn.attention.AttentionMath}, the formulas the CUDA kernels mirror in {@code attention_math.cuh}),
 * and the multi-head self-attention
 * layer of DiT/timm ({@link org.diffusion4j.nn.attention.MultiHeadSelfAttention}, parameters {@code qkv.weight},
 * {@code qkv.bias}, {@code proj.weight}, {@code proj.bias}).
 *
 * <p>Layout everywhere: {@code q [B, H, Tq, Dh]}, {@code k, v [B, H, Tk, Dh]}, {@code out [B, H, Tq, Dh]},
 * {@code lse [B, H, Tq]} (natural log-sum-exp of the scaled scores), F32, contiguous.
 */
package org.diffusion4j.nn.attention;
