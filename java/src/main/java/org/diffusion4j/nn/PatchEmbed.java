package org.diffusion4j.nn;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.util.Objects;

/**
 * Patch embedding of the reference DiT ({@code x_embedder}, timm's {@code PatchEmbed}: a Conv2d with
 * kernel = stride = p, then flatten and transpose): {@link Patchify#patchify} in the
 * {@link PatchLayout#CHANNEL_FIRST} layout followed by a {@link Linear} whose weight keeps the Conv2d layout
 * {@code proj.weight [D, C, p, p]} (viewed as {@code [D, C·p·p]}) and {@code proj.bias [D]}.
 * {@code [B, C, H, W] → [B, T, D]}, {@code T = (H/p)(W/p)}.
 */
public final class PatchEmbed extends Module {

    private final NnOps ops;
    private final int patch;
    private final long channels;
    private final Linear proj;

    /**
     * What backward needs.
     *
     * @param imageShape the input's shape {@code [B, C, H, W]}, the shape of {@code dx}; copied, and
     *                   {@link #imageShape()} returns a copy, so a caller cannot change the backward's shape
     * @param proj       the projection's cache (its output is the tokens {@code [B, T, D]})
     */
    public record Cache(long[] imageShape, Linear.Cache proj) {

        /**
         * Copies {@code imageShape}.
         *
         * @throws NullPointerException when an argument is null
         */
        public Cache {
            imageShape = Objects.requireNonNull(imageShape, "imageShape").clone();
            Objects.requireNonNull(proj, "proj");
        }

        /** A copy of the input's shape {@code [B, C, H, W]}. */
        @Override
        public long[] imageShape() {
            return imageShape.clone();
        }

        /** Tokens {@code [B, T, D]}. */
        public Tensor out() {
            return proj.out();
        }
    }

    /**
     * @param channels {@code C ≥ 1}
     * @param patch    {@code p ≥ 1}
     * @param dim      token size {@code D ≥ 1}
     * @throws IllegalArgumentException naming the bad value
     */
    public PatchEmbed(NnOps ops, TensorScope scope, long channels, int patch, long dim) {
        this.ops = Objects.requireNonNull(ops, "ops");
        if (channels < 1 || patch < 1 || dim < 1) {
            throw new IllegalArgumentException("PatchEmbed needs channels, patch and dim >= 1, got " + channels + ", "
                    + patch + ", " + dim);
        }
        this.patch = patch;
        this.channels = channels;
        this.proj = registerModule("proj", new Linear(ops, scope, channels * patch * patch, dim, true,
                new long[] {dim, channels, patch, patch}));
    }

    /** The projection ({@code proj}). */
    public Linear proj() {
        return proj;
    }

    /** {@code p}. */
    public int patch() {
        return patch;
    }

    /**
     * Embeds {@code x [B, C, H, W]} as tokens {@code [B, T, D]}.
     *
     * @throws IllegalArgumentException when {@code x} is not {@code [B, C, H, W]} with {@code p | H, W}
     */
    public Cache forward(TensorScope scope, Tensor x) {
        Backend be = ops.backend();
        NnOps.checkTensor(be, "x", x, false);
        long[] ps = Patchify.patchShape(x.shape(), patch);
        if (x.shape(1) != channels) {
            throw new IllegalArgumentException("x " + x + " must have " + channels + " channels");
        }
        Tensor patches = be.empty(scope, DType.F32, ps);
        Patchify.patchify(be, x, patch, PatchLayout.CHANNEL_FIRST, patches);
        return new Cache(x.shape(), proj.forward(scope, patches));
    }

    /**
     * Accumulates the projection's gradients; returns {@code dx [B, C, H, W]} when {@code inputGrad}, else null.
     *
     * @param scope     the scope of {@code dx}
     * @param cache     this layer's {@link #forward} cache
     * @param dy        upstream gradient of the tokens, F32 {@code [B, T, D]}
     * @param inputGrad whether to compute {@code dx}
     * @throws NullPointerException     when {@code cache} is null
     * @throws IllegalArgumentException when {@code dy} is not an F32 contiguous {@code [B, T, D]} tensor on this
     *                                  layer's backend
     */
    public Tensor backward(TensorScope scope, Cache cache, Tensor dy, boolean inputGrad) {
        Objects.requireNonNull(cache, "cache");
        Tensor dp = proj.backward(scope, cache.proj(), dy, inputGrad);
        if (!inputGrad) {
            return null;
        }
        Backend be = ops.backend();
        Tensor dx = be.empty(scope, DType.F32, cache.imageShape());
        Patchify.unpatchify(be, dp, patch, PatchLayout.CHANNEL_FIRST, dx);
        return dx;
    }
}
