package org.diffusion4j.nn.attention;

/**
 * The sizes of one attention call, as checked by {@link AttentionOps#checkForward} and
 * {@link AttentionOps#checkBackward}.
 *
 * @param batch    {@code B}
 * @param heads    {@code H}
 * @param queries  {@code Tq}, rows of {@code q} per head
 * @param keys     {@code Tk ≥ 1}, rows of {@code k} and {@code v} per head ({@code = Tq} for self-attention)
 * @param headDim  {@code Dh ∈ [1, }{@value AttentionOps#MAX_HEAD_DIM}{@code ]}
 */
public record AttentionDims(long batch, long heads, long queries, long keys, long headDim) {

    /** {@code B·H}: the number of independent (batch, head) problems. */
    public long problems() {
        return batch * heads;
    }

    /**
     * Forward FLOPs by the FlashAttention convention: {@code 4·B·H·Tq·Tk·Dh} (two matrix products of
     * {@code 2·Tq·Tk·Dh} each; the softmax is not counted). Dao 2023, §4.1.
     */
    public double forwardFlops() {
        return 4.0 * batch * heads * queries * keys * headDim;
    }

    /** Backward FLOPs by the same convention: {@code 2.5 ×} the forward (five products instead of two). */
    public double backwardFlops() {
        return 2.5 * forwardFlops();
    }

    @Override
    public String toString() {
        return "[B=" + batch + ", H=" + heads + ", Tq=" + queries + ", Tk=" + keys + ", Dh=" + headDim + "]";
    }
}
