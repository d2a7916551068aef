package org.diffusion4j.tensor;

/**
 * The shape rule of {@code Backend.gemm}: resolves {@code op(a) [M, K] @ op(b) [K, N] -> c [M, N]}, plain or
 * strided-batched over a leading dim {@code B} with rank-2 operands shared by every batch, into the
 * arguments of row-major BLAS calls ({@code cblas_sgemm} on the CPU, cuBLAS with swapped operands on CUDA).
 * Every backend resolves its operands through this one rule.
 *
 * @param transA  whether {@code a} is stored transposed ({@code [K, M]})
 * @param transB  whether {@code b} is stored transposed ({@code [N, K]})
 * @param batch   number of products ({@code 1} for rank-2 {@code c})
 * @param m       rows of {@code c}
 * @param n       columns of {@code c}
 * @param k       the contracted dim
 * @param lda     leading dim of {@code a} as stored ({@code >= 1})
 * @param ldb     leading dim of {@code b} as stored
 * @param ldc     leading dim of {@code c}
 * @param strideA elements between consecutive batches of {@code a}; 0 when shared
 * @param strideB elements between consecutive batches of {@code b}; 0 when shared
 * @param strideC elements between consecutive batches of {@code c}
 */
public record GemmShape(boolean transA, boolean transB, int batch, int m, int n, int k, int lda, int ldb, int ldc,
            long strideA, long strideB, long strideC) {

    /**
     * Checks ranks and dims of {@code a}, {@code b}, {@code c} (already known to be contiguous F32).
     *
     * @throws IllegalArgumentException naming all three shapes when they do not fit together
     */
    public static GemmShape of(boolean transA, boolean transB, Tensor a, Tensor b, Tensor c) {
        if (c.rank() != 2 && c.rank() != 3) {
            throw new IllegalArgumentException("gemm: c " + c + " must have rank 2 [M, N] or 3 [B, M, N], has rank "
                    + c.rank());
        }
        requireOperandRank("a", a, c);
        requireOperandRank("b", b, c);
        long batch = c.rank() == 3 ? c.shape(0) : 1;
        long m = transA ? a.shape(-1) : a.shape(-2);
        long ka = transA ? a.shape(-2) : a.shape(-1);
        long kb = transB ? b.shape(-1) : b.shape(-2);
        long n = transB ? b.shape(-2) : b.shape(-1);
        if (ka != kb || m != c.shape(-2) || n != c.shape(-1)) {
            throw new IllegalArgumentException("gemm: shapes do not match: op(a) of a " + a + (transA ? "^T" : "")
                    + " is [" + m + ", " + ka + "], op(b) of b " + b + (transB ? "^T" : "") + " is [" + kb + ", " + n
                    + "], c " + c + " must be [" + (c.rank() == 3 ? batch + ", " : "") + m + ", " + n + "]");
        }
        for (Tensor t : new Tensor[] {a, b}) {
            if (t.rank() == 3 && t.shape(0) != batch) {
                throw new IllegalArgumentException("gemm: " + (t == a ? "a " : "b ") + t + " has batch " + t.shape(0)
                        + " but c " + c + " has batch " + batch);
            }
        }
        long lda = Math.max(1, a.shape(-1));
        long ldb = Math.max(1, b.shape(-1));
        long ldc = Math.max(1, n);
        long max = Integer.MAX_VALUE;
        if (batch > max || m > max || n > max || ka > max || lda > max || ldb > max) {
            throw new IllegalArgumentException("gemm: a dim of a " + a + ", b " + b + " or c " + c
                    + " exceeds 2^31 - 1, the largest BLAS int");
        }
        long strideA = a.rank() == 3 ? a.shape(-2) * a.shape(-1) : 0;
        long strideB = b.rank() == 3 ? b.shape(-2) * b.shape(-1) : 0;
        return new GemmShape(transA, transB, (int) batch, (int) m, (int) n, (int) ka, (int) lda, (int) ldb, (int) ldc,
                strideA, strideB, m * n);
    }

    private static void requireOperandRank(String name, Tensor t, Tensor c) {
        if (t.rank() == 2 || (t.rank() == 3 && c.rank() == 3)) {
            return;
        }
        throw new IllegalArgumentException("gemm: " + name + " " + t + " must have rank 2"
                + (c.rank() == 3 ? " or 3 (batched like c " + c + ")" : " like c " + c) + ", has rank " + t.rank());
    }

    /** Multiply-adds of one product: {@code m * n * k}. */
    public long macsPerProduct() {
        return (long) m * n * k;
    }
}
