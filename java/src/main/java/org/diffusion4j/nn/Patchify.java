package org.diffusion4j.nn;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.Shape;
import org.diffusion4j.tensor.Tensor;

import java.util.Objects;

/**
 * Patchify {@code [B, C, H, W] → [B, T, C·p·p]} and unpatchify back (Dosovitskiy et al. 2021, §3.1; Peebles &amp;
 * Xie 2023, §3.2). Tokens are the {@code (H/p)·(W/p)} non-overlapping {@code p×p} patches in row-major order of
 * the patch grid (token {@code u·(W/p) + w} is the patch at row {@code u}, column {@code w}); within a token the
 * values follow a {@link PatchLayout}. Both are permutations, done as one strided copy
 * ({@link Backend#copy} of a permuted view) on any backend; each is the other's backward (the gradient of a
 * permutation is the inverse permutation).
 *
 * <p>Index map: {@code x[b, c, u·p + i, w·p + j]} is element {@code [b, u·(W/p) + w, k]} with
 * {@code k = (c·p + i)·p + j} ({@link PatchLayout#CHANNEL_FIRST}) or {@code k = (i·p + j)·C + c}
 * ({@link PatchLayout#CHANNEL_LAST}).
 */
public final class Patchify {

    private Patchify() {
    }

    /**
     * The patch shape {@code [B, T, C·p·p]} of an image batch shape {@code [B, C, H, W]}.
     *
     * @throws IllegalArgumentException when the shape is not rank 4, {@code p < 1} or {@code p} does not divide
     *                                  {@code H} and {@code W}
     */
    public static long[] patchShape(long[] image, int p) {
        if (image.length != 4) {
            throw new IllegalArgumentException("images must be [B, C, H, W], got rank " + image.length);
        }
        if (p < 1) {
            throw new IllegalArgumentException("patch size must be >= 1, got " + p);
        }
        if (image[2] % p != 0 || image[3] % p != 0) {
            throw new IllegalArgumentException("patch size " + p + " must divide H = " + image[2] + " and W = "
                    + image[3]);
        }
        return new long[] {image[0], (image[2] / p) * (image[3] / p), image[1] * p * p};
    }

    /**
     * {@code out = patchify(x)}.
     *
     * @param x   F32 contiguous {@code [B, C, H, W]}
     * @param out F32 contiguous {@code [B, T, C·p·p]}, not overlapping {@code x}
     * @throws IllegalArgumentException on a shape mismatch
     */
    public static void patchify(Backend backend, Tensor x, int p, PatchLayout layout, Tensor out) {
        Objects.requireNonNull(layout, "layout");
        NnOps.checkTensor(backend, "x", x, false);
        NnOps.checkTensor(backend, "out", out, false);
        long[] ps = patchShape(x.shape(), p);
        requireShape("out", out, ps);
        long b = x.shape(0);
        long c = x.shape(1);
        long gh = x.shape(2) / p;
        long gw = x.shape(3) / p;
        Tensor grid = x.reshape(b, c, gh, p, gw, p);                          // [B, C, h, p, w, p]
        if (layout == PatchLayout.CHANNEL_FIRST) {
            backend.copy(grid.permute(0, 2, 4, 1, 3, 5), out.reshape(b, gh, gw, c, p, p));   // [B, h, w, C, p, p]
        } else {
            backend.copy(grid.permute(0, 2, 4, 3, 5, 1), out.reshape(b, gh, gw, p, p, c));   // [B, h, w, p, p, C]
        }
    }

    /**
     * {@code out = unpatchify(v)}; the image size is {@code out}'s.
     *
     * @param v   F32 contiguous {@code [B, T, C·p·p]}
     * @param out F32 contiguous {@code [B, C, H, W]}, not overlapping {@code v}
     * @throws IllegalArgumentException on a shape mismatch
     */
    public static void unpatchify(Backend backend, Tensor v, int p, PatchLayout layout, Tensor out) {
        Objects.requireNonNull(layout, "layout");
        NnOps.checkTensor(backend, "v", v, false);
        NnOps.checkTensor(backend, "out", out, false);
        long[] ps = patchShape(out.shape(), p);
        requireShape("v", v, ps);
        long b = out.shape(0);
        long c = out.shape(1);
        long gh = out.shape(2) / p;
        long gw = out.shape(3) / p;
        Tensor dst = out.reshape(b, c, gh, p, gw, p);                         // [B, C, h, p, w, p]
        if (layout == PatchLayout.CHANNEL_FIRST) {
            Tensor src = v.reshape(b, gh, gw, c, p, p);                       // [B, h, w, C, p, q]
            backend.copy(src.permute(0, 3, 1, 4, 2, 5), dst);
        } else {
            Tensor src = v.reshape(b, gh, gw, p, p, c);                       // [B, h, w, p, q, C]
            backend.copy(src.permute(0, 5, 1, 3, 2, 4), dst);                 // einsum 'nhwpqc->nchpwq'
        }
    }

    private static void requireShape(String name, Tensor t, long[] want) {
        if (!java.util.Arrays.equals(t.shape(), want)) {
            throw new IllegalArgumentException(name + " " + t + " must have shape " + java.util.Arrays.toString(want));
        }
        Shape.requireContiguous(name, t);
    }
}
