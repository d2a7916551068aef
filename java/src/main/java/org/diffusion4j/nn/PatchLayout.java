package org.diffusion4j.nn;

/**
 * The order of the {@code C·p·p} values of one patch vector.
 */
public enum PatchLayout {
    /**
     * {@code (c, i, j)}: channel-major, the order of a Conv2d weight {@code [D, C, p, p]} flattened to
     * {@code [D, C·p·p]}, so that a linear layer over patch vectors is the reference DiT's patch embedding
     * ({@code PatchEmbed}, a Conv2d with kernel = stride = p).
     */
    CHANNEL_FIRST,
    /**
     * {@code (i, j, c)}: channel-minor, the order the reference DiT's {@code unpatchify} reads its final layer's
     * output in ({@code einsum('nhwpqc->nchpwq')}).
     */
    CHANNEL_LAST
}
